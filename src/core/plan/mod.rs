//! Computed intent: the cluster a profile asks for, node by node, with every name,
//! label, taint, mount and port kind will use, and every rule kind does not check.
//!
//! Pure: the filesystem, environment and clock stay outside. What the plan needs from
//! the world (the profile's directory, the home directory) comes in [`PlanInput`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::core::diagnostic::Problem;
use crate::core::profile::{
    CustomController, MountPathType, MountSpec, PortSpec, Profile, Propagation,
};
use crate::core::yaml::Located;

/// Default cluster name when neither the profile nor `--name` gives one.
pub const DEFAULT_CLUSTER_NAME: &str = "devcluster";
/// The label kind's ingress guides and devcluster put on the ingress node.
pub const INGRESS_READY_LABEL: &str = "ingress-ready";
/// The taint kubeadm leaves on control-planes of multi-node kind clusters.
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";
/// Node hostnames are DNS labels: at most 63 characters.
const MAX_HOSTNAME: usize = 63;
/// kind warns past this cluster name length.
const LONG_NAME: usize = 50;
/// A sanity bound on workers: each is a privileged container running a kubelet.
const MAX_WORKERS: i64 = 100;

/// Everything the pure planner needs from outside.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The profile after `extends:` was merged.
    pub profile: &'a Profile,
    /// `--name`, which wins over the profile's `name`.
    pub name_override: Option<&'a str>,
    /// Relative host paths resolve here: the profile file's directory, or the current
    /// directory for a built-in profile.
    pub base_dir: &'a Path,
    /// Where `~` points; `None` when the home directory is unknown.
    pub home_dir: Option<&'a Path>,
    /// Where the profile came from, e.g. `builtin:ingress` or a path; kept in the plan.
    pub source: String,
    /// The file problems without a position of their own are reported against.
    pub file: Option<Arc<str>>,
}

/// What the planner may learn about the host's paths, answered by the caller: the
/// planner itself never touches the filesystem.
pub trait HostPaths {
    /// `path` with every symlink in it resolved, or `None` when that is unknown.
    fn resolve(&self, path: &Path) -> Option<PathBuf>;
}

/// Paths taken as written: no symlink is known.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsWritten;

impl HostPaths for AsWritten {
    fn resolve(&self, _path: &Path) -> Option<PathBuf> {
        None
    }
}

/// The cluster devcluster will ask kind for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterPlan {
    pub name: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Kubernetes version read from the image tag (`1.36.1`), when the image has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    pub nodes: Vec<NodePlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressPlan>,
    pub storage: StoragePlan,
    pub networking: NetworkingPlan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ControlPlane,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node: a container kind creates and the Kubernetes node of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePlan {
    /// Container name = hostname = Kubernetes node name, e.g. `dev-worker2`.
    pub name: String,
    /// The name without the cluster prefix, as profiles write it: `worker2`.
    pub id: String,
    pub role: Role,
    /// Kubernetes labels (kind's `labels:`), including `ingress-ready=true` on the
    /// ingress node.
    pub labels: BTreeMap<String, String>,
    /// Taints the node will carry, kubeadm's control-plane taint included.
    pub taints: Vec<Taint>,
    pub mounts: Vec<MountPlan>,
    pub ports: Vec<PortPlan>,
    /// Whether this is the ingress node.
    pub ingress: bool,
}

impl NodePlan {
    /// Taints the profile asked for, which kind must be told about; kubeadm adds
    /// the control-plane taint of multi-node clusters by itself.
    pub fn profile_taints(&self) -> impl Iterator<Item = &Taint> {
        self.taints.iter().filter(|t| !t.implicit)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub effect: TaintEffect,
    /// Added by kubeadm, not by the profile.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub implicit: bool,
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={}:{}", self.key, value, self.effect.as_str()),
            None => write!(f, "{}:{}", self.key, self.effect.as_str()),
        }
    }
}

/// One bind mount on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MountPlan {
    /// Absolute, normalised host path.
    pub host_path: String,
    pub container_path: String,
    pub path_type: MountPathType,
    pub read_only: bool,
    pub propagation: Propagation,
    pub selinux_relabel: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_dangerous_path: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// What a published port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortPurpose {
    IngressHttp,
    IngressHttps,
    Profile,
}

/// One published port on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortPlan {
    pub container_port: u16,
    /// 1-65535; `0`: kind picks a free port and keeps it; `-1`: Docker picks one.
    pub host_port: i32,
    pub protocol: Protocol,
    pub listen_address: String,
    pub purpose: PortPurpose,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressPlan {
    /// Name of the ingress node.
    pub node: String,
    pub http_port: i32,
    pub https_port: i32,
    pub listen_address: String,
    /// devcluster pins the controller to the ingress node and gives it tolerations
    /// for that node's taints.
    pub controller: ControllerPlan,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum ControllerPlan {
    IngressNginx,
    Custom {
        #[serde(flatten)]
        manifest: CustomController,
    },
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoragePlan {
    pub tolerate_tainted_nodes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkingPlan {
    pub api_server_address: String,
    pub api_server_port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_proxy_mode: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_default_cni: bool,
}

impl ClusterPlan {
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn control_planes(&self) -> impl Iterator<Item = &NodePlan> {
        self.nodes.iter().filter(|n| n.role == Role::ControlPlane)
    }

    pub fn ingress_node(&self) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.ingress)
    }

    pub fn is_multi_node(&self) -> bool {
        self.nodes.len() > 1
    }

    /// The kubeconfig context kind creates for this cluster.
    pub fn context_name(&self) -> String {
        format!("kind-{}", self.name)
    }
}

/// A plan, and the warnings found while making it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: ClusterPlan,
    pub warnings: Vec<Problem>,
}

/// Turns a merged profile into a plan, or every problem found at once, taking
/// host paths as written.
pub fn plan(input: &PlanInput<'_>) -> Result<Planned, Vec<Problem>> {
    plan_on(input, &AsWritten)
}

