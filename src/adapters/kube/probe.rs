//! What `devcluster verify` asks of a cluster's API: nodes with their taints, a
//! temporary namespace, probe pods pinned to one node each, ConfigMaps, claims, and
//! what the scheduler and kubelet said about them (events).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, Node, PersistentVolumeClaim, Pod, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use crate::adapters::kube::Refusal;
pub use crate::adapters::kube::client::server_url;
use crate::adapters::kube::client::{Call, Kube, is_status};
use crate::core::error::Error;
use crate::core::plan::{Taint, TaintEffect};

/// Label on everything verify creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "devcluster");
/// Pod Security admission's namespace labels, all set to `privileged` on the probe
/// namespace: hostPath probes are refused at `baseline` and `restricted`, the
/// levels hardened clusters enforce by default.
pub const POD_SECURITY_LABELS: [&str; 3] = [
    "pod-security.kubernetes.io/enforce",
    "pod-security.kubernetes.io/audit",
    "pod-security.kubernetes.io/warn",
];
/// A node as verification needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeNode {
    pub name: String,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub ready: bool,
    /// InternalIP and Hostname addresses.
    pub addresses: Vec<String>,
}

/// Where a probe volume comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// `hostPath` with type `Directory` or `File`.
    HostPath {
        path: String,
        file: bool,
    },
    /// One ConfigMap key.
    ConfigMap {
        name: String,
    },
    Claim {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeVolume {
    pub source: VolumeSource,
    pub mount_path: String,
    pub sub_path: Option<String>,
    pub read_only: bool,
}

/// A probe pod: one node, one script, a few volumes, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePod {
    pub name: String,
    pub node: Option<String>,
    /// Pin through the scheduler (a `kubernetes.io/hostname` selector) rather than
    /// `nodeName`: claims that wait for their first consumer are provisioned only
    /// for pods the scheduler places, and ReadWriteOncePod is enforced there.
    pub via_scheduler: bool,
    pub tolerations: Vec<Taint>,
    pub image: String,
    pub pull_policy: String,
    /// What the container runs with `sh -c`; empty runs the image's own entrypoint
    /// and command (an image that may have no shell).
    pub script: String,
    pub volumes: Vec<ProbeVolume>,
    /// hostPath writes need root in the pod (the host directory is root-owned);
    /// every other probe runs as a non-root user.
    pub run_as_root: bool,
    /// Keep stdin open, so a shell can wait on it without a `sleep` binary.
    pub stdin: bool,
    /// Share the node's network namespace. A probe that only reads and writes
    /// files needs no network of its own, and a pod without one skips the CNI
    /// plugin's setup and teardown, the larger part of a pod's start on a busy node.
    pub host_network: bool,
    pub labels: BTreeMap<String, String>,
}

