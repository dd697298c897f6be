//! A cluster API with canned answers, for unit tests of the operations that ask
//! one. It keeps in memory what an API server keeps for the calls it answers
//! (nodes, namespaces, ConfigMaps, claims, pods, events, the default
//! StorageClass, the server's version) and answers as the API server and its
//! controllers do:
//!
//! - Creating anything in a namespace that does not exist is refused as not
//!   found, and in one being deleted as forbidden (the NamespaceLifecycle
//!   admission plugin, apiserver `pkg/admission/plugin/namespace/lifecycle/admission.go`);
//!   creating what already exists is refused as a conflict.
//! - A namespace's `default` ServiceAccount exists as soon as the namespace does:
//!   `Kube::wait_default_service_account` creates it itself rather than wait for
//!   the ServiceAccount controller (`pkg/controller/serviceaccount/serviceaccounts_controller.go`,
//!   which leaves an existing one alone), so no delay is modelled.
//! - Deleting a namespace removes it with everything in it (the namespace
//!   controller, `pkg/controller/namespace/deletion/namespaced_resources_deleter.go`),
//!   unless a test gave it a finalizer that never goes: then it stays, with the
//!   time its deletion was asked for.
//! - A created pod is `Pending`; it ends the way a test said pods of its name
//!   end ([`PodEnd`]), else it stays `Pending`, as on a cluster whose kubelets
//!   never start it. The canned scheduler and kubelet write no events: the only
//!   events are those a test put there.
//!
//! Calls that would need more of a cluster (server-side apply, rollouts, Services
//! and routes) fail with an error that says the double does not answer them.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::adapters::kube::client::{ClusterApi, OnChange};
use crate::adapters::kube::cluster::{ObservedApiNode, StorageFix};
use crate::adapters::kube::probe::{
    MANAGED_BY, ObservedRouteParent, POD_SECURITY_LABELS, ProbeNode, ProbePod,
};
use crate::adapters::kube::watch::{
    Change, ContainerState, ObservedEvent, ObservedPod, WatchHandle,
};
use crate::core::error::Error;
use crate::core::plan::Taint;

/// The namespaces every cluster has (kube-apiserver's system namespaces
/// controller, `pkg/controlplane/controller/systemnamespaces`, and `default`).
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// A node as the canned API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CannedNode {
    pub name: String,
    pub ready: bool,
    /// The message of its Ready condition.
    pub reason: String,
    pub kubelet_version: String,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub addresses: Vec<String>,
}

impl CannedNode {
    /// A Ready node, with the message the kubelet sets
    /// (`pkg/kubelet/nodestatus/setters.go`, `ReadyCondition`).
    pub(crate) fn ready(name: &str) -> CannedNode {
        CannedNode {
            name: name.to_string(),
            ready: true,
            reason: "kubelet is posting ready status".into(),
            kubelet_version: "v1.33.1".into(),
            taints: Vec::new(),
            unschedulable: false,
            addresses: vec![name.to_string()],
        }
    }

    /// A registered node whose Ready condition is False with `message`.
    pub(crate) fn not_ready(name: &str, message: &str) -> CannedNode {
        CannedNode {
            ready: false,
            reason: message.to_string(),
            ..CannedNode::ready(name)
        }
    }

    pub(crate) fn tainted(mut self, taint: Taint) -> CannedNode {
        self.taints.push(taint);
        self
    }
}

/// How pods of a name end once created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PodEnd {
    /// The container runs and exits with `code`, having printed `logs`; the
    /// reason is the runtime's (`Completed` for 0, else `Error`, as containerd's
    /// CRI reports it).
    Exits { code: i32, logs: String },
    /// The container starts and keeps running (a pod that waits on its stdin).
    Runs,
    /// The scheduler cannot place it: `PodScheduled=False`, reason
    /// `Unschedulable`, with `message`.
    Unschedulable { message: String },
    /// The container never starts: waiting with `reason` (`ErrImagePull`...).
    Waiting { reason: String, message: String },
}

