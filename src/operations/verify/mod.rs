//! `devcluster verify`: proves from inside real pods that what the profile asked
//! for works, and names the layer that broke (host -> node container -> pod).
//! On a kind cluster the node layer runs through Docker exec; on any other cluster
//! a kubeconfig reaches, the pod-level proofs run alone.

pub mod bundle;
pub mod mounts;
pub mod pods;
pub mod probes;
pub mod report;
pub mod runner;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::adapters::docker::{Docker, ObservedNode};
use crate::adapters::kube::cluster::{ClusterApi, Connector};
use crate::core::error::{Error, Result};
use crate::core::plan::ClusterPlan;
use crate::operations::context::App;
use crate::operations::interrupt::Interrupt;
use crate::operations::{ProfileChoice, PullPolicy};
use mounts::MountProbe;
use pods::PodContext;
use report::{Check, Layer, Report, Status};
use runner::PodRunner;

/// The probe image for clusters that are not kind (kind nodes preload their own):
/// busybox 1.36.1, pinned by digest, pulled only if missing.
pub const DEFAULT_PROBE_IMAGE: &str = "docker.io/library/busybox:1.36.1@sha256:73aaf090f3d85aa34ee199857f03fa3a95c8ede2ffd4cc2cdb5b94e566b11662";

/// The echo backend's image when none is chosen: the same pinned busybox, whose
/// `httpd` serves the token (kind's preloaded helper image has no HTTP server).
pub const DEFAULT_ECHO_IMAGE: &str = DEFAULT_PROBE_IMAGE;

/// How long past its deadline a run may take before it is cut short: every wait
/// ends at the deadline, so only a request that never returns needs this.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// How long the cleanup may wait for the API server to accept the namespace's
/// deletion (the deletion itself runs on in the cluster).
const CLEANUP_LIMIT: Duration = Duration::from_secs(30);

/// What a run may use and change.
#[derive(Debug, Clone)]
pub struct Options {
    pub deadline: Instant,
    pub probe_image: Option<String>,
    /// The echo backend's image (`--echo-image`); default: `--probe-image`, else
    /// [`DEFAULT_ECHO_IMAGE`].
    pub echo_image: Option<String>,
    pub pull_policy: Option<String>,
    pub storage_class: Option<String>,
    pub host_paths: Vec<PathBuf>,
    /// What ends the run early (Ctrl-C by default); its cleanup still runs, and a
    /// second interruption during the cleanup abandons it, naming what is left.
    pub interrupt: Interrupt,
}

impl Options {
    /// A run until `deadline` with the default images and nothing else.
    pub fn new(deadline: Instant) -> Options {
        Options {
            deadline,
            probe_image: None,
            echo_image: None,
            pull_policy: None,
            storage_class: None,
            host_paths: Vec::new(),
            interrupt: Interrupt::default(),
        }
    }
}

/// The images a run uses, as `up` and `verify` take them from their flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Images {
    pub probe_image: Option<String>,
    pub echo_image: Option<String>,
    pub pull_policy: Option<PullPolicy>,
}

/// The cluster being verified, as far as devcluster can see it.
pub struct Target<'a> {
    /// The plan, for a devcluster cluster.
    pub plan: Option<&'a ClusterPlan>,
    /// Docker, when the cluster's node containers are visible.
    pub docker: Option<&'a Docker>,
    pub nodes: Vec<ObservedNode>,
    /// Why the node layer cannot run, when it cannot.
    pub node_layer_skipped: Option<String>,
    pub api: Option<Arc<dyn ClusterApi>>,
    /// Why the pod layer cannot run, when it cannot.
    pub api_error: Option<String>,
}

/// What `devcluster verify` is asked to prove.
#[derive(Debug, Clone)]
pub struct Request {
    pub profile: ProfileChoice,
    /// Verify the cluster this kubeconfig reaches, even one devcluster did not create.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub host_paths: Vec<PathBuf>,
    pub storage_class: Option<String>,
    pub images: Images,
    pub timeout: Duration,
    /// Where a failed run's bundle goes (default under CI: `devcluster-verify-bundle`).
    pub bundle: Option<PathBuf>,
    pub interrupt: Interrupt,
}

