//! The feature-space view of a network (math.md §3.2).
//!
//! A **feature** of a hidden unit is its vector of pre-activations on the $N$ training points,
//! $\mathbf z\in\mathbb R^N$. In the continuous DNN, layer $\ell$ is a probability measure $p_\ell$ on
//! $\mathbb R^N$, weights are functions of *pairs of features* $w_{\ell+1}(\mathbf z, \mathbf z')$, output weights
//! $v(\mathbf z)$, and the **consistency constraint** says a unit's feature is what its incoming weights produce:
//! $$\mathbf z' = \int w_{\ell+1}(\mathbf z, \mathbf z')\,h(\mathbf z)\,dp_\ell(\mathbf z)\quad p_{\ell+1}\text{-a.e.},
//! \qquad \hat{\mathbf y} = \int v(\mathbf z)\,h(\mathbf z)\,dp_L(\mathbf z)$$
//! (for the ResNet, $\mathbf z' = \mathbf z + \int\cdots$ with units aligned by the skip connection).
//!
//! A width-$m$ network is the special case of empirical measures $p_\ell = \frac1m\sum_j\delta_{\mathbf z_{\ell,j}}$
//! with $w_{\ell+1}(\mathbf z_{\ell,j}, \mathbf z_{\ell+1,k}) = (W_\ell)_{jk}$: [`FeatureNet`] stores exactly that,
//! converts both ways ([`FeatureNet::from_network`], [`FeatureNet::to_network`]) and reports the
//! consistency residual ([`FeatureNet::consistency_residual`]).
//!
//! The first layer is the push-forward of the first-layer weight law by $a\mapsto Xa$. The cheapest weight
//! for a feature $\mathbf z\in\mathrm{range}(X)$ is $a = X^\top(XX^\top)^+\mathbf z = X^+\mathbf z$, with
//! $\|a\|^2 = \mathbf z^\top(XX^\top)^+\mathbf z$ ([`first_layer_cost`], claim C21), so a first-layer L2 penalty is a
//! *linear* functional of $p_1$ [derived in math.md].
//!
//! Degeneracy diagnostics (math.md §3.1, §5; claims C2, C19, C20): the across-unit spread of each
//! layer, the singular values of $h(Z_L)/\sqrt m$, and the minimum distance between a layer's particles.
//!
//! References: C. Fang, J. D. Lee, P. Yang, T. Zhang, *Modeling from Features: a Mean-field Framework for
//! Over-parameterized Deep Neural Networks*, COLT 2021 (arXiv:2007.01452); C. Fang, Y. Gu, W. Zhang,
//! T. Zhang, *Convex Formulation of Overparameterized Deep Neural Networks*, IEEE Trans. Inf. Theory 68(8), 2022.
use crate::activation::Activation;
use crate::data::Dataset;
use crate::error::{CoreError, Result};
use crate::measure::{min_pairwise_distance_of, weighted_spread, EmpiricalMeasure};
use crate::network::{Arch, Network, Params, Problem};
use faer::linalg::matmul::matmul;
use faer::{Accum, ColRef, Mat, MatRef, Par};

/// Relative tolerance of [`FeatureNet::to_network`] on $\|Z_1 - XA\|_F / \|Z_1\|_F$.
pub const RANGE_TOL: f64 = 1e-8;

/// $h$ applied entrywise to a matrix.
pub(crate) fn activate(activation: Activation, z: MatRef<'_, f64>) -> Mat<f64> {
    Mat::from_fn(z.nrows(), z.ncols(), |i, j| activation.value(z[(i, j)]))
}

/// The features $Z_1, \dots, Z_L$ of `net` on inputs `x` (the forward pass of math.md §2).
pub fn forward_features(
    x: MatRef<'_, f64>,
    activation: Activation,
    net: &Network,
    par: Par,
) -> Result<Vec<Mat<f64>>> {
    let s = net.shape();
    if x.ncols() != s.d {
        return Err(CoreError::shape(
            "inputs X",
            format!("{} columns (the network's input dimension)", s.d),
            format!("{} columns", x.ncols()),
        ));
    }
    let (n, m) = (x.nrows(), s.m);
    let inv_m = 1.0 / m as f64;
    let mut z = Mat::zeros(n, m);
    matmul(z.as_mut(), Accum::Replace, x, net.a(), 1.0, par);
    let mut layers = vec![z];
    for l in 0..s.n_w() {
        let prev = &layers[l];
        let h = activate(activation, prev.as_ref());
        let (mut next, accum) = if s.arch.is_resnet() {
            (prev.clone(), Accum::Add)
        } else {
            (Mat::zeros(n, m), Accum::Replace)
        };
        matmul(next.as_mut(), accum, h.as_ref(), net.w(l), inv_m, par);
        layers.push(next);
    }
    Ok(layers)
}

