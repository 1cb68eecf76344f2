//! Drawing the app: `impl Widget for &App`. Reads state, never changes it; lists are windowed
//! (only the rows that fit are built), so a frame costs the same with 100 or 100,000 rows.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
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
            draw_modal(modal, self.tab, area, buf);
        }
    }
}

// ----- frame parts ---------------------------------------------------------------------------

fn header(app: &App, area: Rect, buf: &mut Buffer) {
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    let red = Style::new().bg(Color::Red).fg(Color::White);
    // The queue summary in falling order of length; the tab bar is never overwritten, so a
    // narrow terminal gets a shorter summary (or none) instead.
    let summaries: Vec<Line<'static>> = match &app.queue {
        Some(Ok(q)) => {
            let with_badge = |text: String| {
                let mut spans = vec![Span::raw(text)];
                if q.paused {
                    spans.push(Span::styled(" PAUSED ", red));
                }
                Line::from(spans)
            };
            vec![
                with_badge(format!(
                    "waiting {} · active {}/{} ",
                    group(q.waiting),
                    q.active,
                    q.max_active
                )),
                with_badge(format!(
                    "wait {} · act {}/{} ",
                    group(q.waiting),
                    q.active,
                    q.max_active
                )),
                with_badge(String::new()),
            ]
        }
        Some(Err(e)) => vec![
            Line::styled(format!("queue: {e}"), Style::new().fg(Color::Red)),
            Line::styled("queue: error", Style::new().fg(Color::Red)),
        ],
        None => vec![Line::from("reading…"), Line::default()],
    };
    let titles = |padded: bool| {
        Tab::ALL.iter().enumerate().map(move |(i, t)| {
            let text = format!("{} {}", i + 1, t.title());
            if padded {
                format!(" {text} ")
            } else {
                text
            }
        })
    };
    let tabs_width = |padded: bool| {
        let names: usize = titles(padded).map(|t| t.chars().count()).sum();
        names + Tab::ALL.len() - 1
    };
    let layouts = summaries
        .iter()
        .flat_map(|summary| [true, false].map(|padded| (padded, summary)));
    let (padded, summary) = layouts
        .clone()
        .find(|(padded, summary)| tabs_width(*padded) + summary.width() <= usize::from(area.width))
        .unwrap_or_else(|| layouts.last().unwrap_or((false, &summaries[0])));
    let w = u16::try_from(summary.width()).unwrap_or(u16::MAX).min(area.width);
    let [tabs_area, summary_area] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(w)]).areas(area);
    Tabs::new(titles(padded))
        .select(selected)
        .padding("", "")
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD))
        .divider("│")
        .render(tabs_area, buf);
    summary.clone().right_aligned().render(summary_area, buf);
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
    // The message on the left matters more than the clock on the right: the right part gives
    // up its parts, oldest first, until the message fits.
    let message = app.status.as_ref().map_or(0, |s| s.text.chars().count() + 1);
    let right = (0..right.len())
        .map(|skip| right[skip..].join(" · "))
        .find(|text| text.chars().count() + message <= usize::from(area.width))
        .unwrap_or_else(|| "? keys".into());
    let right = Line::from(right).style(DIM).right_aligned();
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

/// The first of `variants` (longest first) that fits a block `width` wide, between its
/// corners; else the last one, which the block cuts.
fn fit(variants: &[String], width: u16) -> String {
    let room = usize::from(width.saturating_sub(2));
    variants
        .iter()
        .find(|v| v.chars().count() <= room)
        .or(variants.last())
        .cloned()
        .unwrap_or_default()
}

/// A table column: its header and when it goes as the table narrows (`drop` 0 never; the
/// highest goes first). A `fill` column takes the room left, at least its header's width.
struct Col {
    header: &'static str,
    drop: u8,
    fill: bool,
}

const fn col(header: &'static str, drop: u8) -> Col {
    Col {
        header,
        drop,
        fill: false,
    }
}

