//! The error type of nff-solvers.
use nff_core::CoreError;

/// Everything that can go wrong in nff-solvers on user input or in a solve.
///
/// Messages state what was expected and what was found.
#[derive(Debug, thiserror::Error)]
pub enum SolverError {
    /// An error raised by nff-core (data, network, regularizer validation).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A value outside its allowed range (NaN, negative λ, ρ₀ not a probability vector, ...).
    #[error("invalid {what}: expected {expected}, found {found}")]
    Invalid {
        /// Which parameter.
        what: String,
        /// The requirement.
        expected: String,
        /// The value found.
        found: String,
    },
    /// Arrays whose shapes disagree.
    #[error("shape mismatch in {what}: expected {expected}, found {found}")]
    Shape {
        /// Which object.
        what: String,
        /// The shape required.
        expected: String,
        /// The shape found.
        found: String,
    },
    /// A numerical failure (singular system, failed line search that cannot be recovered, ...).
    #[error("numerical failure in {what}: {message}")]
    Numerical {
        /// Which computation.
        what: String,
        /// What went wrong.
        message: String,
    },
}

/// Result alias of nff-solvers.
pub type Result<T, E = SolverError> = std::result::Result<T, E>;

impl SolverError {
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
    /// A numerical error.
    pub fn numerical(what: impl Into<String>, message: impl ToString) -> Self {
        Self::Numerical {
            what: what.into(),
            message: message.to_string(),
        }
    }
}

/// Check that every entry is finite; the error names the first offender.
pub(crate) fn ensure_finite(what: &str, values: impl IntoIterator<Item = f64>) -> Result<()> {
    for (i, x) in values.into_iter().enumerate() {
        if !x.is_finite() {
            return Err(SolverError::invalid(
                what,
                "finite values",
                format!("{x} at flat index {i}"),
            ));
        }
    }
    Ok(())
}

/// Check that a scalar is finite and `>= 0`.
pub(crate) fn ensure_nonneg(what: &str, x: f64) -> Result<()> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(SolverError::invalid(what, "a finite value >= 0", x))
    }
}
