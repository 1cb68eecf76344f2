//! Every view drawn on `TestBackend` from fixed data (a `ManualClock`, so countdowns are fixed;
//! random tokens and read timings redacted), and every action driven by keys with the database
//! checked afterwards.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tempfile::TempDir;
use ticketing_core::admin::{NewConcert, ReservationFilter};
use ticketing_core::{
    Config, ManualClock, Money, PayCmd, ReservationStatus, ReserveCmd, SeatStatus, Ticketing, TokenStatus,
};

use super::app::{App, Modal, Tab};
use super::data;
use super::event::{Event, Request};

struct Harness {
    t: Ticketing,
    clock: Arc<ManualClock>,
    app: App,
    /// Tokens of users 1… in issue order.
    tokens: Vec<String>,
    _dir: TempDir,
}

impl Harness {
    /// An empty database.
    fn empty() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path().join("tui.db"));
        config.max_active = Some(2);
        let clock = Arc::new(ManualClock::default());
        let t = Ticketing::open_with_clock(config, clock.clone()).unwrap();
        let mut h = Harness {
            t,
            clock,
            app: App::new(),
            tokens: Vec::new(),
            _dir: dir,
        };
        let start = h.app.start();
        h.settle(start);
        h
    }

    /// Realistic figures: two concerts, 1,200 seats a date at 150,000.00 and 30 at 55,000.50;
    /// users 1 and 3 active, 4 and 5 waiting; user 1 holds A3 of date 1, user 2 bought B1 of
    /// date 1; 30 seconds later.
    fn seeded() -> Harness {
        let mut h = Harness::empty();
        let t = &h.t;
        t.add_concert(NewConcert {
            title: "Winter Gala".into(),
            dates: vec!["2026-12-24".into(), "2026-12-25".into()],
            seats: 1_200,
            price: Money::from_units(150_000),
        })
        .unwrap();
        t.add_concert(NewConcert {
            title: "Spring Recital".into(),
            dates: vec!["2027-03-01".into()],
            seats: 30,
            price: Money::from_cents(5_500_050),
        })
        .unwrap();
        for user in 1..=5 {
            h.tokens.push(t.issue_token(user).unwrap().token);
        }
        let seats = t.seat_map(1).unwrap();
        t.reserve(ReserveCmd {
            token: h.tokens[0].clone(),
            concert_option_id: 1,
            seat_id: seats[2].seat_id,
            user_id: None,
        })
        .unwrap();
        h.clock.advance(Duration::from_secs(10));
        let hold = t
            .reserve(ReserveCmd {
                token: h.tokens[1].clone(),
                concert_option_id: 1,
                seat_id: seats[10].seat_id,
                user_id: None,
            })
            .unwrap();
        t.charge(2, Money::from_units(200_000)).unwrap();
        t.pay(PayCmd {
            token: h.tokens[1].clone(),
            reservation_id: hold.reservation_id,
            amount: hold.price,
            idempotency_key: None,
        })
        .unwrap();
        h.clock.advance(Duration::from_secs(20));
        h.tick();
        h
    }

    /// Answers requests the way the worker does, until the app asks for nothing more.
    fn settle(&mut self, mut pending: Vec<Request>) {
        while !pending.is_empty() {
            let mut more = Vec::new();
            for r in pending {
                more.extend(self.app.on_event(data::execute(&self.t, r)));
            }
            pending = more;
        }
    }

    fn tick(&mut self) {
        let r = self.app.on_event(Event::Tick);
        self.settle(r);
    }

    fn press(&mut self, code: KeyCode) {
        let r = self.app.on_event(Event::Key(KeyEvent::from(code)));
        self.settle(r);
    }

    fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.press(KeyCode::Char(c));
        }
    }

    fn clear_input(&mut self) {
        for _ in 0..20 {
            self.press(KeyCode::Backspace);
        }
    }

    fn screen(&self) -> String {
        screen_of(&self.app, 160, 45)
    }

    /// Snapshots of the screen at 80×24 (the default terminal) and 160×45.
    fn snap(&self, name: &str) {
        for (w, h) in [(80, 24), (160, 45)] {
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen_of(&self.app, w, h));
        }
    }

    fn status(&self) -> (String, bool) {
        let s = self.app.status.as_ref().expect("a status line");
        (s.text.clone(), s.error)
    }
}

