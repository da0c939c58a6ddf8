//! Building problems and networks from command-line options: data, activation, loss, regularizer,
//! architecture and initialization (shared by `train`, `flow`, `sweep`).
use crate::common::{check_range, pick};
use anyhow::{bail, Context, Result};
use clap::Args;
use nff_core::data::DataSpec;
use nff_core::init::{init_network, Init};
use nff_core::{Activation, Arch, Dataset, Loss, Network, Problem, Regularizer, Shape};
use serde::Serialize;
use std::path::PathBuf;

/// Options that define the model and its data.
#[derive(Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// Architecture: two-level, dnn or resnet.
    #[arg(long)]
    pub arch: Option<String>,
    /// Width m (units per hidden layer).
    #[arg(long)]
    pub width: Option<usize>,
    /// Number of hidden layers L (two-level: 1).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Activation: tanh, sigmoid, softplus, relu.
    #[arg(long)]
    pub activation: Option<String>,
    /// Loss: squared or logistic.
    #[arg(long)]
    pub loss: Option<String>,
    /// Regularizer: l2 (math.md §2) or group (the ℓ₁,q group norms of §4.3).
    #[arg(long)]
    pub reg: Option<String>,
    /// Regularization strength λ ≥ 0.
    #[arg(long)]
    pub lambda: Option<f64>,
    /// L2 strength on A only (overrides --lambda there; λ₂ of math.md §4.1).
    #[arg(long)]
    pub lambda_a: Option<f64>,
    /// L2 strength on v only (overrides --lambda there; λ₁ of math.md §4.1).
    #[arg(long)]
    pub lambda_v: Option<f64>,
    /// Exponent q ≥ 1 of the group norms.
    #[arg(long)]
    pub q: Option<f64>,
    /// Initialization: iid, zero, min-norm, or a state .npz file (then data and shape come from it).
    #[arg(long)]
    pub init: Option<String>,
    #[command(flatten)]
    /// The data.
    pub data: DataOpts,
}

/// The data options shared by every command that builds a dataset.
#[derive(Args, Debug, Clone, Default)]
pub struct DataOpts {
    /// Data: builtin:sine|teacher|spirals|parity, or a .npz/.csv file.
    #[arg(long)]
    pub data: Option<String>,
    /// Number of points N of a built-in dataset.
    #[arg(long = "n")]
    pub n: Option<usize>,
    /// Input dimension d of a built-in dataset.
    #[arg(long = "d")]
    pub d: Option<usize>,
    /// Append a constant-1 bias column to X.
    #[arg(long)]
    pub bias: bool,
}

/// A loaded dataset with the options that produced it.
pub struct LoadedData {
    /// The data.
    pub data: Dataset,
    /// The `--data` text.
    pub spec: String,
    /// Whether a bias column was appended.
    pub bias: bool,
}

impl DataOpts {
    /// The `--data` flag or config key, if given.
    pub fn spec_flag(&self, cfg: &toml::Table) -> Result<Option<String>> {
        Ok(self.data.clone().or(crate::common::cfg_get(cfg, "data")?))
    }

    /// Load the data (default `builtin:sine` with `n`, `d` defaults given by the command).
    pub fn load(
        &self,
        cfg: &toml::Table,
        seed: u64,
        default_n: usize,
        default_d: usize,
    ) -> Result<LoadedData> {
        let spec_s = self
            .spec_flag(cfg)?
            .unwrap_or_else(|| "builtin:sine".into());
        let spec: DataSpec = parse(&spec_s)?;
        let n: usize = pick(self.n, cfg, "n", default_n)?;
        let d: usize = pick(self.d, cfg, "d", default_d)?;
        if matches!(spec, DataSpec::Builtin(_)) && (n == 0 || d == 0) {
            bail!("invalid dataset size: expected --n >= 1 and --d >= 1, found n = {n}, d = {d}");
        }
        let bias = self.bias || crate::common::cfg_get::<bool>(cfg, "bias")?.unwrap_or(false);
        let data = Dataset::load(&spec, n, d, seed, bias)
            .with_context(|| format!("loading data {spec_s}"))?;
        Ok(LoadedData {
            data,
            spec: spec_s,
            bias,
        })
    }
}

/// The resolved model configuration, as written to `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelConfig {
    /// Architecture.
    pub arch: Arch,
    /// Width.
    pub width: usize,
    /// Depth.
    pub depth: usize,
    /// Activation.
    pub activation: Activation,
    /// Loss.
    pub loss: Loss,
    /// Regularizer.
    pub regularizer: Regularizer,
    /// Initialization name or state path.
    pub init: String,
    /// Data spec.
    pub data: String,
    /// N.
    pub n: usize,
    /// d (columns of X, including the bias column).
    pub d: usize,
    /// Bias column appended.
    pub bias: bool,
    /// Ridge added by the min-norm initialization, if any.
    pub init_ridge: f64,
}

