//! Operator operations and the read models behind the TUI and `ticketing admin`.

use crate::store::{params, Conn};
use serde::Serialize;

use crate::clock::Timestamp;
use crate::domain::{
    check_date, seat_number, LedgerEntry, LedgerKind, ReservationStatus, Seat, SeatStatus, TokenStatus,
    MAX_SEATS_PER_DATE,
};
use crate::error::{Error, Result};
use crate::money::{Money, MAX_AMOUNT};
use crate::queue::{self, QueueSettings};
use crate::ticketing::Ticketing;
use crate::usecase::catalogue::dates_of;
use crate::usecase::queue::expire_token_row;

/// A concert to add: one row of seats per date, all at one price.
#[derive(Debug, Clone)]
pub struct NewConcert {
    /// Title (not empty).
    pub title: String,
    /// Performance dates, `YYYY-MM-DD`, at least one, no repeats.
    pub dates: Vec<String>,
    /// Seats per date (1 to 10,000).
    pub seats: u32,
    /// Price of a seat.
    pub price: Money,
}

/// The concert added, as `admin concert add --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcertCreated {
    /// Id.
    pub concert_id: i64,
    /// Title.
    pub title: String,
    /// Its dates.
    pub concert_options: Vec<CreatedDate>,
}

/// One date of a [`ConcertCreated`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDate {
    /// Id.
    pub concert_option_id: i64,
    /// `YYYY-MM-DD`.
    pub concert_date: String,
    /// Price.
    pub price: Money,
    /// Seats created.
    pub seats: u32,
}

/// A concert with its sales per date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcertSales {
    /// Id.
    pub concert_id: i64,
    /// Title.
    pub title: String,
    /// Dates in date order.
    pub dates: Vec<DateSales>,
}

/// Seat counts and revenue of one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DateSales {
    /// Id.
    pub concert_option_id: i64,
    /// `YYYY-MM-DD`.
    pub concert_date: String,
    /// Price.
    pub price: Money,
    /// All seats.
    pub seats: u32,
    /// AVAILABLE now (run-out holds included).
    pub available: u32,
    /// Held by a live hold.
    pub held: u32,
    /// Sold.
    pub sold: u32,
    /// Sum of payments for this date.
    pub revenue: Money,
}

/// The queue as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueState {
    /// Live WAITING tokens.
    pub waiting: u64,
    /// Live ACTIVE tokens.
    pub active: u32,
    /// The limit.
    pub max_active: u32,
    /// Admission paused.
    pub paused: bool,
    /// Admissions in the last minute.
    pub admitted_last_minute: u64,
    /// How long the longest waiter has waited, in seconds.
    pub oldest_wait_seconds: Option<u64>,
}

/// A token in an operator's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSummary {
    /// The token.
    pub token: String,
    /// Its user.
    pub user_id: i64,
    /// Status now.
    pub status: TokenStatus,
    /// Place among waiters (0 unless WAITING).
    pub queue_position: u64,
    /// When issued.
    pub issued_at: Timestamp,
    /// When it dies if nothing happens.
    pub expires_at: Timestamp,
}

/// A reservation in an operator's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationSummary {
    /// Id.
    pub reservation_id: i64,
    /// Owner.
    pub user_id: i64,
    /// Seat.
    pub seat_id: i64,
    /// Seat number.
    pub seat_number: String,
    /// Date.
    pub concert_option_id: i64,
    /// Status now (a run-out hold reads EXPIRED).
    pub status: ReservationStatus,
    /// End of the hold.
    pub held_until: Timestamp,
    /// Price.
    pub price: Money,
}

/// A wallet with its ledger (newest last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    /// The user.
    pub user_id: i64,
    /// Balance now.
    pub balance: Money,
    /// Every entry, oldest first.
    pub ledger: Vec<LedgerEntry>,
}

/// Which reservations to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationFilter {
    /// Live holds.
    Held,
    /// Paid.
    Paid,
    /// All.
    All,
}

/// One seat of a seat map, for the TUI and `admin seats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatMapEntry {
    /// Id.
    pub seat_id: i64,
    /// `A1`…
    pub seat_number: String,
    /// Status now.
    pub status: SeatStatus,
    /// End of a live hold.
    pub held_until: Option<Timestamp>,
    /// The live reservation.
    pub reservation_id: Option<i64>,
    /// Its user.
    pub user_id: Option<i64>,
}