/// Like [`plan`], with `host` telling where each host path really leads, so a
/// symlink to a dangerous path is refused like the path itself.
pub fn plan_on(input: &PlanInput<'_>, host: &dyn HostPaths) -> Result<Planned, Vec<Problem>> {
    let mut planner = Planner {
        input,
        host,
        problems: Vec::new(),
    };
    let plan = planner.build();
    let problems: Vec<Problem> = planner
        .problems
        .into_iter()
        .map(|p| p.in_file(input.file.clone()))
        .collect();
    if problems.iter().any(Problem::is_error) {
        let mut problems = problems;
        problems.sort_by_key(|p| (p.severity, p.line.unwrap_or(0), p.column.unwrap_or(0)));
        Err(problems)
    } else {
        Ok(Planned {
            plan,
            warnings: problems,
        })
    }
}

struct Planner<'a, 'b> {
    input: &'b PlanInput<'a>,
    host: &'b dyn HostPaths,
    problems: Vec<Problem>,
}

impl Planner<'_, '_> {
    fn error(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    fn build(&mut self) -> ClusterPlan {
        let profile = self.input.profile;
        let name = self.cluster_name();
        let (control_planes, workers) = self.node_counts();

        let mut nodes = Vec::new();
        for index in 1..=control_planes {
            nodes.push(new_node(&name, Role::ControlPlane, index));
        }
        for index in 1..=workers {
            nodes.push(new_node(&name, Role::Worker, index));
        }
        if nodes.len() > 1 {
            for node in nodes.iter_mut().filter(|n| n.role == Role::ControlPlane) {
                node.taints.push(Taint {
                    key: CONTROL_PLANE_TAINT.into(),
                    value: None,
                    effect: TaintEffect::NoSchedule,
                    implicit: true,
                });
            }
        }

        let ingress_index = self.ingress_node(&nodes);
        if let Some(index) = ingress_index {
            nodes[index].ingress = true;
        }
        let ingress_enabled = profile
            .ingress
            .as_ref()
            .and_then(|i| i.enabled.as_ref())
            .is_some_and(|e| e.value);
        if let (true, Some(index)) = (ingress_enabled, ingress_index) {
            nodes[index]
                .labels
                .insert(INGRESS_READY_LABEL.into(), "true".into());
        }

        self.apply_labels(&mut nodes, ingress_index);
        self.apply_taints(&mut nodes, ingress_index);
        let networking = self.networking();
        let ingress = self.ingress(&mut nodes, ingress_index, ingress_enabled);
        for port in &profile.ports {
            self.add_port(&mut nodes, ingress_index, port);
        }
        for mount in &profile.mounts {
            self.add_mount(&mut nodes, ingress_index, mount);
        }
        self.check_ports(&nodes, &networking);
        self.check_mounts(&nodes);
        let (image, kubernetes_version) = self.image();

        ClusterPlan {
            name,
            source: self.input.source.clone(),
            image,
            kubernetes_version,
            nodes,
            ingress,
            storage: StoragePlan {
                tolerate_tainted_nodes: profile
                    .storage
                    .as_ref()
                    .and_then(|s| s.tolerate_tainted_nodes)
                    .unwrap_or(true),
            },
            networking,
        }
    }

    fn cluster_name(&mut self) -> String {
        let from_profile = self.input.profile.name.clone();
        let (name, located) = match (self.input.name_override, from_profile) {
            (Some(name), _) => (name.to_string(), Located::new(name.to_string())),
            (None, Some(located)) => (located.value.clone(), located),
            (None, None) => (
                DEFAULT_CLUSTER_NAME.to_string(),
                Located::new(DEFAULT_CLUSTER_NAME.to_string()),
            ),
        };
        let from_flag = self.input.name_override.is_some();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid {
            let problem = Problem::error(format!(
                "cluster name `{name}` must match ^[a-z0-9.-]+$ (lower-case letters, digits, `.` and `-`)"
            ))
            .hint("for example `--name dev` or `name: my-team`");
            self.error(if from_flag {
                problem
            } else {
                problem.at(&located)
            });
        } else if name.len() + "-control-plane3".len() > MAX_HOSTNAME {
            let problem = Problem::error(format!(
                "cluster name `{name}` is {} characters; node hostnames like `{name}-control-plane` would exceed {MAX_HOSTNAME}",
                name.len()
            ))
            .hint(format!(
                "use at most {} characters",
                MAX_HOSTNAME - "-control-plane3".len()
            ));
            self.error(if from_flag {
                problem
            } else {
                problem.at(&located)
            });
        } else if name.len() > LONG_NAME {
            let problem = Problem::warning(format!(
                "cluster name `{name}` is over {LONG_NAME} characters; node names grow by `-control-plane`"
            ));
            self.error(if from_flag {
                problem
            } else {
                problem.at(&located)
            });
        }
        name
    }

    fn node_counts(&mut self) -> (u32, u32) {
        let nodes = self.input.profile.nodes.clone().unwrap_or_default();
        let control_planes = match nodes.control_planes {
            None => 1,
            Some(l) if l.value == 1 || l.value == 3 => l.value as u32,
            Some(l) => {
                self.error(
                    Problem::error(format!(
                        "nodes.controlPlanes is {}; it must be 1 or 3",
                        l.value
                    ))
                    .at(&l)
                    .hint("etcd needs an odd number of members; use 1, or 3 for high availability"),
                );
                1
            }
        };
        let workers = match nodes.workers {
            None => 0,
            Some(l) if (0..=MAX_WORKERS).contains(&l.value) => l.value as u32,
            Some(l) => {
                self.error(
                    Problem::error(format!(
                        "nodes.workers is {}; it must be between 0 and {MAX_WORKERS}",
                        l.value
                    ))
                    .at(&l),
                );
                0
            }
        };
        (control_planes, workers)
    }

    fn ingress_node(&mut self, nodes: &[NodePlan]) -> Option<usize> {
        let chosen = self
            .input
            .profile
            .nodes
            .as_ref()
            .and_then(|n| n.ingress.clone());
        match chosen {
            None => nodes
                .iter()
                .position(|n| n.role == Role::Worker)
                .or(if nodes.is_empty() { None } else { Some(0) }),
            Some(located) => match nodes.iter().position(|n| n.id == located.value) {
                Some(index) => Some(index),
                None => {
                    let known = node_ids(nodes);
                    self.error(
                        Problem::error(format!(
                            "nodes.ingress names `{}`, which is not a node of this profile",
                            located.value
                        ))
                        .at(&located)
                        .hint(format!("the nodes are: {known}")),
                    );
                    None
                }
            },
        }
    }

    /// Resolves a node selector (a node id or a set name) to node indices.
    fn select(
        &mut self,
        nodes: &[NodePlan],
        ingress: Option<usize>,
        selector: &str,
        what: &str,
        at: &dyn Fn(Problem) -> Problem,
    ) -> Vec<usize> {
        let selected: Vec<usize> = match selector {
            "all" => (0..nodes.len()).collect(),
            "control-planes" => indices(nodes, |n| n.role == Role::ControlPlane),
            "workers" => indices(nodes, |n| n.role == Role::Worker),
            "ingress" => ingress.into_iter().collect(),
            id => match nodes.iter().position(|n| n.id == id) {
                Some(index) => vec![index],
                None => {
                    let problem = Problem::error(format!(
                        "{what} names node `{id}`, which is not a node of this profile"
                    ))
                    .hint(format!(
                        "the nodes are: {}; the sets are: all, control-planes, workers, ingress",
                        node_ids(nodes)
                    ));
                    self.error(at(problem));
                    return Vec::new();
                }
            },
        };
        if selected.is_empty() {
            let problem = Problem::error(format!(
                "{what} selects `{selector}`, which is empty in this profile"
            ))
            .hint("add nodes of that role or choose another set");
            self.error(at(problem));
        }
        selected
    }

    fn apply_labels(&mut self, nodes: &mut [NodePlan], ingress: Option<usize>) {
        let labels = self
            .input
            .profile
            .nodes
            .as_ref()
            .map(|n| n.labels.clone())
            .unwrap_or_default();
        for (selector, located) in &labels {
            let at = |p: Problem| p.at(located);
            let targets = self.select(nodes, ingress, selector, "nodes.labels", &at);
            for (key, value) in &located.value {
                if let Some(reason) = label_key_problem(key) {
                    self.error(at(Problem::error(format!("label key `{key}` {reason}")).hint(
                        format!(
                            "use your own prefix, e.g. `example.com/tier`; the kubelet accepts only the prefixes {} and the labels {}",
                            KUBELET_LABEL_NAMESPACES.join(", "),
                            KUBELET_LABELS.join(", ")
                        ),
                    )));
                    continue;
                }
                if let Some(reason) = label_value_problem(value) {
                    self.error(at(Problem::error(format!(
                        "label `{key}` has value `{value}`, which {reason}"
                    ))));
                    continue;
                }
                for &index in &targets {
                    nodes[index].labels.insert(key.clone(), value.clone());
                }
            }
        }
    }

    /// Adds the profile's taints. A single-node cluster refuses NoSchedule and
    /// NoExecute: kind's `kubeadminit` action
    /// (`pkg/cluster/internal/create/actions/kubeadminit/init.go`) removes the
    /// control-plane taint when the cluster has one node, and that command fails
    /// when devcluster's `nodeRegistration.taints` patch replaced kubeadm's taints.
    fn apply_taints(&mut self, nodes: &mut [NodePlan], ingress: Option<usize>) {
        let taints = self
            .input
            .profile
            .nodes
            .as_ref()
            .map(|n| n.taints.clone())
            .unwrap_or_default();
        for (selector, located) in &taints {
            let at = |p: Problem| p.at(located);
            let targets = self.select(nodes, ingress, selector, "nodes.taints", &at);
            for text in &located.value {
                match parse_taint(text) {
                    Ok(taint)
                        if nodes.len() == 1
                            && !targets.is_empty()
                            && taint.effect != TaintEffect::PreferNoSchedule =>
                    {
                        self.error(at(Problem::error(format!(
                            "taint `{text}` on the only node of a single-node cluster: kind removes the control-plane taint there (`kubectl taint nodes --all node-role.kubernetes.io/control-plane-`), which fails once the profile's taints replace kubeadm's (\"failed to remove control plane taint\"), and CoreDNS and every other pod would have no node to run on"
                        ))
                        .hint("add a worker (`nodes.workers: 1`) and taint that, or use `:PreferNoSchedule`, which only steers pods away")));
                    }
                    Ok(taint) => {
                        for &index in &targets {
                            let node = &mut nodes[index];
                            if !node.taints.iter().any(|t| t.key == taint.key && t.effect == taint.effect) {
                                node.taints.push(taint.clone());
                            }
                        }
                    }
                    Err(reason) => self.error(at(Problem::error(format!(
                        "taint `{text}` {reason}"
                    ))
                    .hint("write taints as `key=value:NoSchedule`, `key:NoExecute` or `key=value:PreferNoSchedule`"))),
                }
            }
        }
    }

    fn networking(&mut self) -> NetworkingPlan {
        let net = self.input.profile.networking.clone().unwrap_or_default();
        let api_server_address = match net.api_server_address {
            None => "127.0.0.1".to_string(),
            Some(l) => {
                if l.value.parse::<IpAddr>().is_err() {
                    self.error(
                        Problem::error(format!(
                            "networking.apiServerAddress `{}` is not an IP address",
                            l.value
                        ))
                        .at(&l),
                    );
                } else if is_unspecified(&l.value) {
                    self.error(
                        Problem::warning(format!(
                            "networking.apiServerAddress `{}` exposes the API server to every network this host is on",
                            l.value
                        ))
                        .at(&l)
                        .hint("keep the default 127.0.0.1 unless other machines must reach the cluster"),
                    );
                }
                l.value
            }
        };
        let api_server_port = match net.api_server_port {
            None => 0,
            Some(l) if (0..=65535).contains(&l.value) => l.value as i32,
            Some(l) => {
                self.error(
                    Problem::error(format!(
                        "networking.apiServerPort is {}; it must be 0 (pick a free port) or 1-65535",
                        l.value
                    ))
                    .at(&l),
                );
                0
            }
        };
        let ip_family = self.one_of(
            net.ip_family,
            "networking.ipFamily",
            &["ipv4", "ipv6", "dual"],
        );
        let kube_proxy_mode = self.one_of(
            net.kube_proxy_mode,
            "networking.kubeProxyMode",
            &["iptables", "ipvs", "nftables", "none"],
        );
        let pod_subnet = self.cidr(net.pod_subnet, "networking.podSubnet");
        let service_subnet = self.cidr(net.service_subnet, "networking.serviceSubnet");
        NetworkingPlan {
            api_server_address,
            api_server_port,
            ip_family,
            pod_subnet,
            service_subnet,
            kube_proxy_mode,
            disable_default_cni: net.disable_default_cni.unwrap_or(false),
        }
    }

    fn one_of(
        &mut self,
        value: Option<Located<String>>,
        field: &str,
        allowed: &[&str],
    ) -> Option<String> {
        let l = value?;
        if !allowed.contains(&l.value.as_str()) {
            self.error(
                Problem::error(format!(
                    "{field} is `{}`; it must be one of: {}",
                    l.value,
                    allowed.join(", ")
                ))
                .at(&l),
            );
        }
        Some(l.value)
    }

    fn cidr(&mut self, value: Option<Located<String>>, field: &str) -> Option<String> {
        let l = value?;
        let valid = l.value.split(',').all(|part| {
            let mut pieces = part.trim().splitn(2, '/');
            let address = pieces.next().unwrap_or("");
            let prefix = pieces.next().and_then(|p| p.parse::<u8>().ok());
            match (address.parse::<IpAddr>(), prefix) {
                (Ok(IpAddr::V4(_)), Some(p)) => p <= 32,
                (Ok(IpAddr::V6(_)), Some(p)) => p <= 128,
                _ => false,
            }
        });
        if !valid {
            self.error(
                Problem::error(format!(
                    "{field} `{}` is not a CIDR such as 10.244.0.0/16",
                    l.value
                ))
                .at(&l),
            );
        }
        Some(l.value)
    }

    fn ingress(
        &mut self,
        nodes: &mut [NodePlan],
        ingress_index: Option<usize>,
        enabled: bool,
    ) -> Option<IngressPlan> {
        let spec = self.input.profile.ingress.clone().unwrap_or_default();
        if !enabled {
            return None;
        }
        let index = ingress_index?;
        let listen_address = match &spec.listen_address {
            Some(l) => {
                self.check_listen_address(&l.value, "ingress.listenAddress", &|p| p.at(l));
                l.value.clone()
            }
            None => "127.0.0.1".to_string(),
        };
        let http_port = self.ingress_port(spec.http_port.as_ref(), 80, "ingress.httpPort");
        let https_port = self.ingress_port(spec.https_port.as_ref(), 443, "ingress.httpsPort");
        let controller_name = spec
            .controller
            .clone()
            .unwrap_or_else(|| Located::new("ingress-nginx".to_string()));
        let controller = match (controller_name.value.as_str(), spec.manifest.clone()) {
            ("ingress-nginx", None) => ControllerPlan::IngressNginx,
            ("none", None) => ControllerPlan::None,
            ("custom", Some(manifest)) => {
                self.check_custom_controller(&manifest);
                ControllerPlan::Custom {
                    manifest: manifest.value,
                }
            }
            ("custom", None) => {
                self.error(
                    Problem::error(
                        "ingress.controller is `custom` but ingress.manifest is missing",
                    )
                    .at(&controller_name)
                    .hint("add ingress.manifest with url, sha256, namespace and podSelector"),
                );
                ControllerPlan::None
            }
            ("ingress-nginx" | "none", Some(manifest)) => {
                self.error(
                    Problem::error(format!(
                        "ingress.manifest is set but ingress.controller is `{}`",
                        controller_name.value
                    ))
                    .at(&manifest)
                    .hint("set `controller: custom` to use your own manifest"),
                );
                ControllerPlan::None
            }
            (other, _) => {
                self.error(
                    Problem::error(format!(
                        "ingress.controller is `{other}`; it must be ingress-nginx, custom or none"
                    ))
                    .at(&controller_name),
                );
                ControllerPlan::None
            }
        };
        let node = &mut nodes[index];
        let blocking_taints: Vec<String> = node
            .taints
            .iter()
            .filter(|t| t.effect != TaintEffect::PreferNoSchedule)
            .map(|t| t.to_string())
            .collect();
        if !blocking_taints.is_empty() && controller == ControllerPlan::None {
            let at = spec.controller.clone().unwrap_or_default();
            self.error(
                Problem::warning(format!(
                    "the ingress node `{}` is tainted ({}); the controller you install yourself must tolerate that",
                    node.id,
                    blocking_taints.join(", ")
                ))
                .at(&at),
            );
        }
        for (port, container_port, purpose) in [
            (http_port, 80, PortPurpose::IngressHttp),
            (https_port, 443, PortPurpose::IngressHttps),
        ] {
            node.ports.push(PortPlan {
                container_port,
                host_port: port,
                protocol: Protocol::Tcp,
                listen_address: listen_address.clone(),
                purpose,
            });
        }
        Some(IngressPlan {
            node: node.name.clone(),
            http_port,
            https_port,
            listen_address,
            controller,
        })
    }

    fn ingress_port(&mut self, value: Option<&Located<i64>>, default: i32, field: &str) -> i32 {
        match value {
            None => default,
            Some(l) if (-1..=65535).contains(&l.value) => l.value as i32,
            Some(l) => {
                self.error(
                    Problem::error(format!(
                        "{field} is {}; it must be 1-65535, 0 (kind picks a free port) or -1 (Docker picks one)",
                        l.value
                    ))
                    .at(l),
                );
                default
            }
        }
    }

    fn check_custom_controller(&mut self, manifest: &Located<CustomController>) {
        let m = &manifest.value;
        if !m.url.starts_with("https://") {
            self.error(
                Problem::error(format!(
                    "ingress.manifest.url `{}` must be an https:// URL",
                    m.url
                ))
                .at(manifest),
            );
        }
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.error(
                Problem::error("ingress.manifest.sha256 must be 64 hexadecimal digits")
                    .at(manifest)
                    .hint("compute it with `sha256sum` on the manifest you reviewed"),
            );
        }
        if m.pod_selector.is_empty() {
            self.error(
                Problem::error("ingress.manifest.podSelector is empty; devcluster waits for the pods it selects")
                    .at(manifest),
            );
        }
    }

