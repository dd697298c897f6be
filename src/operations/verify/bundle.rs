//! The failure bundle: everything needed to debug a failed verification in one
//! directory (the kind config, `docker inspect` of every node, `kind export logs`
//! of every node, probe events and logs, and the report).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::docker::{Docker, ObservedNode};
use crate::adapters::kind::{ClusterProvider, KindError};
use crate::adapters::kube::cluster::ClusterApi;
use crate::core::error::Error;
use crate::core::plan::ClusterPlan;
use crate::operations::context::App;
use crate::operations::interrupt::Interrupt;
use crate::operations::verify::Target;
use crate::operations::verify::report::Report;

/// How long `kind export logs` may take for a bundle: it runs after a failure,
/// when a node may not answer, and must not hold the command up.
pub const EXPORT_LOGS_LIMIT: Duration = Duration::from_secs(120);
/// Where a bundle keeps what `kind export logs` wrote.
pub const NODE_LOGS_DIR: &str = "kind-logs";
/// Where a bundle records why `kind export logs` failed.
pub const NODE_LOGS_ERROR: &str = "kind-logs.error.txt";

/// `kind export logs` of every node of `cluster` into `dir/kind-logs` (per node:
/// its kubelet, containerd and journal logs, `/var/log`, the container's log and
/// inspect), within `limit`. What kind wrote stays when it fails; the failure (kind
/// missing, kind's error, the time running out) is written to
/// `dir/kind-logs.error.txt` instead of failing, so neither the bundle nor the
/// command's result depends on it. An interruption stops the export the same
/// way. Only writing that file can fail.
pub async fn node_logs(
    provider: Result<Arc<dyn ClusterProvider>, KindError>,
    cluster: &str,
    dir: &Path,
    limit: Duration,
    interrupt: &Interrupt,
) -> std::io::Result<()> {
    let logs = dir.join(NODE_LOGS_DIR);
    let failure = match provider {
        Err(e) => Some(Error::from(e).context("no node logs: kind is not available")),
        Ok(provider) => {
            let export = tokio::time::timeout(limit, provider.export_logs(cluster, &logs));
            tokio::select! {
                exported = export => match exported {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(Error::from(e)),
                    Err(_) => Some(Error::failed(format!(
                        "kind export logs did not finish within {}",
                        humantime::format_duration(limit)
                    ))),
                },
                what = interrupt.wait() => Some(Error::interrupted(format!(
                    "kind export logs was stopped by {what}"
                ))),
            }
        }
    };
    if let Some(error) = failure {
        std::fs::write(dir.join(NODE_LOGS_ERROR), error.render())?;
    }
    Ok(())
}

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

