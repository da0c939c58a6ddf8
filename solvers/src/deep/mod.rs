//! The repopulated deep program of math.md §4.2–4.4 on finite candidate sets, solved by an augmented
//! Lagrangian, with a certified Lagrangian lower bound, the network bijection (C15) and KKT residuals.
//!
//! # Discretization (explicit)
//! Layer $\ell = 1..L$ has candidate features $\mathbf z_{\ell,j}\in\mathbb R^N$, $j = 1..n_\ell$ (layer 1:
//! $\mathbf z_{1,j} = Xa_j$), reference weights $\pi_\ell(j) > 0$ (the discretized $\pi_\ell$; they need not sum to 1),
//! densities $\rho_\ell(j)\ge0$ and repopulated weights $\tilde u_{\ell+1}(j,k)$, $\tilde u_{L+1}(j)$. Every integral
//! $\int\cdot\,d\pi_\ell$ becomes $\sum_j\pi_\ell(j)\,\cdot$:
//! - mass: $\sum_j\pi_\ell(j)\rho_\ell(j) = 1$;
//! - consistency ($\ell = 1..L-1$, every $k$): $\sum_j\tilde u_{\ell+1}(j,k)\,h(\mathbf z_{\ell,j})\,\pi_\ell(j) = \rho_{\ell+1}(k)\,\mathbf z_{\ell+1,k}$;
//! - output: $\hat{\mathbf y} = \sum_j\tilde u_{L+1}(j)\,h(\mathbf z_{L,j})\,\pi_L(j)$;
//! - objective
//!   $$\mathcal R(\hat{\mathbf y}) + \sum_{\ell=1}^{L-1}\lambda_\ell\Big[\sum_k\pi_{\ell+1}(k)\frac{(S^{\rm in}_k)^q}{\rho_{\ell+1}(k)^{q-1}} + \sum_j\pi_\ell(j)\frac{(S^{\rm out}_j)^q}{\rho_\ell(j)^{q-1}}\Big] +
//!   \lambda_v\sum_j\pi_L(j)\frac{|\tilde u_{L+1}(j)|^q}{\rho_L(j)^{q-1}} + \sum_{\ell=1}^L\sum_j\pi_\ell(j)\big[\beta_\ell\rho_\ell\log\rho_\ell + r_\ell(j)\rho_\ell\big],$$
//!   $S^{\rm in}_k = \sum_j\pi_\ell(j)|\tilde u_{\ell+1}(j,k)|$, $S^{\rm out}_j = \sum_k\pi_{\ell+1}(k)|\tilde u_{\ell+1}(j,k)|$, first-layer cost
//!   $r_1(j) = \lambda_a\,\mathbf z_{1,j}^\top(XX^\top)^+\mathbf z_{1,j}/2$ (C21), $r_\ell = 0$ for $\ell\ge2$ (the field is public).
//!
//! **Mass variables.** With $p_\ell(j) = \pi_\ell(j)\rho_\ell(j)$, $\hat U_\ell(j,k) = \pi_\ell(j)\pi_{\ell+1}(k)\tilde u_{\ell+1}(j,k)$ and
//! $\hat v(j) = \pi_L(j)\tilde u_{L+1}(j)$ the program no longer mentions $\pi$ except in the entropy (the
//! perspectives are 1-homogeneous): $\sum_jp_\ell(j) = 1$, $\sum_j\hat U(j,k)h(\mathbf z_j) = p_{\ell+1}(k)\mathbf z_k$,
//! $\hat{\mathbf y} = \sum_j\hat v(j)h(\mathbf z_{L,j})$, penalties $\sum_k(\sum_j|\hat U_{jk}|)^q/p_k^{q-1}$ etc., and entropy
//! $\beta\sum_jp_j\log(p_j/\pi_j)$. The solver works in these variables ([`DeepPoint`] stores the density form).
//! A width-$m$ DNN is the point $p = 1/m$, $\hat U = W/m^2$, $\hat v = v/m$ (any $\pi$), and there the objective is
//! exactly its `Regularizer::GroupL1q` objective (C15; the first-layer term needs $a_j\in\mathrm{row}(X)$, true when
//! $X$ has full column rank).
//!
//! **For q = 1 the program is a relaxation** \[noticed while deriving\]: $\rho^{1-q} = 1$ decouples the penalties
//! from $\rho$, so $\tilde u$ need not vanish where $\rho$ does and the map back to a network can fail. The
//! bijection (math.md §4.3 "finite objective ⇒ $\tilde u$ vanishes where $\rho$ does") needs $q > 1$.
//!
//!
//! Files: [`candidates`] (the candidate sets), `program` (the objective and constraints),
//! `bound` (the certified lower bound and KKT residuals), `bijection` (network ↔ program point), `solve`
//! (the driver), `alm` (the augmented Lagrangian method).

