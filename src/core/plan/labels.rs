//! Node labels and taints: what the profile asks for per node or node set, the
//! label keys the kubelet accepts, and kubeadm's implicit control-plane taint.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::nodes::{NodePlan, Role, select};
use crate::core::diagnostic::Problem;
use crate::core::profile::Profile;

/// The taint kubeadm leaves on control-planes of multi-node kind clusters.
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub effect: TaintEffect,
    /// Added by kubeadm, not by the profile.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub implicit: bool,
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={}:{}", self.key, value, self.effect.as_str()),
            None => write!(f, "{}:{}", self.key, self.effect.as_str()),
        }
    }
}

/// The profile's labels on the nodes they select; a label the kubelet would
/// refuse is left out (validation reports it).
pub(super) fn label_nodes(nodes: &mut [NodePlan], profile: &Profile) {
    let Some(spec) = &profile.nodes else {
        return;
    };
    for (selector, located) in &spec.labels {
        let targets = select(nodes, selector, "nodes.labels").unwrap_or_default();
        for (key, value) in &located.value {
            if label_key_problem(key).is_some() || label_value_problem(value).is_some() {
                continue;
            }
            for &index in &targets {
                nodes[index].labels.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Every label key and value must be one the kubelet accepts in `--node-labels`.
pub(super) fn check_labels(profile: &Profile, nodes: &[NodePlan], problems: &mut Vec<Problem>) {
    let Some(spec) = &profile.nodes else {
        return;
    };
    for (selector, located) in &spec.labels {
        let at = |p: Problem| p.at(located);
        if let Err(problem) = select(nodes, selector, "nodes.labels") {
            problems.push(at(problem));
        }
        for (key, value) in &located.value {
            if let Some(reason) = label_key_problem(key) {
                problems.push(at(Problem::error(format!("label key `{key}` {reason}")).hint(
                    format!(
                        "use your own prefix, e.g. `example.com/tier`; the kubelet accepts only the prefixes {} and the labels {}",
                        KUBELET_LABEL_NAMESPACES.join(", "),
                        KUBELET_LABELS.join(", ")
                    ),
                )));
                continue;
            }
            if let Some(reason) = label_value_problem(value) {
                problems.push(at(Problem::error(format!(
                    "label `{key}` has value `{value}`, which {reason}"
                ))));
            }
        }
    }
}

/// kubeadm's control-plane taint on the control-planes of a multi-node cluster,
/// then the profile's taints on the nodes they select, each key and effect once.
/// A taint that would leave a single-node cluster unschedulable is left out
/// (validation reports it).
pub(super) fn taint_nodes(nodes: &mut [NodePlan], profile: &Profile) {
    if nodes.len() > 1 {
        for node in nodes.iter_mut().filter(|n| n.role == Role::ControlPlane) {
            node.taints.push(Taint {
                key: CONTROL_PLANE_TAINT.into(),
                value: None,
                effect: TaintEffect::NoSchedule,
                implicit: true,
            });
        }
    }
    let Some(spec) = &profile.nodes else {
        return;
    };
    for (selector, located) in &spec.taints {
        let targets = select(nodes, selector, "nodes.taints").unwrap_or_default();
        for text in &located.value {
            let Ok(taint) = parse_taint(text) else {
                continue;
            };
            if blocks_single_node(nodes, &targets, &taint) {
                continue;
            }
            for &index in &targets {
                let node = &mut nodes[index];
                if !node
                    .taints
                    .iter()
                    .any(|t| t.key == taint.key && t.effect == taint.effect)
                {
                    node.taints.push(taint.clone());
                }
            }
        }
    }
}

/// Whether `taint` on `targets` would keep every pod off the only node.
fn blocks_single_node(nodes: &[NodePlan], targets: &[usize], taint: &Taint) -> bool {
    nodes.len() == 1 && !targets.is_empty() && taint.effect != TaintEffect::PreferNoSchedule
}

/// Checks the profile's taints. A single-node cluster refuses NoSchedule and
/// NoExecute: kind's `kubeadminit` action
/// (`pkg/cluster/internal/create/actions/kubeadminit/init.go`) removes the
/// control-plane taint when the cluster has one node, and that command fails
/// when devcluster's `nodeRegistration.taints` patch replaced kubeadm's taints.
pub(super) fn check_taints(profile: &Profile, nodes: &[NodePlan], problems: &mut Vec<Problem>) {
    let Some(spec) = &profile.nodes else {
        return;
    };
    for (selector, located) in &spec.taints {
        let at = |p: Problem| p.at(located);
        let targets = match select(nodes, selector, "nodes.taints") {
            Ok(targets) => targets,
            Err(problem) => {
                problems.push(at(problem));
                Vec::new()
            }
        };
        for text in &located.value {
            match parse_taint(text) {
                Ok(taint) if blocks_single_node(nodes, &targets, &taint) => {
                    problems.push(at(Problem::error(format!(
                        "taint `{text}` on the only node of a single-node cluster: kind removes the control-plane taint there (`kubectl taint nodes --all node-role.kubernetes.io/control-plane-`), which fails once the profile's taints replace kubeadm's (\"failed to remove control plane taint\"), and CoreDNS and every other pod would have no node to run on"
                    ))
                    .hint("add a worker (`nodes.workers: 1`) and taint that, or use `:PreferNoSchedule`, which only steers pods away")));
                }
                Ok(_) => {}
                Err(reason) => problems.push(at(Problem::error(format!(
                    "taint `{text}` {reason}"
                ))
                .hint("write taints as `key=value:NoSchedule`, `key:NoExecute` or `key=value:PreferNoSchedule`"))),
            }
        }
    }
}

/// The `kubernetes.io` labels a kubelet may set on its own node (kubelet
/// `staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go`, `kubeletLabels`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];

/// Label namespaces a kubelet may use, themselves or as a `.`-suffix (the same
/// file, `kubeletLabelNamespaces`).
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

/// Whether `prefix` is `namespace` or a subdomain of it.
fn in_namespace(prefix: &str, namespace: &str) -> bool {
    prefix == namespace
        || prefix
            .strip_suffix(namespace)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The kubelet's `IsKubeletLabel`: a label it accepts in `--node-labels` although its
/// prefix is in the reserved `kubernetes.io` / `k8s.io` namespaces (checked by
/// `ValidateKubeletFlags` in `cmd/kubelet/app/options/options.go`).
fn is_kubelet_label(key: &str) -> bool {
    if KUBELET_LABELS.contains(&key) {
        return true;
    }
    let Some((prefix, _)) = key.split_once('/') else {
        return false;
    };
    KUBELET_LABEL_NAMESPACES
        .iter()
        .any(|namespace| in_namespace(prefix, namespace))
}

/// Why `key` cannot be a node label key, if it cannot.
fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let reserved = ["kubernetes.io", "k8s.io"]
            .iter()
            .any(|r| in_namespace(prefix, r));
        if reserved && !is_kubelet_label(key) {
            return Some(format!(
                "uses the reserved prefix `{prefix}`: the kubelet refuses to start with it (labels in `kubernetes.io` and `k8s.io` must be in the kubelet's allowed set)"
            ));
        }
        let valid_prefix = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !valid_prefix {
            return Some(format!(
                "has prefix `{prefix}`, which is not a DNS subdomain"
            ));
        }
    }
    if name.is_empty() || name.len() > 63 || !is_label_word(name) {
        return Some(
            "is not a valid label name (1-63 letters, digits, `-`, `_`, `.`, starting and ending alphanumeric)"
                .to_string(),
        );
    }
    None
}

fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if value.len() > 63 || !is_label_word(value) {
        return Some(
            "is not a valid label value (at most 63 letters, digits, `-`, `_`, `.`, starting and ending alphanumeric)"
                .to_string(),
        );
    }
    None
}

fn is_label_word(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Parses `key[=value]:Effect`.
pub fn parse_taint(text: &str) -> Result<Taint, String> {
    let Some((key_value, effect)) = text.rsplit_once(':') else {
        return Err("has no effect (`:NoSchedule`, `:PreferNoSchedule` or `:NoExecute`)".into());
    };
    let effect = match effect {
        "NoSchedule" => TaintEffect::NoSchedule,
        "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
        "NoExecute" => TaintEffect::NoExecute,
        other => {
            return Err(format!(
                "has effect `{other}`; it must be NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
    };
    let (key, value) = match key_value.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None => (key_value, None),
    };
    if key.is_empty() {
        return Err("has an empty key".into());
    }
    if let Some(reason) = label_key_problem(key).filter(|r| !r.contains("reserved")) {
        return Err(format!("has key `{key}`, which {reason}"));
    }
    if let Some(reason) = value.as_deref().and_then(label_value_problem) {
        return Err(format!("has a value that {reason}"));
    }
    Ok(Taint {
        key: key.to_string(),
        value,
        effect,
        implicit: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_the_kubelet_allows() {
        for key in [
            "topology.kubernetes.io/zone",
            "topology.kubernetes.io/region",
            "node.kubernetes.io/instance-type",
            "kubernetes.io/os",
            "kubelet.kubernetes.io/anything",
            "team.node.kubernetes.io/anything",
            "example.com/tier",
        ] {
            assert_eq!(label_key_problem(key), None, "{key}");
        }
        for key in [
            "node-role.kubernetes.io/worker",
            "kubernetes.io/role",
            "node-restriction.kubernetes.io/x",
            "k8s.io/x",
            "xnode.kubernetes.io/x",
        ] {
            assert!(
                label_key_problem(key).is_some_and(|r| r.contains("reserved")),
                "{key}"
            );
        }
    }
}
