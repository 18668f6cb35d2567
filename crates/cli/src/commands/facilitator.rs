//! `facilitator`: the facilitator service in the foreground.

use std::path::Path;

use serde_json::json;

use crate::output::Out;

pub(crate) async fn facilitator(out: &Out, config: &Path) -> anyhow::Result<()> {
    let mut config = x402_aa_facilitator::Config::from_file(config)?;
    config.apply_env()?;
    let handle = x402_aa_facilitator::FacilitatorService::new(config).await?.bind().await?;
    out.result(
        format!("facilitator listening on {}", handle.url()),
        json!({ "url": handle.url() }),
    );
    handle.wait().await?;
    Ok(())
}
