//! `ticketing tui`: the operator's console for a sale that is running now, on the same database
//! as `ticketing serve` (WAL lets it read while the server writes). It opens the database
//! read-only; the first confirmed action opens it for writing ([`data::Database`]).
//!
//! Where things are: `event` (the closed [`event::Event`] enum and the requests the app makes),
//! `app` (state and keys; no terminal, no database), `view` (`impl Widget for &App`), `data`
//! (reads and actions over [`Ticketing`]), `terminal` (raw mode, restored on drop and panic),
//! `bench` (the hidden `--bench-frame` measurement). The loop, [`run_loop`], is generic over
//! ratatui's `Backend`: tests drive it on `TestBackend`.

mod app;
mod bench;
mod data;
mod event;
pub(crate) mod terminal;
mod view;

#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::GlobalArgs;
use anyhow::Context;
pub use app::App;
pub use event::{Event, Request};
use ratatui::backend::Backend;
use ratatui::Terminal;

/// Flags of `ticketing tui`.
#[derive(Debug, clap::Args)]
pub struct TuiArgs {
    /// How often to re-read the database, e.g. 1s or 500ms.
    #[arg(long, value_parser = crate::parse_duration, default_value = "1s")]
    refresh: Duration,
    /// Measure reading and drawing on a big sale (200 dates × 500 seats, 100,000 waiting
    /// tokens; seeded into --db when it has no concerts) and print the timings.
    #[arg(long, hide = true)]
    bench_frame: bool,
    /// Panic after this long (to check that the terminal is given back).
    #[arg(long, hide = true, value_parser = crate::parse_duration)]
    panic_after: Option<Duration>,
}

/// Runs `ticketing tui`.
pub fn run(global: &GlobalArgs, args: TuiArgs) -> anyhow::Result<ExitCode> {
    let config = global.config()?;
    if args.bench_frame {
        bench::run(config)?;
        return Ok(ExitCode::SUCCESS);
    }
    let db = data::Database::open(config)?;

    let (event_tx, event_rx) = mpsc::channel();
    let (request_tx, request_rx) = mpsc::channel();
    spawn_worker(db, request_rx, event_tx.clone())?;
    spawn_ticker(args.refresh, event_tx.clone())?;
    if let Some(after) = args.panic_after {
        // Wakes the loop when it is time.
        spawn_ticker(after, event_tx.clone())?;
    }
    let stop = Arc::new(AtomicBool::new(false));

    let mut guard = terminal::TerminalGuard::enter().context("cannot take over the terminal")?;
    let input = spawn_input(event_tx, stop.clone())?;
    let mut app = App::new();
    let panic_at = args.panic_after.map(|d| std::time::Instant::now() + d);
    let outcome = run_loop(&mut guard.terminal, &mut app, &event_rx, &request_tx, panic_at);
    stop.store(true, Ordering::Relaxed);
    let _ = input.join();
    drop(guard);
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// Draws, waits for an event, lets the app handle it (and any others already queued), sends the
/// app's requests to the worker; until the app quits.
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    events: &Receiver<Event>,
    requests: &Sender<Request>,
    panic_at: Option<std::time::Instant>,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    for r in app.start() {
        requests.send(r).context("the database worker stopped")?;
    }
    loop {
        terminal.draw(|f| f.render_widget(&*app, f.area()))?;
        let first = events.recv().context("every event source stopped")?;
        let mut next = Some(first);
        while let Some(event) = next {
            for r in app.on_event(event) {
                requests.send(r).context("the database worker stopped")?;
            }
            next = events.try_recv().ok();
        }
        if app.quit {
            return Ok(());
        }
        if panic_at.is_some_and(|at| std::time::Instant::now() >= at) {
            panic!("--panic-after: panicking on purpose to show the terminal is restored");
        }
    }
}

/// The database worker: runs requests in order; of several refreshes queued at once only the
/// newest runs (a slow read never piles up).
fn spawn_worker(mut db: data::Database, requests: Receiver<Request>, events: Sender<Event>) -> std::io::Result<()> {
    thread::Builder::new().name("tui-db".into()).spawn(move || {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            batch.extend(requests.try_iter());
            let last_refresh = batch.iter().rposition(|r| matches!(r, Request::Refresh(_)));
            for (i, r) in batch.into_iter().enumerate() {
                if matches!(r, Request::Refresh(_)) && Some(i) != last_refresh {
                    continue;
                }
                if events.send(db.execute(r)).is_err() {
                    return;
                }
            }
        }
    })?;
    Ok(())
}

fn spawn_ticker(every: Duration, events: Sender<Event>) -> std::io::Result<()> {
    thread::Builder::new().name("tui-tick".into()).spawn(move || loop {
        thread::sleep(every);
        if events.send(Event::Tick).is_err() {
            return;
        }
    })?;
    Ok(())
}

/// Reads keys; polls so it notices `stop` and ends before the terminal is given back.
fn spawn_input(events: Sender<Event>, stop: Arc<AtomicBool>) -> std::io::Result<thread::JoinHandle<()>> {
    use crossterm::event::{self as ct, Event as Ct};
    thread::Builder::new().name("tui-input".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match ct::poll(Duration::from_millis(100)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => return,
            }
            let event = match ct::read() {
                Ok(Ct::Key(k)) => Event::Key(k),
                Ok(Ct::Resize(..)) => Event::Resize,
                Ok(_) => continue,
                Err(_) => return,
            };
            if events.send(event).is_err() {
                return;
            }
        }
    })
}
