//! `nff convex`: solve a repopulated convex program (math.md §4) to a certified optimum.
//!
//! - `--problem two-level` (§4.1): candidates θ_k with reference weights ρ₀ from `--candidates FILE.npz`
//!   (`theta` (K, d), `rho0` (K,)) or generated (`--grid PER_AXIS --radius R` for d ≤ 3 including a bias
//!   column, or `--gaussian K --sigma S`); minimizes
//!   (1/N)Σφ(Σ_k w_k h(θ_k·x_i), y_i) + λ₁Σw_k²/(2ρ_k) + λ₂Σρ_k‖θ_k‖²/2 + τΣρ_k log(ρ_k/ρ₀_k).
//! - `--problem deep` (§4.2–4.4): the candidates are the particles of a trained DNN state (`--init
//!   STATE.npz`) plus `--fresh K` samples per layer; group-norm strengths `--lambda`, `--q`.
//!
//! Writes `summary.json` (objective, certified gap, residuals, iterations, time) and `solution.npz`;
//! the deep problem also writes the mapped network as `state.npz`.
use crate::common::{pick, read_config, CommonArgs, Ctx};
use crate::output::OutputDir;
use crate::setup::{DataOpts, LoadedData};
use anyhow::{bail, Result};
use clap::Args;
use faer::Mat;
use nff_core::io::NpzWriter;
use nff_core::{Activation, Loss, Problem, Regularizer};
use nff_solvers::deep::{DeepOptions, DeepProgram};
use nff_solvers::{candidates, TwoLevelConfig, TwoLevelOptions, TwoLevelProgram};
use std::path::PathBuf;

/// Options of `nff convex`.
#[derive(Args, Debug, Clone)]
pub struct ConvexArgs {
    /// two-level or deep.
    #[arg(long)]
    pub problem: Option<String>,
    #[command(flatten)]
    /// The data (two-level).
    pub data: DataOpts,
    /// Candidate file (.npz with `theta` (K, d) and `rho0` (K,)).
    #[arg(long)]
    pub candidates: Option<PathBuf>,
    /// Generate a grid of PER_AXIS^d candidates on [−R, R]^d.
    #[arg(long)]
    pub grid: Option<usize>,
    /// Grid radius R.
    #[arg(long)]
    pub radius: Option<f64>,
    /// Generate K Gaussian candidates.
    #[arg(long)]
    pub gaussian: Option<usize>,
    /// Standard deviation of Gaussian candidates.
    #[arg(long)]
    pub sigma: Option<f64>,
    /// Activation.
    #[arg(long)]
    pub activation: Option<String>,
    /// Loss.
    #[arg(long)]
    pub loss: Option<String>,
    /// λ₁ > 0 (output weights).
    #[arg(long)]
    pub lambda1: Option<f64>,
    /// λ₂ ≥ 0 (feature cost).
    #[arg(long)]
    pub lambda2: Option<f64>,
    /// τ ≥ 0 (entropy).
    #[arg(long)]
    pub tau: Option<f64>,
    /// Two-level: target certified relative gap (P − D)/|P| (default 1e-11).
    #[arg(long)]
    pub tol_gap: Option<f64>,
    /// Two-level, for benchmarking: solve R times in this process and report the fastest
    /// `solve_seconds` (every solve is deterministic and gives the same solution; default 1).
    #[arg(long)]
    pub repeat: Option<usize>,
    /// Deep: a trained DNN state whose particles seed the candidate sets.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Deep: fresh candidate samples per layer.
    #[arg(long)]
    pub fresh: Option<usize>,
    /// Deep: group-norm strength λ.
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Deep: group-norm exponent q ≥ 1.
    #[arg(long)]
    pub q: Option<f64>,
    #[command(flatten)]
    /// Shared options.
    pub common: CommonArgs,
}

/// Run `nff convex`.
pub fn run(args: &ConvexArgs) -> Result<()> {
    let cfg = read_config(args.common.config.as_deref())?;
    let ctx = Ctx::new(&args.common, &cfg)?;
    let activation: Activation = pick(
        args.activation.clone(),
        &cfg,
        "activation",
        "tanh".to_string(),
    )?
    .parse()?;
    let loss: Loss = pick(args.loss.clone(), &cfg, "loss", "squared".to_string())?.parse()?;
    let out_path: PathBuf = pick(
        args.common.out.clone(),
        &cfg,
        "out",
        PathBuf::from("out/convex"),
    )?;
    match pick(
        args.problem.clone(),
        &cfg,
        "problem",
        "two-level".to_string(),
    )?
    .as_str()
    {
        "two-level" => two_level(args, &cfg, &ctx, activation, loss, out_path),
        "deep" => deep(args, &cfg, &ctx, activation, loss, out_path),
        other => bail!("unknown problem '{other}': expected one of two-level, deep"),
    }
}

