#!/usr/bin/env bash
# The project's one test command (CI runs exactly this): formatting, lints, then every test
# with a private redis-server and a private PostgreSQL (both stopped and removed on exit), so
# the redis strategy and the PostgreSQL backend are tested too.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis.sh
. scripts/postgres.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
start_redis
start_postgres
echo "tests use redis at $TICKETING_TEST_REDIS_URL and PostgreSQL at $TICKETING_TEST_PG_URL" >&2
cargo test --workspace
