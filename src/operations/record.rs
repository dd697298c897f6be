//! devcluster's record on a cluster's nodes, read back through the node runtime.
//! What the record holds is `core::record`; this is where it is found.

use crate::adapters::docker::{NodeRuntime, ObservedNode};
use crate::core::plan::Role;
use crate::core::record::{self, Record};

/// The first control-plane container, where `up` keeps the record.
fn record_holder(nodes: &[ObservedNode]) -> Option<&ObservedNode> {
    nodes
        .iter()
        .filter(|n| n.role == Role::ControlPlane.as_str())
        .min_by(|a, b| a.name.len().cmp(&b.name.len()).then(a.name.cmp(&b.name)))
}

/// Reads devcluster's record from the cluster's first control-plane container,
/// through the runtime's archive read, so a stopped node is read as well as a
/// running one. `None` when there is none, or it cannot be read.
pub async fn read_record(runtime: &dyn NodeRuntime, nodes: &[ObservedNode]) -> Option<Record> {
    let holder = record_holder(nodes)?;
    let bytes = runtime
        .read_file(&holder.name, record::RECORD_PATH, record::MAX_RECORD_BYTES)
        .await
        .ok()??;
    Record::from_json(&String::from_utf8_lossy(&bytes))
}
