//! The one client of a cluster's API: what `up`, `status` and `verify` ask of it
//! ([`ClusterApi`]), how it is reached (a kubeconfig, or a client made
//! elsewhere), and how a failed request reads to people. Every request goes
//! through [`Kube`] and its one error mapping.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use crate::adapters::kube::Refusal;
use crate::adapters::kube::cluster::{ObservedApiNode, StorageFix};
use crate::adapters::kube::probe::{ObservedRouteParent, ProbeNode, ProbePod};
use crate::adapters::kube::watch::{Change, ObservedEvent, ObservedPod, WatchHandle};
use crate::core::error::Error;

/// What one change of a watched collection is handed to.
pub type OnChange<T> = Box<dyn FnMut(Change<T>) + Send + 'static>;

/// The API of one cluster: what `up`, `status` and `verify` ask of it, in
/// devcluster's types. [`Kube`] talks to the API server; a unit test hands an
/// operation a double with canned answers instead.
pub trait ClusterApi: Send + Sync {
    // Readiness, the record and add-ons (`cluster.rs`).

    /// Nodes with their Ready condition, sorted by name.
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<ObservedApiNode>, Error>>;
    /// Whether the CoreDNS deployment has all its replicas available.
    fn coredns_available(&self) -> BoxFuture<'_, Result<bool, Error>>;
    /// Waits until every node in `expected` is Ready and CoreDNS is available, or
    /// `deadline`. `progress` hears what is still awaited.
    fn wait_ready<'a>(
        &'a self,
        expected: &'a [String],
        deadline: Instant,
        progress: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(crate::adapters::kube::cluster::wait_ready(
            self, expected, deadline, progress,
        ))
    }
    /// Writes the record ConfigMap (create or replace).
    fn write_record<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        json_text: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Reads the record ConfigMap's JSON, if it exists.
    fn read_record<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, Error>>;
    /// Gives local-path-provisioner's helper pods tolerations for every taint
    /// (see [`Kube::fix_local_path_tolerations`]).
    fn fix_local_path_tolerations(
        &self,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<StorageFix, Error>>;
    /// Applies manifest documents with server-side apply, in order.
    fn apply<'a>(&'a self, documents: &'a [Value]) -> BoxFuture<'a, Result<(), Error>>;
    /// Waits until the API server serves every CustomResourceDefinition named.
    fn wait_established<'a>(
        &'a self,
        names: &'a [String],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Waits until at least one pod matching `selector` in `namespace` is Ready and
    /// none is unready, or `deadline`.
    fn wait_pods_ready<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a BTreeMap<String, String>,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), Error>>;

    // Verification's namespace, pods and claims (`probe.rs`).

    /// `major.minor` of the API server.
    fn server_version(&self) -> BoxFuture<'_, Result<(u32, u32), Error>>;
    /// Nodes with what placing a probe pod needs, sorted by name.
    fn probe_nodes(&self) -> BoxFuture<'_, Result<Vec<ProbeNode>, Error>>;
    /// Creates the probe namespace, labelled as devcluster's and `privileged`.
    fn create_namespace<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), Error>>;
    /// Waits for the namespace's `default` ServiceAccount, or `deadline`.
    fn wait_default_service_account<'a>(
        &'a self,
        namespace: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Node ports Services of the cluster hold, as `(port, "namespace/name")`.
    fn node_ports_in_use(&self) -> BoxFuture<'_, Result<Vec<(u16, String)>, Error>>;
    /// Probe namespaces whose deletion was requested at least `older_than` ago and
    /// that are still there, with how long ago.
    fn stuck_probe_namespaces(
        &self,
        older_than: Duration,
    ) -> BoxFuture<'_, Result<Vec<(String, Duration)>, Error>>;
    /// Deletes the namespace and everything in it; a missing one is fine.
    fn delete_namespace<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), Error>>;
    fn create_config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        data: BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// The default StorageClass's name, if the cluster has one.
    fn default_storage_class(&self) -> BoxFuture<'_, Result<Option<String>, Error>>;
    /// Creates a 16 MiB claim. `Ok(false)` when the API rejects the access mode.
    fn create_claim<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        class: &'a str,
        access_mode: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>>;
    /// The image of local-path-provisioner's helper pod, if the cluster says.
    fn helper_image(&self) -> BoxFuture<'_, Result<Option<String>, Error>>;
    /// Pods in `namespace` that are Pending, with their scheduler message.
    fn pending_pods<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, Error>>;
    /// Creates the probe pod.
    fn create_pod<'a>(
        &'a self,
        namespace: &'a str,
        probe: &'a ProbePod,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Events about one object, oldest first, as `Reason: message`.
    fn events<'a>(
        &'a self,
        namespace: &'a str,
        kind: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, Error>>;
    /// The UID of a claim (the volume provisioned for it is `pvc-<UID>`).
    fn claim_uid<'a>(&'a self, namespace: &'a str, name: &'a str) -> BoxFuture<'a, Option<String>>;
    /// Events in `namespace` with `reason`, as `(object name, message)`, oldest first.
    fn namespace_events<'a>(
        &'a self,
        namespace: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, Error>>;
    /// Names of the pods in `namespace`.
    fn pod_names<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<String>, Error>>;
    /// A pod's logs (empty when it has none yet).
    fn logs<'a>(&'a self, namespace: &'a str, pod: &'a str)
    -> BoxFuture<'a, Result<String, Error>>;
    /// Follows a started container's logs until a line is `line`: the logs up
    /// to it, or `None` when they end without it.
    fn logs_reach<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        line: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, Error>>;
    /// Creates a Service (and, with a host, an Ingress or HTTPRoute) for the echo backend.
    fn create_echo_routes<'a>(
        &'a self,
        namespace: &'a str,
        documents: &'a [Value],
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// The parents an HTTPRoute's status reports.
    fn http_route_parents<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ObservedRouteParent>, Error>>;

    // Changes as they happen (`watch.rs`).

    /// Watches the pods of `namespace`, handing every change to `on_change`.
    fn watch_pods(&self, namespace: &str, on_change: OnChange<ObservedPod>) -> WatchHandle;
    /// Watches the events of `namespace`, handing every change to `on_change`.
    fn watch_events(&self, namespace: &str, on_change: OnChange<ObservedEvent>) -> WatchHandle;
}

