//! Criterion benches of the deep convex program (math.md §4.2–4.4): whole solves with
//! `DeepOptions::default()` at 25, 50, 100 and 200 candidates per layer, and after the run a table of how
//! the time grows with the candidate count (the ratio per doubling and the implied exponent).
//!
//! The instances (seeded): $N = 16$ sine points ($d = 4$, `Dataset::builtin(Sine, 16, 4, 0)`; with $d = 2$ the
//! first-layer features $h(Xa)$ are nearly rank 2 and the interior point fails on some seeds), a depth-3 tanh
//! DNN of width $n/2$ drawn i.i.d. and trained by 300 steps of scaled GD ($\eta = 0.05$) with the group norms
//! $\lambda = 0.01$, $q = 2$ (`Regularizer::GroupL1q`), and its program ([`DeepProgram::from_network`]): the
//! $n/2$ particles plus $n - n/2$ fresh candidates per layer, uniform $\pi$, strengths
//! `DeepConfig::group_l1q(0.01, 2, 3)`. `benches/compare/convex_deep.py` builds the same kind of instance
//! through the CLI and solves it with cvxpy + Clarabel too.
//!
//! Each instance is solved once before timing; its objective, certified relative gap, termination and
//! iteration count are printed (the bench does not require a certified optimum: it times the default
//! method, `DeepMethod::Auto` — nff's second-order-cone interior point on these $q = 2$ programs — as it is).
//! Criterion needs at least 11 solves per size (seconds each at $n = 200$): `NFF_BENCH_DEEP_MAX=100` caps the
//! sizes, `NFF_BENCH_DEEP_SIZES=25,50,100,200,1000` replaces them (1,000 per layer: minutes per solve).
//!
//! `cargo bench --bench deep_convex -- '^ci/'` runs the small group only ($N = 8$, 12 candidates per layer);
//! `-- '^deep_convex/'` the full sizes only.
use criterion::{BenchmarkId, Criterion};
use nff::core::data::BuiltinDataset;
use nff::core::init::{init_network, Init};
use nff::core::network::Workspace;
use nff::core::{Activation, Arch, Dataset, Loss, Params, Problem, Regularizer, Shape};
use nff::solvers::{DeepOptions, DeepProgram};
use std::time::Duration;

mod common;

/// `NFF_BENCH_THREADS`, default 1 (the GD that trains the instances; the solver runs as it is).
fn threads() -> usize {
    common::threads(1)
}

const LAMBDA: f64 = 0.01;
const Q: f64 = 2.0;
const DEPTH: usize = 3;

/// The program with `n` candidates per layer on `n_points` sine points (module docs), seeded.
fn program(n_points: usize, n: usize, seed: u64) -> DeepProgram {
    let data = Dataset::builtin(BuiltinDataset::Sine, n_points, 4, seed).unwrap();
    let problem = Problem::new(
        data,
        Activation::Tanh,
        Loss::Squared,
        Regularizer::GroupL1q {
            lambda: LAMBDA,
            q: Q,
        },
    )
    .unwrap();
    let width = n / 2;
    let shape = Shape::new(Arch::Dnn, problem.data.d(), width, DEPTH).unwrap();
    let (mut net, _) =
        init_network(shape, &problem.data, problem.activation, &Init::iid(), seed).unwrap();
    let mut ws = Workspace::new(shape, problem.n());
    let mut vel = Params::zeros(shape);
    for _ in 0..300 {
        problem.gd_step(&mut net, 0.05, &mut ws, &mut vel, common::par(threads()));
    }
    assert!(net.as_slice().iter().all(|x| x.is_finite()), "GD diverged");
    DeepProgram::from_network(&problem, &net, n - width, seed)
        .unwrap()
        .0
}

/// Whole solves at each size in `sizes`.
fn bench_solves(c: &mut Criterion, group_name: &str, n_points: usize, sizes: &[usize]) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    let options = DeepOptions::default();
    for &n in sizes {
        let prog = program(n_points, n, 0);
        // Checked and reported at the first call only (criterion calls the routine again for every
        // sample, and not at all for ids its filter excludes).
        let checked = std::cell::OnceCell::new();
        let id = BenchmarkId::new(format!("solve/L{DEPTH}_N{n_points}"), n);
        group.bench_with_input(id, &prog, |b, prog| {
            checked.get_or_init(|| {
                let sol = prog.solve(&options, None, None).unwrap();
                assert!(
                    sol.primal_residual <= 1e-6,
                    "{group_name}/{n}: primal residual {}",
                    sol.primal_residual
                );
                eprintln!(
                    "{group_name}/{n}: candidates {:?}, N = {n_points}, {:?}: P = {:.12e}, certified relative gap {:.1e}, primal residual {:.1e}, {} iterations ({} outer), {:?}, {:.3} s",
                    prog.sizes(),
                    sol.method,
                    sol.objective,
                    sol.relative_gap,
                    sol.primal_residual,
                    sol.inner_iterations,
                    sol.outer_iterations,
                    sol.termination,
                    sol.seconds
                );
            });
            b.iter(|| prog.solve(&options, None, None).unwrap());
        });
    }
    group.finish();
}

/// The median time of each size of this run (ids `…/solve/L3_N{N}/{n}`) and its ratio to the previous
/// size, normalized per doubling: $(t_i/t_{i-1})^{1/\log_2(n_i/n_{i-1})}$, and the exponent $\log_2$ of that.
fn growth_table(since: std::time::SystemTime, filter: &str) {
    let mut rows: Vec<(String, usize, f64)> = common::rows(since, filter)
        .into_iter()
        .filter_map(|r| {
            let (series, n) = r.id.rsplit_once('/')?;
            Some((series.to_string(), n.parse().ok()?, r.ns))
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    println!(
        "\n{:<36} {:>6} {:>12} {:>14} {:>10}",
        "bench", "n", "median", "per doubling", "exponent"
    );
    for (i, (series, n, ns)) in rows.iter().enumerate() {
        let growth = (i > 0 && rows[i - 1].0 == *series).then(|| {
            let (_, n0, ns0) = &rows[i - 1];
            let doublings = (*n as f64 / *n0 as f64).log2();
            (ns / ns0).powf(1.0 / doublings)
        });
        let (g, e) = match growth {
            Some(g) => (format!("{g:.2}x"), format!("{:.2}", g.log2())),
            None => (String::new(), String::new()),
        };
        println!("{series:<36} {n:>6} {:>10.3}ms {g:>14} {e:>10}", ns / 1e6);
    }
    println!("(exponent: time ~ n^exponent between consecutive sizes; n = candidates per layer)");
}

fn ci(c: &mut Criterion) {
    bench_solves(c, "ci/deep_convex", 8, &[12]);
}

fn full(c: &mut Criterion) {
    let max: usize = std::env::var("NFF_BENCH_DEEP_MAX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    let sizes: Vec<usize> = std::env::var("NFF_BENCH_DEEP_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![25, 50, 100, 200])
        .into_iter()
        .filter(|&n| n <= max)
        .collect();
    bench_solves(c, "deep_convex", 16, &sizes);
}

fn main() {
    let since = std::time::SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    ci(&mut c);
    full(&mut c);
    c.final_summary();
    common::summary(since, "deep_convex/", threads());
    growth_table(since, "deep_convex/");
}
