//! The fixed-feature baselines a mean-field network is compared with (math.md §4.5): **random features**
//! (hidden layers frozen at their initialization, only the output layer $v$ trained) and the **lazy / NTK
//! regime** (the network linearized at its initialization). Both are convex problems in the parameters that
//! move, and both are solved **exactly** here — to the unique minimizer, which is where gradient descent on
//! them converges — rather than by a finite number of GD steps.
//!
//! # One kernel problem for both
//! Let $\theta$ be the parameters that move, $\mathbf f(\theta) = \mathbf b + J(\theta - \theta_0)$ the (exactly
//! or by construction) linear predictions on the $N$ training points, and $M$ the scaled-GD metric of math.md
//! §2 ($m$ on $A$ and $v$, $m^2$ on $W$). With a ridge $\frac\lambda2\|\cdot\|^2_{M^{-1}}$, stationarity of
//! $\mathcal R(\mathbf f) + \frac\lambda2\|\cdot\|^2_{M^{-1}}$ puts the minimizer in the range of $MJ^\top$: the
//! moving part is $MJ^\top\mathbf c$ for a $\mathbf c\in\mathbb R^N$, and with the tangent kernel
//! $K = JMJ^\top$ ($N\times N$) the problem is
//! $$\min_{\mathbf c\in\mathbb R^N}\ F(\mathbf c) = \mathcal R(\mathbf b + K\mathbf c) + \tfrac\lambda2\,\mathbf c^\top K\mathbf c
//! \qquad\text{[derived]},$$
//! solved by [`kernel_ridge`] (damped Newton; one step for the squared loss).
//! - **random features** ([`frozen`]): $\theta = v$, $J = \frac1m H$ with $H = h(Z_L)$ at the frozen hidden
//!   weights, $K = \frac1m HH^\top$, $\mathbf b = 0$, ridge $\frac{\lambda_v}{2m}\|v\|^2$ (the L2 term of v);
//!   then $v = H^\top\mathbf c$.
//! - **lazy** ([`lazy`]): all parameters, $\mathbf b = \hat{\mathbf y}(\theta_0)$, $K = \Theta$ the neural tangent
//!   kernel at $\theta_0$ in the metric $M$, ridge on the displacement $\delta = \theta - \theta_0$; then
//!   $\delta = MJ^\top\mathbf c$.
//!
//! With $\lambda = 0$ (squared loss only) the minimizer is the minimum-norm interpolant
//! $\mathbf c = K^{-1}(\mathbf y - \mathbf b)$, the limit of GD started from $v = 0$ (random features) or
//! $\delta = 0$ (lazy); the logistic loss needs $\lambda > 0$ (on separable data it has no minimizer).
//!
//! [`choose_ridge`] picks $\lambda$ from a grid by the validation risk.
use crate::error::{CoreError, Result};
use crate::loss::Loss;
use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef};

pub mod frozen;
pub mod lazy;

/// Newton iterations at most in [`kernel_ridge`].
pub const MAX_NEWTON: usize = 200;

/// The exact solution of the kernel problem of the [module docs](self).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KernelFit {
    /// The representer coefficients $\mathbf c$.
    #[serde(skip)]
    pub c: Vec<f64>,
    /// The training predictions $\mathbf b + K\mathbf c$.
    #[serde(skip)]
    pub yhat: Vec<f64>,
    /// The ridge $\lambda$.
    pub lambda: f64,
    /// $F(\mathbf c)$: the training risk plus the ridge term.
    pub objective: f64,
    /// The training risk $\mathcal R(\mathbf b + K\mathbf c)$.
    pub risk: f64,
    /// $\|\mathbf g\|_K = (\mathbf g^\top K\mathbf g)^{1/2}$ with $\mathbf g = \mathbf r + \lambda\mathbf c$: the norm of
    /// the scaled velocity of the moving parameters (its square is the dissipation $-dJ/dt$).
    pub gradient_norm: f64,
    /// Newton steps taken.
    pub iterations: usize,
    /// Whether the Newton decrement fell to rounding level.
    pub converged: bool,
}

