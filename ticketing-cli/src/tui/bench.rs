//! `ticketing tui --bench-frame`: how long one refresh reads and one frame draws on a big sale.
//! Seeds 200 dates × 500 seats, 100,000 waiting tokens, 200 holds and 100 sales into `--db`
//! when it has no concert yet, then times each view's read and its frame on a 160 × 45
//! `TestBackend` (the drawing is the same code the real terminal runs; only the final write to
//! the tty is left out).

use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use ticketing_core::admin::{NewConcert, ReservationFilter};
use ticketing_core::{Config, Durability, Money, PayCmd, ReserveCmd, Ticketing, TokenStatus};

use super::app::{App, Tab};
use super::data;
use super::event::Event;

const DATES: usize = 200;
const SEATS: u32 = 500;
const WAITING: u64 = 100_000;
const ADMITTED: u64 = 200;

/// Seeds when needed, then prints the timings.
pub fn run(mut config: Config) -> anyhow::Result<()> {
    // Seeded tokens and holds must outlive the measurement.
    let day = Duration::from_secs(24 * 3600);
    config.token_ttl = day;
    config.waiting_ttl = day;
    config.hold_ttl = day;
    config.durability = Durability::Normal;
    let t = Ticketing::open(config).context("cannot open the database")?;
    seed(&t)?;
    let q = t.queue_state()?;
    let dates: usize = t.sales()?.iter().map(|c| c.dates.len()).sum();
    println!(
        "data: {dates} dates, {} waiting, {} active / {} max",
        q.waiting, q.active, q.max_active
    );
    println!();
    println!("{:<34} {:>10} {:>10} {:>10}", "core read", "median", "p90", "max");
    let first_date = t
        .sales()?
        .first()
        .and_then(|c| c.dates.first())
        .map_or(1, |d| d.concert_option_id);
    let last_window = q.waiting.saturating_sub(200);
    let reads: [(&str, &dyn Fn()); 7] = [
        ("sales() — 200 dates", &|| drop(t.sales())),
        ("seat_map() — 500 seats", &|| drop(t.seat_map(first_date))),
        ("queue_state()", &|| drop(t.queue_state())),
        ("tokens(WAITING, 0, 400)", &|| {
            drop(t.tokens(TokenStatus::Waiting, 0, 400))
        }),
        ("tokens(WAITING, waiting-200, 400)", &|| {
            drop(t.tokens(TokenStatus::Waiting, last_window, 400))
        }),
        ("reservations(All, 500)", &|| {
            drop(t.reservations(ReservationFilter::All, 500))
        }),
        ("wallet(1)", &|| drop(t.wallet(1))),
    ];
    for (name, f) in reads {
        let d = time(20, f);
        println!("{:<34} {:>10} {:>10} {:>10}", name, ms(d[0]), ms(d[1]), ms(d[2]));
    }
    println!();
    println!("{:<34} {:>10} {:>10} {:>10}", "view (160 × 45)", "median", "p90", "max");

    let mut app = App::new();
    // Reads each view makes, then its frame.
    let views: [(&str, &[KeyCode]); 7] = [
        ("concerts", &[KeyCode::Char('1')]),
        ("seats (500 seats)", &[KeyCode::Char('1'), KeyCode::Enter]),
        ("queue, top of 100,000", &[KeyCode::Char('3'), KeyCode::Home]),
        ("queue, end of 100,000", &[KeyCode::Char('3'), KeyCode::End]),
        (
            "reservations (500 newest)",
            &[KeyCode::Char('4'), KeyCode::Char('f'), KeyCode::Char('f')],
        ),
        ("wallet (user 1)", &[KeyCode::Char('5')]),
        ("help overlay over concerts", &[KeyCode::Char('1'), KeyCode::Char('?')]),
    ];
    let mut terminal = Terminal::new(TestBackend::new(160, 45))?;
    for (name, keys) in views {
        app.modal = None;
        let mut pending = app.start();
        for k in keys {
            pending.extend(app.on_event(Event::Key(KeyEvent::from(*k))));
        }
        if app.tab == Tab::Wallets && app.wallets.user.is_none() {
            app.wallets.user = Some(1);
        }
        // Settle: answer every request (a loaded seat view may ask again for its map).
        while !pending.is_empty() {
            let mut more = Vec::new();
            for r in pending {
                more.extend(app.on_event(data::execute(&t, r)));
            }
            pending = more;
        }
        // A key or the End jump may move the token window: settle once more on the final want.
        let want = app.want();
        let read = time(20, || {
            let snapshot = data::load(&t, &want);
            std::hint::black_box(&snapshot);
        });
        let _ = app.on_event(Event::Loaded(Box::new(data::load(&t, &want))));
        let draw = time(200, || {
            // A fresh buffer each time, so every frame is drawn and diffed in full.
            terminal.clear().ok();
            terminal.draw(|f| f.render_widget(&app, f.area())).ok();
        });
        println!(
            "{:<34} {:>10} {:>10} {:>10}",
            format!("{name}: read"),
            ms(read[0]),
            ms(read[1]),
            ms(read[2])
        );
        println!(
            "{:<34} {:>10} {:>10} {:>10}",
            format!("{name}: frame"),
            ms(draw[0]),
            ms(draw[1]),
            ms(draw[2])
        );
    }
    Ok(())
}

