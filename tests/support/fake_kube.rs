//! An in-memory Kubernetes API for tests: objects by path, list/get/create/
//! patch/replace/delete, label selectors, and 403 rules. It answers through a
//! `kube::Client`, so the real client code runs against it.
//!
//! Besides storage it models, each after the upstream component named where it is
//! done: the ServiceAccount controller (a new namespace's `default` ServiceAccount
//! appears a moment later) and the ServiceAccount admission plugin; Pod Security
//! admission's hostPath check; the scheduler's and the kubelet's taint checks;
//! NodePort allocation; the Deployment controller's rollouts;
//! local-path-provisioner's helper pods; and CustomResourceDefinitions, whose
//! resources are served once the definition is Established. Controllers of a
//! test's choosing (`add_controller`) run on every request, as the ones in a
//! cluster reconcile on their own.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use kube::client::Body;
use serde_json::{Value, json};

/// What the fake answers: a whole body, or a stream of watch events.
type Reply = Response<UnsyncBoxBody<Bytes, Infallible>>;

fn full(bytes: Vec<u8>) -> UnsyncBoxBody<Bytes, Infallible> {
    Full::new(Bytes::from(bytes)).boxed_unsync()
}

/// What a created pod does: its final phase, exit code and logs.
pub struct PodRun {
    pub phase: &'static str,
    pub exit_code: Option<i32>,
    pub logs: String,
    /// Events about the pod, as `(reason, message)`.
    pub events: Vec<(String, String)>,
    /// The container's waiting state, as `(reason, message)` (the kubelet's view
    /// of a container that has not started).
    pub waiting: Option<(String, String)>,
    /// The scheduler's message for a pod it cannot place.
    pub unschedulable: Option<String>,
}

impl PodRun {
    pub fn new(phase: &'static str, exit_code: Option<i32>, logs: &str) -> PodRun {
        PodRun {
            phase,
            exit_code,
            logs: logs.to_string(),
            events: Vec::new(),
            waiting: None,
            unschedulable: None,
        }
    }

    /// A pod the scheduler cannot place: Pending with condition `PodScheduled=False`,
    /// reason `Unschedulable`, and a `FailedScheduling` event with the same
    /// message (`pkg/scheduler/schedule_one.go`, `handleSchedulingFailure`).
    pub fn unschedulable(message: &str) -> PodRun {
        let mut run = PodRun::new("Pending", None, "");
        run.unschedulable = Some(message.to_string());
        run.events
            .push(("FailedScheduling".into(), message.to_string()));
        run
    }

    /// A Pending pod whose container waits for `reason`.
    pub fn waiting(reason: &str, message: &str) -> PodRun {
        let mut run = PodRun::new("Pending", None, "");
        run.waiting = Some((reason.to_string(), message.to_string()));
        run
    }
}

type PodHook = Arc<dyn Fn(&Value) -> Option<PodRun> + Send + Sync>;
/// A controller: from every object there is, the objects to write (path, object).
type Controller = Arc<dyn Fn(&BTreeMap<String, Value>) -> Vec<(String, Value)> + Send + Sync>;

struct State {
    objects: BTreeMap<String, Value>,
    logs: BTreeMap<String, String>,
    requests: Vec<String>,
    forbidden: Vec<(String, String)>,
    /// `(method, resource)` RBAC denies in every namespace.
    forbidden_resources: Vec<(String, String)>,
    /// Requests (method, path prefix) an admission webhook denies: (code, webhook, reason).
    denied: Vec<(String, String, u16, String, String)>,
    pod_hook: Option<PodHook>,
    /// Requests (method, path prefix) that never get an answer.
    stalled: Vec<(String, String)>,
    /// Namespaces created here, and when their `default` ServiceAccount appears.
    service_accounts_due: BTreeMap<String, Instant>,
    service_account_delay: Duration,
    /// Pod Security admission's cluster-wide default `enforce` level.
    pod_security_default: String,
    /// Deployments rolling out, and when the controller finishes each.
    rollouts: Vec<(String, Instant)>,
    rollout_delay: Duration,
    /// The helper pod template local-path-provisioner's running pod loaded.
    local_path_template: Option<Value>,
    counter: u64,
    /// The etcd revision: every write moves it on and stamps the object's
    /// `resourceVersion` with it.
    revision: u64,
    /// Every write, for watches: (revision, ADDED/MODIFIED/DELETED, path, object).
    history: Vec<(u64, &'static str, String, Value)>,
    /// Watches from a version older than this are answered 410 Gone (etcd
    /// compaction, `storage/etcd3/watcher.go`; the watch cache's window,
    /// `storage/cacher/watch_cache.go`, `tooOldResourceVersionError`).
    oldest_watchable: u64,
    /// Wakes open watches after each write.
    changed: tokio::sync::watch::Sender<u64>,
    /// Watches end after this long, whatever `timeoutSeconds` asked.
    watch_limit: Option<Duration>,
    /// A deleted namespace stays Terminating instead of going.
    keep_terminating: bool,
    /// The scheduler enforces ReadWriteOncePod.
    read_write_once_pod: bool,
    /// CustomResourceDefinitions written here, and when each is Established.
    definitions_due: BTreeMap<String, Instant>,
    /// Controllers run on every request.
    controllers: Vec<Controller>,
}

impl State {
    /// Writes `object` at `path` as one etcd revision, telling open watches.
    fn store(&mut self, path: &str, mut object: Value) {
        self.revision += 1;
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(self.revision.to_string()));
        }
        let kind = if self.objects.contains_key(path) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.history
            .push((self.revision, kind, path.to_string(), object.clone()));
        self.objects.insert(path.to_string(), object);
        self.changed.send_replace(self.revision);
    }

    /// Deletes the object at `path` as one etcd revision, telling open watches.
    fn remove(&mut self, path: &str) -> Option<Value> {
        let mut object = self.objects.remove(path)?;
        self.revision += 1;
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(self.revision.to_string()));
        }
        self.history
            .push((self.revision, "DELETED", path.to_string(), object.clone()));
        self.changed.send_replace(self.revision);
        Some(object)
    }
}

