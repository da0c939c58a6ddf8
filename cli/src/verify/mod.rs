//! `nff verify`: every claim of math.md §6 as a reproducible check.
//!
//! The registry ([`registry`]) lists one module per claim. A claim states what it measures and its pass
//! rule *before* measuring (the rule is fixed from the mathematics, never tuned to a result), runs at a
//! `quick` or `full` size, and returns a measured value, the threshold it is compared with, pass/fail,
//! a detail line and an SVG figure. No claim passes by construction: each measures something the code
//! could get wrong.
//!
//! Outputs (architecture.md): `claims.json`, `report.md`, a self-contained `report.html` (inline SVG)
//! and one `C*.svg` per claim.
pub mod report;
pub mod sources;
pub mod stats;
pub mod verdict;

pub use verdict::{run_claim, run_seed, seed_pairs, SeedPair, VerifyConfig};

mod c01_min_norm;
mod c02_degeneracy;
mod c03_consistency_flow;
mod c04_energy;
mod c05_width_rate;
mod c06_not_lazy;
mod c07_integrator_orders;
mod c08_two_level_convexity;
mod c09_l2_to_l1;
mod c10_certificate;
mod c11_importance_subsampling;
mod c12_gibbs;
mod c13_unique_population;
mod c14_deep_convexity;
mod c15_bijection;
mod c16_lower_bound;
mod c17_kkt;
mod c18_resnet_global;
mod c19_plateau;
mod c20_injective;
mod c21_first_layer;
mod c22_rate_scaling;
mod c23_usage_equalization;
mod c24_noise_needed;
mod c25_features_learned;
mod deep_support;
mod flow_support;
mod two_level_support;

use anyhow::Result;
use faer::Par;
use serde::{Deserialize, Deserializer, Serialize};

/// The size a claim runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// Small instances: all claims together in a few minutes on 2 cores.
    Quick,
    /// The larger sizes of the full report.
    Full,
}

impl Size {
    /// `quick` if quick else `full`.
    pub fn pick<T>(self, quick: T, full: T) -> T {
        match self {
            Self::Quick => quick,
            Self::Full => full,
        }
    }
}

/// What one run of a claim gets: one seed pair of math.md §6.1, the size and the parallelism.
#[derive(Clone, Copy, Debug)]
pub struct ClaimCtx {
    /// Seed of the data (the training points the claim draws).
    pub data_seed: u64,
    /// Seed of everything else: initial weights, candidates, noise, test draws (claims derive their own
    /// streams from it).
    pub init_seed: u64,
    /// Size.
    pub size: Size,
    /// faer parallelism for large kernels.
    pub par: Par,
}

/// How a claim's verdict is reached over its seed pairs (math.md §6.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// An identity, a convexity statement or a bijection: it must hold on every seed pair.
    Exact,
    /// A statement about a limit or a law, checked at finite size: the claim passes when the fraction of
    /// applicable seed pairs that pass its per-seed rule reaches `rate`.
    Statistical {
        /// The pass rate the claim needs.
        rate: f64,
    },
}

impl Kind {
    /// `exact` or `statistical`, as `claims.json` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Statistical { .. } => "statistical",
        }
    }
}

/// The pass rate every statistical claim needs (fixed before the multi-seed verdicts were first measured,
/// math.md §6.1): at least 4 of 5 seed pairs at the quick size, 8 of 10 at the full size.
pub const STATISTICAL_RATE: f64 = 0.8;

/// The fixed description of a claim.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ClaimInfo {
    /// `C1`..`C24`.
    pub id: &'static str,
    /// Short title.
    pub title: &'static str,
    /// What is measured (one sentence; the `value` of the result).
    pub measures: &'static str,
    /// The per-seed pass rule, stated from the mathematics.
    pub rule: &'static str,
}

impl ClaimInfo {
    /// Exact or statistical (math.md §6.1: C1, C4, C8, C9, C14, C15, C21 are exact).
    pub fn kind(&self) -> Kind {
        match self.id {
            "C1" | "C4" | "C8" | "C9" | "C14" | "C15" | "C21" => Kind::Exact,
            _ => Kind::Statistical {
                rate: STATISTICAL_RATE,
            },
        }
    }
}

/// What a claim's run returns.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Pass or fail.
    pub passed: bool,
    /// The headline measured value.
    pub value: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// A line of supporting numbers.
    pub detail: String,
    /// The figure, an SVG document.
    pub figure: Option<String>,
}

/// Returned (as the error of a claim's run) when the claim's hypothesis does not hold on this seed pair,
/// e.g. "rank h(Z_L) = 6 < N = 8": the seed pair is neither a pass nor a fail, and is reported as not
/// applicable with this reason.
#[derive(Debug, Clone)]
pub struct NotApplicable(pub String);

