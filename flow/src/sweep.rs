//! Width sweeps: finite width → NFF at rate $m^{-1/2}$ (math.md §5, claim C5).
//!
//! For each seed, a reference network of width $M$ is drawn unit by unit — unit $j$ gets the *label*
//! $u_j = (a_j, v_j)$, $a_j \sim \mathcal N(0, \sigma_A^2 I_d)$, $v_j \sim \mathcal N(0, \sigma_v^2)$ (or $v_j = 0$), from
//! `rng(seed, "init")` — with every middle weight $W_\ell = 0$ (the ResNet zero start). Since the start is a
//! deterministic function of the labels, *every* block of $m$ consecutive units $b m, \dots, (b+1)m - 1$ of the
//! reference ([`block`]) is a width-$m$ network with i.i.d. labels, exactly coupled to the reference; the first
//! block is [`truncate`]. With [`Samples::Blocks`] (the default) a job $(m, \text{seed})$ integrates all
//! $\lfloor M/m\rfloor$ blocks, with [`Samples::First`] only the first. Each block and the reference are integrated to
//! time $T$ with the same integrator; per block the sweep measures
//! $$e_{\hat y} = \|\hat{\mathbf y}^{(m)}(T) - \hat{\mathbf y}^{\rm ref}(T)\|,\qquad
//! e_Z = \Big(\frac1m\sum_{k}\|\mathbf z^{(m)}_{L,k}(T) - \mathbf z^{\rm ref}_{L,k}(T)\|^2\Big)^{1/2},$$
//! ($\mathbf z_{L,k}$ = column $k$ of $Z_L$, the feature of unit $k$, compared with the same unit of the
//! reference), the means over seeds and blocks per width, and the least-squares slope of
//! $\log(\text{mean error})$ against $\log m_{\rm eff}$ (≈ −1/2 expected), where
//! $$m_{\rm eff} = \frac{mM}{M - m}:$$
//! a block is a subset of the reference's units, so to leading order (CLT)
//! $\mathbb E\|\hat{\mathbf y}^{(m)} - \hat{\mathbf y}^{(M)}\|^2 \propto 1/m - 1/M = 1/m_{\rm eff}$, which is $1/m$ as $M \to \infty$.
//! The slope against $m$ itself is reported too. Averaging over blocks is what makes one sweep's slope
//! reliable: a single sample per seed has an $O(1)$ relative spread, and with 6 seeds the fitted slope
//! scattered over $[-0.67, -0.18]$ between data seeds; a width-$m$ job now averages $M/m$ samples.
//!
//! **Jobs, threads, shards.** Job $i$ = (seed index $i / n_w$, width index $i \bmod n_w$). Jobs run in parallel
//! with rayon, each on its own network and field with `Par::Seq` GEMMs, and results are collected in job
//! order, so the report does not depend on the number of threads. A [`Shard`] $k/n$ runs the contiguous
//! block of jobs with $\lfloor i n / n_{\rm jobs}\rfloor = k$ (so the seeds, hence the expensive references, mostly
//! stay on one shard; a shard computes the reference of every seed it has a job for); [`merge_shards`]
//! of all shards equals [`run_sweep`] exactly.
use crate::error::{non_negative, positive, FlowError, Result};
use crate::integrator::IntegratorSpec;
use crate::runner::{RunnerBuilder, TerminationReason};
use crate::weight_flow::WeightFlow;
use faer::Par;
use nff_core::network::Workspace;
use nff_core::rng::{normal, rng};
use nff_core::{Activation, Arch, Dataset, Loss, Network, Params, Problem, Regularizer, Shape};
use rayon::prelude::*;

/// The initial labels of the sweep: $a_j \sim \mathcal N(0, \sigma_A^2 I_d)$, $v_j \sim \mathcal N(0,\sigma_v^2)$ ($v = 0$ if
/// $\sigma_v = 0$), middle weights $W = 0$.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepInit {
    /// $\sigma_A$ (default 1).
    pub a_sigma: f64,
    /// $\sigma_v$ (default 0: the zero start $v = 0$).
    pub v_sigma: f64,
}

