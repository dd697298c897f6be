//! `devcluster doctor`: checks this machine against a profile before kind runs.
//! Each check says ok, warn or fail, one line of detail, and for warn/fail the
//! next step. `devcluster up` runs the same checks as its preflight step.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use crate::adapters::docker::{EngineFlavor, EngineInfo, ImageVersion, NodeRuntime, PublishedPort};
use crate::adapters::host::{self, PortHolding, PortObservation};
use crate::adapters::kind::{KindError, KindVersion, MINIMUM_VERSION};
use crate::core::error::Result;
use crate::core::plan::{self, ClusterPlan, Protocol, RegistryPlan};
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

/// The checks, through the context's node runtime and cluster provider: Docker
/// connected once (shared with `up`) and kind located once, or a test's doubles.
async fn checks_with(app: &App, plan: &ClusterPlan, existing_cluster: bool) -> Vec<Check> {
    let (runtime, kind, kubectl) =
        tokio::join!(app.node_runtime(), kind_version(app), kubectl_version(app));
    let mut checks = Vec::new();
    let (runtime, info) = match runtime {
        Ok(runtime) => match runtime.info().await {
            Ok(info) => {
                checks.push(Check::host_ok(
                    "docker",
                    format!(
                        "Docker {} ({}/{}, {}) at {}",
                        info.version,
                        info.os,
                        info.arch,
                        flavor_name(info.flavor),
                        runtime.endpoint()
                    ),
                ));
                (Some(runtime), Some(info))
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
    let runtime = runtime.as_deref();
    let kind_version = match kind {
        Ok((found, location)) if found < MINIMUM_VERSION => {
            checks.push(kind_failure(&KindError::TooOld { found, location }));
            Some(found)
        }
        Ok((version, location)) => {
            let mut check = kind_features(version);
            check.detail = format!("{}; at {location}", check.detail);
            checks.push(check);
            Some(version)
        }
        Err(e) => {
            checks.push(kind_failure(&e));
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
                node_image_check(image, plan.kubernetes_version.as_deref(), runtime).await;
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
        Some(match runtime {
            Some(runtime) => existing_cluster_check(runtime, plan).await,
            None => skipped("cluster"),
        })
    };
    let (engine, ports, cluster) =
        tokio::join!(engine, port_checks(plan, runtime, info.as_ref()), cluster);
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
async fn existing_cluster_check(runtime: &dyn NodeRuntime, plan: &ClusterPlan) -> Check {
    let nodes = match runtime.list_nodes(Some(&plan.name)).await {
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
    let managed = crate::operations::cluster::read_record(runtime, &nodes)
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
async fn kind_version(app: &App) -> std::result::Result<(KindVersion, String), KindError> {
    let kind = app.cluster_provider()?;
    Ok((kind.version().await?, kind.describe()))
}

/// The `kind` row for a kind that is missing, unusable or too old: the error's
/// own words and its next step.
fn kind_failure(error: &KindError) -> Check {
    Check::host_fail("kind", error.to_string(), error.hint().unwrap_or_default())
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
    runtime: Option<&dyn NodeRuntime>,
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
    let Some(runtime) = runtime else {
        return unknown(
            format!(
                "the Kubernetes version of {image} is unknown: its tag has none, and Docker is not reachable to read the image"
            ),
            tag_it,
        );
    };
    match runtime.image_kubernetes_version(image).await {
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
        (Some(root), true) => match host::free_disk(root) {
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
    runtime: Option<&dyn NodeRuntime>,
    info: Option<&EngineInfo>,
) -> Vec<Check> {
    let rootless = info.is_some_and(|i| i.rootless);
    let published = match runtime {
        Some(runtime) => runtime.published_ports().await.unwrap_or_default(),
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
            let (bind, listeners) = host::observe_port(listen, host_port, protocol);
            let observed = PortObservation {
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
    if let Some(registry) = &plan.registry {
        checks.push(registry_port_check(registry, &published));
    }
    checks
}

/// The local registry's host port: free, or published by the registry container
/// `up` will reuse.
fn registry_port_check(registry: &RegistryPlan, published: &[PublishedPort]) -> Check {
    let name = format!(
        "port {}:{}/TCP (registry)",
        registry.listen_address, registry.host_port
    );
    if published
        .iter()
        .any(|p| p.container == registry.container && p.host_port == registry.host_port)
    {
        return Check::host_ok(
            name,
            format!("published by {}, which `up` reuses", registry.container),
        );
    }
    let Ok(listen) = registry.listen_address.parse::<IpAddr>() else {
        return Check::host_fail(
            name,
            format!("{} is not an IP address", registry.listen_address),
            "set `registry.listenAddress` to 127.0.0.1",
        );
    };
    let (bind, listeners) = host::observe_port(listen, registry.host_port, Protocol::Tcp);
    let observed = PortObservation {
        listen,
        port: registry.host_port,
        protocol: Protocol::Tcp,
        bind,
        published,
        listeners: &listeners,
    };
    port_check(name, &registry.container, "", &observed)
}

/// The check for one planned host port of `node`: who holds it
/// ([`host::decide_port`]), said with the next step.
fn port_check(name: String, node: &str, cluster: &str, observed: &PortObservation<'_>) -> Check {
    let find_holder = format!(
        "find it with `sudo ss -lnp 'sport = :{}'`, or choose another port",
        observed.port
    );
    match host::decide_port(observed) {
        PortHolding::Published {
            container,
            cluster: Some(owner),
        } if owner == cluster => {
            Check::host_ok(name, format!("published by {container} of this cluster"))
        }
        PortHolding::Published {
            container,
            cluster: Some(owner),
        } => Check::host_fail(
            name,
            format!("taken by container {container} of kind cluster `{owner}`"),
            format!(
                "delete that cluster (`devcluster down --name {owner}` or `kind delete cluster --name {owner}`), or choose another port"
            ),
        ),
        PortHolding::Published {
            container,
            cluster: None,
        } => Check::host_fail(
            name,
            format!("taken by container {container}"),
            format!("stop it (`docker stop {container}`) or choose another port"),
        ),
        PortHolding::Process { pid, command } => Check::host_fail(
            name,
            format!("taken by process {command} (pid {pid})"),
            "stop that process or choose another port",
        ),
        PortHolding::Free => Check::host_ok(name, format!("free (for {node})")),
        PortHolding::InUseByHidden => Check::host_fail(
            name,
            "already in use (the holder is not visible to this user)",
            find_holder,
        ),
        PortHolding::ListenedByHidden => Check::host_fail(
            name,
            "a socket listens on it (its process is not visible to this user)",
            find_holder,
        ),
        PortHolding::FreeForTheDaemon => Check::host_ok(
            name,
            format!(
                "free (for {node}): no socket listens on it; this user may not bind it, but the Docker daemon publishes it, not this user"
            ),
        ),
        PortHolding::NotAnAddress => Check::host_fail(
            name,
            format!("{} is not an address of this machine", observed.listen),
            "use 127.0.0.1, 0.0.0.0 or an address `ip addr` lists",
        ),
        PortHolding::Untested(error) => Check::host_warn(
            name,
            format!("could not test the port: {error}"),
            find_holder,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::docker::PublishedPort;
    use crate::adapters::host::BindOutcome;
    use crate::core::plan::Protocol;

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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn decide(
        bind: BindOutcome,
        published: &[PublishedPort],
        listeners: &[(u64, Option<(u32, String)>)],
    ) -> Check {
        let observed = PortObservation {
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

    mod with_doubles {
        //! doctor's decisions over a canned node runtime and cluster provider: what
        //! the engine and kind answer is set here, not produced by a fake server
        //! or a fake binary.
        use std::sync::Arc;

        use super::super::*;
        use crate::adapters::docker::canned::CannedRuntime;
        use crate::adapters::docker::{DockerError, ObservedNode, PublishedPort};
        use crate::adapters::kind::canned::CannedProvider;
        use crate::adapters::world::World;
        use crate::core::record::{self, Phase, Record};

        const HEADER: &str = "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\n";

        /// doctor's checks of `profile` (a profile's text) on a machine whose Docker
        /// and kind answer as `runtime` and `kind` do.
        async fn doctor(profile: &str, runtime: CannedRuntime, kind: CannedProvider) -> Vec<Check> {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let file = dir.path().join("profile.yaml");
            std::fs::write(&file, profile).unwrap_or_else(|e| panic!("{e}"));
            let app = App::new(World {
                cwd: dir.path().to_path_buf(),
                ..World::default()
            })
            .with_node_runtime(Arc::new(runtime))
            .with_cluster_provider(Arc::new(kind));
            let (_, plan) = app
                .plan(Some(&file.display().to_string()), None)
                .unwrap_or_else(|e| panic!("{}", e.render()));
            checks(&app, &plan, true).await
        }

        fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
            checks
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("no check {name} in {checks:#?}"))
        }

        #[tokio::test]
        async fn the_kind_row_is_decided_by_what_the_provider_answers() {
            let profile = format!("{HEADER}name: dct-kind\n");
            let old = doctor(
                &profile,
                CannedRuntime::empty(),
                CannedProvider::release(0, 20, 0),
            )
            .await;
            let kind = find(&old, "kind");
            assert_eq!(kind.status, Status::Fail, "{kind:?}");
            assert_eq!(
                kind.detail,
                "kind v0.20.0 is older than v0.26.0, the oldest devcluster supports; at /canned/kind (from DEVCLUSTER_KIND)"
            );
            assert!(
                kind.hint
                    .as_deref()
                    .is_some_and(|h| h.contains("upgrade kind")),
                "{kind:?}"
            );

            let missing = CannedProvider {
                version: Err(KindError::NotInstalled {
                    looked: "not on PATH, DEVCLUSTER_KIND unset, no cache directory".into(),
                }),
                ..CannedProvider::release(0, 0, 0)
            };
            let none = doctor(&profile, CannedRuntime::empty(), missing).await;
            let kind = find(&none, "kind");
            assert_eq!(kind.status, Status::Fail, "{kind:?}");
            assert!(
                kind.detail
                    .starts_with("kind is not installed (not on PATH"),
                "{kind:?}"
            );
            assert!(
                kind.hint
                    .as_deref()
                    .is_some_and(|h| h.contains("--install-kind")),
                "{kind:?}"
            );

            let current = doctor(
                &profile,
                CannedRuntime::empty(),
                CannedProvider::release(0, 32, 0),
            )
            .await;
            let kind = find(&current, "kind");
            assert_eq!(kind.status, Status::Ok, "{kind:?}");
            assert!(
                kind.detail.contains("default node image Kubernetes 1.36.1"),
                "{kind:?}"
            );
            assert!(
                kind.detail.contains("helper-toleration regression"),
                "{kind:?}"
            );
            // The node image's Kubernetes comes from kind's default: cgroup v2 is fine.
            assert_eq!(find(&current, "cgroups").status, Status::Ok);
        }

        /// A port nothing on this host listens on, so only the runtime's answer decides.
        fn free_port() -> u16 {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or_else(|e| panic!("{e}"))
        }

        fn published_by(container: &str, cluster: Option<&str>, port: u16) -> PublishedPort {
            PublishedPort {
                container: container.into(),
                cluster: cluster.map(str::to_string),
                host_ip: "0.0.0.0".into(),
                host_port: port,
                protocol: "tcp".into(),
            }
        }

        #[tokio::test]
        async fn a_port_the_runtime_publishes_is_judged_by_whose_container_holds_it() {
            let port = free_port();
            let profile = format!(
                "{HEADER}name: dct-ports\nports:\n  - containerPort: 80\n    hostPort: {port}\n"
            );
            let name = format!("port 127.0.0.1:{port}/TCP");
            let mut runtime = CannedRuntime::empty();
            runtime.published = vec![published_by("old-worker", Some("old"), port)];
            let other = doctor(&profile, runtime, CannedProvider::release(0, 30, 0)).await;
            let check = find(&other, &name);
            assert_eq!(check.status, Status::Fail, "{check:?}");
            assert_eq!(
                check.detail,
                "taken by container old-worker of kind cluster `old`"
            );
            assert!(
                check
                    .hint
                    .as_deref()
                    .is_some_and(|h| h.contains("devcluster down --name old")),
                "{check:?}"
            );

            let mut runtime = CannedRuntime::empty();
            runtime.published = vec![published_by(
                "dct-ports-control-plane",
                Some("dct-ports"),
                port,
            )];
            let ours = doctor(&profile, runtime, CannedProvider::release(0, 30, 0)).await;
            let check = find(&ours, &name);
            assert_eq!(check.status, Status::Ok, "{check:?}");
            assert!(check.detail.contains("of this cluster"), "{check:?}");

            let mut runtime = CannedRuntime::empty();
            runtime.published = vec![published_by("web", None, port)];
            let plain = doctor(&profile, runtime, CannedProvider::release(0, 30, 0)).await;
            let check = find(&plain, &name);
            assert_eq!(check.status, Status::Fail, "{check:?}");
            assert!(
                check
                    .hint
                    .as_deref()
                    .is_some_and(|h| h.contains("docker stop web")),
                "{check:?}"
            );
        }

        fn control_plane(cluster: &str) -> ObservedNode {
            ObservedNode {
                name: format!("{cluster}-control-plane"),
                cluster: cluster.into(),
                role: "control-plane".into(),
                state: "exited".into(),
                image: "kindest/node:v1.36.1".into(),
                labels: Default::default(),
                mounts: Vec::new(),
                ports: Vec::new(),
                requested_ports: Vec::new(),
            }
        }

        #[tokio::test]
        async fn an_existing_cluster_is_told_apart_by_its_record() {
            let profile = format!("{HEADER}name: dct-existing\n");
            let mut runtime = CannedRuntime::empty();
            runtime.nodes = vec![control_plane("dct-existing"), control_plane("another")];
            let foreign = doctor(&profile, runtime, CannedProvider::release(0, 30, 0)).await;
            let check = find(&foreign, "cluster");
            assert_eq!(check.status, Status::Warn, "{check:?}");
            assert_eq!(
                check.detail,
                "cluster `dct-existing` already exists (not created by devcluster): dct-existing-control-plane (exited)"
            );

            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let app = App::new(World {
                cwd: dir.path().to_path_buf(),
                ..World::default()
            });
            let (_, plan) = app
                .plan(Some("single"), Some("dct-existing"))
                .unwrap_or_else(|e| panic!("{}", e.render()));
            let mut runtime = CannedRuntime::empty();
            runtime.nodes = vec![control_plane("dct-existing")];
            runtime.files.insert(
                (
                    "dct-existing-control-plane".into(),
                    record::RECORD_PATH.into(),
                ),
                Record::new(&plan, Phase::Complete).to_json().into_bytes(),
            );
            let ours = doctor(&profile, runtime, CannedProvider::release(0, 30, 0)).await;
            let check = find(&ours, "cluster");
            assert!(
                check.detail.contains("(created by devcluster)"),
                "{check:?}"
            );

            let empty = doctor(
                &profile,
                CannedRuntime::empty(),
                CannedProvider::release(0, 30, 0),
            )
            .await;
            assert_eq!(find(&empty, "cluster").status, Status::Ok);
        }

        #[tokio::test]
        async fn an_engine_that_fails_its_info_call_skips_what_needs_it() {
            let mut runtime = CannedRuntime::empty();
            runtime.info = Err(DockerError::Timeout {
                operation: "info".into(),
                seconds: 5,
            });
            let checks = doctor(
                &format!("{HEADER}name: dct-info\n"),
                runtime,
                CannedProvider::release(0, 30, 0),
            )
            .await;
            let docker = find(&checks, "docker");
            assert_eq!(docker.status, Status::Fail);
            assert_eq!(docker.detail, "Docker did not answer `info` within 5s");
            assert!(find(&checks, "cluster").detail.contains("skipped"));
            assert!(find(&checks, "disk").detail.contains("skipped"));
        }
    }
}
