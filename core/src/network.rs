//! Finite-width networks in mean-field scaling (math.md §2).
//!
//! Matrices store one unit per column: $Z_\ell \in \mathbb R^{N\times m}$.
//!
//! - **Standard DNN**: $Z_1 = XA$, $Z_{\ell+1} = \frac1m h(Z_\ell) W_\ell$ ($\ell = 1..L-1$),
//!   $\hat{\mathbf y} = \frac1m h(Z_L) v$, with $A \in \mathbb R^{d\times m}$, $W_\ell \in \mathbb R^{m\times m}$
//!   ($(W_\ell)_{jk}$ goes from unit $j$ of layer $\ell$ to unit $k$ of layer $\ell+1$), $v \in \mathbb R^m$.
//! - **ResNet**: $Z_{\ell+1} = Z_\ell + \frac1m h(Z_\ell) W_\ell$ (units aligned by the skip connection).
//! - **Two-level**: $L = 1$, $f(x) = \frac1m\sum_j v_j h(a_j^\top x)$.
//!
//! The parameters of a network live in one flat buffer ([`Params`]) — $A$, then $W_1..W_{L-1}$, then $v$,
//! each column-major — so that integrators work on a plain `&[f64]` and GD is one axpy.
//!
//! [`Problem`] holds the data, activation, loss and regularizer and evaluates `forward`, `objective`
//! and `velocities`, the scaled negative gradients
//! $$\dot A = -m\,\partial_A J,\quad \dot W_\ell = -m^2\,\partial_{W_\ell} J,\quad \dot v = -m\,\partial_v J.$$
use crate::activation::Activation;
use crate::data::Dataset;
use crate::error::{CoreError, Result};
use crate::loss::Loss;
use crate::regularizer::Regularizer;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use std::fmt;
use std::str::FromStr;

/// The architecture of a finite-width network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// $L = 1$: $f = \frac1m h(XA)v$.
    TwoLevel,
    /// The standard DNN.
    Dnn,
    /// The ResNet with skip connections $Z_{\ell+1} = Z_\ell + \frac1m h(Z_\ell)W_\ell$.
    ResNet,
}

impl Arch {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::TwoLevel => "two-level",
            Self::Dnn => "dnn",
            Self::ResNet => "resnet",
        }
    }
    /// Whether layers are joined by skip connections.
    pub fn is_resnet(self) -> bool {
        self == Self::ResNet
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "two-level" => Ok(Self::TwoLevel),
            "dnn" => Ok(Self::Dnn),
            "resnet" => Ok(Self::ResNet),
            _ => Err(CoreError::Unknown {
                kind: "architecture",
                name: s.into(),
                expected: "two-level, dnn, resnet".into(),
            }),
        }
    }
}

/// The shape of a network: input dimension $d$, width $m$, number of hidden layers $L$.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Architecture.
    pub arch: Arch,
    /// Input dimension $d$ (columns of $X$, including a bias column if any).
    pub d: usize,
    /// Width $m$ (units per hidden layer).
    pub m: usize,
    /// Number of hidden layers $L \ge 1$ (two-level: 1).
    pub depth: usize,
}

