//! Drawing the app: `impl Widget for &App`. Reads state, never changes it; lists are windowed
//! (only the rows that fit are built), so a frame costs the same with 100 or 100,000 rows.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, Tabs, Widget, Wrap};
use ticketing_core::admin::ReservationFilter;
use ticketing_core::{LedgerKind, Money, ReservationStatus, SeatStatus, Timestamp, TokenStatus};

use super::app::{App, Modal, Tab, FORM_FIELDS, RESERVATION_LIMIT};

const HEADER: Style = Style::new().add_modifier(Modifier::BOLD);
const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);
const DIM: Style = Style::new().fg(Color::DarkGray);

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [top, body, bottom] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(1)]).areas(area);
        header(self, top, buf);
        match self.tab {
            Tab::Concerts => concerts(self, body, buf),
            Tab::Seats => seats(self, body, buf),
            Tab::Queue => queue(self, body, buf),
            Tab::Reservations => reservations(self, body, buf),
            Tab::Wallets => wallets(self, body, buf),
        }
        status_line(self, bottom, buf);
        if let Some(modal) = &self.modal {
            draw_modal(modal, area, buf);
        }
    }
}

// ----- frame parts ---------------------------------------------------------------------------

fn header(app: &App, area: Rect, buf: &mut Buffer) {
    let titles = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title()));
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    let summary = match &app.queue {
        Some(Ok(q)) => {
            let mut spans = vec![Span::raw(format!(
                "waiting {} · active {}/{} ",
                group(q.waiting),
                q.active,
                q.max_active
            ))];
            if q.paused {
                spans.push(Span::styled(" PAUSED ", Style::new().bg(Color::Red).fg(Color::White)));
            }
            Line::from(spans)
        }
        Some(Err(e)) => Line::from(Span::styled(format!("queue: {e}"), Style::new().fg(Color::Red))),
        None => Line::from("reading…"),
    };
    let w = u16::try_from(summary.width()).unwrap_or(u16::MAX).min(area.width / 2);
    let [tabs_area, summary_area] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(w)]).areas(area);
    Tabs::new(titles)
        .select(selected)
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD))
        .divider("│")
        .render(tabs_area, buf);
    summary.right_aligned().render(summary_area, buf);
}

fn status_line(app: &App, area: Rect, buf: &mut Buffer) {
    let mut right = Vec::new();
    if let Some(now) = app.now {
        right.push(format!("updated {}", clock(now)));
    }
    if let Some(d) = app.load_time {
        // Fixed width, so the line does not jump as the figure changes.
        right.push(format!("read {:>4} ms", d.as_millis()));
    }
    right.push("? keys · q quit".into());
    let right = Line::from(right.join(" · ")).style(DIM).right_aligned();
    let w = u16::try_from(right.width()).unwrap_or(u16::MAX).min(area.width);
    let [left_area, right_area] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(w)]).areas(area);
    if let Some(s) = &app.status {
        let style = if s.error {
            Style::new().fg(Color::Red).bold()
        } else {
            Style::new().fg(Color::Green)
        };
        Line::styled(s.text.as_str(), style).render(left_area, buf);
    }
    right.render(right_area, buf);
}

/// Rows `top..top + height` of a list of `n` with `selected` on screen (scrolls by pages, so
/// the view needs no state of its own).
fn window(selected: usize, n: usize, height: usize) -> std::ops::Range<usize> {
    if height == 0 {
        return 0..0;
    }
    let top = selected / height * height;
    top..(top + height).min(n)
}

fn loading_or_error(err: Option<&String>, area: Rect, buf: &mut Buffer, block: Block<'_>) {
    let text = match err {
        Some(e) => Line::styled(format!("error: {e}"), Style::new().fg(Color::Red)),
        None => Line::styled("reading…", DIM),
    };
    Paragraph::new(text).block(block).render(area, buf);
}

// ----- concerts ------------------------------------------------------------------------------

