//! Writing `claims.json`, `report.md` and a self-contained `report.html`.
use super::ClaimResult;
use std::fmt::Write as _;

fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e-3 && x.abs() < 1e4 {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

/// The Markdown report: a summary table on top, then one section per claim.
pub fn markdown(results: &[ClaimResult], header: &str) -> String {
    let passed = results.iter().filter(|r| r.passed).count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# nff verify — {passed} of {} claims passed\n\n{header}\n",
        results.len()
    );
    let _ = writeln!(
        s,
        "| id | claim | value | threshold | result |\n|---|---|---|---|---|"
    );
    for r in results {
        let _ = writeln!(
            s,
            "| [{}](#{}) | {} | {} | {} | {} |",
            r.id,
            r.id.to_lowercase(),
            r.title,
            fmt_num(r.value),
            fmt_num(r.threshold),
            if r.passed { "pass" } else { "**FAIL**" },
        );
    }
    for r in results {
        let _ = writeln!(
            s,
            "\n## {}\n\n**{}** — {}\n",
            r.id,
            r.title,
            if r.passed { "pass" } else { "FAIL" }
        );
        let _ = writeln!(
            s,
            "- measures: {}\n- rule: {}\n- value: {} (threshold {})\n- detail: {}",
            r.measures,
            r.rule,
            fmt_num(r.value),
            fmt_num(r.threshold),
            r.detail
        );
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
}

/// The HTML report: one self-contained file with the figures inlined (no network access needed).
pub fn html(results: &[ClaimResult], figures: &[(String, String)], header: &str) -> String {
    let passed = results.iter().filter(|r| r.passed).count();
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>nff verify</title><style>\
         body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         .pass{{color:#1a7f37}}.fail{{color:#cf222e;font-weight:bold}}section{{margin-top:2em}}\
         </style></head><body><h1>nff verify — {passed} of {} claims passed</h1><p>{}</p>",
        results.len(),
        esc(header)
    );
    s.push_str(
        "<table><tr><th>id</th><th>claim</th><th>value</th><th>threshold</th><th>result</th></tr>",
    );
    for r in results {
        let (cls, word) = if r.passed {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        let _ = write!(
            s,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{word}</td></tr>",
            r.id,
            r.id,
            esc(&r.title),
            fmt_num(r.value),
            fmt_num(r.threshold),
        );
    }
    s.push_str("</table>");
    for r in results {
        let (cls, word) = if r.passed {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        let _ = write!(
            s,
            "<section id=\"{}\"><h2>{} — {} <span class=\"{cls}\">{word}</span></h2><ul><li>measures: {}</li><li>rule: {}</li><li>value: {} (threshold {})</li><li>detail: {}</li></ul>",
            r.id,
            r.id,
            esc(&r.title),
            esc(&r.measures),
            esc(&r.rule),
            fmt_num(r.value),
            fmt_num(r.threshold),
            esc(&r.detail)
        );
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
