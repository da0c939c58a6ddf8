//! Small dense linear-algebra helpers on top of faer (Newton systems, pseudo-inverses).
use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Par, Side};

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
