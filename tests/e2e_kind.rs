//! End to end with the real kind, a real Kubernetes and real pods. Runs with
//! `DEVCLUSTER_E2E=1` after `tests/support/real-kind.sh` has made the machine ready
//! (`DEVCLUSTER_KIND` and `DEVCLUSTER_E2E_NODE_IMAGE` come from the env file it writes);
//! `.ci/run` does both. Under CI a missing setup or a cluster kind cannot create fails
//! the test; elsewhere, without `DEVCLUSTER_E2E=1`, each test says it is skipped.
//!
//! The clusters run Kubernetes v1.20.2 built from Debian's source in a node image built
//! from Debian's packages. Three parts are test stand-ins (no Debian package ships
//! them): CoreDNS (answers its probes only), the CNI (bridge + host-local per node and
//! routes between nodes, as kindnetd does) and storage (a default StorageClass without
//! a provisioner: [`provide_volumes`] creates the PersistentVolumes a run needs).
//!
//! The tests run one at a time (each holds [`E2E_LOCK`]): two clusters starting at
//! once on a small CI machine make both slow and the timings meaningless.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

static E2E_LOCK: Mutex<()> = Mutex::new(());

/// What a real-kind test needs: the kind binary, the node image, and the turn.
struct E2e {
    kind: PathBuf,
    image: String,
    _turn: MutexGuard<'static, ()>,
}

fn e2e(test: &str) -> Option<E2e> {
    let enabled = std::env::var("DEVCLUSTER_E2E").is_ok_and(|v| v == "1");
    if !enabled {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "{test}: under CI the end-to-end tests run for real; set DEVCLUSTER_E2E=1 (`bash .ci/run` does)"
        );
        eprintln!(
            "SKIPPED {test}: set DEVCLUSTER_E2E=1 after `bash tests/support/real-kind.sh` and sourcing the env file it writes"
        );
        return None;
    }
    let setup = "run `bash tests/support/real-kind.sh`, then `. /var/cache/devcluster-e2e/env`";
    let kind = std::env::var("DEVCLUSTER_KIND")
        .unwrap_or_else(|_| panic!("{test}: DEVCLUSTER_KIND is not set; {setup}"));
    let image = std::env::var("DEVCLUSTER_E2E_NODE_IMAGE")
        .unwrap_or_else(|_| panic!("{test}: DEVCLUSTER_E2E_NODE_IMAGE is not set; {setup}"));
    assert!(
        Path::new(&kind).is_file(),
        "{test}: DEVCLUSTER_KIND={kind} is not a file; {setup}"
    );
    let inspect = support::docker(&["image", "inspect", &image]);
    assert!(
        inspect.status.success(),
        "{test}: the node image {image} is missing; {setup}"
    );
    let turn = E2E_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Some(E2e {
        kind: PathBuf::from(kind),
        image,
        _turn: turn,
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn devcluster(dir: &Path, args: &[&str]) -> Output {
    let start = Instant::now();
    let output = Command::new(support::devcluster_bin())
        .args(args)
        .current_dir(dir)
        .env("CI", "true")
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "devcluster {} -> {:?} in {:.1} s",
        args.join(" "),
        output.status.code(),
        start.elapsed().as_secs_f64()
    );
    output
}

fn success(output: &Output) -> &Output {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\nstdout:\n{}\nstderr:\n{}",
            text(&output.stdout),
            text(&output.stderr)
        )
    })
}

fn checks(output: &Output) -> Vec<Value> {
    json_of(output)["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The one row named `name` for `node` (`None`: the cluster-wide row) at `layer`.
fn row<'a>(all: &'a [Value], name: &str, node: Option<&str>, layer: &str) -> &'a Value {
    all.iter()
        .find(|c| {
            c["name"] == name
                && c["layer"] == layer
                && match node {
                    Some(node) => c["node"] == node,
                    None => c["node"].is_null(),
                }
        })
        .unwrap_or_else(|| panic!("no `{name}` row for {node:?} at the {layer} layer in {all:#?}"))
}

fn assert_ok(all: &[Value], name: &str, node: Option<&str>, layer: &str) {
    let found = row(all, name, node, layer);
    assert_eq!(found["status"], "ok", "{found:#}");
}

/// The profile's node names, as kind names the containers.
fn node_names(cluster: &str, workers: usize) -> Vec<String> {
    let mut names = vec![format!("{cluster}-control-plane")];
    for n in 1..=workers {
        names.push(if n == 1 {
            format!("{cluster}-worker")
        } else {
            format!("{cluster}-worker{n}")
        });
    }
    names
}