/// A ready problem and its initial network.
pub struct Model {
    /// The problem.
    pub problem: Problem,
    /// The initial network.
    pub net: Network,
    /// The resolved configuration.
    pub config: ModelConfig,
}

fn parse<T: std::str::FromStr<Err = nff_core::CoreError>>(s: &str) -> Result<T> {
    Ok(s.parse::<T>()?)
}

impl ModelArgs {
    /// Resolve against the config table and build the problem and the initial network.
    pub fn build(&self, cfg: &toml::Table, seed: u64) -> Result<Model> {
        let activation: Activation = parse(&pick(
            self.activation.clone(),
            cfg,
            "activation",
            "tanh".into(),
        )?)?;
        let loss: Loss = parse(&pick(self.loss.clone(), cfg, "loss", "squared".into())?)?;
        let lambda = check_range(
            "lambda",
            pick(self.lambda, cfg, "lambda", 0.0)?,
            0.0,
            f64::INFINITY,
        )?;
        let reg_name: String = pick(self.reg.clone(), cfg, "reg", "l2".into())?;
        let la: Option<f64> = self.lambda_a.or(crate::common::cfg_get(cfg, "lambda_a")?);
        let lv: Option<f64> = self.lambda_v.or(crate::common::cfg_get(cfg, "lambda_v")?);
        let regularizer = match reg_name.as_str() {
            "l2" => match (la, lv) {
                (None, None) => Regularizer::l2(lambda),
                (a, v) => Regularizer::L2Split {
                    a: a.unwrap_or(lambda),
                    w: lambda,
                    v: v.unwrap_or(lambda),
                },
            },
            "group" => {
                if la.is_some() || lv.is_some() {
                    bail!("--lambda-a/--lambda-v apply to --reg l2 only, found --reg group");
                }
                Regularizer::GroupL1q {
                    lambda,
                    q: pick(self.q, cfg, "q", 1.0)?,
                }
            }
            other => bail!("unknown regularizer '{other}': expected one of l2, group"),
        };
        regularizer.validate()?;
        let init_s: String = pick(self.init.clone(), cfg, "init", "iid".into())?;
        let data_flag = self.data.spec_flag(cfg)?;

        if init_s.to_ascii_lowercase().ends_with(".npz") {
            // Everything comes from the state file; shape flags, if given, must agree.
            let path = PathBuf::from(&init_s);
            let (data, net) = nff_core::io::load_state(&path)?;
            if data_flag.is_some() {
                bail!("--data given together with a state file --init {init_s}: the state file carries its data (drop --data)");
            }
            let s = net.shape();
            let arch_flag: Option<String> =
                self.arch.clone().or(crate::common::cfg_get(cfg, "arch")?);
            if let Some(a) = arch_flag {
                let a: Arch = parse(&a)?;
                if a != s.arch {
                    bail!(
                        "--arch {a} disagrees with the state file {init_s}: expected {}, found {a}",
                        s.arch
                    );
                }
            }
            for (name, flag, have) in [("width", self.width, s.m), ("depth", self.depth, s.depth)] {
                if let Some(f) = flag {
                    if f != have {
                        bail!("--{name} disagrees with the state file {init_s}: the file has {name} {have}, found --{name} {f}");
                    }
                }
            }
            let (n, d) = (data.n(), data.d());
            let problem = Problem::new(data, activation, loss, regularizer)?;
            return Ok(Model {
                problem,
                net,
                config: ModelConfig {
                    arch: s.arch,
                    width: s.m,
                    depth: s.depth,
                    activation,
                    loss,
                    regularizer,
                    init: init_s,
                    data: format!("state:{}", path.display()),
                    n,
                    d,
                    bias: false,
                    init_ridge: 0.0,
                },
            });
        }

        let arch: Arch = parse(&pick(self.arch.clone(), cfg, "arch", "resnet".into())?)?;
        let width: usize = pick(self.width, cfg, "width", 256)?;
        let default_depth = if arch == Arch::TwoLevel { 1 } else { 3 };
        let depth: usize = pick(self.depth, cfg, "depth", default_depth)?;
        let LoadedData {
            data,
            spec: data_s,
            bias,
        } = self.data.load(cfg, seed, 16, 3)?;
        let init: Init = parse(&init_s)?;
        let shape = Shape::new(arch, data.d(), width, depth)?;
        let (net, report) = init_network(shape, &data, activation, &init, seed)?;
        let (n, d) = (data.n(), data.d());
        let problem = Problem::new(data, activation, loss, regularizer)?;
        Ok(Model {
            problem,
            net,
            config: ModelConfig {
                arch,
                width,
                depth,
                activation,
                loss,
                regularizer,
                init: init_s,
                data: data_s,
                n,
                d,
                bias,
                init_ridge: report.max_ridge(),
            },
        })
    }
}
