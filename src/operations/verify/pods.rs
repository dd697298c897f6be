//! What every probe pod shares (namespace, image, token, deadline, the pod
//! runner), and the echo backend's templates and HTTP client.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::adapters::kube::probe::{ProbeNode, ProbePod, ProbeVolume};
use crate::core::profile::GatewayRef;
use crate::operations::verify::runner::{PodOutcome, PodRunner};

/// What every probe pod shares.
#[derive(Debug, Clone)]
pub struct PodContext {
    pub namespace: String,
    pub image: String,
    pub pull_policy: String,
    pub token: String,
    pub deadline: Instant,
    /// The echo backend needs an HTTP server, which kind's preloaded helper image
    /// lacks: busybox's `httpd` (`--echo-image` overrides it).
    pub echo_image: String,
    /// What the run must remove again (sentinel files), registered as it goes.
    pub leftovers: std::sync::Arc<crate::operations::verify::Leftovers>,
    /// Watches the namespace's pods and events for every probe.
    pub runner: PodRunner,
    /// Whether probes that only read and write files share their node's network
    /// (see [`ProbePod::host_network`]).
    pub host_network: bool,
}

impl PodContext {
    pub fn pod(
        &self,
        name: String,
        node: &ProbeNode,
        script: String,
        volumes: Vec<ProbeVolume>,
    ) -> ProbePod {
        ProbePod {
            name,
            node: Some(node.name.clone()),
            via_scheduler: false,
            tolerations: node.taints.clone(),
            image: self.image.clone(),
            pull_policy: self.pull_policy.clone(),
            script,
            volumes,
            run_as_root: false,
            stdin: false,
            host_network: self.host_network,
            labels: BTreeMap::new(),
        }
    }

    /// Runs one probe pod to its end (or the deadline).
    pub async fn run(&self, pod: &ProbePod) -> Result<PodOutcome, String> {
        self.runner.run(pod, self.deadline).await
    }
}

/// A DNS-1123 name of at most 63 characters, unique per node: `prefix-<n>`.
pub fn pod_name(prefix: &str, index: usize) -> String {
    let mut name = format!("{prefix}-{index}");
    name.truncate(63);
    name
}

/// What routes the ingress controller in front of the echo backend: the
/// IngressClass its Ingress names and, when it serves Gateway API, the Gateway
/// its HTTPRoute attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoIngress {
    pub class: String,
    pub gateway: Option<GatewayRef>,
}

/// The echo backend's routes, rendered from `templates/echo-routes.yaml`: the
/// NodePort Service gets one port per entry of `node_ports` (and is left out
/// without any), the Ingress is left out without an ingress, the HTTPRoute
/// without a Gateway.
pub fn echo_routes(
    namespace: &str,
    token: &str,
    ingress: Option<&EchoIngress>,
    node_ports: &[u16],
) -> Result<Vec<serde_json::Value>, String> {
    let gateway = ingress.and_then(|i| i.gateway.as_ref());
    let text = include_str!("../../../templates/echo-routes.yaml")
        .replace("{{NAMESPACE}}", namespace)
        .replace("{{TOKEN}}", token)
        .replace("{{PATH}}", &echo_path(token))
        .replace("{{ROUTE_PATH}}", &route_path(token))
        .replace(
            "{{INGRESS_CLASS}}",
            ingress.map_or("", |i| i.class.as_str()),
        )
        .replace(
            "{{GATEWAY_NAMESPACE}}",
            gateway.map_or("", |g| g.namespace.as_str()),
        )
        .replace("{{GATEWAY_NAME}}", gateway.map_or("", |g| g.name.as_str()));
    let documents = crate::core::yaml::documents(&text).map_err(|e| e.to_string())?;
    let ports: Vec<serde_json::Value> = node_ports
        .iter()
        .map(|port| serde_json::json!({"name": format!("np-{port}"), "port": port, "targetPort": 8080, "nodePort": port}))
        .collect();
    Ok(documents
        .into_iter()
        .filter(|d| match d.get("kind").and_then(|k| k.as_str()) {
            Some("Ingress") => ingress.is_some(),
            Some("HTTPRoute") => gateway.is_some(),
            _ => true,
        })
        .filter_map(|mut d| {
            if d.pointer("/spec/type").and_then(|t| t.as_str()) == Some("NodePort") {
                if ports.is_empty() {
                    return None;
                }
                d["spec"]["ports"] = serde_json::Value::Array(ports.clone());
            }
            Some(d)
        })
        .collect())
}

/// The echo backend's shell command, from `templates/echo-server.sh`.
pub fn echo_script(token: &str) -> String {
    include_str!("../../../templates/echo-server.sh")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("{{TOKEN}}", token)
        .replace("{{PATH}}", &echo_path(token))
        .replace("{{ROUTE_PATH}}", &route_path(token))
}

/// The path the Ingress routes to the echo backend.
pub fn echo_path(token: &str) -> String {
    format!("/devcluster-{token}")
}

/// The path the HTTPRoute routes to the echo backend: not under the Ingress's
/// path, so a request to it reaches the backend only through the HTTPRoute.
pub fn route_path(token: &str) -> String {
    format!("/devcluster-gateway-{token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_with_the_token() {
        let nginx = EchoIngress {
            class: "nginx".into(),
            gateway: None,
        };
        let routes = echo_routes("ns1", "tok", Some(&nginx), &[]).unwrap_or_default();
        assert_eq!(routes.len(), 2);
        assert_eq!(
            routes[0]["spec"]["selector"]["devcluster.dev/probe"],
            "echo-tok"
        );
        assert_eq!(
            routes[1]["spec"]["rules"][0]["http"]["paths"][0]["path"],
            "/devcluster-tok"
        );
        assert_eq!(routes[1]["spec"]["ingressClassName"], "nginx");
        assert_eq!(
            echo_routes("ns1", "tok", None, &[])
                .unwrap_or_default()
                .len(),
            1
        );
        let routes = echo_routes("ns1", "tok", None, &[31000]).unwrap_or_default();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[1]["spec"]["type"], "NodePort");
        assert_eq!(routes[1]["spec"]["ports"][0]["nodePort"], 31000);
        assert_eq!(
            routes[1]["spec"]["selector"]["devcluster.dev/probe"],
            "echo-tok"
        );
        let contour = EchoIngress {
            class: "contour".into(),
            gateway: Some(GatewayRef {
                namespace: "projectcontour".into(),
                name: "contour".into(),
            }),
        };
        let routes = echo_routes("ns1", "tok", Some(&contour), &[]).unwrap_or_default();
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[1]["spec"]["ingressClassName"], "contour");
        let route = &routes[2];
        assert_eq!(route["kind"], "HTTPRoute");
        assert_eq!(route["metadata"]["namespace"], "ns1");
        assert_eq!(
            route["spec"]["parentRefs"][0],
            serde_json::json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "projectcontour", "name": "contour"})
        );
        assert_eq!(
            route["spec"]["rules"][0]["matches"][0]["path"]["value"],
            "/devcluster-gateway-tok"
        );
        assert_eq!(
            route["spec"]["rules"][0]["backendRefs"][0]["name"],
            "devcluster-echo"
        );
        let script = echo_script("tok");
        assert!(
            script.contains("echo 'tok' > /tmp/www/devcluster-tok/index.html"),
            "{script}"
        );
        assert!(
            script.contains("/tmp/www/devcluster-gateway-tok/"),
            "{script}"
        );
        assert!(!script.contains('#'));
    }
}
