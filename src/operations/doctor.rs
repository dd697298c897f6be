//! `devcluster doctor`: checks this machine against a profile before kind runs.
//! Each check says ok, warn or fail, one line of detail, and for warn/fail the
//! next step. `devcluster up` runs the same checks as its preflight step.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::time::Duration;

use crate::adapters::docker::{Docker, EngineFlavor, EngineInfo, ImageVersion, PublishedPort};
use crate::adapters::kind::{KindVersion, MINIMUM_VERSION};
use crate::core::error::Result;
use crate::core::plan::{self, ClusterPlan, Protocol};
use crate::core::profile::MountPathType;
use crate::operations::ProfileChoice;
use crate::operations::context::App;

/// inotify limits multi-node clusters need (kind's known-issues page).
const MIN_INOTIFY_WATCHES: u64 = 524_288;
const MIN_INOTIFY_INSTANCES: u64 = 512;
/// Below this much free disk under Docker's data root, warn.
const MIN_FREE_DISK: u64 = 10 * 1024 * 1024 * 1024;
/// Below this much memory for Docker, warn for multi-node clusters.
const MIN_MEMORY: u64 = 4 * 1024 * 1024 * 1024;

pub use crate::core::check::{Check, Status};

/// `devcluster doctor`: every check of this machine against the chosen profile.
pub async fn run(app: &App, choice: &ProfileChoice) -> Result<Vec<Check>> {
    let (_, plan) = app.plan(choice.profile.as_deref(), choice.name.as_deref())?;
    Ok(checks(app, &plan, true).await)
}

pub fn print_table(app: &App, checks: &[Check]) {
    app.ui.checks(checks, crate::core::check::Columns::Host);
}

/// The checks `up` runs before kind: the same as `doctor`, without the note about
/// an existing cluster (up has dealt with it by then).
/// It uses `up`'s own Docker client instead of connecting again.
pub async fn preflight(app: &App, plan: &ClusterPlan) -> Vec<Check> {
    checks_with(app, plan, false).await
}

/// Every check for `plan` on this machine. Independent checks run concurrently.
pub async fn checks(app: &App, plan: &ClusterPlan, existing_cluster: bool) -> Vec<Check> {
    checks_with(app, plan, existing_cluster).await
}

/// The checks, with Docker already connected (`up`) or connected here (`doctor`).
async fn checks_with(app: &App, plan: &ClusterPlan, existing_cluster: bool) -> Vec<Check> {
    let (docker, kind, kubectl) =
        tokio::join!(app.docker(), kind_version(app), kubectl_version(app));
    let mut checks = Vec::new();
    let (docker, info) = match docker {
        Ok(docker) => match docker.info().await {
            Ok(info) => {
                checks.push(Check::host_ok(
                    "docker",
                    format!(
                        "Docker {} ({}/{}, {}) at {}",
                        info.version,
                        info.os,
                        info.arch,
                        flavor_name(info.flavor),
                        docker.endpoint()
                    ),
                ));
                (Some(docker), Some(info))
            }
            Err(e) => {
                checks.push(Check::host_fail(
                    "docker",
                    e.to_string(),
                    "check that the Docker daemon is healthy (`docker info`)",
                ));
                (None, None)
            }
        },
        Err(e) => {
            checks.push(Check::host_fail(
                "docker",
                e.to_string(),
                "start Docker (or Docker Desktop, Colima), or point `DOCKER_HOST` at a running engine",
            ));
            (None, None)
        }
    };
    let kind_version = match kind {
        Ok((version, found)) if version < MINIMUM_VERSION => {
            checks.push(Check::host_fail(
                "kind",
                format!(
                    "kind {version} is older than {MINIMUM_VERSION}, the oldest devcluster supports; at {found}"
                ),
                "upgrade kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)",
            ));
            Some(version)
        }
        Ok((version, found)) => {
            let mut check = kind_features(version);
            check.detail = format!("{}; at {found}", check.detail);
            checks.push(check);
            Some(version)
        }
        Err(e) => {
            checks.push(Check::host_fail(
                "kind",
                e.message.clone(),
                e.hint.clone().unwrap_or_default(),
            ));
            None
        }
    };
    let kubernetes = match &plan.image {
        None => NodeKubernetes::Known(
            kind_version
                .and_then(|v| v.default_kubernetes_version())
                .map(str::to_string),
        ),
        Some(image) => {
            let (kubernetes, check) =
                node_image_check(image, plan.kubernetes_version.as_deref(), docker.as_ref()).await;
            checks.push(check);
            kubernetes
        }
    };
    let known = match &kubernetes {
        NodeKubernetes::Known(version) => version.as_deref(),
        NodeKubernetes::Unknown => None,
    };
    checks.push(kubectl_check(kubectl, known));
    // The checks below read the engine or the host; they run concurrently.
    let engine = async {
        match &info {
            Some(info) => {
                let mut engine = vec![cgroup_check(info, &kubernetes)];
                engine.extend(resource_checks(info, plan));
                engine
            }
            None => ["cgroups", "resources", "disk"]
                .into_iter()
                .map(skipped)
                .collect(),
        }
    };
    let cluster = async {
        if !existing_cluster {
            return None;
        }
        Some(match &docker {
            Some(docker) => existing_cluster_check(docker, plan).await,
            None => skipped("cluster"),
        })
    };
    let (engine, ports, cluster) = tokio::join!(
        engine,
        port_checks(plan, docker.as_ref(), info.as_ref()),
        cluster
    );
    checks.extend(engine);
    if plan.is_multi_node() {
        checks.push(inotify_check(Path::new("/proc/sys/fs/inotify")));
    }
    checks.extend(mount_checks(
        plan,
        info.as_ref().map(|i| i.flavor),
        app.world.home.as_deref(),
    ));
    checks.extend(ports);
    checks.extend(cluster);
    checks
}

