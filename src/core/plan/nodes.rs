//! The nodes: how many of each role, their names, the ingress node, node selectors,
//! and the node image with the Kubernetes version its tag names.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::PlanInput;
use super::defaults::{DEFAULT_CLUSTER_NAME, DEFAULT_CONTROL_PLANES, DEFAULT_WORKERS};
use super::labels::Taint;
use super::mounts::MountPlan;
use super::ports::PortPlan;
use crate::core::diagnostic::Problem;
use crate::core::profile::Profile;
use crate::core::yaml::Located;

/// Node hostnames are DNS labels: at most 63 characters.
const MAX_HOSTNAME: usize = 63;
/// kind warns past this cluster name length.
const LONG_NAME: usize = 50;
/// A sanity bound on workers: each is a privileged container running a kubelet.
const MAX_WORKERS: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ControlPlane,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node: a container kind creates and the Kubernetes node of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePlan {
    /// Container name = hostname = Kubernetes node name, e.g. `dev-worker2`.
    pub name: String,
    /// The name without the cluster prefix, as profiles write it: `worker2`.
    pub id: String,
    pub role: Role,
    /// Kubernetes labels (kind's `labels:`), including `ingress-ready=true` on the
    /// ingress node.
    pub labels: BTreeMap<String, String>,
    /// Taints the node will carry, kubeadm's control-plane taint included.
    pub taints: Vec<Taint>,
    pub mounts: Vec<MountPlan>,
    pub ports: Vec<PortPlan>,
    /// Whether this is the ingress node.
    pub ingress: bool,
}

impl NodePlan {
    /// Taints the profile asked for, which kind must be told about; kubeadm adds
    /// the control-plane taint of multi-node clusters by itself.
    pub fn profile_taints(&self) -> impl Iterator<Item = &Taint> {
        self.taints.iter().filter(|t| !t.implicit)
    }
}

/// The cluster's name: `--name`, else the profile's `name`, else the default.
pub(super) fn cluster_name(input: &PlanInput<'_>) -> String {
    match (input.name_override, &input.profile.name) {
        (Some(name), _) => name.to_string(),
        (None, Some(located)) => located.value.clone(),
        (None, None) => DEFAULT_CLUSTER_NAME.to_string(),
    }
}

