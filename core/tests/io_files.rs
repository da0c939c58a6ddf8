//! Files: `.npz`/`.csv` round trips, every bad-input error, atomic writes, and numpy interoperability.
#[path = "../../tests/support/python.rs"]
mod python;
use faer::Mat;
use nff_core::io::{
    load_data_csv, load_data_npz, load_state, read_npz, save_data_csv, save_data_npz, save_state,
    write_atomic, write_atomic_with, write_npz, NpzWriter,
};
use nff_core::{Activation, Arch, Dataset, Loss, Params, Problem, Regularizer, Shape};
use proptest::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

// ------------------------------------------------------------------------------------------------
// helpers
// ------------------------------------------------------------------------------------------------

/// Finite doubles of every kind: normal, subnormal, ±0, both signs, extreme exponents.
fn finite() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as f;
    f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO
}

fn dataset_strategy() -> impl Strategy<Value = Dataset> {
    (1usize..7, 1usize..5).prop_flat_map(|(n, d)| {
        (
            proptest::collection::vec(finite(), n * d),
            proptest::collection::vec(finite(), n),
        )
            .prop_map(move |(xs, y)| {
                Dataset::new(Mat::from_fn(n, d, |i, k| xs[i * d + k]), y).unwrap()
            })
    })
}

fn state_strategy() -> impl Strategy<Value = (Dataset, Params)> {
    let arch = prop_oneof![Just(Arch::TwoLevel), Just(Arch::Dnn), Just(Arch::ResNet)];
    (arch, 1usize..4, 1usize..5, 1usize..4, 1usize..5).prop_flat_map(|(arch, d, m, depth, n)| {
        let depth = if arch == Arch::TwoLevel { 1 } else { depth };
        let shape = Shape::new(arch, d, m, depth).unwrap();
        (
            proptest::collection::vec(finite(), shape.len()),
            proptest::collection::vec(finite(), n * d),
            proptest::collection::vec(finite(), n),
        )
            .prop_map(move |(p, xs, y)| {
                let x = Mat::from_fn(n, d, |i, k| xs[i * d + k]);
                (
                    Dataset::new(x, y).unwrap(),
                    Params::from_vec(shape, p).unwrap(),
                )
            })
    })
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn mat_bits(m: &Mat<f64>) -> Vec<u64> {
    let mut out = Vec::new();
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out.push(m[(i, j)].to_bits());
        }
    }
    out
}

fn assert_same_data(a: &Dataset, b: &Dataset) {
    assert_eq!((a.n(), a.d()), (b.n(), b.d()));
    assert_eq!(mat_bits(&a.x), mat_bits(&b.x));
    assert_eq!(bits(&a.y), bits(&b.y));
}

/// Files in `dir`, sorted (to check no temporary file is left behind).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn err_of<T: std::fmt::Debug>(r: nff_core::Result<T>) -> String {
    r.expect_err("an error was expected").to_string()
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error {msg:?} should contain {p:?}");
    }
    assert!(!msg.contains('\n'), "error should be one line: {msg:?}");
}