/// The bundle of a failed verification: the report, the cluster's files, the
/// node logs of a kind cluster, and the probe pods' events and logs.
pub async fn collect(
    app: &App,
    dir: &Path,
    target: &Target<'_>,
    api: &dyn ClusterApi,
    namespace: &str,
    report: &Report,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report).unwrap_or_default(),
    )?;
    cluster_files(dir, target.plan, target.docker, &target.nodes).await?;
    let cluster = target
        .plan
        .map(|p| p.name.clone())
        .or_else(|| target.nodes.first().map(|n| n.cluster.clone()));
    match cluster {
        Some(cluster) => {
            // The caller races the whole bundle against its interruptions.
            node_logs(
                app.cluster_provider(),
                &cluster,
                dir,
                EXPORT_LOGS_LIMIT,
                &Interrupt::never(),
            )
            .await?;
        }
        None => std::fs::write(
            dir.join(NODE_LOGS_ERROR),
            "no node logs: the cluster's nodes are not kind containers this Docker can see\n",
        )?,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::kind::canned::{CannedExport, CannedProvider};
    use crate::adapters::kube::canned::{CannedCluster, PodEnd, probe_pod};
    use crate::adapters::kube::watch::ObservedEvent;
    use crate::adapters::world::World;
    use crate::core::check::{Check, Layer, Status};

    #[tokio::test]
    async fn the_bundle_keeps_each_probe_pods_logs_and_events() {
        let namespace = "devcluster-verify-abc";
        let scheduler = ObservedEvent {
            id: "sub0-1.17f".into(),
            kind: "Pod".into(),
            object: "sub0-1".into(),
            reason: "FailedScheduling".into(),
            message: "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}."
                .into(),
        };
        let api = CannedCluster::ready(&["n1"])
            .pods_end(
                "mnt0-",
                PodEnd::Exits {
                    code: 1,
                    logs: "no sentinel at /data\n".into(),
                },
            )
            .pods_end(
                "sub0-",
                PodEnd::Unschedulable {
                    message: scheduler.message.clone(),
                },
            )
            .with_event(namespace, scheduler);
        api.create_namespace(namespace)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for pod in ["mnt0-1", "sub0-1"] {
            api.create_pod(namespace, &probe_pod(pod))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let app = App::new(World::default());
        let target = Target {
            plan: None,
            docker: None,
            nodes: Vec::new(),
            node_layer_skipped: Some("not a kind cluster".into()),
            api: None,
            api_error: None,
        };
        let report = Report {
            checks: vec![Check::new(
                "mount",
                Some("n1"),
                Layer::Pod,
                Status::Fail,
                "no sentinel",
            )],
        };
        collect(&app, dir.path(), &target, &api, namespace, &report)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let read = |path: &str| {
            std::fs::read_to_string(dir.path().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        assert_eq!(read("logs/mnt0-1.log"), "no sentinel at /data\n");
        assert_eq!(
            read("logs/sub0-1.log"),
            "",
            "a pod that never ran has no logs"
        );
        assert_eq!(
            read("events.txt"),
            "sub0-1: FailedScheduling: 0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}.\n"
        );
        assert!(read("report.json").contains("no sentinel"));
        assert!(
            read(NODE_LOGS_ERROR).contains("not kind containers"),
            "a cluster of no kind nodes has no node logs, and says why"
        );
    }

    #[tokio::test]
    async fn a_failed_slow_or_missing_kind_is_recorded_in_the_bundle_not_returned() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let limit = Duration::from_secs(5);
        let failing: Arc<dyn ClusterProvider> =
            Arc::new(CannedProvider::exporting(CannedExport::FailsAfterWriting));
        node_logs(Ok(failing), "dev", dir.path(), limit, &Interrupt::never())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // What kind wrote before it failed stays, next to why it failed.
        assert!(
            dir.path()
                .join("kind-logs/dev-control-plane/kubelet.log")
                .is_file()
        );
        let recorded = std::fs::read_to_string(dir.path().join(NODE_LOGS_ERROR))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            recorded.starts_with("error: kind export logs failed"),
            "{recorded}"
        );
        assert!(recorded.contains("crictl images"), "{recorded}");

        let slow = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let hanging: Arc<dyn ClusterProvider> =
            Arc::new(CannedProvider::exporting(CannedExport::Hangs));
        let started = std::time::Instant::now();
        node_logs(
            Ok(hanging),
            "dev",
            slow.path(),
            Duration::from_millis(100),
            &Interrupt::never(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(started.elapsed() < Duration::from_secs(5));
        let recorded = std::fs::read_to_string(slow.path().join(NODE_LOGS_ERROR))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            recorded.contains("kind export logs did not finish within 100ms"),
            "{recorded}"
        );

        let none = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = Err(KindError::NotInstalled {
            looked: "not on PATH".into(),
        });
        node_logs(missing, "dev", none.path(), limit, &Interrupt::never())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let recorded = std::fs::read_to_string(none.path().join(NODE_LOGS_ERROR))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            recorded.contains("no node logs: kind is not available"),
            "{recorded}"
        );
        assert!(recorded.contains("kind is not installed"), "{recorded}");
    }

    #[tokio::test]
    async fn an_interruption_stops_the_export_and_is_recorded() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let hanging: Arc<dyn ClusterProvider> =
            Arc::new(CannedProvider::exporting(CannedExport::Hangs));
        let started = std::time::Instant::now();
        node_logs(
            Ok(hanging),
            "dev",
            dir.path(),
            Duration::from_secs(60),
            &Interrupt::after(Duration::from_millis(100)),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(started.elapsed() < Duration::from_secs(10));
        let recorded = std::fs::read_to_string(dir.path().join(NODE_LOGS_ERROR))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            recorded.contains("kind export logs was stopped by an interruption (test)"),
            "{recorded}"
        );
    }
}
