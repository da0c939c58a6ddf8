//! A projected limited-memory BFGS method for $\min f(x)$ subject to lower bounds $x \ge \ell$.
//!
//! argmin 0.11's L-BFGS works on `Vec<f64>` only through `argmin-math` with its `vec` feature, which is
//! not a workspace dependency (and argmin's faer backend is pinned to faer ≤ 0.23), so nff-solvers carries
//! this small, self-contained solver. It is the inner solver of the deep augmented Lagrangian
//! ([`crate::deep`]) and works unconstrained too (all bounds $-\infty$).
//!
//! **Method** (projected quasi-Newton with an active set, in the spirit of Bertsekas' projected Newton
//! method and of L-BFGS-B without its Cauchy point):
//! 1. the active set $\mathcal A = \{i : x_i = \ell_i,\ \partial_i f > 0\}$ is held fixed this iteration;
//! 2. on the free variables, the two-loop recursion gives $d = -H g$ from the last `memory` pairs
//!    $(s, y)$ (with the usual scaling $H_0 = \frac{s^\top y}{y^\top y}I$);
//! 3. **if $d$ is not a descent direction** ($g^\top d \ge 0$, argmin's "search direction must be a descent
//!    direction" failure) the memory is cleared and $d = -g$ on the free set — never ignored;
//! 4. a projected backtracking line search $x(\alpha) = \max(\ell, x + \alpha d)$ with the Armijo rule
//!    $f(x(\alpha)) \le f(x) + c_1\, g^\top(x(\alpha) - x)$; non-finite values count as failures. If it fails,
//!    the memory is cleared and steepest descent is tried once before giving up;
//! 5. pairs with $s^\top y \le 10^{-12}\|s\|\|y\|$ are skipped (curvature condition).
//!
//! Stop when the projected gradient $\|x - \max(\ell, x - g)\|_\infty \le$ `tol_pg`.
use serde::Serialize;
use std::collections::VecDeque;

/// An objective $f$ with its gradient.
pub trait Objective {
    /// Return $f(x)$ and write $\nabla f(x)$ into `grad`; return a non-finite value outside the domain.
    fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64;
}

impl<F: FnMut(&[f64], &mut [f64]) -> f64> Objective for F {
    fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        self(x, grad)
    }
}

/// Why an iterative solver stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Termination {
    /// The convergence tolerance was met.
    Converged,
    /// The objective stopped decreasing (relative change below tolerance for several iterations).
    Stalled,
    /// The iteration limit was reached.
    MaxIterations,
    /// No step along the quasi-Newton or the steepest-descent direction decreased the objective.
    LineSearchFailed,
    /// The objective or gradient at the start was not finite.
    NonFinite,
}

/// Options of [`minimize`].
#[derive(Clone, Copy, Debug)]
pub struct LbfgsOptions {
    /// Number of stored pairs $(s, y)$.
    pub memory: usize,
    /// Iteration limit.
    pub max_iter: usize,
    /// Tolerance on the $\infty$-norm of the projected gradient.
    pub tol_pg: f64,
    /// Relative decrease below which an iteration counts as stalled.
    pub tol_rel_f: f64,
    /// Consecutive stalled iterations before stopping.
    pub patience: usize,
    /// Backtracking steps per line search.
    pub max_backtracks: usize,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        Self {
            memory: 10,
            max_iter: 2000,
            tol_pg: 1e-9,
            tol_rel_f: 1e-15,
            patience: 10,
            max_backtracks: 60,
        }
    }
}

/// What [`minimize`] did.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LbfgsReport {
    /// Final objective.
    pub f: f64,
    /// Final projected-gradient norm.
    pub pg_norm: f64,
    /// Iterations taken.
    pub iterations: usize,
    /// Objective/gradient evaluations.
    pub evaluations: usize,
    /// Times the memory was cleared (non-descent direction or failed line search).
    pub resets: usize,
    /// Why it stopped.
    pub termination: Termination,
}

/// $\|x - \max(\ell, x - g)\|_\infty$.
pub fn projected_gradient_norm(x: &[f64], g: &[f64], lower: &[f64]) -> f64 {
    x.iter()
        .zip(g)
        .enumerate()
        .map(|(i, (&xi, &gi))| {
            let l = lower.get(i).copied().unwrap_or(f64::NEG_INFINITY);
            (xi - (xi - gi).max(l)).abs()
        })
        .fold(0.0, f64::max)
}

