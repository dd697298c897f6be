//! The local registry container on the host: made or reused by `up`, joined to the
//! `kind` network and announced to every node's containerd; removed by `down` only
//! when devcluster made it and no other cluster of devcluster's uses it.
//!
//! What it does is kind's local registry guide (kind
//! `site/static/examples/kind-with-registry.sh`), in Docker Engine calls: run the
//! registry publishing `127.0.0.1:<hostPort>` -> 5000 with `--restart=always`, connect
//! it to `kind`, write `/etc/containerd/certs.d/localhost:<hostPort>/hosts.toml` in
//! each node (containerd reads that directory on every pull, no restart needed:
//! containerd `docs/hosts.md`), and publish the KEP-1755 ConfigMap.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::adapters::docker::{
    Binding, ContainerSpec, DockerError, NodeRuntime, ObservedNode, WantedPort,
};
use crate::adapters::host::http_get;
use crate::core::error::{Error, Result};
use crate::core::plan::{
    ClusterPlan, HOSTING_CONFIGMAP, HOSTING_NAMESPACE, REGISTRY_CONTAINER_PORT, RegistryPlan,
};
use crate::core::record::Record;
use crate::operations::cluster::read_record;

/// The Docker label that marks a registry container as devcluster's own; its
/// value is the host port.
pub const OWNER_LABEL: &str = "dev.devcluster.registry";
/// The network kind puts every node on (kind
/// `pkg/cluster/internal/providers/docker/network.go`, `fixedNetworkName`).
pub const KIND_NETWORK: &str = "kind";

/// What `up` found and did about the registry container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// It did not exist; devcluster made it.
    Created,
    /// devcluster's, stopped: started again.
    Started,
    /// devcluster's, running: used as it is.
    Reused,
}

impl Container {
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Created => "created",
            Container::Started => "started",
            Container::Reused => "reused",
        }
    }
}

fn owned_by_devcluster(container: &ObservedNode) -> bool {
    container.labels.contains_key(OWNER_LABEL)
}

fn wanted(registry: &RegistryPlan) -> WantedPort<'_> {
    WantedPort {
        container_port: REGISTRY_CONTAINER_PORT,
        protocol: "tcp",
        host_port: i32::from(registry.host_port),
        listen_address: &registry.listen_address,
    }
}

/// Makes the registry container run: creates it, starts devcluster's stopped one,
/// or reuses devcluster's running one. A container of that name devcluster did not
/// make, or one of devcluster's that publishes another port, is refused.
pub async fn ensure_container(
    runtime: &dyn NodeRuntime,
    registry: &RegistryPlan,
) -> Result<Container> {
    match runtime.inspect(&registry.container).await {
        Err(DockerError::NotFound(_)) => {
            let spec = ContainerSpec {
                name: &registry.container,
                image: &registry.image,
                labels: BTreeMap::from([(
                    OWNER_LABEL.to_string(),
                    registry.host_port.to_string(),
                )]),
                publish: wanted(registry),
                restart_always: true,
            };
            runtime.run_container(&spec).await.map_err(|e| {
                let hint = if e.to_string().contains("port is already allocated")
                    || e.to_string().contains("address already in use")
                {
                    format!(
                        "another program holds {}:{}: stop it, or set `registry.hostPort` to a free port",
                        registry.listen_address, registry.host_port
                    )
                } else {
                    format!(
                        "on a machine that cannot pull `{}`, set `registry.image` to a registry image Docker has (`docker images`)",
                        registry.image
                    )
                };
                Error::failed(format!(
                    "cannot start the registry container `{}`",
                    registry.container
                ))
                .cause(e)
                .hint(hint)
            })?;
            Ok(Container::Created)
        }
        Err(e) => Err(e.into()),
        Ok(found) if !owned_by_devcluster(&found) => Err(Error::failed(format!(
            "a container named `{}` exists and devcluster did not create it; not using it as the registry",
            registry.container
        ))
        .hint(format!(
            "remove or rename it (`docker rm -f {0}` if it is not needed), or set `registry.hostPort` to another port (the registry is named `devcluster-registry-<hostPort>`)",
            registry.container
        ))),
        Ok(found) => {
            if matches!(found.binding(&wanted(registry)), Binding::Missing) {
                return Err(Error::failed(format!(
                    "devcluster's registry container `{}` does not publish {}:{}",
                    registry.container, registry.listen_address, registry.host_port
                ))
                .hint(format!(
                    "it was made for another listen address; remove it with `docker rm -f {}` and run `devcluster up` again",
                    registry.container
                )));
            }
            if found.state == "running" {
                return Ok(Container::Reused);
            }
            runtime
                .start_container(&registry.container)
                .await
                .map_err(|e| {
                    Error::failed(format!(
                        "cannot start devcluster's registry container `{}`",
                        registry.container
                    ))
                    .cause(e)
                    .hint(format!(
                        "`docker logs {}` shows why; `docker rm -f {0}` lets `devcluster up` make it anew",
                        registry.container
                    ))
                })?;
            Ok(Container::Started)
        }
    }
}

/// The address the host reaches the registry on: its listen address, or loopback
/// when it listens on every address.
pub fn host_address(registry: &RegistryPlan) -> &str {
    match registry.listen_address.as_str() {
        "0.0.0.0" | "::" => "127.0.0.1",
        other => other,
    }
}

/// The status line of an HTTP answer.
pub fn status_line(answer: &str) -> String {
    answer.lines().next().unwrap_or_default().trim().to_string()
}

