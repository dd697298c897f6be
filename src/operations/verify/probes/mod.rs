//! The registry of verify's probes: one file each, behind one trait, all started
//! at once. A probe waits only for what it needs (the namespace's ServiceAccount
//! before its first pod, the storage class, the echo backend), each computed once
//! and shared, so no phase waits for another's pods. Adding a check is adding a
//! file and one line in [`registry`].

mod echo;
mod host_path;
mod ingress;
mod layers;
mod mount;
mod nodeport;
mod nodes;
mod port;
mod registry;
mod route;
mod rwop;
mod storage;
mod subpath;

use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;

use crate::adapters::kube::cluster::ClusterApi;
use crate::adapters::kube::probe::ProbeNode;
use crate::core::check::{Check, Layer, Status};
use crate::operations::verify::pods::PodContext;
use crate::operations::verify::{DEFAULT_PROBE_IMAGE, Options, Target};

/// One kind of check.
pub trait Probe: Send + Sync {
    /// The name of its rows (`mount`, `subPath`, `storage`...).
    fn name(&self) -> &'static str;
    /// Its rows, in the order they are shown.
    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>>;
}

/// Every probe, in the order their rows are shown.
pub fn registry() -> Vec<Box<dyn Probe>> {
    vec![
        Box::new(nodes::Nodes),
        Box::new(mount::Mount),
        Box::new(host_path::HostPath),
        Box::new(subpath::SubPath),
        Box::new(storage::Storage),
        Box::new(rwop::ReadWriteOncePod),
        Box::new(port::Port),
        Box::new(ingress::Ingress),
        Box::new(route::HttpRoute),
        Box::new(nodeport::NodePort),
        Box::new(registry::Registry),
    ]
}

/// What the probes of one run share. The inputs more than one probe needs are
/// computed by the first that asks and awaited by the others.
pub struct Run<'a> {
    pub target: &'a Target<'a>,
    pub api: &'a dyn ClusterApi,
    pub options: &'a Options,
    /// Every node the API lists, and the Ready, schedulable ones.
    pub api_nodes: Vec<ProbeNode>,
    pub schedulable: Vec<ProbeNode>,
    /// `major.minor` of the API server.
    pub version: (u32, u32),
    /// Pod settings before the probe image is known.
    base: PodContext,
    pods: OnceCell<Result<PodContext, Check>>,
    storage_class: OnceCell<Result<String, Check>>,
    echo: OnceCell<echo::Echo>,
    /// The subPath checks that ride in mount pods.
    subpath: subpath::Rides,
}

impl<'a> Run<'a> {
    pub fn new(
        target: &'a Target<'a>,
        api: &'a dyn ClusterApi,
        options: &'a Options,
        api_nodes: Vec<ProbeNode>,
        version: (u32, u32),
        base: PodContext,
    ) -> Run<'a> {
        let schedulable = api_nodes
            .iter()
            .filter(|n| !n.unschedulable && n.ready)
            .cloned()
            .collect::<Vec<_>>();
        let subpath = subpath::Rides::new(mount::subpath_carriers(target.plan, &schedulable));
        Run {
            target,
            api,
            options,
            api_nodes,
            schedulable,
            version,
            base,
            pods: OnceCell::new(),
            storage_class: OnceCell::new(),
            echo: OnceCell::new(),
            subpath,
        }
    }

    /// What no probe needs to wait for: the token, the deadline, the leftovers.
    pub fn base(&self) -> &PodContext {
        &self.base
    }

    /// Pod settings once pods can be made: the namespace's `default`
    /// ServiceAccount exists (pods are refused until it does) and the probe image
    /// is known (kind's preloaded helper image unless one is given).
    pub async fn pods(&self) -> Result<&PodContext, Check> {
        self.pods
            .get_or_init(|| async {
                let namespace = &self.base.namespace;
                let image = async {
                    if !self.base.image.is_empty() {
                        return self.base.image.clone();
                    }
                    match self.api.helper_image().await.ok().flatten() {
                        Some(image) => image,
                        None => DEFAULT_PROBE_IMAGE.to_string(),
                    }
                };
                let (account, image) = tokio::join!(
                    self.api
                        .wait_default_service_account(namespace, self.base.deadline),
                    image
                );
                account.map_err(|e| {
                    Check::new("namespace", None, Layer::Pod, Status::Fail, e.to_string())
                        .hint(e.hint.unwrap_or_default())
                })?;
                let mut context = self.base.clone();
                context.image = image;
                Ok(context)
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether pods could not be made at all (the one row that says why).
    pub fn pods_failed(&self) -> Option<Check> {
        self.pods.get().and_then(|p| p.as_ref().err().cloned())
    }

    /// The StorageClass the storage probes use: `--storage-class`, else the
    /// cluster's default; the `storage` row that says why there is none.
    pub async fn storage_class(&self) -> Result<&String, &Check> {
        self.storage_class
            .get_or_init(|| async {
                if let Some(class) = &self.options.storage_class {
                    return Ok(class.clone());
                }
                match self.api.default_storage_class().await {
                    Ok(Some(class)) => Ok(class),
                    Ok(None) => Err(Check::new(
                        "storage",
                        None,
                        Layer::Pod,
                        Status::Skip,
                        "skipped: the cluster has no default StorageClass",
                    )
                    .hint("pass --storage-class NAME to check one")),
                    Err(e) => Err(Check::new(
                        "storage",
                        None,
                        Layer::Pod,
                        Status::Fail,
                        e.to_string(),
                    )),
                }
            })
            .await
            .as_ref()
    }

    /// The echo backend that ingress and NodePort probes send requests to.
    async fn echo(&self) -> &echo::Echo {
        self.echo.get_or_init(|| echo::start(self)).await
    }
}
