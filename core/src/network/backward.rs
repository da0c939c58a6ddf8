//! The backward pass: backward features $G_\ell$ and the velocities of the middle layers, in one pass over
//! row tiles of each $W_\ell$, shared by [`Problem::backward_into`] (velocities), [`Problem::gd_step_fused`]
//! (GD step without a velocity buffer) and [`Problem::step_report`] (objective and dissipation only).
//!
//! Per row tile $R$ of $W_\ell$ and column chunk $C$, while $W_\ell[R,C]$ is in cache:
//! $(G_{\ell+1}W_\ell^\top)[:,R] \mathrel{+}= \frac1m (W_\ell[R,C]\,G_{\ell+1}[:,C]^\top)^\top$ and
//! $\dot W_\ell[R,C] = -h(Z_\ell)[:,R]^\top G_{\ell+1}[:,C] + r(W_\ell[R,C])$, which the pass writes, adds to
//! $W_\ell$ (GD) or only sums. So a GD step reads $W_\ell$ twice (forward, backward) and writes it once.
//! Tiles run in parallel, each sequentially, with boundaries fixed by the sizes: results are identical for
//! every thread count.
use super::{
    mm, nm_tile_cols, par_for, with_tile_scratch, Network, Params, ParamsRef, Problem, Shape,
    StepReport, Workspace,
};
use crate::regularizer::{combine8, sum_sq, WVelocity};
use faer::{Accum, MatMut, MatRef, Par};

impl Problem {
    /// $G_L = h'(Z_L)\odot(\mathbf r v^\top)$ into `ws.g[L-1]` from a completed forward pass.
    fn top_backward_features(&self, net: ParamsRef<'_>, ws: &mut Workspace) {
        let n = self.n();
        let top = net.shape().depth - 1;
        let r = &ws.r;
        for ((gcol, dcol), &vk) in ws.g[top]
            .chunks_exact_mut(n)
            .zip(ws.dz[top].chunks_exact(n))
            .zip(net.v())
        {
            for ((gi, &di), &ri) in gcol.iter_mut().zip(dcol).zip(r) {
                *gi = di * ri * vk;
            }
        }
    }

    /// The data parts of $\dot A$ and $\dot v$ plus the regularizer's: `a_out` ($d\times m$) $= r(A) - X^\top G_1$,
    /// `v_out` $= r(v) - h(Z_L)^\top\mathbf r$.
    #[allow(clippy::too_many_arguments)]
    fn small_velocities(
        &self,
        net: ParamsRef<'_>,
        ws_g1: &[f64],
        ws_hl: &[f64],
        ws_r: &[f64],
        a_out: &mut [f64],
        v_out: &mut [f64],
        par: Par,
    ) {
        let s = net.shape();
        let (n, m, d) = (self.n(), s.m, s.d);
        mm(
            MatMut::from_column_major_slice_mut(a_out, d, m),
            Accum::Replace,
            self.data.x.transpose(),
            MatRef::from_column_major_slice(ws_g1, n, m),
            -1.0,
            par_for(par, 2 * n * d * m),
        );
        self.reg
            .add_vec_velocity(false, &net.as_slice()[s.a_range()], a_out);
        mm(
            MatMut::from_column_major_slice_mut(v_out, m, 1),
            Accum::Replace,
            MatRef::from_column_major_slice(ws_hl, n, m).transpose(),
            MatRef::from_column_major_slice(ws_r, n, 1),
            -1.0,
            Par::Seq,
        );
        self.reg.add_vec_velocity(true, net.v(), v_out);
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
        assert_eq!(
            vel.shape(),
            net.shape(),
            "velocity shape differs from network shape"
        );
        self.backward_at(net.view(), ws, vel.as_mut_slice(), par)
    }

