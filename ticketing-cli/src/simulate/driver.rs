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
//!   `--concurrency` in flight over a shared keep-alive connection pool. `--target` may name
//!   several nodes of one service (SPEC §8); [`Driver::next_for`] picks the node of a virtual
//!   user's next request as `--spread` says, and setup and final reads go to the first node
//!   (every node shows the same).
//!
//! A request's clock stops when the last byte of its (last) response has arrived: over HTTP
//! the driver notes that instant in [`RECEIVED`] before it decodes the body, so the client's
//! own work on the answer (JSON, picking ids out) is not counted as the system's latency.
//! In process there is nothing to receive: the clock stops when the core has answered.

use std::cell::Cell;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use ticketing_core::{Answer, ErrorClass, Money, PayCmd, ReserveCmd, Ticketing, TokenStatus};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::metrics::Outcome;

tokio::task_local! {
    /// When the last byte of the current operation's last response arrived, over HTTP (see
    /// [`received_by`]). A task-local, not a return value, so every [`Driver`] method keeps
    /// returning its plain [`Reply`] whatever it decodes afterwards.
    static RECEIVED: Cell<Option<Instant>>;
}

/// Runs `request`, then says when its last response byte arrived: `None` when it received
/// nothing (in process, or no answer at all) — then the request ends when it returns.
pub async fn received_by<F: Future>(request: F) -> (F::Output, Option<Instant>) {
    RECEIVED
        .scope(Cell::new(None), async {
            let out = request.await;
            (out, RECEIVED.with(Cell::get))
        })
        .await
}

/// Notes that a response's last byte arrived now (a later response of the same operation
/// moves it on).
pub fn note_received() {
    let _ = RECEIVED.try_with(|at| at.set(Some(Instant::now())));
}

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
    /// One node of a service over HTTP.
    Http(HttpNode),
}

/// The base URL of one `ticketing serve` node, as `--target` names it (`http://127.0.0.1:8080`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUrl(String);

impl NodeUrl {
    /// What request paths are appended to (no trailing `/`).
    fn base(&self) -> &str {
        self.0.trim_end_matches('/')
    }

    /// Same node: `http://h:1/` and `http://h:1` are one.
    pub fn same_as(&self, other: &NodeUrl) -> bool {
        self.base() == other.base()
    }
}

impl FromStr for NodeUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<NodeUrl, String> {
        if s.starts_with("http://") || s.starts_with("https://") {
            Ok(NodeUrl(s.to_string()))
        } else if s.is_empty() {
            Err("an empty node: one URL between each two commas".into())
        } else {
            Err(format!("`{s}` is not an http:// URL"))
        }
    }
}

impl std::fmt::Display for NodeUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the requests of a run are spread over `--target`'s nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Spread {
    /// Users round-robin over the nodes by index; all of a user's requests go to its node
    /// (a load balancer with sticky sessions).
    #[default]
    User,
    /// Each request to the next node round-robin, whoever sends it (a load balancer without
    /// stickiness: a token issued on one node is used on the others).
    Request,
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
    /// This driver on the node of user `index`'s next request (see [`Spread`]), and that
    /// node's place in `--target`'s list; in process there is one node, 0.
    pub fn next_for(&self, index: u64) -> (Driver, usize) {
        match self {
            Driver::InProcess(_) => (self.clone(), 0),
            Driver::Http(h) => {
                let node = h.service.node_for(index);
                (
                    Driver::Http(HttpNode {
                        service: h.service.clone(),
                        node,
                    }),
                    node,
                )
            }
        }
    }

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

/// A pooled HTTP/1.1 client (hyper's, as `oha` uses: reqwest on top of it cost ~30 µs more
/// per request, docs/simulator.md).
type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// How long a request may take, answer included, before it fails as `TRANSPORT`.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A client of a running service: one connection pool and one bound on requests in flight
/// for all of its nodes.
pub struct HttpDriver {
    nodes: Vec<NodeUrl>,
    spread: Spread,
    /// The next node of `--spread request`, shared by every user of the run.
    next: AtomicUsize,
    client: Client,
    in_flight: Semaphore,
    /// A live token per user that spends (`PATCH /api/balance/use` needs the owner's token).
    spenders: std::sync::Mutex<std::collections::HashMap<i64, String>>,
}

/// One node of a service: where a [`Driver::Http`]'s requests go.
#[derive(Clone)]
pub struct HttpNode {
    service: Arc<HttpDriver>,
    /// Place in `--target`'s list.
    node: usize,
}

impl HttpDriver {
    /// A client of the service whose nodes are `nodes` (at least one), spread over as
    /// `spread` says, `concurrency` requests in flight at most over all of them.
    pub fn new(nodes: Vec<NodeUrl>, spread: Spread, concurrency: usize) -> anyhow::Result<Arc<HttpDriver>> {
        anyhow::ensure!(!nodes.is_empty(), "no node to send requests to");
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(concurrency)
            .build(connector);
        Ok(Arc::new(HttpDriver {
            nodes,
            spread,
            next: AtomicUsize::new(0),
            client,
            in_flight: Semaphore::new(concurrency.max(1)),
            spenders: std::sync::Mutex::default(),
        }))
    }

    /// A driver on the first node: setup and final reads go there (every node shows the same).
    pub fn first_node(self: &Arc<HttpDriver>) -> Driver {
        Driver::Http(HttpNode {
            service: self.clone(),
            node: 0,
        })
    }

    /// The node of user `index`'s next request.
    fn node_for(&self, index: u64) -> usize {
        let n = self.nodes.len();
        match self.spread {
            Spread::User => (index % n as u64) as usize,
            // Relaxed: only the spread of the count matters, not its order with anything else.
            Spread::Request => self.next.fetch_add(1, Ordering::Relaxed) % n,
        }
    }

