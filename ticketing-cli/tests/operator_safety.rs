//! An operator can run any command without fear: reads never write (whatever the environment
//! says), every refusal exits 2 naming its cause and leaves no file behind, the same cause
//! gives the same exit code in every subcommand, and the README's settings table is `--help`'s.
//! The real binary, on temp directories.

#![allow(clippy::unwrap_used)] // test code

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use serde_json::Value;

/// The binary with no `TICKETING_*` variable of the caller's environment.
fn ticketing() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketing"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TICKETING_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = ticketing();
    cmd.arg("--db").arg(db).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file of `dir` with its bytes and modification time.
fn files(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            (
                name,
                (std::fs::read(&path).unwrap(), e.metadata().unwrap().modified().unwrap()),
            )
        })
        .collect()
}

/// A database with a sale on it: one concert, a hold, a paid seat, a wallet; closed cleanly.
fn sale(dir: &Path) -> PathBuf {
    let db = dir.join("t.db");
    let mut config = ticketing_core::Config::new(&db);
    config.max_active = Some(3);
    let t = ticketing_core::Ticketing::open(config).unwrap();
    t.add_concert(ticketing_core::admin::NewConcert {
        title: "Live".into(),
        dates: vec!["2026-12-24".into()],
        seats: 10,
        price: ticketing_core::Money::from_units(50_000),
    })
    .unwrap();
    for user in 1..=2 {
        let token = t.issue_token(user).unwrap().token;
        t.reserve(ticketing_core::ReserveCmd {
            token,
            concert_option_id: 1,
            seat_id: user,
            user_id: None,
        })
        .unwrap();
    }
    t.charge(1, ticketing_core::Money::from_units(60_000)).unwrap();
    t.issue_token(3).unwrap();
    t.issue_token(4).unwrap(); // waits: max-active is 3
    db
}

const READS: &[&[&str]] = &[
    &["admin", "concert", "list"],
    &["admin", "concert", "list", "--json"],
    &["admin", "seats", "--option", "1"],
    &["admin", "queue", "--json"],
    &["admin", "token", "list", "--status", "waiting"],
    &["admin", "token", "list", "--status", "active", "--json"],
    &["admin", "reservations", "--json"],
    &["admin", "reservations", "--held", "--user", "2"],
    &["admin", "wallet", "1", "--json"],
    &["admin", "check"],
];

#[test]
fn read_commands_with_max_active_set_leave_the_database_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let db = sale(dir.path());
    let before = files(dir.path());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["t.db"],
        "closed cleanly: no side files"
    );
    for args in READS {
        for env in [&[("TICKETING_MAX_ACTIVE", "50")][..], &[("TICKETING_MAX_ACTIVE", "1")]] {
            let out = run(&db, args, env);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
            assert!(files(dir.path()) == before, "{args:?} with {env:?} changed the files");
        }
        let out = run(&db, &[&["--max-active", "50"], *args].concat(), &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            files(dir.path()) == before,
            "{args:?} --max-active 50 changed the files"
        );
    }
    let out = run(&db, &["admin", "queue", "--json"], &[("TICKETING_MAX_ACTIVE", "50")]);
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (q["maxActive"].as_u64(), q["active"].as_u64(), q["waiting"].as_u64()),
        (Some(3), Some(3), Some(1))
    );
}