    /// [`Problem::backward_into`] at borrowed parameters, into a flat buffer in the layout of [`Params`].
    pub fn backward_at(
        &self,
        net: ParamsRef<'_>,
        ws: &mut Workspace,
        vel: &mut [f64],
        par: Par,
    ) -> f64 {
        let s = net.shape();
        assert_eq!(
            vel.len(),
            s.len(),
            "velocity buffer length differs from shape"
        );
        let omega = self.backward_start(net, ws);
        let (ar, vr, wr) = (s.a_range(), s.v_range(), w_blocks(s));
        let mm = s.m * s.m;
        let passes = net.as_slice()[wr.clone()]
            .chunks_exact(mm)
            .zip(vel[wr].chunks_exact_mut(mm))
            .map(|(w, out)| WPass::Write(w, out));
        let (omega, _) = self.w_layer_passes(s, passes, omega, ws, par);
        let (head, v_out) = vel.split_at_mut(vr.start);
        self.small_velocities(
            net,
            &ws.g[0],
            &ws.hz[s.depth - 1],
            &ws.r,
            &mut head[ar],
            v_out,
            par,
        );
        self.reg.omega_finish(omega)
    }

    /// One step of scaled GD, $\theta \leftarrow \theta + \eta\dot\theta$, without a velocity buffer.
    ///
    /// The backward pass visits $W_\ell$ in row tiles $R$ (see [`Problem::backward_into`]); right after a
    /// tile's last use (its part of $G_\ell$), its velocity
    /// $\dot W_\ell[R,:] = -h(Z_\ell)[:,R]^\top G_{\ell+1} + r(W_\ell[R,:])$ is computed in column chunks into a
    /// per-thread scratch and added to it while the tile is still in cache. So $W_\ell$ is read twice per step
    /// (forward, backward) and written once, and the step needs the parameters, the $N\times m$ workspace and
    /// nothing of the parameters' size.
    ///
    /// The new parameters are exactly those of [`Problem::gd_step`] (same products, same additions).
    /// Returns $J$ and the dissipation $\|\dot\theta\|^2_{\rm scaled}$ before the step.
    pub fn gd_step_fused(
        &self,
        net: &mut Network,
        eta: f64,
        ws: &mut Workspace,
        par: Par,
    ) -> StepReport {
        let s = net.shape();
        let (risk, omega) = self.step_start(net.view(), ws, par);
        let passes = net.as_mut_slice()[w_blocks(s)]
            .chunks_exact_mut(s.m * s.m)
            .map(|w| WPass::Update(w, eta));
        let (omega, diss_w) = self.w_layer_passes(s, passes, omega, ws, par);
        let diss = self.small_into_ws(net.view(), ws, par) + diss_w;
        // A and v last: the backward pass above no longer needs them.
        let (small_a, small_v) = ws.small.split_at(s.d * s.m);
        for (range, vel) in [(s.a_range(), small_a), (s.v_range(), small_v)] {
            for (x, &v) in net.as_mut_slice()[range].iter_mut().zip(vel) {
                *x += eta * v;
            }
        }
        StepReport {
            objective: risk + self.reg.omega_finish(omega),
            dissipation: diss,
        }
    }

    /// The objective and the dissipation $\|\dot\theta\|^2_{\rm scaled}$ at `net`, as
    /// [`Problem::gd_step_fused`] reports them, without a step and without a velocity buffer.
    pub fn step_report(&self, net: &Network, ws: &mut Workspace, par: Par) -> StepReport {
        let s = net.shape();
        let (risk, omega) = self.step_start(net.view(), ws, par);
        let passes = net.as_slice()[w_blocks(s)]
            .chunks_exact(s.m * s.m)
            .map(WPass::Report);
        let (omega, diss_w) = self.w_layer_passes(s, passes, omega, ws, par);
        StepReport {
            objective: risk + self.reg.omega_finish(omega),
            dissipation: self.small_into_ws(net.view(), ws, par) + diss_w,
        }
    }

    /// The start of [`Problem::gd_step_fused`] and [`Problem::step_report`]: the forward pass and the top
    /// backward features into `ws`; returns the risk and the regularizer's running sum
    /// ([`Regularizer::omega_start`](crate::Regularizer::omega_start)).
    fn step_start(&self, net: ParamsRef<'_>, ws: &mut Workspace, par: Par) -> (f64, f64) {
        assert_eq!(
            ws.shape,
            net.shape(),
            "workspace shape differs from network shape"
        );
        let risk = self.forward_at(net, ws, par);
        (risk, self.backward_start(net, ws))
    }

