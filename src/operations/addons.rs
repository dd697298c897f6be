//! Add-ons `up` installs: the ingress controller, pinned to the ingress node by
//! construction, and the storage fix for tainted nodes.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::adapters::download;
use crate::core::error::Error;
use crate::core::plan::{ClusterPlan, ControllerPlan, INGRESS_READY_LABEL, PortPurpose, Taint};
use crate::core::profile::GatewayRef;

/// Contour's static Gateway API render at a pinned release
/// (`examples/render/contour-gateway.yaml` at the tag): the Contour Deployment,
/// Envoy as a DaemonSet whose `envoy` container has host ports 80 and 443 on its
/// container ports 8080 and 8443, the certgen Job, the Gateway API CRDs, the
/// GatewayClass `example` and the Gateway `projectcontour/contour` (one HTTP
/// listener on port 80, routes from every namespace) that its ConfigMap tells
/// Contour to program (`gateway.gatewayRef`). Contour serves Ingress on the same
/// listener. Envoy selects no nodes upstream, so devcluster pins it (and Contour,
/// and the Job) to the ingress node.
pub const CONTOUR_VERSION: &str = "v1.33.6";
pub const CONTOUR_URL: &str = "https://raw.githubusercontent.com/projectcontour/contour/v1.33.6/examples/render/contour-gateway.yaml";
pub const CONTOUR_SHA256: &str = "21224f12d09f62bea57167b4070c1fdb90dbc0f67e204e3ee3afa6e62c5aad36";
pub const CONTOUR_NAMESPACE: &str = "projectcontour";
/// The Gateway the render defines and configures Contour to program; with a
/// `gatewayRef` Contour ignores every other Gateway (`internal/dag/cache.go`,
/// `ConfiguredGatewayToCache`), so verify's HTTPRoute attaches to this one.
pub const CONTOUR_GATEWAY: &str = "contour";
/// The IngressClass Contour serves when it is given none
/// (`internal/ingressclass/ingressclass.go`, `DefaultClassName`).
pub const CONTOUR_INGRESS_CLASS: &str = "contour";

/// ingress-nginx's kind deployment at a pinned release. Its manifests from
/// v1.13.0 on select nodes by `kubernetes.io/os` only, so devcluster adds the
/// `ingress-ready=true` selector back and the ingress node's tolerations.
pub const INGRESS_NGINX_VERSION: &str = "controller-v1.15.1";
pub const INGRESS_NGINX_URL: &str = "https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.15.1/deploy/static/provider/kind/deploy.yaml";
pub const INGRESS_NGINX_SHA256: &str =
    "2a3ae008c8786431115502644e77ab398fdebfb721a5d1195ed3089cde3299df";
pub const INGRESS_NGINX_NAMESPACE: &str = "ingress-nginx";
pub const INGRESS_NGINX_DEPLOYMENT: &str = "ingress-nginx-controller";
/// The IngressClass ingress-nginx's kind deployment creates.
pub const INGRESS_NGINX_CLASS: &str = "nginx";

/// Where the controller comes from, how to pin it and recognise its pods, and
/// what it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerSource {
    /// What `up` calls it: `Contour v1.33.6`, `ingress-nginx v1.15.1`, `the controller`.
    pub label: String,
    pub url: String,
    pub sha256: String,
    pub namespace: String,
    /// One label selector per workload (Deployment or DaemonSet) whose pods must
    /// be Ready; each such workload is pinned to the ingress node.
    pub workloads: Vec<BTreeMap<String, String>>,
    /// The container ports that take the ingress node's HTTP and HTTPS traffic;
    /// they get the node's ingress ports as host ports.
    pub traffic_ports: (u16, u16),
    /// Whether a workload must have both traffic ports: true for the built-in
    /// controllers, whose manifests devcluster knows.
    pub require_traffic_ports: bool,
    /// The IngressClass an Ingress names to be served by this controller.
    pub ingress_class: String,
    /// The Gateway an HTTPRoute attaches to; `None` when the controller serves no
    /// Gateway API.
    pub gateway: Option<GatewayRef>,
}

