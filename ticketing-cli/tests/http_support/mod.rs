//! Shared helpers of the black-box HTTP tests (`tests/http_*.rs`): start the real `ticketing
//! serve` on a free port with a temp database, talk to it with reqwest, stop it.
#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The demo concert `--demo` adds: concert 1, dates 1 (2026-12-24, seats 1..=50) and 2
/// (2026-12-25, seats 51..=100), price 50000.
pub const DEMO_PRICE: f64 = 50000.0;

/// The strategies to test: pessimistic and optimistic always, redis when
/// `TICKETING_TEST_REDIS_URL` is set.
pub fn redis_url() -> Option<String> {
    std::env::var("TICKETING_TEST_REDIS_URL").ok().filter(|s| !s.is_empty())
}

/// The PostgreSQL server the test command provides (`scripts/test.sh` starts a private one).
pub fn pg_url() -> Option<String> {
    std::env::var("TICKETING_TEST_PG_URL").ok().filter(|s| !s.is_empty())
}

/// Which database a test's servers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

thread_local! {
    /// The backend of the test running on this thread: the `per_strategy!` test sets it before
    /// its body's first poll (which runs on the test's thread), and [`Server::start`] reads it,
    /// so a test body is written once for both backends.
    static BACKEND: std::cell::Cell<Backend> = const { std::cell::Cell::new(Backend::Sqlite) };
}

/// Sets the backend of the running test; false (and the test is skipped, or fails in CI) when
/// what it needs was not provided.
pub fn use_backend(backend: Backend, strategy: &str) -> bool {
    for (missing, what) in [
        (strategy == "redis" && redis_url().is_none(), "TICKETING_TEST_REDIS_URL"),
        (
            backend == Backend::Postgres && pg_url().is_none(),
            "TICKETING_TEST_PG_URL",
        ),
    ] {
        if missing {
            assert!(std::env::var_os("CI").is_none(), "CI must provide {what}");
            eprintln!("skipped: set {what} (scripts/test.sh does)");
            return false;
        }
    }
    BACKEND.with(|b| b.set(backend));
    true
}

