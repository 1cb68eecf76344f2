//! The app's state and how keys change it. No terminal and no database here: an [`Event`] goes
//! in, [`Request`]s come out (see [`super::event`]); `view.rs` draws the state.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::NaiveDate;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ticketing_core::admin::{
    ConcertSales, DateSales, FoundToken, QueueState, ReservationFilter, ReservationSummary, SeatMapEntry, TokenLookup,
    TokenSummary, WalletView,
};
use ticketing_core::{Money, ReservationStatus, SeatStatus, Timestamp, TokenStatus};

use super::data::Snapshot;
use super::event::{Action, Event, NewConcertForm, Request, Want};
use super::view::group;

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Concerts and dates with sales.
    Concerts,
    /// The seat map of one date.
    Seats,
    /// The waiting queue and its tokens.
    Queue,
    /// Reservations.
    Reservations,
    /// A wallet and its ledger.
    Wallets,
}

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 5] = [Tab::Concerts, Tab::Seats, Tab::Queue, Tab::Reservations, Tab::Wallets];

    /// The tab's name.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Concerts => "Concerts",
            Tab::Seats => "Seats",
            Tab::Queue => "Queue",
            Tab::Reservations => "Reservations",
            Tab::Wallets => "Wallets",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// A window over the screen: help, a question, a one-line prompt or the add-concert form.
#[derive(Debug, Clone, PartialEq)]
pub enum Modal {
    /// Every key.
    Help,
    /// A destructive action waiting for `y`.
    Confirm {
        /// What is asked.
        question: String,
        /// What `y` does.
        action: Action,
    },
    /// A line of input.
    Prompt {
        /// What it is for.
        purpose: Prompt,
        /// Typed so far.
        input: String,
    },
    /// The add-concert form.
    AddConcert(ConcertForm),
}

/// What a one-line prompt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Filter concerts by title (live).
    ConcertFilter,
    /// Jump to a seat number.
    SeatNumber,
    /// Find a token in the queue: by position, user id or token.
    QueueFind,
    /// A new max-active.
    MaxActive,
    /// Show one user's reservations.
    ReservationUser,
    /// Open a user's wallet.
    WalletUser,
}

impl Prompt {
    /// The prompt's label.
    pub fn label(self) -> &'static str {
        match self {
            Prompt::ConcertFilter => "Filter concerts by title",
            Prompt::SeatNumber => "Go to seat (e.g. C7)",
            Prompt::QueueFind => "Find: position (12), user (u42) or token",
            Prompt::MaxActive => "Set max-active to",
            Prompt::ReservationUser => "Show reservations of user id (empty: all users)",
            Prompt::WalletUser => "Open wallet of user id",
        }
    }
}

/// The add-concert form's fields, in order.
pub const FORM_FIELDS: [&str; 4] = [
    "Title",
    "Dates (YYYY-MM-DD, space separated; A..B for a range)",
    "Seats per date",
    "Price",
];

/// The add-concert form.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcertForm {
    /// Text of each field of [`FORM_FIELDS`].
    pub fields: [String; 4],
    /// The field being typed in.
    pub focus: usize,
    /// Sent; waiting for the answer (the form closes on success, stays on error).
    pub pending: bool,
}

impl Default for ConcertForm {
    fn default() -> Self {
        ConcertForm {
            fields: [String::new(), String::new(), "50".into(), "100000".into()],
            focus: 0,
            pending: false,
        }
    }
}

/// The status line: the last action's result or error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The message.
    pub text: String,
    /// Whether it is an error (drawn in red).
    pub error: bool,
}

/// Concerts view state.
#[derive(Debug, Default)]
pub struct ConcertsView {
    /// Last read.
    pub sales: Option<Result<Vec<ConcertSales>, String>>,
    /// Selected row among the (filtered) date rows.
    pub selected: usize,
    /// Title filter (case-insensitive substring).
    pub filter: String,
}

/// One date row of the concerts table.
#[derive(Debug, Clone, Copy)]
pub struct DateRow<'a> {
    /// The concert.
    pub concert: &'a ConcertSales,
    /// Its date.
    pub date: &'a DateSales,
    /// First date of its concert (the title is shown on it).
    pub first: bool,
}

