//! Invalid profiles: each fixture exits 2 with its own message at its own line,
//! prints nothing on stdout, and one fixture with several mistakes reports them all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::PathBuf;
use std::process::{Command, Output};

/// (fixture, message fragment, line of the problem when it has one)
const CASES: &[(&str, &str, Option<u32>)] = &[
    ("01-unknown-field.yaml", "unknown field `wrokers`", Some(5)),
    (
        "02-wrong-api-version.yaml",
        "unsupported apiVersion `devcluster.dev/v1`",
        Some(1),
    ),
    ("03-wrong-kind.yaml", "unsupported kind `Cluster`", Some(2)),
    ("04-missing-api-version.yaml", "missing `apiVersion`", None),
    (
        "05-two-control-planes.yaml",
        "nodes.controlPlanes is 2; it must be 1 or 3",
        Some(4),
    ),
    ("06-negative-workers.yaml", "nodes.workers is -1", Some(4)),
    (
        "07-bad-cluster-name.yaml",
        "cluster name `My_Cluster` must match ^[a-z0-9.-]+$",
        Some(3),
    ),
    (
        "08-cluster-name-too-long.yaml",
        "node hostnames like",
        Some(3),
    ),
    (
        "09-same-host-port-two-nodes.yaml",
        "host port 8080/TCP is published by two nodes, `worker` and `worker2`",
        None,
    ),
    (
        "10-host-port-is-api-server-port.yaml",
        "host port 6443 on node `control-plane` is also networking.apiServerPort",
        Some(6),
    ),
    (
        "11-protocol-spelled-two-ways.yaml",
        "publishes host port 8080/TCP twice (a mapping without `protocol` is TCP)",
        None,
    ),
    (
        "12-lower-case-protocol.yaml",
        "protocol `tcp` is not TCP, UDP or SCTP",
        Some(4),
    ),
    (
        "13-container-port-out-of-range.yaml",
        "containerPort is 70000; it must be 1-65535",
        Some(4),
    ),
    ("14-host-port-minus-two.yaml", "hostPort is -2", Some(4)),
    (
        "15-reserved-label-kubernetes-io.yaml",
        "label key `node-role.kubernetes.io/worker` uses the reserved prefix",
        Some(6),
    ),
    (
        "16-reserved-label-k8s-io.yaml",
        "uses the reserved prefix `k8s.io`",
        Some(5),
    ),
    (
        "17-invalid-label-value.yaml",
        "label `tier` has value `has space`",
        Some(5),
    ),
    (
        "18-bad-taint-effect.yaml",
        "taint `dedicated=db:NoRun` has effect `NoRun`",
        Some(6),
    ),
    (
        "19-container-path-under-tmp.yaml",
        "containerPath `/tmp/data` is under /tmp, a tmpfs in kind nodes",
        Some(4),
    ),
    (
        "20-container-path-under-run.yaml",
        "is under /run, a tmpfs in kind nodes",
        Some(4),
    ),
    (
        "21-relative-container-path.yaml",
        "containerPath `data` is not absolute",
        Some(4),
    ),
    ("22-empty-host-path.yaml", "hostPath `` is empty", Some(4)),
    (
        "23-two-mounts-one-container-path.yaml",
        "node `control-plane` gets two mounts on containerPath `/data`",
        None,
    ),
    (
        "24-mount-on-empty-workers.yaml",
        "mounts: nodes selects `workers`, which is empty in this profile",
        Some(4),
    ),
    (
        "25-mount-on-missing-node.yaml",
        "mounts: nodes names node `worker2`, which is not a node of this profile",
        Some(6),
    ),
    (
        "26-port-on-missing-node.yaml",
        "ports: node names node `worker3`, which is not a node of this profile",
        Some(4),
    ),
    (
        "27-port-on-all-nodes.yaml",
        "a host port is published by exactly one node",
        Some(6),
    ),
    (
        "28-invalid-listen-address.yaml",
        "listenAddress `localhost` is not an IP address",
        Some(4),
    ),
    (
        "29-ingress-node-missing.yaml",
        "nodes.ingress names `worker2`, which is not a node of this profile",
        Some(5),
    ),
    (
        "30-custom-controller-without-manifest.yaml",
        "ingress.controller is `custom` but ingress.manifest is missing",
        Some(5),
    ),
    (
        "31-manifest-sha-not-hex.yaml",
        "ingress.manifest.sha256 must be 64 hexadecimal digits",
        Some(7),
    ),
    (
        "32-dangerous-root.yaml",
        "hostPath `/` is the host's root directory",
        Some(4),
    ),
    (
        "33-dangerous-docker-socket.yaml",
        "is the Docker socket",
        Some(4),
    ),
    ("34-dangerous-ssh.yaml", "is under ~/.ssh", Some(4)),
    ("35-extends-loop.yaml", "`extends:` loops", None),
    ("36-extends-missing-file.yaml", "does not exist", Some(3)),
    (
        "37-strict-boolean.yaml",
        "expected `true` or `false`",
        Some(6),
    ),
    (
        "38-duplicate-key.yaml",
        "duplicate key `name`: each key may appear once",
        Some(4),
    ),
    (
        "40-single-node-no-schedule-taint.yaml",
        "taint `dedicated=db:NoSchedule` on the only node of a single-node cluster: kind removes the control-plane taint there",
        Some(5),
    ),
    (
        "41-single-node-no-execute-taint.yaml",
        "(\"failed to remove control plane taint\"), and CoreDNS",
        Some(7),
    ),
    (
        "42-label-outside-kubelet-allowed-set.yaml",
        "label key `node-restriction.kubernetes.io/tier` uses the reserved prefix `node-restriction.kubernetes.io`: the kubelet refuses to start with it",
        Some(5),
    ),
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid")
}