/// A check that needs the Docker engine, when the engine did not answer.
fn skipped(name: &str) -> Check {
    Check::host_warn(
        name,
        "skipped: Docker is not reachable",
        "fix the `docker` check first, then run `devcluster doctor` again",
    )
}

/// Warns when node containers of the plan's cluster already exist, with their states.
async fn existing_cluster_check(docker: &Docker, plan: &ClusterPlan) -> Check {
    let nodes = match docker.list_nodes(Some(&plan.name)).await {
        Ok(nodes) => nodes,
        Err(e) => {
            return Check::host_warn(
                "cluster",
                format!("could not list the nodes of `{}`: {e}", plan.name),
                "check that the Docker daemon is healthy (`docker ps`)",
            );
        }
    };
    if nodes.is_empty() {
        return Check::host_ok("cluster", format!("no cluster named `{}` yet", plan.name));
    }
    let states: Vec<String> = nodes
        .iter()
        .map(|n| format!("{} ({})", n.name, n.state))
        .collect();
    let managed = crate::operations::up::read_record(docker, &nodes)
        .await
        .is_some();
    Check::host_warn(
        "cluster",
        format!(
            "cluster `{}` already exists{}: {}",
            plan.name,
            if managed {
                " (created by devcluster)"
            } else {
                " (not created by devcluster)"
            },
            states.join(", ")
        ),
        format!(
            "`devcluster up` reuses it when it matches the profile; `devcluster status --name {}` shows it",
            plan.name
        ),
    )
}

fn flavor_name(flavor: EngineFlavor) -> &'static str {
    match flavor {
        EngineFlavor::DockerDesktop => "Docker Desktop",
        EngineFlavor::Colima => "Colima",
        EngineFlavor::Podman => "Podman",
        EngineFlavor::Native => "native",
    }
}

/// kind's version and where the one locator found it.
async fn kind_version(
    app: &App,
) -> std::result::Result<(KindVersion, String), crate::core::error::Error> {
    let kind = app.kind()?;
    Ok((kind.version().await?, kind.describe()))
}

fn kind_features(version: KindVersion) -> Check {
    let mut notes = vec![format!("kind {version}")];
    if let Some(k8s) = version.default_kubernetes_version() {
        notes.push(format!("default node image Kubernetes {k8s}"));
    }
    if version.supports_read_write_once_pod() {
        notes.push("ReadWriteOncePod supported (node images from kind v0.26.0)".into());
    }
    if version.has_helper_toleration_regression() {
        notes.push(
            "its node images carry the local-path helper-toleration regression on tainted nodes (`up` applies the fix)"
                .into(),
        );
    }
    Check::host_ok("kind", notes.join("; "))
}

async fn kubectl_version(app: &App) -> Option<String> {
    let search = app.world.var("PATH").unwrap_or("");
    let path = which::which_in("kubectl", Some(search), &app.world.cwd).ok()?;
    let output = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::process::Command::new(path)
            .args(["version", "--client", "-o", "json"])
            .env_clear()
            .envs(&app.world.env)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    value
        .pointer("/clientVersion/gitVersion")
        .and_then(|v| v.as_str())
        .map(|v| v.trim_start_matches('v').to_string())
}

