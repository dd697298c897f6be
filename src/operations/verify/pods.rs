//! The checks that need only the Kubernetes API: subPath file mounts, storage on
//! every schedulable node (tainted ones too), ReadWriteOncePod exclusivity, and
//! the ingress path from a host port to a backend pod.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::adapters::kube::probe::{
    PodOutcome, ProbeApi, ProbeNode, ProbePod, ProbeVolume, VolumeSource,
};
use crate::operations::verify::report::{Check, Layer, Status};

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
}

/// A DNS-1123 name of at most 63 characters, unique per node: `prefix-<n>`.
pub fn pod_name(prefix: &str, index: usize) -> String {
    let mut name = format!("{prefix}-{index}");
    name.truncate(63);
    name
}

/// The last events of a pod that did not finish, for the detail line.
pub fn describe(outcome: &PodOutcome) -> String {
    let mut parts = Vec::new();
    if !outcome.reason.is_empty() {
        parts.push(outcome.reason.clone());
    }
    let events: Vec<&String> = outcome.events.iter().rev().take(2).collect();
    for event in events.into_iter().rev() {
        if !parts.iter().any(|p| p == event) {
            parts.push(event.clone());
        }
    }
    if parts.is_empty() {
        format!("pod {}", outcome.phase)
    } else {
        format!("pod {}: {}", outcome.phase, parts.join("; "))
    }
}

/// What to do about a pod that can never get further (see [`PodOutcome::stuck`]);
/// `image_flag` is the flag that chooses its image.
pub fn stuck_hint(outcome: &PodOutcome, image_flag: &str) -> Option<String> {
    let stuck = outcome.stuck.as_deref()?;
    let image = [
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
    ];
    Some(if image.iter().any(|r| stuck.starts_with(r)) {
        format!(
            "the kubelet cannot pull the image: pass `{image_flag} IMAGE` with an image this cluster can pull (or load it into the nodes with `kind load docker-image`), or change `--image-pull-policy`"
        )
    } else if stuck.contains("hostPath type check failed") {
        "the path in the node is not what the mount says (a directory or a file): compare the node's path with the mount's `type`".to_string()
    } else {
        "the container runtime cannot create the container; its message is above".to_string()
    })
}

/// Whether the pod is stuck on its image, not on what it mounts.
fn stuck_on_image(outcome: &PodOutcome) -> bool {
    outcome.stuck.as_deref().is_some_and(|s| {
        [
            "ErrImagePull",
            "ImagePullBackOff",
            "ErrImageNeverPull",
            "InvalidImageName",
        ]
        .iter()
        .any(|r| s.starts_with(r))
    })
}

/// Runs one probe pod to its end.
pub async fn run_probe(
    api: &ProbeApi,
    context: &PodContext,
    pod: &ProbePod,
) -> Result<PodOutcome, String> {
    api.create_pod(&context.namespace, pod)
        .await
        .map_err(|e| e.render().trim().to_string())?;
    api.wait_pod(&context.namespace, &pod.name, context.deadline, false)
        .await
        .map_err(|e| e.render().trim().to_string())
}