/// Defines one `#[tokio::test]` per strategy and backend, each calling `$body(strategy)`.
#[macro_export]
macro_rules! per_strategy {
    ($name:ident, $body:ident) => {
        mod $name {
            use $crate::http_support::{use_backend, Backend};
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn pessimistic() {
                if use_backend(Backend::Sqlite, "pessimistic") {
                    super::$body("pessimistic").await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn optimistic() {
                if use_backend(Backend::Sqlite, "optimistic") {
                    super::$body("optimistic").await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redis() {
                if use_backend(Backend::Sqlite, "redis") {
                    super::$body("redis").await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres_pessimistic() {
                if use_backend(Backend::Postgres, "pessimistic") {
                    super::$body("pessimistic").await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres_optimistic() {
                if use_backend(Backend::Postgres, "optimistic") {
                    super::$body("optimistic").await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres_redis() {
                if use_backend(Backend::Postgres, "redis") {
                    super::$body("redis").await;
                }
            }
        }
    };
}

/// A running `ticketing serve`; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The temp dir holding the database and the server's log.
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    /// PostgreSQL: the server's own schema, dropped after the server stops.
    pub schema: Option<ticketing_core::ScratchSchema>,
}

/// An HTTP answer: status and parsed JSON body (`Value::Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// Asserts an error answer: the status, `result` equal to it, the code, a message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["result"], status.to_string(), "{self:?}");
        assert_eq!(self.body["code"], code, "{self:?}");
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{self:?}");
        assert_eq!(self.body.as_object().map(|o| o.len()), Some(3), "{self:?}");
    }

    /// Asserts a 400 whose message names `field`.
    #[track_caller]
    pub fn assert_bad(&self, code: &str, field: &str) {
        self.assert_error(400, code);
        assert!(
            self.body["message"].as_str().is_some_and(|m| m.contains(field)),
            "message should name {field}: {self:?}"
        );
    }

    /// Asserts a 200 and returns the body.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{self:?}");
        &self.body
    }
}

/// Options for [`Server::start`].
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Server {
    /// Starts `ticketing serve --demo` with `strategy` and `extra` flags on a fresh database of
    /// the running test's backend (see [`use_backend`]).
    pub fn start(strategy: &str, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        if BACKEND.with(std::cell::Cell::get) == Backend::Postgres {
            let schema = ticketing_core::ScratchSchema::create(&pg_url().expect("TICKETING_TEST_PG_URL"), "http")
                .expect("scratch schema");
            let db = std::ffi::OsString::from(schema.url());
            let mut server = Server::start_on(dir, db, strategy, extra);
            server.schema = Some(schema);
            return server;
        }
        let db = dir.path().join("ticketing.db").into_os_string();
        Server::start_on(dir, db, strategy, extra)
    }

    /// Starts on a given database (a path or a PostgreSQL URL).
    pub fn start_on(dir: tempfile::TempDir, db: impl AsRef<std::ffi::OsStr>, strategy: &str, extra: &[&str]) -> Server {
        Server::start_with_env(dir, db, strategy, extra, &[])
    }

    /// [`Server::start_on`] with environment variables set for the server.
    pub fn start_with_env(
        dir: tempfile::TempDir,
        db: impl AsRef<std::ffi::OsStr>,
        strategy: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketing"));
        cmd.envs(env.iter().copied());
        cmd.arg("serve")
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--db")
            .arg(db.as_ref())
            .arg("--strategy")
            .arg(strategy)
            .arg("--demo")
            .args(extra)
            .env_remove("TICKETING_ADDR")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if strategy == "redis" && !extra.contains(&"--redis-url") {
            cmd.arg("--redis-url")
                .arg(redis_url().expect("TICKETING_TEST_REDIS_URL"));
        }
        let mut child = cmd.spawn().expect("start ticketing serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("the server did not start; its log:\n{log}");
            }
        };
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Server {
            child,
            base,
            dir,
            client,
            schema: None,
        }
    }

    /// The server's database, as `--db` names it (a path or the schema's URL).
    pub fn db(&self) -> std::ffi::OsString {
        match &self.schema {
            Some(schema) => schema.url().into(),
            None => self.dir.path().join("ticketing.db").into_os_string(),
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's log once `ready` holds for it, or after 5 s (request lines are written by
    /// the log's own thread, every 20 ms).
    pub async fn log_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let started = std::time::Instant::now();
        loop {
            let log = self.log();
            if ready(&log) || started.elapsed() > Duration::from_secs(5) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `method path` with an optional `Authorization` value and JSON body.
    pub async fn send(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> Answer {
        self.send_raw(method, path, auth, body.map(|b| b.to_string()), &[])
            .await
    }

    /// Sends a raw body with extra headers.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_send_raw(method, path, auth, body, headers)
            .await
            .expect("request")
    }

    /// [`Server::send_raw`], with a transport failure (a killed server) as an error.
    pub async fn try_send_raw(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("{path}: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body, text })
    }

    /// A JSON request that may fail in transport.
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        self.try_send_raw(method, path, auth, body.map(|b| b.to_string()), &[])
            .await
    }

    /// A POST with an optional bearer token that may fail in transport.
    pub async fn try_post(&self, path: &str, token: Option<&str>, body: Value) -> Result<Answer, String> {
        let auth = token.map(|t| format!("Bearer {t}"));
        self.try_send("POST", path, auth.as_deref(), Some(body)).await
    }

    /// Pays `reservation` with `amount` under `key`; may fail in transport.
    pub async fn try_pay(&self, token: &str, reservation: i64, amount: f64, key: &str) -> Result<Answer, String> {
        let body = serde_json::json!({ "reservationId": reservation, "amount": amount }).to_string();
        let auth = format!("Bearer {token}");
        self.try_send_raw("POST", "/api/pay", Some(&auth), Some(body), &[("Idempotency-Key", key)])
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send("GET", path, token.map(|t| format!("Bearer {t}")).as_deref(), None)
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.send(
            "POST",
            path,
            token.map(|t| format!("Bearer {t}")).as_deref(),
            Some(&body),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send("PATCH", path, None, Some(&body)).await
    }

    /// Issues a token for `user` and returns (token, body.data).
    pub async fn token(&self, user: i64) -> (String, Value) {
        let a = self
            .post("/api/token", None, serde_json::json!({ "userId": user }))
            .await;
        let data = a.ok()["data"].clone();
        (data["token"].as_str().expect("token").to_string(), data)
    }

    /// The balance of `user`, as a number.
    pub async fn balance(&self, user: i64) -> f64 {
        self.get(&format!("/api/balance?userId={user}"), None).await.ok()["balance"]
            .as_f64()
            .expect("balance")
    }

    /// Charges `user` with `amount`.
    pub async fn charge(&self, user: i64, amount: f64) -> Answer {
        self.patch(
            "/api/balance/charge",
            serde_json::json!({ "userId": user, "amount": amount }),
        )
        .await
    }

    /// The seat ids listed AVAILABLE for a date.
    pub async fn available_seat_ids(&self, option: i64, token: &str) -> Vec<i64> {
        let a = self.get(&format!("/api/{option}/available-seats"), Some(token)).await;
        a.ok()["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .map(|s| s["seatId"].as_i64().expect("seatId"))
            .collect()
    }

    /// Sends SIGTERM, waits for the exit status, and hands back the temp dir (database, log).
    pub fn terminate(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
                return (status, dir);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses an RFC 3339 UTC timestamp like `2026-12-24T19:00:00Z` into milliseconds since the
/// epoch (seconds precision).
pub fn rfc3339_millis(s: &str) -> i64 {
    assert!(s.len() == 20 && s.ends_with('Z'), "not RFC 3339 UTC seconds: {s}");
    let num = |a: usize, b: usize| s[a..b].parse::<i64>().expect("digits");
    let (y, mo, d) = (num(0, 4), num(5, 7), num(8, 10));
    let (h, mi, se) = (num(11, 13), num(14, 16), num(17, 19));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + h) * 60 + mi) * 60_000 + se * 1000
}

/// Now, in milliseconds since the epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}
