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

use futures_util::future::BoxFuture;

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

/// Why finding or running kind failed. [`Error`]'s `From` below is the one place
/// these become what a person reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// `DEVCLUSTER_KIND` names something that is not a file.
    #[error("DEVCLUSTER_KIND points to `{}`, which is not a file", .0.display())]
    NotAFile(PathBuf),
    /// Not in `DEVCLUSTER_KIND`, on `PATH`, or in the cache; `looked` says where.
    #[error("kind is not installed ({looked})")]
    NotInstalled { looked: String },
    /// A release older than [`MINIMUM_VERSION`]; `location` is [`Kind::describe`].
    #[error(
        "kind {found} is older than {MINIMUM_VERSION}, the oldest devcluster supports; at {location}"
    )]
    TooOld {
        found: KindVersion,
        location: String,
    },
    /// `kind version` printed something that is not a version.
    #[error("cannot read kind's version from `{output}`")]
    UnreadableVersion { output: String },
    /// The binary could not be started.
    #[error("cannot run kind at `{}`: {reason}", path.display())]
    CannotRun { path: PathBuf, reason: String },
    /// kind ran past its time limit and was stopped. `command` is shell-quoted.
    #[error("kind {action} did not finish within {}", humantime::format_duration(*limit))]
    TimedOut {
        action: String,
        command: String,
        limit: Duration,
    },
    /// kind exited non-zero. `reason` is kind's last `ERROR:` line (else the exit
    /// status), `command` the shell-quoted command, `output` the tail of what kind
    /// printed.
    #[error("kind {action} failed: {reason}")]
    Failed {
        action: String,
        reason: String,
        command: String,
        output: Vec<String>,
    },
    /// Talking to the running kind process failed (its stdin, its exit status).
    #[error("{what}: {reason}")]
    Process { what: String, reason: String },
}

impl KindError {
    /// The next step, when there is one to suggest.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            KindError::NotAFile(_) => "unset DEVCLUSTER_KIND, or point it at a kind binary".into(),
            KindError::NotInstalled { .. } => "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), or run `devcluster up --install-kind`".into(),
            KindError::TooOld { .. } => {
                "upgrade kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)".into()
            }
            KindError::UnreadableVersion { .. } => {
                "check that DEVCLUSTER_KIND or PATH points at kind".into()
            }
            KindError::TimedOut { action, .. } if action == "create cluster" => {
                "raise `--create-timeout` (a cold first run pulls a large node image)".into()
            }
            _ => return None,
        })
    }
}

impl From<KindError> for Error {
    /// The headline says which kind command failed and how; the pasteable command
    /// and kind's last lines follow.
    fn from(error: KindError) -> Error {
        let hint = error.hint();
        let rendered = match &error {
            KindError::CannotRun { path, reason } => {
                Error::failed(format!("cannot run kind at `{}`", path.display())).cause(reason)
            }
            KindError::TimedOut { command, .. } => {
                Error::failed(error.to_string()).details(format!("command: {command}"))
            }
            KindError::Failed {
                action,
                reason,
                command,
                output,
            } => {
                let mut details = format!("command: {command}");
                if !output.is_empty() {
                    details.push_str("\noutput (last lines):");
                    for line in output {
                        details.push_str(&format!("\n  {line}"));
                    }
                }
                Error::failed(format!("kind {action} failed"))
                    .cause(reason)
                    .details(details)
            }
            KindError::Process { what, reason } => Error::failed(what.clone()).cause(reason),
            _ => Error::failed(error.to_string()),
        };
        match hint {
            Some(hint) => rendered.hint(hint),
            None => rendered,
        }
    }
}