    fn check_listen_address(
        &mut self,
        address: &str,
        field: &str,
        at: &dyn Fn(Problem) -> Problem,
    ) {
        if address.parse::<IpAddr>().is_err() {
            self.error(at(Problem::error(format!(
                "{field} `{address}` is not an IP address"
            ))
            .hint(
                "use 127.0.0.1 (this machine only), or 0.0.0.0 for every interface",
            )));
        } else if is_unspecified(address) {
            self.error(at(Problem::warning(format!(
                "{field} `{address}` publishes the port on every network this host is on"
            ))
            .hint("use 127.0.0.1 unless other machines must reach it")));
        }
    }

    fn add_port(
        &mut self,
        nodes: &mut [NodePlan],
        ingress: Option<usize>,
        located: &Located<PortSpec>,
    ) {
        let spec = &located.value;
        let at = |p: Problem| p.at(located);
        let container_port = if (1..=65535).contains(&spec.container_port) {
            spec.container_port as u16
        } else {
            self.error(at(Problem::error(format!(
                "ports: containerPort is {}; it must be 1-65535",
                spec.container_port
            ))));
            return;
        };
        if !(-1..=65535).contains(&spec.host_port) {
            self.error(at(Problem::error(format!(
                "ports: hostPort is {}; it must be 1-65535, 0 (kind picks a free port and keeps it) or -1 (Docker picks one on every start)",
                spec.host_port
            ))));
            return;
        }
        let protocol = match spec.protocol.as_deref() {
            None | Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            Some(other) => {
                let upper = other.to_ascii_uppercase();
                let hint = if ["TCP", "UDP", "SCTP"].contains(&upper.as_str()) {
                    format!("kind spells protocols in upper case: write `protocol: {upper}`")
                } else {
                    "use TCP, UDP or SCTP".to_string()
                };
                self.error(at(Problem::error(format!(
                    "ports: protocol `{other}` is not TCP, UDP or SCTP"
                ))
                .hint(hint)));
                return;
            }
        };
        let listen_address = spec
            .listen_address
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into());
        self.check_listen_address(&listen_address, "ports: listenAddress", &at);
        if (1..1024).contains(&spec.host_port) {
            self.error(at(Problem::warning(format!(
                "ports: hostPort {} is below 1024; rootless Docker cannot publish it",
                spec.host_port
            ))));
        }
        let selector = spec.node.clone().unwrap_or_else(|| "ingress".to_string());
        if ["all", "control-planes", "workers"].contains(&selector.as_str()) {
            self.error(at(Problem::error(format!(
                "ports: node is `{selector}`, but a host port is published by exactly one node"
            ))
            .hint(
                "name one node, e.g. `node: worker`, or leave it out for the ingress node",
            )));
            return;
        }
        let targets = self.select(nodes, ingress, &selector, "ports: node", &at);
        for index in targets {
            nodes[index].ports.push(PortPlan {
                container_port,
                host_port: spec.host_port as i32,
                protocol,
                listen_address: listen_address.clone(),
                purpose: PortPurpose::Profile,
            });
        }
    }

    fn add_mount(
        &mut self,
        nodes: &mut [NodePlan],
        ingress: Option<usize>,
        located: &Located<MountSpec>,
    ) {
        let spec = &located.value;
        let at = |p: Problem| p.at(located);
        // A relative path belongs to the file that wrote it: a profile pulled in by
        // `extends:` resolves against its own directory, built-ins against `base_dir`.
        let declared_in = located
            .file
            .as_deref()
            .filter(|file| !file.starts_with("builtin:"))
            .and_then(|file| Path::new(file).parent())
            .filter(|dir| dir.is_absolute());
        let base = declared_in.unwrap_or(self.input.base_dir);
        let host_path = match resolve_host_path(&spec.host_path, base, self.input.home_dir) {
            Ok(path) => path,
            Err(reason) => {
                self.error(at(Problem::error(format!(
                    "mounts: hostPath `{}` {reason}",
                    spec.host_path
                ))));
                return;
            }
        };
        let host_path_text = host_path.to_string_lossy().into_owned();
        let allow_dangerous = spec.allow_dangerous_path.unwrap_or(false);
        let danger = match dangerous_host_path(&host_path, self.input.home_dir) {
            Some(reason) => Some((reason, String::new())),
            None => self.host.resolve(&host_path).and_then(|real| {
                let home = self.input.home_dir;
                let real_home = home.and_then(|h| self.host.resolve(h));
                let reason = dangerous_host_path(&real, home)
                    .or_else(|| dangerous_host_path(&real, real_home.as_deref()))?;
                Some((reason, format!(" (a symlink to `{}`)", real.display())))
            }),
        };
        if let Some((reason, via)) = danger
            && !allow_dangerous
        {
            self.error(at(Problem::error(format!(
                "mounts: hostPath `{host_path_text}`{via} {reason}; devcluster refuses it by default"
            ))
            .hint("mount a narrower directory, or set `allowDangerousPath: true` on this mount if you mean it")));
        }
        let mut container_path = spec.container_path.clone();
        if let Some(reason) = container_path_problem(&container_path) {
            self.error(at(Problem::error(format!(
                "mounts: containerPath `{container_path}` {reason}"
            ))));
        } else {
            // `/data/` and `/data` are one path; kind gets the short form.
            container_path = normalize(Path::new(&container_path))
                .to_string_lossy()
                .into_owned();
        }
        let selectors = spec
            .nodes
            .clone()
            .map(|s| s.0)
            .unwrap_or_else(|| vec!["all".to_string()]);
        if selectors.is_empty() {
            self.error(at(Problem::error(
                "mounts: nodes is an empty list; the mount would be on no node",
            )
            .hint("leave `nodes` out for every node, or name the nodes")));
        }
        let mut targets = BTreeSet::new();
        for selector in &selectors {
            targets.extend(self.select(nodes, ingress, selector, "mounts: nodes", &at));
        }
        let mount = MountPlan {
            host_path: host_path_text,
            container_path,
            path_type: spec.path_type.unwrap_or_default(),
            read_only: spec.read_only.unwrap_or(false),
            propagation: spec.propagation.unwrap_or_default(),
            selinux_relabel: spec.selinux_relabel.unwrap_or(false),
            allow_dangerous_path: allow_dangerous,
        };
        for index in targets {
            nodes[index].mounts.push(mount.clone());
        }
    }

    fn check_mounts(&mut self, nodes: &[NodePlan]) {
        for node in nodes {
            let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
            for mount in &node.mounts {
                let key = mount.container_path.trim_end_matches('/');
                if let Some(first) = seen.insert(key, &mount.host_path) {
                    let mounts = &self.input.profile.mounts;
                    let at = mounts
                        .iter()
                        .rev()
                        .find(|m| m.value.container_path.trim_end_matches('/') == key)
                        .cloned()
                        .unwrap_or_default();
                    self.error(
                        Problem::error(format!(
                            "mounts: node `{}` gets two mounts on containerPath `{}` (from `{first}` and `{}`)",
                            node.id, mount.container_path, mount.host_path
                        ))
                        .at(&at)
                        .hint("give each mount its own containerPath, or aim them at different nodes"),
                    );
                }
            }
        }
    }

    fn check_ports(&mut self, nodes: &[NodePlan], networking: &NetworkingPlan) {
        let port_location = |port: &PortPlan| -> Located<()> {
            let ingress = self.input.profile.ingress.as_ref();
            let located = match port.purpose {
                PortPurpose::IngressHttp => ingress
                    .and_then(|i| i.http_port.as_ref())
                    .map(|l| (l.line, l.column, l.file.clone())),
                PortPurpose::IngressHttps => ingress
                    .and_then(|i| i.https_port.as_ref())
                    .map(|l| (l.line, l.column, l.file.clone())),
                PortPurpose::Profile => self
                    .input
                    .profile
                    .ports
                    .iter()
                    .find(|p| {
                        p.value.host_port == i64::from(port.host_port)
                            && p.value.container_port == i64::from(port.container_port)
                    })
                    .map(|l| (l.line, l.column, l.file.clone())),
            };
            match located {
                Some((line, column, file)) => Located {
                    value: (),
                    line,
                    column,
                    file,
                },
                None => Located::new(()),
            }
        };
        let mut problems = Vec::new();
        // (node index, port) for every fixed host port.
        let fixed: Vec<(usize, &PortPlan)> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.ports.iter().map(move |p| (i, p)))
            .filter(|(_, p)| p.host_port > 0)
            .collect();
        for (a, (node_a, port_a)) in fixed.iter().enumerate() {
            if networking.api_server_port > 0
                && port_a.host_port == networking.api_server_port
                && port_a.protocol == Protocol::Tcp
                && addresses_overlap(&port_a.listen_address, &networking.api_server_address)
            {
                problems.push(
                    Problem::error(format!(
                        "host port {} on node `{}` is also networking.apiServerPort",
                        port_a.host_port, nodes[*node_a].id
                    ))
                    .at(&port_location(port_a))
                    .hint("use another hostPort, or leave apiServerPort at 0"),
                );
            }
            for (node_b, port_b) in fixed.iter().skip(a + 1) {
                if port_a.host_port != port_b.host_port
                    || port_a.protocol != port_b.protocol
                    || !addresses_overlap(&port_a.listen_address, &port_b.listen_address)
                {
                    continue;
                }
                let message = if node_a == node_b {
                    format!(
                        "node `{}` publishes host port {}/{} twice (a mapping without `protocol` is TCP)",
                        nodes[*node_a].id,
                        port_a.host_port,
                        port_a.protocol.as_str()
                    )
                } else {
                    format!(
                        "host port {}/{} is published by two nodes, `{}` and `{}`; Docker would fail with \"port is already allocated\" after the nodes were prepared",
                        port_a.host_port,
                        port_a.protocol.as_str(),
                        nodes[*node_a].id,
                        nodes[*node_b].id
                    )
                };
                problems.push(
                    Problem::error(message)
                        .at(&port_location(port_b))
                        .hint("give each mapping its own hostPort, or 0 to let kind pick one"),
                );
            }
        }
        self.problems.extend(problems);
    }

    fn image(&mut self) -> (Option<String>, Option<String>) {
        let Some(l) = self.input.profile.image.clone() else {
            return (None, None);
        };
        let image = l.value.clone();
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(Problem::error(format!("image `{image}` is not an image reference")).at(&l));
            return (Some(image), None);
        }
        let (name_tag, digest) = match image.split_once('@') {
            Some((name_tag, digest)) => (name_tag, Some(digest)),
            None => (image.as_str(), None),
        };
        if let Some(digest) = digest {
            let hex = digest.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.error(
                    Problem::error(format!(
                        "image digest `{digest}` must be `sha256:` and 64 hexadecimal digits"
                    ))
                    .at(&l),
                );
            }
        }
        (Some(image.clone()), kubernetes_version_of(name_tag))
    }
}

