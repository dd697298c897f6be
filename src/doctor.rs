//! Placeholder until the doctor command lands.

use crate::app::App;
use crate::error::{Error, ExitCode, Result};

pub async fn run(_app: &App, _args: &crate::cli::DoctorArgs) -> Result<ExitCode> {
    Err(Error::failed(
        "`devcluster doctor` is not available in this build",
    ))
}

/// One preflight check's result (interim shape).
pub struct PreflightCheck;

impl PreflightCheck {
    pub fn failed(&self) -> bool {
        false
    }
    pub fn warned(&self) -> bool {
        false
    }
    pub fn summary(&self) -> String {
        String::new()
    }
}

pub async fn preflight(_app: &App, _plan: &crate::plan::ClusterPlan) -> Vec<PreflightCheck> {
    Vec::new()
}
