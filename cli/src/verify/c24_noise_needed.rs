//! C24 — noise is needed for the two-level global optimum (math.md §4.1): noiseless GD can stop at a
//! non-global stationary point (the τ = 0 certificate of C10 fails), while Langevin GD with the
//! temperature taken to 0, followed by a noiseless polish, reaches the **τ = 0** global optimum.
//!
//! Per initialization (paired: each is used three times), on a width sweep:
//! - **noiseless GD**: `GD_STEPS` steps of scaled GD, then C10's τ = 0 certificate defect;
//! - **the annealed pipeline**: Langevin GD at $\tau_k = \tau_0 2^{-k}$, $k = 0..K-1$ (`STAGES` stages of
//!   `STAGE_STEPS` steps at step `ETA_NOISY`, fresh noise per stage), then the same noiseless polish of
//!   `GD_STEPS` steps, then the same certificate;
//! - **the control**: the same pipeline with τ = 0 throughout (the same steps and step sizes, no noise) —
//!   it must stay stuck, or the rescue was the extra time and not the noise.
//!
//! The data are fixed (`sine`, N = 10, d = 1 + bias, data seed 12) because the phenomenon needs a landscape
//! where noiseless GD gets stuck; the initialization seed drives initializations, noise and fresh samples.
use super::stats::loglog_fit;
use super::two_level_support::{
    certificate, certificate_setup, gd, iid_network, langevin, par_map, CertificateSetup,
};
use super::{Claim, ClaimCtx, ClaimInfo, NotApplicable, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;

/// The fixed dataset (see the module docs).
const DATA_SEED: u64 = 12;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C24",
            title: "noise is needed for the two-level global optimum",
            measures: "C10's τ = 0 certificate defect after noiseless GD, after the annealed pipeline (Langevin GD with τ halved over 7 stages from 0.01, then a noiseless polish) and after the control (the same pipeline without noise), from the same initializations, on a width sweep; value = the largest ratio, over the stuck seeds, of the pipeline's defect to the smaller of noiseless GD's and the control's at the largest width",
            rule: "not applicable when noiseless GD is stuck (C10 defect > 1e-6) on no seed at the largest width; on every stuck seed at the largest width the pipeline's defect is ≥ 10× below both noiseless GD's and the control's (value ≤ 0.1), the control stays stuck (defect > 1e-6: the extra time without noise does not help), and the pipeline's defect (geometric mean over the stuck seeds) falls with m: log-log slope ≤ −1/4, or ≤ 1e-6 at every width (set before measuring)",
        },
        run,
    }
}

/// The annealing: starting temperature, number of stages (τ halves after each), steps per stage and the
/// noisy step size; the noiseless GD budget (also the polish).
const TAU0: f64 = 0.01;
const STAGES: usize = 7;
const STAGE_STEPS: usize = 1000;
const ETA_NOISY: f64 = 0.1;
const GD_STEPS: usize = 4000;
/// The noiseless polish after the annealing (and after the control's noiseless stages).
const POLISH_STEPS: usize = 4000;
/// A defect at or below this is "at the optimum" (C10's rule).
const REACHED: f64 = 1e-6;

