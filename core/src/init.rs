//! Initializations of finite-width networks: i.i.d., zero and min-norm (math.md §3.1, §3.3).
//!
//! | name | $A$ | $W_\ell$ | $v$ | for |
//! |---|---|---|---|---|
//! | `iid` | $a_j\sim\mathcal N(0,\sigma_a^2 I_d)$ | entries $\mathcal N(\mu_W,\sigma_W^2)$ | entries $\mathcal N(0,\sigma_v^2)$ | the classical mean-field start; **degenerate** middle layers (§3.1) |
//! | `zero` | as `iid` | $0$ | $0$ | the ResNet start of §3.3 (degenerate for the DNN: $Z_2 = 0$) |
//! | `min-norm` | as `iid` | $h(Z_\ell)^\top\hat K_\ell^{-1}Z_{\ell+1}$ | as `iid` | the non-degenerate DNN start of §3.3 |
//!
//! Defaults: $\sigma_a = \sigma_W = \sigma_v = 1$, $\mu_W = 0$.
//!
//! **Coupled labels.** Width sweeps compare a width-$m$ network with a width-$M > m$ one whose first $m$
//! units are the width-$m$ network's units. For `iid` and `zero` that holds exactly: $A$ is drawn column by
//! column from the stream `rng(seed, "init/A")`, $v$ entry by entry from `rng(seed, "init/v")`, and the
//! $W_\ell$ from `rng(seed, "init/W")` in *shells* — for $n = 0, 1, \dots$ and, within a shell, for every
//! layer: row $n$ left of the diagonal, column $n$ above it, then the diagonal entry $(n,n)$. So the
//! leading $m\times m$ block of every $W_\ell$ of the width-$M$ network is the width-$m$ network's $W_\ell$.
//! (`min-norm` cannot be coupled this way: its $W$ depends on $\hat K_\ell$, a mean over all $m$ units.)
//!
//! References: C. Fang, J. D. Lee, P. Yang, T. Zhang, *Modeling from Features: a Mean-field Framework for
//! Over-parameterized Deep Neural Networks*, COLT 2021 (arXiv:2007.01452) — uses an initialization of the
//! min-norm kind; the details here are the project's own [math.md §3.3: derived; guess on details].
use crate::activation::Activation;
use crate::data::Dataset;
use crate::error::{CoreError, Result};
use crate::feature::{activate, FeatureNet};
use crate::measure::EmpiricalMeasure;
use crate::network::{Arch, Network, Params, Shape};
use crate::rng::{normal, normal_mat, normal_vec, rng};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::solve_upper_triangular_in_place;
use faer::{Accum, Mat, MatRef, Par, Side};
use std::fmt;
use std::str::FromStr;

/// Smallest reciprocal condition number $\lambda_{\min}/\lambda_{\max}$ accepted for a Gram matrix
/// $\hat K_\ell$ before a ridge is added.
pub const RCOND_MIN: f64 = 1e-12;

fn one() -> f64 {
    1.0
}