/// Minimize $F(\mathbf c) = \mathcal R(\mathbf b + K\mathbf c) + \frac\lambda2\mathbf c^\top K\mathbf c$ (see the
/// [module docs](self)) by damped Newton from $\mathbf c = 0$.
///
/// Gradient $\nabla F = K\mathbf g$ with $\mathbf g = \mathbf r + \lambda\mathbf c$, $r_i = \frac1N\partial_1\phi(f_i, y_i)$;
/// Hessian $KDK + \lambda K$ with $D = \operatorname{diag}(\frac1N\partial_1^2\phi)$. The Newton direction solves
/// $(DK + \lambda I)\Delta = -\mathbf g$ (it solves the full system $(KDK+\lambda K)\Delta = -K\mathbf g$); LU with
/// partial pivoting, backtracking (Armijo) on $F$. Stops when the Newton decrement $-(K\mathbf g)^\top\Delta$
/// is below $10^{-20}(1 + |F|)$ or after a full Newton step of at most $10^{-9}(1 + \|\mathbf c\|_\infty)$ (Newton's
/// quadratic convergence then leaves $\mathbf c$ exact to rounding).
///
/// Errors: shapes, a negative or non-finite $\lambda$, $\lambda = 0$ with the logistic loss, a singular system.
pub fn kernel_ridge(
    k: MatRef<'_, f64>,
    offset: &[f64],
    y: &[f64],
    loss: Loss,
    lambda: f64,
) -> Result<KernelFit> {
    let n = y.len();
    if k.nrows() != n || k.ncols() != n || offset.len() != n {
        return Err(CoreError::shape(
            "kernel problem",
            format!("a {n} x {n} kernel and {n} offsets"),
            format!(
                "a {} x {} kernel and {} offsets",
                k.nrows(),
                k.ncols(),
                offset.len()
            ),
        ));
    }
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(CoreError::invalid(
            "ridge lambda",
            "a finite value >= 0",
            lambda,
        ));
    }
    if lambda == 0.0 && loss == Loss::Logistic {
        return Err(CoreError::invalid(
            "ridge lambda for the logistic loss",
            "lambda > 0 (without a ridge the logistic loss has no minimizer on separable data)",
            lambda,
        ));
    }
    let kmul = |c: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|i| (0..n).map(|j| k[(i, j)] * c[j]).sum::<f64>())
            .collect()
    };
    let value = |c: &[f64], kc: &[f64]| -> (f64, Vec<f64>) {
        let f: Vec<f64> = offset.iter().zip(kc).map(|(b, u)| b + u).collect();
        let ridge = 0.5 * lambda * c.iter().zip(kc).map(|(a, b)| a * b).sum::<f64>();
        (loss.risk(&f, y) + ridge, f)
    };
    let mut c = vec![0.0; n];
    let mut kc = vec![0.0; n];
    let (mut obj, mut f) = value(&c, &kc);
    let mut converged = false;
    let mut iterations = 0;
    let mut r = vec![0.0; n];
    for it in 1..=MAX_NEWTON {
        loss.residual_into(&f, y, &mut r);
        let g: Vec<f64> = r.iter().zip(&c).map(|(r, c)| r + lambda * c).collect();
        let sys = Mat::from_fn(n, n, |i, j| {
            let d = loss.second_deriv(f[i], y[i]) / n as f64;
            d * k[(i, j)] + if i == j { lambda } else { 0.0 }
        });
        let rhs = Mat::from_fn(n, 1, |i, _| -g[i]);
        let delta = sys.partial_piv_lu().solve(&rhs);
        let delta: Vec<f64> = (0..n).map(|i| delta[(i, 0)]).collect();
        let residual = (0..n)
            .map(|i| {
                let row: f64 = (0..n).map(|j| sys[(i, j)] * delta[j]).sum();
                (row + g[i]).abs()
            })
            .fold(0.0, f64::max);
        let gmax = g.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        if delta.iter().any(|x| !x.is_finite()) || residual > 1e-6 * gmax.max(f64::MIN_POSITIVE) {
            return Err(CoreError::numerical(
                "the exact output fit",
                format!(
                    "the Newton system (D K + lambda I) is singular (lambda = {lambda}, N = {n}); use a ridge > 0"
                ),
            ));
        }
        let kg = kmul(&g);
        let decrement = -kg.iter().zip(&delta).map(|(a, b)| a * b).sum::<f64>();
        if decrement <= 1e-20 * (1.0 + obj.abs()) {
            converged = true;
            break;
        }
        let kd = kmul(&delta);
        let mut t = 1.0;
        let (mut accepted, mut stalled) = (false, false);
        for _ in 0..60 {
            let c_new: Vec<f64> = c.iter().zip(&delta).map(|(c, d)| c + t * d).collect();
            let kc_new: Vec<f64> = kc.iter().zip(&kd).map(|(u, d)| u + t * d).collect();
            let (o, f_new) = value(&c_new, &kc_new);
            // Armijo, with slack for the rounding of F near its minimum.
            if o <= obj - 1e-4 * t * decrement + 4.0 * f64::EPSILON * obj.abs() {
                // A full step this small: Newton's quadratic convergence leaves c exact to rounding.
                let cmax = c.iter().fold(0.0f64, |a, x| a.max(x.abs()));
                let dmax = delta.iter().fold(0.0f64, |a, x| a.max(x.abs()));
                stalled = t == 1.0 && dmax <= 1e-9 * (1.0 + cmax);
                (c, kc, obj, f) = (c_new, kc_new, o, f_new);
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        iterations = it;
        if stalled {
            converged = true;
            break;
        }
        if !accepted {
            // No decrease left to find: F is at its minimum to rounding when the decrement is tiny.
            converged = decrement <= 1e-14 * (1.0 + obj.abs());
            break;
        }
    }
    loss.residual_into(&f, y, &mut r);
    let g: Vec<f64> = r.iter().zip(&c).map(|(r, c)| r + lambda * c).collect();
    let gkg: f64 = kmul(&g).iter().zip(&g).map(|(a, b)| a * b).sum();
    Ok(KernelFit {
        risk: loss.risk(&f, y),
        c,
        yhat: f,
        lambda,
        objective: obj,
        gradient_norm: gkg.max(0.0).sqrt(),
        iterations,
        converged,
    })
}

/// The ridge chosen on a validation part, with every candidate's validation risk.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RidgeChoice {
    /// The $\lambda$ with the smallest validation risk (ties: the largest such $\lambda$).
    pub lambda: f64,
    /// $(\lambda, \text{validation risk})$ for every $\lambda$ of the grid, in grid order.
    pub val_risks: Vec<(f64, f64)>,
}

