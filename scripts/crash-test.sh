#!/usr/bin/env bash
# Crash safety, long version: SIGKILL the real `ticketing serve` at random moments while many
# clients buy tickets over HTTP, restart it on the same database, and after every kill check
# `ticketing admin check`, `PRAGMA integrity_check` and that every acknowledged payment is in
# the database (ticketing-cli/tests/reliability_crash.rs). CI runs the same test with 20 kills
# per strategy as part of `cargo test`.
#
#   scripts/crash-test.sh              # 200 kills per strategy (optimistic, pessimistic, redis)
#   scripts/crash-test.sh 50           # another number of kills
#   CRASH_NO_REDIS=1 scripts/crash-test.sh   # without the redis strategy
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-200}"

if [ -z "${CRASH_NO_REDIS:-}" ] && [ -z "${TICKETING_TEST_REDIS_URL:-}" ]; then
    . scripts/redis.sh
    start_redis
fi

start=$(date +%s)
TICKETING_CRASH_KILLS="$kills" cargo test -p ticketing-cli --test reliability_crash -- --nocapture
echo "crash-test: $kills kills per strategy survived in $(( $(date +%s) - start )) s"
