//! The `kind` binary: finding it, its version, and the subset of its CLI devcluster
//! drives. kind prints status on stderr and data on stdout and exits 0 or 1
//! (kind `pkg/cmd/kind/root.go`); every failure here carries the exact command,
//! shell-quoted, and the tail of its output.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::adapters::world::World;
use crate::core::error::{Error, shell_quote};

/// The oldest kind release devcluster supports: the first whose node images ship
/// local-path-provisioner v0.0.30 (ReadWriteOncePod) and `labels:` on nodes.
pub const MINIMUM_VERSION: KindVersion = KindVersion {
    major: 0,
    minor: 26,
    patch: 0,
};

/// How many lines of a failed command's output an error shows.
const OUTPUT_TAIL_LINES: usize = 20;

/// A kind release number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct KindVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl fmt::Display for KindVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl KindVersion {
    /// Parses `kind v0.32.0 go1.24.0 linux/amd64` (or just `v0.32.0`, `0.32.0-alpha`).
    pub fn parse(text: &str) -> Option<KindVersion> {
        let word = text.split_whitespace().find(|w| {
            w.trim_start_matches('v')
                .starts_with(|c: char| c.is_ascii_digit())
        })?;
        let numeric = word.trim_start_matches('v');
        let numeric = numeric.split(['-', '+']).next().unwrap_or(numeric);
        let mut parts = numeric.split('.').map(|p| p.parse::<u32>().ok());
        Some(KindVersion {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next().flatten().unwrap_or(0),
        })
    }

    /// The Kubernetes version of the node image this kind release uses by default
    /// (FIELD-NOTES §5, from kind's release notes).
    pub fn default_kubernetes_version(self) -> Option<&'static str> {
        Some(match (self.major, self.minor) {
            (0, 26) => "1.32.0",
            (0, 27) => "1.32.2",
            (0, 28) | (0, 29) => "1.33.1",
            (0, 30) => "1.34.0",
            (0, 31) => "1.35.0",
            (0, 32) => "1.36.1",
            _ => return None,
        })
    }

    /// Whether this release's default node images ship a local-path-provisioner whose
    /// helper pods lack tolerations (v0.0.32+, kind#4100; fixed after v0.32.0 by kind
    /// PR #4210).
    pub fn has_helper_toleration_regression(self) -> bool {
        self.major == 0 && (self.minor == 31 || self.minor == 32)
    }

    /// Whether this release's node images support ReadWriteOncePod volumes
    /// (local-path-provisioner v0.0.30+, from kind v0.26.0).
    pub fn supports_read_write_once_pod(self) -> bool {
        self >= MINIMUM_VERSION
    }
}

/// Where the one kind locator found kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KindSource {
    /// `DEVCLUSTER_KIND`.
    Environment,
    /// `kind` on `PATH`.
    Path,
    /// The pinned release `--install-kind` downloaded into devcluster's cache.
    Cache,
}

impl KindSource {
    pub fn describe(self) -> &'static str {
        match self {
            KindSource::Environment => "from DEVCLUSTER_KIND",
            KindSource::Path => "on PATH",
            KindSource::Cache => "devcluster's cached pinned release",
        }
    }
}

/// A `kind` executable, run with the environment devcluster was given.
#[derive(Debug, Clone)]
pub struct Kind {
    pub path: PathBuf,
    pub env: BTreeMap<String, String>,
    pub source: KindSource,
}

/// What `kind create cluster` is asked to do.
#[derive(Debug, Clone)]
pub struct CreateRequest<'a> {
    pub name: &'a str,
    /// The kind config, passed on stdin (`--config -`).
    pub config: &'a str,
    pub image: Option<&'a str>,
    pub kubeconfig: Option<&'a Path>,
    pub retain: bool,
    /// How long kind may take (a cold first run pulls a large node image).
    pub limit: Duration,
}

/// How `kind create cluster` ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// Stopped on request: kind's process group was signalled and kind has exited.
    Stopped,
}

