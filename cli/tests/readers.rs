//! Fuzz-style property tests of the readers (issue 14): random bytes, truncated and bit-flipped `.npz`
//! archives, random CSV and TOML text. Every reader returns an error or a valid value — never a panic —
//! and every error is one line. A bit-flipped archive that still reads must read the original arrays
//! (a corrupted entry is never data: the CRC-32 is checked).
use nff::core::io;
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A data file and a state file (with its recorded model) written by the library, as bytes.
fn originals() -> &'static (Vec<u8>, Vec<u8>, io::Npz) {
    static ORIG: OnceLock<(Vec<u8>, Vec<u8>, io::Npz)> = OnceLock::new();
    ORIG.get_or_init(|| {
        use nff::core::{Activation, Arch, Loss, Regularizer, Shape};
        let dir = tempfile::tempdir().unwrap();
        let data = nff::core::Dataset::new(
            faer::Mat::from_fn(6, 2, |i, j| (i as f64) * 0.5 - j as f64),
            vec![0.5, -1.0, 2.0, 0.0, 1.5, -0.25],
        )
        .unwrap();
        let data_path = dir.path().join("data.npz");
        io::save_data_npz(&data_path, &data).unwrap();
        let shape = Shape::new(Arch::Dnn, 2, 3, 2).unwrap();
        let mut net = nff::core::Params::zeros(shape);
        for (k, x) in net.as_mut_slice().iter_mut().enumerate() {
            *x = (k as f64).sin();
        }
        let state_path = dir.path().join("state.npz");
        let model = io::StateModel {
            activation: Activation::Relu,
            loss: Loss::Squared,
            regularizer: Regularizer::GroupL1q {
                lambda: 0.01,
                q: 2.0,
            },
        };
        io::save_state_model(&state_path, &data, &net, &model).unwrap();
        let npz = io::read_npz(&data_path).unwrap();
        (
            std::fs::read(&data_path).unwrap(),
            std::fs::read(&state_path).unwrap(),
            npz,
        )
    })
}

fn write_tmp(bytes: &[u8], ext: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(format!("f.{ext}"));
    std::fs::write(&p, bytes).unwrap();
    (dir, p)
}

fn one_line<E: std::fmt::Display>(e: &E) -> Result<(), TestCaseError> {
    let s = e.to_string();
    prop_assert!(!s.contains('\n'), "a multi-line error: {s:?}");
    prop_assert!(!s.is_empty());
    Ok(())
}

/// Every npz reader on these bytes: an error in one line, or a value.
fn read_all_npz(bytes: &[u8]) -> Result<Option<io::Npz>, TestCaseError> {
    let (_d, p) = write_tmp(bytes, "npz");
    let npz = match io::read_npz(&p) {
        Ok(n) => Some(n),
        Err(e) => {
            one_line(&e)?;
            None
        }
    };
    if let Err(e) = io::load_data_npz(&p) {
        one_line(&e)?;
    }
    match io::load_state_model(&p) {
        Ok((data, net, _)) => {
            prop_assert!(data.y.iter().all(|y| y.is_finite()));
            prop_assert!(net.as_slice().iter().all(|x| x.is_finite()));
        }
        Err(e) => one_line(&e)?,
    }
    Ok(npz)
}

fn csv_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("1".to_string()),
            Just("-2.5".to_string()),
            Just("1e308".to_string()),
            Just("1e999".to_string()),
            Just("nan".to_string()),
            Just("inf".to_string()),
            Just(",".to_string()),
            Just(",,".to_string()),
            Just("\n".to_string()),
            Just("\r\n".to_string()),
            Just("x1,x2,y".to_string()),
            Just("#".to_string()),
            Just(" ".to_string()),
            Just("\"".to_string()),
            Just("é".to_string()),
            "[0-9.eE+-]{1,6}",
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

