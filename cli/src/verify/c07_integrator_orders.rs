//! C7 — integrator orders on the NFF itself (math.md §5: "integrated by any ODE scheme; Euler with
//! step η = GD"): the error at a fixed time $T$ against a tight adaptive Dormand–Prince reference falls
//! by $2^p$ per halving of the step, $p = 1$ (Euler = GD), 2 (Heun), 4 (RK4).
use super::flow_support::{integrate, network, sci, tanh_problem};
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;
use faer::Par;
use nff_core::init::Init;
use nff_core::{Arch, Shape};
use nff_flow::{DormandPrince, DormandPrinceOptions, ObserverMode, WeightFlow};
use rayon::prelude::*;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C7",
            title: "integrator orders",
            measures: "error ‖θ(T) − θ_ref(T)‖ (scaled metric) of Euler, Heun and RK4 on the weight flow of a ResNet (i.i.d. start) and a DNN (min-norm start) at four halving steps, against adaptive Dormand–Prince with rtol 1e-13; value = worst relative deviation of a halving ratio from 2^p",
            rule: "every halving ratio err(dt)/err(dt/2) within 2^p ± 20% (Euler 2, Heun 4, RK4 16: global error O(dt^p)) over the whole interval the reference's own error ε allows ((e₁ − ε)/(e₂ + ε) to (e₁ + ε)/(e₂ − ε); ε = |DP(rtol 1e-13) − DP(rtol 1e-12)|, an upper estimate of the reference's error), ε < every measured error",
        },
        run,
    }
}

use super::flow_support::METHODS;

/// One run of the claim: the Dormand–Prince reference at an rtol, or (method index, halving index).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Run {
    Reference(f64),
    Fixed(usize, u32),
}

