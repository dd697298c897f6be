//! The local registry on real Docker: the container `up` makes, reuses and `down`
//! removes (only when devcluster made it and no other cluster uses it), a push
//! through the Engine API, `up` and `down` on the kind emulator, and verify's
//! layered explanations when the pull fails.
//!
//! The registry image is built from Debian's `docker-registry` package by
//! `tests/support/build-registry-image.sh` (`.ci/run` runs it): no image can be
//! pulled here, so every profile points `registry.image` at it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use devcluster::adapters::docker::{CLUSTER_LABEL, Docker, ROLE_LABEL};
use devcluster::adapters::kube::cluster::{Connector, Kube};
use devcluster::adapters::world::World;
use devcluster::core::plan::{ClusterPlan, RegistryPlan};
use devcluster::core::record::{Phase, Record};
use devcluster::operations::ProfileChoice;
use devcluster::operations::context::App;
use devcluster::operations::down::{DownOptions, run_down};
use devcluster::operations::registry::{self as local_registry, Container, OWNER_LABEL, Removal};
use devcluster::operations::up::{Deps, Interrupt, UpOptions, run_up};
use devcluster::operations::verify::report::{Check, Layer, Report, Status};
use devcluster::operations::verify::{self, Options, Target};
use serde_json::json;
use support::fake_kube::{FakeApi, PodRun};
use support::{Cleanup, TEST_IMAGE, docker, docker_available, kind_emulator, unique_name};

/// The registry image `tests/support/build-registry-image.sh` builds.
const REGISTRY_IMAGE: &str = "devcluster-test/registry:2";

