//! Virtual users: one tokio task each, walking the scenario's journey through a [`Driver`] and
//! sending every request's outcome to the aggregator. A user never waits on another user;
//! its next request is due at the end of its previous one plus think time (or the poll delay
//! while it waits in the queue), and is timed from that due moment to the last byte of its
//! answer.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
#[cfg(test)]
use ticketing_core::Ticketing;
use ticketing_core::{Money, TokenStatus};
use tokio::time::Instant;

use super::driver::{received_by, Driver, Failure, Reply, TokenInfo};
use super::metrics::{Event, Op, Outcome, UserChange, UserEnd};
use super::pace::{self, Go};
use super::scenario::{Journey, Scenario};

/// Rounds of "read dates, read seats, try some seats" before a user gives up.
const MAX_ROUNDS: u32 = 50;

/// What the users of one run share.
pub struct RunContext {
    /// How requests reach the system.
    pub driver: Driver,
    /// The scenario.
    pub scenario: Arc<Scenario>,
    /// Ids of the setup's concerts, in scenario order.
    pub concert_ids: Vec<i64>,
    /// The run's start: intended starts and ends are measured from it.
    pub t0: Instant,
    /// `--seed`.
    pub seed: u64,
    /// To the aggregator.
    pub events: Sender<Event>,
    /// Prepared before the race (seed's reserve and pay cases).
    pub prepared: Prepared,
    /// The queue's size, for the first poll delay.
    pub max_active: u32,
}

/// State set up before a single-operation race.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// An admitted token per user (reserve race), by user index; the one shared token of a
    /// read-only `seats` load.
    pub tokens: Vec<String>,
    /// The date and seat raced for.
    pub target: Option<(i64, i64)>,
    /// The payer's token, reservation and price (pay race).
    pub hold: Option<(String, i64, Money)>,
}

/// A mixing function so neighbouring user numbers get unrelated random streams.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A request in flight, boxed so a waiting user's future stays small (a burst keeps every
/// user's future alive at once).
type Request<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Reply<T>> + Send + 'a>>;

struct User {
    ctx: Arc<RunContext>,
    index: u64,
    id: i64,
    /// When the next request is due.
    due: Instant,
    /// The node of the request being made (see [`User::via`]).
    node: usize,
    rng: SmallRng,
}

/// Runs virtual user number `index` (0-based), due to arrive at `due`: started ahead of it,
/// it gets ready, and sends its first request at `due` once it has its go (see [`pace`]).
pub async fn run_user(ctx: Arc<RunContext>, index: u64, due: Instant, go: Go) {
    let mut user = User {
        id: ctx.scenario.load.first_user + index as i64,
        rng: SmallRng::seed_from_u64(splitmix(ctx.seed ^ splitmix(index))),
        ctx,
        index,
        due,
        node: 0,
    };
    // In the system from its arrival (or now, if started late).
    user.mark_at(Instant::now().max(due), UserChange::Arrived);
    if go.await.is_err() {
        // The run was dropped before this user's arrival.
        return;
    }
    pace::until(due).await;
    let end = user.journey().await;
    user.mark(UserChange::Ended);
    let _ = user.ctx.events.send(Event::UserDone(end));
}

impl User {
    fn send(&self, event: Event) {
        // The aggregator outlives every user; a send can only fail if it panicked.
        let _ = self.ctx.events.send(event);
    }

    /// Tells the aggregator where this user is now (for the users-over-time plot).
    fn mark(&self, change: UserChange) {
        self.mark_at(Instant::now(), change);
    }

    /// Tells the aggregator where this user is from `at`.
    fn mark_at(&self, at: Instant, change: UserChange) {
        self.send(Event::User {
            at: at.duration_since(self.ctx.t0),
            change,
        });
    }

    /// The driver of this user's next request: on the node `--spread` gives it, remembered so
    /// the request is counted for that node. Every request goes through it.
    fn via(&mut self) -> Driver {
        let (driver, node) = self.ctx.driver.next_for(self.index);
        self.node = node;
        driver
    }

