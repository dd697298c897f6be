//! What every probe pod shares (namespace, image, token, deadline, the pod
//! runner), and the echo backend's templates and HTTP client.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::adapters::kube::probe::{ProbeNode, ProbePod, ProbeVolume};
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

/// The echo backend's routes, rendered from `templates/echo-routes.yaml`: the
/// NodePort Service gets one port per entry of `node_ports` (and is left out
/// without any), the Ingress is left out without an ingress.
pub fn echo_routes(
    namespace: &str,
    token: &str,
    with_ingress: bool,
    node_ports: &[u16],
) -> Result<Vec<serde_json::Value>, String> {
    let text = include_str!("../../../templates/echo-routes.yaml")
        .replace("{{NAMESPACE}}", namespace)
        .replace("{{TOKEN}}", token)
        .replace("{{PATH}}", &echo_path(token));
    let documents = crate::core::yaml::documents(&text).map_err(|e| e.to_string())?;
    let ports: Vec<serde_json::Value> = node_ports
        .iter()
        .map(|port| serde_json::json!({"name": format!("np-{port}"), "port": port, "targetPort": 8080, "nodePort": port}))
        .collect();
    Ok(documents
        .into_iter()
        .filter(|d| with_ingress || d.get("kind").and_then(|k| k.as_str()) != Some("Ingress"))
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
}

pub fn echo_path(token: &str) -> String {
    format!("/devcluster-{token}")
}

/// GETs `url` (plain HTTP, loopback) and returns the body; bounded in time.
pub async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = tokio::net::TcpStream::connect((host, port));
    let mut stream = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| {
            format!(
                "no connection to {host}:{port} within {}s",
                timeout.as_secs()
            )
        })?
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let request =
        format!("GET {path}/ HTTP/1.0\r\nHost: localhost\r\nUser-Agent: devcluster\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    tokio::time::timeout(timeout, stream.take(64 * 1024).read_to_end(&mut body))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_with_the_token() {
        let routes = echo_routes("ns1", "tok", true, &[]).unwrap_or_default();
        assert_eq!(routes.len(), 2);
        assert_eq!(
            routes[0]["spec"]["selector"]["devcluster.dev/probe"],
            "echo-tok"
        );
        assert_eq!(
            routes[1]["spec"]["rules"][0]["http"]["paths"][0]["path"],
            "/devcluster-tok"
        );
        assert_eq!(
            echo_routes("ns1", "tok", false, &[])
                .unwrap_or_default()
                .len(),
            1
        );
        let routes = echo_routes("ns1", "tok", false, &[31000]).unwrap_or_default();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[1]["spec"]["type"], "NodePort");
        assert_eq!(routes[1]["spec"]["ports"][0]["nodePort"], 31000);
        assert_eq!(
            routes[1]["spec"]["selector"]["devcluster.dev/probe"],
            "echo-tok"
        );
        let script = echo_script("tok");
        assert!(
            script.contains("echo 'tok' > /tmp/www/devcluster-tok/index.html"),
            "{script}"
        );
        assert!(!script.contains('#'));
    }
}
