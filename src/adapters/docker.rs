//! The Docker Engine, through bollard: the only module that uses a Docker client
//! type. The rest of devcluster speaks the `Observed*` types below.
//!
//! bollard 0.21 sends unversioned request paths, so the daemon answers in its own
//! API version: every response field is treated as optional.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptionsBuilder, InspectContainerOptions,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::adapters::world::World;
use crate::core::error::Error;

/// Default per-call time limit for ordinary calls ([`Docker::with_timeouts`] changes it).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `connect` waits for the daemon's first answer.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// Default time limit for a command run with `exec`.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// The default socket of the docker CLI on Linux and in Docker Desktop's VM.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// kind's container labels (kind `pkg/cluster/internal/providers/docker/constants.go`).
pub const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
pub const ROLE_LABEL: &str = "io.x-k8s.kind.role";

/// Why a Docker call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DockerError {
    /// The daemon could not be reached at `endpoint`.
    #[error("cannot reach the Docker daemon at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// The call did not answer within its timeout.
    #[error("Docker did not answer `{operation}` within {seconds}s")]
    Timeout { operation: String, seconds: u64 },
    /// No such container.
    #[error("no container named `{0}`")]
    NotFound(String),
    /// Anything else the engine reported.
    #[error("Docker failed `{operation}`: {reason}")]
    Failed { operation: String, reason: String },
}

impl From<DockerError> for Error {
    /// An engine that does not answer says how to get one; any other failure
    /// names the call.
    fn from(error: DockerError) -> Error {
        match &error {
            DockerError::Unreachable { .. } | DockerError::Timeout { .. } => {
                Error::failed("Docker is not reachable").cause(error).hint(
                    "start Docker (or Docker Desktop/Colima), check `DOCKER_HOST`, then run `devcluster doctor`",
                )
            }
            _ => Error::failed("a Docker call failed").cause(error),
        }
    }
}

/// The node runtime: what devcluster reads and runs in kind's node containers,
/// in devcluster's types. [`Docker`] talks to the engine; a test hands the
/// command's context a double with canned answers instead.
pub trait NodeRuntime: Send + Sync {
    /// Where the engine is, e.g. `unix:///var/run/docker.sock`.
    fn endpoint(&self) -> &str;
    /// What the engine says about itself.
    fn info(&self) -> BoxFuture<'_, Result<EngineInfo, DockerError>>;
    /// Node containers of `cluster` (all kind clusters when `None`), sorted by name.
    fn list_nodes<'a>(
        &'a self,
        cluster: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<ObservedNode>, DockerError>>;
    /// One container, kind node or not.
    fn inspect<'a>(
        &'a self,
        container: &'a str,
    ) -> BoxFuture<'a, Result<ObservedNode, DockerError>>;
    /// Runs `command` in `container`; a non-zero exit is an `Ok` with that code.
    fn exec<'a>(
        &'a self,
        container: &'a str,
        command: &'a [&'a str],
    ) -> BoxFuture<'a, Result<ExecOutput, DockerError>>;
    /// Like [`NodeRuntime::exec`], with `stdin` fed to the command.
    fn exec_with_stdin<'a>(
        &'a self,
        container: &'a str,
        command: &'a [&'a str],
        stdin: &'a [u8],
    ) -> BoxFuture<'a, Result<ExecOutput, DockerError>>;
    /// The regular file `path` in `container`, running or stopped; `None` when the
    /// container or the file does not exist.
    fn read_file<'a>(
        &'a self,
        container: &'a str,
        path: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, DockerError>>;
    /// Every host port the running containers publish.
    fn published_ports(&self) -> BoxFuture<'_, Result<Vec<PublishedPort>, DockerError>>;
    /// The Kubernetes version a local node image records in `/kind/version`.
    fn image_kubernetes_version<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, Result<ImageVersion, DockerError>>;

    /// The image `name` in the engine's own store; `None` when it is not there.
    fn local_image<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<LocalImage>, DockerError>>;
    /// Runs `command` in `container` with `docker save` of `images` streamed into
    /// its stdin (what kind's `load docker-image` feeds `ctr images import`), for at
    /// most `limit`; a non-zero exit is an `Ok` with that code.
    fn import_images<'a>(
        &'a self,
        container: &'a str,
        images: &'a [&'a str],
        command: &'a [&'a str],
        limit: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, DockerError>>;

    /// The running container publishing `host_port`/`protocol`, if any.
    fn port_holder<'a>(
        &'a self,
        host_port: u16,
        protocol: &'a str,
    ) -> BoxFuture<'a, Result<Option<PortHolder>, DockerError>> {
        Box::pin(async move {
            Ok(holder_of(
                self.published_ports().await?,
                host_port,
                protocol,
            ))
        })
    }

    /// Creates and starts a container that is not a kind node (the local
    /// registry), pulling its image first when the engine does not have it.
    fn run_container<'a>(
        &'a self,
        spec: &'a ContainerSpec<'a>,
    ) -> BoxFuture<'a, Result<(), DockerError>>;
    /// Starts a stopped container.
    fn start_container<'a>(&'a self, container: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    /// Removes a container and its anonymous volumes, running or not.
    fn remove_container<'a>(&'a self, container: &'a str)
    -> BoxFuture<'a, Result<(), DockerError>>;
    /// The networks `container` is connected to, by name.
    fn container_networks<'a>(
        &'a self,
        container: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, DockerError>>;
    /// Connects `container` to `network`.
    fn connect_network<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
    ) -> BoxFuture<'a, Result<(), DockerError>>;
    /// Makes sure the engine has `image`, pulling it when it does not.
    fn ensure_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
    /// Gives `image` the extra name `repository:tag`.
    fn tag_image<'a>(
        &'a self,
        image: &'a str,
        repository: &'a str,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<(), DockerError>>;
    /// Pushes `repository:tag` to the registry its name starts with.
    fn push_image<'a>(
        &'a self,
        repository: &'a str,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<(), DockerError>>;
    /// Removes the name `image` (the image stays while other names hold it).
    fn untag_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), DockerError>>;
}

/// A container devcluster runs next to the nodes: its name, image, labels and
/// the one port it publishes (the local registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub labels: BTreeMap<String, String>,
    pub publish: WantedPort<'a>,
    /// Restart with the engine (`--restart=always`), as kind's registry guide runs it.
    pub restart_always: bool,
}

/// How long an image pull or push may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);

/// The container in `published` that publishes `host_port`/`protocol`.
fn holder_of(published: Vec<PublishedPort>, host_port: u16, protocol: &str) -> Option<PortHolder> {
    published
        .into_iter()
        .find(|p| {
            p.host_port == host_port
                && (p.protocol.is_empty() || p.protocol.eq_ignore_ascii_case(protocol))
        })
        .map(|p| PortHolder {
            container: p.container,
            cluster: p.cluster,
        })
}

/// Which product runs the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineFlavor {
    DockerDesktop,
    Colima,
    Podman,
    Native,
}

/// What the engine says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineInfo {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
    pub flavor: EngineFlavor,
    /// `1` or `2` when the engine reports it.
    pub cgroup_version: Option<u8>,
    pub data_root: Option<String>,
    pub cpus: Option<u64>,
    pub memory_bytes: Option<u64>,
    /// Rootless engine (ports below 1024 cannot be published).
    pub rootless: bool,
}