/// `devcluster verify`: finds the cluster (devcluster's by profile or name, or any
/// one a kubeconfig reaches), proves it, and returns the report unprinted.
pub async fn run(app: &App, args: &Request) -> Result<Report> {
    let options = Options {
        deadline: Instant::now() + args.timeout,
        probe_image: args.images.probe_image.clone(),
        echo_image: args.images.echo_image.clone(),
        pull_policy: args.images.pull_policy.map(|p| p.as_str().to_string()),
        storage_class: args.storage_class.clone(),
        host_paths: args
            .host_paths
            .iter()
            .map(|p| absolute(&app.world.cwd, p))
            .collect(),
        interrupt: args.interrupt.clone(),
    };
    let foreign = args.kubeconfig.is_some()
        || args.context.is_some()
        || (!args.host_paths.is_empty()
            && args.profile.profile.is_none()
            && args.profile.name.is_none());
    let bundle_dir = args.bundle.clone().or_else(|| ci_bundle_dir(app));
    if !foreign {
        let docker = app.docker().await;
        let plan =
            crate::operations::cluster::plan_for_cluster(app, &args.profile, docker.as_ref().ok())
                .await?;
        return verify_planned(app, &plan, None, &options, bundle_dir.as_deref()).await;
    }
    let path = args
        .kubeconfig
        .clone()
        .or_else(|| {
            app.world
                .var("KUBECONFIG")
                .and_then(|k| k.split(':').next())
                .map(PathBuf::from)
        })
        .or_else(|| app.world.home.as_ref().map(|h| h.join(".kube/config")))
        .ok_or_else(|| {
            Error::input("no kubeconfig: pass --kubeconfig").hint("or set KUBECONFIG")
        })?;
    let kubeconfig = std::fs::read_to_string(&path).map_err(|e| {
        Error::input(format!("cannot read the kubeconfig {}", path.display()))
            .cause(e)
            .hint("pass --kubeconfig PATH")
    })?;
    let api = Connector::Kubeconfig
        .connect(&kubeconfig, args.context.as_deref())
        .await?;
    verify_reached(app, None, &api, &options, bundle_dir.as_deref()).await
}

/// What a library caller (such as `devcluster up`) sets for a run.
pub type VerifyOptions = Options;

/// Verifies the kind cluster `plan` describes, as `devcluster verify --name` does:
/// through `kubeconfig` when the caller has the cluster's already, else the one
/// kind prints; the node containers from Docker's kind labels (the node layer is
/// skipped, with the reason, when Docker cannot show them). The report is returned
/// unprinted: [`Report::failed`] decides the outcome, [`Report::print_table`],
/// [`Report::junit`] and its JSON form render it. A failure bundle is written
/// automatically under CI, as for the command.
pub async fn verify_cluster(
    app: &App,
    plan: &ClusterPlan,
    kubeconfig: Option<&str>,
    options: &VerifyOptions,
) -> Result<Report> {
    verify_planned(
        app,
        plan,
        kubeconfig,
        options,
        ci_bundle_dir(app).as_deref(),
    )
    .await
}

/// A devcluster/kind cluster: its kubeconfig (`kind get kubeconfig` unless given)
/// and its plan's context.
async fn verify_planned(
    app: &App,
    plan: &ClusterPlan,
    kubeconfig: Option<&str>,
    options: &Options,
    bundle_dir: Option<&Path>,
) -> Result<Report> {
    let kubeconfig = match kubeconfig {
        Some(text) => text.to_string(),
        None => kind_kubeconfig(app, plan).await?,
    };
    let api = Connector::Kubeconfig
        .connect(&kubeconfig, Some(&plan.context_name()))
        .await?;
    verify_reached(app, Some(plan), &api, options, bundle_dir).await
}

/// Any cluster `api` reaches, with the node containers Docker shows for it.
async fn verify_reached(
    app: &App,
    plan: Option<&ClusterPlan>,
    api: &Arc<dyn ClusterApi>,
    options: &Options,
    bundle_dir: Option<&Path>,
) -> Result<Report> {
    let (docker, nodes, skipped) = visible_nodes(app.docker().await, plan, api.as_ref()).await;
    let target = Target {
        plan,
        docker: docker.as_ref(),
        nodes,
        node_layer_skipped: skipped,
        api: Some(api.clone()),
        api_error: None,
    };
    verify(app, &target, options, bundle_dir).await
}

/// The kubeconfig kind prints for the plan's cluster.
async fn kind_kubeconfig(app: &App, plan: &ClusterPlan) -> Result<String> {
    crate::operations::cluster::admin_kubeconfig(app, &plan.name)
        .await
        .map_err(|e| {
            Error::from(e).context(format!(
            "cannot get the kubeconfig of cluster `{}`",
            plan.name
        ))
        .hint(format!(
            "create it with `devcluster up --name {}`, or verify another cluster with --kubeconfig",
            plan.name
        ))
        })
}