    /// Waits until the next request is due, runs it and records it from its due moment to
    /// the last byte of its answer (what the client does with the answer afterwards is its own
    /// time, not the system's: see [`received_by`]).
    async fn call<T>(&mut self, op: Op, retry: bool, request: Request<'_, T>) -> Reply<T> {
        // A deadline already past still waits for tokio's next timer tick (up to 1 ms):
        // go at once instead, as that wait would be counted as the request's latency.
        if Instant::now() < self.due {
            tokio::time::sleep_until(self.due).await;
        }
        let intended = self.due;
        let sent = Instant::now();
        let (result, received) = received_by(request).await;
        let returned = Instant::now();
        let end = received.unwrap_or(returned);
        let (outcome, code) = match &result {
            Ok(_) => (Outcome::Ok, None),
            Err(f) => (f.outcome, Some(f.code.clone())),
        };
        self.send(Event::Request {
            op,
            outcome,
            retry,
            intended: intended.duration_since(self.ctx.t0),
            sent: sent.duration_since(self.ctx.t0),
            end: end.duration_since(self.ctx.t0),
            code,
            node: self.node,
        });
        // The user acts on the answer once it has it in hand, decoded.
        self.due = returned + self.ctx.scenario.load.think;
        result
    }

    async fn journey(&mut self) -> UserEnd {
        let journey = self.ctx.scenario.journey.clone();
        match journey {
            Journey::Ticket {
                concert,
                reserve_attempts,
                charge,
                pay,
            } => {
                let concert_id = self.ctx.concert_ids.get(concert).copied().unwrap_or(1);
                self.ticket(concert_id, reserve_attempts, charge, pay).await
            }
            Journey::Charge {
                wallet_user,
                amount,
                ops,
            } => {
                for _ in 0..ops {
                    let driver = self.via();
                    let r = self
                        .call(Op::Charge, false, Box::pin(driver.charge(wallet_user, amount)))
                        .await;
                    self.money(wallet_user, amount.cents(), &r);
                }
                UserEnd::Done
            }
            Journey::Use {
                wallet_user,
                amount,
                ops,
            } => {
                for _ in 0..ops {
                    let driver = self.via();
                    let r = self
                        .call(Op::Use, false, Box::pin(driver.use_points(wallet_user, amount)))
                        .await;
                    self.money(wallet_user, -amount.cents(), &r);
                }
                UserEnd::Done
            }
            Journey::Wallet {
                wallets,
                amount,
                use_ratio,
                ops,
            } => {
                for _ in 0..ops {
                    let wallet = self.ctx.scenario.load.first_user + i64::from(self.rng.random_range(0..wallets));
                    if self.rng.random_bool(use_ratio) {
                        let driver = self.via();
                        let r = self
                            .call(Op::Use, false, Box::pin(driver.use_points(wallet, amount)))
                            .await;
                        self.money(wallet, -amount.cents(), &r);
                    } else {
                        let driver = self.via();
                        let r = self
                            .call(Op::Charge, false, Box::pin(driver.charge(wallet, amount)))
                            .await;
                        self.money(wallet, amount.cents(), &r);
                    }
                }
                UserEnd::Done
            }
            Journey::Seats { ops, .. } => {
                let token = self.ctx.prepared.tokens.first().cloned();
                let (Some(token), Some((option, _))) = (token, self.ctx.prepared.target) else {
                    return UserEnd::GaveUp;
                };
                for _ in 0..ops {
                    let driver = self.via();
                    if self
                        .call(Op::Seats, false, Box::pin(driver.seats(&token, option)))
                        .await
                        .is_err()
                    {
                        return UserEnd::GaveUp;
                    }
                }
                UserEnd::Done
            }
            Journey::Reserve { .. } => {
                let token = self.ctx.prepared.tokens.get(self.index as usize).cloned();
                let (Some(token), Some((option, seat))) = (token, self.ctx.prepared.target) else {
                    return UserEnd::GaveUp;
                };
                let driver = self.via();
                match self
                    .call(
                        Op::Reserve,
                        false,
                        Box::pin(driver.reserve(&token, self.id, option, seat)),
                    )
                    .await
                {
                    Ok(_) => UserEnd::Done,
                    Err(_) => UserEnd::GaveUp,
                }
            }
            Journey::Pay { .. } => {
                let Some((token, reservation, price)) = self.ctx.prepared.hold.clone() else {
                    return UserEnd::GaveUp;
                };
                let payer = self.ctx.scenario.load.first_user;
                let driver = self.via();
                let r = self
                    .call(Op::Pay, false, Box::pin(driver.pay(&token, reservation, price)))
                    .await;
                self.money(payer, -price.cents(), &r);
                if r.is_ok() {
                    let seat = self.ctx.prepared.target.map_or(0, |(_, s)| s);
                    self.send(Event::Paid {
                        user: payer,
                        reservation,
                        seat,
                        cents: price.cents(),
                    });
                    UserEnd::Done
                } else {
                    UserEnd::GaveUp
                }
            }
        }
    }

