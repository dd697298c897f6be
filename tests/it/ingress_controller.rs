//! The ingress controller: Contour by default, ingress-nginx with a warning that
//! it is retired; `up` installs Contour's Gateway render pinned to the ingress
//! node after its CRDs are served; `verify` proves an Ingress and an HTTPRoute
//! through the controller's host port, against the fake API with Contour and
//! Envoy modelled (`support::fake_contour`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use devcluster::adapters::kube::cluster::{Connector, Kube};
use devcluster::adapters::world::World;
use devcluster::core::plan::ClusterPlan;
use devcluster::operations::ProfileChoice;
use devcluster::operations::context::App;
use devcluster::operations::up::{Deps, Interrupt, UpOptions};
use devcluster::operations::verify::report::Status;
use devcluster::operations::verify::{self, Options, Target};
use serde_json::{Value, json};
use support::fake_contour;
use support::fake_kube::{FakeApi, PodRun};

const HEADER: &str = "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\n";

fn devcluster(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(support::devcluster_bin());
    command
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("KUBECONFIG", dir.join("kubeconfig"));
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn plan_json(dir: &Path, profile: &str) -> (Value, String) {
    let out = devcluster(
        dir,
        &["plan", "-p", profile, "--name", "ing", "-o", "json"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

#[test]
fn the_default_controller_is_contour_and_ingress_nginx_warns_in_plan_and_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, format!("{HEADER}ingress:\n  enabled: true\n")).unwrap();
    let (plan, stderr) = plan_json(dir.path(), file.to_str().unwrap());
    assert_eq!(plan["ingress"]["controller"], json!({"name": "contour"}));
    assert!(!stderr.contains("retired"), "{stderr}");
    let (plan, _) = plan_json(dir.path(), "ingress");
    assert_eq!(plan["ingress"]["controller"], json!({"name": "contour"}));

    std::fs::write(
        &file,
        format!("{HEADER}ingress:\n  enabled: true\n  controller: ingress-nginx\n"),
    )
    .unwrap();
    let (plan, stderr) = plan_json(dir.path(), file.to_str().unwrap());
    assert_eq!(
        plan["ingress"]["controller"],
        json!({"name": "ingress-nginx"})
    );
    for words in [
        "warning",
        "p.yaml:5",
        "ingress-nginx is retired upstream (March 2026)",
        "v1.15.1 is its last release",
        "no security fixes",
        "controller: contour",
    ] {
        assert!(stderr.contains(words), "{words:?} missing: {stderr}");
    }
    // `up` plans first and says the same before it looks for kind.
    let out = devcluster(
        dir.path(),
        &["up", "-p", file.to_str().unwrap(), "--name", "ing"],
        &[("DEVCLUSTER_KIND", "/nonexistent/kind")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("ingress-nginx is retired upstream (March 2026)"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_controller_names_the_four_choices() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        format!("{HEADER}ingress:\n  enabled: true\n  controller: traefik\n"),
    )
    .unwrap();
    let out = devcluster(dir.path(), &["plan", "-p", file.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("it must be contour, ingress-nginx, custom or none"),
        "{stderr}"
    );
}

#[test]
fn the_schema_documents_contour_and_the_custom_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let out = devcluster(dir.path(), &["schema"], &[]);
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    let definitions = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .unwrap();
    let controller = definitions["IngressSpec"]["properties"]["controller"]["description"]
        .as_str()
        .unwrap();
    assert!(
        controller.contains("Default: `contour`") && controller.contains("retired"),
        "{controller}"
    );
    let custom = &definitions["CustomController"]["properties"];
    assert!(custom.get("gateway").is_some(), "{custom}");
    assert!(custom.get("ingressClassName").is_some(), "{custom}");
    assert_eq!(
        definitions["GatewayRef"]["required"],
        json!(["namespace", "name"])
    );
}

// ---- verify: an Ingress and an HTTPRoute through Contour -----------------------

fn plan_of(dir: &Path, body: &str) -> ClusterPlan {
    let file = dir.join("p.yaml");
    std::fs::write(
        &file,
        format!("{HEADER}nodes:\n  controlPlanes: 1\n  workers: 0\n{body}"),
    )
    .unwrap();
    let out = devcluster(
        dir,
        &[
            "plan",
            "-p",
            file.to_str().unwrap(),
            "--name",
            "np",
            "-o",
            "json",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The one node as Docker shows it: its container ports 80 and 443 published on
/// `http` and `http + 1`.
fn observed_node(http: u16) -> devcluster::adapters::docker::ObservedNode {
    let port = |container_port, host_port| devcluster::adapters::docker::ObservedPort {
        container_port,
        protocol: "tcp".into(),
        host_ip: "127.0.0.1".into(),
        host_port,
    };
    let ports = vec![port(80, http), port(443, http + 1)];
    devcluster::adapters::docker::ObservedNode {
        name: "np-control-plane".into(),
        cluster: "np".into(),
        role: "control-plane".into(),
        state: "running".into(),
        image: String::new(),
        labels: Default::default(),
        mounts: Vec::new(),
        ports: ports.clone(),
        requested_ports: ports,
    }
}

fn options(seconds: u64) -> Options {
    Options {
        deadline: Instant::now() + Duration::from_secs(seconds),
        probe_image: Some("registry.example/busybox:1".into()),
        pull_policy: Some("Never".into()),
        ..Options::new(Instant::now())
    }
}

/// A one-node cluster whose probe pods succeed and whose echo backend runs,
/// with Contour running in `projectcontour` (or not) and Envoy behind the host
/// port. Returns the fake and the plan.
fn contour_cluster(dir: &Path, contour_runs: bool, controller: &str) -> (FakeApi, ClusterPlan) {
    let fake = FakeApi::new();
    fake.add_ready_node("np-control-plane", json!([]));
    fake.on_pod_create(|pod| match pod["metadata"]["name"].as_str().unwrap_or("") {
        "echo" | "rwop-holder" => Some(PodRun::new("Running", None, "")),
        "rwop-second" => None,
        _ => Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n")),
    });
    fake_contour::install_running(&fake, "projectcontour", "np-control-plane");
    if contour_runs {
        fake_contour::run_contour(&fake, "projectcontour");
    }
    let http = fake_contour::envoy(&fake, "projectcontour");
    let plan = plan_of(
        dir,
        &format!(
            "ingress:\n  enabled: true\n  httpPort: {http}\n  httpsPort: {}\n{controller}",
            http + 1
        ),
    );
    (fake, plan)
}

async fn verify_rows(
    fake: &FakeApi,
    plan: &ClusterPlan,
    seconds: u64,
) -> Vec<verify::report::Check> {
    let http = plan.ingress.as_ref().unwrap().http_port as u16;
    let target = Target {
        plan: Some(plan),
        docker: None,
        nodes: vec![observed_node(http)],
        node_layer_skipped: None,
        api: Some(Arc::new(Kube::new(fake.client()))),
        api_error: None,
    };
    verify::verify(
        &App::new(World::default()),
        &target,
        &options(seconds),
        None,
    )
    .await
    .unwrap()
    .checks
}

fn row<'a>(rows: &'a [verify::report::Check], name: &str) -> &'a verify::report::Check {
    rows.iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} row: {rows:#?}"))
}

#[tokio::test]
async fn an_ingress_and_an_httproute_through_contour_both_return_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, plan) = contour_cluster(dir.path(), true, "");
    // What verify creates, captured before its namespace goes.
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let keep = seen.clone();
    fake.add_controller(move |objects| {
        let mut kept = keep.lock().unwrap();
        for (path, object) in objects {
            if (path.contains("/httproutes/") || path.contains("/ingresses/"))
                && !kept.iter().any(|o| o["kind"] == object["kind"])
            {
                kept.push(object.clone());
            }
        }
        Vec::new()
    });
    let rows = verify_rows(&fake, &plan, 20).await;
    let ingress = row(&rows, "ingress");
    assert_eq!(ingress.status, Status::Ok, "{ingress:?}");
    let route = row(&rows, "httproute");
    assert_eq!(route.status, Status::Ok, "{route:?}");
    assert!(
        route
            .detail
            .starts_with("HTTPRoute accepted by Gateway projectcontour/contour, backend resolved; http://127.0.0.1:")
            && route.detail.contains("/devcluster-gateway-")
            && route.detail.ends_with("returned this run's token"),
        "{}",
        route.detail
    );
    assert_eq!(route.node.as_deref(), Some("np-control-plane"));
    let seen = seen.lock().unwrap().clone();
    let http_route = seen.iter().find(|o| o["kind"] == "HTTPRoute").unwrap();
    assert_eq!(
        http_route["spec"]["parentRefs"][0]["name"], "contour",
        "{http_route}"
    );
    assert_eq!(
        http_route["status"]["parents"][0]["controllerName"],
        fake_contour::CONTROLLER_NAME
    );
    let ingress_object = seen.iter().find(|o| o["kind"] == "Ingress").unwrap();
    assert_eq!(ingress_object["spec"]["ingressClassName"], "contour");
    assert!(
        fake.objects_under("/apis/gateway.networking.k8s.io/v1/namespaces/devcluster-verify-")
            .is_empty(),
        "the route goes with the probe namespace"
    );
}

#[tokio::test]
async fn an_httproute_the_gateway_does_not_accept_is_named_with_the_controllers_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, plan) = contour_cluster(dir.path(), true, "");
    // The Gateway admits routes from its own namespace only (the default of
    // `allowedRoutes.namespaces.from`).
    let path = "/apis/gateway.networking.k8s.io/v1/namespaces/projectcontour/gateways/contour";
    let mut gateway = fake.object(path).unwrap();
    gateway["spec"]["listeners"][0]
        .as_object_mut()
        .unwrap()
        .remove("allowedRoutes");
    fake.put(path, gateway);
    let started = Instant::now();
    let rows = verify_rows(&fake, &plan, 30).await;
    assert_eq!(
        row(&rows, "ingress").status,
        Status::Ok,
        "the Ingress is not affected"
    );
    let route = row(&rows, "httproute");
    assert_eq!(route.status, Status::Fail, "{route:?}");
    assert!(
        route.detail.contains("Gateway projectcontour/contour did not accept HTTPRoute devcluster-verify-")
            && route.detail.contains(
                "Accepted=False (NotAllowedByListeners): No listeners included by this parent ref allowed this attachment."
            ),
        "{}",
        route.detail
    );
    assert!(
        route
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("describe httproute devcluster-echo"),
        "{route:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a verdict that stands ends the wait before the deadline"
    );
}

#[tokio::test]
async fn an_httproute_whose_backend_stops_answering_fails_on_the_data_path() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, plan) = contour_cluster(dir.path(), true, "");
    fake.add_controller(move |objects| {
        // The echo pod stops once its route is accepted (it crashed): Envoy has
        // no endpoint left behind the Service.
        let accepted = objects.iter().any(|(p, o)| {
            p.contains("/httproutes/")
                && o["status"]["parents"][0]["conditions"][0]["status"] == "True"
        });
        if !accepted {
            return Vec::new();
        }
        objects
            .iter()
            .filter(|(p, o)| p.contains("/pods/echo") && o["status"]["phase"] == "Running")
            .map(|(p, o)| {
                let mut o = o.clone();
                o["status"]["phase"] = json!("Failed");
                (p.clone(), o)
            })
            .collect()
    });
    let rows = verify_rows(&fake, &plan, 8).await;
    let route = row(&rows, "httproute");
    assert_eq!(route.status, Status::Fail, "{route:?}");
    assert!(
        route.detail.starts_with(
            "HTTPRoute accepted by Gateway projectcontour/contour, backend resolved; http://"
        ) && route
            .detail
            .contains("did not return the token: HTTP/1.1 503 Service Unavailable"),
        "{}",
        route.detail
    );
    assert!(
        route
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("stopped on the data path"),
        "{route:?}"
    );
}

