//! `mount`: the plan's mounts on every node that should have them, layer by
//! layer: a sentinel from the host, the bind and the sentinel in the node
//! container (Docker exec), and a pod on the node that sees it through `hostPath`.
//! The node layer runs while the probe namespace is still being made ready.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures_util::future::{BoxFuture, join_all};

use crate::adapters::kube::probe::ProbeNode;
use crate::core::check::{Check, Layer, Status};
use crate::core::plan::{ClusterPlan, MountPlan, NodePlan};
use crate::core::profile::MountPathType;
use crate::operations::verify::mounts::{self, MountProbe};
use crate::operations::verify::probes::layers::{node_and_pod, node_layer, pod_layer};
use crate::operations::verify::probes::subpath::Ride;
use crate::operations::verify::probes::{Probe, Run};

pub struct Mount;

impl Probe for Mount {
    fn name(&self) -> &'static str {
        "mount"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(mount_checks(run))
    }
}

/// The plan's mounts on every node that should have them: host, node, pod.
async fn mount_checks(run: &Run<'_>) -> Vec<Check> {
    let (target, api_nodes) = (run.target, &run.api_nodes);
    let context = run.base();
    let Some(plan) = target.plan else {
        return Vec::new();
    };
    let probes = probed(plan);
    // Each node's subPath check rides in the pod of its first mount (see
    // `subpath.rs`).
    let mut tickets = run.subpath.take_all();
    let mut checks = Vec::new();
    let runs = probes.into_iter().enumerate().map(|(index, mount)| {
        let mut rides = tickets.of_mount(index);
        async move {
            let mut probe = MountProbe {
                path: mount.container_path.clone(),
                file: mount.path_type == MountPathType::File,
                read_only: mount.read_only,
                token: format!("{}{index}", context.token),
                first_line: None,
            };
            let host_path = PathBuf::from(&mount.host_path);
            let mut checks = Vec::new();
            if let Err(check) = mounts::prepare_host(&host_path, &mut probe) {
                checks.push(check);
                return checks;
            }
            context.leftovers.sentinel(&host_path, &probe);
            checks.push(Check::new(
                &format!("mount {}", probe.path),
                None,
                Layer::Host,
                Status::Ok,
                format!("sentinel written to {}", mount.host_path),
            ));
            let targets = nodes_with(plan, &mount);
            let per_node = targets.iter().enumerate().map(|(n, node)| {
                let ride = rides.remove(&node.name);
                let probe = probe.clone();
                let host_path = host_path.clone();
                let mount = mount.clone();
                async move {
                    let node_layer = async {
                        let mut checks = Vec::new();
                        let ok = node_layer(
                            target,
                            &node.name,
                            &probe,
                            &mount.host_path,
                            &host_path,
                            &mut checks,
                        )
                        .await;
                        (ok, checks)
                    };
                    let Some(api_node) = api_nodes.iter().find(|a| a.name == node.name) else {
                        let (_, mut checks) = node_layer.await;
                        checks.push(Check::new(
                            &format!("mount {}", probe.path),
                            Some(&node.name),
                            Layer::Pod,
                            Status::Fail,
                            "the node is not registered in the API",
                        ));
                        return checks;
                    };
                    let pod_layer = async {
                        let context = run.pods().await.ok()?;
                        // Without the ConfigMap there is nothing to carry; the
                        // subPath probe reports why.
                        let ride = match ride {
                            Some(ride) if run.subpath.config_map(run).await.is_ok() => Some(ride),
                            _ => None,
                        };
                        Some(
                            pod_layer(
                                context,
                                api_node,
                                &probe,
                                &host_path,
                                &format!("mnt{index}"),
                                n,
                                ride,
                            )
                            .await,
                        )
                    };
                    node_and_pod(&probe.path, &node.name, node_layer, pod_layer).await
                }
            });
            for node_checks in join_all(per_node).await {
                checks.extend(node_checks);
            }
            context.leftovers.remove_sentinel(&host_path, &probe);
            checks
        }
    });
    for mount_checks in join_all(runs).await {
        checks.extend(mount_checks);
    }
    checks
}

/// The plan's mounts, each once (by host path and path in the node), in the
/// order they are probed.
fn probed(plan: &ClusterPlan) -> Vec<MountPlan> {
    let mut probes: Vec<MountPlan> = Vec::new();
    for mount in plan.nodes.iter().flat_map(|n| &n.mounts) {
        if !probes
            .iter()
            .any(|p| p.host_path == mount.host_path && p.container_path == mount.container_path)
        {
            probes.push(mount.clone());
        }
    }
    probes
}

/// The plan's nodes that have `mount`.
fn nodes_with<'p>(plan: &'p ClusterPlan, mount: &MountPlan) -> Vec<&'p NodePlan> {
    plan.nodes
        .iter()
        .filter(|n| n.mounts.contains(mount))
        .collect()
}

/// For each of `nodes` that gets a mount pod, the index of its first mount a
/// subPath check can ride with (see `subpath.rs`).
pub fn subpath_carriers(
    plan: Option<&ClusterPlan>,
    nodes: &[ProbeNode],
) -> BTreeMap<String, usize> {
    let mut carriers = BTreeMap::new();
    let Some(plan) = plan else {
        return carriers;
    };
    for (index, mount) in probed(plan).iter().enumerate() {
        if !Ride::fits(&mount.container_path) {
            continue;
        }
        for node in nodes_with(plan, mount) {
            if nodes.iter().any(|n| n.name == node.name) {
                carriers.entry(node.name.clone()).or_insert(index);
            }
        }
    }
    carriers
}
