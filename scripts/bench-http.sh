#!/usr/bin/env bash
# Measures `ticketing serve` under 256 concurrent connections with wrk (Debian package `wrk`),
# release build, per strategy: POST /api/token, GET available-seats, POST /api/reserve,
# PATCH /api/balance/charge and POST /api/pay. Figures and reading: docs/http-benchmarks.md.
#
#   scripts/bench-http.sh                      # pessimistic and optimistic (+ redis if TICKETING_REDIS_URL)
#   STRATEGIES=optimistic DURATION=5s scripts/bench-http.sh
#   BENCH_PG_URL=postgres://… scripts/bench-http.sh   # on PostgreSQL: a fresh schema per strategy
#   BENCH_PG_URL=postgres://… NODES=3 THREADS=3 scripts/bench-http.sh   # 3 nodes of one service,
#                                              # wrk thread t sending to node t mod 3
#
# Each strategy gets a fresh database with a bench concert of 20 dates × 10,000 seats at 100
# (seats for reserve and pay) and a 50-seat date (for available-seats). Needs wrk, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
# The token step also makes the tokens of the reserve step (one hold each): on PostgreSQL,
# where tokens come slower than holds, give it longer (TOKEN_DURATION=20s).
TOKEN_DURATION=${TOKEN_DURATION:-$DURATION}
CONNECTIONS=${CONNECTIONS:-256}
THREADS=${THREADS:-2}
STRATEGIES=${STRATEGIES:-"pessimistic optimistic${TICKETING_REDIS_URL:+ redis}"}
NODES=${NODES:-1}
# The database connections of the whole service, shared out over its nodes (--db-pool each).
POOL_TOTAL=${POOL_TOTAL:-16}
STEPS=${STEPS:-"available-seats token reserve charge pay"}
if [ "$NODES" -gt 1 ] && [ -z "${BENCH_PG_URL:-}" ]; then
  echo "NODES=$NODES needs BENCH_PG_URL: several nodes share one PostgreSQL database" >&2
  exit 2
fi
export RUST_LOG=${RUST_LOG:-info}
export BENCH_DIR=$PWD/scripts/bench THREADS

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
# TICKETING_BIN=path runs another build (e.g. an older commit's, for a before/after figure).
. scripts/release-bin.sh
release_bin

# Splits the lines of stdin into $OUT/<name>-<thread>.txt, round robin over the wrk threads.
split_by_thread() {
  python3 -c '
import sys
name, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = [open(f"{out}/{name}-{t}.txt", "w") for t in range(n)]
for i, line in enumerate(sys.stdin):
    files[i % n].write(line)
' "$1" "$OUT" "$THREADS"
}

# Runs an SQL query read-only against the bench database (setup for the next step only).
query() {
  if [ -n "${BENCH_PG_URL:-}" ]; then
    psql "$DB" -AtF ' ' -c "$1"
  else
    python3 -c 'import sqlite3,sys; c=sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for row in c.execute(sys.argv[2]): print(" ".join(map(str, row)))' "$DB" "$1"
  fi
}

# CPU time (user + system, in clock ticks) the servers have used so far.
cpu_ticks() {
  local total=0 pid
  for pid in "${servers[@]}"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$total"
}
# Whether step $1 is to be run (STEPS).
step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

bench() { # name, wrk args…
  local name=$1 duration=$DURATION; shift
  [ "$name" = token ] && duration=$TOKEN_DURATION
  echo "### $name"
  local before; before=$(cpu_ticks)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency "$@" 2>&1 | tee "$OUT/$name.txt"
  local after requests; after=$(cpu_ticks)
  requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$OUT/$name.txt")
  # Server CPU per request: what the machine's load (wrk included) cannot inflate much.
  python3 -c 'import os,sys; t=int(sys.argv[2])-int(sys.argv[1]); n=int(sys.argv[3]); hz=os.sysconf("SC_CLK_TCK")
print(f"server CPU: {t/hz:.2f} s for {n} requests = {t/hz/n*1e6:.1f} us/request")' "$before" "$after" "$requests"
  echo
}

