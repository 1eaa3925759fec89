//! Charts drawn as inline SVG with plotters' SVG backend (the crate
//! criterion draws its reports with; no font files, no bitmap code: text is
//! left to the browser as SVG `<text>`).

use super::chart::{Chart, ChartKind, FillSeries, LatencySeries, RatioBar, Series, StackedBar};
use plotters::coord::Shift;
use plotters::prelude::*;

const W: u32 = 960;
const H: u32 = 420;
const FONT: &str = "sans-serif";

type Fallible = Result<(), Box<dyn std::error::Error>>;

/// A colour per series, distinguishable and printable.
fn colour(i: usize) -> RGBColor {
    const P: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(23, 190, 207),
    ];
    P[i % P.len()]
}

/// Draws `chart` as an `<svg>` element, or says in one line why it could not.
pub fn render(chart: &Chart) -> Result<String, String> {
    let h = match &chart.kind {
        ChartKind::Ratios(b) => (90 + 30 * b.len() as u32).max(200),
        ChartKind::Stacked(b) => (110 + 70 * b.len() as u32).max(220),
        _ => H,
    };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (W, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let drawn = match &chart.kind {
            ChartKind::Latency(s) => latency(&root, s),
            ChartKind::MemoryVsN { measured, cited } => memory(&root, measured, cited),
            ChartKind::Fill(s) => fill(&root, s),
            ChartKind::Stacked(b) => stacked(&root, b),
            ChartKind::Throughput(s) => throughput(&root, s),
            ChartKind::Ratios(b) => ratios(&root, b),
        };
        drawn.map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
) -> Fallible
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

/// Range over positive values, padded by a factor on each side (for log axes).
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 1.0..10.0;
    }
    lo / 1.5..hi * 1.5
}

fn time_label(ns: f64) -> String {
    super::format::time(ns)
}