impl Default for SweepInit {
    fn default() -> Self {
        Self {
            a_sigma: 1.0,
            v_sigma: 0.0,
        }
    }
}

/// Which width-$m$ samples a job takes from its seed's reference (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Samples {
    /// Every block of $m$ consecutive units, $\lfloor M/m \rfloor$ samples.
    #[default]
    Blocks,
    /// Only the first $m$ units ([`truncate`]).
    First,
}

impl std::str::FromStr for Samples {
    type Err = FlowError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "blocks" => Ok(Self::Blocks),
            "first" => Ok(Self::First),
            other => Err(FlowError::invalid("samples", "blocks or first", other)),
        }
    }
}

/// A width sweep. The data are passed separately (see [`run_sweep`]): $N$ and $d$ are the dataset's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepConfig {
    /// Architecture.
    pub arch: Arch,
    /// Depth $L$ (1 for two-level).
    pub depth: usize,
    /// Activation.
    pub activation: Activation,
    /// Loss.
    pub loss: Loss,
    /// Regularizer.
    pub reg: Regularizer,
    /// Final time $T$.
    pub t_final: f64,
    /// The (deterministic) integrator and its step or tolerances.
    pub integrator: IntegratorSpec,
    /// Widths $m$ (each $\le M$).
    pub widths: Vec<usize>,
    /// Seeds (one reference per seed).
    pub seeds: Vec<u64>,
    /// Reference width $M$.
    pub reference_width: usize,
    /// Initial labels.
    #[serde(default)]
    pub init: SweepInit,
    /// Which samples each job takes (default: all blocks).
    #[serde(default)]
    pub samples: Samples,
}

impl SweepConfig {
    /// Reject empty width or seed lists, widths of 0 or above $M$, $T \le 0$ or NaN, invalid depth,
    /// negative or NaN init scales, invalid integrator settings, and stochastic integrators.
    pub fn check(&self) -> Result<()> {
        Shape::new(self.arch, 1, self.reference_width.max(1), self.depth)?;
        if self.reference_width == 0 {
            return Err(FlowError::invalid("reference width M", "M >= 1", 0));
        }
        positive("final time T", self.t_final)?;
        if self.widths.is_empty() {
            return Err(FlowError::invalid("widths", "at least one width", "none"));
        }
        if let Some(&m) = self
            .widths
            .iter()
            .find(|&&m| m == 0 || m > self.reference_width)
        {
            return Err(FlowError::invalid(
                "width",
                format!("1 <= m <= M = {}", self.reference_width),
                m,
            ));
        }
        if self.seeds.is_empty() {
            return Err(FlowError::invalid("seeds", "at least one seed", "none"));
        }
        non_negative("init a_sigma", self.init.a_sigma)?;
        non_negative("init v_sigma", self.init.v_sigma)?;
        if let IntegratorSpec::EulerMaruyama { .. } = self.integrator {
            return Err(FlowError::invalid(
                "sweep integrator",
                "a deterministic integrator (euler, heun, rk4, adaptive)",
                "euler-maruyama",
            ));
        }
        self.integrator.build()?;
        Ok(())
    }
    /// Number of jobs, $|\text{seeds}|\cdot|\text{widths}|$.
    pub fn n_jobs(&self) -> usize {
        self.seeds.len() * self.widths.len()
    }
    /// (seed index, width index) of job `job`.
    pub fn job(&self, job: usize) -> (usize, usize) {
        (job / self.widths.len(), job % self.widths.len())
    }
    /// First units of the width-`m` samples: $0, m, 2m, \dots$ ($\lfloor M/m\rfloor$ blocks) or just $0$.
    pub fn block_starts(&self, m: usize) -> Vec<usize> {
        match self.samples {
            Samples::Blocks => (0..self.reference_width / m).map(|b| b * m).collect(),
            Samples::First => vec![0],
        }
    }
}