/// The node containers of a cluster, by kind's label.
fn containers(cluster: &str) -> Vec<String> {
    let out = support::docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={cluster}"),
        "--format",
        "{{.Names}}",
    ]);
    let mut names: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    names.sort();
    names
}

/// `kubectl ARGS` on the cluster's first control-plane node (kind sets KUBECONFIG
/// there to the admin kubeconfig), with `stdin`.
fn kubectl(cluster: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let node = format!("{cluster}-control-plane");
    let mut command = Command::new("docker");
    command.args(["exec", "-i", &node, "kubectl"]).args(args);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(stdin) = stdin {
            input.write_all(stdin.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// Waits until `check` holds for the cluster's API, or panics with the last answer.
fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => {
                eprintln!("{what} after {:.1} s", start.elapsed().as_secs_f64());
                return;
            }
            Err(last) if start.elapsed() > timeout => {
                panic!("{what}: not within {timeout:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

/// Every node in `expected` is registered and Ready.
fn nodes_ready(cluster: &str, expected: &[String]) -> Result<(), String> {
    let out = kubectl(cluster, &["get", "nodes", "-o", "json"], None);
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    let nodes: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let mut ready = BTreeMap::new();
    for node in nodes["items"].as_array().cloned().unwrap_or_default() {
        let is_ready = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.insert(
            node["metadata"]["name"].as_str().unwrap_or("").to_string(),
            is_ready,
        );
    }
    for name in expected {
        if ready.get(name) != Some(&true) {
            return Err(format!("{name} not Ready: {ready:?}"));
        }
    }
    Ok(())
}

/// The CoreDNS Deployment (the stand-in, under the name and image kubeadm gives
/// CoreDNS) has all its replicas available.
fn coredns_available(cluster: &str) -> Result<(), String> {
    let out = kubectl(
        cluster,
        &[
            "-n",
            "kube-system",
            "get",
            "deployment",
            "coredns",
            "-o",
            "json",
        ],
        None,
    );
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    let deployment: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let wanted = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let available = deployment["status"]["availableReplicas"]
        .as_i64()
        .unwrap_or(0);
    if available >= wanted {
        Ok(())
    } else {
        Err(format!(
            "{available}/{wanted} available: {}",
            deployment["status"]
        ))
    }
}

/// The storage stand-in has no provisioner: one PersistentVolume per node (16Mi claims
/// bind to it once their pod is placed there, the class binds on first consumer).
fn provide_volumes(cluster: &str, nodes: &[String], run: &str) {
    let manifest = support::stand_in_volumes("e2e", nodes, run);
    success(&kubectl(cluster, &["apply", "-f", "-"], Some(&manifest)));
}

/// Runs the real kind.
fn kind(e2e: &E2e, args: &[&str]) -> Output {
    let start = Instant::now();
    let output = Command::new(&e2e.kind)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "kind {} -> {:?} in {:.1} s",
        args.join(" "),
        output.status.code(),
        start.elapsed().as_secs_f64()
    );
    output
}

/// Deletes the cluster when dropped, whatever the test did: `devcluster down` for the
/// clusters devcluster made, kind itself for the ones the test made by hand.
struct Down<'a> {
    dir: &'a Path,
    kind: PathBuf,
    cluster: String,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = devcluster(self.dir, &["down", "--name", &self.cluster]);
        let _ = Command::new(&self.kind)
            .args(["delete", "cluster", "--name", &self.cluster])
            .output();
    }
}

fn down_guard<'a>(e2e: &E2e, dir: &'a Path, cluster: &str) -> Down<'a> {
    Down {
        dir,
        kind: e2e.kind.clone(),
        cluster: cluster.to_string(),
    }
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// The probe image the node image preloads (the busybox test image).
const PROBE_ARGS: [&str; 4] = [
    "--probe-image",
    support::TEST_IMAGE,
    "--image-pull-policy",
    "Never",
];

fn verify_args<'a>(profile: &'a str, cluster: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "verify",
        "--profile",
        profile,
        "--name",
        cluster,
        "-o",
        "json",
    ];
    args.extend(PROBE_ARGS);
    args
}

