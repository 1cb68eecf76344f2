//! The wallet: charge, use, balance; every change one ledger entry.

use crate::clock::Timestamp;
use crate::domain::{check_amount, check_user_id, LedgerKind};
use crate::error::{Error, Result};
use crate::money::Money;
use crate::store::{params, Answer, Conn};
use crate::strategy::{expect_one_row, Fences, OnLostRace, Resource};
use crate::ticketing::{fault_point, Ticketing};

impl Ticketing {
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
pub(crate) fn write_wallet(
    c: &Conn<'_>,
    user_id: i64,
    version: Option<i64>,
    balance: Money,
    fences: &Fences,
) -> Result<()> {
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

pub(crate) fn append_ledger(
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
