//! How a verdict is reached (math.md §6.1): a claim runs on a set of seed pairs, each seed pair is
//! decided by the claim's per-seed rule, and the claim's verdict aggregates them by its [`Kind`].
//!
//! **Seed pairs.** For a base seed $S$ and $K$ pairs, pair 0 is $(S, S)$ (data seed, initialization
//! seed); the odd pairs vary the data only, $(S + j, S)$ for pair $2j - 1$; the even pairs vary the
//! initialization only, $(S, S + j)$ for pair $2j$. A failure on a data-only pair and a failure on an
//! initialization-only pair are told apart in `claims.json`.
//!
//! **Aggregation.** A seed pair whose run reports [`NotApplicable`] (the claim's hypothesis does not hold
//! there) counts neither way. The pass rate is over the applicable pairs, with a Wilson 95% interval.
//! An exact claim passes when every applicable pair passes; a statistical claim when the pass rate reaches
//! its stated rate. Either needs at least half of its pairs applicable: a claim whose hypothesis mostly
//! fails on its own instances is misconfigured and fails.
use super::{Claim, ClaimCtx, ClaimResult, Kind, NotApplicable, SeedResult, SeedVerdict, Size};
use faer::Par;
use rayon::prelude::*;

/// One seed pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedPair {
    /// Seed of the data.
    pub data: u64,
    /// Seed of the initialization (and every other random draw of the claim).
    pub init: u64,
}

/// The `k` seed pairs of base seed `base` (module docs).
pub fn seed_pairs(base: u64, k: usize) -> Vec<SeedPair> {
    (0..k as u64)
        .map(|i| {
            let j = i.div_ceil(2);
            if i == 0 {
                SeedPair {
                    data: base,
                    init: base,
                }
            } else if i % 2 == 1 {
                SeedPair {
                    data: base.wrapping_add(j),
                    init: base,
                }
            } else {
                SeedPair {
                    data: base,
                    init: base.wrapping_add(j),
                }
            }
        })
        .collect()
}

/// What a multi-seed verification runs with.
#[derive(Clone, Copy, Debug)]
pub struct VerifyConfig {
    /// Base seed of the seed pairs.
    pub seed: u64,
    /// Number of seed pairs.
    pub seeds: usize,
    /// Size.
    pub size: Size,
    /// faer parallelism for large kernels.
    pub par: Par,
}

impl VerifyConfig {
    /// The default number of seed pairs at a size: 5 quick, 10 full.
    pub fn default_seeds(size: Size) -> usize {
        size.pick(5, 10)
    }
}

/// The error chain of a failed run as one line.
fn chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Run a claim on one seed pair: its result and its figure (an SVG document), if it drew one.
pub fn run_seed(claim: &Claim, ctx: &ClaimCtx) -> (SeedResult, Option<String>) {
    let (verdict, value, threshold, detail, figure) = match (claim.run)(ctx) {
        Ok(o) => (
            // A pass whose headline value is not finite is not a pass.
            if o.passed && o.value.is_finite() {
                SeedVerdict::Pass
            } else {
                SeedVerdict::Fail
            },
            o.value,
            o.threshold,
            o.detail,
            o.figure,
        ),
        Err(e) => match e.downcast_ref::<NotApplicable>() {
            Some(na) => (
                SeedVerdict::NotApplicable,
                f64::NAN,
                f64::NAN,
                na.to_string(),
                None,
            ),
            None => (
                SeedVerdict::Fail,
                f64::NAN,
                f64::NAN,
                format!("error: {}", chain(&e)),
                None,
            ),
        },
    };
    (
        SeedResult {
            data_seed: ctx.data_seed,
            init_seed: ctx.init_seed,
            verdict,
            value,
            threshold,
            detail,
        },
        figure,
    )
}

