//! `up`, `down` and `status`: drive kind and Docker to a ready, recorded cluster,
//! idempotently, and report what runs against what was recorded.

pub mod addons;
pub mod download;
pub mod lock;
pub mod record;
pub mod status;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::App;
use crate::cli::{DownArgs, Output, StatusArgs, UpArgs, print_json};
use crate::docker::{Docker, DockerError, ObservedNode};
use crate::error::{Error, ExitCode, Result};
use crate::kind::{CreateRequest, Kind};
use crate::kindconfig;
use crate::kube::cluster::{Connector, StorageFix};
use crate::plan::{ClusterPlan, Role, TaintEffect};
use record::Record;

/// How long past the deadline a step may take to report its own timeout.
const DEADLINE_GRACE: Duration = Duration::from_secs(3);

/// What the outside world lends `up`, so tests can replace the parts no test
/// machine has (a real API server) and deliver a Ctrl-C on cue.
#[derive(Debug, Clone, Default)]
pub struct Deps {
    pub connector: Connector,
    pub interrupt: Interrupt,
}

/// Where an interruption comes from.
#[derive(Debug, Clone, Default)]
pub enum Interrupt {
    /// Ctrl-C (SIGINT) to this process.
    #[default]
    CtrlC,
    /// As if Ctrl-C came after this long (tests).
    After(Duration),
    /// Never.
    Never,
}

impl Interrupt {
    async fn wait(&self) {
        match self {
            Interrupt::CtrlC => {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            Interrupt::After(delay) => tokio::time::sleep(*delay).await,
            Interrupt::Never => std::future::pending::<()>().await,
        }
    }
}

/// What `up` did, for `-o json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpResult {
    pub cluster: String,
    /// `created`, `recreated` or `up-to-date`.
    pub action: &'static str,
    pub context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_url: Option<String>,
    pub nodes: Vec<String>,
    pub plan_hash: String,
    pub steps: Vec<StepResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub name: &'static str,
    pub seconds: f64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

pub async fn up(app: &App, args: &UpArgs) -> Result<ExitCode> {
    let result = run_up(app, args, &Deps::default()).await?;
    if args.output == Output::Json {
        print_json(&result);
    }
    Ok(ExitCode::Success)
}

pub async fn down(app: &App, args: &DownArgs) -> Result<ExitCode> {
    run_down(app, args).await
}

pub async fn status(app: &App, args: &StatusArgs) -> Result<ExitCode> {
    status::run(app, args).await
}

/// Turns a Docker failure into a user-facing error with the next step.
pub fn docker_error(error: DockerError) -> Error {
    match &error {
        DockerError::Unreachable { .. } | DockerError::Timeout { .. } => {
            Error::failed("Docker is not reachable").cause(error).hint(
                "start Docker (or Docker Desktop/Colima), check `DOCKER_HOST`, then run `devcluster doctor`",
            )
        }
        _ => Error::failed("a Docker call failed").cause(error),
    }
}

fn lock_dir(app: &App) -> PathBuf {
    app.world
        .cache_dir()
        .map(|d| d.join("locks"))
        .unwrap_or_else(|| std::env::temp_dir().join("devcluster-locks"))
}

/// The first control-plane container, where the record lives.
fn record_holder(nodes: &[ObservedNode]) -> Option<&ObservedNode> {
    nodes
        .iter()
        .filter(|n| n.role == Role::ControlPlane.as_str())
        .min_by(|a, b| a.name.len().cmp(&b.name.len()).then(a.name.cmp(&b.name)))
}

/// Reads devcluster's record from the cluster's first control-plane container.
pub async fn read_record(docker: &Docker, nodes: &[ObservedNode]) -> Option<Record> {
    let holder = record_holder(nodes)?;
    if holder.state != "running" {
        return None;
    }
    let output = docker
        .exec(&holder.name, &["cat", record::RECORD_PATH])
        .await
        .ok()?;
    if output.exit_code != 0 {
        return None;
    }
    Record::from_json(&output.stdout)
}

async fn write_node_record(docker: &Docker, node: &str, record: &Record) -> Result<()> {
    let script = format!(
        "mkdir -p {} && cat > {}.tmp && mv {}.tmp {}",
        record::RECORD_DIR,
        record::RECORD_PATH,
        record::RECORD_PATH,
        record::RECORD_PATH
    );
    let output = docker
        .exec_with_stdin(node, &["sh", "-c", &script], record.to_json().as_bytes())
        .await
        .map_err(docker_error)?;
    if output.exit_code != 0 {
        return Err(
            Error::failed(format!("cannot write devcluster's record into {node}"))
                .cause(output.stderr.trim().to_string()),
        );
    }
    Ok(())
}

/// Finds kind, or installs the pinned release with `--install-kind` (or a yes at
/// the prompt).
async fn find_kind(app: &App, install: bool) -> Result<Kind> {
    match Kind::discover(&app.world) {
        Ok(kind) => Ok(kind),
        Err(missing) => {
            let cached = app
                .world
                .cache_dir()
                .zip(download::platform())
                .map(|(dir, platform)| {
                    dir.join("bin")
                        .join(format!("kind-{}-{platform}", download::KIND_RELEASE))
                });
            if let Some(path) = cached.as_ref().filter(|p| p.is_file()) {
                return Ok(Kind::at(path.clone(), &app.world));
            }
            let ask = !install
                && app.world.can_prompt()
                && dialoguer::Confirm::new()
                    .with_prompt(format!(
                        "kind is not installed. Download kind {} into {}?",
                        download::KIND_RELEASE,
                        cached
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ))
                    .default(false)
                    .interact()
                    .unwrap_or(false);
            if !(install || ask) {
                return Err(missing);
            }
            let platform = download::platform().ok_or_else(|| {
                Error::failed("kind publishes no release for this platform")
                    .hint("install kind yourself")
            })?;
            let (url, sum) = download::kind_release(platform)
                .ok_or_else(|| Error::failed(format!("no pinned kind release for {platform}")))?;
            let dest = cached.ok_or_else(|| {
                Error::failed("no cache directory to install kind into")
                    .hint("set HOME or XDG_CACHE_HOME")
            })?;
            let step = app
                .ui
                .step(&format!("install kind {}", download::KIND_RELEASE));
            match download::fetch_pinned(&url, sum, &dest, true).await {
                Ok(path) => {
                    step.done(&path.display().to_string());
                    Ok(Kind::at(path, &app.world))
                }
                Err(e) => {
                    step.fail("");
                    Err(e)
                }
            }
        }
    }
}

/// Runs one step under a status line, racing it against Ctrl-C and the deadline.
struct Runner<'a> {
    app: &'a App,
    deps: &'a Deps,
    deadline: Instant,
    steps: Vec<StepResult>,
}

