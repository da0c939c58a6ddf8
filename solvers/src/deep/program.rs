//! The program itself: validation, mass/density conversions, predictions, the exact objective and
//! the constraint residuals.
use super::*;
use crate::conjugate::xlogx;
use crate::error::{ensure_nonneg, Result, SolverError};
use crate::linalg::pinv;
use faer::Mat;
use nff_core::{Activation, Dataset, Loss, Network, Problem, Regularizer};

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
pub(super) fn support_thresholds(m: &Mass, tol: f64) -> Vec<f64> {
    m.p.iter()
        .map(|p| tol * p.iter().copied().fold(0.0, f64::max))
        .collect()
}

/// $\kappa(\alpha) = (q-1)(\alpha/q)^{q/(q-1)}$ (for $q = 1$: 0).
pub(super) fn kappa(alpha: f64, q: f64) -> f64 {
    if q == 1.0 {
        0.0
    } else {
        (q - 1.0) * (alpha / q).powf(q / (q - 1.0))
    }
}

/// Perspective $S^q/(p+\varepsilon)^{q-1}$ with derivatives in $S$ and $p$ (exact conventions at $\varepsilon = 0$).
pub(super) fn persp(s: f64, p: f64, q: f64, eps: f64) -> (f64, f64, f64) {
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

    /// The activation $h$.
    pub fn activation(&self) -> Activation {
        self.activation
    }
}
