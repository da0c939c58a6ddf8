//! C3 — consistency is invariant under the flow (math.md §5): the feature equation is the time
//! derivative of the consistency constraint, so features integrated by the chain rule
//! ([`FeatureFlow`]) stay equal to the features recomputed from the integrated weights. A
//! discretization of order $p$ leaves the invariant by $O(dt^p)$: the drift must vanish with the step
//! at the method's order. A wrong chain rule would instead make the drift converge to a non-zero
//! limit (the two exact trajectories would differ).
use super::flow_support::{integrate, network, sci, tanh_problem};
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{ensure, Result};
use faer::Par;
use nff_core::init::Init;
use nff_core::Arch;
use nff_flow::{FeatureFlow, ObserverMode};
use rayon::prelude::*;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C3",
            title: "consistency is invariant under the flow",
            measures: "consistency drift max_ℓ ‖Z_ℓ^int(T) − Z_ℓ(θ(T))‖/‖Z_ℓ(θ(T))‖ of the Lagrangian NFF (features integrated by the chain rule) for Euler, Heun and RK4 at four halving steps, on a ResNet (i.i.d. start) and a DNN (min-norm start); value = worst relative deviation of a halving ratio drift(dt)/drift(dt/2) from 2^p",
            rule: "every halving ratio within 2^p ± 20% (p = 1, 2, 4: drift = O(dt^p), so it vanishes with the step at the method's order), every drift > 0 and finite",
        },
        run,
    }
}

use super::flow_support::METHODS;

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let data = sine(10, 3, ctx.data_seed)?;
    let problem = tanh_problem(&data)?;
    let m = ctx.size.pick(48, 192);
    let t_final = 1.0;
    let halvings: u32 = 4;
    let cases = [
        ("ResNet L=3, i.i.d.", Arch::ResNet, Init::iid()),
        ("DNN L=3, min-norm", Arch::Dnn, Init::min_norm()),
    ];
    let nets = cases
        .iter()
        .map(|(_, arch, init)| network(&data, *arch, m, 3, init, ctx.init_seed))
        .collect::<Result<Vec<_>>>()?;
    // Every (case, method, step) run in parallel, each sequential inside; collected in job order.
    let jobs: Vec<(usize, usize, u32)> = (0..cases.len())
        .flat_map(|c| (0..METHODS.len()).flat_map(move |i| (0..halvings).map(move |k| (c, i, k))))
        .collect();
    let drifts: Vec<(f64, f64)> = jobs
        .par_iter()
        .map(|&(c, i, k)| {
            let (_, _, make, dt0) = METHODS[i];
            let dt = dt0 / f64::from(1u32 << k);
            let net = &nets[c];
            let mut field = FeatureFlow::new(problem.clone(), net.shape(), Par::Seq)?;
            let y0 = field.initial_state(net)?;
            ensure!(
                field.consistency_drift(&y0)? == 0.0,
                "the initial state is not consistent"
            );
            let mut run = integrate(field, make(dt)?, y0, t_final, ObserverMode::Never)?;
            Ok((dt, run.field.consistency_drift(&run.report.state)?))
        })
        .collect::<Result<_>>()?;
    let mut worst_dev: f64 = 0.0;
    let mut all_positive = true;
    let mut series = Vec::new();
    let mut lines = Vec::new();
    for (c, (case, _, _)) in cases.iter().enumerate() {
        for (i, (name, p, _, _)) in METHODS.iter().enumerate() {
            let pts: Vec<(f64, f64)> = jobs
                .iter()
                .zip(&drifts)
                .filter(|(j, _)| j.0 == c && j.1 == i)
                .map(|(_, d)| *d)
                .collect();
            all_positive &= pts.iter().all(|d| d.1.is_finite() && d.1 > 0.0);
            let ratios: Vec<f64> = pts.windows(2).map(|w| w[0].1 / w[1].1).collect();
            let target = f64::from(1u32 << p);
            for r in &ratios {
                let dev = (r / target - 1.0).abs();
                worst_dev = if dev.is_nan() {
                    f64::INFINITY
                } else {
                    worst_dev.max(dev)
                };
            }
            lines.push(format!(
                "{case} {name}: drift {} ratios {} (2^p = {target})",
                sci(&pts.iter().map(|p| p.1).collect::<Vec<_>>(), 2),
                sci(&ratios, 3)
            ));
            // Colour by method, marker and dash by case: the six series stay apart in colour and shape.
            series.push(Series::line_points(format!("{case}, {name}"), pts).styled(i, c));
        }
    }
    // Reference slopes beside the smallest-step points.
    for (i, (_, p, _, dt0)) in METHODS.iter().enumerate() {
        // A factor 4 below the lowest case's smallest-step point, so that the reference runs beside the
        // data instead of under them (its slope, not its level, is what is compared).
        let anchor = (0..cases.len())
            .filter_map(|c| series[c * METHODS.len() + i].points.last().copied())
            .fold((1.0, f64::INFINITY), |a, p| if p.1 < a.1 { p } else { a });
        let anchor = (anchor.0, anchor.1 / 4.0);
        let dt_hi = *dt0;
        series.push(Series::reference(
            format!("slope {p} (reference, shifted below the data)"),
            vec![
                anchor,
                (dt_hi, anchor.1 * (dt_hi / anchor.0).powi(*p as i32)),
            ],
        ));
    }
    let threshold = 0.2;
    let passed = all_positive && worst_dev <= threshold;
    let figure = LinePlot {
        title: format!("C3: consistency drift at T = {t_final} vs step (m = {m}, N = 10)"),
        x_label: "step dt".into(),
        y_label: "relative drift of the integrated features".into(),
        log_x: true,
        log_y: true,
        series,
        hlines: vec![],
    }
    .to_svg()?;
    Ok(Outcome {
        passed,
        value: worst_dev,
        threshold,
        detail: format!(
            "worst |ratio/2^p − 1| = {worst_dev:.3}; {}",
            lines.join("; ")
        ),
        figure: Some(figure),
    })
}
