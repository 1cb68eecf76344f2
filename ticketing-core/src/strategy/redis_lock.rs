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
//! Transport: one connection per process, driven by one thread that sends every command
//! waiting as one pipeline (a burst of 200 requests costs Redis one read and one write, not
//! 400 of each). A release is queued without waiting for its reply: the connection keeps the
//! order, so any later acquire of this process reaches Redis after it.
//!
//! Faults: the connection has connect, read and write timeouts, so a dead Redis never hangs
//! a request; a connection that failed is dropped and the next batch dials again; any failure
//! to reach Redis is [`Error::LockUnavailable`], raised before the database is touched.

use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::Arc;

use futures_channel::oneshot;

use super::{Backoff, ContentionStats, OnLostRace, Resource};
use crate::config::Database;
use crate::error::{Error, Result};
use crate::store::Answer;

/// How long dialling Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long one command may wait for the socket.
const IO_TIMEOUT: Duration = Duration::from_millis(1000);
/// The most commands one pipeline carries.
const MAX_PIPELINE: usize = 1024;
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

/// The lock service. Every command goes through one connection, driven by one thread that
/// sends whatever is waiting as one pipeline and reads the replies in order (see [`drive`]).
pub(crate) struct RedisLocks {
    namespace: String,
    /// The lock pipeline's round trips so far (for `/metrics`).
    pub round_trips: Arc<RoundTrips>,
    commands: Option<crossbeam_channel::Sender<Command>>,
    driver: Option<std::thread::JoinHandle<()>>,
    lease: Duration,
}

/// Round trips to Redis and their total time: their rate and mean are what an operator
/// watches (a lock service slowing down shows here before it shows as 503s).
#[derive(Debug, Default)]
pub struct RoundTrips {
    count: std::sync::atomic::AtomicU64,
    micros: std::sync::atomic::AtomicU64,
}

impl RoundTrips {
    fn record(&self, took: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.count.fetch_add(1, Relaxed);
        self.micros
            .fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    /// How many round trips, and their total time.
    pub fn total(&self) -> (u64, Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.count.load(Relaxed),
            Duration::from_micros(self.micros.load(Relaxed)),
        )
    }
}

/// A command for the driver thread.
enum Command {
    /// Run ACQUIRE until granted, or once (`FailFast`), or until the wait bound (`Wait`).
    Acquire(Box<Acquiring>),
    /// Run RELEASE; nobody waits for it.
    Release { key: String, token: String },
}

/// An acquire in progress.
struct Acquiring {
    key: String,
    fence_key: String,
    token: String,
    lease_ms: u64,
    how: OnLostRace,
    started: Instant,
    backoff: Backoff,
    waited: bool,
    reply: oneshot::Sender<Result<Grant>>,
}

/// How an acquire ended.
struct Grant {
    /// The grant's fence; 0 when the lock stayed another's.
    fence: i64,
    /// The lease's token (what a release must name).
    token: String,
    /// True when it had to wait for another holder.
    waited: bool,
}

impl RedisLocks {
    /// Connects and checks that Redis answers. An unusable URL or an unreachable Redis is an
    /// [`Error::InvalidInput`] on `redis-url`: a setting to fix before the service can start.
    pub fn connect(url: &str, db: &Database, lease: Duration, wait_bound: Duration) -> Result<RedisLocks> {
        let shown = redact(url);
        let client = redis::Client::open(url)
            .map_err(|e| Error::invalid("redis-url", format!("bad Redis URL `{shown}`: {e}")))?;
        if lease < Duration::from_millis(1) {
            return Err(Error::invalid(
                "lock-lease",
                "the Redis lock lease must be at least 1ms",
            ));
        }
        let mut conn =
            dial(&client).map_err(|e| Error::invalid("redis-url", format!("cannot reach Redis at `{shown}`: {e}")))?;
        redis::cmd("PING")
            .query::<String>(&mut conn)
            .map_err(|e| Error::invalid("redis-url", format!("Redis at `{shown}` does not answer PING: {e}")))?;
        let scripts = Scripts::new();
        scripts
            .load(&mut conn)
            .map_err(|e| Error::invalid("redis-url", format!("Redis at `{shown}` refuses the lock scripts: {e}")))?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let round_trips = Arc::new(RoundTrips::default());
        let counted = round_trips.clone();
        let driver = std::thread::Builder::new()
            .name("ticketing-locks".into())
            .spawn(move || drive(client, Some(conn), scripts, wait_bound, rx, &counted))
            .map_err(|e| Error::Internal(format!("cannot start the lock thread: {e}")))?;
        Ok(RedisLocks {
            namespace: namespace(db),
            round_trips,
            commands: Some(tx),
            driver: Some(driver),
            lease,
        })
    }

