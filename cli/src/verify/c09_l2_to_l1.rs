//! C9 — the L2 → L1 identity of math.md §4.1 and its importance law:
//! $$\min_{\rho\ge0,\ \int\rho = 1}\int\frac{\tilde u^2\rho_0^2}{\rho}\,d\theta = \Big(\int|\tilde u|\,d\rho_0\Big)^2,\qquad \rho^\star = \frac{|\tilde u|\rho_0}{\int|\tilde u|\,d\rho_0},$$
//! and its consequence: training features and output weights with weight decay ($\lambda_2 = \tau = 0$) is a linear
//! model on the fixed features of $\rho_0$ with a squared $L^1(\rho_0)$ penalty.
//!
//! The minimum over $\rho$ is computed numerically, never from the closed form: (a) a generic quasi-Newton
//! method (nff-solvers' L-BFGS on the softmax parameterization $\rho = \mathrm{softmax}(z)$, which knows nothing
//! of the answer), (b) nff-solvers' `minimize_over_simplex` (bisection on the multiplier of $\sum\rho = 1$).
//! At the program level the dual interior-point solve of the two-level program is compared with an
//! independent L-BFGS solve of the squared-L1 linear model, each with its own certified duality gap.
use super::two_level_support::{sine_with_bias, solve_program, solve_spd};
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{ensure, Result};
use faer::Mat;
use nff_core::rng::{normal, rng};
use nff_solvers::lbfgs::{minimize, LbfgsOptions};
use nff_solvers::{candidates, minimize_over_simplex, TwoLevelProgram};
use rand::Rng as _;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C9",
            title: "L2→L1 identity and importance law",
            measures: "largest relative error between the numerically minimized Σ ũ²ρ₀²/ρ over the simplex (generic L-BFGS on ρ = softmax(z), and the library's multiplier bisection) and (Σ|ũ|ρ₀)², over random instances; plus the argmin error against |ũ|ρ₀/Σ|ũ|ρ₀ and the program-level equivalence (two-level program with λ₂ = τ = 0 vs the squared-L1 linear model)",
            rule: "value error ≤ 1e-8 relative and argmin error ≤ 1e-6 (max-abs) for both minimizers; at the program level |P(two-level) − P(squared L1)| ≤ sum of the two certified duality gaps (+1e-12 relative for rounding), both gaps ≤ 1e-8 relative, and the solver's population within the gap-implied bound ‖ρ − ρ*(w)‖₁ ≤ √Δ + Δ + 2γ_2K (rounding), Δ = gap/((λ₁/2)(Σ|w|)²)",
        },
        run,
    }
}

