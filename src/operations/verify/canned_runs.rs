//! Whole runs of `verify` against the canned cluster API: what a run reports,
//! where it puts its pods, and what it leaves behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::adapters::kube::canned::{CannedCluster, CannedNode, PodEnd};
use crate::adapters::kube::probe::{ProbePod, VolumeSource};
use crate::adapters::world::World;
use crate::core::plan::{Taint, TaintEffect};

fn target(api: &Arc<CannedCluster>) -> Target<'static> {
    let api: Arc<dyn ClusterApi> = api.clone();
    Target {
        plan: None,
        docker: None,
        nodes: Vec::new(),
        node_layer_skipped: Some("not a kind cluster".into()),
        api: Some(api),
        api_error: None,
    }
}

/// Every probe pod's script exits 0.
fn succeeding(api: CannedCluster) -> Arc<CannedCluster> {
    Arc::new(api.pods_end(
        "",
        PodEnd::Exits {
            code: 0,
            logs: String::new(),
        },
    ))
}

async fn run(api: &Arc<CannedCluster>) -> Report {
    let app = App::new(World::default());
    let options = Options::new(Instant::now() + Duration::from_secs(20));
    verify(&app, &target(api), &options, None)
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()))
}

fn probe_namespaces(api: &CannedCluster) -> Vec<String> {
    api.namespaces()
        .into_iter()
        .map(|(name, _, _)| name)
        .filter(|name| name.starts_with("devcluster-verify-"))
        .collect()
}

#[tokio::test]
async fn a_probe_namespace_an_earlier_run_left_terminating_is_reported_and_this_ones_removed() {
    let api = succeeding(
        CannedCluster::ready(&["n1"])
            .with_terminating_probe_namespace("devcluster-verify-old", Duration::from_secs(720)),
    );
    let report = run(&api).await;
    let warnings: Vec<&Check> = report
        .checks
        .iter()
        .filter(|c| c.name == "cleanup")
        .collect();
    assert_eq!(warnings.len(), 1, "{:#?}", report.checks);
    assert_eq!(warnings[0].status, Status::Warn);
    assert_eq!(
        warnings[0].detail,
        "probe namespace devcluster-verify-old of an earlier run is still terminating (12 min after its deletion)"
    );
    assert!(
        warnings[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("kubectl get namespace devcluster-verify-old -o yaml")),
        "{:?}",
        warnings[0].hint
    );
    // This run made its pods in a namespace of its own, and deleted it.
    let (namespace, _) = api
        .all_created_pods()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no pod was made"));
    assert_ne!(namespace, "devcluster-verify-old");
    assert_eq!(probe_namespaces(&api), vec!["devcluster-verify-old"]);
}

#[tokio::test]
async fn probe_pods_go_to_the_ready_node_tolerating_its_taints_and_never_to_a_cordoned_one() {
    let dedicated = Taint {
        key: "dedicated".into(),
        value: Some("db".into()),
        effect: TaintEffect::NoSchedule,
        implicit: false,
    };
    let cluster = CannedCluster::ready(&[]);
    cluster.add_node(CannedNode::ready("n1").tainted(dedicated.clone()));
    cluster.add_node(CannedNode::not_ready("n2", "PLEG is not healthy"));
    cluster.add_node(CannedNode {
        unschedulable: true,
        ..CannedNode::ready("n3")
    });
    let api = succeeding(cluster);
    run(&api).await;
    let pods = api.all_created_pods();
    assert!(!pods.is_empty());
    for (_, pod) in &pods {
        assert_eq!(pod.node.as_deref(), Some("n1"), "{pod:?}");
        assert!(pod.tolerations.contains(&dedicated), "{pod:?}");
    }
}

#[tokio::test]
async fn a_server_older_than_read_write_once_pod_gets_no_such_claim_or_pod() {
    let api = succeeding(CannedCluster::ready(&["n1"]).with_version(1, 21));
    let report = run(&api).await;
    let row = row_named(&report, "ReadWriteOncePod");
    assert_eq!(row.status, Status::Skip);
    assert_eq!(
        row.detail,
        "not supported by this cluster (Kubernetes 1.21; needs 1.22+)"
    );
    let names: Vec<String> = api
        .all_created_pods()
        .into_iter()
        .map(|(_, p)| p.name)
        .collect();
    assert!(!names.is_empty());
    assert!(!names.iter().any(|n| n.starts_with("rwop")), "{names:?}");
}