/// `1.36.1` from `kindest/node:v1.36.1` (with or without registry and digest).
pub fn kubernetes_version_of(image: &str) -> Option<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let tag = last.split_once(':')?.1;
    let version = tag.strip_prefix('v').unwrap_or(tag);
    let numeric = version.split(['-', '+']).next().unwrap_or(version);
    let parts: Vec<&str> = numeric.split('.').collect();
    if parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        Some(numeric.to_string())
    } else {
        None
    }
}

fn new_node(cluster: &str, role: Role, index: u32) -> NodePlan {
    let id = if index == 1 {
        role.as_str().to_string()
    } else {
        format!("{}{index}", role.as_str())
    };
    NodePlan {
        name: format!("{cluster}-{id}"),
        id,
        role,
        labels: BTreeMap::new(),
        taints: Vec::new(),
        mounts: Vec::new(),
        ports: Vec::new(),
        ingress: false,
    }
}

fn indices(nodes: &[NodePlan], keep: impl Fn(&NodePlan) -> bool) -> Vec<usize> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| keep(n))
        .map(|(i, _)| i)
        .collect()
}

fn node_ids(nodes: &[NodePlan]) -> String {
    nodes
        .iter()
        .map(|n| n.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_unspecified(address: &str) -> bool {
    address.parse::<IpAddr>().is_ok_and(|a| a.is_unspecified())
}

/// Whether two listen addresses can clash: equal, or either is a wildcard of the
/// same family (kind's rule, applied across nodes too).
fn addresses_overlap(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => {
            a == b || (a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified()))
        }
        _ => a == b,
    }
}

