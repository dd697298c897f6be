//! `up`, `down` and `status`: drive kind and Docker to a ready, recorded cluster,
//! idempotently, and report what runs against what was recorded.
//!
//! `up` has two halves. *Create* (kind create, record, kubeconfig, connect, nodes
//! Ready) makes the nodes; it is rolled back when it fails or is interrupted, unless
//! `--retain`. *Converge* (storage fix, ingress controller, record, verify) works on
//! nodes that exist and never deletes them: it fails with the next command, and the
//! next `up` resumes it. The record in the cluster carries the phase `up` reached.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::adapters::docker::{Docker, DockerError, ObservedNode};
use crate::adapters::download;
use crate::adapters::kind::{CreateOutcome, CreateRequest, Kind, KindSource};
use crate::adapters::kube::cluster::{ClusterApi, Connector, StorageFix};
use crate::core::error::{Error, Result};
use crate::core::kindconfig;
use crate::core::plan::{ClusterPlan, Role, TaintEffect};
use crate::core::record;
use crate::core::record::{Decision, Phase, Record};
use crate::operations::context::App;
pub use crate::operations::interrupt::Interrupt;
use crate::operations::{MAX_DURATION, ProfileChoice, PullPolicy};
use crate::operations::{addons, lock};

/// How long past the deadline a step may take to report its own timeout.
const DEADLINE_GRACE: Duration = Duration::from_secs(3);

/// What the outside world lends `up`, so tests can replace the parts no test
/// machine has (a real API server) and deliver an interruption on cue.
#[derive(Debug, Clone, Default)]
pub struct Deps {
    pub connector: Connector,
    pub interrupt: Interrupt,
}

/// What `up` did, for `-o json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpResult {
    pub cluster: String,
    /// `created`, `recreated`, `converged` or `up-to-date`.
    pub action: &'static str,
    /// The record's phase when `up` finished: `complete`, or `created` when the
    /// steps after create had to wait (a profile without a CNI).
    pub phase: &'static str,
    pub context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_url: Option<String>,
    pub nodes: Vec<String>,
    pub plan_hash: String,
    pub steps: Vec<StepResult>,
    /// Steps left out, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub name: &'static str,
    pub seconds: f64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// What `devcluster up` is asked to do.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub profile: ProfileChoice,
    /// Delete and recreate the cluster when it differs from the plan (or has no
    /// devcluster record).
    pub recreate: bool,
    /// Keep the nodes of a failed create for debugging.
    pub retain: bool,
    pub no_verify: bool,
    /// One deadline for nodes, add-ons and verification, from when `kind create` returns.
    pub timeout: Duration,
    /// How long `kind create cluster` may take.
    pub create_timeout: Duration,
    /// How long to wait for another devcluster run on the same cluster.
    pub lock_timeout: Duration,
    /// Write the cluster's kubeconfig here only; the user's is left alone.
    pub kubeconfig: Option<PathBuf>,
    /// Answer yes to the recreate question.
    pub yes: bool,
    /// Download the pinned kind release into the cache when kind is missing.
    pub install_kind: bool,
    pub probe_image: Option<String>,
    pub image_pull_policy: Option<PullPolicy>,
    pub echo_image: Option<String>,
}

impl UpOptions {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5 * 60);
}

impl Default for UpOptions {
    /// The command line's defaults.
    fn default() -> UpOptions {
        UpOptions {
            profile: ProfileChoice::default(),
            recreate: false,
            retain: false,
            no_verify: false,
            timeout: UpOptions::DEFAULT_TIMEOUT,
            create_timeout: UpOptions::DEFAULT_CREATE_TIMEOUT,
            lock_timeout: UpOptions::DEFAULT_LOCK_TIMEOUT,
            kubeconfig: None,
            yes: false,
            install_kind: false,
            probe_image: None,
            image_pull_policy: None,
            echo_image: None,
        }
    }
}

/// What `devcluster down` is asked to delete.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub profile: ProfileChoice,
    /// Every cluster devcluster created.
    pub all: bool,
    /// Clean this kubeconfig instead of the user's.
    pub kubeconfig: Option<PathBuf>,
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

/// The user's lock directory: in their cache, else a private one in the shared
/// temporary directory.
fn lock_dir(app: &App) -> PathBuf {
    app.world
        .cache_dir()
        .map(|d| d.join("locks"))
        .unwrap_or_else(lock::shared_temp_dir)
}

/// `now + timeout`, for any timeout the flags accept (they refuse more than a week).
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(MAX_DURATION))
        .unwrap_or(now)
}

