//! The repopulated two-level program of math.md §4.1 on a finite candidate set, solved to a certified
//! duality gap.
//!
//! # The program
//! Candidates $\theta_1..\theta_K\in\mathbb R^d$ (rows of `theta`), a reference probability vector $\rho_0 > 0$,
//! features $H\in\mathbb R^{N\times K}$, $H_{ik} = h(\theta_k^\top x^i)$, costs $c_k = \|\theta_k\|^2/2$. With the
//! repopulated output weight $\tilde u$ and the population $\rho$ on the simplex $\Delta_K$, write
//! $w_k = \rho_{0k}\tilde u_k$ (so $\hat{\mathbf y} = Hw = \int\tilde u\,h\,d\rho_0$, independent of $\rho$) and minimize
//! $$P(w,\rho) = \underbrace{\tfrac1N\textstyle\sum_i\phi\big((Hw)_i, y^i\big)}_{F(Hw)} + \lambda_1\sum_k\frac{w_k^2}{2\rho_k} +
//!   \lambda_2\sum_k\rho_k c_k + \tau\sum_k\rho_k\log\frac{\rho_k}{\rho_{0k}},\qquad \rho\in\Delta_K,$$
//! with $0^2/0 = 0$ and $w_k^2/0 = +\infty$ for $w_k\ne0$. $\lambda_1\sum w^2/2\rho = \lambda_1\int\rho\,r_u(\bar u)$ is the
//! perspective of $r_u = u^2/2$ in the original output weight $\bar u_k = w_k/\rho_k$; the whole objective is
//! jointly convex in $(w,\rho)$ (equivalently in $(\tilde u,\rho)$), but **not** in $(\bar u,\rho)$ (claim C8).
//! A width-$m$ two-level network $f = \frac1m\sum_j v_j h(a_j^\top x)$ with L2 penalties
//! $\frac{\lambda_2}{2m}\|A\|^2 + \frac{\lambda_1}{2m}\|v\|^2$ is the point $\theta = a_j$, $\rho = \rho_0 = 1/m$, $w = v/m$, and
//! there $P$ equals its objective $J$ ([`TwoLevelProgram::from_network`]).
//!
//! # The Fenchel dual \[derived\]
//! Eliminating $\rho$ gives $\min_w F(Hw) + g(w)$ with the convex
//! $g(w) = \min_{\rho\in\Delta}\lambda_1\sum_k w_k^2/2\rho_k + \sum_k a_k\rho_k + \tau\,\mathrm{KL}(\rho\|\rho_0)$, $a_k = \lambda_2c_k$.
//! Its conjugate: $\sup_{w_k}\ s_kw_k - \lambda_1w_k^2/2\rho_k = \rho_k s_k^2/2\lambda_1$, hence with
//! $b_k(s) = \frac{s_k^2}{2\lambda_1} - a_k$,
//! $$g^*(s) = \sup_{\rho\in\Delta}\ \sum_k\rho_kb_k(s) - \tau\,\mathrm{KL}(\rho\|\rho_0) = \begin{cases}\max_k b_k(s) & \tau = 0,\\
//! \tau\log\sum_k\rho_{0k}e^{b_k(s)/\tau} & \tau > 0.\end{cases}$$
//! Fenchel–Rockafellar duality ($\min_w F(Hw) + g(w) \ge \max_{\mathbf p} -F^*(\mathbf p) - g^*(-H^\top\mathbf p)$, and $g^*$
//! depends on $s$ only through $s_k^2$) gives the **dual**
//! $$D(\mathbf p) = -F^*(\mathbf p) - g^*(H^\top\mathbf p),\qquad s_k = \textstyle\sum_i p^i h(\theta_k^\top x^i),$$
//! with $F^*$ from [`crate::conjugate`]. At $\mathbf p = \mathbf r$ (the residual of math.md §1) $s$ is the
//! function $s(\theta)$ of the §4.1 certificate. Weak duality $P(w,\rho)\ge D(\mathbf p)$ holds for every feasible
//! $(w,\rho)$ and every $\mathbf p$, and **the gap** $P - D$ certifies optimality: $P(w,\rho) - P^\star \le P - D$.
//! Expanding with Fenchel–Young,
//! $$P(w,\rho) - D(\mathbf p) = \underbrace{F(Hw) + F^*(\mathbf p) - \mathbf p^\top Hw}_{\ge0,\ =0\iff\mathbf p=\mathbf r(Hw)} +
//!   \underbrace{\sum_k\Big[\lambda_1\frac{w_k^2}{2\rho_k} + s_kw_k + \rho_k\frac{s_k^2}{2\lambda_1}\Big]}_{\ge0,\ =0\iff w_k = -\rho_ks_k/\lambda_1} +
//!   \underbrace{g^*(s) - \textstyle\sum_k\rho_kb_k + \tau\,\mathrm{KL}(\rho\|\rho_0)}_{\ge0},$$
//! so the optimum is characterized by $\mathbf p = \mathbf r$, $\bar u_k = -s_k/\lambda_1$ (math.md: $\mathbb E[u|\theta] = -s/\lambda_1$), and
//! $\rho$ maximizing $\sum\rho b - \tau\mathrm{KL}$: for $\tau=0$, $\rho$ lives on $\arg\max_k b_k$ — the certificate
//! $s^2/2\lambda_1 \le \lambda_2 r_\theta + c$ with equality on the support (C10); for $\tau > 0$ the Gibbs law
//! $\rho\propto\rho_0e^{b/\tau}$ (C12).
//!
//! # The solver
//! The dual lives in $\mathbb R^N$ (N ≤ a few dozen), so it is solved by Newton's method, and the primal is
//! recovered from the dual by the optimality relations above (then $P$ is evaluated exactly at the recovered
//! feasible point and the gap is an honest certificate):
//! - $\tau > 0$: $\min_{\mathbf p}\Phi(\mathbf p) = F^*(\mathbf p) + \tau\log\sum\rho_0e^{b/\tau}$ is smooth and convex; damped
//!   Newton with backtracking from the best point of the ray $t\,\mathbf r(0)$, the Newton systems solved by conjugate
//!   gradients preconditioned with the exact Hessian of an earlier iterate (refreshed only when CG slows down).
//!   $\rho = \mathrm{softmax}(\log\rho_0 + b/\tau)$, $w = -\rho s/\lambda_1$.
//! - $\tau = 0$: $\min_{\mathbf p,t} F^*(\mathbf p) + t$ s.t. $b_k(\mathbf p)\le t$ — a convex QCQP in $N+1$ variables, written as
//!   a second-order-cone program and solved by a primal–dual interior-point method with Nesterov–Todd scaling and
//!   Mehrotra's predictor–corrector ([`ipm`]); the cone multipliers are the primal point ($\rho_k = z_{k0} + z_{k1}$,
//!   $w_k = \sqrt2z_{k2}$). Each iteration is one weighted Gram product $H\,\mathrm{diag}(c)H^\top$ ($\approx N^2K$ flops) and a
//!   Cholesky of size $N+1$; 15–25 iterations for $K$ up to $10^4$. Near the optimum the active set is polished
//!   by Newton's method on the restricted optimality system ([`TwoLevelIpm::polish`]).
//!
//! Every solve reports the gap, the relative gap $(P - D)/|P|$, KKT residuals at the recovered point and the
//! §4.1 diagnostics ([`TwoLevelDiagnostics`]).
use crate::conjugate::{conj_deriv, conj_interior, conj_second, risk_conjugate, xlogx};
use crate::error::{ensure_finite, ensure_nonneg, Result, SolverError};
use crate::lbfgs::Termination;
use crate::linalg::{
    matvec, matvec_t, par_for, weighted_gram_into, weighted_gram_matvec, SpdFactor,
};
use faer::{Mat, MatRef};
use nff_core::{Activation, Dataset, Loss, Network, Problem, Regularizer};
use serde::Serialize;
use std::time::Instant;

pub mod ipm;
pub use ipm::{IpmCertificate, IpmStep, TwoLevelIpm};

/// Iterations without a 10% decrease of the certified gap after which the interior point stops.
const STALL_ITERATIONS: usize = 10;

/// Relative gap below which the interior point tries [`TwoLevelIpm::polish`] at every iterate.
const POLISH_BELOW: f64 = 1e-5;

/// Regularization strengths of the two-level program.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct TwoLevelConfig {
    /// $\lambda_1 > 0$: output-weight penalty (it makes the dual finite).
    pub lambda1: f64,
    /// $\lambda_2 \ge 0$: feature penalty $\lambda_2\int\|\theta\|^2/2\,d\rho$.
    pub lambda2: f64,
    /// $\tau \ge 0$: entropy $\tau\,\mathrm{KL}(\rho\|\rho_0)$.
    pub tau: f64,
}

/// Options of [`TwoLevelProgram::solve`].
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TwoLevelOptions {
    /// Target relative gap $(P - D)/|P|$.
    pub tol_gap: f64,
    /// Limit on Newton steps.
    pub max_newton: usize,
    /// A candidate is in the support when $\rho_k >$ `support_tol` $\cdot\max\rho$ (diagnostics only).
    pub support_tol: f64,
    /// Threads of the $O(N^2K)$ Gram products (1: sequential). Results do not depend on it beyond rounding.
    pub threads: usize,
}

impl Default for TwoLevelOptions {
    fn default() -> Self {
        Self {
            tol_gap: 1e-11,
            max_newton: 2000,
            support_tol: 1e-6,
            threads: 1,
        }
    }
}