    /// `GET /api/concerts` (on the first node): (id, title) of every concert.
    pub async fn concerts(&self) -> Reply<Vec<(i64, String)>> {
        let v = self.send(0, Method::Get, "/api/concerts", None, None).await?;
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

    async fn send(
        &self,
        node: usize,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply<Value> {
        self.receive(node, method, path, token, body).await?.decode()
    }

    /// Sends a request and reads its whole response, holding one of `--concurrency`'s places
    /// meanwhile; notes when the last byte arrived, before anything is decoded.
    async fn receive(
        &self,
        node: usize,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply<Received> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Failure::error("CLOSED", "the driver is closed"))?;
        let transport =
            |e: &dyn std::error::Error| Failure::error("TRANSPORT", format!("{method:?} {path}: {}", causes(e)));
        // `node` is 0 or from `node_for`: always one of `nodes`.
        let mut req = hyper::Request::builder()
            .method(match method {
                Method::Get => hyper::Method::GET,
                Method::Post => hyper::Method::POST,
                Method::Patch => hyper::Method::PATCH,
                Method::Delete => hyper::Method::DELETE,
            })
            .uri(format!("{}{path}", self.nodes[node].base()));
        if let Some(token) = token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(body.to_string()))
            }
            None => Full::default(),
        };
        let req = req.body(body).map_err(|e| transport(&e))?;
        let answer = async {
            let resp = self.client.request(req).await.map_err(|e| transport(&e))?;
            let status = resp.status();
            let body = resp.into_body().collect().await.map_err(|e| transport(&e))?;
            Ok::<_, Failure>((status, body.to_bytes()))
        };
        let (status, body) = tokio::time::timeout(TIMEOUT, answer)
            .await
            .map_err(|e| transport(&e))??;
        note_received();
        Ok(Received { status, body })
    }
}

/// An error and its causes, as one line (`client error (Connect): tcp connect error: …`).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A whole response, not yet decoded.
struct Received {
    status: hyper::StatusCode,
    body: Bytes,
}

impl Received {
    /// The JSON body of a success; the API's error (`code`, `message`) of a failure.
    fn decode(self) -> Reply<Value> {
        let Received { status, body } = self;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
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
            message: v["message"]
                .as_str()
                .map_or_else(|| String::from_utf8_lossy(&body).into_owned(), str::to_string),
        })
    }
}

impl HttpNode {
    async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply<Value> {
        self.service.send(self.node, method, path, token, body).await
    }

    /// The token `user` spends with: issued once and kept (issuing is idempotent per user, so
    /// concurrent first uses of one wallet share one token).
    async fn spender_token(&self, user: i64, fresh: bool) -> Reply<String> {
        if !fresh {
            if let Some(t) = self
                .service
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
        self.service
            .spenders
            .lock()
            .map_err(|_| Failure::error("POISONED", "token cache"))?
            .insert(user, info.token.clone());
        Ok(info.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(spread: Spread) -> Arc<HttpDriver> {
        let nodes = ["http://a:1", "http://b:2/", "http://c:3"]
            .iter()
            .map(|u| u.parse().unwrap())
            .collect();
        HttpDriver::new(nodes, spread, 4).unwrap()
    }

    /// `user`: a user's every request goes to node `index % nodes`.
    #[test]
    fn spread_by_user_pins_each_user_to_one_node() {
        let s = service(Spread::User);
        let picks: Vec<usize> = [0, 0, 1, 1, 2, 3, 4, 5].iter().map(|&i| s.node_for(i)).collect();
        assert_eq!(picks, [0, 0, 1, 1, 2, 0, 1, 2]);
    }

    /// `request`: every request (whichever user sends it) goes to the next node.
    #[test]
    fn spread_by_request_takes_the_nodes_in_turn() {
        let s = service(Spread::Request);
        let picks: Vec<usize> = [7, 7, 7, 0, 9].iter().map(|&i| s.node_for(i)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1]);
    }

    /// Over HTTP the driver notes when an answer's last byte arrived as it reads it, before
    /// decoding it (`receive`, then `Received::decode`), so `User::call` stops the clock there.
    /// A one-request server on a local port answers a seat list.
    #[tokio::test]
    async fn an_answer_is_noted_received_before_it_is_decoded() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                conn.read_exact(&mut byte).await.unwrap();
                request.push(byte[0]);
            }
            let body = r#"{"seats":[{"seatId":7},{"seatId":9}]}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).await.unwrap();
            conn.write_all(body.as_bytes()).await.unwrap();
        });
        let http = HttpDriver::new(vec![url.parse().unwrap()], Spread::User, 1).unwrap();

        let (received, at) = received_by(http.receive(0, Method::Get, "/api/1/available-seats", None, None)).await;
        assert!(at.is_some(), "receive notes the last byte's arrival itself");
        let seats = received.unwrap().decode().unwrap();
        assert_eq!(seats["seats"][1]["seatId"], 9);
        // Outside `received_by` nothing is noted, and nothing fails.
        assert!(RECEIVED.try_with(Cell::get).is_err());
    }

    /// In process there is no answer to receive: the request ends when the core has answered.
    #[tokio::test]
    async fn in_process_nothing_is_received() {
        let (_, at) = received_by(async {}).await;
        assert_eq!(at, None);
    }

    /// A node URL must be http(s); a trailing `/` names the same node.
    #[test]
    fn node_urls() {
        assert!("127.0.0.1:8080".parse::<NodeUrl>().is_err());
        let a: NodeUrl = "http://h:1/".parse().unwrap();
        assert!(a.same_as(&"http://h:1".parse().unwrap()));
        assert_eq!(a.to_string(), "http://h:1/");
    }
}
