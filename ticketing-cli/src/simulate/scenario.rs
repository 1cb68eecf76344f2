//! Scenario files: the TOML format (`scenarios/README.md` documents it), its validation, and
//! the shipped scenarios embedded in the binary so `ticketing simulate` works from any directory.
//!
//! Parsing goes in two steps: serde reads the raw file (`deny_unknown_fields`, so a misspelt key
//! is named), then [`Scenario::from_raw`] checks ranges and combinations and turns text
//! durations and amounts into typed values. Every message names the field, e.g. `load.users`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use ticketing_core::Money;

use super::expr::{self, Expr, Vars};
use super::metrics::Op;

/// The scenarios shipped in `scenarios/`, by name.
pub const SHIPPED: &[(&str, &str)] = &[
    ("seed-charge", include_str!("../../../scenarios/seed-charge.toml")),
    ("seed-use", include_str!("../../../scenarios/seed-use.toml")),
    ("seed-reserve", include_str!("../../../scenarios/seed-reserve.toml")),
    ("seed-pay", include_str!("../../../scenarios/seed-pay.toml")),
    ("hot-seat", include_str!("../../../scenarios/hot-seat.toml")),
    ("sold-out-rush", include_str!("../../../scenarios/sold-out-rush.toml")),
    ("wallet-storm", include_str!("../../../scenarios/wallet-storm.toml")),
    ("steady-state", include_str!("../../../scenarios/steady-state.toml")),
    ("mega-rush", include_str!("../../../scenarios/mega-rush.toml")),
    (
        "available-seats",
        include_str!("../../../scenarios/available-seats.toml"),
    ),
];

/// The scenario `ticketing simulate` runs when none is named.
pub const DEFAULT: &str = "sold-out-rush";

/// A scenario file that cannot be used: the message names the file, the field and the problem.
#[derive(Debug)]
pub struct ScenarioError(pub String);

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

// ----- the raw file ----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    setup: RawSetup,
    load: RawLoad,
    #[serde(default)]
    queue: RawQueue,
    journey: RawJourney,
    #[serde(default)]
    expect: RawExpect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    #[serde(default)]
    concerts: Vec<RawConcert>,
    /// Starting balance of every user of the load.
    balance: Option<f64>,
    #[serde(default)]
    wallets: Vec<RawWallet>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConcert {
    title: String,
    dates: Vec<String>,
    seats: Option<u32>,
    price: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWallet {
    user: i64,
    balance: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    users: u64,
    arrival: Option<String>,
    ramp: Option<String>,
    rate: Option<f64>,
    think: Option<String>,
    first_user: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    max_active: Option<u32>,
    token_ttl: Option<String>,
    waiting_ttl: Option<String>,
    hold_ttl: Option<String>,
    max_holds: Option<u32>,
    poll_min: Option<String>,
    poll_max: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJourney {
    kind: String,
    concert: Option<usize>,
    reserve_attempts: Option<u32>,
    charge: Option<bool>,
    pay: Option<bool>,
    amount: Option<f64>,
    wallet_user: Option<i64>,
    wallets: Option<u32>,
    use_ratio: Option<f64>,
    ops_per_user: Option<u32>,
    seat: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    sold_out: Option<RawFigure>,
    paid: Option<RawFigure>,
    #[serde(default)]
    balances: Vec<RawExpectedBalance>,
    #[serde(default)]
    ok: BTreeMap<String, RawFigure>,
    #[serde(default)]
    failed: BTreeMap<String, RawFigure>,
    max_errors: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectedBalance {
    user: i64,
    balance: RawFigure,
}

/// An expected figure: a fixed value, or an expression of the load and setup (`expr`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawFigure {
    Flag(bool),
    Number(f64),
    Expression(String),
}

// ----- the validated scenario ------------------------------------------------------------------

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name (`sold-out-rush`).
    pub name: String,
    /// What it shows.
    pub description: String,
    /// Data created before the load starts.
    pub setup: Setup,
    /// Who arrives when.
    pub load: Load,
    /// Queue and hold settings.
    pub queue: Queue,
    /// What each virtual user does.
    pub journey: Journey,
    /// What must hold at the end, for this load.
    pub expect: Expect,
    /// The file's description and expectations, evaluated again for every load
    /// ([`Scenario::with_users`]) so that they stay true when `--users` changes it.
    template: Template,
}

/// The parts of a scenario written relative to its load or setup.
#[derive(Debug, Clone)]
struct Template {
    description: String,
    sold_out: Option<Figure>,
    paid: Option<Figure>,
    balances: Vec<(i64, Figure)>,
    ok: Vec<(Op, Figure)>,
    failed: Vec<(Op, Figure)>,
}

/// One expected figure as written, and parsed.
#[derive(Debug, Clone)]
struct Figure {
    text: String,
    expr: Expr,
}

impl Figure {
    fn from_raw(field: &str, raw: &RawFigure, flag: bool) -> Result<Figure, String> {
        let (text, expr) = match raw {
            RawFigure::Flag(b) if flag => (b.to_string(), Expr::Num(if *b { 1.0 } else { 0.0 })),
            RawFigure::Flag(b) => return Err(format!("`{field}` must be a number or an expression, not {b}")),
            RawFigure::Number(n) if flag => {
                return Err(format!("`{field}` must be true, false or a comparison, not {n}"))
            }
            RawFigure::Number(n) => (n.to_string(), Expr::Num(*n)),
            RawFigure::Expression(t) => (t.clone(), Expr::parse(t).map_err(|e| format!("`{field}`: {e}"))?),
        };
        Ok(Figure { text, expr })
    }

    /// The figure's value through `get` (count, cents, flag), or a message naming the field.
    fn value<T>(&self, field: &str, vars: &Vars, get: impl Fn(&Expr, &Vars) -> Result<T, String>) -> Result<T, String> {
        get(&self.expr, vars).map_err(|e| format!("`{field}` = `{}`: {e}", self.text))
    }
}

/// Data created before the load.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Concerts with their dates and seats.
    pub concerts: Vec<ConcertSetup>,
    /// Starting balance of every user of the load.
    pub balance: Option<Money>,
    /// Starting balances of named users.
    pub wallets: Vec<(i64, Money)>,
}