/// Validate a ridge grid: non-empty, every value finite and $\ge 0$.
pub fn check_grid(grid: &[f64]) -> Result<()> {
    if grid.is_empty() {
        return Err(CoreError::invalid(
            "ridge grid",
            "at least one lambda",
            "none",
        ));
    }
    if let Some(l) = grid.iter().find(|l| !(l.is_finite() && **l >= 0.0)) {
        return Err(CoreError::invalid("ridge grid", "finite values >= 0", l));
    }
    Ok(())
}

/// Evaluate `val_risk(λ)` on every $\lambda$ of `grid` and choose the smallest validation risk (ties: the
/// largest $\lambda$). A non-finite validation risk never wins.
pub fn choose_ridge(
    grid: &[f64],
    mut val_risk: impl FnMut(f64) -> Result<f64>,
) -> Result<RidgeChoice> {
    check_grid(grid)?;
    let mut val_risks = Vec::with_capacity(grid.len());
    let mut best: Option<(f64, f64)> = None;
    for &l in grid {
        let v = val_risk(l)?;
        val_risks.push((l, v));
        if v.is_finite() {
            let better = match best {
                None => true,
                Some((bl, bv)) => v < bv || (v == bv && l > bl),
            };
            if better {
                best = Some((l, v));
            }
        }
    }
    let Some((lambda, _)) = best else {
        return Err(CoreError::numerical(
            "the ridge choice",
            "no lambda of the grid gave a finite validation risk",
        ));
    };
    Ok(RidgeChoice { lambda, val_risks })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small positive-definite kernel.
    fn kernel(n: usize) -> Mat<f64> {
        let x = Mat::from_fn(n, 3, |i, j| ((i * 5 + j * 3) % 7) as f64 / 7.0 - 0.4);
        Mat::from_fn(n, n, |i, j| {
            let d: f64 = (0..3).map(|k| (x[(i, k)] - x[(j, k)]).powi(2)).sum();
            (-d).exp()
        })
    }

    #[test]
    fn squared_loss_solves_the_normal_equations_in_one_step() {
        let n = 6;
        let k = kernel(n);
        let y: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let b = vec![0.1; n];
        let lambda = 0.05;
        let fit = kernel_ridge(k.as_ref(), &b, &y, Loss::Squared, lambda).unwrap();
        assert!(fit.converged && fit.iterations == 1, "{fit:?}");
        // (K + N lambda I) c = y - b.
        for i in 0..n {
            let lhs: f64 =
                (0..n).map(|j| k[(i, j)] * fit.c[j]).sum::<f64>() + n as f64 * lambda * fit.c[i];
            assert!((lhs - (y[i] - b[i])).abs() < 1e-13, "{lhs}");
        }
        assert!(fit.gradient_norm < 1e-15, "{}", fit.gradient_norm);
    }

    #[test]
    fn logistic_fit_is_stationary_and_needs_a_ridge() {
        let n = 8;
        let k = kernel(n);
        let y: Vec<f64> = (0..n)
            .map(|i| if i % 3 == 0 { 1.0 } else { -1.0 })
            .collect();
        let b = vec![0.0; n];
        let fit = kernel_ridge(k.as_ref(), &b, &y, Loss::Logistic, 1e-3).unwrap();
        assert!(fit.converged, "{fit:?}");
        assert!(fit.gradient_norm < 1e-13, "{}", fit.gradient_norm);
        // F at the solution is below F at nearby points.
        let f_at = |c: &[f64]| {
            let kc: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| k[(i, j)] * c[j]).sum())
                .collect();
            let ridge: f64 = c.iter().zip(&kc).map(|(a, b)| a * b).sum::<f64>() * 0.5e-3;
            Loss::Logistic.risk(&kc, &y) + ridge
        };
        for i in 0..n {
            let mut c = fit.c.clone();
            c[i] += 1e-3;
            assert!(f_at(&c) >= fit.objective);
        }
        let e = kernel_ridge(k.as_ref(), &b, &y, Loss::Logistic, 0.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lambda > 0"), "{e}");
    }

    #[test]
    fn ridge_choice_takes_the_smallest_validation_risk() {
        let c = choose_ridge(&[1.0, 0.1, 0.01], |l| Ok((l - 0.1f64).abs())).unwrap();
        assert_eq!(c.lambda, 0.1);
        assert_eq!(c.val_risks.len(), 3);
        let tie = choose_ridge(&[0.5, 2.0], |_| Ok(1.0)).unwrap();
        assert_eq!(tie.lambda, 2.0);
        assert!(choose_ridge(&[], |_| Ok(0.0)).is_err());
        assert!(choose_ridge(&[-1.0], |_| Ok(0.0)).is_err());
    }
}
