//! The error type of nff-flow.
use nff_core::CoreError;

/// Everything that can go wrong in nff-flow on user input.
///
/// Messages state the requirement and the value found. Numerical events *during* a run (a
/// non-finite state, a step size underflow) are not errors: they end the run with a
/// [`TerminationReason`](crate::runner::TerminationReason) and the last finite state.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// An error from nff-core (shapes, invalid data, ...).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A value outside its allowed range (NaN, non-positive step or tolerance, empty lists, ...).
    #[error("invalid {what}: expected {expected}, found {found}")]
    Invalid {
        /// Which parameter.
        what: String,
        /// The requirement.
        expected: String,
        /// The value found.
        found: String,
    },
    /// Buffers whose lengths or shapes disagree.
    #[error("shape mismatch in {what}: expected {expected}, found {found}")]
    Shape {
        /// Which object.
        what: String,
        /// The shape required.
        expected: String,
        /// The shape found.
        found: String,
    },
    /// A checkpoint that does not fit the run it is resumed into.
    #[error("checkpoint does not fit this run: {0}")]
    Checkpoint(String),
    /// An observer asked to abort the run with an error.
    #[error("observer failed: {0}")]
    Observer(String),
    /// Shard results that cannot be merged into one sweep result.
    #[error("cannot merge sweep shards: {0}")]
    Merge(String),
    /// A numerical failure outside the integration loop (e.g. an SVD that did not converge).
    #[error("numerical failure in {what}: {message}")]
    Numerical {
        /// Which computation.
        what: String,
        /// What went wrong.
        message: String,
    },
}

/// Result alias of nff-flow.
pub type Result<T, E = FlowError> = std::result::Result<T, E>;

impl FlowError {
    /// An invalid-value error.
    pub fn invalid(what: impl Into<String>, expected: impl ToString, found: impl ToString) -> Self {
        Self::Invalid {
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
    /// A shape error.
    pub fn shape(what: impl Into<String>, expected: impl ToString, found: impl ToString) -> Self {
        Self::Shape {
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

/// `Ok(x)` if `x` is finite and strictly positive, else an [`FlowError::Invalid`] naming `what`.
pub(crate) fn positive(what: &str, x: f64) -> Result<f64> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(FlowError::invalid(what, "a finite value > 0", x))
    }
}

/// `Ok(x)` if `x` is finite and non-negative.
pub(crate) fn non_negative(what: &str, x: f64) -> Result<f64> {
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(FlowError::invalid(what, "a finite value >= 0", x))
    }
}
