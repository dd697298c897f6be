//! `cargo bench --bench verify`: how long `verify` takes against its slowest single
//! probe, and their ratio (the probes overlap when it is near 1).
//!
//! On a real kind cluster when one can be made here (`DEVCLUSTER_KIND` and
//! `DEVCLUSTER_E2E_NODE_IMAGE`, from `tests/support/real-kind.sh`'s env file; set
//! `DEVCLUSTER_BENCH_EMULATOR=1` to skip it): three nodes, a mount on every node,
//! subPath and storage. `devcluster verify` is timed as a user runs it, and the
//! slowest probe is made by hand: one claim and one pod writing to it, timed from
//! the claim's creation to the pod's success. The pod is verify's own storage pod
//! (it shares the node's network, as verify's file probes do), waited for by
//! verify's own pod runner (which reads a pass from the followed logs), so the
//! ratio measures how well the probes overlap, not a cheaper pod or a quicker
//! wait.
//!
//! Otherwise on the `ingress` topology with two mounts on three emulated nodes.
//! Probe pods run their script in their node container through Docker exec (the
//! in-memory API stands in for the kubelet), so the figures are devcluster's own
//! work plus Docker exec, without real pod start-up.
//!
//! "Own CPU" is this process's user + system time during the run (from
//! `/proc/self/stat`, so Linux only): devcluster's work plus the in-memory API's,
//! an upper bound on devcluster's own share. Docker and its exec'd shells are other
//! processes and are not counted.

#[path = "../support/mod.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devcluster::adapters::docker::Docker;
use devcluster::adapters::kube::cluster::Kube;
use devcluster::adapters::world::World;
use devcluster::core::plan::ClusterPlan;
use devcluster::operations::context::App;
use devcluster::operations::verify::{self, Options, Target};
use serde_json::json;
use support::fake_kube::{FakeApi, PodRun};

const RUNS: usize = 5;

