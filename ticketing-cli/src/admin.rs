//! `ticketing admin …`: scriptable operator commands. Every TUI action is one of these.
//! `--json` prints the core's read models as JSON; without it, short human text.
//! Bad arguments (and unknown ids) exit 2 and change nothing. Read commands open the database
//! read-only ([`AdminCommand::writes`]): they never create, migrate or change it, so they are
//! safe on a live sale and work on a read-only file.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use ticketing_core::admin::{NewConcert, ReservationFilter};
use ticketing_core::invariants;
use ticketing_core::{Money, Ticketing};

use crate::failure::fix_first;
use crate::{GlobalArgs, UsageError};

/// Flags of `ticketing admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Concerts: add or list.
    #[command(subcommand)]
    Concert(ConcertCommand),
    /// The seat map of one date.
    Seats {
        /// The date (concert option) id.
        #[arg(long)]
        option: i64,
    },
    /// The queue's counters, or change its settings.
    Queue {
        #[command(subcommand)]
        action: Option<QueueCommand>,
    },
    /// Tokens: list, or expire one.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Holds: release one.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Reservations, newest first.
    Reservations {
        /// Only this user's.
        #[arg(long, value_name = "ID")]
        user: Option<i64>,
        /// Only live holds.
        #[arg(long, conflicts_with = "paid")]
        held: bool,
        /// Only paid ones.
        #[arg(long)]
        paid: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// A wallet's balance and ledger.
    Wallet {
        /// The user id.
        user_id: i64,
    },
    /// Expire run-out holds and tokens now and admit waiters (servers do this every second).
    Sweep,
    /// Check every invariant of the database: exit 0 when all hold, 1 with the list otherwise.
    Check,
}

#[derive(Debug, Subcommand)]
enum ConcertCommand {
    /// Add a concert with its dates, seats per date and price.
    Add {
        /// Title.
        #[arg(long)]
        title: String,
        /// A performance date, YYYY-MM-DD; repeat for more dates.
        #[arg(long = "date", required = true)]
        dates: Vec<String>,
        /// Seats per date.
        #[arg(long, default_value_t = 50)]
        seats: u32,
        /// Price of a seat.
        #[arg(long, default_value_t = 100000.0)]
        price: f64,
    },
    /// Concerts with seat counts and revenue per date.
    List,
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Set the most tokens ACTIVE at once (waiters are admitted into new room at once).
    SetMaxActive {
        /// The new limit.
        max_active: u32,
    },
    /// Stop admitting waiters.
    Pause,
    /// Admit waiters again.
    Resume,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Live tokens of one status in queue order.
    List {
        /// Which tokens.
        #[arg(long, value_enum, default_value_t = TokenListStatus::Waiting)]
        status: TokenListStatus,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Expire a token; its slot goes to the next waiter.
    Expire {
        /// The token.
        token: String,
    },
}

/// The live statuses `token list` shows.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum TokenListStatus {
    /// In the queue, in queue order.
    Waiting,
    /// Admitted.
    Active,
}

#[derive(Debug, Subcommand)]
enum HoldCommand {
    /// Release a live hold: reservation CANCELLED, seat AVAILABLE.
    Release {
        /// The reservation id.
        reservation_id: i64,
    },
}

