//! What `up` applied, recorded in the cluster itself (a file in the first
//! control-plane container and a ConfigMap in `kube-public`), never on the host;
//! and the readable difference between a record and a new plan.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::{ClusterPlan, NodePlan};

/// Where the record lives inside the first control-plane node container. `/kind`
/// is kind's own directory in node images, outside the tmpfs mounts.
pub const RECORD_DIR: &str = "/kind/devcluster";
pub const RECORD_PATH: &str = "/kind/devcluster/record.json";
/// The ConfigMap that repeats the record for anyone with API access.
pub const RECORD_CONFIGMAP: &str = "devcluster-record";
pub const RECORD_NAMESPACE: &str = "kube-public";

/// What devcluster applied to a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Format of this record.
    pub version: u32,
    /// The devcluster release that made the cluster.
    pub devcluster_version: String,
    /// Where the profile came from (`builtin:ingress`, a path).
    pub profile_source: String,
    /// SHA-256 of the plan's canonical JSON.
    pub plan_hash: String,
    pub plan: ClusterPlan,
}

impl Record {
    pub fn new(plan: &ClusterPlan) -> Record {
        Record {
            version: 1,
            devcluster_version: env!("CARGO_PKG_VERSION").to_string(),
            profile_source: plan.source.clone(),
            plan_hash: plan_hash(plan),
            plan: plan.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Option<Record> {
        serde_json::from_str(text).ok()
    }

    /// Whether the cluster this record describes is the one `plan` asks for.
    /// The profile's source may move without changing the cluster, so it is not
    /// part of the comparison.
    pub fn matches(&self, plan: &ClusterPlan) -> bool {
        self.plan_hash == plan_hash(plan)
    }
}

/// SHA-256 over the plan's JSON with the source left out.
pub fn plan_hash(plan: &ClusterPlan) -> String {
    let mut comparable = plan.clone();
    comparable.source = String::new();
    let json = serde_json::to_vec(&comparable).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A difference between what runs and what is planned, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `+` added, `-` removed, `~` changed.
    pub sign: char,
    pub text: String,
}

/// Lists what differs between the recorded plan and the new one, node by node.
pub fn diff(recorded: &ClusterPlan, planned: &ClusterPlan) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut changed = |sign: char, text: String| changes.push(Change { sign, text });
    if recorded.image != planned.image {
        changed(
            '~',
            format!(
                "node image: {} -> {}",
                recorded.image.as_deref().unwrap_or("kind's default"),
                planned.image.as_deref().unwrap_or("kind's default")
            ),
        );
    }
    if recorded.networking != planned.networking {
        let (a, b) = (
            serde_json::to_string(&recorded.networking).unwrap_or_default(),
            serde_json::to_string(&planned.networking).unwrap_or_default(),
        );
        changed('~', format!("networking: {a} -> {b}"));
    }
    for node in &recorded.nodes {
        if planned.node(&node.name).is_none() {
            changed('-', format!("node {} ({})", node.name, node.role));
        }
    }
    for node in &planned.nodes {
        match recorded.node(&node.name) {
            None => changed('+', format!("node {} ({})", node.name, node.role)),
            Some(old) => node_diff(old, node, &mut changed),
        }
    }
    if recorded.ingress != planned.ingress {
        changed('~', "ingress settings".to_string());
    }
    if recorded.storage != planned.storage {
        changed('~', "storage settings".to_string());
    }
    changes
}

fn node_diff(old: &NodePlan, new: &NodePlan, changed: &mut impl FnMut(char, String)) {
    let name = &new.name;
    for mount in &old.mounts {
        if !new.mounts.contains(mount) {
            changed(
                '-',
                format!(
                    "{name}: mount {} -> {}",
                    mount.host_path, mount.container_path
                ),
            );
        }
    }
    for mount in &new.mounts {
        if !old.mounts.contains(mount) {
            changed(
                '+',
                format!(
                    "{name}: mount {} -> {}",
                    mount.host_path, mount.container_path
                ),
            );
        }
    }
    for port in &old.ports {
        if !new.ports.contains(port) {
            changed(
                '-',
                format!(
                    "{name}: port {}:{} -> {}/{}",
                    port.listen_address,
                    port.host_port,
                    port.container_port,
                    port.protocol.as_str()
                ),
            );
        }
    }
    for port in &new.ports {
        if !old.ports.contains(port) {
            changed(
                '+',
                format!(
                    "{name}: port {}:{} -> {}/{}",
                    port.listen_address,
                    port.host_port,
                    port.container_port,
                    port.protocol.as_str()
                ),
            );
        }
    }
    for (key, value) in &old.labels {
        if new.labels.get(key) != Some(value) {
            changed('-', format!("{name}: label {key}={value}"));
        }
    }
    for (key, value) in &new.labels {
        if old.labels.get(key) != Some(value) {
            changed('+', format!("{name}: label {key}={value}"));
        }
    }
    for taint in &old.taints {
        if !new.taints.contains(taint) {
            changed('-', format!("{name}: taint {taint}"));
        }
    }
    for taint in &new.taints {
        if !old.taints.contains(taint) {
            changed('+', format!("{name}: taint {taint}"));
        }
    }
}