/// Median, p90 and max of `n` runs.
fn time(n: usize, mut f: impl FnMut()) -> [Duration; 3] {
    let mut d: Vec<Duration> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    d.sort();
    [d[n / 2], d[n * 9 / 10], d[n - 1]]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Seeds what is missing (so an interrupted seeding resumes): the concert, the tokens, the
/// holds and sales.
fn seed(t: &Ticketing) -> anyhow::Result<()> {
    let concert_ids = |t: &Ticketing| -> anyhow::Result<Vec<i64>> {
        Ok(t.sales()?
            .iter()
            .flat_map(|c| c.dates.iter().map(|d| d.concert_option_id))
            .collect())
    };
    if t.sales()?.is_empty() {
        let start = chrono::NaiveDate::from_ymd_opt(2027, 1, 1).context("date")?;
        let dates = (0..DATES)
            .filter_map(|i| start.checked_add_days(chrono::Days::new(i as u64)))
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect();
        let started = Instant::now();
        t.add_concert(NewConcert {
            title: "Bench Symphony".into(),
            dates,
            seats: SEATS,
            price: Money::from_units(100_000),
        })?;
        println!(
            "seeded {DATES} dates × {SEATS} seats in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let total = WAITING + ADMITTED;
    let q = t.queue_state()?;
    if t.reservations(ReservationFilter::All, 1)?.is_empty() && q.waiting < total {
        t.set_paused(true)?;
        // Tokens from several threads at once: the core's writer commits them in groups. A user
        // who already has a live token just reads it back, so this resumes where it stopped.
        let threads = 8;
        let started = Instant::now();
        let done = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| -> anyhow::Result<()> {
            let done = &done;
            let handles: Vec<_> = (0..threads)
                .map(|k| {
                    s.spawn(move || -> anyhow::Result<()> {
                        let mut user = 1 + k;
                        let mut last = Instant::now();
                        while user <= total {
                            t.issue_token(i64::try_from(user)?)?;
                            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            if k == 0 && last.elapsed() > Duration::from_secs(10) {
                                last = Instant::now();
                                eprintln!("  {n} tokens after {:.0} s", started.elapsed().as_secs_f64());
                            }
                            user += threads;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| anyhow::anyhow!("a seeding thread panicked"))??;
            }
            Ok(())
        })?;
        println!("issued {total} tokens in {:.1} s", started.elapsed().as_secs_f64());
    }
    if t.reservations(ReservationFilter::All, 1)?.is_empty() {
        // Admit the first users, let each hold a seat, and half of them pay.
        t.set_max_active(u32::try_from(ADMITTED)?)?;
        t.set_paused(false)?;
        t.set_paused(true)?;
        let active = t.tokens(TokenStatus::Active, 0, ADMITTED)?;
        let options = concert_ids(t)?;
        for (i, tok) in active.iter().enumerate() {
            let option = options[i % options.len()];
            let seats = t.seat_map(option)?;
            let seat = &seats[(i * 7) % seats.len()];
            let hold = t.reserve(ReserveCmd {
                token: tok.token.clone(),
                concert_option_id: option,
                seat_id: seat.seat_id,
                user_id: None,
            })?;
            if i % 2 == 0 {
                t.charge(tok.user_id, hold.price)?;
                t.pay(PayCmd {
                    token: tok.token.clone(),
                    reservation_id: hold.reservation_id,
                    amount: hold.price,
                    idempotency_key: None,
                })?;
            }
        }
    }
    Ok(())
}