/// One concert to add.
#[derive(Debug, Clone)]
pub struct ConcertSetup {
    /// Title (the HTTP driver finds the concert by it).
    pub title: String,
    /// `YYYY-MM-DD` dates.
    pub dates: Vec<String>,
    /// Seats per date.
    pub seats: u32,
    /// Price of a seat.
    pub price: Money,
}

/// How users arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrival {
    /// All at once.
    Burst,
    /// Evenly spread over a duration.
    Ramp(Duration),
    /// A fixed number per second (open loop).
    Rate(f64),
}

/// The load.
#[derive(Debug, Clone)]
pub struct Load {
    /// Number of virtual users.
    pub users: u64,
    /// Arrival pattern.
    pub arrival: Arrival,
    /// Pause between two steps of one user.
    pub think: Duration,
    /// The first user's id; users are numbered on from it.
    pub first_user: i64,
}

impl Load {
    /// When user number `i` (0-based) arrives, after the start.
    pub fn arrival_of(&self, i: u64) -> Duration {
        match self.arrival {
            Arrival::Burst => Duration::ZERO,
            Arrival::Ramp(over) => over.mul_f64(i as f64 / self.users.max(1) as f64),
            Arrival::Rate(per_second) => Duration::from_secs_f64(i as f64 / per_second),
        }
    }

    /// The arrival pattern in words.
    pub fn arrival_text(&self) -> String {
        match self.arrival {
            Arrival::Burst => "burst".into(),
            Arrival::Ramp(d) => format!("ramp over {}", humantime::format_duration(d)),
            Arrival::Rate(r) => format!("{r}/s"),
        }
    }
}

/// Queue and hold settings (unset: the global flags' values).
#[derive(Debug, Clone)]
pub struct Queue {
    /// Most ACTIVE tokens.
    pub max_active: Option<u32>,
    /// Admitted token lifetime.
    pub token_ttl: Option<Duration>,
    /// Waiting token lifetime without a poll.
    pub waiting_ttl: Option<Duration>,
    /// Hold lifetime.
    pub hold_ttl: Option<Duration>,
    /// Most holds per user.
    pub max_holds: Option<u32>,
    /// Shortest pause between two status polls of a waiting user.
    pub poll_min: Duration,
    /// Longest pause between two status polls.
    pub poll_max: Duration,
}

