//! Per-resource lease locks in Redis with fencing.
//!
//! Acquire: `SET {res}:lock <random token> NX PX <lease>` and, in the same Lua script, a fence
//! for the grant: a number that only grows. Release: a Lua compare-and-delete, so only the
//! holder can release. The fence travels with the write: the database refuses a write whose
//! fence is lower than one that already wrote, so a holder whose lease lapsed (a long pause)
//! cannot overwrite a newer holder's work.
//!
//! The fence is `max(last fence + 1, Redis TIME in microseconds)`, not a bare `INCR`: a plain
//! counter restarts at 1 when Redis loses its data (a restart without persistence, eviction),
//! and every later write would then be refused as stale by the rows the old counter fenced.
//! A clock-based floor keeps fences growing across such a loss (as long as the Redis host's
//! clock does not step back by more than the time Redis was down), so the fence key can even
//! carry a TTL instead of living forever.
//!
//! Keys are namespaced by the database they guard (`ticketing:<hash of the db path>:`), so
//! two databases sharing one Redis never contend, and carry the resource as a hash tag
//! (`{seat:12}`) so a lock and its fence always live in one cluster slot.
//!
//! Faults: every connection has connect, read and write timeouts, so a dead Redis never hangs
//! a request; a connection that failed is dropped and the next call dials again; any failure
//! to reach Redis is [`Error::LockUnavailable`], raised before the database is touched.

use std::path::Path;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Backoff, ContentionStats, OnLostRace, Resource};
use crate::error::{Error, Result};

/// How long dialling Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long one command may wait for the socket.
const IO_TIMEOUT: Duration = Duration::from_millis(1000);
/// Idle connections kept for reuse; more are closed when returned.
const MAX_IDLE: usize = 64;
/// A fence key outlives any lease by far; after it lapses the clock floor takes over.
const FENCE_TTL_MS: u64 = 24 * 3600 * 1000;

/// KEYS: lock, fence. ARGV: token, lease ms, fence ttl ms. Returns the grant's fence, or 0
/// when another holds the lock. Taking the lock and drawing the fence happen in one atomic
/// step, so a grant and its fence never interleave with another holder's. Asking again with
/// the same token while holding returns the same fence, so a call whose reply was lost can be
/// repeated safely.
const ACQUIRE: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local t = redis.call('TIME')
  local fence = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', KEYS[2]) or '0')
  if last >= fence then fence = last + 1 end
  redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX', ARGV[3])
  return fence
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
return 0
"#;
/// KEYS: lock. ARGV: token. Deletes the lock only if it is still the caller's.
const RELEASE: &str =
    r#"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"#;

/// A granted lock.
pub(crate) struct Lease {
    pub key: String,
    token: String,
    pub fence: i64,
}

/// The lock service: a small pool of blocking connections to one Redis.
pub(crate) struct RedisLocks {
    client: redis::Client,
    namespace: String,
    idle: Mutex<Vec<redis::Connection>>,
    lease: Duration,
    wait_bound: Duration,
    acquire: redis::Script,
    release: redis::Script,
}

impl RedisLocks {
    /// Connects and checks that Redis answers. An unusable URL or an unreachable Redis is an
    /// [`Error::InvalidInput`] on `redis-url`: a setting to fix before the service can start.
    pub fn connect(url: &str, db_path: &Path, lease: Duration, wait_bound: Duration) -> Result<RedisLocks> {
        let shown = redact(url);
        let client = redis::Client::open(url)
            .map_err(|e| Error::invalid("redis-url", format!("bad Redis URL `{shown}`: {e}")))?;
        if lease < Duration::from_millis(1) {
            return Err(Error::invalid(
                "lock-lease",
                "the Redis lock lease must be at least 1ms",
            ));
        }
        let locks = RedisLocks {
            client,
            namespace: namespace(db_path),
            idle: Mutex::new(Vec::new()),
            lease,
            wait_bound,
            acquire: redis::Script::new(ACQUIRE),
            release: redis::Script::new(RELEASE),
        };
        let mut conn = locks
            .dial()
            .map_err(|e| Error::invalid("redis-url", format!("cannot reach Redis at `{shown}`: {e}")))?;
        redis::cmd("PING")
            .query::<String>(&mut conn)
            .map_err(|e| Error::invalid("redis-url", format!("Redis at `{shown}` does not answer PING: {e}")))?;
        locks.idle.lock().push(conn);
        Ok(locks)
    }

