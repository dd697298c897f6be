//! `devcluster doctor` through the real binary, against real Docker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Cleanup, TEST_IMAGE, docker, docker_available, unique_name};

/// A fake `kind` that prints `version`.
fn fake_kind(dir: &Path, version: &str) -> std::path::PathBuf {
    let path = dir.join(format!("kind-{version}"));
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho 'kind {version} go1.24.0 linux/amd64'\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

struct Run {
    code: Option<i32>,
    checks: Vec<Value>,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn check(&self, name: &str) -> &Value {
        self.checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name} in {:#?}", self.checks))
    }
}

fn doctor(dir: &Path, profile: &str, env: &[(&str, &str)]) -> Run {
    let file = dir.join("profile.yaml");
    std::fs::write(&file, profile).unwrap();
    let mut command = Command::new(support::devcluster_bin());
    command
        .args([
            "doctor",
            "--profile",
            &file.display().to_string(),
            "-o",
            "json",
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .current_dir(dir);
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        command.env("DOCKER_HOST", host);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let started = Instant::now();
    let output = command.output().unwrap();
    let elapsed = started.elapsed();
    let stdout: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    Run {
        code: output.status.code(),
        checks: stdout["checks"].as_array().cloned().unwrap(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed,
    }
}

const HEADER: &str = "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\n";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_healthy_profile_passes_and_json_has_the_documented_shape() {
    if !docker_available("a_healthy_profile_passes_and_json_has_the_documented_shape") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let kind = fake_kind(dir.path(), "v0.30.0");
    let port = free_port();
    let run = doctor(
        dir.path(),
        &format!(
            "{HEADER}name: {}\nmounts:\n  - hostPath: ./data\n    containerPath: /data\nports:\n  - containerPort: 30000\n    hostPort: {port}\n",
            unique_name("ok")
        ),
        &[("DEVCLUSTER_KIND", &kind.display().to_string())],
    );
    assert_eq!(run.code, Some(0), "{:#?}\n{}", run.checks, run.stderr);
    for check in &run.checks {
        let keys: Vec<&str> = check
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, vec!["detail", "hint", "name", "status"], "{check}");
        assert!(
            ["ok", "warn"].contains(&check["status"].as_str().unwrap()),
            "{check}"
        );
    }
    assert_eq!(run.check("docker")["status"], "ok");
    assert!(
        run.check("kind")["detail"]
            .as_str()
            .unwrap()
            .contains("v0.30.0")
    );
    assert_eq!(
        run.check(&format!("port 127.0.0.1:{port}/TCP"))["status"],
        "ok"
    );
    assert_eq!(
        run.check(&format!("mount {}", dir.path().join("data").display()))["status"],
        "ok"
    );
    // With -o json, stdout holds only the JSON and stderr stays quiet.
    assert!(!run.stderr.contains("CHECK"), "{}", run.stderr);
}

#[test]
fn a_port_held_by_a_container_names_the_container_and_its_cluster() {
    if !docker_available("a_port_held_by_a_container_names_the_container_and_its_cluster") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kind = fake_kind(dir.path(), "v0.30.0");
    let holder_cluster = unique_name("holder");
    let _cleanup = Cleanup::new().cluster(&holder_cluster);
    let port = free_port();
    let container = format!("{holder_cluster}-worker");
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &container,
        "--label",
        &format!("io.x-k8s.kind.cluster={holder_cluster}"),
        "-p",
        &format!("127.0.0.1:{port}:80"),
        TEST_IMAGE,
        "sleep",
        "600",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = doctor(
        dir.path(),
        &format!(
            "{HEADER}name: {}\nports:\n  - containerPort: 80\n    hostPort: {port}\n",
            unique_name("p")
        ),
        &[("DEVCLUSTER_KIND", &kind.display().to_string())],
    );
    assert_eq!(run.code, Some(1));
    let check = run.check(&format!("port 127.0.0.1:{port}/TCP"));
    assert_eq!(check["status"], "fail");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains(&container) && detail.contains(&holder_cluster),
        "{detail}"
    );
    assert!(
        check["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("devcluster down --name {holder_cluster}"))
    );
}

#[test]
fn a_port_held_by_a_host_process_names_the_process() {
    if !docker_available("a_port_held_by_a_host_process_names_the_process") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kind = fake_kind(dir.path(), "v0.30.0");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let run = doctor(
        dir.path(),
        &format!(
            "{HEADER}name: {}\nports:\n  - containerPort: 80\n    hostPort: {port}\n",
            unique_name("proc")
        ),
        &[("DEVCLUSTER_KIND", &kind.display().to_string())],
    );
    assert_eq!(run.code, Some(1));
    let check = run.check(&format!("port 127.0.0.1:{port}/TCP"));
    assert_eq!(check["status"], "fail");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("pid {}", std::process::id())),
        "{detail}"
    );
    drop(listener);
}

#[test]
fn host_paths_missing_of_the_wrong_type_or_dangerous() {
    if !docker_available("host_paths_missing_of_the_wrong_type_or_dangerous") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kind = fake_kind(dir.path(), "v0.30.0");
    std::fs::write(dir.path().join("a-file"), "x").unwrap();
    std::fs::create_dir(dir.path().join("a-dir")).unwrap();
    let profile = format!(
        "{HEADER}name: {}\nmounts:\n  - hostPath: ./missing\n    containerPath: /m\n  - hostPath: ./a-file\n    containerPath: /f\n  - hostPath: ./a-dir\n    containerPath: /d\n    type: File\n  - hostPath: ~/.ssh\n    containerPath: /ssh\n    allowDangerousPath: true\n",
        unique_name("paths")
    );
    std::fs::create_dir(dir.path().join(".ssh")).unwrap();
    let run = doctor(
        dir.path(),
        &profile,
        &[("DEVCLUSTER_KIND", &kind.display().to_string())],
    );
    assert_eq!(run.code, Some(1));
    let path = |p: &str| format!("mount {}", dir.path().join(p).display());
    let missing = run.check(&path("missing"));
    assert_eq!(missing["status"], "fail");
    assert!(missing["hint"].as_str().unwrap().contains("mkdir -p"));
    let file = run.check(&path("a-file"));
    assert_eq!(file["status"], "fail");
    assert!(
        file["detail"]
            .as_str()
            .unwrap()
            .contains("is a file, but the profile mounts a directory")
    );
    let dir_as_file = run.check(&path("a-dir"));
    assert_eq!(dir_as_file["status"], "fail");
    assert!(
        dir_as_file["detail"]
            .as_str()
            .unwrap()
            .contains("is a directory, but the profile mounts a file")
    );
    let ssh = run.check(&path(".ssh"));
    assert_eq!(ssh["status"], "warn");
    assert!(
        ssh["detail"]
            .as_str()
            .unwrap()
            .contains("allowed by the profile")
    );
}

#[test]
fn an_unreachable_docker_fails_fast_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let kind = fake_kind(dir.path(), "v0.30.0");
    let run = doctor(
        dir.path(),
        HEADER,
        &[
            ("DOCKER_HOST", "tcp://127.0.0.1:1"),
            ("DEVCLUSTER_KIND", &kind.display().to_string()),
        ],
    );
    assert_eq!(run.code, Some(1));
    let check = run.check("docker");
    assert_eq!(check["status"], "fail");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("tcp://127.0.0.1:1")
    );
    assert!(check["hint"].as_str().unwrap().contains("DOCKER_HOST"));
    for name in ["cgroups", "resources", "disk", "cluster"] {
        let skipped = run.check(name);
        assert_eq!(skipped["status"], "warn", "{skipped}");
        assert!(
            skipped["detail"]
                .as_str()
                .unwrap()
                .contains("skipped: Docker is not reachable"),
            "{skipped}"
        );
    }
    assert!(
        run.elapsed < Duration::from_secs(6),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn kind_missing_or_too_old_fails() {
    let dir = tempfile::tempdir().unwrap();
    let missing = doctor(dir.path(), HEADER, &[]);
    assert_eq!(missing.code, Some(1));
    let kind = missing.check("kind");
    assert_eq!(kind["status"], "fail");
    assert!(
        kind["detail"]
            .as_str()
            .unwrap()
            .contains("kind is not installed")
    );
    assert!(kind["hint"].as_str().unwrap().contains("--install-kind"));

    // Without -o json the table goes to stderr and stdout stays empty.
    let text = Command::new(support::devcluster_bin())
        .args(["doctor", "--profile", "single"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(1));
    assert!(text.stdout.is_empty());
    let table = String::from_utf8_lossy(&text.stderr);
    assert!(
        table.contains("CHECK") && table.contains("kind is not installed"),
        "{table}"
    );

    let old = fake_kind(dir.path(), "v0.20.0");
    let too_old = doctor(
        dir.path(),
        HEADER,
        &[("DEVCLUSTER_KIND", &old.display().to_string())],
    );
    assert_eq!(too_old.code, Some(1));
    let kind = too_old.check("kind");
    assert_eq!(kind["status"], "fail");
    assert!(
        kind["detail"]
            .as_str()
            .unwrap()
            .contains("v0.20.0 is older than v0.26.0"),
        "{kind}"
    );
}

#[test]
fn an_existing_cluster_is_reported_with_its_nodes() {
    if !docker_available("an_existing_cluster_is_reported_with_its_nodes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kind = fake_kind(dir.path(), "v0.32.0");
    let cluster = unique_name("exists");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let node = format!("{cluster}-control-plane");
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &node,
        "--label",
        &format!("io.x-k8s.kind.cluster={cluster}"),
        "--label",
        "io.x-k8s.kind.role=control-plane",
        TEST_IMAGE,
        "sleep",
        "600",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = doctor(
        dir.path(),
        &format!("{HEADER}name: {cluster}\n"),
        &[("DEVCLUSTER_KIND", &kind.display().to_string())],
    );
    let check = run.check("cluster");
    assert_eq!(check["status"], "warn", "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains("already exists") && detail.contains(&format!("{node} (running)")),
        "{detail}"
    );
    assert!(
        run.check("kind")["detail"]
            .as_str()
            .unwrap()
            .contains("v0.32.0")
    );

    let fresh = doctor(
        dir.path(),
        &format!("{HEADER}name: {}\n", unique_name("fresh")),
        &[("DEVCLUSTER_KIND", &kind.display().to_string())],
    );
    assert_eq!(fresh.check("cluster")["status"], "ok");
}

/// Ports with a listening TCP socket, from `/proc/net/tcp` and `/proc/net/tcp6`
/// (column 2 is `address:port` in hexadecimal, column 4 the state, `0A` LISTEN).
fn listening_tcp_ports() -> Vec<u16> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let port = fields.get(1)?.rsplit(':').next()?;
                    (*fields.get(3)? == "0A").then(|| u16::from_str_radix(port, 16).ok())?
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A port of `candidates` (below 1024) that nothing listens on and no container
/// publishes. Each test passes its own list, so tests running at once never share one.
fn quiet_low_port(candidates: &[u16]) -> u16 {
    let listening = listening_tcp_ports();
    let published =
        String::from_utf8_lossy(&docker(&["ps", "--format", "{{.Ports}}"]).stdout).into_owned();
    candidates
        .iter()
        .copied()
        .find(|p| !listening.contains(p) && !published.contains(&format!(":{p}->")))
        .expect("every candidate low port is in use on this machine")
}

/// Whether this test runs as root (the CLI tests also run as an ordinary user).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        .unwrap_or(false)
}

#[test]
fn a_free_port_below_1024_is_free_for_an_ordinary_user_too() {
    if !docker_available("a_free_port_below_1024_is_free_for_an_ordinary_user_too") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kind = fake_kind(dir.path(), "v0.30.0");
    let port = quiet_low_port(&[80, 81, 1000, 1002, 1004]);
    let run = doctor(
        dir.path(),
        &format!(
            "{HEADER}name: {}\nports:\n  - containerPort: 30000\n    hostPort: {port}\n",
            unique_name("low")
        ),
        &[("DEVCLUSTER_KIND", &kind.display().to_string())],
    );
    let check = run.check(&format!("port 127.0.0.1:{port}/TCP"));
    assert_eq!(check["status"], "ok", "{check}\n{}", run.stderr);
    let detail = check["detail"].as_str().unwrap();
    assert!(detail.starts_with("free (for "), "{detail}");
    if !is_root() && port < 1024 {
        // This user could not bind it; the answer came from /proc/net and Docker.
        assert!(detail.contains("no socket listens on it"), "{detail}");
    }
}

#[test]
fn a_port_below_1024_published_by_a_container_is_taken() {
    if !docker_available("a_port_below_1024_published_by_a_container_is_taken") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kind = fake_kind(dir.path(), "v0.30.0");
    let port = quiet_low_port(&[443, 444, 1001, 1003, 1005]);
    let holder_cluster = unique_name("lowholder");
    let _cleanup = Cleanup::new().cluster(&holder_cluster);
    let container = format!("{holder_cluster}-worker");
    // The daemon (root) publishes the low port, whoever runs the test.
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &container,
        "--label",
        &format!("io.x-k8s.kind.cluster={holder_cluster}"),
        "-p",
        &format!("127.0.0.1:{port}:80"),
        TEST_IMAGE,
        "sleep",
        "600",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = doctor(
        dir.path(),
        &format!(
            "{HEADER}name: {}\nports:\n  - containerPort: 30000\n    hostPort: {port}\n",
            unique_name("lowp")
        ),
        &[("DEVCLUSTER_KIND", &kind.display().to_string())],
    );
    assert_eq!(run.code, Some(1));
    let check = run.check(&format!("port 127.0.0.1:{port}/TCP"));
    assert_eq!(check["status"], "fail", "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains(&container) && detail.contains(&holder_cluster),
        "{detail}"
    );
}

#[test]
fn a_pinned_image_without_a_version_tag_is_judged_by_its_kind_version_file() {
    if !docker_available("a_pinned_image_without_a_version_tag_is_judged_by_its_kind_version_file")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // kind v0.32.0's default image is Kubernetes 1.36.1, which needs cgroup v2;
    // the pinned image is 1.20.2, and must not be judged by that default.
    let kind = fake_kind(dir.path(), "v0.32.0");
    let image = support::images::ImportedImage::new(
        &format!("{}/kindest-node:mirror", unique_name("registry")),
        &[("/kind/version", "v1.20.2\n")],
    );
    let run = doctor(
        dir.path(),
        &format!(
            "{HEADER}name: {}\nimage: {}\n",
            unique_name("img"),
            image.name
        ),
        &[("DEVCLUSTER_KIND", &kind.display().to_string())],
    );
    let check = run.check("node image");
    assert_eq!(check["status"], "ok", "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("Kubernetes 1.20.2 (read from /kind/version"),
        "{check}"
    );
    let cgroups = run.check("cgroups");
    assert_eq!(cgroups["status"], "ok", "{cgroups}");

    // Not present locally: the version is unknown, said so, and never taken
    // from kind's default image.
    let absent = format!("{}/kindest-node:mirror", unique_name("absent"));
    let run = doctor(
        dir.path(),
        &format!("{HEADER}name: {}\nimage: {absent}\n", unique_name("img")),
        &[("DEVCLUSTER_KIND", &kind.display().to_string())],
    );
    let check = run.check("node image");
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("is unknown: its tag has none and the image is not present locally"),
        "{check}"
    );
    assert!(
        check["hint"].as_str().unwrap().contains("docker pull"),
        "{check}"
    );
    let cgroups = run.check("cgroups");
    assert_ne!(cgroups["status"], "fail", "{cgroups}");
    assert!(
        !cgroups["detail"].as_str().unwrap().contains("1.36"),
        "{cgroups}"
    );
}
