//! The report's plots, drawn by `plotters` into SVG strings that the HTML page embeds inline
//! (no script, no font file, no network: the browser lays the `<text>` out itself).
//!
//! Kinds, each a [`Kind`] whose class the page and its tests find charts by: per run and
//! operation, latency over time (p50/p99 per interval), throughput over time (successes,
//! conflicts, other failures), the percentile distribution (HdrHistogram style) and outcomes by
//! code; per run, users over time (active and waiting in the queue); per operation, the
//! strategies side by side. The time series come from the aggregator's [`Timeline`], whose
//! intervals widen as a run grows, so a 5 ms race gets as many points as a 3-minute rush.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::metrics::{Interval, Op, OpStats, Outcome, Timeline};

/// Size of one chart, pixels (two fit side by side in the page).
const SIZE: (u32, u32) = (580, 300);
/// Size of a comparison chart (two panels).
const WIDE: (u32, u32) = (1180, 300);

const FONT: &str = "sans-serif";

/// Colours of strategies in comparisons (the same order as the runs).
pub const STRATEGY_COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];
const OK: RGBColor = RGBColor(44, 160, 44);
const CONFLICT: RGBColor = RGBColor(214, 39, 40);
const FAILED: RGBColor = RGBColor(127, 127, 127);
const P50: RGBColor = RGBColor(31, 119, 180);
const P99: RGBColor = RGBColor(255, 127, 14);
const WAITING: RGBColor = RGBColor(255, 127, 14);

/// What a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// p50 and p99 latency per interval.
    LatencyOverTime,
    /// Successes, conflicts and other failures per second, per interval.
    ThroughputOverTime,
    /// Latency by percentile.
    Percentiles,
    /// Requests by outcome and code.
    Outcomes,
    /// Active and waiting users per interval.
    Users,
    /// The strategies side by side for one operation.
    Comparison,
}

impl Kind {
    /// The `data-kind` of its `<figure>`.
    pub fn class(self) -> &'static str {
        match self {
            Kind::LatencyOverTime => "latency-over-time",
            Kind::ThroughputOverTime => "throughput-over-time",
            Kind::Percentiles => "percentiles",
            Kind::Outcomes => "outcomes",
            Kind::Users => "users-over-time",
            Kind::Comparison => "comparison",
        }
    }
}

/// A drawn chart and what it is of.
pub struct Figure {
    /// What it shows.
    pub kind: Kind,
    /// The run's label, for per-run charts.
    pub strategy: Option<String>,
    /// The operation, for per-operation charts.
    pub op: Option<Op>,
    /// The SVG document.
    pub svg: String,
}

impl Figure {
    /// The `<figure>` element the page embeds.
    pub fn html(&self) -> String {
        let mut attrs = format!("data-kind=\"{}\"", self.kind.class());
        if let Some(s) = &self.strategy {
            attrs.push_str(&format!(" data-strategy=\"{}\"", super::report::esc(s)));
        }
        if let Some(op) = self.op {
            attrs.push_str(&format!(" data-op=\"{}\"", op.name()));
        }
        format!("<figure class=\"chart\" {attrs}>{}</figure>", self.svg)
    }
}

type Drawn = anyhow::Result<String>;