fn minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn kubectl_check(kubectl: Option<String>, kubernetes: Option<&str>) -> Check {
    let Some(client) = kubectl else {
        return Check::host_ok(
            "kubectl",
            "not installed (optional; devcluster does not need it)",
        );
    };
    match (minor(&client), kubernetes.and_then(minor)) {
        (Some((1, a)), Some((1, b))) if a.abs_diff(b) > 1 => Check::host_warn(
            "kubectl",
            format!(
                "kubectl {client} is more than one minor version from the cluster's Kubernetes {}",
                kubernetes.unwrap_or("")
            ),
            "use a kubectl within one minor version of the node image (Kubernetes' version skew policy)",
        ),
        _ => Check::host_ok("kubectl", format!("kubectl {client}")),
    }
}

/// The Kubernetes version of the node image the cluster will run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeKubernetes {
    /// From the image's tag, its `/kind/version`, or kind's default image (`None`
    /// when kind is not installed).
    Known(Option<String>),
    /// A pinned image whose version neither its tag nor a local copy tells.
    Unknown,
}

/// The Kubernetes version of a pinned node image: from its tag, else from
/// `/kind/version` in the local image, else unknown (never kind's default image,
/// which the pinned image replaces).
async fn node_image_check(
    image: &str,
    from_tag: Option<&str>,
    docker: Option<&Docker>,
) -> (NodeKubernetes, Check) {
    const NAME: &str = "node image";
    if let Some(version) = from_tag {
        return (
            NodeKubernetes::Known(Some(version.to_string())),
            Check::host_ok(
                NAME,
                format!("{image}: Kubernetes {version} (from its tag)"),
            ),
        );
    }
    let unknown =
        |why: String, hint: String| (NodeKubernetes::Unknown, Check::host_warn(NAME, why, hint));
    let tag_it = format!(
        "pull it first (`docker pull {image}`) so devcluster can read its /kind/version, or tag it with its version, e.g. `:v1.36.1`"
    );
    let Some(docker) = docker else {
        return unknown(
            format!(
                "the Kubernetes version of {image} is unknown: its tag has none, and Docker is not reachable to read the image"
            ),
            tag_it,
        );
    };
    match docker.image_kubernetes_version(image).await {
        Ok(ImageVersion::Version(text)) => {
            let version = text.trim_start_matches('v');
            let version = version
                .split(['-', '+'])
                .next()
                .unwrap_or(version)
                .to_string();
            if minor(&version).is_none() {
                return unknown(
                    format!("{image}'s /kind/version says `{text}`, which is not a Kubernetes version"),
                    "check that this is a kind node image (`kind build node-image` writes /kind/version)".into(),
                );
            }
            (
                NodeKubernetes::Known(Some(version.clone())),
                Check::host_ok(
                    NAME,
                    format!(
                        "{image}: Kubernetes {version} (read from /kind/version in the local image)"
                    ),
                ),
            )
        }
        Ok(ImageVersion::NoVersionFile) => unknown(
            format!(
                "{image} has no /kind/version, so its Kubernetes version is unknown; it may not be a kind node image"
            ),
            "use an image built by `kind build node-image`, or a kindest/node release".into(),
        ),
        Ok(ImageVersion::NotPresent) => unknown(
            format!(
                "the Kubernetes version of {image} is unknown: its tag has none and the image is not present locally; the checks that depend on it are skipped"
            ),
            tag_it,
        ),
        Err(e) => unknown(
            format!(
                "the Kubernetes version of {image} is unknown: reading its /kind/version failed: {e}"
            ),
            tag_it,
        ),
    }
}

fn cgroup_check(info: &EngineInfo, kubernetes: &NodeKubernetes) -> Check {
    let kubernetes = match kubernetes {
        NodeKubernetes::Known(version) => version.as_deref(),
        NodeKubernetes::Unknown if info.cgroup_version == Some(1) => {
            return Check::host_warn(
                "cgroups",
                "Docker runs on cgroup v1 and the node image's Kubernetes version is unknown; Kubernetes 1.35+ node images need cgroup v2",
                "see the `node image` check; with an image before Kubernetes 1.35, cgroup v1 works",
            );
        }
        NodeKubernetes::Unknown => None,
    };
    let needs_v2 = kubernetes
        .and_then(minor)
        .is_some_and(|(major, minor)| major > 1 || minor >= 35);
    match info.cgroup_version {
        Some(1) if needs_v2 => Check::host_fail(
            "cgroups",
            format!(
                "Docker runs on cgroup v1; Kubernetes {} node images need cgroup v2",
                kubernetes.unwrap_or("1.35+")
            ),
            "boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1), or pin an image before Kubernetes 1.35 with `image:`",
        ),
        Some(version) => Check::host_ok("cgroups", format!("cgroup v{version}")),
        None => Check::host_ok("cgroups", "cgroup version not reported by Docker"),
    }
}

