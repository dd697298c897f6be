//! `nodes`: a probe pod can run somewhere. When no node is Ready and
//! schedulable, no pod-level proof can run and their rows would just be missing;
//! this row fails the run and names each node and what keeps pods off it.

use futures_util::future::BoxFuture;

use crate::adapters::kube::probe::ProbeNode;
use crate::core::check::{Check, Layer, Status};
use crate::operations::verify::probes::{Probe, Run};

pub struct Nodes;

impl Probe for Nodes {
    fn name(&self) -> &'static str {
        "nodes"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(async move { nowhere_to_run(&run.api_nodes, &run.schedulable) })
    }
}

/// The `nodes` row when no node takes probe pods; nothing otherwise.
fn nowhere_to_run(api_nodes: &[ProbeNode], schedulable: &[ProbeNode]) -> Vec<Check> {
    if !schedulable.is_empty() {
        return Vec::new();
    }
    let detail = if api_nodes.is_empty() {
        "the cluster has no nodes: no probe pod can run".to_string()
    } else {
        let nodes: Vec<String> = api_nodes
            .iter()
            .map(|n| {
                let why = match (n.ready, n.unschedulable) {
                    (false, true) => "not Ready, cordoned",
                    (false, false) => "not Ready",
                    (true, _) => "cordoned",
                };
                format!("{} ({why})", n.name)
            })
            .collect();
        format!(
            "no node is Ready and schedulable, so no probe pod can run: {}",
            nodes.join(", ")
        )
    };
    vec![
        Check::new("nodes", None, Layer::Pod, Status::Fail, detail).hint(
            "`kubectl get nodes` and `kubectl describe node NAME` say why a node is not Ready; `kubectl uncordon NAME` opens a cordoned one",
        ),
    ]
}
