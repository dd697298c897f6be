//! `up`: drive kind and Docker to a ready, recorded cluster, idempotently.
//!
//! `up` has two halves. *Create* (kind create, record, kubeconfig, connect, nodes
//! Ready) makes the nodes; it is rolled back when it fails or is interrupted, unless
//! `--retain`. *Converge* (storage fix, ingress controller, record, verify) works on
//! nodes that exist and never deletes them: it fails with the next command, and the
//! next `up` resumes it. The record in the cluster carries the phase `up` reached.
//!
//! As in kind's `pkg/cluster/internal/create/create.go`, the work is an ordered
//! list of small `actions` over one shared context, each under its own status
//! line, run by the `runner`. What an action leaves behind that a failure must
//! undo (the lock, the half-made cluster) goes onto the `cleanup` stack, which
//! the runner unwinds on every way out: an error, an interruption, the deadline.

mod actions;
mod cleanup;
mod existing;
mod find_kind;
mod hints;
mod report;
mod runner;

use std::path::PathBuf;
use std::time::Duration;

use crate::adapters::kube::cluster::Connector;
use crate::core::error::{Error, Result};
use crate::operations::context::App;
pub use crate::operations::interrupt::Interrupt;
use crate::operations::lock;
use crate::operations::{ProfileChoice, PullPolicy};

// `down` lives in its own module; these names stay reachable from here for the
// callers that knew them as part of `up`.
pub(crate) use hints::resume_command;
pub use report::{StepResult, UpResult};

use cleanup::{Cleanup, CleanupStack};
use existing::Route;

/// What the outside world lends `up`, so tests can replace the parts no test
/// machine has (a real API server) and deliver an interruption on cue.
#[derive(Debug, Clone, Default)]
pub struct Deps {
    pub connector: Connector,
    pub interrupt: Interrupt,
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

/// `devcluster up`, with its dependencies passed in: resolve kind and Docker, take
/// the cluster's lock, decide what the existing cluster (if any) needs, then run
/// that route's actions.
pub async fn run_up(app: &App, args: &UpOptions, deps: &Deps) -> Result<UpResult> {
    let (_, plan) = app.plan(
        args.profile.profile.as_deref(),
        args.profile.name.as_deref(),
    )?;
    let kind = find_kind::find_kind(app, args.install_kind).await?;
    let docker = app.docker().await.map_err(Error::from)?;
    let mut cleanup = CleanupStack::default();
    let lock = tokio::select! {
        lock = lock::acquire_for(app, &plan.name, args.lock_timeout) => lock?,
        why = deps.interrupt.wait() => {
            return Err(Error::interrupted(format!(
                "interrupted by {why} while waiting for the lock; nothing was changed"
            )));
        }
    };
    cleanup.push(Cleanup::Lock(lock));
    let existing = docker
        .list_nodes(Some(&plan.name))
        .await
        .map_err(Error::from)?;
    let route = existing::route(app, args, &plan, &docker, &existing).await?;
    if route == Route::UpToDate {
        return existing::up_to_date(app, args, &kind, &plan, &existing).await;
    }
    let actions = actions::for_route(&plan, args, route);
    let context = runner::UpContext::new(app, deps, args, &plan, &docker, &kind, route, cleanup);
    runner::run(context, &actions).await
}
