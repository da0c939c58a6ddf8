//! Network flows: Euler = GD bit for bit, energy decay, the Lagrangian feature flow, checkpoints,
//! noisy GD.
mod common;

use common::{bits, problem, random_net, shape, sine_data};
use faer::Par;
use nff_core::network::Workspace;
use nff_core::{Arch, Params, Regularizer};
use nff_flow::{
    Checkpoint, DormandPrince, DormandPrinceOptions, FeatureFlow, FixedStep, Integrator,
    IntegratorSpec, NoisyGd, ObserverMode, Runner, RunnerBuilder, TerminationReason, VectorField,
    WeightFlow,
};

fn archs() -> Vec<(Arch, usize)> {
    vec![(Arch::TwoLevel, 1), (Arch::Dnn, 3), (Arch::ResNet, 3)]
}

#[test]
fn euler_is_gradient_descent_bit_for_bit() {
    let regs = [
        Regularizer::None,
        Regularizer::L2 { lambda: 0.05 },
        Regularizer::GroupL1q {
            lambda: 0.01,
            q: 1.5,
        },
    ];
    for (arch, depth) in archs() {
        for reg in regs {
            let data = sine_data(7, 3, 1, 1.0, true);
            let p = problem(data, reg);
            let s = shape(arch, 4, 12, depth);
            let net0 = random_net(s, 3, 1.0, 0.5);
            let eta = 0.3;
            let steps = 25;
            // GD
            let mut gd = net0.clone();
            let mut ws = Workspace::new(s, p.n());
            let mut vel = Params::zeros(s);
            for _ in 0..steps {
                p.gd_step(&mut gd, eta, &mut ws, &mut vel, Par::Seq);
            }
            // Euler on the weight flow, to a final time of steps·η and by a step count.
            for by_time in [true, false] {
                let field = WeightFlow::new(p.clone(), s, Par::Seq).unwrap();
                let y0 = field.initial_state(&net0).unwrap();
                let b =
                    Runner::builder(field, FixedStep::euler(eta).unwrap()).initial_state(0.0, y0);
                let b = if by_time {
                    b.final_time(steps as f64 * eta)
                } else {
                    b.max_steps(steps)
                };
                let r = b.build().unwrap().run().unwrap();
                assert_eq!(r.steps, steps);
                assert_eq!(
                    bits(&r.state),
                    bits(gd.as_slice()),
                    "{arch} {reg:?} (by time: {by_time})"
                );
            }
        }
    }
}

#[test]
fn objective_never_increases_along_rk4() {
    for (arch, depth) in archs() {
        let data = sine_data(8, 2, 2, 1.5, true);
        let p = problem(data, Regularizer::L2 { lambda: 0.01 });
        let s = shape(arch, 3, 16, depth);
        let w_sigma = if arch == Arch::ResNet { 0.0 } else { 1.0 };
        let net = random_net(s, 5, w_sigma, 1.0);
        let field = WeightFlow::new(p, s, Par::Seq).unwrap();
        let y0 = field.initial_state(&net).unwrap();
        let r = Runner::builder(field, FixedStep::rk4(0.05).unwrap())
            .initial_state(0.0, y0)
            .final_time(10.0)
            .record(ObserverMode::Every(1))
            .build()
            .unwrap()
            .run()
            .unwrap();
        assert_eq!(r.trajectory.len(), 201);
        let js: Vec<f64> = r
            .trajectory
            .iter()
            .map(|row| row.diagnostics.as_ref().unwrap().objective)
            .collect();
        for (k, w) in js.windows(2).enumerate() {
            assert!(
                w[1] <= w[0] + 1e-14 * w[0].abs(),
                "{arch}: J rose from {} to {} at step {k}",
                w[0],
                w[1]
            );
        }
        assert!(js.last().unwrap() < &(0.9 * js[0]), "{arch}: {js:?}");
        // Energy identity: -ΔJ/Δt ≈ mean dissipation over the step.
        let rows = &r.trajectory;
        let k = 100;
        let dj = (js[k + 1] - js[k]) / 0.05;
        let mean_diss = 0.5 * (rows[k].dissipation + rows[k + 1].dissipation);
        assert!(
            (dj + mean_diss).abs() <= 1e-3 * mean_diss,
            "{arch}: {dj} vs {mean_diss}"
        );
    }
}

