//! C14 — which deep regularizers keep the repopulated program convex (math.md §4.3).
//!
//! The perspectives $f_q(x, t) = \|x\|_1^q/t^{q-1}$ ($q\ge1$) are jointly convex; the plain-L2 middle-layer
//! integrand $x^2/(ab)$ is homogeneous of degree 0 and not constant, hence not convex. Measured by segment
//! tests $f(\theta p + (1-\theta)q)\le\theta f(p) + (1-\theta)f(q)$ on the integrands, and on whole discretized deep
//! objectives along segments between random feasible points (networks with non-uniform masses) and between
//! random points of the domain.
use super::deep_support::{
    deep_data, group_problem, min_norm_dnn, par_map, random_domain_point, random_network_point,
    stacked,
};
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::Histogram;
use anyhow::{ensure, Result};
use nff_core::rng::{normal, rng, Rng};
use nff_solvers::convexity::{perspective_l1q, plain_l2_integrand};
use nff_solvers::{DeepPoint, DeepProgram};
use rand::Rng as _;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C14",
            title: "which deep regularizers are convex",
            measures: "largest relative convexity excess (f(θp+(1−θ)q) − θf(p) − (1−θ)f(q))/(|f(p)|+|f(q)|) over random segments of (i) the perspective integrands ‖x‖₁^q/t^{q−1}, q ∈ {1, 1.25, 1.5, 2, 3}, and (ii) whole discretized deep objectives (L = 3, group norms, q ∈ {1, 1.5, 2, 3}, with and without entropy) between random feasible points and between random domain points; the plain-L2 integrand x²/(ab) and the plain-L2 middle-layer objective on the same kinds of segments are counted too",
            rule: "perspectives and group-norm objectives: max relative excess ≤ 1e-10 (0 violations; rounding of the sums is ~1e-14); plain L2: the math.md counterexample reproduces (f(1,1,1) = 1, f(0,.01,.01) = 0, midpoint 0.25/0.505² ≈ 0.980 > 0.5), ≥ 1 violation of the integrand in random trials, and ≥ 1 violation of the whole plain-L2 objective along segments between feasible points (a non-convex program, not just a non-convex integrand)",
        },
        run,
    }
}

const TOL: f64 = 1e-10;

/// Log-uniform in `[10^lo, 10^hi]`.
fn log_uniform(r: &mut Rng, lo: f64, hi: f64) -> f64 {
    10f64.powf(lo + (hi - lo) * r.random::<f64>())
}

/// A segment parameter: the midpoint in a quarter of the trials, uniform in [0.02, 0.98] otherwise.
fn theta(r: &mut Rng) -> f64 {
    if r.random::<f64>() < 0.25 {
        0.5
    } else {
        0.02 + 0.96 * r.random::<f64>()
    }
}

fn rel_excess(fm: f64, fp: f64, fq: f64, t: f64) -> f64 {
    let scale = fp.abs() + fq.abs();
    if scale == 0.0 {
        return if fm == 0.0 { 0.0 } else { f64::INFINITY };
    }
    (fm - (t * fp + (1.0 - t) * fq)) / scale
}

struct IntegrandResult {
    persp: Vec<f64>,
    plain: Vec<f64>,
    /// Largest relative difference between the library's perspective and $\|x\|_1^q t^{1-q}$ written out here.
    formula_gap: f64,
}

fn integrand_tests(trials: usize, seed: u64) -> Result<IntegrandResult> {
    let qs = [1.0, 1.25, 1.5, 2.0, 3.0];
    let mut r = rng(seed, "C14/integrands");
    let mut persp = Vec::with_capacity(trials);
    let mut plain = Vec::with_capacity(trials);
    let mut formula_gap: f64 = 0.0;
    let point = |r: &mut Rng| -> Vec<f64> {
        // x ∈ R³ (entries zero with probability 0.2) and t; 5% of the points are the boundary (0, 0).
        if r.random::<f64>() < 0.05 {
            return vec![0.0; 4];
        }
        let s = log_uniform(r, -2.0, 2.0);
        let mut p: Vec<f64> = (0..3)
            .map(|_| {
                if r.random::<f64>() < 0.2 {
                    0.0
                } else {
                    s * normal(r)
                }
            })
            .collect();
        p.push(log_uniform(r, -3.0, 1.0));
        p
    };
    for i in 0..trials {
        let q = qs[i % qs.len()];
        let f = |v: &[f64]| perspective_l1q(&v[..3], v[3], q);
        let (a, b) = (point(&mut r), point(&mut r));
        let t = theta(&mut r);
        let m: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| t * x + (1.0 - t) * y)
            .collect();
        let (fa, fb, fm) = (f(&a), f(&b), f(&m));
        ensure!(
            fa.is_finite() && fb.is_finite() && fm.is_finite(),
            "non-finite perspective on the domain"
        );
        persp.push(rel_excess(fm, fa, fb, t));
        // Independent formula.
        for v in [&a, &b, &m] {
            if v[3] > 0.0 {
                let s: f64 = v[..3].iter().map(|x| x.abs()).sum();
                let g = s.powf(q) * v[3].powf(1.0 - q);
                formula_gap = formula_gap.max((f(v) - g).abs() / g.abs().max(1e-300));
            }
        }
        // Plain L2 x²/(ab) with a, b > 0.
        let pt = |r: &mut Rng| -> [f64; 3] {
            [
                log_uniform(r, -2.0, 1.0) * normal(r),
                log_uniform(r, -3.0, 1.0),
                log_uniform(r, -3.0, 1.0),
            ]
        };
        let (a, b) = (pt(&mut r), pt(&mut r));
        let m: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| t * x + (1.0 - t) * y)
            .collect();
        let g = |v: &[f64]| plain_l2_integrand(v[0], v[1], v[2]);
        plain.push(rel_excess(g(&m), g(&a), g(&b), t));
    }
    Ok(IntegrandResult {
        persp,
        plain,
        formula_gap,
    })
}

