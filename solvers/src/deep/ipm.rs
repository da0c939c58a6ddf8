//! The structured interior-point solver of the deep program (the default method).
//!
//! # The conic program
//! In mass variables (module docs of [`super`]) split $\hat U_t = \hat U^+_t - \hat U^-_t$ and lift the column sums
//! $S_{t,k} = \sum_j(\hat U^+ + \hat U^-)_{jk}$, the row sums $T_{t,j} = \sum_k(\hat U^+ + \hat U^-)_{jk}$ and the predictions
//! $\hat{\mathbf y} = H_L\hat v$ into variables (transition $t$ joins layer $t$ to layer $t+1$; $H_\ell = [h(\mathbf z_{\ell,j})]_j$). Each
//! perspective $P(s,p) = |s|^q/p^{q-1}$ gets an epigraph variable $t\ge P(s,p)$, i.e. $(t, p, s)$ in the **power cone**
//! $\mathcal K_{1/q} = \{(x,y,z): x^{1/q}y^{1-1/q}\ge|z|\}$ (math.md §7; for $q = 2$ a rotated second-order cone). The program is
//! $$\min\ \mathcal R(\hat{\mathbf y}) + \sum_t\lambda_t\Big[\sum_kt^S_{t,k} + \sum_jt^T_{t,j}\Big] + \lambda_v\sum_jt^v_j +
//!   \sum_{\ell,j}\big[r_\ell(j)p_{\ell,j} + \beta_\ell p_{\ell,j}\log(p_{\ell,j}/\pi_\ell(j))\big]$$
//! over $(t^S, p_{t+1}, S)\in\mathcal K$, $(t^T, p_t, T)\in\mathcal K$, $(t^v, p_L, \hat v)\in\mathcal K$ (so $\hat v$ needs no split), $\hat U^\pm\ge0$, $p\ge0$,
//! subject to the linear equalities (multipliers in brackets)
//! $$\textstyle\sum_jp_{\ell,j} = 1\ [c_\ell],\quad H_t(\hat U^+ - \hat U^-)_{:,k} - p_{t+1,k}\mathbf z_{t+1,k} = 0\ [\boldsymbol\nu_{t,k}],\quad
//!   \sum_j(\hat U^+ + \hat U^-)_{jk} - S_{t,k} = 0\ [\sigma_{t,k}],$$
//! $$\textstyle\sum_k(\hat U^+ + \hat U^-)_{jk} - T_{t,j} = 0\ [\tau_{t,j}],\qquad H_L\hat v - \hat{\mathbf y} = 0\ [\boldsymbol\omega].$$
//! For $q = 1$ the penalties are linear ($\lambda S$, $\lambda T$, with $S, T\ge0$) and the output cone is $t^v\ge|\hat v|$.
//! The risk and the entropy stay smooth convex terms of the objective.
//!
//! # The method
//! A path-following barrier method (Nesterov & Nemirovski; Boyd & Vandenberghe §11): minimize
//! $f(x) + \mu F(x)$ over $Ax = b$, $F$ the sum of the self-concordant barriers — $-\log(x^{2/q}y^{2-2/q} - z^2) - (1-\frac1q)\log x - \frac1q\log y$
//! for each power cone (Chares's barrier, parameter 3), $-\log$ for every $\hat U^\pm$, $p$ (and $S$, $T$ when $q = 1$), $-\log(t^2 - v^2)$
//! for the $q = 1$ output cone — by infeasible-start Newton steps with a backtracking line search that
//! keeps every cone interior, then $\mu\leftarrow\mu/\kappa$. Each Newton step solves
//! $$\begin{bmatrix}K & A^\top\\ A & 0\end{bmatrix},\qquad K = \nabla^2f + \mu\nabla^2F,$$
//! through the normal equations $AK^{-1}A^\top y = \dots$, exploiting their structure:
//! - $K$ is diagonal on $\hat U^\pm$ ($\mu/x^2$) and block diagonal elsewhere: one block of $\le7$ variables per
//!   feature ($p_{\ell,j}$ with its incoming $S, t^S$, outgoing $T, t^T$ or output $\hat v, t^v$) and $\nabla^2\mathcal R$ on $\hat{\mathbf y}$;
//! - ordering the multipliers as **column blocks** $(\boldsymbol\nu_{t,k}, \sigma_{t,k})\in\mathbb R^{N+1}$ — one per feature $k$ of layer $t+1$ —
//!   and **globals** $g = (\tau, c, \boldsymbol\omega)$, the column blocks couple only to globals. Per column the block is
//!   $\begin{bmatrix}H_t\,\mathrm{diag}(a_{:,k})H_t^\top & H_t g_{:,k}\\ \cdot & \sum_ja_{jk}\end{bmatrix}$ plus the feature block's part
//!   ($a = 1/K_{U^+} + 1/K_{U^-}$, $g = 1/K_{U^+} - 1/K_{U^-}$), and its coupling to $\tau_t$ is $[H_t\,\mathrm{diag}(g_{:,k});\ a_{:,k}^\top]$;
//! - eliminating the column blocks (a Cholesky factor of size $N+1$ each) leaves the dense Schur complement
//!   on the globals, of size $\sum_{t}n_t + L + N$, formed by one stacked product per transition
//!   ($O(N\,n_t^2\,n_{t+1})$ flops at GEMM speed) and factored by Cholesky. Nothing of size
//!   $\sum_tn_tn_{t+1}$ is ever factored.
//!
//! # Certificates and stopping
//! After each centering the iterate is made **exactly feasible** — masses renormalized, every column of
//! $\hat U$ corrected by the weighted least-change step $\delta = DH^\top(HDH^\top)^{-1}e$ with $D = \mathrm{diag}(\hat U^+ + \hat U^-)_{:,k}$
//! (positive in the interior, so no feature gains weight it did not have) — and its exact objective $P$
//! is compared with the certified lower bound $D$ of [`DeepProgram::dual_bound`] at the Newton multipliers
//! $\boldsymbol\mu = -\boldsymbol\nu$, $\mathbf r^* = \nabla\mathcal R(\hat{\mathbf y})$, $\alpha^{\rm in} = -\sigma/\lambda$, $\alpha^{\rm out} = -\tau/\lambda$, $\alpha^v = \partial_sP$ (the coverage
//! constraints $|\boldsymbol\mu_k^\top h_j|\le\lambda(\alpha^{\rm in}_k + \alpha^{\rm out}_j)$ are the dual feasibility of $\hat U^\pm$; the bound repairs
//! any residual violation, so it is valid at every iterate). The solve stops when $(P - D)/|P|\le$ `tol_gap`.
//!
//! Ill-posed instances are refused before any work: a zero $\lambda$ (the weights are then unpenalized
//! and the optimum need not be attained) or a layer whose $h(\mathbf z)$ do not span $\mathbb R^N$.
use super::*;
use crate::conjugate::loss_second;
use crate::error::{Result, SolverError};
use crate::lbfgs::Termination;
use crate::linalg::{par_for, SmallChol, SpdFactor};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

/// The first barrier parameter is this times $|f(x_0)|/\vartheta$.
const MU0_SCALE: f64 = 1e3;
/// Barrier reduction per centering.
const MU_FACTOR: f64 = 10.0;
/// A centering ends when the Newton decrement $\lambda^2 = \Delta x^\top K\Delta x/\mu$ is below this.
const CENTERED: f64 = 0.5;
/// Certified relative gap below which each centered iterate is also polished on its face.
const POLISH_BELOW: f64 = 1e-3;
/// Refinement steps on the normal equations per Newton direction.
const REFINE_STEPS: usize = 2;
/// Centerings without a better certified gap before the solve stops as stalled.
const STALL_STAGES: usize = 3;

/// What the interior-point solve returns: an exactly feasible mass point, the multipliers of the bound
/// and the counts.
pub(crate) struct IpmResult {
    pub mass: Mass,
    pub mu: Vec<Mat<f64>>,
    pub c: Vec<f64>,
    pub r: Vec<f64>,
    pub alphas: Option<Alphas>,
    pub iterations: usize,
    pub stages: usize,
    /// The barrier parameter times the barrier's degree (the barrier's own gap estimate) at the end.
    pub barrier_gap: f64,
    pub termination: Termination,
}

/// Offsets of the primal vector $x$ and the multiplier vector $y$.
struct Dims {
    /// $N$.
    n: usize,
    /// $n_\ell$.
    sz: Vec<usize>,
    depth: usize,
    /// Epigraphs of $S$ and $T$ exist ($q > 1$).
    epi: bool,
    // x
    xp: Vec<usize>,
    xup: Vec<usize>,
    xum: Vec<usize>,
    xs: Vec<usize>,
    xt: Vec<usize>,
    xv: usize,
    xts: Vec<usize>,
    xtt: Vec<usize>,
    xtv: usize,
    xy: usize,
    nx: usize,
    /// The $\hat U^\pm$ entries are `x[u0..u1]`.
    u0: usize,
    u1: usize,
    // y
    yc: usize,
    ynu: Vec<usize>,
    ysig: Vec<usize>,
    ytau: Vec<usize>,
    yom: usize,
    ny: usize,
    // globals of the Schur complement: τ_t (all t), c, ω
    gtau: Vec<usize>,
    gc: usize,
    gom: usize,
    ng: usize,
}

