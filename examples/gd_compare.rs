//! The nff side of the side-by-side comparison in `benches/compare/` (numpy and PyTorch).
//!
//! Reads a state `.npz` (schema: architecture.md; written here with `--make`), then on `--threads` threads:
//! 1. times `--reps` velocity evaluations (math.md §2) at the state, and writes the velocity to
//!    `OUT/vel.npz` (arrays `A`, `W`, `v` in the state's layout, plus the objective `J`);
//! 2. times `--steps` consecutive GD steps ([`Problem::gd_step_fused`]) from the state, writes the final
//!    state to `OUT/final.npz` and the objective before each step to `OUT/objectives.npz` (`J`);
//! 3. prints one JSON line with the median times (seconds) and the step's GEMM FLOPs.
//!
//! The model is fixed by the comparison: tanh, squared loss, L2 regularization `--lambda`.
//!
//! ```text
//! cargo run --release --example gd_compare -- --make --state s.npz --arch dnn --width 2048 --depth 4 --n 64
//! cargo run --release --example gd_compare -- --state s.npz --eta 0.05 --lambda 1e-3 --steps 5 --reps 5 --threads 2 --out OUT
//! ```
mod common;
use common::median;
use faer::Par;
use nff::core::init::{init_network, Init};
use nff::core::io::{load_state, save_state, NpzWriter};
use nff::core::network::Workspace;
use nff::core::{Activation, Arch, Dataset, Loss, Params, Problem, Regularizer, Shape};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("gd_compare: {e}");
        std::process::exit(1);
    }
}

fn args() -> Res<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut it = std::env::args().skip(1).peekable();
    while let Some(a) = it.next() {
        let key = a
            .strip_prefix("--")
            .ok_or_else(|| format!("expected --option, found '{a}'"))?
            .to_string();
        let value = match it.peek() {
            Some(v) if !v.starts_with("--") => it.next().unwrap_or_default(),
            _ => "true".to_string(),
        };
        out.insert(key, value);
    }
    Ok(out)
}

fn get<T: std::str::FromStr>(a: &HashMap<String, String>, key: &str, default: T) -> Res<T> {
    match a.get(key) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("invalid --{key}: '{s}'").into()),
    }
}

/// The velocity in the state file's layout: `A` (d, m), `W` (L-1, m, m), `v` (m,), all C order.
fn write_params(path: &std::path::Path, p: &Params, j: f64) -> Res<()> {
    let s = p.shape();
    let mut w = NpzWriter::create(path)?;
    w.add_matrix("A", p.a())?;
    if s.n_w() > 0 {
        let mut all = Vec::with_capacity(s.n_w() * s.m * s.m);
        for l in 0..s.n_w() {
            let wl = p.w(l);
            for i in 0..s.m {
                for k in 0..s.m {
                    all.push(wl[(i, k)]);
                }
            }
        }
        w.add("W", &[s.n_w(), s.m, s.m], &all)?;
    }
    w.add("v", &[s.m], p.v())?;
    w.add_scalar("J", j)?;
    w.finish()?;
    Ok(())
}

fn run() -> Res<()> {
    let a = args()?;
    let state = PathBuf::from(get(&a, "state", String::from("state.npz"))?);
    if a.contains_key("make") {
        let arch: Arch = get(&a, "arch", String::from("dnn"))?.parse()?;
        let (m, depth, n, d) = (
            get(&a, "width", 2048usize)?,
            get(&a, "depth", 4usize)?,
            get(&a, "n", 64usize)?,
            get(&a, "d", 3usize)?,
        );
        let seed = get(&a, "seed", 1u64)?;
        let data = Dataset::builtin(nff::core::data::BuiltinDataset::Sine, n, d, seed)?;
        let shape = Shape::new(arch, d, m, depth)?;
        let (net, _) = init_network(shape, &data, Activation::Tanh, &Init::iid(), seed)?;
        save_state(&state, &data, &net)?;
        eprintln!(
            "wrote {} ({arch}, m = {m}, L = {depth}, N = {n}, d = {d})",
            state.display()
        );
        return Ok(());
    }
    let threads = get(&a, "threads", 1usize)?.max(1);
    // The global rayon pool (used by faer and nff) reads this when it starts, which is below.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let par = if threads > 1 {
        Par::rayon(threads)
    } else {
        Par::Seq
    };
    let eta = get(&a, "eta", 0.05f64)?;
    let lambda = get(&a, "lambda", 1e-3f64)?;
    let steps = get(&a, "steps", 5usize)?.max(1);
    let reps = get(&a, "reps", 5usize)?.max(1);
    let out = PathBuf::from(get(&a, "out", String::from("gd_compare_out"))?);
    std::fs::create_dir_all(&out)?;

    let (data, net0) = load_state(&state)?;
    let problem = Problem::new(
        data,
        Activation::Tanh,
        Loss::Squared,
        Regularizer::l2(lambda),
    )?;
    let s = net0.shape();
    let n = problem.n();
    let mut ws = Workspace::new(s, n);

    // 1. velocities at the state
    let mut vel = Params::zeros(s);
    let mut j0 = problem.velocities_into(&net0, &mut ws, &mut vel, par); // warm-up
    let mut tv = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        j0 = problem.velocities_into(&net0, &mut ws, &mut vel, par);
        tv.push(t.elapsed().as_secs_f64());
    }
    write_params(&out.join("vel.npz"), &vel, j0)?;
    drop(vel);

    // 2. GD steps from the state (one untimed warm-up step on a copy first)
    {
        let mut warm = net0.clone();
        problem.gd_step_fused(&mut warm, eta, &mut ws, par);
    }
    let mut net = net0;
    let mut ts = Vec::with_capacity(steps);
    let mut js = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = Instant::now();
        let rep = problem.gd_step_fused(&mut net, eta, &mut ws, par);
        ts.push(t.elapsed().as_secs_f64());
        js.push(rep.objective);
    }
    save_state(out.join("final.npz"), &problem.data, &net)?;
    nff::core::io::write_npz(out.join("objectives.npz"), &[("J", &[js.len()], &js)])?;

    let flops = s.gemm_flops(n);
    println!(
        "{{\"tool\": \"nff\", \"threads\": {threads}, \"velocities_s\": {:e}, \"gd_step_s\": {:e}, \"gd_step_min_s\": {:e}, \"gemm_flops\": {flops}, \"m\": {}, \"n\": {n}, \"depth\": {}, \"arch\": \"{}\"}}",
        median(tv),
        median(ts.clone()),
        ts.iter().copied().fold(f64::INFINITY, f64::min),
        s.m,
        s.depth,
        s.arch
    );
    Ok(())
}