    /// The Redis key of the lock on `res`.
    pub fn lock_key(&self, res: &str) -> String {
        lock_key(&self.namespace, res)
    }

    fn dial(&self) -> redis::RedisResult<redis::Connection> {
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    fn put_back(&self, conn: redis::Connection) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Runs `f` on a pooled connection. A connection that fails is dropped, never reused: after
    /// a timeout its replies may be out of step. A pooled connection that fails may simply have
    /// outlived a Redis restart; then the pool is emptied (its siblings died with it) and `f`
    /// runs once more on a fresh connection — every command sent here is safe to repeat.
    fn call<T>(&self, f: impl Fn(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T> {
        let pooled = self.idle.lock().pop();
        if let Some(mut conn) = pooled {
            if let Ok(v) = f(&mut conn) {
                self.put_back(conn);
                return Ok(v);
            }
            self.idle.lock().clear();
        }
        let mut conn = self.dial().map_err(|_| Error::LockUnavailable)?;
        let v = f(&mut conn).map_err(|_| Error::LockUnavailable)?;
        self.put_back(conn);
        Ok(v)
    }

    /// Takes the lock on `res`: at once or fail (`FailFast`), or retrying with jittered backoff
    /// until the wait bound (`Wait`). Redis unreachable: [`Error::LockUnavailable`] at once.
    pub fn acquire(&self, res: Resource, how: OnLostRace, stats: &ContentionStats) -> Result<Lease> {
        let key = self.lock_key(&res.to_string());
        let fence_key = fence_key(&self.namespace, &res.to_string());
        let token = uuid::Uuid::new_v4().simple().to_string();
        let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let started = Instant::now();
        let mut backoff = Backoff::new();
        let mut waited = false;
        loop {
            let granted = self.call(|c| {
                self.acquire
                    .key(&key)
                    .key(&fence_key)
                    .arg(&token)
                    .arg(lease_ms)
                    .arg(FENCE_TTL_MS)
                    .invoke::<i64>(c)
            });
            let fence = match granted {
                Ok(fence) => fence,
                Err(e) => {
                    // The script may have run before the reply was lost: give back what may be ours.
                    self.release_token(&key, &token);
                    return Err(e);
                }
            };
            if fence > 0 {
                return Ok(Lease { key, token, fence });
            }
            let pause = backoff.next();
            if how == OnLostRace::FailFast || started.elapsed() + pause >= self.wait_bound {
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
            std::thread::sleep(pause);
        }
    }

    /// Releases `lease` if it is still ours (compare-and-delete). When Redis cannot be reached
    /// the lease simply runs out.
    pub fn release(&self, lease: Lease) {
        self.release_token(&lease.key, &lease.token);
    }

    fn release_token(&self, key: &str, token: &str) {
        let _ = self.call(|c| self.release.key(key).arg(token).invoke::<i64>(c));
    }
}

/// `ticketing:<16 hex digits>`: a stable hash (FNV-1a, the same in every build) of the
/// database's absolute path, so every process on one database shares its locks and different
/// databases never meet.
pub(crate) fn namespace(db_path: &Path) -> String {
    let absolute = match (db_path.parent(), db_path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| db_path.to_path_buf())
        }
        _ => db_path.to_path_buf(),
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in absolute.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("ticketing:{hash:016x}")
}

pub(crate) fn lock_key(namespace: &str, res: &str) -> String {
    format!("{namespace}:{{{res}}}:lock")
}

fn fence_key(namespace: &str, res: &str) -> String {
    format!("{namespace}:{{{res}}}:fence")
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact("redis://:secret@host:6379/0"), "redis://***@host:6379/0");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn keys_are_per_resource_and_per_database() {
        let a = namespace(Path::new("/tmp/a.db"));
        let b = namespace(Path::new("/tmp/b.db"));
        assert_ne!(a, b);
        assert_eq!(a, namespace(Path::new("/tmp/a.db")));
        assert_eq!(lock_key(&a, "seat:3"), format!("{a}:{{seat:3}}:lock"));
        assert_eq!(fence_key(&a, "seat:3"), format!("{a}:{{seat:3}}:fence"));
    }
}
