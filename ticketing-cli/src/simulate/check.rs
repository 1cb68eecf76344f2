//! After each run: docs/contract.md §Invariants and the scenario's expectations.
//!
//! In-process, the invariants are the core's own checks over the database
//! ([`ticketing_core::invariants::check`]). Over HTTP the database is out of reach, so they are
//! checked from the client-side history plus final reads: no seat or reservation paid twice,
//! every payment at the seat's price, and each user's final balance equal to its starting
//! balance plus what its successful requests moved. Those client-side checks run in-process
//! too, together with a cross-check of the client's count of payments against the database.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use ticketing_core::{Money, Ticketing, TokenStatus};

use super::driver::Driver;
use super::metrics::{Op, Stats};
use super::scenario::Scenario;

/// One check's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `invariant` or `expectation`.
    pub kind: &'static str,
    /// What is checked, e.g. `expect.paid = 100` or `seat-double-booked`.
    pub name: String,
    /// Whether it holds.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

impl Check {
    fn invariant(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            kind: "invariant",
            name: name.into(),
            ok,
            detail: detail.into(),
        }
    }

    fn expectation(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            kind: "expectation",
            name: name.into(),
            ok,
            detail: detail.into(),
        }
    }
}

/// Final state read back after a run.
pub struct Finals {
    /// Seats paid, by the database (in-process) or the client's history (HTTP).
    pub paid: u64,
    /// No date of the setup's concerts has an AVAILABLE seat.
    pub sold_out: bool,
    /// Balances read back, by user.
    pub balances: BTreeMap<i64, Money>,
}

/// The users whose balances are read back: every wallet the run touched or the setup funded
/// (up to a bound: the per-user starting balance of a big load is checked on the touched ones).
pub fn wallet_users(scenario: &Scenario, stats: &Stats) -> BTreeSet<i64> {
    let mut users: BTreeSet<i64> = stats.history.moved.keys().copied().collect();
    users.extend(scenario.setup.wallets.iter().map(|(u, _)| *u));
    users.extend(scenario.expect.balances.iter().map(|(u, _)| *u));
    users
}

/// Reads the final state through the driver (and the database, in-process).
pub async fn read_finals(
    driver: &Driver,
    core: Option<&Ticketing>,
    scenario: &Scenario,
    concert_ids: &[i64],
    stats: &Stats,
) -> anyhow::Result<Finals> {
    let mut balances = BTreeMap::new();
    for user in wallet_users(scenario, stats) {
        let b = driver
            .balance(user)
            .await
            .map_err(|f| anyhow::anyhow!("reading the balance of user {user}: {}", f.message))?;
        balances.insert(user, b);
    }
    let (paid, sold_out) = match core {
        Some(t) => {
            let t = t.clone();
            let ids = concert_ids.to_vec();
            tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, bool)> {
                let mut paid = 0;
                let mut sold_out = true;
                for c in t.sales()?.into_iter().filter(|c| ids.contains(&c.concert_id)) {
                    for d in c.dates {
                        paid += u64::from(d.sold);
                        sold_out &= d.available == 0;
                    }
                }
                Ok((paid, sold_out))
            })
            .await??
        }
        None => {
            let sold_out = if concert_ids.is_empty() {
                true
            } else {
                http_sold_out(driver, scenario, concert_ids).await?
            };
            (stats.history.paid.len() as u64, sold_out)
        }
    };
    Ok(Finals {
        paid,
        sold_out,
        balances,
    })
}

/// Over HTTP, "sold out" is read as a user would: a fresh token, admitted, finds no date.
async fn http_sold_out(driver: &Driver, scenario: &Scenario, concert_ids: &[i64]) -> anyhow::Result<bool> {
    let checker = scenario.load.first_user + scenario.load.users as i64 + 1_000_000;
    let fail = |f: super::driver::Failure| anyhow::anyhow!("final read as user {checker}: {}", f.message);
    let mut info = driver.issue_token(checker).await.map_err(fail)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while info.status == TokenStatus::Waiting && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        info = driver.token_status(&info.token).await.map_err(fail)?;
    }
    anyhow::ensure!(
        info.status == TokenStatus::Active,
        "the final read's token was not admitted (status {})",
        info.status
    );
    let mut sold_out = true;
    for &c in concert_ids {
        sold_out &= driver.dates(&info.token, c).await.map_err(fail)?.is_empty();
    }
    let _ = driver.leave(&info.token).await;
    Ok(sold_out)
}

