//! `devcluster load`: its proof (an `imagePullPolicy: Never` pod per node) against
//! the in-memory API, whose pod hook plays the kubelet; and its errors on real
//! Docker with the kind emulator (a missing image, a missing cluster, a stopped
//! node, nodes without containerd). Loading onto real nodes is proven on the real
//! kind (`e2e_kind`, the multi-node test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devcluster::adapters::kube::cluster::{ClusterApi, Kube};
use devcluster::core::check::Status;
use devcluster::core::error::ErrorKind;
use devcluster::operations::interrupt::Interrupt;
use devcluster::operations::load::{self, NodeImage, Outcome};
use serde_json::{Value, json};
use support::fake_kube::{FakeApi, PodRun};
use support::{Cleanup, docker, docker_available, kind_emulator, unique_name};

fn loaded(node: &str, image: &str) -> NodeImage {
    NodeImage {
        node: node.into(),
        image: image.into(),
        outcome: Outcome::Loaded,
        detail: "imported".into(),
        proof: Status::Skip,
        proof_detail: String::new(),
        hint: None,
    }
}

/// The kubelet's answer to a pod with `imagePullPolicy: Never` whose image is not
/// in the node's runtime: the container waits with reason `ErrImageNeverPull`, and
/// a Warning event of that reason says so (kubelet
/// `pkg/kubelet/images/image_manager.go`, `EnsureImageExists`: "Container image %q
/// is not present with pull policy of Never"; `pkg/kubelet/images/types.go`).
fn never_pull_missing(image: &str) -> PodRun {
    let message = format!("Container image \"{image}\" is not present with pull policy of Never");
    let mut run = PodRun::waiting("ErrImageNeverPull", &message);
    run.events.push(("ErrImageNeverPull".into(), message));
    run
}

#[tokio::test]
async fn a_never_pull_pod_runs_on_each_node_and_an_image_missing_there_is_named() {
    let fake = FakeApi::new();
    fake.add_ready_node(
        "dev-control-plane",
        json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
    );
    fake.add_ready_node(
        "dev-worker",
        json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]),
    );
    fake.add_ready_node("dev-worker2", json!([]));
    // What each node's containerd holds; the hook is the kubelet of the pod's node.
    let images_on = |node: &str| -> BTreeSet<&'static str> {
        match node {
            "dev-worker2" => BTreeSet::new(),
            _ => BTreeSet::from(["app:dev"]),
        }
    };
    let pods: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = pods.clone();
    fake.on_pod_create(move |pod| {
        seen.lock().unwrap().push(pod.clone());
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
        let container = &pod["spec"]["containers"][0];
        let image = container["image"].as_str().unwrap_or("");
        let never = container["imagePullPolicy"] == "Never";
        if never && !images_on(node).contains(image) {
            return Some(never_pull_missing(image));
        }
        Some(PodRun::new("Running", None, ""))
    });
    let api: Arc<dyn ClusterApi> = Arc::new(Kube::new(fake.client()));
    let mut rows = vec![
        loaded("dev-control-plane", "app:dev"),
        loaded("dev-worker", "app:dev"),
        loaded("dev-worker2", "app:dev"),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    load::prove(&api, &mut rows, deadline, &Interrupt::never())
        .await
        .unwrap();

    assert_eq!(rows[0].proof, Status::Ok, "{:?}", rows[0]);
    assert!(
        rows[0]
            .proof_detail
            .contains("imagePullPolicy: Never pod is running it")
    );
    // The NoExecute-tainted worker runs it too: the pod tolerates the node's taints
    // (the fake's kubelet rejects a pod pinned by nodeName that does not).
    assert_eq!(rows[1].proof, Status::Ok, "{:?}", rows[1]);
    assert_eq!(rows[2].proof, Status::Fail, "{:?}", rows[2]);
    assert!(
        rows[2].proof_detail.contains("ErrImageNeverPull")
            && rows[2]
                .proof_detail
                .contains("is not present with pull policy of Never"),
        "{}",
        rows[2].proof_detail
    );
    assert!(
        rows[2]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("devcluster load app:dev")),
        "{:?}",
        rows[2].hint
    );

    // Each pod: pinned by nodeName, Never, the image's own command.
    let pods = pods.lock().unwrap().clone();
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["imagePullPolicy"], "Never");
        assert!(container.get("command").is_none(), "{container:#}");
        assert!(pod["spec"]["nodeName"].is_string());
    }
    // The namespace the proof made is deleted again.
    let namespace = pods[0]["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(namespace.starts_with("devcluster-load-"));
    assert!(
        fake.object(&format!("/api/v1/namespaces/{namespace}"))
            .is_none(),
        "the proof's namespace is left behind"
    );
}

