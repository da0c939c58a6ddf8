//! The report's figures and links, checked on generated files (issue 16, "Must show"): every SVG is no
//! wider than the report's column, no tick label is rounding noise (on a linear axis, a label whose
//! value is below 1e-12 of the axis range must read exactly `0`), and every claim's section in
//! `report.html` links its paper, its math.md section (an anchor of a heading there) and its docs page,
//! and the local links resolve.
//!
//! The checker is tested first on figures made to fail (a wide one, a noisy tick), then on figures of
//! the plot module, then on a real `nff verify --quick` run of every claim on one seed pair.
use nff_cli::plot::{stack, LinePlot, Series};
use nff_cli::verify::report::COLUMN_PX;
use std::path::Path;

/// One `<text>` element: its panel (index of the enclosing `<svg>`), position attributes and content.
#[derive(Debug, Clone)]
struct Text {
    panel: usize,
    x: String,
    y: String,
    anchor: String,
    content: String,
}

fn attr(tag: &str, key: &str) -> Option<String> {
    let i = tag.find(&format!(" {key}=\""))?;
    let rest = &tag[i + key.len() + 3..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The widths of every `<svg>` element of a document (the root first).
fn svg_widths(svg: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find("<svg") {
        let tag = &rest[i..i + rest[i..].find('>').unwrap_or(rest.len() - i)];
        if let Some(w) = attr(tag, "width").and_then(|w| w.trim_end_matches("px").parse().ok()) {
            out.push(w);
        }
        rest = &rest[i + 4..];
    }
    out
}

fn texts(svg: &str) -> Vec<Text> {
    let mut out = Vec::new();
    let mut panel = 0;
    let mut i = 0;
    while i < svg.len() {
        let next_svg = svg[i..].find("<svg").map(|k| k + i);
        let next_text = svg[i..].find("<text").map(|k| k + i);
        match (next_svg, next_text) {
            (Some(a), Some(b)) if a < b => {
                panel += 1;
                i = a + 4;
            }
            (Some(a), None) => {
                panel += 1;
                i = a + 4;
            }
            (_, Some(b)) => {
                let close = svg[b..].find('>').map(|k| k + b).unwrap_or(svg.len());
                let tag = &svg[b..close];
                let end = svg[close..]
                    .find("</text>")
                    .map(|k| k + close)
                    .unwrap_or(svg.len());
                out.push(Text {
                    panel,
                    x: attr(tag, "x").unwrap_or_default(),
                    y: attr(tag, "y").unwrap_or_default(),
                    anchor: attr(tag, "text-anchor").unwrap_or_default(),
                    content: svg[(close + 1).min(end)..end].trim().to_string(),
                });
                i = end;
            }
            (None, None) => break,
        }
    }
    out
}

/// Whether `values` at pixel positions `pos` lie on a linear axis (value affine in position) rather
/// than a log axis (log value affine in position).
fn is_linear(pos: &[f64], values: &[f64]) -> bool {
    let misfit = |v: &[f64]| -> f64 {
        let n = v.len() as f64;
        let (mp, mv) = (pos.iter().sum::<f64>() / n, v.iter().sum::<f64>() / n);
        let spp: f64 = pos.iter().map(|p| (p - mp) * (p - mp)).sum();
        let spv: f64 = pos.iter().zip(v).map(|(p, x)| (p - mp) * (x - mv)).sum();
        let b = if spp > 0.0 { spv / spp } else { 0.0 };
        let range = v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - v.iter().copied().fold(f64::INFINITY, f64::min);
        let worst = pos
            .iter()
            .zip(v)
            .map(|(p, x)| (x - (mv + b * (p - mp))).abs())
            .fold(0.0, f64::max);
        if range > 0.0 {
            worst / range
        } else {
            0.0
        }
    };
    if values.len() < 3 || values.iter().any(|v| *v <= 0.0) {
        return true;
    }
    let logs: Vec<f64> = values.iter().map(|v| v.log10()).collect();
    misfit(values) <= misfit(&logs)
}

/// An axis of a figure: (panel, "x axis" or "y axis", the pixel coordinate its labels share).
type AxisKey = (usize, String, String);
/// A tick label: (pixel position along the axis, value, text).
type Tick = (f64, f64, String);

/// Problems of one SVG document: too wide, or a tick label that is rounding noise.
fn figure_problems(name: &str, svg: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let widths = svg_widths(svg);
    if widths.is_empty() {
        problems.push(format!("{name}: no <svg width>"));
    }
    for w in widths {
        if w > COLUMN_PX as f64 {
            problems.push(format!(
                "{name}: an <svg> {w} px wide, wider than the report's column ({COLUMN_PX} px)"
            ));
        }
    }
    // Tick labels: numeric texts, grouped into axes — the y axis's share their x and are right-aligned,
    // the x axis's share their y.
    let numeric: Vec<(Text, f64)> = texts(svg)
        .into_iter()
        .filter_map(|t| {
            let v: f64 = t.content.parse().ok()?;
            Some((t, v))
        })
        .collect();
    let mut axes: std::collections::BTreeMap<AxisKey, Vec<Tick>> = Default::default();
    for (t, v) in &numeric {
        let px = |s: &str| s.parse::<f64>().unwrap_or(0.0);
        if t.anchor == "end" {
            axes.entry((t.panel, "y axis".into(), t.x.clone()))
                .or_default()
                .push((px(&t.y), *v, t.content.clone()));
        } else {
            axes.entry((t.panel, "x axis".into(), t.y.clone()))
                .or_default()
                .push((px(&t.x), *v, t.content.clone()));
        }
    }
    for ((panel, axis, _), ticks) in axes {
        let pos: Vec<f64> = ticks.iter().map(|t| t.0).collect();
        let vals: Vec<f64> = ticks.iter().map(|t| t.1).collect();
        if !is_linear(&pos, &vals) {
            continue; // a log axis has no zero: 1e-13 on an axis to 10 is a value
        }
        let range = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - vals.iter().copied().fold(f64::INFINITY, f64::min);
        for (_, v, text) in &ticks {
            if v.abs() < 1e-12 * range && text != "0" {
                problems.push(format!(
                    "{name}: panel {panel}, {axis}: tick '{text}' is rounding noise on an axis of range {range:e} (expected 0)"
                ));
            }
        }
    }
    problems
}

// --- the checker can fail

const GOOD_AXIS: &str = r#"<svg width="760" height="480" viewBox="0 0 760 480" xmlns="http://www.w3.org/2000/svg">
<text x="60" y="400" dy="0.5ex" text-anchor="end">
-0.2
</text>
<text x="60" y="300" dy="0.5ex" text-anchor="end">
0
</text>
<text x="60" y="200" dy="0.5ex" text-anchor="end">
0.2
</text>
<text x="60" y="100" dy="0.5ex" text-anchor="end">
0.4
</text>
</svg>"#;

#[test]
fn the_checker_rejects_a_rounding_noise_tick() {
    assert!(figure_problems("good", GOOD_AXIS).is_empty());
    let bad = GOOD_AXIS.replacen("\n0\n", "\n-5.55e-17\n", 1);
    let p = figure_problems("bad", &bad);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("-5.55e-17"), "{p:?}");
    // "-0" is not "0" either.
    assert_eq!(
        figure_problems("minus zero", &GOOD_AXIS.replacen("\n0\n", "\n-0\n", 1)).len(),
        1
    );
}

#[test]
fn the_checker_rejects_a_wide_figure_and_a_wide_panel() {
    let wide = GOOD_AXIS.replacen("width=\"760\"", "width=\"1520\"", 1);
    let p = figure_problems("wide", &wide);
    assert!(p.len() == 1 && p[0].contains("1520"), "{p:?}");
    let inner = GOOD_AXIS.replacen("width=\"760\"", "width=\"1520\"", 1);
    let nested = stack(&[GOOD_AXIS, &inner]);
    assert!(!figure_problems("nested", &nested).is_empty());
}

#[test]
fn the_checker_accepts_small_values_on_a_log_axis() {
    // Ticks 1e-13 .. 10 at equal pixel steps per decade: a log axis, where 1e-13 is a value.
    let mut svg = String::from("<svg width=\"760\" height=\"480\">\n");
    for (k, e) in [-13, -10, -7, -4, -1, 1].iter().enumerate() {
        svg.push_str(&format!(
            "<text x=\"60\" y=\"{}\" text-anchor=\"end\">\n1e{e}\n</text>\n",
            400 - 60 * k
        ));
    }
    // 1e1 sits at the spacing of 2 decades, 1e-1 .. 1e1: still log-linear in position.
    svg = svg.replace(
        "y=\"100\" text-anchor=\"end\">\n1e1",
        "y=\"120\" text-anchor=\"end\">\n1e1",
    );
    svg.push_str("</svg>");
    assert!(
        figure_problems("log", &svg).is_empty(),
        "{:?}",
        figure_problems("log", &svg)
    );
}

// --- the plot module's figures

#[test]
fn plot_module_figures_pass_the_checker() {
    // Data crossing zero between points that are not round numbers (ticks at multiples of 0.1 whose
    // sums are not exactly 0), a log-log panel spanning 1e-14 .. 10, a reference line; stacked.
    let linear = LinePlot {
        title: "crossing zero".into(),
        series: vec![
            Series::line_points("a", vec![(0.0, -0.3), (1.0, 0.9), (2.0, 0.1)]),
            Series::reference("fit", vec![(0.0, -0.25), (2.0, 0.5)]),
        ],
        hlines: vec![("0".into(), 0.0)],
        ..Default::default()
    }
    .to_svg()
    .unwrap();
    let log = LinePlot {
        title: "log".into(),
        log_x: true,
        log_y: true,
        series: vec![Series::line_points(
            "r",
            vec![(16.0, 1e-14), (64.0, 3e-12), (256.0, 10.0)],
        )],
        ..Default::default()
    }
    .to_svg()
    .unwrap();
    let both = stack(&[&linear, &log, &linear]);
    for (name, svg) in [("linear", &linear), ("log", &log), ("stacked", &both)] {
        let p = figure_problems(name, svg);
        assert!(p.is_empty(), "{p:?}");
        let ticks = texts(svg)
            .into_iter()
            .filter(|t| t.content.parse::<f64>().is_ok())
            .count();
        assert!(
            ticks >= 8,
            "{name}: only {ticks} numeric tick labels found: the parser is blind"
        );
    }
}

// --- a real report

/// The `href`s of an HTML fragment.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .map(|s| s.replace("&amp;", "&"))
        .collect()
}

