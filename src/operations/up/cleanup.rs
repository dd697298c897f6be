//! The cleanup stack: what `up`'s actions leave behind that a failed run must
//! undo, newest first. An action pushes an entry when it makes something (the
//! lock, the cluster `kind create` is making); the runner unwinds the stack on
//! every way out (an error, an interruption, the deadline) and releases it when
//! the run succeeds. Once the nodes are made, the cluster's entry is taken off
//! ([`CleanupStack::keep_cluster`]): from then on `up` converges and never deletes.

use std::time::Duration;

use crate::core::error::{Error, Result};
use crate::operations::lock::ClusterLock;

use super::runner::UpContext;

/// One thing to undo.
#[derive(Debug)]
pub(super) enum Cleanup {
    /// The lock on the cluster's name: released when unwound.
    Lock(ClusterLock),
    /// The cluster this run is creating: deleted when unwound, unless `--retain`.
    /// `created`: kind create finished, so a kept cluster can be resumed.
    HalfMadeCluster { created: bool },
}

/// What unwinding did about a half-made cluster, for the error's hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClusterFate {
    /// No half-made cluster was on the stack: nothing this run made was deleted.
    Untouched,
    /// Deleted, or kept with `--retain`; `created` as in the entry.
    RolledBack { created: bool },
}

#[derive(Debug, Default)]
pub(super) struct CleanupStack(Vec<Cleanup>);

impl CleanupStack {
    pub(super) fn push(&mut self, entry: Cleanup) {
        self.0.push(entry);
    }

    /// kind create finished: the half-made cluster can now be resumed.
    pub(super) fn mark_created(&mut self) {
        for entry in &mut self.0 {
            if let Cleanup::HalfMadeCluster { created } = entry {
                *created = true;
            }
        }
    }

    /// The nodes are made: a later failure keeps them.
    pub(super) fn keep_cluster(&mut self) {
        self.0
            .retain(|entry| !matches!(entry, Cleanup::HalfMadeCluster { .. }));
    }

    /// What is on the stack, newest first, by kind (for tests and messages).
    #[cfg(test)]
    fn kinds(&self) -> Vec<&'static str> {
        self.0
            .iter()
            .rev()
            .map(|entry| match entry {
                Cleanup::Lock(_) => "lock",
                Cleanup::HalfMadeCluster { .. } => "cluster",
            })
            .collect()
    }

    /// Undoes every entry, newest first; `why` names the cause on the status line.
    /// Every entry is undone even when one fails; the first failure is returned
    /// (a second interruption abandons deleting the cluster, naming what is left).
    pub(super) async fn unwind(
        mut self,
        context: &UpContext<'_>,
        why: &str,
    ) -> Result<ClusterFate> {
        let mut fate = ClusterFate::Untouched;
        let mut failure = None;
        while let Some(entry) = self.0.pop() {
            match entry {
                Cleanup::Lock(lock) => drop(lock),
                Cleanup::HalfMadeCluster { created } => {
                    fate = ClusterFate::RolledBack { created };
                    if let Err(error) = delete_half_made(context, why).await {
                        failure.get_or_insert(error);
                    }
                }
            }
        }
        failure.map_or(Ok(fate), Err)
    }
}

/// Deletes the half-made cluster unless `--retain`. A killed kind may leave a
/// `docker run` of its own still finishing, so node containers that appear after
/// the delete are deleted too. A second interruption abandons the cleanup at once,
/// naming what is left.
async fn delete_half_made(context: &UpContext<'_>, why: &str) -> Result<()> {
    let UpContext {
        app,
        deps,
        docker,
        kind,
        plan,
        args,
        ..
    } = *context;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_cluster_leaves_the_stack_once_made_and_the_lock_stays_to_the_end() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("no temporary directory");
        };
        let lock =
            match crate::operations::lock::acquire(dir.path(), "c", Duration::ZERO, |_| {}).await {
                Ok(lock) => lock,
                Err(e) => panic!("{}", e.render()),
            };
        let mut stack = CleanupStack::default();
        stack.push(Cleanup::Lock(lock));
        stack.push(Cleanup::HalfMadeCluster { created: false });
        assert_eq!(stack.kinds(), ["cluster", "lock"]);
        stack.mark_created();
        assert!(matches!(
            stack.0.last(),
            Some(Cleanup::HalfMadeCluster { created: true })
        ));
        stack.keep_cluster();
        assert_eq!(stack.kinds(), ["lock"]);
    }
}
