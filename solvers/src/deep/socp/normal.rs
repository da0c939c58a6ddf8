//! The normal equations $M\,\Delta y = r$, $M = AH^{-1}A^\top$, of each Newton step, solved through their structure.
//!
//! $H^{-1}$ is diagonal on the nonnegative coordinates ($s_i/z_i$), the $3\times3$ or $4\times4$ block $W^2$ on each cone and
//! $N$ (the inverse of the loss curvature $1/N$) on $\hat{\mathbf y}$. Ordering the rows as in [`super::layout`], the **column
//! blocks** $(N+1$ rows each) do not couple with one another: an entry $\hat U^\pm_{jk}$ touches only its own column
//! block, its global row $T_{w,j}$, and the cone of candidate $(w+1, k)$ touches only block $(w, k)$, its $T_{w+1,k}$ and the
//! mass row of layer $w+1$. So with $\sigma = d^+ + d^-$, $\delta = d^+ - d^-$ ($d^\pm$ the diagonal of $H^{-1}$ on $\hat U^\pm$) and, on each cone,
//! $k_{ab} = e_a^\top W^2e_b$ for the directions $e_p = (1, -1, 0, 0)/\sqrt2$ of the mass, $e_{\rm in}$ and $e_2$ of the two sums:
//! $$B_{w,k} = \begin{bmatrix}H_w\mathrm{diag}(\sigma_{:,k})H_w^\top + k_{pp}\mathbf z\mathbf z^\top & -\gamma_wH_w\delta_{:,k} - k_{p,\rm in}\mathbf z\\ \cdot & \gamma_w^2\sum_j\sigma_{jk} + k_{\rm in,in}\end{bmatrix},$$
//! coupled to the globals by $C_{w,k}$: column $T_{w,j}$: $(-\gamma_w\delta_{jk}\mathbf h_j;\ \gamma_w^2\sigma_{jk})$, column $T_{w+1,k}$: $(-k_{p2}\mathbf z;\ k_{\rm in,2})$, column
//! mass$_{w+1}$: $(-k_{pp}\mathbf z;\ k_{p,\rm in})$. Eliminating every block (a Cholesky factor $B = LL^\top$ of size $N+1$, Jacobi-scaled)
//! leaves the dense Schur complement $S = M_{gg} - \sum_{w,k}G_{w,k}^\top G_{w,k}$, $G = L^{-1}C$, on the $\sum_\ell n_\ell + L + N$ globals;
//! its big part $\sum_kG^\top G$ restricted to the $T_w$ columns is one product of the stacked $G$'s ($n_w\times n_{w+1}(N+1)$ by its
//! transpose, $O(N n_w^2n_{w+1})$ flops at GEMM speed). $S$ is factored by a dense Cholesky. Nothing of the size of
//! $\hat U$ is ever factored.
use super::super::DeepProgram;
use super::layout::{Layout, SQRT_HALF};
use crate::error::{Result, SolverError};
use crate::linalg::{par_for, SmallChol};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, ColMut, ColRef, Mat, MatMut, MatRef, Par};

/// $H^{-1}$: diagonal on the nonnegative coordinates, $W^2$ per cone (row-major), a scalar on $\hat{\mathbf y}$.
pub(crate) struct Hinv {
    pub lp: Vec<f64>,
    pub soc: Vec<Vec<f64>>,
    pub yhat: f64,
}

impl Hinv {
    /// $H^{-1}v$ with the formed blocks (the solver applies $W^2$ as two products instead; the tests use this).
    #[cfg(test)]
    pub fn apply(&self, lay: &Layout, v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; v.len()];
        for i in 0..self.lp.len() {
            out[i] = self.lp[i] * v[i];
        }
        for (c, &(o, d)) in lay.cone.soc.iter().enumerate() {
            let k = &self.soc[c];
            for i in 0..d {
                out[o + i] = (0..d).map(|j| k[i * d + j] * v[o + j]).sum();
            }
        }
        for i in lay.yhat..lay.nx {
            out[i] = self.yhat * v[i];
        }
        out
    }
}