/// Docker and both test images are there (or, under `DEVCLUSTER_REQUIRE_DOCKER=1`,
/// the test fails saying which is missing).
fn ready(test: &str) -> bool {
    if !docker_available(test) {
        return false;
    }
    let image = docker(&["image", "inspect", REGISTRY_IMAGE]);
    if image.status.success() {
        return true;
    }
    let why =
        format!("{REGISTRY_IMAGE} is missing: run `bash tests/support/build-registry-image.sh`");
    assert!(!support::docker_required(), "{test}: {why}");
    eprintln!("SKIPPED {test}: {why}");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn registry_plan(port: u16) -> RegistryPlan {
    RegistryPlan {
        container: local_registry_name(port),
        host_port: port,
        listen_address: "127.0.0.1".into(),
        image: REGISTRY_IMAGE.into(),
    }
}

fn local_registry_name(port: u16) -> String {
    format!("devcluster-registry-{port}")
}

/// `GET path` on the registry's host port, retried while the registry starts.
fn get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = Command::new("curl")
            .args(["-fsS", &format!("http://127.0.0.1:{port}{path}")])
            .output();
        match out {
            Ok(out) if out.status.success() => return text(&out.stdout),
            Ok(out) if Instant::now() >= deadline => {
                panic!("GET {path} on {port} failed: {}", text(&out.stderr))
            }
            Err(e) => panic!("curl cannot run: {e}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn inspect(container: &str, format: &str) -> String {
    let out = docker(&["inspect", "-f", format, container]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn the_registry_is_made_on_loopback_reused_restarted_and_pushed_to_through_the_engine_api() {
    if !ready(
        "the_registry_is_made_on_loopback_reused_restarted_and_pushed_to_through_the_engine_api",
    ) {
        return;
    }
    let port = free_port();
    let registry = registry_plan(port);
    let _cleanup = Cleanup::new().container(&registry.container);
    let client = Docker::connect(&World::from_process()).await.unwrap();

    let made = local_registry::ensure_container(&client, &registry)
        .await
        .unwrap();
    assert_eq!(made, Container::Created);
    // What `up` waits for once it made the registry: afterwards one GET, not
    // retried, finds it answering (a push right after `up` would).
    local_registry::wait_answering(&registry, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let once = Command::new("curl")
        .args(["-fsS", &format!("http://127.0.0.1:{port}/v2/")])
        .output()
        .unwrap();
    assert!(once.status.success(), "{}", text(&once.stderr));
    assert_eq!(
        inspect(&registry.container, "{{json .HostConfig.PortBindings}}"),
        format!("{{\"5000/tcp\":[{{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"{port}\"}}]}}")
    );
    assert_eq!(
        inspect(
            &registry.container,
            &format!("{{{{index .Config.Labels \"{OWNER_LABEL}\"}}}}")
        ),
        port.to_string()
    );
    assert_eq!(
        inspect(&registry.container, "{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    assert_eq!(get(port, "/v2/"), "{}");

    // Running and devcluster's: reused as it is. Stopped: started again.
    let id = inspect(&registry.container, "{{.Id}}");
    assert_eq!(
        local_registry::ensure_container(&client, &registry)
            .await
            .unwrap(),
        Container::Reused
    );
    assert!(
        docker(&["stop", "-t", "1", &registry.container])
            .status
            .success()
    );
    assert_eq!(
        local_registry::ensure_container(&client, &registry)
            .await
            .unwrap(),
        Container::Started
    );
    assert_eq!(inspect(&registry.container, "{{.Id}}"), id);
    assert_eq!(inspect(&registry.container, "{{.State.Running}}"), "true");
    // A restarted registry listens a moment after its container runs (verify's
    // probe asks `GET /v2/` before it pushes, too).
    assert_eq!(get(port, "/v2/"), "{}");

    // A push through the Engine API lands in the registry.
    let repository = format!("localhost:{port}/devcluster-probe");
    let tag = unique_name("push");
    client
        .tag_image(TEST_IMAGE, &repository, &tag)
        .await
        .unwrap();
    client.push_image(&repository, &tag).await.unwrap();
    client
        .untag_image(&format!("{repository}:{tag}"))
        .await
        .unwrap();
    let tags = get(port, "/v2/devcluster-probe/tags/list");
    assert!(tags.contains(&format!("\"{tag}\"")), "{tags}");
    assert!(
        !docker(&["image", "inspect", &format!("{repository}:{tag}")])
            .status
            .success(),
        "the pushed tag is dropped on the host again"
    );
    // A push to a port nothing answers on fails with Docker's reason.
    let nowhere = format!("localhost:{}/devcluster-probe", free_port());
    client.tag_image(TEST_IMAGE, &nowhere, &tag).await.unwrap();
    let refused = client.push_image(&nowhere, &tag).await.unwrap_err();
    let _ = client.untag_image(&format!("{nowhere}:{tag}")).await;
    assert!(
        refused.to_string().contains("connection refused"),
        "{refused}"
    );

    // Nobody else uses it: down's removal takes it away.
    assert_eq!(
        local_registry::remove_unused(&client, "no-such-cluster", &registry)
            .await
            .unwrap(),
        Removal::Removed
    );
    assert!(!docker(&["inspect", &registry.container]).status.success());
    assert_eq!(
        local_registry::remove_unused(&client, "no-such-cluster", &registry)
            .await
            .unwrap(),
        Removal::Absent
    );
}

/// A registry that never answers fails the wait at its deadline, naming the
/// container and what the port said.
#[tokio::test]
async fn a_registry_that_does_not_answer_fails_the_wait_naming_it() {
    let port = free_port();
    let registry = registry_plan(port);
    let started = Instant::now();
    let error =
        local_registry::wait_answering(&registry, Instant::now() + Duration::from_millis(600))
            .await
            .unwrap_err()
            .render();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error.contains(&format!(
            "the registry `{}` does not answer on 127.0.0.1:{port}",
            registry.container
        )),
        "{error}"
    );
    assert!(error.contains("cannot connect"), "{error}");
    assert!(error.contains("docker logs"), "{error}");
}

#[tokio::test]
async fn a_container_of_the_registry_s_name_devcluster_did_not_make_is_refused_and_kept() {
    if !ready("a_container_of_the_registry_s_name_devcluster_did_not_make_is_refused_and_kept") {
        return;
    }
    let port = free_port();
    let registry = registry_plan(port);
    let _cleanup = Cleanup::new().container(&registry.container);
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &registry.container,
        TEST_IMAGE,
        "sleep",
        "600",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let client = Docker::connect(&World::from_process()).await.unwrap();
    let error = local_registry::ensure_container(&client, &registry)
        .await
        .unwrap_err();
    let rendered = error.render();
    assert!(
        rendered.contains(&format!(
            "a container named `{}` exists and devcluster did not create it",
            registry.container
        )),
        "{rendered}"
    );
    assert!(rendered.contains("registry.hostPort"), "{rendered}");
    assert_eq!(
        local_registry::remove_unused(&client, "any", &registry)
            .await
            .unwrap(),
        Removal::NotDevclusters
    );
    assert_eq!(inspect(&registry.container, "{{.State.Running}}"), "true");
}

/// An app whose kind is the emulator, in `dir`.
fn app(dir: &Path) -> App {
    let mut env: std::collections::BTreeMap<String, String> = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", dir.join("home").display().to_string()),
        ("XDG_CACHE_HOME", dir.join("cache").display().to_string()),
        ("KUBECONFIG", dir.join("kubeconfig").display().to_string()),
        ("DEVCLUSTER_KIND", kind_emulator().display().to_string()),
        ("KIND_EMULATOR_VERSION", "v0.30.0".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        env.insert("DOCKER_HOST".into(), host);
    }
    std::fs::create_dir_all(dir.join("home")).unwrap();
    App::new(World {
        env,
        cwd: dir.to_path_buf(),
        home: Some(dir.join("home")),
        stdin_is_terminal: false,
        stderr_is_terminal: false,
    })
}

fn ready_api(cluster: &str, workers: usize) -> FakeApi {
    let fake = FakeApi::new();
    fake.add_ready_node(&format!("{cluster}-control-plane"), json!([]));
    for i in 1..=workers {
        let suffix = if i == 1 { String::new() } else { i.to_string() };
        fake.add_ready_node(&format!("{cluster}-worker{suffix}"), json!([]));
    }
    fake.add_available_coredns();
    fake
}

fn profile_text(port: u16) -> String {
    format!(
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes: {{workers: 1}}\nregistry:\n  enabled: true\n  hostPort: {port}\n  image: {REGISTRY_IMAGE}\n"
    )
}

fn cat(container: &str, path: &str) -> Option<String> {
    let out = docker(&["exec", container, "cat", path]);
    out.status.success().then(|| text(&out.stdout))
}

#[tokio::test]
async fn up_runs_the_registry_for_the_nodes_and_down_removes_it_once_no_cluster_uses_it() {
    if !ready("up_runs_the_registry_for_the_nodes_and_down_removes_it_once_no_cluster_uses_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let registry = registry_plan(port);
    let (first, second) = (unique_name("rega"), unique_name("regb"));
    let _cleanup = Cleanup::new()
        .cluster(&first)
        .cluster(&second)
        .container(&registry.container);
    let profile = dir.path().join("devcluster.yaml");
    std::fs::write(&profile, profile_text(port)).unwrap();
    let app = app(dir.path());
    let args = |name: &str| UpOptions {
        profile: ProfileChoice {
            profile: Some(profile.display().to_string()),
            name: Some(name.to_string()),
        },
        no_verify: true,
        timeout: Duration::from_secs(60),
        ..UpOptions::default()
    };
    let mut seconds = Vec::new();
    for name in [&first, &second] {
        let fake = ready_api(name, 1);
        let deps = Deps {
            connector: Connector::Client(fake.client()),
            interrupt: Interrupt::never(),
        };
        let result = run_up(&app, &args(name), &deps).await.unwrap();
        assert_eq!(result.action, "created");
        let step = result
            .steps
            .iter()
            .find(|s| s.name == "registry")
            .unwrap_or_else(|| panic!("no registry step: {:?}", result.steps));
        let expected = if name == &first { "created" } else { "reused" };
        assert!(
            step.detail.starts_with(&format!(
                "{expected} {} on 127.0.0.1:{port}; 2 node(s) pull localhost:{port}",
                registry.container
            )),
            "{}",
            step.detail
        );
        seconds.push(step.seconds);
        // Every node: containerd sends localhost:<port> to the registry by name.
        for node in [format!("{name}-control-plane"), format!("{name}-worker")] {
            assert_eq!(
                cat(
                    &node,
                    &format!("/etc/containerd/certs.d/localhost:{port}/hosts.toml")
                )
                .as_deref(),
                Some(format!("[host.\"http://{}:5000\"]\n", registry.container).as_str()),
                "{node}"
            );
            // The node reaches it over the `kind` network by that name.
            let answer = docker(&[
                "exec",
                &node,
                "wget",
                "-q",
                "-O-",
                &format!("http://{}:5000/v2/", registry.container),
            ]);
            assert_eq!(text(&answer.stdout), "{}", "{}", text(&answer.stderr));
        }
        let hosting = fake
            .object("/api/v1/namespaces/kube-public/configmaps/local-registry-hosting")
            .expect("the KEP-1755 ConfigMap");
        assert_eq!(
            hosting["data"]["localRegistryHosting.v1"],
            format!(
                "host: \"localhost:{port}\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n"
            )
        );
    }
    eprintln!("registry step: {seconds:?} s (created, reused)");
    // The registry removed behind devcluster's back: the next `up` converges and
    // makes it again instead of calling the cluster up to date.
    assert!(docker(&["rm", "-f", &registry.container]).status.success());
    let fake = ready_api(&second, 1);
    let deps = Deps {
        connector: Connector::Client(fake.client()),
        interrupt: Interrupt::never(),
    };
    let again = run_up(&app, &args(&second), &deps).await.unwrap();
    assert_eq!(again.action, "converged");
    assert_eq!(inspect(&registry.container, "{{.State.Running}}"), "true");
    let unchanged = run_up(&app, &args(&second), &deps).await.unwrap();
    assert_eq!(unchanged.action, "up-to-date");
    assert!(
        inspect(&registry.container, "{{json .NetworkSettings.Networks}}").contains("\"kind\"")
    );

    let down = |name: &str| DownOptions {
        profile: ProfileChoice {
            profile: None,
            name: Some(name.to_string()),
        },
        all: false,
        kubeconfig: None,
    };
    // The second cluster still uses it: deleting the first keeps it.
    run_down(&app, &down(&first)).await.unwrap();
    let client = Docker::connect(&World::from_process()).await.unwrap();
    assert!(client.list_nodes(Some(&first)).await.unwrap().is_empty());
    assert_eq!(inspect(&registry.container, "{{.State.Running}}"), "true");
    assert_eq!(
        local_registry::other_users(&client, &first, &registry)
            .await
            .unwrap(),
        std::slice::from_ref(&second)
    );
    // The last one goes: so does the registry.
    run_down(&app, &down(&second)).await.unwrap();
    assert!(!docker(&["inspect", &registry.container]).status.success());
}

/// Plans `body` for cluster `name` with the library (no I/O beyond the profile).
fn plan_of(name: &str, port: u16) -> ClusterPlan {
    let profile = devcluster::core::profile::Profile::decode(&profile_text(port)).unwrap();
    let input = devcluster::core::plan::PlanInput {
        profile: &profile,
        name_override: Some(name),
        base_dir: Path::new("/"),
        home_dir: None,
        source: "test".into(),
        file: None,
    };
    devcluster::core::plan::plan(&input).unwrap().plan
}

/// Creates `plan`'s nodes with the emulator, and writes its record on them.
fn create(plan: &ClusterPlan, dir: &Path) {
    let mut child = Command::new(kind_emulator())
        .args(["create", "cluster", "--name", &plan.name, "--config", "-"])
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
        .write_all(devcluster::core::kindconfig::render(plan).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record = Record::new(plan, Phase::Complete).to_json();
    let node = format!("{}-control-plane", plan.name);
    let mut writer = Command::new("docker")
        .args([
            "exec",
            "-i",
            &node,
            "sh",
            "-c",
            "mkdir -p /kind/devcluster && cat > /kind/devcluster/record.json",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writer
        .stdin
        .take()
        .unwrap()
        .write_all(record.as_bytes())
        .unwrap();
    assert!(writer.wait().unwrap().success());
}

/// The kubelet and containerd of a kind node, for the registry probe's pods: the
/// image `localhost:<port>/REPO:TAG` is resolved as containerd's CRI resolver does
/// with `config_path` (containerd `remotes/docker/config/hosts.go`: the hosts of
/// `certs.d/<host>/hosts.toml`, else the host itself), by fetching the manifest from
/// inside the pod's node; a failed fetch shows as the kubelet shows a failed pull
/// (`pkg/kubelet/images/image_manager.go`: a `Failed` event "Failed to pull image",
/// then `ImagePullBackOff`). Other probes' pods succeed.
fn api_pulling_in_nodes(plan: &ClusterPlan) -> FakeApi {
    let fake = FakeApi::new();
    for node in &plan.nodes {
        fake.add_ready_node(&node.name, json!([]));
    }
    fake.on_pod_create(move |pod| {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        if !name.starts_with("registry") {
            return Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n"));
        }
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
        let image = pod["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let (host, rest) = image.split_once('/').unwrap();
        let (repository, tag) = rest.rsplit_once(':').unwrap();
        let hosts = cat(
            &node,
            &format!("/etc/containerd/certs.d/{host}/hosts.toml"),
        );
        let server = hosts
            .as_deref()
            .and_then(|t| t.split('"').nth(1))
            .map_or_else(|| format!("http://{host}"), str::to_string);
        let fetched = docker(&[
            "exec",
            &node,
            "wget",
            "-q",
            "-O-",
            "--header",
            "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
            &format!("{server}/v2/{repository}/manifests/{tag}"),
        ]);
        if fetched.status.success() {
            return Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n"));
        }
        let mut run = PodRun::waiting(
            "ImagePullBackOff",
            &format!("Back-off pulling image \"{image}\""),
        );
        run.events.push((
            "Failed".into(),
            format!(
                "Failed to pull image \"{image}\": {}",
                text(&fetched.stderr).trim()
            ),
        ));
        Some(run)
    });
    fake
}

async fn run_verify(plan: &ClusterPlan, fake: &FakeApi) -> Report {
    run_verify_pushing(plan, fake, TEST_IMAGE).await
}

async fn run_verify_pushing(plan: &ClusterPlan, fake: &FakeApi, image: &str) -> Report {
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
        probe_image: Some(image.into()),
        ..Options::new(Instant::now() + Duration::from_secs(40))
    };
    verify::verify(&App::new(World::default()), &target, &options, None)
        .await
        .unwrap()
}

fn rows<'a>(report: &'a Report, layer: Layer, node: Option<&str>) -> Vec<&'a Check> {
    report
        .checks
        .iter()
        .filter(|c| c.name == "registry" && c.layer == layer && c.node.as_deref() == node)
        .collect()
}

fn one<'a>(report: &'a Report, layer: Layer, node: &str) -> &'a Check {
    let found = rows(report, layer, Some(node));
    assert_eq!(found.len(), 1, "{:#?}", report.checks);
    found[0]
}

#[tokio::test]
async fn verify_pulls_on_every_node_and_names_the_layer_that_broke() {
    if !ready("verify_pulls_on_every_node_and_names_the_layer_that_broke") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cluster = unique_name("regv");
    let plan = plan_of(&cluster, port);
    let registry = plan.registry.clone().unwrap();
    let _cleanup = Cleanup::new()
        .cluster(&cluster)
        .container(&registry.container);
    create(&plan, dir.path());
    let (control_plane, worker) = (
        format!("{cluster}-control-plane"),
        format!("{cluster}-worker"),
    );
    let fake = api_pulling_in_nodes(&plan);

    // 1. No registry runs: the host layer says so, nothing is pushed or pulled.
    let report = run_verify(&plan, &fake).await;
    let host = rows(&report, Layer::Host, None);
    assert_eq!(host.len(), 1, "{:#?}", report.checks);
    assert_eq!(host[0].status, Status::Fail);
    assert!(
        host[0]
            .detail
            .starts_with("the registry is not answering on the host"),
        "{host:?}"
    );
    assert!(rows(&report, Layer::Pod, Some(&worker)).is_empty());

    // 2. The registry runs, but only the worker's containerd knows it.
    let client = Docker::connect(&World::from_process()).await.unwrap();
    local_registry::ensure_container(&client, &registry)
        .await
        .unwrap();
    local_registry::join_kind_network(&client, &registry)
        .await
        .unwrap();
    local_registry::configure_nodes(&client, &plan, &registry)
        .await
        .unwrap();
    let hosts_toml = registry.hosts_toml_path();
    assert!(
        docker(&["exec", &control_plane, "rm", &hosts_toml])
            .status
            .success()
    );
    let report = run_verify(&plan, &fake).await;
    let host = rows(&report, Layer::Host, None);
    assert!(host.iter().all(|c| c.status == Status::Ok), "{host:#?}");
    assert!(
        host.iter().any(|c| c
            .detail
            .starts_with(&format!("pushed localhost:{port}/devcluster-probe:"))),
        "{host:#?}"
    );
    assert_eq!(one(&report, Layer::Node, &worker).status, Status::Ok);
    let pulled = one(&report, Layer::Pod, &worker);
    assert_eq!(pulled.status, Status::Ok, "{pulled:?}");
    assert!(
        pulled
            .detail
            .starts_with(&format!("pulled localhost:{port}/devcluster-probe:"))
    );
    let unconfigured = one(&report, Layer::Node, &control_plane);
    assert_eq!(unconfigured.status, Status::Fail);
    assert_eq!(
        unconfigured.detail,
        format!("containerd is not configured for localhost:{port}: {hosts_toml} is missing")
    );
    let failed = one(&report, Layer::Pod, &control_plane);
    assert_eq!(failed.status, Status::Fail);
    assert!(failed.detail.contains("Failed to pull image"), "{failed:?}");
    assert!(
        failed
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("is not configured for"),
        "{failed:?}"
    );

    // An image the host neither has nor can pull: nothing to push, said so.
    let missing = format!("localhost:{}/devcluster-test/none:1", free_port());
    let report = run_verify_pushing(&plan, &fake, &missing).await;
    let unpushed = rows(&report, Layer::Host, None)
        .into_iter()
        .find(|c| c.status == Status::Fail)
        .unwrap_or_else(|| panic!("no failed host row: {:#?}", report.checks));
    assert!(
        unpushed.detail.starts_with("no image to push: "),
        "{unpushed:?}"
    );
    assert!(
        unpushed
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("--probe-image"),
        "{unpushed:?}"
    );
    assert!(rows(&report, Layer::Pod, Some(&worker)).is_empty());

    // 3. Every node is configured, but the registry left the `kind` network: the
    // nodes cannot reach it, the pull fails and the pod's events say how.
    local_registry::configure_nodes(&client, &plan, &registry)
        .await
        .unwrap();
    assert!(
        docker(&["network", "disconnect", "kind", &registry.container])
            .status
            .success()
    );
    let report = run_verify(&plan, &fake).await;
    for node in [&control_plane, &worker] {
        assert_eq!(one(&report, Layer::Node, node).status, Status::Ok);
        let failed = one(&report, Layer::Pod, node);
        assert_eq!(failed.status, Status::Fail, "{failed:?}");
        assert!(failed.detail.contains("Failed to pull image"), "{failed:?}");
        assert!(
            failed
                .hint
                .as_deref()
                .unwrap_or("")
                .contains("`kind` network"),
            "{failed:?}"
        );
    }
}

/// A node container labelled as kind labels one, for `other_users`.
#[tokio::test]
async fn another_cluster_s_record_keeps_the_registry_it_uses() {
    if !ready("another_cluster_s_record_keeps_the_registry_it_uses") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (user, other) = (unique_name("reguse"), unique_name("regoth"));
    let using = plan_of(&user, port);
    let unrelated = plan_of(&other, free_port());
    let registry = using.registry.clone().unwrap();
    let _cleanup = Cleanup::new()
        .cluster(&user)
        .cluster(&other)
        .container(&registry.container);
    create(&using, dir.path());
    create(&unrelated, dir.path());
    let client = Docker::connect(&World::from_process()).await.unwrap();
    local_registry::ensure_container(&client, &registry)
        .await
        .unwrap();
    // A kind cluster without a record (not devcluster's) says nothing either way.
    let stray = format!("{}-control-plane", unique_name("regkind"));
    let _stray = Cleanup::new().container(&stray);
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &stray,
        "--label",
        &format!(
            "{CLUSTER_LABEL}={}",
            stray.trim_end_matches("-control-plane")
        ),
        "--label",
        &format!("{ROLE_LABEL}=control-plane"),
        TEST_IMAGE,
        "sleep",
        "600",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        local_registry::remove_unused(&client, "gone", &registry)
            .await
            .unwrap(),
        Removal::KeptFor(vec![user.clone()])
    );
    assert_eq!(inspect(&registry.container, "{{.State.Running}}"), "true");
    assert_eq!(
        local_registry::remove_unused(&client, &user, &registry)
            .await
            .unwrap(),
        Removal::Removed
    );
    let _ = client.remove_container(&stray).await;
}

#[tokio::test]
async fn preflight_names_who_holds_the_registry_port_and_passes_devcluster_s_own_registry() {
    if !ready("preflight_names_who_holds_the_registry_port_and_passes_devcluster_s_own_registry") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let plan = plan_of(&unique_name("regpre"), port);
    let row = |checks: Vec<Check>| {
        checks
            .into_iter()
            .find(|c| c.name == format!("port 127.0.0.1:{port}/TCP (registry)"))
            .unwrap_or_else(|| panic!("no registry port row"))
    };
    let taken = row(devcluster::operations::doctor::preflight(&app, &plan).await);
    assert_eq!(taken.status, Status::Fail, "{taken:?}");
    assert!(taken.detail.starts_with("taken by process"), "{taken:?}");
    drop(held);

    let registry = plan.registry.clone().unwrap();
    let _cleanup = Cleanup::new().container(&registry.container);
    let client = Docker::connect(&World::from_process()).await.unwrap();
    local_registry::ensure_container(&client, &registry)
        .await
        .unwrap();
    let own = row(devcluster::operations::doctor::preflight(&app, &plan).await);
    assert_eq!(own.status, Status::Ok, "{own:?}");
    assert_eq!(
        own.detail,
        format!("published by {}, which `up` reuses", registry.container)
    );
}
