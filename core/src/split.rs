//! Held-out evaluation: seeded train / validation / test splits, standardization with the training
//! part's statistics only, and the held-out risk and accuracy (math.md §6.2).
//!
//! # The split
//! [`SplitFractions`] $(f_{\rm train}, f_{\rm val}, f_{\rm test})$, each in $[0, 1]$, summing to 1 (within
//! $10^{-9}$). On $N$ points: $N_{\rm test} = \operatorname{round}(f_{\rm test}N)$,
//! $N_{\rm val} = \operatorname{round}(f_{\rm val}N)$, $N_{\rm train} = N - N_{\rm val} - N_{\rm test}$. The
//! training and test parts must be non-empty; the validation part is absent when $f_{\rm val} = 0$ and must
//! be non-empty otherwise. A uniform permutation of $0..N$ (Fisher–Yates on the stream
//! `rng(seed, "split")`, the **data seed**) is cut into the training, validation and test parts in that order;
//! each part lists its points in their original order ([`SplitIndices`]).
//!
//! # Standardization
//! [`Standardizer::fit`] on the training part: per input column $k$, $\bar x_k = \frac1{N_{\rm train}}\sum_i x_{ik}$
//! and $s_k = \big(\frac1{N_{\rm train}}\sum_i (x_{ik}-\bar x_k)^2\big)^{1/2}$, applied to every part as
//! $x_{ik} \mapsto (x_{ik} - \bar x_k)/s_k$. A column whose values are **all equal** on the training part is
//! left as it is ($\bar x_k := 0$, $s_k := 1$), so a constant bias column stays a bias column. Optionally the
//! targets too ($y \mapsto (y - \bar y)/s_y$, the regression targets of the squared loss; a constant target is
//! left as it is). Test statistics never enter.
//!
//! # Held-out figures
//! [`held_out_risk`] is math.md §1's risk $\mathcal R(\hat{\mathbf y}) = \frac1{N_{\rm test}}\sum_i \phi(\hat y^i, y^i)$
//! on the test points, and [`sign_accuracy`] the fraction of points with $y^i\hat y^i > 0$ (a prediction of
//! exactly 0 counts as wrong).
use crate::data::Dataset;
use crate::error::{CoreError, Result};
use crate::loss::Loss;
use crate::network::{Network, Problem};
use crate::rng::rng;
use faer::Mat;
use rand::Rng as _;
use std::fmt;
use std::str::FromStr;

/// The fractions of a train / validation / test split (validated: see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SplitFractions {
    /// Training fraction (> 0).
    pub train: f64,
    /// Validation fraction (0 for no validation part).
    pub val: f64,
    /// Test fraction (> 0).
    pub test: f64,
}

impl SplitFractions {
    /// Validated fractions: finite, in $[0,1]$, summing to 1 within $10^{-9}$, train and test $> 0$.
    pub fn new(train: f64, val: f64, test: f64) -> Result<Self> {
        let all = [train, val, test];
        if let Some(f) = all
            .iter()
            .find(|f| !(f.is_finite() && (0.0..=1.0).contains(*f)))
        {
            return Err(CoreError::invalid(
                "split fractions TRAIN,VAL,TEST",
                "each a number in [0, 1]",
                f,
            ));
        }
        let sum: f64 = all.iter().sum();
        if (sum - 1.0).abs() > 1e-9 {
            return Err(CoreError::invalid(
                "split fractions TRAIN,VAL,TEST",
                "fractions that sum to 1",
                format!("{train},{val},{test} (sum {sum})"),
            ));
        }
        for (name, f) in [("training", train), ("test", test)] {
            if f == 0.0 {
                return Err(CoreError::invalid(
                    "split fractions TRAIN,VAL,TEST",
                    format!("a {name} fraction > 0"),
                    format!("{train},{val},{test}"),
                ));
            }
        }
        Ok(Self { train, val, test })
    }

    /// $(N_{\rm train}, N_{\rm val}, N_{\rm test})$ on `n` points; an error if a part that must exist is empty.
    pub fn counts(&self, n: usize) -> Result<(usize, usize, usize)> {
        let n_test = (self.test * n as f64).round() as usize;
        let n_val = (self.val * n as f64).round() as usize;
        let n_train = n.saturating_sub(n_test + n_val);
        for (name, f, k) in [
            ("training", self.train, n_train),
            ("validation", self.val, n_val),
            ("test", self.test, n_test),
        ] {
            if f > 0.0 && k == 0 {
                return Err(CoreError::invalid(
                    format!("split {self} of N = {n} points"),
                    format!("at least one point in the {name} part"),
                    format!(
                        "{name} part empty ({n_train} train, {n_val} validation, {n_test} test)"
                    ),
                ));
            }
        }
        Ok((n_train, n_val, n_test))
    }
}

