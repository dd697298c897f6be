//! `up`, `down` and `status` on real Docker with the kind emulator; the
//! Kubernetes API side is an in-memory fake (no real API server runs here).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use devcluster::adapters::kube::cluster::Connector;
use devcluster::adapters::world::World;
use devcluster::core::error::ErrorKind;
use devcluster::operations::ProfileChoice as ProfileArgs;
use devcluster::operations::context::App;
use devcluster::operations::down::{self as downs, DownOptions as DownArgs};
use devcluster::operations::up::UpOptions as UpArgs;
use devcluster::operations::up::{Deps, Interrupt, UpResult};
use devcluster::operations::{self, up as lifecycle};
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
            no_verify: true,
            timeout: Duration::from_secs(60),
            ..UpArgs::default()
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
        interrupt: Interrupt::never(),
    }
}

async fn up(
    fixture: &Fixture,
    args: &UpArgs,
    deps: &Deps,
    extra: &[(&str, &str)],
) -> devcluster::core::error::Result<UpResult> {
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
    downs::run_down(&app, &fixture.down_args()).await.unwrap();
    assert!(fixture.nodes().is_empty());
    downs::run_down(&app, &fixture.down_args()).await.unwrap();
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

    assert!(text.contains("the half-made cluster was deleted"), "{text}");

    let mut args = fixture.up_args();
    args.retain = true;
    let error = up(&fixture, &args, &deps(&fake), &fail).await.unwrap_err();
    assert_eq!(fixture.nodes().len(), 2, "--retain keeps the nodes");
    // kind did not finish, so there is no record: the hint must not promise that
    // `up` resumes; it does not.
    let text = error.render();
    assert!(
        text.contains("cannot be resumed") && text.contains("devcluster up --recreate"),
        "{text}"
    );
    let next = up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap_err();
    assert!(
        next.render().contains("has no devcluster record"),
        "{}",
        next.render()
    );
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
    // The failed step's own advice stays, before what became of the cluster.
    assert!(
        text.contains("raise `--timeout`") && text.contains("the half-made cluster was deleted"),
        "{text}"
    );
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
        interrupt: Interrupt::after(Duration::from_secs(3)),
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
    let _held = operations::lock::acquire(&lock_dir, &fixture.cluster, Duration::ZERO, |_| {})
        .await
        .unwrap();
    let fake = ready_api(&fixture.cluster, 1);
    let mut args = fixture.up_args();
    // Waiting for the lock has its own limit, apart from `--timeout`.
    args.lock_timeout = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let error = up(&fixture, &args, &deps(&fake), &[]).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30));
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
        error.render().contains("has no devcluster record"),
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
    let refused = downs::run_down(&fixture.app(&[]), &implicit)
        .await
        .unwrap_err();
    assert!(
        refused.render().contains("has no devcluster record"),
        "{}",
        refused.render()
    );
    assert_eq!(fixture.nodes(), before);
    // ...and deletes when named explicitly.
    downs::run_down(&fixture.app(&[]), &fixture.down_args())
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

// ---------------------------------------------------------------------------
// One kind locator, create/converge, the phased record, deadlines, safety.
// ---------------------------------------------------------------------------

/// `PATH` without any directory that holds a `kind`, so only devcluster's own
/// locator can find one.
fn path_without_kind() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("kind").exists())
        .collect();
    std::env::join_paths(dirs).unwrap().into_string().unwrap()
}

impl Fixture {
    /// The environment with kind only where `--install-kind` puts it: the cache.
    fn env_with_cached_kind(&self) -> Vec<(String, String)> {
        let platform = devcluster::adapters::download::platform().unwrap();
        let cached = self.dir.path().join(format!(
            "cache/devcluster/bin/kind-{}-{platform}",
            devcluster::adapters::download::KIND_RELEASE
        ));
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        std::fs::copy(kind_emulator(), &cached).unwrap();
        self.env_without_kind()
    }

