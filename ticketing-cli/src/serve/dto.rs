//! The API's JSON shapes (the seed's field names and envelopes, docs/contract.md §HTTP API) and the strict
//! parsers of request bodies and query strings. Nothing else in the program knows these shapes.
//!
//! Parsing is by hand over a `serde_json` object so that every 400 names its field: a missing
//! field, `null`, a string where a number belongs, a fraction where an id belongs, an id ≤ 0.
//! Unknown fields are ignored; nothing a client sends can set a price, a status or a user id
//! other than the fields read here.

use serde::Serialize;
use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use ticketing_core::{Money, Timestamp, TokenStatus, TokenView};
use utoipa::ToSchema;

use super::error::ApiError;

// ----- requests ------------------------------------------------------------------------------

/// A request body: one JSON object, and its text (amounts are checked on the text too).
pub struct JsonObject(Map<String, Value>, Vec<u8>);

impl JsonObject {
    /// Parses a body that must be a JSON object.
    pub fn parse(bytes: &[u8]) -> Result<JsonObject, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::malformed_json("the body is empty; a JSON object is expected"));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map, bytes.to_vec())),
            Ok(_) => Err(ApiError::malformed_json("a JSON object is expected")),
            Err(e) => Err(ApiError::malformed_json(e)),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// A required id (an integer ≥ 1).
    pub fn id(&self, field: &'static str) -> Result<i64, ApiError> {
        self.opt_id(field)?.ok_or_else(|| missing(field))
    }

    /// An optional id (an integer ≥ 1 when given).
    pub fn opt_id(&self, field: &'static str) -> Result<Option<i64>, ApiError> {
        self.get(field).map(|v| id_value(field, v)).transpose()
    }

    /// A required amount of money (exact hundredths, > 0, ≤ 100,000,000).
    pub fn amount(&self, field: &'static str) -> Result<Money, ApiError> {
        let v = self.get(field).ok_or_else(|| missing(field))?;
        let Value::Number(n) = v else {
            return Err(mistyped(field, "a number", v));
        };
        let f = n
            .as_f64()
            .ok_or_else(|| ApiError::bad_input(format!("{field} is not a valid number")))?;
        let money = Money::parse_amount(field, f).map_err(ApiError::from)?;
        // An f64 cannot tell `100000000.00000001` from 1e8: the digits past the hundredths are
        // checked on the number as written, so nothing is rounded silently.
        let raw = serde_json::from_slice::<HashMap<String, Box<RawValue>>>(&self.1)
            .map_err(|_| ApiError::bad_input(format!("{field} is not a valid number")))?;
        if !raw.get(field).is_some_and(|text| at_most_cents(text.get())) {
            return Err(ApiError::from(ticketing_core::Error::invalid(
                field,
                format!("{field} must have at most 2 decimal places"),
            )));
        }
        Ok(money)
    }

    /// An optional string.
    pub fn opt_str(&self, field: &'static str) -> Result<Option<&str>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(mistyped(field, "a string", v)),
        }
    }
}

/// Whether a JSON number as written has no non-zero digit past the hundredths: `10.50`,
/// `1.05e1` and `100000000.000` do; `100000000.00000001` and `1e-3` do not.
fn at_most_cents(text: &str) -> bool {
    let t = text.trim().trim_start_matches('-');
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, "0"),
    };
    let Ok(exp) = exp.parse::<i64>() else {
        return false;
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The value is the digits times 10^-places.
    let places = i64::try_from(frac.len()).unwrap_or(i64::MAX).saturating_sub(exp);
    let extra = usize::try_from(places.saturating_sub(2).max(0)).unwrap_or(usize::MAX);
    int.bytes().chain(frac.bytes()).rev().take(extra).all(|b| b == b'0')
}