impl std::fmt::Display for NotApplicable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not applicable: {}", self.0)
    }
}

impl std::error::Error for NotApplicable {}

/// A registered claim.
pub struct Claim {
    /// Description.
    pub info: ClaimInfo,
    /// The measurement on one seed pair.
    pub run: fn(&ClaimCtx) -> Result<Outcome>,
}

/// The verdict of one seed pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeedVerdict {
    /// The per-seed rule holds.
    Pass,
    /// The per-seed rule does not hold, or the run failed.
    Fail,
    /// The claim's hypothesis does not hold on this seed pair.
    NotApplicable,
}

/// One seed pair's result in `claims.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedResult {
    /// Data seed.
    pub data_seed: u64,
    /// Initialization seed.
    pub init_seed: u64,
    /// Verdict.
    pub verdict: SeedVerdict,
    /// Measured value (NaN, written `null`, if the run failed or was not applicable).
    #[serde(deserialize_with = "f64_or_null")]
    pub value: f64,
    /// Threshold (NaN, written `null`, if the run failed or was not applicable).
    #[serde(deserialize_with = "f64_or_null")]
    pub threshold: f64,
    /// Supporting numbers, the error, or why the claim does not apply.
    pub detail: String,
}

/// One row of `claims.json`: everything is determined by the nff version, the size, the seeds and the
/// claim, so one run and a merge of shards give the same bytes. The claim's wall time is run-dependent
/// and kept out of it (it is in `summary.json`'s `run.claim_seconds`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClaimResult {
    /// Claim id.
    pub id: String,
    /// Title.
    pub title: String,
    /// The claim's verdict over its seed pairs (math.md §6.1).
    pub passed: bool,
    /// `exact` or `statistical`.
    pub kind: String,
    /// The pass rate needed (1 for an exact claim).
    pub required_rate: f64,
    /// Seed pairs that passed / that were applicable.
    pub seeds_passed: usize,
    /// Seed pairs on which the claim's hypothesis held.
    pub seeds_applicable: usize,
    /// The pass rate over the applicable seed pairs (NaN, written `null`, if none was applicable).
    #[serde(deserialize_with = "f64_or_null")]
    pub pass_rate: f64,
    /// Wilson 95% interval of the pass rate, `[low, high]`.
    pub pass_rate_interval: [f64; 2],
    /// Measured value on the first seed pair (the base seed; its figure is the one shown).
    #[serde(deserialize_with = "f64_or_null")]
    pub value: f64,
    /// Threshold on the first seed pair.
    #[serde(deserialize_with = "f64_or_null")]
    pub threshold: f64,
    /// The verdict line: pass rate, and the first seed pair's supporting numbers.
    pub detail: String,
    /// Figure file name, if any.
    pub figure: Option<String>,
    /// What is measured.
    pub measures: String,
    /// The per-seed pass rule.
    pub rule: String,
    /// Every seed pair's result, in order.
    pub seeds: Vec<SeedResult>,
}

/// serde_json writes a NaN as `null`; read it back as NaN.
fn f64_or_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// All claims, in order.
pub fn registry() -> Vec<Claim> {
    vec![
        c01_min_norm::claim(),
        c02_degeneracy::claim(),
        c03_consistency_flow::claim(),
        c04_energy::claim(),
        c05_width_rate::claim(),
        c06_not_lazy::claim(),
        c07_integrator_orders::claim(),
        c08_two_level_convexity::claim(),
        c09_l2_to_l1::claim(),
        c10_certificate::claim(),
        c11_importance_subsampling::claim(),
        c12_gibbs::claim(),
        c13_unique_population::claim(),
        c14_deep_convexity::claim(),
        c15_bijection::claim(),
        c16_lower_bound::claim(),
        c17_kkt::claim(),
        c18_resnet_global::claim(),
        c19_plateau::claim(),
        c20_injective::claim(),
        c21_first_layer::claim(),
        c22_rate_scaling::claim(),
        c23_usage_equalization::claim(),
        c24_noise_needed::claim(),
        c25_features_learned::claim(),
    ]
}

/// The registered claim with this id (`C1`..`C24`, case-insensitive), if any.
pub fn find(id: &str) -> Option<Claim> {
    let id = id.trim().to_uppercase();
    registry().into_iter().find(|c| c.info.id == id)
}

/// The default data of math.md §6: `sine`, $x\sim\mathcal N(0, I/d)$, $y = \sin(3x_1) + \frac12$.
pub fn sine(n: usize, d: usize, seed: u64) -> Result<nff_core::Dataset> {
    Ok(nff_core::Dataset::builtin(
        nff_core::data::BuiltinDataset::Sine,
        n,
        d,
        seed,
    )?)
}