fn screen_of(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| f.render_widget(app, f.area())).unwrap();
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    redact(&out)
}

/// Tokens are random and read times vary: both are replaced by fixed text of the same width.
fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if is_uuid(&chars[i..]) {
            out.push_str("<token-redacted>····················");
            i += 36;
        } else if chars.len() >= i + 9 && chars[i..i + 8].iter().all(char::is_ascii_hexdigit) && chars[i + 8] == '…' {
            // A token cut to its first 8 characters in a narrow table.
            out.push_str("<token>…");
            i += 9;
        } else if chars[i..].starts_with(&['r', 'e', 'a', 'd', ' ']) && chars.len() >= i + 12 {
            let field: String = chars[i + 5..i + 9].iter().collect();
            if field.trim().chars().all(|c| c.is_ascii_digit()) && !field.trim().is_empty() {
                out.push_str("read    N");
                i += 9;
            } else {
                out.push(chars[i]);
                i += 1;
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn is_uuid(c: &[char]) -> bool {
    c.len() >= 36
        && c[..36].iter().enumerate().all(|(i, ch)| {
            if [8, 13, 18, 23].contains(&i) {
                *ch == '-'
            } else {
                ch.is_ascii_hexdigit()
            }
        })
}

// ----- snapshots of every view -----------------------------------------------------------------

#[test]
fn concerts_view() {
    let h = Harness::seeded();
    h.snap("concerts");
}

#[test]
fn concerts_view_empty_database() {
    let h = Harness::empty();
    h.snap("concerts_empty");
}

#[test]
fn concerts_view_filtered() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('/'));
    h.type_text("spring");
    h.snap("concerts_filter_prompt");
    h.press(KeyCode::Enter);
    assert_eq!(h.app.concert_rows().len(), 1);
    h.snap("concerts_filtered");
}

#[test]
fn seat_map_view_with_hold_countdown() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Enter); // the first date's seat map
    assert_eq!(h.app.tab, Tab::Seats);
    h.press(KeyCode::Char('/'));
    h.type_text("a3");
    h.press(KeyCode::Enter);
    h.snap("seats");
    // Time passes: the countdown follows at the next refresh.
    h.clock.advance(Duration::from_secs(61));
    h.tick();
    assert!(h.screen().contains("A3   3:29"), "{}", h.screen());
}

#[test]
fn seat_map_moves_between_dates() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('2'));
    assert_eq!(h.app.seats.option_id, Some(1), "the first date is picked");
    h.press(KeyCode::Char(']'));
    h.press(KeyCode::Char(']'));
    assert_eq!(h.app.seats.option_id, Some(3));
    assert_eq!(h.app.seat_list().len(), 30);
    h.snap("seats_third_date");
    h.press(KeyCode::Char(']'));
    assert_eq!(h.app.seats.option_id, Some(1), "wraps around");
}

#[test]
fn queue_view() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('3'));
    h.snap("queue");
    h.press(KeyCode::Char('w'));
    h.snap("queue_active");
}

#[test]
fn reservations_view() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('4'));
    h.snap("reservations_held");
    h.press(KeyCode::Char('f'));
    h.press(KeyCode::Char('f'));
    h.snap("reservations_all");
    h.press(KeyCode::Char('/'));
    h.type_text("2");
    h.press(KeyCode::Enter);
    assert_eq!(h.app.shown_reservations().len(), 1);
}

#[test]
fn reservations_show_the_concert_date_not_its_id() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('4'));
    h.press(KeyCode::Char('f'));
    h.press(KeyCode::Char('f')); // all: the hold and the purchase, both of date 1
    for (w, ht) in [(80, 24), (160, 45)] {
        let screen = screen_of(&h.app, w, ht);
        assert_eq!(screen.matches("2026-12-24").count(), 2, "{screen}");
        assert!(!screen.contains("date 1"), "{screen}");
    }
    // A concert added since the last sales read: its date is read before it is shown.
    h.t.add_concert(NewConcert {
        title: "Late Show".into(),
        dates: vec!["2027-05-05".into()],
        seats: 10,
        price: Money::from_units(20_000),
    })
    .unwrap();
    let seats = h.t.seat_map(4).unwrap();
    h.t.reserve(ReserveCmd {
        token: h.tokens[2].clone(),
        concert_option_id: 4,
        seat_id: seats[0].seat_id,
        user_id: None,
    })
    .unwrap();
    h.tick();
    h.tick();
    assert!(h.screen().contains("2027-05-05"), "{}", h.screen());
}