    /// The start of every backward pass, after a forward pass: the top backward features into `ws`;
    /// returns the regularizer's running sum ([`Regularizer::omega_start`](crate::Regularizer::omega_start)).
    fn backward_start(&self, net: ParamsRef<'_>, ws: &mut Workspace) -> f64 {
        self.top_backward_features(net, ws);
        self.reg.omega_start(net)
    }

    /// [`Problem::layer_pass`] on every middle layer, top-down: `passes` yields the layers' passes in
    /// order $W_1, W_2, \dots$ (as the flat buffer holds them). Adds each layer's term of $\Omega$ to `omega`
    /// in that top-down order (the order [`Regularizer::value`](crate::Regularizer::value) sums in) and
    /// returns it with $\sum_\ell \|\dot W_\ell\|^2$ in the scaled metric.
    fn w_layer_passes<'a>(
        &self,
        s: Shape,
        passes: impl DoubleEndedIterator<Item = WPass<'a>>,
        mut omega: f64,
        ws: &mut Workspace,
        par: Par,
    ) -> (f64, f64) {
        let (_, ww) = s.metric();
        let mut diss_w = 0.0;
        for (l, pass) in (0..s.n_w()).rev().zip(passes.rev()) {
            let (o, v_sq) = self.layer_pass(s, l, pass, ws, par);
            omega += o;
            diss_w += ww * v_sq;
        }
        (omega, diss_w)
    }

    /// $\dot A$ and $\dot v$ into `ws.small` (after the backward pass); returns their part of the dissipation.
    fn small_into_ws(&self, net: ParamsRef<'_>, ws: &mut Workspace, par: Par) -> f64 {
        let s = net.shape();
        let dm = s.d * s.m;
        let (a_out, v_out) = ws.small.split_at_mut(dm);
        self.small_velocities(net, &ws.g[0], &ws.hz[s.depth - 1], &ws.r, a_out, v_out, par);
        let (wa, _) = s.metric();
        wa * sum_sq(&ws.small[..dm]) + wa * sum_sq(&ws.small[dm..])
    }

    /// Layer $\ell$ of the backward pass: $G_\ell$ into `ws.g[ℓ]` and $\dot W_\ell$ handed to `pass`, one row tile
    /// $R$ of $W_\ell$ at a time (tiles in parallel, each computed sequentially):
    /// $$G_\ell[:,R] = [G_{\ell+1}[:,R]]_{\rm Res} + h'(Z_\ell)[:,R]\odot\big(\tfrac1m W_\ell[R,:]\,G_{\ell+1}^\top\big)^\top,\qquad
    /// \dot W_\ell[R,:] = -h(Z_\ell)[:,R]^\top G_{\ell+1} + r(W_\ell[R,:]).$$
    /// Needs $G_{\ell+1}$ in `ws.g[ℓ+1]`. Returns $W_\ell$'s term of $\Omega$ and $\|\dot W_\ell\|^2$ (plain sum of squares).
    fn layer_pass(
        &self,
        s: Shape,
        l: usize,
        pass: WPass<'_>,
        ws: &mut Workspace,
        par: Par,
    ) -> (f64, f64) {
        let (n, m) = (self.n(), s.m);
        let Workspace {
            g,
            dz,
            hz,
            reg,
            tile_sums,
            ..
        } = ws;
        // The group norms' usage means need all of the old W_ℓ before any tile changes.
        let (wv, group) = self.reg.prepare_w(pass.w(), m, reg);
        let (lo, hi) = g.split_at_mut(l + 1);
        let tb = nm_tile_cols(m);
        let ctx = LayerCtx {
            n,
            m,
            tb,
            inv_m: 1.0 / m as f64,
            resnet: s.arch.is_resnet(),
            gn: MatRef::from_column_major_slice(&hi[0], n, m),
            g_next: &hi[0],
            dz: &dz[l],
            h: &hz[l],
            wv,
        };
        let sums = &mut tile_sums[..2 * m.div_ceil(tb)];
        let p = par_for(par, 2 * n * m * m);
        row_tiles(p, 0, &ctx, pass.into_tiles(m), &mut lo[l], sums);
        let w_sq = sums.chunks(2).map(|c| c[0]).sum::<f64>();
        let v_sq = sums.chunks(2).map(|c| c[1]).sum::<f64>();
        (self.reg.omega_w_term(m, w_sq, group), v_sq)
    }
}

