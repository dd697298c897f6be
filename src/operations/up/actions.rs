//! `up`'s actions, one small function each, in the order a route runs them
//! ([`for_route`]). Each action reads and fills the shared [`UpContext`] and
//! returns the detail for its status line; what it makes that a failure must undo
//! it pushes onto the context's cleanup stack.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::adapters::docker::NodeRuntime;
use crate::adapters::kind::{CreateOutcome, CreateRequest};
use crate::adapters::kube::cluster::{ClusterApi, Look, StorageFix, poll_until};
use crate::core::error::{Error, Result};
use crate::core::kindconfig;
use crate::core::plan::{ClusterPlan, TaintEffect};
use crate::core::record;
use crate::core::record::{Phase, Record};
use crate::operations::addons::{self, ControllerSource};
use crate::operations::registry as local_registry;

use super::UpOptions;
use super::cleanup::Cleanup;
use super::existing::Route;
use super::runner::UpContext;
use crate::operations::cluster::{record_holder_name, write_node_record};

/// One action of `up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Download and check the pinned ingress controller manifest.
    Fetch,
    /// `doctor`'s checks for this plan; kind is not run when one fails.
    Preflight,
    /// Delete the cluster a recreate replaces.
    DeleteOld,
    /// `kind create cluster`.
    Create,
    /// The record with phase `created` on the new nodes.
    RecordCreated,
    /// The cluster's kubeconfig, written to `--kubeconfig` when given.
    Kubeconfig,
    /// A client for the cluster's API.
    Connect,
    /// Every node Ready and CoreDNS available.
    WaitReady,
    /// For a plan without a CNI (the reason): every node registered.
    WaitRegistered(&'static str),
    /// local-path-provisioner's helper pods tolerate the plan's taints.
    FixStorage,
    /// The ingress controller applied, pinned to its node, and Ready.
    Ingress,
    /// The local registry running, on the `kind` network, known to every node.
    Registry,
    /// The record with this phase, in the ConfigMap and on the node.
    Record(Phase),
    /// `verify`'s probes, which watch the deadline and interruptions themselves.
    Verify,
}

/// Where an action stands in `up`, which decides what a failure in it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stage {
    /// Nothing made or deleted yet.
    Prepare,
    /// kind is making the nodes.
    Create,
    /// The nodes exist; the record, API access and readiness are being set up.
    /// The deadline (`--timeout`) starts here.
    Establish,
    /// Work on Ready nodes, which are never deleted from here on.
    Converge,
}

/// Who watches the deadline and interruptions while an action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Watch {
    /// The runner races the action against both.
    Runner,
    /// The action, which must not be cut short (its own cleanup runs before it
    /// returns, or it is not bound by the deadline).
    Itself,
}

/// How an action ended, when it did not fail.
#[derive(Debug)]
pub(super) enum Finished {
    /// Done, with the detail for the status line.
    Done(String),
    /// Stopped by an interruption, which the action heard itself.
    Interrupted(&'static str),
}

impl Action {
    /// The step's name in the result and in errors.
    pub(super) fn name(self) -> &'static str {
        match self {
            Action::Fetch => "fetch",
            Action::Preflight => "preflight",
            Action::DeleteOld => "delete",
            Action::Create => "create",
            Action::RecordCreated | Action::Record(_) => "record",
            Action::Kubeconfig => "kubeconfig",
            Action::Connect => "connect",
            Action::WaitReady | Action::WaitRegistered(_) => "wait",
            Action::FixStorage => "storage",
            Action::Ingress => "ingress",
            Action::Registry => "registry",
            Action::Verify => "verify",
        }
    }

    /// The status line's text.
    pub(super) fn label(self, plan: &ClusterPlan) -> String {
        match self {
            Action::DeleteOld => format!("delete cluster {}", plan.name),
            other => other.name().to_string(),
        }
    }

    pub(super) fn stage(self) -> Stage {
        match self {
            Action::Fetch | Action::Preflight | Action::DeleteOld => Stage::Prepare,
            Action::Create => Stage::Create,
            Action::RecordCreated
            | Action::Kubeconfig
            | Action::Connect
            | Action::WaitReady
            | Action::WaitRegistered(_) => Stage::Establish,
            Action::FixStorage
            | Action::Ingress
            | Action::Registry
            | Action::Record(_)
            | Action::Verify => Stage::Converge,
        }
    }

    pub(super) fn watch(self) -> Watch {
        match self {
            Action::DeleteOld | Action::Create | Action::Verify => Watch::Itself,
            _ => Watch::Runner,
        }
    }
}

