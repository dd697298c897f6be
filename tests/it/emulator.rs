//! The kind emulator against a real Docker Engine: containers, mounts, ports, labels and
//! names as kind v0.32 would create them, and held against `devcluster plan`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{Cleanup, TEST_IMAGE, docker, docker_available, kind_emulator, unique_name};

/// Runs the emulator with `args`, feeding `stdin`, with a private kubeconfig.
fn kind(args: &[&str], stdin: Option<&str>, kubeconfig: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(kind_emulator());
    command
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KIND_CLUSTER_NAME")
        .env_remove("KIND_EMULATOR_FAIL_AFTER_NODES")
        .env_remove("KIND_EMULATOR_SLOW_SECONDS")
        .env("KIND_EMULATOR_IMAGE", TEST_IMAGE)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("kind emulator did not start: {e}"));
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Containers carrying the cluster's label, sorted.
fn cluster_containers(cluster: &str) -> Vec<String> {
    let out = docker(&[
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

fn inspect(container: &str) -> Value {
    let out = docker(&["inspect", container]);
    assert_ok(&out, &format!("docker inspect {container}"));
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    all[0].clone()
}

/// `HostConfig.Binds` as a set: Docker does not keep their order.
fn binds(node: &Value) -> BTreeSet<String> {
    node["HostConfig"]["Binds"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `HostConfig.PortBindings` as `containerPort/proto -> [(HostIp, HostPort)]`.
fn port_bindings(node: &Value) -> BTreeMap<String, Vec<(String, String)>> {
    let mut result = BTreeMap::new();
    if let Some(map) = node["HostConfig"]["PortBindings"].as_object() {
        for (key, list) in map {
            let entries = list
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    (
                        b["HostIp"].as_str().unwrap_or("").to_string(),
                        b["HostPort"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            result.insert(key.clone(), entries);
        }
    }
    result
}

fn label<'a>(node: &'a Value, key: &str) -> &'a str {
    node["Config"]["Labels"][key].as_str().unwrap_or("")
}

/// A TCP port nothing listens on right now, on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn multi_node_create_makes_kind_containers_with_mounts_and_ports() {
    if !docker_available("multi_node_create_makes_kind_containers_with_mounts_and_ports") {
        return;
    }
    let cluster = unique_name("multi");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let dir = temp_dir();
    let data = dir.path().join("data");
    let shared = dir.path().join("shared");
    let both = dir.path().join("both");
    for d in [&data, &shared, &both] {
        std::fs::create_dir_all(d).unwrap();
    }
    let kubeconfig = dir.path().join("kubeconfig");
    let fixed = free_port();
    let config = format!(
        r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  extraMounts:
  - hostPath: {data}
    containerPath: /data
    readOnly: true
  extraPortMappings:
  - containerPort: 30080
    hostPort: {fixed}
    listenAddress: 127.0.0.1
  - containerPort: 30053
    hostPort: 0
    protocol: UDP
- role: worker
  extraMounts:
  - hostPath: {shared}
    containerPath: /shared
    selinuxRelabel: true
    propagation: HostToContainer
  - hostPath: {both}
    containerPath: /both
    readOnly: true
    selinuxRelabel: true
    propagation: Bidirectional
  extraPortMappings:
  - containerPort: 30443
    hostPort: 0
    listenAddress: 127.0.0.1
    protocol: TCP
- role: worker
"#,
        data = data.display(),
        shared = shared.display(),
        both = both.display(),
    );
    let out = kind(
        &[
            "create", "cluster", "--name", &cluster, "--config", "-", "--wait", "1s",
        ],
        Some(&config),
        &kubeconfig,
        &[],
    );
    assert_ok(&out, "create cluster");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("Creating cluster \"{cluster}\" ...")),
        "{stderr}"
    );
    assert!(stderr.contains(" ✓ Preparing nodes 📦 📦 📦"), "{stderr}");
    assert!(out.stdout.is_empty(), "create printed data on stdout");

    let control_plane = format!("{cluster}-control-plane");
    let worker = format!("{cluster}-worker");
    let worker2 = format!("{cluster}-worker2");
    assert_eq!(
        cluster_containers(&cluster),
        vec![control_plane.clone(), worker.clone(), worker2.clone()]
    );

    for (name, role) in [
        (&control_plane, "control-plane"),
        (&worker, "worker"),
        (&worker2, "worker"),
    ] {
        let node = inspect(name);
        assert_eq!(node["Name"].as_str(), Some(format!("/{name}").as_str()));
        assert_eq!(node["Config"]["Hostname"].as_str(), Some(name.as_str()));
        assert_eq!(label(&node, "io.x-k8s.kind.cluster"), cluster);
        assert_eq!(label(&node, "io.x-k8s.kind.role"), role);
        assert_eq!(node["HostConfig"]["NetworkMode"].as_str(), Some("kind"));
        assert!(node["NetworkSettings"]["Networks"]["kind"].is_object());
        assert_eq!(
            node["HostConfig"]["RestartPolicy"]["Name"].as_str(),
            Some("on-failure")
        );
        assert_eq!(
            node["HostConfig"]["RestartPolicy"]["MaximumRetryCount"].as_i64(),
            Some(1)
        );
        assert_eq!(node["HostConfig"]["Privileged"].as_bool(), Some(false));
        let tmpfs = node["HostConfig"]["Tmpfs"].as_object().unwrap();
        assert!(
            tmpfs.contains_key("/tmp") && tmpfs.contains_key("/run"),
            "{tmpfs:?}"
        );
        let var_volume = node["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["Type"] == "volume" && m["Destination"] == "/var");
        assert!(var_volume, "{name} has no anonymous /var volume");
        assert_eq!(
            node["State"]["Running"].as_bool(),
            Some(true),
            "{name} is not running"
        );
    }

    let cp = inspect(&control_plane);
    assert_eq!(
        binds(&cp),
        BTreeSet::from([
            "/lib/modules:/lib/modules:ro".to_string(),
            format!("{}:/data:ro", data.display()),
        ])
    );
    let ports = port_bindings(&cp);
    assert_eq!(
        ports["30080/tcp"],
        vec![("127.0.0.1".to_string(), fixed.to_string())]
    );
    let (udp_ip, udp_port) = &ports["30053/udp"][0];
    assert_eq!(udp_ip, "0.0.0.0");
    assert!(
        udp_port.parse::<u16>().unwrap() > 0,
        "hostPort 0 was not resolved: {udp_port}"
    );
    let (api_ip, api_port) = &ports["6443/tcp"][0];
    assert_eq!(api_ip, "127.0.0.1");
    assert!(api_port.parse::<u16>().unwrap() > 0);
    assert_eq!(ports.len(), 3, "{ports:?}");

    let w = inspect(&worker);
    assert_eq!(
        binds(&w),
        BTreeSet::from([
            "/lib/modules:/lib/modules:ro".to_string(),
            format!("{}:/shared:Z,rslave", shared.display()),
            format!("{}:/both:ro,Z,rshared", both.display()),
        ])
    );
    let ports = port_bindings(&w);
    assert_eq!(
        ports.len(),
        1,
        "a worker publishes no API server port: {ports:?}"
    );
    let (ip, port) = &ports["30443/tcp"][0];
    assert_eq!(ip, "127.0.0.1");
    assert!(port.parse::<u16>().unwrap() > 0);

    let w2 = inspect(&worker2);
    assert_eq!(
        binds(&w2),
        BTreeSet::from(["/lib/modules:/lib/modules:ro".to_string()])
    );
    assert!(port_bindings(&w2).is_empty());

    // The kubeconfig points at the published API server port.
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        written.contains(&format!("server: https://127.0.0.1:{api_port}")),
        "{written}"
    );
    assert!(
        written.contains(&format!("current-context: kind-{cluster}")),
        "{written}"
    );
}

/// The emulator creates exactly what `devcluster plan` says, node by node.
#[test]
fn emulator_containers_match_devcluster_plan() {
    if !docker_available("emulator_containers_match_devcluster_plan") {
        return;
    }
    let cluster = unique_name("plan");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let dir = temp_dir();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::create_dir_all(dir.path().join("cache")).unwrap();
    let fixed = free_port();
    let profile = dir.path().join("profile.yaml");
    std::fs::write(
        &profile,
        format!(
            r#"apiVersion: devcluster.dev/v1alpha1
kind: Profile
nodes:
  controlPlanes: 1
  workers: 2
mounts:
  - hostPath: ./data
    containerPath: /data
    nodes: all
    readOnly: true
  - hostPath: ./cache
    containerPath: /cache
    nodes: workers
    propagation: HostToContainer
    selinuxRelabel: true
ports:
  - containerPort: 30080
    hostPort: {fixed}
    node: worker
  - containerPort: 30081
    hostPort: 0
    node: worker2
  - containerPort: 30053
    hostPort: 0
    protocol: UDP
    node: control-plane
"#
        ),
    )
    .unwrap();
    let devcluster = |extra: &[&str]| {
        let mut args = vec![
            "plan",
            "--profile",
            profile.to_str().unwrap(),
            "--name",
            &cluster,
        ];
        args.extend_from_slice(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_devcluster"))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_ok(&out, &format!("devcluster {args:?}"));
        text(&out.stdout)
    };
    let yaml = devcluster(&[]);
    let plan: Value = serde_json::from_str(&devcluster(&["-o", "json"])).unwrap();
    let planned_nodes = plan["nodes"].as_array().unwrap();
    assert_eq!(planned_nodes.len(), 3);

    let out = kind(
        &["create", "cluster", "--name", &cluster, "--config", "-"],
        Some(&yaml),
        &dir.path().join("kubeconfig"),
        &[],
    );
    assert_ok(&out, "create cluster from devcluster plan");

    let mut expected_names: Vec<String> = planned_nodes
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    expected_names.sort();
    assert_eq!(cluster_containers(&cluster), expected_names);

    for planned in planned_nodes {
        let name = planned["name"].as_str().unwrap();
        let role = planned["role"].as_str().unwrap();
        let node = inspect(name);
        assert_eq!(node["Config"]["Hostname"].as_str(), Some(name));
        assert_eq!(label(&node, "io.x-k8s.kind.cluster"), cluster);
        assert_eq!(label(&node, "io.x-k8s.kind.role"), role);

        // Mounts: kind's bind string for each planned mount, plus /lib/modules.
        let mut expected_binds = BTreeSet::from(["/lib/modules:/lib/modules:ro".to_string()]);
        for mount in planned["mounts"].as_array().unwrap() {
            let mut options = Vec::new();
            if mount["readOnly"].as_bool() == Some(true) {
                options.push("ro");
            }
            if mount["selinuxRelabel"].as_bool() == Some(true) {
                options.push("Z");
            }
            match mount["propagation"].as_str() {
                Some("HostToContainer") => options.push("rslave"),
                Some("Bidirectional") => options.push("rshared"),
                _ => {}
            }
            let mut bind = format!(
                "{}:{}",
                mount["hostPath"].as_str().unwrap(),
                mount["containerPath"].as_str().unwrap()
            );
            if !options.is_empty() {
                bind = format!("{bind}:{}", options.join(","));
            }
            expected_binds.insert(bind);
        }
        assert_eq!(binds(&node), expected_binds, "binds of {name}");

        // Ports: every planned mapping, plus the API server on the control-plane.
        let actual = port_bindings(&node);
        let mut expected_keys = BTreeSet::new();
        for port in planned["ports"].as_array().unwrap() {
            let key = format!(
                "{}/{}",
                port["containerPort"].as_u64().unwrap(),
                port["protocol"].as_str().unwrap().to_lowercase()
            );
            let bindings = actual
                .get(&key)
                .unwrap_or_else(|| panic!("{name} does not publish {key}: {actual:?}"));
            assert_eq!(bindings.len(), 1, "{name} {key}: {bindings:?}");
            let (ip, host_port) = &bindings[0];
            assert_eq!(ip, port["listenAddress"].as_str().unwrap(), "{name} {key}");
            match port["hostPort"].as_i64().unwrap() {
                0 => assert!(
                    host_port.parse::<u16>().unwrap() > 0,
                    "{name} {key}: {host_port}"
                ),
                -1 => assert_eq!(host_port, "0", "{name} {key}"),
                n => assert_eq!(host_port, &n.to_string(), "{name} {key}"),
            }
            expected_keys.insert(key);
        }
        if role == "control-plane" {
            let api = &actual["6443/tcp"][0];
            assert_eq!(
                api.0,
                plan["networking"]["apiServerAddress"].as_str().unwrap()
            );
            expected_keys.insert("6443/tcp".to_string());
        }
        assert_eq!(
            actual.keys().cloned().collect::<BTreeSet<_>>(),
            expected_keys,
            "published ports of {name}"
        );
    }
    // The fixed port landed where the plan put it.
    let worker = inspect(&format!("{cluster}-worker"));
    assert_eq!(port_bindings(&worker)["30080/tcp"][0].1, fixed.to_string());
}

#[test]
fn get_commands_and_idempotent_delete() {
    if !docker_available("get_commands_and_idempotent_delete") {
        return;
    }
    let cluster = unique_name("get");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let dir = temp_dir();
    let kubeconfig = dir.path().join("kubeconfig");
    // An unrelated entry survives create and delete.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://example.invalid\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\nusers:\n- name: other\n  user: {}\ncurrent-context: other\n",
    )
    .unwrap();
    let config = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n";
    let out = kind(
        &["create", "cluster", "--name", &cluster, "--config", "-"],
        Some(config),
        &kubeconfig,
        &[],
    );
    assert_ok(&out, "create");

    let out = kind(&["get", "clusters"], None, &kubeconfig, &[]);
    assert_ok(&out, "get clusters");
    let clusters: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert!(clusters.contains(&cluster), "{clusters:?}");
    let mut sorted = clusters.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(clusters, sorted, "get clusters is sorted and deduplicated");

    let out = kind(
        &["get", "nodes", "--name", &cluster],
        None,
        &kubeconfig,
        &[],
    );
    assert_ok(&out, "get nodes");
    assert_eq!(
        text(&out.stdout),
        format!("{cluster}-control-plane\n{cluster}-worker\n")
    );

    // KIND_CLUSTER_NAME stands in for --name.
    let out = kind(
        &["get", "nodes"],
        None,
        &kubeconfig,
        &[("KIND_CLUSTER_NAME", &cluster)],
    );
    assert_ok(&out, "get nodes with KIND_CLUSTER_NAME");
    assert_eq!(text(&out.stdout).lines().count(), 2);

    let api_port = port_bindings(&inspect(&format!("{cluster}-control-plane")))["6443/tcp"][0]
        .1
        .clone();
    let out = kind(
        &["get", "kubeconfig", "--name", &cluster],
        None,
        &kubeconfig,
        &[],
    );
    assert_ok(&out, "get kubeconfig");
    let printed: Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    let context = format!("kind-{cluster}");
    assert_eq!(printed["current-context"].as_str(), Some(context.as_str()));
    assert_eq!(
        printed["clusters"][0]["cluster"]["server"].as_str(),
        Some(format!("https://127.0.0.1:{api_port}").as_str())
    );
    assert_eq!(
        printed["contexts"][0]["context"]["user"].as_str(),
        Some(context.as_str())
    );
    assert_eq!(printed["users"][0]["name"].as_str(), Some(context.as_str()));

    // Merged into $KUBECONFIG, next to the existing entry, and made current.
    let merged: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    let names = |section: &str, config: &Value| -> Vec<String> {
        config[section]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names("contexts", &merged),
        vec!["other".to_string(), context.clone()]
    );
    assert_eq!(merged["current-context"].as_str(), Some(context.as_str()));

    let logs = dir.path().join("logs");
    let out = kind(
        &["export", "logs", logs.to_str().unwrap(), "--name", &cluster],
        None,
        &kubeconfig,
        &[],
    );
    // The directory is printed first, then every node's files are written; the
    // emulator's nodes have no systemd or crictl, so those commands fail after
    // writing what they printed, and kind reports them all at once (exit 1).
    assert_eq!(text(&out.stdout).trim(), logs.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "command \"docker exec {cluster}-worker journalctl --no-pager -u kubelet.service\" failed with error: exit status"
        )),
        "{stderr}"
    );
    assert!(logs.join("kind-version.txt").is_file());
    assert!(logs.join("docker-info.txt").is_file());
    for node in [
        format!("{cluster}-control-plane"),
        format!("{cluster}-worker"),
    ] {
        for file in [
            "serial.log",
            "kubernetes-version.txt",
            "journal.log",
            "kubelet.log",
            "containerd.log",
            "images.log",
            "inspect.json",
        ] {
            assert!(logs.join(&node).join(file).is_file(), "{node}/{file}");
        }
    }
    let kubelet =
        std::fs::read_to_string(logs.join(format!("{cluster}-worker/kubelet.log"))).unwrap();
    assert!(kubelet.contains("journalctl"), "{kubelet}");
    let inspect_json = logs.join(format!("{cluster}-worker")).join("inspect.json");
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(&inspect_json).unwrap()).unwrap();
    assert_eq!(
        exported[0]["Config"]["Hostname"].as_str(),
        Some(format!("{cluster}-worker").as_str())
    );
    assert!(
        logs.join(format!("{cluster}-control-plane"))
            .join("serial.log")
            .is_file()
    );

    for attempt in 1..=2 {
        let out = kind(
            &["delete", "cluster", "--name", &cluster],
            None,
            &kubeconfig,
            &[],
        );
        assert_ok(&out, &format!("delete cluster (attempt {attempt})"));
        assert!(
            text(&out.stderr).contains(&format!("Deleting cluster \"{cluster}\" ...")),
            "{}",
            text(&out.stderr)
        );
        assert!(cluster_containers(&cluster).is_empty());
    }
    let after: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    assert_eq!(names("contexts", &after), vec!["other".to_string()]);
    assert_eq!(names("clusters", &after), vec!["other".to_string()]);
    assert_eq!(names("users", &after), vec!["other".to_string()]);
    // The kind network stays.
    assert_ok(
        &docker(&["network", "inspect", "kind"]),
        "network inspect kind",
    );

    let out = kind(
        &["get", "nodes", "--name", &cluster],
        None,
        &kubeconfig,
        &[],
    );
    assert_ok(&out, "get nodes of a deleted cluster");
    assert!(out.stdout.is_empty());
    let out = kind(
        &["get", "kubeconfig", "--name", &cluster],
        None,
        &kubeconfig,
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("ERROR: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn create_refuses_an_existing_cluster() {
    if !docker_available("create_refuses_an_existing_cluster") {
        return;
    }
    let cluster = unique_name("twice");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let dir = temp_dir();
    let kubeconfig = dir.path().join("kubeconfig");
    let out = kind(
        &[
            "create",
            "cluster",
            "--name",
            &cluster,
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        None,
        &dir.path().join("unused"),
        &[],
    );
    assert_ok(&out, "first create");
    assert!(kubeconfig.is_file(), "--kubeconfig was not written");
    assert!(
        !dir.path().join("unused").exists(),
        "$KUBECONFIG was touched despite --kubeconfig"
    );
    let out = kind(
        &["create", "cluster", "--name", &cluster],
        None,
        &kubeconfig,
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "ERROR: failed to create cluster: node(s) already exist for a cluster with the name \"{cluster}\""
        )
    );
    assert_eq!(
        cluster_containers(&cluster),
        vec![format!("{cluster}-control-plane")]
    );
}

#[test]
fn create_failing_on_a_taken_port_leaves_no_containers() {
    if !docker_available("create_failing_on_a_taken_port_leaves_no_containers") {
        return;
    }
    let cluster = unique_name("taken");
    let holder = unique_name("holder");
    let _cleanup = Cleanup::new().cluster(&cluster).container(&holder);
    let port = free_port();
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &holder,
        "-p",
        &format!("127.0.0.1:{port}:80"),
        TEST_IMAGE,
        "sleep",
        "600",
    ]);
    assert_ok(&out, "start the port holder");
    let dir = temp_dir();
    // The worker gets the taken port, so the control-plane exists before it fails.
    let config = format!(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n  extraPortMappings:\n  - containerPort: 80\n    hostPort: {port}\n    listenAddress: 127.0.0.1\n"
    );
    let out = kind(
        &["create", "cluster", "--name", &cluster, "--config", "-"],
        Some(&config),
        &dir.path().join("kubeconfig"),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ERROR: failed to create cluster: "),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("--publish=127.0.0.1:{port}:80/TCP")),
        "the failed command is shown: {stderr}"
    );
    assert!(
        cluster_containers(&cluster).is_empty(),
        "left behind: {:?}",
        cluster_containers(&cluster)
    );
    assert!(
        !dir.path().join("kubeconfig").exists(),
        "a failed create wrote a kubeconfig"
    );
}