/// Seat map view state.
#[derive(Debug, Default)]
pub struct SeatsView {
    /// The date shown.
    pub option_id: Option<i64>,
    /// Last read seat map (of `option_id`).
    pub map: Option<Result<Vec<SeatMapEntry>, String>>,
    /// Selected seat (index in the map).
    pub cursor: usize,
}

/// Queue view state.
#[derive(Debug)]
pub struct QueueView {
    /// Which tokens are listed.
    pub status: TokenStatus,
    /// Selected row, 0-based over the whole list.
    pub selected: u64,
    /// Offset of the window read.
    pub offset: u64,
    /// The window read.
    pub rows: Option<Result<Vec<TokenSummary>, String>>,
    /// Admissions in the last minute, one sample per refresh, oldest first.
    pub history: VecDeque<u64>,
    /// A token being looked up (by user or token); the next read answers where it stands.
    pub find: Option<TokenLookup>,
}

/// Reservations view state.
#[derive(Debug)]
pub struct ReservationsView {
    /// Which ones.
    pub filter: ReservationFilter,
    /// Only this user's.
    pub user: Option<i64>,
    /// Selected row among the shown ones.
    pub selected: usize,
    /// Last read.
    pub rows: Option<Result<Vec<ReservationSummary>, String>>,
}

/// Wallets view state.
#[derive(Debug, Default)]
pub struct WalletsView {
    /// The user shown.
    pub user: Option<i64>,
    /// Last read.
    pub wallet: Option<Result<WalletView, String>>,
    /// First ledger row shown (newest first).
    pub scroll: usize,
}

/// Rows of tokens read around the selection.
const TOKEN_WINDOW: u64 = 400;
/// Re-read the window when the selection comes this close to its edge.
const TOKEN_MARGIN: u64 = 100;
/// Newest reservations read.
pub const RESERVATION_LIMIT: u64 = 500;
/// Sparkline samples kept.
const HISTORY: usize = 600;

/// The whole TUI state.
#[derive(Debug)]
pub struct App {
    /// The view shown.
    pub tab: Tab,
    /// A window over it, if any.
    pub modal: Option<Modal>,
    /// The status line.
    pub status: Option<Status>,
    /// Set by `q`: the loop ends.
    pub quit: bool,
    /// A tick refresh is in flight (ticks do not pile up behind a slow read).
    refreshing: bool,
    /// The database clock at the last read.
    pub now: Option<Timestamp>,
    /// How long the last read took.
    pub load_time: Option<Duration>,
    /// Queue counters.
    pub queue: Option<Result<QueueState, String>>,
    /// Concerts view.
    pub concerts: ConcertsView,
    /// Seat map view.
    pub seats: SeatsView,
    /// Queue view.
    pub tokens: QueueView,
    /// Reservations view.
    pub reservations: ReservationsView,
    /// Wallets view.
    pub wallets: WalletsView,
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    /// A fresh app on the concerts view, nothing read yet.
    pub fn new() -> App {
        App {
            tab: Tab::Concerts,
            modal: None,
            status: None,
            quit: false,
            refreshing: false,
            now: None,
            load_time: None,
            queue: None,
            concerts: ConcertsView::default(),
            seats: SeatsView::default(),
            tokens: QueueView {
                status: TokenStatus::Waiting,
                selected: 0,
                offset: 0,
                rows: None,
                history: VecDeque::new(),
                find: None,
            },
            reservations: ReservationsView {
                filter: ReservationFilter::Held,
                user: None,
                selected: 0,
                rows: None,
            },
            wallets: WalletsView::default(),
        }
    }

    /// The first request: read what the first view needs.
    pub fn start(&mut self) -> Vec<Request> {
        self.refreshing = true;
        vec![self.refresh()]
    }

