//! SQLite access: connection set-up, migrations, a pool of reader connections and the
//! group-commit writer.
//!
//! All writes of one process go through one writer thread. It takes every write waiting in its
//! queue, runs each in its own SAVEPOINT inside one `BEGIN IMMEDIATE` transaction, commits once
//! and only then answers each caller. A failed write rolls back to its savepoint and changes
//! nothing; a failed commit fails every write of the batch. So every acknowledged write is on
//! disk (one fsync per batch with `synchronous=FULL`), and throughput is not bounded by the
//! disk's fsync rate. Other processes (the TUI, admin commands) write through their own writer
//! and meet ours at SQLite's write lock.

pub(crate) mod access;
pub(crate) mod schema;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use futures_channel::oneshot;
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};

use crate::config::Durability;
use crate::error::{Error, Result};

/// The most writes one commit carries.
const MAX_BATCH: usize = 2048;
/// How long a connection waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A write waiting for the writer thread.
pub(crate) trait WriteJob: Send {
    /// Runs the write; true when it succeeded (its savepoint is kept).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, commit: Result<()>);
    /// True when the job runs in its own savepoint (the default): a failure undoes just it.
    /// A job that writes only after all its checks passed, and can fail after writing only
    /// on a database error, may run bare; if it ever fails after changing a row, the whole
    /// batch is rolled back and fails, as when a commit fails.
    fn guarded(&self) -> bool {
        true
    }
}

struct Pending<T, F> {
    body: Option<F>,
    result: Option<Result<T>>,
    reply: Option<oneshot::Sender<Result<T>>>,
    guarded: bool,
}

impl<T: Send, F: FnOnce(&Connection) -> Result<T> + Send> WriteJob for Pending<T, F> {
    fn run(&mut self, conn: &Connection) -> bool {
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
}

/// The database: reader connections and the writer thread. A cheap handle: clones share
/// them, and the writer stops when the last clone is gone.
#[derive(Clone)]
pub(crate) struct Store(Arc<Shared>);

pub(crate) struct Shared {
    path: PathBuf,
    durability: Durability,
    /// Opened by [`Store::open_read_only`]: no writer, and every read on a fresh read-only
    /// connection (see [`access::open_read_only`] for why not a pooled one).
    read_only: bool,
    readers: Mutex<Vec<Connection>>,
    /// Asked only for `PRAGMA data_version` (see [`Store::version`]); opened on first use.
    watch: Mutex<Option<Connection>>,
    writer: Option<Sender<Box<dyn WriteJob>>>,
    writer_thread: Option<JoinHandle<()>>,
}

impl std::ops::Deref for Store {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Store {
    /// Opens (creating and migrating when needed) the database at `path`. The writer runs
    /// the [`Hooks`] on its connection around every batch.
    pub fn open(path: &Path, durability: Durability, hooks: Hooks) -> Result<Store> {
        access::check(path, access::Access::ReadWrite)?;
        let mut conn = open_connection(path, durability, true).map_err(|e| access::explain_create(path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| access::open_error(path, e))?;
        schema::migrate(&mut conn)?;
        (hooks.after_commit)(&conn);
        let (tx, rx) = crossbeam_channel::unbounded::<Box<dyn WriteJob>>();
        let writer_thread = std::thread::Builder::new()
            .name("ticketing-writer".into())
            .spawn(move || write_loop(conn, rx, hooks))
            .map_err(|e| Error::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Store(Arc::new(Shared {
            path: path.to_path_buf(),
            durability,
            read_only: false,
            readers: Mutex::new(Vec::new()),
            watch: Mutex::new(None),
            writer: Some(tx),
            writer_thread: Some(writer_thread),
        })))
    }

    /// Opens the existing database at `path` for reading only: nothing is created, migrated
    /// or written (not even the `-wal`/`-shm` side files of an idle database), and there is no
    /// writer: every write fails with [`Error::Setup`]. The database must have this build's
    /// schema.
    pub fn open_read_only(path: &Path, durability: Durability) -> Result<Store> {
        access::check(path, access::Access::ReadOnly)?;
        let conn = access::open_read_only(path)?;
        access::check_schema(path, &conn, schema::SCHEMA_VERSION)?;
        Ok(Store(Arc::new(Shared {
            path: path.to_path_buf(),
            durability,
            read_only: true,
            readers: Mutex::new(Vec::new()),
            watch: Mutex::new(None),
            writer: None,
            writer_thread: None,
        })))
    }

    /// Runs `f` in a read transaction (one consistent snapshot) on a pooled connection.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = match self.readers.lock().pop() {
            Some(conn) => conn,
            None if self.read_only => access::open_read_only(&self.path)?,
            None => open_connection(&self.path, self.durability, false)?,
        };
        exec(&conn, "BEGIN")?;
        let result = f(&conn);
        let end = exec(&conn, "COMMIT");
        if end.is_ok() && !self.read_only {
            self.readers.lock().push(conn);
        }
        let value = result?;
        end?;
        Ok(value)
    }