/// An initialization scheme (see the module docs for the table and the coupling of widths).
///
/// Parsed from `iid`, `zero`, `min-norm` with default scales; unknown names give
/// [`CoreError::Unknown`]. In TOML/JSON: `{ kind = "iid", sigma_w = 0.5 }`, missing scales default.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Init {
    /// All parameters i.i.d. Gaussian: $a_j\sim\mathcal N(0,\sigma_a^2I_d)$, $(W_\ell)_{jk}\sim\mathcal N(\mu_W,\sigma_W^2)$,
    /// $v_j\sim\mathcal N(0,\sigma_v^2)$. Middle layers of the standard DNN collapse to one feature as
    /// $m\to\infty$: $\mathbf z_{2,k}\to\mu_W\,\mathbb E\,h(\mathbf z_1)$, spread $\propto m^{-1/2}$ (math.md §3.1).
    Iid {
        /// $\sigma_a$ (default 1).
        #[serde(default = "one")]
        sigma_a: f64,
        /// $\mu_W$ (default 0).
        #[serde(default)]
        mu_w: f64,
        /// $\sigma_W$ (default 1).
        #[serde(default = "one")]
        sigma_w: f64,
        /// $\sigma_v$ (default 1).
        #[serde(default = "one")]
        sigma_v: f64,
    },
    /// $A$ as in `Iid`, every $W_\ell = 0$ and $v = 0$. For the ResNet this is the non-degenerate start
    /// of math.md §3.3 (the skip path keeps the units' features distinct: $Z_\ell = Z_1$). Allowed for
    /// every architecture, but for the standard DNN it is degenerate: every unit of layers $\ge2$ has
    /// the feature $\mathbf 0$, and gradient descent cannot separate them.
    Zero {
        /// $\sigma_a$ (default 1).
        #[serde(default = "one")]
        sigma_a: f64,
    },
    /// Minimum-norm consistent weights (math.md §3.3, standard DNN) [derived; guess on details]:
    /// 1. $A$ as in `Iid`, $Z_1 = XA$;
    /// 2. for $\ell = 1..L-1$: $\hat K_\ell = \frac1m h(Z_\ell)h(Z_\ell)^\top$ ($N\times N$, needs $m\ge N$),
    ///    Cholesky $\hat K_\ell = LL^\top$ (with the smallest ridge $\epsilon I$ of the ladder
    ///    $10^{-12}\,\mathrm{tr}\hat K/N\cdot10^k$ when it fails or $\lambda_{\min}/\lambda_{\max} <$ [`RCOND_MIN`],
    ///    reported in [`InitReport`]); target features $Z_{\ell+1} = L\Xi$, $\Xi$ i.i.d. $\mathcal N(0,1)$, so the
    ///    columns are i.i.d. $\mathcal N(0,\hat K_\ell)$; weights
    ///    $$W_\ell = h(Z_\ell)^\top\hat K_\ell^{-1}Z_{\ell+1} = h(Z_\ell)^\top L^{-\top}\Xi;$$
    /// 3. $v$ as in `Iid`.
    ///
    /// Then $\frac1m h(Z_\ell)W_\ell = \hat K_\ell\hat K_\ell^{-1}Z_{\ell+1} = Z_{\ell+1}$ exactly (up to rounding)
    /// at every finite $m$ (claim C1). With a ridge $\epsilon$ the residual is
    /// $\epsilon(\hat K_\ell+\epsilon I)^{-1}Z_{\ell+1}$, of size $O(\sqrt\epsilon)$ along the near-null directions of
    /// $\hat K_\ell$ (the targets have a component there that no weights produce); it is reported per layer, and $(W_\ell)_{jk} = h(\mathbf z_{\ell,j})^\top\hat K_\ell^{-1}\mathbf z_{\ell+1,k}$
    /// is $O(1)$ as $m$ grows (its mean square over $j$ is $\mathbf z^\top\hat K^{-1}\mathbf z$, independent of $m$).
    /// For a two-level network (no $W$) it equals `Iid`; for the ResNet it is rejected (use `Zero`).
    MinNorm {
        /// $\sigma_a$ (default 1).
        #[serde(default = "one")]
        sigma_a: f64,
        /// $\sigma_v$ (default 1).
        #[serde(default = "one")]
        sigma_v: f64,
    },
}