/// Where `--install-kind` puts the pinned kind release for this platform.
pub fn cached_kind_path(world: &World) -> Option<PathBuf> {
    let dir = world.cache_dir()?;
    let platform = crate::adapters::download::platform()?;
    Some(dir.join("bin").join(format!(
        "kind-{}-{platform}",
        crate::adapters::download::KIND_RELEASE
    )))
}

impl Kind {
    /// The one way devcluster finds kind, for every command: `DEVCLUSTER_KIND`, else
    /// `kind` on `PATH`, else the pinned release `--install-kind` cached.
    pub fn locate(world: &World) -> Result<Kind, Error> {
        if let Some(path) = world.var("DEVCLUSTER_KIND") {
            let path = PathBuf::from(path);
            if path.is_file() {
                return Ok(Kind::at(path, KindSource::Environment, world));
            }
            return Err(Error::failed(format!(
                "DEVCLUSTER_KIND points to `{}`, which is not a file",
                path.display()
            ))
            .hint("unset DEVCLUSTER_KIND, or point it at a kind binary"));
        }
        let search = world.var("PATH").unwrap_or("");
        if let Ok(path) = which::which_in("kind", Some(search), &world.cwd) {
            return Ok(Kind::at(path, KindSource::Path, world));
        }
        let cached = cached_kind_path(world);
        if let Some(path) = cached.as_ref().filter(|p| p.is_file()) {
            return Ok(Kind::at(path.clone(), KindSource::Cache, world));
        }
        let looked = match &cached {
            Some(path) => format!(
                "not on PATH, DEVCLUSTER_KIND unset, not in the cache at {}",
                path.display()
            ),
            None => "not on PATH, DEVCLUSTER_KIND unset, no cache directory".to_string(),
        };
        Err(Error::failed(format!("kind is not installed ({looked})")).hint(
            "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), or run `devcluster up --install-kind`",
        ))
    }

    /// The kind binary at `path`, run in `world`'s environment.
    pub fn at(path: PathBuf, source: KindSource, world: &World) -> Kind {
        Kind {
            path,
            env: world.env.clone(),
            source,
        }
    }

