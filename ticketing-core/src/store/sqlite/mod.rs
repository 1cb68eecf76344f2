//! SQLite: connection set-up, migrations, a pool of reader connections and the group-commit
//! writer.
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

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};

use super::{Conn, Hooks, WriteJob};
use crate::config::Durability;
use crate::error::{Error, Result};

/// The most writes one commit carries.
const MAX_BATCH: usize = 2048;
/// How long a connection waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An SQLite database: reader connections and the writer thread; the writer stops when this
/// is dropped.
pub(crate) struct SqliteStore {
    path: PathBuf,
    durability: Durability,
    /// Opened by [`SqliteStore::open_read_only`]: no writer, and every read on a fresh
    /// read-only connection (see [`access::open_read_only`] for why not a pooled one).
    read_only: bool,
    readers: Mutex<Vec<Connection>>,
    /// Asked only for `PRAGMA data_version` (see [`SqliteStore::version`]); opened on first use.
    watch: Mutex<Option<Connection>>,
    writer: Option<Sender<Box<dyn WriteJob>>>,
    writer_thread: Option<JoinHandle<()>>,
}

impl SqliteStore {
    /// Opens (creating and migrating when needed) the database at `path`. The writer runs
    /// the [`Hooks`] on its connection around every batch.
    pub fn open(path: &Path, durability: Durability, hooks: Hooks) -> Result<SqliteStore> {
        access::check(path, access::Access::ReadWrite)?;
        let mut conn = open_connection(path, durability, true).map_err(|e| access::explain_create(path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| access::open_error(path, e))?;
        schema::migrate(&mut conn)?;
        (hooks.after_commit)(&Conn::Sqlite(&conn));
        let (tx, rx) = crossbeam_channel::unbounded::<Box<dyn WriteJob>>();
        let writer_thread = std::thread::Builder::new()
            .name("ticketing-writer".into())
            .spawn(move || write_loop(conn, rx, hooks))
            .map_err(|e| Error::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            durability,
            read_only: false,
            readers: Mutex::new(Vec::new()),
            watch: Mutex::new(None),
            writer: Some(tx),
            writer_thread: Some(writer_thread),
        })
    }

    /// Opens the existing database at `path` for reading only: nothing is created, migrated
    /// or written (not even the `-wal`/`-shm` side files of an idle database), and there is no
    /// writer: every write fails with [`Error::Setup`]. The database must have this build's
    /// schema.
    pub fn open_read_only(path: &Path, durability: Durability) -> Result<SqliteStore> {
        access::check(path, access::Access::ReadOnly)?;
        let conn = access::open_read_only(path)?;
        access::check_schema(path, &conn, schema::SCHEMA_VERSION)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            durability,
            read_only: true,
            readers: Mutex::new(Vec::new()),
            watch: Mutex::new(None),
            writer: None,
            writer_thread: None,
        })
    }

    /// Runs `f` in a read transaction (one consistent snapshot) on a pooled connection.
    pub fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        let conn = match self.readers.lock().pop() {
            Some(conn) => conn,
            None if self.read_only => access::open_read_only(&self.path)?,
            None => open_connection(&self.path, self.durability, false)?,
        };
        exec(&conn, "BEGIN")?;
        let result = f(&Conn::Sqlite(&conn));
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

    /// Queues a job that answers its callers itself (see [`WriteJob::finish`]).
    pub(crate) fn submit_job(&self, job: Box<dyn WriteJob>) -> Result<()> {
        self.writer
            .as_ref()
            .ok_or_else(|| Error::Setup(format!("{} was opened read-only", self.path.display())))?
            .send(job)
            .map_err(|_| Error::Internal("the writer thread has stopped".into()))
    }
}

impl Drop for SqliteStore {
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
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
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
            (hooks.after_commit)(&Conn::Sqlite(&conn));
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
            if !job.run(&Conn::Sqlite(conn)) && conn.total_changes() != before {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(Error::Internal(
                    "a queue write failed after changing rows; its batch was rolled back".into(),
                ));
            }
            continue;
        }
        let step = exec(conn, "SAVEPOINT job").and_then(|()| {
            if job.run(&Conn::Sqlite(conn)) {
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
    if let Err(e) = (hooks.before_commit)(&Conn::Sqlite(conn)) {
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

    use super::super::{params, Answer, Store};
    use super::*;
    use crate::config::Config;

    fn store(dir: &tempfile::TempDir) -> Store {
        let hooks = Hooks {
            before_commit: Box::new(|_| Ok(())),
            after_commit: Box::new(|_| {}),
        };
        let store = Store::open(&Config::new(dir.path().join("s.db")), hooks, None).unwrap();
        store
            .write(|c| c.exec("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            .unwrap();
        store
    }

    fn count(store: &Store) -> i64 {
        store
            .read(|c| {
                c.prepare_cached("SELECT count(*) FROM t")?
                    .query_row(params![], |r| r.get(0))
            })
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
            .submit(|c| c.prepare_cached("INSERT INTO t VALUES (1)")?.execute(params![]))
            .unwrap();
        let bad = store
            .submit_unguarded(|c| {
                c.prepare_cached("INSERT INTO t VALUES (2)")?.execute(params![])?;
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
            .submit_unguarded(|c| c.prepare_cached("INSERT INTO t VALUES (3)")?.execute(params![]))
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
            .submit(|c| c.prepare_cached("INSERT INTO t VALUES (1)")?.execute(params![]))
            .unwrap();
        release.send(()).unwrap();
        held.wait().unwrap();
        assert!(matches!(refused.wait(), Err(Error::InvalidInput { .. })));
        assert_eq!(good.wait().unwrap(), 1);
        assert_eq!(count(&store), 1);
    }
}
