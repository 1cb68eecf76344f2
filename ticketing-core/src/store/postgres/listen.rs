//! Each node's own connection to PostgreSQL, outside the pool, for two things a node must learn
//! from the database rather than from itself:
//!
//! - **Admissions made by any node.** The write that admits waiters sends
//!   `pg_notify('ticketing_admitted.<schema>', …)` in its transaction (see
//!   [`Conn::announce_admission`]); PostgreSQL delivers it to every listening node at that
//!   commit, never for a rolled-back one. The node then reads `admitted_through` once and
//!   wakes its waiters (the `Hooks::after_commit` of the writers). No node polls the queue:
//!   a slot freed on one node wakes the next waiter's task on whichever node it waits.
//! - **The database's clock.** Expiry is decided by one clock for the whole service: each
//!   node's [`SyncedClock`] is the database server's `clock_timestamp()`, read once a second
//!   and measured against the midpoint of the round trip. Its error is at most half that round
//!   trip; a reading whose round trip exceeds [`MAX_SYNC_ROUND_TRIP`] is not taken, so a node
//!   never decides by a clock more than [`CLOCK_BOUND`] away from the database's (plus the
//!   drift of its own clock over a few seconds, microseconds).
//!
//! When the connection fails (the database restarting), the thread connects again every
//! second; on reconnecting it reads `admitted_through` at once, so admissions made while it
//! was away are not missed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Manager, PgConn};
use crate::clock::{Clock, SyncedClock, SystemClock, Timestamp};
use crate::error::{Error, Result};
use crate::store::{params, Conn, Hooks};

/// How often the node's clock is set to the database's.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How far a node's clock may be from the database's: half the longest round trip taken.
pub const CLOCK_BOUND: Duration = Duration::from_millis(100);
/// A clock reading with a longer round trip than this is not taken.
pub(crate) const MAX_SYNC_ROUND_TRIP: Duration = CLOCK_BOUND.saturating_mul(2);

/// What the listener has seen, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Admission notifications received.
    pub notifications: AtomicU64,
    /// The last clock reading's round trip, in microseconds (the database's round-trip time).
    pub round_trip_micros: AtomicU64,
    /// Times the connection was made again after failing.
    pub reconnects: AtomicU64,
}

/// The listening thread; it stops (within a second) when this is dropped.
pub(crate) struct Listener {
    stop: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The channel of a schema's admissions. Channel names are identifiers: at most 63 bytes,
/// cut as the `left(…, 63)` of the notifying statement cuts them.
fn channel(schema: &str) -> String {
    let mut name = format!("ticketing_admitted.{schema}");
    while name.len() > 63 {
        name.pop();
    }
    name
}

/// Connects, listens, sets the clock and reads the queue once, then keeps doing so on a
/// thread of its own.
pub(crate) fn start(
    manager: Manager,
    hooks: Arc<Hooks>,
    clock: Option<Arc<SyncedClock>>,
    seen: Arc<Seen>,
) -> Result<Listener> {
    let first = connect(&manager, &hooks, clock.as_deref(), &seen)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    std::thread::Builder::new()
        .name("ticketing-pg-listen".into())
        .spawn(move || run(first, &manager, &hooks, clock.as_deref(), &seen, &stopping))
        .map_err(|e| Error::Internal(format!("cannot start the listening thread: {e}")))?;
    Ok(Listener { stop })
}

fn connect(manager: &Manager, hooks: &Hooks, clock: Option<&SyncedClock>, seen: &Seen) -> Result<PgConn> {
    let conn = manager.connect_plain()?;
    let schema: String = Conn::Postgres(&conn)
        .prepare_cached("SELECT current_schema()")?
        .query_row(params![], |r| r.get(0))?;
    conn.batch(&format!("LISTEN \"{}\"", channel(&schema).replace('"', "\"\"")))?;
    sync_clock(&conn, clock, seen)?;
    (hooks.after_commit)(&Conn::Postgres(&conn));
    Ok(conn)
}

fn run(first: PgConn, manager: &Manager, hooks: &Hooks, clock: Option<&SyncedClock>, seen: &Seen, stop: &AtomicBool) {
    let mut conn = Some(first);
    let mut synced = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.take() else {
            match connect(manager, hooks, clock, seen) {
                Ok(c) => {
                    seen.reconnects.fetch_add(1, Ordering::Relaxed);
                    synced = Instant::now();
                    conn = Some(c);
                }
                Err(_) => std::thread::sleep(SYNC_EVERY),
            }
            continue;
        };
        match c.notifications(SYNC_EVERY.saturating_sub(synced.elapsed())) {
            Ok(0) => {}
            Ok(n) => {
                seen.notifications.fetch_add(n, Ordering::Relaxed);
                // One read of `admitted_through` for however many arrived together.
                (hooks.after_commit)(&Conn::Postgres(&c));
            }
            Err(_) => continue,
        }
        if synced.elapsed() >= SYNC_EVERY {
            if sync_clock(&c, clock, seen).is_err() {
                continue;
            }
            synced = Instant::now();
        }
        conn = Some(c);
    }
}

/// Reads the database's clock and, when the round trip was short enough, sets `clock` to it.
pub(crate) fn sync_clock(c: &PgConn, clock: Option<&SyncedClock>, seen: &Seen) -> Result<()> {
    let started = Instant::now();
    let before = SystemClock.now();
    let reference: i64 = Conn::Postgres(c)
        .prepare_cached("SELECT CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT)")?
        .query_row(params![], |r| r.get(0))?;
    let after = SystemClock.now();
    let round_trip = started.elapsed();
    seen.round_trip_micros.store(
        u64::try_from(round_trip.as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    if let Some(clock) = clock {
        if round_trip <= MAX_SYNC_ROUND_TRIP {
            clock.sync(before, Timestamp(reference), after);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_fit_an_identifier() {
        assert_eq!(channel("public"), "ticketing_admitted.public");
        assert_eq!(channel(&"s".repeat(80)).len(), 63);
    }
}