/// The middle layers' block $W_1, \dots, W_{L-1}$ of the flat buffer (empty for the two-level net), $m^2$ entries
/// per layer.
fn w_blocks(s: Shape) -> std::ops::Range<usize> {
    s.a_range().end..s.v_range().start
}

/// What the backward pass does with the velocity $\dot W_\ell$ of one middle layer ($m\times m$, column-major).
enum WPass<'a> {
    /// Only the sums $\|W_\ell\|^2$, $\|\dot W_\ell\|^2$ ([`Problem::step_report`]).
    Report(&'a [f64]),
    /// Write $\dot W_\ell$ into the second buffer ([`Problem::backward_into`]).
    Write(&'a [f64], &'a mut [f64]),
    /// $W_\ell \leftarrow W_\ell + \eta\dot W_\ell$ ([`Problem::gd_step_fused`]).
    Update(&'a mut [f64], f64),
}

impl<'a> WPass<'a> {
    fn w(&self) -> &[f64] {
        match self {
            Self::Report(w) | Self::Write(w, _) => w,
            Self::Update(w, _) => w,
        }
    }
    fn into_tiles(self, m: usize) -> WTile<'a> {
        let view = |w: &'a [f64]| MatRef::from_column_major_slice(w, m, m);
        let view_mut = |w: &'a mut [f64]| MatMut::from_column_major_slice_mut(w, m, m);
        match self {
            Self::Report(w) => WTile::Report(view(w)),
            Self::Write(w, out) => WTile::Write(view(w), view_mut(out)),
            Self::Update(w, eta) => WTile::Update(view_mut(w), eta),
        }
    }
}

