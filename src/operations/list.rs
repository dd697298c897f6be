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
    let docker = app.docker().await.map_err(Error::from)?;
    let nodes = docker.list_nodes(None).await.map_err(Error::from)?;
    let mut by_cluster: BTreeMap<String, Vec<ObservedNode>> = BTreeMap::new();
    for node in nodes {
        by_cluster
            .entry(node.cluster.clone())
            .or_default()
            .push(node);
    }
    let mut list = ClusterList::default();
    for (name, members) in by_cluster {
        match read_record(&docker, &members).await {
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
        ObservedNode {
            name: "n".into(),
            cluster: "c".into(),
            role: "worker".into(),
            state: state.into(),
            image: String::new(),
            labels: BTreeMap::new(),
            mounts: Vec::new(),
            ports: Vec::new(),
            requested_ports: Vec::new(),
        }
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
