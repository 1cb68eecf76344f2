//! Per-resource lease locks in Redis with fencing.
//!
//! Acquire: `SET lock:{res} <random token> NX PX <lease>` and, in the same Lua script,
//! `INCR fence:{res}` for a number that only grows. Release: a Lua compare-and-delete, so only the
//! holder can release. The fence travels with the write: the database refuses a write whose
//! fence is lower than one that already wrote, so a holder whose lease lapsed (a long pause)
//! cannot overwrite a newer holder's work.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Backoff, ContentionStats, OnLostRace, Resource};
use crate::error::{Error, Result};

/// SET NX and the fence INCR in one atomic step: a grant and its fence can never interleave
/// with another holder's. Returns the fence, or 0 when the lock is taken.
const ACQUIRE: &str = r#"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return redis.call('INCR', KEYS[2]) else return 0 end"#;
const RELEASE: &str =
    r#"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"#;

/// A granted lock.
pub(crate) struct Lease {
    key: String,
    token: String,
    pub fence: i64,
}

/// The lock service.
pub(crate) struct RedisLocks {
    client: redis::Client,
    /// Key prefix: one per database, so two databases never share locks or fences.
    namespace: String,
    pool: Mutex<Vec<redis::Connection>>,
    lease: Duration,
    wait_bound: Duration,
    acquire: redis::Script,
    release: redis::Script,
}

impl RedisLocks {
    /// Connects and checks that Redis answers.
    pub fn connect(url: &str, namespace: String, lease: Duration, wait_bound: Duration) -> Result<RedisLocks> {
        let client =
            redis::Client::open(url).map_err(|e| Error::invalid("redis-url", format!("bad Redis URL: {e}")))?;
        let locks = RedisLocks {
            client,
            namespace,
            pool: Mutex::new(Vec::new()),
            lease,
            wait_bound,
            acquire: redis::Script::new(ACQUIRE),
            release: redis::Script::new(RELEASE),
        };
        let mut conn = locks.conn()?;
        redis::cmd("PING")
            .query::<String>(&mut conn)
            .map_err(|_| Error::LockUnavailable)?;
        locks.pool.lock().push(conn);
        Ok(locks)
    }

    fn conn(&self) -> Result<redis::Connection> {
        if let Some(conn) = self.pool.lock().pop() {
            return Ok(conn);
        }
        self.client
            .get_connection_with_timeout(Duration::from_secs(1))
            .map_err(|_| Error::LockUnavailable)
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T> {
        let mut conn = self.conn()?;
        match f(&mut conn) {
            Ok(v) => {
                self.pool.lock().push(conn);
                Ok(v)
            }
            // A broken connection is dropped; the next call dials again.
            Err(_) => Err(Error::LockUnavailable),
        }
    }

    /// Takes the lock on `res`: at once or fail (`FailFast`), or retrying until the bound (`Wait`).
    pub fn acquire(&self, res: Resource, how: OnLostRace, stats: &ContentionStats) -> Result<Lease> {
        let key = format!("{}:lock:{res}", self.namespace);
        let fence_key = format!("{}:fence:{res}", self.namespace);
        let token = uuid::Uuid::new_v4().to_string();
        let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let started = Instant::now();
        let mut backoff = Backoff::new();
        let mut waited = false;
        loop {
            let fence: i64 = self.with_conn(|c| {
                self.acquire
                    .key(&key)
                    .key(&fence_key)
                    .arg(&token)
                    .arg(lease_ms)
                    .invoke(c)
            })?;
            if fence > 0 {
                return Ok(Lease { key, token, fence });
            }
            if how == OnLostRace::FailFast || started.elapsed() >= self.wait_bound {
                stats.count_lock_failure();
                return Err(Error::Contention {
                    resource: res.to_string(),
                    code: "LOCK_NOT_ACQUIRED",
                });
            }
            if !waited {
                stats.count_lock_wait();
                waited = true;
            }
            backoff.sleep();
        }
    }

    /// Releases `lease` if it is still ours (compare-and-delete).
    pub fn release(&self, lease: Lease) {
        let _ = self.with_conn(|c| self.release.key(&lease.key).arg(&lease.token).invoke::<i64>(c));
    }
}
