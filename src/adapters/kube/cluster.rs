//! What `up`, `status` and `down` ask of a cluster's API: node readiness, CoreDNS,
//! the devcluster record ConfigMap, applying add-on manifests, and the
//! local-path-provisioner toleration fix.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use crate::adapters::kube::client::{Call, is_status};
pub use crate::adapters::kube::client::{ClusterApi, Connector, Kube, install_crypto_provider};
use crate::core::error::Error;

/// Field manager name for server-side apply.
const FIELD_MANAGER: &str = "devcluster";
/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(1000);

/// A node as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObservedApiNode {
    pub name: String,
    pub ready: bool,
    /// Why it is not ready, from its Ready condition.
    pub reason: String,
    pub kubelet_version: String,
}

/// What the local-path toleration fix found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFix {
    /// The helper pod template did not tolerate NoSchedule and NoExecute taints;
    /// devcluster added the tolerations and the provisioner rolled out with them.
    Applied,
    /// The helper pods already tolerate every taint.
    NotNeeded,
    /// No local-path-provisioner in this cluster.
    NotInstalled,
}

impl Kube {
    /// Nodes with their Ready condition.
    pub async fn nodes(&self) -> Result<Vec<ObservedApiNode>, Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.fail(Call::admin("list nodes", "list", "nodes"), e))?;
        let mut nodes: Vec<ObservedApiNode> = list
            .items
            .into_iter()
            .map(|node| {
                let name = node.metadata.name.unwrap_or_default();
                let status = node.status.unwrap_or_default();
                let ready = status
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "Ready");
                let kubelet_version = status
                    .node_info
                    .map(|i| i.kubelet_version)
                    .unwrap_or_default();
                ObservedApiNode {
                    name,
                    ready: ready.as_ref().is_some_and(|c| c.status == "True"),
                    reason: ready
                        .map(|c| c.message.or(c.reason).unwrap_or_default())
                        .unwrap_or_else(|| "no Ready condition yet".into()),
                    kubelet_version,
                }
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nodes)
    }

    /// Whether the CoreDNS deployment has all its replicas available.
    pub async fn coredns_available(&self) -> Result<bool, Error> {
        self.deployment_available("kube-system", "coredns").await
    }

    /// Whether a deployment has all its wanted replicas available (`false` when missing).
    pub async fn deployment_available(&self, namespace: &str, name: &str) -> Result<bool, Error> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let deployment = api.get_opt(name).await.map_err(|e| {
            self.fail(
                Call::admin(
                    format!("read deployment {namespace}/{name}"),
                    "get",
                    "deployments",
                ),
                e,
            )
        })?;
        Ok(deployment.is_some_and(|d| {
            let wanted = d.spec.and_then(|s| s.replicas).unwrap_or(1);
            let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
            available >= wanted.max(1)
        }))
    }

    /// Writes the record ConfigMap (create or replace).
    pub async fn write_record(
        &self,
        namespace: &str,
        name: &str,
        json_text: &str,
    ) -> Result<(), Error> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let config_map: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "devcluster"}
            },
            "data": {"record.json": json_text}
        }))
        .map_err(|e| Error::failed("cannot build the record ConfigMap").cause(e))?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(name, &params, &Patch::Apply(&config_map))
            .await
            .map_err(|e| {
                self.fail(
                    Call::admin(
                        format!("write ConfigMap {namespace}/{name}"),
                        "patch",
                        "configmaps",
                    ),
                    e,
                )
            })?;
        Ok(())
    }

    /// Reads the record ConfigMap's JSON, if it exists.
    pub async fn read_record(&self, namespace: &str, name: &str) -> Result<Option<String>, Error> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let config_map = api.get_opt(name).await.map_err(|e| {
            self.fail(
                Call::admin(
                    format!("read ConfigMap {namespace}/{name}"),
                    "get",
                    "configmaps",
                ),
                e,
            )
        })?;
        Ok(config_map
            .and_then(|c| c.data)
            .and_then(|d| d.get("record.json").cloned()))
    }

    /// Gives local-path-provisioner's helper pods `operator: Exists` tolerations for
    /// NoSchedule and NoExecute taints when they lack them (what kind does after
    /// v0.32.0: kind#4100, PR #4210). local-path-provisioner v0.0.32+ (kind v0.31.0
    /// and v0.32.0 node images) dropped its tolerate-everything default. Its helper
    /// pods are bound with `nodeName` (`provisioner.go`, `createHelperPod`), so a
    /// NoSchedule taint never stops them, but the kubelet rejects them on a node with
    /// an untolerated NoExecute taint and the claim never binds.
    ///
    /// The template is `helperPod.yaml` in ConfigMap `local-path-storage/local-path-config`.
    /// The provisioner reads it when it starts (`NewProvisioner`) and re-reads the
    /// mounted file only every 30 s, after the kubelet has synced the ConfigMap
    /// volume, so the provisioner is restarted and its rollout awaited until
    /// `deadline`: until then the old pod still creates helpers from the old template.
    pub async fn fix_local_path_tolerations(&self, deadline: Instant) -> Result<StorageFix, Error> {
        let namespace = "local-path-storage";
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let Some(config_map) = api.get_opt("local-path-config").await.map_err(|e| {
            self.fail(
                Call::admin(
                    "read ConfigMap local-path-storage/local-path-config",
                    "get",
                    "configmaps",
                ),
                e,
            )
        })?
        else {
            return Ok(StorageFix::NotInstalled);
        };
        let data = config_map.data.unwrap_or_default();
        let Some(helper) = data.get("helperPod.yaml") else {
            return Ok(StorageFix::NotInstalled);
        };
        let Some(patched) = helper_with_toleration(helper)? else {
            // A fix applied by an earlier run may still be rolling out.
            self.wait_rollout(namespace, "local-path-provisioner", deadline)
                .await?;
            return Ok(StorageFix::NotNeeded);
        };
        let patch = json!({"data": {"helperPod.yaml": patched}});
        api.patch(
            "local-path-config",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| {
            self.fail(
                Call::admin(
                    "patch ConfigMap local-path-storage/local-path-config",
                    "patch",
                    "configmaps",
                ),
                e,
            )
        })?;
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let restart = json!({"spec": {"template": {"metadata": {"annotations": {
            "devcluster.dev/helper-tolerations": "added"
        }}}}});
        match deployments
            .patch(
                "local-path-provisioner",
                &PatchParams::default(),
                &Patch::Merge(&restart),
            )
            .await
        {
            Ok(_) => {
                self.wait_rollout(namespace, "local-path-provisioner", deadline)
                    .await?;
            }
            Err(e) if is_status(&e, 404) => {}
            Err(e) => {
                return Err(self.fail(
                    Call::admin("restart local-path-provisioner", "patch", "deployments"),
                    e,
                ));
            }
        }
        Ok(StorageFix::Applied)
    }

    /// Waits until a deployment's newest template is rolled out: the controller has
    /// seen the newest generation and every wanted replica is updated and
    /// available, with no old replica left (kubectl's `rollout status`,
    /// `polymorphichelpers/rollout_status.go`).
    pub async fn wait_rollout(
        &self,
        namespace: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<(), Error> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        loop {
            let deployment = api.get_opt(name).await.map_err(|e| {
                self.fail(
                    Call::admin(
                        format!("read deployment {namespace}/{name}"),
                        "get",
                        "deployments",
                    ),
                    e,
                )
            })?;
            let Some(deployment) = deployment else {
                return Ok(());
            };
            let generation = deployment.metadata.generation.unwrap_or(0);
            let wanted = deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(1);
            let status = deployment.status.unwrap_or_default();
            let waiting = if status.observed_generation.unwrap_or(0) < generation {
                Some("the new template is not observed yet".to_string())
            } else if status.updated_replicas.unwrap_or(0) < wanted {
                Some(format!(
                    "{} of {wanted} replicas updated",
                    status.updated_replicas.unwrap_or(0)
                ))
            } else if status.replicas.unwrap_or(0) > status.updated_replicas.unwrap_or(0) {
                Some("old replicas are still terminating".to_string())
            } else if status.available_replicas.unwrap_or(0) < wanted {
                Some(format!(
                    "{} of {wanted} updated replicas available",
                    status.available_replicas.unwrap_or(0)
                ))
            } else {
                None
            };
            let Some(waiting) = waiting else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(Error::failed(format!(
                    "deployment {namespace}/{name} did not finish rolling out in time"
                ))
                .cause(waiting)
                .hint(format!(
                    "look at `kubectl -n {namespace} rollout status deployment/{name}`"
                )));
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// Applies manifest documents with server-side apply, in order.
    pub async fn apply(&self, documents: &[Value]) -> Result<(), Error> {
        for document in documents {
            let object: DynamicObject = serde_json::from_value(document.clone()).map_err(|e| {
                Error::failed("a manifest document is not a Kubernetes object").cause(e)
            })?;
            let types = object.types.clone().unwrap_or_default();
            let name = object.metadata.name.clone().unwrap_or_default();
            let (group, version) = match types.api_version.split_once('/') {
                Some((group, version)) => (group.to_string(), version.to_string()),
                None => (String::new(), types.api_version.clone()),
            };
            let gvk = GroupVersionKind::gvk(&group, &version, &types.kind);
            let (resource, namespaced) = match known_resource(&types.kind) {
                Some((plural, namespaced)) => {
                    (ApiResource::from_gvk_with_plural(&gvk, plural), namespaced)
                }
                None => {
                    let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, &gvk)
                        .await
                        .map_err(|e| {
                            self.fail(
                                Call::admin(
                                    format!("find the API for {}", types.kind),
                                    "get",
                                    "apiresources",
                                ),
                                e,
                            )
                        })?;
                    (
                        resource,
                        capabilities.scope == kube::discovery::Scope::Namespaced,
                    )
                }
            };
            let api: Api<DynamicObject> = match (&object.metadata.namespace, namespaced) {
                (Some(namespace), true) => {
                    Api::namespaced_with(self.client.clone(), namespace, &resource)
                }
                (None, true) => Api::default_namespaced_with(self.client.clone(), &resource),
                (_, false) => Api::all_with(self.client.clone(), &resource),
            };
            let params = PatchParams::apply(FIELD_MANAGER).force();
            api.patch(&name, &params, &Patch::Apply(&object))
                .await
                .map_err(|e| {
                    self.fail(
                        Call::admin(format!("apply {} {name}", types.kind), "patch", "resources"),
                        e,
                    )
                })?;
        }
        Ok(())
    }

    /// Waits until the API server serves every CustomResourceDefinition named in
    /// `names` (condition `Established=True`, set by apiextensions-apiserver's
    /// establishing controller, `pkg/controller/establish/establishing_controller.go`);
    /// until then, objects of their kinds are refused as not found.
    pub async fn wait_established(&self, names: &[String], deadline: Instant) -> Result<(), Error> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for name in names {
            loop {
                let definition = api.get_opt(name).await.map_err(|e| {
                    self.fail(
                        Call::admin(
                            format!("get customresourcedefinition {name}"),
                            "get",
                            "customresourcedefinitions",
                        ),
                        e,
                    )
                })?;
                let established = definition
                    .and_then(|d| d.status)
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(Error::failed(format!(
                        "the API server did not start serving {name} in time"
                    ))
                    .cause("the CustomResourceDefinition is not Established")
                    .hint(format!("look at `kubectl get crd {name} -o yaml`")));
                }
                tokio::time::sleep(
                    Duration::from_millis(200)
                        .min(deadline.saturating_duration_since(Instant::now())),
                )
                .await;
            }
        }
        Ok(())
    }

    /// Waits until at least one pod matching `selector` in `namespace` is Ready and
    /// none is unready, or `deadline`.
    pub async fn wait_pods_ready(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
        deadline: Instant,
    ) -> Result<(), Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let selector_text = selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let params = ListParams::default().labels(&selector_text);
        loop {
            let pods = api.list(&params).await.map_err(|e| {
                self.fail(
                    Call::admin(format!("list pods in {namespace}"), "list", "pods"),
                    e,
                )
            })?;
            let mut states = Vec::new();
            let mut all_ready = !pods.items.is_empty();
            for pod in &pods.items {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let status = pod.status.clone().unwrap_or_default();
                let ready = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if !ready {
                    all_ready = false;
                    states.push(format!(
                        "{name}: {}",
                        status.phase.unwrap_or_else(|| "Pending".into())
                    ));
                }
            }
            if all_ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let detail = if states.is_empty() {
                    format!("no pod matches {selector_text}")
                } else {
                    states.join(", ")
                };
                return Err(Error::failed(format!(
                    "pods {selector_text} in {namespace} did not become ready in time"
                ))
                .cause(detail)
                .hint(format!(
                    "look at `kubectl -n {namespace} describe pods -l {selector_text}`"
                )));
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }
}

