//! The Lagrangian neural feature flow (math.md §5): weights *and* features integrated together.
use crate::error::{FlowError, Result};
use crate::field::{Diagnostics, ResidualBound, VectorField};
use crate::weight_flow::{check_net, scaled_sq_norm};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use nff_core::network::Workspace;
use nff_core::{Network, Params, Problem, Shape};
use std::ops::Range;

/// The layout of a [`FeatureFlow`] state: the parameter buffer ($A, W_1..W_{L-1}, v$, as in [`Params`]),
/// then the features $Z_1, \dots, Z_L$, each $N\times m$ column-major (one unit per column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeatureLayout {
    /// The network shape.
    pub shape: Shape,
    /// The number of data points $N$.
    pub n: usize,
}

impl FeatureLayout {
    /// Total state length, $|\theta| + L N m$.
    pub fn len(&self) -> usize {
        self.shape.len() + self.shape.depth * self.n * self.shape.m
    }
    /// Never true for a validated shape and $N \ge 1$.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Where the parameters live.
    pub fn params_range(&self) -> Range<usize> {
        0..self.shape.len()
    }
    /// Where $Z_{l+1}$ lives (`l` from 0).
    pub fn feature_range(&self, l: usize) -> Range<usize> {
        assert!(l < self.shape.depth, "layer {l} out of range");
        let nm = self.n * self.shape.m;
        let s = self.shape.len() + l * nm;
        s..s + nm
    }
    /// The parameter part of a state.
    pub fn params<'a>(&self, y: &'a [f64]) -> &'a [f64] {
        &y[self.params_range()]
    }
    /// $Z_{l+1}$ of a state as an $N\times m$ view.
    pub fn feature<'a>(&self, y: &'a [f64], l: usize) -> MatRef<'a, f64> {
        MatRef::from_column_major_slice(&y[self.feature_range(l)], self.n, self.shape.m)
    }
}

/// The Lagrangian NFF: the state is $(\theta, Z_1, \dots, Z_L)$ and
/// $$\dot\theta = \text{the velocities of §2 evaluated on the *integrated* features } Z_\ell,$$
/// $$\dot Z_1 = X\dot A,\qquad \dot Z_{\ell+1} = [\dot Z_\ell]_{\rm Res} + \tfrac1m\big(h(Z_\ell)\dot W_\ell + (h'(Z_\ell)\odot\dot Z_\ell)\,W_\ell\big),$$
/// the time derivative of the consistency constraint $Z_1 = XA$, $Z_{\ell+1} = [Z_\ell]_{\rm Res} + \frac1m h(Z_\ell)W_\ell$
/// (the skip term only for the ResNet). With $m$ sampled labels this is the finite-width gradient flow
/// with the features carried along instead of recomputed; the exact flow keeps consistency invariant, so
/// the [consistency drift](FeatureFlow::consistency_drift) of a discretization measures its error (claim C3).
///
/// Evaluation: `forward_from_features` (activations, prediction and residual from the integrated
/// features), `backward_into` (velocities), then the chain rule above; allocation-free, `par` explicit.
#[derive(Clone, Debug)]
pub struct FeatureFlow {
    problem: Problem,
    layout: FeatureLayout,
    par: Par,
    net: Params,
    vel: Params,
    ws: Workspace,
    ws_check: Workspace,
    scratch: Vec<f64>,
    evaluations: u64,
}

impl FeatureFlow {
    /// The feature flow of `problem` for networks of `shape`; errors if `shape.d` is not the data's $d$.
    pub fn new(problem: Problem, shape: Shape, par: Par) -> Result<Self> {
        let net = Params::zeros(shape);
        problem.check_network(&net)?;
        let n = problem.n();
        Ok(Self {
            layout: FeatureLayout { shape, n },
            par,
            vel: Params::zeros(shape),
            ws: Workspace::new(shape, n),
            ws_check: Workspace::new(shape, n),
            scratch: vec![0.0; n * shape.m],
            net,
            problem,
            evaluations: 0,
        })
    }
    /// The state layout.
    pub fn layout(&self) -> FeatureLayout {
        self.layout
    }
    /// The problem.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
    /// The network shape.
    pub fn shape(&self) -> Shape {
        self.layout.shape
    }
    /// The parallelism used by the GEMMs.
    pub fn par(&self) -> Par {
        self.par
    }
    /// The initial state for `net`: its parameters followed by its features computed by a forward pass
    /// (so the drift starts at 0).
    pub fn initial_state(&mut self, net: &Network) -> Result<Vec<f64>> {
        check_net(self.layout.shape, net)?;
        self.problem.forward_into(net, &mut self.ws_check, self.par);
        let mut y = vec![0.0; self.layout.len()];
        y[self.layout.params_range()].copy_from_slice(net.as_slice());
        for l in 0..self.layout.shape.depth {
            y[self.layout.feature_range(l)].copy_from_slice(&self.ws_check.z[l]);
        }
        Ok(y)
    }
    /// The network (parameter part) of a state.
    pub fn network(&self, y: &[f64]) -> Result<Network> {
        self.check_len(y)?;
        Ok(Params::from_vec(
            self.layout.shape,
            y[self.layout.params_range()].to_vec(),
        )?)
    }

