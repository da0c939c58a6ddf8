//! The $\tau = 0$ two-level dual as a second-order-cone program, solved by a primal–dual interior-point
//! method with Nesterov–Todd scaling and Mehrotra's predictor–corrector.
//!
//! # The cone program \[derived\]
//! The dual of the module docs with $\tau = 0$ is $\min_{\mathbf p,t}F^*(\mathbf p) + t$ subject to
//! $b_k(\mathbf p) = \sigma_k^2/2\lambda_1 - a_k\le t$, $\sigma = H^\top\mathbf p$. Each constraint is a rotated
//! second-order cone, $\sigma_k^2\le2\lambda_1(t + a_k)$, i.e. (with $\xi^2\le2uv\iff\|(\xi, (u-v)/\sqrt2)\|\le(u+v)/\sqrt2$,
//! scaled by $\sqrt2$) a point of the standard cone $\mathcal Q = \{x\in\mathbb R^3: x_0\ge\|(x_1,x_2)\|\}$:
//! $$\varsigma_k = \big(t + a_k + \lambda_1,\ t + a_k - \lambda_1,\ \sqrt2\,\sigma_k\big)\in\mathcal Q,\qquad
//!   \varsigma_k^\top J\varsigma_k = 4\lambda_1(t - b_k),\quad J = \mathrm{diag}(1,-1,-1).$$
//! In the form $\min f(x)$ s.t. $Gx + \varsigma = h$, $\varsigma\in\mathcal Q^K$ with $x = (\mathbf p, t)$, $f = F^*(\mathbf p) + t$,
//! $G_kx = -(t, t, \sqrt2 h_k^\top\mathbf p)$ and $h_k = (a_k + \lambda_1, a_k - \lambda_1, 0)$ (where $h_k$ is column $k$ of $H$
//! inside $G_k$), the multipliers $z_k\in\mathcal Q$ of the cones give the KKT conditions
//! $$\nabla F^*(\mathbf p) = \sqrt2\textstyle\sum_kz_{k2}h_k,\qquad \sum_k(z_{k0} + z_{k1}) = 1,\qquad \varsigma_k\circ z_k = 0,$$
//! so $\rho_k = z_{k0} + z_{k1}\ge0$ is the population and $w_k = \sqrt2z_{k2}$ the output weights: $\nabla F^*(\mathbf p) = Hw$ is
//! the prediction, and $z_k\in\mathcal Q$ reads $\rho_k(z_{k0} - z_{k1})\ge w_k^2/2$, so
//! $h^\top z = \sum_ka_k\rho_k + \lambda_1\sum_k(z_{k0} - z_{k1})\ge\sum_ka_k\rho_k + \lambda_1\sum_kw_k^2/2\rho_k$ — the primal
//! regularizer (the conic dual is the primal program).
//!
//! # The iteration
//! $x\circ y = (x^\top y,\ x_0\bar y + y_0\bar x)$ is the Jordan product of $\mathcal Q$ ($\bar x = (x_1, x_2)$), $e = (1, 0, 0)$
//! its identity. With the Nesterov–Todd scaling $W_k$ of $(\varsigma_k, z_k)$ — the symmetric $W$ with
//! $Wz = W^{-1}\varsigma = \lambda$ — Newton's method on the centered conditions $\lambda\circ\lambda = \mu e$ solves
//! $$\nabla^2f\,\Delta x + G^\top\Delta z = -r_x,\qquad G\Delta x + \Delta\varsigma = 0,\qquad \lambda\circ(W\Delta z + W^{-1}\Delta\varsigma) = d,$$
//! ($r_x = \nabla f + G^\top z$; $G x + \varsigma = h$ holds exactly because $\varsigma$ is recomputed from $x$). Eliminating
//! $\Delta\varsigma = -G\Delta x$ and $\Delta z = q - W^{-2}\Delta\varsigma$ with $q = W^{-1}(\lambda\backslash d)$ ($\lambda\backslash d$ solves
//! $\lambda\circ v = d$) leaves the $(N+1)$-dimensional system
//! $$\Big(\nabla^2f + \textstyle\sum_kG_k^\top W_k^{-2}G_k\Big)\Delta x = -r_x - \sum_kG_k^\top q_k,$$
//! whose $\mathbf p\mathbf p$ block is $\nabla^2F^* + H\,\mathrm{diag}(2V_{22})H^\top$ ($V = W_k^{-2}$) — one weighted Gram product
//! (its lower triangle, $\approx N^2K$ flops), factored by a Cholesky of size $N+1$. It is positive definite: $\nabla^2F^*\succeq N\,I$ for both losses.
//! Each iteration (Mehrotra): the affine direction $d = -\lambda\circ\lambda$, its step $\alpha_a$, the centering
//! $\sigma = (\mu_a/\mu)^3$ with $\mu = \varsigma^\top z/K$, then the combined direction
//! $d = -\lambda\circ\lambda - (W^{-1}\Delta\varsigma_a)\circ(W\Delta z_a) + \sigma\mu e$, and a step $0.99\times$ the distance to the
//! boundary of the cones (and of $\operatorname{dom}F^*$ for the logistic loss), capped at 1.
//!
//! # The certificate
//! At every iterate two primal points are formed, $\rho = (z_0 + z_1)/\sum(z_0 + z_1)\in\Delta_K$ with $w = \sqrt2z_2$ or
//! $w = -\rho\sigma/\lambda_1$, and $P(w,\rho)$ is evaluated exactly; $D(\mathbf p) = -F^*(\mathbf p) - \max_kb_k(\mathbf p)$ is a valid
//! lower bound for every $\mathbf p\in\operatorname{dom}F^*$ (the iterates stay inside). The solver stops when
//! $\min P - D\le$ `tol_gap` $\cdot|P|$; the gap is a certificate, not an estimate.
use super::TwoLevelProgram;
use crate::error::{Result, SolverError};
use crate::linalg::{matvec, matvec_t, weighted_gram, SpdFactor};
use faer::{Mat, Par};
use nff_core::Loss;