#[test]
fn feature_flow_matches_the_weight_flow_and_the_chain_rule() {
    for (arch, depth) in archs() {
        let data = sine_data(6, 2, 3, 1.0, true);
        let p = problem(data, Regularizer::L2 { lambda: 0.1 });
        let s = shape(arch, 3, 10, depth);
        let net = random_net(s, 9, 0.8, 1.0);
        let mut ff = FeatureFlow::new(p.clone(), s, Par::Seq).unwrap();
        let mut wf = WeightFlow::new(p.clone(), s, Par::Seq).unwrap();
        let y = ff.initial_state(&net).unwrap();
        assert_eq!(ff.consistency_drift(&y).unwrap(), 0.0);
        let mut dy = vec![0.0; ff.dim()];
        ff.eval(0.0, &y, &mut dy);
        let mut dtheta = vec![0.0; wf.dim()];
        wf.eval(0.0, net.as_slice(), &mut dtheta);
        // Consistent features: the parameter velocities are the weight flow's, bit for bit.
        assert_eq!(bits(&dy[..s.len()]), bits(&dtheta), "{arch}");
        // Ż = d/dε Z(θ + ε θ̇) by central differences.
        let lay = ff.layout();
        let eps = 1e-6;
        let feats = |sign: f64| {
            let mut q = net.clone();
            for (x, v) in q.as_mut_slice().iter_mut().zip(&dtheta) {
                *x += sign * eps * v;
            }
            let mut ws = Workspace::new(s, p.n());
            p.forward_into(&q, &mut ws, Par::Seq);
            ws.z
        };
        let (zp, zm) = (feats(1.0), feats(-1.0));
        for l in 0..depth {
            let dz = &dy[lay.feature_range(l)];
            let scale = common::norm(dz).max(1e-12);
            let fd: Vec<f64> = zp[l]
                .iter()
                .zip(&zm[l])
                .map(|(a, b)| (a - b) / (2.0 * eps))
                .collect();
            let err = common::dist(dz, &fd) / scale;
            assert!(err < 1e-7, "{arch} layer {l}: relative error {err:e}");
        }
    }
}

fn drift_at(arch: Arch, depth: usize, spec: IntegratorSpec) -> f64 {
    let data = sine_data(6, 2, 4, 1.5, true);
    let p = problem(data, Regularizer::None);
    let s = shape(arch, 3, 12, depth);
    let w_sigma = if arch == Arch::ResNet { 0.5 } else { 1.0 };
    let net = random_net(s, 11, w_sigma, 1.0);
    let mut ff = FeatureFlow::new(p, s, Par::Seq).unwrap();
    let y0 = ff.initial_state(&net).unwrap();
    let mut runner = RunnerBuilder::with_boxed(ff, spec.build().unwrap())
        .initial_state(0.0, y0)
        .final_time(2.0)
        .record(ObserverMode::Every(1000))
        .build()
        .unwrap();
    let r = runner.run().unwrap();
    let from_row = r
        .trajectory
        .last()
        .unwrap()
        .diagnostics
        .as_ref()
        .unwrap()
        .drift
        .unwrap();
    let direct = runner.field_mut().consistency_drift(&r.state).unwrap();
    assert_eq!(from_row, direct);
    direct
}

