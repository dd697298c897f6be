//! `verify`'s Kubernetes side against an in-memory API: probe pod shapes, the
//! namespace lifecycle, RBAC errors, old servers, clusters without storage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use devcluster::adapters::kube::cluster::Kube;
use devcluster::adapters::kube::probe::{
    ProbePod, ProbeVolume, VolumeSource, pod_manifest, server_url,
};
use devcluster::adapters::world::World;
use devcluster::core::plan::{Taint, TaintEffect};
use devcluster::operations::context::App;
use devcluster::operations::interrupt::Interrupt;
use devcluster::operations::verify::report::{Layer, Status};
use devcluster::operations::verify::{self, Options, Target};
use serde_json::json;
use support::fake_kube::{FakeApi, PodRun};

fn app() -> App {
    App::new(World::default())
}

fn options(seconds: u64) -> Options {
    Options {
        deadline: Instant::now() + Duration::from_secs(seconds),
        probe_image: Some("registry.example/busybox:1".into()),
        pull_policy: Some("Never".into()),
        storage_class: None,
        host_paths: Vec::new(),
        ..Options::new(Instant::now())
    }
}

/// kind's `standard` StorageClass: local-path-provisioner's, the default.
fn default_storage_class(fake: &FakeApi) {
    fake.put(
        "/apis/storage.k8s.io/v1/storageclasses/standard",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard",
              "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "rancher.io/local-path"}),
    );
}

fn target(fake: &FakeApi) -> Target<'static> {
    Target {
        plan: None,
        docker: None,
        nodes: Vec::new(),
        node_layer_skipped: Some("not a kind cluster".into()),
        api: Some(Arc::new(Kube::new(fake.client()))),
        api_error: None,
    }
}

#[test]
fn probe_pods_are_pinned_tolerant_unprivileged_and_small() {
    let pod = ProbePod {
        name: "mnt0-1".into(),
        node: Some("n2".into()),
        via_scheduler: false,
        tolerations: vec![
            Taint {
                key: "dedicated".into(),
                value: Some("db".into()),
                effect: TaintEffect::NoSchedule,
                implicit: false,
            },
            Taint {
                key: "node-role.kubernetes.io/control-plane".into(),
                value: None,
                effect: TaintEffect::NoSchedule,
                implicit: true,
            },
        ],
        image: "img".into(),
        pull_policy: "IfNotPresent".into(),
        script: "true".into(),
        volumes: vec![ProbeVolume {
            source: VolumeSource::HostPath {
                path: "/data".into(),
                file: false,
            },
            mount_path: "/data".into(),
            sub_path: None,
            read_only: false,
        }],
        run_as_root: false,
        stdin: false,
        host_network: true,
        labels: Default::default(),
    };
    let manifest = pod_manifest("ns", &pod);
    let spec = &manifest["spec"];
    assert_eq!(spec["nodeName"], "n2");
    assert_eq!(spec["hostNetwork"], true);
    let own_network = pod_manifest(
        "ns",
        &ProbePod {
            host_network: false,
            ..pod.clone()
        },
    );
    assert!(own_network["spec"].get("hostNetwork").is_none());
    assert_eq!(spec["restartPolicy"], "Never");
    // A shell as PID 1 ignores SIGTERM: without this, deleting the namespace waits
    // out a 30 s grace period per pod.
    assert_eq!(spec["terminationGracePeriodSeconds"], 0);
    assert_eq!(
        spec["tolerations"],
        json!([
            {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
        ])
    );
    assert_eq!(
        spec["volumes"][0]["hostPath"],
        json!({"path": "/data", "type": "Directory"})
    );
    let container = &spec["containers"][0];
    assert_eq!(container["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["securityContext"]["privileged"], false);
    assert_eq!(
        container["resources"]["requests"],
        json!({"cpu": "5m", "memory": "8Mi"})
    );
    assert_eq!(
        manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "devcluster"
    );

    // File mounts use hostPath type File; scheduler-placed probes use a selector.
    let mut file = pod.clone();
    file.via_scheduler = true;
    file.volumes[0].source = VolumeSource::HostPath {
        path: "/cfg".into(),
        file: true,
    };
    let manifest = pod_manifest("ns", &file);
    assert_eq!(manifest["spec"]["volumes"][0]["hostPath"]["type"], "File");
    assert_eq!(
        manifest["spec"]["nodeSelector"]["kubernetes.io/hostname"],
        "n2"
    );
    assert!(manifest["spec"].get("nodeName").is_none());
}

#[tokio::test]
async fn a_healthy_cluster_passes_and_the_namespace_is_removed() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.add_ready_node(
        "n2",
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    );
    default_storage_class(&fake);
    // Every probe pod succeeds, except that a second RWOP pod is never scheduled.
    let created: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let seen = created.clone();
    fake.on_pod_create(move |pod| {
        seen.lock().unwrap().push(pod.clone());
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        match name {
            "rwop-holder" => Some(PodRun::new("Running", None, "")),
            "rwop-second" => None,
            _ => Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n")),
        }
    });
    let report = verify::verify(&app(), &target(&fake), &options(20), None)
        .await
        .unwrap();
    let statuses: Vec<(String, Option<String>, Status)> = report
        .checks
        .iter()
        .map(|c| (c.name.clone(), c.node.clone(), c.status))
        .collect();
    assert!(
        statuses.contains(&("subPath".into(), Some("n1".into()), Status::Ok)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("subPath".into(), Some("n2".into()), Status::Ok)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("storage".into(), Some("n2".into()), Status::Ok)),
        "{statuses:?}"
    );
    // The second pod stays Pending, but the fake has no scheduler message: a warning.
    assert!(
        statuses
            .iter()
            .any(|(n, _, s)| n == "ReadWriteOncePod" && *s == Status::Warn),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .any(|(n, _, s)| n == "node layer" && *s == Status::Skip)
    );
    // Probe pods on the tainted node carry its toleration; the others carry none.
    let created = created.lock().unwrap().clone();
    let on = |node: &str| {
        created
            .iter()
            .find(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("subpath"))
                    && p["spec"]["nodeName"] == node
            })
            .cloned()
            .unwrap_or_else(|| panic!("no subPath probe on {node}"))
    };
    assert_eq!(
        on("n2")["spec"]["tolerations"],
        json!([{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}])
    );
    assert_eq!(on("n1")["spec"]["tolerations"], json!([]));
    // Nothing of the run is left in the API.
    let pod = fake
        .objects_under("/api/v1/namespaces/devcluster-verify-")
        .into_iter()
        .find(|p| p.ends_with("/pods/subpath-1"))
        .and_then(|p| fake.object(&p));
    assert!(
        pod.is_none(),
        "the namespace's objects must be gone after the run"
    );
    let requests = fake.requests();
    let created = requests
        .iter()
        .find(|r| r.starts_with("POST /api/v1/namespaces?") || r == &"POST /api/v1/namespaces")
        .cloned();
    assert!(created.is_some(), "{requests:?}");
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("DELETE /api/v1/namespaces/devcluster-verify-")),
        "{requests:?}"
    );
    let subpath_pod = requests.iter().any(|r| {
        r.starts_with("POST /api/v1/namespaces/devcluster-verify-") && r.contains("/pods")
    });
    assert!(subpath_pod);
}

