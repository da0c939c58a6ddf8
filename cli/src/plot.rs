//! SVG figures with plotters (SVG backend: text stays text, no system fonts needed).
//!
//! Small, declarative figure types the claims fill in: [`LinePlot`] (several series, optional log axes,
//! optional reference lines) and [`Histogram`]. Each renders to an SVG string.
use anyhow::{anyhow, Result};
use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// Palette of data-series colors: matplotlib's tab10 without its grey (grey is for reference lines), in
/// an order whose neighbours differ in hue *and* lightness (blue, orange, green, red, purple, brown, pink,
/// olive, cyan). Series `i` also gets marker `i % 4`, so two series never share colour and marker before
/// the 36th.
const COLORS: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Reference lines (thresholds, fits, predicted slopes): dark grey, thin, dashed, drawn *under* the data.
const REF_COLOR: RGBColor = RGBColor(90, 90, 90);

/// Dash patterns (dash, gap) of reference lines, cycled over a figure's reference lines so that two of them
/// are told apart in the legend.
const REF_DASHES: [(u32, u32); 3] = [(7, 4), (2, 3), (14, 4)];

/// Chart size in pixels (the legend goes below it, outside the plotting area). Every figure is this wide
/// (multi-panel figures stack their panels, [`stacked`]), which fits the report's column.
pub const CHART_W: u32 = 760;
const CHART_H: u32 = 440;
const _: () = assert!(CHART_W <= crate::verify::report::COLUMN_PX);
/// Tick positions of a log10 axis on `[lo, hi]`: labelled ("bold") points — every decade, plus 2 and 5 times
/// it when the range spans at most 3 decades, plus all of 1..9 times it when it spans less than one — and
/// light grid lines at 1..9 times every decade (plotters' own choice leaves whole decades unlabelled).
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let span = hi.log10() - lo.log10();
    let mantissas: &[f64] = if span < 1.0 {
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    } else if span <= 3.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let stride = ((b - a) / 10 + 1).max(1);
    let inside = |v: &f64| *v >= lo * (1.0 - 1e-12) && *v <= hi * (1.0 + 1e-12);
    let mut bold = Vec::new();
    let mut light = Vec::new();
    for k in a..=b {
        let dec = 10f64.powi(k);
        if (k - a) % stride == 0 {
            bold.extend(mantissas.iter().map(|m| m * dec).filter(inside));
        }
        light.extend((1..10).map(|m| m as f64 * dec).filter(inside));
    }
    (bold, light)
}

/// Legend row height and font size (also the axis descriptions').
const LEGEND_ROW: u32 = 18;
const LEGEND_FONT: u32 = 13;
/// Tick label font size (plotters' default, about 10 px, is hard to read at the report's size).
const TICK_FONT: u32 = 12;

/// Marker shapes, cycled together with the colors (series `i` gets shape `i % 4`), so that series stay
/// distinguishable beyond the palette and in grey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Cross,
];

/// Line dash patterns (length of dash, gap) in pixels of data series: a series' *variant* (by default
/// `i / 9`, solid for the first nine) picks one, together with its marker.
const DASHES: [Option<(u32, u32)>; 3] = [None, Some((8, 5)), Some((2, 4))];

/// A compact tick label: at most 3 significant digits, scientific notation outside $[10^{-3}, 10^4)$, no
/// trailing zeros (`0.05`, `12.5`, `1e-6`, `2.5e5`).
pub fn tick_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    let a = v.abs();
    if (1e-3..1e4).contains(&a) {
        let digits = (2 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        let s = format!("{v:.2e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = if mant.contains('.') {
            mant.trim_end_matches('0').trim_end_matches('.')
        } else {
            mant
        };
        format!("{mant}e{exp}")
    }
}

/// The label of tick `v` on an axis of extent `range`: on a linear axis a tick that is zero up to rounding
/// (|v| < 1e-12 of the range: −5.55e-17 for 0) prints as 0; a log axis has no zero, so its ticks (1e-13 on
/// an axis from 1e-14 to 10) print as they are.
pub fn axis_tick(v: f64, range: f64, log: bool) -> String {
    if log {
        tick_label(v)
    } else {
        tick_label(snap_zero(v, range))
    }
}

