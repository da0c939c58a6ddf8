//! C5 — finite width → NFF at rate m^(-1/2). (Not implemented yet: the claim fails with an error until it is.)
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C5",
            title: "finite width → NFF at rate m^(-1/2)",
            measures: "not implemented yet",
            rule: "not implemented yet",
        },
        run,
    }
}

fn run(_ctx: &ClaimCtx) -> anyhow::Result<Outcome> {
    anyhow::bail!("claim C5 is not implemented yet")
}