fn latency(root: &DrawingArea<SVGBackend, Shift>, series: &[LatencySeries]) -> Fallible {
    let x = log_range(series.iter().flat_map(|s| {
        let h = &s.histogram;
        [h.edge(0), h.edge(h.counts.len()), s.p99]
    }));
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x.log_scale(), 0.0..1.0f64)?;
    chart
        .configure_mesh()
        .x_desc("time per operation")
        .y_desc("share of samples ≤ time")
        .x_label_formatter(&|v| time_label(*v))
        .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .label_style((FONT, 13))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let c = colour(i);
        let h = &s.histogram;
        let total = h.total().max(1) as f64;
        // The ECDF as steps: flat across each bin, rising at its upper edge.
        let mut pts = vec![(h.edge(0), 0.0)];
        let mut seen = 0u64;
        for (b, n) in h.counts.iter().enumerate() {
            seen += n;
            pts.push((h.edge(b + 1), seen as f64 / total));
        }
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
            .label(format!(
                "{}: median {}, p99 {}",
                s.label,
                time_label(s.median),
                time_label(s.p99)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series([Circle::new((s.median, 0.5), 6, c.stroke_width(2))])?;
        chart.draw_series([Cross::new((s.p99, 0.99), 6, c.stroke_width(2))])?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn memory(
    root: &DrawingArea<SVGBackend, Shift>,
    measured: &[Series],
    cited: &[Series],
) -> Fallible {
    let all = || measured.iter().chain(cited).flat_map(|s| s.points.iter());
    let x = log_range(all().map(|p| p.0));
    let y = log_range(all().map(|p| p.1));
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x.log_scale(), y.log_scale())?;
    chart
        .configure_mesh()
        .x_desc("live instances (N)")
        .y_desc("total resident memory")
        .x_label_formatter(&|v| super::format::count(v.round() as u64))
        .y_label_formatter(&|v| super::format::bytes(*v))
        .label_style((FONT, 13))
        .draw()?;
    for (i, s) in measured.iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(s.points.clone(), c.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
    }
    for (j, s) in cited.iter().enumerate() {
        let c = colour(measured.len() + j + 2);
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|p| TriangleMarker::new(*p, 7, c.stroke_width(2))),
            )?
            .label(s.label.clone())
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn fill(root: &DrawingArea<SVGBackend, Shift>, series: &[FillSeries]) -> Fallible {
    let t_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.seconds))
        .fold(0.0, f64::max)
        .max(1e-3);
    let n_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.instances))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let m_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.rss_bytes))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max * 1.05, 0.0..n_max * 1.1)?
        .set_secondary_coord(0.0..t_max * 1.05, 0.0..m_max * 1.1);
    chart
        .configure_mesh()
        .x_desc("seconds since filling started")
        .y_desc("live instances")
        .y_label_formatter(&|v| super::format::count(v.round() as u64))
        .label_style((FONT, 13))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("resident memory")
        .y_label_formatter(&|v| super::format::bytes(*v))
        .label_style((FONT, 13))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let c = colour(i);
        let n: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (p.seconds, p.instances as f64))
            .collect();
        let m: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (p.seconds, p.rss_bytes as f64))
            .collect();
        chart
            .draw_series(LineSeries::new(n.clone(), c.stroke_width(2)))?
            .label(format!("{}: live instances", s.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_secondary_series(DashedLineSeries::new(m, 6, 4, c.stroke_width(1)))?
            .label(format!("{}: resident memory", s.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], c.stroke_width(1)));
        if let Some(stop) = n.last() {
            chart.draw_series([EmptyElement::at(*stop)
                + Cross::new((0, 0), 7, c.stroke_width(3))
                + Text::new(
                    format!("stop: {}", s.limit.name()),
                    (-150, -18),
                    (FONT, 13).into_font().color(&c),
                )])?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn stacked(root: &DrawingArea<SVGBackend, Shift>, bars: &[StackedBar]) -> Fallible {
    let total = |b: &StackedBar| b.parts.iter().map(|p| p.1.max(0.0)).sum::<f64>();
    let x_max = bars.iter().map(total).fold(0.0, f64::max).max(1.0);
    let names: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for p in bars.iter().flat_map(|b| b.parts.iter()) {
            if !v.contains(&p.0) {
                v.push(p.0.clone());
            }
        }
        v
    };
    let n = bars.len();
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(170)
        .build_cartesian_2d(0.0..x_max * 1.45, -0.5..n as f64 - 0.5)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(1))
        .x_desc("milliseconds (median of each part)")
        .x_label_formatter(&|v| format!("{:.1}", v / 1e6))
        .y_label_formatter(&|v| {
            let i = v.round();
            // The first bar is drawn at the top.
            if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                labels.get(n - 1 - i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .label_style((FONT, 13))
        .draw()?;
    // A legend entry per part name, once.
    for (k, name) in names.iter().enumerate() {
        let c = colour(k);
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
    }
    for (i, b) in bars.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let mut x0 = 0.0;
        for (name, v) in &b.parts {
            let k = names.iter().position(|nm| nm == name).unwrap_or(0);
            let x1 = x0 + v.max(0.0);
            chart.draw_series([Rectangle::new(
                [(x0, y - 0.35), (x1, y + 0.35)],
                colour(k).filled(),
            )])?;
            x0 = x1;
        }
        chart.draw_series([Text::new(
            format!("{:.2} ms", x0 / 1e6),
            (x0, y),
            (FONT, 13).into_font(),
        )])?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn throughput(root: &DrawingArea<SVGBackend, Shift>, series: &[Series]) -> Fallible {
    let t_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.5..t_max + 0.5, 0.0..y_max * 1.15)?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("operations per second")
        .x_labels((t_max as usize).clamp(2, 16))
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 1e-6 {
                format!("{}", v.round() as i64)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| super::format::count(v.round() as u64))
        .label_style((FONT, 13))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(s.points.clone(), c.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn ratios(root: &DrawingArea<SVGBackend, Shift>, bars: &[RatioBar]) -> Fallible {
    let finite = |v: f64| v.is_finite().then_some(v);
    let (lo, hi) = bars
        .iter()
        .flat_map(|b| {
            [
                finite(b.ratio),
                finite(b.ci.0),
                finite(b.ci.1),
                Some(b.band.0),
                Some(b.band.1),
            ]
        })
        .flatten()
        .fold((1.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = (hi - lo).max(0.02) * 0.1;
    let n = bars.len();
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(250)
        .build_cartesian_2d((lo - pad)..(hi + pad), -0.5..n.max(1) as f64 - 0.5)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(1))
        .x_desc("head / base")
        .x_label_formatter(&|v| format!("{v:.2}"))
        .y_label_formatter(&|v| {
            let i = v.round();
            // The first bar is drawn at the top.
            if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                labels.get(n - 1 - i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .label_style((FONT, 12))
        .draw()?;
    let red = RGBColor(200, 30, 30);
    for (i, b) in bars.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        chart.draw_series([Rectangle::new(
            [(b.band.0, y - 0.4), (b.band.1, y + 0.4)],
            RGBColor(44, 160, 44).mix(0.15).filled(),
        )])?;
        let limit = b.limit();
        chart.draw_series([PathElement::new(
            vec![(limit, y - 0.4), (limit, y + 0.4)],
            red.stroke_width(2),
        )])?;
        chart.draw_series([PathElement::new(
            vec![(1.0, y - 0.4), (1.0, y + 0.4)],
            BLACK.mix(0.5).stroke_width(1),
        )])?;
        let c = match b.verdict.as_str() {
            "regression" => red,
            "improvement" => RGBColor(44, 160, 44),
            "cannot judge" => RGBColor(127, 127, 127),
            _ => RGBColor(31, 119, 180),
        };
        if b.ci.0.is_finite() && b.ci.1.is_finite() {
            chart.draw_series([PathElement::new(
                vec![(b.ci.0, y), (b.ci.1, y)],
                c.stroke_width(3),
            )])?;
        }
        if b.ratio.is_finite() {
            chart.draw_series([EmptyElement::at((b.ratio, y))
                + Circle::new((0, 0), 5, c.filled())
                + Text::new(
                    format!("{:.3} {}", b.ratio, b.verdict),
                    (8, -16),
                    (FONT, 12).into_font().color(&c),
                )])?;
        } else {
            chart.draw_series([Text::new(
                format!("no ratio ({})", b.verdict),
                (1.0, y),
                (FONT, 12).into_font().color(&c),
            )])?;
        }
    }
    Ok(())
}
