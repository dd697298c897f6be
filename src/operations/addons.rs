//! Add-ons `up` installs: the ingress controller, pinned to the ingress node by
//! construction, and the storage fix for tainted nodes.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::adapters::download;
use crate::core::error::Error;
use crate::core::plan::{ClusterPlan, ControllerPlan, INGRESS_READY_LABEL, Taint};

/// ingress-nginx's kind deployment at a pinned release. Its manifests from
/// v1.13.0 on select nodes by `kubernetes.io/os` only, so devcluster adds the
/// `ingress-ready=true` selector back and the ingress node's tolerations.
pub const INGRESS_NGINX_VERSION: &str = "controller-v1.15.1";
pub const INGRESS_NGINX_URL: &str = "https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.15.1/deploy/static/provider/kind/deploy.yaml";
pub const INGRESS_NGINX_SHA256: &str =
    "2a3ae008c8786431115502644e77ab398fdebfb721a5d1195ed3089cde3299df";
pub const INGRESS_NGINX_NAMESPACE: &str = "ingress-nginx";
pub const INGRESS_NGINX_DEPLOYMENT: &str = "ingress-nginx-controller";

/// Where the controller comes from and how to recognise its pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerSource {
    pub url: String,
    pub sha256: String,
    pub namespace: String,
    pub pod_selector: BTreeMap<String, String>,
}

/// The controller the plan asks for, if any.
pub fn controller_source(plan: &ClusterPlan) -> Option<ControllerSource> {
    match &plan.ingress.as_ref()?.controller {
        ControllerPlan::None => None,
        ControllerPlan::IngressNginx => Some(ControllerSource {
            url: INGRESS_NGINX_URL.to_string(),
            sha256: INGRESS_NGINX_SHA256.to_string(),
            namespace: INGRESS_NGINX_NAMESPACE.to_string(),
            pod_selector: BTreeMap::from([
                (
                    "app.kubernetes.io/component".to_string(),
                    "controller".to_string(),
                ),
                (
                    "app.kubernetes.io/name".to_string(),
                    "ingress-nginx".to_string(),
                ),
            ]),
        }),
        ControllerPlan::Custom { manifest } => Some(ControllerSource {
            url: manifest.url.clone(),
            sha256: manifest.sha256.to_ascii_lowercase(),
            namespace: manifest.namespace.clone(),
            pod_selector: manifest.pod_selector.clone(),
        }),
    }
}

/// The manifest's text, from the cache or downloaded, checked against its pin.
pub async fn fetch_manifest(source: &ControllerSource, cache_dir: &Path) -> Result<String, Error> {
    let dest = cache_dir
        .join("manifests")
        .join(format!("{}.yaml", source.sha256));
    let path = download::fetch_pinned(&source.url, &source.sha256, &dest, false).await?;
    std::fs::read_to_string(&path)
        .map_err(|e| Error::failed(format!("cannot read {}", path.display())).cause(e))
}

/// Parses the manifest and pins every workload whose pods match the selector to
/// the ingress node: nodeSelector `ingress-ready=true`, tolerations for the
/// node's taints, and host ports 80/443 on the container ports 80/443.
///
/// The manifest's Jobs get the same node selector and tolerations: ingress-nginx's
/// admission Jobs (`ingress-nginx-admission-create` and `-patch` in v1.15.1's
/// `deploy/static/provider/kind/deploy.yaml`) select only `kubernetes.io/os: linux`
/// and carry no tolerations, so on a cluster whose every schedulable node is
/// tainted they stay Pending, and the controller, which mounts the Secret they
/// create, never starts. The ingress node is one they can run on by construction.
pub fn pin_controller(
    manifest: &str,
    source: &ControllerSource,
    node_taints: &[Taint],
) -> Result<Vec<Value>, Error> {
    let mut documents = crate::core::yaml::documents(manifest)
        .map_err(|e| Error::failed("the ingress controller manifest is not valid YAML").cause(e))?;
    let mut pinned = 0;
    for document in &mut documents {
        let kind = document.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind == "Job" {
            if let Some(pod_spec) = document
                .pointer_mut("/spec/template/spec")
                .and_then(Value::as_object_mut)
            {
                pin_to_ingress_node(pod_spec, node_taints);
            }
            continue;
        }
        if !matches!(kind, "Deployment" | "DaemonSet") {
            continue;
        }
        let labels = document
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let selected = source
            .pod_selector
            .iter()
            .all(|(k, v)| labels.get(k).and_then(Value::as_str) == Some(v.as_str()));
        if !selected {
            continue;
        }
        let Some(pod_spec) = document
            .pointer_mut("/spec/template/spec")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        pin_to_ingress_node(pod_spec, node_taints);
        if let Some(containers) = pod_spec.get_mut("containers").and_then(Value::as_array_mut) {
            for container in containers {
                if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
                    for port in ports {
                        let number = port.get("containerPort").and_then(Value::as_u64);
                        if let (Some(n @ (80 | 443)), Some(map)) = (number, port.as_object_mut()) {
                            map.insert("hostPort".to_string(), json!(n));
                        }
                    }
                }
            }
        }
        pinned += 1;
    }
    if pinned == 0 {
        let selector = source
            .pod_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        return Err(
            Error::failed("the ingress controller manifest has no workload to pin")
                .cause(format!(
                    "no Deployment or DaemonSet has pods labelled {selector}"
                ))
                .hint("check ingress.manifest.podSelector against the manifest"),
        );
    }
    Ok(documents)
}

