#!/usr/bin/env bash
# The simulator against an independent load tool, oha (crates.io), on the same read at the same
# rate, both open loop (`oha --latency-correction`; the simulator always corrects), the two run
# side by side against one release `ticketing serve`: the same seconds of the same machine for
# both, so a shared machine's drift between rounds does not land on one tool only. Figures and
# reading: docs/simulator.md, "Measured against an independent tool".
#
#   scripts/compare-oha.sh                         # 5 rounds, the shipped available-seats scenario
#   ROUNDS=9 SEATS=1000 scripts/compare-oha.sh     # a 1,000-seat date instead of 50 seats
#   BENCH_PG_URL=postgres://… scripts/compare-oha.sh   # the server on PostgreSQL (a fresh schema)
#
# Each round: the simulator runs `available-seats` (it adds its date to the server's database,
# then reads it `RATE` times a second) while oha reads the date of the round before at the same
# rate with the same concurrency, with a token of its own. Needs oha (`cargo install oha
# --locked`), curl and jq. Prints p50 and p99 of both and their ratio per round, then medians;
# beside the simulator's, how late it sent its requests itself (p99), which its latencies include.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
SEATS=${SEATS:-50}
# The shipped scenario's own rate and size (500 reads a second, 5,000 reads); oha's -c is the
# simulator's default --concurrency.
RATE=${RATE:-500}
READS=${READS:-5000}
CONCURRENCY=${CONCURRENCY:-64}
for tool in oha curl jq; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (oha: cargo install oha --locked)" >&2; exit 2; }
done
. scripts/release-bin.sh
release_bin

OUT=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  if [ -n "${BENCH_PG_URL:-}" ]; then
    PGOPTIONS="-c client_min_messages=warning" psql "$BENCH_PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" || true
  fi
}
trap cleanup EXIT
if [ -n "${BENCH_PG_URL:-}" ]; then
  schema=oha_$$
  psql "$BENCH_PG_URL" -qc "CREATE SCHEMA $schema"
  DB="$BENCH_PG_URL?options=-c%20search_path%3D$schema"
else
  DB=$OUT/server.db
fi
# The shipped scenario, with the date's size, rate and reads asked for.
sed -e "s/seats = 50,/seats = $SEATS,/" -e "s/^rate = 500$/rate = $RATE/" -e "s/^users = 5000$/users = $READS/" \
  scenarios/available-seats.toml >"$OUT/available-seats.toml"

RUST_LOG=warn "$BIN" serve --addr 127.0.0.1:0 --db "$DB" --rate-limit off >"$OUT/stdout" 2>"$OUT/server.log" &
server=$!
for _ in $(seq 100); do grep -q listening "$OUT/stdout" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$OUT/stdout")
[ -n "$url" ] || { echo "the server did not start:" >&2; cat "$OUT/server.log" >&2; exit 1; }

simulate() { # json file
  "$BIN" simulate "$OUT/available-seats.toml" --target "$url" --db "$DB" --concurrency "$CONCURRENCY" \
    --json "$1" >/dev/null
}
# The newest date on the server (the one the simulator read last), and a token for oha.
newest_date() { # token
  local concert
  concert=$(curl -sf "$url/api/concerts" | jq '[.concerts[].concertId] | max')
  curl -sf -H "Authorization: Bearer $1" "$url/api/$concert/available-dates" | jq '.concertOptions[0].concertOptionId'
}
oha_token() {
  curl -sf -X POST "$url/api/token" -H 'content-type: application/json' -d '{"userId": 4242}' | jq -r .data.token
}

echo "server $url on ${BENCH_PG_URL:+PostgreSQL }$DB; $READS reads at $RATE/s, -c $CONCURRENCY, a $SEATS-seat date"
simulate "$OUT/warm.json"
printf '%-6s %-10s %10s %10s\n' round tool "p50 ms" "p99 ms"
for r in $(seq 1 "$ROUNDS"); do
  token=$(oha_token)
  date_id=$(newest_date "$token")
  oha -n "$READS" -q "$RATE" -c "$CONCURRENCY" --latency-correction --no-tui --output-format json \
    -H "Authorization: Bearer $token" "$url/api/$date_id/available-seats" >"$OUT/oha$r.json" &
  oha=$!
  simulate "$OUT/sim$r.json"
  wait "$oha"
  jq -r --arg r "$r" '[$r, "oha", (.latencyPercentiles.p50 * 1000), (.latencyPercentiles.p99 * 1000),
      (.statusCodeDistribution | to_entries | map("\(.key):\(.value)") | join(" "))] | @tsv' "$OUT/oha$r.json"
  jq -r --arg r "$r" '.scenarios[0].runs[0].operations[0] as $o |
      [$r, "simulator", $o.latencyMs.p50, $o.latencyMs.p99, "ok:\($o.ok) errors:\($o.errors), itself late p99 \(.scenarios[0].runs[0].lateMs.p99) ms"] | @tsv' "$OUT/sim$r.json"
done | tee "$OUT/rounds.tsv" | awk -F'\t' '{ printf "%-6s %-10s %10.3f %10.3f   %s\n", $1, $2, $3, $4, $5 }'

# Per round, the simulator's figure over oha's; then the median of each column over the rounds.
python3 - "$OUT/rounds.tsv" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
by = {}
for r, tool, p50, p99, _ in rows:
    by.setdefault(r, {})[tool] = (float(p50), float(p99))
ratios = [(s[0] / o[0], s[1] / o[1]) for s, o in ((v["simulator"], v["oha"]) for v in by.values())]
print("simulator / oha per round, p50: " + " ".join(f"{a:.2f}" for a, _ in ratios))
print("simulator / oha per round, p99: " + " ".join(f"{b:.2f}" for _, b in ratios))
med = lambda tool, i: statistics.median(v[tool][i] for v in by.values())
for i, name in ((0, "p50"), (1, "p99")):
    s, o = med("simulator", i), med("oha", i)
    print(f"median {name}: simulator {s:.3f} ms, oha {o:.3f} ms, simulator / oha {s / o:.2f}")
PY
