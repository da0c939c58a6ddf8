//! Building problems and networks from command-line options: data, activation, loss, regularizer,
//! architecture and initialization (shared by `train`, `flow`, `sweep`).
use crate::common::{check_range, pick};
use crate::heldout::{HeldOutSpec, Standardize};
use anyhow::{bail, Context, Result};
use clap::Args;
use nff_core::data::DataSpec;
use nff_core::init::{init_network, Init};
use nff_core::split::HeldOut;
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
    /// Data: builtin:sine|teacher|spirals|parity (generated), builtin:breast-cancer|diabetes (real, shipped),
    /// or a .npz/.csv file.
    #[arg(long)]
    pub data: Option<String>,
    /// Number of points N of a built-in dataset (real data sets: the first N, default all).
    #[arg(long = "n")]
    pub n: Option<usize>,
    /// Input dimension d of a built-in dataset (real data sets: omit, or their own d).
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

    /// Load the data (default [`crate::defaults::DATA`] with N = [`crate::defaults::N`], d =
    /// [`crate::defaults::D`], the same for every command; a real data set defaults to all its points
    /// and its own d).
    pub fn load(&self, cfg: &toml::Table, seed: u64) -> Result<LoadedData> {
        let raw = self.load_raw(cfg, seed)?;
        Ok(LoadedData {
            data: if raw.bias {
                raw.data.with_bias()
            } else {
                raw.data
            },
            ..raw
        })
    }

    /// [`DataOpts::load`] without appending the bias column (`bias` says whether it is asked for):
    /// held-out runs standardize first and append it after.
    pub fn load_raw(&self, cfg: &toml::Table, seed: u64) -> Result<LoadedData> {
        use crate::defaults::{D as DEFAULT_D, N as DEFAULT_N};
        let spec_s = self
            .spec_flag(cfg)?
            .unwrap_or_else(|| crate::defaults::DATA.into());
        let spec: DataSpec = parse(&spec_s)?;
        let (default_n, default_d) = match &spec {
            DataSpec::Builtin(b) => b.full_size().unwrap_or((DEFAULT_N, DEFAULT_D)),
            _ => (DEFAULT_N, DEFAULT_D),
        };
        let n: usize = pick(self.n, cfg, "n", default_n)?;
        let d: usize = pick(self.d, cfg, "d", default_d)?;
        if matches!(spec, DataSpec::Builtin(_)) && (n == 0 || d == 0) {
            bail!("invalid dataset size: expected --n >= 1 and --d >= 1, found n = {n}, d = {d}");
        }
        let bias = self.bias || crate::common::cfg_get::<bool>(cfg, "bias")?.unwrap_or(false);
        if matches!(spec, DataSpec::Builtin(_)) {
            // X, y and a copy or two while generating.
            crate::common::check_memory(
                &format!("--n {n}, --d {d}"),
                "the data set and its copies",
                3.0 * n as f64 * (d as f64 + 2.0),
            )?;
        }
        let data = Dataset::load(&spec, n, d, seed, false)
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

/// How much memory a command holds per model size, for the estimate made before anything is allocated:
/// `params` copies of the parameter vector (dm + (L−1)m² + m numbers: the network, integrator stages,
/// checkpoints), `features` copies of the N×m features of every layer (forward and backward passes).
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// Copies of the parameters.
    pub params: f64,
    /// Copies of the N × m × L features.
    pub features: f64,
}

impl Footprint {
    /// The estimate for a model of width `m`, depth `depth` on N × d data, in f64 numbers (computed in
    /// f64, so no size overflows).
    pub fn floats(&self, n: usize, d: usize, m: usize, depth: usize) -> f64 {
        let (n, d, m, l) = (n as f64, d as f64, m as f64, depth as f64);
        let params = d * m + (l - 1.0) * m * m + m;
        // + N² for the min-norm initialization's Gram matrices.
        self.params * params + self.features * l * n * m + n * n + 4.0 * n * d
    }

    /// Refuse a model that does not fit in memory (see [`crate::common::check_memory`]).
    pub fn check(&self, n: usize, d: usize, m: usize, depth: usize) -> Result<()> {
        crate::common::check_memory(
            &format!("--width {m}, --depth {depth} on N = {n}, d = {d}"),
            "parameters, integrator copies, features and workspace",
            self.floats(n, d, m, depth),
        )
    }
}