fn selector(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The controller the plan asks for, if any.
pub fn controller_source(plan: &ClusterPlan) -> Option<ControllerSource> {
    match &plan.ingress.as_ref()?.controller {
        ControllerPlan::None => None,
        ControllerPlan::Contour => Some(ControllerSource {
            label: format!("Contour {CONTOUR_VERSION}"),
            url: CONTOUR_URL.to_string(),
            sha256: CONTOUR_SHA256.to_string(),
            namespace: CONTOUR_NAMESPACE.to_string(),
            workloads: vec![
                selector(&[("app", "contour")]),
                selector(&[("app", "envoy")]),
            ],
            traffic_ports: (8080, 8443),
            require_traffic_ports: true,
            ingress_class: CONTOUR_INGRESS_CLASS.to_string(),
            gateway: Some(GatewayRef {
                namespace: CONTOUR_NAMESPACE.to_string(),
                name: CONTOUR_GATEWAY.to_string(),
            }),
        }),
        ControllerPlan::IngressNginx => Some(ControllerSource {
            label: format!(
                "ingress-nginx {}",
                INGRESS_NGINX_VERSION.trim_start_matches("controller-")
            ),
            url: INGRESS_NGINX_URL.to_string(),
            sha256: INGRESS_NGINX_SHA256.to_string(),
            namespace: INGRESS_NGINX_NAMESPACE.to_string(),
            workloads: vec![selector(&[
                ("app.kubernetes.io/component", "controller"),
                ("app.kubernetes.io/name", "ingress-nginx"),
            ])],
            traffic_ports: (80, 443),
            require_traffic_ports: true,
            ingress_class: INGRESS_NGINX_CLASS.to_string(),
            gateway: None,
        }),
        ControllerPlan::Custom { manifest } => Some(ControllerSource {
            label: "the controller".to_string(),
            url: manifest.url.clone(),
            sha256: manifest.sha256.to_ascii_lowercase(),
            namespace: manifest.namespace.clone(),
            workloads: vec![manifest.pod_selector.clone()],
            traffic_ports: (80, 443),
            require_traffic_ports: false,
            ingress_class: manifest
                .ingress_class_name
                .clone()
                .unwrap_or_else(|| INGRESS_NGINX_CLASS.to_string()),
            gateway: manifest.gateway.clone(),
        }),
    }
}

/// The ingress node's container ports for HTTP and HTTPS (what kind publishes the
/// host's ingress ports to): the host ports the controller's pods take.
pub fn node_ingress_ports(plan: &ClusterPlan) -> (u16, u16) {
    let port = |purpose: PortPurpose, default: u16| {
        plan.ingress_node()
            .and_then(|n| n.ports.iter().find(|p| p.purpose == purpose))
            .map_or(default, |p| p.container_port)
    };
    (
        port(PortPurpose::IngressHttp, 80),
        port(PortPurpose::IngressHttps, 443),
    )
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

fn selector_text(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the manifest and pins every workload whose pods match one of the
/// source's selectors to the ingress node: nodeSelector `ingress-ready=true`,
/// tolerations for the node's taints, and the node's ingress ports (`host_ports`,
/// HTTP and HTTPS) as host ports on the source's traffic ports.
///
/// The manifest's Jobs get the same node selector and tolerations: ingress-nginx's
/// admission Jobs (`ingress-nginx-admission-create` and `-patch` in v1.15.1's
/// `deploy/static/provider/kind/deploy.yaml`) and Contour's `contour-certgen` Job
/// select no tainted node and carry no tolerations, so on a cluster whose every
/// schedulable node is tainted they stay Pending, and the controller, which mounts
/// the Secrets they create, never starts. The ingress node is one they can run on
/// by construction.
pub fn pin_controller(
    manifest: &str,
    source: &ControllerSource,
    node_taints: &[Taint],
    host_ports: (u16, u16),
) -> Result<Vec<Value>, Error> {
    let mut documents = crate::core::yaml::documents(manifest)
        .map_err(|e| Error::failed("the ingress controller manifest is not valid YAML").cause(e))?;
    let mut pinned = vec![0usize; source.workloads.len()];
    let mut traffic = (false, false);
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
        let Some(index) = source.workloads.iter().position(|selector| {
            selector
                .iter()
                .all(|(k, v)| labels.get(k).and_then(Value::as_str) == Some(v.as_str()))
        }) else {
            continue;
        };
        let Some(pod_spec) = document
            .pointer_mut("/spec/template/spec")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        pin_to_ingress_node(pod_spec, node_taints);
        let containers = pod_spec.get_mut("containers").and_then(Value::as_array_mut);
        for container in containers.into_iter().flatten() {
            let ports = container.get_mut("ports").and_then(Value::as_array_mut);
            for port in ports.into_iter().flatten() {
                let number = port.get("containerPort").and_then(Value::as_u64);
                let host = if number == Some(u64::from(source.traffic_ports.0)) {
                    traffic.0 = true;
                    host_ports.0
                } else if number == Some(u64::from(source.traffic_ports.1)) {
                    traffic.1 = true;
                    host_ports.1
                } else {
                    continue;
                };
                if let Some(map) = port.as_object_mut() {
                    map.insert("hostPort".to_string(), json!(host));
                }
            }
        }
        pinned[index] += 1;
    }
    if let Some(index) = pinned.iter().position(|n| *n == 0) {
        return Err(
            Error::failed("the ingress controller manifest has no workload to pin")
                .cause(format!(
                    "no Deployment or DaemonSet has pods labelled {}",
                    selector_text(&source.workloads[index])
                ))
                .hint("check ingress.manifest.podSelector against the manifest"),
        );
    }
    if source.require_traffic_ports && traffic != (true, true) {
        return Err(Error::failed(
            "the ingress controller manifest is not the one devcluster knows",
        )
        .cause(format!(
            "no pinned workload has the container ports {} and {} that take HTTP and HTTPS",
            source.traffic_ports.0, source.traffic_ports.1
        ))
        .hint(format!(
            "the manifest from {} changed shape; report it, or use `controller: custom`",
            source.url
        )));
    }
    Ok(documents)
}

/// The manifest's CustomResourceDefinitions (their names) and the other
/// documents, in order. Objects of a kind a CRD defines are refused until the API
/// server serves it (`Established`), so the CRDs go first and are waited for.
pub fn definitions_first(documents: Vec<Value>) -> (Vec<Value>, Vec<String>, Vec<Value>) {
    let (definitions, rest): (Vec<Value>, Vec<Value>) = documents
        .into_iter()
        .partition(|d| d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"));
    let names = definitions
        .iter()
        .filter_map(|d| d.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    (definitions, names, rest)
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

    fn source_of(controller: &str) -> ControllerSource {
        let plan = crate::core::plan::plan_of_text(&format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  workers: 1\ningress:\n  enabled: true\n{controller}"
        ));
        controller_source(&plan).unwrap_or_else(|| panic!("no controller"))
    }

    fn edge_taint() -> Vec<Taint> {
        vec![Taint {
            key: "dedicated".into(),
            value: Some("edge".into()),
            effect: TaintEffect::NoSchedule,
            implicit: false,
        }]
    }

    #[test]
    fn controller_is_pinned_to_the_ingress_node() {
        let source = source_of("  controller: ingress-nginx\n");
        assert_eq!(source.url, INGRESS_NGINX_URL);
        assert_eq!(source.label, "ingress-nginx v1.15.1");
        assert_eq!(source.gateway, None);
        let documents = pin_controller(MANIFEST, &source, &edge_taint(), (80, 443))
            .unwrap_or_else(|e| panic!("{e}"));
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

    /// The shape of Contour's `examples/render/contour-gateway.yaml` at v1.33.6, cut
    /// down to what devcluster reads: the Contour Deployment (`app: contour`), the
    /// Envoy DaemonSet (`app: envoy`, no node selector, host ports 80/443 on
    /// 8080/8443), the certgen Job, a Gateway API CRD, the GatewayClass, the
    /// Gateway and the ConfigMap that names it.
    pub(crate) const CONTOUR_SHAPED: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: projectcontour
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: httproutes.gateway.networking.k8s.io
spec:
  group: gateway.networking.k8s.io
  names:
    kind: HTTPRoute
    plural: httproutes
  scope: Namespaced
---
apiVersion: batch/v1
kind: Job
metadata:
  name: contour-certgen-v1-33-6
  namespace: projectcontour
spec:
  template:
    metadata:
      labels:
        app: contour-certgen
    spec:
      containers:
      - name: contour
        image: ghcr.io/projectcontour/contour:v1.33.6
      restartPolicy: Never
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: contour
  namespace: projectcontour
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: contour
    spec:
      containers:
      - name: contour
        ports:
        - containerPort: 8001
          name: xds
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: envoy
  namespace: projectcontour
spec:
  template:
    metadata:
      labels:
        app: envoy
    spec:
      containers:
      - name: shutdown-manager
      - name: envoy
        ports:
        - containerPort: 8080
          hostPort: 80
          name: http
        - containerPort: 8443
          hostPort: 443
          name: https
        - containerPort: 8002
          name: metrics
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: example
spec:
  controllerName: projectcontour.io/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: contour
  namespace: projectcontour
spec:
  gatewayClassName: example
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: All
"#;

    #[test]
    fn contour_is_the_default_and_envoy_takes_the_node_ingress_ports() {
        let source = source_of("");
        assert_eq!(source.url, CONTOUR_URL);
        assert_eq!(source.label, "Contour v1.33.6");
        assert!(source.url.contains(CONTOUR_VERSION));
        assert_eq!(source.sha256, CONTOUR_SHA256);
        assert_eq!(source.ingress_class, "contour");
        assert_eq!(
            source.gateway,
            Some(GatewayRef {
                namespace: "projectcontour".into(),
                name: "contour".into()
            })
        );
        let documents = pin_controller(CONTOUR_SHAPED, &source, &edge_taint(), (80, 443))
            .unwrap_or_else(|e| panic!("{e}"));
        for (index, name) in [(2, "certgen"), (3, "contour"), (4, "envoy")] {
            let spec = &documents[index]["spec"]["template"]["spec"];
            assert_eq!(spec["nodeSelector"]["ingress-ready"], "true", "{name}");
            assert_eq!(
                spec["tolerations"],
                json!([{"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"}]),
                "{name}"
            );
        }
        let envoy = &documents[4]["spec"]["template"]["spec"]["containers"][1]["ports"];
        assert_eq!(envoy[0]["hostPort"], 80);
        assert_eq!(envoy[1]["hostPort"], 443);
        assert!(envoy[2].get("hostPort").is_none());
        let contour = &documents[3]["spec"]["template"]["spec"]["containers"][0]["ports"];
        assert!(contour[0].get("hostPort").is_none());
        // The CRD goes first, by name; the Gateway it defines comes after.
        let (definitions, names, rest) = definitions_first(documents);
        assert_eq!(definitions.len(), 1);
        assert_eq!(names, vec!["httproutes.gateway.networking.k8s.io"]);
        assert_eq!(rest.len(), 6);
        assert_eq!(rest[0]["kind"], "Namespace");
    }

    #[test]
    fn a_render_without_envoy_or_its_ports_is_refused() {
        let source = source_of("");
        let without_envoy = CONTOUR_SHAPED.replace("app: envoy", "app: proxy");
        let error = pin_controller(&without_envoy, &source, &[], (80, 443)).err();
        assert!(
            error.is_some_and(|e| e.causes.iter().any(|c| c.contains("app=envoy"))),
            "names the missing workload"
        );
        let moved = CONTOUR_SHAPED.replace("containerPort: 8443", "containerPort: 9443");
        let error = pin_controller(&moved, &source, &[], (80, 443))
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert!(
            error.message.contains("not the one devcluster knows"),
            "{error}"
        );
    }

    #[test]
    fn a_selector_matching_nothing_is_an_error() {
        let mut source = source_of("  controller: ingress-nginx\n");
        source.workloads = vec![BTreeMap::from([("app".to_string(), "other".to_string())])];
        let error = pin_controller(MANIFEST, &source, &[], (80, 443)).err();
        assert!(error.is_some_and(|e| e.message.contains("no workload to pin")));
    }
}