const SQRT2: f64 = std::f64::consts::SQRT_2;
/// Fraction of the distance to the boundary taken by a step.
const STEP_FRACTION: f64 = 0.99;

type V3 = [f64; 3];
type M3 = [[f64; 3]; 3];

/// $x\circ y$ on $\mathcal Q$.
fn jprod(x: &V3, y: &V3) -> V3 {
    [
        x[0] * y[0] + x[1] * y[1] + x[2] * y[2],
        x[0] * y[1] + y[0] * x[1],
        x[0] * y[2] + y[0] * x[2],
    ]
}

/// The solution $v$ of $\lambda\circ v = d$ ($\det\lambda = \lambda^\top J\lambda > 0$ given, computed accurately by the caller):
/// $v_0 = (\lambda_0d_0 - \bar\lambda^\top\bar d)/\det\lambda$, $\bar v = (\bar d - v_0\bar\lambda)/\lambda_0$.
fn jdiv(l: &V3, det: f64, d: &V3) -> V3 {
    let v0 = (l[0] * d[0] - l[1] * d[1] - l[2] * d[2]) / det;
    [v0, (d[1] - v0 * l[1]) / l[0], (d[2] - v0 * l[2]) / l[0]]
}

fn mv(m: &M3, x: &V3) -> V3 {
    [
        m[0][0] * x[0] + m[0][1] * x[1] + m[0][2] * x[2],
        m[1][0] * x[0] + m[1][1] * x[1] + m[1][2] * x[2],
        m[2][0] * x[0] + m[2][1] * x[1] + m[2][2] * x[2],
    ]
}

/// $x^\top Jx = (x_0 - x_1)(x_0 + x_1) - x_2^2$ (factored to limit cancellation).
fn jdet(x: &V3) -> f64 {
    (x[0] - x[1]) * (x[0] + x[1]) - x[2] * x[2]
}

/// The Nesterov–Todd scaling of $(\varsigma, z)\in\operatorname{int}\mathcal Q^2$ (Vandenberghe, *The CVXOPT linear and
/// quadratic cone program solvers*, 2010, §4): with $\bar\varsigma = \varsigma/\sqrt{\varsigma^\top J\varsigma}$,
/// $\bar z = z/\sqrt{z^\top Jz}$, $\gamma = \sqrt{(1 + \bar z^\top\bar\varsigma)/2}$, the scaled NT point $\bar w = (\bar\varsigma + J\bar z)/2\gamma$
/// ($\bar w^\top J\bar w = 1$), its Jordan square root $v = (\bar w + e)/\sqrt{2(\bar w_0 + 1)}$ ($v^\top Jv = 1$) and
/// $\beta = (\varsigma^\top J\varsigma/z^\top Jz)^{1/4}$: $W = \beta(2vv^\top - J)$, $W^{-1} = \beta^{-1}(2Jvv^\top J - J)$, and
/// $Wz = W^{-1}\varsigma = \lambda$ with $\lambda^\top J\lambda = \sqrt{\varsigma^\top J\varsigma\;z^\top Jz}$.
#[derive(Clone, Copy, Debug)]
struct Nt {
    w: M3,
    winv: M3,
    /// $W^{-2}$.
    winv2: M3,
    lambda: V3,
    /// $\lambda^\top J\lambda$.
    lambda_det: f64,
}

fn nt_scaling(s: &V3, ds: f64, z: &V3, dz: f64) -> Nt {
    let (rs, rz) = (ds.sqrt(), dz.sqrt());
    let sb = [s[0] / rs, s[1] / rs, s[2] / rs];
    let zb = [z[0] / rz, z[1] / rz, z[2] / rz];
    let gamma = ((1.0 + zb[0] * sb[0] + zb[1] * sb[1] + zb[2] * sb[2]) / 2.0).sqrt();
    // The scaled NT point w̄ = (ς̄ + Jz̄)/2γ (w̄ᵀJw̄ = 1) and its square root v = (w̄ + e)/√(2(w̄₀ + 1)).
    let wb = [
        (sb[0] + zb[0]) / (2.0 * gamma),
        (sb[1] - zb[1]) / (2.0 * gamma),
        (sb[2] - zb[2]) / (2.0 * gamma),
    ];
    let nv = (2.0 * (wb[0] + 1.0)).sqrt();
    let v = [(wb[0] + 1.0) / nv, wb[1] / nv, wb[2] / nv];
    let jv = [v[0], -v[1], -v[2]];
    let beta = (rs / rz).sqrt();
    let jdiag = [1.0, -1.0, -1.0];
    let mut w = [[0.0; 3]; 3];
    let mut winv = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let jij = if i == j { jdiag[i] } else { 0.0 };
            w[i][j] = beta * (2.0 * v[i] * v[j] - jij);
            winv[i][j] = (2.0 * jv[i] * jv[j] - jij) / beta;
        }
    }
    let mut winv2 = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            winv2[i][j] = (0..3).map(|l| winv[i][l] * winv[l][j]).sum();
        }
    }
    Nt {
        w,
        winv,
        winv2,
        lambda: mv(&w, z),
        lambda_det: rs * rz,
    }
}

