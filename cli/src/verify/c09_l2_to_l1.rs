//! C9 — L2→L1 identity and the importance law. (Not implemented yet: the claim fails with an error until it is.)
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C9",
            title: "L2→L1 identity and the importance law",
            measures: "not implemented yet",
            rule: "not implemented yet",
        },
        run,
    }
}

fn run(_ctx: &ClaimCtx) -> anyhow::Result<Outcome> {
    anyhow::bail!("claim C9 is not implemented yet")
}