fn inotify_check(dir: &Path) -> Check {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    match (read("max_user_watches"), read("max_user_instances")) {
        (Some(watches), Some(instances))
            if watches >= MIN_INOTIFY_WATCHES && instances >= MIN_INOTIFY_INSTANCES =>
        {
            Check::host_ok(
                "inotify",
                format!("max_user_watches {watches}, max_user_instances {instances}"),
            )
        }
        (Some(watches), Some(instances)) => Check::host_warn(
            "inotify",
            format!(
                "max_user_watches {watches}, max_user_instances {instances}: multi-node clusters fail with \"too many open files\" below {MIN_INOTIFY_WATCHES}/{MIN_INOTIFY_INSTANCES}"
            ),
            format!(
                "sudo sysctl fs.inotify.max_user_watches={MIN_INOTIFY_WATCHES} fs.inotify.max_user_instances={MIN_INOTIFY_INSTANCES}"
            ),
        ),
        _ => Check::host_ok(
            "inotify",
            "limits not readable here (not Linux, or inside Docker Desktop's VM)",
        ),
    }
}

fn resource_checks(info: &EngineInfo, plan: &ClusterPlan) -> Vec<Check> {
    let mut checks = Vec::new();
    let memory = info.memory_bytes.unwrap_or(0);
    let cpus = info.cpus.unwrap_or(0);
    let gib = memory as f64 / (1024.0 * 1024.0 * 1024.0);
    if plan.is_multi_node() && (memory < MIN_MEMORY || cpus < 2) {
        checks.push(Check::host_warn(
            "resources",
            format!(
                "Docker has {gib:.1} GiB and {cpus} CPUs for {} nodes",
                plan.nodes.len()
            ),
            "give Docker at least 4 GiB and 2 CPUs (Docker Desktop: Settings > Resources)",
        ));
    } else {
        checks.push(Check::host_ok(
            "resources",
            format!("Docker has {gib:.1} GiB and {cpus} CPUs"),
        ));
    }
    let local_root = info.flavor == EngineFlavor::Native;
    match (&info.data_root, local_root) {
        (Some(root), true) => match free_disk(root) {
            Some(free) if free < MIN_FREE_DISK => checks.push(Check::host_warn(
                "disk",
                format!("{:.1} GiB free under {root}", free as f64 / 1073741824.0),
                "free disk space: kind disables kubelet disk eviction, so a full disk shows up as odd failures (`docker system prune`)",
            )),
            Some(free) => checks.push(Check::host_ok("disk", format!("{:.1} GiB free under {root}", free as f64 / 1073741824.0))),
            None => checks.push(Check::host_ok("disk", format!("free space under {root} not readable"))),
        },
        _ => checks.push(Check::host_ok("disk", "Docker's data root is inside its VM; not checked")),
    }
    checks
}

/// Free bytes on the filesystem holding `path` for an unprivileged writer: what
/// `df` calls "Available" (`f_bavail` blocks of `f_frsize` bytes), from statvfs(3).
fn free_disk(path: &str) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Docker Desktop shares these host roots by default (Settings > Resources > File sharing).
const DESKTOP_SHARED_ROOTS: &[&str] = &["/Users", "/Volumes", "/private", "/tmp", "/var/folders"];

fn mount_checks(
    plan: &ClusterPlan,
    flavor: Option<EngineFlavor>,
    home: Option<&Path>,
) -> Vec<Check> {
    let mut seen = std::collections::BTreeSet::new();
    let mut checks = Vec::new();
    for node in &plan.nodes {
        for mount in &node.mounts {
            if !seen.insert(mount.host_path.clone()) {
                continue;
            }
            let name = format!("mount {}", mount.host_path);
            let path = Path::new(&mount.host_path);
            let check = match (std::fs::metadata(path), mount.path_type) {
                (Err(_), _) => Check::host_fail(
                    name,
                    format!(
                        "{} does not exist (Docker would create an empty root-owned directory)",
                        mount.host_path
                    ),
                    format!(
                        "create it first: `mkdir -p {}`",
                        crate::core::error::shell_quote(&[&mount.host_path])
                    ),
                ),
                (Ok(meta), MountPathType::Directory) if !meta.is_dir() => Check::host_fail(
                    name,
                    format!(
                        "{} is a file, but the profile mounts a directory",
                        mount.host_path
                    ),
                    "set `type: File` on the mount, or point hostPath at a directory",
                ),
                (Ok(meta), MountPathType::File) if meta.is_dir() => Check::host_fail(
                    name,
                    format!(
                        "{} is a directory, but the profile mounts a file",
                        mount.host_path
                    ),
                    "drop `type: File`, or point hostPath at a file",
                ),
                (Ok(_), _) if mount.allow_dangerous_path => Check::host_warn(
                    name,
                    format!(
                        "{} {}; allowed by the profile",
                        mount.host_path,
                        plan::dangerous_host_path(path, home)
                            .or_else(|| crate::operations::context::resolve_symlinks(path)
                                .and_then(|real| plan::dangerous_host_path(&real, home)))
                            .unwrap_or("is sensitive")
                    ),
                    "every pod on these nodes can reach it through hostPath",
                ),
                (Ok(_), _)
                    if flavor == Some(EngineFlavor::DockerDesktop)
                        && !DESKTOP_SHARED_ROOTS
                            .iter()
                            .any(|root| path.starts_with(root)) =>
                {
                    Check::host_warn(
                        name,
                        format!(
                            "{} is outside Docker Desktop's default shared folders",
                            mount.host_path
                        ),
                        "add it under Docker Desktop > Settings > Resources > File sharing, or the node sees an empty directory",
                    )
                }
                (Ok(_), kind) => Check::host_ok(
                    name,
                    format!(
                        "{} exists ({})",
                        mount.host_path,
                        if kind == MountPathType::File {
                            "file"
                        } else {
                            "directory"
                        }
                    ),
                ),
            };
            checks.push(check);
        }
    }
    checks
}

