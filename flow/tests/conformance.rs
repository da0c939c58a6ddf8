//! One conformance suite for every integrator: convergence orders on linear ODEs with known flows,
//! tolerance and work of the adaptive method, input validation.
mod common;

use common::{dist, linear_odes, norm, LinearOde};
use nff_flow::{
    DormandPrince, DormandPrinceOptions, EulerMaruyama, FixedStep, Integrator, IntegratorSpec,
    Runner, StepControl, TerminationReason,
};

const T: f64 = 2.0;

/// Integrate `ode` to T with `integrator`; returns (global error, accepted steps, evaluations).
fn solve(ode: &LinearOde, integrator: Box<dyn Integrator>) -> (f64, u64, u64) {
    let mut runner = nff_flow::RunnerBuilder::with_boxed(ode.field(), integrator)
        .initial_state(0.0, ode.y0.clone())
        .final_time(T)
        .build()
        .unwrap();
    let r = runner.run().unwrap();
    assert_eq!(r.termination, TerminationReason::FinalTime);
    assert_eq!(r.t, T);
    let exact = (ode.exact)(T);
    (
        dist(&r.state, &exact),
        r.stats.accepted,
        r.stats.evaluations,
    )
}

/// Every fixed-step integrator with its expected order (Euler–Maruyama at τ = 0 is Euler).
type MakeIntegrator = fn(f64) -> Box<dyn Integrator>;

fn fixed_step_integrators() -> Vec<(&'static str, u32, MakeIntegrator)> {
    vec![
        ("euler", 1, |dt| Box::new(FixedStep::euler(dt).unwrap())),
        ("heun", 2, |dt| Box::new(FixedStep::heun(dt).unwrap())),
        ("rk4", 4, |dt| Box::new(FixedStep::rk4(dt).unwrap())),
        ("euler-maruyama(tau=0)", 1, |dt| {
            Box::new(EulerMaruyama::new(dt, 0.0, 7).unwrap())
        }),
    ]
}

#[test]
fn error_ratio_on_halving_the_step_is_two_to_the_order() {
    for ode in linear_odes() {
        for (name, order, make) in fixed_step_integrators() {
            assert_eq!(make(0.1).order(), order, "{name}");
            // Start in the asymptotic regime: smaller steps for low orders.
            let dt = match order {
                1 => T / 400.0,
                2 => T / 100.0,
                _ => T / 20.0,
            };
            let (e1, n1, _) = solve(&ode, make(dt));
            let (e2, n2, _) = solve(&ode, make(dt / 2.0));
            assert_eq!(n2, 2 * n1, "{name} on {}", ode.name);
            let ratio = e1 / e2;
            let expected = f64::from(1u32 << order);
            assert!(
                (ratio / expected - 1.0).abs() <= 0.2,
                "{name} on {}: error ratio {ratio:.3} vs 2^{order} = {expected} (errors {e1:.3e}, {e2:.3e})",
                ode.name
            );
        }
    }
}

#[test]
fn fixed_step_evaluation_counts() {
    let ode = &linear_odes()[0];
    for (name, order, make) in fixed_step_integrators() {
        let stages = if order == 4 { 4 } else { u64::from(order) };
        let (_, steps, evals) = solve(ode, make(0.1));
        assert_eq!(steps, 20, "{name}");
        assert_eq!(evals, 1 + stages * steps, "{name}");
    }
}

#[test]
fn last_step_is_shortened_to_land_on_the_final_time() {
    let ode = &linear_odes()[0];
    let (e, steps, _) = solve(ode, Box::new(FixedStep::rk4(0.3).unwrap()));
    assert_eq!(steps, 7); // 6 × 0.3 + 0.2
    assert!(e < 1e-2, "{e}");
}

