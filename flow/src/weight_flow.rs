//! The weight flow: the scaled gradient flow of math.md §2 on the flat parameter buffer.
use crate::error::{FlowError, Result};
use crate::field::{Diagnostics, ResidualBound, VectorField};
use faer::Par;
use nff_core::network::Workspace;
use nff_core::{Network, Params, ParamsRef, Problem, Shape};

/// $\dot\theta = (\dot A, \dot W_1, \dots, \dot W_{L-1}, \dot v)$, the scaled negative gradient of $J$ (math.md §2):
/// $$\dot A=-X^\top G_1-m\,\partial_A\Omega,\qquad \dot W_\ell=-h(Z_\ell)^\top G_{\ell+1}-m^2\partial_{W_\ell}\Omega,\qquad \dot v=-h(Z_L)^\top\mathbf r-m\,\partial_v\Omega,$$
/// with the features $Z_\ell$ recomputed from the weights at every evaluation.
///
/// The state is exactly the [`Params`] buffer (`A`, `W_1..W_{L-1}`, `v`, column-major), so explicit Euler
/// with step $\eta$ on this field is scaled gradient descent ([`Problem::gd_step`]). Works for every
/// architecture (two-level, DNN, ResNet). Evaluation allocates nothing and copies nothing of the parameters'
/// size: it reads the state in place ([`Problem::velocities_at`]) and writes the velocity straight into the
/// integrator's buffer; the [`Workspace`] lives in the field; `par` is passed to every GEMM.
///
/// ```
/// use nff_core::{Activation, Arch, Dataset, Loss, Params, Problem, Regularizer, Shape};
/// use nff_flow::{VectorField, WeightFlow};
/// let data = Dataset::new(faer::mat![[1.0], [-1.0]], vec![0.5, -0.5]).unwrap();
/// let problem = Problem::new(data, Activation::Tanh, Loss::Squared, Regularizer::None).unwrap();
/// let shape = Shape::new(Arch::TwoLevel, 1, 4, 1).unwrap();
/// let mut flow = WeightFlow::new(problem, shape, faer::Par::Seq).unwrap();
/// let mut net = Params::zeros(shape);
/// net.a_mut().fill(1.0);
/// let y = flow.initial_state(&net).unwrap();
/// let mut dy = vec![0.0; flow.dim()];
/// flow.eval(0.0, &y, &mut dy);
/// assert!(dy.iter().any(|x| *x != 0.0));
/// ```
#[derive(Clone, Debug)]
pub struct WeightFlow {
    problem: Problem,
    shape: Shape,
    par: Par,
    net: Params,
    ws: Workspace,
    evaluations: u64,
    last_objective: f64,
}

impl WeightFlow {
    /// The weight flow of `problem` for networks of `shape`; errors if `shape.d` is not the data's $d$.
    pub fn new(problem: Problem, shape: Shape, par: Par) -> Result<Self> {
        let net = Params::zeros(shape);
        problem.check_network(&net)?;
        let ws = Workspace::new(shape, problem.n());
        Ok(Self {
            problem,
            shape,
            par,
            net,
            ws,
            evaluations: 0,
            last_objective: f64::NAN,
        })
    }
    /// The problem.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
    /// The network shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }
    /// The parallelism used by the GEMMs.
    pub fn par(&self) -> Par {
        self.par
    }
    /// Change the parallelism.
    pub fn set_par(&mut self, par: Par) {
        self.par = par;
    }
    /// $J$ at the state of the last evaluation (NaN before the first).
    pub fn last_objective(&self) -> f64 {
        self.last_objective
    }
    /// The initial state for `net`: its flat buffer. Errors on a shape mismatch or non-finite entries.
    pub fn initial_state(&self, net: &Network) -> Result<Vec<f64>> {
        check_net(self.shape, net)?;
        Ok(net.as_slice().to_vec())
    }
    /// The network a state `y` represents.
    pub fn network(&self, y: &[f64]) -> Result<Network> {
        Ok(Params::from_vec(self.shape, y.to_vec())?)
    }
}

pub(crate) fn check_net(shape: Shape, net: &Network) -> Result<()> {
    if net.shape() != shape {
        return Err(FlowError::shape(
            "initial network",
            format!("{:?}", shape),
            format!("{:?}", net.shape()),
        ));
    }
    net.ensure_finite()?;
    Ok(())
}

/// $\frac1m\|\dot A\|^2+\frac1{m^2}\sum_\ell\|\dot W_\ell\|^2+\frac1m\|\dot v\|^2$ of a flat parameter-layout slice.
pub(crate) fn scaled_sq_norm(shape: Shape, theta: &[f64]) -> f64 {
    let (wa, ww) = shape.metric();
    let sq = |r: std::ops::Range<usize>| theta[r].iter().map(|x| x * x).sum::<f64>();
    let mut acc = wa * sq(shape.a_range()) + wa * sq(shape.v_range());
    for l in 0..shape.n_w() {
        acc += ww * sq(shape.w_range(l));
    }
    acc
}

impl VectorField for WeightFlow {
    fn dim(&self) -> usize {
        self.shape.len()
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) {
        self.evaluations += 1;
        // The state and the velocity are used in place: no copy of the parameters in or out.
        let theta = ParamsRef::new(self.shape, y)
            .expect("integrators pass states of the field's dimension");
        self.last_objective = self
            .problem
            .velocities_at(theta, &mut self.ws, dy, self.par);
    }
    fn evaluations(&self) -> u64 {
        self.evaluations
    }
    fn velocity_sq_norm(&self, dy: &[f64]) -> f64 {
        scaled_sq_norm(self.shape, dy)
    }
    fn diagnostics(&mut self, _t: f64, y: &[f64]) -> Result<Option<Diagnostics>> {
        self.net.as_mut_slice().copy_from_slice(y);
        let risk = self.problem.forward_into(&self.net, &mut self.ws, self.par);
        let objective = risk + self.problem.reg.value(&self.net);
        let bound = ResidualBound::measure(self.ws.hz(self.shape.depth - 1), &self.ws.r, self.par)?;
        Ok(Some(Diagnostics {
            objective,
            risk,
            bound,
            drift: None,
        }))
    }
}