/// $\min_{\rho\in\Delta}\sum_k c_k/\rho_k$ by L-BFGS on $\rho = \mathrm{softmax}(z)$ from $z = 0$; returns $(\rho, \text{value})$.
fn lbfgs_simplex(c: &[f64]) -> (Vec<f64>, f64) {
    let k = c.len();
    let softmax = |z: &[f64]| -> Vec<f64> {
        let mx = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - mx).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    };
    // f = Σ c/ρ; ∂f/∂z_j = ρ_j(g_j − Σρg) with g = −c/ρ², i.e. −c_j/ρ_j + ρ_j f.
    let mut obj = |z: &[f64], grad: &mut [f64]| -> f64 {
        let rho = softmax(z);
        let f: f64 = (0..k)
            .map(|i| if c[i] == 0.0 { 0.0 } else { c[i] / rho[i] })
            .sum();
        for i in 0..k {
            let ci = if c[i] == 0.0 { 0.0 } else { c[i] / rho[i] };
            grad[i] = -ci + rho[i] * f;
        }
        f
    };
    let mut z = vec![0.0; k];
    let opts = LbfgsOptions {
        memory: 20,
        max_iter: 20_000,
        tol_pg: 1e-16,
        tol_rel_f: 1e-17,
        patience: 30,
        max_backtracks: 80,
    };
    let _ = minimize(&mut obj, &mut z, &[], &opts);
    let rho = softmax(&z);
    let val = (0..k)
        .map(|i| if c[i] == 0.0 { 0.0 } else { c[i] / rho[i] })
        .sum();
    (rho, val)
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    // (A) Random instances.
    let instances = ctx.size.pick(300, 3000);
    let mut r = rng(ctx.init_seed, "C9/instances");
    let (mut err_lbfgs, mut err_bisect): (f64, f64) = (0.0, 0.0);
    let (mut arg_lbfgs, mut arg_bisect): (f64, f64) = (0.0, 0.0);
    let mut pts_l = Vec::new();
    let mut pts_b = Vec::new();
    for t in 0..instances {
        let k = 2 + t % 59;
        let raw: Vec<f64> = (0..k).map(|_| (1.5 * normal(&mut r)).exp()).collect();
        let total: f64 = raw.iter().sum();
        let rho0: Vec<f64> = raw.iter().map(|x| x / total).collect();
        let mut ut: Vec<f64> = (0..k)
            .map(|_| {
                if r.random::<f64>() < 0.25 {
                    0.0
                } else {
                    3.0 * normal(&mut r)
                }
            })
            .collect();
        if ut.iter().all(|&u| u == 0.0) {
            ut[0] = 1.0;
        }
        let l1: f64 = ut.iter().zip(&rho0).map(|(u, p)| u.abs() * p).sum();
        let closed = l1 * l1;
        let rho_star: Vec<f64> = ut
            .iter()
            .zip(&rho0)
            .map(|(u, p)| u.abs() * p / l1)
            .collect();
        let c: Vec<f64> = ut
            .iter()
            .zip(&rho0)
            .map(|(u, p)| (u * p) * (u * p))
            .collect();
        let (rho_l, val_l) = lbfgs_simplex(&c);
        // λ₁ Σ w²/2ρ with w = ũρ₀ and λ₁ = 2 is Σ ũ²ρ₀²/ρ.
        let w: Vec<f64> = ut.iter().zip(&rho0).map(|(u, p)| u * p).collect();
        let (rho_b, val_b) = minimize_over_simplex(&w, 2.0, &vec![0.0; k], 0.0, &rho0);
        err_lbfgs = err_lbfgs.max((val_l - closed).abs() / closed);
        err_bisect = err_bisect.max((val_b - closed).abs() / closed);
        arg_lbfgs = arg_lbfgs.max(max_abs_diff(&rho_l, &rho_star));
        arg_bisect = arg_bisect.max(max_abs_diff(&rho_b, &rho_star));
        if pts_l.len() < 400 {
            pts_l.push((closed, val_l));
            pts_b.push((closed, val_b));
        }
    }

    // (B) Program level: trained features + weight decay = squared-L1 linear model on ρ₀'s features.
    let data = sine_with_bias(10, 1, ctx.data_seed)?;
    let per_axis = ctx.size.pick(15, 31);
    let theta = candidates::grid(2, per_axis, 4.0)?;
    let rho0 = candidates::gaussian_weights(&theta, 2.0);
    let lambda1 = 0.05;
    let (prog, sol) = solve_program(&data, theta.as_ref(), &rho0, lambda1, 0.0)?;
    let (p_l1, gap_l1, w_l1) = squared_l1_model(&prog, lambda1);
    let p_frozen = frozen_features(&prog, lambda1)?;
    let diff = (sol.objective - p_l1).abs();
    // Rounding of the objectives (sums of ≤ 10³ terms): 1e-12 relative.
    let gap_sum = sol.gap.max(0.0) + gap_l1.max(0.0) + 1e-12 * sol.objective;
    let wl1: f64 = sol.w.iter().map(|x| x.abs()).sum();
    let rho_imp: Vec<f64> = sol.w.iter().map(|x| x.abs() / wl1).collect();
    let dev1: f64 = sol
        .rho
        .iter()
        .zip(&rho_imp)
        .map(|(a, b)| (a - b).abs())
        .sum();
    let big_delta = sol.gap.max(0.0) / (0.5 * lambda1 * wl1 * wl1);
    // Plus the rounding of the computed ℓ1 distance: 2K terms of size ≤ 1 summing to ≤ 2, so ≤ 2γ_{2K}
    // (γ_n = nu/(1 − nu), u = 2⁻⁵³); without it a solve with a gap at rounding level (clamped to 0) would
    // be held to an exact 0.
    let u = f64::EPSILON / 2.0;
    let k2 = 2.0 * prog.k() as f64;
    let dev_bound = big_delta.sqrt() + big_delta + 2.0 * k2 * u / (1.0 - k2 * u);
    let rel_gap_l1 = gap_l1 / p_l1;
    let w_l1_norm: f64 = w_l1.iter().map(|x| x.abs()).sum();
    ensure!(
        sol.objective.is_finite() && p_l1.is_finite(),
        "non-finite objective"
    );

    let tol_val = 1e-8;
    let tol_arg = 1e-6;
    let value = err_lbfgs.max(err_bisect);
    let passed = value <= tol_val
        && arg_lbfgs.max(arg_bisect) <= tol_arg
        && diff <= gap_sum
        && sol.relative_gap <= 1e-8
        && rel_gap_l1 <= 1e-8
        && dev1 <= dev_bound;
    let (lo, hi) = pts_l.iter().fold((f64::INFINITY, 0.0f64), |(l, h), p| {
        (l.min(p.0), h.max(p.0))
    });
    let figure = LinePlot {
        title: format!(
            "C9: min_ρ Σ ũ²ρ₀²/ρ vs (Σ|ũ|ρ₀)² ({instances} instances; max rel. error {value:.1e})"
        ),
        x_label: "closed form (Σ|ũ|ρ₀)²".into(),
        y_label: "numerical minimum over the simplex".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series::points("L-BFGS on ρ = softmax(z)", pts_l),
            Series::points("multiplier bisection (library)", pts_b),
            Series::line("identity", vec![(lo, lo), (hi, hi)]),
        ],
        hlines: vec![],
    }
    .to_svg()?;
    Ok(Outcome {
        passed,
        value,
        threshold: tol_val,
        detail: format!(
            "{instances} instances (K = 2..60, 25% zero ũ): value error L-BFGS {err_lbfgs:.1e}, bisection {err_bisect:.1e}; argmin error L-BFGS {arg_lbfgs:.1e}, bisection {arg_bisect:.1e}. Program ({} grid candidates, λ₁ = {lambda1}, λ₂ = τ = 0): P(two-level) = {:.10}, P(squared L1, L-BFGS) = {p_l1:.10}, |diff| {diff:.1e} ≤ gaps {gap_sum:.1e} (rel. gaps {:.1e}, {rel_gap_l1:.1e}); ‖ρ − |w|/‖w‖₁‖₁ = {dev1:.1e} ≤ bound {dev_bound:.1e}; support {} of {}; ‖w‖₁ {wl1:.4} vs L1-model {w_l1_norm:.4}; frozen features ρ = ρ₀ (L2(ρ₀) penalty) give {p_frozen:.6} ≥ {p_l1:.6}",
            prog.k(),
            sol.objective,
            sol.relative_gap,
            sol.diagnostics.support_size,
            prog.k(),
        ),
        figure: Some(figure),
    })
}

