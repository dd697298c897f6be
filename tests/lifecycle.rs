//! `up`, `down` and `status` on real Docker with the kind emulator; the
//! Kubernetes API side is an in-memory fake (no real API server runs here).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use devcluster::app::App;
use devcluster::cli::{DownArgs, Output, ProfileArgs, UpArgs};
use devcluster::error::ErrorKind;
use devcluster::kube::cluster::Connector;
use devcluster::lifecycle::{self, Deps, Interrupt, UpResult};
use devcluster::world::World;
use serde_json::json;
use support::fake_kube::FakeApi;
use support::{Cleanup, docker, docker_available, kind_emulator, unique_name};

struct Fixture {
    dir: tempfile::TempDir,
    cluster: String,
    profile: PathBuf,
    _cleanup: Cleanup,
}

impl Fixture {
    fn new(suffix: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let cluster = unique_name(suffix);
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let profile = dir.path().join("devcluster.yaml");
        let fixture = Fixture {
            _cleanup: Cleanup::new().cluster(&cluster),
            dir,
            cluster,
            profile,
        };
        fixture.write_profile("");
        fixture
    }

    /// One control-plane, one worker (the ingress node), a mount on every node,
    /// ingress ports picked by kind, and `extra` appended.
    fn write_profile(&self, extra: &str) {
        let text = format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  controlPlanes: 1\n  workers: 1\n\
             ingress:\n  enabled: true\n  controller: none\n  httpPort: 0\n  httpsPort: 0\n\
             mounts:\n  - hostPath: ./data\n    containerPath: /data\n{extra}"
        );
        std::fs::write(&self.profile, text).unwrap();
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            ),
            (
                "HOME".to_string(),
                self.dir.path().join("home").display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".to_string(),
                self.dir.path().join("cache").display().to_string(),
            ),
            (
                "KUBECONFIG".to_string(),
                self.dir.path().join("kubeconfig").display().to_string(),
            ),
            (
                "DEVCLUSTER_KIND".to_string(),
                kind_emulator().display().to_string(),
            ),
            // kind v0.30's default node image (Kubernetes 1.34) still runs on cgroup v1
            // hosts, so preflight passes on any test machine.
            ("KIND_EMULATOR_VERSION".to_string(), "v0.30.0".to_string()),
        ];
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            env.push(("DOCKER_HOST".to_string(), host));
        }
        env
    }

    fn app(&self, extra: &[(&str, &str)]) -> App {
        let mut env: std::collections::BTreeMap<String, String> = self.env().into_iter().collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        App::new(World {
            env,
            cwd: self.dir.path().to_path_buf(),
            home: Some(self.dir.path().join("home")),
            stdin_is_terminal: false,
            stderr_is_terminal: false,
        })
    }

    fn up_args(&self) -> UpArgs {
        UpArgs {
            profile: ProfileArgs {
                profile: Some(self.profile.display().to_string()),
                name: Some(self.cluster.clone()),
            },
            recreate: false,
            retain: false,
            no_verify: true,
            timeout: Duration::from_secs(60),
            kubeconfig: None,
            yes: false,
            install_kind: false,
            probe_image: None,
            image_pull_policy: None,
            echo_image: None,
            output: Output::Text,
        }
    }

    fn down_args(&self) -> DownArgs {
        DownArgs {
            profile: ProfileArgs {
                profile: Some(self.profile.display().to_string()),
                name: Some(self.cluster.clone()),
            },
            all: false,
            kubeconfig: None,
        }
    }

    fn nodes(&self) -> Vec<String> {
        let out = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=io.x-k8s.kind.cluster={}", self.cluster),
            "--format",
            "{{.Names}} {{.ID}}",
        ]);
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    fn devcluster(&self, args: &[&str]) -> std::process::Output {
        Command::new(support::devcluster_bin())
            .args(args)
            .env_clear()
            .envs(self.env())
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }
}