struct ObjectiveResult {
    name: String,
    group_feasible: Vec<f64>,
    group_domain: Vec<f64>,
    plain_feasible: Vec<f64>,
    plain_domain: Vec<f64>,
    /// Largest constraint residual at the feasible endpoints and segment points.
    residual: f64,
}

fn objective_tests(
    q: f64,
    beta: &[f64],
    segments: usize,
    seed: u64,
    case: usize,
) -> Result<ObjectiveResult> {
    // L = 3, N = 6, d = 2 (+ bias), 8 particles of a min-norm DNN + 4 fresh candidates per layer.
    let data = deep_data(6, 2, seed)?;
    let problem = group_problem(&data, 0.05, q)?;
    let net = min_norm_dnn(&problem, 8, 3, seed)?;
    let (mut prog, _) = DeepProgram::from_network(&problem, &net, 4, seed)?;
    let mut cfg = prog.config().clone();
    cfg.beta = beta.to_vec();
    prog = DeepProgram::new(
        &problem.data,
        problem.activation,
        problem.loss,
        prog.candidates().clone(),
        cfg,
    )?;
    let mut r = rng(seed, &format!("C14/objective/{case}"));
    let mut out = ObjectiveResult {
        name: format!("q={q}, β={beta:?}"),
        group_feasible: Vec::with_capacity(segments),
        group_domain: Vec::with_capacity(segments),
        plain_feasible: Vec::with_capacity(segments),
        plain_domain: Vec::with_capacity(segments),
        residual: 0.0,
    };
    for _ in 0..segments {
        let t = theta(&mut r);
        // Feasible: two networks with masses (a third of the candidates massless).
        let (a, b) = (
            random_network_point(&prog, &mut r, 0.3)?,
            random_network_point(&prog, &mut r, 0.3)?,
        );
        let m = DeepPoint::mix(&a, &b, t);
        for p in [&a, &b, &m] {
            out.residual = out.residual.max(prog.residuals(p)?.0);
        }
        let f = |p: &DeepPoint| prog.objective(p);
        let g = |p: &DeepPoint| prog.objective_plain_l2_middle(p);
        out.group_feasible
            .push(rel_excess(f(&m)?, f(&a)?, f(&b)?, t));
        out.plain_feasible
            .push(rel_excess(g(&m)?, g(&a)?, g(&b)?, t));
        // Domain: constraints ignored (a fifth of the densities zero).
        let (a, b) = (
            random_domain_point(&prog, &mut r, 0.2),
            random_domain_point(&prog, &mut r, 0.2),
        );
        let m = DeepPoint::mix(&a, &b, t);
        out.group_domain.push(rel_excess(f(&m)?, f(&a)?, f(&b)?, t));
        out.plain_domain.push(rel_excess(g(&m)?, g(&a)?, g(&b)?, t));
    }
    for v in [
        &out.group_feasible,
        &out.group_domain,
        &out.plain_feasible,
        &out.plain_domain,
    ] {
        ensure!(
            v.iter().all(|x| x.is_finite()),
            "non-finite objective on a segment ({})",
            out.name
        );
    }
    Ok(out)
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let trials = ctx.size.pick(50_000, 250_000);
    let segments = ctx.size.pick(150, 5000);
    let cases: Vec<(f64, Vec<f64>)> = [1.0, 1.5, 2.0, 3.0]
        .iter()
        .flat_map(|&q| [(q, vec![0.0; 3]), (q, vec![0.1, 0.0, 0.2])])
        .collect();
    // Job 0: the integrands; jobs 1..: one whole-objective configuration each.
    enum Job {
        Integrands(IntegrandResult),
        Objective(ObjectiveResult),
    }
    let jobs = par_map(cases.len() + 1, |i| {
        Ok(if i == 0 {
            Job::Integrands(integrand_tests(trials, ctx.init_seed)?)
        } else {
            let (q, beta) = &cases[i - 1];
            Job::Objective(objective_tests(*q, beta, segments, ctx.init_seed, i)?)
        })
    })?;
    let mut integ = None;
    let mut objs = Vec::new();
    for j in jobs {
        match j {
            Job::Integrands(x) => integ = Some(x),
            Job::Objective(x) => objs.push(x),
        }
    }
    let integ = integ.expect("job 0 is the integrand test");

    // The counterexample of math.md §4.3.
    let f = |v: &[f64]| plain_l2_integrand(v[0], v[1], v[2]);
    let (c1, c0) = (f(&[1.0, 1.0, 1.0]), f(&[0.0, 0.01, 0.01]));
    let c_mid = f(&[0.5, 0.505, 0.505]);
    let counterexample = c1 == 1.0 && c0 == 0.0 && c_mid > 0.5 && (c_mid - 0.980).abs() < 5e-4;

    let max_of = |v: &mut dyn Iterator<Item = f64>| v.fold(f64::NEG_INFINITY, f64::max);
    let count = |v: &[f64]| v.iter().filter(|&&e| e > TOL).count();
    let max_persp = max_of(&mut integ.persp.iter().copied());
    let max_group = max_of(
        &mut objs
            .iter()
            .flat_map(|o| o.group_feasible.iter().chain(&o.group_domain).copied()),
    );
    let value = max_persp.max(max_group);
    let plain_int_viol = count(&integ.plain);
    let plain_feas_viol: usize = objs.iter().map(|o| count(&o.plain_feasible)).sum();
    let plain_dom_viol: usize = objs.iter().map(|o| count(&o.plain_domain)).sum();
    let group_viol: usize = objs
        .iter()
        .map(|o| count(&o.group_feasible) + count(&o.group_domain))
        .sum();
    let residual = objs.iter().map(|o| o.residual).fold(0.0, f64::max);
    let passed = value <= TOL
        && counterexample
        && plain_int_viol > 0
        && plain_feas_viol > 0
        && integ.formula_gap <= 1e-12
        && residual <= 1e-10;

    let clip =
        |v: &mut dyn Iterator<Item = f64>| -> Vec<f64> { v.map(|e| e.clamp(-0.5, 0.5)).collect() };
    let left = Histogram {
        title: format!(
            "C14: integrands, {} random segments each (> 0 = violation)",
            trials
        ),
        x_label: "relative convexity excess, clipped to [−0.5, 0.5]".into(),
        groups: vec![
            (
                format!("‖x‖₁^q/t^(q−1): {} violations", count(&integ.persp)),
                clip(&mut integ.persp.iter().copied()),
            ),
            (
                format!("x²/(ab) (plain L2): {plain_int_viol} violations"),
                clip(&mut integ.plain.iter().copied()),
            ),
        ],
        bins: 60,
        vline: Some(("0".into(), 0.0)),
    }
    .to_svg()?;
    let n_seg = segments * objs.len();
    let right = Histogram {
        title: format!("whole deep objectives (L = 3), {n_seg} feasible + {n_seg} domain segments"),
        x_label: "relative convexity excess, clipped to [−0.5, 0.5]".into(),
        groups: vec![
            (
                format!("group norms: {group_viol} violations"),
                clip(
                    &mut objs
                        .iter()
                        .flat_map(|o| o.group_feasible.iter().chain(&o.group_domain).copied()),
                ),
            ),
            (
                format!("plain L2, feasible: {plain_feas_viol} violations"),
                clip(&mut objs.iter().flat_map(|o| o.plain_feasible.iter().copied())),
            ),
            (
                format!("plain L2, domain: {plain_dom_viol} violations"),
                clip(&mut objs.iter().flat_map(|o| o.plain_domain.iter().copied())),
            ),
        ],
        bins: 60,
        vline: Some(("0".into(), 0.0)),
    }
    .to_svg()?;
    let per_case: Vec<String> = objs
        .iter()
        .map(|o| {
            format!(
                "{}: plain-L2 violations {}/{} feasible, {}/{} domain",
                o.name,
                count(&o.plain_feasible),
                segments,
                count(&o.plain_domain),
                segments
            )
        })
        .collect();
    Ok(Outcome {
        passed,
        value,
        threshold: TOL,
        detail: format!(
            "perspective integrands: {} trials, max relative excess {max_persp:.2e}, {} violations (library vs written-out formula {:.1e}); plain-L2 integrand: {plain_int_viol}/{trials} violations; counterexample f(1,1,1) = {c1}, f(0,.01,.01) = {c0}, midpoint {c_mid:.4} > 0.5: {counterexample}; whole objectives (8 configurations × {segments} segments × 2 kinds): group norms max relative excess {max_group:.2e}, {group_viol} violations; plain L2 {plain_feas_viol} feasible / {plain_dom_viol} domain violations; feasible-point residual {residual:.1e}; {}",
            trials,
            count(&integ.persp),
            integ.formula_gap,
            per_case.join("; ")
        ),
        figure: Some(stacked(&left, &right)),
    })
}
