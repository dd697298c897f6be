//! What an existing cluster needs: nothing, converging in place, or (only when
//! the user agrees) a new cluster; and the checks before each.

use crate::adapters::docker::{Docker, ObservedNode};
use crate::adapters::kind::Kind;
use crate::core::error::{Error, Result};
use crate::core::plan::ClusterPlan;
use crate::core::record;
use crate::core::record::{Decision, Phase, Record};
use crate::operations::context::App;

use super::UpOptions;
use super::actions::write_kubeconfig;
use super::report::{UpResult, print_next_steps};
use crate::operations::cluster::read_record;

/// The way `up` takes to a ready cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// No cluster of that name: create it.
    Create,
    /// A cluster that only a new one can bring to the plan (or one without a
    /// record), and the user agreed to delete it.
    Recreate,
    /// devcluster's cluster, with changes that apply in place (or steps left to
    /// finish): converge it, never delete it.
    Converge,
    /// devcluster's cluster, as planned and finished.
    UpToDate,
}

impl Route {
    /// The result's `action`.
    pub(super) fn action(self) -> &'static str {
        match self {
            Route::Create => "created",
            Route::Recreate => "recreated",
            Route::Converge => "converged",
            Route::UpToDate => "up-to-date",
        }
    }

    /// Whether this run makes the nodes (and so may delete them again).
    pub(super) fn creates(self) -> bool {
        matches!(self, Route::Create | Route::Recreate)
    }
}

/// Decides the route from the cluster's nodes and its record; says so when it
/// converges, and asks (or refuses) before a recreate.
pub(super) async fn route(
    app: &App,
    args: &UpOptions,
    plan: &ClusterPlan,
    docker: &Docker,
    existing: &[ObservedNode],
) -> Result<Route> {
    if existing.is_empty() {
        return Ok(Route::Create);
    }
    let recorded = read_record(docker, existing).await;
    let decision = match &recorded {
        Some(recorded) => recorded.decide(plan),
        None => Decision::Recreate {
            changes: Vec::new(),
        },
    };
    match decision {
        Decision::UpToDate => match registry_not_running(plan, docker).await {
            // The nodes are as planned, but what they pull from is gone.
            Some(why) => {
                app.ui.line(&format!(
                    "cluster `{}` matches the profile but {why}; converging it in place",
                    plan.name
                ));
                Ok(Route::Converge)
            }
            None => Ok(Route::UpToDate),
        },
        Decision::Converge { reason, changes } => {
            ensure_running(plan, existing, "is devcluster's")?;
            app.ui.line(&format!(
                "cluster `{}` exists; converging it in place ({reason})",
                plan.name
            ));
            for change in &changes {
                app.ui.line(&format!("  {}", change.line()));
            }
            Ok(Route::Converge)
        }
        Decision::Recreate { changes } => {
            confirm_recreate(app, args, plan, recorded.as_ref(), &changes)?;
            Ok(Route::Recreate)
        }
    }
}

/// Why the plan's registry container needs `up`'s registry step again, if it does.
async fn registry_not_running(plan: &ClusterPlan, docker: &Docker) -> Option<String> {
    let registry = plan.registry.as_ref()?;
    match docker.inspect(&registry.container).await {
        Ok(found) if found.state == "running" => None,
        Ok(found) => Some(format!(
            "its registry `{}` is {}",
            registry.container, found.state
        )),
        Err(_) => Some(format!("its registry `{}` is missing", registry.container)),
    }
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

/// A cluster that matches the plan: nothing to do but write `--kubeconfig`.
pub(super) async fn up_to_date(
    app: &App,
    args: &UpOptions,
    kind: &Kind,
    plan: &ClusterPlan,
    existing: &[ObservedNode],
) -> Result<UpResult> {
    ensure_running(plan, existing, "matches the profile")?;
    if let Some(path) = &args.kubeconfig {
        write_kubeconfig(path, &kind.kubeconfig(&plan.name).await?)?;
    }
    app.ui.line(&format!(
        "✓ cluster `{}` is up to date; nothing changed",
        plan.name
    ));
    let result = UpResult::new(plan, args, Route::UpToDate.action(), Phase::Complete);
    print_next_steps(app, &result);
    Ok(result)
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
    if let Some((old, _)) = recorded
        .and_then(|r| r.plan.as_ref())
        .and_then(|recorded| record::controller_switch(recorded, plan))
    {
        details.push('\n');
        details.push_str(&keep_controller(old));
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

/// For a switch of ingress controller (a cluster made when ingress-nginx was the
/// default, planned now with Contour): how to keep the installed one instead.
fn keep_controller(installed: &str) -> String {
    format!(
        "To keep the installed controller instead, set `ingress.controller: {installed}` in the profile."
    )
}

/// A yes/no question at the terminal; no answer is a no.
pub(super) fn prompt(question: &str) -> bool {
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_controller_switch_says_how_to_keep_the_installed_one() {
        assert_eq!(
            keep_controller("ingress-nginx"),
            "To keep the installed controller instead, set `ingress.controller: ingress-nginx` in the profile."
        );
    }
}