/// The largest $\alpha\ge0$ with $x + \alpha d\in\mathcal Q$ for $x\in\operatorname{int}\mathcal Q$ ($+\infty$ if the ray stays
/// inside): the smallest positive root of $q(\alpha) = (x + \alpha d)^\top J(x + \alpha d) = a\alpha^2 + 2b\alpha + c$, $c > 0$
/// (a ray from the interior can only leave $\mathcal Q$ through $q = 0$).
fn max_step(x: &V3, xdet: f64, d: &V3) -> f64 {
    let a = jdet(d);
    let b = x[0] * d[0] - x[1] * d[1] - x[2] * d[2];
    let c = xdet;
    if a == 0.0 {
        return if b < 0.0 {
            -c / (2.0 * b)
        } else {
            f64::INFINITY
        };
    }
    let disc = b * b - a * c;
    if disc < 0.0 {
        return f64::INFINITY;
    }
    // Stable roots of aα² + 2bα + c: r1 = qq/a, r2 = c/qq with qq = −(b + sign(b)√disc).
    let qq = -(b + b.signum() * disc.sqrt());
    let mut best = f64::INFINITY;
    for r in [qq / a, if qq != 0.0 { c / qq } else { f64::INFINITY }] {
        if r > 0.0 && r < best {
            best = r;
        }
    }
    best
}

/// One search direction: $\Delta\mathbf p$, $\Delta t$, $\Delta\sigma = H^\top\Delta\mathbf p$, $\Delta\varsigma$, $\Delta z$.
struct Direction {
    dp: Vec<f64>,
    dt: f64,
    ds: Vec<V3>,
    dz: Vec<V3>,
}

/// What one interior-point iteration did.
#[derive(Clone, Copy, Debug)]
pub struct IpmStep {
    /// $\mu = \varsigma^\top z/K$ before the step.
    pub mu: f64,
    /// The centering parameter $\sigma$.
    pub sigma: f64,
    /// The step length taken.
    pub alpha: f64,
    /// The ridge the Cholesky factorization needed (0 almost always).
    pub ridge: f64,
}

/// The certified state of an iterate: the better of the two recovered primal points and the dual value.
#[derive(Clone, Debug)]
pub struct IpmCertificate {
    /// Output weights $w$ of the recovered primal point.
    pub w: Vec<f64>,
    /// The population $\rho\in\Delta_K$.
    pub rho: Vec<f64>,
    /// $P(w,\rho)$.
    pub primal: f64,
    /// $D(\mathbf p)$.
    pub dual: f64,
    /// The dual point $\mathbf p$.
    pub p: Vec<f64>,
}

impl IpmCertificate {
    /// $P - D\ge0$.
    pub fn gap(&self) -> f64 {
        self.primal - self.dual
    }
}

/// The interior-point method of the module docs as a step-by-step state machine ($\tau = 0$ programs only).
#[derive(Clone, Debug)]
pub struct TwoLevelIpm<'a> {
    prog: &'a TwoLevelProgram,
    par: Par,
    p: Vec<f64>,
    t: f64,
    /// $\sigma = H^\top\mathbf p$.
    sig: Vec<f64>,
    /// $\varsigma_k$ (a function of $(\mathbf p, t)$) and $\varsigma_k^\top J\varsigma_k = 4\lambda_1(t - b_k)$.
    s: Vec<V3>,
    sdet: Vec<f64>,
    z: Vec<V3>,
    iterations: usize,
}

impl<'a> TwoLevelIpm<'a> {
    /// The starting point: $\mathbf p_0 = \mathbf r(\hat{\mathbf y} = 0)$ (interior of $\operatorname{dom}F^*$),
    /// $t_0 = \max_kb_k + \max(1, |\max_kb_k|)$, and the perfectly centered $z_k = \mu_0\varsigma_k^{-1}$
    /// ($\varsigma^{-1} = J\varsigma/\varsigma^\top J\varsigma$, so $\varsigma_k\circ z_k = \mu_0e$) with $\mu_0$ chosen so that $\sum_k\rho_k = 1$:
    /// $z_{k0} + z_{k1} = \mu_0/2(t_0 - b_k)$. `par` is the parallelism of the Gram products.
    pub fn new(prog: &'a TwoLevelProgram, par: Par) -> Result<Self> {
        if prog.cfg.tau != 0.0 {
            return Err(SolverError::invalid(
                "entropy strength tau for the interior-point method",
                "tau = 0 (tau > 0 is solved by dual Newton)",
                prog.cfg.tau,
            ));
        }
        let p = prog.p_start();
        let (sig, b) = prog.s_b(&p);
        let bmax = b.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let t = bmax + 1.0_f64.max(bmax.abs());
        let mut ipm = Self {
            prog,
            par,
            p,
            t,
            sig,
            s: Vec::new(),
            sdet: Vec::new(),
            z: Vec::new(),
            iterations: 0,
        };
        ipm.update_slacks();
        let inv_sum: f64 = b.iter().map(|bk| 1.0 / (2.0 * (t - bk))).sum();
        let mu0 = 1.0 / inv_sum;
        ipm.z = ipm
            .s
            .iter()
            .zip(&ipm.sdet)
            .map(|(s, d)| [mu0 * s[0] / d, -mu0 * s[1] / d, -mu0 * s[2] / d])
            .collect();
        Ok(ipm)
    }