impl Dims {
    fn new(sz: &[usize], n: usize, epi: bool) -> Self {
        let depth = sz.len();
        let nt = depth - 1;
        let mut o = 0;
        let mut take = |len: usize| {
            let a = o;
            o += len;
            a
        };
        let xp: Vec<usize> = sz.iter().map(|&s| take(s)).collect();
        let u0 = xp[depth - 1] + sz[depth - 1];
        let mut xup = vec![];
        let mut xum = vec![];
        for t in 0..nt {
            xup.push(take(sz[t] * sz[t + 1]));
            xum.push(take(sz[t] * sz[t + 1]));
        }
        let u1 = u0 + (0..nt).map(|t| 2 * sz[t] * sz[t + 1]).sum::<usize>();
        let xs: Vec<usize> = (0..nt).map(|t| take(sz[t + 1])).collect();
        let xt: Vec<usize> = (0..nt).map(|t| take(sz[t])).collect();
        let xv = take(sz[depth - 1]);
        let ep = |s: usize| if epi { s } else { 0 };
        let xts: Vec<usize> = (0..nt).map(|t| take(ep(sz[t + 1]))).collect();
        let xtt: Vec<usize> = (0..nt).map(|t| take(ep(sz[t]))).collect();
        let xtv = take(sz[depth - 1]);
        let xy = take(n);
        let nx = o;
        let mut o = depth;
        let mut take = |len: usize| {
            let a = o;
            o += len;
            a
        };
        let ynu: Vec<usize> = (0..nt).map(|t| take(n * sz[t + 1])).collect();
        let ysig: Vec<usize> = (0..nt).map(|t| take(sz[t + 1])).collect();
        let ytau: Vec<usize> = (0..nt).map(|t| take(sz[t])).collect();
        let yom = take(n);
        let ny = o;
        let mut g = 0;
        let gtau: Vec<usize> = (0..nt)
            .map(|t| {
                let a = g;
                g += sz[t];
                a
            })
            .collect();
        let gc = g;
        g += depth;
        let gom = g;
        g += n;
        Self {
            n,
            sz: sz.to_vec(),
            depth,
            epi,
            xp,
            xup,
            xum,
            xs,
            xt,
            xv,
            xts,
            xtt,
            xtv,
            xy,
            nx,
            u0,
            u1,
            yc: 0,
            ynu,
            ysig,
            ytau,
            yom,
            ny,
            gtau,
            gc,
            gom,
            ng: g,
        }
    }
    /// Number of transitions $L-1$.
    fn nt(&self) -> usize {
        self.depth - 1
    }
}

/// Make the consistency constraints hold to rounding: each column $k$ of $\hat U_t$ moves by the weighted
/// least-change step $\delta = DH_t^\top(H_tDH_t^\top)^{-1}e_k$, $e_k = p_{t+1,k}\mathbf z_{t+1,k} - H_t\hat U_{:,k}$, $D = \mathrm{diag}(d_{:,k})\ge0$ (entries with
/// zero weight stay put, so a support is kept); two passes, the second for rounding. A column whose
/// weighted Gram is singular is left as it is (its residual is reported by the caller).
pub(super) fn correct_columns(
    prog: &DeepProgram,
    p: &[Vec<f64>],
    u: &mut [Mat<f64>],
    d: &[Mat<f64>],
) {
    let n = prog.n();
    for t in 0..u.len() {
        let (nt, nk) = (u[t].nrows(), u[t].ncols());
        let h = prog.h[t].as_ref();
        let z = prog.cand.z[t + 1].as_ref();
        let ut = u[t].as_ref();
        let dt = d[t].as_ref();
        let cols: Vec<Vec<f64>> = (0..nk)
            .into_par_iter()
            .map(|k| {
                let mut col: Vec<f64> = (0..nt).map(|j| ut[(j, k)]).collect();
                if (0..nt).all(|j| dt[(j, k)] == 0.0) {
                    return col;
                }
                for _ in 0..2 {
                    let mut e: Vec<f64> = (0..n).map(|i| p[t + 1][k] * z[(i, k)]).collect();
                    for j in 0..nt {
                        if col[j] != 0.0 {
                            for i in 0..n {
                                e[i] -= h[(i, j)] * col[j];
                            }
                        }
                    }
                    let mut g = vec![0.0; n * n];
                    for j in 0..nt {
                        let dj = dt[(j, k)];
                        if dj == 0.0 {
                            continue;
                        }
                        for a in 0..n {
                            let ha = dj * h[(a, j)];
                            for b in 0..=a {
                                g[a * n + b] += ha * h[(b, j)];
                            }
                        }
                    }
                    for a in 0..n {
                        for b in 0..a {
                            g[b * n + a] = g[a * n + b];
                        }
                    }
                    let Some(ch) = SmallChol::new(&g, n) else {
                        return col;
                    };
                    if ch.ridge > 0.0 {
                        return col;
                    }
                    ch.solve(&mut e);
                    for j in 0..nt {
                        let s: f64 = (0..n).map(|i| h[(i, j)] * e[i]).sum();
                        col[j] += dt[(j, k)] * s;
                    }
                }
                col
            })
            .collect();
        for (k, c) in cols.into_iter().enumerate() {
            for j in 0..nt {
                u[t][(j, k)] = c[j];
            }
        }
    }
}

/// [`correct_columns`] with the weights $d = |\hat U|$ of the point itself: the consistency constraints of `m`
/// hold to rounding afterwards, and no weight that is zero becomes nonzero.
pub(super) fn correct_on_support(prog: &DeepProgram, m: &mut Mass) {
    let d: Vec<Mat<f64>> =
        m.u.iter()
            .map(|u| Mat::from_fn(u.nrows(), u.ncols(), |j, k| u[(j, k)].abs()))
            .collect();
    correct_columns(prog, &m.p, &mut m.u, &d);
}

/// Chares's barrier of the power cone $\{x^ay^{1-a}\ge|z|\}$, $a\in(0,1)$: value, gradient and Hessian (row-major 3×3) in
/// $(x, y, z)$; `None` outside the interior.
fn power_barrier(x: f64, y: f64, z: f64, a: f64) -> Option<(f64, [f64; 3], [f64; 9])> {
    if !(x > 0.0 && y > 0.0) {
        return None;
    }
    let (ea, eb) = (2.0 * a, 2.0 - 2.0 * a);
    let g = x.powf(ea) * y.powf(eb);
    let psi = g - z * z;
    if !(psi > 0.0) || !psi.is_finite() {
        return None;
    }
    let dpsi = [ea * g / x, eb * g / y, -2.0 * z];
    let d2 = [
        ea * (ea - 1.0) * g / (x * x),
        ea * eb * g / (x * y),
        0.0,
        ea * eb * g / (x * y),
        eb * (eb - 1.0) * g / (y * y),
        0.0,
        0.0,
        0.0,
        -2.0,
    ];
    let val = -psi.ln() - (1.0 - a) * x.ln() - a * y.ln();
    let grad = [
        -dpsi[0] / psi - (1.0 - a) / x,
        -dpsi[1] / psi - a / y,
        -dpsi[2] / psi,
    ];
    let mut hess = [0.0; 9];
    for r in 0..3 {
        for c in 0..3 {
            hess[r * 3 + c] = dpsi[r] * dpsi[c] / (psi * psi) - d2[r * 3 + c] / psi;
        }
    }
    hess[0] += (1.0 - a) / (x * x);
    hess[4] += a / (y * y);
    Some((val, grad, hess))
}

/// $-\log(t^2 - v^2)$ (the cone $t\ge|v|$): value, gradient, Hessian in $(t, v)$.
fn abs_barrier(t: f64, v: f64) -> Option<(f64, [f64; 2], [f64; 4])> {
    let psi = t * t - v * v;
    if !(t > 0.0 && psi > 0.0) {
        return None;
    }
    let d = [2.0 * t, -2.0 * v];
    let d2 = [2.0, 0.0, 0.0, -2.0];
    let mut h = [0.0; 4];
    for r in 0..2 {
        for c in 0..2 {
            h[r * 2 + c] = d[r] * d[c] / (psi * psi) - d2[r * 2 + c] / psi;
        }
    }
    Some((-psi.ln(), [-d[0] / psi, -d[1] / psi], h))
}

/// The largest block: $p, S, t^S, T, t^T$ or $p, S, t^S, \hat v, t^v$ (five), seven with room to spare.
const MAXB: usize = 7;

/// The variables of one feature block (indices into $x$): $p$, incoming sum $S$ with its epigraph, outgoing
/// sum $T$ with its epigraph, output weight $\hat v$ with its epigraph.
#[derive(Clone, Copy)]
struct Feature {
    l: usize,
    j: usize,
    p: usize,
    s: Option<usize>,
    ts: Option<usize>,
    t: Option<usize>,
    tt: Option<usize>,
    v: Option<usize>,
    tv: Option<usize>,
}

impl Feature {
    /// The variables in block order and their count.
    fn vars(&self) -> ([usize; MAXB], usize) {
        let mut out = [0; MAXB];
        let mut k = 0;
        for v in [
            Some(self.p),
            self.s,
            self.ts,
            self.t,
            self.tt,
            self.v,
            self.tv,
        ]
        .into_iter()
        .flatten()
        {
            out[k] = v;
            k += 1;
        }
        (out, k)
    }
    /// Position of variable `x` in the block.
    fn pos(&self, x: usize) -> usize {
        let (v, n) = self.vars();
        (0..n).find(|&i| v[i] == x).expect("variable of the block")
    }
}

