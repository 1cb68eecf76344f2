//! Drivers: how a virtual user's request reaches the system.
//!
//! - [`Driver::InProcess`] calls the same [`Ticketing`] methods the HTTP server calls. Virtual
//!   users are cheap tokio tasks (100,000 of them are fine). A read runs right on the runtime
//!   worker (a few microseconds on a pooled connection: handing it to another thread would
//!   cost more than the read). A write is queued to the core's group-commit writer with the
//!   `*_answer` methods and awaited, so no thread waits for a commit and thousands of users'
//!   writes share each fsync. Under the redis strategy the awaited answer is the whole locked
//!   sequence (Redis asked through the core's lock driver, then the commit), so no thread
//!   waits for Redis either. Every request is timed from its intended start, whatever it
//!   waited for.
//! - [`Driver::Http`] sends the requests a real client sends (docs/contract.md §HTTP API), with at most
//!   `--concurrency` in flight over a shared keep-alive connection pool.

use std::sync::Arc;

use serde_json::{json, Value};
use ticketing_core::{Answer, ErrorClass, Money, PayCmd, ReserveCmd, Ticketing, TokenStatus};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::metrics::Outcome;

/// Why a request failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Conflict, Rejected or Error.
    pub outcome: Outcome,
    /// Machine code (`SEAT_UNAVAILABLE`, `HTTP_503`, `TRANSPORT`…).
    pub code: String,
    /// Human text.
    pub message: String,
}