fn toml_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("width = 8\n".to_string()),
            Just("eta = -0.1\n".to_string()),
            Just("widht = 3\n".to_string()),
            Just("[train]\n".to_string()),
            Just("[[x]]\n".to_string()),
            Just("width = \"wide\"\n".to_string()),
            Just("steps = 1e400\n".to_string()),
            Just("threads = 99999999999999999999\n".to_string()),
            Just("= =\n".to_string()),
            Just("\"".to_string()),
            Just("a.b.c = 1\n".to_string()),
            Just("data = 'builtin:sine'\n".to_string()),
            Just("lambda = nan\n".to_string()),
            "[a-z_=\\[\\]\"' .0-9\n]{1,12}",
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_an_error_or_a_value(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        read_all_npz(&bytes)?;
    }

    #[test]
    fn random_bytes_behind_a_zip_signature_are_an_error_or_a_value(
        tail in proptest::collection::vec(any::<u8>(), 0..600)
    ) {
        let mut bytes = b"PK\x03\x04".to_vec();
        bytes.extend(tail);
        read_all_npz(&bytes)?;
    }

    #[test]
    fn truncated_archives_are_an_error_or_the_original(cut in 0.0f64..1.0, state in any::<bool>()) {
        let (data, st, _) = originals();
        let full = if state { st } else { data };
        let len = ((full.len() as f64) * cut) as usize;
        if let Some(npz) = read_all_npz(&full[..len])? {
            // Only a cut that loses nothing the reader needs can read, and then it reads the same.
            let (_d, p) = write_tmp(full, "npz");
            let orig = io::read_npz(&p).unwrap();
            prop_assert_eq!(npz.arrays(), orig.arrays());
        }
    }

    #[test]
    fn bit_flipped_archives_are_an_error_or_the_original(pos in 0.0f64..1.0, bit in 0u8..8, state in any::<bool>()) {
        let (data, st, data_npz) = originals();
        let full = if state { st } else { data };
        let mut bytes = full.clone();
        let at = ((bytes.len() as f64) * pos) as usize % bytes.len();
        bytes[at] ^= 1 << bit;
        if let Some(npz) = read_all_npz(&bytes)? {
            // Still readable: the flip hit zip metadata no checksum covers (a version field, a name in
            // the central directory). Every array read is one of the originals, bit for bit: a flip
            // inside an entry is a CRC-32 error, never data. (A renamed entry may change its name or,
            // no longer ending in .npy, be skipped: the schema readers then miss an array.)
            let (_o, orig_path) = write_tmp(full, "npz");
            let orig = if state { io::read_npz(&orig_path).unwrap() } else { data_npz.clone() };
            let bits = |a: &io::NpzArray| (a.shape.clone(), a.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            let want: Vec<_> = orig.arrays().values().map(bits).collect();
            for a in npz.arrays().values() {
                prop_assert!(want.contains(&bits(a)), "flip at byte {} bit {} changed the data", at, bit);
            }
            // The schema readers, when they accept the file, read exactly the original.
            let (_f, p) = write_tmp(&bytes, "npz");
            if state {
                if let Ok((d, n, m)) = io::load_state_model(&p) {
                    let (d0, n0, m0) = io::load_state_model(&orig_path).unwrap();
                    prop_assert_eq!((d.x, d.y, n.as_slice().to_vec(), m), (d0.x, d0.y, n0.as_slice().to_vec(), m0));
                }
            } else if let Ok(d) = io::load_data_npz(&p) {
                let d0 = io::load_data_npz(&orig_path).unwrap();
                prop_assert_eq!((d.x, d.y), (d0.x, d0.y));
            }
        }
    }

    #[test]
    fn random_csv_is_an_error_or_a_finite_dataset(text in csv_text()) {
        let (_d, p) = write_tmp(text.as_bytes(), "csv");
        match io::load_data_csv(&p) {
            Ok(data) => {
                prop_assert!(data.n() >= 1 && data.d() >= 1);
                prop_assert!(data.y.iter().all(|y| y.is_finite()));
                prop_assert!((0..data.n()).all(|i| (0..data.d()).all(|j| data.x[(i, j)].is_finite())));
            }
            Err(e) => one_line(&e)?,
        }
    }

    #[test]
    fn random_toml_is_an_error_or_a_table_of_known_keys(text in toml_text()) {
        use nff_cli::cmd::train::TrainArgs;
        let (_d, p) = write_tmp(text.as_bytes(), "toml");
        match nff_cli::common::read_config_for::<TrainArgs>(Some(&p)) {
            Ok(table) => {
                let known = nff_cli::common::known_keys::<TrainArgs>();
                for k in table.keys() {
                    prop_assert!(known.contains(k), "unknown key {} accepted", k);
                }
            }
            Err(e) => {
                let s = nff_cli::common::one_line(&e);
                prop_assert!(!s.contains('\n'), "{:?}", s);
            }
        }
    }
}
