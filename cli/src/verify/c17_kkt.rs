//! C17 — the KKT conditions of the deep program (math.md §4.4) at a gradient-descent stationary point, with
//! the backward features as multipliers: $\boldsymbol\mu_\ell := G_\ell$, $\mathbf r^* := \mathbf r$.
//!
//! At the network's point of the program, the weight condition for $\tilde u_{\ell+1}(j,k)$ reads
//! $\lambda q[(S^{\rm in}_k/p_k)^{q-1} + (S^{\rm out}_j/p_j)^{q-1}]\operatorname{sign}\hat U_{jk} + \boldsymbol\mu_k^\top h(\mathbf z_j) = 0$ ($|\cdot|\le$ where $\hat U_{jk} = 0$), which with
//! $\boldsymbol\mu = G$ is exactly $\dot W_{jk} = 0$, and likewise the output condition is $\dot v = 0$. So the weight and
//! output residuals are the GD velocities and vanish at a stationary point. The density condition (mass
//! optimality) is *not* implied: GD never moves mass between units. It is measured on the support (spread of
//! the density function $E_\ell$ over the particles) and off it (fresh candidates cheaper than the support),
//! and shown, but not asserted.
//!
//! The group norm has a kink at $W_{jk} = 0$ and its minimizers have many zero weights (per column the
//! stationarity equations outnumber the $N$ degrees of freedom of $G_k$), so plain fixed-step GD chatters
//! around those zeros and never becomes stationary. The stationary point is reached by the same scaled GD
//! with soft-thresholding at the kink ([`ProxGd`]); its fixed points are exactly $0\in\partial J$. Plain GD
//! is run alongside and its stalled residual shown.
use super::deep_support::{
    deep_data, group_problem, min_norm_dnn, par_map, plain_gd, stacked, ProxGd,
};
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;
use nff_solvers::{gd_kkt, DeepProgram};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C17",
            title: "KKT at a GD stationary point",
            measures: "largest ratio, over runs, of the stationarity s and the weight/output KKT residual to the run's floating-point floor; the residuals are of the deep program (math.md §4.4) at GD stationary points of DNNs (L = 2, 3; q = 2, λ = 0.01), with the backward features G as consistency multipliers and the residual r as output multiplier; the density condition on the support (spread of E_ℓ over the particles) and off it (fresh candidates), and the certified bound from these multipliers, are reported",
            rule: "every run reaches stationarity s(θ) = ‖prox-GD step − θ‖∞/η (GD with the kink of |W| soft-thresholded) at or below its floating-point floor m√(2γ_K|J|/η) (a descent step lowers J by ≥ ηs²/m², visible only above twice J's rounding bound γ_K|J|, K = #parameters + N·m·L summands), and there the weight and output KKT residuals (they equal the weights' and output's GD velocities) are below the same floor: value = max(s, residuals)/floor ≤ 1; the density condition is not implied by GD stationarity and is not asserted",
        },
        run,
    }
}

/// Proximal GD (with polishes) runs until this or its step budget: as stationary as it gets.
const TARGET: f64 = 1e-13;

/// The stationarity a descent method can reach in double precision on this instance, derived (not fitted):
/// a step $\Delta\theta = \eta v$ along the scaled velocity $v$ lowers $J$ by
/// $\eta(\|v_A\|^2/m + \|v_W\|^2/m^2 + \|v_v\|^2/m)\ge\eta s^2/m^2$ when the largest entry $s = \|v\|_\infty$ sits in $W$ (the worst
/// block), and the method can only see a decrease larger than twice the rounding error $\delta J$ of one
/// evaluation of $J$. $J$ is a sum of non-negative terms built from at most $K$ = (number of parameters)
/// plus $N m L$ (the forward pass's products) floating-point summands, so $\delta J\le\gamma_K|J|$ with
/// $\gamma_K = Ku/(1 - Ku)$, $u = 2^{-53}$ (the standard summation bound). Hence stationarity stalls at most at
/// $$s_{\rm floor} = m\sqrt{2\gamma_K|J|/\eta},$$
/// where the stationary point is degenerate (a flat direction, where Newton's method on the active face does
/// not help); non-degenerate points are polished to rounding. The weight/output KKT residuals equal the
/// stationarity of the weights and output, so they get the same tolerance.
fn floating_point_floor(net: &nff_core::Network, n: usize, objective: f64, eta: f64) -> f64 {
    let shape = net.shape();
    let k = (shape.len() + n * shape.m * shape.depth) as f64;
    let u = f64::EPSILON / 2.0;
    let gamma = k * u / (1.0 - k * u);
    shape.m as f64 * (2.0 * gamma * objective.abs() / eta).sqrt()
}