fn plan(path: &std::path::Path, home: &std::path::Path) -> Output {
    Command::new(support::devcluster_bin())
        .args(["plan", "--profile", &path.display().to_string()])
        .env_clear()
        .env("HOME", home)
        .current_dir(home)
        .output()
        .unwrap()
}

#[test]
fn every_invalid_fixture_fails_with_its_own_message_and_position() {
    let home = tempfile::tempdir().unwrap();
    assert!(CASES.len() >= 30);
    let mut listed: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    listed.push("39-several-mistakes.yaml");
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every fixture has a row and every row a fixture"
    );
    for (file, fragment, line) in CASES {
        let path = fixtures().join(file);
        let out = plan(&path, home.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(out.stdout.is_empty(), "{file}: stdout must be empty");
        assert!(stderr.starts_with("error: "), "{file}: {stderr}");
        assert!(
            stderr.contains(fragment),
            "{file}: expected `{fragment}` in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        if let Some(line) = line {
            let position = format!("{}:{line}:", path.display());
            assert!(
                stderr.contains(&position),
                "{file}: expected position `{position}` in:\n{stderr}"
            );
        }
    }
}

#[test]
fn several_mistakes_are_all_reported_at_once() {
    let home = tempfile::tempdir().unwrap();
    let path = fixtures().join("39-several-mistakes.yaml");
    let out = plan(&path, home.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("the profile is invalid (6 problems)"),
        "{stderr}"
    );
    for (line, fragment) in [
        (3, "cluster name `Bad_Name`"),
        (5, "nodes.controlPlanes is 2"),
        (8, "reserved prefix `kubernetes.io`"),
        (10, "is under /tmp"),
        (13, "protocol `udp`"),
        (16, "node `worker9`"),
    ] {
        let expected = format!("{}:{line}:", path.display());
        let found = stderr
            .lines()
            .any(|l| l.contains(&expected) && l.contains(fragment));
        assert!(found, "missing line {line} `{fragment}` in:\n{stderr}");
    }
}

#[test]
fn risky_but_valid_settings_warn_and_still_plan() {
    let home = tempfile::tempdir().unwrap();
    let profile = home.path().join("warn.yaml");
    std::fs::write(
        &profile,
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  workers: 1\n  ingress: control-plane\ningress:\n  enabled: true\n  controller: none\n  httpPort: 8080\n  httpsPort: 8443\nports:\n  - containerPort: 30000\n    hostPort: 80\n    listenAddress: 0.0.0.0\n    node: worker\n",
    )
    .unwrap();
    let out = plan(&profile, home.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!out.stdout.is_empty());
    assert!(
        stderr.contains("warning:")
            && stderr.contains("`0.0.0.0` publishes the port on every network"),
        "{stderr}"
    );
    assert!(stderr.contains("hostPort 80 is below 1024"), "{stderr}");
    assert!(
        stderr.contains("the ingress node `control-plane` is tainted"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2_and_unknown_builtins_name_the_choices() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(support::devcluster_bin())
            .args(args)
            .env_clear()
            .env("HOME", home.path())
            .current_dir(home.path())
            .output()
            .unwrap()
    };
    let bad_flag = run(&["plan", "--no-such-flag"]);
    assert_eq!(bad_flag.status.code(), Some(2));
    let unknown = run(&["plan", "--profile", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("no built-in profile named `nope`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("single, multi, ingress, workspace"),
        "{stderr}"
    );
    let bad_name = run(&["plan", "--name", "UPPER"]);
    assert_eq!(bad_name.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("cluster name `UPPER`"));
}
