//! C18 — ResNet: stationary ⇒ zero residual (math.md §5, global convergence). Output-weight
//! stationarity is $H^\top\mathbf r = 0$ with $H = h(Z_L)$; if $\mathrm{rank}\,H = N$ this forces $\mathbf r = 0$, and quantitatively
//! $\|\mathbf r\| \le \|H^\top\mathbf r\| / (\sqrt m\,\sigma_{\min}(H/\sqrt m))$ at every state. Along the unregularized flow of a
//! ResNet from the zero start, $\sigma_{\min}(H/\sqrt m)$ stays bounded away from 0, so the loss goes to 0.
//!
//! "Bounded away from 0" is tested as no drift with $m$ (one-sided: at finite width $\sigma_{\min}$ is biased
//! low, like $1 - \sqrt{N/m}$); the negative control applies the same width ratio to the collapsed start of
//! a standard DNN with i.i.d. middle layers (math.md §3.1), whose $\sigma_{\min}$ does drift to 0.
use super::flow_support::{network, sci, tanh_problem, StopBelowRisk};
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{ensure, Result};
use faer::Par;
use nff_core::feature::scaled_singular_values;
use nff_core::init::Init;
use nff_core::network::Workspace;
use nff_core::Arch;
use nff_flow::{DormandPrince, DormandPrinceOptions, ObserverMode, Row, Runner, WeightFlow};
use rayon::prelude::*;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C18",
            title: "ResNet stationary ⇒ zero residual",
            measures: "largest final risk over widths of the unregularized ResNet flow (L = 3, tanh, N = 8, d = 3, zero start W = 0, v = 0; adaptive Dormand–Prince) run until the risk is ≤ 1e-12 or t = 2e4; along it, ‖r‖, ‖Hᵀr‖, σ_min(H/√m) and the bound ‖Hᵀr‖/(√m σ_min); the width ratio of σ_min for the ResNet and for a collapsed DNN start",
            rule: "final risk ≤ 1e-10 at every width (global minimum, r* = 0), ‖r‖ ≤ bound at every recorded step, and σ_min(H/√m) bounded away from 0 uniformly in m: its minimum along training > 0 at every width and, at the largest width, ≥ ½ of that at the smallest (no drift to 0 as m grows; one-sided, because at finite m σ_min is biased low like 1 − √(N/m)); negative control: the same ratio over the same 4× width step, taken at 4× the widths (where the finite-width bias is small), of σ_min(H/√m) at the start of the i.i.d. μ_W = 0 DNN (collapsed features, §3.1; mean of 8 draws per width) must be < ½",
        },
        run,
    }
}

struct WidthRun {
    m: usize,
    rows: Vec<Row>,
    t: f64,
    steps: u64,
}

fn train(ctx: &ClaimCtx, m: usize, t_max: f64) -> Result<WidthRun> {
    let data = sine(8, 3, ctx.data_seed)?;
    let problem = tanh_problem(&data)?;
    let net = network(&data, Arch::ResNet, m, 3, &Init::zero(), ctx.init_seed)?;
    let field = WeightFlow::new(problem, net.shape(), Par::Seq)?;
    let y0 = field.initial_state(&net)?;
    let every = 20;
    let dp = DormandPrince::new(DormandPrinceOptions::with_tolerances(1e-7, 1e-10))?;
    let report = Runner::builder(field, dp)
        .initial_state(0.0, y0)
        .final_time(t_max)
        .max_steps(400_000)
        .record(ObserverMode::Every(every))
        .observer(StopBelowRisk {
            level: 1e-12,
            every,
        })
        .build()?
        .run()?;
    Ok(WidthRun {
        m,
        rows: report.trajectory,
        t: report.t,
        steps: report.steps,
    })
}

/// Negative control: $\sigma_{\min}(H/\sqrt m)$ at the start of the standard DNN (L = 3) from the i.i.d.
/// $\mu_W = 0$ start, whose middle features collapse (math.md §3.1), for one draw.
fn collapsed_sigma_min(ctx: &ClaimCtx, m: usize, seed: u64) -> Result<f64> {
    let data = sine(8, 3, ctx.data_seed)?;
    let problem = tanh_problem(&data)?;
    let net = network(&data, Arch::Dnn, m, 3, &Init::iid(), seed)?;
    let mut ws = Workspace::new(net.shape(), problem.n());
    problem.forward_into(&net, &mut ws, Par::Seq);
    let sv = scaled_singular_values(ws.hz(net.shape().depth - 1))?;
    Ok(sv.last().copied().unwrap_or(0.0))
}