/// Where a failed run's bundle goes under CI when `--bundle` is not given.
fn ci_bundle_dir(app: &App) -> Option<PathBuf> {
    app.world
        .is_ci()
        .then(|| app.world.cwd.join("devcluster-verify-bundle"))
}

/// The verify step of `devcluster up`: the same checks, an error when any fails.
/// It hears `up`'s interruptions and keeps `up`'s deadline itself, so its cleanup
/// (sentinel files, probe namespace) runs to the end on every path.
pub async fn verify_after_up(
    app: &App,
    docker: &Docker,
    plan: &ClusterPlan,
    deadline: Instant,
    api: &Arc<dyn ClusterApi>,
    images: &Images,
    interrupt: &Interrupt,
) -> Result<String> {
    let nodes = docker
        .list_nodes(Some(&plan.name))
        .await
        .unwrap_or_default();
    let target = Target {
        plan: Some(plan),
        docker: Some(docker),
        node_layer_skipped: nodes.is_empty().then(|| {
            format!(
                "no node containers of cluster `{}` are visible to Docker",
                plan.name
            )
        }),
        nodes,
        api: Some(api.clone()),
        api_error: None,
    };
    let options = Options {
        probe_image: images.probe_image.clone(),
        echo_image: images.echo_image.clone(),
        pull_policy: images.pull_policy.map(|p| p.as_str().to_string()),
        interrupt: interrupt.clone(),
        ..Options::new(deadline)
    };
    let bundle_dir = ci_bundle_dir(app);
    let report = verify(app, &target, &options, bundle_dir.as_deref()).await?;
    if report.failed() {
        report.print_table(&app.ui);
        let failed: Vec<String> = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| {
                format!(
                    "{} [{}] ({}): {}",
                    c.name,
                    c.node.as_deref().unwrap_or("-"),
                    c.layer.as_str(),
                    c.detail
                )
            })
            .collect();
        return Err(Error::failed("verification failed")
            .details(failed.join("\n"))
            .hint(format!(
                "`devcluster verify --name {}` repeats the checks",
                plan.name
            )));
    }
    Ok(report.summary())
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    crate::core::plan::normalize(&cwd.join(path))
}

/// The node containers Docker shows for the cluster, or why the node layer is off.
async fn visible_nodes(
    docker: std::result::Result<Docker, crate::adapters::docker::DockerError>,
    plan: Option<&ClusterPlan>,
    api: &dyn ClusterApi,
) -> (Option<Docker>, Vec<ObservedNode>, Option<String>) {
    let docker = match docker {
        Ok(docker) => docker,
        Err(e) => {
            return (
                None,
                Vec::new(),
                Some(format!("Docker is not reachable ({e})")),
            );
        }
    };
    let nodes = match plan {
        Some(plan) => docker
            .list_nodes(Some(&plan.name))
            .await
            .unwrap_or_default(),
        None => {
            // Any cluster: its nodes are kind containers when Docker knows them by name.
            let api_nodes = api.nodes().await.unwrap_or_default();
            let mut found = Vec::new();
            for node in api_nodes {
                if let Ok(observed) = docker.inspect(&node.name).await
                    && !observed.cluster.is_empty()
                {
                    found.push(observed);
                }
            }
            found
        }
    };
    if nodes.is_empty() {
        let why = match plan {
            Some(plan) => format!(
                "no node containers of cluster `{}` are visible to Docker",
                plan.name
            ),
            None => "the cluster's nodes are not kind containers this Docker can see".to_string(),
        };
        return (Some(docker), nodes, Some(why));
    }
    (Some(docker), nodes, None)
}