    /// What the current view needs from the database.
    pub fn want(&self) -> Want {
        let mut want = Want {
            sales: false,
            seat_map: None,
            tokens: None,
            reservations: None,
            wallet: None,
            find_token: None,
        };
        match self.tab {
            Tab::Concerts => want.sales = true,
            Tab::Seats => {
                // The date list (for `[` `]` and the title) comes from the sales read; dates
                // rarely change and `sales()` is the dearest read, so it is read once here
                // (the concerts view re-reads it).
                want.sales = self.concerts.sales.is_none();
                want.seat_map = self.seats.option_id;
            }
            Tab::Queue => {
                want.tokens = Some((self.tokens.status, self.tokens.offset, TOKEN_WINDOW));
                want.find_token = self.tokens.find.clone();
            }
            Tab::Reservations => {
                want.reservations = Some((self.reservations.filter, RESERVATION_LIMIT));
                // The dates shown come from the sales read: read it when a reservation is of a
                // date it does not know (a concert added since).
                want.sales = self.concerts.sales.is_none()
                    || self
                        .shown_reservations()
                        .iter()
                        .any(|r| self.date_of(r.concert_option_id).is_none());
            }
            Tab::Wallets => want.wallet = self.wallets.user,
        }
        want
    }

    fn refresh(&self) -> Request {
        Request::Refresh(self.want())
    }

    /// Handles one event; returns what to ask of the database.
    pub fn on_event(&mut self, event: Event) -> Vec<Request> {
        match event {
            Event::Tick => {
                if self.refreshing {
                    return Vec::new();
                }
                self.refreshing = true;
                vec![self.refresh()]
            }
            Event::Resize => Vec::new(),
            Event::Loaded(snapshot) => {
                self.refreshing = false;
                if self.absorb(*snapshot) {
                    return vec![self.refresh()];
                }
                // The first read of the seat view picks a date; read its map at once.
                if self.tab == Tab::Seats && self.seats.option_id.is_none() {
                    if let Some(id) = self.all_dates().first().map(|d| d.date.concert_option_id) {
                        self.seats.option_id = Some(id);
                        return vec![self.refresh()];
                    }
                }
                Vec::new()
            }
            Event::Done(result) => {
                match result {
                    Ok(text) => {
                        if let Some(Modal::AddConcert(f)) = &self.modal {
                            if f.pending {
                                self.modal = None;
                            }
                        }
                        self.set_status(text, false);
                    }
                    Err(text) => {
                        if let Some(Modal::AddConcert(f)) = &mut self.modal {
                            f.pending = false;
                        }
                        self.set_status(text, true);
                    }
                }
                vec![self.refresh()]
            }
            Event::Key(key) => {
                if key.kind == KeyEventKind::Release {
                    return Vec::new();
                }
                self.on_key(key)
            }
        }
    }

    /// Takes in a read; true when it calls for another read at once (a token found elsewhere
    /// in the queue than the rows read).
    fn absorb(&mut self, s: Snapshot) -> bool {
        self.now = Some(s.now);
        self.load_time = Some(s.load_time);
        if let Ok(q) = &s.queue {
            self.tokens.history.push_back(q.admitted_last_minute);
            while self.tokens.history.len() > HISTORY {
                self.tokens.history.pop_front();
            }
        }
        self.queue = Some(s.queue);
        if let Some(sales) = s.sales {
            self.concerts.sales = Some(sales);
            let n = self.concert_rows().len();
            self.concerts.selected = self.concerts.selected.min(n.saturating_sub(1));
        }
        if let Some((id, map)) = s.seat_map {
            // A map of a date we have since left is stale: drop it.
            if self.seats.option_id == Some(id) {
                self.seats.map = Some(map);
                let n = self.seat_list().len();
                self.seats.cursor = self.seats.cursor.min(n.saturating_sub(1));
            }
        }
        if let Some((status, offset, rows)) = s.tokens {
            if status == self.tokens.status {
                self.tokens.offset = offset;
                self.tokens.rows = Some(rows);
            }
        }
        self.tokens.selected = self.tokens.selected.min(self.token_total().saturating_sub(1));
        if let Some(rows) = s.reservations {
            self.reservations.rows = Some(rows);
            let n = self.shown_reservations().len();
            self.reservations.selected = self.reservations.selected.min(n.saturating_sub(1));
        }
        if let Some((user, wallet)) = s.wallet {
            if self.wallets.user == Some(user) {
                self.wallets.wallet = Some(wallet);
            }
        }
        match s.found_token {
            Some((lookup, found)) if self.tokens.find.as_ref() == Some(&lookup) => {
                self.tokens.find = None;
                self.found(&lookup, found)
            }
            _ => false,
        }
    }

