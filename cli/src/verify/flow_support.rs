//! Shared helpers of the flow claims (C3, C5, C6, C7, C18, C19, C20, C22): integrating a field to a
//! final time, the problem of math.md §6, GD with per-block learning rates, and number formatting.
use anyhow::{ensure, Result};
use faer::Par;
use nff_core::init::{init_network, Init};
use nff_core::network::Workspace;
use nff_core::{Activation, Arch, Dataset, Loss, Network, Params, Problem, Regularizer, Shape};
use nff_flow::{
    Integrator, Observer, ObserverAction, ObserverMode, RunReport, Runner, StepInfo,
    TerminationReason, VectorField,
};

/// The unregularized squared-loss tanh problem of math.md §6 on `data`.
pub fn tanh_problem(data: &Dataset) -> Result<Problem> {
    Ok(Problem::new(
        data.clone(),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::None,
    )?)
}

/// A network of `arch`, width `m`, depth `depth` on `data` drawn with `init` and `seed`.
pub fn network(
    data: &Dataset,
    arch: Arch,
    m: usize,
    depth: usize,
    init: &Init,
    seed: u64,
) -> Result<Network> {
    let shape = Shape::new(arch, data.d(), m, depth)?;
    Ok(init_network(shape, data, Activation::Tanh, init, seed)?.0)
}

/// A finished run and the field it ran on (to evaluate more figures at the final state).
pub struct Flowed<F> {
    /// The runner's report (final state, steps, recorded rows).
    pub report: RunReport,
    /// The field.
    pub field: F,
}

/// Integrate `field` from `y0` at $t = 0$ to `t_final`; errors unless the run reaches `t_final`.
pub fn integrate<F: VectorField>(
    field: F,
    integrator: impl Integrator + 'static,
    y0: Vec<f64>,
    t_final: f64,
    record: ObserverMode,
) -> Result<Flowed<F>> {
    let mut runner = Runner::builder(field, integrator)
        .initial_state(0.0, y0)
        .final_time(t_final)
        .record(record)
        .build()?;
    let report = runner.run()?;
    ensure!(
        report.termination == TerminationReason::FinalTime,
        "the run stopped at t = {} ({:?}) before T = {t_final}",
        report.t,
        report.termination
    );
    Ok(Flowed {
        report,
        field: runner.into_field(),
    })
}

/// Per-block learning rates of plain gradient descent, as multiples of $\eta$:
/// $A \leftarrow A - \eta\,c_A\,\partial_AJ$, $W_\ell \leftarrow W_\ell - \eta\,c_W\,\partial_{W_\ell}J$, $v \leftarrow v - \eta\,c_v\,\partial_vJ$.
/// The scaled rates of math.md §2 are $(c_A, c_W, c_v) = (m, m^2, m)$.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    /// $c_A$.
    pub a: f64,
    /// $c_W$.
    pub w: f64,
    /// $c_v$.
    pub v: f64,
}

impl Rates {
    /// The scaled rates $(m, m^2, m)$.
    pub fn scaled(m: usize) -> Self {
        let m = m as f64;
        Self {
            a: m,
            w: m * m,
            v: m,
        }
    }
}