/// `v`, or 0 when it is zero up to rounding on an axis of extent `range`: |v| < 1e-12·range.
pub fn snap_zero(v: f64, range: f64) -> f64 {
    if v.abs() < 1e-12 * range.abs() {
        0.0
    } else {
        v
    }
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A polyline.
    Line,
    /// Markers only.
    Points,
    /// Both.
    LinePoints,
}

/// One named series of (x, y) points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Drawing style.
    pub style: Style,
    /// A reference (a fit, a predicted slope, a bound): thin, grey, dashed, drawn under the data and not
    /// counted in the data series' colours.
    pub reference: bool,
    /// Palette index of the colour (default: the series' index among the data series).
    pub color: Option<usize>,
    /// Variant: picks the marker (`variant % 4`) and the dash pattern (`variant % 3`) — default: marker
    /// by the series' index, solid. Series of a grid (method × case) take colour by one factor and
    /// variant by the other.
    pub variant: Option<usize>,
}

impl Series {
    fn new(label: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Self {
        Self {
            label: label.into(),
            points,
            style,
            reference: false,
            color: None,
            variant: None,
        }
    }
    /// A polyline.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Style::Line)
    }
    /// Markers.
    pub fn points(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Style::Points)
    }
    /// Polyline with markers.
    pub fn line_points(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Style::LinePoints)
    }
    /// A reference line (fit, predicted slope): thin, grey, dashed, under the data.
    pub fn reference(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            reference: true,
            ..Self::new(label, points, Style::Line)
        }
    }
    /// This series in palette colour `color` and variant `variant` (marker and dash pattern).
    pub fn styled(mut self, color: usize, variant: usize) -> Self {
        self.color = Some(color);
        self.variant = Some(variant);
        self
    }
}

/// A line/scatter plot.
#[derive(Clone, Debug, Default)]
pub struct LinePlot {
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// log10 x axis.
    pub log_x: bool,
    /// log10 y axis.
    pub log_y: bool,
    /// The series.
    pub series: Vec<Series>,
    /// Horizontal reference lines (label, y).
    pub hlines: Vec<(String, f64)>,
}