#[derive(Debug, Clone)]
struct Namespace {
    labels: BTreeMap<String, String>,
    /// When its deletion was asked for, while a finalizer holds it.
    deleting_since: Option<SystemTime>,
    /// A finalizer that never goes: a deletion leaves it terminating.
    stuck: bool,
}

#[derive(Debug, Clone)]
struct Pod {
    observed: ObservedPod,
    logs: String,
}

#[derive(Debug, Default)]
struct State {
    version: (u32, u32),
    nodes: Vec<CannedNode>,
    coredns_available: bool,
    default_storage_class: Option<String>,
    namespaces: BTreeMap<String, Namespace>,
    /// `(namespace, name)` to its data.
    config_maps: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// `(namespace, name)` to `(access mode, uid)`.
    claims: BTreeMap<(String, String), (String, String)>,
    /// `(namespace, name)`, in creation order.
    pods: Vec<((String, String), Pod)>,
    /// `(namespace, event)`, oldest first.
    events: Vec<(String, ObservedEvent)>,
    /// Node ports Services hold, as `(port, "namespace/name")`.
    node_ports: Vec<(u16, String)>,
    /// Every pod ever asked for, as `(namespace, pod)`, deleted ones too.
    created: Vec<(String, ProbePod)>,
    /// Name prefix to how pods of that name end; the longest prefix wins.
    pod_ends: Vec<(String, PodEnd)>,
}

/// A cluster API answering from memory (see the module's comment).
pub(crate) struct CannedCluster {
    state: Mutex<State>,
    pod_changes: broadcast::Sender<(String, Change<ObservedPod>)>,
}

impl CannedCluster {
    /// A cluster of Kubernetes 1.33 with the system namespaces and nothing else:
    /// no node, CoreDNS not available, no default StorageClass.
    pub(crate) fn new() -> CannedCluster {
        let namespaces = SYSTEM_NAMESPACES
            .iter()
            .map(|name| {
                (
                    name.to_string(),
                    Namespace {
                        labels: BTreeMap::new(),
                        deleting_since: None,
                        stuck: false,
                    },
                )
            })
            .collect();
        CannedCluster {
            state: Mutex::new(State {
                version: (1, 33),
                namespaces,
                ..State::default()
            }),
            pod_changes: broadcast::channel(1024).0,
        }
    }

    /// A healthy cluster of `nodes`: each Ready, CoreDNS available, and
    /// local-path-provisioner's `standard` class the default (as kind's node
    /// images install it).
    pub(crate) fn ready(nodes: &[&str]) -> CannedCluster {
        let cluster = CannedCluster::new()
            .with_coredns_available()
            .with_default_storage_class("standard");
        for node in nodes {
            cluster.add_node(CannedNode::ready(node));
        }
        cluster
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn with_version(self, major: u32, minor: u32) -> CannedCluster {
        self.state().version = (major, minor);
        self
    }

    pub(crate) fn with_coredns_available(self) -> CannedCluster {
        self.set_coredns_available(true);
        self
    }

    /// Whether the CoreDNS deployment has its replicas available from now on.
    pub(crate) fn set_coredns_available(&self, available: bool) {
        self.state().coredns_available = available;
    }

    pub(crate) fn with_default_storage_class(self, name: &str) -> CannedCluster {
        self.state().default_storage_class = Some(name.to_string());
        self
    }

    /// Registers `node`, or replaces the node of its name (a node that became
    /// Ready since).
    pub(crate) fn add_node(&self, node: CannedNode) {
        let mut state = self.state();
        state.nodes.retain(|n| n.name != node.name);
        state.nodes.push(node);
    }

    /// A ConfigMap that is already there (created by the cluster or an earlier run).
    pub(crate) fn with_config_map(
        self,
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
    ) -> CannedCluster {
        {
            let mut state = self.state();
            state
                .namespaces
                .entry(namespace.to_string())
                .or_insert_with(|| Namespace {
                    labels: BTreeMap::new(),
                    deleting_since: None,
                    stuck: false,
                });
            state.config_maps.insert(
                (namespace.to_string(), name.to_string()),
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        self
    }

    /// A probe namespace of an earlier run whose deletion was asked for `ago`
    /// and that a finalizer still holds.
    pub(crate) fn with_terminating_probe_namespace(
        self,
        name: &str,
        ago: Duration,
    ) -> CannedCluster {
        let labels = BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())]);
        self.state().namespaces.insert(
            name.to_string(),
            Namespace {
                labels,
                deleting_since: Some(SystemTime::now() - ago),
                stuck: true,
            },
        );
        self
    }

