//! Published ports: the profile's port mappings on the node each names (the ingress
//! node unless told otherwise), listen addresses, and host ports two mappings or the
//! API server would both claim.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::ClusterPlan;
use super::defaults::{DEFAULT_PORT_NODE, LOOPBACK};
use super::networking::is_unspecified;
use super::nodes::{NodePlan, select};
use crate::core::diagnostic::Problem;
use crate::core::profile::{PortSpec, Profile};
use crate::core::yaml::Located;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// What a published port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortPurpose {
    IngressHttp,
    IngressHttps,
    Profile,
}

/// One published port on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortPlan {
    pub container_port: u16,
    /// 1-65535; `0`: kind picks a free port and keeps it; `-1`: Docker picks one.
    pub host_port: i32,
    pub protocol: Protocol,
    pub listen_address: String,
    pub purpose: PortPurpose,
}

/// Node sets a port mapping cannot name: a host port is published by one node.
const NODE_SETS: &[&str] = &["all", "control-planes", "workers"];

fn protocol(text: Option<&str>) -> Option<Protocol> {
    match text {
        None | Some("TCP") => Some(Protocol::Tcp),
        Some("UDP") => Some(Protocol::Udp),
        Some("SCTP") => Some(Protocol::Sctp),
        Some(_) => None,
    }
}

/// The profile's port mappings on the nodes they name. A mapping with a port or
/// protocol kind would refuse, or naming a node set, is left out (validation reports
/// it).
pub(super) fn publish(nodes: &mut [NodePlan], profile: &Profile) {
    for located in &profile.ports {
        let spec = &located.value;
        let container_port = match u16::try_from(spec.container_port) {
            Ok(port) if port >= 1 => port,
            _ => continue,
        };
        if !(-1..=65535).contains(&spec.host_port) {
            continue;
        }
        let Some(protocol) = protocol(spec.protocol.as_deref()) else {
            continue;
        };
        let selector = spec.node.as_deref().unwrap_or(DEFAULT_PORT_NODE);
        if NODE_SETS.contains(&selector) {
            continue;
        }
        let listen_address = spec.listen_address.as_deref().unwrap_or(LOOPBACK);
        for index in select(nodes, selector, "ports: node").unwrap_or_default() {
            nodes[index].ports.push(PortPlan {
                container_port,
                host_port: spec.host_port as i32,
                protocol,
                listen_address: listen_address.to_string(),
                purpose: PortPurpose::Profile,
            });
        }
    }
}

/// Checks one port mapping: ports in range, a protocol spelled as kind spells it, a
/// listen address, and exactly one node that exists.
pub(super) fn check_port(
    located: &Located<PortSpec>,
    nodes: &[NodePlan],
    problems: &mut Vec<Problem>,
) {
    let spec = &located.value;
    let at = |p: Problem| p.at(located);
    if !(1..=65535).contains(&spec.container_port) {
        problems.push(at(Problem::error(format!(
            "ports: containerPort is {}; it must be 1-65535",
            spec.container_port
        ))));
        return;
    }
    if !(-1..=65535).contains(&spec.host_port) {
        problems.push(at(Problem::error(format!(
            "ports: hostPort is {}; it must be 1-65535, 0 (kind picks a free port and keeps it) or -1 (Docker picks one on every start)",
            spec.host_port
        ))));
        return;
    }
    if let (None, Some(other)) = (protocol(spec.protocol.as_deref()), spec.protocol.as_deref()) {
        let upper = other.to_ascii_uppercase();
        let hint = if ["TCP", "UDP", "SCTP"].contains(&upper.as_str()) {
            format!("kind spells protocols in upper case: write `protocol: {upper}`")
        } else {
            "use TCP, UDP or SCTP".to_string()
        };
        problems.push(at(Problem::error(format!(
            "ports: protocol `{other}` is not TCP, UDP or SCTP"
        ))
        .hint(hint)));
        return;
    }
    let listen_address = spec.listen_address.as_deref().unwrap_or(LOOPBACK);
    check_listen_address(listen_address, "ports: listenAddress", &at, problems);
    if (1..1024).contains(&spec.host_port) {
        problems.push(at(Problem::warning(format!(
            "ports: hostPort {} is below 1024; rootless Docker cannot publish it",
            spec.host_port
        ))));
    }
    let selector = spec.node.as_deref().unwrap_or(DEFAULT_PORT_NODE);
    if NODE_SETS.contains(&selector) {
        problems.push(at(Problem::error(format!(
            "ports: node is `{selector}`, but a host port is published by exactly one node"
        ))
        .hint(
            "name one node, e.g. `node: worker`, or leave it out for the ingress node",
        )));
        return;
    }
    if let Err(problem) = select(nodes, selector, "ports: node") {
        problems.push(at(problem));
    }
}