/// A validated two-level program: data, activation, loss, candidates, reference weights and strengths.
#[derive(Clone, Debug)]
pub struct TwoLevelProgram {
    loss: Loss,
    y: Vec<f64>,
    theta: Mat<f64>,
    rho0: Vec<f64>,
    cfg: TwoLevelConfig,
    /// $H_{ik} = h(\theta_k^\top x^i)$.
    h: Mat<f64>,
    /// $a_k = \lambda_2\|\theta_k\|^2/2$.
    a: Vec<f64>,
    /// $\log\rho_{0k}$.
    log_rho0: Vec<f64>,
}

/// KKT residuals at the returned point, computed from its own residual $\mathbf r = \nabla F(Hw)$ and
/// $s = H^\top\mathbf r$ (independent of the solver's internals).
#[derive(Clone, Debug, Serialize)]
pub struct TwoLevelKkt {
    /// $\max_{k:\rho_k>0}|s_k + \lambda_1 w_k/\rho_k|$: stationarity in $w$ ($\bar u = -s/\lambda_1$).
    pub stationarity_w: f64,
    /// $\tau = 0$: spread $\max - \min$ of $b_k = s_k^2/2\lambda_1 - \lambda_2c_k$ over the support (0 at the optimum);
    /// $\tau > 0$: spread of $b_k - \tau\log(\rho_k/\rho_{0k})$ over all $k$ (0 at the optimum: the Gibbs law).
    pub density_spread: f64,
    /// $\tau = 0$: $\max_k b_k - \max_{\rm support} b_k$ (> 0: a candidate outside the support would lower $P$).
    /// $\tau > 0$: 0.
    pub density_violation: f64,
    /// $|\sum\rho - 1| + \max(0, -\min\rho)$.
    pub simplex_residual: f64,
}

/// The §4.1 diagnostics at the returned point.
#[derive(Clone, Debug, Serialize)]
pub struct TwoLevelDiagnostics {
    /// $\min_{\rho\in\Delta}\sum_k\tilde u_k^2\rho_{0k}^2/\rho_k$ computed numerically ([`minimize_over_simplex`]).
    pub l2_to_l1_min: f64,
    /// The closed form $(\sum_k|\tilde u_k|\rho_{0k})^2$.
    pub l2_to_l1_closed_form: f64,
    /// $|$numerical $-$ closed form$|/$closed form (0 up to rounding: the L2→L1 identity).
    pub l2_to_l1_rel_error: f64,
    /// $\max_k|\rho^{\rm num}_k - \rho^\star_k|$ between the numerical argmin and $\rho^\star\propto|\tilde u|\rho_0$.
    pub l2_to_l1_argmin_error: f64,
    /// $\|\rho - |w|/\|w\|_1\|_1$: distance of the solution's population to the importance law
    /// $\rho^\star\propto|\tilde u|\rho_0$ (0 at the optimum when $\lambda_2 = \tau = 0$).
    pub importance_law_deviation: f64,
    /// $(\max - \min)/\max$ of $|\bar u_k| = |w_k|/\rho_k$ over the support (balance, claim C23; 0 at the optimum
    /// when $\lambda_2 = \tau = 0$).
    pub balance_spread: f64,
    /// Number of candidates with $\rho_k >$ `support_tol`$\cdot\max\rho$.
    pub support_size: usize,
}

/// The result of a two-level solve (serializable for `summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct TwoLevelSolution {
    /// $P(w,\rho)$, evaluated exactly at the returned feasible point.
    pub objective: f64,
    /// The best dual value $D(\mathbf p)$ found (a certified lower bound on the optimum).
    pub dual_objective: f64,
    /// $P - D \ge 0$.
    pub gap: f64,
    /// $(P - D)/|P|$.
    pub relative_gap: f64,
    /// $w_k = \rho_{0k}\tilde u_k$.
    pub w: Vec<f64>,
    /// The population $\rho\in\Delta_K$.
    pub rho: Vec<f64>,
    /// The repopulated output weights $\tilde u_k = w_k/\rho_{0k}$.
    pub u_tilde: Vec<f64>,
    /// The original output weights $\bar u_k = w_k/\rho_k$ (0 where $\rho_k = 0$).
    pub u_bar: Vec<f64>,
    /// Predictions $Hw$ on the training points.
    pub predictions: Vec<f64>,
    /// The dual point $\mathbf p$ attaining `dual_objective`.
    pub dual_point: Vec<f64>,
    /// $s = H^\top\mathbf r$ at the returned point.
    pub s: Vec<f64>,
    /// KKT residuals.
    pub kkt: TwoLevelKkt,
    /// §4.1 diagnostics.
    pub diagnostics: TwoLevelDiagnostics,
    /// Newton steps.
    pub iterations: usize,
    /// Wall time of the solve, seconds.
    pub seconds: f64,
    /// Why the solver stopped.
    pub termination: Termination,
    /// `"dual-newton"` ($\tau > 0$) or `"dual-interior-point"` ($\tau = 0$).
    pub method: String,
}

impl TwoLevelProgram {
    /// A validated program.
    ///
    /// Errors (with the requirement and the value found): data invalid or not matching `theta`'s
    /// columns, $K = 0$, non-finite candidates, `rho0` of the wrong length, not positive or not summing
    /// to 1 (within $10^{-9}$), $\lambda_1 \le 0$, $\lambda_2 < 0$, $\tau < 0$, NaN anywhere, logistic labels not $\pm1$.
    pub fn new(
        data: &Dataset,
        activation: Activation,
        loss: Loss,
        theta: MatRef<'_, f64>,
        rho0: &[f64],
        cfg: TwoLevelConfig,
    ) -> Result<Self> {
        data.validate()?;
        let (n, d) = (data.n(), data.d());
        let k = theta.nrows();
        if k == 0 {
            return Err(SolverError::invalid(
                "candidate set",
                "at least one candidate (K >= 1)",
                "K = 0",
            ));
        }
        if theta.ncols() != d {
            return Err(SolverError::shape(
                "candidates theta",
                format!("{d} columns (the data's input dimension)"),
                format!("{} columns", theta.ncols()),
            ));
        }
        ensure_finite(
            "candidates theta",
            (0..k).flat_map(|i| (0..d).map(move |c| theta[(i, c)])),
        )?;
        if rho0.len() != k {
            return Err(SolverError::shape(
                "reference weights rho0",
                format!("{k} entries (one per candidate)"),
                format!("{} entries", rho0.len()),
            ));
        }
        ensure_finite("reference weights rho0", rho0.iter().copied())?;
        if let Some((i, &x)) = rho0.iter().enumerate().find(|(_, &x)| x <= 0.0) {
            return Err(SolverError::invalid(
                "reference weights rho0",
                "a probability vector with full support (every entry > 0)",
                format!("{x} at index {i}"),
            ));
        }
        let sum: f64 = rho0.iter().sum();
        if (sum - 1.0).abs() > 1e-9 {
            return Err(SolverError::invalid(
                "reference weights rho0",
                "a probability vector (entries summing to 1)",
                format!("sum {sum}"),
            ));
        }
        if !(cfg.lambda1.is_finite() && cfg.lambda1 > 0.0) {
            return Err(SolverError::invalid(
                "lambda1 (output-weight penalty)",
                "a finite value > 0",
                cfg.lambda1,
            ));
        }
        ensure_nonneg("lambda2 (feature penalty)", cfg.lambda2)?;
        ensure_nonneg("tau (entropy)", cfg.tau)?;
        if loss == Loss::Logistic {
            if let Some(y) = data.y.iter().find(|&&y| y != 1.0 && y != -1.0) {
                return Err(SolverError::invalid(
                    "targets for the logistic loss",
                    "labels in {-1, +1}",
                    y,
                ));
            }
        }
        let h = Mat::from_fn(n, k, |i, kk| {
            let z: f64 = (0..d).map(|c| data.x[(i, c)] * theta[(kk, c)]).sum();
            activation.value(z)
        });
        let a = (0..k)
            .map(|kk| cfg.lambda2 * 0.5 * (0..d).map(|c| theta[(kk, c)].powi(2)).sum::<f64>())
            .collect();
        Ok(Self {
            loss,
            y: data.y.clone(),
            theta: theta.to_owned(),
            rho0: rho0.to_vec(),
            log_rho0: rho0.iter().map(|r| r.ln()).collect(),
            cfg,
            h,
            a,
        })
    }

    /// The program of a width-$m$ two-level network with an L2 regularizer (`L2` or `L2Split`):
    /// candidates $\theta_j = a_j$, $\rho_0 = 1/m$, $\lambda_1 = \lambda_v$, $\lambda_2 = \lambda_A$, $\tau$ as given,
    /// and the network's point $(w, \rho) = (v/m, 1/m)$. With $\tau = 0$, `objective(w, rho)` equals the
    /// network's objective $J$.
    pub fn from_network(
        problem: &Problem,
        net: &Network,
        tau: f64,
    ) -> Result<(Self, Vec<f64>, Vec<f64>)> {
        problem.check_network(net)?;
        let s = net.shape();
        if s.depth != 1 {
            return Err(SolverError::invalid(
                "network depth",
                "a two-level network (depth 1)",
                s.depth,
            ));
        }
        let (la, lv) = match problem.reg {
            Regularizer::L2 { lambda } => (lambda, lambda),
            Regularizer::L2Split { a, v, .. } => (a, v),
            other => {
                return Err(SolverError::invalid(
                    "regularizer",
                    "L2 or L2Split (the quadratic penalties of §4.1)",
                    format!("{other:?}"),
                ))
            }
        };
        let m = s.m;
        let theta = net.a().transpose().to_owned();
        let rho0 = vec![1.0 / m as f64; m];
        let prog = Self::new(
            &problem.data,
            problem.activation,
            problem.loss,
            theta.as_ref(),
            &rho0,
            TwoLevelConfig {
                lambda1: lv,
                lambda2: la,
                tau,
            },
        )?;
        let w = net.v().iter().map(|v| v / m as f64).collect();
        Ok((prog, w, rho0))
    }

