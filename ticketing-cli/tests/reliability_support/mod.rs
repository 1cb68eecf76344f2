//! Shared helpers of the reliability tests (`tests/reliability_*.rs`): start the real
//! `ticketing serve` on a free port over a database the test chooses (so it can be killed and
//! restarted on the same file), talk to it, and look at the database directly: `ticketing admin
//! check`, `PRAGMA integrity_check` and a snapshot of every row a request could change.
#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used)] // test code

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The demo concert's price (`--demo`: concert 1, dates 1 and 2, seats 1..=100).
pub const DEMO_PRICE: f64 = 50000.0;

/// The redis URL of the private test server (`scripts/test.sh` exports it), if any.
pub fn redis_url() -> Option<String> {
    std::env::var("TICKETING_TEST_REDIS_URL").ok().filter(|s| !s.is_empty())
}

/// The strategies to test: pessimistic and optimistic always, redis when a test Redis is set.
pub fn strategies() -> Vec<&'static str> {
    let mut list = vec!["optimistic", "pessimistic"];
    if redis_url().is_some() {
        list.push("redis");
    }
    list
}

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The `ticketing` binary with `--db` and `--strategy` (and the redis URL when needed).
pub fn ticketing(db: &Path, strategy: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketing"));
    cmd.arg("--db").arg(db).arg("--strategy").arg(strategy);
    cmd.env_remove("TICKETING_ADDR")
        .env_remove("TICKETING_DB")
        .env_remove("TICKETING_STRATEGY");
    if strategy == "redis" {
        cmd.arg("--redis-url")
            .arg(redis_url().expect("TICKETING_TEST_REDIS_URL"));
    }
    cmd
}

/// A running `ticketing serve`; SIGKILLed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's stderr log file.
    pub log: PathBuf,
}

impl Server {
    /// Starts `ticketing serve` on `db` with `extra` flags (e.g. `--demo`), logging to
    /// `log`, and waits for its "listening on" line.
    pub fn start(db: &Path, strategy: &str, extra: &[&str], log: &Path) -> Server {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut child = ticketing(db, strategy)
            .arg("serve")
            .arg("--addr")
            .arg("127.0.0.1:0")
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start ticketing serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server did not start; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        };
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Server {
            child,
            base,
            log: log.to_path_buf(),
        }
    }

    /// SIGKILL (no shutdown code runs), and reap the process.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ticketing admin check` on `db`: (exit code, output).
pub fn admin_check(db: &Path, strategy: &str) -> (i32, String) {
    let out = ticketing(db, strategy)
        .args(["admin", "check"])
        .output()
        .expect("run ticketing admin check");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Adds a concert with `dates` dates of `seats` seats at `price` with `ticketing admin`.
pub fn add_concert(db: &Path, strategy: &str, dates: usize, seats: u32, price: u64) -> Value {
    let mut cmd = ticketing(db, strategy);
    cmd.args(["admin", "concert", "add", "--title", "Reliability", "--json"])
        .args(["--seats", &seats.to_string(), "--price", &price.to_string()]);
    for d in 0..dates {
        cmd.arg("--date")
            .arg(format!("2027-{:02}-{:02}", 1 + d / 28 % 12, 1 + d % 28));
    }
    let out = cmd.output().expect("admin concert add");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("admin JSON")
}

/// Opens the database directly (after a crash this replays the WAL, as any reader would).
pub fn open(db: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    conn
}

/// `PRAGMA integrity_check`: `"ok"` for a sound file.
pub fn integrity(db: &Path) -> String {
    let conn = open(db);
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.join("\n")
}

/// Every row a request could change, as text: seats, reservations, wallets, the ledger,
/// payments, idempotency keys, tokens (without `expires_at`, which a status poll of a WAITING
/// token refreshes by design) and the queue settings.
pub fn snapshot(conn: &rusqlite::Connection) -> String {
    let queries = [
        "SELECT id, status, reservation_id, held_until, version FROM seats ORDER BY id",
        "SELECT id, user_id, seat_id, option_id, status, held_until, price, version FROM reservations ORDER BY id",
        "SELECT user_id, balance, version FROM wallets ORDER BY user_id",
        "SELECT id, user_id, kind, amount, balance_after FROM ledger ORDER BY id",
        "SELECT id, reservation_id, user_id, amount FROM payments ORDER BY id",
        "SELECT key, user_id, reservation_id, amount, payment_id, balance FROM idempotency_keys ORDER BY key",
        "SELECT id, token, user_id, status, admitted_at FROM tokens ORDER BY id",
        "SELECT max_active, paused, admitted_through FROM queue_settings",
        "SELECT id, title FROM concerts ORDER BY id",
        "SELECT id, concert_id, concert_date, price FROM concert_options ORDER BY id",
    ];
    let mut out = String::new();
    for q in queries {
        let mut stmt = conn.prepare(q).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        out.push_str(q);
        out.push('\n');
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                let v: rusqlite::types::Value = row.get(i).unwrap();
                out.push_str(&format!("{v:?}|"));
            }
            out.push('\n');
        }
    }
    out
}

/// One HTTP answer: status, the body as JSON (`Null` when it is not JSON) and as text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// Whether the body is exactly the error shape `{"result":"<status>","message","code"}`.
    pub fn is_error_shape(&self) -> bool {
        let Some(o) = self.body.as_object() else {
            return false;
        };
        o.len() == 3
            && o.get("result").and_then(Value::as_str) == Some(self.status.to_string().as_str())
            && o.get("message").and_then(Value::as_str).is_some_and(|m| !m.is_empty())
            && o.get("code").and_then(Value::as_str).is_some_and(|c| !c.is_empty())
    }

    /// Asserts a 200 and returns the body.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{self:?}");
        &self.body
    }

    /// Asserts an error with `status` (and `code` when given) in the error shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: Option<&str>) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(self.is_error_shape(), "not the error shape: {self:?}");
        if let Some(code) = code {
            assert_eq!(self.body["code"], code, "{self:?}");
        }
    }
}

/// A client of one server.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: base.to_string(),
        }
    }

    /// Sends a request; `Err` when the connection failed (the server is gone).
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body, text })
    }

    /// Sends a request to a server that must answer.
    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        self.try_send(method, path, token, body.map(Value::to_string), &[])
            .await
            .expect("the server answers")
    }

    /// Issues a token for `user`; returns it.
    pub async fn token(&self, user: i64) -> String {
        let a = self
            .send("POST", "/api/token", None, Some(&serde_json::json!({ "userId": user })))
            .await;
        a.ok()["data"]["token"].as_str().expect("token").to_string()
    }

    /// Charges `user` with `amount`.
    pub async fn charge(&self, user: i64, amount: f64) -> Answer {
        self.send(
            "PATCH",
            "/api/balance/charge",
            None,
            Some(&serde_json::json!({ "userId": user, "amount": amount })),
        )
        .await
    }

    /// The balance of `user`.
    pub async fn balance(&self, user: i64) -> f64 {
        self.send("GET", &format!("/api/balance?userId={user}"), None, None)
            .await
            .ok()["balance"]
            .as_f64()
            .expect("balance")
    }
}
