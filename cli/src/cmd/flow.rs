//! `nff flow`: integrate the neural feature flow (math.md §5) — the scaled gradient flow of a
//! width-m network (`WeightFlow`), or its Lagrangian form with integrated features (`--lagrangian`,
//! `FeatureFlow`, which also records the consistency drift) — with Euler (= GD), Heun, RK4 or adaptive
//! Dormand–Prince, and noisy GD (`--temperature`, two-level networks).
use crate::common::{cfg_get, check_range, check_steps, fmt_num, pick, CommonArgs, Ctx};
use crate::output::OutputDir;
use crate::setup::{Footprint, ModelArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use nff_flow::runner::{
    Checkpoint, ObserverAction, ObserverMode, Row, RunnerBuilder, StepInfo, TerminationReason,
};
use nff_flow::{
    DormandPrinceOptions, FeatureFlow, IntegratorSpec, NoisyGd, Observer, RunReport, VectorField,
    WeightFlow,
};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Options of `nff flow`.
#[derive(Args, Debug, Clone)]
pub struct FlowArgs {
    #[command(flatten)]
    /// Model and data.
    pub model: ModelArgs,
    /// Integrator: euler, heun, rk4 or adaptive (Dormand–Prince 5(4)).
    #[arg(long)]
    pub integrator: Option<String>,
    /// Step size of the fixed-step integrators (Euler with --dt η is GD with step η).
    #[arg(long)]
    pub dt: Option<f64>,
    /// Relative tolerance of the adaptive integrator.
    #[arg(long)]
    pub rtol: Option<f64>,
    /// Absolute tolerance of the adaptive integrator.
    #[arg(long)]
    pub atol: Option<f64>,
    /// Final time T.
    #[arg(long)]
    pub time: Option<f64>,
    /// Stop once the dissipation ‖θ̇‖²_scaled falls below TOL.
    #[arg(long)]
    pub until_stationary: Option<f64>,
    /// Step limit.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Integrate the features too (Lagrangian NFF) and record the consistency drift.
    #[arg(long)]
    pub lagrangian: bool,
    /// Noisy GD at temperature τ (Euler–Maruyama with step --dt; two-level networks).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Record a trajectory row every k steps.
    #[arg(long)]
    pub record_every: Option<u64>,
    /// Write a checkpoint to FILE every --checkpoint-every steps (and at the end).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Checkpoint interval in steps.
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Resume from a checkpoint written by --checkpoint (same model options and seed).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    /// Shared options.
    pub common: CommonArgs,
}

/// Advances the progress bar.
struct Progress(indicatif::ProgressBar, f64);

impl Observer for Progress {
    fn mode(&self) -> ObserverMode {
        ObserverMode::Every(16)
    }
    fn on_step(&mut self, info: &StepInfo<'_>) -> nff_flow::Result<ObserverAction> {
        if self.1.is_finite() {
            self.0.set_position((1000.0 * info.t / self.1) as u64);
        } else {
            self.0.set_position(info.step);
        }
        self.0
            .set_prefix(format!("t={:.3} diss={:.2e}", info.t, info.dissipation));
        Ok(ObserverAction::Continue)
    }
}

/// Run `nff flow`.
pub fn run(args: &FlowArgs) -> Result<()> {
    let cfg = crate::common::read_config_for::<FlowArgs>(args.common.config.as_deref())?;
    let ctx = Ctx::new(&args.common, &cfg)?;
    let integrator_name: String = pick(
        args.integrator.clone(),
        &cfg,
        "integrator",
        crate::defaults::flow::INTEGRATOR.into(),
    )?;
    let dt = check_range(
        "dt",
        pick(args.dt, &cfg, "dt", crate::defaults::flow::DT)?,
        f64::MIN_POSITIVE,
        f64::INFINITY,
    )?;
    let temperature: Option<f64> = args.temperature.or(cfg_get(&cfg, "temperature")?);
    let spec = match (integrator_name.as_str(), temperature) {
        (_, Some(tau)) => {
            check_range("temperature", tau, 0.0, f64::INFINITY)?;
            if args.lagrangian {
                bail!("--temperature (noisy GD) integrates the weights only: drop --lagrangian");
            }
            IntegratorSpec::EulerMaruyama {
                dt,
                tau,
                seed: ctx.seed,
            }
        }
        ("euler", None) => IntegratorSpec::Euler { dt },
        ("heun", None) => IntegratorSpec::Heun { dt },
        ("rk4", None) => IntegratorSpec::Rk4 { dt },
        ("adaptive", None) => {
            // A relative tolerance below a few units of rounding cannot be met in f64: the integrator
            // would reject every step.
            let rtol = check_range(
                "rtol",
                pick(args.rtol, &cfg, "rtol", crate::defaults::flow::RTOL)?,
                1e-14,
                1.0,
            )?;
            let atol = check_range(
                "atol",
                pick(args.atol, &cfg, "atol", crate::defaults::flow::ATOL)?,
                f64::MIN_POSITIVE,
                f64::INFINITY,
            )?;
            IntegratorSpec::Adaptive(DormandPrinceOptions::with_tolerances(rtol, atol))
        }
        (other, None) => {
            bail!("unknown integrator '{other}': expected one of euler, heun, rk4, adaptive")
        }
    };
    // Parameter-sized buffers: the state, the integrator's stages, the initial and the reported state,
    // the network, a checkpoint; the N×m features: the field's forward/backward workspace and the
    // diagnostics (σ_min of H). The Lagrangian state carries the features too.
    let stages = match spec {
        IntegratorSpec::Euler { .. } | IntegratorSpec::EulerMaruyama { .. } => 2.0,
        IntegratorSpec::Heun { .. } => 3.0,
        IntegratorSpec::Rk4 { .. } => 6.0,
        IntegratorSpec::Adaptive(_) => 9.0,
    };
    let footprint = Footprint {
        params: stages + 6.0,
        features: 8.0 + if args.lagrangian { stages + 6.0 } else { 0.0 },
    };
    let model = args.model.build(&cfg, ctx.seed, footprint)?;
    if temperature.is_some() {
        NoisyGd {
            eta: dt,
            tau: temperature.unwrap_or(0.0),
            seed: ctx.seed,
        }
        .runner(model.problem.clone(), &model.net, ctx.par)?;
    }
    let integrator = spec.build()?;
    let t_final: Option<f64> = args.time.or(cfg_get(&cfg, "time")?);
    let stationary: Option<f64> = args.until_stationary.or(cfg_get(&cfg, "until_stationary")?);
    let max_steps: Option<u64> = args.max_steps.or(cfg_get(&cfg, "max_steps")?);
    if t_final.is_none() && stationary.is_none() && max_steps.is_none() {
        bail!("no stop rule: give --time T, --until-stationary TOL or --max-steps N");
    }
    if let Some(t) = t_final {
        check_range("time", t, 0.0, f64::INFINITY)?;
    }
    if let Some(n) = max_steps {
        check_steps(&format!("--max-steps {n}"), n as f64)?;
    }
    let adaptive = matches!(spec, IntegratorSpec::Adaptive(_));
    let expected_steps = match (t_final, adaptive) {
        (Some(t), false) => check_steps(
            &format!("--time {} / --dt {}", fmt_num(t), fmt_num(dt)),
            (t / dt).ceil(),
        )?,
        _ => max_steps.unwrap_or(10_000),
    };
    let record_every = pick(
        args.record_every,
        &cfg,
        "record_every",
        expected_steps
            .div_ceil(crate::defaults::TRAJECTORY_ROWS)
            .max(1),
    )?
    .max(1);
    let out_path: PathBuf = pick(
        args.common.out.clone(),
        &cfg,
        "out",
        PathBuf::from(crate::defaults::flow::OUT),
    )?;
    crate::common::check_memory(
        &format!(
            "--record-every {record_every} over {} steps",
            max_steps.unwrap_or(expected_steps)
        ),
        "the trajectory rows",
        12.0 * (max_steps.unwrap_or(expected_steps) / record_every + 2) as f64,
    )?;
    let out = OutputDir::create(&out_path)?;
    let resume = match &args.resume {
        Some(p) => {
            Some(Checkpoint::load(p).with_context(|| format!("resuming from {}", p.display()))?)
        }
        None => None,
    };
    let fingerprint = serde_json::json!({
        "model": model.config, "seed": ctx.seed, "integrator": spec, "lagrangian": args.lagrangian,
        "record_every": record_every,
        "data_fingerprint": format!("{:016x}", nff_flow::data_fingerprint(&model.problem.data)),
    });
    if let (Some(c), Some(p)) = (&resume, &args.resume) {
        check_fingerprint(c.fingerprint.as_ref(), &fingerprint, p)?;
    }
    let stops = Stops {
        t_final,
        stationary,
        max_steps: match (t_final, stationary, max_steps) {
            (None, Some(_), None) => Some(1_000_000),
            // The adaptive integrator's step count is not known in advance: bounded all the same
            // (reaching the bound before --time ends the run with exit status 3).
            (Some(_), _, None) if adaptive => Some(ADAPTIVE_MAX_STEPS),
            (_, _, m) => m,
        },
        resume,
        checkpoint: args.checkpoint.clone(),
        checkpoint_every: args.checkpoint_every,
    };
    let bar = ctx.bar(
        if t_final.is_some() {
            1000
        } else {
            expected_steps
        },
        "flow",
    );
    let progress = Progress(bar.clone(), t_final.unwrap_or(f64::INFINITY));
    // The flow only decreases J (dJ/dt = −dissipation): a deterministic run whose objective rises
    // above twice its initial value has left the flow (a too-large step), and is stopped as diverged.
    // Noisy GD may raise J, so only a non-finite objective counts there.
    let initial_objective = model.problem.objective(&model.net);
    let guard = Divergence {
        limit: if temperature.is_some() {
            f64::INFINITY
        } else {
            2.0 * initial_objective.abs() + 1e-12
        },
        every: record_every,
        hit: std::sync::Arc::new(std::sync::Mutex::new(None)),
    };
    let diverged = guard.hit.clone();

    let report: RunReport;
    let network;
    let drift;
    if args.lagrangian {
        let mut field = FeatureFlow::new(model.problem.clone(), model.net.shape(), ctx.par)?;
        let y0 = field.initial_state(&model.net)?;
        let b = RunnerBuilder::with_boxed(field, integrator)
            .observer(progress)
            .observer(guard)
            .record(ObserverMode::Every(record_every))
            .fingerprint(fingerprint.clone());
        let mut runner = stops.apply(b, y0)?.build()?;
        report = runner.run()?;
        let field = runner.field_mut();
        drift = Some(field.consistency_drift(&report.state)?);
        network = field.network(&report.state)?;
    } else {
        let field = WeightFlow::new(model.problem.clone(), model.net.shape(), ctx.par)?;
        let y0 = field.initial_state(&model.net)?;
        let b = RunnerBuilder::with_boxed(field, integrator)
            .observer(progress)
            .observer(guard)
            .record(ObserverMode::Every(record_every))
            .fingerprint(fingerprint.clone());
        let mut runner = stops.apply(b, y0)?.build()?;
        report = runner.run()?;
        drift = None;
        network = runner.field().network(&report.state)?;
    }
    bar.finish_and_clear();

    let mut csv = String::from(Row::CSV_HEADER);
    csv.push('\n');
    for r in &report.trajectory {
        writeln!(csv, "{}", r.csv_record())?;
    }
    out.write("trajectory.csv", csv.as_bytes())?;
    nff_core::io::save_state_model(
        out.path("state.npz"),
        &model.problem.data,
        &network,
        &model.config.state_model(),
    )?;
    let problem = &model.problem;
    let objective = problem.objective(&network);
    let risk = problem.risk(&network);
    let hit = *diverged.lock().unwrap_or_else(|e| e.into_inner());
    let termination: String = match (report.termination, hit) {
        (TerminationReason::ObserverStop, Some(_)) => "diverged".into(),
        _ if !objective.is_finite() => "non-finite".into(),
        (t, _) => serde_json::to_value(t)?
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
    };
    let mut summary = ctx.summary_header("flow");
    summary["config"] = serde_json::json!({
        "model": model.config,
        "integrator": spec,
        "time": t_final,
        "until_stationary": stationary,
        "max_steps": max_steps,
        "lagrangian": args.lagrangian,
        "record_every": record_every,
        "resumed_from": args.resume,
    });
    summary["final"] = serde_json::json!({
        "t": report.t,
        "steps": report.steps,
        "termination": termination,
        "objective": objective,
        "risk": risk,
        "dissipation": report.dissipation,
        "consistency_drift": drift,
        "stats": report.stats,
    });
    summary["wall_seconds"] = ctx.seconds().into();
    out.write_json("summary.json", &summary)?;
    let reached = match report.termination {
        TerminationReason::FinalTime | TerminationReason::Stationary => true,
        TerminationReason::MaxSteps => t_final.is_none() && stationary.is_none(),
        _ => false,
    };
    if !reached || !objective.is_finite() || hit.is_some() {
        let dir = out.commit()?;
        let why = match hit {
            Some((t, j)) => format!(
                " (J = {} at t = {} is above twice its initial {}: try a smaller --dt)",
                fmt_num(j),
                fmt_num(t),
                fmt_num(initial_objective)
            ),
            None => String::new(),
        };
        return Err(crate::common::NotConverged(format!(
            "flow did not reach its stop rule: termination {termination}{why}, t = {}, J = {}; outputs in {} (exit status 3)",
            fmt_num(report.t),
            fmt_num(objective),
            dir.display()
        ))
        .into());
    }
    let line = format!(
        "flow stopped at t = {:.4} after {} steps ({termination}): J = {objective:.6e}, risk = {risk:.6e}; wrote {}",
        report.t,
        report.steps,
        out.target().display()
    );
    out.say_and_commit(args.common.quiet, &line)?;
    Ok(())
}

/// The step limit of an adaptive run given `--time` but no `--max-steps`.
pub const ADAPTIVE_MAX_STEPS: u64 = 1_000_000;

/// Stops a run whose objective leaves `(−∞, limit]` (checked on the recorded rows) and remembers where.
struct Divergence {
    limit: f64,
    every: u64,
    hit: std::sync::Arc<std::sync::Mutex<Option<(f64, f64)>>>,
}

impl Observer for Divergence {
    fn mode(&self) -> ObserverMode {
        ObserverMode::Every(self.every)
    }
    fn on_step(&mut self, info: &StepInfo<'_>) -> nff_flow::Result<ObserverAction> {
        if let Some(d) = info.row.and_then(|r| r.diagnostics.as_ref()) {
            if d.objective.is_nan() || d.objective > self.limit {
                *self.hit.lock().unwrap_or_else(|e| e.into_inner()) = Some((info.t, d.objective));
                return Ok(ObserverAction::Stop);
            }
        }
        Ok(ObserverAction::Continue)
    }
}

/// Refuse a checkpoint written by another run: every fingerprint key (model, seed, integrator, data …)
/// must agree; the error names the first that differs.
fn check_fingerprint(
    saved: Option<&serde_json::Value>,
    now: &serde_json::Value,
    path: &std::path::Path,
) -> Result<()> {
    let Some(saved) = saved else {
        bail!("checkpoint {} carries no model fingerprint (written by an older nff): expected one to check it fits this run, found none", path.display());
    };
    fn first_diff(
        a: &serde_json::Value,
        b: &serde_json::Value,
        at: String,
    ) -> Option<(String, String, String)> {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| {
                    let null = serde_json::Value::Null;
                    let sub = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    first_diff(x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), sub)
                })
            }
            _ if a == b => None,
            _ => Some((at, a.to_string(), b.to_string())),
        }
    }
    if let Some((key, was, is)) = first_diff(saved, now, String::new()) {
        bail!("checkpoint {} was written by another run: expected {key} = {was} (as saved), found {is}", path.display());
    }
    Ok(())
}

