//! `devcluster list`: the clusters devcluster created on this Docker Engine, each
//! with its state and the profile it was made from. A kind cluster without
//! devcluster's record is counted, not listed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::adapters::docker::ObservedNode;
use crate::core::error::{Error, Result};
use crate::operations::cluster::read_record;
use crate::operations::context::App;

/// One cluster devcluster created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    pub name: String,
    /// `running` (every node), `stopped` (none), or `partly running`.
    pub state: String,
    pub nodes: usize,
    /// Where the profile came from (`builtin:ingress`, a path).
    pub profile: String,
    /// How far `up` got: `created`, `converged` or `complete`.
    pub phase: String,
    /// The devcluster release that last wrote its record.
    pub devcluster_version: String,
}

/// Every cluster on this Docker Engine, split into devcluster's and the others.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterList {
    pub clusters: Vec<ClusterSummary>,
    /// kind clusters devcluster did not create (or whose `kind create` did not finish).
    pub others: Vec<String>,
}

/// The state of a cluster from its nodes' container states.
pub fn state_of(nodes: &[ObservedNode]) -> &'static str {
    let running = nodes.iter().filter(|n| n.state == "running").count();
    match running {
        0 => "stopped",
        n if n == nodes.len() => "running",
        _ => "partly running",
    }
}

/// Reads every kind cluster's record, through the archive API so a stopped
/// cluster is recognised as well as a running one.
pub async fn run(app: &App) -> Result<ClusterList> {
    let runtime = app.node_runtime().await.map_err(Error::from)?;
    let nodes = runtime.list_nodes(None).await.map_err(Error::from)?;
    let mut by_cluster: BTreeMap<String, Vec<ObservedNode>> = BTreeMap::new();
    for node in nodes {
        by_cluster
            .entry(node.cluster.clone())
            .or_default()
            .push(node);
    }
    let mut list = ClusterList::default();
    for (name, members) in by_cluster {
        match read_record(runtime.as_ref(), &members).await {
            Some(record) => list.clusters.push(ClusterSummary {
                state: state_of(&members).to_string(),
                nodes: members
                    .iter()
                    .filter(|n| n.role != "external-load-balancer")
                    .count(),
                profile: record.profile_source,
                phase: record.phase.as_str().to_string(),
                devcluster_version: record.devcluster_version,
                name,
            }),
            None => list.others.push(name),
        }
    }
    Ok(list)
}

/// The rows `devcluster list` prints, header first.
pub fn table_rows(list: &ClusterList) -> Vec<Vec<String>> {
    let mut rows = vec![
        ["NAME", "STATE", "NODES", "PROFILE", "PHASE"]
            .map(str::to_string)
            .to_vec(),
    ];
    for cluster in &list.clusters {
        rows.push(vec![
            cluster.name.clone(),
            cluster.state.clone(),
            cluster.nodes.to_string(),
            cluster.profile.clone(),
            cluster.phase.clone(),
        ]);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(state: &str) -> ObservedNode {
        member("c", "n", "worker", state)
    }

    fn member(cluster: &str, name: &str, role: &str, state: &str) -> ObservedNode {
        ObservedNode {
            name: name.into(),
            cluster: cluster.into(),
            role: role.into(),
            state: state.into(),
            image: String::new(),
            labels: BTreeMap::new(),
            mounts: Vec::new(),
            ports: Vec::new(),
            requested_ports: Vec::new(),
        }
    }

    /// What `list` and `down --all` rely on: only a cluster with devcluster's record
    /// on its first control-plane node is devcluster's; the rest are others.
    #[tokio::test]
    async fn only_clusters_with_a_record_are_devclusters_own() {
        use crate::adapters::docker::canned::CannedRuntime;
        use crate::core::record::{self, Phase, Record};
        let plan = crate::core::plan::plan_of_text(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nname: ours\n",
        );
        let mut runtime = CannedRuntime::empty();
        runtime.nodes = vec![
            member("ours", "ours-control-plane", "control-plane", "exited"),
            member("ours", "ours-worker", "worker", "exited"),
            member("theirs", "theirs-control-plane", "control-plane", "running"),
        ];
        runtime.files.insert(
            ("ours-control-plane".into(), record::RECORD_PATH.into()),
            Record::new(&plan, Phase::Complete).to_json().into_bytes(),
        );
        let app = App::new(crate::adapters::world::World::default())
            .with_node_runtime(std::sync::Arc::new(runtime));
        let list = run(&app).await.unwrap_or_else(|e| panic!("{}", e.render()));
        assert_eq!(list.others, ["theirs"]);
        assert_eq!(list.clusters.len(), 1, "{list:?}");
        let ours = &list.clusters[0];
        assert_eq!(
            (ours.name.as_str(), ours.state.as_str()),
            ("ours", "stopped")
        );
        assert_eq!((ours.nodes, ours.phase.as_str()), (2, "complete"));
        assert_eq!(ours.profile, plan.source);
    }

    #[test]
    fn a_cluster_is_running_stopped_or_partly_running() {
        assert_eq!(state_of(&[node("running"), node("running")]), "running");
        assert_eq!(state_of(&[node("exited"), node("created")]), "stopped");
        assert_eq!(
            state_of(&[node("running"), node("exited")]),
            "partly running"
        );
    }
}
