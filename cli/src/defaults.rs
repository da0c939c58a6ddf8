//! Every option's default, in one place. The commands resolve their options with these constants
//! (`pick(flag, cfg, key, defaults::X)`), and `--help` shows them: the binary appends `[default: …]` to
//! each option's help from [`shown`], which formats the same constants — so the two cannot drift.
//!
//! Defaults live in code rather than in clap (`default_value`) because a flag must win over the config
//! file and the config file over the default: the options are `Option`s, `None` when not given.

/// `--seed` of every command.
pub const SEED: u64 = 0;

/// The default data of every command that builds a dataset (`train`, `flow`, `sweep`, `convex
/// --problem two-level`, `data`): the built-in `sine` set with N = 16 points in d = 3 dimensions.
pub const DATA: &str = "builtin:sine";
/// N of a built-in data set.
pub const N: usize = 16;
/// d of a built-in data set.
pub const D: usize = 3;

/// The model options of `train` and `flow` (and `sweep`'s architecture, depth, activation, λ).
pub const ARCH: &str = "resnet";
/// Width m.
pub const WIDTH: usize = 256;
/// Depth L of a DNN or ResNet (a two-level net has L = 1).
pub const DEPTH: usize = 3;
/// Activation (also `convex`).
pub const ACTIVATION: &str = "tanh";
/// Loss (also `convex`).
pub const LOSS: &str = "squared";
/// Regularizer.
pub const REG: &str = "l2";
/// Regularization strength λ.
pub const LAMBDA: f64 = 0.0;
/// Group-norm exponent q.
pub const Q: f64 = 1.0;
/// Initialization.
pub const INIT: &str = "iid";

/// `train`.
pub mod train {
    /// Step size η.
    pub const ETA: f64 = 0.05;
    /// GD steps when neither `--steps` nor `--time` is given.
    pub const STEPS: u64 = 1000;
    /// Output directory.
    pub const OUT: &str = "out/train";
    /// `--freeze`: train every layer.
    pub const FREEZE: &str = "none";
    /// `--regime`: the network itself, not its linearization.
    pub const REGIME: &str = "mean-field";
}

/// `--standardize` of the commands with held-out parts (`--split`, `--test-data`).
pub const STANDARDIZE: &str = "all";

/// Trajectory rows of `train` and `flow` when `--record-every` is not given: about this many.
pub const TRAJECTORY_ROWS: u64 = 500;

/// `flow`.
pub mod flow {
    /// Integrator.
    pub const INTEGRATOR: &str = "rk4";
    /// Step size of the fixed-step integrators.
    pub const DT: f64 = 0.05;
    /// Relative tolerance of the adaptive integrator.
    pub const RTOL: f64 = 1e-8;
    /// Absolute tolerance of the adaptive integrator.
    pub const ATOL: f64 = 1e-10;
    /// Checkpoint interval in steps.
    pub const CHECKPOINT_EVERY: u64 = 1000;
    /// Output directory.
    pub const OUT: &str = "out/flow";
}

/// `sweep`.
pub mod sweep {
    /// Widths m.
    pub const WIDTHS: [usize; 4] = [32, 64, 128, 256];
    /// Seeds.
    pub const SEEDS: u64 = 6;
    /// Reference width M.
    pub const REFERENCE_WIDTH: usize = 2048;
    /// Final time T.
    pub const TIME: f64 = 2.0;
    /// Integrator.
    pub const INTEGRATOR: &str = "euler";
    /// Step size.
    pub const DT: f64 = 0.05;
    /// Samples per (width, seed).
    pub const SAMPLES: &str = "blocks";
    /// Output directory.
    pub const OUT: &str = "out/sweep";
}

/// `convex`.
pub mod convex {
    /// Problem.
    pub const PROBLEM: &str = "two-level";
    /// Grid radius R.
    pub const RADIUS: f64 = 3.0;
    /// Gaussian candidates K when no candidate source is given.
    pub const GAUSSIAN: usize = 512;
    /// Standard deviation of Gaussian candidates.
    pub const SIGMA: f64 = 1.0;
    /// λ₁.
    pub const LAMBDA1: f64 = 0.01;
    /// λ₂.
    pub const LAMBDA2: f64 = 0.0;
    /// τ.
    pub const TAU: f64 = 0.0;
    /// Solves per run.
    pub const REPEAT: usize = 1;
    /// Deep: group-norm strength λ.
    pub const LAMBDA: f64 = 0.01;
    /// Deep: group-norm exponent q.
    pub const Q: f64 = 1.0;
    /// Deep: fresh candidates per layer.
    pub const FRESH: usize = 8;
    /// Deep: the algorithm.
    pub const SOLVER: &str = "auto";
    /// Output directory.
    pub const OUT: &str = "out/convex";
}

/// `data`.
pub mod data {
    /// Output directory.
    pub const OUT: &str = "out/data";
}

/// `verify`.
pub mod verify {
    /// Output directory.
    pub const OUT: &str = "out/verify";
}

/// A number as `--help` shows it (`0.05`, `1e-8`, `2048`).
fn num(x: f64) -> String {
    crate::common::fmt_num(x)
}

