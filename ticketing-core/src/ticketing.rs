//! [`Ticketing`]: the use cases. Every front end calls these methods and nothing else.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::config::{Config, StrategyKind};
use crate::domain::{
    check_amount, check_user_id, Concert, ConcertDate, Hold, LedgerKind, PayCmd, PaymentReceipt, ReserveCmd, Seat,
    SeatStatus, TokenStatus, TokenView,
};
use crate::error::{Error, Result, TokenProblem};
use crate::memo::{Memo, TokenMemo};
use crate::money::Money;
use crate::queue::{self, Admission, AdmissionRate, AdmissionWatch, Refreshes, TokenRow};
use crate::store::{self, params, Answer, Conn, Hooks, Store};
use crate::strategy::{expect_one_row, ContentionSnapshot, Fences, OnLostRace, Resource, Strategy};

/// A fault-injection point between two writes: with the `failpoints` feature a test can make it
/// fail or panic (`fail::cfg`); without it, it compiles to nothing.
macro_rules! fault_point {
    ($name:literal) => {
        fail::fail_point!($name, |_| Err(Error::Internal(
            concat!("injected fault at ", $name).into()
        )))
    };
}

/// Every fault point, for tests that visit them all.
pub const FAULT_POINTS: &[&str] = &[
    "reserve:after-insert",
    "reserve:after-seat",
    "wallet:after-balance",
    "pay:after-reservation",
    "pay:after-seat",
    "pay:after-wallet",
    "pay:after-ledger",
    "pay:after-payment",
    "pay:after-token",
];

/// A WAITING token's expiry is pushed forward at most this often, so status polls stay reads.
const REFRESH_EVERY: Duration = Duration::from_secs(15);
/// Idempotency keys are kept at least 24 hours; swept after 25.
const IDEMPOTENCY_KEEP: Duration = Duration::from_secs(25 * 3600);
/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

pub(crate) struct Inner {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub store: Store,
    pub strategy: Strategy,
    pub admissions: Arc<AdmissionRate>,
    pub watch: Arc<AdmissionWatch>,
    pub refreshes: Arc<Refreshes>,
    /// ACTIVE tokens as the last memoized read saw them (see [`Memo`]).
    pub tokens: TokenMemo,
}

/// The ticketing service over one database. Cheap to clone; share it across threads.
#[derive(Clone)]
pub struct Ticketing {
    pub(crate) inner: Arc<Inner>,
}

/// What one [`Ticketing::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Holds that ran out (reservation EXPIRED, seat AVAILABLE again).
    pub holds_expired: u64,
    /// Tokens that timed out.
    pub tokens_expired: u64,
    /// Waiters admitted.
    pub admitted: u32,
}

impl Ticketing {
    /// Opens the database of `config` (creating and migrating it when missing) on the wall clock.
    pub fn open(config: Config) -> Result<Ticketing> {
        Ticketing::open_with_clock(config, Arc::new(SystemClock))
    }