/// A free TCP port on 127.0.0.1 (the kernel's choice, released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_single_node_profile_comes_up_ready_recorded_verified_and_goes_down() {
    let Some(e2e) = e2e("a_single_node_profile_comes_up_ready_recorded_verified_and_goes_down")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::unique_name("one");
    let _down = down_guard(&e2e, dir.path(), &cluster);
    let profile = write(
        dir.path(),
        "one.yaml",
        &format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nimage: {}\nnodes: {{controlPlanes: 1, workers: 0}}\n",
            e2e.image
        ),
    );
    let profile = profile.to_str().unwrap();
    let up = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            profile,
            "--name",
            &cluster,
            "--no-verify",
            "-o",
            "json",
        ],
    );
    let result = json_of(success(&up));
    assert_eq!(result["action"], "created", "{result:#}");
    let nodes = node_names(&cluster, 0);
    assert_eq!(containers(&cluster), nodes);
    nodes_ready(&cluster, &nodes).unwrap();
    coredns_available(&cluster).unwrap();
    let record = support::docker(&["exec", &nodes[0], "cat", "/kind/devcluster/record.json"]);
    let record: Value = serde_json::from_slice(&success(&record).stdout).unwrap();
    assert!(record.is_object(), "{record}");

    let again = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            profile,
            "--name",
            &cluster,
            "--no-verify",
            "-o",
            "json",
        ],
    );
    assert_eq!(json_of(success(&again))["action"], "up-to-date");
    assert_eq!(containers(&cluster), nodes);

    provide_volumes(&cluster, &nodes, "one");
    let verify = devcluster(dir.path(), &verify_args(profile, &cluster));
    let all = checks(success(&verify));
    assert_ok(&all, "storage", Some(&nodes[0]), "pod");
    assert!(all.iter().all(|c| c["status"] != "fail"), "{all:#?}");

    // The same cluster through the any-cluster mode, as a cluster devcluster did not
    // make: only its kubeconfig.
    let kubeconfig = dir.path().join("foreign-kubeconfig");
    let exported = kind(&e2e, &["get", "kubeconfig", "--name", &cluster]);
    std::fs::write(&kubeconfig, &success(&exported).stdout).unwrap();
    provide_volumes(&cluster, &nodes, "foreign");
    let mut args = vec![
        "verify",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "-o",
        "json",
    ];
    args.extend(PROBE_ARGS);
    let foreign = devcluster(dir.path(), &args);
    let all = checks(success(&foreign));
    assert_ok(&all, "storage", Some(&nodes[0]), "pod");

    // `devcluster run` on this cluster: it reuses it (and so never deletes it), proves
    // it, hands the command a kubeconfig of its own (not the user's `KUBECONFIG`),
    // exits with the command's code, and a failed command leaves a bundle with
    // kind's logs of every node and a JUnit report holding the proof and the command.
    provide_volumes(&cluster, &nodes, "run");
    let junit = dir.path().join("run.xml");
    let bundle = dir.path().join("run-bundle");
    let user_kubeconfig = dir.path().join("kubeconfig");
    let script = format!(
        "test \"$KUBECONFIG\" != '{}' && grep -q 'server: https://' \"$KUBECONFIG\" && echo proven-cluster && exit 3",
        user_kubeconfig.display()
    );
    let mut args = vec!["run", "--profile", profile, "--name", &cluster];
    args.extend(PROBE_ARGS);
    let (junit_arg, bundle_arg) = (junit.display().to_string(), bundle.display().to_string());
    args.extend([
        "--junit",
        &junit_arg,
        "--bundle",
        &bundle_arg,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let run = devcluster(dir.path(), &args);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains("proven-cluster"),
        "the command's output is streamed"
    );
    assert_eq!(
        containers(&cluster),
        nodes,
        "a cluster that was there stays"
    );
    assert!(bundle.join("plan.json").is_file());
    assert!(bundle.join("kind-config.yaml").is_file());
    let kind_logs = std::fs::read_dir(bundle.join("kind-logs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        kind_logs > 0,
        "kind export logs wrote nothing: {}",
        text(&run.stderr)
    );
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(report.contains("storage ["), "{report}");
    assert!(report.contains("command `sh -c"), "{report}");
    assert!(report.contains("exited 3"), "{report}");

    success(&devcluster(dir.path(), &["down", "--name", &cluster]));
    assert_eq!(containers(&cluster), Vec::<String>::new());
    success(&devcluster(dir.path(), &["down", "--name", &cluster]));
}

/// One control plane and two workers from a profile: a read-write and a read-only
/// mount on every node, subPath and storage on every node, the second worker tainted
/// NoExecute. Then the kind emulator, given the same kind config, must make the same
/// containers as the real kind did.
#[test]
fn a_multi_node_profile_proves_mounts_subpath_and_storage_on_every_node() {
    let Some(e2e) = e2e("a_multi_node_profile_proves_mounts_subpath_and_storage_on_every_node")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::create_dir(dir.path().join("ro")).unwrap();
    let cluster = support::unique_name("multi");
    let _down = down_guard(&e2e, dir.path(), &cluster);
    let profile = write(
        dir.path(),
        "multi.yaml",
        &format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nimage: {}\nnodes:\n  controlPlanes: 1\n  workers: 2\n  taints:\n    worker2: [\"dedicated=db:NoExecute\"]\nmounts:\n  - hostPath: ./data\n    containerPath: /data\n  - hostPath: ./ro\n    containerPath: /ro\n    readOnly: true\n",
            e2e.image
        ),
    );
    let profile = profile.to_str().unwrap();
    let up = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            profile,
            "--name",
            &cluster,
            "--no-verify",
            "-o",
            "json",
        ],
    );
    assert_eq!(json_of(success(&up))["action"], "created");
    let nodes = node_names(&cluster, 2);
    assert_eq!(containers(&cluster), nodes);
    nodes_ready(&cluster, &nodes).unwrap();
    coredns_available(&cluster).unwrap();
    let again = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            profile,
            "--name",
            &cluster,
            "--no-verify",
            "-o",
            "json",
        ],
    );
    assert_eq!(json_of(success(&again))["action"], "up-to-date");

    provide_volumes(&cluster, &nodes, "multi");
    let verify = devcluster(dir.path(), &verify_args(profile, &cluster));
    let all = checks(success(&verify));
    for node in &nodes {
        for layer in ["node", "pod"] {
            assert_ok(&all, "mount /data", Some(node), layer);
            assert_ok(&all, "mount /ro", Some(node), layer);
        }
        assert_ok(&all, "subPath", Some(node), "pod");
        // Every node has a mount pod, and the kubelet gave it the key's file.
        let subpath = row(&all, "subPath", Some(node), "pod");
        assert!(
            subpath["detail"]
                .as_str()
                .unwrap_or("")
                .ends_with("(in the node's mount pod)"),
            "{subpath:#}"
        );
        // worker2 carries a NoExecute taint: the claim still binds there.
        assert_ok(&all, "storage", Some(node), "pod");
    }
    // The read-only mount refused the pod's write (that is what its ok row says).
    let read_only = row(&all, "mount /ro", Some(&nodes[1]), "pod");
    let detail = read_only["detail"].as_str().unwrap_or("").to_lowercase();
    assert!(
        detail.contains("read-only") || detail.contains("refused"),
        "{read_only:#}"
    );

    pods_reach_each_other_across_nodes(&cluster, &nodes[1], &nodes[0]);
    load_puts_a_fresh_image_on_every_node(dir.path(), &cluster, &nodes);

    // Hold the emulator against the real kind: the same kind config, the same
    // containers (names, labels, binds, published ports), node for node.
    let real: Vec<Value> = nodes.iter().map(|n| container_view(n)).collect();
    for view in &real {
        assert!(
            view["labels"].get("io.x-k8s.kind.role").is_some(),
            "{view:#}"
        );
        let binds = view["binds"].to_string();
        assert!(
            binds.contains(":/data") && binds.contains(":/ro:ro"),
            "{view:#}"
        );
    }
    assert!(real[0]["ports"].get("6443/tcp").is_some(), "{:#}", real[0]);
    let plan = devcluster(
        dir.path(),
        &["plan", "--profile", profile, "--name", &cluster],
    );
    let config = text(&success(&plan).stdout).replace(&e2e.image, support::TEST_IMAGE);
    success(&devcluster(dir.path(), &["down", "--name", &cluster]));
    assert_eq!(containers(&cluster), Vec::<String>::new());
    let config_path = write(dir.path(), "kind-config.yaml", &config);
    let cleanup = support::Cleanup::new().cluster(&cluster);
    let emulated = Command::new(support::kind_emulator())
        .args(["create", "cluster", "--name", &cluster, "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    success(&emulated);
    let emulated: Vec<Value> = nodes.iter().map(|n| container_view(n)).collect();
    drop(cleanup);
    assert_eq!(
        emulated, real,
        "the emulator's containers differ from real kind's"
    );
}

/// `devcluster load` of an image no node has (its own tag and content, built
/// here): every node gets it through `ctr images import`, and an
/// `imagePullPolicy: Never` pod runs it on each, the tainted control plane and the
/// NoExecute-tainted worker included. A second load finds it on every node.
fn load_puts_a_fresh_image_on_every_node(dir: &Path, cluster: &str, nodes: &[String]) {
    let image = support::images::ImportedImage::runnable(
        &format!("e2e-load/{cluster}:1"),
        &support::unique_name("token"),
    );
    let stored = format!("docker.io/{}", image.name);
    let in_containerd = |node: &str| {
        let listed = support::docker(&[
            "exec",
            node,
            "ctr",
            "--namespace=k8s.io",
            "images",
            "ls",
            "-q",
        ]);
        text(&listed.stdout).lines().any(|l| l.trim() == stored)
    };
    for node in nodes {
        assert!(!in_containerd(node), "{node} has {stored} before the load");
    }
    let start = Instant::now();
    let load = devcluster(dir, &["load", &image.name, "--name", cluster, "-o", "json"]);
    let report = json_of(success(&load));
    eprintln!(
        "load of {} on {} nodes, proven: {:?}",
        image.name,
        nodes.len(),
        start.elapsed()
    );
    let rows = report["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), nodes.len(), "{report:#}");
    for node in nodes {
        let row = rows
            .iter()
            .find(|r| r["node"] == node.as_str())
            .unwrap_or_else(|| panic!("no row for {node} in {report:#}"));
        assert_eq!(row["outcome"], "loaded", "{row:#}");
        assert_eq!(row["proof"], "ok", "{row:#}");
        assert!(in_containerd(node), "{node} lacks {stored} after the load");
    }
    let again = devcluster(dir, &["load", &image.name, "--name", cluster, "-o", "json"]);
    let report = json_of(success(&again));
    for row in report["nodes"].as_array().cloned().unwrap_or_default() {
        assert_eq!(row["outcome"], "already-present", "{row:#}");
        assert_eq!(row["proof"], "ok", "{row:#}");
    }
}

/// A pod on `server_node` serves HTTP; a pod on `client_node` fetches it by pod IP
/// (the CNI stand-in's bridge and routes between nodes, as kindnetd's).
fn pods_reach_each_other_across_nodes(cluster: &str, server_node: &str, client_node: &str) {
    let pod = |name: &str, node: &str, command: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "nodeName": node,
                "terminationGracePeriodSeconds": 0,
                "tolerations": [{"operator": "Exists"}],
                "containers": [{
                    "name": "main",
                    "image": support::TEST_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", command]
                }]
            }
        })
        .to_string()
    };
    let manifest = format!(
        "{}\n{}\n",
        pod(
            "e2e-server",
            server_node,
            "mkdir -p /srv && echo across > /srv/index.html && exec httpd -f -p 8080 -h /srv"
        ),
        pod("e2e-client", client_node, "exec sleep 600")
    );
    success(&kubectl(cluster, &["apply", "-f", "-"], Some(&manifest)));
    // busybox's `wget -T` crashes in this build; `timeout` bounds each try.
    let mut answer = String::new();
    wait_for(
        "a pod answering across nodes",
        Duration::from_secs(90),
        || {
            let ip = kubectl(
                cluster,
                &["get", "pod", "e2e-server", "-o", "jsonpath={.status.podIP}"],
                None,
            );
            let ip = text(&ip.stdout);
            if ip.is_empty() {
                return Err("no pod IP yet".into());
            }
            let got = kubectl(
                cluster,
                &[
                    "exec",
                    "e2e-client",
                    "--",
                    "timeout",
                    "5",
                    "wget",
                    "-q",
                    "-O",
                    "-",
                    &format!("http://{ip}:8080/"),
                ],
                None,
            );
            answer = text(&got.stdout);
            if answer.trim() == "across" {
                Ok(())
            } else {
                Err(format!("{answer} {}", text(&got.stderr)))
            }
        },
    );
    let _ = kubectl(
        cluster,
        &["delete", "pod", "e2e-server", "e2e-client", "--wait=false"],
        None,
    );
}

