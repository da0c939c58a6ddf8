//! `nff sweep`: finite width → NFF. A width × seed sweep with coupled labels (each width-m sample is a
//! block of m consecutive units of a width-M reference run — all M/m blocks by default, or only the
//! first with `--samples first`), reporting the error of ŷ(T) and of the per-particle features against
//! the reference and the log-log slopes fitted against m_eff = mM/(M − m) (math.md §5; claim C5; the
//! library's `nff_flow::sweep` docs explain the estimator).
//!
//! Sharding: `--shard k/n` (or `SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT` when set) runs one slice
//! of the jobs and writes `shard.json` (with a configuration fingerprint); `nff sweep --merge DIR…`
//! joins shard outputs into the same `summary.json`, `results.csv` and `sweep.svg` a single run gives
//! (the checks are `crate::shards`'). `--sbatch FILE` writes a Slurm script for the whole
//! array-and-merge (`crate::slurm`).
use crate::common::{check_range, pick, CommonArgs, Ctx};
use crate::defaults::{self, sweep as D};
use crate::output::OutputDir;
use crate::plot::{LinePlot, Series};
use crate::setup::{DataOpts, Footprint, LoadedData};
use crate::shards;
use crate::slurm::{Plan, SlurmArgs};
use anyhow::{bail, Result};
use clap::Args;
use nff_core::{Activation, Arch, Loss, Regularizer};
use nff_flow::{
    merge_shards, run_shard, IntegratorSpec, Samples, Shard, ShardReport, SweepConfig, SweepInit,
    SweepReport,
};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Options of `nff sweep`.
#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    /// Architecture (two-level, dnn, resnet).
    #[arg(long)]
    pub arch: Option<String>,
    /// Depth L.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Activation.
    #[arg(long)]
    pub activation: Option<String>,
    /// L2 strength λ.
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Widths m (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub widths: Option<Vec<usize>>,
    /// Number of seeds (seed, seed+1, …).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Reference width M (≥ every width).
    #[arg(long)]
    pub reference_width: Option<usize>,
    /// Final time T.
    #[arg(long)]
    pub time: Option<f64>,
    /// Integrator: euler, heun, rk4.
    #[arg(long)]
    pub integrator: Option<String>,
    /// Step size.
    #[arg(long)]
    pub dt: Option<f64>,
    /// Samples per (width, seed): `blocks` (every block of m units of the reference) or `first`.
    #[arg(long)]
    pub samples: Option<String>,
    #[command(flatten)]
    /// The data.
    pub data: DataOpts,
    /// Run shard k of n (0-based), e.g. 2/8; defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT.
    #[arg(long)]
    pub shard: Option<String>,
    /// Merge the shard outputs in these directories instead of running.
    #[arg(long, num_args = 1..)]
    pub merge: Option<Vec<PathBuf>>,
    #[command(flatten)]
    /// Running as a Slurm job array.
    pub slurm: SlurmArgs,
    #[command(flatten)]
    /// Shared options.
    pub common: CommonArgs,
}