impl Shape {
    /// A validated shape. A two-level network must have depth 1; $d, m, L \ge 1$.
    pub fn new(arch: Arch, d: usize, m: usize, depth: usize) -> Result<Self> {
        if d == 0 {
            return Err(CoreError::invalid("input dimension d", "d >= 1", d));
        }
        if m == 0 {
            return Err(CoreError::invalid("width m", "m >= 1", m));
        }
        if depth == 0 {
            return Err(CoreError::invalid("depth L", "L >= 1", depth));
        }
        if arch == Arch::TwoLevel && depth != 1 {
            return Err(CoreError::invalid(
                "depth of a two-level network",
                "depth 1",
                depth,
            ));
        }
        Ok(Self { arch, d, m, depth })
    }
    /// Number of middle weight matrices, $L - 1$.
    pub fn n_w(&self) -> usize {
        self.depth - 1
    }
    /// Total number of parameters, $dm + (L-1)m^2 + m$.
    pub fn len(&self) -> usize {
        self.d * self.m + self.n_w() * self.m * self.m + self.m
    }
    /// Never true for a validated shape (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Range of $A$ in the flat buffer.
    pub fn a_range(&self) -> std::ops::Range<usize> {
        0..self.d * self.m
    }
    /// Range of $W_\ell$ (`l` = 0 for $W_1$) in the flat buffer.
    pub fn w_range(&self, l: usize) -> std::ops::Range<usize> {
        assert!(l < self.n_w(), "W index {l} out of range {}", self.n_w());
        let s = self.d * self.m + l * self.m * self.m;
        s..s + self.m * self.m
    }
    /// Range of $v$ in the flat buffer.
    pub fn v_range(&self) -> std::ops::Range<usize> {
        let s = self.d * self.m + self.n_w() * self.m * self.m;
        s..s + self.m
    }
    /// The per-entry metric weight of the energy identity: $1/m$ on $A, v$, $1/m^2$ on $W$.
    ///
    /// With it, $\frac{dJ}{dt} = -\|\dot\theta\|^2_{\rm scaled}$ (see [`Params::scaled_sq_norm`]).
    pub fn metric(&self) -> (f64, f64) {
        let m = self.m as f64;
        (1.0 / m, 1.0 / (m * m))
    }
}

/// The parameters $(A, W_1..W_{L-1}, v)$ of a network in one flat buffer, column-major blocks.
///
/// A velocity (a scaled negative gradient) has the same layout and is a `Params` too.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    shape: Shape,
    data: Vec<f64>,
}

/// A finite-width network is its parameters.
pub type Network = Params;

impl Params {
    /// All-zero parameters.
    pub fn zeros(shape: Shape) -> Self {
        Self {
            shape,
            data: vec![0.0; shape.len()],
        }
    }
    /// Wrap a flat buffer; errors if its length is not `shape.len()`.
    pub fn from_vec(shape: Shape, data: Vec<f64>) -> Result<Self> {
        if data.len() != shape.len() {
            return Err(CoreError::shape(
                "parameter buffer",
                format!("{} entries", shape.len()),
                format!("{} entries", data.len()),
            ));
        }
        Ok(Self { shape, data })
    }
    /// Build from blocks: $A$ ($d\times m$), $W_\ell$ ($m \times m$ each), $v$ ($m$).
    pub fn from_blocks(
        arch: Arch,
        a: MatRef<'_, f64>,
        w: &[MatRef<'_, f64>],
        v: &[f64],
    ) -> Result<Self> {
        let (d, m) = (a.nrows(), a.ncols());
        let shape = Shape::new(arch, d, m, w.len() + 1)?;
        let mut p = Self::zeros(shape);
        if v.len() != m {
            return Err(CoreError::shape(
                "v",
                format!("({m},)"),
                format!("({},)", v.len()),
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
            p.w_mut(l).copy_from(wl);
        }
        p.a_mut().copy_from(a);
        p.v_mut().copy_from_slice(v);
        Ok(p)
    }
    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }
    /// The flat buffer.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }
    /// The flat buffer, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        &mut self.data
    }
    /// Consume into the flat buffer.
    pub fn into_vec(self) -> Vec<f64> {
        self.data
    }
    /// $A$ ($d \times m$).
    pub fn a(&self) -> MatRef<'_, f64> {
        let s = self.shape;
        MatRef::from_column_major_slice(&self.data[s.a_range()], s.d, s.m)
    }
    /// $A$, mutably.
    pub fn a_mut(&mut self) -> MatMut<'_, f64> {
        let s = self.shape;
        MatMut::from_column_major_slice_mut(&mut self.data[s.a_range()], s.d, s.m)
    }
    /// $W_{l+1}$ ($m\times m$), `l` from 0.
    pub fn w(&self, l: usize) -> MatRef<'_, f64> {
        let s = self.shape;
        MatRef::from_column_major_slice(&self.data[s.w_range(l)], s.m, s.m)
    }
    /// $W_{l+1}$, mutably.
    pub fn w_mut(&mut self, l: usize) -> MatMut<'_, f64> {
        let s = self.shape;
        MatMut::from_column_major_slice_mut(&mut self.data[s.w_range(l)], s.m, s.m)
    }
    /// $v$.
    pub fn v(&self) -> &[f64] {
        &self.data[self.shape.v_range()]
    }
    /// $v$, mutably.
    pub fn v_mut(&mut self) -> &mut [f64] {
        let r = self.shape.v_range();
        &mut self.data[r]
    }
    /// $\frac1m\|A\|^2 + \frac1{m^2}\sum_\ell\|W_\ell\|^2 + \frac1m\|v\|^2$: the squared norm in the metric
    /// of the scaled gradient flow. For a velocity it is the dissipation rate $-dJ/dt$.
    pub fn scaled_sq_norm(&self) -> f64 {
        let s = self.shape;
        let (wa, ww) = s.metric();
        let sq = |r: std::ops::Range<usize>| self.data[r].iter().map(|x| x * x).sum::<f64>();
        let mut acc = wa * sq(s.a_range()) + wa * sq(s.v_range());
        for l in 0..s.n_w() {
            acc += ww * sq(s.w_range(l));
        }
        acc
    }
    /// `self += alpha * other` (one GD step with `other` a velocity and `alpha` = η).
    pub fn axpy(&mut self, alpha: f64, other: &Params) {
        assert_eq!(self.shape, other.shape, "axpy on different shapes");
        for (x, y) in self.data.iter_mut().zip(&other.data) {
            *x += alpha * y;
        }
    }
    /// Check every parameter is finite.
    pub fn ensure_finite(&self) -> Result<()> {
        crate::error::ensure_finite("network parameters", self.data.iter().copied())
    }
}

