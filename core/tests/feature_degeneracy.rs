//! Degeneracy of i.i.d. middle layers (math.md §3.1, claims C2, C19, C20) and its absence under the
//! min-norm (DNN) and zero (ResNet) starts.
use nff_core::feature::{feature_spread, FeatureNet};
use nff_core::init::{init_feature_net, Init};
use nff_core::rng::{normal_mat, rng};
use nff_core::{Activation, Arch, Dataset, Shape};

fn sine(n: usize, d: usize, seed: u64) -> Dataset {
    let mut r = rng(seed, "test/data");
    let x = normal_mat(&mut r, n, d, 1.0 / (d as f64).sqrt());
    let y = (0..n).map(|i| (3.0 * x[(i, 0)]).sin() + 0.5).collect();
    Dataset::new(x, y).expect("valid synthetic data")
}

fn view(data: &Dataset, arch: Arch, m: usize, depth: usize, init: &Init, seed: u64) -> FeatureNet {
    let shape = Shape::new(arch, data.d(), m, depth).unwrap();
    init_feature_net(shape, data, Activation::Tanh, init, seed)
        .unwrap()
        .0
}

/// Least-squares slope of log y against log x.
fn log_log_slope(xs: &[f64], ys: &[f64]) -> f64 {
    let lx: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
    let ly: Vec<f64> = ys.iter().map(|y| y.ln()).collect();
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxy: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = lx.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

#[test]
fn iid_spread_decays_like_inverse_sqrt_width() {
    let data = sine(10, 3, 0);
    let widths: Vec<usize> = (6..=12).map(|k| 1 << k).collect(); // 64 ..= 4096
    let spreads: Vec<f64> = widths
        .iter()
        .map(|&m| feature_spread(view(&data, Arch::Dnn, m, 2, &Init::iid(), 3).features(1)))
        .collect();
    let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    let slope = log_log_slope(&xs, &spreads);
    assert!(
        (-0.6..=-0.4).contains(&slope),
        "slope {slope}, spreads {spreads:?}"
    );
    // The first layer does not degenerate.
    let z1 = feature_spread(view(&data, Arch::Dnn, 4096, 2, &Init::iid(), 3).features(0));
    assert!(z1 > 0.3, "{z1}");
}

#[test]
fn min_norm_spread_does_not_decay() {
    let data = sine(10, 3, 0);
    let spread = |m: usize| {
        view(&data, Arch::Dnn, m, 3, &Init::min_norm(), 4)
            .degeneracy(Activation::Tanh)
            .unwrap()
            .spread
    };
    let (small, large) = (spread(64), spread(1024));
    for l in 1..3 {
        let ratio = large[l] / small[l];
        assert!(
            (0.6..=1.6).contains(&ratio),
            "layer {l}: {small:?} vs {large:?}"
        );
    }
}

#[test]
fn iid_last_layer_collapses_min_norm_keeps_rank() {
    let data = sine(8, 3, 1);
    let iid = view(&data, Arch::Dnn, 1024, 3, &Init::iid(), 2)
        .degeneracy(Activation::Tanh)
        .unwrap();
    let mn = view(&data, Arch::Dnn, 1024, 3, &Init::min_norm(), 2)
        .degeneracy(Activation::Tanh)
        .unwrap();
    assert_eq!(iid.singular_values.len(), 8);
    // tanh is odd and μ_W = 0: every middle unit collapses to the feature 0, so h(Z_L)/√m is O(m^{-1/2}).
    assert!(
        iid.singular_values[0] < 0.02,
        "iid: {:?}",
        iid.singular_values
    );
    let mn_ratio = mn.singular_values[1] / mn.singular_values[0];
    assert!(
        mn.singular_values[0] > 0.1,
        "min-norm: {:?}",
        mn.singular_values
    );
    assert!(mn_ratio > 0.1, "min-norm: {:?}", mn.singular_values);
    assert!(mn.sigma_min() > 1e-8, "{:?}", mn.singular_values);
    // Particles: i.i.d. middle layers crowd together relative to layer 1; min-norm ones do not.
    assert!(
        iid.injectivity_ratio() < 0.1 * mn.injectivity_ratio(),
        "{iid:?} {mn:?}"
    );
}

#[test]
fn iid_with_nonzero_mean_collapses_to_rank_one() {
    // μ_W = 1 and a sigmoid (E h ≠ 0): every unit of layer ℓ ≥ 2 tends to one nonzero feature.
    let data = sine(8, 3, 1);
    let init = Init::Iid {
        sigma_a: 1.0,
        mu_w: 1.0,
        sigma_w: 1.0,
        sigma_v: 1.0,
    };
    let shape = Shape::new(Arch::Dnn, 3, 1024, 3).unwrap();
    let (f, _) = init_feature_net(shape, &data, Activation::Sigmoid, &init, 2).unwrap();
    let deg = f.degeneracy(Activation::Sigmoid).unwrap();
    assert_eq!(deg.numerical_rank(0.05), 1, "{:?}", deg.singular_values);
    assert!(deg.spread[2] < 0.05 * deg.spread[0], "{:?}", deg.spread);
}

#[test]
fn resnet_zero_start_keeps_particles_apart() {
    let data = sine(8, 3, 1);
    let d = view(&data, Arch::ResNet, 200, 4, &Init::zero(), 5)
        .degeneracy(Activation::Tanh)
        .unwrap();
    assert_eq!(d.min_distance.len(), 4);
    assert!((d.injectivity_ratio() - 1.0).abs() < 1e-12);
    assert!(d.spread.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-12));
    // Fewer units than points: σ_min is 0.
    let small = view(&data, Arch::ResNet, 5, 2, &Init::zero(), 5)
        .degeneracy(Activation::Tanh)
        .unwrap();
    assert_eq!(small.singular_values.len(), 8);
    assert_eq!(small.sigma_min(), 0.0);
}