/// The linear map $a\mapsto Xa$ from first-layer weights to features, with its minimum-norm inverse.
///
/// From the thin SVD $X = USV^\top$ (singular values below $\max(N,d)\,\varepsilon\,s_{\max}$ dropped):
/// $X^+\mathbf z = VS^{-1}U^\top\mathbf z$ is the minimum-norm (least-squares) weight, and
/// $\mathbf z^\top(XX^\top)^+\mathbf z = \|S^{-1}U^\top\mathbf z\|^2 = \|X^+\mathbf z\|^2$ its cost.
/// Factor once, apply to many features.
#[derive(Clone, Debug)]
pub struct FirstLayerMap {
    u: Mat<f64>,
    s: Vec<f64>,
    v: Mat<f64>,
}

impl FirstLayerMap {
    /// Factor $X$ ($N\times d$). Errors if $X$ has a non-finite entry or the SVD fails.
    pub fn new(x: MatRef<'_, f64>) -> Result<Self> {
        let (n, d) = (x.nrows(), x.ncols());
        if n == 0 || d == 0 {
            return Err(CoreError::invalid(
                "inputs X",
                "N >= 1 rows and d >= 1 columns",
                format!("{n} x {d}"),
            ));
        }
        crate::error::ensure_finite(
            "inputs X",
            (0..d).flat_map(|j| (0..n).map(move |i| x[(i, j)])),
        )?;
        let svd = x
            .thin_svd()
            .map_err(|e| CoreError::numerical("SVD of the inputs X", format!("{e:?}")))?;
        let sv = svd.S().column_vector();
        let smax = if sv.nrows() > 0 { sv[0] } else { 0.0 };
        let tol = n.max(d) as f64 * f64::EPSILON * smax;
        let rank = (0..sv.nrows()).take_while(|&i| sv[i] > tol).count();
        Ok(Self {
            u: svd.U().get(.., ..rank).to_owned(),
            s: (0..rank).map(|i| sv[i]).collect(),
            v: svd.V().get(.., ..rank).to_owned(),
        })
    }

    /// Number of data points $N$.
    pub fn n(&self) -> usize {
        self.u.nrows()
    }
    /// Input dimension $d$.
    pub fn d(&self) -> usize {
        self.v.nrows()
    }
    /// Numerical rank of $X$.
    pub fn rank(&self) -> usize {
        self.s.len()
    }

    fn check_len(&self, what: &str, len: usize) -> Result<()> {
        if len != self.n() {
            return Err(CoreError::shape(
                what,
                format!("{} rows (one per data point)", self.n()),
                format!("{len} rows"),
            ));
        }
        Ok(())
    }

    /// $S^{-1}U^\top Z$ ($r\times k$).
    fn whitened(&self, z: MatRef<'_, f64>) -> Mat<f64> {
        let mut c = Mat::zeros(self.rank(), z.ncols());
        matmul(
            c.as_mut(),
            Accum::Replace,
            self.u.transpose(),
            z,
            1.0,
            Par::Seq,
        );
        for j in 0..c.ncols() {
            for (i, s) in self.s.iter().enumerate() {
                c[(i, j)] /= s;
            }
        }
        c
    }

    /// Minimum-norm weights $A = X^+Z$ ($d\times k$) for features $Z$ ($N\times k$, one per column).
    pub fn weights(&self, z: MatRef<'_, f64>) -> Result<Mat<f64>> {
        self.check_len("features Z", z.nrows())?;
        let c = self.whitened(z);
        let mut a = Mat::zeros(self.d(), z.ncols());
        matmul(
            a.as_mut(),
            Accum::Replace,
            self.v.as_ref(),
            c.as_ref(),
            1.0,
            Par::Seq,
        );
        Ok(a)
    }

