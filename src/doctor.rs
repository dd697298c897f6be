//! Placeholder until the doctor command lands.

use crate::app::App;
use crate::error::{Error, ExitCode, Result};

pub async fn run(_app: &App, _args: &crate::cli::DoctorArgs) -> Result<ExitCode> {
    Err(Error::failed("`devcluster doctor` is not available in this build"))
}
