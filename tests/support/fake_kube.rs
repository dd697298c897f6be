//! An in-memory Kubernetes API for tests: objects by path, list/get/create/
//! patch/replace/delete, label selectors, and 403 rules. It answers through a
//! `kube::Client`, so the real client code runs against it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

/// What a created pod does: its final phase, exit code and logs.
pub struct PodRun {
    pub phase: &'static str,
    pub exit_code: Option<i32>,
    pub logs: String,
    /// Events about the pod, as `(reason, message)`.
    pub events: Vec<(String, String)>,
}

impl PodRun {
    pub fn new(phase: &'static str, exit_code: Option<i32>, logs: &str) -> PodRun {
        PodRun {
            phase,
            exit_code,
            logs: logs.to_string(),
            events: Vec::new(),
        }
    }
}

type PodHook = Arc<dyn Fn(&Value) -> Option<PodRun> + Send + Sync>;

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    logs: BTreeMap<String, String>,
    requests: Vec<String>,
    forbidden: Vec<(String, String)>,
    pod_hook: Option<PodHook>,
}

/// The fake API server.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    pub fn new() -> FakeApi {
        FakeApi::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `object` at `path` (e.g. `/api/v1/nodes/n1`).
    pub fn put(&self, path: &str, object: Value) {
        self.lock().objects.insert(path.to_string(), object);
    }

    pub fn object(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// Every request so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Answers 403 to `method` on paths starting with `prefix`.
    pub fn forbid(&self, method: &str, prefix: &str) {
        self.lock()
            .forbidden
            .push((method.to_string(), prefix.to_string()));
    }

    /// Decides what each created pod does (run its script somewhere, or not).
    pub fn on_pod_create(&self, hook: impl Fn(&Value) -> Option<PodRun> + Send + Sync + 'static) {
        self.lock().pod_hook = Some(Arc::new(hook));
    }

    /// Ends a pod created earlier (its hook answered `None`), as a kubelet
    /// finishing it later would. `false` when the pod does not exist (yet).
    pub fn finish_pod(&self, namespace: &str, name: &str, run: PodRun) -> bool {
        let key = format!("/api/v1/namespaces/{namespace}/pods/{name}");
        let mut state = self.lock();
        let Some(mut object) = state.objects.get(&key).cloned() else {
            return false;
        };
        apply_run(&mut state, &key, &mut object, run);
        state.objects.insert(key, object);
        true
    }

    /// What `/version` answers.
    pub fn set_version(&self, major: &str, minor: &str) {
        self.put(
            "/version",
            json!({"major": major, "minor": minor, "gitVersion": format!("v{major}.{minor}.0"), "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64"}),
        );
    }

    /// Objects whose path starts with `prefix`.
    pub fn objects_under(&self, prefix: &str) -> Vec<String> {
        self.lock()
            .objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// A Ready node named `name`.
    pub fn add_ready_node(&self, name: &str, taints: Value) {
        self.put(
            &format!("/api/v1/nodes/{name}"),
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                "spec": {"taints": taints},
                "status": {
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
                    "nodeInfo": {"kubeletVersion": "v1.36.1", "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "containerd://2.1", "kernelVersion": "6", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux", "osImage": "Debian", "systemUUID": ""}
                }
            }),
        );
    }

    /// kube-system/coredns with all replicas available.
    pub fn add_available_coredns(&self) {
        self.put(
            "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "coredns", "namespace": "kube-system"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}}, "template": {}},
                "status": {"availableReplicas": 2, "replicas": 2}
            }),
        );
    }

    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.handle(request).await) }
        });
        kube::Client::new(service, "default")
    }

    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().as_str().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or("").to_string();
        let body = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        let body: Option<Value> = serde_json::from_slice(&body).ok();
        let mut state = self.lock();
        state.requests.push(format!(
            "{method} {path}{}",
            if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            }
        ));
        if state
            .forbidden
            .iter()
            .any(|(m, prefix)| *m == method && path.starts_with(prefix.as_str()))
        {
            return status(
                403,
                "Forbidden",
                &format!("{method} {path} is forbidden: User \"test\" cannot do it"),
            );
        }
        if path == "/version" {
            return match state.objects.get("/version") {
                Some(v) => respond(200, v.clone()),
                None => respond(
                    200,
                    json!({"major": "1", "minor": "36", "gitVersion": "v1.36.1", "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64"}),
                ),
            };
        }
        if method == "GET" && path.ends_with("/log") {
            let pod = path.trim_end_matches("/log").to_string();
            let text = state.logs.get(&pod).cloned().unwrap_or_default();
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/plain")
                .body(Body::from(text.into_bytes()))
                .unwrap_or_else(|_| Response::new(Body::from(Vec::new())));
        }
        let collection = is_collection(&path);
        match (method.as_str(), collection) {
            ("GET", true) => {
                let selector = label_selector(&query);
                let prefix = format!("{path}/");
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(p, _)| p.starts_with(&prefix) && !p[prefix.len()..].contains('/'))
                    .map(|(_, v)| v.clone())
                    .filter(|v| matches_labels(v, &selector))
                    .collect();
                respond(
                    200,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            ("GET", false) => match state.objects.get(&path) {
                Some(object) => respond(200, object.clone()),
                None => status(404, "NotFound", &format!("{path} not found")),
            },
            ("POST", true) => {
                let Some(mut object) = body else {
                    return status(400, "BadRequest", "no body");
                };
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let key = format!("{path}/{name}");
                if state.objects.contains_key(&key) {
                    return status(409, "AlreadyExists", &format!("{key} already exists"));
                }
                stamp(&mut object);
                if path.ends_with("/pods")
                    && let Some(hook) = state.pod_hook.clone()
                {
                    // Run the hook without the lock: it may take a while.
                    drop(state);
                    let run = hook(&object);
                    let mut state = self.lock();
                    if let Some(run) = run {
                        apply_run(&mut state, &key, &mut object, run);
                    }
                    state.objects.insert(key, object.clone());
                    return respond(201, object);
                }
                state.objects.insert(key, object.clone());
                respond(201, object)
            }
            ("PUT", false) => {
                let Some(mut object) = body else {
                    return status(400, "BadRequest", "no body");
                };
                stamp(&mut object);
                state.objects.insert(path, object.clone());
                respond(200, object)
            }
            ("PATCH", false) => {
                let Some(patch) = body else {
                    return status(400, "BadRequest", "no body");
                };
                let apply = query.contains("fieldManager") && query.contains("force");
                let entry = state.objects.get(&path).cloned();
                let object = match entry {
                    Some(mut existing) => {
                        merge(&mut existing, &patch);
                        existing
                    }
                    None if apply => {
                        let mut created = patch.clone();
                        stamp(&mut created);
                        created
                    }
                    None => return status(404, "NotFound", &format!("{path} not found")),
                };
                state.objects.insert(path, object.clone());
                respond(200, object)
            }
            ("DELETE", false) => match state.objects.remove(&path) {
                Some(object) => {
                    let prefix = format!("{path}/");
                    state.objects.retain(|p, _| !p.starts_with(&prefix));
                    respond(200, object)
                }
                None => status(404, "NotFound", &format!("{path} not found")),
            },
            _ => status(405, "MethodNotAllowed", &format!("{method} {path}")),
        }
    }
}

