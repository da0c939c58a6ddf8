//! SVG figures with plotters (SVG backend: text stays text, no system fonts needed).
//!
//! Small, declarative figure types the claims fill in: [`LinePlot`] (several series, optional log axes,
//! optional reference lines) and [`Histogram`]. Each renders to an SVG string.
use anyhow::{anyhow, Result};
use plotters::prelude::*;

/// Palette of series colors.
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

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
}

impl Series {
    /// A polyline.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            style: Style::Line,
        }
    }
    /// Markers.
    pub fn points(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            style: Style::Points,
        }
    }
    /// Polyline with markers.
    pub fn line_points(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            style: Style::LinePoints,
        }
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

impl LinePlot {
    /// Render to an SVG document.
    pub fn to_svg(&self) -> Result<String> {
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (720, 440)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
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
            macro_rules! draw {
                ($chart:expr) => {{
                    let mut chart = $chart;
                    chart
                        .configure_mesh()
                        .x_desc(self.x_label.as_str())
                        .y_desc(self.y_label.as_str())
                        .draw()
                        .map_err(|e| anyhow!("plot: {e}"))?;
                    for (i, s) in self.series.iter().enumerate() {
                        let c = COLORS[i % COLORS.len()];
                        let pts: Vec<(f64, f64)> = s
                            .points
                            .iter()
                            .copied()
                            .filter(|p| {
                                p.0.is_finite()
                                    && p.1.is_finite()
                                    && (!self.log_x || p.0 > 0.0)
                                    && (!self.log_y || p.1 > 0.0)
                            })
                            .collect();
                        if matches!(s.style, Style::Line | Style::LinePoints) {
                            chart
                                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                                .map_err(|e| anyhow!("plot: {e}"))?
                                .label(s.label.as_str())
                                .legend(move |(x, y)| {
                                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                                });
                        }
                        if matches!(s.style, Style::Points | Style::LinePoints) {
                            let ann = chart
                                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                                .map_err(|e| anyhow!("plot: {e}"))?;
                            if s.style == Style::Points {
                                ann.label(s.label.as_str())
                                    .legend(move |(x, y)| Circle::new((x + 8, y), 3, c.filled()));
                            }
                        }
                    }
                    for (i, (label, y)) in self.hlines.iter().enumerate() {
                        let c = RGBColor(90, 90, 90);
                        let _ = i;
                        chart
                            .draw_series(LineSeries::new(
                                vec![(x0, *y), (x1, *y)],
                                c.stroke_width(1),
                            ))
                            .map_err(|e| anyhow!("plot: {e}"))?
                            .label(label.as_str())
                            .legend(move |(x, y)| {
                                PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(1))
                            });
                    }
                    chart
                        .configure_series_labels()
                        .background_style(WHITE.mix(0.8))
                        .border_style(BLACK)
                        .draw()
                        .map_err(|e| anyhow!("plot: {e}"))?;
                }};
            }
            let mut b = ChartBuilder::on(&root);
            b.caption(self.title.as_str(), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(64);
            match (self.log_x, self.log_y) {
                (false, false) => draw!(b
                    .build_cartesian_2d(x0..x1, y0..y1)
                    .map_err(|e| anyhow!("plot: {e}"))?),
                (true, false) => draw!(b
                    .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                    .map_err(|e| anyhow!("plot: {e}"))?),
                (false, true) => draw!(b
                    .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                    .map_err(|e| anyhow!("plot: {e}"))?),
                (true, true) => draw!(b
                    .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                    .map_err(|e| anyhow!("plot: {e}"))?),
            }
            root.present().map_err(|e| anyhow!("plot: {e}"))?;
        }
        Ok(buf)
    }
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
            series.push(Series::line(label.clone(), vec![(*x, 0.0), (*x, top)]));
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
