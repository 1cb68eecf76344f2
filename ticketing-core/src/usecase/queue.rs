//! The waiting queue's use cases: issue a token, read its status (which keeps a waiter alive and
//! admits it when a slot is free), wait for admission, leave. The queue's rules over the
//! database (admission, places, estimates) are in `crate::queue`.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::domain::{check_user_id, TokenStatus, TokenView};
use crate::error::{Error, Result, TokenProblem};
use crate::queue::{self, Admission, AdmissionRate, QueueSettings, TokenRow};
use crate::store::{self, params, Answer, Conn};
use crate::ticketing::Ticketing;

/// A WAITING token's expiry is pushed forward at most this often, so status polls stay reads.
const REFRESH_EVERY: Duration = Duration::from_secs(15);

impl Ticketing {
    /// Issues a queue token for `user_id`, or returns the live one the user already has (same
    /// token, same place: asking again never moves anyone).
    pub fn issue_token(&self, user_id: i64) -> Result<TokenView> {
        self.issue_token_answer(user_id)?.wait()
    }

    /// [`Ticketing::issue_token`] without waiting for the commit (see [`Answer`]).
    pub fn issue_token_answer(&self, user_id: i64) -> Result<Answer<TokenView>> {
        let rate = self.inner.admissions.clone();
        let user_id = check_user_id(user_id)?;
        let (clock, ttl, waiting_ttl) = (
            self.inner.clock.clone(),
            self.token_ttl(),
            self.inner.config.waiting_ttl,
        );
        // Fast path: a user asking again reads instead of writing.
        if let Some(view) = self.store().read(|c| {
            let now = clock.now();
            queue::live_token_of(c, user_id, now)?
                .map(|row| token_view(c, &row, now, ttl, &rate))
                .transpose()
        })? {
            return Ok(Answer::ready(Ok(view)));
        }
        let clock = self.inner.clock.clone();
        self.store().submit_unguarded(move |c| {
            let now = clock.now();
            // The queue row first (see `queue::lock`): no other writer issues a token meanwhile,
            // so the user's live token is checked and the new token's place taken safely.
            let settings = queue::lock(c)?;
            let row = match queue::live_token_of(c, user_id, now)? {
                Some(row) => row,
                None => {
                    let token = uuid::Uuid::new_v4().hyphenated().to_string();
                    // The id is the token's place in issue order: the next one, dense.
                    let id: i64 = c
                        .prepare_cached(
                            "INSERT INTO tokens (id, token, selector, user_id, status, issued_at, expires_at)
                             VALUES ((SELECT coalesce(max(id), 0) + 1 FROM tokens), ?1, substr(?1, 1, 8), ?2,
                                     'WAITING', ?3, ?4)
                             RETURNING id",
                        )?
                        .query_row(params![token, user_id, now.0, now.plus(waiting_ttl).0], |r| r.get(0))?;
                    queue::admit(c, settings, now, ttl)?;
                    queue::token_by_id(c, id, now)?
                }
            };
            token_view(c, &row, now, ttl, &rate)
        })
    }

    /// The status of a token (any status; only an unknown token is an error). Asking keeps a
    /// WAITING token alive, and admits it at once when a slot is free.
    pub fn token_status(&self, token: &str) -> Result<TokenView> {
        self.token_status_answer(token)?.wait()
    }

    /// [`Ticketing::token_status`] without waiting for a commit (see [`Answer`]).
    pub fn token_status_answer(&self, token: &str) -> Result<Answer<TokenView>> {
        let rate = self.inner.admissions.clone();
        let clock = self.inner.clock.clone();
        let (ttl, waiting_ttl) = (self.token_ttl(), self.inner.config.waiting_ttl);
        let (view, refresh, admit) = self.store().read(|c| {
            let now = clock.now();
            let row = queue::find_token(c, token, now)?;
            let (view, counted_against) = token_view_and_settings(c, &row, now, ttl, &rate)?;
            let (mut refresh, mut admit) = (false, false);
            // A WAITING token's place was counted against the queue settings: decide with those.
            if let Some(s) = counted_against {
                let last_seen = Timestamp(row.expires_at.0 - i64::try_from(waiting_ttl.as_millis()).unwrap_or(0));
                // Only a waiter within max-active of the front can have a free slot waiting.
                let free = if s.paused || view.queue_position > u64::from(s.max_active) {
                    0
                } else {
                    s.max_active.saturating_sub(queue::active_count(c, now)?)
                };
                refresh = last_seen.until(now) >= REFRESH_EVERY.min(waiting_ttl / 4);
                admit = view.queue_position <= u64::from(free);
            }
            Ok((view, refresh, admit))
        })?;
        if !admit {
            if refresh {
                return self.inner.refreshes.request(self.store(), view.id, view);
            }
            return Ok(Answer::ready(Ok(view)));
        }
        let token = token.to_string();
        self.store().submit_unguarded(move |c| {
            let now = clock.now();
            let settings = queue::lock(c)?;
            let row = queue::find_token(c, &token, now)?;
            if row.status == TokenStatus::Waiting {
                c.prepare_cached("UPDATE tokens SET expires_at = ?2 WHERE id = ?1 AND status = 'WAITING'")?
                    .execute(params![row.id, now.plus(waiting_ttl).0])?;
                queue::admit(c, settings, now, ttl)?;
            }
            let row = queue::find_token(c, &token, now)?;
            token_view(c, &row, now, ttl, &rate)
        })
    }

