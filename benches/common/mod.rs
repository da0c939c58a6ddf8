//! Shared by the criterion benches: the thread count (`NFF_BENCH_THREADS`), the matching faer `Par`, and
//! the after-run table that reads criterion's own output back and prints each bench's time, GFLOP/s and its
//! ratio to faer's square GEMM measured in the same run.
use faer::Par;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `NFF_BENCH_THREADS`, or `default` when unset or unparsable.
pub fn threads(default: usize) -> usize {
    std::env::var("NFF_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `Par::Seq` for one thread, else rayon on `threads` threads.
pub fn par(threads: usize) -> Par {
    if threads > 1 {
        Par::rayon(threads)
    } else {
        Par::Seq
    }
}

/// One bench of this run, read back from `<target>/criterion/<id>/new/`.
pub struct Row {
    /// criterion's full id, e.g. `gd_step/fused/dnn/2048`.
    pub id: String,
    /// Median time per iteration (ns).
    pub ns: f64,
    /// FLOP per iteration (criterion's `Throughput::Elements`), if the bench declared it.
    pub flops: Option<u64>,
}

impl Row {
    /// GFLOP/s, if the bench declared its FLOP.
    pub fn gflops(&self) -> Option<f64> {
        self.flops.map(|f| f as f64 / self.ns)
    }
}

/// Criterion's median (ns) of the bench in `dir`, if its estimate was written after `since`.
fn median_ns(dir: &Path, since: SystemTime) -> Option<f64> {
    let f = dir.join("new").join("estimates.json");
    if std::fs::metadata(&f).ok()?.modified().ok()? < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// Every bench of this run (estimates written after `since`) whose id contains `filter`, sorted by id.
pub fn rows(since: SystemTime, filter: &str) -> Vec<Row> {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion");
    let mut rows = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for p in entries.flatten().map(|e| e.path()) {
            if !p.is_dir() || p.file_name().is_some_and(|n| n == "report") {
                continue;
            }
            let bench_json = p.join("new").join("benchmark.json");
            if !bench_json.exists() {
                stack.push(p);
                continue;
            }
            let bench: Option<serde_json::Value> = std::fs::read_to_string(bench_json)
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok());
            let Some(bench) = bench else { continue };
            let Some(id) = bench["full_id"].as_str().map(String::from) else {
                continue;
            };
            if !id.contains(filter) {
                continue;
            }
            if let Some(ns) = median_ns(&p, since) {
                let flops = bench["throughput"]["Elements"].as_u64();
                rows.push(Row { id, ns, flops });
            }
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows
}

/// Print the benches of this run whose id contains `filter`: median time, GFLOP/s and the fraction of
/// faer's square GEMM rate of the same run (the n = 2048 one if it ran, else the fastest square GEMM).
pub fn summary(since: SystemTime, filter: &str, threads: usize) {
    let rows = rows(since, filter);
    let gemm = rows
        .iter()
        .filter(|r| r.id.contains("gemm/square/"))
        .filter_map(|r| r.gflops().map(|g| (r, g)))
        .max_by(|a, b| {
            (a.0.id.ends_with("/2048"), a.1)
                .partial_cmp(&(b.0.id.ends_with("/2048"), b.1))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    println!("\nthreads: {threads}");
    println!(
        "{:<52} {:>12} {:>10} {:>10}",
        "bench", "median", "GFLOP/s", "of GEMM"
    );
    for r in &rows {
        let (g, frac) = match r.gflops() {
            Some(g) => (
                format!("{g:.2}"),
                gemm.map(|(_, rate)| format!("{:.0}%", 100.0 * g / rate))
                    .unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        };
        println!("{:<52} {:>10.3}ms {g:>10} {frac:>10}", r.id, r.ns / 1e6);
    }
    if let Some((r, g)) = gemm {
        println!("(reference: {} at {g:.2} GFLOP/s)", r.id);
    }
}