/// $\|a - b\|$ in the scaled metric ($1/m$ on $A, v$, $1/m^2$ on $W$).
fn scaled_distance(shape: Shape, a: &[f64], b: &[f64]) -> f64 {
    let (wa, ww) = shape.metric();
    let sq = |r: std::ops::Range<usize>| {
        a[r.clone()]
            .iter()
            .zip(&b[r])
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
    };
    let mut acc = wa * (sq(shape.a_range()) + sq(shape.v_range()));
    for l in 0..shape.n_w() {
        acc += ww * sq(shape.w_range(l));
    }
    acc.sqrt()
}

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
    // Per case: the reference (rtol 1e-13), its check (rtol 1e-12), then every (method, step); all runs
    // in parallel, each sequential inside, collected in job order.
    let jobs: Vec<(usize, Run)> = (0..cases.len())
        .flat_map(|c| {
            [Run::Reference(1e-13), Run::Reference(1e-12)]
                .into_iter()
                .chain(
                    (0..METHODS.len()).flat_map(|i| (0..halvings).map(move |k| Run::Fixed(i, k))),
                )
                .map(move |r| (c, r))
        })
        .collect();
    let states: Vec<Vec<f64>> = jobs
        .par_iter()
        .map(|&(c, job)| {
            let net = &nets[c];
            let field = WeightFlow::new(problem.clone(), net.shape(), Par::Seq)?;
            let y0 = field.initial_state(net)?;
            let run = match job {
                Run::Reference(rtol) => {
                    let opts = DormandPrinceOptions::with_tolerances(rtol, rtol * 1e-2);
                    integrate(
                        field,
                        DormandPrince::new(opts)?,
                        y0,
                        t_final,
                        ObserverMode::Never,
                    )?
                }
                Run::Fixed(i, k) => {
                    let (_, _, make, dt0) = METHODS[i];
                    let dt = dt0 / f64::from(1u32 << k);
                    integrate(field, make(dt)?, y0, t_final, ObserverMode::Never)?
                }
            };
            Ok(run.report.state)
        })
        .collect::<Result<_>>()?;
    let state_of = |c: usize, job: Run| -> &[f64] {
        let idx = jobs
            .iter()
            .position(|j| j.0 == c && j.1 == job)
            .expect("every job was run");
        &states[idx]
    };
    let mut worst_dev: f64 = 0.0;
    let mut worst_ref_ratio: f64 = 0.0;
    let mut series = Vec::new();
    let mut lines = Vec::new();
    for (c, (case, _, _)) in cases.iter().enumerate() {
        let shape = nets[c].shape();
        let y_ref = state_of(c, Run::Reference(1e-13));
        let ref_err = scaled_distance(shape, state_of(c, Run::Reference(1e-12)), y_ref);
        let mut smallest = f64::INFINITY;
        for (i, (name, p, _, dt0)) in METHODS.iter().enumerate() {
            let mut pts = Vec::new();
            for k in 0..halvings {
                let dt = dt0 / f64::from(1u32 << k);
                let err = scaled_distance(shape, state_of(c, Run::Fixed(i, k)), y_ref);
                smallest = smallest.min(err);
                pts.push((dt, err));
            }
            let ratios: Vec<f64> = pts.windows(2).map(|w| w[0].1 / w[1].1).collect();
            let target = f64::from(1u32 << p);
            // Every error is known to within the reference's error ε (the true error lies in [e − ε, e + ε]),
            // so the true ratio lies in [(e₁ − ε)/(e₂ + ε), (e₁ + ε)/(e₂ − ε)]: the whole interval must be within
            // 2^p ± 20% (and ε < e₂, or the ratio is not determined).
            for w in pts.windows(2) {
                let (e1, e2) = (w[0].1, w[1].1);
                let dev = if ref_err < e2 {
                    let lo = (e1 - ref_err) / (e2 + ref_err);
                    let hi = (e1 + ref_err) / (e2 - ref_err);
                    (lo / target - 1.0).abs().max((hi / target - 1.0).abs())
                } else {
                    f64::INFINITY
                };
                worst_dev = if dev.is_nan() {
                    f64::INFINITY
                } else {
                    worst_dev.max(dev)
                };
            }
            lines.push(format!(
                "{case} {name}: error {} ratios {} (2^p = {target})",
                sci(&pts.iter().map(|p| p.1).collect::<Vec<_>>(), 2),
                sci(&ratios, 3)
            ));
            // Colour by method, marker and dash by case: the six series stay apart in colour and shape.
            series.push(Series::line_points(format!("{case}, {name}"), pts).styled(i, c));
        }
        worst_ref_ratio = worst_ref_ratio.max(ref_err / smallest);
        lines.push(format!(
            "{case}: reference error {ref_err:.1e} (smallest measured {smallest:.1e})"
        ));
    }
    for (i, (_, p, _, dt0)) in METHODS.iter().enumerate() {
        // A factor 4 below the lowest case's smallest-step point, so that the reference runs beside the
        // data instead of under them (its slope, not its level, is what is compared).
        let anchor = (0..cases.len())
            .filter_map(|c| series[c * METHODS.len() + i].points.last().copied())
            .fold((1.0, f64::INFINITY), |a, p| if p.1 < a.1 { p } else { a });
        let anchor = (anchor.0, anchor.1 / 4.0);
        series.push(Series::reference(
            format!("slope {p} (reference, shifted below the data)"),
            vec![anchor, (*dt0, anchor.1 * (dt0 / anchor.0).powi(*p as i32))],
        ));
    }
    let threshold = 0.2;
    let passed = worst_dev <= threshold;
    let figure = LinePlot {
        title: format!("C7: error at T = {t_final} vs step against Dormand–Prince (m = {m})"),
        x_label: "step dt".into(),
        y_label: "‖θ(T) − θ_ref(T)‖ (scaled)".into(),
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
            "worst |ratio/2^p − 1| over the reference-error interval = {worst_dev:.3}; worst reference error / smallest error = {worst_ref_ratio:.1e}; {}",
            lines.join("; ")
        ),
        figure: Some(figure),
    })
}