impl Default for State {
    fn default() -> State {
        State {
            objects: BTreeMap::new(),
            logs: BTreeMap::new(),
            requests: Vec::new(),
            forbidden: Vec::new(),
            forbidden_resources: Vec::new(),
            denied: Vec::new(),
            pod_hook: None,
            stalled: Vec::new(),
            service_accounts_due: BTreeMap::new(),
            // Long enough that a pod created right after its namespace is refused.
            service_account_delay: Duration::from_millis(400),
            pod_security_default: "privileged".to_string(),
            rollouts: Vec::new(),
            rollout_delay: Duration::from_millis(800),
            local_path_template: None,
            counter: 0,
            revision: 1,
            history: Vec::new(),
            oldest_watchable: 0,
            changed: tokio::sync::watch::channel(1).0,
            watch_limit: None,
            keep_terminating: false,
            read_write_once_pod: false,
            definitions_due: BTreeMap::new(),
            controllers: Vec::new(),
        }
    }
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
        self.lock().store(path, object);
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

    /// Answers 403 to `method` on `resource` (`serviceaccounts`) in any namespace.
    pub fn forbid_resource(&self, method: &str, resource: &str) {
        self.lock()
            .forbidden_resources
            .push((method.to_string(), resource.to_string()));
    }

    /// How long after a namespace the ServiceAccount controller makes its
    /// `default` ServiceAccount.
    pub fn delay_service_accounts(&self, delay: Duration) {
        self.lock().service_account_delay = delay;
    }

    /// An admission webhook named `webhook` denies `method` on paths starting with
    /// `prefix` for `reason`, answering `code` (the apiserver turns a denial into a
    /// status of at least 400: `admission/plugin/webhook/errors/statuserror.go`).
    pub fn deny_by_webhook(
        &self,
        method: &str,
        prefix: &str,
        code: u16,
        webhook: &str,
        reason: &str,
    ) {
        self.lock().denied.push((
            method.to_string(),
            prefix.to_string(),
            code,
            webhook.to_string(),
            reason.to_string(),
        ));
    }

    /// Requests `method` on paths starting with `prefix` never get an answer, as
    /// from an API server whose admission webhook hangs.
    pub fn stall(&self, method: &str, prefix: &str) {
        self.lock()
            .stalled
            .push((method.to_string(), prefix.to_string()));
    }

    /// Pod Security admission's default `enforce` level for namespaces without the
    /// label (an AdmissionConfiguration's `defaults`, as hardened clusters set).
    pub fn enforce_pod_security_by_default(&self, level: &str) {
        self.lock().pod_security_default = level.to_string();
    }

