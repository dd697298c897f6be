//! What runs in a cluster once Contour's Gateway render is applied, modelled
//! over the fake API (`fake_kube`) for tests that cannot pull its images:
//!
//! - [`run_workloads`]: the DaemonSet and Deployment controllers with the
//!   scheduler and the kubelet, enough to turn the render's workloads into Ready
//!   pods on the nodes they may run on, and its certgen Job into the Secrets the
//!   others mount;
//! - [`run_contour`]: Contour's Gateway API status, written on HTTPRoutes;
//! - [`envoy`]: Envoy on the ingress node behind its host port, routing Ingress
//!   and accepted HTTPRoute paths to the Service's ready pods.
//!
//! Each part names the upstream source it follows (Kubernetes v1.36, Contour
//! v1.33.6).
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fake_kube::FakeApi;

/// The render's GatewayClass `spec.controllerName`, which Contour writes into
/// route status as `controllerName` (`internal/dag/builder.go` hands the class's
/// controller name to `status.NewCache`; `internal/status/routeconditions.go`).
pub const CONTROLLER_NAME: &str = "projectcontour.io/gateway-controller";

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn labels_match(labels: &Value, selector: &serde_json::Map<String, Value>) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
}

/// Whether `tolerations` tolerate `taint` (`k8s.io/api/core/v1/toleration.go`,
/// `ToleratesTaint`: an empty key with `Exists` tolerates every taint; an empty
/// effect matches every effect).
fn tolerates(tolerations: &Value, taint: &Value) -> bool {
    tolerations.as_array().into_iter().flatten().any(|t| {
        let effect = text(t, "/effect");
        if !effect.is_empty() && effect != text(taint, "/effect") {
            return false;
        }
        let key = text(t, "/key");
        if key.is_empty() {
            return text(t, "/operator") == "Exists";
        }
        key == text(taint, "/key")
            && match text(t, "/operator") {
                "Exists" => true,
                _ => text(t, "/value") == text(taint, "/value"),
            }
    })
}

/// Whether a pod with `spec` may run on `node`: its nodeSelector matches the
/// node's labels and it tolerates every NoSchedule and NoExecute taint (the
/// scheduler's NodeAffinity and TaintToleration filters; the DaemonSet controller
/// asks the same, `pkg/controller/daemon/daemon_controller.go`,
/// `NodeShouldRunDaemonPod`).
fn fits(spec: &Value, node: &Value) -> bool {
    let labels = node
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    let selected = spec
        .get("nodeSelector")
        .and_then(Value::as_object)
        .is_none_or(|s| labels_match(&labels, s));
    let tolerated = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| matches!(text(t, "/effect"), "NoSchedule" | "NoExecute"))
        .all(|t| tolerates(spec.get("tolerations").unwrap_or(&Value::Null), t));
    selected && tolerated
}

/// The Secrets a pod spec mounts.
fn secrets(spec: &Value) -> Vec<String> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/secret/secretName").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// A pod of `owner`'s template bound to `node`, Running and Ready once every
/// Secret it mounts exists; until then the kubelet cannot set its volumes up and
/// it waits in ContainerCreating (`pkg/kubelet/volumemanager`).
fn pod(
    objects: &BTreeMap<String, Value>,
    namespace: &str,
    name: &str,
    template: &Value,
    node: Option<&str>,
) -> Value {
    let spec = template.get("spec").cloned().unwrap_or(json!({}));
    let missing: Vec<String> = secrets(&spec)
        .into_iter()
        .filter(|s| !objects.contains_key(&format!("/api/v1/namespaces/{namespace}/secrets/{s}")))
        .collect();
    let status = match node {
        None => {
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/1 nodes are available: node(s) didn't match Pod's node affinity/selector or had untolerated taints."}]})
        }
        Some(_) if !missing.is_empty() => {
            json!({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                 "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                   "state": {"waiting": {"reason": "ContainerCreating"}}}]})
        }
        Some(_) => json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
    };
    let mut spec = spec;
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": namespace,
                        "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({}))},
           "spec": spec, "status": status})
}

