//! How much of a GD step is memory traffic, on one core: the streaming read bandwidth over a step's weights,
//! and the backward pass's product $W_\ell[R,C]\,G_{\ell+1}[:,C]^\top$ (core/src/network/backward.rs: 256-row
//! tiles $R$, 128-column chunks $C$) with each chunk of $W_\ell$ *cold* — first touched by the product, as in a
//! step — and *hot* — the same product repeated at once, with the chunk in cache — against faer's square GEMM.
//! All interleaved in one process, `rounds` times; prints medians.
//!
//! A GD step streams the weights three times (read by the forward pass, read and written by the backward
//! pass), so `3 · 8 · (L−1)m²` bytes over the streaming bandwidth is the part of a step that only overlap with
//! arithmetic can hide.
//!
//! ```text
//! cargo run --release --example memory_bound -- [m = 2048] [N = 64] [L = 4] [rounds = 7]
//! ```
mod common;
use common::{arg, median};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use std::time::Instant;

/// Rows per tile and columns per chunk of the backward pass (as in core/src/network/backward.rs).
const TILE_ROWS: usize = 256;
const CHUNK_COLS: usize = 128;

/// Sum of all entries in eight lanes (a read of every byte that the compiler cannot drop).
fn stream_sum(x: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    for c in x.chunks_exact(8) {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum()
}

/// The backward products of every layer, tile and chunk; returns the seconds spent in the timed products.
/// With `hot`, each chunk's product runs once untimed first, so the timed one finds the chunk in cache.
fn backward_products(w: &[f64], g: MatRef<'_, f64>, gt: &mut Mat<f64>, m: usize, hot: bool) -> f64 {
    let mut secs = 0.0;
    for wl in w.chunks_exact(m * m) {
        let wl = MatRef::from_column_major_slice(wl, m, m);
        for r0 in (0..m).step_by(TILE_ROWS) {
            let rows = TILE_ROWS.min(m - r0);
            for k0 in (0..m).step_by(CHUNK_COLS) {
                let cw = CHUNK_COLS.min(m - k0);
                let product = |dst: MatMut<'_, f64>| {
                    matmul(
                        dst,
                        if k0 == 0 { Accum::Replace } else { Accum::Add },
                        wl.submatrix(r0, k0, rows, cw),
                        g.subcols(k0, cw).transpose(),
                        1.0,
                        Par::Seq,
                    )
                };
                if hot {
                    product(gt.as_mut().subrows_mut(0, rows));
                }
                let t = Instant::now();
                product(gt.as_mut().subrows_mut(0, rows));
                secs += t.elapsed().as_secs_f64();
            }
        }
    }
    secs
}

fn main() {
    let (m, n, depth, rounds) = (arg(1, 2048), arg(2, 64), arg(3, 4), arg(4, 7));
    let layers = depth.saturating_sub(1).max(1);
    let f = |i: usize, j: usize| ((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5;
    let w: Vec<f64> = (0..layers * m * m).map(|k| f(k % m, k / m)).collect();
    let g = Mat::from_fn(n, m, f);
    let mut gt = Mat::<f64>::zeros(TILE_ROWS.min(m), n);
    let (a, b) = (Mat::from_fn(m, m, f), Mat::from_fn(m, m, |i, j| f(j, i)));
    let mut c = Mat::<f64>::zeros(m, m);
    let (mut t_gemm, mut t_stream, mut t_cold, mut t_hot) = (vec![], vec![], vec![], vec![]);
    let mut sink = 0.0;
    for round in 0..=rounds {
        let t = Instant::now();
        matmul(
            c.as_mut(),
            Accum::Replace,
            a.as_ref(),
            b.as_ref(),
            1.0,
            Par::Seq,
        );
        let gemm = t.elapsed().as_secs_f64();
        let t = Instant::now();
        sink += stream_sum(&w);
        let stream = t.elapsed().as_secs_f64();
        let cold = backward_products(&w, g.as_ref(), &mut gt, m, false);
        let hot = backward_products(&w, g.as_ref(), &mut gt, m, true);
        if round > 0 {
            t_gemm.push(gemm);
            t_stream.push(stream);
            t_cold.push(cold);
            t_hot.push(hot);
        }
    }
    std::hint::black_box(sink);
    let bytes = (w.len() * 8) as f64;
    let gemm_rate = 2.0 * (m as f64).powi(3) / median(t_gemm);
    let bw = bytes / median(t_stream);
    let flops = 2.0 * (layers * n * m * m) as f64;
    let (cold, hot) = (median(t_cold), median(t_hot));
    println!(
        "m = {m}, N = {n}, L = {depth}, 1 thread, median of {rounds} interleaved rounds; weights {:.1} MB",
        bytes / 1e6
    );
    println!("square GEMM n = {m}: {:.1} GFLOP/s", gemm_rate / 1e9);
    println!(
        "streaming read of the weights: {:.1} GB/s, so a step's 3 passes over them take {:.1} ms",
        bw / 1e9,
        3.0 * bytes / bw * 1e3
    );
    for (name, t) in [("cold", cold), ("hot", hot)] {
        println!(
            "backward product W[R,C]·G[:,C]ᵀ, W {name:4}: {:.1} ms, {:.1} GFLOP/s, {:.0}% of GEMM",
            t * 1e3,
            flops / t / 1e9,
            100.0 * flops / t / gemm_rate
        );
    }
    println!("cold / hot: {:.2}", cold / hot);
}