/// The actions of `route` for `plan`, in order. Everything is fetched and checked
/// before anything is created or deleted, so a network failure or a failed check
/// costs seconds, not a cluster.
pub(super) fn for_route(plan: &ClusterPlan, args: &UpOptions, route: Route) -> Vec<Action> {
    let mut actions = Vec::new();
    let controller = addons::controller_source(plan).is_some();
    if controller {
        actions.push(Action::Fetch);
    }
    if route.creates() {
        // Preflight counts the ports a recreated cluster publishes as its own.
        actions.push(Action::Preflight);
    }
    if route == Route::Recreate {
        actions.push(Action::DeleteOld);
    }
    if route.creates() {
        actions.extend([Action::Create, Action::RecordCreated]);
    }
    actions.extend([Action::Kubeconfig, Action::Connect]);
    actions.push(match waits_for_cni(plan) {
        None => Action::WaitReady,
        Some(why) => Action::WaitRegistered(why),
    });
    if plan.storage.tolerate_tainted_nodes && has_scheduling_taints(plan) {
        actions.push(Action::FixStorage);
    }
    if controller && plan.ingress_node().is_some() {
        actions.push(Action::Ingress);
    }
    if plan.registry.is_some() {
        actions.push(Action::Registry);
    }
    if args.no_verify {
        actions.push(Action::Record(Phase::Complete));
    } else {
        actions.extend([
            Action::Record(Phase::Converged),
            Action::Verify,
            Action::Record(Phase::Complete),
        ]);
    }
    actions
}

/// Runs `action` over `context`.
pub(super) async fn execute(action: Action, context: &mut UpContext<'_>) -> Result<Finished> {
    let detail = match action {
        Action::Create => return create(context).await,
        Action::Fetch => fetch(context).await?,
        Action::Preflight => preflight(context).await?,
        Action::DeleteOld => delete_old(context).await?,
        Action::RecordCreated => record_created(context).await?,
        Action::Kubeconfig => kubeconfig(context).await?,
        Action::Connect => connect(context).await?,
        Action::WaitReady => wait_ready(context).await?,
        Action::WaitRegistered(why) => wait_registered(context, why).await?,
        Action::FixStorage => fix_storage(context).await?,
        Action::Ingress => ingress(context).await?,
        Action::Registry => registry(context).await?,
        Action::Record(phase) => record(context, phase).await?,
        Action::Verify => verify(context).await?,
    };
    Ok(Finished::Done(detail))
}

/// Why nodes of this plan will not become Ready by themselves: no CNI, or no
/// kube-proxy (kind `pkg/cluster/internal/create/actions/installcni/cni.go` skips
/// kindnet when `disableDefaultCNI` is set; the kubelet reports NotReady until a
/// network plugin is initialized).
pub fn waits_for_cni(plan: &ClusterPlan) -> Option<&'static str> {
    if plan.networking.disable_default_cni {
        Some("the profile disables kind's default CNI (`disableDefaultCNI: true`)")
    } else if plan.networking.kube_proxy_mode.as_deref() == Some("none") {
        Some("the profile runs no kube-proxy (`kubeProxyMode: none`)")
    } else {
        None
    }
}

fn has_scheduling_taints(plan: &ClusterPlan) -> bool {
    plan.nodes.iter().any(|n| {
        n.taints
            .iter()
            .any(|t| matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute))
    })
}

fn controller(plan: &ClusterPlan) -> Result<ControllerSource> {
    earlier(
        addons::controller_source(plan),
        "the plan's ingress controller",
    )
}

/// What an action needs that [`for_route`] puts an earlier action (or a plan
/// field) in charge of; missing only if the list is built wrong.
fn earlier<T>(value: Option<T>, what: &str) -> Result<T> {
    value.ok_or_else(|| {
        Error::failed(format!(
            "{what} is missing: the step that provides it did not run"
        ))
    })
}

async fn fetch(context: &mut UpContext<'_>) -> Result<String> {
    let source = controller(context.plan)?;
    let cache = context
        .app
        .world
        .cache_dir()
        .unwrap_or_else(|| std::env::temp_dir().join("devcluster-cache"));
    context.manifest = Some(addons::fetch_manifest(&source, &cache).await?);
    Ok(format!(
        "{} manifest, SHA-256 {}",
        source.label,
        &source.sha256[..source.sha256.len().min(12)]
    ))
}