/// The first control-plane container, where the record lives.
fn record_holder(nodes: &[ObservedNode]) -> Option<&ObservedNode> {
    nodes
        .iter()
        .filter(|n| n.role == Role::ControlPlane.as_str())
        .min_by(|a, b| a.name.len().cmp(&b.name.len()).then(a.name.cmp(&b.name)))
}

/// Reads devcluster's record from the cluster's first control-plane container,
/// through Docker's archive API, so a stopped node is read as well as a running one.
pub async fn read_record(docker: &Docker, nodes: &[ObservedNode]) -> Option<Record> {
    let holder = record_holder(nodes)?;
    let bytes = docker
        .read_file(&holder.name, record::RECORD_PATH, record::MAX_RECORD_BYTES)
        .await
        .ok()??;
    Record::from_json(&String::from_utf8_lossy(&bytes))
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

/// The plan to compare an existing cluster with (`verify`, `status`). Without
/// `--profile`, the plan in the cluster's record, so `verify --name NAME` proves what
/// the cluster was made from; with `--profile`, that profile's plan, with a note
/// when it disagrees with the record. Falls back to the profile (`devcluster.yaml`,
/// else `single`) when the cluster has no readable record.
pub async fn plan_for_cluster(
    app: &App,
    profile: &ProfileChoice,
    docker: Option<&Docker>,
) -> Result<ClusterPlan> {
    let recorded = |name: String| async move {
        let docker = docker?;
        let nodes = docker.list_nodes(Some(&name)).await.ok()?;
        read_record(docker, &nodes).await
    };
    if profile.profile.is_none() {
        // The name from `--name`, else from the profile `up` would use.
        let (name, fallback) = match &profile.name {
            Some(name) => (name.clone(), None),
            None => {
                let (_, plan) = app.plan(None, None)?;
                (plan.name.clone(), Some(plan))
            }
        };
        if let Some(record) = recorded(name.clone()).await {
            if let Some(plan) = record.plan {
                app.ui.line(&format!(
                    "using the plan recorded in cluster `{name}` (profile {}, {} node(s))",
                    record.profile_source,
                    plan.nodes.len()
                ));
                return Ok(plan);
            }
            app.ui.line(&format!(
                "the record of cluster `{name}` was written by devcluster {} and its plan cannot be read here; using the profile instead",
                record.devcluster_version
            ));
        }
        return match fallback {
            Some(plan) => Ok(plan),
            None => Ok(app.plan(None, Some(&name))?.1),
        };
    }
    let (_, plan) = app.plan(profile.profile.as_deref(), profile.name.as_deref())?;
    if let Some(record) = recorded(plan.name.clone()).await {
        note_disagreement(app, &plan, &record, "verify");
    }
    Ok(plan)
}

/// Says so when `plan` is not what the cluster's record says it was made from;
/// `command` (`verify`, `status`) is the one to repeat without `--profile`.
pub fn note_disagreement(app: &App, plan: &ClusterPlan, record: &Record, command: &str) {
    if record.matches(plan) {
        return;
    }
    app.ui.line(&format!(
        "note: profile {} differs from what cluster `{}` was made from (profile {}); checking against {}:",
        plan.source, plan.name, record.profile_source, plan.source
    ));
    if let Some(recorded) = &record.plan {
        for change in record::diff(recorded, plan) {
            app.ui.line(&format!("  {}", change.line()));
        }
    }
    app.ui.line(&format!(
        "  (leave out --profile to check the recorded plan: `devcluster {command} --name {}`)",
        plan.name
    ));
}

/// kind from the one locator, or the pinned release installed with
/// `--install-kind` (or a yes at the prompt), which the rest of the command uses.
async fn find_kind(app: &App, install: bool) -> Result<Kind> {
    let missing = match app.kind() {
        Ok(kind) => return Ok(kind),
        Err(missing) => missing,
    };
    let cached = crate::adapters::kind::cached_kind_path(&app.world);
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
        Error::failed("kind publishes no release for this platform").hint("install kind yourself")
    })?;
    let (url, sum) = download::kind_release(platform)
        .ok_or_else(|| Error::failed(format!("no pinned kind release for {platform}")))?;
    let dest = cached.ok_or_else(|| {
        Error::failed("no cache directory to install kind into").hint("set HOME or XDG_CACHE_HOME")
    })?;
    let step = app
        .ui
        .step(&format!("install kind {}", download::KIND_RELEASE));
    match download::fetch_pinned(&url, sum, &dest, true).await {
        Ok(path) => {
            step.done(&path.display().to_string());
            let kind = Kind::at(path, KindSource::Cache, &app.world);
            app.set_kind(kind.clone());
            Ok(kind)
        }
        Err(e) => {
            step.fail("");
            Err(e)
        }
    }
}