    /// An event in `namespace`, as the scheduler or a kubelet would have written it.
    pub(crate) fn with_event(self, namespace: &str, event: ObservedEvent) -> CannedCluster {
        self.state().events.push((namespace.to_string(), event));
        self
    }

    /// Pods whose name starts with `prefix` end as `end` once created.
    pub(crate) fn pods_end(self, prefix: &str, end: PodEnd) -> CannedCluster {
        self.state().pod_ends.push((prefix.to_string(), end));
        self
    }

    /// Every pod created in `namespace`, in order, as it was asked for; pods
    /// deleted since (with their namespace) too.
    pub(crate) fn created_pods(&self, namespace: &str) -> Vec<ProbePod> {
        self.state()
            .created
            .iter()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, pod)| pod.clone())
            .collect()
    }

    /// Every pod created, in any namespace, as `(namespace, pod)`.
    pub(crate) fn all_created_pods(&self) -> Vec<(String, ProbePod)> {
        self.state().created.clone()
    }

    /// Every namespace, with its labels and whether it is terminating.
    pub(crate) fn namespaces(&self) -> Vec<(String, BTreeMap<String, String>, bool)> {
        self.state()
            .namespaces
            .iter()
            .map(|(name, n)| (name.clone(), n.labels.clone(), n.deleting_since.is_some()))
            .collect()
    }

    /// The data of a ConfigMap, if it exists.
    pub(crate) fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<BTreeMap<String, String>> {
        self.state()
            .config_maps
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// The error of a call the double does not model.
fn not_canned<T: Send + 'static>(call: &str) -> BoxFuture<'static, Result<T, Error>> {
    let error = Error::failed(format!(
        "cannot {call}: the canned cluster does not answer it"
    ))
    .hint("use the in-memory API server (tests/support/fake_kube.rs) for this call");
    Box::pin(async move { Err(error) })
}

/// Creating in `namespace` as the NamespaceLifecycle admission plugin allows it.
fn admit(state: &State, namespace: &str, action: &str) -> Result<(), Error> {
    match state.namespaces.get(namespace) {
        None => Err(
            Error::failed(format!("cannot {action} in namespace {namespace}"))
                .cause(format!("namespaces \"{namespace}\" not found")),
        ),
        Some(n) if n.deleting_since.is_some() => Err(Error::failed(format!(
            "cannot {action} in namespace {namespace}"
        ))
        .cause(format!(
            "unable to create new content in namespace {namespace} because it is being terminated"
        ))),
        Some(_) => Ok(()),
    }
}

fn already_exists(action: &str, resource: &str, name: &str) -> Error {
    Error::failed(format!("cannot {action}")).cause(format!("{resource} \"{name}\" already exists"))
}

/// A pod as `end` leaves it.
fn ended(name: &str, end: &PodEnd) -> ObservedPod {
    let mut pod = pending(name);
    match end {
        PodEnd::Exits { code, .. } => {
            pod.phase = if *code == 0 { "Succeeded" } else { "Failed" }.into();
            pod.container = Some(ContainerState::Terminated {
                exit_code: *code,
                reason: if *code == 0 { "Completed" } else { "Error" }.into(),
                message: String::new(),
            });
        }
        PodEnd::Runs => {
            pod.phase = "Running".into();
            pod.container = Some(ContainerState::Running);
        }
        PodEnd::Unschedulable { message } => {
            pod.unscheduled = Some(format!("Unschedulable: {message}"));
        }
        PodEnd::Waiting { reason, message } => {
            pod.container = Some(ContainerState::Waiting {
                reason: reason.clone(),
                message: message.clone(),
            });
        }
    }
    pod
}

fn pending(name: &str) -> ObservedPod {
    ObservedPod {
        name: name.to_string(),
        phase: "Pending".into(),
        container: None,
        unscheduled: None,
        reason: None,
    }
}

impl ClusterApi for CannedCluster {
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<ObservedApiNode>, Error>> {
        Box::pin(async move {
            let mut nodes: Vec<ObservedApiNode> = self
                .state()
                .nodes
                .iter()
                .map(|n| ObservedApiNode {
                    name: n.name.clone(),
                    ready: n.ready,
                    reason: n.reason.clone(),
                    kubelet_version: n.kubelet_version.clone(),
                })
                .collect();
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(nodes)
        })
    }

    fn coredns_available(&self) -> BoxFuture<'_, Result<bool, Error>> {
        Box::pin(async move { Ok(self.state().coredns_available) })
    }

    fn write_record<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        json_text: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut state = self.state();
            admit(
                &state,
                namespace,
                &format!("write ConfigMap {namespace}/{name}"),
            )?;
            // Server-side apply creates or replaces.
            state.config_maps.insert(
                (namespace.to_string(), name.to_string()),
                BTreeMap::from([("record.json".to_string(), json_text.to_string())]),
            );
            Ok(())
        })
    }

    fn read_record<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, Error>> {
        Box::pin(async move {
            Ok(self
                .config_map(namespace, name)
                .and_then(|data| data.get("record.json").cloned()))
        })
    }

    fn fix_local_path_tolerations(
        &self,
        _deadline: Instant,
    ) -> BoxFuture<'_, Result<StorageFix, Error>> {
        let installed = self
            .config_map("local-path-storage", "local-path-config")
            .is_some_and(|data| data.contains_key("helperPod.yaml"));
        if installed {
            // Patching the template and awaiting the provisioner's rollout needs
            // deployments, which the double does not keep.
            return not_canned("patch ConfigMap local-path-storage/local-path-config");
        }
        Box::pin(async { Ok(StorageFix::NotInstalled) })
    }

    fn apply<'a>(&'a self, _documents: &'a [Value]) -> BoxFuture<'a, Result<(), Error>> {
        not_canned("apply manifests")
    }

    fn wait_established<'a>(
        &'a self,
        _names: &'a [String],
        _deadline: Instant,
    ) -> BoxFuture<'a, Result<(), Error>> {
        not_canned("get customresourcedefinitions")
    }

    fn wait_pods_ready<'a>(
        &'a self,
        _namespace: &'a str,
        _selector: &'a BTreeMap<String, String>,
        _deadline: Instant,
    ) -> BoxFuture<'a, Result<(), Error>> {
        not_canned("list add-on pods")
    }

    fn server_version(&self) -> BoxFuture<'_, Result<(u32, u32), Error>> {
        Box::pin(async move { Ok(self.state().version) })
    }

    fn probe_nodes(&self) -> BoxFuture<'_, Result<Vec<ProbeNode>, Error>> {
        Box::pin(async move {
            let mut nodes: Vec<ProbeNode> = self
                .state()
                .nodes
                .iter()
                .map(|n| ProbeNode {
                    name: n.name.clone(),
                    taints: n.taints.clone(),
                    unschedulable: n.unschedulable,
                    ready: n.ready,
                    addresses: n.addresses.clone(),
                })
                .collect();
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(nodes)
        })
    }

    fn create_namespace<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut state = self.state();
            if state.namespaces.contains_key(name) {
                return Err(already_exists("create namespaces", "namespaces", name));
            }
            let mut labels = BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())]);
            for label in POD_SECURITY_LABELS {
                labels.insert(label.to_string(), "privileged".to_string());
            }
            state.namespaces.insert(
                name.to_string(),
                Namespace {
                    labels,
                    deleting_since: None,
                    stuck: false,
                },
            );
            Ok(())
        })
    }

    fn wait_default_service_account<'a>(
        &'a self,
        namespace: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            loop {
                if self.state().namespaces.contains_key(namespace) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(Error::failed(format!(
                        "the `default` ServiceAccount of namespace {namespace} did not appear in time"
                    )));
                }
                tokio::time::sleep(
                    Duration::from_millis(20)
                        .min(deadline.saturating_duration_since(Instant::now())),
                )
                .await;
            }
        })
    }

    fn node_ports_in_use(&self) -> BoxFuture<'_, Result<Vec<(u16, String)>, Error>> {
        Box::pin(async move { Ok(self.state().node_ports.clone()) })
    }

    fn stuck_probe_namespaces(
        &self,
        older_than: Duration,
    ) -> BoxFuture<'_, Result<Vec<(String, Duration)>, Error>> {
        Box::pin(async move {
            let now = SystemTime::now();
            Ok(self
                .state()
                .namespaces
                .iter()
                .filter(|(_, n)| {
                    n.labels.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
                })
                .filter_map(|(name, n)| {
                    let age = now.duration_since(n.deleting_since?).unwrap_or_default();
                    (name.starts_with("devcluster-verify-") && age >= older_than)
                        .then(|| (name.clone(), age))
                })
                .collect())
        })
    }

    fn delete_namespace<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut state = self.state();
            let Some(namespace) = state.namespaces.get_mut(name) else {
                return Ok(());
            };
            if namespace.stuck {
                namespace.deleting_since.get_or_insert_with(SystemTime::now);
                return Ok(());
            }
            state.namespaces.remove(name);
            state.config_maps.retain(|(ns, _), _| ns != name);
            state.claims.retain(|(ns, _), _| ns != name);
            state.pods.retain(|((ns, _), _)| ns != name);
            state.events.retain(|(ns, _)| ns != name);
            Ok(())
        })
    }

    fn create_config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        data: BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut state = self.state();
            admit(&state, namespace, "create configmaps")?;
            let key = (namespace.to_string(), name.to_string());
            if state.config_maps.contains_key(&key) {
                return Err(already_exists("create configmaps", "configmaps", name));
            }
            state.config_maps.insert(key, data);
            Ok(())
        })
    }

    fn default_storage_class(&self) -> BoxFuture<'_, Result<Option<String>, Error>> {
        Box::pin(async move { Ok(self.state().default_storage_class.clone()) })
    }

    fn create_claim<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        _class: &'a str,
        access_mode: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let mut state = self.state();
            admit(&state, namespace, "create persistentvolumeclaims")?;
            // Validation refuses (422) an access mode the server does not know:
            // ReadWriteOncePod is on by default from 1.27 (beta), GA in 1.29
            // (`pkg/apis/core/validation/validation.go`, `ValidatePersistentVolumeClaimSpec`).
            let known = match access_mode {
                "ReadWriteOnce" | "ReadOnlyMany" | "ReadWriteMany" => true,
                "ReadWriteOncePod" => state.version >= (1, 27),
                _ => false,
            };
            if !known {
                return Ok(false);
            }
            let key = (namespace.to_string(), name.to_string());
            if state.claims.contains_key(&key) {
                return Err(already_exists(
                    "create persistentvolumeclaims",
                    "persistentvolumeclaims",
                    name,
                ));
            }
            let uid = format!("00000000-0000-0000-0000-{:012}", state.claims.len() + 1);
            state.claims.insert(key, (access_mode.to_string(), uid));
            Ok(true)
        })
    }

    fn helper_image(&self) -> BoxFuture<'_, Result<Option<String>, Error>> {
        Box::pin(async move {
            Ok(self
                .config_map("local-path-storage", "local-path-config")
                .and_then(|data| data.get("helperPod.yaml").cloned())
                .as_deref()
                .and_then(crate::adapters::kube::probe::helper_image_of))
        })
    }

    fn pending_pods<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, Error>> {
        Box::pin(async move {
            Ok(self
                .state()
                .pods
                .iter()
                .filter(|((ns, _), pod)| ns == namespace && pod.observed.phase == "Pending")
                .map(|((_, name), pod)| {
                    let message = pod
                        .observed
                        .unscheduled
                        .as_deref()
                        .and_then(|u| u.strip_prefix("Unschedulable: "))
                        .unwrap_or_default();
                    (name.clone(), message.to_string())
                })
                .collect())
        })
    }

    fn create_pod<'a>(
        &'a self,
        namespace: &'a str,
        probe: &'a ProbePod,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut state = self.state();
            admit(&state, namespace, "create pods")?;
            let key = (namespace.to_string(), probe.name.clone());
            if state.pods.iter().any(|(k, _)| *k == key) {
                return Err(already_exists("create pods", "pods", &probe.name));
            }
            let end = state
                .pod_ends
                .iter()
                .filter(|(prefix, _)| probe.name.starts_with(prefix.as_str()))
                .max_by_key(|(prefix, _)| prefix.len())
                .map(|(_, end)| end.clone());
            let created = pending(&probe.name);
            let _ = self
                .pod_changes
                .send((namespace.to_string(), Change::Applied(created.clone())));
            let (observed, logs) = match &end {
                Some(end) => {
                    let observed = ended(&probe.name, end);
                    let _ = self
                        .pod_changes
                        .send((namespace.to_string(), Change::Applied(observed.clone())));
                    let logs = match end {
                        PodEnd::Exits { logs, .. } => logs.clone(),
                        _ => String::new(),
                    };
                    (observed, logs)
                }
                None => (created, String::new()),
            };
            state.created.push((namespace.to_string(), probe.clone()));
            state.pods.push((key, Pod { observed, logs }));
            Ok(())
        })
    }

    fn events<'a>(
        &'a self,
        namespace: &'a str,
        kind: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, Error>> {
        Box::pin(async move {
            Ok(self
                .state()
                .events
                .iter()
                .filter(|(ns, e)| ns == namespace && e.kind == kind && e.object == name)
                .map(|(_, e)| format!("{}: {}", e.reason, e.message))
                .collect())
        })
    }

    fn claim_uid<'a>(&'a self, namespace: &'a str, name: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            self.state()
                .claims
                .get(&(namespace.to_string(), name.to_string()))
                .map(|(_, uid)| uid.clone())
        })
    }

    fn namespace_events<'a>(
        &'a self,
        namespace: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, Error>> {
        Box::pin(async move {
            Ok(self
                .state()
                .events
                .iter()
                .filter(|(ns, e)| ns == namespace && e.reason == reason)
                .map(|(_, e)| (e.object.clone(), e.message.clone()))
                .collect())
        })
    }

    fn pod_names<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<String>, Error>> {
        Box::pin(async move {
            Ok(self
                .state()
                .pods
                .iter()
                .filter(|((ns, _), _)| ns == namespace)
                .map(|((_, name), _)| name.clone())
                .collect())
        })
    }

    fn logs<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
    ) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(async move {
            self.state()
                .pods
                .iter()
                .find(|((ns, name), _)| ns == namespace && name == pod)
                .map(|(_, p)| p.logs.clone())
                .ok_or_else(|| {
                    Error::failed(format!("cannot get pods/log in namespace {namespace}"))
                        .cause(format!("pods \"{pod}\" not found"))
                })
        })
    }

    /// A canned pod has ended by the time it is seen started: its logs are all
    /// there, as a follow of an ended container's logs returns them.
    fn logs_reach<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        line: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, Error>> {
        Box::pin(async move {
            let logs = self.logs(namespace, pod).await?;
            let through = logs.lines().position(|l| l == line);
            Ok(through.map(|at| {
                logs.lines()
                    .take(at + 1)
                    .map(|l| format!("{l}\n"))
                    .collect()
            }))
        })
    }

    fn create_echo_routes<'a>(
        &'a self,
        _namespace: &'a str,
        _documents: &'a [Value],
    ) -> BoxFuture<'a, Result<(), Error>> {
        not_canned("create services")
    }

    fn http_route_parents<'a>(
        &'a self,
        _namespace: &'a str,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ObservedRouteParent>, Error>> {
        not_canned("get httproutes")
    }

    fn watch_pods(&self, namespace: &str, mut on_change: OnChange<ObservedPod>) -> WatchHandle {
        // The list and the subscription under one lock: no change falls between.
        let (listed, mut changes) = {
            let state = self.state();
            let listed: Vec<ObservedPod> = state
                .pods
                .iter()
                .filter(|((ns, _), _)| ns == namespace)
                .map(|(_, p)| p.observed.clone())
                .collect();
            (listed, self.pod_changes.subscribe())
        };
        let namespace = namespace.to_string();
        WatchHandle(tokio::spawn(async move {
            on_change(Change::Reset(listed));
            while let Ok((ns, change)) = changes.recv().await {
                if ns == namespace {
                    on_change(change);
                }
            }
        }))
    }

    fn watch_events(&self, namespace: &str, mut on_change: OnChange<ObservedEvent>) -> WatchHandle {
        let listed: Vec<ObservedEvent> = self
            .state()
            .events
            .iter()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, e)| e.clone())
            .collect();
        // Nothing writes events after the start, so the list is all there is.
        WatchHandle(tokio::spawn(async move {
            on_change(Change::Reset(listed));
            std::future::pending::<()>().await;
        }))
    }
}

