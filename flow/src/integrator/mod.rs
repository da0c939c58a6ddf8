//! Integrators: step-by-step state machines moved by the [`Runner`](crate::Runner).
//!
//! All implement one object-safe trait, [`Integrator`]. A step advances $(t, y)$ by one *accepted*
//! step without passing a given end time, and leaves the derivative $f(t, y)$ at the new state cached
//! ([`Integrator::derivative`]): it is the first stage of the next step (for Dormand–Prince the FSAL
//! stage), and the runner reads the stationarity measure from it at no extra cost.
//!
//! | integrator | order | evaluations per step |
//! |---|---|---|
//! | [`FixedStep::euler`] (= scaled GD with $\eta = dt$) | 1 | 1 |
//! | [`FixedStep::heun`] | 2 | 2 |
//! | [`FixedStep::rk4`] | 4 | 4 |
//! | [`DormandPrince`] 5(4), adaptive, FSAL | 5 | 6 per attempt |
//! | [`EulerMaruyama`] (Langevin / noisy GD) | 1 (strong ½) | 1 |
//!
//! A non-finite stage or state is never committed: the step reports [`StepStatus::NonFinite`] and
//! the state stays at the last finite one.
mod dopri;
mod fixed;
mod maruyama;

pub use dopri::{DormandPrince, DormandPrinceOptions, StepControl};
pub use fixed::{FixedMethod, FixedStep};
pub use maruyama::EulerMaruyama;

use crate::error::Result;
use crate::field::VectorField;
use rayon::prelude::*;

/// How one call to [`Integrator::step`] ended.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum StepStatus {
    /// The step was taken; `t`, `y` and the cached derivative are updated.
    Accepted,
    /// A stage or the new state was not finite; nothing was committed.
    NonFinite,
    /// The adaptive step size fell below the resolution of $t$; nothing was committed.
    StepSizeUnderflow {
        /// The step size that was too small.
        h: f64,
    },
}

/// Step statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepStats {
    /// Accepted steps.
    pub accepted: u64,
    /// Rejected attempts (adaptive methods only).
    pub rejected: u64,
    /// Vector-field evaluations made by the integrator (including the one at the initial state).
    pub evaluations: u64,
}

/// The serializable state of an integrator beyond $(t, y)$, enough to resume a run bit for bit.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntegratorCheckpoint {
    /// The integrator's name ([`Integrator::name`]); checked on restore.
    pub method: String,
    /// Statistics so far.
    pub stats: StepStats,
    /// Adaptive methods: the next step size to try (`None` before the first step).
    pub h: Option<f64>,
    /// Adaptive methods with PI control: the previous accepted error norm.
    pub err_prev: Option<f64>,
    /// Adaptive methods: whether the last attempt was rejected.
    pub last_rejected: bool,
    /// Stochastic methods: the position of the noise generator in its stream, as (high, low) 64-bit words.
    pub rng_word_pos: Option<(u64, u64)>,
    /// Stochastic methods: the noise seed (a resume must use the same one).
    #[serde(default)]
    pub seed: Option<u64>,
}

/// A one-step ODE integrator, a state machine over $(t, y)$ driven by the [`Runner`](crate::Runner).
///
/// Protocol: [`init`](Integrator::init) once at $(t_0, y_0)$ (allocates buffers and evaluates
/// $f(t_0, y_0)$), then [`step`](Integrator::step) repeatedly. To resume a run, `init` at the saved
/// state and then [`restore`](Integrator::restore) the saved [`IntegratorCheckpoint`].
pub trait Integrator: Send {
    /// A short name (`"euler"`, `"heun"`, `"rk4"`, `"dopri5"`, `"euler-maruyama"`).
    fn name(&self) -> &'static str;
    /// The classical order of accuracy (deterministic case).
    fn order(&self) -> u32;
    /// Prepare for a field of `field.dim()` unknowns at $(t, y)$ and evaluate $f(t, y)$.
    /// Errors if the derivative at the initial state is not finite.
    fn init(&mut self, field: &mut dyn VectorField, t: f64, y: &[f64]) -> Result<()>;
    /// Take one accepted step from $(t, y)$, not beyond `t_end` (which may be $+\infty$); on
    /// [`StepStatus::Accepted`] `t` and `y` hold the new state and [`Integrator::derivative`] is $f$ there.
    /// Landing exactly on `t_end` sets `t = t_end`.
    ///
    /// `y` must have `field.dim()` entries. The new state is put in place by exchanging the vector behind `y`
    /// with the integrator's own buffer of the same length (no copy of the state: on wide networks that copy
    /// was a full pass over the parameters per step); `y`'s length never changes. On any other status `y` is
    /// untouched.
    fn step(
        &mut self,
        field: &mut dyn VectorField,
        t: &mut f64,
        y: &mut Vec<f64>,
        t_end: f64,
    ) -> Result<StepStatus>;
    /// $f(t, y)$ at the current state (valid after `init`).
    fn derivative(&self) -> &[f64];
    /// Statistics so far.
    fn stats(&self) -> StepStats;
    /// The serializable internal state.
    fn checkpoint(&self) -> IntegratorCheckpoint;
    /// Restore the internal state saved by [`Integrator::checkpoint`] (after `init`).
    fn restore(&mut self, checkpoint: &IntegratorCheckpoint) -> Result<()>;
}