/// The couplings $k_{ab}$ of one cone (module docs).
struct Kc {
    pp: f64,
    pi: f64,
    p2: f64,
    ii: f64,
    i2: f64,
    s22: f64,
}

fn couplings(k: &[f64], d: usize) -> Kc {
    let at = |i: usize, j: usize| k[i * d + j];
    let last = d - 1;
    let pcol = |j: usize| (at(0, j) - at(1, j)) * SQRT_HALF;
    let (pi, ii, i2) = if d == 4 {
        (pcol(2), at(2, 2), at(2, last))
    } else {
        (0.0, 0.0, 0.0)
    };
    Kc {
        pp: (at(0, 0) - at(0, 1) - at(1, 0) + at(1, 1)) * 0.5,
        pi,
        p2: pcol(last),
        ii,
        i2,
        s22: at(last, last),
    }
}

/// One column block's factor with its $g_T$ and $g_m$.
type ColumnBlock = (SmallChol, Vec<f64>, Vec<f64>);

/// The factored normal matrix. Its storage is kept from one Newton step to the next
/// ([`Normal::refactor`]): at 1,000 candidates per layer the stacked $G$'s and the Schur complement are
/// hundreds of MB, and fresh allocations of that size cost a page fault per 4 kB.
pub(crate) struct Normal {
    /// Per weight layer and column: the block factor, $g_T = L^{-1}D\,C_{:,T_{w+1,k}}$, $g_m = L^{-1}D\,C_{:,{\rm mass}}$.
    blocks: Vec<Vec<ColumnBlock>>,
    /// Per weight layer: the stacked $G$ on the $T_w$ columns, $n_{w+1}(N+1)\times n_w$.
    ga: Vec<Mat<f64>>,
    /// Per weight layer: $\sigma$, $\delta$ ($n_w\times n_{w+1}$), the packed $H\mathrm{diag}(\sigma_{:,k})H^\top$ and $H\delta$.
    sig: Vec<Mat<f64>>,
    del: Vec<Mat<f64>>,
    hsh: Vec<Mat<f64>>,
    hd: Vec<Mat<f64>>,
    /// The Schur complement on the globals (lower triangle) and its factor.
    s: Mat<f64>,
    schur: DenseSpd,
    /// The largest ridge any factor needed (0: none).
    pub ridge: f64,
}

/// A Cholesky factor of the Jacobi-scaled $DSD = LL^\top$ ($D = \mathrm{diag}(S)^{-1/2}$), in place, with a ridge
/// $\delta I$ on the scaled matrix if the plain factorization fails. Only the lower triangle of $S$ is read.
/// Parallelism is explicit (`par`); faer's blocking does not depend on it, so neither do the bits.
struct DenseSpd {
    l: Mat<f64>,
    scale: Vec<f64>,
    ridge: f64,
}

impl DenseSpd {
    fn empty() -> Self {
        Self {
            l: Mat::zeros(0, 0),
            scale: vec![],
            ridge: 0.0,
        }
    }