/// What the emulator must make the same as kind: a container's name, the labels it
/// was given (its image's own labels left out), its binds and its published ports.
/// The API server's host port is kind's pick of a free port: only its address counts.
fn container_view(name: &str) -> Value {
    let inspect = support::docker(&["inspect", name]);
    let container: Value = serde_json::from_slice(&success(&inspect).stdout).unwrap();
    let container = &container[0];
    let image = support::docker(&["image", "inspect", container["Image"].as_str().unwrap()]);
    let image: Value = serde_json::from_slice(&success(&image).stdout).unwrap();
    let image_labels = image[0]["Config"]["Labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let labels: BTreeMap<String, Value> = container["Config"]["Labels"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| image_labels.get(k) != Some(v))
        .collect();
    let mut binds: Vec<String> = container["HostConfig"]["Binds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.as_str().map(str::to_string))
        .collect();
    binds.sort();
    let mut ports = BTreeMap::new();
    for (port, bindings) in container["HostConfig"]["PortBindings"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        let bindings: Vec<Value> = bindings
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                if port == "6443/tcp" {
                    json!({"HostIp": b["HostIp"]})
                } else {
                    json!({"HostIp": b["HostIp"], "HostPort": b["HostPort"]})
                }
            })
            .collect();
        ports.insert(port, bindings);
    }
    json!({"name": container["Name"], "labels": labels, "binds": binds, "ports": ports})
}

