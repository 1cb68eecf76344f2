#!/usr/bin/env bash
# The project's one test command (CI runs exactly this): formatting, lints, then every test
# with a private redis-server so the redis strategy is tested too.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
start_redis
cargo test --workspace
