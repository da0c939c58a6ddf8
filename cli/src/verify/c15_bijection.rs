//! C15 — the bijection between networks and the repopulated variables of the deep program (math.md §4.2–4.3).
//!
//! Network → program: a width-$m$ DNN is the point $\rho_\ell = 1/(m\pi_\ell)$ on its particles, $\tilde u = W\rho_\ell\rho_{\ell+1}$,
//! $\tilde u_{L+1} = v\rho_L$; there the program's predictions, constraints and objective are the network's, and
//! mapping back returns the same parameters. Program → network: any feasible point with $q>1$ and finite
//! objective has $\tilde u = 0$ where a $\rho$ vanishes, so $w = \tilde u/(\rho_\ell\rho_{\ell+1})$ is a network with masses; its
//! features, predictions and regularizers in the original variables,
//! $\mathbb E_{p_{\ell+1}}[(\mathbb E_{p_\ell}|w|)^q] + \mathbb E_{p_\ell}[(\mathbb E_{p_{\ell+1}}|w|)^q]$, $\mathbb E_{p_L}|v|^q$, $\mathbb E_{p_1}\|a\|^2/2$, are the program's.
//! For $q = 1$ the perspective does not depend on $\rho$: a feasible point may route weight through a
//! massless feature at finite cost, and no network realizes it (the program is a relaxation).
use super::deep_support::{
    deep_data, group_problem, min_norm_dnn, par_map, plain_gd, random_network_point,
};
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{ensure, Result};
use faer::Par;
use nff_core::network::Workspace;
use nff_core::rng::rng;
use nff_solvers::{DeepPoint, DeepProgram};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C15",
            title: "bijection network ↔ repopulated variables",
            measures: "largest relative disagreement between a network and its repopulated point: (network → program) objective J vs program objective, regularizer vs program regularizer, predictions, constraint residuals and the round trip back to the parameters, for trained DNNs of depth 1–3 and q ∈ {1, 1.5, 2, 3}; (program → network, q ∈ {1.5, 2, 3}) for random feasible points with non-uniform masses and massless candidates: the mapped network's features and predictions vs the program's, the regularizers written in the original variables (E_p'[(E_p|w|)^q] + …) vs the program's perspectives, and ũ rebuilt from w, ρ",
            rule: "network → program ≤ 1e-12 (relative; rounding only) and program → network ≤ 1e-10 (the random points satisfy their constraints to ~1e-12 and weights w = ũ/(ρρ) span the masses' three decades); and for q = 1 the relaxation shows: a feasible point with weight on a massless feature has finite q = 1 objective and no network (to_network refuses), while the same point costs +∞ at q = 2",
        },
        run,
    }
}

/// Relative difference $|a-b|/\max(|b|, \text{floor})$.
fn rel(a: f64, b: f64, floor: f64) -> f64 {
    (a - b).abs() / b.abs().max(floor)
}

/// One network → program case: (objective, regularizer, predictions, residual, round trip).
fn network_case(depth: usize, q: f64, seed: u64) -> Result<[f64; 5]> {
    let data = deep_data(8, 2, seed)?;
    let problem = group_problem(&data, 0.02, q)?;
    let mut net = min_norm_dnn(&problem, 10, depth, seed)?;
    // A trained network (not only a start): 300 GD steps.
    plain_gd(&problem, &mut net, 0.05, 300, 0, |_, _| Ok(()))?;
    let (prog, pt) = DeepProgram::from_network(&problem, &net, 4, seed)?;
    let j = problem.objective(&net);
    let p = prog.objective(&pt)?;
    let yhat_prog = prog.predictions(&pt)?;
    let yhat_net = problem.predict(&net);
    let pred = yhat_prog
        .iter()
        .zip(&yhat_net)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f64::max);
    let reg_prog = p - problem.loss.risk(&yhat_prog, &data.y);
    let reg_net = problem.reg.value(&net);
    let (prim, feat) = prog.residuals(&pt)?;
    let back = prog.to_network(&pt)?;
    ensure!(
        back.net.shape() == net.shape(),
        "round trip changed the shape"
    );
    let trip = back
        .net
        .as_slice()
        .iter()
        .zip(net.as_slice())
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f64::max);
    Ok([
        rel(p, j, 1e-300),
        rel(reg_prog, reg_net, 1e-300),
        pred,
        prim.max(feat),
        trip,
    ])
}