/// The cluster provider: the subset of kind's CLI devcluster drives, in
/// devcluster's types. [`Kind`] runs the real binary; a test hands the
/// command's context a double with canned answers instead.
pub trait ClusterProvider: Send + Sync {
    /// Where the provider is, for doctor and error messages.
    fn describe(&self) -> String;
    /// `kind version`.
    fn version(&self) -> BoxFuture<'_, Result<KindVersion, KindError>>;
    /// `kind get clusters`: names, sorted.
    fn clusters(&self) -> BoxFuture<'_, Result<Vec<String>, KindError>>;
    /// `kind get kubeconfig --name N`.
    fn kubeconfig<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, KindError>>;
    /// `kind delete cluster --name N`.
    fn delete<'a>(
        &'a self,
        name: &'a str,
        kubeconfig: Option<&'a Path>,
    ) -> BoxFuture<'a, Result<(), KindError>>;
    /// `kind export logs DIR --name N`.
    fn export_logs<'a>(
        &'a self,
        name: &'a str,
        dir: &'a Path,
    ) -> BoxFuture<'a, Result<(), KindError>>;
    /// `kind create cluster` (see [`Kind::create`]).
    fn create<'a>(
        &'a self,
        request: &'a CreateRequest<'a>,
        on_line: &'a mut (dyn FnMut(&str) + Send),
        stop: BoxFuture<'a, ()>,
    ) -> BoxFuture<'a, Result<CreateOutcome, KindError>>;
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
    pub fn locate(world: &World) -> Result<Kind, KindError> {
        if let Some(path) = world.var("DEVCLUSTER_KIND") {
            let path = PathBuf::from(path);
            if path.is_file() {
                return Ok(Kind::at(path, KindSource::Environment, world));
            }
            return Err(KindError::NotAFile(path));
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
        Err(KindError::NotInstalled { looked })
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

    /// The command, and how it is shown: shell-quoted, ready to paste.
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

    fn cannot_run(&self, error: std::io::Error) -> KindError {
        KindError::CannotRun {
            path: self.path.clone(),
            reason: error.to_string(),
        }
    }

    /// Runs kind to completion with a time limit; stdout on success.
    async fn output(&self, args: &[&str], limit: Duration) -> Result<String, KindError> {
        let (mut command, shown) = self.command(args);
        command.stdin(Stdio::null());
        let output = tokio::time::timeout(limit, command.output())
            .await
            .map_err(|_| KindError::TimedOut {
                action: action(args),
                command: shown.clone(),
                limit,
            })?
            .map_err(|e| self.cannot_run(e))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(command_failed(
                args,
                &shown,
                output.status.code(),
                &String::from_utf8_lossy(&output.stderr),
            ))
        }
    }

    pub async fn version(&self) -> Result<KindVersion, KindError> {
        let text = self.output(&["version"], Duration::from_secs(10)).await?;
        KindVersion::parse(&text).ok_or_else(|| KindError::UnreadableVersion {
            output: text.trim().to_string(),
        })
    }

    pub async fn clusters(&self) -> Result<Vec<String>, KindError> {
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

    pub async fn kubeconfig(&self, name: &str) -> Result<String, KindError> {
        self.output(
            &["get", "kubeconfig", "--name", name],
            Duration::from_secs(30),
        )
        .await
    }

    pub async fn delete(&self, name: &str, kubeconfig: Option<&Path>) -> Result<(), KindError> {
        let kubeconfig = kubeconfig.map(|p| p.display().to_string());
        let mut args = vec!["delete", "cluster", "--name", name];
        if let Some(path) = &kubeconfig {
            args.extend(["--kubeconfig", path]);
        }
        self.output(&args, Duration::from_secs(300))
            .await
            .map(|_| ())
    }

    /// `kind export logs DIR --name NAME`. kind runs a `docker exec` per node and
    /// log (kind `pkg/cluster/internal/providers/docker/provider.go`,
    /// `CollectLogs`), which hang on a node that does not answer; kind runs in a
    /// process group of its own, so when the export is abandoned (its future
    /// dropped, or its time up) the whole group is stopped, not kind alone.
    pub async fn export_logs(&self, name: &str, dir: &Path) -> Result<(), KindError> {
        let dir = dir.display().to_string();
        let args = ["export", "logs", &dir, "--name", name];
        let limit = Duration::from_secs(300);
        let (mut command, shown) = self.command(&args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false)
            .process_group(0);
        let child = command.spawn().map_err(|e| self.cannot_run(e))?;
        let mut group = GroupGuard::new(child.id());
        let output = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| KindError::TimedOut {
                action: action(&args),
                command: shown.clone(),
                limit,
            })?
            .map_err(|e| self.cannot_run(e))?;
        group.disarm();
        if output.status.success() {
            Ok(())
        } else {
            Err(command_failed(
                &args,
                &shown,
                output.status.code(),
                &String::from_utf8_lossy(&output.stderr),
            ))
        }
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
    ) -> Result<CreateOutcome, KindError> {
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
        let mut child = command.spawn().map_err(|e| self.cannot_run(e))?;
        let mut group = GroupGuard::new(child.id());
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(request.config.as_bytes())
                .await
                .map_err(|e| KindError::Process {
                    what: "cannot pass the config to kind".into(),
                    reason: e.to_string(),
                })?;
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
                return Err(KindError::TimedOut {
                    action: action(&args),
                    command: shown,
                    limit: request.limit,
                });
            }
        };
        group.disarm();
        let status = status.map_err(|e| KindError::Process {
            what: "lost track of kind".into(),
            reason: e.to_string(),
        })?;
        let _ = stdout_task.await;
        if status.success() {
            Ok(CreateOutcome::Created)
        } else {
            Err(command_failed(
                &args,
                &shown,
                status.code(),
                &transcript.join("\n"),
            ))
        }
    }
}

