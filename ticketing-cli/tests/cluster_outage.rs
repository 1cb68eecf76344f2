//! PostgreSQL stops mid-traffic (`pg_ctl stop -m immediate`: the server crashes) and starts
//! again: meanwhile requests fail with 503 `DB_UNAVAILABLE` within a bounded time, never hang
//! and never 500; afterwards the same `ticketing serve` process answers again by itself, every
//! acknowledged charge is in the wallet, and `ticketing admin check` passes.
//!
//! This binary holds one test only: it stops the test command's shared PostgreSQL server, and
//! cargo runs test binaries one after another.
#![allow(clippy::unwrap_used)] // test code

mod http_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_support::{use_backend, Backend, Server};

/// How the test command controls its PostgreSQL server (`scripts/postgres.sh`).
fn pg_ctl(action: &[&str]) {
    let line = std::env::var("TICKETING_TEST_PG_CTL").expect("TICKETING_TEST_PG_CTL");
    let mut words = line.split_whitespace();
    let program = words.next().expect("a command");
    let status = std::process::Command::new(program)
        .args(words)
        .args(action)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run pg_ctl");
    assert!(status.success(), "pg_ctl {action:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_node_rides_out_a_database_crash() {
    if !use_backend(Backend::Postgres, "pessimistic") {
        return;
    }
    if std::env::var_os("TICKETING_TEST_PG_CTL").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide TICKETING_TEST_PG_CTL"
        );
        eprintln!("skipped: TICKETING_TEST_PG_CTL is unset (run scripts/test.sh)");
        return;
    }
    let s = Arc::new(Server::start(
        "pessimistic",
        &["--db-timeout", "2s", "--rate-limit", "off"],
    ));

    // Traffic: 8 clients charging 1.00 each to their own wallet as fast as answers come.
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, unavailable, other) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let slowest = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for user in 1..=8i64 {
        let (s, stop, acked, unavailable, other, slowest) = (
            s.clone(),
            stop.clone(),
            acked.clone(),
            unavailable.clone(),
            other.clone(),
            slowest.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut mine = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let a = s.charge(user, 1.0).await;
                slowest.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                match a.status {
                    200 => {
                        mine += 1;
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    503 => {
                        a.assert_error(503, "DB_UNAVAILABLE");
                        unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    _ => {
                        other.fetch_add(1, Ordering::Relaxed);
                        eprintln!("unexpected answer: {a:?}");
                    }
                }
            }
            (user, mine)
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = acked.load(Ordering::Relaxed);
    assert!(before > 0, "traffic flows before the crash");
    tokio::task::spawn_blocking(|| pg_ctl(&["stop", "-m", "immediate"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = unavailable.load(Ordering::Relaxed);
    assert!(during > 0, "requests are refused with 503 while the database is down");
    tokio::task::spawn_blocking(|| pg_ctl(&["start"])).await.unwrap();

    // The same process answers again by itself.
    let back = Instant::now();
    let resumed_from = acked.load(Ordering::Relaxed);
    while acked.load(Ordering::Relaxed) < resumed_from + 20 {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "the node did not recover within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut mine = Vec::new();
    for c in clients {
        mine.push(c.await.unwrap());
    }
    assert_eq!(other.load(Ordering::Relaxed), 0, "only 200 and 503 answers");
    // Bounded: no request waited much past the 2 s --db-timeout (plus the connect timeout).
    let slowest = slowest.load(Ordering::Relaxed);
    assert!(slowest < 10_000, "a request took {slowest} ms");

    // Every acknowledged charge is in the wallet (a charge that committed just as the server
    // died may be there without its answer: never the other way round).
    for (user, charges) in mine {
        let balance = s.balance(user).await;
        assert!(
            balance >= charges as f64,
            "user {user}: balance {balance} < {charges} acknowledged"
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .arg("--db")
        .arg(s.db())
        .args(["admin", "check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "acknowledged {} charges ({before} before the crash), {during} answers 503 while it was down, slowest {slowest} ms",
        acked.load(Ordering::Relaxed)
    );
}
