//! Shared machinery of the two-level claims (C8–C13, C23, C24, math.md §4.1).
//!
//! - data: the default `sine` data with a constant bias column, so that a unit is $\theta = (a, b)$
//!   and $h(\theta^\top x) = \tanh(ax + b)$ (d ≤ 2 plus bias, as §7 recommends for two-level programs);
//! - the problem: squared loss, tanh, `Regularizer::L2Split { a: λ₂, w: 0, v: λ₁ }`, i.e.
//!   $J = \mathcal R + \frac{\lambda_2}{2m}\|A\|^2 + \frac{\lambda_1}{2m}\|v\|^2$ (nff-solvers' `certificate` conventions);
//! - runs: plain GD ([`gd`], explicit Euler of nff-flow's [`WeightFlow`]) and noisy GD ([`langevin`],
//!   nff-flow's [`EulerMaruyama`], the integrator behind [`nff_flow::NoisyGd`]), stepped here so that a
//!   claim can look at the particles while they move;
//! - the certificate function $\beta(\theta) = s(\theta)^2/2\lambda_1 - \lambda_2\|\theta\|^2/2$,
//!   $s(\theta) = \sum_i r^i h(\theta^\top x^i)$;
//! - [`par_map`]: independent jobs on the rayon pool, results in index order (thread-count independent).
//!
//! Runs are small (N ≤ 40, m ≤ a few hundred), so every GEMM runs with `Par::Seq` and parallelism
//! goes over independent jobs.
use anyhow::{bail, Result};
use faer::{Mat, MatRef, Par};
use nff_core::init::{init_network, Init};
use nff_core::network::Workspace;
use nff_core::{Activation, Arch, Dataset, Loss, Network, Params, Problem, Regularizer, Shape};
use nff_flow::{EulerMaruyama, FixedStep, Integrator, StepStatus, WeightFlow};
use rayon::prelude::*;

/// The `sine` data of math.md §6 ($N$ points, $x\sim\mathcal N(0, I_d/d)$, $y = \sin 3x_1 + \frac12$) with a
/// bias column appended ($X$ is $N\times(d+1)$).
pub fn sine_with_bias(n: usize, d: usize, seed: u64) -> Result<Dataset> {
    Ok(super::sine(n, d, seed)?.with_bias())
}

/// The two-level problem of math.md §4.1: tanh, squared loss,
/// $J = \mathcal R + \frac{\lambda_2}{2m}\|A\|^2 + \frac{\lambda_1}{2m}\|v\|^2$.
pub fn problem(data: &Dataset, lambda1: f64, lambda2: f64) -> Result<Problem> {
    Ok(Problem::new(
        data.clone(),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::L2Split {
            a: lambda2,
            w: 0.0,
            v: lambda1,
        },
    )?)
}

/// A width-`m` two-level network with i.i.d. $a_j\sim\mathcal N(0,\sigma_a^2 I)$, $v_j\sim\mathcal N(0,\sigma_v^2)$.
pub fn iid_network(
    problem: &Problem,
    m: usize,
    sigma_a: f64,
    sigma_v: f64,
    seed: u64,
) -> Result<Network> {
    let shape = Shape::new(Arch::TwoLevel, problem.data.d(), m, 1)?;
    let init = Init::Iid {
        sigma_a,
        mu_w: 0.0,
        sigma_w: 1.0,
        sigma_v,
    };
    let (net, _) = init_network(shape, &problem.data, problem.activation, &init, seed)?;
    Ok(net)
}

fn ensure_accepted(status: StepStatus, what: &str) -> Result<()> {
    if !matches!(status, StepStatus::Accepted) {
        bail!("{what}: step not accepted ({status:?})");
    }
    Ok(())
}

/// `steps` steps of scaled GD with step `eta` (explicit Euler on the [`WeightFlow`]).
pub fn gd(problem: &Problem, net: &Network, eta: f64, steps: usize) -> Result<Network> {
    let mut field = WeightFlow::new(problem.clone(), net.shape(), Par::Seq)?;
    let mut y = field.initial_state(net)?;
    let mut euler = FixedStep::euler(eta)?;
    let mut t = 0.0;
    euler.init(&mut field, t, &y)?;
    for _ in 0..steps {
        let status = euler.step(&mut field, &mut t, &mut y, f64::INFINITY)?;
        ensure_accepted(status, "GD")?;
    }
    Ok(Params::from_vec(net.shape(), y)?)
}