impl From<SeatMapEntry> for Seat {
    fn from(e: SeatMapEntry) -> Seat {
        Seat {
            seat_id: e.seat_id,
            concert_option_id: 0,
            seat_number: e.seat_number,
            status: e.status,
            held_until: e.held_until,
            reservation_id: e.reservation_id,
            user_id: e.user_id,
        }
    }
}

impl NewConcert {
    /// Checks and normalises the request (trimmed title, valid distinct dates, seat count and
    /// price in range) without touching any database.
    pub fn validated(self) -> Result<NewConcert> {
        let title = self.title.trim().to_string();
        if title.is_empty() {
            return Err(Error::invalid("title", "title must not be empty"));
        }
        if title.chars().count() > 200 {
            return Err(Error::invalid("title", "title must be at most 200 characters"));
        }
        if self.dates.is_empty() {
            return Err(Error::invalid("date", "at least one --date is needed"));
        }
        let mut dates = Vec::with_capacity(self.dates.len());
        for d in &self.dates {
            let d = check_date("date", d.trim())?;
            if dates.contains(&d) {
                return Err(Error::invalid("date", format!("date {d} is given twice")));
            }
            dates.push(d);
        }
        if self.seats == 0 || self.seats > MAX_SEATS_PER_DATE {
            return Err(Error::invalid(
                "seats",
                format!("seats must be between 1 and {MAX_SEATS_PER_DATE}"),
            ));
        }
        if self.price <= Money::ZERO || self.price > MAX_AMOUNT {
            return Err(Error::invalid(
                "price",
                "price must be greater than 0 and at most 100000000",
            ));
        }
        Ok(NewConcert {
            title,
            dates,
            seats: self.seats,
            price: self.price,
        })
    }
}

impl Ticketing {
    /// Adds a concert with its dates and seats (`A1`…, rows of ten).
    pub fn add_concert(&self, new: NewConcert) -> Result<ConcertCreated> {
        let NewConcert {
            title,
            dates,
            seats,
            price,
        } = new.validated()?;
        self.store().write(move |c| {
            let concert_id: i64 = c
                .prepare_cached("INSERT INTO concerts (title) VALUES (?1) RETURNING id")?
                .query_row(params![&title], |r| r.get(0))?;
            let mut options = Vec::new();
            for date in dates {
                let option_id: i64 = c
                    .prepare_cached(
                        "INSERT INTO concert_options (concert_id, concert_date, price) VALUES (?1, ?2, ?3) RETURNING id",
                    )?
                    .query_row(params![concert_id, date, price.cents()], |r| r.get(0))?;
                let mut insert = c.prepare_cached(
                    "INSERT INTO seats (option_id, seat_number, status) VALUES (?1, ?2, 'AVAILABLE')",
                )?;
                for i in 0..seats {
                    insert.execute(params![option_id, seat_number(i)])?;
                }
                options.push(CreatedDate {
                    concert_option_id: option_id,
                    concert_date: date,
                    price,
                    seats,
                });
            }
            Ok(ConcertCreated {
                concert_id,
                title,
                concert_options: options,
            })
        })
    }

