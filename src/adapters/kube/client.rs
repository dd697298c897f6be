//! The one client of a cluster's API: how it is reached (a kubeconfig, or a client
//! made elsewhere), and how a failed request reads to people. Every request of
//! `up`, `status` and `verify` goes through [`ClusterApi`] and its one error mapping.

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::adapters::kube::Refusal;
use crate::core::error::Error;

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
    ) -> Result<ClusterApi, Error> {
        match self {
            Connector::Client(client) => Ok(ClusterApi::new(client.clone())),
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
                Ok(ClusterApi::new(client).with_server(server_url(kubeconfig, context)))
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

/// The API of one cluster: what `up`, `status` and `verify` ask of it. The methods
/// live next to what they are about (`cluster.rs`: readiness, the record, add-ons;
/// `probe.rs`: verification's namespace, pods and claims; `watch.rs`: changes as
/// they happen), and speak devcluster's own types.
#[derive(Clone)]
pub struct ClusterApi {
    pub(crate) client: kube::Client,
    /// The API server's URL from the kubeconfig, named when it cannot be reached.
    server: Option<String>,
}

impl ClusterApi {
    pub fn new(client: kube::Client) -> ClusterApi {
        ClusterApi {
            client,
            server: None,
        }
    }

    /// The same API, naming `server` (see [`server_url`]) when it cannot be reached.
    pub fn with_server(mut self, server: Option<String>) -> ClusterApi {
        self.server = server;
        self
    }

    /// A failed request as people read it (see [`Call`]).
    pub(crate) fn fail(&self, call: Call, error: kube::Error) -> Error {
        api_error(self.server.as_deref(), &call, error)
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