/// A small probe pod on `n1` named `name`, for tests that only need a pod to exist.
pub(crate) fn probe_pod(name: &str) -> ProbePod {
    ProbePod {
        name: name.to_string(),
        node: Some("n1".into()),
        via_scheduler: false,
        tolerations: Vec::new(),
        image: "busybox".into(),
        pull_policy: "IfNotPresent".into(),
        script: "true".into(),
        volumes: Vec::new(),
        run_as_root: false,
        stdin: false,
        host_network: false,
        labels: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn namespaces_admit_and_delete_as_the_api_server_does() {
        let api = CannedCluster::ready(&["n1"])
            .with_terminating_probe_namespace("devcluster-verify-old", Duration::from_secs(600));
        api.create_namespace("devcluster-verify-a")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let twice = api.create_namespace("devcluster-verify-a").await;
        assert!(
            twice.is_err_and(|e| e.render().contains("already exists")),
            "a second create is a conflict"
        );
        let labels = api
            .namespaces()
            .into_iter()
            .find(|(name, _, _)| name == "devcluster-verify-a")
            .map(|(_, labels, _)| labels)
            .unwrap_or_default();
        assert_eq!(
            labels
                .get("pod-security.kubernetes.io/enforce")
                .map(String::as_str),
            Some("privileged")
        );
        // Nothing is made in a namespace that is not there, or one being deleted.
        let missing = api.create_pod("nowhere", &probe_pod("p")).await;
        assert!(missing.is_err_and(|e| e.render().contains("namespaces \"nowhere\" not found")));
        let terminating = api
            .create_pod("devcluster-verify-old", &probe_pod("p"))
            .await;
        assert!(terminating.is_err_and(|e| e.render().contains("being terminated")));
        // A deletion takes everything in the namespace with it; a finalizer that
        // never goes keeps the namespace terminating, reported once old enough.
        api.create_pod("devcluster-verify-a", &probe_pod("p"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        api.delete_namespace("devcluster-verify-a")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        api.delete_namespace("devcluster-verify-old")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(api.created_pods("devcluster-verify-a").len(), 1);
        assert!(
            api.pod_names("devcluster-verify-a")
                .await
                .unwrap_or_default()
                .is_empty()
        );
        let names: Vec<String> = api.namespaces().into_iter().map(|(n, _, _)| n).collect();
        assert!(
            !names.contains(&"devcluster-verify-a".to_string()),
            "{names:?}"
        );
        let stuck = api
            .stuck_probe_namespaces(Duration::from_secs(300))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stuck.len(), 1, "{stuck:?}");
        assert_eq!(stuck[0].0, "devcluster-verify-old");
        assert!(stuck[0].1 >= Duration::from_secs(600));
        let younger = api
            .stuck_probe_namespaces(Duration::from_secs(3600))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(younger.is_empty());
    }

    #[tokio::test]
    async fn a_watch_sees_each_pod_created_then_how_it_ends() {
        let api = CannedCluster::ready(&["n1"])
            .pods_end(
                "ok-",
                PodEnd::Exits {
                    code: 0,
                    logs: "fine\n".into(),
                },
            )
            .pods_end(
                "ok-but-",
                PodEnd::Exits {
                    code: 3,
                    logs: String::new(),
                },
            );
        api.create_namespace("ns")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (sender, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let _watch = api.watch_pods(
            "ns",
            Box::new(move |change| {
                let _ = sender.send(change);
            }),
        );
        assert_eq!(heard.recv().await, Some(Change::Reset(Vec::new())));
        for name in ["ok-1", "ok-but-2", "never"] {
            api.create_pod("ns", &probe_pod(name))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let mut last = BTreeMap::new();
        while last.len() < 3
            || last
                .get("ok-but-2")
                .is_some_and(|p: &ObservedPod| p.phase == "Pending")
        {
            match tokio::time::timeout(Duration::from_secs(5), heard.recv()).await {
                Ok(Some(Change::Applied(pod))) => {
                    last.insert(pod.name.clone(), pod);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(last["ok-1"].phase, "Succeeded");
        assert_eq!(
            last["ok-but-2"].phase, "Failed",
            "the longest prefix decides"
        );
        assert_eq!(
            last["ok-but-2"].container,
            Some(ContainerState::Terminated {
                exit_code: 3,
                reason: "Error".into(),
                message: String::new()
            })
        );
        assert_eq!(last["never"].phase, "Pending");
        assert_eq!(api.logs("ns", "ok-1").await.ok().as_deref(), Some("fine\n"));
        assert!(api.logs("ns", "gone").await.is_err());
        let pending = api
            .pending_pods("ns")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pending, vec![("never".to_string(), String::new())]);
    }

    #[tokio::test]
    async fn a_follow_of_an_ended_containers_logs_reads_through_the_line_or_finds_none() {
        let api = CannedCluster::ready(&["n1"]).pods_end(
            "p",
            PodEnd::Exits {
                code: 0,
                logs: "first\ndevcluster: ok\nafter\n".into(),
            },
        );
        api.create_namespace("ns")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        api.create_pod("ns", &probe_pod("p"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let through = api.logs_reach("ns", "p", "devcluster: ok").await;
        assert_eq!(
            through.ok().flatten().as_deref(),
            Some("first\ndevcluster: ok\n")
        );
        let never = api.logs_reach("ns", "p", "devcluster: wrong").await;
        assert_eq!(never.ok(), Some(None));
        assert!(
            api.logs_reach("ns", "gone", "devcluster: ok")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn calls_it_does_not_model_fail_saying_so() {
        let api = CannedCluster::ready(&["n1"]);
        let error = api
            .apply(&[serde_json::json!({"kind": "Namespace"})])
            .await
            .err()
            .map(|e| e.render())
            .unwrap_or_default();
        assert!(
            error.contains("the canned cluster does not answer it"),
            "{error}"
        );
        // Without local-path-provisioner there is nothing to fix; with it, the
        // fix needs a rollout the double does not keep.
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            api.fix_local_path_tolerations(deadline).await.ok(),
            Some(StorageFix::NotInstalled)
        );
        let installed = CannedCluster::ready(&["n1"]).with_config_map(
            "local-path-storage",
            "local-path-config",
            &[(
                "helperPod.yaml",
                "spec:\n  containers:\n  - image: helper:1\n",
            )],
        );
        assert!(
            installed
                .fix_local_path_tolerations(deadline)
                .await
                .is_err()
        );
        assert_eq!(
            installed.helper_image().await.ok().flatten().as_deref(),
            Some("helper:1")
        );
    }
}
