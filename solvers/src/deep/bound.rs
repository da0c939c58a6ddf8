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
//! $\alpha^{\rm out}$ of unused features, then setting $\alpha^{\rm in}$ and $\alpha^v$ to the smallest values that cover (the
//! best ones given the rest; for $q = 1$: by scaling $\boldsymbol\mu_k$, $\mathbf r^*$ into the box).
//!
use super::*;
use crate::conjugate::risk_conjugate;
use crate::error::{ensure_finite, Result, SolverError};
use faer::{Mat, MatRef};

impl DeepProgram {
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
    pub(super) fn alphas(&self, m: &Mass) -> Alphas {
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
                }
                // α_in(k) enters only E_k (through -λκ) and the coverage of column k: its best value
                // is the smallest that covers, also when the given one is larger (e.g. after a best
                // response replaced μ_k, whose comparison assumed exactly this value).
                a_in[l + 1][k] = need;
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
                }
                // Likewise the smallest covering α_v(j) is best (it enters only E_L(j)).
                a_v[j] = need;
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
    pub(super) fn best_response(
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
}
