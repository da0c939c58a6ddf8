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
use crate::regularizer::{RegScratch, Regularizer};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

mod backward;
pub(crate) use backward::w_sq_norm;

/// The architecture of a finite-width network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// $L = 1$: $f = \frac1m h(XA)v$.
    TwoLevel,
    /// The standard DNN.
    Dnn,
    /// The ResNet with skip connections $Z_{\ell+1} = Z_\ell + \frac1m h(Z_\ell)W_\ell$.
    /// Spelled `resnet` in files, as on the command line (`res-net`, kebab-case of the variant, is read
    /// too: earlier files spelled it so).
    #[serde(rename = "resnet", alias = "res-net")]
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
    /// A parameter buffer of `len` entries fits this shape; else an error naming both lengths.
    fn check_len(&self, len: usize) -> Result<()> {
        if len != self.len() {
            return Err(CoreError::shape(
                "parameter buffer",
                format!("{} entries", self.len()),
                format!("{len} entries"),
            ));
        }
        Ok(())
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
    /// Floating-point operations of the matrix products of one velocity evaluation (math.md §2) on `n`
    /// points — and of one GD step, which does the same products:
    /// $2Nmd$ ($Z_1 = XA$) $+\ 2Nmd$ ($\dot A$) $+\ (L-1)\cdot 3\cdot 2Nm^2$ (forward, backward, $\dot W_\ell$)
    /// $+\ 2Nm$ ($\hat{\mathbf y}$) $+\ 2Nm$ ($\dot v$). The count benches and comparisons report rates on.
    pub fn gemm_flops(&self, n: usize) -> u64 {
        let (n, m, d) = (n as u64, self.m as u64, self.d as u64);
        4 * n * m * d + 6 * n * m * m * self.n_w() as u64 + 4 * n * m
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

/// Borrowed parameters: a shape and a flat buffer of `shape.len()` entries in the layout of [`Params`].
///
/// What the hot path reads. A [`Params`] gives one ([`Params::view`]), and so does any slice of the right
/// length ([`ParamsRef::new`]) — an integrator's state, for instance, without copying it into a `Params`.
#[derive(Clone, Copy, Debug)]
pub struct ParamsRef<'a> {
    shape: Shape,
    data: &'a [f64],
}

impl<'a> ParamsRef<'a> {
    /// View `data` as parameters of `shape`; errors if its length is not `shape.len()`.
    pub fn new(shape: Shape, data: &'a [f64]) -> Result<Self> {
        shape.check_len(data.len())?;
        Ok(Self { shape, data })
    }
    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }
    /// The flat buffer.
    pub fn as_slice(&self) -> &'a [f64] {
        self.data
    }
    /// $A$ ($d \times m$).
    pub fn a(&self) -> MatRef<'a, f64> {
        let s = self.shape;
        MatRef::from_column_major_slice(&self.data[s.a_range()], s.d, s.m)
    }
    /// $W_{l+1}$ ($m\times m$), `l` from 0.
    pub fn w(&self, l: usize) -> MatRef<'a, f64> {
        let s = self.shape;
        MatRef::from_column_major_slice(&self.data[s.w_range(l)], s.m, s.m)
    }
    /// $v$.
    pub fn v(&self) -> &'a [f64] {
        &self.data[self.shape.v_range()]
    }
}

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
        shape.check_len(data.len())?;
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
    /// Borrowed view.
    pub fn view(&self) -> ParamsRef<'_> {
        ParamsRef {
            shape: self.shape,
            data: &self.data,
        }
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
        self.view().a()
    }
    /// $A$, mutably.
    pub fn a_mut(&mut self) -> MatMut<'_, f64> {
        let s = self.shape;
        MatMut::from_column_major_slice_mut(&mut self.data[s.a_range()], s.d, s.m)
    }
    /// $W_{l+1}$ ($m\times m$), `l` from 0.
    pub fn w(&self, l: usize) -> MatRef<'_, f64> {
        self.view().w(l)
    }
    /// $W_{l+1}$, mutably.
    pub fn w_mut(&mut self, l: usize) -> MatMut<'_, f64> {
        let s = self.shape;
        MatMut::from_column_major_slice_mut(&mut self.data[s.w_range(l)], s.m, s.m)
    }
    /// $v$.
    pub fn v(&self) -> &[f64] {
        self.view().v()
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

/// Products with fewer floating-point operations than this run [`Par::Seq`] whatever `par` asks for:
/// about 0.1 ms of work on one core, below which handing tiles to rayon costs more than it saves
/// (measured: `Par::rayon` on a 256-wide layer with N = 16 roughly doubles the CPU time).
pub const PAR_MIN_FLOPS: usize = 1 << 22;

/// `par`, or [`Par::Seq`] for a product of fewer than [`PAR_MIN_FLOPS`] flops.
pub fn par_for(par: Par, flops: usize) -> Par {
    if flops < PAR_MIN_FLOPS || par.degree() <= 1 {
        Par::Seq
    } else {
        par
    }
}

/// Columns per tile of the $N\times m$ passes (features, backward features), and rows per tile of the
/// backward pass over $W_\ell$. A tile's product and its
/// elementwise pass (activation, $h'\odot$) run on one thread while the tile is in cache.
pub(crate) fn nm_tile_cols(m: usize) -> usize {
    m.min(256)
}

/// Run `body` on fixed tiles of one or more buffers: `(buffer, elements per tile)` pairs, zipped tile by tile
/// and numbered from 0. Tiles run in parallel on rayon's pool unless `par` is sequential. Tile boundaries
/// depend only on the sizes, never on the thread count, and each tile is computed sequentially, so the
/// results are identical for every number of threads.
macro_rules! for_tiles {
    ($par:expr, $body:expr; ($b0:expr, $l0:expr) $(, ($b:expr, $l:expr))* $(,)?) => {{
        let body = $body;
        if matches!($par, Par::Seq) {
            $b0.chunks_mut($l0)$(.zip($b.chunks_mut($l)))*.enumerate().for_each(body)
        } else {
            $b0.par_chunks_mut($l0)$(.zip($b.par_chunks_mut($l)))*.enumerate().for_each(body)
        }
    }};
}

thread_local! {
    /// Per-thread scratch of one $\dot W$ tile for the fused GD step (allocated once per thread).
    static TILE: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on a scratch slice of `len` entries (per-thread, reused across calls).
fn with_tile_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    TILE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// faer's matmul, then [`clear_upper`]. Every product of the hot path goes through here.
#[inline]
fn mm(
    dst: MatMut<'_, f64>,
    accum: Accum,
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    alpha: f64,
    par: Par,
) {
    matmul(dst, accum, lhs, rhs, alpha, par);
    clear_upper();
}

/// Clear the upper halves of the vector registers (`vzeroupper`) after a faer product.
///
/// faer's AVX-512 kernels can return with that state dirty, and on recent Intel cores every SSE
/// instruction that follows — libm's `tanh`, our own elementwise loops (compiled for baseline x86-64) —
/// then pays a merge penalty: measured here, `tanh` over a 64×2048 tile took 53 ms right after a product
/// and 2.3 ms after `vzeroupper`. A no-op on other architectures and on CPUs without AVX.
#[inline]
pub fn clear_upper() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX (checked above), so the instruction exists. `vzeroupper`
            // only zeroes bits 128.. of ymm0–15; the compiler knows this intrinsic clobbers them and keeps
            // no live value there across it.
            unsafe { std::arch::x86_64::_mm256_zeroupper() }
        }
    }
}

