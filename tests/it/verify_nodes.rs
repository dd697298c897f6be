//! `verify`'s layers on emulated kind node containers (real Docker): the host and
//! node layers run for real; the fake API's pods run their probe script in the
//! node container they are pinned to, so the same probe logic serves both layers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use devcluster::adapters::docker::Docker;
use devcluster::adapters::kube::cluster::Kube;
use devcluster::adapters::world::World;
use devcluster::core::plan::ClusterPlan;
use devcluster::operations::context::App;
use devcluster::operations::verify::report::{Check, Layer, Report, Status};
use devcluster::operations::verify::{self, Options, Target};
use serde_json::json;
use support::fake_kube::{FakeApi, PodRun};
use support::{Cleanup, docker_available, kind_emulator, unique_name};

const HEADER: &str = "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  controlPlanes: 1\n  workers: 2\n";

/// A scratch directory whose real path is not under `/tmp` or `/run` (tmpfs in kind
/// nodes: the planner refuses container paths there). The target directory's
/// scratch space is used when it qualifies; a checkout (or `CARGO_TARGET_DIR`) under
/// `/tmp` falls back to `/var/tmp`, then the home directory.
fn scratch_outside_tmp() -> tempfile::TempDir {
    let on_tmpfs = |path: &Path| {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        real.starts_with("/tmp") || real.starts_with("/run")
    };
    let mut candidates = vec![std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))];
    candidates.push("/var/tmp".into());
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(home.into());
    }
    for base in candidates {
        if base.is_dir()
            && !on_tmpfs(&base)
            && let Ok(dir) = tempfile::Builder::new()
                .prefix("devcluster-")
                .tempdir_in(&base)
        {
            // Canonical, so the planned host path is the path Docker binds.
            assert!(!on_tmpfs(dir.path()), "{}", dir.path().display());
            return dir;
        }
    }
    panic!("no writable scratch directory outside /tmp and /run for the host-path test");
}

/// Plans `profile` (YAML body after the header) with the real binary.
fn plan(dir: &Path, cluster: &str, body: &str) -> (ClusterPlan, String) {
    let file = dir.join(format!("{}.yaml", support::unique_name("p")));
    std::fs::write(&file, format!("{HEADER}{body}")).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["plan", "-p", file.to_str().unwrap(), "--name", cluster];
        args.extend(extra);
        let out = Command::new(support::devcluster_bin())
            .args(&args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let plan: ClusterPlan = serde_json::from_str(&run(&["-o", "json"])).unwrap();
    (plan, run(&[]))
}

/// Creates the cluster's node containers with the emulator from a kind config.
fn create(cluster: &str, config: &str, dir: &Path) {
    let mut child = Command::new(kind_emulator())
        .args(["create", "cluster", "--name", cluster, "--config", "-"])
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(config.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fake API with the plan's nodes; mount probe pods run their script in the
/// node container named by `run_on` (default: their own node).
fn api_for(plan: &ClusterPlan, run_on: Option<String>) -> FakeApi {
    let fake = FakeApi::new();
    for node in &plan.nodes {
        fake.add_ready_node(&node.name, json!([]));
    }
    fake.on_pod_create(move |pod| {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        if !name.starts_with("mnt") && !name.starts_with("hp") {
            return Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n"));
        }
        let node = run_on
            .clone()
            .unwrap_or_else(|| pod["spec"]["nodeName"].as_str().unwrap_or("").to_string());
        let script = pod["spec"]["containers"][0]["command"][2]
            .as_str()
            .unwrap_or("")
            .to_string();
        let out = Command::new("docker")
            .args(["exec", &node, "sh", "-c", &script])
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(1);
        Some(PodRun::new(
            if code == 0 { "Succeeded" } else { "Failed" },
            Some(code),
            &String::from_utf8_lossy(&out.stdout),
        ))
    });
    fake
}

async fn run_verify(
    plan: &ClusterPlan,
    fake: &FakeApi,
    host_paths: Vec<std::path::PathBuf>,
) -> Report {
    run_verify_bundle(plan, fake, host_paths, None).await
}

async fn run_verify_bundle(
    plan: &ClusterPlan,
    fake: &FakeApi,
    host_paths: Vec<std::path::PathBuf>,
    bundle: Option<&Path>,
) -> Report {
    let docker = Docker::connect(&World::from_process()).await.unwrap();
    let nodes = docker.list_nodes(Some(&plan.name)).await.unwrap();
    let target = Target {
        plan: Some(plan),
        docker: Some(&docker),
        nodes,
        node_layer_skipped: None,
        api: Some(Arc::new(Kube::new(fake.client()))),
        api_error: None,
    };
    let options = Options {
        deadline: Instant::now() + Duration::from_secs(30),
        probe_image: Some("img".into()),
        pull_policy: None,
        storage_class: None,
        host_paths,
        ..Options::new(Instant::now())
    };
    // kind is the emulator, so a bundle holds its `kind export logs`.
    let mut world = World::from_process();
    world.env.insert(
        "DEVCLUSTER_KIND".into(),
        kind_emulator().display().to_string(),
    );
    verify::verify(&App::new(world), &target, &options, bundle)
        .await
        .unwrap()
}

fn find<'a>(report: &'a Report, name: &str, node: Option<&str>, layer: Layer) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name && c.node.as_deref() == node && c.layer == layer)
        .unwrap_or_else(|| panic!("no {name} {node:?} {layer:?} in {:#?}", report.checks))
}