/// A `.npy` file by hand: header with `descr`, order and shape, then raw `data`.
fn npy_bytes(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn f64_le(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A zip of hand-made `.npy` entries (deflate-compressed, like `numpy.savez_compressed`).
fn write_raw_npz(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        // A name with an extension is taken as the file name as it is.
        let file = if name.contains('.') {
            name.to_string()
        } else {
            format!("{name}.npy")
        };
        z.start_file(file, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// One array of a state file under construction.
struct Arr {
    name: &'static str,
    shape: Vec<usize>,
    data: Vec<f64>,
}

/// A valid state (N = 4, d = 3, m = 5) as separate arrays, to break one at a time.
fn state_arrays(depth: usize, resnet: bool) -> Vec<Arr> {
    let (n, d, m) = (4, 3, 5);
    let ramp = |len: usize, scale: f64| (0..len).map(|i| scale * (i as f64 - 1.5)).collect();
    let mut arrays = vec![
        Arr {
            name: "X",
            shape: vec![n, d],
            data: ramp(n * d, 0.1),
        },
        Arr {
            name: "y",
            shape: vec![n],
            data: ramp(n, 0.3),
        },
        Arr {
            name: "A",
            shape: vec![d, m],
            data: ramp(d * m, 0.2),
        },
        Arr {
            name: "v",
            shape: vec![m],
            data: ramp(m, 0.7),
        },
        Arr {
            name: "depth",
            shape: vec![],
            data: vec![depth as f64],
        },
        Arr {
            name: "resnet",
            shape: vec![],
            data: vec![if resnet { 1.0 } else { 0.0 }],
        },
    ];
    if depth > 1 {
        arrays.push(Arr {
            name: "W",
            shape: vec![depth - 1, m, m],
            data: ramp((depth - 1) * m * m, 0.05),
        });
    }
    arrays
}

fn write_arrays(path: &Path, arrays: &[Arr]) {
    let list: Vec<(&str, &[usize], &[f64])> = arrays
        .iter()
        .map(|a| (a.name, a.shape.as_slice(), a.data.as_slice()))
        .collect();
    write_npz(path, &list).unwrap();
}

fn arr<'a>(arrays: &'a mut [Arr], name: &str) -> &'a mut Arr {
    arrays.iter_mut().find(|a| a.name == name).unwrap()
}

/// Write `arrays`, load them as a state, return the error message.
fn state_error(dir: &Path, arrays: &[Arr]) -> String {
    let path = dir.join("bad.npz");
    write_arrays(&path, arrays);
    let msg = err_of(load_state(&path));
    assert!(msg.contains("bad.npz"), "error should name the file: {msg}");
    msg
}

// ------------------------------------------------------------------------------------------------
// round trips
// ------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn data_npz_round_trip_is_bit_exact(data in dataset_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.npz");
        save_data_npz(&path, &data).unwrap();
        assert_same_data(&data, &load_data_npz(&path).unwrap());
        prop_assert_eq!(listing(dir.path()), vec!["data.npz".to_string()]);
    }

    #[test]
    fn data_csv_round_trip_is_bit_exact(data in dataset_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.csv");
        save_data_csv(&path, &data).unwrap();
        assert_same_data(&data, &load_data_csv(&path).unwrap());
    }

    #[test]
    fn state_round_trip_is_bit_exact((data, net) in state_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.npz");
        save_state(&path, &data, &net).unwrap();
        let (data2, net2) = load_state(&path).unwrap();
        assert_same_data(&data, &data2);
        let s = net.shape();
        let expected_arch = if s.depth == 1 { Arch::TwoLevel } else { s.arch };
        prop_assert_eq!(net2.shape(), Shape { arch: expected_arch, ..s });
        prop_assert_eq!(bits(net.as_slice()), bits(net2.as_slice()));
        // The file follows the schema: W[l, j, k] = W_{l+1}[j, k], A[i, j] = A[i, j].
        let npz = read_npz(&path).unwrap();
        let a = npz.matrix("A").unwrap();
        prop_assert_eq!(mat_bits(&a), {
            let mut v = Vec::new();
            for i in 0..s.d { for j in 0..s.m { v.push(net.a()[(i, j)].to_bits()); } }
            v
        });
        prop_assert_eq!(npz.contains("W"), s.depth > 1);
        if s.depth > 1 {
            let w = npz.get("W").unwrap();
            prop_assert_eq!(&w.shape, &vec![s.depth - 1, s.m, s.m]);
            for l in 0..s.depth - 1 {
                for j in 0..s.m {
                    for k in 0..s.m {
                        prop_assert_eq!(
                            w.data[(l * s.m + j) * s.m + k].to_bits(),
                            net.w(l)[(j, k)].to_bits()
                        );
                    }
                }
            }
        }
        prop_assert_eq!(npz.scalar("depth").unwrap(), s.depth as f64);
        prop_assert_eq!(npz.get("depth").unwrap().shape.len(), 0);
        prop_assert_eq!(npz.scalar("resnet").unwrap(), if s.arch == Arch::ResNet { 1.0 } else { 0.0 });
    }
}