#[tokio::test]
async fn a_pod_that_never_finishes_reports_its_events_and_is_cleaned_up() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.on_pod_create(|_| None);
    let started = Instant::now();
    let report = verify::verify(&app(), &target(&fake), &options(3), None)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
    assert_eq!(subpath.status, Status::Fail);
    assert_eq!(subpath.layer, Layer::Pod);
    assert!(subpath.detail.contains("Timeout"), "{}", subpath.detail);
    // No default StorageClass: storage is skipped at once, with the reason.
    let storage = report.checks.iter().find(|c| c.name == "storage").unwrap();
    assert_eq!(storage.status, Status::Skip);
    assert!(storage.detail.contains("no default StorageClass"));
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("DELETE /api/v1/namespaces/devcluster-verify-"))
    );
    assert!(report.failed());
}

#[tokio::test]
async fn rbac_forbidden_names_the_verb_and_resource() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.forbid("POST", "/api/v1/namespaces");
    let error = verify::verify(&app(), &target(&fake), &options(5), None)
        .await
        .unwrap_err();
    let text = error.render();
    assert!(
        text.contains("cannot create namespaces: RBAC forbids it"),
        "{text}"
    );
    assert!(
        text.contains("kubectl auth can-i create namespaces"),
        "{text}"
    );
}

#[tokio::test]
async fn an_old_server_gets_no_newer_checks() {
    let fake = FakeApi::new();
    fake.set_version("1", "20");
    fake.add_ready_node("n1", json!([]));
    fake.put(
        "/apis/storage.k8s.io/v1/storageclasses/local",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local",
              "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"}),
    );
    fake.on_pod_create(|_| Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n")));
    let report = verify::verify(&app(), &target(&fake), &options(10), None)
        .await
        .unwrap();
    let rwop = report
        .checks
        .iter()
        .find(|c| c.name == "ReadWriteOncePod")
        .unwrap();
    assert_eq!(rwop.status, Status::Skip);
    assert!(rwop.detail.contains("Kubernetes 1.20"), "{}", rwop.detail);
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.contains("persistentvolumeclaims/rwop"))
    );
    assert!(!report.failed(), "{:#?}", report.checks);
}

#[tokio::test]
async fn a_provisioner_that_cannot_serve_a_tainted_node_is_named_with_the_scheduler_message() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.add_ready_node(
        "n2",
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    );
    default_storage_class(&fake);
    // local-path-provisioner's helper pod for the tainted node cannot be scheduled.
    let message = "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) didn't match Pod's node affinity/selector.";
    fake.put(
        "/api/v1/namespaces/local-path-storage/pods/helper-pod-create-pvc-1",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "helper-pod-create-pvc-1", "namespace": "local-path-storage"},
               "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}}),
    );
    fake.on_pod_create(|pod| {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        match name {
            "storage-1" | "rwop-holder" | "rwop-second" => None,
            _ => Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n")),
        }
    });
    let report = verify::verify(&app(), &target(&fake), &options(4), None)
        .await
        .unwrap();
    let tainted = report
        .checks
        .iter()
        .find(|c| c.name == "storage" && c.node.as_deref() == Some("n2"))
        .unwrap();
    assert_eq!(tainted.status, Status::Fail);
    assert!(
        tainted.detail.contains("untolerated taint {dedicated: db}"),
        "{}",
        tainted.detail
    );
    assert!(
        tainted
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("local-path-config"),
        "{:?}",
        tainted.hint
    );
    let untainted = report
        .checks
        .iter()
        .find(|c| c.name == "storage" && c.node.as_deref() == Some("n1"))
        .unwrap();
    assert_eq!(untainted.status, Status::Ok);
}

#[tokio::test]
async fn a_subpath_runtime_failure_is_blamed_on_the_host_not_the_manifest() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.on_pod_create(|pod| {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        if name.starts_with("subpath") {
            // What the kubelet reports when the runtime cannot bind a single file.
            let mut run = PodRun::new("Pending", None, "");
            run.events.push((
                "Failed".into(),
                "Error: failed to create containerd task: failed to mount volume-subpaths/v0/probe/0: file exists: CreateContainerError".into(),
            ));
            return Some(run);
        }
        Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n"))
    });
    let report = verify::verify(&app(), &target(&fake), &options(5), None)
        .await
        .unwrap();
    let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
    assert_eq!(subpath.status, Status::Fail);
    assert!(subpath.detail.contains("file exists"), "{}", subpath.detail);
    assert!(
        subpath
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("not the manifest"),
        "{:?}",
        subpath.hint
    );
}

#[tokio::test]
async fn rbac_forbidden_inside_the_namespace_names_it_and_the_namespace_is_still_removed() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    // The namespace may be created, nothing inside it.
    fake.forbid("POST", "/api/v1/namespaces/devcluster-verify-");
    let report = verify::verify(&app(), &target(&fake), &options(5), None)
        .await
        .unwrap();
    assert!(report.failed());
    let denied = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .find(|c| c.detail.contains("RBAC forbids it"))
        .unwrap_or_else(|| panic!("no RBAC failure in {:#?}", report.checks));
    assert!(
        denied.detail.contains(" in namespace devcluster-verify-"),
        "{}",
        denied.detail
    );
    let hint = denied.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("kubectl auth can-i create") && hint.contains(" -n devcluster-verify-"),
        "{hint}"
    );
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("DELETE /api/v1/namespaces/devcluster-verify-"))
    );
}

#[tokio::test]
async fn an_unreachable_api_server_is_named_by_its_url() {
    let service = tower::service_fn(|_request: http::Request<kube::client::Body>| async {
        Err::<http::Response<kube::client::Body>, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ))
    });
    let client = kube::Client::new(service, "default");
    let api = Arc::new(Kube::new(client).with_server(Some("https://127.0.0.1:39999".into())));
    let error = api.nodes().await.unwrap_err();
    let text = error.render();
    assert!(
        text.contains("cannot reach the API server at https://127.0.0.1:39999 (to list nodes)"),
        "{text}"
    );
    assert!(text.contains("connection refused"), "{text}");
}

#[test]
fn the_server_url_follows_the_chosen_context() {
    let kubeconfig = r"
apiVersion: v1
kind: Config
current-context: kind-dev
clusters:
- name: kind-dev
  cluster:
    server: https://127.0.0.1:40001
- name: k3s
  cluster:
    server: https://192.0.2.10:6443
contexts:
- name: kind-dev
  context:
    cluster: kind-dev
    user: kind-dev
- name: k3s
  context:
    cluster: k3s
    user: k3s
users:
- name: kind-dev
  user: {}
- name: k3s
  user: {}
";
    assert_eq!(
        server_url(kubeconfig, None).as_deref(),
        Some("https://127.0.0.1:40001")
    );
    assert_eq!(
        server_url(kubeconfig, Some("k3s")).as_deref(),
        Some("https://192.0.2.10:6443")
    );
    assert_eq!(server_url(kubeconfig, Some("missing")), None);
    assert_eq!(server_url("not: [a kubeconfig", None), None);
}