    /// Puts local-path-provisioner in the cluster as kind node images ship it: the
    /// `standard` default StorageClass (WaitForFirstConsumer), ConfigMap
    /// `local-path-config` with `helper_yaml` as its helper pod template, and the
    /// provisioner's Deployment, running with that template.
    pub fn install_local_path(&self, helper_yaml: &str) {
        self.put(
            "/apis/storage.k8s.io/v1/storageclasses/standard",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard",
                  "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                  "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}),
        );
        self.put(
            "/api/v1/namespaces/local-path-storage/configmaps/local-path-config",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "local-path-config", "namespace": "local-path-storage"},
                   "data": {"helperPod.yaml": helper_yaml,
                            "config.json": "{\"nodePathMap\":[{\"node\":\"DEFAULT_PATH_FOR_NON_LISTED_NODES\",\"paths\":[\"/var/local-path-provisioner\"]}]}"}}),
        );
        self.put(
            "/apis/apps/v1/namespaces/local-path-storage/deployments/local-path-provisioner",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "local-path-provisioner", "namespace": "local-path-storage", "generation": 1},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "local-path-provisioner"}},
                            "template": {"metadata": {"labels": {"app": "local-path-provisioner"}}, "spec": {"containers": []}}},
                   "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}}),
        );
        let template: Value = devcluster::core::yaml::from_str(helper_yaml).unwrap_or(Value::Null);
        self.lock().local_path_template = Some(template);
    }

    /// Runs `controller` on every request from now on: what it returns is written
    /// where it differs from what is stored.
    pub fn add_controller(
        &self,
        controller: impl Fn(&BTreeMap<String, Value>) -> Vec<(String, Value)> + Send + Sync + 'static,
    ) {
        self.lock().controllers.push(Arc::new(controller));
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
        state.store(&key, object);
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

    async fn handle(&self, request: Request<Body>) -> Reply {
        let method = request.method().as_str().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or("").to_string();
        let body = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        let body: Option<Value> = serde_json::from_slice(&body).ok();
        let stalled = self
            .lock()
            .stalled
            .iter()
            .any(|(m, prefix)| *m == method && path.starts_with(prefix.as_str()));
        if stalled {
            std::future::pending::<()>().await;
        }
        let mut state = self.lock();
        tick(&mut state);
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
            || state.forbidden_resources.iter().any(|(m, resource)| {
                *m == method
                    && (path.ends_with(&format!("/{resource}"))
                        || path.contains(&format!("/{resource}/")))
            })
        {
            return status(403, "Forbidden", &rbac_denial(&method, &path));
        }
        if let Some((_, _, code, webhook, reason)) = state
            .denied
            .iter()
            .find(|(m, prefix, ..)| *m == method && path.starts_with(prefix.as_str()))
        {
            let message = format!("admission webhook \"{webhook}\" denied the request: {reason}");
            return status(
                *code,
                if *code == 403 {
                    "Forbidden"
                } else {
                    "BadRequest"
                },
                &message,
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
        if let Some(refusal) = unserved_custom_resource(&state, &path) {
            return status(404, "NotFound", &refusal);
        }
        if path.starts_with(DEFINITIONS)
            && matches!(method.as_str(), "POST" | "PATCH")
            && !state.objects.contains_key(&path)
        {
            let name = match body.as_ref().and_then(|b| b.pointer("/metadata/name")) {
                Some(Value::String(name)) if method == "POST" => format!("{DEFINITIONS}/{name}"),
                _ => path.clone(),
            };
            let due = Instant::now() + DEFINITION_DELAY;
            state.definitions_due.insert(name, due);
        }
        if method == "GET" && path.ends_with("/log") {
            let pod = path.trim_end_matches("/log").to_string();
            let text = state.logs.get(&pod).cloned().unwrap_or_default();
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/plain")
                .body(full(text.into_bytes()))
                .unwrap_or_else(|_| Response::new(full(Vec::new())));
        }
        let collection = is_collection(&path);
        match (method.as_str(), collection) {
            ("GET", true)
                if query
                    .split('&')
                    .any(|p| p == "watch=true" || p == "watch=1") =>
            {
                drop(state);
                self.watch(&path, &query)
            }
            ("GET", true) => {
                let selector = label_selector(&query);
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(p, _)| in_collection(&path, p))
                    .map(|(_, v)| v.clone())
                    .filter(|v| matches_labels(v, &selector))
                    .collect();
                respond(
                    200,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": state.revision.to_string()}, "items": items}),
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
                if path == "/api/v1/namespaces" {
                    let due = Instant::now() + state.service_account_delay;
                    state.service_accounts_due.insert(name.clone(), due);
                }
                if path.ends_with("/services")
                    && let Some(refusal) = allocate_node_ports(&state, &object)
                {
                    return status(422, "Invalid", &refusal);
                }
                if path.ends_with("/pods") {
                    let namespace = namespace_of(&path);
                    if let Some(refusal) = admit_pod(&state, &namespace, &name, &object) {
                        return status(403, "Forbidden", &refusal);
                    }
                    if let Some(run) = place_pod(&mut state, &namespace, &object) {
                        apply_run(&mut state, &key, &mut object, run);
                        state.store(&key, object.clone());
                        return respond(201, object);
                    }
                }
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
                    state.store(&key, object.clone());
                    return respond(201, object);
                }
                state.store(&key, object.clone());
                respond(201, object)
            }
            ("PUT", false) => {
                let Some(mut object) = body else {
                    return status(400, "BadRequest", "no body");
                };
                stamp(&mut object);
                state.store(&path, object.clone());
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
                        let template = existing.pointer("/spec/template").cloned();
                        merge(&mut existing, &patch);
                        if path.contains("/deployments/")
                            && existing.pointer("/spec/template").cloned() != template
                        {
                            start_rollout(&mut state, &path, &mut existing);
                        }
                        existing
                    }
                    None if apply => {
                        let mut created = patch.clone();
                        stamp(&mut created);
                        if let Some(name) = path.strip_prefix("/api/v1/namespaces/")
                            && !name.contains('/')
                        {
                            let due = Instant::now() + state.service_account_delay;
                            state.service_accounts_due.insert(name.to_string(), due);
                        }
                        created
                    }
                    None => return status(404, "NotFound", &format!("{path} not found")),
                };
                state.store(&path, object.clone());
                respond(200, object)
            }
            ("DELETE", false) => match state.objects.get(&path).cloned() {
                Some(object)
                    if state.keep_terminating
                        && path.starts_with("/api/v1/namespaces/")
                        && !path[20..].contains('/') =>
                {
                    // The namespace controller has not finished: the namespace
                    // stays, Terminating (`pkg/controller/namespace/deletion`).
                    let mut object = object;
                    object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                    object["status"] = json!({"phase": "Terminating"});
                    state.store(&path, object.clone());
                    respond(200, object)
                }
                Some(object) => {
                    let prefix = format!("{path}/");
                    // A namespace takes every namespaced object of every API group
                    // with it (the namespace controller,
                    // `pkg/controller/namespace/deletion/namespaced_resources_deleter.go`).
                    let grouped = path
                        .strip_prefix("/api/v1/namespaces/")
                        .filter(|n| !n.contains('/'))
                        .map(|n| format!("/namespaces/{n}/"));
                    let inside: Vec<String> = state
                        .objects
                        .keys()
                        .filter(|p| {
                            p.starts_with(&prefix)
                                || grouped.as_ref().is_some_and(|g| {
                                    p.starts_with("/apis/") && p.contains(g.as_str())
                                })
                        })
                        .cloned()
                        .collect();
                    for key in inside {
                        state.remove(&key);
                    }
                    state.remove(&path);
                    respond(200, object)
                }
                None => status(404, "NotFound", &format!("{path} not found")),
            },
            _ => status(405, "MethodNotAllowed", &format!("{method} {path}")),
        }
    }
}

