//! `nff data`: write a built-in dataset (or convert a data file) to `.npz` and `.csv`.
use crate::common::{pick, read_config, CommonArgs, Ctx};
use crate::output::OutputDir;
use anyhow::{Context, Result};
use clap::Args;
use nff_core::data::DataSpec;
use nff_core::Dataset;
use std::path::PathBuf;

/// Options of `nff data`.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data: builtin:sine|teacher|spirals|parity, or a .npz/.csv file to convert.
    #[arg(long)]
    pub data: Option<String>,
    /// Number of points N.
    #[arg(long = "n")]
    pub n: Option<usize>,
    /// Input dimension d.
    #[arg(long = "d")]
    pub d: Option<usize>,
    /// Append a constant-1 bias column.
    #[arg(long)]
    pub bias: bool,
    #[command(flatten)]
    /// Shared options.
    pub common: CommonArgs,
}

/// Run `nff data`: writes `data.npz` (`X`, `y`), `data.csv` and `summary.json` into `--out`.
pub fn run(args: &DataArgs) -> Result<()> {
    let cfg = read_config(args.common.config.as_deref())?;
    let ctx = Ctx::new(&args.common, &cfg)?;
    let spec_s: String = pick(args.data.clone(), &cfg, "data", "builtin:sine".into())?;
    let spec: DataSpec = spec_s.parse()?;
    let n = pick(args.n, &cfg, "n", 16)?;
    let d = pick(args.d, &cfg, "d", 3)?;
    if n == 0 || d == 0 {
        anyhow::bail!(
            "invalid dataset size: expected --n >= 1 and --d >= 1, found n = {n}, d = {d}"
        );
    }
    let data = Dataset::load(&spec, n, d, ctx.seed, args.bias)
        .with_context(|| format!("loading data {spec_s}"))?;
    let out_path: PathBuf = pick(
        args.common.out.clone(),
        &cfg,
        "out",
        PathBuf::from("out/data"),
    )?;
    let out = OutputDir::create(&out_path)?;
    nff_core::io::save_data_npz(out.path("data.npz"), &data)?;
    nff_core::io::save_data_csv(out.path("data.csv"), &data)?;
    let mut summary = ctx.summary_header("data");
    summary["config"] =
        serde_json::json!({"data": spec_s, "n": data.n(), "d": data.d(), "bias": args.bias});
    out.write_json("summary.json", &summary)?;
    let dir = out.commit()?;
    if !args.common.quiet {
        eprintln!(
            "wrote {} points (d = {}) to {}",
            data.n(),
            data.d(),
            dir.display()
        );
    }
    Ok(())
}