/// Run `nff sweep`.
pub fn run(args: &SweepArgs) -> Result<()> {
    let cfg = crate::common::read_config_for::<SweepArgs>(args.common.config.as_deref())?;
    let ctx = Ctx::new(&args.common, &cfg)?;
    let out_path: PathBuf = pick(args.common.out.clone(), &cfg, "out", PathBuf::from(D::OUT))?;
    if let Some(dirs) = &args.merge {
        if args.shard.is_some() || args.slurm.sbatch.is_some() {
            bail!("--merge joins finished shards: expected no --shard or --sbatch with it");
        }
        return merge(dirs, &ctx, &out_path, args.common.quiet);
    }
    let arch: Arch = pick(args.arch.clone(), &cfg, "arch", defaults::ARCH.to_string())?.parse()?;
    let depth = pick(
        args.depth,
        &cfg,
        "depth",
        if arch == Arch::TwoLevel {
            1
        } else {
            defaults::DEPTH
        },
    )?;
    let activation: Activation = pick(
        args.activation.clone(),
        &cfg,
        "activation",
        defaults::ACTIVATION.to_string(),
    )?
    .parse()?;
    let lambda = check_range(
        "lambda",
        pick(args.lambda, &cfg, "lambda", defaults::LAMBDA)?,
        0.0,
        f64::INFINITY,
    )?;
    let widths: Vec<usize> = pick(args.widths.clone(), &cfg, "widths", D::WIDTHS.to_vec())?;
    let n_seeds: u64 = pick(args.seeds, &cfg, "seeds", D::SEEDS)?;
    let reference_width = pick(
        args.reference_width,
        &cfg,
        "reference_width",
        D::REFERENCE_WIDTH,
    )?;
    let t_final = check_range(
        "time",
        pick(args.time, &cfg, "time", D::TIME)?,
        f64::MIN_POSITIVE,
        f64::INFINITY,
    )?;
    let dt = check_range(
        "dt",
        pick(args.dt, &cfg, "dt", D::DT)?,
        f64::MIN_POSITIVE,
        f64::INFINITY,
    )?;
    let integrator = match pick(
        args.integrator.clone(),
        &cfg,
        "integrator",
        D::INTEGRATOR.to_string(),
    )?
    .as_str()
    {
        "euler" => IntegratorSpec::Euler { dt },
        "heun" => IntegratorSpec::Heun { dt },
        "rk4" => IntegratorSpec::Rk4 { dt },
        other => bail!("unknown sweep integrator '{other}': expected one of euler, heun, rk4"),
    };
    let samples: Samples = pick(
        args.samples.clone(),
        &cfg,
        "samples",
        D::SAMPLES.to_string(),
    )?
    .parse()?;
    let LoadedData {
        data, spec: data_s, ..
    } = args.data.load(&cfg, ctx.seed)?;
    crate::common::check_steps(
        &format!(
            "--time {} / --dt {}",
            crate::common::fmt_num(t_final),
            crate::common::fmt_num(dt)
        ),
        (t_final / dt).ceil(),
    )?;
    {
        // Every worker thread runs one flow at a time, the widest at the reference width M (its state,
        // the integrator's stages, its features and the stored final features of each sample).
        let stages = match integrator {
            IntegratorSpec::Rk4 { .. } => 6.0,
            IntegratorSpec::Heun { .. } => 3.0,
            _ => 2.0,
        };
        let widest = widths
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(reference_width);
        let one = Footprint {
            params: stages + 6.0,
            features: 12.0,
        }
        .floats(data.n(), data.d(), widest, depth.max(1));
        crate::common::check_memory(
            &format!(
                "--reference-width {reference_width}, --depth {depth} on N = {}, d = {} with {} threads",
                data.n(),
                data.d(),
                ctx.threads
            ),
            "one flow per thread: parameters, integrator copies and features",
            one * (ctx.threads as f64 + 1.0),
        )?;
    }
    let config = SweepConfig {
        arch,
        depth,
        activation,
        loss: Loss::Squared,
        reg: Regularizer::l2(lambda),
        t_final,
        integrator,
        widths: widths.clone(),
        seeds: (0..n_seeds).map(|s| ctx.seed + s).collect(),
        reference_width,
        init: SweepInit::default(),
        samples,
    };
    config.check()?;
    let threads_given = args.common.threads.is_some() || cfg.contains_key("threads");
    let plan = Plan {
        command: "sweep",
        out: &out_path,
        threads_given,
        merge_flags: vec![],
        quiet: args.common.quiet,
    };
    if args.slurm.sbatch.is_some() && args.shard.is_some() {
        bail!("--sbatch writes a script that runs every shard: expected no --shard with it");
    }
    if crate::slurm::handle(&args.slurm, &plan)? {
        return Ok(());
    }
    let shard = shards::resolve(args.shard.clone(), &cfg)?;
    let out = OutputDir::create(&out_path)?;
    let bar = ctx.bar(1, "sweep");
    let shard_report = run_shard(&config, &data, shard.unwrap_or(Shard::ALL))?;
    bar.finish_and_clear();
    let file = ShardFile {
        version: env!("CARGO_PKG_VERSION").into(),
        fingerprint: sweep_fingerprint(&shard_report)?,
        data: data_s.clone(),
        report: shard_report,
    };
    out.write_json("shard.json", &file)?;
    let run = serde_json::json!({"shard": shard});
    let line = if shard.is_none_or(|s| s.count == 1) {
        let report = merge_shards(&[file.report])?;
        write_report(&out, &ctx, &report, &data_s, run)?;
        format!(
            "{}; wrote {}",
            results_line(&report),
            out.target().display()
        )
    } else {
        let mut summary = ctx.summary_header("sweep");
        summary["config"] = serde_json::to_value(&config)?;
        summary["data"] = data_s.into();
        summary["n"] = file.report.n.into();
        summary["d"] = file.report.d.into();
        summary["run"] = run;
        summary["jobs"] = file.report.jobs.len().into();
        out.write_json("summary.json", &summary)?;
        format!(
            "sweep shard {}: {} jobs; wrote {} (merge the shards with nff sweep --merge for the slopes)",
            shard.map_or("0/1".into(), |s| format!("{}/{}", s.index, s.count)),
            file.report.jobs.len(),
            out.target().display()
        )
    };
    out.say_and_commit(args.common.quiet, &line)?;
    Ok(())
}

