//! Shared helpers for the integration tests: real Docker (required under
//! `DEVCLUSTER_REQUIRE_DOCKER=1`, skipped loudly otherwise), unique names, cleanup.
#![allow(dead_code)]

pub mod fake_contour;
pub mod fake_kube;
pub mod images;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The local image node containers are made from in tests (see `.ci/run`).
pub const TEST_IMAGE: &str = "devcluster-test/node:latest";

/// Whether a missing Docker must fail the test instead of skipping it.
pub fn docker_required() -> bool {
    std::env::var("DEVCLUSTER_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
}

/// `true` when Docker answers and the test image exists. When it does not: panics
/// under `DEVCLUSTER_REQUIRE_DOCKER=1`, otherwise prints why the test is skipped
/// and returns `false`.
pub fn docker_available(test: &str) -> bool {
    let problem = match Command::new("docker")
        .args(["image", "inspect", TEST_IMAGE])
        .output()
    {
        Err(e) => Some(format!("the docker CLI cannot run: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "docker cannot show {TEST_IMAGE}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    };
    match problem {
        None => true,
        Some(reason) if docker_required() => {
            panic!("{test}: Docker is required (DEVCLUSTER_REQUIRE_DOCKER=1) but {reason}")
        }
        Some(reason) => {
            eprintln!(
                "SKIPPED {test}: {reason} (set DEVCLUSTER_REQUIRE_DOCKER=1 to make this a failure; `bash .ci/run` prepares Docker)"
            );
            false
        }
    }
}

/// A name no other test (or test run) uses: `dct-<pid>-<n>-<suffix>`.
pub fn unique_name(suffix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("dct{}-{n}-{suffix}", std::process::id())
}

/// Runs `docker ARGS` and returns its output.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?} could not run: {e}"))
}

/// Removes every container whose name or kind cluster label matches, when dropped.
pub struct Cleanup {
    containers: Vec<String>,
    clusters: Vec<String>,
}

impl Cleanup {
    pub fn new() -> Cleanup {
        Cleanup {
            containers: Vec::new(),
            clusters: Vec::new(),
        }
    }

    pub fn container(mut self, name: &str) -> Cleanup {
        self.containers.push(name.to_string());
        self
    }

    pub fn cluster(mut self, name: &str) -> Cleanup {
        self.clusters.push(name.to_string());
        self
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut names = self.containers.clone();
        for cluster in &self.clusters {
            let out = docker(&[
                "ps",
                "-aq",
                "--filter",
                &format!("label=io.x-k8s.kind.cluster={cluster}"),
            ]);
            names.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string),
            );
        }
        if !names.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(names.iter().map(String::as_str));
            let _ = Command::new("docker").args(&args).output();
        }
    }
}

/// The devcluster binary under test.
pub fn devcluster_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_devcluster"))
}

/// The test-only kind emulator, built by `cargo test` as an example, or the one
/// `DEVCLUSTER_TEST_KIND_EMULATOR` names.
pub fn kind_emulator() -> PathBuf {
    // A prebuilt emulator, for test binaries run without cargo (as another user).
    if let Some(prebuilt) = std::env::var_os("DEVCLUSTER_TEST_KIND_EMULATOR") {
        let path = PathBuf::from(prebuilt);
        assert!(
            path.exists(),
            "DEVCLUSTER_TEST_KIND_EMULATOR={} does not exist",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no current exe: {e}"));
    // target/debug/deps/<test> -> target/debug/examples/kind-emulator
    let debug_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| panic!("unexpected test binary location {}", exe.display()));
    let path = debug_dir.join("examples").join("kind-emulator");
    build_kind_emulator(debug_dir);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test` (which builds examples)",
        path.display()
    );
    path
}

/// Builds the emulator binary once per test process. `cargo test --all-targets` builds
/// examples only as test harnesses, and a target directory shared between checkouts may
/// hold another checkout's build, so the tests ask cargo for this checkout's binary.
fn build_kind_emulator(profile_dir: &std::path::Path) {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["build", "--quiet", "--example", "kind-emulator"]);
        command.arg("--manifest-path");
        command.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        if let Some(target_dir) = profile_dir.parent() {
            command.arg("--target-dir").arg(target_dir);
        }
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            command.arg("--release");
        }
        let status = command
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build the kind emulator: {e}"));
        assert!(status.success(), "building the kind emulator failed");
    });
}

/// The real-kind node image's storage stand-in has no provisioner: one
/// PersistentVolume per node, pinned to it, for each claim a run makes (claims of
/// the default class `standard` bind to the one on their pod's node). Names and
/// paths start with `{prefix}-{run}-`, so runs never share a volume.
pub fn stand_in_volumes(prefix: &str, nodes: &[String], run: &str) -> String {
    let mut manifest = String::new();
    for (index, node) in nodes.iter().enumerate() {
        let pv = serde_json::json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": format!("{prefix}-{run}-{index}"), "labels": {"dev.devcluster.e2e/stand-in": "true"}},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "standard",
                "hostPath": {"path": format!("/var/{prefix}-volumes/{run}-{index}"), "type": "DirectoryOrCreate"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
                ]}]}}
            }
        });
        manifest.push_str(&pv.to_string());
        manifest.push('\n');
    }
    manifest
}