mod alm;
mod bijection;
mod bound;
mod candidates;
mod conic;
#[cfg(test)]
mod conic_tests;
mod dense_ipm;
mod ipm;
mod polish;
mod program;
mod socp;
mod solve;
#[cfg(test)]
mod tests;

use alm::{thresholded_dual_residual, Layout, RunStats};
pub use candidates::DeepCandidates;
use program::{kappa, persp, support_thresholds};
pub(crate) use program::{Alphas, Mass};

use crate::lbfgs::Termination;
use faer::Mat;
use nff_core::{Activation, Loss, Network};
use serde::Serialize;

/// Strengths of the deep program.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DeepConfig {
    /// $\lambda_a$: first-layer cost $r_1 = \lambda_a\mathbf z^\top(XX^\top)^+\mathbf z/2$.
    pub lambda_a: f64,
    /// $\lambda_\ell$, $\ell = 1..L-1$ (middle layers, multiplying $R^{\rm in}_{\ell+1} + R^{\rm out}_{\ell+1}$).
    pub lambda_w: Vec<f64>,
    /// $\lambda_v$ (the $\lambda_L$ of $R_{L+1}$).
    pub lambda_v: f64,
    /// Exponent $q\ge1$.
    pub q: f64,
    /// Entropies $\beta_\ell\ge0$, $\ell = 1..L$.
    pub beta: Vec<f64>,
}

impl DeepConfig {
    /// The strengths matching `Regularizer::GroupL1q { lambda, q }` on a depth-`depth` network (no entropy).
    pub fn group_l1q(lambda: f64, q: f64, depth: usize) -> Self {
        Self {
            lambda_a: lambda,
            lambda_w: vec![lambda; depth.saturating_sub(1)],
            lambda_v: lambda,
            q,
            beta: vec![0.0; depth],
        }
    }
}

/// A point of the deep program in the density form of math.md §4.2.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeepPoint {
    /// $\rho_\ell$, one vector per layer.
    pub rho: Vec<Vec<f64>>,
    /// $\tilde u_{\ell+1}$ for $\ell = 1..L-1$, each $n_\ell\times n_{\ell+1}$ column-major (`u[l][j + k * n_l]`).
    pub u: Vec<Vec<f64>>,
    /// $\tilde u_{L+1}$.
    pub v: Vec<f64>,
}

impl DeepPoint {
    /// The convex combination $t\,a + (1-t)\,b$, entry by entry (the segments of the convexity checks).
    pub fn mix(a: &DeepPoint, b: &DeepPoint, t: f64) -> DeepPoint {
        let m = |x: &[f64], y: &[f64]| -> Vec<f64> {
            x.iter()
                .zip(y)
                .map(|(p, q)| t * p + (1.0 - t) * q)
                .collect()
        };
        DeepPoint {
            rho: a.rho.iter().zip(&b.rho).map(|(x, y)| m(x, y)).collect(),
            u: a.u.iter().zip(&b.u).map(|(x, y)| m(x, y)).collect(),
            v: m(&a.v, &b.v),
        }
    }
}

/// Multipliers of the deep program.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeepMultipliers {
    /// $\boldsymbol\mu_{\ell+1}$ for $\ell = 1..L-1$, each $N\times n_{\ell+1}$ column-major (mass units: the constraint
    /// $\sum_j\hat U_{jk}h(\mathbf z_j) - p_k\mathbf z_k$; at a network point they are its backward features $G_{\ell+1}$).
    pub mu: Vec<Vec<f64>>,
    /// Mass multipliers $c_\ell$.
    pub c: Vec<f64>,
    /// Output multiplier $\mathbf r^*$ (the residual at the optimum).
    pub r: Vec<f64>,
}

/// The certified relative gap below which [`DeepMethod::Auto`] accepts the second-order-cone result
/// without also running Clarabel (issue 12's target for every solve).
pub const AUTO_CERTIFIED: f64 = 1e-8;

