//! Arrivals on time. A virtual user's first request is timed from its arrival
//! (`t0 + arrival_of(i)`), so anything that makes the generator late is counted as the
//! system's latency, and the simulator measured itself (docs/simulator.md, "Measured against
//! an independent tool"). Three things made it late, and none does now:
//!
//! - **Creating the user at its arrival** (allocating its task, scheduling it on a worker, its
//!   first poll, its "arrived" event): a user is started up to [`READY_AHEAD`] before its
//!   arrival and waits for its go ([`Go`]).
//! - **The timers**: tokio's rounds a deadline up to its next millisecond tick, and the OS's
//!   sleeps 50 µs past its deadline (Linux's timer slack) plus the wake-up, ~90 µs in all at
//!   p50 and ~140 µs at p90 on the 2-core machine of the figures. So [`pace`] sleeps with
//!   tokio's timer to 2 ms before a go, with the OS timer to [`SPIN`] before it, and busy-waits
//!   the rest.
//! - **Waking a user's task**: a go from the pacing thread wakes a runtime worker that was
//!   asleep, ~50 µs at p50 there. So the go comes [`WAKE_AHEAD`] before the arrival, and the
//!   user, awake on its worker, waits out the rest yielding ([`until`]: other tasks and I/O
//!   go on meanwhile).
//!
//! [`pace`] runs on the thread that drives the run (`Runtime::block_on`), not on a runtime
//! worker, so its blocking waits hold no user back. Waiting costs some CPU: a busy wait of at
//! most [`SPIN`] and a yielding one of at most [`WAKE_AHEAD`] per arrival. Whatever is still
//! late (the pacing thread preempted or busy starting users in a burst, a worker busy) is
//! counted: a user's request is timed from its arrival, never from its go.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long before its arrival a user is started (to wait for its go).
pub const READY_AHEAD: Duration = Duration::from_millis(5);

/// tokio's timer wakes up to a tick (1 ms) late, more on a busy runtime: it sleeps only to
/// this long before a go.
const TICK_LEAD: Duration = Duration::from_millis(2);

/// The OS timer sleeps to this long before a go; a busy wait covers the rest.
pub const SPIN: Duration = Duration::from_micros(150);

/// A user's go comes this long before its arrival: the time to wake its worker.
pub const WAKE_AHEAD: Duration = Duration::from_micros(100);

/// A user's go: resolves [`WAKE_AHEAD`] before its arrival, or fails if the run was dropped
/// before that.
pub type Go = oneshot::Receiver<()>;

/// Starts users `0..users` with `start(index, arrival, go)` (before their arrival: see
/// [`READY_AHEAD`]) and gives each its go [`WAKE_AHEAD`] before `arrival_of(index)`, in order
/// (arrivals never decrease). Returns once every user has had its go.
pub async fn pace(users: u64, arrival_of: impl Fn(u64) -> Instant, mut start: impl FnMut(u64, Instant, Go)) {
    // Started users waiting for their go, with its instant.
    let mut ready: VecDeque<(Instant, oneshot::Sender<()>)> = VecDeque::new();
    let mut next = 0;
    loop {
        // Every go that is due first, then one more user started, so a go is never held up
        // by more than one start.
        let now = Instant::now();
        while ready.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, go)) = ready.pop_front() {
                // A user gone already (its task aborted) needs no go.
                let _ = go.send(());
            }
        }
        let upcoming = (next < users).then(|| arrival_of(next));
        if let Some(at) = upcoming.filter(|at| *at <= now + READY_AHEAD) {
            let (go, wait) = oneshot::channel();
            start(next, at, wait);
            ready.push_back((at.checked_sub(WAKE_AHEAD).unwrap_or(at), go));
            next += 1;
            continue;
        }
        // Nothing to do now: wait for the next go or the next start, whichever comes first.
        // A start is only waited for with tokio's timer when that cannot make the next go late.
        let start_at = upcoming.map(|at| at - READY_AHEAD);
        match (ready.front().map(|(at, _)| *at), start_at) {
            (None, None) => return,
            (None, Some(s)) => tokio::time::sleep_until(s).await,
            (Some(go), Some(s)) if s + TICK_LEAD < go => tokio::time::sleep_until(s).await,
            (Some(go), _) => on_time(go).await,
        }
    }
}

/// Returns at `at`, a few microseconds late at most unless this thread is preempted: tokio's
/// timer to [`TICK_LEAD`] before it (letting a cancel of the run in), then the OS timer to
/// [`SPIN`] before it, then a busy wait.
async fn on_time(at: Instant) {
    if at > Instant::now() + TICK_LEAD {
        tokio::time::sleep_until(at - TICK_LEAD).await;
    } else {
        tokio::task::yield_now().await;
    }
    let now = Instant::now();
    if at > now + SPIN {
        std::thread::sleep(at - now - SPIN);
    }
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

/// Called by a user at its go: returns at `arrival`, yielding its worker to other tasks and
/// I/O until then (so the user is awake, not being woken, when its first request is due).
pub async fn until(arrival: Instant) {
    while Instant::now() < arrival {
        tokio::task::yield_now().await;
    }
}