/// How to reach a cluster's API.
#[derive(Clone, Default)]
pub enum Connector {
    /// From the kubeconfig text kind prints for the cluster.
    #[default]
    Kubeconfig,
    /// A client made elsewhere (tests use one backed by a fake API).
    Client(kube::Client),
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connector::Kubeconfig => f.write_str("Connector::Kubeconfig"),
            Connector::Client(_) => f.write_str("Connector::Client"),
        }
    }
}

impl Connector {
    /// A client for the cluster whose kubeconfig is `kubeconfig`, using `context`
    /// (the kubeconfig's current context when `None`). Its errors name the
    /// kubeconfig's server URL when the server cannot be reached.
    pub async fn connect(
        &self,
        kubeconfig: &str,
        context: Option<&str>,
    ) -> Result<Arc<dyn ClusterApi>, Error> {
        match self {
            Connector::Client(client) => Ok(Arc::new(Kube::new(client.clone()))),
            Connector::Kubeconfig => {
                install_crypto_provider();
                let parsed = Kubeconfig::from_yaml(kubeconfig)
                    .map_err(|e| Error::failed("cannot read the cluster's kubeconfig").cause(e))?;
                let options = KubeConfigOptions {
                    context: context.map(str::to_string),
                    ..KubeConfigOptions::default()
                };
                let config = kube::Config::from_custom_kubeconfig(parsed, &options)
                    .await
                    .map_err(|e| Error::failed("cannot use the cluster's kubeconfig").cause(e))?;
                let client = kube::Client::try_from(config)
                    .map_err(|e| Error::failed("cannot make a Kubernetes client").cause(e))?;
                Ok(Arc::new(
                    Kube::new(client).with_server(server_url(kubeconfig, context)),
                ))
            }
        }
    }
}

