//! Money as integer hundredths. `f64` appears only at the boundary: [`Money::parse_amount`]
//! turns a client's JSON number into hundredths exactly or refuses it; [`Money::as_f64`] turns
//! hundredths back into the seed's `Double` for display.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::error::Error;

/// The largest amount one charge, use or price may carry: 100,000,000.00.
pub const MAX_AMOUNT: Money = Money::from_units(100_000_000);
/// The largest balance a wallet may hold: 1,000,000,000,000.00.
pub const MAX_BALANCE: Money = Money::from_units(1_000_000_000_000);

/// An amount of money in hundredths (cents). Never negative in a valid wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// Money from hundredths.
    pub const fn from_cents(cents: i64) -> Money {
        Money(cents)
    }

    /// Money from whole units (e.g. `Money::from_units(100)` is 100.00).
    pub const fn from_units(units: i64) -> Money {
        Money(units * 100)
    }

    /// The amount in hundredths.
    pub const fn cents(self) -> i64 {
        self.0
    }

    /// The amount as the seed's `Double` (for JSON output only).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// Validates a client-supplied amount named `field`: finite, > 0, at most two decimal
    /// places, at most [`MAX_AMOUNT`]. Nothing is rounded: `10.005` is refused, not made `10.01`.
    pub fn parse_amount(field: &'static str, value: f64) -> Result<Money, Error> {
        let bad = |why: &str| Error::invalid(field, format!("{field} {why}"));
        if !value.is_finite() {
            return Err(bad("must be a finite number"));
        }
        if value <= 0.0 {
            return Err(bad("must be greater than 0"));
        }
        if value > MAX_AMOUNT.as_f64() {
            return Err(bad("must be at most 100000000"));
        }
        // Rust prints the shortest decimal that reads back as the same f64, which is the text
        // the client wrote for any number with few enough digits to be money.
        let text = format!("{value}");
        let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
        if frac.len() > 2 {
            return Err(bad("must have at most 2 decimal places"));
        }
        let whole: i64 = whole.parse().map_err(|_| bad("is not a valid amount"))?;
        let mut frac_cents: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad("is not a valid amount"))?
        };
        if frac.len() == 1 {
            frac_cents *= 10;
        }
        Ok(Money(whole * 100 + frac_cents))
    }

    /// `self + other`, or `None` past [`MAX_BALANCE`].
    pub fn checked_add_balance(self, other: Money) -> Option<Money> {
        let sum = self.0.checked_add(other.0)?;
        (sum <= MAX_BALANCE.0).then_some(Money(sum))
    }

    /// `self - other`, or `None` below zero.
    pub fn checked_sub_balance(self, other: Money) -> Option<Money> {
        let diff = self.0.checked_sub(other.0)?;
        (diff >= 0).then_some(Money(diff))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, (self.0 % 100).abs())
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_hundredths() {
        assert_eq!(Money::parse_amount("amount", 100.0).unwrap(), Money::from_cents(10_000));
        assert_eq!(Money::parse_amount("amount", 10.05).unwrap(), Money::from_cents(1_005));
        assert_eq!(Money::parse_amount("amount", 0.1).unwrap(), Money::from_cents(10));
        assert_eq!(Money::parse_amount("amount", 0.01).unwrap(), Money::from_cents(1));
        assert_eq!(Money::parse_amount("amount", 100_000_000.0).unwrap(), MAX_AMOUNT);
        assert_eq!(
            Money::parse_amount("amount", 99_999_999.99).unwrap(),
            Money::from_cents(9_999_999_999)
        );
    }

    #[test]
    fn refuses_what_is_not_money() {
        for bad in [0.0, -1.0, 10.005, 0.001, f64::NAN, f64::INFINITY, 100_000_000.01, 1e300] {
            let err = Money::parse_amount("amount", bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_AMOUNT", "{bad}");
        }
    }

    #[test]
    fn balance_bounds() {
        assert_eq!(Money::from_cents(5).checked_sub_balance(Money::from_cents(6)), None);
        assert_eq!(MAX_BALANCE.checked_add_balance(Money::from_cents(1)), None);
        assert_eq!(Money::from_cents(1005).to_string(), "10.05");
    }
}