impl Init {
    /// The accepted names.
    pub const NAMES: [&'static str; 3] = ["iid", "zero", "min-norm"];

    /// `Iid` with the default scales $\sigma_a = \sigma_W = \sigma_v = 1$, $\mu_W = 0$.
    pub fn iid() -> Self {
        Self::Iid {
            sigma_a: 1.0,
            mu_w: 0.0,
            sigma_w: 1.0,
            sigma_v: 1.0,
        }
    }
    /// `Zero` with $\sigma_a = 1$.
    pub fn zero() -> Self {
        Self::Zero { sigma_a: 1.0 }
    }
    /// `MinNorm` with $\sigma_a = \sigma_v = 1$.
    pub fn min_norm() -> Self {
        Self::MinNorm {
            sigma_a: 1.0,
            sigma_v: 1.0,
        }
    }

    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Iid { .. } => "iid",
            Self::Zero { .. } => "zero",
            Self::MinNorm { .. } => "min-norm",
        }
    }

    /// Check the scales: every $\sigma$ finite and $\ge 0$, $\mu_W$ finite.
    pub fn validate(&self) -> Result<()> {
        let check_sigma = |what: &str, s: f64| {
            if s.is_finite() && s >= 0.0 {
                Ok(())
            } else {
                Err(CoreError::invalid(
                    format!("{what} of the {} initialization", self.name()),
                    "a finite value >= 0",
                    s,
                ))
            }
        };
        match *self {
            Self::Iid {
                sigma_a,
                mu_w,
                sigma_w,
                sigma_v,
            } => {
                check_sigma("sigma_a", sigma_a)?;
                check_sigma("sigma_w", sigma_w)?;
                check_sigma("sigma_v", sigma_v)?;
                if !mu_w.is_finite() {
                    return Err(CoreError::invalid(
                        "mu_w of the iid initialization",
                        "a finite value",
                        mu_w,
                    ));
                }
                Ok(())
            }
            Self::Zero { sigma_a } => check_sigma("sigma_a", sigma_a),
            Self::MinNorm { sigma_a, sigma_v } => {
                check_sigma("sigma_a", sigma_a)?;
                check_sigma("sigma_v", sigma_v)
            }
        }
    }

    fn sigma_a(&self) -> f64 {
        match *self {
            Self::Iid { sigma_a, .. } | Self::Zero { sigma_a } | Self::MinNorm { sigma_a, .. } => {
                sigma_a
            }
        }
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Init {
    type Err = CoreError;
    /// `iid`, `zero` or `min-norm`, with default scales.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "iid" => Ok(Self::iid()),
            "zero" => Ok(Self::zero()),
            "min-norm" => Ok(Self::min_norm()),
            _ => Err(CoreError::Unknown {
                kind: "initialization",
                name: s.into(),
                expected: Self::NAMES.join(", "),
            }),
        }
    }
}

/// What happened to one Gram matrix $\hat K_\ell$ of the min-norm initialization.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GramReport {
    /// The layer $\ell$ (1-based): $\hat K_\ell$ builds $W_\ell$, from layer $\ell$ to $\ell+1$.
    pub layer: usize,
    /// $\lambda_{\min}/\lambda_{\max}$ of $\hat K_\ell$ before any ridge.
    pub rcond: f64,
    /// The ridge $\epsilon$ added ($0$ when none was needed).
    pub ridge: f64,
    /// $\max_k\|\frac1m h(Z_\ell)W_\ell e_k - \mathbf z_{\ell+1,k}\|$ against the drawn target features.
    pub consistency_residual: f64,
}

/// A report on an initialization: name, seed, and for `min-norm` one [`GramReport`] per $W_\ell$.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct InitReport {
    /// The scheme's name.
    pub init: String,
    /// The seed.
    pub seed: u64,
    /// One entry per Gram matrix (min-norm only; empty otherwise).
    pub gram: Vec<GramReport>,
}

impl InitReport {
    /// The largest ridge added (0 if none).
    pub fn max_ridge(&self) -> f64 {
        self.gram.iter().map(|g| g.ridge).fold(0.0, f64::max)
    }
    /// Whether any Gram matrix needed a ridge.
    pub fn ridged(&self) -> bool {
        self.max_ridge() > 0.0
    }
    /// The largest consistency residual against the target features (0 if not min-norm).
    pub fn max_consistency_residual(&self) -> f64 {
        self.gram
            .iter()
            .map(|g| g.consistency_residual)
            .fold(0.0, f64::max)
    }
}

/// A Cholesky factor $LL^\top = K + \epsilon I$ of a symmetric positive semi-definite matrix, with the ridge
/// $\epsilon$ that was needed.
#[derive(Clone, Debug)]
pub struct RidgedCholesky {
    /// The lower-triangular factor $L$.
    pub l: Mat<f64>,
    /// The ridge $\epsilon\ge0$.
    pub ridge: f64,
    /// $\lambda_{\min}/\lambda_{\max}$ of $K$ before the ridge (negative $\lambda_{\min}$ counts as 0).
    pub rcond: f64,
}