/// The `kubernetes.io` labels a kubelet may set on its own node (kubelet
/// `staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go`, `kubeletLabels`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];

/// Label namespaces a kubelet may use, themselves or as a `.`-suffix (the same
/// file, `kubeletLabelNamespaces`).
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

/// Whether `prefix` is `namespace` or a subdomain of it.
fn in_namespace(prefix: &str, namespace: &str) -> bool {
    prefix == namespace
        || prefix
            .strip_suffix(namespace)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The kubelet's `IsKubeletLabel`: a label it accepts in `--node-labels` although its
/// prefix is in the reserved `kubernetes.io` / `k8s.io` namespaces (checked by
/// `ValidateKubeletFlags` in `cmd/kubelet/app/options/options.go`).
fn is_kubelet_label(key: &str) -> bool {
    if KUBELET_LABELS.contains(&key) {
        return true;
    }
    let Some((prefix, _)) = key.split_once('/') else {
        return false;
    };
    KUBELET_LABEL_NAMESPACES
        .iter()
        .any(|namespace| in_namespace(prefix, namespace))
}

/// Why `key` cannot be a node label key, if it cannot.
fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let reserved = ["kubernetes.io", "k8s.io"]
            .iter()
            .any(|r| in_namespace(prefix, r));
        if reserved && !is_kubelet_label(key) {
            return Some(format!(
                "uses the reserved prefix `{prefix}`: the kubelet refuses to start with it (labels in `kubernetes.io` and `k8s.io` must be in the kubelet's allowed set)"
            ));
        }
        let valid_prefix = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !valid_prefix {
            return Some(format!(
                "has prefix `{prefix}`, which is not a DNS subdomain"
            ));
        }
    }
    if name.is_empty() || name.len() > 63 || !is_label_word(name) {
        return Some(
            "is not a valid label name (1-63 letters, digits, `-`, `_`, `.`, starting and ending alphanumeric)"
                .to_string(),
        );
    }
    None
}

fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if value.len() > 63 || !is_label_word(value) {
        return Some(
            "is not a valid label value (at most 63 letters, digits, `-`, `_`, `.`, starting and ending alphanumeric)"
                .to_string(),
        );
    }
    None
}

fn is_label_word(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Parses `key[=value]:Effect`.
pub fn parse_taint(text: &str) -> Result<Taint, String> {
    let Some((key_value, effect)) = text.rsplit_once(':') else {
        return Err("has no effect (`:NoSchedule`, `:PreferNoSchedule` or `:NoExecute`)".into());
    };
    let effect = match effect {
        "NoSchedule" => TaintEffect::NoSchedule,
        "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
        "NoExecute" => TaintEffect::NoExecute,
        other => {
            return Err(format!(
                "has effect `{other}`; it must be NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
    };
    let (key, value) = match key_value.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None => (key_value, None),
    };
    if key.is_empty() {
        return Err("has an empty key".into());
    }
    if let Some(reason) = label_key_problem(key).filter(|r| !r.contains("reserved")) {
        return Err(format!("has key `{key}`, which {reason}"));
    }
    if let Some(reason) = value.as_deref().and_then(label_value_problem) {
        return Err(format!("has a value that {reason}"));
    }
    Ok(Taint {
        key: key.to_string(),
        value,
        effect,
        implicit: false,
    })
}

/// Resolves a profile's host path: `~` to the home directory, relative paths
/// against `base`, then `.` and `..` lexically. The result is absolute.
pub fn resolve_host_path(text: &str, base: &Path, home: Option<&Path>) -> Result<PathBuf, String> {
    if text.trim().is_empty() {
        return Err(
            "is empty; Docker would mount the working directory of the kind process".into(),
        );
    }
    if text.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    let joined = if text == "~" || text.starts_with("~/") {
        let Some(home) = home else {
            return Err("starts with `~` but the home directory is unknown".into());
        };
        home.join(text.trim_start_matches('~').trim_start_matches('/'))
    } else if text.starts_with('~') {
        return Err("uses `~user`, which devcluster does not expand; write the full path".into());
    } else {
        base.join(text)
    };
    if !joined.is_absolute() {
        return Err(format!(
            "resolves to `{}`, which is not absolute",
            joined.display()
        ));
    }
    Ok(normalize(&joined))
}

/// Removes `.` and `..` components without touching the filesystem.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push("/");
    }
    out
}

/// Why mounting `path` into a cluster is dangerous, if it is. Lexical: the caller
/// checks the symlink-resolved path as well.
pub fn dangerous_host_path(path: &Path, home: Option<&Path>) -> Option<&'static str> {
    let is = |other: &str| path == Path::new(other);
    if is("/") {
        return Some("is the host's root directory");
    }
    if path.file_name().is_some_and(|n| n == "docker.sock") {
        return Some("is the Docker socket: any pod could take over the host");
    }
    if path.file_name().is_some_and(|n| n == "containerd.sock") {
        return Some("is the containerd socket: any pod could take over the host");
    }
    if is("/var/run") || is("/run") {
        return Some("holds the Docker socket: any pod could take over the host");
    }
    if is("/var/run/containerd") || is("/run/containerd") {
        return Some("holds the containerd socket: any pod could take over the host");
    }
    if is("/etc") {
        return Some("is the host's configuration, /etc/shadow and /etc/sudoers included");
    }
    if path.starts_with("/var/lib/docker") {
        return Some("is Docker's data directory: every container's files and volumes");
    }
    if path.starts_with("/var/lib/containerd") {
        return Some("is containerd's data directory: every container's files");
    }
    if is("/home") || is("/Users") {
        return Some("holds every user's home directory, with their ~/.ssh and other credentials");
    }
    if let Some(home) = home {
        if path == home {
            return Some("is the home directory, which holds ~/.ssh and other credentials");
        }
        if path.starts_with(home.join(".ssh")) {
            return Some("is under ~/.ssh: it holds private keys");
        }
        if home.starts_with(path) {
            return Some("contains the home directory, which holds ~/.ssh and other credentials");
        }
    }
    None
}

