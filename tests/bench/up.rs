//! `cargo bench --bench up`: devcluster's own time in `up` outside the kind process,
//! a no-op `up`, and an `up` resuming a half-made cluster (its record left at phase
//! `created`, as after a failed converge), on real Docker with the kind emulator (the
//! Kubernetes API is the in-memory fake, so waiting on real pods is not part of the
//! figure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use devcluster::adapters::kube::cluster::Connector;
use devcluster::adapters::world::World;
use devcluster::operations::ProfileChoice as ProfileArgs;
use devcluster::operations::context::App;
use devcluster::operations::down::{self as downs, DownOptions as DownArgs};
use devcluster::operations::up as lifecycle;
use devcluster::operations::up::UpOptions as UpArgs;
use devcluster::operations::up::{Deps, Interrupt};
use serde_json::json;
use support::fake_kube::FakeApi;

const RUNS: usize = 5;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    if !support::docker_available("bench up") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The fake API's client is a tower service that needs the runtime.
    let _entered = runtime.enter();
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::unique_name("bench");
    let _cleanup = support::Cleanup::new().cluster(&cluster);
    let profile = dir.path().join("devcluster.yaml");
    // The `ingress` topology; the controller is `none` because no manifest can be
    // downloaded here, and the ports are picked by kind so the bench never clashes.
    std::fs::write(
        &profile,
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nextends: ingress\ningress:\n  controller: none\n  httpPort: 0\n  httpsPort: 0\n",
    )
    .unwrap();
    let mut env = std::collections::BTreeMap::new();
    env.insert(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_default(),
    );
    env.insert("HOME".to_string(), dir.path().display().to_string());
    env.insert(
        "XDG_CACHE_HOME".to_string(),
        dir.path().join("cache").display().to_string(),
    );
    env.insert(
        "KUBECONFIG".to_string(),
        dir.path().join("kubeconfig").display().to_string(),
    );
    env.insert(
        "DEVCLUSTER_KIND".to_string(),
        support::kind_emulator().display().to_string(),
    );
    // Kubernetes 1.34 node images still run on cgroup v1 hosts, so preflight passes.
    env.insert("KIND_EMULATOR_VERSION".to_string(), "v0.30.0".to_string());
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        env.insert("DOCKER_HOST".to_string(), host);
    }
    let app = App::new(World {
        env,
        cwd: dir.path().to_path_buf(),
        home: Some(dir.path().to_path_buf()),
        stdin_is_terminal: false,
        stderr_is_terminal: false,
    });
    let fake = FakeApi::new();
    for node in ["control-plane", "worker", "worker2"] {
        fake.add_ready_node(&format!("{cluster}-{node}"), json!([]));
    }
    fake.add_available_coredns();
    let deps = Deps {
        connector: Connector::Client(fake.client()),
        interrupt: Interrupt::never(),
    };
    let args = UpArgs {
        profile: ProfileArgs {
            profile: Some(profile.display().to_string()),
            name: Some(cluster.clone()),
        },
        no_verify: true,
        timeout: Duration::from_secs(120),
        ..UpArgs::default()
    };
    let down = DownArgs {
        profile: args.profile.clone(),
        all: false,
        kubeconfig: None,
    };

    let mut own = Vec::new();
    let mut total = Vec::new();
    let mut noop = Vec::new();
    let mut resume = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let result = runtime
            .block_on(lifecycle::run_up(&app, &args, &deps))
            .unwrap();
        let wall = started.elapsed().as_secs_f64();
        let kind_time: f64 = result
            .steps
            .iter()
            .filter(|s| s.name == "create" || s.name == "kubeconfig")
            .map(|s| s.seconds)
            .sum();
        total.push(wall);
        own.push(wall - kind_time);
        let started = Instant::now();
        let again = runtime
            .block_on(lifecycle::run_up(&app, &args, &deps))
            .unwrap();
        noop.push(started.elapsed().as_secs_f64());
        assert_eq!(again.action, "up-to-date");
        // Half-made: the record says `up` stopped right after kind create.
        let holder = format!("{cluster}-control-plane");
        let reset = std::process::Command::new("docker")
            .args([
                "exec",
                &holder,
                "sed",
                "-i",
                "s/\"phase\": \"complete\"/\"phase\": \"created\"/",
                "/kind/devcluster/record.json",
            ])
            .status()
            .unwrap();
        assert!(reset.success());
        let started = Instant::now();
        let resumed = runtime
            .block_on(lifecycle::run_up(&app, &args, &deps))
            .unwrap();
        resume.push(started.elapsed().as_secs_f64());
        assert_eq!(resumed.action, "converged");
        runtime.block_on(downs::run_down(&app, &down)).unwrap();
    }
    println!("up --profile ingress (emulated kind, {RUNS} runs)");
    println!(
        "  wall time, median:                  {:.3} s",
        median(total)
    );
    println!(
        "  devcluster's own time outside kind: {:.3} s median (target < 1.5 s)",
        median(own)
    );
    println!(
        "  no-op up (up to date), median:     {:.3} s (target < 1 s)",
        median(noop)
    );
    println!(
        "  up resuming a half-made cluster, median: {:.3} s",
        median(resume)
    );
}