fn two_level(
    args: &ConvexArgs,
    cfg: &toml::Table,
    ctx: &Ctx,
    activation: Activation,
    loss: Loss,
    out_path: PathBuf,
) -> Result<()> {
    let LoadedData {
        data,
        spec: data_s,
        bias,
    } = args.data.load(cfg, ctx.seed, 16, 1)?;
    let d = data.d();
    let (theta, rho0, source) = match (&args.candidates, args.grid, args.gaussian) {
        (Some(path), None, None) => {
            let npz = nff_core::io::read_npz(path)?;
            let theta = npz.matrix("theta")?;
            let rho0 = npz.vector("rho0")?;
            (theta, rho0, format!("file:{}", path.display()))
        }
        (None, Some(per_axis), None) => {
            let radius = pick(args.radius, cfg, "radius", 3.0)?;
            let theta = candidates::grid(d, per_axis, radius)?;
            let k = theta.nrows();
            (
                theta,
                candidates::uniform_weights(k),
                format!("grid:{per_axis}^{d} on [-{radius}, {radius}]"),
            )
        }
        (None, None, g) => {
            let k = g.unwrap_or(512);
            let sigma = pick(args.sigma, cfg, "sigma", 1.0)?;
            let theta = candidates::gaussian(k, d, sigma, ctx.seed)?;
            (
                theta,
                candidates::uniform_weights(k),
                format!("gaussian:{k} σ={sigma}"),
            )
        }
        _ => bail!(
            "give one candidate source: --candidates FILE.npz, --grid PER_AXIS or --gaussian K"
        ),
    };
    if theta.ncols() != d {
        bail!("candidates do not fit the data: expected theta with {d} columns (the data's d), found {}", theta.ncols());
    }
    let config = TwoLevelConfig {
        lambda1: pick(args.lambda1, cfg, "lambda1", 0.01)?,
        lambda2: pick(args.lambda2, cfg, "lambda2", 0.0)?,
        tau: pick(args.tau, cfg, "tau", 0.0)?,
    };
    let program = TwoLevelProgram::new(&data, activation, loss, theta.as_ref(), &rho0, config)?;
    let out = OutputDir::create(&out_path)?;
    let defaults = TwoLevelOptions::default();
    let options = TwoLevelOptions {
        tol_gap: pick(args.tol_gap, cfg, "tol_gap", defaults.tol_gap)?,
        threads: ctx.threads,
        ..defaults
    };
    let repeat: usize = pick(args.repeat, cfg, "repeat", 1)?;
    if repeat == 0 {
        bail!("invalid --repeat: expected at least 1, found 0");
    }
    let mut sol = program.solve(&options)?;
    let mut all_seconds = vec![sol.seconds];
    for _ in 1..repeat {
        let again = program.solve(&options)?;
        all_seconds.push(again.seconds);
        if again.seconds < sol.seconds {
            sol = again;
        }
    }
    let k = rho0.len();
    let mut npz = NpzWriter::create(out.path("solution.npz"))?;
    npz.add_matrix("theta", theta.as_ref())?;
    npz.add("rho0", &[k], &rho0)?;
    npz.add("w", &[k], &sol.w)?;
    npz.add("rho", &[k], &sol.rho)?;
    npz.add("u_tilde", &[k], &sol.u_tilde)?;
    npz.add("u_bar", &[k], &sol.u_bar)?;
    npz.add("predictions", &[data.n()], &sol.predictions)?;
    npz.finish()?;
    let mut summary = ctx.summary_header("convex");
    summary["config"] = serde_json::json!({
        "problem": "two-level", "data": data_s, "n": data.n(), "d": d, "bias": bias,
        "candidates": source, "k": k, "activation": activation, "loss": loss, "strengths": config,
        "tol_gap": options.tol_gap,
    });
    summary["objective"] = sol.objective.into();
    summary["gap"] = sol.gap.into();
    summary["relative_gap"] = sol.relative_gap.into();
    summary["dual_objective"] = sol.dual_objective.into();
    summary["kkt"] = serde_json::to_value(&sol.kkt)?;
    summary["diagnostics"] = serde_json::to_value(&sol.diagnostics)?;
    summary["iterations"] = sol.iterations.into();
    summary["solve_seconds"] = sol.seconds.into();
    summary["solve_seconds_all"] = all_seconds.into();
    summary["termination"] = serde_json::to_value(sol.termination)?;
    summary["method"] = sol.method.clone().into();
    summary["wall_seconds"] = ctx.seconds().into();
    out.write_json("summary.json", &summary)?;
    let dir = out.commit()?;
    if !args.common.quiet {
        eprintln!(
            "two-level program (K = {k}): objective {:.10e}, certified relative gap {:.2e}, {} iterations; wrote {}",
            sol.objective,
            sol.relative_gap,
            sol.iterations,
            dir.display()
        );
    }
    Ok(())
}