#[tokio::test]
async fn an_httproute_no_controller_takes_up_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, plan) = contour_cluster(dir.path(), false, "");
    let rows = verify_rows(&fake, &plan, 5).await;
    let route = row(&rows, "httproute");
    assert_eq!(route.status, Status::Fail, "{route:?}");
    assert!(
        route
            .detail
            .contains("has no status for Gateway projectcontour/contour: no controller took it up"),
        "{}",
        route.detail
    );
    assert!(
        route
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("kubectl -n projectcontour get gateway,pods -o wide"),
        "{route:?}"
    );
}

#[tokio::test]
async fn ingress_nginx_gets_no_httproute_and_its_own_ingress_class() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, plan) = contour_cluster(dir.path(), true, "  controller: ingress-nginx\n");
    let rows = verify_rows(&fake, &plan, 3).await;
    let route = row(&rows, "httproute");
    assert_eq!(route.status, Status::Skip, "{route:?}");
    assert!(
        route.detail.contains("serves no Gateway API"),
        "ingress-nginx serves no Gateway API: {route:?}"
    );
    assert!(
        !fake.requests().iter().any(|r| r.contains("httproutes")),
        "no HTTPRoute is made"
    );
    // Envoy serves class `contour` only, so the `nginx` Ingress goes unserved.
    let ingress = row(&rows, "ingress");
    assert_eq!(ingress.status, Status::Fail, "{ingress:?}");
    assert!(
        ingress
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("kubectl -n ingress-nginx get pods"),
        "{ingress:?}"
    );
}