fn main() {
    if !support::docker_available("bench verify") {
        return;
    }
    if let Some(setup) = real::Setup::from_env() {
        real::bench(&setup);
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap_or_else(|e| panic!("{e}"));
    for d in ["src", "cache"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap_or_else(|e| panic!("{e}"));
    }
    let cluster = support::unique_name("bverify");
    let _cleanup = support::Cleanup::new().cluster(&cluster);
    let profile = dir.path().join("p.yaml");
    std::fs::write(
        &profile,
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nextends: ingress\ningress:\n  controller: none\n  httpPort: 0\n  httpsPort: 0\nmounts:\n  - hostPath: ./src\n    containerPath: /src\n    readOnly: true\n  - hostPath: ./cache\n    containerPath: /cache\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let plan_out = |extra: &[&str]| {
        let mut args = vec![
            "plan",
            "-p",
            profile.to_str().unwrap_or(""),
            "--name",
            &cluster,
        ];
        args.extend(extra);
        let out = Command::new(support::devcluster_bin())
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let plan: ClusterPlan =
        serde_json::from_str(&plan_out(&["-o", "json"])).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(support::kind_emulator())
        .args(["create", "cluster", "--name", &cluster, "--config", "-"])
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(plan_out(&[]).as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        child.wait().map(|s| s.success()).unwrap_or(false),
        "the emulator failed"
    );

    let probe_times: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let fake = FakeApi::new();
    for node in &plan.nodes {
        fake.add_ready_node(&node.name, json!([]));
    }
    let times = probe_times.clone();
    let kubelet = fake.clone();
    fake.on_pod_create(move |pod| {
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        if !name.starts_with("mnt") {
            return Some(PodRun::new("Succeeded", Some(0), "devcluster: ok\n"));
        }
        let namespace = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
        let script = pod["spec"]["containers"][0]["command"][2]
            .as_str()
            .unwrap_or("")
            .to_string();
        // Like a kubelet: the pod is created Pending and runs on its node while
        // the API answers other requests; it ends when the script does.
        let times = times.clone();
        let kubelet = kubelet.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let out = Command::new("docker")
                .args(["exec", &node, "sh", "-c", &script])
                .output();
            if let Ok(mut times) = times.lock() {
                times.push(started.elapsed());
            }
            let run = match out {
                Ok(out) => {
                    let code = out.status.code().unwrap_or(1);
                    PodRun::new(
                        if code == 0 { "Succeeded" } else { "Failed" },
                        Some(code),
                        &String::from_utf8_lossy(&out.stdout),
                    )
                }
                Err(e) => PodRun::new("Failed", Some(1), &e.to_string()),
            };
            // The pod object lands right after this hook returns.
            let mut run = Some(run);
            for _ in 0..500 {
                let Some(next) = run.take() else { break };
                if !kubelet.finish_pod(&namespace, &name, clone_run(&next)) {
                    run = Some(next);
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        None
    });
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let mut walls = Vec::new();
    let mut slowest = Vec::new();
    let mut sums = Vec::new();
    let mut own = Vec::new();
    let ticks = clock_ticks();
    for _ in 0..RUNS {
        if let Ok(mut times) = probe_times.lock() {
            times.clear();
        }
        let cpu_before = cpu_seconds(ticks);
        let started = Instant::now();
        let report = runtime.block_on(async {
            let docker = Docker::connect(&World::from_process())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let nodes = docker
                .list_nodes(Some(&cluster))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let target = Target {
                plan: Some(&plan),
                docker: Some(&docker),
                nodes,
                node_layer_skipped: None,
                api: Some(Arc::new(Kube::new(fake.client()))),
                api_error: None,
            };
            let options = Options {
                deadline: Instant::now() + Duration::from_secs(60),
                probe_image: Some("img".into()),
                pull_policy: None,
                storage_class: None,
                host_paths: Vec::new(),
                ..Options::new(Instant::now())
            };
            verify::verify(&App::new(World::default()), &target, &options, None)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        });
        walls.push(started.elapsed().as_secs_f64());
        if let (Some(before), Some(after)) = (cpu_before, cpu_seconds(ticks)) {
            own.push(after - before);
        }
        assert!(!report.failed(), "{:#?}", report.checks);
        let times = probe_times.lock().map(|t| t.clone()).unwrap_or_default();
        slowest.push(
            times
                .iter()
                .max()
                .copied()
                .unwrap_or_default()
                .as_secs_f64(),
        );
        sums.push(times.iter().sum::<Duration>().as_secs_f64());
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let ratios: Vec<f64> = walls
        .iter()
        .zip(&slowest)
        .map(|(wall, probe)| wall / probe.max(f64::EPSILON))
        .collect();
    let ratio_median = median(ratios);
    println!("verify: ingress topology, 2 mounts on 3 emulated nodes ({RUNS} runs, medians)");
    println!(
        "  wall time:                       {:.3} s",
        median(walls.clone())
    );
    println!(
        "  slowest single pod-layer probe:  {:.3} s",
        median(slowest.clone())
    );
    println!(
        "  sum of pod-layer probes:         {:.3} s (concurrency makes wall ~ slowest, not sum)",
        median(sums.clone())
    );
    println!(
        "  verify / slowest probe:          {:.2}x (target: 1.5x or less)",
        ratio_median
    );
    if own.is_empty() {
        println!("  own CPU time:                    unknown (no /proc/self/stat)");
    } else {
        println!(
            "  own CPU time (user + system):    {:.3} s (devcluster and the in-memory API; budget 0.500 s)",
            median(own)
        );
    }
}

/// Clock ticks per second for `/proc/self/stat` (`getconf CLK_TCK`, else 100).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// This process's user + system CPU seconds so far, on Linux.
fn cpu_seconds(ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the `(comm)` that may contain spaces: utime and stime are the
    // 12th and 13th (fields 14 and 15 of proc(5)).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / ticks)
}

fn clone_run(run: &PodRun) -> PodRun {
    let mut copy = PodRun::new(run.phase, run.exit_code, &run.logs);
    copy.events = run.events.clone();
    copy
}

/// The figures on a real kind cluster.
mod real {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output, Stdio};
    use std::time::{Duration, Instant};

    use devcluster::adapters::kube::cluster::Connector;
    use devcluster::adapters::kube::probe::{ProbePod, ProbeVolume, VolumeSource};
    use devcluster::operations::verify::runner::PodRunner;

    use super::support;

    const RUNS: usize = 5;

    pub struct Setup {
        kind: PathBuf,
        image: String,
    }

    impl Setup {
        pub fn from_env() -> Option<Setup> {
            if std::env::var("DEVCLUSTER_BENCH_EMULATOR").is_ok_and(|v| v == "1") {
                return None;
            }
            let kind = PathBuf::from(std::env::var_os("DEVCLUSTER_KIND")?);
            let image = std::env::var("DEVCLUSTER_E2E_NODE_IMAGE").ok()?;
            kind.is_file().then_some(Setup { kind, image })
        }
    }

    /// Deletes the cluster however the bench ends.
    struct Down<'a> {
        dir: &'a Path,
        kind: &'a Path,
        cluster: String,
    }

    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = devcluster(self.dir, self.kind, &["down", "--name", &self.cluster]);
            let _ = Command::new(self.kind)
                .args(["delete", "cluster", "--name", &self.cluster])
                .output();
        }
    }

    fn devcluster(dir: &Path, kind: &Path, args: &[&str]) -> Output {
        Command::new(support::devcluster_bin())
            .args(args)
            .current_dir(dir)
            .env("CI", "true")
            .env("DEVCLUSTER_KIND", kind)
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn kubectl(cluster: &str, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let node = format!("{cluster}-control-plane");
        let mut child = Command::new("docker")
            .args(["exec", "-i", &node, "kubectl"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The node image's storage stand-in has no provisioner: one PersistentVolume
    /// per node for each claim to come (as `tests/e2e_kind.rs` provides them).
    fn provide_volumes(cluster: &str, nodes: &[String], run: &str) {
        let manifest = support::stand_in_volumes("bench", nodes, run);
        let out = kubectl(cluster, &["apply", "-f", "-"], &manifest);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn bench(setup: &Setup) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("data")).unwrap_or_else(|e| panic!("{e}"));
        let cluster = support::unique_name("bench");
        let _down = Down {
            dir: dir.path(),
            kind: &setup.kind,
            cluster: cluster.clone(),
        };
        let profile = dir.path().join("p.yaml");
        std::fs::write(
            &profile,
            format!(
                "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nimage: {}\nnodes:\n  controlPlanes: 1\n  workers: 2\nmounts:\n  - hostPath: ./data\n    containerPath: /data\n",
                setup.image
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let profile = profile.to_str().unwrap_or("");
        let started = Instant::now();
        let up = devcluster(
            dir.path(),
            &setup.kind,
            &[
                "up",
                "--profile",
                profile,
                "--name",
                &cluster,
                "--no-verify",
            ],
        );
        assert!(
            up.status.success(),
            "{}",
            String::from_utf8_lossy(&up.stderr)
        );
        eprintln!("cluster made in {:.1} s", started.elapsed().as_secs_f64());
        let nodes = vec![
            format!("{cluster}-control-plane"),
            format!("{cluster}-worker"),
            format!("{cluster}-worker2"),
        ];
        let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
        let kubeconfig = Command::new(&setup.kind)
            .args(["get", "kubeconfig", "--name", &cluster])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let kubeconfig = String::from_utf8_lossy(&kubeconfig.stdout).into_owned();
        let mut walls = Vec::new();
        let mut probes = Vec::new();
        let mut ratios = Vec::new();
        for run in 0..RUNS {
            provide_volumes(&cluster, &nodes, &format!("v{run}"));
            provide_volumes(&cluster, &nodes[1..2], &format!("p{run}"));
            // The scheduler places a claim's pod only once its informer has seen
            // the volume; a pod created at once may wait out a back-off instead.
            std::thread::sleep(Duration::from_secs(2));
            let started = Instant::now();
            let _ = Command::new(&setup.kind)
                .args(["get", "kubeconfig", "--name", &cluster])
                .output();
            let kubeconfig_time = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let verify = devcluster(
                dir.path(),
                &setup.kind,
                &[
                    "verify",
                    "--profile",
                    profile,
                    "--name",
                    &cluster,
                    "-o",
                    "json",
                    "--probe-image",
                    support::TEST_IMAGE,
                    "--image-pull-policy",
                    "Never",
                ],
            );
            let wall = started.elapsed().as_secs_f64();
            assert!(
                verify.status.success(),
                "{}\n{}",
                String::from_utf8_lossy(&verify.stdout),
                String::from_utf8_lossy(&verify.stderr)
            );
            let probe = runtime.block_on(hand_made_probe(&kubeconfig, &nodes[1], run));
            println!(
                "run {run}: verify {wall:.1} s (`kind get kubeconfig`, which verify does without on Docker: {kubeconfig_time:.1} s), slowest probe by hand {probe:.1} s, ratio {:.2}x",
                wall / probe
            );
            walls.push(wall);
            probes.push(probe);
            ratios.push(wall / probe);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (wall, probe, ratio) = (median(walls), median(probes), median(ratios));
        println!(
            "verify on a real 3-node kind cluster (a mount on every node, subPath, storage; {RUNS} runs, medians)"
        );
        println!("  devcluster verify:                       {wall:.1} s");
        println!("  a pod writing to a fresh claim, by hand: {probe:.1} s");
        println!("  verify / slowest probe (median of runs): {ratio:.2}x (target: 1.5x or less)");
    }

    /// One claim and one pod writing to it on `node`, timed from the claim's
    /// creation to the pod's success (the namespace is made ready first).
    async fn hand_made_probe(kubeconfig: &str, node: &str, run: usize) -> f64 {
        let api = Connector::Kubeconfig
            .connect(kubeconfig, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let namespace = format!("devcluster-verify-bench{run}-{}", std::process::id());
        api.create_namespace(&namespace)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        api.wait_default_service_account(&namespace, Instant::now() + Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let runner = PodRunner::start(&api, &namespace);
        let started = Instant::now();
        let created = api
            .create_claim(&namespace, "claim", "standard", "ReadWriteOnce")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(created);
        let pod = ProbePod {
            name: "writer".into(),
            node: Some(node.to_string()),
            via_scheduler: true,
            tolerations: Vec::new(),
            image: support::TEST_IMAGE.into(),
            pull_policy: "Never".into(),
            script: "echo x > /data/probe && read -r got < /data/probe && [ \"$got\" = x ]".into(),
            volumes: vec![ProbeVolume {
                source: VolumeSource::Claim {
                    name: "claim".into(),
                },
                mount_path: "/data".into(),
                sub_path: None,
                read_only: false,
            }],
            run_as_root: true,
            stdin: false,
            // As verify's own storage pod.
            host_network: true,
            labels: Default::default(),
        };
        let outcome = runner
            .run(&pod, Instant::now() + Duration::from_secs(120))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let elapsed = started.elapsed().as_secs_f64();
        assert!(outcome.succeeded(), "{outcome:?}");
        let _ = api.delete_namespace(&namespace).await;
        elapsed
    }
}