    /// The first-layer cost $r_1(\mathbf z) = \mathbf z^\top(XX^\top)^+\mathbf z$: the smallest $\|a\|^2$ with
    /// $Xa = \mathbf z$ when $\mathbf z\in\mathrm{range}(X)$ (for other $\mathbf z$ no weight reproduces it; the
    /// value is then the cost of its projection on $\mathrm{range}(X)$, see [`FirstLayerMap::range_residual`]).
    pub fn cost(&self, z: ColRef<'_, f64>) -> Result<f64> {
        self.check_len("feature z", z.nrows())?;
        let c = self.whitened(z.as_mat());
        Ok(c.squared_norm_l2())
    }

    /// $\|\mathbf z - UU^\top\mathbf z\|$: the distance of $\mathbf z$ from $\mathrm{range}(X)$.
    pub fn range_residual(&self, z: ColRef<'_, f64>) -> Result<f64> {
        self.check_len("feature z", z.nrows())?;
        let mut c = Mat::zeros(self.rank(), 1);
        matmul(
            c.as_mut(),
            Accum::Replace,
            self.u.transpose(),
            z.as_mat(),
            1.0,
            Par::Seq,
        );
        let mut r = z.as_mat().to_owned();
        matmul(
            r.as_mut(),
            Accum::Add,
            self.u.as_ref(),
            c.as_ref(),
            -1.0,
            Par::Seq,
        );
        Ok(r.norm_l2())
    }
}

/// The first-layer cost $\mathbf z^\top(XX^\top)^+\mathbf z = \min\{\|a\|^2 : Xa = \mathbf z\}$ for $\mathbf z\in\mathrm{range}(X)$
/// (math.md §3.2, claim C21). Factors $X$ on each call; use [`FirstLayerMap`] for many features.
pub fn first_layer_cost(z: ColRef<'_, f64>, x: MatRef<'_, f64>) -> Result<f64> {
    FirstLayerMap::new(x)?.cost(z)
}

/// Across-unit spread $\sqrt{\frac1m\sum_k\|\mathbf z_k - \bar{\mathbf z}\|^2/N}$ of the columns of a feature
/// matrix $Z$ ($N\times m$). For i.i.d. middle weights it decays like $m^{-1/2}$ (math.md §3.1, claim C2).
pub fn feature_spread(z: MatRef<'_, f64>) -> f64 {
    weighted_spread(z, None)
}

/// $\min_{j<k}\|\mathbf z_j - \mathbf z_k\|$ over the columns of $Z$ (claim C20); $+\infty$ for one column.
pub fn min_pairwise_distance(z: MatRef<'_, f64>) -> f64 {
    min_pairwise_distance_of(z)
}

/// Singular values of $H/\sqrt m$ for $H = h(Z_L)$ ($N\times m$), in non-increasing order
/// ($\min(N, m)$ of them). Their minimum bounds the residual at a stationary point,
/// $\|\mathbf r\|\le\|H^\top\mathbf r\|/\sigma_{\min}(H/\sqrt m)$ (math.md §5, claim C18); a single
/// dominant value signals the degenerate collapse of §3.1 (claim C19).
pub fn scaled_singular_values(h: MatRef<'_, f64>) -> Result<Vec<f64>> {
    let m = h.ncols().max(1) as f64;
    let scaled = Mat::from_fn(h.nrows(), h.ncols(), |i, j| h[(i, j)] / m.sqrt());
    singular_values(scaled.as_ref())
}

fn singular_values(a: MatRef<'_, f64>) -> Result<Vec<f64>> {
    if a.nrows() == 0 || a.ncols() == 0 {
        return Ok(Vec::new());
    }
    a.singular_values()
        .map_err(|e| CoreError::numerical("singular values of h(Z_L)", format!("{e:?}")))
}

