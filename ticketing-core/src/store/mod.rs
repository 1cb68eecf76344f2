//! Database access behind one seam. A use case runs its statements on a [`Conn`] (either
//! backend's connection) inside a transaction the [`Store`] opens:
//!
//! - [`Store::read`]: one consistent snapshot (an SQLite reader connection; on PostgreSQL a
//!   pooled connection in a `REPEATABLE READ, READ ONLY` transaction);
//! - [`Store::submit`]: a write, answered after its commit. On SQLite every write of the
//!   process goes through one writer thread that commits them in batches (group commit, see
//!   `sqlite`); on PostgreSQL each write is a `READ COMMITTED` transaction on a pooled
//!   connection, run by one of as many writer threads as the pool has connections, and the
//!   contended rows are locked or version-checked by the statements themselves (see
//!   `postgres`) — writes queued on the same contended rows share one transaction and commit.
//!
//! A request never holds two connections at once: a read returns its connection before a
//! write is queued, and a write runs whole on the one connection of its writer.

mod conn;
pub(crate) mod postgres;
mod sqlite;

use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_channel::oneshot;

pub(crate) use conn::{params, Conn, Row, ToValue, Value};
pub use postgres::scratch::ScratchSchema;

use crate::clock::SyncedClock;
use crate::config::{Config, Database};
use crate::error::{Error, Result};

