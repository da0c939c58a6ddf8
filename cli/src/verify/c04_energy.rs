//! C4 — the energy identity of math.md §2: along the scaled gradient flow
//! $\frac{dJ}{dt} = -(\frac1m\|\dot A\|^2 + \frac1{m^2}\sum\|\dot W\|^2 + \frac1m\|\dot v\|^2)$, and GD with a small
//! step decreases $J$ monotonically.
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{ensure, Result};
use nff_core::init::{init_network, Init};
use nff_core::network::Workspace;
use nff_core::{Activation, Arch, Loss, Params, Problem, Regularizer, Shape};
use nff_flow::{FixedStep, Integrator, StepStatus, WeightFlow};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C4",
            title: "energy identity and monotone GD",
            measures: "max relative error between dJ/dt from a 4th-order one-sided time difference of J along an RK4-integrated flow and the predicted −‖θ̇‖²_scaled, over architectures, regularizers and points along a GD run",
            rule: "relative error ≤ 1e-6 (six digits) everywhere, and zero increases of J along GD with η = 0.02",
        },
        run,
    }
}

/// $dJ/dt$ at the state of `net` by the one-sided 4th-order formula
/// $f'(0)\approx(-25f_0+48f_1-36f_2+16f_3-3f_4)/(12h)$ on RK4 states $\theta(kh)$.
fn time_derivative(problem: &Problem, net: &Params, h: f64) -> Result<f64> {
    let shape = net.shape();
    let mut field = WeightFlow::new(problem.clone(), shape, faer::Par::Seq)?;
    let mut y = field.initial_state(net)?;
    let mut rk4 = FixedStep::rk4(h)?;
    let mut t = 0.0;
    rk4.init(&mut field, t, &y)?;
    let mut js = vec![problem.objective(net)];
    for _ in 0..4 {
        let status = rk4.step(&mut field, &mut t, &mut y, f64::INFINITY)?;
        ensure!(
            matches!(status, StepStatus::Accepted),
            "RK4 step failed: {status:?}"
        );
        js.push(problem.objective(&Params::from_vec(shape, y.clone())?));
    }
    Ok((-25.0 * js[0] + 48.0 * js[1] - 36.0 * js[2] + 16.0 * js[3] - 3.0 * js[4]) / (12.0 * h))
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let data = sine(ctx.size.pick(10, 20), 3, ctx.data_seed)?;
    let m = ctx.size.pick(32, 128);
    let gd_steps = ctx.size.pick(400, 2000);
    let eta = 0.02;
    let cases = [
        (Arch::TwoLevel, 1, Regularizer::L2 { lambda: 0.1 }),
        (Arch::Dnn, 3, Regularizer::None),
        (Arch::ResNet, 3, Regularizer::L2 { lambda: 0.1 }),
        (
            Arch::Dnn,
            2,
            Regularizer::GroupL1q {
                lambda: 0.01,
                q: 2.0,
            },
        ),
    ];
    let mut worst: f64 = 0.0;
    let mut increases = 0usize;
    let mut series = Vec::new();
    let mut error_series = Vec::new();
    let mut checks = Vec::new();
    for (arch, depth, reg) in cases {
        let mut case_checks = Vec::new();
        let problem = Problem::new(data.clone(), Activation::Tanh, Loss::Squared, reg)?;
        let shape = Shape::new(arch, data.d(), m, depth)?;
        let init = if arch == Arch::Dnn {
            Init::min_norm()
        } else {
            Init::iid()
        };
        let (mut net, _) = init_network(shape, &data, Activation::Tanh, &init, ctx.init_seed)?;
        let mut ws = Workspace::new(shape, data.n());
        let mut vel = Params::zeros(shape);
        let mut traj = Vec::new();
        let mut last = f64::INFINITY;
        for step in 0..=gd_steps {
            // The group norm is not differentiable where an entry is 0, and GD makes entries chatter
            // around 0: the identity is a statement about smooth J, so that case is checked at the
            // (random, zero-free) start only.
            let smooth = !matches!(reg, Regularizer::GroupL1q { .. });
            if step % (gd_steps / 4) == 0 && (smooth || step == 0) {
                let vel0 = problem.velocities(&net);
                let predicted = -vel0.scaled_sq_norm();
                // The identity is about smooth J: the stencil [0, 4h] must not reach a kink |W_jk| = 0 of the
                // group norm. To first order W_jk reaches 0 at time |W_jk|/|Ẇ_jk|, so h ≤ min |W|/(8|Ẇ|)
                // keeps the stencil within half of that (at m = 128 some of the 16 384 random entries lie
                // within the default stencil's reach of 0).
                let h = if smooth {
                    1e-3
                } else {
                    let mut h_safe: f64 = 1e-3;
                    for l in 0..shape.n_w() {
                        let (w, wd) = (net.w(l), vel0.w(l));
                        for k in 0..w.ncols() {
                            for j in 0..w.nrows() {
                                if wd[(j, k)] != 0.0 {
                                    h_safe = h_safe.min(w[(j, k)].abs() / (8.0 * wd[(j, k)].abs()));
                                }
                            }
                        }
                    }
                    h_safe
                };
                let fd = time_derivative(&problem, &net, h)?;
                let rel = (fd - predicted).abs() / predicted.abs();
                worst = worst.max(rel);
                checks.push((step as f64 * eta, rel));
                case_checks.push((step as f64 * eta, rel.max(1e-18)));
            }
            let j = problem.gd_step(&mut net, eta, &mut ws, &mut vel, ctx.par);
            if j > last {
                increases += 1;
            }
            last = j;
            traj.push((step as f64 * eta, j));
        }
        let name = format!("{arch} L={depth}, {}", reg_name(&reg));
        error_series.push(Series::line_points(name.clone(), case_checks));
        series.push(Series::line(format!("J(t), {name}"), traj));
    }
    let threshold = 1e-6;
    let passed = worst <= threshold && increases == 0;
    // The tested quantity (the identity's relative error at each check) on top; J(t) (monotone GD) below.
    let error_panel = LinePlot {
        title: format!(
            "C4 (a): energy identity, relative error of dJ/dt = −‖θ̇‖² (m = {m}); worst {worst:.1e}"
        ),
        x_label: "t = η·steps of the GD run where the identity is checked".into(),
        y_label: "|dJ/dt + ‖θ̇‖²_scaled| / ‖θ̇‖²_scaled".into(),
        log_y: true,
        series: error_series,
        hlines: vec![(format!("threshold {threshold:.0e}"), threshold)],
        ..Default::default()
    }
    .to_svg()?;
    let objective_panel = LinePlot {
        title: format!("C4 (b): J along GD (η = {eta}, m = {m}): {increases} increases"),
        x_label: "t = η·steps".into(),
        y_label: "objective J".into(),
        log_y: true,
        series,
        ..Default::default()
    }
    .to_svg()?;
    let figure = crate::plot::stacked(&error_panel, &objective_panel);
    Ok(Outcome {
        passed,
        value: worst,
        threshold,
        detail: format!(
            "{} identity checks (3 smooth cases × 5 points along GD + the group norm at its zero-free start): max relative error {worst:.2e}; J increased {increases} times in {} GD steps",
            checks.len(),
            4 * gd_steps
        ),
        figure: Some(figure),
    })
}

fn reg_name(r: &Regularizer) -> String {
    match r {
        Regularizer::None => "no reg".into(),
        Regularizer::L2 { lambda } => format!("L2 λ={lambda}"),
        Regularizer::L2Split { a, w, v } => format!("L2 ({a},{w},{v})"),
        Regularizer::GroupL1q { lambda, q } => format!("group λ={lambda} q={q}"),
    }
}