/// The factored Newton system.
struct Factor {
    /// $1/K$ on $\hat U^+$ and $\hat U^-$ entries (per transition, column-major $n_t\times n_{t+1}$).
    eup: Vec<Vec<f64>>,
    eum: Vec<Vec<f64>>,
    /// $a = e^+ + e^-$, $g = e^+ - e^-$.
    a: Vec<Mat<f64>>,
    g: Vec<Mat<f64>>,
    /// Inverse feature blocks (row-major $nv\times nv$), in [`Ipm::features`] order.
    kinv: Vec<Vec<f64>>,
    /// $1/\nabla^2\mathcal R$ on $\hat{\mathbf y}$.
    eyhat: Vec<f64>,
    /// Column-block factors, per transition and column.
    cc: Vec<Vec<SmallChol>>,
    /// Column-block couplings to their extra globals (row-major $(N+1)\times n_e$), per transition and column.
    ex: Vec<Vec<Vec<f64>>>,
    /// Global indices of the extras of transition $t$ (the unique $\tau_{t+1,k}$ is marked `usize::MAX`).
    ex_idx: Vec<Vec<usize>>,
    /// The Schur complement on the globals.
    schur: SpdFactor,
}

struct Ipm<'a> {
    prog: &'a DeepProgram,
    dm: Dims,
    q: f64,
    lam: Vec<f64>,
    lam_v: f64,
    features: Vec<Feature>,
    /// Rows $a\le b$ of $H_t\odot H_t$ ($N(N+1)/2\times n_t$): the Khatri–Rao products for $H\,\mathrm{diag}(a)H^\top$.
    kr: Vec<Mat<f64>>,
    threads: usize,
}

impl<'a> Ipm<'a> {
    fn new(prog: &'a DeepProgram, threads: usize) -> Self {
        let sz = prog.sizes();
        let n = prog.n();
        let q = prog.cfg.q;
        let dm = Dims::new(&sz, n, q > 1.0);
        let depth = sz.len();
        let mut features = vec![];
        for l in 0..depth {
            for j in 0..sz[l] {
                let inc = l >= 1;
                let out = l + 1 < depth;
                let top = l + 1 == depth;
                features.push(Feature {
                    l,
                    j,
                    p: dm.xp[l] + j,
                    s: inc.then(|| dm.xs[l - 1] + j),
                    ts: (inc && dm.epi).then(|| dm.xts[l - 1] + j),
                    t: out.then(|| dm.xt[l] + j),
                    tt: (out && dm.epi).then(|| dm.xtt[l] + j),
                    v: top.then_some(dm.xv + j),
                    tv: top.then_some(dm.xtv + j),
                });
            }
        }
        let npair = n * (n + 1) / 2;
        let kr = (0..depth - 1)
            .map(|t| {
                let h = &prog.h[t];
                let mut m = Mat::<f64>::zeros(npair, sz[t]);
                for j in 0..sz[t] {
                    let mut r = 0;
                    for a in 0..n {
                        for b in a..n {
                            m[(r, j)] = h[(a, j)] * h[(b, j)];
                            r += 1;
                        }
                    }
                }
                m
            })
            .collect();
        Self {
            prog,
            q,
            lam: prog.cfg.lambda_w.clone(),
            lam_v: prog.cfg.lambda_v,
            dm,
            features,
            kr,
            threads,
        }
    }