    /// Factor `s`; false if even a ridge of 1 fails (non-finite entries).
    fn factor(&mut self, s: &Mat<f64>, par: Par) -> bool {
        use faer::dyn_stack::{MemBuffer, MemStack};
        use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
        let n = s.nrows();
        if self.l.nrows() != n {
            self.l = Mat::zeros(n, n);
        }
        let dmax = (0..n)
            .map(|i| s[(i, i)].abs())
            .fold(0.0, f64::max)
            .max(1e-300);
        self.scale.clear();
        self.scale.extend((0..n).map(|i| {
            let d = s[(i, i)];
            if d > 1e-300 * dmax {
                1.0 / d.sqrt()
            } else {
                1.0 / dmax.sqrt()
            }
        }));
        let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(n, par, Default::default()));
        for attempt in 0..9 {
            let ridge = if attempt == 0 {
                0.0
            } else {
                10f64.powi(-16 + 2 * attempt)
            };
            for j in 0..n {
                let col = self
                    .l
                    .col_mut(j)
                    .try_as_col_major_mut()
                    .unwrap()
                    .as_slice_mut();
                let sc = s.col(j).try_as_col_major().unwrap().as_slice();
                let dj = self.scale[j];
                for i in j..n {
                    col[i] = self.scale[i] * sc[i] * dj;
                }
                col[j] += ridge;
            }
            let ok = cholesky_in_place(
                self.l.as_mut(),
                Default::default(),
                par,
                MemStack::new(&mut mem),
                Default::default(),
            )
            .is_ok();
            if ok && (0..n).all(|i| self.l[(i, i)].is_finite()) {
                self.ridge = ridge;
                return true;
            }
        }
        false
    }

    /// $S^{-1}b$ (in place).
    fn solve(&self, b: &mut [f64]) {
        use faer::linalg::triangular_solve::{
            solve_lower_triangular_in_place, solve_upper_triangular_in_place,
        };
        for (v, d) in b.iter_mut().zip(&self.scale) {
            *v *= d;
        }
        let n = b.len();
        let mut rhs = MatMut::from_column_major_slice_mut(b, n, 1);
        solve_lower_triangular_in_place(self.l.as_ref(), rhs.as_mut(), Par::Seq);
        solve_upper_triangular_in_place(self.l.as_ref().transpose(), rhs.as_mut(), Par::Seq);
        for (v, d) in b.iter_mut().zip(&self.scale) {
            *v *= d;
        }
    }
}

/// What does not change between Newton steps: the packed products $h_ah_b$ ($a\le b$) of each candidate's $h(\mathbf z)$
/// (the Khatri–Rao rows for $H\,\mathrm{diag}(\sigma)H^\top$ of all columns at once).
pub(crate) struct Static {
    kr: Vec<Mat<f64>>,
}

impl Static {
    pub fn new(prog: &DeepProgram, lay: &Layout) -> Self {
        let n = lay.n;
        let npair = n * (n + 1) / 2;
        let kr = (0..lay.depth.saturating_sub(1))
            .map(|w| {
                let h = &prog.h[w];
                Mat::from_fn(npair, lay.sz[w], |r, j| {
                    let (a, b) = unpack(r, n);
                    h[(a, j)] * h[(b, j)]
                })
            })
            .collect();
        Self { kr }
    }
}

/// Row `r` of the packed upper triangle (row by row) of an $n\times n$ matrix → $(a, b)$, $a\le b$.
fn unpack(mut r: usize, n: usize) -> (usize, usize) {
    let mut a = 0;
    while r >= n - a {
        r -= n - a;
        a += 1;
    }
    (a, a + r)
}

impl Normal {
    /// Form and factor $M$ for $H^{-1}$ = `hi`.
    pub fn new(
        prog: &DeepProgram,
        lay: &Layout,
        st: &Static,
        hi: &Hinv,
        threads: usize,
    ) -> Result<Self> {
        let mut nrm = Self {
            blocks: vec![],
            ga: vec![],
            sig: vec![],
            del: vec![],
            hsh: vec![],
            hd: vec![],
            s: Mat::zeros(0, 0),
            schur: DenseSpd::empty(),
            ridge: 0.0,
        };
        nrm.refactor(prog, lay, st, hi, threads)?;
        Ok(nrm)
    }