enum Outcome<T> {
    Done(T),
    Interrupted,
}

impl Runner<'_> {
    async fn step<T>(
        &mut self,
        name: &'static str,
        future: impl std::future::Future<Output = Result<(T, String)>>,
    ) -> Result<Outcome<T>> {
        let started = Instant::now();
        let step = self.app.ui.step(name);
        // Steps that watch the deadline themselves (waiting on nodes or pods) say
        // what they were waiting for; the grace lets their error win.
        let remaining = self.deadline.saturating_duration_since(Instant::now()) + DEADLINE_GRACE;
        tokio::select! {
            result = future => match result {
                Ok((value, detail)) => {
                    step.done(&detail);
                    self.steps.push(StepResult { name, seconds: started.elapsed().as_secs_f64(), detail });
                    Ok(Outcome::Done(value))
                }
                Err(error) => {
                    step.fail("");
                    Err(error.context(format!("step `{name}` failed")))
                }
            },
            _ = self.deps.interrupt.wait() => {
                step.fail("interrupted");
                Ok(Outcome::Interrupted)
            }
            _ = tokio::time::sleep(remaining) => {
                step.fail("deadline");
                Err(Error::failed(format!("step `{name}` did not finish before the deadline"))
                    .hint("raise `--timeout`"))
            }
        }
    }
}

