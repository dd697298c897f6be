//! Ingress: whether it is on, the node that carries it and its `ingress-ready`
//! label, the HTTP and HTTPS ports that node publishes, and the controller plan.

use serde::{Deserialize, Serialize};

use super::ClusterPlan;
use super::defaults::{
    DEFAULT_HTTP_PORT, DEFAULT_HTTPS_PORT, DEFAULT_INGRESS_CONTROLLER, LOOPBACK,
};
use super::labels::TaintEffect;
use super::nodes::NodePlan;
use super::ports::{PortPlan, PortPurpose, Protocol, check_listen_address};
use crate::core::diagnostic::Problem;
use crate::core::profile::{CustomController, IngressSpec, Profile};
use crate::core::yaml::Located;

/// What `plan` and `up` say when a profile chooses ingress-nginx.
pub const INGRESS_NGINX_RETIRED: &str = "ingress-nginx is retired upstream (March 2026): v1.15.1 is its last release and gets no security fixes";

/// The label kind's ingress guides and devcluster put on the ingress node.
pub const INGRESS_READY_LABEL: &str = "ingress-ready";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressPlan {
    /// Name of the ingress node.
    pub node: String,
    pub http_port: i32,
    pub https_port: i32,
    pub listen_address: String,
    /// devcluster pins the controller to the ingress node and gives it tolerations
    /// for that node's taints.
    pub controller: ControllerPlan,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum ControllerPlan {
    /// Contour with Envoy, serving Ingress and Gateway API (the default).
    Contour,
    /// ingress-nginx, retired upstream: kept for those who choose it.
    IngressNginx,
    Custom {
        #[serde(flatten)]
        manifest: CustomController,
    },
    None,
}

/// Whether the profile turns ingress on (`ingress.enabled: true`).
fn enabled(profile: &Profile) -> bool {
    profile
        .ingress
        .as_ref()
        .and_then(|i| i.enabled.as_ref())
        .is_some_and(|e| e.value)
}

/// `ingress-ready=true` on the ingress node when ingress is on.
pub(super) fn label_ingress_node(nodes: &mut [NodePlan], profile: &Profile) {
    if !enabled(profile) {
        return;
    }
    if let Some(node) = nodes.iter_mut().find(|n| n.ingress) {
        node.labels
            .insert(INGRESS_READY_LABEL.into(), "true".into());
    }
}

/// The ingress plan, with the ingress node's HTTP and HTTPS ports added to it; `None`
/// when ingress is off or no node carries it. A port out of range falls back to the
/// default and a controller that is not fully described to none (validation reports
/// both).
pub(super) fn ingress(nodes: &mut [NodePlan], profile: &Profile) -> Option<IngressPlan> {
    if !enabled(profile) {
        return None;
    }
    let node = nodes.iter_mut().find(|n| n.ingress)?;
    let spec = profile.ingress.clone().unwrap_or_default();
    let listen_address = spec
        .listen_address
        .as_ref()
        .map_or_else(|| LOOPBACK.to_string(), |l| l.value.clone());
    let http_port = ingress_port(spec.http_port.as_ref()).unwrap_or(DEFAULT_HTTP_PORT);
    let https_port = ingress_port(spec.https_port.as_ref()).unwrap_or(DEFAULT_HTTPS_PORT);
    let controller = match (controller_name(&spec).value.as_str(), &spec.manifest) {
        ("contour", None) => ControllerPlan::Contour,
        ("ingress-nginx", None) => ControllerPlan::IngressNginx,
        ("custom", Some(manifest)) => ControllerPlan::Custom {
            manifest: manifest.value.clone(),
        },
        _ => ControllerPlan::None,
    };
    for (port, container_port, purpose) in [
        (http_port, 80, PortPurpose::IngressHttp),
        (https_port, 443, PortPurpose::IngressHttps),
    ] {
        node.ports.push(PortPlan {
            container_port,
            host_port: port,
            protocol: Protocol::Tcp,
            listen_address: listen_address.clone(),
            purpose,
        });
    }
    Some(IngressPlan {
        node: node.name.clone(),
        http_port,
        https_port,
        listen_address,
        controller,
    })
}

fn controller_name(spec: &IngressSpec) -> Located<String> {
    spec.controller
        .clone()
        .unwrap_or_else(|| Located::new(DEFAULT_INGRESS_CONTROLLER.to_string()))
}

/// An ingress host port as written, when it is in range.
fn ingress_port(value: Option<&Located<i64>>) -> Option<i32> {
    value
        .filter(|l| (-1..=65535).contains(&l.value))
        .map(|l| l.value as i32)
}

/// Checks the ingress of `plan`: its listen address and ports, that the controller
/// is one devcluster knows and fully described, and warns when the controller the
/// user installs must tolerate the ingress node's taints.
pub(super) fn check_ingress(profile: &Profile, plan: &ClusterPlan, problems: &mut Vec<Problem>) {
    let (Some(ingress), Some(node)) = (&plan.ingress, plan.ingress_node()) else {
        return;
    };
    let spec = profile.ingress.clone().unwrap_or_default();
    if let Some(l) = &spec.listen_address {
        check_listen_address(&l.value, "ingress.listenAddress", &|p| p.at(l), problems);
    }
    for (value, field) in [
        (&spec.http_port, "ingress.httpPort"),
        (&spec.https_port, "ingress.httpsPort"),
    ] {
        if let Some(l) = value
            && ingress_port(Some(l)).is_none()
        {
            problems.push(
                Problem::error(format!(
                    "{field} is {}; it must be 1-65535, 0 (kind picks a free port) or -1 (Docker picks one)",
                    l.value
                ))
                .at(l),
            );
        }
    }
    let controller_name = controller_name(&spec);
    match (controller_name.value.as_str(), &spec.manifest) {
        ("contour", None) | ("none", None) => {}
        ("ingress-nginx", None) => problems.push(
            Problem::warning(INGRESS_NGINX_RETIRED)
                .at(&controller_name)
                .hint("leave ingress.controller out (or set `controller: contour`) for Contour, which serves Ingress and Gateway API"),
        ),
        ("custom", Some(manifest)) => check_custom_controller(manifest, problems),
        ("custom", None) => problems.push(
            Problem::error("ingress.controller is `custom` but ingress.manifest is missing")
                .at(&controller_name)
                .hint("add ingress.manifest with url, sha256, namespace and podSelector"),
        ),
        ("contour" | "ingress-nginx" | "none", Some(manifest)) => problems.push(
            Problem::error(format!(
                "ingress.manifest is set but ingress.controller is `{}`",
                controller_name.value
            ))
            .at(manifest)
            .hint("set `controller: custom` to use your own manifest"),
        ),
        (other, _) => problems.push(
            Problem::error(format!(
                "ingress.controller is `{other}`; it must be contour, ingress-nginx, custom or none"
            ))
            .at(&controller_name),
        ),
    }
    let blocking_taints: Vec<String> = node
        .taints
        .iter()
        .filter(|t| t.effect != TaintEffect::PreferNoSchedule)
        .map(|t| t.to_string())
        .collect();
    if !blocking_taints.is_empty() && ingress.controller == ControllerPlan::None {
        let at = spec.controller.clone().unwrap_or_default();
        problems.push(
            Problem::warning(format!(
                "the ingress node `{}` is tainted ({}); the controller you install yourself must tolerate that",
                node.id,
                blocking_taints.join(", ")
            ))
            .at(&at),
        );
    }
}

fn check_custom_controller(manifest: &Located<CustomController>, problems: &mut Vec<Problem>) {
    let m = &manifest.value;
    if !m.url.starts_with("https://") {
        problems.push(
            Problem::error(format!(
                "ingress.manifest.url `{}` must be an https:// URL",
                m.url
            ))
            .at(manifest),
        );
    }
    if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        problems.push(
            Problem::error("ingress.manifest.sha256 must be 64 hexadecimal digits")
                .at(manifest)
                .hint("compute it with `sha256sum` on the manifest you reviewed"),
        );
    }
    if m.pod_selector.is_empty() {
        problems.push(
            Problem::error(
                "ingress.manifest.podSelector is empty; devcluster waits for the pods it selects",
            )
            .at(manifest),
        );
    }
}
