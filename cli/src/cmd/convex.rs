//! `nff convex`: solve a repopulated convex program (math.md §4) to a certified optimum.
//!
//! - `--problem two-level` (§4.1): candidates θ_k with reference weights ρ₀ from `--candidates FILE.npz`
//!   (`theta` (K, d), `rho0` (K,)) or generated (`--grid PER_AXIS --radius R` for d ≤ 3 including a bias
//!   column, or `--gaussian K --sigma S`); minimizes
//!   (1/N)Σφ(Σ_k w_k h(θ_k·x_i), y_i) + λ₁Σw_k²/(2ρ_k) + λ₂Σρ_k‖θ_k‖²/2 + τΣρ_k log(ρ_k/ρ₀_k).
//! - `--problem deep` (§4.2–4.4): the candidates are the particles of a trained DNN state (`--init
//!   STATE.npz`) plus `--fresh K` samples per layer; group-norm strengths `--lambda`, `--q`. Or the
//!   program stored in a file (`--program FILE.npz`: a `solution.npz` or an `--export-program` file).
//!   `--solver auto|socp|clarabel|ipm|alm|structured`, `--tol-gap`; `--export-program FILE.npz` writes the program without solving.
//!
//! Writes `summary.json` (objective, certified gap, residuals, iterations, time) and `solution.npz`;
//! the deep problem also writes the mapped network as `state.npz`. The deep file formats are in
//! `docs/convex_deep.md`.
use crate::common::{check_range, fmt_num, pick, CommonArgs, Ctx};
use crate::defaults::{self as D, convex as C};
use crate::output::OutputDir;
use crate::setup::{DataOpts, LoadedData};
use anyhow::{bail, Result};
use clap::Args;
use faer::Mat;
use nff_core::io::{Npz, NpzWriter};
use nff_core::{Activation, Dataset, Loss, Problem, Regularizer};
use nff_solvers::deep::{
    DeepCandidates, DeepConfig, DeepMethod, DeepOptions, DeepProgram, DeepSolution, MappedNetwork,
};
use nff_solvers::{candidates, TwoLevelConfig, TwoLevelOptions, TwoLevelProgram};
use std::path::{Path, PathBuf};

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
    /// Target relative gap: two-level, the certified (P − D)/|P|; deep, the interior point's barrier
    /// gap relative to |P|.
    #[arg(long)]
    pub tol_gap: Option<f64>,
    /// For benchmarking: solve R times in this process and report the fastest `solve_seconds`
    /// (every solve is deterministic and gives the same solution).
    #[arg(long)]
    pub repeat: Option<usize>,
    /// Deep: the algorithm: auto (socp where it applies, else clarabel), socp (nff's second-order-cone interior point; q = 2, no entropy, squared loss), clarabel, ipm, alm or structured.
    #[arg(long)]
    pub solver: Option<String>,
    /// Deep: solve the program stored in this file (a `solution.npz` of an earlier run, or a file
    /// written by `--export-program`) instead of building one from `--init`; the file carries the
    /// data, candidates, strengths, activation and loss (docs/convex_deep.md).
    #[arg(long)]
    pub program: Option<PathBuf>,
    /// Deep: write the program (same arrays as in `solution.npz`, no solution) to this .npz and stop,
    /// without solving and without an output directory.
    #[arg(long)]
    pub export_program: Option<PathBuf>,
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
    let cfg = crate::common::read_config_for::<ConvexArgs>(args.common.config.as_deref())?;
    let ctx = Ctx::new(&args.common, &cfg)?;
    let activation: Activation = pick(
        args.activation.clone(),
        &cfg,
        "activation",
        D::ACTIVATION.to_string(),
    )?
    .parse()?;
    let loss: Loss = pick(args.loss.clone(), &cfg, "loss", D::LOSS.to_string())?.parse()?;
    let out_path: PathBuf = pick(args.common.out.clone(), &cfg, "out", PathBuf::from(C::OUT))?;
    match pick(
        args.problem.clone(),
        &cfg,
        "problem",
        C::PROBLEM.to_string(),
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
    for (flag, given) in [
        ("--solver", args.solver.is_some()),
        ("--program", args.program.is_some()),
        ("--export-program", args.export_program.is_some()),
        ("--init", args.init.is_some()),
        ("--fresh", args.fresh.is_some()),
    ] {
        if given {
            bail!("{flag} applies to --problem deep: expected it absent with --problem two-level, found {flag}");
        }
    }
    let LoadedData {
        data,
        spec: data_s,
        bias,
    } = args.data.load(cfg, ctx.seed)?;
    let d = data.d();
    let (theta, rho0, source) = match (&args.candidates, args.grid, args.gaussian) {
        (Some(path), None, None) => {
            let npz = nff_core::io::read_npz(path)?;
            let theta = npz.matrix("theta")?;
            let rho0 = npz.vector("rho0")?;
            (theta, rho0, format!("file:{}", path.display()))
        }
        (None, Some(per_axis), None) => {
            check_candidates(
                &format!("--grid {per_axis} (PER_AXIS^d = {per_axis}^{d} candidates)"),
                (per_axis as f64).powi(d as i32),
                data.n(),
                d,
            )?;
            let radius = pick(args.radius, cfg, "radius", C::RADIUS)?;
            let theta = candidates::grid(d, per_axis, radius)?;
            let k = theta.nrows();
            (
                theta,
                candidates::uniform_weights(k),
                format!("grid:{per_axis}^{d} on [-{radius}, {radius}]"),
            )
        }
        (None, None, g) => {
            let k = g.unwrap_or(C::GAUSSIAN);
            check_candidates(&format!("--gaussian {k}"), k as f64, data.n(), d)?;
            let sigma = pick(args.sigma, cfg, "sigma", C::SIGMA)?;
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
        lambda1: check_range(
            "lambda1",
            pick(args.lambda1, cfg, "lambda1", C::LAMBDA1)?,
            MIN_LAMBDA1,
            f64::INFINITY,
        )?,
        lambda2: check_range(
            "lambda2",
            pick(args.lambda2, cfg, "lambda2", C::LAMBDA2)?,
            0.0,
            f64::INFINITY,
        )?,
        tau: check_range(
            "tau",
            pick(args.tau, cfg, "tau", C::TAU)?,
            0.0,
            f64::INFINITY,
        )?,
    };
    let program = TwoLevelProgram::new(&data, activation, loss, theta.as_ref(), &rho0, config)?;
    let out = OutputDir::create(&out_path)?;
    let defaults = TwoLevelOptions::default();
    let options = TwoLevelOptions {
        tol_gap: pick(args.tol_gap, cfg, "tol_gap", defaults.tol_gap)?,
        threads: ctx.threads,
        ..defaults
    };
    let repeat: usize = pick(args.repeat, cfg, "repeat", C::REPEAT)?;
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
    let certified = sol.termination == nff_solvers::lbfgs::Termination::Converged
        && [sol.objective, sol.gap, sol.relative_gap, sol.dual_objective]
            .iter()
            .all(|x| x.is_finite())
        && sol.relative_gap <= options.tol_gap.max(1e-9);
    let termination = if [sol.objective, sol.gap, sol.dual_objective]
        .iter()
        .any(|x| !x.is_finite())
    {
        serde_json::json!("non-finite")
    } else if !certified && sol.termination == nff_solvers::lbfgs::Termination::Converged {
        serde_json::json!("uncertified")
    } else {
        serde_json::to_value(sol.termination)?
    };
    summary["termination"] = termination.clone();
    out.write_json("summary.json", &summary)?;
    if !certified {
        let dir = out.commit()?;
        return Err(crate::common::NotConverged(format!(
            "two-level program (K = {k}) not certified: termination {}, objective {}, relative gap {} (expected at most {}); outputs in {} (exit status 3)",
            termination.as_str().unwrap_or("?"),
            fmt_num(sol.objective),
            fmt_num(sol.relative_gap),
            fmt_num(options.tol_gap.max(1e-9)),
            dir.display()
        ))
        .into());
    }
    let line = format!(
        "two-level program (K = {k}): objective {:.10e}, certified relative gap {:.2e}, {} iterations; wrote {}",
        sol.objective,
        sol.relative_gap,
        sol.iterations,
        out.target().display()
    );
    out.say_and_commit(args.common.quiet, &line)?;
    Ok(())
}

/// The smallest `--lambda1` accepted: below it the program's scale 1/λ₁ leaves the range in which its
/// interior point can be certified in f64 (measured: λ₁ = 1e-9 returned NaN, 1e-200 did not end).
pub const MIN_LAMBDA1: f64 = 1e-8;

/// Refuse a candidate set that does not fit in memory: `k` candidates hold H (N × K), θ (K × d) and
/// about ten K-vectors (weights, densities, solver state), plus the N × N Newton systems.
fn check_candidates(asked: &str, k: f64, n: usize, d: usize) -> Result<()> {
    let (n, d) = (n as f64, d as f64);
    crate::common::check_memory(
        asked,
        "the candidates, their features H (N × K) and the solver's vectors",
        k * (2.0 * n + d + 12.0) + 4.0 * n * n,
    )
}

/// `--solver NAME` → the deep algorithm (one arm per engine).
fn deep_method(name: &str) -> Result<DeepMethod> {
    Ok(match name {
        "ipm" => DeepMethod::InteriorPoint,
        "alm" => DeepMethod::AugmentedLagrangian,
        "structured" => DeepMethod::StructuredBarrier,
        "clarabel" => DeepMethod::Clarabel,
        "socp" => DeepMethod::SecondOrderCone,
        "auto" => DeepMethod::Auto,
        other => {
            bail!("unknown --solver '{other}': expected one of auto, socp, clarabel, ipm, alm, structured")
        }
    })
}

/// A deep program with what the CLI needs next to it.
struct BuiltDeep {
    program: DeepProgram,
    data: Dataset,
    loss: Loss,
    /// The objective of the network the program was built from (at its own point), if any.
    network_objective: Option<f64>,
    /// Where it came from, for `summary.json`.
    source: serde_json::Value,
}

fn deep(
    args: &ConvexArgs,
    cfg: &toml::Table,
    ctx: &Ctx,
    activation: Activation,
    loss: Loss,
    out_path: PathBuf,
) -> Result<()> {
    let method = deep_method(&pick(
        args.solver.clone(),
        cfg,
        "solver",
        C::SOLVER.to_string(),
    )?)?;
    let defaults = DeepOptions::default();
    let options = DeepOptions {
        method,
        tol_gap: pick(args.tol_gap, cfg, "tol_gap", defaults.tol_gap)?,
        threads: ctx.threads,
        ..defaults
    };
    if !(options.tol_gap.is_finite() && options.tol_gap > 0.0) {
        bail!(
            "invalid --tol-gap: expected a finite value > 0, found {}",
            options.tol_gap
        );
    }
    let repeat: usize = pick(args.repeat, cfg, "repeat", C::REPEAT)?;
    if repeat == 0 {
        bail!("invalid --repeat: expected at least 1, found 0");
    }
    let program_file = match &args.program {
        Some(p) => Some(p.clone()),
        None => crate::common::cfg_get(cfg, "program")?,
    };
    let built = match program_file {
        Some(path) => {
            let given: Vec<&str> = [
                ("--init", args.init.is_some()),
                ("--fresh", args.fresh.is_some()),
                ("--lambda", args.lambda.is_some()),
                ("--q", args.q.is_some()),
                ("--activation", args.activation.is_some()),
                ("--loss", args.loss.is_some()),
            ]
            .into_iter()
            .filter_map(|(f, on)| on.then_some(f))
            .collect();
            if !given.is_empty() {
                bail!(
                    "--program FILE.npz carries its own data, candidates, strengths, activation and loss: expected none of --init, --fresh, --lambda, --q, --activation, --loss, found {}",
                    given.join(", ")
                );
            }
            program_from_file(&path)?
        }
        None => program_from_init(args, cfg, ctx, activation, loss)?,
    };
    if let Some(path) = &args.export_program {
        let mut npz = NpzWriter::create(path)?;
        write_program(&mut npz, &built)?;
        npz.finish()?;
        crate::common::say(
            args.common.quiet,
            &format!(
                "deep program {:?}: wrote {} (not solved)",
                built.program.sizes(),
                path.display()
            ),
        )?;
        return Ok(());
    }
    let program = &built.program;
    let out = OutputDir::create(&out_path)?;
    let mut sol = program.solve(&options, None, None)?;
    let mut all_seconds = vec![sol.seconds];
    for _ in 1..repeat {
        let again = program.solve(&options, None, None)?;
        all_seconds.push(again.seconds);
        if again.seconds < sol.seconds {
            sol = again;
        }
    }
    let mapped = program.to_network(&sol.point)?;
    let mut npz = NpzWriter::create(out.path("solution.npz"))?;
    write_program(&mut npz, &built)?;
    write_solution(&mut npz, program, &sol, &mapped)?;
    npz.finish()?;
    let c = program.config();
    if c.lambda_w.iter().all(|&l| l == c.lambda_a)
        && c.lambda_v == c.lambda_a
        && c.beta.iter().all(|&b| b == 0.0)
    {
        // Group-norm strengths of one λ: the state records the model (activation, loss, regularizer).
        let model = nff_core::io::StateModel {
            activation: program.activation(),
            loss: built.loss,
            regularizer: Regularizer::GroupL1q {
                lambda: c.lambda_a,
                q: c.q,
            },
        };
        nff_core::io::save_state_model(out.path("state.npz"), &built.data, &mapped.net, &model)?;
    } else {
        nff_core::io::save_state(out.path("state.npz"), &built.data, &mapped.net)?;
    }
    let sizes = program.sizes();
    let c = program.config();
    let mut summary = ctx.summary_header("convex");
    summary["config"] = serde_json::json!({
        "problem": "deep", "source": built.source, "activation": program.activation(), "loss": built.loss,
        "n": built.data.n(), "d": built.data.d(), "candidates_per_layer": sizes, "strengths": c,
        "solver": sol.method, "tol_gap": options.tol_gap, "repeat": repeat,
    });
    summary["objective"] = sol.objective.into();
    summary["network_objective"] = built.network_objective.into();
    summary["dual_bound"] = sol.dual_bound.into();
    summary["gap"] = sol.gap.into();
    summary["relative_gap"] = sol.relative_gap.into();
    summary["barrier_gap"] = sol.barrier_gap.into();
    summary["primal_residual"] = sol.primal_residual.into();
    summary["dual_residual"] = sol.dual_residual.into();
    summary["feature_residual"] = sol.feature_residual.into();
    summary["kkt"] = serde_json::to_value(&sol.kkt)?;
    summary["iterations"] = sol.inner_iterations.into();
    summary["iterations_split"] = serde_json::json!({
        "outer": sol.outer_iterations, "inner": sol.inner_iterations, "lbfgs_resets": sol.lbfgs_resets,
    });
    summary["solve_seconds"] = sol.seconds.into();
    summary["solve_seconds_all"] = all_seconds.into();
    summary["termination"] = serde_json::to_value(sol.termination)?;
    summary["method"] = serde_json::to_value(sol.method)?;
    summary["mapped_network"] = mapped_summary(&built, &mapped)?;
    summary["wall_seconds"] = ctx.seconds().into();
    let finite = [sol.objective, sol.gap, sol.relative_gap, sol.dual_bound]
        .iter()
        .all(|x| x.is_finite());
    let converged = sol.termination == nff_solvers::lbfgs::Termination::Converged;
    if !finite {
        summary["termination"] = "non-finite".into();
    }
    out.write_json("summary.json", &summary)?;
    if !(finite && converged) {
        let dir = out.commit()?;
        return Err(crate::common::NotConverged(format!(
            "deep program {sizes:?} not certified: termination {}, objective {}, relative gap {}; outputs in {} (exit status 3)",
            summary["termination"].as_str().unwrap_or("?"),
            fmt_num(sol.objective),
            fmt_num(sol.relative_gap),
            dir.display()
        ))
        .into());
    }
    let own = built
        .network_objective
        .map(|j| format!(" (network's own {j:.8e})"))
        .unwrap_or_default();
    let line = format!(
        "deep program {sizes:?}: objective {:.8e}{own}, relative gap {:.2e}, primal residual {:.1e}, {} iterations ({:?}); wrote {}",
        sol.objective,
        sol.relative_gap,
        sol.primal_residual,
        sol.inner_iterations,
        sol.termination,
        out.target().display()
    );
    out.say_and_commit(args.common.quiet, &line)?;
    Ok(())
}

/// The program of a trained network (`--init`): its particles plus `--fresh` candidates per layer.
fn program_from_init(
    args: &ConvexArgs,
    cfg: &toml::Table,
    ctx: &Ctx,
    activation: Activation,
    loss: Loss,
) -> Result<BuiltDeep> {
    let Some(state) = args.init.clone().or(crate::common::cfg_get(cfg, "init")?) else {
        bail!("--problem deep needs --init STATE.npz (a trained DNN whose particles seed the candidates) or --program FILE.npz");
    };
    let (data, net, recorded) = nff_core::io::load_state_model(&state)?;
    // The candidates are the state's features: its activation and loss, when it records them, are the
    // program's; a flag that disagrees is an error naming both.
    let (activation, loss) = match recorded {
        Some(rec) => {
            let given = |flag: bool, key: &str| flag || cfg.contains_key(key);
            if given(args.activation.is_some(), "activation") && activation != rec.activation {
                bail!("--activation {activation} disagrees with the state file {}: expected {} (as recorded), found {activation}", state.display(), rec.activation);
            }
            if given(args.loss.is_some(), "loss") && loss != rec.loss {
                bail!("--loss {loss} disagrees with the state file {}: expected {} (as recorded), found {loss}", state.display(), rec.loss);
            }
            (rec.activation, rec.loss)
        }
        None => (activation, loss),
    };
    let lambda = check_range(
        "lambda",
        pick(args.lambda, cfg, "lambda", C::LAMBDA)?,
        0.0,
        f64::INFINITY,
    )?;
    let q = pick(args.q, cfg, "q", C::Q)?;
    let fresh = pick(args.fresh, cfg, "fresh", C::FRESH)?;
    {
        // Per layer n = m + fresh candidates: features N × n, the repopulated weights n × n of each
        // middle layer, and the conic solver's copies of them (about 30 numbers per weight).
        let s = net.shape();
        let nl = (s.m as f64) + fresh as f64;
        let (n, l) = (data.n() as f64, s.depth as f64);
        crate::common::check_memory(
            &format!(
                "--fresh {fresh} (n = m + fresh = {} candidates per layer, {} layers, N = {})",
                fmt_num(nl),
                s.depth,
                data.n()
            ),
            "the candidates' features, the repopulated weights and the conic solver's copies",
            l * n * nl * 6.0 + (l - 1.0).max(0.0) * nl * nl * 30.0 + 30.0 * l * nl,
        )?;
    }
    let problem = Problem::new(data, activation, loss, Regularizer::GroupL1q { lambda, q })?;
    let (program, point) = DeepProgram::from_network(&problem, &net, fresh, ctx.seed)?;
    let network_objective = program.objective(&point)?;
    Ok(BuiltDeep {
        program,
        data: problem.data,
        loss,
        network_objective: Some(network_objective),
        source: serde_json::json!({"init": state, "fresh": fresh, "lambda": lambda, "q": q}),
    })
}

/// Names (activation, loss) as arrays of their ASCII codes, so the `.npz` holds float64 arrays only
/// (`bytes(f["activation"].astype("uint8")).decode()` in numpy).
fn name_codes(name: &str) -> Vec<f64> {
    name.bytes().map(f64::from).collect()
}

fn name_from_codes(npz: &Npz, key: &str, choices: &str) -> Result<String> {
    let what = || {
        format!(
            "array '{key}' in {}: expected the ASCII codes of one of {choices}",
            npz.path().display()
        )
    };
    let codes = npz.vector(key)?;
    let bytes: Option<Vec<u8>> = codes
        .iter()
        .map(|&c| (c.fract() == 0.0 && (32.0..127.0).contains(&c)).then_some(c as u8))
        .collect();
    match bytes.and_then(|b| String::from_utf8(b).ok()) {
        Some(s) => Ok(s),
        None => bail!("{}, found {codes:?}", what()),
    }
}

/// Write the arrays that define the program (docs/convex_deep.md): data, candidates, reference
/// weights, strengths, activation and loss; `r1` (the first-layer cost the program computed) is
/// informational and not read back.
fn write_program(npz: &mut NpzWriter, built: &BuiltDeep) -> Result<()> {
    let (program, data) = (&built.program, &built.data);
    let cand = program.candidates();
    let c = program.config();
    let depth = program.depth();
    npz.add_matrix("X", data.x.as_ref())?;
    npz.add("y", &[data.n()], &data.y)?;
    npz.add_matrix("a", cand.a.as_ref())?;
    for l in 0..depth {
        npz.add_matrix(&format!("z{}", l + 1), cand.z[l].as_ref())?;
        npz.add(&format!("pi{}", l + 1), &[cand.pi[l].len()], &cand.pi[l])?;
    }
    let np: Vec<f64> = cand.n_particles.iter().map(|&n| n as f64).collect();
    npz.add("n_particles", &[depth], &np)?;
    npz.add("r1", &[program.cost[0].len()], &program.cost[0])?;
    npz.add_scalar("lambda_a", c.lambda_a)?;
    npz.add("lambda_w", &[c.lambda_w.len()], &c.lambda_w)?;
    npz.add_scalar("lambda_v", c.lambda_v)?;
    npz.add_scalar("q", c.q)?;
    npz.add("beta", &[c.beta.len()], &c.beta)?;
    let act = name_codes(program.activation().name());
    npz.add("activation", &[act.len()], &act)?;
    let loss = name_codes(built.loss.name());
    npz.add("loss", &[loss.len()], &loss)?;
    Ok(())
}

/// The solution arrays: densities, repopulated weights, predictions, and the mapped state's units.
fn write_solution(
    npz: &mut NpzWriter,
    program: &DeepProgram,
    sol: &DeepSolution,
    mapped: &MappedNetwork,
) -> Result<()> {
    let sizes = program.sizes();
    for (l, rho) in sol.point.rho.iter().enumerate() {
        npz.add(&format!("rho{}", l + 1), &[rho.len()], rho)?;
    }
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
    npz.add("predictions", &[sol.predictions.len()], &sol.predictions)?;
    // Unit j of layer l of state.npz is candidate state_index{l}[j] with mass state_mass{l}[j]
    // (index -1 and mass 0 for the zero units that pad narrower layers to the common width).
    let m = mapped.net.shape().m;
    for (l, (ix, ms)) in mapped.index.iter().zip(&mapped.masses).enumerate() {
        let mut index = vec![-1.0; m];
        let mut mass = vec![0.0; m];
        for (slot, (&j, &p)) in ix.iter().zip(ms).enumerate() {
            index[slot] = j as f64;
            mass[slot] = p;
        }
        npz.add(&format!("state_index{}", l + 1), &[m], &index)?;
        npz.add(&format!("state_mass{}", l + 1), &[m], &mass)?;
    }
    Ok(())
}

/// The mapped network in `summary.json`: its width, and two objectives that are easy to confuse.
/// `objective_weighted` is the network as a measure (unit j of layer l weighs its mass p_l(j), weights
/// in the original parameterization): it equals the program's objective at the solution (the §4.3
/// bijection). `objective_uniform` is what `nff train --init state.npz --reg group` computes, every unit
/// weighing 1/m: equal to the program's only when the masses are uniform (given for group-norm
/// strengths λ_a = λ_w = λ_v, β = 0; otherwise null).
fn mapped_summary(built: &BuiltDeep, mapped: &MappedNetwork) -> Result<serde_json::Value> {
    let program = &built.program;
    let c = program.config();
    let net = &mapped.net;
    let depth = program.depth();
    let problem = Problem::new(
        built.data.clone(),
        program.activation(),
        built.loss,
        Regularizer::None,
    )?;
    let yhat = problem.predict(net);
    let risk = built.loss.risk(&yhat, &built.data.y);
    let p = &mapped.masses;
    let q = c.q;
    let persp = |s: f64| s.powf(q);
    let mut reg = 0.0;
    let a = net.a();
    for (slot, &pj) in p[0].iter().enumerate() {
        let a2: f64 = (0..a.nrows()).map(|i| a[(i, slot)].powi(2)).sum();
        reg += c.lambda_a * pj * a2 / 2.0;
    }
    for (l, w) in mapped.w_original.iter().enumerate() {
        let lam = c.lambda_w[l];
        for k in 0..w.ncols() {
            let e: f64 = (0..w.nrows()).map(|j| p[l][j] * w[(j, k)].abs()).sum();
            reg += lam * p[l + 1][k] * persp(e);
        }
        for j in 0..w.nrows() {
            let e: f64 = (0..w.ncols()).map(|k| p[l + 1][k] * w[(j, k)].abs()).sum();
            reg += lam * p[l][j] * persp(e);
        }
    }
    for (j, vj) in mapped.v_original.iter().enumerate() {
        reg += c.lambda_v * p[depth - 1][j] * persp(vj.abs());
    }
    let pi = &program.candidates().pi;
    for l in 0..depth {
        if c.beta[l] > 0.0 {
            for (&pj, &j) in p[l].iter().zip(&mapped.index[l]) {
                if pj > 0.0 {
                    reg += c.beta[l] * pj * (pj / pi[l][j]).ln();
                }
            }
        }
    }
    let uniform_group = c.lambda_w.iter().all(|&l| l == c.lambda_a)
        && c.lambda_v == c.lambda_a
        && c.beta.iter().all(|&b| b == 0.0);
    let objective_uniform = if uniform_group {
        let reg = Regularizer::GroupL1q {
            lambda: c.lambda_a,
            q,
        };
        Some(Problem { reg, ..problem }.objective(net))
    } else {
        None
    };
    Ok(serde_json::json!({
        "width": net.shape().m,
        "units_per_layer": mapped.index.iter().map(Vec::len).collect::<Vec<_>>(),
        "risk": risk,
        "objective_weighted": risk + reg,
        "objective_uniform": objective_uniform,
    }))
}

/// Rebuild a program from a file written by `write_program` (a `solution.npz` or an
/// `--export-program` file), checking every array before anything is built.
fn program_from_file(path: &Path) -> Result<BuiltDeep> {
    let npz = nff_core::io::read_npz(path)?;
    let file = path.display();
    if !npz.contains("z1") {
        bail!(
            "{file}: not a deep program file: expected arrays X, y, a, z1..zL, pi1..piL, lambda_a, lambda_w, lambda_v, q, beta, activation, loss; found no 'z1'"
        );
    }
    let depth = (1..).take_while(|l| npz.contains(&format!("z{l}"))).count();
    let x = npz.matrix("X")?;
    let y = npz.vector("y")?;
    let (n, d) = (x.nrows(), x.ncols());
    if y.len() != n {
        bail!(
            "array 'y' in {file}: expected shape ({n},) (one target per row of X), found ({},)",
            y.len()
        );
    }
    let data = Dataset::new(x, y)?;
    let shape_err = |name: &str, expected: String, found: &[usize]| -> anyhow::Error {
        anyhow::anyhow!(
            "array '{name}' in {file}: expected shape {expected}, found {}",
            nff_core::io::fmt_shape(found)
        )
    };
    let mut z = Vec::with_capacity(depth);
    let mut pi = Vec::with_capacity(depth);
    for l in 1..=depth {
        let zl = npz.get(&format!("z{l}"))?;
        let nl = match zl.shape[..] {
            [rows, nl] if rows == n && nl >= 1 => nl,
            _ => {
                return Err(shape_err(
                    &format!("z{l}"),
                    format!("({n}, n_{l}) with n_{l} >= 1: one row per data point"),
                    &zl.shape,
                ))
            }
        };
        z.push(npz.matrix(&format!("z{l}"))?);
        let pl = npz.get(&format!("pi{l}"))?;
        if pl.shape != [nl] {
            return Err(shape_err(
                &format!("pi{l}"),
                format!("({nl},): one reference weight per column of z{l}"),
                &pl.shape,
            ));
        }
        pi.push(pl.data.clone());
    }
    let sizes: Vec<usize> = z.iter().map(|m| m.ncols()).collect();
    let a = npz.get("a")?;
    if a.shape != [d, sizes[0]] {
        return Err(shape_err(
            "a",
            format!(
                "({d}, {}): one column per first-layer candidate z1",
                sizes[0]
            ),
            &a.shape,
        ));
    }
    let a = npz.matrix("a")?;
    let vec_of = |name: &str, len: usize, what: &str| -> Result<Vec<f64>> {
        let arr = npz.get(name)?;
        if arr.shape != [len] {
            return Err(shape_err(name, format!("({len},): {what}"), &arr.shape));
        }
        Ok(arr.data.clone())
    };
    let scalar_of = |name: &str| -> Result<f64> {
        let arr = npz.get(name)?;
        if !arr.shape.is_empty() && arr.data.len() != 1 {
            return Err(shape_err(name, "() (a scalar)".into(), &arr.shape));
        }
        Ok(arr.data[0])
    };
    let cfg = DeepConfig {
        lambda_a: scalar_of("lambda_a")?,
        lambda_w: vec_of(
            "lambda_w",
            depth - 1,
            "one strength per middle layer (L - 1)",
        )?,
        lambda_v: scalar_of("lambda_v")?,
        q: scalar_of("q")?,
        beta: vec_of("beta", depth, "one entropy weight per layer (L)")?,
    };
    let activation: Activation =
        name_from_codes(&npz, "activation", "tanh, sigmoid, softplus, relu")?.parse()?;
    let loss: Loss = name_from_codes(&npz, "loss", "squared, logistic")?.parse()?;
    let n_particles = if npz.contains("n_particles") {
        let v = vec_of("n_particles", depth, "one count per layer")?;
        v.iter()
            .zip(&sizes)
            .map(|(&c, &nl)| {
                if c.fract() == 0.0 && (0.0..=nl as f64).contains(&c) {
                    Ok(c as usize)
                } else {
                    bail!("array 'n_particles' in {file}: expected integers in [0, n_l] = {sizes:?}, found {v:?}")
                }
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        vec![0; depth]
    };
    let z1 = z.remove(0);
    let mut cand = DeepCandidates::new(&data, a, z, Some(pi))?;
    // The stored z1 is used as it is (the program's first-layer features, bit for bit), after checking
    // that it is X @ a up to rounding: the mapped network's first layer is a.
    let scale = (0..z1.ncols())
        .flat_map(|j| (0..n).map(move |i| (i, j)))
        .fold(1.0f64, |m, (i, j)| m.max(z1[(i, j)].abs()));
    let dev = (0..z1.ncols())
        .flat_map(|j| (0..n).map(move |i| (i, j)))
        .fold(0.0f64, |m, (i, j)| {
            m.max((z1[(i, j)] - cand.z[0][(i, j)]).abs())
        });
    if dev.is_nan() || dev > 1e-10 * scale {
        bail!("array 'z1' in {file}: expected X @ a (first-layer features, to 1e-10 relative), found a deviation of {dev:.3e}");
    }
    cand.z[0] = z1;
    cand.n_particles = n_particles;
    let program = DeepProgram::new(&data, activation, loss, cand, cfg)?;
    Ok(BuiltDeep {
        program,
        data,
        loss,
        network_objective: None,
        source: serde_json::json!({"program": path}),
    })
}
