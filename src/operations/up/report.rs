//! What `up` hands back (for `-o json`) and the lines it ends with: the next
//! commands, or why the cluster is not finished yet.

use std::path::PathBuf;

use serde::Serialize;

use crate::core::plan::ClusterPlan;
use crate::core::record;
use crate::core::record::Phase;
use crate::operations::context::App;

use super::UpOptions;
use super::hints::resume_command;

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
    /// The plan the cluster now runs, for callers that go on with it (`run`).
    #[serde(skip)]
    pub plan: ClusterPlan,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub name: &'static str,
    pub seconds: f64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl UpResult {
    /// The result for `plan`, with no steps yet.
    pub(super) fn new(
        plan: &ClusterPlan,
        args: &UpOptions,
        action: &'static str,
        phase: Phase,
    ) -> UpResult {
        UpResult {
            cluster: plan.name.clone(),
            action,
            phase: phase.as_str(),
            context: plan.context_name(),
            kubeconfig: args.kubeconfig.clone(),
            ingress_url: ingress_url(plan),
            nodes: plan.nodes.iter().map(|n| n.name.clone()).collect(),
            plan_hash: record::plan_hash(plan),
            steps: Vec::new(),
            skipped: Vec::new(),
            plan: plan.clone(),
        }
    }
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

/// The commands to run against a finished cluster.
pub(super) fn print_next_steps(app: &App, result: &UpResult) {
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

/// The steps a cluster without a CNI cannot run yet, each as a `skipped` line, and
/// what to do so the next `up` finishes it.
pub(super) fn print_blocked(app: &App, plan: &ClusterPlan, why: &str, result: &mut UpResult) {
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
}