/// The workload controllers, the scheduler and the kubelet for what Contour's
/// render makes: a DaemonSet gets a pod on every node it fits
/// (`pkg/controller/daemon`), a Deployment `spec.replicas` pods on the first node
/// they fit, or Pending without one (`pkg/scheduler/schedule_one.go`); a Job's pod
/// that fits completes, and Contour's `contour certgen --kube` Job writes the
/// `contourcert` and `envoycert` Secrets (`cmd/contour/certgen.go`) the
/// Deployment and the DaemonSet mount.
pub fn run_workloads(fake: &FakeApi) {
    fake.add_controller(|objects| {
        let nodes: Vec<(&str, &Value)> = objects
            .iter()
            .filter(|(p, _)| p.starts_with("/api/v1/nodes/"))
            .map(|(p, n)| (p.trim_start_matches("/api/v1/nodes/"), n))
            .collect();
        let mut writes = Vec::new();
        for (path, object) in objects {
            let kind = text(object, "/kind");
            if !matches!(kind, "DaemonSet" | "Deployment" | "Job") || !path.starts_with("/apis/") {
                continue;
            }
            let namespace = text(object, "/metadata/namespace");
            let name = text(object, "/metadata/name");
            let template = object.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let spec = template.get("spec").cloned().unwrap_or(json!({}));
            let fitting: Vec<&str> = nodes
                .iter()
                .filter(|(_, n)| fits(&spec, n))
                .map(|(name, _)| *name)
                .collect();
            let pods = format!("/api/v1/namespaces/{namespace}/pods");
            match kind {
                "DaemonSet" => {
                    for node in &fitting {
                        let pod_name = format!("{name}-{node}");
                        writes.push((
                            format!("{pods}/{pod_name}"),
                            pod(objects, namespace, &pod_name, &template, Some(node)),
                        ));
                    }
                }
                "Deployment" => {
                    let replicas = object.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1);
                    for i in 0..replicas {
                        let pod_name = format!("{name}-{i}");
                        writes.push((
                            format!("{pods}/{pod_name}"),
                            pod(objects, namespace, &pod_name, &template, fitting.first().copied()),
                        ));
                    }
                }
                _ => {
                    let Some(node) = fitting.first() else {
                        continue;
                    };
                    let command = spec.pointer("/containers/0/command").cloned().unwrap_or(json!([]));
                    let certgen = command.as_array().is_some_and(|c| {
                        c.iter().any(|a| a == "certgen")
                    }) || text(&template, "/metadata/labels/app") == "contour-certgen";
                    if certgen {
                        for secret in ["contourcert", "envoycert"] {
                            writes.push((
                                format!("/api/v1/namespaces/{namespace}/secrets/{secret}"),
                                json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                                       "metadata": {"name": secret, "namespace": namespace},
                                       "data": {"ca.crt": "", "tls.crt": "", "tls.key": ""}}),
                            ));
                        }
                    }
                    let mut done = pod(objects, namespace, &format!("{name}-job"), &template, Some(node));
                    done["status"] = json!({"phase": "Succeeded", "conditions": []});
                    writes.push((format!("{pods}/{name}-job"), done));
                }
            }
        }
        writes
    });
}

/// Whether a pod labelled `app=<app>` in `namespace` is Running.
fn running(objects: &BTreeMap<String, Value>, namespace: &str, app: &str) -> bool {
    let prefix = format!("/api/v1/namespaces/{namespace}/pods/");
    objects.iter().any(|(p, pod)| {
        p.starts_with(&prefix)
            && text(pod, "/metadata/labels/app") == app
            && text(pod, "/status/phase") == "Running"
    })
}

/// The Gateway Contour programs: the `gateway.gatewayRef` of the config file its
/// ConfigMap `contour` holds (`contour.yaml`; `pkg/config/parameters.go`).
fn gateway_ref(objects: &BTreeMap<String, Value>, namespace: &str) -> Option<(String, String)> {
    let config = objects.get(&format!(
        "/api/v1/namespaces/{namespace}/configmaps/contour"
    ))?;
    let file: Value = devcluster::core::yaml::from_str(text(config, "/data/contour.yaml")).ok()?;
    Some((
        text(&file, "/gateway/gatewayRef/namespace").to_string(),
        text(&file, "/gateway/gatewayRef/name").to_string(),
    ))
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": if status { "True" } else { "False" }, "reason": reason, "message": message})
}