fn bounds(vals: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in vals {
        if v.is_finite() && (!log || v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let (a, b) = (lo.log10(), hi.log10());
        let pad = ((b - a) * 0.05).max(0.1);
        (10f64.powf(a - pad), 10f64.powf(b + pad))
    } else {
        let pad = ((hi - lo) * 0.05).max(1e-12 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    }
}

/// One legend entry: label, color, whether a line and/or markers are shown, marker shape, dash pattern,
/// line width.
struct LegendItem {
    label: String,
    color: RGBColor,
    line: bool,
    marker: Option<Marker>,
    dash: Option<(u32, u32)>,
    width: u32,
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plot: {e}")
}

/// Draw `marker` at pixel position `(x, y)` on a drawing area in pixel coordinates.
fn draw_marker_px<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    marker: Marker,
    (x, y): (i32, i32),
    c: RGBColor,
) -> Result<()> {
    match marker {
        Marker::Circle => area.draw(&Circle::new((x, y), 3, c.filled())),
        Marker::Triangle => area.draw(&TriangleMarker::new((x, y), 4, c.filled())),
        Marker::Square => area.draw(&Rectangle::new(
            [(x - 3, y - 3), (x + 3, y + 3)],
            c.filled(),
        )),
        Marker::Cross => area.draw(&Cross::new((x, y), 4, c.stroke_width(2))),
    }
    .map_err(plot_err)
}

/// A log10 axis on `[lo, hi]` with the ticks of [`log_ticks`].
fn log_axis(
    lo: f64,
    hi: f64,
) -> plotters::coord::combinators::WithKeyPoints<plotters::coord::combinators::LogCoord<f64>> {
    let (bold, light) = log_ticks(lo, hi);
    (lo..hi)
        .log_scale()
        .with_key_points(bold)
        .with_light_points(light)
}

impl LinePlot {
    /// The legend entries, in drawing order: the series, then the reference lines.
    fn legend(&self) -> Vec<LegendItem> {
        let (mut data_i, mut ref_i) = (0usize, 0usize);
        let mut items: Vec<LegendItem> = self
            .series
            .iter()
            .map(|s| {
                if s.reference {
                    ref_i += 1;
                    return LegendItem {
                        label: s.label.clone(),
                        color: REF_COLOR,
                        line: true,
                        marker: None,
                        dash: Some(REF_DASHES[(ref_i - 1) % REF_DASHES.len()]),
                        width: 1,
                    };
                }
                let i = data_i;
                data_i += 1;
                let (marker, dash) = match s.variant {
                    Some(v) => (MARKERS[v % MARKERS.len()], DASHES[v % DASHES.len()]),
                    None => (
                        MARKERS[i % MARKERS.len()],
                        DASHES[(i / COLORS.len()) % DASHES.len()],
                    ),
                };
                LegendItem {
                    label: s.label.clone(),
                    color: COLORS[s.color.unwrap_or(i) % COLORS.len()],
                    line: matches!(s.style, Style::Line | Style::LinePoints),
                    marker: matches!(s.style, Style::Points | Style::LinePoints).then_some(marker),
                    dash,
                    width: 2,
                }
            })
            .collect();
        items.extend(self.hlines.iter().map(|(label, _)| {
            ref_i += 1;
            LegendItem {
                label: label.clone(),
                color: REF_COLOR,
                line: true,
                marker: None,
                dash: Some(REF_DASHES[(ref_i - 1) % REF_DASHES.len()]),
                width: 1,
            }
        }));
        items
    }

    /// Render to an SVG document: the chart on top, the legend below it (outside the plotting area, so it
    /// never covers data), tick labels with at most 3 significant digits.
    pub fn to_svg(&self) -> Result<String> {
        let items = self.legend();
        let two_columns = items.len() > 3 && items.iter().all(|it| it.label.chars().count() <= 48);
        let rows = if two_columns {
            items.len().div_ceil(2)
        } else {
            items.len()
        } as u32;
        let legend_h = if items.is_empty() {
            0
        } else {
            rows * LEGEND_ROW + 10
        };
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (CHART_W, CHART_H + legend_h))
                .into_drawing_area();
            root.fill(&WHITE).map_err(plot_err)?;
            let (chart_area, legend_area) = root.split_vertically(CHART_H);
            let xs = self
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0));
            let ys = self
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .chain(self.hlines.iter().map(|h| h.1));
            let (x0, x1) = bounds(xs, self.log_x);
            let (y0, y1) = bounds(ys, self.log_y);
            let (log_x, log_y) = (self.log_x, self.log_y);
            let fmt_x = |v: &f64| axis_tick(*v, x1 - x0, log_x);
            let fmt_y = |v: &f64| axis_tick(*v, y1 - y0, log_y);
            macro_rules! draw {
                ($chart:expr) => {{
                    let mut chart = $chart;
                    chart
                        .configure_mesh()
                        .x_desc(self.x_label.as_str())
                        .y_desc(self.y_label.as_str())
                        .x_label_formatter(&fmt_x)
                        .y_label_formatter(&fmt_y)
                        .x_labels(10)
                        .y_labels(10)
                        .label_style(("sans-serif", TICK_FONT))
                        .axis_desc_style(("sans-serif", LEGEND_FONT))
                        .light_line_style(RGBColor(242, 242, 242))
                        .draw()
                        .map_err(plot_err)?;
                    let keep = |p: &(f64, f64)| {
                        p.0.is_finite()
                            && p.1.is_finite()
                            && (!self.log_x || p.0 > 0.0)
                            && (!self.log_y || p.1 > 0.0)
                    };
                    // Reference lines first, so the data are drawn over them; then each data series,
                    // its line and then its markers, in order (a later series lies on top: the means
                    // over the cloud of samples they average).
                    let ref_lines = self
                        .series
                        .iter()
                        .zip(&items)
                        .filter(|(s, _)| s.reference)
                        .map(|(s, it)| (s.points.iter().copied().filter(keep).collect::<Vec<_>>(), it))
                        .chain(self.hlines.iter().zip(&items[self.series.len()..]).map(
                            |((_, y), it)| (vec![(x0, *y), (x1, *y)], it),
                        ));
                    for (pts, it) in ref_lines {
                        let (d, g) = it.dash.unwrap_or((6, 4));
                        chart
                            .draw_series(DashedLineSeries::new(
                                pts,
                                d,
                                g,
                                it.color.stroke_width(it.width),
                            ))
                            .map_err(plot_err)?;
                    }
                    let data: Vec<(Vec<(f64, f64)>, &LegendItem)> = self
                        .series
                        .iter()
                        .zip(&items)
                        .filter(|(s, _)| !s.reference)
                        .map(|(s, it)| (s.points.iter().copied().filter(keep).collect(), it))
                        .collect();
                    for (pts, it) in &data {
                        if it.line {
                            let style = it.color.stroke_width(it.width);
                            match it.dash {
                                None => chart
                                    .draw_series(LineSeries::new(pts.clone(), style))
                                    .map(|_| ()),
                                Some((d, g)) => chart
                                    .draw_series(DashedLineSeries::new(pts.clone(), d, g, style))
                                    .map(|_| ()),
                            }
                            .map_err(plot_err)?;
                        }
                        let c = it.color;
                        if let Some(marker) = it.marker {
                            match marker {
                                Marker::Circle => chart
                                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                                    .map(|_| ()),
                                Marker::Triangle => chart
                                    .draw_series(
                                        pts.iter().map(|&p| TriangleMarker::new(p, 4, c.filled())),
                                    )
                                    .map(|_| ()),
                                Marker::Square => chart
                                    .draw_series(pts.iter().map(|&p| {
                                        EmptyElement::at(p)
                                            + Rectangle::new([(-3, -3), (3, 3)], c.filled())
                                    }))
                                    .map(|_| ()),
                                Marker::Cross => chart
                                    .draw_series(
                                        pts.iter().map(|&p| Cross::new(p, 4, c.stroke_width(2))),
                                    )
                                    .map(|_| ()),
                            }
                            .map_err(plot_err)?;
                        }
                    }
                }};
            }
            let mut b = ChartBuilder::on(&chart_area);
            b.caption(self.title.as_str(), ("sans-serif", 17))
                .margin(12)
                .x_label_area_size(42)
                .y_label_area_size(70);
            match (self.log_x, self.log_y) {
                (false, false) => draw!(b.build_cartesian_2d(x0..x1, y0..y1).map_err(plot_err)?),
                (true, false) => draw!(b
                    .build_cartesian_2d(log_axis(x0, x1), y0..y1)
                    .map_err(plot_err)?),
                (false, true) => draw!(b
                    .build_cartesian_2d(x0..x1, log_axis(y0, y1))
                    .map_err(plot_err)?),
                (true, true) => draw!(b
                    .build_cartesian_2d(log_axis(x0, x1), log_axis(y0, y1))
                    .map_err(plot_err)?),
            }
            // The legend, below the chart: a line sample and/or a marker, then the label.
            let col_w = if two_columns { CHART_W / 2 } else { CHART_W } as i32;
            for (k, it) in items.iter().enumerate() {
                let (col, row) = if two_columns {
                    ((k as u32 % 2) as i32, k as u32 / 2)
                } else {
                    (0, k as u32)
                };
                let x = 20 + col * col_w;
                let y = (row * LEGEND_ROW + LEGEND_ROW / 2 + 2) as i32;
                if it.line {
                    let style = it.color.stroke_width(it.width);
                    match it.dash {
                        None => {
                            legend_area.draw(&PathElement::new(vec![(x, y), (x + 28, y)], style))
                        }
                        Some((d, g)) => legend_area.draw(&DashedPathElement::new(
                            vec![(x, y), (x + 28, y)],
                            d,
                            g,
                            style,
                        )),
                    }
                    .map_err(plot_err)?;
                }
                if let Some(marker) = it.marker {
                    draw_marker_px(&legend_area, marker, (x + 14, y), it.color)?;
                }
                legend_area
                    .draw(&Text::new(
                        it.label.clone(),
                        (x + 36, y - LEGEND_FONT as i32 / 2 - 1),
                        ("sans-serif", LEGEND_FONT),
                    ))
                    .map_err(plot_err)?;
            }
            root.present().map_err(plot_err)?;
        }
        Ok(buf)
    }
}