impl FakeApi {
    /// A watch of the collection at `path`, as the API server serves one
    /// (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go`,
    /// `serveWatch`): status 200, then one JSON object a line,
    /// `{"type": "ADDED|MODIFIED|DELETED|BOOKMARK|ERROR", "object": ...}`, until
    /// `timeoutSeconds` ends it. Where it starts follows `resourceVersion`
    /// ("Semantics for watch", `docs/reference/using-api/api-concepts.md`): unset or
    /// `0`, a synthetic ADDED for every object there now, then the changes; a
    /// version, every change after it; one older than the server keeps, a single
    /// ERROR event with a 410 Gone status. With `allowWatchBookmarks` a BOOKMARK
    /// carrying the newest version comes just before the watch ends, as the watch
    /// cache sends one ahead of the deadline
    /// (`staging/src/k8s.io/apiserver/pkg/storage/cacher/cacher.go`).
    fn watch(&self, path: &str, query: &str) -> Reply {
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
        };
        let selector = label_selector(query);
        let bookmarks = param("allowWatchBookmarks").as_deref() == Some("true");
        let seconds = param("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(1800);
        let mut lasts = Duration::from_secs(seconds);
        let state = self.lock();
        if let Some(limit) = state.watch_limit {
            lasts = lasts.min(limit);
        }
        let mut queue: std::collections::VecDeque<Vec<u8>> = Default::default();
        let line = |kind: &str, object: &Value| {
            let mut text =
                serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
            text.push(b'\n');
            text
        };
        let from = param("resourceVersion").unwrap_or_default();
        let mut ended = false;
        match from.as_str() {
            "" | "0" => {
                for (key, object) in &state.objects {
                    if in_collection(path, key) && matches_labels(object, &selector) {
                        queue.push_back(line("ADDED", object));
                    }
                }
            }
            version => {
                let version: u64 = version.parse().unwrap_or(0);
                if version < state.oldest_watchable {
                    let gone = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                        "message": format!("too old resource version: {version} ({})", state.oldest_watchable),
                        "reason": "Expired", "code": 410});
                    queue.push_back(line("ERROR", &gone));
                    ended = true;
                } else {
                    for (revision, kind, key, object) in &state.history {
                        if *revision > version
                            && in_collection(path, key)
                            && matches_labels(object, &selector)
                        {
                            queue.push_back(line(kind, object));
                        }
                    }
                }
            }
        }
        let seen = state.revision;
        let changes = state.changed.subscribe();
        drop(state);
        let api = self.clone();
        let collection = path.to_string();
        let kind = kind_of(path);
        let deadline = tokio::time::Instant::now() + lasts;
        let stream = futures_util::stream::unfold(
            (queue, seen, changes, ended),
            move |(mut queue, mut seen, mut changes, mut ended)| {
                let (api, collection, selector, kind) = (
                    api.clone(),
                    collection.clone(),
                    selector.clone(),
                    kind.clone(),
                );
                async move {
                    loop {
                        if let Some(next) = queue.pop_front() {
                            return Some((
                                Ok::<_, Infallible>(Frame::data(Bytes::from(next))),
                                (queue, seen, changes, ended),
                            ));
                        }
                        if ended {
                            return None;
                        }
                        {
                            let state = api.lock();
                            for (revision, change, key, object) in &state.history {
                                if *revision > seen
                                    && in_collection(&collection, key)
                                    && matches_labels(object, &selector)
                                {
                                    let mut text = serde_json::to_vec(
                                        &json!({"type": change, "object": object}),
                                    )
                                    .unwrap_or_default();
                                    text.push(b'\n');
                                    queue.push_back(text);
                                }
                            }
                            seen = state.revision;
                            changes.mark_unchanged();
                        }
                        if !queue.is_empty() {
                            continue;
                        }
                        tokio::select! {
                            _ = changes.changed() => {}
                            () = tokio::time::sleep_until(deadline) => {
                                if bookmarks {
                                    let bookmark = json!({"kind": kind, "apiVersion": "v1",
                                        "metadata": {"resourceVersion": seen.to_string()}});
                                    let mut text = serde_json::to_vec(&json!({"type": "BOOKMARK", "object": bookmark})).unwrap_or_default();
                                    text.push(b'\n');
                                    queue.push_back(text);
                                }
                                ended = true;
                            }
                        }
                    }
                }
            },
        );
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("transfer-encoding", "chunked")
            .body(StreamBody::new(stream).boxed_unsync())
            .unwrap_or_else(|_| Response::new(full(Vec::new())))
    }

    /// Forgets the history of writes (etcd compaction): a watch from any version
    /// seen so far is answered 410 Gone and its client must list again.
    pub fn compact_history(&self) {
        let mut state = self.lock();
        state.history.clear();
        state.oldest_watchable = state.revision + 1;
    }

    /// Ends every watch after `limit`, as an API server's `--min-request-timeout`
    /// or a restarting server does; clients re-open them from the last version.
    pub fn end_watches_after(&self, limit: Duration) {
        self.lock().watch_limit = Some(limit);
    }

    /// The scheduler enforces ReadWriteOncePod: a pod whose claim has that access
    /// mode stays unschedulable while another pod uses the claim
    /// (`pkg/scheduler/framework/plugins/volumerestrictions/volume_restrictions.go`,
    /// `ErrReasonReadWriteOncePodConflict`).
    pub fn schedule_read_write_once_pod(&self) {
        self.lock().read_write_once_pod = true;
    }

    /// Deleted namespaces stay Terminating, as when a finalizer never goes.
    pub fn keep_namespaces_terminating(&self) {
        self.lock().keep_terminating = true;
    }
}