/// Contour's verdict on one HTTPRoute parent ref to its Gateway
/// (`internal/dag/gatewayapi_processor.go`, `processRoute`,
/// `getListenersForRouteParentRef`, `validateBackendObjectRef`).
fn judge_route(
    objects: &BTreeMap<String, Value>,
    route: &Value,
    parent: &Value,
    gateway: &Value,
) -> Vec<Value> {
    let route_namespace = text(route, "/metadata/namespace");
    let gateway_namespace = text(gateway, "/metadata/namespace");
    let section = parent.get("sectionName").and_then(Value::as_str);
    let port = parent.get("port").and_then(Value::as_u64);
    let listeners: Vec<&Value> = gateway
        .pointer("/spec/listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|l| section.is_none_or(|s| text(l, "/name") == s))
        .filter(|l| port.is_none_or(|p| l.get("port").and_then(Value::as_u64) == Some(p)))
        .collect();
    if listeners.is_empty() {
        return vec![condition(
            "Accepted",
            false,
            "NoMatchingParent",
            "No listeners match this parent ref",
        )];
    }
    // A listener's allowedRoutes.namespaces.from defaults to Same (Gateway API).
    let allowed = listeners.iter().any(|l| {
        match l
            .pointer("/allowedRoutes/namespaces/from")
            .and_then(Value::as_str)
            .unwrap_or("Same")
        {
            "All" => true,
            "Same" => route_namespace == gateway_namespace,
            _ => false,
        }
    });
    if !allowed {
        return vec![condition(
            "Accepted",
            false,
            "NotAllowedByListeners",
            "No listeners included by this parent ref allowed this attachment.",
        )];
    }
    let mut resolved = condition("ResolvedRefs", true, "ResolvedRefs", "References resolved");
    let backends = route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|r| {
            r.get("backendRefs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        });
    for backend in backends {
        // `kind` defaults to Service and `group` to "" (the CRD's defaults).
        let kind = backend
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("Service");
        let group = backend.get("group").and_then(Value::as_str).unwrap_or("");
        if !group.is_empty() || kind != "Service" {
            resolved = condition(
                "ResolvedRefs",
                false,
                "InvalidKind",
                "Spec.Rules.BackendRef.Kind must be 'Service'",
            );
            break;
        }
        let name = text(&backend, "/name");
        let namespace = backend
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or(route_namespace);
        let service = objects.get(&format!("/api/v1/namespaces/{namespace}/services/{name}"));
        let port = backend.get("port").and_then(Value::as_u64);
        let port_ok = service.is_some_and(|s| {
            s.pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|p| p.get("port").and_then(Value::as_u64) == port)
        });
        let problem = match (service, port_ok) {
            (None, _) => Some(format!("service \"{namespace}/{name}\" not found")),
            (Some(_), false) => Some(format!(
                "port \"{}\" on service \"{namespace}/{name}\" not matched",
                port.unwrap_or(0)
            )),
            _ => None,
        };
        if let Some(problem) = problem {
            resolved = condition(
                "ResolvedRefs",
                false,
                "BackendNotFound",
                &format!("service \"{name}\" is invalid: {problem}"),
            );
            break;
        }
    }
    vec![
        condition("Accepted", true, "Accepted", "Accepted HTTPRoute"),
        resolved,
    ]
}

/// Contour, running in `namespace`: while one of its pods runs, every HTTPRoute
/// with a parent ref to the Gateway its configuration names gets Contour's status
/// for that parent (`status.parents[]` with `controllerName`
/// [`CONTROLLER_NAME`]); refs to other Gateways are ignored, and with the
/// Gateway or its GatewayClass missing nothing is processed
/// (`GatewayAPIProcessor.Run`: "Gateway not found in cache.").
pub fn run_contour(fake: &FakeApi, namespace: &str) {
    let namespace = namespace.to_string();
    fake.add_controller(move |objects| {
        if !running(objects, &namespace, "contour") {
            return Vec::new();
        }
        let Some((gateway_namespace, gateway_name)) = gateway_ref(objects, &namespace) else {
            return Vec::new();
        };
        let Some(gateway) = objects
            .get(&format!(
                "/apis/gateway.networking.k8s.io/v1/namespaces/{gateway_namespace}/gateways/{gateway_name}"
            ))
            .cloned()
        else {
            return Vec::new();
        };
        // "Gateway and GatewayClass must be defined for resources to be processed."
        let class = format!(
            "/apis/gateway.networking.k8s.io/v1/gatewayclasses/{}",
            text(&gateway, "/spec/gatewayClassName")
        );
        let Some(controller_name) = objects
            .get(&class)
            .map(|c| text(c, "/spec/controllerName").to_string())
        else {
            return Vec::new();
        };
        let mut writes = Vec::new();
        for (path, route) in objects {
            if !(path.starts_with("/apis/gateway.networking.k8s.io/v1/namespaces/")
                && path.contains("/httproutes/"))
            {
                continue;
            }
            let route_namespace = text(route, "/metadata/namespace");
            let mut parents = Vec::new();
            for parent in route.pointer("/spec/parentRefs").and_then(Value::as_array).into_iter().flatten() {
                let refers = parent.get("group").and_then(Value::as_str).unwrap_or("gateway.networking.k8s.io")
                    == "gateway.networking.k8s.io"
                    && parent.get("kind").and_then(Value::as_str).unwrap_or("Gateway") == "Gateway"
                    && parent.get("namespace").and_then(Value::as_str).unwrap_or(route_namespace) == gateway_namespace
                    && text(parent, "/name") == gateway_name;
                if !refers {
                    continue;
                }
                parents.push(json!({"parentRef": parent, "controllerName": controller_name,
                                    "conditions": judge_route(objects, route, parent, &gateway)}));
            }
            if parents.is_empty() {
                continue;
            }
            let mut updated = route.clone();
            updated["status"] = json!({"parents": parents});
            writes.push((path.clone(), updated));
        }
        writes
    });
}

/// Whether `path` is under `prefix`, element by element (Ingress `Prefix` and
/// HTTPRoute `PathPrefix` both match whole path elements).
fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// The Service (namespace, name, port) that Envoy's routes send `path` to, from
/// the Ingresses Contour serves (class `contour` or none,
/// `internal/ingressclass/ingressclass.go`) and the HTTPRoutes it accepted.
fn route_for(fake: &FakeApi, path: &str) -> Option<(String, String, u64)> {
    for key in fake.objects_under("/apis/networking.k8s.io/v1/namespaces/") {
        let Some(ingress) = fake.object(&key).filter(|i| i["kind"] == "Ingress") else {
            continue;
        };
        let class = text(&ingress, "/spec/ingressClassName");
        if !(class.is_empty() || class == "contour") {
            continue;
        }
        for rule in ingress
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for p in rule
                .pointer("/http/paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if under(path, text(p, "/path")) {
                    return Some((
                        text(&ingress, "/metadata/namespace").to_string(),
                        text(p, "/backend/service/name").to_string(),
                        p.pointer("/backend/service/port/number")
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                    ));
                }
            }
        }
    }
    for key in fake.objects_under("/apis/gateway.networking.k8s.io/v1/namespaces/") {
        let Some(route) = fake.object(&key).filter(|r| r["kind"] == "HTTPRoute") else {
            continue;
        };
        let accepted = route
            .pointer("/status/parents")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p["controllerName"] == CONTROLLER_NAME)
            .any(|p| {
                ["Accepted", "ResolvedRefs"].iter().all(|kind| {
                    p["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == *kind && c["status"] == "True")
                })
            });
        if !accepted {
            continue;
        }
        for rule in route
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let matched = rule
                .get("matches")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|m| {
                    under(
                        path,
                        m.pointer("/path/value")
                            .and_then(Value::as_str)
                            .unwrap_or("/"),
                    )
                });
            if matched {
                let backend = rule.pointer("/backendRefs/0").cloned().unwrap_or(json!({}));
                return Some((
                    text(&route, "/metadata/namespace").to_string(),
                    text(&backend, "/name").to_string(),
                    backend.get("port").and_then(Value::as_u64).unwrap_or(0),
                ));
            }
        }
    }
    None
}