#[test]
fn retain_keeps_the_nodes_of_a_failed_create() {
    if !docker_available("retain_keeps_the_nodes_of_a_failed_create") {
        return;
    }
    let cluster = unique_name("retain");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let dir = temp_dir();
    let kubeconfig = dir.path().join("kubeconfig");
    let config = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n";
    let fail_after = [("KIND_EMULATOR_FAIL_AFTER_NODES", "1")];

    let out = kind(
        &[
            "create", "cluster", "--name", &cluster, "--config", "-", "--retain",
        ],
        Some(config),
        &kubeconfig,
        &fail_after,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("ERROR: failed to create cluster: "));
    assert_eq!(
        cluster_containers(&cluster),
        vec![
            format!("{cluster}-control-plane"),
            format!("{cluster}-worker")
        ]
    );

    let out = kind(
        &["delete", "cluster", "--name", &cluster],
        None,
        &kubeconfig,
        &[],
    );
    assert_ok(&out, "delete retained");
    let out = kind(
        &["create", "cluster", "--name", &cluster, "--config", "-"],
        Some(config),
        &kubeconfig,
        &fail_after,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        cluster_containers(&cluster).is_empty(),
        "without --retain the nodes are removed"
    );
}

#[test]
fn interrupted_create_removes_its_nodes() {
    if !docker_available("interrupted_create_removes_its_nodes") {
        return;
    }
    let cluster = unique_name("sigterm");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let dir = temp_dir();
    let child = Command::new(kind_emulator())
        .args(["create", "cluster", "--name", &cluster])
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .env("KIND_EMULATOR_IMAGE", TEST_IMAGE)
        .env("KIND_EMULATOR_SLOW_SECONDS", "60")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while cluster_containers(&cluster).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no node appeared");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ERROR: failed to create cluster: interrupted"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        cluster_containers(&cluster).is_empty(),
        "interrupted create left nodes"
    );
}

