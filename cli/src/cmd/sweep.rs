//! `nff sweep`: finite width → NFF. A width × seed sweep with coupled labels (each width-m sample is a
//! block of m consecutive units of a width-M reference run — all M/m blocks by default, or only the
//! first with `--samples first`), reporting the error of ŷ(T) and of the per-particle features against
//! the reference and the log-log slopes fitted against m_eff = mM/(M − m) (math.md §5; claim C5; the
//! library's `nff_flow::sweep` docs explain the estimator).
//!
//! Sharding: `--shard k/n` (or `SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT` when set) runs one slice
//! of the jobs and writes `shard.json`; `nff sweep --merge DIR…` joins shard outputs into the same
//! `summary.json` a single run gives.
use crate::common::{cfg_get, check_range, pick, read_config, CommonArgs, Ctx};
use crate::output::OutputDir;
use crate::plot::{LinePlot, Series};
use crate::setup::{DataOpts, LoadedData};
use anyhow::{bail, Context, Result};
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
    /// Shared options.
    pub common: CommonArgs,
}

fn parse_shard(s: &str) -> Result<Shard> {
    let (k, n) = s
        .split_once('/')
        .with_context(|| format!("invalid --shard '{s}': expected k/n, e.g. 0/4"))?;
    let k: usize = k
        .trim()
        .parse()
        .with_context(|| format!("invalid --shard '{s}': expected k/n with integers"))?;
    let n: usize = n
        .trim()
        .parse()
        .with_context(|| format!("invalid --shard '{s}': expected k/n with integers"))?;
    Ok(Shard::new(k, n)?)
}

fn shard_from_env() -> Result<Option<Shard>> {
    match (
        std::env::var("SLURM_ARRAY_TASK_ID"),
        std::env::var("SLURM_ARRAY_TASK_COUNT"),
    ) {
        (Ok(id), Ok(count)) => {
            let k: usize = id
                .parse()
                .with_context(|| format!("SLURM_ARRAY_TASK_ID '{id}' is not an integer"))?;
            let n: usize = count
                .parse()
                .with_context(|| format!("SLURM_ARRAY_TASK_COUNT '{count}' is not an integer"))?;
            let min: usize = std::env::var("SLURM_ARRAY_TASK_MIN")
                .ok()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            Ok(Some(Shard::new(k.saturating_sub(min), n)?))
        }
        _ => Ok(None),
    }
}

/// Run `nff sweep`.
pub fn run(args: &SweepArgs) -> Result<()> {
    let cfg = read_config(args.common.config.as_deref())?;
    let ctx = Ctx::new(&args.common, &cfg)?;
    let out_path: PathBuf = pick(
        args.common.out.clone(),
        &cfg,
        "out",
        PathBuf::from("out/sweep"),
    )?;
    if let Some(dirs) = &args.merge {
        let mut shards = Vec::new();
        for d in dirs {
            let p = d.join("shard.json");
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            let s: ShardReport =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
            shards.push(s);
        }
        let report = merge_shards(&shards)?;
        let out = OutputDir::create(&out_path)?;
        write_report(
            &out,
            &ctx,
            &report,
            serde_json::json!({"merged_from": dirs}),
        )?;
        let dir = out.commit()?;
        if !args.common.quiet {
            eprintln!("merged {} shards into {}", shards.len(), dir.display());
        }
        return Ok(());
    }
    let arch: Arch = pick(args.arch.clone(), &cfg, "arch", "resnet".to_string())?.parse()?;
    let depth = pick(
        args.depth,
        &cfg,
        "depth",
        if arch == Arch::TwoLevel { 1 } else { 3 },
    )?;
    let activation: Activation = pick(
        args.activation.clone(),
        &cfg,
        "activation",
        "tanh".to_string(),
    )?
    .parse()?;
    let lambda = check_range(
        "lambda",
        pick(args.lambda, &cfg, "lambda", 0.0)?,
        0.0,
        f64::INFINITY,
    )?;
    let widths: Vec<usize> = pick(args.widths.clone(), &cfg, "widths", vec![32, 64, 128, 256])?;
    let n_seeds: u64 = pick(args.seeds, &cfg, "seeds", 6)?;
    let reference_width = pick(args.reference_width, &cfg, "reference_width", 2048)?;
    let t_final = check_range(
        "time",
        pick(args.time, &cfg, "time", 2.0)?,
        f64::MIN_POSITIVE,
        f64::INFINITY,
    )?;
    let dt = check_range(
        "dt",
        pick(args.dt, &cfg, "dt", 0.05)?,
        f64::MIN_POSITIVE,
        f64::INFINITY,
    )?;
    let integrator = match pick(
        args.integrator.clone(),
        &cfg,
        "integrator",
        "euler".to_string(),
    )?
    .as_str()
    {
        "euler" => IntegratorSpec::Euler { dt },
        "heun" => IntegratorSpec::Heun { dt },
        "rk4" => IntegratorSpec::Rk4 { dt },
        other => bail!("unknown sweep integrator '{other}': expected one of euler, heun, rk4"),
    };
    let samples: Samples =
        pick(args.samples.clone(), &cfg, "samples", "blocks".to_string())?.parse()?;
    let LoadedData {
        data, spec: data_s, ..
    } = args.data.load(&cfg, ctx.seed, 8, 3)?;
    let config = SweepConfig {
        arch,
        depth,
        activation,
        loss: Loss::Squared,
        reg: Regularizer::l2(lambda),
        t_final,
        integrator,
        widths,
        seeds: (0..n_seeds).map(|s| ctx.seed + s).collect(),
        reference_width,
        init: SweepInit::default(),
        samples,
    };
    config.check()?;
    let shard = match args.shard.clone().or(cfg_get(&cfg, "shard")?) {
        Some(s) => Some(parse_shard(&s)?),
        None => shard_from_env()?,
    };
    let out = OutputDir::create(&out_path)?;
    let bar = ctx.bar(1, "sweep");
    let shard_report = run_shard(&config, &data, shard.unwrap_or(Shard::ALL))?;
    bar.finish_and_clear();
    out.write_json("shard.json", &shard_report)?;
    let extra = serde_json::json!({"data": data_s, "shard": shard});
    if shard.is_none_or(|s| s.count == 1) {
        let report = merge_shards(&[shard_report])?;
        write_report(&out, &ctx, &report, extra)?;
    } else {
        let mut summary = ctx.summary_header("sweep");
        summary["config"] = serde_json::to_value(&config)?;
        summary["shard"] = extra;
        summary["jobs"] = shard_report.jobs.len().into();
        out.write_json("summary.json", &summary)?;
    }
    let dir = out.commit()?;
    if !args.common.quiet {
        eprintln!("sweep written to {}", dir.display());
    }
    Ok(())
}

/// `summary.json` (report + slopes), `results.csv` (one row per job) and `sweep.svg`.
fn write_report(
    out: &OutputDir,
    ctx: &Ctx,
    report: &SweepReport,
    extra: serde_json::Value,
) -> Result<()> {
    let mut summary = ctx.summary_header("sweep");
    summary["config"] = serde_json::to_value(&report.config)?;
    summary["run"] = extra;
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
        series.push(Series::line(
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