fn concerts(app: &App, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(" Concerts and dates ");
    let Some(Ok(sales)) = &app.concerts.sales else {
        let err = match &app.concerts.sales {
            Some(Err(e)) => Some(e),
            _ => None,
        };
        return loading_or_error(err, area, buf, block);
    };
    let rows = app.concert_rows();
    let (mut sold, mut held, mut seats, mut revenue) = (0u64, 0u64, 0u64, 0i64);
    for d in sales.iter().flat_map(|c| &c.dates) {
        sold += u64::from(d.sold);
        held += u64::from(d.held);
        seats += u64::from(d.seats);
        revenue += d.revenue.cents();
    }
    let mut title = format!(
        " Concerts and dates — {} concerts, {} dates · sold {} of {} · held {} · revenue {} ",
        sales.len(),
        sales.iter().map(|c| c.dates.len()).sum::<usize>(),
        group(sold),
        group(seats),
        group(held),
        money(Money::from_cents(revenue))
    );
    if !app.concerts.filter.is_empty() {
        title.push_str(&format!("· title contains \"{}\" ", app.concerts.filter));
    }
    let block = Block::bordered()
        .title(title)
        .title_bottom(Line::from(" Enter seat map · a add concert · / filter ").right_aligned());
    if rows.is_empty() {
        let text = if sales.is_empty() {
            "No concerts yet. Press a to add one."
        } else {
            "No concert title matches the filter. Press / to change it."
        };
        return Paragraph::new(text).block(block).render(area, buf);
    }
    let inner_h = usize::from(block.inner(area).height.saturating_sub(1));
    let shown = window(app.concerts.selected, rows.len(), inner_h);
    let table_rows = rows[shown.clone()].iter().enumerate().map(|(i, r)| {
        let d = r.date;
        let title = if r.first || i == 0 {
            format!("{} {}", r.concert.concert_id, r.concert.title)
        } else {
            String::new()
        };
        let row = Row::new(vec![
            Cell::from(title),
            Cell::from(d.concert_date.clone()),
            Cell::from(Line::from(d.concert_option_id.to_string()).right_aligned()),
            Cell::from(Line::from(money(d.price)).right_aligned()),
            Cell::from(Line::from(group(u64::from(d.seats))).right_aligned()),
            Cell::from(Line::from(group(u64::from(d.sold))).right_aligned()).fg(Color::Red),
            Cell::from(Line::from(group(u64::from(d.held))).right_aligned()).fg(Color::Yellow),
            Cell::from(Line::from(group(u64::from(d.available))).right_aligned()).fg(Color::Green),
            Cell::from(bar(d.sold, d.held, d.seats)),
            Cell::from(Line::from(money(d.revenue)).right_aligned()),
        ]);
        if shown.start + i == app.concerts.selected {
            row.style(SELECTED)
        } else {
            row
        }
    });
    Table::new(
        table_rows,
        [
            Constraint::Fill(1),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(14),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(16),
            Constraint::Length(17),
        ],
    )
    .header(
        Row::new([
            "Concert",
            "Date",
            "Id",
            "Price",
            "Seats",
            "Sold",
            "Held",
            "Available",
            "Sold/held",
            "Revenue",
        ])
        .style(HEADER),
    )
    .block(block)
    .render(area, buf);
}

/// `█` sold, `▒` held, `·` available, ten cells, then the sold percentage.
fn bar(sold: u32, held: u32, seats: u32) -> Line<'static> {
    let cells = |n: u32| {
        if seats == 0 {
            0
        } else {
            (u64::from(n) * 10).div_ceil(u64::from(seats)) as usize
        }
    };
    let s = cells(sold).min(10);
    let h = cells(held).min(10 - s);
    let pct = if seats == 0 {
        0
    } else {
        u64::from(sold) * 100 / u64::from(seats)
    };
    Line::from(vec![
        Span::styled("█".repeat(s), Style::new().fg(Color::Red)),
        Span::styled("▒".repeat(h), Style::new().fg(Color::Yellow)),
        Span::styled("·".repeat(10 - s - h), DIM),
        Span::raw(format!("{pct:>4}%")),
    ])
}

// ----- seats ---------------------------------------------------------------------------------

fn seat_style(status: SeatStatus) -> Style {
    match status {
        SeatStatus::Available => Style::new().bg(Color::Green).fg(Color::Black),
        SeatStatus::Held => Style::new().bg(Color::Yellow).fg(Color::Black),
        SeatStatus::Sold => Style::new().bg(Color::Red).fg(Color::White),
    }
}

