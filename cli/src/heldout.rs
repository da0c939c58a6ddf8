//! Held-out evaluation options (`--split`, `--test-data`, `--standardize`) and what a training command
//! writes for them: the parts as data files, `split.json`, and the held-out figures (nff_core::split).
use crate::common::cfg_get;
use crate::output::OutputDir;
use anyhow::{bail, Context, Result};
use clap::Args;
use nff_core::data::DataSpec;
use nff_core::split::{metrics, HeldOut, SplitFractions};
use nff_core::{Dataset, Loss, Network, Problem};

/// Options of held-out evaluation.
#[derive(Args, Debug, Clone, Default)]
pub struct HeldOutArgs {
    /// Split the data into TRAIN,VAL,TEST fractions (e.g. 0.6,0.2,0.2; VAL may be 0), drawn with the
    /// data seed (--seed); the network trains on the training part.
    #[arg(long, value_name = "TRAIN,VAL,TEST")]
    pub split: Option<String>,
    /// A test data file (.npz or .csv in the data format, same d as --data) to evaluate on.
    #[arg(long, value_name = "FILE")]
    pub test_data: Option<String>,
    /// With --split or --test-data: standardize `all` (inputs, and the targets of the squared loss),
    /// `inputs` or `none`, with the training part's mean and standard deviation (default all).
    #[arg(long)]
    pub standardize: Option<String>,
}

/// What `--standardize` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standardize {
    /// Inputs, and the targets of the squared loss.
    All,
    /// Inputs only.
    Inputs,
    /// Nothing.
    None,
}

impl Standardize {
    fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Inputs => "inputs",
            Self::None => "none",
        }
    }
}

/// The resolved held-out request.
#[derive(Debug, Clone)]
pub enum HeldOutSpec {
    /// `--split`.
    Split(SplitFractions),
    /// `--test-data FILE`.
    TestFile(String),
}

impl HeldOutArgs {
    /// The request, if any (flags win over config keys); errors for both at once or a bad value.
    pub fn resolve(&self, cfg: &toml::Table) -> Result<Option<(HeldOutSpec, Standardize)>> {
        let split: Option<String> = self.split.clone().or(cfg_get(cfg, "split")?);
        let test: Option<String> = self.test_data.clone().or(cfg_get(cfg, "test_data")?);
        let st_s: Option<String> = self.standardize.clone().or(cfg_get(cfg, "standardize")?);
        let st = match st_s.as_deref().unwrap_or(crate::defaults::STANDARDIZE) {
            "all" => Standardize::All,
            "inputs" => Standardize::Inputs,
            "none" => Standardize::None,
            o => bail!("unknown --standardize '{o}': expected one of all, inputs, none"),
        };
        let spec = match (split, test) {
            (Some(_), Some(_)) => {
                bail!("give either --split or --test-data, found both")
            }
            (Some(s), None) => HeldOutSpec::Split(
                s.parse()
                    .with_context(|| format!("invalid --split '{s}'"))?,
            ),
            (None, Some(t)) => HeldOutSpec::TestFile(t),
            (None, None) => {
                if st_s.is_some() {
                    bail!("--standardize applies to held-out runs: expected --split or --test-data with it, found neither");
                }
                return Ok(None);
            }
        };
        Ok(Some((spec, st)))
    }
}

/// The held-out parts of `raw` (the loaded data before any bias column) for `loss`, with the bias
/// column appended after standardization when `bias`.
pub fn make_parts(
    raw: &Dataset,
    spec: &HeldOutSpec,
    st: Standardize,
    loss: Loss,
    seed: u64,
    bias: bool,
) -> Result<HeldOut> {
    let inputs = st != Standardize::None;
    let targets = st == Standardize::All && loss == Loss::Squared;
    let held = match spec {
        HeldOutSpec::Split(f) => HeldOut::split(raw, *f, seed, inputs, targets)?,
        HeldOutSpec::TestFile(path) => {
            let test = match path.parse::<DataSpec>() {
                Ok(s @ (DataSpec::Npz(_) | DataSpec::Csv(_))) => {
                    Dataset::load(&s, 0, 0, seed, false)?
                }
                _ => {
                    bail!("invalid --test-data: expected a .npz or .csv data file, found '{path}'")
                }
            };
            HeldOut::with_test(raw.clone(), test, inputs, targets)
                .with_context(|| format!("--test-data {path}"))?
        }
    };
    let held = if bias { held.with_bias() } else { held };
    if loss == Loss::Logistic {
        for (part, data) in [
            ("test", Some(&held.test)),
            ("validation", held.val.as_ref()),
        ] {
            if let Some(y) = data.and_then(|d| d.y.iter().find(|&&y| y != 1.0 && y != -1.0)) {
                let origin = match spec {
                    HeldOutSpec::TestFile(p) => format!("--test-data {p}"),
                    HeldOutSpec::Split(_) => format!("the {part} part"),
                };
                bail!("invalid targets of {origin} for the logistic loss: expected labels in {{-1, +1}}, found {y}");
            }
        }
    }
    Ok(held)
}

