//! The validation pass: every problem of a profile and its completed plan, found in
//! one go rather than stopping at the first (the role of kind's
//! `pkg/internal/apis/config/validate.go`).
//!
//! Problems are collected in the order of the profile's concerns; the caller sorts
//! errors by position.

use super::{
    ClusterPlan, HostPaths, PlanInput, ingress, labels, mounts, networking, nodes, ports, registry,
};
use crate::core::diagnostic::Problem;

/// Every error and warning about `input`'s profile and `plan`, its completed plan.
/// `host` tells where host paths really lead.
pub(super) fn validate(
    input: &PlanInput<'_>,
    plan: &ClusterPlan,
    host: &dyn HostPaths,
) -> Vec<Problem> {
    let profile = input.profile;
    let mut problems = Vec::new();
    nodes::check_cluster_name(input, &mut problems);
    nodes::check_node_counts(profile, &mut problems);
    nodes::check_ingress_node(profile, &plan.nodes, &mut problems);
    labels::check_labels(profile, &plan.nodes, &mut problems);
    labels::check_taints(profile, &plan.nodes, &mut problems);
    networking::check_networking(profile, &mut problems);
    ingress::check_ingress(profile, plan, &mut problems);
    for port in &profile.ports {
        ports::check_port(port, &plan.nodes, &mut problems);
    }
    for mount in &profile.mounts {
        mounts::check_mount(mount, input, host, &plan.nodes, &mut problems);
    }
    ports::check_port_collisions(profile, plan, &mut problems);
    mounts::check_mount_collisions(profile, &plan.nodes, &mut problems);
    registry::check_registry(profile, plan, &mut problems);
    nodes::check_image(profile, &mut problems);
    problems
}