async fn preflight(context: &mut UpContext<'_>) -> Result<String> {
    let checks = crate::operations::doctor::preflight(context.app, context.plan).await;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.failed())
        .map(|c| c.summary())
        .collect();
    if !failed.is_empty() {
        return Err(Error::failed(format!(
            "{} preflight check(s) failed; kind was not run",
            failed.len()
        ))
        .details(failed.join("\n"))
        .hint("fix the above, then run `devcluster up` again (`devcluster doctor` repeats the checks)"));
    }
    let warned = checks.iter().filter(|c| c.warned()).count();
    Ok(format!("{} checks, {warned} warnings", checks.len()))
}

async fn delete_old(context: &mut UpContext<'_>) -> Result<String> {
    let UpContext {
        kind, plan, args, ..
    } = *context;
    kind.delete(&plan.name, args.kubeconfig.as_deref()).await?;
    Ok(String::new())
}

/// Runs `kind create cluster` under its own limit (`--create-timeout`), not the
/// deadline. The cluster goes onto the cleanup stack before kind starts, so a
/// failed or interrupted create (an interruption stops kind's whole process
/// group) is rolled back unless `--retain`.
async fn create(context: &mut UpContext<'_>) -> Result<Finished> {
    context
        .cleanup
        .push(Cleanup::HalfMadeCluster { created: false });
    let UpContext {
        app,
        deps,
        kind,
        plan,
        args,
        ..
    } = *context;
    let config = kindconfig::render(plan);
    let request = CreateRequest {
        name: &plan.name,
        config: &config,
        image: plan.image.as_deref(),
        kubeconfig: args.kubeconfig.as_deref(),
        retain: args.retain,
        limit: args.create_timeout,
    };
    let ui = app.ui.clone();
    let relay = move |line: &str| ui.line(&format!("    {line}"));
    let mut interrupted_by = "an interruption";
    let stop = async {
        interrupted_by = deps.interrupt.wait().await;
    };
    match kind.create(&request, relay, stop).await? {
        CreateOutcome::Created => {
            context.cleanup.mark_created();
            Ok(Finished::Done(format!("{} node(s)", plan.nodes.len())))
        }
        CreateOutcome::Stopped => Ok(Finished::Interrupted(interrupted_by)),
    }
}

async fn record_created(context: &mut UpContext<'_>) -> Result<String> {
    let holder = record_holder_name(context.plan)?;
    let record = Record::new(context.plan, Phase::Created);
    write_node_record(context.docker, &holder, &record).await?;
    Ok(format!("phase created, {holder}:{}", record::RECORD_PATH))
}

async fn kubeconfig(context: &mut UpContext<'_>) -> Result<String> {
    let text = context.kind.kubeconfig(&context.plan.name).await?;
    let detail = match &context.args.kubeconfig {
        Some(path) => {
            write_kubeconfig(path, &text)?;
            path.display().to_string()
        }
        None => format!("context {}", context.plan.context_name()),
    };
    context.kubeconfig = Some(text);
    Ok(detail)
}

async fn connect(context: &mut UpContext<'_>) -> Result<String> {
    let kubeconfig = earlier(context.kubeconfig.as_deref(), "the cluster's kubeconfig")?;
    let api = context
        .deps
        .connector
        .connect(kubeconfig, Some(&context.plan.context_name()))
        .await?;
    context.set_api(api);
    Ok(String::new())
}

fn expected_nodes(plan: &ClusterPlan) -> Vec<String> {
    plan.nodes.iter().map(|n| n.name.clone()).collect()
}

async fn wait_ready(context: &mut UpContext<'_>) -> Result<String> {
    let expected = expected_nodes(context.plan);
    let ui = context.app.ui.clone();
    context
        .api()?
        .wait_ready(&expected, context.deadline, &mut |waiting| {
            ui.line(&format!("    waiting: {waiting}"))
        })
        .await?;
    Ok(format!(
        "{} node(s) Ready, CoreDNS available",
        expected.len()
    ))
}

async fn wait_registered(context: &mut UpContext<'_>, why: &'static str) -> Result<String> {
    let expected = expected_nodes(context.plan);
    let ui = context.app.ui.clone();
    let blocked = until_registered(
        context.api()?.as_ref(),
        &expected,
        context.deadline,
        why,
        &mut |waiting| ui.line(&format!("    waiting: {waiting}")),
    )
    .await?;
    let detail = match &blocked {
        None => format!("{} node(s) Ready, CoreDNS available", expected.len()),
        Some(_) => format!(
            "{} node(s) registered; not Ready without a CNI",
            expected.len()
        ),
    };
    context.blocked = blocked;
    Ok(detail)
}