/// $\min_w F(Hw) + \frac{\lambda_1}2\|w\|_1^2$ (squared loss) by projected L-BFGS on $w = w^+ - w^-$, $w^\pm\ge0$.
/// Returns the objective, its certified duality gap $P - D(\mathbf r)$ with
/// $D(\mathbf p) = -F^*(\mathbf p) - \|H^\top\mathbf p\|_\infty^2/2\lambda_1$, $F^*(\mathbf p) = \mathbf p^\top\mathbf y + \frac N2\|\mathbf p\|^2$,
/// and the minimizer.
fn squared_l1_model(prog: &TwoLevelProgram, lambda1: f64) -> (f64, f64, Vec<f64>) {
    let h = prog.features();
    let (n, k) = (h.nrows(), h.ncols());
    let nf = n as f64;
    // Targets: P at w = 0 is F(0) = (1/2N)‖y‖², and ∇F(0) = −y/N, so y = −N·residual(0).
    let y: Vec<f64> = prog
        .residual(&vec![0.0; n])
        .iter()
        .map(|r| -nf * r)
        .collect();
    let eval = |w: &[f64]| -> (f64, Vec<f64>) {
        let yhat = prog.predictions(w);
        let res: Vec<f64> = (0..n).map(|i| (yhat[i] - y[i]) / nf).collect();
        let risk: f64 = (0..n).map(|i| 0.5 * (yhat[i] - y[i]).powi(2)).sum::<f64>() / nf;
        let l1: f64 = w.iter().map(|x| x.abs()).sum();
        (risk + 0.5 * lambda1 * l1 * l1, res)
    };
    let mut obj = |x: &[f64], grad: &mut [f64]| -> f64 {
        let w: Vec<f64> = (0..k).map(|j| x[j] - x[k + j]).collect();
        let (f, res) = eval(&w);
        let l1: f64 = x.iter().sum();
        for j in 0..k {
            let s: f64 = (0..n).map(|i| h[(i, j)] * res[i]).sum();
            grad[j] = s + lambda1 * l1;
            grad[k + j] = -s + lambda1 * l1;
        }
        f
    };
    let mut x = vec![0.0; 2 * k];
    let opts = LbfgsOptions {
        memory: 30,
        max_iter: 50_000,
        tol_pg: 1e-15,
        tol_rel_f: 1e-17,
        patience: 50,
        max_backtracks: 80,
    };
    let _ = minimize(&mut obj, &mut x, &vec![0.0; 2 * k], &opts);
    let w: Vec<f64> = (0..k).map(|j| x[j] - x[k + j]).collect();
    let (p, res) = eval(&w);
    let fstar: f64 = (0..n)
        .map(|i| res[i] * y[i] + 0.5 * nf * res[i] * res[i])
        .sum();
    let smax = (0..k)
        .map(|j| (0..n).map(|i| h[(i, j)] * res[i]).sum::<f64>().abs())
        .fold(0.0, f64::max);
    let d = -fstar - smax * smax / (2.0 * lambda1);
    (p, p - d, w)
}

