//! The waiting queue's rules over the database: admission (FIFO, at most `max_active`),
//! positions and waiting-time estimates.
//!
//! Positions are exact without counting the whole queue: token ids are dense and in issue
//! order, and admission is strictly FIFO, so every token above `admitted_through` (the newest
//! admitted id) has never been admitted. A waiting token's place is therefore the number of
//! ids between `admitted_through` and its own, less the holes (tokens in that range that died
//! while waiting), which are few and indexed.
//!
//! A unary `+` on a column (`+expires_at`) keeps SQLite from driving a query by that column's
//! index: with 100,000 waiting tokens, walking `(status, id)` in order and stopping after a few
//! rows beats collecting every live token by expiry and sorting them.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::store::{params, Conn, Row};

use crate::clock::{Clock, Timestamp};
use crate::domain::{TokenStatus, TokenView};
use crate::error::{Error, Result, TokenProblem};
use crate::store::{Answer, Store, WriteJob};

/// A token row with its status as of `now` (a run-out token reads as EXPIRED).
#[derive(Debug, Clone)]
pub(crate) struct TokenRow {
    pub id: i64,
    pub token: String,
    pub user_id: i64,
    pub status: TokenStatus,
    pub expires_at: Timestamp,
}

/// The queue's operator settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueSettings {
    pub max_active: u32,
    pub paused: bool,
    pub admitted_through: i64,
}

pub(crate) fn settings(c: &Conn<'_>) -> Result<QueueSettings> {
    c.prepare_cached("SELECT max_active, paused, admitted_through FROM queue_settings WHERE id = 1")?
        .query_row(params![], settings_row)
}

fn settings_row(r: &Row<'_>) -> Result<QueueSettings> {
    Ok(QueueSettings {
        max_active: r.get(0)?,
        paused: r.get::<_, i64>(1)? != 0,
        admitted_through: r.get(2)?,
    })
}

/// The queue's settings, with the queue row locked until the write commits. Every write that
/// issues a token or changes a token's status takes it first (on PostgreSQL; SQLite's writer
/// holds the whole database already): admission counts the ACTIVE tokens and admits the next
/// waiters with no other writer changing either, a new token's id (its place) is the next
/// one in commit order, and a user cannot get two live tokens from two nodes at once. One
/// order of locks for all of them — the queue row, then token rows — leaves no deadlock.
pub(crate) fn lock(c: &Conn<'_>) -> Result<QueueSettings> {
    c.prepare_cached("SELECT max_active, paused, admitted_through FROM queue_settings WHERE id = 1 FOR UPDATE")?
        .query_row(params![], settings_row)
}

fn row_to_token(r: &Row<'_>, now: Timestamp) -> Result<TokenRow> {
    let stored: String = r.get(3)?;
    let expires_at = Timestamp(r.get(4)?);
    let status = match stored.as_str() {
        "WAITING" if expires_at > now => TokenStatus::Waiting,
        "ACTIVE" if expires_at > now => TokenStatus::Active,
        _ => TokenStatus::Expired,
    };
    Ok(TokenRow {
        id: r.get(0)?,
        token: r.get(1)?,
        user_id: r.get(2)?,
        status,
        expires_at,
    })
}

/// Finds a token by its text. Missing text is 401 TOKEN_MISSING; not a UUID or not ours is
/// 401 TOKEN_INVALID. The status may be EXPIRED: callers decide.
///
/// The lookup goes by the token's first 8 characters (its selector, indexed) and the whole
/// token is then compared in constant time: index search time can tell a guesser at most
/// whether some token shares a 32-bit prefix, never anything about the other 90 random bits.
pub(crate) fn find_token(c: &Conn<'_>, token: &str, now: Timestamp) -> Result<TokenRow> {
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::Unauthorized(TokenProblem::Missing));
    }
    let uuid = uuid::Uuid::try_parse(token).map_err(|_| Error::Unauthorized(TokenProblem::Unknown))?;
    let text = uuid.hyphenated().to_string();
    let rows = c
        .prepare_cached("SELECT id, token, user_id, status, expires_at FROM tokens WHERE selector = substr(?1, 1, 8)")?
        .query_map(params![&text], |r| row_to_token(r, now))?;
    let mut found = None;
    for row in rows {
        if bool::from(subtle::ConstantTimeEq::ct_eq(row.token.as_bytes(), text.as_bytes())) {
            found = Some(row);
        }
    }
    found.ok_or(Error::Unauthorized(TokenProblem::Unknown))
}