/// For a plan without a CNI: waits until every node has registered, then says
/// why the rest cannot run yet (`None` when the nodes are Ready and CoreDNS is
/// available, e.g. after the user installed a CNI).
async fn until_registered(
    api: &dyn ClusterApi,
    expected: &[String],
    deadline: Instant,
    why: &str,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Option<String>> {
    poll_until(deadline, progress, || async {
        let nodes = match api.nodes().await {
            Ok(nodes) => nodes,
            Err(e) => return Look::Waiting(e.to_string()),
        };
        let missing: Vec<&str> = expected
            .iter()
            .filter(|name| !nodes.iter().any(|n| &n.name == *name))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Look::Waiting(format!("nodes not registered: {}", missing.join(", ")));
        }
        let not_ready: Vec<String> = nodes
            .iter()
            .filter(|n| expected.contains(&n.name) && !n.ready)
            .map(|n| format!("{} ({})", n.name, n.reason))
            .collect();
        if not_ready.is_empty() && api.coredns_available().await.unwrap_or(false) {
            return Look::Done(None);
        }
        let state = if not_ready.is_empty() {
            "CoreDNS is not available".to_string()
        } else {
            format!("nodes not Ready: {}", not_ready.join(", "))
        };
        Look::Done(Some(format!("{why}; {state}")))
    })
    .await
    .map_err(|waiting| {
        Error::failed("the nodes did not register in time")
            .cause(waiting)
            .hint("raise `--timeout`, or look at `kubectl get nodes -o wide`")
    })
}

async fn fix_storage(context: &mut UpContext<'_>) -> Result<String> {
    let detail = match context
        .api()?
        .fix_local_path_tolerations(context.deadline)
        .await?
    {
        StorageFix::Applied => "local-path helper pods now tolerate tainted nodes",
        StorageFix::NotNeeded => "local-path helper pods already tolerate tainted nodes",
        StorageFix::NotInstalled => "no local-path-provisioner found; nothing to fix",
    };
    Ok(detail.to_string())
}

async fn ingress(context: &mut UpContext<'_>) -> Result<String> {
    let source = controller(context.plan)?;
    let node = earlier(context.plan.ingress_node(), "the plan's ingress node")?;
    let manifest = earlier(
        context.manifest.as_deref(),
        "the ingress controller manifest",
    )?;
    let documents = addons::pin_controller(
        manifest,
        &source,
        &node.taints,
        addons::node_ingress_ports(context.plan),
    )?;
    let (definitions, names, rest) = addons::definitions_first(documents);
    let api = context.api()?;
    api.apply(&definitions).await?;
    api.wait_established(&names, context.deadline).await?;
    api.apply(&rest).await?;
    for selector in &source.workloads {
        api.wait_pods_ready(&source.namespace, selector, context.deadline)
            .await?;
    }
    Ok(format!("{} ready on {}", source.label, node.name))
}

/// The local registry, as kind's registry guide sets it up: the container made or
/// reused, joined to the `kind` network, a `hosts.toml` in every node, and the
/// KEP-1755 ConfigMap.
async fn registry(context: &mut UpContext<'_>) -> Result<String> {
    let registry = earlier(context.plan.registry.as_ref(), "the plan's registry")?;
    let runtime: &dyn NodeRuntime = context.docker;
    let container = local_registry::ensure_container(runtime, registry).await?;
    if container != local_registry::Container::Reused {
        let limit = Instant::now() + Duration::from_secs(30);
        local_registry::wait_answering(registry, context.deadline.min(limit)).await?;
    }
    local_registry::join_kind_network(runtime, registry).await?;
    local_registry::configure_nodes(runtime, context.plan, registry).await?;
    context
        .api()?
        .apply(&[local_registry::hosting_config_map(registry)])
        .await?;
    Ok(format!(
        "{} {} on {}:{}; {} node(s) pull {}",
        container.as_str(),
        registry.container,
        registry.listen_address,
        registry.host_port,
        context.plan.nodes.len(),
        registry.host()
    ))
}