/// A write waiting for a writer.
pub(crate) trait WriteJob: Send {
    /// Runs the write; true when it succeeded (its savepoint is kept).
    fn run(&mut self, conn: &Conn<'_>) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, commit: Result<()>);
    /// True when the job runs in its own savepoint (the default): a failure undoes just it.
    /// A job that writes only after all its checks passed, and can fail after writing only
    /// on a database error, may run bare; if it ever fails after changing a row, the whole
    /// batch is rolled back and fails, as when a commit fails. (These are the queue's writes:
    /// on PostgreSQL one queue writer per node runs them in batches, see `postgres`.)
    fn guarded(&self) -> bool {
        true
    }
    /// The job's own error, once it has run and failed (what its batch fails with when the
    /// failure rolled the whole batch back).
    fn error(&self) -> Option<Error> {
        None
    }
    /// The contended rows the write takes first, when a strategy names them: on PostgreSQL
    /// writes with the same key queued together run in one transaction (see
    /// `postgres::write_queue`). SQLite's one writer batches every write anyway.
    fn batch_key(&self) -> Option<BatchKey> {
        None
    }
}

/// Names the contended rows a write locks or version-checks first (a hash of the strategy's
/// resource list): writes with equal keys contend for the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct BatchKey(pub u64);

struct Pending<T, F> {
    body: Option<F>,
    result: Option<Result<T>>,
    reply: Option<oneshot::Sender<Result<T>>>,
    guarded: bool,
    key: Option<BatchKey>,
}

impl<T: Send, F: FnOnce(&Conn<'_>) -> Result<T> + Send> WriteJob for Pending<T, F> {
    fn run(&mut self, conn: &Conn<'_>) -> bool {
        let Some(body) = self.body.take() else { return false };
        let result = catch_unwind(AssertUnwindSafe(|| body(conn)))
            .unwrap_or_else(|_| Err(Error::Internal("a write panicked; it was rolled back".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<()>) {
        let answer = match (commit, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(e), Some(Err(own))) => Err(if matches!(own, Error::Internal(_)) { e } else { own }),
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(Error::Internal("write was never run".into())),
        };
        // The caller may have dropped its answer (a cancelled request); the write stands.
        if let Some(reply) = self.reply {
            let _ = reply.send(answer);
        }
    }

    fn guarded(&self) -> bool {
        self.guarded
    }

    fn batch_key(&self) -> Option<BatchKey> {
        self.key
    }

    fn error(&self) -> Option<Error> {
        match &self.result {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }
}

/// The database: the backend chosen at start-up. A cheap handle: clones share it, and its
/// writers stop when the last clone is gone.
#[derive(Clone)]
pub(crate) struct Store(Arc<Backend>);

enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens (creating and migrating when needed) the database of `config`. The writers run
    /// the [`Hooks`] around every commit. On PostgreSQL `clock` (when given) is kept on the
    /// database server's clock; SQLite's processes share one machine's clock and ignore it.
    pub fn open(config: &Config, hooks: Hooks, clock: Option<Arc<SyncedClock>>) -> Result<Store> {
        Ok(Store(Arc::new(match &config.db {
            Database::Sqlite(path) => Backend::Sqlite(sqlite::SqliteStore::open(path, config.durability, hooks)?),
            Database::Postgres(url) => Backend::Postgres(postgres::PgStore::open(url, config, hooks, clock)?),
        })))
    }

    /// Opens the existing database of `config` for reading only: nothing is created, migrated
    /// or written; every write fails with `Error::Setup`. The database must have this build's
    /// schema. On PostgreSQL `clock` (when given) is set to the database's once.
    pub fn open_read_only(config: &Config, clock: Option<Arc<SyncedClock>>) -> Result<Store> {
        Ok(Store(Arc::new(match &config.db {
            Database::Sqlite(path) => Backend::Sqlite(sqlite::SqliteStore::open_read_only(path, config.durability)?),
            Database::Postgres(url) => Backend::Postgres(postgres::PgStore::open_read_only(url, config, clock)?),
        })))
    }

    /// The database connections of this process, now (`None` on SQLite: one file, no pool,
    /// no round trip).
    pub fn stats(&self) -> Option<DbStats> {
        match &*self.0 {
            Backend::Sqlite(_) => None,
            Backend::Postgres(p) => Some(p.stats()),
        }
    }

    /// Runs `f` in a read transaction (one consistent snapshot) on a pooled connection.
    pub fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        match &*self.0 {
            Backend::Sqlite(s) => s.read(f),
            Backend::Postgres(p) => p.read(f),
        }
    }

    /// A number that changes whenever anyone has committed a change since the last call (see
    /// `SqliteStore::version`); `None` when it cannot tell at once — always on PostgreSQL,
    /// which has no such counter — and the caller reads the database instead.
    pub fn version(&self) -> Option<u64> {
        match &*self.0 {
            Backend::Sqlite(s) => s.version(),
            Backend::Postgres(_) => None,
        }
    }

    /// Runs `f` as a write; returns once it is committed.
    pub fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<T> + Send + 'static,
    {
        self.submit(f)?.wait()
    }

    /// Hands `f` to a writer and returns at once; the [`Answer`] resolves when it is
    /// committed (or failed).
    pub fn submit<T, F>(&self, f: F) -> Result<Answer<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<T> + Send + 'static,
    {
        self.submit_with(f, true, None)
    }

    /// [`Store::submit`] for a write on the contended rows `key` names (if any): on PostgreSQL
    /// it may share its transaction and commit with other writes of the same key (see
    /// `postgres::write_queue`), each in its own savepoint.
    pub fn submit_keyed<T, F>(&self, key: Option<BatchKey>, f: F) -> Result<Answer<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<T> + Send + 'static,
    {
        self.submit_with(f, true, key)
    }

    /// [`Store::submit`] for a write that checks everything before its first change and can
    /// fail after it only on a database error: on SQLite it runs without a savepoint of its
    /// own (see [`WriteJob::guarded`]); on PostgreSQL it goes to the node's queue writer, which
    /// commits such writes in batches. The queue's hot writes (issue, status, leave) are such
    /// writes.
    pub fn submit_unguarded<T, F>(&self, f: F) -> Result<Answer<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<T> + Send + 'static,
    {
        self.submit_with(f, false, None)
    }

    fn submit_with<T, F>(&self, f: F, guarded: bool, key: Option<BatchKey>) -> Result<Answer<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit_job(Box::new(Pending {
            body: Some(f),
            result: None,
            reply: Some(reply),
            guarded,
            key,
        }))?;
        Ok(Answer::waiting(answer))
    }

    /// Queues a job that answers its callers itself (see [`WriteJob::finish`]).
    pub(crate) fn submit_job(&self, job: Box<dyn WriteJob>) -> Result<()> {
        match &*self.0 {
            Backend::Sqlite(s) => s.submit_job(job),
            Backend::Postgres(p) => p.submit_job(job),
        }
    }
}

/// A step a writer runs inside a write's transaction, just before its commit.
pub(crate) type BatchStep = Box<dyn Fn(&Conn<'_>) -> Result<()> + Send + Sync>;

/// What the writers do around each commit (a batch on SQLite, a write on PostgreSQL).
pub(crate) struct Hooks {
    /// Last step before every commit, inside its transaction (work that writes left to it).
    /// A failure rolls the transaction back and fails it.
    pub before_commit: BatchStep,
    /// Publish what other threads watch (the queue's `admitted_through`): on SQLite after
    /// every commit; on PostgreSQL after a commit of this node that admitted someone, and
    /// whenever any node's did (the listener's notification, see `postgres::listen`). Once at
    /// start on both.
    pub after_commit: Box<dyn Fn(&Conn<'_>) + Send + Sync>,
}

/// A node's database connections at one moment (PostgreSQL), for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbStats {
    /// Most connections the pool opens (`--db-pool`).
    pub pool_size: u32,
    /// Connections open now.
    pub pool_open: u32,
    /// Open connections no one is using.
    pub pool_idle: u32,
    /// Reads and writes waiting for a connection.
    pub pool_waiting: u64,
    /// Writes queued for a writer thread.
    pub writes_queued: u64,
    /// The last round trip to the database (the clock reading, once a second).
    pub round_trip: Option<std::time::Duration>,
    /// Writes committed in the transaction of an earlier write on the same contended rows,
    /// instead of a commit of their own (see `postgres::write_queue`).
    pub writes_grouped: u64,
    /// Admission notifications received (`LISTEN`).
    pub notifications: u64,
    /// Times the listening connection was made again after losing the database.
    pub reconnects: u64,
}

thread_local! {
    /// Set by a write that freed a queue slot and left admission to [`Hooks::before_commit`]
    /// on the same writer thread (one walk of the queue for every leave of an SQLite batch).
    static ADMIT_DUE: Cell<bool> = const { Cell::new(false) };
}

thread_local! {
    /// Set by a PostgreSQL write that admitted someone: after its commit the writer publishes
    /// the queue at once, so this node's own waiters wake without the notification's round
    /// trip (the other nodes learn it from the notification).
    static ADMITTED: Cell<bool> = const { Cell::new(false) };
}

/// Marks the running write as one that admitted waiters.
pub(crate) fn mark_admitted() {
    ADMITTED.with(|a| a.set(true));
}

/// True (once) when the write just run on this thread admitted waiters.
pub(crate) fn take_admitted() -> bool {
    ADMITTED.with(|a| a.replace(false))
}

/// Asks the writer running this write to admit waiters before it commits.
pub(crate) fn admit_before_commit() {
    ADMIT_DUE.with(|due| due.set(true));
}

/// True (once) when a write on this writer thread asked for an admission.
pub(crate) fn take_admit_due() -> bool {
    ADMIT_DUE.with(|due| due.replace(false))
}

/// The outcome of a use case whose write may still be in the writer's queue: `.await` it from
/// async code (no thread waits for the commit), or [`Answer::wait`] from a plain thread.
#[must_use = "an answer does nothing unless awaited or waited for"]
pub struct Answer<T>(State<T>);

enum State<T> {
    Ready(Option<Result<T>>),
    Waiting(oneshot::Receiver<Result<T>>),
    /// Work still to do when polled (a write under Redis locks: acquire, decide, commit).
    Later(Pin<Box<dyn Future<Output = Result<T>> + Send>>),
}

impl<T> Answer<T> {
    /// An answer known already (a read-only path, or a write done under a Redis lock).
    pub fn ready(result: Result<T>) -> Answer<T> {
        Answer(State::Ready(Some(result)))
    }

    /// An answer that comes over `rx`.
    pub(crate) fn waiting(rx: oneshot::Receiver<Result<T>>) -> Answer<T> {
        Answer(State::Waiting(rx))
    }

    /// An answer that `work` computes as it is polled (awaited or waited for). Dropping the
    /// answer drops the work.
    pub(crate) fn later(work: impl Future<Output = Result<T>> + Send + 'static) -> Answer<T> {
        Answer(State::Later(Box::pin(work)))
    }

    /// Blocks this thread until the answer is known.
    pub fn wait(self) -> Result<T> {
        let mut this = self;
        if let State::Ready(result) = &mut this.0 {
            return result.take().unwrap_or_else(|| Err(answered_twice()));
        }
        let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(result) = Pin::new(&mut this).poll(&mut cx) {
                return result;
            }
            std::thread::park();
        }
    }
}

// The value is never pinned in place (it is moved out whole), so the answer moves freely.
impl<T> Unpin for Answer<T> {}

impl<T> Future for Answer<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match &mut self.get_mut().0 {
            State::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| Err(answered_twice()))),
            State::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or_else(|_| Err(writer_stopped()))),
            State::Later(work) => work.as_mut().poll(cx),
        }
    }
}

struct Unparker(std::thread::Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

fn writer_stopped() -> Error {
    Error::Internal("the writer thread has stopped".into())
}

fn answered_twice() -> Error {
    Error::Internal("an answer was polled after it was ready".into())
}
