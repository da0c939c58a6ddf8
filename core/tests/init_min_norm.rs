//! Claim C1 (math.md §3.3): the min-norm initialization is exactly consistent at every finite width,
//! and its middle weights stay O(1) as the width grows.
use nff_core::init::{init_feature_net, init_network, Init};
use nff_core::rng::{normal_mat, rng};
use nff_core::{Activation, Arch, Dataset, Shape};

/// The default synthetic data of math.md §6: $x\sim\mathcal N(0, I/d)$, $y = \sin(3x_1) + 1/2$.
fn sine(n: usize, d: usize, seed: u64) -> Dataset {
    let mut r = rng(seed, "test/data");
    let x = normal_mat(&mut r, n, d, 1.0 / (d as f64).sqrt());
    let y = (0..n).map(|i| (3.0 * x[(i, 0)]).sin() + 0.5).collect();
    Dataset::new(x, y).expect("valid synthetic data")
}

#[test]
fn min_norm_is_consistent() {
    for &(n, d) in &[(6, 2), (12, 3), (20, 5)] {
        let data = sine(n, d, 11);
        for depth in 2..=4 {
            for &m in &[4 * n, 8 * n] {
                let shape = Shape::new(Arch::Dnn, d, m, depth).unwrap();
                let (f, report) =
                    init_feature_net(shape, &data, Activation::Tanh, &Init::min_norm(), 5).unwrap();
                let res = f.consistency_residual(Activation::Tanh);
                assert_eq!(res.len(), depth - 1);
                let worst = res.iter().copied().fold(0.0, f64::max);
                assert!(
                    worst <= 1e-10,
                    "N={n} d={d} L={depth} m={m}: residual {res:?}, report {report:?}"
                );
                // The network's own forward features reproduce the targets.
                let (net, _) =
                    init_network(shape, &data, Activation::Tanh, &Init::min_norm(), 5).unwrap();
                let g = nff_core::feature::FeatureNet::from_network(&data, Activation::Tanh, &net)
                    .unwrap();
                for l in 0..depth {
                    let (a, b) = (f.features(l), g.features(l));
                    let diff = (0..m)
                        .flat_map(|k| (0..n).map(move |i| (a[(i, k)] - b[(i, k)]).abs()))
                        .fold(0.0, f64::max);
                    assert!(diff < 1e-9, "layer {l}: forward vs target {diff}");
                }
            }
        }
    }
}

#[test]
fn min_norm_weights_stay_order_one() {
    let (n, d) = (10, 3);
    let data = sine(n, d, 2);
    let mean_abs_w = |m: usize| {
        let shape = Shape::new(Arch::Dnn, d, m, 3).unwrap();
        let (net, _) = init_network(shape, &data, Activation::Tanh, &Init::min_norm(), 1).unwrap();
        let w = net.w(1);
        (0..m)
            .flat_map(|j| (0..m).map(move |k| w[(j, k)].abs()))
            .sum::<f64>()
            / (m * m) as f64
    };
    let (small, large) = (mean_abs_w(4 * n), mean_abs_w(16 * n));
    let ratio = large / small;
    assert!(
        (0.6..=1.6).contains(&ratio),
        "mean |W| at m = 4N: {small}, at 16N: {large}"
    );
}

#[test]
fn relu_and_sigmoid_are_consistent_too() {
    let data = sine(8, 3, 4);
    for act in [Activation::Sigmoid, Activation::Softplus, Activation::Relu] {
        let shape = Shape::new(Arch::Dnn, 3, 64, 3).unwrap();
        let (f, report) = init_feature_net(shape, &data, act, &Init::min_norm(), 9).unwrap();
        let res = f.consistency_residual(act);
        let tol = if report.ridged() { 1e-6 } else { 1e-10 };
        assert!(res.iter().all(|&r| r <= tol), "{act:?}: {res:?} {report:?}");
    }
}
