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
//! # The Lagrangian lower bound \[derived\]
//! Dualize mass ($c_\ell$), consistency ($\boldsymbol\mu_{\ell+1}(k)\in\mathbb R^N$, in mass units) and output
//! ($\mathbf r^*$), and write each perspective through its conjugate, for $q>1$
//! $$\frac{S^q}{p^{q-1}} = \sup_{\alpha\ge0}\ \alpha S - p\,\kappa(\alpha),\qquad \kappa(\alpha) = (q-1)(\alpha/q)^{q/(q-1)},$$
//! (attained at $\alpha = q(S/p)^{q-1}$; for $q = 1$, $\kappa = 0$ on $\[0,1\]$ and $+\infty$ beyond). Fixing any $\alpha\ge0$
//! lower-bounds the objective by a function linear in $(|\hat U|, p, |\hat v|)$, whose infimum is explicit. The result:
//! for **any** $\mathbf r^*$, $\boldsymbol\mu$ and $\alpha\ge0$ with
//! $$|\boldsymbol\mu_{\ell+1}(k)^\top h(\mathbf z_{\ell,j})|\le\lambda_\ell\big(\alpha^{\rm in}_{\ell+1}(k) + \alpha^{\rm out}_\ell(j)\big),\qquad
//!   |\mathbf r^{*\top}h(\mathbf z_{L,j})|\le\lambda_v\,\alpha^v(j),$$
//! the value
//! $$D = -F^*(\mathbf r^*) + \sum_\ell\begin{cases}\min_jE_\ell(j) & \beta_\ell = 0\\ -\beta_\ell\log\sum_j\pi_\ell(j)e^{-E_\ell(j)/\beta_\ell - 1} - \beta_\ell & \beta_\ell>0\end{cases}$$
//! $$E_\ell(j) = r_\ell(j) - \boldsymbol\mu_\ell(j)^\top\mathbf z_{\ell,j} - \lambda_{\ell-1}\kappa(\alpha^{\rm in}_\ell(j)) - \lambda_\ell\kappa(\alpha^{\rm out}_\ell(j)) - [\ell = L]\lambda_v\kappa(\alpha^v(j))$$
//! (terms absent at the ends: no $\boldsymbol\mu_1$, no $\alpha^{\rm in}_1$, no $\alpha^{\rm out}_L$) is a **certified lower bound** on the
//! optimum (the $c_\ell$ have been maximized out in closed form). $E_\ell$ is exactly the density function of
//! math.md §4.4 (with $\alpha$ at its optimal value it reads $\beta(\log\rho+1) + r_\ell - (q-1)[\lambda(S^{\rm in}/\rho)^q + \lambda(S^{\rm out}/\rho)^q] - \boldsymbol\mu^\top\mathbf z + c$);
//! dual feasibility for $\beta = 0$ is the density condition "$\ge$ off the support, $=$ on it".
//! [`DeepProgram::dual_bound`] takes $\alpha$ from the primal point and repairs the coverage constraints by raising
//! $\alpha^{\rm out}$ of unused features, then $\alpha^{\rm in}$ (for $q = 1$: by scaling $\boldsymbol\mu_k$, $\mathbf r^*$ into the box).
//!
//! # The solver
//! Split $\hat U = \hat U^+ - \hat U^-$, $\hat v = \hat v^+ - \hat v^-$, all variables $\ge0$. Augmented Lagrangian
//! $L_\sigma = f + \sum_\ell(c_\ell m_\ell + \frac\sigma2m_\ell^2) + \sum_{\ell,k}(\boldsymbol\mu_k^\top e_k + \frac\sigma2\|e_k\|^2)$ with mass residuals $m_\ell$
//! and consistency residuals $e_k$; the inner problem (bounds only) is solved by the projected L-BFGS of
//! [`crate::lbfgs`]. The perspectives are smoothed as $S^q/(p+\varepsilon)^{q-1}$ with $\varepsilon\downarrow\varepsilon_{\min}$ over the
//! outer iterations (a convex under-estimate; the reported objective is always the exact one). Updates
//! $\boldsymbol\mu\leftarrow\boldsymbol\mu + \sigma e$, $c\leftarrow c + \sigma m$; $\sigma\times10$ when the residual did not shrink by 4×. At the end
//! weights touching a feature with $p = 0$ are set to 0 (so the exact objective is finite), then residuals, the
//! exact objective, the KKT (dual) residual and the lower bound are evaluated at that point.
use crate::conjugate::{risk_conjugate, xlogx};
use crate::error::{ensure_finite, ensure_nonneg, Result, SolverError};
use crate::lbfgs::{self, LbfgsOptions, Termination};
use crate::linalg::pinv;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use nff_core::network::Workspace;
use nff_core::{rng, Activation, Arch, Dataset, Loss, Network, Problem, Regularizer};
use serde::Serialize;
use std::time::Instant;

/// Candidate features per layer and reference weights $\pi_\ell$.
#[derive(Clone, Debug)]
pub struct DeepCandidates {
    /// First-layer weights of the layer-1 candidates, $d\times n_1$ ($\mathbf z_{1,j} = Xa_j$).
    pub a: Mat<f64>,
    /// Features of every layer, $N\times n_\ell$ (layer 1 is $XA$).
    pub z: Vec<Mat<f64>>,
    /// Reference weights $\pi_\ell(j) > 0$.
    pub pi: Vec<Vec<f64>>,
    /// How many leading candidates of each layer are particles of a network (0 if none).
    pub n_particles: Vec<usize>,
}

impl DeepCandidates {
    /// Candidates from first-layer weights $a$ ($d\times n_1$), the features of layers $2..L$ and weights
    /// $\pi$ (`None`: uniform $1/n_\ell$).
    pub fn new(
        data: &Dataset,
        a: Mat<f64>,
        middle: Vec<Mat<f64>>,
        pi: Option<Vec<Vec<f64>>>,
    ) -> Result<Self> {
        data.validate()?;
        if a.nrows() != data.d() {
            return Err(SolverError::shape(
                "first-layer candidate weights a",
                format!("{} rows (the data's input dimension)", data.d()),
                format!("{} rows", a.nrows()),
            ));
        }
        let mut z = vec![data.x.as_ref() * a.as_ref()];
        z.extend(middle);
        let pi = pi.unwrap_or_else(|| {
            z.iter()
                .map(|zl| vec![1.0 / zl.ncols().max(1) as f64; zl.ncols()])
                .collect()
        });
        let c = Self {
            a,
            n_particles: vec![0; z.len()],
            z,
            pi,
        };
        c.validate(data.n())?;
        Ok(c)
    }

    /// Candidates = the particles of a DNN or two-level network (first in each layer) plus `fresh`
    /// samples per layer, $\pi$ uniform. Fresh first-layer candidates are $Xa$ with $a\sim\mathcal N(0, s^2I)$, $s$ the
    /// root-mean-square entry of $A$; fresh middle features are $\mathcal N(0, C_\ell + 10^{-3}\bar cI)$ with $C_\ell$ the
    /// empirical second moment $\frac1m Z_\ell Z_\ell^\top$ of the layer's particles \[guess: a natural full-support law\].
    pub fn from_network(problem: &Problem, net: &Network, fresh: usize, seed: u64) -> Result<Self> {
        problem.check_network(net)?;
        let s = net.shape();
        if s.arch == Arch::ResNet {
            return Err(SolverError::invalid(
                "architecture",
                "a standard DNN or two-level network (the §4.2 program has no skip connections)",
                s.arch,
            ));
        }
        let (n, m, d) = (problem.n(), s.m, s.d);
        let mut ws = Workspace::new(s, n);
        problem.forward_into(net, &mut ws, Par::Seq);
        let mut r = rng::rng(seed, "deep-candidates");
        let a_rms = (net.a().squared_norm_l2() / (d * m) as f64)
            .sqrt()
            .max(1e-3);
        let a = Mat::from_fn(
            d,
            m + fresh,
            |i, j| {
                if j < m {
                    net.a()[(i, j)]
                } else {
                    0.0
                }
            },
        );
        let mut a = a;
        for j in m..m + fresh {
            for i in 0..d {
                a[(i, j)] = a_rms * rng::normal(&mut r);
            }
        }
        let mut middle = Vec::new();
        for l in 1..s.depth {
            let zl = ws.z(l);
            let mut cov = Mat::<f64>::zeros(n, n);
            matmul(
                cov.as_mut(),
                Accum::Replace,
                zl,
                zl.transpose(),
                1.0 / m as f64,
                Par::Seq,
            );
            let mean_diag = (0..n).map(|i| cov[(i, i)]).sum::<f64>() / n as f64;
            for i in 0..n {
                cov[(i, i)] += 1e-3 * mean_diag.max(1e-12);
            }
            let chol = cov.llt(faer::Side::Lower).map_err(|e| {
                SolverError::numerical("fresh feature covariance", format!("{e:?}"))
            })?;
            let lmat = chol.L().to_owned();
            let mut zf = Mat::<f64>::zeros(n, m + fresh);
            for j in 0..m {
                for i in 0..n {
                    zf[(i, j)] = zl[(i, j)];
                }
            }
            for j in m..m + fresh {
                let g: Vec<f64> = (0..n).map(|_| rng::normal(&mut r)).collect();
                for i in 0..n {
                    zf[(i, j)] = (0..=i).map(|c| lmat[(i, c)] * g[c]).sum();
                }
            }
            middle.push(zf);
        }
        let mut c = Self::new(&problem.data, a, middle, None)?;
        // Layer 1 features of the particles exactly as the network computes them.
        for j in 0..m {
            for i in 0..n {
                c.z[0][(i, j)] = ws.z(0)[(i, j)];
            }
        }
        c.n_particles = vec![m; s.depth];
        Ok(c)
    }

    /// Number of layers $L$.
    pub fn depth(&self) -> usize {
        self.z.len()
    }
    /// Candidates per layer $n_\ell$.
    pub fn sizes(&self) -> Vec<usize> {
        self.z.iter().map(|z| z.ncols()).collect()
    }

    fn validate(&self, n: usize) -> Result<()> {
        if self.z.is_empty() {
            return Err(SolverError::invalid("candidate layers", "L >= 1", 0));
        }
        if self.pi.len() != self.z.len() || self.n_particles.len() != self.z.len() {
            return Err(SolverError::shape(
                "reference weights pi",
                format!("{} layers", self.z.len()),
                format!("{} layers", self.pi.len()),
            ));
        }
        for (l, (zl, pl)) in self.z.iter().zip(&self.pi).enumerate() {
            if zl.ncols() == 0 {
                return Err(SolverError::invalid(
                    format!("candidate set of layer {}", l + 1),
                    "at least one candidate",
                    "0 candidates",
                ));
            }
            if zl.nrows() != n {
                return Err(SolverError::shape(
                    format!("features of layer {}", l + 1),
                    format!("{n} rows (one per data point)"),
                    format!("{} rows", zl.nrows()),
                ));
            }
            if pl.len() != zl.ncols() {
                return Err(SolverError::shape(
                    format!("reference weights of layer {}", l + 1),
                    format!("{} entries", zl.ncols()),
                    format!("{} entries", pl.len()),
                ));
            }
            ensure_finite(
                &format!("features of layer {}", l + 1),
                (0..zl.ncols()).flat_map(|j| (0..n).map(move |i| zl[(i, j)])),
            )?;
            if let Some(x) = pl.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                return Err(SolverError::invalid(
                    format!("reference weights of layer {}", l + 1),
                    "finite values > 0 (full support)",
                    x,
                ));
            }
        }
        Ok(())
    }
}

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