impl ClusterProvider for Kind {
    fn describe(&self) -> String {
        Kind::describe(self)
    }

    fn version(&self) -> BoxFuture<'_, Result<KindVersion, KindError>> {
        Box::pin(Kind::version(self))
    }

    fn clusters(&self) -> BoxFuture<'_, Result<Vec<String>, KindError>> {
        Box::pin(Kind::clusters(self))
    }

    fn kubeconfig<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, KindError>> {
        Box::pin(Kind::kubeconfig(self, name))
    }

    fn delete<'a>(
        &'a self,
        name: &'a str,
        kubeconfig: Option<&'a Path>,
    ) -> BoxFuture<'a, Result<(), KindError>> {
        Box::pin(Kind::delete(self, name, kubeconfig))
    }

    fn export_logs<'a>(
        &'a self,
        name: &'a str,
        dir: &'a Path,
    ) -> BoxFuture<'a, Result<(), KindError>> {
        Box::pin(Kind::export_logs(self, name, dir))
    }

    fn create<'a>(
        &'a self,
        request: &'a CreateRequest<'a>,
        on_line: &'a mut (dyn FnMut(&str) + Send),
        stop: BoxFuture<'a, ()>,
    ) -> BoxFuture<'a, Result<CreateOutcome, KindError>> {
        Box::pin(Kind::create(self, request, on_line, stop))
    }
}

/// The kind subcommand in `args`, e.g. `create cluster`, for headlines.
fn action(args: &[&str]) -> String {
    args.iter()
        .take_while(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_lowercase()))
        .take(2)
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
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

/// A command that exited non-zero: kind's last `ERROR:` line as the reason, the
/// pasteable command, and the tail of what it printed.
fn command_failed(args: &[&str], shown: &str, code: Option<i32>, output: &str) -> KindError {
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
    KindError::Failed {
        action: action(args),
        reason,
        command: shown.to_string(),
        output: tail.iter().map(|l| l.to_string()).collect(),
    }
}

/// A cluster provider with a canned `kind version`, for tests of what decides by
/// it (and, when set, canned logs and kubeconfig); every other call fails as a kind
/// that is not there would.
#[cfg(test)]
pub(crate) mod canned {
    use super::*;

    pub(crate) struct CannedProvider {
        pub version: Result<KindVersion, KindError>,
        pub export: Option<CannedExport>,
        /// What `kind get kubeconfig` prints, for any cluster.
        pub kubeconfig: Option<String>,
    }

