//! The driver: one [`Runner`] moves an [`Integrator`] over a [`VectorField`] until a stop rule fires,
//! recording a trajectory, calling observers and writing checkpoints.
//!
//! ```
//! use nff_flow::{FixedStep, LinearField, Runner, TerminationReason};
//! // ẏ = -y from y(0) = 1 to t = 1 with RK4.
//! let field = LinearField::new(1, vec![-1.0]).unwrap();
//! let mut runner = Runner::builder(field, FixedStep::rk4(0.1).unwrap())
//!     .initial_state(0.0, vec![1.0])
//!     .final_time(1.0)
//!     .build()
//!     .unwrap();
//! let report = runner.run().unwrap();
//! assert_eq!(report.termination, TerminationReason::FinalTime);
//! assert!((report.state[0] - (-1.0f64).exp()).abs() < 1e-6);
//! ```
use crate::error::{positive, FlowError, Result};
use crate::field::{Diagnostics, VectorField};
use crate::integrator::{Integrator, IntegratorCheckpoint, StepStats, StepStatus};
use std::path::Path;
use std::time::Instant;

/// When an observer, the recorder or the snapshotter fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObserverMode {
    /// Never (the final state is still reported).
    Never,
    /// At steps $0, k, 2k, \dots$ ($k \ge 1$) and at the final step.
    Every(u64),
}

impl ObserverMode {
    /// Whether the mode fires at `step`.
    pub fn fires(self, step: u64) -> bool {
        match self {
            Self::Never => false,
            Self::Every(k) => k > 0 && step % k == 0,
        }
    }
    fn check(self, what: &str) -> Result<()> {
        if self == Self::Every(0) {
            return Err(FlowError::invalid(what, "Every(k) with k >= 1", "Every(0)"));
        }
        Ok(())
    }
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TerminationReason {
    /// The final time was reached.
    FinalTime,
    /// The stationarity measure $\|\dot y\|^2$ (scaled, for networks: the dissipation rate) fell below the tolerance.
    Stationary,
    /// The step limit was reached.
    MaxSteps,
    /// A step produced a non-finite state or derivative; the reported state is the last finite one.
    NonFinite,
    /// The adaptive step size underflowed; the reported state is the last accepted one.
    StepSizeUnderflow,
    /// An observer asked to stop.
    ObserverStop,
}

/// What an observer asks the runner to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObserverAction {
    /// Go on.
    Continue,
    /// End the run with [`TerminationReason::ObserverStop`].
    Stop,
}

/// One recorded row of the trajectory.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// Step count.
    pub step: u64,
    /// Time $t$ (for GD: $\eta\cdot$steps).
    pub t: f64,
    /// The stationarity measure at this state, [`VectorField::velocity_sq_norm`] of $\dot y$; for network
    /// flows the dissipation rate $-dJ/dt = \|\dot\theta\|^2_{\rm scaled}$.
    pub dissipation: f64,
    /// Network figures (objective, risk, residual bound, drift); `None` for plain ODEs.
    #[serde(flatten)]
    pub diagnostics: Option<Diagnostics>,
}

impl Row {
    /// The CSV header matching [`Row::csv_record`]: the columns of `nff train`'s trajectory
    /// (`step,t,objective,risk,dissipation,residual_norm`, in that order), then the flow's own.
    pub const CSV_HEADER: &'static str = "step,t,objective,risk,dissipation,residual_norm,htr_norm,sigma_min,residual_bound,bound_holds,drift";

    /// One CSV line (no newline); empty fields where a figure is not available.
    pub fn csv_record(&self) -> String {
        let opt = |x: Option<f64>| x.map(|v| format!("{v:e}")).unwrap_or_default();
        match &self.diagnostics {
            Some(d) => {
                let b = &d.bound;
                format!(
                    "{},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{},{},{}",
                    self.step,
                    self.t,
                    d.objective,
                    d.risk,
                    self.dissipation,
                    b.residual_norm,
                    b.htr_norm,
                    b.sigma_min,
                    opt(b.bound),
                    b.bound_holds,
                    opt(d.drift)
                )
            }
            None => format!("{},{:e},,,{:e},,,,,,", self.step, self.t, self.dissipation),
        }
    }
}

/// A copy of the full state at one step.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Step count.
    pub step: u64,
    /// Time.
    pub t: f64,
    /// The flat state.
    pub state: Vec<f64>,
}

