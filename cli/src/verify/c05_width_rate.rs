//! C5 — finite width → NFF at rate $m^{-1/2}$ (math.md §5): with the $m$ labels i.i.d. from $\nu$ and
//! initial weights the same deterministic functions of the labels, for fixed $T$
//! $\|\hat{\mathbf y}^{(m)}(T) - \hat{\mathbf y}(T)\| = O_P(m^{-1/2})$.
//!
//! **Coupled labels, all blocks.** This is the library's width sweep ([`nff_flow::run_sweep`], the
//! engine of `nff sweep`) with [`Samples::Blocks`]: per seed a width-$M$ reference is drawn with
//! [`nff_flow::reference_network`] (labels $a_j \sim \mathcal N(0, I_d)$, ResNet zero start $W = 0$, $v = 0$); since
//! the start is a deterministic function of the labels, *every* block of $m$ consecutive units of the
//! reference is a width-$m$ network with i.i.d. labels coupled to the reference, so each seed gives $M/m$
//! samples at no extra reference cost. Each is integrated by RK4 to $T = 2$. For a block of $m$ of the
//! $M$ units the CLT gives $\mathbb E\|\hat{\mathbf y}^{(m)} - \hat{\mathbf y}^{(M)}\| \propto (1/m - 1/M)^{1/2} = m_{\rm eff}^{-1/2}$,
//! which is $m^{-1/2}$ as $M \to \infty$: the slope is fitted against $m_{\rm eff} = mM/(M - m)$ (the fit against
//! $m$ is reported too).
use super::flow_support::{fixed, sci};
use super::stats::loglog_fit;
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{ensure, Context, Result};
use nff_core::{Activation, Arch, Loss, Regularizer};
use nff_flow::{effective_width, run_sweep, IntegratorSpec, Samples, SweepConfig, SweepInit};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C5",
            title: "finite width → NFF at rate m^(-1/2)",
            measures: "log-log slope, against m_eff = mM/(M − m), of the mean over seeds and blocks of ‖ŷ^(m)(T) − ŷ^(M)(T)‖, where the width-m networks are the M/m blocks of m consecutive units of a width-M reference (ResNet, tanh, N = 8, d = 3, L = 3, W(0) = 0, v(0) = 0, T = 2, RK4 dt = 0.25)",
            rule: "slope in [-0.65, -0.35] (the O_P(m^(-1/2)) rate of math.md §5; ± 0.15 for sampling noise and the higher-order O(1/m) terms at small m)",
        },
        run,
    }
}

const T_FINAL: f64 = 2.0;
const DT: f64 = 0.25;

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let data = sine(8, 3, ctx.data_seed)?;
    let widths: Vec<usize> = ctx
        .size
        .pick(vec![32, 64, 128, 256], vec![32, 64, 128, 256, 512]);
    let big_m = ctx.size.pick(1024, 2048);
    let n_seeds = ctx.size.pick(8, 12) as u64;
    let config = SweepConfig {
        arch: Arch::ResNet,
        depth: 3,
        activation: Activation::Tanh,
        loss: Loss::Squared,
        reg: Regularizer::None,
        t_final: T_FINAL,
        integrator: IntegratorSpec::Rk4 { dt: DT },
        widths: widths.clone(),
        seeds: (0..n_seeds).map(|s| ctx.init_seed * 1000 + s).collect(),
        reference_width: big_m,
        init: SweepInit::default(),
        samples: Samples::Blocks,
    };
    let report = run_sweep(&config, &data)?;
    let ey: Vec<f64> = report.per_width.iter().map(|w| w.mean_yhat_error).collect();
    let ez: Vec<f64> = report
        .per_width
        .iter()
        .map(|w| w.mean_feature_error)
        .collect();
    let counts: Vec<usize> = report.per_width.iter().map(|w| w.samples).collect();
    ensure!(
        ey.iter().chain(&ez).all(|e| e.is_finite() && *e > 0.0),
        "non-positive or non-finite mean errors {ey:?} {ez:?}"
    );
    let slope = report
        .slope_yhat
        .context("the sweep gave no slope (fewer than two widths below M)")?;
    let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    let m_eff: Vec<f64> = report.per_width.iter().map(|w| w.effective_width).collect();
    let (slope_fit, c) = loglog_fit(&m_eff, &ey);
    ensure!(
        (slope_fit - slope).abs() <= 1e-9,
        "two slope fits disagree: {slope_fit} vs {slope}"
    );
    let (slope_raw, _) = loglog_fit(&xs, &ey);
    let (slope_z, _) = loglog_fit(&m_eff, &ez);
    let passed = (-0.65..=-0.35).contains(&slope);
    let per_sample: Vec<(f64, f64)> = report
        .jobs
        .iter()
        .flat_map(|j| {
            let m_eff = effective_width(j.width, big_m);
            j.yhat_errors.iter().map(move |&e| (m_eff, e))
        })
        .collect();
    // The tested mean on top of its fit (the fit and the −1/2 reference are thin dashed lines drawn
    // under the data); the feature error, another quantity, in its own panel.
    let yhat_panel = LinePlot {
        title: format!(
            "C5 (a): ‖ŷ^(m)(T) − ŷ^(M)(T)‖, M = {big_m}, {n_seeds} seeds × all blocks: slope {slope:.3}"
        ),
        x_label: "effective width m_eff = mM/(M − m)".into(),
        y_label: "‖ŷ^(m)(T) − ŷ^(M)(T)‖ at T = 2".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series::points("‖ŷ^(m) − ŷ^(M)‖ per block", per_sample),
            Series::line_points(
                "mean ‖ŷ^(m) − ŷ^(M)‖ (the fitted values)",
                m_eff.iter().copied().zip(ey.iter().copied()).collect(),
            ),
            Series::reference(
                format!("least-squares fit of the means, slope {slope:.3}"),
                m_eff
                    .iter()
                    .map(|&m| (m, (c + slope * m.ln()).exp()))
                    .collect(),
            ),
            Series::reference(
                "slope −1/2 through the first mean",
                m_eff
                    .iter()
                    .map(|&m| (m, ey[0] * (m / m_eff[0]).powf(-0.5)))
                    .collect(),
            ),
        ],
        hlines: vec![],
    }
    .to_svg()?;
    let feature_panel = LinePlot {
        title: format!("C5 (b): mean per-particle feature error e_Z, slope {slope_z:.3}"),
        x_label: "effective width m_eff = mM/(M − m)".into(),
        y_label: "mean feature error e_Z at T = 2".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series::line_points(
                "mean feature error e_Z",
                m_eff.iter().copied().zip(ez.iter().copied()).collect(),
            ),
            Series::reference(
                "slope −1/2 through the first mean",
                m_eff
                    .iter()
                    .map(|&m| (m, ez[0] * (m / m_eff[0]).powf(-0.5)))
                    .collect(),
            ),
        ],
        hlines: vec![],
    }
    .to_svg()?;
    let figure = crate::plot::stacked(&yhat_panel, &feature_panel);
    Ok(Outcome {
        passed,
        value: slope,
        threshold: -0.5,
        detail: format!(
            "widths {widths:?} (samples {counts:?}), M = {big_m}, {n_seeds} seeds: mean ‖ŷ^(m) − ŷ^(M)‖ {} — slope {slope:.3} against m_eff, {slope_raw:.3} against m; mean feature error {} (slope {slope_z:.3}); math.md §5 reports 0.063/0.034/0.017 at m = 32/128/512",
            fixed(&ey, 4),
            sci(&ez, 2)
        ),
        figure: Some(figure),
    })
}
