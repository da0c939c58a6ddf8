//! The claims as a library: one claim run through `nff_cli::verify` without the binary.
use nff_cli::verify::{find, run_claim, Size, VerifyConfig};

#[test]
fn one_claim_runs_through_the_library_api() {
    let claim = find("c21").expect("C21 is registered");
    assert_eq!(claim.info.id, "C21");
    let ctx = VerifyConfig {
        seed: 3,
        seeds: 3,
        size: Size::Quick,
        par: faer::Par::Seq,
    };
    let (result, figure) = run_claim(&claim, &ctx);
    assert_eq!(result.id, "C21");
    assert!(result.passed, "C21 failed: {}", result.detail);
    // The measured gap is a rounding-level number, compared against its stated threshold.
    assert!(result.value.is_finite() && result.value <= result.threshold);
    // Three seed pairs, data and initialization varied separately, all decided.
    let pairs: Vec<(u64, u64)> = result
        .seeds
        .iter()
        .map(|s| (s.data_seed, s.init_seed))
        .collect();
    assert_eq!(pairs, vec![(3, 3), (4, 3), (3, 4)]);
    assert_eq!((result.seeds_passed, result.seeds_applicable), (3, 3));
    assert_eq!(result.kind, "exact");
    let (name, svg) = figure.expect("C21 draws a figure");
    assert_eq!(name, "C21.svg");
    assert!(svg.contains("<svg"));
    assert!(find("C99").is_none());
}