/// The held-out problems (test, validation) of a training problem: same activation, loss, regularizer.
pub struct Evaluator {
    /// On the test part.
    pub test: Problem,
    /// On the validation part, if any.
    pub val: Option<Problem>,
}

/// Held-out figures of one state.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct HeldOutFigures {
    /// Risk on the test part (math.md §1).
    pub test_risk: f64,
    /// Sign accuracy on the test part (logistic loss).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Risk on the validation part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_risk: Option<f64>,
}

impl Evaluator {
    /// Problems on `held`'s test and validation parts like `problem`.
    pub fn new(problem: &Problem, held: &HeldOut) -> Result<Self> {
        Ok(Self {
            test: problem.on_data(held.test.clone())?,
            val: held.val.clone().map(|v| problem.on_data(v)).transpose()?,
        })
    }

    /// The figures of predictions given by `predict` (a network's forward pass, or the lazy model's).
    pub fn figures_with(
        &self,
        mut predict: impl FnMut(&Problem) -> Result<Vec<f64>>,
    ) -> Result<HeldOutFigures> {
        let yt = predict(&self.test)?;
        let (test_risk, test_accuracy) = metrics(self.test.loss, &yt, &self.test.data);
        let val_risk = match &self.val {
            Some(v) => Some(v.loss.risk(&predict(v)?, &v.data.y)),
            None => None,
        };
        Ok(HeldOutFigures {
            test_risk,
            test_accuracy,
            val_risk,
        })
    }

    /// The figures of a network (its forward pass on each part).
    pub fn figures(&self, net: &Network) -> HeldOutFigures {
        self.figures_with(|p| Ok(p.predict(net)))
            .expect("a forward pass does not fail")
    }
}

/// Write the held-out parts (`test.npz`, `val.npz`; the training part is in `state.npz`) and
/// `split.json` (fractions, seed, sizes, indices, standardization) into `out`.
pub fn write_parts(
    out: &OutputDir,
    held: &HeldOut,
    spec: &HeldOutSpec,
    st: Standardize,
    seed: u64,
) -> Result<serde_json::Value> {
    nff_core::io::save_data_npz(out.path("test.npz"), &held.test)?;
    if let Some(v) = &held.val {
        nff_core::io::save_data_npz(out.path("val.npz"), v)?;
    }
    let (kind, fractions) = match spec {
        HeldOutSpec::Split(f) => ("split", serde_json::to_value(f)?),
        HeldOutSpec::TestFile(p) => ("test-data", serde_json::Value::String(p.clone())),
    };
    let summary = serde_json::json!({
        "kind": kind,
        "split": fractions,
        "seed": seed,
        "standardize": st.name(),
        "n_train": held.train.n(),
        "n_val": held.val.as_ref().map_or(0, |v| v.n()),
        "n_test": held.test.n(),
    });
    let mut full = summary.clone();
    full["indices"] = serde_json::to_value(&held.indices)?;
    full["standardization"] = serde_json::to_value(&held.standardizer)?;
    out.write_json("split.json", &full)?;
    Ok(summary)
}

/// Pick the `--ridge-grid` value (comma-separated λ ≥ 0).
pub fn ridge_grid(flag: Option<String>, cfg: &toml::Table) -> Result<Option<Vec<f64>>> {
    let Some(s) = flag.or(cfg_get(cfg, "ridge_grid")?) else {
        return Ok(None);
    };
    let grid: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            anyhow::anyhow!(
                "invalid --ridge-grid: expected comma-separated numbers >= 0 (e.g. 1e-4,1e-3,1e-2), found '{s}'"
            )
        })?;
    nff_core::baseline::check_grid(&grid).context("invalid --ridge-grid")?;
    Ok(Some(grid))
}