    fn h(&self, l: usize) -> MatRef<'_, f64> {
        self.prog.h[l].as_ref()
    }
    fn zf(&self, l: usize) -> MatRef<'_, f64> {
        self.prog.cand.z[l].as_ref()
    }
    fn u_block<'b>(&self, x: &'b [f64], off: usize, t: usize) -> MatRef<'b, f64> {
        let (r, c) = (self.dm.sz[t], self.dm.sz[t + 1]);
        MatRef::from_column_major_slice(&x[off..off + r * c], r, c)
    }
    fn par(&self, flops: f64) -> Par {
        par_for(self.threads, flops)
    }

    /// Strengths of the incoming / outgoing perspective of a feature, and the output one.
    fn strengths(&self, f: &Feature) -> (f64, f64, f64) {
        let depth = self.dm.depth;
        let lin = if f.l >= 1 { self.lam[f.l - 1] } else { 0.0 };
        let lout = if f.l + 1 < depth { self.lam[f.l] } else { 0.0 };
        let lv = if f.l + 1 == depth { self.lam_v } else { 0.0 };
        (lin, lout, lv)
    }

    /// The objective $f(x)$ of the conic program and its gradient.
    fn eval(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let dm = &self.dm;
        let prog = self.prog;
        let n = dm.n;
        let yhat = &x[dm.xy..dm.xy + n];
        let mut val = prog.loss.risk(yhat, &prog.y);
        grad.fill(0.0);
        prog.loss
            .residual_into(yhat, &prog.y, &mut grad[dm.xy..dm.xy + n]);
        for f in &self.features {
            let (lin, lout, lv) = self.strengths(f);
            let p = x[f.p];
            let beta = prog.cfg.beta[f.l];
            let cost = prog.cost[f.l][f.j];
            val += cost * p;
            grad[f.p] += cost;
            if beta > 0.0 {
                let lpi = prog.cand.pi[f.l][f.j].ln();
                val += beta * p * (p.ln() - lpi);
                grad[f.p] += beta * (p.ln() + 1.0 - lpi);
            }
            // λ t (epigraphs) or λ S, λ T (q = 1).
            for (idx, lam) in [(f.ts.or(f.s), lin), (f.tt.or(f.t), lout), (f.tv, lv)] {
                if let Some(i) = idx {
                    val += lam * x[i];
                    grad[i] += lam;
                }
            }
        }
        val
    }

    /// The barrier $F(x)$ (`None` outside the interior) and, if asked, its gradient.
    fn barrier(&self, x: &[f64], mut grad: Option<&mut [f64]>) -> Option<f64> {
        let dm = &self.dm;
        let mut val = 0.0;
        if let Some(g) = grad.as_deref_mut() {
            g.fill(0.0);
        }
        for i in dm.u0..dm.u1 {
            if !(x[i] > 0.0) {
                return None;
            }
            val -= x[i].ln();
            if let Some(g) = grad.as_deref_mut() {
                g[i] = -1.0 / x[i];
            }
        }
        for f in &self.features {
            let (bv, bg, nv, _) = self.block_barrier(f, x)?;
            val += bv;
            if let Some(g) = grad.as_deref_mut() {
                let (vars, _) = f.vars();
                for k in 0..nv {
                    g[vars[k]] += bg[k];
                }
            }
        }
        Some(val)
    }

    /// The barrier of one feature block: value, gradient and Hessian (row-major) in block order.
    #[allow(clippy::type_complexity)]
    fn block_barrier(
        &self,
        f: &Feature,
        x: &[f64],
    ) -> Option<(f64, [f64; MAXB], usize, [f64; MAXB * MAXB])> {
        let (_, nv) = f.vars();
        let mut val = 0.0;
        let mut g = [0.0; MAXB];
        let mut h = [0.0; MAXB * MAXB];
        let p = x[f.p];
        if !(p > 0.0) {
            return None;
        }
        val -= p.ln();
        g[0] -= 1.0 / p;
        h[0] += 1.0 / (p * p);
        let a = 1.0 / self.q;
        // Power cones (t, p, s) of the incoming and outgoing sums and of the output weight.
        for (s, t) in [(f.s, f.ts), (f.t, f.tt), (f.v, f.tv)] {
            match (s, t) {
                (Some(si), Some(ti)) if self.q > 1.0 => {
                    let (bv, bg, bh) = power_barrier(x[ti], p, x[si], a)?;
                    val += bv;
                    let idx = [f.pos(ti), 0, f.pos(si)];
                    for r in 0..3 {
                        g[idx[r]] += bg[r];
                        for c in 0..3 {
                            h[idx[r] * nv + idx[c]] += bh[r * 3 + c];
                        }
                    }
                }
                (Some(si), Some(ti)) => {
                    // q = 1 output: t ≥ |v|.
                    let (bv, bg, bh) = abs_barrier(x[ti], x[si])?;
                    val += bv;
                    let idx = [f.pos(ti), f.pos(si)];
                    for r in 0..2 {
                        g[idx[r]] += bg[r];
                        for c in 0..2 {
                            h[idx[r] * nv + idx[c]] += bh[r * 2 + c];
                        }
                    }
                }
                (Some(si), None) => {
                    // q = 1 sums: S ≥ 0.
                    let sv = x[si];
                    if !(sv > 0.0) {
                        return None;
                    }
                    let k = f.pos(si);
                    val -= sv.ln();
                    g[k] -= 1.0 / sv;
                    h[k * nv + k] += 1.0 / (sv * sv);
                }
                _ => {}
            }
        }
        Some((val, g, nv, h))
    }

    /// $K_b = \nabla^2f_b + \mu\nabla^2F_b$ on a feature block (row-major, block order).
    fn block_k(&self, f: &Feature, x: &[f64], mu: f64) -> Option<([f64; MAXB * MAXB], usize)> {
        let (_, _, nv, mut h) = self.block_barrier(f, x)?;
        for v in h.iter_mut() {
            *v *= mu;
        }
        let beta = self.prog.cfg.beta[f.l];
        if beta > 0.0 {
            h[0] += beta / x[f.p];
        }
        Some((h, nv))
    }

    /// $Ax$ (the constant $b$ is 1 on the mass rows, 0 elsewhere).
    fn apply_a(&self, x: &[f64]) -> Vec<f64> {
        let dm = &self.dm;
        let n = dm.n;
        let mut out = vec![0.0; dm.ny];
        for l in 0..dm.depth {
            out[dm.yc + l] = x[dm.xp[l]..dm.xp[l] + dm.sz[l]].iter().sum();
        }
        for t in 0..dm.nt() {
            let (nt, nk) = (dm.sz[t], dm.sz[t + 1]);
            let up = self.u_block(x, dm.xup[t], t);
            let um = self.u_block(x, dm.xum[t], t);
            let diff = Mat::from_fn(nt, nk, |j, k| up[(j, k)] - um[(j, k)]);
            let mut e = Mat::<f64>::zeros(n, nk);
            matmul(
                e.as_mut(),
                Accum::Replace,
                self.h(t),
                diff.as_ref(),
                1.0,
                self.par(2.0 * (n * nt * nk) as f64),
            );
            let z = self.zf(t + 1);
            let mut rows = vec![0.0; nt];
            for k in 0..nk {
                let pk = x[dm.xp[t + 1] + k];
                for i in 0..n {
                    out[dm.ynu[t] + k * n + i] = e[(i, k)] - pk * z[(i, k)];
                }
                let mut s = 0.0;
                for j in 0..nt {
                    let b = up[(j, k)] + um[(j, k)];
                    s += b;
                    rows[j] += b;
                }
                out[dm.ysig[t] + k] = s - x[dm.xs[t] + k];
            }
            for j in 0..nt {
                out[dm.ytau[t] + j] = rows[j] - x[dm.xt[t] + j];
            }
        }
        let hl = self.h(dm.depth - 1);
        let nl = dm.sz[dm.depth - 1];
        for i in 0..n {
            let s: f64 = (0..nl).map(|j| hl[(i, j)] * x[dm.xv + j]).sum();
            out[dm.yom + i] = s - x[dm.xy + i];
        }
        out
    }

    fn b(&self) -> Vec<f64> {
        let mut b = vec![0.0; self.dm.ny];
        for l in 0..self.dm.depth {
            b[self.dm.yc + l] = 1.0;
        }
        b
    }

    /// $A^\top y$.
    fn apply_at(&self, y: &[f64]) -> Vec<f64> {
        let dm = &self.dm;
        let n = dm.n;
        let mut out = vec![0.0; dm.nx];
        for l in 0..dm.depth {
            let z = self.zf(l);
            for j in 0..dm.sz[l] {
                let mut v = y[dm.yc + l];
                if l >= 1 {
                    let nu = &y[dm.ynu[l - 1] + j * n..dm.ynu[l - 1] + (j + 1) * n];
                    v -= (0..n).map(|i| z[(i, j)] * nu[i]).sum::<f64>();
                }
                out[dm.xp[l] + j] = v;
            }
        }
        for t in 0..dm.nt() {
            let (nt, nk) = (dm.sz[t], dm.sz[t + 1]);
            let nu = MatRef::from_column_major_slice(&y[dm.ynu[t]..dm.ynu[t] + n * nk], n, nk);
            let mut hn = Mat::<f64>::zeros(nt, nk);
            matmul(
                hn.as_mut(),
                Accum::Replace,
                self.h(t).transpose(),
                nu,
                1.0,
                self.par(2.0 * (n * nt * nk) as f64),
            );
            let sig = &y[dm.ysig[t]..dm.ysig[t] + nk];
            let tau = &y[dm.ytau[t]..dm.ytau[t] + nt];
            for k in 0..nk {
                for j in 0..nt {
                    let base = sig[k] + tau[j];
                    out[dm.xup[t] + j + k * nt] = hn[(j, k)] + base;
                    out[dm.xum[t] + j + k * nt] = -hn[(j, k)] + base;
                }
                out[dm.xs[t] + k] = -sig[k];
            }
            for j in 0..nt {
                out[dm.xt[t] + j] = -tau[j];
            }
        }
        let hl = self.h(dm.depth - 1);
        let om = &y[dm.yom..dm.yom + n];
        for j in 0..dm.sz[dm.depth - 1] {
            out[dm.xv + j] = (0..n).map(|i| hl[(i, j)] * om[i]).sum();
        }
        for i in 0..n {
            out[dm.xy + i] = -om[i];
        }
        out
    }

    /// The rows touched by a feature block: (number of local column-block rows, global rows, the dense
    /// coefficients `B`, row-major rows × nv).
    fn block_rows(&self, f: &Feature) -> (usize, Vec<usize>, Vec<f64>) {
        let dm = &self.dm;
        let n = dm.n;
        let (_, nv) = f.vars();
        let nloc = if f.l >= 1 { n + 1 } else { 0 };
        let mut glob = vec![dm.gc + f.l];
        if f.t.is_some() {
            glob.push(dm.gtau[f.l] + f.j);
        }
        if f.v.is_some() {
            glob.extend((0..n).map(|i| dm.gom + i));
        }
        let rows = nloc + glob.len();
        let mut b = vec![0.0; rows * nv];
        if let Some(si) = f.s {
            let z = self.zf(f.l);
            for i in 0..n {
                b[i * nv] = -z[(i, f.j)];
            }
            b[n * nv + f.pos(si)] = -1.0;
        }
        let mut r = nloc;
        b[r * nv] = 1.0; // mass row c_l
        r += 1;
        if let Some(ti) = f.t {
            b[r * nv + f.pos(ti)] = -1.0;
            r += 1;
        }
        if let Some(vi) = f.v {
            let hl = self.h(dm.depth - 1);
            let c = f.pos(vi);
            for i in 0..n {
                b[(r + i) * nv + c] = hl[(i, f.j)];
            }
        }
        (nloc, glob, b)
    }

    /// Build and factor the Newton system at $(x, z)$.
    /// `x = None`: the identity metric $K = I$ (the constant $AA^\top$ of the feasibility projection).
    fn factor(&self, x: Option<&[f64]>, mu: f64) -> Result<Factor> {
        let dm = &self.dm;
        let n = dm.n;
        let m1 = n + 1;
        let npair = n * (n + 1) / 2;
        let mut mgg = Mat::<f64>::zeros(dm.ng, dm.ng);
        // U entries.
        let mut eup = vec![];
        let mut eum = vec![];
        let mut amat = vec![];
        let mut gmat = vec![];
        for t in 0..dm.nt() {
            let (nt, nk) = (dm.sz[t], dm.sz[t + 1]);
            let cnt = nt * nk;
            let (ep, em): (Vec<f64>, Vec<f64>) = match x {
                Some(x) => (
                    (0..cnt).map(|i| x[dm.xup[t] + i].powi(2) / mu).collect(),
                    (0..cnt).map(|i| x[dm.xum[t] + i].powi(2) / mu).collect(),
                ),
                None => (vec![1.0; cnt], vec![1.0; cnt]),
            };
            let a = Mat::from_fn(nt, nk, |j, k| ep[j + k * nt] + em[j + k * nt]);
            let g = Mat::from_fn(nt, nk, |j, k| ep[j + k * nt] - em[j + k * nt]);
            for j in 0..nt {
                let gi = dm.gtau[t] + j;
                mgg[(gi, gi)] += (0..nk).map(|k| a[(j, k)]).sum::<f64>();
            }
            eup.push(ep);
            eum.push(em);
            amat.push(a);
            gmat.push(g);
        }
        // Column blocks: U-entry parts (H diag(a) H^T via the Khatri–Rao rows; H g; Σ a).
        let mut mcc: Vec<Vec<Vec<f64>>> = vec![];
        for t in 0..dm.nt() {
            let (nt, nk) = (dm.sz[t], dm.sz[t + 1]);
            let mut hah = Mat::<f64>::zeros(npair, nk);
            matmul(
                hah.as_mut(),
                Accum::Replace,
                self.kr[t].as_ref(),
                amat[t].as_ref(),
                1.0,
                self.par(2.0 * (npair * nt * nk) as f64),
            );
            let mut hg = Mat::<f64>::zeros(n, nk);
            matmul(
                hg.as_mut(),
                Accum::Replace,
                self.h(t),
                gmat[t].as_ref(),
                1.0,
                self.par(2.0 * (n * nt * nk) as f64),
            );
            let blocks = (0..nk)
                .map(|k| {
                    let mut b = vec![0.0; m1 * m1];
                    let mut r = 0;
                    for i in 0..n {
                        for jj in i..n {
                            b[i * m1 + jj] = hah[(r, k)];
                            b[jj * m1 + i] = hah[(r, k)];
                            r += 1;
                        }
                        b[i * m1 + n] = hg[(i, k)];
                        b[n * m1 + i] = hg[(i, k)];
                    }
                    b[n * m1 + n] = (0..nt).map(|j| amat[t][(j, k)]).sum();
                    b
                })
                .collect();
            mcc.push(blocks);
        }
        // Extras pattern per transition.
        let ex_idx: Vec<Vec<usize>> = (0..dm.nt())
            .map(|t| {
                let mut v = vec![dm.gc + t + 1];
                if t + 2 < dm.depth {
                    v.push(usize::MAX);
                } else {
                    v.extend((0..n).map(|i| dm.gom + i));
                }
                v
            })
            .collect();
        let mut ex: Vec<Vec<Vec<f64>>> = (0..dm.nt())
            .map(|t| vec![vec![0.0; m1 * ex_idx[t].len()]; dm.sz[t + 1]])
            .collect();
        // Feature blocks.
        let mut kinv = Vec::with_capacity(self.features.len());
        for f in &self.features {
            let (_, nv) = f.vars();
            let mut ki = vec![0.0; nv * nv];
            if let Some(x) = x {
                let (hm, _) = self.block_k(f, x, mu).ok_or_else(|| {
                    SolverError::numerical("interior point", "iterate left the cones")
                })?;
                let ch = SmallChol::new(&hm[..nv * nv], nv).ok_or_else(|| {
                    SolverError::numerical(
                        "interior point",
                        format!(
                            "feature block of layer {} candidate {} not positive definite",
                            f.l + 1,
                            f.j
                        ),
                    )
                })?;
                let mut e = vec![0.0; nv];
                for c in 0..nv {
                    e.fill(0.0);
                    e[c] = 1.0;
                    ch.solve(&mut e);
                    for r in 0..nv {
                        ki[r * nv + c] = e[r];
                    }
                }
            } else {
                for r in 0..nv {
                    ki[r * nv + r] = 1.0;
                }
            }
            let (nloc, glob, b) = self.block_rows(f);
            let rows = nloc + glob.len();
            // M_b = B K^{-1} B^T.
            let mut bk = vec![0.0; rows * nv];
            for r in 0..rows {
                for c in 0..nv {
                    bk[r * nv + c] = (0..nv).map(|k| b[r * nv + k] * ki[k * nv + c]).sum();
                }
            }
            let mb = |r1: usize, r2: usize| -> f64 {
                (0..nv).map(|k| bk[r1 * nv + k] * b[r2 * nv + k]).sum()
            };
            if nloc > 0 {
                let t = f.l - 1;
                let blk = &mut mcc[t][f.j];
                for r1 in 0..nloc {
                    for r2 in 0..nloc {
                        blk[r1 * m1 + r2] += mb(r1, r2);
                    }
                }
                let ne = glob.len();
                let e = &mut ex[t][f.j];
                for r1 in 0..nloc {
                    for (gi, _) in glob.iter().enumerate() {
                        e[r1 * ne + gi] = mb(r1, nloc + gi);
                    }
                }
            }
            for (a1, &g1) in glob.iter().enumerate() {
                for (a2, &g2) in glob.iter().enumerate() {
                    mgg[(g1, g2)] += mb(nloc + a1, nloc + a2);
                }
            }
            kinv.push(ki);
        }
        // ŷ.
        let n_f = n as f64;
        let mut eyhat = vec![0.0; n];
        for i in 0..n {
            eyhat[i] = match x {
                Some(x) => {
                    let h2 = loss_second(self.prog.loss, x[dm.xy + i], self.prog.y[i]) / n_f;
                    1.0 / h2.max(1e-300)
                }
                None => 1.0,
            };
            mgg[(dm.gom + i, dm.gom + i)] += eyhat[i];
        }
        // Factor the column blocks and form the Schur complement.
        let mut cc = vec![];
        for t in 0..dm.nt() {
            let (nt, nk) = (dm.sz[t], dm.sz[t + 1]);
            let chols: Vec<SmallChol> = mcc[t]
                .par_iter()
                .enumerate()
                .map(|(k, b)| {
                    SmallChol::new(b, m1).ok_or_else(|| {
                        SolverError::numerical(
                            "interior point",
                            format!("column block {k} of layer {} not positive definite", t + 2),
                        )
                    })
                })
                .collect::<Result<_>>()?;
            // Shared globals of this transition: τ_t, then the shared extras (c_{t+1}, ω).
            let shared_ex: Vec<(usize, usize)> = ex_idx[t]
                .iter()
                .enumerate()
                .filter(|(_, &g)| g != usize::MAX)
                .map(|(c, &g)| (c, g))
                .collect();
            let unique_col = ex_idx[t].iter().position(|&g| g == usize::MAX);
            let ns = nt + shared_ex.len();
            let mut gidx: Vec<usize> = (0..nt).map(|j| dm.gtau[t] + j).collect();
            gidx.extend(shared_ex.iter().map(|&(_, g)| g));
            let mut stemp = Mat::<f64>::zeros(ns, ns);
            let chunk = (4_000_000 / (m1 * ns)).clamp(1, nk);
            let h = self.h(t);
            let ne = ex_idx[t].len();
            let mut k0 = 0;
            while k0 < nk {
                let k1 = (k0 + chunk).min(nk);
                let ck = k1 - k0;
                let mut wc = Mat::<f64>::zeros(ck * m1, ns);
                // W̃_k = L_k^{-1} D_k [C_τ | E_shared], row block k.
                let rows: Vec<(Vec<f64>, Vec<f64>)> = (k0..k1)
                    .into_par_iter()
                    .map(|k| {
                        let ch = &chols[k];
                        let li = ch.inv_l_d();
                        // C_τ = [H diag(g_k); a_k^T]: (L^{-1}D)[:, :N] H diag(g) + (L^{-1}D)[:, N] a^T.
                        let mut w = vec![0.0; m1 * ns];
                        for r in 0..m1 {
                            for j in 0..nt {
                                let mut s = 0.0;
                                for i in 0..n {
                                    s += li[r * m1 + i] * h[(i, j)];
                                }
                                w[r * ns + j] =
                                    s * gmat[t][(j, k)] + li[r * m1 + n] * amat[t][(j, k)];
                            }
                            for (sc, &(c, _)) in shared_ex.iter().enumerate() {
                                let mut s = 0.0;
                                for i in 0..m1 {
                                    s += li[r * m1 + i] * ex[t][k][i * ne + c];
                                }
                                w[r * ns + nt + sc] = s;
                            }
                        }
                        let mut uq = vec![0.0; m1];
                        if let Some(c) = unique_col {
                            for r in 0..m1 {
                                uq[r] =
                                    (0..m1).map(|i| li[r * m1 + i] * ex[t][k][i * ne + c]).sum();
                            }
                        }
                        (w, uq)
                    })
                    .collect();
                for (kk, (w, uq)) in rows.iter().enumerate() {
                    for r in 0..m1 {
                        for c in 0..ns {
                            wc[(kk * m1 + r, c)] = w[r * ns + c];
                        }
                    }
                    if unique_col.is_some() {
                        let k = k0 + kk;
                        let gu = dm.gtau[t + 1] + k;
                        // S[G, τ'_k] −= W̃_kᵀ w_k, S[τ'_k, τ'_k] −= |w_k|².
                        for c in 0..ns {
                            let s: f64 = (0..m1).map(|r| w[r * ns + c] * uq[r]).sum();
                            mgg[(gidx[c], gu)] -= s;
                            mgg[(gu, gidx[c])] -= s;
                        }
                        mgg[(gu, gu)] -= uq.iter().map(|v| v * v).sum::<f64>();
                    }
                }
                matmul(
                    stemp.as_mut(),
                    Accum::Add,
                    wc.as_ref().transpose(),
                    wc.as_ref(),
                    -1.0,
                    self.par(2.0 * (ck * m1 * ns * ns) as f64),
                );
                k0 = k1;
            }
            for (a1, &g1) in gidx.iter().enumerate() {
                for (a2, &g2) in gidx.iter().enumerate() {
                    mgg[(g1, g2)] += stemp[(a1, a2)];
                }
            }
            cc.push(chols);
        }
        // Symmetrize (rounding) and factor.
        for i in 0..dm.ng {
            for j in 0..i {
                let v = 0.5 * (mgg[(i, j)] + mgg[(j, i)]);
                mgg[(i, j)] = v;
                mgg[(j, i)] = v;
            }
        }
        let schur = SpdFactor::new(&mgg).ok_or_else(|| {
            SolverError::numerical("interior point", "Schur complement not positive definite")
        })?;
        Ok(Factor {
            eup,
            eum,
            a: amat,
            g: gmat,
            kinv,
            eyhat,
            cc,
            ex,
            ex_idx,
            schur,
        })
    }
    /// $u = K^{-1}h$.
    fn apply_kinv(&self, fac: &Factor, hv: &[f64]) -> Vec<f64> {
        let dm = &self.dm;
        let mut u = vec![0.0; dm.nx];
        for t in 0..dm.nt() {
            let cnt = dm.sz[t] * dm.sz[t + 1];
            for i in 0..cnt {
                u[dm.xup[t] + i] = fac.eup[t][i] * hv[dm.xup[t] + i];
                u[dm.xum[t] + i] = fac.eum[t][i] * hv[dm.xum[t] + i];
            }
        }
        for (f, ki) in self.features.iter().zip(&fac.kinv) {
            let (vars, nv) = f.vars();
            for r in 0..nv {
                u[vars[r]] = (0..nv).map(|c| ki[r * nv + c] * hv[vars[c]]).sum();
            }
        }
        for i in 0..dm.n {
            u[dm.xy + i] = fac.eyhat[i] * hv[dm.xy + i];
        }
        u
    }

    /// Solve $AK^{-1}A^\top\Delta y = r$ by the column-block elimination.
    fn solve_normal(&self, fac: &Factor, r: &[f64]) -> Vec<f64> {
        let dm = &self.dm;
        let n = dm.n;
        let m1 = n + 1;
        // Globals of r.
        let mut rg = vec![0.0; dm.ng];
        for t in 0..dm.nt() {
            for j in 0..dm.sz[t] {
                rg[dm.gtau[t] + j] = r[dm.ytau[t] + j];
            }
        }
        for l in 0..dm.depth {
            rg[dm.gc + l] = r[dm.yc + l];
        }
        for i in 0..n {
            rg[dm.gom + i] = r[dm.yom + i];
        }
        // q_k = Mcc_k^{-1} r_C,k.
        let mut qs: Vec<Vec<Vec<f64>>> = vec![];
        for t in 0..dm.nt() {
            let nk = dm.sz[t + 1];
            let q: Vec<Vec<f64>> = (0..nk)
                .into_par_iter()
                .map(|k| {
                    let mut w = vec![0.0; m1];
                    w[..n].copy_from_slice(&r[dm.ynu[t] + k * n..dm.ynu[t] + (k + 1) * n]);
                    w[n] = r[dm.ysig[t] + k];
                    fac.cc[t][k].solve(&mut w);
                    w
                })
                .collect();
            qs.push(q);
        }
        // r_g −= Σ_k C_kᵀ q_k.
        for t in 0..dm.nt() {
            let (nt, nk) = (dm.sz[t], dm.sz[t + 1]);
            let qn = Mat::from_fn(n, nk, |i, k| qs[t][k][i]);
            let mut hq = Mat::<f64>::zeros(nt, nk);
            matmul(
                hq.as_mut(),
                Accum::Replace,
                self.h(t).transpose(),
                qn.as_ref(),
                1.0,
                self.par(2.0 * (n * nt * nk) as f64),
            );
            for j in 0..nt {
                let s: f64 = (0..nk)
                    .map(|k| fac.g[t][(j, k)] * hq[(j, k)] + fac.a[t][(j, k)] * qs[t][k][n])
                    .sum();
                rg[dm.gtau[t] + j] -= s;
            }
            let ne = fac.ex_idx[t].len();
            for k in 0..nk {
                for (c, &g) in fac.ex_idx[t].iter().enumerate() {
                    let gi = if g == usize::MAX {
                        dm.gtau[t + 1] + k
                    } else {
                        g
                    };
                    let s: f64 = (0..m1)
                        .map(|i| fac.ex[t][k][i * ne + c] * qs[t][k][i])
                        .sum();
                    rg[gi] -= s;
                }
            }
        }
        let dg = fac.schur.solve(&rg);
        let mut out = vec![0.0; dm.ny];
        for t in 0..dm.nt() {
            let (nt, nk) = (dm.sz[t], dm.sz[t + 1]);
            // C_τ Δτ for every column: [H (g_k ∘ Δτ); a_kᵀ Δτ].
            let dtau = &dg[dm.gtau[t]..dm.gtau[t] + nt];
            let gd = Mat::from_fn(nt, nk, |j, k| fac.g[t][(j, k)] * dtau[j]);
            let mut hgd = Mat::<f64>::zeros(n, nk);
            matmul(
                hgd.as_mut(),
                Accum::Replace,
                self.h(t),
                gd.as_ref(),
                1.0,
                self.par(2.0 * (n * nt * nk) as f64),
            );
            let ne = fac.ex_idx[t].len();
            let cols: Vec<Vec<f64>> = (0..nk)
                .into_par_iter()
                .map(|k| {
                    let mut w = vec![0.0; m1];
                    w[..n].copy_from_slice(&r[dm.ynu[t] + k * n..dm.ynu[t] + (k + 1) * n]);
                    w[n] = r[dm.ysig[t] + k];
                    for i in 0..n {
                        w[i] -= hgd[(i, k)];
                    }
                    w[n] -= (0..nt).map(|j| fac.a[t][(j, k)] * dtau[j]).sum::<f64>();
                    for (c, &g) in fac.ex_idx[t].iter().enumerate() {
                        let gi = if g == usize::MAX {
                            dm.gtau[t + 1] + k
                        } else {
                            g
                        };
                        for i in 0..m1 {
                            w[i] -= fac.ex[t][k][i * ne + c] * dg[gi];
                        }
                    }
                    fac.cc[t][k].solve(&mut w);
                    w
                })
                .collect();
            for (k, w) in cols.iter().enumerate() {
                out[dm.ynu[t] + k * n..dm.ynu[t] + (k + 1) * n].copy_from_slice(&w[..n]);
                out[dm.ysig[t] + k] = w[n];
            }
            for j in 0..nt {
                out[dm.ytau[t] + j] = dtau[j];
            }
        }
        for l in 0..dm.depth {
            out[dm.yc + l] = dg[dm.gc + l];
        }
        for i in 0..n {
            out[dm.yom + i] = dg[dm.gom + i];
        }
        out
    }

    /// The Newton direction for the right-hand sides $h = r_d + X^{-1}r_c$ (on $\mathcal B$; $r_d$ on $\hat{\mathbf y}$) and $r_p$:
    /// $\Delta x = K^{-1}(A^\top\Delta y - h)$ with $AK^{-1}A^\top\Delta y = -r_p + AK^{-1}h$.
    fn direction(&self, fac: &Factor, hv: &[f64], rp: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let u = self.apply_kinv(fac, hv);
        let au = self.apply_a(&u);
        let rhs: Vec<f64> = au.iter().zip(rp).map(|(a, b)| a - b).collect();
        let mut dy = self.solve_normal(fac, &rhs);
        // Iterative refinement on the normal equations (their condition grows like 1/μ).
        for _ in 0..REFINE_STEPS {
            let mdy = self.apply_a(&self.apply_kinv(fac, &self.apply_at(&dy)));
            let res: Vec<f64> = rhs.iter().zip(&mdy).map(|(a, b)| a - b).collect();
            let corr = self.solve_normal(fac, &res);
            for (d, c) in dy.iter_mut().zip(&corr) {
                *d += c;
            }
        }
        let atdy = self.apply_at(&dy);
        let kat = self.apply_kinv(fac, &atdy);
        let dx: Vec<f64> = kat.iter().zip(&u).map(|(a, b)| a - b).collect();
        (dx, dy)
    }
    /// The exactly feasible mass point of an iterate (module docs).
    fn feasible_mass(&self, x: &[f64]) -> Mass {
        let dm = &self.dm;
        let p: Vec<Vec<f64>> = (0..dm.depth)
            .map(|l| {
                let s = &x[dm.xp[l]..dm.xp[l] + dm.sz[l]];
                let tot: f64 = s.iter().sum();
                s.iter().map(|v| v / tot).collect()
            })
            .collect();
        let mut u = vec![];
        let mut d = vec![];
        for t in 0..dm.nt() {
            let up = self.u_block(x, dm.xup[t], t);
            let um = self.u_block(x, dm.xum[t], t);
            u.push(Mat::from_fn(up.nrows(), up.ncols(), |j, k| {
                up[(j, k)] - um[(j, k)]
            }));
            d.push(Mat::from_fn(up.nrows(), up.ncols(), |j, k| {
                up[(j, k)] + um[(j, k)]
            }));
        }
        correct_columns(self.prog, &p, &mut u, &d);
        let nl = dm.sz[dm.depth - 1];
        let v = x[dm.xv..dm.xv + nl].to_vec();
        Mass { p, u, v }
    }

    /// The starting point: uniform masses, $\hat U^\pm$ at the scale of a unit-weight network, lifted sums
    /// consistent, $\hat v = 0$, epigraphs twice their perspectives.
    fn start(&self) -> Vec<f64> {
        let dm = &self.dm;
        let mut x = vec![0.0; dm.nx];
        for l in 0..dm.depth {
            x[dm.xp[l]..dm.xp[l] + dm.sz[l]].fill(1.0 / dm.sz[l] as f64);
        }
        for t in 0..dm.nt() {
            let (nt, nk) = (dm.sz[t], dm.sz[t + 1]);
            let u0 = 1.0 / (nt * nk) as f64;
            x[dm.xup[t]..dm.xup[t] + nt * nk].fill(u0);
            x[dm.xum[t]..dm.xum[t] + nt * nk].fill(u0);
            x[dm.xs[t]..dm.xs[t] + nk].fill(2.0 * u0 * nt as f64);
            x[dm.xt[t]..dm.xt[t] + nt].fill(2.0 * u0 * nk as f64);
        }
        let nl = dm.sz[dm.depth - 1];
        for f in &self.features {
            let p = x[f.p];
            for (s, t) in [(f.s, f.ts), (f.t, f.tt), (f.v, f.tv)] {
                if let (Some(si), Some(ti)) = (s, t) {
                    let sv = x[si].abs();
                    x[ti] = if self.q > 1.0 {
                        2.0 * sv.powf(self.q) * p.powf(1.0 - self.q) + p
                    } else {
                        2.0 * sv + 1.0 / nl as f64
                    };
                }
            }
        }
        x
    }

    /// The multipliers and $\alpha$'s of the bound at an iterate.
    fn bound_multipliers(&self, x: &[f64], y: &[f64]) -> (DeepMultipliers, Alphas) {
        let dm = &self.dm;
        let n = dm.n;
        let mu: Vec<Vec<f64>> = (0..dm.nt())
            .map(|t| {
                y[dm.ynu[t]..dm.ynu[t] + n * dm.sz[t + 1]]
                    .iter()
                    .map(|v| -v)
                    .collect()
            })
            .collect();
        let c = y[dm.yc..dm.yc + dm.depth].to_vec();
        let r = self.prog.loss.residual(&x[dm.xy..dm.xy + n], &self.prog.y);
        let mut a_in: Vec<Vec<f64>> = dm.sz.iter().map(|&s| vec![0.0; s]).collect();
        let mut a_out: Vec<Vec<f64>> = dm.sz.iter().map(|&s| vec![0.0; s]).collect();
        for t in 0..dm.nt() {
            let lam = self.lam[t];
            for k in 0..dm.sz[t + 1] {
                a_in[t + 1][k] = (-y[dm.ysig[t] + k] / lam).max(0.0);
            }
            for j in 0..dm.sz[t] {
                a_out[t][j] = (-y[dm.ytau[t] + j] / lam).max(0.0);
            }
        }
        let last = dm.depth - 1;
        let a_v = (0..dm.sz[last])
            .map(|j| {
                let (v, p) = (x[dm.xv + j].abs(), x[dm.xp[last] + j]);
                if self.q > 1.0 {
                    self.q * (v / p).powf(self.q - 1.0)
                } else {
                    1.0
                }
            })
            .collect();
        (DeepMultipliers { mu, c, r }, (a_in, a_out, a_v))
    }

    /// The active set from two consecutive centered iterates (Tapia's indicator): along the central path a
    /// variable that stays positive at the optimum keeps its size while $\mu$ shrinks, one that vanishes
    /// shrinks with $\mu$. A feature is used when its mass kept at least a third of its size; a weight is
    /// active (with the sign of the part that did) likewise.
    fn active_set(&self, old: &[f64], new: &[f64]) -> super::polish::Active {
        let dm = &self.dm;
        let kept = |i: usize| new[i] > old[i] / 3.0;
        let features = (0..dm.depth)
            .map(|l| (0..dm.sz[l]).map(|j| kept(dm.xp[l] + j)).collect())
            .collect();
        let weights = (0..dm.nt())
            .map(|t| {
                let nt = dm.sz[t];
                Mat::from_fn(nt, dm.sz[t + 1], |j, k| {
                    let (ip, im) = (dm.xup[t] + j + k * nt, dm.xum[t] + j + k * nt);
                    match (kept(ip), kept(im)) {
                        (true, false) => 1.0,
                        (false, true) => -1.0,
                        (true, true) => (new[ip] - new[im]).signum(),
                        _ => 0.0,
                    }
                })
            })
            .collect();
        super::polish::Active { features, weights }
    }

    /// The barrier's degree $\vartheta$ (its duality gap is $\vartheta\mu$ at a central point).
    fn degree(&self) -> f64 {
        let dm = &self.dm;
        let mut nu = (dm.u1 - dm.u0) as f64;
        for f in &self.features {
            nu += 1.0;
            for (s, t) in [(f.s, f.ts), (f.t, f.tt), (f.v, f.tv)] {
                nu += match (s, t) {
                    (Some(_), Some(_)) if self.q > 1.0 => 3.0,
                    (Some(_), Some(_)) => 2.0,
                    (Some(_), None) => 1.0,
                    _ => 0.0,
                };
            }
        }
        nu
    }

    fn run(&self, opts: &DeepOptions) -> Result<IpmResult> {
        let dm = &self.dm;
        let mut x = self.start();
        let mut y = vec![0.0; dm.ny];
        let b = self.b();
        let theta = self.degree();
        let mut gf = vec![0.0; dm.nx];
        let mut gb = vec![0.0; dm.nx];
        let f0 = self.eval(&x, &mut gf);
        // A large first barrier parameter: its centering is cheap, and every later one starts near its center.
        let mut mu = MU0_SCALE * f0.abs().max(1e-3) / theta;
        let mut best: Option<(f64, Mass, DeepMultipliers, Option<Alphas>)> = None;
        let mut since_best = 0;
        let mut termination = Termination::MaxIterations;
        let mut it = 0;
        let mut stages = 0;
        let mut feasible_once = false;
        let proj = self.factor(None, 1.0)?;
        let mut prev_center: Option<Vec<f64>> = None;
        while it < opts.max_newton {
            let fval = self.eval(&x, &mut gf);
            let Some(bval) = self.barrier(&x, Some(&mut gb)) else {
                termination = Termination::NonFinite;
                break;
            };
            if !fval.is_finite() {
                termination = Termination::NonFinite;
                break;
            }
            let g: Vec<f64> = (0..dm.nx).map(|i| gf[i] + mu * gb[i]).collect();
            let ax = self.apply_a(&x);
            let rp: Vec<f64> = ax.iter().zip(&b).map(|(a, b)| a - b).collect();
            let rp_inf = rp.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let fac = self.factor(Some(&x), mu)?;
            let (mut dx, ynew) = self.direction(&fac, &g, &rp);
            // Project onto A dx = −r_p in the identity metric (the Newton metric's normal equations lose
            // feasibility to cancellation as μ → 0).
            {
                let adx = self.apply_a(&dx);
                let e: Vec<f64> = adx.iter().zip(&rp).map(|(a, b)| a + b).collect();
                let mut w = self.solve_normal(&proj, &e);
                for _ in 0..REFINE_STEPS {
                    let mw = self.apply_a(&self.apply_at(&w));
                    let res: Vec<f64> = e.iter().zip(&mw).map(|(a, b)| a - b).collect();
                    let c = self.solve_normal(&proj, &res);
                    for (wi, ci) in w.iter_mut().zip(&c) {
                        *wi += ci;
                    }
                }
                let atw = self.apply_at(&w);
                for (d, c) in dx.iter_mut().zip(&atw) {
                    *d -= c;
                }
            }
            it += 1;
            if dx.iter().chain(&ynew).any(|v| !v.is_finite()) {
                termination = Termination::NonFinite;
                break;
            }
            // Newton decrement (scale-free: the barrier problem is f/μ + F).
            let gdx: f64 = (0..dm.nx).map(|i| g[i] * dx[i]).sum();
            let ydx: f64 = {
                let adx = self.apply_a(&dx);
                (0..dm.ny).map(|i| ynew[i] * adx[i]).sum()
            };
            let dec = ((ydx - gdx) / mu).max(0.0);
            // Feasible up to rounding once a full Newton step has been taken (the direction keeps
            // correcting the rounding drift through r_p).
            feasible_once |= rp_inf <= 1e-12;
            let feasible = feasible_once;
            // Line search: stay interior, then Armijo on the merit f + μF + ρ‖Ax − b‖₁ with ρ > ‖y‖_∞ (the
            // Newton direction is a descent direction of it; its derivative along dx is gᵀdx − ρ‖r_p‖₁).
            let rho = 1.0 + 2.0 * ynew.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let rp1: f64 = rp.iter().map(|v| v.abs()).sum();
            let merit0 = fval + mu * bval + rho * rp1;
            let slope = gdx - rho * rp1;
            let noise = 1e-14 * (fval.abs() + (mu * bval).abs() + rho * rp1);
            let mut a = 1.0;
            let mut xt = vec![0.0; dm.nx];
            let mut gtmp = vec![0.0; dm.nx];
            let mut accepted = false;
            // f + μF at the accepted step (compared with the damped step below).
            let mut phi_accepted = f64::INFINITY;
            for _ in 0..60 {
                for i in 0..dm.nx {
                    xt[i] = x[i] + a * dx[i];
                }
                if let Some(bt) = self.barrier(&xt, None) {
                    let ft = self.eval(&xt, &mut gtmp);
                    let r1: f64 = self
                        .apply_a(&xt)
                        .iter()
                        .zip(&b)
                        .map(|(u, v)| (u - v).abs())
                        .sum();
                    if ft + mu * bt + rho * r1 <= merit0 + 0.01 * a * slope.min(0.0) + noise {
                        accepted = true;
                        phi_accepted = ft + mu * bt;
                        break;
                    }
                }
                a *= 0.5;
            }
            // Self-concordance guarantees the damped step 1/(1 + λ) a decrease of λ − log(1 + λ) (in units
            // of μ); take it when it beats what the backtracking found (full steps far from the center can
            // make almost no progress).
            let lam_n = dec.sqrt();
            if feasible && lam_n > 0.25 {
                let ad = 1.0 / (1.0 + lam_n);
                if accepted && ad < a {
                    let xd: Vec<f64> = (0..dm.nx).map(|i| x[i] + ad * dx[i]).collect();
                    if let Some(bd) = self.barrier(&xd, None) {
                        let fd = self.eval(&xd, &mut gtmp);
                        if fd + mu * bd < phi_accepted {
                            a = ad;
                            xt = xd;
                        }
                    }
                }
            }
            if !accepted {
                termination = Termination::Stalled;
                break;
            }
            if a == 1.0 {
                feasible_once = true;
            }
            x.copy_from_slice(&xt);
            y = ynew;
            if feasible && dec <= CENTERED {
                // Centered: certify, then shrink μ.
                stages += 1;
                let mass = self.feasible_mass(&x);
                let (mult, alphas) = self.bound_multipliers(&x, &y);
                let pval = self.prog.objective_mass(&mass, 0.0);
                let bound =
                    self.prog
                        .dual_bound_with(&mass, &mult, opts.support_tol, Some(&alphas));
                let gap = (pval - bound.value) / pval.abs().max(1e-300);
                let mut cand = vec![(gap, mass, mult, Some(alphas))];
                let active = prev_center.as_ref().map(|xo| self.active_set(xo, &x));
                prev_center = Some(x.clone());
                if let Some(active) = active.filter(|_| gap <= POLISH_BELOW) {
                    if let Some((pm, pmult)) = self.prog.polish(&cand[0].1, &active) {
                        let pval = self.prog.objective_mass(&pm, 0.0);
                        let bound = self
                            .prog
                            .dual_bound_with(&pm, &pmult, opts.support_tol, None);
                        let pgap = (pval - bound.value) / pval.abs().max(1e-300);
                        if pgap.is_finite() {
                            cand.push((pgap, pm, pmult, None));
                        }
                    }
                }
                let (gap, mass, mult, alphas) = cand
                    .into_iter()
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .expect("one candidate");
                let improved = best.as_ref().is_none_or(|(g0, ..)| gap < *g0);
                if improved {
                    best = Some((gap, mass, mult, alphas));
                    since_best = 0;
                } else {
                    since_best += 1;
                }
                if gap <= opts.tol_gap {
                    termination = Termination::Converged;
                    break;
                }
                if since_best >= STALL_STAGES {
                    termination = Termination::Stalled;
                    break;
                }
                mu /= MU_FACTOR;
            }
        }
        let Some((_, mass, mult, alphas)) = best else {
            return Err(SolverError::numerical(
                "interior point",
                format!(
                    "no centered iterate after {it} Newton steps (termination {termination:?})"
                ),
            ));
        };
        Ok(IpmResult {
            mu: mult
                .mu
                .iter()
                .enumerate()
                .map(|(t, v)| MatRef::from_column_major_slice(v, dm.n, dm.sz[t + 1]).to_owned())
                .collect(),
            c: mult.c,
            r: mult.r,
            mass,
            alphas,
            iterations: it,
            stages,
            barrier_gap: theta * mu,
            termination,
        })
    }
}