/// rustls needs one process-wide crypto provider; ring is the one compiled in.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The `server:` URL of the kubeconfig's cluster for `context` (the current context
/// when `None`), for error messages; `None` when the text does not say.
pub fn server_url(kubeconfig: &str, context: Option<&str>) -> Option<String> {
    let parsed = Kubeconfig::from_yaml(kubeconfig).ok()?;
    let context_name = context
        .map(str::to_string)
        .or_else(|| parsed.current_context.clone())?;
    let cluster_name = parsed
        .contexts
        .iter()
        .find(|c| c.name == context_name)?
        .context
        .as_ref()?
        .cluster
        .clone();
    parsed
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)?
        .cluster
        .as_ref()?
        .server
        .clone()
}

/// The API of one cluster through kube-rs: [`ClusterApi`] over a `kube::Client`.
/// The methods live next to what they are about (`cluster.rs`: readiness, the
/// record, add-ons; `probe.rs`: verification's namespace, pods and claims;
/// `watch.rs`: changes as they happen), and speak devcluster's own types.
#[derive(Clone)]
pub struct Kube {
    pub(crate) client: kube::Client,
    /// The API server's URL from the kubeconfig, named when it cannot be reached.
    server: Option<String>,
}

impl Kube {
    pub fn new(client: kube::Client) -> Kube {
        Kube {
            client,
            server: None,
        }
    }

    /// The same API, naming `server` (see [`server_url`]) when it cannot be reached.
    pub fn with_server(mut self, server: Option<String>) -> Kube {
        self.server = server;
        self
    }

    /// A failed request as people read it (see [`Call`]).
    pub(crate) fn fail(&self, call: Call, error: kube::Error) -> Error {
        api_error(self.server.as_deref(), &call, error)
    }
}

/// Each method is [`Kube`]'s own, next to what it is about.
impl ClusterApi for Kube {
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<ObservedApiNode>, Error>> {
        Box::pin(Kube::nodes(self))
    }

    fn coredns_available(&self) -> BoxFuture<'_, Result<bool, Error>> {
        Box::pin(Kube::coredns_available(self))
    }

    fn write_record<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        json_text: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Kube::write_record(self, namespace, name, json_text))
    }

    fn read_record<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, Error>> {
        Box::pin(Kube::read_record(self, namespace, name))
    }

    fn fix_local_path_tolerations(
        &self,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<StorageFix, Error>> {
        Box::pin(Kube::fix_local_path_tolerations(self, deadline))
    }

    fn apply<'a>(&'a self, documents: &'a [Value]) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Kube::apply(self, documents))
    }

    fn wait_established<'a>(
        &'a self,
        names: &'a [String],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Kube::wait_established(self, names, deadline))
    }

    fn wait_pods_ready<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a BTreeMap<String, String>,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Kube::wait_pods_ready(self, namespace, selector, deadline))
    }

    fn server_version(&self) -> BoxFuture<'_, Result<(u32, u32), Error>> {
        Box::pin(Kube::server_version(self))
    }

    fn probe_nodes(&self) -> BoxFuture<'_, Result<Vec<ProbeNode>, Error>> {
        Box::pin(Kube::probe_nodes(self))
    }

    fn create_namespace<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Kube::create_namespace(self, name))
    }

    fn wait_default_service_account<'a>(
        &'a self,
        namespace: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Kube::wait_default_service_account(
            self, namespace, deadline,
        ))
    }

    fn node_ports_in_use(&self) -> BoxFuture<'_, Result<Vec<(u16, String)>, Error>> {
        Box::pin(Kube::node_ports_in_use(self))
    }

    fn stuck_probe_namespaces(
        &self,
        older_than: Duration,
    ) -> BoxFuture<'_, Result<Vec<(String, Duration)>, Error>> {
        Box::pin(Kube::stuck_probe_namespaces(self, older_than))
    }

    fn delete_namespace<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Kube::delete_namespace(self, name))
    }

    fn create_config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        data: BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Kube::create_config_map(self, namespace, name, data))
    }

    fn default_storage_class(&self) -> BoxFuture<'_, Result<Option<String>, Error>> {
        Box::pin(Kube::default_storage_class(self))
    }

    fn create_claim<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        class: &'a str,
        access_mode: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(Kube::create_claim(
            self,
            namespace,
            name,
            class,
            access_mode,
        ))
    }

    fn helper_image(&self) -> BoxFuture<'_, Result<Option<String>, Error>> {
        Box::pin(Kube::helper_image(self))
    }

    fn pending_pods<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, Error>> {
        Box::pin(Kube::pending_pods(self, namespace))
    }

    fn create_pod<'a>(
        &'a self,
        namespace: &'a str,
        probe: &'a ProbePod,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Kube::create_pod(self, namespace, probe))
    }

    fn events<'a>(
        &'a self,
        namespace: &'a str,
        kind: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, Error>> {
        Box::pin(Kube::events(self, namespace, kind, name))
    }

    fn claim_uid<'a>(&'a self, namespace: &'a str, name: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(Kube::claim_uid(self, namespace, name))
    }

    fn namespace_events<'a>(
        &'a self,
        namespace: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, Error>> {
        Box::pin(Kube::namespace_events(self, namespace, reason))
    }

    fn pod_names<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<String>, Error>> {
        Box::pin(Kube::pod_names(self, namespace))
    }

    fn logs<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
    ) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(Kube::logs(self, namespace, pod))
    }

    fn logs_reach<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        line: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, Error>> {
        Box::pin(Kube::logs_reach(self, namespace, pod, line))
    }

    fn create_echo_routes<'a>(
        &'a self,
        namespace: &'a str,
        documents: &'a [Value],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Kube::create_echo_routes(self, namespace, documents))
    }

    fn http_route_parents<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ObservedRouteParent>, Error>> {
        Box::pin(Kube::http_route_parents(self, namespace, name))
    }

    fn watch_pods(&self, namespace: &str, on_change: OnChange<ObservedPod>) -> WatchHandle {
        Kube::watch_pods(self, namespace, on_change)
    }

    fn watch_events(&self, namespace: &str, on_change: OnChange<ObservedEvent>) -> WatchHandle {
        Kube::watch_events(self, namespace, on_change)
    }
}