    /// The Redis key of the lock on `res`.
    pub fn lock_key(&self, res: &str) -> String {
        lock_key(&self.namespace, res)
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands
            .as_ref()
            .and_then(|tx| tx.send(command).ok())
            .ok_or(Error::LockUnavailable)
    }

    /// Takes the lock on `res`: at once or fail (`FailFast`), or retrying with jittered backoff
    /// until the wait bound (`Wait`). Redis unreachable: [`Error::LockUnavailable`] at once.
    /// The driver thread does the asking and the waiting; the answer is a future (no thread
    /// waits for Redis), and dropping it gives back the lock if it was granted meanwhile.
    pub fn acquire(&self, res: Resource, how: OnLostRace, stats: Arc<ContentionStats>) -> Answer<Lease> {
        let key = self.lock_key(&res.to_string());
        let (reply, granted) = oneshot::channel();
        let asked = self.send(Command::Acquire(Box::new(Acquiring {
            key: key.clone(),
            fence_key: fence_key(&self.namespace, &res.to_string()),
            token: uuid::Uuid::new_v4().simple().to_string(),
            lease_ms: u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX),
            how,
            started: Instant::now(),
            backoff: Backoff::new(),
            waited: false,
            reply,
        })));
        if let Err(e) = asked {
            return Answer::ready(Err(e));
        }
        Answer::later(async move {
            let grant = Answer::waiting(granted).await?;
            if grant.waited {
                stats.count_lock_wait();
            }
            if grant.fence > 0 {
                return Ok(Lease {
                    key,
                    token: grant.token,
                    fence: grant.fence,
                });
            }
            stats.count_lock_failure();
            Err(Error::Contention {
                resource: res.to_string(),
                code: "LOCK_NOT_ACQUIRED",
            })
        })
    }

    /// Releases `lease` if it is still ours (compare-and-delete), without waiting for Redis:
    /// the release is queued on the one connection every command of this process uses, so
    /// any later acquire from this process reaches Redis after it. When Redis cannot be
    /// reached the lease simply runs out.
    pub fn release(&self, lease: Lease) {
        let _ = self.send(Command::Release {
            key: lease.key,
            token: lease.token,
        });
    }
}

impl Drop for RedisLocks {
    fn drop(&mut self) {
        // The driver sends what is queued (releases included), then stops.
        self.commands.take();
        if let Some(driver) = self.driver.take() {
            let _ = driver.join();
        }
    }
}

/// The two Lua scripts, loaded on every connection the driver uses.
struct Scripts {
    acquire: redis::Script,
    release: redis::Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            acquire: redis::Script::new(ACQUIRE),
            release: redis::Script::new(RELEASE),
        }
    }

    /// Loads both on `conn`, so the driver can call them by hash (EVALSHA) in its pipelines.
    fn load(&self, conn: &mut redis::Connection) -> redis::RedisResult<()> {
        for script in [&self.acquire, &self.release] {
            script.prepare_invoke().load(conn)?;
        }
        Ok(())
    }

    /// Adds the RELEASE of `token`'s lock `key` to `pipe`.
    fn push_release<'p>(&self, pipe: &'p mut redis::Pipeline, key: &str, token: &str) -> &'p mut redis::Pipeline {
        pipe.cmd("EVALSHA")
            .arg(self.release.get_hash())
            .arg(1)
            .arg(key)
            .arg(token)
    }
}