/// kind v0.31/v0.32 node images' helper pod template: no tolerations at all
/// (local-path-provisioner v0.0.32+; kind#4100).
const KIND_HELPER_TEMPLATE: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: helper-pod\nspec:\n  priorityClassName: system-node-critical\n  containers:\n  - name: helper-pod\n    image: docker.io/kindest/local-path-helper:v20250521\n";

/// Every probe succeeds; the second ReadWriteOncePod pod is never scheduled.
fn healthy_pods(fake: &FakeApi) {
    fake.on_pod_create(|pod| match pod["metadata"]["name"].as_str().unwrap_or("") {
        "rwop-holder" => Some(PodRun::new("Running", None, "")),
        "rwop-second" => None,
        _ => Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n")),
    });
}

#[tokio::test]
async fn a_helper_pod_the_kubelet_rejects_on_a_no_execute_node_is_quoted() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.add_ready_node(
        "n2",
        json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]),
    );
    // NoSchedule does not stop a helper bound with nodeName.
    fake.add_ready_node(
        "n3",
        json!([{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]),
    );
    fake.install_local_path(KIND_HELPER_TEMPLATE);
    healthy_pods(&fake);
    // The claim on n2 never binds: the probe ends when the kubelet's rejection
    // shows, long before the deadline (the RWOP pair waits for it, so it is bounded).
    let (app, target, options) = (app(), target(&fake), options(30));
    let started = Instant::now();
    let report = verify::verify(&app, &target, &options, None).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the storage probe waited for the deadline: {:?}",
        started.elapsed()
    );
    let storage = |node: &str| {
        report
            .checks
            .iter()
            .find(|c| c.name == "storage" && c.node.as_deref() == Some(node))
            .unwrap_or_else(|| panic!("no storage check on {node}: {:#?}", report.checks))
    };
    let tainted = storage("n2");
    assert_eq!(tainted.status, Status::Fail);
    assert!(
        tainted
            .detail
            .contains("TaintToleration: Predicate TaintToleration failed")
            && tainted.detail.contains("ProvisioningFailed")
            && tainted.detail.contains("not found"),
        "{}",
        tainted.detail
    );
    assert!(
        tainted.hint.as_deref().unwrap_or("").contains("NoExecute"),
        "{:?}",
        tainted.hint
    );
    assert_eq!(storage("n1").status, Status::Ok, "{:?}", storage("n1"));
    assert_eq!(storage("n3").status, Status::Ok, "{:?}", storage("n3"));
}

#[tokio::test]
async fn pods_created_right_after_the_namespace_wait_for_its_service_account() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    healthy_pods(&fake);
    let report = verify::verify(&app(), &target(&fake), &options(10), None)
        .await
        .unwrap();
    let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
    assert_eq!(subpath.status, Status::Ok, "{subpath:?}");
    assert!(
        !report.checks.iter().any(|c| c.detail.contains("forbid")),
        "{:#?}",
        report.checks
    );
    // The ServiceAccount was made sure of before the first pod.
    let requests = fake.requests();
    let account = requests
        .iter()
        .position(|r| {
            r.starts_with("POST /api/v1/namespaces/devcluster-verify-")
                && r.contains("/serviceaccounts")
        })
        .unwrap_or_else(|| panic!("{requests:?}"));
    let first_pod = requests
        .iter()
        .position(|r| r.starts_with("POST ") && r.contains("/pods"))
        .unwrap_or_else(|| panic!("{requests:?}"));
    assert!(account < first_pod, "{requests:?}");
}

/// The ServiceAccount controller can be slow on a busy cluster; verify makes the
/// namespace's `default` ServiceAccount itself instead of waiting for it.
#[tokio::test]
async fn pods_do_not_wait_for_the_service_account_controller() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.delay_service_accounts(Duration::from_secs(600));
    healthy_pods(&fake);
    let started = Instant::now();
    let report = verify::verify(&app(), &target(&fake), &options(20), None)
        .await
        .unwrap();
    let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
    assert_eq!(subpath.status, Status::Ok, "{subpath:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// A user who may not create ServiceAccounts waits for the controller's, as before.
#[tokio::test]
async fn without_the_right_to_make_it_pods_wait_for_the_controllers_service_account() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.forbid_resource("POST", "serviceaccounts");
    healthy_pods(&fake);
    let report = verify::verify(&app(), &target(&fake), &options(10), None)
        .await
        .unwrap();
    let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
    assert_eq!(subpath.status, Status::Ok, "{subpath:?}");
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET ") && r.contains("/serviceaccounts/default")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn host_path_probes_pass_where_pod_security_enforces_baseline_by_default() {
    let fake = FakeApi::new();
    fake.enforce_pod_security_by_default("baseline");
    // A node on this machine, so the host path is probed from a pod.
    fake.put(
        "/api/v1/nodes/local",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "local"},
               "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
               "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}),
    );
    let namespaces = fake.clone();
    let labels: std::sync::Arc<std::sync::Mutex<Option<serde_json::Value>>> = Default::default();
    let seen = labels.clone();
    fake.on_pod_create(move |pod| {
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("");
        *seen.lock().unwrap() = namespaces
            .object(&format!("/api/v1/namespaces/{namespace}"))
            .map(|n| n["metadata"]["labels"].clone());
        Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n"))
    });
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(10);
    options.host_paths = vec![dir.path().to_path_buf()];
    let report = verify::verify(&app(), &target(&fake), &options, None)
        .await
        .unwrap();
    let name = format!("mount {}", dir.path().display());
    let pod = report
        .checks
        .iter()
        .find(|c| c.name == name && c.layer == Layer::Pod)
        .unwrap_or_else(|| panic!("{:#?}", report.checks));
    // The fake pod writes no reply, so the host-side judgement fails; what matters
    // is that admission let the hostPath pod in.
    assert!(!pod.detail.contains("PodSecurity"), "{pod:?}");
    let labels = labels.lock().unwrap().clone().unwrap();
    for mode in ["enforce", "audit", "warn"] {
        assert_eq!(
            labels[format!("pod-security.kubernetes.io/{mode}")],
            "privileged",
            "{labels}"
        );
    }
}