/// Frozen features $\rho = \rho_0$: $\min_w F(Hw) + \frac{\lambda_1}2\sum_k w_k^2/\rho_{0k}$ (ridge regression, the
/// $L^2(\rho_0)$ penalty of random features), solved through the $N\times N$ system
/// $(HDH^\top + N\lambda_1I)\alpha = \mathbf y$, $w = DH^\top\alpha$, $D = \mathrm{diag}(\rho_0)$.
fn frozen_features(prog: &TwoLevelProgram, lambda1: f64) -> Result<f64> {
    let h = prog.features();
    let rho0 = prog.rho0();
    let (n, k) = (h.nrows(), h.ncols());
    let nf = n as f64;
    let y: Vec<f64> = prog
        .residual(&vec![0.0; n])
        .iter()
        .map(|r| -nf * r)
        .collect();
    let a = Mat::from_fn(n, n, |i, j| {
        (0..k).map(|c| h[(i, c)] * rho0[c] * h[(j, c)]).sum::<f64>()
            + if i == j { nf * lambda1 } else { 0.0 }
    });
    let alpha = solve_spd(&a, &y)?;
    let w: Vec<f64> = (0..k)
        .map(|c| rho0[c] * (0..n).map(|i| h[(i, c)] * alpha[i]).sum::<f64>())
        .collect();
    let yhat = prog.predictions(&w);
    let risk: f64 = (0..n).map(|i| 0.5 * (yhat[i] - y[i]).powi(2)).sum::<f64>() / nf;
    let pen: f64 = (0..k).map(|c| w[c] * w[c] / rho0[c]).sum::<f64>() * 0.5 * lambda1;
    Ok(risk + pen)
}