    /// Iterations taken.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// $\mu = \varsigma^\top z/K$.
    pub fn mu(&self) -> f64 {
        self.s
            .iter()
            .zip(&self.z)
            .map(|(s, z)| s[0] * z[0] + s[1] * z[1] + s[2] * z[2])
            .sum::<f64>()
            / self.z.len() as f64
    }

    /// Floating-point operations of one [`step`](Self::step), counting the products with $H$ (the $O(K)$ per-cone
    /// work is not counted): the lower triangle of the weighted Gram, $N(N+1)K$ (see [`weighted_gram`]; all columns
    /// kept), and $2NK$ for each of the seven matrix–vector products ($H\sqrt2z_2$ of the residual,
    /// $H(\sqrt2(V_{20} + V_{21}))$ of the normal matrix, $Hq$ and $H^\top\Delta\mathbf p$ of the predictor and of the
    /// corrector, and $H^\top\mathbf p$ at the new point).
    pub fn flops_per_iteration(&self) -> f64 {
        let (n, k) = (self.prog.n() as f64, self.prog.k() as f64);
        n * (n + 1.0) * k + 7.0 * 2.0 * n * k
    }

    /// $\varsigma_k = (t + a_k + \lambda_1, t + a_k - \lambda_1, \sqrt2\sigma_k)$ and $\varsigma_k^\top J\varsigma_k = 4\lambda_1(t - b_k)$ from $(\mathbf p, t)$.
    fn update_slacks(&mut self) {
        let l1 = self.prog.cfg.lambda1;
        let a = &self.prog.a;
        self.s = (0..self.sig.len())
            .map(|k| [self.t + a[k] + l1, self.t + a[k] - l1, SQRT2 * self.sig[k]])
            .collect();
        self.sdet = (0..self.sig.len())
            .map(|k| 4.0 * l1 * (self.t + a[k]) - 2.0 * self.sig[k] * self.sig[k])
            .collect();
    }

    /// The certified primal–dual pair at the current iterate (module docs): the best of the primal points
    /// $\rho = (z_0 + z_1)/\sum(z_0 + z_1)$ with $w = \sqrt2z_2$ or $w = -\rho\sigma/\lambda_1$, and of the **purified** points
    /// that drop the candidates with $\rho_k < \epsilon\max\rho$ ($\epsilon = 10^{-4}, 10^{-7}$), renormalize and set
    /// $w = -\rho\sigma/\lambda_1$. Every candidate is feasible and $P$ is evaluated exactly, so the choice keeps the
    /// certificate honest; purification removes the $O(K\mu)$ mass the interior point leaves on inactive cones.
    pub fn certificate(&self) -> IpmCertificate {
        let prog = self.prog;
        let k = prog.k();
        let l1 = prog.cfg.lambda1;
        let raw: Vec<f64> = self.z.iter().map(|z| z[0] + z[1]).collect();
        let rmax = raw.iter().copied().fold(0.0, f64::max);
        let normalized = |cut: f64| -> Vec<f64> {
            let kept: Vec<f64> = raw
                .iter()
                .map(|&r| if r >= cut * rmax { r } else { 0.0 })
                .collect();
            let total: f64 = kept.iter().sum();
            kept.iter().map(|r| r / total).collect()
        };
        let from_dual =
            |rho: &[f64]| -> Vec<f64> { (0..k).map(|kk| -rho[kk] * self.sig[kk] / l1).collect() };
        let rho = normalized(0.0);
        let mut best_w: Vec<f64> = self.z.iter().map(|z| SQRT2 * z[2]).collect();
        let mut best_p = prog.objective(&best_w, &rho);
        let mut best_rho = rho.clone();
        let mut consider = |w: Vec<f64>, rho: Vec<f64>| {
            let val = prog.objective(&w, &rho);
            if val < best_p {
                (best_w, best_p, best_rho) = (w, val, rho);
            }
        };
        consider(from_dual(&rho), rho);
        for cut in [1e-4, 1e-7] {
            let rho = normalized(cut);
            consider(from_dual(&rho), rho);
        }
        IpmCertificate {
            w: best_w,
            rho: best_rho,
            primal: best_p,
            dual: prog.dual_objective(&self.p),
            p: self.p.clone(),
        }
    }

    /// **Polishing** (as in OSQP): guess the active set $S = \{k: \rho_k\ge\epsilon\max\rho\}$ ($\epsilon = 10^{-1}..10^{-4}$, each
    /// distinct set tried) and run a few Newton steps
    /// on the square optimality system of the dual restricted to it,
    /// $$\nabla F^*(\mathbf p) + \textstyle\sum_{k\in S}\rho_k\frac{\sigma_k}{\lambda_1}h_k = 0,\qquad \sum_{k\in S}\rho_k = 1,\qquad b_k(\mathbf p) = t\ (k\in S),$$
    /// in $(\mathbf p, \rho_S, t)$ ($N + |S| + 1$ unknowns, a dense LU). Near a nondegenerate optimum it converges
    /// quadratically where the interior point is limited by rounding at $\mu\approx10^{-13}$. Each Newton iterate is
    /// certified like any other — $\rho_S\ge0$ normalized, $w = -\rho\sigma/\lambda_1$, $P(w,\rho)$ and $D(\mathbf p)$ evaluated
    /// exactly over all $K$ candidates — and only the best certified pair is returned (`None` if no iterate is valid).
    pub fn polish(&self) -> Option<IpmCertificate> {
        let raw: Vec<f64> = self.z.iter().map(|z| z[0] + z[1]).collect();
        let rmax = raw.iter().copied().fold(0.0, f64::max);
        let mut best: Option<IpmCertificate> = None;
        let mut tried: Vec<Vec<usize>> = Vec::new();
        for cut in [1e-1, 1e-2, 1e-3, 1e-4] {
            let mut act: Vec<usize> = Vec::new();
            for kk in (0..raw.len()).filter(|&kk| raw[kk] >= cut * rmax) {
                if !act.iter().any(|&j| self.same_feature(j, kk)) {
                    act.push(kk);
                }
            }
            if tried.contains(&act) {
                continue;
            }
            if let Some(c) = self.polish_on(&act, &raw) {
                if best.as_ref().is_none_or(|b| c.gap() < b.gap()) {
                    best = Some(c);
                }
            }
            tried.push(act);
        }
        best
    }