impl fmt::Display for SplitFractions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{}", self.train, self.val, self.test)
    }
}

impl FromStr for SplitFractions {
    type Err = CoreError;
    /// `TRAIN,VAL,TEST`, e.g. `0.6,0.2,0.2`.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let bad = || {
            CoreError::invalid(
                "split fractions",
                "TRAIN,VAL,TEST: three numbers, e.g. 0.6,0.2,0.2",
                format!("'{s}'"),
            )
        };
        if parts.len() != 3 {
            return Err(bad());
        }
        let f: Vec<f64> = parts
            .iter()
            .map(|p| p.parse::<f64>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        Self::new(f[0], f[1], f[2])
    }
}

/// The points (row indices of the full data, ascending) of each part of a split.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SplitIndices {
    /// Training points.
    pub train: Vec<usize>,
    /// Validation points (empty when there is no validation part).
    pub val: Vec<usize>,
    /// Test points.
    pub test: Vec<usize>,
}

/// The split of `n` points by `fractions` drawn from `rng(seed, "split")` (see the [module docs](self)).
///
/// Same `(n, fractions, seed)` → same parts.
pub fn split_indices(n: usize, fractions: SplitFractions, seed: u64) -> Result<SplitIndices> {
    let (n_train, n_val, _) = fractions.counts(n)?;
    let mut perm: Vec<usize> = (0..n).collect();
    let mut r = rng(seed, "split");
    for i in (1..n).rev() {
        let j = r.random_range(0..=i);
        perm.swap(i, j);
    }
    let sorted = |s: &[usize]| {
        let mut v = s.to_vec();
        v.sort_unstable();
        v
    };
    Ok(SplitIndices {
        train: sorted(&perm[..n_train]),
        val: sorted(&perm[n_train..n_train + n_val]),
        test: sorted(&perm[n_train + n_val..]),
    })
}

/// The rows `idx` of `data`.
pub fn select_rows(data: &Dataset, idx: &[usize]) -> Result<Dataset> {
    if let Some(&i) = idx.iter().find(|&&i| i >= data.n()) {
        return Err(CoreError::invalid(
            "row index",
            format!("an index < N = {}", data.n()),
            i,
        ));
    }
    let x = Mat::from_fn(idx.len(), data.d(), |i, k| data.x[(idx[i], k)]);
    Dataset::new(x, idx.iter().map(|&i| data.y[i]).collect())
}

/// An affine map of inputs (per column) and targets fitted on a training part (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Standardizer {
    /// $\bar x_k$ per input column (0 for a column left as it is).
    pub x_mean: Vec<f64>,
    /// $s_k$ per input column (1 for a column left as it is).
    pub x_scale: Vec<f64>,
    /// $\bar y$ (0 when the targets are left as they are).
    pub y_mean: f64,
    /// $s_y$ (1 when the targets are left as they are).
    pub y_scale: f64,
}

/// (mean, scale) of `values` with the constant rule: all equal → (0, 1).
fn mean_scale(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (lo, hi, n) = values.clone().fold(
        (f64::INFINITY, f64::NEG_INFINITY, 0usize),
        |(l, h, n), x| (l.min(x), h.max(x), n + 1),
    );
    if n == 0 || lo == hi {
        return (0.0, 1.0);
    }
    let mean = values.clone().sum::<f64>() / n as f64;
    let var = values.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
    (mean, var.sqrt())
}

impl Standardizer {
    /// The identity map on `d` columns.
    pub fn identity(d: usize) -> Self {
        Self {
            x_mean: vec![0.0; d],
            x_scale: vec![1.0; d],
            y_mean: 0.0,
            y_scale: 1.0,
        }
    }

    /// Fit on `train`: every input column, and the targets when `targets` is true.
    pub fn fit(train: &Dataset, targets: bool) -> Self {
        let (x_mean, x_scale) = (0..train.d())
            .map(|k| mean_scale((0..train.n()).map(move |i| train.x[(i, k)])))
            .unzip();
        let (y_mean, y_scale) = if targets {
            mean_scale(train.y.iter().copied())
        } else {
            (0.0, 1.0)
        };
        Self {
            x_mean,
            x_scale,
            y_mean,
            y_scale,
        }
    }

