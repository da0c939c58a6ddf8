//! Consistency residuals (math.md §3.2) and the first-layer cost (claim C21).
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use nff_core::feature::{first_layer_cost, FeatureNet, FirstLayerMap};
use nff_core::init::{init_network, Init};
use nff_core::rng::{normal_mat, rng};
use nff_core::{Activation, Arch, Dataset, Shape};

fn sine(n: usize, d: usize, seed: u64) -> Dataset {
    let mut r = rng(seed, "test/data");
    let x = normal_mat(&mut r, n, d, 1.0 / (d as f64).sqrt());
    let y = (0..n).map(|i| (3.0 * x[(i, 0)]).sin() + 0.5).collect();
    Dataset::new(x, y).expect("valid synthetic data")
}

fn view(arch: Arch, depth: usize, seed: u64) -> (Dataset, FeatureNet) {
    let data = sine(8, 3, seed);
    let shape = Shape::new(arch, 3, 12, depth).unwrap();
    let (net, _) = init_network(shape, &data, Activation::Tanh, &Init::iid(), seed).unwrap();
    let f = FeatureNet::from_network(&data, Activation::Tanh, &net).unwrap();
    (data, f)
}

/// A fixed perturbation of norm `size`.
fn delta(n: usize, size: f64) -> Vec<f64> {
    let raw: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64) - 5.0).collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    raw.iter().map(|x| x * size / norm).collect()
}

#[test]
fn genuine_network_is_consistent() {
    for arch in [Arch::Dnn, Arch::ResNet] {
        let (_, f) = view(arch, 4, 3);
        let res = f.consistency_residual(Activation::Tanh);
        assert_eq!(res.len(), 3);
        assert!(res.iter().all(|&r| r < 1e-13), "{arch}: {res:?}");
    }
}

#[test]
fn perturbed_feature_shows_its_norm() {
    for arch in [Arch::Dnn, Arch::ResNet] {
        for size in [1e-6, 1e-3, 0.5] {
            let (_, mut f) = view(arch, 3, 7);
            let dz = delta(8, size);
            // Move unit 4 of the last layer: only the residual of layer 3 sees it.
            {
                let mut z = f.layer_mut(2).atoms_mut();
                for (i, d) in dz.iter().enumerate() {
                    z[(i, 4)] += d;
                }
            }
            let res = f.consistency_residual(Activation::Tanh);
            assert!(res[0] < 1e-13, "{res:?}");
            assert!(
                (res[1] - size).abs() <= 1e-12 + 1e-10 * size,
                "{arch} {size}: {res:?}"
            );

            // Move a middle-layer unit: its own residual is the perturbation; the next layer's becomes
            // nonzero because h(z) changed.
            let (_, mut g) = view(arch, 3, 7);
            {
                let mut z = g.layer_mut(1).atoms_mut();
                for (i, d) in dz.iter().enumerate() {
                    z[(i, 2)] += d;
                }
            }
            let res = g.consistency_residual(Activation::Tanh);
            assert!(
                (res[0] - size).abs() <= 1e-12 + 1e-10 * size,
                "{arch} {size}: {res:?}"
            );
            assert!(res[1] > 1e-4 * size, "{arch} {size}: {res:?}");
        }
    }
}

#[test]
fn first_layer_cost_is_the_min_norm_weight() {
    // d > N: many weights reproduce a feature; the cost is the smallest ‖a‖².
    let (n, d) = (5, 9);
    let mut r = rng(1, "test/cost");
    let x = normal_mat(&mut r, n, d, 1.0);
    let map = FirstLayerMap::new(x.as_ref()).unwrap();
    assert_eq!(map.rank(), n);
    for trial in 0..20 {
        let a0 = normal_mat(&mut r, d, 1, 1.0 + trial as f64 * 0.1);
        let mut z = Mat::zeros(n, 1);
        matmul(
            z.as_mut(),
            Accum::Replace,
            x.as_ref(),
            a0.as_ref(),
            1.0,
            Par::Seq,
        );
        let cost = first_layer_cost(z.col(0), x.as_ref()).unwrap();
        let a_star = map.weights(z.as_ref()).unwrap();
        let mut xz = Mat::zeros(n, 1);
        matmul(
            xz.as_mut(),
            Accum::Replace,
            x.as_ref(),
            a_star.as_ref(),
            1.0,
            Par::Seq,
        );
        assert!((&xz - &z).norm_l2() < 1e-12 * z.norm_l2());
        assert!((cost - a_star.squared_norm_l2()).abs() < 1e-11 * cost);
        assert!(cost <= a0.squared_norm_l2() * (1.0 + 1e-12));
        // Any other solution a* + (null-space component) costs more.
        let p = normal_mat(&mut r, d, 1, 1.0);
        let mut xp = Mat::zeros(n, 1);
        matmul(
            xp.as_mut(),
            Accum::Replace,
            x.as_ref(),
            p.as_ref(),
            1.0,
            Par::Seq,
        );
        let p_range = map.weights(xp.as_ref()).unwrap();
        let null = &p - &p_range;
        let other = &a_star + &null;
        assert!(null.norm_l2() > 1e-3);
        assert!(cost < other.squared_norm_l2());
        // The quadratic form zᵀ(XXᵀ)⁻¹z computed by a plain solve agrees.
        let mut g = Mat::zeros(n, n);
        matmul(
            g.as_mut(),
            Accum::Replace,
            x.as_ref(),
            x.transpose(),
            1.0,
            Par::Seq,
        );
        let llt = g.llt(faer::Side::Lower).unwrap();
        let sol = faer::linalg::solvers::Solve::solve(&llt, z.as_ref());
        let quad: f64 = (0..n).map(|i| z[(i, 0)] * sol[(i, 0)]).sum();
        assert!((quad - cost).abs() < 1e-8 * cost, "{quad} vs {cost}");
    }
}

#[test]
fn first_layer_penalty_is_linear_in_p1() {
    // d < N with full column rank: A = X⁺Z_1, so ∫ r_1 dp_1 = (1/m)‖A‖².
    let (data, f) = view(Arch::Dnn, 2, 5);
    let pen = f.first_layer_penalty(&data).unwrap();
    let direct = f.a().squared_norm_l2() / f.width() as f64;
    assert!((pen - direct).abs() < 1e-10 * direct, "{pen} vs {direct}");
    let costs = f.first_layer_costs(&data).unwrap();
    assert_eq!(costs.len(), f.width());
}