    /// Whether candidates $j$ and $k$ have the same feature column up to sign, $h_k = \pm h_j$, and the same cost
    /// $a_k = a_j$, to $10^{-14}$ relative (e.g. $\theta$ and $-\theta$ on a symmetric grid with an odd activation): they are interchangeable
    /// in the program (only $\rho_j + \rho_k$ matters), so polishing keeps one of them — two would make its
    /// Newton system singular. Where $\rho$ sits among the two does not change $P$.
    fn same_feature(&self, j: usize, k: usize) -> bool {
        let prog = self.prog;
        if (prog.a[j] - prog.a[k]).abs() > 1e-14 * prog.a[j].abs().max(prog.a[k].abs()) {
            return false;
        }
        let (cj, ck) = (prog.h.col_as_slice(j), prog.h.col_as_slice(k));
        let tol = 1e-14 * cj.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
        cj.iter().zip(ck).all(|(a, b)| (a - b).abs() <= tol)
            || cj.iter().zip(ck).all(|(a, b)| (a + b).abs() <= tol)
    }

    /// [`polish`](Self::polish) from one guessed active set, corrected as in an active-set method: a candidate whose
    /// $\rho_k$ turns negative leaves $S$, and the most violated constraint ($b_k > t$ outside $S$) enters it.
    fn polish_on(&self, act: &[usize], raw: &[f64]) -> Option<IpmCertificate> {
        use faer::linalg::solvers::Solve;
        let prog = self.prog;
        let (n, k) = (prog.n(), prog.k());
        let l1 = prog.cfg.lambda1;
        let mut act = act.to_vec();
        let mut p = self.p.clone();
        let mut t = self.t;
        let total: f64 = act.iter().map(|&kk| raw[kk]).sum();
        let mut rho_s: Vec<f64> = act.iter().map(|&kk| raw[kk] / total).collect();
        let mut best: Option<IpmCertificate> = None;
        for _ in 0..10 {
            let m = act.len();
            if m == 0 || m > n + 1 {
                break;
            }
            let dim = n + m + 1;
            let (_, gf, hd) = prog.conj_grad_hess(&p)?;
            let sig: Vec<f64> = act
                .iter()
                .map(|&kk| {
                    prog.h
                        .col_as_slice(kk)
                        .iter()
                        .zip(&p)
                        .map(|(a, b)| a * b)
                        .sum()
                })
                .collect();
            // Residuals (E1, E3, E2) and the Jacobian in the unknowns (p, ρ_S, t).
            let mut jac = Mat::<f64>::zeros(dim, dim);
            let mut res = vec![0.0; dim];
            res[..n].copy_from_slice(&gf);
            for i in 0..n {
                jac[(i, i)] = hd[i];
            }
            for (j, &kk) in act.iter().enumerate() {
                let col = prog.h.col_as_slice(kk);
                let g = sig[j] / l1;
                for i in 0..n {
                    res[i] += rho_s[j] * g * col[i];
                    jac[(i, n + j)] = g * col[i];
                    jac[(n + j, i)] = g * col[i];
                    for i2 in 0..n {
                        jac[(i2, i)] += rho_s[j] * col[i2] * col[i] / l1;
                    }
                }
                res[n + j] = sig[j] * sig[j] / (2.0 * l1) - prog.a[kk] - t;
                jac[(n + j, n + m)] = -1.0;
                jac[(n + m, n + j)] = 1.0;
            }
            res[n + m] = rho_s.iter().sum::<f64>() - 1.0;
            let rhs = Mat::from_fn(dim, 1, |i, _| -res[i]);
            let delta = jac.partial_piv_lu().solve(&rhs);
            if (0..dim).any(|i| !delta[(i, 0)].is_finite()) {
                break;
            }
            for i in 0..n {
                p[i] += delta[(i, 0)];
            }
            for j in 0..m {
                rho_s[j] += delta[(n + j, 0)];
            }
            t += delta[(n + m, 0)];
            // A negative weight leaves the active set (the most negative first).
            if let Some((j, _)) = rho_s
                .iter()
                .enumerate()
                .filter(|(_, &r)| r < 0.0)
                .min_by(|a, b| a.1.total_cmp(b.1))
            {
                act.remove(j);
                rho_s.remove(j);
                continue;
            }
            let dual = prog.dual_objective(&p);
            if !dual.is_finite() {
                break;
            }
            let total: f64 = rho_s.iter().sum();
            let mut rho = vec![0.0; k];
            let mut w = vec![0.0; k];
            let mut sig_all = vec![0.0; k];
            matvec_t(prog.h.as_ref(), &p, &mut sig_all);
            for (j, &kk) in act.iter().enumerate() {
                rho[kk] = rho_s[j] / total;
                w[kk] = -rho[kk] * sig_all[kk] / l1;
            }
            let primal = prog.objective(&w, &rho);
            let cert = IpmCertificate {
                w,
                rho,
                primal,
                dual,
                p: p.clone(),
            };
            if best.as_ref().is_none_or(|b| cert.gap() < b.gap()) {
                best = Some(cert);
            }
            // The most violated constraint outside S enters it.
            let viol = (0..k)
                .filter(|&kk| !act.iter().any(|&j| j == kk || self.same_feature(j, kk)))
                .map(|kk| (kk, sig_all[kk] * sig_all[kk] / (2.0 * l1) - prog.a[kk] - t))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((kk, v)) = viol {
                if v > 0.0 {
                    act.push(kk);
                    rho_s.push(0.0);
                }
            }
        }
        best
    }