#[test]
fn forbidden_answers_are_told_apart_by_their_message() {
    use devcluster::adapters::kube::Refusal;
    assert_eq!(
        Refusal::of(
            "pods is forbidden: User \"dev\" cannot create resource \"pods\" in API group \"\" in the namespace \"x\""
        ),
        Refusal::Rbac
    );
    assert_eq!(
        Refusal::of(
            "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": hostPath volumes (volume \"v0\")"
        ),
        Refusal::PodSecurity
    );
    assert_eq!(
        Refusal::of(
            "admission webhook \"validate.kyverno.svc-fail\" denied the request: policy disallow-host-path"
        ),
        Refusal::Webhook
    );
    assert_eq!(
        Refusal::of(
            "pods \"p\" is forbidden: error looking up service account ns/default: serviceaccount \"default\" not found"
        ),
        Refusal::ServiceAccountMissing
    );
    assert_eq!(Refusal::of("exceeded quota: q"), Refusal::Other);
}

/// What the kubelet shows for an image it cannot pull (`pkg/kubelet/images/
/// image_manager.go`): ErrImagePull, then ImagePullBackOff during the back-off,
/// then ErrImagePull again when the retry fails. Compressed to milliseconds.
fn unpullable(fake: &FakeApi, prefix: &'static str) {
    let kubelet = fake.clone();
    fake.on_pod_create(move |pod| {
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        if !name.starts_with(prefix) {
            return Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n"));
        }
        let kubelet = kubelet.clone();
        std::thread::spawn(move || {
            let message = "failed to pull and unpack image \"registry.example/busybox:1\": not found";
            std::thread::sleep(Duration::from_millis(300));
            kubelet.finish_pod(&namespace, &name, PodRun::waiting("ImagePullBackOff", &format!("Back-off pulling image \"registry.example/busybox:1\": ErrImagePull: {message}")));
            std::thread::sleep(Duration::from_millis(600));
            kubelet.finish_pod(&namespace, &name, PodRun::waiting("ErrImagePull", message));
        });
        Some(PodRun::waiting("ErrImagePull", "failed to pull and unpack image \"registry.example/busybox:1\": not found"))
    });
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_ends_the_probe_with_the_kubelets_message() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    unpullable(&fake, "subpath");
    let started = Instant::now();
    let (app, target, options) = (app(), target(&fake), options(60));
    let run = verify::verify(&app, &target, &options, None);
    let report = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the probe waited for the deadline instead of giving up")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
    assert_eq!(subpath.status, Status::Fail);
    assert!(
        subpath.detail.contains("ErrImagePull") && subpath.detail.contains("not found"),
        "{}",
        subpath.detail
    );
}

#[tokio::test]
async fn a_host_path_of_the_wrong_type_and_a_runtime_error_end_the_probe_at_once() {
    let fake = FakeApi::new();
    fake.put(
        "/api/v1/nodes/local",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "local"},
               "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
               "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}),
    );
    fake.on_pod_create(|pod| {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        if name.starts_with("hp") {
            // The kubelet's volume manager (`volume/hostpath/host_path.go`, checkType).
            let mut run = PodRun::new("Pending", None, "");
            run.events.push(("FailedMount".into(), "MountVolume.SetUp failed for volume \"v0\" : hostPath type check failed: /srv/data is not a directory".into()));
            return Some(run);
        }
        if name.starts_with("subpath") {
            return Some(PodRun::waiting("CreateContainerError", "failed to create containerd container: mount source path does not exist"));
        }
        Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n"))
    });
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(60);
    options.host_paths = vec![dir.path().to_path_buf()];
    let (app, target) = (app(), target(&fake));
    let run = verify::verify(&app, &target, &options, None);
    let report = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the probes waited for the deadline instead of giving up")
        .unwrap();
    let name = format!("mount {}", dir.path().display());
    let mount = report
        .checks
        .iter()
        .find(|c| c.name == name && c.layer == Layer::Pod)
        .unwrap();
    assert_eq!(mount.status, Status::Fail);
    assert!(
        mount.detail.contains("hostPath type check failed"),
        "{}",
        mount.detail
    );
    let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
    assert!(
        subpath.detail.contains("CreateContainerError"),
        "{}",
        subpath.detail
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "sentinel removed"
    );
}

#[tokio::test]
async fn the_deadline_leaves_no_sentinel_and_no_namespace() {
    let fake = FakeApi::new();
    fake.put(
        "/api/v1/nodes/local",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "local"},
               "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
               "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}),
    );
    // Creating a pod never returns (a hanging admission webhook).
    fake.stall("POST", "/api/v1/namespaces/devcluster-verify-");
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(2);
    options.host_paths = vec![dir.path().to_path_buf()];
    let (app, target) = (app(), target(&fake));
    let run = verify::verify(&app, &target, &options, None);
    let report = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("verify outlived its deadline")
        .unwrap();
    assert!(report.failed());
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.detail.contains("did not finish by the deadline")),
        "{:#?}",
        report.checks
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "sentinel left behind"
    );
    assert!(
        fake.objects_under("/api/v1/namespaces/devcluster-verify-")
            .is_empty(),
        "the probe namespace is left: {:?}",
        fake.objects_under("/api/v1/namespaces/devcluster-verify-")
    );
}

#[tokio::test]
async fn an_interruption_removes_the_sentinel_and_the_namespace() {
    let fake = FakeApi::new();
    fake.put(
        "/api/v1/nodes/local",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "local"},
               "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
               "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}),
    );
    fake.on_pod_create(|_| None);
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(60);
    options.host_paths = vec![dir.path().to_path_buf()];
    // Interrupted once, a second after the start; never again.
    options.interrupt = Interrupt::after(Duration::from_secs(1));
    let (app, target) = (app(), target(&fake));
    let run = verify::verify(&app, &target, &options, None);
    let error = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("the interruption was not heard")
        .unwrap_err();
    assert!(error.render().contains("interrupted"), "{}", error.render());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "sentinel left behind"
    );
    assert!(
        fake.objects_under("/api/v1/namespaces/devcluster-verify-")
            .is_empty()
    );
}

#[test]
fn up_and_verify_take_the_probe_and_echo_image_flags() {
    let help = |command: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_devcluster"))
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let up = help("up");
    for flag in ["--probe-image", "--image-pull-policy", "--echo-image"] {
        assert!(up.contains(flag), "`up` lacks {flag}:\n{up}");
    }
    assert!(help("verify").contains("--echo-image"));
}