    /// The environment with no `DEVCLUSTER_KIND` and no kind on `PATH`.
    fn env_without_kind(&self) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .filter(|(k, _)| k != "DEVCLUSTER_KIND")
            .map(|(k, v)| {
                if k == "PATH" {
                    (k, path_without_kind())
                } else {
                    (k, v)
                }
            })
            .collect()
    }

    fn app_with_env(&self, env: Vec<(String, String)>) -> App {
        App::new(World {
            env: env.into_iter().collect(),
            cwd: self.dir.path().to_path_buf(),
            home: Some(self.dir.path().join("home")),
            stdin_is_terminal: false,
            stderr_is_terminal: false,
        })
    }

    fn run_binary(
        &self,
        args: &[&str],
        env: &[(String, String)],
        cwd: &std::path::Path,
    ) -> std::process::Output {
        Command::new(support::devcluster_bin())
            .args(args)
            .env_clear()
            .envs(env.iter().cloned())
            .current_dir(cwd)
            .output()
            .unwrap()
    }

    fn profile_arg(&self) -> String {
        self.profile.display().to_string()
    }
}

fn phase_in_node(cluster: &str) -> String {
    record_in_node(cluster)["phase"]
        .as_str()
        .unwrap_or("(none)")
        .to_string()
}

#[tokio::test]
async fn kind_installed_into_the_cache_is_found_by_up_doctor_and_down() {
    if !docker_available("kind_installed_into_the_cache_is_found_by_up_doctor_and_down") {
        return;
    }
    let fixture = Fixture::new("cached");
    let env = fixture.env_with_cached_kind();
    let fake = ready_api(&fixture.cluster, 1);
    // Preflight, then kind create: both with the cached kind.
    let result = lifecycle::run_up(
        &fixture.app_with_env(env.clone()),
        &fixture.up_args(),
        &deps(&fake),
    )
    .await
    .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(result.action, "created");

    let doctor = fixture.run_binary(
        &[
            "doctor",
            "--profile",
            &fixture.profile_arg(),
            "--name",
            &fixture.cluster,
            "-o",
            "json",
        ],
        &env,
        fixture.dir.path(),
    );
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let kind_check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "kind")
        .cloned()
        .unwrap();
    assert_eq!(kind_check["status"], "ok", "{kind_check}");
    let detail = kind_check["detail"].as_str().unwrap();
    assert!(
        detail.contains("cache/devcluster/bin/kind-") && detail.contains("cached pinned release"),
        "doctor must say where kind was found: {detail}"
    );

    let down = fixture.run_binary(
        &["down", "--name", &fixture.cluster],
        &env,
        fixture.dir.path(),
    );
    assert_eq!(
        down.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(fixture.nodes().is_empty());
}