/// Gives a pod object the phase, exit code, logs and events of `run`.
fn apply_run(state: &mut State, key: &str, object: &mut Value, run: PodRun) {
    let mut status = json!({"phase": run.phase, "conditions": []});
    if let Some(code) = run.exit_code {
        status["containerStatuses"] = json!([{"name": "probe", "ready": false, "restartCount": 0, "image": "", "imageID": "",
            "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}}}]);
    }
    object["status"] = status;
    state.logs.insert(key.to_string(), run.logs);
    let pod_name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let collection = key.rsplit_once("/pods/").map_or(key, |(c, _)| c);
    for (index, (reason, message)) in run.events.into_iter().enumerate() {
        let event = format!("{pod_name}.{index}");
        state.objects.insert(
            format!("{collection}/events/{event}"),
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": event},
                   "involvedObject": {"kind": "Pod", "name": pod_name},
                   "reason": reason, "message": message}),
        );
    }
}

fn stamp(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.entry("resourceVersion").or_insert(json!("1"));
        meta.entry("uid")
            .or_insert(json!("00000000-0000-0000-0000-000000000001"));
    }
}

/// Collections: `/api/v1/R`, `/api/v1/namespaces/N/R`, `/apis/G/V/R`,
/// `/apis/G/V/namespaces/N/R`.
fn is_collection(path: &str) -> bool {
    let segments = path.trim_matches('/').split('/').count();
    if path.starts_with("/apis/") {
        segments.is_multiple_of(2)
    } else {
        !segments.is_multiple_of(2)
    }
}

fn label_selector(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("labelSelector="))
        .flat_map(|s| {
            let decoded = s
                .replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/");
            decoded
                .split(',')
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn matches_labels(object: &Value, selector: &[(String, String)]) -> bool {
    selector.iter().all(|(k, v)| {
        object
            .pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            == Some(v.as_str())
    })
}

/// JSON merge patch (RFC 7386); close enough to server-side apply for tests.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn respond(code: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(Body::from(Vec::new())))
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    respond(
        code,
        json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": message, "reason": reason, "code": code}),
    )
}