/// `shard.json` of a sweep shard: the library's [`ShardReport`] with the nff version, the configuration
/// fingerprint and the `--data` text.
#[derive(serde::Serialize, serde::Deserialize)]
struct ShardFile {
    version: String,
    fingerprint: String,
    data: String,
    #[serde(flatten)]
    report: ShardReport,
}

/// The fingerprint of everything that determines a shard's results except which shard it is: the nff
/// version, the sweep configuration and the data (N, d and the hash of their bits).
fn sweep_fingerprint(r: &ShardReport) -> Result<String> {
    shards::fingerprint(&serde_json::json!({
        "command": "sweep",
        "version": env!("CARGO_PKG_VERSION"),
        "config": r.config,
        "n": r.n,
        "d": r.d,
        "data_fingerprint": r.data_fingerprint,
    }))
}

/// `nff sweep --merge DIR…`: check the shards are one complete split of one configuration and write
/// the single run's `shard.json`, `summary.json`, `results.csv` and `sweep.svg`.
fn merge(dirs: &[PathBuf], ctx: &Ctx, out_path: &std::path::Path, quiet: bool) -> Result<()> {
    let files: Vec<ShardFile> = dirs
        .iter()
        .map(|d| shards::read(d, "nff sweep"))
        .collect::<Result<_>>()?;
    for (d, f) in dirs.iter().zip(&files) {
        let fp = sweep_fingerprint(&f.report)?;
        if fp != f.fingerprint || f.version != env!("CARGO_PKG_VERSION") {
            bail!(
                "shard {} is of another configuration or nff version: it records fingerprint {} of nff {}, its contents give {fp} under nff {}",
                d.display(),
                f.fingerprint,
                f.version,
                env!("CARGO_PKG_VERSION")
            );
        }
    }
    let entries: Vec<shards::Entry<'_>> = dirs
        .iter()
        .zip(&files)
        .map(|(d, f)| shards::Entry {
            dir: d,
            shard: f.report.shard,
            fingerprint: &f.fingerprint,
        })
        .collect();
    shards::check_complete(&entries)?;
    let (data, fingerprint) = (files[0].data.clone(), files[0].fingerprint.clone());
    let reports: Vec<ShardReport> = files.into_iter().map(|f| f.report).collect();
    let report = merge_shards(&reports)?;
    let out = OutputDir::create(out_path)?;
    // The whole sweep as one shard: the shard.json an unsharded run writes.
    let whole = ShardFile {
        version: env!("CARGO_PKG_VERSION").into(),
        fingerprint,
        data: data.clone(),
        report: ShardReport {
            config: report.config.clone(),
            n: report.n,
            d: report.d,
            data_fingerprint: report.data_fingerprint,
            shard: Shard::ALL,
            jobs: report.jobs.clone(),
        },
    };
    out.write_json("shard.json", &whole)?;
    write_report(
        &out,
        ctx,
        &report,
        &data,
        serde_json::json!({"merged_from": shards::dir_strings(dirs)}),
    )?;
    let line = format!(
        "merged {} shards: {}; wrote {}",
        reports.len(),
        results_line(&report),
        out.target().display()
    );
    out.say_and_commit(quiet, &line)?;
    Ok(())
}