/// A bind or volume of a container, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedMount {
    /// Host path for binds, volume name for volumes.
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// `rprivate`, `rslave`, `rshared`, ... (empty when not reported).
    pub propagation: String,
    /// Docker's mode string, e.g. `ro,Z`.
    pub mode: String,
    /// `bind`, `volume`, `tmpfs`.
    pub kind: String,
}

/// One published port of a container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedPort {
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`, as Docker writes it.
    pub protocol: String,
    pub host_ip: String,
    pub host_port: u16,
}

/// A kind node container as Docker sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedNode {
    pub name: String,
    pub cluster: String,
    /// `control-plane`, `worker` or `external-load-balancer`.
    pub role: String,
    /// `running`, `exited`, `created`, ...
    pub state: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub mounts: Vec<ObservedMount>,
    /// The host bindings the engine reports now (`NetworkSettings.Ports`); empty
    /// for a stopped container, and on Docker Desktop releases that report them
    /// empty (docker/for-mac#7787).
    pub ports: Vec<ObservedPort>,
    /// The bindings the container was created with (`HostConfig.PortBindings`):
    /// what kind asked for. A host port of 0 means "Docker picks".
    pub requested_ports: Vec<ObservedPort>,
}

/// How one wanted host binding shows in what the engine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The engine reports it. When the engine reports another address for the
    /// right host port while the container was created with the wanted one (Docker
    /// Desktop 4.42+ rewrites `HostIp`: docker/for-mac#7737, #7742), the binding
    /// carries the requested address.
    Published(ObservedPort),
    /// The engine reports no host binding at all for the container port, while the
    /// container was created with the wanted one, or with a blank one (Docker
    /// Desktop 4.42 to 4.48: docker/for-mac#7787). Nothing contradicts it, nothing
    /// confirms it.
    Unconfirmed(ObservedPort),
    /// The container was not created with it, or the engine reports another one.
    Missing,
}

/// What devcluster wants published: kind's `extraPortMappings` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedPort<'a> {
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: &'a str,
    /// 1-65535, or 0/-1 when kind or Docker picks the port.
    pub host_port: i32,
    pub listen_address: &'a str,
}

/// Whether a reported host address is the wanted listen address; Docker writes a
/// wildcard as `0.0.0.0`, `::` or nothing.
fn same_address(reported: &str, wanted: &str) -> bool {
    let wildcard = |a: &str| a.is_empty() || a == "0.0.0.0" || a == "::";
    reported == wanted || (wildcard(reported) && wildcard(wanted))
}

impl ObservedNode {
    /// How `wanted` shows on this container, from both of Docker's views.
    pub fn binding(&self, wanted: &WantedPort<'_>) -> Binding {
        let same_port = |p: &&ObservedPort| {
            p.container_port == wanted.container_port
                && p.protocol.eq_ignore_ascii_case(wanted.protocol)
        };
        let host_port_ok =
            |p: &ObservedPort| wanted.host_port <= 0 || i32::from(p.host_port) == wanted.host_port;
        let live: Vec<&ObservedPort> = self
            .ports
            .iter()
            .filter(same_port)
            .filter(|p| p.host_port != 0)
            .collect();
        let requested: Vec<&ObservedPort> = self.requested_ports.iter().filter(same_port).collect();
        let asked = requested.iter().find(|p| {
            (p.host_port == 0 && wanted.host_port <= 0 || host_port_ok(p))
                && same_address(&p.host_ip, wanted.listen_address)
        });
        if let Some(found) = live
            .iter()
            .find(|p| host_port_ok(p) && same_address(&p.host_ip, wanted.listen_address))
        {
            return Binding::Published((*found).clone());
        }
        if let (Some(asked), Some(found)) = (asked, live.iter().find(|p| host_port_ok(p))) {
            return Binding::Published(ObservedPort {
                host_ip: asked.host_ip.clone(),
                ..(*found).clone()
            });
        }
        if live.is_empty() {
            if let Some(asked) = asked {
                return Binding::Unconfirmed((*asked).clone());
            }
            if let Some(blank) = requested
                .iter()
                .find(|p| p.host_ip.is_empty() && p.host_port == 0)
            {
                return Binding::Unconfirmed((*blank).clone());
            }
        }
        Binding::Missing
    }
}

/// Output of a command run in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i64,
}

/// An image in the engine's own store (`docker image inspect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalImage {
    /// The name it was asked for, e.g. `my-app:dev`.
    pub name: String,
    /// The engine's image ID, `sha256:...`: the digest of the image's config (of
    /// its index or manifest with Docker's containerd image store).
    pub id: String,
}

/// Who publishes a host port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortHolder {
    pub container: String,
    /// The kind cluster the container belongs to, if it is a kind node.
    pub cluster: Option<String>,
}

/// A host port a running container publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedPort {
    pub container: String,
    /// The kind cluster the container belongs to, if it is a kind node.
    pub cluster: Option<String>,
    /// The host address (`0.0.0.0`, `::`, `127.0.0.1`; empty when not reported).
    pub host_ip: String,
    pub host_port: u16,
    /// `tcp`, `udp` or `sctp` (empty when not reported).
    pub protocol: String,
}

/// What a node image says about its Kubernetes version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageVersion {
    /// `/kind/version` holds it, e.g. `v1.20.2`.
    Version(String),
    /// The image is here but has no `/kind/version`: not a kind node image.
    NoVersionFile,
    /// The image is not on this engine (kind will pull it).
    NotPresent,
}

/// Where a kind node image records its Kubernetes version, one line such as
/// `v1.36.1` (kind reads it with `cat` in `pkg/cluster/nodeutils/util.go`,
/// `KubeVersion`).
const KIND_VERSION_FILE: &str = "/kind/version";
/// A node image's version file is one short line; anything longer is not one.
const MAX_VERSION_FILE: usize = 4096;

/// A connected Docker Engine client.
#[derive(Debug, Clone)]
pub struct Docker {
    client: bollard::Docker,
    endpoint: String,
    timeout: Duration,
    exec_timeout: Duration,
}

/// Where the docker CLI would connect, and why (kind runs the docker CLI, so
/// devcluster must reach the same engine). Order as in the docker CLI's
/// `cli/command/cli.go` `resolveContextName` and `resolveDockerEndpoint`:
/// `DOCKER_HOST`, then the context named by `DOCKER_CONTEXT` or `currentContext` in
/// `config.json`, then the default.
pub fn resolve_endpoint(world: &World) -> (String, String) {
    if let Some(host) = world.var("DOCKER_HOST") {
        return (host.to_string(), "DOCKER_HOST".to_string());
    }
    let config_dir = world
        .var("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| world.home.as_ref().map(|h| h.join(".docker")));
    let context = world.var("DOCKER_CONTEXT").map(str::to_string).or_else(|| {
        let config = std::fs::read_to_string(config_dir.as_ref()?.join("config.json")).ok()?;
        let value: serde_json::Value = serde_json::from_str(&config).ok()?;
        value.get("currentContext")?.as_str().map(str::to_string)
    });
    if let (Some(context), Some(dir)) = (context.filter(|c| c != "default"), config_dir.as_ref())
        && let Some(host) = context_endpoint(dir, &context)
    {
        return (host, format!("docker context `{context}`"));
    }
    (DEFAULT_HOST.to_string(), "the default socket".to_string())
}

/// A context's Docker endpoint: `contexts/meta/<sha256 of name>/meta.json`
/// (docker CLI `cli/context/store/metadatastore.go`).
fn context_endpoint(config_dir: &Path, context: &str) -> Option<String> {
    let digest: String = Sha256::digest(context.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let meta = config_dir
        .join("contexts/meta")
        .join(digest)
        .join("meta.json");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta).ok()?).ok()?;
    value
        .pointer("/Endpoints/docker/Host")?
        .as_str()
        .map(str::to_string)
}

