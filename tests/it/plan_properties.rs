//! Properties of the planner over generated profiles: whatever validates renders a
//! kind config that obeys kind's rules and the cross-node ones kind misses, decodes
//! strictly as kind's v1alpha4, and whose plan round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use devcluster::core::kindconfig;
use devcluster::core::plan::{self, ClusterPlan, PlanInput};
use devcluster::core::profile::Profile;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::Deserialize;

/// kind's v1alpha4 Cluster, strictly (kind `pkg/apis/config/v1alpha4/types.go`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct KindCluster {
    kind: String,
    api_version: String,
    name: String,
    networking: KindNetworking,
    nodes: Vec<KindNode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct KindNetworking {
    api_server_address: String,
    #[serde(default)]
    api_server_port: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct KindNode {
    role: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    extra_mounts: Vec<KindMount>,
    #[serde(default)]
    extra_port_mappings: Vec<KindPort>,
    #[serde(default)]
    kubeadm_config_patches: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct KindMount {
    host_path: String,
    container_path: String,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    selinux_relabel: bool,
    #[serde(default)]
    propagation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KindPort {
    #[allow(dead_code)]
    container_port: i32,
    host_port: i32,
    listen_address: String,
    protocol: String,
}

fn selector() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "all",
        "workers",
        "control-planes",
        "ingress",
        "control-plane",
        "worker",
        "worker2",
        "worker5",
    ])
}

fn mount() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["./a", "b/../c", "~/d", "/srv/e", "./f/./g/"]),
        prop::sample::select(vec!["/a", "/b", "/data", "/tmp/x", "/var/lib/x"]),
        any::<bool>(),
        selector(),
    )
        .prop_map(|(host, container, read_only, nodes)| {
            format!("  - hostPath: {host}\n    containerPath: {container}\n    readOnly: {read_only}\n    nodes: {nodes}\n")
        })
}

fn port() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![30000, 30001, 80]),
        prop::sample::select(vec![0, -1, 8080, 8081, 6443]),
        prop::sample::select(vec!["", "    protocol: TCP\n", "    protocol: UDP\n"]),
        prop::sample::select(vec!["", "    listenAddress: 0.0.0.0\n", "    listenAddress: 127.0.0.2\n"]),
        selector(),
    )
        .prop_map(|(container, host, protocol, listen, node)| {
            format!("  - containerPort: {container}\n    hostPort: {host}\n{protocol}{listen}    node: {node}\n")
        })
}

/// A label key for every node: the user's own prefix, one the kubelet allows in
/// its reserved namespaces, or one it refuses.
/// Mostly accepted ones, so enough generated profiles stay valid.
fn label_key() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "example.com/pool",
            "topology.kubernetes.io/zone",
            "node.kubernetes.io/instance-type",
            "team.kubelet.kubernetes.io/x",
        ]),
        1 => prop::sample::select(vec!["node-role.kubernetes.io/worker", "k8s.io/x"]),
    ]
}

fn profile() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![1, 3, 2]),
        0u32..4,
        prop::collection::vec(mount(), 0..4),
        prop::collection::vec(port(), 0..4),
        any::<bool>(),
        prop::sample::select(vec![0, 6443]),
        label_key(),
        prop::sample::select(vec!["", "", "NoSchedule", "PreferNoSchedule", "NoExecute"]),
    )
        .prop_map(|(control_planes, workers, mounts, ports, ingress, api_port, label, taint)| {
            let mut text = format!(
                "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nname: prop\nnodes:\n  controlPlanes: {control_planes}\n  workers: {workers}\n  labels:\n    all: {{{label}: v}}\n"
            );
            if !taint.is_empty() {
                text.push_str(&format!("  taints:\n    control-planes: [\"example.com/t:{taint}\"]\n"));
            }
            text.push_str(&format!("networking:\n  apiServerPort: {api_port}\n"));
            if ingress {
                text.push_str("ingress:\n  enabled: true\n  controller: none\n  httpPort: 8080\n  httpsPort: 8443\n");
            }
            if !mounts.is_empty() {
                text.push_str("mounts:\n");
                text.extend(mounts);
            }
            if !ports.is_empty() {
                text.push_str("ports:\n");
                text.extend(ports);
            }
            text
        })
}

/// The kubelet's rule for `--node-labels` (kubelet
/// `cmd/kubelet/app/options/options.go` and `IsKubeletLabel` in
/// `staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go`), written out for
/// the keys the generator uses.
fn kubelet_accepts(key: &str) -> bool {
    match key {
        "example.com/pool"
        | "topology.kubernetes.io/zone"
        | "node.kubernetes.io/instance-type"
        | "team.kubelet.kubernetes.io/x"
        | "ingress-ready" => true,
        "node-role.kubernetes.io/worker" | "k8s.io/x" => false,
        other => panic!("the model does not know {other}"),
    }
}