fn id_value(field: &'static str, v: &Value) -> Result<i64, ApiError> {
    let Value::Number(n) = v else {
        return Err(mistyped(field, "an integer", v));
    };
    match n.as_i64().or_else(|| n.as_f64().and_then(integral)) {
        Some(id) if id >= 1 => Ok(id),
        Some(_) => Err(ApiError::bad_input(format!("{field} must be a positive integer"))),
        None if n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            Err(ApiError::bad_input(format!("{field} is too large")))
        }
        None => Err(ApiError::bad_input(format!("{field} must be an integer, not {n}"))),
    }
}

/// JSON has one number type: `7.0` and `7e0` are the integer 7 (JSON Schema, and so the
/// OpenAPI document's `"type": "integer"`, says so), while `7.5` is not an id. `None` for a
/// fraction, an infinity, NaN, or a magnitude past 2^53 (below it every integer is exact in an
/// f64, so the conversion loses nothing).
fn integral(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0).then_some(f as i64)
}

/// An id given as text (a path segment or a query parameter), read as its JSON number would
/// be (`12`, `12.0`).
pub fn id_text(field: &'static str, text: &str) -> Result<i64, ApiError> {
    let text_id = text.trim();
    let id = text_id
        .parse::<i64>()
        .ok()
        .or_else(|| text_id.parse::<f64>().ok().and_then(integral));
    match id {
        Some(id) if id >= 1 => Ok(id),
        Some(_) => Err(ApiError::bad_input(format!("{field} must be a positive integer"))),
        None => Err(ApiError::bad_input(format!(
            "{field} must be a positive integer, not `{}`",
            text.chars().take(40).collect::<String>()
        ))),
    }
}

fn missing(field: &str) -> ApiError {
    ApiError::bad_input(format!("{field} is required"))
}

fn mistyped(field: &str, expected: &str, got: &Value) -> ApiError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ApiError::bad_input(format!("{field} must be {expected}, not {got}"))
}

// ----- responses -----------------------------------------------------------------------------

/// The seed's success envelope: `{"result":"200","message":"Success","data":{…}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always `"200"` on success.
    #[schema(example = "200")]
    pub result: &'static str,
    /// Always `"Success"` on success.
    #[schema(example = "Success")]
    pub message: &'static str,
    /// The answer.
    pub data: T,
}

impl<T> Envelope<T> {
    /// Wraps `data` in the success envelope.
    pub fn success(data: T) -> Envelope<T> {
        Envelope {
            result: "200",
            message: "Success",
            data,
        }
    }
}

/// Every error: `{"result":"<status>","message":"…","code":"…"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    /// The HTTP status, as a string (`"400"`, `"409"`, …).
    #[schema(example = "409")]
    pub result: &'a str,
    /// A human sentence (for a 500, never the internal detail).
    pub message: &'a str,
    /// A stable machine code, e.g. `SEAT_UNAVAILABLE`.
    #[schema(example = "SEAT_UNAVAILABLE")]
    pub code: &'a str,
}

/// `POST /api/token` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the request for OpenAPI; parsed by `JsonObject`
#[schema(rename_all = "camelCase")]
pub struct TokenRequest {
    /// The user (≥ 1).
    #[schema(minimum = 1)]
    pub user_id: i64,
}

/// A queue token as its holder sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenData {
    /// The token (UUID v4); send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// 1-based place among waiting tokens (1 = admitted next); 0 once ACTIVE.
    pub queue_position: u64,
    /// When the token dies if nothing happens (RFC 3339 UTC).
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// `WAITING`, `ACTIVE` or `EXPIRED`.
    #[schema(value_type = String, example = "WAITING")]
    pub status: TokenStatus,
    /// A rough wait until admission (only on `GET /api/token/status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<u64>,
}

impl TokenData {
    /// The view without the wait estimate (`POST /api/token`, `DELETE /api/token`).
    pub fn issued(v: TokenView) -> TokenData {
        TokenData {
            token: v.token,
            queue_position: v.queue_position,
            expires_at: v.expires_at,
            status: v.status,
            estimated_wait_seconds: None,
        }
    }