/// Stop rules, resumption and checkpointing, applied the same way to either flow.
struct Stops {
    t_final: Option<f64>,
    stationary: Option<f64>,
    max_steps: Option<u64>,
    resume: Option<Checkpoint>,
    checkpoint: Option<PathBuf>,
    checkpoint_every: Option<u64>,
}

impl Stops {
    fn apply<F: VectorField>(
        self,
        mut b: RunnerBuilder<F>,
        y0: Vec<f64>,
    ) -> Result<RunnerBuilder<F>> {
        if let Some(t) = self.t_final {
            b = b.final_time(t);
        }
        if let Some(tol) = self.stationary {
            b = b.stationary(tol);
        }
        if let Some(n) = self.max_steps {
            b = b.max_steps(n);
        }
        b = match self.resume {
            Some(c) => {
                if c.state.len() != y0.len() {
                    bail!(
                        "checkpoint does not fit this model: expected a state of {} numbers, found {}",
                        y0.len(),
                        c.state.len()
                    );
                }
                b.resume(c)
            }
            None => b.initial_state(0.0, y0),
        };
        match (self.checkpoint, self.checkpoint_every) {
            (Some(path), every) => {
                let every = every
                    .unwrap_or(crate::defaults::flow::CHECKPOINT_EVERY)
                    .max(1);
                b = b.checkpoint_every(every, move |c: &Checkpoint| c.save(&path));
            }
            (None, Some(_)) => bail!("--checkpoint-every needs --checkpoint FILE"),
            (None, None) => {}
        }
        Ok(b)
    }
}
