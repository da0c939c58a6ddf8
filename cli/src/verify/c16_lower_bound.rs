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
use nff_solvers::{DeepOptions, DeepProgram};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C16",
            title: "convex optimum lower-bounds GD",
            measures: "largest (P − J_GD)/J_GD over GD-trained DNNs (L = 2, 3; q = 2, λ = 0.01), where P is the objective of the cold-started interior-point solution of the discretized deep program on candidates = the network's particles + fresh samples (P ≥ P*, the optimum), with its certified Lagrangian lower bound D ≤ P*",
            rule: "for every run: primal residual ≤ 1e-8, D ≤ P (a valid bound), and P ≤ J_GD, i.e. value ≤ 0: the network point is feasible with objective J_GD (C15), so P* ≤ J_GD, and a cold-started solve must find a point at least as good (GD is not optimal on candidates it cannot re-weight); the certified gap (P − D)/|P| and GD's excess over D are reported",
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
    /// The optimum on the particles alone (no fresh candidates) and its bound.
    p_particles: f64,
    d_particles: f64,
    trace: Vec<(f64, f64)>,
    seconds: f64,
}

fn one_run(depth: usize, m: usize, fresh: usize, steps: usize, seed: u64) -> Result<RunResult> {
    let data = deep_data(8, 2, seed)?;
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
    Ok(RunResult {
        name: format!("L={depth}, m={m}, seed {seed}"),
        j_gd,
        p: sol.objective,
        d: sol.dual_bound,
        rel_gap: sol.relative_gap,
        primal: sol.primal_residual,
        p_particles: sol0.objective,
        d_particles: sol0.dual_bound,
        trace,
        seconds: sol.seconds + sol0.seconds,
    })
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let (m, fresh, steps) = ctx.size.pick((10, 6, 3000), (12, 10, 10_000));
    let n_seeds = ctx.size.pick(1u64, 4);
    let cases: Vec<(usize, u64)> = (0..n_seeds)
        .flat_map(|s| [2usize, 3].map(|d| (d, ctx.seed + s)))
        .collect();
    let runs = par_map(cases.len(), |i| {
        let (depth, seed) = cases[i];
        one_run(depth, m, fresh, steps, seed)
    })?;
    let value = runs
        .iter()
        .map(|r| (r.p - r.j_gd) / r.j_gd.abs())
        .fold(f64::NEG_INFINITY, f64::max);
    let passed = runs
        .iter()
        .all(|r| r.primal <= 1e-8 && r.d <= r.p && r.p <= r.j_gd);
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
                "{}: J_GD {:.6}, P {:.6}, D {:.6} (rel gap {:.1e}, primal {:.0e}), GD above the bound by {:.2}%; particles only: P {:.6}, D {:.6}; solves {:.2} s",
                r.name,
                r.j_gd,
                r.p,
                r.d,
                r.rel_gap,
                r.primal,
                100.0 * (r.j_gd - r.d) / r.d.abs(),
                r.p_particles,
                r.d_particles,
                r.seconds
            )
        })
        .collect();
    Ok(Outcome {
        passed,
        value,
        threshold: 0.0,
        detail: format!(
            "{} GD runs ({steps} steps of η = 0.05 from the min-norm start, N = 8, q = 2, λ = 0.01, m = {m}, {fresh} fresh candidates per layer); max (P − J_GD)/J_GD = {value:.3e}; {}",
            runs.len(),
            per_run.join("; ")
        ),
        figure: Some(figure),
    })
}
