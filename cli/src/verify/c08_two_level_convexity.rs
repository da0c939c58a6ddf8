//! C8 — two-level repopulated objective is jointly convex; original variables are not. (Not implemented yet: the claim fails with an error until it is.)
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C8",
            title: "two-level repopulated objective is jointly convex; original variables are not",
            measures: "not implemented yet",
            rule: "not implemented yet",
        },
        run,
    }
}

fn run(_ctx: &ClaimCtx) -> anyhow::Result<Outcome> {
    anyhow::bail!("claim C8 is not implemented yet")
}