struct RunResult {
    name: String,
    stationarity: f64,
    steps: usize,
    polished: usize,
    before_polish: f64,
    objective: f64,
    weight: f64,
    output: f64,
    density_spread: Vec<f64>,
    density_violation: Vec<f64>,
    bound: f64,
    zero_weights: usize,
    n_weights: usize,
    /// (step, s, KKT weight, KKT output) along proximal GD.
    prox_trace: Vec<(f64, f64, f64, f64)>,
    /// (step, KKT weight) along plain GD.
    plain_trace: Vec<(f64, f64)>,
    /// Density values $E_\ell(j)$ per layer, particles first (at the final point).
    density: Vec<Vec<f64>>,
    m: usize,
    /// The run's floating-point stationarity floor ([`floating_point_floor`]), its tolerance.
    tol: f64,
}

fn one_run(
    depth: usize,
    m: usize,
    max_steps: usize,
    data_seed: u64,
    seed: u64,
) -> Result<RunResult> {
    let data = deep_data(8, 2, data_seed)?;
    let problem = group_problem(&data, 0.01, 2.0)?;
    let start = min_norm_dnn(&problem, m, depth, seed)?;
    let fresh = 8;
    let eta = 0.05;
    let every = 500;
    // Plain GD from the same start: its weight residual stalls (chattering at the zeros of W).
    let mut plain = start.clone();
    let mut plain_trace = Vec::new();
    let plain_steps = max_steps.min(40_000);
    plain_gd(
        &problem,
        &mut plain,
        eta,
        plain_steps,
        every * 4,
        |k, net| {
            plain_trace.push((k as f64, gd_kkt(&problem, net, fresh, seed)?.kkt.weight));
            Ok(())
        },
    )?;
    // Proximal GD to a stationary point.
    let mut prox = ProxGd::new(&problem, start.shape(), eta)?;
    let mut prox_trace = Vec::new();
    let out = prox.run(&start, TARGET, max_steps, every, |k, net, s| {
        let rep = gd_kkt(&problem, net, fresh, seed)?;
        prox_trace.push((k as f64, s, rep.kkt.weight, rep.kkt.output));
        Ok(())
    })?;
    let net = out.net;
    let rep = gd_kkt(&problem, &net, fresh, seed)?;
    let (prog, pt) = DeepProgram::from_network(&problem, &net, fresh, seed)?;
    let density = prog.dual_bound(&pt, &rep.multipliers, 0.0)?.density;
    let ws: Vec<f64> = (0..depth - 1)
        .flat_map(|l| {
            let w = net.w(l);
            (0..m).flat_map(move |k| (0..m).map(move |j| w[(j, k)]))
        })
        .collect();
    Ok(RunResult {
        name: format!("L={depth} s{seed}"),
        stationarity: out.stationarity,
        steps: out.steps,
        polished: out.polished,
        before_polish: out.before_polish,
        objective: rep.objective,
        weight: rep.kkt.weight,
        output: rep.kkt.output,
        density_spread: rep.kkt.density_spread.clone(),
        density_violation: rep.kkt.density_violation.clone(),
        bound: rep.dual_bound,
        zero_weights: ws.iter().filter(|&&x| x == 0.0).count(),
        n_weights: ws.len(),
        prox_trace,
        plain_trace,
        density,
        m,
        tol: floating_point_floor(&net, data.n(), rep.objective, eta),
    })
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let (m, max_steps, n_seeds) = ctx.size.pick((10, 60_000, 1u64), (12, 200_000, 1));
    let cases: Vec<(usize, u64)> = (0..n_seeds)
        .flat_map(|s| [2usize, 3].map(|d| (d, ctx.init_seed + s)))
        .collect();
    let runs = par_map(cases.len(), |i| {
        let (depth, seed) = cases[i];
        one_run(depth, m, max_steps, ctx.data_seed, seed)
    })?;
    // Value: the largest of s and the KKT residuals relative to the run's own floating-point floor.
    let value = runs
        .iter()
        .map(|r| r.weight.max(r.output).max(r.stationarity) / r.tol)
        .fold(0.0, f64::max);
    let threshold = 1.0;
    let passed = value <= threshold;
    let tol_min = runs.iter().map(|r| r.tol).fold(f64::INFINITY, f64::min);

    // Left: residuals along the runs of the first seed.
    let floor = 1e-17;
    let mut series = Vec::new();
    for r in runs.iter().take(2) {
        series.push(Series::line(
            format!("prox GD {}: KKT weight (μ = G)", r.name),
            r.prox_trace
                .iter()
                .filter(|p| p.0 > 0.0)
                .map(|p| (p.0, p.2.max(floor)))
                .collect(),
        ));
        series.push(Series::line(
            format!("plain GD {}: KKT weight", r.name),
            r.plain_trace
                .iter()
                .map(|p| (p.0, p.1.max(floor)))
                .collect(),
        ));
    }
    let r0 = &runs[0];
    series.push(Series::points(
        format!("prox GD {}: stationarity s", r0.name),
        r0.prox_trace
            .iter()
            .filter(|p| p.0 > 0.0)
            .map(|p| (p.0, p.1.max(floor)))
            .collect(),
    ));
    series.push(Series::points(
        format!("prox GD {}: KKT output (r* = r)", r0.name),
        r0.prox_trace
            .iter()
            .filter(|p| p.0 > 0.0)
            .map(|p| (p.0, p.3.max(floor)))
            .collect(),
    ));
    let left = LinePlot {
        title: "C17: weight/output KKT residuals along GD (η = 0.05)".into(),
        x_label: "GD steps".into(),
        y_label: "residual (floored at 1e-17)".into(),
        log_x: true,
        log_y: true,
        series,
        hlines: vec![(
            format!("smallest floating-point floor (tolerance) {tol_min:.1e}"),
            tol_min,
        )],
    }
    .to_svg()?;
    // Right: the density function on and off the support at the stationary point of the first run.
    let mut dseries = Vec::new();
    for (l, e) in r0.density.iter().enumerate() {
        let on_min = e[..r0.m].iter().copied().fold(f64::INFINITY, f64::min);
        dseries.push(Series::points(
            format!("layer {}: particles (support)", l + 1),
            (0..r0.m).map(|j| (j as f64 + 1.0, e[j] - on_min)).collect(),
        ));
        dseries.push(Series::points(
            format!("layer {}: fresh candidates (off support)", l + 1),
            (r0.m..e.len())
                .map(|j| (j as f64 + 1.0, e[j] - on_min))
                .collect(),
        ));
    }
    let right = LinePlot {
        title: format!(
            "density condition at the stationary point ({}): E_ℓ(j) − min over the support",
            r0.name
        ),
        x_label: "candidate j (particles first, then fresh)".into(),
        y_label: "E − min_support E (KKT: 0 on, ≥ 0 off the support)".into(),
        series: dseries,
        hlines: vec![("0".into(), 0.0)],
        ..Default::default()
    }
    .to_svg()?;
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1e}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let per_run: Vec<String> = runs
        .iter()
        .map(|r| {
            let plain_last = r.plain_trace.last().map(|p| p.1).unwrap_or(f64::NAN);
            format!(
                "{}: s = {:.1e} after {} prox-GD steps{}, J = {:.6}, KKT weight {:.1e}, output {:.1e}, floating-point floor {:.1e} (plain GD after {} steps: weight residual {plain_last:.1e}); {}/{} weights exactly 0; density spread on support [{}], off-support violation [{}]; certified bound from these multipliers {:.6} (J above it by {:.2}%)",
                r.name,
                r.stationarity,
                r.steps,
                if r.polished > 0 {
                    format!(" (Newton polish on the active face from s = {:.1e})", r.before_polish)
                } else {
                    String::new()
                },
                r.objective,
                r.weight,
                r.output,
                r.tol,
                r.plain_trace.last().map(|p| p.0 as usize).unwrap_or(0),
                r.zero_weights,
                r.n_weights,
                fmt(&r.density_spread),
                fmt(&r.density_violation),
                r.bound,
                100.0 * (r.objective - r.bound) / r.bound.abs()
            )
        })
        .collect();
    Ok(Outcome {
        passed,
        value,
        threshold,
        detail: format!(
            "{} runs (N = 8, m = {m}, q = 2, λ = 0.01, η = 0.05, min-norm start, 8 fresh candidates per layer); max of (s, weight and output KKT residuals) / the run's floating-point floor m√(2γ_K|J|/η) = {value:.2e}; {}",
            runs.len(),
            per_run.join("; ")
        ),
        figure: Some(stacked(&left, &right)),
    })
}
