//! The Docker Engine, through bollard: the only module that uses a Docker client
//! type. The rest of devcluster speaks the `Observed*` types below.
//!
//! (Contract first: bodies are filled in by the Docker layer work.)

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::world::World;

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
    pub ports: Vec<ObservedPort>,
}

/// Output of a command run in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i64,
}

/// Who publishes a host port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortHolder {
    pub container: String,
    /// The kind cluster the container belongs to, if it is a kind node.
    pub cluster: Option<String>,
}

/// A connected Docker Engine client.
#[derive(Debug, Clone)]
pub struct Docker {
    endpoint: String,
    timeout: Duration,
}

impl Docker {
    /// Connects the way the `docker` CLI and kind do: `DOCKER_HOST`, else the current
    /// Docker context's endpoint, else the default socket; then pings it.
    pub async fn connect(_world: &World) -> Result<Docker, DockerError> {
        Err(DockerError::Unreachable {
            endpoint: "unix:///var/run/docker.sock".into(),
            reason: "not implemented".into(),
        })
    }

    /// The endpoint in use, e.g. `unix:///var/run/docker.sock`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub async fn info(&self) -> Result<EngineInfo, DockerError> {
        Err(self.unimplemented("info"))
    }

    /// Node containers of `cluster` (all kind clusters when `None`), running or not,
    /// sorted by name.
    pub async fn list_nodes(
        &self,
        _cluster: Option<&str>,
    ) -> Result<Vec<ObservedNode>, DockerError> {
        Err(self.unimplemented("list"))
    }

    /// One container, kind node or not.
    pub async fn inspect(&self, _container: &str) -> Result<ObservedNode, DockerError> {
        Err(self.unimplemented("inspect"))
    }

    /// The raw `docker inspect` JSON of a container, for failure bundles.
    pub async fn inspect_json(&self, _container: &str) -> Result<serde_json::Value, DockerError> {
        Err(self.unimplemented("inspect"))
    }

    /// Runs `command` in `container`; a non-zero exit is an `Ok` with that code.
    pub async fn exec(
        &self,
        _container: &str,
        _command: &[&str],
    ) -> Result<ExecOutput, DockerError> {
        Err(self.unimplemented("exec"))
    }

    /// Like [`Docker::exec`], with `stdin` fed to the command.
    pub async fn exec_with_stdin(
        &self,
        _container: &str,
        _command: &[&str],
        _stdin: &[u8],
    ) -> Result<ExecOutput, DockerError> {
        Err(self.unimplemented("exec"))
    }

    /// The container publishing `host_port`/`protocol` (`tcp`, `udp`), if any.
    pub async fn port_holder(
        &self,
        _host_port: u16,
        _protocol: &str,
    ) -> Result<Option<PortHolder>, DockerError> {
        Err(self.unimplemented("list"))
    }

    pub async fn start(&self, _container: &str) -> Result<(), DockerError> {
        Err(self.unimplemented("start"))
    }

    pub async fn stop(&self, _container: &str) -> Result<(), DockerError> {
        Err(self.unimplemented("stop"))
    }

    fn unimplemented(&self, operation: &str) -> DockerError {
        DockerError::Failed {
            operation: operation.into(),
            reason: "not implemented".into(),
        }
    }
}