/// A serializable choice of integrator and its settings (what a config file or the CLI selects).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum IntegratorSpec {
    /// Explicit Euler with step `dt` (= scaled GD with $\eta$ = `dt`).
    Euler {
        /// Step size.
        dt: f64,
    },
    /// Heun's method (explicit trapezoid) with step `dt`.
    Heun {
        /// Step size.
        dt: f64,
    },
    /// Classical Runge–Kutta 4 with step `dt`.
    Rk4 {
        /// Step size.
        dt: f64,
    },
    /// Adaptive Dormand–Prince 5(4).
    Adaptive(DormandPrinceOptions),
    /// Euler–Maruyama for $dy = f\,dt + \sqrt{2\tau}\,dB$ (noisy GD).
    EulerMaruyama {
        /// Step size $\eta$.
        dt: f64,
        /// Temperature $\tau \ge 0$.
        tau: f64,
        /// Seed of the noise stream `rng(seed, "noise")`.
        seed: u64,
    },
}

impl IntegratorSpec {
    /// Validate the settings and build the integrator.
    pub fn build(&self) -> Result<Box<dyn Integrator>> {
        Ok(match *self {
            Self::Euler { dt } => Box::new(FixedStep::euler(dt)?),
            Self::Heun { dt } => Box::new(FixedStep::heun(dt)?),
            Self::Rk4 { dt } => Box::new(FixedStep::rk4(dt)?),
            Self::Adaptive(opts) => Box::new(DormandPrince::new(opts)?),
            Self::EulerMaruyama { dt, tau, seed } => Box::new(EulerMaruyama::new(dt, tau, seed)?),
        })
    }
    /// The name of the integrator this builds.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Euler { .. } => "euler",
            Self::Heun { .. } => "heun",
            Self::Rk4 { .. } => "rk4",
            Self::Adaptive(_) => "dopri5",
            Self::EulerMaruyama { .. } => "euler-maruyama",
        }
    }
}

/// The step of a fixed-step method from `t` towards `t_end`: `(h, t_new)`.
///
/// A remaining interval within a relative $10^{-9}$ of `dt` is taken as exactly `dt` (so a horizon
/// $T = n\,dt$ is reached in $n$ steps of exactly `dt`, as GD does), landing on `t_end`.
pub(crate) fn fixed_step_size(dt: f64, t: f64, t_end: f64) -> (f64, f64) {
    let remaining = t_end - t;
    if remaining < dt * (1.0 + 1e-9) {
        let h = if (remaining - dt).abs() <= 1e-9 * dt {
            dt
        } else {
            remaining
        };
        (h, t_end)
    } else {
        (dt, t + dt)
    }
}

/// Entries per chunk of the integrators' elementwise passes (256 KiB of `f64`).
const CHUNK: usize = 1 << 15;

/// Whether every entry is finite (in parallel chunks on rayon's pool for long vectors).
pub(crate) fn all_finite(x: &[f64]) -> bool {
    let finite = |c: &[f64]| c.iter().all(|v| v.is_finite());
    if x.len() < 4 * CHUNK {
        finite(x)
    } else {
        x.par_chunks(CHUNK).all(finite)
    }
}

/// Fill `out` chunk by chunk: `f(offset, chunk)` writes `out[offset..offset + chunk.len()]`, reading its
/// inputs at the same offsets. Long vectors run in parallel chunks on rayon's pool; every entry is computed
/// by the same operations whatever the thread count, so the result is too. Returns whether every entry of
/// `out` is finite (checked while the chunk is in cache).
///
/// On wide networks these passes (stage states, the final combination) move several times
/// the parameters' size per step: run on one thread they took most of an RK4 step.
pub(crate) fn par_fill(out: &mut [f64], f: impl Fn(usize, &mut [f64]) + Sync) -> bool {
    let chunk = |(c, o): (usize, &mut [f64])| {
        f(c * CHUNK, o);
        o.iter().all(|v| v.is_finite())
    };
    if out.len() < 4 * CHUNK {
        out.chunks_mut(CHUNK).enumerate().all(chunk)
    } else {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .map(chunk)
            .reduce(|| true, |a, b| a && b)
    }
}

pub(crate) fn check_restore(name: &str, c: &IntegratorCheckpoint) -> Result<()> {
    if c.method != name {
        return Err(crate::FlowError::Checkpoint(format!(
            "integrator '{}' saved, '{}' resuming",
            c.method, name
        )));
    }
    Ok(())
}

/// The checks at the start of every `step`: `y` has the field's dimension and `init` sized the integrator's
/// buffers (`buffer`, one of them) for it — a step swaps its new state into `y`, so a mismatch is an error.
pub(crate) fn check_step(field: &dyn VectorField, y: &[f64], buffer: &[f64]) -> Result<()> {
    check_dim(field, "state", y)?;
    if buffer.len() != y.len() {
        return Err(crate::FlowError::shape(
            "integrator buffers (init must come before step)",
            format!("{} entries", y.len()),
            buffer.len(),
        ));
    }
    Ok(())
}

/// `what` (a state passed to `init` or `step`) has the field's dimension.
pub(crate) fn check_dim(field: &dyn VectorField, what: &str, y: &[f64]) -> Result<()> {
    if y.len() != field.dim() {
        return Err(crate::FlowError::shape(
            what,
            format!("{} entries (the field's dimension)", field.dim()),
            y.len(),
        ));
    }
    Ok(())
}

pub(crate) fn initial_derivative(
    field: &mut dyn VectorField,
    t: f64,
    y: &[f64],
    f: &mut [f64],
) -> Result<()> {
    if !all_finite(y) || !t.is_finite() {
        return Err(crate::FlowError::invalid(
            "initial state",
            "finite time and entries",
            "a non-finite value",
        ));
    }
    field.eval(t, y, f);
    if !all_finite(f) {
        return Err(crate::FlowError::Numerical {
            what: "vector field at the initial state".into(),
            message: "the derivative is not finite".into(),
        });
    }
    Ok(())
}