/// What a request was for, so its failure can say so: the verb and resource (for
/// `kubectl auth can-i`), the namespace, and the words of the headline.
pub(crate) struct Call {
    verb: &'static str,
    resource: &'static str,
    namespace: Option<String>,
    /// `cannot {action}`; by default `{verb} {resource}[ in namespace NS]`.
    action: Option<String>,
    /// How an RBAC denial is fixed.
    remedy: Remedy,
}

/// How an RBAC denial is fixed: `up` runs with the cluster-admin kubeconfig kind
/// writes, so anything less is the wrong kubeconfig; `verify` may run with any
/// user, who then needs the one permission named.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Remedy {
    AdminKubeconfig,
    Grant,
}

impl Call {
    /// A request of `verify` on cluster-scoped `resource`.
    pub(crate) fn new(verb: &'static str, resource: &'static str) -> Call {
        Call {
            verb,
            resource,
            namespace: None,
            action: None,
            remedy: Remedy::Grant,
        }
    }

    /// A request of `verify` on `resource` in `namespace`.
    pub(crate) fn within(namespace: &str, verb: &'static str, resource: &'static str) -> Call {
        Call {
            namespace: Some(namespace.to_string()),
            ..Call::new(verb, resource)
        }
    }

    /// A request of `up` or `status`, which run as the cluster's admin, described
    /// as `action` (`read deployment kube-system/coredns`).
    pub(crate) fn admin(
        action: impl Into<String>,
        verb: &'static str,
        resource: &'static str,
    ) -> Call {
        Call {
            action: Some(action.into()),
            remedy: Remedy::AdminKubeconfig,
            ..Call::new(verb, resource)
        }
    }
}

