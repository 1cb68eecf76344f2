//! `ticketing admin …` as scripts use it: the real binary, a fresh `--db`, JSON output and
//! exit codes (0 ok, 1 a check failed, 2 bad arguments — and then nothing is written).

#![allow(clippy::unwrap_used)] // test code

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

fn ticketing(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("TICKETING_STRATEGY")
        .env_remove("TICKETING_DB")
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn concert_add_prints_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = ticketing(
        &db,
        &[
            "admin",
            "concert",
            "add",
            "--title",
            "T",
            "--date",
            "2026-12-24",
            "--json",
        ],
    );
    assert_eq!(
        json_of(&out),
        json!({"concertId":1,"title":"T","concertOptions":[{"concertOptionId":1,"concertDate":"2026-12-24","price":100000.0,"seats":50}]})
    );
    // Flags after the subcommand work too, and so does the text output.
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args([
            "admin",
            "concert",
            "add",
            "--title",
            "Two dates",
            "--date",
            "2026-12-24",
            "--date",
            "2026-12-25",
        ])
        .args(["--seats", "12", "--price", "99.5", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("concert 2 \"Two dates\""), "{text}");
    let list = json_of(&ticketing(&db, &["admin", "concert", "list", "--json"]));
    assert_eq!(list[1]["dates"][1]["seats"], 12);
    assert_eq!(list[1]["dates"][1]["price"], 99.5);
    assert_eq!(list[1]["dates"][1]["available"], 12);
    let seats = json_of(&ticketing(&db, &["admin", "seats", "--option", "3", "--json"]));
    let numbers: Vec<&str> = seats
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seatNumber"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9", "A10", "B1", "B2"]
    );
}

#[test]
fn bad_arguments_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    for args in [
        &["admin", "concert", "add", "--title", "T", "--date", "2026-02-30"][..],
        &["admin", "concert", "add", "--title", "T", "--date", "24-12-2026"],
        &["admin", "concert", "add", "--title", " ", "--date", "2026-12-24"],
        &[
            "admin",
            "concert",
            "add",
            "--title",
            "T",
            "--date",
            "2026-12-24",
            "--seats",
            "0",
        ],
        &[
            "admin",
            "concert",
            "add",
            "--title",
            "T",
            "--date",
            "2026-12-24",
            "--price",
            "10.005",
        ],
        &[
            "admin",
            "concert",
            "add",
            "--title",
            "T",
            "--date",
            "2026-12-24",
            "--price",
            "-5",
        ],
        &[
            "admin",
            "concert",
            "add",
            "--title",
            "T",
            "--date",
            "2026-12-24",
            "--date",
            "2026-12-24",
        ],
        &["admin", "concert", "add", "--title", "T"],
        &["admin", "wallet", "0"],
        &["admin", "wallet", "abc"],
        &["--strategy", "fastest", "admin", "queue"],
        &["--hold-ttl", "soon", "admin", "queue"],
    ] {
        let out = ticketing(&db, args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).trim().is_empty(),
            "{args:?} says why"
        );
        assert!(!db.exists(), "{args:?} must not create the database");
    }
}

#[test]
fn queue_tokens_holds_and_wallets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    // A writing command creates the database (a read never does).
    let q = json_of(&ticketing(&db, &["admin", "queue", "resume", "--json"]));
    assert_eq!(
        q,
        json!({"waiting":0,"active":0,"maxActive":100,"paused":false,"admittedLastMinute":0,"oldestWaitSeconds":null})
    );
    let q = json_of(&ticketing(&db, &["admin", "queue", "set-max-active", "7", "--json"]));
    assert_eq!(q["maxActive"], 7);
    let q = json_of(&ticketing(&db, &["admin", "queue", "pause", "--json"]));
    assert_eq!(q["paused"], true);
    let q = json_of(&ticketing(&db, &["admin", "queue", "resume", "--json"]));
    assert_eq!(q["paused"], false);

    // Make a sale through the core, then inspect and operate on it with admin commands.
    let mut config = ticketing_core::Config::new(&db);
    config.max_active = Some(1);
    let t = ticketing_core::Ticketing::open(config).unwrap();
    t.add_concert(ticketing_core::admin::NewConcert {
        title: "Live".into(),
        dates: vec!["2026-12-24".into()],
        seats: 10,
        price: ticketing_core::Money::from_units(100),
    })
    .unwrap();
    let a = t.issue_token(1).unwrap();
    let b = t.issue_token(2).unwrap();
    let hold = t
        .reserve(ticketing_core::ReserveCmd {
            token: a.token.clone(),
            concert_option_id: 1,
            seat_id: 4,
            user_id: None,
        })
        .unwrap();
    t.charge(1, ticketing_core::Money::from_cents(12_345)).unwrap();

    let waiting = json_of(&ticketing(&db, &["admin", "token", "list", "--json"]));
    assert_eq!(waiting[0]["token"], b.token.as_str());
    assert_eq!(waiting[0]["queuePosition"], 1);
    let held = json_of(&ticketing(&db, &["admin", "reservations", "--held", "--json"]));
    assert_eq!(held[0]["reservationId"], hold.reservation_id);
    assert_eq!(held[0]["seatNumber"], "A4");
    let seats = json_of(&ticketing(&db, &["admin", "seats", "--option", "1", "--json"]));
    assert_eq!(seats[3]["status"], "HELD");

    let out = ticketing(
        &db,
        &["admin", "hold", "release", &hold.reservation_id.to_string(), "--json"],
    );
    assert_eq!(json_of(&out)["status"], "CANCELLED");
    let seats = json_of(&ticketing(&db, &["admin", "seats", "--option", "1", "--json"]));
    assert_eq!(seats[3]["status"], "AVAILABLE");
    // Releasing it again is a usage error.
    assert_eq!(
        ticketing(&db, &["admin", "hold", "release", &hold.reservation_id.to_string()])
            .status
            .code(),
        Some(2)
    );

    // Expiring A's token admits B at once.
    let out = ticketing(&db, &["admin", "token", "expire", &a.token, "--json"]);
    assert_eq!(json_of(&out)["status"], "EXPIRED");
    assert_eq!(
        t.token_status(&b.token).unwrap().status,
        ticketing_core::TokenStatus::Active
    );
    assert_eq!(
        ticketing(&db, &["admin", "token", "expire", "not-a-token"])
            .status
            .code(),
        Some(2)
    );

    let wallet = json_of(&ticketing(&db, &["admin", "wallet", "1", "--json"]));
    assert_eq!(wallet["balance"], 123.45);
    assert_eq!(wallet["ledger"][0]["kind"], "CHARGE");
    assert_eq!(wallet["ledger"][0]["balanceAfter"], 123.45);
    let out = ticketing(&db, &["admin", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn check_exits_1_and_lists_violations() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let t = ticketing_core::Ticketing::open(ticketing_core::Config::new(&db)).unwrap();
    t.charge(3, ticketing_core::Money::from_units(10)).unwrap();
    drop(t);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE wallets SET balance = 999", [])
        .unwrap();
    let out = ticketing(&db, &["admin", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("VIOLATION money-not-conserved: wallet of user 3 holds 999 but its ledger sums to 1000"),
        "{text}"
    );
    let out = ticketing(&db, &["admin", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["violations"][0]["invariant"], "money-not-conserved");
}
