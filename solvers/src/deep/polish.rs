//! Active-set polish of a near-optimal point of the deep program.
//!
//! An interior point's duality gap is the barrier parameter times the barrier's degree, which grows with
//! the number of weights ($\sum_tn_tn_{t+1}$), while the accuracy of its Newton systems falls with the
//! barrier parameter. Near the optimum the **support** is visible instead: the features with mass, the
//! weights between them and their signs. On that face the program is smooth and equality constrained,
//! $$\min_w f(w)\quad\text{s.t.}\quad\textstyle\sum_{j\in F_\ell}p_{\ell,j} = 1,\qquad \sum_{(j,k)\in E_t}\hat U_{jk}h(\mathbf z_{t,j}) = p_{t+1,k}\mathbf z_{t+1,k}\ (k\in F_{t+1}),$$
//! with $|\hat U_{jk}| = s_{jk}\hat U_{jk}$ for the fixed signs $s$, so $S$, $T$ and the perspectives are smooth in $w = (p_F, \hat U_E, \hat v_G)$.
//! Newton's method on its KKT system (dense: the face is small) converges quadratically; its multipliers
//! are the consistency multipliers $\boldsymbol\mu_k$ of the used features. The polished point (exactly zero off the
//! face, so exactly feasible there) and these multipliers go to the certified bound like any other point:
//! if the face is the optimal one, the certified gap closes to rounding; if not, the bound says so.
use super::*;
use crate::conjugate::loss_second;
use faer::linalg::solvers::Solve;
use faer::Mat;

/// Faces with more unknowns than this are not polished (the dense KKT solve would dominate).
const MAX_UNKNOWNS: usize = 6000;
/// Proximal weight of the Newton steps, relative to the largest curvature.
const PROX: f64 = 1e-10;
/// Newton steps of a polish.
const MAX_STEPS: usize = 30;

/// Which features are used and which weights are active, with their signs (±1, 0 when inactive).
pub(crate) struct Active {
    pub features: Vec<Vec<bool>>,
    pub weights: Vec<Mat<f64>>,
}

/// The face of a point: used features, weights and signs.
struct Face {
    /// Used features per layer (candidate indices).
    feat: Vec<Vec<usize>>,
    /// Position of a used feature in `w` (`usize::MAX` when unused), per layer.
    pidx: Vec<Vec<usize>>,
    /// Weights per transition: (j, k, sign, position in `w`).
    edges: Vec<Vec<(usize, usize, f64, usize)>>,
    /// Output weights: (j, sign, position in `w`).
    outs: Vec<(usize, f64, usize)>,
    nw: usize,
    /// Consistency rows: (transition, k, first row).
    rows: Vec<(usize, usize, usize)>,
    nrows: usize,
}

impl DeepProgram {
    /// The face of `m` given which features are used and which weights (with their signs) are active;
    /// used features of layers ≥ 2 without an active incoming weight are dropped (their consistency
    /// would force $p = 0$).
    fn face(&self, m: &Mass, active: &Active) -> Option<Face> {
        let depth = self.depth();
        let sizes = self.sizes();
        let n = self.n();
        let mut used = active.features.clone();
        let mut sig: Vec<Vec<(usize, usize, f64)>> = vec![];
        for t in 0..depth - 1 {
            let mut e = vec![];
            for k in 0..sizes[t + 1] {
                if !used[t + 1][k] {
                    continue;
                }
                for j in 0..sizes[t] {
                    let s = active.weights[t][(j, k)];
                    if used[t][j] && s != 0.0 {
                        e.push((j, k, s));
                    }
                }
            }
            for k in 0..sizes[t + 1] {
                if used[t + 1][k] && !e.iter().any(|x| x.1 == k) {
                    used[t + 1][k] = false;
                }
            }
            sig.push(e);
        }
        let _ = m;
        let mut nw = 0;
        let mut pidx: Vec<Vec<usize>> = sizes.iter().map(|&s| vec![usize::MAX; s]).collect();
        let mut feat = vec![];
        for l in 0..depth {
            let f: Vec<usize> = (0..sizes[l]).filter(|&j| used[l][j]).collect();
            if f.is_empty() {
                return None;
            }
            for &j in &f {
                pidx[l][j] = nw;
                nw += 1;
            }
            feat.push(f);
        }
        let mut edges = vec![];
        for (t, e) in sig.into_iter().enumerate() {
            let mut v = vec![];
            for (j, k, s) in e {
                if used[t][j] && used[t + 1][k] {
                    v.push((j, k, s, nw));
                    nw += 1;
                }
            }
            edges.push(v);
        }
        let mut outs = vec![];
        for &j in &feat[depth - 1] {
            if m.v[j] != 0.0 {
                outs.push((j, m.v[j].signum(), nw));
                nw += 1;
            }
        }
        let mut rows = vec![];
        let mut r = depth;
        for t in 0..depth - 1 {
            for &k in &feat[t + 1] {
                rows.push((t, k, r));
                r += n;
            }
        }
        (nw + r <= MAX_UNKNOWNS).then_some(Face {
            feat,
            pidx,
            edges,
            outs,
            nw,
            rows,
            nrows: r,
        })
    }