    /// The view with the wait estimate (`GET /api/token/status`).
    pub fn status(v: TokenView) -> TokenData {
        let wait = v.estimated_wait_seconds;
        TokenData {
            estimated_wait_seconds: Some(wait),
            ..TokenData::issued(v)
        }
    }
}

/// `GET /api/concerts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConcertsBody {
    /// Every concert.
    pub concerts: Vec<ConcertItem>,
}

/// A concert.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConcertItem {
    /// Id.
    pub concert_id: i64,
    /// Title.
    pub title: String,
}

/// `GET /api/{concertId}/available-dates`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatesBody<'a> {
    /// Dates with at least one AVAILABLE seat.
    pub concert_options: Vec<DateItem<'a>>,
}

/// A date of a concert.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DateItem<'a> {
    /// Id of the date (the seed's concert option).
    pub concert_option_id: i64,
    /// `YYYY-MM-DD`.
    #[schema(example = "2026-12-24")]
    pub concert_date: &'a str,
    /// Price of one seat.
    #[schema(value_type = f64, example = 50000.0)]
    pub price: Money,
    /// Seats AVAILABLE now.
    pub available_seats: u32,
}

/// `GET /api/{concertOptionId}/available-seats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatsBody<'a> {
    /// The AVAILABLE seats of the date.
    pub seats: Vec<SeatItem<'a>>,
}

/// An available seat.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatItem<'a> {
    /// Id.
    pub seat_id: i64,
    /// `A1`, `A2`, …
    pub seat_number: &'a str,
    /// Always `AVAILABLE` here.
    #[schema(example = "AVAILABLE")]
    pub status: &'static str,
}

/// `POST /api/reserve` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the request for OpenAPI; parsed by `JsonObject`
#[schema(rename_all = "camelCase")]
pub struct ReserveRequest {
    /// The caller's token, when not sent in `Authorization` or the `token` query parameter.
    pub token: Option<String>,
    /// The date of the seat (≥ 1).
    #[schema(minimum = 1)]
    pub concert_option_id: i64,
    /// The seat (≥ 1).
    #[schema(minimum = 1)]
    pub seat_id: i64,
    /// When given, must be the token's user (else 403).
    #[schema(minimum = 1)]
    pub user_id: Option<i64>,
}

/// A successful hold.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReserveData {
    /// The reservation created.
    pub reservation_id: i64,
    /// When the hold runs out (RFC 3339 UTC).
    #[schema(value_type = String, format = DateTime)]
    pub held_until: Timestamp,
    /// The price to pay.
    #[schema(value_type = f64, example = 50000.0)]
    pub price: Money,
}

/// `PATCH /api/balance/charge` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the request for OpenAPI; parsed by `JsonObject`
#[schema(rename_all = "camelCase")]
pub struct AmountRequest {
    /// The user (≥ 1).
    #[schema(minimum = 1)]
    pub user_id: i64,
    /// Exact to the cent (at most two decimals), > 0, at most 100000000.
    #[schema(example = 5000.0, exclusive_minimum = 0, maximum = 100_000_000, multiple_of = 0.01)]
    pub amount: f64,
}

/// `PATCH /api/balance/use` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the request for OpenAPI; parsed by `JsonObject`
#[schema(rename_all = "camelCase")]
pub struct UseRequest {
    /// The wallet owner's token, when not sent in `Authorization` or the `token` query parameter.
    pub token: Option<String>,
    /// The user (≥ 1); must be the token's user (else 403).
    #[schema(minimum = 1)]
    pub user_id: i64,
    /// Exact to the cent (at most two decimals), > 0, at most 100000000.
    #[schema(example = 100.0, exclusive_minimum = 0, maximum = 100_000_000, multiple_of = 0.01)]
    pub amount: f64,
}

/// A wallet's balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceBody {
    /// The balance now.
    #[schema(value_type = f64, example = 5000.0)]
    pub balance: Money,
}

