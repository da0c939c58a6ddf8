//! C24 — noise is needed for the two-level global optimum (math.md §4.1): noiseless GD can stop at a
//! non-global stationary point (the certificate of C10 fails), while Langevin GD reaches the global optimum.
//!
//! The statement is about the mean-field limit, so it is checked on a width sweep (docs/claims/C24.md
//! derives the rule):
//! - noisy GD at temperature $\tau$ converges to the unique minimizer of the entropic objective $F_\tau$, the Gibbs
//!   fixed point $\mu = \Gamma(\mu)$: $u\,|\,\theta\sim\mathcal N(-s_{\mathbf r}/\lambda_1, \tau/\lambda_1)$, $\rho\propto\exp(s_{\mathbf r}^2/2\lambda_1\tau - \lambda_2\|\theta\|^2/2\tau)$ with $\mathbf r$ the
//!   cloud's own residual. Its defect in prediction space,
//!   $D_\tau = \|\hat{\mathbf y}_{\rm cloud} - \hat{\mathbf y}_\Gamma(\mathbf r_{\rm cloud})\|/\|\hat{\mathbf y}_{\rm cloud}\|$, is $O(m^{-1/2})$ for a cloud at the optimum (sampling
//!   error) and bounded away from 0 for one that is not;
//! - noiseless GD, if stuck, keeps C10's τ = 0 certificate defect bounded away from 0 as $m$ grows (its
//!   mean-field limit is deterministic).
//!
//! The data are fixed (`sine`, N = 10, d = 1 + bias, data seed 12) because the phenomenon needs a landscape
//! with a multi-feature optimum; the run seed drives initializations, noise and fresh samples. Every
//! initialization is used twice (paired comparison).
use super::stats::loglog_fit;
use super::two_level_support::{
    certificate_setup, gd, iid_network, langevin, par_map, prediction, CertificateSetup,
};
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;
use nff_core::{Params, Problem};

/// The fixed dataset (see the module docs).
const DATA_SEED: u64 = 12;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C24",
            title: "noise is needed for the two-level global optimum",
            measures: "log-log slope against the width m of the Langevin cloud's τ > 0 certificate defect D_τ = ‖ŷ_cloud − ŷ_Γ(r_cloud)‖/‖ŷ_cloud‖ (Γ = the Gibbs map whose fixed point is the unique optimum of the entropic objective; geometric mean over seeds, RMS over 20 snapshots), next to C10's τ = 0 certificate defect after noiseless GD from the same initializations",
            rule: "Langevin reaches the optimum: slope of D_τ ≤ −1/4 (a cloud at the optimum has D_τ = O(m^(-1/2)); one that is not has D_τ bounded away from 0, slope 0; −1/4 is the midpoint); noiseless GD is stuck: its C10 defect exceeds 1e-6 on some seed at every width and the slope of its largest value over seeds is ≥ −1/4 (set before measuring)",
        },
        run,
    }
}

/// Langevin temperature and step, burn-in time, snapshots (count and spacing in steps).
const TAU: f64 = 0.01;
const ETA_NOISY: f64 = 0.1;
const BURN_T: f64 = 1000.0;
const SNAPSHOTS: usize = 20;
const SNAP_EVERY: usize = 100;

