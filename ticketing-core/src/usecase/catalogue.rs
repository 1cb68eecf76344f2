//! The catalogue: concerts, the dates with free seats and the free seats of a date (needs an
//! ACTIVE token), read from the database or, on SQLite, from memory while still exact.

use crate::clock::Timestamp;
use crate::domain::{Concert, ConcertDate, Seat, SeatStatus};
use crate::error::{Error, Result};
use crate::memo::Memo;
use crate::money::Money;
use crate::queue::{self};
use crate::store::{params, Conn};
use crate::ticketing::Ticketing;

impl Ticketing {
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
pub(crate) fn free_dates(c: &Conn<'_>, concert_id: i64, now: Timestamp) -> Result<Vec<ConcertDate>> {
    if !concert_exists(c, concert_id)? {
        return Err(Error::not_found("concert", concert_id));
    }
    Ok(dates_of(c, concert_id, now)?
        .into_iter()
        .filter(|d| d.available_seats > 0)
        .collect())
}

/// The seats of a date free at `now` (AVAILABLE, or HELD by a hold that has run out), by id.
pub(crate) fn free_seats(c: &Conn<'_>, concert_option_id: i64, now: Timestamp) -> Result<Vec<Seat>> {
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