    /// Every concert with its dates' seat counts and revenue.
    pub fn sales(&self) -> Result<Vec<ConcertSales>> {
        let now = self.now();
        self.store().read(|c| {
            let concerts = c
                .prepare_cached("SELECT id, title FROM concerts ORDER BY id")?
                .query_map(params![], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            concerts
                .into_iter()
                .map(|(concert_id, title)| {
                    Ok(ConcertSales {
                        concert_id,
                        title,
                        dates: date_sales(c, concert_id, now)?,
                    })
                })
                .collect()
        })
    }

    /// The seat map of one date.
    pub fn seat_map(&self, concert_option_id: i64) -> Result<Vec<SeatMapEntry>> {
        let now = self.now();
        self.store().read(|c| {
            crate::usecase::catalogue::option_price(c, concert_option_id)?;
            let seats = c
                .prepare_cached(
                    "SELECT s.id, s.seat_number, s.status, s.held_until, s.reservation_id, r.user_id
                     FROM seats s LEFT JOIN reservations r ON r.id = s.reservation_id
                     WHERE s.option_id = ?1 ORDER BY s.id",
                )?
                .query_map(params![concert_option_id], |r| {
                    let status: String = r.get(2)?;
                    let held_until: Option<i64> = r.get(3)?;
                    let live = |s: SeatStatus| SeatMapEntry {
                        seat_id: 0,
                        seat_number: String::new(),
                        status: s,
                        held_until: None,
                        reservation_id: None,
                        user_id: None,
                    };
                    let mut e = match (status.as_str(), held_until) {
                        ("SOLD", _) => live(SeatStatus::Sold),
                        ("HELD", Some(t)) if t > now.0 => SeatMapEntry {
                            held_until: Some(Timestamp(t)),
                            ..live(SeatStatus::Held)
                        },
                        _ => live(SeatStatus::Available),
                    };
                    e.seat_id = r.get(0)?;
                    e.seat_number = r.get(1)?;
                    if e.status != SeatStatus::Available {
                        e.reservation_id = r.get(4)?;
                        e.user_id = r.get(5)?;
                    }
                    Ok(e)
                })?;
            Ok(seats)
        })
    }

    /// The queue's counters.
    pub fn queue_state(&self) -> Result<QueueState> {
        let now = self.now();
        self.store().read(|c| {
            let s = queue::settings(c)?;
            let oldest: Option<i64> = c
                .prepare_cached(
                    "SELECT issued_at FROM tokens WHERE status = 'WAITING' AND +expires_at > ?1 ORDER BY id LIMIT 1",
                )?
                .query_opt(params![now.0], |r| r.get(0))?;
            Ok(QueueState {
                waiting: queue::waiting_count(c, now)?,
                active: queue::active_count(c, now)?,
                max_active: s.max_active,
                paused: s.paused,
                admitted_last_minute: queue::admitted_last_minute(c, now)?,
                oldest_wait_seconds: oldest.map(|t| Timestamp(t).until(now).as_secs()),
            })
        })
    }

    /// Live tokens of one status, in queue order, `limit` of them from `offset` (windowed for
    /// long queues).
    pub fn tokens(&self, status: TokenStatus, offset: u64, limit: u64) -> Result<Vec<TokenSummary>> {
        let now = self.now();
        self.store().read(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT id, token, user_id, issued_at, expires_at FROM tokens
                     WHERE status = ?1 AND +expires_at > ?2 ORDER BY id LIMIT ?3 OFFSET ?4",
                )?
                .query_map(params![status.as_str(), now.0, limit as i64, offset as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?;
            let mut out = Vec::with_capacity(rows.len());
            for (i, (id, token, user_id, issued_at, expires_at)) in rows.into_iter().enumerate() {
                // Rows come in queue order, so positions follow from the first one's.
                let queue_position = match (status, i) {
                    (TokenStatus::Waiting, 0) => queue::position(
                        c,
                        &queue::TokenRow {
                            id,
                            token: token.clone(),
                            user_id,
                            status,
                            expires_at: Timestamp(expires_at),
                        },
                        now,
                    )?,
                    (TokenStatus::Waiting, _) => out.first().map_or(1, |f: &TokenSummary| f.queue_position) + i as u64,
                    _ => 0,
                };
                out.push(TokenSummary {
                    token,
                    user_id,
                    status,
                    queue_position,
                    issued_at: Timestamp(issued_at),
                    expires_at: Timestamp(expires_at),
                });
            }
            Ok(out)
        })
    }

    /// Sets the most ACTIVE tokens at once and admits waiters into any new room. Lowering it
    /// below the tokens active now is refused: that would break the limit for tokens already
    /// admitted (pause admission instead, or expire tokens first).
    pub fn set_max_active(&self, max_active: u32) -> Result<()> {
        crate::config::check_max_active(max_active)?;
        let clock = self.inner.clock.clone();
        let ttl = self.config().token_ttl;
        self.store().write(move |c| {
            let now = clock.now();
            let settings = queue::lock(c)?;
            let active = queue::active_count(c, now)?;
            if max_active < active {
                return Err(Error::invalid(
                    "max-active",
                    format!("{active} tokens are active now; max-active cannot go below that (pause admission or expire tokens first)"),
                ));
            }
            c.prepare_cached("UPDATE queue_settings SET max_active = ?1 WHERE id = 1")?.execute(params![max_active])?;
            queue::admit(c, QueueSettings { max_active, ..settings }, now, ttl)?;
            Ok(())
        })
    }

    /// Pauses (`true`) or resumes admission. Resuming admits waiters at once.
    pub fn set_paused(&self, paused: bool) -> Result<()> {
        let clock = self.inner.clock.clone();
        let ttl = self.config().token_ttl;
        self.store().write(move |c| {
            let settings = queue::lock(c)?;
            c.prepare_cached("UPDATE queue_settings SET paused = ?1 WHERE id = 1")?
                .execute(params![paused])?;
            queue::admit(c, QueueSettings { paused, ..settings }, clock.now(), ttl)?;
            Ok(())
        })
    }

    /// Expires a token (operator); its slot goes to the next waiter.
    pub fn expire_token(&self, token: &str) -> Result<()> {
        let clock = self.inner.clock.clone();
        let ttl = self.config().token_ttl;
        let token = token.to_string();
        self.store().write(move |c| {
            let now = clock.now();
            let settings = queue::lock(c)?;
            let row = queue::find_token(c, &token, now).map_err(|_| Error::not_found("token", &token))?;
            expire_token_row(c, row.id, now)?;
            queue::admit(c, settings, now, ttl)?;
            Ok(())
        })
    }

    /// Releases a live hold (operator): the reservation is CANCELLED, the seat AVAILABLE.
    pub fn release_hold(&self, reservation_id: i64) -> Result<()> {
        let clock = self.inner.clock.clone();
        self.store().write(move |c| {
            let now = clock.now();
            let row: Option<(i64, String, i64)> = c
                .prepare_cached("SELECT seat_id, status, held_until FROM reservations WHERE id = ?1")?
                .query_opt(params![reservation_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let Some((seat_id, status, held_until)) = row else {
                return Err(Error::not_found("reservation", reservation_id));
            };
            match status.as_str() {
                "HELD" if held_until > now.0 => {}
                "PAID" => return Err(Error::AlreadyPaid { reservation_id }),
                _ => return Err(Error::NotHeld { reservation_id }),
            }
            c.prepare_cached("UPDATE reservations SET status = 'CANCELLED', version = version + 1 WHERE id = ?1")?
                .execute(params![reservation_id])?;
            c.prepare_cached(
                "UPDATE seats SET status = 'AVAILABLE', held_until = NULL, reservation_id = NULL, version = version + 1
                 WHERE id = ?1 AND reservation_id = ?2",
            )?
            .execute(params![seat_id, reservation_id])?;
            Ok(())
        })
    }

    /// Reservations, newest first, at most `limit`.
    pub fn reservations(&self, filter: ReservationFilter, limit: u64) -> Result<Vec<ReservationSummary>> {
        self.reservations_of(None, filter, limit)
    }

    /// [`Ticketing::reservations`] of one user when `user_id` is given (the limit counts only
    /// theirs).
    pub fn reservations_of(
        &self,
        user_id: Option<i64>,
        filter: ReservationFilter,
        limit: u64,
    ) -> Result<Vec<ReservationSummary>> {
        let now = self.now();
        self.store().read(|c| {
            let sql = match filter {
                ReservationFilter::Held => "WHERE r.status = 'HELD' AND r.held_until > ?1",
                ReservationFilter::Paid => "WHERE r.status = 'PAID' AND CAST(?1 AS BIGINT) IS NOT NULL",
                ReservationFilter::All => "WHERE CAST(?1 AS BIGINT) IS NOT NULL",
            };
            let rows = c
                .prepare_cached(&format!(
                    "SELECT r.id, r.user_id, r.seat_id, s.seat_number, r.option_id, r.status, r.held_until, r.price
                     FROM reservations r JOIN seats s ON s.id = r.seat_id {sql}
                       AND (CAST(?3 AS BIGINT) IS NULL OR r.user_id = ?3)
                     ORDER BY r.id DESC LIMIT ?2"
                ))?
                .query_map(params![now.0, limit as i64, user_id], |r| {
                    let status: String = r.get(5)?;
                    let held_until: i64 = r.get(6)?;
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        status,
                        held_until,
                        r.get::<_, i64>(7)?,
                    ))
                })?;
            rows.into_iter()
                .map(
                    |(reservation_id, user_id, seat_id, seat_number, concert_option_id, status, held_until, price)| {
                        let mut status = ReservationStatus::parse(&status)?;
                        if status == ReservationStatus::Held && held_until <= now.0 {
                            status = ReservationStatus::Expired;
                        }
                        Ok(ReservationSummary {
                            reservation_id,
                            user_id,
                            seat_id,
                            seat_number,
                            concert_option_id,
                            status,
                            held_until: Timestamp(held_until),
                            price: Money::from_cents(price),
                        })
                    },
                )
                .collect()
        })
    }

    /// A wallet and its whole ledger.
    pub fn wallet(&self, user_id: i64) -> Result<WalletView> {
        let user_id = crate::domain::check_user_id(user_id)?;
        self.store().read(|c| {
            let balance = crate::usecase::wallet::read_wallet(c, user_id)?.map_or(Money::ZERO, |w| w.balance);
            Ok(WalletView {
                user_id,
                balance,
                ledger: ledger_of(c, user_id)?,
            })
        })
    }
}

fn ledger_of(c: &Conn<'_>, user_id: i64) -> Result<Vec<LedgerEntry>> {
    let rows = c
        .prepare_cached("SELECT kind, amount, balance_after, at FROM ledger WHERE user_id = ?1 ORDER BY id")?
        .query_map(params![user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
    rows.into_iter()
        .map(|(kind, amount, after, at)| {
            Ok(LedgerEntry {
                user_id,
                kind: LedgerKind::parse(&kind)?,
                amount: Money::from_cents(amount),
                balance_after: Money::from_cents(after),
                at: Timestamp(at),
            })
        })
        .collect()
}

fn date_sales(c: &Conn<'_>, concert_id: i64, now: Timestamp) -> Result<Vec<DateSales>> {
    let mut out = Vec::new();
    for d in dates_of(c, concert_id, now)? {
        let (seats, held, sold): (u32, u32, u32) = c
            .prepare_cached(
                "SELECT count(*),
                        count(CASE WHEN status = 'HELD' AND held_until > ?2 THEN 1 END),
                        count(CASE WHEN status = 'SOLD' THEN 1 END)
                 FROM seats WHERE option_id = ?1",
            )?
            .query_row(params![d.concert_option_id, now.0], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        let revenue: i64 = c
            .prepare_cached(
                "SELECT CAST(coalesce(sum(p.amount), 0) AS BIGINT) FROM payments p
                 JOIN reservations r ON r.id = p.reservation_id WHERE r.option_id = ?1",
            )?
            .query_row(params![d.concert_option_id], |r| r.get(0))?;
        out.push(DateSales {
            concert_option_id: d.concert_option_id,
            concert_date: d.concert_date,
            price: d.price,
            seats,
            available: d.available_seats,
            held,
            sold,
            revenue: Money::from_cents(revenue),
        });
    }
    Ok(out)
}

/// How an operator names a live token to find it in the queue lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLookup {
    /// The live token of this user.
    User(i64),
    /// This token's text.
    Token(String),
}

/// A live token found by [`Ticketing::find_live_token`], with its row in the operator's list
/// of its status (what [`Ticketing::tokens`] with that status lists at that offset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundToken {
    /// The token.
    pub token: TokenSummary,
    /// 0-based row in the list of its status (for a WAITING token, its queue position − 1).
    pub index: u64,
}

impl Ticketing {
    /// The live (WAITING or ACTIVE) token named by `lookup`, if any — the console's "find in
    /// the queue". Reads only (unlike asking for a token's status, which keeps it alive).
    pub fn find_live_token(&self, lookup: &TokenLookup) -> Result<Option<FoundToken>> {
        let now = self.now();
        self.store().read(|c| {
            let row = match lookup {
                TokenLookup::User(user_id) => queue::live_token_of(c, *user_id, now)?,
                // Not a token we issued (or not a UUID at all): simply not found.
                TokenLookup::Token(text) => match queue::find_token(c, text, now) {
                    Ok(row) => Some(row),
                    Err(Error::Unauthorized(_)) => None,
                    Err(e) => return Err(e),
                },
            };
            let Some(row) = row.filter(|r| r.status != TokenStatus::Expired) else {
                return Ok(None);
            };
            let (queue_position, index) = match row.status {
                TokenStatus::Waiting => {
                    let p = queue::position(c, &row, now)?;
                    (p, p - 1)
                }
                // The active list is in issue order too: the live ACTIVE tokens issued before.
                _ => {
                    let before: i64 = c
                        .prepare_cached(
                            "SELECT count(*) FROM tokens WHERE status = 'ACTIVE' AND +expires_at > ?1 AND id < ?2",
                        )?
                        .query_row(params![now.0, row.id], |r| r.get(0))?;
                    (0, u64::try_from(before).unwrap_or(0))
                }
            };
            let issued_at: i64 = c
                .prepare_cached("SELECT issued_at FROM tokens WHERE id = ?1")?
                .query_row(params![row.id], |r| r.get(0))?;
            Ok(Some(FoundToken {
                token: TokenSummary {
                    token: row.token,
                    user_id: row.user_id,
                    status: row.status,
                    queue_position,
                    issued_at: Timestamp(issued_at),
                    expires_at: row.expires_at,
                },
                index,
            }))
        })
    }
}