/// $h(z)$ and $h'(z)$ of every entry in one pass.
#[inline]
fn activate(act: Activation, z: &[f64], h: &mut [f64], dh: &mut [f64]) {
    for ((z, h), dh) in z.iter().zip(h.iter_mut()).zip(dh.iter_mut()) {
        (*h, *dh) = act.value_deriv(*z);
    }
}

/// A numbered tile of three zipped buffers (features, $h$, $h'$).
type Tile3<'a> = (usize, ((&'a mut [f64], &'a mut [f64]), &'a mut [f64]));

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
    /// Regularizer buffers (group-norm usage means).
    reg: RegScratch,
    /// Per-tile sums of the $m\times m$ passes: $\|W\|^2$ and $\|\dot W\|^2$ of each tile.
    tile_sums: Vec<f64>,
    /// $\dot A$ and $\dot v$ of the fused GD step ($dm + m$ entries).
    small: Vec<f64>,
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
            reg: RegScratch::default(),
            tile_sums: vec![0.0; 2 * shape.m.div_ceil(nm_tile_cols(shape.m))],
            small: vec![0.0; shape.d * shape.m + shape.m],
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
    /// Bytes held by the buffers (for memory accounting).
    pub fn bytes(&self) -> usize {
        let layers = 4 * self.shape.depth * self.n * self.shape.m;
        8 * (layers + 2 * self.n + self.tile_sums.len() + self.small.len() + 4 * self.shape.m)
    }
}