/// A mount the team meant for every node, declared on one node only in a kind config
/// made by hand: verify, given the profile that says every node, catches it at the
/// node layer on the others.
#[test]
fn a_mount_declared_on_one_node_is_caught_on_the_others() {
    let Some(e2e) = e2e("a_mount_declared_on_one_node_is_caught_on_the_others") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let cluster = support::unique_name("narrow");
    let _down = down_guard(&e2e, dir.path(), &cluster);
    let config = write(
        dir.path(),
        "kind.yaml",
        &format!(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n  - role: worker\n    extraMounts:\n      - hostPath: {}\n        containerPath: /data\n  - role: worker\n",
            data.display()
        ),
    );
    let created = kind(
        &e2e,
        &[
            "create",
            "cluster",
            "--name",
            &cluster,
            "--image",
            &e2e.image,
            "--config",
            config.to_str().unwrap(),
        ],
    );
    success(&created);
    let nodes = node_names(&cluster, 2);
    wait_for("nodes Ready", Duration::from_secs(180), || {
        nodes_ready(&cluster, &nodes)
    });
    let wide = write(
        dir.path(),
        "wide.yaml",
        &format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nimage: {}\nnodes: {{workers: 2}}\nmounts:\n  - hostPath: ./data\n    containerPath: /data\n",
            e2e.image
        ),
    );
    provide_volumes(&cluster, &nodes, "narrow");
    let verify = devcluster(dir.path(), &verify_args(wide.to_str().unwrap(), &cluster));
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify.stderr));
    let all = checks(&verify);
    assert_ok(&all, "mount /data", Some(&nodes[1]), "node");
    assert_ok(&all, "mount /data", Some(&nodes[1]), "pod");
    for node in [&nodes[0], &nodes[2]] {
        let failed = row(&all, "mount /data", Some(node), "node");
        assert_eq!(failed["status"], "fail", "{failed:#}");
        let skipped = row(&all, "mount /data", Some(node), "pod");
        assert_eq!(skipped["status"], "skip", "{skipped:#}");
    }
}