    /// `/path/to/kind (on PATH)`, for doctor and error messages.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.path.display(), self.source.describe())
    }

    fn command(&self, args: &[&str]) -> (Command, String) {
        let mut command = Command::new(&self.path);
        command
            .args(args)
            .env_clear()
            .envs(&self.env)
            .kill_on_drop(true);
        let mut shown = vec![self.path.display().to_string()];
        shown.extend(args.iter().map(|a| a.to_string()));
        (command, shell_quote(&shown))
    }

    /// Runs kind to completion with a time limit; stdout on success.
    async fn output(&self, args: &[&str], limit: Duration) -> Result<String, Error> {
        let (mut command, shown) = self.command(args);
        command.stdin(Stdio::null());
        let output = tokio::time::timeout(limit, command.output())
            .await
            .map_err(|_| {
                Error::failed(format!("kind did not finish within {}s", limit.as_secs()))
                    .details(format!("command: {shown}"))
            })?
            .map_err(|e| {
                Error::failed(format!("cannot run kind at `{}`", self.path.display())).cause(e)
            })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(command_failed(
                &shown,
                output.status.code(),
                &String::from_utf8_lossy(&output.stderr),
            ))
        }
    }

    /// `kind version`.
    pub async fn version(&self) -> Result<KindVersion, Error> {
        let text = self.output(&["version"], Duration::from_secs(10)).await?;
        KindVersion::parse(&text).ok_or_else(|| {
            Error::failed(format!("cannot read kind's version from `{}`", text.trim()))
                .hint("check that DEVCLUSTER_KIND or PATH points at kind")
        })
    }

    /// `kind get clusters`: names, sorted. None is an empty list.
    pub async fn clusters(&self) -> Result<Vec<String>, Error> {
        let text = self
            .output(&["get", "clusters"], Duration::from_secs(30))
            .await?;
        let mut names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// `kind get kubeconfig --name N`.
    pub async fn kubeconfig(&self, name: &str) -> Result<String, Error> {
        self.output(
            &["get", "kubeconfig", "--name", name],
            Duration::from_secs(30),
        )
        .await
    }

    /// `kind delete cluster --name N` (idempotent in kind).
    pub async fn delete(&self, name: &str, kubeconfig: Option<&Path>) -> Result<(), Error> {
        let kubeconfig = kubeconfig.map(|p| p.display().to_string());
        let mut args = vec!["delete", "cluster", "--name", name];
        if let Some(path) = &kubeconfig {
            args.extend(["--kubeconfig", path]);
        }
        self.output(&args, Duration::from_secs(300))
            .await
            .map(|_| ())
    }

    /// `kind export logs DIR --name N`.
    pub async fn export_logs(&self, name: &str, dir: &Path) -> Result<(), Error> {
        let dir = dir.display().to_string();
        self.output(
            &["export", "logs", &dir, "--name", name],
            Duration::from_secs(300),
        )
        .await
        .map(|_| ())
    }

    /// `kind create cluster`, config on stdin, each of kind's status lines passed to
    /// `on_line` as it comes. kind runs in a process group of its own (it runs
    /// `docker` as child processes, kind `pkg/exec/local.go`), so stopping it stops
    /// those too: when `stop` resolves or `request.limit` passes, the whole group
    /// gets SIGTERM, then SIGKILL if it has not exited after [`STOP_GRACE`].
    pub async fn create(
        &self,
        request: &CreateRequest<'_>,
        mut on_line: impl FnMut(&str),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<CreateOutcome, Error> {
        let kubeconfig = request.kubeconfig.map(|p| p.display().to_string());
        let mut args = vec!["create", "cluster", "--name", request.name, "--config", "-"];
        if let Some(image) = request.image {
            args.extend(["--image", image]);
        }
        if let Some(path) = &kubeconfig {
            args.extend(["--kubeconfig", path]);
        }
        if request.retain {
            args.push("--retain");
        }
        let (mut command, shown) = self.command(&args);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The group is signalled as a whole instead (see `GroupGuard`).
            .kill_on_drop(false)
            .process_group(0)
            // kind would use KIND_CLUSTER_NAME only without --name; clear it anyway.
            .env_remove("KIND_CLUSTER_NAME");
        let mut child = command.spawn().map_err(|e| {
            Error::failed(format!("cannot run kind at `{}`", self.path.display())).cause(e)
        })?;
        let mut group = GroupGuard::new(child.id());
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(request.config.as_bytes())
                .await
                .map_err(|e| Error::failed("cannot pass the config to kind").cause(e))?;
            drop(stdin);
        }
        let mut stdout = child.stdout.take();
        let stdout_task = tokio::spawn(async move {
            let mut text = String::new();
            if let Some(out) = stdout.as_mut() {
                let _ = out.read_to_string(&mut text).await;
            }
            text
        });
        let run = async {
            let mut transcript = Vec::new();
            if let Some(stderr) = child.stderr.take() {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let clean = line.trim_end().to_string();
                    if !clean.trim().is_empty() {
                        on_line(clean.trim());
                    }
                    transcript.push(clean);
                }
            }
            (child.wait().await, transcript)
        };
        enum Ended {
            Exited((std::io::Result<std::process::ExitStatus>, Vec<String>)),
            Stopped,
            TimedOut,
        }
        tokio::pin!(run);
        let ended = tokio::select! {
            status = &mut run => Ended::Exited(status),
            () = stop => Ended::Stopped,
            () = tokio::time::sleep(request.limit) => Ended::TimedOut,
        };
        let (status, transcript) = match ended {
            Ended::Exited(ended) => ended,
            Ended::Stopped | Ended::TimedOut => {
                group.terminate();
                if tokio::time::timeout(STOP_GRACE, &mut run).await.is_err() {
                    group.kill();
                    let _ = tokio::time::timeout(STOP_GRACE, &mut run).await;
                }
                group.disarm();
                let _ = stdout_task.await;
                if matches!(ended, Ended::Stopped) {
                    return Ok(CreateOutcome::Stopped);
                }
                return Err(Error::failed(format!(
                    "kind create did not finish within {}",
                    humantime::format_duration(request.limit)
                ))
                .details(format!("command: {shown}"))
                .hint("raise `--create-timeout` (a cold first run pulls a large node image)"));
            }
        };
        group.disarm();
        let status = status.map_err(|e| Error::failed("lost track of kind").cause(e))?;
        let _ = stdout_task.await;
        if status.success() {
            Ok(CreateOutcome::Created)
        } else {
            Err(command_failed(
                &shown,
                status.code(),
                &transcript.join("\n"),
            ))
        }
    }
}

