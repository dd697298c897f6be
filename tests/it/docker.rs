//! The Docker module against a real Docker Engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::{Duration, Instant};

use devcluster::adapters::docker::{CLUSTER_LABEL, Docker, DockerError, ImageVersion, ROLE_LABEL};
use devcluster::adapters::world::World;
use support::{Cleanup, TEST_IMAGE, docker, docker_available, unique_name};

fn world(env: &[(&str, &str)]) -> World {
    let mut world = World::from_process();
    for (k, v) in env {
        world.env.insert(k.to_string(), v.to_string());
    }
    world
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a labelled node-like container; returns its name.
fn start_node(cluster: &str, role: &str, suffix: &str, extra: &[&str]) -> String {
    let name = format!("{cluster}-{suffix}");
    let mut args = vec![
        "run".to_string(),
        "-d".into(),
        "--name".into(),
        name.clone(),
        "--label".into(),
        format!("{CLUSTER_LABEL}={cluster}"),
        "--label".into(),
        format!("{ROLE_LABEL}={role}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([TEST_IMAGE.to_string(), "sleep".into(), "600".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&refs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

#[tokio::test]
async fn exec_reports_output_and_exit_codes() {
    if !docker_available("exec_reports_output_and_exit_codes") {
        return;
    }
    let cluster = unique_name("exec");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let node = start_node(&cluster, "worker", "worker", &[]);
    let client = Docker::connect(&world(&[])).await.unwrap();
    let ok = client
        .exec(&node, &["sh", "-c", "echo out; echo err >&2"])
        .await
        .unwrap();
    assert_eq!(
        (ok.stdout.as_str(), ok.stderr.as_str(), ok.exit_code),
        ("out\n", "err\n", 0)
    );
    let failed = client.exec(&node, &["sh", "-c", "exit 7"]).await.unwrap();
    assert_eq!(failed.exit_code, 7);
    let fed = client
        .exec_with_stdin(
            &node,
            &["sh", "-c", "cat > /tmp/x && cat /tmp/x"],
            b"hello\nworld",
        )
        .await
        .unwrap();
    assert_eq!(fed.stdout, "hello\nworld");
    let missing = client
        .exec("no-such-container-dct", &["true"])
        .await
        .unwrap_err();
    assert!(matches!(missing, DockerError::NotFound(_)), "{missing:?}");
}

#[tokio::test]
async fn nodes_are_listed_by_label_with_mounts_and_ports() {
    if !docker_available("nodes_are_listed_by_label_with_mounts_and_ports") {
        return;
    }
    let cluster = unique_name("list");
    let other = unique_name("other");
    let _cleanup = Cleanup::new().cluster(&cluster).cluster(&other);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    start_node(
        &cluster,
        "control-plane",
        "control-plane",
        &[
            "-v",
            &format!("{}:/data:ro", dir.path().display()),
            "-p",
            &format!("127.0.0.1:{port}:80/tcp"),
        ],
    );
    let worker = start_node(&cluster, "worker", "worker", &[]);
    start_node(&other, "worker", "worker", &[]);
    assert!(docker(&["stop", "-t", "0", &worker]).status.success());

    let client = Docker::connect(&world(&[])).await.unwrap();
    let nodes = client.list_nodes(Some(&cluster)).await.unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            format!("{cluster}-control-plane"),
            format!("{cluster}-worker")
        ]
    );
    let cp = &nodes[0];
    assert_eq!(
        (cp.role.as_str(), cp.state.as_str(), cp.cluster.as_str()),
        ("control-plane", "running", cluster.as_str())
    );
    let data = cp.mounts.iter().find(|m| m.destination == "/data").unwrap();
    assert_eq!(data.source, dir.path().display().to_string());
    assert!(data.read_only);
    assert_eq!(cp.ports.len(), 1);
    assert_eq!(
        (
            cp.ports[0].container_port,
            cp.ports[0].host_ip.as_str(),
            cp.ports[0].host_port
        ),
        (80, "127.0.0.1", port)
    );
    assert_eq!(nodes[1].state, "exited");

    let all = client.list_nodes(None).await.unwrap();
    assert!(all.iter().any(|n| n.cluster == other));
    assert!(
        client
            .list_nodes(Some("dct-no-such-cluster"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_holder_of_a_host_port_is_found() {
    if !docker_available("the_holder_of_a_host_port_is_found") {
        return;
    }
    let cluster = unique_name("holder");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let port = free_port();
    let node = start_node(
        &cluster,
        "worker",
        "worker",
        &["-p", &format!("127.0.0.1:{port}:8080/tcp")],
    );
    let client = Docker::connect(&world(&[])).await.unwrap();
    let holder = client.port_holder(port, "tcp").await.unwrap().unwrap();
    assert_eq!(holder.container, node);
    assert_eq!(holder.cluster.as_deref(), Some(cluster.as_str()));
    assert_eq!(client.port_holder(port, "udp").await.unwrap(), None);
    assert_eq!(client.port_holder(free_port(), "tcp").await.unwrap(), None);
    let published = client.published_ports().await.unwrap();
    let ours: Vec<_> = published.iter().filter(|p| p.container == node).collect();
    assert_eq!(ours.len(), 1, "{published:?}");
    assert_eq!(
        (
            ours[0].host_ip.as_str(),
            ours[0].host_port,
            ours[0].protocol.as_str()
        ),
        ("127.0.0.1", port, "tcp")
    );
}

#[tokio::test]
async fn an_unreachable_daemon_is_reported_within_seconds() {
    let started = Instant::now();
    let error = Docker::connect(&world(&[("DOCKER_HOST", "tcp://127.0.0.1:1")]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DockerError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("tcp://127.0.0.1:1"));
    assert!(started.elapsed() < Duration::from_secs(6));

    let missing = Docker::connect(&world(&[(
        "DOCKER_HOST",
        "unix:///nonexistent/docker.sock",
    )]))
    .await
    .unwrap_err();
    assert!(
        matches!(missing, DockerError::Unreachable { .. }),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_listening_socket_that_never_answers_times_out() {
    // Accepts connections but never speaks HTTP: the ping must give up, not hang.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let error = Docker::connect(&world(&[(
        "DOCKER_HOST",
        &format!("tcp://127.0.0.1:{port}"),
    )]))
    .await
    .unwrap_err();
    assert!(error.to_string().contains("no answer within"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(6));
    drop(listener);
}

#[tokio::test]
async fn inspect_start_and_stop_a_container() {
    if !docker_available("inspect_start_and_stop_a_container") {
        return;
    }
    let name = unique_name("inspect");
    let _cleanup = Cleanup::new().container(&name);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &format!("{}:/work", dir.path().display()),
        "-p",
        &format!("127.0.0.1:{port}:53/udp"),
        TEST_IMAGE,
        "sleep",
        "600",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = Docker::connect(&world(&[])).await.unwrap();
    let node = client.inspect(&name).await.unwrap();
    assert_eq!(node.name, name);
    assert_eq!(node.cluster, "");
    assert_eq!(node.state, "running");
    let work = node
        .mounts
        .iter()
        .find(|m| m.destination == "/work")
        .unwrap();
    assert_eq!(
        (work.source.as_str(), work.read_only, work.kind.as_str()),
        (dir.path().to_str().unwrap(), false, "bind")
    );
    assert_eq!(node.ports.len(), 1);
    assert_eq!(
        (
            node.ports[0].container_port,
            node.ports[0].protocol.as_str(),
            node.ports[0].host_port
        ),
        (53, "udp", port)
    );
    assert_eq!(
        client
            .port_holder(port, "udp")
            .await
            .unwrap()
            .unwrap()
            .container,
        name
    );
    let raw = client.inspect_json(&name).await.unwrap();
    assert!(raw["Id"].as_str().is_some_and(|id| !id.is_empty()), "{raw}");

    // Both of Docker's views: what the engine reports now, and what the
    // container was created with.
    assert_eq!(node.requested_ports, node.ports);
    assert_eq!(node.requested_ports[0].host_ip, "127.0.0.1");

    client.stop(&name).await.unwrap();
    let stopped = client.inspect(&name).await.unwrap();
    assert_eq!(stopped.state, "exited");
    // A stopped container reports no live binding, only the requested one.
    assert!(stopped.ports.is_empty(), "{:?}", stopped.ports);
    assert_eq!(stopped.requested_ports, node.requested_ports);
    client.start(&name).await.unwrap();
    assert_eq!(client.inspect(&name).await.unwrap().state, "running");

    let missing = client.inspect("dct-no-such-container").await.unwrap_err();
    assert!(matches!(missing, DockerError::NotFound(_)), "{missing:?}");
}

#[tokio::test]
async fn an_exec_past_its_time_limit_times_out() {
    if !docker_available("an_exec_past_its_time_limit_times_out") {
        return;
    }
    let cluster = unique_name("slow");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let node = start_node(&cluster, "worker", "worker", &[]);
    let client = Docker::connect(&world(&[]))
        .await
        .unwrap()
        .with_timeouts(Duration::from_secs(5), Duration::from_secs(1));
    assert_eq!(client.exec_timeout(), Duration::from_secs(1));
    let started = Instant::now();
    let error = client.exec(&node, &["sleep", "10"]).await.unwrap_err();
    assert!(matches!(error, DockerError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_local_node_images_kubernetes_version_is_read_from_kind_version() {
    if !docker_available("a_local_node_images_kubernetes_version_is_read_from_kind_version") {
        return;
    }
    // A mirrored image whose tag says nothing about its version.
    let mirrored = support::images::ImportedImage::new(
        &format!("{}/node:mirror", unique_name("registry")),
        &[("/kind/version", "v1.20.2\n")],
    );
    let plain = support::images::ImportedImage::new(
        &format!("{}/base:latest", unique_name("registry")),
        &[("/etc/hostname", "x\n")],
    );
    let client = Docker::connect(&world(&[])).await.unwrap();
    assert_eq!(
        client
            .image_kubernetes_version(&mirrored.name)
            .await
            .unwrap(),
        ImageVersion::Version("v1.20.2".into())
    );
    assert_eq!(
        client.image_kubernetes_version(&plain.name).await.unwrap(),
        ImageVersion::NoVersionFile
    );
    assert_eq!(
        client
            .image_kubernetes_version(&format!("{}/absent:v9", unique_name("registry")))
            .await
            .unwrap(),
        ImageVersion::NotPresent
    );
    // The helper containers are gone.
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("ancestor={}", mirrored.name),
    ]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[tokio::test]
async fn an_image_is_streamed_as_docker_save_into_a_command_in_a_container() {
    if !docker_available("an_image_is_streamed_as_docker_save_into_a_command_in_a_container") {
        return;
    }
    let cluster = unique_name("save");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let node = start_node(&cluster, "worker", "worker", &[]);
    let client = Docker::connect(&world(&[])).await.unwrap();
    let image = client.local_image(TEST_IMAGE).await.unwrap().unwrap();
    assert_eq!(image.name, TEST_IMAGE);
    let inspected = docker(&["image", "inspect", "--format", "{{.Id}}", TEST_IMAGE]);
    assert_eq!(image.id, String::from_utf8_lossy(&inspected.stdout).trim());
    let absent = format!("{cluster}-absent:1");
    assert_eq!(client.local_image(&absent).await.unwrap(), None);

    // The command reads the whole `docker save` tar from its stdin: the archive's
    // manifest names the image.
    let limit = Duration::from_secs(60);
    let listed = client
        .import_images(
            &node,
            &[TEST_IMAGE],
            &[
                "sh",
                "-c",
                "mkdir /tmp/save && tar -x -C /tmp/save && cat /tmp/save/manifest.json",
            ],
            limit,
        )
        .await
        .unwrap();
    assert_eq!(listed.exit_code, 0, "{listed:?}");
    assert!(listed.stdout.contains(TEST_IMAGE), "{}", listed.stdout);
    // A command that stops reading at once: its own exit code and words, not a
    // broken pipe.
    let refused = client
        .import_images(
            &node,
            &[TEST_IMAGE],
            &["sh", "-c", "echo no space >&2; exit 3"],
            limit,
        )
        .await
        .unwrap();
    assert_eq!(
        (refused.exit_code, refused.stderr.as_str()),
        (3, "no space\n")
    );
    // An image the engine cannot export fails the call with the export's error,
    // and the command sees the end of its input instead of waiting for more: a
    // command left waiting would end the call at `limit` instead.
    let failed = client
        .import_images(&node, &[&absent], &["sh", "-c", "cat > /dev/null"], limit)
        .await;
    match &failed {
        Err(DockerError::Failed { operation, .. }) => assert_eq!(operation, "export images"),
        other => panic!("expected the export's failure, got {other:?}"),
    }
    // `ctr images import` fails on a cut stream (containerd's importer reads a
    // tar: `unexpected EOF`); the export's error is still the one reported.
    let cut = client
        .import_images(
            &node,
            &[&absent],
            &[
                "sh",
                "-c",
                "[ \"$(wc -c)\" -gt 0 ] || { echo 'ctr: unexpected EOF' >&2; exit 1; }",
            ],
            limit,
        )
        .await;
    let error = cut.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("export images"), "{error}");
}