/// Buffers of one forward/backward pass, reused across steps so the hot path allocates nothing.
///
/// After [`Problem::forward_into`]: `z[ℓ]` $= Z_{\ell+1}$, `hz[ℓ]` $= h(Z_{\ell+1})$,
/// `dz[ℓ]` $= h'(Z_{\ell+1})$ (all $N\times m$ column-major), `yhat` $=\hat{\mathbf y}$, `r` the residual.
#[derive(Clone, Debug)]
pub struct Workspace {
    shape: Shape,
    n: usize,
    /// Features $Z_\ell$, one $N\times m$ column-major buffer per layer.
    pub z: Vec<Vec<f64>>,
    /// $h(Z_\ell)$.
    pub hz: Vec<Vec<f64>>,
    /// $h'(Z_\ell)$.
    pub dz: Vec<Vec<f64>>,
    /// Backward features $G_\ell = m\,\partial J/\partial Z_\ell$ (filled by `velocities_into`).
    pub g: Vec<Vec<f64>>,
    /// Predictions $\hat{\mathbf y}$.
    pub yhat: Vec<f64>,
    /// Residual $\mathbf r$.
    pub r: Vec<f64>,
}

impl Workspace {
    /// Buffers for networks of `shape` on `n` points.
    pub fn new(shape: Shape, n: usize) -> Self {
        let nm = n * shape.m;
        let layers = || vec![vec![0.0; nm]; shape.depth];
        Self {
            shape,
            n,
            z: layers(),
            hz: layers(),
            dz: layers(),
            g: layers(),
            yhat: vec![0.0; n],
            r: vec![0.0; n],
        }
    }
    /// $Z_{l+1}$ as a matrix view.
    pub fn z(&self, l: usize) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.z[l], self.n, self.shape.m)
    }
    /// $h(Z_{l+1})$ as a matrix view.
    pub fn hz(&self, l: usize) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.hz[l], self.n, self.shape.m)
    }
    /// $G_{l+1}$ as a matrix view.
    pub fn g(&self, l: usize) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.g[l], self.n, self.shape.m)
    }
    /// The shape these buffers serve.
    pub fn shape(&self) -> Shape {
        self.shape
    }
}