/// The results summary of a whole sweep: the mean errors per width and the fitted slopes.
fn results_line(report: &SweepReport) -> String {
    let slope = |s: Option<f64>| s.map_or("—".to_string(), |v| format!("{v:.3}"));
    let means: Vec<String> = report
        .per_width
        .iter()
        .map(|w| format!("m = {}: {:.4e}", w.width, w.mean_yhat_error))
        .collect();
    format!(
        "sweep against M = {}: mean ‖ŷ − ŷ_ref‖ {}; slopes against m_eff: ŷ {}, features {} (against m: ŷ {})",
        report.config.reference_width,
        means.join(", "),
        slope(report.slope_yhat),
        slope(report.slope_feature),
        slope(report.slope_yhat_raw)
    )
}

/// `summary.json` (report + slopes), `results.csv` (one row per job) and `sweep.svg`. Of these, only
/// `summary.json`'s `threads`, `wall_seconds` and `run` (the shard, or the directories merged) depend
/// on how the sweep was run; everything else is the same for one run and a merge of its shards.
fn write_report(
    out: &OutputDir,
    ctx: &Ctx,
    report: &SweepReport,
    data: &str,
    run: serde_json::Value,
) -> Result<()> {
    let mut summary = ctx.summary_header("sweep");
    summary["config"] = serde_json::to_value(&report.config)?;
    summary["data"] = data.into();
    summary["n"] = report.n.into();
    summary["d"] = report.d.into();
    summary["run"] = run;
    summary["per_width"] = serde_json::to_value(&report.per_width)?;
    summary["slope_yhat"] = serde_json::to_value(report.slope_yhat)?;
    summary["slope_feature"] = serde_json::to_value(report.slope_feature)?;
    summary["slope_yhat_against_m"] = serde_json::to_value(report.slope_yhat_raw)?;
    summary["jobs"] = serde_json::to_value(&report.jobs)?;
    summary["wall_seconds"] = ctx.seconds().into();
    out.write_json("summary.json", &summary)?;
    let big = report.config.reference_width;
    let mut csv = String::from("width,effective_width,seed,block,yhat_error,feature_error\n");
    let mut samples = Vec::new();
    for j in &report.jobs {
        let m_eff = nff_flow::effective_width(j.width, big);
        for (b, (ey, ez)) in j.yhat_errors.iter().zip(&j.feature_errors).enumerate() {
            writeln!(
                csv,
                "{},{:?},{},{},{:?},{:?}",
                j.width, m_eff, j.seed, b, ey, ez
            )?;
            if m_eff.is_finite() {
                samples.push((m_eff, *ey));
            }
        }
    }
    out.write("results.csv", csv.as_bytes())?;
    let pts = |f: fn(&nff_flow::WidthSummary) -> f64| {
        report
            .per_width
            .iter()
            .filter(|w| w.effective_width.is_finite())
            .map(|w| (w.effective_width, f(w)))
            .collect::<Vec<_>>()
    };
    let mut series = vec![
        Series::points("‖ŷ(T) − ŷ_ref(T)‖ per sample", samples),
        Series::line_points("mean ‖ŷ(T) − ŷ_ref(T)‖", pts(|w| w.mean_yhat_error)),
        Series::line_points(
            "mean per-particle feature error",
            pts(|w| w.mean_feature_error),
        ),
    ];
    if let Some(first) = pts(|w| w.mean_yhat_error).first().copied() {
        series.push(Series::reference(
            "slope −1/2 through the first mean",
            pts(|w| w.effective_width)
                .iter()
                .map(|&(m, _)| (m, first.1 * (m / first.0).powf(-0.5)))
                .collect(),
        ));
    }
    let svg = LinePlot {
        title: format!(
            "width sweep (M = {big}): slope ŷ {:.3}, features {:.3}",
            report.slope_yhat.unwrap_or(f64::NAN),
            report.slope_feature.unwrap_or(f64::NAN)
        ),
        x_label: "effective width m_eff = mM/(M − m)".into(),
        y_label: "error vs the width-M reference at T".into(),
        log_x: true,
        log_y: true,
        series,
        hlines: vec![],
    }
    .to_svg()?;
    out.write("sweep.svg", svg.as_bytes())?;
    Ok(())
}