async fn port_checks(
    plan: &ClusterPlan,
    docker: Option<&Docker>,
    info: Option<&EngineInfo>,
) -> Vec<Check> {
    let rootless = info.is_some_and(|i| i.rootless);
    let published = match docker {
        Some(docker) => docker.published_ports().await.unwrap_or_default(),
        None => Vec::new(),
    };
    let mut checks = Vec::new();
    for node in &plan.nodes {
        for port in &node.ports {
            let Ok(host_port) = u16::try_from(port.host_port) else {
                continue;
            };
            if host_port == 0 {
                continue;
            }
            let protocol = port.protocol;
            let name = format!(
                "port {}:{host_port}/{}",
                port.listen_address,
                protocol.as_str()
            );
            if rootless && host_port < 1024 {
                checks.push(Check::host_fail(
                    name,
                    "rootless Docker cannot publish ports below 1024",
                    "pick a host port of 1024 or more, or allow it: `sudo sysctl net.ipv4.ip_unprivileged_port_start=80`",
                ));
                continue;
            }
            let Ok(listen) = port.listen_address.parse::<IpAddr>() else {
                continue;
            };
            let bind = try_bind(SocketAddr::new(listen, host_port), protocol);
            let listeners = match bind {
                BindOutcome::Bound => Vec::new(),
                _ => listeners(protocol)
                    .into_iter()
                    .filter(|l| l.port == host_port && addresses_clash(l.address, listen))
                    .map(|l| (l.inode, socket_owner(l.inode)))
                    .collect(),
            };
            let observed = ObservedPort {
                listen,
                port: host_port,
                protocol,
                bind,
                published: &published,
                listeners: &listeners,
            };
            checks.push(port_check(name, &node.name, &plan.name, &observed));
        }
    }
    checks
}

/// What trying to bind a host port from this process showed. Only `InUse`
/// means another socket holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BindOutcome {
    Bound,
    InUse,
    /// This user may not bind it (below `net.ipv4.ip_unprivileged_port_start`,
    /// 1024 on most distributions); the Docker daemon, not this user, publishes it.
    Denied,
    /// The address is not one of this machine's.
    NotAvailable,
    Other(String),
}

fn try_bind(address: SocketAddr, protocol: Protocol) -> BindOutcome {
    let result = match protocol {
        Protocol::Udp => UdpSocket::bind(address).map(drop),
        _ => TcpListener::bind(address).map(drop),
    };
    match result {
        Ok(()) => BindOutcome::Bound,
        Err(e) => match e.kind() {
            std::io::ErrorKind::AddrInUse => BindOutcome::InUse,
            std::io::ErrorKind::PermissionDenied => BindOutcome::Denied,
            std::io::ErrorKind::AddrNotAvailable => BindOutcome::NotAvailable,
            _ => BindOutcome::Other(e.to_string()),
        },
    }
}

/// Everything known about one planned host port.
struct ObservedPort<'a> {
    listen: IpAddr,
    port: u16,
    protocol: Protocol,
    bind: BindOutcome,
    /// Every port the running containers publish.
    published: &'a [PublishedPort],
    /// Sockets listening on this port on a clashing address: (inode, owner when
    /// this user can see it).
    listeners: &'a [(u64, Option<(u32, String)>)],
}

