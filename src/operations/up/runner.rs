//! Runs `up`'s actions in order over one shared context, each under its own
//! status line; on the first failure, interruption or missed deadline it unwinds
//! the cleanup stack and turns what happened into the error the user reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::adapters::docker::Docker;
use crate::adapters::kind::Kind;
use crate::adapters::kube::cluster::ClusterApi;
use crate::core::error::{Error, ErrorKind, Result};
use crate::core::plan::ClusterPlan;
use crate::core::record::{Phase, Record};
use crate::operations::MAX_DURATION;
use crate::operations::context::App;

use super::actions::{self, Action, Finished, Stage, Watch};
use super::cleanup::{CleanupStack, ClusterFate};
use super::existing::Route;
use super::hints;
use super::report::{StepResult, UpResult, print_blocked, print_next_steps};
use super::{Deps, UpOptions};
use crate::operations::cluster::{record_holder_name, write_node_record};

/// How long past the deadline a step may take to report its own timeout.
const DEADLINE_GRACE: Duration = Duration::from_secs(3);

/// What the actions share: the world they act on, and what earlier actions found.
pub(super) struct UpContext<'a> {
    pub(super) app: &'a App,
    pub(super) deps: &'a Deps,
    pub(super) args: &'a UpOptions,
    pub(super) plan: &'a ClusterPlan,
    pub(super) docker: &'a Docker,
    pub(super) kind: &'a Kind,
    pub(super) route: Route,
    /// When the actions that watch the clock must be done; restarted when the
    /// nodes exist, so `--timeout` does not cover kind's image pull.
    pub(super) deadline: Instant,
    pub(super) cleanup: CleanupStack,
    /// The ingress controller manifest, once fetched.
    pub(super) manifest: Option<String>,
    /// The cluster's kubeconfig, once kind gave it.
    pub(super) kubeconfig: Option<String>,
    api: Option<Arc<dyn ClusterApi>>,
    /// Why the converge half cannot run yet (nodes without a CNI).
    pub(super) blocked: Option<String>,
    steps: Vec<StepResult>,
}

impl<'a> UpContext<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        app: &'a App,
        deps: &'a Deps,
        args: &'a UpOptions,
        plan: &'a ClusterPlan,
        docker: &'a Docker,
        kind: &'a Kind,
        route: Route,
        cleanup: CleanupStack,
    ) -> UpContext<'a> {
        UpContext {
            app,
            deps,
            args,
            plan,
            docker,
            kind,
            route,
            deadline: deadline_after(args.timeout),
            cleanup,
            manifest: None,
            kubeconfig: None,
            api: None,
            blocked: None,
            steps: Vec::new(),
        }
    }

    /// The API client the `connect` action made.
    pub(super) fn api(&self) -> Result<&Arc<dyn ClusterApi>> {
        self.api.as_ref().ok_or_else(|| {
            Error::failed("not connected to the cluster's API: the `connect` step did not run")
        })
    }

    pub(super) fn set_api(&mut self, api: Arc<dyn ClusterApi>) {
        self.api = Some(api);
    }

    /// What entering `stage` changes for the actions after it.
    fn enter(&mut self, stage: Stage) {
        match stage {
            Stage::Prepare | Stage::Create => {}
            Stage::Establish => self.deadline = deadline_after(self.args.timeout),
            Stage::Converge => self.cleanup.keep_cluster(),
        }
    }
}

/// `now + timeout`, for any timeout the flags accept (they refuse more than a week).
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(MAX_DURATION))
        .unwrap_or(now)
}

