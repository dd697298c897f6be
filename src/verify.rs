//! Placeholder until the verify command lands.

use crate::app::App;
use crate::error::{Error, ExitCode, Result};

pub async fn run(_app: &App, _args: &crate::cli::VerifyArgs) -> Result<ExitCode> {
    Err(Error::failed("`devcluster verify` is not available in this build"))
}