#[test]
fn adaptive_meets_its_tolerance_and_works_less_when_looser() {
    for control in [StepControl::Pi, StepControl::Standard] {
        for ode in linear_odes() {
            let exact_norm = norm(&(ode.exact)(T));
            let mut last_steps = u64::MAX;
            for rtol in [1e-10, 1e-8, 1e-6, 1e-4] {
                let opts = DormandPrinceOptions {
                    rtol,
                    atol: rtol * 1e-3,
                    control,
                    ..Default::default()
                };
                let (e, steps, evals) = solve(&ode, Box::new(DormandPrince::new(opts).unwrap()));
                let rel = e / exact_norm;
                assert!(
                    rel <= 10.0 * rtol,
                    "{control:?} on {}: rtol {rtol:e}, relative global error {rel:.3e}",
                    ode.name
                );
                assert!(
                    steps < last_steps,
                    "{control:?} on {}: {steps} steps at rtol {rtol:e}, {last_steps} at the tighter tolerance",
                    ode.name
                );
                assert!(evals >= 6 * steps);
                last_steps = steps;
            }
        }
    }
}

#[test]
fn adaptive_fsal_costs_six_evaluations_per_attempt() {
    let ode = &linear_odes()[1];
    let mut runner = Runner::builder(
        ode.field(),
        DormandPrince::new(DormandPrinceOptions {
            h0: Some(0.01),
            ..DormandPrinceOptions::with_tolerances(1e-7, 1e-10)
        })
        .unwrap(),
    )
    .initial_state(0.0, ode.y0.clone())
    .final_time(T)
    .build()
    .unwrap();
    let r = runner.run().unwrap();
    let s = r.stats;
    // 1 initial evaluation, 6 per attempt (the 7th stage is the next step's first).
    assert_eq!(s.evaluations, 1 + 6 * (s.accepted + s.rejected), "{s:?}");
    assert_eq!(runner.field().evaluations_count(), s.evaluations);
}

trait Count {
    fn evaluations_count(&self) -> u64;
}
impl<F: nff_flow::VectorField> Count for F {
    fn evaluations_count(&self) -> u64 {
        self.evaluations()
    }
}

#[test]
fn adaptive_rejects_and_recovers_from_a_too_large_first_step() {
    let ode = &linear_odes()[0];
    let opts = DormandPrinceOptions {
        h0: Some(1.5),
        ..DormandPrinceOptions::with_tolerances(1e-8, 1e-11)
    };
    let mut runner = Runner::builder(ode.field(), DormandPrince::new(opts).unwrap())
        .initial_state(0.0, ode.y0.clone())
        .final_time(T)
        .build()
        .unwrap();
    let r = runner.run().unwrap();
    assert!(r.stats.rejected >= 1);
    assert!(dist(&r.state, &(ode.exact)(T)) < 1e-6);
}

#[test]
fn bad_settings_are_errors_not_panics() {
    assert!(FixedStep::euler(0.0).is_err());
    assert!(FixedStep::rk4(-1.0).is_err());
    assert!(FixedStep::heun(f64::NAN).is_err());
    assert!(FixedStep::euler(f64::INFINITY).is_err());
    for (rtol, atol) in [
        (0.0, 1e-9),
        (-1e-6, 1e-9),
        (f64::NAN, 1e-9),
        (1e-6, -1.0),
        (1e-6, f64::NAN),
    ] {
        let e = DormandPrince::new(DormandPrinceOptions::with_tolerances(rtol, atol));
        assert!(e.is_err(), "rtol {rtol}, atol {atol}");
    }
    let msg = DormandPrince::new(DormandPrinceOptions::with_tolerances(0.0, 1e-9))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("rtol") && msg.contains("> 0"), "{msg}");
    assert!(EulerMaruyama::new(0.1, -1.0, 0).is_err());
    assert!(IntegratorSpec::Rk4 { dt: 0.0 }.build().is_err());

    let ode = &linear_odes()[0];
    let build = |f: fn(
        nff_flow::RunnerBuilder<nff_flow::LinearField>,
    ) -> nff_flow::RunnerBuilder<nff_flow::LinearField>| {
        f(Runner::builder(ode.field(), FixedStep::euler(0.1).unwrap())).build()
    };
    // no stop rule
    assert!(build(|b| b.initial_state(0.0, vec![1.0, 0.0])).is_err());
    // wrong length, NaN state, final time before start, bad tolerance, Every(0)
    assert!(build(|b| b.initial_state(0.0, vec![1.0]).final_time(1.0)).is_err());
    assert!(build(|b| b.initial_state(0.0, vec![f64::NAN, 0.0]).final_time(1.0)).is_err());
    assert!(build(|b| b.initial_state(1.0, vec![1.0, 0.0]).final_time(0.5)).is_err());
    assert!(build(|b| b.initial_state(0.0, vec![1.0, 0.0]).final_time(f64::NAN)).is_err());
    assert!(build(|b| b
        .initial_state(0.0, vec![1.0, 0.0])
        .final_time(1.0)
        .stationary(0.0))
    .is_err());
    assert!(build(|b| b
        .initial_state(0.0, vec![1.0, 0.0])
        .final_time(1.0)
        .record(nff_flow::ObserverMode::Every(0)))
    .is_err());
    assert!(build(|b| b.final_time(1.0)).is_err());
}