/// A port mapped on one worker: published by that node's container and no other, and
/// a NodePort Service on the mapping's container port answers through the host port.
#[test]
fn a_port_on_a_worker_is_published_by_it_alone_and_its_node_port_answers() {
    let Some(e2e) = e2e("a_port_on_a_worker_is_published_by_it_alone_and_its_node_port_answers")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::unique_name("port");
    let _down = down_guard(&e2e, dir.path(), &cluster);
    let host_port = free_port();
    let profile = write(
        dir.path(),
        "port.yaml",
        &format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nimage: {}\nnodes: {{workers: 1}}\nports:\n  - containerPort: 30080\n    hostPort: {host_port}\n    node: worker\n",
            e2e.image
        ),
    );
    let profile = profile.to_str().unwrap();
    let up = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            profile,
            "--name",
            &cluster,
            "--no-verify",
            "-o",
            "json",
        ],
    );
    let result = json_of(success(&up));
    assert_eq!(result["action"], "created", "{result:#}");
    let nodes = node_names(&cluster, 1);
    for node in &nodes {
        let view = container_view(node);
        let published = view["ports"].get("30080/tcp").cloned();
        if node.ends_with("-worker") {
            assert_eq!(
                published,
                Some(json!([{"HostIp": "127.0.0.1", "HostPort": host_port.to_string()}])),
                "{view:#}"
            );
        } else {
            assert_eq!(published, None, "{view:#}");
        }
    }
    provide_volumes(&cluster, &nodes, "port");
    let verify = devcluster(
        dir.path(),
        &[&verify_args(profile, &cluster)[..], &["--timeout", "90s"]].concat(),
    );
    let all = checks(success(&verify));
    assert_ok(&all, "port 30080/TCP", Some(&nodes[1]), "node");
    let answered = all
        .iter()
        .find(|c| {
            c["layer"] == "pod"
                && c["status"] == "ok"
                && c["name"].as_str().is_some_and(|n| n.contains("30080"))
        })
        .unwrap_or_else(|| panic!("no pod-layer row proves port 30080 over HTTP: {all:#?}"));
    assert_eq!(answered["node"], nodes[1].as_str(), "{answered:#}");
}

