//! What `up` applied, recorded in the cluster itself (a file in the first
//! control-plane container and a ConfigMap in `kube-public`), never on the host;
//! and the readable difference between a record and a new plan.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::plan::{ClusterPlan, ControllerPlan, NodePlan};

/// Where the record lives inside the first control-plane node container. `/kind`
/// is kind's own directory in node images, outside the tmpfs mounts.
pub const RECORD_DIR: &str = "/kind/devcluster";
pub const RECORD_PATH: &str = "/kind/devcluster/record.json";
/// The largest record read back (a ConfigMap holds at most 1 MiB too).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// The ConfigMap that repeats the record for anyone with API access.
pub const RECORD_CONFIGMAP: &str = "devcluster-record";
pub const RECORD_NAMESPACE: &str = "kube-public";

/// The record format this devcluster writes. Version 1 (no phase, no kind config)
/// is still read: its cluster stays devcluster's, and is converged once.
pub const RECORD_VERSION: u32 = 2;

/// How far `up` got with a cluster. Only a `complete` record lets `up` say "up to
/// date"; any other phase is converged by the next `up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// kind created the nodes; nothing after that is known to have finished.
    Created,
    /// Storage fix and add-ons are applied; verification has not passed yet.
    Converged,
    /// Every step of `up` finished (verification passed or was skipped).
    Complete,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Created => "created",
            Phase::Converged => "converged",
            Phase::Complete => "complete",
        }
    }

    /// What is left to do, in words.
    pub fn unfinished(self) -> &'static str {
        match self {
            Phase::Created => "its add-ons and verification have not finished",
            Phase::Converged => "its verification has not passed",
            Phase::Complete => "nothing",
        }
    }
}

/// What devcluster applied to a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Format of this record ([`RECORD_VERSION`] when written by this devcluster).
    pub version: u32,
    /// The devcluster release that last wrote it.
    pub devcluster_version: String,
    /// Where the profile came from (`builtin:ingress`, a path).
    pub profile_source: String,
    /// SHA-256 of the plan's canonical JSON.
    pub plan_hash: String,
    /// How far `up` got.
    pub phase: Phase,
    /// The kind config the nodes were created from: what Docker cannot change on a
    /// running node container (nodes, mounts, ports, image, networking).
    pub kind_config: String,
    /// The plan, when this devcluster can read it (a record from another release
    /// may carry a plan with fields this one does not know).
    pub plan: Option<ClusterPlan>,
}

