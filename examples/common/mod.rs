//! Helpers shared by the examples (a directory, so cargo does not take it for an example of its own).

/// Positional argument `i` (1-based) as a number, or `default` when absent or unparsable.
#[allow(dead_code)] // not every example takes positional arguments
pub fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The median of timings (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
