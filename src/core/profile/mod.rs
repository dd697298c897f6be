//! The profile format (`devcluster.dev/v1alpha1`, `kind: Profile`): its types, every
//! field's meaning and default, and how `extends:` merges one profile into another.
//!
//! Decoding is strict: an unknown field is an error naming its line and column.
//! Reading files and finding profiles is in [`source`]; this module does no I/O.

pub mod merge;
pub mod source;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::yaml::{self, Located};

pub const API_VERSION: &str = "devcluster.dev/v1alpha1";
pub const KIND: &str = "Profile";

/// A devcluster profile: what cluster to make, in words a developer uses.
///
/// Every field is optional; a profile that says nothing makes a single-node cluster
/// named `devcluster`. With `extends`, the named profile is read first and this one
/// is merged over it: scalars here replace the base's, lists (`mounts`, `ports`,
/// taints) are appended after the base's, maps (`labels`) are merged key by key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "devcluster profile")]
pub struct Profile {
    /// Must be `devcluster.dev/v1alpha1`.
    pub api_version: String,
    /// Must be `Profile`.
    pub kind: String,
    /// One line saying what the profile is for; shown by `devcluster profiles list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A profile to start from: a built-in name (`single`, `multi`, `ingress`,
    /// `workspace`) or a path, relative to this file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<Located<String>>,
    /// Cluster name, `^[a-z0-9.-]+$`. `--name` overrides it. Default: `devcluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Located<String>>,
    /// Node image, by tag (`kindest/node:v1.36.1`) or digest
    /// (`kindest/node:v1.36.1@sha256:...`). Default: none, so kind uses the node image
    /// that matches its own release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Located<String>>,
    /// How many nodes of each role, and what sets them apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodesSpec>,
    /// Host directories or files bind-mounted into node containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Located<MountSpec>>,
    /// Host ports published by one node container each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Located<PortSpec>>,
    /// An ingress controller pinned to the ingress node, with its host ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// The default StorageClass and what devcluster does about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Cluster networking, passed to kind's `networking:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<NetworkingSpec>,
    /// A local image registry every node pulls from as `localhost:<hostPort>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySpec>,
}

/// The node set. Nodes are named as kind names their containers, without the
/// cluster prefix: `control-plane`, `control-plane2`, `control-plane3`, `worker`,
/// `worker2`, ... Wherever a profile names nodes it may also use a set:
/// `all`, `control-planes`, `workers` or `ingress` (the ingress node).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodesSpec {
    /// Number of control-plane nodes: 1 or 3. Default: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_planes: Option<Located<i64>>,
    /// Number of worker nodes. Default: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<Located<i64>>,
    /// The node that publishes the ingress ports and runs the ingress controller; it
    /// gets the label `ingress-ready=true`. Default: the first worker, or the first
    /// control-plane when there are no workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Located<String>>,
    /// Kubernetes node labels by node or node set, rendered as kind's `labels:`.
    /// Prefixes `kubernetes.io/` and `k8s.io/` are refused: the kubelet would not start.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Located<BTreeMap<String, String>>>,
    /// Node taints by node or node set, each `key[=value]:Effect` with Effect one of
    /// `NoSchedule`, `PreferNoSchedule`, `NoExecute`. Default: none (multi-node
    /// clusters keep kubeadm's control-plane `NoSchedule` taint).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub taints: BTreeMap<String, Located<Vec<String>>>,
}

/// One bind mount: host path -> node container path, on some nodes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MountSpec {
    /// Path on the host. `~` expands to the home directory; a relative path is
    /// resolved against the directory of the profile file (for a built-in profile,
    /// the current directory). Required.
    pub host_path: String,
    /// Absolute path inside each node container; pods reach it with a `hostPath`
    /// volume of the same path. Not under `/tmp` or `/run` (tmpfs in kind nodes). Required.
    pub container_path: String,
    /// Whether the host path is a `Directory` or a `File`. Default: `Directory`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub path_type: Option<MountPathType>,
    /// Mount read-only. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Mount propagation: `None`, `HostToContainer` or `Bidirectional`. Default: `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<Propagation>,
    /// Relabel for SELinux (`:Z`). Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux_relabel: Option<bool>,
    /// Which nodes get the mount: node names or sets (`all`, `control-planes`,
    /// `workers`, `ingress`), as one string or a list. Default: `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeSelection>,
    /// Allow a host path devcluster refuses by default (`/`, the Docker socket,
    /// `~/.ssh` and what is under it). Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_dangerous_path: Option<bool>,
}