/// Plain GD with per-block rates: `steps` steps of size `eta`, the risk recorded every `every` steps
/// (and at the start) as $(t = \eta\cdot\text{step}, \mathcal R)$. Returns the trajectory and the final network.
///
/// The library's velocities are scaled, $\dot A = -m\,\partial_AJ$, $\dot W = -m^2\partial_WJ$, $\dot v = -m\,\partial_vJ$,
/// so a block with rate multiple $c$ moves by $\eta\,(c/m)\,\dot A$ (resp. $\eta\,(c/m^2)\,\dot W$): with the scaled
/// rates this is exactly [`Problem::gd_step`].
pub fn gd_with_rates(
    problem: &Problem,
    net: &mut Network,
    rates: Rates,
    eta: f64,
    steps: usize,
    every: usize,
    par: Par,
) -> Result<Vec<(f64, f64)>> {
    let shape = net.shape();
    let m = shape.m as f64;
    let mut ws = Workspace::new(shape, problem.n());
    let mut vel = Params::zeros(shape);
    let mut traj = Vec::with_capacity(steps / every.max(1) + 2);
    let (fa, fw, fv) = (
        eta * rates.a / m,
        eta * rates.w / (m * m),
        eta * rates.v / m,
    );
    for step in 0..=steps {
        let risk = problem.forward_into(net, &mut ws, par);
        ensure!(
            risk.is_finite(),
            "GD diverged (risk {risk}) at step {step} with rates {rates:?}"
        );
        if step % every.max(1) == 0 || step == steps {
            traj.push((eta * step as f64, risk));
        }
        if step == steps {
            break;
        }
        problem.backward_into(net, &mut ws, &mut vel, par);
        let (p, q) = (net.as_mut_slice(), vel.as_slice());
        for (i, f) in [(shape.a_range(), fa), (shape.v_range(), fv)]
            .into_iter()
            .chain((0..shape.n_w()).map(|l| (shape.w_range(l), fw)))
        {
            for (x, dx) in p[i.clone()].iter_mut().zip(&q[i]) {
                *x += f * dx;
            }
        }
    }
    Ok(traj)
}

/// `[a, b, c]` with each number in `{:.prec$e}` format.
pub fn sci(x: &[f64], prec: usize) -> String {
    let items: Vec<String> = x.iter().map(|v| format!("{v:.prec$e}")).collect();
    format!("[{}]", items.join(", "))
}

/// `[a, b, c]` with each number in `{:.prec$}` format.
pub fn fixed(x: &[f64], prec: usize) -> String {
    let items: Vec<String> = x.iter().map(|v| format!("{v:.prec$}")).collect();
    format!("[{}]", items.join(", "))
}

/// Linear interpolation of a piecewise-linear curve `(t, y)` (sorted by `t`) at `t`, clamped at the ends.
pub fn interpolate(curve: &[(f64, f64)], t: f64) -> f64 {
    match curve.iter().position(|p| p.0 >= t) {
        None => curve.last().map_or(f64::NAN, |p| p.1),
        Some(0) => curve[0].1,
        Some(k) => {
            let (a, b) = (curve[k - 1], curve[k]);
            a.1 + (b.1 - a.1) * (t - a.0) / (b.0 - a.0)
        }
    }
}

/// The first time a recorded curve `(t, y)` falls to `level` or below (linear interpolation between
/// records); `None` if it never does.
pub fn first_crossing(curve: &[(f64, f64)], level: f64) -> Option<f64> {
    let k = curve.iter().position(|p| p.1 <= level)?;
    if k == 0 {
        return Some(curve[0].0);
    }
    let (a, b) = (curve[k - 1], curve[k]);
    Some(a.0 + (b.0 - a.0) * (a.1 - level) / (a.1 - b.1))
}

/// An observer that ends a run once a recorded row's risk is at or below `level` (it fires on the
/// recorder's steps, so give both the same [`ObserverMode`]).
pub struct StopBelowRisk {
    /// The risk level.
    pub level: f64,
    /// When it looks (the recorder's mode).
    pub every: u64,
}

impl Observer for StopBelowRisk {
    fn mode(&self) -> ObserverMode {
        ObserverMode::Every(self.every)
    }
    fn on_step(&mut self, info: &StepInfo<'_>) -> nff_flow::Result<ObserverAction> {
        let done = info
            .row
            .and_then(|r| r.diagnostics.as_ref())
            .is_some_and(|d| d.risk <= self.level);
        Ok(if done {
            ObserverAction::Stop
        } else {
            ObserverAction::Continue
        })
    }
}

/// The fixed-step methods of the order claims (C3, C7): (name, order, constructor, largest step).
pub type Method = (
    &'static str,
    u32,
    fn(f64) -> nff_flow::Result<nff_flow::FixedStep>,
    f64,
);

pub const METHODS: [Method; 3] = [
    ("Euler", 1, nff_flow::FixedStep::euler, 0.02),
    ("Heun", 2, nff_flow::FixedStep::heun, 0.04),
    ("RK4", 4, nff_flow::FixedStep::rk4, 0.2),
];