    /// Selects a token found by user or token text; true when its rows must be read.
    fn found(&mut self, lookup: &TokenLookup, found: Result<Option<FoundToken>, String>) -> bool {
        let name = match lookup {
            TokenLookup::User(u) => format!("user {u}"),
            TokenLookup::Token(t) => format!("token {t}"),
        };
        let f = match found {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.set_status(format!("no live token for {name}"), true);
                return false;
            }
            Err(e) => {
                self.set_status(e, true);
                return false;
            }
        };
        let text = match f.token.status {
            TokenStatus::Waiting => format!("{name}: WAITING at position {}", group(f.token.queue_position)),
            _ => format!("{name}: ACTIVE, row {} of the active list", group(f.index + 1)),
        };
        self.set_status(text, false);
        self.tokens.selected = f.index;
        if f.token.status != self.tokens.status {
            self.tokens.status = f.token.status;
            self.tokens.offset = f.index.saturating_sub(TOKEN_WINDOW / 2);
            self.tokens.rows = None;
            return true;
        }
        !self.follow_token_window().is_empty()
    }

    fn set_status(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status {
            text: text.into(),
            error,
        });
    }

    // ----- derived lists -----------------------------------------------------------------

    /// Every date of every concert, unfiltered.
    pub fn all_dates(&self) -> Vec<DateRow<'_>> {
        self.date_rows("")
    }

    /// The date rows the concerts table shows (title filter applied).
    pub fn concert_rows(&self) -> Vec<DateRow<'_>> {
        self.date_rows(&self.concerts.filter)
    }

    fn date_rows(&self, filter: &str) -> Vec<DateRow<'_>> {
        let filter = filter.to_lowercase();
        let Some(Ok(sales)) = &self.concerts.sales else {
            return Vec::new();
        };
        sales
            .iter()
            .filter(|c| filter.is_empty() || c.title.to_lowercase().contains(&filter))
            .flat_map(|c| {
                c.dates.iter().enumerate().map(move |(i, d)| DateRow {
                    concert: c,
                    date: d,
                    first: i == 0,
                })
            })
            .collect()
    }

    /// The seat map read for the shown date.
    pub fn seat_list(&self) -> &[SeatMapEntry] {
        match &self.seats.map {
            Some(Ok(seats)) => seats,
            _ => &[],
        }
    }

    /// How many tokens the queue list has in all.
    pub fn token_total(&self) -> u64 {
        match &self.queue {
            Some(Ok(q)) => match self.tokens.status {
                TokenStatus::Active => u64::from(q.active),
                _ => q.waiting,
            },
            _ => 0,
        }
    }

    /// The selected token, if its row has been read.
    pub fn selected_token(&self) -> Option<&TokenSummary> {
        let Some(Ok(rows)) = &self.tokens.rows else {
            return None;
        };
        let i = self.tokens.selected.checked_sub(self.tokens.offset)?;
        rows.get(usize::try_from(i).ok()?)
    }

    /// The concert title and date of a date id, from the sales read.
    pub fn date_of(&self, option_id: i64) -> Option<DateRow<'_>> {
        self.all_dates()
            .into_iter()
            .find(|d| d.date.concert_option_id == option_id)
    }

    /// The reservations shown (user filter applied).
    pub fn shown_reservations(&self) -> Vec<&ReservationSummary> {
        let Some(Ok(rows)) = &self.reservations.rows else {
            return Vec::new();
        };
        rows.iter()
            .filter(|r| self.reservations.user.is_none_or(|u| r.user_id == u))
            .collect()
    }

    // ----- keys ----------------------------------------------------------------------------

    fn on_key(&mut self, key: KeyEvent) -> Vec<Request> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        if let Some(modal) = self.modal.take() {
            return self.on_modal_key(modal, key);
        }
        match key.code {
            KeyCode::Char('q') => {
                self.quit = true;
                return Vec::new();
            }
            KeyCode::Char('?') => {
                self.modal = Some(Modal::Help);
                return Vec::new();
            }
            KeyCode::Tab => return self.go_to(Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()]),
            KeyCode::BackTab => return self.go_to(Tab::ALL[(self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]),
            KeyCode::Char(c @ '1'..='5') => {
                let i = usize::from(c as u8 - b'1');
                return self.go_to(Tab::ALL[i]);
            }
            _ => {}
        }
        match self.tab {
            Tab::Concerts => self.concerts_key(key),
            Tab::Seats => self.seats_key(key),
            Tab::Queue => self.queue_key(key),
            Tab::Reservations => self.reservations_key(key),
            Tab::Wallets => self.wallets_key(key),
        }
    }

    fn go_to(&mut self, tab: Tab) -> Vec<Request> {
        self.tab = tab;
        vec![self.refresh()]
    }

    /// Opens a prompt. It starts empty: what is typed replaces the current value (a prompt
    /// holding `3` would make a typed `1` mean 31). The current value is on the screen.
    fn prompt(&mut self, purpose: Prompt) -> Vec<Request> {
        self.modal = Some(Modal::Prompt {
            purpose,
            input: String::new(),
        });
        Vec::new()
    }

    fn confirm(&mut self, question: String, action: Action) -> Vec<Request> {
        self.modal = Some(Modal::Confirm { question, action });
        Vec::new()
    }

    fn concerts_key(&mut self, key: KeyEvent) -> Vec<Request> {
        let n = self.concert_rows().len();
        match key.code {
            KeyCode::Char('/') => return self.prompt(Prompt::ConcertFilter),
            KeyCode::Char('a') => {
                self.modal = Some(Modal::AddConcert(ConcertForm::default()));
            }
            KeyCode::Enter => {
                let id = self
                    .concert_rows()
                    .get(self.concerts.selected)
                    .map(|r| r.date.concert_option_id);
                if let Some(id) = id {
                    self.open_seat_map(id);
                    return self.go_to(Tab::Seats);
                }
            }
            _ => self.concerts.selected = move_in(self.concerts.selected, n, key.code, 1, 20),
        }
        Vec::new()
    }

    fn open_seat_map(&mut self, option_id: i64) {
        if self.seats.option_id != Some(option_id) {
            self.seats.option_id = Some(option_id);
            self.seats.map = None;
            self.seats.cursor = 0;
        }
    }

    fn seats_key(&mut self, key: KeyEvent) -> Vec<Request> {
        let n = self.seat_list().len();
        match key.code {
            KeyCode::Char('[') | KeyCode::Char(']') => {
                let dates: Vec<i64> = self.all_dates().iter().map(|d| d.date.concert_option_id).collect();
                if dates.is_empty() {
                    return Vec::new();
                }
                let here = self
                    .seats
                    .option_id
                    .and_then(|id| dates.iter().position(|d| *d == id))
                    .unwrap_or(0);
                let next = if key.code == KeyCode::Char(']') {
                    (here + 1) % dates.len()
                } else {
                    (here + dates.len() - 1) % dates.len()
                };
                self.open_seat_map(dates[next]);
                return vec![self.refresh()];
            }
            KeyCode::Char('/') => return self.prompt(Prompt::SeatNumber),
            KeyCode::Enter | KeyCode::Char('r') => {
                let Some(seat) = self.seat_list().get(self.seats.cursor) else {
                    return Vec::new();
                };
                match (seat.status, seat.reservation_id) {
                    (SeatStatus::Held, Some(rid)) => {
                        let q = format!(
                            "Release the hold on seat {} (reservation {rid}, user {})?",
                            seat.seat_number,
                            seat.user_id.map_or("?".into(), |u| u.to_string())
                        );
                        return self.confirm(q, Action::ReleaseHold(rid));
                    }
                    _ => {
                        let text = format!("seat {} is {}, not held", seat.seat_number, seat.status);
                        self.set_status(text, true);
                    }
                }
            }
            KeyCode::Left => self.seats.cursor = self.seats.cursor.saturating_sub(1),
            KeyCode::Right => self.seats.cursor = (self.seats.cursor + 1).min(n.saturating_sub(1)),
            _ => self.seats.cursor = move_in(self.seats.cursor, n, key.code, 10, 100),
        }
        Vec::new()
    }

    fn queue_key(&mut self, key: KeyEvent) -> Vec<Request> {
        let paused = matches!(&self.queue, Some(Ok(q)) if q.paused);
        match key.code {
            KeyCode::Char('p') => {
                if paused {
                    return vec![Request::Act(Action::SetPaused(false))];
                }
                return self.confirm(
                    "Pause admission? Waiting users stay in line until you resume.".into(),
                    Action::SetPaused(true),
                );
            }
            KeyCode::Char('m') => return self.prompt(Prompt::MaxActive),
            KeyCode::Char('x') | KeyCode::Delete => {
                let Some(t) = self.selected_token() else {
                    self.set_status("no token selected", true);
                    return Vec::new();
                };
                let q = format!("Expire token {} of user {}?", t.token, t.user_id);
                let action = Action::ExpireToken(t.token.clone());
                return self.confirm(q, action);
            }
            KeyCode::Char('s') => return vec![Request::Act(Action::Sweep)],
            KeyCode::Char('w') => {
                self.tokens.status = match self.tokens.status {
                    TokenStatus::Waiting => TokenStatus::Active,
                    _ => TokenStatus::Waiting,
                };
                self.tokens.selected = 0;
                self.tokens.offset = 0;
                self.tokens.rows = None;
                return vec![self.refresh()];
            }
            KeyCode::Char('/') => return self.prompt(Prompt::QueueFind),
            _ => {
                let total = self.token_total();
                self.tokens.selected = move_in_u64(self.tokens.selected, total, key.code, 1, 20);
            }
        }
        self.follow_token_window()
    }

    /// Re-reads the token window when the selection nears its edge.
    fn follow_token_window(&mut self) -> Vec<Request> {
        let (sel, off) = (self.tokens.selected, self.tokens.offset);
        let near_top = off > 0 && sel < off + TOKEN_MARGIN;
        let near_bottom = sel + TOKEN_MARGIN >= off + TOKEN_WINDOW;
        if near_top || near_bottom {
            self.tokens.offset = sel.saturating_sub(TOKEN_WINDOW / 2);
            return vec![self.refresh()];
        }
        Vec::new()
    }

    fn reservations_key(&mut self, key: KeyEvent) -> Vec<Request> {
        let n = self.shown_reservations().len();
        match key.code {
            KeyCode::Char('f') => {
                self.reservations.filter = match self.reservations.filter {
                    ReservationFilter::Held => ReservationFilter::Paid,
                    ReservationFilter::Paid => ReservationFilter::All,
                    ReservationFilter::All => ReservationFilter::Held,
                };
                self.reservations.selected = 0;
                self.reservations.rows = None;
                return vec![self.refresh()];
            }
            KeyCode::Char('/') => return self.prompt(Prompt::ReservationUser),
            KeyCode::Enter | KeyCode::Char('r') => {
                let Some(r) = self.shown_reservations().get(self.reservations.selected).copied() else {
                    return Vec::new();
                };
                if r.status != ReservationStatus::Held {
                    let text = format!("reservation {} is {}, not held", r.reservation_id, r.status);
                    self.set_status(text, true);
                    return Vec::new();
                }
                let q = format!(
                    "Release the hold of reservation {} (seat {}, user {})?",
                    r.reservation_id, r.seat_number, r.user_id
                );
                let action = Action::ReleaseHold(r.reservation_id);
                return self.confirm(q, action);
            }
            _ => self.reservations.selected = move_in(self.reservations.selected, n, key.code, 1, 20),
        }
        Vec::new()
    }

    fn wallets_key(&mut self, key: KeyEvent) -> Vec<Request> {
        let n = match &self.wallets.wallet {
            Some(Ok(w)) => w.ledger.len(),
            _ => 0,
        };
        match key.code {
            KeyCode::Char('/') | KeyCode::Enter => return self.prompt(Prompt::WalletUser),
            _ => self.wallets.scroll = move_in(self.wallets.scroll, n, key.code, 1, 20),
        }
        Vec::new()
    }

    fn on_modal_key(&mut self, modal: Modal, key: KeyEvent) -> Vec<Request> {
        match modal {
            Modal::Help => {
                // Any of these closes help; other keys leave it up.
                if !matches!(
                    key.code,
                    KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter
                ) {
                    self.modal = Some(Modal::Help);
                }
                Vec::new()
            }
            Modal::Confirm { question, action } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => vec![Request::Act(action)],
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.set_status("cancelled", false);
                    Vec::new()
                }
                _ => {
                    self.modal = Some(Modal::Confirm { question, action });
                    Vec::new()
                }
            },
            Modal::Prompt { purpose, mut input } => match key.code {
                KeyCode::Esc => {
                    if purpose == Prompt::ConcertFilter {
                        self.concerts.filter.clear();
                    }
                    Vec::new()
                }
                KeyCode::Enter => self.submit_prompt(purpose, input.trim()),
                KeyCode::Backspace => {
                    input.pop();
                    self.typed(purpose, input)
                }
                KeyCode::Char(c) => {
                    input.push(c);
                    self.typed(purpose, input)
                }
                _ => {
                    self.modal = Some(Modal::Prompt { purpose, input });
                    Vec::new()
                }
            },
            Modal::AddConcert(mut form) => {
                if form.pending {
                    // Waiting for the answer: only Esc (close anyway) does anything.
                    if key.code != KeyCode::Esc {
                        self.modal = Some(Modal::AddConcert(form));
                    }
                    return Vec::new();
                }
                match key.code {
                    KeyCode::Esc => {
                        self.set_status("add concert cancelled", false);
                        return Vec::new();
                    }
                    KeyCode::Tab | KeyCode::Down => form.focus = (form.focus + 1) % FORM_FIELDS.len(),
                    KeyCode::BackTab | KeyCode::Up => {
                        form.focus = (form.focus + FORM_FIELDS.len() - 1) % FORM_FIELDS.len()
                    }
                    KeyCode::Backspace => {
                        form.fields[form.focus].pop();
                    }
                    KeyCode::Char(c) => form.fields[form.focus].push(c),
                    KeyCode::Enter => match parse_form(&form) {
                        Ok(new) => {
                            form.pending = true;
                            self.modal = Some(Modal::AddConcert(form));
                            return vec![Request::Act(Action::AddConcert(new))];
                        }
                        Err(e) => self.set_status(e, true),
                    },
                    _ => {}
                }
                self.modal = Some(Modal::AddConcert(form));
                Vec::new()
            }
        }
    }

    fn typed(&mut self, purpose: Prompt, input: String) -> Vec<Request> {
        if purpose == Prompt::ConcertFilter {
            self.concerts.filter = input.clone();
            self.concerts.selected = 0;
        }
        self.modal = Some(Modal::Prompt { purpose, input });
        Vec::new()
    }

    fn submit_prompt(&mut self, purpose: Prompt, input: &str) -> Vec<Request> {
        match purpose {
            Prompt::ConcertFilter => {
                self.concerts.filter = input.to_string();
                Vec::new()
            }
            Prompt::SeatNumber => {
                let found = self
                    .seat_list()
                    .iter()
                    .position(|s| s.seat_number.eq_ignore_ascii_case(input));
                match found {
                    Some(i) => self.seats.cursor = i,
                    None => self.set_status(format!("no seat `{input}` on this date"), true),
                }
                Vec::new()
            }
            Prompt::QueueFind => match queue_query(input) {
                Ok(QueueQuery::Position(p)) => {
                    if self.tokens.status != TokenStatus::Waiting {
                        self.tokens.status = TokenStatus::Waiting;
                        self.tokens.rows = None;
                    }
                    self.tokens.selected = (p - 1).min(self.token_total().saturating_sub(1));
                    self.tokens.offset = self.tokens.selected.saturating_sub(TOKEN_WINDOW / 2);
                    vec![self.refresh()]
                }
                Ok(QueueQuery::Find(lookup)) => {
                    self.tokens.find = Some(lookup);
                    vec![self.refresh()]
                }
                Err(e) => {
                    self.set_status(e, true);
                    Vec::new()
                }
            },
            Prompt::MaxActive => match input.parse::<u32>() {
                Ok(n) => vec![Request::Act(Action::SetMaxActive(n))],
                Err(_) => {
                    self.set_status(format!("`{input}` is not a number"), true);
                    Vec::new()
                }
            },
            Prompt::ReservationUser => {
                if input.is_empty() {
                    self.reservations.user = None;
                } else {
                    match input.parse::<i64>() {
                        Ok(u) => self.reservations.user = Some(u),
                        Err(_) => self.set_status(format!("`{input}` is not a user id"), true),
                    }
                }
                self.reservations.selected = 0;
                Vec::new()
            }
            Prompt::WalletUser => match input.parse::<i64>() {
                Ok(u) if u > 0 => {
                    self.wallets.user = Some(u);
                    self.wallets.wallet = None;
                    self.wallets.scroll = 0;
                    vec![self.refresh()]
                }
                _ => {
                    self.set_status(format!("`{input}` is not a user id (a positive integer)"), true);
                    Vec::new()
                }
            },
        }
    }
}

