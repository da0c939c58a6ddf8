//! `nff train`: full-batch scaled gradient descent of a finite-width network (math.md §2),
//! $\theta \leftarrow \theta + \eta\dot\theta$ with the scaled velocities, $t = \eta\cdot$steps.
use crate::common::{check_range, check_steps, fmt_num, pick, CommonArgs, Ctx};
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
    /// Shared options.
    pub common: CommonArgs,
}

/// One trajectory row.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Row {
    step: u64,
    t: f64,
    objective: f64,
    risk: f64,
    dissipation: f64,
    residual_norm: f64,
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
    let model = args.model.build(&cfg, ctx.seed, footprint)?;
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
    let out = OutputDir::create(&out_path)?;

    let problem = &model.problem;
    let mut net = model.net;
    let shape = net.shape();
    // No velocity buffer: the fused step adds each tile of the velocity to the weights at once, so the
    // run holds one copy of the parameters (plus the N×m workspace).
    let mut ws = Workspace::new(shape, problem.n());
    let mut rows: Vec<Row> = Vec::new();
    let bar = ctx.bar(steps, "train");
    let record = |step: u64, rep: StepReport, ws: &Workspace, rows: &mut Vec<Row>| {
        let risk = problem.loss.risk(&ws.yhat, &problem.data.y);
        rows.push(Row {
            step,
            t: step as f64 * eta,
            objective: rep.objective,
            risk,
            dissipation: rep.dissipation,
            residual_norm: ws.r.iter().map(|r| r * r).sum::<f64>().sqrt(),
        });
    };
    // GD with a small enough step only decreases J: a run whose objective turns non-finite or rises above
    // twice its initial value has diverged. It stops there, writes its outputs with that termination, and
    // exits 3 (docs/cli.md).
    let mut stopped: Option<(&str, u64, f64)> = None;
    let mut limit = f64::INFINITY;
    let mut steps_done = steps;
    for step in 0..steps {
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
            record(step, rep, &ws, &mut rows);
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
    record(steps_done, rep, &ws, &mut rows);
    bar.finish_and_clear();
    if stopped.is_none() {
        net.ensure_finite()?;
    }

    let mut csv = String::from("step,t,objective,risk,dissipation,residual_norm\n");
    for r in &rows {
        writeln!(
            csv,
            "{},{:?},{:?},{:?},{:?},{:?}",
            r.step, r.t, r.objective, r.risk, r.dissipation, r.residual_norm
        )?;
    }
    out.write("trajectory.csv", csv.as_bytes())?;
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
    let line = format!(
        "trained {} (m = {}, L = {}) for {steps} steps: J = {:.6e}, risk = {:.6e}; wrote {}",
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