#[test]
fn generic_npz_round_trip_and_getter_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.npz");
    let cube: Vec<f64> = (0..24).map(f64::from).collect();
    write_npz(
        &path,
        &[
            ("cube", &[2, 3, 4], &cube),
            ("s", &[], &[2.5]),
            ("empty", &[0, 3], &[]),
            ("vec", &[3], &[1.0, 2.0, 3.0]),
        ],
    )
    .unwrap();
    let npz = read_npz(&path).unwrap();
    assert_eq!(
        npz.names().collect::<Vec<_>>(),
        ["cube", "empty", "s", "vec"]
    );
    assert_eq!(npz.get("cube").unwrap().shape, [2, 3, 4]);
    assert_eq!(npz.get("cube").unwrap().data, cube);
    assert_eq!(npz.scalar("s").unwrap(), 2.5);
    assert_eq!(npz.matrix("empty").unwrap().nrows(), 0);
    assert_eq!(npz.vector("vec").unwrap(), [1.0, 2.0, 3.0]);
    assert_contains(
        &err_of(npz.matrix("vec")),
        &["'vec'", "g.npz", "2-d", "(3,)"],
    );
    assert_contains(&err_of(npz.vector("cube")), &["'cube'", "1-d", "(2, 3, 4)"]);
    assert_contains(&err_of(npz.scalar("vec")), &["'vec'", "()", "(3,)"]);
    assert_contains(
        &err_of(npz.get("nope")),
        &["missing array 'nope'", "found arrays cube, empty, s, vec"],
    );

    let mut w = NpzWriter::create(dir.path().join("h.npz")).unwrap();
    assert_contains(
        &err_of(w.add("x", &[2, 2], &[1.0])),
        &["'x'", "4 entries", "(2, 2)", "1 entries"],
    );
    w.add("x", &[1], &[1.0]).unwrap();
    assert_contains(&err_of(w.add("x", &[1], &[1.0])), &["'x' twice"]);
}

#[test]
fn csv_reading_accepts_headers_blank_lines_and_comments() {
    let dir = tempfile::tempdir().unwrap();
    let with_header = dir.path().join("a.csv");
    std::fs::write(
        &with_header,
        "# saved by numpy\nx1, x2 ,y\n\n1,2,3\r\n 4.5,-6e-3, 7\n\n",
    )
    .unwrap();
    let without = dir.path().join("b.csv");
    std::fs::write(&without, "1,2,3\n4.5,-6e-3,7").unwrap();
    for p in [&with_header, &without] {
        let d = load_data_csv(p).unwrap();
        assert_eq!((d.n(), d.d()), (2, 2));
        assert_eq!(d.x[(1, 1)], -6e-3);
        assert_eq!(d.y, [3.0, 7.0]);
    }
}

#[test]
fn csv_errors_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    let case = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let msg = err_of(load_data_csv(&path));
        assert!(msg.contains("bad.csv"), "{msg}");
        msg
    };
    assert_contains(
        &case("x1,x2,y\n1,2,3\n4,abc,6\n"),
        &["line 3", "column 2", "expected a number", "'abc'"],
    );
    assert_contains(
        &case("1,2,3\nNaN,2,3\n"),
        &["line 2", "column 1", "finite", "'NaN'"],
    );
    assert_contains(&case("1,2,inf\n"), &["line 1", "column 3", "'inf'"]);
    assert_contains(
        &case("x,y,z\n1,2,3\n\n4,5\n"),
        &["line 4", "expected 3 columns", "line 1", "found 2"],
    );
    assert_contains(&case("1,2\n3,4,5\n"), &["line 2", "expected 2", "found 3"]);
    assert_contains(&case("\n# nothing\n"), &["at least one data line", "none"]);
    assert_contains(&case("x,y\n"), &["at least one data line", "none"]);
    assert_contains(&case("1\n2\n"), &["line 1", "at least 2", "found 1"]);
    assert_contains(
        &err_of(load_data_csv(dir.path().join("missing.csv"))),
        &["missing.csv", "cannot read"],
    );
}

