//! Criterion benches of the two-level convex program (math.md §4.1): whole solves to a certified relative
//! gap ≤ 1e-8 and one interior-point iteration, with faer's GEMM of the same shape measured in the same run.
//!
//! The instance of issue 4: $N = 64$ sine points ($x\sim\mathcal N(0,1)$, $y = \sin 3x + \frac12$, a bias column),
//! candidates on the $64\times64$ grid of $[-3,3]^2$ ($K = 4096$), uniform $\rho_0$, tanh, squared loss,
//! $\lambda_1 = 0.01$; $\tau = 0$ (dual interior point; $\lambda_2 = 0$ and $0.01$) and $\tau = 0.01$ (dual Newton).
//!
//! One interior-point iteration ([`TwoLevelIpm::step`]) costs $N(N+1)K$ flops for the lower triangle of the weighted
//! Gram $H\,\mathrm{diag}(c)H^\top$ plus $14NK$ for its matrix–vector products
//! ([`TwoLevelIpm::flops_per_iteration`]; the $O(K)$ per-cone work is not counted); its throughput is reported
//! in FLOP ("elements" in criterion's output = FLOP/s) next to faer's GEMM $(N\times K)(K\times N)$ and a square
//! GEMM ($n = 1024$), and a table after the run lists GFLOP/s and the ratio to the square GEMM.
//!
//! `cargo bench --bench convex -- '^ci/'` runs the small group only (K = 400, N = 20; a bare `ci` would also match "velo**ci**ties"-style ids);
//! `NFF_BENCH_THREADS=k` runs on k threads (default 1; the solver's Gram products and the GEMMs use them).
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use nff::core::data::BuiltinDataset;
use nff::core::{Activation, Dataset, Loss};
use nff::solvers::{candidates, TwoLevelConfig, TwoLevelIpm, TwoLevelOptions, TwoLevelProgram};

mod common;

/// `NFF_BENCH_THREADS`, default 1.
fn threads() -> usize {
    common::threads(1)
}

fn par() -> Par {
    common::par(threads())
}

/// The sine instance with a `per_axis`² grid on [−3, 3]², seeded.
fn program(per_axis: usize, n: usize, lambda2: f64, tau: f64) -> TwoLevelProgram {
    let data = Dataset::builtin(BuiltinDataset::Sine, n, 1, 0)
        .unwrap()
        .with_bias();
    let theta = candidates::grid(2, per_axis, 3.0).unwrap();
    let rho0 = candidates::uniform_weights(theta.nrows());
    let cfg = TwoLevelConfig {
        lambda1: 0.01,
        lambda2,
        tau,
    };
    TwoLevelProgram::new(
        &data,
        Activation::Tanh,
        Loss::Squared,
        theta.as_ref(),
        &rho0,
        cfg,
    )
    .unwrap()
}

fn options() -> TwoLevelOptions {
    TwoLevelOptions {
        tol_gap: 1e-8,
        threads: threads(),
        ..TwoLevelOptions::default()
    }
}

/// Whole solves; each is checked once (certified gap ≤ 1e-8) before timing.
fn bench_solves(c: &mut Criterion, group_name: &str, per_axis: usize, n: usize) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    for (label, lambda2, tau) in [
        ("tau0", 0.0, 0.0),
        ("tau0_l2", 0.01, 0.0),
        ("tau0.01", 0.0, 0.01),
    ] {
        let prog = program(per_axis, n, lambda2, tau);
        let sol = prog.solve(&options()).unwrap();
        assert!(
            sol.relative_gap <= 1e-8,
            "{label}: relative gap {}",
            sol.relative_gap
        );
        eprintln!(
            "{group_name}/{label}: K = {}, N = {n}, {} iterations ({}), P = {:.12e}, certified relative gap {:.1e}",
            prog.k(),
            sol.iterations,
            sol.method,
            sol.objective,
            sol.relative_gap
        );
        let id = BenchmarkId::new(format!("solve/{label}/N{n}"), prog.k());
        group.bench_with_input(id, &prog, |b, prog| {
            b.iter(|| prog.solve(&options()).unwrap());
        });
    }
    group.finish();
}

/// One interior-point iteration from the state after `warm` iterations, and faer's GEMM of the
/// Gram shape $(N\times K)(K\times N)$ and a square one.
fn bench_iteration(c: &mut Criterion, group_name: &str, per_axis: usize, n: usize, square: usize) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(20);
    let prog = program(per_axis, n, 0.0, 0.0);
    let k = prog.k();
    let mut ipm = TwoLevelIpm::new(&prog, par()).unwrap();
    for _ in 0..8 {
        ipm.step().unwrap();
    }
    group.throughput(Throughput::Elements(ipm.flops_per_iteration() as u64));
    group.bench_with_input(
        BenchmarkId::new(format!("ipm_iteration/N{n}"), k),
        &k,
        |b, _| {
            b.iter_batched(
                || ipm.clone(),
                |mut s| s.step().unwrap(),
                BatchSize::SmallInput,
            );
        },
    );
    // The Gram shape.
    let h = Mat::from_fn(n, k, |i, j| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5);
    let mut out = Mat::<f64>::zeros(n, n);
    group.throughput(Throughput::Elements((2 * n * n * k) as u64));
    group.bench_with_input(
        BenchmarkId::new(format!("gemm/gram/N{n}"), k),
        &k,
        |b, _| {
            b.iter(|| {
                matmul(
                    out.as_mut(),
                    Accum::Replace,
                    h.as_ref(),
                    h.transpose(),
                    1.0,
                    par(),
                )
            });
        },
    );
    let a = Mat::from_fn(square, square, |i, j| ((i + 2 * j) % 13) as f64 / 13.0);
    let mut sq = Mat::<f64>::zeros(square, square);
    group.throughput(Throughput::Elements((2 * square * square * square) as u64));
    group.bench_with_input(BenchmarkId::new("gemm/square", square), &square, |b, _| {
        b.iter(|| {
            matmul(
                sq.as_mut(),
                Accum::Replace,
                a.as_ref(),
                a.as_ref(),
                1.0,
                par(),
            )
        });
    });
    group.finish();
}

fn ci(c: &mut Criterion) {
    bench_solves(c, "ci/convex", 20, 20);
    bench_iteration(c, "ci/convex", 20, 20, 256);
}

fn full(c: &mut Criterion) {
    bench_solves(c, "convex", 64, 64);
    bench_iteration(c, "convex", 64, 64, 1024);
}

fn main() {
    let since = std::time::SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    ci(&mut c);
    full(&mut c);
    c.final_summary();
    common::summary(since, "convex/", threads());
}