#[tokio::test]
async fn an_image_the_kubelet_will_not_pull_ends_each_row_at_once_with_its_words() {
    // The kubelet's refusal under `imagePullPolicy: Never`
    // (`pkg/kubelet/images/image_manager.go`, `EnsureImageExists`).
    let refusal =
        "Container image \"registry.example/busybox:1\" is not present with pull policy of Never";
    let api = Arc::new(CannedCluster::ready(&["n1"]).pods_end(
        "",
        PodEnd::Waiting {
            reason: "ErrImageNeverPull".into(),
            message: refusal.into(),
        },
    ));
    let started = Instant::now();
    let report = run(&api).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the wait ended at the deadline"
    );
    let rows: Vec<&Check> = report
        .checks
        .iter()
        .filter(|c| ["subPath", "storage"].contains(&c.name.as_str()))
        .collect();
    assert_eq!(rows.len(), 2, "{:#?}", report.checks);
    for row in rows {
        assert_eq!(row.status, Status::Fail, "{row:?}");
        assert!(
            row.detail
                .contains(&format!("ErrImageNeverPull: {refusal}")),
            "{row:?}"
        );
        assert!(
            row.hint
                .as_deref()
                .is_some_and(|h| h.contains("--probe-image IMAGE")),
            "{row:?}"
        );
    }
    assert!(report.failed());
}

#[tokio::test]
async fn a_cluster_with_no_ready_schedulable_node_fails_naming_each_node() {
    let cluster = CannedCluster::ready(&[]);
    cluster.add_node(CannedNode::not_ready("n1", "PLEG is not healthy"));
    cluster.add_node(CannedNode {
        unschedulable: true,
        ..CannedNode::ready("n2")
    });
    cluster.add_node(CannedNode {
        unschedulable: true,
        ..CannedNode::not_ready("n3", "Kubelet stopped posting node status.")
    });
    let api = succeeding(cluster);
    let report = run(&api).await;
    assert!(report.failed(), "{:#?}", report.checks);
    let row = row_named(&report, "nodes");
    assert_eq!(row.status, Status::Fail);
    assert_eq!(
        row.detail,
        "no node is Ready and schedulable, so no probe pod can run: n1 (not Ready), n2 (cordoned), n3 (not Ready, cordoned)"
    );
    assert!(
        row.hint
            .as_deref()
            .is_some_and(|h| h.contains("kubectl uncordon NAME"))
    );
    assert!(api.all_created_pods().is_empty());
    assert!(
        probe_namespaces(&api).is_empty(),
        "the namespace is removed"
    );

    // No node at all says so; a Ready one adds no row.
    let report = run(&succeeding(CannedCluster::ready(&[]))).await;
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "nodes"
                && c.detail == "the cluster has no nodes: no probe pod can run")
    );
    let report = run(&succeeding(CannedCluster::ready(&["n1"]))).await;
    assert!(!report.checks.iter().any(|c| c.name == "nodes"));
}

/// The scheduler's verdict on a second pod of a ReadWriteOncePod claim in use
/// (`pkg/scheduler/framework/plugins/volumerestrictions/volume_restrictions.go`,
/// `ErrReasonReadWriteOncePodConflict`).
const RWOP_CONFLICT: &str = "0/1 nodes are available: 1 node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";

/// The report's first row named `name`.
fn row_named<'r>(report: &'r Report, name: &str) -> &'r Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} row: {:#?}", report.checks))
}