    /// The map applied to `data` (same number of columns as the data it was fitted on).
    pub fn apply(&self, data: &Dataset) -> Result<Dataset> {
        if data.d() != self.x_mean.len() {
            return Err(CoreError::shape(
                "data to standardize",
                format!("d = {} input columns", self.x_mean.len()),
                format!("d = {}", data.d()),
            ));
        }
        let x = Mat::from_fn(data.n(), data.d(), |i, k| {
            (data.x[(i, k)] - self.x_mean[k]) / self.x_scale[k]
        });
        let y = data
            .y
            .iter()
            .map(|y| (y - self.y_mean) / self.y_scale)
            .collect();
        Dataset::new(x, y)
    }
}

/// Data ready for held-out evaluation: the (standardized) parts and how they were made.
#[derive(Clone, Debug)]
pub struct HeldOut {
    /// Training part.
    pub train: Dataset,
    /// Validation part, if any.
    pub val: Option<Dataset>,
    /// Test part.
    pub test: Dataset,
    /// The map fitted on the training part and applied to every part.
    pub standardizer: Standardizer,
    /// The split's points, when the parts come from one data set (`None` for a separate test file).
    pub indices: Option<SplitIndices>,
}

impl HeldOut {
    /// Split `data` by `fractions` with the data seed `seed`, then standardize with the training part's
    /// statistics (inputs when `inputs`, targets when `targets`).
    pub fn split(
        data: &Dataset,
        fractions: SplitFractions,
        seed: u64,
        inputs: bool,
        targets: bool,
    ) -> Result<Self> {
        let idx = split_indices(data.n(), fractions, seed)?;
        let train = select_rows(data, &idx.train)?;
        let val = (!idx.val.is_empty())
            .then(|| select_rows(data, &idx.val))
            .transpose()?;
        let test = select_rows(data, &idx.test)?;
        let mut held = Self::standardized(train, val, test, inputs, targets)?;
        held.indices = Some(idx);
        Ok(held)
    }

    /// Separate training and test data (the test data must have the training data's $d$), standardized
    /// with the training data's statistics.
    pub fn with_test(train: Dataset, test: Dataset, inputs: bool, targets: bool) -> Result<Self> {
        if test.d() != train.d() {
            return Err(CoreError::shape(
                "test data",
                format!("d = {} input columns (as the training data)", train.d()),
                format!("d = {}", test.d()),
            ));
        }
        Self::standardized(train, None, test, inputs, targets)
    }

    fn standardized(
        train: Dataset,
        val: Option<Dataset>,
        test: Dataset,
        inputs: bool,
        targets: bool,
    ) -> Result<Self> {
        let mut st = if inputs {
            Standardizer::fit(&train, targets)
        } else {
            Standardizer::identity(train.d())
        };
        if !inputs && targets {
            let fitted = Standardizer::fit(&train, true);
            (st.y_mean, st.y_scale) = (fitted.y_mean, fitted.y_scale);
        }
        Ok(Self {
            train: st.apply(&train)?,
            val: val.map(|v| st.apply(&v)).transpose()?,
            test: st.apply(&test)?,
            standardizer: st,
            indices: None,
        })
    }

    /// Every part with a constant-1 column appended (after standardization: the bias stays exactly 1).
    pub fn with_bias(self) -> Self {
        Self {
            train: self.train.with_bias(),
            val: self.val.map(Dataset::with_bias),
            test: self.test.with_bias(),
            ..self
        }
    }
}

/// math.md §1's risk of `loss` on `data` of the network's predictions there: $\frac1N\sum_i\phi(\hat y^i, y^i)$.
pub fn held_out_risk(net: &Network, data: &Dataset, problem: &Problem) -> Result<f64> {
    let yhat = predict_on(net, data, problem)?;
    Ok(problem.loss.risk(&yhat, &data.y))
}

/// The network's predictions $\hat{\mathbf y}$ on the inputs of `data`, with `problem`'s activation.
pub fn predict_on(net: &Network, data: &Dataset, problem: &Problem) -> Result<Vec<f64>> {
    let other = problem.on_data(data.clone())?;
    other.check_network(net)?;
    Ok(other.predict(net))
}

/// The fraction of points with $y^i \hat y^i > 0$ (labels $\pm1$; a prediction of 0 is wrong).
pub fn sign_accuracy(yhat: &[f64], y: &[f64]) -> f64 {
    let right = yhat.iter().zip(y).filter(|(a, b)| *a * *b > 0.0).count();
    right as f64 / y.len().max(1) as f64
}

