//! `report_chart`: the table and the chart of `benches/report.sh`.
//!
//! Reads `compare <metric> <a>=<value> <b>=<value> ratio=<a/b>` lines (as
//! `benches/compare.sh` prints them; other lines are ignored) and writes:
//!
//! - with `--svg PATH`, a bar chart of the ratios (SVG, plotters' SVG
//!   backend): one bar per line, on a log scale, growing from 1.0 (gort
//!   equal to the peer) to the ratio; green where the line's target is
//!   met, red where it is missed, blue where it has none; the target as a
//!   black tick on the bar's row; a failed side as `failed` with no bar;
//!   with `--only-targets`, only the lines that have a target;
//! - with `--table PATH`, the Markdown table of the report: metric (unit,
//!   and whether lower or higher is better for gort), gort's value, the
//!   peer's, the ratio, the target and whether it is met; then a line
//!   counting the targets met.
//!
//! The targets are those of the project's issues (2: switch; 3: yield,
//! spawn; 4: timers, echo; 5: ping-pong, mutex, pipeline, idle memory; 6:
//! kv, http), in [`target`].
//!
//! Usage: `report_chart LINES [--svg PATH [--only-targets]] [--table PATH]
//! [--title TEXT]`
//! (`LINES`: a file, `-` for stdin).

use std::{fmt::Write as _, io::Read};

use plotters::{
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

/// One `compare` line.
#[derive(Debug, Clone)]
struct Line {
    metric: String,
    base: (String, Value),
    peer: (String, Value),
    /// `None` for `ratio=na` (a side failed).
    ratio: Option<f64>,
}

/// A side's figure: a number, or `failed(<why>)` as printed.
#[derive(Debug, Clone)]
enum Value {
    Num(f64),
    Failed(String),
}

/// A target on the ratio gort/peer.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// ratio ≤ x (time, memory: lower is better).
    AtMost(f64),
    /// ratio ≥ x (throughput: higher is better).
    AtLeast(f64),
}

impl Bound {
    fn value(self) -> f64 {
        match self {
            Bound::AtMost(x) | Bound::AtLeast(x) => x,
        }
    }

    fn met(self, ratio: f64) -> bool {
        match self {
            Bound::AtMost(x) => ratio <= x,
            Bound::AtLeast(x) => ratio >= x,
        }
    }

    fn text(self) -> String {
        match self {
            Bound::AtMost(x) => format!("≤ {}", num(x)),
            Bound::AtLeast(x) => format!("≥ {}", num(x)),
        }
    }
}

/// kv lines at 50 connections (with or without pipelining), where the
/// kv targets apply.
fn kv_c50(m: &str) -> bool {
    m.starts_with("kv_") && (m.ends_with("_c50") || m.ends_with("_c50_p16"))
}

/// The target of a line, from the issues, if it has one.
fn target(metric: &str, peer: &str) -> Option<Bound> {
    use Bound::{AtLeast, AtMost};
    Some(match (metric, peer) {
        // Issue 2: no slower than corosensei; 100x cheaper than a thread switch.
        ("switch_roundtrip", "corosensei") => AtMost(1.0),
        ("switch_roundtrip", "os_thread") => AtMost(0.01),
        // Issue 3.
        ("yield", "go") => AtMost(0.3),
        ("yield", "may") => AtMost(1.0),
        ("spawn_ns", "go") => AtMost(0.3),
        ("spawn_ns", "tokio") => AtMost(1.0),
        (m, "may") if m.starts_with("spawn_ns") => AtMost(1.0),
        // Issue 4.
        ("timers_wall_ms", "go") => AtMost(0.7),
        ("timers_cpu_ms", "go") => AtMost(1.0),
        (m, "go") if m.starts_with("echo_rps_") => AtLeast(1.2),
        (m, "tokio") if m.starts_with("echo_rps_") => AtLeast(1.0),
        (m, "go") if m.starts_with("echo_p99_") => AtMost(1.0),
        // Issue 5.
        ("pingpong_1p", "go") => AtMost(0.3),
        ("pingpong_2p", "go") => AtMost(0.5),
        ("pingpong_1p" | "pingpong_2p", "may" | "tokio_ct" | "tokio_mt") => AtMost(1.0),
        ("mutex" | "pipeline", "go") => AtMost(1.0),
        ("idle_memory_100k", "go") => AtMost(2.0),
        (m, "may") if m.starts_with("idle_memory_") => AtMost(1.0),
        // Issue 6.
        (m, "go") if kv_c50(m) => AtLeast(1.2),
        (m, "redis") if kv_c50(m) => AtLeast(0.9),
        ("http_c50", "go") => AtLeast(1.5),
        ("http_c50", "hyper") => AtLeast(1.0),
        _ => return None,
    })
}