fn dial(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
}

/// The driver thread: takes every command waiting (up to [`MAX_PIPELINE`]), sends them as one
/// pipeline, and answers each acquire from its reply. One round trip then serves a whole
/// burst of requests, and Redis reads and answers them with one system call each way instead
/// of one per command. An acquire that must wait for another holder is asked again after a
/// jittered pause, with whatever batch is going then.
///
/// A failed round trip drops the connection (after a timeout its replies may be out of step);
/// the batch is sent once more on a fresh one — every command is safe to repeat (an acquire
/// by the same token returns the same fence) — so a Redis restart between two batches costs
/// no request. If that fails too, each acquire of the batch is [`Error::LockUnavailable`], and
/// what those acquires may have taken is released with the next batch.
fn drive(
    client: redis::Client,
    mut conn: Option<redis::Connection>,
    scripts: Scripts,
    wait_bound: Duration,
    commands: crossbeam_channel::Receiver<Command>,
    round_trips: &RoundTrips,
) {
    let mut batch: Vec<Command> = Vec::new();
    // Acquires waiting out another holder, each with the moment to ask again.
    let mut waiting: Vec<(Instant, Box<Acquiring>)> = Vec::new();
    let mut give_back: Vec<(String, String)> = Vec::new();
    let mut open = true;
    // False after a failed round trip: then what is to give back waits for the next batch
    // instead of being retried in a busy loop while Redis is away.
    let mut reachable = true;
    while open || !waiting.is_empty() || (reachable && !give_back.is_empty()) {
        let next_due = waiting.iter().map(|(due, _)| *due).min();
        let first = match next_due {
            _ if !open => None,
            // Locks to give back (a granted acquire nobody waits for): send them now.
            _ if reachable && !give_back.is_empty() => commands.try_recv().ok(),
            None => commands.recv().ok(),
            Some(due) => match commands.recv_deadline(due) {
                Ok(command) => Some(command),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    open = false;
                    None
                }
            },
        };
        match first {
            Some(command) => batch.push(command),
            None if next_due.is_none() && give_back.is_empty() => open = false,
            None => {}
        }
        while open && batch.len() < MAX_PIPELINE {
            match commands.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        let mut i = 0;
        while i < waiting.len() {
            // Once the process is closing, the waiters are asked one last time at once.
            if waiting[i].0 <= now || !open {
                batch.push(Command::Acquire(waiting.swap_remove(i).1));
            } else {
                i += 1;
            }
        }
        if batch.is_empty() && give_back.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for (key, token) in &give_back {
            scripts.push_release(&mut pipe, key, token).ignore();
        }
        for command in &batch {
            match command {
                Command::Acquire(a) => pipe
                    .cmd("EVALSHA")
                    .arg(scripts.acquire.get_hash())
                    .arg(2)
                    .arg(&a.key)
                    .arg(&a.fence_key)
                    .arg(&a.token)
                    .arg(a.lease_ms)
                    .arg(FENCE_TTL_MS),
                Command::Release { key, token } => scripts.push_release(&mut pipe, key, token),
            };
        }
        let mut replies = round_trip(&client, &mut conn, &pipe, &scripts, round_trips);
        if replies.is_none() {
            conn = None;
            replies = round_trip(&client, &mut conn, &pipe, &scripts, round_trips);
        }
        reachable = replies.is_some();
        if reachable {
            give_back.clear();
        } else {
            conn = None;
        }
        let replies = replies.unwrap_or_default();
        for (i, command) in batch.drain(..).enumerate() {
            let Command::Acquire(mut a) = command else { continue };
            let fence = match replies.get(i) {
                Some(redis::Value::Int(fence)) => *fence,
                _ => {
                    // The script may have run before the reply was lost: give back what may
                    // be ours.
                    give_back.push((a.key, a.token));
                    let _ = a.reply.send(Err(Error::LockUnavailable));
                    continue;
                }
            };
            if fence == 0 && a.how == OnLostRace::Wait && open {
                let pause = a.backoff.next();
                if a.started.elapsed() + pause < wait_bound {
                    a.waited = true;
                    waiting.push((Instant::now() + pause, a));
                    continue;
                }
            }
            let grant = Grant {
                fence,
                token: a.token,
                waited: a.waited,
            };
            if let Err(Ok(grant)) = a.reply.send(Ok(grant)) {
                // Nobody waits for this lock any more (a cancelled request): give it back.
                if grant.fence > 0 {
                    give_back.push((a.key, grant.token));
                }
            }
        }
        // Redis stays away: keep only what fits in one pipeline, the leases run out anyway.
        give_back.truncate(MAX_PIPELINE);
    }
    // Last releases before the thread stops.
    if !give_back.is_empty() {
        let mut pipe = redis::pipe();
        for (key, token) in &give_back {
            scripts.push_release(&mut pipe, key, token).ignore();
        }
        let _ = round_trip(&client, &mut conn, &pipe, &scripts, round_trips);
    }
}

