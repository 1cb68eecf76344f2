//! Plain types and pure rules: no I/O. The store maps rows to these; front ends render them.

mod seat_number;

pub use seat_number::seat_number;

use serde::Serialize;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::money::Money;

/// Seats per row of a seat map (`A1`…`A10`, then `B1`…).
pub const SEATS_PER_ROW: u32 = 10;
/// The most seats one date may have.
pub const MAX_SEATS_PER_DATE: u32 = 10_000;

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// The status as stored and shown (`"AVAILABLE"`, …).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a stored status.
            pub fn parse(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::Internal(format!("unknown {} `{other}`", stringify!($name)))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// A seat's state as users see it (a run-out hold reads as `Available`).
    SeatStatus { /// Free to hold.
        Available = "AVAILABLE", /// Held by a live reservation.
        Held = "HELD", /// Paid for.
        Sold = "SOLD" }
}

status_enum! {
    /// A waiting-queue token's state.
    TokenStatus { /// In the queue.
        Waiting = "WAITING", /// Admitted: may browse, hold and pay.
        Active = "ACTIVE", /// Dead: paid out, timed out or expired by an operator.
        Expired = "EXPIRED" }
}

status_enum! {
    /// A reservation's state.
    ReservationStatus { /// Holding its seat until `heldUntil`.
        Held = "HELD", /// Paid: the seat is sold.
        Paid = "PAID", /// The hold ran out.
        Expired = "EXPIRED", /// Released by an operator.
        Cancelled = "CANCELLED" }
}

status_enum! {
    /// The kind of a wallet ledger entry.
    LedgerKind { /// Money added.
        Charge = "CHARGE", /// Money paid for a reservation.
        Payment = "PAYMENT", /// Money used otherwise.
        Use = "USE" }
}

/// A user id as given by clients: must be > 0.
pub fn check_user_id(user_id: i64) -> Result<i64> {
    if user_id <= 0 {
        return Err(Error::invalid("userId", "userId must be a positive integer"));
    }
    Ok(user_id)
}

/// An amount the core accepts for a charge, use or payment: > 0 and at most the maximum.
pub fn check_amount(amount: Money) -> Result<Money> {
    if amount <= Money::ZERO || amount > crate::money::MAX_AMOUNT {
        return Err(Error::invalid(
            "amount",
            "amount must be greater than 0 and at most 100000000",
        ));
    }
    Ok(amount)
}

/// A concert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Concert {
    /// Id.
    pub concert_id: i64,
    /// Title.
    pub title: String,
}

/// A performance date of a concert, with how many seats can still be held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcertDate {
    /// Id of the date (the seed's "concert option").
    pub concert_option_id: i64,
    /// The concert it belongs to.
    pub concert_id: i64,
    /// `YYYY-MM-DD`.
    pub concert_date: String,
    /// Price of one seat.
    pub price: Money,
    /// Seats AVAILABLE now (run-out holds included).
    pub available_seats: u32,
}

/// A seat of one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seat {
    /// Id.
    pub seat_id: i64,
    /// The date it belongs to.
    pub concert_option_id: i64,
    /// `A1`, `A2`, …
    pub seat_number: String,
    /// Status as users see it.
    pub status: SeatStatus,
    /// When the live hold ends, for a HELD seat.
    pub held_until: Option<Timestamp>,
    /// The live reservation of a HELD or SOLD seat.
    pub reservation_id: Option<i64>,
    /// Who holds or bought it.
    pub user_id: Option<i64>,
}

/// A waiting-queue token as its holder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenView {
    /// The token (UUID v4).
    pub token: String,
    /// Its user.
    pub user_id: i64,
    /// Status now.
    pub status: TokenStatus,
    /// 1-based place among WAITING tokens; 0 once ACTIVE (and when EXPIRED).
    pub queue_position: u64,
    /// When the token dies if nothing happens.
    pub expires_at: Timestamp,
    /// A rough wait until admission, in seconds (0 unless WAITING).
    pub estimated_wait_seconds: u64,
    /// The row's id: its place in the FIFO ([`crate::Ticketing::admission_of`]).
    pub(crate) id: i64,
}

/// A successful seat hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The reservation created.
    pub reservation_id: i64,
    /// Its user.
    pub user_id: i64,
    /// The seat held.
    pub seat_id: i64,
    /// The date.
    pub concert_option_id: i64,
    /// When the hold runs out.
    pub held_until: Timestamp,
    /// The price to pay.
    pub price: Money,
}

/// A successful payment (or its stored replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReceipt {
    /// The payment.
    pub payment_id: i64,
    /// What it paid for.
    pub reservation_id: i64,
    /// Who paid.
    pub user_id: i64,
    /// How much.
    pub amount: Money,
    /// The wallet balance right after the payment.
    pub balance: Money,
    /// When.
    pub paid_at: Timestamp,
    /// True when this is a stored response returned for a repeated `Idempotency-Key`.
    pub replayed: bool,
}

/// Ask to hold a seat.
#[derive(Debug, Clone)]
pub struct ReserveCmd {
    /// The caller's token.
    pub token: String,
    /// The date of the seat.
    pub concert_option_id: i64,
    /// The seat.
    pub seat_id: i64,
    /// The user the client claims to be; must match the token's when given.
    pub user_id: Option<i64>,
}

/// Ask to pay a held reservation.
#[derive(Debug, Clone)]
pub struct PayCmd {
    /// The caller's token.
    pub token: String,
    /// The reservation.
    pub reservation_id: i64,
    /// The amount; must equal the reservation's price.
    pub amount: Money,
    /// Optional `Idempotency-Key` (at most 255 characters).
    pub idempotency_key: Option<String>,
}

/// A wallet ledger entry (append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// The wallet's user.
    pub user_id: i64,
    /// CHARGE, PAYMENT or USE.
    pub kind: LedgerKind,
    /// Always positive; the kind gives the direction.
    pub amount: Money,
    /// Balance right after this entry.
    pub balance_after: Money,
    /// When (RFC 3339 in JSON).
    pub at: Timestamp,
}

/// Validates a `YYYY-MM-DD` date.
pub fn check_date(field: &'static str, date: &str) -> Result<String> {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .filter(|d| d.format("%Y-%m-%d").to_string() == date)
        .map(|_| date.to_string())
        .ok_or_else(|| Error::invalid(field, format!("{field} `{date}` is not a valid YYYY-MM-DD date")))
}