    /// Records a wallet request's effect for the client-side money check.
    fn money<T>(&self, user: i64, cents: i64, r: &Reply<T>) {
        match r {
            Ok(_) => self.send(Event::Money { user, cents }),
            Err(f) if f.outcome == Outcome::Error => self.send(Event::MoneyUnknown { user }),
            Err(_) => {}
        }
    }

    /// The pause before the next status poll. When the system tells a user its turn, polls only
    /// refresh the place shown, every `poll_max`, as a queue page does. Otherwise about half
    /// the time this user's place should take to reach the front at the rate it has seen the
    /// queue move, within the scenario's bounds. Both with ±20% jitter so waiters do not poll
    /// in lockstep.
    fn poll_delay(&mut self, info: &TokenInfo, seen: &mut Option<(u64, Instant)>) -> Duration {
        let position = info.position;
        let q = &self.ctx.scenario.queue;
        if info.turn.is_some() {
            return q.poll_max.mul_f64(self.rng.random_range(0.8..1.2));
        }
        let now = Instant::now();
        let estimate = match *seen {
            Some((before, at)) if before > position => {
                let rate = (before - position) as f64 / now.duration_since(at).as_secs_f64().max(1e-6);
                Duration::from_secs_f64((position as f64 / rate / 2.0).min(3600.0))
            }
            Some((_, at)) => now.duration_since(at) * 2,
            None => {
                q.poll_min * u32::try_from(position.div_ceil(u64::from(self.ctx.max_active.max(1)))).unwrap_or(u32::MAX)
            }
        };
        if seen.is_none_or(|(before, _)| before != position) {
            *seen = Some((position, now));
        }
        estimate
            .clamp(q.poll_min, q.poll_max)
            .mul_f64(self.rng.random_range(0.8..1.2))
    }