/// What must never be cut at 80×24: the tab bar, whole prices and sums, whole dates.
#[test]
fn nothing_is_cut_at_80_by_24() {
    let mut h = Harness::seeded();
    let tabs = "1 Concerts│2 Seats│3 Queue│4 Reservations│5 Wallets";
    let check = |h: &Harness, wanted: &[&str]| {
        let screen = screen_of(&h.app, 80, 24);
        for text in [tabs].iter().chain(wanted) {
            assert!(screen.contains(text), "`{text}` is not whole in\n{screen}");
        }
    };
    check(
        &h,
        &[
            "150,000.00",
            "55,000.50",
            "2026-12-24",
            "2026-12-25",
            "2027-03-01",
            "1,200",
        ],
    );
    h.press(KeyCode::Enter);
    h.press(KeyCode::Right);
    h.press(KeyCode::Right);
    // No room for the side panel: the selected seat is on the bottom line.
    check(&h, &["2026-12-24", "A10", "B10", "C10", "A3 HELD 4:30 · user 1"]);
    h.press(KeyCode::Char('3'));
    check(&h, &["active 2/2", "<token-redacted>"]);
    h.press(KeyCode::Char('4'));
    check(&h, &["150,000.00", "2026-12-24", "4:30"]);
    h.press(KeyCode::Char('5'));
    h.press(KeyCode::Char('/'));
    h.type_text("2");
    h.press(KeyCode::Enter);
    check(&h, &["balance 50,000.00", "+200,000.00", "−150,000.00", "200,000.00"]);
}

#[test]
fn prompts_start_empty() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('5'));
    h.press(KeyCode::Char('/'));
    h.type_text("3");
    h.press(KeyCode::Enter);
    assert_eq!(h.app.wallets.user, Some(3));
    h.press(KeyCode::Char('/'));
    assert!(matches!(&h.app.modal, Some(Modal::Prompt { input, .. }) if input.is_empty()));
    h.type_text("1");
    h.press(KeyCode::Enter);
    assert_eq!(h.app.wallets.user, Some(1), "typing 1 opens user 1, not 31");
    // The same for max-active: typing 5 sets 5, not 25.
    h.press(KeyCode::Char('3'));
    h.press(KeyCode::Char('m'));
    h.type_text("5");
    h.press(KeyCode::Enter);
    assert_eq!(h.t.queue_state().unwrap().max_active, 5);
    // And for the reservations' user filter and the concert filter.
    h.press(KeyCode::Char('4'));
    h.press(KeyCode::Char('/'));
    h.type_text("2");
    h.press(KeyCode::Enter);
    h.press(KeyCode::Char('/'));
    h.type_text("1");
    h.press(KeyCode::Enter);
    assert_eq!(h.app.reservations.user, Some(1));
}

#[test]
fn queue_search_finds_a_token_by_user_or_token() {
    let mut h = Harness::seeded();
    let expiry_of_5 = |h: &Harness| h.t.tokens(TokenStatus::Waiting, 0, 10).unwrap()[1].expires_at;
    let before = expiry_of_5(&h);
    h.clock.advance(Duration::from_secs(10));
    h.press(KeyCode::Char('3'));
    h.press(KeyCode::Char('/'));
    h.type_text("u5");
    h.press(KeyCode::Enter);
    let t = h.app.selected_token().unwrap();
    assert_eq!((t.user_id, t.status, t.queue_position), (5, TokenStatus::Waiting, 2));
    assert_eq!(h.status(), ("user 5: WAITING at position 2".into(), false));
    // An ACTIVE token, by its text: the list switches to the active tokens.
    let token = h.tokens[2].clone();
    h.press(KeyCode::Char('/'));
    h.type_text(&token);
    h.press(KeyCode::Enter);
    assert_eq!(h.app.tokens.status, TokenStatus::Active);
    let t = h.app.selected_token().unwrap();
    assert_eq!((t.user_id, t.token.as_str()), (3, token.as_str()));
    assert_eq!(
        h.status(),
        (format!("token {token}: ACTIVE, row 2 of the active list"), false)
    );
    // By position, back on the waiting list.
    h.press(KeyCode::Char('/'));
    h.type_text("1");
    h.press(KeyCode::Enter);
    assert_eq!(h.app.tokens.status, TokenStatus::Waiting);
    assert_eq!(h.app.selected_token().unwrap().user_id, 4);
    // Nothing live: said so, the selection stays.
    h.press(KeyCode::Char('/'));
    h.type_text("user 2"); // user 2 paid: the token expired
    h.press(KeyCode::Enter);
    assert_eq!(h.status(), ("no live token for user 2".into(), true));
    assert_eq!(h.app.selected_token().unwrap().user_id, 4);
    h.press(KeyCode::Char('/'));
    h.type_text("abc");
    h.press(KeyCode::Enter);
    assert_eq!(
        h.status(),
        ("`abc` is not a position (12), a user (u42) or a token".into(), true)
    );
    // The search only reads: user 5's waiting token was not kept alive by it.
    assert_eq!(expiry_of_5(&h), before);
}