// ---- up: the controller applied on the emulator --------------------------------

/// A render of the shape of Contour's `examples/render/contour-gateway.yaml`
/// (v1.33.6), cut down: the Gateway API CRDs first in its list are interleaved
/// with the rest as upstream has them (its own CRDs, then the workloads, then
/// Gateway API's), the certgen Job writing the Secrets the Deployment and the
/// DaemonSet mount, Envoy with host ports 80/443 on 8080/8443 and no node
/// selector, and the GatewayClass, Gateway and ConfigMap at the end.
const RENDER: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: projectcontour
---
apiVersion: batch/v1
kind: Job
metadata:
  name: contour-certgen-v1-33-6
  namespace: projectcontour
spec:
  template:
    metadata:
      labels:
        app: contour-certgen
    spec:
      containers:
      - name: contour
        command: [contour, certgen, --kube, --incluster, --overwrite]
      restartPolicy: Never
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: contour
  namespace: projectcontour
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: contour
    spec:
      containers:
      - name: contour
        ports:
        - containerPort: 8001
      volumes:
      - name: contourcert
        secret:
          secretName: contourcert
          defaultMode: 0644
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: envoy
  namespace: projectcontour
spec:
  template:
    metadata:
      labels:
        app: envoy
    spec:
      containers:
      - name: envoy
        ports:
        - containerPort: 8080
          hostPort: 80
        - containerPort: 8443
          hostPort: 443
      volumes:
      - name: envoycert
        secret:
          secretName: envoycert
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gatewayclasses.gateway.networking.k8s.io
spec:
  group: gateway.networking.k8s.io
  names: {kind: GatewayClass, plural: gatewayclasses}
  scope: Cluster
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gateways.gateway.networking.k8s.io
spec:
  group: gateway.networking.k8s.io
  names: {kind: Gateway, plural: gateways}
  scope: Namespaced
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: httproutes.gateway.networking.k8s.io
spec:
  group: gateway.networking.k8s.io
  names: {kind: HTTPRoute, plural: httproutes}
  scope: Namespaced
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: example
spec:
  controllerName: projectcontour.io/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: contour
  namespace: projectcontour