impl Failure {
    fn error(code: &str, message: impl Into<String>) -> Failure {
        Failure {
            outcome: Outcome::Error,
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<ticketing_core::Error> for Failure {
    fn from(e: ticketing_core::Error) -> Failure {
        let outcome = match e.class() {
            ErrorClass::Conflict => Outcome::Conflict,
            ErrorClass::BadRequest | ErrorClass::Unauthorized | ErrorClass::Forbidden | ErrorClass::NotFound => {
                Outcome::Rejected
            }
            ErrorClass::Unavailable | ErrorClass::Internal => Outcome::Error,
        };
        Failure {
            outcome,
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

/// A request's result.
pub type Reply<T> = Result<T, Failure>;

/// A token as its holder sees it.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// The token.
    pub token: String,
    /// WAITING, ACTIVE or EXPIRED.
    pub status: TokenStatus,
    /// Place among waiters.
    pub position: u64,
    /// Resolves at the token's turn, when the system can tell it (in process).
    pub turn: Option<ticketing_core::Admission>,
}

/// A date with seats.
#[derive(Debug, Clone, Copy)]
pub struct DateInfo {
    /// Id.
    pub option_id: i64,
    /// AVAILABLE seats.
    pub available: u32,
}

/// A successful hold.
#[derive(Debug, Clone, Copy)]
pub struct HoldInfo {
    /// The reservation.
    pub reservation_id: i64,
    /// Its price.
    pub price: Money,
}

/// How requests reach the system.
#[derive(Clone)]
pub enum Driver {
    /// The core in this process.
    InProcess(Ticketing),
    /// A server over HTTP.
    Http(Arc<HttpDriver>),
}

/// A write through the core's `*_answer` method `start`, awaited: no thread waits for the
/// commit, nor (under the redis strategy) for Redis.
async fn write<T, F>(t: &Ticketing, start: F) -> Reply<T>
where
    T: Send + 'static,
    F: FnOnce(&Ticketing) -> Result<Answer<T>, ticketing_core::Error> + Send + 'static,
{
    Ok(start(t)?.await?)
}

fn token_of(t: &Ticketing, v: ticketing_core::TokenView) -> TokenInfo {
    TokenInfo {
        turn: Some(t.admission_of(&v)),
        token: v.token,
        status: v.status,
        position: v.queue_position,
    }
}

impl Driver {
    /// `POST /api/token`.
    pub async fn issue_token(&self, user: i64) -> Reply<TokenInfo> {
        match self {
            Driver::InProcess(t) => write(t, move |t| t.issue_token_answer(user))
                .await
                .map(|v| token_of(t, v)),
            Driver::Http(h) => token_info(
                &h.send(Method::Post, "/api/token", None, Some(json!({"userId": user})))
                    .await?,
            ),
        }
    }

    /// `GET /api/token/status`.
    pub async fn token_status(&self, token: &str) -> Reply<TokenInfo> {
        match self {
            Driver::InProcess(t) => Ok(token_of(t, t.token_status_answer(token)?.await?)),
            Driver::Http(h) => token_info(&h.send(Method::Get, "/api/token/status", Some(token), None).await?),
        }
    }

    /// Waits until `until`, or less when the system tells a waiting token its turn came. In
    /// process that is the core's admission watch (as a queue page told by a push channel);
    /// over HTTP it is the plain wait (the API has only polling).
    pub async fn wait_turn(&self, info: &TokenInfo, until: Instant) {
        match &info.turn {
            Some(turn) => {
                let _ = tokio::time::timeout_at(until, turn.clone()).await;
            }
            None => tokio::time::sleep_until(until).await,
        }
    }

    /// `DELETE /api/token`: give the token up so its slot frees at once.
    pub async fn leave(&self, token: &str) -> Reply<()> {
        match self {
            Driver::InProcess(t) => Ok(t.leave_answer(token)?.await.map(drop)?),
            Driver::Http(h) => h
                .send(Method::Delete, "/api/token", Some(token), None)
                .await
                .map(|_| ()),
        }
    }

    /// `GET /api/{concertId}/available-dates`.
    pub async fn dates(&self, token: &str, concert_id: i64) -> Reply<Vec<DateInfo>> {
        match self {
            Driver::InProcess(t) => {
                let dates = t.available_dates(token, concert_id)?;
                Ok(dates
                    .into_iter()
                    .map(|d| DateInfo {
                        option_id: d.concert_option_id,
                        available: d.available_seats,
                    })
                    .collect())
            }
            Driver::Http(h) => {
                let v = h
                    .send(
                        Method::Get,
                        &format!("/api/{concert_id}/available-dates"),
                        Some(token),
                        None,
                    )
                    .await?;
                let list = v["concertOptions"]
                    .as_array()
                    .ok_or_else(|| bad_body("available-dates", &v))?;
                list.iter()
                    .map(|d| {
                        Ok(DateInfo {
                            option_id: d["concertOptionId"]
                                .as_i64()
                                .ok_or_else(|| bad_body("available-dates", d))?,
                            available: d["availableSeats"].as_u64().unwrap_or(1) as u32,
                        })
                    })
                    .collect()
            }
        }
    }

    /// `GET /api/{concertOptionId}/available-seats`: the AVAILABLE seat ids.
    pub async fn seats(&self, token: &str, option_id: i64) -> Reply<Vec<i64>> {
        match self {
            Driver::InProcess(t) => {
                let seats = t.available_seats(token, option_id)?;
                Ok(seats.into_iter().map(|s| s.seat_id).collect())
            }
            Driver::Http(h) => {
                let v = h
                    .send(
                        Method::Get,
                        &format!("/api/{option_id}/available-seats"),
                        Some(token),
                        None,
                    )
                    .await?;
                let list = v["seats"].as_array().ok_or_else(|| bad_body("available-seats", &v))?;
                list.iter()
                    .map(|s| s["seatId"].as_i64().ok_or_else(|| bad_body("available-seats", s)))
                    .collect()
            }
        }
    }

    /// `POST /api/reserve`.
    pub async fn reserve(&self, token: &str, user: i64, option_id: i64, seat_id: i64) -> Reply<HoldInfo> {
        match self {
            Driver::InProcess(t) => {
                let cmd = ReserveCmd {
                    token: token.to_string(),
                    concert_option_id: option_id,
                    seat_id,
                    user_id: Some(user),
                };
                let hold = write(t, move |t| t.reserve_answer(cmd)).await?;
                Ok(HoldInfo {
                    reservation_id: hold.reservation_id,
                    price: hold.price,
                })
            }
            Driver::Http(h) => {
                let body = json!({"concertOptionId": option_id, "seatId": seat_id, "userId": user});
                let v = h.send(Method::Post, "/api/reserve", Some(token), Some(body)).await?;
                let d = &v["data"];
                Ok(HoldInfo {
                    reservation_id: d["reservationId"].as_i64().ok_or_else(|| bad_body("reserve", &v))?,
                    price: money_of(&d["price"]).ok_or_else(|| bad_body("reserve", &v))?,
                })
            }
        }
    }

    /// `PATCH /api/balance/charge`: the new balance.
    pub async fn charge(&self, user: i64, amount: Money) -> Reply<Money> {
        match self {
            Driver::InProcess(t) => write(t, move |t| t.charge_answer(user, amount)).await,
            Driver::Http(h) => {
                let body = json!({"userId": user, "amount": amount.as_f64()});
                let v = h.send(Method::Patch, "/api/balance/charge", None, Some(body)).await?;
                money_of(&v["balance"]).ok_or_else(|| bad_body("charge", &v))
            }
        }
    }

    /// `PATCH /api/balance/use` (the seed's "use points"): the new balance.
    pub async fn use_points(&self, user: i64, amount: Money) -> Reply<Money> {
        match self {
            Driver::InProcess(t) => write(t, move |t| t.use_points_answer(user, amount)).await,
            Driver::Http(h) => {
                let body = json!({"userId": user, "amount": amount.as_f64()});
                let token = h.spender_token(user, false).await?;
                let v = match h
                    .send(Method::Patch, "/api/balance/use", Some(&token), Some(body.clone()))
                    .await
                {
                    // The kept token ran out: take a fresh one, once.
                    Err(f) if f.code == "TOKEN_EXPIRED" => {
                        let token = h.spender_token(user, true).await?;
                        h.send(Method::Patch, "/api/balance/use", Some(&token), Some(body))
                            .await?
                    }
                    other => other?,
                };
                money_of(&v["balance"]).ok_or_else(|| bad_body("use", &v))
            }
        }
    }

    /// `GET /api/balance?userId=`.
    pub async fn balance(&self, user: i64) -> Reply<Money> {
        match self {
            Driver::InProcess(t) => Ok(t.balance(user)?),
            Driver::Http(h) => {
                let v = h
                    .send(Method::Get, &format!("/api/balance?userId={user}"), None, None)
                    .await?;
                money_of(&v["balance"]).ok_or_else(|| bad_body("balance", &v))
            }
        }
    }

    /// `POST /api/pay`: the balance after paying.
    pub async fn pay(&self, token: &str, reservation_id: i64, amount: Money) -> Reply<Money> {
        match self {
            Driver::InProcess(t) => {
                let cmd = PayCmd {
                    token: token.to_string(),
                    reservation_id,
                    amount,
                    idempotency_key: None,
                };
                write(t, move |t| t.pay_answer(cmd)).await.map(|r| r.balance)
            }
            Driver::Http(h) => {
                let body = json!({"reservationId": reservation_id, "amount": amount.as_f64()});
                let v = h.send(Method::Post, "/api/pay", Some(token), Some(body)).await?;
                money_of(&v["data"]["balance"]).ok_or_else(|| bad_body("pay", &v))
            }
        }
    }
}

fn money_of(v: &Value) -> Option<Money> {
    let f = v.as_f64()?;
    if f == 0.0 {
        return Some(Money::ZERO);
    }
    Money::parse_amount("amount", f).ok()
}

fn bad_body(what: &str, v: &Value) -> Failure {
    let mut text = v.to_string();
    text.truncate(200);
    Failure::error("BAD_RESPONSE", format!("unexpected {what} response: {text}"))
}

fn token_info(v: &Value) -> Reply<TokenInfo> {
    let d = &v["data"];
    let status = match d["status"].as_str() {
        Some("WAITING") => TokenStatus::Waiting,
        Some("ACTIVE") => TokenStatus::Active,
        Some("EXPIRED") => TokenStatus::Expired,
        _ => return Err(bad_body("token", v)),
    };
    Ok(TokenInfo {
        token: d["token"].as_str().ok_or_else(|| bad_body("token", v))?.to_string(),
        status,
        position: d["queuePosition"].as_u64().unwrap_or(0),
        turn: None,
    })
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

/// A client of a running server.
pub struct HttpDriver {
    base: String,
    client: reqwest::Client,
    in_flight: Semaphore,
    /// A live token per user that spends (`PATCH /api/balance/use` needs the owner's token).
    spenders: std::sync::Mutex<std::collections::HashMap<i64, String>>,
}

impl HttpDriver {
    /// A client of the server at `base` (`http://127.0.0.1:8080`), `concurrency` requests in
    /// flight at most.
    pub fn new(base: &str, concurrency: usize) -> anyhow::Result<HttpDriver> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(HttpDriver {
            base: base.trim_end_matches('/').to_string(),
            client,
            in_flight: Semaphore::new(concurrency.max(1)),
            spenders: std::sync::Mutex::default(),
        })
    }

    /// The token `user` spends with: issued once and kept (issuing is idempotent per user, so
    /// concurrent first uses of one wallet share one token).
    async fn spender_token(&self, user: i64, fresh: bool) -> Reply<String> {
        if !fresh {
            if let Some(t) = self
                .spenders
                .lock()
                .map_err(|_| Failure::error("POISONED", "token cache"))?
                .get(&user)
            {
                return Ok(t.clone());
            }
        }
        let info = token_info(
            &self
                .send(Method::Post, "/api/token", None, Some(json!({"userId": user})))
                .await?,
        )?;
        self.spenders
            .lock()
            .map_err(|_| Failure::error("POISONED", "token cache"))?
            .insert(user, info.token.clone());
        Ok(info.token)
    }

    async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply<Value> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Failure::error("CLOSED", "the driver is closed"))?;
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            Method::Get => self.client.get(&url),
            Method::Post => self.client.post(&url),
            Method::Patch => self.client.patch(&url),
            Method::Delete => self.client.delete(&url),
        };
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::error("TRANSPORT", format!("{method:?} {path}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::error("TRANSPORT", format!("{method:?} {path}: {e}")))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        let outcome = match status.as_u16() {
            409 => Outcome::Conflict,
            400..=499 => Outcome::Rejected,
            _ => Outcome::Error,
        };
        Err(Failure {
            outcome,
            code: v["code"]
                .as_str()
                .map_or_else(|| format!("HTTP_{}", status.as_u16()), str::to_string),
            message: v["message"].as_str().unwrap_or(&text).to_string(),
        })
    }

    /// `GET /api/concerts`: (id, title) of every concert.
    pub async fn concerts(&self) -> Reply<Vec<(i64, String)>> {
        let v = self.send(Method::Get, "/api/concerts", None, None).await?;
        let list = v["concerts"].as_array().ok_or_else(|| bad_body("concerts", &v))?;
        list.iter()
            .map(|c| {
                Ok((
                    c["concertId"].as_i64().ok_or_else(|| bad_body("concerts", c))?,
                    c["title"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect()
    }
}