/// `devcluster up`, with its dependencies passed in.
pub async fn run_up(app: &App, args: &UpArgs, deps: &Deps) -> Result<UpResult> {
    let (_, plan) = app.plan(
        args.profile.profile.as_deref(),
        args.profile.name.as_deref(),
    )?;
    let deadline = Instant::now() + args.timeout;
    let kind = find_kind(app, args.install_kind).await?;
    let docker = Docker::connect(&app.world).await.map_err(docker_error)?;
    let _lock = lock::acquire(&lock_dir(app), &plan.name, args.timeout, |who| {
        app.ui.line(&format!(
            "waiting for {who}, which is working on cluster `{}` ...",
            plan.name
        ))
    })
    .await?;

    let existing = docker
        .list_nodes(Some(&plan.name))
        .await
        .map_err(docker_error)?;
    let mut action = "created";
    if !existing.is_empty() {
        match read_record(&docker, &existing).await {
            Some(recorded) if recorded.matches(&plan) => {
                return up_to_date(app, args, &kind, &plan, &existing).await;
            }
            recorded => {
                confirm_recreate(app, args, &plan, recorded.as_ref())?;
                let step = app.ui.step(&format!("delete cluster {}", plan.name));
                kind.delete(&plan.name, args.kubeconfig.as_deref()).await?;
                step.done("");
                action = "recreated";
            }
        }
    }

    let mut runner = Runner {
        app,
        deps,
        deadline,
        steps: Vec::new(),
    };
    preflight(&mut runner, &plan).await?;
    let created = create(&mut runner, &docker, &kind, &plan, args).await?;
    if !created {
        cleanup(app, &docker, &kind, &plan, args, "interrupted").await;
        return Err(Error::interrupted("interrupted while creating the cluster")
            .hint(format!("nothing was kept; run `devcluster up` again when ready (or `devcluster down --name {}` if anything remains)", plan.name)));
    }
    match finish_up(&mut runner, &docker, &kind, &plan, args).await {
        Ok(Some(mut result)) => {
            result.action = action;
            print_next_steps(app, &result);
            Ok(result)
        }
        Ok(None) => {
            cleanup(app, &docker, &kind, &plan, args, "interrupted").await;
            Err(Error::interrupted(
                "interrupted while setting up the cluster",
            ))
        }
        Err(error) => {
            cleanup(app, &docker, &kind, &plan, args, "a step failed").await;
            Err(error)
        }
    }
}

/// Deletes the half-made cluster unless `--retain`. A killed kind may leave a
/// `docker run` of its own still finishing, so node containers that appear after
/// the delete are deleted too.
async fn cleanup(
    app: &App,
    docker: &Docker,
    kind: &Kind,
    plan: &ClusterPlan,
    args: &UpArgs,
    why: &str,
) {
    if args.retain {
        app.ui.line(&format!(
            "keeping cluster `{}` for debugging (--retain); delete it with `devcluster down --name {}`",
            plan.name, plan.name
        ));
        return;
    }
    let step = app.ui.step(&format!("clean up ({why})"));
    let mut outcome = Ok(());
    for attempt in 0..3 {
        outcome = kind.delete(&plan.name, args.kubeconfig.as_deref()).await;
        tokio::time::sleep(Duration::from_millis(if attempt == 0 { 500 } else { 1500 })).await;
        match docker.list_nodes(Some(&plan.name)).await {
            Ok(nodes) if nodes.is_empty() => break,
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    match outcome {
        Ok(()) => step.done(&format!("deleted cluster {}", plan.name)),
        Err(e) => step.fail(&format!("{e}; run `devcluster down --name {}`", plan.name)),
    }
}

async fn up_to_date(
    app: &App,
    args: &UpArgs,
    kind: &Kind,
    plan: &ClusterPlan,
    existing: &[ObservedNode],
) -> Result<UpResult> {
    let stopped: Vec<&str> = existing
        .iter()
        .filter(|n| n.state != "running")
        .map(|n| n.name.as_str())
        .collect();
    if !stopped.is_empty() {
        return Err(Error::failed(format!(
            "cluster `{}` matches the profile but nodes are not running: {}",
            plan.name,
            stopped.join(", ")
        ))
        .hint(format!(
            "start them with `docker start {}`, then run `devcluster status`",
            stopped.join(" ")
        )));
    }
    if let Some(path) = &args.kubeconfig {
        write_kubeconfig(kind, &plan.name, path).await?;
    }
    app.ui.line(&format!(
        "✓ cluster `{}` is up to date; nothing changed",
        plan.name
    ));
    let result = UpResult {
        cluster: plan.name.clone(),
        action: "up-to-date",
        context: plan.context_name(),
        kubeconfig: args.kubeconfig.clone(),
        ingress_url: ingress_url(plan),
        nodes: plan.nodes.iter().map(|n| n.name.clone()).collect(),
        plan_hash: record::plan_hash(plan),
        steps: Vec::new(),
    };
    print_next_steps(app, &result);
    Ok(result)
}

async fn write_kubeconfig(kind: &Kind, name: &str, path: &Path) -> Result<()> {
    let text = kind.kubeconfig(name).await?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::failed(format!("cannot create {}", dir.display())).cause(e))?;
    }
    std::fs::write(path, text).map_err(|e| {
        Error::failed(format!("cannot write the kubeconfig {}", path.display())).cause(e)
    })
}