/// A fake API where every planned node is Ready, CoreDNS is available and
/// local-path-provisioner has the helper template without tolerations.
fn ready_api(cluster: &str, workers: usize) -> FakeApi {
    let fake = FakeApi::new();
    fake.add_ready_node(&format!("{cluster}-control-plane"), json!([]));
    for i in 1..=workers {
        let suffix = if i == 1 { String::new() } else { i.to_string() };
        fake.add_ready_node(&format!("{cluster}-worker{suffix}"), json!([]));
    }
    fake.add_available_coredns();
    fake.put(
        "/api/v1/namespaces/local-path-storage/configmaps/local-path-config",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "local-path-config", "namespace": "local-path-storage"},
               "data": {"helperPod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: helper-pod\nspec:\n  containers:\n  - name: helper-pod\n    image: docker.io/kindest/local-path-helper:v20250521\n"}}),
    );
    fake
}

fn deps(fake: &FakeApi) -> Deps {
    Deps {
        connector: Connector::Client(fake.client()),
        interrupt: Interrupt::Never,
    }
}

async fn up(
    fixture: &Fixture,
    args: &UpArgs,
    deps: &Deps,
    extra: &[(&str, &str)],
) -> devcluster::error::Result<UpResult> {
    lifecycle::run_up(&fixture.app(extra), args, deps).await
}