#[tokio::test]
async fn mounts_as_planned_pass_every_layer_on_every_node() {
    if !docker_available("mounts_as_planned_pass_every_layer_on_every_node") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rw")).unwrap();
    std::fs::create_dir_all(dir.path().join("ro")).unwrap();
    std::fs::write(dir.path().join("app.conf"), "listen = 8080\nmore\n").unwrap();
    let cluster = unique_name("vok");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let (plan, config) = plan(
        dir.path(),
        &cluster,
        "mounts:\n  - hostPath: ./rw\n    containerPath: /rw\n  - hostPath: ./ro\n    containerPath: /ro\n    readOnly: true\n    nodes: workers\n  - hostPath: ./app.conf\n    containerPath: /etc/app.conf\n    type: File\n    readOnly: true\n    nodes: worker2\n",
    );
    create(&cluster, &config, dir.path());
    let report = run_verify(&plan, &api_for(&plan, None), Vec::new()).await;
    for node in &plan.nodes {
        assert_eq!(
            find(&report, "mount /rw", Some(&node.name), Layer::Node).status,
            Status::Ok
        );
        let pod = find(&report, "mount /rw", Some(&node.name), Layer::Pod);
        assert_eq!(pod.status, Status::Ok, "{pod:?}");
        assert!(pod.detail.contains("reply reached the host"));
    }
    let file = find(
        &report,
        "mount /etc/app.conf",
        Some(&format!("{cluster}-worker2")),
        Layer::Pod,
    );
    assert_eq!(file.status, Status::Ok, "{file:?}");
    assert!(
        file.detail.contains("file visible, writes refused"),
        "{file:?}"
    );
    let worker = format!("{cluster}-worker");
    assert!(
        find(&report, "mount /ro", Some(&worker), Layer::Pod)
            .detail
            .contains("writes refused")
    );
    assert!(
        !report.checks.iter().any(|c| c.name == "mount /ro"
            && c.node.as_deref() == Some(&format!("{cluster}-control-plane")))
    );
    assert!(!report.failed(), "{:#?}", report.checks);
    // Sentinels and replies are gone from the host afterwards.
    assert_eq!(std::fs::read_dir(dir.path().join("rw")).unwrap().count(), 0);
}