/// subPath: one ConfigMap key mounted as a single file. A failure here is the
/// node's host or container runtime (the k0s/util-linux case), not the manifest.
pub async fn subpath(api: &ProbeApi, context: &PodContext, nodes: &[ProbeNode]) -> Vec<Check> {
    let config_map = "devcluster-subpath";
    let data = BTreeMap::from([("probe.txt".to_string(), context.token.clone())]);
    if let Err(e) = api
        .create_config_map(&context.namespace, config_map, data)
        .await
    {
        return vec![
            Check::new("subPath", None, Layer::Pod, Status::Fail, e.to_string())
                .hint(e.hint.unwrap_or_default()),
        ];
    }
    let probes = nodes.iter().enumerate().map(|(index, node)| async move {
        let script = format!(
            "IFS= read -r got < /probe/probe.txt || true; [ \"$got\" = '{}' ] && echo 'devcluster: ok' || {{ echo 'devcluster: wrong content'; exit 12; }}",
            context.token
        );
        let volume = ProbeVolume {
            source: VolumeSource::ConfigMap { name: config_map.to_string() },
            mount_path: "/probe/probe.txt".into(),
            sub_path: Some("probe.txt".into()),
            read_only: true,
        };
        let pod = context.pod(pod_name("subpath", index), node, script, vec![volume]);
        let outcome = run_probe(api, context, &pod).await;
        let check = |status, detail: String| Check::new("subPath", Some(&node.name), Layer::Pod, status, detail);
        match outcome {
            Ok(outcome) if outcome.succeeded() => check(Status::Ok, "ConfigMap key mounted as a single file".into()),
            Ok(outcome) if stuck_on_image(&outcome) => check(Status::Fail, describe(&outcome))
                .hint(stuck_hint(&outcome, "--probe-image").unwrap_or_default()),
            Ok(outcome) => {
                let runtime = outcome
                    .events
                    .iter()
                    .chain(std::iter::once(&outcome.reason))
                    .find(|e| e.contains("CreateContainerError") || e.contains("Failed") || e.contains("file exists") || e.contains("subPath"))
                    .cloned();
                match runtime {
                    Some(message) => check(Status::Fail, format!("the runtime could not mount the file: {message}"))
                        .hint("this is the node's host or container runtime (e.g. a util-linux bind-mount bug), not the manifest: update the node's OS/runtime"),
                    None => check(Status::Fail, describe(&outcome)),
                }
            }
            Err(e) => check(Status::Fail, e),
        }
    });
    futures_util::future::join_all(probes).await
}

/// Storage: a claim on `class` binds and is writable from a pod on each node.
/// When it does not on a tainted node, say whether the provisioner's helper pods
/// are what is stuck (local-path-provisioner v0.0.32+ in kind v0.31/v0.32 images,
/// kind#4100; the MicroK8s hostpath provisioner too).
pub async fn storage(
    api: &ProbeApi,
    context: &PodContext,
    nodes: &[ProbeNode],
    class: &str,
) -> Vec<Check> {
    let probes = nodes.iter().enumerate().map(|(index, node)| async move {
        let claim = pod_name("claim", index);
        let check = |status, detail: String| Check::new("storage", Some(&node.name), Layer::Pod, status, detail);
        match api.create_claim(&context.namespace, &claim, class, "ReadWriteOnce").await {
            Ok(true) => {}
            Ok(false) => return check(Status::Fail, format!("the API rejected a ReadWriteOnce claim on `{class}`")),
            Err(e) => return check(Status::Fail, e.to_string()),
        }
        let volume = ProbeVolume {
            source: VolumeSource::Claim { name: claim.clone() },
            mount_path: "/data".into(),
            sub_path: None,
            read_only: false,
        };
        let script = format!(
            "echo '{}' > /data/probe && {{ IFS= read -r got < /data/probe || true; }} && [ \"$got\" = '{}' ] && echo 'devcluster: ok'",
            context.token, context.token
        );
        let mut pod = context.pod(pod_name("storage", index), node, script, vec![volume]);
        pod.via_scheduler = true;
        pod.run_as_root = true;
        // A helper the kubelet rejected for this claim will not come back: the
        // probe ends there instead of at the deadline.
        let outcome = tokio::select! {
            outcome = run_probe(api, context, &pod) => outcome,
            message = rejected_helper_watch(api, &context.namespace, &claim, context.deadline), if !node.taints.is_empty() => {
                return check(
                    Status::Fail,
                    format!("the provisioner's helper pod cannot run on this tainted node: {message}"),
                )
                .hint(HELPER_HINT);
            }
        };
        match outcome {
            Ok(outcome) if outcome.succeeded() => check(Status::Ok, format!("claim on `{class}` bound and writable")),
            Ok(outcome) if stuck_on_image(&outcome) => check(Status::Fail, describe(&outcome))
                .hint(stuck_hint(&outcome, "--probe-image").unwrap_or_default()),
            Ok(outcome) => {
                let stuck = if node.taints.is_empty() { None } else { stuck_helpers(api, &context.namespace, &claim).await };
                match stuck {
                    Some(message) => check(
                        Status::Fail,
                        format!("the provisioner's helper pod cannot run on this tainted node: {message}"),
                    )
                    .hint(HELPER_HINT),
                    None => check(Status::Fail, describe(&outcome)),
                }
            }
            Err(e) => check(Status::Fail, e),
        }
    });
    futures_util::future::join_all(probes).await
}

