//! C22 — the learning-rate scaling of math.md §2 is necessary. $\partial J/\partial A, \partial J/\partial v = O(1/m)$ and
//! $\partial J/\partial W = O(1/m^2)$, so GD with step sizes $(m\eta, m^2\eta, m\eta)$ on $(A, W, v)$ moves every block at a
//! width-independent speed: the loss-vs-$t$ curves ($t = \eta\cdot$steps) of all widths collapse onto the NFF's.
//! With any other width scaling some block speeds up or freezes as $m$ grows, and the curves leave the
//! NFF: plain GD with the same $\eta$ on every parameter, $(1, 1, 1)\eta$, freezes everything (speeds
//! $1/m$ and $1/m^2$); the uniform rate $(m, m, m)\eta$ freezes the middle layers (speed $1/m$).
//!
//! Setup: ResNet, L = 3, tanh, N = 8, zero start, η = 0.2, T = 60; the NFF reference is the scaled run at a
//! larger width $M$, and the width-$m$ networks are [`BLOCKS`] disjoint blocks of $m$ of its units (the zero
//! start's $A$ has i.i.d. columns, so each block is a width-$m$ start with i.i.d. labels coupled to the
//! reference). Distance of a curve from the reference: $\sup_t|R_m - R_{\rm ref}|/(R_{\rm ref}(0) - R_{\rm ref}(T))$,
//! the largest gap in units of the NFF's total decrease, averaged over the blocks.
use super::flow_support::{fixed, gd_with_rates, interpolate, network, tanh_problem, Rates};
use super::stats::loglog_fit;
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;
use faer::Par;
use nff_core::init::Init;
use nff_core::Arch;
use rayon::prelude::*;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C22",
            title: "learning-rate scaling is necessary",
            measures: "normalized distance D(m) = sup_t |R_m(t) − R_ref(t)| / (R_ref(0) − R_ref(T)) of the risk curve of width m from the NFF reference (scaled rates at width M), mean over 4 disjoint blocks of m of the reference's units (each coupled to it), for GD with the scaled rates (m, m², m)η, plain GD (1, 1, 1)η and the uniform rate (m, m, m)η (ResNet L = 3, tanh, N = 8, zero start, η = 0.2, T = 60); value = the scaled rates' largest mean D",
            rule: "scaled rates: mean D ≤ 0.25 at every width (the curve stays within a quarter of the NFF's total risk decrease of it at all times: the curves collapse up to the O(m^(-1/2)) finite-width error) and mean D smaller at the largest width than at the smallest (it converges); negative controls, each other scaling: mean D at the largest width ≥ 2 × the scaled rates' mean D at that width (its gap from the NFF is not the finite-width error: it converges to a different, frozen-block limit)",
        },
        run,
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Scheme {
    Scaled,
    Plain,
    Uniform,
}

impl Scheme {
    fn rates(self, m: usize) -> Rates {
        let m = m as f64;
        match self {
            Self::Scaled => Rates::scaled(m as usize),
            Self::Plain => Rates {
                a: 1.0,
                w: 1.0,
                v: 1.0,
            },
            Self::Uniform => Rates { a: m, w: m, v: m },
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Scaled => "scaled (m, m², m)η",
            Self::Plain => "plain (1, 1, 1)η",
            Self::Uniform => "uniform (m, m, m)η",
        }
    }
}

const SCHEMES: [Scheme; 3] = [Scheme::Scaled, Scheme::Plain, Scheme::Uniform];

/// Disjoint blocks of the reference's units per width.
const BLOCKS: usize = 4;

