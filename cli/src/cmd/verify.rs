//! `nff verify`: run the claims of math.md §6 and write `claims.json`, `report.md`, `report.html`
//! and one SVG figure per claim.
use crate::common::{pick, read_config, CommonArgs, Ctx};
use crate::output::OutputDir;
use crate::verify::{registry, report, ClaimCtx, ClaimResult, Size};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `nff verify`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Small sizes: every claim in a few minutes on 2 cores.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated claim ids to run (e.g. C4,C5); default all.
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<String>>,
    /// List the claims and exit.
    #[arg(long)]
    pub list: bool,
    /// Exit with status 1 if a claim fails (for scripts and CI); by default a failed claim is a finding,
    /// reported in the outputs and on stderr, and the exit status is 0.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    /// Shared options.
    pub common: CommonArgs,
}

/// Run `nff verify`. With `--strict`, exits non-zero (after writing every output) if a claim fails.
pub fn run(args: &VerifyArgs) -> Result<()> {
    let claims = registry();
    if args.list {
        for c in &claims {
            println!(
                "{:>4}  {}\n      rule: {}",
                c.info.id, c.info.title, c.info.rule
            );
        }
        return Ok(());
    }
    let cfg = read_config(args.common.config.as_deref())?;
    let ctx = Ctx::new(&args.common, &cfg)?;
    let quick = args.quick || crate::common::cfg_get::<bool>(&cfg, "quick")?.unwrap_or(false);
    let size = if quick { Size::Quick } else { Size::Full };
    let only: Option<Vec<String>> = args.only.clone().or(crate::common::cfg_get(&cfg, "only")?);
    let selected: Vec<_> = match &only {
        None => claims.iter().collect(),
        Some(ids) => {
            let mut out = Vec::new();
            for id in ids {
                let id = id.trim().to_uppercase();
                match claims.iter().find(|c| c.info.id == id) {
                    Some(c) => out.push(c),
                    None => bail!(
                        "unknown claim '{id}': expected ids among {}",
                        claims
                            .iter()
                            .map(|c| c.info.id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
            out
        }
    };
    let out_path: PathBuf = pick(
        args.common.out.clone(),
        &cfg,
        "out",
        PathBuf::from("out/verify"),
    )?;
    let out = OutputDir::create(&out_path)?;
    let cctx = ClaimCtx {
        seed: ctx.seed,
        size,
        par: ctx.par,
    };
    let bar = ctx.bar(selected.len() as u64, "verify");
    let mut results = Vec::new();
    let mut figures = Vec::new();
    for claim in selected {
        bar.set_prefix(claim.info.id);
        let t0 = Instant::now();
        let outcome = (claim.run)(&cctx);
        let seconds = t0.elapsed().as_secs_f64();
        let info = claim.info;
        let result = match outcome {
            Ok(o) => {
                let figure = match o.figure {
                    Some(svg) => {
                        let name = format!("{}.svg", info.id);
                        out.write(&name, svg.as_bytes())?;
                        figures.push((name.clone(), svg));
                        Some(name)
                    }
                    None => None,
                };
                ClaimResult {
                    id: info.id.into(),
                    title: info.title.into(),
                    passed: o.passed,
                    value: o.value,
                    threshold: o.threshold,
                    detail: o.detail,
                    figure,
                    seconds,
                    measures: info.measures.into(),
                    rule: info.rule.into(),
                }
            }
            Err(e) => ClaimResult {
                id: info.id.into(),
                title: info.title.into(),
                passed: false,
                value: f64::NAN,
                threshold: f64::NAN,
                detail: format!(
                    "error: {}",
                    e.chain()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(": ")
                ),
                figure: None,
                seconds,
                measures: info.measures.into(),
                rule: info.rule.into(),
            },
        };
        if !args.common.quiet {
            bar.suspend(|| {
                eprintln!(
                    "{:>4} {:<4} {:<48} value {:>11.4e}  threshold {:>10.3e}  ({:.1} s)",
                    result.id,
                    if result.passed { "pass" } else { "FAIL" },
                    result.title,
                    result.value,
                    result.threshold,
                    result.seconds
                )
            });
        }
        results.push(result);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let header = format!(
        "nff {} · size {} · seed {} · threads {} · {:.1} s",
        env!("CARGO_PKG_VERSION"),
        if quick { "quick" } else { "full" },
        ctx.seed,
        ctx.threads,
        ctx.seconds()
    );
    out.write_json("claims.json", &results)?;
    out.write("report.md", report::markdown(&results, &header).as_bytes())?;
    out.write(
        "report.html",
        report::html(&results, &figures, &header).as_bytes(),
    )?;
    let mut summary = ctx.summary_header("verify");
    summary["config"] = serde_json::json!({"quick": quick, "only": only});
    summary["passed"] = results.iter().filter(|r| r.passed).count().into();
    summary["total"] = results.len().into();
    summary["wall_seconds"] = ctx.seconds().into();
    out.write_json("summary.json", &summary)?;
    let dir = out.commit()?;
    let failed = results.iter().filter(|r| !r.passed).count();
    let failed_ids: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.id.as_str())
        .collect();
    if !args.common.quiet || failed > 0 {
        eprintln!(
            "{} of {} claims passed{}; report in {}",
            results.len() - failed,
            results.len(),
            if failed > 0 {
                format!(" (failed: {})", failed_ids.join(", "))
            } else {
                String::new()
            },
            dir.join("report.html").display()
        );
    }
    if failed > 0 && args.strict {
        bail!(
            "{failed} of {} claims failed (see {})",
            results.len(),
            dir.join("report.md").display()
        );
    }
    Ok(())
}
