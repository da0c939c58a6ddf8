//! `nff train`: full-batch scaled gradient descent of a finite-width network (math.md §2),
//! $\theta \leftarrow \theta + \eta\dot\theta$ with the scaled velocities, $t = \eta\cdot$steps; or one of the
//! fixed-feature baselines solved exactly (`--freeze hidden`, `--regime lazy`: [`super::train_exact`]).
//! With `--split` / `--test-data` every recorded row carries the held-out risk ([`crate::heldout`]).
use crate::common::{check_range, check_steps, fmt_num, pick, CommonArgs, Ctx};
use crate::heldout::{Evaluator, HeldOutArgs, HeldOutFigures};
use crate::output::OutputDir;
use crate::setup::{Footprint, ModelArgs};
use anyhow::{bail, Result};
use clap::Args;
use nff_core::network::{StepReport, Workspace};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Options of `nff train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    /// Model and data.
    pub model: ModelArgs,
    /// Step size η (per-unit steps mη for A, v and m²η for W).
    #[arg(long)]
    pub eta: Option<f64>,
    /// Number of GD steps.
    #[arg(long, conflicts_with = "time")]
    pub steps: Option<u64>,
    /// Training time T (steps = ⌈T/η⌉).
    #[arg(long)]
    pub time: Option<f64>,
    /// Record a trajectory row every k steps.
    #[arg(long)]
    pub record_every: Option<u64>,
    #[command(flatten)]
    /// Held-out evaluation.
    pub held_out: HeldOutArgs,
    /// `hidden`: freeze A and every W at their initial values and fit only v, exactly (random features,
    /// math.md §4.5); `none` (default) trains everything.
    #[arg(long)]
    pub freeze: Option<String>,
    /// `mean-field` (default: GD on the network) or `lazy` (the network linearized at its initialization,
    /// fitted exactly: the NTK regime, math.md §4.5).
    #[arg(long)]
    pub regime: Option<String>,
    /// Ridges to choose from by the validation risk (with --freeze hidden or --regime lazy and a --split
    /// with VAL > 0), e.g. 1e-4,1e-3,1e-2.
    #[arg(long, value_name = "L1,L2,...")]
    pub ridge_grid: Option<String>,
    #[command(flatten)]
    /// Shared options.
    pub common: CommonArgs,
}

/// One trajectory row.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Row {
    pub(crate) step: u64,
    pub(crate) t: f64,
    pub(crate) objective: f64,
    pub(crate) risk: f64,
    pub(crate) dissipation: f64,
    pub(crate) residual_norm: f64,
    /// Held-out figures (`--split`, `--test-data`).
    #[serde(flatten)]
    pub(crate) held: Option<HeldOutFigures>,
}

/// `trajectory.csv`: the columns of [`Row`], plus `test_risk` (and `val_risk`) in held-out runs.
pub(crate) fn trajectory_csv(rows: &[Row], has_val: bool) -> Result<String> {
    let held = rows.first().is_some_and(|r| r.held.is_some());
    let mut csv = String::from("step,t,objective,risk,dissipation,residual_norm");
    if held {
        csv.push_str(if has_val {
            ",test_risk,val_risk"
        } else {
            ",test_risk"
        });
    }
    csv.push('\n');
    for r in rows {
        write!(
            csv,
            "{},{:?},{:?},{:?},{:?},{:?}",
            r.step, r.t, r.objective, r.risk, r.dissipation, r.residual_norm
        )?;
        if let Some(h) = r.held {
            write!(csv, ",{:?}", h.test_risk)?;
            if let Some(v) = h.val_risk {
                write!(csv, ",{v:?}")?;
            }
        }
        csv.push('\n');
    }
    Ok(csv)
}

/// Run `nff train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let cfg = crate::common::read_config_for::<TrainArgs>(args.common.config.as_deref())?;
    let ctx = Ctx::new(&args.common, &cfg)?;
    let out_path: PathBuf = pick(
        args.common.out.clone(),
        &cfg,
        "out",
        PathBuf::from(crate::defaults::train::OUT),
    )?;
    // The network and the N×m workspace of each layer (z, h(z), h'(z), backward features).
    let footprint = Footprint {
        params: 2.0,
        features: 4.0,
    };
    let held_spec = args.held_out.resolve(&cfg)?;
    let model = args
        .model
        .build_held_out(&cfg, ctx.seed, footprint, held_spec.as_ref())?;
    let mode = super::train_exact::Mode::resolve(args, &cfg, &model)?;
    if mode != super::train_exact::Mode::MeanField {
        return super::train_exact::run(args, &cfg, &ctx, model, mode, held_spec.as_ref());
    }
    if args.ridge_grid.is_some() || cfg.contains_key("ridge_grid") {
        bail!("--ridge-grid chooses the ridge of an exact fit: expected --freeze hidden or --regime lazy with it, found neither");
    }
    let eta = check_range(
        "eta",
        pick(args.eta, &cfg, "eta", crate::defaults::train::ETA)?,
        f64::MIN_POSITIVE,
        f64::INFINITY,
    )?;
    let steps = match (
        args.steps.or(crate::common::cfg_get(&cfg, "steps")?),
        args.time.or(crate::common::cfg_get(&cfg, "time")?),
    ) {
        (Some(s), None) => check_steps(&format!("--steps {s}"), s as f64)?,
        (None, Some(t)) => {
            let t = check_range("time", t, 0.0, f64::INFINITY)?;
            check_steps(
                &format!("--time {} / --eta {}", fmt_num(t), fmt_num(eta)),
                (t / eta - 1e-9).ceil().max(0.0),
            )?
        }
        (None, None) => crate::defaults::train::STEPS,
        (Some(_), Some(_)) => bail!("give either --steps or --time, found both"),
    };
    let record_every = pick(
        args.record_every,
        &cfg,
        "record_every",
        steps.div_ceil(crate::defaults::TRAJECTORY_ROWS).max(1),
    )?
    .max(1);
    crate::common::check_memory(
        &format!("--record-every {record_every} over {steps} steps"),
        "the trajectory rows",
        7.0 * (steps / record_every + 2) as f64,
    )?;
    let evaluator = model
        .held_out
        .as_ref()
        .map(|h| Evaluator::new(&model.problem, h))
        .transpose()?;
    let out = OutputDir::create(&out_path)?;

    let problem = &model.problem;
    let mut net = model.net;
    let shape = net.shape();
    // No velocity buffer: the fused step adds each tile of the velocity to the weights at once, so the
    // run holds one copy of the parameters (plus the N×m workspace).
    let mut ws = Workspace::new(shape, problem.n());
    let mut rows: Vec<Row> = Vec::new();
    let bar = ctx.bar(steps, "train");
    let figures = |net: &nff_core::Network| evaluator.as_ref().map(|e| e.figures(net));
    let record = |step: u64,
                  rep: StepReport,
                  held: Option<HeldOutFigures>,
                  ws: &Workspace,
                  rows: &mut Vec<Row>| {
        let risk = problem.loss.risk(&ws.yhat, &problem.data.y);
        rows.push(Row {
            step,
            t: step as f64 * eta,
            objective: rep.objective,
            risk,
            dissipation: rep.dissipation,
            residual_norm: ws.r.iter().map(|r| r * r).sum::<f64>().sqrt(),
            held,
        });
    };
    // GD with a small enough step only decreases J: a run whose objective turns non-finite or rises above
    // twice its initial value has diverged. It stops there, writes its outputs with that termination, and
    // exits 3 (docs/cli.md).
    let mut stopped: Option<(&str, u64, f64)> = None;
    let mut limit = f64::INFINITY;
    let mut steps_done = steps;
    for step in 0..steps {
        // The held-out figures of a row describe the state the step starts from (a diverged step's row
        // off the recording grid: the state after it).
        let before = if step % record_every == 0 {
            figures(&net)
        } else {
            None
        };
        let rep = problem.gd_step_fused(&mut net, eta, &mut ws, ctx.par);
        let j = rep.objective;
        if step == 0 {
            limit = 2.0 * j.abs() + 1e-12;
        }
        let diverged = if j.is_nan() || j.is_infinite() {
            Some("non-finite")
        } else if j > limit {
            Some("diverged")
        } else {
            None
        };
        if step % record_every == 0 || diverged.is_some() {
            let held = before.or_else(|| figures(&net));
            record(step, rep, held, &ws, &mut rows);
        }
        if let Some(why) = diverged {
            stopped = Some((why, step, j));
            steps_done = step + 1;
            break;
        }
        if step % 64 == 0 {
            bar.set_position(step);
            bar.set_prefix(format!("J={j:.3e}"));
        }
    }
    // Final state: one more evaluation (no step) so the last row describes the returned network.
    let rep = problem.step_report(&net, &mut ws, ctx.par);
    record(steps_done, rep, figures(&net), &ws, &mut rows);
    bar.finish_and_clear();
    if stopped.is_none() {
        net.ensure_finite()?;
    }

    let has_val = model.held_out.as_ref().is_some_and(|h| h.val.is_some());
    out.write("trajectory.csv", trajectory_csv(&rows, has_val)?.as_bytes())?;
    let held_summary = match (&model.held_out, &held_spec) {
        (Some(h), Some((spec, st))) => {
            Some(crate::heldout::write_parts(&out, h, spec, *st, ctx.seed)?)
        }
        _ => None,
    };
    nff_core::io::save_state_model(
        out.path("state.npz"),
        &problem.data,
        &net,
        &model.config.state_model(),
    )?;
    let last = rows.last().copied().expect("at least the final row");
    let mut summary = ctx.summary_header("train");
    summary["config"] = serde_json::json!({
        "model": model.config,
        "eta": eta,
        "steps": steps,
        "time": steps as f64 * eta,
        "record_every": record_every,
    });
    summary["final"] = serde_json::to_value(last)?;
    summary["regime"] = "mean-field".into();
    summary["freeze"] = "none".into();
    if let Some(h) = held_summary {
        summary["held_out"] = h;
    }
    summary["termination"] = stopped.map_or("final-time", |s| s.0).into();
    summary["steps_done"] = steps_done.into();
    summary["initial"] = serde_json::to_value(rows[0])?;
    summary["wall_seconds"] = ctx.seconds().into();
    out.write_json("summary.json", &summary)?;
    if let Some((why, step, j)) = stopped {
        let dir = out.commit()?;
        return Err(crate::common::NotConverged(format!(
            "training did not reach its stop rule: stopped at step {step} of {steps}, termination {why} (J = {}, initial J = {}, the bound twice that; try a smaller --eta than {}); outputs in {} (exit status 3)",
            fmt_num(j),
            fmt_num(rows[0].objective),
            fmt_num(eta),
            dir.display()
        ))
        .into());
    }
    let test = last.held.map_or(String::new(), |h| {
        format!(", test risk = {:.6e}", h.test_risk)
    });
    let line = format!(
        "trained {} (m = {}, L = {}) for {steps} steps: J = {:.6e}, risk = {:.6e}{test}; wrote {}",
        shape.arch,
        shape.m,
        shape.depth,
        last.objective,
        last.risk,
        out.target().display()
    );
    out.say_and_commit(args.common.quiet, &line)?;
    Ok(())
}