    /// The version of the database's committed state: it changes whenever any connection, of
    /// this process or another, has committed a change since the last call, and only then
    /// (SQLite's `PRAGMA data_version`, read on one connection kept for it, so versions of one
    /// store compare). About a microsecond and a half, and it waits for nothing but another
    /// thread's call: `None` when it cannot tell at once (SQLite is busy, or the connection
    /// cannot be opened), and the caller reads the database instead. Versions are only ever
    /// compared for equality.
    pub fn version(&self) -> Option<u64> {
        if self.read_only {
            // A read-only store keeps no connection open between reads.
            return None;
        }
        let mut watch = self.watch.lock();
        if watch.is_none() {
            let conn = open_connection(&self.path, self.durability, false).ok()?;
            conn.busy_timeout(Duration::ZERO).ok()?;
            *watch = Some(conn);
        }
        let conn = watch.as_ref()?;
        let version = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)));
        version.ok().map(|v| v as u64)
    }

    /// Runs `f` in the writer's next batch; returns once its batch is committed.
    pub fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(f)?.wait()
    }

    /// Hands `f` to the writer's next batch and returns at once; the [`Answer`] resolves when
    /// its batch is committed (or failed).
    pub fn submit<T, F>(&self, f: F) -> Result<Answer<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit_with(f, true)
    }

    /// [`Store::submit`] for a write that checks everything before its first change and can
    /// fail after it only on a database error: it runs without a savepoint of its own (see
    /// [`WriteJob::guarded`]). The queue's hot writes (issue, leave) are such writes.
    pub fn submit_unguarded<T, F>(&self, f: F) -> Result<Answer<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit_with(f, false)
    }

    fn submit_with<T, F>(&self, f: F, guarded: bool) -> Result<Answer<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit_job(Box::new(Pending {
            body: Some(f),
            result: None,
            reply: Some(reply),
            guarded,
        }))?;
        Ok(Answer::waiting(answer))
    }

    /// Queues a job that answers its callers itself (see [`WriteJob::finish`]).
    pub(crate) fn submit_job(&self, job: Box<dyn WriteJob>) -> Result<()> {
        self.writer
            .as_ref()
            .ok_or_else(|| Error::Setup(format!("{} was opened read-only", self.path.display())))?
            .send(job)
            .map_err(|_| Error::Internal("the writer thread has stopped".into()))
    }
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

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what it has, then stop.
        self.writer.take();
        if let Some(handle) = self.writer_thread.take() {
            let _ = handle.join();
        }
    }
}

