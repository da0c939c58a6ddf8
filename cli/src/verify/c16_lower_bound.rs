//! C16 — the discretized deep convex program lower-bounds gradient descent (math.md §4.3).
//!
//! A GD-trained DNN with the group norms of §4.3 is a feasible point of the deep program on any candidate
//! set containing its particles, with the same objective (C15). So the program's optimum $P^\star$ satisfies
//! $P^\star\le J_{\rm GD}$. The interior-point solve returns a feasible point with objective $P$ and a certified
//! Lagrangian lower bound $D\le P^\star$ (weak duality); $P - D$ certifies how well $P^\star$ is known.
use super::deep_support::{deep_data, group_problem, min_norm_dnn, par_map, plain_gd};
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;
use nff_solvers::{DeepOptions, DeepProgram, DeepSolution};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C16",
            title: "convex optimum lower-bounds GD",
            measures: "largest (P + ε − δ − J_GD)/J_GD over GD-trained DNNs (L = 2, 3; q = 2, λ = 0.01), where P is the objective of the cold-started interior-point solution of the discretized deep program on candidates = the network's particles + fresh samples, ε = Σ|μ|·|constraint residual| its first-order infeasibility allowance (so P* ≤ P + ε), δ the rounding allowance, with the certified Lagrangian lower bound D ≤ P*",
            rule: "for every run P + ε − δ ≤ J_GD (value ≤ 0) and D ≤ P + ε + δ, δ = γ_K(|P| + |J_GD|) the summation rounding bound of the two objectives (K their number of summands): the network point is feasible with objective J_GD (C15), so P* ≤ J_GD, and a cold-started solve must find a point at least as good (GD cannot re-weight its units, so it is not optimal on the candidates); the certified gap (P − D)/|P| and GD's excess over D are reported",
        },
        run,
    }
}

struct RunResult {
    name: String,
    j_gd: f64,
    p: f64,
    d: f64,
    rel_gap: f64,
    primal: f64,
    /// First-order effect of the solution's constraint residual on the optimal value (see
    /// [`infeasibility_effect`]).
    feas: f64,
    /// The optimum on the particles alone (no fresh candidates) and its bound.
    p_particles: f64,
    d_particles: f64,
    trace: Vec<(f64, f64)>,
    /// Rounding allowance of the comparison ([`rounding_allowance`]).
    round: f64,
}

fn one_run(
    depth: usize,
    m: usize,
    fresh: usize,
    steps: usize,
    data_seed: u64,
    seed: u64,
) -> Result<RunResult> {
    let data = deep_data(8, 2, data_seed)?;
    let problem = group_problem(&data, 0.01, 2.0)?;
    let mut net = min_norm_dnn(&problem, m, depth, seed)?;
    let eta = 0.05;
    let mut trace = vec![(0.0, problem.objective(&net))];
    let j_gd = plain_gd(&problem, &mut net, eta, steps, steps / 100, |k, nn| {
        trace.push((k as f64 * eta, problem.objective(nn)));
        Ok(())
    })?;
    // Cold start (uniform masses, zero weights): the solver has to find its way below J_GD. Features with
    // mass ≤ 1e-8·max count as unused in the bound (any classification gives a valid bound; interior-point
    // masses of unused candidates sit at ~1e-6, which the default 1e-4 would count as unused too early).
    let opts = DeepOptions {
        support_tol: 1e-8,
        ..DeepOptions::default()
    };
    let (prog, _) = DeepProgram::from_network(&problem, &net, fresh, seed)?;
    let sol = prog.solve(&opts, None, None)?;
    let (prog0, _) = DeepProgram::from_network(&problem, &net, 0, seed)?;
    let sol0 = prog0.solve(&opts, None, None)?;
    let feas = infeasibility_effect(&prog, &sol)?;
    let round = rounding_allowance(&prog, data.n(), sol.objective, j_gd);
    Ok(RunResult {
        name: format!("L={depth}, m={m}, seeds ({data_seed}, {seed})"),
        j_gd,
        p: sol.objective,
        d: sol.dual_bound,
        rel_gap: sol.relative_gap,
        primal: sol.primal_residual,
        feas,
        round,
        p_particles: sol0.objective,
        d_particles: sol0.dual_bound,
        trace,
    })
}

/// $\sum_\ell\sum_k|\boldsymbol\mu_k|^\top|e_k| + \sum_\ell|c_\ell||\sum_jp_\ell(j) - 1|$ at the solution: the optimal value $v$ of a convex
/// program is convex in the constraints' right-hand side with the multipliers as (negated) gradient, so the
/// solution, which is feasible for right-hand side $b + e$, gives $P^\star = v(b)\le v(b+e) + |\langle\lambda, e\rangle|\le P + $ this
/// (to first order in the multipliers' accuracy).
fn infeasibility_effect(prog: &DeepProgram, sol: &DeepSolution) -> Result<f64> {
    let cand = prog.candidates();
    let sizes = prog.sizes();
    let n = cand.z[0].nrows();
    let act = prog.activation();
    let pt = &sol.point;
    let mut eff = 0.0;
    for l in 0..sizes.len() - 1 {
        let (nl, nk) = (sizes[l], sizes[l + 1]);
        for k in 0..nk {
            for i in 0..n {
                // e_ik = Σ_j Û_jk h(z_ij) − p_k z_ik in mass units.
                let mut e = -pt.rho[l + 1][k] * cand.pi[l + 1][k] * cand.z[l + 1][(i, k)];
                for j in 0..nl {
                    let uh = pt.u[l][j + k * nl] * cand.pi[l][j] * cand.pi[l + 1][k];
                    e += uh * act.value(cand.z[l][(i, j)]);
                }
                eff += sol.multipliers.mu[l][i + k * n].abs() * e.abs();
            }
        }
    }
    for (l, rho) in pt.rho.iter().enumerate() {
        let mass: f64 = rho.iter().zip(&cand.pi[l]).map(|(r, p)| r * p).sum();
        let c = sol.multipliers.c.get(l).copied().unwrap_or(0.0);
        eff += c.abs() * (mass - 1.0).abs();
    }
    Ok(eff)
}