fn record_in_node(cluster: &str) -> serde_json::Value {
    let out = docker(&[
        "exec",
        &format!("{cluster}-control-plane"),
        "cat",
        "/kind/devcluster/record.json",
    ]);
    assert!(
        out.status.success(),
        "no record: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn up_creates_then_is_a_noop_then_refuses_a_change_then_recreates() {
    if !docker_available("up_creates_then_is_a_noop_then_refuses_a_change_then_recreates") {
        return;
    }
    let fixture = Fixture::new("life");
    let fake = ready_api(&fixture.cluster, 1);
    let deps = deps(&fake);

    let first = up(&fixture, &fixture.up_args(), &deps, &[]).await.unwrap();
    assert_eq!(first.action, "created");
    let nodes = fixture.nodes();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let record = record_in_node(&fixture.cluster);
    assert_eq!(record["planHash"], first.plan_hash);
    assert_eq!(record["plan"]["name"], fixture.cluster);
    let configmap = fake
        .object("/api/v1/namespaces/kube-public/configmaps/devcluster-record")
        .expect("record ConfigMap");
    assert!(
        configmap["data"]["record.json"]
            .as_str()
            .unwrap()
            .contains(&first.plan_hash)
    );
    // Multi-node: the control-plane is tainted, so the storage fix ran.
    let helper = fake
        .object("/api/v1/namespaces/local-path-storage/configmaps/local-path-config")
        .unwrap();
    assert!(
        helper["data"]["helperPod.yaml"]
            .as_str()
            .unwrap()
            .contains("operator: Exists")
    );

    // Second run: nothing changes.
    let second = up(&fixture, &fixture.up_args(), &deps, &[]).await.unwrap();
    assert_eq!(second.action, "up-to-date");
    assert_eq!(
        fixture.nodes(),
        nodes,
        "a no-op up must not touch the containers"
    );

    // A changed profile without --recreate: exit 1 with a diff, nothing touched.
    std::fs::create_dir_all(fixture.dir.path().join("more")).unwrap();
    fixture.write_profile("  - hostPath: ./more\n    containerPath: /more\n");
    let error = up(&fixture, &fixture.up_args(), &deps, &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Failed);
    let text = error.render();
    assert!(text.contains("differs from the profile"), "{text}");
    assert!(text.contains("+ ") && text.contains("/more"), "{text}");
    assert!(text.contains("--recreate"), "{text}");
    assert_eq!(
        fixture.nodes(),
        nodes,
        "a refused change must not touch the containers"
    );

    // With --recreate it is rebuilt with the new mount.
    let mut args = fixture.up_args();
    args.recreate = true;
    let third = up(&fixture, &args, &deps, &[]).await.unwrap();
    assert_eq!(third.action, "recreated");
    let recreated = fixture.nodes();
    assert_eq!(recreated.len(), 2);
    assert_ne!(recreated, nodes, "containers must be new");
    let binds = docker(&[
        "inspect",
        "-f",
        "{{json .HostConfig.Binds}}",
        &format!("{}-worker", fixture.cluster),
    ]);
    assert!(String::from_utf8_lossy(&binds.stdout).contains(":/more"));

    // down twice: both succeed, nothing remains.
    let app = fixture.app(&[]);
    lifecycle::run_down(&app, &fixture.down_args())
        .await
        .unwrap();
    assert!(fixture.nodes().is_empty());
    lifecycle::run_down(&app, &fixture.down_args())
        .await
        .unwrap();
}

#[tokio::test]
async fn kind_failing_midway_cleans_up_unless_retain() {
    if !docker_available("kind_failing_midway_cleans_up_unless_retain") {
        return;
    }
    let fixture = Fixture::new("fail");
    let fake = ready_api(&fixture.cluster, 1);
    let fail = [("KIND_EMULATOR_FAIL_AFTER_NODES", "1")];
    let error = up(&fixture, &fixture.up_args(), &deps(&fake), &fail)
        .await
        .unwrap_err();
    let text = error.render();
    assert!(text.contains("step `create` failed"), "{text}");
    assert!(
        text.contains("command: ") && text.contains("create cluster --name"),
        "{text}"
    );
    assert!(
        fixture.nodes().is_empty(),
        "left behind: {:?}",
        fixture.nodes()
    );

    let mut args = fixture.up_args();
    args.retain = true;
    assert!(up(&fixture, &args, &deps(&fake), &fail).await.is_err());
    assert_eq!(fixture.nodes().len(), 2, "--retain keeps the nodes");
}

#[tokio::test]
async fn a_later_step_failing_deletes_the_cluster_unless_retain() {
    if !docker_available("a_later_step_failing_deletes_the_cluster_unless_retain") {
        return;
    }
    let fixture = Fixture::new("late");
    // The API never reports the worker: the wait step runs into the deadline.
    let fake = ready_api(&fixture.cluster, 0);
    let mut args = fixture.up_args();
    args.timeout = Duration::from_secs(8);
    let error = up(&fixture, &args, &deps(&fake), &[]).await.unwrap_err();
    let text = error.render();
    assert!(text.contains("wait") && text.contains("-worker"), "{text}");
    assert!(
        fixture.nodes().is_empty(),
        "left behind: {:?}",
        fixture.nodes()
    );

    args.retain = true;
    assert!(up(&fixture, &args, &deps(&fake), &[]).await.is_err());
    assert_eq!(fixture.nodes().len(), 2, "--retain keeps the nodes");
}

#[tokio::test]
async fn interrupt_during_create_stops_kind_and_leaves_nothing() {
    if !docker_available("interrupt_during_create_stops_kind_and_leaves_nothing") {
        return;
    }
    let fixture = Fixture::new("intr");
    let fake = ready_api(&fixture.cluster, 1);
    let deps = Deps {
        connector: Connector::Client(fake.client()),
        interrupt: Interrupt::After(Duration::from_secs(3)),
    };
    let error = up(
        &fixture,
        &fixture.up_args(),
        &deps,
        &[("KIND_EMULATOR_SLOW_SECONDS", "60")],
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Interrupted);
    assert_eq!(error.exit_code() as i32, 130);
    assert!(
        fixture.nodes().is_empty(),
        "left behind: {:?}",
        fixture.nodes()
    );
}

#[tokio::test]
async fn a_second_up_for_the_same_cluster_waits_then_fails_clearly() {
    if !docker_available("a_second_up_for_the_same_cluster_waits_then_fails_clearly") {
        return;
    }
    let fixture = Fixture::new("lock");
    let lock_dir = fixture.dir.path().join("cache/devcluster/locks");
    let _held = lifecycle::lock::acquire(&lock_dir, &fixture.cluster, Duration::ZERO, |_| {})
        .await
        .unwrap();
    let fake = ready_api(&fixture.cluster, 1);
    let mut args = fixture.up_args();
    args.timeout = Duration::from_secs(1);
    let error = up(&fixture, &args, &deps(&fake), &[]).await.unwrap_err();
    assert!(
        error
            .render()
            .contains("another devcluster run is working on cluster"),
        "{}",
        error.render()
    );
    assert!(fixture.nodes().is_empty());
}

#[tokio::test]
async fn a_cluster_devcluster_did_not_create_is_never_deleted_without_recreate() {
    if !docker_available("a_cluster_devcluster_did_not_create_is_never_deleted_without_recreate") {
        return;
    }
    let fixture = Fixture::new("foreign");
    let config =
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n";
    let created = Command::new(kind_emulator())
        .args([
            "create",
            "cluster",
            "--name",
            &fixture.cluster,
            "--config",
            "-",
        ])
        .env("KUBECONFIG", fixture.dir.path().join("kubeconfig"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .map(|mut s| s.write_all(config.as_bytes()));
            child.wait()
        })
        .unwrap();
    assert!(created.success());
    let before = fixture.nodes();
    let fake = ready_api(&fixture.cluster, 1);
    let error = up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap_err();
    assert!(
        error.render().contains("devcluster did not create it"),
        "{}",
        error.render()
    );
    assert_eq!(fixture.nodes(), before);

    // `down` without a name refuses (the name comes from the profile)...
    let mut implicit = fixture.down_args();
    implicit.profile.name = None;
    std::fs::write(
        &fixture.profile,
        format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nname: {}\n",
            fixture.cluster
        ),
    )
    .unwrap();
    let refused = lifecycle::run_down(&fixture.app(&[]), &implicit)
        .await
        .unwrap_err();
    assert!(
        refused.render().contains("was not created by devcluster"),
        "{}",
        refused.render()
    );
    assert_eq!(fixture.nodes(), before);
    // ...and deletes when named explicitly.
    lifecycle::run_down(&fixture.app(&[]), &fixture.down_args())
        .await
        .unwrap();
    assert!(fixture.nodes().is_empty());
}