/// Plans `body` (after a one-node profile header) with the real binary.
fn plan_of(body: &str) -> devcluster::core::plan::ClusterPlan {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        format!("apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  controlPlanes: 1\n  workers: 0\n{body}"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_devcluster"))
        .args([
            "plan",
            "-p",
            file.to_str().unwrap(),
            "--name",
            "np",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The host port Docker publishes for the node, answered as kube-proxy would on
/// the node port behind it: a Service of type NodePort holding that node port must
/// select a running echo pod, whose token is served. Without one, nothing listens
/// on the node port and the connection is reset.
fn kube_proxy(fake: &FakeApi, node_port: u16) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = listener.local_addr().unwrap().port();
    let fake = fake.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::{Read, Write};
            let mut stream = stream;
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer);
            let served = fake
                .objects_under("/api/v1/namespaces/")
                .into_iter()
                .filter(|p| p.contains("/services/"))
                .filter_map(|p| fake.object(&p))
                .find(|s| {
                    s["spec"]["type"] == "NodePort"
                        && s["spec"]["ports"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| p["nodePort"] == node_port)
                })
                .and_then(|service| {
                    let selector = service["spec"]["selector"]["devcluster.dev/probe"]
                        .as_str()?
                        .to_string();
                    fake.objects_under("/api/v1/namespaces/")
                        .into_iter()
                        .filter(|p| p.contains("/pods/"))
                        .filter_map(|p| fake.object(&p))
                        .find(|pod| {
                            pod["metadata"]["labels"]["devcluster.dev/probe"] == selector.as_str()
                        })
                })
                .map(|pod| {
                    pod["spec"]["containers"][0]["command"][2]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                });
            match served {
                // The echo script writes the token into its index page.
                Some(script) => {
                    let token = script.split('\'').nth(1).unwrap_or("").to_string();
                    let _ = write!(stream, "HTTP/1.0 200 OK\r\n\r\n{token}\n");
                }
                None => drop(stream),
            }
        }
    });
    host_port
}

fn observed_node(
    name: &str,
    container_port: u16,
    host_port: u16,
) -> devcluster::adapters::docker::ObservedNode {
    let published = devcluster::adapters::docker::ObservedPort {
        container_port,
        protocol: "tcp".into(),
        host_ip: "127.0.0.1".into(),
        host_port,
    };
    devcluster::adapters::docker::ObservedNode {
        name: name.into(),
        cluster: "np".into(),
        role: "control-plane".into(),
        state: "running".into(),
        image: String::new(),
        labels: Default::default(),
        mounts: Vec::new(),
        ports: vec![published.clone()],
        // What kind asked for, and Docker reports as published.
        requested_ports: vec![published],
    }
}

#[tokio::test]
async fn a_node_port_mapping_is_served_by_a_node_port_service_of_the_echo_backend() {
    let fake = FakeApi::new();
    let probe_fake = fake.clone();
    let host_port = kube_proxy(&probe_fake, 31000);
    let plan = plan_of(&format!(
        "ports:\n  - containerPort: 31000\n    hostPort: {host_port}\n  - containerPort: 5432\n    hostPort: {}\n",
        host_port + 1
    ));
    fake.add_ready_node("np-control-plane", json!([]));
    let images: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let seen = images.clone();
    fake.on_pod_create(move |pod| {
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        let image = pod["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_string();
        seen.lock().unwrap().push((name.clone(), image));
        match name.as_str() {
            "echo" | "rwop-holder" => Some(PodRun::new("Running", None, "")),
            "rwop-second" => None,
            _ => Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n")),
        }
    });
    let mut node = observed_node("np-control-plane", 31000, host_port);
    node.ports.push(devcluster::adapters::docker::ObservedPort {
        container_port: 5432,
        protocol: "tcp".into(),
        host_ip: "127.0.0.1".into(),
        host_port: host_port + 1,
    });
    let target = Target {
        plan: Some(&plan),
        docker: None,
        nodes: vec![node],
        node_layer_skipped: None,
        api: Some(Arc::new(Kube::new(fake.client()))),
        api_error: None,
    };
    let mut options = options(6);
    options.echo_image = Some("mirror.example/echo:2".into());
    let report = verify::verify(&app(), &target, &options, None)
        .await
        .unwrap();
    let row = report
        .checks
        .iter()
        .find(|c| c.name == "nodeport 31000")
        .unwrap_or_else(|| panic!("{:#?}", report.checks));
    assert_eq!(row.status, Status::Ok, "{row:?}");
    // The echo backend runs the image chosen for it; every probe the probe image.
    let images = images.lock().unwrap().clone();
    assert!(images.iter().any(|(name, _)| name == "echo"), "{images:?}");
    for (name, image) in &images {
        let expected = if name == "echo" {
            "mirror.example/echo:2"
        } else {
            "registry.example/busybox:1"
        };
        assert_eq!(image, expected, "{name}");
    }
    assert_eq!(row.node.as_deref(), Some("np-control-plane"));
    let other = report
        .checks
        .iter()
        .find(|c| c.name == "port 5432/TCP")
        .unwrap();
    assert_eq!(other.status, Status::Ok);
    assert!(
        other.detail.contains("published; not probed over HTTP"),
        "{}",
        other.detail
    );
    assert!(
        !report
            .checks
            .iter()
            .any(|c| c.hint.as_deref().unwrap_or("").contains("ingress"))
    );
}

#[tokio::test]
async fn a_node_port_another_service_holds_is_skipped_with_the_reason() {
    let fake = FakeApi::new();
    let plan = plan_of("ports:\n  - containerPort: 31000\n    hostPort: 39001\n");
    fake.add_ready_node("np-control-plane", json!([]));
    fake.put(
        "/api/v1/namespaces/shop/services/web",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}}),
    );
    healthy_pods(&fake);
    let target = Target {
        plan: Some(&plan),
        docker: None,
        nodes: vec![observed_node("np-control-plane", 31000, 39001)],
        node_layer_skipped: None,
        api: Some(Arc::new(Kube::new(fake.client()))),
        api_error: None,
    };
    let report = verify::verify(&app(), &target, &options(4), None)
        .await
        .unwrap();
    let row = report
        .checks
        .iter()
        .find(|c| c.name == "nodeport 31000")
        .unwrap();
    assert_eq!(row.status, Status::Skip);
    assert!(
        row.detail.contains("taken by Service shop/web"),
        "{}",
        row.detail
    );
}

#[tokio::test]
async fn an_echo_image_that_cannot_be_pulled_fails_the_node_port_row_at_once_naming_the_flag() {
    let fake = FakeApi::new();
    let plan = plan_of("ports:\n  - containerPort: 31000\n    hostPort: 39002\n");
    fake.add_ready_node("np-control-plane", json!([]));
    unpullable(&fake, "echo");
    let target = Target {
        plan: Some(&plan),
        docker: None,
        nodes: vec![observed_node("np-control-plane", 31000, 39002)],
        node_layer_skipped: None,
        api: Some(Arc::new(Kube::new(fake.client()))),
        api_error: None,
    };
    let (app, options) = (app(), options(60));
    let run = verify::verify(&app, &target, &options, None);
    let report = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the echo backend was awaited until the deadline")
        .unwrap();
    let row = report
        .checks
        .iter()
        .find(|c| c.name == "nodeport 31000")
        .unwrap();
    assert_eq!(row.status, Status::Fail);
    assert!(
        row.detail.contains("the echo backend did not start")
            && row.detail.contains("ErrImagePull"),
        "{}",
        row.detail
    );
    assert!(
        row.hint.as_deref().unwrap_or("").contains("--echo-image"),
        "{:?}",
        row.hint
    );
}

