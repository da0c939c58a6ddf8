//! C5 — finite width → NFF at rate $m^{-1/2}$ (math.md §5): with the $m$ labels i.i.d. from $\nu$ and
//! initial weights the same deterministic functions of the labels, for fixed $T$
//! $\|\hat{\mathbf y}^{(m)}(T) - \hat{\mathbf y}(T)\| = O_P(m^{-1/2})$.
//!
//! **Coupled labels, all blocks.** Per seed, a width-$M$ reference is drawn with
//! [`nff_flow::reference_network`] (labels $a_j \sim \mathcal N(0, I_d)$, ResNet zero start $W = 0$, $v = 0$). Because
//! the start is a deterministic function of the labels, *every* block of $m$ consecutive units of the
//! reference is a width-$m$ network with i.i.d. labels, coupled to the reference; the first block is the
//! library sweep's truncation ([`nff_flow::truncate`]), the others give $M/m - 1$ more samples at no extra
//! reference cost. Each is integrated by RK4 to $T = 2$. For a block of $m$ of the $M$ units the CLT
//! gives $\mathbb E\|\hat{\mathbf y}^{(m)} - \hat{\mathbf y}^{(M)}\| \propto (1/m - 1/M)^{1/2} = m_{\rm eff}^{-1/2}$, which is
//! $m^{-1/2}$ as $M \to \infty$: the slope is fitted against $m_{\rm eff} = mM/(M - m)$ (the fit against $m$ is
//! reported too).
use super::flow_support::{fixed, integrate, sci, tanh_problem};
use super::stats::loglog_fit;
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{ensure, Result};
use faer::Par;
use nff_core::network::Workspace;
use nff_core::{Arch, Network, Params, Problem, Shape};
use nff_flow::{reference_network, FixedStep, ObserverMode, SweepInit, WeightFlow};
use rayon::prelude::*;

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

/// $\hat{\mathbf y}(T)$ and $Z_L(T)$ (column-major) of `net` integrated by RK4.
fn integrate_net(problem: &Problem, net: &Network) -> Result<(Vec<f64>, Vec<f64>)> {
    let field = WeightFlow::new(problem.clone(), net.shape(), Par::Seq)?;
    let y0 = field.initial_state(net)?;
    let run = integrate(field, FixedStep::rk4(DT)?, y0, T_FINAL, ObserverMode::Never)?;
    let fin = Params::from_vec(net.shape(), run.report.state)?;
    let mut ws = Workspace::new(fin.shape(), problem.n());
    problem.forward_into(&fin, &mut ws, Par::Seq);
    let top = fin.shape().depth - 1;
    Ok((std::mem::take(&mut ws.yhat), std::mem::take(&mut ws.z[top])))
}

/// Units `start..start + m` of `net` (its diagonal blocks of $W$).
fn block(net: &Network, start: usize, m: usize) -> Result<Network> {
    let s = net.shape();
    let mut out = Params::zeros(Shape::new(s.arch, s.d, m, s.depth)?);
    out.a_mut().copy_from(net.a().subcols(start, m));
    for l in 0..s.n_w() {
        out.w_mut(l)
            .copy_from(net.w(l).submatrix(start, start, m, m));
    }
    out.v_mut().copy_from_slice(&net.v()[start..start + m]);
    Ok(out)
}

