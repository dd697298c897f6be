//! Placeholder until the verify command lands.

use crate::app::App;
use crate::error::{Error, ExitCode, Result};

pub async fn run(_app: &App, _args: &crate::cli::VerifyArgs) -> Result<ExitCode> {
    Err(Error::failed(
        "`devcluster verify` is not available in this build",
    ))
}

pub async fn verify_after_up(
    _app: &App,
    _plan: &crate::plan::ClusterPlan,
    _deadline: std::time::Instant,
) -> Result<String> {
    Ok(String::new())
}