/// Whether the object at `key` belongs to the collection at `collection`; a
/// cluster-wide collection of a namespaced resource (`/api/v1/services`) holds
/// the objects of every namespace.
fn in_collection(collection: &str, key: &str) -> bool {
    let prefix = format!("{collection}/");
    if key.starts_with(&prefix) && !key[prefix.len()..].contains('/') {
        return true;
    }
    let (base, resource) = collection.rsplit_once('/').unwrap_or(("", ""));
    let across = format!("{base}/namespaces/");
    resource != "namespaces"
        && key.strip_prefix(&across).is_some_and(|rest| {
            let parts: Vec<&str> = rest.split('/').collect();
            parts.len() == 3 && parts[1] == resource
        })
}

/// The kind a collection holds, for bookmarks (`/api/v1/namespaces/n/pods` -> `Pod`).
fn kind_of(collection: &str) -> String {
    match collection.rsplit('/').next().unwrap_or("") {
        "pods" => "Pod",
        "events" => "Event",
        "namespaces" => "Namespace",
        "nodes" => "Node",
        "services" => "Service",
        "configmaps" => "ConfigMap",
        other => other,
    }
    .to_string()
}

/// What time has done since the last request: `default` ServiceAccounts that are
/// due appear (the ServiceAccount controller, `pkg/controller/serviceaccount/
/// serviceaccounts_controller.go`, creates them asynchronously after the
/// namespace), and rollouts that are due finish.
fn tick(state: &mut State) {
    let now = Instant::now();
    let due: Vec<String> = state
        .service_accounts_due
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(namespace, _)| namespace.clone())
        .collect();
    for namespace in due {
        state.service_accounts_due.remove(&namespace);
        let account = format!("/api/v1/namespaces/{namespace}/serviceaccounts/default");
        // The controller creates it only when it is missing (AlreadyExists is
        // ignored in `syncNamespace`).
        if state
            .objects
            .contains_key(&format!("/api/v1/namespaces/{namespace}"))
            && !state.objects.contains_key(&account)
        {
            state.store(
                &format!("/api/v1/namespaces/{namespace}/serviceaccounts/default"),
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "default", "namespace": namespace}}),
            );
        }
    }
    let finished: Vec<String> = state
        .rollouts
        .iter()
        .filter(|(_, at)| *at <= now)
        .map(|(path, _)| path.clone())
        .collect();
    state.rollouts.retain(|(_, at)| *at > now);
    for path in finished {
        let Some(mut deployment) = state.objects.get(&path).cloned() else {
            continue;
        };
        let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1);
        let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
        deployment["status"] = json!({"observedGeneration": generation, "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas});
        state.store(&path, deployment);
        // A new local-path-provisioner pod loads the helper template as it starts
        // (`provisioner.go`, `NewProvisioner` -> `loadHelperPodFile`).
        if path.ends_with("/local-path-storage/deployments/local-path-provisioner") {
            let template = state
                .objects
                .get("/api/v1/namespaces/local-path-storage/configmaps/local-path-config")
                .and_then(|c| c["data"]["helperPod.yaml"].as_str().map(str::to_string))
                .and_then(|y| devcluster::core::yaml::from_str::<Value>(&y).ok());
            if template.is_some() {
                state.local_path_template = template;
            }
        }
    }
    establish_definitions(state, now);
    let controllers = state.controllers.clone();
    for controller in controllers {
        for (path, mut object) in controller(&state.objects) {
            // The stored copy carries the version of its last write.
            if let Some(version) = state
                .objects
                .get(&path)
                .and_then(|o| o.pointer("/metadata/resourceVersion"))
                .cloned()
            {
                object["metadata"]["resourceVersion"] = version;
            }
            if state.objects.get(&path) != Some(&object) {
                state.store(&path, object);
            }
        }
    }
}

const DEFINITIONS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
/// How long apiextensions-apiserver takes to serve a new definition.
const DEFINITION_DELAY: Duration = Duration::from_millis(300);