/// Writes the record with `phase`: the ConfigMap first, the node's copy last. The
/// node's copy decides what the next `up` does, so it never claims a phase the
/// ConfigMap did not get.
async fn record(context: &mut UpContext<'_>, phase: Phase) -> Result<String> {
    let holder = record_holder_name(context.plan)?;
    let record = Record::new(context.plan, phase);
    context
        .api()?
        .write_record(
            record::RECORD_NAMESPACE,
            record::RECORD_CONFIGMAP,
            &record.to_json(),
        )
        .await?;
    write_node_record(context.docker, &holder, &record).await?;
    Ok(format!(
        "phase {}, {holder}:{} and ConfigMap {}/{}",
        phase.as_str(),
        record::RECORD_PATH,
        record::RECORD_NAMESPACE,
        record::RECORD_CONFIGMAP
    ))
}

/// `verify` after `up`; it hears interruptions itself and removes what it made
/// before it returns.
async fn verify(context: &mut UpContext<'_>) -> Result<String> {
    let args = context.args;
    let images = crate::operations::verify::Images {
        probe_image: args.probe_image.clone(),
        echo_image: args.echo_image.clone(),
        pull_policy: args.image_pull_policy,
    };
    crate::operations::verify::verify_after_up(
        context.app,
        context.docker,
        context.plan,
        context.deadline,
        context.api()?,
        &images,
        &context.deps.interrupt,
    )
    .await
}

/// Writes the cluster's kubeconfig to `path` with mode 0600, as kind writes its
/// own (kind `pkg/cluster/internal/kubeconfig/internal/kubeconfig/write.go`): it
/// holds the cluster's admin credentials.
pub(super) fn write_kubeconfig(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::failed(format!("cannot create {}", dir.display())).cause(e))?;
    }
    let cannot = |e: std::io::Error| {
        Error::failed(format!("cannot write the kubeconfig {}", path.display())).cause(e)
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(cannot)?;
    // An existing file keeps its mode on open; narrow it too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(cannot)?;
    file.write_all(text.as_bytes()).map_err(cannot)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::kube::canned::{CannedCluster, CannedNode};

    /// What the kubelet reports while no network plugin is installed
    /// (`pkg/kubelet/nodestatus/setters.go`, `ReadyCondition`, with the
    /// runtime's network status).
    const NO_CNI: &str = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized";
    const WHY: &str = "the profile disables kind's default CNI (`disableDefaultCNI: true`)";

    fn expected() -> Vec<String> {
        vec!["c-control-plane".to_string(), "c-worker".to_string()]
    }

    #[tokio::test]
    async fn nodes_without_a_cni_are_awaited_until_all_registered_then_named_not_ready() {
        let api = Arc::new(CannedCluster::new());
        api.add_node(CannedNode::not_ready("c-control-plane", NO_CNI));
        let later = api.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            later.add_node(CannedNode::not_ready("c-worker", NO_CNI));
        });
        let mut heard = Vec::new();
        let blocked = until_registered(
            api.as_ref(),
            &expected(),
            Instant::now() + Duration::from_secs(10),
            WHY,
            &mut |w: &str| heard.push(w.to_string()),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(heard, vec!["nodes not registered: c-worker".to_string()]);
        assert_eq!(
            blocked,
            Some(format!(
                "{WHY}; nodes not Ready: c-control-plane ({NO_CNI}), c-worker ({NO_CNI})"
            ))
        );
    }

    #[tokio::test]
    async fn nodes_a_user_gave_a_cni_run_the_rest_of_up() {
        let api = CannedCluster::ready(&["c-control-plane", "c-worker"]);
        let blocked = until_registered(
            &api,
            &expected(),
            Instant::now() + Duration::from_secs(10),
            WHY,
            &mut |_| {},
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(blocked, None);
        // Ready nodes without CoreDNS still block the rest, saying so.
        let api = CannedCluster::new();
        api.add_node(CannedNode::ready("c-control-plane"));
        api.add_node(CannedNode::ready("c-worker"));
        let blocked = until_registered(
            &api,
            &expected(),
            Instant::now() + Duration::from_secs(10),
            WHY,
            &mut |_| {},
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(blocked, Some(format!("{WHY}; CoreDNS is not available")));
    }

    #[tokio::test]
    async fn a_node_that_never_registers_is_named_at_the_deadline() {
        let api = CannedCluster::new();
        api.add_node(CannedNode::not_ready("c-control-plane", NO_CNI));
        let error = until_registered(
            &api,
            &expected(),
            Instant::now() + Duration::from_millis(200),
            WHY,
            &mut |_| {},
        )
        .await
        .err()
        .map(|e| e.render())
        .unwrap_or_default();
        assert!(
            error.contains("the nodes did not register in time"),
            "{error}"
        );
        assert!(error.contains("nodes not registered: c-worker"), "{error}");
        assert!(error.contains("raise `--timeout`"), "{error}");
    }
}