/// A tick label: a round number without trailing zeros (0.002, 1.5, 100).
fn tick(v: f64) -> String {
    if v.abs() >= 1000.0 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The top of a value axis: a little above the highest value, never empty.
fn top(max: f64) -> f64 {
    if max > 0.0 && max.is_finite() {
        max * 1.15
    } else {
        1.0
    }
}

/// Seconds from the run's start to the end of its last interval.
pub fn span_of(timeline: &Timeline) -> f64 {
    let len = timeline
        .ops
        .values()
        .map(Vec::len)
        .chain(std::iter::once(timeline.users.len()))
        .max()
        .unwrap_or(0)
        .max(1);
    len as f64 * timeline.width.as_secs_f64()
}

/// One named line of a time chart.
struct Line {
    name: String,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
}

/// A chart of lines over the run's time; points are marked too, so a series of one interval
/// still shows.
fn time_chart(title: &str, y_desc: &str, span: f64, lines: &[Line]) -> Drawn {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let y_max = top(lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0, f64::max));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 15))
            .margin(10)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..span, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("time since start (s)")
            .y_desc(y_desc)
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .light_line_style(BLACK.mix(0.04))
            .bold_line_style(BLACK.mix(0.15))
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 12))
            .draw()?;
        for line in lines {
            let colour = line.colour;
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), colour.stroke_width(2)))?
                .label(line.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3)));
            chart.draw_series(line.points.iter().map(|p| Circle::new(*p, 2, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 11))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// The middle of interval `i`, in seconds.
fn mid(i: usize, width: f64) -> f64 {
    (i as f64 + 0.5) * width
}

/// p50 and p99 of the requests that ended in each interval.
pub fn latency_over_time(title: &str, timeline: &Timeline, series: &[Interval]) -> Drawn {
    let w = timeline.width.as_secs_f64();
    let at = |q: f64| -> Vec<(f64, f64)> {
        series
            .iter()
            .enumerate()
            .filter(|(_, iv)| iv.count() > 0)
            .map(|(i, iv)| (mid(i, w), iv.latency.value_at_quantile(q) as f64 / 1000.0))
            .collect()
    };
    // p99 first, so p50 is drawn over it where they meet.
    let lines = [
        Line {
            name: "p99".into(),
            colour: P99,
            points: at(0.99),
        },
        Line {
            name: "p50".into(),
            colour: P50,
            points: at(0.50),
        },
    ];
    time_chart(title, "latency (ms)", span_of(timeline), &lines)
}

/// Successes, conflicts and (when there were any) other failures per second.
pub fn throughput_over_time(title: &str, timeline: &Timeline, series: &[Interval]) -> Drawn {
    let w = timeline.width.as_secs_f64();
    let rate = |f: fn(&Interval) -> u32| -> Vec<(f64, f64)> {
        series
            .iter()
            .enumerate()
            .map(|(i, iv)| (mid(i, w), f64::from(f(iv)) / w))
            .collect()
    };
    let mut lines = vec![
        Line {
            name: "successes/s".into(),
            colour: OK,
            points: rate(|iv| iv.ok),
        },
        Line {
            name: "conflicts/s".into(),
            colour: CONFLICT,
            points: rate(|iv| iv.conflicts),
        },
    ];
    if series.iter().any(|iv| iv.failed > 0) {
        lines.push(Line {
            name: "other failures/s".into(),
            colour: FAILED,
            points: rate(|iv| iv.failed),
        });
    }
    time_chart(title, "requests per second (1/s)", span_of(timeline), &lines)
}

/// Users in the system per interval: active, and waiting in the queue.
pub fn users_over_time(title: &str, timeline: &Timeline) -> Drawn {
    let w = timeline.width.as_secs_f64();
    let points = |f: fn(&super::metrics::Occupancy) -> u32| -> Vec<(f64, f64)> {
        timeline
            .users
            .iter()
            .enumerate()
            .map(|(i, o)| (mid(i, w), f64::from(f(o))))
            .collect()
    };
    let lines = [
        Line {
            name: "active".into(),
            colour: P50,
            points: points(|o| o.active),
        },
        Line {
            name: "waiting in queue".into(),
            colour: WAITING,
            points: points(|o| o.waiting),
        },
    ];
    time_chart(title, "users (most at once)", span_of(timeline), &lines)
}

/// The percentile axis label of a number of "nines" x (q = 1 − 10^−x: 1 is p90, 2 is p99…).
fn nines_label(x: f64) -> String {
    if x < 0.5 {
        return "0%".into();
    }
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.round() as usize).saturating_sub(2);
    format!("{p:.decimals$}%")
}

/// Latency by percentile, HdrHistogram style: the x axis spreads the tail (90%, 99%, 99.9%…
/// equally spaced), up to what the number of requests can tell.
pub fn percentiles(title: &str, s: &OpStats) -> Drawn {
    let x_end = (s.count.max(1) as f64).log10().clamp(1.0, 5.0);
    let steps = (x_end / 0.05).ceil() as usize;
    let mut points: Vec<(f64, f64)> = (0..=steps)
        .map(|k| {
            let x = (k as f64 * 0.05).min(x_end);
            let q = 1.0 - 10f64.powf(-x);
            (x, s.ms_at(q))
        })
        .collect();
    points.push((x_end, s.latency.max() as f64 / 1000.0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let y_max = top(points.iter().map(|p| p.1).fold(0.0, f64::max));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 15))
            .margin(10)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_end.ceil(), 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("percentile (%)")
            .y_desc("latency (ms)")
            .x_labels(x_end.ceil() as usize + 1)
            .y_labels(6)
            .x_label_formatter(&|v| nines_label(*v))
            .y_label_formatter(&|v| tick(*v))
            .light_line_style(BLACK.mix(0.04))
            .bold_line_style(BLACK.mix(0.15))
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 12))
            .draw()?;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), P50.stroke_width(2)))?
            .label(format!("{} requests", s.count))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], P50.stroke_width(3)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 11))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// The label of an outcome class, as HTTP names it.
