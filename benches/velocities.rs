//! Criterion benches of the hot path: one velocity evaluation (math.md §2) and one GD step, with
//! faer's plain square GEMM measured in the same run as the reference rate.
//!
//! Throughput is reported in FLOP ("elements" in criterion's output = FLOP/s): a velocity evaluation
//! costs ≈ 2Nm(d) + (L−1)·6Nm² (forward (N×m)(m×m), backward (N×m)(m×m)ᵀ and Ẇ = (m×N)(N×m)) flops.
//!
//! `cargo bench --bench velocities -- ci` runs the small group only.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use nff::core::init::{init_network, Init};
use nff::core::network::Workspace;
use nff::core::{Activation, Arch, Dataset, Loss, Params, Problem, Regularizer, Shape};

fn par() -> Par {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if n > 1 {
        Par::rayon(n)
    } else {
        Par::Seq
    }
}

fn gemm_flops(shape: Shape, n: usize) -> u64 {
    let (m, d) = (shape.m as u64, shape.d as u64);
    let n = n as u64;
    4 * n * m * d + 6 * n * m * m * shape.n_w() as u64 + 4 * n * m
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
                    let data =
                        Dataset::builtin(nff::core::data::BuiltinDataset::Sine, n, 3, 1).unwrap();
                    let shape = Shape::new(arch, 3, m, depth).unwrap();
                    let (net, _) =
                        init_network(shape, &data, Activation::Tanh, &Init::iid(), 1).unwrap();
                    let problem = Problem::new(
                        data,
                        Activation::Tanh,
                        Loss::Squared,
                        Regularizer::L2 { lambda: 1e-3 },
                    )
                    .unwrap();
                    let mut ws = Workspace::new(shape, n);
                    let mut vel = Params::zeros(shape);
                    group.throughput(Throughput::Elements(gemm_flops(shape, n)));
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
        let data = Dataset::builtin(nff::core::data::BuiltinDataset::Sine, n, 3, 1).unwrap();
        let shape = Shape::new(Arch::ResNet, 3, m, 3).unwrap();
        let (net, _) = init_network(shape, &data, Activation::Tanh, &Init::iid(), 1).unwrap();
        let problem =
            Problem::new(data, Activation::Tanh, Loss::Squared, Regularizer::None).unwrap();
        let mut field = WeightFlow::new(problem, shape, par()).unwrap();
        let mut y = field.initial_state(&net).unwrap();
        let mut rk4 = FixedStep::rk4(1e-3).unwrap();
        let mut t = 0.0;
        rk4.init(&mut field, t, &y).unwrap();
        group.throughput(Throughput::Elements(4 * gemm_flops(shape, n)));
        group.bench_with_input(BenchmarkId::new("rk4/resnet/L3/N16", m), &m, |b, _| {
            b.iter(|| rk4.step(&mut field, &mut t, &mut y, f64::INFINITY).unwrap());
        });
    }
    group.finish();
}

fn ci(c: &mut Criterion) {
    bench_gemm(c, "ci/gemm", &[256]);
    bench_velocities(c, "ci/velocities", &[256], &[16], &[2]);
    bench_flow_step(c, "ci/flow_step", &[256]);
}

fn full(c: &mut Criterion) {
    bench_gemm(c, "gemm", &[1024, 2048]);
    bench_velocities(c, "velocities", &[256, 1024, 4096], &[16, 64, 256], &[2, 4]);
    bench_flow_step(c, "flow_step", &[256, 1024, 2048, 4096]);
}

criterion_group!(benches, ci, full);
criterion_main!(benches);
