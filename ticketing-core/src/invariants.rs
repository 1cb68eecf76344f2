//! The invariants of docs/contract.md §Invariants, checked over a database. Used by `ticketing admin check`, by the
//! tests and after every simulation. Each check is one query that lists offenders; nothing here
//! trusts the code that wrote the rows.

use crate::store::{params, Conn};
use serde::Serialize;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::ticketing::Ticketing;

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which invariant: `seat-double-booked`, `money-not-conserved`, …
    pub invariant: &'static str,
    /// What was found, naming the rows.
    pub detail: String,
}

/// (invariant, query returning one text column per offender). `?1` is now in milliseconds
/// (queries that do not need it still name it, typed, so every check binds the same parameter).
const CHECKS: &[(&str, &str)] = &[
    (
        "seat-double-booked",
        "SELECT 'seat ' || seat_id || ' has ' || count(*) || ' live or paid reservations'
         FROM reservations WHERE status = 'PAID' OR (status = 'HELD' AND held_until > ?1)
         GROUP BY seat_id HAVING count(*) > 1",
    ),
    (
        "seat-state-mismatch",
        "SELECT 'seat ' || s.id || ' is ' || s.status || ' but its reservation ' || coalesce(CAST(s.reservation_id AS TEXT), 'none')
                || ' is ' || coalesce(r.status, 'missing')
         FROM seats s LEFT JOIN reservations r ON r.id = s.reservation_id
         WHERE (s.status = 'SOLD' AND (r.id IS NULL OR r.status != 'PAID' OR r.seat_id != s.id))
            OR (s.status = 'HELD' AND s.held_until > ?1 AND (r.id IS NULL OR r.status != 'HELD' OR r.seat_id != s.id))",
    ),
    (
        "reservation-seat-mismatch",
        "SELECT 'reservation ' || r.id || ' is ' || r.status || ' but seat ' || r.seat_id || ' is ' || s.status
                || ' for reservation ' || coalesce(CAST(s.reservation_id AS TEXT), 'none')
         FROM reservations r JOIN seats s ON s.id = r.seat_id
         WHERE (r.status = 'PAID' AND (s.status != 'SOLD' OR s.reservation_id != r.id))
            OR (r.status = 'HELD' AND r.held_until > ?1 AND (s.status != 'HELD' OR s.reservation_id IS DISTINCT FROM r.id))",
    ),
    (
        "paid-without-one-payment",
        "SELECT 'reservation ' || r.id || ' is PAID with ' || count(p.id) || ' payments'
         FROM reservations r LEFT JOIN payments p ON p.reservation_id = r.id
         WHERE r.status = 'PAID' AND CAST(?1 AS BIGINT) IS NOT NULL GROUP BY r.id HAVING count(p.id) != 1",
    ),
    (
        "payment-without-paid-reservation",
        "SELECT 'payment ' || p.id || ' of ' || p.amount || ' is for reservation ' || p.reservation_id
                || ' which is ' || coalesce(r.status, 'missing') || ' at price ' || coalesce(CAST(r.price AS TEXT), 'none')
         FROM payments p LEFT JOIN reservations r ON r.id = p.reservation_id
         WHERE (r.id IS NULL OR r.status != 'PAID' OR r.price != p.amount OR r.user_id != p.user_id) AND CAST(?1 AS BIGINT) IS NOT NULL",
    ),
    (
        "money-not-conserved",
        "SELECT 'wallet of user ' || w.user_id || ' holds ' || w.balance || ' but its ledger sums to ' || coalesce(l.net, 0)
         FROM wallets w LEFT JOIN (
             SELECT user_id, sum(CASE kind WHEN 'CHARGE' THEN amount ELSE -amount END) AS net FROM ledger GROUP BY user_id
         ) l ON l.user_id = w.user_id
         WHERE w.balance != coalesce(l.net, 0) OR w.balance < 0 OR CAST(?1 AS BIGINT) IS NULL",
    ),
    (
        "ledger-without-wallet",
        "SELECT 'user ' || user_id || ' has ledger entries but no wallet' FROM ledger
         WHERE user_id NOT IN (SELECT user_id FROM wallets) AND CAST(?1 AS BIGINT) IS NOT NULL GROUP BY user_id",
    ),
    (
        "ledger-running-balance",
        "SELECT 'ledger entry ' || id || ' of user ' || user_id || ' says balance ' || balance_after || ' but the running sum is ' || running
         FROM (SELECT id, user_id, balance_after,
                      sum(CASE kind WHEN 'CHARGE' THEN amount ELSE -amount END) OVER (PARTITION BY user_id ORDER BY id) AS running
               FROM ledger) entries
         WHERE balance_after != running OR balance_after < 0 OR CAST(?1 AS BIGINT) IS NULL",
    ),
    (
        "payments-not-in-ledger",
        "SELECT 'user ' || p.user_id || ' paid ' || p.total || ' but the ledger has ' || coalesce(l.total, 0) || ' of PAYMENT'
         FROM (SELECT user_id, sum(amount) AS total FROM payments GROUP BY user_id) p
         LEFT JOIN (SELECT user_id, sum(amount) AS total FROM ledger WHERE kind = 'PAYMENT' GROUP BY user_id) l
           ON l.user_id = p.user_id
         WHERE p.total != coalesce(l.total, 0) AND CAST(?1 AS BIGINT) IS NOT NULL",
    ),
    (
        "too-many-active",
        "SELECT count(*) || ' tokens are ACTIVE but max-active is ' || (SELECT max_active FROM queue_settings WHERE id = 1)
         FROM tokens WHERE status = 'ACTIVE' AND expires_at > ?1
         HAVING count(*) > (SELECT max_active FROM queue_settings WHERE id = 1)",
    ),
    (
        "active-counter",
        "SELECT 'the queue counts ' || active_rows || ' ACTIVE rows but there are '
                || (SELECT count(*) FROM tokens WHERE status = 'ACTIVE')
         FROM queue_settings
         WHERE id = 1 AND active_rows != (SELECT count(*) FROM tokens WHERE status = 'ACTIVE') AND CAST(?1 AS BIGINT) IS NOT NULL",
    ),
    (
        "admission-out-of-order",
        "SELECT 'token ' || id || ' was admitted at ' || admitted_at || ', before an earlier token admitted at ' || earlier
         FROM (SELECT id, admitted_at,
                      max(admitted_at) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier
               FROM tokens WHERE admitted_at IS NOT NULL) admitted
         WHERE admitted_at < earlier AND CAST(?1 AS BIGINT) IS NOT NULL",
    ),
    (
        "waiter-skipped",
        "SELECT 'token ' || id || ' is still WAITING behind the admitted token ' || (SELECT admitted_through FROM queue_settings)
         FROM tokens WHERE status = 'WAITING' AND expires_at > ?1
           AND id < (SELECT admitted_through FROM queue_settings WHERE id = 1)",
    ),
];

/// Every violation found in the database of `t` (empty when all hold).
pub fn check(t: &Ticketing) -> Result<Vec<Violation>> {
    let now = t.now();
    t.store().read(|c| check_connection(c, now))
}

/// Every violation found over one connection, as of `now`.
pub(crate) fn check_connection(c: &Conn<'_>, now: Timestamp) -> Result<Vec<Violation>> {
    let mut found = Vec::new();
    for (invariant, sql) in CHECKS {
        let rows = c
            .prepare_cached(sql)?
            .query_map(params![now.0], |r| r.get::<_, String>(0))?;
        for detail in rows {
            found.push(Violation { invariant, detail });
        }
    }
    Ok(found)
}
