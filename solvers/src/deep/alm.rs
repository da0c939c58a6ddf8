//! # The solver
//! Split $\hat U = \hat U^+ - \hat U^-$, $\hat v = \hat v^+ - \hat v^-$, all variables $\ge0$. Augmented Lagrangian
//! $L_\sigma = f + \sum_\ell(c_\ell m_\ell + \frac\sigma2m_\ell^2) + \sum_{\ell,k}(\boldsymbol\mu_k^\top e_k + \frac\sigma2\|e_k\|^2)$ with mass residuals $m_\ell$
//! and consistency residuals $e_k$; the inner problem (bounds only) is solved by the projected L-BFGS of
//! [`crate::lbfgs`]. The perspectives are smoothed as $S^q/(p+\varepsilon)^{q-1}$ with $\varepsilon\downarrow\varepsilon_{\min}$ over the
//! outer iterations (a convex under-estimate; the reported objective is always the exact one). Updates
//! $\boldsymbol\mu\leftarrow\boldsymbol\mu + \sigma e$, $c\leftarrow c + \sigma m$; $\sigma\times10$ when the residual did not shrink by 4×. At the end
//! weights touching a feature with $p = 0$ are set to 0 (so the exact objective is finite), then residuals, the
//! exact objective, the KKT (dual) residual and the lower bound are evaluated at that point.
use super::*;
use crate::conjugate::xlogx;
use crate::lbfgs::{self, LbfgsOptions, Termination};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};

/// The KKT (dual) residual of the Lagrangian gradient `g` at the split point `x`: $|g_i|$ where $x_i$ is above
/// `tol` times the largest entry of its block (the variable is "in the support"), $\max(0, -g_i)$ elsewhere
/// (a variable at, or numerically at, its bound 0 only needs a nonnegative gradient).
pub(super) fn thresholded_dual_residual(lay: &Layout, x: &[f64], g: &[f64], tol: f64) -> f64 {
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
pub(super) struct RunStats {
    pub(super) outer: usize,
    pub(super) inner: usize,
    pub(super) resets: usize,
    pub(super) barrier_gap: Option<f64>,
    pub(super) termination: Termination,
    pub(super) eps: f64,
}

/// Offsets of the blocks of the split variable vector (mass variables).
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) n: Vec<usize>,
    pub(super) rho: Vec<usize>,
    pub(super) up: Vec<usize>,
    pub(super) um: Vec<usize>,
    pub(super) vp: usize,
    pub(super) vm: usize,
    pub(super) len: usize,
}

impl Layout {
    pub(super) fn new(n: &[usize]) -> Self {
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
    pub(super) fn nl(&self) -> usize {
        self.n.len()
    }
}

impl DeepProgram {
    // ---------------------------------------------------------------- the augmented Lagrangian

    pub(super) fn pack(&self, lay: &Layout, m: &Mass) -> Vec<f64> {
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

    pub(super) fn unpack(&self, lay: &Layout, x: &[f64]) -> Mass {
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
    pub(super) fn al_value_grad(
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

    /// The augmented Lagrangian loop (mass variables); returns the cleaned point, multipliers and counts.
    pub(super) fn solve_al(
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
}
