#!/usr/bin/env bash
# What this machine's PostgreSQL can do for the statements of a seat hold, measured with pgbench
# at the same concurrency and durability as scripts/bench-http.sh: the ceiling the HTTP
# `reserve` figures are read against (README, "PostgreSQL").
#
#   BENCH_PG_URL=postgres://user@127.0.0.1:PORT/postgres scripts/bench-pg-limit.sh
#   (without BENCH_PG_URL it starts a private PostgreSQL with scripts/postgres.sh)
#
# Patterns, each one transaction per pgbench transaction, on a fresh schema of 200,000 seats:
#   update           the conditional seat update alone (one statement, autocommit)
#   lock-update      SELECT … FOR UPDATE on the seat, then the update (pessimistic's core)
#   reserve          reserve's whole write: lock the user's token row, count the user's holds,
#                    insert the reservation, update the seat (what every strategy commits)
#   reserve-x8       eight such holds (other seats, other users) in one transaction, each in a
#                    savepoint: what grouping holds of different seats into one commit could reach
#                    (reported as holds/s)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis.sh
. scripts/postgres.sh

CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10}
if [ -z "${BENCH_PG_URL:-}" ]; then
  start_postgres
  BENCH_PG_URL=$TICKETING_TEST_PG_URL
fi
. scripts/release-bin.sh
release_bin

schema=pglimit_$$
psql "$BENCH_PG_URL" -qc "CREATE SCHEMA $schema"
on_exit_drop() { PGOPTIONS="-c client_min_messages=warning" psql "$BENCH_PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" || true; }
on_exit on_exit_drop
DB="$BENCH_PG_URL?options=-c%20search_path%3D$schema"
dates=()
for d in $(seq -w 1 20); do dates+=(--date "2027-01-$d"); done
"$BIN" --db "$DB" admin concert add --title Bench "${dates[@]}" --seats 10000 --price 100 >/dev/null
# One ACTIVE token per simulated user (users 1..CLIENTS*100), as the server would have admitted.
psql "$DB" -qc "INSERT INTO tokens (id, token, selector, user_id, status, issued_at, admitted_at, expires_at)
  SELECT u, md5(u::text), left(md5(u::text), 8), u, 'ACTIVE', 0, 0, 9000000000000 FROM generate_series(1, $((CLIENTS * 100))) u"

work=$(mktemp -d)
cat >"$work/update.sql" <<'SQL'
\set seat random(1, 200000)
UPDATE seats SET status = 'HELD', held_until = 9000000000000, version = version + 1 WHERE id = :seat AND version >= 0;
SQL
cat >"$work/lock-update.sql" <<'SQL'
\set seat random(1, 200000)
BEGIN;
SELECT status, version FROM seats WHERE id = :seat FOR UPDATE;
UPDATE seats SET status = 'HELD', held_until = 9000000000000, version = version + 1 WHERE id = :seat AND version >= 0;
COMMIT;
SQL
cat >"$work/reserve.sql" <<SQL
\set seat random(1, 200000)
\set user random(1, $((CLIENTS * 100)))
BEGIN;
SELECT status, expires_at FROM tokens WHERE id = :user FOR UPDATE;
SELECT count(*) FROM reservations WHERE user_id = :user AND status = 'HELD' AND +held_until > 0;
INSERT INTO reservations (user_id, seat_id, option_id, status, held_until, price, created_at, fence)
  VALUES (:user, :seat, 1, 'HELD', 9000000000000, 10000, 0, 0) RETURNING id;
UPDATE seats SET status = 'HELD', held_until = 9000000000000, reservation_id = 1, version = version + 1
  WHERE id = :seat AND version >= 0;
COMMIT;
SQL
{
  for k in $(seq 1 8); do
    echo "\\set seat$k random(1, 200000)"
    echo "\\set user$k random(1, $((CLIENTS * 100)))"
  done
  echo "BEGIN;"
  for k in $(seq 1 8); do
    sed -n '/^SELECT status/,/WHERE id = :seat AND/p' "$work/reserve.sql" |
      sed -e "s/:user/:user$k/g" -e "s/:seat/:seat$k/g" -e '1i SAVEPOINT hold;'
  done
  echo "COMMIT;"
} >"$work/reserve-x8.sql"
echo "PostgreSQL $(psql "$BENCH_PG_URL" -Atc 'SHOW server_version'), synchronous_commit=on, $CLIENTS clients, ${DURATION}s each"
for pattern in update lock-update reserve reserve-x8; do
  tps=$(pgbench "$DB" -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -f "$work/$pattern.sql" 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  if [ "$pattern" = reserve-x8 ]; then
    printf '%-12s %8.0f transactions/s = %.0f holds/s\n' "$pattern" "$tps" "$(awk -v t="$tps" 'BEGIN { print t * 8 }')"
  else
    printf '%-12s %8.0f transactions/s\n' "$pattern" "$tps"
  fi
done
rm -rf "$work"