struct Sample {
    width: usize,
    yhat_error: f64,
    feature_error: f64,
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let n = 8;
    let data = sine(n, 3, ctx.seed)?;
    let problem = tanh_problem(&data)?;
    let widths: Vec<usize> = ctx
        .size
        .pick(vec![32, 64, 128, 256], vec![32, 64, 128, 256, 512]);
    let big_m = ctx.size.pick(1024, 2048);
    let n_seeds = ctx.size.pick(8, 12) as u64;
    let ref_shape = Shape::new(Arch::ResNet, data.d(), big_m, 3)?;
    let seeds: Vec<u64> = (0..n_seeds).map(|s| ctx.seed * 1000 + s).collect();
    // References in parallel (each sequential inside), collected in seed order.
    let references: Vec<(Network, Vec<f64>, Vec<f64>)> = seeds
        .par_iter()
        .map(|&seed| {
            let net = reference_network(ref_shape, SweepInit::default(), seed);
            let (yhat, z) = integrate_net(&problem, &net)?;
            Ok((net, yhat, z))
        })
        .collect::<Result<_>>()?;
    let jobs: Vec<(usize, usize, usize)> = (0..seeds.len())
        .flat_map(|s| {
            widths
                .iter()
                .flat_map(move |&m| (0..big_m / m).map(move |b| (s, m, b * m)))
        })
        .collect();
    let samples: Vec<Sample> = jobs
        .par_iter()
        .map(|&(s, m, start)| {
            let (ref_net, ref_yhat, ref_z) = &references[s];
            let (yhat, z) = integrate_net(&problem, &block(ref_net, start, m)?)?;
            let yhat_error = yhat
                .iter()
                .zip(ref_yhat)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
            let feature_error = (z
                .iter()
                .zip(&ref_z[n * start..n * (start + m)])
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                / m as f64)
                .sqrt();
            Ok(Sample {
                width: m,
                yhat_error,
                feature_error,
            })
        })
        .collect::<Result<_>>()?;
    let mean_at = |m: usize, f: fn(&Sample) -> f64| {
        let v: Vec<f64> = samples.iter().filter(|s| s.width == m).map(f).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let ey: Vec<f64> = widths
        .iter()
        .map(|&m| mean_at(m, |s| s.yhat_error))
        .collect();
    let ez: Vec<f64> = widths
        .iter()
        .map(|&m| mean_at(m, |s| s.feature_error))
        .collect();
    ensure!(
        ey.iter().chain(&ez).all(|e| e.is_finite() && *e > 0.0),
        "non-positive or non-finite mean errors {ey:?} {ez:?}"
    );
    let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    let m_eff: Vec<f64> = xs
        .iter()
        .map(|&m| m * big_m as f64 / (big_m as f64 - m))
        .collect();
    let (slope, c) = loglog_fit(&m_eff, &ey);
    let (slope_raw, _) = loglog_fit(&xs, &ey);
    let (slope_z, _) = loglog_fit(&m_eff, &ez);
    let passed = (-0.65..=-0.35).contains(&slope);
    let per_sample: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| {
            let m = s.width as f64;
            (m * big_m as f64 / (big_m as f64 - m), s.yhat_error)
        })
        .collect();
    let counts: Vec<usize> = widths
        .iter()
        .map(|&m| samples.iter().filter(|s| s.width == m).count())
        .collect();
    let figure = LinePlot {
        title: format!(
            "C5: ‖ŷ^(m)(T) − ŷ^(M)(T)‖, M = {big_m}, {n_seeds} seeds × all blocks: slope {slope:.3}"
        ),
        x_label: "effective width m_eff = mM/(M − m)".into(),
        y_label: "distance to the width-M reference at T = 2".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series::points("‖ŷ^(m) − ŷ^(M)‖ per block", per_sample),
            Series::line_points(
                "mean ‖ŷ^(m) − ŷ^(M)‖",
                m_eff.iter().copied().zip(ey.iter().copied()).collect(),
            ),
            Series::line(
                format!("fit, slope {slope:.3}"),
                m_eff
                    .iter()
                    .map(|&m| (m, (c + slope * m.ln()).exp()))
                    .collect(),
            ),
            Series::line(
                "slope −1/2 through the first mean",
                m_eff
                    .iter()
                    .map(|&m| (m, ey[0] * (m / m_eff[0]).powf(-0.5)))
                    .collect(),
            ),
            Series::line_points(
                format!("mean feature error e_Z, slope {slope_z:.3}"),
                m_eff.iter().copied().zip(ez.iter().copied()).collect(),
            ),
        ],
        hlines: vec![],
    }
    .to_svg()?;
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
