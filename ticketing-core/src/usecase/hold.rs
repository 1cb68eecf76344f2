//! Seat holds: reserve. Exactly one of any number of concurrent holds of one seat wins; a user
//! holds at most `max-holds` seats (serialized by the user's token row, see
//! `ensure_token_active`).

use crate::domain::{check_user_id, Hold, ReserveCmd};
use crate::error::{Error, Result};
use crate::money::Money;
use crate::queue::{self};
use crate::store::{params, Answer, Conn};
use crate::strategy::{expect_one_row, Fences, OnLostRace, Resource};
use crate::ticketing::{fault_point, Ticketing};
use crate::usecase::catalogue::option_price;
use crate::usecase::queue::ensure_token_active;

impl Ticketing {
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
