//! What `up`'s errors say to do next: after a failure before anything was made,
//! after a rolled-back create, and after a failure on nodes that were kept.

use crate::core::error::Error;
use crate::core::plan::ClusterPlan;

use super::UpOptions;

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
pub(super) fn add_hint(error: Error, hint: String) -> Error {
    let hint = match error.hint.clone() {
        Some(earlier) => format!("{earlier}; {hint}"),
        None => hint,
    };
    error.hint(hint)
}

/// A failure after the nodes exist: the cluster stays, and the error says how to
/// go on.
pub(super) fn kept(error: Error, plan: &ClusterPlan) -> Error {
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

/// An interruption after the nodes exist: the cluster stays.
pub(super) fn kept_interrupted(plan: &ClusterPlan) -> Error {
    Error::interrupted(format!(
        "interrupted while converging cluster `{}`",
        plan.name
    ))
    .hint(kept_interrupted_hint(plan))
}

/// An interruption that brought its own message (verify says what its cleanup
/// did): that first, then that the cluster stays.
pub(super) fn kept_after_interruption(error: Error, plan: &ClusterPlan) -> Error {
    add_hint(error, kept_interrupted_hint(plan))
}

fn kept_interrupted_hint(plan: &ClusterPlan) -> String {
    format!(
        "the cluster was kept; run `{}` to resume (`devcluster down --name {}` deletes it)",
        resume_command(plan),
        plan.name
    )
}

/// After a failed or interrupted create: what became of the nodes, and what to
/// run. `created`: kind create had finished (and the record, phase `created`, was
/// written), so the next `up` can resume; without it the next `up` must start over.
pub(super) fn rolled_back(plan: &ClusterPlan, args: &UpOptions, created: bool) -> String {
    if args.retain && created {
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

/// A failed download: nothing was touched yet.
pub(super) fn nothing_changed(error: Error) -> Error {
    let hint = error.hint.clone().unwrap_or_default();
    error.hint(format!(
        "nothing was created or deleted; {}",
        if hint.is_empty() {
            "check the network, then run `devcluster up` again".to_string()
        } else {
            hint
        }
    ))
}

/// A failed check before a recreate: the old cluster is still there.
pub(super) fn not_deleted(error: Error, plan: &ClusterPlan) -> Error {
    error.hint(format!(
        "cluster `{}` was not deleted; fix the above, then run `devcluster up --recreate` again (`devcluster doctor` repeats the checks)",
        plan.name
    ))
}

/// An interruption before anything was made.
pub(super) fn interrupted_before_create(why: &str) -> Error {
    Error::interrupted(format!(
        "interrupted by {why} before the cluster was created; nothing was changed"
    ))
}