/// Wilson score interval (95%, $z = 1.96$) of a proportion $k/n$; $[0, 1]$ when $n = 0$.
pub fn wilson(k: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let (k, n, z) = (k as f64, n as f64, 1.959_963_984_540_054_f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// The verdict over seed pairs: `(passed, passed pairs, applicable pairs, needed rate)`.
pub fn aggregate(kind: Kind, seeds: &[SeedResult]) -> (bool, usize, usize, f64) {
    let applicable = seeds
        .iter()
        .filter(|s| s.verdict != SeedVerdict::NotApplicable)
        .count();
    let passed = seeds
        .iter()
        .filter(|s| s.verdict == SeedVerdict::Pass)
        .count();
    let rate = match kind {
        Kind::Exact => 1.0,
        Kind::Statistical { rate } => rate,
    };
    let enough = 2 * applicable >= seeds.len() && applicable > 0;
    let ok = enough
        && match kind {
            Kind::Exact => passed == applicable,
            Kind::Statistical { rate } => passed as f64 >= rate * applicable as f64 - 1e-12,
        };
    (ok, passed, applicable, rate)
}

/// Run a claim on every seed pair of `cfg` (in parallel, collected in pair order, so the result does
/// not depend on the thread count) and decide it: its [`ClaimResult`] and the first pair's figure as
/// `(file name, SVG document)`.
pub fn run_claim(claim: &Claim, cfg: &VerifyConfig) -> (ClaimResult, Option<(String, String)>) {
    let info = claim.info;
    let pairs = seed_pairs(cfg.seed, cfg.seeds.max(1));
    let mut runs: Vec<(SeedResult, Option<String>)> = pairs
        .par_iter()
        .map(|p| {
            run_seed(
                claim,
                &ClaimCtx {
                    data_seed: p.data,
                    init_seed: p.init,
                    size: cfg.size,
                    par: cfg.par,
                },
            )
        })
        .collect();
    let figure = runs[0]
        .1
        .take()
        .map(|svg| (format!("{}.svg", info.id), svg));
    let seeds: Vec<SeedResult> = runs.into_iter().map(|(s, _)| s).collect();
    let kind = info.kind();
    let (passed, n_pass, n_app, rate) = aggregate(kind, &seeds);
    let pass_rate = if n_app > 0 {
        n_pass as f64 / n_app as f64
    } else {
        f64::NAN
    };
    let interval = wilson(n_pass, n_app);
    let failing: Vec<String> = seeds
        .iter()
        .filter(|s| s.verdict == SeedVerdict::Fail)
        .map(|s| format!("({}, {})", s.data_seed, s.init_seed))
        .collect();
    let na = seeds.len() - n_app;
    let first = &seeds[0];
    let detail = format!(
        "{n_pass}/{n_app} seed pairs pass (95% interval [{:.2}, {:.2}]; {} claim needs {}){}{}; seed pair ({}, {}): {}",
        interval[0],
        interval[1],
        kind.name(),
        match kind {
            Kind::Exact => "every pair".to_string(),
            Kind::Statistical { rate } => format!("rate ≥ {rate}"),
        },
        if failing.is_empty() {
            String::new()
        } else {
            format!("; failing (data, init): {}", failing.join(", "))
        },
        if na > 0 {
            format!("; not applicable on {na}")
        } else {
            String::new()
        },
        first.data_seed,
        first.init_seed,
        first.detail
    );
    let result = ClaimResult {
        id: info.id.into(),
        title: info.title.into(),
        passed,
        kind: kind.name().into(),
        required_rate: rate,
        seeds_passed: n_pass,
        seeds_applicable: n_app,
        pass_rate,
        pass_rate_interval: interval,
        value: first.value,
        threshold: first.threshold,
        detail,
        figure: figure.as_ref().map(|(name, _)| name.clone()),
        measures: info.measures.into(),
        rule: info.rule.into(),
        seeds,
    };
    (result, figure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_pairs_vary_data_and_initialization_separately() {
        let p = seed_pairs(10, 5);
        let got: Vec<(u64, u64)> = p.iter().map(|p| (p.data, p.init)).collect();
        assert_eq!(got, vec![(10, 10), (11, 10), (10, 11), (12, 10), (10, 12)]);
        // Distinct pairs for any k.
        let p = seed_pairs(0, 10);
        for i in 0..p.len() {
            for j in 0..i {
                assert_ne!(p[i], p[j]);
            }
        }
    }

    #[test]
    fn wilson_interval_matches_known_values() {
        // 5/5: [0.5655, 1]; 4/5: [0.3755, 0.9638]; 0/10: [0, 0.2775] (standard tables).
        let w = wilson(5, 5);
        assert!((w[0] - 0.5655).abs() < 1e-4 && w[1] == 1.0, "{w:?}");
        let w = wilson(4, 5);
        assert!(
            (w[0] - 0.3755).abs() < 1e-4 && (w[1] - 0.9638).abs() < 1e-4,
            "{w:?}"
        );
        let w = wilson(0, 10);
        assert!(w[0] == 0.0 && (w[1] - 0.2775).abs() < 1e-4, "{w:?}");
    }

    fn seed(verdict: SeedVerdict) -> SeedResult {
        SeedResult {
            data_seed: 0,
            init_seed: 0,
            verdict,
            value: 0.0,
            threshold: 0.0,
            detail: String::new(),
        }
    }

    #[test]
    fn aggregation_follows_the_kind() {
        use SeedVerdict::*;
        let four_of_five = [Pass, Pass, Fail, Pass, Pass].map(seed);
        assert!(!aggregate(Kind::Exact, &four_of_five).0);
        assert!(aggregate(Kind::Statistical { rate: 0.8 }, &four_of_five).0);
        let three_of_five = [Pass, Fail, Fail, Pass, Pass].map(seed);
        assert!(!aggregate(Kind::Statistical { rate: 0.8 }, &three_of_five).0);
        // Not-applicable pairs count neither way, but most pairs must be applicable.
        let with_na = [Pass, NotApplicable, Pass, Pass, Pass].map(seed);
        assert_eq!(aggregate(Kind::Exact, &with_na), (true, 4, 4, 1.0));
        let mostly_na = [Pass, NotApplicable, NotApplicable, NotApplicable, Pass].map(seed);
        assert!(!aggregate(Kind::Exact, &mostly_na).0);
    }
}
