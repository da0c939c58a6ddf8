//! Writing `report.md` and a self-contained `report.html` from the claims' results.
//!
//! Per claim: the statement, the paper and the section of math.md it checks, links to its docs page and to
//! math.md, what is measured, the per-seed rule (which states its direction), the verdict over the seed
//! pairs (kind, rate needed, pass rate and its 95% interval), every seed pair's result, the figure of the
//! base seed pair and, for a failure, what it means (from the docs page). Links are relative to the
//! repository root through `repo` (e.g. `../../` for the default `out/verify`).
use super::sources::{section_anchors, source, PAPERS};
use super::{ClaimResult, Kind, SeedVerdict};
use std::fmt::Write as _;

/// Width in CSS pixels of the report's text column (`report.html`'s body). Every figure is at most this
/// wide ([`crate::plot::CHART_W`] is checked against it at compile time), so none is cut off or scaled
/// down on a desktop browser.
pub const COLUMN_PX: u32 = 860;

/// A number for the report: `0` for zero, 4 decimals in [1e-3, 1e4), short scientific otherwise; `—`
/// for NaN (a run that failed or did not apply).
pub fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e-3 && x.abs() < 1e4 {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

fn word(v: SeedVerdict) -> &'static str {
    match v {
        SeedVerdict::Pass => "pass",
        SeedVerdict::Fail => "FAIL",
        SeedVerdict::NotApplicable => "n/a",
    }
}

/// "statistical claim: needs a pass rate ≥ 0.8 of the applicable seed pairs; 4 of 5 passed (rate 0.80,
/// 95% interval [0.38, 0.96])".
pub fn verdict_line(r: &ClaimResult) -> String {
    let need = if r.kind == Kind::Exact.name() {
        "exact claim: must pass on every applicable seed pair".to_string()
    } else {
        format!(
            "statistical claim: needs a pass rate ≥ {} of the applicable seed pairs",
            r.required_rate
        )
    };
    let na = r.seeds.len() - r.seeds_applicable;
    format!(
        "{need}; {} of {} passed (rate {}, 95% interval [{:.2}, {:.2}]){}",
        r.seeds_passed,
        r.seeds_applicable,
        if r.pass_rate.is_nan() {
            "—".to_string()
        } else {
            format!("{:.2}", r.pass_rate)
        },
        r.pass_rate_interval[0],
        r.pass_rate_interval[1],
        if na > 0 {
            format!("; not applicable on {na} of {} pairs", r.seeds.len())
        } else {
            String::new()
        }
    )
}

/// The summary table's "needs" cell: `all` for an exact claim, `≥ rate` for a statistical one.
fn needs(r: &ClaimResult) -> String {
    if r.kind == Kind::Exact.name() {
        "all".to_string()
    } else {
        format!("≥ {}", r.required_rate)
    }
}

/// The base seed pair's own supporting numbers (`r.detail` repeats the verdict line before them).
fn base_detail(r: &ClaimResult) -> &str {
    r.seeds
        .first()
        .map_or(r.detail.as_str(), |p| p.detail.as_str())
}

/// The papers of `paper` (`[P2], [P1]`) as (name, arXiv link).
fn paper_links(paper: &str) -> Vec<(&'static str, &'static str)> {
    PAPERS
        .iter()
        .copied()
        .filter(|(p, _)| paper.contains(p))
        .collect()
}

/// The math.md links of `section` (`§4.1, §4.4`): (text, link relative to the report).
fn section_links(section: &str, repo: &str) -> Vec<(String, String)> {
    section_anchors(section)
        .into_iter()
        .map(|(s, anchor)| {
            let link = match anchor {
                Some(a) => format!("{repo}docs/math.md#{a}"),
                None => format!("{repo}docs/math.md"),
            };
            (format!("math.md {s}"), link)
        })
        .collect()
}

fn source_md(r: &ClaimResult, repo: &str) -> String {
    match source(&r.id) {
        Some(s) => {
            let papers: Vec<String> = paper_links(s.paper)
                .iter()
                .map(|(p, url)| format!("[{}]({url})", p.trim_matches(['[', ']'])))
                .collect();
            let sections: Vec<String> = section_links(s.section, repo)
                .iter()
                .map(|(t, l)| format!("[{t}]({l})"))
                .collect();
            format!(
                "checks {} as formulated in {} · docs: [{}]({repo}{})",
                papers.join(", "),
                sections.join(", "),
                s.doc,
                s.doc
            )
        }
        None => "source not recorded".into(),
    }
}