/// A random lower-case token for sentinels and names.
pub fn token() -> String {
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes.copy_from_slice(&nanos.to_le_bytes()[..6]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs every check against `target` under one deadline, concurrently, inside a
/// temporary namespace. What the run leaves behind (sentinel files in the user's
/// directories, the namespace) is removed on every path: success, failure, the
/// deadline, an interruption, and an early error.
pub async fn verify(
    app: &App,
    target: &Target<'_>,
    options: &Options,
    bundle_dir: Option<&Path>,
) -> Result<Report> {
    let token = token();
    let Some(api) = &target.api else {
        let checks = vec![Check::new(
            "cluster",
            None,
            Layer::Pod,
            Status::Fail,
            target.api_error.clone().unwrap_or_default(),
        )];
        return Ok(Report { checks });
    };
    // Independent reads, at once: the version, the nodes, and probe namespaces of
    // earlier runs whose deletion never finished.
    let (version, api_nodes, stuck) = tokio::join!(
        api.server_version(),
        api.probe_nodes(),
        api.stuck_probe_namespaces(STUCK_NAMESPACE)
    );
    let (version, api_nodes) = (version?, api_nodes?);
    let namespace = format!("devcluster-verify-{token}");
    let mut cleanup = Cleanup::new(api.clone());
    api.create_namespace(&namespace).await?;
    cleanup.namespace(&namespace);
    let context = PodContext {
        echo_image: options
            .echo_image
            .clone()
            .or_else(|| options.probe_image.clone())
            .unwrap_or_else(|| DEFAULT_ECHO_IMAGE.to_string()),
        namespace: namespace.clone(),
        pull_policy: options
            .pull_policy
            .clone()
            .unwrap_or_else(|| "IfNotPresent".to_string()),
        image: options.probe_image.clone().unwrap_or_default(),
        token: token.clone(),
        deadline: options.deadline,
        leftovers: cleanup.leftovers(),
        runner: PodRunner::start(api, &namespace),
        // On kind nodes devcluster can see, where the namespace's privileged level
        // is the only policy; a cluster of others' may forbid host namespaces
        // (a Kyverno `disallow-host-namespaces`) where it allows the rest.
        host_network: !target.nodes.is_empty(),
    };
    let run = probes::Run::new(target, api.as_ref(), options, api_nodes, version, context);
    let work = async {
        let registry = probes::registry();
        let rows = join_all(registry.iter().map(|probe| probe.run(&run))).await;
        // Pods could not be made at all: that one row says why.
        if let Some(check) = run.pods_failed() {
            return vec![check];
        }
        let mut all = Vec::new();
        if let Some(why) = &target.node_layer_skipped {
            all.push(Check::new(
                "node layer",
                None,
                Layer::Node,
                Status::Skip,
                format!("skipped: {why}"),
            ));
        }
        all.extend(rows.into_iter().flatten());
        all
    };
    let cut_off = tokio::time::Instant::from_std(options.deadline + DEADLINE_GRACE);
    let mut interrupted = false;
    let mut checks = tokio::select! {
        all = work => all,
        _ = options.interrupt.wait() => { interrupted = true; Vec::new() }
        () = tokio::time::sleep_until(cut_off) => vec![Check::new(
            "verify",
            None,
            Layer::Pod,
            Status::Fail,
            "did not finish by the deadline: a request to the API server did not return",
        )
        .hint("raise `--timeout`, or check the API server and its admission webhooks (`kubectl get --raw /readyz?verbose`)")],
    };
    drop(run);
    for (name, age) in stuck.unwrap_or_default().iter() {
        checks.push(stuck_namespace(name, *age));
    }
    let report = Report { checks };
    if !interrupted
        && report.failed()
        && let Some(dir) = bundle_dir
    {
        // The bundle may take minutes (`kind export logs` of a node that hangs):
        // an interruption stops it, and the cleanup below still runs.
        tokio::select! {
            written = bundle::collect(app, dir, target, api.as_ref(), &namespace, &report) => match written {
                Ok(()) => app
                    .ui
                    .line(&format!("failure bundle written to {}", dir.display())),
                Err(e) => app
                    .ui
                    .line(&format!("could not write the failure bundle: {e}")),
            },
            _ = options.interrupt.wait() => {
                interrupted = true;
                app.ui.line(&format!(
                    "the failure bundle in {} is incomplete: interrupted",
                    dir.display()
                ));
            }
        }
    }
    // One interruption ends the run and lets the cleanup finish; the next one
    // abandons the cleanup. The cleanup asks the API server to delete the
    // namespace and returns once it has accepted: the namespace controller
    // removes its pods and claims in the background, and a deletion that never
    // finishes is reported by the next run (see [`stuck_namespace`]).
    let abandon = if interrupted {
        options.interrupt.wait_again()
    } else {
        options.interrupt.wait()
    };
    let cleaned = tokio::select! {
        result = tokio::time::timeout(CLEANUP_LIMIT, cleanup.run()) => match result {
            Ok(result) => result,
            Err(_) => Err(Error::failed("the cleanup did not finish in time")
                .details(cleanup.describe_left())
                .hint("the API server did not answer the deletion; remove what is listed above by hand")),
        },
        _ = abandon => {
            return Err(Error::interrupted("verification interrupted during its cleanup")
                .details(cleanup.describe_left())
                .hint("remove what is listed above by hand"));
        }
    };
    if interrupted {
        return Err(Error::interrupted(
            "verification interrupted; its sentinel files and probe namespace were removed",
        ));
    }
    let mut report = report;
    if let Err(e) = cleaned {
        // The checks ran; a namespace the API server would not delete is left
        // for the user, named with the command that removes it.
        report.checks.push(
            Check::new(
                "cleanup",
                None,
                Layer::Pod,
                Status::Warn,
                format!("probe namespace {namespace} was not removed: {}", e.message),
            )
            .hint(format!(
                "remove it with `kubectl delete namespace {namespace}`"
            )),
        );
    }
    Ok(report)
}

/// How long a probe namespace may stay Terminating before a run reports it.
const STUCK_NAMESPACE: Duration = Duration::from_secs(300);

/// The row for a probe namespace of an earlier run whose deletion did not finish.
fn stuck_namespace(name: &str, age: Duration) -> Check {
    Check::new(
        "cleanup",
        None,
        Layer::Pod,
        Status::Warn,
        format!(
            "probe namespace {name} of an earlier run is still terminating ({} min after its deletion)",
            age.as_secs() / 60
        ),
    )
    .hint(format!(
        "`kubectl get namespace {name} -o yaml` shows the finalizer or condition it waits on; `kubectl delete namespace {name}` asks again"
    ))
}

/// What a run has put into the world and must take away again: sentinel files in
/// the user's mounted directories, and the probe namespace. Registered as they
/// are made; removed by [`Cleanup::run`], or, if the run is dropped before that,
/// by `Drop` (files at once, the namespace's deletion handed to the runtime).
pub struct Cleanup {
    api: Arc<dyn ClusterApi>,
    leftovers: std::sync::Arc<Leftovers>,
}

/// The parts of a run not cleaned up yet.
#[derive(Debug, Default)]
pub struct Leftovers {
    sentinels: std::sync::Mutex<Vec<(PathBuf, MountProbe)>>,
    namespace: std::sync::Mutex<Option<String>>,
}

impl Leftovers {
    /// A sentinel was written for `probe` into `host_path`.
    pub fn sentinel(&self, host_path: &Path, probe: &MountProbe) {
        self.lock_sentinels()
            .push((host_path.to_path_buf(), probe.clone()));
    }

    /// Removes a sentinel and its replies now.
    pub fn remove_sentinel(&self, host_path: &Path, probe: &MountProbe) {
        mounts::clean_host(host_path, probe);
        self.lock_sentinels()
            .retain(|(path, p)| !(path == host_path && p.token == probe.token));
    }

    fn lock_sentinels(&self) -> std::sync::MutexGuard<'_, Vec<(PathBuf, MountProbe)>> {
        self.sentinels.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_namespace(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.namespace.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove_sentinels(&self) {
        let sentinels = std::mem::take(&mut *self.lock_sentinels());
        for (path, probe) in sentinels {
            mounts::clean_host(&path, &probe);
        }
    }
}

impl Cleanup {
    pub fn new(api: Arc<dyn ClusterApi>) -> Cleanup {
        Cleanup {
            api,
            leftovers: std::sync::Arc::default(),
        }
    }

    pub fn leftovers(&self) -> std::sync::Arc<Leftovers> {
        self.leftovers.clone()
    }

    /// The probe namespace exists and must be deleted.
    pub fn namespace(&mut self, name: &str) {
        *self.leftovers.lock_namespace() = Some(name.to_string());
    }

    /// Removes every sentinel, then deletes the namespace.
    pub async fn run(&mut self) -> Result<()> {
        self.leftovers.remove_sentinels();
        let namespace = self.leftovers.lock_namespace().clone();
        if let Some(namespace) = namespace {
            self.api.delete_namespace(&namespace).await?;
            *self.leftovers.lock_namespace() = None;
        }
        Ok(())
    }

    /// What is still left, one item a line.
    pub fn describe_left(&self) -> String {
        let mut lines: Vec<String> = self
            .leftovers
            .lock_sentinels()
            .iter()
            .map(|(path, probe)| format!("sentinel {}", path.join(probe.sentinel_name()).display()))
            .collect();
        if let Some(namespace) = self.leftovers.lock_namespace().as_ref() {
            lines.push(format!(
                "namespace {namespace} (`kubectl delete namespace {namespace}`)"
            ));
        }
        lines.join("\n")
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.leftovers.remove_sentinels();
        let namespace = self.leftovers.lock_namespace().take();
        if let (Some(namespace), Ok(runtime)) = (namespace, tokio::runtime::Handle::try_current()) {
            let api = self.api.clone();
            runtime.spawn(async move {
                let _ = api.delete_namespace(&namespace).await;
            });
        }
    }
}

#[cfg(test)]
mod canned_runs;