/// Everything needed to resume a run exactly: time, step count, flat state and the integrator's
/// internal state, the trajectory rows recorded so far (so a resumed run's trajectory is the whole one),
/// and the caller's model fingerprint (every option that changes the trajectory; checked on resume by
/// the caller). The field and the stop rules are the caller's to rebuild. Files written before the
/// rows and the fingerprint existed load with none.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Time.
    pub t: f64,
    /// Accepted steps so far.
    pub step: u64,
    /// The flat state.
    pub state: Vec<f64>,
    /// The integrator's state.
    pub integrator: IntegratorCheckpoint,
    /// The rows recorded up to and including this step.
    #[serde(default)]
    pub trajectory: Vec<Row>,
    /// What the run was (set with [`RunnerBuilder::fingerprint`]); `None` if not given.
    #[serde(default)]
    pub fingerprint: Option<serde_json::Value>,
}

impl Checkpoint {
    /// Write as JSON, atomically ([`nff_core::io::write_atomic`]: a temporary file in the same
    /// directory, then a rename; on failure no temporary file remains). Floats round-trip exactly
    /// (serde_json with `float_roundtrip`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).map_err(|e| {
            FlowError::Core(nff_core::CoreError::file(
                path,
                format!("cannot encode: {e}"),
            ))
        })?;
        nff_core::io::write_atomic(path, &json)?;
        Ok(())
    }
    /// Read a checkpoint written by [`Checkpoint::save`]; errors say what was expected, in words.
    pub fn load(path: &Path) -> Result<Self> {
        let file_err = |e: String| FlowError::Core(nff_core::CoreError::file(path, e));
        let bytes = std::fs::read(path)
            .map_err(|e| file_err(format!("cannot read: {}", nff_core::io::io_cause(&e))))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            use serde_json::error::Category;
            let what = match e.classify() {
                Category::Io | Category::Syntax | Category::Eof => format!(
                    "not a checkpoint: expected the JSON written by nff flow --checkpoint, found invalid JSON at line {}, column {}",
                    e.line(),
                    e.column()
                ),
                Category::Data => {
                    let msg = e.to_string();
                    let msg = msg.split(" at line").next().unwrap_or(&msg).replace('`', "'");
                    format!("not a checkpoint: expected the fields written by nff flow --checkpoint, found {msg}")
                }
            };
            file_err(what)
        })
    }
}

/// What an observer sees at a step.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo<'a> {
    /// Step count.
    pub step: u64,
    /// Time.
    pub t: f64,
    /// The state.
    pub state: &'a [f64],
    /// $f(t, y)$ at the state.
    pub derivative: &'a [f64],
    /// The stationarity measure (dissipation rate for networks).
    pub dissipation: f64,
    /// The integrator's statistics.
    pub stats: StepStats,
    /// The row recorded at this step, if the recorder fired.
    pub row: Option<&'a Row>,
}

/// An observer of a run; every method has a no-op default.
///
/// `on_step` is called after the steps where [`Observer::mode`] fires; `on_start` before the first
/// step of a fresh (not resumed) run; `on_finish` once at the end.
pub trait Observer: Send {
    /// When `on_step` is called (default: every step).
    fn mode(&self) -> ObserverMode {
        ObserverMode::Every(1)
    }
    /// Called once before the first step of a fresh run.
    fn on_start(&mut self, _info: &StepInfo<'_>) -> Result<ObserverAction> {
        Ok(ObserverAction::Continue)
    }
    /// Called after a step where the mode fires.
    fn on_step(&mut self, _info: &StepInfo<'_>) -> Result<ObserverAction> {
        Ok(ObserverAction::Continue)
    }
    /// Called once when the run ends.
    fn on_finish(&mut self, _info: &StepInfo<'_>, _reason: TerminationReason) -> Result<()> {
        Ok(())
    }
}

/// The result of [`Runner::run`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    /// Why the run ended.
    pub termination: TerminationReason,
    /// Final time.
    pub t: f64,
    /// Accepted steps in total (including those before a resume).
    pub steps: u64,
    /// The final (last finite) state.
    pub state: Vec<f64>,
    /// The stationarity measure at the final state.
    pub dissipation: f64,
    /// Integrator statistics (accepted, rejected, evaluations).
    pub stats: StepStats,
    /// The recorded rows (since this runner was built).
    pub trajectory: Vec<Row>,
    /// The snapshots (since this runner was built).
    pub snapshots: Vec<Snapshot>,
    /// Wall-clock seconds of this call to `run`.
    pub seconds: f64,
}

type CheckpointSink = Box<dyn FnMut(&Checkpoint) -> Result<()> + Send>;