/// A cluster name must be a DNS-label prefix short enough for every node hostname.
pub(super) fn check_cluster_name(input: &PlanInput<'_>, problems: &mut Vec<Problem>) {
    let name = cluster_name(input);
    let from_flag = input.name_override.is_some();
    let located = match (&input.profile.name, from_flag) {
        (Some(located), false) => located.clone(),
        _ => Located::new(name.clone()),
    };
    let at = |problem: Problem| {
        if from_flag {
            problem
        } else {
            problem.at(&located)
        }
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !valid {
        problems.push(at(Problem::error(format!(
            "cluster name `{name}` must match ^[a-z0-9.-]+$ (lower-case letters, digits, `.` and `-`)"
        ))
        .hint("for example `--name dev` or `name: my-team`")));
    } else if name.len() + "-control-plane3".len() > MAX_HOSTNAME {
        problems.push(at(Problem::error(format!(
            "cluster name `{name}` is {} characters; node hostnames like `{name}-control-plane` would exceed {MAX_HOSTNAME}",
            name.len()
        ))
        .hint(format!(
            "use at most {} characters",
            MAX_HOSTNAME - "-control-plane3".len()
        ))));
    } else if name.len() > LONG_NAME {
        problems.push(at(Problem::warning(format!(
            "cluster name `{name}` is over {LONG_NAME} characters; node names grow by `-control-plane`"
        ))));
    }
}

/// How many control-planes and workers; a count out of range falls back to the
/// default (validation reports it).
fn node_counts(profile: &Profile) -> (u32, u32) {
    let nodes = profile.nodes.clone().unwrap_or_default();
    let control_planes = match nodes.control_planes {
        Some(l) if l.value == 1 || l.value == 3 => l.value as u32,
        _ => DEFAULT_CONTROL_PLANES,
    };
    let workers = match nodes.workers {
        Some(l) if (0..=MAX_WORKERS).contains(&l.value) => l.value as u32,
        _ => DEFAULT_WORKERS,
    };
    (control_planes, workers)
}

/// etcd wants an odd number of members; workers are bounded.
pub(super) fn check_node_counts(profile: &Profile, problems: &mut Vec<Problem>) {
    let nodes = profile.nodes.clone().unwrap_or_default();
    if let Some(l) = nodes.control_planes
        && l.value != 1
        && l.value != 3
    {
        problems.push(
            Problem::error(format!(
                "nodes.controlPlanes is {}; it must be 1 or 3",
                l.value
            ))
            .at(&l)
            .hint("etcd needs an odd number of members; use 1, or 3 for high availability"),
        );
    }
    if let Some(l) = nodes.workers
        && !(0..=MAX_WORKERS).contains(&l.value)
    {
        problems.push(
            Problem::error(format!(
                "nodes.workers is {}; it must be between 0 and {MAX_WORKERS}",
                l.value
            ))
            .at(&l),
        );
    }
}

/// The control-planes, then the workers, named as kind names them: `c-control-plane`,
/// `c-worker`, `c-worker2`.
pub(super) fn nodes(cluster: &str, profile: &Profile) -> Vec<NodePlan> {
    let (control_planes, workers) = node_counts(profile);
    let mut nodes = Vec::new();
    for index in 1..=control_planes {
        nodes.push(new_node(cluster, Role::ControlPlane, index));
    }
    for index in 1..=workers {
        nodes.push(new_node(cluster, Role::Worker, index));
    }
    nodes
}

fn new_node(cluster: &str, role: Role, index: u32) -> NodePlan {
    let id = if index == 1 {
        role.as_str().to_string()
    } else {
        format!("{}{index}", role.as_str())
    };
    NodePlan {
        name: format!("{cluster}-{id}"),
        id,
        role,
        labels: BTreeMap::new(),
        taints: Vec::new(),
        mounts: Vec::new(),
        ports: Vec::new(),
        ingress: false,
    }
}

/// Marks the ingress node: the one `nodes.ingress` names, else the first worker,
/// else the first node. A name that is no node marks none.
pub(super) fn pin_ingress(nodes: &mut [NodePlan], profile: &Profile) {
    let chosen = profile.nodes.as_ref().and_then(|n| n.ingress.as_ref());
    let index = match chosen {
        None => nodes
            .iter()
            .position(|n| n.role == Role::Worker)
            .or(if nodes.is_empty() { None } else { Some(0) }),
        Some(located) => nodes.iter().position(|n| n.id == located.value),
    };
    if let Some(index) = index {
        nodes[index].ingress = true;
    }
}

/// `nodes.ingress` must name a node of the profile.
pub(super) fn check_ingress_node(
    profile: &Profile,
    nodes: &[NodePlan],
    problems: &mut Vec<Problem>,
) {
    let Some(located) = profile.nodes.as_ref().and_then(|n| n.ingress.as_ref()) else {
        return;
    };
    if !nodes.iter().any(|n| n.id == located.value) {
        problems.push(
            Problem::error(format!(
                "nodes.ingress names `{}`, which is not a node of this profile",
                located.value
            ))
            .at(located)
            .hint(format!("the nodes are: {}", node_ids(nodes))),
        );
    }
}

/// Resolves a node selector (a node id or a set name) to node indices, or the
/// problem that it names no node: an unknown id, or a set that is empty here.
pub(super) fn select(
    nodes: &[NodePlan],
    selector: &str,
    what: &str,
) -> Result<Vec<usize>, Problem> {
    let selected: Vec<usize> = match selector {
        "all" => (0..nodes.len()).collect(),
        "control-planes" => indices(nodes, |n| n.role == Role::ControlPlane),
        "workers" => indices(nodes, |n| n.role == Role::Worker),
        "ingress" => indices(nodes, |n| n.ingress),
        id => match nodes.iter().position(|n| n.id == id) {
            Some(index) => vec![index],
            None => {
                return Err(Problem::error(format!(
                    "{what} names node `{id}`, which is not a node of this profile"
                ))
                .hint(format!(
                    "the nodes are: {}; the sets are: all, control-planes, workers, ingress",
                    node_ids(nodes)
                )));
            }
        },
    };
    if selected.is_empty() {
        return Err(Problem::error(format!(
            "{what} selects `{selector}`, which is empty in this profile"
        ))
        .hint("add nodes of that role or choose another set"));
    }
    Ok(selected)
}

fn indices(nodes: &[NodePlan], keep: impl Fn(&NodePlan) -> bool) -> Vec<usize> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| keep(n))
        .map(|(i, _)| i)
        .collect()
}

fn node_ids(nodes: &[NodePlan]) -> String {
    nodes
        .iter()
        .map(|n| n.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The node image and the Kubernetes version its tag names. No version is read
/// from a reference that is not one.
pub(super) fn image(profile: &Profile) -> (Option<String>, Option<String>) {
    let Some(l) = &profile.image else {
        return (None, None);
    };
    let image = l.value.clone();
    if !is_image_reference(&image) {
        return (Some(image), None);
    }
    let name_tag = image
        .split_once('@')
        .map_or(image.as_str(), |(name_tag, _)| name_tag);
    let version = kubernetes_version_of(name_tag);
    (Some(image), version)
}

fn is_image_reference(image: &str) -> bool {
    !image.is_empty() && !image.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An image is one reference; a digest is `sha256:` and 64 hexadecimal digits.
pub(super) fn check_image(profile: &Profile, problems: &mut Vec<Problem>) {
    let Some(l) = &profile.image else {
        return;
    };
    let image = &l.value;
    if !is_image_reference(image) {
        problems.push(Problem::error(format!("image `{image}` is not an image reference")).at(l));
        return;
    }
    if let Some((_, digest)) = image.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.push(
                Problem::error(format!(
                    "image digest `{digest}` must be `sha256:` and 64 hexadecimal digits"
                ))
                .at(l),
            );
        }
    }
}

/// `1.36.1` from `kindest/node:v1.36.1` (with or without registry and digest).
pub fn kubernetes_version_of(image: &str) -> Option<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let tag = last.split_once(':')?.1;
    let version = tag.strip_prefix('v').unwrap_or(tag);
    let numeric = version.split(['-', '+']).next().unwrap_or(version);
    let parts: Vec<&str> = numeric.split('.').collect();
    if parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        Some(numeric.to_string())
    } else {
        None
    }
}
