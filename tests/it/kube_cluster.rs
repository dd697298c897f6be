//! The Kubernetes side of `up` (readiness, record, storage fix, add-on apply)
//! against an in-memory API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use devcluster::adapters::kube::cluster::{ClusterApi, Connector, StorageFix};
use serde_json::json;
use std::sync::Arc;
use support::fake_kube::FakeApi;

async fn api(fake: &FakeApi) -> Arc<dyn ClusterApi> {
    Connector::Client(fake.client())
        .connect("", Some("kind-test"))
        .await
        .unwrap()
}

#[tokio::test]
async fn wait_ready_passes_when_nodes_are_ready_and_coredns_available() {
    let fake = FakeApi::new();
    fake.add_ready_node("c-control-plane", json!([]));
    fake.add_ready_node("c-worker", json!([]));
    fake.add_available_coredns();
    let api = api(&fake).await;
    let expected = vec!["c-control-plane".to_string(), "c-worker".to_string()];
    api.wait_ready(
        &expected,
        Instant::now() + Duration::from_secs(5),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/nodes"))
    );
}

#[tokio::test]
async fn wait_ready_names_the_missing_node_at_the_deadline() {
    let fake = FakeApi::new();
    fake.add_ready_node("c-control-plane", json!([]));
    fake.add_available_coredns();
    let api = api(&fake).await;
    let expected = vec!["c-control-plane".to_string(), "c-worker2".to_string()];
    let mut heard = Vec::new();
    let error = api
        .wait_ready(
            &expected,
            Instant::now() + Duration::from_millis(300),
            &mut |w| heard.push(w.to_string()),
        )
        .await
        .unwrap_err();
    let text = error.render();
    assert!(text.contains("did not become ready in time"), "{text}");
    assert!(text.contains("c-worker2 (not registered)"), "{text}");
    assert!(heard.iter().any(|h| h.contains("c-worker2")), "{heard:?}");
}

#[tokio::test]
async fn forbidden_is_reported_as_rbac_with_a_hint() {
    let fake = FakeApi::new();
    fake.forbid("GET", "/api/v1/nodes");
    let api = api(&fake).await;
    let error = api.nodes().await.unwrap_err();
    let text = error.render();
    assert!(
        text.contains("cannot list nodes: the API server forbids it (RBAC)"),
        "{text}"
    );
    assert!(text.contains("hint:"), "{text}");
}

#[tokio::test]
async fn record_round_trips_through_a_configmap() {
    let fake = FakeApi::new();
    let api = api(&fake).await;
    assert_eq!(
        api.read_record("kube-public", "devcluster-record")
            .await
            .unwrap(),
        None
    );
    api.write_record("kube-public", "devcluster-record", "{\"a\":1}")
        .await
        .unwrap();
    let stored = fake
        .object("/api/v1/namespaces/kube-public/configmaps/devcluster-record")
        .unwrap();
    assert_eq!(
        stored["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "devcluster"
    );
    assert_eq!(
        api.read_record("kube-public", "devcluster-record")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"a\":1}")
    );
}

#[tokio::test]
async fn local_path_helper_gets_tolerations_and_the_provisioner_restarts() {
    let fake = FakeApi::new();
    let api = api(&fake).await;
    assert_eq!(
        api.fix_local_path_tolerations(Instant::now() + Duration::from_secs(5))
            .await
            .unwrap(),
        StorageFix::NotInstalled
    );
    fake.put(
        "/api/v1/namespaces/local-path-storage/configmaps/local-path-config",
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "local-path-config", "namespace": "local-path-storage"},
            "data": {"helperPod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: helper-pod\nspec:\n  containers:\n  - name: helper-pod\n    image: docker.io/kindest/local-path-helper:v20250521\n"}
        }),
    );
    fake.put(
        "/apis/apps/v1/namespaces/local-path-storage/deployments/local-path-provisioner",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "local-path-provisioner", "namespace": "local-path-storage"}, "spec": {"template": {"metadata": {}}}}),
    );
    assert_eq!(
        api.fix_local_path_tolerations(Instant::now() + Duration::from_secs(5))
            .await
            .unwrap(),
        StorageFix::Applied
    );
    let helper = fake
        .object("/api/v1/namespaces/local-path-storage/configmaps/local-path-config")
        .unwrap()["data"]["helperPod.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(helper.contains("operator: Exists"), "{helper}");
    let deployment = fake
        .object("/apis/apps/v1/namespaces/local-path-storage/deployments/local-path-provisioner")
        .unwrap();
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"]["devcluster.dev/helper-tolerations"],
        "added"
    );
    // Idempotent.
    assert_eq!(
        api.fix_local_path_tolerations(Instant::now() + Duration::from_secs(5))
            .await
            .unwrap(),
        StorageFix::NotNeeded
    );
}