/// Adds the `ingress-ready=true` node selector and tolerations for the ingress
/// node's taints to a pod spec.
fn pin_to_ingress_node(pod_spec: &mut serde_json::Map<String, Value>, node_taints: &[Taint]) {
    let selector = pod_spec.entry("nodeSelector").or_insert_with(|| json!({}));
    if selector.is_null() {
        *selector = json!({});
    }
    if let Some(map) = selector.as_object_mut() {
        map.insert(INGRESS_READY_LABEL.to_string(), json!("true"));
    }
    let tolerations = pod_spec.entry("tolerations").or_insert_with(|| json!([]));
    if tolerations.is_null() {
        *tolerations = json!([]);
    }
    if let Some(list) = tolerations.as_array_mut() {
        for taint in node_taints {
            let toleration = match &taint.value {
                Some(value) => {
                    json!({"key": taint.key, "operator": "Equal", "value": value, "effect": taint.effect.as_str()})
                }
                None => {
                    json!({"key": taint.key, "operator": "Exists", "effect": taint.effect.as_str()})
                }
            };
            if !list.contains(&toleration) {
                list.push(toleration);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::TaintEffect;

    const MANIFEST: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: ingress-nginx
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
spec:
  template:
    metadata:
      labels:
        app.kubernetes.io/component: controller
        app.kubernetes.io/name: ingress-nginx
    spec:
      nodeSelector:
        kubernetes.io/os: linux
      tolerations:
      - effect: NoSchedule
        key: node-role.kubernetes.io/control-plane
        operator: Equal
      containers:
      - name: controller
        ports:
        - containerPort: 80
          name: http
        - containerPort: 443
          name: https
        - containerPort: 8443
          name: webhook
---
apiVersion: batch/v1
kind: Job
metadata:
  name: ingress-nginx-admission-create
  namespace: ingress-nginx
spec:
  template:
    metadata:
      labels:
        app.kubernetes.io/component: admission-webhook
        app.kubernetes.io/name: ingress-nginx
      name: ingress-nginx-admission-create
    spec:
      containers:
      - name: create
        image: registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.5
      nodeSelector:
        kubernetes.io/os: linux
      restartPolicy: OnFailure
      serviceAccountName: ingress-nginx-admission
---
apiVersion: batch/v1
kind: Job
metadata:
  name: ingress-nginx-admission-patch
  namespace: ingress-nginx
spec:
  template:
    spec:
      containers:
      - name: patch
        image: registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.5
      nodeSelector:
        kubernetes.io/os: linux
      restartPolicy: OnFailure
"#;

    #[test]
    fn controller_is_pinned_to_the_ingress_node() {
        let source = ControllerSource {
            url: INGRESS_NGINX_URL.into(),
            sha256: INGRESS_NGINX_SHA256.into(),
            namespace: INGRESS_NGINX_NAMESPACE.into(),
            pod_selector: BTreeMap::from([
                (
                    "app.kubernetes.io/component".to_string(),
                    "controller".to_string(),
                ),
                (
                    "app.kubernetes.io/name".to_string(),
                    "ingress-nginx".to_string(),
                ),
            ]),
        };
        let taints = vec![Taint {
            key: "dedicated".into(),
            value: Some("edge".into()),
            effect: TaintEffect::NoSchedule,
            implicit: false,
        }];
        let documents =
            pin_controller(MANIFEST, &source, &taints).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(documents.len(), 4);
        let spec = documents[1]
            .pointer("/spec/template/spec")
            .unwrap_or_else(|| panic!("no pod spec"));
        assert_eq!(spec["nodeSelector"]["ingress-ready"], "true");
        assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux");
        let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
        assert!(tolerations.contains(&json!({"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"})));
        let ports = spec["containers"][0]["ports"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(ports[0]["hostPort"], 80);
        assert_eq!(ports[1]["hostPort"], 443);
        assert!(ports[2].get("hostPort").is_none());
        // The admission Jobs (no tolerations upstream) run where the controller runs.
        for job in &documents[2..4] {
            let spec = job
                .pointer("/spec/template/spec")
                .unwrap_or_else(|| panic!("no pod spec"));
            assert_eq!(spec["nodeSelector"]["ingress-ready"], "true", "{job}");
            assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux");
            assert_eq!(
                spec["tolerations"],
                json!([{"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"}]),
                "{job}"
            );
        }
    }

    #[test]
    fn a_selector_matching_nothing_is_an_error() {
        let source = ControllerSource {
            url: String::new(),
            sha256: String::new(),
            namespace: "x".into(),
            pod_selector: BTreeMap::from([("app".to_string(), "other".to_string())]),
        };
        let error = pin_controller(MANIFEST, &source, &[]).err();
        assert!(error.is_some_and(|e| e.message.contains("no workload to pin")));
    }
}