/// The invariants and expectations of one run.
pub fn evaluate(
    scenario: &Scenario,
    stats: &Stats,
    finals: &Finals,
    core: Option<&Ticketing>,
) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    if let Some(t) = core {
        let violations = ticketing_core::invariants::check(t)?;
        if violations.is_empty() {
            checks.push(Check::invariant(
                "invariants over the database",
                true,
                "no seat double-booked, money conserved, one payment per PAID reservation, queue within max-active and FIFO",
            ));
        }
        for v in violations {
            checks.push(Check::invariant(v.invariant, false, v.detail));
        }
    }

    let h = &stats.history;
    let seats: BTreeSet<i64> = h.paid.iter().map(|p| p.2).collect();
    let reservations: BTreeSet<i64> = h.paid.iter().map(|p| p.1).collect();
    checks.push(Check::invariant(
        "no seat paid twice (client history)",
        seats.len() == h.paid.len() && reservations.len() == h.paid.len(),
        format!(
            "{} payments for {} seats and {} reservations",
            h.paid.len(),
            seats.len(),
            reservations.len()
        ),
    ));
    let prices: BTreeSet<i64> = scenario.setup.concerts.iter().map(|c| c.price.cents()).collect();
    let off_price: Vec<_> = h.paid.iter().filter(|p| !prices.contains(&p.3)).collect();
    checks.push(Check::invariant(
        "every payment at a seat's price (client history)",
        off_price.is_empty(),
        match off_price.first() {
            Some(p) => format!("reservation {} paid {}", p.1, Money::from_cents(p.3)),
            None => format!("{} payments", h.paid.len()),
        },
    ));

    let start_of = |user: i64| -> Money {
        let named = scenario.setup.wallets.iter().find(|(u, _)| *u == user).map(|(_, m)| *m);
        let in_load = user >= scenario.load.first_user && user < scenario.load.first_user + scenario.load.users as i64;
        named
            .or(if in_load { scenario.setup.balance } else { None })
            .unwrap_or(Money::ZERO)
    };
    let unknown: BTreeSet<i64> = h.unknown.iter().copied().collect();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (&user, &balance) in &finals.balances {
        if unknown.contains(&user) {
            continue;
        }
        checked += 1;
        let expected = start_of(user).cents() + h.moved.get(&user).copied().unwrap_or(0);
        if balance.cents() != expected {
            wrong.push(format!(
                "user {user}: balance {balance}, but start + successful moves = {}",
                Money::from_cents(expected)
            ));
        }
    }
    checks.push(Check::invariant(
        "money conserved per user (client history + final balances)",
        wrong.is_empty(),
        if wrong.is_empty() {
            format!(
                "{checked} wallets checked{}",
                if unknown.is_empty() {
                    String::new()
                } else {
                    format!(", {} skipped after requests with no answer", unknown.len())
                }
            )
        } else {
            wrong.join("; ")
        },
    ));
    if core.is_some() && !scenario.setup.concerts.is_empty() {
        checks.push(Check::invariant(
            "client and database agree on seats paid",
            finals.paid == h.paid.len() as u64,
            format!("database {} SOLD, client saw {} payments", finals.paid, h.paid.len()),
        ));
    }

    let e = &scenario.expect;
    if let Some(want) = e.sold_out {
        checks.push(Check::expectation(
            format!("expect.sold_out = {want}"),
            finals.sold_out == want,
            if finals.sold_out {
                "no seat left"
            } else {
                "seats still available"
            },
        ));
    }
    if let Some(want) = e.paid {
        checks.push(Check::expectation(
            format!("expect.paid = {want}"),
            finals.paid == want,
            format!("{} seats paid", finals.paid),
        ));
    }
    for (user, want) in &e.balances {
        let got = finals.balances.get(user).copied();
        checks.push(Check::expectation(
            format!("expect.balances user {user} = {want}"),
            got == Some(*want),
            got.map_or("not read".into(), |b| format!("balance {b}")),
        ));
    }
    let op_count = |op: Op, f: fn(&super::metrics::OpStats) -> u64| stats.ops.get(&op).map_or(0, f);
    for (op, want) in &e.ok {
        let got = op_count(*op, |s| s.ok);
        checks.push(Check::expectation(
            format!("expect.ok.{} = {want}", op.name()),
            got == *want,
            format!("{got} succeeded"),
        ));
    }
    for (op, want) in &e.failed {
        let got = op_count(*op, |s| s.failed());
        checks.push(Check::expectation(
            format!("expect.failed.{} = {want}", op.name()),
            got == *want,
            format!("{got} failed"),
        ));
    }
    let errors: u64 = stats.ops.values().map(|s| s.errors).sum();
    checks.push(Check::expectation(
        format!("expect.max_errors = {}", e.max_errors),
        errors <= e.max_errors,
        format!("{errors} server/transport errors"),
    ));
    Ok(checks)
}
