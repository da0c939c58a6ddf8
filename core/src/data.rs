//! Datasets $\{(x^i, y^i)\}_{i=1}^N$ stacked as $X \in \mathbb R^{N\times d}$, $y \in \mathbb R^N$.
use faer::Mat;

/// A dataset: inputs $X$ (one row per point) and scalar targets $y$.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Inputs, $N \times d$.
    pub x: Mat<f64>,
    /// Targets, length $N$.
    pub y: Vec<f64>,
}

impl Dataset {
    /// A validated dataset: $N \ge 1$, $d \ge 1$, `y.len() == N`, all entries finite.
    pub fn new(x: Mat<f64>, y: Vec<f64>) -> crate::Result<Self> {
        let d = Self { x, y };
        d.validate()?;
        Ok(d)
    }

    /// Number of points $N$.
    pub fn n(&self) -> usize {
        self.y.len()
    }

    /// Input dimension $d$.
    pub fn d(&self) -> usize {
        self.x.ncols()
    }

    /// Check shapes and finiteness; the error names what was expected and what was found.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::error::{ensure_finite, CoreError};
        if self.y.is_empty() {
            return Err(CoreError::invalid("dataset", "at least one point", "N = 0"));
        }
        if self.x.ncols() == 0 {
            return Err(CoreError::invalid(
                "dataset inputs X",
                "at least one column",
                "d = 0",
            ));
        }
        if self.x.nrows() != self.y.len() {
            return Err(CoreError::shape(
                "dataset",
                format!("X with {} rows (one per target)", self.y.len()),
                format!("X with {} rows", self.x.nrows()),
            ));
        }
        ensure_finite("dataset targets y", self.y.iter().copied())?;
        ensure_finite(
            "dataset inputs X",
            (0..self.x.ncols())
                .flat_map(|j| (0..self.x.nrows()).map(move |i| (i, j)))
                .map(|(i, j)| self.x[(i, j)]),
        )
    }
}
