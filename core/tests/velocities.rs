//! The velocities of math.md §2 are the scaled negative gradients of the objective:
#![allow(clippy::needless_range_loop)] // hand-written equations index like the math
//! checked against central finite differences, the energy identity, and a GD step written out by hand.
use faer::Mat;
use nff_core::network::Workspace;
use nff_core::rng::{normal, rng};
use nff_core::{Activation, Arch, Dataset, Loss, Network, Params, Problem, Regularizer, Shape};
use proptest::prelude::*;

fn dataset(n: usize, d: usize, seed: u64, logistic: bool) -> Dataset {
    let mut r = rng(seed, "test-data");
    let x = Mat::from_fn(n, d, |_, _| 0.0).as_ref().to_owned();
    let mut x = x;
    for i in 0..n {
        for j in 0..d {
            x[(i, j)] = normal(&mut r) / (d as f64).sqrt();
        }
    }
    let y = (0..n)
        .map(|i| {
            let t = (3.0 * x[(i, 0)]).sin() + 0.5;
            if logistic {
                if t > 0.5 {
                    1.0
                } else {
                    -1.0
                }
            } else {
                t
            }
        })
        .collect();
    Dataset::new(x, y).unwrap()
}

fn random_net(shape: Shape, seed: u64, scale: f64) -> Network {
    let mut r = rng(seed, "test-net");
    let data = (0..shape.len()).map(|_| scale * normal(&mut r)).collect();
    Params::from_vec(shape, data).unwrap()
}

fn arch_of(k: usize) -> Arch {
    [Arch::TwoLevel, Arch::Dnn, Arch::ResNet][k]
}

fn reg_of(k: usize, lambda: f64, q: f64) -> Regularizer {
    match k {
        0 => Regularizer::None,
        1 => Regularizer::L2 { lambda },
        2 => Regularizer::L2Split {
            a: lambda,
            w: 0.5 * lambda,
            v: 2.0 * lambda,
        },
        _ => Regularizer::GroupL1q { lambda, q },
    }
}

/// Directional derivative of J along `dir` predicted by the velocities:
/// $dJ[\delta] = -\big(\frac1m\langle\dot A,\delta_A\rangle + \frac1{m^2}\sum\langle\dot W,\delta_W\rangle + \frac1m\langle\dot v,\delta_v\rangle\big)$.
fn predicted_directional(vel: &Params, dir: &Params) -> f64 {
    let s = vel.shape();
    let (wa, ww) = s.metric();
    let dot = |r: std::ops::Range<usize>| {
        vel.as_slice()[r.clone()]
            .iter()
            .zip(&dir.as_slice()[r])
            .map(|(a, b)| a * b)
            .sum::<f64>()
    };
    let mut acc = wa * (dot(s.a_range()) + dot(s.v_range()));
    for l in 0..s.n_w() {
        acc += ww * dot(s.w_range(l));
    }
    -acc
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Velocities agree with central finite differences of the objective (relative error ≤ 1e-6),
    /// along random directions and coordinate by coordinate on a sample of entries.
    #[test]
    fn velocities_match_finite_differences(
        arch in 0usize..3, depth in 1usize..4, m in 2usize..9, n in 2usize..7, d in 1usize..4,
        act in 0usize..3, reg in 0usize..4, lambda in 0.01f64..0.5, q in 1.0f64..3.0,
        logistic in any::<bool>(), seed in 0u64..1000,
    ) {
        let arch = arch_of(arch);
        let depth = if arch == Arch::TwoLevel { 1 } else { depth };
        let shape = Shape::new(arch, d, m, depth).unwrap();
        let activation = [Activation::Tanh, Activation::Sigmoid, Activation::Softplus][act];
        let loss = if logistic { Loss::Logistic } else { Loss::Squared };
        let problem = Problem::new(dataset(n, d, seed, logistic), activation, loss, reg_of(reg, lambda, q)).unwrap();
        let net = random_net(shape, seed, 1.0);
        let vel = problem.velocities(&net);
        let dir = random_net(shape, seed + 7, 1.0);
        let eps = 1e-5;
        let mut plus = net.clone();
        plus.axpy(eps, &dir);
        let mut minus = net.clone();
        minus.axpy(-eps, &dir);
        let fd = (problem.objective(&plus) - problem.objective(&minus)) / (2.0 * eps);
        let pred = predicted_directional(&vel, &dir);
        let scale = fd.abs().max(pred.abs()).max(1e-3);
        prop_assert!((fd - pred).abs() / scale <= 1e-6, "directional: fd {fd} vs predicted {pred}");

        // Coordinates: -m ∂J/∂A, -m² ∂J/∂W, -m ∂J/∂v, for every 3rd entry.
        let (wa, ww) = shape.metric();
        for i in (0..shape.len()).step_by(3) {
            let mut p = net.clone();
            p.as_mut_slice()[i] += eps;
            let mut mn = net.clone();
            mn.as_mut_slice()[i] -= eps;
            let g = (problem.objective(&p) - problem.objective(&mn)) / (2.0 * eps);
            let in_w = (0..shape.n_w()).any(|l| shape.w_range(l).contains(&i));
            let expect = -vel.as_slice()[i] * if in_w { ww } else { wa };
            let scale = g.abs().max(expect.abs()).max(1e-4 * if in_w { ww } else { wa });
            prop_assert!((g - expect).abs() / scale <= 1e-5, "entry {i}: fd {g} vs {expect}");
        }
    }
}