/// The Gibbs map's prediction $\hat{\mathbf y}_\Gamma(\mathbf r) = \int -\frac{s_{\mathbf r}}{\lambda_1}h(\theta^\top X)\rho_{\mathbf r}(\theta)\,d\theta$ by quadrature on a
/// `g`×`g` grid over $[-R, R]^2$ (the integrand vanishes at the boundary, so the Riemann sum is the trapezoid
/// rule), $\theta = (a, b)$ for the data columns $(x, 1)$.
fn gibbs_prediction(
    pb: &Problem,
    r: &[f64],
    lambda1: f64,
    lambda2: f64,
    g: usize,
    radius: f64,
) -> Vec<f64> {
    let x = &pb.data.x;
    let n = x.nrows();
    let node = |i: usize| -radius + 2.0 * radius * i as f64 / (g - 1) as f64;
    let mut logw = Vec::with_capacity(g * g);
    let mut hs = Vec::with_capacity(g * g * n);
    for i in 0..g {
        for j in 0..g {
            let (a, b) = (node(i), node(j));
            let mut s = 0.0;
            for k in 0..n {
                let h = pb.activation.value(a * x[(k, 0)] + b * x[(k, 1)]);
                hs.push(h);
                s += r[k] * h;
            }
            logw.push((s * s / (2.0 * lambda1) - lambda2 * (a * a + b * b) / 2.0) / TAU);
        }
    }
    let mx = logw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut z = 0.0;
    let mut yhat = vec![0.0; n];
    for (p, lw) in logw.iter().enumerate() {
        let w = (lw - mx).exp();
        let h = &hs[p * n..(p + 1) * n];
        let s: f64 = h.iter().zip(r).map(|(a, b)| a * b).sum();
        z += w;
        for k in 0..n {
            yhat[k] += w * (-s / lambda1) * h[k];
        }
    }
    yhat.iter().map(|v| v / z).collect()
}

fn rel_dist(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let n: f64 = a.iter().map(|x| x * x).sum();
    (d / n).sqrt()
}