/// Why an action stopped the run.
enum Failure {
    Failed(Error),
    Interrupted(&'static str),
}

/// Runs `actions` in order; the first that fails or is interrupted stops the run,
/// unwinds the cleanup stack and becomes the error.
pub(super) async fn run(mut context: UpContext<'_>, actions: &[Action]) -> Result<UpResult> {
    let mut stage = Stage::Prepare;
    for &action in actions {
        if action.stage() != stage {
            stage = action.stage();
            context.enter(stage);
            if stage == Stage::Converge
                && let Some(why) = context.blocked.clone()
            {
                return finish_blocked(context, &why).await;
            }
        }
        let failure = match run_action(&mut context, action).await {
            Ok(None) => continue,
            Ok(Some(why)) => Failure::Interrupted(why),
            Err(error) => Failure::Failed(error),
        };
        return Err(fail(context, action, failure).await);
    }
    let mut result = UpResult::new(
        context.plan,
        context.args,
        context.route.action(),
        Phase::Complete,
    );
    result.steps = context.steps;
    print_next_steps(context.app, &result);
    Ok(result)
}

/// Runs one action under its status line; `Ok(Some(why))` when interrupted.
async fn run_action(context: &mut UpContext<'_>, action: Action) -> Result<Option<&'static str>> {
    let started = Instant::now();
    let step = context.app.ui.step(&action.label(context.plan));
    let ended = match action.watch() {
        Watch::Runner => race(context, action).await,
        Watch::Itself => Ended::Ran(actions::execute(action, context).await),
    };
    let ran = match ended {
        Ended::Ran(ran) => ran,
        Ended::Deadline => {
            step.fail("deadline");
            // The headline names the step already.
            return Err(Error::failed(format!(
                "step `{}` did not finish before the deadline",
                action.name()
            ))
            .hint("raise `--timeout`"));
        }
    };
    match ran {
        Ok(Finished::Done(detail)) => {
            step.done(&detail);
            context.steps.push(StepResult {
                name: action.name(),
                seconds: started.elapsed().as_secs_f64(),
                detail,
            });
            Ok(None)
        }
        Ok(Finished::Interrupted(why)) => {
            step.fail("interrupted");
            Ok(Some(why))
        }
        Err(error) if error.kind == ErrorKind::Interrupted => {
            step.fail("interrupted");
            Err(error)
        }
        Err(error) => {
            step.fail("");
            Err(error.in_step(action.name()))
        }
    }
}

/// How a raced action ended.
enum Ended {
    Ran(Result<Finished>),
    Deadline,
}

/// Races the action against an interruption and the deadline. Actions that
/// watch the deadline themselves (waiting on nodes or pods) say what they were
/// waiting for; the grace lets their error win.
async fn race(context: &mut UpContext<'_>, action: Action) -> Ended {
    let interrupt = context.deps.interrupt.clone();
    let remaining = context.deadline.saturating_duration_since(Instant::now()) + DEADLINE_GRACE;
    tokio::select! {
        ran = actions::execute(action, context) => Ended::Ran(ran),
        why = interrupt.wait() => Ended::Ran(Ok(Finished::Interrupted(why))),
        _ = tokio::time::sleep(remaining) => Ended::Deadline,
    }
}

/// Unwinds the cleanup stack after `action` stopped the run, and says what
/// happened and what became of the cluster. A failure to clean up (a second
/// interruption) is the error then.
async fn fail(mut context: UpContext<'_>, action: Action, failure: Failure) -> Error {
    let why = match (&failure, action) {
        (Failure::Interrupted(_), _) => "interrupted",
        (Failure::Failed(_), Action::Create) => "kind failed",
        (Failure::Failed(_), _) => "a step failed",
    };
    let cleanup = std::mem::take(&mut context.cleanup);
    match cleanup.unwind(&context, why).await {
        Ok(fate) => explain(&context, action, failure, fate),
        Err(abandoned) => abandoned,
    }
}

/// The error for a run that `action` stopped, after the stack was unwound.
fn explain(context: &UpContext<'_>, action: Action, failure: Failure, fate: ClusterFate) -> Error {
    let plan = context.plan;
    let created = match fate {
        ClusterFate::RolledBack { created } => created,
        ClusterFate::Untouched if action.stage() == Stage::Prepare => {
            return explain_before_create(context, action, failure);
        }
        // The nodes were there before, or are made: they stay.
        ClusterFate::Untouched => {
            return match failure {
                Failure::Interrupted(_) => hints::kept_interrupted(plan),
                Failure::Failed(error) if error.kind == ErrorKind::Interrupted => {
                    hints::kept_after_interruption(error, plan)
                }
                Failure::Failed(error) => hints::kept(error, plan),
            };
        }
    };
    let rolled_back = hints::rolled_back(plan, context.args, created);
    match failure {
        Failure::Failed(error) => hints::add_hint(error, rolled_back),
        Failure::Interrupted(why) if action == Action::Create => Error::interrupted(format!(
            "interrupted by {why} while kind was creating cluster `{}`; kind was stopped",
            plan.name
        ))
        .hint(rolled_back),
        Failure::Interrupted(_) => Error::interrupted(format!(
            "interrupted while creating cluster `{}`",
            plan.name
        ))
        .hint(rolled_back),
    }
}

/// The error for a run stopped before anything was made.
fn explain_before_create(context: &UpContext<'_>, action: Action, failure: Failure) -> Error {
    let error = match failure {
        Failure::Interrupted(why) => hints::interrupted_before_create(why),
        Failure::Failed(error) if action == Action::Fetch => hints::nothing_changed(error),
        Failure::Failed(error) => error,
    };
    if action == Action::Preflight && context.route == Route::Recreate {
        return hints::not_deleted(error, context.plan);
    }
    error
}

/// Ends a run whose nodes cannot become Ready without a CNI: the nodes stay as
/// kind made them, and the record says `up` has not finished.
async fn finish_blocked(context: UpContext<'_>, why: &str) -> Result<UpResult> {
    let plan = context.plan;
    let holder = record_holder_name(plan)?;
    write_node_record(context.docker, &holder, &Record::new(plan, Phase::Created)).await?;
    let mut result = UpResult::new(plan, context.args, context.route.action(), Phase::Created);
    print_blocked(context.app, plan, why, &mut result);
    result.steps = context.steps;
    Ok(result)
}