    /// Number of candidates $K$.
    pub fn k(&self) -> usize {
        self.rho0.len()
    }
    /// Number of data points $N$.
    pub fn n(&self) -> usize {
        self.y.len()
    }
    /// The strengths.
    pub fn config(&self) -> TwoLevelConfig {
        self.cfg
    }
    /// The candidates ($K\times d$).
    pub fn theta(&self) -> MatRef<'_, f64> {
        self.theta.as_ref()
    }
    /// The reference weights $\rho_0$.
    pub fn rho0(&self) -> &[f64] {
        &self.rho0
    }
    /// The feature matrix $H$ ($N\times K$).
    pub fn features(&self) -> MatRef<'_, f64> {
        self.h.as_ref()
    }

    /// Predictions $Hw$.
    pub fn predictions(&self, w: &[f64]) -> Vec<f64> {
        let mut yhat = vec![0.0; self.n()];
        matvec(self.h.as_ref(), w, &mut yhat);
        yhat
    }

    /// $P(w,\rho)$ exactly as defined in the module docs ($+\infty$ if some $\rho_k < 0$ or $w_k\ne0 = \rho_k$).
    /// $\rho$ is taken as given (the caller keeps it on the simplex).
    pub fn objective(&self, w: &[f64], rho: &[f64]) -> f64 {
        assert_eq!(w.len(), self.k(), "w has the wrong length");
        assert_eq!(rho.len(), self.k(), "rho has the wrong length");
        let yhat = self.predictions(w);
        let risk = self.loss.risk(&yhat, &self.y);
        risk + self.regularizer(w, rho)
    }

    /// The regularizer part $\lambda_1\sum w^2/2\rho + \sum a\rho + \tau\,\mathrm{KL}(\rho\|\rho_0)$.
    fn regularizer(&self, w: &[f64], rho: &[f64]) -> f64 {
        let mut acc = 0.0;
        for k in 0..self.k() {
            let (wk, rk) = (w[k], rho[k]);
            if rk < 0.0 || !rk.is_finite() {
                return f64::INFINITY;
            }
            if rk == 0.0 {
                if wk != 0.0 {
                    return f64::INFINITY;
                }
                continue;
            }
            acc += self.cfg.lambda1 * wk * wk / (2.0 * rk) + self.a[k] * rk;
            if self.cfg.tau > 0.0 {
                acc += self.cfg.tau * rk * (rk / self.rho0[k]).ln();
            }
        }
        acc
    }

    /// The repopulated objective $\tilde Q(\tilde u,\rho) = P(\rho_0\tilde u, \rho)$ — jointly convex (C8).
    pub fn objective_repopulated(&self, u_tilde: &[f64], rho: &[f64]) -> f64 {
        let w: Vec<f64> = u_tilde.iter().zip(&self.rho0).map(|(u, r)| u * r).collect();
        self.objective(&w, rho)
    }

    /// The same objective in the original variables, $Q(\bar u,\rho) = P(\rho\bar u, \rho)$ — not convex (C8).
    pub fn objective_original(&self, u_bar: &[f64], rho: &[f64]) -> f64 {
        let w: Vec<f64> = u_bar.iter().zip(rho).map(|(u, r)| u * r).collect();
        self.objective(&w, rho)
    }

    /// $s = H^\top\mathbf p$ and $b_k = s_k^2/2\lambda_1 - a_k$.
    fn s_b(&self, p: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let mut s = vec![0.0; self.k()];
        matvec_t(self.h.as_ref(), p, &mut s);
        let b = s
            .iter()
            .zip(&self.a)
            .map(|(sk, ak)| sk * sk / (2.0 * self.cfg.lambda1) - ak)
            .collect();
        (s, b)
    }

    /// $g^*(s) = \max_k b_k$ ($\tau = 0$) or $\tau\log\sum_k\rho_{0k}e^{b_k/\tau}$, and the maximizing $\rho$
    /// (softmax; for $\tau = 0$ the indicator of the first maximizer).
    fn g_conj(&self, b: &[f64]) -> (f64, Vec<f64>) {
        let tau = self.cfg.tau;
        if tau == 0.0 {
            let (imax, bmax) =
                b.iter()
                    .copied()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |acc, (i, v)| {
                            if v > acc.1 {
                                (i, v)
                            } else {
                                acc
                            }
                        },
                    );
            let mut rho = vec![0.0; b.len()];
            rho[imax] = 1.0;
            (bmax, rho)
        } else {
            let e: Vec<f64> = b
                .iter()
                .zip(&self.log_rho0)
                .map(|(bk, lr0)| lr0 + bk / tau)
                .collect();
            let m = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = e.iter().map(|v| (v - m).exp()).sum();
            let lse = m + z.ln();
            let rho = e.iter().map(|v| (v - lse).exp()).collect();
            (tau * lse, rho)
        }
    }

    /// The dual objective $D(\mathbf p) = -F^*(\mathbf p) - g^*(H^\top\mathbf p)$ (a lower bound on $\min P$ for
    /// every $\mathbf p$; $-\infty$ outside $\operatorname{dom}F^*$).
    pub fn dual_objective(&self, p: &[f64]) -> f64 {
        assert_eq!(p.len(), self.n(), "dual point has the wrong length");
        let fc = risk_conjugate(self.loss, p, &self.y);
        if !fc.is_finite() {
            return f64::NEG_INFINITY;
        }
        let (_, b) = self.s_b(p);
        -fc - self.g_conj(&b).0
    }

    /// The residual $\mathbf r = \nabla F(\hat{\mathbf y})$, $r^i = \phi'(\hat y^i, y^i)/N$.
    pub fn residual(&self, yhat: &[f64]) -> Vec<f64> {
        self.loss.residual(yhat, &self.y)
    }

    /// $\min_{\rho\in\Delta} \lambda_1\sum w^2/2\rho + \sum a\rho + \tau\mathrm{KL}$ for this program: the reduced
    /// regularizer $g(w)$ and its minimizing $\rho$.
    pub fn best_rho(&self, w: &[f64]) -> (Vec<f64>, f64) {
        minimize_over_simplex(w, self.cfg.lambda1, &self.a, self.cfg.tau, &self.rho0)
    }

    /// Solve the program by the dual Newton / interior-point method of the module docs.
    pub fn solve(&self, opts: &TwoLevelOptions) -> Result<TwoLevelSolution> {
        if !(opts.tol_gap.is_finite() && opts.tol_gap > 0.0) {
            return Err(SolverError::invalid(
                "gap tolerance",
                "a finite value > 0",
                opts.tol_gap,
            ));
        }
        if opts.threads == 0 {
            return Err(SolverError::invalid("threads", "at least 1", 0));
        }
        if !(opts.support_tol.is_finite() && opts.support_tol >= 0.0) {
            return Err(SolverError::invalid(
                "support tolerance",
                "a finite value >= 0",
                opts.support_tol,
            ));
        }
        let start = Instant::now();
        let out = if self.cfg.tau > 0.0 {
            self.solve_smooth_dual(opts)?
        } else {
            self.solve_barrier(opts)?
        };
        let (w, rho, p, iterations, _, termination, method) = out;
        let mut sol = self.assemble(w, rho, &p, opts);
        sol.iterations = iterations;
        sol.termination = termination;
        sol.method = method.into();
        sol.seconds = start.elapsed().as_secs_f64();
        Ok(sol)
    }

    /// The starting dual point $\mathbf p_0 = \mathbf r(\hat{\mathbf y} = 0)$ (interior of $\operatorname{dom}F^*$).
    fn p_start(&self) -> Vec<f64> {
        self.residual(&vec![0.0; self.n()])
    }

    /// $\nabla F^*$ and the diagonal of $\nabla^2F^*$ at $\mathbf p$; `None` outside the interior of the domain.
    fn conj_grad_hess(&self, p: &[f64]) -> Option<(f64, Vec<f64>, Vec<f64>)> {
        let n = self.n() as f64;
        let mut g = Vec::with_capacity(p.len());
        let mut hd = Vec::with_capacity(p.len());
        for (&pi, &yi) in p.iter().zip(&self.y) {
            if !conj_interior(self.loss, n * pi, yi) {
                return None;
            }
            g.push(conj_deriv(self.loss, n * pi, yi));
            hd.push(n * conj_second(self.loss, n * pi, yi));
        }
        Some((risk_conjugate(self.loss, p, &self.y), g, hd))
    }

    /// $\tau > 0$: the smooth dual at $\mathbf p$ into `ws`: $s = H^\top\mathbf p$, the Gibbs law $\rho$ (one exponential per
    /// candidate) and $\Phi(\mathbf p) = F^*(\mathbf p) + \tau\log\sum\rho_0e^{b/\tau}$ ($+\infty$ outside the domain).
    fn smooth_eval(&self, p: &[f64], ws: &mut SmoothWork) -> f64 {
        // Outside the domain, no product is needed.
        if !self.in_conj_domain(p) {
            return f64::INFINITY;
        }
        matvec_t(self.h.as_ref(), p, &mut ws.s);
        self.smooth_eval_at(p, ws)
    }

    /// Whether $\mathbf p$ is in the interior of the domain of $F^*$.
    fn in_conj_domain(&self, p: &[f64]) -> bool {
        let n = self.n() as f64;
        p.iter()
            .zip(&self.y)
            .all(|(&pi, &yi)| conj_interior(self.loss, n * pi, yi))
    }

    /// [`Self::smooth_eval`] with `ws.s` $= H^\top\mathbf p$ already in place.
    fn smooth_eval_at(&self, p: &[f64], ws: &mut SmoothWork) -> f64 {
        if !self.in_conj_domain(p) {
            return f64::INFINITY;
        }
        let fc = risk_conjugate(self.loss, p, &self.y);
        if !fc.is_finite() {
            return f64::INFINITY;
        }
        self.gibbs(ws);
        fc + self.cfg.tau * ws.lse
    }

    /// The Gibbs law $\rho = \mathrm{softmax}(\log\rho_0 + b/\tau)$ of `ws.s` into `ws.rho` and its log-normalizer into `ws.lse`.
    fn gibbs(&self, ws: &mut SmoothWork) {
        let (l1, tau) = (self.cfg.lambda1, self.cfg.tau);
        let mut m = f64::NEG_INFINITY;
        for ((e, sk), (ak, lr0)) in ws
            .rho
            .iter_mut()
            .zip(&ws.s)
            .zip(self.a.iter().zip(&self.log_rho0))
        {
            *e = lr0 + (sk * sk / (2.0 * l1) - ak) / tau;
            m = m.max(*e);
        }
        let mut z = 0.0;
        for e in ws.rho.iter_mut() {
            *e = (*e - m).exp();
            z += *e;
        }
        for r in ws.rho.iter_mut() {
            *r /= z;
        }
        ws.lse = m + z.ln();
    }

    /// $\tau > 0$: Newton's method on $\Phi(\mathbf p) = F^*(\mathbf p) + g^*(H^\top\mathbf p)$ with backtracking.
    ///
    /// The Newton systems $\nabla^2\Phi\,\mathbf d = -\nabla\Phi$ are solved by conjugate gradients on Hessian–vector
    /// products ($\nabla^2\Phi\mathbf v = \mathrm{diag}(\nabla^2F^*)\mathbf v + H(c\circ H^\top\mathbf v) - \bar{\mathbf g}\bar{\mathbf g}^\top\mathbf v/\tau$,
    /// $4NK$ flops), preconditioned by the Cholesky factor of the exact Hessian at an earlier iterate (one weighted
    /// Gram product, $N^2K$ flops, recomputed only when the stale factor needs more than [`REFRESH_CG`] CG
    /// steps). The forcing term $\eta = \min(0.1, \sqrt{\|\nabla\Phi\|/\|\nabla\Phi_0\|})$ keeps the convergence
    /// superlinear. The certificate (exact $P$ at the recovered feasible point, exact $D$) is evaluated at every iterate.
    #[allow(clippy::type_complexity)]
    fn solve_smooth_dual(
        &self,
        opts: &TwoLevelOptions,
    ) -> Result<(
        Vec<f64>,
        Vec<f64>,
        Vec<f64>,
        usize,
        usize,
        Termination,
        &'static str,
    )> {
        let (n, k) = (self.n(), self.k());
        let l1 = self.cfg.lambda1;
        let tau = self.cfg.tau;
        let par = par_for(opts.threads, 2.0 * (n * n * k) as f64);
        let mut ws = SmoothWork {
            s: vec![0.0; k],
            rho: vec![0.0; k],
            lse: 0.0,
        };
        let mut trial = SmoothWork {
            s: vec![0.0; k],
            rho: vec![0.0; k],
            lse: 0.0,
        };
        // Start on the ray t·r(0), t ∈ (0, 1], at the best of a geometric grid of scales: at t = 1 the Gibbs law
        // is typically a near-point mass (small τ) and Newton's method would spend its first steps damped.
        // H^T(t p) = t H^T p exactly for t a power of two: one product for the whole scan.
        let p_ray = self.p_start();
        let mut p = p_ray.clone();
        let mut f0 = self.smooth_eval(&p, &mut ws);
        if f0.is_finite() {
            let s_ray = ws.s.clone();
            let mut pt = vec![0.0; n];
            let mut t = 1.0;
            for _ in 0..START_SCALES {
                t *= 0.5;
                for i in 0..n {
                    pt[i] = t * p_ray[i];
                }
                for (st, sr) in trial.s.iter_mut().zip(&s_ray) {
                    *st = t * sr;
                }
                let ft = self.smooth_eval_at(&pt, &mut trial);
                if ft < f0 {
                    f0 = ft;
                    std::mem::swap(&mut p, &mut pt);
                    std::mem::swap(&mut ws, &mut trial);
                } else if ft.is_finite() {
                    break;
                }
            }
        }
        if !f0.is_finite() {
            return Err(SolverError::numerical(
                "two-level dual Newton",
                "start point outside the domain of F*",
            ));
        }
        let mut pn = vec![0.0; n];
        let mut w = vec![0.0; k];
        let mut coef = vec![0.0; k];
        let mut tk = vec![0.0; k];
        let mut gbar = vec![0.0; n];
        let mut grad = vec![0.0; n];
        let mut hd = vec![0.0; n];
        let mut precond: Option<SpdFactor> = None;
        // Blocks of about 64 KiB of H diag(c) for the Gram product (below the allocator's mmap threshold), and
        // the Hessian.
        let mut gram_buf = Mat::<f64>::zeros(n, (8192 / n.max(1)).clamp(8, k.max(8)));
        let mut hess = Mat::<f64>::zeros(n, n);
        let mut refresh = true;
        let mut g0norm = f64::NAN;
        let mut termination = Termination::MaxIterations;
        let mut it = 0;
        let mut best: Option<(f64, Vec<f64>, Vec<f64>, Vec<f64>)> = None;
        let mut damped = false;
        let mut certified;
        let nf = n as f64;
        loop {
            // Certificate at the recovered primal point w = −ρs/λ₁ (Hw = −ḡ).
            for kk in 0..k {
                coef[kk] = ws.rho[kk] * ws.s[kk] / l1;
                w[kk] = -coef[kk];
            }
            // After a damped step the iterate is still far from the optimum: the certificate is skipped there
            // (it is evaluated at the start, after every full Newton step, and at the last iterate).
            certified = it == 0 || !damped || it >= opts.max_newton;
            if certified {
                let pval = self.objective(&w, &ws.rho);
                let gap = pval + f0;
                if best.as_ref().is_none_or(|bst| gap < bst.0) {
                    best = Some((gap, w.clone(), ws.rho.clone(), p.clone()));
                }
                if gap <= opts.tol_gap * pval.abs().max(f64::MIN_POSITIVE) {
                    termination = Termination::Converged;
                    break;
                }
                if it >= opts.max_newton {
                    break;
                }
            }
            // Gradient ∇Φ = ∇F* + H(ρs/λ₁) and the diagonal of ∇²F*.
            matvec(self.h.as_ref(), &coef, &mut gbar);
            for i in 0..n {
                let (pi, yi) = (nf * p[i], self.y[i]);
                grad[i] = conj_deriv(self.loss, pi, yi) + gbar[i];
                hd[i] = nf * conj_second(self.loss, pi, yi);
            }
            let gnorm = norm(&grad);
            if it == 0 {
                g0norm = gnorm;
            }
            // ∇²Φ = diag(∇²F*) + H diag(c) Hᵀ − ḡḡᵀ/τ, c = ρ(1/λ₁ + s²/τλ₁²).
            for kk in 0..k {
                let sk = ws.s[kk];
                coef[kk] = ws.rho[kk] * (1.0 / l1 + sk * sk / (tau * l1 * l1));
            }
            if refresh || precond.is_none() {
                weighted_gram_into(self.h.as_ref(), &coef, par, &mut gram_buf, &mut hess);
                for j in 0..n {
                    hess[(j, j)] += hd[j];
                    for i in 0..n {
                        hess[(i, j)] -= gbar[i] * gbar[j] / tau;
                    }
                }
                precond = Some(SpdFactor::new(&hess).ok_or_else(|| {
                    SolverError::numerical("two-level dual Newton", "singular Newton system")
                })?);
            }
            let fac = precond.as_ref().expect("factor computed above");
            let eta = (gnorm / g0norm).min(0.1);
            let hv = |v: &[f64], out: &mut [f64], tk: &mut [f64]| {
                weighted_gram_matvec(self.h.as_ref(), &coef, v, out, tk);
                let gv: f64 = gbar.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / tau;
                for i in 0..n {
                    out[i] += hd[i] * v[i] - gbar[i] * gv;
                }
            };
            let (d, cg_steps) = pcg(&hv, fac, &grad, eta, MAX_CG, &mut tk);
            refresh = cg_steps > REFRESH_CG;
            let slope: f64 = d.iter().zip(&grad).map(|(a, b)| a * b).sum();
            it += 1;
            if !(slope < 0.0) || -slope < 1e-30 * f0.abs().max(1.0) {
                termination = Termination::Stalled;
                break;
            }
            let mut step = 1.0;
            let mut moved = false;
            for _ in 0..60 {
                for i in 0..n {
                    pn[i] = p[i] + step * d[i];
                }
                let fnew = self.smooth_eval(&pn, &mut trial);
                if fnew.is_finite() && fnew <= f0 + 0.25 * step * slope {
                    std::mem::swap(&mut p, &mut pn);
                    std::mem::swap(&mut ws, &mut trial);
                    f0 = fnew;
                    moved = true;
                    break;
                }
                step *= 0.5;
            }
            if !moved {
                termination = Termination::LineSearchFailed;
                break;
            }
            damped = step < 1.0;
        }
        if !certified {
            // Stopped (stall or line-search failure) at an uncertified iterate: it may still be the best one.
            for kk in 0..k {
                w[kk] = -ws.rho[kk] * ws.s[kk] / l1;
            }
            let gap = self.objective(&w, &ws.rho) + f0;
            if best.as_ref().is_none_or(|bst| gap < bst.0) {
                best = Some((gap, w, ws.rho, p));
            }
        }
        let (_, w, rho, p) = best.expect("at least one iterate");
        Ok((w, rho, p, it, 1, termination, "dual-newton"))
    }

    /// $\tau = 0$: the second-order-cone interior-point method of [`ipm`] (Nesterov–Todd scaling, Mehrotra
    /// predictor–corrector), certified at every iterate; the best certified pair is returned. A numerical
    /// failure after the first iterate ends the run with [`Termination::Stalled`] and the best pair so far,
    /// as does a gap that has not decreased by 10% for [`STALL_ITERATIONS`] iterations (rounding floor).
    #[allow(clippy::type_complexity)]
    fn solve_barrier(
        &self,
        opts: &TwoLevelOptions,
    ) -> Result<(
        Vec<f64>,
        Vec<f64>,
        Vec<f64>,
        usize,
        usize,
        Termination,
        &'static str,
    )> {
        let (n, k) = (self.n(), self.k());
        let par = par_for(opts.threads, 2.0 * (n * n * k) as f64);
        let mut ipm = TwoLevelIpm::new(self, par)?;
        let mut termination = Termination::MaxIterations;
        let mut best: Option<IpmCertificate> = None;
        let mut since_best = 0;
        loop {
            let mut cert = ipm.certificate();
            // Close to the optimum, try to polish the active set (a certified pair like any other).
            if cert.gap() <= POLISH_BELOW * cert.primal.abs() {
                if let Some(pol) = ipm.polish() {
                    if pol.gap() < cert.gap() {
                        cert = pol;
                    }
                }
            }
            let gap = cert.gap();
            let converged = gap <= opts.tol_gap * cert.primal.abs().max(f64::MIN_POSITIVE);
            // Progress: a 10% smaller certified gap.
            if best.as_ref().is_none_or(|b| gap < 0.9 * b.gap()) {
                since_best = 0;
            } else {
                since_best += 1;
            }
            if best.as_ref().is_none_or(|b| gap < b.gap()) {
                best = Some(cert);
            }
            if converged {
                termination = Termination::Converged;
                break;
            }
            if since_best >= STALL_ITERATIONS {
                termination = Termination::Stalled;
                break;
            }
            if ipm.iterations() >= opts.max_newton {
                break;
            }
            if let Err(e) = ipm.step() {
                if ipm.iterations() == 0 {
                    return Err(e);
                }
                termination = Termination::Stalled;
                break;
            }
        }
        let best =
            best.ok_or_else(|| SolverError::numerical("two-level interior point", "no iterate"))?;
        Ok((
            best.w,
            best.rho,
            best.p,
            ipm.iterations(),
            1,
            termination,
            "dual-interior-point",
        ))
    }

    /// Objective, certificate, KKT residuals and diagnostics at a feasible point, with the solver's dual point.
    fn assemble(
        &self,
        w: Vec<f64>,
        rho: Vec<f64>,
        p_solver: &[f64],
        opts: &TwoLevelOptions,
    ) -> TwoLevelSolution {
        let k = self.k();
        let l1 = self.cfg.lambda1;
        let objective = self.objective(&w, &rho);
        let predictions = self.predictions(&w);
        let r = self.residual(&predictions);
        // The better of the two natural dual points: the solver's and the residual at the returned point.
        let d_solver = self.dual_objective(p_solver);
        let d_resid = self.dual_objective(&r);
        let (dual_objective, dual_point) = if d_resid >= d_solver {
            (d_resid, r.clone())
        } else {
            (d_solver, p_solver.to_vec())
        };
        let gap = objective - dual_objective;
        let relative_gap = gap / objective.abs().max(f64::MIN_POSITIVE);
        let (s, b) = self.s_b(&r);
        let rmax = rho.iter().copied().fold(0.0, f64::max);
        let supp: Vec<bool> = rho
            .iter()
            .map(|&x| x > opts.support_tol * rmax && x > 0.0)
            .collect();
        let u_bar: Vec<f64> = (0..k)
            .map(|kk| if rho[kk] > 0.0 { w[kk] / rho[kk] } else { 0.0 })
            .collect();
        let u_tilde: Vec<f64> = w.iter().zip(&self.rho0).map(|(a, b)| a / b).collect();
        // KKT.
        let stationarity_w = (0..k)
            .filter(|&kk| rho[kk] > 0.0)
            .map(|kk| (s[kk] + l1 * u_bar[kk]).abs())
            .fold(0.0, f64::max);
        let (density_spread, density_violation) = if self.cfg.tau == 0.0 {
            let on = (0..k).filter(|&kk| supp[kk]).map(|kk| b[kk]);
            let (lo, hi) = on.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            });
            let all = b.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (hi - lo, (all - hi).max(0.0))
        } else {
            let vals = (0..k).map(|kk| b[kk] - self.cfg.tau * (rho[kk] / self.rho0[kk]).ln());
            let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            });
            (hi - lo, 0.0)
        };
        let simplex_residual = (rho.iter().sum::<f64>() - 1.0).abs()
            + (-rho.iter().copied().fold(f64::INFINITY, f64::min)).max(0.0);
        // Diagnostics.
        let l1_norm: f64 = w.iter().map(|x| x.abs()).sum();
        let closed = l1_norm * l1_norm;
        let (rho_num, min_num) = minimize_over_simplex(&w, 2.0, &vec![0.0; k], 0.0, &self.rho0);
        let l2_to_l1_argmin_error = if l1_norm > 0.0 {
            (0..k)
                .map(|kk| (rho_num[kk] - w[kk].abs() / l1_norm).abs())
                .fold(0.0, f64::max)
        } else {
            0.0
        };
        let importance_law_deviation = if l1_norm > 0.0 {
            (0..k)
                .map(|kk| (rho[kk] - w[kk].abs() / l1_norm).abs())
                .sum()
        } else {
            f64::NAN
        };
        let ub: Vec<f64> = (0..k)
            .filter(|&kk| supp[kk])
            .map(|kk| u_bar[kk].abs())
            .collect();
        let ubmax = ub.iter().copied().fold(0.0, f64::max);
        let ubmin = ub.iter().copied().fold(f64::INFINITY, f64::min);
        let balance_spread = if ubmax > 0.0 {
            (ubmax - ubmin) / ubmax
        } else {
            0.0
        };
        TwoLevelSolution {
            objective,
            dual_objective,
            gap,
            relative_gap,
            w,
            rho,
            u_tilde,
            u_bar,
            predictions,
            dual_point,
            s,
            kkt: TwoLevelKkt {
                stationarity_w,
                density_spread,
                density_violation,
                simplex_residual,
            },
            diagnostics: TwoLevelDiagnostics {
                l2_to_l1_min: min_num,
                l2_to_l1_closed_form: closed,
                l2_to_l1_rel_error: if closed > 0.0 {
                    (min_num - closed).abs() / closed
                } else {
                    min_num.abs()
                },
                l2_to_l1_argmin_error,
                importance_law_deviation,
                balance_spread,
                support_size: supp.iter().filter(|&&x| x).count(),
            },
            iterations: 0,
            seconds: 0.0,
            termination: Termination::MaxIterations,
            method: String::new(),
        }
    }
}