/// An error with its causes, `outer: inner: innermost`, so "connection refused"
/// survives bollard's and hyper's wrapping.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Reads an attached exec's output to its end: stdout (and a TTY's console), stderr.
async fn drain(
    mut output: std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<bollard::container::LogOutput, bollard::errors::Error>,
                > + Send,
        >,
    >,
) -> Result<(Vec<u8>, Vec<u8>), DockerError> {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(chunk) = output.next().await {
        match chunk.map_err(|e| failed("exec", e))? {
            bollard::container::LogOutput::StdOut { message }
            | bollard::container::LogOutput::Console { message } => {
                stdout.extend_from_slice(&message)
            }
            bollard::container::LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
            bollard::container::LogOutput::StdIn { .. } => {}
        }
    }
    Ok((stdout, stderr))
}

fn exec_output((stdout, stderr): (Vec<u8>, Vec<u8>), exit_code: i64) -> ExecOutput {
    ExecOutput {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        exit_code,
    }
}

fn failed(operation: &str, error: impl std::fmt::Display) -> DockerError {
    DockerError::Failed {
        operation: operation.to_string(),
        reason: error.to_string(),
    }
}

fn classify(operation: &str, target: &str, error: bollard::errors::Error) -> DockerError {
    match &error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => DockerError::NotFound(target.to_string()),
        _ => failed(operation, error),
    }
}

