//! Coupled labels: for `iid` and `zero`, the width-m network's units are the first m units of the
//! width-M network drawn with the same seed (A columns, v entries, leading blocks of every W).
use nff_core::init::{init_network, Init};
use nff_core::rng::{normal_mat, rng};
use nff_core::{Activation, Arch, Dataset, Network, Shape};

fn sine(n: usize, d: usize, seed: u64) -> Dataset {
    let mut r = rng(seed, "test/data");
    let x = normal_mat(&mut r, n, d, 1.0 / (d as f64).sqrt());
    let y = (0..n).map(|i| (3.0 * x[(i, 0)]).sin() + 0.5).collect();
    Dataset::new(x, y).expect("valid synthetic data")
}

fn assert_prefix(small: &Network, large: &Network) {
    let (s, l) = (small.shape(), large.shape());
    let m = s.m;
    for i in 0..s.d {
        for j in 0..m {
            assert_eq!(small.a()[(i, j)], large.a()[(i, j)], "A[{i},{j}]");
        }
    }
    assert_eq!(small.v(), &large.v()[..m]);
    for w in 0..s.n_w() {
        for j in 0..m {
            for k in 0..m {
                assert_eq!(small.w(w)[(j, k)], large.w(w)[(j, k)], "W{w}[{j},{k}]");
            }
        }
    }
    assert_eq!(s.n_w(), l.n_w());
}

#[test]
fn iid_and_zero_are_prefix_coupled() {
    let data = sine(6, 3, 0);
    for init in [Init::iid(), Init::zero()] {
        for (arch, depth) in [(Arch::TwoLevel, 1), (Arch::Dnn, 3), (Arch::ResNet, 4)] {
            let widths = [1, 5, 17, 64];
            let nets: Vec<Network> = widths
                .iter()
                .map(|&m| {
                    let shape = Shape::new(arch, 3, m, depth).unwrap();
                    init_network(shape, &data, Activation::Tanh, &init, 42)
                        .unwrap()
                        .0
                })
                .collect();
            for pair in nets.windows(2) {
                assert_prefix(&pair[0], &pair[1]);
            }
        }
    }
}

#[test]
fn different_seeds_differ() {
    let data = sine(6, 3, 0);
    let shape = Shape::new(Arch::Dnn, 3, 8, 2).unwrap();
    let (a, _) = init_network(shape, &data, Activation::Tanh, &Init::iid(), 1).unwrap();
    let (b, _) = init_network(shape, &data, Activation::Tanh, &Init::iid(), 2).unwrap();
    assert_ne!(a.a()[(0, 0)], b.a()[(0, 0)]);
    assert_ne!(a.w(0)[(0, 0)], b.w(0)[(0, 0)]);
}
