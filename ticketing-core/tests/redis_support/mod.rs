//! Helpers of the redis strategy's own tests: a private `redis-server` a test can kill and
//! restart, and raw Redis access to play a foreign lock holder.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Redis the test command provides, or `None` after saying the test is skipped. Tests
/// skip only when `TICKETING_TEST_REDIS_URL` is unset, and never in CI.
pub fn test_redis_url(test: &str) -> Option<String> {
    match std::env::var("TICKETING_TEST_REDIS_URL").ok().filter(|s| !s.is_empty()) {
        Some(url) => Some(url),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide TICKETING_TEST_REDIS_URL"
            );
            eprintln!("{test}: skipped because TICKETING_TEST_REDIS_URL is unset (run scripts/test.sh)");
            None
        }
    }
}

/// A raw connection to `url`.
pub fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` of this test alone, on a free loopback port, in a temp directory, with no
/// persistence (a restart loses every key, the harshest case for fences). Killed on drop.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log: PathBuf = self.dir.path().join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server (scripts/redis.sh installs it): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = redis::Client::open(self.url())
                .unwrap()
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if up.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not come up on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no goodbye to clients, every key lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `key` is gone (its lease ran out); panics after `within`.
pub fn wait_key_gone(conn: &mut redis::Connection, key: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while redis::cmd("EXISTS").arg(key).query::<i64>(conn).unwrap() == 1 {
        assert!(Instant::now() < deadline, "{key} still exists after {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