/// Which columns of `cols` fit `width` (columns are as wide as their widest text, one space
/// apart), dropping the highest-ranked ones first, and their constraints. Numbers are never
/// cut: a column that does not fit whole is dropped.
fn fit_columns(cols: &[Col], rows: &[Vec<Line<'static>>], width: u16) -> (Vec<usize>, Vec<Constraint>) {
    let natural: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let header = c.header.chars().count();
            if c.fill {
                // Text (a title) may be cut at its end; it needs only a recognisable start.
                return header.max(12);
            }
            let widest = rows.iter().filter_map(|r| r.get(i)).map(Line::width).max().unwrap_or(0);
            widest.max(header)
        })
        .collect();
    let mut keep: Vec<usize> = (0..cols.len()).collect();
    let total = |keep: &[usize]| keep.iter().map(|&i| natural[i]).sum::<usize>() + keep.len().saturating_sub(1);
    while total(&keep) > usize::from(width) {
        let Some(pos) = (0..keep.len())
            .filter(|&p| cols[keep[p]].drop > 0)
            .max_by_key(|&p| (cols[keep[p]].drop, p))
        else {
            break;
        };
        keep.remove(pos);
    }
    let constraints = keep
        .iter()
        .map(|&i| {
            let w = u16::try_from(natural[i]).unwrap_or(u16::MAX);
            if cols[i].fill {
                Constraint::Min(w)
            } else {
                Constraint::Length(w)
            }
        })
        .collect();
    (keep, constraints)
}