impl Record {
    pub fn new(plan: &ClusterPlan, phase: Phase) -> Record {
        Record {
            version: RECORD_VERSION,
            devcluster_version: env!("CARGO_PKG_VERSION").to_string(),
            profile_source: plan.source.clone(),
            plan_hash: plan_hash(plan),
            phase,
            kind_config: crate::core::kindconfig::render(plan),
            plan: Some(plan.clone()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads any record version tolerantly: unknown fields are ignored, missing
    /// ones defaulted, and a plan this devcluster cannot decode leaves the record
    /// readable (and the cluster devcluster's). `None` when the text is not a
    /// devcluster record at all.
    pub fn from_json(text: &str) -> Option<Record> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let object = value.as_object()?;
        let plan_hash = object.get("planHash")?.as_str()?.to_string();
        let text_field = |key: &str| {
            object
                .get(key)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let version = object
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(1);
        let plan: Option<ClusterPlan> = object
            .get("plan")
            .and_then(|p| serde_json::from_value(p.clone()).ok());
        // Version 1 records were written right after kind create, before any
        // add-on: they prove nothing about what followed.
        let phase = object
            .get("phase")
            .and_then(|p| serde_json::from_value(p.clone()).ok())
            .unwrap_or(Phase::Created);
        let kind_config = match object.get("kindConfig").and_then(serde_json::Value::as_str) {
            Some(text) => text.to_string(),
            None => plan
                .as_ref()
                .map(crate::core::kindconfig::render)
                .unwrap_or_default(),
        };
        Some(Record {
            version,
            devcluster_version: text_field("devclusterVersion"),
            profile_source: text_field("profileSource"),
            plan_hash,
            phase,
            kind_config,
            plan,
        })
    }

    /// Whether the cluster this record describes is the one `plan` asks for.
    /// The profile's source may move without changing the cluster, so it is not
    /// part of the comparison.
    pub fn matches(&self, plan: &ClusterPlan) -> bool {
        self.plan_hash == plan_hash(plan)
    }

    /// What `up` must do to turn this recorded cluster into the one `plan` asks for.
    pub fn decide(&self, plan: &ClusterPlan) -> Decision {
        let wanted = crate::core::kindconfig::render(plan);
        let changes = match &self.plan {
            Some(recorded) => diff(recorded, plan),
            None => Vec::new(),
        };
        if self.kind_config != wanted {
            let mut changes = changes;
            if !changes.iter().any(|c| c.forces_recreate) {
                changes.push(Change {
                    sign: '~',
                    text: if self.kind_config.is_empty() {
                        "the kind config (this record does not say what the nodes were created from)".to_string()
                    } else {
                        "the rendered kind config".to_string()
                    },
                    forces_recreate: true,
                });
            }
            return Decision::Recreate { changes };
        }
        if self.phase != Phase::Complete {
            return Decision::Converge {
                reason: format!(
                    "the last `up` stopped at phase `{}`: {}",
                    self.phase.as_str(),
                    self.phase.unfinished()
                ),
                changes,
            };
        }
        if !self.matches(plan) {
            return Decision::Converge {
                reason: "settings that apply in place changed".to_string(),
                changes,
            };
        }
        if self.devcluster_version != env!("CARGO_PKG_VERSION") {
            return Decision::Converge {
                reason: format!(
                    "devcluster {} made it; converging with devcluster {}",
                    if self.devcluster_version.is_empty() {
                        "(unknown release)"
                    } else {
                        &self.devcluster_version
                    },
                    env!("CARGO_PKG_VERSION")
                ),
                changes,
            };
        }
        Decision::UpToDate
    }
}

/// What `up` does with a cluster that has a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Complete, same plan, same devcluster: nothing to do.
    UpToDate,
    /// The nodes are right; the steps after create run again in place.
    Converge {
        reason: String,
        changes: Vec<Change>,
    },
    /// The kind config differs: only a new cluster can have it.
    Recreate { changes: Vec<Change> },
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
    /// Whether the change is in the kind config, which Docker cannot apply to a
    /// running node container, so only a recreate brings it.
    pub forces_recreate: bool,
}

impl Change {
    /// `+ c-worker: mount /b -> /b (needs a new cluster)`.
    pub fn line(&self) -> String {
        format!(
            "{} {} ({})",
            self.sign,
            self.text,
            if self.forces_recreate {
                "needs a new cluster"
            } else {
                "applies in place"
            }
        )
    }
}

/// Lists what differs between the recorded plan and the new one, node by node.
pub fn diff(recorded: &ClusterPlan, planned: &ClusterPlan) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut changed = |sign: char, text: String| {
        changes.push(Change {
            sign,
            text,
            forces_recreate: true,
        })
    };
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
    // Add-on settings: applied through the API, so in place, except a switch from
    // one installed controller to another: the old one keeps host ports 80/443 on
    // the ingress node, so the new one's pods could never be placed there, and
    // devcluster does not uninstall a controller.
    if let Some((old, new)) = controller_switch(recorded, planned) {
        changes.push(Change {
            sign: '~',
            text: format!("ingress controller {old} -> {new}"),
            forces_recreate: true,
        });
    } else if recorded.ingress != planned.ingress {
        changes.push(Change {
            sign: '~',
            text: "ingress settings".to_string(),
            forces_recreate: false,
        });
    }
    if recorded.storage != planned.storage {
        changes.push(Change {
            sign: '~',
            text: "storage settings".to_string(),
            forces_recreate: false,
        });
    }
    // Turning the registry on or off changes containerd's config in the kind
    // config; its port or image is applied by `up`'s registry step.
    match (&recorded.registry, &planned.registry) {
        (None, Some(registry)) => changed_registry(&mut changes, '+', registry, true),
        (Some(registry), None) => changed_registry(&mut changes, '-', registry, true),
        (Some(old), Some(new)) if old != new => {
            changed_registry(&mut changes, '~', new, false);
        }
        _ => {}
    }
    changes
}

/// The installed controller and the planned one, when the plan switches from one
/// controller to another (ports only, `none`, on either side is no switch).
pub fn controller_switch(
    recorded: &ClusterPlan,
    planned: &ClusterPlan,
) -> Option<(&'static str, &'static str)> {
    let old = &recorded.ingress.as_ref()?.controller;
    let new = &planned.ingress.as_ref()?.controller;
    let (old, new) = (controller_name(old), controller_name(new));
    (old != new && old != "none" && new != "none").then_some((old, new))
}

fn controller_name(controller: &ControllerPlan) -> &'static str {
    match controller {
        ControllerPlan::Contour => "contour",
        ControllerPlan::IngressNginx => "ingress-nginx",
        ControllerPlan::Custom { .. } => "custom",
        ControllerPlan::None => "none",
    }
}