/// What each virtual user does.
#[derive(Debug, Clone)]
pub enum Journey {
    /// token → wait for admission → dates → seats → reserve (another seat on conflict) →
    /// charge → pay.
    Ticket {
        /// Index into `setup.concerts`.
        concert: usize,
        /// Reserve attempts before re-reading the seat list.
        reserve_attempts: u32,
        /// Top up the price before paying.
        charge: bool,
        /// Pay the hold.
        pay: bool,
    },
    /// Every user charges `amount` to one wallet, `ops` times (the seed's charge case).
    Charge { wallet_user: i64, amount: Money, ops: u32 },
    /// Every user uses `amount` from one wallet, `ops` times (the seed's use case).
    Use { wallet_user: i64, amount: Money, ops: u32 },
    /// Every user (admitted beforehand) tries to hold the same seat.
    Reserve { concert: usize, seat: u32 },
    /// One user holds a seat; every virtual user pays that one reservation with its token.
    Pay { concert: usize, seat: u32 },
    /// Read only: every user reads the seat list of the concert's first date, `ops` times,
    /// with one token admitted beforehand (a fixed-rate load to compare with other tools).
    Seats { concert: usize, ops: u32 },
    /// Charges and uses of `amount` spread over `wallets` wallets.
    Wallet {
        wallets: u32,
        amount: Money,
        use_ratio: f64,
        ops: u32,
    },
}

impl Journey {
    /// The operation a single-operation journey repeats (the seed's cases), whose outcome the
    /// seed's columns summarise.
    pub fn seed_op(&self) -> Option<Op> {
        match self {
            Journey::Charge { .. } => Some(Op::Charge),
            Journey::Use { .. } => Some(Op::Use),
            Journey::Reserve { .. } => Some(Op::Reserve),
            Journey::Pay { .. } => Some(Op::Pay),
            _ => None,
        }
    }

    /// Whose balance the seed's "final points" column shows.
    pub fn seed_wallet(&self, load: &Load) -> Option<i64> {
        match self {
            Journey::Charge { wallet_user, .. } | Journey::Use { wallet_user, .. } => Some(*wallet_user),
            Journey::Pay { .. } => Some(load.first_user),
            _ => None,
        }
    }
}

/// What must hold at the end.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// No date has an AVAILABLE seat.
    pub sold_out: Option<bool>,
    /// Exactly this many seats paid (winners).
    pub paid: Option<u64>,
    /// Final balances.
    pub balances: Vec<(i64, Money)>,
    /// Successes per operation.
    pub ok: Vec<(Op, u64)>,
    /// Failures per operation.
    pub failed: Vec<(Op, u64)>,
    /// Most server errors (5xx, internal, transport) allowed.
    pub max_errors: u64,
}