/// Runs one step under a status line, racing it against an interruption and the
/// deadline.
struct Runner<'a> {
    app: &'a App,
    deps: &'a Deps,
    deadline: Instant,
    steps: Vec<StepResult>,
}

enum Outcome<T> {
    Done(T),
    /// Interrupted, by what.
    Interrupted(&'static str),
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
                    self.record(name, started, detail);
                    Ok(Outcome::Done(value))
                }
                Err(error) => {
                    step.fail("");
                    Err(error.context(format!("step `{name}` failed")))
                }
            },
            why = self.deps.interrupt.wait() => {
                step.fail("interrupted");
                Ok(Outcome::Interrupted(why))
            }
            _ = tokio::time::sleep(remaining) => {
                step.fail("deadline");
                Err(Error::failed(format!("step `{name}` did not finish before the deadline"))
                    .hint("raise `--timeout`"))
            }
        }
    }

    /// Runs a step that watches the deadline and the interruptions itself and
    /// must not be cut short (its own cleanup runs before it returns).
    async fn step_to_the_end<T>(
        &mut self,
        name: &'static str,
        future: impl std::future::Future<Output = Result<(T, String)>>,
    ) -> Result<T> {
        let started = Instant::now();
        let step = self.app.ui.step(name);
        match future.await {
            Ok((value, detail)) => {
                step.done(&detail);
                self.record(name, started, detail);
                Ok(value)
            }
            Err(error) if error.kind == crate::core::error::ErrorKind::Interrupted => {
                step.fail("interrupted");
                Err(error)
            }
            Err(error) => {
                step.fail("");
                Err(error.context(format!("step `{name}` failed")))
            }
        }
    }

    fn record(&mut self, name: &'static str, started: Instant, detail: String) {
        self.steps.push(StepResult {
            name,
            seconds: started.elapsed().as_secs_f64(),
            detail,
        });
    }
}

/// `devcluster up`, with its dependencies passed in.
pub async fn run_up(app: &App, args: &UpOptions, deps: &Deps) -> Result<UpResult> {
    let (_, plan) = app.plan(
        args.profile.profile.as_deref(),
        args.profile.name.as_deref(),
    )?;
    let kind = find_kind(app, args.install_kind).await?;
    let docker = app.docker().await.map_err(docker_error)?;
    let locks = lock_dir(app);
    let _lock = tokio::select! {
        lock = lock::acquire(&locks, &plan.name, args.lock_timeout, |who| {
            app.ui.line(&format!(
                "waiting for {who}, which is working on cluster `{}` ...",
                plan.name
            ))
        }) => lock?,
        why = deps.interrupt.wait() => {
            return Err(Error::interrupted(format!(
                "interrupted by {why} while waiting for the lock; nothing was changed"
            )));
        }
    };

    let mut runner = Runner {
        app,
        deps,
        deadline: deadline_after(args.timeout),
        steps: Vec::new(),
    };
    let existing = docker
        .list_nodes(Some(&plan.name))
        .await
        .map_err(docker_error)?;
    let mut action = "created";
    if !existing.is_empty() {
        let recorded = read_record(&docker, &existing).await;
        let decision = match &recorded {
            Some(recorded) => recorded.decide(&plan),
            None => Decision::Recreate {
                changes: Vec::new(),
            },
        };
        match decision {
            Decision::UpToDate => {
                return up_to_date(app, args, &kind, &plan, &existing).await;
            }
            Decision::Converge { reason, changes } => {
                ensure_running(&plan, &existing, "is devcluster's")?;
                app.ui.line(&format!(
                    "cluster `{}` exists; converging it in place ({reason})",
                    plan.name
                ));
                for change in &changes {
                    app.ui.line(&format!("  {}", change.line()));
                }
                let manifest = fetch_artefacts(&mut runner, &plan).await?;
                runner.deadline = deadline_after(args.timeout);
                let established = match establish(&mut runner, &docker, &kind, &plan, args).await {
                    Ok(Some(established)) => established,
                    Ok(None) => return Err(kept_interrupted(&plan, "converging")),
                    Err(error) => return Err(kept(error, &plan)),
                };
                return converge(
                    &mut runner,
                    &docker,
                    &plan,
                    args,
                    established,
                    manifest,
                    "converged",
                )
                .await;
            }
            Decision::Recreate { changes } => {
                confirm_recreate(app, args, &plan, recorded.as_ref(), &changes)?;
                // Fetch and check before deleting: a network failure or a failed
                // check must not cost the cluster. Preflight counts the ports this
                // cluster publishes as its own.
                let manifest = fetch_artefacts(&mut runner, &plan).await?;
                preflight(&mut runner, &plan).await.map_err(|e| {
                    e.hint(format!(
                        "cluster `{}` was not deleted; fix the above, then run `devcluster up --recreate` again (`devcluster doctor` repeats the checks)",
                        plan.name
                    ))
                })?;
                let step = app.ui.step(&format!("delete cluster {}", plan.name));
                kind.delete(&plan.name, args.kubeconfig.as_deref()).await?;
                step.done("");
                action = "recreated";
                return create_then_converge(
                    &mut runner,
                    &docker,
                    &kind,
                    &plan,
                    args,
                    manifest,
                    action,
                )
                .await;
            }
        }
    }
    let manifest = fetch_artefacts(&mut runner, &plan).await?;
    preflight(&mut runner, &plan).await?;
    create_then_converge(&mut runner, &docker, &kind, &plan, args, manifest, action).await
}

