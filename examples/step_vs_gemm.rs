//! A fused GD step ([`Problem::gd_step_fused`], math.md §2) against faer's square GEMM, interleaved in one
//! process: each round times one square GEMM (n = m) and one step of the DNN and of the ResNet, so a slow
//! spell of a shared machine hits all three alike. Prints the medians over the rounds and the step's rate
//! (counted on its GEMM FLOPs) as a fraction of the GEMM's.
//!
//! The criterion bench (`cargo bench --bench velocities -- gd_step`) measures the same things one after the
//! other; on a noisy machine this interleaved form is the steadier ratio.
//!
//! ```text
//! cargo run --release --example step_vs_gemm -- [threads = 2] [rounds = 21] [m = 2048] [N = 64] [L = 4] [data = sine]
//! ```
//!
//! `data` is a built-in name: `sine` (the default, d = 3) or a real data set, e.g. `breast-cancer` (d = 30,
//! its first N points, standardized with their own mean and standard deviation as a held-out run's
//! training part is): `-- 2 21 2048 512 4 breast-cancer` times the step of issue 15 at N = 512.
mod common;
use common::{arg, median};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use nff::core::data::BuiltinDataset;
use nff::core::init::{init_network, Init};
use nff::core::network::Workspace;
use nff::core::split::Standardizer;
use nff::core::{Activation, Arch, Dataset, Loss, Problem, Regularizer, Shape};
use std::time::Instant;

fn main() {
    let (threads, rounds, m, n, depth) =
        (arg(1, 2), arg(2, 21), arg(3, 2048), arg(4, 64), arg(5, 4));
    let par = if threads <= 1 {
        Par::Seq
    } else {
        Par::rayon(threads)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .expect("thread pool");
    let kind: BuiltinDataset = std::env::args()
        .nth(6)
        .unwrap_or_else(|| "sine".into())
        .parse()
        .expect("a built-in data set name");
    let d = kind.full_size().map_or(3, |(_, d)| d);
    let raw = Dataset::builtin(kind, n, d, 1).expect("data");
    // A real data set's raw columns differ in scale by 10^4: standardized, as a held-out run trains on it.
    let data = if kind.is_real() {
        Standardizer::fit(&raw, false)
            .apply(&raw)
            .expect("standardize")
    } else {
        raw
    };
    let archs = [Arch::Dnn, Arch::ResNet];
    let mut setups = Vec::new();
    for arch in archs {
        let data = data.clone();
        let shape = Shape::new(arch, d, m, depth).expect("shape");
        let (net, _) = init_network(shape, &data, Activation::Tanh, &Init::iid(), 1).expect("init");
        let problem = Problem::new(
            data,
            Activation::Tanh,
            Loss::Squared,
            Regularizer::L2 { lambda: 1e-3 },
        )
        .expect("problem");
        setups.push((problem, net, Workspace::new(shape, n)));
    }
    let f = |i: usize, j: usize| ((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5;
    let (a, b) = (Mat::from_fn(m, m, f), Mat::from_fn(m, m, |i, j| f(j, i)));
    let mut c = Mat::<f64>::zeros(m, m);
    let mut times = vec![Vec::new(); 1 + archs.len()];
    pool.install(|| {
        for round in 0..=rounds {
            let t = Instant::now();
            matmul(c.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0, par);
            let gemm = t.elapsed().as_secs_f64();
            let mut steps = Vec::new();
            for (problem, net, ws) in setups.iter_mut() {
                let t = Instant::now();
                // A tiny step keeps the state, and so the work, the same over the rounds.
                problem.gd_step_fused(net, 1e-9, ws, par);
                steps.push(t.elapsed().as_secs_f64());
            }
            if round > 0 {
                times[0].push(gemm);
                for (k, s) in steps.into_iter().enumerate() {
                    times[k + 1].push(s);
                }
            }
        }
    });
    let gemm = median(times[0].clone());
    let gemm_rate = 2.0 * (m as f64).powi(3) / gemm;
    println!(
        "data {kind} (d = {d}), m = {m}, N = {n}, L = {depth}, {threads} thread(s), median of {rounds} interleaved rounds"
    );
    println!(
        "square GEMM n = {m}: {:.1} ms, {:.1} GFLOP/s",
        gemm * 1e3,
        gemm_rate / 1e9
    );
    for (k, arch) in archs.iter().enumerate() {
        let flops = setups[k].1.shape().gemm_flops(n) as f64;
        let t = median(times[k + 1].clone());
        println!(
            "fused GD step {arch:7}: {:.1} ms, {:.1} GFLOP/s, {:.0}% of GEMM",
            t * 1e3,
            flops / t / 1e9,
            100.0 * flops / t / gemm_rate
        );
    }
}
