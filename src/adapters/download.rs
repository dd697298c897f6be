//! Pinned downloads: kind releases and add-on manifests, fetched once into the
//! user's cache directory and used only when their SHA-256 matches the pin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::core::error::Error;

/// The kind release `--install-kind` installs, with the SHA-256 of each binary
/// as published beside it (`kind-<os>-<arch>.sha256sum` on the release page).
pub const KIND_RELEASE: &str = "v0.32.0";
const KIND_CHECKSUMS: &[(&str, &str)] = &[
    (
        "linux-amd64",
        "50030de23cf40a18505f20426f6a8506bedf13c6e509244bd1fa9463721b0f54",
    ),
    (
        "linux-arm64",
        "b92cd615e97585de8ddade28ed5cd7feb4248d717c233eea5b03c37298900f5d",
    ),
    (
        "darwin-amd64",
        "295ac6d0d634c9819c9907df45e3017d1f13166bd13c3404c45e79f7faa47498",
    ),
    (
        "darwin-arm64",
        "dca67911095a110c2b5c36e26df6cac860c602033e456c0db47be498cdef1ebb",
    ),
];
const KIND_DOWNLOAD_BASE: &str = "https://github.com/kubernetes-sigs/kind/releases/download";
/// Largest file devcluster downloads (kind is about 10 MiB).
const MAX_DOWNLOAD: usize = 128 * 1024 * 1024;

/// This machine's platform in kind's release naming, e.g. `linux-amd64`.
pub fn platform() -> Option<&'static str> {
    Some(match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux-amd64",
        ("linux", "aarch64") => "linux-arm64",
        ("macos", "x86_64") => "darwin-amd64",
        ("macos", "aarch64") => "darwin-arm64",
        _ => return None,
    })
}

/// Where the pinned kind release for `platform` comes from, and its SHA-256.
pub fn kind_release(platform: &str) -> Option<(String, &'static str)> {
    let (_, sum) = KIND_CHECKSUMS.iter().find(|(p, _)| *p == platform)?;
    Some((
        format!("{KIND_DOWNLOAD_BASE}/{KIND_RELEASE}/kind-{platform}"),
        sum,
    ))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a pinned download failed. [`Error`]'s `From` below renders it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// The HTTP client could not be built.
    #[error("cannot set up downloads: {0}")]
    Setup(String),
    /// The server could not be reached, refused, or sent too much.
    #[error("cannot download {url}: {reason}")]
    Unreachable {
        url: String,
        reason: String,
        /// Where a copy fetched elsewhere is picked up, and by what checksum.
        dest: PathBuf,
        sha256: String,
    },
    /// The bytes arrived but are not the pinned ones; nothing was kept.
    #[error(
        "the download from {url} has the wrong checksum: expected SHA-256 {expected}, got {actual}"
    )]
    WrongChecksum {
        url: String,
        expected: String,
        actual: String,
    },
    /// Writing the file into place failed.
    #[error("{what}: {reason}")]
    Write { what: String, reason: String },
}

impl From<DownloadError> for Error {
    fn from(error: DownloadError) -> Error {
        match error {
            DownloadError::Setup(reason) => Error::failed("cannot set up downloads").cause(reason),
            DownloadError::Unreachable {
                url,
                reason,
                dest,
                sha256,
            } => Error::failed(format!("cannot download {url}"))
                .cause(reason)
                .hint(format!(
                    "check the network, or copy {url} from a machine that can reach it to {} (used once its SHA-256 is {sha256}), then try again",
                    dest.display()
                )),
            DownloadError::WrongChecksum {
                url,
                expected,
                actual,
            } => Error::failed(format!("the download from {url} has the wrong checksum"))
                .cause(format!("expected SHA-256 {expected}, got {actual}"))
                .hint("nothing was kept; the file may have been tampered with or replaced upstream"),
            DownloadError::Write { what, reason } => Error::failed(what).cause(reason),
        }
    }
}

/// [`fetch`], its error rendered for the user.
pub async fn fetch_pinned(
    url: &str,
    sha256: &str,
    dest: &Path,
    executable: bool,
) -> Result<PathBuf, Error> {
    Ok(fetch(url, sha256, dest, executable).await?)
}

/// Fetches `url` into `dest` unless a file whose SHA-256 is `sha256` is already
/// there. A download with another checksum is an error and nothing is kept.
pub async fn fetch(
    url: &str,
    sha256: &str,
    dest: &Path,
    executable: bool,
) -> Result<PathBuf, DownloadError> {
    if let Ok(existing) = tokio::fs::read(dest).await
        && sha256_hex(&existing) == sha256
    {
        return Ok(dest.to_path_buf());
    }
    crate::adapters::kube::cluster::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .connect_timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| DownloadError::Setup(e.to_string()))?;
    let failed = |e: &dyn std::fmt::Display| DownloadError::Unreachable {
        url: url.to_string(),
        reason: e.to_string(),
        dest: dest.to_path_buf(),
        sha256: sha256.to_string(),
    };
    let response = client.get(url).send().await.map_err(|e| failed(&e))?;
    if !response.status().is_success() {
        return Err(failed(&format!(
            "the server answered {}",
            response.status()
        )));
    }
    if response
        .content_length()
        .is_some_and(|l| l as usize > MAX_DOWNLOAD)
    {
        return Err(failed(&"the file is larger than expected"));
    }
    let bytes = response.bytes().await.map_err(|e| failed(&e))?;
    if bytes.len() > MAX_DOWNLOAD {
        return Err(failed(&"the file is larger than expected"));
    }
    let actual = sha256_hex(&bytes);
    if actual != sha256 {
        return Err(DownloadError::WrongChecksum {
            url: url.to_string(),
            expected: sha256.to_string(),
            actual,
        });
    }
    let write = |what: String| {
        move |e: std::io::Error| DownloadError::Write {
            what,
            reason: e.to_string(),
        }
    };
    let dir = dest.parent().ok_or_else(|| DownloadError::Write {
        what: format!("cannot write {}", dest.display()),
        reason: "it has no directory".into(),
    })?;
    std::fs::create_dir_all(dir).map_err(write(format!("cannot create {}", dir.display())))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .map_err(write(format!("cannot write into {}", dir.display())))?;
    file.write_all(&bytes)
        .map_err(write(format!("cannot write into {}", dir.display())))?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(write("cannot make the download executable".into()))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    file.persist(dest)
        .map_err(|e| write(format!("cannot write {}", dest.display()))(e.error))?;
    Ok(dest.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_server_is_typed_with_where_a_copy_goes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dest = dir.path().join("kind");
        let sum = "0".repeat(64);
        let error = fetch("http://127.0.0.1:1/kind", &sum, &dest, true)
            .await
            .err()
            .unwrap_or_else(|| panic!("port 1 answered"));
        match &error {
            DownloadError::Unreachable {
                url,
                dest: at,
                sha256,
                ..
            } => assert_eq!(
                (url.as_str(), at, sha256),
                ("http://127.0.0.1:1/kind", &dest, &sum)
            ),
            other => panic!("{other:?}"),
        }
        assert!(!dest.exists());
    }

    #[test]
    fn a_wrong_checksum_renders_what_was_expected_and_what_came() {
        let error = Error::from(DownloadError::WrongChecksum {
            url: "https://example.invalid/kind".into(),
            expected: "aa".into(),
            actual: "bb".into(),
        });
        assert_eq!(
            error.render(),
            "error: the download from https://example.invalid/kind has the wrong checksum\nCaused by: expected SHA-256 aa, got bb\nhint: nothing was kept; the file may have been tampered with or replaced upstream\n"
        );
    }
}
