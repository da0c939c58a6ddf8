//! C12 — Gibbs law of noisy GD. (Not implemented yet: the claim fails with an error until it is.)
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C12",
            title: "Gibbs law of noisy GD",
            measures: "not implemented yet",
            rule: "not implemented yet",
        },
        run,
    }
}

fn run(_ctx: &ClaimCtx) -> anyhow::Result<Outcome> {
    anyhow::bail!("claim C12 is not implemented yet")
}