/// Shard $k$ of $n$ (`index` from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// $k$, $0 \le k < n$.
    pub index: usize,
    /// $n \ge 1$.
    pub count: usize,
}

impl Shard {
    /// The whole sweep as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// A validated shard.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(FlowError::invalid(
                "shard k/n",
                "n >= 1 and 0 <= k < n",
                format!("{index}/{count}"),
            ));
        }
        Ok(Self { index, count })
    }
    /// Whether this shard runs job `job` of `n_jobs`: $\lfloor \text{job}\cdot n / n_{\rm jobs}\rfloor = k$ (contiguous blocks).
    pub fn runs(&self, job: usize, n_jobs: usize) -> bool {
        job < n_jobs && job * self.count / n_jobs == self.index
    }
}

/// The result of one job $(m, \text{seed})$.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobResult {
    /// Job index.
    pub job: usize,
    /// Width $m$.
    pub width: usize,
    /// Seed.
    pub seed: u64,
    /// Mean over the job's blocks of $\|\hat{\mathbf y}^{(m)}(T) - \hat{\mathbf y}^{\rm ref}(T)\|$.
    pub yhat_error: f64,
    /// Mean over the job's blocks of $(\frac1m\sum_k\|\mathbf z^{(m)}_{L,k}(T) - \mathbf z^{\rm ref}_{L,k}(T)\|^2)^{1/2}$
    /// (column $k$ of $Z_L$).
    pub feature_error: f64,
    /// $\|\hat{\mathbf y}^{(m)}(T) - \hat{\mathbf y}^{\rm ref}(T)\|$ of each block, in block order.
    pub yhat_errors: Vec<f64>,
    /// The feature error of each block, in block order.
    pub feature_errors: Vec<f64>,
    /// Accepted steps of the width-$m$ runs, summed over blocks.
    pub steps: u64,
    /// Field evaluations of the width-$m$ runs, summed over blocks.
    pub evaluations: u64,
}

/// The jobs one shard ran.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardReport {
    /// The sweep configuration.
    pub config: SweepConfig,
    /// $N$.
    pub n: usize,
    /// $d$.
    pub d: usize,
    /// A fingerprint of the data (FNV-1a of the bits of $X$ and $y$), so shards run on different data do not merge.
    pub data_fingerprint: u64,
    /// Which shard.
    pub shard: Shard,
    /// Its jobs, in job order.
    pub jobs: Vec<JobResult>,
}

/// Mean errors at one width.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WidthSummary {
    /// Width $m$.
    pub width: usize,
    /// $m_{\rm eff} = mM/(M - m)$ (infinite for $m = M$).
    pub effective_width: f64,
    /// Mean of $e_{\hat y}$ over seeds and blocks.
    pub mean_yhat_error: f64,
    /// Mean of $e_Z$ over seeds and blocks.
    pub mean_feature_error: f64,
    /// Number of seeds.
    pub seeds: usize,
    /// Number of samples (seeds × blocks).
    pub samples: usize,
}

/// The result of a width sweep.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepReport {
    /// The sweep configuration.
    pub config: SweepConfig,
    /// $N$.
    pub n: usize,
    /// $d$.
    pub d: usize,
    /// See [`ShardReport::data_fingerprint`].
    pub data_fingerprint: u64,
    /// Every job, in job order.
    pub jobs: Vec<JobResult>,
    /// Means per width, in the order of `config.widths`.
    pub per_width: Vec<WidthSummary>,
    /// Least-squares slope of $\log$ mean $e_{\hat y}$ against $\log m_{\rm eff}$ over the widths $m < M$ (`None` with
    /// fewer than two such widths or a non-positive mean).
    pub slope_yhat: Option<f64>,
    /// The same for $e_Z$.
    pub slope_feature: Option<f64>,
    /// Least-squares slope of $\log$ mean $e_{\hat y}$ against $\log m$ (same widths).
    pub slope_yhat_raw: Option<f64>,
}

