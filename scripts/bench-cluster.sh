#!/usr/bin/env bash
# What a cluster costs: `ticketing simulate` over HTTP against 1 node and against N nodes of one
# service (one private PostgreSQL, one private Redis, all on this machine), per strategy. On a
# single machine the nodes share its cores, so the point is the cluster's overhead, not a
# speed-up (docs/deploy.md, "Figures").
#
#   scripts/bench-cluster.sh                          # sold-out-rush, 1 vs 3 nodes, every strategy
#   SCENARIOS="sold-out-rush mega-rush" USERS=4000 NODES="1 3" STRATEGIES=pessimistic scripts/bench-cluster.sh
#   POOL_TOTAL=48 scripts/bench-cluster.sh            # connections of the whole service (default 16)
#
# Each run gets a fresh schema; its JSON figures land in $OUT (printed). Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis.sh
. scripts/postgres.sh

SCENARIOS=${SCENARIOS:-sold-out-rush}
NODES=${NODES:-"1 3"}
STRATEGIES=${STRATEGIES:-"pessimistic optimistic redis"}
USERS=${USERS:-}
SPREAD=${SPREAD:-user}
# The database connections of the whole service, shared out over its nodes (--db-pool each):
# the same database, the same connections, however many nodes (docs/deploy.md, "Sizing").
POOL_TOTAL=${POOL_TOTAL:-16}
. scripts/release-bin.sh
release_bin
[ -n "${TICKETING_TEST_REDIS_URL:-}" ] || start_redis
[ -n "${TICKETING_TEST_PG_URL:-}" ] || start_postgres
OUT=$(mktemp -d "${TMPDIR:-/tmp}/ticketing-bench-cluster.XXXXXXXX")
echo "figures in $OUT" >&2

pids=()
stop_nodes() {
    [ ${#pids[@]} -eq 0 ] && return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
}
on_exit stop_nodes
trap 'exit 130' INT TERM

# One run of $1 (scenario) under $2 (strategy) against $3 nodes, figures in $OUT/$4.json.
run() {
    local scenario=$1 strategy=$2 n=$3 run=$4
    local schema="bench_${strategy}_${n}_$$" db pool list max_active urls=()
    psql "$TICKETING_TEST_PG_URL" -qc "CREATE SCHEMA $schema"
    db="$TICKETING_TEST_PG_URL?options=-c%20search_path%3D$schema"
    # The scenario's own max-active, stored by the first node.
    max_active=$(sed -n 's/^max_active *= *//p' "scenarios/$scenario.toml" | head -n 1)
    pool=$((POOL_TOTAL / n))
    [ "$pool" -lt 2 ] && pool=2
    for i in $(seq 1 "$n"); do
        "$BIN" serve --db "$db" --strategy "$strategy" --redis-url "$TICKETING_TEST_REDIS_URL" \
            --addr 127.0.0.1:0 --node-id "node-$i" --rate-limit off --db-pool "$pool" ${NODE_FLAGS:-} \
            ${max_active:+--max-active "$max_active"} >"$OUT/$run-node-$i.out" 2>"$OUT/$run-node-$i.log" &
        pids+=($!)
        for _ in $(seq 1 200); do
            grep -q '^listening on ' "$OUT/$run-node-$i.out" 2>/dev/null && break
            sleep 0.05
        done
        urls+=("$(sed -n 's/^listening on //p' "$OUT/$run-node-$i.out")")
    done
    list=$(IFS=,; echo "${urls[*]}")
    echo "## $run: $scenario · $strategy · $n node(s), --db-pool $pool each"
    "$BIN" simulate "$scenario" ${USERS:+--users "$USERS"} --target "$list" --spread "$SPREAD" \
        --db "$db" --json "$OUT/$run.json" --no-baseline >"$OUT/$run.txt" 2>&1 || {
        tail -n 30 "$OUT/$run.txt"
        exit 1
    }
    grep -E '^(PASS|FAIL)' "$OUT/$run.txt" || true
    stop_nodes
    "$BIN" --db "$db" admin check >/dev/null && echo "admin check: ok"
    psql "$TICKETING_TEST_PG_URL" -qc "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE"
}

# A first run warms PostgreSQL up (its caches, WAL segments): it ran ~30% slower than the same
# run later, whichever node count it had. It is thrown away.
first=${SCENARIOS%% *}
run "$first" "${STRATEGIES%% *}" 1 warm-up >/dev/null
for scenario in $SCENARIOS; do
    for strategy in $STRATEGIES; do
        # Rounds alternate the order of the node counts (1 3, then 3 1), so drift over the run
        # falls on both alike.
        for round in $(seq 1 "${ROUNDS:-2}"); do
            order=$NODES
            [ $((round % 2)) -eq 0 ] && order=$(echo "$NODES" | tr ' ' '\n' | tac | tr '\n' ' ')
            for n in $order; do
                run "$scenario" "$strategy" "$n" "$scenario-$strategy-$n-r$round"
            done
        done
    done
done

# The table: per scenario, strategy and node count, the medians over the rounds of the run's
# requests per second (every request of every virtual user over the wall time) and of the p99
# of the contended operations.
python3 - "$OUT" <<'PY'
import json, glob, os, statistics, sys
rows = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*-r*.json"))):
    name = os.path.basename(path)[:-5]
    scenario_strategy_n, _ = name.rsplit("-r", 1)
    scenario_strategy, n = scenario_strategy_n.rsplit("-", 1)
    run = json.load(open(path))["scenarios"][0]["runs"][0]
    ops = {o["op"]: o for o in run["operations"]}
    total = sum(o["count"] for o in ops.values())
    rows.setdefault((scenario_strategy, int(n)), []).append(
        (total / run["wallSeconds"], {k: ops[k]["latencyMs"]["p99"] for k in ("token", "reserve", "pay") if k in ops})
    )
print("| run | nodes | requests/s | token p99 | reserve p99 | pay p99 |")
print("|---|---:|---:|---:|---:|---:|")
for (name, n), runs in sorted(rows.items()):
    rate = statistics.median(r[0] for r in runs)
    p99 = lambda k: statistics.median(r[1].get(k, 0) for r in runs)
    print(f"| {name} | {n} | {rate:,.0f} | {p99('token'):,.0f} ms | {p99('reserve'):,.0f} ms | {p99('pay'):,.0f} ms |")
PY
echo "figures in $OUT"
