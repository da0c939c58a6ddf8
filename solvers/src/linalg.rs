//! Small dense linear-algebra helpers on top of faer (Newton systems, pseudo-inverses).
use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Par, Side};

/// Products of fewer flops than this run sequentially whatever `threads` asks for.
const PAR_MIN_FLOPS: f64 = 4e6;

/// The parallelism for a product of `flops` floating-point operations with `threads` threads.
pub(crate) fn par_for(threads: usize, flops: f64) -> Par {
    if threads > 1 && flops >= PAR_MIN_FLOPS {
        Par::rayon(threads)
    } else {
        Par::Seq
    }
}

/// A small dense SPD factor $DMD = LL^\top$ ($D$ the Jacobi scaling), row-major, with a ridge if needed.
#[derive(Clone)]
pub(crate) struct SmallChol {
    m: usize,
    l: Vec<f64>,
    d: Vec<f64>,
    /// The ridge added to the scaled matrix (0 if none).
    pub(crate) ridge: f64,
}

impl SmallChol {
    pub(crate) fn new(a: &[f64], m: usize) -> Option<Self> {
        let dmax = (0..m).map(|i| a[i * m + i].abs()).fold(0.0, f64::max);
        if !(dmax.is_finite() && dmax > 0.0) {
            return None;
        }
        let d: Vec<f64> = (0..m)
            .map(|i| {
                let v = a[i * m + i];
                if v > 1e-300 * dmax {
                    1.0 / v.sqrt()
                } else {
                    1.0 / dmax.sqrt()
                }
            })
            .collect();
        for attempt in 0..8 {
            let ridge = if attempt == 0 {
                0.0
            } else {
                10f64.powi(-15 + 2 * attempt)
            };
            let mut l = vec![0.0; m * m];
            let mut ok = true;
            'outer: for i in 0..m {
                for j in 0..=i {
                    let mut s = d[i] * a[i * m + j] * d[j];
                    if i == j {
                        s += ridge;
                    }
                    for k in 0..j {
                        s -= l[i * m + k] * l[j * m + k];
                    }
                    if i == j {
                        if !(s > 0.0) {
                            ok = false;
                            break 'outer;
                        }
                        l[i * m + i] = s.sqrt();
                    } else {
                        l[i * m + j] = s / l[j * m + j];
                    }
                }
            }
            if ok {
                return Some(Self { m, l, d, ridge });
            }
        }
        None
    }
    /// $w \leftarrow L^{-1}Dw$ (forward substitution).
    pub(crate) fn forward(&self, w: &mut [f64]) {
        let m = self.m;
        for i in 0..m {
            let mut s = self.d[i] * w[i];
            for k in 0..i {
                s -= self.l[i * m + k] * w[k];
            }
            w[i] = s / self.l[i * m + i];
        }
    }
    /// [`SmallChol::forward`] on every column of the row-major $m\times c$ array `w` at once (the same
    /// operations in the same order per column, so the same bits; the inner loop runs along rows).
    pub(crate) fn forward_many(&self, w: &mut [f64], c: usize) {
        let m = self.m;
        debug_assert_eq!(w.len(), m * c);
        for i in 0..m {
            let (done, rest) = w.split_at_mut(i * c);
            let row = &mut rest[..c];
            let di = self.d[i];
            row.iter_mut().for_each(|v| *v *= di);
            for k in 0..i {
                let lik = self.l[i * m + k];
                let rk = &done[k * c..(k + 1) * c];
                row.iter_mut().zip(rk).for_each(|(v, r)| *v -= lik * r);
            }
            let lii = self.l[i * m + i];
            row.iter_mut().for_each(|v| *v /= lii);
        }
    }
    /// $w \leftarrow DL^{-\top}w$ (backward substitution).
    pub(crate) fn backward(&self, w: &mut [f64]) {
        let m = self.m;
        for i in (0..m).rev() {
            let mut s = w[i];
            for k in i + 1..m {
                s -= self.l[k * m + i] * w[k];
            }
            w[i] = s / self.l[i * m + i];
        }
        for i in 0..m {
            w[i] *= self.d[i];
        }
    }
    /// $w \leftarrow M^{-1}w$.
    pub(crate) fn solve(&self, w: &mut [f64]) {
        self.forward(w);
        self.backward(w);
    }
    /// The explicit $L^{-1}D$ (row-major).
    pub(crate) fn inv_l_d(&self) -> Vec<f64> {
        let m = self.m;
        let mut out = vec![0.0; m * m];
        let mut e = vec![0.0; m];
        for c in 0..m {
            e.fill(0.0);
            e[c] = 1.0;
            self.forward(&mut e);
            for r in 0..m {
                out[r * m + c] = e[r];
            }
        }
        out
    }
}