/// Every integrator, fixed-step and adaptive.
fn all_integrators() -> Vec<(&'static str, Box<dyn Integrator>)> {
    let mut all: Vec<(&'static str, Box<dyn Integrator>)> = fixed_step_integrators()
        .into_iter()
        .map(|(name, _, make)| (name, make(0.1)))
        .collect();
    let opts = DormandPrinceOptions::with_tolerances(1e-6, 1e-9);
    all.push(("dopri5", Box::new(DormandPrince::new(opts).unwrap())));
    all
}

#[test]
fn step_checks_the_state_length_and_that_init_came_first() {
    let ode = &linear_odes()[0];
    let n = ode.y0.len();
    for (name, mut integ) in all_integrators() {
        let mut field = ode.field();
        let mut t = 0.0;
        // before init: an error naming init, and the state untouched
        let mut y = ode.y0.clone();
        let msg = integ
            .step(&mut field, &mut t, &mut y, 1.0)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("init"), "{name}: {msg}");
        assert_eq!((y.as_slice(), t), (ode.y0.as_slice(), 0.0), "{name}");
        // after init: a state of the wrong length is an error, not a panic or a resized state
        integ.init(&mut field, 0.0, &ode.y0).unwrap();
        let mut short = vec![1.0; n - 1];
        let msg = integ
            .step(&mut field, &mut t, &mut short, 1.0)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&format!("{n} entries")), "{name}: {msg}");
        assert_eq!(short.len(), n - 1, "{name}");
        // and a good step keeps the length
        integ.step(&mut field, &mut t, &mut y, 1.0).unwrap();
        assert_eq!(y.len(), n, "{name}");
        assert!(t > 0.0, "{name}");
    }
}

#[test]
fn divergence_ends_the_run_with_the_last_finite_state() {
    // ẏ = 1e200 y explodes in a few Euler steps.
    let field = nff_flow::LinearField::new(1, vec![1e200]).unwrap();
    let mut runner = Runner::builder(field, FixedStep::euler(1.0).unwrap())
        .initial_state(0.0, vec![1.0])
        .max_steps(100)
        .build()
        .unwrap();
    let r = runner.run().unwrap();
    assert_eq!(r.termination, TerminationReason::NonFinite);
    assert!(r.state[0].is_finite());
    assert!(r.steps < 5);
}

#[test]
fn stationarity_rule_stops_a_decaying_solution() {
    let ode = &linear_odes()[1];
    let mut runner = Runner::builder(ode.field(), FixedStep::rk4(0.05).unwrap())
        .initial_state(0.0, ode.y0.clone())
        .stationary(1e-6)
        .max_steps(1_000_000)
        .build()
        .unwrap();
    let r = runner.run().unwrap();
    assert_eq!(r.termination, TerminationReason::Stationary);
    assert!(r.dissipation < 1e-6);
}