/// API groups the API server itself serves; every other group under `/apis/` is
/// a CustomResourceDefinition's.
const BUILT_IN_GROUPS: &[&str] = &[
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
];

/// Definitions that are due become Established (apiextensions-apiserver's
/// `pkg/controller/establish/establishing_controller.go` sets the condition once
/// the resource is served).
fn establish_definitions(state: &mut State, now: Instant) {
    let due: Vec<String> = state
        .definitions_due
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(path, _)| path.clone())
        .collect();
    for path in due {
        state.definitions_due.remove(&path);
        if let Some(mut definition) = state.objects.get(&path).cloned() {
            definition["status"] = json!({"conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
            ]});
            state.store(&path, definition);
        }
    }
}

/// The API server's answer to a request for a custom resource whose definition
/// is missing or not yet Established: 404, as for any path it does not serve
/// (what `kubectl apply` reports as "no matches for kind", and `ensure CRDs are
/// installed first`).
fn unserved_custom_resource(state: &State, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/apis/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let group = *segments.first()?;
    if BUILT_IN_GROUPS.contains(&group) || segments.len() < 3 {
        return None;
    }
    let resource = if segments.get(2) == Some(&"namespaces") && segments.len() >= 5 {
        segments[4]
    } else {
        segments[2]
    };
    let established = state
        .objects
        .get(&format!("{DEFINITIONS}/{resource}.{group}"))
        .and_then(|d| d.pointer("/status/conditions"))
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    (!established).then(|| "the server could not find the requested resource".to_string())
}

/// A changed pod template starts a rollout (the Deployment controller,
/// `pkg/controller/deployment/sync.go`): the generation moves on, no replica runs
/// the new template yet, and the old pod keeps serving until the new one is up.
fn start_rollout(state: &mut State, path: &str, deployment: &mut Value) {
    let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
    deployment["metadata"]["generation"] = json!(generation);
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    deployment["status"] = json!({"observedGeneration": generation, "replicas": replicas + 1,
        "updatedReplicas": 0, "readyReplicas": replicas, "availableReplicas": replicas});
    let due = Instant::now() + state.rollout_delay;
    state.rollouts.retain(|(p, _)| p != path);
    state.rollouts.push((path.to_string(), due));
}

/// `/api/v1/namespaces/NS/...` -> `NS`.
fn namespace_of(path: &str) -> String {
    path.split('/').nth(4).unwrap_or("").to_string()
}