#[tokio::test]
async fn a_second_interruption_during_the_cleanup_names_what_is_left() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.on_pod_create(|_| None);
    // Deleting the namespace hangs, so the cleanup is still running when the
    // second interruption comes.
    fake.stall("DELETE", "/api/v1/namespaces/devcluster-verify-");
    let mut options = options(60);
    // The first interruption a second after the start, the second 300 ms after the
    // cleanup begins to wait for it.
    options.interrupt = Interrupt::from_fn(|n| async move {
        let wait = if n == 1 { 1000 } else { 300 };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        "an interruption (test)"
    });
    let (app, target) = (app(), target(&fake));
    let run = verify::verify(&app, &target, &options, None);
    let error = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("the second interruption did not abort the cleanup")
        .unwrap_err();
    let text = error.render();
    assert!(text.contains("interrupted during its cleanup"), "{text}");
    assert!(
        text.contains("namespace devcluster-verify-") && text.contains("kubectl delete namespace"),
        "{text}"
    );
}

#[tokio::test]
async fn a_webhook_denial_is_named_as_such_not_as_rbac() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    // A policy engine's webhook refusing the probe pods, with the default code.
    fake.deny_by_webhook(
        "POST",
        "/api/v1/namespaces/devcluster-verify-",
        400,
        "validate.kyverno.svc-fail",
        "policy disallow-latest-tag: image tag required",
    );
    let report = verify::verify(&app(), &target(&fake), &options(5), None)
        .await
        .unwrap();
    let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
    assert_eq!(subpath.status, Status::Fail);
    assert!(
        subpath.detail.contains("an admission webhook rejects it")
            && subpath.detail.contains("validate.kyverno.svc-fail"),
        "{}",
        subpath.detail
    );
    assert!(!subpath.detail.contains("RBAC"), "{}", subpath.detail);
}

#[tokio::test]
async fn probe_pods_are_watched_not_polled_one_by_one() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.add_ready_node("n2", json!([]));
    healthy_pods(&fake);
    let report = verify::verify(&app(), &target(&fake), &options(10), None)
        .await
        .unwrap();
    assert!(!report.failed(), "{:#?}", report.checks);
    let requests = fake.requests();
    let in_namespace = |r: &&String| r.contains("/namespaces/devcluster-verify-");
    // One watch of the namespace's pods and one of its events serve every probe.
    for resource in ["pods", "events"] {
        assert!(
            requests
                .iter()
                .filter(in_namespace)
                .any(|r| r.starts_with("GET ")
                    && r.contains(&format!("/{resource}?"))
                    && r.contains("watch=true")),
            "no watch of {resource}: {requests:#?}"
        );
    }
    // No probe reads its pod by name, in a loop or otherwise (logs aside).
    let polled: Vec<&String> = requests
        .iter()
        .filter(in_namespace)
        .filter(|r| r.starts_with("GET ") && r.contains("/pods/") && !r.contains("/log"))
        .collect();
    assert!(polled.is_empty(), "{polled:#?}");
}

#[tokio::test]
async fn a_pod_the_scheduler_cannot_place_ends_its_probe_at_once_with_the_schedulers_words() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.on_pod_create(|pod| match pod["metadata"]["name"].as_str().unwrap_or("") {
        name if name.starts_with("subpath") => Some(PodRun::unschedulable(
            "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
        )),
        _ => Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n")),
    });
    let (app, target, options) = (app(), target(&fake), options(60));
    let started = Instant::now();
    let report = tokio::time::timeout(
        Duration::from_secs(20),
        verify::verify(&app, &target, &options, None),
    )
    .await
    .expect("the probe waited for the deadline instead of the scheduler's verdict")
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
    assert_eq!(subpath.status, Status::Fail);
    assert!(
        subpath.detail.contains("Unschedulable") && subpath.detail.contains("Insufficient memory"),
        "{}",
        subpath.detail
    );
}

#[tokio::test]
async fn the_second_read_write_once_pod_pod_is_judged_by_the_schedulers_verdict_not_a_fixed_wait() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    fake.schedule_read_write_once_pod();
    default_storage_class(&fake);
    healthy_pods(&fake);
    let started = Instant::now();
    let report = verify::verify(&app(), &target(&fake), &options(30), None)
        .await
        .unwrap();
    let rwop = report
        .checks
        .iter()
        .find(|c| c.name == "ReadWriteOncePod")
        .unwrap();
    assert_eq!(rwop.status, Status::Ok, "{rwop:?}");
    assert!(
        rwop.detail.contains("ReadWriteOncePod access mode"),
        "{rwop:?}"
    );
    // The scheduler's verdict came at once; a fixed look would take 10 s.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn watches_the_server_ends_or_forgets_are_resumed_and_no_change_is_missed() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    // Every watch ends after 200 ms, and the history is compacted while the
    // probe runs: the runner must re-open from the last version, then list again.
    fake.end_watches_after(Duration::from_millis(200));
    let kubelet = fake.clone();
    fake.on_pod_create(move |pod| {
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        let namespace = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !name.starts_with("subpath") {
            return Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n"));
        }
        let kubelet = kubelet.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            kubelet.compact_history();
            std::thread::sleep(Duration::from_millis(800));
            kubelet.finish_pod(
                &namespace,
                &name,
                PodRun::new("Succeeded", Some(0), "devcluster: ok\n"),
            );
        });
        None
    });
    let report = verify::verify(&app(), &target(&fake), &options(20), None)
        .await
        .unwrap();
    let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
    assert_eq!(subpath.status, Status::Ok, "{subpath:?}");
    let requests = fake.requests();
    let pod_watches = requests
        .iter()
        .filter(|r| {
            r.contains("/namespaces/devcluster-verify-")
                && r.contains("/pods?")
                && r.contains("watch=true")
        })
        .count();
    assert!(pod_watches >= 3, "{requests:#?}");
}