#[tokio::test]
async fn apply_puts_each_document_at_its_resource_path_and_waits_for_pods() {
    let fake = FakeApi::new();
    let api = api(&fake).await;
    let documents = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress-nginx"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ctl", "namespace": "ingress-nginx"},
               "spec": {"template": {"spec": {"nodeSelector": {"ingress-ready": "true"}}}}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"}}),
    ];
    api.apply(&documents).await.unwrap();
    assert!(fake.object("/api/v1/namespaces/ingress-nginx").is_some());
    let deployment = fake
        .object("/apis/apps/v1/namespaces/ingress-nginx/deployments/ctl")
        .unwrap();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["nodeSelector"]["ingress-ready"],
        "true"
    );
    assert!(
        fake.object("/apis/networking.k8s.io/v1/ingressclasses/nginx")
            .is_some()
    );

    let selector = BTreeMap::from([("app".to_string(), "ctl".to_string())]);
    let error = api
        .wait_pods_ready(
            "ingress-nginx",
            &selector,
            Instant::now() + Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert!(
        error.render().contains("no pod matches app=ctl"),
        "{}",
        error.render()
    );
    fake.put(
        "/api/v1/namespaces/ingress-nginx/pods/ctl-1",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ctl-1", "namespace": "ingress-nginx", "labels": {"app": "ctl"}},
               "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
    );
    api.wait_pods_ready(
        "ingress-nginx",
        &selector,
        Instant::now() + Duration::from_secs(5),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn after_the_storage_fix_a_claim_binds_on_a_no_execute_node() {
    use devcluster::operations::verify::{self, Options, Target};
    let fake = FakeApi::new();
    fake.add_ready_node(
        "c-worker",
        json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]),
    );
    // kind v0.32.0's node image: a helper template without tolerations.
    fake.install_local_path("apiVersion: v1\nkind: Pod\nmetadata:\n  name: helper-pod\nspec:\n  containers:\n  - name: helper-pod\n    image: docker.io/kindest/local-path-helper:v20250521\n");
    fake.on_pod_create(|pod| match pod["metadata"]["name"].as_str().unwrap_or("") {
        "rwop-holder" => Some(support::fake_kube::PodRun::new("Running", None, "")),
        "rwop-second" => None,
        _ => Some(support::fake_kube::PodRun::new(
            "Succeeded",
            Some(0),
            "devcluster: ok\n",
        )),
    });
    let api = api(&fake).await;
    assert_eq!(
        api.fix_local_path_tolerations(Instant::now() + Duration::from_secs(10))
            .await
            .unwrap(),
        StorageFix::Applied
    );
    let helper = fake
        .object("/api/v1/namespaces/local-path-storage/configmaps/local-path-config")
        .unwrap()["data"]["helperPod.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        helper.contains("effect: NoExecute") && helper.contains("effect: NoSchedule"),
        "{helper}"
    );
    // verify runs right after, as `up` does.
    let target = Target {
        plan: None,
        docker: None,
        nodes: Vec::new(),
        node_layer_skipped: Some("not a kind cluster".into()),
        api: Some(api.clone()),
        api_error: None,
    };
    let options = Options {
        probe_image: Some("img".into()),
        ..Options::new(Instant::now() + Duration::from_secs(4))
    };
    let app =
        devcluster::operations::context::App::new(devcluster::adapters::world::World::default());
    let report = verify::verify(&app, &target, &options, None).await.unwrap();
    let storage = report
        .checks
        .iter()
        .find(|c| c.name == "storage" && c.node.as_deref() == Some("c-worker"))
        .unwrap();
    assert_eq!(
        storage.status,
        devcluster::operations::verify::report::Status::Ok,
        "{storage:?}"
    );
}

#[tokio::test]
async fn an_apply_a_webhook_denies_is_not_called_rbac() {
    let fake = FakeApi::new();
    fake.deny_by_webhook(
        "PATCH",
        "/apis/apps/v1/namespaces/ingress-nginx/deployments/",
        403,
        "gatekeeper.sh",
        "[denied by require-labels] you must provide labels: {\"owner\"}",
    );
    let api = api(&fake).await;
    let documents = vec![json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ctl", "namespace": "ingress-nginx"}, "spec": {}})];
    let text = api.apply(&documents).await.unwrap_err().render();
    assert!(
        text.contains("cannot apply Deployment ctl: an admission webhook rejects it"),
        "{text}"
    );
    assert!(
        text.contains("gatekeeper.sh") && !text.contains("RBAC"),
        "{text}"
    );
}