#[test]
fn down_of_a_cluster_that_does_not_exist_needs_no_kind() {
    if !docker_available("down_of_a_cluster_that_does_not_exist_needs_no_kind") {
        return;
    }
    let fixture = Fixture::new("nokind");
    let env = fixture.env_without_kind();
    let down = fixture.run_binary(
        &["down", "--name", &fixture.cluster],
        &env,
        fixture.dir.path(),
    );
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert_eq!(down.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[tokio::test]
async fn a_failed_converge_keeps_the_cluster_and_the_next_up_resumes() {
    if !docker_available("a_failed_converge_keeps_the_cluster_and_the_next_up_resumes") {
        return;
    }
    let fixture = Fixture::new("resume");
    let broken = ready_api(&fixture.cluster, 1);
    // The record ConfigMap cannot be written: a converge step fails.
    broken.forbid("PATCH", "/api/v1/namespaces/kube-public/configmaps");
    let error = up(&fixture, &fixture.up_args(), &deps(&broken), &[])
        .await
        .unwrap_err();
    assert_eq!(error.exit_code() as i32, 1);
    let text = error.render();
    assert!(text.contains("step `record` failed"), "{text}");
    assert!(
        text.contains("the cluster was kept") && text.contains("devcluster up --profile"),
        "{text}"
    );
    let nodes = fixture.nodes();
    assert_eq!(nodes.len(), 2, "a failed converge must keep the cluster");
    assert_eq!(phase_in_node(&fixture.cluster), "created");
    // `status` does not call the half-made cluster fine: it says what is left
    // and how to finish it.
    let status = fixture.devcluster(&["status", "--name", &fixture.cluster]);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(
        stderr.contains("`up` has not finished with this cluster (phase created")
            && stderr.contains("devcluster up --profile"),
        "{stderr}"
    );
    // With a profile that disagrees, the note names `status`, not `verify`.
    let status = fixture.devcluster(&["status", "--name", &fixture.cluster, "--profile", "single"]);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(
        stderr.contains(&format!("`devcluster status --name {}`", fixture.cluster)),
        "{stderr}"
    );

    // The next `up` resumes converging the same containers.
    let fake = ready_api(&fixture.cluster, 1);
    let resumed = up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(resumed.action, "converged");
    assert_eq!(resumed.phase, "complete");
    assert!(resumed.steps.iter().all(|s| s.name != "create"));
    assert_eq!(fixture.nodes(), nodes, "resuming must not recreate");
    assert_eq!(phase_in_node(&fixture.cluster), "complete");
    let status = fixture.devcluster(&["status", "--name", &fixture.cluster]);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(!stderr.contains("has not finished"), "{stderr}");

    // Complete: up to date, and the kubeconfig it writes is private.
    let kubeconfig = fixture.dir.path().join("kc/config");
    let mut args = fixture.up_args();
    args.kubeconfig = Some(kubeconfig.clone());
    let again = up(&fixture, &args, &deps(&fake), &[]).await.unwrap();
    assert_eq!(again.action, "up-to-date");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the kubeconfig holds admin credentials");
}

#[tokio::test]
async fn a_cluster_kept_by_retain_is_converged_not_called_up_to_date() {
    if !docker_available("a_cluster_kept_by_retain_is_converged_not_called_up_to_date") {
        return;
    }
    let fixture = Fixture::new("retain");
    // The worker never registers: the create half fails at `wait`.
    let missing_worker = ready_api(&fixture.cluster, 0);
    let mut args = fixture.up_args();
    args.retain = true;
    // Long enough for the steps before `wait` on a loaded machine; the worker never
    // registers, so `wait` is still the step that runs out of time.
    args.timeout = Duration::from_secs(8);
    let error = up(&fixture, &args, &deps(&missing_worker), &[])
        .await
        .unwrap_err();
    assert!(error.render().contains("--retain"), "{}", error.render());
    let nodes = fixture.nodes();
    assert_eq!(nodes.len(), 2);
    assert_eq!(phase_in_node(&fixture.cluster), "created");

    let fake = ready_api(&fixture.cluster, 1);
    let next = up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(
        next.action, "converged",
        "an unfinished cluster is never up to date"
    );
    assert_eq!(fixture.nodes(), nodes);
}

#[tokio::test]
async fn an_older_record_and_an_add_on_change_converge_in_place() {
    if !docker_available("an_older_record_and_an_add_on_change_converge_in_place") {
        return;
    }
    let fixture = Fixture::new("older");
    let fake = ready_api(&fixture.cluster, 1);
    up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap();
    let nodes = fixture.nodes();
    // Rewrite the node's record in the version 1 format (no phase, no kind config),
    // as devcluster 0.1.0 wrote it.
    let mut old = record_in_node(&fixture.cluster);
    let map = old.as_object_mut().unwrap();
    map.remove("phase");
    map.remove("kindConfig");
    map.insert("version".into(), json!(1));
    let holder = format!("{}-control-plane", fixture.cluster);
    let mut child = Command::new("docker")
        .args([
            "exec",
            "-i",
            &holder,
            "sh",
            "-c",
            "cat > /kind/devcluster/record.json",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(old.to_string().as_bytes())
            .unwrap();
    }
    assert!(child.wait().unwrap().success());

    let status = fixture.devcluster(&["status", "--name", &fixture.cluster, "-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        report["managed"], true,
        "an older record stays devcluster's"
    );

    let converged = up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(converged.action, "converged");
    assert_eq!(fixture.nodes(), nodes);
    let record = record_in_node(&fixture.cluster);
    assert_eq!(record["version"], 2);
    assert_eq!(record["phase"], "complete");

    // A changed add-on setting converges in place too.
    fixture.write_profile("storage:\n  tolerateTaintedNodes: false\n");
    let changed = up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(changed.action, "converged");
    assert_eq!(fixture.nodes(), nodes);
}

#[tokio::test]
async fn the_recreate_diff_is_printed_once_and_says_what_forces_it() {
    if !docker_available("the_recreate_diff_is_printed_once_and_says_what_forces_it") {
        return;
    }
    let fixture = Fixture::new("diff");
    let fake = ready_api(&fixture.cluster, 1);
    up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap();
    std::fs::create_dir_all(fixture.dir.path().join("more")).unwrap();
    fixture.write_profile(
        "  - hostPath: ./more\n    containerPath: /more\nstorage:\n  tolerateTaintedNodes: false\n",
    );
    let output = fixture.devcluster(&[
        "up",
        "--profile",
        &fixture.profile_arg(),
        "--name",
        &fixture.cluster,
        "--no-verify",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mount_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("mount ") && l.contains("/more"))
        .collect();
    assert_eq!(
        mount_lines.len(),
        2,
        "one line per node, printed once: {stderr}"
    );
    assert!(
        mount_lines
            .iter()
            .all(|l| l.contains("(needs a new cluster)")),
        "{stderr}"
    );
    assert_eq!(
        stderr
            .matches("~ storage settings (applies in place)")
            .count(),
        1,
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_manifest_fails_before_kind_runs() {
    if !docker_available("an_unreachable_manifest_fails_before_kind_runs") {
        return;
    }
    let fixture = Fixture::new("fetch");
    std::fs::write(
        &fixture.profile,
        format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  workers: 1\n\
             ingress:\n  enabled: true\n  controller: custom\n  httpPort: 0\n  httpsPort: 0\n  manifest:\n    url: https://127.0.0.1:1/deploy.yaml\n    sha256: {}\n    namespace: edge\n    podSelector:\n      app: edge\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let fake = ready_api(&fixture.cluster, 1);
    let started = std::time::Instant::now();
    let error = up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap_err();
    let text = error.render();
    assert!(text.contains("step `fetch` failed"), "{text}");
    assert!(text.contains("nothing was created"), "{text}");
    assert!(fixture.nodes().is_empty());
    assert!(
        !text.contains("create cluster --name"),
        "kind must not have run: {text}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// A node as the kubelet reports it without a network plugin: NotReady
/// (kubelet `pkg/kubelet/nodestatus/setters.go` ReadyCondition, with the runtime's
/// "cni plugin not initialized").
fn add_node_without_cni(fake: &FakeApi, name: &str) {
    fake.put(
        &format!("/api/v1/nodes/{name}"),
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                    "message": "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"}],
                "nodeInfo": {"kubeletVersion": "v1.36.1", "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "containerd://2.1", "kernelVersion": "6", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux", "osImage": "Debian", "systemUUID": ""}
            }
        }),
    );
}

#[tokio::test]
async fn a_profile_without_a_cni_waits_for_registration_and_says_how_to_continue() {
    if !docker_available("a_profile_without_a_cni_waits_for_registration_and_says_how_to_continue")
    {
        return;
    }
    let fixture = Fixture::new("nocni");
    fixture.write_profile("networking:\n  disableDefaultCNI: true\n");
    let fake = FakeApi::new();
    add_node_without_cni(&fake, &format!("{}-control-plane", fixture.cluster));
    add_node_without_cni(&fake, &format!("{}-worker", fixture.cluster));
    let mut args = fixture.up_args();
    args.timeout = Duration::from_secs(10);
    let result = up(&fixture, &args, &deps(&fake), &[])
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(result.phase, "created");
    assert!(
        result
            .skipped
            .iter()
            .any(|s| s.starts_with("storage") && s.contains("disableDefaultCNI")),
        "{:?}",
        result.skipped
    );
    let nodes = fixture.nodes();
    assert_eq!(nodes.len(), 2, "the cluster stays");
    assert_eq!(phase_in_node(&fixture.cluster), "created");

    // A CNI was installed: the next `up` finishes.
    let ready = ready_api(&fixture.cluster, 1);
    let finished = up(&fixture, &args, &deps(&ready), &[])
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(finished.action, "converged");
    assert_eq!(finished.phase, "complete");
    assert_eq!(fixture.nodes(), nodes);
}

#[tokio::test]
async fn the_timeout_starts_when_kind_create_returns_and_create_has_its_own_limit() {
    if !docker_available("the_timeout_starts_when_kind_create_returns_and_create_has_its_own_limit")
    {
        return;
    }
    let fixture = Fixture::new("deadline");
    // kind takes 5 s (a slow image pull); the worker registers 2 s after that.
    let fake = ready_api(&fixture.cluster, 0);
    let late = fake.clone();
    let worker = format!("{}-worker", fixture.cluster);
    let created = std::time::Instant::now();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(7));
        late.add_ready_node(&worker, json!([]));
    });
    let mut args = fixture.up_args();
    args.timeout = Duration::from_secs(4);
    let result = up(
        &fixture,
        &args,
        &deps(&fake),
        &[("KIND_EMULATOR_SLOW_SECONDS", "5")],
    )
    .await
    .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(result.action, "created");
    assert!(created.elapsed() > Duration::from_secs(5));
    downs::run_down(&fixture.app(&[]), &fixture.down_args())
        .await
        .unwrap();

    // kind create itself is stopped at its own limit, and rolled back.
    let mut args = fixture.up_args();
    args.create_timeout = Duration::from_secs(2);
    let error = up(
        &fixture,
        &args,
        &deps(&fake),
        &[("KIND_EMULATOR_SLOW_SECONDS", "60")],
    )
    .await
    .unwrap_err();
    assert!(
        error.render().contains("did not finish within 2s"),
        "{}",
        error.render()
    );
    assert!(
        fixture.nodes().is_empty(),
        "left behind: {:?}",
        fixture.nodes()
    );
}

#[tokio::test]
async fn a_stopped_cluster_is_still_known_as_devclusters() {
    if !docker_available("a_stopped_cluster_is_still_known_as_devclusters") {
        return;
    }
    let fixture = Fixture::new("stopped");
    let fake = ready_api(&fixture.cluster, 1);
    up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap();
    for node in ["control-plane", "worker"] {
        assert!(
            docker(&["stop", "-t", "0", &format!("{}-{node}", fixture.cluster)])
                .status
                .success()
        );
    }
    let status = fixture.devcluster(&["status", "--name", &fixture.cluster, "-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["managed"], true, "read through Docker's archive API");
    assert_eq!(report["phase"], "complete");

    // `down` without --name deletes only devcluster's clusters: this one is.
    let mut implicit = fixture.down_args();
    implicit.profile.name = None;
    let text = std::fs::read_to_string(&fixture.profile).unwrap();
    std::fs::write(
        &fixture.profile,
        format!("{text}name: {}\n", fixture.cluster),
    )
    .unwrap();
    downs::run_down(&fixture.app(&[]), &implicit)
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(fixture.nodes().is_empty());
}

#[tokio::test]
async fn verify_without_a_profile_checks_the_recorded_plan() {
    if !docker_available("verify_without_a_profile_checks_the_recorded_plan") {
        return;
    }
    let fixture = Fixture::new("vplan");
    let fake = ready_api(&fixture.cluster, 1);
    up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap();
    // Where no devcluster.yaml is: exactly what `up` prints as the next step.
    let elsewhere = tempfile::tempdir().unwrap();
    let env = fixture.env();
    let output = fixture.run_binary(
        &["verify", "--name", &fixture.cluster, "--timeout", "5s"],
        &env,
        elsewhere.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "using the plan recorded in cluster `{}`",
            fixture.cluster
        )) && stderr.contains("2 node(s)"),
        "{stderr}"
    );
    let output = fixture.run_binary(
        &[
            "verify",
            "--name",
            &fixture.cluster,
            "--profile",
            "single",
            "--timeout",
            "5s",
        ],
        &env,
        elsewhere.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("profile builtin:single differs from what cluster"),
        "{stderr}"
    );
}

/// Starts `devcluster up` on the emulator with `env`, stderr collected.
fn spawn_up(fixture: &Fixture, env: &[(&str, &str)]) -> std::process::Child {
    Command::new(support::devcluster_bin())
        .args([
            "up",
            "--profile",
            &fixture.profile_arg(),
            "--name",
            &fixture.cluster,
            "--no-verify",
            "--timeout",
            "2m",
        ])
        .env_clear()
        .envs(fixture.env())
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .current_dir(fixture.dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(pid: u32, name: &str) {
    assert!(
        Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

#[test]
fn sigterm_and_sighup_during_create_stop_kinds_process_group_and_roll_back() {
    if !docker_available("sigterm_and_sighup_during_create_stop_kinds_process_group_and_roll_back")
    {
        return;
    }
    for name in ["TERM", "HUP"] {
        let fixture = Fixture::new(&format!("sig{}", name.to_lowercase()));
        let pid_file = fixture.dir.path().join("hung.pid");
        let child = spawn_up(
            &fixture,
            &[(
                "KIND_EMULATOR_HANG_PID_FILE",
                &pid_file.display().to_string(),
            )],
        );
        // kind has made the nodes and waits on a child of its own that hangs.
        wait_until("kind's hanging child", Duration::from_secs(60), || {
            pid_file.exists()
        });
        wait_until("the pid", Duration::from_secs(5), || {
            std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.is_empty())
        });
        let hung = std::fs::read_to_string(&pid_file).unwrap();
        assert!(alive(&hung));
        signal(child.id(), name);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "SIG{name}: {stderr}");
        assert!(stderr.contains(&format!("SIG{name}")), "{stderr}");
        assert!(
            fixture.nodes().is_empty(),
            "SIG{name} left behind: {:?}",
            fixture.nodes()
        );
        wait_until(
            "kind's child to end with its group",
            Duration::from_secs(15),
            || !alive(&hung),
        );
    }
}

#[test]
fn a_second_interrupt_abandons_the_cleanup_and_names_what_is_left() {
    if !docker_available("a_second_interrupt_abandons_the_cleanup_and_names_what_is_left") {
        return;
    }
    let fixture = Fixture::new("twice");
    let pid_file = fixture.dir.path().join("hung.pid");
    let child = spawn_up(
        &fixture,
        &[
            (
                "KIND_EMULATOR_HANG_PID_FILE",
                &pid_file.display().to_string(),
            ),
            ("KIND_EMULATOR_DELETE_SLOW_SECONDS", "60"),
        ],
    );
    wait_until("kind's hanging child", Duration::from_secs(60), || {
        pid_file.exists()
    });
    signal(child.id(), "INT");
    // The first interrupt stops kind, then cleanup runs `kind delete` (slow here).
    std::thread::sleep(Duration::from_secs(3));
    let second = std::time::Instant::now();
    signal(child.id(), "INT");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(second.elapsed() < Duration::from_secs(10), "{stderr}");
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cleanup abandoned"), "{stderr}");
    assert!(
        stderr.contains(&format!("devcluster down --name {}", fixture.cluster)),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_interruption_during_converge_keeps_the_cluster() {
    if !docker_available("an_interruption_during_converge_keeps_the_cluster") {
        return;
    }
    let fixture = Fixture::new("intconv");
    // Probe pods never finish on the fake API, so `verify` waits until interrupted.
    let fake = ready_api(&fixture.cluster, 1);
    let deps = Deps {
        connector: Connector::Client(fake.client()),
        interrupt: Interrupt::after(Duration::from_secs(8)),
    };
    let mut args = fixture.up_args();
    args.no_verify = false;
    let error = up(&fixture, &args, &deps, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Interrupted, "{}", error.render());
    assert!(
        error.render().contains("the cluster was kept"),
        "{}",
        error.render()
    );
    assert_eq!(fixture.nodes().len(), 2, "converge never deletes");
    assert_eq!(phase_in_node(&fixture.cluster), "converged");
    // verify heard `up`'s interruption and finished its own cleanup before `up`
    // returned: no sentinel in the mounted directory, no probe namespace.
    assert!(
        error.render().contains("probe namespace were removed"),
        "{}",
        error.render()
    );
    let data = fixture.dir.path().join("data");
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "sentinel left behind in {}",
        data.display()
    );
    assert!(
        fake.objects_under("/api/v1/namespaces/devcluster-verify-")
            .is_empty(),
        "probe namespace left behind"
    );
}

#[tokio::test]
async fn a_recreate_whose_preflight_fails_keeps_the_old_cluster() {
    if !docker_available("a_recreate_whose_preflight_fails_keeps_the_old_cluster") {
        return;
    }
    let fixture = Fixture::new("recheck");
    let fake = ready_api(&fixture.cluster, 1);
    up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap();
    let nodes = fixture.nodes();
    // A new mount whose host path does not exist: only a new cluster could add
    // it, and preflight refuses it.
    fixture.write_profile("  - hostPath: ./missing\n    containerPath: /missing\n");
    let mut args = fixture.up_args();
    args.recreate = true;
    let error = up(&fixture, &args, &deps(&fake), &[]).await.unwrap_err();
    let text = error.render();
    assert!(text.contains("preflight check(s) failed"), "{text}");
    assert!(text.contains("was not deleted"), "{text}");
    assert_eq!(
        fixture.nodes(),
        nodes,
        "a failed check must not cost the existing cluster"
    );
}

#[tokio::test]
async fn a_failed_verify_keeps_the_cluster_and_says_so_once() {
    if !docker_available("a_failed_verify_keeps_the_cluster_and_says_so_once") {
        return;
    }
    let fixture = Fixture::new("vfail");
    // Probe pods never finish on the fake API: verify fails at the deadline.
    let fake = ready_api(&fixture.cluster, 1);
    let mut args = fixture.up_args();
    args.no_verify = false;
    args.timeout = Duration::from_secs(10);
    let error = up(&fixture, &args, &deps(&fake), &[]).await.unwrap_err();
    assert_eq!(error.exit_code() as i32, 1, "{}", error.render());
    let text = error.render();
    assert!(text.contains("step `verify` failed"), "{text}");
    assert_eq!(
        fixture.nodes().len(),
        2,
        "a failed verify keeps the cluster"
    );
    assert_eq!(phase_in_node(&fixture.cluster), "converged");
    let hint = error.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(&format!("devcluster verify --name {}", fixture.cluster))
            && hint.contains("devcluster up --profile"),
        "{hint}"
    );
    assert_eq!(hint.matches("kept").count(), 1, "said once: {hint}");
    assert!(!hint.contains("--retain"), "{hint}");
    assert!(
        fake.objects_under("/api/v1/namespaces/devcluster-verify-")
            .is_empty(),
        "probe namespace left behind"
    );
}

#[tokio::test]
async fn a_failed_step_leads_with_its_own_error_and_names_the_step_after_it() {
    if !docker_available("a_failed_step_leads_with_its_own_error_and_names_the_step_after_it") {
        return;
    }
    let fixture = Fixture::new("headline");
    std::fs::write(
        &fixture.profile,
        format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  workers: 1\n\
             ingress:\n  enabled: true\n  controller: custom\n  httpPort: 0\n  httpsPort: 0\n  manifest:\n    url: https://127.0.0.1:1/deploy.yaml\n    sha256: {}\n    namespace: edge\n    podSelector:\n      app: edge\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let fake = ready_api(&fixture.cluster, 1);
    let error = up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap_err();
    let text = error.render();
    let headline = text.lines().next().unwrap_or_default();
    assert!(
        headline.starts_with("error: ") && !headline.contains("step `fetch`"),
        "the download's own failure leads: {text}"
    );
    assert_eq!(error.message, headline.trim_start_matches("error: "));
    // The step comes after the cause, before the hint.
    let step = text.find("note: step `fetch` failed").expect(&text);
    let hint = text.find("hint: ").expect(&text);
    assert!(step < hint, "{text}");
}

/// An interruption that comes while `up` waits for the nodes, after kind create
/// returned: the cleanup stack deletes the half-made cluster and releases the lock.
#[tokio::test]
async fn an_interruption_after_kind_create_rolls_back_and_releases_the_lock() {
    if !docker_available("an_interruption_after_kind_create_rolls_back_and_releases_the_lock") {
        return;
    }
    let fixture = Fixture::new("intwait");
    // The API never reports the worker, so `wait` waits; the interruption comes
    // once `up` has asked the API for its nodes.
    let fake = ready_api(&fixture.cluster, 0);
    let asked = fake.clone();
    let interrupt = Interrupt::from_fn(move |n| {
        let asked = asked.clone();
        async move {
            if n > 1 {
                return std::future::pending().await;
            }
            while !asked
                .requests()
                .iter()
                .any(|r| r.starts_with("GET /api/v1/nodes"))
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            "an interruption (test)"
        }
    });
    let deps = Deps {
        connector: Connector::Client(fake.client()),
        interrupt,
    };
    let error = up(&fixture, &fixture.up_args(), &deps, &[])
        .await
        .unwrap_err();
    let text = error.render();
    assert_eq!(error.kind, ErrorKind::Interrupted, "{text}");
    assert!(
        text.contains("interrupted while creating cluster")
            && text.contains("the half-made cluster was deleted"),
        "{text}"
    );
    assert!(
        fixture.nodes().is_empty(),
        "left behind: {:?}",
        fixture.nodes()
    );
    let lock_dir = fixture.dir.path().join("cache/devcluster/locks");
    operations::lock::acquire(&lock_dir, &fixture.cluster, Duration::ZERO, |_| {})
        .await
        .expect("the lock was released");
}

/// A step that hangs past the deadline (an API server that never answers) is
/// cut short by the runner, and the cleanup stack deletes the half-made cluster.
#[tokio::test]
async fn a_step_hanging_past_the_deadline_is_cut_short_and_rolled_back() {
    if !docker_available("a_step_hanging_past_the_deadline_is_cut_short_and_rolled_back") {
        return;
    }
    let fixture = Fixture::new("hang");
    let fake = ready_api(&fixture.cluster, 1);
    fake.stall("GET", "/api/v1/nodes");
    let mut args = fixture.up_args();
    args.timeout = Duration::from_secs(8);
    let error = up(&fixture, &args, &deps(&fake), &[]).await.unwrap_err();
    let text = error.render();
    assert_eq!(error.exit_code() as i32, 1, "{text}");
    assert!(
        text.contains("step `wait` did not finish before the deadline")
            && text.contains("raise `--timeout`")
            && text.contains("the half-made cluster was deleted"),
        "{text}"
    );
    assert!(
        fixture.nodes().is_empty(),
        "left behind: {:?}",
        fixture.nodes()
    );
}

/// `devcluster list` names a cluster `up` made, with its profile and phase, keeps
/// naming it once its nodes are stopped (the record is read through the archive
/// API), and only counts a kind cluster devcluster did not make.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_the_clusters_devcluster_made_running_or_stopped() {
    if !docker_available("list_shows_the_clusters_devcluster_made_running_or_stopped") {
        return;
    }
    let fixture = Fixture::new("list");
    let fake = ready_api(&fixture.cluster, 1);
    up(&fixture, &fixture.up_args(), &deps(&fake), &[])
        .await
        .unwrap();
    let foreign = unique_name("foreign");
    let _foreign = Cleanup::new().cluster(&foreign);
    let made = Command::new(kind_emulator())
        .args(["create", "cluster", "--name", &foreign])
        .env("KIND_EMULATOR_IMAGE", support::TEST_IMAGE)
        .env("KUBECONFIG", fixture.dir.path().join("foreign-kubeconfig"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let listed = |fixture: &Fixture| {
        let run = fixture.devcluster(&["list", "-o", "json"]);
        assert_eq!(
            run.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&run.stdout).unwrap()
    };
    let list = listed(&fixture);
    let ours = list["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == fixture.cluster.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{} not listed: {list:#}", fixture.cluster));
    assert_eq!(ours["state"], "running");
    assert_eq!(ours["nodes"], 2);
    assert_eq!(ours["phase"], "complete");
    assert_eq!(ours["profile"], fixture.profile.display().to_string());
    let others: Vec<&str> = list["others"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.as_str())
        .collect();
    assert!(others.contains(&foreign.as_str()), "{list:#}");
    assert!(
        !list["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == foreign.as_str()),
        "a cluster devcluster did not make is listed as its own"
    );

    for node in ["control-plane", "worker"] {
        let name = format!("{}-{node}", fixture.cluster);
        assert!(docker(&["stop", "-t", "1", &name]).status.success());
    }
    let list = listed(&fixture);
    let ours = list["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == fixture.cluster.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("a stopped cluster is no longer listed: {list:#}"));
    assert_eq!(ours["state"], "stopped");
}