/// The default of option `--long` of `nff command` as `--help` shows it, or `None` for an option whose
/// absence has no default value to show (a flag is off unless given; `--config`, `--resume`, … are
/// simply not used when absent: those say so in their own help). Every option that takes a value has an
/// entry here or in [`NOT_DEFAULTED`] (tested: `cli/tests/conventions.rs`).
pub fn shown(command: &str, long: &str) -> Option<String> {
    let s = |x: &str| Some(x.to_string());
    match (command, long) {
        (_, "seed") => Some(SEED.to_string()),
        (_, "threads") => s("all cores"),
        ("train", "out") => s(train::OUT),
        ("flow", "out") => s(flow::OUT),
        ("sweep", "out") => s(sweep::OUT),
        ("convex", "out") => s(convex::OUT),
        ("data", "out") => s(data::OUT),
        ("verify", "out") => s(verify::OUT),
        (_, "data") => s(DATA),
        (_, "n") => Some(N.to_string()),
        (_, "d") => Some(D.to_string()),
        (_, "arch") => s(ARCH),
        (_, "width") => Some(WIDTH.to_string()),
        (_, "depth") => Some(format!("{DEPTH}, 1 for two-level")),
        (_, "activation") => s(ACTIVATION),
        (_, "loss") => s(LOSS),
        (_, "reg") => s(REG),
        ("convex", "lambda") => Some(num(convex::LAMBDA)),
        ("convex", "q") => Some(num(convex::Q)),
        (_, "lambda") => Some(num(LAMBDA)),
        (_, "lambda-a" | "lambda-v") => s("--lambda"),
        (_, "q") => Some(num(Q)),
        ("train" | "flow", "init") => s(INIT),
        (_, "record-every") => Some(format!(
            "about {TRAJECTORY_ROWS} rows: ⌈steps/{TRAJECTORY_ROWS}⌉"
        )),
        ("train", "eta") => Some(num(train::ETA)),
        ("train", "steps") => Some(format!("{} unless --time is given", train::STEPS)),
        ("flow", "integrator") => s(flow::INTEGRATOR),
        ("flow", "dt") => Some(num(flow::DT)),
        ("flow", "rtol") => Some(num(flow::RTOL)),
        ("flow", "atol") => Some(num(flow::ATOL)),
        ("flow", "checkpoint-every") => Some(flow::CHECKPOINT_EVERY.to_string()),
        ("sweep", "widths") => Some(
            sweep::WIDTHS
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("sweep", "seeds") => Some(sweep::SEEDS.to_string()),
        ("sweep", "reference-width") => Some(sweep::REFERENCE_WIDTH.to_string()),
        ("sweep", "time") => Some(num(sweep::TIME)),
        ("sweep", "integrator") => s(sweep::INTEGRATOR),
        ("sweep", "dt") => Some(num(sweep::DT)),
        ("sweep", "samples") => s(sweep::SAMPLES),
        ("train", "freeze") => s(train::FREEZE),
        ("train", "regime") => s(train::REGIME),
        (_, "standardize") => s(STANDARDIZE),
        ("convex", "problem") => s(convex::PROBLEM),
        ("convex", "radius") => Some(num(convex::RADIUS)),
        ("convex", "gaussian") => Some(format!(
            "{} when no --candidates or --grid is given",
            convex::GAUSSIAN
        )),
        ("convex", "sigma") => Some(num(convex::SIGMA)),
        ("convex", "lambda1") => Some(num(convex::LAMBDA1)),
        ("convex", "lambda2") => Some(num(convex::LAMBDA2)),
        ("convex", "tau") => Some(num(convex::TAU)),
        ("convex", "tol-gap") => Some(format!(
            "{} two-level, {} deep",
            num(nff_solvers::TwoLevelOptions::default().tol_gap),
            num(nff_solvers::deep::DeepOptions::default().tol_gap)
        )),
        ("convex", "repeat") => Some(convex::REPEAT.to_string()),
        ("convex", "fresh") => Some(convex::FRESH.to_string()),
        ("convex", "solver") => s(convex::SOLVER),
        ("verify", "seeds") => Some(format!(
            "{} with --quick, {} without",
            crate::verify::VerifyConfig::default_seeds(crate::verify::Size::Quick),
            crate::verify::VerifyConfig::default_seeds(crate::verify::Size::Full)
        )),
        ("verify", "only") => s("all claims"),
        (_, "slurm-tasks") => Some(crate::slurm::DEFAULT_TASKS.to_string()),
        (_, "slurm-cpus") => Some(crate::slurm::DEFAULT_CPUS.to_string()),
        (_, "slurm-mem") => s("the site's"),
        (_, "slurm-time") => s("the partition's"),
        (_, "slurm-partition") => s("the site's"),
        _ => None,
    }
}

/// Options that take a value but have no default to show: absent, they are not used (each one's help
/// says what giving it does).
pub const NOT_DEFAULTED: &[&str] = &[
    "config",
    "time",
    "until-stationary",
    "max-steps",
    "temperature",
    "checkpoint",
    "resume",
    "candidates",
    "grid",
    "program",
    "export-program",
    "init",
    "shard",
    "merge",
    "sbatch",
    "split",
    "test-data",
    "ridge-grid",
];

/// `help` with the default of `--long` of `nff command` appended as ` [default: …]` (unchanged when
/// there is none, or when the text already states it).
pub fn annotate(command: &str, long: &str, help: &str) -> String {
    match shown(command, long) {
        Some(d) if !help.contains("[default:") => format!("{help} [default: {d}]"),
        _ => help.to_string(),
    }
}