#[tokio::test]
async fn read_write_once_pod_passes_on_the_schedulers_verdict_and_fails_when_a_second_pod_runs() {
    let held = Arc::new(
        CannedCluster::ready(&["n1"])
            .pods_end(
                "",
                PodEnd::Exits {
                    code: 0,
                    logs: String::new(),
                },
            )
            .pods_end("rwop-holder", PodEnd::Runs)
            .pods_end(
                "rwop-second",
                PodEnd::Unschedulable {
                    message: RWOP_CONFLICT.into(),
                },
            ),
    );
    let report = run(&held).await;
    let row = row_named(&report, "ReadWriteOncePod");
    assert_eq!(row.status, Status::Ok, "{row:?}");
    assert_eq!(
        row.detail,
        format!("second pod kept Pending: Unschedulable: {RWOP_CONFLICT}")
    );

    let shared = Arc::new(
        CannedCluster::ready(&["n1"])
            .pods_end(
                "",
                PodEnd::Exits {
                    code: 0,
                    logs: String::new(),
                },
            )
            .pods_end("rwop-holder", PodEnd::Runs),
    );
    let report = run(&shared).await;
    let row = row_named(&report, "ReadWriteOncePod");
    assert_eq!(row.status, Status::Fail, "{row:?}");
    assert_eq!(
        row.detail,
        "a second pod used the ReadWriteOncePod claim (Succeeded)"
    );
}

/// A plan named `c` of a control plane and a worker, both with `dir` mounted
/// read-only at `/data` (a read-only mount's pod layer needs no reply on the
/// host, which a canned pod cannot write).
fn plan_with_a_mount(dir: &std::path::Path) -> crate::core::plan::ClusterPlan {
    let text = format!(
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nname: c\nnodes:\n  controlPlanes: 1\n  workers: 1\nmounts:\n  - hostPath: {}\n    containerPath: /data\n    readOnly: true\n",
        dir.display()
    );
    let profile = crate::core::profile::Profile::decode(&text).unwrap_or_else(|e| panic!("{e:?}"));
    let input = crate::core::plan::PlanInput {
        profile: &profile,
        name_override: None,
        base_dir: dir,
        home_dir: None,
        source: "test".into(),
        file: None,
    };
    crate::core::plan::plan(&input)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .plan
}

/// A run against `api` with `plan`: the names of the pods it made, and its rows
/// as `(name, node, status, detail)`.
async fn run_planned(
    api: &Arc<CannedCluster>,
    plan: &crate::core::plan::ClusterPlan,
) -> (Vec<ProbePod>, Vec<(String, String, Status, String)>) {
    let mut target = target(api);
    target.plan = Some(plan);
    let app = App::new(World::default());
    let options = Options::new(Instant::now() + Duration::from_secs(20));
    let report = verify(&app, &target, &options, None)
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let rows = report
        .checks
        .iter()
        .filter(|c| c.layer == Layer::Pod)
        .map(|c| {
            let node = c.node.clone().unwrap_or_default();
            (c.name.clone(), node, c.status, c.detail.clone())
        })
        .collect();
    let pods = api
        .all_created_pods()
        .into_iter()
        .map(|(_, pod)| pod)
        .collect();
    (pods, rows)
}

/// The mount and subPath pods among `pods`.
fn names(pods: &[ProbePod]) -> Vec<&str> {
    pods.iter()
        .map(|p| p.name.as_str())
        .filter(|n| n.starts_with("mnt") || n.starts_with("subpath"))
        .collect()
}