impl DeepProgram {
    /// Refuse the instances the interior point cannot solve (module docs of [`super::ipm`]).
    fn check_well_posed(&self) -> Result<()> {
        for (t, &l) in self.cfg.lambda_w.iter().enumerate() {
            if !(l > 0.0) {
                return Err(SolverError::invalid(
                    format!("lambda of layer {} (middle-layer strength)", t + 1),
                    "> 0 for the interior-point solver (with lambda = 0 the weights are unpenalized and the optimum need not be attained)",
                    l,
                ));
            }
        }
        if !(self.cfg.lambda_v > 0.0) {
            return Err(SolverError::invalid(
                "lambda_v (output strength)",
                "> 0 for the interior-point solver (with lambda = 0 the output weights are unpenalized and the optimum need not be attained)",
                self.cfg.lambda_v,
            ));
        }
        let n = self.n();
        for (l, h) in self.h.iter().enumerate() {
            let svd = h.as_ref().thin_svd().map_err(|e| {
                SolverError::numerical("rank of h(z)", format!("SVD failed: {e:?}"))
            })?;
            let s = svd.S().column_vector();
            let smax = (0..s.nrows()).map(|i| s[i]).fold(0.0, f64::max);
            let rank = (0..s.nrows()).filter(|&i| s[i] > 1e-10 * smax).count();
            if rank < n {
                return Err(SolverError::invalid(
                    format!("candidate features of layer {}", l + 1),
                    format!("h(z) spanning R^N (rank {n}; the consistency constraints need it)"),
                    format!("rank {rank}"),
                ));
            }
        }
        Ok(())
    }