/// A Cholesky factorization of the Jacobi-scaled matrix $DAD$, $D = \mathrm{diag}(A)^{-1/2}$, of a symmetric
/// positive (semi)definite $A$ (rows of very different magnitudes — as in interior-point normal equations —
/// then cost no accuracy), with a ridge $\delta I$ on the scaled matrix if the plain factorization fails.
pub struct SpdFactor {
    llt: faer::linalg::solvers::Llt<f64>,
    scale: Vec<f64>,
    /// The ridge $\delta$ used (0 if none).
    pub ridge: f64,
}

impl SpdFactor {
    /// Factor $A$; `None` if even $\delta = 1$ fails (non-finite entries).
    pub fn new(a: &Mat<f64>) -> Option<Self> {
        let n = a.nrows();
        let dmax = (0..n)
            .map(|i| a[(i, i)].abs())
            .fold(0.0, f64::max)
            .max(1e-300);
        let scale: Vec<f64> = (0..n)
            .map(|i| {
                let d = a[(i, i)];
                if d > 1e-300 * dmax {
                    1.0 / d.sqrt()
                } else {
                    1.0 / dmax.sqrt()
                }
            })
            .collect();
        let scaled = Mat::from_fn(n, n, |i, j| scale[i] * a[(i, j)] * scale[j]);
        for attempt in 0..9 {
            let mut m = scaled.clone();
            let ridge = if attempt == 0 {
                0.0
            } else {
                10f64.powi(-16 + 2 * attempt)
            };
            for i in 0..n {
                m[(i, i)] += ridge;
            }
            if let Ok(llt) = m.llt(Side::Lower) {
                return Some(Self { llt, scale, ridge });
            }
        }
        None
    }

    /// $x = A^{-1}b$ (through the scaled factor).
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = self.scale.len();
        let r = Mat::from_fn(n, 1, |i, _| self.scale[i] * b[i]);
        let y = self.llt.solve(&r);
        (0..n).map(|i| self.scale[i] * y[(i, 0)]).collect()
    }
}

/// Solve $Ax = b$ for a symmetric positive (semi)definite $A$ by [`SpdFactor`] and two steps of iterative
/// refinement. Returns the solution and the ridge used, or `None` (non-finite entries or solution).
pub fn solve_spd(a: &Mat<f64>, b: &[f64]) -> Option<(Vec<f64>, f64)> {
    let n = a.nrows();
    let f = SpdFactor::new(a)?;
    let mut x = f.solve(b);
    for _ in 0..2 {
        let res: Vec<f64> = (0..n)
            .map(|i| b[i] - (0..n).map(|j| a[(i, j)] * x[j]).sum::<f64>())
            .collect();
        let dx = f.solve(&res);
        for i in 0..n {
            x[i] += dx[i];
        }
    }
    x.iter().all(|t| t.is_finite()).then_some((x, f.ridge))
}

/// The Moore–Penrose pseudo-inverse (by SVD; faer's default singular-value cutoff).
pub fn pinv(a: MatRef<'_, f64>) -> Option<Mat<f64>> {
    a.thin_svd().ok().map(|s| s.pseudoinverse())
}