/// One paired run: the three defects.
struct Triple {
    gd: f64,
    pipeline: f64,
    control: f64,
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let CertificateSetup {
        pb,
        fresh,
        lambda1,
        lambda2,
        eta,
        ..
    } = certificate_setup(ctx, DATA_SEED.wrapping_add(ctx.data_seed), "C24/fresh")?;
    let widths: Vec<usize> = ctx.size.pick(vec![50, 200, 800], vec![50, 200, 800, 3200]);
    let n_seeds = ctx.size.pick(3, 4);
    let jobs: Vec<(usize, u64)> = widths
        .iter()
        .flat_map(|&m| {
            (0..n_seeds).map(move |i| (m, ctx.init_seed.wrapping_mul(211).wrapping_add(i)))
        })
        .collect();
    let runs = par_map(jobs.len(), |i| -> Result<Triple> {
        let (m, seed) = jobs[i];
        let net0 = iid_network(&pb, m, 1.0, 1.0, seed)?;
        let defect = |net| -> Result<f64> {
            Ok(certificate(&pb, net, fresh.as_ref(), lambda1, lambda2)?.defect())
        };
        let plain = gd(&pb, &net0, eta, GD_STEPS)?;
        let (mut noisy, mut quiet) = (net0.clone(), net0.clone());
        for k in 0..STAGES {
            let tau = TAU0 * 0.5f64.powi(k as i32);
            let stream = (seed ^ 0x9e37).wrapping_mul(31).wrapping_add(k as u64);
            noisy = langevin(
                &pb,
                &noisy,
                ETA_NOISY,
                tau,
                STAGE_STEPS,
                stream,
                0,
                |_, _| Ok(()),
            )?;
            quiet = gd(&pb, &quiet, ETA_NOISY, STAGE_STEPS)?;
        }
        let noisy = gd(&pb, &noisy, eta, POLISH_STEPS)?;
        let quiet = gd(&pb, &quiet, eta, POLISH_STEPS)?;
        Ok(Triple {
            gd: defect(&plain)?,
            pipeline: defect(&noisy)?,
            control: defect(&quiet)?,
        })
    })?;
    let of_width = |m: usize| -> Vec<&Triple> {
        jobs.iter()
            .zip(&runs)
            .filter(|(j, _)| j.0 == m)
            .map(|(_, p)| p)
            .collect()
    };
    let largest = *widths.last().expect("widths");
    // The stuck seeds: noiseless GD's defect above REACHED at the largest width (index within a width).
    let stuck: Vec<usize> = of_width(largest)
        .iter()
        .enumerate()
        .filter(|(_, t)| t.gd > REACHED)
        .map(|(i, _)| i)
        .collect();
    if stuck.is_empty() {
        return Err(NotApplicable(format!(
            "noiseless GD reaches the optimum (C10 defect ≤ {REACHED:.0e}) on every seed at m = {largest}: nothing for noise to rescue"
        ))
        .into());
    }
    let at_largest = of_width(largest);
    let ratio = stuck
        .iter()
        .map(|&i| at_largest[i].pipeline / at_largest[i].gd.min(at_largest[i].control))
        .fold(0.0, f64::max);
    let control_stuck = stuck.iter().all(|&i| at_largest[i].control > REACHED);
    let geo = |v: Vec<f64>| -> f64 {
        (v.iter().map(|x| x.max(1e-300).ln()).sum::<f64>() / v.len() as f64).exp()
    };
    let pipeline_gm: Vec<f64> = widths
        .iter()
        .map(|&m| {
            let w = of_width(m);
            geo(stuck.iter().map(|&i| w[i].pipeline).collect())
        })
        .collect();
    let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    let (slope, _) = loglog_fit(&xs, &pipeline_gm);
    let falls = slope <= -0.25 || pipeline_gm.iter().all(|&d| d <= REACHED);
    let threshold = 0.1;
    let passed = ratio <= threshold && control_stuck && falls;
    let per = |f: fn(&Triple) -> f64| -> Vec<(f64, f64)> {
        jobs.iter()
            .zip(&runs)
            .map(|(j, p)| (j.0 as f64, f(p).max(1e-16)))
            .collect()
    };
    let figure = LinePlot {
        title: "C24: τ = 0 certificate defect (C10) vs width — noiseless GD, annealed Langevin + polish, and the noiseless control".into(),
        x_label: "width m".into(),
        y_label: "C10 certificate defect (floored at 1e-16)".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series::points("noiseless GD", per(|p| p.gd)),
            Series::points("control: the same pipeline without noise", per(|p| p.control)),
            Series::points("annealed Langevin + polish", per(|p| p.pipeline)),
            Series::line_points(
                format!("annealed, geometric mean over stuck seeds, slope {slope:.2}"),
                xs.iter()
                    .copied()
                    .zip(pipeline_gm.iter().map(|d| d.max(1e-16)))
                    .collect(),
            ),
        ],
        hlines: vec![("optimum reached (1e-6)".into(), REACHED)],
    }
    .to_svg()?;
    let col = |f: fn(&Triple) -> f64| -> Vec<Vec<f64>> {
        widths
            .iter()
            .map(|&m| of_width(m).iter().map(|t| f(t)).collect())
            .collect()
    };
    let fmt = |v: Vec<Vec<f64>>| -> String {
        v.iter()
            .map(|w| super::flow_support::sci(w, 1))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    Ok(Outcome {
        passed,
        value: ratio,
        threshold,
        detail: format!(
            "widths {widths:?}, {n_seeds} paired seeds, λ₁ = {lambda1}, λ₂ = {lambda2}; noiseless GD {GD_STEPS} steps of η = {eta}; pipeline: Langevin η = {ETA_NOISY}, τ = {TAU0}·2^(−k), k < {STAGES}, {STAGE_STEPS} steps each, then a polish of {POLISH_STEPS} steps of η = {eta}; stuck seeds at m = {largest}: {}/{n_seeds}. C10 defects per width (seeds): noiseless {}; pipeline {}; control {}. Pipeline/min(noiseless, control) at m = {largest}, worst stuck seed {ratio:.2e}; control stuck: {control_stuck}; pipeline geometric mean over stuck seeds {} — slope {slope:.3}",
            stuck.len(),
            fmt(col(|t| t.gd)),
            fmt(col(|t| t.pipeline)),
            fmt(col(|t| t.control)),
            super::flow_support::sci(&pipeline_gm, 2),
        ),
        figure: Some(figure),
    })
}