/// Two SVG figures in one SVG document, the first above the second ([`stack`]).
pub fn stacked(top: &str, bottom: &str) -> String {
    stack(&[top, bottom])
}

/// The width and height attributes of an SVG document's root element.
pub fn svg_size(s: &str) -> Option<(u32, u32)> {
    let head = s.find("<svg").map(|i| &s[i..])?;
    let head = &head[..head.find('>')?];
    let attr = |key: &str| -> Option<u32> {
        let i = head.find(&format!(" {key}=\""))?;
        let rest = &head[i + key.len() + 3..];
        rest[..rest.find('"')?].parse().ok()
    };
    Some((attr("width")?, attr("height")?))
}

/// SVG figures (panels) in one SVG document, one above the other: the width stays that of the widest
/// panel (each is [`CHART_W`], ≤ the report's column), the height is the sum.
pub fn stack(panels: &[&str]) -> String {
    let sizes: Vec<(u32, u32)> = panels
        .iter()
        .map(|p| svg_size(p).unwrap_or((CHART_W, CHART_H)))
        .collect();
    let w = sizes.iter().map(|s| s.0).max().unwrap_or(CHART_W);
    let h: u32 = sizes.iter().map(|s| s.1).sum();
    let mut out = format!(
        "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">\n"
    );
    let mut y = 0;
    for (p, (_, ph)) in panels.iter().zip(&sizes) {
        let body = p.find("<svg").map(|i| &p[i..]).unwrap_or(p);
        out.push_str(&body.replacen("<svg", &format!("<svg x=\"0\" y=\"{y}\""), 1));
        out.push('\n');
        y += ph;
    }
    out.push_str("</svg>\n");
    out
}