/// The algorithm of [`DeepProgram::solve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeepMethod {
    /// The lifted barrier method of `dense_ipm`: Newton steps on dense normal equations of size = number
    /// of constraints. Measured: it stalls at certified relative gaps of 1e-5–1e-4 on the small programs of
    /// math.md §6 and 7e-5 / 7e-4 / 7e-3 at 25 / 50 / 100 candidates per layer (N = 16, depth 3).
    InteriorPoint,
    /// **Experimental**: the structured path-following barrier method of `ipm` on the power-cone form
    /// of math.md §7 — normal equations eliminated column by column onto a dense Schur complement of
    /// size $\sum_\ell n_\ell + N$, exact feasibility projection, certified stopping and an active-set polish.
    /// Certifies two-level programs to rounding; on deeper programs it currently stalls at certified
    /// gaps of 1e-5–1e-6 (the barrier's multipliers lose accuracy as μ → 0, and its first centerings
    /// take hundreds of damped Newton steps at 100+ candidates per layer). See the module docs.
    StructuredBarrier,
    /// The augmented Lagrangian with projected L-BFGS inner solves and smoothed perspectives. First order:
    /// cheap per iteration but ill-conditioned near $p\to0$ (the perspective's curvature grows like $1/p$), so
    /// it typically stalls at moderate accuracy; kept for larger candidate sets and as a cross-check.
    AugmentedLagrangian,
    /// The conic form of math.md §7 (power, exponential and nonnegative cones) solved by Clarabel
    /// (`conic`): the general engine here (every q, the entropy, the logistic loss), and the one that certifies — relative gaps of
    /// 4e-11 to 4e-9 on the small programs of the tests, 1.4e-9 (C16) and 6.5e-10 (C23) in `nff verify
    /// --quick`, 2.6e-9 at 25 candidates per layer (N = 16, depth 3); at 100+ candidates per layer on
    /// ill-conditioned features it ends `AlmostSolved` (reported as `Stalled`) with primal residuals ~1e-6.
    /// Cold start only (Clarabel has no warm start).
    Clarabel,
    /// **The default**: [`DeepMethod::SecondOrderCone`] where it applies ($q = 2$, no entropy, the squared loss,
    /// positive strengths), [`DeepMethod::Clarabel`] otherwise; and when the second-order-cone solve does not
    /// certify a relative gap of [`AUTO_CERTIFIED`], Clarabel as well, keeping the result with the smaller
    /// certified gap. [`DeepSolution::method`] names the engine whose result is returned.
    Auto,
    /// nff's own primal–dual interior-point method on the second-order-cone form (`socp`): NT scaling,
    /// Mehrotra predictor–corrector, normal equations eliminated column block by column block onto a
    /// dense Schur complement on $\sum_\ell n_\ell + L + N$ globals. For $q = 2$, no entropy, the squared loss.
    SecondOrderCone,
}

/// Options of [`DeepProgram::solve`].
#[derive(Clone, Copy, Debug, Serialize)]
pub struct DeepOptions {
    /// The algorithm.
    pub method: DeepMethod,
    /// Target primal residual (mass units, $\infty$-norm).
    pub tol_primal: f64,
    /// Target dual residual (gradient of the Lagrangian in mass variables, $\infty$-norm).
    pub tol_dual: f64,
    /// Interior point: stop when the barrier gap $|\mathcal B|\mu\le$ `tol_gap`$\cdot|f|$.
    pub tol_gap: f64,
    /// Interior point: Newton-step limit.
    pub max_newton: usize,
    /// A feature is in the support when $p_\ell(j) >$ `support_tol`$\cdot\max_jp_\ell(j)$ (KKT report and bound).
    pub support_tol: f64,
    /// Augmented Lagrangian: outer (multiplier) iterations.
    pub max_outer: usize,
    /// Augmented Lagrangian: inner L-BFGS iterations per outer iteration.
    pub max_inner: usize,
    /// Augmented Lagrangian: initial penalty $\sigma$.
    pub sigma0: f64,
    /// Augmented Lagrangian: initial perspective smoothing $\varepsilon$.
    pub eps0: f64,
    /// Augmented Lagrangian: final perspective smoothing $\varepsilon_{\min}$.
    pub eps_min: f64,
    /// Augmented Lagrangian: L-BFGS memory.
    pub memory: usize,
    /// Threads for the interior point's products (results do not depend on it).
    pub threads: usize,
}

impl Default for DeepOptions {
    fn default() -> Self {
        Self {
            method: DeepMethod::Auto,
            tol_primal: 1e-10,
            tol_dual: 1e-9,
            tol_gap: 1e-10,
            max_newton: 500,
            support_tol: 1e-4,
            max_outer: 60,
            max_inner: 3000,
            sigma0: 10.0,
            eps0: 1e-4,
            eps_min: 1e-14,
            memory: 20,
            threads: 1,
        }
    }
}

/// Dual-side numbers of a point: the certified lower bound and the density values.
#[derive(Clone, Debug, Serialize)]
pub struct DualBound {
    /// The certified lower bound $D$ on the optimum ($-\infty$ if no feasible repair exists, e.g. a
    /// zero $\lambda$ with nonzero coupling).
    pub value: f64,
    /// $E_\ell(j)$ for every candidate (the density function of §4.4 without $c_\ell$).
    pub density: Vec<Vec<f64>>,
    /// How much the coverage constraints had to be repaired ($\max$ increase of an $\alpha$, or for
    /// $q = 1$ the largest shrink factor deficit $1 - \theta$).
    pub repair: f64,
}

