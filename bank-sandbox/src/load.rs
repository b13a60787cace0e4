//! Load generator (filled in later).

/// Load generator arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {}

/// Runs the load.
pub async fn run(_args: LoadArgs) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::json!({}))
}