fn seats(app: &App, area: Rect, buf: &mut Buffer) {
    let dates = app.all_dates();
    let here = app
        .seats
        .option_id
        .and_then(|id| dates.iter().position(|d| d.date.concert_option_id == id));
    let title = match here.map(|i| dates[i]) {
        Some(d) => format!(
            " Seats — {} · {} (date {}, {} of {}) · {} each ",
            d.concert.title,
            d.date.concert_date,
            d.date.concert_option_id,
            here.map_or(0, |i| i + 1),
            dates.len(),
            money(d.date.price)
        ),
        None => match app.seats.option_id {
            Some(id) => format!(" Seats — date {id} "),
            None => " Seats ".into(),
        },
    };
    let list = app.seat_list();
    let side_w = 34;
    let num_w = list.iter().map(|s| s.seat_number.len()).max().unwrap_or(3);
    let cell_w = num_w + 5;
    let grid_w = u16::try_from(cell_w * 10 + 9 + 2).unwrap_or(u16::MAX);
    let [grid_area, side_area] = if area.width >= grid_w + side_w {
        Layout::horizontal([Constraint::Length(grid_w), Constraint::Fill(1)]).areas(area)
    } else {
        [area, Rect::default()]
    };
    let rows_total = list.len().div_ceil(10);
    let inner_h = usize::from(grid_area.height.saturating_sub(2));
    let shown = window(app.seats.cursor / 10, rows_total, inner_h);
    let block = Block::bordered().title(title).title_bottom(
        Line::from(if rows_total > 0 {
            format!(" rows {}–{} of {} ", shown.start + 1, shown.end, rows_total)
        } else {
            String::new()
        })
        .right_aligned(),
    );
    if app.seats.option_id.is_none() || app.seats.map.is_none() || matches!(app.seats.map, Some(Err(_))) {
        let err = match &app.seats.map {
            Some(Err(e)) => Some(e.clone()),
            _ if dates.is_empty() && app.concerts.sales.is_some() => Some("no concert dates yet".into()),
            _ => None,
        };
        loading_or_error(err.as_ref(), grid_area, buf, block);
    } else {
        let inner = block.inner(grid_area);
        block.render(grid_area, buf);
        let now = app.now.unwrap_or(Timestamp(0));
        for (line, row) in shown.clone().enumerate() {
            let y = inner.y + u16::try_from(line).unwrap_or(0);
            for col in 0..10 {
                let i = row * 10 + col;
                let Some(seat) = list.get(i) else { break };
                let extra = match (seat.status, seat.held_until) {
                    (SeatStatus::Held, Some(until)) => left(now, until),
                    (SeatStatus::Sold, _) => "sold".into(),
                    _ => String::new(),
                };
                let text = format!("{:<num_w$}{:>5}", seat.seat_number, extra);
                let mut style = seat_style(seat.status);
                if i == app.seats.cursor {
                    style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
                }
                let x = inner.x + u16::try_from(col * (cell_w + 1)).unwrap_or(0);
                if x + u16::try_from(cell_w).unwrap_or(0) <= inner.right() {
                    buf.set_string(x, y, text, style);
                }
            }
        }
    }
    if side_area.width > 0 {
        seat_panel(app, side_area, buf);
    }
}

