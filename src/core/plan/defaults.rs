//! The defaulting pass: every value the profile leaves out, filled in, giving a
//! complete [`ClusterPlan`] (the role of kind's `pkg/internal/apis/config/default.go`).
//!
//! Defaulting never fails. Where the profile asks for something that cannot be,
//! it falls back to the default or leaves the thing out; the validation pass
//! ([`super::validate`]) reports each such case.

use super::{
    ClusterPlan, PlanInput, StoragePlan, ingress, labels, mounts, networking, nodes, ports,
    registry,
};

/// Default cluster name when neither the profile nor `--name` gives one.
pub const DEFAULT_CLUSTER_NAME: &str = "devcluster";
/// Control-planes when `nodes.controlPlanes` is left out.
pub(super) const DEFAULT_CONTROL_PLANES: u32 = 1;
/// Workers when `nodes.workers` is left out.
pub(super) const DEFAULT_WORKERS: u32 = 0;
/// The address ports and the API server listen on when the profile names none:
/// this machine only.
pub(super) const LOOPBACK: &str = "127.0.0.1";
/// `0`: kind picks a free port for the API server.
pub(super) const DEFAULT_API_SERVER_PORT: i32 = 0;
/// Host ports of the ingress node's HTTP and HTTPS.
pub(super) const DEFAULT_HTTP_PORT: i32 = 80;
pub(super) const DEFAULT_HTTPS_PORT: i32 = 443;
/// The ingress controller devcluster installs unless told otherwise: Contour,
/// maintained, serving both Ingress and Gateway API.
pub(super) const DEFAULT_INGRESS_CONTROLLER: &str = "contour";
/// The node a port mapping is published on when it names none.
pub(super) const DEFAULT_PORT_NODE: &str = "ingress";
/// The nodes a mount is on when it names none.
pub(super) const DEFAULT_MOUNT_NODES: &[&str] = &["all"];
/// Whether local-path-provisioner may run on tainted nodes, when left out.
const DEFAULT_TOLERATE_TAINTED_NODES: bool = true;

/// The complete plan of the profile in `input`, before validation.
pub(super) fn complete(input: &PlanInput<'_>) -> ClusterPlan {
    let profile = input.profile;
    let name = nodes::cluster_name(input);
    let mut nodes = nodes::nodes(&name, profile);
    nodes::pin_ingress(&mut nodes, profile);
    ingress::label_ingress_node(&mut nodes, profile);
    labels::label_nodes(&mut nodes, profile);
    labels::taint_nodes(&mut nodes, profile);
    let networking = networking::networking(profile);
    let ingress = ingress::ingress(&mut nodes, profile);
    ports::publish(&mut nodes, profile);
    mounts::mount(&mut nodes, input);
    let (image, kubernetes_version) = nodes::image(profile);
    ClusterPlan {
        name,
        source: input.source.clone(),
        image,
        kubernetes_version,
        nodes,
        ingress,
        storage: StoragePlan {
            tolerate_tainted_nodes: profile
                .storage
                .as_ref()
                .and_then(|s| s.tolerate_tainted_nodes)
                .unwrap_or(DEFAULT_TOLERATE_TAINTED_NODES),
        },
        networking,
        registry: registry::registry(profile),
    }
}