/// $y = A x$ (faer's matrix–vector product, sequential).
pub fn matvec(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    assert_eq!(a.ncols(), x.len(), "matvec: x has the wrong length");
    assert_eq!(a.nrows(), y.len(), "matvec: y has the wrong length");
    faer::linalg::matmul::matmul(
        faer::ColMut::from_slice_mut(y),
        faer::Accum::Replace,
        a,
        faer::ColRef::from_slice(x),
        1.0,
        Par::Seq,
    );
}

/// $y = A^\top x$ (faer's matrix–vector product, sequential).
pub fn matvec_t(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    assert_eq!(a.nrows(), x.len(), "matvec_t: x has the wrong length");
    assert_eq!(a.ncols(), y.len(), "matvec_t: y has the wrong length");
    faer::linalg::matmul::matmul(
        faer::ColMut::from_slice_mut(y),
        faer::Accum::Replace,
        a.transpose(),
        faer::ColRef::from_slice(x),
        1.0,
        Par::Seq,
    );
}

/// The weighted Gram matrix $H\,\mathrm{diag}(c)\,H^\top$ of an $N\times K$ matrix $H$ (one product computing the
/// lower triangle, $\approx N^2K$ flops, mirrored; parallelism `par`) — the $O(N^2K)$ kernel of the two-level Newton and interior-point iterations.
///
/// Columns with $|c_k|\le10^{-15}\max|c|$ are left out (the GEMM runs on the $m$ kept columns, $2N^2m$ flops):
/// each entry changes by at most $K\cdot10^{-15}\max_k|c_k|\max_{ik}H_{ik}^2$, below the rounding of the kept
/// sum for $K\lesssim10^4$. Late interior-point iterations and Gibbs laws at small $\tau$ put most weights there.
pub fn weighted_gram(h: MatRef<'_, f64>, c: &[f64], par: Par) -> Mat<f64> {
    assert_eq!(h.ncols(), c.len(), "one weight per column");
    let cmax = c.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let keep: Vec<usize> = (0..c.len())
        .filter(|&k| c[k].abs() > 1e-15 * cmax)
        .collect();
    let n = h.nrows();
    let hs_owned;
    let hs = if keep.len() == c.len() {
        h
    } else {
        hs_owned = Mat::from_fn(n, keep.len(), |i, j| h[(i, keep[j])]);
        hs_owned.as_ref()
    };
    let hc = Mat::from_fn(n, keep.len(), |i, j| hs[(i, j)] * c[keep[j]]);
    // Only the lower triangle (the product is symmetric): about half the flops; then mirror.
    use faer::linalg::matmul::triangular::{matmul, BlockStructure};
    let mut out = Mat::zeros(n, n);
    matmul(
        out.as_mut(),
        BlockStructure::TriangularLower,
        faer::Accum::Replace,
        hc.as_ref(),
        BlockStructure::Rectangular,
        hs.transpose(),
        BlockStructure::Rectangular,
        1.0,
        par,
    );
    for j in 0..n {
        for i in 0..j {
            out[(i, j)] = out[(j, i)];
        }
    }
    out
}

/// $\mathbf y = H\,\mathrm{diag}(c)\,H^\top\mathbf v$ ($4NK$ flops; `t` is scratch of length $K$) — the Hessian–vector product
/// of the two-level dual Newton–CG. Runs over blocks of columns small enough to stay in cache between the
/// two products $H_B^\top\mathbf v$ and $H_B(c_B\circ\cdot)$ (each column of $H$ is read from memory once).
pub fn weighted_gram_matvec(
    h: MatRef<'_, f64>,
    c: &[f64],
    v: &[f64],
    y: &mut [f64],
    t: &mut [f64],
) {
    let (n, k) = (h.nrows(), h.ncols());
    assert_eq!(c.len(), k, "one weight per column");
    assert_eq!(
        t.len(),
        k,
        "weighted_gram_matvec: scratch has the wrong length"
    );
    assert_eq!(v.len(), n, "weighted_gram_matvec: v has the wrong length");
    assert_eq!(y.len(), n, "weighted_gram_matvec: y has the wrong length");
    // About 128 KiB of H per block.
    let block = (16384 / n.max(1)).clamp(16, k.max(16));
    let mut accum = faer::Accum::Replace;
    let mut start = 0;
    while start < k {
        let len = block.min(k - start);
        let hb = h.subcols(start, len);
        let tb = &mut t[start..start + len];
        matvec_t(hb, v, tb);
        for (tj, cj) in tb.iter_mut().zip(&c[start..start + len]) {
            *tj *= cj;
        }
        faer::linalg::matmul::matmul(
            faer::ColMut::from_slice_mut(y),
            accum,
            hb,
            faer::ColRef::from_slice(tb),
            1.0,
            Par::Seq,
        );
        accum = faer::Accum::Add;
        start += len;
    }
    if k == 0 {
        y.fill(0.0);
    }
}