spec:
  gatewayClassName: example
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: All
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: contour
  namespace: projectcontour
data:
  contour.yaml: "gateway:\n  gatewayRef:\n    name: contour\n    namespace: projectcontour\n"
"#;

/// A node as the kubelet registers it from kind's config: its `labels:` as node
/// labels (kind renders them as the kubelet's `--node-labels`), its taints.
fn add_node(fake: &FakeApi, name: &str, labels: Value, taints: Value) {
    let mut all = json!({"kubernetes.io/hostname": name});
    for (k, v) in labels.as_object().into_iter().flatten() {
        all[k] = v.clone();
    }
    fake.put(
        &format!("/api/v1/nodes/{name}"),
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": all},
            "spec": {"taints": taints},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
                "nodeInfo": {"kubeletVersion": "v1.34.0", "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "containerd://2.1", "kernelVersion": "6", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux", "osImage": "Debian", "systemUUID": ""}
            }
        }),
    );
}

#[tokio::test]
async fn up_applies_the_gateway_render_after_its_definitions_and_pins_envoy_to_the_ingress_node() {
    if !support::docker_available(
        "up_applies_the_gateway_render_after_its_definitions_and_pins_envoy_to_the_ingress_node",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::unique_name("contour");
    let _cleanup = support::Cleanup::new().cluster(&cluster);
    // The manifest is in the cache under its checksum, as after an earlier download.
    let sha = devcluster::adapters::download::sha256_hex(RENDER.as_bytes());
    let manifests = dir.path().join("cache/devcluster/manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join(format!("{sha}.yaml")), RENDER).unwrap();
    let profile = dir.path().join("devcluster.yaml");
    std::fs::write(
        &profile,
        format!(
            "{HEADER}nodes:\n  controlPlanes: 1\n  workers: 2\n  ingress: worker\n  taints:\n    worker: [\"dedicated=edge:NoSchedule\"]\n\
             ingress:\n  enabled: true\n  controller: custom\n  httpPort: 0\n  httpsPort: 0\n  manifest:\n\
             \x20   url: https://example.invalid/contour-gateway.yaml\n    sha256: {sha}\n    namespace: projectcontour\n\
             \x20   podSelector:\n      app: envoy\n    ingressClassName: contour\n    gateway:\n      namespace: projectcontour\n      name: contour\n"
        ),
    )
    .unwrap();
    let fake = FakeApi::new();
    add_node(
        &fake,
        &format!("{cluster}-control-plane"),
        json!({}),
        json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
    );
    add_node(
        &fake,
        &format!("{cluster}-worker"),
        json!({"ingress-ready": "true"}),
        json!([{"key": "dedicated", "value": "edge", "effect": "NoSchedule"}]),
    );
    add_node(&fake, &format!("{cluster}-worker2"), json!({}), json!([]));
    fake.add_available_coredns();
    fake_contour::run_workloads(&fake);

    let mut env: std::collections::BTreeMap<String, String> = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", dir.path().display().to_string()),
        (
            "XDG_CACHE_HOME",
            dir.path().join("cache").display().to_string(),
        ),
        (
            "KUBECONFIG",
            dir.path().join("kubeconfig").display().to_string(),
        ),
        (
            "DEVCLUSTER_KIND",
            support::kind_emulator().display().to_string(),
        ),
        ("KIND_EMULATOR_VERSION", "v0.30.0".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        env.insert("DOCKER_HOST".into(), host);
    }
    let app = App::new(World {
        env,
        cwd: dir.path().to_path_buf(),
        home: Some(dir.path().to_path_buf()),
        stdin_is_terminal: false,
        stderr_is_terminal: false,
    });
    let options = UpOptions {
        profile: ProfileChoice {
            profile: Some(profile.display().to_string()),
            name: Some(cluster.clone()),
        },
        no_verify: true,
        timeout: Duration::from_secs(60),
        ..UpOptions::default()
    };
    let deps = Deps {
        connector: Connector::Client(fake.client()),
        interrupt: Interrupt::never(),
    };
    let result = devcluster::operations::up::run_up(&app, &options, &deps)
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let step = result.steps.iter().find(|s| s.name == "ingress").unwrap();
    eprintln!("the ingress step took {:.2} s", step.seconds);
    assert_eq!(
        step.detail,
        format!("the controller ready on {cluster}-worker")
    );

    // Envoy runs on the ingress node only: selected there and tolerating its taint.
    let pods = fake.objects_under("/api/v1/namespaces/projectcontour/pods/envoy-");
    assert_eq!(
        pods,
        vec![format!(
            "/api/v1/namespaces/projectcontour/pods/envoy-{cluster}-worker"
        )]
    );
    let envoy = fake
        .object("/apis/apps/v1/namespaces/projectcontour/daemonsets/envoy")
        .unwrap();
    let spec = &envoy["spec"]["template"]["spec"];
    assert_eq!(spec["nodeSelector"]["ingress-ready"], "true");
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"}])
    );
    assert_eq!(spec["containers"][0]["ports"][0]["hostPort"], 80);
    // The Gateway API objects were applied once their definitions were served.
    assert!(
        fake.object(
            "/apis/gateway.networking.k8s.io/v1/namespaces/projectcontour/gateways/contour"
        )
        .is_some()
    );
    let requests = fake.requests();
    let position = |needle: &str| {
        requests
            .iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("no {needle}: {requests:#?}"))
    };
    assert!(
        position("PATCH /apis/apiextensions.k8s.io/v1/customresourcedefinitions/gateways.")
            < position("GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/")
    );
    assert!(
        position("PATCH /apis/apps/v1/namespaces/projectcontour/daemonsets/envoy")
            > position("PATCH /apis/apiextensions.k8s.io/v1/customresourcedefinitions/httproutes.")
    );
}

#[tokio::test]
async fn a_cluster_without_the_httproute_definition_fails_only_the_httproute_row() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, plan) = contour_cluster(dir.path(), true, "");
    // The definition is there but not served (not Established): the API server
    // answers 404 for HTTPRoutes, as when it is missing.
    let path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/httproutes.gateway.networking.k8s.io";
    let mut definition = fake.object(path).unwrap();
    definition["status"] = json!({"conditions": []});
    fake.put(path, definition);
    let rows = verify_rows(&fake, &plan, 10).await;
    assert_eq!(row(&rows, "ingress").status, Status::Ok, "{rows:#?}");
    let route = row(&rows, "httproute");
    assert_eq!(route.status, Status::Fail, "{route:?}");
    assert!(
        route.detail.starts_with("the HTTPRoute could not be made:")
            && route
                .detail
                .contains("could not find the requested resource"),
        "{}",
        route.detail
    );
    assert!(
        route
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("kubectl get crd httproutes.gateway.networking.k8s.io"),
        "{route:?}"
    );
}