fn seat_panel(app: &App, area: Rect, buf: &mut Buffer) {
    let list = app.seat_list();
    let now = app.now.unwrap_or(Timestamp(0));
    let count = |s: SeatStatus| group(list.iter().filter(|e| e.status == s).count() as u64);
    let mut lines = vec![Line::styled("Selected seat", HEADER)];
    match list.get(app.seats.cursor) {
        Some(seat) => {
            lines.push(Line::from(vec![
                Span::raw(format!("{}  ", seat.seat_number)),
                Span::styled(format!(" {} ", seat.status), seat_style(seat.status)),
            ]));
            lines.push(Line::from(format!("seat id      {}", seat.seat_id)));
            if let Some(r) = seat.reservation_id {
                lines.push(Line::from(format!("reservation  {r}")));
            }
            if let Some(u) = seat.user_id {
                lines.push(Line::from(format!("user         {u}")));
            }
            if let Some(until) = seat.held_until {
                lines.push(Line::from(format!("held until   {}", clock(until))));
                lines.push(Line::from(format!("time left    {}", left(now, until))));
            }
        }
        None => lines.push(Line::styled("none", DIM)),
    }
    lines.push(Line::default());
    lines.push(Line::styled("This date", HEADER));
    for (s, label) in [
        (SeatStatus::Available, "available"),
        (SeatStatus::Held, "held"),
        (SeatStatus::Sold, "sold"),
    ] {
        lines.push(Line::from(vec![
            Span::styled("    ", seat_style(s)),
            Span::raw(format!(" {label:<10}{:>8}", count(s))),
        ]));
    }
    lines.push(Line::default());
    lines.push(Line::styled("Keys", HEADER));
    for k in [
        "arrows  move",
        "Enter   release hold",
        "[ ]     previous / next date",
        "/       go to seat",
    ] {
        lines.push(Line::styled(k, DIM));
    }
    Paragraph::new(lines)
        .block(Block::bordered().title(" Seat "))
        .render(area, buf);
}

// ----- queue ---------------------------------------------------------------------------------

fn queue(app: &App, area: Rect, buf: &mut Buffer) {
    let [top, list] = Layout::vertical([Constraint::Length(8), Constraint::Fill(1)]).areas(area);
    let [stats_area, spark_area] = Layout::horizontal([Constraint::Length(44), Constraint::Fill(1)]).areas(top);
    let stats_block = Block::bordered().title(" Queue ");
    match &app.queue {
        Some(Ok(q)) => {
            let state = if q.paused {
                Span::styled(" PAUSED ", Style::new().bg(Color::Red).fg(Color::White).bold())
            } else {
                Span::styled(" admitting ", Style::new().bg(Color::Green).fg(Color::Black))
            };
            let lines = vec![
                Line::from(vec![Span::raw("admission     "), state]),
                Line::from(format!("waiting       {}", group(q.waiting))),
                Line::from(format!(
                    "active        {} / {} max",
                    group(u64::from(q.active)),
                    group(u64::from(q.max_active))
                )),
                Line::from(format!("admitted/min  {}", group(q.admitted_last_minute))),
                Line::from(format!(
                    "oldest wait   {}",
                    q.oldest_wait_seconds.map_or("—".into(), duration_words)
                )),
            ];
            Paragraph::new(lines).block(stats_block).render(stats_area, buf);
        }
        Some(Err(e)) => loading_or_error(Some(e), stats_area, buf, stats_block),
        None => loading_or_error(None, stats_area, buf, stats_block),
    }
    let spark_block = Block::bordered().title(" Admissions in the last minute, one sample per refresh ");
    let w = usize::from(spark_block.inner(spark_area).width);
    let h = &app.tokens.history;
    let data: Vec<u64> = h.iter().skip(h.len().saturating_sub(w)).copied().collect();
    let peak = data.iter().copied().max().unwrap_or(0);
    Sparkline::default()
        .block(spark_block.title_bottom(Line::from(format!(" peak {} ", group(peak))).right_aligned()))
        .data(&data)
        .style(Style::new().fg(Color::Cyan))
        .render(spark_area, buf);
    tokens_table(app, list, buf);
}