/// The authorizer's denial (apiserver `endpoints/handlers/responsewriters/errors.go`).
fn rbac_denial(method: &str, path: &str) -> String {
    let verb = match method {
        "GET" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "use",
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (namespace, resource) = match segments.iter().position(|s| *s == "namespaces") {
        Some(i) if segments.len() > i + 2 => (Some(segments[i + 1]), segments[i + 2]),
        _ => (None, segments.get(2).copied().unwrap_or("namespaces")),
    };
    let scope = namespace.map_or(" at the cluster scope".to_string(), |n| {
        format!(" in the namespace \"{n}\"")
    });
    format!(
        "{resource} is forbidden: User \"test\" cannot {verb} resource \"{resource}\" in API group \"\"{scope}"
    )
}

/// Admission of a new pod: the ServiceAccount plugin refuses it while its
/// ServiceAccount does not exist (`plugin/pkg/admission/serviceaccount/admission.go`),
/// and Pod Security admission refuses hostPath volumes below the `privileged` level
/// (`pod-security-admission/policy/check_hostPathVolumes.go`).
fn admit_pod(state: &State, namespace: &str, name: &str, pod: &Value) -> Option<String> {
    let account = pod["spec"]["serviceAccountName"]
        .as_str()
        .unwrap_or("default");
    if state.service_accounts_due.contains_key(namespace)
        && !state.objects.contains_key(&format!(
            "/api/v1/namespaces/{namespace}/serviceaccounts/{account}"
        ))
    {
        return Some(format!(
            "pods \"{name}\" is forbidden: error looking up service account {namespace}/{account}: serviceaccount \"{account}\" not found"
        ));
    }
    let level = state
        .objects
        .get(&format!("/api/v1/namespaces/{namespace}"))
        .and_then(|n| {
            n["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| state.pod_security_default.clone());
    let host_paths: Vec<String> = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.get("hostPath").is_some())
        .map(|v| format!("\"{}\"", v["name"].as_str().unwrap_or("")))
        .collect();
    if level != "privileged" && !host_paths.is_empty() {
        return Some(format!(
            "pods \"{name}\" is forbidden: violates PodSecurity \"{level}:latest\": hostPath volumes ({} {})",
            if host_paths.len() == 1 {
                "volume"
            } else {
                "volumes"
            },
            host_paths.join(", ")
        ));
    }
    None
}

/// Whether `tolerations` tolerate `taint` (`staging/src/k8s.io/api/core/v1/toleration.go`,
/// `ToleratesTaint`).
fn tolerates(tolerations: &Value, taint: &Value) -> bool {
    tolerations.as_array().into_iter().flatten().any(|t| {
        let effect_ok = t["effect"]
            .as_str()
            .is_none_or(|e| e.is_empty() || Some(e) == taint["effect"].as_str());
        let key = t["key"].as_str().unwrap_or("");
        let key_ok = key.is_empty() || Some(key) == taint["key"].as_str();
        let value_ok = match t["operator"].as_str().unwrap_or("Equal") {
            "Exists" => true,
            _ => t["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or(""),
        };
        effect_ok && key_ok && value_ok
    })
}

/// The taints of `node` that `pod` does not tolerate, among those `effects`.
fn untolerated(state: &State, node: &str, pod: &Value, effects: &[&str]) -> Vec<Value> {
    let taints = state
        .objects
        .get(&format!("/api/v1/nodes/{node}"))
        .and_then(|n| n["spec"]["taints"].as_array().cloned())
        .unwrap_or_default();
    taints
        .into_iter()
        .filter(|t| effects.contains(&t["effect"].as_str().unwrap_or("")))
        .filter(|t| !tolerates(&pod["spec"]["tolerations"], t))
        .collect()
}

/// Where a new pod goes, when that decides its fate before it runs. A pod bound
/// with `nodeName` skips the scheduler; the kubelet admits it unless the node has a
/// NoExecute taint it does not tolerate (`pkg/kubelet/lifecycle/predicate.go`,
/// `generalFilter`: "Kubelet is only interested in the NoExecute taint"), and
/// rejects it with phase Failed, reason `TaintToleration`. A pod placed by the
/// scheduler stays Pending on NoSchedule and NoExecute taints it does not tolerate.
/// A pod whose claim local-path-provisioner cannot provision stays Pending.
fn place_pod(state: &mut State, namespace: &str, pod: &Value) -> Option<PodRun> {
    if let Some(node) = pod["spec"]["nodeName"].as_str() {
        if !untolerated(state, node, pod, &["NoExecute"]).is_empty() {
            let mut run = PodRun::new("Failed", None, "");
            run.events.push((
                "TaintToleration".into(),
                "Predicate TaintToleration failed".into(),
            ));
            return Some(run);
        }
        return None;
    }
    let node = pod["spec"]["nodeSelector"]["kubernetes.io/hostname"]
        .as_str()?
        .to_string();
    let blocking = untolerated(state, &node, pod, &["NoSchedule", "NoExecute"]);
    if let Some(taint) = blocking.first() {
        let mut run = PodRun::new("Pending", None, "");
        run.events.push((
            "FailedScheduling".into(),
            format!(
                "0/1 nodes are available: 1 node(s) had untolerated taint {{{}: {}}}.",
                taint["key"].as_str().unwrap_or(""),
                taint["value"].as_str().unwrap_or("")
            ),
        ));
        return Some(run);
    }
    for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() else {
            continue;
        };
        if state.read_write_once_pod && claim_in_use_once(state, namespace, claim, pod) {
            return Some(PodRun::unschedulable(
                "0/1 nodes are available: 1 node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
            ));
        }
        if let Err(message) = provision(state, namespace, claim, &node) {
            state.counter += 1;
            let event = format!("{claim}.{}", state.counter);
            state.store(
                &format!("/api/v1/namespaces/{namespace}/events/{event}"),
                json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": event},
                       "involvedObject": {"kind": "PersistentVolumeClaim", "name": claim},
                       "reason": "ProvisioningFailed", "message": message}),
            );
            return Some(PodRun::new("Pending", None, ""));
        }
    }
    None
}

/// Whether `claim` has the ReadWriteOncePod access mode and a pod other than
/// `pod` that has not finished uses it.
fn claim_in_use_once(state: &State, namespace: &str, claim: &str, pod: &Value) -> bool {
    let once = state
        .objects
        .get(&format!(
            "/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}"
        ))
        .is_some_and(|c| {
            c["spec"]["accessModes"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m == "ReadWriteOncePod"))
        });
    let prefix = format!("/api/v1/namespaces/{namespace}/pods/");
    once && state.objects.iter().any(|(key, other)| {
        key.starts_with(&prefix)
            && other["metadata"]["name"] != pod["metadata"]["name"]
            && !matches!(
                other["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            )
            && other["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["persistentVolumeClaim"]["claimName"].as_str() == Some(claim))
    })
}

/// local-path-provisioner provisioning `claim` for a pod on `node`
/// (`provisioner.go`, `createHelperPod`): a helper pod from the running
/// provisioner's template, bound to the node with `nodeName`, with the template's
/// tolerations (only a disk-pressure one when the template has none). When the
/// kubelet rejects it, the taint manager deletes it and the provisioner's wait for
/// it fails; the claim gets a `ProvisioningFailed` event (sig-storage-lib-external-
/// provisioner `controller.go`). Claims of other provisioners bind at once.
fn provision(state: &mut State, namespace: &str, claim: &str, node: &str) -> Result<(), String> {
    let claim_path = format!("/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}");
    let class = state
        .objects
        .get(&claim_path)
        .and_then(|c| c["spec"]["storageClassName"].as_str().map(str::to_string))
        .unwrap_or_default();
    let provisioner = state
        .objects
        .get(&format!("/apis/storage.k8s.io/v1/storageclasses/{class}"))
        .and_then(|c| c["provisioner"].as_str().map(str::to_string))
        .unwrap_or_default();
    let template = match (&state.local_path_template, provisioner.as_str()) {
        (Some(template), "rancher.io/local-path") => template.clone(),
        _ => return Ok(()),
    };
    // The external-provisioner library names the volume `pvc-<claim UID>`.
    let uid = state
        .objects
        .get(&claim_path)
        .and_then(|c| c["metadata"]["uid"].as_str().map(str::to_string))
        .unwrap_or_default();
    let volume = format!("pvc-{uid}");
    let helper_name = format!("helper-pod-create-{volume}");
    let mut tolerations = template["spec"]["tolerations"].clone();
    if tolerations.is_null() {
        tolerations = json!([{"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"}]);
    }
    let helper = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": helper_name, "namespace": "local-path-storage"},
        "spec": {"nodeName": node, "tolerations": tolerations, "restartPolicy": "Never"}});
    if !untolerated(state, node, &helper, &["NoExecute"]).is_empty() {
        for (index, (reason, message)) in [
            (
                "TaintToleration",
                "Predicate TaintToleration failed".to_string(),
            ),
            (
                "TaintManagerEviction",
                format!("Marking for deletion Pod local-path-storage/{helper_name}"),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let event = format!("{helper_name}.{index}");
            state.store(&
                format!("/api/v1/namespaces/local-path-storage/events/{event}"),
                json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": event},
                       "involvedObject": {"kind": "Pod", "name": helper_name, "namespace": "local-path-storage"},
                       "reason": reason, "message": message}),
            );
        }
        return Err(format!(
            "failed to provision volume with StorageClass \"{class}\": failed to create volume {volume}: pods \"{helper_name}\" not found"
        ));
    }
    if let Some(mut object) = state.objects.get(&claim_path).cloned() {
        object["status"] = json!({"phase": "Bound"});
        object["spec"]["volumeName"] = json!(volume);
        state.store(&claim_path, object);
    }
    Ok(())
}