/// Decides whether an existing cluster may be deleted: `--recreate`, or a yes at a
/// terminal prompt; never silently.
fn confirm_recreate(
    app: &App,
    args: &UpArgs,
    plan: &ClusterPlan,
    recorded: Option<&Record>,
) -> Result<()> {
    let (reason, changes) = match recorded {
        Some(recorded) => (
            format!("cluster `{}` differs from the profile", plan.name),
            record::diff(&recorded.plan, plan),
        ),
        None => (
            format!(
                "cluster `{}` exists but devcluster did not create it (it has no devcluster record)",
                plan.name
            ),
            Vec::new(),
        ),
    };
    let mut details = String::new();
    for change in &changes {
        details.push_str(&format!("{} {}\n", change.sign, change.text));
    }
    if recorded.is_some() {
        details.push_str("Docker cannot add mounts or ports to a running node container, so the cluster must be recreated (its workloads and data are lost).");
    }
    app.ui.line(&format!("{reason}:"));
    if !details.is_empty() {
        for line in details.lines() {
            app.ui.line(&format!("  {line}"));
        }
    }
    let confirmed = if args.recreate {
        args.yes
            || !app.world.can_prompt()
            || prompt(&format!("Delete and recreate cluster `{}`?", plan.name))
    } else {
        !app.world.is_ci()
            && app.world.can_prompt()
            && prompt(&format!("Delete and recreate cluster `{}`?", plan.name))
    };
    if confirmed {
        return Ok(());
    }
    let mut error = Error::failed(format!("{reason}; nothing was changed"));
    if !details.is_empty() {
        error = error.details(details.trim_end().to_string());
    }
    Err(error.hint(
        "run `devcluster up --recreate` to delete and recreate it, or pick another name with `--name`",
    ))
}

fn prompt(question: &str) -> bool {
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .unwrap_or(false)
}

async fn preflight(runner: &mut Runner<'_>, plan: &ClusterPlan) -> Result<()> {
    let app = runner.app;
    let outcome = runner
        .step("preflight", async {
            let checks = crate::doctor::preflight(app, plan).await;
            let failed: Vec<String> = checks
                .iter()
                .filter(|c| c.failed())
                .map(|c| c.summary())
                .collect();
            if failed.is_empty() {
                let warned = checks.iter().filter(|c| c.warned()).count();
                Ok(((), format!("{} checks, {warned} warnings", checks.len())))
            } else {
                Err(Error::failed(format!("{} preflight check(s) failed; kind was not run", failed.len()))
                    .details(failed.join("\n"))
                    .hint("fix the above, then run `devcluster up` again (`devcluster doctor` repeats the checks)"))
            }
        })
        .await?;
    match outcome {
        Outcome::Done(()) => Ok(()),
        Outcome::Interrupted => Err(Error::interrupted(
            "interrupted before the cluster was created",
        )),
    }
}

/// Runs `kind create cluster`; `Ok(false)` when interrupted (kind was stopped).
async fn create(
    runner: &mut Runner<'_>,
    docker: &Docker,
    kind: &Kind,
    plan: &ClusterPlan,
    args: &UpArgs,
) -> Result<bool> {
    let config = kindconfig::render(plan);
    let request = CreateRequest {
        name: &plan.name,
        config: &config,
        image: plan.image.as_deref(),
        kubeconfig: args.kubeconfig.as_deref(),
        retain: args.retain,
    };
    let ui = runner.app.ui.clone();
    let relay = move |line: &str| ui.line(&format!("    {line}"));
    let result = runner
        .step("create", async {
            kind.create(&request, relay).await?;
            Ok(((), format!("{} node(s)", plan.nodes.len())))
        })
        .await;
    match result {
        Ok(Outcome::Done(())) => Ok(true),
        Ok(Outcome::Interrupted) => Ok(false),
        Err(error) => {
            // kind deletes its nodes after a failed create unless --retain; make
            // sure, since a killed kind cannot.
            cleanup(runner.app, docker, kind, plan, args, "kind failed").await;
            Err(error)
        }
    }
}