/// A block of rows of [`WPass`]'s matrices (row stride 1, column stride $m$).
enum WTile<'a> {
    Report(MatRef<'a, f64>),
    Write(MatRef<'a, f64>, MatMut<'a, f64>),
    Update(MatMut<'a, f64>, f64),
}

impl<'a> WTile<'a> {
    fn nrows(&self) -> usize {
        match self {
            Self::Report(w) | Self::Write(w, _) => w.nrows(),
            Self::Update(w, _) => w.nrows(),
        }
    }
    /// The rows of $W_\ell$ as a view.
    fn w(&self) -> MatRef<'_, f64> {
        match self {
            Self::Report(w) | Self::Write(w, _) => *w,
            Self::Update(w, _) => w.as_ref(),
        }
    }
    fn split_at_row(self, r: usize) -> (Self, Self) {
        match self {
            Self::Report(w) => {
                let (a, b) = w.split_at_row(r);
                (Self::Report(a), Self::Report(b))
            }
            Self::Write(w, out) => {
                let (a, b) = w.split_at_row(r);
                let (oa, ob) = out.split_at_row_mut(r);
                (Self::Write(a, oa), Self::Write(b, ob))
            }
            Self::Update(w, eta) => {
                let (a, b) = w.split_at_row_mut(r);
                (Self::Update(a, eta), Self::Update(b, eta))
            }
        }
    }

    /// Where the data part of $\dot W$ on the columns `k0..k0 + d.len()/rows` goes: straight into the output
    /// with [`WTile::Write`] (so the velocity is formed in place, without a copy from scratch), else into the
    /// scratch `d` ($|R|\times$ chunk width, column-major).
    fn data_dst<'s>(&'s mut self, k0: usize, d: &'s mut [f64]) -> MatMut<'s, f64> {
        let rows = self.nrows();
        let cw = d.len() / rows;
        match self {
            Self::Write(_, out) => out.as_mut().subcols_mut(k0, cw),
            _ => MatMut::from_column_major_slice_mut(d, rows, cw),
        }
    }

    /// [`WTile::apply`] on the columns `k0..` of a chunk `d` ($|R|\times$ chunk width, column-major).
    ///
    /// On x86-64 CPUs with AVX2 the loop runs compiled for AVX2 (twice the lanes of the baseline SSE2
    /// build, no spills); the arithmetic is the same lane for lane (Rust never contracts to FMA), so the
    /// results are bit for bit those of the baseline build.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn apply_chunk(
        &mut self,
        k0: usize,
        j0: usize,
        rows: usize,
        d: &mut [f64],
        wv: &WVelocity<'_>,
        aw: &mut Lanes,
        av: &mut Lanes,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of the call.
                unsafe { self.apply_chunk_avx2(k0, j0, rows, d, wv, aw, av) };
                return;
            }
        }
        self.apply_chunk_body(k0, j0, rows, d, wv, aw, av);
    }

    /// [`WTile::apply_chunk`] compiled for AVX2. Safety: the CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    unsafe fn apply_chunk_avx2(
        &mut self,
        k0: usize,
        j0: usize,
        rows: usize,
        d: &mut [f64],
        wv: &WVelocity<'_>,
        aw: &mut Lanes,
        av: &mut Lanes,
    ) {
        self.apply_chunk_body(k0, j0, rows, d, wv, aw, av);
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn apply_chunk_body(
        &mut self,
        k0: usize,
        j0: usize,
        rows: usize,
        d: &mut [f64],
        wv: &WVelocity<'_>,
        aw: &mut Lanes,
        av: &mut Lanes,
    ) {
        for (kk, v) in d.chunks_exact_mut(rows).enumerate() {
            self.apply(k0 + kk, j0, v, wv, aw, av);
        }
    }

    /// Column `k` of the tile (rows `j0..`): `v` (the output's column with [`WTile::Write`]) holds the data
    /// part of $\dot W$ on entry and the velocity $v = d + r(w)$ on exit; $\sum w^2$ (of the old $w$) and
    /// $\sum v^2$ go into `aw`, `av`; then the pass's action: nothing, or $w \leftarrow w + \eta v$.
    #[inline(always)]
    fn apply(
        &mut self,
        k: usize,
        j0: usize,
        v: &mut [f64],
        wv: &WVelocity<'_>,
        aw: &mut Lanes,
        av: &mut Lanes,
    ) {
        match self {
            Self::Report(w) => velocity_col(wv, k, j0, col(*w, k), v, aw, av),
            // The data part is already in the output (see `data_dst`); `v` is unused.
            Self::Write(w, out) => velocity_col(wv, k, j0, col(*w, k), col_mut(out, k), aw, av),
            Self::Update(w, eta) => {
                let x = col_mut(w, k);
                velocity_col(wv, k, j0, x, v, aw, av);
                // The GD update while the segment is in L1: w ← w + η v.
                for (x, &v) in x.iter_mut().zip(v.iter()) {
                    *x += *eta * v;
                }
            }
        }
    }
}

/// Column `k` of a column-major view as a slice.
#[inline]
fn col(w: MatRef<'_, f64>, k: usize) -> &[f64] {
    w.col(k)
        .try_as_col_major()
        .expect("tiles have unit row stride")
        .as_slice()
}

/// Column `k` of a column-major view as a mutable slice.
#[inline]
fn col_mut<'b>(w: &'b mut MatMut<'_, f64>, k: usize) -> &'b mut [f64] {
    w.as_mut()
        .col_mut(k)
        .try_as_col_major_mut()
        .expect("tiles have unit row stride")
        .as_slice_mut()
}

/// What one layer's row tiles share.
struct LayerCtx<'a> {
    n: usize,
    m: usize,
    /// Rows per tile.
    tb: usize,
    inv_m: f64,
    resnet: bool,
    /// $G_{\ell+1}$ ($N\times m$), as a view and as its column-major slice.
    gn: MatRef<'a, f64>,
    g_next: &'a [f64],
    /// $h'(Z_\ell)$ and $h(Z_\ell)$ ($N\times m$, column-major).
    dz: &'a [f64],
    h: &'a [f64],
    wv: WVelocity<'a>,
}

/// Columns per chunk of a tile's $\dot W_\ell[R,:]$ scratch (with 256-row tiles: 512 KiB).
/// Columns per chunk of a row tile's $\dot W_\ell$ (256 rows × 128 columns: 256 KiB). The chunk of $W_\ell$
/// read by the backward product, the chunk of $\dot W_\ell$ and faer's packed copy then stay in a core's
/// L2 cache until the update (measured at m = 2048, N = 64: 256 columns, 1.8 MiB in all, was 13 % slower).
const W_CHUNK_COLS: usize = 128;