/// Energy identity (math.md §2): along the flow dJ/dt = −(‖Ȧ‖²/m + ‖Ẇ‖²/m² + ‖v̇‖²/m), checked by a
/// finite difference in time of J along an exact flow step approximated by RK4 with a tiny step.
#[test]
fn energy_identity_holds_to_six_digits() {
    for (arch, depth, reg) in [
        (Arch::Dnn, 3, Regularizer::None),
        (Arch::ResNet, 3, Regularizer::L2 { lambda: 0.1 }),
        (Arch::TwoLevel, 1, Regularizer::L2 { lambda: 0.1 }),
        (
            Arch::Dnn,
            2,
            Regularizer::GroupL1q {
                lambda: 0.05,
                q: 2.0,
            },
        ),
    ] {
        let problem = Problem::new(
            dataset(8, 3, 1, false),
            Activation::Tanh,
            Loss::Squared,
            reg,
        )
        .unwrap();
        let shape = Shape::new(arch, 3, 16, depth).unwrap();
        let net = random_net(shape, 3, 1.0);
        let vel = problem.velocities(&net);
        let predicted = -vel.scaled_sq_norm();
        // J(θ(±h)) along the flow via RK4 from θ(0), so the time difference is O(h²) accurate.
        let flow = |h: f64| {
            let f = |p: &Params| problem.velocities(p);
            let k1 = f(&net);
            let mut t = net.clone();
            t.axpy(h / 2.0, &k1);
            let k2 = f(&t);
            let mut t = net.clone();
            t.axpy(h / 2.0, &k2);
            let k3 = f(&t);
            let mut t = net.clone();
            t.axpy(h, &k3);
            let k4 = f(&t);
            let mut out = net.clone();
            out.axpy(h / 6.0, &k1);
            out.axpy(h / 3.0, &k2);
            out.axpy(h / 3.0, &k3);
            out.axpy(h / 6.0, &k4);
            problem.objective(&out)
        };
        let h = 1e-4;
        let fd = (flow(h) - flow(-h)) / (2.0 * h);
        let rel = (fd - predicted).abs() / predicted.abs();
        assert!(predicted < 0.0);
        assert!(
            rel < 1e-6,
            "{arch:?}: dJ/dt {fd} vs {predicted} (rel {rel:e})"
        );
    }
}

/// GD with a small step decreases J monotonically.
#[test]
fn gd_is_monotone_for_small_steps() {
    let problem = Problem::new(
        dataset(10, 2, 5, false),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::L2 { lambda: 0.01 },
    )
    .unwrap();
    let shape = Shape::new(Arch::ResNet, 2, 32, 3).unwrap();
    let mut net = random_net(shape, 9, 1.0);
    let mut ws = Workspace::new(shape, 10);
    let mut vel = Params::zeros(shape);
    let mut last = f64::INFINITY;
    for _ in 0..200 {
        let j = problem.gd_step(&mut net, 0.05, &mut ws, &mut vel, faer::Par::Seq);
        assert!(j <= last + 1e-15, "J increased: {last} -> {j}");
        last = j;
    }
}

