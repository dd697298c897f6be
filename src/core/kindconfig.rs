//! Renders a [`ClusterPlan`] as a kind `v1alpha4` Cluster config: deterministic, every
//! node with an explicit role, labels through kind's `labels:` field.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::plan::{
    CONTAINERD_CONFIG_PATCH, CONTROL_PLANE_TAINT, ClusterPlan, NodePlan, Role,
};
use crate::core::profile::Propagation;
use crate::core::yaml::{self, LiteralBlock};

pub const KIND_API_VERSION: &str = "kind.x-k8s.io/v1alpha4";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KindCluster<'a> {
    kind: &'static str,
    api_version: &'static str,
    name: &'a str,
    networking: KindNetworking<'a>,
    nodes: Vec<KindNode<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    containerd_config_patches: Vec<LiteralBlock>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KindNetworking<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_family: Option<&'a str>,
    api_server_address: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    api_server_port: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_subnet: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_subnet: Option<&'a str>,
    #[serde(
        rename = "disableDefaultCNI",
        skip_serializing_if = "std::ops::Not::not"
    )]
    disable_default_cni: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    kube_proxy_mode: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KindNode<'a> {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extra_mounts: Vec<KindMount<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extra_port_mappings: Vec<KindPortMapping<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    kubeadm_config_patches: Vec<LiteralBlock>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KindMount<'a> {
    host_path: &'a str,
    container_path: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    read_only: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    selinux_relabel: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    propagation: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KindPortMapping<'a> {
    container_port: u16,
    host_port: i32,
    listen_address: &'a str,
    protocol: &'static str,
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

/// The kind config for `plan`, as YAML text. Same plan, same bytes.
pub fn render(plan: &ClusterPlan) -> String {
    let net = &plan.networking;
    let mut control_plane_index = 0;
    let nodes = plan
        .nodes
        .iter()
        .map(|node| {
            if node.role == Role::ControlPlane {
                control_plane_index += 1;
            }
            kind_node(
                plan,
                node,
                control_plane_index == 1 && node.role == Role::ControlPlane,
            )
        })
        .collect();
    let cluster = KindCluster {
        kind: "Cluster",
        api_version: KIND_API_VERSION,
        name: &plan.name,
        networking: KindNetworking {
            ip_family: net.ip_family.as_deref(),
            api_server_address: &net.api_server_address,
            api_server_port: net.api_server_port,
            pod_subnet: net.pod_subnet.as_deref(),
            service_subnet: net.service_subnet.as_deref(),
            disable_default_cni: net.disable_default_cni,
            kube_proxy_mode: net.kube_proxy_mode.as_deref(),
        },
        nodes,
        containerd_config_patches: containerd_patches(plan),
    };
    // Serialising these plain types cannot fail; an empty string would be caught
    // by every consumer's own decoding.
    yaml::to_string(&cluster).unwrap_or_default()
}

fn kind_node<'a>(
    plan: &'a ClusterPlan,
    node: &'a NodePlan,
    first_control_plane: bool,
) -> KindNode<'a> {
    KindNode {
        role: node.role.as_str(),
        image: plan.image.as_deref(),
        labels: &node.labels,
        extra_mounts: node
            .mounts
            .iter()
            .map(|m| KindMount {
                host_path: &m.host_path,
                container_path: &m.container_path,
                read_only: m.read_only,
                selinux_relabel: m.selinux_relabel,
                propagation: match m.propagation {
                    Propagation::None => None,
                    Propagation::HostToContainer => Some("HostToContainer"),
                    Propagation::Bidirectional => Some("Bidirectional"),
                },
            })
            .collect(),
        extra_port_mappings: node
            .ports
            .iter()
            .map(|p| KindPortMapping {
                container_port: p.container_port,
                host_port: p.host_port,
                listen_address: &p.listen_address,
                protocol: p.protocol.as_str(),
            })
            .collect(),
        kubeadm_config_patches: taint_patch(node, first_control_plane, &removed_by_kind(plan))
            .into_iter()
            .collect(),
    }
}

