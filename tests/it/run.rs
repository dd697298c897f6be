//! `devcluster run` when it cannot give the command a proven cluster: its own exit
//! code (125, never one the command could have returned), the command never runs,
//! and a half-made cluster is rolled back. The command's own exit code and the
//! bundle are proven on the real kind (`e2e_kind`).

use crate::support;

use std::process::Command;

use support::{Cleanup, docker_available, kind_emulator, unique_name};

#[test]
fn a_cluster_that_cannot_be_made_exits_125_and_never_runs_the_command() {
    if !docker_available("a_cluster_that_cannot_be_made_exits_125_and_never_runs_the_command") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = unique_name("runfail");
    let _cleanup = Cleanup::new().cluster(&cluster);
    std::fs::write(
        dir.path().join("devcluster.yaml"),
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes: {controlPlanes: 1, workers: 1}\n",
    )
    .unwrap();
    let marker = dir.path().join("the-command-ran");
    let script = format!("touch '{}'", marker.display());
    let mut command = Command::new(support::devcluster_bin());
    command
        .args(["run", "--name", &cluster, "--", "sh", "-c", &script])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env("CI", "true")
        .env("DEVCLUSTER_KIND", kind_emulator())
        .env("KIND_EMULATOR_VERSION", "v0.30.0")
        .env("KIND_EMULATOR_IMAGE", support::TEST_IMAGE)
        .env("KIND_EMULATOR_FAIL_AFTER_NODES", "1");
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        command.env("DOCKER_HOST", host);
    }
    let run = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(
        !marker.exists(),
        "the command ran on a cluster that was not made"
    );
    let left = support::docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={cluster}"),
    ]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "the half-made cluster was not rolled back: {stderr}"
    );
}

#[test]
fn run_needs_a_command() {
    let run = Command::new(support::devcluster_bin())
        .args(["run", "--name", "x"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("CMD"));
}