#[test]
fn config_errors_exit_1_before_any_container() {
    if !docker_available("config_errors_exit_1_before_any_container") {
        return;
    }
    let cluster = unique_name("badcfg");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let dir = temp_dir();
    let kubeconfig = dir.path().join("kubeconfig");
    let header = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n";
    let cases = [
        (
            "unknown field",
            format!("{header}nodes:\n- role: control-plane\n  extraMount: []\n"),
            "extraMount",
        ),
        (
            "no control-plane",
            format!("{header}nodes:\n- role: worker\n"),
            "must have at least one control-plane node",
        ),
        (
            "bad role",
            format!("{header}nodes:\n- role: master\n"),
            "\"master\" is not a valid node role",
        ),
        (
            "port out of range",
            format!(
                "{header}nodes:\n- extraPortMappings:\n  - containerPort: 80\n    hostPort: 70000\n"
            ),
            "invalid port number: 70000",
        ),
        (
            "duplicate mapping with wildcard",
            format!(
                "{header}nodes:\n- extraPortMappings:\n  - containerPort: 80\n    hostPort: 8080\n    listenAddress: 127.0.0.1\n    protocol: TCP\n  - containerPort: 81\n    hostPort: 8080\n    listenAddress: 0.0.0.0\n    protocol: TCP\n"
            ),
            "port mapping with same listen address, port and protocol already configured",
        ),
        (
            "wrong apiVersion",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n".to_string(),
            "unknown apiVersion",
        ),
        (
            "wrong kind",
            "kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\n".to_string(),
            "unknown kind",
        ),
    ];
    for (what, config, expected) in cases {
        let out = kind(
            &["create", "cluster", "--name", &cluster, "--config", "-"],
            Some(&config),
            &kubeconfig,
            &[],
        );
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("ERROR: failed to create cluster: "),
            "{what}: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{what}: expected {expected:?} in {stderr}"
        );
        assert!(out.stdout.is_empty(), "{what}");
        assert!(
            cluster_containers(&cluster).is_empty(),
            "{what} created containers"
        );
    }

    // Mappings on different nodes, a random port twice, or different addresses are fine
    // for validation: kind does not check across nodes.
    let config = format!(
        "{header}nodes:\n- extraPortMappings:\n  - containerPort: 80\n    hostPort: 0\n  - containerPort: 81\n    hostPort: 0\n- role: worker\n"
    );
    let out = kind(
        &["create", "cluster", "--name", &cluster, "--config", "-"],
        Some(&config),
        &kubeconfig,
        &[],
    );
    assert_ok(&out, "two random host ports on one node");
    assert_eq!(cluster_containers(&cluster).len(), 2);
}