#[tokio::test]
async fn the_fake_serves_watches_as_the_api_server_does() {
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
    let fake = FakeApi::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "w");
    let map = |name: &str, value: &str| -> ConfigMap {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "w"}, "data": {"k": value}}))
        .unwrap()
    };
    api.create(&PostParams::default(), &map("a", "1"))
        .await
        .unwrap();
    let listed = api.list(&ListParams::default()).await.unwrap();
    let version = listed.metadata.resource_version.clone().unwrap();
    // From "0": a synthetic ADDED for what is there.
    let params = WatchParams::default().timeout(1);
    let mut from_any = api.watch(&params, "0").await.unwrap().boxed();
    match from_any.next().await {
        Some(Ok(WatchEvent::Added(cm))) => assert_eq!(cm.metadata.name.as_deref(), Some("a")),
        other => panic!("{other:?}"),
    }
    // From the list's version: only what changed after it, each with a newer version.
    let mut from_list = api.watch(&params, &version).await.unwrap().boxed();
    api.replace("a", &PostParams::default(), &map("a", "2"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &map("b", "1"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(Ok(event)) = from_list.next().await {
        match event {
            WatchEvent::Modified(cm) | WatchEvent::Added(cm) => {
                let at: u64 = cm
                    .metadata
                    .resource_version
                    .clone()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(at > version.parse::<u64>().unwrap());
                seen.push(cm.metadata.name.unwrap());
            }
            // Bookmarks come just before the server ends the watch.
            WatchEvent::Bookmark(bookmark) => {
                assert!(bookmark.metadata.resource_version.parse::<u64>().unwrap() >= 3);
                seen.push("bookmark".into());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, ["a", "b", "bookmark"]);
    // A version older than the server keeps: one ERROR event, 410 Gone.
    fake.compact_history();
    let mut too_old = api.watch(&params, &version).await.unwrap().boxed();
    match too_old.next().await {
        Some(Ok(WatchEvent::Error(status))) => assert_eq!(status.code, 410),
        other => panic!("{other:?}"),
    }
    assert!(too_old.next().await.is_none());
}

#[tokio::test]
async fn a_namespace_the_api_server_will_not_delete_is_a_warning_naming_the_command() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    healthy_pods(&fake);
    fake.forbid("DELETE", "/api/v1/namespaces/devcluster-verify-");
    let report = verify::verify(&app(), &target(&fake), &options(10), None)
        .await
        .unwrap();
    let cleanup = report.checks.iter().find(|c| c.name == "cleanup").unwrap();
    assert_eq!(cleanup.status, Status::Warn);
    assert!(
        cleanup
            .detail
            .contains("probe namespace devcluster-verify-"),
        "{cleanup:?}"
    );
    assert!(
        cleanup
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("kubectl delete namespace devcluster-verify-"),
        "{cleanup:?}"
    );
    assert!(!report.failed(), "{:#?}", report.checks);
}

#[tokio::test]
async fn a_probe_namespace_an_earlier_run_could_not_remove_is_reported() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    healthy_pods(&fake);
    // Its deletion was accepted long ago; a finalizer keeps it Terminating.
    fake.put(
        "/api/v1/namespaces/devcluster-verify-0ld",
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "devcluster-verify-0ld", "labels": {"app.kubernetes.io/managed-by": "devcluster"},
                            "deletionTimestamp": "2020-01-01T00:00:00Z", "finalizers": ["example.com/hold"]},
               "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Terminating"}}),
    );
    // A namespace of this run that stays Terminating is not reported (it was just deleted).
    fake.keep_namespaces_terminating();
    let report = verify::verify(&app(), &target(&fake), &options(10), None)
        .await
        .unwrap();
    let rows: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.name == "cleanup")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].status, Status::Warn);
    assert!(
        rows[0].detail.contains("devcluster-verify-0ld")
            && rows[0].detail.contains("still terminating"),
        "{:?}",
        rows[0]
    );
    assert!(
        rows[0]
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("kubectl delete namespace devcluster-verify-0ld"),
        "{:?}",
        rows[0]
    );
}

#[tokio::test]
async fn claims_are_made_while_the_namespace_waits_for_its_service_account() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    default_storage_class(&fake);
    healthy_pods(&fake);
    // A user who may not make the ServiceAccount, so the namespace waits for the
    // controller's.
    fake.forbid_resource("POST", "serviceaccounts");
    let report = verify::verify(&app(), &target(&fake), &options(20), None)
        .await
        .unwrap();
    let storage = report.checks.iter().find(|c| c.name == "storage").unwrap();
    assert_eq!(storage.status, Status::Ok, "{storage:?}");
    // Only pods need the ServiceAccount: the claim is made before it appears.
    let requests = fake.requests();
    let claim = requests
        .iter()
        .position(|r| r.starts_with("POST ") && r.contains("/persistentvolumeclaims"))
        .unwrap();
    let last_account_poll = requests
        .iter()
        .rposition(|r| r.starts_with("GET ") && r.contains("/serviceaccounts/default"))
        .unwrap();
    assert!(claim < last_account_poll, "{requests:#?}");
}

#[tokio::test]
async fn an_interruption_while_the_failure_bundle_is_written_stops_it_and_still_cleans_up() {
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    // Every probe pod fails at once, so the run fails and a bundle is written.
    fake.on_pod_create(|_| Some(PodRun::new("Failed", Some(1), "devcluster: broken\n")));
    let dir = tempfile::tempdir().unwrap();
    // A kind whose `export logs` never returns, as on a node that does not answer
    // the `docker exec` kind runs in it (kind `pkg/cluster/internal/providers/
    // docker/provider.go`, `CollectLogs`).
    let kind = dir.path().join("kind");
    std::fs::write(&kind, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&kind, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut world = World::default();
    world
        .env
        .insert("DEVCLUSTER_KIND".into(), kind.display().to_string());
    let mut target = target(&fake);
    target.nodes = vec![devcluster::adapters::docker::ObservedNode {
        name: "np-control-plane".into(),
        cluster: "np".into(),
        role: "control-plane".into(),
        state: "running".into(),
        image: String::new(),
        labels: Default::default(),
        mounts: Vec::new(),
        ports: Vec::new(),
        requested_ports: Vec::new(),
    }];
    let mut options = options(20);
    // One interruption, a second after each wait for it: the checks end before
    // it, so it comes while the bundle waits on kind.
    options.interrupt = Interrupt::after(Duration::from_secs(1));
    let app = App::new(world);
    let bundle = dir.path().join("bundle");
    let run = verify::verify(&app, &target, &options, Some(&bundle));
    let error = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the interruption was not heard while the bundle was written")
        .unwrap_err();
    let text = error.render();
    assert!(
        text.contains("probe namespace were removed"),
        "the cleanup did not run: {text}"
    );
    assert!(bundle.join("report.json").is_file());
    assert!(
        fake.objects_under("/api/v1/namespaces/devcluster-verify-")
            .is_empty(),
        "the probe namespace is left"
    );
}

#[tokio::test]
async fn a_kind_export_logs_cut_off_by_its_limit_leaves_none_of_its_processes_behind() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // A kind whose `docker exec` into a node never returns: kind runs one per
    // node and log, as child processes (kind `pkg/exec/local.go`).
    let child_pid = dir.path().join("child.pid");
    let kind = dir.path().join("kind");
    std::fs::write(
        &kind,
        format!(
            "#!/bin/sh\nsleep 600 &\necho $! > {}\nwait\n",
            child_pid.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&kind, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut world = World::default();
    world
        .env
        .insert("DEVCLUSTER_KIND".into(), kind.display().to_string());
    let app = App::new(world);
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    verify::bundle::node_logs(
        app.cluster_provider(),
        "np",
        &bundle,
        Duration::from_secs(1),
        &Interrupt::never(),
    )
    .await
    .unwrap();
    let recorded = std::fs::read_to_string(bundle.join(verify::bundle::NODE_LOGS_ERROR)).unwrap();
    assert!(recorded.contains("did not finish within 1s"), "{recorded}");
    let pid = std::fs::read_to_string(&child_pid).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let ended = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    };
    let started = Instant::now();
    while !ended(&stat) && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !ended(&stat) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        panic!("kind's child {} outlived the export", pid.trim());
    }
}