#[test]
fn data_npz_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.npz");
    write_npz(&path, &[("X", &[2, 2], &[1., 2., 3., 4.])]).unwrap();
    assert_contains(
        &err_of(load_data_npz(&path)),
        &["d.npz", "missing array y", "found arrays X"],
    );
    write_npz(
        &path,
        &[
            ("X", &[2, 2], &[1., 2., 3., 4.]),
            ("y", &[3], &[1., 2., 3.]),
        ],
    )
    .unwrap();
    assert_contains(&err_of(load_data_npz(&path)), &["'y'", "(2,)", "(3,)"]);
    write_npz(
        &path,
        &[
            ("X", &[4], &[1., 2., 3., 4.]),
            ("y", &[4], &[1., 2., 3., 4.]),
        ],
    )
    .unwrap();
    assert_contains(&err_of(load_data_npz(&path)), &["'X'", "2-d", "(4,)"]);
    write_npz(
        &path,
        &[("X", &[2, 1], &[1., f64::NAN]), ("y", &[2], &[1., 2.])],
    )
    .unwrap();
    assert_contains(
        &err_of(load_data_npz(&path)),
        &["'X'", "finite", "NaN at X[1, 0]"],
    );
}

// ------------------------------------------------------------------------------------------------
// state validation
// ------------------------------------------------------------------------------------------------

