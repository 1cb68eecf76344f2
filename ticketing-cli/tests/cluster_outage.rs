//! The database and the lock service restart under a running service of three nodes (SPEC §8):
//! PostgreSQL stops mid-traffic (`pg_ctl stop -m immediate`: the server crashes) and starts
//! again; then Redis is killed and started again. Meanwhile requests fail with 503
//! (`DB_UNAVAILABLE`, `LOCK_UNAVAILABLE`) within a bounded time, never hang and never 500;
//! afterwards every node answers again by itself, every acknowledged charge is in its wallet,
//! and `ticketing admin check` passes.
//!
//! This binary holds one test only: it stops the test command's shared PostgreSQL server, and
//! cargo runs test binaries one after another. Redis is the test's own.
#![allow(clippy::unwrap_used)] // test code

mod cluster_support;
mod http_support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_support::Cluster;
use http_support::{use_backend, Backend};

const NODES: usize = 3;

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

/// A redis-server of this test's own, on one port across restarts.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Redis { port, child: None };
        r.run();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_rides_out_database_and_redis_restarts() {
    if !use_backend(Backend::Postgres, "redis") {
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
    let mut redis = Redis::start();
    let url = redis.url();
    let c = Arc::new(Cluster::start(
        NODES,
        "redis",
        &["--redis-url", &url, "--db-timeout", "2s", "--rate-limit", "off"],
    ));

    // Traffic: 4 clients per node, each charging 1.00 to its own wallet as fast as answers come.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..NODES).map(|_| AtomicU64::new(0)).collect());
    let (db_down, lock_down, other, slowest) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut clients = Vec::new();
    for user in 1..=(4 * NODES as i64) {
        let node = user as usize % NODES;
        let (c, stop, acked, db_down, lock_down, other, slowest) = (
            c.clone(),
            stop.clone(),
            acked.clone(),
            db_down.clone(),
            lock_down.clone(),
            other.clone(),
            slowest.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut mine = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let a = c.node(node).charge(user, 1.0).await;
                slowest.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                match (a.status, a.body["code"].as_str()) {
                    (200, _) => {
                        mine += 1;
                        acked[node].fetch_add(1, Ordering::Relaxed);
                    }
                    (503, Some("DB_UNAVAILABLE")) => {
                        db_down.fetch_add(1, Ordering::Relaxed);
                    }
                    (503, Some("LOCK_UNAVAILABLE")) => {
                        lock_down.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        other.fetch_add(1, Ordering::Relaxed);
                        eprintln!("unexpected answer: {a:?}");
                    }
                }
                if a.status == 503 {
                    a.assert_error(503, a.body["code"].as_str().unwrap_or_default());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            (user, mine)
        }));
    }
    // Every node answers again by itself: each acknowledges 10 more charges within 30 s.
    let every_node_recovers = |what: &'static str| {
        let acked = acked.clone();
        async move {
            let from: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Relaxed)).collect();
            let back = Instant::now();
            for node in 0..NODES {
                while acked[node].load(Ordering::Relaxed) < from[node] + 10 {
                    assert!(
                        back.elapsed() < Duration::from_secs(30),
                        "node {node} did not recover from {what} within 30 s"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    };

    every_node_recovers("starting").await;
    tokio::task::spawn_blocking(|| pg_ctl(&["stop", "-m", "immediate"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        db_down.load(Ordering::Relaxed) > 0,
        "503 DB_UNAVAILABLE while the database is down"
    );
    tokio::task::spawn_blocking(|| pg_ctl(&["start"])).await.unwrap();
    every_node_recovers("the database's restart").await;

    redis.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        lock_down.load(Ordering::Relaxed) > 0,
        "503 LOCK_UNAVAILABLE while Redis is down"
    );
    redis.run();
    every_node_recovers("Redis's restart").await;

    stop.store(true, Ordering::Relaxed);
    let mut mine = Vec::new();
    for client in clients {
        mine.push(client.await.unwrap());
    }
    assert_eq!(other.load(Ordering::Relaxed), 0, "only 200 and 503 answers");
    // Bounded: no request waited much past the 2 s --db-timeout (plus the connect timeout).
    let slowest = slowest.load(Ordering::Relaxed);
    assert!(slowest < 10_000, "a request took {slowest} ms");

    // Every acknowledged charge is in the wallet (a charge that committed just as the server
    // died may be there without its answer: never the other way round).
    for (user, charges) in mine {
        let balance = c.node(0).balance(user).await;
        assert!(
            balance >= charges as f64,
            "user {user}: balance {balance} < {charges} acknowledged"
        );
    }
    c.ticketing(&["admin", "check"]);
    eprintln!(
        "acknowledged {:?} charges per node; {} answers 503 DB_UNAVAILABLE, {} LOCK_UNAVAILABLE; slowest {slowest} ms",
        acked.iter().map(|a| a.load(Ordering::Relaxed)).collect::<Vec<_>>(),
        db_down.load(Ordering::Relaxed),
        lock_down.load(Ordering::Relaxed),
    );
}