/// Builder of a [`Runner`]: the field, the integrator, the initial state (or a checkpoint), stop rules,
/// recording and observers. [`RunnerBuilder::build`] validates everything before any work starts.
pub struct RunnerBuilder<F> {
    field: F,
    integrator: Box<dyn Integrator>,
    start: Option<(f64, Vec<f64>)>,
    resume: Option<Checkpoint>,
    final_time: Option<f64>,
    stationary: Option<f64>,
    max_steps: Option<u64>,
    record: ObserverMode,
    snapshots: ObserverMode,
    observers: Vec<Box<dyn Observer>>,
    checkpoints: Option<(u64, CheckpointSink)>,
    fingerprint: Option<serde_json::Value>,
}

impl<F: VectorField> RunnerBuilder<F> {
    /// Start building a run of `integrator` on `field`.
    pub fn new(field: F, integrator: impl Integrator + 'static) -> Self {
        Self::with_boxed(field, Box::new(integrator))
    }
    /// Like [`RunnerBuilder::new`] with an already boxed integrator (e.g. from [`IntegratorSpec::build`](crate::IntegratorSpec::build)).
    pub fn with_boxed(field: F, integrator: Box<dyn Integrator>) -> Self {
        Self {
            field,
            integrator,
            start: None,
            resume: None,
            final_time: None,
            stationary: None,
            max_steps: None,
            record: ObserverMode::Never,
            snapshots: ObserverMode::Never,
            observers: Vec::new(),
            checkpoints: None,
            fingerprint: None,
        }
    }
    /// What the run is (every option that changes its trajectory), stored in each checkpoint.
    pub fn fingerprint(mut self, fingerprint: serde_json::Value) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }
    /// The initial time and state.
    pub fn initial_state(mut self, t0: f64, y0: Vec<f64>) -> Self {
        self.start = Some((t0, y0));
        self
    }
    /// Resume from a checkpoint instead of an initial state (the integrator must be of the same kind and
    /// settings; stop rules apply to the totals, e.g. `max_steps` counts steps before the checkpoint).
    pub fn resume(mut self, checkpoint: Checkpoint) -> Self {
        self.resume = Some(checkpoint);
        self
    }
    /// Stop at time `t_final` (the last step is shortened to land on it).
    pub fn final_time(mut self, t_final: f64) -> Self {
        self.final_time = Some(t_final);
        self
    }
    /// Stop when the stationarity measure $\|\dot y\|^2$ (scaled: the dissipation rate for networks) is below `tol`.
    pub fn stationary(mut self, tol: f64) -> Self {
        self.stationary = Some(tol);
        self
    }
    /// Stop after `n` accepted steps in total.
    pub fn max_steps(mut self, n: u64) -> Self {
        self.max_steps = Some(n);
        self
    }
    /// Record a [`Row`] per the mode (and always at the final step unless `Never`).
    pub fn record(mut self, mode: ObserverMode) -> Self {
        self.record = mode;
        self
    }
    /// Keep a [`Snapshot`] of the full state per the mode.
    pub fn snapshots(mut self, mode: ObserverMode) -> Self {
        self.snapshots = mode;
        self
    }
    /// Attach an observer.
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.observers.push(Box::new(observer));
        self
    }
    /// Call `sink` with a [`Checkpoint`] every `k` steps (e.g. `|c| c.save(path)`).
    pub fn checkpoint_every(
        mut self,
        k: u64,
        sink: impl FnMut(&Checkpoint) -> Result<()> + Send + 'static,
    ) -> Self {
        self.checkpoints = Some((k, Box::new(sink)));
        self
    }

    /// Validate and build.
    ///
    /// Errors: neither or both of an initial state and a checkpoint; a state of the wrong length or with
    /// non-finite entries; no final time and no step limit (the run could never end); a final time before
    /// the start; a non-positive or NaN stationarity tolerance; `Every(0)`.
    pub fn build(self) -> Result<Runner<F>> {
        let dim = self.field.dim();
        let (t, y, step, resume, trajectory) = match (self.start, self.resume) {
            (Some((t0, y0)), None) => (t0, y0, 0, None, Vec::new()),
            (None, Some(c)) => (c.t, c.state, c.step, Some(c.integrator), c.trajectory),
            (None, None) => {
                return Err(FlowError::invalid(
                    "run start",
                    "an initial state or a checkpoint",
                    "neither",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(FlowError::invalid(
                    "run start",
                    "an initial state or a checkpoint",
                    "both",
                ))
            }
        };
        if y.len() != dim {
            return Err(FlowError::shape(
                "initial state",
                format!("{dim} entries (the field's dimension)"),
                y.len(),
            ));
        }
        if !t.is_finite() {
            return Err(FlowError::invalid("initial time", "a finite value", t));
        }
        if let Some(i) = y.iter().position(|x| !x.is_finite()) {
            return Err(FlowError::invalid(
                "initial state",
                "finite entries",
                format!("{} at index {i}", y[i]),
            ));
        }
        if let Some(tf) = self.final_time {
            if !(tf.is_finite() && tf >= t) {
                return Err(FlowError::invalid(
                    "final time",
                    format!("a finite value >= the start time {t}"),
                    tf,
                ));
            }
        }
        if let Some(tol) = self.stationary {
            positive("stationarity tolerance", tol)?;
        }
        if self.final_time.is_none() && self.max_steps.is_none() {
            return Err(FlowError::invalid(
                "stop rules",
                "a final time or a step limit (a stationarity tolerance alone may never be met)",
                "neither",
            ));
        }
        self.record.check("record mode")?;
        self.snapshots.check("snapshot mode")?;
        for o in &self.observers {
            o.mode().check("observer mode")?;
        }
        if let Some((k, _)) = &self.checkpoints {
            if *k == 0 {
                return Err(FlowError::invalid("checkpoint interval", "k >= 1", 0));
            }
        }
        if let Some(c) = &resume {
            if c.method != self.integrator.name() {
                return Err(FlowError::Checkpoint(format!(
                    "integrator '{}' saved, '{}' resuming",
                    c.method,
                    self.integrator.name()
                )));
            }
        }
        Ok(Runner {
            field: self.field,
            integrator: self.integrator,
            t,
            y,
            step,
            resume,
            started: false,
            final_time: self.final_time,
            stationary: self.stationary,
            max_steps: self.max_steps,
            record: self.record,
            snapshot_mode: self.snapshots,
            observers: self.observers,
            checkpoints: self.checkpoints,
            last_recorded: trajectory.last().map(|r| r.step),
            trajectory,
            snapshots: Vec::new(),
            fingerprint: self.fingerprint,
        })
    }
}

/// The driver of a run. Build it with [`Runner::builder`], then [`Runner::run`].
pub struct Runner<F> {
    field: F,
    integrator: Box<dyn Integrator>,
    t: f64,
    y: Vec<f64>,
    step: u64,
    resume: Option<IntegratorCheckpoint>,
    started: bool,
    final_time: Option<f64>,
    stationary: Option<f64>,
    max_steps: Option<u64>,
    record: ObserverMode,
    snapshot_mode: ObserverMode,
    observers: Vec<Box<dyn Observer>>,
    checkpoints: Option<(u64, CheckpointSink)>,
    trajectory: Vec<Row>,
    snapshots: Vec<Snapshot>,
    last_recorded: Option<u64>,
    fingerprint: Option<serde_json::Value>,
}

impl<F: VectorField> Runner<F> {
    /// Start building a run.
    pub fn builder(field: F, integrator: impl Integrator + 'static) -> RunnerBuilder<F> {
        RunnerBuilder::new(field, integrator)
    }
    /// The field.
    pub fn field(&self) -> &F {
        &self.field
    }
    /// The field, mutably (e.g. to evaluate diagnostics on the final state).
    pub fn field_mut(&mut self) -> &mut F {
        &mut self.field
    }
    /// Give back the field.
    pub fn into_field(self) -> F {
        self.field
    }
    /// The current state.
    pub fn state(&self) -> &[f64] {
        &self.y
    }
    /// The current time.
    pub fn time(&self) -> f64 {
        self.t
    }
    /// Accepted steps so far.
    pub fn steps(&self) -> u64 {
        self.step
    }
    /// The integrator's statistics.
    pub fn stats(&self) -> StepStats {
        self.integrator.stats()
    }
    /// A checkpoint of the current state; resuming from it continues the same trajectory bit for bit.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            t: self.t,
            step: self.step,
            state: self.y.clone(),
            integrator: self
                .resume
                .clone()
                .filter(|_| !self.started)
                .unwrap_or_else(|| self.integrator.checkpoint()),
            trajectory: self.trajectory.clone(),
            fingerprint: self.fingerprint.clone(),
        }
    }

    fn dissipation(&self) -> f64 {
        self.field.velocity_sq_norm(self.integrator.derivative())
    }

    fn stop_reason(&self, dissipation: f64) -> Option<TerminationReason> {
        if self.final_time.is_some_and(|tf| self.t >= tf) {
            return Some(TerminationReason::FinalTime);
        }
        if self.stationary.is_some_and(|tol| dissipation < tol) {
            return Some(TerminationReason::Stationary);
        }
        if self.max_steps.is_some_and(|n| self.step >= n) {
            return Some(TerminationReason::MaxSteps);
        }
        None
    }

    fn record_row(&mut self, dissipation: f64) -> Result<()> {
        let diagnostics = self.field.diagnostics(self.t, &self.y)?;
        self.trajectory.push(Row {
            step: self.step,
            t: self.t,
            dissipation,
            diagnostics,
        });
        self.last_recorded = Some(self.step);
        Ok(())
    }

    /// Notify observers; returns true if one asked to stop.
    fn notify(&mut self, dissipation: f64, recorded: bool, start: bool) -> Result<bool> {
        let info = StepInfo {
            step: self.step,
            t: self.t,
            state: &self.y,
            derivative: self.integrator.derivative(),
            dissipation,
            stats: self.integrator.stats(),
            row: if recorded {
                self.trajectory.last()
            } else {
                None
            },
        };
        let mut stop = false;
        for o in self.observers.iter_mut() {
            let action = if start {
                o.on_start(&info)?
            } else if o.mode().fires(info.step) {
                o.on_step(&info)?
            } else {
                continue;
            };
            stop |= action == ObserverAction::Stop;
        }
        Ok(stop)
    }

    /// Run until a stop rule fires. Returns the final state, the reason, statistics and the recorded
    /// trajectory. Errors only on invalid input (e.g. a non-finite derivative at the initial state), on
    /// an observer or checkpoint-sink error, or a failed diagnostic.
    pub fn run(&mut self) -> Result<RunReport> {
        let clock = Instant::now();
        if !self.started {
            self.integrator.init(&mut self.field, self.t, &self.y)?;
            let fresh = self.resume.is_none();
            if let Some(c) = self.resume.take() {
                self.integrator.restore(&c)?;
            }
            self.started = true;
            if fresh {
                let d = self.dissipation();
                let recorded = self.record.fires(self.step);
                if recorded {
                    self.record_row(d)?;
                }
                if self.snapshot_mode.fires(self.step) {
                    self.push_snapshot();
                }
                if self.notify(d, recorded, true)? {
                    return self.finish(TerminationReason::ObserverStop, clock);
                }
            }
        }
        let t_end = self.final_time.unwrap_or(f64::INFINITY);
        loop {
            let d = self.dissipation();
            if let Some(reason) = self.stop_reason(d) {
                return self.finish(reason, clock);
            }
            let status = self
                .integrator
                .step(&mut self.field, &mut self.t, &mut self.y, t_end)?;
            match status {
                StepStatus::Accepted => {}
                StepStatus::NonFinite => return self.finish(TerminationReason::NonFinite, clock),
                StepStatus::StepSizeUnderflow { .. } => {
                    return self.finish(TerminationReason::StepSizeUnderflow, clock)
                }
            }
            self.step += 1;
            let d = self.dissipation();
            let recorded = self.record.fires(self.step);
            if recorded {
                self.record_row(d)?;
            }
            if self.snapshot_mode.fires(self.step) {
                self.push_snapshot();
            }
            let stop = self.notify(d, recorded, false)?;
            if let Some((k, _)) = &self.checkpoints {
                if self.step % *k == 0 {
                    let c = self.checkpoint();
                    if let Some((_, sink)) = self.checkpoints.as_mut() {
                        sink(&c)?;
                    }
                }
            }
            if stop {
                return self.finish(TerminationReason::ObserverStop, clock);
            }
        }
    }

    fn push_snapshot(&mut self) {
        self.snapshots.push(Snapshot {
            step: self.step,
            t: self.t,
            state: self.y.clone(),
        });
    }

    fn finish(&mut self, reason: TerminationReason, clock: Instant) -> Result<RunReport> {
        let d = self.dissipation();
        if self.record != ObserverMode::Never && self.last_recorded != Some(self.step) {
            self.record_row(d)?;
        }
        let info = StepInfo {
            step: self.step,
            t: self.t,
            state: &self.y,
            derivative: self.integrator.derivative(),
            dissipation: d,
            stats: self.integrator.stats(),
            row: self.trajectory.last().filter(|r| r.step == self.step),
        };
        for o in self.observers.iter_mut() {
            o.on_finish(&info, reason)?;
        }
        Ok(RunReport {
            termination: reason,
            t: self.t,
            steps: self.step,
            state: self.y.clone(),
            dissipation: d,
            stats: self.integrator.stats(),
            trajectory: std::mem::take(&mut self.trajectory),
            snapshots: std::mem::take(&mut self.snapshots),
            seconds: clock.elapsed().as_secs_f64(),
        })
    }
}
