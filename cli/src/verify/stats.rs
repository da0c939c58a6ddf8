//! Small statistics used by the claims: least-squares slopes, means, quantiles.

/// Least-squares slope and intercept of `y` on `x`.
pub fn linear_fit(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let slope = sxy / sxx;
    (slope, my - slope * mx)
}

/// Slope of log y against log x (the exponent of a power law), with the intercept in log space.
pub fn loglog_fit(x: &[f64], y: &[f64]) -> (f64, f64) {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    linear_fit(&lx, &ly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loglog_fit_recovers_a_power_law() {
        let x = [32.0, 64.0, 128.0, 512.0];
        let y: Vec<f64> = x.iter().map(|m: &f64| 3.0 * m.powf(-0.5)).collect();
        let (s, c) = loglog_fit(&x, &y);
        assert!((s + 0.5).abs() < 1e-12 && (c - 3f64.ln()).abs() < 1e-12);
    }
}