/// Waits until a registry that was just started answers its API (`GET /v2/` with
/// 200) on the host port, so that a push right after `up` finds it listening: the
/// registry binds its port a moment after its container starts. At `deadline`,
/// fails with the last answer.
pub async fn wait_answering(registry: &RegistryPlan, deadline: Instant) -> Result<()> {
    let address = host_address(registry);
    loop {
        let last = match http_get(address, registry.host_port, "/v2", Duration::from_secs(2)).await
        {
            Ok(answer) if status_line(&answer).contains(" 200") => return Ok(()),
            Ok(answer) => format!("`GET /v2/` answered `{}`", status_line(&answer)),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(Error::failed(format!(
                "the registry `{}` does not answer on {address}:{}",
                registry.container, registry.host_port
            ))
            .cause(last)
            .hint(format!(
                "`docker logs {}` shows why; `docker rm -f {0}` lets `devcluster up` make it anew",
                registry.container
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Connects the registry to the `kind` network unless it is on it already, so the
/// nodes reach it by name. `true` when it was connected now.
pub async fn join_kind_network(runtime: &dyn NodeRuntime, registry: &RegistryPlan) -> Result<bool> {
    let networks = runtime
        .container_networks(&registry.container)
        .await
        .map_err(Error::from)?;
    if networks.iter().any(|n| n == KIND_NETWORK) {
        return Ok(false);
    }
    runtime
        .connect_network(KIND_NETWORK, &registry.container)
        .await
        .map_err(|e| {
            Error::failed(format!(
                "cannot connect the registry `{}` to the `{KIND_NETWORK}` network",
                registry.container
            ))
            .cause(e)
            .hint(format!(
                "`docker network connect {KIND_NETWORK} {}` does it by hand",
                registry.container
            ))
        })?;
    Ok(true)
}

/// Writes the registry's `hosts.toml` into every node of `plan` (inside a node,
/// `localhost` is the node: containerd must be told where `localhost:<hostPort>` is).
pub async fn configure_nodes(
    runtime: &dyn NodeRuntime,
    plan: &ClusterPlan,
    registry: &RegistryPlan,
) -> Result<()> {
    let script = format!(
        "mkdir -p '{0}' && cat > '{1}.tmp' && mv '{1}.tmp' '{1}'",
        registry.hosts_dir(),
        registry.hosts_toml_path()
    );
    let text = registry.hosts_toml();
    let writes = plan.nodes.iter().map(|node| {
        let script = &script;
        let text = &text;
        async move {
            let output = runtime
                .exec_with_stdin(&node.name, &["sh", "-c", script], text.as_bytes())
                .await
                .map_err(Error::from)?;
            if output.exit_code != 0 {
                return Err(Error::failed(format!(
                    "cannot write {} in node {}",
                    registry.hosts_toml_path(),
                    node.name
                ))
                .cause(output.stderr.trim().to_string()));
            }
            Ok(())
        }
    });
    for result in futures_util::future::join_all(writes).await {
        result?;
    }
    Ok(())
}

/// The KEP-1755 ConfigMap (`kube-public/local-registry-hosting`) that tells
/// tools (Tilt, Skaffold, ...) where to push.
pub fn hosting_config_map(registry: &RegistryPlan) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": HOSTING_CONFIGMAP,
            "namespace": HOSTING_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "devcluster"}
        },
        "data": {"localRegistryHosting.v1": registry.hosting_value()}
    })
}

/// What `down` did about a cluster's registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// Other clusters of devcluster's use it.
    KeptFor(Vec<String>),
    /// devcluster did not create the container of that name.
    NotDevclusters,
    /// There is no such container.
    Absent,
}

/// The other clusters (not `cluster`) whose record says they use `registry`.
pub async fn other_users(
    runtime: &dyn NodeRuntime,
    cluster: &str,
    registry: &RegistryPlan,
) -> Result<Vec<String>> {
    let nodes = runtime.list_nodes(None).await.map_err(Error::from)?;
    let mut by_cluster: BTreeMap<String, Vec<ObservedNode>> = BTreeMap::new();
    for node in nodes.into_iter().filter(|n| n.cluster != cluster) {
        by_cluster
            .entry(node.cluster.clone())
            .or_default()
            .push(node);
    }
    let mut users = Vec::new();
    for (name, nodes) in by_cluster {
        let uses = read_record(runtime, &nodes)
            .await
            .and_then(|r: Record| r.plan)
            .and_then(|p| p.registry)
            .is_some_and(|r| r.container == registry.container);
        if uses {
            users.push(name);
        }
    }
    Ok(users)
}

/// Removes the registry of `cluster` (as its record planned it) when devcluster
/// made the container and no other cluster of devcluster's uses it.
pub async fn remove_unused(
    runtime: &dyn NodeRuntime,
    cluster: &str,
    registry: &RegistryPlan,
) -> Result<Removal> {
    let found = match runtime.inspect(&registry.container).await {
        Err(DockerError::NotFound(_)) => return Ok(Removal::Absent),
        Err(e) => return Err(e.into()),
        Ok(found) => found,
    };
    if !owned_by_devcluster(&found) {
        return Ok(Removal::NotDevclusters);
    }
    let users = other_users(runtime, cluster, registry).await?;
    if !users.is_empty() {
        return Ok(Removal::KeptFor(users));
    }
    match runtime.remove_container(&registry.container).await {
        Ok(()) | Err(DockerError::NotFound(_)) => Ok(Removal::Removed),
        Err(e) => Err(Error::failed(format!(
            "cannot remove the registry container `{}`",
            registry.container
        ))
        .cause(e)
        .hint(format!("`docker rm -f {}` removes it", registry.container))),
    }
}
