//! `devcluster verify`: proves from inside real pods that what the profile asked
//! for works, and names the layer that broke (host -> node container -> pod).
//! On a kind cluster the node layer runs through Docker exec; on any other cluster
//! a kubeconfig reaches, the pod-level proofs run alone.

pub mod bundle;
pub mod mounts;
pub mod pods;
pub mod report;

use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::adapters::docker::{Docker, ObservedNode};
use crate::adapters::kube::cluster::{ClusterApi, Connector};
use crate::adapters::kube::probe::{ProbeApi, ProbeNode, ProbeVolume, VolumeSource, server_url};
use crate::core::error::{Error, Result};
use crate::core::plan::{ClusterPlan, ControllerPlan, PortPurpose};
use crate::core::profile::MountPathType;
use crate::operations::context::App;
use crate::operations::interrupt::Interrupt;
use crate::operations::{ProfileChoice, PullPolicy};
use mounts::MountProbe;
use pods::PodContext;
use report::{Check, Layer, Report, Status};

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
    pub api: Option<ProbeApi>,
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
    let docker = app.docker().await;
    let (plan, kubeconfig, context) = if foreign {
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
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::input(format!("cannot read the kubeconfig {}", path.display()))
                .cause(e)
                .hint("pass --kubeconfig PATH")
        })?;
        (None, text, args.context.clone())
    } else {
        let plan =
            crate::operations::cluster::plan_for_cluster(app, &args.profile, docker.as_ref().ok())
                .await?;
        let text = kind_kubeconfig(app, &plan).await?;
        let context = plan.context_name();
        (Some(plan), text, Some(context))
    };
    let api = Connector::Kubeconfig
        .connect(&kubeconfig, context.as_deref())
        .await?;
    let (docker, nodes, skipped) = visible_nodes(docker, plan.as_ref(), &api).await;
    let target = Target {
        plan: plan.as_ref(),
        docker: docker.as_ref(),
        nodes,
        node_layer_skipped: skipped,
        api: Some(
            api.probe()
                .with_server(server_url(&kubeconfig, context.as_deref())),
        ),
        api_error: None,
    };
    let bundle_dir = args.bundle.clone().or_else(|| ci_bundle_dir(app));
    verify(app, &target, &options, bundle_dir.as_deref()).await
}

/// What a library caller (such as `devcluster up`) sets for a run.
pub type VerifyOptions = Options;

/// Verifies the kind cluster `plan` describes, as `devcluster verify --name` does:
/// the kubeconfig comes from kind, the node containers from Docker's kind labels
/// (the node layer is skipped, with the reason, when Docker cannot show them). The
/// report is returned unprinted: [`Report::failed`] decides the outcome,
/// [`Report::print_table`], [`Report::junit`] and its JSON form render it. A failure
/// bundle is written automatically under CI, as for the command.
pub async fn verify_cluster(
    app: &App,
    plan: &ClusterPlan,
    options: &VerifyOptions,
) -> Result<Report> {
    let docker = app.docker().await;
    let kubeconfig = kind_kubeconfig(app, plan).await?;
    let context = plan.context_name();
    let api = Connector::Kubeconfig
        .connect(&kubeconfig, Some(&context))
        .await?;
    let (docker, nodes, skipped) = visible_nodes(docker, Some(plan), &api).await;
    let target = Target {
        plan: Some(plan),
        docker: docker.as_ref(),
        nodes,
        node_layer_skipped: skipped,
        api: Some(
            api.probe()
                .with_server(server_url(&kubeconfig, Some(&context))),
        ),
        api_error: None,
    };
    verify(app, &target, options, ci_bundle_dir(app).as_deref()).await
}

