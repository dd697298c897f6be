//! kind for `up`: the one the command located, or the pinned release installed
//! into the cache when asked (`--install-kind`, or a yes at the prompt).

use crate::adapters::download;
use crate::adapters::kind::{Kind, KindSource};
use crate::core::error::{Error, Result};
use crate::operations::context::App;

use super::existing::prompt;

/// kind from the one locator, or the pinned release installed with
/// `--install-kind` (or a yes at the prompt), which the rest of the command uses.
pub(super) async fn find_kind(app: &App, install: bool) -> Result<Kind> {
    let missing = match app.kind() {
        Ok(kind) => return Ok(kind),
        Err(missing) => missing,
    };
    let cached = crate::adapters::kind::cached_kind_path(&app.world);
    let ask = !install
        && app.world.can_prompt()
        && prompt(&format!(
            "kind is not installed. Download kind {} into {}?",
            download::KIND_RELEASE,
            cached
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
    if !(install || ask) {
        return Err(missing);
    }
    let platform = download::platform().ok_or_else(|| {
        Error::failed("kind publishes no release for this platform").hint("install kind yourself")
    })?;
    let (url, sum) = download::kind_release(platform)
        .ok_or_else(|| Error::failed(format!("no pinned kind release for {platform}")))?;
    let dest = cached.ok_or_else(|| {
        Error::failed("no cache directory to install kind into").hint("set HOME or XDG_CACHE_HOME")
    })?;
    let step = app
        .ui
        .step(&format!("install kind {}", download::KIND_RELEASE));
    match download::fetch_pinned(&url, sum, &dest, true).await {
        Ok(path) => {
            step.done(&path.display().to_string());
            let kind = Kind::at(path, KindSource::Cache, &app.world);
            app.set_kind(kind.clone());
            Ok(kind)
        }
        Err(e) => {
            step.fail("");
            Err(e)
        }
    }
}
