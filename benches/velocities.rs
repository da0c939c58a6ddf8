//! Criterion benches of the hot path: one velocity evaluation (math.md §2) and one GD step, with
//! faer's plain square GEMM measured in the same run as the reference rate.
//!
//! Throughput is reported in FLOP ("elements" in criterion's output = FLOP/s): a velocity evaluation
//! costs ≈ 2Nm(d) + (L−1)·6Nm² (forward (N×m)(m×m), backward (N×m)(m×m)ᵀ and Ẇ = (m×N)(N×m)) flops.
//!
//! One GD step ([`Problem::gd_step_fused`] and the unfused `velocities_into` + axpy) has the same GEMM FLOPs.
//! After the run, a table lists every bench of this run with its GFLOP/s and the ratio to faer's square
//! GEMM of the same run (from criterion's `estimates.json`).
//!
//! `cargo bench --bench velocities -- '^ci/'` runs the small group only;
//! `cargo bench --bench velocities -- gd_step` the GD-step-versus-GEMM check (m = 2048, N = 64, L = 4).
//! `NFF_BENCH_THREADS=k` runs on k threads (default: all cores).
use criterion::{BenchmarkId, Criterion, Throughput};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use nff::core::init::{init_network, Init};
use nff::core::network::Workspace;
use nff::core::{Activation, Arch, Dataset, Loss, Network, Params, Problem, Regularizer, Shape};

mod common;

/// `NFF_BENCH_THREADS`, default: all cores.
fn threads() -> usize {
    common::threads(
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    )
}

fn par() -> Par {
    common::par(threads())
}

/// The benched model: the sine data set on `n` points in d = 3, an i.i.d. initial network of `arch`, width
/// `m`, depth `depth` (seed 1), tanh and squared loss with regularizer `reg`.
fn setup(arch: Arch, m: usize, n: usize, depth: usize, reg: Regularizer) -> (Problem, Network) {
    let data = Dataset::builtin(nff::core::data::BuiltinDataset::Sine, n, 3, 1).unwrap();
    let shape = Shape::new(arch, 3, m, depth).unwrap();
    let (net, _) = init_network(shape, &data, Activation::Tanh, &Init::iid(), 1).unwrap();
    let problem = Problem::new(data, Activation::Tanh, Loss::Squared, reg).unwrap();
    (problem, net)
}

fn bench_velocities(
    c: &mut Criterion,
    group_name: &str,
    widths: &[usize],
    ns: &[usize],
    depths: &[usize],
) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    for &arch in &[Arch::Dnn, Arch::ResNet] {
        for &depth in depths {
            for &n in ns {
                for &m in widths {
                    let (problem, net) = setup(arch, m, n, depth, Regularizer::L2 { lambda: 1e-3 });
                    let shape = net.shape();
                    let mut ws = Workspace::new(shape, n);
                    let mut vel = Params::zeros(shape);
                    group.throughput(Throughput::Elements(shape.gemm_flops(n)));
                    let id = BenchmarkId::new(format!("{arch}/L{depth}/N{n}"), m);
                    let p = par();
                    group.bench_with_input(id, &m, |b, _| {
                        b.iter(|| problem.velocities_into(&net, &mut ws, &mut vel, p));
                    });
                }
            }
        }
    }
    group.finish();
}

/// One GD step, fused (no velocity buffer) and unfused (`velocities_into` + axpy), DNN and ResNet.
fn bench_gd_step(c: &mut Criterion, group_name: &str, m: usize, n: usize, depth: usize) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    for &arch in &[Arch::Dnn, Arch::ResNet] {
        let (problem, net0) = setup(arch, m, n, depth, Regularizer::L2 { lambda: 1e-3 });
        let shape = net0.shape();
        let mut ws = Workspace::new(shape, n);
        let p = par();
        group.throughput(Throughput::Elements(shape.gemm_flops(n)));
        // A tiny step size keeps the state (and so the work) the same over the iterations.
        let eta = 1e-9;
        let mut net = net0.clone();
        let id = BenchmarkId::new(format!("fused/{arch}/L{depth}/N{n}"), m);
        group.bench_with_input(id, &m, |b, _| {
            b.iter(|| problem.gd_step_fused(&mut net, eta, &mut ws, p));
        });
        let mut vel = Params::zeros(shape);
        let mut net = net0;
        let id = BenchmarkId::new(format!("unfused/{arch}/L{depth}/N{n}"), m);
        group.bench_with_input(id, &m, |b, _| {
            b.iter(|| problem.gd_step(&mut net, eta, &mut ws, &mut vel, p));
        });
    }
    group.finish();
}

fn bench_gemm(c: &mut Criterion, group_name: &str, sizes: &[usize]) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    for &n in sizes {
        let a = Mat::from_fn(n, n, |i, j| ((i * 7 + j * 13) % 17) as f64 / 17.0);
        let b = Mat::from_fn(n, n, |i, j| ((i * 5 + j * 3) % 11) as f64 / 11.0);
        let mut out = Mat::<f64>::zeros(n, n);
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        let p = par();
        group.bench_with_input(BenchmarkId::new("square", n), &n, |bch, _| {
            bch.iter(|| matmul(out.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0, p));
        });
    }
    group.finish();
}

/// One step of an integrator on the weight flow (RK4: four velocity evaluations and the updates).
fn bench_flow_step(c: &mut Criterion, group_name: &str, widths: &[usize]) {
    use nff::flow::{FixedStep, Integrator, WeightFlow};
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    for &m in widths {
        let n = 16;
        let (problem, net) = setup(Arch::ResNet, m, n, 3, Regularizer::None);
        let shape = net.shape();
        let mut field = WeightFlow::new(problem, shape, par()).unwrap();
        let mut y = field.initial_state(&net).unwrap();
        let mut rk4 = FixedStep::rk4(1e-3).unwrap();
        let mut t = 0.0;
        rk4.init(&mut field, t, &y).unwrap();
        group.throughput(Throughput::Elements(4 * shape.gemm_flops(n)));
        group.bench_with_input(BenchmarkId::new("rk4/resnet/L3/N16", m), &m, |b, _| {
            b.iter(|| rk4.step(&mut field, &mut t, &mut y, f64::INFINITY).unwrap());
        });
    }
    group.finish();
}

fn ci(c: &mut Criterion) {
    bench_gemm(c, "ci/gemm", &[256]);
    bench_velocities(c, "ci/velocities", &[256], &[16], &[2]);
    bench_gd_step(c, "ci/gd_step", 256, 16, 2);
    bench_flow_step(c, "ci/flow_step", &[256]);
}

fn full(c: &mut Criterion) {
    // The reference rate first and again after the GD step, so that a busy machine shows in the table.
    bench_gemm(c, "gd_step/gemm", &[2048]);
    bench_gd_step(c, "gd_step", 2048, 64, 4);
    bench_gemm(c, "gd_step/gemm_after", &[2048]);
    bench_gemm(c, "gemm", &[256, 1024, 4096]);
    bench_velocities(c, "velocities", &[256, 1024, 4096], &[16, 64, 256], &[2, 4]);
    bench_flow_step(c, "flow_step", &[256, 1024, 2048, 4096]);
}

fn main() {
    let since = std::time::SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    ci(&mut c);
    full(&mut c);
    c.final_summary();
    common::summary(since, "", threads());
}
