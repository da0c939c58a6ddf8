//! Tests of the deep program.
use super::*;
use crate::testutil::{random_net, sine_data, train};
#[allow(unused_imports)]
use faer::{Mat, MatRef};
use nff_core::Shape;
#[allow(unused_imports)]
use nff_core::{rng, Activation, Arch, Dataset, Loss, Network, Problem, Regularizer};

fn group_problem(n: usize, lambda: f64, q: f64, seed: u64) -> Problem {
    Problem::new(
        sine_data(n, 1, seed, false),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::GroupL1q { lambda, q },
    )
    .unwrap()
}

#[test]
fn c15_network_and_program_agree_to_machine_precision() {
    for &(depth, q, fresh) in &[(1, 2.0, 3), (2, 2.0, 0), (2, 1.5, 4), (3, 3.0, 2)] {
        let problem = group_problem(6, 0.03, q, 9);
        let shape = Shape::new(
            if depth == 1 {
                Arch::TwoLevel
            } else {
                Arch::Dnn
            },
            2,
            5,
            depth,
        )
        .unwrap();
        let net = random_net(shape, 1.5, 10 + depth as u64);
        let (prog, pt) = DeepProgram::from_network(&problem, &net, fresh, 3).unwrap();
        let j = problem.objective(&net);
        let p = prog.objective(&pt).unwrap();
        assert!(
            (j - p).abs() <= 1e-12 * j.abs(),
            "L={depth} q={q}: J={j} program={p}"
        );
        let (prim, feat) = prog.residuals(&pt).unwrap();
        assert!(prim <= 1e-12 && feat <= 1e-12, "residuals {prim} {feat}");
        let yhat = prog.predictions(&pt).unwrap();
        let ynet = problem.predict(&net);
        for (a, b) in yhat.iter().zip(&ynet) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()));
        }
        // Back to a network: the same parameters.
        let back = prog.to_network(&pt).unwrap();
        for (a, b) in back.net.as_slice().iter().zip(net.as_slice()) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}