/// One GD step of a tiny DNN and ResNet (d = 2, m = 2, L = 2, N = 2, squared loss, L2), written out
/// by hand from math.md §2 with plain scalar loops (no faer, no library code), compared to 1e-12.
#[test]
fn gd_step_matches_hand_written_equations() {
    for resnet in [false, true] {
        let x = [[0.3, -0.7], [1.1, 0.4]]; // x[i][a]
        let y = [0.2, -0.5];
        let a0 = [[0.5, -1.2], [0.8, 0.3]]; // a[a][j]
        let w0 = [[0.9, -0.4], [0.2, 1.5]]; // w[j][k]
        let v0 = [1.3, -0.6];
        let (lambda, eta, m, n) = (0.1, 0.05, 2.0, 2usize);
        let mut a = a0;
        let mut w = w0;
        let mut v = v0;
        for _step in 0..3 {
            // forward
            let mut z1 = [[0.0; 2]; 2];
            for i in 0..2 {
                for j in 0..2 {
                    z1[i][j] = x[i][0] * a[0][j] + x[i][1] * a[1][j];
                }
            }
            let mut z2 = [[0.0; 2]; 2];
            for i in 0..2 {
                for k in 0..2 {
                    let s: f64 = (0..2).map(|j| f64::tanh(z1[i][j]) * w[j][k]).sum::<f64>() / m;
                    z2[i][k] = if resnet { z1[i][k] + s } else { s };
                }
            }
            let yhat: Vec<f64> = (0..2)
                .map(|i| (0..2).map(|k| f64::tanh(z2[i][k]) * v[k]).sum::<f64>() / m)
                .collect();
            let r: Vec<f64> = (0..2).map(|i| (yhat[i] - y[i]) / n as f64).collect();
            let dt = |z: f64| 1.0 - z.tanh().powi(2);
            // backward
            let mut g2 = [[0.0; 2]; 2];
            for i in 0..2 {
                for k in 0..2 {
                    g2[i][k] = dt(z2[i][k]) * r[i] * v[k];
                }
            }
            let mut g1 = [[0.0; 2]; 2];
            for i in 0..2 {
                for j in 0..2 {
                    let s: f64 = (0..2).map(|k| g2[i][k] * w[j][k]).sum::<f64>() / m;
                    g1[i][j] = if resnet { g2[i][j] } else { 0.0 } + dt(z1[i][j]) * s;
                }
            }
            let mut da = [[0.0; 2]; 2];
            for c in 0..2 {
                for j in 0..2 {
                    da[c][j] = -(0..2).map(|i| x[i][c] * g1[i][j]).sum::<f64>() - lambda * a[c][j];
                }
            }
            let mut dw = [[0.0; 2]; 2];
            for j in 0..2 {
                for k in 0..2 {
                    dw[j][k] = -(0..2).map(|i| f64::tanh(z1[i][j]) * g2[i][k]).sum::<f64>()
                        - lambda * w[j][k];
                }
            }
            let dv: Vec<f64> = (0..2)
                .map(|k| -(0..2).map(|i| f64::tanh(z2[i][k]) * r[i]).sum::<f64>() - lambda * v[k])
                .collect();
            for c in 0..2 {
                for j in 0..2 {
                    a[c][j] += eta * da[c][j];
                    w[c][j] += eta * dw[c][j];
                }
                v[c] += eta * dv[c];
            }
        }
        // library
        let xm = Mat::from_fn(2, 2, |i, j| x[i][j]);
        let am = Mat::from_fn(2, 2, |i, j| a0[i][j]);
        let wm = Mat::from_fn(2, 2, |i, j| w0[i][j]);
        let arch = if resnet { Arch::ResNet } else { Arch::Dnn };
        let mut net = Params::from_blocks(arch, am.as_ref(), &[wm.as_ref()], &v0).unwrap();
        let problem = Problem::new(
            Dataset::new(xm, y.to_vec()).unwrap(),
            Activation::Tanh,
            Loss::Squared,
            Regularizer::L2 { lambda },
        )
        .unwrap();
        let mut ws = Workspace::new(net.shape(), 2);
        let mut vel = Params::zeros(net.shape());
        for _ in 0..3 {
            problem.gd_step(&mut net, eta, &mut ws, &mut vel, faer::Par::Seq);
        }
        for c in 0..2 {
            for j in 0..2 {
                assert!((net.a()[(c, j)] - a[c][j]).abs() < 1e-12);
                assert!((net.w(0)[(c, j)] - w[c][j]).abs() < 1e-12);
            }
            assert!((net.v()[c] - v[c]).abs() < 1e-12);
        }
    }
}