    /// Form and factor $M$ for $H^{-1}$ = `hi` in the storage of `self` (same program and layout).
    pub fn refactor(
        &mut self,
        prog: &DeepProgram,
        lay: &Layout,
        st: &Static,
        hi: &Hinv,
        threads: usize,
    ) -> Result<()> {
        let n = lay.n;
        let m = n + 1;
        let depth = lay.depth;
        let last = depth - 1;
        let g0 = lay.g0;
        let ng = lay.ny - g0;
        if self.s.nrows() != ng || self.ga.len() != last {
            self.ga = (0..last)
                .map(|w| Mat::zeros(lay.sz[w + 1] * m, lay.sz[w]))
                .collect();
            self.sig = (0..last)
                .map(|w| Mat::zeros(lay.sz[w], lay.sz[w + 1]))
                .collect();
            self.del = (0..last)
                .map(|w| Mat::zeros(lay.sz[w], lay.sz[w + 1]))
                .collect();
            self.hsh = (0..last)
                .map(|w| Mat::zeros(n * m / 2, lay.sz[w + 1]))
                .collect();
            self.hd = (0..last).map(|w| Mat::zeros(n, lay.sz[w + 1])).collect();
            self.s = Mat::zeros(ng, ng);
        }
        self.s.fill(0.0);
        self.blocks.clear();
        let s = &mut self.s;
        let cone_index = |l: usize, j: usize| -> usize { lay.sz[..l].iter().sum::<usize>() + j };
        let gt = |l: usize, j: usize| lay.t[l] - g0 + j;
        let gm = |l: usize| lay.mass - g0 + l;
        let go = |i: usize| lay.out - g0 + i;
        // Cone terms of the globals.
        for l in 0..depth {
            let ci0 = cone_index(l, 0);
            for j in 0..lay.sz[l] {
                let k = couplings(&hi.soc[ci0 + j], lay.cone_dim[l]);
                s[(gt(l, j), gt(l, j))] += k.s22;
                s[(gt(l, j), gm(l))] += k.p2;
                s[(gm(l), gt(l, j))] += k.p2;
                s[(gm(l), gm(l))] += k.pp;
            }
        }
        // Output weights and predictions.
        {
            let h = &prog.h[last];
            let nl = lay.sz[last];
            let gv = lay.gamma_v;
            let sig: Vec<f64> = (0..nl)
                .map(|j| hi.lp[lay.vp + j] + hi.lp[lay.vm + j])
                .collect();
            let del: Vec<f64> = (0..nl)
                .map(|j| hi.lp[lay.vp + j] - hi.lp[lay.vm + j])
                .collect();
            for j in 0..nl {
                s[(gt(last, j), gt(last, j))] += gv * gv * sig[j];
                for i in 0..n {
                    let v = gv * del[j] * h[(i, j)];
                    s[(gt(last, j), go(i))] += v;
                    s[(go(i), gt(last, j))] += v;
                }
            }
            for a in 0..n {
                for b in 0..n {
                    let mut v: f64 = (0..nl).map(|j| sig[j] * h[(a, j)] * h[(b, j)]).sum();
                    if a == b {
                        v += hi.yhat;
                    }
                    s[(go(a), go(b))] += v;
                }
            }
        }
        let mut ridge: f64 = 0.0;
        for w in 0..last {
            let (nw, nk) = (lay.sz[w], lay.sz[w + 1]);
            let g = lay.gamma[w];
            let h = &prog.h[w];
            let z = &prog.cand.z[w + 1];
            let par = par_for(threads, (n * n * nw * nk) as f64);
            let (sig, del) = (&mut self.sig[w], &mut self.del[w]);
            for k in 0..nk {
                for j in 0..nw {
                    let (a, b) = (hi.lp[lay.up[w] + j + k * nw], hi.lp[lay.um[w] + j + k * nw]);
                    sig[(j, k)] = a + b;
                    del[(j, k)] = a - b;
                }
            }
            let (sig, del) = (&self.sig[w], &self.del[w]);
            // Packed H diag(σ_k) Hᵀ for every k, and H δ.
            let hsh = &mut self.hsh[w];
            matmul(
                hsh.as_mut(),
                Accum::Replace,
                st.kr[w].as_ref(),
                sig.as_ref(),
                1.0,
                par,
            );
            let hd = &mut self.hd[w];
            matmul(
                hd.as_mut(),
                Accum::Replace,
                h.as_ref(),
                del.as_ref(),
                1.0,
                par,
            );
            for j in 0..nw {
                let rs: f64 = (0..nk).map(|k| sig[(j, k)]).sum();
                s[(gt(w, j), gt(w, j))] += g * g * rs;
            }
            let (hsh, hd) = (&self.hsh[w], &self.hd[w]);
            let ga = &mut self.ga[w];
            let mut bl = Vec::with_capacity(nk);
            let ci0 = cone_index(w + 1, 0);
            let mut bmat = vec![0.0; m * m];
            let mut blk = vec![0.0; m * nw];
            for k in 0..nk {
                let kc = couplings(&hi.soc[ci0 + k], lay.cone_dim[w + 1]);
                let mut r = 0;
                for a in 0..n {
                    for b in a..n {
                        let v = hsh[(r, k)] + kc.pp * z[(a, k)] * z[(b, k)];
                        bmat[a * m + b] = v;
                        bmat[b * m + a] = v;
                        r += 1;
                    }
                    let v = -g * hd[(a, k)] - kc.pi * z[(a, k)];
                    bmat[a * m + n] = v;
                    bmat[n * m + a] = v;
                }
                let cs: f64 = (0..nw).map(|j| sig[(j, k)]).sum();
                bmat[n * m + n] = g * g * cs + kc.ii;
                let ch = SmallChol::new(&bmat, m).ok_or_else(|| {
                    SolverError::numerical(
                        "second-order-cone solve of the deep program",
                        format!("column block ({w}, {k}) of the normal equations is not positive definite"),
                    )
                })?;
                ridge = ridge.max(ch.ridge);
                // G's rows of this column: L⁻¹D [−γ H diag(δ_k); γ² σ_kᵀ], all nw columns at once.
                for a in 0..n {
                    for j in 0..nw {
                        blk[a * nw + j] = -g * del[(j, k)] * h[(a, j)];
                    }
                }
                for j in 0..nw {
                    blk[n * nw + j] = g * g * sig[(j, k)];
                }
                ch.forward_many(&mut blk, nw);
                for j in 0..nw {
                    let dst = &mut ga.col_mut(j).try_as_col_major_mut().unwrap().as_slice_mut()
                        [k * m..(k + 1) * m];
                    for a in 0..m {
                        dst[a] = blk[a * nw + j];
                    }
                }
                let mut g_t: Vec<f64> = (0..n).map(|a| -kc.p2 * z[(a, k)]).collect();
                g_t.push(kc.i2);
                ch.forward(&mut g_t);
                let mut g_m: Vec<f64> = (0..n).map(|a| -kc.pp * z[(a, k)]).collect();
                g_m.push(kc.pi);
                ch.forward(&mut g_m);
                // The small columns of the Schur complement.
                let gak = ga.as_ref().subrows(k * m, m);
                let mut vt = vec![0.0; nw];
                let mut vm = vec![0.0; nw];
                gemv_t(&mut vt, gak, &g_t);
                gemv_t(&mut vm, gak, &g_m);
                let (tk, ml) = (gt(w + 1, k), gm(w + 1));
                for j in 0..nw {
                    let tj = gt(w, j);
                    s[(tj, tk)] -= vt[j];
                    s[(tk, tj)] -= vt[j];
                    s[(tj, ml)] -= vm[j];
                    s[(ml, tj)] -= vm[j];
                }
                let dtt: f64 = g_t.iter().map(|v| v * v).sum();
                let dtm: f64 = g_t.iter().zip(&g_m).map(|(a, b)| a * b).sum();
                let dmm: f64 = g_m.iter().map(|v| v * v).sum();
                s[(tk, tk)] -= dtt;
                s[(tk, ml)] -= dtm;
                s[(ml, tk)] -= dtm;
                s[(ml, ml)] -= dmm;
                bl.push((ch, g_t, g_m));
            }
            // The big part: S[T_w, T_w] −= Gᵀ G, its lower triangle only (the factor reads no more).
            let t0 = gt(w, 0);
            let par = par_for(threads, (nw * nw * nk * m) as f64);
            triangular::matmul(
                s.as_mut().submatrix_mut(t0, t0, nw, nw),
                BlockStructure::TriangularLower,
                Accum::Add,
                ga.as_ref().transpose(),
                BlockStructure::Rectangular,
                ga.as_ref(),
                BlockStructure::Rectangular,
                -1.0,
                par,
            );
            self.blocks.push(bl);
        }
        let par = par_for(threads, (ng * ng * ng / 3) as f64);
        if !self.schur.factor(&self.s, par) {
            return Err(SolverError::numerical(
                "second-order-cone solve of the deep program",
                "the Schur complement of the normal equations is not finite",
            ));
        }
        self.ridge = ridge.max(self.schur.ridge);
        Ok(())
    }

