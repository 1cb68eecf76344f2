//! Payment: one transaction that debits the wallet, writes the ledger and the payment, marks
//! the reservation PAID and the seat SOLD, and expires the payer's token. Idempotency keys.

use crate::clock::Timestamp;
use crate::domain::{check_amount, LedgerKind, PayCmd, PaymentReceipt};
use crate::error::{Error, Result};
use crate::money::Money;
use crate::queue::{self};
use crate::store::{params, Answer, Conn};
use crate::strategy::{expect_one_row, Fences, OnLostRace, Resource};
use crate::ticketing::{fault_point, Ticketing};
use crate::usecase::queue::{ensure_token_active, expire_token_row};
use crate::usecase::wallet::{append_ledger, read_wallet, write_wallet};

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

impl Ticketing {
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
            let settings = queue::lock(c)?;
            ensure_token_active(c, token_id, now)?;
            expire_token_row(c, token_id, now)?;
            queue::admit(c, settings, now, ttl)?;
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

pub(crate) fn stored_receipt(
    c: &Conn<'_>,
    key: &str,
    user_id: i64,
    rid: i64,
    amount: Money,
) -> Result<Option<PaymentReceipt>> {
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

pub(crate) fn reservation_payable(rid: i64, status: &str, held_until: i64, now: Timestamp) -> Result<()> {
    match status {
        "PAID" => Err(Error::AlreadyPaid { reservation_id: rid }),
        "EXPIRED" => Err(Error::HoldExpired { reservation_id: rid }),
        "HELD" if held_until <= now.0 => Err(Error::HoldExpired { reservation_id: rid }),
        "HELD" => Ok(()),
        _ => Err(Error::NotHeld { reservation_id: rid }),
    }
}
