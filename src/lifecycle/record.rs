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
    list_diff(&old.mounts, &new.mounts, changed, |m| {
        format!("{name}: mount {} -> {}", m.host_path, m.container_path)
    });
    list_diff(&old.ports, &new.ports, changed, |p| {
        format!(
            "{name}: port {}:{} -> {}/{}",
            p.listen_address,
            p.host_port,
            p.container_port,
            p.protocol.as_str()
        )
    });
    let old_labels: Vec<(&String, &String)> = old.labels.iter().collect();
    let new_labels: Vec<(&String, &String)> = new.labels.iter().collect();
    list_diff(&old_labels, &new_labels, changed, |(k, v)| {
        format!("{name}: label {k}={v}")
    });
    list_diff(&old.taints, &new.taints, changed, |t| {
        format!("{name}: taint {t}")
    });
}

/// Reports what `old` has and `new` lacks as `-`, and the reverse as `+`.
fn list_diff<T: PartialEq>(
    old: &[T],
    new: &[T],
    changed: &mut impl FnMut(char, String),
    describe: impl Fn(&T) -> String,
) {
    for item in old.iter().filter(|item| !new.contains(item)) {
        changed('-', describe(item));
    }
    for item in new.iter().filter(|item| !old.contains(item)) {
        changed('+', describe(item));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanInput, plan};
    use crate::profile::Profile;

    fn planned(body: &str) -> ClusterPlan {
        let text = format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  workers: 1\n{body}"
        );
        let profile = Profile::decode(&text).unwrap_or_else(|e| panic!("{e:?}"));
        let input = PlanInput {
            profile: &profile,
            name_override: Some("c"),
            base_dir: std::path::Path::new("/p"),
            home_dir: None,
            source: "test".into(),
            file: None,
        };
        plan(&input).unwrap_or_else(|e| panic!("{e:?}")).plan
    }

    #[test]
    fn the_diff_names_each_change_node_by_node() {
        let old = planned(
            "  labels:\n    worker: {tier: a}\nmounts:\n  - hostPath: /a\n    containerPath: /a\n    nodes: worker\n",
        );
        let new = planned(
            "  labels:\n    worker: {tier: b}\n  taints:\n    worker: [\"x=y:NoSchedule\"]\nmounts:\n  - hostPath: /b\n    containerPath: /b\n    nodes: worker\nports:\n  - containerPort: 30000\n    hostPort: 8080\n    node: worker\n",
        );
        let lines: Vec<String> = diff(&old, &new)
            .iter()
            .map(|c| format!("{} {}", c.sign, c.text))
            .collect();
        assert_eq!(
            lines,
            vec![
                "- c-worker: mount /a -> /a",
                "+ c-worker: mount /b -> /b",
                "+ c-worker: port 127.0.0.1:8080 -> 30000/TCP",
                "- c-worker: label tier=a",
                "+ c-worker: label tier=b",
                "+ c-worker: taint x=y:NoSchedule",
            ]
        );
        assert!(diff(&new, &new).is_empty());
        assert!(Record::new(&new).matches(&new));
        assert!(!Record::new(&old).matches(&new));
    }
}