impl Docker {
    /// Connects the way the `docker` CLI and kind do: `DOCKER_HOST`, else the current
    /// Docker context's endpoint, else the default socket; then pings it.
    pub async fn connect(world: &World) -> Result<Docker, DockerError> {
        let (endpoint, source) = resolve_endpoint(world);
        let unreachable = |reason: String| DockerError::Unreachable {
            endpoint: endpoint.clone(),
            reason,
        };
        // bollard's own limit only covers response headers; the limits that matter
        // are the tokio timeouts around each call below.
        let seconds = EXEC_TIMEOUT.as_secs();
        let client = if let Some(path) = endpoint.strip_prefix("unix://") {
            bollard::Docker::connect_with_unix(path, seconds, bollard::API_DEFAULT_VERSION)
        } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
            bollard::Docker::connect_with_http(&endpoint, seconds, bollard::API_DEFAULT_VERSION)
        } else if endpoint.starts_with('/') {
            bollard::Docker::connect_with_unix(&endpoint, seconds, bollard::API_DEFAULT_VERSION)
        } else {
            return Err(unreachable(format!(
                "unsupported endpoint from {source} (devcluster speaks unix:// and tcp://)"
            )));
        }
        .map_err(|e| unreachable(format!("{} (from {source})", with_causes(&e))))?;
        match tokio::time::timeout(PING_TIMEOUT, client.ping()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(unreachable(format!("{} (from {source})", with_causes(&e))));
            }
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}s (from {source})",
                    PING_TIMEOUT.as_secs()
                )));
            }
        }
        Ok(Docker {
            client,
            endpoint,
            timeout: CALL_TIMEOUT,
            exec_timeout: EXEC_TIMEOUT,
        })
    }

    /// The same client with other limits: `call` for ordinary calls, `exec` for
    /// commands run with [`Docker::exec`].
    pub fn with_timeouts(mut self, call: Duration, exec: Duration) -> Docker {
        self.timeout = call;
        self.exec_timeout = exec;
        self
    }

    /// The time limit of a command run with [`Docker::exec`].
    pub fn exec_timeout(&self) -> Duration {
        self.exec_timeout
    }

    /// The endpoint in use, e.g. `unix:///var/run/docker.sock`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn call<T, E: std::fmt::Display>(
        &self,
        operation: &str,
        limit: Duration,
        future: impl std::future::Future<Output = Result<T, E>>,
        map: impl FnOnce(E) -> DockerError,
    ) -> Result<T, DockerError> {
        match tokio::time::timeout(limit, future).await {
            Ok(result) => result.map_err(map),
            Err(_) => Err(DockerError::Timeout {
                operation: operation.to_string(),
                seconds: limit.as_secs(),
            }),
        }
    }

    pub async fn info(&self) -> Result<EngineInfo, DockerError> {
        let version = self
            .call("version", self.timeout, self.client.version(), |e| {
                failed("version", e)
            })
            .await?;
        let info = self
            .call("info", self.timeout, self.client.info(), |e| {
                failed("info", e)
            })
            .await?;
        let operating_system = info.operating_system.clone().unwrap_or_default();
        let components: Vec<String> = version
            .components
            .iter()
            .flatten()
            .map(|c| c.name.to_ascii_lowercase())
            .collect();
        let security = info.security_options.clone().unwrap_or_default();
        Ok(EngineInfo {
            version: version.version.clone().unwrap_or_default(),
            api_version: version.api_version.clone().unwrap_or_default(),
            os: version
                .os
                .clone()
                .or(info.os_type.clone())
                .unwrap_or_default(),
            arch: version
                .arch
                .clone()
                .or(info.architecture.clone())
                .unwrap_or_default(),
            flavor: flavor(
                &operating_system,
                info.name.as_deref().unwrap_or(""),
                &components,
            ),
            cgroup_version: info
                .cgroup_version
                .map(|v| v.to_string())
                .and_then(|v| v.parse().ok()),
            data_root: info.docker_root_dir.clone(),
            cpus: info.ncpu.and_then(|n| u64::try_from(n).ok()),
            memory_bytes: info.mem_total.and_then(|n| u64::try_from(n).ok()),
            rootless: security.iter().any(|o| o.contains("name=rootless")),
        })
    }

    /// Node containers of `cluster` (all kind clusters when `None`), running or not,
    /// sorted by name.
    pub async fn list_nodes(
        &self,
        cluster: Option<&str>,
    ) -> Result<Vec<ObservedNode>, DockerError> {
        let label = match cluster {
            Some(name) => format!("{CLUSTER_LABEL}={name}"),
            None => CLUSTER_LABEL.to_string(),
        };
        let filters = std::collections::HashMap::from([("label".to_string(), vec![label])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .call(
                "list containers",
                self.timeout,
                self.client.list_containers(Some(options)),
                |e| failed("list containers", e),
            )
            .await?;
        let ids: Vec<String> = summaries.into_iter().filter_map(|s| s.id).collect();
        let inspected = futures_util::future::join_all(ids.iter().map(|id| self.inspect(id))).await;
        let mut nodes = Vec::new();
        for result in inspected {
            match result {
                Ok(node) => nodes.push(node),
                // Removed between the list and the inspect.
                Err(DockerError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nodes)
    }

    async fn inspect_response(
        &self,
        container: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, DockerError> {
        self.call(
            "inspect",
            self.timeout,
            self.client
                .inspect_container(container, None::<InspectContainerOptions>),
            |e| classify("inspect", container, e),
        )
        .await
    }

    /// One container, kind node or not.
    pub async fn inspect(&self, container: &str) -> Result<ObservedNode, DockerError> {
        let response = self.inspect_response(container).await?;
        let labels: BTreeMap<String, String> = response
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let state = response
            .state
            .as_ref()
            .and_then(|s| s.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let live_ports = observed_ports(
            response
                .network_settings
                .as_ref()
                .and_then(|n| n.ports.clone())
                .unwrap_or_default(),
        )
        .into_iter()
        // `{"HostIp": "", "HostPort": ""}` reports no binding.
        .filter(|p| p.host_port != 0)
        .collect();
        let requested_ports = observed_ports(
            response
                .host_config
                .as_ref()
                .and_then(|h| h.port_bindings.clone())
                .unwrap_or_default(),
        );
        let mounts = response
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| ObservedMount {
                source: m.source.or(m.name).unwrap_or_default(),
                destination: m.destination.unwrap_or_default(),
                read_only: !m.rw.unwrap_or(true),
                propagation: m.propagation.unwrap_or_default(),
                mode: m.mode.unwrap_or_default(),
                kind: m.typ.map(|t| t.to_string()).unwrap_or_default(),
            })
            .collect();
        Ok(ObservedNode {
            name: response
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            cluster: labels.get(CLUSTER_LABEL).cloned().unwrap_or_default(),
            role: labels.get(ROLE_LABEL).cloned().unwrap_or_default(),
            state,
            image: response
                .config
                .and_then(|c| c.image)
                .or(response.image)
                .unwrap_or_default(),
            labels,
            mounts,
            ports: live_ports,
            requested_ports,
        })
    }

    /// The raw `docker inspect` JSON of a container, for failure bundles.
    pub async fn inspect_json(&self, container: &str) -> Result<serde_json::Value, DockerError> {
        let response = self.inspect_response(container).await?;
        serde_json::to_value(response).map_err(|e| failed("inspect", e))
    }

    /// Runs `command` in `container`; a non-zero exit is an `Ok` with that code.
    pub async fn exec(&self, container: &str, command: &[&str]) -> Result<ExecOutput, DockerError> {
        self.run_exec(container, command, None).await
    }

    /// Like [`Docker::exec`], with `stdin` fed to the command.
    pub async fn exec_with_stdin(
        &self,
        container: &str,
        command: &[&str],
        stdin: &[u8],
    ) -> Result<ExecOutput, DockerError> {
        self.run_exec(container, command, Some(stdin)).await
    }

    /// Creates an exec of `command` in `container`, its output attached (and its
    /// input, with `stdin`); returns the exec's id.
    async fn create_exec(
        &self,
        container: &str,
        command: &[&str],
        stdin: bool,
    ) -> Result<String, DockerError> {
        let options = CreateExecOptions {
            cmd: Some(
                command
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<String>>(),
            ),
            attach_stdin: Some(stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = self
            .call(
                "exec",
                self.timeout,
                self.client.create_exec(container, options),
                |e| classify("exec", container, e),
            )
            .await?;
        Ok(created.id)
    }

    async fn start_exec(&self, id: &str) -> Result<StartExecResults, DockerError> {
        self.client
            .start_exec(id, None)
            .await
            .map_err(|e| failed("exec", e))
    }

    /// The exit code of a finished exec (-1 when the engine does not say).
    async fn exec_exit_code(&self, id: &str) -> Result<i64, DockerError> {
        let inspected = self
            .client
            .inspect_exec(id)
            .await
            .map_err(|e| failed("exec", e))?;
        Ok(inspected.exit_code.unwrap_or(-1))
    }

    async fn run_exec(
        &self,
        container: &str,
        command: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, DockerError> {
        let id = self
            .create_exec(container, command, stdin.is_some())
            .await?;
        let run = async {
            let mut streams = (Vec::new(), Vec::new());
            if let StartExecResults::Attached { output, mut input } = self.start_exec(&id).await? {
                if let Some(bytes) = stdin {
                    input
                        .write_all(bytes)
                        .await
                        .map_err(|e| failed("exec", e))?;
                    input.shutdown().await.map_err(|e| failed("exec", e))?;
                }
                drop(input);
                streams = drain(output).await?;
            }
            let exit_code = self.exec_exit_code(&id).await?;
            Ok::<_, DockerError>(exec_output(streams, exit_code))
        };
        match tokio::time::timeout(self.exec_timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(DockerError::Timeout {
                operation: format!("exec {}", command.join(" ")),
                seconds: self.exec_timeout.as_secs(),
            }),
        }
    }

    /// The running container publishing `host_port`/`protocol` (`tcp`, `udp`), if any.
    pub async fn port_holder(
        &self,
        host_port: u16,
        protocol: &str,
    ) -> Result<Option<PortHolder>, DockerError> {
        Ok(holder_of(
            self.published_ports().await?,
            host_port,
            protocol,
        ))
    }

    /// Every host port the running containers publish. The daemon holds these
    /// whether or not a proxy process listens on them (`userland-proxy: false`).
    pub async fn published_ports(&self) -> Result<Vec<PublishedPort>, DockerError> {
        let options = ListContainersOptionsBuilder::default().all(false).build();
        let summaries = self
            .call(
                "list containers",
                self.timeout,
                self.client.list_containers(Some(options)),
                |e| failed("list containers", e),
            )
            .await?;
        let mut published = Vec::new();
        for summary in summaries {
            let name = summary
                .names
                .iter()
                .flatten()
                .next()
                .map(|n| n.trim_start_matches('/').to_string())
                .or(summary.id.clone())
                .unwrap_or_default();
            let cluster = summary
                .labels
                .as_ref()
                .and_then(|l| l.get(CLUSTER_LABEL).cloned());
            for port in summary.ports.iter().flatten() {
                let Some(host_port) = port.public_port.filter(|p| *p != 0) else {
                    continue;
                };
                published.push(PublishedPort {
                    container: name.clone(),
                    cluster: cluster.clone(),
                    host_ip: port.ip.clone().unwrap_or_default(),
                    host_port,
                    protocol: port
                        .typ
                        .map(|t| t.to_string().to_ascii_lowercase())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(published)
    }

    /// The Kubernetes version a local node image carries in `/kind/version`: a
    /// container is created from the image (never started), the file is copied
    /// out through the archive API, and the container is removed.
    pub async fn image_kubernetes_version(&self, image: &str) -> Result<ImageVersion, DockerError> {
        match self
            .call(
                "inspect image",
                self.timeout,
                self.client.inspect_image(image),
                |e| classify("inspect image", image, e),
            )
            .await
        {
            Ok(_) => {}
            Err(DockerError::NotFound(_)) => return Ok(ImageVersion::NotPresent),
            Err(e) => return Err(e),
        }
        let body = bollard::models::ContainerCreateBody {
            image: Some(image.to_string()),
            // Never run; an image without a command still needs one to be created.
            cmd: Some(vec!["/kind/version".to_string()]),
            network_disabled: Some(true),
            ..Default::default()
        };
        let created = self
            .call(
                "create container",
                self.timeout,
                self.client
                    .create_container(None::<CreateContainerOptions>, body),
                |e| failed("create container", e),
            )
            .await?;
        let read = self
            .read_file(&created.id, KIND_VERSION_FILE, MAX_VERSION_FILE)
            .await;
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let removed = self
            .call(
                "remove container",
                self.timeout,
                self.client.remove_container(&created.id, Some(options)),
                |e| classify("remove container", &created.id, e),
            )
            .await;
        let text = match read {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                removed?;
                return Ok(ImageVersion::NoVersionFile);
            }
            Err(e) => return Err(e),
        };
        removed?;
        let version = String::from_utf8_lossy(&text).trim().to_string();
        Ok(if version.is_empty() {
            ImageVersion::NoVersionFile
        } else {
            ImageVersion::Version(version)
        })
    }

    /// The regular file `path` in `container`, running or stopped, through Docker's
    /// archive API (`GET /containers/{id}/archive`); `None` when the container or the
    /// file does not exist. A file larger than `limit` bytes is an error.
    pub async fn read_file(
        &self,
        container: &str,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, DockerError> {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let download = async {
            let mut stream = self
                .client
                .download_from_container(container, Some(options));
            let mut archive = Vec::new();
            while let Some(chunk) = stream.next().await {
                archive.extend_from_slice(&chunk?);
                // A few 512-byte headers and the padding around the file.
                if archive.len() > limit + 8 * 512 {
                    break;
                }
            }
            Ok::<_, bollard::errors::Error>(archive)
        };
        let archive = match self
            .call("copy from container", self.timeout, download, |e| {
                classify("copy from container", path, e)
            })
            .await
        {
            Ok(archive) => archive,
            Err(DockerError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        first_file_in_tar(&archive, limit).map(Some).ok_or_else(|| {
            failed(
                "copy from container",
                format!("{path} is not a regular file of at most {limit} bytes"),
            )
        })
    }

    /// The image `name` in the engine's own store; `None` when it is not there.
    pub async fn local_image(&self, name: &str) -> Result<Option<LocalImage>, DockerError> {
        match self
            .call(
                "inspect image",
                self.timeout,
                self.client.inspect_image(name),
                |e| classify("inspect image", name, e),
            )
            .await
        {
            Ok(image) => Ok(Some(LocalImage {
                name: name.to_string(),
                id: image.id.unwrap_or_default(),
            })),
            Err(DockerError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs `command` in `container` with the engine's export of `images` (`GET
    /// /images/get`, the `docker save` tar) streamed into its stdin while its output
    /// is read, so neither side waits on the other. The stream is closed when the
    /// export ends or fails, so the command always sees the end of its input. A
    /// command that exits non-zero is an `Ok` with its code and output, even when it
    /// stopped reading early.
    pub async fn import_images(
        &self,
        container: &str,
        images: &[&str],
        command: &[&str],
        limit: Duration,
    ) -> Result<ExecOutput, DockerError> {
        let id = self.create_exec(container, command, true).await?;
        let run = async {
            let StartExecResults::Attached { output, input } = self.start_exec(&id).await? else {
                return Err(failed("exec", "the engine did not attach to the command"));
            };
            let client = &self.client;
            let feed = async move {
                let mut input = input;
                let mut archive = std::pin::pin!(client.export_images(images));
                // An error, and whether it is the export's (else the command's
                // input, which a command that exited early closes).
                let mut fed = Ok(());
                while let Some(chunk) = archive.next().await {
                    let written = match chunk {
                        Ok(bytes) => input
                            .write_all(&bytes)
                            .await
                            .map_err(|e| (false, failed("exec", e))),
                        Err(e) => Err((true, failed("export images", e))),
                    };
                    if let Err(e) = written {
                        fed = Err(e);
                        break;
                    }
                }
                let _ = input.shutdown().await;
                fed
            };
            let drain = drain(output);
            // The output ends when the command has exited; what it did not read of
            // its input by then is dropped with the rest of the stream.
            tokio::pin!(feed, drain);
            let mut fed = None;
            let drained = loop {
                tokio::select! {
                    drained = &mut drain => break drained,
                    result = &mut feed, if fed.is_none() => fed = Some(result),
                }
            };
            let streams = drained?;
            let exit_code = self.exec_exit_code(&id).await?;
            match fed {
                // The command saw a cut stream (`ctr images import` fails on it
                // with `unexpected EOF`); the export's error is the cause.
                Some(Err((true, e))) => return Err(e),
                // The command's own failure explains a stream it stopped reading.
                Some(Err((false, e))) if exit_code == 0 => return Err(e),
                _ => {}
            }
            Ok(exec_output(streams, exit_code))
        };
        match tokio::time::timeout(limit, run).await {
            Ok(result) => result,
            Err(_) => Err(DockerError::Timeout {
                operation: format!("exec {}", command.join(" ")),
                seconds: limit.as_secs(),
            }),
        }
    }

    pub async fn start(&self, container: &str) -> Result<(), DockerError> {
        self.call(
            "start",
            self.timeout,
            self.client
                .start_container(container, None::<StartContainerOptions>),
            |e| classify("start", container, e),
        )
        .await
    }

    pub async fn stop(&self, container: &str) -> Result<(), DockerError> {
        let options = StopContainerOptionsBuilder::default().t(5).build();
        self.call(
            "stop",
            self.timeout + Duration::from_secs(5),
            self.client.stop_container(container, Some(options)),
            |e| classify("stop", container, e),
        )
        .await
    }
}

impl NodeRuntime for Docker {
    fn endpoint(&self) -> &str {
        Docker::endpoint(self)
    }

    fn info(&self) -> BoxFuture<'_, Result<EngineInfo, DockerError>> {
        Box::pin(Docker::info(self))
    }

    fn list_nodes<'a>(
        &'a self,
        cluster: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<ObservedNode>, DockerError>> {
        Box::pin(Docker::list_nodes(self, cluster))
    }

    fn inspect<'a>(
        &'a self,
        container: &'a str,
    ) -> BoxFuture<'a, Result<ObservedNode, DockerError>> {
        Box::pin(Docker::inspect(self, container))
    }

    fn exec<'a>(
        &'a self,
        container: &'a str,
        command: &'a [&'a str],
    ) -> BoxFuture<'a, Result<ExecOutput, DockerError>> {
        Box::pin(Docker::exec(self, container, command))
    }

    fn exec_with_stdin<'a>(
        &'a self,
        container: &'a str,
        command: &'a [&'a str],
        stdin: &'a [u8],
    ) -> BoxFuture<'a, Result<ExecOutput, DockerError>> {
        Box::pin(Docker::exec_with_stdin(self, container, command, stdin))
    }

    fn read_file<'a>(
        &'a self,
        container: &'a str,
        path: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, DockerError>> {
        Box::pin(Docker::read_file(self, container, path, limit))
    }

    fn published_ports(&self) -> BoxFuture<'_, Result<Vec<PublishedPort>, DockerError>> {
        Box::pin(Docker::published_ports(self))
    }

    fn image_kubernetes_version<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, Result<ImageVersion, DockerError>> {
        Box::pin(Docker::image_kubernetes_version(self, image))
    }

    fn run_container<'a>(
        &'a self,
        spec: &'a ContainerSpec<'a>,
    ) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(Docker::run_container(self, spec))
    }

    fn start_container<'a>(&'a self, container: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(Docker::start(self, container))
    }

    fn remove_container<'a>(
        &'a self,
        container: &'a str,
    ) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(Docker::remove_container(self, container))
    }

    fn container_networks<'a>(
        &'a self,
        container: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, DockerError>> {
        Box::pin(Docker::container_networks(self, container))
    }

    fn connect_network<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
    ) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(Docker::connect_network(self, network, container))
    }

    fn ensure_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(Docker::ensure_image(self, image))
    }

    fn tag_image<'a>(
        &'a self,
        image: &'a str,
        repository: &'a str,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(Docker::tag_image(self, image, repository, tag))
    }

    fn push_image<'a>(
        &'a self,
        repository: &'a str,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(Docker::push_image(self, repository, tag))
    }

    fn untag_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
        Box::pin(Docker::untag_image(self, image))
    }

    fn local_image<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<LocalImage>, DockerError>> {
        Box::pin(Docker::local_image(self, name))
    }

    fn import_images<'a>(
        &'a self,
        container: &'a str,
        images: &'a [&'a str],
        command: &'a [&'a str],
        limit: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, DockerError>> {
        Box::pin(Docker::import_images(
            self, container, images, command, limit,
        ))
    }
}