/// CG steps after which the τ > 0 Newton method recomputes its Hessian preconditioner.
const REFRESH_CG: usize = 4;

/// Scales $2^{-j}$, $j\le$ `START_SCALES`, tried for the τ > 0 start point $t\,\mathbf r(0)$.
const START_SCALES: usize = 30;

/// Limit on CG steps per τ > 0 Newton system.
const MAX_CG: usize = 40;

/// Work vectors of the τ > 0 dual: $s = H^\top\mathbf p$, the Gibbs law $\rho$ and $\log\sum\rho_0e^{b/\tau}$.
struct SmoothWork {
    s: Vec<f64>,
    rho: Vec<f64>,
    lse: f64,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Preconditioned conjugate gradients for $A\mathbf d = -\mathbf g$ ($A$ symmetric positive definite, given by
/// `hv(v, out, scratch)`), preconditioned by `fac`, from $\mathbf d = 0$, until $\|A\mathbf d + \mathbf g\|\le\eta\|\mathbf g\|$ or
/// `max_steps`. Every iterate is a descent direction for $\mathbf g$. Returns $\mathbf d$ and the steps taken.
fn pcg<F>(
    hv: &F,
    fac: &SpdFactor,
    g: &[f64],
    eta: f64,
    max_steps: usize,
    scratch: &mut [f64],
) -> (Vec<f64>, usize)
where
    F: Fn(&[f64], &mut [f64], &mut [f64]),
{
    let n = g.len();
    let mut d = vec![0.0; n];
    let mut r: Vec<f64> = g.iter().map(|x| -x).collect();
    let target = eta * norm(g);
    let mut z = fac.solve(&r);
    let mut dir = z.clone();
    let mut rz: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
    let mut ad = vec![0.0; n];
    let mut steps = 0;
    while steps < max_steps {
        hv(&dir, &mut ad, scratch);
        let dad: f64 = dir.iter().zip(&ad).map(|(a, b)| a * b).sum();
        steps += 1;
        if !(dad > 0.0) || !(rz > 0.0) {
            break;
        }
        let alpha = rz / dad;
        for i in 0..n {
            d[i] += alpha * dir[i];
            r[i] -= alpha * ad[i];
        }
        if norm(&r) <= target {
            break;
        }
        z = fac.solve(&r);
        let rz_new: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
        let beta = rz_new / rz;
        rz = rz_new;
        for i in 0..n {
            dir[i] = z[i] + beta * dir[i];
        }
    }
    if steps == 0 || d.iter().all(|x| *x == 0.0) {
        d = fac.solve(&g.iter().map(|x| -x).collect::<Vec<_>>());
    }
    (d, steps)
}

/// $\min_{\rho\in\Delta_K}G(\rho)$, $G(\rho) = \sum_k\big[\lambda_1\frac{w_k^2}{2\rho_k} + a_k\rho_k + \tau\rho_k\log\frac{\rho_k}{\rho_{0k}}\big]$,
/// returning the minimizer and the minimum (the reduced regularizer $g(w)$ of the two-level program).
///
/// **The 1-D dual.** With a multiplier $\nu$ for $\sum\rho = 1$, each coordinate solves
/// $\min_{\rho_k\ge0}\lambda_1w_k^2/2\rho_k + (a_k+\nu)\rho_k + \tau\rho_k\log(\rho_k/\rho_{0k})$:
/// - $\tau = 0$: $\rho_k(\nu) = |w_k|\sqrt{\lambda_1/2(a_k+\nu)}$ for $\nu > -\min a$; if the cheapest candidates carry
///   $w = 0$ and $\sum\rho(-\min a) < 1$, the leftover mass sits on them (a free choice; split evenly);
/// - $\tau > 0$: $x = \log\rho_k$ is the unique root of the increasing
///   $\psi(x) = -\frac{\lambda_1w_k^2}2e^{-2x} + a_k + \nu + \tau(x - \log\rho_{0k} + 1)$.
///
/// $\sum_k\rho_k(\nu)$ decreases in $\nu$; its root is bracketed and bisected to machine precision. With
/// $\lambda_1 = 2$, $a = 0$, $\tau = 0$ this is the L2→L1 identity of §4.1:
/// $\min_\rho\sum\tilde u^2\rho_0^2/\rho = (\sum|\tilde u|\rho_0)^2$ at $\rho^\star\propto|\tilde u|\rho_0$ (here $w = \tilde u\rho_0$).
pub fn minimize_over_simplex(
    w: &[f64],
    lambda1: f64,
    a: &[f64],
    tau: f64,
    rho0: &[f64],
) -> (Vec<f64>, f64) {
    let k = w.len();
    assert!(k > 0 && a.len() == k && rho0.len() == k, "lengths disagree");
    let value = |rho: &[f64]| -> f64 {
        (0..k)
            .map(|i| {
                let quad = if rho[i] > 0.0 {
                    lambda1 * w[i] * w[i] / (2.0 * rho[i])
                } else if w[i] != 0.0 {
                    f64::INFINITY
                } else {
                    0.0
                };
                let ent = if tau > 0.0 {
                    tau * (xlogx(rho[i]) - rho[i] * rho0[i].ln())
                } else {
                    0.0
                };
                quad + a[i] * rho[i] + ent
            })
            .sum()
    };
    let a_min = a.iter().copied().fold(f64::INFINITY, f64::min);
    if tau == 0.0 {
        let cheapest: Vec<usize> = (0..k).filter(|&i| a[i] == a_min).collect();
        let any_nz = w.iter().any(|&x| x != 0.0);
        if !any_nz {
            let mut rho = vec![0.0; k];
            for &i in &cheapest {
                rho[i] = 1.0 / cheapest.len() as f64;
            }
            let v = value(&rho);
            return (rho, v);
        }
        // x = ν + a_min > 0; ρ_i(x).
        let rho_i = |i: usize, x: f64| -> f64 {
            if w[i] == 0.0 {
                0.0
            } else {
                w[i].abs() * (lambda1 / (2.0 * (a[i] - a_min + x))).sqrt()
            }
        };
        let rho_of = |x: f64| -> Vec<f64> { (0..k).map(|i| rho_i(i, x)).collect() };
        // Σρ(x) without materializing ρ (same terms, same order as `rho_of`).
        let sum_of = |x: f64| -> f64 { (0..k).map(|i| rho_i(i, x)).sum::<f64>() };
        let free_cheapest = cheapest.iter().all(|&i| w[i] == 0.0);
        if free_cheapest {
            let rho0x = rho_of(0.0);
            let s0: f64 = rho0x.iter().sum();
            if s0 <= 1.0 {
                let mut rho = rho0x;
                let extra = (1.0 - s0) / cheapest.len() as f64;
                for &i in &cheapest {
                    rho[i] += extra;
                }
                let v = value(&rho);
                return (rho, v);
            }
        }
        let w1: f64 = w.iter().map(|x| x.abs()).sum();
        let mut hi = (lambda1 * w1 * w1 / 2.0).max(f64::MIN_POSITIVE);
        while sum_of(hi) > 1.0 {
            hi *= 2.0;
        }
        let mut lo = hi;
        while sum_of(lo) <= 1.0 && lo > 1e-300 {
            lo *= 0.5;
        }
        // Newton from the left end: Σρ(x) is convex and decreasing, so the iterates stay left of the root (up to
        // rounding, checked) and converge quadratically; then a tight right end, and the bisection below only
        // resolves the last few ulps.
        let sum_and_slope = |x: f64| -> (f64, f64) {
            let (mut f, mut df) = (0.0, 0.0);
            for i in 0..k {
                if w[i] != 0.0 {
                    let d = a[i] - a_min + x;
                    let r = w[i].abs() * (lambda1 / (2.0 * d)).sqrt();
                    f += r;
                    df -= 0.5 * r / d;
                }
            }
            (f, df)
        };
        for _ in 0..60 {
            let (f, df) = sum_and_slope(lo);
            if !(f > 1.0 && df < 0.0) {
                break;
            }
            let next = lo - (f - 1.0) / df;
            if !(next > lo && next < hi) {
                break;
            }
            if sum_of(next) > 1.0 {
                let small = next - lo <= 1e-14 * next;
                lo = next;
                if small {
                    break;
                }
            } else {
                hi = next;
                break;
            }
        }
        let mut width = 1e-14 * lo;
        while lo + width < hi {
            if sum_of(lo + width) <= 1.0 {
                hi = lo + width;
                break;
            }
            width *= 16.0;
        }
        for _ in 0..300 {
            let mid = if hi / lo > 2.0 {
                (lo * hi).sqrt()
            } else {
                0.5 * (lo + hi)
            };
            if mid <= lo || mid >= hi {
                break;
            }
            if sum_of(mid) > 1.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let mut rho = rho_of(hi);
        let s: f64 = rho.iter().sum();
        for r in rho.iter_mut() {
            *r /= s;
        }
        let v = value(&rho);
        (rho, v)
    } else {
        // Per-coordinate root in x = log ρ for a given ν.
        let coord = |i: usize, nu: f64| -> f64 {
            let x0 = rho0[i].ln() - (a[i] + nu) / tau - 1.0;
            if w[i] == 0.0 {
                return x0.exp();
            }
            let c = lambda1 * w[i] * w[i] / 2.0;
            let psi = |x: f64| -c * (-2.0 * x).exp() + a[i] + nu + tau * (x - rho0[i].ln() + 1.0);
            // ψ(x0) < 0; find hi with ψ(hi) >= 0.
            let mut lo = x0;
            let mut hi = x0.max(0.5 * (c / (a[i].abs() + nu.abs() + tau + 1.0)).ln());
            let mut step = 1.0;
            while psi(hi) < 0.0 {
                lo = hi;
                hi += step;
                step *= 2.0;
            }
            if psi(lo) > 0.0 {
                // x0 may be +∞-ish far left only through rounding; fall back to expanding left.
                let mut st = 1.0;
                while psi(lo) > 0.0 {
                    hi = lo;
                    lo -= st;
                    st *= 2.0;
                }
            }
            // Safeguarded Newton.
            let mut x = 0.5 * (lo + hi);
            for _ in 0..200 {
                let f = psi(x);
                if f == 0.0 {
                    break;
                }
                if f < 0.0 {
                    lo = x;
                } else {
                    hi = x;
                }
                let df = 2.0 * c * (-2.0 * x).exp() + tau;
                let mut xn = x - f / df;
                if !(xn > lo && xn < hi) {
                    xn = 0.5 * (lo + hi);
                }
                if (xn - x).abs() <= 1e-15 * x.abs().max(1.0) || hi - lo <= 1e-15 * x.abs().max(1.0)
                {
                    x = xn;
                    break;
                }
                x = xn;
            }
            x.exp()
        };
        let sum_of = |nu: f64| (0..k).map(|i| coord(i, nu)).sum::<f64>();
        let mut lo = -a_min;
        let mut step = tau.max(1.0);
        while sum_of(lo) < 1.0 {
            lo -= step;
            step *= 2.0;
        }
        let mut hi = lo + tau.max(1.0);
        let mut step = tau.max(1.0);
        while sum_of(hi) > 1.0 {
            hi += step;
            step *= 2.0;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            if sum_of(mid) > 1.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let mut rho: Vec<f64> = (0..k).map(|i| coord(i, hi)).collect();
        let s: f64 = rho.iter().sum();
        for r in rho.iter_mut() {
            *r /= s;
        }
        let v = value(&rho);
        (rho, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidates;
    use crate::testutil::sine_data;
    use proptest::prelude::*;

    pub(crate) fn grid_program(loss: Loss, cfg: TwoLevelConfig, seed: u64) -> TwoLevelProgram {
        let data = sine_data(8, 1, seed, loss == Loss::Logistic);
        let theta = candidates::grid(2, 11, 3.0).unwrap();
        let rho0 = candidates::gaussian_weights(&theta, 2.0);
        TwoLevelProgram::new(&data, Activation::Tanh, loss, theta.as_ref(), &rho0, cfg).unwrap()
    }

    #[test]
    fn every_solve_reports_a_certified_relative_gap_below_1e_8() {
        let mut seconds = 0.0;
        for loss in Loss::ALL {
            for &(l1, l2, tau) in &[
                (0.1, 0.0, 0.0),
                (0.1, 0.01, 0.0),
                (0.01, 0.001, 0.0),
                (0.05, 0.02, 0.01),
                (1.0, 0.1, 1.0),
                (0.1, 0.0, 1e-4),
            ] {
                let cfg = TwoLevelConfig {
                    lambda1: l1,
                    lambda2: l2,
                    tau,
                };
                let prog = grid_program(loss, cfg, 3);
                let sol = prog.solve(&TwoLevelOptions::default()).unwrap();
                seconds += sol.seconds;
                eprintln!(
                    "{loss} {cfg:?}: P={:.6e} gap={:.2e} rel={:.2e} it={} {:?} kkt={:?} supp={} t={:.3}s",
                    sol.objective, sol.gap, sol.relative_gap, sol.iterations,
                    sol.termination, sol.kkt, sol.diagnostics.support_size, sol.seconds
                );
                assert_eq!(sol.termination, Termination::Converged);
                assert!(
                    sol.relative_gap <= 1e-8,
                    "{loss} {cfg:?}: {}",
                    sol.relative_gap
                );
                assert!(
                    sol.gap >= -1e-12 * sol.objective.abs(),
                    "negative gap {}",
                    sol.gap
                );
                // The dual value is a lower bound: P at the solution minus the gap.
                assert!(
                    (sol.objective - prog.objective(&sol.w, &sol.rho)).abs()
                        <= 1e-15 * sol.objective.abs().max(1.0)
                );
                assert!(sol.kkt.simplex_residual < 1e-12);
                assert!(
                    sol.kkt.density_violation <= 1e-8 * sol.objective.max(1e-3),
                    "{:?}",
                    sol.kkt
                );
            }
        }
        eprintln!("total solve time {seconds:.3}s");
    }

    #[test]
    fn importance_law_and_balance_hold_at_the_optimum_without_feature_penalty() {
        let cfg = TwoLevelConfig {
            lambda1: 0.05,
            lambda2: 0.0,
            tau: 0.0,
        };
        let prog = grid_program(Loss::Squared, cfg, 5);
        let sol = prog.solve(&TwoLevelOptions::default()).unwrap();
        let dg = &sol.diagnostics;
        assert!(dg.importance_law_deviation < 1e-5, "{dg:?}");
        assert!(dg.balance_spread < 1e-5, "{dg:?}");
        assert!(
            dg.l2_to_l1_rel_error < 1e-8 && dg.l2_to_l1_argmin_error < 1e-8,
            "{dg:?}"
        );
        // With a feature penalty the balance is broken (C23 is specific to λ2 = τ = 0).
        let cfg = TwoLevelConfig {
            lambda1: 0.05,
            lambda2: 0.05,
            tau: 0.0,
        };
        let sol = grid_program(Loss::Squared, cfg, 5)
            .solve(&TwoLevelOptions::default())
            .unwrap();
        assert!(sol.diagnostics.support_size >= 2);
    }

    #[test]
    fn l2_to_l1_identity_and_importance_law() {
        let mut r = nff_core::rng::rng(11, "test");
        for trial in 0..50 {
            let k = 3 + trial % 17;
            let mut rho0: Vec<f64> = (0..k)
                .map(|_| nff_core::rng::normal(&mut r).exp())
                .collect();
            let s: f64 = rho0.iter().sum();
            rho0.iter_mut().for_each(|x| *x /= s);
            let u: Vec<f64> = (0..k)
                .map(|i| {
                    if i % 4 == 1 {
                        0.0
                    } else {
                        3.0 * nff_core::rng::normal(&mut r)
                    }
                })
                .collect();
            let w: Vec<f64> = u.iter().zip(&rho0).map(|(a, b)| a * b).collect();
            // min_ρ Σ ũ²ρ₀²/ρ = λ₁Σw²/2ρ with λ₁ = 2.
            let (rho, val) = minimize_over_simplex(&w, 2.0, &vec![0.0; k], 0.0, &rho0);
            let l1: f64 = u.iter().zip(&rho0).map(|(a, b)| a.abs() * b).sum();
            assert!(
                (val - l1 * l1).abs() <= 1e-8 * l1 * l1,
                "{val} vs {}",
                l1 * l1
            );
            for i in 0..k {
                assert!((rho[i] - u[i].abs() * rho0[i] / l1).abs() <= 1e-8);
            }
            // Any other point of the simplex is worse.
            let alt: Vec<f64> = rho.iter().map(|x| 0.9 * x + 0.1 / k as f64).collect();
            let alt_val: f64 = (0..k)
                .map(|i| u[i] * u[i] * rho0[i] * rho0[i] / alt[i])
                .sum();
            assert!(alt_val >= val);
        }
    }

    #[test]
    fn simplex_minimizer_satisfies_its_optimality_conditions() {
        let mut r = nff_core::rng::rng(12, "test");
        for trial in 0..30 {
            let k = 4 + trial % 9;
            let rho0 = vec![1.0 / k as f64; k];
            let w: Vec<f64> = (0..k)
                .map(|i| {
                    if i == 2 {
                        0.0
                    } else {
                        nff_core::rng::normal(&mut r)
                    }
                })
                .collect();
            let a: Vec<f64> = (0..k)
                .map(|_| nff_core::rng::normal(&mut r).abs())
                .collect();
            for &tau in &[0.0, 0.01, 1.0] {
                let (rho, val) = minimize_over_simplex(&w, 0.3, &a, tau, &rho0);
                assert!((rho.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                // Stationarity: -λ₁w²/2ρ² + a + τ(log(ρ/ρ₀) + 1) is constant where ρ > 0 (and w ≠ 0 or τ > 0).
                let g: Vec<f64> = (0..k)
                    .filter(|&i| rho[i] > 1e-300 && (w[i] != 0.0 || tau > 0.0))
                    .map(|i| {
                        -0.3 * w[i] * w[i] / (2.0 * rho[i] * rho[i])
                            + a[i]
                            + tau * ((rho[i] / rho0[i]).ln() + 1.0)
                    })
                    .collect();
                let (lo, hi) = g
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                        (l.min(*v), h.max(*v))
                    });
                assert!(
                    hi - lo <= 1e-7 * hi.abs().max(1.0),
                    "tau {tau}: spread {}",
                    hi - lo
                );
                // Random simplex points are no better.
                for _ in 0..20 {
                    let mut alt: Vec<f64> = (0..k)
                        .map(|_| nff_core::rng::normal(&mut r).exp())
                        .collect();
                    let s: f64 = alt.iter().sum();
                    alt.iter_mut().for_each(|x| *x /= s);
                    let v: f64 = (0..k)
                        .map(|i| {
                            0.3 * w[i] * w[i] / (2.0 * alt[i])
                                + a[i] * alt[i]
                                + if tau > 0.0 {
                                    tau * alt[i] * (alt[i] / rho0[i]).ln()
                                } else {
                                    0.0
                                }
                        })
                        .sum();
                    assert!(v >= val - 1e-12 * val.abs());
                }
            }
        }
    }

    fn small_program(tau: f64) -> TwoLevelProgram {
        let data = sine_data(6, 1, 21, false);
        let theta = candidates::grid(2, 3, 2.0).unwrap();
        let rho0 = candidates::uniform_weights(9);
        let cfg = TwoLevelConfig {
            lambda1: 0.1,
            lambda2: 0.05,
            tau,
        };
        TwoLevelProgram::new(
            &data,
            Activation::Tanh,
            Loss::Squared,
            theta.as_ref(),
            &rho0,
            cfg,
        )
        .unwrap()
    }

    fn simplex_point(raw: &[f64]) -> Vec<f64> {
        let e: Vec<f64> = raw.iter().map(|x| x.exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|x| x / s).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// C8: the repopulated objective is jointly convex along random segments of feasible points.
        #[test]
        fn repopulated_objective_is_convex_along_segments(
            u0 in proptest::collection::vec(-5.0f64..5.0, 9),
            u1 in proptest::collection::vec(-5.0f64..5.0, 9),
            r0 in proptest::collection::vec(-4.0f64..4.0, 9),
            r1 in proptest::collection::vec(-4.0f64..4.0, 9),
            t in 0.01f64..0.99,
            tau_i in 0usize..2,
        ) {
            let prog = small_program([0.0, 0.1][tau_i]);
            let (p0, p1) = (simplex_point(&r0), simplex_point(&r1));
            let f0 = prog.objective_repopulated(&u0, &p0);
            let f1 = prog.objective_repopulated(&u1, &p1);
            let um: Vec<f64> = u0.iter().zip(&u1).map(|(a, b)| t * a + (1.0 - t) * b).collect();
            let pm: Vec<f64> = p0.iter().zip(&p1).map(|(a, b)| t * a + (1.0 - t) * b).collect();
            let fm = prog.objective_repopulated(&um, &pm);
            let chord = t * f0 + (1.0 - t) * f1;
            prop_assert!(fm <= chord + 1e-12 * chord.abs(), "convexity violated: {fm} > {chord}");
        }
    }

    #[test]
    fn original_variables_are_not_convex() {
        // The same objective in (ū, ρ): search a fixed seed set of segments for violations.
        let prog = small_program(0.0);
        let mut r = nff_core::rng::rng(7, "segments");
        let mut violations = 0;
        for _ in 0..2000 {
            let g = |r: &mut nff_core::rng::Rng, s: f64| -> Vec<f64> {
                (0..9).map(|_| s * nff_core::rng::normal(r)).collect()
            };
            let (u0, u1) = (g(&mut r, 3.0), g(&mut r, 3.0));
            let (p0, p1) = (
                simplex_point(&g(&mut r, 2.0)),
                simplex_point(&g(&mut r, 2.0)),
            );
            let t = 0.5;
            let um: Vec<f64> = u0
                .iter()
                .zip(&u1)
                .map(|(a, b)| t * a + (1.0 - t) * b)
                .collect();
            let pm: Vec<f64> = p0
                .iter()
                .zip(&p1)
                .map(|(a, b)| t * a + (1.0 - t) * b)
                .collect();
            let chord = t * prog.objective_original(&u0, &p0)
                + (1.0 - t) * prog.objective_original(&u1, &p1);
            if prog.objective_original(&um, &pm) > chord + 1e-12 * chord.abs() {
                violations += 1;
            }
        }
        assert!(
            violations > 0,
            "no violation found in the original variables"
        );
        eprintln!("original-variable convexity violations: {violations}/2000");
    }

    #[test]
    fn network_point_has_the_network_objective() {
        use nff_core::{Arch, Params, Problem, Regularizer, Shape};
        let data = sine_data(7, 1, 4, false);
        let shape = Shape::new(Arch::TwoLevel, 2, 5, 1).unwrap();
        let mut r = nff_core::rng::rng(4, "net");
        let net = Params::from_vec(
            shape,
            (0..shape.len())
                .map(|_| nff_core::rng::normal(&mut r))
                .collect(),
        )
        .unwrap();
        let problem = Problem::new(
            data,
            Activation::Tanh,
            Loss::Squared,
            Regularizer::L2Split {
                a: 0.03,
                w: 0.0,
                v: 0.2,
            },
        )
        .unwrap();
        let (prog, w, rho) = TwoLevelProgram::from_network(&problem, &net, 0.0).unwrap();
        let j = problem.objective(&net);
        let p = prog.objective(&w, &rho);
        assert!((j - p).abs() <= 1e-13 * j.abs(), "{j} vs {p}");
    }

    #[test]
    fn bad_inputs_are_rejected_with_clear_errors() {
        let data = sine_data(5, 1, 1, false);
        let theta = candidates::grid(2, 3, 1.0).unwrap();
        let ok_rho = candidates::uniform_weights(9);
        let cfg = TwoLevelConfig {
            lambda1: 0.1,
            lambda2: 0.0,
            tau: 0.0,
        };
        let mk = |th: MatRef<'_, f64>, rho: &[f64], cfg: TwoLevelConfig| {
            TwoLevelProgram::new(&data, Activation::Tanh, Loss::Squared, th, rho, cfg)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let mut bad = ok_rho.clone();
        bad[0] += 0.1;
        assert!(mk(theta.as_ref(), &bad, cfg).contains("probability vector"));
        let mut bad = ok_rho.clone();
        bad[0] = 0.0;
        bad[1] += 1.0 / 9.0;
        assert!(mk(theta.as_ref(), &bad, cfg).contains("full support"));
        assert!(mk(theta.as_ref(), &ok_rho[..8], cfg).contains("9 entries"));
        let empty = Mat::<f64>::zeros(0, 2);
        assert!(mk(empty.as_ref(), &[], cfg).contains("K = 0"));
        let wrong = Mat::<f64>::zeros(9, 3);
        assert!(mk(wrong.as_ref(), &ok_rho, cfg).contains("columns"));
        assert!(mk(
            theta.as_ref(),
            &ok_rho,
            TwoLevelConfig {
                lambda1: -1.0,
                ..cfg
            }
        )
        .contains("lambda1"));
        assert!(mk(
            theta.as_ref(),
            &ok_rho,
            TwoLevelConfig {
                lambda1: 0.0,
                ..cfg
            }
        )
        .contains("> 0"));
        assert!(mk(
            theta.as_ref(),
            &ok_rho,
            TwoLevelConfig {
                lambda2: -0.5,
                ..cfg
            }
        )
        .contains("lambda2"));
        assert!(mk(
            theta.as_ref(),
            &ok_rho,
            TwoLevelConfig {
                tau: f64::NAN,
                ..cfg
            }
        )
        .contains("tau"));
        let mut nan_theta = theta.clone();
        nan_theta[(3, 1)] = f64::NAN;
        assert!(mk(nan_theta.as_ref(), &ok_rho, cfg).contains("finite"));
        let mut nan_rho = ok_rho.clone();
        nan_rho[2] = f64::NAN;
        assert!(mk(theta.as_ref(), &nan_rho, cfg).contains("finite"));
        let e = TwoLevelProgram::new(
            &data,
            Activation::Tanh,
            Loss::Logistic,
            theta.as_ref(),
            &ok_rho,
            cfg,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("-1, +1"), "{e}");
        let prog = TwoLevelProgram::new(
            &data,
            Activation::Tanh,
            Loss::Squared,
            theta.as_ref(),
            &ok_rho,
            cfg,
        )
        .unwrap();
        let e = prog
            .solve(&TwoLevelOptions {
                tol_gap: -1.0,
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("gap tolerance"), "{e}");
    }

    /// Writes small instances with nff's solutions for ad-hoc comparisons in Python (not part of the suite;
    /// `benches/compare/convex_two_level.py` builds its own K = 4096 instance and runs the `nff` binary):
    /// `cargo test -p nff-solvers --lib -- --ignored write_comparison_instances`, directory from
    /// `NFF_COMPARE_DIR` (default `/tmp/nff_compare`).
    #[test]
    #[ignore = "writes files for the Python comparison script"]
    fn write_comparison_instances() {
        let dir = std::env::var("NFF_COMPARE_DIR").unwrap_or_else(|_| "/tmp/nff_compare".into());
        std::fs::create_dir_all(&dir).unwrap();
        for (name, loss, tau) in [
            ("squared_tau0", Loss::Squared, 0.0),
            ("squared_tau0.01", Loss::Squared, 0.01),
            ("logistic_tau0", Loss::Logistic, 0.0),
        ] {
            let data = sine_data(10, 1, 7, loss == Loss::Logistic);
            let theta = candidates::grid(2, 15, 3.0).unwrap();
            let rho0 = candidates::gaussian_weights(&theta, 2.0);
            let cfg = TwoLevelConfig {
                lambda1: 0.05,
                lambda2: 0.01,
                tau,
            };
            let prog =
                TwoLevelProgram::new(&data, Activation::Tanh, loss, theta.as_ref(), &rho0, cfg)
                    .unwrap();
            let sol = prog.solve(&TwoLevelOptions::default()).unwrap();
            let (n, d, k) = (data.n(), data.d(), theta.nrows());
            let rows = |m: &Mat<f64>| -> Vec<f64> {
                (0..m.nrows())
                    .flat_map(|i| (0..m.ncols()).map(move |c| m[(i, c)]))
                    .collect()
            };
            let scalar = |v: f64| vec![v];
            let arrays: Vec<(&str, Vec<usize>, Vec<f64>)> = vec![
                ("X", vec![n, d], rows(&data.x)),
                ("y", vec![n], data.y.clone()),
                ("theta", vec![k, d], rows(&theta)),
                ("rho0", vec![k], rho0.clone()),
                ("lambda1", vec![], scalar(cfg.lambda1)),
                ("lambda2", vec![], scalar(cfg.lambda2)),
                ("tau", vec![], scalar(cfg.tau)),
                (
                    "logistic",
                    vec![],
                    scalar(if loss == Loss::Logistic { 1.0 } else { 0.0 }),
                ),
                ("nff_objective", vec![], scalar(sol.objective)),
                ("nff_dual", vec![], scalar(sol.dual_objective)),
                ("nff_seconds", vec![], scalar(sol.seconds)),
                ("nff_w", vec![k], sol.w.clone()),
                ("nff_rho", vec![k], sol.rho.clone()),
            ];
            let refs: Vec<(&str, &[usize], &[f64])> = arrays
                .iter()
                .map(|(a, s, v)| (*a, s.as_slice(), v.as_slice()))
                .collect();
            let path = format!("{dir}/{name}.npz");
            nff_core::io::write_npz(&path, &refs).unwrap();
            eprintln!(
                "{path}: P = {:.12e}, gap = {:.2e}, {:.4}s",
                sol.objective, sol.gap, sol.seconds
            );
        }
    }
}