#[test]
fn state_errors_state_expected_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Sanity: the unbroken arrays load, as DNN, ResNet and two-level.
    for (depth, resnet, arch) in [
        (3, false, Arch::Dnn),
        (2, true, Arch::ResNet),
        (1, false, Arch::TwoLevel),
    ] {
        let path = d.join("ok.npz");
        write_arrays(&path, &state_arrays(depth, resnet));
        let (data, net) = load_state(&path).unwrap();
        assert_eq!(net.shape(), Shape::new(arch, 3, 5, depth).unwrap());
        assert_eq!(data.n(), 4);
        // A[i, j] in the file is A[(i, j)]: ramp 0.2 * (5i + j - 1.5).
        assert_eq!(net.a()[(1, 2)], 0.2 * (7.0 - 1.5));
    }
    // A two-level state may omit resnet.
    let mut a = state_arrays(1, false);
    a.retain(|x| x.name != "resnet");
    write_arrays(&d.join("ok.npz"), &a);
    assert_eq!(
        load_state(d.join("ok.npz")).unwrap().1.shape().arch,
        Arch::TwoLevel
    );

    // Missing keys, all named at once.
    let mut a = state_arrays(2, false);
    a.retain(|x| x.name != "A" && x.name != "v");
    assert_contains(
        &state_error(d, &a),
        &[
            "missing arrays A, v",
            "needs X (N, d)",
            "found arrays W, X, depth, resnet, y",
        ],
    );
    let mut a = state_arrays(2, false);
    a.retain(|x| x.name != "W");
    assert_contains(
        &state_error(d, &a),
        &["missing array W", "found arrays A, X"],
    );
    let mut a = state_arrays(3, true);
    a.retain(|x| x.name != "resnet");
    assert_contains(&state_error(d, &a), &["missing array resnet"]);

    // A rows ≠ X columns.
    let mut a = state_arrays(2, false);
    *arr(&mut a, "A") = Arr {
        name: "A",
        shape: vec![2, 5],
        data: vec![0.0; 10],
    };
    assert_contains(
        &state_error(d, &a),
        &["'A'", "(3, m)", "one row per column of X", "found (2, 5)"],
    );
    // A not 2-d.
    let mut a = state_arrays(1, false);
    arr(&mut a, "A").shape = vec![15];
    assert_contains(&state_error(d, &a), &["'A'", "(3, m)", "found (15,)"]);

    // v length ≠ m.
    let mut a = state_arrays(2, true);
    *arr(&mut a, "v") = Arr {
        name: "v",
        shape: vec![4],
        data: vec![0.0; 4],
    };
    assert_contains(&state_error(d, &a), &["'v'", "expected (5,)", "found (4,)"]);

    // y length ≠ N.
    let mut a = state_arrays(1, false);
    *arr(&mut a, "y") = Arr {
        name: "y",
        shape: vec![3],
        data: vec![0.0; 3],
    };
    assert_contains(&state_error(d, &a), &["'y'", "expected (4,)", "found (3,)"]);

    // W shape ≠ (depth − 1, m, m).
    let mut a = state_arrays(3, false);
    *arr(&mut a, "W") = Arr {
        name: "W",
        shape: vec![1, 5, 5],
        data: vec![0.0; 25],
    };
    assert_contains(
        &state_error(d, &a),
        &[
            "'W'",
            "expected (2, 5, 5)",
            "depth = 3, m = 5",
            "found (1, 5, 5)",
        ],
    );
    let mut a = state_arrays(2, false);
    *arr(&mut a, "W") = Arr {
        name: "W",
        shape: vec![5, 5],
        data: vec![0.0; 25],
    };
    assert_contains(&state_error(d, &a), &["'W'", "(1, 5, 5)", "found (5, 5)"]);

    // W present when depth = 1.
    let mut a = state_arrays(1, false);
    a.push(Arr {
        name: "W",
        shape: vec![1, 5, 5],
        data: vec![0.0; 25],
    });
    assert_contains(
        &state_error(d, &a),
        &["'W'", "no W when depth = 1", "found W of shape (1, 5, 5)"],
    );

    // depth not a positive integer.
    for (bad, shown) in [
        (0.0, "found 0"),
        (2.5, "found 2.5"),
        (-1.0, "found -1"),
        (f64::NAN, "found NaN"),
    ] {
        let mut a = state_arrays(2, false);
        arr(&mut a, "depth").data = vec![bad];
        assert_contains(
            &state_error(d, &a),
            &["'depth'", "a positive integer", shown],
        );
    }
    let mut a = state_arrays(2, false);
    *arr(&mut a, "depth") = Arr {
        name: "depth",
        shape: vec![2],
        data: vec![2.0, 2.0],
    };
    assert_contains(&state_error(d, &a), &["'depth'", "scalar", "found (2,)"]);

    // resnet not 0/1.
    let mut a = state_arrays(2, false);
    arr(&mut a, "resnet").data = vec![2.0];
    assert_contains(&state_error(d, &a), &["'resnet'", "0 or 1", "found 2"]);

    // NaN / inf anywhere.
    for (name, flat, index) in [
        ("X", 4, "X[1, 1]"),
        ("y", 2, "y[2]"),
        ("A", 7, "A[1, 2]"),
        ("v", 0, "v[0]"),
        ("W", 31, "W[1, 1, 1]"),
    ] {
        for bad in [f64::NAN, f64::INFINITY] {
            let mut a = state_arrays(3, true);
            arr(&mut a, name).data[flat] = bad;
            let found = format!("found {bad} at {index}");
            assert_contains(
                &state_error(d, &a),
                &[&format!("'{name}'"), "finite values", &found],
            );
        }
    }

    // Unreadable / missing files.
    assert_contains(
        &err_of(load_state(d.join("nowhere.npz"))),
        &["nowhere.npz", "cannot open"],
    );
    std::fs::write(d.join("junk.npz"), "this is not a zip").unwrap();
    assert_contains(
        &err_of(load_state(d.join("junk.npz"))),
        &["junk.npz", "not a readable .npz"],
    );
}

#[test]
fn save_state_rejects_mismatched_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = Dataset::new(Mat::zeros(2, 3), vec![0.0, 1.0]).unwrap();
    let net = Params::zeros(Shape::new(Arch::Dnn, 4, 2, 2).unwrap());
    let path = dir.path().join("s.npz");
    assert_contains(
        &err_of(save_state(&path, &data, &net)),
        &["3 rows", "4 rows"],
    );
    assert!(listing(dir.path()).is_empty());
}

// ------------------------------------------------------------------------------------------------
// dtypes and orders written by other tools
// ------------------------------------------------------------------------------------------------