impl Docker {
    /// Creates and starts `spec`'s container ([`NodeRuntime::run_container`]).
    pub async fn run_container(&self, spec: &ContainerSpec<'_>) -> Result<(), DockerError> {
        self.ensure_image(spec.image).await?;
        let port_key = format!("{}/{}", spec.publish.container_port, spec.publish.protocol);
        let binding = bollard::models::PortBinding {
            host_ip: Some(spec.publish.listen_address.to_string()),
            host_port: Some(spec.publish.host_port.to_string()),
        };
        let host_config = bollard::models::HostConfig {
            port_bindings: Some(std::collections::HashMap::from([(
                port_key.clone(),
                Some(vec![binding]),
            )])),
            restart_policy: spec
                .restart_always
                .then_some(bollard::models::RestartPolicy {
                    name: Some(bollard::models::RestartPolicyNameEnum::ALWAYS),
                    maximum_retry_count: None,
                }),
            ..Default::default()
        };
        let body = bollard::models::ContainerCreateBody {
            image: Some(spec.image.to_string()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            exposed_ports: Some(vec![port_key]),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.to_string()),
            ..Default::default()
        };
        self.call(
            "create container",
            self.timeout,
            self.client.create_container(Some(options), body),
            |e| failed("create container", e),
        )
        .await?;
        self.start(spec.name).await
    }