/// A listen address must be an IP address; a wildcard one is warned about.
pub(super) fn check_listen_address(
    address: &str,
    field: &str,
    at: &dyn Fn(Problem) -> Problem,
    problems: &mut Vec<Problem>,
) {
    if address.parse::<IpAddr>().is_err() {
        problems.push(at(Problem::error(format!(
            "{field} `{address}` is not an IP address"
        ))
        .hint(
            "use 127.0.0.1 (this machine only), or 0.0.0.0 for every interface",
        )));
    } else if is_unspecified(address) {
        problems.push(at(Problem::warning(format!(
            "{field} `{address}` publishes the port on every network this host is on"
        ))
        .hint("use 127.0.0.1 unless other machines must reach it")));
    }
}

/// No two fixed host ports of the plan may clash, on one node or across nodes, nor
/// with the API server's port.
pub(super) fn check_port_collisions(
    profile: &Profile,
    plan: &ClusterPlan,
    problems: &mut Vec<Problem>,
) {
    let nodes = &plan.nodes;
    let networking = &plan.networking;
    let port_location = |port: &PortPlan| -> Located<()> {
        let ingress = profile.ingress.as_ref();
        let located = match port.purpose {
            PortPurpose::IngressHttp => ingress
                .and_then(|i| i.http_port.as_ref())
                .map(|l| (l.line, l.column, l.file.clone())),
            PortPurpose::IngressHttps => ingress
                .and_then(|i| i.https_port.as_ref())
                .map(|l| (l.line, l.column, l.file.clone())),
            PortPurpose::Profile => profile
                .ports
                .iter()
                .find(|p| {
                    p.value.host_port == i64::from(port.host_port)
                        && p.value.container_port == i64::from(port.container_port)
                })
                .map(|l| (l.line, l.column, l.file.clone())),
        };
        match located {
            Some((line, column, file)) => Located {
                value: (),
                line,
                column,
                file,
            },
            None => Located::new(()),
        }
    };
    // (node index, port) for every fixed host port.
    let fixed: Vec<(usize, &PortPlan)> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.ports.iter().map(move |p| (i, p)))
        .filter(|(_, p)| p.host_port > 0)
        .collect();
    for (a, (node_a, port_a)) in fixed.iter().enumerate() {
        if networking.api_server_port > 0
            && port_a.host_port == networking.api_server_port
            && port_a.protocol == Protocol::Tcp
            && addresses_overlap(&port_a.listen_address, &networking.api_server_address)
        {
            problems.push(
                Problem::error(format!(
                    "host port {} on node `{}` is also networking.apiServerPort",
                    port_a.host_port, nodes[*node_a].id
                ))
                .at(&port_location(port_a))
                .hint("use another hostPort, or leave apiServerPort at 0"),
            );
        }
        for (node_b, port_b) in fixed.iter().skip(a + 1) {
            if port_a.host_port != port_b.host_port
                || port_a.protocol != port_b.protocol
                || !addresses_overlap(&port_a.listen_address, &port_b.listen_address)
            {
                continue;
            }
            let message = if node_a == node_b {
                format!(
                    "node `{}` publishes host port {}/{} twice (a mapping without `protocol` is TCP)",
                    nodes[*node_a].id,
                    port_a.host_port,
                    port_a.protocol.as_str()
                )
            } else {
                format!(
                    "host port {}/{} is published by two nodes, `{}` and `{}`; Docker would fail with \"port is already allocated\" after the nodes were prepared",
                    port_a.host_port,
                    port_a.protocol.as_str(),
                    nodes[*node_a].id,
                    nodes[*node_b].id
                )
            };
            problems.push(
                Problem::error(message)
                    .at(&port_location(port_b))
                    .hint("give each mapping its own hostPort, or 0 to let kind pick one"),
            );
        }
    }
}

/// Whether two listen addresses can clash: equal, or either is a wildcard of the
/// same family (kind's rule, applied across nodes too).
pub(super) fn addresses_overlap(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => {
            a == b || (a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified()))
        }
        _ => a == b,
    }
}
