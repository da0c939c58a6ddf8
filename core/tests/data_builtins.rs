//! Built-in datasets: reproducible per seed, different across seeds, the documented laws.
use nff_core::data::{BuiltinDataset, DataSpec, SPIRALS_NOISE};
use nff_core::Dataset;

fn bits(d: &Dataset) -> Vec<u64> {
    let mut v: Vec<u64> = d.y.iter().map(|x| x.to_bits()).collect();
    for i in 0..d.n() {
        for k in 0..d.d() {
            v.push(d.x[(i, k)].to_bits());
        }
    }
    v
}

#[test]
fn builtins_are_reproducible_per_seed_and_differ_across_seeds() {
    for kind in BuiltinDataset::ALL {
        if let Some((_, d)) = kind.full_size() {
            // A real data set is the same for every seed, and its first N points are a prefix.
            let a = Dataset::builtin(kind, 30, d, 11).unwrap();
            let c = Dataset::builtin(kind, 30, d, 12).unwrap();
            let big = Dataset::builtin(kind, 45, d, 11).unwrap();
            assert_eq!((a.n(), a.d()), (30, d));
            assert_eq!(
                bits(&a),
                bits(&c),
                "{kind}: a real data set changed with the seed"
            );
            for i in 0..30 {
                assert_eq!(a.y[i].to_bits(), big.y[i].to_bits(), "{kind}: y[{i}]");
            }
            continue;
        }
        let a = Dataset::builtin(kind, 30, 3, 11).unwrap();
        let b = Dataset::builtin(kind, 30, 3, 11).unwrap();
        let c = Dataset::builtin(kind, 30, 3, 12).unwrap();
        assert_eq!((a.n(), a.d()), (30, 3));
        assert_eq!(bits(&a), bits(&b), "{kind}: same seed, different data");
        assert_ne!(bits(&a), bits(&c), "{kind}: different seeds, same data");
        a.validate().unwrap();
        // A larger dataset of the same seed extends the smaller one (teacher included).
        let big = Dataset::builtin(kind, 45, 3, 11).unwrap();
        for i in 0..30 {
            assert_eq!(a.y[i].to_bits(), big.y[i].to_bits(), "{kind}: y[{i}]");
            for k in 0..3 {
                assert_eq!(a.x[(i, k)].to_bits(), big.x[(i, k)].to_bits(), "{kind}");
            }
        }
    }
}

#[test]
fn sine_targets_follow_the_formula_and_inputs_have_variance_one_over_d() {
    let d = 4;
    let data = Dataset::builtin(BuiltinDataset::Sine, 2000, d, 3).unwrap();
    for i in 0..data.n() {
        assert_eq!(data.y[i], (3.0 * data.x[(i, 0)]).sin() + 0.5);
    }
    let n = data.n() as f64;
    for k in 0..d {
        let var: f64 = (0..data.n()).map(|i| data.x[(i, k)].powi(2)).sum::<f64>() / n;
        assert!(
            (var * d as f64 - 1.0).abs() < 0.15,
            "coordinate {k}: variance {var}"
        );
    }
}

#[test]
fn labels_of_spirals_and_parity_are_pm1() {
    let d = 5;
    let par = Dataset::builtin(BuiltinDataset::Parity, 200, d, 9).unwrap();
    let scale = 1.0 / (d as f64).sqrt();
    for i in 0..par.n() {
        let mut prod = 1.0;
        for k in 0..d {
            let x = par.x[(i, k)];
            assert!(x == scale || x == -scale, "x = {x}");
            prod *= x.signum();
        }
        assert_eq!(par.y[i], prod);
    }
    let plus = par.y.iter().filter(|&&y| y == 1.0).count();
    assert!(plus > 60 && plus < 140, "{plus} of 200 labels are +1");

    let sp = Dataset::builtin(BuiltinDataset::Spirals, 200, 3, 9).unwrap();
    for i in 0..sp.n() {
        assert_eq!(sp.y[i], if i % 2 == 0 { 1.0 } else { -1.0 });
        let r = sp.x[(i, 0)].hypot(sp.x[(i, 1)]);
        assert!((0.1..=1.0).contains(&r), "radius {r}");
        assert!(sp.x[(i, 2)].abs() < 6.0 * SPIRALS_NOISE);
    }
    assert!(BuiltinDataset::Spirals.has_pm1_labels() && BuiltinDataset::Parity.has_pm1_labels());
    assert!(!BuiltinDataset::Sine.has_pm1_labels());
}

#[test]
fn teacher_targets_are_nontrivial_and_depend_on_the_inputs() {
    let t = Dataset::builtin(BuiltinDataset::Teacher, 100, 3, 5).unwrap();
    let mean = t.y.iter().sum::<f64>() / 100.0;
    let sd = (t.y.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / 100.0).sqrt();
    assert!(t.y.iter().all(|y| y.is_finite()));
    assert!(sd > 1e-3 && sd < 10.0, "teacher target spread {sd}");
    // Same seed and d → same teacher; points with equal inputs get equal targets.
    let other = Dataset::builtin(BuiltinDataset::Teacher, 3, 3, 5).unwrap();
    assert_eq!(other.y[..], t.y[..3]);
}

#[test]
fn load_reads_builtin_specs_with_and_without_bias() {
    let spec: DataSpec = "builtin:spirals".parse().unwrap();
    let plain = Dataset::load(&spec, 10, 2, 4, false).unwrap();
    let biased = Dataset::load(&spec, 10, 2, 4, true).unwrap();
    assert_eq!((plain.d(), biased.d()), (2, 3));
    for i in 0..10 {
        assert_eq!(biased.x[(i, 2)], 1.0);
        assert_eq!(biased.x[(i, 0)], plain.x[(i, 0)]);
    }
    let e = Dataset::load(&spec, 10, 1, 4, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("d >= 2") && e.contains("d = 1"), "{e}");
}