/// The algorithm of [`DeepProgram::solve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeepMethod {
    /// The lifted barrier method of [`crate::deep_ipm`] (default): Newton steps on dense normal equations
    /// of size = number of constraints; accurate (relative gaps ~1e-9) on the small sizes of math.md §6.
    InteriorPoint,
    /// The augmented Lagrangian with projected L-BFGS inner solves and smoothed perspectives. First order:
    /// cheap per iteration but ill-conditioned near $p\to0$ (the perspective's curvature grows like $1/p$), so
    /// it typically stalls at moderate accuracy; kept for larger candidate sets and as a cross-check.
    AugmentedLagrangian,
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
}

impl Default for DeepOptions {
    fn default() -> Self {
        Self {
            method: DeepMethod::InteriorPoint,
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
    /// Interior point: the barrier's own gap estimate $|\mathcal B|\mu$ at the last centering.
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
    activation: Activation,
    x: Mat<f64>,
    pub(crate) y: Vec<f64>,
    pub(crate) cand: DeepCandidates,
    pub(crate) cfg: DeepConfig,
    /// $h(\mathbf z)$ per layer ($N\times n_\ell$).
    pub(crate) h: Vec<Mat<f64>>,
    /// Linear feature costs $r_\ell(j)$ (layer 1: $\lambda_a$ times the min-norm cost).
    pub cost: Vec<Vec<f64>>,
}

/// The KKT (dual) residual of the Lagrangian gradient `g` at the split point `x`: $|g_i|$ where $x_i$ is above
/// `tol` times the largest entry of its block (the variable is "in the support"), $\max(0, -g_i)$ elsewhere
/// (a variable at, or numerically at, its bound 0 only needs a nonnegative gradient).
fn thresholded_dual_residual(lay: &Layout, x: &[f64], g: &[f64], tol: f64) -> f64 {
    // Groups sharing one threshold: each layer's masses; U⁺ and U⁻ of a layer together; v⁺ and v⁻.
    let mut groups: Vec<Vec<std::ops::Range<usize>>> = Vec::new();
    for l in 0..lay.nl() {
        groups.push(std::iter::once(lay.rho[l]..lay.rho[l] + lay.n[l]).collect());
    }
    for l in 0..lay.nl() - 1 {
        let cnt = lay.n[l] * lay.n[l + 1];
        groups.push(vec![lay.up[l]..lay.up[l] + cnt, lay.um[l]..lay.um[l] + cnt]);
    }
    let nv = lay.n[lay.nl() - 1];
    groups.push(vec![lay.vp..lay.vp + nv, lay.vm..lay.vm + nv]);
    let mut res: f64 = 0.0;
    for grp in groups {
        let thr = tol
            * grp
                .iter()
                .flat_map(|b| x[b.clone()].iter().copied())
                .fold(0.0, f64::max);
        for b in grp {
            for i in b {
                let r = if x[i] > thr && x[i] > 0.0 {
                    g[i].abs()
                } else {
                    (-g[i]).max(0.0)
                };
                res = res.max(r);
            }
        }
    }
    res
}

/// Counters of a solve.
struct RunStats {
    outer: usize,
    inner: usize,
    resets: usize,
    barrier_gap: Option<f64>,
    termination: Termination,
    eps: f64,
}

/// Offsets of the blocks of the split variable vector (mass variables).
#[derive(Clone, Debug)]
struct Layout {
    n: Vec<usize>,
    rho: Vec<usize>,
    up: Vec<usize>,
    um: Vec<usize>,
    vp: usize,
    vm: usize,
    len: usize,
}

impl Layout {
    fn new(n: &[usize]) -> Self {
        let mut off = 0;
        let mut rho = Vec::new();
        for &nl in n {
            rho.push(off);
            off += nl;
        }
        let (mut up, mut um) = (Vec::new(), Vec::new());
        for l in 0..n.len() - 1 {
            up.push(off);
            off += n[l] * n[l + 1];
            um.push(off);
            off += n[l] * n[l + 1];
        }
        let vp = off;
        off += n[n.len() - 1];
        let vm = off;
        off += n[n.len() - 1];
        Self {
            n: n.to_vec(),
            rho,
            up,
            um,
            vp,
            vm,
            len: off,
        }
    }
    fn nl(&self) -> usize {
        self.n.len()
    }
}

/// A point in mass variables (signed).
#[derive(Clone, Debug)]
pub(crate) struct Mass {
    pub(crate) p: Vec<Vec<f64>>,
    pub(crate) u: Vec<Mat<f64>>,
    pub(crate) v: Vec<f64>,
}

/// $(\alpha^{\rm in}_\ell, \alpha^{\rm out}_\ell, \alpha^v)$: per layer (indexed by the layer of the feature) and output.
pub(crate) type Alphas = (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<f64>);

/// Per layer: $p$ counts as used above `tol`$\cdot\max p$ (and above 0).
fn support_thresholds(m: &Mass, tol: f64) -> Vec<f64> {
    m.p.iter()
        .map(|p| tol * p.iter().copied().fold(0.0, f64::max))
        .collect()
}

/// $\kappa(\alpha) = (q-1)(\alpha/q)^{q/(q-1)}$ (for $q = 1$: 0).
fn kappa(alpha: f64, q: f64) -> f64 {
    if q == 1.0 {
        0.0
    } else {
        (q - 1.0) * (alpha / q).powf(q / (q - 1.0))
    }
}

/// Perspective $S^q/(p+\varepsilon)^{q-1}$ with derivatives in $S$ and $p$ (exact conventions at $\varepsilon = 0$).
fn persp(s: f64, p: f64, q: f64, eps: f64) -> (f64, f64, f64) {
    if q == 1.0 {
        return (s, 1.0, 0.0);
    }
    let t = p + eps;
    if t <= 0.0 {
        return if s == 0.0 {
            (0.0, 0.0, 0.0)
        } else {
            (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY)
        };
    }
    let ratio = s / t;
    let rq1 = ratio.powf(q - 1.0);
    (s * rq1, q * rq1, (1.0 - q) * rq1 * ratio)
}

impl DeepProgram {
    /// A validated program. Errors: invalid data, candidate shapes, $\lambda$'s negative or NaN, $q<1$,
    /// $\beta$'s negative, lengths of `lambda_w` ($L-1$) or `beta` ($L$) wrong, logistic labels not $\pm1$.
    pub fn new(
        data: &Dataset,
        activation: Activation,
        loss: Loss,
        cand: DeepCandidates,
        cfg: DeepConfig,
    ) -> Result<Self> {
        data.validate()?;
        let n = data.n();
        cand.validate(n)?;
        let depth = cand.depth();
        if cand.a.nrows() != data.d() || cand.a.ncols() != cand.z[0].ncols() {
            return Err(SolverError::shape(
                "first-layer candidate weights a",
                format!("({}, {})", data.d(), cand.z[0].ncols()),
                format!("({}, {})", cand.a.nrows(), cand.a.ncols()),
            ));
        }
        if cfg.lambda_w.len() != depth - 1 {
            return Err(SolverError::shape(
                "middle-layer strengths lambda_w",
                format!("{} entries (L - 1)", depth - 1),
                format!("{} entries", cfg.lambda_w.len()),
            ));
        }
        if cfg.beta.len() != depth {
            return Err(SolverError::shape(
                "entropies beta",
                format!("{depth} entries (L)"),
                format!("{} entries", cfg.beta.len()),
            ));
        }
        ensure_nonneg("lambda_a", cfg.lambda_a)?;
        ensure_nonneg("lambda_v", cfg.lambda_v)?;
        for &l in &cfg.lambda_w {
            ensure_nonneg("lambda_w", l)?;
        }
        for &b in &cfg.beta {
            ensure_nonneg("beta", b)?;
        }
        if !(cfg.q.is_finite() && cfg.q >= 1.0) {
            return Err(SolverError::invalid(
                "exponent q",
                "a finite value >= 1",
                cfg.q,
            ));
        }
        if loss == Loss::Logistic {
            if let Some(y) = data.y.iter().find(|&&y| y != 1.0 && y != -1.0) {
                return Err(SolverError::invalid(
                    "targets for the logistic loss",
                    "labels in {-1, +1}",
                    y,
                ));
            }
        }
        let h = cand
            .z
            .iter()
            .map(|zl| Mat::from_fn(zl.nrows(), zl.ncols(), |i, j| activation.value(zl[(i, j)])))
            .collect();
        let xp = pinv(data.x.as_ref())
            .ok_or_else(|| SolverError::numerical("pseudo-inverse of X", "SVD failed"))?;
        let amin = xp.as_ref() * cand.z[0].as_ref();
        let mut cost: Vec<Vec<f64>> = cand.z.iter().map(|zl| vec![0.0; zl.ncols()]).collect();
        for j in 0..amin.ncols() {
            let sq: f64 = (0..amin.nrows()).map(|i| amin[(i, j)].powi(2)).sum();
            cost[0][j] = cfg.lambda_a * 0.5 * sq;
        }
        Ok(Self {
            loss,
            activation,
            x: data.x.clone(),
            y: data.y.clone(),
            cand,
            cfg,
            h,
            cost,
        })
    }

    /// The program of a trained network with `Regularizer::GroupL1q { lambda, q }`: candidates are its
    /// particles plus `fresh` samples per layer ([`DeepCandidates::from_network`]), strengths
    /// [`DeepConfig::group_l1q`]. Returns the program and the network's point.
    pub fn from_network(
        problem: &Problem,
        net: &Network,
        fresh: usize,
        seed: u64,
    ) -> Result<(Self, DeepPoint)> {
        let (lambda, q) = match problem.reg {
            Regularizer::GroupL1q { lambda, q } => (lambda, q),
            other => {
                return Err(SolverError::invalid(
                    "regularizer",
                    "GroupL1q (the convex-compatible group norms of §4.3)",
                    format!("{other:?}"),
                ))
            }
        };
        let cand = DeepCandidates::from_network(problem, net, fresh, seed)?;
        let depth = cand.depth();
        let prog = Self::new(
            &problem.data,
            problem.activation,
            problem.loss,
            cand,
            DeepConfig::group_l1q(lambda, q, depth),
        )?;
        let point = prog.point_from_network(net)?;
        Ok((prog, point))
    }

    /// Number of layers $L$.
    pub fn depth(&self) -> usize {
        self.cand.depth()
    }
    /// Candidates per layer.
    pub fn sizes(&self) -> Vec<usize> {
        self.cand.sizes()
    }
    /// The candidates.
    pub fn candidates(&self) -> &DeepCandidates {
        &self.cand
    }
    /// The strengths.
    pub fn config(&self) -> &DeepConfig {
        &self.cfg
    }
    pub(crate) fn n(&self) -> usize {
        self.y.len()
    }
    pub(crate) fn lambda_layer(&self, l: usize) -> f64 {
        self.cfg.lambda_w[l]
    }

    pub(crate) fn check_point(&self, pt: &DeepPoint) -> Result<()> {
        let sizes = self.sizes();
        let depth = sizes.len();
        let bad = pt.rho.len() != depth
            || pt.u.len() != depth - 1
            || pt.v.len() != sizes[depth - 1]
            || pt.rho.iter().zip(&sizes).any(|(r, &n)| r.len() != n)
            || pt
                .u
                .iter()
                .enumerate()
                .any(|(l, u)| u.len() != sizes[l] * sizes[l + 1]);
        if bad {
            return Err(SolverError::shape(
                "deep program point",
                format!(
                    "rho lengths {sizes:?}, u blocks n_l*n_(l+1), v length {}",
                    sizes[depth - 1]
                ),
                format!(
                    "rho lengths {:?}, u lengths {:?}, v length {}",
                    pt.rho.iter().map(|r| r.len()).collect::<Vec<_>>(),
                    pt.u.iter().map(|r| r.len()).collect::<Vec<_>>(),
                    pt.v.len()
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn point_to_mass(&self, pt: &DeepPoint) -> Mass {
        let pi = &self.cand.pi;
        let sizes = self.sizes();
        let p = pt
            .rho
            .iter()
            .zip(pi)
            .map(|(r, w)| r.iter().zip(w).map(|(a, b)| a * b).collect())
            .collect();
        let u = (0..sizes.len() - 1)
            .map(|l| {
                Mat::from_fn(sizes[l], sizes[l + 1], |j, k| {
                    pt.u[l][j + k * sizes[l]] * pi[l][j] * pi[l + 1][k]
                })
            })
            .collect();
        let last = sizes.len() - 1;
        let v = pt.v.iter().zip(&pi[last]).map(|(a, b)| a * b).collect();
        Mass { p, u, v }
    }

    pub(crate) fn mass_to_point(&self, m: &Mass) -> DeepPoint {
        let pi = &self.cand.pi;
        let sizes = self.sizes();
        let rho =
            m.p.iter()
                .zip(pi)
                .map(|(r, w)| r.iter().zip(w).map(|(a, b)| a / b).collect())
                .collect();
        let u = (0..sizes.len() - 1)
            .map(|l| {
                let mut out = vec![0.0; sizes[l] * sizes[l + 1]];
                for k in 0..sizes[l + 1] {
                    for j in 0..sizes[l] {
                        out[j + k * sizes[l]] = m.u[l][(j, k)] / (pi[l][j] * pi[l + 1][k]);
                    }
                }
                out
            })
            .collect();
        let last = sizes.len() - 1;
        let v = m.v.iter().zip(&pi[last]).map(|(a, b)| a / b).collect();
        DeepPoint { rho, u, v }
    }

    /// Predictions $\hat{\mathbf y} = \sum_j\tilde u_{L+1}(j)h(\mathbf z_{L,j})\pi_L(j)$.
    pub fn predictions(&self, pt: &DeepPoint) -> Result<Vec<f64>> {
        self.check_point(pt)?;
        Ok(self.predict_mass(&self.point_to_mass(pt).v))
    }

    pub(crate) fn predict_mass(&self, v: &[f64]) -> Vec<f64> {
        let hl = &self.h[self.depth() - 1];
        let mut yhat = vec![0.0; self.n()];
        for (j, &vj) in v.iter().enumerate() {
            if vj != 0.0 {
                for (i, y) in yhat.iter_mut().enumerate() {
                    *y += vj * hl[(i, j)];
                }
            }
        }
        yhat
    }

    /// The exact objective of the module docs at a point ($+\infty$ outside the domain).
    pub fn objective(&self, pt: &DeepPoint) -> Result<f64> {
        self.check_point(pt)?;
        Ok(self.objective_mass(&self.point_to_mass(pt), 0.0))
    }

    /// The same objective with the middle-layer penalties replaced by **plain L2 weight decay**
    /// $\lambda_\ell\int\!\!\int\tilde u^2/(\rho_\ell\rho_{\ell+1})\,d\pi_\ell d\pi_{\ell+1}$ (= $\lambda_\ell\mathbb E|w|^2$ in the original variables):
    /// **not convex** (math.md §4.3; used by the C14 midpoint tests only).
    pub fn objective_plain_l2_middle(&self, pt: &DeepPoint) -> Result<f64> {
        self.check_point(pt)?;
        let mut m = self.point_to_mass(pt);
        let mut val = self.objective_mass(
            &{
                let mut z = m.clone();
                for u in z.u.iter_mut() {
                    *u = Mat::zeros(u.nrows(), u.ncols());
                }
                z
            },
            0.0,
        );
        // Remove nothing else: the middle penalties of the zeroed copy vanish; add the L2 ones.
        for (l, u) in m.u.iter_mut().enumerate() {
            let lam = self.lambda_layer(l);
            for k in 0..u.ncols() {
                for j in 0..u.nrows() {
                    let x = u[(j, k)];
                    let (a, b) = (m.p[l][j], m.p[l + 1][k]);
                    val += lam * crate::convexity::plain_l2_integrand(x, a, b);
                }
            }
        }
        Ok(val)
    }

    /// Objective in mass variables with smoothing $\varepsilon$ (exact at $\varepsilon = 0$).
    pub(crate) fn objective_mass(&self, m: &Mass, eps: f64) -> f64 {
        let q = self.cfg.q;
        let depth = self.depth();
        let yhat = self.predict_mass(&m.v);
        let mut val = self.loss.risk(&yhat, &self.y);
        for (l, u) in m.u.iter().enumerate() {
            let lam = self.lambda_layer(l);
            for k in 0..u.ncols() {
                let s: f64 = (0..u.nrows()).map(|j| u[(j, k)].abs()).sum();
                val += lam * persp(s, m.p[l + 1][k], q, eps).0;
            }
            for j in 0..u.nrows() {
                let s: f64 = (0..u.ncols()).map(|k| u[(j, k)].abs()).sum();
                val += lam * persp(s, m.p[l][j], q, eps).0;
            }
        }
        for (j, vj) in m.v.iter().enumerate() {
            val += self.cfg.lambda_v * persp(vj.abs(), m.p[depth - 1][j], q, eps).0;
        }
        for l in 0..depth {
            let beta = self.cfg.beta[l];
            for (j, &p) in m.p[l].iter().enumerate() {
                if p < 0.0 {
                    return f64::INFINITY;
                }
                val += self.cost[l][j] * p;
                if beta > 0.0 {
                    val += beta * (xlogx(p) - p * self.cand.pi[l][j].ln());
                }
            }
        }
        val
    }

    /// Consistency residuals $e_k = \sum_j\hat U_{jk}h(\mathbf z_j) - p_k\mathbf z_k$ (mass units), $N\times n_{\ell+1}$ per layer.
    pub(crate) fn consistency_mass(&self, m: &Mass) -> Vec<Mat<f64>> {
        (0..self.depth() - 1)
            .map(|l| {
                let mut e = self.h[l].as_ref() * m.u[l].as_ref();
                let z = &self.cand.z[l + 1];
                for k in 0..e.ncols() {
                    let pk = m.p[l + 1][k];
                    for i in 0..e.nrows() {
                        e[(i, k)] -= pk * z[(i, k)];
                    }
                }
                e
            })
            .collect()
    }

    /// Primal residuals: (max over mass and density-form consistency violations, max feature violation
    /// $\|e_k\|_\infty/p_k$ over supported $k$).
    pub(crate) fn residuals_mass(&self, m: &Mass) -> (f64, f64) {
        let mut prim: f64 =
            m.p.iter()
                .map(|p| (p.iter().sum::<f64>() - 1.0).abs())
                .fold(0.0, f64::max);
        let mut feat: f64 = 0.0;
        for (l, e) in self.consistency_mass(m).iter().enumerate() {
            for k in 0..e.ncols() {
                let emax = (0..e.nrows()).map(|i| e[(i, k)].abs()).fold(0.0, f64::max);
                prim = prim.max(emax / self.cand.pi[l + 1][k]);
                if m.p[l + 1][k] > 0.0 {
                    feat = feat.max(emax / m.p[l + 1][k]);
                }
            }
        }
        (prim, feat)
    }

    /// Constraint residuals of a point: (max violation in density units, max feature violation of the
    /// mapped network).
    pub fn residuals(&self, pt: &DeepPoint) -> Result<(f64, f64)> {
        self.check_point(pt)?;
        Ok(self.residuals_mass(&self.point_to_mass(pt)))
    }

    /// The point of a width-$m$ network whose particles are the first $m$ candidates of every layer
    /// (as built by [`DeepCandidates::from_network`]): $\rho_\ell(j) = 1/(m\pi_\ell(j))$ on particles, 0 elsewhere,
    /// $\tilde u_{\ell+1}(j,k) = W_\ell\[j,k\]\rho_\ell(j)\rho_{\ell+1}(k)$, $\tilde u_{L+1}(j) = v_j\rho_L(j)$.
    pub fn point_from_network(&self, net: &Network) -> Result<DeepPoint> {
        let s = net.shape();
        if s.depth != self.depth() || self.cand.n_particles.iter().any(|&p| p != s.m) {
            return Err(SolverError::shape(
                "network vs candidates",
                format!(
                    "depth {} with {:?} particles per layer",
                    self.depth(),
                    self.cand.n_particles
                ),
                format!("depth {} and width {}", s.depth, s.m),
            ));
        }
        let m = s.m;
        let sizes = self.sizes();
        let mut mass = Mass {
            p: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            u: (0..sizes.len() - 1)
                .map(|l| Mat::zeros(sizes[l], sizes[l + 1]))
                .collect(),
            v: vec![0.0; sizes[sizes.len() - 1]],
        };
        let inv = 1.0 / m as f64;
        for p in mass.p.iter_mut() {
            for x in p.iter_mut().take(m) {
                *x = inv;
            }
        }
        for l in 0..sizes.len() - 1 {
            let w = net.w(l);
            for k in 0..m {
                for j in 0..m {
                    mass.u[l][(j, k)] = w[(j, k)] * inv * inv;
                }
            }
        }
        for (j, &vj) in net.v().iter().enumerate() {
            mass.v[j] = vj * inv;
        }
        Ok(self.mass_to_point(&mass))
    }

    /// Map a point back to a network (§4.3): keep the features with $\rho > 0$, set
    /// $w = \tilde u/(\rho_\ell\rho_{\ell+1})$, $v = \tilde u_{L+1}/\rho_L$, and absorb the masses into a uniform-width network
    /// (zero units pad the narrower layers). Its predictions equal the program's up to the consistency
    /// residual. Errors if a layer has no mass, or (q = 1 relaxation) a weight touches a massless feature.
    pub fn to_network(&self, pt: &DeepPoint) -> Result<MappedNetwork> {
        self.check_point(pt)?;
        let mass = self.point_to_mass(pt);
        let depth = self.depth();
        let index: Vec<Vec<usize>> = mass
            .p
            .iter()
            .map(|p| (0..p.len()).filter(|&j| p[j] > 0.0).collect())
            .collect();
        if let Some(l) = index.iter().position(|ix| ix.is_empty()) {
            return Err(SolverError::invalid(
                format!("density of layer {}", l + 1),
                "some candidate with positive mass",
                "all zero",
            ));
        }
        // Weights touching massless features must vanish.
        for (l, u) in mass.u.iter().enumerate() {
            for k in 0..u.ncols() {
                for j in 0..u.nrows() {
                    if u[(j, k)] != 0.0 && (mass.p[l][j] <= 0.0 || mass.p[l + 1][k] <= 0.0) {
                        return Err(SolverError::invalid(
                            format!("weight ({j}, {k}) of layer {}", l + 1),
                            "zero where a density vanishes (finite objective with q > 1)",
                            u[(j, k)],
                        ));
                    }
                }
            }
        }
        let m = index.iter().map(|ix| ix.len()).max().unwrap_or(1);
        let d = self.x.ncols();
        let mut a = Mat::<f64>::zeros(d, m);
        for (slot, &j) in index[0].iter().enumerate() {
            for i in 0..d {
                a[(i, slot)] = self.cand.a[(i, j)];
            }
        }
        let mf = m as f64;
        let mut ws = Vec::new();
        let mut w_orig = Vec::new();
        for l in 0..depth - 1 {
            let mut w = Mat::<f64>::zeros(m, m);
            let mut wo = Mat::<f64>::zeros(index[l].len(), index[l + 1].len());
            for (sk, &k) in index[l + 1].iter().enumerate() {
                for (sj, &j) in index[l].iter().enumerate() {
                    let uh = mass.u[l][(j, k)];
                    // w_jk = Û/(p_j p_k) (original weight); absorbed: m p_j w_jk = m Û/p_k.
                    wo[(sj, sk)] = uh / (mass.p[l][j] * mass.p[l + 1][k]);
                    w[(sj, sk)] = mf * uh / mass.p[l + 1][k];
                }
            }
            ws.push(w);
            w_orig.push(wo);
        }
        let mut v = vec![0.0; m];
        let mut vo = Vec::new();
        for (sj, &j) in index[depth - 1].iter().enumerate() {
            vo.push(mass.v[j] / mass.p[depth - 1][j]);
            v[sj] = mf * mass.v[j];
        }
        let arch = if depth == 1 {
            Arch::TwoLevel
        } else {
            Arch::Dnn
        };
        let wrefs: Vec<MatRef<'_, f64>> = ws.iter().map(|w| w.as_ref()).collect();
        let net = Network::from_blocks(arch, a.as_ref(), &wrefs, &v)?;
        let masses = index
            .iter()
            .enumerate()
            .map(|(l, ix)| ix.iter().map(|&j| mass.p[l][j]).collect())
            .collect();
        Ok(MappedNetwork {
            net,
            masses,
            index,
            w_original: w_orig,
            v_original: vo,
        })
    }

    /// The certified lower bound $D$ of the module docs at multipliers $(\boldsymbol\mu, \mathbf r^*)$, with $\alpha$
    /// taken from `pt` and repaired to dual feasibility. `mult.c` is not used (maximized out).
    /// Features with $p_\ell(j)\le$ `support_tol`$\cdot\max_jp_\ell(j)$ count as unused (their $\alpha^{\rm out}$ is repaired first
    /// and their $\boldsymbol\mu$ replaced by a best response when that helps); the bound is valid for any choice.
    pub fn dual_bound(
        &self,
        pt: &DeepPoint,
        mult: &DeepMultipliers,
        support_tol: f64,
    ) -> Result<DualBound> {
        self.check_point(pt)?;
        self.check_multipliers(mult)?;
        Ok(self.dual_bound_mass(&self.point_to_mass(pt), mult, support_tol))
    }

    pub(crate) fn check_multipliers(&self, mult: &DeepMultipliers) -> Result<()> {
        let sizes = self.sizes();
        let n = self.n();
        let ok = mult.mu.len() == sizes.len() - 1
            && mult
                .mu
                .iter()
                .enumerate()
                .all(|(l, m)| m.len() == n * sizes[l + 1])
            && mult.r.len() == n;
        if !ok {
            return Err(SolverError::shape(
                "multipliers",
                format!("mu blocks N x n_(l+1) for layers 2..L and r of length {n}"),
                format!(
                    "mu lengths {:?}, r length {}",
                    mult.mu.iter().map(|m| m.len()).collect::<Vec<_>>(),
                    mult.r.len()
                ),
            ));
        }
        ensure_finite(
            "multipliers",
            mult.mu.iter().flatten().chain(&mult.r).copied(),
        )
    }

    /// $\alpha$'s from the primal (at their optimal values $q(S/p)^{q-1}$; 0 where $p = 0$).
    fn alphas(&self, m: &Mass) -> Alphas {
        let q = self.cfg.q;
        let sizes = self.sizes();
        let depth = sizes.len();
        let ratio_alpha = |s: f64, p: f64| -> f64 {
            if q == 1.0 {
                1.0
            } else if p > 0.0 {
                q * (s / p).powf(q - 1.0)
            } else {
                0.0
            }
        };
        let mut a_in: Vec<Vec<f64>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
        let mut a_out: Vec<Vec<f64>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
        for (l, u) in m.u.iter().enumerate() {
            for k in 0..u.ncols() {
                let s: f64 = (0..u.nrows()).map(|j| u[(j, k)].abs()).sum();
                a_in[l + 1][k] = ratio_alpha(s, m.p[l + 1][k]);
            }
            for j in 0..u.nrows() {
                let s: f64 = (0..u.ncols()).map(|k| u[(j, k)].abs()).sum();
                a_out[l][j] = ratio_alpha(s, m.p[l][j]);
            }
        }
        let a_v = (0..sizes[depth - 1])
            .map(|j| ratio_alpha(m.v[j].abs(), m.p[depth - 1][j]))
            .collect();
        (a_in, a_out, a_v)
    }

    pub(crate) fn dual_bound_mass(
        &self,
        m: &Mass,
        mult: &DeepMultipliers,
        support_tol: f64,
    ) -> DualBound {
        self.dual_bound_with(m, mult, support_tol, None)
    }

    /// [`DeepProgram::dual_bound`] with the $\alpha$'s given (e.g. by the interior-point method, where
    /// $\alpha = \partial P/\partial S$ at its lifted sums makes the multipliers dual feasible without repair).
    pub(crate) fn dual_bound_with(
        &self,
        m: &Mass,
        mult: &DeepMultipliers,
        support_tol: f64,
        alphas: Option<&Alphas>,
    ) -> DualBound {
        let thr = support_thresholds(m, support_tol);
        let used = |l: usize, j: usize| m.p[l][j] > thr[l];
        let q = self.cfg.q;
        let n = self.n();
        let sizes = self.sizes();
        let depth = sizes.len();
        let (mut a_in, mut a_out, mut a_v) = match alphas {
            Some(a) => a.clone(),
            None => self.alphas(m),
        };
        let mut mu: Vec<Mat<f64>> = mult
            .mu
            .iter()
            .enumerate()
            .map(|(l, v)| MatRef::from_column_major_slice(v, n, sizes[l + 1]).to_owned())
            .collect();
        let mut r = mult.r.clone();
        let mut repair: f64 = 0.0;
        let mut feasible = true;
        // Coverage of the weights.
        for l in 0..depth - 1 {
            let lam = self.lambda_layer(l);
            // M_jk = |h_j^T mu_k|.
            let mut mm = self.h[l].transpose() * mu[l].as_ref();
            if q == 1.0 {
                for k in 0..sizes[l + 1] {
                    if !used(l + 1, k) {
                        if let Some(t) = self.best_response(l, k, &mu[l], &a_out[l], lam) {
                            let z = &self.cand.z[l + 1];
                            let zn = (0..n).map(|i| z[(i, k)].powi(2)).sum::<f64>().sqrt();
                            for i in 0..n {
                                mu[l][(i, k)] = -t * z[(i, k)] / zn;
                            }
                            for j in 0..sizes[l] {
                                mm[(j, k)] =
                                    (0..n).map(|i| self.h[l][(i, j)] * mu[l][(i, k)]).sum();
                            }
                        }
                    }
                    let mx = (0..sizes[l]).map(|j| mm[(j, k)].abs()).fold(0.0, f64::max);
                    if mx > 2.0 * lam {
                        let theta = if mx > 0.0 { 2.0 * lam / mx } else { 0.0 };
                        repair = repair.max(1.0 - theta);
                        for i in 0..n {
                            mu[l][(i, k)] *= theta;
                        }
                        for j in 0..sizes[l] {
                            mm[(j, k)] *= theta;
                        }
                    }
                }
                continue;
            }
            if lam == 0.0 {
                if (0..sizes[l + 1]).any(|k| (0..sizes[l]).any(|j| mm[(j, k)] != 0.0)) {
                    feasible = false;
                }
                continue;
            }
            // Unused source features first (their α_out is their own off-support "potential").
            for j in 0..sizes[l] {
                if !used(l, j) {
                    let need = (0..sizes[l + 1])
                        .filter(|&k| used(l + 1, k))
                        .map(|k| mm[(j, k)].abs() / lam - a_in[l + 1][k])
                        .fold(0.0, f64::max);
                    if need > a_out[l][j] {
                        repair = repair.max(need - a_out[l][j]);
                        a_out[l][j] = need;
                    }
                }
            }
            // Unused target features: best response μ_k = -t ẑ_k (a 1-D concave maximization of
            // their density value -μᵀz - λκ(α_in(μ))), kept if better than the given μ_k.
            for k in 0..sizes[l + 1] {
                if used(l + 1, k) {
                    continue;
                }
                if let Some(t) = self.best_response(l, k, &mu[l], &a_out[l], lam) {
                    let z = &self.cand.z[l + 1];
                    let zn = (0..n).map(|i| z[(i, k)].powi(2)).sum::<f64>().sqrt();
                    for i in 0..n {
                        mu[l][(i, k)] = -t * z[(i, k)] / zn;
                    }
                    for j in 0..sizes[l] {
                        mm[(j, k)] = (0..n).map(|i| self.h[l][(i, j)] * mu[l][(i, k)]).sum();
                    }
                }
            }
            for k in 0..sizes[l + 1] {
                let need = (0..sizes[l])
                    .map(|j| mm[(j, k)].abs() / lam - a_out[l][j])
                    .fold(0.0, f64::max);
                if need > a_in[l + 1][k] {
                    repair = repair.max(need - a_in[l + 1][k]);
                    a_in[l + 1][k] = need;
                }
            }
        }
        // Coverage of the output weights.
        let hl = &self.h[depth - 1];
        let rh: Vec<f64> = (0..sizes[depth - 1])
            .map(|j| (0..n).map(|i| r[i] * hl[(i, j)]).sum::<f64>().abs())
            .collect();
        let lv = self.cfg.lambda_v;
        if q == 1.0 {
            let mx = rh.iter().copied().fold(0.0, f64::max);
            if mx > lv {
                let theta = if mx > 0.0 { lv / mx } else { 0.0 };
                repair = repair.max(1.0 - theta);
                for ri in r.iter_mut() {
                    *ri *= theta;
                }
            }
        } else if lv == 0.0 {
            if rh.iter().any(|&x| x != 0.0) {
                feasible = false;
            }
        } else {
            for j in 0..sizes[depth - 1] {
                let need = rh[j] / lv;
                if need > a_v[j] {
                    repair = repair.max(need - a_v[j]);
                    a_v[j] = need;
                }
            }
        }
        // Density values and the bound.
        let mut density = Vec::with_capacity(depth);
        let mut value = -risk_conjugate(self.loss, &r, &self.y);
        for l in 0..depth {
            let z = &self.cand.z[l];
            let e: Vec<f64> = (0..sizes[l])
                .map(|j| {
                    let mut e = self.cost[l][j];
                    if l >= 1 {
                        let mz: f64 = (0..n).map(|i| mu[l - 1][(i, j)] * z[(i, j)]).sum();
                        e -= mz + self.lambda_layer(l - 1) * kappa(a_in[l][j], q);
                    }
                    if l + 1 < depth {
                        e -= self.lambda_layer(l) * kappa(a_out[l][j], q);
                    } else {
                        e -= lv * kappa(a_v[j], q);
                    }
                    e
                })
                .collect();
            let beta = self.cfg.beta[l];
            if beta > 0.0 {
                let t: Vec<f64> = e
                    .iter()
                    .zip(&self.cand.pi[l])
                    .map(|(ej, pj)| pj.ln() - ej / beta - 1.0)
                    .collect();
                let mx = t.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = mx + t.iter().map(|x| (x - mx).exp()).sum::<f64>().ln();
                value += -beta * lse - beta;
            } else {
                value += e.iter().copied().fold(f64::INFINITY, f64::min);
            }
            density.push(e);
        }
        if !feasible || value.is_nan() {
            value = f64::NEG_INFINITY;
        }
        DualBound {
            value,
            density,
            repair,
        }
    }

    /// For an unused feature $k$ of layer $l+1$ (0-based weight layer `l`): the step $t\ge0$ maximizing
    /// $\psi(t) = t\|\mathbf z_k\| - \lambda\kappa\big(\max_j(t|\hat{\mathbf z}_k^\top h_j|/\lambda - \alpha^{\rm out}_j)_+\big)$ (concave; for
    /// $q = 1$ the largest $t$ with $t\max_j|\hat{\mathbf z}_k^\top h_j|\le2\lambda$), if it beats the given $\boldsymbol\mu_k$.
    fn best_response(
        &self,
        l: usize,
        k: usize,
        mu: &Mat<f64>,
        a_out: &[f64],
        lam: f64,
    ) -> Option<f64> {
        let q = self.cfg.q;
        let n = self.n();
        let z = &self.cand.z[l + 1];
        let h = &self.h[l];
        let zn = (0..n).map(|i| z[(i, k)].powi(2)).sum::<f64>().sqrt();
        if zn == 0.0 || lam == 0.0 {
            return None;
        }
        let hz: Vec<f64> = (0..h.ncols())
            .map(|j| (0..n).map(|i| h[(i, j)] * z[(i, k)]).sum::<f64>().abs() / zn)
            .collect();
        let hmax = hz.iter().copied().fold(0.0, f64::max);
        // Value of the given μ_k.
        let given_mz: f64 = (0..n).map(|i| mu[(i, k)] * z[(i, k)]).sum();
        let given_cov = (0..h.ncols())
            .map(|j| (0..n).map(|i| h[(i, j)] * mu[(i, k)]).sum::<f64>().abs())
            .collect::<Vec<f64>>();
        if q == 1.0 {
            let gmax = given_cov.iter().copied().fold(0.0, f64::max);
            let theta = if gmax > 2.0 * lam {
                2.0 * lam / gmax
            } else {
                1.0
            };
            let given = -theta * given_mz;
            let t = if hmax > 0.0 {
                2.0 * lam / hmax
            } else {
                1e6 * lam
            };
            return (t * zn > given).then_some(t);
        }
        let psi = |t: f64| -> f64 {
            let a = hz
                .iter()
                .zip(a_out)
                .map(|(hj, aj)| t * hj / lam - aj)
                .fold(0.0, f64::max);
            t * zn - lam * kappa(a, q)
        };
        let given_a = given_cov
            .iter()
            .zip(a_out)
            .map(|(c, aj)| c / lam - aj)
            .fold(0.0, f64::max);
        let given = -given_mz - lam * kappa(given_a, q);
        let mut hi = 1.0;
        let mut it = 0;
        while psi(2.0 * hi) > psi(hi) && it < 200 {
            hi *= 2.0;
            it += 1;
        }
        let mut lo = 0.0;
        hi *= 2.0;
        let g = 0.5 * (5f64.sqrt() - 1.0);
        for _ in 0..200 {
            let a = hi - g * (hi - lo);
            let b = lo + g * (hi - lo);
            if psi(a) < psi(b) {
                lo = a;
            } else {
                hi = b;
            }
            if hi - lo <= 1e-14 * hi.max(1e-300) {
                break;
            }
        }
        let t = 0.5 * (lo + hi);
        (psi(t) > given).then_some(t)
    }

    /// KKT residuals of a point with multipliers (see [`DeepKkt`]); density values from the repaired
    /// dual ([`DeepProgram::dual_bound`]).
    /// `support_tol` as in [`DeepProgram::dual_bound`].
    pub fn kkt(&self, pt: &DeepPoint, mult: &DeepMultipliers, support_tol: f64) -> Result<DeepKkt> {
        self.check_point(pt)?;
        self.check_multipliers(mult)?;
        let m = self.point_to_mass(pt);
        let bound = self.dual_bound_mass(&m, mult, support_tol);
        Ok(self.kkt_mass(&m, mult, &bound, support_tol, None))
    }

    pub(crate) fn kkt_mass(
        &self,
        m: &Mass,
        mult: &DeepMultipliers,
        bound: &DualBound,
        support_tol: f64,
        alphas: Option<&Alphas>,
    ) -> DeepKkt {
        let thr = support_thresholds(m, support_tol);
        let used = |l: usize, j: usize| m.p[l][j] > thr[l];
        let q = self.cfg.q;
        let n = self.n();
        let sizes = self.sizes();
        let depth = sizes.len();
        let pw = |s: f64, p: f64| -> f64 {
            if q == 1.0 {
                1.0
            } else if p > 0.0 {
                (s / p).powf(q - 1.0)
            } else {
                0.0
            }
        };
        let mut weight: f64 = 0.0;
        let mut usage_spread = Vec::new();
        for l in 0..depth - 1 {
            let lam = self.lambda_layer(l);
            let u = &m.u[l];
            let mu = MatRef::from_column_major_slice(&mult.mu[l], n, sizes[l + 1]);
            let mh = self.h[l].transpose() * mu;
            let sin: Vec<f64> = (0..u.ncols())
                .map(|k| (0..u.nrows()).map(|j| u[(j, k)].abs()).sum())
                .collect();
            let sout: Vec<f64> = (0..u.nrows())
                .map(|j| (0..u.ncols()).map(|k| u[(j, k)].abs()).sum())
                .collect();
            let uthr = support_tol
                * (0..u.ncols())
                    .flat_map(|k| (0..u.nrows()).map(move |j| (j, k)))
                    .map(|(j, k)| u[(j, k)].abs())
                    .fold(0.0, f64::max);
            for k in 0..u.ncols() {
                if !used(l + 1, k) {
                    continue;
                }
                for j in 0..u.nrows() {
                    if !used(l, j) {
                        continue;
                    }
                    let g = match alphas {
                        Some(a) if q > 1.0 => lam * (a.0[l + 1][k] + a.1[l][j]),
                        _ => lam * q * (pw(sin[k], m.p[l + 1][k]) + pw(sout[j], m.p[l][j])),
                    };
                    let x = u[(j, k)];
                    let res = if x.abs() > uthr {
                        (g * x.signum() + mh[(j, k)]).abs()
                    } else {
                        (mh[(j, k)].abs() - g).max(0.0)
                    };
                    weight = weight.max(res);
                }
            }
            let us: Vec<f64> = (0..u.nrows())
                .filter(|&j| used(l, j))
                .map(|j| sout[j] / m.p[l][j])
                .collect();
            let mx = us.iter().copied().fold(0.0, f64::max);
            let mn = us.iter().copied().fold(f64::INFINITY, f64::min);
            usage_spread.push(if mx > 0.0 { (mx - mn) / mx } else { 0.0 });
        }
        let hl = &self.h[depth - 1];
        let vthr = support_tol * m.v.iter().map(|x| x.abs()).fold(0.0, f64::max);
        let mut output: f64 = 0.0;
        for j in 0..sizes[depth - 1] {
            let p = m.p[depth - 1][j];
            if !used(depth - 1, j) {
                continue;
            }
            let rh: f64 = (0..n).map(|i| mult.r[i] * hl[(i, j)]).sum();
            let g = match alphas {
                Some(a) if q > 1.0 => self.cfg.lambda_v * a.2[j],
                _ => self.cfg.lambda_v * q * pw(m.v[j].abs(), p),
            };
            let x = m.v[j];
            let res = if x.abs() > vthr {
                (g * x.signum() + rh).abs()
            } else {
                (rh.abs() - g).max(0.0)
            };
            output = output.max(res);
        }
        let mut density_spread = Vec::new();
        let mut density_violation = Vec::new();
        for l in 0..depth {
            let e = &bound.density[l];
            let on: Vec<f64> = (0..sizes[l])
                .filter(|&j| used(l, j))
                .map(|j| e[j])
                .collect();
            let off_min = (0..sizes[l])
                .filter(|&j| !used(l, j))
                .map(|j| e[j])
                .fold(f64::INFINITY, f64::min);
            let on_min = on.iter().copied().fold(f64::INFINITY, f64::min);
            let on_max = on.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let beta = self.cfg.beta[l];
            if beta > 0.0 {
                // With entropy the condition is E + β(log ρ + 1) = const on all candidates.
                let adj: Vec<f64> = (0..sizes[l])
                    .map(|j| {
                        let rho = m.p[l][j] / self.cand.pi[l][j];
                        e[j] + beta * (rho.max(1e-300).ln() + 1.0)
                    })
                    .collect();
                let mx = adj.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mn = adj.iter().copied().fold(f64::INFINITY, f64::min);
                density_spread.push(mx - mn);
                density_violation.push(0.0);
            } else {
                density_spread.push(if on.is_empty() { 0.0 } else { on_max - on_min });
                density_violation.push(if off_min.is_finite() {
                    (on_min - off_min).max(0.0)
                } else {
                    0.0
                });
            }
        }
        DeepKkt {
            weight,
            output,
            density_spread,
            density_violation,
            usage_spread,
        }
    }

    // ---------------------------------------------------------------- the augmented Lagrangian

    fn pack(&self, lay: &Layout, m: &Mass) -> Vec<f64> {
        let mut x = vec![0.0; lay.len];
        for l in 0..lay.nl() {
            for (j, &p) in m.p[l].iter().enumerate() {
                x[lay.rho[l] + j] = p.max(0.0);
            }
        }
        for l in 0..lay.nl() - 1 {
            let (nl, nk) = (lay.n[l], lay.n[l + 1]);
            for k in 0..nk {
                for j in 0..nl {
                    let u = m.u[l][(j, k)];
                    x[lay.up[l] + j + k * nl] = u.max(0.0);
                    x[lay.um[l] + j + k * nl] = (-u).max(0.0);
                }
            }
        }
        for (j, &v) in m.v.iter().enumerate() {
            x[lay.vp + j] = v.max(0.0);
            x[lay.vm + j] = (-v).max(0.0);
        }
        x
    }

    fn unpack(&self, lay: &Layout, x: &[f64]) -> Mass {
        let p = (0..lay.nl())
            .map(|l| x[lay.rho[l]..lay.rho[l] + lay.n[l]].to_vec())
            .collect();
        let u = (0..lay.nl() - 1)
            .map(|l| {
                let nl = lay.n[l];
                Mat::from_fn(nl, lay.n[l + 1], |j, k| {
                    x[lay.up[l] + j + k * nl] - x[lay.um[l] + j + k * nl]
                })
            })
            .collect();
        let nv = lay.n[lay.nl() - 1];
        let v = (0..nv).map(|j| x[lay.vp + j] - x[lay.vm + j]).collect();
        Mass { p, u, v }
    }

    /// $L_\sigma$ and its gradient in the split mass variables (`sigma = 0`: the Lagrangian).
    #[allow(clippy::too_many_arguments)]
    fn al_value_grad(
        &self,
        lay: &Layout,
        x: &[f64],
        grad: &mut [f64],
        mu: &[Mat<f64>],
        c: &[f64],
        sigma: f64,
        eps: f64,
    ) -> f64 {
        let q = self.cfg.q;
        let n = self.n();
        let depth = lay.nl();
        grad.fill(0.0);
        let mut val = 0.0;
        // Output: risk and perspective.
        let last = depth - 1;
        let nv = lay.n[last];
        let v: Vec<f64> = (0..nv).map(|j| x[lay.vp + j] - x[lay.vm + j]).collect();
        let yhat = self.predict_mass(&v);
        val += self.loss.risk(&yhat, &self.y);
        let r = self.loss.residual(&yhat, &self.y);
        let hl = &self.h[last];
        for j in 0..nv {
            let hr: f64 = (0..n).map(|i| hl[(i, j)] * r[i]).sum();
            let s = x[lay.vp + j] + x[lay.vm + j];
            let (pv, ds, dp) = persp(s, x[lay.rho[last] + j], q, eps);
            let lv = self.cfg.lambda_v;
            val += lv * pv;
            grad[lay.vp + j] += hr + lv * ds;
            grad[lay.vm + j] += -hr + lv * ds;
            grad[lay.rho[last] + j] += lv * dp;
        }
        // Weight layers.
        for l in 0..depth - 1 {
            let lam = self.lambda_layer(l);
            let (nl, nk) = (lay.n[l], lay.n[l + 1]);
            let up = &x[lay.up[l]..lay.up[l] + nl * nk];
            let um = &x[lay.um[l]..lay.um[l] + nl * nk];
            let mut sin = vec![0.0; nk];
            let mut sout = vec![0.0; nl];
            for k in 0..nk {
                for j in 0..nl {
                    let a = up[j + k * nl] + um[j + k * nl];
                    sin[k] += a;
                    sout[j] += a;
                }
            }
            let mut dsin = vec![0.0; nk];
            let mut dsout = vec![0.0; nl];
            for k in 0..nk {
                let (pv, ds, dp) = persp(sin[k], x[lay.rho[l + 1] + k], q, eps);
                val += lam * pv;
                dsin[k] = lam * ds;
                grad[lay.rho[l + 1] + k] += lam * dp;
            }
            for j in 0..nl {
                let (pv, ds, dp) = persp(sout[j], x[lay.rho[l] + j], q, eps);
                val += lam * pv;
                dsout[j] = lam * ds;
                grad[lay.rho[l] + j] += lam * dp;
            }
            // Consistency: E = H U - Z diag(p), Ξ = μ + σE.
            let u = Mat::from_fn(nl, nk, |j, k| up[j + k * nl] - um[j + k * nl]);
            let mut e = Mat::<f64>::zeros(n, nk);
            matmul(
                e.as_mut(),
                Accum::Replace,
                self.h[l].as_ref(),
                u.as_ref(),
                1.0,
                Par::Seq,
            );
            let z = &self.cand.z[l + 1];
            let mut xi = Mat::<f64>::zeros(n, nk);
            for k in 0..nk {
                let pk = x[lay.rho[l + 1] + k];
                let mut zx = 0.0;
                for i in 0..n {
                    let eik = e[(i, k)] - pk * z[(i, k)];
                    e[(i, k)] = eik;
                    val += mu[l][(i, k)] * eik + 0.5 * sigma * eik * eik;
                    let xik = mu[l][(i, k)] + sigma * eik;
                    xi[(i, k)] = xik;
                    zx += z[(i, k)] * xik;
                }
                grad[lay.rho[l + 1] + k] -= zx;
            }
            let mut g = Mat::<f64>::zeros(nl, nk);
            matmul(
                g.as_mut(),
                Accum::Replace,
                self.h[l].transpose(),
                xi.as_ref(),
                1.0,
                Par::Seq,
            );
            for k in 0..nk {
                for j in 0..nl {
                    let gr = g[(j, k)];
                    let ga = dsin[k] + dsout[j];
                    grad[lay.up[l] + j + k * nl] += ga + gr;
                    grad[lay.um[l] + j + k * nl] += ga - gr;
                }
            }
        }
        // Mass, entropy, linear costs.
        for l in 0..depth {
            let p = &x[lay.rho[l]..lay.rho[l] + lay.n[l]];
            let ml = p.iter().sum::<f64>() - 1.0;
            val += c[l] * ml + 0.5 * sigma * ml * ml;
            let beta = self.cfg.beta[l];
            for (j, &pj) in p.iter().enumerate() {
                let gi = &mut grad[lay.rho[l] + j];
                *gi += c[l] + sigma * ml + self.cost[l][j];
                val += self.cost[l][j] * pj;
                if beta > 0.0 {
                    let lpi = self.cand.pi[l][j].ln();
                    val += beta * (xlogx(pj) - pj * lpi);
                    *gi += beta * (pj.max(1e-300).ln() + 1.0 - lpi);
                }
            }
        }
        val
    }

    /// Solve from `start` (default: uniform masses, zero weights) and `multipliers` (default: zero) with
    /// the method of `opts` ([`DeepMethod`]). The result is evaluated independently of the method: exact
    /// objective, residuals, the certified lower bound of [`DeepProgram::dual_bound`] and KKT residuals.
    pub fn solve(
        &self,
        opts: &DeepOptions,
        start: Option<&DeepPoint>,
        multipliers: Option<&DeepMultipliers>,
    ) -> Result<DeepSolution> {
        for (name, v) in [
            ("tol_primal", opts.tol_primal),
            ("tol_dual", opts.tol_dual),
            ("tol_gap", opts.tol_gap),
            ("sigma0", opts.sigma0),
            ("eps0", opts.eps0),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(SolverError::invalid(name, "a finite value > 0", v));
            }
        }
        ensure_nonneg("eps_min", opts.eps_min)?;
        ensure_nonneg("support_tol", opts.support_tol)?;
        let t0 = Instant::now();
        let sizes = self.sizes();
        let depth = sizes.len();
        let n = self.n();
        let mass0 = match start {
            Some(pt) => {
                self.check_point(pt)?;
                self.point_to_mass(pt)
            }
            None => Mass {
                p: sizes.iter().map(|&nl| vec![1.0 / nl as f64; nl]).collect(),
                u: (0..depth - 1)
                    .map(|l| Mat::zeros(sizes[l], sizes[l + 1]))
                    .collect(),
                v: vec![0.0; sizes[depth - 1]],
            },
        };
        let mut mu: Vec<Mat<f64>> = (0..depth - 1)
            .map(|l| Mat::zeros(n, sizes[l + 1]))
            .collect();
        let mut c = vec![0.0; depth];
        if let Some(mm) = multipliers {
            self.check_multipliers(mm)?;
            for (l, m) in mm.mu.iter().enumerate() {
                mu[l] = MatRef::from_column_major_slice(m, n, sizes[l + 1]).to_owned();
            }
            if mm.c.len() == depth {
                c.clone_from(&mm.c);
            }
        }
        let mut ipm_alphas = None;
        let mut ipm_split = None;
        let (m, mu, c, stats) = match opts.method {
            DeepMethod::InteriorPoint => {
                let out = self.solve_ipm(opts, &mass0, Some((&mu, &c)));
                ipm_alphas = out.alphas.clone();
                ipm_split = Some(out.split.clone());
                let stats = RunStats {
                    outer: out.stages,
                    inner: out.newton,
                    resets: 0,
                    barrier_gap: Some(out.barrier_gap),
                    termination: out.termination,
                    eps: 0.0,
                };
                (out.mass, out.mu, out.c, stats)
            }
            DeepMethod::AugmentedLagrangian => self.solve_al(opts, &mass0, mu, c),
        };
        let lay = Layout::new(&sizes);
        let xc = ipm_split.unwrap_or_else(|| self.pack(&lay, &m));
        let mut g = vec![0.0; lay.len];
        self.al_value_grad(&lay, &xc, &mut g, &mu, &c, 0.0, stats.eps);
        let dual_residual = thresholded_dual_residual(&lay, &xc, &g, opts.support_tol);
        let objective = self.objective_mass(&m, 0.0);
        let (primal_residual, feature_residual) = self.residuals_mass(&m);
        let predictions = self.predict_mass(&m.v);
        let r = self.loss.residual(&predictions, &self.y);
        let mult = DeepMultipliers {
            mu: mu
                .iter()
                .map(|mm| {
                    let mut v = Vec::with_capacity(mm.nrows() * mm.ncols());
                    for k in 0..mm.ncols() {
                        for i in 0..mm.nrows() {
                            v.push(mm[(i, k)]);
                        }
                    }
                    v
                })
                .collect(),
            c,
            r,
        };
        let mut bound = self.dual_bound_mass(&m, &mult, opts.support_tol);
        if let Some(a) = &ipm_alphas {
            let b2 = self.dual_bound_with(&m, &mult, opts.support_tol, Some(a));
            if b2.value > bound.value {
                bound = b2;
            }
        }
        let kkt = self.kkt_mass(&m, &mult, &bound, opts.support_tol, ipm_alphas.as_ref());
        let gap = objective - bound.value;
        Ok(DeepSolution {
            objective,
            dual_bound: bound.value,
            gap,
            relative_gap: gap / objective.abs().max(f64::MIN_POSITIVE),
            barrier_gap: stats.barrier_gap,
            primal_residual,
            feature_residual,
            dual_residual,
            kkt,
            point: self.mass_to_point(&m),
            multipliers: mult,
            predictions,
            method: opts.method,
            outer_iterations: stats.outer,
            inner_iterations: stats.inner,
            lbfgs_resets: stats.resets,
            seconds: t0.elapsed().as_secs_f64(),
            termination: stats.termination,
        })
    }

    /// The augmented Lagrangian loop (mass variables); returns the cleaned point, multipliers and counts.
    fn solve_al(
        &self,
        opts: &DeepOptions,
        mass0: &Mass,
        mut mu: Vec<Mat<f64>>,
        mut c: Vec<f64>,
    ) -> (Mass, Vec<Mat<f64>>, Vec<f64>, RunStats) {
        let sizes = self.sizes();
        let depth = sizes.len();
        let n = self.n();
        let lay = Layout::new(&sizes);
        let mass0 = mass0.clone();
        let mut x = self.pack(&lay, &mass0);
        let lower = vec![0.0; lay.len];
        let mut sigma = opts.sigma0;
        let mut eps = opts.eps0;
        let mut prev = f64::INFINITY;
        let mut inner_total = 0;
        let mut resets = 0;
        let mut outer = 0;
        let mut termination = Termination::MaxIterations;
        while outer < opts.max_outer {
            outer += 1;
            let tol_inner = (1e-2 * 0.2f64.powi(outer as i32)).max(0.1 * opts.tol_dual);
            let lb = LbfgsOptions {
                memory: opts.memory,
                max_iter: opts.max_inner,
                tol_pg: tol_inner,
                tol_rel_f: 1e-16,
                patience: 20,
                max_backtracks: 60,
            };
            let (mu_ref, c_ref) = (&mu, &c);
            let mut f = |xx: &[f64], g: &mut [f64]| -> f64 {
                self.al_value_grad(&lay, xx, g, mu_ref, c_ref, sigma, eps)
            };
            let rep = lbfgs::minimize(&mut f, &mut x, &lower, &lb);
            inner_total += rep.iterations;
            resets += rep.resets;
            let last_pg = rep.pg_norm;
            // Multiplier update.
            let m = self.unpack(&lay, &x);
            let e = self.consistency_mass(&m);
            for l in 0..depth - 1 {
                for k in 0..sizes[l + 1] {
                    for i in 0..n {
                        mu[l][(i, k)] += sigma * e[l][(i, k)];
                    }
                }
            }
            for l in 0..depth {
                c[l] += sigma * (m.p[l].iter().sum::<f64>() - 1.0);
            }
            let (res, _) = self.residuals_mass(&m);
            if res <= opts.tol_primal && last_pg <= opts.tol_dual && eps <= opts.eps_min {
                termination = Termination::Converged;
                break;
            }
            if res > 0.25 * prev && res > opts.tol_primal {
                sigma = (sigma * 10.0).min(1e12);
            }
            prev = res;
            eps = (eps * 0.01).max(opts.eps_min);
        }
        // Clean: weights touching massless features vanish.
        let mut m = self.unpack(&lay, &x);
        for l in 0..depth - 1 {
            for k in 0..sizes[l + 1] {
                for j in 0..sizes[l] {
                    if m.p[l][j] <= 0.0 || m.p[l + 1][k] <= 0.0 {
                        m.u[l][(j, k)] = 0.0;
                    }
                }
            }
        }
        for j in 0..sizes[depth - 1] {
            if m.p[depth - 1][j] <= 0.0 {
                m.v[j] = 0.0;
            }
        }
        (
            m,
            mu,
            c,
            RunStats {
                outer,
                inner: inner_total,
                resets,
                barrier_gap: None,
                termination,
                eps,
            },
        )
    }

    /// The activation $h$.
    pub fn activation(&self) -> Activation {
        self.activation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{random_net, sine_data, train};
    use nff_core::Shape;

    fn group_problem(n: usize, lambda: f64, q: f64, seed: u64) -> Problem {
        Problem::new(
            sine_data(n, 1, seed, false),
            Activation::Tanh,
            Loss::Squared,
            Regularizer::GroupL1q { lambda, q },
        )
        .unwrap()
    }

    #[test]
    fn c15_network_and_program_agree_to_machine_precision() {
        for &(depth, q, fresh) in &[(1, 2.0, 3), (2, 2.0, 0), (2, 1.5, 4), (3, 3.0, 2)] {
            let problem = group_problem(6, 0.03, q, 9);
            let shape = Shape::new(
                if depth == 1 {
                    Arch::TwoLevel
                } else {
                    Arch::Dnn
                },
                2,
                5,
                depth,
            )
            .unwrap();
            let net = random_net(shape, 1.5, 10 + depth as u64);
            let (prog, pt) = DeepProgram::from_network(&problem, &net, fresh, 3).unwrap();
            let j = problem.objective(&net);
            let p = prog.objective(&pt).unwrap();
            assert!(
                (j - p).abs() <= 1e-12 * j.abs(),
                "L={depth} q={q}: J={j} program={p}"
            );
            let (prim, feat) = prog.residuals(&pt).unwrap();
            assert!(prim <= 1e-12 && feat <= 1e-12, "residuals {prim} {feat}");
            let yhat = prog.predictions(&pt).unwrap();
            let ynet = problem.predict(&net);
            for (a, b) in yhat.iter().zip(&ynet) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()));
            }
            // Back to a network: the same parameters.
            let back = prog.to_network(&pt).unwrap();
            for (a, b) in back.net.as_slice().iter().zip(net.as_slice()) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn nonuniform_points_map_to_networks_with_the_same_predictions() {
        // A point with non-uniform masses and an unused candidate: the mapped network predicts the same.
        let problem = group_problem(6, 0.03, 2.0, 9);
        let shape = Shape::new(Arch::Dnn, 2, 4, 2).unwrap();
        let net = random_net(shape, 1.0, 5);
        let (prog, _) = DeepProgram::from_network(&problem, &net, 2, 3).unwrap();
        let sizes = prog.sizes();
        let n = problem.n();
        let mut r = rng::rng(1, "pt");
        // Random masses and weights in layer 1 -> 2, then choose layer-2 features consistent with them.
        let rho1: Vec<f64> = (0..sizes[0])
            .map(|j| {
                if j == 1 {
                    0.0
                } else {
                    0.5 + rng::normal(&mut r).abs()
                }
            })
            .collect();
        let s1: f64 = rho1.iter().zip(&prog.cand.pi[0]).map(|(a, b)| a * b).sum();
        let rho1: Vec<f64> = rho1.iter().map(|x| x / s1).collect();
        let rho2 = vec![1.0; sizes[1]];
        let mut u = vec![0.0; sizes[0] * sizes[1]];
        for k in 0..sizes[1] {
            for j in 0..sizes[0] {
                if rho1[j] > 0.0 {
                    u[j + k * sizes[0]] = rng::normal(&mut r);
                }
            }
        }
        let mut cand = prog.cand.clone();
        for k in 0..sizes[1] {
            for i in 0..n {
                cand.z[1][(i, k)] = (0..sizes[0])
                    .map(|j| u[j + k * sizes[0]] * prog.h[0][(i, j)] * cand.pi[0][j])
                    .sum::<f64>()
                    / rho2[k];
            }
        }
        let prog = DeepProgram::new(
            &problem.data,
            Activation::Tanh,
            Loss::Squared,
            cand,
            prog.cfg.clone(),
        )
        .unwrap();
        let v: Vec<f64> = (0..sizes[1]).map(|_| rng::normal(&mut r)).collect();
        let pt = DeepPoint {
            rho: vec![rho1, rho2],
            u: vec![u],
            v,
        };
        assert!(prog.residuals(&pt).unwrap().0 < 1e-12);
        let mapped = prog.to_network(&pt).unwrap();
        let y1 = prog.predictions(&pt).unwrap();
        let y2 = problem.predict(&mapped.net);
        for (a, b) in y1.iter().zip(&y2) {
            assert!((a - b).abs() < 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
        }
        assert_eq!(mapped.index[0].len(), sizes[0] - 1);
    }

    fn random_point(prog: &DeepProgram, r: &mut rng::Rng, zero_frac: f64) -> DeepPoint {
        let sizes = prog.sizes();
        let mut unif = || -> f64 { 0.5 * (1.0 + (rng::normal(r) / 2.0).tanh()) };
        let rho: Vec<Vec<f64>> = sizes
            .iter()
            .map(|&nl| {
                (0..nl)
                    .map(|_| {
                        if unif() < zero_frac {
                            0.0
                        } else {
                            2.0 * unif()
                        }
                    })
                    .collect()
            })
            .collect();
        let u = (0..sizes.len() - 1)
            .map(|l| {
                let mut u = vec![0.0; sizes[l] * sizes[l + 1]];
                for k in 0..sizes[l + 1] {
                    for j in 0..sizes[l] {
                        if rho[l][j] > 0.0 && rho[l + 1][k] > 0.0 {
                            u[j + k * sizes[l]] = 3.0 * rng::normal(r);
                        }
                    }
                }
                u
            })
            .collect();
        let last = sizes.len() - 1;
        let v = (0..sizes[last])
            .map(|j| {
                if rho[last][j] > 0.0 {
                    2.0 * rng::normal(r)
                } else {
                    0.0
                }
            })
            .collect();
        DeepPoint { rho, u, v }
    }

    #[test]
    fn c14_whole_objective_midpoint_tests() {
        // Group-norm program: no violation; plain L2 on the middle layer: violations.
        let problem = group_problem(6, 0.05, 2.0, 2);
        let shape = Shape::new(Arch::Dnn, 2, 4, 3).unwrap();
        let net = random_net(shape, 1.0, 8);
        let (mut prog, _) = DeepProgram::from_network(&problem, &net, 2, 4).unwrap();
        prog.cfg.beta = vec![0.1, 0.0, 0.2];
        let mut r = rng::rng(3, "midpoint");
        let (mut plain_violations, mut trials) = (0, 0);
        for q in [1.0, 1.5, 2.0, 3.0] {
            prog.cfg.q = q;
            for _ in 0..300 {
                let a = random_point(&prog, &mut r, 0.2);
                let b = random_point(&prog, &mut r, 0.2);
                let t = 0.5 * (1.0 + (rng::normal(&mut r)).tanh());
                let (fa, fb) = (prog.objective(&a).unwrap(), prog.objective(&b).unwrap());
                let fm = prog.objective(&DeepPoint::mix(&a, &b, t)).unwrap();
                let chord = t * fa + (1.0 - t) * fb;
                assert!(fm <= chord + 1e-12 * chord.abs(), "q={q}: {fm} > {chord}");
                let (pa, pb) = (
                    prog.objective_plain_l2_middle(&a).unwrap(),
                    prog.objective_plain_l2_middle(&b).unwrap(),
                );
                let pm = prog
                    .objective_plain_l2_middle(&DeepPoint::mix(&a, &b, t))
                    .unwrap();
                trials += 1;
                if pm > t * pa + (1.0 - t) * pb + 1e-12 * (pa + pb).abs() {
                    plain_violations += 1;
                }
            }
        }
        assert!(
            plain_violations > 0,
            "plain L2 showed no violation in {trials} trials"
        );
        eprintln!("plain-L2 middle-layer violations: {plain_violations}/{trials}");
    }

    #[test]
    fn c16_c17_deep_optimum_is_below_the_gd_objective() {
        let problem = group_problem(6, 0.01, 2.0, 1);
        let shape = Shape::new(Arch::Dnn, 2, 6, 2).unwrap();
        let mut net = random_net(shape, 1.0, 2);
        let j_gd = train(&problem, &mut net, 0.05, 3000);
        let report = crate::kkt::gd_kkt(&problem, &net, 6, 7).unwrap();
        eprintln!(
            "GD: J={j_gd} |vel|={:.3e} kkt={:?} bound={}",
            report.velocity_norm, report.kkt, report.dual_bound
        );
        assert!((report.program_objective - j_gd).abs() <= 1e-12 * j_gd);
        assert!(report.dual_bound <= j_gd);
        let (prog, pt) = DeepProgram::from_network(&problem, &net, 6, 7).unwrap();
        let sol = prog
            .solve(
                &DeepOptions::default(),
                Some(&pt),
                Some(&report.multipliers),
            )
            .unwrap();
        eprintln!(
            "deep: obj={} bound={} gap={:.3e} prim={:.2e} feat={:.2e} dual={:.2e} outer={} inner={} resets={} {:?} t={:.2}s kkt={:?}",
            sol.objective, sol.dual_bound, sol.gap, sol.primal_residual, sol.feature_residual, sol.dual_residual,
            sol.outer_iterations, sol.inner_iterations, sol.lbfgs_resets, sol.termination, sol.seconds, sol.kkt
        );
        assert!(
            sol.primal_residual <= 1e-6,
            "primal residual {}",
            sol.primal_residual
        );
        assert!(
            sol.objective <= j_gd + 1e-6,
            "C16: {} > {j_gd}",
            sol.objective
        );
        assert!(sol.dual_bound <= sol.objective + 1e-9);
        // The mapped network predicts what the program predicts.
        let mapped = prog.to_network(&sol.point).unwrap();
        let y = problem.predict(&mapped.net);
        for (a, b) in y.iter().zip(&sol.predictions) {
            assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn cold_start_solve_converges_with_small_gap() {
        let problem = group_problem(5, 0.02, 2.0, 4);
        let shape = Shape::new(Arch::Dnn, 2, 5, 2).unwrap();
        let net = random_net(shape, 1.0, 3);
        let (mut prog, _) = DeepProgram::from_network(&problem, &net, 3, 1).unwrap();
        for beta in [0.0, 0.05] {
            prog.cfg.beta = vec![beta; 2];
            let sol = prog.solve(&DeepOptions::default(), None, None).unwrap();
            eprintln!(
                "cold beta={beta}: obj={} bound={} rel gap={:.3e} prim={:.2e} dual={:.2e} outer={} inner={} {:?} t={:.2}s",
                sol.objective, sol.dual_bound, sol.relative_gap, sol.primal_residual, sol.dual_residual,
                sol.outer_iterations, sol.inner_iterations, sol.termination, sol.seconds
            );
            assert!(sol.primal_residual <= 1e-6);
            assert!(
                sol.relative_gap.abs() <= 1e-3,
                "rel gap {}",
                sol.relative_gap
            );
        }
    }

    #[test]
    fn interior_point_handles_depths_exponents_and_losses() {
        for &(depth, q, logistic, fresh) in &[
            (1, 2.0, false, 6),
            (2, 1.0, false, 3),
            (3, 1.5, false, 2),
            (2, 2.0, true, 3),
        ] {
            let data = sine_data(6, 1, 8, logistic);
            let loss = if logistic {
                Loss::Logistic
            } else {
                Loss::Squared
            };
            let problem = Problem::new(
                data,
                Activation::Tanh,
                loss,
                Regularizer::GroupL1q { lambda: 0.02, q },
            )
            .unwrap();
            let arch = if depth == 1 {
                Arch::TwoLevel
            } else {
                Arch::Dnn
            };
            let mut net = random_net(Shape::new(arch, 2, 5, depth).unwrap(), 1.0, 6);
            let j = train(&problem, &mut net, 0.05, 300);
            let (prog, pt) = DeepProgram::from_network(&problem, &net, fresh, 2).unwrap();
            let sol = prog
                .solve(&DeepOptions::default(), Some(&pt), None)
                .unwrap();
            eprintln!(
                "L={depth} q={q} logistic={logistic}: J={j:.6} obj={:.6} bound={:.6} rel gap={:.1e} prim={:.1e} dual={:.1e} newton={} {:?} {:.2}s",
                sol.objective, sol.dual_bound, sol.relative_gap, sol.primal_residual, sol.dual_residual,
                sol.inner_iterations, sol.termination, sol.seconds
            );
            assert!(
                sol.primal_residual <= 1e-6,
                "primal residual {}",
                sol.primal_residual
            );
            assert!(sol.dual_bound <= sol.objective + 1e-9);
            assert!(sol.objective <= j + 1e-6, "C16: {} > {j}", sol.objective);
            assert!(
                sol.relative_gap <= 1e-3,
                "relative gap {}",
                sol.relative_gap
            );
        }
    }

    #[test]
    fn augmented_lagrangian_method_agrees_with_the_interior_point() {
        let problem = group_problem(5, 0.02, 2.0, 4);
        let shape = Shape::new(Arch::Dnn, 2, 4, 2).unwrap();
        let mut net = random_net(shape, 1.0, 3);
        train(&problem, &mut net, 0.05, 300);
        let (prog, pt) = DeepProgram::from_network(&problem, &net, 2, 1).unwrap();
        let ipm = prog
            .solve(&DeepOptions::default(), Some(&pt), None)
            .unwrap();
        let opts = DeepOptions {
            method: DeepMethod::AugmentedLagrangian,
            max_outer: 15,
            max_inner: 1000,
            tol_primal: 1e-8,
            tol_dual: 1e-6,
            ..DeepOptions::default()
        };
        let al = prog.solve(&opts, Some(&pt), None).unwrap();
        eprintln!(
            "ipm obj {} bound {} | al obj {} bound {} prim {:.1e} {:?} inner {}",
            ipm.objective,
            ipm.dual_bound,
            al.objective,
            al.dual_bound,
            al.primal_residual,
            al.termination,
            al.inner_iterations
        );
        // Both bounds are valid lower bounds of the (near-feasible) optima.
        assert!(al.dual_bound <= ipm.objective + 1e-9);
        assert!(ipm.dual_bound <= al.objective + 1e-6 * (1.0 + al.primal_residual.sqrt()));
        assert!(ipm.relative_gap < 1e-4, "{}", ipm.relative_gap);
    }

    #[test]
    fn augmented_lagrangian_gradient_matches_finite_differences() {
        let problem = group_problem(5, 0.02, 2.0, 4);
        let shape = Shape::new(Arch::Dnn, 2, 3, 3).unwrap();
        let net = random_net(shape, 1.0, 3);
        let (mut prog, _) = DeepProgram::from_network(&problem, &net, 2, 1).unwrap();
        prog.cfg.beta = vec![0.1, 0.0, 0.3];
        for q in [1.0, 1.5, 2.0] {
            prog.cfg.q = q;
            let lay = Layout::new(&prog.sizes());
            let mut r = rng::rng(5, "fd");
            let x: Vec<f64> = (0..lay.len)
                .map(|_| 0.1 + rng::normal(&mut r).abs())
                .collect();
            let mu: Vec<Mat<f64>> = (0..2)
                .map(|l| Mat::from_fn(5, prog.sizes()[l + 1], |_, _| rng::normal(&mut r)))
                .collect();
            let c = vec![0.3, -0.2, 0.1];
            let mut g = vec![0.0; lay.len];
            prog.al_value_grad(&lay, &x, &mut g, &mu, &c, 3.0, 1e-3);
            let mut gg = vec![0.0; lay.len];
            for i in 0..lay.len {
                let h = 1e-6;
                let mut xp = x.clone();
                xp[i] += h;
                let mut xm = x.clone();
                xm[i] -= h;
                let fd = (prog.al_value_grad(&lay, &xp, &mut gg, &mu, &c, 3.0, 1e-3)
                    - prog.al_value_grad(&lay, &xm, &mut gg, &mu, &c, 3.0, 1e-3))
                    / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() <= 1e-6 * (1.0 + g[i].abs()),
                    "q={q} var {i}: fd {fd} vs {}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn bad_deep_inputs_are_rejected() {
        let problem = group_problem(5, 0.02, 2.0, 4);
        let shape = Shape::new(Arch::Dnn, 2, 3, 2).unwrap();
        let net = random_net(shape, 1.0, 3);
        let (prog, pt) = DeepProgram::from_network(&problem, &net, 1, 1).unwrap();
        let mk = |cfg: DeepConfig| {
            DeepProgram::new(
                &problem.data,
                Activation::Tanh,
                Loss::Squared,
                prog.cand.clone(),
                cfg,
            )
            .map(|_| ())
            .unwrap_err()
            .to_string()
        };
        let ok = prog.cfg.clone();
        assert!(mk(DeepConfig {
            q: 0.5,
            ..ok.clone()
        })
        .contains("q"));
        assert!(mk(DeepConfig {
            lambda_w: vec![],
            ..ok.clone()
        })
        .contains("lambda_w"));
        assert!(mk(DeepConfig {
            beta: vec![0.0, -1.0],
            ..ok.clone()
        })
        .contains("beta"));
        assert!(mk(DeepConfig {
            lambda_v: f64::NAN,
            ..ok.clone()
        })
        .contains("lambda_v"));
        let mut bad = pt.clone();
        bad.v.pop();
        assert!(prog
            .objective(&bad)
            .unwrap_err()
            .to_string()
            .contains("shape"));
        let mut cand = prog.cand.clone();
        cand.pi[1][0] = 0.0;
        let e = DeepProgram::new(
            &problem.data,
            Activation::Tanh,
            Loss::Squared,
            cand,
            ok.clone(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("> 0"), "{e}");
        let l2 = Problem::new(
            problem.data.clone(),
            Activation::Tanh,
            Loss::Squared,
            Regularizer::L2 { lambda: 0.1 },
        )
        .unwrap();
        assert!(DeepProgram::from_network(&l2, &net, 1, 1)
            .unwrap_err()
            .to_string()
            .contains("GroupL1q"));
        let res = Shape::new(Arch::ResNet, 2, 3, 2).unwrap();
        let rnet = random_net(res, 1.0, 3);
        assert!(DeepCandidates::from_network(&problem, &rnet, 1, 1)
            .unwrap_err()
            .to_string()
            .contains("skip"));
    }
}