/// `steps` steps of noisy GD at temperature `tau` (Euler–Maruyama on the [`WeightFlow`], noise stream
/// `rng(seed, "noise")`); `observe(k, state)` is called after every `every`-th step ($k$ = steps done).
#[allow(clippy::too_many_arguments)]
pub fn langevin(
    problem: &Problem,
    net: &Network,
    eta: f64,
    tau: f64,
    steps: usize,
    seed: u64,
    every: usize,
    mut observe: impl FnMut(usize, &[f64]) -> Result<()>,
) -> Result<Network> {
    let mut field = WeightFlow::new(problem.clone(), net.shape(), Par::Seq)?;
    let mut y = field.initial_state(net)?;
    let mut em = EulerMaruyama::new(eta, tau, seed)?;
    let mut t = 0.0;
    em.init(&mut field, t, &y)?;
    for k in 1..=steps {
        let status = em.step(&mut field, &mut t, &mut y, f64::INFINITY)?;
        ensure_accepted(status, "noisy GD")?;
        if every > 0 && k % every == 0 {
            observe(k, &y)?;
        }
    }
    Ok(Params::from_vec(net.shape(), y)?)
}

/// Noisy GD with a temperature decreasing geometrically from `tau0` to `tau1` in `stages` equal stages of
/// `steps / stages` steps (each stage its own noise stream), then `polish` steps of plain GD.
#[allow(clippy::too_many_arguments)]
pub fn annealed_langevin(
    problem: &Problem,
    net: &Network,
    eta: f64,
    tau0: f64,
    tau1: f64,
    steps: usize,
    stages: usize,
    polish: usize,
    seed: u64,
) -> Result<Network> {
    let mut cur = net.clone();
    let per = steps / stages.max(1);
    for k in 0..stages {
        let frac = if stages > 1 {
            k as f64 / (stages - 1) as f64
        } else {
            0.0
        };
        let tau = tau0 * (tau1 / tau0).powf(frac);
        cur = langevin(
            problem,
            &cur,
            eta,
            tau,
            per,
            seed.wrapping_mul(1000).wrapping_add(k as u64),
            0,
            |_, _| Ok(()),
        )?;
    }
    gd(problem, &cur, eta, polish)
}

/// The residual $\mathbf r$ ($r^i = (\hat y^i - y^i)/N$ for the squared loss) and the objective $J$.
pub fn residual(problem: &Problem, net: &Network) -> (Vec<f64>, f64) {
    let mut ws = Workspace::new(net.shape(), problem.n());
    let risk = problem.forward_into(net, &mut ws, Par::Seq);
    (ws.r.clone(), risk + problem.reg.value(net))
}

/// $s(\theta_k) = \sum_i r^i h(\theta_k^\top x^i)$ for the rows $\theta_k$ of `theta` ($K\times d$).
pub fn s_values(problem: &Problem, r: &[f64], theta: MatRef<'_, f64>) -> Vec<f64> {
    let x = &problem.data.x;
    let d = x.ncols();
    (0..theta.nrows())
        .map(|k| {
            (0..x.nrows())
                .map(|i| {
                    let z: f64 = (0..d).map(|c| x[(i, c)] * theta[(k, c)]).sum();
                    r[i] * problem.activation.value(z)
                })
                .sum()
        })
        .collect()
}

/// $\|\theta_k\|^2/2$ for the rows of `theta`.
pub fn half_sq_norms(theta: MatRef<'_, f64>) -> Vec<f64> {
    (0..theta.nrows())
        .map(|k| {
            0.5 * (0..theta.ncols())
                .map(|c| theta[(k, c)].powi(2))
                .sum::<f64>()
        })
        .collect()
}

/// The particles $\theta_j$ of a two-level network as the rows of an $m\times d$ matrix.
pub fn particles(net: &Network) -> Mat<f64> {
    net.a().transpose().to_owned()
}

/// Run `n` independent jobs on the rayon pool and return their results in index order (so results do
/// not depend on the number of threads as long as each job derives its own random streams).
pub fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> Result<T> + Sync + Send) -> Result<Vec<T>> {
    (0..n).into_par_iter().map(f).collect()
}

/// At most `max` of `points`, evenly strided (a deterministic thinning for figures).
pub fn thin<T: Clone>(points: &[T], max: usize) -> Vec<T> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let stride = points.len().div_ceil(max);
    points.iter().step_by(stride).cloned().collect()
}

/// `(min, max)` of finite values (`(NaN, NaN)` for none).
pub fn min_max(v: impl IntoIterator<Item = f64>) -> (f64, f64) {
    v.into_iter()
        .filter(|x| x.is_finite())
        .fold((f64::NAN, f64::NAN), |(lo, hi), x| {
            (
                if lo.is_nan() { x } else { lo.min(x) },
                if hi.is_nan() { x } else { hi.max(x) },
            )
        })
}