    /// The mass point of face coordinates `w` (zero off the face).
    fn face_mass(&self, fc: &Face, w: &[f64]) -> Mass {
        let sizes = self.sizes();
        let depth = sizes.len();
        let mut p: Vec<Vec<f64>> = sizes.iter().map(|&s| vec![0.0; s]).collect();
        for l in 0..depth {
            for &j in &fc.feat[l] {
                p[l][j] = w[fc.pidx[l][j]];
            }
        }
        let u = (0..depth - 1)
            .map(|t| {
                let mut mat = Mat::<f64>::zeros(sizes[t], sizes[t + 1]);
                for &(j, k, _, i) in &fc.edges[t] {
                    mat[(j, k)] = w[i];
                }
                mat
            })
            .collect();
        let mut v = vec![0.0; sizes[depth - 1]];
        for &(j, _, i) in &fc.outs {
            v[j] = w[i];
        }
        Mass { p, u, v }
    }

    /// Value, gradient and Hessian (dense) of the face objective; `None` outside its domain
    /// ($p > 0$, sums $> 0$, signs kept).
    fn face_eval(&self, fc: &Face, w: &[f64]) -> Option<(f64, Vec<f64>, Mat<f64>)> {
        let q = self.cfg.q;
        let n = self.n();
        let depth = self.depth();
        let nw = fc.nw;
        let mut g = vec![0.0; nw];
        let mut hm = Mat::<f64>::zeros(nw, nw);
        // Risk.
        let hl = &self.h[depth - 1];
        let mut yhat = vec![0.0; n];
        for &(j, _, i) in &fc.outs {
            for r in 0..n {
                yhat[r] += w[i] * hl[(r, j)];
            }
        }
        let mut val = self.loss.risk(&yhat, &self.y);
        let res = self.loss.residual(&yhat, &self.y);
        let nf = n as f64;
        // φ''/N once per point (it was evaluated inside the |G|²·N loop).
        let curv: Vec<f64> = (0..n)
            .map(|r| loss_second(self.loss, yhat[r], self.y[r]) / nf)
            .collect();
        for &(j, _, i) in &fc.outs {
            g[i] += (0..n).map(|r| res[r] * hl[(r, j)]).sum::<f64>();
            for &(j2, _, i2) in &fc.outs {
                hm[(i, i2)] += (0..n)
                    .map(|r| curv[r] * hl[(r, j)] * hl[(r, j2)])
                    .sum::<f64>();
            }
        }
        // Perspectives of a signed sum Σ s_e w_e with a mass p (at position ip).
        let mut persp_term = |lam: f64, ip: usize, terms: &[(f64, usize)], val: &mut f64| -> bool {
            let s: f64 = terms.iter().map(|&(sg, i)| sg * w[i]).sum();
            let p = w[ip];
            if !(p > 0.0) || s < 0.0 {
                return false;
            }
            if q == 1.0 {
                *val += lam * s;
                for &(sg, i) in terms {
                    g[i] += lam * sg;
                }
                return true;
            }
            if s == 0.0 {
                return true;
            }
            let r = s / p;
            let rq1 = r.powf(q - 1.0);
            *val += lam * s * rq1;
            let (ps, pp) = (q * rq1, (1.0 - q) * rq1 * r);
            let c = q * (q - 1.0) / p * r.powf(q - 2.0);
            let (pss, psp, ppp) = (c, -c * r, c * r * r);
            g[ip] += lam * pp;
            hm[(ip, ip)] += lam * ppp;
            for &(sg, i) in terms {
                g[i] += lam * sg * ps;
                hm[(i, ip)] += lam * sg * psp;
                hm[(ip, i)] += lam * sg * psp;
                for &(sg2, i2) in terms {
                    hm[(i, i2)] += lam * sg * sg2 * pss;
                }
            }
            true
        };
        for t in 0..depth - 1 {
            let lam = self.cfg.lambda_w[t];
            for &k in &fc.feat[t + 1] {
                let terms: Vec<(f64, usize)> = fc.edges[t]
                    .iter()
                    .filter(|e| e.1 == k)
                    .map(|e| (e.2, e.3))
                    .collect();
                if !persp_term(lam, fc.pidx[t + 1][k], &terms, &mut val) {
                    return None;
                }
            }
            for &j in &fc.feat[t] {
                let terms: Vec<(f64, usize)> = fc.edges[t]
                    .iter()
                    .filter(|e| e.0 == j)
                    .map(|e| (e.2, e.3))
                    .collect();
                if !persp_term(lam, fc.pidx[t][j], &terms, &mut val) {
                    return None;
                }
            }
        }
        for &(j, sg, i) in &fc.outs {
            if !persp_term(
                self.cfg.lambda_v,
                fc.pidx[depth - 1][j],
                &[(sg, i)],
                &mut val,
            ) {
                return None;
            }
        }
        for l in 0..depth {
            let beta = self.cfg.beta[l];
            for &j in &fc.feat[l] {
                let i = fc.pidx[l][j];
                let p = w[i];
                val += self.cost[l][j] * p;
                g[i] += self.cost[l][j];
                if beta > 0.0 {
                    let lpi = self.cand.pi[l][j].ln();
                    val += beta * p * (p.ln() - lpi);
                    g[i] += beta * (p.ln() + 1.0 - lpi);
                    hm[(i, i)] += beta / p;
                }
            }
        }
        Some((val, g, hm))
    }