/// The anchors of math.md's headings (GitHub's rule: lower case, letters, digits, `-`, `_`; spaces →
/// `-`).
fn math_anchors(math: &str) -> Vec<String> {
    math.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// Problems of `report.html` in `dir`: a claim section without its paper, math.md section or docs
/// links, or with a local link that does not resolve.
fn report_problems(dir: &Path, html: &str, math: &str) -> Vec<String> {
    let anchors = math_anchors(math);
    let mut problems = Vec::new();
    let sections: Vec<&str> = html.split("<section id=\"").skip(1).collect();
    if sections.is_empty() {
        problems.push("report.html has no claim section".into());
    }
    for sec in sections {
        let id = sec.split('"').next().unwrap_or("?");
        let body = &sec[..sec.find("</section>").unwrap_or(sec.len())];
        let links = hrefs(body);
        let number: usize = id.trim_start_matches('C').parse().unwrap_or(0);
        let doc = format!("docs/claims/C{number:02}.md");
        if !links.iter().any(|l| l.ends_with(&doc)) {
            problems.push(format!("{id}: no link to {doc}"));
        }
        if !links
            .iter()
            .any(|l| l.starts_with("https://arxiv.org/abs/"))
        {
            problems.push(format!("{id}: no link to its paper"));
        }
        let math_links: Vec<&String> = links
            .iter()
            .filter(|l| l.contains("docs/math.md#"))
            .collect();
        if math_links.is_empty() {
            problems.push(format!("{id}: no link to its section of math.md"));
        }
        for l in math_links {
            let anchor = l.split('#').nth(1).unwrap_or("");
            if !anchors.iter().any(|a| a == anchor) {
                problems.push(format!(
                    "{id}: math.md has no heading with anchor #{anchor}"
                ));
            }
        }
        for l in links
            .iter()
            .filter(|l| !l.starts_with("http") && !l.starts_with('#'))
        {
            let file = l.split('#').next().unwrap_or("");
            if !dir.join(file).is_file() {
                problems.push(format!(
                    "{id}: link {l} does not resolve from {}",
                    dir.display()
                ));
            }
        }
    }
    problems
}

#[test]
fn the_report_checker_finds_missing_and_dead_links() {
    let d = tempfile::tempdir().unwrap();
    let math = "# Title\n## 5. The flow [P2]\n";
    let good = "<section id=\"C5\"><a href=\"https://arxiv.org/abs/2007.01452\">[P2]</a> <a href=\"x/docs/math.md#5-the-flow-p2\">§5</a> <a href=\"x/docs/claims/C05.md\">d</a></section>";
    std::fs::create_dir_all(d.path().join("x/docs/claims")).unwrap();
    std::fs::write(d.path().join("x/docs/math.md"), math).unwrap();
    std::fs::write(d.path().join("x/docs/claims/C05.md"), "c5").unwrap();
    assert!(report_problems(d.path(), good, math).is_empty());
    let dead = good.replace("C05.md", "C5.md");
    assert!(report_problems(d.path(), &dead, math).len() >= 2);
    let bad_anchor = good.replace("#5-the-flow-p2", "#5-the-flow");
    assert_eq!(report_problems(d.path(), &bad_anchor, math).len(), 1);
    let no_paper = good.replace("https://arxiv.org/abs/2007.01452", "#p2");
    assert_eq!(report_problems(d.path(), &no_paper, math).len(), 1);
}

/// Every claim at the quick size on one seed pair: every figure file and every figure inlined in
/// report.html passes the figure checks; every section has its links, and they resolve.
#[test]
fn a_real_report_has_column_wide_figures_clean_ticks_and_resolving_links() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("verify");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_nff"))
        .args(["verify", "--quick", "--seeds", "1", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut problems = Vec::new();
    let mut svgs = 0;
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "svg") {
            svgs += 1;
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            problems.extend(figure_problems(
                &name,
                &std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    assert!(svgs >= 20, "only {svgs} figures written");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains(&format!("max-width:{COLUMN_PX}px")),
        "report.html's column is not {COLUMN_PX} px"
    );
    problems.extend(figure_problems("report.html", &html));
    let math =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/math.md")).unwrap();
    problems.extend(report_problems(&out, &html, &math));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