    /// The dual residual $r_x = \nabla f + G^\top z$: $(\nabla F^*(\mathbf p) - \sqrt2Hz_2,\ 1 - \sum_k(z_{k0} + z_{k1}))$.
    fn residual(&self) -> Option<(Vec<f64>, f64)> {
        let prog = self.prog;
        let (_, gf, _) = prog.conj_grad_hess(&self.p)?;
        let z2: Vec<f64> = self.z.iter().map(|z| SQRT2 * z[2]).collect();
        let mut hz = vec![0.0; prog.n()];
        matvec(prog.h.as_ref(), &z2, &mut hz);
        let rp = (0..prog.n()).map(|i| gf[i] - hz[i]).collect();
        Some((rp, 1.0 - self.z.iter().map(|z| z[0] + z[1]).sum::<f64>()))
    }

    /// One Mehrotra predictor–corrector iteration (module docs).
    pub fn step(&mut self) -> Result<IpmStep> {
        let prog = self.prog;
        let (n, k) = (prog.n(), prog.k());
        let (_, _, hd) = prog.conj_grad_hess(&self.p).ok_or_else(|| {
            SolverError::numerical("two-level interior point", "iterate left the domain of F*")
        })?;
        let nts: Vec<Nt> = (0..k)
            .map(|kk| {
                let dz = jdet(&self.z[kk]);
                nt_scaling(&self.s[kk], self.sdet[kk], &self.z[kk], dz)
            })
            .collect();
        if nts
            .iter()
            .any(|nt| !(nt.lambda_det > 0.0) || nt.lambda.iter().any(|x| !x.is_finite()))
        {
            return Err(SolverError::numerical(
                "two-level interior point",
                "an iterate reached the boundary of the cone (scaling not defined)",
            ));
        }
        let (rp, rt) = self.residual().ok_or_else(|| {
            SolverError::numerical("two-level interior point", "iterate left the domain of F*")
        })?;
        // The normal matrix: pp = ∇²F* + H diag(2V₂₂) Hᵀ, pt = H (√2(V₂₀ + V₂₁)), tt = Σ(V₀₀ + 2V₀₁ + V₁₁).
        let cpp: Vec<f64> = nts.iter().map(|nt| 2.0 * nt.winv2[2][2]).collect();
        let cpt: Vec<f64> = nts
            .iter()
            .map(|nt| SQRT2 * (nt.winv2[2][0] + nt.winv2[2][1]))
            .collect();
        let ctt: f64 = nts
            .iter()
            .map(|nt| nt.winv2[0][0] + 2.0 * nt.winv2[0][1] + nt.winv2[1][1])
            .sum();
        let gram = weighted_gram(prog.h.as_ref(), &cpp, self.par);
        let mut hpt = vec![0.0; n];
        matvec(prog.h.as_ref(), &cpt, &mut hpt);
        let dim = n + 1;
        let mut m = Mat::<f64>::zeros(dim, dim);
        for j in 0..n {
            for i in 0..n {
                m[(i, j)] = gram[(i, j)];
            }
            m[(j, j)] += hd[j];
            m[(j, n)] = hpt[j];
            m[(n, j)] = hpt[j];
        }
        m[(n, n)] = ctt;
        let factor = SpdFactor::new(&m).ok_or_else(|| {
            SolverError::numerical("two-level interior point", "singular Newton system")
        })?;
        let mu = self.mu();

        // Affine-scaling direction: d = −λ∘λ.
        let d_aff: Vec<V3> = nts
            .iter()
            .map(|nt| {
                let l2 = jprod(&nt.lambda, &nt.lambda);
                [-l2[0], -l2[1], -l2[2]]
            })
            .collect();
        let aff = self.direction(&nts, &d_aff, &rp, rt, &m, &factor);
        let alpha_aff = self.step_to_boundary(&aff).min(1.0);
        let mu_aff = (0..k)
            .map(|kk| {
                let (s, z, ds, dz) = (&self.s[kk], &self.z[kk], &aff.ds[kk], &aff.dz[kk]);
                (0..3)
                    .map(|i| (s[i] + alpha_aff * ds[i]) * (z[i] + alpha_aff * dz[i]))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / k as f64;
        let sigma = (mu_aff / mu).clamp(0.0, 1.0).powi(3);

        // Combined direction: d = −λ∘λ − (W⁻¹Δς_a)∘(WΔz_a) + σμe.
        let d_cc: Vec<V3> = (0..k)
            .map(|kk| {
                let nt = &nts[kk];
                let a = mv(&nt.winv, &aff.ds[kk]);
                let b = mv(&nt.w, &aff.dz[kk]);
                let c = jprod(&a, &b);
                [
                    d_aff[kk][0] - c[0] + sigma * mu,
                    d_aff[kk][1] - c[1],
                    d_aff[kk][2] - c[2],
                ]
            })
            .collect();
        let dir = self.direction(&nts, &d_cc, &rp, rt, &m, &factor);
        let alpha = (STEP_FRACTION * self.step_to_boundary(&dir)).min(1.0);
        if !(alpha > 0.0) {
            return Err(SolverError::numerical(
                "two-level interior point",
                "zero step length",
            ));
        }
        for i in 0..n {
            self.p[i] += alpha * dir.dp[i];
        }
        self.t += alpha * dir.dt;
        for kk in 0..k {
            for i in 0..3 {
                self.z[kk][i] += alpha * dir.dz[kk][i];
            }
        }
        let mut sig = vec![0.0; k];
        matvec_t(prog.h.as_ref(), &self.p, &mut sig);
        self.sig = sig;
        self.update_slacks();
        self.iterations += 1;
        Ok(IpmStep {
            mu,
            sigma,
            alpha,
            ridge: factor.ridge,
        })
    }

    /// Solve the Newton system for the complementarity right-hand side `d` (module docs), with one step of
    /// iterative refinement on the $(N+1)$-system.
    fn direction(
        &self,
        nts: &[Nt],
        d: &[V3],
        rp: &[f64],
        rt: f64,
        m: &Mat<f64>,
        factor: &SpdFactor,
    ) -> Direction {
        let prog = self.prog;
        let (n, k) = (prog.n(), prog.k());
        // q_k = W⁻¹(λ∖d); rhs = −r_x − Σ G_kᵀ q_k with G_kᵀq = −(√2 q₂ h_k, q₀ + q₁).
        let q: Vec<V3> = (0..k)
            .map(|kk| {
                let nt = &nts[kk];
                mv(&nt.winv, &jdiv(&nt.lambda, nt.lambda_det, &d[kk]))
            })
            .collect();
        let q2: Vec<f64> = q.iter().map(|q| SQRT2 * q[2]).collect();
        let mut hq = vec![0.0; n];
        matvec(prog.h.as_ref(), &q2, &mut hq);
        let mut rhs = vec![0.0; n + 1];
        for i in 0..n {
            rhs[i] = -rp[i] + hq[i];
        }
        rhs[n] = -rt + q.iter().map(|q| q[0] + q[1]).sum::<f64>();
        let mut x = factor.solve(&rhs);
        let res: Vec<f64> = (0..=n)
            .map(|i| rhs[i] - (0..=n).map(|j| m[(i, j)] * x[j]).sum::<f64>())
            .collect();
        let dx = factor.solve(&res);
        for i in 0..=n {
            x[i] += dx[i];
        }
        let dt = x[n];
        let dp = x[..n].to_vec();
        let mut dsig = vec![0.0; k];
        matvec_t(prog.h.as_ref(), &dp, &mut dsig);
        let ds: Vec<V3> = dsig.iter().map(|&v| [dt, dt, SQRT2 * v]).collect();
        let dz: Vec<V3> = (0..k)
            .map(|kk| {
                let v = mv(&nts[kk].winv2, &ds[kk]);
                [q[kk][0] - v[0], q[kk][1] - v[1], q[kk][2] - v[2]]
            })
            .collect();
        Direction { dp, dt, ds, dz }
    }

    /// The largest step keeping every $\varsigma_k$, $z_k$ in $\mathcal Q$ and $\mathbf p$ in $\operatorname{dom}F^*$.
    fn step_to_boundary(&self, dir: &Direction) -> f64 {
        let prog = self.prog;
        let mut alpha = f64::INFINITY;
        for kk in 0..prog.k() {
            alpha = alpha.min(max_step(&self.s[kk], self.sdet[kk], &dir.ds[kk]));
            alpha = alpha.min(max_step(&self.z[kk], jdet(&self.z[kk]), &dir.dz[kk]));
        }
        // dom F*: for the logistic loss u_i = −N p_i y_i ∈ (0, 1); the squared loss has no restriction.
        if prog.loss == Loss::Logistic {
            let nf = prog.n() as f64;
            for i in 0..prog.n() {
                let yi = prog.y[i];
                let u = -nf * self.p[i] * yi;
                let du = -nf * dir.dp[i] * yi;
                if du < 0.0 {
                    alpha = alpha.min(u / -du);
                } else if du > 0.0 {
                    alpha = alpha.min((1.0 - u) / du);
                }
            }
        }
        alpha
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidates;
    use crate::testutil::sine_data;
    use crate::two_level::{TwoLevelConfig, TwoLevelOptions};
    use nff_core::Activation;
    use proptest::prelude::*;

    fn program(loss: Loss, per_axis: usize, n: usize, l2: f64, seed: u64) -> TwoLevelProgram {
        let data = sine_data(n, 1, seed, loss == Loss::Logistic);
        let theta = candidates::grid(2, per_axis, 3.0).unwrap();
        let rho0 = candidates::uniform_weights(theta.nrows());
        let cfg = TwoLevelConfig {
            lambda1: 0.01,
            lambda2: l2,
            tau: 0.0,
        };
        TwoLevelProgram::new(&data, Activation::Tanh, loss, theta.as_ref(), &rho0, cfg).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// For the squared loss $F^*$ is quadratic, so the Newton equations for the dual residual are exact:
        /// a step of length $\alpha$ scales $r_x$ by exactly $1 - \alpha$ (infeasible-start path following; up to
        /// rounding, $10^{-8}$ of the $O(1)$ data), and
        /// every iterate stays strictly inside the cones with a nonnegative certified gap (weak duality).
        #[test]
        fn steps_shrink_the_residual_by_one_minus_alpha(seed in 0u64..1000, l2 in 0.0f64..0.05) {
            let prog = program(Loss::Squared, 9, 7, l2, seed);
            let mut ipm = TwoLevelIpm::new(&prog, Par::Seq).unwrap();
            for it in 0..12 {
                // Stop at the rounding floor (slacks of ~1e-16 relative are not representable).
                if ipm.mu() < 1e-11 {
                    break;
                }
                let (rp0, rt0) = ipm.residual().unwrap();
                let st = ipm.step().unwrap();
                let (rp1, rt1) = ipm.residual().unwrap();
                let scale = rp0.iter().fold(rt0.abs(), |m, v| m.max(v.abs())).max(1e-3);
                for i in 0..rp0.len() {
                    let err = (rp1[i] - (1.0 - st.alpha) * rp0[i]).abs();
                    prop_assert!(err <= 1e-8 * scale.max(1.0), "it {} {:?} err {:e} scale {:e}", it, st, err, scale);
                }
                prop_assert!((rt1 - (1.0 - st.alpha) * rt0).abs() <= 1e-8 * scale.max(1.0));
                prop_assert!(ipm.sdet.iter().all(|&d| d > 0.0));
                prop_assert!(ipm.z.iter().all(|z| jdet(z) > 0.0 && z[0] > 0.0));
                let c = ipm.certificate();
                prop_assert!(c.gap() >= -1e-12 * c.primal.abs());
                prop_assert!((c.rho.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
    }

    /// The K = 4096, N = 64 instances of issue 4 (and the logistic loss) certify a relative gap below 1e-8
    /// (the certificate is weak duality, independent of the solver).
    #[test]
    fn large_grids_are_certified() {
        for (loss, l2) in [
            (Loss::Squared, 0.0),
            (Loss::Squared, 0.01),
            (Loss::Logistic, 0.01),
        ] {
            let prog = program(loss, 64, 64, l2, 1);
            let sol = prog
                .solve(&TwoLevelOptions {
                    tol_gap: 1e-9,
                    ..Default::default()
                })
                .unwrap();
            eprintln!(
                "{loss} l2={l2}: P={:.12e} rel={:.1e} it={} {:?}",
                sol.objective, sol.relative_gap, sol.iterations, sol.termination
            );
            assert!(
                sol.relative_gap <= 1e-9,
                "{loss} {l2}: {}",
                sol.relative_gap
            );
            assert!(sol.gap >= -1e-12 * sol.objective.abs(), "gap {}", sol.gap);
            assert!(sol.kkt.simplex_residual < 1e-12);
        }
    }

    fn rand_interior(seed: u64) -> V3 {
        // A deterministic interior point of Q.
        let a = ((seed as f64) * 0.7).sin();
        let b = ((seed as f64) * 1.3).cos();
        [a.abs() + b.abs() + 0.1 + 0.05 * seed as f64, a, b]
    }

    #[test]
    fn nt_scaling_maps_z_and_s_to_the_same_point() {
        for seed in 0..20 {
            let s = rand_interior(seed);
            let z = rand_interior(seed + 100);
            let nt = nt_scaling(&s, jdet(&s), &z, jdet(&z));
            let wz = mv(&nt.w, &z);
            let wis = mv(&nt.winv, &s);
            for i in 0..3 {
                assert!((wz[i] - wis[i]).abs() < 1e-12 * wz[0], "{wz:?} {wis:?}");
                assert!((wz[i] - nt.lambda[i]).abs() < 1e-12 * wz[0]);
            }
            // W W⁻¹ = I and W⁻² = W⁻¹W⁻¹.
            for i in 0..3 {
                for j in 0..3 {
                    let prod: f64 = (0..3).map(|l| nt.w[i][l] * nt.winv[l][j]).sum();
                    assert!((prod - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
                }
            }
            assert!((jdet(&nt.lambda) - nt.lambda_det).abs() < 1e-10 * nt.lambda_det);
        }
    }

    #[test]
    fn jordan_division_inverts_the_product() {
        for seed in 0..20 {
            let l = rand_interior(seed);
            let d = [0.3 - seed as f64, 1.5, -0.25 * seed as f64];
            let v = jdiv(&l, jdet(&l), &d);
            let back = jprod(&l, &v);
            for i in 0..3 {
                assert!((back[i] - d[i]).abs() < 1e-12 * (1.0 + d[i].abs()));
            }
        }
    }

    #[test]
    fn max_step_lands_on_the_boundary() {
        for seed in 0..40 {
            let x = rand_interior(seed);
            let d = [
                -1.0 + 0.1 * seed as f64,
                (seed as f64).sin() * 3.0,
                (seed as f64 * 2.1).cos(),
            ];
            let a = max_step(&x, jdet(&x), &d);
            if a.is_finite() {
                let y = [x[0] + a * d[0], x[1] + a * d[1], x[2] + a * d[2]];
                assert!(jdet(&y).abs() < 1e-9 * (1.0 + y[0] * y[0]), "{y:?}");
                assert!(y[0] >= -1e-12);
                // Just before the boundary the point is inside.
                let b = 0.999 * a;
                let y = [x[0] + b * d[0], x[1] + b * d[1], x[2] + b * d[2]];
                assert!(jdet(&y) > 0.0 && y[0] > 0.0);
            } else {
                for b in [1.0, 10.0, 1e3, 1e6] {
                    let y = [x[0] + b * d[0], x[1] + b * d[1], x[2] + b * d[2]];
                    assert!(jdet(&y) >= -1e-9 * y[0] * y[0] && y[0] > 0.0);
                }
            }
        }
    }
}