fn tokens_table(app: &App, area: Rect, buf: &mut Buffer) {
    let total = app.token_total();
    let (label, other) = match app.tokens.status {
        TokenStatus::Active => ("Active", "waiting"),
        _ => ("Waiting", "active"),
    };
    let block = Block::bordered()
        .title(format!(" {label} tokens — {} ", group(total)))
        .title_bottom(
            Line::from(format!(
                " w show {other} · x expire · p pause/resume · m max-active · s sweep · / position "
            ))
            .right_aligned(),
        );
    if let Some(Err(e)) = &app.tokens.rows {
        return loading_or_error(Some(e), area, buf, block);
    }
    let empty = Vec::new();
    let rows = match &app.tokens.rows {
        Some(Ok(r)) => r,
        _ => &empty,
    };
    let now = app.now.unwrap_or(Timestamp(0));
    let inner_h = u64::from(block.inner(area).height.saturating_sub(1));
    let top = app
        .tokens
        .selected
        .checked_div(inner_h)
        .map_or(0, |page| page * inner_h);
    let end = (top + inner_h).min(total);
    let table_rows = (top..end).map(|i| {
        let row = match i
            .checked_sub(app.tokens.offset)
            .and_then(|j| rows.get(usize::try_from(j).ok()?))
        {
            Some(t) => Row::new(vec![
                Cell::from(
                    Line::from(if t.queue_position > 0 {
                        group(t.queue_position)
                    } else {
                        "—".into()
                    })
                    .right_aligned(),
                ),
                Cell::from(t.token.clone()),
                Cell::from(Line::from(t.user_id.to_string()).right_aligned()),
                Cell::from(t.status.as_str()),
                Cell::from(clock(t.issued_at)),
                Cell::from(Line::from(left(now, t.expires_at)).right_aligned()),
            ]),
            None => Row::new(vec![
                Cell::from(Line::from(group(i + 1)).right_aligned()),
                Cell::from("…").style(DIM),
            ]),
        };
        if i == app.tokens.selected {
            row.style(SELECTED)
        } else {
            row
        }
    });
    Table::new(
        table_rows,
        [
            Constraint::Length(9),
            Constraint::Length(36),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(10),
        ],
    )
    .header(Row::new(["Position", "Token", "User", "Status", "Issued", "Expires in"]).style(HEADER))
    .block(block)
    .render(area, buf);
}

// ----- reservations --------------------------------------------------------------------------

fn reservations(app: &App, area: Rect, buf: &mut Buffer) {
    let which = match app.reservations.filter {
        ReservationFilter::Held => "live holds",
        ReservationFilter::Paid => "paid",
        ReservationFilter::All => "all",
    };
    let mut title = format!(" Reservations — {which}, newest {RESERVATION_LIMIT} ");
    if let Some(u) = app.reservations.user {
        title.push_str(&format!("· user {u} "));
    }
    let block = Block::bordered()
        .title(title)
        .title_bottom(Line::from(" f held/paid/all · Enter release hold · / user ").right_aligned());
    let Some(Ok(_)) = &app.reservations.rows else {
        let err = match &app.reservations.rows {
            Some(Err(e)) => Some(e),
            _ => None,
        };
        return loading_or_error(err, area, buf, block);
    };
    let list = app.shown_reservations();
    if list.is_empty() {
        return Paragraph::new(Line::styled("No reservations to show.", DIM))
            .block(block)
            .render(area, buf);
    }
    let now = app.now.unwrap_or(Timestamp(0));
    let inner_h = usize::from(block.inner(area).height.saturating_sub(1));
    let shown = window(app.reservations.selected, list.len(), inner_h);
    let rows = list[shown.clone()].iter().enumerate().map(|(i, r)| {
        let status_style = match r.status {
            ReservationStatus::Held => Style::new().fg(Color::Yellow),
            ReservationStatus::Paid => Style::new().fg(Color::Red),
            _ => DIM,
        };
        let time_left = if r.status == ReservationStatus::Held {
            left(now, r.held_until)
        } else {
            String::new()
        };
        let row = Row::new(vec![
            Cell::from(Line::from(r.reservation_id.to_string()).right_aligned()),
            Cell::from(Line::from(r.user_id.to_string()).right_aligned()),
            Cell::from(Line::from(r.concert_option_id.to_string()).right_aligned()),
            Cell::from(r.seat_number.clone()),
            Cell::from(r.status.as_str()).style(status_style),
            Cell::from(clock(r.held_until)),
            Cell::from(Line::from(time_left).right_aligned()),
            Cell::from(Line::from(money(r.price)).right_aligned()),
        ]);
        if shown.start + i == app.reservations.selected {
            row.style(SELECTED)
        } else {
            row
        }
    });
    Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(14),
        ],
    )
    .header(
        Row::new([
            "Reservation",
            "User",
            "Date",
            "Seat",
            "Status",
            "Held until",
            "Time left",
            "Price",
        ])
        .style(HEADER),
    )
    .block(block)
    .render(area, buf);
}

// ----- wallets -------------------------------------------------------------------------------

