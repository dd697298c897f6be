//! The failure bundle: everything needed to debug a failed verification in one
//! directory (the kind config, `docker inspect` of every node, probe events and
//! logs, and the report).

use std::path::Path;

use crate::adapters::docker::{Docker, ObservedNode};
use crate::adapters::kube::cluster::ClusterApi;
use crate::core::plan::ClusterPlan;
use crate::operations::verify::Target;
use crate::operations::verify::report::Report;

/// The cluster's side of a bundle: the plan and its kind config, and `docker
/// inspect` of every node (`nodes/NAME.json`).
pub async fn cluster_files(
    dir: &Path,
    plan: Option<&ClusterPlan>,
    docker: Option<&Docker>,
    nodes: &[ObservedNode],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("nodes"))?;
    if let Some(plan) = plan {
        std::fs::write(
            dir.join("kind-config.yaml"),
            crate::core::kindconfig::render(plan),
        )?;
        std::fs::write(
            dir.join("plan.json"),
            serde_json::to_string_pretty(plan).unwrap_or_default(),
        )?;
    }
    if let Some(docker) = docker {
        for node in nodes {
            if let Ok(inspect) = docker.inspect_json(&node.name).await {
                std::fs::write(
                    dir.join("nodes").join(format!("{}.json", node.name)),
                    serde_json::to_string_pretty(&inspect).unwrap_or_default(),
                )?;
            }
        }
    }
    Ok(())
}

pub async fn collect(
    dir: &Path,
    target: &Target<'_>,
    api: &ClusterApi,
    namespace: &str,
    report: &Report,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report).unwrap_or_default(),
    )?;
    cluster_files(dir, target.plan, target.docker, &target.nodes).await?;
    let pods = api.pod_names(namespace).await.unwrap_or_default();
    let mut events = String::new();
    for pod in &pods {
        for event in api.events(namespace, "Pod", pod).await.unwrap_or_default() {
            events.push_str(&format!("{pod}: {event}\n"));
        }
        let logs = api.logs(namespace, pod).await.unwrap_or_default();
        std::fs::create_dir_all(dir.join("logs"))?;
        std::fs::write(dir.join("logs").join(format!("{pod}.log")), logs)?;
    }
    std::fs::write(dir.join("events.txt"), events)?;
    Ok(())
}
