//! `nff train --freeze hidden` (random features) and `nff train --regime lazy` (the network linearized at
//! its initialization): the fixed-feature baselines of math.md §4.5, each a convex problem solved exactly
//! by [`nff_core::baseline`] — no GD steps, so `--eta`, `--steps`, `--time` do not apply. The trajectory has
//! two rows: the initial state (step 0) and the solution (step = Newton steps, t = 0).
use super::train::{trajectory_csv, Row, TrainArgs};
use crate::common::{fmt_num, pick, Ctx};
use crate::heldout::{ridge_grid, Evaluator, HeldOutSpec, Standardize};
use crate::output::OutputDir;
use crate::setup::Model;
use anyhow::{bail, Context, Result};
use nff_core::baseline::{frozen, lazy, KernelFit, RidgeChoice};
use nff_core::network::Workspace;
use nff_core::{Network, Problem, Regularizer};
use std::path::PathBuf;

/// What `nff train` trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// GD on the whole network (the default).
    MeanField,
    /// `--freeze hidden`: only v, fitted exactly.
    Frozen,
    /// `--regime lazy`: the linearization at θ0, fitted exactly.
    Lazy,
}

impl Mode {
    /// From `--freeze` and `--regime` (flags or config keys).
    pub fn resolve(args: &TrainArgs, cfg: &toml::Table, model: &Model) -> Result<Self> {
        let freeze: String = pick(
            args.freeze.clone(),
            cfg,
            "freeze",
            crate::defaults::train::FREEZE.into(),
        )?;
        let regime: String = pick(
            args.regime.clone(),
            cfg,
            "regime",
            crate::defaults::train::REGIME.into(),
        )?;
        let frozen = match freeze.as_str() {
            "none" => false,
            "hidden" => true,
            o => bail!("unknown --freeze '{o}': expected one of none, hidden"),
        };
        let lazy = match regime.as_str() {
            "mean-field" => false,
            "lazy" => true,
            o => bail!("unknown --regime '{o}': expected one of mean-field, lazy"),
        };
        let mode = match (frozen, lazy) {
            (true, true) => bail!("--freeze hidden and --regime lazy are two different baselines: expected one of them, found both"),
            (true, false) => Self::Frozen,
            (false, true) => Self::Lazy,
            (false, false) => Self::MeanField,
        };
        // With --init STATE.npz the state is the point the baseline freezes or linearizes at.
        let _ = model;
        Ok(mode)
    }

    fn regime(self) -> &'static str {
        if self == Self::Lazy {
            "lazy"
        } else {
            "mean-field"
        }
    }

    fn freeze(self) -> &'static str {
        if self == Self::Frozen {
            "hidden"
        } else {
            "none"
        }
    }
}

/// The regularizer `reg` with its ridge on v set to `lambda_v` (what a random-features fit with a chosen
/// ridge records).
fn with_v_ridge(reg: Regularizer, lambda_v: f64) -> Regularizer {
    match reg {
        Regularizer::L2 { lambda } | Regularizer::L2Split { w: lambda, .. }
            if lambda_v == lambda =>
        {
            reg
        }
        Regularizer::L2 { lambda } => Regularizer::L2Split {
            a: lambda,
            w: lambda,
            v: lambda_v,
        },
        Regularizer::L2Split { a, w, .. } => Regularizer::L2Split { a, w, v: lambda_v },
        _ => Regularizer::L2Split {
            a: 0.0,
            w: 0.0,
            v: lambda_v,
        },
    }
}

/// A trajectory row of `net` on `problem` (objective with the problem's regularizer).
fn row_of(problem: &Problem, net: &Network, step: u64, par: faer::Par) -> Row {
    let mut ws = Workspace::new(net.shape(), problem.n());
    let rep = problem.step_report(net, &mut ws, par);
    Row {
        step,
        t: 0.0,
        objective: rep.objective,
        risk: problem.loss.risk(&ws.yhat, &problem.data.y),
        dissipation: rep.dissipation,
        residual_norm: ws.r.iter().map(|r| r * r).sum::<f64>().sqrt(),
        held: None,
    }
}