/// A local registry (kind's local registry guide): `up` runs it on 127.0.0.1 and
/// configures containerd (Debian 12's 1.6, which reads `config_path`) on both nodes;
/// verify pushes an image from the host through the Engine API and a pod on every
/// node pulls it from `localhost:<port>`; `down` removes the registry it made.
#[test]
fn a_local_registry_serves_an_image_pushed_from_the_host_to_every_node() {
    let Some(e2e) = e2e("a_local_registry_serves_an_image_pushed_from_the_host_to_every_node")
    else {
        return;
    };
    // Built from Debian's docker-registry by tests/support/build-registry-image.sh.
    let registry_image = "devcluster-test/registry:2";
    assert!(
        support::docker(&["image", "inspect", registry_image])
            .status
            .success(),
        "{registry_image} is missing: run `bash tests/support/build-registry-image.sh`"
    );
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::unique_name("registry");
    let _down = down_guard(&e2e, dir.path(), &cluster);
    let port = free_port();
    let registry = format!("devcluster-registry-{port}");
    let _registry = support::Cleanup::new().container(&registry);
    let profile = write(
        dir.path(),
        "registry.yaml",
        &format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nimage: {}\nnodes: {{workers: 1}}\nregistry:\n  enabled: true\n  hostPort: {port}\n  image: {registry_image}\n",
            e2e.image
        ),
    );
    let profile = profile.to_str().unwrap();
    let up = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            profile,
            "--name",
            &cluster,
            "--no-verify",
            "-o",
            "json",
        ],
    );
    let result = json_of(success(&up));
    let step = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "registry")
        .unwrap_or_else(|| panic!("no registry step: {result:#}"));
    eprintln!("registry step: {} s: {}", step["seconds"], step["detail"]);
    let view = container_view(&registry);
    assert_eq!(
        view["ports"]["5000/tcp"],
        json!([{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]),
        "{view:#}"
    );
    let nodes = node_names(&cluster, 1);
    let hosting = kubectl(
        &cluster,
        &[
            "get",
            "configmap",
            "-n",
            "kube-public",
            "local-registry-hosting",
            "-o",
            "jsonpath={.data.localRegistryHosting\\.v1}",
        ],
        None,
    );
    assert!(
        text(&success(&hosting).stdout).contains(&format!("host: \"localhost:{port}\"")),
        "{}",
        text(&hosting.stdout)
    );

    provide_volumes(&cluster, &nodes, "registry");
    let verify = devcluster(
        dir.path(),
        &[&verify_args(profile, &cluster)[..], &["--timeout", "120s"]].concat(),
    );
    let all = checks(&verify);
    for node in &nodes {
        assert_ok(&all, "registry", Some(node), "node");
        assert_ok(&all, "registry", Some(node), "pod");
        let pulled = row(&all, "registry", Some(node), "pod");
        assert!(
            pulled["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("pulled localhost:{port}/devcluster-probe:")),
            "{pulled:#}"
        );
    }
    assert!(
        all.iter().any(|c| c["name"] == "registry"
            && c["layer"] == "host"
            && c["status"] == "ok"
            && c["detail"].as_str().unwrap().starts_with("pushed ")),
        "{all:#?}"
    );
    success(&verify);

    success(&devcluster(dir.path(), &["down", "--name", &cluster]));
    assert_eq!(containers(&cluster), Vec::<String>::new());
    assert!(
        !support::docker(&["inspect", &registry]).status.success(),
        "down removes the registry devcluster made"
    );
}

/// A step after create fails: `--timeout 1s` makes the nodes-Ready wait fail. Without
/// `--retain` the new cluster is deleted; with it the nodes are kept.
#[test]
fn a_failed_create_is_rolled_back_without_retain_and_kept_with_it() {
    let Some(e2e) = e2e("a_failed_create_is_rolled_back_without_retain_and_kept_with_it") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let profile = write(
        dir.path(),
        "one.yaml",
        &format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nimage: {}\n",
            e2e.image
        ),
    );
    let profile = profile.to_str().unwrap();

    let cluster = support::unique_name("rollback");
    let _down = down_guard(&e2e, dir.path(), &cluster);
    let up = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            profile,
            "--name",
            &cluster,
            "--timeout",
            "1s",
            "--no-verify",
        ],
    );
    let stderr = text(&up.stderr);
    assert_eq!(up.status.code(), Some(1), "{stderr}");
    // The deadline starts when kind create returns: what failed is the wait for the
    // nodes to be Ready, not kind.
    assert!(stderr.to_lowercase().contains("ready"), "{stderr}");
    assert_eq!(containers(&cluster), Vec::<String>::new(), "{stderr}");

    let kept = support::unique_name("retain");
    let _down_kept = down_guard(&e2e, dir.path(), &kept);
    let up = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            profile,
            "--name",
            &kept,
            "--timeout",
            "1s",
            "--no-verify",
            "--retain",
        ],
    );
    let stderr = text(&up.stderr);
    assert_eq!(up.status.code(), Some(1), "{stderr}");
    let nodes = node_names(&kept, 0);
    assert_eq!(containers(&kept), nodes, "{stderr}");
    // What is kept is the cluster kind finished creating: its API answers and the
    // node becomes Ready.
    success(&kind(&e2e, &["get", "kubeconfig", "--name", &kept]));
    wait_for("the kept node Ready", Duration::from_secs(120), || {
        nodes_ready(&kept, &nodes)
    });
}