impl LayerCtx<'_> {
    /// Row tile `t` of the layer: `g` is $G_\ell[:,R]$ ($N\times|R|$), `sums` its two sums.
    fn tile(&self, t: usize, mut tile: WTile<'_>, g: &mut [f64], sums: &mut [f64]) {
        let (n, m) = (self.n, self.m);
        let rows = tile.nrows();
        let j0 = t * self.tb;
        let cc = W_CHUNK_COLS.min(m);
        with_tile_scratch(rows * n + rows * cc, |buf| {
            let (gt, dw) = buf.split_at_mut(rows * n);
            // Per column chunk C, while W_ℓ[R, C] is in cache:
            //   (G_{ℓ+1} W_ℓᵀ)[:, R] += (W_ℓ[R, C] G_{ℓ+1}[:, C]ᵀ)ᵀ / m   (computed transposed: faer is 3–4× faster
            //      with the column-major W_ℓ as the left factor than with the row-major view W_ℓᵀ on the right),
            //   Ẇ_ℓ[R, C] = −h(Z_ℓ)[:, R]ᵀ G_{ℓ+1}[:, C] + r(W_ℓ[R, C]), handed to the pass.
            let c0 = j0 * n;
            let hr = MatRef::from_column_major_slice(&self.h[c0..c0 + rows * n], n, rows);
            let (mut aw, mut av) = (Lanes::default(), Lanes::default());
            for k0 in (0..m).step_by(cc) {
                let cw = cc.min(m - k0);
                mm(
                    MatMut::from_column_major_slice_mut(gt, rows, n),
                    if k0 == 0 { Accum::Replace } else { Accum::Add },
                    tile.w().subcols(k0, cw),
                    self.gn.subcols(k0, cw).transpose(),
                    self.inv_m,
                    Par::Seq,
                );
                let d = &mut dw[..rows * cw];
                mm(
                    tile.data_dst(k0, d),
                    Accum::Replace,
                    hr.transpose(),
                    self.gn.subcols(k0, cw),
                    -1.0,
                    Par::Seq,
                );
                tile.apply_chunk(k0, j0, rows, d, &self.wv, &mut aw, &mut av);
            }
            // G_ℓ[:, R] = [G_{ℓ+1}[:, R]]_Res + h'(Z_ℓ)[:, R] ⊙ (that sum).
            let (dz, gnext) = (&self.dz[c0..], &self.g_next[c0..]);
            for (j, gcol) in g.chunks_exact_mut(n).enumerate() {
                let (dcol, ncol) = (&dz[j * n..(j + 1) * n], &gnext[j * n..(j + 1) * n]);
                if self.resnet {
                    for (i, gi) in gcol.iter_mut().enumerate() {
                        *gi = ncol[i] + dcol[i] * gt[j + i * rows];
                    }
                } else {
                    for (i, gi) in gcol.iter_mut().enumerate() {
                        *gi = dcol[i] * gt[j + i * rows];
                    }
                }
            }
            sums[0] = aw.total();
            sums[1] = av.total();
        });
    }
}

/// Run [`LayerCtx::tile`] on the row tiles of `tiles` (numbered from `t0`), with `g` the matching columns of
/// $G_\ell$ and `sums` two entries per tile. Halves run in parallel (`rayon::join`) unless `par` is
/// sequential; tile boundaries depend only on the sizes, so results are the same for every thread count.
fn row_tiles(
    par: Par,
    t0: usize,
    ctx: &LayerCtx<'_>,
    tiles: WTile<'_>,
    g: &mut [f64],
    sums: &mut [f64],
) {
    let count = tiles.nrows().div_ceil(ctx.tb);
    if count > 1 && !matches!(par, Par::Seq) {
        let half = count / 2;
        let r = half * ctx.tb;
        let (a, b) = tiles.split_at_row(r);
        let (ga, gb) = g.split_at_mut(r * ctx.n);
        let (sa, sb) = sums.split_at_mut(2 * half);
        rayon::join(
            || row_tiles(par, t0, ctx, a, ga, sa),
            || row_tiles(par, t0 + half, ctx, b, gb, sb),
        );
        return;
    }
    let mut rest = tiles;
    let mut g = g;
    for (t, s) in sums.chunks_exact_mut(2).enumerate().take(count) {
        let rows = ctx.tb.min(rest.nrows());
        let (head, tail) = rest.split_at_row(rows);
        let (gh, gt) = std::mem::take(&mut g).split_at_mut(rows * ctx.n);
        ctx.tile(t0 + t, head, gh, s);
        rest = tail;
        g = gt;
    }
}