/// A table of `rows` (one [`Line`] per column of `cols`) fitted to the inner width of `area`
/// (see [`fit_columns`]); row `selected` (an index into `rows`) is drawn reversed.
fn fitted_table(
    cols: &[Col],
    rows: Vec<Vec<Line<'static>>>,
    selected: Option<usize>,
    block: Block<'static>,
    area: Rect,
    buf: &mut Buffer,
) {
    let (keep, constraints) = fit_columns(cols, &rows, block.inner(area).width);
    let pick = |cells: &[Line<'static>]| -> Vec<Cell<'static>> {
        keep.iter()
            .map(|&i| Cell::from(cells.get(i).cloned().unwrap_or_default()))
            .collect()
    };
    let header: Vec<Line<'static>> = cols.iter().map(|c| Line::from(c.header)).collect();
    let table_rows = rows.iter().enumerate().map(|(i, cells)| {
        let row = Row::new(pick(cells));
        if Some(i) == selected {
            row.style(SELECTED)
        } else {
            row
        }
    });
    Table::new(table_rows, constraints)
        .header(Row::new(pick(&header)).style(HEADER))
        .block(block)
        .render(area, buf);
}

/// Text aligned right in its cell (numbers).
fn right(text: String) -> Line<'static> {
    Line::from(text).right_aligned()
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
    let filter = if app.concerts.filter.is_empty() {
        String::new()
    } else {
        format!("· title contains \"{}\" ", app.concerts.filter)
    };
    let (sold, seats, held, revenue) = (
        group(sold),
        group(seats),
        group(held),
        money(Money::from_cents(revenue)),
    );
    let title = fit(
        &[
            format!(
                " Concerts and dates — {} concerts, {} dates · sold {sold} of {seats} · held {held} · revenue {revenue} {filter}",
                sales.len(),
                sales.iter().map(|c| c.dates.len()).sum::<usize>(),
            ),
            format!(" Concerts — sold {sold} of {seats} · held {held} · revenue {revenue} {filter}"),
            format!(" Concerts — sold {sold} · revenue {revenue} {filter}"),
            format!(" Concerts {filter}"),
        ],
        area.width,
    );
    let keys = fit(
        &[
            " Enter seat map · a add concert · / filter ".into(),
            " Enter seats · a add · / filter ".into(),
        ],
        area.width,
    );
    let block = Block::bordered()
        .title(title)
        .title_bottom(Line::from(keys).right_aligned());
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
    let table_rows = rows[shown.clone()]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let d = r.date;
            let title = if r.first || i == 0 {
                format!("{} {}", r.concert.concert_id, r.concert.title)
            } else {
                String::new()
            };
            let count = |n: u32, color: Color| right(group(u64::from(n))).style(Style::new().fg(color));
            vec![
                Line::from(title),
                Line::from(d.concert_date.clone()),
                right(d.concert_option_id.to_string()),
                right(money(d.price)),
                right(group(u64::from(d.seats))),
                count(d.sold, Color::Red),
                count(d.held, Color::Yellow),
                count(d.available, Color::Green),
                bar(d.sold, d.held, d.seats),
                right(money(d.revenue)),
            ]
        })
        .collect();
    const COLS: [Col; 10] = [
        Col {
            header: "Concert",
            drop: 0,
            fill: true,
        },
        col("Date", 0),
        col("Id", 7),
        col("Price", 1),
        col("Seats", 2),
        col("Sold", 0),
        col("Held", 5),
        col("Available", 4),
        col("Sold/held", 8),
        col("Revenue", 3),
    ];
    let selected = app.concerts.selected.checked_sub(shown.start);
    fitted_table(&COLS, table_rows, selected, block, area, buf);
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
    let list = app.seat_list();
    let side_w = 34;
    let num_w = list.iter().map(|s| s.seat_number.len()).max().unwrap_or(3);
    // Ten seats a row. A cell shows the seat number and, when there is room, its hold
    // countdown; in a narrow terminal it shows the number only (the colour tells the status,
    // the side panel or the bottom line the selected seat's details).
    let grid_w = |cell_w: usize| u16::try_from(cell_w * 10 + 9 + 2).unwrap_or(u16::MAX);
    let (cell_w, side) = [(num_w + 5, true), (num_w, true), (num_w + 5, false), (num_w, false)]
        .into_iter()
        .find(|&(cell_w, side)| grid_w(cell_w) + if side { side_w } else { 0 } <= area.width)
        .unwrap_or((num_w, false));
    let [grid_area, side_area] = if side {
        Layout::horizontal([Constraint::Length(grid_w(cell_w)), Constraint::Fill(1)]).areas(area)
    } else {
        [area, Rect::default()]
    };
    let title = match here.map(|i| dates[i]) {
        Some(d) => {
            let (name, date, price) = (&d.concert.title, &d.date.concert_date, money(d.date.price));
            let (id, at) = (d.date.concert_option_id, here.map_or(0, |i| i + 1));
            fit(
                &[
                    format!(
                        " Seats — {name} · {date} (date {id}, {at} of {}) · {price} each ",
                        dates.len()
                    ),
                    format!(" {date} · {name} · {price} each "),
                    format!(" {date} · {name} "),
                    format!(" {date} · {price} each "),
                    format!(" {date} "),
                ],
                grid_area.width,
            )
        }
        None => match app.seats.option_id {
            Some(id) => format!(" Seats — date {id} "),
            None => " Seats ".into(),
        },
    };
    let rows_total = list.len().div_ceil(10);
    let inner_h = usize::from(grid_area.height.saturating_sub(2));
    let shown = window(app.seats.cursor / 10, rows_total, inner_h);
    let now = app.now.unwrap_or(Timestamp(0));
    let mut bottom = String::new();
    if !side {
        // No side panel: the selected seat on the bottom line.
        if let Some(seat) = list.get(app.seats.cursor) {
            bottom.push_str(&format!(" {} {}", seat.seat_number, seat.status));
            if let Some(until) = seat.held_until {
                bottom.push_str(&format!(" {}", left(now, until)));
            }
            if let Some(u) = seat.user_id {
                bottom.push_str(&format!(" · user {u}"));
            }
            bottom.push_str(" ·");
        }
    }
    if rows_total > 0 {
        bottom.push_str(&format!(" rows {}–{} of {} ", shown.start + 1, shown.end, rows_total));
    }
    let block = Block::bordered()
        .title(title)
        .title_bottom(Line::from(bottom).right_aligned());
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
                let extra_w = cell_w - num_w;
                let text = if extra_w == 0 {
                    format!("{:<num_w$}", seat.seat_number)
                } else {
                    format!("{:<num_w$}{:>extra_w$}", seat.seat_number, extra)
                };
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
    let spark_block = Block::bordered().title(fit(
        &[
            " Admissions in the last minute, one sample per refresh ".into(),
            " Admissions in the last minute ".into(),
            " Admitted/min ".into(),
        ],
        spark_area.width,
    ));
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
    let keys = fit(
        &[
            format!(" w show {other} · x expire · p pause/resume · m max-active · s sweep · / find "),
            format!(" w {other} · x expire · p pause · m max-active · s sweep · / find "),
            " ? keys ".into(),
        ],
        area.width,
    );
    let block = Block::bordered()
        .title(format!(" {label} tokens — {} ", group(total)))
        .title_bottom(Line::from(keys).right_aligned());
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
    // A whole token when it fits (operators copy it); else its first 8 characters.
    let table = |short: bool| -> Vec<Vec<Line<'static>>> {
        (top..end)
            .map(|i| {
                match i
                    .checked_sub(app.tokens.offset)
                    .and_then(|j| rows.get(usize::try_from(j).ok()?))
                {
                    Some(t) => vec![
                        right(if t.queue_position > 0 {
                            group(t.queue_position)
                        } else {
                            "—".into()
                        }),
                        Line::from(if short {
                            format!("{}…", t.token.get(..8).unwrap_or(&t.token))
                        } else {
                            t.token.clone()
                        }),
                        right(t.user_id.to_string()),
                        Line::from(t.status.as_str()),
                        Line::from(clock(t.issued_at)),
                        right(left(now, t.expires_at)),
                    ],
                    None => vec![right(group(i + 1)), Line::styled("…", DIM)],
                }
            })
            .collect()
    };
    let mut cols = [
        col("Position", 0),
        col("Token", 4),
        col("User", 0),
        col("Status", 3),
        col("Issued", 5),
        col("Expires in", 2),
    ];
    let mut table_rows = table(false);
    if !fit_columns(&cols, &table_rows, block.inner(area).width).0.contains(&1) {
        cols[1].drop = 0;
        table_rows = table(true);
    }
    let selected = app
        .tokens
        .selected
        .checked_sub(top)
        .and_then(|i| usize::try_from(i).ok());
    fitted_table(&cols, table_rows, selected, block, area, buf);
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
    let rows = list[shown.clone()]
        .iter()
        .map(|r| {
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
            // The date as the operator knows it; its id only until the sales read has it.
            let (concert, date) = match app.date_of(r.concert_option_id) {
                Some(d) => (d.concert.title.clone(), d.date.concert_date.clone()),
                None => (String::new(), format!("date {}", r.concert_option_id)),
            };
            vec![
                right(r.reservation_id.to_string()),
                right(r.user_id.to_string()),
                Line::from(concert),
                Line::from(date),
                Line::from(r.seat_number.clone()),
                Line::styled(r.status.as_str(), status_style),
                Line::from(clock(r.held_until)),
                right(time_left),
                right(money(r.price)),
            ]
        })
        .collect();
    const COLS: [Col; 9] = [
        col("Reservation", 0),
        col("User", 0),
        Col {
            header: "Concert",
            drop: 5,
            fill: true,
        },
        col("Date", 0),
        col("Seat", 0),
        col("Status", 2),
        col("Held until", 4),
        col("Time left", 3),
        col("Price", 1),
    ];
    let selected = app.reservations.selected.checked_sub(shown.start);
    fitted_table(&COLS, rows, selected, block, area, buf);
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
    let (balance, entries) = (money(w.balance), group(w.ledger.len() as u64));
    let title = fit(
        &[
            format!(" Wallet of user {user} — balance {balance} · {entries} ledger entries "),
            format!(" User {user} — balance {balance} · {entries} entries "),
            format!(" User {user} — balance {balance} "),
        ],
        area.width,
    );
    let block = Block::bordered()
        .title(title)
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
    let rows = shown
        .clone()
        .map(|k| {
            let e = &w.ledger[n - 1 - k];
            let (sign, style) = match e.kind {
                LedgerKind::Charge => ("+", Style::new().fg(Color::Green)),
                _ => ("−", Style::new().fg(Color::Red)),
            };
            vec![
                right((n - k).to_string()),
                Line::from(e.at.to_rfc3339()),
                Line::from(e.kind.as_str()),
                right(format!("{sign}{}", money(e.amount))).style(style),
                right(money(e.balance_after)),
            ]
        })
        .collect();
    const COLS: [Col; 5] = [
        col("#", 2),
        col("At (UTC)", 0),
        col("Kind", 0),
        col("Amount", 0),
        col("Balance after", 1),
    ];
    let selected = app.wallets.scroll.checked_sub(shown.start);
    fitted_table(&COLS, rows, selected, block, area, buf);
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
            ("a", "add a concert (Tab next field, Enter add, Esc)"),
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
            ("/", "find a position (12), a user (u42) or a token"),
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

fn draw_modal(modal: &Modal, tab: Tab, area: Rect, buf: &mut Buffer) {
    match modal {
        Modal::Help => {
            let all_lines: usize = KEYS.iter().map(|(_, keys)| keys.len() + 1).sum();
            // Every key when they fit on the screen; else those of this view and everywhere.
            let fits = all_lines + 2 <= usize::from(area.height);
            let mut lines = Vec::new();
            let sections = KEYS
                .iter()
                .filter(|(section, _)| fits || ["Everywhere", tab.title(), "Questions"].contains(section));
            for (section, keys) in sections {
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
                        .title(if fits { " Keys " } else { " Keys of this view " })
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
