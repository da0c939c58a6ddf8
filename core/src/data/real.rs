//! The real data sets compiled into nff (`core/data/`, source, citation and licence in its README):
//!
//! | name | N | d | targets | loss |
//! |---|---|---|---|---|
//! | `breast-cancer` | 569 | 30 | $+1$ malignant, $-1$ benign | logistic |
//! | `diabetes` | 442 | 10 | disease progression after one year (25–346) | squared |
//!
//! Both are stored raw (the source files' decimal strings); held-out runs standardize them with the
//! training part's statistics ([`crate::split`]). `N` points are the **first** `N` lines of the file.
use super::{BuiltinDataset, Dataset};
use crate::error::{CoreError, Result};
use std::path::Path;
use std::sync::OnceLock;

/// Breast Cancer Wisconsin (Diagnostic), UCI, CC BY 4.0.
const BREAST_CANCER_CSV: &str = include_str!("../../data/breast_cancer.csv");
/// Diabetes data of Efron, Hastie, Johnstone & Tibshirani (2004), raw inputs.
const DIABETES_CSV: &str = include_str!("../../data/diabetes.csv");

/// (N, d) of a real data set, or `None` for a generator.
pub(super) fn full_size(kind: BuiltinDataset) -> Option<(usize, usize)> {
    match kind {
        BuiltinDataset::BreastCancer => Some((569, 30)),
        BuiltinDataset::Diabetes => Some((442, 10)),
        _ => None,
    }
}

/// The whole real data set, parsed once per process.
fn full(kind: BuiltinDataset) -> Result<&'static Dataset> {
    static BC: OnceLock<Dataset> = OnceLock::new();
    static DIA: OnceLock<Dataset> = OnceLock::new();
    let (cell, text) = match kind {
        BuiltinDataset::BreastCancer => (&BC, BREAST_CANCER_CSV),
        BuiltinDataset::Diabetes => (&DIA, DIABETES_CSV),
        _ => {
            return Err(CoreError::invalid(
                "real data set",
                "breast-cancer or diabetes",
                kind.name(),
            ))
        }
    };
    if let Some(d) = cell.get() {
        return Ok(d);
    }
    let origin = format!("builtin:{}", kind.name());
    let data = crate::io::parse_data_csv(text, Path::new(&origin))?;
    Ok(cell.get_or_init(|| data))
}

/// The first `n` points of a real data set; `d` must be its dimension. Errors name the data set's size.
pub(super) fn load(kind: BuiltinDataset, n: usize, d: usize) -> Result<Dataset> {
    let (n_all, d_all) = full_size(kind).expect("a real data set");
    let name = kind.name();
    if n == 0 || n > n_all {
        return Err(CoreError::invalid(
            format!("number of points N of builtin:{name}"),
            format!("1 <= N <= {n_all} (the data set has {n_all} points; --n takes the first N)"),
            format!("N = {n}"),
        ));
    }
    if d != d_all {
        return Err(CoreError::invalid(
            format!("input dimension d of builtin:{name}"),
            format!("d = {d_all} (the data set's; omit --d)"),
            format!("d = {d}"),
        ));
    }
    let all = full(kind)?;
    if n == n_all {
        return Ok(all.clone());
    }
    Dataset::new(all.x.subrows(0, n).to_owned(), all.y[..n].to_vec())
}