/// Run an exact baseline fit of `nff train`.
pub fn run(
    args: &TrainArgs,
    cfg: &toml::Table,
    ctx: &Ctx,
    model: Model,
    mode: Mode,
    held_spec: Option<&(HeldOutSpec, Standardize)>,
) -> Result<()> {
    let out_path: PathBuf = pick(
        args.common.out.clone(),
        cfg,
        "out",
        PathBuf::from(crate::defaults::train::OUT),
    )?;
    let grid = ridge_grid(args.ridge_grid.clone(), cfg)?;
    let val = model.held_out.as_ref().and_then(|h| h.val.clone());
    if grid.is_some() && val.is_none() {
        bail!("--ridge-grid chooses the ridge on the validation part: expected --split TRAIN,VAL,TEST with VAL > 0, found no validation part");
    }
    let evaluator = model
        .held_out
        .as_ref()
        .map(|h| Evaluator::new(&model.problem, h))
        .transpose()?;
    let par = ctx.par;
    let problem = &model.problem;
    let net0 = &model.net;
    let mut initial = row_of(problem, net0, 0, par);
    initial.held = evaluator.as_ref().map(|e| e.figures(net0));

    let (final_row, state, state_reg, fit, choice, init_state): (
        Row,
        Network,
        Regularizer,
        KernelFit,
        Option<RidgeChoice>,
        Option<&Network>,
    ) = match mode {
        Mode::Frozen => {
            let lambda_v = frozen::output_ridge(problem.reg)
                .context("--freeze hidden fits v with the ridge of --reg l2")?;
            let (net, fit, choice) = match (&grid, &val) {
                (Some(g), Some(v)) => {
                    let (n, f, c) = frozen::fit_output_best_ridge(problem, v, net0, g, par)?;
                    (n, f, Some(c))
                }
                _ => {
                    let (n, f) = frozen::fit_output(problem, net0, lambda_v, par).with_context(
                        || format!("--freeze hidden with the ridge lambda_v = {} of --lambda / --lambda-v", fmt_num(lambda_v)),
                    )?;
                    (n, f, None)
                }
            };
            let reg = with_v_ridge(problem.reg, fit.lambda);
            let fitted_problem = Problem {
                reg,
                ..problem.clone()
            };
            let mut row = row_of(&fitted_problem, &net, fit.iterations as u64, par);
            row.held = evaluator.as_ref().map(|e| e.figures(&net));
            (row, net, reg, fit, choice, None)
        }
        Mode::Lazy => {
            let lambda = match problem.reg {
                Regularizer::None => 0.0,
                Regularizer::L2 { lambda } => lambda,
                _ => bail!("--regime lazy puts the ridge --lambda of --reg l2 on the displacement from the initialization: expected --reg l2 without --lambda-a / --lambda-v, found {}", crate::setup::describe_reg(problem.reg)),
            };
            let (model_lazy, lf, choice) = match (&grid, &val) {
                (Some(g), Some(v)) => {
                    let (l, f, c) = lazy::fit_lazy_best_ridge(problem, v, net0, g, par)?;
                    (l, f, Some(c))
                }
                _ => {
                    let mut l = lazy::Lazy::new(problem, net0, par)?;
                    let f = l.fit(lambda, par).with_context(|| {
                        format!("--regime lazy with the ridge --lambda {}", fmt_num(lambda))
                    })?;
                    (l, f, None)
                }
            };
            let fit = lf.fit.clone();
            let r = problem.loss.residual(&fit.yhat, &problem.data.y);
            let mut row = Row {
                step: fit.iterations as u64,
                t: 0.0,
                objective: fit.objective,
                risk: fit.risk,
                dissipation: fit.gradient_norm * fit.gradient_norm,
                residual_norm: r.iter().map(|r| r * r).sum::<f64>().sqrt(),
                held: None,
            };
            row.held = evaluator
                .as_ref()
                .map(|e| e.figures_with(|p| Ok(model_lazy.predict_on(&p.data, &lf, par)?)))
                .transpose()?;
            let mut theta = net0.clone();
            theta.axpy(1.0, &lf.delta);
            let reg = if grid.is_some() {
                Regularizer::l2(fit.lambda)
            } else {
                problem.reg
            };
            (row, theta, reg, fit, choice, Some(net0))
        }
        Mode::MeanField => unreachable!("train_exact runs the exact fits only"),
    };

    let out = OutputDir::create(&out_path)?;
    let rows = [initial, final_row];
    let has_val = val.is_some();
    out.write("trajectory.csv", trajectory_csv(&rows, has_val)?.as_bytes())?;
    let mut state_model = model.config.state_model();
    state_model.regularizer = state_reg;
    nff_core::io::save_state_model(out.path("state.npz"), &problem.data, &state, &state_model)?;
    if let Some(theta0) = init_state {
        nff_core::io::save_state_model(
            out.path("init.npz"),
            &problem.data,
            theta0,
            &model.config.state_model(),
        )?;
    }
    let held_summary = match (&model.held_out, held_spec) {
        (Some(h), Some((spec, st))) => {
            Some(crate::heldout::write_parts(&out, h, spec, *st, ctx.seed)?)
        }
        _ => None,
    };
    let mut summary = ctx.summary_header("train");
    summary["config"] = serde_json::json!({ "model": model.config, "ridge_grid": grid });
    summary["regime"] = mode.regime().into();
    summary["freeze"] = mode.freeze().into();
    summary["fit"] = serde_json::json!({
        "method": "exact (Newton on the N-dimensional kernel problem, math.md §4.5)",
        "lambda": fit.lambda,
        "iterations": fit.iterations,
        "gradient_norm": fit.gradient_norm,
        "converged": fit.converged,
        "ridge_choice": choice,
    });
    summary["initial"] = serde_json::to_value(rows[0])?;
    summary["final"] = serde_json::to_value(rows[1])?;
    summary["termination"] = if fit.converged {
        "converged"
    } else {
        "not-converged"
    }
    .into();
    if let Some(h) = held_summary {
        summary["held_out"] = h;
    }
    summary["wall_seconds"] = ctx.seconds().into();
    out.write_json("summary.json", &summary)?;
    let what = if mode == Mode::Frozen {
        "random features (hidden layers frozen)"
    } else {
        "the lazy (linearized) model"
    };
    let test = rows[1].held.map_or(String::new(), |h| {
        format!(", test risk = {:.6e}", h.test_risk)
    });
    if !fit.converged {
        let dir = out.commit()?;
        return Err(crate::common::NotConverged(format!(
            "the exact fit of {what} did not converge in {} Newton steps (|gradient| = {}); outputs in {} (exit status 3)",
            fit.iterations,
            fmt_num(fit.gradient_norm),
            dir.display()
        ))
        .into());
    }
    let line = format!(
        "fitted {what} exactly (lambda = {}, {} Newton steps): J = {:.6e}, risk = {:.6e}{test}; wrote {}",
        fmt_num(fit.lambda),
        fit.iterations,
        rows[1].objective,
        rows[1].risk,
        out.target().display()
    );
    out.say_and_commit(args.common.quiet, &line)?;
    Ok(())
}