/// Cholesky of a Gram matrix $K$ ($n\times n$, lower triangle read) with the smallest ridge from the ladder
/// $\epsilon\in\{0,\ 10^{-12}\,\mathrm{tr}K/n,\ 10^{-11}\,\mathrm{tr}K/n,\ \dots,\ \mathrm{tr}K/n\}$ such that
/// $(\lambda_{\min}+\epsilon)/(\lambda_{\max}+\epsilon)\ge$ [`RCOND_MIN`] and the factorization succeeds
/// (math.md §7: Gram solves by Cholesky with a reported ridge).
///
/// The condition estimate uses the exact extreme eigenvalues ($O(n^3)$, as cheap as the factorization for
/// the $N\times N$ Gram matrices here); the Cholesky diagonal would overestimate $1/\kappa$.
/// Errors: non-square or non-finite $K$, $\mathrm{tr}K\le0$ (e.g. $h(Z)=0$ on the data).
pub fn ridged_cholesky(k: MatRef<'_, f64>) -> Result<RidgedCholesky> {
    let n = k.nrows();
    if n == 0 || k.ncols() != n {
        return Err(CoreError::shape(
            "Gram matrix",
            "a non-empty square matrix",
            format!("{} x {}", k.nrows(), k.ncols()),
        ));
    }
    crate::error::ensure_finite(
        "Gram matrix",
        (0..n).flat_map(|j| (0..n).map(move |i| k[(i, j)])),
    )?;
    let trace: f64 = (0..n).map(|i| k[(i, i)]).sum();
    if trace.is_nan() || trace <= 0.0 {
        return Err(CoreError::numerical(
            "Gram matrix K = h(Z)h(Z)^T/m",
            format!("trace {trace}: the activations vanish on the data"),
        ));
    }
    let eig = k
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| CoreError::numerical("eigenvalues of a Gram matrix", format!("{e:?}")))?;
    let (lmin, lmax) = (eig[0], eig[n - 1]);
    let rcond = lmin.max(0.0) / lmax;
    let base = 1e-12 * trace / n as f64;
    let ladder = std::iter::once(0.0).chain((0..=12).map(|i| base * 10f64.powi(i)));
    for eps in ladder {
        if (lmin + eps).max(0.0) / (lmax + eps) < RCOND_MIN {
            continue;
        }
        let mut kr = k.to_owned();
        for i in 0..n {
            kr[(i, i)] += eps;
        }
        if let Ok(f) = kr.llt(Side::Lower) {
            return Ok(RidgedCholesky {
                l: f.L().to_owned(),
                ridge: eps,
                rcond,
            });
        }
    }
    Err(CoreError::numerical(
        "Cholesky of a Gram matrix",
        format!(
            "no ridge up to tr/N = {:e} made it positive definite (eigenvalues in [{lmin:e}, {lmax:e}])",
            trace / n as f64
        ),
    ))
}

/// A network, the target features of a min-norm init (if any), and the report.
struct Drawn {
    net: Network,
    targets: Option<Vec<Mat<f64>>>,
    report: InitReport,
}

/// Fill every $W_\ell$ with i.i.d. $\mathcal N(\mu,\sigma^2)$ entries in the shell order of the module docs.
fn draw_iid_w(net: &mut Network, mu: f64, sigma: f64, seed: u64) {
    let s = net.shape();
    let mut r = rng(seed, "init/W");
    for n in 0..s.m {
        for l in 0..s.n_w() {
            let mut w = net.w_mut(l);
            for k in 0..n {
                w[(n, k)] = mu + sigma * normal(&mut r);
            }
            for j in 0..n {
                w[(j, n)] = mu + sigma * normal(&mut r);
            }
            w[(n, n)] = mu + sigma * normal(&mut r);
        }
    }
}

