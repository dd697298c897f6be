//! A cluster devcluster made, as every command finds it: its record on the nodes
//! (read from and written into the first control-plane container), the plan it
//! was made from, and Docker failures in the user's words.

use crate::adapters::docker::{Docker, NodeRuntime, ObservedNode};
use crate::core::error::{Error, Result};
use crate::core::plan::{ClusterPlan, Role};
use crate::core::record;
use crate::core::record::Record;
use crate::operations::ProfileChoice;
use crate::operations::context::App;

/// The first control-plane container, where `up` keeps the record.
fn record_holder(nodes: &[ObservedNode]) -> Option<&ObservedNode> {
    nodes
        .iter()
        .filter(|n| n.role == Role::ControlPlane.as_str())
        .min_by(|a, b| a.name.len().cmp(&b.name.len()).then(a.name.cmp(&b.name)))
}

/// Reads devcluster's record from the cluster's first control-plane container,
/// through the runtime's archive read, so a stopped node is read as well as a
/// running one. `None` when there is none, or it cannot be read.
pub async fn read_record(runtime: &dyn NodeRuntime, nodes: &[ObservedNode]) -> Option<Record> {
    let holder = record_holder(nodes)?;
    let bytes = runtime
        .read_file(&holder.name, record::RECORD_PATH, record::MAX_RECORD_BYTES)
        .await
        .ok()??;
    Record::from_json(&String::from_utf8_lossy(&bytes))
}

/// Writes `record` into `node`'s record file, replacing it in one rename.
pub async fn write_node_record(docker: &Docker, node: &str, record: &Record) -> Result<()> {
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
        .map_err(Error::from)?;
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

/// The name of the container that holds the record: the plan's first control-plane.
pub fn record_holder_name(plan: &ClusterPlan) -> Result<String> {
    plan.control_planes()
        .next()
        .map(|n| n.name.clone())
        .ok_or_else(|| Error::failed("the plan has no control-plane"))
}