#[test]
fn cli_surface_version_and_unknown_commands() {
    // No Docker needed: these never reach it.
    let dir = temp_dir();
    let kubeconfig = dir.path().join("kubeconfig");
    let out = kind(&["version"], None, &kubeconfig, &[]);
    assert_ok(&out, "version");
    assert_eq!(text(&out.stdout), "kind v0.32.0 go1.24.0 linux/amd64\n");
    let out = kind(
        &["version"],
        None,
        &kubeconfig,
        &[("KIND_EMULATOR_VERSION", "v0.25.0")],
    );
    assert_eq!(text(&out.stdout), "kind v0.25.0 go1.24.0 linux/amd64\n");

    let out = kind(&["frobnicate"], None, &kubeconfig, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("ERROR: unknown command"),
        "{}",
        text(&out.stderr)
    );
    let out = kind(&["get", "clusters", "--bogus"], None, &kubeconfig, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("ERROR: unknown flag: --bogus"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn multiple_control_planes_get_a_load_balancer() {
    if !docker_available("multiple_control_planes_get_a_load_balancer") {
        return;
    }
    let cluster = unique_name("ha");
    let _cleanup = Cleanup::new().cluster(&cluster);
    let dir = temp_dir();
    let api_port = free_port();
    let config = format!(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  apiServerPort: {api_port}\nnodes:\n- role: control-plane\n- {{}}\n"
    );
    let out = kind(
        &["create", "cluster", "--name", &cluster, "--config", "-"],
        Some(&config),
        &dir.path().join("kc"),
        &[],
    );
    assert_ok(&out, "create with two control-planes");
    let lb = format!("{cluster}-external-load-balancer");
    assert_eq!(
        cluster_containers(&cluster),
        vec![
            format!("{cluster}-control-plane"),
            format!("{cluster}-control-plane2"),
            lb.clone()
        ]
    );
    let lb_node = inspect(&lb);
    assert_eq!(
        label(&lb_node, "io.x-k8s.kind.role"),
        "external-load-balancer"
    );
    assert_eq!(
        port_bindings(&lb_node)["6443/tcp"],
        vec![("127.0.0.1".to_string(), api_port.to_string())]
    );
    // A node without a role is a control-plane with its own random API port.
    let cp2 = inspect(&format!("{cluster}-control-plane2"));
    assert_eq!(label(&cp2, "io.x-k8s.kind.role"), "control-plane");
    assert_ne!(port_bindings(&cp2)["6443/tcp"][0].1, api_port.to_string());
}
