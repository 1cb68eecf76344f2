#!/usr/bin/env bash
# The project's one test command (CI runs exactly this): formatting, lints, then every test
# with a private redis-server and a private PostgreSQL (both stopped and removed on exit), so
# the redis strategy and the PostgreSQL backend are tested too.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis.sh
. scripts/postgres.sh

# The shifted-clock test runs one node under libfaketime.
if ! command -v faketime >/dev/null 2>&1; then
    echo "faketime not found; installing it with apt-get" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >&2 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >&2
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
start_redis
start_postgres
echo "tests use redis at $TICKETING_TEST_REDIS_URL and PostgreSQL at $TICKETING_TEST_PG_URL" >&2
cargo test --workspace