/// `POST /api/pay` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the request for OpenAPI; parsed by `JsonObject`
#[schema(rename_all = "camelCase")]
pub struct PayRequest {
    /// The caller's token, when not sent in `Authorization` or the `token` query parameter.
    pub token: Option<String>,
    /// The reservation to pay (≥ 1).
    #[schema(minimum = 1)]
    pub reservation_id: i64,
    /// Must equal the reservation's price: exact to the cent, > 0, at most 100000000.
    #[schema(example = 50000.0, exclusive_minimum = 0, maximum = 100_000_000, multiple_of = 0.01)]
    pub amount: f64,
}

/// A successful payment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayData {
    /// The payment.
    pub payment_id: i64,
    /// The wallet's balance after it.
    #[schema(value_type = f64)]
    pub balance: Money,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_text(e: ApiError) -> String {
        format!("{e:?}")
    }

    #[test]
    fn ids_are_strict() {
        let o = JsonObject::parse(
            br#"{"a":1,"b":"1","c":1.5,"d":0,"e":-3,"f":null,"g":true,"h":1e3,"i":937.0,"j":-2.0,"k":1e300}"#,
        )
        .unwrap();
        assert_eq!(o.id("a").unwrap(), 1);
        assert!(err_text(o.id("b").unwrap_err()).contains("b must be an integer, not a string"));
        assert!(err_text(o.id("c").unwrap_err()).contains("c must be an integer"));
        assert!(err_text(o.id("d").unwrap_err()).contains("d must be a positive integer"));
        assert!(err_text(o.id("e").unwrap_err()).contains("e must be a positive integer"));
        assert!(err_text(o.id("f").unwrap_err()).contains("f is required"));
        assert!(err_text(o.id("g").unwrap_err()).contains("g must be an integer, not a boolean"));
        // Integral numbers written with a fraction or an exponent are those integers.
        assert_eq!(o.id("h").unwrap(), 1000);
        assert_eq!(o.id("i").unwrap(), 937);
        assert!(err_text(o.id("j").unwrap_err()).contains("j must be a positive integer"));
        assert!(err_text(o.id("k").unwrap_err()).contains("k is too large"));
        assert!(err_text(o.id("zz").unwrap_err()).contains("zz is required"));
        assert_eq!(o.opt_id("zz").unwrap(), None);
    }

    #[test]
    fn bodies_must_be_objects() {
        for body in [&b""[..], b"  ", b"[]", b"1", b"{", b"{\"a\":}"] {
            assert!(JsonObject::parse(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn amounts_are_exact() {
        let o = JsonObject::parse(
            br#"{"a":10.05,"b":10.005,"c":"10","d":0,"e":100000000.01,"f":100000000.00000001,"g":1.05e1,"h":10.500,"i":1e-3}"#,
        )
        .unwrap();
        assert_eq!(o.amount("a").unwrap(), Money::from_cents(1005));
        assert_eq!(o.amount("g").unwrap(), Money::from_cents(1050));
        assert_eq!(o.amount("h").unwrap(), Money::from_cents(1050));
        // As an f64 this is exactly 1e8: only its text shows the extra decimals.
        assert!(err_text(o.amount("f").unwrap_err()).contains("at most 2 decimal places"));
        for f in ["b", "c", "d", "e", "i", "missing"] {
            assert!(o.amount(f).is_err(), "{f}");
        }
    }

    #[test]
    fn text_ids() {
        assert_eq!(id_text("seatId", "12").unwrap(), 12);
        assert!(id_text("seatId", "0").is_err());
        assert!(id_text("seatId", "abc").is_err());
        assert_eq!(id_text("userId", "26517.0").unwrap(), 26517);
        for text in ["1.5", "inf", "NaN", "1e300", "-2.0"] {
            assert!(id_text("userId", text).is_err(), "{text}");
        }
    }
}