fn changed_registry(
    changes: &mut Vec<Change>,
    sign: char,
    registry: &crate::core::plan::RegistryPlan,
    forces_recreate: bool,
) {
    changes.push(Change {
        sign,
        text: format!(
            "registry {} on {}:{} ({})",
            registry.container, registry.listen_address, registry.host_port, registry.image
        ),
        forces_recreate,
    });
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
    use crate::core::plan::plan_of_text;

    fn planned(body: &str) -> ClusterPlan {
        plan_of_text(&format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  workers: 1\n{body}"
        ))
    }

    #[test]
    fn a_registry_turned_on_needs_a_new_cluster_and_a_new_port_applies_in_place() {
        let without = planned("");
        let with = planned("registry: {enabled: true}\n");
        let moved = planned("registry: {enabled: true, hostPort: 5002}\n");
        let lines = |a: &ClusterPlan, b: &ClusterPlan| -> Vec<String> {
            diff(a, b).iter().map(Change::line).collect()
        };
        let image = crate::core::plan::DEFAULT_REGISTRY_IMAGE;
        assert_eq!(
            lines(&without, &with),
            [format!(
                "+ registry devcluster-registry-5001 on 127.0.0.1:5001 ({image}) (needs a new cluster)"
            )]
        );
        assert_eq!(
            lines(&with, &moved),
            [format!(
                "~ registry devcluster-registry-5002 on 127.0.0.1:5002 ({image}) (applies in place)"
            )]
        );
        let record = Record::new(&with, Phase::Complete);
        assert!(matches!(record.decide(&without), Decision::Recreate { .. }));
        assert!(matches!(record.decide(&moved), Decision::Converge { .. }));
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
        assert!(Record::new(&new, Phase::Complete).matches(&new));
        assert!(!Record::new(&old, Phase::Complete).matches(&new));
    }

    #[test]
    fn switching_from_one_installed_controller_to_another_needs_a_new_cluster() {
        let ingress = |controller: &str| {
            planned(&format!(
                "ingress:\n  enabled: true\n  httpPort: 8080\n  httpsPort: 8443\n{controller}"
            ))
        };
        let nginx = ingress("  controller: ingress-nginx\n");
        let contour = ingress("");
        let none = ingress("  controller: none\n");
        assert_eq!(
            controller_switch(&nginx, &contour),
            Some(("ingress-nginx", "contour"))
        );
        for (old, new) in [(&none, &contour), (&contour, &none), (&contour, &contour)] {
            assert_eq!(controller_switch(old, new), None);
        }
        let changes = diff(&nginx, &contour);
        assert_eq!(
            changes.iter().map(Change::line).collect::<Vec<_>>(),
            vec!["~ ingress controller ingress-nginx -> contour (needs a new cluster)"]
        );
        // Ports only, on either side: nothing holds host ports twice.
        for (old, new) in [(&none, &contour), (&contour, &none)] {
            let changes = diff(old, new);
            assert_eq!(changes.len(), 1, "{changes:?}");
            assert!(!changes[0].forces_recreate, "{changes:?}");
        }
    }

    /// Today's record format as devcluster 0.1.0 wrote it (version 1: no phase, no
    /// kind config) for `--profile ingress --name dev`.
    const VERSION_1: &str = include_str!("../../tests/fixtures/records/v1-ingress.json");

    #[test]
    fn a_version_1_record_stays_readable_and_owned_and_is_converged() {
        let record = Record::from_json(VERSION_1).unwrap_or_else(|| panic!("unreadable"));
        assert_eq!(record.version, 1);
        assert_eq!(record.profile_source, "builtin:ingress");
        assert_eq!(
            record.phase,
            Phase::Created,
            "version 1 proves nothing after create"
        );
        let plan = record
            .plan
            .clone()
            .unwrap_or_else(|| panic!("the plan must decode"));
        assert!(record.matches(&plan));
        assert_eq!(record.kind_config, crate::core::kindconfig::render(&plan));
        assert!(matches!(record.decide(&plan), Decision::Converge { .. }));
    }

    #[test]
    fn a_record_from_another_release_stays_owned_even_if_its_plan_is_unknown() {
        let plan = planned("");
        let mut value: serde_json::Value =
            serde_json::from_str(&Record::new(&plan, Phase::Complete).to_json())
                .unwrap_or_else(|e| panic!("{e}"));
        value["plan"]["aFieldFromTheFuture"] = serde_json::json!(1);
        value["somethingElse"] = serde_json::json!({"x": 1});
        let record = Record::from_json(&value.to_string()).unwrap_or_else(|| panic!("unreadable"));
        assert!(record.plan.is_none());
        assert_eq!(record.phase, Phase::Complete);
        // The kind config still decides: same nodes, so no recreate.
        assert_eq!(record.decide(&plan), Decision::UpToDate);
        assert!(Record::from_json("{\"hello\": 1}").is_none());
        assert!(Record::from_json("not json").is_none());
    }

    #[test]
    fn only_a_kind_config_change_forces_a_recreate() {
        let plan = planned("");
        let complete = Record::new(&plan, Phase::Complete);
        assert_eq!(complete.decide(&plan), Decision::UpToDate);
        for phase in [Phase::Created, Phase::Converged] {
            assert!(matches!(
                Record::new(&plan, phase).decide(&plan),
                Decision::Converge { .. }
            ));
        }
        // An add-on setting converges in place.
        let storage = planned("storage:\n  tolerateTaintedNodes: false\n");
        match complete.decide(&storage) {
            Decision::Converge { changes, .. } => {
                assert!(!changes.is_empty() && changes.iter().all(|c| !c.forces_recreate));
            }
            other => panic!("{other:?}"),
        }
        // A mount is in the kind config: recreate, and the diff says why.
        let mounted = planned("mounts:\n  - hostPath: /a\n    containerPath: /a\n");
        match complete.decide(&mounted) {
            Decision::Recreate { changes } => {
                let lines: Vec<String> = changes.iter().map(Change::line).collect();
                assert!(
                    lines
                        .iter()
                        .any(|l| l.contains("mount /a -> /a (needs a new cluster)")),
                    "{lines:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