    async fn ticket(&mut self, concert_id: i64, attempts: u32, charge: bool, pay: bool) -> UserEnd {
        let driver = self.via();
        let Ok(mut info) = self.call(Op::Token, false, Box::pin(driver.issue_token(self.id))).await else {
            return UserEnd::GaveUp;
        };
        let queued = info.status == TokenStatus::Waiting;
        if queued {
            self.mark(UserChange::Queued);
        }
        let mut seen = None;
        while info.status == TokenStatus::Waiting {
            let delay = self.poll_delay(&info, &mut seen);
            let poll_at = Instant::now().max(self.due) + delay;
            // The next poll is due at `poll_at`, or as soon as the system says the turn came:
            // the request is timed from whichever came first.
            Box::pin(self.ctx.driver.wait_turn(&info, poll_at)).await;
            self.due = Instant::now().min(poll_at);
            let driver = self.via();
            match self
                .call(Op::Status, false, Box::pin(driver.token_status(&info.token)))
                .await
            {
                Ok(next) => info = next,
                Err(_) => {
                    self.mark(UserChange::LeftQueue);
                    return UserEnd::GaveUp;
                }
            }
        }
        if queued {
            self.mark(UserChange::LeftQueue);
        }
        if info.status != TokenStatus::Active {
            return UserEnd::GaveUp;
        }
        let token = info.token;
        let mut hold = None;
        let mut retry = false;
        'rounds: for _ in 0..MAX_ROUNDS {
            let driver = self.via();
            let dates = match self
                .call(Op::Dates, false, Box::pin(driver.dates(&token, concert_id)))
                .await
            {
                Ok(d) => d,
                Err(_) => return self.leave(&token, UserEnd::GaveUp).await,
            };
            let open: Vec<_> = dates.into_iter().filter(|d| d.available > 0).collect();
            if open.is_empty() {
                return self.leave(&token, UserEnd::SoldOut).await;
            }
            let date = open[self.rng.random_range(0..open.len())];
            let driver = self.via();
            let mut seats = match self
                .call(Op::Seats, false, Box::pin(driver.seats(&token, date.option_id)))
                .await
            {
                Ok(s) => s,
                Err(_) => return self.leave(&token, UserEnd::GaveUp).await,
            };
            for _ in 0..attempts {
                if seats.is_empty() {
                    break;
                }
                let seat = seats.swap_remove(self.rng.random_range(0..seats.len()));
                let driver = self.via();
                let r = self
                    .call(
                        Op::Reserve,
                        retry,
                        Box::pin(driver.reserve(&token, self.id, date.option_id, seat)),
                    )
                    .await;
                retry = true;
                match r {
                    Ok(h) => {
                        hold = Some((h, seat));
                        break 'rounds;
                    }
                    Err(Failure {
                        outcome: Outcome::Conflict,
                        code,
                        ..
                    }) if code != "TOO_MANY_HOLDS" => continue,
                    Err(_) => return self.leave(&token, UserEnd::GaveUp).await,
                }
            }
        }
        let Some((hold, seat)) = hold else {
            return self.leave(&token, UserEnd::GaveUp).await;
        };
        if !pay {
            return self.leave(&token, UserEnd::Done).await;
        }
        if charge {
            let driver = self.via();
            let r = self
                .call(Op::Charge, false, Box::pin(driver.charge(self.id, hold.price)))
                .await;
            self.money(self.id, hold.price.cents(), &r);
            if r.is_err() {
                return self.leave(&token, UserEnd::GaveUp).await;
            }
        }
        let driver = self.via();
        let r = self
            .call(
                Op::Pay,
                false,
                Box::pin(driver.pay(&token, hold.reservation_id, hold.price)),
            )
            .await;
        self.money(self.id, -hold.price.cents(), &r);
        match r {
            Ok(_) => {
                self.send(Event::Paid {
                    user: self.id,
                    reservation: hold.reservation_id,
                    seat,
                    cents: hold.price.cents(),
                });
                UserEnd::Done
            }
            Err(_) => self.leave(&token, UserEnd::GaveUp).await,
        }
    }

    /// Gives the token up (its slot goes to the next waiter at once) and ends the journey.
    async fn leave(&mut self, token: &str, end: UserEnd) -> UserEnd {
        let driver = self.via();
        let _ = self.call(Op::Leave, false, Box::pin(driver.leave(token))).await;
        end
    }
}

#[cfg(test)]
mod tests {
    use super::super::metrics::Aggregator;
    use super::*;

    /// A burst keeps every user's future alive at once: 100,000 of them must fit in memory.
    #[test]
    fn a_waiting_user_is_small() {
        let dir = tempfile::tempdir().unwrap();
        let t = Ticketing::open(ticketing_core::Config::new(dir.path().join("t.db"))).unwrap();
        let scenario = Scenario::load("sold-out-rush").unwrap();
        let (events, _rx) = std::sync::mpsc::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let ctx = Arc::new(RunContext {
            driver: Driver::InProcess(t),
            scenario: Arc::new(scenario),
            concert_ids: vec![1],
            t0: Instant::now(),
            seed: 1,
            events,
            prepared: Prepared::default(),
            max_active: 500,
        });
        let (_go, wait) = tokio::sync::oneshot::channel();
        let size = std::mem::size_of_val(&run_user(ctx, 0, Instant::now(), wait));
        eprintln!("user future: {size} bytes");
        assert!(size < 2048, "user future is {size} bytes");
    }