fn draw(
    shape: Shape,
    data: &Dataset,
    activation: Activation,
    init: &Init,
    seed: u64,
) -> Result<Drawn> {
    init.validate()?;
    data.validate()?;
    if data.d() != shape.d {
        return Err(CoreError::shape(
            "network input dimension d",
            format!("{} (the data's columns)", data.d()),
            shape.d,
        ));
    }
    if let (Init::MinNorm { .. }, Arch::ResNet) = (init, shape.arch) {
        return Err(CoreError::invalid(
            "initialization for the ResNet",
            "iid or zero (min-norm is the standard DNN's start; for the ResNet the skip path keeps \
             units distinct, so `zero` is the non-degenerate start of math.md §3.3)",
            "min-norm",
        ));
    }
    let (m, n) = (shape.m, data.n());
    let mut net = Params::zeros(shape);
    net.a_mut().copy_from(normal_mat(
        &mut rng(seed, "init/A"),
        shape.d,
        m,
        init.sigma_a(),
    ));
    let mut report = InitReport {
        init: init.name().into(),
        seed,
        gram: Vec::new(),
    };
    let mut targets = None;
    match *init {
        Init::Iid {
            mu_w,
            sigma_w,
            sigma_v,
            ..
        } => {
            draw_iid_w(&mut net, mu_w, sigma_w, seed);
            net.v_mut()
                .copy_from_slice(&normal_vec(&mut rng(seed, "init/v"), m, sigma_v));
        }
        Init::Zero { .. } => {}
        Init::MinNorm { sigma_v, .. } => {
            if shape.n_w() > 0 && m < n {
                return Err(CoreError::invalid(
                    "width m for the min-norm initialization",
                    format!("m >= N = {n} (K = h(Z)h(Z)^T/m must be invertible)"),
                    m,
                ));
            }
            let (z, gram) = min_norm_weights(&mut net, data.x.as_ref(), activation, seed)?;
            targets = Some(z);
            report.gram = gram;
            net.v_mut()
                .copy_from_slice(&normal_vec(&mut rng(seed, "init/v"), m, sigma_v));
        }
    }
    Ok(Drawn {
        net,
        targets,
        report,
    })
}

/// The min-norm weights $W_\ell$ for $A$ already in `net`; returns the target features $Z_1..Z_L$.
fn min_norm_weights(
    net: &mut Network,
    x: MatRef<'_, f64>,
    activation: Activation,
    seed: u64,
) -> Result<(Vec<Mat<f64>>, Vec<GramReport>)> {
    let s = net.shape();
    let (n, m) = (x.nrows(), s.m);
    let inv_m = 1.0 / m as f64;
    let par = Par::Seq;
    let mut z1 = Mat::zeros(n, m);
    matmul(z1.as_mut(), Accum::Replace, x, net.a(), 1.0, par);
    let mut targets = vec![z1];
    let mut gram = Vec::with_capacity(s.n_w());
    let mut rz = rng(seed, "init/Z");
    for l in 0..s.n_w() {
        let h = activate(activation, targets[l].as_ref());
        let mut k = Mat::zeros(n, n);
        matmul(
            k.as_mut(),
            Accum::Replace,
            h.as_ref(),
            h.transpose(),
            inv_m,
            par,
        );
        let fac = ridged_cholesky(k.as_ref()).map_err(|e| {
            CoreError::numerical(
                format!("min-norm initialization, layer {}", l + 1),
                e.to_string(),
            )
        })?;
        let xi = normal_mat(&mut rz, n, m, 1.0);
        let mut znext = Mat::zeros(n, m);
        matmul(
            znext.as_mut(),
            Accum::Replace,
            fac.l.as_ref(),
            xi.as_ref(),
            1.0,
            par,
        );
        // Y = L^{-T} Ξ = K^{-1} Z_{l+1}: one triangular solve instead of a full one.
        let mut y = xi;
        solve_upper_triangular_in_place(fac.l.transpose(), y.as_mut(), par);
        matmul(
            net.w_mut(l),
            Accum::Replace,
            h.transpose(),
            y.as_ref(),
            1.0,
            par,
        );
        // Residual of (1/m) h(Z_l) W_l against the targets.
        let mut pred = znext.clone();
        matmul(pred.as_mut(), Accum::Add, h.as_ref(), net.w(l), -inv_m, par);
        let residual = (0..m).map(|c| pred.col(c).norm_l2()).fold(0.0, f64::max);
        gram.push(GramReport {
            layer: l + 1,
            rcond: fac.rcond,
            ridge: fac.ridge,
            consistency_residual: residual,
        });
        targets.push(znext);
    }
    Ok((targets, gram))
}