/// A statistic of a risk curve $(t, \mathcal R)$.
type CurveStat<'a> = &'a dyn Fn(&[(f64, f64)]) -> f64;

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let data = sine(8, 3, ctx.data_seed)?;
    let problem = tanh_problem(&data)?;
    let widths: Vec<usize> = ctx.size.pick(vec![32, 128], vec![32, 64, 128, 256, 512]);
    let big_m = ctx.size.pick(512, 2048);
    let (eta, steps, every) = (0.2, 300, 3);
    let start = network(&data, Arch::ResNet, big_m, 3, &Init::zero(), ctx.init_seed)?;
    // Job 0: the reference; then scheme × width × block.
    let jobs: Vec<(Scheme, usize, usize)> = std::iter::once((Scheme::Scaled, big_m, 0))
        .chain(SCHEMES.iter().flat_map(|&s| {
            widths
                .iter()
                .flat_map(move |&m| (0..BLOCKS).map(move |k| (s, m, k)))
        }))
        .collect();
    let curves: Vec<Vec<(f64, f64)>> = jobs
        .par_iter()
        .map(|&(scheme, m, k)| {
            let mut net = if m == big_m {
                start.clone()
            } else {
                nff_flow::block(&start, k * m, m)?
            };
            gd_with_rates(
                &problem,
                &mut net,
                scheme.rates(m),
                eta,
                steps,
                every,
                Par::Seq,
            )
        })
        .collect::<Result<_>>()?;
    let reference = &curves[0];
    let (r0, r_end) = (reference[0].1, reference[reference.len() - 1].1);
    let decrease = r0 - r_end;
    let distance = |curve: &[(f64, f64)]| {
        curve
            .iter()
            .map(|&(t, r)| (r - interpolate(reference, t)).abs())
            .fold(0.0, f64::max)
            / decrease
    };
    let log_distance = |curve: &[(f64, f64)]| {
        curve
            .iter()
            .map(|&(t, r)| (r.ln() - interpolate(reference, t).ln()).abs())
            .fold(0.0, f64::max)
    };
    // Mean over the blocks of a statistic, per width.
    let mean_of = |scheme: Scheme, f: CurveStat| -> Vec<f64> {
        widths
            .iter()
            .map(|&m| {
                let v: Vec<f64> = jobs
                    .iter()
                    .zip(&curves)
                    .skip(1)
                    .filter(|(j, _)| j.0 == scheme && j.1 == m)
                    .map(|(_, c)| f(c))
                    .collect();
                v.iter().sum::<f64>() / v.len() as f64
            })
            .collect()
    };
    let d_scaled = mean_of(Scheme::Scaled, &distance);
    let d_plain = mean_of(Scheme::Plain, &distance);
    let d_uniform = mean_of(Scheme::Uniform, &distance);
    let log_scaled = mean_of(Scheme::Scaled, &log_distance);
    let log_uniform = mean_of(Scheme::Uniform, &log_distance);
    let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    let (slope_scaled, _) = loglog_fit(&xs, &d_scaled);
    let worst_scaled = d_scaled.iter().copied().fold(0.0, f64::max);
    let last = widths.len() - 1;
    let threshold = 0.25;
    let separation = 2.0;
    let controls_fail = d_plain[last] >= separation * d_scaled[last]
        && d_uniform[last] >= separation * d_scaled[last];
    let passed = worst_scaled <= threshold && d_scaled[last] < d_scaled[0] && controls_fail;
    // Figure: the reference and every scheme's first block at the smallest and largest width.
    let mut series = vec![Series::line(
        format!("NFF reference (scaled, M = {big_m})"),
        reference.clone(),
    )];
    for scheme in SCHEMES {
        for (j, c) in jobs.iter().zip(&curves).skip(1) {
            let shown = j.1 == widths[last] || (j.1 == widths[0] && scheme != Scheme::Plain);
            if j.0 == scheme && j.2 == 0 && shown {
                series.push(Series::line(
                    format!("{}, m = {} (block 0)", scheme.name(), j.1),
                    c.clone(),
                ));
            }
        }
    }
    let figure = LinePlot {
        title: format!(
            "C22: risk vs t = η·steps (η = {eta}); mean D = sup|R − R_ref|/decrease: scaled {} plain {} uniform {}",
            fixed(&[d_scaled[0], d_scaled[last]], 3),
            fixed(&[d_plain[0], d_plain[last]], 2),
            fixed(&[d_uniform[0], d_uniform[last]], 2)
        ),
        x_label: "t = η · steps".into(),
        y_label: "risk".into(),
        log_x: false,
        log_y: true,
        series,
        hlines: vec![],
    }
    .to_svg()?;
    Ok(Outcome {
        passed,
        value: worst_scaled,
        threshold,
        detail: format!(
            "widths {widths:?}, {BLOCKS} blocks each, reference M = {big_m} (risk {r0:.4} → {r_end:.4} by T = {}): mean sup_t |R_m − R_ref|/(R_ref(0) − R_ref(T)) scaled {} (slope {slope_scaled:.2}), plain {}, uniform {} (controls need ≥ {separation} × scaled at m = {}: {}); reported, the old log scale sup_t |ln R_m/R_ref|: scaled {}, uniform {}",
            eta * steps as f64,
            fixed(&d_scaled, 4),
            fixed(&d_plain, 4),
            fixed(&d_uniform, 4),
            widths[last],
            fixed(&[separation * d_scaled[last]], 4),
            fixed(&log_scaled, 4),
            fixed(&log_uniform, 4)
        ),
        figure: Some(figure),
    })
}