for strategy in $STRATEGIES; do
  OUT=$(mktemp -d)
  export OUT
  if [ -n "${BENCH_PG_URL:-}" ]; then
    schema=bench_${strategy}_$$
    psql "$BENCH_PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema"
    DB="$BENCH_PG_URL?options=-c%20search_path%3D$schema"
  else
    DB=$OUT/bench.db
  fi
  echo "## strategy: $strategy (work dir $OUT, database ${BENCH_PG_URL:+PostgreSQL schema $schema}${BENCH_PG_URL:-$DB})"
  dates=()
  for d in $(seq -w 1 20); do dates+=(--date "2027-01-$d"); done
  "$BIN" --db "$DB" admin concert add --title Bench "${dates[@]}" --seats 10000 --price 100 >/dev/null
  "$BIN" --db "$DB" admin concert add --title Small --date 2027-06-01 --seats 50 --price 100 >/dev/null
  small=$(query "SELECT id FROM concert_options WHERE concert_date = '2027-06-01'")

  servers=()
  addrs=()
  for n in $(seq 1 "$NODES"); do
    # PostgreSQL only: a node's name and its share of the connections (and an older build,
    # TICKETING_BIN, without these flags still runs on SQLite).
    pg_flags=()
    [ -n "${BENCH_PG_URL:-}" ] &&
      pg_flags=(--node-id "node-$n" --db-pool $((POOL_TOTAL / NODES > 2 ? POOL_TOTAL / NODES : 2)))
    "$BIN" serve --db "$DB" --strategy "$strategy" --addr 127.0.0.1:0 "${pg_flags[@]}" \
      --max-active 1000000 --max-holds 1 --token-ttl 1h --hold-ttl 1h --rate-limit off \
      ${TICKETING_REDIS_URL:+--redis-url "$TICKETING_REDIS_URL"} >"$OUT/stdout-$n" 2>"$OUT/server-$n.log" &
    servers+=($!)
    for _ in $(seq 100); do grep -q listening "$OUT/stdout-$n" 2>/dev/null && break; sleep 0.1; done
    node=$(sed -n 's/^listening on //p' "$OUT/stdout-$n")
    [ -n "$node" ] || { echo "node $n did not start:" >&2; cat "$OUT/server-$n.log" >&2; exit 1; }
    addrs+=("${node#http://}")
  done
  url="http://${addrs[0]}"
  if [ "$NODES" -gt 1 ]; then
    WRK_NODES=$(IFS=,; echo "${addrs[*]}")
    export WRK_NODES
  fi
  echo "servers ${addrs[*]} (pids ${servers[*]})"

  one=$(curl -s -X POST "$url/api/token" -H 'Content-Type: application/json' -d '{"userId":1}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])')
  step available-seats && bench available-seats -H "Authorization: Bearer $one" "$url/api/$small/available-seats"

  bench token -s "$BENCH_DIR/token.lua" "$url"
  query "SELECT token FROM tokens WHERE status = 'ACTIVE' AND user_id >= 10000000 ORDER BY id" | split_by_thread tokens

  bench reserve -s "$BENCH_DIR/reserve.lua" "$url"
  query "SELECT user_id FROM reservations WHERE status = 'HELD' ORDER BY id" | split_by_thread users
  step charge && bench charge -s "$BENCH_DIR/charge.lua" "$url"
  query "SELECT t.token, r.id FROM reservations r JOIN tokens t ON t.user_id = r.user_id AND t.status = 'ACTIVE'
         WHERE r.status = 'HELD' ORDER BY r.id" | split_by_thread pay
  step pay && bench pay -s "$BENCH_DIR/pay.lua" "$url"

  kill -TERM "${servers[@]}"; wait "${servers[@]}" || true
  "$BIN" --db "$DB" admin check >"$OUT/check.txt" && echo "invariants: ok" || { echo "invariants FAILED"; cat "$OUT/check.txt"; }
  echo "paid: $(query "SELECT count(*) FROM payments"), held: $(query "SELECT count(*) FROM reservations WHERE status = 'HELD'")"
  [ -n "${BENCH_PG_URL:-}" ] && psql "$BENCH_PG_URL" -qc "DROP SCHEMA $schema CASCADE"
  echo
done