#[tokio::test]
async fn a_proof_namespace_the_api_server_will_not_delete_is_a_warning_not_a_lost_report() {
    let fake = FakeApi::new();
    fake.add_ready_node("dev-control-plane", json!([]));
    fake.on_pod_create(|_| Some(PodRun::new("Running", None, "")));
    // RBAC that lets this user make namespaces but not delete them.
    fake.forbid("DELETE", "/api/v1/namespaces/devcluster-load-");
    let api: Arc<dyn ClusterApi> = Arc::new(Kube::new(fake.client()));
    let mut rows = vec![loaded("dev-control-plane", "app:dev")];
    let deadline = Instant::now() + Duration::from_secs(20);
    let left = load::prove(&api, &mut rows, deadline, &Interrupt::never())
        .await
        .unwrap_or_else(|e| panic!("the proof's result was lost: {}", e.render()));
    // The proof stands.
    assert_eq!(rows[0].proof, Status::Ok, "{:?}", rows[0]);
    // What is left is named, with the command that removes it.
    let left = left.expect("the namespace left behind is reported");
    let namespace = left.split_whitespace().next().unwrap().to_string();
    assert!(namespace.starts_with("devcluster-load-"), "{left}");
    assert!(left.contains("was not removed"), "{left}");
    assert!(
        fake.object(&format!("/api/v1/namespaces/{namespace}"))
            .is_some()
    );
    let report = load::LoadReport {
        cluster: "dev".into(),
        images: Vec::new(),
        nodes: rows,
        cleanup: Some(left),
    };
    assert!(!report.failed());
    let cleanup = report
        .checks()
        .into_iter()
        .find(|c| c.name == "cleanup")
        .unwrap();
    assert_eq!(cleanup.status, Status::Warn);
    assert_eq!(
        cleanup.hint.as_deref(),
        Some(format!("remove it with `kubectl delete namespace {namespace}`").as_str())
    );
}

#[tokio::test]
async fn an_interrupted_proof_removes_its_namespace() {
    let fake = FakeApi::new();
    fake.add_ready_node("dev-control-plane", json!([]));
    // The container is still being created when the interruption comes.
    fake.on_pod_create(|_| Some(PodRun::waiting("ContainerCreating", "")));
    let api: Arc<dyn ClusterApi> = Arc::new(Kube::new(fake.client()));
    let mut rows = vec![loaded("dev-control-plane", "app:dev")];
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = Instant::now();
    let error = load::prove(
        &api,
        &mut rows,
        deadline,
        &Interrupt::after(Duration::from_millis(800)),
    )
    .await
    .err()
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(error.kind, ErrorKind::Interrupted);
    assert!(
        error.message.contains("its proof namespace was removed"),
        "{}",
        error.render()
    );
    let left: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("DELETE /api/v1/namespaces/devcluster-load-"))
        .collect();
    assert_eq!(left.len(), 1, "{:?}", fake.requests());
}