/// The first `m` units of `net`: `A[:, :m]`, `W_l[:m, :m]`, `v[:m]`.
pub fn truncate(net: &Network, m: usize) -> Result<Network> {
    block(net, 0, m)
}

/// Units `start..start + m` of `net`: `A[:, start..start+m]`, the diagonal blocks of the $W_\ell$, and
/// `v[start..start+m]`.
pub fn block(net: &Network, start: usize, m: usize) -> Result<Network> {
    let s = net.shape();
    if m == 0 || start + m > s.m {
        return Err(FlowError::invalid(
            "block of units",
            format!("1 <= m and start + m <= {}", s.m),
            format!("start {start}, m {m}"),
        ));
    }
    let shape = Shape::new(s.arch, s.d, m, s.depth)?;
    let mut out = Params::zeros(shape);
    out.a_mut().copy_from(net.a().subcols(start, m));
    for l in 0..s.n_w() {
        out.w_mut(l)
            .copy_from(net.w(l).submatrix(start, start, m, m));
    }
    out.v_mut().copy_from_slice(&net.v()[start..start + m]);
    Ok(out)
}

/// $m_{\rm eff} = mM/(M - m)$, the width whose $1/m$ equals $1/m - 1/M$ (infinite for $m = M$).
pub fn effective_width(m: usize, reference_width: usize) -> f64 {
    let (m, big) = (m as f64, reference_width as f64);
    if m >= big {
        f64::INFINITY
    } else {
        m * big / (big - m)
    }
}

/// The reference network of width $M$ of a sweep for one seed (see the module docs).
pub fn reference_network(shape: Shape, init: SweepInit, seed: u64) -> Network {
    let mut r = rng(seed, "init");
    let mut net = Params::zeros(shape);
    let mut v = vec![0.0; shape.m];
    {
        let mut a = net.a_mut();
        for (j, vj) in v.iter_mut().enumerate() {
            for i in 0..shape.d {
                a[(i, j)] = init.a_sigma * normal(&mut r);
            }
            if init.v_sigma > 0.0 {
                *vj = init.v_sigma * normal(&mut r);
            }
        }
    }
    net.v_mut().copy_from_slice(&v);
    net
}