/// What the queue view's search asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum QueueQuery {
    /// A 1-based place among the waiting.
    Position(u64),
    /// A user's live token, or a token by its text.
    Find(TokenLookup),
}

/// `12` is a position, `u42` (or `user 42`) a user id, a UUID a token.
fn queue_query(input: &str) -> Result<QueueQuery, String> {
    let lower = input.to_ascii_lowercase();
    if let Some(user) = lower.strip_prefix("user").or_else(|| lower.strip_prefix('u')) {
        if let Ok(u) = user.trim().parse::<i64>() {
            return match u {
                1.. => Ok(QueueQuery::Find(TokenLookup::User(u))),
                _ => Err(format!("`{input}`: a user id is 1 or more")),
            };
        }
    }
    if let Ok(p) = input.parse::<u64>() {
        return match p {
            1.. => Ok(QueueQuery::Position(p)),
            0 => Err("positions start at 1".into()),
        };
    }
    match uuid::Uuid::try_parse(input) {
        Ok(_) => Ok(QueueQuery::Find(TokenLookup::Token(input.to_string()))),
        Err(_) => Err(format!("`{input}` is not a position (12), a user (u42) or a token")),
    }
}

/// Moves a selection in a list of `n` by arrows, page keys, Home and End.
fn move_in(i: usize, n: usize, key: KeyCode, step: usize, page: usize) -> usize {
    let wide = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    usize::try_from(move_in_u64(wide(i), wide(n), key, wide(step), wide(page))).unwrap_or(usize::MAX)
}