/// Draw a network of `shape` for `data` (the data enter only the min-norm scheme) with `init` and `seed`.
///
/// Errors: $d$ differs from the data's, invalid scales, min-norm on a ResNet (use `zero`), min-norm with
/// $m < N$ and $L\ge2$, a Gram matrix no ridge can fix (e.g. $h(Z_\ell) = 0$).
///
/// ```
/// use nff_core::{init::{init_network, Init}, Activation, Arch, Dataset, Shape};
/// let x = faer::Mat::from_fn(6, 2, |i, j| ((i + 1) as f64 * (j as f64 + 0.7)).sin());
/// let data = Dataset::new(x, vec![0.0; 6]).unwrap();
/// let shape = Shape::new(Arch::Dnn, 2, 24, 3).unwrap();
/// let init: Init = "min-norm".parse().unwrap();
/// let (net, report) = init_network(shape, &data, Activation::Tanh, &init, 7).unwrap();
/// assert_eq!(report.gram.len(), 2);
/// assert!(!report.ridged() && report.max_consistency_residual() < 1e-10);
/// assert_eq!(net.shape(), shape);
/// ```
pub fn init_network(
    shape: Shape,
    data: &Dataset,
    activation: Activation,
    init: &Init,
    seed: u64,
) -> Result<(Network, InitReport)> {
    let d = draw(shape, data, activation, init, seed)?;
    Ok((d.net, d.report))
}