/// One published port: host `listenAddress:hostPort` -> node `containerPort`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortSpec {
    /// Port inside the node container (for example a NodePort). Required, 1-65535.
    pub container_port: i64,
    /// Port on the host: 1-65535, `0` to let kind pick a free port that stays the
    /// same across restarts, or `-1` to let Docker pick one on every start. Required.
    pub host_port: i64,
    /// `TCP`, `UDP` or `SCTP`. Default: `TCP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Host address to listen on. Default: `127.0.0.1`; `0.0.0.0` exposes the port
    /// to every network the host is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
    /// The node that publishes the port. Default: the ingress node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// The ingress controller and its host ports.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressSpec {
    /// Publish the ingress ports and install the controller. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Located<bool>>,
    /// Host port for HTTP. Default: 80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_port: Option<Located<i64>>,
    /// Host port for HTTPS. Default: 443.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_port: Option<Located<i64>>,
    /// Host address for both ports. Default: `127.0.0.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<Located<String>>,
    /// `contour` (Contour v1.33.6 with Envoy on the ingress node, serving Ingress
    /// and Gateway API), `ingress-nginx` (its kind deployment at v1.15.1, retired
    /// upstream: a warning), `custom` (the manifest below) or `none` (ports only).
    /// Default: `contour`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<Located<String>>,
    /// The controller manifest when `controller: custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Located<CustomController>>,
}

/// A controller manifest of the profile's own choosing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CustomController {
    /// `https://` URL of a multi-document YAML manifest.
    pub url: String,
    /// Expected SHA-256 of the manifest, 64 hex digits.
    pub sha256: String,
    /// Namespace of the controller pods.
    pub namespace: String,
    /// Label selector of the controller pods, as `key=value` pairs.
    pub pod_selector: BTreeMap<String, String>,
    /// The IngressClass the controller serves, named by the Ingress `verify`
    /// makes. Default: `nginx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    /// The Gateway the manifest's controller programs, when it serves Gateway API:
    /// `verify` then proves an HTTPRoute attached to it as well as an Ingress.
    /// Default: none (Ingress only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayRef>,
}

/// A Gateway (`gateway.networking.k8s.io`), by namespace and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayRef {
    pub namespace: String,
    pub name: String,
}

/// The default StorageClass (`standard`, rancher.io/local-path in kind node images).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StorageSpec {
    /// Give local-path-provisioner's helper pods tolerations so volumes can be made on
    /// tainted nodes, when the node image needs it (kind v0.31.0 and v0.32.0 images).
    /// Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerate_tainted_nodes: Option<bool>,
}

/// A local registry container, as kind's local registry guide sets one up: published
/// on the host, joined to the `kind` network, and configured in every node's
/// containerd so that `localhost:<hostPort>/IMAGE` pulls from it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistrySpec {
    /// Run the registry and configure the nodes for it. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Located<bool>>,
    /// Host port of the registry; images are pushed to and pulled from
    /// `localhost:<hostPort>`. Default: 5001.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<Located<i64>>,
    /// Host address the registry listens on. Default: `127.0.0.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<Located<String>>,
    /// The registry image, for machines that cannot pull the default (a copy in a
    /// mirror, or an image already loaded into Docker). Default:
    /// `docker.io/library/registry:2.8.3` pinned by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Located<String>>,
}

/// Cluster networking; see kind's `networking:` for each field.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkingSpec {
    /// `ipv4`, `ipv6` or `dual`. Default: kind's (`ipv4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family: Option<Located<String>>,
    /// Host address of the API server. Default: `127.0.0.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server_address: Option<Located<String>>,
    /// Host port of the API server; 0 picks a free one. Default: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server_port: Option<Located<i64>>,
    /// Pod CIDR. Default: kind's (`10.244.0.0/16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_subnet: Option<Located<String>>,
    /// Service CIDR. Default: kind's (`10.96.0.0/16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_subnet: Option<Located<String>>,
    /// `iptables`, `ipvs`, `nftables` or `none`. Default: kind's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_proxy_mode: Option<Located<String>>,
    /// Install no CNI, for bringing one's own. Default: false.
    #[serde(
        default,
        rename = "disableDefaultCNI",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_default_cni: Option<bool>,
}

/// Whether a mount's host path is a directory or a single file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
pub enum MountPathType {
    #[default]
    Directory,
    File,
}

/// kind's mount propagation modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
pub enum Propagation {
    #[default]
    None,
    HostToContainer,
    Bidirectional,
}

