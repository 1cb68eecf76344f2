//! The closed set of things that happen to the TUI, and the requests it makes of the database.
//!
//! The app is a state machine: an [`Event`] goes in, zero or more [`Request`]s come out. The
//! real loop runs requests on a worker thread (so a slow query never blocks a key press);
//! tests run them inline. Either way the answer comes back as an [`Event`].

use crossterm::event::KeyEvent;
use ticketing_core::admin::{NewConcert, ReservationFilter, TokenLookup};
use ticketing_core::TokenStatus;

use super::data::Snapshot;

/// Everything the app reacts to.
#[derive(Debug)]
pub enum Event {
    /// A key was pressed.
    Key(KeyEvent),
    /// The refresh interval went by: time to reload what the screen shows.
    Tick,
    /// The terminal changed size (the next frame lays out again).
    Resize,
    /// Fresh data from the database.
    Loaded(Box<Snapshot>),
    /// An operator action finished: a message for the status line, or the error.
    Done(Result<String, String>),
}

/// What the app asks of the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Read what the current view needs.
    Refresh(Want),
    /// Change something.
    Act(Action),
}

/// The reads one refresh makes. The queue counters are always read (the header shows them).
#[derive(Debug, Clone, PartialEq)]
pub struct Want {
    /// Every concert with per-date counts and revenue.
    pub sales: bool,
    /// The seat map of this date.
    pub seat_map: Option<i64>,
    /// A window of live tokens: status, offset, limit.
    pub tokens: Option<(TokenStatus, u64, u64)>,
    /// Reservations, newest first, at most `limit`.
    pub reservations: Option<(ReservationFilter, u64)>,
    /// A wallet and its ledger.
    pub wallet: Option<i64>,
    /// Where a live token stands in the queue lists (the queue view's search).
    pub find_token: Option<TokenLookup>,
}

/// An operator action; each one is also a `ticketing admin` subcommand (see `docs/tui.md`).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `admin queue pause` / `admin queue resume`.
    SetPaused(bool),
    /// `admin queue set-max-active N`.
    SetMaxActive(u32),
    /// `admin token expire TOKEN`.
    ExpireToken(String),
    /// `admin hold release RESERVATION_ID`.
    ReleaseHold(i64),
    /// `admin concert add --title … --date … --seats … --price …`.
    AddConcert(NewConcertForm),
    /// `admin sweep`.
    Sweep,
}

/// A concert to add, as typed (the core validates it).
#[derive(Debug, Clone, PartialEq)]
pub struct NewConcertForm {
    /// Title.
    pub title: String,
    /// Dates, `YYYY-MM-DD`.
    pub dates: Vec<String>,
    /// Seats per date.
    pub seats: u32,
    /// Price in hundredths (already parsed).
    pub price_cents: i64,
}

impl From<NewConcertForm> for NewConcert {
    fn from(f: NewConcertForm) -> NewConcert {
        NewConcert {
            title: f.title,
            dates: f.dates,
            seats: f.seats,
            price: ticketing_core::Money::from_cents(f.price_cents),
        }
    }
}
