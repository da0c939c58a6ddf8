//! network → FeatureNet → network reproduces parameters and predictions (math.md §3.2).
use nff_core::feature::FeatureNet;
use nff_core::rng::{normal_mat, normal_vec, rng};
use nff_core::{Activation, Arch, Dataset, Loss, Params, Problem, Regularizer, Shape};
use proptest::prelude::*;

fn arch_strategy() -> impl Strategy<Value = Arch> {
    prop_oneof![Just(Arch::TwoLevel), Just(Arch::Dnn), Just(Arch::ResNet)]
}

fn act_strategy() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Tanh),
        Just(Activation::Sigmoid),
        Just(Activation::Softplus),
        Just(Activation::Relu)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(
        arch in arch_strategy(),
        act in act_strategy(),
        d in 1usize..5,
        extra_n in 1usize..8,
        m in 1usize..12,
        depth in 1usize..5,
        seed in 0u64..1000,
    ) {
        // d < N, so a Gaussian X has full column rank and A = X⁺XA is recovered exactly.
        let n = d + extra_n;
        let depth = if arch == Arch::TwoLevel { 1 } else { depth };
        let mut r = rng(seed, "test/roundtrip");
        let x = normal_mat(&mut r, n, d, 1.0);
        let y = normal_vec(&mut r, n, 1.0);
        let data = Dataset::new(x, y).unwrap();
        let shape = Shape::new(arch, d, m, depth).unwrap();
        let net = Params::from_vec(shape, normal_vec(&mut r, shape.len(), 1.0)).unwrap();

        let f = FeatureNet::from_network(&data, act, &net).unwrap();
        prop_assert_eq!(f.arch(), arch);
        prop_assert_eq!((f.depth(), f.width(), f.n_points()), (depth, m, n));
        let back = f.to_network(&data).unwrap();
        prop_assert_eq!(back.shape(), shape);
        let scale = net.as_slice().iter().fold(1.0_f64, |s, x| s.max(x.abs()));
        for (a, b) in back.as_slice().iter().zip(net.as_slice()) {
            prop_assert!((a - b).abs() <= 1e-9 * scale, "{} vs {}", a, b);
        }

        let problem = Problem::new(data.clone(), act, Loss::Squared, Regularizer::l2(0.0)).unwrap();
        let y0 = problem.predict(&net);
        let y1 = problem.predict(&back);
        let y2 = f.predict(act);
        for i in 0..n {
            prop_assert!((y0[i] - y1[i]).abs() <= 1e-9 * (1.0 + y0[i].abs()));
            prop_assert!((y0[i] - y2[i]).abs() <= 1e-12 * (1.0 + y0[i].abs()));
        }
        let res = f.consistency_residual(act);
        prop_assert_eq!(res.len(), depth - 1);
        prop_assert!(res.iter().all(|&r| r <= 1e-12), "{:?}", res);
    }
}

#[test]
fn from_problem_checks_dimensions() {
    let mut r = rng(0, "test");
    let data = Dataset::new(normal_mat(&mut r, 5, 2, 1.0), vec![0.0; 5]).unwrap();
    let problem =
        Problem::new(data, Activation::Tanh, Loss::Squared, Regularizer::l2(0.0)).unwrap();
    let net = Params::zeros(Shape::new(Arch::Dnn, 3, 4, 2).unwrap());
    assert!(FeatureNet::from_problem(&problem, &net).is_err());
    let ok = Params::zeros(Shape::new(Arch::Dnn, 2, 4, 2).unwrap());
    assert!(FeatureNet::from_problem(&problem, &ok).is_ok());
}