/// Minimize `obj` from `x` subject to `x >= lower` (an empty `lower` means unbounded; entries may be
/// $-\infty$). `x` is projected onto the bounds first and holds the minimizer on return.
pub fn minimize<O: Objective + ?Sized>(
    obj: &mut O,
    x: &mut [f64],
    lower: &[f64],
    opts: &LbfgsOptions,
) -> LbfgsReport {
    let n = x.len();
    assert!(
        lower.is_empty() || lower.len() == n,
        "bounds of length {} for {n} variables",
        lower.len()
    );
    let lb = |i: usize| lower.get(i).copied().unwrap_or(f64::NEG_INFINITY);
    for (i, xi) in x.iter_mut().enumerate() {
        *xi = xi.max(lb(i));
    }
    let mut g = vec![0.0; n];
    let mut f = obj.value_grad(x, &mut g);
    let mut evals = 1;
    let mut report = LbfgsReport {
        f,
        pg_norm: f64::INFINITY,
        iterations: 0,
        evaluations: evals,
        resets: 0,
        termination: Termination::MaxIterations,
    };
    if !f.is_finite() || g.iter().any(|v| !v.is_finite()) {
        report.termination = Termination::NonFinite;
        return report;
    }
    let mut mem: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(opts.memory);
    let mut d = vec![0.0; n];
    let mut free = vec![true; n];
    let mut xn = vec![0.0; n];
    let mut gn = vec![0.0; n];
    let mut alpha_buf = vec![0.0; opts.memory.max(1)];
    let mut stalled = 0;
    for it in 0..opts.max_iter {
        report.iterations = it;
        let pg = projected_gradient_norm(x, &g, lower);
        report.pg_norm = pg;
        if pg <= opts.tol_pg {
            report.termination = Termination::Converged;
            report.f = f;
            report.evaluations = evals;
            return report;
        }
        for i in 0..n {
            free[i] = !(x[i] <= lb(i) && g[i] > 0.0);
        }
        let mut tried_steepest = false;
        loop {
            direction(&g, &free, &mem, &mut d, &mut alpha_buf);
            let mut slope: f64 = d.iter().zip(&g).map(|(a, b)| a * b).sum();
            let gnorm = g
                .iter()
                .zip(&free)
                .filter(|(_, &fr)| fr)
                .map(|(v, _)| v * v)
                .sum::<f64>()
                .sqrt();
            let dnorm = d.iter().map(|v| v * v).sum::<f64>().sqrt();
            if !(slope < -1e-14 * gnorm * dnorm) {
                // Not a descent direction: clear the memory and use steepest descent on the free set.
                mem.clear();
                report.resets += 1;
                tried_steepest = true;
                direction(&g, &free, &mem, &mut d, &mut alpha_buf);
                slope = d.iter().zip(&g).map(|(a, b)| a * b).sum();
            }
            let steepest = mem.is_empty();
            // First step length: 1 for quasi-Newton, a scaled step for steepest descent.
            let mut alpha = if steepest {
                let dn = d.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
                (1.0 / dn.max(1e-300)).min(1.0)
            } else {
                1.0
            };
            let mut accepted = false;
            for _ in 0..opts.max_backtracks {
                let mut lin = 0.0;
                for i in 0..n {
                    xn[i] = (x[i] + alpha * d[i]).max(lb(i));
                    lin += g[i] * (xn[i] - x[i]);
                }
                let fnew = obj.value_grad(&xn, &mut gn);
                evals += 1;
                let ok = fnew.is_finite()
                    && gn.iter().all(|v| v.is_finite())
                    && fnew <= f + 1e-4 * lin.min(0.0);
                if ok && (lin < 0.0 || fnew < f) {
                    accepted = true;
                    // Curvature pair.
                    let s: Vec<f64> = xn.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
                    let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
                    let sy: f64 = s.iter().zip(&y).map(|(a, b)| a * b).sum();
                    let ss = s.iter().map(|v| v * v).sum::<f64>().sqrt();
                    let yy = y.iter().map(|v| v * v).sum::<f64>().sqrt();
                    if sy > 1e-12 * ss * yy && opts.memory > 0 {
                        if mem.len() == opts.memory {
                            mem.pop_front();
                        }
                        mem.push_back((s, y, 1.0 / sy));
                    }
                    let rel = (f - fnew).abs() / f.abs().max(1e-300);
                    stalled = if rel <= opts.tol_rel_f {
                        stalled + 1
                    } else {
                        0
                    };
                    x.copy_from_slice(&xn);
                    g.copy_from_slice(&gn);
                    f = fnew;
                    break;
                }
                alpha *= if fnew.is_finite() { 0.5 } else { 0.1 };
                if alpha == 0.0 {
                    break;
                }
            }
            let _ = slope;
            if accepted {
                break;
            }
            if steepest || tried_steepest {
                report.termination = Termination::LineSearchFailed;
                report.f = f;
                report.evaluations = evals;
                report.pg_norm = projected_gradient_norm(x, &g, lower);
                return report;
            }
            // The quasi-Newton step failed: clear the memory and retry with steepest descent.
            mem.clear();
            report.resets += 1;
            tried_steepest = true;
        }
        if stalled >= opts.patience {
            report.termination = Termination::Stalled;
            report.iterations = it + 1;
            report.f = f;
            report.evaluations = evals;
            report.pg_norm = projected_gradient_norm(x, &g, lower);
            return report;
        }
    }
    report.iterations = opts.max_iter;
    report.f = f;
    report.evaluations = evals;
    report.pg_norm = projected_gradient_norm(x, &g, lower);
    if report.pg_norm <= opts.tol_pg {
        report.termination = Termination::Converged;
    }
    report
}