#[tokio::test]
async fn a_mount_on_one_node_only_is_reported_at_the_node_layer_naming_where_it_is() {
    if !docker_available(
        "a_mount_on_one_node_only_is_reported_at_the_node_layer_naming_where_it_is",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let cluster = unique_name("vone");
    let _cleanup = Cleanup::new().cluster(&cluster);
    // The cluster was made with the mount on `worker` only (the mis-indented case)...
    let (_, config) = plan(
        dir.path(),
        &cluster,
        "mounts:\n  - hostPath: ./data\n    containerPath: /data\n    nodes: worker\n",
    );
    create(&cluster, &config, dir.path());
    // ...but pods on every node expect it.
    let (expected, _) = plan(
        dir.path(),
        &cluster,
        "mounts:\n  - hostPath: ./data\n    containerPath: /data\n",
    );
    let bundle = dir.path().join("bundle");
    let report = run_verify_bundle(
        &expected,
        &api_for(&expected, None),
        Vec::new(),
        Some(&bundle),
    )
    .await;
    // The failure bundle has what a CI log cannot show.
    for file in ["report.json", "kind-config.yaml", "plan.json", "events.txt"] {
        assert!(bundle.join(file).is_file(), "bundle lacks {file}");
    }
    let inspected = std::fs::read_dir(bundle.join("nodes")).unwrap().count();
    assert_eq!(inspected, 3, "docker inspect of every node");
    // `kind export logs` of every node: the files kind's CollectLogs writes.
    let logs = bundle.join("kind-logs");
    for file in ["kind-version.txt", "docker-info.txt"] {
        assert!(logs.join(file).is_file(), "kind-logs lacks {file}");
    }
    for node in &expected.nodes {
        for file in [
            "kubelet.log",
            "containerd.log",
            "journal.log",
            "serial.log",
            "inspect.json",
        ] {
            let path = logs.join(&node.name).join(file);
            assert!(path.is_file(), "kind-logs lacks {}/{file}", node.name);
        }
    }
    // The emulator's nodes have no journalctl, so kind export logs fails after
    // writing them, as kind does on such a node: the failure is recorded in the
    // bundle, and the result is the verification's own (below).
    let recorded = std::fs::read_to_string(bundle.join("kind-logs.error.txt")).unwrap();
    assert!(
        recorded.starts_with("error: kind export logs failed"),
        "{recorded}"
    );
    assert!(recorded.contains("journalctl --no-pager"), "{recorded}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(
        saved["checks"].as_array().map(Vec::len),
        Some(report.checks.len())
    );
    let worker = format!("{cluster}-worker");
    let worker2 = format!("{cluster}-worker2");
    assert_eq!(
        find(&report, "mount /data", Some(&worker), Layer::Pod).status,
        Status::Ok
    );
    let missing = find(&report, "mount /data", Some(&worker2), Layer::Node);
    assert_eq!(missing.status, Status::Fail);
    assert!(
        missing
            .detail
            .contains(&format!("mounted on {worker} only")),
        "{}",
        missing.detail
    );
    assert!(
        missing
            .hint
            .as_deref()
            .unwrap()
            .contains("extraMounts are per node")
    );
    assert_eq!(
        find(&report, "mount /data", Some(&worker2), Layer::Pod).status,
        Status::Skip
    );
}

#[tokio::test]
async fn a_bind_from_another_path_a_writable_read_only_mount_and_a_missing_host_path() {
    if !docker_available(
        "a_bind_from_another_path_a_writable_read_only_mount_and_a_missing_host_path",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for d in ["old", "new", "cfg", "gone"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let cluster = unique_name("vbad");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let (_, config) = plan(
        dir.path(),
        &cluster,
        "mounts:\n  - hostPath: ./old\n    containerPath: /data\n  - hostPath: ./cfg\n    containerPath: /cfg\n  - hostPath: ./gone\n    containerPath: /gone\n",
    );
    create(&cluster, &config, dir.path());
    let (expected, _) = plan(
        dir.path(),
        &cluster,
        "mounts:\n  - hostPath: ./new\n    containerPath: /data\n  - hostPath: ./cfg\n    containerPath: /cfg\n    readOnly: true\n  - hostPath: ./gone\n    containerPath: /gone\n",
    );
    std::fs::remove_dir(dir.path().join("gone")).unwrap();
    let report = run_verify(&expected, &api_for(&expected, None), Vec::new()).await;
    let cp = format!("{cluster}-control-plane");
    let moved = find(&report, "mount /data", Some(&cp), Layer::Node);
    assert_eq!(moved.status, Status::Fail);
    assert!(
        moved.detail.contains("is bound from") && moved.detail.contains("/old"),
        "{}",
        moved.detail
    );
    let writable = find(&report, "mount /cfg", Some(&cp), Layer::Node);
    assert_eq!(writable.status, Status::Fail);
    assert!(
        writable
            .detail
            .contains("read-write in the node, the profile says read-only"),
        "{}",
        writable.detail
    );
    let gone = find(&report, "mount /gone", None, Layer::Host);
    assert_eq!(gone.status, Status::Fail);
    assert!(gone.detail.contains("does not exist"), "{}", gone.detail);
}

#[tokio::test]
async fn a_pod_that_lands_where_the_mount_is_not_is_reported_at_the_pod_layer() {
    if !docker_available("a_pod_that_lands_where_the_mount_is_not_is_reported_at_the_pod_layer") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let cluster = unique_name("vpod");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let (plan, config) = plan(
        dir.path(),
        &cluster,
        "mounts:\n  - hostPath: ./data\n    containerPath: /data\n    nodes: worker\n",
    );
    create(&cluster, &config, dir.path());
    // The node has the mount, but the pod's filesystem is another node's.
    let fake = api_for(&plan, Some(format!("{cluster}-worker2")));
    let report = run_verify(&plan, &fake, Vec::new()).await;
    let worker = format!("{cluster}-worker");
    assert_eq!(
        find(&report, "mount /data", Some(&worker), Layer::Node).status,
        Status::Ok
    );
    let pod = find(&report, "mount /data", Some(&worker), Layer::Pod);
    assert_eq!(pod.status, Status::Fail);
    assert!(
        pod.detail.contains("the pod has no directory at /data"),
        "{}",
        pod.detail
    );
    assert!(pod.hint.as_deref().unwrap().contains("another node"));
}

#[tokio::test]
async fn a_port_published_by_the_wrong_node_is_reported() {
    if !docker_available("a_port_published_by_the_wrong_node_is_reported") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = unique_name("vport");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, config) = plan(
        dir.path(),
        &cluster,
        &format!("ports:\n  - containerPort: 31000\n    hostPort: {port}\n    node: worker2\n"),
    );
    create(&cluster, &config, dir.path());
    let (expected, _) = plan(
        dir.path(),
        &cluster,
        &format!("ports:\n  - containerPort: 31000\n    hostPort: {port}\n    node: worker\n"),
    );
    let report = run_verify(&expected, &api_for(&expected, None), Vec::new()).await;
    let check = find(
        &report,
        "port 31000/TCP",
        Some(&format!("{cluster}-worker")),
        Layer::Node,
    );
    assert_eq!(check.status, Status::Fail);
    assert!(
        check
            .detail
            .contains(&format!("does not publish 127.0.0.1:{port}")),
        "{}",
        check.detail
    );
}

#[tokio::test]
async fn host_path_mode_on_kind_like_nodes_finds_the_node_without_the_path() {
    if !docker_available("host_path_mode_on_kind_like_nodes_finds_the_node_without_the_path") {
        return;
    }
    // The host path is also the container path, so it must not be under /tmp (a
    // tmpfs inside kind nodes, which the planner refuses), wherever the checkout is.
    let dir = scratch_outside_tmp();
    let shared = std::fs::canonicalize(dir.path()).unwrap().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let cluster = unique_name("vhp");
    let _cleanup = Cleanup::new().cluster(&cluster);
    // The host path is bound at the same path on the workers only.
    let (plan, config) = plan(
        dir.path(),
        &cluster,
        &format!(
            "mounts:\n  - hostPath: ./shared\n    containerPath: {}\n    nodes: workers\n",
            shared.display()
        ),
    );
    create(&cluster, &config, dir.path());
    // A cluster devcluster knows nothing about: no plan, just its nodes.
    let docker = Docker::connect(&World::from_process()).await.unwrap();
    let nodes = docker.list_nodes(Some(&cluster)).await.unwrap();
    let fake = api_for(&plan, None);
    let target = Target {
        plan: None,
        docker: Some(&docker),
        nodes,
        node_layer_skipped: None,
        api: Some(Arc::new(Kube::new(fake.client()))),
        api_error: None,
    };
    let options = Options {
        deadline: Instant::now() + Duration::from_secs(30),
        probe_image: Some("img".into()),
        pull_policy: None,
        storage_class: None,
        host_paths: vec![shared.clone()],
        ..Options::new(Instant::now())
    };
    let report = verify::verify(&App::new(World::default()), &target, &options, None)
        .await
        .unwrap();
    let name = format!("mount {}", shared.display());
    assert_eq!(find(&report, &name, None, Layer::Host).status, Status::Ok);
    for worker in ["worker", "worker2"] {
        let node = format!("{cluster}-{worker}");
        assert_eq!(
            find(&report, &name, Some(&node), Layer::Pod).status,
            Status::Ok
        );
    }
    let cp = format!("{cluster}-control-plane");
    let missing = find(&report, &name, Some(&cp), Layer::Node);
    assert_eq!(missing.status, Status::Fail);
    assert!(
        missing.detail.contains("no directory"),
        "{}",
        missing.detail
    );
    assert_eq!(
        std::fs::read_dir(&shared).unwrap().count(),
        0,
        "sentinel and replies removed"
    );
}

#[tokio::test]
async fn a_host_path_bound_at_another_container_path_is_named_at_the_node_layer() {
    if !docker_available("a_host_path_bound_at_another_container_path_is_named_at_the_node_layer") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let cluster = unique_name("vmoved");
    let _cleanup = Cleanup::new().cluster(&cluster);
    // The nodes were made with /srv; the profile now says /data.
    let (_, config) = plan(
        dir.path(),
        &cluster,
        "mounts:\n  - hostPath: ./data\n    containerPath: /srv\n",
    );
    create(&cluster, &config, dir.path());
    let (expected, _) = plan(
        dir.path(),
        &cluster,
        "mounts:\n  - hostPath: ./data\n    containerPath: /data\n",
    );
    let report = run_verify(&expected, &api_for(&expected, None), Vec::new()).await;
    for node in &expected.nodes {
        let check = find(&report, "mount /data", Some(&node.name), Layer::Node);
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(
            check
                .detail
                .contains("is bound at /srv in the node container, not at /data"),
            "{}",
            check.detail
        );
        // The layer below already failed, so the pod layer is not blamed.
        assert_eq!(
            find(&report, "mount /data", Some(&node.name), Layer::Pod).status,
            Status::Skip
        );
    }
    assert!(report.failed());
}
