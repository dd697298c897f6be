//! `verify` with the interruption source the command line gives it, the process's
//! own signals: a SIGTERM (a CI runner cancelling a job) or a SIGHUP (a closed
//! terminal) ends the run like Ctrl-C, and its cleanup still removes the sentinel files and the probe
//! namespace. A test binary of its own, since the signals reach the whole process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use devcluster::adapters::kube::cluster::Kube;
use devcluster::adapters::world::World;
use devcluster::operations::context::App;
use devcluster::operations::verify::{self, Options, Target};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use support::fake_kube::FakeApi;

/// One node on this machine, and probe pods that never finish (the kubelet never
/// reports them), so only an interruption ends the run before its deadline.
fn stuck_cluster() -> FakeApi {
    let fake = FakeApi::new();
    fake.put(
        "/api/v1/nodes/local",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "local"},
               "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
               "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}),
    );
    fake.on_pod_create(|_| None);
    fake
}

async fn interrupted_by(signal: Signal) {
    let fake = stuck_cluster();
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(Instant::now() + Duration::from_secs(60));
    options.probe_image = Some("registry.example/busybox:1".into());
    options.host_paths = vec![dir.path().to_path_buf()];
    // What `devcluster verify` hands its run: the process's own signals.
    options.interrupt = devcluster::cli::signals::interrupt();
    let target = Target {
        plan: None,
        docker: None,
        nodes: Vec::new(),
        node_layer_skipped: Some("not a kind cluster".into()),
        api: Some(Arc::new(Kube::new(fake.client()))),
        api_error: None,
    };
    let app = App::new(World::default());
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        kill(Pid::this(), signal).unwrap();
    });
    let run = verify::verify(&app, &target, &options, None);
    let error = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap_or_else(|_| panic!("{signal} was not heard"))
        .unwrap_err();
    assert!(
        error.render().contains("interrupted"),
        "{signal}: {}",
        error.render()
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "{signal}: sentinel left behind"
    );
    assert!(
        fake.objects_under("/api/v1/namespaces/devcluster-verify-")
            .is_empty(),
        "{signal}: probe namespace left behind"
    );
}

#[tokio::test]
async fn sigterm_and_sighup_end_verify_and_its_cleanup_runs() {
    interrupted_by(Signal::SIGTERM).await;
    interrupted_by(Signal::SIGHUP).await;
}