/// [`move_in`] over a window position in a list too long to count in `usize` terms.
fn move_in_u64(i: u64, n: u64, key: KeyCode, step: u64, page: u64) -> u64 {
    let last = n.saturating_sub(1);
    match key {
        KeyCode::Up | KeyCode::Char('k') => i.saturating_sub(step),
        KeyCode::Down | KeyCode::Char('j') => (i + step).min(last),
        KeyCode::PageUp => i.saturating_sub(page),
        KeyCode::PageDown => (i + page).min(last),
        KeyCode::Home => 0,
        KeyCode::End => last,
        _ => i.min(last),
    }
}

/// The most dates one `A..B` range may give (a typo should not add ten years of dates).
const MAX_RANGE_DATES: usize = 1000;

/// Checks the form's numbers and expands date ranges; the core checks the rest.
fn parse_form(form: &ConcertForm) -> Result<NewConcertForm, String> {
    let [title, dates, seats, price] = &form.fields;
    let mut out = Vec::new();
    for part in dates.split([' ', ',']).filter(|p| !p.is_empty()) {
        match part.split_once("..") {
            None => out.push(part.to_string()),
            Some((a, b)) => {
                let day = |s: &str| {
                    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("`{s}` is not a date like 2026-12-24"))
                };
                let (mut d, end) = (day(a)?, day(b)?);
                if end < d {
                    return Err(format!("range `{part}` ends before it starts"));
                }
                while d <= end {
                    if out.len() >= MAX_RANGE_DATES {
                        return Err(format!("at most {MAX_RANGE_DATES} dates at once"));
                    }
                    out.push(d.format("%Y-%m-%d").to_string());
                    d = d.succ_opt().ok_or("date out of range")?;
                }
            }
        }
    }
    let seats: u32 = seats
        .trim()
        .parse()
        .map_err(|_| format!("seats `{}` is not a whole number", seats.trim()))?;
    let price: f64 = price
        .trim()
        .parse()
        .map_err(|_| format!("price `{}` is not a number", price.trim()))?;
    let price = Money::parse_amount("price", price).map_err(|e| e.to_string())?;
    Ok(NewConcertForm {
        title: title.clone(),
        dates: out,
        seats,
        price_cents: price.cents(),
    })
}