/// Refuses to work on a cluster whose nodes are not all running.
fn ensure_running(plan: &ClusterPlan, existing: &[ObservedNode], what: &str) -> Result<()> {
    let stopped: Vec<&str> = existing
        .iter()
        .filter(|n| n.state != "running")
        .map(|n| n.name.as_str())
        .collect();
    if stopped.is_empty() {
        return Ok(());
    }
    Err(Error::failed(format!(
        "cluster `{}` {what} but nodes are not running: {}",
        plan.name,
        stopped.join(", ")
    ))
    .hint(format!(
        "start them with `docker start {}`, then run `devcluster up` again",
        stopped.join(" ")
    )))
}

/// The command that resumes `up` for this plan.
pub(crate) fn resume_command(plan: &ClusterPlan) -> String {
    let profile = if plan.source.starts_with("builtin:") {
        plan.source.trim_start_matches("builtin:").to_string()
    } else {
        crate::core::error::shell_quote(&[plan.source.as_str()])
    };
    format!("devcluster up --profile {profile} --name {}", plan.name)
}

/// `hint` after the error's own hint (the failed step's advice stays first).
fn add_hint(error: Error, hint: String) -> Error {
    let hint = match error.hint.clone() {
        Some(earlier) => format!("{earlier}; {hint}"),
        None => hint,
    };
    error.hint(hint)
}

/// A failure after the nodes exist: the cluster stays, and the error says how to
/// go on.
fn kept(error: Error, plan: &ClusterPlan) -> Error {
    let earlier = error.hint.clone();
    let mut hint = format!(
        "the cluster was kept; fix the above, then run `{}` to resume (`devcluster down --name {}` deletes it)",
        resume_command(plan),
        plan.name
    );
    if let Some(earlier) = earlier.filter(|h| !h.contains("--retain")) {
        hint = format!("{earlier}; {hint}");
    }
    error.hint(hint)
}

fn kept_interrupted(plan: &ClusterPlan, while_doing: &str) -> Error {
    Error::interrupted(format!(
        "interrupted while {while_doing} cluster `{}`",
        plan.name
    ))
    .hint(format!(
        "the cluster was kept; run `{}` to resume (`devcluster down --name {}` deletes it)",
        resume_command(plan),
        plan.name
    ))
}

/// Downloads and checks every pinned artefact the plan needs before anything is
/// created or deleted, so a network failure costs seconds, not a cluster.
async fn fetch_artefacts(runner: &mut Runner<'_>, plan: &ClusterPlan) -> Result<Option<String>> {
    let Some(source) = addons::controller_source(plan) else {
        return Ok(None);
    };
    let cache = runner
        .app
        .world
        .cache_dir()
        .unwrap_or_else(|| std::env::temp_dir().join("devcluster-cache"));
    let outcome = runner
        .step("fetch", async {
            let manifest = addons::fetch_manifest(&source, &cache).await?;
            Ok((
                manifest,
                format!(
                    "ingress controller manifest, SHA-256 {}",
                    &source.sha256[..source.sha256.len().min(12)]
                ),
            ))
        })
        .await
        .map_err(|e| {
            let hint = e.hint.clone().unwrap_or_default();
            e.hint(format!(
                "nothing was created or deleted; {}",
                if hint.is_empty() {
                    "check the network, then run `devcluster up` again".to_string()
                } else {
                    hint
                }
            ))
        })?;
    match outcome {
        Outcome::Done(manifest) => Ok(Some(manifest)),
        Outcome::Interrupted(why) => Err(Error::interrupted(format!(
            "interrupted by {why} before the cluster was created; nothing was changed"
        ))),
    }
}