/// The kubeconfig kind prints for the plan's cluster.
async fn kind_kubeconfig(app: &App, plan: &ClusterPlan) -> Result<String> {
    let kind = app.kind()?;
    kind.kubeconfig(&plan.name).await.map_err(|e| {
        e.context(format!(
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
    api: &ClusterApi,
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
        api: Some(api.probe()),
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
    api: &ClusterApi,
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
    let version = api.server_version().await?;
    let api_nodes = api.nodes().await?;
    let schedulable: Vec<ProbeNode> = api_nodes
        .iter()
        .filter(|n| !n.unschedulable && n.ready)
        .cloned()
        .collect();
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
    };
    let work = async {
        // Pods are refused until the namespace's ServiceAccount exists.
        if let Err(e) = api
            .wait_default_service_account(&namespace, options.deadline)
            .await
        {
            return vec![
                Check::new("namespace", None, Layer::Pod, Status::Fail, e.to_string())
                    .hint(e.hint.unwrap_or_default()),
            ];
        }
        let mut context = context.clone();
        if context.image.is_empty() {
            context.image = match api.helper_image().await.ok().flatten() {
                Some(image) => image,
                None => DEFAULT_PROBE_IMAGE.to_string(),
            };
        }
        let context = &context;
        let (mount_checks, host_path_checks, subpath_checks, storage_checks, port_checks) = tokio::join!(
            mount_checks(target, api, context, &api_nodes),
            host_path_checks(target, api, context, &api_nodes, &options.host_paths),
            pods::subpath(api, context, &schedulable),
            storage_checks(
                target,
                api,
                context,
                &schedulable,
                options.storage_class.as_deref(),
                version
            ),
            port_checks(target, api, context, &schedulable),
        );
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
        all.extend(mount_checks);
        all.extend(host_path_checks);
        all.extend(subpath_checks);
        all.extend(storage_checks);
        all.extend(port_checks);
        all
    };
    let cut_off = tokio::time::Instant::from_std(options.deadline + DEADLINE_GRACE);
    let mut interrupted = false;
    let checks = tokio::select! {
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
    let report = Report { checks };
    if !interrupted
        && report.failed()
        && let Some(dir) = bundle_dir
    {
        match bundle::collect(dir, target, api, &namespace, &report).await {
            Ok(()) => app
                .ui
                .line(&format!("failure bundle written to {}", dir.display())),
            Err(e) => app
                .ui
                .line(&format!("could not write the failure bundle: {e}")),
        }
    }
    // One interruption ends the run and lets the cleanup finish; the next one
    // abandons the cleanup.
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
    cleaned?;
    Ok(report)
}

/// What a run has put into the world and must take away again: sentinel files in
/// the user's mounted directories, and the probe namespace. Registered as they
/// are made; removed by [`Cleanup::run`], or, if the run is dropped before that,
/// by `Drop` (files at once, the namespace's deletion handed to the runtime).
pub struct Cleanup {
    api: ProbeApi,
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
    pub fn new(api: ProbeApi) -> Cleanup {
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

/// The plan's mounts on every node that should have them: host, node, pod.
async fn mount_checks(
    target: &Target<'_>,
    api: &ProbeApi,
    context: &PodContext,
    api_nodes: &[ProbeNode],
) -> Vec<Check> {
    let Some(plan) = target.plan else {
        return Vec::new();
    };
    let mut seen = Vec::new();
    let mut probes = Vec::new();
    for node in &plan.nodes {
        for mount in &node.mounts {
            let key = (mount.host_path.clone(), mount.container_path.clone());
            if !seen.contains(&key) {
                seen.push(key);
                probes.push(mount.clone());
            }
        }
    }
    let mut checks = Vec::new();
    let runs = probes
        .into_iter()
        .enumerate()
        .map(|(index, mount)| async move {
            let mut probe = MountProbe {
                path: mount.container_path.clone(),
                file: mount.path_type == MountPathType::File,
                read_only: mount.read_only,
                token: format!("{}{index}", context.token),
                first_line: None,
            };
            let host_path = PathBuf::from(&mount.host_path);
            let mut checks = Vec::new();
            if let Err(check) = mounts::prepare_host(&host_path, &mut probe) {
                checks.push(check);
                return checks;
            }
            context.leftovers.sentinel(&host_path, &probe);
            checks.push(Check::new(
                &format!("mount {}", probe.path),
                None,
                Layer::Host,
                Status::Ok,
                format!("sentinel written to {}", mount.host_path),
            ));
            let targets: Vec<&crate::core::plan::NodePlan> = plan
                .nodes
                .iter()
                .filter(|n| n.mounts.contains(&mount))
                .collect();
            let per_node = targets.iter().enumerate().map(|(n, node)| {
                let probe = probe.clone();
                let host_path = host_path.clone();
                let mount = mount.clone();
                async move {
                    let mut checks = Vec::new();
                    let node_ok = node_layer(
                        target,
                        &node.name,
                        &probe,
                        &mount.host_path,
                        &host_path,
                        &mut checks,
                    )
                    .await;
                    let Some(api_node) = api_nodes.iter().find(|a| a.name == node.name) else {
                        checks.push(Check::new(
                            &format!("mount {}", probe.path),
                            Some(&node.name),
                            Layer::Pod,
                            Status::Fail,
                            "the node is not registered in the API",
                        ));
                        return checks;
                    };
                    if !node_ok {
                        checks.push(Check::new(
                            &format!("mount {}", probe.path),
                            Some(&node.name),
                            Layer::Pod,
                            Status::Skip,
                            "not run: the node layer failed",
                        ));
                        return checks;
                    }
                    checks.push(
                        pod_layer(
                            api,
                            context,
                            api_node,
                            &probe,
                            &host_path,
                            &format!("mnt{index}"),
                            n,
                        )
                        .await,
                    );
                    checks
                }
            });
            for node_checks in join_all(per_node).await {
                checks.extend(node_checks);
            }
            context.leftovers.remove_sentinel(&host_path, &probe);
            checks
        });
    for mount_checks in join_all(runs).await {
        checks.extend(mount_checks);
    }
    checks
}

/// The node layer of one mount on one node; `true` when the pod layer should run.
async fn node_layer(
    target: &Target<'_>,
    node: &str,
    probe: &MountProbe,
    host_path_text: &str,
    host_path: &Path,
    checks: &mut Vec<Check>,
) -> bool {
    let (Some(_), None) = (target.docker, &target.node_layer_skipped) else {
        return true;
    };
    let Some(observed) = target.nodes.iter().find(|n| n.name == node) else {
        checks.push(
            Check::new(
                &format!("mount {}", probe.path),
                Some(node),
                Layer::Node,
                Status::Fail,
                "the node container is missing",
            )
            .hint("`devcluster status` shows the cluster; `devcluster up --recreate` rebuilds it"),
        );
        return false;
    };
    if let Some(check) = mounts::check_bind(
        observed,
        &target.nodes,
        host_path_text,
        &probe.path,
        probe.read_only,
    ) {
        checks.push(check);
        return false;
    }
    node_layer_exec(target, node, probe, host_path, checks).await
}

/// The pod layer of one mount on one node.
async fn pod_layer(
    api: &ProbeApi,
    context: &PodContext,
    node: &ProbeNode,
    probe: &MountProbe,
    host_path: &Path,
    prefix: &str,
    index: usize,
) -> Check {
    let volume = ProbeVolume {
        source: VolumeSource::HostPath {
            path: probe.path.clone(),
            file: probe.file,
        },
        mount_path: probe.path.clone(),
        sub_path: None,
        read_only: false,
    };
    let mut pod = context.pod(
        pods::pod_name(prefix, index),
        node,
        probe.script(Layer::Pod, &node.name),
        vec![volume],
    );
    pod.run_as_root = true;
    match pods::run_probe(api, context, &pod).await {
        Ok(outcome) if outcome.phase == "Timeout" || outcome.exit_code.is_none() => Check::new(
            &format!("mount {}", probe.path),
            Some(&node.name),
            Layer::Pod,
            Status::Fail,
            pods::describe(&outcome),
        )
        .hint(
            pods::stuck_hint(&outcome, "--probe-image").unwrap_or_else(|| {
                "the probe pod did not finish; its last events are above".to_string()
            }),
        ),
        Ok(outcome) => mounts::judge(
            probe,
            Layer::Pod,
            &node.name,
            i64::from(outcome.exit_code.unwrap_or(-1)),
            &outcome.logs,
            host_path,
        ),
        Err(e) => Check::new(
            &format!("mount {}", probe.path),
            Some(&node.name),
            Layer::Pod,
            Status::Fail,
            e,
        ),
    }
}

/// `--host-path`: a host directory proved from pods on the nodes of this machine.
async fn host_path_checks(
    target: &Target<'_>,
    api: &ProbeApi,
    context: &PodContext,
    api_nodes: &[ProbeNode],
    paths: &[PathBuf],
) -> Vec<Check> {
    let mut checks = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        let text = path.display().to_string();
        let mut probe = MountProbe {
            path: text.clone(),
            file: false,
            read_only: false,
            token: format!("{}h{index}", context.token),
            first_line: None,
        };
        if let Err(check) = mounts::prepare_host(path, &mut probe) {
            checks.push(check);
            continue;
        }
        context.leftovers.sentinel(path, &probe);
        checks.push(Check::new(
            &format!("mount {text}"),
            None,
            Layer::Host,
            Status::Ok,
            "sentinel written",
        ));
        let runs = api_nodes.iter().enumerate().map(|(n, node)| {
            let probe = probe.clone();
            async move {
                let kind_node = target.nodes.iter().any(|o| o.name == node.name);
                if kind_node {
                    let mut checks = Vec::new();
                    if node_layer_exec(target, &node.name, &probe, path, &mut checks).await {
                        checks.push(
                            pod_layer(api, context, node, &probe, path, &format!("hp{index}"), n)
                                .await,
                        );
                    } else {
                        checks.push(Check::new(
                            &format!("mount {}", probe.path),
                            Some(&node.name),
                            Layer::Pod,
                            Status::Skip,
                            "not run: the node layer failed",
                        ));
                    }
                    checks
                } else if runs_here(node) {
                    vec![
                        pod_layer(api, context, node, &probe, path, &format!("hp{index}"), n).await,
                    ]
                } else {
                    vec![Check::new(
                        &format!("mount {}", probe.path),
                        Some(&node.name),
                        Layer::Pod,
                        Status::Skip,
                        "not checkable: this node runs on another machine",
                    )]
                }
            }
        });
        for node_checks in join_all(runs).await {
            checks.extend(node_checks);
        }
        context.leftovers.remove_sentinel(path, &probe);
    }
    checks
}

/// The node layer for a host path on a kind node: the path must exist in the node.
async fn node_layer_exec(
    target: &Target<'_>,
    node: &str,
    probe: &MountProbe,
    host_path: &Path,
    checks: &mut Vec<Check>,
) -> bool {
    let Some(docker) = target.docker else {
        return true;
    };
    match docker
        .exec(node, &["sh", "-c", &probe.script(Layer::Node, node)])
        .await
    {
        Ok(output) => {
            let check = mounts::judge(
                probe,
                Layer::Node,
                node,
                output.exit_code,
                &output.stdout,
                host_path,
            );
            let ok = check.status == Status::Ok;
            checks.push(check);
            ok
        }
        Err(e) => {
            checks.push(Check::new(
                &format!("mount {}", probe.path),
                Some(node),
                Layer::Node,
                Status::Fail,
                format!("cannot run the probe in the node container: {e}"),
            ));
            false
        }
    }
}

/// A TCP mapping whose container port is in the default NodePort range.
fn is_node_port(port: &crate::core::plan::PortPlan) -> bool {
    port.protocol == crate::core::plan::Protocol::Tcp
        && (30000..=32767).contains(&port.container_port)
}

/// Whether a node is this machine: one of its addresses is local here, or its name
/// is this machine's hostname.
fn runs_here(node: &ProbeNode) -> bool {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if !hostname.is_empty() && (node.name == hostname || node.addresses.contains(&hostname)) {
        return true;
    }
    node.addresses.iter().any(|address| {
        address
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || UdpSocket::bind((ip, 0)).is_ok())
    })
}

/// Storage on every schedulable node, and ReadWriteOncePod.
async fn storage_checks(
    target: &Target<'_>,
    api: &ProbeApi,
    context: &PodContext,
    nodes: &[ProbeNode],
    class: Option<&str>,
    version: (u32, u32),
) -> Vec<Check> {
    let class = match class {
        Some(class) => class.to_string(),
        None => match api.default_storage_class().await {
            Ok(Some(class)) => class,
            Ok(None) => {
                return vec![
                    Check::new(
                        "storage",
                        None,
                        Layer::Pod,
                        Status::Skip,
                        "skipped: the cluster has no default StorageClass",
                    )
                    .hint("pass --storage-class NAME to check one"),
                ];
            }
            Err(e) => {
                return vec![Check::new(
                    "storage",
                    None,
                    Layer::Pod,
                    Status::Fail,
                    e.to_string(),
                )];
            }
        },
    };
    let (mut checks, rwop) = tokio::join!(pods::storage(api, context, nodes, &class), async {
        // ReadWriteOncePod: alpha in 1.22, on by default from 1.27.
        if version < (1, 22) {
            return Check::new(
                "ReadWriteOncePod",
                None,
                Layer::Pod,
                Status::Skip,
                format!(
                    "not supported by this cluster (Kubernetes {}.{}; needs 1.22+)",
                    version.0, version.1
                ),
            );
        }
        let hint = match target.plan {
            Some(_) => {
                "ReadWriteOncePod needs local-path-provisioner v0.0.30+: node images from kind v0.26.0 or later"
            }
            None => {
                "the cluster's provisioner or Kubernetes version does not support ReadWriteOncePod"
            }
        };
        pods::read_write_once_pod(api, context, nodes, &class, hint).await
    });
    checks.push(rwop);
    checks
}

/// Ports: through Docker, each planned host port is published by its node and no
/// other; through an echo pod, the ingress port (and NodePort mappings) reach a
/// backend and return this run's token.
async fn port_checks(
    target: &Target<'_>,
    api: &ProbeApi,
    context: &PodContext,
    nodes: &[ProbeNode],
) -> Vec<Check> {
    let Some(plan) = target.plan else {
        return Vec::new();
    };
    let mut checks = Vec::new();
    // Only what Docker showed of the node containers is read here.
    let node_layer = !target.nodes.is_empty() && target.node_layer_skipped.is_none();
    let mut reachable = Vec::new();
    for node in &plan.nodes {
        for port in &node.ports {
            let name = format!("port {}/{}", port.container_port, port.protocol.as_str());
            if !node_layer {
                continue;
            }
            let Some(observed) = target.nodes.iter().find(|n| n.name == node.name) else {
                continue;
            };
            let protocol = port.protocol.as_str().to_ascii_lowercase();
            let wanted = crate::adapters::docker::WantedPort {
                container_port: port.container_port,
                protocol: &protocol,
                host_port: port.host_port,
                listen_address: &port.listen_address,
            };
            let binding = match observed.binding(&wanted) {
                crate::adapters::docker::Binding::Published(binding) => binding,
                crate::adapters::docker::Binding::Unconfirmed(asked) => {
                    checks.push(
                        Check::new(
                            &name,
                            Some(&node.name),
                            Layer::Node,
                            Status::Warn,
                            format!(
                                "unconfirmed: {} was created with {}:{}, but Docker reports no host binding",
                                node.name, port.listen_address, port.host_port
                            ),
                        )
                        .hint("some Docker Desktop releases report bindings empty (docker/for-mac#7787); `docker port NODE` or a request to the port shows whether it works"),
                    );
                    if asked.host_port != 0 {
                        reachable.push((
                            port.clone(),
                            asked.host_ip.clone(),
                            asked.host_port,
                            node.name.clone(),
                        ));
                    }
                    continue;
                }
                crate::adapters::docker::Binding::Missing => {
                    checks.push(
                        Check::new(
                            &name,
                            Some(&node.name),
                            Layer::Node,
                            Status::Fail,
                            format!(
                                "{} does not publish {}:{}",
                                node.name, port.listen_address, port.host_port
                            ),
                        )
                        .hint("`devcluster up --recreate` rebuilds the node from the profile"),
                    );
                    continue;
                }
            };
            let others: Vec<&str> = target
                .nodes
                .iter()
                .filter(|o| {
                    o.name != node.name
                        && o.ports.iter().chain(&o.requested_ports).any(|p| {
                            p.host_port == binding.host_port
                                && p.protocol.eq_ignore_ascii_case(&protocol)
                        })
                })
                .map(|o| o.name.as_str())
                .collect();
            if others.is_empty() {
                // A profile mapping outside the NodePort range has nothing devcluster
                // could answer behind it: the node layer is its whole proof.
                let probed = port.purpose != PortPurpose::Profile || is_node_port(port);
                checks.push(Check::new(
                    &name,
                    Some(&node.name),
                    Layer::Node,
                    Status::Ok,
                    format!(
                        "published on {}:{} by this node only{}",
                        binding.host_ip,
                        binding.host_port,
                        if probed {
                            ""
                        } else {
                            "; published; not probed over HTTP"
                        }
                    ),
                ));
                reachable.push((
                    port.clone(),
                    binding.host_ip.clone(),
                    binding.host_port,
                    node.name.clone(),
                ));
            } else {
                checks.push(Check::new(
                    &name,
                    Some(&node.name),
                    Layer::Node,
                    Status::Fail,
                    format!(
                        "host port {} is also published by {}",
                        binding.host_port,
                        others.join(", ")
                    ),
                ));
            }
        }
    }
    let ingress = plan
        .ingress
        .as_ref()
        .filter(|i| i.controller != ControllerPlan::None);
    let http = reachable
        .iter()
        .find(|(p, _, _, _)| p.purpose == PortPurpose::IngressHttp);
    let mut node_ports: Vec<_> = reachable
        .iter()
        .filter(|(p, _, _, _)| p.purpose == PortPurpose::Profile && is_node_port(p))
        .collect();
    // A node port another Service holds cannot be the echo backend's.
    if !node_ports.is_empty() {
        let held = api.node_ports_in_use().await.unwrap_or_default();
        node_ports.retain(|(port, _, _, node)| {
            match held.iter().find(|(p, _)| *p == port.container_port) {
                Some((_, service)) => {
                    checks.push(Check::new(
                        &format!("nodeport {}", port.container_port),
                        Some(node),
                        Layer::Pod,
                        Status::Skip,
                        format!(
                            "skipped: node port {} is taken by Service {service}; published; not probed over HTTP",
                            port.container_port
                        ),
                    ));
                    false
                }
                None => true,
            }
        });
    }
    if (ingress.is_none() || http.is_none()) && node_ports.is_empty() {
        return checks;
    }
    let Some(backend_node) = nodes.first() else {
        return checks;
    };
    let mut pod = context.pod(
        "echo".into(),
        backend_node,
        pods::echo_script(&context.token),
        Vec::<ProbeVolume>::new(),
    );
    pod.image = context.echo_image.clone();
    pod.labels.insert(
        "devcluster.dev/probe".into(),
        format!("echo-{}", context.token),
    );
    let ready = match api.create_pod(&context.namespace, &pod).await {
        Ok(()) => api
            .wait_pod(&context.namespace, "echo", context.deadline, true)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let mut echo_hint = None;
    let ready = match ready {
        Ok(outcome) if outcome.phase == "Running" => Ok(()),
        Ok(outcome) => {
            echo_hint = pods::stuck_hint(&outcome, "--echo-image");
            Err(pods::describe(&outcome))
        }
        Err(e) => Err(e),
    };
    if let Some(routes_error) = match (
        &ready,
        pods::echo_routes(
            &context.namespace,
            &context.token,
            ingress.is_some() && http.is_some(),
            &node_ports
                .iter()
                .map(|(p, _, _, _)| p.container_port)
                .collect::<Vec<_>>(),
        ),
    ) {
        (Ok(()), Ok(routes)) => api
            .create_echo_routes(&context.namespace, &routes)
            .await
            .err()
            .map(|e| e.to_string()),
        (Err(e), _) => Some(format!("the echo backend did not start: {e}")),
        (_, Err(e)) => Some(e),
    } {
        let name = match (ingress.is_some() && http.is_some(), node_ports.first()) {
            (true, _) | (false, None) => "ingress".to_string(),
            (false, Some((port, _, _, _))) => format!("nodeport {}", port.container_port),
        };
        let mut check = Check::new(&name, None, Layer::Pod, Status::Fail, routes_error);
        if let Some(hint) = echo_hint {
            check = check.hint(hint);
        }
        checks.push(check);
        return checks;
    }
    // (row name, node, host address, host port, hint when it fails)
    let mut probes: Vec<(String, String, String, u16, String)> = Vec::new();
    if let (Some(_), Some((_, ip, port, node))) = (ingress, http) {
        probes.push(("ingress".to_string(), node.clone(), ip.clone(), *port,
            "the controller must run on the node that publishes the port (nodeSelector ingress-ready=true); see `kubectl -n ingress-nginx get pods -o wide`".to_string()));
    }
    for (port, ip, host_port, node) in node_ports {
        probes.push((
            format!("nodeport {}", port.container_port),
            node.clone(),
            ip.clone(),
            *host_port,
            format!(
                "the NodePort Service on {} must reach the echo pod: kube-proxy serves node ports on every node (`kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide`)",
                port.container_port
            ),
        ));
    }
    for (name, node, ip, port, hint) in probes {
        let host = if ip.is_empty() || ip == "0.0.0.0" {
            "127.0.0.1".to_string()
        } else {
            ip
        };
        let path = pods::echo_path(&context.token);
        let mut last = String::new();
        let ok = loop {
            match pods::http_get(&host, port, &path, Duration::from_secs(5)).await {
                Ok(body) if body.contains(&context.token) => break true,
                Ok(body) => last = body.lines().next().unwrap_or("").to_string(),
                Err(e) => last = e,
            }
            if Instant::now() + Duration::from_secs(1) >= context.deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        checks.push(if ok {
            Check::new(
                &name,
                Some(&node),
                Layer::Pod,
                Status::Ok,
                format!("http://{host}:{port}{path}/ returned this run's token"),
            )
        } else {
            Check::new(
                &name,
                Some(&node),
                Layer::Pod,
                Status::Fail,
                format!("http://{host}:{port}{path}/ did not return the token: {last}"),
            )
            .hint(hint)
        });
    }
    checks
}