    /// What `kind export logs` does in a test.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum CannedExport {
        /// Writes the control plane's kubelet log, then fails as kind does on a
        /// node without crictl (it reports every failed command at the end).
        FailsAfterWriting,
        /// Never returns, as on a node that hangs.
        Hangs,
    }

    impl CannedProvider {
        pub(crate) fn release(major: u32, minor: u32, patch: u32) -> CannedProvider {
            CannedProvider {
                version: Ok(KindVersion {
                    major,
                    minor,
                    patch,
                }),
                export: None,
                kubeconfig: None,
            }
        }

        /// A kind that only exports logs, as `export` says.
        pub(crate) fn exporting(export: CannedExport) -> CannedProvider {
            CannedProvider {
                export: Some(export),
                ..CannedProvider::release(0, 31, 0)
            }
        }
    }

    fn not_canned<T: Send + 'static>() -> BoxFuture<'static, Result<T, KindError>> {
        Box::pin(async {
            Err(KindError::Process {
                what: "not canned in this test".into(),
                reason: "only `kind version` is".into(),
            })
        })
    }

    impl ClusterProvider for CannedProvider {
        fn describe(&self) -> String {
            "/canned/kind (from DEVCLUSTER_KIND)".into()
        }

        fn version(&self) -> BoxFuture<'_, Result<KindVersion, KindError>> {
            Box::pin(async { self.version.clone() })
        }

        fn clusters(&self) -> BoxFuture<'_, Result<Vec<String>, KindError>> {
            not_canned()
        }

        fn kubeconfig<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, Result<String, KindError>> {
            match self.kubeconfig.clone() {
                Some(text) => Box::pin(async move { Ok(text) }),
                None => not_canned(),
            }
        }

        fn delete<'a>(
            &'a self,
            _name: &'a str,
            _kubeconfig: Option<&'a Path>,
        ) -> BoxFuture<'a, Result<(), KindError>> {
            not_canned()
        }

        fn export_logs<'a>(
            &'a self,
            name: &'a str,
            dir: &'a Path,
        ) -> BoxFuture<'a, Result<(), KindError>> {
            let Some(export) = self.export else {
                return not_canned();
            };
            Box::pin(async move {
                if export == CannedExport::Hangs {
                    std::future::pending::<()>().await;
                }
                let node = dir.join(format!("{name}-control-plane"));
                std::fs::create_dir_all(&node).map_err(|e| KindError::Process {
                    what: "mkdir".into(),
                    reason: e.to_string(),
                })?;
                let _ = std::fs::write(node.join("kubelet.log"), "kubelet started\n");
                Err(KindError::Failed {
                    action: "export logs".into(),
                    reason: format!(
                        "command \"docker exec --privileged {name}-control-plane crictl images\" failed with error: exit status 127"
                    ),
                    command: format!("kind export logs {} --name {name}", dir.display()),
                    output: Vec::new(),
                })
            })
        }

        fn create<'a>(
            &'a self,
            _request: &'a CreateRequest<'a>,
            _on_line: &'a mut (dyn FnMut(&str) + Send),
            _stop: BoxFuture<'a, ()>,
        ) -> BoxFuture<'a, Result<CreateOutcome, KindError>> {
            not_canned()
        }
    }
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
        let error = Error::from(command_failed(
            &["create", "cluster", "--name", "x"],
            "kind create cluster --name x",
            Some(1),
            "Creating cluster \"x\" ...\nERROR: failed to create cluster: port is already allocated\n",
        ));
        assert_eq!(
            error.causes,
            vec!["failed to create cluster: port is already allocated"]
        );
        let details = error.details.unwrap_or_default();
        assert!(details.contains("command: kind create cluster --name x"));
        assert!(details.contains("Creating cluster"));
    }

    #[test]
    fn the_failed_kind_command_is_the_headline_with_its_reason_and_command() {
        let failed = Error::from(KindError::Failed {
            action: "delete cluster".into(),
            reason: "exited with code 1".into(),
            command: "/usr/bin/kind delete cluster --name 'a b'".into(),
            output: vec!["Deleting cluster \"a b\" ...".into()],
        });
        assert_eq!(
            failed.render(),
            "error: kind delete cluster failed\nCaused by: exited with code 1\n  command: /usr/bin/kind delete cluster --name 'a b'\n  output (last lines):\n    Deleting cluster \"a b\" ...\n"
        );
        let limit = Duration::from_secs(2);
        let create = Error::from(KindError::TimedOut {
            action: "create cluster".into(),
            command: "kind create cluster --name x --config -".into(),
            limit,
        });
        let text = create.render();
        assert!(
            text.starts_with("error: kind create cluster did not finish within 2s\n"),
            "{text}"
        );
        assert!(text.contains("hint: raise `--create-timeout`"), "{text}");
        let version = KindError::TimedOut {
            action: "version".into(),
            command: "kind version".into(),
            limit,
        };
        assert_eq!(version.hint(), None);
    }

    fn world_with(env: &[(&str, &str)], cwd: &Path) -> World {
        World {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: cwd.to_path_buf(),
            ..World::default()
        }
    }

    #[test]
    fn locating_kind_fails_with_where_it_looked() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let not_a_file = dir.path().display().to_string();
        let error = Kind::locate(&world_with(&[("DEVCLUSTER_KIND", &not_a_file)], dir.path()))
            .err()
            .unwrap_or_else(|| panic!("a directory was taken for kind"));
        assert_eq!(error, KindError::NotAFile(dir.path().to_path_buf()));
        let rendered = Error::from(error);
        assert_eq!(
            rendered.hint.as_deref(),
            Some("unset DEVCLUSTER_KIND, or point it at a kind binary")
        );
        let missing = Kind::locate(&world_with(&[("PATH", &not_a_file)], dir.path()))
            .err()
            .unwrap_or_else(|| panic!("kind found in an empty directory"));
        assert_eq!(
            missing.to_string(),
            "kind is not installed (not on PATH, DEVCLUSTER_KIND unset, no cache directory)"
        );
    }

    /// A `kind` that fails the way kind does (kind `pkg/cmd/kind/root.go`: the
    /// error on stderr as `ERROR: ...`, exit status 1).
    #[cfg(unix)]
    #[tokio::test]
    async fn a_failing_kind_reports_its_error_line_and_the_pasteable_command() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("kind");
        std::fs::write(
            &path,
            "#!/bin/sh\necho 'Deleting cluster ...' >&2\necho 'ERROR: failed to delete cluster: boom' >&2\nexit 1\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        let kind = Kind::at(path.clone(), KindSource::Environment, &World::default());
        let provider: &dyn ClusterProvider = &kind;
        // Another test thread forking while the script was open for writing
        // makes exec fail with ETXTBSY for a moment; that is not what is tested.
        let mut error = None;
        for _ in 0..20 {
            match provider.delete("it's", None).await {
                Err(KindError::CannotRun { reason, .. }) if reason.contains("busy") => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => {
                    error = other.err();
                    break;
                }
            }
        }
        let error = error.unwrap_or_else(|| panic!("the failing kind succeeded"));
        assert_eq!(
            error,
            KindError::Failed {
                action: "delete cluster".into(),
                reason: "failed to delete cluster: boom".into(),
                command: shell_quote(&[
                    path.display().to_string().as_str(),
                    "delete",
                    "cluster",
                    "--name",
                    "it's"
                ]),
                output: vec![
                    "Deleting cluster ...".into(),
                    "ERROR: failed to delete cluster: boom".into()
                ],
            }
        );
        // The rendered form of the same call, as `up` and `down` get it.
        let rendered = kind
            .delete("it's", None)
            .await
            .err()
            .map(|e| Error::from(e).render());
        assert!(
            rendered.as_deref().is_some_and(|r| r.starts_with(
                "error: kind delete cluster failed\nCaused by: failed to delete cluster: boom\n"
            )),
            "{rendered:?}"
        );
    }
}