    fn check_len(&self, y: &[f64]) -> Result<()> {
        if y.len() != self.layout.len() {
            return Err(FlowError::shape(
                "feature-flow state",
                self.layout.len(),
                y.len(),
            ));
        }
        Ok(())
    }

    /// The consistency drift of a state: with $Z_\ell(\theta)$ the features recomputed from its weights,
    /// $$\max_\ell \frac{\|Z_\ell^{\rm int} - Z_\ell(\theta)\|_F}{\|Z_\ell(\theta)\|_F}$$
    /// (the absolute difference for a layer whose recomputed features vanish). 0 for an exact flow.
    pub fn consistency_drift(&mut self, y: &[f64]) -> Result<f64> {
        self.check_len(y)?;
        self.net
            .as_mut_slice()
            .copy_from_slice(&y[self.layout.params_range()]);
        self.problem
            .forward_into(&self.net, &mut self.ws_check, self.par);
        let mut worst: f64 = 0.0;
        for l in 0..self.layout.shape.depth {
            let zi = &y[self.layout.feature_range(l)];
            let zr = &self.ws_check.z[l];
            let (mut diff, mut norm) = (0.0, 0.0);
            for (a, b) in zi.iter().zip(zr) {
                diff += (a - b) * (a - b);
                norm += b * b;
            }
            let rel = if norm > 0.0 {
                (diff / norm).sqrt()
            } else {
                diff.sqrt()
            };
            // NaN must not be hidden by max.
            worst = if rel.is_nan() {
                f64::NAN
            } else {
                worst.max(rel)
            };
        }
        Ok(worst)
    }
}

impl VectorField for FeatureFlow {
    fn dim(&self) -> usize {
        self.layout.len()
    }

    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) {
        self.evaluations += 1;
        let lay = self.layout;
        let s = lay.shape;
        let (n, m) = (lay.n, s.m);
        let inv_m = 1.0 / m as f64;
        let par = self.par;
        self.net
            .as_mut_slice()
            .copy_from_slice(&y[lay.params_range()]);
        for l in 0..s.depth {
            self.ws.z[l].copy_from_slice(&y[lay.feature_range(l)]);
        }
        self.problem
            .forward_from_features(&self.net, &mut self.ws, par);
        self.problem
            .backward_into(&self.net, &mut self.ws, &mut self.vel, par);
        let (dtheta, dz) = dy.split_at_mut(s.len());
        dtheta.copy_from_slice(self.vel.as_slice());
        let nm = n * m;
        // Ż_1 = X Ȧ
        matmul(
            MatMut::from_column_major_slice_mut(&mut dz[..nm], n, m),
            Accum::Replace,
            self.problem.data.x.as_ref(),
            self.vel.a(),
            1.0,
            par,
        );
        for l in 0..s.n_w() {
            let (lo, hi) = dz.split_at_mut((l + 1) * nm);
            let dzl = &lo[l * nm..];
            let next = &mut hi[..nm];
            // scratch = h'(Z_l) ⊙ Ż_l
            for ((sc, &d), &v) in self.scratch.iter_mut().zip(&self.ws.dz[l]).zip(dzl) {
                *sc = d * v;
            }
            let accum = if s.arch.is_resnet() {
                next.copy_from_slice(dzl);
                Accum::Add
            } else {
                Accum::Replace
            };
            // (1/m) h(Z_l) Ẇ_l
            matmul(
                MatMut::from_column_major_slice_mut(next, n, m),
                accum,
                self.ws.hz(l),
                self.vel.w(l),
                inv_m,
                par,
            );
            // (1/m) (h'(Z_l) ⊙ Ż_l) W_l
            matmul(
                MatMut::from_column_major_slice_mut(next, n, m),
                Accum::Add,
                MatRef::from_column_major_slice(&self.scratch, n, m),
                self.net.w(l),
                inv_m,
                par,
            );
        }
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn velocity_sq_norm(&self, dy: &[f64]) -> f64 {
        scaled_sq_norm(self.layout.shape, &dy[self.layout.params_range()])
    }

    /// Objective, risk and residual bound on the *integrated* features (what the flow sees), plus
    /// the consistency drift against the features recomputed from the weights.
    fn diagnostics(&mut self, _t: f64, y: &[f64]) -> Result<Option<Diagnostics>> {
        self.check_len(y)?;
        let lay = self.layout;
        self.net
            .as_mut_slice()
            .copy_from_slice(&y[lay.params_range()]);
        for l in 0..lay.shape.depth {
            self.ws.z[l].copy_from_slice(&y[lay.feature_range(l)]);
        }
        let risk = self
            .problem
            .forward_from_features(&self.net, &mut self.ws, self.par);
        let objective = risk + self.problem.reg.value(&self.net);
        let bound = ResidualBound::measure(self.ws.hz(lay.shape.depth - 1), &self.ws.r, self.par)?;
        let drift = self.consistency_drift(y)?;
        Ok(Some(Diagnostics {
            objective,
            risk,
            bound,
            drift: Some(drift),
        }))
    }
}