/// A training problem: data, activation, loss and regularizer. It only evaluates; GD, flows and
/// solvers live elsewhere.
#[derive(Clone, Debug)]
pub struct Problem {
    /// The data.
    pub data: Dataset,
    /// Activation $h$.
    pub activation: Activation,
    /// Loss $\phi$.
    pub loss: Loss,
    /// Regularizer.
    pub reg: Regularizer,
}

impl Problem {
    /// A validated problem (finite data, $N \ge 1$, valid regularizer).
    pub fn new(
        data: Dataset,
        activation: Activation,
        loss: Loss,
        reg: Regularizer,
    ) -> Result<Self> {
        data.validate()?;
        reg.validate()?;
        if loss == Loss::Logistic {
            if let Some(y) = data.y.iter().find(|&&y| y != 1.0 && y != -1.0) {
                return Err(CoreError::invalid(
                    "targets for the logistic loss",
                    "labels in {-1, +1}",
                    y,
                ));
            }
        }
        Ok(Self {
            data,
            activation,
            loss,
            reg,
        })
    }

    /// Number of data points $N$.
    pub fn n(&self) -> usize {
        self.data.y.len()
    }

    /// Check that a network fits this problem's data ($A$ has $d$ rows).
    pub fn check_network(&self, net: &Network) -> Result<()> {
        let d = self.data.x.ncols();
        if net.shape().d != d {
            return Err(CoreError::shape(
                "first-layer weights A",
                format!("{d} rows (the data's input dimension)"),
                format!("{} rows", net.shape().d),
            ));
        }
        Ok(())
    }

    /// Forward pass into `ws`: features, $h$, $h'$, predictions and residual. Returns the risk.
    pub fn forward_into(&self, net: &Network, ws: &mut Workspace, par: Par) -> f64 {
        let s = net.shape();
        assert_eq!(ws.shape, s, "workspace shape differs from network shape");
        let n = self.n();
        let m = s.m;
        let inv_m = 1.0 / m as f64;
        // Z_1 = X A
        matmul(
            MatMut::from_column_major_slice_mut(&mut ws.z[0], n, m),
            Accum::Replace,
            self.data.x.as_ref(),
            net.a(),
            1.0,
            par,
        );
        for l in 0..s.depth {
            self.activate_layer(ws, l);
            if l + 1 < s.depth {
                let (lo, hi) = ws.z.split_at_mut(l + 1);
                let next = &mut hi[0];
                let accum = if s.arch.is_resnet() {
                    next.copy_from_slice(&lo[l]);
                    Accum::Add
                } else {
                    Accum::Replace
                };
                matmul(
                    MatMut::from_column_major_slice_mut(next, n, m),
                    accum,
                    MatRef::from_column_major_slice(&ws.hz[l], n, m),
                    net.w(l),
                    inv_m,
                    par,
                );
            }
        }
        self.output_into(net, ws, par)
    }

    /// $h(Z_\ell)$ and $h'(Z_\ell)$ of layer `l` from `ws.z[l]`.
    fn activate_layer(&self, ws: &mut Workspace, l: usize) {
        let act = self.activation;
        for ((z, h), dh) in ws.z[l]
            .iter()
            .zip(ws.hz[l].iter_mut())
            .zip(ws.dz[l].iter_mut())
        {
            (*h, *dh) = act.value_deriv(*z);
        }
    }

