//! `port`: through Docker, each planned host port is published by its node and
//! by no other node.

use futures_util::future::BoxFuture;

use crate::core::check::{Check, Layer, Status};
use crate::core::plan::{PortPlan, PortPurpose, Protocol};
use crate::operations::verify::Target;
use crate::operations::verify::probes::{Probe, Run};

pub struct Port;

impl Probe for Port {
    fn name(&self) -> &'static str {
        "port"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(async move { published(run.target).0 })
    }
}

/// A planned port as Docker publishes it on the host.
#[derive(Debug, Clone)]
pub struct Reachable {
    pub port: PortPlan,
    pub host_ip: String,
    pub host_port: u16,
    pub node: String,
}

/// A TCP mapping whose container port is in the default NodePort range.
pub fn is_node_port(port: &PortPlan) -> bool {
    port.protocol == Protocol::Tcp && (30000..=32767).contains(&port.container_port)
}

/// The rows of the node layer, and the ports a request from this host can reach.
pub fn published(target: &Target<'_>) -> (Vec<Check>, Vec<Reachable>) {
    let Some(plan) = target.plan else {
        return (Vec::new(), Vec::new());
    };
    let mut checks = Vec::new();
    // Only what Docker showed of the node containers is read here.
    let node_layer = !target.nodes.is_empty() && target.node_layer_skipped.is_none();
    let mut reachable = Vec::new();
    for node in &plan.nodes {
        for port in &node.ports {
            let name = format!("port {}/{}", port.container_port, port.protocol.as_str());
            if !node_layer {
                continue;
            }
            let Some(observed) = target.nodes.iter().find(|n| n.name == node.name) else {
                continue;
            };
            let protocol = port.protocol.as_str().to_ascii_lowercase();
            let wanted = crate::adapters::docker::WantedPort {
                container_port: port.container_port,
                protocol: &protocol,
                host_port: port.host_port,
                listen_address: &port.listen_address,
            };
            let binding = match observed.binding(&wanted) {
                crate::adapters::docker::Binding::Published(binding) => binding,
                crate::adapters::docker::Binding::Unconfirmed(asked) => {
                    checks.push(
                        Check::new(
                            &name,
                            Some(&node.name),
                            Layer::Node,
                            Status::Warn,
                            format!(
                                "unconfirmed: {} was created with {}:{}, but Docker reports no host binding",
                                node.name, port.listen_address, port.host_port
                            ),
                        )
                        .hint("some Docker Desktop releases report bindings empty (docker/for-mac#7787); `docker port NODE` or a request to the port shows whether it works"),
                    );
                    if asked.host_port != 0 {
                        reachable.push(Reachable {
                            port: port.clone(),
                            host_ip: asked.host_ip.clone(),
                            host_port: asked.host_port,
                            node: node.name.clone(),
                        });
                    }
                    continue;
                }
                crate::adapters::docker::Binding::Missing => {
                    checks.push(
                        Check::new(
                            &name,
                            Some(&node.name),
                            Layer::Node,
                            Status::Fail,
                            format!(
                                "{} does not publish {}:{}",
                                node.name, port.listen_address, port.host_port
                            ),
                        )
                        .hint("`devcluster up --recreate` rebuilds the node from the profile"),
                    );
                    continue;
                }
            };
            let others: Vec<&str> = target
                .nodes
                .iter()
                .filter(|o| {
                    o.name != node.name
                        && o.ports.iter().chain(&o.requested_ports).any(|p| {
                            p.host_port == binding.host_port
                                && p.protocol.eq_ignore_ascii_case(&protocol)
                        })
                })
                .map(|o| o.name.as_str())
                .collect();
            if others.is_empty() {
                // A profile mapping outside the NodePort range has nothing devcluster
                // could answer behind it: the node layer is its whole proof.
                let probed = port.purpose != PortPurpose::Profile || is_node_port(port);
                checks.push(Check::new(
                    &name,
                    Some(&node.name),
                    Layer::Node,
                    Status::Ok,
                    format!(
                        "published on {}:{} by this node only{}",
                        binding.host_ip,
                        binding.host_port,
                        if probed {
                            ""
                        } else {
                            "; published; not probed over HTTP"
                        }
                    ),
                ));
                reachable.push(Reachable {
                    port: port.clone(),
                    host_ip: binding.host_ip.clone(),
                    host_port: binding.host_port,
                    node: node.name.clone(),
                });
            } else {
                checks.push(Check::new(
                    &name,
                    Some(&node.name),
                    Layer::Node,
                    Status::Fail,
                    format!(
                        "host port {} is also published by {}",
                        binding.host_port,
                        others.join(", ")
                    ),
                ));
            }
        }
    }
    (checks, reachable)
}
