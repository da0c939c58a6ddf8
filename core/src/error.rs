//! The error type of nff-core.
use std::path::PathBuf;

/// Everything that can go wrong in nff-core on user input.
///
/// Messages state what was expected and what was found.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
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
    /// A value outside its allowed range (NaN, negative tolerance, empty data, ...).
    #[error("invalid {what}: expected {expected}, found {found}")]
    Invalid {
        /// Which parameter.
        what: String,
        /// The requirement.
        expected: String,
        /// The value found.
        found: String,
    },
    /// An unknown name (activation, dataset, architecture, ...).
    #[error("unknown {kind} '{name}': expected one of {expected}")]
    Unknown {
        /// What kind of name.
        kind: &'static str,
        /// The name given.
        name: String,
        /// The accepted names.
        expected: String,
    },
    /// An I/O failure on a named file.
    #[error("{path}: {message}")]
    File {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A numerical failure (singular Gram matrix, failed decomposition, ...).
    #[error("numerical failure in {what}: {message}")]
    Numerical {
        /// Which computation.
        what: String,
        /// What went wrong.
        message: String,
    },
}

/// Result alias of nff-core.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

impl CoreError {
    /// A shape error.
    pub fn shape(what: impl Into<String>, expected: impl ToString, found: impl ToString) -> Self {
        Self::Shape {
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
    /// An invalid-value error.
    pub fn invalid(what: impl Into<String>, expected: impl ToString, found: impl ToString) -> Self {
        Self::Invalid {
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
    /// A file error.
    pub fn file(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        Self::File {
            path: path.into(),
            message: message.to_string(),
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

/// Check that every entry of `values` is finite; name the first offender.
pub fn ensure_finite(what: &str, values: impl IntoIterator<Item = f64>) -> Result<()> {
    for (i, x) in values.into_iter().enumerate() {
        if !x.is_finite() {
            return Err(CoreError::invalid(
                what,
                "finite values",
                format!("{x} at flat index {i}"),
            ));
        }
    }
    Ok(())
}
