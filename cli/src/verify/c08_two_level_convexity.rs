//! C8 — the repopulated two-level objective $\tilde Q(\tilde u,\rho)$ of math.md §4.1 is jointly convex; the same
//! objective in the original variables $(\bar u,\rho)$ is not.
//!
//! Both parameterizations describe the same points: a measure on the candidate set is $(\tilde u,\rho)$ or,
//! equivalently, $(\bar u,\rho)$ with $\bar u = \tilde u\rho_0/\rho$. For random pairs of points we evaluate the
//! objective along the straight segment between them in each coordinate system and count violations of
//! $f(t p + (1-t) q) \le t f(p) + (1-t) f(q)$.
use super::two_level_support::sine_with_bias;
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{ensure, Result};
use nff_core::rng::{normal, rng, Rng};
use nff_core::{Activation, Dataset, Loss, Problem, Regularizer};
use nff_solvers::{candidates, TwoLevelConfig, TwoLevelProgram};
use rand::Rng as _;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C8",
            title: "two-level repopulated objective jointly convex; original variables not",
            measures: "largest relative convexity excess (f(segment point) − chord)/(|f(p)|+|f(q)|) of the repopulated objective Q̃(ũ,ρ) over random segments between random points (4 configurations: squared/logistic loss, λ₂ ∈ {0, 0.05}, τ ∈ {0, 0.01}); the same segments' endpoints joined in the original variables (ū,ρ) are counted too",
            rule: "repopulated: 0 violations, i.e. max relative excess ≤ 1e-10 (rounding of a sum of ≤ 60 terms is ~1e-14); original variables: ≥ 1 violation in every configuration; both parameterizations give the same value at the endpoints and equal the network objective J at a network point (≤ 1e-12 relative)",
        },
        run,
    }
}

/// A random probability vector `softmax(κ ξ)`, κ uniform in [0, 5] (from nearly uniform to nearly sparse).
fn random_simplex(r: &mut Rng, k: usize) -> Vec<f64> {
    let kappa = 5.0 * r.random::<f64>();
    let e: Vec<f64> = (0..k).map(|_| kappa * normal(r)).collect();
    let mx = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = e.iter().map(|x| (x - mx).exp()).collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|x| x / s).collect()
}

fn lerp(a: &[f64], b: &[f64], t: f64) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(x, y)| t * x + (1.0 - t) * y)
        .collect()
}