#[test]
fn wallet_view() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('5'));
    h.snap("wallet_none");
    h.press(KeyCode::Char('/'));
    h.type_text("2");
    h.press(KeyCode::Enter);
    h.snap("wallet");
}

#[test]
fn help_overlay_lists_the_keys() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('?'));
    h.snap("help");
    h.press(KeyCode::Esc);
    assert_eq!(h.app.modal, None);
}

#[test]
fn add_concert_form_and_confirmation_views() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('a'));
    h.type_text("New Year");
    h.press(KeyCode::Tab);
    h.type_text("2027-01-01..2027-01-03");
    h.snap("add_concert_form");
    h.press(KeyCode::Esc);
    h.press(KeyCode::Char('3'));
    h.press(KeyCode::Char('p'));
    h.snap("confirm_pause");
}

// ----- actions, checked in the database ------------------------------------------------------

#[test]
fn pause_asks_first_and_resume_does_not() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('3'));
    h.press(KeyCode::Char('p'));
    h.press(KeyCode::Char('n'));
    assert!(!h.t.queue_state().unwrap().paused);
    assert_eq!(h.status(), ("cancelled".into(), false));

    h.press(KeyCode::Char('p'));
    h.press(KeyCode::Char('y'));
    assert!(h.t.queue_state().unwrap().paused);
    assert_eq!(h.status(), ("admission paused".into(), false));
    assert!(h.screen().contains("PAUSED"));

    h.press(KeyCode::Char('p'));
    assert!(!h.t.queue_state().unwrap().paused);
    assert_eq!(h.status(), ("admission resumed".into(), false));
}

#[test]
fn set_max_active_admits_waiters_and_shows_refusals() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('3'));
    h.press(KeyCode::Char('m'));
    h.clear_input();
    h.type_text("1");
    h.press(KeyCode::Enter);
    let (text, error) = h.status();
    assert!(error, "2 tokens are active: 1 is refused");
    assert!(text.contains("cannot go below"), "{text}");
    assert_eq!(h.t.queue_state().unwrap().max_active, 2);

    h.press(KeyCode::Char('m'));
    h.clear_input();
    h.type_text("10");
    h.press(KeyCode::Enter);
    let q = h.t.queue_state().unwrap();
    assert_eq!((q.max_active, q.active, q.waiting), (10, 4, 0));
    assert_eq!(h.status(), ("max-active set to 10".into(), false));
    assert!(h.screen().contains("active 4/10"));

    h.press(KeyCode::Char('m'));
    h.clear_input();
    h.type_text("ten");
    h.press(KeyCode::Enter);
    assert!(h.status().1);
}

#[test]
fn expire_token_asks_and_the_next_waiter_is_admitted() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('3'));
    h.press(KeyCode::Char('w')); // active tokens: users 1 and 3
    h.press(KeyCode::Down);
    let token = h.app.selected_token().unwrap().token.clone();
    assert_eq!(token, h.tokens[2]);
    h.press(KeyCode::Char('x'));
    assert!(matches!(h.app.modal, Some(Modal::Confirm { .. })));
    h.press(KeyCode::Char('y'));
    assert_eq!(h.t.token_status(&token).unwrap().status, TokenStatus::Expired);
    // User 4 took the slot.
    assert_eq!(h.t.token_status(&h.tokens[3]).unwrap().status, TokenStatus::Active);
    assert!(h.status().0.contains("expired"));
}