/// The check for one planned host port of `node`, decided from what was observed.
fn port_check(name: String, node: &str, cluster: &str, observed: &ObservedPort<'_>) -> Check {
    let proto = observed.protocol.as_str().to_ascii_lowercase();
    let holder = observed.published.iter().find(|p| {
        p.host_port == observed.port
            && (p.protocol.is_empty() || p.protocol == proto)
            && p.host_ip
                .parse::<IpAddr>()
                .map_or(true, |ip| addresses_clash(ip, observed.listen))
    });
    if let Some(holder) = holder {
        return match holder.cluster.as_deref() {
            Some(owner) if owner == cluster => Check::host_ok(
                name,
                format!("published by {} of this cluster", holder.container),
            ),
            Some(owner) => Check::host_fail(
                name,
                format!(
                    "taken by container {} of kind cluster `{owner}`",
                    holder.container
                ),
                format!(
                    "delete that cluster (`devcluster down --name {owner}` or `kind delete cluster --name {owner}`), or choose another port"
                ),
            ),
            None => Check::host_fail(
                name,
                format!("taken by container {}", holder.container),
                format!(
                    "stop it (`docker stop {}`) or choose another port",
                    holder.container
                ),
            ),
        };
    }
    let find_holder = format!(
        "find it with `sudo ss -lnp 'sport = :{}'`, or choose another port",
        observed.port
    );
    let taken = |what: &str| match observed
        .listeners
        .iter()
        .find_map(|(_, owner)| owner.as_ref())
    {
        Some((pid, command)) => Check::host_fail(
            name.clone(),
            format!("taken by process {command} (pid {pid})"),
            "stop that process or choose another port",
        ),
        None => Check::host_fail(name.clone(), what.to_string(), find_holder.clone()),
    };
    match &observed.bind {
        BindOutcome::Bound => Check::host_ok(name, format!("free (for {node})")),
        BindOutcome::InUse => taken("already in use (the holder is not visible to this user)"),
        BindOutcome::Denied if !observed.listeners.is_empty() => {
            taken("a socket listens on it (its process is not visible to this user)")
        }
        BindOutcome::Denied => Check::host_ok(
            name,
            format!(
                "free (for {node}): no socket listens on it; this user may not bind it, but the Docker daemon publishes it, not this user"
            ),
        ),
        BindOutcome::NotAvailable => Check::host_fail(
            name,
            format!("{} is not an address of this machine", observed.listen),
            "use 127.0.0.1, 0.0.0.0 or an address `ip addr` lists",
        ),
        BindOutcome::Other(error) => Check::host_warn(
            name,
            format!("could not test the port: {error}"),
            find_holder.clone(),
        ),
    }
}

/// Whether sockets on `a` and `b` (same port) exclude each other: the same
/// address, or a wildcard of either. An IPv6 wildcard may be dual-stack (it is
/// unless `IPV6_V6ONLY`, which `/proc/net` does not show), so it clashes with
/// IPv4 too.
fn addresses_clash(a: IpAddr, b: IpAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (a, b) = (canonical(a), canonical(b));
    let v6_any = |ip: IpAddr| ip.is_ipv6() && ip.is_unspecified();
    a == b
        || (a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified()))
        || v6_any(a)
        || v6_any(b)
}

/// A listening socket from `/proc/net/{tcp,tcp6,udp,udp6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listener {
    address: IpAddr,
    port: u16,
    inode: u64,
}

/// The listening sockets of this network namespace (Linux; empty elsewhere).
fn listeners(protocol: Protocol) -> Vec<Listener> {
    let (tables, state) = match protocol {
        Protocol::Udp => (["/proc/net/udp", "/proc/net/udp6"], "07"),
        Protocol::Tcp => (["/proc/net/tcp", "/proc/net/tcp6"], "0A"),
        Protocol::Sctp => return Vec::new(),
    };
    tables
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| parse_listeners(&text, state))
        .collect()
}