#[test]
fn nonuniform_points_map_to_networks_with_the_same_predictions() {
    // A point with non-uniform masses and an unused candidate: the mapped network predicts the same.
    let problem = group_problem(6, 0.03, 2.0, 9);
    let shape = Shape::new(Arch::Dnn, 2, 4, 2).unwrap();
    let net = random_net(shape, 1.0, 5);
    let (prog, _) = DeepProgram::from_network(&problem, &net, 2, 3).unwrap();
    let sizes = prog.sizes();
    let n = problem.n();
    let mut r = rng::rng(1, "pt");
    // Random masses and weights in layer 1 -> 2, then choose layer-2 features consistent with them.
    let rho1: Vec<f64> = (0..sizes[0])
        .map(|j| {
            if j == 1 {
                0.0
            } else {
                0.5 + rng::normal(&mut r).abs()
            }
        })
        .collect();
    let s1: f64 = rho1.iter().zip(&prog.cand.pi[0]).map(|(a, b)| a * b).sum();
    let rho1: Vec<f64> = rho1.iter().map(|x| x / s1).collect();
    let rho2 = vec![1.0; sizes[1]];
    let mut u = vec![0.0; sizes[0] * sizes[1]];
    for k in 0..sizes[1] {
        for j in 0..sizes[0] {
            if rho1[j] > 0.0 {
                u[j + k * sizes[0]] = rng::normal(&mut r);
            }
        }
    }
    let mut cand = prog.cand.clone();
    for k in 0..sizes[1] {
        for i in 0..n {
            cand.z[1][(i, k)] = (0..sizes[0])
                .map(|j| u[j + k * sizes[0]] * prog.h[0][(i, j)] * cand.pi[0][j])
                .sum::<f64>()
                / rho2[k];
        }
    }
    let prog = DeepProgram::new(
        &problem.data,
        Activation::Tanh,
        Loss::Squared,
        cand,
        prog.cfg.clone(),
    )
    .unwrap();
    let v: Vec<f64> = (0..sizes[1]).map(|_| rng::normal(&mut r)).collect();
    let pt = DeepPoint {
        rho: vec![rho1, rho2],
        u: vec![u],
        v,
    };
    assert!(prog.residuals(&pt).unwrap().0 < 1e-12);
    let mapped = prog.to_network(&pt).unwrap();
    let y1 = prog.predictions(&pt).unwrap();
    let y2 = problem.predict(&mapped.net);
    for (a, b) in y1.iter().zip(&y2) {
        assert!((a - b).abs() < 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
    }
    assert_eq!(mapped.index[0].len(), sizes[0] - 1);
}

fn random_point(prog: &DeepProgram, r: &mut rng::Rng, zero_frac: f64) -> DeepPoint {
    let sizes = prog.sizes();
    let mut unif = || -> f64 { 0.5 * (1.0 + (rng::normal(r) / 2.0).tanh()) };
    let rho: Vec<Vec<f64>> = sizes
        .iter()
        .map(|&nl| {
            (0..nl)
                .map(|_| {
                    if unif() < zero_frac {
                        0.0
                    } else {
                        2.0 * unif()
                    }
                })
                .collect()
        })
        .collect();
    let u = (0..sizes.len() - 1)
        .map(|l| {
            let mut u = vec![0.0; sizes[l] * sizes[l + 1]];
            for k in 0..sizes[l + 1] {
                for j in 0..sizes[l] {
                    if rho[l][j] > 0.0 && rho[l + 1][k] > 0.0 {
                        u[j + k * sizes[l]] = 3.0 * rng::normal(r);
                    }
                }
            }
            u
        })
        .collect();
    let last = sizes.len() - 1;
    let v = (0..sizes[last])
        .map(|j| {
            if rho[last][j] > 0.0 {
                2.0 * rng::normal(r)
            } else {
                0.0
            }
        })
        .collect();
    DeepPoint { rho, u, v }
}

#[test]
fn c14_whole_objective_midpoint_tests() {
    // Group-norm program: no violation; plain L2 on the middle layer: violations.
    let problem = group_problem(6, 0.05, 2.0, 2);
    let shape = Shape::new(Arch::Dnn, 2, 4, 3).unwrap();
    let net = random_net(shape, 1.0, 8);
    let (mut prog, _) = DeepProgram::from_network(&problem, &net, 2, 4).unwrap();
    prog.cfg.beta = vec![0.1, 0.0, 0.2];
    let mut r = rng::rng(3, "midpoint");
    let (mut plain_violations, mut trials) = (0, 0);
    for q in [1.0, 1.5, 2.0, 3.0] {
        prog.cfg.q = q;
        for _ in 0..300 {
            let a = random_point(&prog, &mut r, 0.2);
            let b = random_point(&prog, &mut r, 0.2);
            let t = 0.5 * (1.0 + (rng::normal(&mut r)).tanh());
            let (fa, fb) = (prog.objective(&a).unwrap(), prog.objective(&b).unwrap());
            let fm = prog.objective(&DeepPoint::mix(&a, &b, t)).unwrap();
            let chord = t * fa + (1.0 - t) * fb;
            assert!(fm <= chord + 1e-12 * chord.abs(), "q={q}: {fm} > {chord}");
            let (pa, pb) = (
                prog.objective_plain_l2_middle(&a).unwrap(),
                prog.objective_plain_l2_middle(&b).unwrap(),
            );
            let pm = prog
                .objective_plain_l2_middle(&DeepPoint::mix(&a, &b, t))
                .unwrap();
            trials += 1;
            if pm > t * pa + (1.0 - t) * pb + 1e-12 * (pa + pb).abs() {
                plain_violations += 1;
            }
        }
    }
    assert!(
        plain_violations > 0,
        "plain L2 showed no violation in {trials} trials"
    );
    eprintln!("plain-L2 middle-layer violations: {plain_violations}/{trials}");
}

#[test]
fn c16_c17_deep_optimum_is_below_the_gd_objective() {
    let problem = group_problem(6, 0.01, 2.0, 1);
    let shape = Shape::new(Arch::Dnn, 2, 6, 2).unwrap();
    let mut net = random_net(shape, 1.0, 2);
    let j_gd = train(&problem, &mut net, 0.05, 3000);
    let report = crate::kkt::gd_kkt(&problem, &net, 6, 7).unwrap();
    eprintln!(
        "GD: J={j_gd} |vel|={:.3e} kkt={:?} bound={}",
        report.velocity_norm, report.kkt, report.dual_bound
    );
    assert!((report.program_objective - j_gd).abs() <= 1e-12 * j_gd);
    assert!(report.dual_bound <= j_gd);
    let (prog, pt) = DeepProgram::from_network(&problem, &net, 6, 7).unwrap();
    let sol = prog
        .solve(
            &DeepOptions::default(),
            Some(&pt),
            Some(&report.multipliers),
        )
        .unwrap();
    eprintln!(
        "deep: obj={} bound={} gap={:.3e} prim={:.2e} feat={:.2e} dual={:.2e} outer={} inner={} resets={} {:?} t={:.2}s kkt={:?}",
        sol.objective, sol.dual_bound, sol.gap, sol.primal_residual, sol.feature_residual, sol.dual_residual,
        sol.outer_iterations, sol.inner_iterations, sol.lbfgs_resets, sol.termination, sol.seconds, sol.kkt
    );
    assert!(
        sol.primal_residual <= 1e-6,
        "primal residual {}",
        sol.primal_residual
    );
    assert!(
        sol.objective <= j_gd + 1e-6,
        "C16: {} > {j_gd}",
        sol.objective
    );
    assert!(sol.dual_bound <= sol.objective + 1e-9);
    // The mapped network predicts what the program predicts.
    let mapped = prog.to_network(&sol.point).unwrap();
    let y = problem.predict(&mapped.net);
    for (a, b) in y.iter().zip(&sol.predictions) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
}

#[test]
fn cold_start_solve_converges_with_small_gap() {
    let problem = group_problem(5, 0.02, 2.0, 4);
    let shape = Shape::new(Arch::Dnn, 2, 5, 2).unwrap();
    let net = random_net(shape, 1.0, 3);
    let (mut prog, _) = DeepProgram::from_network(&problem, &net, 3, 1).unwrap();
    for beta in [0.0, 0.05] {
        prog.cfg.beta = vec![beta; 2];
        let sol = prog.solve(&DeepOptions::default(), None, None).unwrap();
        eprintln!(
            "cold beta={beta}: obj={} bound={} rel gap={:.3e} prim={:.2e} dual={:.2e} outer={} inner={} {:?} t={:.2}s",
            sol.objective, sol.dual_bound, sol.relative_gap, sol.primal_residual, sol.dual_residual,
            sol.outer_iterations, sol.inner_iterations, sol.termination, sol.seconds
        );
        assert!(sol.primal_residual <= 1e-6);
        assert!(
            sol.relative_gap.abs() <= 1e-3,
            "rel gap {}",
            sol.relative_gap
        );
    }
}

#[test]
fn interior_point_handles_depths_exponents_and_losses() {
    for &(depth, q, logistic, fresh) in &[
        (1, 2.0, false, 6),
        (2, 1.0, false, 3),
        (3, 1.5, false, 2),
        (2, 2.0, true, 3),
    ] {
        let data = sine_data(6, 1, 8, logistic);
        let loss = if logistic {
            Loss::Logistic
        } else {
            Loss::Squared
        };
        let problem = Problem::new(
            data,
            Activation::Tanh,
            loss,
            Regularizer::GroupL1q { lambda: 0.02, q },
        )
        .unwrap();
        let arch = if depth == 1 {
            Arch::TwoLevel
        } else {
            Arch::Dnn
        };
        let mut net = random_net(Shape::new(arch, 2, 5, depth).unwrap(), 1.0, 6);
        let j = train(&problem, &mut net, 0.05, 300);
        let (prog, pt) = DeepProgram::from_network(&problem, &net, fresh, 2).unwrap();
        let sol = prog
            .solve(&DeepOptions::default(), Some(&pt), None)
            .unwrap();
        eprintln!(
            "L={depth} q={q} logistic={logistic}: J={j:.6} obj={:.6} bound={:.6} rel gap={:.1e} prim={:.1e} dual={:.1e} newton={} {:?} {:.2}s",
            sol.objective, sol.dual_bound, sol.relative_gap, sol.primal_residual, sol.dual_residual,
            sol.inner_iterations, sol.termination, sol.seconds
        );
        assert!(
            sol.primal_residual <= 1e-6,
            "primal residual {}",
            sol.primal_residual
        );
        assert!(sol.dual_bound <= sol.objective + 1e-9);
        assert!(sol.objective <= j + 1e-6, "C16: {} > {j}", sol.objective);
        assert!(
            sol.relative_gap <= 1e-3,
            "relative gap {}",
            sol.relative_gap
        );
    }
}

#[test]
fn augmented_lagrangian_method_agrees_with_the_interior_point() {
    let problem = group_problem(5, 0.02, 2.0, 4);
    let shape = Shape::new(Arch::Dnn, 2, 4, 2).unwrap();
    let mut net = random_net(shape, 1.0, 3);
    train(&problem, &mut net, 0.05, 300);
    let (prog, pt) = DeepProgram::from_network(&problem, &net, 2, 1).unwrap();
    let ipm = prog
        .solve(&DeepOptions::default(), Some(&pt), None)
        .unwrap();
    let opts = DeepOptions {
        method: DeepMethod::AugmentedLagrangian,
        max_outer: 15,
        max_inner: 1000,
        tol_primal: 1e-8,
        tol_dual: 1e-6,
        ..DeepOptions::default()
    };
    let al = prog.solve(&opts, Some(&pt), None).unwrap();
    eprintln!(
        "ipm obj {} bound {} | al obj {} bound {} prim {:.1e} {:?} inner {}",
        ipm.objective,
        ipm.dual_bound,
        al.objective,
        al.dual_bound,
        al.primal_residual,
        al.termination,
        al.inner_iterations
    );
    // Both bounds are valid lower bounds of the (near-feasible) optima.
    assert!(al.dual_bound <= ipm.objective + 1e-9);
    assert!(ipm.dual_bound <= al.objective + 1e-6 * (1.0 + al.primal_residual.sqrt()));
    assert!(ipm.relative_gap < 1e-4, "{}", ipm.relative_gap);
}

#[test]
fn augmented_lagrangian_gradient_matches_finite_differences() {
    let problem = group_problem(5, 0.02, 2.0, 4);
    let shape = Shape::new(Arch::Dnn, 2, 3, 3).unwrap();
    let net = random_net(shape, 1.0, 3);
    let (mut prog, _) = DeepProgram::from_network(&problem, &net, 2, 1).unwrap();
    prog.cfg.beta = vec![0.1, 0.0, 0.3];
    for q in [1.0, 1.5, 2.0] {
        prog.cfg.q = q;
        let lay = Layout::new(&prog.sizes());
        let mut r = rng::rng(5, "fd");
        let x: Vec<f64> = (0..lay.len)
            .map(|_| 0.1 + rng::normal(&mut r).abs())
            .collect();
        let mu: Vec<Mat<f64>> = (0..2)
            .map(|l| Mat::from_fn(5, prog.sizes()[l + 1], |_, _| rng::normal(&mut r)))
            .collect();
        let c = vec![0.3, -0.2, 0.1];
        let mut g = vec![0.0; lay.len];
        prog.al_value_grad(&lay, &x, &mut g, &mu, &c, 3.0, 1e-3);
        let mut gg = vec![0.0; lay.len];
        for i in 0..lay.len {
            let h = 1e-6;
            let mut xp = x.clone();
            xp[i] += h;
            let mut xm = x.clone();
            xm[i] -= h;
            let fd = (prog.al_value_grad(&lay, &xp, &mut gg, &mu, &c, 3.0, 1e-3)
                - prog.al_value_grad(&lay, &xm, &mut gg, &mu, &c, 3.0, 1e-3))
                / (2.0 * h);
            assert!(
                (fd - g[i]).abs() <= 1e-6 * (1.0 + g[i].abs()),
                "q={q} var {i}: fd {fd} vs {}",
                g[i]
            );
        }
    }
}

#[test]
fn bad_deep_inputs_are_rejected() {
    let problem = group_problem(5, 0.02, 2.0, 4);
    let shape = Shape::new(Arch::Dnn, 2, 3, 2).unwrap();
    let net = random_net(shape, 1.0, 3);
    let (prog, pt) = DeepProgram::from_network(&problem, &net, 1, 1).unwrap();
    let mk = |cfg: DeepConfig| {
        DeepProgram::new(
            &problem.data,
            Activation::Tanh,
            Loss::Squared,
            prog.cand.clone(),
            cfg,
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let ok = prog.cfg.clone();
    assert!(mk(DeepConfig {
        q: 0.5,
        ..ok.clone()
    })
    .contains("q"));
    assert!(mk(DeepConfig {
        lambda_w: vec![],
        ..ok.clone()
    })
    .contains("lambda_w"));
    assert!(mk(DeepConfig {
        beta: vec![0.0, -1.0],
        ..ok.clone()
    })
    .contains("beta"));
    assert!(mk(DeepConfig {
        lambda_v: f64::NAN,
        ..ok.clone()
    })
    .contains("lambda_v"));
    let mut bad = pt.clone();
    bad.v.pop();
    assert!(prog
        .objective(&bad)
        .unwrap_err()
        .to_string()
        .contains("shape"));
    let mut cand = prog.cand.clone();
    cand.pi[1][0] = 0.0;
    let e = DeepProgram::new(
        &problem.data,
        Activation::Tanh,
        Loss::Squared,
        cand,
        ok.clone(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("> 0"), "{e}");
    let l2 = Problem::new(
        problem.data.clone(),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::L2 { lambda: 0.1 },
    )
    .unwrap();
    assert!(DeepProgram::from_network(&l2, &net, 1, 1)
        .unwrap_err()
        .to_string()
        .contains("GroupL1q"));
    let res = Shape::new(Arch::ResNet, 2, 3, 2).unwrap();
    let rnet = random_net(res, 1.0, 3);
    assert!(DeepCandidates::from_network(&problem, &rnet, 1, 1)
        .unwrap_err()
        .to_string()
        .contains("skip"));
}

/// Development probe (`cargo test --release -p nff-solvers -- --ignored deep_probe --nocapture`):
/// depth 3, N = 16, m = NFF_PROBE_M particles + as many fresh candidates per layer.
#[test]
#[ignore]
fn deep_probe() {
    let m: usize = std::env::var("NFF_PROBE_M")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let q: f64 = std::env::var("NFF_PROBE_Q")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    let problem = Problem::new(
        sine_data(16, 3, 1, false),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::GroupL1q { lambda: 0.01, q },
    )
    .unwrap();
    let mut net = random_net(Shape::new(Arch::Dnn, 4, m, 3).unwrap(), 1.0, 3);
    let j = train(&problem, &mut net, 0.2, 400);
    let (prog, _) = DeepProgram::from_network(&problem, &net, m, 5).unwrap();
    let method = match std::env::var("NFF_PROBE_METHOD").as_deref() {
        Ok("structured") => DeepMethod::StructuredBarrier,
        _ => DeepMethod::InteriorPoint,
    };
    let opts = DeepOptions {
        threads: 2,
        method,
        ..DeepOptions::default()
    };
    let sol = prog.solve(&opts, None, None).unwrap();
    eprintln!(
        "m={m} sizes {:?}: J_GD={j:.8} obj={:.12} bound={:.12} rel gap={:.2e} iters={} stages={} {:?} {:.2}s",
        prog.sizes(), sol.objective, sol.dual_bound, sol.relative_gap, sol.inner_iterations, sol.outer_iterations, sol.termination, sol.seconds
    );
}
