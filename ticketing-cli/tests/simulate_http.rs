//! `--target`: scenarios over real HTTP against `ticketing serve` on an ephemeral port, with
//! the invariants checked from the client-side history and final reads: the sold-out rush
//! (scaled down, its concert added through `--db`) and the seed's use-points case through
//! `PATCH /api/balance/use`.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ticketing");

/// A `ticketing serve` child, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts a server on `db` on an ephemeral port and waits for its address.
    fn start(db: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .arg("--db")
            .arg(db)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut server = Server {
            child,
            url: String::new(),
        };
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("listening on ") {
                server.url = rest.trim().to_string();
                break;
            }
        }
        assert!(!server.url.is_empty(), "the server prints its address");
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ticketing simulate ARGS --target URL --json FILE` in `dir`; the output, all of its
/// text, and the JSON report's first run.
fn simulate(dir: &Path, url: &str, args: &[&str]) -> (Output, String, Value) {
    let json = dir.join("http.json");
    let out = Command::new(BIN)
        .current_dir(dir)
        .arg("simulate")
        .args(args)
        .args(["--target", url, "--json"])
        .arg(&json)
        .env_remove("TICKETING_DB")
        .output()
        .unwrap();
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = v["scenarios"][0]["runs"][0].clone();
    assert_eq!(run["strategy"], format!("http {url}"));
    (out, all, run)
}

fn assert_checks_hold(run: &Value, names: &[&str], all: &str) {
    let checks = run["checks"].as_array().unwrap();
    for name in names {
        assert!(
            checks.iter().any(|c| c["name"] == *name && c["ok"] == true),
            "{name} holds: {all}"
        );
    }
    assert!(checks.iter().all(|c| c["ok"] == true), "every check holds: {all}");
}

/// `--target URL --db PATH` on a fresh server: the simulator adds the scenario's concert to
/// the server's database itself (no manual step) and the rush sells out over HTTP.
#[test]
fn sold_out_rush_over_http_sets_its_data_up_through_db() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let server = Server::start(&db, &["--max-active", "500"]);

    let (_, all, run) = simulate(
        dir.path(),
        &server.url,
        &["sold-out-rush", "--users", "400", "--db", db.to_str().unwrap()],
    );
    assert_eq!(run["users"]["done"], 100, "{all}");
    assert_checks_hold(
        &run,
        &[
            "no seat paid twice (client history)",
            "money conserved per user (client history + final balances)",
            "expect.sold_out = true",
            "expect.paid = 100",
        ],
        &all,
    );
    let concerts = get_json(&server.url, "/api/concerts");
    assert!(concerts.to_string().contains("Sold-out rush"), "{concerts}");
}

/// Without `--db` the simulator cannot add data to a server: it says how (exit 2); with a
/// `--db` that does not exist it refuses rather than create a database the server never reads.
#[test]
fn target_without_the_servers_data_says_how_to_set_it_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server.db"), &[]);
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["simulate", "hot-seat", "--users", "5", "--target", &server.url])
            .args(extra)
            .env_remove("TICKETING_DB")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the server has no concert titled `Hot seat`: pass the server's database as --db PATH and the simulator adds it"),
        "{stderr}"
    );
    let out = run(&["--db", "other.db"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--db other.db: no such database; with --target, --db names the running server's database"),
        "{stderr}"
    );
    assert!(!dir.path().join("other.db").exists());
}

/// The seed's second case over HTTP: 10 concurrent `PATCH /api/balance/use` of 100 on a
/// wallet of 10,000 leave exactly 9000, every use succeeds, and the seed's columns say so.
#[test]
fn seed_use_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server.db"), &[]);

    let (out, all, run) = simulate(dir.path(), &server.url, &["seed-use"]);
    assert_eq!(run["seed"]["finalPoints"].as_f64(), Some(9000.0), "{all}");
    assert_eq!(run["seed"]["successes"], 10, "{all}");
    assert_eq!(run["seed"]["failures"], 0, "{all}");
    assert_checks_hold(
        &run,
        &[
            "money conserved per user (client history + final balances)",
            "expect.balances user 1 = 9000.00",
            "expect.ok.use = 10",
            "expect.failed.use = 0",
        ],
        &all,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("final points"),
        "the seed's columns are printed:\n{stdout}"
    );

    // The server's own read agrees with the client.
    let balance = get_json(&server.url, "/api/balance?userId=1");
    assert_eq!(balance["balance"].as_f64(), Some(9000.0), "{balance}");
}

/// A GET over a plain TCP socket (the test crate has no HTTP client dependency).
fn get_json(base: &str, path: &str) -> Value {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body.trim()).unwrap_or_else(|_| panic!("a JSON body: {text}"))
}
