//! Test-only pause points in the redis strategy, compiled only with the `test-hooks` feature
//! (the crate's own tests turn it on; release builds carry none of this).
//!
//! A test arms a one-shot pause on one resource of one [`Ticketing`]; the next request that holds
//! that resource's lock stops at the chosen point until the test resumes it — long enough for
//! its lease to run out and another request to take the lock, as a GC pause or a slow disk would.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::ticketing::Ticketing;

/// Where a lock holder stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Every lock granted, nothing read yet.
    AfterAcquire,
    /// The plan decided (its reads done), nothing written yet.
    BeforeApply,
}

/// A paused holder never waits longer than this for its test, so a failing test cannot hang.
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

struct Armed {
    key: String,
    point: Point,
    paused: Sender<()>,
    resume: Receiver<()>,
}

static ARMED: Mutex<Vec<Armed>> = Mutex::new(Vec::new());

/// The test's handle on an armed pause.
#[derive(Debug)]
pub struct Pause {
    paused: Receiver<()>,
    resume: Sender<()>,
}

impl Pause {
    /// Waits until a holder has stopped at the point; false if none did within `timeout`.
    pub fn wait_paused(&self, timeout: Duration) -> bool {
        self.paused.recv_timeout(timeout).is_ok()
    }

    /// Lets the paused holder go on.
    pub fn resume(self) {
        let _ = self.resume.send(());
    }
}

/// Arms a one-shot pause: the next request of `t` holding the lock on `resource` (e.g.
/// `seat:3`, `wallet:7`) stops at `point`. Panics unless `t` runs the redis strategy.
pub fn pause_next(t: &Ticketing, resource: &str, point: Point) -> Pause {
    let (paused_tx, paused_rx) = crossbeam_channel::bounded(1);
    let (resume_tx, resume_rx) = crossbeam_channel::bounded(1);
    ARMED.lock().push(Armed {
        key: lock_key(t, resource),
        point,
        paused: paused_tx,
        resume: resume_rx,
    });
    Pause {
        paused: paused_rx,
        resume: resume_tx,
    }
}

/// The Redis key of the lock on `resource` under `t`. Panics unless `t` runs the redis strategy.
pub fn lock_key(t: &Ticketing, resource: &str) -> String {
    t.inner
        .strategy
        .lock_key(resource)
        .unwrap_or_else(|| panic!("lock_key needs the redis strategy, not {}", t.strategy()))
}

/// Called by the strategy at `point` with the keys it holds: stops here if a pause is armed.
pub(crate) fn pause_point<'a>(point: Point, held: impl Iterator<Item = &'a str>) {
    let armed = {
        let mut armed = ARMED.lock();
        let held: Vec<&str> = held.collect();
        let found = armed
            .iter()
            .position(|a| a.point == point && held.contains(&a.key.as_str()));
        found.map(|i| armed.remove(i))
    };
    if let Some(armed) = armed {
        let _ = armed.paused.send(());
        let _ = armed.resume.recv_timeout(LONGEST_PAUSE);
    }
}
