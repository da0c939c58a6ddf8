//! Candidate features of every layer and their reference weights.
use crate::error::{ensure_finite, Result, SolverError};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use nff_core::network::Workspace;
use nff_core::{rng, Arch, Dataset, Network, Problem};

/// Candidate features per layer and reference weights $\pi_\ell$.
#[derive(Clone, Debug)]
pub struct DeepCandidates {
    /// First-layer weights of the layer-1 candidates, $d\times n_1$ ($\mathbf z_{1,j} = Xa_j$).
    pub a: Mat<f64>,
    /// Features of every layer, $N\times n_\ell$ (layer 1 is $XA$).
    pub z: Vec<Mat<f64>>,
    /// Reference weights $\pi_\ell(j) > 0$.
    pub pi: Vec<Vec<f64>>,
    /// How many leading candidates of each layer are particles of a network (0 if none).
    pub n_particles: Vec<usize>,
}

impl DeepCandidates {
    /// Candidates from first-layer weights $a$ ($d\times n_1$), the features of layers $2..L$ and weights
    /// $\pi$ (`None`: uniform $1/n_\ell$).
    pub fn new(
        data: &Dataset,
        a: Mat<f64>,
        middle: Vec<Mat<f64>>,
        pi: Option<Vec<Vec<f64>>>,
    ) -> Result<Self> {
        data.validate()?;
        if a.nrows() != data.d() {
            return Err(SolverError::shape(
                "first-layer candidate weights a",
                format!("{} rows (the data's input dimension)", data.d()),
                format!("{} rows", a.nrows()),
            ));
        }
        let mut z = vec![data.x.as_ref() * a.as_ref()];
        z.extend(middle);
        let pi = pi.unwrap_or_else(|| {
            z.iter()
                .map(|zl| vec![1.0 / zl.ncols().max(1) as f64; zl.ncols()])
                .collect()
        });
        let c = Self {
            a,
            n_particles: vec![0; z.len()],
            z,
            pi,
        };
        c.validate(data.n())?;
        Ok(c)
    }

    /// Candidates = the particles of a DNN or two-level network (first in each layer) plus `fresh`
    /// samples per layer, $\pi$ uniform. Fresh first-layer candidates are $Xa$ with $a\sim\mathcal N(0, s^2I)$, $s$ the
    /// root-mean-square entry of $A$; fresh middle features are $\mathcal N(0, C_\ell + 10^{-3}\bar cI)$ with $C_\ell$ the
    /// empirical second moment $\frac1m Z_\ell Z_\ell^\top$ of the layer's particles \[guess: a natural full-support law\].
    pub fn from_network(problem: &Problem, net: &Network, fresh: usize, seed: u64) -> Result<Self> {
        problem.check_network(net)?;
        let s = net.shape();
        if s.arch == Arch::ResNet {
            return Err(SolverError::invalid(
                "architecture",
                "a standard DNN or two-level network (the §4.2 program has no skip connections)",
                s.arch,
            ));
        }
        let (n, m, d) = (problem.n(), s.m, s.d);
        let mut ws = Workspace::new(s, n);
        problem.forward_into(net, &mut ws, Par::Seq);
        let mut r = rng::rng(seed, "deep-candidates");
        let a_rms = (net.a().squared_norm_l2() / (d * m) as f64)
            .sqrt()
            .max(1e-3);
        let a = Mat::from_fn(
            d,
            m + fresh,
            |i, j| {
                if j < m {
                    net.a()[(i, j)]
                } else {
                    0.0
                }
            },
        );
        let mut a = a;
        for j in m..m + fresh {
            for i in 0..d {
                a[(i, j)] = a_rms * rng::normal(&mut r);
            }
        }
        let mut middle = Vec::new();
        for l in 1..s.depth {
            let zl = ws.z(l);
            let mut cov = Mat::<f64>::zeros(n, n);
            matmul(
                cov.as_mut(),
                Accum::Replace,
                zl,
                zl.transpose(),
                1.0 / m as f64,
                Par::Seq,
            );
            let mean_diag = (0..n).map(|i| cov[(i, i)]).sum::<f64>() / n as f64;
            for i in 0..n {
                cov[(i, i)] += 1e-3 * mean_diag.max(1e-12);
            }
            let chol = cov.llt(faer::Side::Lower).map_err(|e| {
                SolverError::numerical("fresh feature covariance", format!("{e:?}"))
            })?;
            let lmat = chol.L().to_owned();
            let mut zf = Mat::<f64>::zeros(n, m + fresh);
            for j in 0..m {
                for i in 0..n {
                    zf[(i, j)] = zl[(i, j)];
                }
            }
            for j in m..m + fresh {
                let g: Vec<f64> = (0..n).map(|_| rng::normal(&mut r)).collect();
                for i in 0..n {
                    zf[(i, j)] = (0..=i).map(|c| lmat[(i, c)] * g[c]).sum();
                }
            }
            middle.push(zf);
        }
        let mut c = Self::new(&problem.data, a, middle, None)?;
        // Layer 1 features of the particles exactly as the network computes them.
        for j in 0..m {
            for i in 0..n {
                c.z[0][(i, j)] = ws.z(0)[(i, j)];
            }
        }
        c.n_particles = vec![m; s.depth];
        Ok(c)
    }

    /// Number of layers $L$.
    pub fn depth(&self) -> usize {
        self.z.len()
    }
    /// Candidates per layer $n_\ell$.
    pub fn sizes(&self) -> Vec<usize> {
        self.z.iter().map(|z| z.ncols()).collect()
    }

    pub(super) fn validate(&self, n: usize) -> Result<()> {
        if self.z.is_empty() {
            return Err(SolverError::invalid("candidate layers", "L >= 1", 0));
        }
        if self.pi.len() != self.z.len() || self.n_particles.len() != self.z.len() {
            return Err(SolverError::shape(
                "reference weights pi",
                format!("{} layers", self.z.len()),
                format!("{} layers", self.pi.len()),
            ));
        }
        for (l, (zl, pl)) in self.z.iter().zip(&self.pi).enumerate() {
            if zl.ncols() == 0 {
                return Err(SolverError::invalid(
                    format!("candidate set of layer {}", l + 1),
                    "at least one candidate",
                    "0 candidates",
                ));
            }
            if zl.nrows() != n {
                return Err(SolverError::shape(
                    format!("features of layer {}", l + 1),
                    format!("{n} rows (one per data point)"),
                    format!("{} rows", zl.nrows()),
                ));
            }
            if pl.len() != zl.ncols() {
                return Err(SolverError::shape(
                    format!("reference weights of layer {}", l + 1),
                    format!("{} entries", zl.ncols()),
                    format!("{} entries", pl.len()),
                ));
            }
            ensure_finite(
                &format!("features of layer {}", l + 1),
                (0..zl.ncols()).flat_map(|j| (0..n).map(move |i| zl[(i, j)])),
            )?;
            if let Some(x) = pl.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                return Err(SolverError::invalid(
                    format!("reference weights of layer {}", l + 1),
                    "finite values > 0 (full support)",
                    x,
                ));
            }
        }
        Ok(())
    }
}