    /// The face's constraint matrix (dense, rows: masses then consistency) and right-hand side.
    fn face_constraints(&self, fc: &Face) -> (Mat<f64>, Vec<f64>) {
        let n = self.n();
        let depth = self.depth();
        let mut a = Mat::<f64>::zeros(fc.nrows, fc.nw);
        let mut b = vec![0.0; fc.nrows];
        for l in 0..depth {
            for &j in &fc.feat[l] {
                a[(l, fc.pidx[l][j])] = 1.0;
            }
            b[l] = 1.0;
        }
        for &(t, k, r0) in &fc.rows {
            let h = &self.h[t];
            let z = &self.cand.z[t + 1];
            for &(j, k2, _, i) in &fc.edges[t] {
                if k2 == k {
                    for r in 0..n {
                        a[(r0 + r, i)] += h[(r, j)];
                    }
                }
            }
            for r in 0..n {
                a[(r0 + r, fc.pidx[t + 1][k])] -= z[(r, k)];
            }
        }
        (a, b)
    }

    /// Polish `m` on its face (module docs). Returns the polished point and its multipliers
    /// ($\boldsymbol\mu_k = 0$ for unused $k$: the bound's best response chooses them), or `None` when the face
    /// is too large or Newton fails.
    pub(crate) fn polish(&self, m: &Mass, active: &Active) -> Option<(Mass, DeepMultipliers)> {
        if self.cfg.q == 1.0 {
            // Linear penalties: the face is an LP-like degenerate set; no smooth Newton system.
            return None;
        }
        let fc = self.face(m, active)?;
        let n = self.n();
        let depth = self.depth();
        let sizes = self.sizes();
        let (a, b) = self.face_constraints(&fc);
        let mut w = vec![0.0; fc.nw];
        for l in 0..depth {
            let tot: f64 = fc.feat[l].iter().map(|&j| m.p[l][j]).sum();
            for &j in &fc.feat[l] {
                w[fc.pidx[l][j]] = m.p[l][j] / tot;
            }
        }
        for t in 0..depth - 1 {
            for &(j, k, _, i) in &fc.edges[t] {
                w[i] = m.u[t][(j, k)];
            }
        }
        for &(j, _, i) in &fc.outs {
            w[i] = m.v[j];
        }
        let (nw, nr) = (fc.nw, fc.nrows);
        let mut y = vec![0.0; nr];
        for _ in 0..MAX_STEPS {
            let (f0, g, hm) = self.face_eval(&fc, &w)?;
            let rp: Vec<f64> = (0..nr)
                .map(|r| (0..nw).map(|c| a[(r, c)] * w[c]).sum::<f64>() - b[r])
                .collect();
            // KKT [H + δI, Aᵀ; A, 0][dw; y] = [−g; −r_p].
            let dmax = (0..nw)
                .map(|i| hm[(i, i)].abs())
                .fold(0.0, f64::max)
                .max(1e-300);
            // A proximal term keeps the steps finite along the face's flat directions (the weights enter
            // only through their row and column sums, so the optimum need not be unique on the face).
            let delta = PROX * dmax;
            let kdim = nw + nr;
            let kkt = Mat::from_fn(kdim, kdim, |i, j| match (i < nw, j < nw) {
                (true, true) => hm[(i, j)] + if i == j { delta } else { 0.0 },
                (true, false) => a[(j - nw, i)],
                (false, true) => a[(i - nw, j)],
                (false, false) => 0.0,
            });
            let rhs = Mat::from_fn(kdim, 1, |i, _| if i < nw { -g[i] } else { -rp[i - nw] });
            let sol = kkt.full_piv_lu().solve(&rhs);
            let dw: Vec<f64> = (0..nw).map(|i| sol[(i, 0)]).collect();
            if dw.iter().any(|v| !v.is_finite()) {
                return None;
            }
            let ynew: Vec<f64> = (0..nr).map(|i| sol[(nw + i, 0)]).collect();
            // Backtracking on the merit f + ρ‖Aw − b‖₁ keeping the face's domain.
            let rho = 1.0 + 2.0 * ynew.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let r1: f64 = rp.iter().map(|v| v.abs()).sum();
            let merit0 = f0 + rho * r1;
            let slope: f64 = (0..nw).map(|i| g[i] * dw[i]).sum::<f64>() - rho * r1;
            let mut step = 1.0;
            let mut wt = vec![0.0; nw];
            let mut ok = false;
            for _ in 0..50 {
                for i in 0..nw {
                    wt[i] = w[i] + step * dw[i];
                }
                let signs_kept = fc
                    .edges
                    .iter()
                    .flatten()
                    .all(|&(_, _, s, i)| s * wt[i] >= 0.0)
                    && fc.outs.iter().all(|&(_, s, i)| s * wt[i] >= 0.0);
                if signs_kept {
                    if let Some((ft, _, _)) = self.face_eval(&fc, &wt) {
                        let rt: f64 = (0..nr)
                            .map(|r| ((0..nw).map(|c| a[(r, c)] * wt[c]).sum::<f64>() - b[r]).abs())
                            .sum();
                        let noise = 1e-14 * (f0.abs() + rho * r1);
                        if ft + rho * rt <= merit0 + 1e-4 * step * slope.min(0.0) + noise {
                            ok = true;
                            break;
                        }
                    }
                }
                step *= 0.5;
            }
            if !ok {
                break;
            }
            w.copy_from_slice(&wt);
            y = ynew;
            let dmax_rel = dw.iter().map(|v| v.abs()).fold(0.0, f64::max)
                / w.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-300);
            if step == 1.0 && dmax_rel < 1e-13 {
                break;
            }
        }
        let mut mass = self.face_mass(&fc, &w);
        super::ipm::correct_on_support(self, &mut mass);
        let mut mu: Vec<Vec<f64>> = (0..depth - 1)
            .map(|t| vec![0.0; n * sizes[t + 1]])
            .collect();
        for &(t, k, r0) in &fc.rows {
            for r in 0..n {
                mu[t][k * n + r] = y[r0 + r];
            }
        }
        let c = y[..depth].to_vec();
        let yhat = self.predict_mass(&mass.v);
        let r = self.loss.residual(&yhat, &self.y);
        Some((mass, DeepMultipliers { mu, c, r }))
    }
}
