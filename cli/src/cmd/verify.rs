//! `nff verify`: run the claims of math.md §6 and write `claims.json`, `report.md`, `report.html`
//! and one SVG figure per claim.
//!
//! Sharding: `--shard k/n` (or `SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT` when set) runs the
//! selected claims whose position i in the selection has i mod n = k, and writes `shard.json` (the
//! configuration, its fingerprint and the results) and the slice's figures; `nff verify --merge DIR…`
//! joins the shards into the `claims.json`, `report.md`, `report.html` and figures of one run, byte for
//! byte. Only `summary.json`'s `threads`, `wall_seconds` and `run` (per-claim wall times and the shard,
//! or the directories merged) depend on how the claims were run. `--sbatch FILE` writes a Slurm script
//! for the whole array-and-merge (`crate::slurm`).
use crate::common::{pick, CommonArgs, Ctx};
use crate::output::OutputDir;
use crate::shards;
use crate::slurm::{Plan, SlurmArgs};
use crate::verify::{registry, report, run_claim, Claim, ClaimResult, Size, VerifyConfig};
use anyhow::{bail, Result};
use clap::Args;
use nff_flow::Shard;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `nff verify`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Small sizes: every claim in a few minutes on 2 cores.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated claim ids to run (e.g. C4,C5).
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<String>>,
    /// Number of seed pairs every claim runs on (math.md §6.1). The base of the set is --seed.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// List the claims and exit.
    #[arg(long)]
    pub list: bool,
    /// Exit with status 1 if a claim fails (for scripts and CI); by default a failed claim is a finding,
    /// reported in the outputs and on stderr, and the exit status is 0.
    #[arg(long)]
    pub strict: bool,
    /// Run slice k of n (0-based) of the selected claims, e.g. 1/4: the claims at positions i with
    /// i mod n = k; defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT.
    #[arg(long)]
    pub shard: Option<String>,
    /// Merge the shard outputs in these directories into one run's outputs instead of running.
    #[arg(long, num_args = 1..)]
    pub merge: Option<Vec<PathBuf>>,
    #[command(flatten)]
    /// Running as a Slurm job array.
    pub slurm: SlurmArgs,
    #[command(flatten)]
    /// Shared options.
    pub common: CommonArgs,
}

/// What a run's results depend on; each shard records it and its fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RunConfig {
    /// The nff version.
    version: String,
    /// The base seed.
    seed: u64,
    /// The number of seed pairs.
    seeds: usize,
    /// Quick or full.
    size: Size,
    /// `--only` as given (upper-cased), or none for all claims.
    only: Option<Vec<String>>,
    /// The selected claims, in run order.
    claims: Vec<String>,
}

/// The wall time of one claim.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ClaimTime {
    id: String,
    seconds: f64,
}

/// `shard.json` of a verify shard.
#[derive(Serialize, Deserialize)]
struct ShardFile {
    fingerprint: String,
    config: RunConfig,
    shard: Shard,
    /// The results of the shard's claims, in selection order.
    results: Vec<ClaimResult>,
    /// Run-dependent: wall time of each claim, and the thread count.
    claim_seconds: Vec<ClaimTime>,
    threads: usize,
}