    /// Removes `container` and its anonymous volumes.
    pub async fn remove_container(&self, container: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        self.call(
            "remove container",
            self.timeout + Duration::from_secs(5),
            self.client.remove_container(container, Some(options)),
            |e| classify("remove container", container, e),
        )
        .await
    }

    /// The networks `container` is connected to.
    pub async fn container_networks(&self, container: &str) -> Result<Vec<String>, DockerError> {
        let response = self.inspect_response(container).await?;
        let mut names: Vec<String> = response
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_keys()
            .collect();
        names.sort();
        Ok(names)
    }

    /// Connects `container` to `network`.
    pub async fn connect_network(&self, network: &str, container: &str) -> Result<(), DockerError> {
        let request = bollard::models::NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: None,
        };
        self.call(
            "connect network",
            self.timeout,
            self.client.connect_network(network, request),
            |e| classify("connect network", network, e),
        )
        .await
    }

    /// Pulls `image` unless the engine has it.
    pub async fn ensure_image(&self, image: &str) -> Result<(), DockerError> {
        match self
            .call(
                "inspect image",
                self.timeout,
                self.client.inspect_image(image),
                |e| classify("inspect image", image, e),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(DockerError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let operation = format!("pull {image}");
        let options = bollard::query_parameters::CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let pull = async {
            let mut stream = self.client.create_image(Some(options), None, None);
            while let Some(progress) = stream.next().await {
                progress?;
            }
            Ok::<_, bollard::errors::Error>(())
        };
        self.call(&operation, TRANSFER_TIMEOUT, pull, |e| {
            failed(&operation, with_causes(&e))
        })
        .await
    }

    /// Tags `image` as `repository:tag`.
    pub async fn tag_image(
        &self,
        image: &str,
        repository: &str,
        tag: &str,
    ) -> Result<(), DockerError> {
        let options = bollard::query_parameters::TagImageOptions {
            repo: Some(repository.to_string()),
            tag: Some(tag.to_string()),
        };
        self.call(
            "tag image",
            self.timeout,
            self.client.tag_image(image, Some(options)),
            |e| classify("tag image", image, e),
        )
        .await
    }

    /// Pushes `repository:tag`; an error the registry reports mid-stream fails it.
    pub async fn push_image(&self, repository: &str, tag: &str) -> Result<(), DockerError> {
        let operation = format!("push {repository}:{tag}");
        let options = bollard::query_parameters::PushImageOptions {
            tag: Some(tag.to_string()),
            platform: None,
        };
        let push = async {
            let mut stream = self.client.push_image(repository, Some(options), None);
            while let Some(progress) = stream.next().await {
                progress?;
            }
            Ok::<_, bollard::errors::Error>(())
        };
        self.call(&operation, TRANSFER_TIMEOUT, push, |e| {
            failed(&operation, with_causes(&e))
        })
        .await
    }

    /// Removes the name `image`, never the image other names still hold.
    pub async fn untag_image(&self, image: &str) -> Result<(), DockerError> {
        let options = bollard::query_parameters::RemoveImageOptions {
            force: false,
            noprune: false,
            ..Default::default()
        };
        self.call(
            "remove image",
            self.timeout,
            self.client.remove_image(image, Some(options), None),
            |e| classify("remove image", image, e),
        )
        .await
        .map(|_| ())
    }
}

/// The contents of the first regular file of a tar archive (PAX and GNU long-name
/// headers are read as such); `None` when there is none of at most `limit` bytes.
fn first_file_in_tar(archive: &[u8], limit: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().ok()? {
        let entry = entry.ok()?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if entry.size() > limit as u64 {
            return None;
        }
        let mut bytes = Vec::new();
        entry.take(limit as u64).read_to_end(&mut bytes).ok()?;
        return Some(bytes);
    }
    None
}

/// Docker's port map (`"80/tcp": [{"HostIp": ..., "HostPort": ...}]`), sorted.
fn observed_ports(
    map: std::collections::HashMap<String, Option<Vec<bollard::models::PortBinding>>>,
) -> Vec<ObservedPort> {
    let mut ports: Vec<ObservedPort> = map
        .into_iter()
        .flat_map(|(key, bindings)| {
            let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let container_port = port.parse::<u16>().unwrap_or(0);
            let protocol = protocol.to_string();
            bindings
                .unwrap_or_default()
                .into_iter()
                .map(move |b| ObservedPort {
                    container_port,
                    protocol: protocol.clone(),
                    host_ip: b.host_ip.unwrap_or_default(),
                    host_port: b.host_port.and_then(|p| p.parse().ok()).unwrap_or(0),
                })
        })
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// Which product runs the engine, from what `docker info` and `docker version` say.
pub fn flavor(operating_system: &str, name: &str, components: &[String]) -> EngineFlavor {
    let os = operating_system.to_ascii_lowercase();
    if os.contains("docker desktop") {
        EngineFlavor::DockerDesktop
    } else if components.iter().any(|c| c.contains("podman")) || os.contains("podman") {
        EngineFlavor::Podman
    } else if name.to_ascii_lowercase().starts_with("colima") || os.contains("colima") {
        EngineFlavor::Colima
    } else {
        EngineFlavor::Native
    }
}

/// A node runtime with canned answers, for tests of the operations that read one.
/// It answers as [`Docker`] does: nodes filtered by their cluster label and sorted
/// by name, a missing container or file read as `None` (the archive API's 404).
#[cfg(test)]
pub(crate) mod canned {
    use super::*;

    pub(crate) struct CannedRuntime {
        pub info: Result<EngineInfo, DockerError>,
        pub nodes: Vec<ObservedNode>,
        /// `(container, path)` to the file's bytes.
        pub files: BTreeMap<(String, String), Vec<u8>>,
        pub published: Vec<PublishedPort>,
        pub images: BTreeMap<String, ImageVersion>,
        /// The engine's own images: name to image ID.
        pub local_images: BTreeMap<String, String>,
        /// `(container, command joined by spaces)` to what the command prints;
        /// any other command is not canned.
        pub execs: BTreeMap<(String, String), ExecOutput>,
        /// What the import command answers in each container (not canned when absent).
        pub imports: BTreeMap<String, Result<ExecOutput, DockerError>>,
        /// Every import asked for.
        pub imported: std::sync::Mutex<Vec<Import>>,
    }

    /// One import asked of the canned runtime: container, images, command.
    pub(crate) type Import = (String, Vec<String>, Vec<String>);

    impl CannedRuntime {
        /// A healthy native engine with nothing on it.
        pub(crate) fn empty() -> CannedRuntime {
            CannedRuntime {
                info: Ok(EngineInfo {
                    version: "28.2.2".into(),
                    api_version: "1.50".into(),
                    os: "linux".into(),
                    arch: "amd64".into(),
                    flavor: EngineFlavor::Native,
                    cgroup_version: Some(2),
                    data_root: None,
                    cpus: Some(4),
                    memory_bytes: Some(8 << 30),
                    rootless: false,
                }),
                nodes: Vec::new(),
                files: BTreeMap::new(),
                published: Vec::new(),
                images: BTreeMap::new(),
                local_images: BTreeMap::new(),
                execs: BTreeMap::new(),
                imports: BTreeMap::new(),
                imported: std::sync::Mutex::new(Vec::new()),
            }
        }
    }

    fn not_canned<T: Send + 'static>(
        operation: &str,
    ) -> BoxFuture<'static, Result<T, DockerError>> {
        let error = failed(operation, "not canned in this test");
        Box::pin(async move { Err(error) })
    }

    impl NodeRuntime for CannedRuntime {
        fn endpoint(&self) -> &str {
            "unix:///canned.sock"
        }

        fn info(&self) -> BoxFuture<'_, Result<EngineInfo, DockerError>> {
            Box::pin(async { self.info.clone() })
        }

        fn list_nodes<'a>(
            &'a self,
            cluster: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Vec<ObservedNode>, DockerError>> {
            Box::pin(async move {
                let mut nodes: Vec<ObservedNode> = self
                    .nodes
                    .iter()
                    .filter(|n| cluster.is_none_or(|c| n.cluster == c))
                    .cloned()
                    .collect();
                nodes.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(nodes)
            })
        }

        fn inspect<'a>(
            &'a self,
            container: &'a str,
        ) -> BoxFuture<'a, Result<ObservedNode, DockerError>> {
            Box::pin(async move {
                self.nodes
                    .iter()
                    .find(|n| n.name == container)
                    .cloned()
                    .ok_or_else(|| DockerError::NotFound(container.to_string()))
            })
        }

        fn exec<'a>(
            &'a self,
            container: &'a str,
            command: &'a [&'a str],
        ) -> BoxFuture<'a, Result<ExecOutput, DockerError>> {
            match self
                .execs
                .get(&(container.to_string(), command.join(" ")))
                .cloned()
            {
                Some(output) => Box::pin(async move { Ok(output) }),
                None => not_canned("exec"),
            }
        }

        fn exec_with_stdin<'a>(
            &'a self,
            _container: &'a str,
            _command: &'a [&'a str],
            _stdin: &'a [u8],
        ) -> BoxFuture<'a, Result<ExecOutput, DockerError>> {
            not_canned("exec")
        }

        fn read_file<'a>(
            &'a self,
            container: &'a str,
            path: &'a str,
            limit: usize,
        ) -> BoxFuture<'a, Result<Option<Vec<u8>>, DockerError>> {
            Box::pin(async move {
                match self.files.get(&(container.to_string(), path.to_string())) {
                    Some(bytes) if bytes.len() > limit => Err(failed(
                        "copy from container",
                        format!("{path} is not a regular file of at most {limit} bytes"),
                    )),
                    found => Ok(found.cloned()),
                }
            })
        }

        fn published_ports(&self) -> BoxFuture<'_, Result<Vec<PublishedPort>, DockerError>> {
            Box::pin(async { Ok(self.published.clone()) })
        }

        fn image_kubernetes_version<'a>(
            &'a self,
            image: &'a str,
        ) -> BoxFuture<'a, Result<ImageVersion, DockerError>> {
            Box::pin(async move {
                Ok(self
                    .images
                    .get(image)
                    .cloned()
                    .unwrap_or(ImageVersion::NotPresent))
            })
        }

        fn run_container<'a>(
            &'a self,
            _spec: &'a ContainerSpec<'a>,
        ) -> BoxFuture<'a, Result<(), DockerError>> {
            not_canned("create container")
        }

        fn start_container<'a>(
            &'a self,
            _container: &'a str,
        ) -> BoxFuture<'a, Result<(), DockerError>> {
            not_canned("start")
        }

        fn remove_container<'a>(
            &'a self,
            _container: &'a str,
        ) -> BoxFuture<'a, Result<(), DockerError>> {
            not_canned("remove container")
        }

        fn container_networks<'a>(
            &'a self,
            _container: &'a str,
        ) -> BoxFuture<'a, Result<Vec<String>, DockerError>> {
            not_canned("inspect")
        }

        fn connect_network<'a>(
            &'a self,
            _network: &'a str,
            _container: &'a str,
        ) -> BoxFuture<'a, Result<(), DockerError>> {
            not_canned("connect network")
        }

        fn ensure_image<'a>(&'a self, _image: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
            not_canned("inspect image")
        }

        fn tag_image<'a>(
            &'a self,
            _image: &'a str,
            _repository: &'a str,
            _tag: &'a str,
        ) -> BoxFuture<'a, Result<(), DockerError>> {
            not_canned("tag image")
        }

        fn push_image<'a>(
            &'a self,
            _repository: &'a str,
            _tag: &'a str,
        ) -> BoxFuture<'a, Result<(), DockerError>> {
            not_canned("push")
        }

        fn untag_image<'a>(&'a self, _image: &'a str) -> BoxFuture<'a, Result<(), DockerError>> {
            not_canned("remove image")
        }

        fn local_image<'a>(
            &'a self,
            name: &'a str,
        ) -> BoxFuture<'a, Result<Option<LocalImage>, DockerError>> {
            Box::pin(async move {
                Ok(self.local_images.get(name).map(|id| LocalImage {
                    name: name.to_string(),
                    id: id.clone(),
                }))
            })
        }

        fn import_images<'a>(
            &'a self,
            container: &'a str,
            images: &'a [&'a str],
            command: &'a [&'a str],
            _limit: Duration,
        ) -> BoxFuture<'a, Result<ExecOutput, DockerError>> {
            self.imported
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((
                    container.to_string(),
                    images.iter().map(|i| i.to_string()).collect(),
                    command.iter().map(|c| c.to_string()).collect(),
                ));
            match self.imports.get(container).cloned() {
                Some(answer) => Box::pin(async move { answer }),
                None => not_canned("import images"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(env: &[(&str, &str)], home: &Path) -> World {
        World {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            home: Some(home.to_path_buf()),
            ..World::default()
        }
    }

    #[test]
    fn docker_host_wins() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (endpoint, source) = resolve_endpoint(&world(
            &[("DOCKER_HOST", "tcp://10.0.0.1:2375")],
            home.path(),
        ));
        assert_eq!(endpoint, "tcp://10.0.0.1:2375");
        assert_eq!(source, "DOCKER_HOST");
    }

    #[test]
    fn current_context_endpoint_is_used() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let docker = home.path().join(".docker");
        let digest: String = Sha256::digest(b"colima")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let meta = docker.join("contexts/meta").join(digest);
        std::fs::create_dir_all(&meta).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(docker.join("config.json"), r#"{"currentContext":"colima"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"colima","Endpoints":{"docker":{"Host":"unix:///home/u/.colima/default/docker.sock"}}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (endpoint, source) = resolve_endpoint(&world(&[], home.path()));
        assert_eq!(endpoint, "unix:///home/u/.colima/default/docker.sock");
        assert!(source.contains("colima"));
        // DOCKER_CONTEXT=default overrides the file and means the default socket.
        let (endpoint, _) = resolve_endpoint(&world(&[("DOCKER_CONTEXT", "default")], home.path()));
        assert_eq!(endpoint, DEFAULT_HOST);
    }

    fn port(container_port: u16, host_ip: &str, host_port: u16) -> ObservedPort {
        ObservedPort {
            container_port,
            protocol: "tcp".into(),
            host_ip: host_ip.into(),
            host_port,
        }
    }

    fn node(live: Vec<ObservedPort>, requested: Vec<ObservedPort>) -> ObservedNode {
        ObservedNode {
            name: "dev-worker".into(),
            cluster: "dev".into(),
            role: "worker".into(),
            state: "running".into(),
            image: "kindest/node:v1.36.1".into(),
            labels: BTreeMap::new(),
            mounts: Vec::new(),
            ports: live,
            requested_ports: requested,
        }
    }

    const HTTP: WantedPort<'static> = WantedPort {
        container_port: 80,
        protocol: "tcp",
        host_port: 8080,
        listen_address: "127.0.0.1",
    };

    #[test]
    fn a_binding_the_engine_reports_is_published() {
        let linux = node(
            vec![port(80, "127.0.0.1", 8080)],
            vec![port(80, "127.0.0.1", 8080)],
        );
        assert_eq!(
            linux.binding(&HTTP),
            Binding::Published(port(80, "127.0.0.1", 8080))
        );
        // A wildcard reported as `0.0.0.0` and `::` (Docker Desktop 4.42+ adds the
        // IPv6 one) matches a `0.0.0.0` listen address.
        let any = WantedPort {
            listen_address: "0.0.0.0",
            ..HTTP
        };
        let dual = node(
            vec![port(80, "0.0.0.0", 8080), port(80, "::", 8080)],
            vec![port(80, "", 8080)],
        );
        assert!(matches!(dual.binding(&any), Binding::Published(_)));
        // `hostPort: -1`: Docker picks; any reported host port will do.
        let picked = WantedPort {
            host_port: -1,
            ..HTTP
        };
        let chosen = node(
            vec![port(80, "127.0.0.1", 49153)],
            vec![port(80, "127.0.0.1", 0)],
        );
        assert_eq!(
            chosen.binding(&picked),
            Binding::Published(port(80, "127.0.0.1", 49153))
        );
    }

    #[test]
    fn a_changed_host_ip_is_checked_against_what_the_container_was_created_with() {
        // docker/for-mac#7737, #7742: the engine reports another address for the
        // right host port; kind asked for the planned one.
        let changed = node(
            vec![port(80, "0.0.0.0", 8080)],
            vec![port(80, "127.0.0.1", 8080)],
        );
        assert_eq!(
            changed.binding(&HTTP),
            Binding::Published(port(80, "127.0.0.1", 8080))
        );
        // Created with another address: real drift.
        let other = node(
            vec![port(80, "0.0.0.0", 8080)],
            vec![port(80, "0.0.0.0", 8080)],
        );
        assert_eq!(other.binding(&HTTP), Binding::Missing);
    }

    #[test]
    fn no_reported_binding_at_all_is_unconfirmed_not_missing() {
        // docker/for-mac#7787: `NetworkSettings.Ports` has the port with empty
        // HostIp/HostPort (dropped at inspect) or not at all.
        let empty = node(Vec::new(), vec![port(80, "127.0.0.1", 8080)]);
        assert_eq!(
            empty.binding(&HTTP),
            Binding::Unconfirmed(port(80, "127.0.0.1", 8080))
        );
        // Both views blank.
        let blank = node(Vec::new(), vec![port(80, "", 0)]);
        assert_eq!(blank.binding(&HTTP), Binding::Unconfirmed(port(80, "", 0)));
        // The container was never created with the port: missing.
        let never = node(Vec::new(), vec![port(443, "127.0.0.1", 8443)]);
        assert_eq!(never.binding(&HTTP), Binding::Missing);
        // Created with another host port: missing, whatever the engine reports.
        let moved = node(Vec::new(), vec![port(80, "127.0.0.1", 9090)]);
        assert_eq!(moved.binding(&HTTP), Binding::Missing);
        // The engine reports another host port: missing.
        let elsewhere = node(
            vec![port(80, "127.0.0.1", 9090)],
            vec![port(80, "127.0.0.1", 8080)],
        );
        assert_eq!(elsewhere.binding(&HTTP), Binding::Missing);
        // Another protocol is another binding.
        let udp = WantedPort {
            protocol: "udp",
            ..HTTP
        };
        assert_eq!(empty.binding(&udp), Binding::Missing);
    }

    /// A ustar header for `size` bytes of type `kind`.
    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap_or_else(|e| panic!("{e}"))
    }

    fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, data: &[u8]) {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, data)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn the_first_regular_file_of_a_tar_is_read_past_pax_headers() {
        // What Docker's archive API sends (Go's archive/tar): PAX records first.
        let with_pax = archive(|b| {
            b.append_pax_extensions([("mtime", b"1700000000.123456789".as_slice())])
                .unwrap_or_else(|e| panic!("{e}"));
            append(b, "version", tar::EntryType::Regular, b"v1.20.2\n");
        });
        assert_eq!(
            first_file_in_tar(&with_pax, 4096),
            Some(b"v1.20.2\n".to_vec())
        );
        // Too large, a directory, or no archive at all: nothing.
        assert_eq!(first_file_in_tar(&with_pax, 4), None);
        let directory = archive(|b| append(b, "kind/", tar::EntryType::Directory, b""));
        assert_eq!(first_file_in_tar(&directory, 4096), None);
        assert_eq!(first_file_in_tar(b"not a tar", 4096), None);
    }

    #[test]
    fn flavors() {
        assert_eq!(
            flavor("Docker Desktop", "docker-desktop", &[]),
            EngineFlavor::DockerDesktop
        );
        assert_eq!(flavor("Ubuntu 24.04", "colima", &[]), EngineFlavor::Colima);
        assert_eq!(
            flavor("fedora", "host", &["podman engine".into()]),
            EngineFlavor::Podman
        );
        assert_eq!(
            flavor("Debian GNU/Linux 12 (bookworm)", "ci", &["engine".into()]),
            EngineFlavor::Native
        );
    }
}