/// Least-squares slope of $\log y$ against $\log x$; `None` with fewer than two points, equal $x$'s, or a
/// non-positive or non-finite value.
pub fn log_log_slope(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    if x.iter().chain(y).any(|v| !(v.is_finite() && *v > 0.0)) {
        return None;
    }
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let n = lx.len() as f64;
    let mx = lx.iter().sum::<f64>() / n;
    let my = ly.iter().sum::<f64>() / n;
    let sxx: f64 = lx.iter().map(|a| (a - mx) * (a - mx)).sum();
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// FNV-1a (64 bit) of the bits of X (column by column) and y: equal data, equal fingerprint.
pub fn data_fingerprint(data: &Dataset) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: f64| {
        for b in x.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for j in 0..data.x.ncols() {
        for i in 0..data.x.nrows() {
            eat(data.x[(i, j)]);
        }
    }
    data.y.iter().for_each(|&y| eat(y));
    h
}

/// Integrate `net` to `T`; returns ($\hat{\mathbf y}(T)$, $Z_L(T)$ column-major, steps, evaluations).
fn integrate(
    problem: &Problem,
    config: &SweepConfig,
    net: &Network,
) -> Result<(Vec<f64>, Vec<f64>, u64, u64)> {
    let field = WeightFlow::new(problem.clone(), net.shape(), Par::Seq)?;
    let y0 = field.initial_state(net)?;
    let mut runner = RunnerBuilder::with_boxed(field, config.integrator.build()?)
        .initial_state(0.0, y0)
        .final_time(config.t_final)
        .build()?;
    let report = runner.run()?;
    if report.termination != TerminationReason::FinalTime {
        return Err(FlowError::Numerical {
            what: format!("width-{} run of the sweep", net.shape().m),
            message: format!(
                "stopped at t = {} with {:?} before T = {}",
                report.t, report.termination, config.t_final
            ),
        });
    }
    let fin = Params::from_vec(net.shape(), report.state)?;
    let mut ws = Workspace::new(fin.shape(), problem.n());
    problem.forward_into(&fin, &mut ws, Par::Seq);
    let top = fin.shape().depth - 1;
    Ok((
        std::mem::take(&mut ws.yhat),
        std::mem::take(&mut ws.z[top]),
        report.steps,
        report.stats.evaluations,
    ))
}

/// Run the jobs of one shard on `data` (see the module docs).
pub fn run_shard(config: &SweepConfig, data: &Dataset, shard: Shard) -> Result<ShardReport> {
    config.check()?;
    Shard::new(shard.index, shard.count)?;
    let problem = Problem::new(data.clone(), config.activation, config.loss, config.reg)?;
    let (n, d) = (data.n(), data.d());
    let ref_shape = Shape::new(config.arch, d, config.reference_width, config.depth)?;
    let n_jobs = config.n_jobs();
    let jobs: Vec<usize> = (0..n_jobs).filter(|&j| shard.runs(j, n_jobs)).collect();
    let mut seed_idx: Vec<usize> = jobs.iter().map(|&j| config.job(j).0).collect();
    seed_idx.dedup();
    // References, one per needed seed, in parallel; keep ŷ and Z_L.
    let references: Vec<(usize, Network, Vec<f64>, Vec<f64>)> = seed_idx
        .par_iter()
        .map(|&s| {
            let net = reference_network(ref_shape, config.init, config.seeds[s]);
            let (yhat, z, _, _) = integrate(&problem, config, &net)?;
            Ok((s, net, yhat, z))
        })
        .collect::<Result<_>>()?;
    let results: Vec<JobResult> = jobs
        .par_iter()
        .map(|&job| {
            let (s, w) = config.job(job);
            let m = config.widths[w];
            let (_, ref_net, ref_yhat, ref_z) = references
                .iter()
                .find(|r| r.0 == s)
                .expect("reference computed for every seed of the shard");
            let (mut yhat_errors, mut feature_errors) = (Vec::new(), Vec::new());
            let (mut steps, mut evaluations) = (0, 0);
            for start in config.block_starts(m) {
                let (yhat, z, st, ev) = integrate(&problem, config, &block(ref_net, start, m)?)?;
                yhat_errors.push(distance(&yhat, ref_yhat));
                feature_errors
                    .push(distance(&z, &ref_z[n * start..n * (start + m)]) / (m as f64).sqrt());
                steps += st;
                evaluations += ev;
            }
            Ok(JobResult {
                job,
                width: m,
                seed: config.seeds[s],
                yhat_error: mean(&yhat_errors),
                feature_error: mean(&feature_errors),
                yhat_errors,
                feature_errors,
                steps,
                evaluations,
            })
        })
        .collect::<Result<_>>()?;
    Ok(ShardReport {
        config: config.clone(),
        n,
        d,
        data_fingerprint: data_fingerprint(data),
        shard,
        jobs: results,
    })
}

/// Merge the reports of all shards of one sweep into the sweep's report; errors if the shards disagree
/// on the configuration or the data, or a job is missing or duplicated.
pub fn merge_shards(shards: &[ShardReport]) -> Result<SweepReport> {
    let first = shards
        .first()
        .ok_or_else(|| FlowError::Merge("no shard reports".into()))?;
    for s in shards {
        if s.config != first.config {
            return Err(FlowError::Merge(
                "shards of different configurations".into(),
            ));
        }
        if (s.n, s.d, s.data_fingerprint) != (first.n, first.d, first.data_fingerprint) {
            return Err(FlowError::Merge("shards run on different data".into()));
        }
    }
    let config = &first.config;
    let n_jobs = config.n_jobs();
    let mut slots: Vec<Option<JobResult>> = vec![None; n_jobs];
    for s in shards {
        for j in &s.jobs {
            let slot = slots.get_mut(j.job).ok_or_else(|| {
                FlowError::Merge(format!("job {} out of range ({} jobs)", j.job, n_jobs))
            })?;
            if slot.is_some() {
                return Err(FlowError::Merge(format!("job {} appears twice", j.job)));
            }
            *slot = Some(j.clone());
        }
    }
    let jobs: Vec<JobResult> = slots
        .into_iter()
        .enumerate()
        .map(|(i, j)| j.ok_or_else(|| FlowError::Merge(format!("job {i} is missing"))))
        .collect::<Result<_>>()?;
    let nw = config.widths.len();
    let big = config.reference_width;
    let per_width: Vec<WidthSummary> = (0..nw)
        .map(|w| {
            let of_width = || (0..config.seeds.len()).map(|s| &jobs[s * nw + w]);
            let ey: Vec<f64> = of_width().flat_map(|j| j.yhat_errors.clone()).collect();
            let ez: Vec<f64> = of_width().flat_map(|j| j.feature_errors.clone()).collect();
            WidthSummary {
                width: config.widths[w],
                effective_width: effective_width(config.widths[w], big),
                mean_yhat_error: mean(&ey),
                mean_feature_error: mean(&ez),
                seeds: config.seeds.len(),
                samples: ey.len(),
            }
        })
        .collect();
    let fitted: Vec<&WidthSummary> = per_width.iter().filter(|w| w.width < big).collect();
    let col = |f: fn(&WidthSummary) -> f64| fitted.iter().map(|w| f(w)).collect::<Vec<f64>>();
    let (m_eff, m_raw) = (col(|w| w.effective_width), col(|w| w.width as f64));
    let (ey, ez) = (col(|w| w.mean_yhat_error), col(|w| w.mean_feature_error));
    Ok(SweepReport {
        config: config.clone(),
        n: first.n,
        d: first.d,
        data_fingerprint: first.data_fingerprint,
        jobs,
        slope_yhat: log_log_slope(&m_eff, &ey),
        slope_feature: log_log_slope(&m_eff, &ez),
        slope_yhat_raw: log_log_slope(&m_raw, &ey),
        per_width,
    })
}

/// Euclidean distance of two equally long vectors.
fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// Arithmetic mean (NaN for an empty slice).
fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Run the whole sweep (one shard) and summarize it.
pub fn run_sweep(config: &SweepConfig, data: &Dataset) -> Result<SweepReport> {
    merge_shards(&[run_shard(config, data, Shard::ALL)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_jobs() {
        for n_jobs in [1, 5, 24, 37] {
            for count in 1..7 {
                for job in 0..n_jobs {
                    let owners = (0..count)
                        .filter(|&k| Shard::new(k, count).unwrap().runs(job, n_jobs))
                        .count();
                    assert_eq!(owners, 1, "job {job}/{n_jobs}, {count} shards");
                }
            }
        }
        assert!(Shard::new(2, 2).is_err());
        assert!(Shard::new(0, 0).is_err());
    }

    #[test]
    fn slope_of_a_power_law() {
        let x = [16.0, 32.0, 64.0, 128.0];
        let y: Vec<f64> = x.iter().map(|m: &f64| 3.0 * m.powf(-0.5)).collect();
        assert!((log_log_slope(&x, &y).unwrap() + 0.5).abs() < 1e-12);
        assert_eq!(log_log_slope(&[1.0], &[1.0]), None);
        assert_eq!(log_log_slope(&[1.0, 2.0], &[0.0, 1.0]), None);
    }
}