/// Degeneracy diagnostics of a [`FeatureNet`] (math.md §3.1; claims C2, C19, C20).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Degeneracy {
    /// Per layer $\ell = 1..L$: $\sqrt{\sum_k p_k\|\mathbf z_{\ell,k} - \bar{\mathbf z}_\ell\|^2/N}$.
    pub spread: Vec<f64>,
    /// Per layer: the minimum distance between two particles $\mathbf z_{\ell,j}, \mathbf z_{\ell,k}$.
    pub min_distance: Vec<f64>,
    /// Singular values of $h(Z_L)\,\mathrm{diag}(p)^{1/2}$ ($= h(Z_L)/\sqrt m$ for uniform weights),
    /// non-increasing, $N$ of them (zero-padded when $m < N$).
    pub singular_values: Vec<f64>,
}

impl Degeneracy {
    /// Number of singular values above `rel_tol` times the largest (1 for a collapsed last layer).
    pub fn numerical_rank(&self, rel_tol: f64) -> usize {
        let top = self.singular_values.first().copied().unwrap_or(0.0);
        self.singular_values
            .iter()
            .filter(|&&s| s > rel_tol * top && s > 0.0)
            .count()
    }
    /// The smallest singular value of $h(Z_L)/\sqrt m$ ($N$ values, so 0 if $m < N$).
    pub fn sigma_min(&self) -> f64 {
        self.singular_values.last().copied().unwrap_or(0.0)
    }
    /// $\min$-distance of the last layer relative to the first (claim C20: bounded below for the ResNet).
    pub fn injectivity_ratio(&self) -> f64 {
        match (self.min_distance.first(), self.min_distance.last()) {
            (Some(&first), Some(&last)) => last / first,
            _ => f64::NAN,
        }
    }
}

/// A network in feature space: each hidden layer an [`EmpiricalMeasure`] over $\mathbb R^N$, pair weights
/// $W_\ell$ with $w(\mathbf z_{\ell,j}, \mathbf z_{\ell+1,k}) = (W_\ell)_{jk}$, output weights $v$, first-layer
/// weights $A$ and the architecture (math.md §3.2).
///
/// All layers have the same number $m$ of atoms (units are labelled $1..m$ in every layer; for the ResNet
/// unit $k$ of layer $\ell+1$ is unit $k$ of layer $\ell$ moved along the skip connection). Measures of a
/// width-$m$ network are uniform; other weights are allowed and enter every integral, e.g.
/// $\mathbf z_{\ell+1,k} = \sum_j p_{\ell,j}(W_\ell)_{jk}\,h(\mathbf z_{\ell,j})$, but [`FeatureNet::to_network`] needs uniform ones.
#[derive(Clone, Debug)]
pub struct FeatureNet {
    arch: Arch,
    layers: Vec<EmpiricalMeasure>,
    a: Mat<f64>,
    w: Vec<Mat<f64>>,
    v: Vec<f64>,
}