/// The one mapping of a failed request to an error: who refused it (RBAC, Pod
/// Security, a webhook, a missing ServiceAccount; see [`Refusal`]) with what to do
/// about each, an unreachable server by its URL, and anything else as it came.
fn api_error(server: Option<&str>, call: &Call, error: kube::Error) -> Error {
    let (scope, flag) = match &call.namespace {
        Some(namespace) => (
            format!(" in namespace {namespace}"),
            format!(" -n {namespace}"),
        ),
        None => (String::new(), String::new()),
    };
    let action = call
        .action
        .clone()
        .unwrap_or_else(|| format!("{} {}{scope}", call.verb, call.resource));
    let (verb, resource) = (call.verb, call.resource);
    match &error {
        // Webhook denials come as 400 unless the webhook sets a code
        // (apiserver `admission/plugin/webhook/errors/statuserror.go`).
        kube::Error::Api(status)
            if status.code == 403 || Refusal::of(&status.message) == Refusal::Webhook =>
        {
            let refusal = Refusal::of(&status.message);
            let (why, hint) = match (refusal, call.remedy) {
                (Refusal::Rbac, Remedy::AdminKubeconfig) => (
                    "the API server forbids it (RBAC)".to_string(),
                    "use a kubeconfig with cluster-admin rights, such as the one kind writes".to_string(),
                ),
                (Refusal::Rbac, Remedy::Grant) => (
                    refusal.why().to_string(),
                    format!(
                        "grant this user `{verb}` on `{resource}` (or use a cluster-admin kubeconfig); `kubectl auth can-i {verb} {resource}{flag}` checks it"
                    ),
                ),
                (Refusal::PodSecurity, _) => (
                    refusal.why().to_string(),
                    "the probes mount hostPath volumes, which need the `privileged` Pod Security level; devcluster labels its namespace `pod-security.kubernetes.io/enforce=privileged`, so a cluster-wide exemption or policy overrides that label: ask the cluster's admin".to_string(),
                ),
                (Refusal::Webhook, Remedy::Grant) => (
                    refusal.why().to_string(),
                    "the webhook named above rejects the probe; exempt namespaces labelled `app.kubernetes.io/managed-by=devcluster` from it, or ask the cluster's admin".to_string(),
                ),
                (Refusal::ServiceAccountMissing, _) => (
                    refusal.why().to_string(),
                    "the ServiceAccount controller (kube-controller-manager) creates it moments after the namespace; if it never does, look at `kubectl -n kube-system get pods`".to_string(),
                ),
                (Refusal::Webhook | Refusal::Other, _) => (
                    refusal.why().to_string(),
                    "the message above names the admission plugin, webhook or policy that refuses it".to_string(),
                ),
            };
            Error::failed(format!("cannot {action}: {why}"))
                .cause(status.message.clone())
                .hint(hint)
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => Error::failed(format!(
            "cannot reach the API server at {} (to {action})",
            server.unwrap_or("the kubeconfig's address")
        ))
        .cause(error)
        .hint("check the kubeconfig and that the cluster is running (`kubectl cluster-info`)"),
        _ => Error::failed(format!("cannot {action}")).cause(error),
    }
}

/// Whether the API answered `code` (404 Not Found, 403 Forbidden, 422 Invalid...).
pub(crate) fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// A kind cluster's kubeconfig made from kubeadm's `admin.conf` in one of its
/// control-plane containers, as `kind get kubeconfig` makes it (kind
/// `pkg/cluster/internal/kubeconfig/internal/kubeconfig/read.go`,
/// `KINDFromRawKubeadm`): kubeadm writes exactly one cluster, user and context;
/// all three become `kind-NAME`, the current context too, and the cluster's server
/// becomes `server`, the host's endpoint. `None` when `admin_conf` is not what
/// kubeadm writes.
pub fn kind_kubeconfig(admin_conf: &str, cluster: &str, server: &str) -> Option<String> {
    let mut config = Kubeconfig::from_yaml(admin_conf).ok()?;
    // kind `checkKubeadmExpectations`: one of each.
    if config.clusters.len() != 1 || config.auth_infos.len() != 1 || config.contexts.len() != 1 {
        return None;
    }
    let key = format!("kind-{cluster}");
    config.clusters[0].name = key.clone();
    config.clusters[0].cluster.as_mut()?.server = Some(server.to_string());
    config.auth_infos[0].name = key.clone();
    config.contexts[0].name = key.clone();
    let context = config.contexts[0].context.as_mut()?;
    context.user = Some(key.clone());
    context.cluster = key.clone();
    config.current_context = Some(key);
    // JSON is YAML, and every kubeconfig reader takes it.
    serde_json::to_string(&config).ok()
}