/// With a local registry, containerd reads per-registry `hosts.toml` files from
/// `/etc/containerd/certs.d` (kind `site/static/examples/kind-with-registry.sh`;
/// node images from kind v0.27.0 set it already, older ones need the patch).
fn containerd_patches(plan: &ClusterPlan) -> Vec<LiteralBlock> {
    match plan.registry {
        Some(_) => vec![LiteralBlock(format!("{CONTAINERD_CONFIG_PATCH}\n"))],
        None => Vec::new(),
    }
}

/// The control-plane taints kind removes after `kubeadm init` on a one-node
/// cluster (kind `pkg/cluster/internal/create/actions/kubeadminit/init.go`: the
/// `master` taint before Kubernetes 1.24, both in 1.24, `control-plane` after).
/// `kubectl taint ... KEY-` fails when the node lacks the taint, and kind aborts
/// with "failed to remove control plane taint", so a taint patch on that node must
/// still list them. An image without a readable version is taken as current.
fn removed_by_kind(plan: &ClusterPlan) -> Vec<&'static str> {
    const MASTER: &str = "node-role.kubernetes.io/master";
    if plan.nodes.len() != 1 {
        return Vec::new();
    }
    let minor = plan.kubernetes_version.as_deref().and_then(|v| {
        let mut parts = v.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        (major == 1).then_some(minor)
    });
    match minor {
        Some(m) if m < 24 => vec![MASTER],
        Some(24) => vec![CONTROL_PLANE_TAINT, MASTER],
        _ => vec![CONTROL_PLANE_TAINT],
    }
}

/// Taints go through kubeadm's `nodeRegistration.taints`, the same field in the
/// v1beta3 and v1beta4 kubeadm APIs. The patch names only the `kind`, so kind
/// applies it whichever kubeadm API version the node image uses. Setting taints
/// replaces kubeadm's defaults, so a control-plane keeps its own taint explicitly,
/// and a one-node cluster keeps the taints kind removes after init.
fn taint_patch(
    node: &NodePlan,
    first_control_plane: bool,
    removed_by_kind: &[&str],
) -> Option<LiteralBlock> {
    node.profile_taints().next()?;
    let kind = if first_control_plane {
        "InitConfiguration"
    } else {
        "JoinConfiguration"
    };
    let mut text = format!("kind: {kind}\nnodeRegistration:\n  taints:\n");
    for key in removed_by_kind {
        if !node.taints.iter().any(|t| t.key == *key) {
            text.push_str(&format!("  - key: {key}\n    effect: NoSchedule\n"));
        }
    }
    for taint in &node.taints {
        text.push_str(&format!("  - key: {}\n", taint.key));
        if let Some(value) = &taint.value {
            text.push_str(&format!("    value: {value:?}\n"));
        }
        text.push_str(&format!("    effect: {}\n", taint.effect.as_str()));
    }
    Some(LiteralBlock(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::plan_of_text;

    fn rendered(image: &str) -> String {
        let text = format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nimage: {image}\nnodes:\n  taints:\n    control-plane: [\"example.com/busy:PreferNoSchedule\"]\n"
        );
        render(&plan_of_text(&text))
    }

    #[test]
    fn a_registry_turns_on_containerd_s_hosts_directory() {
        let with = render(&plan_of_text(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nregistry: {enabled: true}\n",
        ));
        assert!(
            with.contains("containerdConfigPatches:\n- |\n  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = \"/etc/containerd/certs.d\"\n"),
            "{with}"
        );
        let without = render(&plan_of_text(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\n",
        ));
        assert!(!without.contains("containerdConfigPatches"), "{without}");
    }

    #[test]
    fn a_one_node_taint_patch_keeps_the_taint_kind_removes() {
        let current = rendered("kindest/node:v1.36.1");
        assert!(current.contains("- key: node-role.kubernetes.io/control-plane\n"));
        assert!(!current.contains("node-role.kubernetes.io/master"));
        let old = rendered("kindest/node:v1.20.2");
        assert!(old.contains("- key: node-role.kubernetes.io/master\n"));
        assert!(!old.contains("node-role.kubernetes.io/control-plane"));
        let both = rendered("kindest/node:v1.24.7");
        assert!(both.contains("control-plane\n") && both.contains("master\n"));
        for text in [current, old, both] {
            assert!(
                text.contains("- key: example.com/busy\n        effect: PreferNoSchedule"),
                "{text}"
            );
        }
    }
}