fn wallets(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(user) = app.wallets.user else {
        return Paragraph::new("Press / (or Enter) and type a user id to see the wallet and its ledger.")
            .block(Block::bordered().title(" Wallets "))
            .render(area, buf);
    };
    let block = Block::bordered().title(format!(" Wallet of user {user} "));
    let Some(Ok(w)) = &app.wallets.wallet else {
        let err = match &app.wallets.wallet {
            Some(Err(e)) => Some(e),
            _ => None,
        };
        return loading_or_error(err, area, buf, block);
    };
    let block = Block::bordered()
        .title(format!(
            " Wallet of user {user} — balance {} · {} ledger entries ",
            money(w.balance),
            group(w.ledger.len() as u64)
        ))
        .title_bottom(Line::from(" / another user · ↑↓ scroll ").right_aligned());
    if w.ledger.is_empty() {
        return Paragraph::new(Line::styled("No ledger entries: this user has never charged.", DIM))
            .block(block)
            .render(area, buf);
    }
    let inner_h = usize::from(block.inner(area).height.saturating_sub(1));
    let n = w.ledger.len();
    let shown = window(app.wallets.scroll, n, inner_h);
    // Newest first: row k of the table is entry n-1-k.
    let rows = shown.clone().map(|k| {
        let e = &w.ledger[n - 1 - k];
        let (sign, style) = match e.kind {
            LedgerKind::Charge => ("+", Style::new().fg(Color::Green)),
            _ => ("−", Style::new().fg(Color::Red)),
        };
        let row = Row::new(vec![
            Cell::from(Line::from((n - k).to_string()).right_aligned()),
            Cell::from(e.at.to_rfc3339()),
            Cell::from(e.kind.as_str()),
            Cell::from(Line::from(format!("{sign}{}", money(e.amount))).right_aligned()).style(style),
            Cell::from(Line::from(money(e.balance_after)).right_aligned()),
        ]);
        if k == app.wallets.scroll {
            row.style(SELECTED)
        } else {
            row
        }
    });
    Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(21),
            Constraint::Length(8),
            Constraint::Length(20),
            Constraint::Length(22),
        ],
    )
    .header(Row::new(["#", "At (UTC)", "Kind", "Amount", "Balance after"]).style(HEADER))
    .block(block)
    .render(area, buf);
}

// ----- modals --------------------------------------------------------------------------------

/// Every key, by view: the help overlay draws this, and `docs/tui.md` repeats it.
pub const KEYS: &[(&str, &[(&str, &str)])] = &[
    (
        "Everywhere",
        &[
            ("Tab / Shift-Tab", "next / previous view"),
            ("1 … 5", "Concerts, Seats, Queue, Reservations, Wallets"),
            ("↑ ↓ PgUp PgDn Home End", "move the selection (also j / k)"),
            ("/", "search in the view (see below)"),
            ("?", "this help (Esc closes)"),
            ("q / Ctrl-C", "quit"),
        ],
    ),
    (
        "Concerts",
        &[
            ("Enter", "seat map of the selected date"),
            ("a", "add a concert (form: Tab moves, Enter adds, Esc cancels)"),
            ("/", "filter by title"),
        ],
    ),
    (
        "Seats",
        &[
            ("← → ↑ ↓", "move between seats"),
            ("[ ]", "previous / next date"),
            ("Enter / r", "release the selected seat's hold (asks first)"),
            ("/", "go to a seat number"),
        ],
    ),
    (
        "Queue",
        &[
            ("p", "pause admission (asks first) / resume"),
            ("m", "set max-active"),
            ("x / Delete", "expire the selected token (asks first)"),
            ("w", "list waiting / active tokens"),
            ("s", "sweep now: expire run-out holds and tokens, admit"),
            ("/", "go to a queue position"),
        ],
    ),
    (
        "Reservations",
        &[
            ("f", "live holds / paid / all"),
            ("Enter / r", "release the selected hold (asks first)"),
            ("/", "only one user's"),
        ],
    ),
    ("Wallets", &[("/ or Enter", "open a user's wallet")]),
    ("Questions", &[("y / Enter", "yes"), ("n / Esc", "no")]),
];