impl FeatureNet {
    /// The feature-space view of `net` on `data`: $p_\ell = \frac1m\sum_j\delta_{\mathbf z_{\ell,j}}$ with the
    /// features of the forward pass, $Z_1 = XA$, $Z_{\ell+1} = [Z_\ell]_{\rm Res} + \frac1m h(Z_\ell)W_\ell$.
    pub fn from_network(data: &Dataset, activation: Activation, net: &Network) -> Result<Self> {
        net.ensure_finite()?;
        let s = net.shape();
        let z = forward_features(data.x.as_ref(), activation, net, Par::Seq)?;
        let layers = z
            .into_iter()
            .map(EmpiricalMeasure::uniform)
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            arch: s.arch,
            layers,
            a: net.a().to_owned(),
            w: (0..s.n_w()).map(|l| net.w(l).to_owned()).collect(),
            v: net.v().to_vec(),
        })
    }

    /// [`FeatureNet::from_network`] with the data and activation of a [`Problem`].
    pub fn from_problem(problem: &Problem, net: &Network) -> Result<Self> {
        problem.check_network(net)?;
        Self::from_network(&problem.data, problem.activation, net)
    }

    /// Assemble from parts, checking shapes: $L\ge1$ layers over the same $\mathbb R^N$ with $m$ atoms each
    /// (a two-level net has $L = 1$), $A$ of size $d\times m$, $L-1$ matrices $W_\ell$ of size $m\times m$,
    /// $v$ of length $m$, all finite. Consistency is *not* required: measure it with
    /// [`FeatureNet::consistency_residual`].
    pub fn from_parts(
        arch: Arch,
        layers: Vec<EmpiricalMeasure>,
        a: Mat<f64>,
        w: Vec<Mat<f64>>,
        v: Vec<f64>,
    ) -> Result<Self> {
        let Some(first) = layers.first() else {
            return Err(CoreError::invalid(
                "feature network",
                "at least one hidden layer",
                "0 layers",
            ));
        };
        let (n, m) = (first.dim(), first.len());
        if arch == Arch::TwoLevel && layers.len() != 1 {
            return Err(CoreError::invalid(
                "depth of a two-level feature network",
                "1 layer",
                layers.len(),
            ));
        }
        for (l, p) in layers.iter().enumerate() {
            if p.dim() != n || p.len() != m {
                return Err(CoreError::shape(
                    format!("layer {} of a feature network", l + 1),
                    format!("{m} atoms in R^{n} (as layer 1)"),
                    format!("{} atoms in R^{}", p.len(), p.dim()),
                ));
            }
        }
        if a.ncols() != m || a.nrows() == 0 {
            return Err(CoreError::shape(
                "first-layer weights A",
                format!("(d, {m}) with d >= 1"),
                format!("({}, {})", a.nrows(), a.ncols()),
            ));
        }
        if w.len() + 1 != layers.len() {
            return Err(CoreError::shape(
                "pair weights W",
                format!("{} matrices (layers - 1)", layers.len() - 1),
                format!("{} matrices", w.len()),
            ));
        }
        for (l, wl) in w.iter().enumerate() {
            if wl.nrows() != m || wl.ncols() != m {
                return Err(CoreError::shape(
                    format!("W[{l}]"),
                    format!("({m}, {m})"),
                    format!("({}, {})", wl.nrows(), wl.ncols()),
                ));
            }
        }
        if v.len() != m {
            return Err(CoreError::shape(
                "output weights v",
                format!("({m},)"),
                format!("({},)", v.len()),
            ));
        }
        let mats = std::iter::once(&a).chain(&w);
        for (i, mat) in mats.enumerate() {
            let name = if i == 0 {
                "A".to_string()
            } else {
                format!("W[{}]", i - 1)
            };
            crate::error::ensure_finite(
                &name,
                (0..mat.ncols()).flat_map(|j| (0..mat.nrows()).map(move |r| mat[(r, j)])),
            )?;
        }
        crate::error::ensure_finite("v", v.iter().copied())?;
        Ok(Self {
            arch,
            layers,
            a,
            w,
            v,
        })
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }
    /// Number of hidden layers $L$.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }
    /// Number of units (atoms) per layer $m$.
    pub fn width(&self) -> usize {
        self.layers[0].len()
    }
    /// Number of data points $N$ (the dimension of feature space).
    pub fn n_points(&self) -> usize {
        self.layers[0].dim()
    }
    /// The layer measures $p_1..p_L$ (index 0 is $p_1$).
    pub fn layers(&self) -> &[EmpiricalMeasure] {
        &self.layers
    }
    /// The measure $p_{l+1}$ (`l` from 0).
    pub fn layer(&self, l: usize) -> &EmpiricalMeasure {
        &self.layers[l]
    }
    /// The measure $p_{l+1}$, mutably (to move or reweight particles).
    pub fn layer_mut(&mut self, l: usize) -> &mut EmpiricalMeasure {
        &mut self.layers[l]
    }
    /// Features $Z_{l+1}$ ($N\times m$, one unit per column).
    pub fn features(&self, l: usize) -> MatRef<'_, f64> {
        self.layers[l].atoms()
    }
    /// The first-layer weights $A$ this view was built with ($d\times m$). After the first-layer features
    /// are edited they are stale: [`FeatureNet::to_network`] recomputes them from $Z_1$.
    pub fn a(&self) -> MatRef<'_, f64> {
        self.a.as_ref()
    }
    /// The pair weights $W_{l+1}$ ($m\times m$).
    pub fn w(&self, l: usize) -> MatRef<'_, f64> {
        self.w[l].as_ref()
    }
    /// The output weights $v$.
    pub fn v(&self) -> &[f64] {
        &self.v
    }

    /// The predictions $\hat{\mathbf y} = \int v(\mathbf z)h(\mathbf z)\,dp_L = \sum_j p_{L,j}v_j h(\mathbf z_{L,j})$.
    pub fn predict(&self, activation: Activation) -> Vec<f64> {
        let top = &self.layers[self.depth() - 1];
        let n = self.n_points();
        let mut yhat = vec![0.0; n];
        for (j, (&p, &vj)) in top.weights().iter().zip(&self.v).enumerate() {
            let c = p * vj;
            for (i, y) in yhat.iter_mut().enumerate() {
                *y += c * activation.value(top.atoms()[(i, j)]);
            }
        }
        yhat
    }

    /// What layer $\ell+1$'s features should be given layer $\ell$ and $W_\ell$:
    /// $\sum_j p_{\ell,j}(W_\ell)_{jk}h(\mathbf z_{\ell,j})$ [$+\,\mathbf z_{\ell,k}$ for the ResNet].
    fn propagated(&self, l: usize, activation: Activation) -> Mat<f64> {
        let p = &self.layers[l];
        let hz = Mat::from_fn(p.dim(), p.len(), |i, j| {
            p.weights()[j] * activation.value(p.atoms()[(i, j)])
        });
        let (mut out, accum) = if self.arch.is_resnet() {
            (p.atoms().to_owned(), Accum::Add)
        } else {
            (Mat::zeros(p.dim(), p.len()), Accum::Replace)
        };
        matmul(
            out.as_mut(),
            accum,
            hz.as_ref(),
            self.w[l].as_ref(),
            1.0,
            Par::Seq,
        );
        out
    }

    /// The consistency residual per layer $\ell = 2..L$ (entry $\ell-2$; empty for $L = 1$):
    /// $$\max_k\Big\|\tfrac1m\sum_j (W_\ell)_{jk}\,h(\mathbf z_{\ell,j})\ [+\,\mathbf z_{\ell,k}]_{\rm Res} - \mathbf z_{\ell+1,k}\Big\|_2$$
    /// (with $\frac1m$ replaced by the layer's weights $p_{\ell,j}$ when they are not uniform).
    /// Zero up to rounding for the view of a genuine network; a feature moved by $\delta$ shows up as
    /// $\|\delta\|$ in the layer it belongs to.
    pub fn consistency_residual(&self, activation: Activation) -> Vec<f64> {
        (0..self.depth() - 1)
            .map(|l| {
                let pred = self.propagated(l, activation);
                let z = self.layers[l + 1].atoms();
                (0..pred.ncols())
                    .map(|k| {
                        (0..pred.nrows())
                            .map(|i| (pred[(i, k)] - z[(i, k)]).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .fold(0.0, f64::max)
            })
            .collect()
    }

    /// The first-layer weights recovered from the features: $A = X^+Z_1$, the minimum-norm least-squares
    /// solution of $XA = Z_1$. Errors if $\|Z_1 - XA\|_F > 10^{-8}\|Z_1\|_F$ ([`RANGE_TOL`]): the features
    /// are then not in $\mathrm{range}(X)$ and no first layer produces them.
    pub fn first_layer_weights(&self, data: &Dataset) -> Result<Mat<f64>> {
        let x = data.x.as_ref();
        let z1 = self.features(0);
        if x.nrows() != z1.nrows() {
            return Err(CoreError::shape(
                "inputs X",
                format!("{} rows (one per feature coordinate)", z1.nrows()),
                format!("{} rows", x.nrows()),
            ));
        }
        let map = FirstLayerMap::new(x)?;
        let a = map.weights(z1)?;
        let mut res = z1.to_owned();
        matmul(res.as_mut(), Accum::Add, x, a.as_ref(), -1.0, Par::Seq);
        let (r, zn) = (res.norm_l2(), z1.norm_l2());
        if r.is_nan() || r > RANGE_TOL * zn {
            return Err(CoreError::numerical(
                "recovering first-layer weights from Z_1",
                format!(
                    "the features are not in range(X): relative residual ||Z_1 - XA||/||Z_1|| = {:e} > {RANGE_TOL:e}",
                    r / zn
                ),
            ));
        }
        Ok(a)
    }

    /// Back to a finite-width [`Network`]: $W$ and $v$ copied, $A = X^+Z_1$ recovered by minimum-norm
    /// least squares ([`FeatureNet::first_layer_weights`]; equals the original $A$ when $X$ has full
    /// column rank). Needs uniform layer weights $1/m$. Deeper features are implied by the weights;
    /// check them with [`FeatureNet::consistency_residual`].
    pub fn to_network(&self, data: &Dataset) -> Result<Network> {
        if let Some(l) = self.layers.iter().position(|p| !p.is_uniform()) {
            let w = self.layers[l].weights();
            let (lo, hi) = w.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
            return Err(CoreError::invalid(
                format!("weights of layer {} for a finite network", l + 1),
                format!("uniform weights 1/m = {:e}", 1.0 / self.width() as f64),
                format!("weights in [{lo:e}, {hi:e}]"),
            ));
        }
        let a = self.first_layer_weights(data)?;
        let w: Vec<MatRef<'_, f64>> = self.w.iter().map(|w| w.as_ref()).collect();
        Params::from_blocks(self.arch, a.as_ref(), &w, &self.v)
    }

    /// The first-layer cost of every unit, $r_1(\mathbf z_{1,j}) = \mathbf z_{1,j}^\top(XX^\top)^+\mathbf z_{1,j}$.
    pub fn first_layer_costs(&self, data: &Dataset) -> Result<Vec<f64>> {
        let map = FirstLayerMap::new(data.x.as_ref())?;
        (0..self.width())
            .map(|j| map.cost(self.layers[0].atom(j)))
            .collect()
    }

    /// The first-layer penalty as a linear functional of $p_1$: $\int r_1\,dp_1$ (math.md §3.2, §4.3).
    /// For a width-$m$ network with minimum-norm $A$ it equals $\frac1m\|A\|_F^2$.
    pub fn first_layer_penalty(&self, data: &Dataset) -> Result<f64> {
        let costs = self.first_layer_costs(data)?;
        Ok(costs
            .iter()
            .zip(self.layers[0].weights())
            .map(|(c, p)| c * p)
            .sum())
    }

    /// Degeneracy diagnostics: per-layer spread and minimum particle distance, and the singular values of
    /// $h(Z_L)\,\mathrm{diag}(p_L)^{1/2}$ ($= h(Z_L)/\sqrt m$ for a width-$m$ network).
    pub fn degeneracy(&self, activation: Activation) -> Result<Degeneracy> {
        let top = &self.layers[self.depth() - 1];
        let h = Mat::from_fn(top.dim(), top.len(), |i, j| {
            activation.value(top.atoms()[(i, j)]) * top.weights()[j].sqrt()
        });
        Ok(Degeneracy {
            spread: self.layers.iter().map(EmpiricalMeasure::spread).collect(),
            min_distance: self
                .layers
                .iter()
                .map(EmpiricalMeasure::min_pairwise_distance)
                .collect(),
            singular_values: {
                let mut sv = singular_values(h.as_ref())?;
                sv.resize(top.dim(), 0.0);
                sv
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Shape;
    use crate::rng::{normal_mat, normal_vec, rng};

    fn data(n: usize, d: usize, seed: u64) -> Dataset {
        let mut r = rng(seed, "test/data");
        let x = normal_mat(&mut r, n, d, 1.0 / (d as f64).sqrt());
        let y = (0..n).map(|i| (3.0 * x[(i, 0)]).sin() + 0.5).collect();
        Dataset::new(x, y).unwrap()
    }

    fn random_net(arch: Arch, d: usize, m: usize, depth: usize, seed: u64) -> Network {
        let shape = Shape::new(arch, d, m, depth).unwrap();
        let mut r = rng(seed, "test/net");
        let buf = normal_vec(&mut r, shape.len(), 1.0);
        Params::from_vec(shape, buf).unwrap()
    }

    #[test]
    fn view_of_network_is_consistent_and_predicts_alike() {
        let ds = data(7, 3, 1);
        for (arch, depth) in [(Arch::TwoLevel, 1), (Arch::Dnn, 3), (Arch::ResNet, 3)] {
            let net = random_net(arch, 3, 9, depth, 2);
            let f = FeatureNet::from_network(&ds, Activation::Tanh, &net).unwrap();
            assert_eq!((f.depth(), f.width(), f.n_points()), (depth, 9, 7));
            let res = f.consistency_residual(Activation::Tanh);
            assert_eq!(res.len(), depth - 1);
            assert!(res.iter().all(|&r| r < 1e-13), "{res:?}");
            let problem = Problem::new(
                ds.clone(),
                Activation::Tanh,
                crate::Loss::Squared,
                crate::Regularizer::l2(0.0),
            )
            .unwrap();
            let direct = problem.predict(&net);
            for (a, b) in f.predict(Activation::Tanh).iter().zip(&direct) {
                assert!((a - b).abs() < 1e-13);
            }
            let back = f.to_network(&ds).unwrap();
            for (a, b) in back.as_slice().iter().zip(net.as_slice()) {
                assert!((a - b).abs() < 1e-10, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn to_network_rejects_features_outside_range() {
        let ds = data(6, 2, 3);
        let net = random_net(Arch::Dnn, 2, 5, 2, 4);
        let mut f = FeatureNet::from_network(&ds, Activation::Tanh, &net).unwrap();
        // X is 6 × 2: a generic perturbation leaves range(X).
        f.layer_mut(0).atoms_mut()[(0, 0)] += 1e-3;
        let e = f.to_network(&ds).unwrap_err().to_string();
        assert!(e.contains("not in range(X)"), "{e}");
        let mut g = FeatureNet::from_network(&ds, Activation::Tanh, &net).unwrap();
        g.layer_mut(1).reweight(&[1.0, 2.0, 1.0, 1.0, 1.0]).unwrap();
        let e = g.to_network(&ds).unwrap_err().to_string();
        assert!(e.contains("uniform"), "{e}");
    }

    #[test]
    fn from_parts_validates_shapes() {
        let p = || EmpiricalMeasure::uniform(Mat::zeros(4, 3)).unwrap();
        let a = Mat::zeros(2, 3);
        assert!(FeatureNet::from_parts(
            Arch::Dnn,
            vec![p(), p()],
            a.clone(),
            vec![Mat::zeros(3, 3)],
            vec![0.0; 3]
        )
        .is_ok());
        let e = FeatureNet::from_parts(Arch::Dnn, vec![p(), p()], a.clone(), vec![], vec![0.0; 3])
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 matrices"), "{e}");
        let e = FeatureNet::from_parts(
            Arch::TwoLevel,
            vec![p(), p()],
            a.clone(),
            vec![Mat::zeros(3, 3)],
            vec![0.0; 3],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("two-level"), "{e}");
        let e = FeatureNet::from_parts(Arch::Dnn, vec![p()], a.clone(), vec![], vec![0.0; 2])
            .unwrap_err()
            .to_string();
        assert!(e.contains("(3,)"), "{e}");
        let e = FeatureNet::from_parts(Arch::Dnn, vec![], a, vec![], vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 layers"), "{e}");
    }

    #[test]
    fn first_layer_map_pseudo_inverse() {
        // Rank-deficient X: two equal columns.
        let x = Mat::from_fn(5, 3, |i, j| {
            if j == 2 {
                i as f64
            } else {
                (i * (j + 1)) as f64 * 0.5 + 1.0
            }
        });
        let map = FirstLayerMap::new(x.as_ref()).unwrap();
        assert_eq!(map.rank(), 2);
        let a0 = Mat::from_fn(3, 1, |i, _| [1.0, -2.0, 0.5][i]);
        let mut z = Mat::zeros(5, 1);
        matmul(
            z.as_mut(),
            Accum::Replace,
            x.as_ref(),
            a0.as_ref(),
            1.0,
            Par::Seq,
        );
        let a = map.weights(z.as_ref()).unwrap();
        let cost = map.cost(z.col(0)).unwrap();
        assert!((cost - a.squared_norm_l2()).abs() < 1e-10 * cost);
        assert!(cost <= a0.squared_norm_l2() + 1e-12);
        assert!(map.range_residual(z.col(0)).unwrap() < 1e-12);
        let off = Mat::from_fn(5, 1, |i, _| if i == 0 { 1.0 } else { 0.0 });
        assert!(map.range_residual(off.col(0)).unwrap() > 0.1);
        assert!(map.cost(Mat::<f64>::zeros(4, 1).col(0)).is_err());
    }
}