    /// A future that resolves when the queue admits `token`'s place (at once for a token that
    /// is not WAITING): a waiting client sleeps on it instead of polling, then reads its
    /// status. On PostgreSQL any node's admission wakes it at that commit; on SQLite another
    /// process's admission is seen only when this process next commits, so pair it with a
    /// timeout there.
    pub fn admission(&self, token: &str) -> Result<Admission> {
        let now = self.now();
        let row = self.store().read(|c| queue::find_token(c, token, now))?;
        let id = if row.status == TokenStatus::Waiting {
            row.id
        } else {
            i64::MIN
        };
        Ok(Admission::new(self.inner.watch.clone(), id))
    }

    /// [`Ticketing::admission`] for a token whose view the caller holds (no read).
    pub fn admission_of(&self, view: &TokenView) -> Admission {
        let id = if view.status == TokenStatus::Waiting {
            view.id
        } else {
            i64::MIN
        };
        Admission::new(self.inner.watch.clone(), id)
    }

    /// Gives up a token (the user leaves the queue or is done): it expires and its slot frees.
    pub fn leave(&self, token: &str) -> Result<TokenView> {
        self.leave_answer(token)?.wait()
    }

    /// [`Ticketing::leave`] without waiting for the commit (see [`Answer`]).
    pub fn leave_answer(&self, token: &str) -> Result<Answer<TokenView>> {
        let rate = self.inner.admissions.clone();
        let clock = self.inner.clock.clone();
        let ttl = self.token_ttl();
        // The token is found here, on a reader: rows are never deleted and a token's text never
        // changes, so the writer (every process's bottleneck) only expires it by id.
        let row = self.store().read(|c| queue::find_token(c, token, clock.now()))?;
        self.store().submit_unguarded(move |c| {
            let now = clock.now();
            queue::lock(c)?;
            expire_token_row(c, row.id, now)?;
            // The slot's next waiter is admitted at the end of this batch, in the same commit.
            store::admit_before_commit();
            // What `expire_token_row` made of it, without reading it back.
            let gone = TokenRow {
                status: TokenStatus::Expired,
                expires_at: row.expires_at.min(now),
                ..row
            };
            token_view(c, &gone, now, ttl, &rate)
        })
    }
}

/// Inside a write: the token is still ACTIVE (it may have been paid out or timed out since
/// `decide` read it). Its row stays locked until the commit: a user has one live token, so
/// this serializes the user's holds and payments across every node — what makes the
/// `max-holds` count-then-insert safe with many writers.
pub(crate) fn ensure_token_active(c: &Conn<'_>, token_id: i64, now: Timestamp) -> Result<()> {
    let (status, expires_at): (String, i64) = c
        .prepare_cached("SELECT status, expires_at FROM tokens WHERE id = ?1 FOR UPDATE")?
        .query_row(params![token_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if status == "ACTIVE" && expires_at > now.0 {
        Ok(())
    } else {
        Err(Error::Unauthorized(TokenProblem::Expired))
    }
}

/// Expires a token (its slot frees). The write holds the queue row already, as every
/// token-status change does (see `queue::lock`).
pub(crate) fn expire_token_row(c: &Conn<'_>, token_id: i64, now: Timestamp) -> Result<()> {
    c.prepare_cached(
        "UPDATE tokens SET status = 'EXPIRED', expires_at = CASE WHEN expires_at < ?2 THEN expires_at ELSE ?2 END
         WHERE id = ?1 AND status != 'EXPIRED'",
    )?
    .execute(params![token_id, now.0])?;
    Ok(())
}

pub(crate) fn token_view(
    c: &Conn<'_>,
    row: &TokenRow,
    now: Timestamp,
    token_ttl: Duration,
    rate: &AdmissionRate,
) -> Result<TokenView> {
    Ok(token_view_and_settings(c, row, now, token_ttl, rate)?.0)
}

/// [`token_view`], with the queue settings a WAITING token's place was counted against (`None`
/// for any other status), so a status poll decides on them without reading them again.
fn token_view_and_settings(
    c: &Conn<'_>,
    row: &TokenRow,
    now: Timestamp,
    token_ttl: Duration,
    rate: &AdmissionRate,
) -> Result<(TokenView, Option<QueueSettings>)> {
    let place = queue::place(c, row, now)?;
    let (position, estimate) = match &place {
        Some((position, s)) => (
            *position,
            queue::estimated_wait_seconds(*position, s, now, token_ttl, rate),
        ),
        None => (0, 0),
    };
    let view = TokenView {
        token: row.token.clone(),
        user_id: row.user_id,
        status: row.status,
        queue_position: position,
        expires_at: row.expires_at,
        estimated_wait_seconds: estimate,
        id: row.id,
    };
    Ok((view, place.map(|(_, s)| s)))
}