    /// A runtime on tokio's paused clock: the durations the tests below see are exact, not
    /// measured.
    fn paused() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
    }

    /// User 1 of a steady-state run starting now, in process on `t`, its first request due
    /// `due` after the start; what it does goes to `events`.
    fn steady_user(t: Ticketing, events: Sender<Event>, due: Duration) -> User {
        let t0 = Instant::now();
        User {
            ctx: Arc::new(RunContext {
                driver: Driver::InProcess(t),
                scenario: Arc::new(Scenario::load("steady-state").unwrap()),
                concert_ids: vec![1],
                t0,
                seed: 1,
                events,
                prepared: Prepared::default(),
                max_active: 500,
            }),
            index: 0,
            id: 1,
            due: t0 + due,
            node: 0,
            rng: SmallRng::seed_from_u64(1),
        }
    }

    /// A request is timed from its due moment to its answer's last byte; decoding the answer
    /// comes after the clock stops, and the user's next request is due after it.
    #[test]
    fn the_clock_stops_at_the_last_byte_not_after_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let t = Ticketing::open(ticketing_core::Config::new(dir.path().join("t.db"))).unwrap();
        let (events, rx) = std::sync::mpsc::channel();
        let ms = Duration::from_millis;
        paused().block_on(async {
            let mut user = steady_user(t, events, ms(10));
            let answer = Box::pin(async {
                // The answer's last byte arrives 3 ms after the send…
                tokio::time::sleep(ms(3)).await;
                super::super::driver::note_received();
                // …and decoding it takes the client 40 ms (far more than it does: so it shows).
                tokio::time::sleep(ms(40)).await;
                Ok(())
            });
            user.call(Op::Seats, false, answer).await.unwrap();
            let recorded = rx.try_iter().find_map(|e| match e {
                Event::Request { intended, end, .. } => Some((intended, end)),
                _ => None,
            });
            assert_eq!(recorded, Some((ms(10), ms(13))), "(intended, end) since t0");
            assert_eq!(
                user.due,
                user.ctx.t0 + ms(53) + user.ctx.scenario.load.think,
                "the next request: after decoding, plus think time"
            );
        });
    }

    /// A request the simulator sends late (its timer or its worker was late) is timed from its
    /// intended start all the same, and the lateness is counted apart: the report's "the
    /// simulator late" row, so a late generator can be told from a slow server.
    #[test]
    fn a_late_send_counts_in_the_latency_and_as_the_simulators_lateness() {
        let dir = tempfile::tempdir().unwrap();
        let t = Ticketing::open(ticketing_core::Config::new(dir.path().join("t.db"))).unwrap();
        let (events, aggregator) = Aggregator::start(indicatif::ProgressBar::hidden(), None, 1).unwrap();
        let ms = Duration::from_millis;
        paused().block_on(async {
            let mut user = steady_user(t, events, ms(10));
            // The simulator gets to the request 4 ms after it was due…
            tokio::time::advance(ms(14)).await;
            let answer = Box::pin(async {
                // …and the answer takes 3 ms.
                tokio::time::sleep(ms(3)).await;
                Ok(())
            });
            user.call(Op::Seats, false, answer).await.unwrap();
        });
        let stats = aggregator.finish().unwrap();
        let seats = &stats.ops[&Op::Seats];
        // (A histogram answers with the top of the value's bucket: 7,003 for 7,000.)
        let latency = seats.latency.max();
        assert!(
            seats.latency.equivalent(latency, 7_000),
            "latency from the intended start, lateness included: {latency} µs"
        );
        let late = stats.send_lag.value_at_quantile(0.5);
        assert!(
            stats.send_lag.equivalent(late, 4_000),
            "the simulator's own lateness: {late} µs"
        );
    }
}