/// KKT residuals at a point with given multipliers (mass variables).
#[derive(Clone, Debug, Serialize)]
pub struct DeepKkt {
    /// $\max$ over weights of the stationarity residual
    /// $|\lambda q[(S^{\rm in}_k/p_k)^{q-1} + (S^{\rm out}_j/p_j)^{q-1}]\operatorname{sign}\hat U_{jk} + \boldsymbol\mu_k^\top h_j|$ where
    /// $\hat U_{jk}\ne0$, and $(|\boldsymbol\mu_k^\top h_j| - \lambda q[\dots])_+$ where $\hat U_{jk} = 0$, over pairs of supported features.
    pub weight: f64,
    /// The same for the output weights with $\mathbf r^*$.
    pub output: f64,
    /// Per layer: $\max - \min$ of $E_\ell$ over the support (0 at a KKT point).
    pub density_spread: Vec<f64>,
    /// Per layer: $(\min_{\rm support}E_\ell - \min_{\rm off}E_\ell)_+$ (> 0: an unused candidate is cheaper).
    pub density_violation: Vec<f64>,
    /// Per layer: spread $(\max - \min)/\max$ of the outgoing usage $S^{\rm out}_j/p_j$ on the support (C23).
    pub usage_spread: Vec<f64>,
}

/// The result of a deep solve.
#[derive(Clone, Debug, Serialize)]
pub struct DeepSolution {
    /// The exact objective at the returned point.
    pub objective: f64,
    /// The certified lower bound on the optimum.
    pub dual_bound: f64,
    /// `objective - dual_bound` (not a certificate unless the primal residual is ~0).
    pub gap: f64,
    /// `gap / |objective|`.
    pub relative_gap: f64,
    /// Interior point: the barrier's own gap estimate $|\mathcal B|\mu$ at the last centering; Clarabel:
    /// its own $|f_{\rm primal} - f_{\rm dual}|$.
    pub barrier_gap: Option<f64>,
    /// Max constraint violation in density units.
    pub primal_residual: f64,
    /// Max feature-consistency violation of the mapped network, $\max_{k:p_k>0}\|e_k\|_\infty/p_k$.
    pub feature_residual: f64,
    /// Projected gradient of the Lagrangian ($\infty$-norm, mass variables).
    pub dual_residual: f64,
    /// KKT residuals.
    pub kkt: DeepKkt,
    /// The point.
    pub point: DeepPoint,
    /// The multipliers.
    pub multipliers: DeepMultipliers,
    /// Predictions on the training points.
    pub predictions: Vec<f64>,
    /// The algorithm used.
    pub method: DeepMethod,
    /// Outer iterations (barrier stages or multiplier updates).
    pub outer_iterations: usize,
    /// Inner iterations, total (Newton steps or L-BFGS iterations).
    pub inner_iterations: usize,
    /// L-BFGS memory resets (non-descent directions, failed line searches), total.
    pub lbfgs_resets: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Why the solver stopped. For the interior point, `Stalled` means the centering reached the
    /// floating-point floor of the current $\mu$ (typically $\mu\sim10^{-9}$): the point is still
    /// feasible to `primal_residual`, and `relative_gap` (certified) states its accuracy.
    pub termination: Termination,
}

/// A network recovered from a point of the program (§4.3 bijection), with the masses it was built from.
#[derive(Clone, Debug)]
pub struct MappedNetwork {
    /// A width-$m$ network computing the same features and predictions (masses absorbed into the weights:
    /// $W'_{jk} = m\,p_j w_{jk}$, $v'_j = m\,p_jv_j$; unused slots are zero units).
    pub net: Network,
    /// Masses $p_\ell(j) = \pi_\ell(j)\rho_\ell(j)$ of the units kept (in network order).
    pub masses: Vec<Vec<f64>>,
    /// Candidate index of each kept unit.
    pub index: Vec<Vec<usize>>,
    /// The weights in the original parameterization, $w_{\ell+1}(j,k) = \tilde u/(\rho_\ell\rho_{\ell+1})$ between kept units.
    pub w_original: Vec<Mat<f64>>,
    /// $v(j) = \tilde u_{L+1}(j)/\rho_L(j)$ on kept units.
    pub v_original: Vec<f64>,
}

/// The deep program: data, activation, loss, candidates and strengths (validated).
#[derive(Clone, Debug)]
pub struct DeepProgram {
    pub(crate) loss: Loss,
    pub(crate) activation: Activation,
    pub(crate) x: Mat<f64>,
    pub(crate) y: Vec<f64>,
    pub(crate) cand: DeepCandidates,
    pub(crate) cfg: DeepConfig,
    /// $h(\mathbf z)$ per layer ($N\times n_\ell$).
    pub(crate) h: Vec<Mat<f64>>,
    /// Linear feature costs $r_\ell(j)$ (layer 1: $\lambda_a$ times the min-norm cost).
    pub cost: Vec<Vec<f64>>,
}
