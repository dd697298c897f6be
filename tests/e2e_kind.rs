//! End to end with the real kind and real pods. Runs only with `DEVCLUSTER_E2E=1`
//! (it needs kind, Docker that can run privileged containers, and a node image);
//! everywhere else it says so and passes. Each test reproduces one failure of the
//! field notes on a real cluster and checks devcluster reports it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn enabled(test: &str) -> bool {
    if std::env::var("DEVCLUSTER_E2E").is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: set DEVCLUSTER_E2E=1 where kind and Docker can create real clusters"
    );
    false
}

fn devcluster(dir: &Path, args: &[&str]) -> Output {
    Command::new(support::devcluster_bin())
        .args(args)
        .current_dir(dir)
        .env("CI", "true")
        .output()
        .unwrap()
}

fn checks(output: &Output) -> Vec<Value> {
    let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    value["checks"].as_array().cloned().unwrap_or_default()
}

/// Deletes the cluster when dropped, whatever the test did.
struct Down<'a>(&'a Path, String);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = devcluster(self.0, &["down", "--name", &self.1]);
    }
}

#[test]
fn ingress_profile_comes_up_verified_and_goes_down() {
    if !enabled("ingress_profile_comes_up_verified_and_goes_down") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = support::unique_name("e2e");
    let _down = Down(dir.path(), name.clone());
    let up = devcluster(
        dir.path(),
        &["up", "--profile", "ingress", "--name", &name, "-o", "json"],
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let result: Value = serde_json::from_slice(&up.stdout).unwrap();
    assert_eq!(result["action"], "created");
    let again = devcluster(
        dir.path(),
        &["up", "--profile", "ingress", "--name", &name, "-o", "json"],
    );
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["action"], "up-to-date");
    let verify = devcluster(
        dir.path(),
        &[
            "verify",
            "--profile",
            "ingress",
            "--name",
            &name,
            "-o",
            "json",
        ],
    );
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        checks(&verify)
            .iter()
            .any(|c| c["name"] == "ingress" && c["status"] == "ok")
    );
    // The same cluster through the any-cluster mode.
    let kubeconfig = dir.path().join("kubeconfig");
    let kind = Command::new("kind")
        .args(["get", "kubeconfig", "--name", &name])
        .output()
        .unwrap();
    std::fs::write(&kubeconfig, kind.stdout).unwrap();
    let foreign = devcluster(
        dir.path(),
        &[
            "verify",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    assert!(
        foreign.status.success(),
        "{}",
        String::from_utf8_lossy(&foreign.stderr)
    );
    let down = devcluster(dir.path(), &["down", "--name", &name]);
    assert!(down.status.success());
    let twice = devcluster(dir.path(), &["down", "--name", &name]);
    assert!(twice.status.success());
}

#[test]
fn a_mount_declared_on_one_node_is_caught_on_the_others() {
    if !enabled("a_mount_declared_on_one_node_is_caught_on_the_others") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let name = support::unique_name("e2em");
    let _down = Down(dir.path(), name.clone());
    let narrow = dir.path().join("narrow.yaml");
    std::fs::write(
        &narrow,
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes: {workers: 2}\nmounts:\n  - hostPath: ./data\n    containerPath: /data\n    nodes: worker\n",
    )
    .unwrap();
    let up = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            narrow.to_str().unwrap(),
            "--name",
            &name,
            "--no-verify",
        ],
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    // Verify against the profile the team meant: the mount on every node.
    let wide = dir.path().join("wide.yaml");
    std::fs::write(
        &wide,
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes: {workers: 2}\nmounts:\n  - hostPath: ./data\n    containerPath: /data\n",
    )
    .unwrap();
    let verify = devcluster(
        dir.path(),
        &[
            "verify",
            "--profile",
            wide.to_str().unwrap(),
            "--name",
            &name,
            "-o",
            "json",
        ],
    );
    assert_eq!(verify.status.code(), Some(1));
    let failed: Vec<Value> = checks(&verify)
        .into_iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert!(
        failed
            .iter()
            .any(|c| c["layer"] == "node" && c["node"] == format!("{name}-worker2")),
        "{failed:#?}"
    );
}

#[test]
fn storage_binds_on_a_tainted_node_after_up() {
    if !enabled("storage_binds_on_a_tainted_node_after_up") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = support::unique_name("e2es");
    let _down = Down(dir.path(), name.clone());
    let profile = dir.path().join("tainted.yaml");
    std::fs::write(
        &profile,
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nnodes:\n  workers: 1\n  taints:\n    worker: [\"dedicated=db:NoSchedule\"]\n",
    )
    .unwrap();
    let up = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            profile.to_str().unwrap(),
            "--name",
            &name,
            "-o",
            "json",
        ],
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let verify = devcluster(
        dir.path(),
        &[
            "verify",
            "--profile",
            profile.to_str().unwrap(),
            "--name",
            &name,
            "-o",
            "json",
        ],
    );
    let all = checks(&verify);
    let tainted = all
        .iter()
        .find(|c| c["name"] == "storage" && c["node"] == format!("{name}-worker"))
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert_eq!(tainted["status"], "ok", "{tainted}");
    let rwop = all
        .iter()
        .find(|c| c["name"] == "ReadWriteOncePod")
        .unwrap();
    assert_eq!(rwop["status"], "ok", "{rwop}");
}