fn class_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "2xx",
        Outcome::Conflict => "409",
        Outcome::Rejected => "4xx",
        Outcome::Error => "5xx",
    }
}

/// Requests by outcome: successes, then each failure code under its class (409, other 4xx,
/// 5xx and transport errors).
pub fn outcomes(title: &str, s: &OpStats) -> Drawn {
    let mut bars: Vec<(String, u64, RGBColor)> = vec![("2xx ok".into(), s.ok, OK)];
    for ((outcome, code), n) in &s.codes {
        let colour = if *outcome == Outcome::Conflict {
            CONFLICT
        } else {
            FAILED
        };
        bars.push((format!("{} {code}", class_label(*outcome)), *n, colour));
    }
    let n = bars.len() as i32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let x_max = top(bars.iter().map(|b| b.1 as f64).fold(0.0, f64::max));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 15))
            .margin(10)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(170)
            .build_cartesian_2d(0f64..x_max, (0..last_slot(n)).into_segmented())?;
        // Bar k is drawn at row n-1-k, so successes come first from the top.
        let row = |k: usize| n - 1 - k as i32;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let name = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get((n - 1 - *i) as usize).cloned().unwrap_or_else(|| " ".into())
            }
            SegmentValue::Last => " ".into(),
        };
        chart
            .configure_mesh()
            .x_desc("requests")
            .y_desc("outcome (class and code)")
            .x_labels(6)
            .y_labels(bars.len() + 1)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&name)
            .disable_y_mesh()
            .light_line_style(BLACK.mix(0.04))
            .bold_line_style(BLACK.mix(0.15))
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 12))
            .draw()?;
        chart.draw_series(bars.iter().enumerate().map(|(k, (_, v, colour))| {
            let i = row(k);
            let mut bar = Rectangle::new(
                [(0.0, SegmentValue::Exact(i)), (*v as f64, SegmentValue::Exact(i + 1))],
                colour.filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))?;
        chart.draw_series(bars.iter().enumerate().map(|(k, (_, v, _))| {
            Text::new(
                format!(" {v}"),
                (*v as f64, SegmentValue::CenterOf(row(k))),
                (FONT, 11).into_font().color(&BLACK),
            )
        }))?;
        root.present()?;
    }
    Ok(svg)
}

/// The end of a segmented axis of `n` bars. An integer range holds both its ends, so 0..n-1 is
/// n slots; one slot (0..0) would have no width, so a single bar gets a spare slot beside it.
fn last_slot(n: i32) -> i32 {
    (n - 1).max(1)
}

/// One strategy's figures for an operation, as compared.
pub struct Compared {
    /// The run's label.
    pub label: String,
    /// Successful operations per second.
    pub ok_per_s: f64,
    /// Attempts per second.
    pub attempts_per_s: f64,
    /// Latency p50, ms.
    pub p50: f64,
    /// Latency p99, ms.
    pub p99: f64,
}

