//! Computed intent: the cluster a profile asks for, node by node, with every name,
//! label, taint, mount and port kind will use, and every rule kind does not check.
//!
//! Pure: the filesystem, environment and clock stay outside. What the plan needs from
//! the world (the profile's directory, the home directory) comes in [`PlanInput`].
//!
//! Planning is two passes, as kind's config API does it: `defaults` fills in a
//! complete [`ClusterPlan`] from the profile, then `validate` checks the profile and
//! that plan and reports every problem at once. The rules themselves live with what
//! they are about: `nodes`, `labels`, `networking`, `ingress`, `ports`, `mounts` and
//! `registry`.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::core::diagnostic::Problem;
use crate::core::profile::Profile;

mod defaults;
mod ingress;
mod labels;
mod mounts;
mod networking;
mod nodes;
mod ports;
mod registry;
mod validate;

pub use defaults::DEFAULT_CLUSTER_NAME;
pub use ingress::{ControllerPlan, INGRESS_READY_LABEL, IngressPlan};
pub use labels::{CONTROL_PLANE_TAINT, Taint, TaintEffect, parse_taint};
pub use mounts::{
    AsWritten, HostPaths, MountPlan, dangerous_host_path, normalize, resolve_host_path,
};
pub use networking::NetworkingPlan;
pub use nodes::{NodePlan, Role, kubernetes_version_of};
pub use ports::{PortPlan, PortPurpose, Protocol};
pub use registry::{
    CONTAINERD_CONFIG_PATCH, DEFAULT_REGISTRY_IMAGE, DEFAULT_REGISTRY_PORT, HOSTING_CONFIGMAP,
    HOSTING_NAMESPACE, REGISTRY_CONTAINER_PORT, RegistryPlan,
};

/// Everything the pure planner needs from outside.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The profile after `extends:` was merged.
    pub profile: &'a Profile,
    /// `--name`, which wins over the profile's `name`.
    pub name_override: Option<&'a str>,
    /// Relative host paths resolve here: the profile file's directory, or the current
    /// directory for a built-in profile.
    pub base_dir: &'a Path,
    /// Where `~` points; `None` when the home directory is unknown.
    pub home_dir: Option<&'a Path>,
    /// Where the profile came from, e.g. `builtin:ingress` or a path; kept in the plan.
    pub source: String,
    /// The file problems without a position of their own are reported against.
    pub file: Option<Arc<str>>,
}

/// The cluster devcluster will ask kind for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterPlan {
    pub name: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Kubernetes version read from the image tag (`1.36.1`), when the image has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    pub nodes: Vec<NodePlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressPlan>,
    pub storage: StoragePlan,
    pub networking: NetworkingPlan,
    /// The local registry, when the profile turns it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoragePlan {
    pub tolerate_tainted_nodes: bool,
}

impl ClusterPlan {
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn control_planes(&self) -> impl Iterator<Item = &NodePlan> {
        self.nodes.iter().filter(|n| n.role == Role::ControlPlane)
    }

    pub fn ingress_node(&self) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.ingress)
    }

    pub fn is_multi_node(&self) -> bool {
        self.nodes.len() > 1
    }

    /// The kubeconfig context kind creates for this cluster.
    pub fn context_name(&self) -> String {
        format!("kind-{}", self.name)
    }
}

/// A plan, and the warnings found while making it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: ClusterPlan,
    pub warnings: Vec<Problem>,
}

/// Turns a merged profile into a plan, or every problem found at once, taking
/// host paths as written.
pub fn plan(input: &PlanInput<'_>) -> Result<Planned, Vec<Problem>> {
    plan_on(input, &AsWritten)
}

/// Like [`plan`], with `host` telling where each host path really leads, so a
/// symlink to a dangerous path is refused like the path itself.
pub fn plan_on(input: &PlanInput<'_>, host: &dyn HostPaths) -> Result<Planned, Vec<Problem>> {
    let plan = defaults::complete(input);
    let problems: Vec<Problem> = validate::validate(input, &plan, host)
        .into_iter()
        .map(|p| p.in_file(input.file.clone()))
        .collect();
    if problems.iter().any(Problem::is_error) {
        let mut problems = problems;
        problems.sort_by_key(|p| (p.severity, p.line.unwrap_or(0), p.column.unwrap_or(0)));
        Err(problems)
    } else {
        Ok(Planned {
            plan,
            warnings: problems,
        })
    }
}

/// The plan of the profile `text` for cluster `c`, relative paths under `/p`: for
/// unit tests of the modules that consume plans.
#[cfg(test)]
pub(crate) fn plan_of_text(text: &str) -> ClusterPlan {
    let profile = crate::core::profile::Profile::decode(text).unwrap_or_else(|e| panic!("{e:?}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn input(profile: &Profile) -> PlanInput<'_> {
        PlanInput {
            profile,
            name_override: None,
            base_dir: Path::new("/work"),
            home_dir: None,
            source: "test".into(),
            file: None,
        }
    }

    #[test]
    fn defaulting_completes_a_plan_that_validation_then_reports_in_full() {
        let profile = Profile::decode(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  controlPlanes: 2\n  workers: 1\nnetworking:\n  apiServerPort: 70000\nports:\n  - {containerPort: 80, hostPort: 8080, protocol: tcp}\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let input = input(&profile);
        let plan = defaults::complete(&input);
        // Out-of-range values fall back to the defaults; what kind would refuse is left out.
        assert_eq!(plan.name, DEFAULT_CLUSTER_NAME);
        let ids: Vec<&str> = plan.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["control-plane", "worker"]);
        assert_eq!(plan.networking.api_server_address, "127.0.0.1");
        assert_eq!(plan.networking.api_server_port, 0);
        assert!(plan.nodes.iter().all(|n| n.ports.is_empty()));
        assert!(plan.storage.tolerate_tainted_nodes);
        let messages: Vec<String> = validate::validate(&input, &plan, &AsWritten)
            .into_iter()
            .map(|p| p.message)
            .collect();
        assert_eq!(
            messages,
            [
                "nodes.controlPlanes is 2; it must be 1 or 3",
                "networking.apiServerPort is 70000; it must be 0 (pick a free port) or 1-65535",
                "ports: protocol `tcp` is not TCP, UDP or SCTP",
            ]
        );
    }
}
