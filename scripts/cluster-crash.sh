#!/usr/bin/env bash
# Crash safety across nodes, long version: purchase traffic over three `ticketing serve` nodes
# on one private PostgreSQL while one node is SIGKILLed at random moments and restarted; the
# others must answer no 5xx, every acknowledged payment must be in the database and `admin
# check` must pass (ticketing-cli/tests/cluster_crash.rs). CI runs the same test with 20 kills.
#
#   scripts/cluster-crash.sh           # 200 kills
#   scripts/cluster-crash.sh 50        # another number
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
kills="${1:-200}"
[ -n "${TICKETING_TEST_PG_URL:-}" ] || start_postgres

start=$(date +%s)
TICKETING_CLUSTER_KILLS="$kills" cargo test -p ticketing-cli --test cluster_crash -- --nocapture
echo "cluster-crash: $kills kills survived in $(( $(date +%s) - start )) s"