/// The create half, then the converge half (preflight has passed).
async fn create_then_converge(
    runner: &mut Runner<'_>,
    docker: &Docker,
    kind: &Kind,
    plan: &ClusterPlan,
    args: &UpOptions,
    manifest: Option<String>,
    action: &'static str,
) -> Result<UpResult> {
    let app = runner.app;
    create(runner, docker, kind, plan, args).await?;
    // `--timeout` covers what follows kind create, not the image pull inside it.
    runner.deadline = deadline_after(args.timeout);
    let established = match establish(runner, docker, kind, plan, args).await {
        Ok(Some(established)) => established,
        Ok(None) => {
            rollback(app, runner.deps, docker, kind, plan, args, "interrupted").await?;
            return Err(Error::interrupted(format!(
                "interrupted while creating cluster `{}`",
                plan.name
            ))
            .hint(rolled_back_hint(plan, args, true)));
        }
        Err(error) => {
            rollback(app, runner.deps, docker, kind, plan, args, "a step failed").await?;
            return Err(add_hint(error, rolled_back_hint(plan, args, true)));
        }
    };
    converge(runner, docker, plan, args, established, manifest, action).await
}

/// After a failed or interrupted create: what became of the nodes, and what to
/// run. `recorded`: kind create had finished and the record (phase `created`) was
/// written, so the next `up` can resume; without it the next `up` must start over.
fn rolled_back_hint(plan: &ClusterPlan, args: &UpOptions, recorded: bool) -> String {
    if args.retain && recorded {
        format!(
            "the nodes were kept (--retain); `{}` resumes, `devcluster down --name {}` deletes them",
            resume_command(plan),
            plan.name
        )
    } else if args.retain {
        format!(
            "the nodes were kept (--retain) for debugging; kind create did not finish, so they cannot be resumed: `devcluster down --name {}` deletes them, `devcluster up --recreate` starts over",
            plan.name
        )
    } else {
        format!(
            "the half-made cluster was deleted; run `devcluster up` again, or add `--retain` to keep it for debugging (`devcluster down --name {}` removes anything left)",
            plan.name
        )
    }
}

/// Deletes the half-made cluster unless `--retain`. A killed kind may leave a
/// `docker run` of its own still finishing, so node containers that appear after
/// the delete are deleted too. A second interruption abandons the cleanup at once,
/// naming what is left.
async fn rollback(
    app: &App,
    deps: &Deps,
    docker: &Docker,
    kind: &Kind,
    plan: &ClusterPlan,
    args: &UpOptions,
    why: &str,
) -> Result<()> {
    if args.retain {
        app.ui.line(&format!(
            "keeping cluster `{}` for debugging (--retain); delete it with `devcluster down --name {}`",
            plan.name, plan.name
        ));
        return Ok(());
    }
    let step = app.ui.step(&format!("clean up ({why})"));
    let work = async {
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
        outcome
    };
    tokio::select! {
        outcome = work => {
            match outcome {
                Ok(()) => step.done(&format!("deleted cluster {}", plan.name)),
                Err(e) => step.fail(&format!("{e}; run `devcluster down --name {}`", plan.name)),
            }
            Ok(())
        }
        why = deps.interrupt.wait_again() => {
            step.fail("abandoned");
            let left = docker
                .list_nodes(Some(&plan.name))
                .await
                .map(|nodes| nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|_| "(Docker did not say)".to_string());
            Err(Error::interrupted(format!(
                "cleanup abandoned after a second interruption ({why})"
            ))
            .cause(format!("left behind: cluster `{}`, node containers: {left}", plan.name))
            .hint(format!("delete them with `devcluster down --name {}`", plan.name)))
        }
    }
}

async fn up_to_date(
    app: &App,
    args: &UpOptions,
    kind: &Kind,
    plan: &ClusterPlan,
    existing: &[ObservedNode],
) -> Result<UpResult> {
    ensure_running(plan, existing, "matches the profile")?;
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
        phase: Phase::Complete.as_str(),
        context: plan.context_name(),
        kubeconfig: args.kubeconfig.clone(),
        ingress_url: ingress_url(plan),
        nodes: plan.nodes.iter().map(|n| n.name.clone()).collect(),
        plan_hash: record::plan_hash(plan),
        steps: Vec::new(),
        skipped: Vec::new(),
    };
    print_next_steps(app, &result);
    Ok(result)
}