/// [`init_network`] in feature space. For `min-norm` the layer measures are the uniform measures on the
/// drawn *target* features $Z_{\ell+1}$ (so [`FeatureNet::consistency_residual`] measures claim C1 exactly);
/// for the others, the features of the forward pass.
pub fn init_feature_net(
    shape: Shape,
    data: &Dataset,
    activation: Activation,
    init: &Init,
    seed: u64,
) -> Result<(FeatureNet, InitReport)> {
    let d = draw(shape, data, activation, init, seed)?;
    let fnet = match d.targets {
        Some(z) => {
            let layers = z
                .into_iter()
                .map(EmpiricalMeasure::uniform)
                .collect::<Result<Vec<_>>>()?;
            let s = d.net.shape();
            FeatureNet::from_parts(
                s.arch,
                layers,
                d.net.a().to_owned(),
                (0..s.n_w()).map(|l| d.net.w(l).to_owned()).collect(),
                d.net.v().to_vec(),
            )?
        }
        None => FeatureNet::from_network(data, activation, &d.net)?,
    };
    Ok((fnet, d.report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, d: usize, seed: u64) -> Dataset {
        let mut r = rng(seed, "test/data");
        let x = normal_mat(&mut r, n, d, 1.0 / (d as f64).sqrt());
        let y = (0..n).map(|i| (3.0 * x[(i, 0)]).sin() + 0.5).collect();
        Dataset::new(x, y).unwrap()
    }

    #[test]
    fn parse_and_display() {
        for name in Init::NAMES {
            let init: Init = name.parse().unwrap();
            assert_eq!(init.to_string(), name);
            init.validate().unwrap();
        }
        let e = "min_norm".parse::<Init>().unwrap_err();
        assert!(matches!(e, CoreError::Unknown { .. }));
        assert!(e.to_string().contains("iid, zero, min-norm"), "{e}");
        let bad = Init::Iid {
            sigma_a: 1.0,
            mu_w: 0.0,
            sigma_w: -1.0,
            sigma_v: 1.0,
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("sigma_w") && e.contains("-1"), "{e}");
    }

    #[test]
    fn iid_draws_have_stated_moments() {
        let ds = data(5, 3, 0);
        let shape = Shape::new(Arch::Dnn, 3, 300, 2).unwrap();
        let init = Init::Iid {
            sigma_a: 2.0,
            mu_w: 0.5,
            sigma_w: 3.0,
            sigma_v: 0.5,
        };
        let (net, report) = init_network(shape, &ds, Activation::Tanh, &init, 9).unwrap();
        assert!(report.gram.is_empty());
        let stats = |xs: Vec<f64>| {
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            (mean, var.sqrt())
        };
        let a = net.a();
        let (ma, sa) = stats(
            (0..3)
                .flat_map(|i| (0..300).map(move |j| a[(i, j)]))
                .collect(),
        );
        assert!(ma.abs() < 0.2 && (sa - 2.0).abs() < 0.15, "{ma} {sa}");
        let w = net.w(0);
        let (mw, sw) = stats(
            (0..300)
                .flat_map(|i| (0..300).map(move |j| w[(i, j)]))
                .collect(),
        );
        assert!(
            (mw - 0.5).abs() < 0.03 && (sw - 3.0).abs() < 0.03,
            "{mw} {sw}"
        );
        let (mv, sv) = stats(net.v().to_vec());
        assert!(mv.abs() < 0.1 && (sv - 0.5).abs() < 0.06, "{mv} {sv}");
    }

    #[test]
    fn zero_init() {
        let ds = data(5, 2, 0);
        for arch in [Arch::Dnn, Arch::ResNet] {
            let shape = Shape::new(arch, 2, 8, 3).unwrap();
            let (net, _) = init_network(shape, &ds, Activation::Tanh, &Init::zero(), 1).unwrap();
            let (iid, _) = init_network(shape, &ds, Activation::Tanh, &Init::iid(), 1).unwrap();
            assert_eq!(net.a(), iid.a());
            assert!(net.v().iter().all(|&v| v == 0.0));
            assert!((0..2).all(|l| net.w(l).norm_l2() == 0.0));
        }
    }

    #[test]
    fn min_norm_rules() {
        let ds = data(6, 2, 0);
        let e = init_network(
            Shape::new(Arch::ResNet, 2, 24, 2).unwrap(),
            &ds,
            Activation::Tanh,
            &Init::min_norm(),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("zero") && e.contains("ResNet"), "{e}");
        let e = init_network(
            Shape::new(Arch::Dnn, 2, 5, 2).unwrap(),
            &ds,
            Activation::Tanh,
            &Init::min_norm(),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("m >= N = 6") && e.contains("found 5"), "{e}");
        // Two-level: min-norm is iid.
        let shape = Shape::new(Arch::TwoLevel, 2, 4, 1).unwrap();
        let (a, _) = init_network(shape, &ds, Activation::Tanh, &Init::min_norm(), 3).unwrap();
        let (b, _) = init_network(shape, &ds, Activation::Tanh, &Init::iid(), 3).unwrap();
        assert_eq!(a, b);
        let e = init_network(
            Shape::new(Arch::Dnn, 3, 8, 2).unwrap(),
            &ds,
            Activation::Tanh,
            &Init::iid(),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("input dimension"), "{e}");
    }

    #[test]
    fn singular_gram_gets_a_reported_ridge() {
        // A repeated data point makes K = h(Z)h(Z)^T/m exactly singular.
        let base = data(6, 3, 5);
        let x = Mat::from_fn(7, 3, |i, j| base.x[(i.min(5), j)]);
        let ds = Dataset::new(x, vec![0.0; 7]).unwrap();
        let shape = Shape::new(Arch::Dnn, 3, 40, 3).unwrap();
        let (f, report) =
            init_feature_net(shape, &ds, Activation::Tanh, &Init::min_norm(), 2).unwrap();
        assert!(report.ridged());
        // Layer 1 sees the exact duplicate; deeper target features are drawn from N(0, K + εI), so
        // the duplicate rows differ by O(√ε) and those Gram matrices may or may not need a ridge.
        let g = report.gram[0];
        assert!(g.rcond < RCOND_MIN && g.ridge > 0.0, "{g:?}");
        assert_eq!(
            report.max_ridge(),
            report.gram.iter().map(|g| g.ridge).fold(0.0, f64::max)
        );
        let res = f.consistency_residual(Activation::Tanh);
        for (r, g) in res.iter().zip(&report.gram) {
            assert!((r - g.consistency_residual).abs() < 1e-12);
            // With a ridge ε the targets have a component of size ~√ε outside range(K̂) that no
            // weights can produce: the residual is O(√ε), not rounding.
            assert!(*r < 1e-4, "{r}");
        }
        assert!(ridged_cholesky(Mat::<f64>::zeros(3, 3).as_ref()).is_err());
    }

    #[test]
    fn ridged_cholesky_of_a_well_conditioned_matrix_adds_nothing() {
        let k = Mat::from_fn(3, 3, |i, j| if i == j { 2.0 } else { 0.5 });
        let f = ridged_cholesky(k.as_ref()).unwrap();
        assert_eq!(f.ridge, 0.0);
        assert!((f.rcond - 1.5 / 3.0).abs() < 1e-14);
    }
}