#[test]
fn release_hold_from_reservations() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('4'));
    h.press(KeyCode::Enter);
    h.press(KeyCode::Enter); // Enter also confirms
    let all = h.t.reservations(ReservationFilter::All, 10).unwrap();
    let r = all.iter().find(|r| r.user_id == 1).unwrap();
    assert_eq!(r.status, ReservationStatus::Cancelled);
    assert_eq!(h.t.seat_map(1).unwrap()[2].status, SeatStatus::Available);
    assert_eq!(
        h.status(),
        (format!("hold of reservation {} released", r.reservation_id), false)
    );
    // Paid ones cannot be released.
    h.press(KeyCode::Char('f'));
    h.press(KeyCode::Enter);
    assert!(h.status().1);
    assert_eq!(h.app.modal, None);
}

#[test]
fn release_hold_from_the_seat_map() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Enter);
    h.press(KeyCode::Right);
    h.press(KeyCode::Right); // A3
    h.press(KeyCode::Enter);
    h.press(KeyCode::Char('y'));
    assert_eq!(h.t.seat_map(1).unwrap()[2].status, SeatStatus::Available);
    // A sold seat is not held: an error, nothing asked.
    h.press(KeyCode::Down); // B3
    h.press(KeyCode::Left);
    h.press(KeyCode::Left); // B1, sold
    h.press(KeyCode::Enter);
    assert_eq!(h.app.modal, None);
    assert_eq!(h.status(), ("seat B1 is SOLD, not held".into(), true));
}

#[test]
fn add_concert_through_the_form() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('a'));
    h.type_text("New Year");
    h.press(KeyCode::Tab);
    h.type_text("2027-01-01..2027-01-03 2027-02-01");
    h.press(KeyCode::Tab);
    h.clear_input();
    h.type_text("12");
    h.press(KeyCode::Tab);
    h.clear_input();
    h.type_text("250.5");
    h.press(KeyCode::Enter);
    assert_eq!(h.app.modal, None, "closed on success");
    let sales = h.t.sales().unwrap();
    let c = sales.iter().find(|c| c.title == "New Year").unwrap();
    let dates: Vec<_> = c.dates.iter().map(|d| d.concert_date.as_str()).collect();
    assert_eq!(dates, ["2027-01-01", "2027-01-02", "2027-01-03", "2027-02-01"]);
    assert!(c
        .dates
        .iter()
        .all(|d| d.seats == 12 && d.price == Money::from_cents(25_050)));
    assert!(h.status().0.contains("\"New Year\" added with 4 date(s)"));
    assert!(h.screen().contains("New Year"));
}

#[test]
fn add_concert_errors_keep_the_form_open() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('a'));
    h.type_text("Bad");
    h.press(KeyCode::Tab);
    h.type_text("2027-02-30");
    h.press(KeyCode::Enter);
    assert!(
        matches!(h.app.modal, Some(Modal::AddConcert(_))),
        "the core refused: form stays"
    );
    assert!(h.status().1);
    h.press(KeyCode::Tab);
    h.press(KeyCode::Tab);
    h.type_text("x"); // price "100000x"
    h.press(KeyCode::Enter);
    assert_eq!(h.status(), ("price `100000x` is not a number".into(), true));
    h.press(KeyCode::Esc);
    assert_eq!(h.app.modal, None);
    assert_eq!(h.t.sales().unwrap().len(), 2, "nothing added");
}

#[test]
fn wallet_search_reads_the_wallet() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('5'));
    h.press(KeyCode::Enter);
    h.type_text("2");
    h.press(KeyCode::Enter);
    let w = h.app.wallets.wallet.clone().unwrap().unwrap();
    assert_eq!(w, h.t.wallet(2).unwrap());
    assert_eq!(w.balance, Money::from_units(50_000));
    h.press(KeyCode::Char('/'));
    h.clear_input();
    h.type_text("-3");
    h.press(KeyCode::Enter);
    assert!(h.status().1);
}