fn draw_modal(modal: &Modal, area: Rect, buf: &mut Buffer) {
    match modal {
        Modal::Help => {
            let mut lines = Vec::new();
            for (section, keys) in KEYS {
                lines.push(Line::styled(*section, HEADER.fg(Color::Cyan)));
                for (k, what) in *keys {
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {k:<24}"), HEADER),
                        Span::raw(*what),
                    ]));
                }
            }
            let h = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
            let r = area.centered(Constraint::Length(84), Constraint::Length(h));
            Clear.render(r, buf);
            Paragraph::new(lines)
                .block(
                    Block::bordered()
                        .title(" Keys ")
                        .title_bottom(Line::from(" Esc close ").right_aligned()),
                )
                .render(r, buf);
        }
        Modal::Confirm { question, .. } => {
            let r = area.centered(Constraint::Length(70), Constraint::Length(6));
            Clear.render(r, buf);
            Paragraph::new(vec![
                Line::from(question.as_str()),
                Line::default(),
                Line::styled("y / Enter: yes     n / Esc: no", DIM),
            ])
            .wrap(Wrap { trim: true })
            .block(
                Block::bordered()
                    .title(" Confirm ")
                    .border_style(Style::new().fg(Color::Yellow)),
            )
            .render(r, buf);
        }
        Modal::Prompt { purpose, input } => {
            let r = area.centered(Constraint::Length(60), Constraint::Length(3));
            Clear.render(r, buf);
            Paragraph::new(Line::from(vec![Span::raw(input.as_str()), Span::styled("█", DIM)]))
                .block(
                    Block::bordered()
                        .title(format!(" {} ", purpose.label()))
                        .title_bottom(Line::from(" Enter ok · Esc cancel ").right_aligned()),
                )
                .render(r, buf);
        }
        Modal::AddConcert(form) => {
            let r = area.centered(Constraint::Length(72), Constraint::Length(15));
            Clear.render(r, buf);
            let mut lines = Vec::new();
            for (i, label) in FORM_FIELDS.iter().enumerate() {
                let focused = i == form.focus;
                lines.push(Line::styled(*label, if focused { HEADER.fg(Color::Cyan) } else { DIM }));
                let mut value = vec![Span::raw(format!("  {}", form.fields[i]))];
                if focused {
                    value.push(Span::styled("█", DIM));
                }
                lines.push(Line::from(value));
                lines.push(Line::default());
            }
            lines.push(Line::styled(
                if form.pending {
                    "adding…"
                } else {
                    "Tab / ↑↓ field · Enter add · Esc cancel"
                },
                DIM,
            ));
            Paragraph::new(lines)
                .block(Block::bordered().title(" Add a concert ").borders(Borders::ALL))
                .render(r, buf);
        }
    }
}

// ----- formatting ----------------------------------------------------------------------------

/// `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    // Digits left before the next comma (the first group may be short).
    let mut left = s.len() % 3;
    if left == 0 {
        left = 3;
    }
    for c in s.chars() {
        if left == 0 {
            out.push(',');
            left = 3;
        }
        out.push(c);
        left -= 1;
    }
    out
}

/// Money with thousands separators: `1,234.50`.
pub fn money(m: Money) -> String {
    let c = m.cents();
    let sign = if c < 0 { "-" } else { "" };
    let c = c.unsigned_abs();
    format!("{sign}{}.{:02}", group(c / 100), c % 100)
}

/// `HH:MM:SS` (UTC).
fn clock(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    s.get(11..19).unwrap_or(&s).to_string()
}

/// Time from `now` until `until` as `m:ss` (or `h:mm:ss`); `0:00` when past.
fn left(now: Timestamp, until: Timestamp) -> String {
    let s = now.until(until).as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// `75` → `1m 15s`.
fn duration_words(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        let cases = [
            (0, "0"),
            (12, "12"),
            (999, "999"),
            (1000, "1,000"),
            (123456, "123,456"),
            (1234567, "1,234,567"),
        ];
        for (n, text) in cases {
            assert_eq!(group(n), text);
        }
        assert_eq!(money(Money::from_cents(5_500_050)), "55,000.50");
        assert_eq!(left(Timestamp(0), Timestamp(3_725_000)), "1:02:05");
        assert_eq!(left(Timestamp(10), Timestamp(0)), "0:00");
        assert_eq!(duration_words(75), "1m 15s");
    }
}
