//! Whether a database file can be used the way a command needs it, said in the operator's
//! words before SQLite touches it; and read-only connections, which never write a byte.
//!
//! SQLite's own answers are poor for an operator: it turns a 0-byte file into a database
//! without a word, opens a read-only file "for reading and writing" and fails only at the first
//! write, and reports a missing directory as "unable to open database file". Every problem
//! found here is an [`Error::Setup`]: something to fix before running.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// How a command uses the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads only: the file must already be a database; nothing is created or changed.
    ReadOnly,
    /// Reads and writes: the file is created when missing and must be writable.
    ReadWrite,
}

/// Checks `path` for `access` without creating or changing anything.
pub(crate) fn check(path: &Path, access: Access) -> Result<()> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return match access {
                Access::ReadOnly => Err(Error::Setup(format!(
                    "{shown} does not exist; read commands never create a database \
                     (a writing command or `serve` creates it)"
                ))),
                // Creating it is SQLite's job; `explain_create` words a failure.
                Access::ReadWrite => Ok(()),
            };
        }
        Err(e) => return Err(Error::Setup(format!("cannot read {shown}: {e}"))),
    };
    if meta.is_dir() {
        return Err(Error::Setup(format!("{shown} is a directory, not a database file")));
    }
    if meta.len() == 0 {
        return Err(Error::Setup(format!(
            "{shown} is empty (0 bytes), not a database; delete it, or name a file that does not \
             exist to create a new database"
        )));
    }
    let mut header = [0u8; 16];
    let read = File::open(path).and_then(|mut f| f.read_exact(&mut header));
    match read {
        Ok(()) if &header == SQLITE_HEADER => {}
        Ok(()) => return Err(not_sqlite(path)),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Err(not_sqlite(path)),
        Err(e) => return Err(Error::Setup(format!("cannot read {shown}: {e}"))),
    }
    if access == Access::ReadWrite {
        // Opening for writing without create or truncate changes nothing; it is the only
        // question that gets the operating system's own answer (read-only file system,
        // permission denied).
        OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::Setup(format!("cannot write {shown}: {}", io_words(&e))))?;
    }
    Ok(())
}

/// Words a failure of SQLite to create `path` by asking the operating system the same thing.
pub(crate) fn explain_create(path: &Path, sqlite: Error) -> Error {
    if path.exists() {
        return sqlite;
    }
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Err(e) => Error::Setup(format!("cannot create {}: {}", path.display(), io_words(&e))),
        Ok(_) => {
            // The operating system allows it after all: not the cause. Leave no file behind.
            let _ = std::fs::remove_file(path);
            sqlite
        }
    }
}

/// A connection that cannot write: `SQLITE_OPEN_READ_ONLY`.
///
/// A read-only connection to a WAL database still creates the `-wal` and `-shm` side files when
/// they are missing, and cannot remove them afterwards. They are missing exactly when no
/// process has the database open (the last connection to close removes them), so then the file
/// is opened `immutable` instead, which touches nothing. A writer that starts meanwhile writes
/// into its own `-wal`, not the main file, until a checkpoint (a thousand pages later), so a
/// read on the main file stays a consistent snapshot; a later connection sees the `-wal` and
/// follows the live database.
pub(crate) fn open_read_only(path: &Path) -> Result<Connection> {
    let live = wal_path(path).exists();
    let uri = format!(
        "file:{}?mode=ro{}",
        uri_path(path),
        if live { "" } else { "&immutable=1" }
    );
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(uri, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Checks that the database has this build's schema (a read-only command cannot migrate it).
pub(crate) fn check_schema(path: &Path, conn: &Connection, expected: i64) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    let shown = path.display();
    match version {
        v if v == expected => Ok(()),
        0 => Err(Error::Setup(format!(
            "{shown} is an SQLite database without the ticketing schema; a writing command or \
             `serve` creates it"
        ))),
        v if v < expected => Err(Error::Setup(format!(
            "{shown} has schema version {v}, older than this build's {expected}; a writing \
             command or `serve` upgrades it"
        ))),
        v => Err(Error::Setup(format!(
            "{shown} has schema version {v}, newer than this build's {expected}; use a newer \
             `ticketing`"
        ))),
    }
}

/// An SQLite failure on opening or first reading `path`, in words about the file.
pub(crate) fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::{CannotOpen, NotADatabase, ReadOnly};
    match e.sqlite_error_code() {
        Some(NotADatabase) => not_sqlite(path),
        Some(ReadOnly) => Error::Setup(format!("cannot write {}: it is read-only", path.display())),
        Some(CannotOpen) => Error::Setup(format!("cannot open {}: {e}", path.display())),
        _ => Error::from(e),
    }
}

fn not_sqlite(path: &Path) -> Error {
    Error::Setup(format!("{} is not an SQLite database", path.display()))
}

/// The operating system's message without its error number ("read-only file system").
fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    text.to_lowercase()
}

fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// `path` escaped for an SQLite URI (`?` and `#` would end the path; `%` starts an escape).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_file_and_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let text = dir.path().join("notes.db");
        std::fs::write(&text, b"just some notes, long enough").unwrap();
        let missing = dir.path().join("missing.db");

        let message = |p: &Path, a| check(p, a).unwrap_err().to_string();
        assert!(message(&empty, Access::ReadWrite).contains("empty.db is empty (0 bytes)"));
        assert!(message(&text, Access::ReadOnly).ends_with("notes.db is not an SQLite database"));
        assert!(message(&missing, Access::ReadOnly).contains("missing.db does not exist"));
        assert!(check(&missing, Access::ReadWrite).is_ok());
        assert!(message(dir.path(), Access::ReadWrite).contains("is a directory"));
        // Nothing was created or changed by asking.
        assert!(!missing.exists());
        assert_eq!(std::fs::read(&empty).unwrap(), b"");
    }

    #[test]
    fn a_failed_create_is_explained_by_the_operating_system() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("t.db");
        let e = explain_create(&path, Error::Internal("unable to open database file".into()));
        assert_eq!(
            e.to_string(),
            format!("cannot create {}: no such file or directory", path.display())
        );
    }
}
