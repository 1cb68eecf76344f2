//! Reading the database for a frame, and performing operator actions. Runs on the worker
//! thread in the real loop and inline in tests; never touches the terminal.

use std::time::{Duration, Instant};

use ticketing_core::admin::{
    ConcertSales, FoundToken, QueueState, ReservationSummary, SeatMapEntry, TokenLookup, TokenSummary, WalletView,
};
use ticketing_core::{Ticketing, Timestamp, TokenStatus};

use super::event::{Action, Event, Request, Want};

/// What one refresh read. `None` means "not read this time": the app keeps what it had.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The database clock when read (countdowns are measured from it).
    pub now: Timestamp,
    /// How long the reads took.
    pub load_time: Duration,
    /// Queue counters (always read).
    pub queue: Result<QueueState, String>,
    /// Concerts with sales.
    pub sales: Option<Result<Vec<ConcertSales>, String>>,
    /// The seat map of one date: its id and seats.
    pub seat_map: Option<(i64, Result<Vec<SeatMapEntry>, String>)>,
    /// A window of tokens: status, offset and rows.
    pub tokens: Option<(TokenStatus, u64, Result<Vec<TokenSummary>, String>)>,
    /// Reservations.
    pub reservations: Option<Result<Vec<ReservationSummary>, String>>,
    /// A wallet.
    pub wallet: Option<(i64, Result<WalletView, String>)>,
    /// A token searched for, and where it stands (`None`: no live token by that name).
    pub found_token: Option<(TokenLookup, Result<Option<FoundToken>, String>)>,
}

/// Reads everything `want` asks for.
pub fn load(t: &Ticketing, want: &Want) -> Snapshot {
    let started = Instant::now();
    let text = |e: ticketing_core::Error| e.to_string();
    let queue = t.queue_state().map_err(text);
    let sales = want.sales.then(|| t.sales().map_err(text));
    let seat_map = want.seat_map.map(|id| (id, t.seat_map(id).map_err(text)));
    let tokens = want
        .tokens
        .map(|(status, offset, limit)| (status, offset, t.tokens(status, offset, limit).map_err(text)));
    let reservations = want
        .reservations
        .map(|(filter, limit)| t.reservations(filter, limit).map_err(text));
    let wallet = want.wallet.map(|user| (user, t.wallet(user).map_err(text)));
    let found_token = want
        .find_token
        .clone()
        .map(|lookup| (lookup.clone(), t.find_live_token(&lookup).map_err(text)));
    Snapshot {
        now: t.now(),
        load_time: started.elapsed(),
        queue,
        sales,
        seat_map,
        tokens,
        reservations,
        wallet,
        found_token,
    }
}

/// Performs one action; the text is for the status line.
pub fn perform(t: &Ticketing, action: Action) -> Result<String, String> {
    let text = |e: ticketing_core::Error| e.to_string();
    match action {
        Action::SetPaused(true) => t.set_paused(true).map(|()| "admission paused".into()),
        Action::SetPaused(false) => t.set_paused(false).map(|()| "admission resumed".into()),
        Action::SetMaxActive(n) => t.set_max_active(n).map(|()| format!("max-active set to {n}")),
        Action::ExpireToken(token) => t.expire_token(&token).map(|()| format!("token {token} expired")),
        Action::ReleaseHold(id) => t
            .release_hold(id)
            .map(|()| format!("hold of reservation {id} released")),
        Action::AddConcert(form) => t.add_concert(form.into()).map(|c| {
            format!(
                "concert {} \"{}\" added with {} date(s)",
                c.concert_id,
                c.title,
                c.concert_options.len()
            )
        }),
        Action::Sweep => t.sweep().map(|r| {
            format!(
                "swept: {} hold(s) and {} token(s) expired, {} admitted",
                r.holds_expired, r.tokens_expired, r.admitted
            )
        }),
    }
    .map_err(text)
}

/// Runs one request to its answering event.
pub fn execute(t: &Ticketing, request: Request) -> Event {
    match request {
        Request::Refresh(want) => Event::Loaded(Box::new(load(t, &want))),
        Request::Act(action) => Event::Done(perform(t, action)),
    }
}