const HELPER_HINT: &str = "the provisioner's helper pods lack tolerations for this node's taints (local-path-provisioner v0.0.32+ in kind v0.31/v0.32 node images binds them with nodeName, so the kubelet rejects them on NoExecute taints); `devcluster up` adds Exists tolerations to `local-path-config`'s helperPod.yaml, or upgrade kind";

/// Completes, quoting the cluster, once the kubelet has rejected the helper pod
/// of `claim`; never before the deadline otherwise.
async fn rejected_helper_watch(
    api: &ProbeApi,
    namespace: &str,
    claim: &str,
    deadline: Instant,
) -> String {
    loop {
        if let Some(message) = rejected_helper(api, namespace, claim).await {
            return message;
        }
        if Instant::now() >= deadline {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The kubelet's rejection of the helper pod local-path-provisioner made for
/// `claim` (named after its volume, `pvc-<claim UID>`), with the claim's
/// `ProvisioningFailed` event when there is one.
async fn rejected_helper(api: &ProbeApi, namespace: &str, claim: &str) -> Option<String> {
    let uid = api.claim_uid(namespace, claim).await?;
    for helpers in ["local-path-storage", "kube-system"] {
        let rejected = api
            .namespace_events(helpers, "TaintToleration")
            .await
            .unwrap_or_default()
            .into_iter()
            .find(|(object, _)| object.contains(&uid));
        if let Some((object, message)) = rejected {
            let mut text =
                format!("the kubelet rejected {helpers}/{object} (TaintToleration: {message})");
            let provisioning = api
                .events(namespace, "PersistentVolumeClaim", claim)
                .await
                .unwrap_or_default()
                .into_iter()
                .rev()
                .find(|e| e.starts_with("ProvisioningFailed:"));
            if let Some(event) = provisioning {
                text.push_str(&format!("; the claim says {event}"));
            }
            return Some(text);
        }
    }
    None
}

/// Why a provisioner's helper pod could not serve the claim, quoting the cluster.
/// Two faces: local-path-provisioner binds helpers with `nodeName`
/// (`provisioner.go`, `createHelperPod`), so the kubelet rejects one on an
/// untolerated NoExecute taint (event `TaintToleration`, then the taint manager
/// deletes it) and the claim gets `ProvisioningFailed`; a provisioner that places
/// helpers through the scheduler (MicroK8s' hostpath provisioner) leaves them
/// Pending with the scheduler's untolerated-taint message.
async fn stuck_helpers(api: &ProbeApi, namespace: &str, claim: &str) -> Option<String> {
    if let Some(message) = rejected_helper(api, namespace, claim).await {
        return Some(message);
    }
    let claim_events = api
        .events(namespace, "PersistentVolumeClaim", claim)
        .await
        .unwrap_or_default();
    let provisioning = claim_events
        .into_iter()
        .rev()
        .find(|e| e.starts_with("ProvisioningFailed:"));
    if let Some(event) = provisioning {
        return Some(format!("the claim says {event}"));
    }
    for namespace in ["local-path-storage", "kube-system"] {
        if let Ok(pending) = api.pending_pods(namespace).await
            && let Some((name, message)) = pending.into_iter().find(|(name, message)| {
                (name.contains("helper") || name.contains("hostpath")) && !message.is_empty()
            })
        {
            return Some(format!("{namespace}/{name}: {message}"));
        }
    }
    None
}

/// ReadWriteOncePod: a second pod on the same claim must stay Pending for the
/// RWOP reason while the first runs.
pub async fn read_write_once_pod(
    api: &ProbeApi,
    context: &PodContext,
    nodes: &[ProbeNode],
    class: &str,
    supported_hint: &str,
) -> Check {
    let check =
        |status, detail: String| Check::new("ReadWriteOncePod", None, Layer::Pod, status, detail);
    let Some(first_node) = nodes.first() else {
        return check(Status::Skip, "no schedulable node".into());
    };
    match api
        .create_claim(&context.namespace, "rwop", class, "ReadWriteOncePod")
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return check(
                Status::Warn,
                "not supported by this cluster: the API rejected the ReadWriteOncePod access mode"
                    .into(),
            )
            .hint(supported_hint.to_string());
        }
        Err(e) => return check(Status::Fail, e.to_string()),
    }
    let volume = ProbeVolume {
        source: VolumeSource::Claim {
            name: "rwop".into(),
        },
        mount_path: "/data".into(),
        sub_path: None,
        read_only: false,
    };
    let mut holder = context.pod(
        "rwop-holder".into(),
        first_node,
        "echo held > /data/held && read -t 3600 line; exit 0".into(),
        vec![volume.clone()],
    );
    holder.via_scheduler = true;
    holder.run_as_root = true;
    // The helper image has no `sleep`: the holder waits on a stdin that stays open.
    holder.stdin = true;
    if let Err(e) = api.create_pod(&context.namespace, &holder).await {
        return check(Status::Fail, e.to_string());
    }
    let running = match api
        .wait_pod(&context.namespace, "rwop-holder", context.deadline, true)
        .await
    {
        Ok(outcome) if outcome.phase == "Running" => true,
        Ok(outcome) => {
            return check(
                Status::Fail,
                format!(
                    "the first pod on the ReadWriteOncePod claim did not start: {}",
                    describe(&outcome)
                ),
            )
            .hint(supported_hint.to_string());
        }
        Err(e) => return check(Status::Fail, e.to_string()),
    };
    debug_assert!(running);
    let mut second = holder.clone();
    second.stdin = false;
    second.name = "rwop-second".into();
    second.script = "echo 'devcluster: second pod ran'".into();
    if let Err(e) = api.create_pod(&context.namespace, &second).await {
        return check(Status::Fail, e.to_string());
    }
    // The scheduler decides within seconds; give it a short, bounded look.
    let look = Instant::now() + Duration::from_secs(10);
    let deadline = if look < context.deadline {
        look
    } else {
        context.deadline
    };
    match api
        .wait_pod(&context.namespace, "rwop-second", deadline, true)
        .await
    {
        Ok(outcome) if outcome.phase == "Timeout" || outcome.phase == "Pending" => {
            let reason = outcome
                .events
                .iter()
                .chain(std::iter::once(&outcome.reason))
                .find(|e| e.contains("ReadWriteOncePod"))
                .cloned();
            match reason {
                Some(reason) => check(Status::Ok, format!("second pod kept Pending: {reason}")),
                None => check(
                    Status::Warn,
                    format!(
                        "second pod Pending, but not for the ReadWriteOncePod reason: {}",
                        describe(&outcome)
                    ),
                ),
            }
        }
        Ok(outcome) => check(
            Status::Fail,
            format!(
                "a second pod used the ReadWriteOncePod claim ({})",
                outcome.phase
            ),
        )
        .hint(supported_hint.to_string()),
        Err(e) => check(Status::Fail, e.to_string()),
    }
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