/// How long kind's process group has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Signals kind's process group when a create is abandoned (its future dropped),
/// so no `docker` child of kind outlives devcluster.
struct GroupGuard {
    group: Option<nix::unistd::Pid>,
}

impl GroupGuard {
    fn new(pid: Option<u32>) -> GroupGuard {
        GroupGuard {
            group: pid
                .and_then(|p| i32::try_from(p).ok())
                .map(nix::unistd::Pid::from_raw),
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(group) = self.group {
            let _ = nix::sys::signal::killpg(group, signal);
        }
    }

    fn terminate(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    fn kill(&self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
    }

    /// kind has exited: nothing to signal any more.
    fn disarm(&mut self) {
        self.group = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.group.is_some() {
            self.terminate();
            let group = self.group.take();
            std::thread::spawn(move || {
                std::thread::sleep(STOP_GRACE);
                if let Some(group) = group {
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                }
            });
        }
    }
}

/// An error for a command that exited non-zero: the pasteable command and the
/// tail of what it printed.
pub fn command_failed(shown: &str, code: Option<i32>, output: &str) -> Error {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(OUTPUT_TAIL_LINES)..];
    let reason = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("ERROR:"))
        .map(|l| l.trim_start_matches("ERROR:").trim().to_string())
        .unwrap_or_else(|| match code {
            Some(code) => format!("exited with code {code}"),
            None => "was killed by a signal".to_string(),
        });
    let mut details = format!("command: {shown}\n");
    if !tail.is_empty() {
        details.push_str("output (last lines):\n");
        for line in tail {
            details.push_str(&format!("  {line}\n"));
        }
    }
    Error::failed("kind failed")
        .cause(reason)
        .details(details.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_versions() {
        assert_eq!(
            KindVersion::parse("kind v0.32.0 go1.24.0 linux/amd64"),
            Some(KindVersion {
                major: 0,
                minor: 32,
                patch: 0
            })
        );
        assert_eq!(
            KindVersion::parse("kind v0.27.0-alpha+abc go1.22 darwin/arm64"),
            Some(KindVersion {
                major: 0,
                minor: 27,
                patch: 0
            })
        );
        assert_eq!(KindVersion::parse("kind version unknown"), None);
        assert!(KindVersion::parse("kind v0.25.0 go").is_some_and(|v| v < MINIMUM_VERSION));
    }

    #[test]
    fn version_gated_features() {
        let v = |minor| KindVersion {
            major: 0,
            minor,
            patch: 0,
        };
        assert!(v(31).has_helper_toleration_regression());
        assert!(v(32).has_helper_toleration_regression());
        assert!(!v(30).has_helper_toleration_regression());
        assert!(v(26).supports_read_write_once_pod());
        assert!(!v(25).supports_read_write_once_pod());
        assert_eq!(v(32).default_kubernetes_version(), Some("1.36.1"));
    }

    #[test]
    fn failed_command_shows_command_and_error_line() {
        let error = command_failed(
            "kind create cluster --name x",
            Some(1),
            "Creating cluster \"x\" ...\nERROR: failed to create cluster: port is already allocated\n",
        );
        assert_eq!(
            error.causes,
            vec!["failed to create cluster: port is already allocated"]
        );
        let details = error.details.unwrap_or_default();
        assert!(details.contains("command: kind create cluster --name x"));
        assert!(details.contains("Creating cluster"));
    }
}