fn deep(
    args: &ConvexArgs,
    cfg: &toml::Table,
    ctx: &Ctx,
    activation: Activation,
    loss: Loss,
    out_path: PathBuf,
) -> Result<()> {
    let Some(state) = args.init.clone().or(crate::common::cfg_get(cfg, "init")?) else {
        bail!("--problem deep needs --init STATE.npz (a trained DNN whose particles seed the candidates)");
    };
    let (data, net) = nff_core::io::load_state(&state)?;
    let lambda = pick(args.lambda, cfg, "lambda", 0.01)?;
    let q = pick(args.q, cfg, "q", 1.0)?;
    let fresh = pick(args.fresh, cfg, "fresh", 8)?;
    let problem = Problem::new(data, activation, loss, Regularizer::GroupL1q { lambda, q })?;
    let (program, point) = DeepProgram::from_network(&problem, &net, fresh, ctx.seed)?;
    let network_objective = program.objective(&point)?;
    let out = OutputDir::create(&out_path)?;
    let sol = program.solve(&DeepOptions::default(), None, None)?;
    let mapped = program.to_network(&sol.point)?;
    let mut npz = NpzWriter::create(out.path("solution.npz"))?;
    for (l, rho) in sol.point.rho.iter().enumerate() {
        npz.add(&format!("rho{}", l + 1), &[rho.len()], rho)?;
    }
    let sizes = program.sizes();
    for (l, u) in sol.point.u.iter().enumerate() {
        // Column-major (n_l × n_{l+1}) → C order for numpy.
        let (r, c) = (sizes[l], sizes[l + 1]);
        let m = Mat::from_fn(r, c, |j, k| u[j + k * r]);
        npz.add_matrix(&format!("u{}", l + 2), m.as_ref())?;
    }
    npz.add(
        &format!("u{}", sizes.len() + 1),
        &[sol.point.v.len()],
        &sol.point.v,
    )?;
    npz.add("predictions", &[problem.n()], &sol.predictions)?;
    npz.finish()?;
    nff_core::io::save_state(out.path("state.npz"), &problem.data, &mapped.net)?;
    let mut summary = ctx.summary_header("convex");
    summary["config"] = serde_json::json!({
        "problem": "deep", "init": state, "fresh": fresh, "lambda": lambda, "q": q,
        "activation": activation, "loss": loss, "candidates_per_layer": sizes,
    });
    summary["objective"] = sol.objective.into();
    summary["network_objective"] = network_objective.into();
    summary["dual_bound"] = sol.dual_bound.into();
    summary["gap"] = sol.gap.into();
    summary["relative_gap"] = sol.relative_gap.into();
    summary["primal_residual"] = sol.primal_residual.into();
    summary["dual_residual"] = sol.dual_residual.into();
    summary["feature_residual"] = sol.feature_residual.into();
    summary["kkt"] = serde_json::to_value(&sol.kkt)?;
    summary["iterations"] =
        serde_json::json!({"outer": sol.outer_iterations, "inner": sol.inner_iterations});
    summary["solve_seconds"] = sol.seconds.into();
    summary["termination"] = serde_json::to_value(sol.termination)?;
    summary["method"] = serde_json::to_value(sol.method)?;
    summary["wall_seconds"] = ctx.seconds().into();
    out.write_json("summary.json", &summary)?;
    let dir = out.commit()?;
    if !args.common.quiet {
        eprintln!(
            "deep program {sizes:?}: objective {:.8e} (network's own {network_objective:.8e}), relative gap {:.2e}, primal residual {:.1e}; wrote {}",
            sol.objective,
            sol.relative_gap,
            sol.primal_residual,
            dir.display()
        );
    }
    Ok(())
}