/// NodePort allocation (`pkg/registry/core/service/portallocator`): a node port
/// outside 30000-32767, or one another Service holds, is refused.
fn allocate_node_ports(state: &State, service: &Value) -> Option<String> {
    let name = service["metadata"]["name"].as_str().unwrap_or("");
    let held: Vec<i64> = state
        .objects
        .iter()
        .filter(|(p, _)| p.contains("/services/"))
        .flat_map(|(_, s)| s["spec"]["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["nodePort"].as_i64())
        .collect();
    for port in service["spec"]["ports"].as_array().into_iter().flatten() {
        let Some(node_port) = port["nodePort"].as_i64() else {
            continue;
        };
        if !(30000..=32767).contains(&node_port) {
            return Some(format!(
                "Service \"{name}\" is invalid: spec.ports[0].nodePort: Invalid value: {node_port}: provided port is not in the valid range. The range of valid ports is 30000-32767"
            ));
        }
        if held.contains(&node_port) {
            return Some(format!(
                "Service \"{name}\" is invalid: spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already allocated"
            ));
        }
    }
    None
}

/// Gives a pod object the phase, exit code, logs and events of `run`.
fn apply_run(state: &mut State, key: &str, object: &mut Value, run: PodRun) {
    let mut status = json!({"phase": run.phase, "conditions": []});
    if let Some(message) = &run.unschedulable {
        status["conditions"] = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]);
    }
    if let Some(code) = run.exit_code {
        status["containerStatuses"] = json!([{"name": "probe", "ready": false, "restartCount": 0, "image": "", "imageID": "",
            "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}}}]);
    } else if let Some((reason, message)) = &run.waiting {
        status["containerStatuses"] = json!([{"name": "probe", "ready": false, "restartCount": 0, "image": "", "imageID": "",
            "state": {"waiting": {"reason": reason, "message": message}}}]);
    } else if run.phase == "Running" {
        // The kubelet's status of a pod whose one container runs.
        status["containerStatuses"] = json!([{"name": "probe", "ready": true, "restartCount": 0, "image": "", "imageID": "",
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]);
    }
    if run.phase == "Failed" && run.exit_code.is_none() {
        // A pod the kubelet rejected at admission (`kubelet.go`, `rejectPod`).
        if let Some((reason, message)) = run.events.first() {
            status["reason"] = json!(reason);
            status["message"] = json!(format!("Pod was rejected: {message}"));
        }
    }
    object["status"] = status;
    state.logs.insert(key.to_string(), run.logs);
    let pod_name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let collection = key.rsplit_once("/pods/").map_or(key, |(c, _)| c);
    for (reason, message) in run.events.into_iter() {
        state.counter += 1;
        let event = format!("{pod_name}.{}", state.counter);
        state.store(
            &format!("{collection}/events/{event}"),
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": event},
                   "involvedObject": {"kind": "Pod", "name": pod_name},
                   "reason": reason, "message": message}),
        );
    }
}

fn stamp(object: &mut Value) {
    static UIDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.entry("resourceVersion").or_insert(json!("1"));
        let n = UIDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        meta.entry("uid")
            .or_insert(json!(format!("00000000-0000-0000-0000-{n:012}")));
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

fn respond(code: u16, body: Value) -> Reply {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(full(serde_json::to_vec(&body).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(full(Vec::new())))
}

fn status(code: u16, reason: &str, message: &str) -> Reply {
    respond(
        code,
        json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": message, "reason": reason, "code": code}),
    )
}