    /// Opens with an injected clock (tests use [`crate::ManualClock`]).
    pub fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Ticketing> {
        config.validate()?;
        // Redis is dialled before the store opens: an unreachable Redis leaves no new database
        // file behind. (Its lock namespace comes from the database's path, not from the file.)
        let strategy = Strategy::new(&config)?;
        let watch = Arc::new(AdmissionWatch::default());
        let refreshes = Arc::new(Refreshes::new(clock.clone(), config.waiting_ttl));
        let publish = {
            let watch = watch.clone();
            move |c: &Conn<'_>| {
                if let Ok(s) = queue::settings(c) {
                    watch.publish(s.admitted_through);
                }
            }
        };
        // Leaves free their slot in the job and leave the admission to the end of the batch:
        // one walk of the queue admits the next waiter of every leave in it.
        let admit = {
            let (clock, ttl) = (clock.clone(), config.token_ttl);
            move |c: &Conn<'_>| {
                if store::take_admit_due() {
                    queue::admit(c, clock.now(), ttl)?;
                }
                Ok(())
            }
        };
        let hooks = Hooks {
            before_commit: Box::new(admit),
            after_commit: Box::new(publish),
        };
        let store = Store::open(&config, hooks)?;
        let t = Ticketing {
            inner: Arc::new(Inner {
                config,
                clock,
                store,
                strategy,
                admissions: Arc::default(),
                watch,
                refreshes,
                tokens: TokenMemo::default(),
            }),
        };
        if let Some(max) = t.inner.config.max_active {
            t.set_max_active(max)?;
        }
        Ok(t)
    }

    /// Opens the existing database of `config` for reading only (operator reads: `admin`
    /// listings, the console until an action): nothing is created, migrated or written,
    /// `config.max_active` is ignored, and no lock service is dialled. Every write fails with
    /// [`Error::Setup`]. A missing file, a file that is not a database, or one without this
    /// build's schema is an [`Error::Setup`] naming it.
    pub fn open_read_only(config: Config) -> Result<Ticketing> {
        config.validate()?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = Store::open_read_only(&config)?;
        // Reads never take locks; the strategy's only use here is to refuse writes, and the
        // store does that already.
        let strategy = Strategy::new(&config.clone().with_strategy(StrategyKind::Optimistic))?;
        Ok(Ticketing {
            inner: Arc::new(Inner {
                refreshes: Arc::new(Refreshes::new(clock.clone(), config.waiting_ttl)),
                config,
                clock,
                store,
                strategy,
                admissions: Arc::default(),
                watch: Arc::default(),
                tokens: TokenMemo::default(),
            }),
        })
    }

    /// Checks that the services `config` names can be used, without opening the database:
    /// under the redis strategy, that Redis answers and takes the lock scripts. Front ends
    /// that open the database later (or read-only first) call it to refuse at start-up.
    pub fn check_services(config: &Config) -> Result<()> {
        config.validate()?;
        Strategy::new(config).map(drop)
    }

    /// The settings this service runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The strategy in use.
    pub fn strategy(&self) -> StrategyKind {
        self.inner.strategy.kind()
    }

    /// Lost-race counters since start.
    pub fn contention(&self) -> ContentionSnapshot {
        self.inner.strategy.stats.snapshot()
    }

    /// Now, by the injected clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    fn token_ttl(&self) -> Duration {
        self.inner.config.token_ttl
    }

    // ----- waiting queue -------------------------------------------------------------------

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
            queue::lock(c)?;
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
                    queue::admit(c, now, ttl)?;
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
            let view = token_view(c, &row, now, ttl, &rate)?;
            let (mut refresh, mut admit) = (false, false);
            if row.status == TokenStatus::Waiting {
                let last_seen = Timestamp(row.expires_at.0 - i64::try_from(waiting_ttl.as_millis()).unwrap_or(0));
                let s = queue::settings(c)?;
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
            queue::lock(c)?;
            let row = queue::find_token(c, &token, now)?;
            if row.status == TokenStatus::Waiting {
                c.prepare_cached("UPDATE tokens SET expires_at = ?2 WHERE id = ?1 AND status = 'WAITING'")?
                    .execute(params![row.id, now.plus(waiting_ttl).0])?;
                queue::admit(c, now, ttl)?;
            }
            let row = queue::find_token(c, &token, now)?;
            token_view(c, &row, now, ttl, &rate)
        })
    }

    /// A future that resolves when this process's queue admits `token`'s place (at once for a
    /// token that is not WAITING): a waiting client sleeps on it instead of polling, then
    /// reads its status. Admissions made by another process are not seen until this process
    /// commits something, so always pair it with a timeout.
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

    // ----- catalogue -----------------------------------------------------------------------

    /// Every concert.
    pub fn concerts(&self) -> Result<Vec<Concert>> {
        self.store().read(|c| {
            let rows = c
                .prepare_cached("SELECT id, title FROM concerts ORDER BY id")?
                .query_map(params![], |r| {
                    Ok(Concert {
                        concert_id: r.get(0)?,
                        title: r.get(1)?,
                    })
                })?;
            Ok(rows)
        })
    }

    /// The dates of `concert_id` with at least one AVAILABLE seat. Needs an ACTIVE token.
    pub fn available_dates(&self, token: &str, concert_id: i64) -> Result<Vec<ConcertDate>> {
        let now = self.now();
        self.store().read(|c| {
            queue::require_active(c, token, now)?;
            free_dates(c, concert_id, now)
        })
    }

    /// The AVAILABLE seats of one date. Needs an ACTIVE token.
    pub fn available_seats(&self, token: &str, concert_option_id: i64) -> Result<Vec<Seat>> {
        let now = self.now();
        self.store().read(|c| {
            queue::require_active(c, token, now)?;
            option_price(c, concert_option_id)?;
            free_seats(c, concert_option_id, now)
        })
    }

    /// [`Ticketing::available_dates`] answered from memory, without the database: the answer
    /// `memo` keeps for the concert, while nothing has been committed since it was read and no
    /// hold has run out since, with the token checked against the ACTIVE tokens of that same
    /// moment. `None` when memory cannot answer: call [`Ticketing::available_dates_memo`].
    /// Cheap enough (a couple of microseconds) for an async front end's event loop.
    pub fn available_dates_memoized<R: Clone>(
        &self,
        memo: &Memo<R>,
        token: &str,
        concert_id: i64,
    ) -> Option<Result<R>> {
        self.memoized(memo, token, concert_id)
    }

    /// [`Ticketing::available_dates`], rendered by `render` (JSON bytes, say) and kept in
    /// `memo` for [`Ticketing::available_dates_memoized`].
    pub fn available_dates_memo<R: Clone>(
        &self,
        memo: &Memo<R>,
        token: &str,
        concert_id: i64,
        render: impl FnOnce(&[ConcertDate]) -> R,
    ) -> Result<R> {
        self.memo_read(
            memo,
            token,
            concert_id,
            |d: &Vec<ConcertDate>| render(d),
            |c, now| {
                let dates = free_dates(c, concert_id, now)?;
                let next_lapse = c
                    .prepare_cached(
                        "SELECT min(s.held_until) FROM concert_options o JOIN seats s ON s.option_id = o.id
                     WHERE o.concert_id = ?1 AND s.status = 'HELD' AND +s.held_until > ?2",
                    )?
                    .query_row(params![concert_id, now.0], |r| r.get(0))?;
                Ok((dates, next_lapse))
            },
        )
    }

    /// [`Ticketing::available_seats`] answered from memory; see
    /// [`Ticketing::available_dates_memoized`]. `None`: call [`Ticketing::available_seats_memo`].
    pub fn available_seats_memoized<R: Clone>(
        &self,
        memo: &Memo<R>,
        token: &str,
        concert_option_id: i64,
    ) -> Option<Result<R>> {
        self.memoized(memo, token, concert_option_id)
    }

    /// [`Ticketing::available_seats`], rendered by `render` and kept in `memo` for
    /// [`Ticketing::available_seats_memoized`].
    pub fn available_seats_memo<R: Clone>(
        &self,
        memo: &Memo<R>,
        token: &str,
        concert_option_id: i64,
        render: impl FnOnce(&[Seat]) -> R,
    ) -> Result<R> {
        self.memo_read(
            memo,
            token,
            concert_option_id,
            |s: &Vec<Seat>| render(s),
            |c, now| {
                option_price(c, concert_option_id)?;
                let seats = free_seats(c, concert_option_id, now)?;
                let next_lapse = c
                .prepare_cached(
                    "SELECT min(held_until) FROM seats WHERE option_id = ?1 AND status = 'HELD' AND +held_until > ?2",
                )?
                .query_row(params![concert_option_id, now.0], |r| r.get(0))?;
                Ok((seats, next_lapse))
            },
        )
    }

    fn memoized<R: Clone>(&self, memo: &Memo<R>, token: &str, key: i64) -> Option<Result<R>> {
        let answer = (|| {
            let version = self.store().version()?;
            let now = self.now();
            let answer = memo.get(key, version, now)?;
            Some(self.inner.tokens.check(token, version, now)?.map(|()| answer))
        })();
        memo.count(answer.is_some());
        answer
    }

    /// Checks the token and runs `read` (which answers with the first moment after `now` its
    /// answer changes by itself, if any) in one read transaction; renders the answer and keeps
    /// it, and the token, in memory for the database version the read started from.
    fn memo_read<T, R: Clone>(
        &self,
        memo: &Memo<R>,
        token: &str,
        key: i64,
        render: impl FnOnce(&T) -> R,
        read: impl FnOnce(&Conn<'_>, Timestamp) -> Result<(T, Option<i64>)>,
    ) -> Result<R> {
        // The version is read first: whatever the read then sees is at least that new.
        let version = self.store().version();
        let now = self.now();
        let (row, (value, next_change)) = self.store().read(|c| {
            let row = queue::require_active(c, token, now)?;
            Ok((row, read(c, now)?))
        })?;
        let answer = render(&value);
        if let Some(version) = version {
            self.inner.tokens.remember(token, version, row.expires_at);
            let until = Timestamp(next_change.unwrap_or(i64::MAX));
            memo.put(key, version, now, until, answer.clone());
        }
        Ok(answer)
    }

    // ----- seat holds ----------------------------------------------------------------------

    /// Holds a seat for `hold_ttl`. Of any number of concurrent attempts on one seat exactly
    /// one wins; the others fail at once with [`Error::SeatUnavailable`] or a contention error.
    pub fn reserve(&self, cmd: ReserveCmd) -> Result<Hold> {
        self.reserve_answer(cmd)?.wait()
    }

    /// [`Ticketing::reserve`] without waiting for the commit (see [`Answer`]; under the redis
    /// strategy the answer is the whole locked sequence, run as it is awaited).
    pub fn reserve_answer(&self, cmd: ReserveCmd) -> Result<Answer<Hold>> {
        if let Some(user) = cmd.user_id {
            check_user_id(user)?;
        }
        let clock = self.inner.clock.clone();
        let (hold_ttl, max_holds) = (self.inner.config.hold_ttl, self.inner.config.max_holds);
        let seat_id = cmd.seat_id;
        let decide = {
            let clock = clock.clone();
            move |c: &Conn<'_>| {
                let now = clock.now();
                let tok = queue::require_active(c, &cmd.token, now)?;
                if cmd.user_id.is_some_and(|u| u != tok.user_id) {
                    return Err(Error::UserMismatch);
                }
                let price = option_price(c, cmd.concert_option_id)?;
                let seat = c
                    .prepare_cached(
                        "SELECT option_id, status, held_until, reservation_id, version FROM seats WHERE id = ?1",
                    )?
                    .query_opt(params![cmd.seat_id], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    })?;
                let Some((option_id, status, held_until, reservation_id, version)) = seat else {
                    return Err(Error::not_found("seat", cmd.seat_id));
                };
                if option_id != cmd.concert_option_id {
                    return Err(Error::not_found("seat", cmd.seat_id));
                }
                let lapsed_hold = match (status.as_str(), held_until) {
                    ("AVAILABLE", _) => None,
                    ("HELD", Some(until)) if until <= now.0 => reservation_id,
                    _ => return Err(Error::SeatUnavailable { seat_id: cmd.seat_id }),
                };
                Ok(ReservePlan {
                    user_id: tok.user_id,
                    token_id: tok.id,
                    option_id,
                    price,
                    version,
                    lapsed_hold,
                })
            }
        };
        let apply = move |c: &Conn<'_>, plan: ReservePlan, fences: &Fences| {
            let now = clock.now();
            ensure_token_active(c, plan.token_id, now)?;
            let holds: u32 = c
                .prepare_cached(
                    "SELECT count(*) FROM reservations WHERE user_id = ?1 AND status = 'HELD' AND +held_until > ?2",
                )?
                .query_row(params![plan.user_id, now.0], |r| r.get(0))?;
            if holds >= max_holds {
                return Err(Error::TooManyHolds { max: max_holds });
            }
            let held_until = now.plus(hold_ttl);
            let reservation_id: i64 = c
                .prepare_cached(
                    "INSERT INTO reservations (user_id, seat_id, option_id, status, held_until, price, created_at, fence)
                     VALUES (?1, ?2, ?3, 'HELD', ?4, ?5, ?6, coalesce(CAST(?7 AS BIGINT), 0))
                     RETURNING id",
                )?
                .query_row(
                    params![
                        plan.user_id,
                        seat_id,
                        plan.option_id,
                        held_until.0,
                        plan.price.cents(),
                        now.0,
                        fences.of(Resource::Seat(seat_id))
                    ],
                    |r| r.get(0),
                )?;
            fault_point!("reserve:after-insert");
            let fence = fences.of(Resource::Seat(seat_id));
            let changed = c
                .prepare_cached(
                    "UPDATE seats SET status = 'HELD', held_until = ?2, reservation_id = ?3, version = version + 1,
                            fence = coalesce(CAST(?5 AS BIGINT), fence)
                     WHERE id = ?1 AND version = ?4 AND (CAST(?5 AS BIGINT) IS NULL OR fence <= ?5)",
                )?
                .execute(params![seat_id, held_until.0, reservation_id, plan.version, fence])?;
            expect_one_row(changed, Resource::Seat(seat_id), c, fences)?;
            fault_point!("reserve:after-seat");
            if let Some(old) = plan.lapsed_hold {
                c.prepare_cached("UPDATE reservations SET status = 'EXPIRED', version = version + 1 WHERE id = ?1 AND status = 'HELD'")?
                    .execute(params![old])?;
            }
            Ok(Hold {
                reservation_id,
                user_id: plan.user_id,
                seat_id,
                concert_option_id: plan.option_id,
                held_until,
                price: plan.price,
            })
        };
        self.inner.strategy.start(
            self.store(),
            &[(Resource::Seat(seat_id), OnLostRace::FailFast)],
            decide,
            apply,
        )
    }

    // ----- wallet --------------------------------------------------------------------------

    /// Adds `amount` to the wallet of `user_id` (created on first charge). Returns the new balance.
    pub fn charge(&self, user_id: i64, amount: Money) -> Result<Money> {
        self.charge_answer(user_id, amount)?.wait()
    }

    /// [`Ticketing::charge`] without waiting for the commit (see [`Ticketing::reserve_answer`]).
    pub fn charge_answer(&self, user_id: i64, amount: Money) -> Result<Answer<Money>> {
        self.move_money(user_id, amount, LedgerKind::Charge)
    }

    /// Takes `amount` from the wallet of `user_id` (the seed's "use points"). Returns the new balance.
    pub fn use_points(&self, user_id: i64, amount: Money) -> Result<Money> {
        self.use_points_answer(user_id, amount)?.wait()
    }

    /// [`Ticketing::use_points`] without waiting for the commit (see [`Ticketing::reserve_answer`]).
    pub fn use_points_answer(&self, user_id: i64, amount: Money) -> Result<Answer<Money>> {
        self.move_money(user_id, amount, LedgerKind::Use)
    }

    /// The balance of `user_id` (0 for a user with no wallet).
    pub fn balance(&self, user_id: i64) -> Result<Money> {
        let user_id = check_user_id(user_id)?;
        self.store()
            .read(|c| Ok(read_wallet(c, user_id)?.map_or(Money::ZERO, |w| w.balance)))
    }

    fn move_money(&self, user_id: i64, amount: Money, kind: LedgerKind) -> Result<Answer<Money>> {
        let user_id = check_user_id(user_id)?;
        let amount = check_amount(amount)?;
        let clock = self.inner.clock.clone();
        let decide = move |c: &Conn<'_>| {
            let wallet = read_wallet(c, user_id)?;
            let balance = wallet.map_or(Money::ZERO, |w| w.balance);
            let after = match kind {
                LedgerKind::Charge => balance.checked_add_balance(amount).ok_or(Error::BalanceLimit)?,
                _ => balance.checked_sub_balance(amount).ok_or(Error::InsufficientBalance {
                    balance,
                    needed: amount,
                })?,
            };
            Ok((wallet.map(|w| w.version), after))
        };
        let apply = move |c: &Conn<'_>, (version, after): (Option<i64>, Money), fences: &Fences| {
            write_wallet(c, user_id, version, after, fences)?;
            fault_point!("wallet:after-balance");
            append_ledger(c, user_id, kind, amount, after, clock.now())?;
            Ok(after)
        };
        self.inner.strategy.start(
            self.store(),
            &[(Resource::Wallet(user_id), OnLostRace::Wait)],
            decide,
            apply,
        )
    }

    // ----- payment -------------------------------------------------------------------------

    /// Pays a held reservation from the owner's wallet, in one transaction: wallet debited,
    /// ledger entry, payment row, reservation PAID, seat SOLD, token EXPIRED (its slot goes to
    /// the next waiter). With an idempotency key, a repeat of a successful payment returns the
    /// stored receipt, even after the token expired.
    pub fn pay(&self, cmd: PayCmd) -> Result<PaymentReceipt> {
        self.pay_answer(cmd)?.wait()
    }

    /// [`Ticketing::pay`] without waiting for the commit (see [`Ticketing::reserve_answer`]).
    pub fn pay_answer(&self, cmd: PayCmd) -> Result<Answer<PaymentReceipt>> {
        let amount = check_amount(cmd.amount)?;
        if let Some(key) = &cmd.idempotency_key {
            if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
                return Err(Error::invalid(
                    "Idempotency-Key",
                    "Idempotency-Key must be 1 to 255 characters",
                ));
            }
        }
        let now = self.now();
        let user_id = self.store().read(|c| queue::find_token(c, &cmd.token, now))?.user_id;
        let rid = cmd.reservation_id;
        let clock = self.inner.clock.clone();
        let decide = {
            let clock = clock.clone();
            let cmd = cmd.clone();
            move |c: &Conn<'_>| {
                let now = clock.now();
                let tok = queue::find_token(c, &cmd.token, now)?;
                if let Some(key) = &cmd.idempotency_key {
                    if let Some(receipt) = stored_receipt(c, key, tok.user_id, rid, amount)? {
                        return Ok(PayPlan::Replay(receipt));
                    }
                }
                let tok = queue::require_active(c, &cmd.token, now)?;
                let r = c
                    .prepare_cached(
                        "SELECT user_id, seat_id, status, held_until, price, version FROM reservations WHERE id = ?1",
                    )?
                    .query_opt(params![rid], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    })?;
                let Some((owner, seat_id, status, held_until, price, version)) = r else {
                    return Err(Error::not_found("reservation", rid));
                };
                if owner != tok.user_id {
                    return Err(Error::not_found("reservation", rid));
                }
                reservation_payable(rid, &status, held_until, now)?;
                let price = Money::from_cents(price);
                if amount != price {
                    return Err(Error::AmountMismatch { given: amount, price });
                }
                let wallet = read_wallet(c, tok.user_id)?;
                let balance = wallet.map_or(Money::ZERO, |w| w.balance);
                let after = balance.checked_sub_balance(amount).ok_or(Error::InsufficientBalance {
                    balance,
                    needed: amount,
                })?;
                Ok(PayPlan::Pay {
                    token_id: tok.id,
                    user_id: tok.user_id,
                    seat_id,
                    version,
                    wallet_version: wallet.map(|w| w.version),
                    after,
                })
            }
        };
        let key = cmd.idempotency_key.clone();
        let ttl = self.token_ttl();
        let apply = move |c: &Conn<'_>, plan: PayPlan, fences: &Fences| {
            let now = clock.now();
            let PayPlan::Pay {
                token_id,
                user_id,
                seat_id,
                version,
                wallet_version,
                after,
            } = plan
            else {
                let PayPlan::Replay(receipt) = plan else {
                    unreachable!("two variants")
                };
                return Ok(receipt);
            };
            if let Some(key) = &key {
                // Another request with this key may have committed since `decide` read.
                if let Some(receipt) = stored_receipt(c, key, user_id, rid, amount)? {
                    return Ok(receipt);
                }
            }
            let fence = fences.of(Resource::Reservation(rid));
            let changed = c
                .prepare_cached(
                    "UPDATE reservations SET status = 'PAID', version = version + 1, fence = coalesce(CAST(?4 AS BIGINT), fence)
                     WHERE id = ?1 AND version = ?2 AND status = 'HELD' AND held_until > ?3 AND (CAST(?4 AS BIGINT) IS NULL OR fence <= ?4)",
                )?
                .execute(params![rid, version, now.0, fence])?;
            if changed != 1 {
                // A twin with this key may have paid while this write waited for the row (on
                // PostgreSQL the UPDATE waits for the winner's commit): its receipt is the answer.
                if let Some(key) = &key {
                    if let Some(receipt) = stored_receipt(c, key, user_id, rid, amount)? {
                        return Ok(receipt);
                    }
                }
                // Say what happened when we can: paid by a racing request, or the hold ran out.
                let (status, held_until): (String, i64) = c
                    .prepare_cached("SELECT status, held_until FROM reservations WHERE id = ?1")?
                    .query_row(params![rid], |r| Ok((r.get(0)?, r.get(1)?)))?;
                reservation_payable(rid, &status, held_until, now)?;
                expect_one_row(changed, Resource::Reservation(rid), c, fences)?;
            }
            fault_point!("pay:after-reservation");
            let sold = c
                .prepare_cached(
                    "UPDATE seats SET status = 'SOLD', held_until = NULL, version = version + 1
                     WHERE id = ?1 AND reservation_id = ?2 AND status = 'HELD'",
                )?
                .execute(params![seat_id, rid])?;
            if sold != 1 {
                return Err(Error::Internal(format!(
                    "seat {seat_id} is not held by reservation {rid}"
                )));
            }
            fault_point!("pay:after-seat");
            write_wallet(c, user_id, wallet_version, after, fences)?;
            fault_point!("pay:after-wallet");
            append_ledger(c, user_id, LedgerKind::Payment, amount, after, now)?;
            fault_point!("pay:after-ledger");
            let payment_id: i64 = c
                .prepare_cached(
                    "INSERT INTO payments (reservation_id, user_id, amount, paid_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
                )?
                .query_row(params![rid, user_id, amount.cents(), now.0], |r| r.get(0))?;
            fault_point!("pay:after-payment");
            if let Some(key) = &key {
                c.prepare_cached(
                    "INSERT INTO idempotency_keys (key, user_id, reservation_id, amount, payment_id, balance, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![key, user_id, rid, amount.cents(), payment_id, after.cents(), now.0])?;
            }
            queue::lock(c)?;
            ensure_token_active(c, token_id, now)?;
            expire_token_row(c, token_id, now)?;
            queue::admit(c, now, ttl)?;
            fault_point!("pay:after-token");
            Ok(PaymentReceipt {
                payment_id,
                reservation_id: rid,
                user_id,
                amount,
                balance: after,
                paid_at: now,
                replayed: false,
            })
        };
        // A keyed request is a client making sure a payment happened: it waits for a racing
        // twin instead of failing, so every replay gets the same answer.
        let on_reservation = if cmd.idempotency_key.is_some() {
            OnLostRace::Wait
        } else {
            OnLostRace::FailFast
        };
        self.inner.strategy.start(
            self.store(),
            &[
                (Resource::Reservation(rid), on_reservation),
                (Resource::Wallet(user_id), OnLostRace::Wait),
            ],
            decide,
            apply,
        )
    }

    // ----- background ----------------------------------------------------------------------

    /// Expires run-out holds and tokens, forgets old idempotency keys and admits waiters.
    /// Servers call it about once a second; reads never depend on it (they check expiry
    /// themselves).
    pub fn sweep(&self) -> Result<SweepReport> {
        let clock = self.inner.clock.clone();
        let ttl = self.token_ttl();
        self.store().write(move |c| {
            let now = clock.now();
            // Rows another writer has locked are skipped (`SKIP LOCKED`, PostgreSQL): a reserve
            // taking over a run-out seat, a payment, or another node's sweep is on them, and a
            // run-out hold or token reads as expired whether or not it is swept. So sweeps on
            // every node at once neither wait for each other nor deadlock, and none does what
            // another did. Seats before reservations, as reserve writes them.
            //
            // The seat's version stays: a run-out hold already reads as AVAILABLE, so this write
            // changes nothing a reader decides on, and a reserve that read the seat a moment ago
            // must not lose a race against the sweeper.
            c.prepare_cached(
                "UPDATE seats SET status = 'AVAILABLE', held_until = NULL, reservation_id = NULL
                 WHERE id IN (SELECT id FROM seats WHERE status = 'HELD' AND held_until <= ?1 FOR UPDATE SKIP LOCKED)",
            )?
            .execute(params![now.0])?;
            let holds = c
                .prepare_cached(
                    "UPDATE reservations SET status = 'EXPIRED', version = version + 1
                     WHERE id IN (SELECT id FROM reservations WHERE status = 'HELD' AND held_until <= ?1
                                  FOR UPDATE SKIP LOCKED)",
                )?
                .execute(params![now.0])?;
            queue::lock(c)?;
            let mut tokens = 0;
            for status in ["ACTIVE", "WAITING"] {
                tokens += c
                    .prepare_cached(
                        "UPDATE tokens SET status = 'EXPIRED'
                         WHERE id IN (SELECT id FROM tokens WHERE status = ?1 AND expires_at <= ?2 FOR UPDATE SKIP LOCKED)",
                    )?
                    .execute(params![status, now.0])?;
            }
            c.prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
                .execute(params![now.0 - i64::try_from(IDEMPOTENCY_KEEP.as_millis()).unwrap_or(i64::MAX)])?;
            let admitted = queue::admit(c, now, ttl)?;
            Ok(SweepReport { holds_expired: holds as u64, tokens_expired: tokens as u64, admitted })
        })
    }
}

