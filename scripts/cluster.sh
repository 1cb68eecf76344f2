#!/usr/bin/env bash
# A private service of N nodes for a developer: a private PostgreSQL, a private Redis and N
# `ticketing serve` nodes on one database, each on a free port. Prints the nodes' URLs (for
# `ticketing simulate --target URL,URL,…`) and the database's, and stops everything on Ctrl-C.
#
#   scripts/cluster.sh                 # 3 nodes, pessimistic
#   scripts/cluster.sh 5 redis         # 5 nodes under the redis strategy
#   CLUSTER_FLAGS="--max-active 500" scripts/cluster.sh 3 optimistic
#
# TICKETING_BIN names a built binary (default: builds target/release/ticketing). Each node's
# log is in the printed directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis.sh
. scripts/postgres.sh

nodes="${1:-3}"
strategy="${2:-pessimistic}"
case "$nodes" in '' | *[!0-9]* | 0)
    echo "usage: scripts/cluster.sh [NODES ≥ 1] [pessimistic|optimistic|redis]" >&2
    exit 2
    ;;
esac
case "$strategy" in pessimistic | optimistic | redis) ;; *)
    echo "unknown strategy \`$strategy\`: pessimistic, optimistic or redis" >&2
    exit 2
    ;;
esac

. scripts/release-bin.sh
release_bin

start_redis
start_postgres
logs=$(mktemp -d "${TMPDIR:-/tmp}/ticketing-cluster.XXXXXXXX")
pids=()
stop_nodes() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "stopped ${#pids[@]} nodes; logs kept in $logs" >&2
}
on_exit stop_nodes
# Ctrl-C or a kill ends the script through its EXIT clean-ups (nodes, then PostgreSQL, Redis).
trap 'exit 130' INT TERM

urls=()
for i in $(seq 1 "$nodes"); do
    # shellcheck disable=SC2086 # CLUSTER_FLAGS is a list of flags
    "$BIN" serve --addr 127.0.0.1:0 --db "$TICKETING_TEST_PG_URL" --strategy "$strategy" \
        --redis-url "$TICKETING_TEST_REDIS_URL" --node-id "node-$i" --demo ${CLUSTER_FLAGS:-} \
        >"$logs/node-$i.out" 2>"$logs/node-$i.log" &
    pids+=($!)
    for _ in $(seq 1 200); do
        grep -q '^listening on ' "$logs/node-$i.out" 2>/dev/null && break
        kill -0 "${pids[-1]}" 2>/dev/null || { cat "$logs/node-$i.log" >&2; exit 1; }
        sleep 0.05
    done
    urls+=("$(sed -n 's/^listening on //p' "$logs/node-$i.out")")
done

list=$(IFS=,; echo "${urls[*]}")
cat <<INFO
$nodes nodes ($strategy) on one PostgreSQL and one Redis:
$(printf '  %s\n' "${urls[@]}")
database:  $TICKETING_TEST_PG_URL
redis:     $TICKETING_TEST_REDIS_URL
logs:      $logs

  $BIN simulate sold-out-rush --target $list --db $TICKETING_TEST_PG_URL
  $BIN --db $TICKETING_TEST_PG_URL tui

Ctrl-C stops the nodes, PostgreSQL and Redis.
INFO
if [ -n "${CLUSTER_URLS_FILE:-}" ]; then
    echo "$list" >"$CLUSTER_URLS_FILE"
fi
wait