/// One paired run: C10's defect after noiseless GD, $D_\tau$ (RMS over snapshots) after Langevin, and the
/// last snapshot's residual (for the quadrature check).
struct Pair {
    gd_defect: f64,
    gd_objective: f64,
    d_tau: f64,
    r_last: Vec<f64>,
    yhat_last: Vec<f64>,
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let CertificateSetup {
        pb,
        fresh,
        lambda1,
        lambda2,
        eta,
        ..
    } = certificate_setup(ctx, DATA_SEED, "C24/fresh")?;
    let widths: Vec<usize> = ctx.size.pick(vec![50, 200, 800], vec![50, 200, 800, 3200]);
    let n_seeds = ctx.size.pick(4, 6);
    let gd_steps = 4000;
    let burn = (BURN_T / ETA_NOISY).round() as usize;
    let noisy_steps = burn + SNAPSHOTS * SNAP_EVERY;
    let (g, radius) = (241, 6.0);
    let jobs: Vec<(usize, u64)> = widths
        .iter()
        .flat_map(|&m| {
            (0..n_seeds).map(move |i| (m, ctx.init_seed.wrapping_mul(211).wrapping_add(i)))
        })
        .collect();
    let pairs = par_map(jobs.len(), |i| -> Result<Pair> {
        let (m, seed) = jobs[i];
        let net0 = iid_network(&pb, m, 1.0, 1.0, seed)?;
        let plain = gd(&pb, &net0, eta, gd_steps)?;
        let cert =
            super::two_level_support::certificate(&pb, &plain, fresh.as_ref(), lambda1, lambda2)?;
        let shape = net0.shape();
        let mut sq = Vec::with_capacity(SNAPSHOTS);
        let mut last = (Vec::new(), Vec::new());
        langevin(
            &pb,
            &net0,
            ETA_NOISY,
            TAU,
            noisy_steps,
            seed ^ 0x9e37,
            SNAP_EVERY,
            |k, y| {
                if k > burn {
                    let net = Params::from_vec(shape, y.to_vec())?;
                    let (yhat, r) = prediction(&pb, &net);
                    let yg = gibbs_prediction(&pb, &r, lambda1, lambda2, g, radius);
                    sq.push(rel_dist(&yhat, &yg).powi(2));
                    last = (r, yhat);
                }
                Ok(())
            },
        )?;
        Ok(Pair {
            gd_defect: cert.defect(),
            gd_objective: cert.objective,
            d_tau: (sq.iter().sum::<f64>() / sq.len().max(1) as f64).sqrt(),
            r_last: last.0,
            yhat_last: last.1,
        })
    })?;
    let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    let of_width = |m: usize| -> Vec<&Pair> {
        jobs.iter()
            .zip(&pairs)
            .filter(|(j, _)| j.0 == m)
            .map(|(_, p)| p)
            .collect()
    };
    let geo =
        |v: Vec<f64>| -> f64 { (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp() };
    let d_tau: Vec<f64> = widths
        .iter()
        .map(|&m| geo(of_width(m).iter().map(|p| p.d_tau).collect()))
        .collect();
    let gd_max: Vec<f64> = widths
        .iter()
        .map(|&m| of_width(m).iter().map(|p| p.gd_defect).fold(0.0, f64::max))
        .collect();
    let gd_failing: Vec<usize> = widths
        .iter()
        .map(|&m| of_width(m).iter().filter(|p| p.gd_defect > 1e-6).count())
        .collect();
    let (slope, c_tau) = loglog_fit(&xs, &d_tau);
    let (slope_gd, _) = loglog_fit(&xs, &gd_max);
    let threshold = -0.25;
    let gd_stuck = gd_failing.iter().all(|&c| c >= 1) && slope_gd >= threshold;
    let passed = slope <= threshold && gd_stuck;
    // Quadrature check: the first run's last snapshot with a finer, wider grid.
    let p0 = &pairs[0];
    let coarse = gibbs_prediction(&pb, &p0.r_last, lambda1, lambda2, g, radius);
    let fine = gibbs_prediction(&pb, &p0.r_last, lambda1, lambda2, 481, 8.0);
    let quad_err = rel_dist(&p0.yhat_last, &coarse) - rel_dist(&p0.yhat_last, &fine);
    let per = |f: fn(&Pair) -> f64| -> Vec<(f64, f64)> {
        jobs.iter()
            .zip(&pairs)
            .map(|(j, p)| (j.0 as f64, f(p)))
            .collect()
    };
    let pts =
        |v: &[f64]| -> Vec<(f64, f64)> { xs.iter().copied().zip(v.iter().copied()).collect() };
    let d0 = (c_tau + slope * xs[0].ln()).exp();
    let figure = LinePlot {
        title: format!(
            "C24: certificate defects vs width — Langevin (τ = {TAU}) vs noiseless GD, paired inits"
        ),
        x_label: "width m".into(),
        y_label: "certificate defect".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series::line_points(
                format!("Langevin: τ-certificate D_τ (geo. mean), slope {slope:.2}"),
                pts(&d_tau),
            ),
            Series::points("Langevin: D_τ per run", per(|p| p.d_tau)),
            Series::line(
                "m^(-1/2) from the Langevin fit at the smallest m",
                xs.iter()
                    .map(|&m| (m, d0 * (m / xs[0]).powf(-0.5)))
                    .collect(),
            ),
            Series::line_points(
                format!("noiseless GD: C10 defect (max over seeds), slope {slope_gd:.2}"),
                pts(&gd_max),
            ),
            Series::points("noiseless GD: C10 defect per run", per(|p| p.gd_defect)),
        ],
        hlines: vec![],
    }
    .to_svg()?;
    let gd_j: Vec<f64> = widths
        .iter()
        .map(|&m| {
            of_width(m)
                .iter()
                .map(|p| p.gd_objective)
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    Ok(Outcome {
        passed,
        value: slope,
        threshold,
        detail: format!(
            "widths {widths:?}, {n_seeds} paired seeds, λ₁ = {lambda1}, λ₂ = {lambda2}. Langevin τ = {TAU}, η = {ETA_NOISY}, burn-in {burn} steps, {SNAPSHOTS} snapshots every {SNAP_EVERY} steps: D_τ (geometric mean) {} — slope {slope:.3}. Noiseless GD ({gd_steps} steps, η = {eta}): C10 defect, max over seeds {} — slope {slope_gd:.3}; seeds with defect > 1e-6 per width {gd_failing:?}; lowest J per width {}. Gibbs quadrature {g}² on [−{radius}, {radius}]²: D_τ changes by {quad_err:.1e} on a 481² grid on [−8, 8]²",
            super::flow_support::sci(&d_tau, 2),
            super::flow_support::sci(&gd_max, 2),
            super::flow_support::fixed(&gd_j, 6),
        ),
        figure: Some(figure),
    })
}