/// Rounding allowance of comparing two computed objectives: each is a sum of non-negative terms over at
/// most $K = \sum_\ell|\mathcal C_\ell|(1 + |\mathcal C_{\ell+1}|) + N\sum_\ell|\mathcal C_\ell|$ floating-point summands (masses, pair weights and
/// the consistency/prediction sums), so each carries an error $\le\gamma_K|\cdot|$, $\gamma_K = Ku/(1 - Ku)$, $u = 2^{-53}$
/// (the standard summation bound): the allowance is $\gamma_K(|P| + |J_{\rm GD}|)$.
fn rounding_allowance(prog: &DeepProgram, n: usize, p: f64, j_gd: f64) -> f64 {
    let sizes = prog.sizes();
    let pairs: usize = sizes.windows(2).map(|w| w[0] * w[1]).sum();
    let k = (sizes.iter().sum::<usize>() * (1 + n) + pairs) as f64;
    let u = f64::EPSILON / 2.0;
    k * u / (1.0 - k * u) * (p.abs() + j_gd.abs())
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let (m, fresh, steps) = ctx.size.pick((10, 6, 3000), (12, 10, 10_000));
    // One run per depth: the seed pairs of math.md §6.1 do the repetition.
    let n_seeds = 1u64;
    let cases: Vec<(usize, u64)> = (0..n_seeds)
        .flat_map(|s| [2usize, 3].map(|d| (d, ctx.init_seed + s)))
        .collect();
    let runs = par_map(cases.len(), |i| {
        let (depth, seed) = cases[i];
        one_run(depth, m, fresh, steps, ctx.data_seed, seed)
    })?;
    let value = runs
        .iter()
        .map(|r| (r.p + r.feas - r.round - r.j_gd) / r.j_gd.abs())
        .fold(f64::NEG_INFINITY, f64::max);
    let passed = runs
        .iter()
        .all(|r| r.d <= r.p + r.feas + r.round && r.p + r.feas - r.round <= r.j_gd);
    // Relative excess over the certified bound (log scale; a run whose J fell below D would leave the plot
    // and fail the rule, see the detail line).
    let floor = 1e-9;
    let mut series = Vec::new();
    for r in &runs {
        series.push(Series::line(
            format!("GD: J(t)/D − 1, {}", r.name),
            r.trace
                .iter()
                .filter(|p| p.0 > 0.0)
                .map(|&(t, j)| (t, (j / r.d - 1.0).max(floor)))
                .collect(),
        ));
    }
    let t_end = runs
        .iter()
        .filter_map(|r| r.trace.last().map(|p| p.0))
        .fold(0.0, f64::max);
    series.push(Series::points(
        "convex solution: P/D − 1 (certified gap)",
        runs.iter()
            .map(|r| (t_end, (r.p / r.d - 1.0).max(floor)))
            .collect(),
    ));
    let figure = LinePlot {
        title: format!(
            "C16: GD objective above the certified convex bound D (particles + {fresh} fresh per layer)"
        ),
        x_label: "t = η·steps (η = 0.05)".into(),
        y_label: "J / D − 1".into(),
        log_x: true,
        log_y: true,
        series,
        hlines: vec![],
    }
    .to_svg()?;
    let per_run: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{}: J_GD {:.6}, P {:.6}, D {:.6} (rel gap {:.1e}, primal residual {:.0e}, ε {:.0e}, rounding {:.0e}), GD above the bound by {:.2}%; particles only: P {:.6}, D {:.6}",
                r.name,
                r.j_gd,
                r.p,
                r.d,
                r.rel_gap,
                r.primal,
                r.feas,
                r.round,
                100.0 * (r.j_gd - r.d) / r.d.abs(),
                r.p_particles,
                r.d_particles
            )
        })
        .collect();
    Ok(Outcome {
        passed,
        value,
        threshold: 0.0,
        detail: format!(
            "{} GD runs ({steps} steps of η = 0.05 from the min-norm start, N = 8, q = 2, λ = 0.01, m = {m}, {fresh} fresh candidates per layer); max (P + ε − δ − J_GD)/J_GD = {value:.3e} (ε: first-order infeasibility allowance, δ: rounding allowance); {}",
            runs.len(),
            per_run.join("; ")
        ),
        figure: Some(figure),
    })
}