/// Everything after `kind create`: record, readiness, add-ons, verification.
/// `Ok(None)` when interrupted.
async fn finish_up(
    runner: &mut Runner<'_>,
    docker: &Docker,
    kind: &Kind,
    plan: &ClusterPlan,
    args: &UpArgs,
) -> Result<Option<UpResult>> {
    let app = runner.app;
    let record = Record::new(plan);
    let holder = plan
        .control_planes()
        .next()
        .map(|n| n.name.clone())
        .ok_or_else(|| Error::failed("the plan has no control-plane"))?;
    macro_rules! step {
        ($name:expr, $body:expr) => {
            match runner.step($name, $body).await? {
                Outcome::Done(value) => value,
                Outcome::Interrupted => return Ok(None),
            }
        };
    }
    step!("record (node)", async {
        write_node_record(docker, &holder, &record).await?;
        Ok(((), format!("{holder}:{}", record::RECORD_PATH)))
    });
    let kubeconfig = step!("kubeconfig", async {
        let text = kind.kubeconfig(&plan.name).await?;
        if let Some(path) = &args.kubeconfig {
            write_kubeconfig(kind, &plan.name, path).await?;
            return Ok((text, path.display().to_string()));
        }
        Ok((text, format!("context {}", plan.context_name())))
    });
    let deps = runner.deps.clone();
    let api = step!("connect", async {
        let api = deps
            .connector
            .connect(&kubeconfig, Some(&plan.context_name()))
            .await?;
        Ok((api, String::new()))
    });
    let deadline = runner.deadline;
    let expected: Vec<String> = plan.nodes.iter().map(|n| n.name.clone()).collect();
    let ui = app.ui.clone();
    step!("wait", async {
        api.wait_ready(&expected, deadline, |waiting| {
            ui.line(&format!("    waiting: {waiting}"))
        })
        .await?;
        Ok((
            (),
            format!("{} node(s) Ready, CoreDNS available", expected.len()),
        ))
    });
    let tainted = plan.nodes.iter().any(|n| {
        n.taints
            .iter()
            .any(|t| matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute))
    });
    if plan.storage.tolerate_tainted_nodes && tainted {
        step!("storage", async {
            let detail = match api.fix_local_path_tolerations(deadline).await? {
                StorageFix::Applied => "local-path helper pods now tolerate tainted nodes",
                StorageFix::NotNeeded => "local-path helper pods already tolerate tainted nodes",
                StorageFix::NotInstalled => "no local-path-provisioner found; nothing to fix",
            };
            Ok(((), detail.to_string()))
        });
    }
    if let (Some(source), Some(node)) = (addons::controller_source(plan), plan.ingress_node()) {
        let cache = app
            .world
            .cache_dir()
            .unwrap_or_else(|| std::env::temp_dir().join("devcluster-cache"));
        step!("ingress", async {
            let manifest = addons::fetch_manifest(&source, &cache).await?;
            let documents = addons::pin_controller(&manifest, &source, &node.taints)?;
            api.apply(&documents).await?;
            api.wait_pods_ready(&source.namespace, &source.pod_selector, deadline)
                .await?;
            Ok(((), format!("controller ready on {}", node.name)))
        });
    }
    step!("record (api)", async {
        api.write_record(
            record::RECORD_NAMESPACE,
            record::RECORD_CONFIGMAP,
            &record.to_json(),
        )
        .await?;
        Ok((
            (),
            format!(
                "ConfigMap {}/{}",
                record::RECORD_NAMESPACE,
                record::RECORD_CONFIGMAP
            ),
        ))
    });
    if !args.no_verify {
        step!("verify", async {
            let images = crate::verify::Images {
                probe_image: args.probe_image.clone(),
                echo_image: args.echo_image.clone(),
                pull_policy: args.image_pull_policy,
            };
            let detail =
                crate::verify::verify_after_up(app, docker, plan, deadline, &api, &images).await?;
            Ok(((), detail))
        });
    }
    Ok(Some(UpResult {
        cluster: plan.name.clone(),
        action: "created",
        context: plan.context_name(),
        kubeconfig: args.kubeconfig.clone(),
        ingress_url: ingress_url(plan),
        nodes: expected,
        plan_hash: record.plan_hash.clone(),
        steps: runner.steps.clone(),
    }))
}