/// Runs `ticketing admin …`.
pub fn run(global: &GlobalArgs, args: AdminArgs) -> anyhow::Result<ExitCode> {
    let config = global.config()?;
    // Check what can be checked before the database is even opened: bad arguments write nothing.
    let args = AdminArgs {
        command: args.command.validated()?,
        ..args
    };
    // The core's errors say which file and why ("… is not an SQLite database"); no context
    // is added that could blame the database for a Redis problem.
    let t = if args.command.writes() {
        Ticketing::open(config)
    } else {
        Ticketing::open_read_only(config)
    }
    .map_err(usage_or_fail)?;
    let json = args.json;
    match args.command {
        AdminCommand::Concert(ConcertCommand::Add {
            title,
            dates,
            seats,
            price,
        }) => {
            let price = Money::parse_amount("price", price).map_err(usage_or_fail)?;
            let created = t
                .add_concert(NewConcert {
                    title,
                    dates,
                    seats,
                    price,
                })
                .map_err(usage_or_fail)?;
            print(json, &created, || {
                let mut out = format!("concert {} \"{}\"\n", created.concert_id, created.title);
                for d in &created.concert_options {
                    out += &format!(
                        "  date {} (option {}): {} seats at {}\n",
                        d.concert_date,
                        d.concert_option_id,
                        d.seats,
                        Money::as_f64(d.price)
                    );
                }
                out
            })?;
        }
        AdminCommand::Concert(ConcertCommand::List) => {
            let sales = t.sales()?;
            print(json, &sales, || {
                let mut out = String::new();
                for c in &sales {
                    out += &format!("concert {} \"{}\"\n", c.concert_id, c.title);
                    for d in &c.dates {
                        out += &format!(
                            "  option {} {}  price {}  seats {}  available {}  held {}  sold {}  revenue {}\n",
                            d.concert_option_id,
                            d.concert_date,
                            d.price,
                            d.seats,
                            d.available,
                            d.held,
                            d.sold,
                            d.revenue
                        );
                    }
                }
                out
            })?;
        }
        AdminCommand::Seats { option } => {
            let seats = t.seat_map(option).map_err(usage_or_fail)?;
            print(json, &seats, || {
                seats
                    .iter()
                    .map(|s| match (s.status, s.reservation_id, s.held_until) {
                        (st, Some(r), Some(until)) => format!(
                            "{} {} reservation {r} until {}\n",
                            s.seat_number,
                            st,
                            until.to_rfc3339()
                        ),
                        (st, Some(r), None) => format!("{} {} reservation {r}\n", s.seat_number, st),
                        (st, None, _) => format!("{} {}\n", s.seat_number, st),
                    })
                    .collect()
            })?;
        }
        AdminCommand::Queue { action } => {
            match action {
                Some(QueueCommand::SetMaxActive { max_active }) => {
                    t.set_max_active(max_active).map_err(usage_or_fail)?
                }
                Some(QueueCommand::Pause) => t.set_paused(true)?,
                Some(QueueCommand::Resume) => t.set_paused(false)?,
                None => {}
            }
            let q = t.queue_state()?;
            print(json, &q, || {
                format!(
                    "waiting {}  active {}/{}  {}  admitted last minute {}  oldest wait {}\n",
                    q.waiting,
                    q.active,
                    q.max_active,
                    if q.paused { "PAUSED" } else { "admitting" },
                    q.admitted_last_minute,
                    q.oldest_wait_seconds.map_or("-".into(), |s| format!("{s}s"))
                )
            })?;
        }
        AdminCommand::Token(TokenCommand::List { status, limit }) => {
            let status = match status {
                TokenListStatus::Waiting => ticketing_core::TokenStatus::Waiting,
                TokenListStatus::Active => ticketing_core::TokenStatus::Active,
            };
            let tokens = t.tokens(status, 0, limit)?;
            print(json, &tokens, || {
                tokens
                    .iter()
                    .map(|k| {
                        format!(
                            "{:>6} {} user {} {} expires {}\n",
                            k.queue_position,
                            k.token,
                            k.user_id,
                            k.status,
                            k.expires_at.to_rfc3339()
                        )
                    })
                    .collect()
            })?;
        }
        AdminCommand::Token(TokenCommand::Expire { token }) => {
            t.expire_token(&token).map_err(usage_or_fail)?;
            print(
                json,
                &serde_json::json!({ "token": token, "status": "EXPIRED" }),
                || format!("token {token} expired\n"),
            )?;
        }
        AdminCommand::Hold(HoldCommand::Release { reservation_id }) => {
            t.release_hold(reservation_id).map_err(usage_or_fail)?;
            print(
                json,
                &serde_json::json!({ "reservationId": reservation_id, "status": "CANCELLED" }),
                || format!("reservation {reservation_id} released\n"),
            )?;
        }
        AdminCommand::Reservations {
            user,
            held,
            paid,
            limit,
        } => {
            let filter = match (held, paid) {
                (true, _) => ReservationFilter::Held,
                (_, true) => ReservationFilter::Paid,
                _ => ReservationFilter::All,
            };
            let list = t.reservations_of(user, filter, limit)?;
            print(json, &list, || {
                list.iter()
                    .map(|r| {
                        format!(
                            "{} user {} seat {} (option {}) {} until {} price {}\n",
                            r.reservation_id,
                            r.user_id,
                            r.seat_number,
                            r.concert_option_id,
                            r.status,
                            r.held_until.to_rfc3339(),
                            r.price
                        )
                    })
                    .collect()
            })?;
        }
        AdminCommand::Wallet { user_id } => {
            let w = t.wallet(user_id).map_err(usage_or_fail)?;
            print(json, &w, || {
                let mut out = format!("user {} balance {}\n", w.user_id, w.balance);
                for e in &w.ledger {
                    out += &format!(
                        "  {} {:<8} {:>14} -> {}\n",
                        e.at.to_rfc3339(),
                        e.kind,
                        e.amount,
                        e.balance_after
                    );
                }
                out
            })?;
        }
        AdminCommand::Sweep => {
            let r = t.sweep()?;
            print(
                json,
                &serde_json::json!({ "holdsExpired": r.holds_expired, "tokensExpired": r.tokens_expired, "admitted": r.admitted }),
                || {
                    format!(
                        "holds expired {}  tokens expired {}  admitted {}\n",
                        r.holds_expired, r.tokens_expired, r.admitted
                    )
                },
            )?;
        }
        AdminCommand::Check => {
            let violations = invariants::check(&t)?;
            print(
                json,
                &serde_json::json!({ "ok": violations.is_empty(), "violations": violations }),
                || {
                    if violations.is_empty() {
                        "all invariants hold\n".to_string()
                    } else {
                        violations
                            .iter()
                            .map(|v| format!("VIOLATION {}: {}\n", v.invariant, v.detail))
                            .collect()
                    }
                },
            )?;
            if !violations.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl AdminCommand {
    /// True for the commands that change the database; every other one opens it read-only.
    fn writes(&self) -> bool {
        match self {
            AdminCommand::Concert(ConcertCommand::Add { .. })
            | AdminCommand::Queue { action: Some(_) }
            | AdminCommand::Token(TokenCommand::Expire { .. })
            | AdminCommand::Hold(_)
            | AdminCommand::Sweep => true,
            AdminCommand::Concert(ConcertCommand::List)
            | AdminCommand::Seats { .. }
            | AdminCommand::Queue { action: None }
            | AdminCommand::Token(TokenCommand::List { .. })
            | AdminCommand::Reservations { .. }
            | AdminCommand::Wallet { .. }
            | AdminCommand::Check => false,
        }
    }

    fn validated(self) -> anyhow::Result<AdminCommand> {
        match self {
            AdminCommand::Concert(ConcertCommand::Add {
                title,
                dates,
                seats,
                price,
            }) => {
                let price_money = Money::parse_amount("price", price).map_err(usage_or_fail)?;
                let new = NewConcert {
                    title,
                    dates,
                    seats,
                    price: price_money,
                }
                .validated()
                .map_err(usage_or_fail)?;
                Ok(AdminCommand::Concert(ConcertCommand::Add {
                    title: new.title,
                    dates: new.dates,
                    seats,
                    price,
                }))
            }
            AdminCommand::Queue {
                action: Some(QueueCommand::SetMaxActive { max_active }),
            } => {
                ticketing_core::config::check_max_active(max_active).map_err(usage_or_fail)?;
                Ok(AdminCommand::Queue {
                    action: Some(QueueCommand::SetMaxActive { max_active }),
                })
            }
            AdminCommand::Wallet { user_id }
            | AdminCommand::Reservations {
                user: Some(user_id), ..
            } if user_id <= 0 => Err(UsageError("the user id must be a positive integer".into()).into()),
            other => Ok(other),
        }
    }
}

fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        print!("{}", text());
    }
    Ok(())
}

/// An operator's mistake (bad value, unknown id, a hold that is not live) and an unusable
/// setting or database are the operator's to fix (exit 2); anything else fails.
fn usage_or_fail(e: ticketing_core::Error) -> anyhow::Error {
    match e {
        ticketing_core::Error::NotFound { .. }
        | ticketing_core::Error::NotHeld { .. }
        | ticketing_core::Error::AlreadyPaid { .. } => UsageError(e.to_string()).into(),
        e if fix_first(&e) => UsageError(e.to_string()).into(),
        other => other.into(),
    }
}