#[tokio::test]
async fn each_nodes_subpath_check_rides_in_its_mount_pod_when_that_pod_reads_the_key() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let plan = plan_with_a_mount(dir.path());
    let api = Arc::new(
        CannedCluster::ready(&["c-control-plane", "c-worker"])
            .pods_end(
                "mnt",
                PodEnd::Exits {
                    code: 0,
                    logs: "devcluster-subpath: ok\ndevcluster: ok\n".into(),
                },
            )
            .pods_end(
                "",
                PodEnd::Exits {
                    code: 0,
                    logs: String::new(),
                },
            ),
    );
    let (pods, rows) = run_planned(&api, &plan).await;
    assert_eq!(
        names(&pods),
        ["mnt0-0", "mnt0-1"],
        "no pod of subPath's own"
    );
    for pod in pods.iter().filter(|p| p.name.starts_with("mnt")) {
        // The key's file, as a pod of subPath's own mounts it.
        let key = pod
            .volumes
            .iter()
            .find(|v| v.sub_path.as_deref() == Some("probe.txt"))
            .unwrap_or_else(|| panic!("{} carries no subPath volume", pod.name));
        assert!(
            matches!(&key.source, VolumeSource::ConfigMap { name } if name == "devcluster-subpath")
        );
        assert!(key.read_only);
        assert!(
            pod.script
                .starts_with("IFS= read -r got < /.devcluster-subpath/probe.txt"),
            "{}",
            pod.script
        );
    }
    for node in ["c-control-plane", "c-worker"] {
        assert!(
            rows.iter()
                .any(|(name, n, status, detail)| name == "subPath"
                    && n == node
                    && *status == Status::Ok
                    && detail
                        == "ConfigMap key mounted as a single file (in the node's mount pod)"),
            "{rows:?}"
        );
        assert!(
            rows.iter().any(|(name, n, status, _)| name == "mount /data"
                && n == node
                && *status == Status::Ok),
            "{rows:?}"
        );
    }
}

#[tokio::test]
async fn a_mount_pod_that_did_not_read_the_key_leaves_subpath_to_pods_of_its_own() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let plan = plan_with_a_mount(dir.path());
    // The mount's script passes, but the key's line is not there.
    let api = succeeding(
        CannedCluster::ready(&["c-control-plane", "c-worker"]).pods_end(
            "subpath",
            PodEnd::Exits {
                code: 12,
                logs: "devcluster: wrong content\n".into(),
            },
        ),
    );
    let (pods, rows) = run_planned(&api, &plan).await;
    let mut made = names(&pods);
    made.sort_unstable();
    assert_eq!(made, ["mnt0-0", "mnt0-1", "subpath-0", "subpath-1"]);
    let subpath: Vec<_> = rows.iter().filter(|r| r.0 == "subPath").collect();
    assert_eq!(subpath.len(), 2, "{rows:?}");
    assert!(subpath.iter().all(|r| r.2 == Status::Fail), "{rows:?}");
    assert!(
        rows.iter()
            .filter(|r| r.0 == "mount /data")
            .all(|r| r.2 == Status::Ok),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_mount_pod_the_runtime_cannot_create_is_tried_again_without_the_key() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let plan = plan_with_a_mount(dir.path());
    // What the kubelet reports when the runtime cannot bind a single file.
    let cannot_bind = PodEnd::Waiting {
        reason: "CreateContainerError".into(),
        message: "failed to mount volume-subpaths/v1/probe/1: file exists".into(),
    };
    let alone = PodEnd::Exits {
        code: 0,
        logs: "devcluster: ok\n".into(),
    };
    let api = succeeding(
        CannedCluster::ready(&["c-control-plane", "c-worker"])
            .pods_end("mnt", cannot_bind.clone())
            .pods_end("mnt0-0-alone", alone.clone())
            .pods_end("mnt0-1-alone", alone)
            .pods_end("subpath", cannot_bind),
    );
    let (pods, rows) = run_planned(&api, &plan).await;
    let mut made = names(&pods);
    made.sort_unstable();
    assert_eq!(
        made,
        [
            "mnt0-0",
            "mnt0-0-alone",
            "mnt0-1",
            "mnt0-1-alone",
            "subpath-0",
            "subpath-1"
        ]
    );
    assert!(
        pods.iter()
            .filter(|p| p.name.ends_with("-alone"))
            .all(|p| p.volumes.len() == 1 && !p.script.contains("devcluster-subpath")),
        "the mount is tried again alone"
    );
    for node in ["c-control-plane", "c-worker"] {
        assert!(
            rows.iter().any(|(name, n, status, _)| name == "mount /data"
                && n == node
                && *status == Status::Ok),
            "the mount is judged on its own pod: {rows:?}"
        );
        assert!(
            rows.iter()
                .any(|(name, n, status, detail)| name == "subPath"
                    && n == node
                    && *status == Status::Fail
                    && detail.contains("file exists")),
            "subPath is judged on its own pod: {rows:?}"
        );
    }
}