impl Kube {
    /// `major.minor` of the API server.
    pub async fn server_version(&self) -> Result<(u32, u32), Error> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| self.fail(Call::new("get", "/version"), e))?;
        let major = info.major.trim_end_matches('+').parse().unwrap_or(1);
        let minor = info.minor.trim_end_matches('+').parse().unwrap_or(0);
        Ok((major, minor))
    }

    /// Nodes with what placing a probe pod needs: taints, schedulability, addresses.
    pub async fn probe_nodes(&self) -> Result<Vec<ProbeNode>, Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.fail(Call::new("list", "nodes"), e))?;
        let mut nodes: Vec<ProbeNode> = list
            .items
            .into_iter()
            .map(|node| {
                let spec = node.spec.unwrap_or_default();
                let status = node.status.unwrap_or_default();
                ProbeNode {
                    name: node.metadata.name.unwrap_or_default(),
                    taints: spec
                        .taints
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|t| {
                            let effect = match t.effect.as_str() {
                                "NoSchedule" => TaintEffect::NoSchedule,
                                "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
                                "NoExecute" => TaintEffect::NoExecute,
                                _ => return None,
                            };
                            Some(Taint {
                                key: t.key,
                                value: t.value.filter(|v| !v.is_empty()),
                                effect,
                                implicit: false,
                            })
                        })
                        .collect(),
                    unschedulable: spec.unschedulable.unwrap_or(false),
                    ready: status
                        .conditions
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True"),
                    addresses: status
                        .addresses
                        .unwrap_or_default()
                        .into_iter()
                        .map(|a| a.address)
                        .collect(),
                }
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nodes)
    }

    pub async fn create_namespace(&self, name: &str) -> Result<(), Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut labels = serde_json::Map::new();
        labels.insert(MANAGED_BY.0.into(), json!(MANAGED_BY.1));
        for label in POD_SECURITY_LABELS {
            labels.insert(label.into(), json!("privileged"));
        }
        let namespace: Namespace = from_json(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}
        }))?;
        api.create(&PostParams::default(), &namespace)
            .await
            .map_err(|e| self.fail(Call::new("create", "namespaces"), e))?;
        Ok(())
    }

    /// Makes sure of the namespace's `default` ServiceAccount: until it exists the
    /// ServiceAccount admission plugin refuses every pod with 403. The
    /// ServiceAccount controller creates it asynchronously after the namespace, a
    /// few hundred milliseconds later on a busy cluster; creating it here does not
    /// wait for that, and the controller leaves an existing one alone
    /// (`pkg/controller/serviceaccount/serviceaccounts_controller.go`, `syncNamespace`
    /// ignores AlreadyExists). When this user may not create it, waits for the
    /// controller's; when it may not read it either, returns at once (pod creation
    /// retries instead).
    pub async fn wait_default_service_account(
        &self,
        namespace: &str,
        deadline: Instant,
    ) -> Result<(), Error> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let account: ServiceAccount = from_json(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": namespace}
        }))?;
        match api.create(&PostParams::default(), &account).await {
            Ok(_) => return Ok(()),
            Err(e) if is_status(&e, 409) => return Ok(()),
            // Forbidden, or refused otherwise: the controller's will do.
            Err(_) => {}
        }
        loop {
            match api.get_opt("default").await {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {}
                Err(e) if is_status(&e, 403) => return Ok(()),
                Err(e) => {
                    return Err(self.fail(Call::within(namespace, "get", "serviceaccounts"), e));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::failed(format!(
                    "the `default` ServiceAccount of namespace {namespace} did not appear in time"
                ))
                .hint("the ServiceAccount controller (kube-controller-manager) creates it; look at `kubectl -n kube-system get pods`"));
            }
            tokio::time::sleep(
                Duration::from_millis(100).min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
    }

    /// Node ports Services of the cluster hold, as `(port, "namespace/name")`.
    pub async fn node_ports_in_use(&self) -> Result<Vec<(u16, String)>, Error> {
        let api: Api<Service> = Api::all(self.client.clone());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.fail(Call::new("list", "services"), e))?;
        let mut ports = Vec::new();
        for service in list.items {
            let name = format!(
                "{}/{}",
                service.metadata.namespace.unwrap_or_default(),
                service.metadata.name.unwrap_or_default()
            );
            for port in service.spec.and_then(|s| s.ports).unwrap_or_default() {
                if let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) {
                    ports.push((node_port, name.clone()));
                }
            }
        }
        Ok(ports)
    }

    /// Probe namespaces whose deletion was requested at least `older_than` ago and
    /// that are still there, with how long ago: a deletion the namespace
    /// controller cannot finish (a finalizer that never goes, an API service that
    /// does not answer its discovery).
    pub async fn stuck_probe_namespaces(
        &self,
        older_than: Duration,
    ) -> Result<Vec<(String, Duration)>, Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let params = ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
        let list = api
            .list(&params)
            .await
            .map_err(|e| self.fail(Call::new("list", "namespaces"), e))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Ok(list
            .items
            .into_iter()
            .filter_map(|n| {
                let name = n.metadata.name?;
                let deleted = n.metadata.deletion_timestamp?.0.as_second();
                let age = Duration::from_secs(u64::try_from(now - deleted).unwrap_or(0));
                (name.starts_with("devcluster-verify-") && age >= older_than).then_some((name, age))
            })
            .collect())
    }

    /// Deletes the namespace and everything in it; a missing one is fine.
    pub async fn delete_namespace(&self, name: &str) -> Result<(), Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(self.fail(Call::new("delete", "namespaces"), e)),
        }
    }

    pub async fn create_config_map(
        &self,
        namespace: &str,
        name: &str,
        data: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let config_map: ConfigMap = from_json(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {MANAGED_BY.0: MANAGED_BY.1}},
            "data": data
        }))?;
        api.create(&PostParams::default(), &config_map)
            .await
            .map_err(|e| self.fail(Call::within(namespace, "create", "configmaps"), e))?;
        Ok(())
    }

    /// The default StorageClass's name, if the cluster has one.
    pub async fn default_storage_class(&self) -> Result<Option<String>, Error> {
        let api: Api<StorageClass> = Api::all(self.client.clone());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.fail(Call::new("list", "storageclasses"), e))?;
        Ok(list.items.into_iter().find_map(|class| {
            let annotations = class.metadata.annotations.unwrap_or_default();
            let default = [
                "storageclass.kubernetes.io/is-default-class",
                "storageclass.beta.kubernetes.io/is-default-class",
            ]
            .iter()
            .any(|key| annotations.get(*key).is_some_and(|v| v == "true"));
            default.then(|| class.metadata.name.unwrap_or_default())
        }))
    }

    /// Creates a 16 MiB claim. `Ok(false)` when the API rejects the access mode.
    pub async fn create_claim(
        &self,
        namespace: &str,
        name: &str,
        class: &str,
        access_mode: &str,
    ) -> Result<bool, Error> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        let claim: PersistentVolumeClaim = from_json(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace, "labels": {MANAGED_BY.0: MANAGED_BY.1}},
            "spec": {"accessModes": [access_mode], "storageClassName": class, "resources": {"requests": {"storage": "16Mi"}}}
        }))?;
        match api.create(&PostParams::default(), &claim).await {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 422) => Ok(false),
            Err(e) => Err(self.fail(
                Call::within(namespace, "create", "persistentvolumeclaims"),
                e,
            )),
        }
    }

    /// The image of local-path-provisioner's helper pod, which kind node images
    /// preload (`local-path-storage/local-path-config`, key `helperPod.yaml`).
    pub async fn helper_image(&self) -> Result<Option<String>, Error> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), "local-path-storage");
        let config_map = match api.get_opt("local-path-config").await {
            Ok(c) => c,
            Err(e) if is_status(&e, 403) => return Ok(None),
            Err(e) => {
                return Err(self.fail(Call::within("local-path-storage", "get", "configmaps"), e));
            }
        };
        let helper = config_map
            .and_then(|c| c.data)
            .and_then(|d| d.get("helperPod.yaml").cloned());
        Ok(helper.as_deref().and_then(helper_image_of))
    }

    /// Pods in `namespace` that are Pending, with their scheduler message.
    pub async fn pending_pods(&self, namespace: &str) -> Result<Vec<(String, String)>, Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(e) if is_status(&e, 403) || is_status(&e, 404) => return Ok(Vec::new()),
            Err(e) => return Err(self.fail(Call::within(namespace, "list", "pods"), e)),
        };
        Ok(list
            .items
            .into_iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
            .map(|p| {
                let message = p
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                    .and_then(|c| c.message)
                    .unwrap_or_default();
                (p.metadata.name.unwrap_or_default(), message)
            })
            .collect())
    }

    /// Creates the probe pod.
    pub async fn create_pod(&self, namespace: &str, probe: &ProbePod) -> Result<(), Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pod: Pod = from_json(pod_manifest(namespace, probe))?;
        // A namespace's `default` ServiceAccount may still be on its way (see
        // `wait_default_service_account`): that refusal is retried for a while.
        let patience = Instant::now() + Duration::from_secs(10);
        loop {
            match api.create(&PostParams::default(), &pod).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status))
                    if status.code == 403
                        && Refusal::of(&status.message) == Refusal::ServiceAccountMissing
                        && Instant::now() < patience =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(self.fail(Call::within(namespace, "create", "pods"), e)),
            }
        }
    }

    /// Events about one object, oldest first, as `Reason: message`.
    pub async fn events(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Result<Vec<String>, Error> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().fields(&format!(
            "involvedObject.kind={kind},involvedObject.name={name}"
        ));
        let list = api
            .list(&params)
            .await
            .map_err(|e| self.fail(Call::within(namespace, "list", "events"), e))?;
        Ok(list
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
            .collect())
    }

    /// The UID of a claim (the volume provisioned for it is `pvc-<UID>`).
    pub async fn claim_uid(&self, namespace: &str, name: &str) -> Option<String> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.ok().flatten()?.metadata.uid
    }

    /// Events in `namespace` with `reason`, as `(object name, message)`, oldest first.
    pub async fn namespace_events(
        &self,
        namespace: &str,
        reason: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(e) if is_status(&e, 403) || is_status(&e, 404) => return Ok(Vec::new()),
            Err(e) => return Err(self.fail(Call::within(namespace, "list", "events"), e)),
        };
        Ok(list
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| {
                (
                    e.involved_object.name.unwrap_or_default(),
                    e.message.unwrap_or_default(),
                )
            })
            .collect())
    }

    /// Names of the pods in `namespace`.
    pub async fn pod_names(&self, namespace: &str) -> Result<Vec<String>, Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.fail(Call::within(namespace, "list", "pods"), e))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect())
    }

    /// A pod's logs (empty when it has none yet).
    pub async fn logs(&self, namespace: &str, pod: &str) -> Result<String, Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        api.logs(pod, &LogParams::default())
            .await
            .map_err(|e| self.fail(Call::within(namespace, "get", "pods/log"), e))
    }

    /// Follows a started container's logs until a line is `line`: the logs up
    /// to it, or `None` when they end (the container did) without it.
    pub async fn logs_reach(
        &self,
        namespace: &str,
        pod: &str,
        line: &str,
    ) -> Result<Option<String>, Error> {
        use futures_util::{AsyncBufReadExt, StreamExt};
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            follow: true,
            ..LogParams::default()
        };
        let failed = |e| self.fail(Call::within(namespace, "get", "pods/log"), e);
        let mut lines = api.log_stream(pod, &params).await.map_err(failed)?.lines();
        let mut read = String::new();
        while let Some(next) = lines.next().await {
            let Ok(next) = next else {
                return Ok(None);
            };
            read.push_str(&next);
            read.push('\n');
            if next == line {
                return Ok(Some(read));
            }
        }
        Ok(None)
    }

    /// Creates a Service (and, with a host, an Ingress) for the echo backend.
    pub async fn create_echo_routes(
        &self,
        namespace: &str,
        documents: &[Value],
    ) -> Result<(), Error> {
        for document in documents {
            match document.get("kind").and_then(Value::as_str) {
                Some("Service") => {
                    let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
                    api.create(&PostParams::default(), &from_json(document.clone())?)
                        .await
                        .map_err(|e| self.fail(Call::within(namespace, "create", "services"), e))?;
                }
                Some("Ingress") => {
                    let api: Api<Ingress> = Api::namespaced(self.client.clone(), namespace);
                    api.create(&PostParams::default(), &from_json(document.clone())?)
                        .await
                        .map_err(|e| {
                            self.fail(Call::within(namespace, "create", "ingresses"), e)
                        })?;
                }
                Some("HTTPRoute") => {
                    let api = http_routes(&self.client, namespace);
                    let route: DynamicObject = from_json(document.clone())?;
                    api.create(&PostParams::default(), &route)
                        .await
                        .map_err(|e| {
                            self.fail(Call::within(namespace, "create", "httproutes"), e)
                        })?;
                }
                other => {
                    return Err(Error::failed(format!(
                        "unexpected object {other:?} in the echo template"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What the controllers that process an HTTPRoute wrote about one of its parents
/// (`status.parents[]` of Gateway API's `HTTPRoute`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRouteParent {
    pub gateway_namespace: String,
    pub gateway_name: String,
    pub controller: String,
    /// `(type, status, reason, message)` of each condition.
    pub conditions: Vec<(String, String, String, String)>,
}

fn http_routes(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "httproutes");
    Api::namespaced_with(client.clone(), namespace, &resource)
}

impl Kube {
    /// The parents an HTTPRoute's status reports; a parent's namespace defaults to
    /// the route's, as the Gateway API's `ParentReference` says.
    pub async fn http_route_parents(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<ObservedRouteParent>, Error> {
        let route = http_routes(&self.client, namespace)
            .get(name)
            .await
            .map_err(|e| self.fail(Call::within(namespace, "get", "httproutes"), e))?;
        let text =
            |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        let parents = route
            .data
            .pointer("/status/parents")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(parents
            .iter()
            .map(|parent| {
                let reference = parent.get("parentRef").cloned().unwrap_or(Value::Null);
                let gateway_namespace = match text(&reference, "namespace") {
                    n if n.is_empty() => namespace.to_string(),
                    n => n,
                };
                ObservedRouteParent {
                    gateway_namespace,
                    gateway_name: text(&reference, "name"),
                    controller: text(parent, "controllerName"),
                    conditions: parent
                        .get("conditions")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|c| {
                            (
                                text(c, "type"),
                                text(c, "status"),
                                text(c, "reason"),
                                text(c, "message"),
                            )
                        })
                        .collect(),
                }
            })
            .collect())
    }
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| Error::failed("cannot build a probe object").cause(e))
}

/// The probe pod as JSON. Only fields Kubernetes 1.20 already had.
pub fn pod_manifest(namespace: &str, probe: &ProbePod) -> Value {
    let tolerations: Vec<Value> = probe
        .tolerations
        .iter()
        .map(|t| match &t.value {
            Some(value) => json!({"key": t.key, "operator": "Equal", "value": value, "effect": t.effect.as_str()}),
            None => json!({"key": t.key, "operator": "Exists", "effect": t.effect.as_str()}),
        })
        .collect();
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (index, volume) in probe.volumes.iter().enumerate() {
        let name = format!("v{index}");
        let source = match &volume.source {
            VolumeSource::HostPath { path, file } => {
                json!({"hostPath": {"path": path, "type": if *file { "File" } else { "Directory" }}})
            }
            VolumeSource::ConfigMap { name } => json!({"configMap": {"name": name}}),
            VolumeSource::Claim { name } => json!({"persistentVolumeClaim": {"claimName": name}}),
        };
        let mut volume_json = json!({"name": name});
        if let (Some(object), Some(source)) = (volume_json.as_object_mut(), source.as_object()) {
            object.extend(source.clone());
        }
        volumes.push(volume_json);
        let mut mount =
            json!({"name": name, "mountPath": volume.mount_path, "readOnly": volume.read_only});
        if let (Some(sub_path), Some(object)) = (&volume.sub_path, mount.as_object_mut()) {
            object.insert("subPath".into(), json!(sub_path));
        }
        mounts.push(mount);
    }
    let security = if probe.run_as_root {
        json!({"allowPrivilegeEscalation": false, "privileged": false, "capabilities": {"drop": ["ALL"], "add": ["DAC_OVERRIDE", "CHOWN", "FOWNER"]}})
    } else {
        json!({"allowPrivilegeEscalation": false, "privileged": false, "runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534, "capabilities": {"drop": ["ALL"]}})
    };
    let mut labels = probe.labels.clone();
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    let mut spec = json!({
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "tolerations": tolerations,
        "containers": [{
            "name": "probe",
            "image": probe.image,
            "imagePullPolicy": probe.pull_policy,
            "command": ["sh", "-c", probe.script],
            "stdin": probe.stdin,
            "securityContext": security,
            "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
            "volumeMounts": mounts
        }],
        "volumes": volumes
    });
    if probe.host_network
        && let Some(object) = spec.as_object_mut()
    {
        object.insert("hostNetwork".into(), json!(true));
    }
    if probe.script.is_empty()
        && let Some(container) = spec
            .pointer_mut("/containers/0")
            .and_then(Value::as_object_mut)
    {
        container.remove("command");
    }
    if let (Some(node), Some(object)) = (&probe.node, spec.as_object_mut()) {
        if probe.via_scheduler {
            object.insert(
                "nodeSelector".into(),
                json!({"kubernetes.io/hostname": node}),
            );
        } else {
            object.insert("nodeName".into(), json!(node));
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": probe.name, "namespace": namespace, "labels": labels},
        "spec": spec
    })
}

/// The image of local-path-provisioner's helper pod, from its `helperPod.yaml`.
pub(crate) fn helper_image_of(helper_pod: &str) -> Option<String> {
    let pod: Value = crate::core::yaml::from_str(helper_pod).ok()?;
    pod.pointer("/spec/containers/0/image")
        .and_then(Value::as_str)
        .map(str::to_string)
}
