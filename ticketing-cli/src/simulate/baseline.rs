//! This machine's raw SQLite commit rate for the journey's hot statement — the conditional seat
//! update — with the run's durability, on one connection, one statement per transaction. The
//! simulator prints each run's reservation throughput as a fraction of it: how much of the
//! disk's commit budget the whole stack (queue checks, strategy, group commit) turns into holds.
//! Above 100% means group commit carries several holds per fsync.

use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use serde::Serialize;
use ticketing_core::Durability;

/// The statement measured (the same shape the core runs to hold a seat).
pub const HOT_STATEMENT: &str = "UPDATE seats SET status = 'HELD', held_until = ?2, version = version + 1 \
     WHERE id = ?1 AND version = ?3";

/// The baseline figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    /// Committed single-statement transactions per second.
    pub commits_per_second: f64,
    /// Commits measured.
    pub commits: u64,
    /// `full` or `normal`.
    pub durability: String,
    /// The statement.
    pub statement: &'static str,
}

/// Measures for about `budget` (at most 20,000 commits) on a fresh file in `dir`.
pub fn measure(dir: &std::path::Path, durability: Durability, budget: Duration) -> anyhow::Result<Baseline> {
    let path = dir.join("baseline.db");
    let conn = Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        },
    )?;
    conn.execute_batch(
        "CREATE TABLE seats (id INTEGER PRIMARY KEY, status TEXT NOT NULL, held_until INTEGER, version INTEGER NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
         INSERT INTO seats SELECT i, 'AVAILABLE', NULL, 0 FROM n;",
    )?;
    let mut stmt = conn.prepare(HOT_STATEMENT)?;
    let mut versions = [0i64; 100];
    let started = Instant::now();
    let mut commits = 0u64;
    while started.elapsed() < budget && commits < 20_000 {
        let seat = (commits % 100) as usize;
        // Autocommit: each execute is its own transaction, committed (and synced) on return.
        let changed = stmt.execute(params![seat as i64 + 1, commits as i64, versions[seat]])?;
        anyhow::ensure!(changed == 1, "the baseline's conditional update matched no row");
        versions[seat] += 1;
        commits += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(stmt);
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("baseline.db{suffix}")));
    }
    Ok(Baseline {
        commits_per_second: commits as f64 / elapsed.max(1e-9),
        commits,
        durability: match durability {
            Durability::Full => "full".into(),
            Durability::Normal => "normal".into(),
        },
        statement: HOT_STATEMENT,
    })
}
