//! The τ > 0 dual Newton–CG of the two-level program: certified gaps on harder instances (small τ, both
//! losses, a feature penalty) and agreement with a much tighter solve; the fused kernels against plain products.
use faer::{Mat, Par};
use nff_core::data::BuiltinDataset;
use nff_core::{Activation, Dataset, Loss};
use nff_solvers::linalg::{weighted_gram, weighted_gram_into, weighted_gram_matvec};
use nff_solvers::{candidates, Termination, TwoLevelConfig, TwoLevelOptions, TwoLevelProgram};

fn program(loss: Loss, per_axis: usize, n: usize, cfg: TwoLevelConfig) -> TwoLevelProgram {
    let mut data = Dataset::builtin(BuiltinDataset::Sine, n, 1, 0)
        .unwrap()
        .with_bias();
    if loss == Loss::Logistic {
        for y in data.y.iter_mut() {
            *y = if *y >= 0.5 { 1.0 } else { -1.0 };
        }
    }
    let theta = candidates::grid(2, per_axis, 3.0).unwrap();
    let rho0 = candidates::uniform_weights(theta.nrows());
    TwoLevelProgram::new(&data, Activation::Tanh, loss, theta.as_ref(), &rho0, cfg).unwrap()
}

#[test]
fn smooth_dual_reaches_certified_gaps_on_hard_instances() {
    for loss in Loss::ALL {
        for &(l1, l2, tau) in &[
            (0.01, 0.0, 0.1),
            (0.01, 0.0, 0.01),
            (0.01, 0.0, 1e-3),
            (0.01, 0.01, 1e-4),
            (1e-3, 0.01, 1e-3),
            (1.0, 0.1, 1.0),
        ] {
            let cfg = TwoLevelConfig {
                lambda1: l1,
                lambda2: l2,
                tau,
            };
            let prog = program(loss, 24, 32, cfg);
            let sol = prog
                .solve(&TwoLevelOptions {
                    tol_gap: 1e-8,
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(sol.termination, Termination::Converged, "{loss} {cfg:?}");
            assert!(
                sol.relative_gap <= 1e-8,
                "{loss} {cfg:?}: {}",
                sol.relative_gap
            );
            assert!(sol.gap >= -1e-12 * sol.objective.abs(), "{loss} {cfg:?}");
            // The reported objective is P at the returned feasible point and the dual value is D at the reported
            // dual point.
            assert!(
                (sol.objective - prog.objective(&sol.w, &sol.rho)).abs()
                    <= 1e-15 * sol.objective.abs().max(1.0)
            );
            assert_eq!(sol.dual_objective, prog.dual_objective(&sol.dual_point));
            assert!(sol.kkt.simplex_residual < 1e-12);
            // A much tighter solve lies within the certified gap.
            let tight = prog.solve(&TwoLevelOptions::default()).unwrap();
            assert!(
                tight.relative_gap <= 1e-10,
                "{loss} {cfg:?}: {}",
                tight.relative_gap
            );
            assert!(sol.objective - tight.dual_objective <= sol.gap + 1e-10 * sol.objective.abs());
            assert!(tight.objective >= sol.dual_objective - 1e-12 * sol.objective.abs());
        }
    }
}

#[test]
fn fused_gram_kernels_match_plain_products() {
    let (n, k) = (7, 300);
    let h = Mat::from_fn(n, k, |i, j| ((i * 31 + j * 17) % 23) as f64 / 11.0 - 1.0);
    // Weights with dropped (tiny) columns in between, so blocks are gathered.
    let c: Vec<f64> = (0..k)
        .map(|j| {
            if j % 5 == 3 {
                1e-20
            } else {
                0.5 + (j % 7) as f64
            }
        })
        .collect();
    let plain = weighted_gram(h.as_ref(), &c, Par::Seq);
    for block in [1, 4, 64, 1000] {
        let mut buf = Mat::zeros(n, block);
        let mut out = Mat::from_fn(n, n, |_, _| f64::NAN);
        weighted_gram_into(h.as_ref(), &c, Par::Seq, &mut buf, &mut out);
        for i in 0..n {
            for j in 0..n {
                let scale = plain[(i, i)].abs().max(plain[(j, j)].abs());
                assert!(
                    (out[(i, j)] - plain[(i, j)]).abs() <= 1e-12 * scale,
                    "block {block} ({i},{j})"
                );
            }
        }
    }
    let v: Vec<f64> = (0..n).map(|i| (i as f64 - 3.0) / 2.0).collect();
    let mut y = vec![f64::NAN; n];
    let mut t = vec![0.0; k];
    weighted_gram_matvec(h.as_ref(), &c, &v, &mut y, &mut t);
    for i in 0..n {
        let want: f64 = (0..n).map(|j| plain[(i, j)] * v[j]).sum();
        assert!(
            (y[i] - want).abs() <= 1e-12 * want.abs().max(1.0),
            "{i}: {} vs {want}",
            y[i]
        );
    }
}