fn ingress_url(plan: &ClusterPlan) -> Option<String> {
    let ingress = plan.ingress.as_ref()?;
    let host = if ingress.listen_address == "0.0.0.0" {
        "localhost".to_string()
    } else if ingress.listen_address.contains(':') {
        format!("[{}]", ingress.listen_address)
    } else {
        ingress.listen_address.clone()
    };
    Some(match ingress.http_port {
        80 => format!("http://{host}/"),
        port if port > 0 => format!("http://{host}:{port}/"),
        _ => return None,
    })
}

fn print_next_steps(app: &App, result: &UpResult) {
    app.ui.line("");
    app.ui.line("Next:");
    match &result.kubeconfig {
        Some(path) => app.ui.line(&format!(
            "  kubectl --kubeconfig {} get nodes",
            crate::error::shell_quote(&[path.display().to_string()])
        )),
        None => app
            .ui
            .line(&format!("  kubectl --context {} get nodes", result.context)),
    }
    if let Some(url) = &result.ingress_url {
        app.ui.line(&format!("  ingress: {url}"));
    }
    app.ui
        .line(&format!("  devcluster verify --name {}", result.cluster));
    app.ui
        .line(&format!("  devcluster down --name {}", result.cluster));
}

/// `devcluster down`.
pub async fn run_down(app: &App, args: &DownArgs) -> Result<ExitCode> {
    let kind = Kind::discover(&app.world)?;
    let docker = Docker::connect(&app.world).await.map_err(docker_error)?;
    let explicit = args.profile.name.is_some();
    let names: Vec<String> = if args.all {
        let nodes = docker.list_nodes(None).await.map_err(docker_error)?;
        let mut clusters: Vec<String> = nodes.iter().map(|n| n.cluster.clone()).collect();
        clusters.sort();
        clusters.dedup();
        let mut ours = Vec::new();
        for cluster in clusters {
            let members: Vec<ObservedNode> = nodes
                .iter()
                .filter(|n| n.cluster == cluster)
                .cloned()
                .collect();
            if read_record(&docker, &members).await.is_some() {
                ours.push(cluster);
            } else {
                app.ui.line(&format!(
                    "skipping cluster `{cluster}`: devcluster did not create it"
                ));
            }
        }
        ours
    } else {
        let (_, plan) = app.plan(
            args.profile.profile.as_deref(),
            args.profile.name.as_deref(),
        )?;
        vec![plan.name]
    };
    if names.is_empty() {
        app.ui
            .line("no clusters created by devcluster; nothing to delete");
        return Ok(ExitCode::Success);
    }
    for name in names {
        let _lock = lock::acquire(&lock_dir(app), &name, Duration::from_secs(300), |who| {
            app.ui.line(&format!(
                "waiting for {who}, which is working on cluster `{name}` ..."
            ))
        })
        .await?;
        let nodes = docker.list_nodes(Some(&name)).await.map_err(docker_error)?;
        if nodes.is_empty() {
            app.ui.line(&format!(
                "✓ cluster `{name}` does not exist; nothing to delete"
            ));
            continue;
        }
        if !args.all && !explicit && read_record(&docker, &nodes).await.is_none() {
            return Err(Error::failed(format!(
                "cluster `{name}` was not created by devcluster; not deleting it"
            ))
            .hint(format!(
                "to delete it anyway, name it: `devcluster down --name {name}`"
            )));
        }
        let step = app.ui.step(&format!("delete cluster {name}"));
        match kind.delete(&name, args.kubeconfig.as_deref()).await {
            Ok(()) => step.done(&format!("{} node(s)", nodes.len())),
            Err(e) => {
                step.fail("");
                return Err(e);
            }
        }
    }
    Ok(ExitCode::Success)
}