#[test]
fn sweep_expires_run_out_holds() {
    let mut h = Harness::seeded();
    h.clock.advance(Duration::from_secs(301));
    h.press(KeyCode::Char('3'));
    h.press(KeyCode::Char('s'));
    assert!(h.status().0.starts_with("swept: 1 hold(s)"), "{:?}", h.status());
    let all = h.t.reservations(ReservationFilter::All, 10).unwrap();
    assert!(all.iter().any(|r| r.status == ReservationStatus::Expired));
}

#[test]
fn queue_list_is_windowed_and_follows_the_selection() {
    let mut h = Harness::empty();
    h.t.set_paused(true).unwrap();
    for user in 1..=1200 {
        h.t.issue_token(user).unwrap();
    }
    h.press(KeyCode::Char('3'));
    assert_eq!(h.app.want().tokens, Some((TokenStatus::Waiting, 0, 400)));
    h.press(KeyCode::End);
    let (offset, rows) = (h.app.tokens.offset, h.app.tokens.rows.clone().unwrap().unwrap());
    assert_eq!(offset, 999);
    assert_eq!(rows.len(), 201);
    let t = h.app.selected_token().unwrap();
    assert_eq!((t.queue_position, t.user_id), (1200, 1200));
    h.press(KeyCode::Char('/'));
    h.type_text("600");
    h.press(KeyCode::Enter);
    assert_eq!(h.app.selected_token().unwrap().queue_position, 600);
    // A user far from the rows read: the window moves to it.
    h.press(KeyCode::Home);
    h.press(KeyCode::Char('/'));
    h.type_text("u1100");
    h.press(KeyCode::Enter);
    let t = h.app.selected_token().unwrap();
    assert_eq!((t.user_id, t.queue_position), (1100, 1100));
    assert_eq!(h.app.tokens.selected, 1099);
}

#[test]
fn quit_keys() {
    let mut h = Harness::seeded();
    h.press(KeyCode::Char('a'));
    h.press(KeyCode::Char('q')); // typed into the form, not quitting
    assert!(!h.app.quit);
    h.press(KeyCode::Esc);
    h.press(KeyCode::Char('q'));
    assert!(h.app.quit);
    let mut h = Harness::seeded();
    let r = h
        .app
        .on_event(Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
    assert!(r.is_empty() && h.app.quit);
}

#[test]
fn loop_runs_on_test_backend_until_q() {
    let h = Harness::seeded();
    let (event_tx, event_rx) = mpsc::channel();
    let (request_tx, request_rx) = mpsc::channel::<Request>();
    let t = h.t.clone();
    let answers = event_tx.clone();
    let worker = std::thread::spawn(move || {
        for r in request_rx {
            if answers.send(data::execute(&t, r)).is_err() {
                return;
            }
        }
    });
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
    let mut app = App::new();
    for code in [KeyCode::Char('2'), KeyCode::Char('3'), KeyCode::Char('q')] {
        event_tx.send(Event::Key(KeyEvent::from(code))).unwrap();
    }
    super::run_loop(&mut terminal, &mut app, &event_rx, &request_tx, None).unwrap();
    assert!(app.quit);
    assert_eq!(app.tab, Tab::Queue);
    drop(request_tx);
    worker.join().unwrap();
}

#[test]
fn seat_map_cells_are_coloured_by_status() {
    use ratatui::style::Color;
    let mut h = Harness::seeded();
    h.press(KeyCode::Enter);
    h.press(KeyCode::Down); // cursor on B1: drawn reversed, its colour kept
    let mut terminal = Terminal::new(TestBackend::new(140, 34)).unwrap();
    terminal.draw(|f| f.render_widget(&h.app, f.area())).unwrap();
    let buf = terminal.backend().buffer();
    let bg_of = |text: &str| {
        let (x, y) = (0..34u16)
            .flat_map(|y| (0..140u16).map(move |x| (x, y)))
            .find(|&(x, y)| {
                let s: String = (x..(x + text.len() as u16).min(140))
                    .map(|x| buf[(x, y)].symbol())
                    .collect();
                s == text
            })
            .unwrap();
        buf[(x, y)].bg
    };
    assert_eq!(bg_of("A1 "), Color::Green);
    assert_eq!(bg_of("A3   4:30"), Color::Yellow);
    assert_eq!(bg_of("B2 "), Color::Green);
    assert_eq!(bg_of("B1   sold"), Color::Red);
}