/// A token by its row id (for a writer that has just created it).
pub(crate) fn token_by_id(c: &Conn<'_>, id: i64, now: Timestamp) -> Result<TokenRow> {
    c.prepare_cached("SELECT id, token, user_id, status, expires_at FROM tokens WHERE id = ?1")?
        .query_row(params![id], |r| row_to_token(r, now))
}

/// A token that may act: ACTIVE. WAITING is 403 (with its place), EXPIRED is 401.
pub(crate) fn require_active(c: &Conn<'_>, token: &str, now: Timestamp) -> Result<TokenRow> {
    let row = find_token(c, token, now)?;
    match row.status {
        TokenStatus::Active => Ok(row),
        TokenStatus::Expired => Err(Error::Unauthorized(TokenProblem::Expired)),
        TokenStatus::Waiting => Err(Error::NotAdmitted {
            position: position(c, &row, now)?,
        }),
    }
}

/// The live (WAITING or ACTIVE) token of `user_id`, if any. Only a user's newest token can be
/// live (a new one is issued only when none is), so this reads one row by the user index.
pub(crate) fn live_token_of(c: &Conn<'_>, user_id: i64, now: Timestamp) -> Result<Option<TokenRow>> {
    let newest = c
        .prepare_cached(
            "SELECT id, token, user_id, status, expires_at FROM tokens WHERE user_id = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_opt(params![user_id], |r| row_to_token(r, now))?;
    Ok(newest.filter(|t| t.status != TokenStatus::Expired))
}

/// Live ACTIVE tokens now: the ACTIVE rows (a trigger-kept counter) less those whose time ran
/// out before a sweep expired them (an index range over just those). One statement: it runs on
/// every admission and every waiter's status poll.
pub(crate) fn active_count(c: &Conn<'_>, now: Timestamp) -> Result<u32> {
    let live: i64 = c
        .prepare_cached(
            "SELECT (SELECT active_rows FROM queue_settings WHERE id = 1)
                  - (SELECT count(*) FROM tokens WHERE status = 'ACTIVE' AND expires_at <= ?1)",
        )?
        .query_row(params![now.0], |r| r.get(0))?;
    Ok(u32::try_from(live).unwrap_or(0))
}

/// Live WAITING tokens now.
pub(crate) fn waiting_count(c: &Conn<'_>, now: Timestamp) -> Result<u64> {
    Ok(
        c.prepare_cached("SELECT count(*) FROM tokens WHERE status = 'WAITING' AND expires_at > ?1")?
            .query_row(params![now.0], |r| r.get::<_, i64>(0))? as u64,
    )
}

/// 1-based place of a WAITING token among live WAITING tokens; 0 for any other status.
pub(crate) fn position(c: &Conn<'_>, row: &TokenRow, now: Timestamp) -> Result<u64> {
    Ok(place(c, row, now)?.map_or(0, |(position, _)| position))
}

/// A WAITING token's place and the queue settings it was counted against (one statement: a
/// waiter's status poll is the queue's most frequent read); `None` for any other status.
pub(crate) fn place(c: &Conn<'_>, row: &TokenRow, now: Timestamp) -> Result<Option<(u64, QueueSettings)>> {
    if row.status != TokenStatus::Waiting {
        return Ok(None);
    }
    let (s, dead, lapsed): (QueueSettings, i64, i64) = c
        .prepare_cached(
            "SELECT s.max_active, s.paused, s.admitted_through,
                    (SELECT count(*) FROM tokens WHERE status = 'EXPIRED' AND id > s.admitted_through AND id < ?1),
                    (SELECT count(*) FROM tokens WHERE status = 'WAITING' AND expires_at <= ?2
                                                   AND id > s.admitted_through AND id < ?1)
             FROM queue_settings s WHERE s.id = 1",
        )?
        .query_row(params![row.id, now.0], |r| Ok((settings_row(r)?, r.get(3)?, r.get(4)?)))?;
    let position = u64::try_from(row.id - s.admitted_through - dead - lapsed)
        .unwrap_or(1)
        .max(1);
    Ok(Some((position, s)))
}

/// Admits WAITING tokens in issue order while fewer than `max_active` are ACTIVE (unless
/// paused). Returns how many were admitted. Runs inside a write that holds the queue row: `s`
/// is what [`lock`] returned (with any change the write made to the settings since).
pub(crate) fn admit(c: &Conn<'_>, s: QueueSettings, now: Timestamp, token_ttl: Duration) -> Result<u32> {
    if s.paused {
        return Ok(0);
    }
    let active = active_count(c, now)?;
    let free = s.max_active.saturating_sub(active);
    if free == 0 {
        return Ok(0);
    }
    // (A bound LIMIT is not re-prepared on every call: connections keep query plans stable,
    // see `store::sqlite::open_connection`.)
    let ids: Vec<i64> = c
        .prepare_cached("SELECT id FROM tokens WHERE status = 'WAITING' AND +expires_at > ?1 ORDER BY id LIMIT ?2")?
        .query_map(params![now.0, free], |r| r.get(0))?;
    let Some(&last) = ids.last() else { return Ok(0) };
    // Admission times follow issue order. With several writers (PostgreSQL) a write read the
    // clock before it waited for the queue row, so another write may have admitted at a later
    // moment meanwhile: the admission is then stamped at that moment, never before it.
    let latest: Option<i64> = c
        .prepare_cached("SELECT admitted_at FROM tokens WHERE id = ?1")?
        .query_opt(params![s.admitted_through], |r| r.get(0))?
        .flatten();
    let at = Timestamp(latest.map_or(now.0, |l| l.max(now.0)));
    let expires = at.plus(token_ttl);
    let mut update =
        c.prepare_cached("UPDATE tokens SET status = 'ACTIVE', admitted_at = ?2, expires_at = ?3 WHERE id = ?1")?;
    for id in &ids {
        update.execute(params![id, at.0, expires.0])?;
    }
    c.prepare_cached(
        "UPDATE queue_settings SET admitted_through = CASE WHEN admitted_through > ?1 THEN admitted_through ELSE ?1 END
         WHERE id = 1",
    )?
    .execute(params![last])?;
    // Every node's waiters learn of it at the commit (PostgreSQL), none by polling.
    c.announce_admission(last)?;
    Ok(u32::try_from(ids.len()).unwrap_or(u32::MAX))
}

/// Tokens admitted in the minute before `now`.
pub(crate) fn admitted_last_minute(c: &Conn<'_>, now: Timestamp) -> Result<u64> {
    Ok(
        c.prepare_cached("SELECT count(*) FROM tokens WHERE admitted_at > ?1 AND admitted_at <= ?2")?
            .query_row(params![now.0 - 60_000, now.0], |r| r.get::<_, i64>(0))? as u64,
    )
}

/// Recent admissions, sampled from `admitted_through` (ids are dense and admission is FIFO,
/// so its growth is the admission count): a rate without counting rows on every status poll.
#[derive(Debug, Default)]
pub(crate) struct AdmissionRate {
    samples: parking_lot::Mutex<std::collections::VecDeque<(i64, i64)>>,
}

impl AdmissionRate {
    /// Records `(now, admitted_through)` (at most once a second) and returns admissions per
    /// minute over the last minute, once a second or more of history exists.
    fn per_minute(&self, now: Timestamp, through: i64) -> Option<f64> {
        let mut samples = self.samples.lock();
        if samples.back().is_none_or(|&(t, _)| now.0 - t >= 1_000) {
            samples.push_back((now.0, through));
        }
        while samples.len() > 1 && samples.front().is_some_and(|&(t, _)| now.0 - t > 60_000) {
            samples.pop_front();
        }
        let &(t0, first) = samples.front()?;
        let span = now.0 - t0;
        (span >= 1_000).then(|| (through - first).max(0) as f64 * 60_000.0 / span as f64)
    }
}

/// A rough wait for the `position`-th waiter (counted against settings `s`): by the last
/// minute's admission rate, or, with no admissions seen yet, as if each slot frees when its
/// token times out.
pub(crate) fn estimated_wait_seconds(
    position: u64,
    s: &QueueSettings,
    now: Timestamp,
    token_ttl: Duration,
    rate: &AdmissionRate,
) -> u64 {
    if position == 0 {
        return 0;
    }
    if let Some(per_minute) = rate.per_minute(now, s.admitted_through).filter(|r| *r > 0.0) {
        return (position as f64 * 60.0 / per_minute).ceil() as u64;
    }
    let slots = u64::from(s.max_active.max(1));
    position.div_ceil(slots) * token_ttl.as_secs()
}

/// This process's view of `admitted_through`, and the tasks waiting for it to pass their token:
/// a waiter is woken once, when its turn comes, instead of polling. On PostgreSQL every
/// node's admissions reach it at their commit (`LISTEN/NOTIFY`, see `store::postgres::listen`);
/// on SQLite the writer publishes after each of its commits, so another process's admissions
/// are seen at this process's next commit, and waiters pair this with a timeout.
#[derive(Debug, Default)]
pub(crate) struct AdmissionWatch {
    through: AtomicI64,
    /// Wakers by token id; every entry at or below `through` has been woken and removed.
    waiters: parking_lot::Mutex<BTreeMap<i64, Vec<Waker>>>,
}

impl AdmissionWatch {
    /// Records that the queue admitted through `through` and wakes whoever that reaches.
    pub fn publish(&self, through: i64) {
        if self.through.fetch_max(through, Ordering::SeqCst) >= through {
            return;
        }
        let reached = {
            let mut waiters = self.waiters.lock();
            let later = waiters.split_off(&(through + 1));
            std::mem::replace(&mut *waiters, later)
        };
        for waker in reached.into_values().flatten() {
            waker.wake();
        }
    }

    /// True when `id` is admitted (or passed over) already; otherwise `waker` is woken when it is.
    fn admitted_or_register(&self, id: i64, waker: &Waker) -> bool {
        let mut waiters = self.waiters.lock();
        if self.through.load(Ordering::SeqCst) >= id {
            return true;
        }
        let list = waiters.entry(id).or_default();
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
        false
    }
}

/// Resolves when the queue's admissions reach a token (see [`crate::Ticketing::admission`]).
#[derive(Debug, Clone)]
#[must_use = "a future does nothing unless awaited"]
pub struct Admission {
    watch: Arc<AdmissionWatch>,
    id: i64,
}

impl Admission {
    pub(crate) fn new(watch: Arc<AdmissionWatch>, id: i64) -> Admission {
        Admission { watch, id }
    }
}

impl Future for Admission {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.watch.admitted_or_register(self.id, cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// WAITING tokens whose expiry a status poll pushes forward, written together: the first poll
/// to arrive queues one write that takes every refresh waiting by the time it runs, so 10,000
/// waiters polling cost one writer job, not 10,000. Each poll is answered after the commit
/// that refreshed it, as if it had written alone.
pub(crate) struct Refreshes {
    pending: parking_lot::Mutex<Vec<(i64, TokenView, RefreshReply)>>,
    clock: Arc<dyn Clock>,
    waiting_ttl: Duration,
}

type RefreshReply = futures_channel::oneshot::Sender<Result<TokenView>>;

impl Refreshes {
    pub fn new(clock: Arc<dyn Clock>, waiting_ttl: Duration) -> Refreshes {
        Refreshes {
            pending: parking_lot::Mutex::default(),
            clock,
            waiting_ttl,
        }
    }

    /// Pushes the expiry of WAITING token `id` to `waiting_ttl` from the write's time; the
    /// answer is `view` once that is committed.
    pub fn request(self: &Arc<Self>, store: &Store, id: i64, view: TokenView) -> Result<Answer<TokenView>> {
        let (reply, answer) = futures_channel::oneshot::channel();
        let first = {
            let mut pending = self.pending.lock();
            pending.push((id, view, reply));
            pending.len() == 1
        };
        if first {
            store.submit_job(Box::new(RefreshJob {
                refreshes: self.clone(),
                taken: Vec::new(),
                expires: Timestamp(0),
                failed: None,
            }))?;
        }
        Ok(Answer::waiting(answer))
    }
}

struct RefreshJob {
    refreshes: Arc<Refreshes>,
    taken: Vec<(i64, TokenView, RefreshReply)>,
    expires: Timestamp,
    failed: Option<Error>,
}

impl WriteJob for RefreshJob {
    fn run(&mut self, conn: &Conn<'_>) -> bool {
        self.taken = std::mem::take(&mut *self.refreshes.pending.lock());
        let expires = self.refreshes.clock.now().plus(self.refreshes.waiting_ttl);
        self.expires = expires;
        let result = (|| -> Result<()> {
            let mut update =
                conn.prepare_cached("UPDATE tokens SET expires_at = ?2 WHERE id = ?1 AND status = 'WAITING'")?;
            for (id, _, _) in &self.taken {
                update.execute(params![id, expires.0])?;
            }
            Ok(())
        })();
        self.failed = result.err();
        self.failed.is_none()
    }

    fn guarded(&self) -> bool {
        // One prepared UPDATE per token, nothing checked after the first.
        false
    }

    fn error(&self) -> Option<Error> {
        self.failed.clone()
    }

    fn finish(self: Box<Self>, commit: Result<()>) {
        let outcome = match (self.failed, commit) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(()),
        };
        for (_, mut view, reply) in self.taken {
            view.expires_at = self.expires;
            let _ = reply.send(outcome.clone().map(|()| view));
        }
    }
}