    /// Complete a forward pass from features already in `ws.z` (all layers): fills $h(Z_\ell)$,
    /// $h'(Z_\ell)$, $\hat{\mathbf y}$ and $\mathbf r$ without recomputing $Z$ from the weights.
    /// This is what the Lagrangian neural feature flow needs (features integrated, not recomputed).
    /// Returns the risk.
    pub fn forward_from_features(&self, net: &Network, ws: &mut Workspace, par: Par) -> f64 {
        assert_eq!(
            ws.shape,
            net.shape(),
            "workspace shape differs from network shape"
        );
        for l in 0..ws.shape.depth {
            self.activate_layer(ws, l);
        }
        self.output_into(net, ws, par)
    }

    /// $\hat{\mathbf y} = \frac1m h(Z_L)v$ and the residual from `ws.hz`; returns the risk.
    fn output_into(&self, net: &Network, ws: &mut Workspace, par: Par) -> f64 {
        let s = net.shape();
        let (n, m) = (self.n(), s.m);
        let inv_m = 1.0 / m as f64;
        let hl = MatRef::from_column_major_slice(&ws.hz[s.depth - 1], n, m);
        matmul(
            MatMut::from_column_major_slice_mut(&mut ws.yhat, n, 1),
            Accum::Replace,
            hl,
            MatRef::from_column_major_slice(net.v(), m, 1),
            inv_m,
            par,
        );
        self.loss.residual_into(&ws.yhat, &self.data.y, &mut ws.r);
        self.loss.risk(&ws.yhat, &self.data.y)
    }

    /// The objective $J = \mathcal R(\hat{\mathbf y}) + $ regularizer, reusing `ws`.
    pub fn objective_with(&self, net: &Network, ws: &mut Workspace, par: Par) -> f64 {
        self.forward_into(net, ws, par) + self.reg.value(net)
    }

    /// The objective $J$ (allocating).
    pub fn objective(&self, net: &Network) -> f64 {
        let mut ws = Workspace::new(net.shape(), self.n());
        self.objective_with(net, &mut ws, Par::Seq)
    }

    /// The risk $\mathcal R(\hat{\mathbf y})$ alone (allocating).
    pub fn risk(&self, net: &Network) -> f64 {
        let mut ws = Workspace::new(net.shape(), self.n());
        self.forward_into(net, &mut ws, Par::Seq)
    }

    /// Predictions $\hat{\mathbf y}$ on the training inputs (allocating).
    pub fn predict(&self, net: &Network) -> Vec<f64> {
        let mut ws = Workspace::new(net.shape(), self.n());
        self.forward_into(net, &mut ws, Par::Seq);
        ws.yhat
    }

    /// Velocities (scaled negative gradients) into `vel`; returns the objective $J$.
    ///
    /// With backward features $G_\ell = m\,\partial J/\partial Z_\ell$:
    /// $$G_L = h'(Z_L)\odot(\mathbf r v^\top),\qquad G_\ell = [G_{\ell+1}]_{\rm Res} + h'(Z_\ell)\odot\big(\tfrac1m G_{\ell+1}W_\ell^\top\big),$$
    /// $$\dot A = -X^\top G_1 - m\,\partial_A\Omega,\quad \dot W_\ell = -h(Z_\ell)^\top G_{\ell+1} - m^2\partial_{W_\ell}\Omega,\quad \dot v = -h(Z_L)^\top\mathbf r - m\,\partial_v\Omega,$$
    /// where $\Omega$ is the regularizer (L2: $-m\partial_A\Omega = -\lambda A$ etc.).
    pub fn velocities_into(
        &self,
        net: &Network,
        ws: &mut Workspace,
        vel: &mut Params,
        par: Par,
    ) -> f64 {
        assert_eq!(
            vel.shape(),
            net.shape(),
            "velocity shape differs from network shape"
        );
        let risk = self.forward_into(net, ws, par);
        risk + self.backward_into(net, ws, vel, par)
    }

