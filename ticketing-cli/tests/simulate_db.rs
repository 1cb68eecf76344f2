//! `simulate --db`: each strategy's database is kept where the user asked (`run.db` →
//! `run.pessimistic.db`, `run.optimistic.db`), opens with `admin` afterwards, and is never
//! overwritten by accident (exit 2 and nothing written, unless `--replace-db`).

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::path::Path;
use std::process::{Command, Output};

fn ticketing(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .current_dir(dir)
        .args(args)
        .env_remove("TICKETING_DB")
        .env_remove("TICKETING_STRATEGY")
        .env_remove("TICKETING_REDIS_URL")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    names.sort();
    names
}

const RUN: [&str; 7] = [
    "simulate",
    "seed-pay",
    "--strategy",
    "pessimistic,optimistic",
    "--no-baseline",
    "--db",
    "run.db",
];

#[test]
fn db_keeps_one_database_per_strategy_that_admin_opens() {
    let dir = tempfile::tempdir().unwrap();
    let out = ticketing(dir.path(), &RUN);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("databases kept: run.pessimistic.db, run.optimistic.db"),
        "{all}"
    );
    assert_eq!(files(dir.path()), ["run.optimistic.db", "run.pessimistic.db"]);

    for db in ["run.pessimistic.db", "run.optimistic.db"] {
        let check = ticketing(dir.path(), &["admin", "check", "--db", db]);
        assert_eq!(check.status.code(), Some(0), "{db}: {}", text(&check));
        assert_eq!(String::from_utf8_lossy(&check.stdout), "all invariants hold\n");
        // The race's one payment is in the kept database: 1 of 50 seats sold.
        let list = ticketing(dir.path(), &["admin", "concert", "list", "--db", db]);
        let listed = String::from_utf8_lossy(&list.stdout);
        assert_eq!(listed.matches("concert ").count(), 1, "{db}: {listed}");
        assert!(listed.contains("\"Seed concert\""), "{listed}");
        assert!(listed.contains("seats 50  available 49  held 0  sold 1"), "{listed}");
    }
}

#[test]
fn db_refuses_to_overwrite_unless_replace_db() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(ticketing(dir.path(), &RUN).status.code(), Some(0));
    let before = std::fs::read(dir.path().join("run.pessimistic.db")).unwrap();

    let again = ticketing(dir.path(), &RUN);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "error: run.pessimistic.db, run.optimistic.db already exist: pass --replace-db to replace them, or name another --db\n"
    );
    assert_eq!(
        std::fs::read(dir.path().join("run.pessimistic.db")).unwrap(),
        before,
        "untouched"
    );

    let mut replace = RUN.to_vec();
    replace.push("--replace-db");
    let out = ticketing(dir.path(), &replace);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A fresh database, not the old one with a second concert added.
    let list = ticketing(dir.path(), &["admin", "concert", "list", "--db", "run.pessimistic.db"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert_eq!(listed.matches("concert ").count(), 1, "{listed}");
    assert!(listed.contains("sold 1"), "{listed}");
}

#[test]
fn several_scenarios_keep_a_database_each_and_no_db_keeps_none() {
    let dir = tempfile::tempdir().unwrap();
    let out = ticketing(
        dir.path(),
        &[
            "simulate",
            "seed-charge",
            "seed-use",
            "--strategy",
            "optimistic",
            "--no-baseline",
            "--db",
            "many.db",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        files(dir.path()),
        ["many.seed-charge.optimistic.db", "many.seed-use.optimistic.db"]
    );

    let empty = tempfile::tempdir().unwrap();
    let out = ticketing(
        empty.path(),
        &["simulate", "seed-charge", "--strategy", "optimistic", "--no-baseline"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        files(empty.path()).is_empty(),
        "without --db the databases are temporary"
    );

    let out = ticketing(empty.path(), &["simulate", "seed-charge", "--replace-db"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--replace-db goes with --db PATH"),
        "{}",
        text(&out)
    );
    let out = ticketing(empty.path(), &["simulate", "seed-charge", "--db", "nowhere/run.db"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--db: no directory nowhere"), "{}", text(&out));
    assert!(files(empty.path()).is_empty(), "refused: nothing written");
}