/// A histogram of values, drawn as bars over `bins` equal-width bins.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// Values (one or more named groups, overlaid).
    pub groups: Vec<(String, Vec<f64>)>,
    /// Number of bins.
    pub bins: usize,
    /// Vertical reference line (label, x).
    pub vline: Option<(String, f64)>,
}

impl Histogram {
    /// Render to an SVG document (bars drawn as a step line per group).
    pub fn to_svg(&self) -> Result<String> {
        let bins = self.bins.max(1);
        let all = self
            .groups
            .iter()
            .flat_map(|g| g.1.iter().copied())
            .chain(self.vline.iter().map(|v| v.1));
        let (lo, hi) = bounds(all, false);
        let width = (hi - lo) / bins as f64;
        let mut series = Vec::new();
        for (label, vals) in &self.groups {
            let mut counts = vec![0usize; bins];
            for &v in vals.iter().filter(|v| v.is_finite()) {
                let k = (((v - lo) / width) as usize).min(bins - 1);
                counts[k] += 1;
            }
            let mut pts = vec![(lo, 0.0)];
            for (k, &c) in counts.iter().enumerate() {
                let a = lo + k as f64 * width;
                pts.push((a, c as f64));
                pts.push((a + width, c as f64));
            }
            pts.push((hi, 0.0));
            series.push(Series::line(format!("{label} (n = {})", vals.len()), pts));
        }
        if let Some((label, x)) = &self.vline {
            let top = series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .fold(1.0, f64::max);
            series.push(Series::reference(label.clone(), vec![(*x, 0.0), (*x, top)]));
        }
        LinePlot {
            title: self.title.clone(),
            x_label: self.x_label.clone(),
            y_label: "count".into(),
            series,
            ..Default::default()
        }
        .to_svg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_plot_renders_series_labels_and_log_axes() {
        let p = LinePlot {
            title: "slope".into(),
            x_label: "m".into(),
            y_label: "error".into(),
            log_x: true,
            log_y: true,
            series: vec![
                Series::line_points(
                    "measured",
                    vec![(32.0, 0.06), (128.0, 0.03), (512.0, 0.015)],
                ),
                Series::line("fit", vec![(32.0, 0.06), (512.0, 0.015)]),
            ],
            hlines: vec![("tol".into(), 0.02)],
        };
        let svg = p.to_svg().unwrap();
        assert!(
            svg.starts_with("<svg")
                && svg.contains("measured")
                && svg.contains("fit")
                && svg.contains("tol")
        );
        assert!(svg.contains("<polyline") || svg.contains("<path"));
    }

    #[test]
    fn log_ticks_label_every_decade_in_range() {
        let (bold, light) = log_ticks(0.02, 0.7);
        assert_eq!(bold, vec![0.02, 0.05, 0.1, 0.2, 0.5]);
        assert_eq!(light.len(), 8 + 7);
        let (bold, _) = log_ticks(1e-17, 1.0);
        assert!(
            bold.len() >= 5 && bold.len() <= 12 && bold.iter().all(|v| *v >= 1e-17 && *v <= 1.0)
        );
    }

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.05), "0.05");
        assert_eq!(tick_label(0.123456), "0.123");
        assert_eq!(tick_label(12.5), "12.5");
        assert_eq!(tick_label(1024.0), "1024");
        assert_eq!(tick_label(1e-6), "1e-6");
        assert_eq!(tick_label(2.5e5), "2.5e5");
        assert_eq!(tick_label(-3.14159e-7), "-3.14e-7");
    }

    #[test]
    fn many_series_get_distinct_styles_and_a_legend_below_the_chart() {
        let series: Vec<Series> = (0..12)
            .map(|i| {
                Series::line_points(
                    format!("s{i}"),
                    vec![(1.0, i as f64), (2.0, 1.0 + i as f64)],
                )
            })
            .collect();
        let p = LinePlot {
            series,
            ..Default::default()
        };
        let items = p.legend();
        let styles: std::collections::HashSet<(u8, u8, u8, usize, bool)> = items
            .iter()
            .map(|it| {
                let m = MARKERS
                    .iter()
                    .position(|&x| Some(x) == it.marker)
                    .unwrap_or(9);
                (it.color.0, it.color.1, it.color.2, m, it.dash.is_some())
            })
            .collect();
        assert_eq!(styles.len(), 12);
        let svg = p.to_svg().unwrap();
        assert!(
            svg.contains("s11")
                && svg.contains(&format!("height=\"{}\"", CHART_H + 6 * LEGEND_ROW + 10))
        );
    }

    #[test]
    fn stacked_keeps_one_width_and_adds_heights() {
        let a = LinePlot::default().to_svg().unwrap();
        let b = stacked(&a, &a);
        let h = a
            .split("height=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap();
        assert!(b.starts_with(&format!("<svg width=\"{CHART_W}\" height=\"{}\"", 2 * h)));
    }

    #[test]
    fn log_axis_ticks_are_never_snapped_to_zero() {
        // An axis from 1e-14 to 10 (C1's): its small ticks are values, not rounding noise.
        assert_eq!(axis_tick(1e-13, 10.0, true), "1e-13");
        assert_eq!(axis_tick(1e-11, 10.0, true), "1e-11");
        assert_eq!(axis_tick(-5.55e-17, 1.0, false), "0");
        assert_eq!(axis_tick(1e-13, 1e-10, false), "1e-13");
    }

    #[test]
    fn ticks_that_are_zero_up_to_rounding_print_as_zero() {
        assert_eq!(snap_zero(-5.551115123125783e-17, 2.0), 0.0);
        assert_eq!(snap_zero(1e-9, 2.0), 1e-9);
        // A whole chart whose y axis crosses 0 between points that are not round numbers.
        let mut p = LinePlot::default();
        p.series
            .push(Series::line("s", vec![(0.0, -0.3), (1.0, 0.9), (2.0, 0.1)]));
        let svg = p.to_svg().unwrap();
        assert!(
            !svg.contains("e-17") && !svg.contains("e-16"),
            "rounding noise in a tick label"
        );
        assert!(
            svg.lines().any(|l| l.trim() == "0"),
            "the zero tick is labelled 0"
        );
    }

    #[test]
    fn histogram_counts_every_value() {
        let h = Histogram {
            title: "h".into(),
            x_label: "x".into(),
            groups: vec![("a".into(), vec![0.0, 0.1, 0.2, 0.9, 1.0])],
            bins: 4,
            vline: Some(("zero".into(), 0.0)),
        };
        let svg = h.to_svg().unwrap();
        assert!(svg.contains("a (n = 5)"));
    }
}