#[tokio::test]
async fn status_reports_drift_after_a_node_is_stopped() {
    if !docker_available("status_reports_drift_after_a_node_is_stopped") {
        return;
    }
    let fixture = Fixture::new("drift");
    let fake = ready_api(&fixture.cluster, 1);
    up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap();

    let clean = fixture.devcluster(&["status", "--name", &fixture.cluster, "-o", "json"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert_eq!(report["managed"], true);
    assert_eq!(report["nodes"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["drift"], json!([]));

    let worker = format!("{}-worker", fixture.cluster);
    assert!(docker(&["stop", "-t", "1", &worker]).status.success());
    let drifted = fixture.devcluster(&["status", "--name", &fixture.cluster, "-o", "json"]);
    assert_eq!(drifted.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&drifted.stdout).unwrap();
    let drift = report["drift"].as_array().cloned().unwrap_or_default();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(drift[0]["node"], worker);
    assert!(
        drift[0]["problem"]
            .as_str()
            .unwrap()
            .contains("not running")
    );
    assert!(
        drift[0]["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("docker start {worker}"))
    );

    let human = fixture.devcluster(&["status", "--name", &fixture.cluster]);
    let stderr = String::from_utf8_lossy(&human.stderr);
    assert!(
        stderr.contains("drift:") && stderr.contains(&worker),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_on_the_binary_exits_130_and_cleans_up() {
    if !docker_available("ctrl_c_on_the_binary_exits_130_and_cleans_up") {
        return;
    }
    let fixture = Fixture::new("sigint");
    let child = Command::new(support::devcluster_bin())
        .args([
            "up",
            "--profile",
            &fixture.profile.display().to_string(),
            "--name",
            &fixture.cluster,
            "--no-verify",
        ])
        .env_clear()
        .envs(fixture.env())
        .env("KIND_EMULATOR_SLOW_SECONDS", "60")
        .current_dir(fixture.dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until kind is in the middle of creating nodes.
    let started = std::time::Instant::now();
    while fixture.nodes().is_empty() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !fixture.nodes().is_empty(),
        "the emulator never started creating nodes"
    );
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        fixture.nodes().is_empty(),
        "left behind: {:?}",
        fixture.nodes()
    );
}

#[test]
fn down_and_status_without_docker_say_so_quickly() {
    let fixture_dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = Command::new(support::devcluster_bin())
        .args(["status", "--name", "nothing-here"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", fixture_dir.path())
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .current_dir(fixture_dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: Docker is not reachable"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