/// Risk and (for the logistic loss) accuracy of predictions `yhat` on `data`.
pub fn metrics(loss: Loss, yhat: &[f64], data: &Dataset) -> (f64, Option<f64>) {
    let risk = loss.risk(yhat, &data.y);
    let acc = (loss == Loss::Logistic).then(|| sign_accuracy(yhat, &data.y));
    (risk, acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::BuiltinDataset;

    #[test]
    fn fractions_parse_and_reject() {
        let f: SplitFractions = "0.6,0.2,0.2".parse().unwrap();
        assert_eq!(f.counts(10).unwrap(), (6, 2, 2));
        assert_eq!(f.counts(569).unwrap(), (341, 114, 114));
        for (s, want) in [
            ("0.5,0.2,0.2", "sum to 1"),
            ("0.6,0.2", "three numbers"),
            ("1,0,0", "test fraction > 0"),
            ("0,0.5,0.5", "training fraction > 0"),
            ("0.6,-0.1,0.5", "[0, 1]"),
            ("a,b,c", "three numbers"),
        ] {
            let e = s.parse::<SplitFractions>().unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
        let e = "0.9,0.05,0.05"
            .parse::<SplitFractions>()
            .unwrap()
            .counts(8)
            .unwrap_err()
            .to_string();
        assert!(e.contains("validation part empty"), "{e}");
    }

    #[test]
    fn split_is_a_seeded_partition() {
        let f = SplitFractions::new(0.6, 0.2, 0.2).unwrap();
        let a = split_indices(50, f, 3).unwrap();
        assert_eq!(a, split_indices(50, f, 3).unwrap());
        assert_ne!(a, split_indices(50, f, 4).unwrap());
        let mut all: Vec<usize> = [&a.train[..], &a.val, &a.test].concat();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        assert_eq!((a.train.len(), a.val.len(), a.test.len()), (30, 10, 10));
    }

    #[test]
    fn standardization_uses_training_statistics_only() {
        let mut data = Dataset::builtin(BuiltinDataset::Sine, 40, 3, 1).unwrap();
        for i in 0..40 {
            data.x[(i, 1)] = 2.5; // a constant column
        }
        let f = SplitFractions::new(0.5, 0.25, 0.25).unwrap();
        let h = HeldOut::split(&data, f, 0, true, true).unwrap();
        let (n, d) = (h.train.n(), h.train.d());
        for k in [0, 2] {
            let mean: f64 = (0..n).map(|i| h.train.x[(i, k)]).sum::<f64>() / n as f64;
            let var: f64 = (0..n).map(|i| h.train.x[(i, k)].powi(2)).sum::<f64>() / n as f64;
            assert!(
                mean.abs() < 1e-14 && (var - 1.0).abs() < 1e-12,
                "{mean} {var}"
            );
        }
        assert!((0..n).all(|i| h.train.x[(i, 1)] == 2.5));
        assert_eq!(
            (h.standardizer.x_mean[1], h.standardizer.x_scale[1]),
            (0.0, 1.0)
        );
        let ym: f64 = h.train.y.iter().sum::<f64>() / n as f64;
        assert!(ym.abs() < 1e-14);
        // The test part is mapped with the training statistics, not its own.
        let idx = h.indices.as_ref().unwrap();
        let st = &h.standardizer;
        for (row, &i) in idx.test.iter().enumerate() {
            let want = (data.x[(i, 0)] - st.x_mean[0]) / st.x_scale[0];
            assert_eq!(h.test.x[(row, 0)], want);
        }
        assert_eq!(d, 3);
        let with_bias = h.with_bias();
        assert_eq!(with_bias.test.d(), 4);
    }

    #[test]
    fn test_data_of_another_dimension_is_refused() {
        let a = Dataset::builtin(BuiltinDataset::Sine, 10, 3, 1).unwrap();
        let b = Dataset::builtin(BuiltinDataset::Sine, 10, 4, 1).unwrap();
        let e = HeldOut::with_test(a, b, true, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("d = 3") && e.contains("d = 4"), "{e}");
    }

    #[test]
    fn accuracy_counts_sign_agreement() {
        assert_eq!(
            sign_accuracy(&[0.5, -0.1, 0.0, 2.0], &[1.0, 1.0, 1.0, 1.0]),
            0.5
        );
    }
}