fn container_path_problem(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("is empty".into());
    }
    if !path.starts_with('/') {
        return Some("is not absolute".into());
    }
    let normalized = normalize(Path::new(path));
    if normalized.as_os_str() != path.trim_end_matches('/') && path != "/" {
        return Some(format!(
            "is not normalised; write `{}`",
            normalized.display()
        ));
    }
    for tmpfs in ["/tmp", "/run"] {
        if normalized.starts_with(tmpfs) {
            return Some(format!(
                "is under {tmpfs}, a tmpfs in kind nodes: the mount would be hidden or lost"
            ));
        }
    }
    for system in [
        "/",
        "/var",
        "/etc",
        "/proc",
        "/sys",
        "/dev",
        "/usr",
        "/bin",
        "/lib",
        "/var/lib",
        "/var/lib/kubelet",
        "/kind",
    ] {
        if normalized == Path::new(system) {
            return Some("would hide the node's own files".into());
        }
    }
    None
}

/// The plan of the profile `text` for cluster `c`, relative paths under `/p`: for
/// unit tests of the modules that consume plans.
#[cfg(test)]
pub(crate) fn plan_of_text(text: &str) -> ClusterPlan {
    let profile = crate::core::profile::Profile::decode(text).unwrap_or_else(|e| panic!("{e:?}"));
    let input = PlanInput {
        profile: &profile,
        name_override: Some("c"),
        base_dir: std::path::Path::new("/p"),
        home_dir: None,
        source: "test".into(),
        file: None,
    };
    plan(&input).unwrap_or_else(|e| panic!("{e:?}")).plan
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host whose only symlinks are the given ones (link -> target).
    struct Links(Vec<(&'static str, &'static str)>);

    impl HostPaths for Links {
        fn resolve(&self, path: &Path) -> Option<PathBuf> {
            self.0.iter().find_map(|(link, target)| {
                let rest = path.strip_prefix(link).ok()?;
                Some(Path::new(target).join(rest))
            })
        }
    }

    fn problems(host_path: &str, host: &dyn HostPaths) -> Vec<String> {
        let text = format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nmounts:\n  - hostPath: {host_path}\n    containerPath: /data\n"
        );
        let profile = Profile::decode(&text).unwrap_or_else(|e| panic!("{e:?}"));
        let input = PlanInput {
            profile: &profile,
            name_override: None,
            base_dir: Path::new("/work"),
            home_dir: Some(Path::new("/home/me")),
            source: "test".into(),
            file: None,
        };
        match plan_on(&input, host) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| p.message).collect(),
        }
    }

    #[test]
    fn the_guard_checks_where_a_symlink_leads() {
        let host = Links(vec![
            ("/work/root", "/"),
            ("/work/sock", "/var/run/docker.sock"),
            ("/work/state", "/var/lib/docker"),
            ("/home/me", "/Users/me"),
            ("/work/users", "/Users"),
        ]);
        let root = problems("./root", &host);
        assert_eq!(
            root,
            vec![
                "mounts: hostPath `/work/root` (a symlink to `/`) is the host's root directory; devcluster refuses it by default"
            ]
        );
        assert!(problems("./sock", &host)[0].contains("is the Docker socket"));
        assert!(problems("./state/volumes/x", &host)[0].contains("Docker's data directory"));
        assert!(problems("./users", &host)[0].contains("holds every user's home directory"));
        // Taken as written, the same links pass: the planner alone cannot know.
        assert!(problems("./root", &AsWritten).is_empty());
        for path in [
            "/etc",
            "/run/containerd/containerd.sock",
            "/home",
            "/Users",
            "/var/lib/docker/x",
        ] {
            assert!(!problems(path, &AsWritten).is_empty(), "{path}");
        }
        assert!(problems("/etc/ssl/certs", &AsWritten).is_empty());
        assert!(problems("/srv/data", &host).is_empty());
    }

    #[test]
    fn labels_the_kubelet_allows() {
        for key in [
            "topology.kubernetes.io/zone",
            "topology.kubernetes.io/region",
            "node.kubernetes.io/instance-type",
            "kubernetes.io/os",
            "kubelet.kubernetes.io/anything",
            "team.node.kubernetes.io/anything",
            "example.com/tier",
        ] {
            assert_eq!(label_key_problem(key), None, "{key}");
        }
        for key in [
            "node-role.kubernetes.io/worker",
            "kubernetes.io/role",
            "node-restriction.kubernetes.io/x",
            "k8s.io/x",
            "xnode.kubernetes.io/x",
        ] {
            assert!(
                label_key_problem(key).is_some_and(|r| r.contains("reserved")),
                "{key}"
            );
        }
    }
}