/// Run `nff verify`. With `--strict`, exits non-zero (after writing every output) if a claim fails.
pub fn run(args: &VerifyArgs) -> Result<()> {
    let claims = registry();
    if args.list {
        for c in &claims {
            crate::common::say(
                false,
                &format!(
                    "{:>4}  {}\n      rule: {}",
                    c.info.id, c.info.title, c.info.rule
                ),
            )?;
        }
        return Ok(());
    }
    let cfg = crate::common::read_config_for::<VerifyArgs>(args.common.config.as_deref())?;
    let ctx = Ctx::new(&args.common, &cfg)?;
    let out_path: PathBuf = pick(
        args.common.out.clone(),
        &cfg,
        "out",
        PathBuf::from(crate::defaults::verify::OUT),
    )?;
    if let Some(dirs) = &args.merge {
        if args.quick
            || args.only.is_some()
            || args.common.seed.is_some()
            || args.seeds.is_some()
            || args.shard.is_some()
            || args.slurm.sbatch.is_some()
        {
            bail!("--merge takes its configuration from the shards: expected no --quick, --only, --seed, --seeds, --shard or --sbatch with it");
        }
        return merge(dirs, &ctx, &out_path, args);
    }
    let quick = args.quick || crate::common::cfg_get::<bool>(&cfg, "quick")?.unwrap_or(false);
    let size = if quick { Size::Quick } else { Size::Full };
    let only: Option<Vec<String>> = args
        .only
        .clone()
        .or(crate::common::cfg_get(&cfg, "only")?)
        .map(|ids| ids.iter().map(|id| id.trim().to_uppercase()).collect());
    let selected: Vec<&Claim> = match &only {
        None => claims.iter().collect(),
        Some(ids) => {
            let mut out = Vec::new();
            for id in ids {
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
    let seeds: usize = match args.seeds {
        Some(k) => k,
        None => crate::common::cfg_get(&cfg, "seeds")?.unwrap_or(VerifyConfig::default_seeds(size)),
    };
    if !(1..=1000).contains(&seeds) {
        bail!("--seeds: expected a number of seed pairs in 1..=1000, found {seeds}");
    }
    let config = RunConfig {
        version: env!("CARGO_PKG_VERSION").into(),
        seed: ctx.seed,
        seeds,
        size,
        only,
        claims: selected.iter().map(|c| c.info.id.to_string()).collect(),
    };
    if args.slurm.sbatch.is_some() && args.shard.is_some() {
        bail!("--sbatch writes a script that runs every shard: expected no --shard with it");
    }
    let plan = Plan {
        command: "verify",
        out: &out_path,
        threads_given: args.common.threads.is_some() || cfg.contains_key("threads"),
        merge_flags: if args.strict {
            vec!["--strict".into()]
        } else {
            vec![]
        },
        quiet: args.common.quiet,
    };
    if crate::slurm::handle(&args.slurm, &plan)? {
        return Ok(());
    }
    let shard = shards::resolve(args.shard.clone(), &cfg)?;
    let mine: Vec<&Claim> = selected
        .iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|s| i % s.count == s.index))
        .map(|(_, c)| *c)
        .collect();
    let out = OutputDir::create(&out_path)?;
    let vcfg = VerifyConfig {
        seed: ctx.seed,
        seeds,
        size,
        par: ctx.par,
    };
    let bar = ctx.bar(mine.len() as u64, "verify");
    let mut results = Vec::new();
    let mut figures = Vec::new();
    let mut times = Vec::new();
    for claim in mine {
        bar.set_prefix(claim.info.id);
        let t0 = Instant::now();
        let (result, figure) = run_claim(claim, &vcfg);
        let seconds = t0.elapsed().as_secs_f64();
        let info = claim.info;
        if let Some((name, svg)) = figure {
            out.write(&name, svg.as_bytes())?;
            figures.push((name, svg));
        }
        // A claim's result line is part of the results summary: stdout.
        let line = format!(
            "{:>4} {:<4} {:<48} seeds {:>2}/{:<2} value {:>11.4e}  threshold {:>10.3e}  ({:.1} s)",
            result.id,
            if result.passed { "pass" } else { "FAIL" },
            result.title,
            result.seeds_passed,
            result.seeds_applicable,
            result.value,
            result.threshold,
            seconds
        );
        bar.suspend(|| crate::common::say(args.common.quiet, &line))?;
        results.push(result);
        times.push(ClaimTime {
            id: info.id.into(),
            seconds,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let run = serde_json::json!({"shard": shard, "claim_seconds": times});
    if let Some(s) = shard {
        let file = ShardFile {
            fingerprint: shards::fingerprint(&config)?,
            config: config.clone(),
            shard: s,
            results: results.clone(),
            claim_seconds: times,
            threads: ctx.threads,
        };
        out.write_json("shard.json", &file)?;
    }
    match shard {
        Some(s) if s.count > 1 => {
            let mut summary = ctx.summary_header("verify");
            summary["config"] = serde_json::json!({"quick": quick, "only": config.only});
            summary["shard_claims"] =
                serde_json::to_value(results.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())?;
            summary["passed"] = results.iter().filter(|r| r.passed).count().into();
            summary["total"] = results.len().into();
            summary["run"] = run;
            summary["wall_seconds"] = ctx.seconds().into();
            out.write_json("summary.json", &summary)?;
            finish(
                out,
                &results,
                &format!("shard {}/{}: ", s.index, s.count),
                "summary.json",
                args,
            )
        }
        _ => {
            write_outputs(
                &out, &out_path, &ctx, &config, &results, &figures, run, false,
            )?;
            finish(out, &results, "", "report.html", args)
        }
    }
}

/// `claims.json`, `report.md`, `report.html`, `summary.json` (and, when `write_figures`, the figures).
#[allow(clippy::too_many_arguments)]
fn write_outputs(
    out: &OutputDir,
    out_path: &Path,
    ctx: &Ctx,
    config: &RunConfig,
    results: &[ClaimResult],
    figures: &[(String, String)],
    run: serde_json::Value,
    write_figures: bool,
) -> Result<()> {
    let quick = config.size == Size::Quick;
    let header = format!(
        "nff {} · size {} · base seed {} · {} seed pairs",
        config.version,
        if quick { "quick" } else { "full" },
        config.seed,
        config.seeds,
    );
    if write_figures {
        for (name, svg) in figures {
            out.write(name, svg.as_bytes())?;
        }
    }
    out.write_json("claims.json", &results)?;
    let repo = repo_link(out_path);
    out.write(
        "report.md",
        report::markdown(results, &header, &repo).as_bytes(),
    )?;
    out.write(
        "report.html",
        report::html(results, figures, &header, &repo).as_bytes(),
    )?;
    let mut summary = ctx.summary_header("verify");
    summary["config"] = serde_json::json!({"quick": quick, "only": config.only});
    summary["passed"] = results.iter().filter(|r| r.passed).count().into();
    summary["total"] = results.len().into();
    summary["run"] = run;
    summary["wall_seconds"] = ctx.seconds().into();
    out.write_json("summary.json", &summary)?;
    Ok(())
}

/// The relative link from the output directory `out` to the repository root this binary was built from
/// (for the report's links to docs/), ending in `/`; empty if either cannot be resolved.
fn repo_link(out: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (Ok(root), Some(name)) = (root.canonicalize(), out.file_name()) else {
        return String::new();
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(parent) = parent.canonicalize() else {
        return String::new();
    };
    let out = parent.join(name);
    let a: Vec<_> = out.components().collect();
    let b: Vec<_> = root.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut link = "../".repeat(a.len() - common);
    for c in &b[common..] {
        link.push_str(&c.as_os_str().to_string_lossy());
        link.push('/');
    }
    link
}

/// The closing results line on stdout (printed before the output directory is moved into place, like
/// every command's), the failed claims named on stderr, and `--strict`.
fn finish(
    out: OutputDir,
    results: &[ClaimResult],
    prefix: &str,
    file: &str,
    args: &VerifyArgs,
) -> Result<()> {
    let failed_ids: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.id.as_str())
        .collect();
    let failed = failed_ids.len();
    let path = out.target().join(file);
    let line = format!(
        "{prefix}{} of {} claims passed{}; report in {}",
        results.len() - failed,
        results.len(),
        if failed > 0 {
            format!(" (failed: {})", failed_ids.join(", "))
        } else {
            String::new()
        },
        path.display()
    );
    out.say_and_commit(args.common.quiet, &line)?;
    if failed > 0 {
        // A diagnostic too, also under --quiet: a failed claim is never silent.
        crate::common::say_err(&format!(
            "{prefix}failed: {} (see {})",
            failed_ids.join(", "),
            path.display()
        ));
    }
    if failed > 0 && args.strict {
        bail!(
            "{failed} of {} claims failed (see {})",
            results.len(),
            path.display()
        );
    }
    Ok(())
}

/// `nff verify --merge DIR…`: check the shards are one complete split of one configuration, each
/// holding exactly its slice of the claims, and write the outputs of one run.
fn merge(dirs: &[PathBuf], ctx: &Ctx, out_path: &Path, args: &VerifyArgs) -> Result<()> {
    let files: Vec<ShardFile> = dirs
        .iter()
        .map(|d| shards::read(d, "nff verify"))
        .collect::<Result<_>>()?;
    for (d, f) in dirs.iter().zip(&files) {
        if f.config.version != env!("CARGO_PKG_VERSION") {
            bail!(
                "shard {} was written by nff {}: expected shards of nff {}",
                d.display(),
                f.config.version,
                env!("CARGO_PKG_VERSION")
            );
        }
        let fp = shards::fingerprint(&f.config)?;
        if fp != f.fingerprint {
            bail!(
                "shard {}: its shard.json records fingerprint {} but its configuration gives {fp}",
                d.display(),
                f.fingerprint
            );
        }
    }
    let entries: Vec<shards::Entry<'_>> = dirs
        .iter()
        .zip(&files)
        .map(|(d, f)| shards::Entry {
            dir: d,
            shard: f.shard,
            fingerprint: &f.fingerprint,
        })
        .collect();
    shards::check_complete(&entries)?;
    let config = files[0].config.clone();
    let n = files[0].shard.count;
    // by_index[k] = (directory, file) of shard k.
    let mut by_index: Vec<Option<(&Path, &ShardFile)>> = vec![None; n];
    for (d, f) in dirs.iter().zip(&files) {
        by_index[f.shard.index] = Some((d, f));
    }
    let by_index: Vec<(&Path, &ShardFile)> = by_index.into_iter().flatten().collect();
    for (k, (d, f)) in by_index.iter().enumerate() {
        let expected: Vec<&str> = config
            .claims
            .iter()
            .enumerate()
            .filter(|(i, _)| i % n == k)
            .map(|(_, id)| id.as_str())
            .collect();
        let found: Vec<&str> = f.results.iter().map(|r| r.id.as_str()).collect();
        if expected != found {
            bail!(
                "shard {} ({k}/{n}) holds the claims [{}]: expected [{}]",
                d.display(),
                found.join(", "),
                expected.join(", ")
            );
        }
    }
    let mut results = Vec::new();
    let mut figures = Vec::new();
    let mut times = Vec::new();
    for i in 0..config.claims.len() {
        let (d, f) = by_index[i % n];
        let r = &f.results[i / n];
        if let Some(name) = &r.figure {
            let p = d.join(name);
            let svg = std::fs::read_to_string(&p).map_err(|e| {
                anyhow::anyhow!(
                    "shard {}: reading the figure {} of {}: {e}",
                    d.display(),
                    p.display(),
                    r.id
                )
            })?;
            figures.push((name.clone(), svg));
        }
        results.push(r.clone());
        if let Some(t) = f.claim_seconds.iter().find(|t| t.id == r.id) {
            times.push(t.clone());
        }
    }
    let out = OutputDir::create(out_path)?;
    let run = serde_json::json!({
        "merged_from": shards::dir_strings(dirs),
        "claim_seconds": times,
        "shard_threads": files.iter().map(|f| f.threads).collect::<Vec<_>>(),
    });
    write_outputs(&out, out_path, ctx, &config, &results, &figures, run, true)?;
    finish(
        out,
        &results,
        &format!("merged {n} shards: "),
        "report.html",
        args,
    )
}