/// The Markdown report: a summary table on top, then one section per claim.
pub fn markdown(results: &[ClaimResult], header: &str, repo: &str) -> String {
    let passed = results.iter().filter(|r| r.passed).count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# nff verify — {passed} of {} claims passed\n\n{header}\n",
        results.len()
    );
    let _ = writeln!(
        s,
        "| id | claim | checks | seed pairs passed | needs | result |\n|---|---|---|---|---|---|"
    );
    for r in results {
        let src = source(&r.id)
            .map(|x| format!("{} §{}", x.paper, x.section.trim_start_matches('§')))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "| [{}](#{}) | {} | {src} | {}/{} | {} | {} |",
            r.id,
            r.id.to_lowercase(),
            r.title,
            r.seeds_passed,
            r.seeds_applicable,
            needs(r),
            if r.passed { "pass" } else { "**FAIL**" },
        );
    }
    for r in results {
        let _ = writeln!(
            s,
            "\n## {}\n\n**{}** — {}\n\n{}\n",
            r.id,
            r.title,
            if r.passed { "pass" } else { "FAIL" },
            source_md(r, repo)
        );
        let _ = writeln!(
            s,
            "- measures: {}\n- per-seed rule: {}\n- verdict: {}\n- base seed pair: value {} (threshold {}); {}",
            r.measures,
            r.rule,
            verdict_line(r),
            fmt_num(r.value),
            fmt_num(r.threshold),
            base_detail(r)
        );
        if !r.passed {
            if let Some(m) = source(&r.id).and_then(|x| x.failure_meaning()) {
                let _ = writeln!(s, "- **what this failure means** (from its docs page): {m}");
            }
        }
        let _ = writeln!(
            s,
            "\n| data seed | init seed | verdict | value | threshold |\n|---|---|---|---|---|"
        );
        for p in &r.seeds {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                p.data_seed,
                p.init_seed,
                word(p.verdict),
                fmt_num(p.value),
                fmt_num(p.threshold)
            );
        }
        if let Some(f) = &r.figure {
            let _ = writeln!(s, "\n![{}]({f})", r.id);
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTML report: one self-contained file with the figures inlined (no network access needed); the
/// figures scale down to the column width.
pub fn html(
    results: &[ClaimResult],
    figures: &[(String, String)],
    header: &str,
    repo: &str,
) -> String {
    let passed = results.iter().filter(|r| r.passed).count();
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>nff verify</title><style>\
         body{{font-family:sans-serif;max-width:{COLUMN_PX}px;margin:2em auto;padding:0 1em;color:#222}}\
         table{{border-collapse:collapse;max-width:100%}}details{{overflow-x:auto}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         .pass{{color:#1a7f37}}.fail{{color:#cf222e;font-weight:bold}}.na{{color:#777}}\
         section{{margin-top:2.5em}}.src{{color:#555}}.meaning{{background:#fff4f4;border-left:4px solid #cf222e;padding:0.5em 1em}}\
         svg{{max-width:100%;height:auto;display:block}}details{{margin:0.5em 0}}\
         </style></head><body><h1>nff verify — {passed} of {} claims passed</h1><p>{}</p>",
        results.len(),
        esc(header)
    );
    s.push_str(
        "<table><tr><th>id</th><th>claim</th><th>checks</th><th>seed pairs passed</th><th>needs</th><th>result</th></tr>",
    );
    for r in results {
        let (cls, w) = if r.passed {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        let src = source(&r.id)
            .map(|x| format!("{} math.md {}", x.paper, x.section))
            .unwrap_or_default();
        let _ = write!(
            s,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td class=\"{cls}\">{w}</td></tr>",
            r.id,
            r.id,
            esc(&r.title),
            esc(&src),
            r.seeds_passed,
            r.seeds_applicable,
            needs(r),
        );
    }
    s.push_str("</table>");
    for r in results {
        let (cls, w) = if r.passed {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        let src = match source(&r.id) {
            Some(x) => {
                let papers: Vec<String> = paper_links(x.paper)
                    .iter()
                    .map(|(p, url)| format!("<a href=\"{url}\">{}</a>", esc(p)))
                    .collect();
                let sections: Vec<String> = section_links(x.section, repo)
                    .iter()
                    .map(|(t, l)| format!("<a href=\"{}\">{}</a>", esc(l), esc(t)))
                    .collect();
                format!(
                    "Checks {} as formulated in {} · docs: <a href=\"{repo}{}\">{}</a>",
                    papers.join(", "),
                    sections.join(", "),
                    x.doc,
                    x.doc
                )
            }
            None => "source not recorded".into(),
        };
        let _ = write!(
            s,
            "<section id=\"{}\"><h2>{} — {} <span class=\"{cls}\">{w}</span></h2><p class=\"src\">{src}</p>\
             <ul><li>measures: {}</li><li>per-seed rule: {}</li><li>verdict: {}</li>\
             <li>base seed pair: value {} (threshold {}); {}</li></ul>",
            r.id,
            r.id,
            esc(&r.title),
            esc(&r.measures),
            esc(&r.rule),
            esc(&verdict_line(r)),
            fmt_num(r.value),
            fmt_num(r.threshold),
            esc(base_detail(r))
        );
        if !r.passed {
            if let Some(m) = source(&r.id).and_then(|x| x.failure_meaning()) {
                let _ = write!(
                    s,
                    "<p class=\"meaning\"><b>What this failure means</b> (from its docs page): {}</p>",
                    esc(m)
                );
            }
        }
        s.push_str("<details><summary>every seed pair</summary><table><tr><th>data seed</th><th>init seed</th><th>verdict</th><th>value</th><th>threshold</th><th>detail</th></tr>");
        for p in &r.seeds {
            let c = match p.verdict {
                SeedVerdict::Pass => "pass",
                SeedVerdict::Fail => "fail",
                SeedVerdict::NotApplicable => "na",
            };
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"{c}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                p.data_seed,
                p.init_seed,
                word(p.verdict),
                fmt_num(p.value),
                fmt_num(p.threshold),
                esc(&p.detail)
            );
        }
        s.push_str("</table></details>");
        if let Some(f) = &r.figure {
            if let Some((_, svg)) = figures.iter().find(|(name, _)| name == f) {
                // Inline the SVG document without its XML prolog.
                let body = svg.find("<svg").map(|i| &svg[i..]).unwrap_or(svg);
                s.push_str(body);
            }
        }
        s.push_str("</section>");
    }
    s.push_str("</body></html>\n");
    s
}