#[test]
fn feature_flow_consistency_drift_vanishes_at_the_order_of_the_method() {
    for (arch, depth) in [(Arch::Dnn, 3), (Arch::ResNet, 3)] {
        for (order, make) in [
            (
                1,
                (|dt| IntegratorSpec::Euler { dt }) as fn(f64) -> IntegratorSpec,
            ),
            (2, |dt| IntegratorSpec::Heun { dt }),
            (4, |dt| IntegratorSpec::Rk4 { dt }),
        ] {
            let dt = if order == 1 { 0.01 } else { 0.05 };
            let d1 = drift_at(arch, depth, make(dt));
            let d2 = drift_at(arch, depth, make(dt / 2.0));
            let ratio = d1 / d2;
            let expected = f64::from(1u32 << order);
            eprintln!("{arch} order {order}: drift {d1:.3e} -> {d2:.3e}, ratio {ratio:.2}");
            assert!(
                d1 > 0.0 && d2 < d1,
                "{arch} order {order}: drifts {d1:e}, {d2:e}"
            );
            assert!(
                ratio > 0.7 * expected && ratio < 1.4 * expected,
                "{arch} order {order}: drift ratio {ratio:.3} (drifts {d1:.3e}, {d2:.3e})"
            );
        }
    }
    // Two-level: Z_1 = XA is linear in the weights, so every Runge–Kutta method keeps it up to rounding.
    let d = drift_at(Arch::TwoLevel, 1, IntegratorSpec::Rk4 { dt: 0.1 });
    assert!(d < 1e-12, "{d:e}");
}

/// Run `spec` on a small ResNet for `total` steps, straight or interrupted at `cut` (checkpoint →
/// JSON → resume); returns the two reports' (state bits, rows, stats).
fn straight_and_resumed(spec: IntegratorSpec, total: u64, cut: u64) {
    let data = sine_data(6, 2, 5, 1.0, true);
    let p = problem(
        data,
        Regularizer::L2Split {
            a: 0.01,
            w: 0.0,
            v: 0.02,
        },
    );
    let (arch, depth) = match spec {
        IntegratorSpec::EulerMaruyama { .. } => (Arch::TwoLevel, 1),
        _ => (Arch::ResNet, 2),
    };
    let s = shape(arch, 3, 8, depth);
    let net = random_net(s, 2, 0.0, 0.0);
    let start = || {
        let f = WeightFlow::new(p.clone(), s, Par::Seq).unwrap();
        let y0 = f.initial_state(&net).unwrap();
        RunnerBuilder::with_boxed(f, spec.build().unwrap())
            .record(ObserverMode::Every(5))
            .max_steps(total)
            .final_time(1e6)
            .initial_state(0.0, y0)
    };
    let straight = start().build().unwrap().run().unwrap();
    let mut first = start().max_steps(cut).build().unwrap();
    let part = first.run().unwrap();
    assert_eq!(part.termination, TerminationReason::MaxSteps);
    let json = serde_json::to_string(&first.checkpoint()).unwrap();
    let ckpt: Checkpoint = serde_json::from_str(&json).unwrap();
    assert_eq!(ckpt, first.checkpoint());
    let f = WeightFlow::new(p.clone(), s, Par::Seq).unwrap();
    let rest = RunnerBuilder::with_boxed(f, spec.build().unwrap())
        .record(ObserverMode::Every(5))
        .max_steps(total)
        .final_time(1e6)
        .resume(ckpt)
        .build()
        .unwrap()
        .run()
        .unwrap();
    let name = spec.name();
    assert_eq!(rest.steps, total, "{name}");
    assert_eq!(rest.t.to_bits(), straight.t.to_bits(), "{name}");
    assert_eq!(bits(&rest.state), bits(&straight.state), "{name}");
    assert_eq!(rest.stats, straight.stats, "{name}");
    let mut rows = part.trajectory.clone();
    rows.extend(rest.trajectory.iter().cloned());
    assert_eq!(rows, straight.trajectory, "{name}");
}

#[test]
fn checkpoint_and_resume_continue_the_same_trajectory() {
    for spec in [
        IntegratorSpec::Euler { dt: 0.2 },
        IntegratorSpec::Rk4 { dt: 0.2 },
        IntegratorSpec::Adaptive(DormandPrinceOptions::with_tolerances(1e-8, 1e-10)),
        IntegratorSpec::EulerMaruyama {
            dt: 0.05,
            tau: 0.01,
            seed: 3,
        },
    ] {
        straight_and_resumed(spec, 60, 25);
    }
}