/// One program → network case over `points` random feasible points: (features, predictions, regularizer,
/// rebuilt ũ) maxima.
fn point_case(depth: usize, q: f64, points: usize, seed: u64) -> Result<[f64; 4]> {
    let data = deep_data(8, 2, seed)?;
    let problem = group_problem(&data, 0.02, q)?;
    let net = min_norm_dnn(&problem, 10, depth, seed)?;
    let (prog, _) = DeepProgram::from_network(&problem, &net, 4, seed)?;
    let cand = prog.candidates();
    let lambda = 0.02;
    let mut r = rng(seed, &format!("C15/points/{depth}/{q}"));
    let mut worst = [0.0f64; 4];
    for _ in 0..points {
        let pt = random_network_point(&prog, &mut r, 0.3)?;
        let mapped = prog.to_network(&pt)?;
        let s = mapped.net.shape();
        // Features of the mapped network = the candidates' features of the kept units.
        let mut ws = Workspace::new(s, problem.n());
        problem.forward_into(&mapped.net, &mut ws, Par::Seq);
        let mut feat: f64 = 0.0;
        for (l, ix) in mapped.index.iter().enumerate() {
            for (slot, &j) in ix.iter().enumerate() {
                for i in 0..problem.n() {
                    let zc = cand.z[l][(i, j)];
                    feat = feat.max((ws.z(l)[(i, slot)] - zc).abs() / (1.0 + zc.abs()));
                }
            }
        }
        let yp = prog.predictions(&pt)?;
        let pred = yp
            .iter()
            .zip(&ws.yhat)
            .map(|(a, b)| (a - b).abs() / (1.0 + a.abs()))
            .fold(0.0, f64::max);
        // Regularizers in the original variables (masses p, weights w, v, first-layer a).
        let p = &mapped.masses;
        let mut reg = 0.0;
        for (slot, &pj) in p[0].iter().enumerate() {
            let a2: f64 = (0..s.d).map(|i| mapped.net.a()[(i, slot)].powi(2)).sum();
            reg += lambda * pj * a2 / 2.0;
        }
        for (l, w) in mapped.w_original.iter().enumerate() {
            for k in 0..w.ncols() {
                let e: f64 = (0..w.nrows()).map(|j| p[l][j] * w[(j, k)].abs()).sum();
                reg += lambda * p[l + 1][k] * e.powf(q);
            }
            for j in 0..w.nrows() {
                let e: f64 = (0..w.ncols()).map(|k| p[l + 1][k] * w[(j, k)].abs()).sum();
                reg += lambda * p[l][j] * e.powf(q);
            }
        }
        for (j, vj) in mapped.v_original.iter().enumerate() {
            reg += lambda * p[depth - 1][j] * vj.abs().powf(q);
        }
        let reg_prog = prog.objective(&pt)? - problem.loss.risk(&yp, &data.y);
        // ũ rebuilt from w and ρ = p/π.
        let mut rebuilt: f64 = 0.0;
        let sizes = prog.sizes();
        for (l, w) in mapped.w_original.iter().enumerate() {
            let (ix, kx) = (&mapped.index[l], &mapped.index[l + 1]);
            let mut u = vec![0.0; sizes[l] * sizes[l + 1]];
            for (sk, &k) in kx.iter().enumerate() {
                for (sj, &j) in ix.iter().enumerate() {
                    let rj = p[l][sj] / cand.pi[l][j];
                    let rk = p[l + 1][sk] / cand.pi[l + 1][k];
                    u[j + k * sizes[l]] = w[(sj, sk)] * rj * rk;
                }
            }
            let scale = pt.u[l].iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for (a, b) in u.iter().zip(&pt.u[l]) {
                rebuilt = rebuilt.max((a - b).abs() / scale);
            }
        }
        worst[0] = worst[0].max(feat);
        worst[1] = worst[1].max(pred);
        worst[2] = worst[2].max(rel(reg, reg_prog, 1e-300));
        worst[3] = worst[3].max(rebuilt);
    }
    Ok(worst)
}