/// Node names or sets: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct NodeSelection(#[schemars(with = "NodeSelectionSchema")] pub Vec<String>);

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum NodeSelectionSchema {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for NodeSelection {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = NodeSelection;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a node name or set, or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(NodeSelection(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(NodeSelection(names))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `apiVersion` and `kind`, read before anything else so a file of another
/// kind or version gets an error about that, not about its fields.
#[derive(Debug, Deserialize)]
struct TypeMeta {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<Located<String>>,
    #[serde(default)]
    kind: Option<Located<String>>,
}

/// Why a profile document could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub message: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub hint: Option<String>,
}

impl Profile {
    /// Decodes a profile document: `apiVersion` and `kind` first, then every field
    /// strictly.
    pub fn decode(text: &str) -> Result<Profile, DecodeError> {
        if text.trim().is_empty() {
            return Err(DecodeError {
                message: "the profile is empty".into(),
                line: None,
                column: None,
                hint: Some(format!(
                    "a profile starts with `apiVersion: {API_VERSION}` and `kind: {KIND}`; see `devcluster profiles show single`"
                )),
            });
        }
        let from_yaml = |e: yaml::YamlError| DecodeError {
            message: e.message,
            line: e.line,
            column: e.column,
            hint: None,
        };
        // Type metadata tolerates other fields; anything but a mapping fails here.
        let meta: TypeMeta = yaml::from_str(text).map_err(from_yaml)?;
        match &meta.api_version {
            Some(v) if v.value == API_VERSION => {}
            Some(v) => {
                return Err(DecodeError {
                    message: format!("unsupported apiVersion `{}`", v.value),
                    line: Some(v.line),
                    column: Some(v.column),
                    hint: Some(format!("this devcluster reads `apiVersion: {API_VERSION}`")),
                });
            }
            None => {
                return Err(DecodeError {
                    message: "missing `apiVersion`".into(),
                    line: None,
                    column: None,
                    hint: Some(format!("add `apiVersion: {API_VERSION}` at the top")),
                });
            }
        }
        match &meta.kind {
            Some(k) if k.value == KIND => {}
            Some(k) => {
                return Err(DecodeError {
                    message: format!("unsupported kind `{}`", k.value),
                    line: Some(k.line),
                    column: Some(k.column),
                    hint: Some(format!("a devcluster profile has `kind: {KIND}`")),
                });
            }
            None => {
                return Err(DecodeError {
                    message: "missing `kind`".into(),
                    line: None,
                    column: None,
                    hint: Some(format!("add `kind: {KIND}` below `apiVersion`")),
                });
            }
        }
        yaml::from_str(text).map_err(from_yaml)
    }

    /// Records `file` as the origin of every located value, so problems found after
    /// `extends:` merged several files still name the right one.
    pub fn with_file(&self, file: &str) -> Result<Profile, merge::MergeError> {
        merge::with_file(self, file)
    }

    /// Merges `self` over `base`: scalars set here win, lists append after the
    /// base's, maps merge key by key (this profile's value wins for a key in both).
    /// The rules are in [`merge`], generic over the fields.
    pub fn merged_over(&self, base: &Profile) -> Result<Profile, merge::MergeError> {
        merge::merged(self, base)
    }
}

/// The JSON Schema of the profile format, generated from these types.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Profile);
    serde_json::to_value(&schema).unwrap_or(serde_json::Value::Null)
}

/// A built-in profile: its name and its YAML text, compiled into the binary.
pub struct BuiltinProfile {
    pub name: &'static str,
    pub text: &'static str,
}

impl BuiltinProfile {
    /// The profile's `description:` line, empty when it has none.
    pub fn description(&self) -> String {
        Profile::decode(self.text)
            .ok()
            .and_then(|p| p.description)
            .unwrap_or_default()
    }
}

/// The built-in profiles, in the order `devcluster profiles list` shows them.
pub const BUILTIN_PROFILES: &[BuiltinProfile] = &[
    BuiltinProfile {
        name: "single",
        text: include_str!("../../../profiles/single.yaml"),
    },
    BuiltinProfile {
        name: "multi",
        text: include_str!("../../../profiles/multi.yaml"),
    },
    BuiltinProfile {
        name: "ingress",
        text: include_str!("../../../profiles/ingress.yaml"),
    },
    BuiltinProfile {
        name: "workspace",
        text: include_str!("../../../profiles/workspace.yaml"),
    },
];

/// The built-in profile of that name, if there is one.
pub fn builtin(name: &str) -> Option<&'static BuiltinProfile> {
    BUILTIN_PROFILES.iter().find(|p| p.name == name)
}
