//! Small dense linear-algebra helpers on top of faer (Newton systems, pseudo-inverses).
use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};

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

/// $y = A x$ for a column-major $A$ (small, sequential).
pub fn matvec(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(a.ncols(), x.len());
    debug_assert_eq!(a.nrows(), y.len());
    y.fill(0.0);
    for (j, &xj) in x.iter().enumerate() {
        if xj != 0.0 {
            for (i, yi) in y.iter_mut().enumerate() {
                *yi += a[(i, j)] * xj;
            }
        }
    }
}

/// $y = A^\top x$ (small, sequential).
pub fn matvec_t(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(a.nrows(), x.len());
    debug_assert_eq!(a.ncols(), y.len());
    for (j, yj) in y.iter_mut().enumerate() {
        let mut acc = 0.0;
        for (i, &xi) in x.iter().enumerate() {
            acc += a[(i, j)] * xi;
        }
        *yj = acc;
    }
}