/// Sends `pipe` (dialling and loading the scripts first when there is no connection) and
/// reads one reply per command; `None` when the round trip failed.
fn round_trip(
    client: &redis::Client,
    conn: &mut Option<redis::Connection>,
    pipe: &redis::Pipeline,
    scripts: &Scripts,
    round_trips: &RoundTrips,
) -> Option<Vec<redis::Value>> {
    if conn.is_none() {
        let mut fresh = dial(client).ok()?;
        scripts.load(&mut fresh).ok()?;
        *conn = Some(fresh);
    }
    let started = Instant::now();
    let replies: Vec<redis::Value> = pipe.query(conn.as_mut()?).ok()?;
    round_trips.record(started.elapsed());
    if replies.iter().any(|r| matches!(r, redis::Value::ServerError(_))) {
        // NOSCRIPT (Redis lost its scripts) or worse: start again on a fresh connection.
        return None;
    }
    Some(replies)
}

/// `ticketing:<16 hex digits>`: a stable hash (FNV-1a, the same in every build) of the
/// database's absolute path, or of a PostgreSQL URL's host, port and database (not its user or
/// password), so every process on one database shares its locks and different databases never
/// meet. (Nodes must name the database server alike: one host name, not a name on some and an
/// address on others.)
pub(crate) fn namespace(db: &Database) -> String {
    let key = match db {
        Database::Sqlite(path) => absolute(path).into_os_string().into_encoded_bytes(),
        Database::Postgres(url) => {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("postgres://{rest}").into_bytes()
        }
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("ticketing:{hash:016x}")
}

fn absolute(db_path: &Path) -> std::path::PathBuf {
    match (db_path.parent(), db_path.file_name()) {
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
    }
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
        let a = namespace(&Database::from(Path::new("/tmp/a.db")));
        let b = namespace(&Database::from(Path::new("/tmp/b.db")));
        assert_ne!(a, b);
        assert_eq!(a, namespace(&Database::from(Path::new("/tmp/a.db"))));
        // One PostgreSQL database whoever connects; another database is another namespace.
        let pg = namespace(&Database::parse("postgres://alice:pw@db:5432/tickets"));
        assert_eq!(pg, namespace(&Database::parse("postgres://bob@db:5432/tickets")));
        assert_ne!(pg, namespace(&Database::parse("postgres://bob@db:5432/other")));
        assert_eq!(lock_key(&a, "seat:3"), format!("{a}:{{seat:3}}:lock"));
        assert_eq!(fence_key(&a, "seat:3"), format!("{a}:{{seat:3}}:fence"));
    }
}