/// The q = 1 relaxation: from a feasible point, make a used layer-2 feature massless (its incoming weights
/// zero, the other masses of the layer and their incoming weights rescaled so that mass and consistency
/// still hold) but keep its outgoing weights. Returns (residual, q = 1 objective, to_network refused,
/// q = 2 objective).
fn relaxation_case(seed: u64) -> Result<(f64, f64, bool, f64)> {
    let data = deep_data(8, 2, seed)?;
    let problem = group_problem(&data, 0.02, 1.0)?;
    let net = min_norm_dnn(&problem, 10, 3, seed)?;
    let (prog1, _) = DeepProgram::from_network(&problem, &net, 4, seed)?;
    let mut r = rng(seed, "C15/relaxation");
    let mut pt: DeepPoint = random_network_point(&prog1, &mut r, 0.0)?;
    let cand = prog1.candidates().clone();
    let sizes = prog1.sizes();
    let (n1, n2) = (sizes[0], sizes[1]);
    let k = 0;
    let pk = pt.rho[1][k] * cand.pi[1][k];
    let c = 1.0 / (1.0 - pk);
    for kk in 0..n2 {
        let f = if kk == k { 0.0 } else { c };
        pt.rho[1][kk] *= f;
        for j in 0..n1 {
            pt.u[0][j + kk * n1] *= f;
        }
    }
    ensure!(
        pt.u[1][k..].iter().step_by(n2).any(|&x| x != 0.0),
        "the massless feature must keep outgoing weights"
    );
    let (res, _) = prog1.residuals(&pt)?;
    let obj1 = prog1.objective(&pt)?;
    let refused = prog1.to_network(&pt).is_err();
    let mut cfg = prog1.config().clone();
    cfg.q = 2.0;
    let prog2 = DeepProgram::new(&problem.data, problem.activation, problem.loss, cand, cfg)?;
    let obj2 = prog2.objective(&pt)?;
    Ok((res, obj1, refused, obj2))
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let points = ctx.size.pick(20, 200);
    let seeds: Vec<u64> = (0..ctx.size.pick(1u64, 4))
        .map(|s| ctx.init_seed + s)
        .collect();
    let net_cases: Vec<(usize, f64, u64)> = seeds
        .iter()
        .flat_map(|&s| {
            [1usize, 2, 3]
                .into_iter()
                .flat_map(move |d| [1.0, 1.5, 2.0, 3.0].map(|q| (d, q, s)))
        })
        .collect();
    let pt_cases: Vec<(usize, f64, u64)> = seeds
        .iter()
        .flat_map(|&s| {
            [2usize, 3]
                .into_iter()
                .flat_map(move |d| [1.5, 2.0, 3.0].map(|q| (d, q, s)))
        })
        .collect();
    let net_res = par_map(net_cases.len(), |i| {
        let (d, q, s) = net_cases[i];
        network_case(d, q, s)
    })?;
    let pt_res = par_map(pt_cases.len(), |i| {
        let (d, q, s) = pt_cases[i];
        point_case(d, q, points, s)
    })?;
    let (relax_res, relax_obj1, relax_refused, relax_obj2) = relaxation_case(ctx.init_seed)?;

    let col = |v: &[[f64; 5]], c: usize| v.iter().map(|x| x[c]).fold(0.0, f64::max);
    let col4 = |v: &[[f64; 4]], c: usize| v.iter().map(|x| x[c]).fold(0.0, f64::max);
    let fwd = (0..5).map(|c| col(&net_res, c)).fold(0.0, f64::max);
    let bwd = (0..4).map(|c| col4(&pt_res, c)).fold(0.0, f64::max);
    let relaxation = relax_res <= 1e-10
        && relax_obj1.is_finite()
        && relax_refused
        && relax_obj2 == f64::INFINITY;
    let (t_fwd, t_bwd) = (1e-12, 1e-10);
    let passed = fwd <= t_fwd && bwd <= t_bwd && relaxation;
    let value = fwd.max(bwd);

    // Program → network cases first (x = 1..), then the network cases; series grouped so that each has
    // its own color.
    let floor = 1e-17;
    let np = pt_res.len() as f64;
    let pts = |xs: Vec<f64>, off: f64| -> Vec<(f64, f64)> {
        xs.into_iter()
            .enumerate()
            .map(|(i, v)| (off + i as f64 + 1.0, v.max(floor)))
            .collect()
    };
    let series = vec![
        Series::points(
            "prog→net: features, predictions",
            pts(pt_res.iter().map(|x| x[0].max(x[1])).collect(), 0.0),
        ),
        Series::points(
            "prog→net: regularizers (original vars), rebuilt ũ",
            pts(pt_res.iter().map(|x| x[2].max(x[3])).collect(), 0.0),
        ),
        Series::points(
            "net→prog: objective, regularizer",
            pts(net_res.iter().map(|x| x[0].max(x[1])).collect(), np),
        ),
        Series::points(
            "net→prog: predictions, constraints",
            pts(net_res.iter().map(|x| x[2].max(x[3])).collect(), np),
        ),
        Series::points(
            "net→prog→net: parameters",
            pts(net_res.iter().map(|x| x[4]).collect(), np),
        ),
    ];
    let figure = LinePlot {
        title: format!(
            "C15: network ↔ repopulated variables ({} network cases, {} × {points} feasible points)",
            net_res.len(),
            pt_res.len()
        ),
        x_label: "case (program → network: depth 2–3 × q ∈ {1.5, 2, 3}; then network → program: depth 1–3 × q ∈ {1, 1.5, 2, 3})".into(),
        y_label: "relative disagreement (floored at 1e-17)".into(),
        log_y: true,
        series,
        hlines: vec![
            ("net → prog threshold 1e-12".into(), t_fwd),
            ("prog → net threshold 1e-10".into(), t_bwd),
        ],
        ..Default::default()
    }
    .to_svg()?;
    Ok(Outcome {
        passed,
        value,
        threshold: t_bwd,
        detail: format!(
            "network → program ({} trained DNNs, depth 1–3, q ∈ {{1, 1.5, 2, 3}}): objective {:.1e}, regularizer {:.1e}, predictions {:.1e}, constraint residual {:.1e}, round trip {:.1e}; program → network ({} cases × {points} random feasible points, non-uniform masses, 30% massless): features {:.1e}, predictions {:.1e}, regularizers in original variables {:.1e}, rebuilt ũ {:.1e}; q = 1 relaxation: feasible (residual {relax_res:.1e}) point with weight on a massless feature has q = 1 objective {relax_obj1:.4}, no network ({}), q = 2 objective {relax_obj2}",
            net_res.len(),
            col(&net_res, 0),
            col(&net_res, 1),
            col(&net_res, 2),
            col(&net_res, 3),
            col(&net_res, 4),
            pt_res.len(),
            col4(&pt_res, 0),
            col4(&pt_res, 1),
            col4(&pt_res, 2),
            col4(&pt_res, 3),
            if relax_refused { "to_network refuses" } else { "to_network accepted it!" },
        ),
        figure: Some(figure),
    })
}
