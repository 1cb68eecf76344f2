//! The writers' queue on PostgreSQL: writes wait here for a writer thread, and writes on the
//! same contended rows leave together, in one transaction and one commit.
//!
//! Why: a row lock is held until its transaction commits, and a commit waits for its WAL to
//! reach the disk (`--durability full`). Ten payments of one wallet, one transaction each,
//! therefore take at least ten disk flushes one after another, however fast the rest is —
//! `pg_test_fsync` gives 0.14 to 3.2 ms per flush on the machines we measured on (the same
//! machine 0.25 ms with a quiet disk, 3.2 ms while a build wrote), and `pgbench` running the
//! pessimistic charge's exact statements on one row from 10 clients took 4.6 and 13.6 ms per ten
//! transactions on that machine. Taking every write queued for the same
//! rows into the transaction of the one that goes first makes that one flush for all of them,
//! as SQLite's writer does for every write: the group forms by itself while a commit is in
//! flight, since a key stays *busy* (no second writer takes it) until its batch has committed.
//!
//! Writes on other rows are not held back by a busy key: a writer takes the oldest write whose
//! key is free. Writes on one key leave in the order they came.

use std::collections::{HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::super::{BatchKey, WriteJob};

/// A write and when it was queued (it fails rather than wait longer than `db_timeout`).
pub(super) struct Queued {
    pub at: Instant,
    pub job: Box<dyn WriteJob>,
}

/// Which queued writes a writer takes together.
#[derive(Debug, Clone, Copy)]
pub(super) enum Grouping {
    /// The oldest write with a free key, and up to `max - 1` more queued on the same key.
    SameKey { max: usize },
    /// The oldest write and up to `max - 1` more, whatever they write (the queue's writes,
    /// which all take the queue row first).
    Any { max: usize },
}

/// Writes waiting for a writer.
#[derive(Default)]
pub(super) struct WriteQueue {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Queued>,
    /// Keys a writer is running a batch of now.
    busy: HashSet<BatchKey>,
    closed: bool,
}

/// Writes taken together, and the key they hold busy until [`WriteQueue::done`].
pub(super) struct Batch {
    pub jobs: Vec<Queued>,
    pub key: Option<BatchKey>,
}

impl WriteQueue {
    fn state(&self) -> MutexGuard<'_, State> {
        // A writer never panics while holding the lock (jobs run outside it).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a write; false when the queue is closed.
    pub fn push(&self, job: Box<dyn WriteJob>) -> bool {
        let mut state = self.state();
        if state.closed {
            return false;
        }
        state.jobs.push_back(Queued {
            at: Instant::now(),
            job,
        });
        drop(state);
        self.changed.notify_one();
        true
    }

    /// Writes queued now.
    pub fn len(&self) -> usize {
        self.state().jobs.len()
    }

    /// No more writes: the writers finish what is queued, then [`WriteQueue::take`] returns
    /// `None`.
    pub fn close(&self) {
        self.state().closed = true;
        self.changed.notify_all();
    }

    /// The next batch, waiting for one as long as it takes; `None` once the queue is closed and
    /// empty.
    pub fn take(&self, grouping: Grouping) -> Option<Batch> {
        let mut state = self.state();
        loop {
            if let Some(batch) = state.take(grouping) {
                return Some(batch);
            }
            if state.closed && state.jobs.is_empty() {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, Duration::from_secs(1))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// The batch holding `key` has committed (or failed): the key's next writes may go.
    pub fn done(&self, key: Option<BatchKey>) {
        if let Some(key) = key {
            self.state().busy.remove(&key);
            self.changed.notify_all();
        }
    }
}

impl State {
    fn take(&mut self, grouping: Grouping) -> Option<Batch> {
        let first = self
            .jobs
            .iter()
            .position(|q| q.job.batch_key().is_none_or(|k| !self.busy.contains(&k)))?;
        let head = self.jobs.remove(first)?;
        let mut batch = Batch {
            key: None,
            jobs: Vec::new(),
        };
        match (grouping, head.job.batch_key()) {
            (Grouping::Any { max }, _) => {
                batch.jobs.push(head);
                let more = self.jobs.len().min(max - 1);
                batch.jobs.extend(self.jobs.drain(..more));
            }
            (Grouping::SameKey { max }, Some(key)) => {
                self.busy.insert(key);
                batch.key = Some(key);
                batch.jobs.push(head);
                let mut i = first;
                while i < self.jobs.len() && batch.jobs.len() < max {
                    if self.jobs[i].job.batch_key() == Some(key) {
                        batch.jobs.extend(self.jobs.remove(i));
                    } else {
                        i += 1;
                    }
                }
            }
            (Grouping::SameKey { .. }, None) => batch.jobs.push(head),
        }
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::error::Result;
    use crate::store::Conn;

    /// A job with a key and the number it was queued with, which it writes to `FINISHED` when
    /// answered.
    struct Job(Option<BatchKey>, u32);

    thread_local! {
        static FINISHED: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    impl WriteJob for Job {
        fn run(&mut self, _: &Conn<'_>) -> bool {
            true
        }
        fn finish(self: Box<Self>, _: Result<()>) {
            FINISHED.with(|f| f.borrow_mut().push(self.1));
        }
        fn batch_key(&self) -> Option<BatchKey> {
            self.0
        }
    }

    fn queue(jobs: &[(Option<u64>, u32)]) -> WriteQueue {
        let q = WriteQueue::default();
        for &(key, n) in jobs {
            assert!(q.push(Box::new(Job(key.map(BatchKey), n))));
        }
        q
    }

    /// The batch's jobs by the number each was queued with (answering them).
    fn ids(batch: Batch) -> Vec<u32> {
        for q in batch.jobs {
            q.job.finish(Ok(()));
        }
        FINISHED.with(|f| std::mem::take(&mut *f.borrow_mut()))
    }

    #[test]
    fn writes_on_one_key_leave_together_and_a_busy_key_waits() {
        let q = queue(&[(Some(1), 0), (Some(2), 1), (Some(1), 2), (None, 3), (Some(1), 4)]);
        let grouping = Grouping::SameKey { max: 32 };
        let first = q.take(grouping).unwrap();
        let key = first.key;
        assert_eq!(ids(first), [0, 2, 4], "key 1's writes, in the order they came");
        // Key 1 is busy: a write for it queued now waits; key 2 and the keyless one go.
        assert!(q.push(Box::new(Job(Some(BatchKey(1)), 5))));
        assert_eq!(ids(q.take(grouping).unwrap()), [1]);
        assert_eq!(ids(q.take(grouping).unwrap()), [3]);
        assert_eq!(q.len(), 1);
        q.done(key);
        assert_eq!(ids(q.take(grouping).unwrap()), [5]);
    }

    #[test]
    fn a_batch_is_capped_and_any_grouping_takes_every_kind() {
        let q = queue(&[(Some(7), 0), (Some(7), 1), (Some(7), 2)]);
        let batch = q.take(Grouping::SameKey { max: 2 }).unwrap();
        assert_eq!(batch.jobs.len(), 2);
        q.done(batch.key);
        let q = queue(&[(None, 0), (Some(3), 1), (None, 2)]);
        assert_eq!(q.take(Grouping::Any { max: 256 }).unwrap().jobs.len(), 3);
    }

    #[test]
    fn a_closed_queue_is_drained_then_ends() {
        let q = queue(&[(None, 0)]);
        q.close();
        assert!(!q.push(Box::new(Job(None, 1))));
        assert!(q.take(Grouping::Any { max: 1 }).is_some());
        assert!(q.take(Grouping::Any { max: 1 }).is_none());
    }
}