fn open_connection(path: &Path, durability: Durability, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::Internal(format!("cannot open database {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Query-planner stability: plans never depend on bound values. Without it SQLite marks
    // statements that touch a partial index (or take a LIMIT parameter) to be re-prepared
    // whenever their bindings are cleared — which the statement cache does on every reuse —
    // and re-parsing cost a fifth of the CPU of a queue rush. Our queries pick their index by
    // their text (`+column` where it matters), not by parameter values.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // No memory-mapped I/O: the file grows with every batch of new tokens, and each growth made
    // every connection unmap and re-map it (a TLB shoot-down on every core, then page faults
    // to map the pages back), which cost a sixth of a queue rush's CPU. SQLite's own page
    // cache (up to 32 MB per connection, filled only as pages are read) serves reads without it.
    conn.pragma_update(None, "cache_size", -32768)?;
    Ok(conn)
}

/// Runs a transaction-control statement from the statement cache (they run on every read and
/// write: parsing them each time was measurable).
pub(crate) fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// A step the writer runs inside a batch's transaction.
pub(crate) type BatchStep = Box<dyn Fn(&Connection) -> Result<()> + Send>;

/// What the writer does around each batch.
pub(crate) struct Hooks {
    /// Last step of every batch, inside its transaction (work that jobs left to the batch).
    /// A failure rolls the batch back and fails it.
    pub before_commit: BatchStep,
    /// After every commit (and once at start): publish what other threads watch.
    pub after_commit: Box<dyn Fn(&Connection) + Send>,
}

fn write_loop(conn: Connection, jobs: Receiver<Box<dyn WriteJob>>, hooks: Hooks) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let commit = run_batch(&conn, &mut batch, &hooks);
        if commit.is_ok() {
            (hooks.after_commit)(&conn);
        }
        for job in batch {
            job.finish(commit.clone());
        }
    }
    // Leave the WAL folded into the main file for a tidy close.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>], hooks: &Hooks) -> Result<()> {
    exec(conn, "BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        if !job.guarded() {
            // No savepoint: a savepoint copies every page the job touches that an earlier job
            // of the batch changed, a sixth of the writer's time in a queue rush.
            let before = conn.total_changes();
            if !job.run(conn) && conn.total_changes() != before {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(Error::Internal(
                    "a queue write failed after changing rows; its batch was rolled back".into(),
                ));
            }
            continue;
        }
        let step = exec(conn, "SAVEPOINT job").and_then(|()| {
            if job.run(conn) {
                exec(conn, "RELEASE job")
            } else {
                exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
            }
        });
        if let Err(e) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
    }
    if let Err(e) = (hooks.before_commit)(conn) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    if let Err(e) = exec(conn, "COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn store(dir: &tempfile::TempDir) -> Store {
        let hooks = Hooks {
            before_commit: Box::new(|_| Ok(())),
            after_commit: Box::new(|_| {}),
        };
        let store = Store::open(&dir.path().join("s.db"), Durability::Full, hooks).unwrap();
        store
            .write(|c| Ok(c.execute_batch("CREATE TABLE IF NOT EXISTS t (x INTEGER)")?))
            .unwrap();
        store
    }

    fn count(store: &Store) -> i64 {
        store
            .read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .unwrap()
    }

    /// Occupies the writer with a job that runs until the sender is used, so the jobs
    /// submitted meanwhile are batched together.
    fn hold_writer(store: &Store) -> (crossbeam_channel::Sender<()>, Answer<()>) {
        let (release, gate) = crossbeam_channel::bounded::<()>(0);
        let held = store
            .submit(move |_| {
                gate.recv().unwrap();
                Ok(())
            })
            .unwrap();
        (release, held)
    }

    /// A bare job that fails after writing takes its whole batch down: nothing of it, nor of
    /// the jobs batched with it, is committed, and each caller gets an error.
    #[test]
    fn an_unguarded_failure_after_a_change_rolls_the_batch_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        // Hold the writer so the next two jobs land in one batch.
        let (release, held) = hold_writer(&store);
        let good = store
            .submit(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
            .unwrap();
        let bad = store
            .submit_unguarded(|c| {
                c.execute("INSERT INTO t VALUES (2)", [])?;
                Err::<(), _>(Error::Internal("boom".into()))
            })
            .unwrap();
        release.send(()).unwrap();
        // (The held job may have been taken alone or with the other two.)
        let _ = held.wait();
        assert!(good.wait().is_err());
        assert!(bad.wait().is_err());
        assert_eq!(count(&store), 0);
        // The writer goes on.
        store
            .submit_unguarded(|c| Ok(c.execute("INSERT INTO t VALUES (3)", [])?))
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(count(&store), 1);
    }

    /// A bare job that fails before changing anything fails alone.
    #[test]
    fn an_unguarded_failure_before_any_change_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let (release, held) = hold_writer(&store);
        let refused = store
            .submit_unguarded(|_| Err::<(), _>(Error::invalid("x", "refused")))
            .unwrap();
        let good = store
            .submit(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
            .unwrap();
        release.send(()).unwrap();
        held.wait().unwrap();
        assert!(matches!(refused.wait(), Err(Error::InvalidInput { .. })));
        assert_eq!(good.wait().unwrap(), 1);
        assert_eq!(count(&store), 1);
    }
}