    /// The backward half of [`Problem::velocities_into`]: from a completed forward pass in `ws`
    /// (features, $h$, $h'$, residual), fill the backward features `ws.g` and the velocities `vel`.
    /// Returns the regularizer value $\Omega(\theta)$.
    pub fn backward_into(
        &self,
        net: &Network,
        ws: &mut Workspace,
        vel: &mut Params,
        par: Par,
    ) -> f64 {
        let s = net.shape();
        assert_eq!(vel.shape(), s, "velocity shape differs from network shape");
        let n = self.n();
        let m = s.m;
        let inv_m = 1.0 / m as f64;
        let top = s.depth - 1;
        // G_L = h'(Z_L) ⊙ (r vᵀ)
        {
            let v = net.v();
            let g = &mut ws.g[top];
            let dz = &ws.dz[top];
            for ((gcol, dcol), &vk) in g.chunks_exact_mut(n).zip(dz.chunks_exact(n)).zip(v) {
                for ((gi, &di), &ri) in gcol.iter_mut().zip(dcol).zip(&ws.r) {
                    *gi = di * ri * vk;
                }
            }
        }
        for l in (0..top).rev() {
            // G_l = [G_{l+1}]_Res + h'(Z_l) ⊙ ((1/m) G_{l+1} W_lᵀ)
            let (lo, hi) = ws.g.split_at_mut(l + 1);
            let gl = &mut lo[l];
            let gnext = &hi[0];
            matmul(
                MatMut::from_column_major_slice_mut(gl, n, m),
                Accum::Replace,
                MatRef::from_column_major_slice(gnext, n, m),
                net.w(l).transpose(),
                inv_m,
                par,
            );
            if s.arch.is_resnet() {
                for ((g, &d), &gn) in gl.iter_mut().zip(&ws.dz[l]).zip(gnext.iter()) {
                    *g = gn + d * *g;
                }
            } else {
                for (g, &d) in gl.iter_mut().zip(&ws.dz[l]) {
                    *g *= d;
                }
            }
        }
        // Regularizer part first (it writes every entry), then accumulate the data part.
        let reg = self.reg.velocity_into(net, vel);
        // Ȧ -= Xᵀ G_1
        matmul(
            vel.a_mut(),
            Accum::Add,
            self.data.x.transpose(),
            MatRef::from_column_major_slice(&ws.g[0], n, m),
            -1.0,
            par,
        );
        // Ẇ_l -= h(Z_l)ᵀ G_{l+1}
        for l in 0..s.n_w() {
            matmul(
                vel.w_mut(l),
                Accum::Add,
                MatRef::from_column_major_slice(&ws.hz[l], n, m).transpose(),
                MatRef::from_column_major_slice(&ws.g[l + 1], n, m),
                -1.0,
                par,
            );
        }
        // v̇ -= h(Z_L)ᵀ r
        {
            let hl = MatRef::from_column_major_slice(&ws.hz[top], n, m);
            let vv = vel.v_mut();
            let vlen = vv.len();
            matmul(
                MatMut::from_column_major_slice_mut(vv, vlen, 1),
                Accum::Add,
                hl.transpose(),
                MatRef::from_column_major_slice(&ws.r, n, 1),
                -1.0,
                par,
            );
        }
        reg
    }

    /// Velocities (allocating twin of [`Problem::velocities_into`]).
    pub fn velocities(&self, net: &Network) -> Params {
        let mut ws = Workspace::new(net.shape(), self.n());
        let mut vel = Params::zeros(net.shape());
        self.velocities_into(net, &mut ws, &mut vel, Par::Seq);
        vel
    }

    /// One step of scaled GD, $\theta \leftarrow \theta + \eta\dot\theta$; returns $J$ before the step.
    pub fn gd_step(
        &self,
        net: &mut Network,
        eta: f64,
        ws: &mut Workspace,
        vel: &mut Params,
        par: Par,
    ) -> f64 {
        let j = self.velocities_into(net, ws, vel, par);
        net.axpy(eta, vel);
        j
    }
}
