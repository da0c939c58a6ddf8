//! The claims as a library: one claim run through `nff_cli::verify` without the binary.
use nff_cli::verify::{find, run_claim, ClaimCtx, Size};

#[test]
fn one_claim_runs_through_the_library_api() {
    let claim = find("c21").expect("C21 is registered");
    assert_eq!(claim.info.id, "C21");
    let ctx = ClaimCtx {
        seed: 3,
        size: Size::Quick,
        par: faer::Par::Seq,
    };
    let (result, figure) = run_claim(&claim, &ctx);
    assert_eq!(result.id, "C21");
    assert!(result.passed, "C21 failed: {}", result.detail);
    // The measured gap is a rounding-level number, compared against its stated threshold.
    assert!(result.value.is_finite() && result.value <= result.threshold);
    let (name, svg) = figure.expect("C21 draws a figure");
    assert_eq!(name, "C21.svg");
    assert!(svg.contains("<svg"));
    assert!(find("C99").is_none());
}
