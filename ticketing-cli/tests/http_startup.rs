//! `ticketing serve` start-up and shutdown: bad flags are a clear message and exit 2; SIGTERM
//! finishes cleanly and the database opens again with its data.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod http_support;

use std::process::Command;

use http_support::{Server, DEMO_PRICE};

fn serve(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("t.db");
    Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .arg("serve")
        .arg("--db")
        .arg(&db)
        .args(args)
        .env_remove("TICKETING_ADDR")
        .env_remove("TICKETING_STRATEGY")
        .output()
        .expect("run ticketing")
}

#[track_caller]
fn assert_usage_error(args: &[&str], needle: &str) {
    let out = serve(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: expected `{needle}` in: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: nothing may listen");
}

#[test]
fn bad_flags_exit_2_with_a_clear_message() {
    assert_usage_error(
        &["--strategy", "mutex", "--addr", "127.0.0.1:0"],
        "invalid value 'mutex' for '--strategy",
    );
    assert_usage_error(&["--hold-ttl", "soon", "--addr", "127.0.0.1:0"], "not a duration");
    assert_usage_error(&["--token-ttl", "0s", "--addr", "127.0.0.1:0"], "longer than zero");
    assert_usage_error(&["--addr", "not an address"], "--addr `not an address`");
    assert_usage_error(&["--addr", "127.0.0.1:99999"], "--addr");
    assert_usage_error(&["--strategy", "redis", "--addr", "127.0.0.1:0"], "--redis-url");
}

#[test]
fn an_address_in_use_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    assert_usage_error(&["--addr", &addr], "cannot listen on");
}

#[test]
fn an_unusable_database_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db", "/nonexistent-dir/sub/t.db"])
        .output()
        .expect("run ticketing");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot create /nonexistent-dir/sub/t.db: no such file or directory"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_keeps_the_data() {
    let s = Server::start("optimistic", &[]);
    s.charge(9, DEMO_PRICE).await.ok();
    let (status, dir) = s.terminate();
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    assert!(status.success(), "exit: {status:?}\n{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    // The last request's line is written before the process ends (the log's thread is waited for).
    assert!(log.contains("path=\"/api/balance/charge\" status=200"), "{log}");
    // The database opens again with its data and still one demo concert.
    let db = dir.path().join("ticketing.db");
    let again = Server::start_on(dir, db, "optimistic", &[]);
    assert_eq!(again.balance(9).await, DEMO_PRICE);
    let concerts = again.get("/api/concerts", None).await;
    assert_eq!(concerts.ok()["concerts"].as_array().map(Vec::len), Some(1));
}