/// Draws per width of the negative control.
const CONTROL_DRAWS: u64 = 8;
/// The control runs at this multiple of the claim's widths, where the finite-width bias of
/// $\sigma_{\min}$ of its product of random matrices is small (docs/claims/C18.md).
const CONTROL_WIDTH_FACTOR: usize = 4;

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let widths: Vec<usize> = ctx.size.pick(vec![32, 128], vec![32, 128, 512]);
    let t_max = 2e4;
    let runs: Vec<WidthRun> = widths
        .par_iter()
        .map(|&m| train(ctx, m, t_max))
        .collect::<Result<_>>()?;
    let control_widths: Vec<usize> = widths.iter().map(|m| CONTROL_WIDTH_FACTOR * m).collect();
    let control_jobs: Vec<(usize, u64)> = control_widths
        .iter()
        .flat_map(|&m| (0..CONTROL_DRAWS).map(move |k| (m, ctx.init_seed * 1000 + k)))
        .collect();
    let control: Vec<f64> = control_jobs
        .par_iter()
        .map(|&(m, seed)| collapsed_sigma_min(ctx, m, seed))
        .collect::<Result<_>>()?;
    let control_mean: Vec<f64> = control_widths
        .iter()
        .map(|&m| {
            let v: Vec<f64> = control_jobs
                .iter()
                .zip(&control)
                .filter(|(j, _)| j.0 == m)
                .map(|(_, s)| *s)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        })
        .collect();
    let mut final_risk = Vec::new();
    let mut sigma0 = Vec::new();
    let mut sigma_lo = Vec::new();
    let mut violations = 0usize;
    let mut recorded = 0usize;
    let mut series = Vec::new();
    for run in &runs {
        let diag: Vec<(f64, &nff_flow::Diagnostics)> = run
            .rows
            .iter()
            .filter_map(|r| r.diagnostics.as_ref().map(|d| (r.t, d)))
            .collect();
        ensure!(!diag.is_empty(), "no recorded rows at width {}", run.m);
        recorded += diag.len();
        violations += diag.iter().filter(|(_, d)| !d.bound.bound_holds).count();
        final_risk.push(diag.last().map_or(f64::NAN, |(_, d)| d.risk));
        sigma0.push(diag[0].1.bound.sigma_min);
        sigma_lo.push(
            diag.iter()
                .map(|(_, d)| d.bound.sigma_min)
                .fold(f64::INFINITY, f64::min),
        );
        let pos = |f: &dyn Fn(&nff_flow::Diagnostics) -> Option<f64>| -> Vec<(f64, f64)> {
            diag.iter()
                .filter(|(t, _)| *t > 0.0)
                .filter_map(|(t, d)| f(d).map(|v| (*t, v)))
                .collect()
        };
        series.push(Series::line(
            format!("risk, m = {}", run.m),
            pos(&|d| Some(d.risk)),
        ));
        series.push(Series::line(
            format!("σ_min(H/√m), m = {}", run.m),
            pos(&|d| Some(d.bound.sigma_min)),
        ));
        if run.m == *widths.last().unwrap_or(&0) {
            series.push(Series::line(
                format!("‖r‖, m = {}", run.m),
                pos(&|d| Some(d.bound.residual_norm)),
            ));
            series.push(Series::points(
                format!("bound ‖Hᵀr‖/(√m σ_min), m = {}", run.m),
                pos(&|d| d.bound.bound),
            ));
        }
    }
    let worst_risk = final_risk.iter().copied().fold(0.0, f64::max);
    let last = widths.len() - 1;
    // No drift to 0 as m grows: the minimum along training at the largest width against the smallest.
    let positive = sigma_lo.iter().all(|s| *s > 0.0);
    let width_ratio = sigma_lo[last] / sigma_lo[0];
    let no_drift = width_ratio >= 0.5;
    // The same statistic on collapsed features must see the drift.
    let control_ratio = control_mean[last] / control_mean[0];
    let control_fails = control_ratio < 0.5;
    let threshold = 1e-10;
    let passed =
        worst_risk <= threshold && violations == 0 && positive && no_drift && control_fails;
    let figure = LinePlot {
        title: "C18: ResNet flow to a global minimum — risk, σ_min(H/√m), ‖r‖ and its bound".into(),
        x_label: "time t".into(),
        y_label: "value".into(),
        log_x: true,
        log_y: true,
        series,
        hlines: vec![("risk 1e-10".into(), threshold)],
    }
    .to_svg()?;
    Ok(Outcome {
        passed,
        value: worst_risk,
        threshold,
        detail: format!(
            "widths {widths:?}: final risk {} at t = {} after {} steps; σ_min(H/√m) initial {} min along training {} (largest/smallest width {width_ratio:.3}, needs ≥ 0.5); bound violated at {violations} of {recorded} recorded steps; negative control (DNN, i.i.d. μ_W = 0 start, widths {control_widths:?}, {CONTROL_DRAWS} draws): σ_min(H/√m) {} (ratio {control_ratio:.3}, must be < 0.5)",
            sci(&final_risk, 2),
            sci(&runs.iter().map(|r| r.t).collect::<Vec<_>>(), 2),
            runs.iter().map(|r| r.steps.to_string()).collect::<Vec<_>>().join("/"),
            sci(&sigma0, 3),
            sci(&sigma_lo, 3),
            sci(&control_mean, 3),
        ),
        figure: Some(figure),
    })
}
