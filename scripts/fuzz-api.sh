#!/usr/bin/env bash
# Fuzz the HTTP API from its own OpenAPI description with schemathesis (installed from PyPI
# into a temporary venv): start `ticketing serve --demo` on a free port, let schemathesis
# generate requests for every operation of /openapi.json (valid and invalid: wrong types,
# missing fields, huge numbers, unicode), and fail on any failed check of schemathesis's
# `--checks all` (a 5xx, a response off its schema, a schema-valid request refused, an invalid
# one accepted, a request accepted without the token the document requires…), on a dead
# server, or when `ticketing admin check` finds a broken invariant afterwards.
#
#   scripts/fuzz-api.sh           # CI size: 60 examples per operation, about a minute
#   scripts/fuzz-api.sh --long    # 1000 examples per operation, every phase, plus the proptest
#                                 # fuzzers of tests/reliability_fuzz.rs with 50,000 cases
#
# Needs python3 with venv and network access to PyPI. FUZZ_EXAMPLES overrides the count;
# FUZZ_VENV=DIR keeps the venv in DIR between runs (created when missing); FUZZ_SEED fixes the
# seed.
set -euo pipefail
cd "$(dirname "$0")/.."

long=""
[ "${1:-}" = "--long" ] && long=1
examples="${FUZZ_EXAMPLES:-$([ -n "$long" ] && echo 1000 || echo 60)}"

work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

venv="${FUZZ_VENV:-$work/venv}"
if [ ! -x "$venv/bin/schemathesis" ]; then
    echo "fuzz-api: installing schemathesis into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi

cargo build --quiet -p ticketing-cli --bin ticketing
bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/ticketing"
db="$work/fuzz.db"

"$bin" --db "$db" --strategy optimistic serve --addr 127.0.0.1:0 --demo \
    >"$work/stdout" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 200); do
    grep -q "listening on" "$work/stdout" 2>/dev/null && break
    sleep 0.05
done
base=$(sed -n 's/^listening on //p' "$work/stdout" | head -1)
[ -n "$base" ] || { echo "fuzz-api: the server did not start"; cat "$work/server.log"; exit 1; }

# An ACTIVE token with money, so the fuzzer's requests get past authentication too.
token=$(curl -fsS -X POST "$base/api/token" -H 'Content-Type: application/json' -d '{"userId":1}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])')
curl -fsS -X PATCH "$base/api/balance/charge" -H 'Content-Type: application/json' \
    -d '{"userId":1,"amount":1000000}' >/dev/null

# Two operations answer a schema-valid request with 400 by a business rule no schema can
# state (docs/contract.md §Payment, §Money): using more than the wallet holds
# (INSUFFICIENT_BALANCE) and paying an amount other than the reservation's price
# (AMOUNT_MISMATCH). For those two only, 400 is an expected answer to valid data; everywhere
# else a valid request refused with 400 fails the run.
cat >"$work/schemathesis.toml" <<'TOML'
[[operations]]
include-path = "/api/balance/use"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

[[operations]]
include-path = "/api/pay"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
TOML

phases="examples,coverage,fuzzing"
[ -n "$long" ] && phases="examples,coverage,fuzzing,stateful"
start=$(date +%s)
set +e
# Run from the temp dir: schemathesis keeps a cache (.schemathesis/) in the current directory.
(cd "$work" && "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$base/openapi.json" \
    --checks all \
    --header "Authorization: Bearer $token" \
    --max-examples "$examples" \
    --phases "$phases" \
    --workers 2 \
    --seed "${FUZZ_SEED:-$RANDOM}" \
    --request-timeout 10 \
    --exclude-path /metrics \
    --exclude-method DELETE \
    --suppress-health-check all \
    --report junit --report-dir "$work/report") 2>&1 | tee "$work/schemathesis.out"
status=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))

fail=0
if [ "$status" -ne 0 ]; then
    echo "fuzz-api: schemathesis found failures (exit $status)"
    fail=1
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "fuzz-api: the server died"; tail -50 "$work/server.log"; fail=1
fi
if grep -q 'status=5[0-9][0-9]' "$work/server.log"; then
    echo "fuzz-api: the server logged a 5xx:"; grep 'status=5[0-9][0-9]' "$work/server.log" | head; fail=1
fi
if grep -qi 'panicked' "$work/server.log"; then
    echo "fuzz-api: the server logged a panic:"; grep -i -A3 'panicked' "$work/server.log" | head; fail=1
fi
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
if ! "$bin" --db "$db" admin check; then
    echo "fuzz-api: ticketing admin check failed after the fuzzing"; fail=1
fi
requests=$(grep -c 'request_id=' "$work/server.log" || true)
echo "fuzz-api: $examples examples per operation, $requests requests refused with a 4xx (logged), ${elapsed} s"

if [ -n "$long" ]; then
    TICKETING_FUZZ_CASES=50000 TICKETING_FUZZ_SCENARIOS=2000 \
        cargo test -p ticketing-cli --test reliability_fuzz -- --nocapture || fail=1
fi
exit "$fail"
