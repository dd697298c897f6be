//! Placeholder until up/down/status land.

use crate::app::App;
use crate::cli::{DownArgs, StatusArgs, UpArgs};
use crate::error::{Error, ExitCode, Result};

pub async fn up(_app: &App, _args: &UpArgs) -> Result<ExitCode> {
    Err(Error::failed("`devcluster up` is not available in this build"))
}

pub async fn down(_app: &App, _args: &DownArgs) -> Result<ExitCode> {
    Err(Error::failed("`devcluster down` is not available in this build"))
}

pub async fn status(_app: &App, _args: &StatusArgs) -> Result<ExitCode> {
    Err(Error::failed("`devcluster status` is not available in this build"))
}
