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
pub mod stats;

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

/// What a claim gets to run with.
#[derive(Clone, Copy, Debug)]
pub struct ClaimCtx {
    /// Base seed (claims derive their own streams from it).
    pub seed: u64,
    /// Size.
    pub size: Size,
    /// faer parallelism for large kernels.
    pub par: Par,
}

/// The fixed description of a claim.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ClaimInfo {
    /// `C1`..`C24`.
    pub id: &'static str,
    /// Short title.
    pub title: &'static str,
    /// What is measured (one sentence; the `value` of the result).
    pub measures: &'static str,
    /// The pass rule, stated from the mathematics.
    pub rule: &'static str,
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

/// A registered claim.
pub struct Claim {
    /// Description.
    pub info: ClaimInfo,
    /// The measurement.
    pub run: fn(&ClaimCtx) -> Result<Outcome>,
}

/// One row of `claims.json`: everything is determined by the nff version, the size, the seed and the
/// claim, so one run and a merge of shards give the same bytes. The claim's wall time is run-dependent
/// and kept out of it (it is in `summary.json`'s `run.claim_seconds`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClaimResult {
    /// Claim id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Passed.
    pub passed: bool,
    /// Measured value (NaN, written `null`, if the run failed).
    #[serde(deserialize_with = "f64_or_null")]
    pub value: f64,
    /// Threshold (NaN, written `null`, if the run failed).
    #[serde(deserialize_with = "f64_or_null")]
    pub threshold: f64,
    /// Supporting numbers (or the error, if the run failed).
    pub detail: String,
    /// Figure file name, if any.
    pub figure: Option<String>,
    /// What is measured.
    pub measures: String,
    /// Pass rule.
    pub rule: String,
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
    ]
}

/// The registered claim with this id (`C1`..`C24`, case-insensitive), if any.
pub fn find(id: &str) -> Option<Claim> {
    let id = id.trim().to_uppercase();
    registry().into_iter().find(|c| c.info.id == id)
}

/// Run one claim: its [`ClaimResult`] (a run that returns an error is a failed claim whose detail is the
/// error chain) and its figure as `(file name, SVG document)`, if it drew one.
pub fn run_claim(claim: &Claim, ctx: &ClaimCtx) -> (ClaimResult, Option<(String, String)>) {
    let info = claim.info;
    match (claim.run)(ctx) {
        Ok(o) => {
            let figure = o.figure.map(|svg| (format!("{}.svg", info.id), svg));
            let result = ClaimResult {
                id: info.id.into(),
                title: info.title.into(),
                passed: o.passed,
                value: o.value,
                threshold: o.threshold,
                detail: o.detail,
                figure: figure.as_ref().map(|(name, _)| name.clone()),
                measures: info.measures.into(),
                rule: info.rule.into(),
            };
            (result, figure)
        }
        Err(e) => (
            ClaimResult {
                id: info.id.into(),
                title: info.title.into(),
                passed: false,
                value: f64::NAN,
                threshold: f64::NAN,
                detail: format!(
                    "error: {}",
                    e.chain()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(": ")
                ),
                figure: None,
                measures: info.measures.into(),
                rule: info.rule.into(),
            },
            None,
        ),
    }
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