/// A ready problem and its initial network.
pub struct Model {
    /// The problem.
    pub problem: Problem,
    /// The initial network.
    pub net: Network,
    /// The resolved configuration.
    pub config: ModelConfig,
    /// The held-out parts (`--split`, `--test-data`); the problem's data are the training part.
    pub held_out: Option<HeldOut>,
}

fn parse<T: std::str::FromStr<Err = nff_core::CoreError>>(s: &str) -> Result<T> {
    Ok(s.parse::<T>()?)
}

impl ModelArgs {
    /// Resolve against the config table and build the problem and the initial network.
    pub fn build(&self, cfg: &toml::Table, seed: u64, footprint: Footprint) -> Result<Model> {
        self.build_held_out(cfg, seed, footprint, None)
    }

    /// [`ModelArgs::build`] with held-out parts: the data are split (or a test file read) and standardized
    /// with the training part's statistics before the problem and the initialization see them.
    pub fn build_held_out(
        &self,
        cfg: &toml::Table,
        seed: u64,
        footprint: Footprint,
        held_out: Option<&(HeldOutSpec, Standardize)>,
    ) -> Result<Model> {
        let init_s: String = pick(self.init.clone(), cfg, "init", crate::defaults::INIT.into())?;
        if init_s.to_ascii_lowercase().ends_with(".npz") {
            if held_out.is_some() {
                bail!("--split and --test-data need --data, found a state file --init {init_s} (its data are fixed; train on the data it was made from)");
            }
            return self.build_from_state(cfg, &init_s, footprint);
        }
        let activation: Activation = parse(&pick(
            self.activation.clone(),
            cfg,
            "activation",
            crate::defaults::ACTIVATION.into(),
        )?)?;
        let loss: Loss = parse(&pick(
            self.loss.clone(),
            cfg,
            "loss",
            crate::defaults::LOSS.into(),
        )?)?;
        let regularizer = self.regularizer(cfg, None)?;
        let arch: Arch = parse(&pick(
            self.arch.clone(),
            cfg,
            "arch",
            crate::defaults::ARCH.into(),
        )?)?;
        let width: usize = pick(self.width, cfg, "width", crate::defaults::WIDTH)?;
        let default_depth = if arch == Arch::TwoLevel {
            1
        } else {
            crate::defaults::DEPTH
        };
        let depth: usize = pick(self.depth, cfg, "depth", default_depth)?;
        let LoadedData {
            data,
            spec: data_s,
            bias,
        } = self.data.load_raw(cfg, seed)?;
        let (data, held) = match held_out {
            Some((spec, st)) => {
                let held = crate::heldout::make_parts(&data, spec, *st, loss, seed, bias)?;
                (held.train.clone(), Some(held))
            }
            None => (if bias { data.with_bias() } else { data }, None),
        };
        let init: Init = parse(&init_s)?;
        if width >= 1 && depth >= 1 {
            footprint.check(data.n(), data.d(), width, depth)?;
        }
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
            held_out: held,
        })
    }

    /// Whether any regularizer option (flag or config key) is given.
    fn regularizer_given(&self, cfg: &toml::Table) -> bool {
        self.reg.is_some()
            || self.lambda.is_some()
            || self.lambda_a.is_some()
            || self.lambda_v.is_some()
            || self.q.is_some()
            || ["reg", "lambda", "lambda_a", "lambda_v", "q"]
                .iter()
                .any(|k| cfg.contains_key(*k))
    }

    /// The regularizer of the options; options not given default to `recorded` (a state file's) when
    /// there is one, else to the defaults (l2 with λ = 0).
    fn regularizer(&self, cfg: &toml::Table, recorded: Option<Regularizer>) -> Result<Regularizer> {
        let (def_reg, def_lambda, def_q) = match recorded {
            Some(Regularizer::GroupL1q { lambda, q }) => ("group", lambda, q),
            Some(Regularizer::L2 { lambda }) => ("l2", lambda, 1.0),
            Some(Regularizer::L2Split { w, .. }) => ("l2", w, 1.0),
            _ => (
                crate::defaults::REG,
                crate::defaults::LAMBDA,
                crate::defaults::Q,
            ),
        };
        let lambda = check_range(
            "lambda",
            pick(self.lambda, cfg, "lambda", def_lambda)?,
            0.0,
            f64::INFINITY,
        )?;
        let reg_name: String = pick(self.reg.clone(), cfg, "reg", def_reg.into())?;
        let mut la: Option<f64> = self.lambda_a.or(crate::common::cfg_get(cfg, "lambda_a")?);
        let mut lv: Option<f64> = self.lambda_v.or(crate::common::cfg_get(cfg, "lambda_v")?);
        if let Some(Regularizer::L2Split { a, v, .. }) = recorded {
            if reg_name == "l2" {
                la = la.or(Some(a));
                lv = lv.or(Some(v));
            }
        }
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
                    q: pick(self.q, cfg, "q", def_q)?,
                }
            }
            other => bail!("unknown regularizer '{other}': expected one of l2, group"),
        };
        regularizer.validate()?;
        Ok(regularizer)
    }

    /// `--init STATE.npz`: data, shape and (when the file records it) activation, loss and regularizer
    /// come from the state file; a flag that disagrees with the file is an error naming both values.
    fn build_from_state(
        &self,
        cfg: &toml::Table,
        init_s: &str,
        footprint: Footprint,
    ) -> Result<Model> {
        let data_flag = self.data.spec_flag(cfg)?;
        {
            // Everything comes from the state file; shape flags, if given, must agree.
            let path = PathBuf::from(init_s);
            let (data, net, recorded) = nff_core::io::load_state_model(&path)?;
            let act_flag: Option<String> = self
                .activation
                .clone()
                .or(crate::common::cfg_get(cfg, "activation")?);
            let loss_flag: Option<String> =
                self.loss.clone().or(crate::common::cfg_get(cfg, "loss")?);
            let (activation, loss, regularizer) = match recorded {
                Some(rec) => {
                    let activation = match act_flag {
                        Some(f) => {
                            let a: Activation = parse(&f)?;
                            if a != rec.activation {
                                bail!("--activation {a} disagrees with the state file {init_s}: expected {} (as recorded), found {a}", rec.activation);
                            }
                            a
                        }
                        None => rec.activation,
                    };
                    let loss = match loss_flag {
                        Some(f) => {
                            let l: Loss = parse(&f)?;
                            if l != rec.loss {
                                bail!("--loss {l} disagrees with the state file {init_s}: expected {} (as recorded), found {l}", rec.loss);
                            }
                            l
                        }
                        None => rec.loss,
                    };
                    let regularizer = if self.regularizer_given(cfg) {
                        let r = self.regularizer(cfg, Some(rec.regularizer))?;
                        if r != rec.regularizer {
                            bail!(
                                "the regularizer options disagree with the state file {init_s}: expected {} (as recorded), found {}",
                                describe_reg(rec.regularizer),
                                describe_reg(r)
                            );
                        }
                        r
                    } else {
                        rec.regularizer
                    };
                    (activation, loss, regularizer)
                }
                // A state without a recorded model (written by numpy, or by an older nff): the options.
                None => (
                    parse(&act_flag.unwrap_or_else(|| "tanh".into()))?,
                    parse(&loss_flag.unwrap_or_else(|| "squared".into()))?,
                    self.regularizer(cfg, None)?,
                ),
            };
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
            footprint.check(n, d, s.m, s.depth)?;
            let problem = Problem::new(data, activation, loss, regularizer)?;
            Ok(Model {
                problem,
                net,
                config: ModelConfig {
                    arch: s.arch,
                    width: s.m,
                    depth: s.depth,
                    activation,
                    loss,
                    regularizer,
                    init: init_s.to_string(),
                    data: format!("state:{}", path.display()),
                    n,
                    d,
                    bias: false,
                    init_ridge: 0.0,
                },
                held_out: None,
            })
        }
    }
}

/// A regularizer in the words of the options: `l2 with --lambda 0.001`, `group with --lambda 0.01, --q 2`.
pub(crate) fn describe_reg(r: Regularizer) -> String {
    use crate::common::fmt_num;
    match r {
        Regularizer::None => "no regularizer (l2 with --lambda 0)".into(),
        Regularizer::L2 { lambda } => format!("l2 with --lambda {}", fmt_num(lambda)),
        Regularizer::L2Split { a, w, v } => format!(
            "l2 with --lambda-a {}, --lambda {}, --lambda-v {}",
            fmt_num(a),
            fmt_num(w),
            fmt_num(v)
        ),
        Regularizer::GroupL1q { lambda, q } => format!(
            "group with --lambda {}, --q {}",
            fmt_num(lambda),
            fmt_num(q)
        ),
    }
}

impl ModelConfig {
    /// The model part of a state file ([`nff_core::io::StateModel`]).
    pub fn state_model(&self) -> nff_core::io::StateModel {
        nff_core::io::StateModel {
            activation: self.activation,
            loss: self.loss,
            regularizer: self.regularizer,
        }
    }
}
