//! Where every variable and every equality of the second-order-cone form lives, and the products with
//! $A$ and $A^\top$ (matrix-free: $A$ is never stored).
//!
//! # Variables $x = (x_{\mathcal K}, \hat{\mathbf y})$
//! - nonnegative: $\hat U^+_w, \hat U^-_w$ for each weight layer $w = 0..L-2$ ($n_w\times n_{w+1}$, column-major), then $\hat v^\pm$ ($n_{L-1}$);
//! - one second-order cone per candidate $(\ell, j)$, $\mathbf u = (u_0, u_1, [w^{\rm in}], w^{(2)})\in\mathcal Q^{3\text{ or }4}$, in which
//!   $\tau = (u_0 + u_1)/\sqrt2$ and $p_{\ell,j} = (u_0 - u_1)/\sqrt2$ (so $u\in\mathcal Q\iff2\tau p\ge\|\mathbf w\|^2$, the rotated cone), $w^{\rm in}$ only for $\ell\ge1$,
//!   and $w^{(2)}$ the outgoing sum ($\ell<L-1$) or the output weight ($\ell = L-1$);
//! - free: the predictions $\hat{\mathbf y}\in\mathbb R^N$.
//!
//! # Equalities $Ax = b$, in the order of the multiplier vector
//! - **column blocks** (one per weight layer $w$ and column $k$ of layer $w+1$, $N+1$ rows each):
//!   $H_w(\hat U^+ - \hat U^-)_{:,k} - p_{w+1,k}\mathbf z_{w+1,k} = 0$ and $w^{\rm in}_{w+1,k} - \gamma_w\sum_j(\hat U^+ + \hat U^-)_{jk} = 0$;
//! - **globals**: $T_{\ell,j}$: $w^{(2)}_{\ell,j} - \gamma_\ell\sum_k(\hat U^+_\ell + \hat U^-_\ell)_{jk} = 0$ ($\ell<L-1$) or $w^{(2)}_{L-1,j} - \gamma_v(\hat v^+ + \hat v^-)_j = 0$;
//!   masses $\sum_jp_{\ell,j} = 1$; outputs $\hat{\mathbf y} - H_{L-1}(\hat v^+ - \hat v^-) = 0$.
//!
//! with $\gamma_w = \sqrt{2\lambda_w}$, $\gamma_v = \sqrt{2\lambda_v}$: then $\|\mathbf w\|^2\le2\tau p$ reads $\tau\ge\lambda_{\rm in}S_{\rm in}^2/p + \lambda_{\rm out}S_{\rm out}^2/p$,
//! the two perspectives of the candidate in one cone (each mass lives in exactly one cone).
use super::super::DeepProgram;
use super::cone::Cone;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

pub(crate) const SQRT_HALF: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// Offsets of $x$ and of the multipliers $y$ (module docs).
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub n: usize,
    pub sz: Vec<usize>,
    pub depth: usize,
    /// $\hat U^\pm_w$ offsets in $x$.
    pub up: Vec<usize>,
    pub um: Vec<usize>,
    pub vp: usize,
    pub vm: usize,
    /// First cone coordinate of layer $\ell$ and the cone dimension of the layer (3 or 4).
    pub cone_off: Vec<usize>,
    pub cone_dim: Vec<usize>,
    /// $\hat{\mathbf y}$ offset (= the cone's length) and $x$'s length.
    pub yhat: usize,
    pub nx: usize,
    /// First row of the column blocks of weight layer $w$ (block $k$ at `blk[w] + k(N+1)`).
    pub blk: Vec<usize>,
    /// First global row; then the $T_\ell$ rows, the masses and the outputs (offsets in $y$).
    pub g0: usize,
    pub t: Vec<usize>,
    pub mass: usize,
    pub out: usize,
    pub ny: usize,
    /// $\gamma_w$ per weight layer and $\gamma_v$.
    pub gamma: Vec<f64>,
    pub gamma_v: f64,
    pub cone: Cone,
}