    /// $M^{-1}r$.
    pub fn solve(&self, lay: &Layout, r: &[f64]) -> Vec<f64> {
        let n = lay.n;
        let m = n + 1;
        let g0 = lay.g0;
        let mut y = r.to_vec();
        let mut rg = r[g0..].to_vec();
        for (w, bl) in self.blocks.iter().enumerate() {
            let (nw, nk) = (lay.sz[w], lay.sz[w + 1]);
            let b0 = lay.blk[w];
            for (k, (ch, _, _)) in bl.iter().enumerate() {
                ch.forward(&mut y[b0 + k * m..b0 + (k + 1) * m]);
            }
            let t = &y[b0..b0 + nk * m];
            let mut v = vec![0.0; nw];
            gemv_t(&mut v, self.ga[w].as_ref(), t);
            let t0 = lay.t[w] - g0;
            for j in 0..nw {
                rg[t0 + j] -= v[j];
            }
            let t1 = lay.t[w + 1] - g0;
            let ml = lay.mass - g0 + w + 1;
            for (k, (_, g_t, g_m)) in bl.iter().enumerate() {
                let tk = &t[k * m..(k + 1) * m];
                rg[t1 + k] -= dot(g_t, tk);
                rg[ml] -= dot(g_m, tk);
            }
        }
        let mut yg = rg;
        self.schur.solve(&mut yg);
        for (w, bl) in self.blocks.iter().enumerate() {
            let nw = lay.sz[w];
            let b0 = lay.blk[w];
            let t0 = lay.t[w] - g0;
            let t1 = lay.t[w + 1] - g0;
            let ml = lay.mass - g0 + w + 1;
            let nk = lay.sz[w + 1];
            let mut gy = vec![0.0; nk * m];
            matmul(
                ColMut::from_slice_mut(&mut gy),
                Accum::Replace,
                self.ga[w].as_ref(),
                ColRef::from_slice(&yg[t0..t0 + nw]),
                1.0,
                Par::Seq,
            );
            for (k, (ch, g_t, g_m)) in bl.iter().enumerate() {
                let tk = &mut y[b0 + k * m..b0 + (k + 1) * m];
                for a in 0..m {
                    tk[a] -= gy[k * m + a] + g_t[a] * yg[t1 + k] + g_m[a] * yg[ml];
                }
                ch.backward(tk);
            }
        }
        y[g0..].copy_from_slice(&yg);
        y
    }
}

/// `y ← aᵀ x`.
fn gemv_t(y: &mut [f64], a: MatRef<'_, f64>, x: &[f64]) {
    matmul(
        ColMut::from_slice_mut(y),
        Accum::Replace,
        a.transpose(),
        ColRef::from_slice(x),
        1.0,
        Par::Seq,
    );
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