fn overlap(a: &str, b: &str) -> bool {
    a == b || a == "0.0.0.0" || b == "0.0.0.0"
}

fn check_rendered(plan: &ClusterPlan) {
    let yaml = kindconfig::render(plan);
    let cluster: KindCluster =
        serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(cluster.api_version, "kind.x-k8s.io/v1alpha4");
    assert_eq!(cluster.nodes.len(), plan.nodes.len());
    let mut fixed: Vec<(usize, &KindPort)> = Vec::new();
    for (index, node) in cluster.nodes.iter().enumerate() {
        assert!(
            node.role == "control-plane" || node.role == "worker",
            "{yaml}"
        );
        for label in node.labels.keys() {
            assert!(
                kubelet_accepts(label),
                "the kubelet refuses {label}: {yaml}"
            );
        }
        if cluster.nodes.len() == 1 {
            // One node: kind removes the control-plane taint after init (kind
            // `kubeadminit/init.go`), so a taint patch must still carry it, and no
            // profile taint may keep pods off the only node.
            for patch in &node.kubeadm_config_patches {
                assert!(
                    patch.contains("key: node-role.kubernetes.io/control-plane\n"),
                    "kind could not remove the control-plane taint: {yaml}"
                );
                assert!(
                    !patch.contains("key: example.com/t\n    effect: NoSchedule")
                        && !patch.contains("key: example.com/t\n    effect: NoExecute"),
                    "the only node keeps pods off: {yaml}"
                );
            }
        }
        let mut paths = Vec::new();
        for mount in &node.extra_mounts {
            let path = Path::new(&mount.host_path);
            assert!(path.is_absolute(), "{yaml}");
            assert!(
                !mount.host_path.contains("/./")
                    && !mount.host_path.contains("/../")
                    && !mount.host_path.ends_with("/."),
                "{yaml}"
            );
            assert_eq!(plan::normalize(path), path, "{yaml}");
            assert!(
                !mount.container_path.starts_with("/tmp")
                    && !mount.container_path.starts_with("/run"),
                "{yaml}"
            );
            assert!(
                !paths.contains(&mount.container_path),
                "two mounts on one container path: {yaml}"
            );
            paths.push(mount.container_path.clone());
        }
        for port in &node.extra_port_mappings {
            assert!((-1..=65535).contains(&port.host_port));
            assert!(["TCP", "UDP", "SCTP"].contains(&port.protocol.as_str()));
            if port.host_port > 0 {
                // The API server listens on TCP apiServerAddress:apiServerPort; only a
                // TCP mapping on an overlapping address can take that socket.
                assert!(
                    !(cluster.networking.api_server_port > 0
                        && port.host_port == cluster.networking.api_server_port
                        && port.protocol == "TCP"
                        && overlap(&port.listen_address, &cluster.networking.api_server_address)),
                    "host port takes the API server's socket: {yaml}"
                );
                fixed.push((index, port));
            }
        }
    }
    for (i, (_, a)) in fixed.iter().enumerate() {
        for (_, b) in fixed.iter().skip(i + 1) {
            let clash = a.host_port == b.host_port
                && a.protocol == b.protocol
                && overlap(&a.listen_address, &b.listen_address);
            assert!(!clash, "host port {} published twice: {yaml}", a.host_port);
        }
    }
}

/// Plans one generated profile and checks its properties; `Ok(true)` when it was valid.
fn check_profile(text: &str) -> Result<bool, TestCaseError> {
    let profile = Profile::decode(text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let input = PlanInput {
        profile: &profile,
        name_override: None,
        base_dir: Path::new("/base/dir"),
        home_dir: Some(Path::new("/home/u")),
        source: "generated".into(),
        file: None,
    };
    match plan::plan(&input) {
        Ok(planned) => {
            check_rendered(&planned.plan);
            let json = serde_json::to_string(&planned.plan).unwrap();
            let back: ClusterPlan = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, &planned.plan);
            prop_assert_eq!(kindconfig::render(&back), kindconfig::render(&planned.plan));
            Ok(true)
        }
        Err(problems) => {
            prop_assert!(problems.iter().any(|p| p.is_error()));
            prop_assert!(problems.iter().all(|p| !p.message.is_empty()));
            Ok(false)
        }
    }
}

/// Generated profiles per run; about one in nine is valid, so a run checks
/// 20 to 40 valid plans.
const CASES: u32 = 256;

#[test]
fn whatever_validates_renders_a_config_kind_accepts() {
    let config = ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let valid = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&profile(), |text| {
        if check_profile(&text)? {
            valid.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    // The properties say nothing unless enough generated profiles validate.
    let valid = valid.into_inner();
    assert!(
        valid >= 10,
        "only {valid} of {CASES} generated profiles were valid"
    );
}