/// What one fused GD step ([`Problem::gd_step_fused`]) reports about the parameters it started from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// The objective $J(\theta)$ before the step.
    pub objective: f64,
    /// The dissipation rate $\|\dot\theta\|^2_{\rm scaled} = -\frac{dJ}{dt}$ before the step
    /// (what [`Params::scaled_sq_norm`] gives for the velocity, summed tile by tile).
    pub dissipation: f64,
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

    /// The same activation, loss and regularizer on other data (held-out evaluation, [`crate::split`]).
    pub fn on_data(&self, data: Dataset) -> Result<Self> {
        Self::new(data, self.activation, self.loss, self.reg)
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
    ///
    /// Each layer is one pass over column tiles of $Z_{\ell+1}$: the tile's product
    /// $\frac1m h(Z_\ell)W_\ell[:,\text{tile}]$ (plus $Z_\ell[:,\text{tile}]$ for the ResNet) and, while it is in
    /// cache, $h$ and $h'$ of the tile.
    pub fn forward_into(&self, net: &Network, ws: &mut Workspace, par: Par) -> f64 {
        self.forward_at(net.view(), ws, par)
    }

    /// [`Problem::forward_into`] at borrowed parameters.
    pub fn forward_at(&self, net: ParamsRef<'_>, ws: &mut Workspace, par: Par) -> f64 {
        let s = net.shape();
        assert_eq!(ws.shape, s, "workspace shape differs from network shape");
        let n = self.n();
        let m = s.m;
        let inv_m = 1.0 / m as f64;
        let act = self.activation;
        let tc = nm_tile_cols(m);
        // Z_1 = X A, then h, h'.
        {
            let x = self.data.x.as_ref();
            let a = net.a();
            let p = par_for(par, 2 * n * s.d * m);
            for_tiles!(p, |(t, ((z, h), dh)): Tile3<'_>| {
                let w = z.len() / n;
                mm(
                    MatMut::from_column_major_slice_mut(z, n, w),
                    Accum::Replace,
                    x,
                    a.subcols(t * tc, w),
                    1.0,
                    Par::Seq,
                );
                activate(act, z, h, dh);
            }; (ws.z[0], n * tc), (ws.hz[0], n * tc), (ws.dz[0], n * tc));
        }
        let p = par_for(par, 2 * n * m * m);
        for l in 0..s.depth - 1 {
            // Z_{l+1} = [Z_l]_Res + (1/m) h(Z_l) W_l, then h, h'.
            let (zlo, zhi) = ws.z.split_at_mut(l + 1);
            let (hlo, hhi) = ws.hz.split_at_mut(l + 1);
            let zl = &zlo[l];
            let hl = MatRef::from_column_major_slice(&hlo[l], n, m);
            let wl = net.w(l);
            let resnet = s.arch.is_resnet();
            for_tiles!(p, |(t, ((z, h), dh)): Tile3<'_>| {
                let w = z.len() / n;
                let c0 = t * tc;
                let accum = if resnet {
                    z.copy_from_slice(&zl[c0 * n..c0 * n + z.len()]);
                    Accum::Add
                } else {
                    Accum::Replace
                };
                mm(
                    MatMut::from_column_major_slice_mut(z, n, w),
                    accum,
                    hl,
                    wl.subcols(c0, w),
                    inv_m,
                    Par::Seq,
                );
                activate(act, z, h, dh);
            }; (zhi[0], n * tc), (hhi[0], n * tc), (ws.dz[l + 1], n * tc));
        }
        self.output_into(net, ws)
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
        let net = net.view();
        let act = self.activation;
        let len = self.n() * nm_tile_cols(ws.shape.m);
        // An activation costs some tens of flops.
        let p = par_for(par, 32 * self.n() * ws.shape.m);
        for l in 0..ws.shape.depth {
            let z = &ws.z[l];
            for_tiles!(p, |(t, (h, dh)): (usize, (&mut [f64], &mut [f64]))| {
                activate(act, &z[t * len..t * len + h.len()], h, dh);
            }; (ws.hz[l], len), (ws.dz[l], len));
        }
        self.output_into(net, ws)
    }

    /// $\hat{\mathbf y} = \frac1m h(Z_L)v$ and the residual from `ws.hz`; returns the risk.
    fn output_into(&self, net: ParamsRef<'_>, ws: &mut Workspace) -> f64 {
        let s = net.shape();
        let (n, m) = (self.n(), s.m);
        let inv_m = 1.0 / m as f64;
        let hl = MatRef::from_column_major_slice(&ws.hz[s.depth - 1], n, m);
        mm(
            MatMut::from_column_major_slice_mut(&mut ws.yhat, n, 1),
            Accum::Replace,
            hl,
            MatRef::from_column_major_slice(net.v(), m, 1),
            inv_m,
            Par::Seq,
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
        self.velocities_at(net.view(), ws, vel.as_mut_slice(), par)
    }

    /// [`Problem::velocities_into`] at borrowed parameters, into a flat buffer in the layout of [`Params`]
    /// (what an integrator's vector field needs: no copy in, no copy out).
    pub fn velocities_at(
        &self,
        net: ParamsRef<'_>,
        ws: &mut Workspace,
        vel: &mut [f64],
        par: Par,
    ) -> f64 {
        let risk = self.forward_at(net, ws, par);
        risk + self.backward_at(net, ws, vel, par)
    }

    /// Velocities (allocating twin of [`Problem::velocities_into`]).
    pub fn velocities(&self, net: &Network) -> Params {
        let mut ws = Workspace::new(net.shape(), self.n());
        let mut vel = Params::zeros(net.shape());
        self.velocities_into(net, &mut ws, &mut vel, Par::Seq);
        vel
    }

    /// One step of scaled GD, $\theta \leftarrow \theta + \eta\dot\theta$; returns $J$ before the step.
    /// Leaves the velocity $\dot\theta$ in `vel`. [`Problem::gd_step_fused`] computes the same new
    /// parameters (bit for bit) without materializing the velocity.
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