/// Sums of squares in eight interleaved lanes and a tail, combined like [`sum_sq`]: adding the segments
/// of a tile in order gives a result that depends only on the tile, never on threads.
#[derive(Clone, Copy, Default)]
struct Lanes {
    lanes: [f64; 8],
    tail: f64,
}

impl Lanes {
    #[inline]
    fn add(&mut self, x: &[f64]) {
        let mut it = x.chunks_exact(8);
        for c in &mut it {
            for (l, x) in self.lanes.iter_mut().zip(c) {
                *l += x * x;
            }
        }
        for &t in it.remainder() {
            self.tail += t * t;
        }
    }
    fn total(&self) -> f64 {
        combine8(&self.lanes, self.tail)
    }
}

/// $\|W\|^2$ of an $m\times m$ column-major block summed exactly as the backward pass sums it (row tiles in
/// order, each tile's columns in order through [`Lanes`]), so that [`Regularizer::value`] equals the
/// objective the velocities and GD steps report, bit for bit.
pub(crate) fn w_sq_norm(w: &[f64], m: usize) -> f64 {
    let tb = nm_tile_cols(m);
    (0..m)
        .step_by(tb)
        .map(|j0| {
            let rows = tb.min(m - j0);
            let mut acc = Lanes::default();
            for c in w.chunks_exact(m) {
                acc.add(&c[j0..j0 + rows]);
            }
            acc.total()
        })
        .sum::<f64>()
}

/// The velocity of one column segment in place (see [`velocity_seg`]), for each kind of regularizer.
#[inline(always)]
fn velocity_col(
    wv: &WVelocity<'_>,
    k: usize,
    j0: usize,
    x: &[f64],
    v: &mut [f64],
    aw: &mut Lanes,
    av: &mut Lanes,
) {
    match *wv {
        WVelocity::Zero => velocity_seg::<false>(x, v, 0.0, aw, av),
        WVelocity::L2 { lambda } => velocity_seg::<true>(x, v, lambda, aw, av),
        WVelocity::Group { .. } => {
            wv.add_seg(k, j0, x, v);
            velocity_seg::<false>(x, v, 0.0, aw, av);
        }
    }
}

/// One segment of a tile of $W_\ell$ and of its velocity's data part `v`: the velocity $v = d$ (or
/// $v = -\lambda w + d$ with `L2`) in place, $\sum w^2$ into `aw` and $\sum v^2$ into `av` (as [`Lanes::add`]
/// would).
#[inline(always)]
fn velocity_seg<const L2: bool>(
    w: &[f64],
    v: &mut [f64],
    lambda: f64,
    aw: &mut Lanes,
    av: &mut Lanes,
) {
    let (mut lw, mut lv) = (aw.lanes, av.lanes);
    let mut wc = w.chunks_exact(8);
    let mut vc = v.chunks_exact_mut(8);
    for (w8, v8) in (&mut wc).zip(&mut vc) {
        // Whole arrays of eight, so that the loop vectorizes cleanly.
        let x: [f64; 8] = std::array::from_fn(|i| w8[i]);
        let v: [f64; 8] = std::array::from_fn(|i| if L2 { -lambda * x[i] + v8[i] } else { v8[i] });
        lw = std::array::from_fn(|i| lw[i] + x[i] * x[i]);
        lv = std::array::from_fn(|i| lv[i] + v[i] * v[i]);
        v8.copy_from_slice(&v);
    }
    (aw.lanes, av.lanes) = (lw, lv);
    for (&x, v) in wc.remainder().iter().zip(vc.into_remainder()) {
        if L2 {
            *v += -lambda * x;
        }
        aw.tail += x * x;
        av.tail += *v * *v;
    }
}