/// `devcluster ARGS` with the kind emulator, in `dir`.
fn devcluster(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(support::devcluster_bin());
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("DEVCLUSTER_KIND", kind_emulator())
        .env("KIND_EMULATOR_IMAGE", support::TEST_IMAGE);
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        command.env("DOCKER_HOST", host);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_missing_image_a_missing_cluster_a_stopped_node_and_nodes_without_containerd() {
    if !docker_available(
        "a_missing_image_a_missing_cluster_a_stopped_node_and_nodes_without_containerd",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = unique_name("load");
    let _cleanup = Cleanup::new().cluster(&cluster);

    // An image the local engine does not have: named, with how to get it (exit 2).
    let missing = format!("{cluster}-absent:1");
    let out = devcluster(dir.path(), &["load", &missing, "--name", &cluster]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "error: image `{missing}` is not in the local Docker engine"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("`docker pull {missing}`")), "{text}");
    assert!(
        text.contains(&format!("`docker build -t {missing} .`")),
        "{text}"
    );

    // No such cluster (exit 1).
    let out = devcluster(
        dir.path(),
        &["load", support::TEST_IMAGE, "--name", &cluster],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("error: no cluster named `{cluster}`")),
        "{text}"
    );
    assert!(
        text.contains(&format!("devcluster up --name {cluster}")),
        "{text}"
    );

    let config = dir.path().join("kind.yaml");
    std::fs::write(
        &config,
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n",
    )
    .unwrap();
    let created = Command::new(kind_emulator())
        .args(["create", "cluster", "--name", &cluster, "--config"])
        .arg(&config)
        .env("KIND_EMULATOR_IMAGE", support::TEST_IMAGE)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));

    // A stopped node is named, with the command that starts it.
    let worker = format!("{cluster}-worker");
    assert!(docker(&["stop", "-t", "0", &worker]).status.success());
    let out = devcluster(
        dir.path(),
        &["load", support::TEST_IMAGE, "--name", &cluster],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("{worker} (exited)")), "{text}");
    assert!(text.contains(&format!("docker start {worker}")), "{text}");
    assert!(docker(&["start", &worker]).status.success());

    // The emulator's nodes have no containerd: each node fails with the reason,
    // the proof is skipped (nothing was loaded), the exit code is 1.
    let out = devcluster(
        dir.path(),
        &[
            "load",
            support::TEST_IMAGE,
            "--name",
            &cluster,
            "-o",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["cluster"], cluster.as_str());
    assert!(
        report["images"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let rows = report["nodes"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report:#}");
    for row in rows {
        assert_eq!(row["outcome"], "failed", "{row:#}");
        assert_eq!(row["proof"], "skip", "{row:#}");
        let detail = row["detail"].as_str().unwrap();
        assert!(detail.contains("containerd config dump"), "{detail}");
        assert!(detail.contains("executable file not found"), "{detail}");
    }
}

#[tokio::test]
async fn an_interruption_while_the_api_server_does_not_answer_is_heard() {
    let fake = FakeApi::new();
    fake.add_ready_node("dev-control-plane", json!([]));
    // An API server that takes the connection and never answers the node list.
    fake.stall("GET", "/api/v1/nodes");
    let api: Arc<dyn ClusterApi> = Arc::new(Kube::new(fake.client()));
    let mut rows = vec![loaded("dev-control-plane", "app:dev")];
    let deadline = Instant::now() + Duration::from_secs(60);
    let interrupt = Interrupt::after(Duration::from_millis(300));
    let proved = load::prove(&api, &mut rows, deadline, &interrupt);
    let error = tokio::time::timeout(Duration::from_secs(10), proved)
        .await
        .expect("the interruption was not heard")
        .err()
        .unwrap();
    assert_eq!(error.kind, ErrorKind::Interrupted);
    assert!(
        error.message.contains("the images were imported"),
        "{}",
        error.render()
    );
    // Nothing was made, so nothing is left.
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.starts_with("POST /api/v1/namespaces")),
        "{:?}",
        fake.requests()
    );
}