/// A named set of bars of a comparison panel, one per strategy.
type Layer = (&'static str, Vec<Bar>);

/// A bar of a comparison panel: its height and the text above it.
struct Bar {
    value: f64,
    text: String,
}

/// The strategies side by side for one operation: successes per second, each labelled with the
/// attempts per second beside it (left; a race's attempts can be thousands of times its one
/// success, so they are told, not drawn), and p99 latency with p50 inside it (right).
pub fn comparison(title: &str, runs: &[Compared]) -> Drawn {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, WIDE).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, (FONT, 15))?;
        let (left, right) = root.split_horizontally(WIDE.0 / 2);
        let successes: Vec<Bar> = runs
            .iter()
            .map(|r| Bar {
                value: r.ok_per_s,
                text: format!(
                    "{}/s ({} attempts/s)",
                    tick(round3(r.ok_per_s)),
                    tick(round3(r.attempts_per_s))
                ),
            })
            .collect();
        let p99: Vec<Bar> = runs
            .iter()
            .map(|r| Bar {
                value: r.p99,
                text: format!("p99 {}", tick(round3(r.p99))),
            })
            .collect();
        let p50: Vec<Bar> = runs
            .iter()
            .map(|r| Bar {
                value: r.p50,
                text: format!("p50 {}", tick(round3(r.p50))),
            })
            .collect();
        let panels: [(_, &str, Vec<Layer>); 2] = [
            (&left, "successes per second (1/s)", vec![("successes/s", successes)]),
            (&right, "latency (ms)", vec![("p99", p99), ("p50", p50)]),
        ];
        let n = runs.len() as i32;
        let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
        let name = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get(*i as usize).cloned().unwrap_or_else(|| " ".into())
            }
            SegmentValue::Last => " ".into(),
        };
        for (area, y_desc, layers) in panels {
            // More headroom than other charts: the legend and the labels sit above the bars.
            let y_max = 1.25
                * top(layers
                    .iter()
                    .flat_map(|(_, bars)| bars.iter().map(|b| b.value))
                    .fold(0.0, f64::max));
            let mut chart = ChartBuilder::on(area)
                .margin(10)
                .margin_right(30)
                .margin_right(30)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d((0..last_slot(n)).into_segmented(), 0f64..y_max)?;
            chart
                .configure_mesh()
                .x_desc("strategy")
                .y_desc(y_desc)
                .x_labels(runs.len() + 1)
                .y_labels(6)
                .x_label_formatter(&name)
                .y_label_formatter(&|v| tick(*v))
                .disable_x_mesh()
                .light_line_style(BLACK.mix(0.04))
                .bold_line_style(BLACK.mix(0.15))
                .label_style((FONT, 11))
                .axis_desc_style((FONT, 12))
                .draw()?;
            let many = layers.len() > 1;
            for (layer, (layer_name, bars)) in layers.iter().enumerate() {
                // The first layer is the wider, lighter bar behind; the next sits inside it.
                let (margin, alpha) = if many && layer == 0 { (12, 0.35) } else { (28, 1.0) };
                let drawn = chart.draw_series(bars.iter().enumerate().map(|(i, bar)| {
                    let colour = STRATEGY_COLOURS[i % STRATEGY_COLOURS.len()];
                    let i = i as i32;
                    let mut rect = Rectangle::new(
                        [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), bar.value)],
                        colour.mix(alpha).filled(),
                    );
                    rect.set_margin(0, 0, margin, margin);
                    rect
                }))?;
                if many {
                    drawn.label(*layer_name).legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 14, y + 5)], BLACK.mix(alpha * 0.8).filled())
                    });
                }
                // Labels above the bar; an inner bar's label sits just inside its top, unless
                // the bar is too short to hold it.
                chart.draw_series(bars.iter().enumerate().map(|(i, bar)| {
                    let inside = many && layer > 0 && bar.value > 0.12 * y_max;
                    let (pos, colour) = if inside {
                        (Pos::new(HPos::Center, VPos::Top), WHITE)
                    } else {
                        (Pos::new(HPos::Center, VPos::Bottom), BLACK)
                    };
                    Text::new(
                        bar.text.clone(),
                        (SegmentValue::CenterOf(i as i32), bar.value),
                        (FONT, 11).into_font().color(&colour).pos(pos),
                    )
                }))?;
            }
            if many {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .label_font((FONT, 11))
                    .draw()?;
            }
        }
        root.present()?;
    }
    Ok(svg)
}

/// `v` to three significant figures, for a bar's label.
fn round3(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(2 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_short() {
        assert_eq!(tick(0.002), "0.002");
        assert_eq!(tick(1.5), "1.5");
        assert_eq!(tick(100.0), "100");
        assert_eq!(tick(12000.0), "12000");
        assert_eq!(tick(0.0), "0");
    }

    #[test]
    fn percentile_labels_name_the_nines() {
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(4.0), "99.99%");
    }

    #[test]
    fn bar_labels_keep_three_figures() {
        assert_eq!(round3(12345.0), 12300.0);
        assert_eq!(round3(0.012345), 0.0123);
        assert_eq!(round3(0.0), 0.0);
    }
}