#[test]
fn a_writing_command_does_not_store_max_active_either() {
    let dir = tempfile::tempdir().unwrap();
    let db = sale(dir.path());
    let out = run(&db, &["admin", "sweep", "--json"], &[("TICKETING_MAX_ACTIVE", "50")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let q: Value = serde_json::from_slice(&run(&db, &["admin", "queue", "--json"], &[]).stdout).unwrap();
    assert_eq!(
        (q["maxActive"].as_u64(), q["waiting"].as_u64()),
        (Some(3), Some(1)),
        "nobody admitted"
    );
    // The command that says so stores it.
    let out = run(&db, &["admin", "queue", "set-max-active", "4", "--json"], &[]);
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((q["maxActive"].as_u64(), q["waiting"].as_u64()), (Some(4), Some(0)));
}

#[test]
fn read_commands_work_on_a_read_only_file_in_a_read_only_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("ro");
    std::fs::create_dir(&sub).unwrap();
    let db = sale(&sub);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o555)).unwrap();
    let before = files(&sub);
    for args in READS {
        let out = run(&db, args, &[("TICKETING_MAX_ACTIVE", "50")]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    let after = files(&sub);
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(after == before, "a read changed the read-only directory");
}

#[test]
fn reads_refuse_a_database_they_would_have_to_create_or_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let out = run(&missing, &["admin", "queue"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.db does not exist"), "{}", stderr(&out));
    assert!(!missing.exists());

    // An SQLite database without the ticketing schema.
    let other = dir.path().join("other.db");
    foreign_sqlite_file(&other);
    let before = std::fs::read(&other).unwrap();
    let out = run(&other, &["admin", "concert", "list"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("other.db is an SQLite database without the ticketing schema"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&other).unwrap(), before);
}

/// An SQLite database that is not ours (a table of its own, `user_version` 0).
fn foreign_sqlite_file(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE notes (body TEXT)").unwrap();
}

/// What a refusal case prepares in its empty directory, and the `--db` it names.
#[derive(Clone, Copy)]
enum Db {
    /// `t.db`, not there.
    Missing,
    /// `t.db`, 0 bytes.
    Empty,
    /// `t.db`, a text file.
    Text,
}

fn prepare(dir: &Path, db: Db) -> PathBuf {
    let path = dir.join("t.db");
    match db {
        Db::Missing => {}
        Db::Empty => std::fs::write(&path, b"").unwrap(),
        Db::Text => std::fs::write(&path, b"# my notes\nnot a database at all\n").unwrap(),
    }
    path
}

/// The four subcommands, each asked to do something that would write (or run).
const SUBCOMMANDS: &[(&str, &[&str])] = &[
    ("serve", &["serve", "--addr", "127.0.0.1:0"]),
    ("admin", &["admin", "sweep"]),
    ("tui", &["tui"]),
    (
        "simulate",
        &["simulate", "seed-charge", "--no-baseline", "--users", "10"],
    ),
];

/// Runs `args` in a fresh directory prepared as `db`; asserts exit 2, a message containing
/// `says`, and that the directory holds exactly what it held before, unchanged.
fn assert_refused(db: Db, args: &[&str], says: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = prepare(dir.path(), db);
    let before = files(dir.path());
    let mut cmd = ticketing();
    // Run from the directory too, so a stray relative path would land where we look.
    cmd.current_dir(dir.path()).arg("--db").arg(&path).args(args);
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(says), "{args:?} should say `{says}`: {err}");
    assert!(!err.contains("internal error"), "{args:?}: {err}");
    assert!(
        files(dir.path()) == before,
        "{args:?} left files behind or changed them"
    );
}

#[test]
fn the_same_cause_gives_exit_2_in_every_subcommand_and_writes_nothing() {
    let causes: &[(&str, &[&str], &str)] = &[
        ("max-active 0", &["--max-active", "0"], "pause the queue"),
        ("max-holds 0", &["--max-holds", "0"], "--max-holds must be at least 1"),
        (
            "bad Redis URL",
            &["--strategy", "redis", "--redis-url", "http://nope"],
            "is not a Redis URL",
        ),
        // Port 1 on the loopback: nothing listens there.
        (
            "unreachable Redis",
            &["--strategy", "redis", "--redis-url", "redis://127.0.0.1:1"],
            "cannot reach Redis at",
        ),
        (
            "redis without a URL",
            &["--strategy", "redis"],
            "the redis strategy needs --redis-url",
        ),
    ];
    for (cause, flags, says) in causes {
        for (name, args) in SUBCOMMANDS {
            eprintln!("{cause} in {name}");
            assert_refused(Db::Missing, &[*flags, *args].concat(), says);
        }
    }
}

#[test]
fn an_unusable_database_file_is_named_with_its_cause_in_every_subcommand_that_opens_it() {
    let opening: &[&[&str]] = &[
        &["serve", "--addr", "127.0.0.1:0"],
        &["admin", "sweep"],
        &["admin", "queue"],
        &["admin", "check"],
        &["tui"],
    ];
    for args in opening {
        assert_refused(Db::Text, args, "t.db is not an SQLite database");
        assert_refused(Db::Empty, args, "t.db is empty (0 bytes)");
    }
}

#[test]
fn serve_refuses_a_bad_or_busy_address_before_creating_the_database() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    assert_refused(
        Db::Missing,
        &["serve", "--addr", &busy],
        &format!("cannot listen on {busy}"),
    );
    assert_refused(
        Db::Missing,
        &["serve", "--addr", "no-port-here"],
        "--addr `no-port-here` is not a usable HOST:PORT",
    );
}

#[test]
fn simulate_refuses_an_unwritable_output_path_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let json = file.join("out.json");
    let report = file.join("report");
    for (flag, path) in [("--json", &json), ("--report", &report)] {
        let started = std::time::Instant::now();
        let out = ticketing()
            .args(["simulate", "sold-out-rush", "--no-baseline", flag])
            .arg(path)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("cannot write {flag} {}", path.display())),
            "{err}"
        );
        assert!(err.contains("is not a directory"), "{err}");
        assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "nothing ran");
        assert!(started.elapsed().as_secs() < 5, "refused before the 20,000-user run");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn admin_reservations_filters_by_user() {
    let dir = tempfile::tempdir().unwrap();
    let db = sale(dir.path());
    let out = run(&db, &["admin", "reservations", "--user", "2", "--json"], &[]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let users: Vec<_> = list.as_array().unwrap().iter().map(|r| r["userId"].as_i64()).collect();
    assert_eq!(users, [Some(2)]);
    let out = run(&db, &["admin", "reservations", "--user", "9", "--json"], &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let out = run(&db, &["admin", "reservations", "--user", "0"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

// ----- the README's settings table is `--help`'s --------------------------------------------

/// `(subcommand or "", flag) -> (env, default)` from a `--help` text.
fn help_settings(sub: &str) -> BTreeMap<(String, String), (String, String)> {
    let mut cmd = ticketing();
    if !sub.is_empty() {
        cmd.arg(sub);
    }
    let text = String::from_utf8(cmd.arg("--help").output().unwrap().stdout).unwrap();
    let mut out = BTreeMap::new();
    // clap prints a flag's line, then its help, then `[default: …]` and `[env: …=]`.
    let mut flag = None;
    let mut block = String::new();
    let mut flush = |flag: &mut Option<String>, block: &mut String| {
        if let Some(f) = flag.take() {
            if let Some(env) = between(block, "[env: ", "=") {
                let default = between(block, "[default: ", "]").unwrap_or_default();
                out.insert((sub.to_string(), f), (env, default));
            }
        }
        block.clear();
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("--") || (trimmed.starts_with('-') && trimmed.contains(", --")) {
            flush(&mut flag, &mut block);
            let long = trimmed.split("--").nth(1).unwrap();
            flag = Some(format!("--{}", long.split([' ', '=', '<']).next().unwrap()));
        }
        block.push_str(line);
        block.push(' ');
    }
    flush(&mut flag, &mut block);
    out
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].split_whitespace().collect::<Vec<_>>().join(" "))
}

#[test]
fn the_readme_settings_table_is_the_help_text() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let table = readme
        .split("<!-- env-table: start -->")
        .nth(1)
        .and_then(|t| t.split("<!-- env-table: end -->").next())
        .expect("README has the settings table between its markers");
    let mut documented = BTreeMap::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let first = cells[0].trim_start_matches("| `");
        let (sub, flag) = match first.split_once(' ') {
            Some((sub, rest)) if !sub.starts_with("--") => (sub.to_string(), rest.split(' ').next().unwrap()),
            _ => (String::new(), first.split([' ', '`']).next().unwrap()),
        };
        let env = cells[1].trim_matches('`').to_string();
        // A default in backticks first; "—" (none) otherwise.
        let default = if cells[2].starts_with('`') {
            between(cells[2], "`", "`").unwrap_or_default()
        } else {
            String::new()
        };
        documented.insert((sub, flag.to_string()), (env, default));
    }
    let mut helped = help_settings("");
    // Every subcommand's help (which repeats the global flags): a flag of its own with an
    // environment variable must be in the table too.
    for sub in ["serve", "tui", "simulate", "admin"] {
        for ((_, flag), value) in help_settings(sub) {
            if !helped.contains_key(&(String::new(), flag.clone())) {
                helped.insert((sub.to_string(), flag), value);
            }
        }
    }
    assert_eq!(documented, helped, "README table (left) vs --help (right)");
}
