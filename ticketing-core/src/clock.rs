//! Time, injected. Every expiry decision reads a [`Clock`]; tests use [`ManualClock`] and move
//! time forward instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// A point in time, in milliseconds since the Unix epoch (UTC). Serializes as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// `self + d`.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Whole milliseconds from `self` until `later` (0 when `later` is not later).
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0 - self.0).unwrap_or(0))
    }

    /// RFC 3339 in UTC with seconds, e.g. `2026-12-24T19:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(Utc::now().timestamp_millis())
    }
}

/// The wall clock set to another clock's reading: this machine's clock plus an offset that a
/// sync keeps up to date. On PostgreSQL every node decides expiry by the database server's
/// clock this way (see `store::postgres::listen`), so nodes whose own clocks differ still agree
/// on when a hold or a token runs out, to within the sync's error.
#[derive(Debug, Default)]
pub struct SyncedClock {
    offset_ms: AtomicI64,
}

impl SyncedClock {
    /// Takes a reading of the reference clock, `reference`, made between the local readings
    /// `before` and `after`: the offset is measured against their midpoint, so its error is
    /// at most half the round trip.
    pub fn sync(&self, before: Timestamp, reference: Timestamp, after: Timestamp) {
        let mid = before.0 + (after.0 - before.0) / 2;
        self.offset_ms.store(reference.0 - mid, Ordering::Relaxed);
    }

    /// Milliseconds this clock runs ahead of the machine's (negative: behind).
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

impl Clock for SyncedClock {
    fn now(&self) -> Timestamp {
        Timestamp(SystemClock.now().0 + self.offset_ms())
    }
}

/// A clock that moves only when told to (for tests).
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(AtomicI64::new(start.0))
    }

    /// Moves time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0
            .fetch_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        // 2026-12-24T19:00:00Z: a fixed, readable start for snapshots.
        ManualClock::new(Timestamp(1_798_138_800_000))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}