/// What one look at the cluster found: what was waited for, or what is still
/// awaited, in words for the user.
pub(crate) enum Look<T> {
    Done(T),
    Waiting(String),
}

/// Looks once a second until `look` is done or `deadline` passes; `progress`
/// hears each new thing awaited. At the deadline, the error is what was last
/// awaited.
pub(crate) async fn poll_until<T, F, Fut>(
    deadline: Instant,
    progress: &mut (dyn FnMut(&str) + Send),
    mut look: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Look<T>>,
{
    let mut last = String::new();
    loop {
        let waiting = match look().await {
            Look::Done(done) => return Ok(done),
            Look::Waiting(waiting) => waiting,
        };
        if waiting != last {
            progress(&waiting);
            last = waiting;
        }
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// Waits until every node in `expected` is Ready and CoreDNS is available, or
/// `deadline`, asking `api` once a second; `progress` hears what is still awaited.
/// What [`ClusterApi::wait_ready`] does for every implementation.
pub(crate) async fn wait_ready<A: ClusterApi + ?Sized>(
    api: &A,
    expected: &[String],
    deadline: Instant,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), Error> {
    poll_until(deadline, progress, || async {
        let nodes = match api.nodes().await {
            Ok(nodes) => nodes,
            Err(e) => return Look::Waiting(e.to_string()),
        };
        let mut waiting: Vec<String> = Vec::new();
        for name in expected {
            match nodes.iter().find(|n| &n.name == name) {
                None => waiting.push(format!("{name} (not registered)")),
                Some(n) if !n.ready => waiting.push(format!("{name} ({})", n.reason)),
                Some(_) => {}
            }
        }
        if !waiting.is_empty() {
            return Look::Waiting(format!("nodes not Ready: {}", waiting.join(", ")));
        }
        match api.coredns_available().await {
            Ok(true) => Look::Done(()),
            Ok(false) => Look::Waiting("CoreDNS (kube-system/coredns not available yet)".to_string()),
            Err(e) => Look::Waiting(e.to_string()),
        }
    })
    .await
    .map_err(|waiting| {
        Error::failed("the cluster did not become ready in time")
            .cause(waiting)
            .hint("raise `--timeout`, or look at `kubectl get nodes -o wide` and `kubectl -n kube-system get pods`")
    })
}

/// Plural and scope of the kinds add-on manifests use, so applying them needs no
/// discovery round-trips.
fn known_resource(kind: &str) -> Option<(&'static str, bool)> {
    Some(match kind {
        "Namespace" => ("namespaces", false),
        "ServiceAccount" => ("serviceaccounts", true),
        "ConfigMap" => ("configmaps", true),
        "Secret" => ("secrets", true),
        "Service" => ("services", true),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "Deployment" => ("deployments", true),
        "DaemonSet" => ("daemonsets", true),
        "Job" => ("jobs", true),
        "IngressClass" => ("ingressclasses", false),
        "Ingress" => ("ingresses", true),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        "GatewayClass" => ("gatewayclasses", false),
        "Gateway" => ("gateways", true),
        "HTTPRoute" => ("httproutes", true),
        "ValidatingWebhookConfiguration" => ("validatingwebhookconfigurations", false),
        "MutatingWebhookConfiguration" => ("mutatingwebhookconfigurations", false),
        _ => return None,
    })
}

/// The helper pod template with `operator: Exists` tolerations for NoSchedule and
/// NoExecute (kind PR #4210's template), or `None` when it already tolerates both.
pub fn helper_with_toleration(helper_yaml: &str) -> Result<Option<String>, Error> {
    let mut pod: Value = crate::core::yaml::from_str(helper_yaml).map_err(|e| {
        Error::failed("cannot read local-path-provisioner's helperPod.yaml").cause(e)
    })?;
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Err(Error::failed(
            "local-path-provisioner's helperPod.yaml has no spec",
        ));
    };
    let tolerations = spec
        .entry("tolerations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if tolerations.is_null() {
        *tolerations = Value::Array(Vec::new());
    }
    let Some(list) = tolerations.as_array_mut() else {
        return Err(Error::failed(
            "local-path-provisioner's helperPod.yaml has odd tolerations",
        ));
    };
    // A toleration with operator Exists and no key matches every taint of its
    // effect, or of every effect when it names none.
    let tolerates = |effect: &str| {
        list.iter().any(|t| {
            t.get("operator").and_then(Value::as_str) == Some("Exists")
                && t.get("key").is_none_or(|k| k.is_null() || k == "")
                && t.get("effect")
                    .and_then(Value::as_str)
                    .is_none_or(|e| e.is_empty() || e == effect)
        })
    };
    let missing: Vec<&str> = ["NoSchedule", "NoExecute"]
        .into_iter()
        .filter(|effect| !tolerates(effect))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    for effect in missing {
        list.push(json!({"operator": "Exists", "effect": effect}));
    }
    crate::core::yaml::to_string(&pod)
        .map(Some)
        .map_err(|e| Error::failed("cannot write the helper pod template").cause(e))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::kube::canned::{CannedCluster, CannedNode};

    #[tokio::test]
    async fn waiting_for_ready_hears_each_node_then_coredns() {
        let api = Arc::new(CannedCluster::new());
        api.add_node(CannedNode::ready("c-control-plane"));
        api.add_node(CannedNode::not_ready("c-worker", "PLEG is not healthy"));
        let later = api.clone();
        let (sender, mut heard) = tokio::sync::mpsc::unbounded_channel::<String>();
        let waiting = tokio::spawn(async move {
            let expected = vec!["c-control-plane".to_string(), "c-worker".to_string()];
            let mut progress = |w: &str| {
                let _ = sender.send(w.to_string());
            };
            later
                .wait_ready(
                    &expected,
                    Instant::now() + Duration::from_secs(20),
                    &mut progress,
                )
                .await
        });
        assert_eq!(
            heard.recv().await.as_deref(),
            Some("nodes not Ready: c-worker (PLEG is not healthy)")
        );
        api.add_node(CannedNode::ready("c-worker"));
        assert_eq!(
            heard.recv().await.as_deref(),
            Some("CoreDNS (kube-system/coredns not available yet)")
        );
        api.set_coredns_available(true);
        waiting
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(heard.recv().await, None, "nothing more is awaited");
    }

    #[test]
    fn helper_gets_a_catch_all_toleration_once() {
        let helper = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: helper-pod\nspec:\n  priorityClassName: system-node-critical\n  containers:\n  - name: helper-pod\n    image: docker.io/kindest/local-path-helper:v20241212\n";
        let patched = helper_with_toleration(helper)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("expected a patch"));
        assert!(patched.contains("operator: Exists"), "{patched}");
        assert!(patched.contains("effect: NoSchedule"), "{patched}");
        assert!(patched.contains("effect: NoExecute"), "{patched}");
        assert!(patched.contains("local-path-helper"), "{patched}");
        // A template that already tolerates everything is left alone; one that
        // tolerates only NoSchedule taints gets the NoExecute one.
        let everything = format!("{helper}  tolerations:\n  - operator: Exists\n");
        assert_eq!(
            helper_with_toleration(&everything).unwrap_or_else(|e| panic!("{e}")),
            None
        );
        let no_schedule =
            format!("{helper}  tolerations:\n  - operator: Exists\n    effect: NoSchedule\n");
        let patched = helper_with_toleration(&no_schedule)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("expected a patch"));
        assert_eq!(
            patched.matches("effect: NoSchedule").count(),
            1,
            "{patched}"
        );
        assert!(patched.contains("effect: NoExecute"), "{patched}");
        assert_eq!(
            helper_with_toleration(&patched).unwrap_or_else(|e| panic!("{e}")),
            None
        );
    }
}
