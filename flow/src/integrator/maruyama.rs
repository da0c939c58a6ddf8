//! Euler–Maruyama for $dy = f(t, y)\,dt + \sqrt{2\tau}\,dB_t$: noisy (Langevin) gradient descent.
use super::{
    all_finite, check_dim, check_restore, check_step, fixed_step_size, initial_derivative,
    Integrator, IntegratorCheckpoint, StepStats, StepStatus,
};
use crate::error::{non_negative, positive, FlowError, Result};
use crate::field::VectorField;
use nff_core::rng::{normal, rng, Rng};

/// Euler–Maruyama with step $\eta$ = `dt` and temperature $\tau$:
/// $$y_{n+1} = y_n + \eta\,f(t_n, y_n) + \sqrt{2\eta\tau}\;\xi_n,\qquad \xi_n \sim \mathcal N(0, I)\ \text{i.i.d.}$$
/// The noise is drawn coordinate by coordinate in index order from `rng(seed, "noise")`
/// ([`nff_core::rng::rng`]), so a run is reproducible per seed and independent of the thread count.
/// With $\tau = 0$ no noise is drawn and the step is exactly explicit Euler.
///
/// On a [`WeightFlow`](crate::WeightFlow) this is noisy scaled GD; see [`crate::langevin`] for the
/// two-level setting and its Gibbs stationary law.
#[derive(Clone, Debug)]
pub struct EulerMaruyama {
    dt: f64,
    tau: f64,
    seed: u64,
    rng: Rng,
    f: Vec<f64>,
    y_new: Vec<f64>,
    f_new: Vec<f64>,
    stats: StepStats,
}

impl EulerMaruyama {
    /// Validated: `dt` finite $> 0$, `tau` finite $\ge 0$.
    pub fn new(dt: f64, tau: f64, seed: u64) -> Result<Self> {
        positive("step size dt", dt)?;
        non_negative("temperature tau", tau)?;
        Ok(Self {
            dt,
            tau,
            seed,
            rng: rng(seed, "noise"),
            f: Vec::new(),
            y_new: Vec::new(),
            f_new: Vec::new(),
            stats: StepStats::default(),
        })
    }
    /// The step size $\eta$.
    pub fn dt(&self) -> f64 {
        self.dt
    }
    /// The temperature $\tau$.
    pub fn tau(&self) -> f64 {
        self.tau
    }
    /// The noise seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl Integrator for EulerMaruyama {
    fn name(&self) -> &'static str {
        "euler-maruyama"
    }
    fn order(&self) -> u32 {
        1
    }
    fn init(&mut self, field: &mut dyn VectorField, t: f64, y: &[f64]) -> Result<()> {
        check_dim(field, "initial state", y)?;
        for b in [&mut self.f, &mut self.y_new, &mut self.f_new] {
            b.clear();
            b.resize(y.len(), 0.0);
        }
        self.rng = rng(self.seed, "noise");
        self.stats = StepStats {
            evaluations: 1,
            ..Default::default()
        };
        initial_derivative(field, t, y, &mut self.f)
    }

    fn step(
        &mut self,
        field: &mut dyn VectorField,
        t: &mut f64,
        y: &mut Vec<f64>,
        t_end: f64,
    ) -> Result<StepStatus> {
        check_step(field, y, &self.y_new)?;
        let (h, t_new) = fixed_step_size(self.dt, *t, t_end);
        for ((yn, &yi), &fi) in self.y_new.iter_mut().zip(y.iter()).zip(&self.f) {
            *yn = yi + h * fi;
        }
        if self.tau > 0.0 {
            let s = (2.0 * h * self.tau).sqrt();
            for yn in self.y_new.iter_mut() {
                *yn += s * normal(&mut self.rng);
            }
        }
        if !all_finite(&self.y_new) {
            return Ok(StepStatus::NonFinite);
        }
        self.stats.evaluations += 1;
        field.eval(t_new, &self.y_new, &mut self.f_new);
        if !all_finite(&self.f_new) {
            return Ok(StepStatus::NonFinite);
        }
        std::mem::swap(y, &mut self.y_new);
        std::mem::swap(&mut self.f, &mut self.f_new);
        *t = t_new;
        self.stats.accepted += 1;
        Ok(StepStatus::Accepted)
    }

    fn derivative(&self) -> &[f64] {
        &self.f
    }
    fn stats(&self) -> StepStats {
        self.stats
    }
    fn checkpoint(&self) -> IntegratorCheckpoint {
        let pos = self.rng.get_word_pos();
        IntegratorCheckpoint {
            method: self.name().into(),
            stats: self.stats,
            rng_word_pos: Some(((pos >> 64) as u64, pos as u64)),
            seed: Some(self.seed),
            ..Default::default()
        }
    }
    fn restore(&mut self, c: &IntegratorCheckpoint) -> Result<()> {
        check_restore(self.name(), c)?;
        if c.seed != Some(self.seed) {
            return Err(FlowError::Checkpoint(format!(
                "noise seed {:?} saved, {} resuming",
                c.seed, self.seed
            )));
        }
        let (hi, lo) = c.rng_word_pos.ok_or_else(|| {
            FlowError::Checkpoint("the noise generator position is missing".into())
        })?;
        self.rng = rng(self.seed, "noise");
        self.rng
            .set_word_pos((u128::from(hi) << 64) | u128::from(lo));
        self.stats = c.stats;
        Ok(())
    }
}
