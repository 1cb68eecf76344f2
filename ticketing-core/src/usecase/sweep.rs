//! Background work: expire run-out holds and tokens, forget old idempotency keys, admit
//! waiters. Safe on every node at once.

use std::time::Duration;

use crate::error::Result;
use crate::queue::{self};
use crate::store::params;
use crate::ticketing::Ticketing;

/// Idempotency keys are kept at least 24 hours; swept after 25.
const IDEMPOTENCY_KEEP: Duration = Duration::from_secs(25 * 3600);

/// What one [`Ticketing::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Holds that ran out (reservation EXPIRED, seat AVAILABLE again).
    pub holds_expired: u64,
    /// Tokens that timed out.
    pub tokens_expired: u64,
    /// Waiters admitted.
    pub admitted: u32,
}

impl Ticketing {
    /// Expires run-out holds and tokens, forgets old idempotency keys and admits waiters.
    /// Servers call it about once a second; reads never depend on it (they check expiry
    /// themselves).
    pub fn sweep(&self) -> Result<SweepReport> {
        let clock = self.inner.clock.clone();
        let ttl = self.token_ttl();
        self.store().write(move |c| {
            let now = clock.now();
            // Rows another writer has locked are skipped (`SKIP LOCKED`, PostgreSQL): a reserve
            // taking over a run-out seat, a payment, or another node's sweep is on them, and a
            // run-out hold or token reads as expired whether or not it is swept. So sweeps on
            // every node at once neither wait for each other nor deadlock, and none does what
            // another did. Seats before reservations, as reserve writes them.
            //
            // The seat's version stays: a run-out hold already reads as AVAILABLE, so this write
            // changes nothing a reader decides on, and a reserve that read the seat a moment ago
            // must not lose a race against the sweeper.
            c.prepare_cached(
                "UPDATE seats SET status = 'AVAILABLE', held_until = NULL, reservation_id = NULL
                 WHERE id IN (SELECT id FROM seats WHERE status = 'HELD' AND held_until <= ?1 FOR UPDATE SKIP LOCKED)",
            )?
            .execute(params![now.0])?;
            let holds = c
                .prepare_cached(
                    "UPDATE reservations SET status = 'EXPIRED', version = version + 1
                     WHERE id IN (SELECT id FROM reservations WHERE status = 'HELD' AND held_until <= ?1
                                  FOR UPDATE SKIP LOCKED)",
                )?
                .execute(params![now.0])?;
            let settings = queue::lock(c)?;
            let mut tokens = 0;
            for status in ["ACTIVE", "WAITING"] {
                tokens += c
                    .prepare_cached(
                        "UPDATE tokens SET status = 'EXPIRED'
                         WHERE id IN (SELECT id FROM tokens WHERE status = ?1 AND expires_at <= ?2 FOR UPDATE SKIP LOCKED)",
                    )?
                    .execute(params![status, now.0])?;
            }
            c.prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
                .execute(params![now.0 - i64::try_from(IDEMPOTENCY_KEEP.as_millis()).unwrap_or(i64::MAX)])?;
            let admitted = queue::admit(c, settings, now, ttl)?;
            Ok(SweepReport { holds_expired: holds as u64, tokens_expired: tokens as u64, admitted })
        })
    }
}