/// The node authorizer's words when it refuses the kubelet a pod's claim because
/// its graph has not yet seen the pod bound to the node
/// (`plugin/pkg/auth/authorizer/node/node_authorizer.go`), as the kubelet's
/// FailedMount event quotes them.
const CLAIM_REFUSED: &str = "Unable to attach or mount volumes: unmounted volumes=[v0], unattached volumes=[v0]: error processing PVC ns/claim-0: failed to fetch PVC from API server: persistentvolumeclaims \"claim-0\" is forbidden: User \"system:node:n1\" cannot get resource \"persistentvolumeclaims\" in API group \"\" in the namespace \"ns\": no relationship found between node 'n1' and this object";

/// One Ready node and a default StorageClass; the storage pods `refused` names
/// stay ContainerCreating with [`CLAIM_REFUSED`], the rest are healthy. Returns
/// the names of the storage pods made, in order.
fn refusing_claims(
    fake: &FakeApi,
    refused: fn(&str) -> bool,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    fake.add_ready_node("n1", json!([]));
    default_storage_class(fake);
    let created: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let names = created.clone();
    fake.on_pod_create(move |pod| {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        if name.starts_with("storage-") {
            names.lock().unwrap().push(name.to_string());
        }
        match name {
            name if refused(name) => {
                let mut run = PodRun::waiting("ContainerCreating", "");
                run.events
                    .push(("FailedMount".into(), CLAIM_REFUSED.into()));
                Some(run)
            }
            "rwop-holder" => Some(PodRun::new("Running", None, "")),
            "rwop-second" => None,
            _ => Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n")),
        }
    });
    created
}

/// The node authorizer refuses the kubelet a claim for a moment when the kubelet
/// sees a pod bound before the authorizer's graph does; the kubelet retries only
/// after its pod worker's 10–15 s back-off (`pkg/kubelet/pod_workers.go`). The
/// probe puts a copy of the pod in instead of waiting that out.
#[tokio::test]
async fn a_pod_refused_its_claim_for_a_moment_is_replaced_not_waited_out() {
    let fake = FakeApi::new();
    let created = refusing_claims(&fake, |name| name == "storage-0");
    let started = Instant::now();
    let report = verify::verify(&app(), &target(&fake), &options(30), None)
        .await
        .unwrap();
    let storage = report.checks.iter().find(|c| c.name == "storage").unwrap();
    assert_eq!(storage.status, Status::Ok, "{storage:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(*created.lock().unwrap(), ["storage-0", "storage-0-again"]);
}

/// A refusal that does not pass is not retried forever: one copy, then the
/// probe reports what the kubelet says.
#[tokio::test]
async fn a_claim_refused_again_after_the_copy_is_reported() {
    let fake = FakeApi::new();
    let created = refusing_claims(&fake, |name| name.starts_with("storage-"));
    let report = verify::verify(&app(), &target(&fake), &options(4), None)
        .await
        .unwrap();
    let storage = report.checks.iter().find(|c| c.name == "storage").unwrap();
    assert_eq!(storage.status, Status::Fail, "{storage:?}");
    assert!(
        storage.detail.contains("no relationship found"),
        "{storage:?}"
    );
    assert_eq!(*created.lock().unwrap(), ["storage-0", "storage-0-again"]);
}

/// Probe pods share their node's network only on kind nodes devcluster sees on
/// this engine; on anyone else's cluster, where a policy may forbid host
/// namespaces, they keep a network of their own.
#[tokio::test]
async fn probe_pods_share_the_nodes_network_only_on_kind_nodes_seen_here() {
    for (kind_nodes, expected) in [(false, None), (true, Some(true))] {
        let fake = FakeApi::new();
        fake.add_ready_node("n1", json!([]));
        let seen: std::sync::Arc<std::sync::Mutex<Vec<Option<bool>>>> = Default::default();
        let specs = seen.clone();
        fake.on_pod_create(move |pod| {
            if pod["metadata"]["name"] == "subpath-0" {
                specs
                    .lock()
                    .unwrap()
                    .push(pod["spec"]["hostNetwork"].as_bool());
            }
            match pod["metadata"]["name"].as_str().unwrap_or("") {
                "rwop-holder" => Some(PodRun::new("Running", None, "")),
                "rwop-second" => None,
                _ => Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n")),
            }
        });
        let mut target = target(&fake);
        if kind_nodes {
            target.nodes = vec![devcluster::adapters::docker::ObservedNode {
                name: "n1".into(),
                cluster: "dev".into(),
                role: "control-plane".into(),
                state: "running".into(),
                image: String::new(),
                labels: Default::default(),
                mounts: Vec::new(),
                ports: Vec::new(),
                requested_ports: Vec::new(),
            }];
        }
        let report = verify::verify(&app(), &target, &options(10), None)
            .await
            .unwrap();
        let subpath = report.checks.iter().find(|c| c.name == "subPath").unwrap();
        assert_eq!(subpath.status, Status::Ok, "{subpath:?}");
        assert_eq!(
            *seen.lock().unwrap(),
            [expected],
            "kind nodes: {kind_nodes}"
        );
    }
}

/// A probe's pass is read from its logs once its container runs: the kubelet
/// reports the container's end only at its next relist of the runtime.
#[tokio::test]
async fn a_pass_is_read_from_a_running_probes_logs_and_anything_else_waits_for_its_end() {
    let fake = FakeApi::new();
    fake.add_ready_node("n1", json!([]));
    default_storage_class(&fake);
    // Containers that print their last line and are still seen running.
    fake.on_pod_create(|pod| match pod["metadata"]["name"].as_str().unwrap_or("") {
        "storage-0" => Some(PodRun::new("Running", None, "devcluster: ok\n")),
        "subpath-0" => Some(PodRun::new("Running", None, "devcluster: wrong content\n")),
        "rwop-holder" => Some(PodRun::new("Running", None, "")),
        _ => None,
    });
    let started = Instant::now();
    let report = verify::verify(&app(), &target(&fake), &options(6), None)
        .await
        .unwrap();
    let row = |name: &str| {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} row: {:?}", report.checks))
    };
    assert_eq!(row("storage").status, Status::Ok, "{:?}", row("storage"));
    // A script that did not pass is judged on its container's end, which never
    // came: the deadline.
    assert_eq!(row("subPath").status, Status::Fail);
    assert!(
        row("subPath").detail.contains("Timeout"),
        "{}",
        row("subPath").detail
    );
    assert!(started.elapsed() >= Duration::from_secs(5));
    // The pass was read from the logs followed, not from a poll of them.
    let follows = fake
        .requests()
        .iter()
        .filter(|r| r.contains("/pods/storage-0/log") && r.contains("follow=true"))
        .count();
    assert_eq!(follows, 1, "{:?}", fake.requests());
}