struct CaseResult {
    name: String,
    rep_excess: Vec<f64>,
    orig_excess: Vec<f64>,
    endpoint_gap: f64,
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let data = sine_with_bias(10, 1, ctx.data_seed)?;
    // ±1 labels for the logistic case: the sign of sin(3x).
    let pm = Dataset::new(
        data.x.clone(),
        (0..data.n())
            .map(|i| {
                if (3.0 * data.x[(i, 0)]).sin() >= 0.0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect(),
    )?;
    // 7 × 7 grid on [-3, 3]² (θ = (a, b)), Gaussian reference weights ρ₀.
    let theta = candidates::grid(2, 7, 3.0)?;
    let rho0 = candidates::gaussian_weights(&theta, 1.5);
    let k = theta.nrows();
    let segments = ctx.size.pick(5_000, 50_000);
    let cases = [
        ("squared, λ₂=0, τ=0", Loss::Squared, 0.0, 0.0),
        ("squared, λ₂=0.05, τ=0", Loss::Squared, 0.05, 0.0),
        ("squared, λ₂=0.05, τ=0.01", Loss::Squared, 0.05, 0.01),
        ("logistic, λ₂=0.05, τ=0.01", Loss::Logistic, 0.05, 0.01),
    ];
    let mut results = Vec::new();
    for (ci, &(name, loss, lambda2, tau)) in cases.iter().enumerate() {
        let d = if loss == Loss::Logistic { &pm } else { &data };
        let prog = TwoLevelProgram::new(
            d,
            Activation::Tanh,
            loss,
            theta.as_ref(),
            &rho0,
            TwoLevelConfig {
                lambda1: 0.1,
                lambda2,
                tau,
            },
        )?;
        let mut r = rng(ctx.init_seed, &format!("C8/segments/{ci}"));
        let mut rep_excess = Vec::with_capacity(segments);
        let mut orig_excess = Vec::with_capacity(segments);
        let mut endpoint_gap: f64 = 0.0;
        for _ in 0..segments {
            let scale = 10f64.powf(2.0 * r.random::<f64>() - 1.0);
            let ut_p: Vec<f64> = (0..k).map(|_| scale * normal(&mut r)).collect();
            let ut_q: Vec<f64> = (0..k).map(|_| scale * normal(&mut r)).collect();
            let (rho_p, rho_q) = (random_simplex(&mut r, k), random_simplex(&mut r, k));
            let t = 0.02 + 0.96 * r.random::<f64>();
            // The same two points in the original variables ū = ũ ρ₀ / ρ.
            let ub = |ut: &[f64], rho: &[f64]| -> Vec<f64> {
                (0..k).map(|i| ut[i] * rho0[i] / rho[i]).collect()
            };
            let (ub_p, ub_q) = (ub(&ut_p, &rho_p), ub(&ut_q, &rho_q));
            let rho_t = lerp(&rho_p, &rho_q, t);
            let fp = prog.objective_repopulated(&ut_p, &rho_p);
            let fq = prog.objective_repopulated(&ut_q, &rho_q);
            let gp = prog.objective_original(&ub_p, &rho_p);
            let gq = prog.objective_original(&ub_q, &rho_q);
            let scale_f = fp.abs() + fq.abs();
            endpoint_gap = endpoint_gap.max(((fp - gp).abs() + (fq - gq).abs()) / scale_f);
            let chord = t * fp + (1.0 - t) * fq;
            let f_rep = prog.objective_repopulated(&lerp(&ut_p, &ut_q, t), &rho_t);
            let f_orig = prog.objective_original(&lerp(&ub_p, &ub_q, t), &rho_t);
            ensure!(
                f_rep.is_finite() && f_orig.is_finite() && chord.is_finite(),
                "non-finite objective on a segment ({name})"
            );
            rep_excess.push((f_rep - chord) / scale_f);
            orig_excess.push((f_orig - chord) / scale_f);
        }
        results.push(CaseResult {
            name: name.into(),
            rep_excess,
            orig_excess,
            endpoint_gap,
        });
    }
    // The original variables are the network's: at a width-m network the program's objective is J.
    let net_gap = network_tie(&data, ctx.init_seed)?;

    let tol = 1e-10;
    let max_rep = results
        .iter()
        .flat_map(|c| c.rep_excess.iter().copied())
        .fold(f64::NEG_INFINITY, f64::max);
    let rep_viol: Vec<usize> = results
        .iter()
        .map(|c| c.rep_excess.iter().filter(|&&e| e > tol).count())
        .collect();
    let orig_viol: Vec<usize> = results
        .iter()
        .map(|c| c.orig_excess.iter().filter(|&&e| e > tol).count())
        .collect();
    let endpoint_gap = results.iter().map(|c| c.endpoint_gap).fold(0.0, f64::max);
    let passed = max_rep <= tol
        && orig_viol.iter().all(|&v| v > 0)
        && endpoint_gap <= 1e-12
        && net_gap <= 1e-12;

    // In natural units: (a) the tested statistic, each configuration's largest relative excess of the
    // repopulated objective, against its tolerance; (b) violations per configuration in both
    // parameterizations (the original variables must have some).
    let configs: Vec<f64> = (1..=results.len()).map(|i| i as f64).collect();
    let excess_panel = LinePlot {
        title: format!(
            "C8 (a): largest relative convexity excess of Q̃(ũ, ρ), {segments} random segments each"
        ),
        x_label: "configuration".into(),
        y_label: "max (f(segment point) − chord)/(|f(p)| + |f(q)|)".into(),
        series: results
            .iter()
            .zip(&configs)
            .map(|(c, &x)| {
                let max = c
                    .rep_excess
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max);
                Series::points(format!("{x}: {}", c.name), vec![(x, max)])
            })
            .collect(),
        hlines: vec![(
            format!("tolerance {tol:.0e} (> tolerance = violation)"),
            tol,
        )],
        ..Default::default()
    }
    .to_svg()?;
    let count_panel = LinePlot {
        title: format!("C8 (b): violations (excess > {tol:.0e}) among {segments} segments"),
        x_label: "configuration (as in (a))".into(),
        y_label: "segments with a violation".into(),
        series: vec![
            Series::line_points(
                format!(
                    "repopulated (ũ, ρ): {} violations (must be 0)",
                    rep_viol.iter().sum::<usize>()
                ),
                configs
                    .iter()
                    .zip(&rep_viol)
                    .map(|(&x, &v)| (x, v as f64))
                    .collect(),
            ),
            Series::line_points(
                format!(
                    "original (ū, ρ): {} violations (must be ≥ 1 each)",
                    orig_viol.iter().sum::<usize>()
                ),
                configs
                    .iter()
                    .zip(&orig_viol)
                    .map(|(&x, &v)| (x, v as f64))
                    .collect(),
            ),
        ],
        ..Default::default()
    }
    .to_svg()?;
    let figure = crate::plot::stacked(&excess_panel, &count_panel);
    let per_case: Vec<String> = results
        .iter()
        .zip(rep_viol.iter().zip(&orig_viol))
        .map(|(c, (rv, ov))| {
            let max_o = c.orig_excess.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!(
                "{}: repopulated {rv}/{segments} violations, original {ov}/{segments} (largest excess {max_o:.2e})",
                c.name
            )
        })
        .collect();
    Ok(Outcome {
        passed,
        value: max_rep,
        threshold: tol,
        detail: format!(
            "K = {k} grid candidates, N = {}; {}; max relative excess (repopulated) {max_rep:.2e}; endpoint agreement of the two parameterizations {endpoint_gap:.1e}; network point vs J {net_gap:.1e}",
            data.n(),
            per_case.join("; ")
        ),
        figure: Some(figure),
    })
}

/// Relative difference between a random width-m network's objective J and the program's objective in the
/// original variables at the network point (ū = v, ρ = 1/m).
fn network_tie(data: &Dataset, seed: u64) -> Result<f64> {
    let problem = Problem::new(
        data.clone(),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::L2Split {
            a: 0.05,
            w: 0.0,
            v: 0.1,
        },
    )?;
    let net = super::two_level_support::iid_network(&problem, 40, 1.0, 1.0, seed)?;
    let (prog, _, rho) = TwoLevelProgram::from_network(&problem, &net, 0.0)?;
    let q = prog.objective_original(net.v(), &rho);
    let j = problem.objective(&net);
    Ok((q - j).abs() / j.abs())
}