impl Layout {
    pub fn new(prog: &DeepProgram) -> Self {
        let sz = prog.sizes();
        let depth = sz.len();
        let n = prog.n();
        let mut o = 0;
        let mut take = |len: usize| {
            let a = o;
            o += len;
            a
        };
        let (mut up, mut um) = (vec![], vec![]);
        for w in 0..depth - 1 {
            up.push(take(sz[w] * sz[w + 1]));
            um.push(take(sz[w] * sz[w + 1]));
        }
        let vp = take(sz[depth - 1]);
        let vm = take(sz[depth - 1]);
        let lp = vm + sz[depth - 1];
        let cone_dim: Vec<usize> = (0..depth).map(|l| if l >= 1 { 4 } else { 3 }).collect();
        let cone_off: Vec<usize> = (0..depth).map(|l| take(sz[l] * cone_dim[l])).collect();
        let yhat = take(0);
        let nx = yhat + n;
        let dims: Vec<usize> = (0..depth)
            .flat_map(|l| std::iter::repeat_n(cone_dim[l], sz[l]))
            .collect();
        let cone = Cone::new(lp, &dims);
        debug_assert_eq!(cone.len, yhat);
        let mut r = 0;
        let mut rows = |len: usize| {
            let a = r;
            r += len;
            a
        };
        let blk: Vec<usize> = (0..depth - 1).map(|w| rows(sz[w + 1] * (n + 1))).collect();
        let g0 = rows(0);
        let t: Vec<usize> = (0..depth).map(|l| rows(sz[l])).collect();
        let mass = rows(depth);
        let out = rows(n);
        let ny = rows(0);
        let gamma = prog
            .cfg
            .lambda_w
            .iter()
            .map(|&l| (2.0 * l).sqrt())
            .collect();
        Self {
            n,
            sz,
            depth,
            up,
            um,
            vp,
            vm,
            cone_off,
            cone_dim,
            yhat,
            nx,
            blk,
            g0,
            t,
            mass,
            out,
            ny,
            gamma,
            gamma_v: (2.0 * prog.cfg.lambda_v).sqrt(),
            cone,
        }
    }

    /// First coordinate of the cone of candidate $(\ell, j)$.
    pub fn cone_at(&self, l: usize, j: usize) -> usize {
        self.cone_off[l] + j * self.cone_dim[l]
    }

    /// $p_{\ell,j}$ of $x$.
    pub fn mass_of(&self, x: &[f64], l: usize, j: usize) -> f64 {
        let o = self.cone_at(l, j);
        (x[o] - x[o + 1]) * SQRT_HALF
    }