/// Writes the cluster's kubeconfig to `path` with mode 0600, as kind writes its
/// own (kind `pkg/cluster/internal/kubeconfig/internal/kubeconfig/write.go`): it
/// holds the cluster's admin credentials.
async fn write_kubeconfig(kind: &Kind, name: &str, path: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let text = kind.kubeconfig(name).await?;
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

/// Decides whether an existing cluster may be deleted: `--recreate`, or a yes at a
/// terminal prompt; never silently. The changes are printed once: as lines when
/// the cluster is recreated or a question is asked, else in the error.
fn confirm_recreate(
    app: &App,
    args: &UpOptions,
    plan: &ClusterPlan,
    recorded: Option<&Record>,
    changes: &[record::Change],
) -> Result<()> {
    let reason = match recorded {
        Some(_) => format!(
            "cluster `{}` differs from the profile in what only a new cluster can change",
            plan.name
        ),
        None => format!(
            "cluster `{}` exists but has no devcluster record: devcluster did not create it, or its `kind create` did not finish",
            plan.name
        ),
    };
    let mut details = String::new();
    for change in changes {
        details.push_str(&change.line());
        details.push('\n');
    }
    if recorded.is_some() {
        details.push_str("Docker cannot add mounts or ports to a running node container, so the changes marked \"needs a new cluster\" force a recreate (its workloads and data are lost).");
    }
    let show = |app: &App| {
        app.ui.line(&format!("{reason}:"));
        for line in details.lines() {
            app.ui.line(&format!("  {line}"));
        }
    };
    let question = format!("Delete and recreate cluster `{}`?", plan.name);
    let confirmed = if args.recreate && (args.yes || !app.world.can_prompt()) {
        show(app);
        true
    } else if (args.recreate || !app.world.is_ci()) && app.world.can_prompt() {
        show(app);
        if prompt(&question) {
            true
        } else {
            return Err(Error::failed(format!("{reason}; nothing was changed")).hint(
                "run `devcluster up --recreate` to delete and recreate it, or pick another name with `--name`",
            ));
        }
    } else {
        false
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
            let checks = crate::operations::doctor::preflight(app, plan).await;
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
        Outcome::Interrupted(why) => Err(Error::interrupted(format!(
            "interrupted by {why} before the cluster was created; nothing was changed"
        ))),
    }
}

/// Runs `kind create cluster` under its own limit. An interruption stops kind's
/// whole process group; then, as after a failed create, the nodes are rolled back
/// unless `--retain`.
async fn create(
    runner: &mut Runner<'_>,
    docker: &Docker,
    kind: &Kind,
    plan: &ClusterPlan,
    args: &UpOptions,
) -> Result<()> {
    let app = runner.app;
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
    let started = Instant::now();
    let step = app.ui.step("create");
    let mut interrupted_by = "an interruption";
    let stop = async {
        interrupted_by = runner.deps.interrupt.wait().await;
    };
    let result = kind.create(&request, relay, stop).await;
    match result {
        Ok(CreateOutcome::Created) => {
            let detail = format!("{} node(s)", plan.nodes.len());
            step.done(&detail);
            runner.record("create", started, detail);
            Ok(())
        }
        Ok(CreateOutcome::Stopped) => {
            step.fail("interrupted");
            rollback(app, runner.deps, docker, kind, plan, args, "interrupted").await?;
            Err(Error::interrupted(format!(
                "interrupted by {interrupted_by} while kind was creating cluster `{}`; kind was stopped",
                plan.name
            ))
            .hint(rolled_back_hint(plan, args, false)))
        }
        Err(error) => {
            step.fail("");
            // kind deletes its nodes after a failed create unless --retain; make
            // sure, since a killed kind cannot.
            rollback(app, runner.deps, docker, kind, plan, args, "kind failed").await?;
            Err(add_hint(
                error.context("step `create` failed"),
                rolled_back_hint(plan, args, false),
            ))
        }
    }
}

/// What the create half hands the converge half.
struct Established {
    api: ClusterApi,
    /// Why the steps after this one cannot run yet (nodes without a CNI).
    blocked: Option<String>,
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

/// Record (phase `created`), kubeconfig, API connection and node readiness.
/// `Ok(None)` when interrupted.
async fn establish(
    runner: &mut Runner<'_>,
    docker: &Docker,
    kind: &Kind,
    plan: &ClusterPlan,
    args: &UpOptions,
) -> Result<Option<Established>> {
    let app = runner.app;
    let holder = record_holder_name(plan)?;
    macro_rules! step {
        ($name:expr, $body:expr) => {
            match runner.step($name, $body).await? {
                Outcome::Done(value) => value,
                Outcome::Interrupted(_) => return Ok(None),
            }
        };
    }
    let existing = read_record(
        docker,
        &docker
            .list_nodes(Some(&plan.name))
            .await
            .unwrap_or_default(),
    )
    .await;
    // A record from an earlier run keeps its phase until the steps run again.
    if existing.is_none() {
        let record = Record::new(plan, Phase::Created);
        step!("record", async {
            write_node_record(docker, &holder, &record).await?;
            Ok((
                (),
                format!("phase created, {holder}:{}", record::RECORD_PATH),
            ))
        });
    }
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
    let blocked = match waits_for_cni(plan) {
        None => {
            step!("wait", async {
                api.wait_ready(&expected, deadline, |waiting| {
                    ui.line(&format!("    waiting: {waiting}"))
                })
                .await?;
                Ok((
                    None,
                    format!("{} node(s) Ready, CoreDNS available", expected.len()),
                ))
            })
        }
        Some(why) => step!("wait", async {
            let blocked = wait_registered(&api, &expected, deadline, why, |waiting| {
                ui.line(&format!("    waiting: {waiting}"))
            })
            .await?;
            let detail = match &blocked {
                None => format!("{} node(s) Ready, CoreDNS available", expected.len()),
                Some(_) => format!(
                    "{} node(s) registered; not Ready without a CNI",
                    expected.len()
                ),
            };
            Ok((blocked, detail))
        }),
    };
    Ok(Some(Established { api, blocked }))
}

fn record_holder_name(plan: &ClusterPlan) -> Result<String> {
    plan.control_planes()
        .next()
        .map(|n| n.name.clone())
        .ok_or_else(|| Error::failed("the plan has no control-plane"))
}

/// For a plan without a CNI: waits until every node has registered, then says
/// why the rest cannot run yet (`None` when the nodes are Ready and CoreDNS is
/// available, e.g. after the user installed a CNI).
async fn wait_registered(
    api: &ClusterApi,
    expected: &[String],
    deadline: Instant,
    why: &str,
    mut progress: impl FnMut(&str),
) -> Result<Option<String>> {
    let mut last = String::new();
    loop {
        let waiting = match api.nodes().await {
            Ok(nodes) => {
                let missing: Vec<&str> = expected
                    .iter()
                    .filter(|name| !nodes.iter().any(|n| &n.name == *name))
                    .map(String::as_str)
                    .collect();
                if missing.is_empty() {
                    let not_ready: Vec<String> = nodes
                        .iter()
                        .filter(|n| expected.contains(&n.name) && !n.ready)
                        .map(|n| format!("{} ({})", n.name, n.reason))
                        .collect();
                    if not_ready.is_empty() && api.coredns_available().await.unwrap_or(false) {
                        return Ok(None);
                    }
                    let state = if not_ready.is_empty() {
                        "CoreDNS is not available".to_string()
                    } else {
                        format!("nodes not Ready: {}", not_ready.join(", "))
                    };
                    return Ok(Some(format!("{why}; {state}")));
                }
                format!("nodes not registered: {}", missing.join(", "))
            }
            Err(e) => e.to_string(),
        };
        if waiting != last {
            progress(&waiting);
            last = waiting.clone();
        }
        if Instant::now() >= deadline {
            return Err(Error::failed("the nodes did not register in time")
                .cause(waiting)
                .hint("raise `--timeout`, or look at `kubectl get nodes -o wide`"));
        }
        tokio::time::sleep(
            Duration::from_millis(1000).min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }
}

/// The converge half: storage fix, ingress controller, record, verification, on
/// nodes that exist. Never deletes: a failure keeps the cluster and says how to
/// resume; the record's phase says how far it got.
async fn converge(
    runner: &mut Runner<'_>,
    docker: &Docker,
    plan: &ClusterPlan,
    args: &UpOptions,
    established: Established,
    manifest: Option<String>,
    action: &'static str,
) -> Result<UpResult> {
    let app = runner.app;
    let holder = record_holder_name(plan)?;
    let Established { api, blocked } = established;
    let mut result = UpResult {
        cluster: plan.name.clone(),
        action,
        phase: Phase::Created.as_str(),
        context: plan.context_name(),
        kubeconfig: args.kubeconfig.clone(),
        ingress_url: ingress_url(plan),
        nodes: plan.nodes.iter().map(|n| n.name.clone()).collect(),
        plan_hash: record::plan_hash(plan),
        steps: Vec::new(),
        skipped: Vec::new(),
    };
    if let Some(why) = blocked {
        // The nodes stay as kind made them; the record says `up` has not finished.
        write_node_record(docker, &holder, &Record::new(plan, Phase::Created)).await?;
        for step in ["CoreDNS", "storage", "ingress", "verify"] {
            let skipped = format!("{step}: skipped, {why}");
            app.ui.line(&format!("- {skipped}"));
            result.skipped.push(skipped);
        }
        app.ui.line("");
        app.ui.line(&format!(
            "cluster `{}` is created but not finished: its nodes need a CNI (a network plugin) to become Ready.",
            plan.name
        ));
        app.ui.line(&format!(
            "Next: install a CNI (e.g. Calico or Cilium) with `kubectl --context {} apply -f ...`, then run `{}` again to finish.",
            plan.context_name(),
            resume_command(plan)
        ));
        result.steps = runner.steps.clone();
        return Ok(result);
    }
    match converge_steps(runner, docker, plan, args, &api, manifest, &holder).await {
        Ok(Some(())) => {}
        Ok(None) => return Err(kept_interrupted(plan, "converging")),
        // verify, interrupted, says what its cleanup did.
        Err(error) if error.kind == crate::core::error::ErrorKind::Interrupted => {
            let earlier = error.hint.clone();
            let hint = kept_interrupted(plan, "converging")
                .hint
                .unwrap_or_default();
            return Err(error.hint(match earlier {
                Some(earlier) => format!("{earlier}; {hint}"),
                None => hint,
            }));
        }
        Err(error) => return Err(kept(error, plan)),
    }
    result.phase = Phase::Complete.as_str();
    result.steps = runner.steps.clone();
    print_next_steps(app, &result);
    Ok(result)
}

/// The steps of the converge half; `Ok(None)` when interrupted.
async fn converge_steps(
    runner: &mut Runner<'_>,
    docker: &Docker,
    plan: &ClusterPlan,
    args: &UpOptions,
    api: &ClusterApi,
    manifest: Option<String>,
    holder: &str,
) -> Result<Option<()>> {
    let app = runner.app;
    let deadline = runner.deadline;
    macro_rules! step {
        ($name:expr, $body:expr) => {
            match runner.step($name, $body).await? {
                Outcome::Done(value) => value,
                Outcome::Interrupted(_) => return Ok(None),
            }
        };
    }
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
    if let (Some(source), Some(node), Some(manifest)) = (
        addons::controller_source(plan),
        plan.ingress_node(),
        manifest,
    ) {
        step!("ingress", async {
            let documents = addons::pin_controller(&manifest, &source, &node.taints)?;
            api.apply(&documents).await?;
            api.wait_pods_ready(&source.namespace, &source.pod_selector, deadline)
                .await?;
            Ok(((), format!("controller ready on {}", node.name)))
        });
    }
    let record_step = |phase: Phase| {
        let record = Record::new(plan, phase);
        async move {
            // The node's copy decides what the next `up` does: written last, so it
            // never claims a phase the ConfigMap did not get.
            api.write_record(
                record::RECORD_NAMESPACE,
                record::RECORD_CONFIGMAP,
                &record.to_json(),
            )
            .await?;
            write_node_record(docker, holder, &record).await?;
            Ok((
                (),
                format!(
                    "phase {}, {holder}:{} and ConfigMap {}/{}",
                    phase.as_str(),
                    record::RECORD_PATH,
                    record::RECORD_NAMESPACE,
                    record::RECORD_CONFIGMAP
                ),
            ))
        }
    };
    if args.no_verify {
        step!("record", record_step(Phase::Complete));
        return Ok(Some(()));
    }
    step!("record", record_step(Phase::Converged));
    let interrupt = runner.deps.interrupt.clone();
    let verified = runner
        .step_to_the_end("verify", async {
            let images = crate::operations::verify::Images {
                probe_image: args.probe_image.clone(),
                echo_image: args.echo_image.clone(),
                pull_policy: args.image_pull_policy,
            };
            let detail = crate::operations::verify::verify_after_up(
                app, docker, plan, deadline, api, &images, &interrupt,
            )
            .await?;
            Ok(((), detail))
        })
        .await;
    verified?;
    step!("record", record_step(Phase::Complete));
    Ok(Some(()))
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
            crate::core::error::shell_quote(&[path.display().to_string()])
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

/// `devcluster down`. kind is needed only when there is a cluster to delete, so
/// deleting one that does not exist succeeds without kind installed.
pub async fn run_down(app: &App, args: &DownOptions) -> Result<()> {
    let docker = app.docker().await.map_err(docker_error)?;
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
    } else if let Some(name) = &args.profile.name {
        vec![name.clone()]
    } else {
        let (_, plan) = app.plan(args.profile.profile.as_deref(), None)?;
        vec![plan.name]
    };
    if names.is_empty() {
        app.ui
            .line("no clusters created by devcluster; nothing to delete");
        return Ok(());
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
                "cluster `{name}` has no devcluster record (devcluster did not create it, or its `kind create` did not finish); not deleting it"
            ))
            .hint(format!(
                "to delete it anyway, name it: `devcluster down --name {name}`"
            )));
        }
        let kind = app.kind()?;
        let step = app.ui.step(&format!("delete cluster {name}"));
        match kind.delete(&name, args.kubeconfig.as_deref()).await {
            Ok(()) => step.done(&format!("{} node(s)", nodes.len())),
            Err(e) => {
                step.fail("");
                return Err(e);
            }
        }
    }
    Ok(())
}