#[derive(Debug)]
struct ReservePlan {
    user_id: i64,
    token_id: i64,
    option_id: i64,
    price: Money,
    version: i64,
    lapsed_hold: Option<i64>,
}

#[derive(Debug)]
enum PayPlan {
    Replay(PaymentReceipt),
    Pay {
        token_id: i64,
        user_id: i64,
        seat_id: i64,
        version: i64,
        wallet_version: Option<i64>,
        after: Money,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct WalletRow {
    pub balance: Money,
    pub version: i64,
}

pub(crate) fn read_wallet(c: &Conn<'_>, user_id: i64) -> Result<Option<WalletRow>> {
    c.prepare_cached("SELECT balance, version FROM wallets WHERE user_id = ?1")?
        .query_opt(params![user_id], |r| {
            Ok(WalletRow {
                balance: Money::from_cents(r.get(0)?),
                version: r.get(1)?,
            })
        })
}

/// Writes a wallet's new balance if it still has the version `decide` read (`None`: no wallet
/// yet, so create it — a racing creator makes this a conflict).
fn write_wallet(c: &Conn<'_>, user_id: i64, version: Option<i64>, balance: Money, fences: &Fences) -> Result<()> {
    let fence = fences.of(Resource::Wallet(user_id));
    let changed = match version {
        Some(version) => c
            .prepare_cached(
                "UPDATE wallets SET balance = ?2, version = version + 1, fence = coalesce(CAST(?4 AS BIGINT), fence)
                 WHERE user_id = ?1 AND version = ?3 AND (CAST(?4 AS BIGINT) IS NULL OR fence <= ?4)",
            )?
            .execute(params![user_id, balance.cents(), version, fence])?,
        None => c
            .prepare_cached(
                "INSERT INTO wallets (user_id, balance, version, fence) VALUES (?1, ?2, 1, coalesce(CAST(?3 AS BIGINT), 0))
                 ON CONFLICT (user_id) DO NOTHING",
            )?
            .execute(params![user_id, balance.cents(), fence])?,
    };
    expect_one_row(changed, Resource::Wallet(user_id), c, fences)
}

fn append_ledger(
    c: &Conn<'_>,
    user_id: i64,
    kind: LedgerKind,
    amount: Money,
    after: Money,
    at: Timestamp,
) -> Result<()> {
    c.prepare_cached("INSERT INTO ledger (user_id, kind, amount, balance_after, at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![user_id, kind.as_str(), amount.cents(), after.cents(), at.0])?;
    Ok(())
}

fn stored_receipt(c: &Conn<'_>, key: &str, user_id: i64, rid: i64, amount: Money) -> Result<Option<PaymentReceipt>> {
    let row = c
        .prepare_cached(
            "SELECT k.user_id, k.reservation_id, k.amount, k.payment_id, k.balance, p.paid_at
             FROM idempotency_keys k JOIN payments p ON p.id = k.payment_id WHERE k.key = ?1",
        )?
        .query_opt(params![key], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
    let Some((owner, reservation_id, paid, payment_id, balance, paid_at)) = row else {
        return Ok(None);
    };
    if owner != user_id || reservation_id != rid || paid != amount.cents() {
        return Err(Error::IdempotencyMismatch);
    }
    Ok(Some(PaymentReceipt {
        payment_id,
        reservation_id,
        user_id,
        amount,
        balance: Money::from_cents(balance),
        paid_at: Timestamp(paid_at),
        replayed: true,
    }))
}

fn reservation_payable(rid: i64, status: &str, held_until: i64, now: Timestamp) -> Result<()> {
    match status {
        "PAID" => Err(Error::AlreadyPaid { reservation_id: rid }),
        "EXPIRED" => Err(Error::HoldExpired { reservation_id: rid }),
        "HELD" if held_until <= now.0 => Err(Error::HoldExpired { reservation_id: rid }),
        "HELD" => Ok(()),
        _ => Err(Error::NotHeld { reservation_id: rid }),
    }
}

/// Inside a write: the token is still ACTIVE (it may have been paid out or timed out since
/// `decide` read it). Its row stays locked until the commit: a user has one live token, so
/// this serializes the user's holds and payments across every node — what makes the
/// `max-holds` count-then-insert safe with many writers.
fn ensure_token_active(c: &Conn<'_>, token_id: i64, now: Timestamp) -> Result<()> {
    let (status, expires_at): (String, i64) = c
        .prepare_cached("SELECT status, expires_at FROM tokens WHERE id = ?1 FOR UPDATE")?
        .query_row(params![token_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if status == "ACTIVE" && expires_at > now.0 {
        Ok(())
    } else {
        Err(Error::Unauthorized(TokenProblem::Expired))
    }
}

/// Expires a token (its slot frees). Takes the queue row first, as every token-status change
/// does (see `queue::lock`).
pub(crate) fn expire_token_row(c: &Conn<'_>, token_id: i64, now: Timestamp) -> Result<()> {
    queue::lock(c)?;
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
    let position = queue::position(c, row, now)?;
    Ok(TokenView {
        token: row.token.clone(),
        user_id: row.user_id,
        status: row.status,
        queue_position: position,
        expires_at: row.expires_at,
        estimated_wait_seconds: queue::estimated_wait_seconds(c, position, now, token_ttl, rate)?,
        id: row.id,
    })
}

pub(crate) fn concert_exists(c: &Conn<'_>, concert_id: i64) -> Result<bool> {
    c.prepare_cached("SELECT 1 FROM concerts WHERE id = ?1")?
        .exists(params![concert_id])
}

/// The price of a date; 404 when the date does not exist.
pub(crate) fn option_price(c: &Conn<'_>, option_id: i64) -> Result<Money> {
    c.prepare_cached("SELECT price FROM concert_options WHERE id = ?1")?
        .query_opt(params![option_id], |r| r.get::<_, i64>(0))?
        .map(Money::from_cents)
        .ok_or_else(|| Error::not_found("concert option", option_id))
}

/// The dates of a concert with a free seat at `now`; 404 for an unknown concert.
fn free_dates(c: &Conn<'_>, concert_id: i64, now: Timestamp) -> Result<Vec<ConcertDate>> {
    if !concert_exists(c, concert_id)? {
        return Err(Error::not_found("concert", concert_id));
    }
    Ok(dates_of(c, concert_id, now)?
        .into_iter()
        .filter(|d| d.available_seats > 0)
        .collect())
}

/// The seats of a date free at `now` (AVAILABLE, or HELD by a hold that has run out), by id.
fn free_seats(c: &Conn<'_>, concert_option_id: i64, now: Timestamp) -> Result<Vec<Seat>> {
    let mut seats = c
        .prepare_cached(
            "SELECT id, seat_number FROM seats
             WHERE option_id = ?1 AND (status = 'AVAILABLE' OR (status = 'HELD' AND +held_until <= ?2))",
        )?
        .query_map(params![concert_option_id, now.0], |r| {
            Ok(Seat {
                seat_id: r.get(0)?,
                concert_option_id,
                seat_number: r.get(1)?,
                status: SeatStatus::Available,
                held_until: None,
                reservation_id: None,
                user_id: None,
            })
        })?;
    // Seat order sorted here: SQLite's sorter cost more than the query on this hot read.
    seats.sort_unstable_by_key(|s| s.seat_id);
    Ok(seats)
}

/// Every date of a concert with its count of AVAILABLE seats as of `now`.
pub(crate) fn dates_of(c: &Conn<'_>, concert_id: i64, now: Timestamp) -> Result<Vec<ConcertDate>> {
    let rows = c
        .prepare_cached(
            "SELECT o.id, o.concert_date, o.price,
                    (SELECT count(*) FROM seats s WHERE s.option_id = o.id AND s.status = 'AVAILABLE')
                  + (SELECT count(*) FROM seats s WHERE s.option_id = o.id AND s.status = 'HELD' AND +s.held_until <= ?2)
             FROM concert_options o WHERE o.concert_id = ?1 ORDER BY o.concert_date, o.id",
        )?
        .query_map(params![concert_id, now.0], |r| {
            Ok(ConcertDate {
                concert_option_id: r.get(0)?,
                concert_id,
                concert_date: r.get(1)?,
                price: Money::from_cents(r.get(2)?),
                available_seats: r.get(3)?,
            })
        })?;
    Ok(rows)
}