/// What the Service's ready endpoints answer for `path`: a Running pod its
/// selector picks whose echo script serves `path` answers the token (busybox
/// httpd serving the index page the script wrote); `None` when no pod is ready.
fn upstream(
    fake: &FakeApi,
    namespace: &str,
    service: &str,
    path: &str,
) -> Option<Result<String, ()>> {
    let service = fake.object(&format!(
        "/api/v1/namespaces/{namespace}/services/{service}"
    ))?;
    let selector = service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .cloned()?;
    let pod = fake
        .objects_under(&format!("/api/v1/namespaces/{namespace}/pods/"))
        .into_iter()
        .filter_map(|p| fake.object(&p))
        .find(|pod| {
            labels_match(
                pod.pointer("/metadata/labels").unwrap_or(&Value::Null),
                &selector,
            ) && text(pod, "/status/phase") == "Running"
        })?;
    let script = text(&pod, "/spec/containers/0/command/2");
    let dir = format!("/tmp/www{}", path.trim_end_matches('/'));
    if script.contains(&format!("{dir} ")) || script.contains(&format!("{dir}/")) {
        Some(Ok(script.split('\'').nth(1).unwrap_or("").to_string()))
    } else {
        Some(Err(()))
    }
}

/// Envoy on the ingress node, reached through the node's published HTTP port: a
/// listener on a free loopback port (returned). It answers only while an Envoy
/// pod (`app=envoy` in `namespace`) runs; it routes by path, as Contour
/// programmed it; a route whose Service has no ready pod gets Envoy's 503 `no
/// healthy upstream`, a path no route has its 404.
pub fn envoy(fake: &FakeApi, namespace: &str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let fake = fake.clone();
    let namespace = namespace.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::{Read, Write};
            let mut stream = stream;
            let mut buffer = [0u8; 2048];
            let n = stream.read(&mut buffer).unwrap_or(0);
            let request = String::from_utf8_lossy(&buffer[..n]).to_string();
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            let envoy_runs = fake
                .objects_under(&format!("/api/v1/namespaces/{namespace}/pods/"))
                .into_iter()
                .filter_map(|p| fake.object(&p))
                .any(|p| {
                    text(&p, "/metadata/labels/app") == "envoy"
                        && text(&p, "/status/phase") == "Running"
                });
            if !envoy_runs {
                drop(stream);
                continue;
            }
            let answer = match route_for(&fake, &path) {
                None => "HTTP/1.1 404 Not Found\r\n\r\n".to_string(),
                Some((ns, service, _)) => match upstream(&fake, &ns, &service, &path) {
                    Some(Ok(token)) => format!("HTTP/1.1 200 OK\r\n\r\n{token}\n"),
                    Some(Err(())) => "HTTP/1.1 404 Not Found\r\n\r\n404 Not Found\n".to_string(),
                    None => {
                        "HTTP/1.1 503 Service Unavailable\r\n\r\nno healthy upstream".to_string()
                    }
                },
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    port
}

/// The objects `up` leaves for Contour in `namespace`, already running on
/// `node` (labelled `ingress-ready=true`): the Gateway API CRDs verify uses
/// (Established), the GatewayClass, the Gateway `contour` (one HTTP listener on
/// 80, routes from every namespace), the ConfigMap that names it, and Running
/// Contour and Envoy pods.
pub fn install_running(fake: &FakeApi, namespace: &str, node: &str) {
    for (plural, kind) in [
        ("gatewayclasses", "GatewayClass"),
        ("gateways", "Gateway"),
        ("httproutes", "HTTPRoute"),
    ] {
        fake.put(
            &format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.gateway.networking.k8s.io"),
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": format!("{plural}.gateway.networking.k8s.io")},
                   "spec": {"group": "gateway.networking.k8s.io", "names": {"kind": kind, "plural": plural}},
                   "status": {"conditions": [{"type": "Established", "status": "True"}]}}),
        );
    }
    fake.put(
        "/apis/gateway.networking.k8s.io/v1/gatewayclasses/example",
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "example"},
               "spec": {"controllerName": CONTROLLER_NAME}}),
    );
    fake.put(
        &format!("/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/gateways/contour"),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "contour", "namespace": namespace},
               "spec": {"gatewayClassName": "example",
                        "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]}}),
    );
    fake.put(
        &format!("/api/v1/namespaces/{namespace}/configmaps/contour"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "contour", "namespace": namespace},
               "data": {"contour.yaml": format!("gateway:\n  gatewayRef:\n    name: contour\n    namespace: {namespace}\n")}}),
    );
    for app in ["contour", "envoy"] {
        fake.put(
            &format!("/api/v1/namespaces/{namespace}/pods/{app}-0"),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": format!("{app}-0"), "namespace": namespace, "labels": {"app": app}},
                   "spec": {"nodeName": node, "containers": []},
                   "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
        );
    }
}