    fn umat<'a>(&self, x: &'a [f64], off: usize, w: usize) -> MatRef<'a, f64> {
        MatRef::from_column_major_slice(
            &x[off..off + self.sz[w] * self.sz[w + 1]],
            self.sz[w],
            self.sz[w + 1],
        )
    }

    #[cfg(test)]
    /// $Ax$.
    pub fn apply_a(&self, prog: &DeepProgram, x: &[f64], par: Par) -> Vec<f64> {
        let mut r = vec![0.0; self.ny];
        self.apply_a_into(prog, x, &mut r, par);
        r
    }

    /// $Ax$ into `r` (length `ny`).
    pub fn apply_a_into(&self, prog: &DeepProgram, x: &[f64], r: &mut [f64], par: Par) {
        let n = self.n;
        let last = self.depth - 1;
        let mut rowsum = Vec::new();
        for w in 0..last {
            let (nw, nk) = (self.sz[w], self.sz[w + 1]);
            let up = self.umat(x, self.up[w], w);
            let um = self.umat(x, self.um[w], w);
            // H(Û⁺ − Û⁻) as two products (no nw × nk temporary).
            let mut hd = Mat::<f64>::zeros(n, nk);
            matmul(
                hd.as_mut(),
                Accum::Replace,
                prog.h[w].as_ref(),
                up,
                1.0,
                par,
            );
            matmul(hd.as_mut(), Accum::Add, prog.h[w].as_ref(), um, -1.0, par);
            let z = &prog.cand.z[w + 1];
            let g = self.gamma[w];
            rowsum.clear();
            rowsum.resize(nw, 0.0);
            for k in 0..nk {
                let b = self.blk[w] + k * (n + 1);
                let p = self.mass_of(x, w + 1, k);
                for i in 0..n {
                    r[b + i] = hd[(i, k)] - p * z[(i, k)];
                }
                let (cp, cm) = (up.col(k), um.col(k));
                let mut colsum = 0.0;
                for j in 0..nw {
                    let a = cp[j] + cm[j];
                    colsum += a;
                    rowsum[j] += a;
                }
                r[b + n] = x[self.cone_at(w + 1, k) + 2] - g * colsum;
            }
            for j in 0..nw {
                let o = self.cone_at(w, j) + self.cone_dim[w] - 1;
                r[self.t[w] + j] = x[o] - g * rowsum[j];
            }
        }
        let h = &prog.h[last];
        for j in 0..self.sz[last] {
            let o = self.cone_at(last, j) + self.cone_dim[last] - 1;
            r[self.t[last] + j] = x[o] - self.gamma_v * (x[self.vp + j] + x[self.vm + j]);
        }
        for l in 0..self.depth {
            r[self.mass + l] = (0..self.sz[l]).map(|j| self.mass_of(x, l, j)).sum();
        }
        for i in 0..n {
            let mut s = x[self.yhat + i];
            for j in 0..self.sz[last] {
                s -= h[(i, j)] * (x[self.vp + j] - x[self.vm + j]);
            }
            r[self.out + i] = s;
        }
    }

    #[cfg(test)]
    /// $A^\top y$.
    pub fn apply_at(&self, prog: &DeepProgram, y: &[f64], par: Par) -> Vec<f64> {
        let mut x = vec![0.0; self.nx];
        self.apply_at_into(prog, y, &mut x, par);
        x
    }

    /// $A^\top y$ into `x` (length `nx`; every entry is overwritten).
    pub fn apply_at_into(&self, prog: &DeepProgram, y: &[f64], x: &mut [f64], par: Par) {
        let n = self.n;
        let last = self.depth - 1;
        x[self.cone_off[0]..self.yhat].fill(0.0);
        // p-coefficient of each candidate, accumulated, then spread onto (u0, u1).
        let mut pc: Vec<Vec<f64>> = (0..self.depth)
            .map(|l| vec![y[self.mass + l]; self.sz[l]])
            .collect();
        for w in 0..last {
            let (nw, nk) = (self.sz[w], self.sz[w + 1]);
            let ycons = Mat::from_fn(n, nk, |i, k| y[self.blk[w] + k * (n + 1) + i]);
            let g = self.gamma[w];
            let z = &prog.cand.z[w + 1];
            // Hᵀy of the column blocks, written where Û⁺ goes, then spread onto Û⁺ and Û⁻.
            let (lo, hi) = x.split_at_mut(self.um[w]);
            let xp = &mut lo[self.up[w]..self.up[w] + nw * nk];
            let xm = &mut hi[..nw * nk];
            matmul(
                MatMut::from_column_major_slice_mut(xp, nw, nk),
                Accum::Replace,
                prog.h[w].as_ref().transpose(),
                ycons.as_ref(),
                1.0,
                par,
            );
            let yt = &y[self.t[w]..self.t[w] + nw];
            for k in 0..nk {
                let ysin = y[self.blk[w] + k * (n + 1) + n];
                let cp = &mut xp[k * nw..(k + 1) * nw];
                let cm = &mut xm[k * nw..(k + 1) * nw];
                for j in 0..nw {
                    let common = -g * (ysin + yt[j]);
                    let hty = cp[j];
                    cp[j] = hty + common;
                    cm[j] = -hty + common;
                }
                let mut zy = 0.0;
                for i in 0..n {
                    zy += z[(i, k)] * ycons[(i, k)];
                }
                pc[w + 1][k] -= zy;
            }
            for k in 0..nk {
                x[self.cone_at(w + 1, k) + 2] += y[self.blk[w] + k * (n + 1) + n];
            }
        }
        let h = &prog.h[last];
        for j in 0..self.sz[last] {
            let mut hy = 0.0;
            for i in 0..n {
                hy += h[(i, j)] * y[self.out + i];
            }
            let yt = y[self.t[last] + j];
            x[self.vp + j] = -self.gamma_v * yt - hy;
            x[self.vm + j] = -self.gamma_v * yt + hy;
        }
        for l in 0..self.depth {
            for j in 0..self.sz[l] {
                let o = self.cone_at(l, j);
                x[o] += pc[l][j] * SQRT_HALF;
                x[o + 1] -= pc[l][j] * SQRT_HALF;
                x[o + self.cone_dim[l] - 1] += y[self.t[l] + j];
            }
        }
        for i in 0..n {
            x[self.yhat + i] = y[self.out + i];
        }
    }

    /// $b$: 1 on the mass rows.
    pub fn b(&self) -> Vec<f64> {
        let mut b = vec![0.0; self.ny];
        b[self.mass..self.mass + self.depth].fill(1.0);
        b
    }

    /// The linear cost $c$: $\tau$ (coefficient 1) and $r_\ell(j)p_{\ell,j}$ on each cone, $-\mathbf y/N$ on $\hat{\mathbf y}$.
    pub fn cost(&self, prog: &DeepProgram) -> Vec<f64> {
        let mut c = vec![0.0; self.nx];
        for l in 0..self.depth {
            for j in 0..self.sz[l] {
                let o = self.cone_at(l, j);
                let r = prog.cost[l][j];
                c[o] = (1.0 + r) * SQRT_HALF;
                c[o + 1] = (1.0 - r) * SQRT_HALF;
            }
        }
        let nf = self.n as f64;
        for i in 0..self.n {
            c[self.yhat + i] = -prog.y[i] / nf;
        }
        c
    }
}