/// $d = -Hg$ on the free set by the two-loop recursion ($d = -g$ there if the memory is empty).
fn direction(
    g: &[f64],
    free: &[bool],
    mem: &VecDeque<(Vec<f64>, Vec<f64>, f64)>,
    d: &mut [f64],
    alpha: &mut [f64],
) {
    for i in 0..g.len() {
        d[i] = if free[i] { g[i] } else { 0.0 };
    }
    let dot_free = |a: &[f64], b: &[f64]| -> f64 {
        a.iter()
            .zip(b)
            .zip(free)
            .filter(|(_, &fr)| fr)
            .map(|((x, y), _)| x * y)
            .sum()
    };
    for (k, (s, y, rho)) in mem.iter().enumerate().rev() {
        let a = rho * dot_free(s, d);
        alpha[k] = a;
        for i in 0..d.len() {
            if free[i] {
                d[i] -= a * y[i];
            }
        }
    }
    if let Some((s, y, _)) = mem.back() {
        let yy = dot_free(y, y);
        let sy = dot_free(s, y);
        let gamma = if yy > 0.0 && sy > 0.0 { sy / yy } else { 1.0 };
        for v in d.iter_mut() {
            *v *= gamma;
        }
    }
    for (k, (s, y, rho)) in mem.iter().enumerate() {
        let b = rho * dot_free(y, d);
        for i in 0..d.len() {
            if free[i] {
                d[i] += (alpha[k] - b) * s[i];
            }
        }
    }
    for v in d.iter_mut() {
        *v = -*v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rosenbrock_unconstrained() {
        let mut f = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let mut x = vec![-1.2, 1.0];
        let r = minimize(&mut f, &mut x, &[], &LbfgsOptions::default());
        assert_eq!(r.termination, Termination::Converged, "{r:?}");
        assert!(
            (x[0] - 1.0).abs() < 1e-7 && (x[1] - 1.0).abs() < 1e-7,
            "{x:?}"
        );
    }

    #[test]
    fn bound_constrained_quadratic_hits_the_bound() {
        // min (x0 + 1)^2 + (x1 - 2)^2 + x0 x1 / 2 over x >= 0: x0 = 0, x1 = 2.
        let mut f = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] + 1.0) + 0.5 * x[1];
            g[1] = 2.0 * (x[1] - 2.0) + 0.5 * x[0];
            (x[0] + 1.0).powi(2) + (x[1] - 2.0).powi(2) + 0.5 * x[0] * x[1]
        };
        let mut x = vec![3.0, 0.0];
        let r = minimize(&mut f, &mut x, &[0.0, 0.0], &LbfgsOptions::default());
        assert_eq!(r.termination, Termination::Converged, "{r:?}");
        assert_eq!(x[0], 0.0);
        assert!((x[1] - 2.0).abs() < 1e-9);
    }
}
