//! C17 — KKT conditions at a GD stationary point. (Not implemented yet: the claim fails with an error until it is.)
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C17",
            title: "KKT conditions at a GD stationary point",
            measures: "not implemented yet",
            rule: "not implemented yet",
        },
        run,
    }
}

fn run(_ctx: &ClaimCtx) -> anyhow::Result<Outcome> {
    anyhow::bail!("claim C17 is not implemented yet")
}