/// The rows of a `/proc/net/tcp`-style table in `state` (`0A` TCP LISTEN, `07`
/// an unconnected UDP socket). Addresses are hexadecimal 32-bit words in host
/// byte order (kernel `net/ipv4/tcp_ipv4.c` `get_tcp4_sock`, `net/ipv6/tcp_ipv6.c`).
fn parse_listeners(text: &str, state: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if *fields.get(3)? != state {
                return None;
            }
            let (address, port) = fields.get(1)?.split_once(':')?;
            Some(Listener {
                address: parse_proc_address(address)?,
                port: u16::from_str_radix(port, 16).ok()?,
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

fn parse_proc_address(hex: &str) -> Option<IpAddr> {
    let words: Option<Vec<[u8; 4]>> = (0..hex.len() / 8)
        .map(|i| {
            let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
            Some(word.to_ne_bytes())
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    match (hex.len(), bytes.len()) {
        (8, 4) => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        (32, 16) => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The process holding socket `inode`, from the links under `/proc/<pid>/fd`;
/// `None` when no process this user may inspect holds it.
fn socket_owner(inode: u64) -> Option<(u32, String)> {
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|link| link.to_string_lossy() == target)
        });
        if holds {
            let command = std::fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            return Some((pid, command));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `df -Pk`'s "Available" column for `path`, in bytes: the number `free_disk` must match.
    fn df_available(path: &Path) -> u64 {
        let out = std::process::Command::new("df")
            .arg("-Pk")
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("df: {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .nth(1)
            .unwrap_or_else(|| panic!("df said {text:?}"));
        let kib: u64 = line
            .split_whitespace()
            .nth(3)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("df said {text:?}"));
        kib * 1024
    }

    #[test]
    fn free_disk_agrees_with_df() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().join("data root with spaces");
        std::fs::create_dir(&root).unwrap_or_else(|e| panic!("{e}"));
        let before = df_available(&root);
        let free = free_disk(&root.display().to_string()).unwrap_or_else(|| panic!("statvfs"));
        let after = df_available(&root);
        // Other writers share the disk: allow what they may use in between, plus df's
        // rounding to whole KiB.
        let slack = 64 * 1024 * 1024;
        assert!(
            free + slack >= before.min(after) && free <= before.max(after) + slack,
            "statvfs {free}, df {before}..{after}"
        );
    }

    #[test]
    fn free_disk_of_a_missing_path_is_unknown() {
        assert_eq!(free_disk("/nonexistent/devcluster/data-root"), None);
    }

    #[test]
    fn inotify_limits() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("max_user_watches"), "8192\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("max_user_instances"), "128\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let check = inotify_check(dir.path());
        assert_eq!(check.status, Status::Warn);
        assert_eq!(
            check.hint.as_deref(),
            Some(
                "sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512"
            )
        );
        std::fs::write(dir.path().join("max_user_watches"), "524288")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("max_user_instances"), "512")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inotify_check(dir.path()).status, Status::Ok);
    }

    #[test]
    fn kubectl_skew() {
        assert_eq!(
            kubectl_check(Some("1.36.0".into()), Some("1.36.1")).status,
            Status::Ok
        );
        assert_eq!(
            kubectl_check(Some("1.33.0".into()), Some("1.36.1")).status,
            Status::Warn
        );
        assert_eq!(kubectl_check(None, Some("1.36.1")).status, Status::Ok);
    }

    #[test]
    fn cgroup_v1_fails_for_new_kubernetes() {
        let info = EngineInfo {
            version: "28".into(),
            api_version: "1.47".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            flavor: EngineFlavor::Native,
            cgroup_version: Some(1),
            data_root: None,
            cpus: Some(2),
            memory_bytes: Some(8 << 30),
            rootless: false,
        };
        let known = |v: &str| NodeKubernetes::Known(Some(v.to_string()));
        assert_eq!(cgroup_check(&info, &known("1.36.1")).status, Status::Fail);
        assert_eq!(cgroup_check(&info, &known("1.34.0")).status, Status::Ok);
        assert_eq!(
            cgroup_check(&info, &NodeKubernetes::Unknown).status,
            Status::Warn
        );
    }

    fn engine(rootless: bool) -> EngineInfo {
        EngineInfo {
            version: "28".into(),
            api_version: "1.47".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            flavor: EngineFlavor::Native,
            cgroup_version: Some(2),
            data_root: None,
            cpus: Some(2),
            memory_bytes: Some(8 << 30),
            rootless,
        }
    }

    #[tokio::test]
    async fn rootless_docker_cannot_publish_low_ports() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let app = App::new(crate::adapters::world::World {
            cwd: dir.path().to_path_buf(),
            ..crate::adapters::world::World::default()
        });
        let (_, plan) = app
            .plan(Some("ingress"), Some("dct-rootless"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let checks = port_checks(&plan, None, Some(&engine(true))).await;
        assert!(!checks.is_empty());
        for check in &checks {
            assert_eq!(check.status, Status::Fail, "{check:?}");
            assert!(check.detail.contains("below 1024"), "{check:?}");
        }
    }

    #[test]
    fn docker_dependent_checks_say_they_were_skipped() {
        let check = skipped("disk");
        assert_eq!(check.status, Status::Warn);
        assert!(check.detail.contains("Docker is not reachable"));
    }

    #[test]
    fn a_listening_process_is_named() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(try_bind(address, Protocol::Tcp), BindOutcome::InUse);
        if cfg!(target_os = "linux") {
            let found = listeners(Protocol::Tcp)
                .into_iter()
                .find(|l| l.port == address.port())
                .unwrap_or_else(|| panic!("listener not in /proc/net/tcp"));
            assert_eq!(found.address, address.ip());
            let (pid, _) = socket_owner(found.inode).unwrap_or_else(|| panic!("holder not found"));
            assert_eq!(pid, std::process::id());
        }
    }

    #[test]
    fn proc_net_tables_parse_in_host_byte_order() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:0051 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1\n";
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1\n   1: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6161 1\n";
        let v4 = parse_listeners(tcp, "0A");
        if cfg!(target_endian = "little") {
            assert_eq!(
                v4,
                vec![Listener {
                    address: "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")),
                    port: 80,
                    inode: 4242
                }]
            );
            let v6 = parse_listeners(tcp6, "0A");
            assert_eq!(v6.len(), 2);
            assert_eq!(
                v6[0].address,
                "::".parse::<IpAddr>().unwrap_or_else(|e| panic!("{e}"))
            );
            assert_eq!((v6[0].port, v6[0].inode), (443, 5151));
            assert_eq!(
                v6[1].address,
                "::ffff:127.0.0.1"
                    .parse::<IpAddr>()
                    .unwrap_or_else(|e| panic!("{e}"))
            );
        }
        assert!(parse_listeners(tcp, "07").is_empty());
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn decide(
        bind: BindOutcome,
        published: &[PublishedPort],
        listeners: &[(u64, Option<(u32, String)>)],
    ) -> Check {
        let observed = ObservedPort {
            listen: ip("127.0.0.1"),
            port: 80,
            protocol: Protocol::Tcp,
            bind,
            published,
            listeners,
        };
        port_check(
            "port 127.0.0.1:80/TCP".into(),
            "dev-worker",
            "dev",
            &observed,
        )
    }

    fn published(cluster: Option<&str>, host_ip: &str) -> PublishedPort {
        PublishedPort {
            container: "holder".into(),
            cluster: cluster.map(str::to_string),
            host_ip: host_ip.into(),
            host_port: 80,
            protocol: "tcp".into(),
        }
    }

    #[test]
    fn a_port_this_user_may_not_bind_is_decided_from_listeners_and_docker() {
        // Nothing listens and Docker publishes nothing: free, because the daemon
        // (root) publishes the port, not this user.
        let free = decide(BindOutcome::Denied, &[], &[]);
        assert_eq!(free.status, Status::Ok, "{free:?}");
        assert!(free.detail.contains("no socket listens on it"), "{free:?}");
        // A visible process listens.
        let process = decide(
            BindOutcome::Denied,
            &[],
            &[(7, Some((4321, "nginx".into())))],
        );
        assert_eq!(process.status, Status::Fail);
        assert_eq!(process.detail, "taken by process nginx (pid 4321)");
        // A root process this user cannot inspect listens.
        let hidden = decide(BindOutcome::Denied, &[], &[(7, None)]);
        assert_eq!(hidden.status, Status::Fail);
        assert!(
            hidden.detail.contains("not visible to this user"),
            "{hidden:?}"
        );
        assert!(
            hidden
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("sudo ss"))
        );
        // Docker publishes it (with or without a proxy process listening).
        let other = decide(
            BindOutcome::Denied,
            &[published(Some("old"), "0.0.0.0")],
            &[],
        );
        assert_eq!(other.status, Status::Fail);
        assert!(other.detail.contains("kind cluster `old`"), "{other:?}");
        let ours = decide(
            BindOutcome::Denied,
            &[published(Some("dev"), "127.0.0.1")],
            &[],
        );
        assert_eq!(ours.status, Status::Ok, "{ours:?}");
        // Published on another address: no clash.
        let elsewhere = decide(BindOutcome::Denied, &[published(None, "127.0.0.2")], &[]);
        assert_eq!(elsewhere.status, Status::Ok, "{elsewhere:?}");
    }

    #[test]
    fn only_address_in_use_means_taken() {
        assert_eq!(decide(BindOutcome::Bound, &[], &[]).status, Status::Ok);
        let in_use = decide(BindOutcome::InUse, &[], &[]);
        assert_eq!(in_use.status, Status::Fail);
        assert!(in_use.detail.contains("already in use"));
        let elsewhere = decide(BindOutcome::NotAvailable, &[], &[]);
        assert_eq!(elsewhere.status, Status::Fail);
        assert!(elsewhere.detail.contains("not an address of this machine"));
        let odd = decide(BindOutcome::Other("boom".into()), &[], &[]);
        assert_eq!(odd.status, Status::Warn);
    }

    #[test]
    fn wildcards_clash_across_families_when_dual_stack() {
        assert!(addresses_clash(ip("0.0.0.0"), ip("127.0.0.1")));
        assert!(addresses_clash(ip("::"), ip("127.0.0.1")));
        assert!(addresses_clash(ip("::ffff:127.0.0.1"), ip("127.0.0.1")));
        assert!(!addresses_clash(ip("127.0.0.2"), ip("127.0.0.1")));
        assert!(!addresses_clash(ip("::1"), ip("127.0.0.1")));
    }
}