#[test]
fn checkpoint_files_round_trip_exactly() {
    let dir = std::env::temp_dir().join(format!("nff-flow-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.json");
    let c = Checkpoint {
        t: 0.1 + 0.2,
        step: 3,
        state: vec![1.0 / 3.0, -2.0f64.sqrt(), 1e-300, 5e-324, f64::MAX],
        integrator: DormandPrince::new(Default::default()).unwrap().checkpoint(),
        trajectory: Vec::new(),
        fingerprint: Some(serde_json::json!({"seed": 1})),
    };
    c.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(bits(&back.state), bits(&c.state));
    assert_eq!(back, c);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(Checkpoint::load(&path).is_err());
}

#[test]
fn resume_with_another_integrator_is_an_error() {
    let data = sine_data(4, 2, 5, 1.0, false);
    let p = problem(data, Regularizer::None);
    let s = shape(Arch::TwoLevel, 2, 4, 1);
    let f = WeightFlow::new(p.clone(), s, Par::Seq).unwrap();
    let y0 = f.initial_state(&random_net(s, 1, 0.0, 0.0)).unwrap();
    let mut r = Runner::builder(f, FixedStep::euler(0.1).unwrap())
        .initial_state(0.0, y0)
        .max_steps(3)
        .build()
        .unwrap();
    r.run().unwrap();
    let c = r.checkpoint();
    let f = WeightFlow::new(p, s, Par::Seq).unwrap();
    let e = Runner::builder(f, FixedStep::rk4(0.1).unwrap())
        .resume(c)
        .max_steps(5)
        .build();
    assert!(e.is_err());
}

#[test]
fn network_shape_mismatch_is_an_error() {
    let data = sine_data(4, 2, 5, 1.0, false);
    let p = problem(data, Regularizer::None);
    assert!(WeightFlow::new(p.clone(), shape(Arch::TwoLevel, 3, 4, 1), Par::Seq).is_err());
    let f = WeightFlow::new(p.clone(), shape(Arch::TwoLevel, 2, 4, 1), Par::Seq).unwrap();
    assert!(f
        .initial_state(&Params::zeros(shape(Arch::TwoLevel, 2, 5, 1)))
        .is_err());
    let mut bad = Params::zeros(shape(Arch::TwoLevel, 2, 4, 1));
    bad.v_mut()[0] = f64::NAN;
    assert!(f.initial_state(&bad).is_err());
    // Noisy GD is for two-level networks.
    let deep = random_net(shape(Arch::ResNet, 2, 4, 2), 0, 0.0, 0.0);
    let cfg = NoisyGd {
        eta: 0.1,
        tau: 0.1,
        seed: 0,
    };
    assert!(cfg.runner(p.clone(), &deep, Par::Seq).is_err());
    assert!(NoisyGd {
        eta: 0.1,
        tau: -1.0,
        seed: 0
    }
    .check()
    .is_err());
    assert!(NoisyGd {
        eta: f64::NAN,
        tau: 0.0,
        seed: 0
    }
    .check()
    .is_err());
}

fn noisy_run(cfg: NoisyGd, steps: u64) -> Vec<f64> {
    let data = sine_data(6, 2, 6, 1.0, true);
    let p = problem(
        data,
        Regularizer::L2Split {
            a: 0.1,
            w: 0.0,
            v: 0.1,
        },
    );
    let s = shape(Arch::TwoLevel, 3, 20, 1);
    let net = random_net(s, 4, 0.0, 1.0);
    cfg.runner(p, &net, Par::Seq)
        .unwrap()
        .max_steps(steps)
        .build()
        .unwrap()
        .run()
        .unwrap()
        .state
}

#[test]
fn noisy_gd_is_reproducible_per_seed() {
    let a = noisy_run(
        NoisyGd {
            eta: 0.05,
            tau: 0.02,
            seed: 1,
        },
        50,
    );
    let b = noisy_run(
        NoisyGd {
            eta: 0.05,
            tau: 0.02,
            seed: 1,
        },
        50,
    );
    let c = noisy_run(
        NoisyGd {
            eta: 0.05,
            tau: 0.02,
            seed: 2,
        },
        50,
    );
    assert_eq!(bits(&a), bits(&b));
    assert!(common::dist(&a, &c) > 1e-3);
    // τ = 0 is plain GD (explicit Euler).
    let quiet = noisy_run(
        NoisyGd {
            eta: 0.05,
            tau: 0.0,
            seed: 1,
        },
        50,
    );
    let data = sine_data(6, 2, 6, 1.0, true);
    let p = problem(
        data,
        Regularizer::L2Split {
            a: 0.1,
            w: 0.0,
            v: 0.1,
        },
    );
    let s = shape(Arch::TwoLevel, 3, 20, 1);
    let mut gd = random_net(s, 4, 0.0, 1.0);
    let mut ws = Workspace::new(s, p.n());
    let mut vel = Params::zeros(s);
    for _ in 0..50 {
        p.gd_step(&mut gd, 0.05, &mut ws, &mut vel, Par::Seq);
    }
    assert_eq!(bits(&quiet), bits(gd.as_slice()));
}

#[test]
fn noisy_gd_without_data_signal_has_the_ornstein_uhlenbeck_variance() {
    // X = 0 and tanh(0) = 0: the risk is constant, each coordinate is an OU process with rate λ and
    // stationary variance τ/λ · (1 - ηλ/2)^{-1} under Euler–Maruyama.
    let n = 3;
    let data = nff_core::Dataset::new(faer::Mat::zeros(n, 2), vec![0.3, -0.1, 0.2]).unwrap();
    let (lam_a, lam_v, tau, eta) = (1.0, 2.0, 0.5, 0.01);
    let p = problem(
        data,
        Regularizer::L2Split {
            a: lam_a,
            w: 0.0,
            v: lam_v,
        },
    );
    let s = shape(Arch::TwoLevel, 2, 4000, 1);
    let net = Params::zeros(s);
    let state = NoisyGd { eta, tau, seed: 42 }
        .runner(p, &net, Par::Seq)
        .unwrap()
        .final_time(8.0)
        .build()
        .unwrap()
        .run()
        .unwrap()
        .state;
    let var = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let a_var = var(&state[s.a_range()]);
    let v_var = var(&state[s.v_range()]);
    for (got, lam) in [(a_var, lam_a), (v_var, lam_v)] {
        let expected = tau / lam / (1.0 - eta * lam / 2.0) * (1.0 - (-2.0 * lam * 8.0f64).exp());
        assert!(
            (got / expected - 1.0).abs() < 0.06,
            "variance {got} vs {expected} (λ = {lam})"
        );
    }
}

#[test]
fn adaptive_weight_flow_reaches_the_final_time() {
    let data = sine_data(6, 2, 7, 1.0, true);
    let p = problem(data, Regularizer::None);
    let s = shape(Arch::ResNet, 3, 16, 3);
    let net = random_net(s, 3, 0.0, 0.0);
    let f = WeightFlow::new(p, s, Par::Seq).unwrap();
    let y0 = f.initial_state(&net).unwrap();
    let r = Runner::builder(
        f,
        DormandPrince::new(DormandPrinceOptions::with_tolerances(1e-6, 1e-9)).unwrap(),
    )
    .initial_state(0.0, y0)
    .final_time(5.0)
    .record(ObserverMode::Every(10))
    .build()
    .unwrap()
    .run()
    .unwrap();
    assert_eq!(r.termination, TerminationReason::FinalTime);
    assert_eq!(r.t, 5.0);
    let rows = &r.trajectory;
    let d0 = rows[0].diagnostics.as_ref().unwrap();
    let d1 = rows.last().unwrap().diagnostics.as_ref().unwrap();
    assert!(d1.objective < d0.objective);
    assert!(rows
        .iter()
        .all(|row| row.diagnostics.as_ref().unwrap().bound.bound_holds));
    let csv = rows[0].csv_record();
    assert_eq!(
        csv.split(',').count(),
        nff_flow::Row::CSV_HEADER.split(',').count()
    );
}

#[test]
fn observers_see_the_steps_and_can_stop_the_run() {
    use nff_flow::{Observer, ObserverAction, StepInfo};
    use std::sync::{Arc, Mutex};
    struct Stopper {
        seen: Arc<Mutex<Vec<u64>>>,
    }
    impl Observer for Stopper {
        fn mode(&self) -> ObserverMode {
            ObserverMode::Every(3)
        }
        fn on_step(&mut self, info: &StepInfo<'_>) -> nff_flow::Result<ObserverAction> {
            self.seen.lock().unwrap().push(info.step);
            Ok(if info.step >= 9 {
                ObserverAction::Stop
            } else {
                ObserverAction::Continue
            })
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ode_field = nff_flow::LinearField::new(1, vec![-1.0]).unwrap();
    let saved = Arc::new(Mutex::new(Vec::new()));
    let saved2 = saved.clone();
    let r = Runner::builder(ode_field, FixedStep::euler(0.1).unwrap())
        .initial_state(0.0, vec![1.0])
        .max_steps(100)
        .observer(Stopper { seen: seen.clone() })
        .checkpoint_every(4, move |c| {
            saved2.lock().unwrap().push(c.step);
            Ok(())
        })
        .snapshots(ObserverMode::Every(5))
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(r.termination, TerminationReason::ObserverStop);
    assert_eq!(r.steps, 9);
    assert_eq!(*seen.lock().unwrap(), vec![3, 6, 9]);
    assert_eq!(*saved.lock().unwrap(), vec![4, 8]);
    let snap_steps: Vec<u64> = r.snapshots.iter().map(|s| s.step).collect();
    assert_eq!(snap_steps, vec![0, 5]);
}

#[test]
fn weight_flow_with_parallel_gemm_matches_sequential() {
    let data = sine_data(8, 2, 8, 1.0, true);
    let p = problem(data, Regularizer::None);
    let s = shape(Arch::ResNet, 3, 64, 2);
    let net = random_net(s, 1, 0.3, 1.0);
    let mut a = WeightFlow::new(p.clone(), s, Par::Seq).unwrap();
    let mut b = WeightFlow::new(p, s, Par::rayon(2)).unwrap();
    let (mut da, mut db) = (vec![0.0; a.dim()], vec![0.0; b.dim()]);
    a.eval(0.0, net.as_slice(), &mut da);
    b.eval(0.0, net.as_slice(), &mut db);
    assert!(common::dist(&da, &db) <= 1e-12 * common::norm(&da));
    assert_eq!(a.evaluations(), 1);
}

#[test]
fn configs_and_reports_round_trip_through_json() {
    for spec in [
        IntegratorSpec::Euler { dt: 0.1 },
        IntegratorSpec::Heun { dt: 0.1 },
        IntegratorSpec::Rk4 { dt: 0.1 },
        IntegratorSpec::Adaptive(DormandPrinceOptions::with_tolerances(1e-7, 1e-9)),
        IntegratorSpec::EulerMaruyama {
            dt: 0.1,
            tau: 0.2,
            seed: 9,
        },
    ] {
        let json = serde_json::to_string(&spec).unwrap();
        assert!(
            json.contains(&format!("\"method\":\"{}\"", json_name(&spec))),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<IntegratorSpec>(&json).unwrap(), spec);
        assert_eq!(spec.build().unwrap().name(), spec.name());
    }
    let minimal: IntegratorSpec =
        serde_json::from_str(r#"{"method": "adaptive", "rtol": 1e-6, "atol": 1e-9}"#).unwrap();
    assert_eq!(
        minimal,
        IntegratorSpec::Adaptive(DormandPrinceOptions::default())
    );
    // A run report with network rows.
    let data = sine_data(5, 2, 1, 1.0, true);
    let p = problem(data, Regularizer::None);
    let s = shape(Arch::ResNet, 3, 6, 2);
    let mut ff = FeatureFlow::new(p, s, Par::Seq).unwrap();
    let y0 = ff.initial_state(&random_net(s, 1, 0.0, 0.5)).unwrap();
    let r = Runner::builder(ff, FixedStep::heun(0.1).unwrap())
        .initial_state(0.0, y0)
        .max_steps(4)
        .record(ObserverMode::Every(2))
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert!(r
        .trajectory
        .iter()
        .all(|row| row.diagnostics.as_ref().unwrap().drift.is_some()));
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        serde_json::from_str::<nff_flow::RunReport>(&json).unwrap(),
        r
    );
}

fn json_name(spec: &IntegratorSpec) -> &'static str {
    match spec {
        IntegratorSpec::Adaptive(_) => "adaptive",
        other => other.name(),
    }
}

#[test]
fn resume_with_another_noise_seed_is_an_error() {
    let mut a = nff_flow::EulerMaruyama::new(0.1, 0.1, 1).unwrap();
    let mut b = nff_flow::EulerMaruyama::new(0.1, 0.1, 2).unwrap();
    let mut f = nff_flow::LinearField::new(1, vec![-1.0]).unwrap();
    a.init(&mut f, 0.0, &[1.0]).unwrap();
    b.init(&mut f, 0.0, &[1.0]).unwrap();
    assert!(b.restore(&a.checkpoint()).is_err());
    assert!(a.restore(&a.checkpoint()).is_ok());
}

/// The fixed-step integrators' elementwise passes run in parallel chunks on wide states: at m = 320, L = 3
/// (over 2·10⁵ entries, several chunks) RK4, Heun and Euler reach bit-identical states on 1 and 2 threads,
/// and the weight flow's velocity (read in place through `velocities_at`) equals `velocities_into`.
#[test]
fn fixed_step_flows_are_identical_for_one_and_two_threads_on_wide_states() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let p = problem(
        sine_data(8, 3, 2, 1.0, false),
        Regularizer::L2 { lambda: 1e-3 },
    );
    let s = shape(Arch::ResNet, 3, 320, 3);
    assert!(
        s.len() > 4 * (1 << 15),
        "the state must span several chunks"
    );
    let net0 = random_net(s, 5, 1.0, 0.5);
    // velocities_at on the flat state equals velocities_into on the Params.
    let mut ws = Workspace::new(s, p.n());
    let mut vel = Params::zeros(s);
    let j = p.velocities_into(&net0, &mut ws, &mut vel, Par::Seq);
    let mut flat = vec![0.0; s.len()];
    let theta = nff_core::ParamsRef::new(s, net0.as_slice()).unwrap();
    assert_eq!(p.velocities_at(theta, &mut ws, &mut flat, Par::Seq), j);
    assert_eq!(bits(&flat), bits(vel.as_slice()));
    assert!(nff_core::ParamsRef::new(s, &flat[1..]).is_err());
    for make in [FixedStep::rk4, FixedStep::heun, FixedStep::euler] {
        let run = |par: Par| {
            let field = WeightFlow::new(p.clone(), s, par).unwrap();
            let y0 = field.initial_state(&net0).unwrap();
            let r = Runner::builder(field, make(0.05).unwrap())
                .initial_state(0.0, y0)
                .max_steps(3)
                .build()
                .unwrap()
                .run()
                .unwrap();
            r.state
        };
        let one = run(Par::Seq);
        let two = pool.install(|| run(Par::rayon(2)));
        assert_eq!(bits(&one), bits(&two));
        assert_ne!(bits(&one), bits(net0.as_slice()), "the flow moved");
    }
}