/// [`weighted_gram`] for $c\ge0$-or-any weights, accumulated over blocks of at most `buf.ncols()` kept columns:
/// each block of $H\,\mathrm{diag}(c)$ is formed in the reusable `buf` ($N\times B$, small enough to stay in cache)
/// and added to the lower triangle of `out` ($N\times N$, overwritten, then mirrored). No allocation; the same
/// column-dropping rule as [`weighted_gram`].
pub fn weighted_gram_into(
    h: MatRef<'_, f64>,
    c: &[f64],
    par: Par,
    buf: &mut Mat<f64>,
    out: &mut Mat<f64>,
) {
    use faer::linalg::matmul::triangular::{matmul, BlockStructure};
    let (n, k) = (h.nrows(), h.ncols());
    assert_eq!(k, c.len(), "one weight per column");
    assert_eq!(
        buf.nrows(),
        n,
        "weighted_gram_into: buffer has the wrong number of rows"
    );
    assert!(buf.ncols() > 0, "weighted_gram_into: empty buffer");
    assert_eq!(
        (out.nrows(), out.ncols()),
        (n, n),
        "weighted_gram_into: output is not N x N"
    );
    let cmax = c.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let bcap = buf.ncols();
    let mut idx: Vec<usize> = Vec::with_capacity(bcap);
    let mut accum = faer::Accum::Replace;
    let mut kk = 0;
    let mut flush = |idx: &mut Vec<usize>, buf: &mut Mat<f64>, accum: &mut faer::Accum| {
        if idx.is_empty() {
            return;
        }
        let m = idx.len();
        let mut scaled = buf.as_mut().subcols_mut(0, m);
        let plain;
        // Columns of H for this block, scaled, in `scaled`; the unscaled columns are read from H directly when
        // contiguous, else gathered.
        let contiguous = idx[m - 1] - idx[0] + 1 == m;
        for (j, &col) in idx.iter().enumerate() {
            let src = h.col(col);
            let cj = c[col];
            for i in 0..n {
                scaled[(i, j)] = src[i] * cj;
            }
        }
        let rhs = if contiguous {
            h.subcols(idx[0], m)
        } else {
            plain = Mat::from_fn(n, m, |i, j| h[(i, idx[j])]);
            plain.as_ref()
        };
        matmul(
            out.as_mut(),
            BlockStructure::TriangularLower,
            *accum,
            scaled.as_ref(),
            BlockStructure::Rectangular,
            rhs.transpose(),
            BlockStructure::Rectangular,
            1.0,
            par,
        );
        *accum = faer::Accum::Add;
        idx.clear();
    };
    while kk < k {
        if c[kk].abs() > 1e-15 * cmax {
            idx.push(kk);
            if idx.len() == bcap {
                flush(&mut idx, buf, &mut accum);
            }
        }
        kk += 1;
    }
    flush(&mut idx, buf, &mut accum);
    if accum == faer::Accum::Replace {
        out.fill(0.0);
    }
    for j in 0..n {
        for i in 0..j {
            out[(i, j)] = out[(j, i)];
        }
    }
}
