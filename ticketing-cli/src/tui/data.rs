//! Reading the database for a frame, and performing operator actions. Runs on the worker
//! thread in the real loop and inline in tests; never touches the terminal.

use std::time::{Duration, Instant};

use ticketing_core::admin::{
    ConcertSales, FoundToken, QueueState, ReservationSummary, SeatMapEntry, TokenLookup, TokenSummary, WalletView,
};
use ticketing_core::{Config, Ticketing, Timestamp, TokenStatus};

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

/// The console's database: opened read-only, so looking never writes (not even a migration
/// or `--max-active`); the first confirmed action opens it for writing, and from then on that
/// handle answers everything.
pub struct Database {
    config: Config,
    reader: Ticketing,
    writer: Option<Ticketing>,
}

impl Database {
    /// Opens `config`'s database read-only, and checks now the services an action would need
    /// (Redis under the redis strategy): the operator learns at start-up, not mid-sale.
    pub fn open(mut config: Config) -> ticketing_core::Result<Database> {
        // The console changes max-active only by its own action, never at opening.
        config.max_active = None;
        Ticketing::check_services(&config)?;
        Ok(Database {
            reader: Ticketing::open_read_only(config.clone())?,
            config,
            writer: None,
        })
    }

    /// Runs one request on the read-only handle, or, for an action, on the writable one
    /// (opened now if this is the first).
    pub fn execute(&mut self, request: Request) -> Event {
        if let Request::Act(action) = &request {
            if let Some(n) = matches_max_active(action) {
                if let Err(e) = ticketing_core::config::check_max_active(n) {
                    return Event::Done(Err(e.to_string()));
                }
            }
            if self.writer.is_none() {
                match Ticketing::open(self.config.clone()) {
                    Ok(t) => self.writer = Some(t),
                    Err(e) => return Event::Done(Err(format!("cannot open the database for writing: {e}"))),
                }
            }
        }
        execute(self.writer.as_ref().unwrap_or(&self.reader), request)
    }
}

fn matches_max_active(action: &Action) -> Option<u32> {
    match action {
        Action::SetMaxActive(n) => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use ticketing_core::admin::{NewConcert, ReservationFilter};
    use ticketing_core::Money;

    use super::*;

    fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn looking_never_writes_and_the_first_action_opens_for_writing() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path().join("t.db"));
        {
            let t = Ticketing::open(config.clone()).unwrap();
            t.add_concert(NewConcert {
                title: "Live".into(),
                dates: vec!["2026-12-24".into()],
                seats: 4,
                price: Money::from_units(50_000),
            })
            .unwrap();
        }
        let before = files(dir.path());
        // Asked to change max-active by the environment: the console ignores it.
        config.max_active = Some(7);
        let mut db = Database::open(config).unwrap();
        let want = Want {
            sales: true,
            seat_map: Some(1),
            tokens: Some((TokenStatus::Waiting, 0, 10)),
            reservations: Some((ReservationFilter::All, 10)),
            wallet: Some(1),
            find_token: None,
        };
        let Event::Loaded(snapshot) = db.execute(Request::Refresh(want)) else {
            panic!("not a snapshot")
        };
        assert_eq!(snapshot.queue.unwrap().max_active, 100);
        assert_eq!(snapshot.sales.unwrap().unwrap()[0].dates[0].available, 4);
        assert!(db.writer.is_none());
        assert!(files(dir.path()) == before, "reading changed the database");

        // Refused before the database is opened for writing.
        let Event::Done(refused) = db.execute(Request::Act(Action::SetMaxActive(0))) else {
            panic!()
        };
        assert!(refused.unwrap_err().contains("pause the queue"));
        assert!(db.writer.is_none());

        let Event::Done(done) = db.execute(Request::Act(Action::SetPaused(true))) else {
            panic!()
        };
        assert_eq!(done.unwrap(), "admission paused");
        let want = Want {
            sales: false,
            seat_map: None,
            tokens: None,
            reservations: None,
            wallet: None,
            find_token: None,
        };
        let Event::Loaded(snapshot) = db.execute(Request::Refresh(want)) else {
            panic!()
        };
        let queue = snapshot.queue.unwrap();
        assert!(queue.paused);
        assert_eq!(queue.max_active, 100, "max-active was not stored by the action either");
    }
}