#[test]
fn reads_other_dtypes_big_endian_and_fortran_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.npz");
    // A 2×3 matrix [[0, 1, 2], [3, 4, 5]] stored in Fortran order (column by column).
    let fortran = f64_le(&[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    // A 2×2×2 array, C value 4i + 2j + k, at Fortran position i + 2j + 4k.
    let mut f3 = [0.0; 8];
    for i in 0..2 {
        for j in 0..2 {
            for k in 0..2 {
                f3[i + 2 * j + 4 * k] = (4 * i + 2 * j + k) as f64;
            }
        }
    }
    let be: Vec<u8> = [1.5f64, -2.0]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let f32s: Vec<u8> = [0.5f32, -0.25]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    write_raw_npz(
        &path,
        &[
            ("F", npy_bytes("<f8", true, &[2, 3], &fortran)),
            ("F3", npy_bytes("<f8", true, &[2, 2, 2], &f64_le(&f3))),
            ("be", npy_bytes(">f8", false, &[2], &be)),
            ("f32", npy_bytes("<f4", false, &[2], &f32s)),
            ("i32", npy_bytes("<i4", false, &[], &7i32.to_le_bytes())),
            ("i64", npy_bytes("<i8", false, &[1], &(-3i64).to_le_bytes())),
            ("u8", npy_bytes("|u1", false, &[3], &[0, 1, 255])),
            ("flag", npy_bytes("|b1", false, &[2], &[1, 0])),
            ("notes.txt", b"ignored, not an array".to_vec()),
        ],
    );
    let npz = read_npz(&path).unwrap();
    let f = npz.matrix("F").unwrap();
    assert_eq!((f[(0, 2)], f[(1, 0)], f[(1, 2)]), (2.0, 3.0, 5.0));
    let c: Vec<f64> = (0..8).map(f64::from).collect();
    assert_eq!(npz.get("F3").unwrap().data, c);
    assert_eq!(npz.vector("be").unwrap(), [1.5, -2.0]);
    assert_eq!(npz.vector("f32").unwrap(), [0.5, -0.25]);
    assert_eq!(npz.scalar("i32").unwrap(), 7.0);
    assert_eq!(npz.scalar("i64").unwrap(), -3.0);
    assert_eq!(npz.vector("u8").unwrap(), [0.0, 1.0, 255.0]);
    assert_eq!(npz.vector("flag").unwrap(), [1.0, 0.0]);
    assert!(!npz.contains("notes"));

    // Unsupported dtypes are named.
    for (descr, bytes) in [("<c16", vec![0u8; 16]), ("|S3", b"abc".to_vec())] {
        write_raw_npz(&path, &[("z", npy_bytes(descr, false, &[1], &bytes))]);
        assert_contains(
            &err_of(read_npz(&path)),
            &[
                "raw.npz",
                "array 'z'",
                "unsupported dtype",
                descr,
                "expected float64",
            ],
        );
    }
    // A header announcing more data than the entry holds.
    write_raw_npz(
        &path,
        &[("z", npy_bytes("<f8", false, &[1000], &[0u8; 16]))],
    );
    assert_contains(
        &err_of(read_npz(&path)),
        &["array 'z'", "1000 entries", "(1000,)"],
    );
}

// ------------------------------------------------------------------------------------------------
// atomic writes
// ------------------------------------------------------------------------------------------------

#[test]
fn atomic_writes_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.json");

    write_atomic(&target, b"old").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
    assert_eq!(listing(dir.path()), ["out.json"]);

    // The closure fails half-way: the old file stays, no temporary file.
    let msg = err_of(write_atomic_with(&target, |w| {
        w.write_all(b"half of it")?;
        Err(std::io::Error::other("disk on fire"))
    }));
    assert_contains(&msg, &["out.json", "disk on fire"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
    assert_eq!(listing(dir.path()), ["out.json"]);

    // A new file is not created by a failed write.
    let fresh = dir.path().join("fresh.csv");
    assert!(write_atomic_with(&fresh, |_| Err("nope")).is_err());
    assert!(!fresh.exists());
    assert_eq!(listing(dir.path()), ["out.json"]);

    // A panic inside the closure also removes the temporary file.
    let panicked = std::panic::catch_unwind(|| {
        let _ = write_atomic_with(&fresh, |w| -> std::io::Result<()> {
            w.write_all(b"x")?;
            panic!("bug in the writer")
        });
    });
    assert!(panicked.is_err());
    assert_eq!(listing(dir.path()), ["out.json"]);

    // The rename fails (the target is a directory): error, temporary file removed.
    let sub = dir.path().join("sub.npz");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("keep"), "k").unwrap();
    assert_contains(
        &err_of(write_atomic(&sub, b"data")),
        &["sub.npz", "cannot replace"],
    );
    let data = Dataset::new(Mat::zeros(1, 1), vec![0.0]).unwrap();
    assert!(save_data_npz(&sub, &data).is_err());
    assert_eq!(listing(dir.path()), ["out.json", "sub.npz"]);

    // A missing directory is named.
    let nowhere = dir.path().join("no/such/dir/x.csv");
    assert_contains(
        &err_of(save_data_csv(&nowhere, &data)),
        &["no/such/dir", "cannot create"],
    );

    // An unfinished or failed NpzWriter leaves nothing.
    {
        let mut w = NpzWriter::create(dir.path().join("partial.npz")).unwrap();
        w.add("a", &[1], &[1.0]).unwrap();
        assert!(w.add("b", &[3], &[1.0]).is_err());
    }
    assert_eq!(listing(dir.path()), ["out.json", "sub.npz"]);

    // Successful writes replace the old content.
    write_atomic_with(&target, |w| write!(w, "new")).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    assert_eq!(listing(dir.path()), ["out.json", "sub.npz"]);
}

// ------------------------------------------------------------------------------------------------
// numpy interoperability
// ------------------------------------------------------------------------------------------------

fn run_python(python: &str, script: &str, args: &[&Path]) -> String {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A Python list literal of `m`'s rows (Rust's `{:?}` is Python's `repr` for finite floats).
fn py_rows(m: faer::MatRef<'_, f64>) -> String {
    let rows: Vec<String> = (0..m.nrows())
        .map(|i| {
            let r: Vec<String> = (0..m.ncols()).map(|j| format!("{:?}", m[(i, j)])).collect();
            format!("[{}]", r.join(", "))
        })
        .collect();
    format!("[{}]", rows.join(", "))
}

fn py_list(v: &[f64]) -> String {
    format!(
        "[{}]",
        v.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[test]
fn numpy_reads_our_state_and_we_read_numpys() {
    let Some(python) = python::python_with_numpy("numpy interoperability test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // 1. numpy loads a ResNet state we wrote: exact values, shapes, dtypes, and the same predictions.
    let (n, d, m, depth) = (5, 3, 4, 3);
    let data = Dataset::builtin("sine".parse().unwrap(), n, d, 7).unwrap();
    let shape = Shape::new(Arch::ResNet, d, m, depth).unwrap();
    let p: Vec<f64> = (0..shape.len())
        .map(|i| ((i * 37 % 23) as f64 - 11.0) / 7.0)
        .collect();
    let net = Params::from_vec(shape, p).unwrap();
    let state = dir.path().join("state.npz");
    save_state(&state, &data, &net).unwrap();
    let w_blocks: Vec<String> = (0..depth - 1).map(|l| py_rows(net.w(l))).collect();
    let script = format!(
        r#"
import sys, numpy as np
f = np.load(sys.argv[1])
assert sorted(f.files) == ['A', 'W', 'X', 'depth', 'resnet', 'v', 'y'], f.files
X, y, A, W, v = (f[k] for k in ['X', 'y', 'A', 'W', 'v'])
for a in (X, y, A, W, v, f['depth'], f['resnet']):
    assert a.dtype == np.float64 and a.flags['C_CONTIGUOUS'], (a.dtype, a.flags)
assert X.shape == ({n}, {d}) and y.shape == ({n},) and A.shape == ({d}, {m}), (X.shape, y.shape, A.shape)
assert W.shape == ({w0}, {m}, {m}) and v.shape == ({m},), (W.shape, v.shape)
assert f['depth'].shape == () and f['depth'] == {depth} and f['resnet'] == 1
assert np.array_equal(X, np.array({x})) and np.array_equal(y, np.array({y}))
assert np.array_equal(A, np.array({a})) and np.array_equal(v, np.array({v}))
assert np.array_equal(W, np.array([{w}]))
Z = X @ A
for l in range({w0}):
    Z = Z + np.tanh(Z) @ W[l] / {m}
for p in np.tanh(Z) @ v / {m}:
    print(repr(float(p)))
"#,
        w0 = depth - 1,
        x = py_rows(data.x.as_ref()),
        y = py_list(&data.y),
        a = py_rows(net.a()),
        v = py_list(net.v()),
        w = w_blocks.join(", "),
    );
    let out = run_python(&python, &script, &[&state]);
    let numpy_pred: Vec<f64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    let problem = Problem::new(data, Activation::Tanh, Loss::Squared, Regularizer::None).unwrap();
    let ours = problem.predict(&net);
    assert_eq!(numpy_pred.len(), n);
    for (a, b) in ours.iter().zip(&numpy_pred) {
        assert!(
            (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
            "{ours:?} vs {numpy_pred:?}"
        );
    }

    // 2. We load a DNN state numpy wrote: int depth, int32 resnet, float32 y, Fortran-order X and W,
    //    deflate-compressed (savez_compressed), plus an extra key.
    let from_numpy = dir.path().join("from_numpy.npz");
    run_python(
        &python,
        r#"
import sys, numpy as np
X = np.asfortranarray(np.arange(12.0).reshape(4, 3) / 7)
y = np.array([0.5, -1.25, 2.0, 3.0], dtype=np.float32)
A = np.arange(6.0).reshape(3, 2) - 2.5
W = np.asfortranarray(np.arange(8.0).reshape(2, 2, 2) / 3)
assert not X.flags['C_CONTIGUOUS'] and not W.flags['C_CONTIGUOUS']
np.savez_compressed(sys.argv[1], X=X, y=y, A=A, W=W, v=np.array([1.0, -1.0]),
                    depth=np.int64(3), resnet=np.int32(0), note=np.arange(3))
"#,
        &[&from_numpy],
    );
    let (data, net) = load_state(&from_numpy).unwrap();
    assert_eq!(net.shape(), Shape::new(Arch::Dnn, 3, 2, 3).unwrap());
    for i in 0..4 {
        for k in 0..3 {
            assert_eq!(data.x[(i, k)], (3 * i + k) as f64 / 7.0);
        }
    }
    assert_eq!(data.y, [0.5, -1.25, 2.0, 3.0]);
    for i in 0..3 {
        for j in 0..2 {
            assert_eq!(net.a()[(i, j)], (2 * i + j) as f64 - 2.5);
        }
    }
    for l in 0..2 {
        for j in 0..2 {
            for k in 0..2 {
                assert_eq!(net.w(l)[(j, k)], (4 * l + 2 * j + k) as f64 / 3.0);
            }
        }
    }
    assert_eq!(net.v(), [1.0, -1.0]);
}

#[test]
fn load_with_bias_appends_a_column_for_files_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = Dataset::builtin("parity".parse().unwrap(), 6, 3, 1).unwrap();
    let npz: PathBuf = dir.path().join("p.npz");
    let csv: PathBuf = dir.path().join("p.csv");
    save_data_npz(&npz, &data).unwrap();
    save_data_csv(&csv, &data).unwrap();
    for p in [&npz, &csv] {
        let spec = p.to_str().unwrap().parse().unwrap();
        // n, d and seed do not apply to files.
        let loaded = Dataset::load(&spec, 99, 99, 99, true).unwrap();
        assert_eq!((loaded.n(), loaded.d()), (6, 4));
        for i in 0..6 {
            assert_eq!(loaded.x[(i, 3)], 1.0);
            assert_eq!(loaded.x[(i, 0)], data.x[(i, 0)]);
        }
        let plain = Dataset::load(&spec, 1, 1, 1, false).unwrap();
        assert_same_data(&plain, &data);
    }
}