/// A step of the converge phase fails: the probe image cannot be pulled, so verify
/// fails. The cluster is kept, `up` exits 1, and says what to run next.
#[test]
fn a_failed_verify_after_create_keeps_the_cluster() {
    let Some(e2e) = e2e("a_failed_verify_after_create_keeps_the_cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let profile = write(
        dir.path(),
        "one.yaml",
        &format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nimage: {}\n",
            e2e.image
        ),
    );
    let cluster = support::unique_name("converge");
    let _down = down_guard(&e2e, dir.path(), &cluster);
    let up = devcluster(
        dir.path(),
        &[
            "up",
            "--profile",
            profile.to_str().unwrap(),
            "--name",
            &cluster,
            "--probe-image",
            "devcluster-e2e/no-such-image:1",
            "--image-pull-policy",
            "Never",
            // The deadline starts after kind create; it bounds the nodes-Ready wait
            // and the probes (a probe pod that can never start waits it out).
            "--timeout",
            "60s",
        ],
    );
    let stderr = text(&up.stderr);
    assert_eq!(up.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("devcluster up") || stderr.contains("devcluster verify"),
        "no next command in: {stderr}"
    );
    let nodes = node_names(&cluster, 0);
    assert_eq!(containers(&cluster), nodes, "{stderr}");
    nodes_ready(&cluster, &nodes).unwrap();
    let ids = container_ids(&cluster);

    // The next `up` with an image the nodes have resumes converging the same cluster.
    provide_volumes(&cluster, &nodes, "resume");
    let mut args = vec![
        "up",
        "--profile",
        profile.to_str().unwrap(),
        "--name",
        &cluster,
        "-o",
        "json",
    ];
    args.extend(PROBE_ARGS);
    let again = devcluster(dir.path(), &args);
    let result = json_of(success(&again));
    assert_ne!(result["action"], "created", "{result:#}");
    assert_ne!(result["action"], "recreated", "{result:#}");
    assert_eq!(container_ids(&cluster), ids, "the cluster was recreated");
}

fn container_ids(cluster: &str) -> Vec<String> {
    let out = support::docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={cluster}"),
    ]);
    let mut ids: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    ids.sort();
    ids
}