impl Scenario {
    /// Parses and validates scenario text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text)
            .map_err(|e| ScenarioError(format!("scenario {origin}: {}", e.to_string().trim_end())))?;
        Scenario::from_raw(raw).map_err(|e| ScenarioError(format!("scenario {origin}: {e}")))
    }

    /// Reads a scenario: a file path, or the name of a shipped scenario (`sold-out-rush`,
    /// `scenarios/sold-out-rush.toml`) when no such file exists.
    pub fn load(arg: &str) -> Result<Scenario, ScenarioError> {
        let path = Path::new(arg);
        if path.is_file() {
            let text =
                std::fs::read_to_string(path).map_err(|e| ScenarioError(format!("cannot read scenario {arg}: {e}")))?;
            return Scenario::parse(&text, arg);
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or(arg);
        match SHIPPED.iter().find(|(name, _)| *name == stem) {
            Some((name, text)) => Scenario::parse(text, &format!("{name} (shipped)")),
            None => Err(ScenarioError(format!(
                "no scenario file {arg}, and no shipped scenario of that name (shipped: {})",
                SHIPPED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    fn from_raw(raw: RawScenario) -> Result<Scenario, String> {
        if raw.name.trim().is_empty() {
            return Err("`name` must not be empty".into());
        }
        let mut concerts = Vec::new();
        for (i, c) in raw.setup.concerts.into_iter().enumerate() {
            let at = format!("setup.concerts[{i}]");
            if c.title.trim().is_empty() {
                return Err(format!("`{at}.title` must not be empty"));
            }
            if c.dates.is_empty() {
                return Err(format!("`{at}.dates` must list at least one YYYY-MM-DD date"));
            }
            for d in &c.dates {
                ticketing_core::domain::check_date("date", d)
                    .map_err(|_| format!("`{at}.dates`: `{d}` is not a valid YYYY-MM-DD date"))?;
            }
            let seats = c.seats.unwrap_or(50);
            if seats == 0 || seats > ticketing_core::domain::MAX_SEATS_PER_DATE {
                return Err(format!("`{at}.seats` must be between 1 and 10000, not {seats}"));
            }
            concerts.push(ConcertSetup {
                title: c.title,
                dates: c.dates,
                seats,
                price: money(&format!("{at}.price"), c.price.unwrap_or(100_000.0))?,
            });
        }
        let balance = raw.setup.balance.map(|b| money("setup.balance", b)).transpose()?;
        let wallets = raw
            .setup
            .wallets
            .iter()
            .enumerate()
            .map(|(i, w)| wallet(&format!("setup.wallets[{i}]"), w))
            .collect::<Result<Vec<_>, _>>()?;

        let l = raw.load;
        if l.users == 0 || l.users > MAX_USERS {
            return Err(format!(
                "`load.users` must be between 1 and {MAX_USERS}, not {}",
                l.users
            ));
        }
        let arrival = match l.arrival.as_deref().unwrap_or("burst") {
            "burst" => {
                if l.ramp.is_some() || l.rate.is_some() {
                    return Err("`load.ramp` and `load.rate` only go with `arrival = \"ramp\"` or `\"rate\"`".into());
                }
                Arrival::Burst
            }
            "ramp" => Arrival::Ramp(duration(
                "load.ramp",
                l.ramp
                    .as_deref()
                    .ok_or("`load.arrival = \"ramp\"` needs `load.ramp`, e.g. \"2s\"")?,
            )?),
            "rate" => {
                let r = l
                    .rate
                    .ok_or("`load.arrival = \"rate\"` needs `load.rate` (users per second)")?;
                if !(r.is_finite() && r > 0.0 && r <= 1_000_000.0) {
                    return Err(format!(
                        "`load.rate` must be between 0 and 1000000 users per second, not {r}"
                    ));
                }
                Arrival::Rate(r)
            }
            other => {
                return Err(format!(
                    "`load.arrival` must be \"burst\", \"ramp\" or \"rate\", not \"{other}\""
                ))
            }
        };
        let first_user = l.first_user.unwrap_or(1);
        if first_user < 1 {
            return Err("`load.first_user` must be at least 1".into());
        }
        let load = Load {
            users: l.users,
            arrival,
            think: l
                .think
                .as_deref()
                .map(|t| duration0("load.think", t))
                .transpose()?
                .unwrap_or_default(),
            first_user,
        };

        let q = raw.queue;
        if q.max_active == Some(0) || q.max_active.is_some_and(|m| m > 1_000_000) {
            return Err("`queue.max_active` must be between 1 and 1000000".into());
        }
        if q.max_holds == Some(0) {
            return Err("`queue.max_holds` must be at least 1".into());
        }
        let queue = Queue {
            max_active: q.max_active,
            token_ttl: q
                .token_ttl
                .as_deref()
                .map(|d| duration("queue.token_ttl", d))
                .transpose()?,
            waiting_ttl: q
                .waiting_ttl
                .as_deref()
                .map(|d| duration("queue.waiting_ttl", d))
                .transpose()?,
            hold_ttl: q
                .hold_ttl
                .as_deref()
                .map(|d| duration("queue.hold_ttl", d))
                .transpose()?,
            max_holds: q.max_holds,
            poll_min: q
                .poll_min
                .as_deref()
                .map(|d| duration("queue.poll_min", d))
                .transpose()?
                .unwrap_or(Duration::from_millis(10)),
            poll_max: q
                .poll_max
                .as_deref()
                .map(|d| duration("queue.poll_max", d))
                .transpose()?
                .unwrap_or(Duration::from_secs(2)),
        };
        if queue.poll_max < queue.poll_min {
            return Err("`queue.poll_max` must not be shorter than `queue.poll_min`".into());
        }

        let j = raw.journey;
        let concert_of = |j: &RawJourney| -> Result<usize, String> {
            let c = j.concert.unwrap_or(1);
            if c == 0 || c > concerts.len() {
                return Err(format!(
                    "`journey.concert` is {c}, but `setup.concerts` has {} concert(s) (1-based)",
                    concerts.len()
                ));
            }
            Ok(c - 1)
        };
        let seat_of = |j: &RawJourney, concert: usize| -> Result<u32, String> {
            let s = j.seat.unwrap_or(1);
            let seats = concerts.get(concert).map_or(0, |c| c.seats);
            if s == 0 || s > seats {
                return Err(format!(
                    "`journey.seat` must be between 1 and {seats} (the concert's seats), not {s}"
                ));
            }
            Ok(s)
        };
        let amount = |j: &RawJourney| money("journey.amount", j.amount.unwrap_or(100.0));
        let ops = |j: &RawJourney| -> Result<u32, String> {
            match j.ops_per_user.unwrap_or(1) {
                0 => Err("`journey.ops_per_user` must be at least 1".into()),
                n => Ok(n),
            }
        };
        let wallet_user = |j: &RawJourney| -> Result<i64, String> {
            match j.wallet_user.unwrap_or(1) {
                u if u < 1 => Err("`journey.wallet_user` must be at least 1".into()),
                u => Ok(u),
            }
        };
        let journey = match j.kind.as_str() {
            "ticket" => Journey::Ticket {
                concert: concert_of(&j)?,
                reserve_attempts: j.reserve_attempts.unwrap_or(5).max(1),
                charge: j.charge.unwrap_or(true),
                pay: j.pay.unwrap_or(true),
            },
            "charge" => Journey::Charge {
                wallet_user: wallet_user(&j)?,
                amount: amount(&j)?,
                ops: ops(&j)?,
            },
            "use" => Journey::Use {
                wallet_user: wallet_user(&j)?,
                amount: amount(&j)?,
                ops: ops(&j)?,
            },
            "reserve" | "pay" => {
                let concert = concert_of(&j)?;
                let seat = seat_of(&j, concert)?;
                let needed = if j.kind == "pay" { 1 } else { load.users };
                if queue.max_active.is_some_and(|m| u64::from(m) < needed) {
                    return Err(format!(
                        "`queue.max_active` must be at least {needed}: every user of a `{}` journey is admitted before the race",
                        j.kind
                    ));
                }
                if j.kind == "pay" {
                    Journey::Pay { concert, seat }
                } else {
                    Journey::Reserve { concert, seat }
                }
            }
            "seats" => Journey::Seats {
                concert: concert_of(&j)?,
                ops: ops(&j)?,
            },
            "wallet" => {
                let wallets = j.wallets.unwrap_or(5);
                if wallets == 0 {
                    return Err("`journey.wallets` must be at least 1".into());
                }
                let use_ratio = j.use_ratio.unwrap_or(0.5);
                if !(0.0..=1.0).contains(&use_ratio) {
                    return Err(format!("`journey.use_ratio` must be between 0 and 1, not {use_ratio}"));
                }
                Journey::Wallet {
                    wallets,
                    amount: amount(&j)?,
                    use_ratio,
                    ops: ops(&j)?,
                }
            }
            other => {
                return Err(format!(
                    "`journey.kind` must be one of ticket, charge, use, reserve, pay, seats, wallet — not \"{other}\""
                ))
            }
        };

        let e = raw.expect;
        let op_counts = |field: &str, m: &BTreeMap<String, RawFigure>| -> Result<Vec<(Op, Figure)>, String> {
            m.iter()
                .map(|(k, v)| {
                    let op = Op::parse(k).ok_or_else(|| {
                        format!(
                            "`expect.{field}.{k}`: unknown operation (expected one of {})",
                            Op::ALL.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
                        )
                    })?;
                    Ok((op, Figure::from_raw(&format!("expect.{field}.{k}"), v, false)?))
                })
                .collect()
        };
        let template = Template {
            description: raw.description.trim().to_string(),
            sold_out: e
                .sold_out
                .as_ref()
                .map(|f| Figure::from_raw("expect.sold_out", f, true))
                .transpose()?,
            paid: e
                .paid
                .as_ref()
                .map(|f| Figure::from_raw("expect.paid", f, false))
                .transpose()?,
            balances: e
                .balances
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let field = format!("expect.balances[{i}]");
                    if w.user < 1 {
                        return Err(format!("`{field}.user` must be at least 1"));
                    }
                    Ok((
                        w.user,
                        Figure::from_raw(&format!("{field}.balance"), &w.balance, false)?,
                    ))
                })
                .collect::<Result<_, _>>()?,
            ok: op_counts("ok", &e.ok)?,
            failed: op_counts("failed", &e.failed)?,
        };
        let expect = Expect {
            max_errors: e.max_errors.unwrap_or(0),
            ..Expect::default()
        };
        if (template.sold_out.is_some() || template.paid.is_some()) && concerts.is_empty() {
            return Err("`expect.sold_out` and `expect.paid` need at least one concert in `setup.concerts`".into());
        }
        if matches!(journey, Journey::Ticket { .. }) && concerts.is_empty() {
            return Err("a `ticket` journey needs at least one concert in `setup.concerts`".into());
        }
        let mut scenario = Scenario {
            name: raw.name,
            description: String::new(),
            setup: Setup {
                concerts,
                balance,
                wallets,
            },
            load,
            queue,
            journey,
            expect,
            template,
        };
        scenario.resolve()?;
        Ok(scenario)
    }

    /// The scenario with `users` virtual users: its description and expectations evaluated
    /// again for that load, and a `reserve` race's `max_active` raised to admit every racer.
    pub fn with_users(&self, users: u64) -> Result<Scenario, ScenarioError> {
        if users == 0 || users > MAX_USERS {
            return Err(ScenarioError(format!(
                "--users must be between 1 and {MAX_USERS}, not {users}"
            )));
        }
        let mut s = self.clone();
        s.load.users = users;
        if let Journey::Reserve { .. } = s.journey {
            if s.queue.max_active.is_some_and(|m| u64::from(m) < users) {
                s.queue.max_active = u32::try_from(users).ok();
            }
        }
        s.resolve()
            .map_err(|e| ScenarioError(format!("scenario {} with --users {users}: {e}", s.name)))?;
        Ok(s)
    }

    /// The names an expression may use, for this load.
    fn vars(&self) -> Vars {
        let ops = match self.journey {
            Journey::Charge { ops, .. }
            | Journey::Use { ops, .. }
            | Journey::Wallet { ops, .. }
            | Journey::Seats { ops, .. } => ops,
            _ => 1,
        };
        Vars {
            users: self.load.users,
            seats: self
                .setup
                .concerts
                .iter()
                .map(|c| c.dates.len() as u64 * u64::from(c.seats))
                .sum(),
            ops,
            rate: match self.load.arrival {
                Arrival::Rate(r) => Some(r),
                _ => None,
            },
        }
    }

    /// Evaluates the description and the expectations for the current load.
    fn resolve(&mut self) -> Result<(), String> {
        let vars = self.vars();
        let t = &self.template;
        let counts = |field: &str, list: &[(Op, Figure)]| -> Result<Vec<(Op, u64)>, String> {
            list.iter()
                .map(|(op, f)| {
                    Ok((
                        *op,
                        f.value(&format!("expect.{field}.{}", op.name()), &vars, Expr::count)?,
                    ))
                })
                .collect()
        };
        self.description = expr::render(&t.description, &vars).map_err(|e| format!("`description`: {e}"))?;
        self.expect = Expect {
            sold_out: t
                .sold_out
                .as_ref()
                .map(|f| f.value("expect.sold_out", &vars, Expr::flag))
                .transpose()?,
            paid: t
                .paid
                .as_ref()
                .map(|f| f.value("expect.paid", &vars, Expr::count))
                .transpose()?,
            balances: t
                .balances
                .iter()
                .enumerate()
                .map(|(i, (user, f))| {
                    let cents = f.value(&format!("expect.balances[{i}].balance"), &vars, Expr::cents)?;
                    Ok((*user, Money::from_cents(cents)))
                })
                .collect::<Result<_, String>>()?,
            ok: counts("ok", &t.ok)?,
            failed: counts("failed", &t.failed)?,
            max_errors: self.expect.max_errors,
        };
        Ok(())
    }
}

/// The most virtual users a scenario (or `--users`) may ask for.
const MAX_USERS: u64 = 1_000_000;

fn money(field: &str, value: f64) -> Result<Money, String> {
    Money::parse_amount("amount", value).map_err(|e| format!("`{field}`: {e}"))
}

fn wallet(field: &str, w: &RawWallet) -> Result<(i64, Money), String> {
    if w.user < 1 {
        return Err(format!("`{field}.user` must be at least 1"));
    }
    Ok((w.user, money(&format!("{field}.balance"), w.balance)?))
}

fn duration(field: &str, text: &str) -> Result<Duration, String> {
    crate::parse_duration(text).map_err(|e| format!("`{field}`: {e}"))
}

fn duration0(field: &str, text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| format!("`{field}`: `{text}` is not a duration like 50ms or 1s: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_parses() {
        for (name, text) in SHIPPED {
            let s = Scenario::parse(text, name).unwrap();
            assert_eq!(&s.name, name);
            assert!(!s.description.is_empty(), "{name} says what it shows");
        }
    }

    /// At a tenth, half and double its default load, every shipped scenario still describes
    /// the load it runs with and expects what that load can do.
    #[test]
    fn every_shipped_scenario_scales_its_description_and_expectations() {
        for (name, text) in SHIPPED {
            let s = Scenario::parse(text, name).unwrap();
            for users in [s.load.users / 10, s.load.users / 2, s.load.users * 2] {
                let scaled = s.with_users(users.max(1)).unwrap();
                assert!(!scaled.description.contains('{'), "{name}: {}", scaled.description);
                let shown = crate::simulate::screen::group(scaled.load.users);
                assert!(
                    scaled.description.contains(&format!("{shown} ")),
                    "{name} at {users}: {}",
                    scaled.description
                );
                if let Some(paid) = scaled.expect.paid {
                    let seats: u64 = scaled
                        .setup
                        .concerts
                        .iter()
                        .map(|c| c.dates.len() as u64 * u64::from(c.seats))
                        .sum();
                    assert!(paid <= seats.min(scaled.load.users), "{name} at {users}: paid {paid}");
                }
            }
        }
        let reserve = Scenario::load("seed-reserve").unwrap().with_users(300).unwrap();
        assert_eq!(reserve.queue.max_active, Some(300), "every racer is admitted");
        assert_eq!(reserve.expect.failed, vec![(Op::Reserve, 299)]);
        let rush = Scenario::load("sold-out-rush").unwrap();
        assert_eq!(rush.with_users(60).unwrap().expect.sold_out, Some(false));
        assert_eq!(rush.with_users(100).unwrap().expect.paid, Some(100));
        assert_eq!(rush.with_users(100).unwrap().expect.sold_out, Some(true));
        let err = rush.with_users(0).unwrap_err();
        assert_eq!(err.0, "--users must be between 1 and 1000000, not 0");
    }

    #[test]
    fn messages_name_the_field() {
        let base = "name = \"x\"\n[load]\nusers = 10\n[journey]\nkind = \"charge\"\n";
        let err = Scenario::parse(&base.replace("users = 10", "users = 0"), "t").unwrap_err();
        assert!(err.0.contains("load.users"), "{err}");
        let err = Scenario::parse(&base.replace("users = 10", "userz = 10"), "t").unwrap_err();
        assert!(err.0.contains("userz"), "{err}");
        let err = Scenario::parse(&base.replace("\"charge\"", "\"dance\""), "t").unwrap_err();
        assert!(err.0.contains("journey.kind"), "{err}");
        let err = Scenario::parse(&format!("{base}[expect]\nok = {{ fly = 1 }}\n"), "t").unwrap_err();
        assert!(err.0.contains("expect.ok.fly"), "{err}");
    }
}