    /// Run the structured interior point (module docs of [`super::ipm`]).
    pub(crate) fn solve_structured_ipm(&self, opts: &DeepOptions) -> Result<IpmResult> {
        self.check_well_posed()?;
        Ipm::new(self, opts.threads.max(1)).run(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::trained_group_net;

    fn program(depth: usize, q: f64, fresh: usize) -> DeepProgram {
        let (problem, net, _) = trained_group_net(6, depth, 5, q, false, 8, 6);
        DeepProgram::from_network(&problem, &net, fresh, 2)
            .unwrap()
            .0
    }

    /// An interior point with generic blocks: the start, perturbed.
    fn generic_point(ipm: &Ipm) -> Vec<f64> {
        let mut x = ipm.start();
        for (i, v) in x.iter_mut().enumerate() {
            *v *= 1.0 + 0.1 * ((i * 7919 % 13) as f64 / 13.0);
        }
        x
    }

    /// The column-block elimination solves $AK^{-1}A^\top y = r$ like a dense factorization of the explicitly
    /// assembled matrix.
    #[test]
    fn structured_normal_equations_match_a_dense_solve() {
        for &(depth, q) in &[(1, 2.0), (2, 2.0), (3, 1.5), (2, 1.0)] {
            let prog = program(depth, q, 3);
            let ipm = Ipm::new(&prog, 1);
            let dm = &ipm.dm;
            let x = generic_point(&ipm);
            let fac = ipm.factor(Some(&x), 1e-2).unwrap();
            let mut m = Mat::<f64>::zeros(dm.ny, dm.ny);
            let mut e = vec![0.0; dm.ny];
            for c in 0..dm.ny {
                e.fill(0.0);
                e[c] = 1.0;
                let col = ipm.apply_a(&ipm.apply_kinv(&fac, &ipm.apply_at(&e)));
                for r in 0..dm.ny {
                    m[(r, c)] = col[r];
                }
            }
            let r: Vec<f64> = (0..dm.ny).map(|i| ((i * 37 % 11) as f64) - 5.0).collect();
            // Normwise backward errors |My − r|/(‖M‖‖y‖ + ‖r‖) of both solves (the matrix is
            // ill-conditioned, so forward errors of any solver are large).
            let backward = |y: &[f64]| -> f64 {
                let mnorm = (0..dm.ny)
                    .map(|i| (0..dm.ny).map(|j| m[(i, j)].abs()).sum::<f64>())
                    .fold(0.0, f64::max);
                let ynorm = y.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                let rnorm = r.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                let res = (0..dm.ny)
                    .map(|i| ((0..dm.ny).map(|j| m[(i, j)] * y[j]).sum::<f64>() - r[i]).abs())
                    .fold(0.0, f64::max);
                res / (mnorm * ynorm + rnorm)
            };
            let dense = crate::linalg::SpdFactor::new(&m).unwrap().solve(&r);
            let ours = ipm.solve_normal(&fac, &r);
            let (bd, bo) = (backward(&dense), backward(&ours));
            assert!(
                bo <= 1e-13 && bo <= 100.0 * bd.max(1e-16),
                "depth {depth} q {q}: ours {bo:.2e}, dense {bd:.2e}"
            );
        }
    }

    /// $K^{-1}$ inverts the finite-difference Hessian of $f + \mu F$ (ŷ, weights and every kind of feature block).
    #[test]
    fn newton_matrix_inverts_the_finite_difference_hessian() {
        for &(depth, q) in &[(1, 2.0), (3, 1.5), (2, 1.0)] {
            let prog = program(depth, q, 3);
            let ipm = Ipm::new(&prog, 1);
            let dm = &ipm.dm;
            let x = generic_point(&ipm);
            let mu = 1e-3;
            let fac = ipm.factor(Some(&x), mu).unwrap();
            let grad = |xx: &[f64]| -> Vec<f64> {
                let mut g1 = vec![0.0; dm.nx];
                let mut g2 = vec![0.0; dm.nx];
                ipm.eval(xx, &mut g1);
                ipm.barrier(xx, Some(&mut g2)).unwrap();
                (0..dm.nx).map(|i| g1[i] + mu * g2[i]).collect()
            };
            let v: Vec<f64> = (0..dm.nx)
                .map(|i| x[i].abs().max(1e-3) * ((i * 104729 % 17) as f64 / 17.0 - 0.5))
                .collect();
            let eps = 1e-6;
            let (xp, xm): (Vec<f64>, Vec<f64>) = (
                (0..dm.nx).map(|i| x[i] + eps * v[i]).collect(),
                (0..dm.nx).map(|i| x[i] - eps * v[i]).collect(),
            );
            let (gp, gm) = (grad(&xp), grad(&xm));
            let kv: Vec<f64> = (0..dm.nx).map(|i| (gp[i] - gm[i]) / (2.0 * eps)).collect();
            let back = ipm.apply_kinv(&fac, &kv);
            let vmax = v.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            let err = (0..dm.nx).fold(0.0f64, |a, i| a.max((back[i] - v[i]).abs()));
            assert!(err <= 1e-6 * vmax, "depth {depth} q {q}: {err:.2e}");
        }
    }

    /// Two-level programs are certified to rounding (barrier, then the face polish), and on deeper
    /// programs whatever the solver reports is certified honestly: an exactly feasible point, a bound
    /// below it and below the trained network's own point, and `Converged` only with the gap met.
    #[test]
    fn structured_barrier_reports_certified_results() {
        for &(depth, q) in &[(1, 2.0), (1, 1.5), (2, 2.0), (3, 1.5)] {
            let (problem, net, j) = trained_group_net(6, depth, 5, q, false, 8, 6);
            let (prog, pt) = DeepProgram::from_network(&problem, &net, 3, 2).unwrap();
            let opts = DeepOptions {
                method: DeepMethod::StructuredBarrier,
                max_newton: 200,
                ..DeepOptions::default()
            };
            let sol = prog.solve(&opts, None, None).unwrap();
            assert!(
                sol.primal_residual <= 1e-12,
                "residual {}",
                sol.primal_residual
            );
            assert!(sol.dual_bound <= sol.objective + 1e-12);
            assert!(sol.dual_bound <= prog.objective(&pt).unwrap() + 1e-12);
            assert!(sol.objective <= j + 1e-9, "C16: {} > {j}", sol.objective);
            if sol.termination == Termination::Converged {
                assert!(sol.relative_gap <= opts.tol_gap);
            }
            if depth == 1 {
                assert_eq!(sol.termination, Termination::Converged, "q {q}");
                assert!(sol.relative_gap <= 1e-10, "q {q}: {:.2e}", sol.relative_gap);
            }
        }
    }

    /// Ill-posed programs are refused with an error, not solved into NaN.
    #[test]
    fn zero_strengths_and_rank_deficient_candidates_are_refused() {
        let prog = program(2, 2.0, 3);
        let mut cfg = prog.config().clone();
        cfg.lambda_w[0] = 0.0;
        let bad = DeepProgram {
            cfg,
            ..prog.clone()
        };
        assert!(bad.solve_structured_ipm(&DeepOptions::default()).is_err());
        let mut cand = prog.candidates().clone();
        for zl in cand.z.iter_mut().skip(1) {
            for j in 0..zl.ncols() {
                for i in 0..zl.nrows() {
                    zl[(i, j)] = zl[(0, j)];
                }
            }
        }
        let h: Vec<Mat<f64>> = cand
            .z
            .iter()
            .map(|zl| {
                Mat::from_fn(zl.nrows(), zl.ncols(), |i, j| {
                    prog.activation().value(zl[(i, j)])
                })
            })
            .collect();
        let bad = DeepProgram {
            cand,
            h,
            ..prog.clone()
        };
        let err = bad
            .solve_structured_ipm(&DeepOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("rank"), "{err}");
    }
}