/// Whether a higher figure is better for gort (throughput), rather than
/// a lower one (time, memory).
fn higher_is_better(metric: &str) -> bool {
    ["echo_rps_", "kv_", "http_"]
        .iter()
        .any(|p| metric.starts_with(p))
}

/// The unit of a metric's figures.
fn unit(metric: &str) -> &'static str {
    const UNITS: [(&str, &str); 18] = [
        ("switch_roundtrip", "ns"),
        ("stack_create", "ns"),
        ("yield", "ns"),
        ("spawn_ns", "ns"),
        ("spawn_peak_rss", "MiB"),
        ("spawn_wg_peak_rss", "MiB"),
        ("spawn_floor_peak_rss", "MiB"),
        ("spawn_wg_ns", "ns"),
        ("spawn_floor_ns", "ns"),
        ("timers_", "ms"),
        ("echo_rps_", "req/s"),
        ("echo_p99_", "µs"),
        ("pingpong", "ns"),
        ("mutex", "ns"),
        ("pipeline", "ns"),
        ("idle_memory", "B"),
        ("kv_", "req/s"),
        ("http_", "req/s"),
    ];
    UNITS
        .iter()
        .find(|(p, _)| metric.starts_with(p))
        .map_or("", |(_, u)| u)
}

/// `x` with thousands separators above 10,000, else with up to 3
/// significant decimals.
fn num(x: f64) -> String {
    if x.abs() >= 10_000.0 {
        let s = format!("{:.0}", x.abs());
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if x < 0.0 { format!("-{out}") } else { out }
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        let s = format!("{x:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_owned()
    }
}

/// A ratio with at least 3 decimals and 3 significant digits.
fn ratio_text(r: f64) -> String {
    let decimals = (2 - r.log10().floor() as i32).max(3) as usize;
    format!("{r:.decimals$}")
}

fn parse_value(v: &str) -> Option<Value> {
    if v.starts_with("failed") {
        Some(Value::Failed(v.to_owned()))
    } else {
        v.parse().ok().map(Value::Num)
    }
}

fn parse_line(line: &str) -> Option<Line> {
    let mut words = line.split_whitespace();
    if words.next()? != "compare" {
        return None;
    }
    let metric = words.next()?.to_owned();
    let side = |w: Option<&str>| {
        let (name, v) = w?.split_once('=')?;
        Some((name.to_owned(), parse_value(v)?))
    };
    let base = side(words.next())?;
    let peer = side(words.next())?;
    let printed = words.next()?.strip_prefix("ratio=")?;
    // From the figures when both are there (the line rounds it to 3
    // decimals), else as printed (`na` when a side failed).
    let ratio = match (&base.1, &peer.1) {
        (Value::Num(a), Value::Num(b)) => Some(a / b),
        _ => printed.parse().ok(),
    }
    .filter(|r: &f64| r.is_finite() && *r > 0.0);
    Some(Line {
        metric,
        base,
        peer,
        ratio,
    })
}

fn show(v: &Value) -> String {
    match v {
        Value::Num(x) => num(*x),
        Value::Failed(f) => f.clone(),
    }
}

/// The Markdown table.
fn table(lines: &[Line]) -> String {
    let mut t = String::from(
        "| metric | gort | peer | ratio gort/peer | target | met? |\n\
         |---|---:|---|---:|---:|:---:|\n",
    );
    let (mut met, mut targets) = (0, 0);
    for l in lines {
        let better = if higher_is_better(&l.metric) {
            "↑"
        } else {
            "↓"
        };
        let bound = target(&l.metric, &l.peer.0);
        let verdict = match (bound, l.ratio) {
            (Some(b), Some(r)) => {
                targets += 1;
                if b.met(r) {
                    met += 1;
                    "yes"
                } else {
                    "**no**"
                }
            }
            (Some(_), None) => {
                targets += 1;
                "n/a"
            }
            (None, _) => "",
        };
        let _ = writeln!(
            t,
            "| `{}` ({} {better}) | {} | {}: {} | {} | {} | {verdict} |",
            l.metric,
            unit(&l.metric),
            show(&l.base.1),
            l.peer.0,
            show(&l.peer.1),
            l.ratio.map_or("n/a".to_owned(), ratio_text),
            bound.map_or(String::new(), Bound::text),
        );
    }
    let _ = writeln!(
        t,
        "\nTargets met: **{met} of {targets}** (↓: lower is better for gort, so a ratio \
         below 1 favours gort; ↑: higher is better, a ratio above 1 favours gort)."
    );
    t
}

/// Layout of the chart, in pixels.
const WIDTH: u32 = 1100;
const ROW: i32 = 20;
const TOP: i32 = 84;
const LABEL_RIGHT: i32 = 330;
const PLOT_LEFT: i32 = 340;
const PLOT_RIGHT: i32 = 930;
const VALUE_LEFT: i32 = 942;
const BOTTOM: i32 = 60;

const GREEN_BAR: RGBColor = RGBColor(46, 160, 67);
const RED_BAR: RGBColor = RGBColor(207, 34, 46);
const BLUE_BAR: RGBColor = RGBColor(84, 130, 200);
const GRID: RGBColor = RGBColor(225, 225, 225);
const GROUP: RGBColor = RGBColor(190, 190, 190);

/// The family of a metric, for the separators between groups of rows.
fn family(metric: &str) -> &str {
    metric.split('_').next().unwrap_or(metric)
}

fn chart(lines: &[Line], title: &str, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let rows = lines.len().max(1) as i32;
    let height = (TOP + rows * ROW + BOTTOM) as u32;
    // The x range: decades around every ratio and target, and 0.5..2 at least.
    let (mut lo, mut hi) = (0.5f64, 2.0f64);
    for l in lines {
        for x in l
            .ratio
            .into_iter()
            .chain(target(&l.metric, &l.peer.0).map(Bound::value))
        {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    let (lo_exp, hi_exp) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let (llo, lhi) = (f64::from(lo_exp), f64::from(hi_exp));
    let px = |x: f64| {
        let t = (x.log10() - llo) / (lhi - llo);
        PLOT_LEFT + (t.clamp(0.0, 1.0) * f64::from(PLOT_RIGHT - PLOT_LEFT)).round() as i32
    };

    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let font = |size: f64| ("sans-serif", size).into_font();
    let left = |size: f64| {
        font(size)
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center))
    };
    root.draw(&Text::new(title.to_owned(), (12, 18), left(18.0)))?;
    root.draw(&Text::new(
        "Bars: gort/peer on a log scale, from 1.0 (as fast or as small as the peer) to the ratio. \
         ↓: lower is better for gort (time, memory); ↑: higher is better (requests/s)."
            .to_owned(),
        (12, 42),
        left(12.0),
    ))?;
    root.draw(&Text::new(
        "Green: the issue's target is met; red: missed; blue: no target. Black tick: the target."
            .to_owned(),
        (12, 60),
        left(12.0),
    ))?;

    let plot_top = TOP;
    let plot_bottom = TOP + rows * ROW;
    // Grid: 1, 2 and 5 times every power of ten in range.
    let mut ticks = Vec::new();
    for e in lo_exp..=hi_exp {
        for m in [1.0, 2.0, 5.0] {
            let x = m * 10f64.powi(e);
            if x >= 10f64.powi(lo_exp) * 0.999 && x <= 10f64.powi(hi_exp) * 1.001 {
                ticks.push(x);
            }
        }
    }
    for &x in &ticks {
        let p = px(x);
        root.draw(&PathElement::new(
            vec![(p, plot_top), (p, plot_bottom)],
            GRID.stroke_width(1),
        ))?;
        let decimals = (-x.log10().floor()).max(0.0) as usize;
        root.draw(&Text::new(
            format!("{x:.decimals$}"),
            (p, plot_bottom + 12),
            font(11.0)
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
    }
    root.draw(&Text::new(
        "ratio gort/peer (log scale)".to_owned(),
        ((PLOT_LEFT + PLOT_RIGHT) / 2, plot_bottom + 34),
        font(12.0)
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;

    let one = px(1.0);
    let mut last_family = "";
    for (i, l) in lines.iter().enumerate() {
        let y0 = TOP + i as i32 * ROW;
        let mid = y0 + ROW / 2;
        let fam = family(&l.metric);
        if i > 0 && fam != last_family {
            root.draw(&PathElement::new(
                vec![(8, y0), (WIDTH as i32 - 8, y0)],
                GROUP.stroke_width(1),
            ))?;
        }
        last_family = fam;
        let arrow = if higher_is_better(&l.metric) {
            "↑"
        } else {
            "↓"
        };
        root.draw(&Text::new(
            format!("{} vs {} {arrow}", l.metric, l.peer.0),
            (LABEL_RIGHT, mid),
            font(12.0)
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        let bound = target(&l.metric, &l.peer.0);
        let Some(r) = l.ratio else {
            root.draw(&Text::new(
                "failed".to_owned(),
                (VALUE_LEFT, mid),
                font(12.0)
                    .color(&RED_BAR)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            continue;
        };
        let color = match bound {
            Some(b) if b.met(r) => GREEN_BAR,
            Some(_) => RED_BAR,
            None => BLUE_BAR,
        };
        let end = px(r);
        let (a, b) = if end >= one {
            (one, end.max(one + 1))
        } else {
            (end, one)
        };
        root.draw(&Rectangle::new(
            [(a, y0 + 4), (b, y0 + ROW - 4)],
            color.filled(),
        ))?;
        if let Some(b) = bound {
            let t = px(b.value());
            root.draw(&PathElement::new(
                vec![(t, y0 + 1), (t, y0 + ROW - 1)],
                BLACK.stroke_width(2),
            ))?;
        }
        let text = match bound {
            Some(b) => format!("{} ({})", ratio_text(r), b.text()),
            None => ratio_text(r),
        };
        root.draw(&Text::new(
            text,
            (VALUE_LEFT, mid),
            font(12.0)
                .color(&color)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    // The 1.0 line, over the bars.
    root.draw(&PathElement::new(
        vec![(one, plot_top - 4), (one, plot_bottom)],
        BLACK.stroke_width(1),
    ))?;
    root.present()?;
    Ok(())
}

fn usage() -> ! {
    eprintln!(
        "usage: report_chart LINES [--svg PATH [--only-targets]] [--table PATH] [--title TEXT]"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut input, mut svg, mut md) = (None, None, None);
    let mut title = "gort vs its peers".to_owned();
    let mut only_targets = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--svg" => svg = Some(val()),
            "--table" => md = Some(val()),
            "--title" => title = val(),
            "--only-targets" => only_targets = true,
            s if input.is_none() && (s == "-" || !s.starts_with('-')) => input = Some(s.to_owned()),
            _ => usage(),
        }
    }
    let Some(input) = input else { usage() };
    let text = if input == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).expect("read stdin");
        s
    } else {
        std::fs::read_to_string(&input).unwrap_or_else(|e| {
            eprintln!("report_chart: cannot read {input}: {e}");
            std::process::exit(1)
        })
    };
    let lines: Vec<Line> = text.lines().filter_map(parse_line).collect();
    if lines.is_empty() {
        eprintln!("report_chart: no `compare` lines in {input}");
    }
    if let Some(path) = md {
        std::fs::write(&path, table(&lines)).unwrap_or_else(|e| {
            eprintln!("report_chart: cannot write {path}: {e}");
            std::process::exit(1)
        });
    }
    let charted: Vec<Line> = lines
        .iter()
        .filter(|l| !only_targets || target(&l.metric, &l.peer.0).is_some())
        .cloned()
        .collect();
    if let Some(path) = svg
        && let Err(e) = chart(&charted, &title, &path)
    {
        eprintln!("report_chart: cannot draw {path}: {e}");
        std::process::exit(1)
    }
}