/// Results do not depend on the thread count (faer GEMMs split over output blocks, not reductions).
#[test]
fn velocities_identical_for_one_and_two_threads() {
    let problem = Problem::new(
        dataset(32, 3, 2, false),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::L2 { lambda: 0.01 },
    )
    .unwrap();
    let shape = Shape::new(Arch::Dnn, 3, 512, 3).unwrap();
    let net = random_net(shape, 4, 1.0);
    let mut ws = Workspace::new(shape, 32);
    let mut v1 = Params::zeros(shape);
    let mut v2 = Params::zeros(shape);
    problem.velocities_into(&net, &mut ws, &mut v1, faer::Par::Seq);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| problem.velocities_into(&net, &mut ws, &mut v2, faer::Par::rayon(2)));
    assert_eq!(v1, v2);
}

/// The fused GD step (no velocity buffer) gives bit for bit the parameters of `velocities_into` + axpy,
/// the same objective, and the velocity's scaled squared norm as its dissipation; for every architecture
/// and regularizer, with widths that do not divide the tile sizes.
#[test]
fn fused_gd_step_equals_velocities_plus_axpy() {
    for (arch, depth, m) in [
        (Arch::TwoLevel, 1, 37),
        (Arch::Dnn, 3, 300),
        (Arch::ResNet, 3, 300),
        (Arch::Dnn, 2, 1030),
    ] {
        for reg in 0..4 {
            let problem = Problem::new(
                dataset(9, 3, 3, false),
                Activation::Tanh,
                Loss::Squared,
                reg_of(reg, 0.05, 1.5),
            )
            .unwrap();
            let shape = Shape::new(arch, 3, m, depth).unwrap();
            let mut a = random_net(shape, 11, 1.0);
            let mut b = a.clone();
            let mut ws = Workspace::new(shape, 9);
            let mut vel = Params::zeros(shape);
            for step in 0..3 {
                let ja = problem.gd_step(&mut a, 0.1, &mut ws, &mut vel, faer::Par::Seq);
                let diss = vel.scaled_sq_norm();
                let rep = problem.gd_step_fused(&mut b, 0.1, &mut ws, faer::Par::Seq);
                assert_eq!(a, b, "{arch:?} L{depth} m{m} reg {reg} step {step}");
                assert_eq!(ja, rep.objective, "{arch:?} reg {reg}: objective");
                let rel = (diss - rep.dissipation).abs() / diss;
                assert!(
                    rel < 1e-12,
                    "{arch:?} reg {reg}: dissipation {diss} vs {}",
                    rep.dissipation
                );
            }
            // The objective the velocities report is the objective of the parameters.
            let j = problem.velocities_into(&a, &mut ws, &mut vel, faer::Par::Seq);
            assert_eq!(j, problem.objective(&a), "{arch:?} reg {reg}");
        }
    }
}

/// One and two threads give identical velocities and GD steps at a width where every product is split
/// into many parallel tiles (m = 2048, N = 64, L = 4), for the DNN and the ResNet.
#[test]
fn gd_steps_identical_for_one_and_two_threads_at_width_2048() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for (arch, reg) in [
        (Arch::Dnn, Regularizer::L2 { lambda: 1e-3 }),
        (
            Arch::ResNet,
            Regularizer::GroupL1q {
                lambda: 1e-3,
                q: 1.5,
            },
        ),
    ] {
        let problem = Problem::new(
            dataset(64, 3, 5, false),
            Activation::Tanh,
            Loss::Squared,
            reg,
        )
        .unwrap();
        let shape = Shape::new(arch, 3, 2048, 4).unwrap();
        let net0 = random_net(shape, 6, 1.0);
        let mut ws = Workspace::new(shape, 64);
        let run = |par: faer::Par, ws: &mut Workspace| {
            let mut vel = Params::zeros(shape);
            let j = problem.velocities_into(&net0, ws, &mut vel, par);
            let mut net = net0.clone();
            let r1 = problem.gd_step_fused(&mut net, 0.05, ws, par);
            let r2 = problem.gd_step_fused(&mut net, 0.05, ws, par);
            (j, vel, net, r1, r2)
        };
        let seq = run(faer::Par::Seq, &mut ws);
        let two = pool.install(|| run(faer::Par::rayon(2), &mut ws));
        assert_eq!(seq.0, two.0, "{arch:?}: objective");
        assert!(seq.1 == two.1, "{arch:?}: velocities differ");
        assert!(
            seq.2 == two.2,
            "{arch:?}: parameters after two steps differ"
        );
        assert_eq!((seq.3, seq.4), (two.3, two.4), "{arch:?}: step reports");
        assert!(
            seq.4.objective < seq.3.objective,
            "{arch:?}: GD did not descend"
        );
    }
}
