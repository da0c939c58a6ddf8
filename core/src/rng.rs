//! Seeded random numbers. Every random draw in nff goes through a [`ChaCha8Rng`] built from a
//! user seed and a *stream* label, so results are reproducible and independent of thread count
//! (parallel work derives one stream per independent job, never shares a generator).
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The generator used everywhere.
pub type Rng = ChaCha8Rng;

/// A generator for `seed` on the named `stream` (e.g. `"data"`, `"init"`, `"noise"`).
///
/// Different streams of one seed are independent; the same (seed, stream) always gives the same numbers.
pub fn rng(seed: u64, stream: &str) -> Rng {
    // FNV-1a of the stream name, mixed into the 64-bit stream id of ChaCha.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stream.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(h);
    r
}

/// One standard normal draw.
pub fn normal(rng: &mut Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// An `nrows × ncols` matrix of i.i.d. $\mathcal N(0, \sigma^2)$ entries, filled column by column.
pub fn normal_mat(rng: &mut Rng, nrows: usize, ncols: usize, sigma: f64) -> Mat<f64> {
    let mut m = Mat::zeros(nrows, ncols);
    for j in 0..ncols {
        for i in 0..nrows {
            m[(i, j)] = sigma * normal(rng);
        }
    }
    m
}

/// A vector of i.i.d. $\mathcal N(0, \sigma^2)$ entries.
pub fn normal_vec(rng: &mut Rng, n: usize, sigma: f64) -> Vec<f64> {
    (0..n).map(|_| sigma * normal(rng)).collect()
}
