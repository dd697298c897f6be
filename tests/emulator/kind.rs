//! A test-only kind emulator: the kind CLI subset devcluster uses, re-implemented from
//! kind's sources (v0.32.0) without the devcluster library, so a test can catch drift
//! between what devcluster plans and what kind would create.
//!
//! It drives the `docker` CLI the way kind's docker provider does and creates one
//! container per node from a small local image (`devcluster-test/node:latest`) that
//! only runs `sleep`. No Kubernetes runs inside. State lives only in container labels.
//!
//! Deliberate differences from kind, each needed on a test host:
//! - nodes run unprivileged (`--privileged` cannot start here), see [`node_run_args`];
//! - the image is never pulled (there is no registry), see [`ensure_images`];
//! - `--wait` is accepted and ignored (nothing inside the node becomes ready);
//! - the `kind` network is created plain, without kind's IPv6 and MTU options;
//! - nodes are created one after another; kind creates them concurrently.
//!
//! Test hooks: `KIND_EMULATOR_VERSION` (the version `kind version` reports),
//! `KIND_EMULATOR_IMAGE` (default node image), `KIND_EMULATOR_FAIL_AFTER_NODES=1`
//! (fail after the nodes exist), `KIND_EMULATOR_SLOW_SECONDS=N` (pause mid-create),
//! `KIND_EMULATOR_HANG_PID_FILE=PATH` (once the nodes exist, wait on a child process
//! that never ends by itself, its pid written to PATH: kind runs `docker` and other
//! commands as child processes, `pkg/exec/local.go`, and one of them can hang, e.g. a
//! slow image pull), `KIND_EMULATOR_DELETE_SLOW_SECONDS=N` (pause before deleting).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

const DEFAULT_VERSION: &str = "v0.32.0";
const DEFAULT_IMAGE: &str = "devcluster-test/node:latest";
const DEFAULT_CLUSTER_NAME: &str = "kind";
const NETWORK: &str = "kind";
/// kind's label keys: pkg/cluster/internal/providers/docker/constants.go.
const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
const ROLE_LABEL: &str = "io.x-k8s.kind.role";
const CONTROL_PLANE: &str = "control-plane";
const WORKER: &str = "worker";
const LOAD_BALANCER: &str = "external-load-balancer";
/// kind's API server port inside a node: providers/common/constants.go.
const API_SERVER_INTERNAL_PORT: i32 = 6443;
/// Stands in for certificate data in the kubeconfigs the emulator writes.
const DUMMY_CERT_DATA: &str = "a2luZC1lbXVsYXRvcjogbm90IGEgcmVhbCBjZXJ0aWZpY2F0ZQ==";

/// An error message as kind prints it after `ERROR: `.
#[derive(Debug)]
struct Failure(String);

type Result<T> = std::result::Result<T, Failure>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(Failure(message.into()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("ERROR: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    // kind's root command takes `-v/--verbosity N` and `-q/--quiet` anywhere.
    let mut words = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-v" | "--verbosity" => {
                iter.next();
            }
            "-q" | "--quiet" => {}
            a if a.starts_with("--verbosity=") => {}
            _ => words.push(arg.clone()),
        }
    }
    let (command, rest) = split_command(&words);
    match command.as_slice() {
        ["version"] => version(rest),
        ["--version"] => {
            println!("kind version {}", kind_version().trim_start_matches('v'));
            Ok(())
        }
        ["create", "cluster"] => create_cluster(rest),
        ["delete", "cluster"] => delete_cluster(rest),
        ["get", "clusters"] => get_clusters(rest),
        ["get", "nodes"] => get_nodes(rest),
        ["get", "kubeconfig"] => get_kubeconfig(rest),
        ["export", "logs"] => export_logs(rest),
        [] => fail("a command is required (version, create, delete, get, export)"),
        other => fail(format!(
            "unknown command {:?} for \"kind\"",
            other.join(" ")
        )),
    }
}

/// Splits leading words (sub-commands) from flags and positional arguments.
fn split_command(words: &[String]) -> (Vec<&str>, &[String]) {
    let verbs = ["create", "delete", "get", "export"];
    let mut command = Vec::new();
    let mut index = 0;
    if let Some(first) = words.first() {
        command.push(first.as_str());
        index = 1;
        if let (true, Some(second)) = (
            verbs.contains(&first.as_str()),
            words.get(1).filter(|w| !w.starts_with('-')),
        ) {
            command.push(second.as_str());
            index = 2;
        }
    }
    (command, &words[index..])
}

fn kind_version() -> String {
    let version = std::env::var("KIND_EMULATOR_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_VERSION.to_string());
    if version.starts_with('v') {
        version
    } else {
        format!("v{version}")
    }
}

fn version(rest: &[String]) -> Result<()> {
    Flags::parse(rest, &[], &[])?;
    // pkg/cmd/kind/version/version.go: `kind <version> <go version> <os>/<arch>`.
    println!("kind {} go1.24.0 linux/amd64", kind_version());
    Ok(())
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

/// Parsed `--flag value`, `--flag=value` and boolean flags, plus positionals.
struct Flags {
    values: BTreeMap<String, String>,
    switches: BTreeSet<String>,
    positional: Vec<String>,
}

impl Flags {
    fn parse(args: &[String], valued: &[&str], boolean: &[&str]) -> Result<Flags> {
        let mut flags = Flags {
            values: BTreeMap::new(),
            switches: BTreeSet::new(),
            positional: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let Some(body) = arg.strip_prefix("--") else {
                if arg.starts_with('-') && arg != "-" {
                    return fail(format!("unknown shorthand flag: {arg:?}"));
                }
                flags.positional.push(arg.clone());
                continue;
            };
            let (name, inline) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (body, None),
            };
            if valued.contains(&name) {
                let value = match inline {
                    Some(value) => value,
                    None => match iter.next() {
                        Some(value) => value.clone(),
                        None => return fail(format!("flag needs an argument: --{name}")),
                    },
                };
                flags.values.insert(name.to_string(), value);
            } else if boolean.contains(&name) {
                match inline.as_deref() {
                    None | Some("true") => {
                        flags.switches.insert(name.to_string());
                    }
                    Some("false") => {}
                    Some(other) => {
                        return fail(format!(
                            "invalid argument {other:?} for \"--{name}\" flag: not a boolean"
                        ));
                    }
                }
            } else {
                return fail(format!("unknown flag: --{name}"));
            }
        }
        Ok(flags)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn switch(&self, name: &str) -> bool {
        self.switches.contains(name)
    }

    fn no_positionals(&self, command: &str) -> Result<()> {
        match self.positional.first() {
            None => Ok(()),
            Some(arg) => fail(format!("unknown command {arg:?} for \"kind {command}\"")),
        }
    }

    /// `--name`, else `KIND_CLUSTER_NAME`, else kind's default: pkg/cluster/provider.go
    /// (DefaultName).
    fn cluster_name(&self) -> String {
        self.value("name")
            .map(str::to_string)
            .or_else(|| {
                std::env::var("KIND_CLUSTER_NAME")
                    .ok()
                    .filter(|n| !n.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_CLUSTER_NAME.to_string())
    }
}

// ---------------------------------------------------------------------------
// Config: kind.x-k8s.io/v1alpha4, decoded strictly (pkg/apis/config/v1alpha4/types.go,
// pkg/internal/apis/config/encoding/load.go)
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
// Every field is decoded so unknown ones are rejected; the emulator acts on some.
#[allow(dead_code)]
struct ClusterConfig {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    nodes: Option<Vec<NodeConfig>>,
    #[serde(default)]
    networking: Option<Networking>,
    #[serde(default)]
    feature_gates: Option<BTreeMap<String, bool>>,
    #[serde(default)]
    runtime_config: Option<BTreeMap<String, String>>,
    #[serde(default)]
    kubeadm_config_patches: Option<Vec<String>>,
    #[serde(default, rename = "kubeadmConfigPatchesJSON6902")]
    kubeadm_config_patches_json6902: Option<Vec<PatchJson6902>>,
    #[serde(default)]
    containerd_config_patches: Option<Vec<String>>,
    #[serde(default, rename = "containerdConfigPatchesJSON6902")]
    containerd_config_patches_json6902: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
// Every field is decoded so unknown ones are rejected; the emulator acts on some.
#[allow(dead_code)]
struct NodeConfig {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    extra_mounts: Option<Vec<Mount>>,
    #[serde(default)]
    extra_port_mappings: Option<Vec<PortMapping>>,
    #[serde(default)]
    gpus: Option<String>,
    #[serde(default)]
    kubeadm_config_patches: Option<Vec<String>>,
    #[serde(default, rename = "kubeadmConfigPatchesJSON6902")]
    kubeadm_config_patches_json6902: Option<Vec<PatchJson6902>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Mount {
    #[serde(default)]
    container_path: String,
    #[serde(default)]
    host_path: String,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    selinux_relabel: bool,
    #[serde(default)]
    propagation: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PortMapping {
    #[serde(default)]
    container_port: i32,
    #[serde(default)]
    host_port: i32,
    #[serde(default)]
    listen_address: String,
    #[serde(default)]
    protocol: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
// Every field is decoded so unknown ones are rejected; the emulator acts on some.
#[allow(dead_code)]
struct Networking {
    #[serde(default)]
    ip_family: Option<String>,
    #[serde(default)]
    api_server_port: i32,
    #[serde(default)]
    api_server_address: Option<String>,
    #[serde(default)]
    pod_subnet: Option<String>,
    #[serde(default)]
    service_subnet: Option<String>,
    #[serde(default, rename = "disableDefaultCNI")]
    disable_default_cni: bool,
    #[serde(default)]
    kube_proxy_mode: Option<String>,
    #[serde(default)]
    dns_search: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // decoded only so unknown fields are rejected, as kind does
struct PatchJson6902 {
    group: String,
    version: String,
    kind: String,
    patch: String,
}

/// The config after kind's defaulting (pkg/internal/apis/config/default.go).
#[derive(Debug)]
struct Cluster {
    name: String,
    nodes: Vec<Node>,
    ip_family: String,
    api_server_address: String,
    api_server_port: i32,
    kube_proxy_mode: String,
}

#[derive(Debug, Clone)]
struct Node {
    role: String,
    image: Option<String>,
    mounts: Vec<Mount>,
    ports: Vec<PortMapping>,
}

fn read_config(source: Option<&str>) -> Result<ClusterConfig> {
    let Some(source) = source else {
        return Ok(ClusterConfig::default());
    };
    let text = if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure(format!("error reading config from stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(source)
            .map_err(|e| Failure(format!("error reading file: open {source}: {e}")))?
    };
    if text.trim().is_empty() {
        return Ok(ClusterConfig::default());
    }
    // load.go reads apiVersion and kind first, then decodes strictly.
    let meta: Value = serde_saphyr::from_str(&text)
        .map_err(|e| Failure(format!("error converting YAML to JSON: {e}")))?;
    let api_version = meta.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = meta.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "Cluster" {
        return fail(format!(
            "unknown kind {kind:?} for apiVersion: {api_version:?}"
        ));
    }
    if api_version != "kind.x-k8s.io/v1alpha4" {
        return fail(format!("unknown apiVersion: {api_version:?}"));
    }
    serde_saphyr::from_str::<ClusterConfig>(&text)
        .map_err(|e| Failure(format!("unable to decode config: {e}")))
}

/// kind's defaulting: pkg/internal/apis/config/default.go and the v1alpha4 defaults.
fn default_config(config: ClusterConfig, name: String) -> Cluster {
    let mut nodes: Vec<Node> = config
        .nodes
        .unwrap_or_default()
        .into_iter()
        .map(|n| {
            Node {
                // A node without a role is a control-plane.
                role: n
                    .role
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| CONTROL_PLANE.into()),
                image: n.image.filter(|i| !i.is_empty()),
                mounts: n.extra_mounts.unwrap_or_default(),
                ports: n.extra_port_mappings.unwrap_or_default(),
            }
        })
        .collect();
    if nodes.is_empty() {
        nodes.push(Node {
            role: CONTROL_PLANE.into(),
            image: None,
            mounts: Vec::new(),
            ports: Vec::new(),
        });
    }
    let networking = config.networking.unwrap_or_default();
    let ip_family = networking
        .ip_family
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "ipv4".into());
    let api_server_address = networking
        .api_server_address
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| {
            if ip_family == "ipv6" {
                "::1"
            } else {
                "127.0.0.1"
            }
            .into()
        });
    Cluster {
        name,
        nodes,
        api_server_address,
        api_server_port: networking.api_server_port,
        kube_proxy_mode: networking
            .kube_proxy_mode
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "iptables".into()),
        ip_family,
    }
}

/// kind's validation (pkg/internal/apis/config/validate.go): every problem at once.
/// Subnets are not checked here.
fn validate(cluster: &Cluster) -> Result<()> {
    let mut errors = Vec::new();
    let name_ok = !cluster.name.is_empty()
        && cluster
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if !name_ok {
        errors.push(format!(
            "'{}' is not a valid cluster name, cluster names must match `^[a-z0-9.-]+$`",
            cluster.name
        ));
    }
    // A port of 0 is picked at create time, so only other values are checked.
    if let (true, Err(e)) = (
        cluster.api_server_port != 0,
        validate_port(cluster.api_server_port),
    ) {
        errors.push(format!("invalid apiServerPort: {e}"));
    }
    if !["ipv4", "ipv6", "dual"].contains(&cluster.ip_family.as_str()) {
        errors.push(format!("invalid ipFamily: {}", cluster.ip_family));
    }
    if !["iptables", "ipvs", "nftables", "none"].contains(&cluster.kube_proxy_mode.as_str()) {
        errors.push(format!(
            "invalid kubeProxyMode: {}",
            cluster.kube_proxy_mode
        ));
    }
    for (index, node) in cluster.nodes.iter().enumerate() {
        let mut node_errors = Vec::new();
        if node.role != CONTROL_PLANE && node.role != WORKER {
            node_errors.push(format!("{:?} is not a valid node role", node.role));
        }
        for mapping in &node.ports {
            if let Err(e) = validate_port(mapping.host_port) {
                node_errors.push(format!("invalid hostPort: {e}"));
            }
            if let Err(e) = validate_port(mapping.container_port) {
                node_errors.push(format!("invalid containerPort: {e}"));
            }
        }
        if let Err(e) = validate_port_mappings(&node.ports) {
            node_errors.push(format!("invalid portMapping: {e}"));
        }
        if !node_errors.is_empty() {
            errors.push(format!(
                "invalid configuration for node {index}: {}",
                aggregate(&node_errors)
            ));
        }
    }
    if !cluster.nodes.iter().any(|n| n.role == CONTROL_PLANE) {
        errors.push("must have at least one control-plane node".into());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        fail(aggregate(&errors))
    }
}

/// kind's errors.NewAggregate formatting: one error plain, several in brackets.
fn aggregate(errors: &[String]) -> String {
    if errors.len() == 1 {
        errors[0].clone()
    } else {
        format!("[{}]", errors.join(", "))
    }
}

/// -1 is allowed: the container backend picks the port (validate.go validatePort).
fn validate_port(port: i32) -> std::result::Result<(), String> {
    if !(-1..=65535).contains(&port) {
        return Err(format!("invalid port number: {port}"));
    }
    Ok(())
}

/// Duplicate host bindings within one node (validate.go validatePortMappings): same
/// listen address, port and protocol; a wildcard address clashes with any other
/// address on that port and protocol. Ports 0 and -1 are random, so never duplicates.
fn validate_port_mappings(mappings: &[PortMapping]) -> std::result::Result<(), String> {
    let wildcard = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let mut bound: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for mapping in mappings {
        if mapping.host_port == -1 || mapping.host_port == 0 {
            continue;
        }
        let parsed = mapping.listen_address.parse::<IpAddr>().ok();
        let shown = parsed.map_or_else(|| "<nil>".to_string(), |a| a.to_string());
        let key = format!("{}/{}", mapping.host_port, mapping.protocol);
        let error = format!(
            "port mapping with same listen address, port and protocol already configured: {shown}:{key}"
        );
        // Go treats `::` like 0.0.0.0 here (golang/go#48723).
        let address = match parsed {
            Some(a) if a.is_unspecified() => wildcard,
            other => other.unwrap_or(wildcard),
        };
        let address_text = if parsed.is_none() {
            shown.clone()
        } else {
            address.to_string()
        };
        let entry = bound.entry(key).or_default();
        if (address == wildcard && parsed.is_some() && !entry.is_empty())
            || entry.contains(&address_text)
            || entry.contains(&wildcard.to_string())
        {
            return Err(error);
        }
        entry.insert(address_text);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------

/// Quotes an argument so a printed command can be pasted into a shell.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Runs `docker ARGS`; on failure the error names the exact command and its output,
/// like kind's pkg/exec RunError.
fn docker(args: &[String]) -> Result<String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure(format!("failed to run docker: {e}")))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let command: Vec<String> = std::iter::once("docker".to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect();
    fail(format!(
        "command \"{}\" failed with error: {}\nCommand Output: {}{}",
        command.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr).trim_end()
    ))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Node containers of one cluster, sorted by name (providers/docker/provider.go ListNodes).
fn list_nodes(cluster: &str) -> Result<Vec<String>> {
    let out = docker(&strings(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={CLUSTER_LABEL}={cluster}"),
        "--format",
        "{{.Names}}",
    ]))?;
    let mut names: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    Ok(names)
}

/// Removes containers and their anonymous volumes (providers/docker/provider.go DeleteNodes).
fn remove_containers(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut args = strings(&["rm", "-f", "-v"]);
    args.extend(names.iter().cloned());
    docker(&args).map(|_| ())
}

/// The `kind` network, created when missing and never removed
/// (providers/docker/network.go ensureNetwork). kind also sets IPv6 and MTU options;
/// a plain bridge is enough for containers that run no Kubernetes.
fn ensure_network() -> Result<()> {
    if docker(&strings(&["network", "inspect", NETWORK])).is_ok() {
        return Ok(());
    }
    match docker(&strings(&["network", "create", NETWORK])) {
        Ok(_) => Ok(()),
        // Another create may have won the race.
        Err(_) if docker(&strings(&["network", "inspect", NETWORK])).is_ok() => Ok(()),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------
// create cluster
// ---------------------------------------------------------------------------

/// What the status lines look like: kind's pkg/internal/cli/status.go prints
/// ` • step ...` when it starts and ` ✓ step` / ` ✗ step` when it ends.
struct Status {
    current: Option<String>,
}

impl Status {
    fn start(&mut self, step: &str) {
        eprintln!(" • {step}  ...");
        self.current = Some(step.to_string());
    }

    fn end(&mut self, ok: bool) {
        if let Some(step) = self.current.take() {
            eprintln!(" {} {step}", if ok { "✓" } else { "✗" });
        }
    }
}

/// What a signal handler needs to undo a create in flight.
static CLEANUP_CLUSTER: Mutex<Option<String>> = Mutex::new(None);
static RETAIN: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
static FINISHED: AtomicBool = AtomicBool::new(false);

fn create_cluster(rest: &[String]) -> Result<()> {
    let flags = Flags::parse(
        rest,
        &["name", "config", "image", "kubeconfig", "wait"],
        &["retain"],
    )?;
    flags.no_positionals("create cluster")?;
    match create(&flags) {
        Ok(()) => Ok(()),
        Err(Failure(message)) => fail(format!("failed to create cluster: {message}")),
    }
}

fn create(flags: &Flags) -> Result<()> {
    let config = read_config(flags.value("config"))?;
    // --name, else KIND_CLUSTER_NAME, else the config's name, else "kind"
    // (pkg/cluster/internal/create/create.go fixupOptions).
    let name = flags
        .value("name")
        .map(str::to_string)
        .or_else(|| {
            std::env::var("KIND_CLUSTER_NAME")
                .ok()
                .filter(|n| !n.is_empty())
        })
        .or_else(|| config.name.clone().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| DEFAULT_CLUSTER_NAME.to_string());
    let mut cluster = default_config(config, name);
    if let Some(image) = flags.value("image") {
        for node in &mut cluster.nodes {
            node.image = Some(image.to_string());
        }
    }
    validate(&cluster)?;
    // `--wait` only waits for control-plane readiness in kind; nothing here gets ready.
    let _ = flags.value("wait");
    let retain = flags.switch("retain");

    // create.go alreadyExists
    if !list_nodes(&cluster.name)?.is_empty() {
        return fail(format!(
            "node(s) already exist for a cluster with the name {:?}",
            cluster.name
        ));
    }

    let default_image = std::env::var("KIND_EMULATOR_IMAGE")
        .ok()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string());
    for node in &mut cluster.nodes {
        node.image.get_or_insert_with(|| default_image.clone());
    }

    eprintln!("Creating cluster {:?} ...", cluster.name);
    let mut status = Status { current: None };
    let images: BTreeSet<String> = cluster
        .nodes
        .iter()
        .filter_map(|n| n.image.clone())
        .collect();
    status.start(&format!(
        "Ensuring node image ({}) 🖼",
        images.iter().cloned().collect::<Vec<_>>().join(", ")
    ));
    if let Err(e) = ensure_images(&images) {
        status.end(false);
        return Err(e);
    }
    status.end(true);

    let icons = " 📦".repeat(cluster.nodes.len());
    status.start(&format!("Preparing nodes{icons}"));
    *lock_cleanup() = Some(cluster.name.clone());
    RETAIN.store(retain, Ordering::SeqCst);
    install_signal_handlers();

    let result = provision(&cluster).and_then(|()| after_nodes());
    let result = match result {
        Ok(()) => {
            status.end(true);
            finish_create(&cluster, flags.value("kubeconfig"), &mut status)
        }
        Err(e) => {
            status.end(false);
            Err(e)
        }
    };
    if let Err(e) = result {
        if retain {
            eprintln!(
                "NOTE: the nodes were retained (--retain); delete them with `kind delete cluster --name {}`",
                cluster.name
            );
        } else {
            // create.go: a failed create deletes its nodes unless --retain.
            let _ = list_nodes(&cluster.name).and_then(|n| remove_containers(&n));
        }
        *lock_cleanup() = None;
        FINISHED.store(true, Ordering::SeqCst);
        return Err(e);
    }
    *lock_cleanup() = None;
    FINISHED.store(true, Ordering::SeqCst);
    Ok(())
}

fn lock_cleanup() -> std::sync::MutexGuard<'static, Option<String>> {
    CLEANUP_CLUSTER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Test hooks that act once the nodes exist, and the check for a signal.
fn after_nodes() -> Result<()> {
    let slow = std::env::var("KIND_EMULATOR_SLOW_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let until = Instant::now() + Duration::from_secs(slow);
    while Instant::now() < until {
        check_interrupted()?;
        std::thread::sleep(Duration::from_millis(100));
    }
    check_interrupted()?;
    if let Some(pid_file) = std::env::var_os("KIND_EMULATOR_HANG_PID_FILE") {
        let mut child = Command::new("sleep")
            .arg("3600")
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| Failure(format!("failed to run sleep: {e}")))?;
        std::fs::write(&pid_file, child.id().to_string())
            .map_err(|e| Failure(format!("failed to write the pid file: {e}")))?;
        // Like kind's exec.Cmd.Run: wait for the child, however long it takes.
        let status = child
            .wait()
            .map_err(|e| Failure(format!("failed to wait for sleep: {e}")))?;
        check_interrupted()?;
        if !status.success() {
            return fail(format!(
                "command \"sleep 3600\" failed with error: {status}"
            ));
        }
    }
    if std::env::var("KIND_EMULATOR_FAIL_AFTER_NODES").is_ok_and(|v| v == "1") {
        return fail("KIND_EMULATOR_FAIL_AFTER_NODES=1: failing after the nodes were created");
    }
    Ok(())
}

fn check_interrupted() -> Result<()> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => Ok(()),
        signal => fail(format!("interrupted by signal {signal}")),
    }
}

/// On SIGINT or SIGTERM: the main thread notices between steps, cleans up and exits 1;
/// if it does not finish within a few seconds, this thread cleans up and exits itself.
fn install_signal_handlers() {
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let signal = runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return None;
            };
            tokio::select! {
                _ = interrupt.recv() => Some(2),
                _ = terminate.recv() => Some(15),
            }
        });
        let Some(signal) = signal else { return };
        INTERRUPTED.store(signal, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if FINISHED.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let cluster = lock_cleanup().take();
        if let (Some(cluster), false) = (cluster, RETAIN.load(Ordering::SeqCst)) {
            let _ = list_nodes(&cluster).and_then(|n| remove_containers(&n));
        }
        eprintln!("ERROR: failed to create cluster: interrupted by signal {signal}");
        std::process::exit(1);
    });
}

/// The node image is never pulled: the emulator has no registry to pull from.
fn ensure_images(images: &BTreeSet<String>) -> Result<()> {
    for image in images {
        if docker(&strings(&[
            "image", "inspect", "--format", "{{.Id}}", image,
        ]))
        .is_err()
        {
            return fail(format!(
                "failed to pull image {image:?}: the kind emulator never pulls; build or tag it locally"
            ));
        }
    }
    Ok(())
}

/// One planned `docker run`.
struct PlannedContainer {
    name: String,
    args: Vec<String>,
}

/// Plans every container before running any (providers/docker/provision.go
/// planCreation), then runs them.
fn provision(cluster: &Cluster) -> Result<()> {
    ensure_network()?;
    let planned = plan_creation(cluster)?;
    for container in &planned {
        check_interrupted()?;
        let mut args = strings(&["run", "--name", &container.name]);
        args.extend(container.args.iter().cloned());
        docker(&args)?;
    }
    Ok(())
}

/// Node names: `<cluster>-<role>`, then `<cluster>-<role>2`, ... per role
/// (providers/common/namer.go MakeNodeNamer).
fn node_names(cluster: &Cluster) -> Vec<(String, String)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut name_for = |role: &str| {
        let count = counts.entry(role.to_string()).or_insert(0);
        *count += 1;
        let suffix = if *count == 1 {
            String::new()
        } else {
            count.to_string()
        };
        format!("{}-{role}{suffix}", cluster.name)
    };
    let mut names: Vec<(String, String)> = cluster
        .nodes
        .iter()
        .map(|n| (name_for(&n.role), n.role.clone()))
        .collect();
    if has_load_balancer(cluster) {
        names.push((name_for(LOAD_BALANCER), LOAD_BALANCER.to_string()));
    }
    names
}

/// config.ClusterHasImplicitLoadBalancer: more than one control-plane.
fn has_load_balancer(cluster: &Cluster) -> bool {
    cluster
        .nodes
        .iter()
        .filter(|n| n.role == CONTROL_PLANE)
        .count()
        > 1
}

fn plan_creation(cluster: &Cluster) -> Result<Vec<PlannedContainer>> {
    let names = node_names(cluster);
    let common = common_args(cluster);
    let mut planned = Vec::new();
    let (mut api_address, mut api_port) =
        (cluster.api_server_address.clone(), cluster.api_server_port);
    if has_load_balancer(cluster) {
        // Only the load balancer publishes the configured API server address and port;
        // control-planes get random local ports (provision.go planCreation).
        api_port = 0;
        api_address = if cluster.ip_family == "ipv6" {
            "::1"
        } else {
            "127.0.0.1"
        }
        .into();
        let (name, _) = &names[names.len() - 1];
        let mut args = strings(&[
            "--hostname",
            name,
            "--label",
            &format!("{ROLE_LABEL}={LOAD_BALANCER}"),
        ]);
        args.extend(common.iter().cloned());
        args.extend(port_args(
            cluster,
            &[PortMapping {
                container_port: API_SERVER_INTERNAL_PORT,
                host_port: cluster.api_server_port,
                listen_address: cluster.api_server_address.clone(),
                protocol: String::new(),
            }],
        )?);
        // kind runs kindest/haproxy here; the emulator uses the node image.
        let image = cluster.nodes[0]
            .image
            .clone()
            .unwrap_or_else(|| DEFAULT_IMAGE.into());
        args.extend(strings(&[&image, "sleep", "2147483647"]));
        planned.push(PlannedContainer {
            name: name.clone(),
            args,
        });
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Failure(format!("unable to read the working directory: {e}")))?;
    for (node, (name, _)) in cluster.nodes.iter().zip(&names) {
        let mut node = node.clone();
        // Docker only takes absolute paths: provision.go resolves relative host paths
        // against the working directory of the kind process (filepath.Abs).
        for mount in &mut node.mounts {
            if !Path::new(&mount.host_path).is_absolute() {
                mount.host_path = clean_path(&cwd.join(&mount.host_path))
                    .to_string_lossy()
                    .into_owned();
            }
        }
        if node.role == CONTROL_PLANE {
            node.ports.push(PortMapping {
                container_port: API_SERVER_INTERNAL_PORT,
                host_port: api_port,
                listen_address: api_address.clone(),
                protocol: String::new(),
            });
        }
        let args = node_run_args(cluster, &node, name, &common)?;
        planned.push(PlannedContainer {
            name: name.clone(),
            args,
        });
    }
    // The load balancer is planned first in kind but is listed last by name.
    Ok(planned)
}

/// Lexical clean like Go's filepath.Clean for an absolute path.
fn clean_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Arguments every container gets (provision.go commonArgs).
fn common_args(cluster: &Cluster) -> Vec<String> {
    let mut args = strings(&[
        "--detach",
        "--tty",
        "--label",
        &format!("{CLUSTER_LABEL}={}", cluster.name),
        "--net",
        NETWORK,
        "--restart=on-failure:1",
        "--init=false",
        "--cgroupns=private",
    ]);
    if cluster.ip_family == "ipv6" || cluster.ip_family == "dual" {
        args.extend(strings(&[
            "--sysctl=net.ipv6.conf.all.disable_ipv6=0",
            "--sysctl=net.ipv6.conf.all.forwarding=1",
        ]));
    }
    args
}

/// A node's `docker run` arguments after `--name` (provision.go runArgsForNode).
fn node_run_args(
    cluster: &Cluster,
    node: &Node,
    name: &str,
    common: &[String],
) -> Result<Vec<String>> {
    let mut args = strings(&[
        "--hostname",
        name,
        "--label",
        &format!("{ROLE_LABEL}={}", node.role),
        // kind passes `--privileged` here. Privileged containers cannot start on the
        // hosts these tests run on, and the emulated nodes run only `sleep`.
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/run",
        "--volume",
        "/var",
        "--volume",
        "/lib/modules:/lib/modules:ro",
        "-e",
        "KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER",
    ]);
    args.extend(common.iter().cloned());
    args.extend(mount_args(&node.mounts));
    args.extend(port_args(cluster, &node.ports)?);
    if node.role == CONTROL_PLANE {
        args.extend(strings(&["-e", "KUBECONFIG=/etc/kubernetes/admin.conf"]));
    }
    let image = node.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.into());
    // kind's node image runs systemd; the test image only sleeps.
    args.extend(strings(&[&image, "sleep", "2147483647"]));
    Ok(args)
}

/// `--volume=<host>:<container>[:<opts>]`, opts `ro`, `Z`, `rshared`|`rslave` joined by
/// commas (provision.go generateMountBindings). An unknown propagation is private.
fn mount_args(mounts: &[Mount]) -> Vec<String> {
    mounts
        .iter()
        .map(|m| {
            let mut bind = format!("{}:{}", m.host_path, m.container_path);
            let mut options = Vec::new();
            if m.read_only {
                options.push("ro");
            }
            if m.selinux_relabel {
                options.push("Z");
            }
            match m.propagation.as_deref() {
                Some("Bidirectional") => options.push("rshared"),
                Some("HostToContainer") => options.push("rslave"),
                _ => {}
            }
            if !options.is_empty() {
                bind = format!("{bind}:{}", options.join(","));
            }
            format!("--volume={bind}")
        })
        .collect()
}

/// `--publish=<listen>:<hostPort>:<containerPort>/<PROTOCOL>` (provision.go
/// generatePortMappings): listen address defaults to 0.0.0.0 (`::` for ipv6), the
/// protocol to TCP and is written as configured (TCP, UDP or SCTP; anything else is an
/// error); host port 0 becomes a free port found by binding, -1 becomes 0 so Docker
/// picks (common/getport.go PortOrGetFreePort).
fn port_args(cluster: &Cluster, mappings: &[PortMapping]) -> Result<Vec<String>> {
    let mut args = Vec::new();
    for mapping in mappings {
        let listen = if mapping.listen_address.is_empty() {
            if cluster.ip_family == "ipv6" {
                "::"
            } else {
                "0.0.0.0"
            }
            .to_string()
        } else {
            mapping.listen_address.clone()
        };
        let protocol = if mapping.protocol.is_empty() {
            "TCP"
        } else {
            mapping.protocol.as_str()
        };
        if !["TCP", "UDP", "SCTP"].contains(&protocol) {
            return fail(format!("unknown port mapping protocol: {protocol}"));
        }
        let host_port = match mapping.host_port {
            -1 => 0,
            0 => free_port(&listen).map_err(|e| {
                Failure(format!(
                    "failed to get random host port for port mapping: {e}"
                ))
            })?,
            port => port,
        };
        let host = if listen.contains(':') {
            format!("[{listen}]")
        } else {
            listen
        };
        args.push(format!(
            "--publish={host}:{host_port}:{}/{protocol}",
            mapping.container_port
        ));
    }
    Ok(args)
}

/// A free TCP port on `listen`, found by binding port 0 (common/getport.go GetFreePort).
fn free_port(listen: &str) -> std::io::Result<i32> {
    let address: IpAddr = listen.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{listen}: {e}"))
    })?;
    let listener = TcpListener::bind((address, 0))?;
    Ok(i32::from(listener.local_addr()?.port()))
}

fn finish_create(cluster: &Cluster, kubeconfig: Option<&str>, status: &mut Status) -> Result<()> {
    for step in [
        "Writing configuration 📜",
        "Starting control-plane 🕹️",
        "Installing CNI 🔌",
        "Installing StorageClass 💾",
    ] {
        status.start(step);
        status.end(true);
    }
    if cluster.nodes.iter().any(|n| n.role == WORKER) {
        status.start("Joining worker nodes 🚜");
        status.end(true);
    }
    let config = kind_kubeconfig(&cluster.name)?;
    let path = merge_path(kubeconfig);
    write_merged(&config, &path)?;
    let context = format!("kind-{}", cluster.name);
    eprintln!("Set kubectl context to {context:?}");
    eprintln!("You can now use your cluster with:\n\nkubectl cluster-info --context {context}\n");
    if std::io::stderr().is_terminal() {
        eprintln!("Thanks for using kind! 😊");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// kubeconfig (pkg/cluster/internal/kubeconfig)
// ---------------------------------------------------------------------------

/// The node that serves the API for the host: the load balancer, else the first
/// control-plane (providers/docker/provider.go GetAPIServerEndpoint).
fn api_server_endpoint(cluster: &str) -> Result<String> {
    let nodes = list_nodes(cluster)?;
    let mut candidates = Vec::new();
    for node in &nodes {
        let role = docker(&strings(&[
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{ROLE_LABEL}\"}}}}"),
            node,
        ]))?;
        candidates.push((role.trim().to_string(), node.clone()));
    }
    let node = candidates
        .iter()
        .find(|(role, _)| role == LOAD_BALANCER)
        .or_else(|| candidates.iter().find(|(role, _)| role == CONTROL_PLANE))
        .map(|(_, node)| node.clone());
    let Some(node) = node else {
        return fail(format!(
            "could not locate any control plane nodes for cluster named '{cluster}'. Use the --name option to select a different cluster"
        ));
    };
    let ports = docker(&strings(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Ports}}",
        &node,
    ]))?;
    let ports: Value = serde_json::from_str(ports.trim())
        .map_err(|e| Failure(format!("failed to read the ports of {node}: {e}")))?;
    let binding = ports
        .get(format!("{API_SERVER_INTERNAL_PORT}/tcp"))
        .and_then(Value::as_array)
        .and_then(|b| b.first());
    let (Some(ip), Some(port)) = (
        binding
            .and_then(|b| b.get("HostIp"))
            .and_then(Value::as_str),
        binding
            .and_then(|b| b.get("HostPort"))
            .and_then(Value::as_str),
    ) else {
        return fail(format!(
            "failed to get api server port for {node}: it publishes no port {API_SERVER_INTERNAL_PORT}"
        ));
    };
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    Ok(format!("https://{host}:{port}"))
}

fn kind_kubeconfig(cluster: &str) -> Result<Value> {
    let server = api_server_endpoint(cluster)?;
    let name = format!("kind-{cluster}");
    Ok(json!({
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": DUMMY_CERT_DATA, "server": server}, "name": name}],
        "contexts": [{"context": {"cluster": name, "user": name}, "name": name}],
        "current-context": name,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": name, "user": {"client-certificate-data": DUMMY_CERT_DATA, "client-key-data": DUMMY_CERT_DATA}}],
    }))
}

/// The file kind merges into (kubeconfig/internal/kubeconfig/paths.go pathForMerge):
/// `--kubeconfig`; else the first existing file of `$KUBECONFIG`, or its last entry;
/// else `$HOME/.kube/config`.
fn merge_path(explicit: Option<&str>) -> PathBuf {
    if let Some(path) = explicit.filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let list = std::env::var_os("KUBECONFIG").unwrap_or_default();
    let mut seen = BTreeSet::new();
    let paths: Vec<PathBuf> = std::env::split_paths(&list)
        .filter(|p| !p.as_os_str().is_empty() && seen.insert(p.clone()))
        .collect();
    if paths.len() == 1 {
        return paths[0].clone();
    }
    if let Some(existing) = paths.iter().find(|p| p.is_file()) {
        return existing.clone();
    }
    if let Some(last) = paths.last() {
        return last.clone();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".kube").join("config")
}

fn read_kubeconfig(path: &Path) -> Result<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => serde_saphyr::from_str(&text)
            .map_err(|e| Failure(format!("failed to read kubeconfig {}: {e}", path.display()))),
        Ok(_) => Ok(json!({})),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => fail(format!("failed to read kubeconfig {}: {e}", path.display())),
    }
}

fn write_kubeconfig(path: &Path, config: &Value) -> Result<()> {
    let text = serde_saphyr::to_string(config)
        .map_err(|e| Failure(format!("failed to encode kubeconfig: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure(format!("failed to create {}: {e}", dir.display())))?;
    }
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path)?.write_all(text.as_bytes())
    };
    write().map_err(|e| {
        Failure(format!(
            "failed to write kubeconfig {}: {e}",
            path.display()
        ))
    })
}

/// Adds or replaces the cluster, user and context entries and sets the current
/// context (kubeconfig/internal/kubeconfig/merge.go merge).
fn write_merged(kind: &Value, path: &Path) -> Result<()> {
    let mut existing = read_kubeconfig(path)?;
    let Some(map) = existing.as_object_mut() else {
        return fail(format!("kubeconfig {} is not a mapping", path.display()));
    };
    for section in ["clusters", "users", "contexts"] {
        let Some(entry) = kind.get(section).and_then(|s| s.get(0)).cloned() else {
            continue;
        };
        let list = map.entry(section).or_insert_with(|| json!([]));
        if !list.is_array() {
            *list = json!([]);
        }
        if let Some(items) = list.as_array_mut() {
            match items
                .iter_mut()
                .find(|i| i.get("name") == entry.get("name"))
            {
                Some(item) => *item = entry,
                None => items.push(entry),
            }
        }
    }
    map.insert("current-context".into(), kind["current-context"].clone());
    for key in ["apiVersion", "kind"] {
        if !map.contains_key(key) {
            map.insert(key.into(), kind[key].clone());
        }
    }
    write_kubeconfig(path, &existing)
}

/// Removes a cluster's entries and unsets the current context when it pointed there
/// (kubeconfig/internal/kubeconfig/remove.go RemoveKIND).
fn remove_from_kubeconfig(cluster: &str, path: &Path) -> Result<()> {
    if !path.is_file() {
        return Ok(());
    }
    let mut existing = read_kubeconfig(path)?;
    let name = Value::String(format!("kind-{cluster}"));
    let Some(map) = existing.as_object_mut() else {
        return Ok(());
    };
    let mut changed = false;
    for section in ["clusters", "users", "contexts"] {
        if let Some(items) = map.get_mut(section).and_then(Value::as_array_mut) {
            let before = items.len();
            items.retain(|i| i.get("name") != Some(&name));
            changed |= items.len() != before;
        }
    }
    if map.get("current-context") == Some(&name) {
        map.insert("current-context".into(), Value::String(String::new()));
        changed = true;
    }
    if changed {
        write_kubeconfig(path, &existing)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// delete / get / export
// ---------------------------------------------------------------------------

fn delete_cluster(rest: &[String]) -> Result<()> {
    let flags = Flags::parse(rest, &["name", "kubeconfig"], &[])?;
    flags.no_positionals("delete cluster")?;
    let cluster = flags.cluster_name();
    // pkg/cmd/kind/delete/cluster/deletecluster.go; deleting nothing succeeds.
    eprintln!("Deleting cluster {cluster:?} ...");
    if let Some(seconds) = std::env::var("KIND_EMULATOR_DELETE_SLOW_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_secs(seconds));
    }
    let run = || -> Result<()> {
        remove_from_kubeconfig(&cluster, &merge_path(flags.value("kubeconfig")))?;
        let nodes = list_nodes(&cluster)?;
        remove_containers(&nodes)?;
        if !nodes.is_empty() {
            let quoted: Vec<String> = nodes.iter().map(|n| format!("{n:?}")).collect();
            eprintln!("Deleted nodes: [{}]", quoted.join(" "));
        }
        Ok(())
    };
    run().map_err(|Failure(m)| Failure(format!("failed to delete cluster {cluster:?}: {m}")))
}

fn get_clusters(rest: &[String]) -> Result<()> {
    Flags::parse(rest, &[], &[])?.no_positionals("get clusters")?;
    let out = docker(&strings(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={CLUSTER_LABEL}"),
        "--format",
        &format!("{{{{.Label \"{CLUSTER_LABEL}\"}}}}"),
    ]))?;
    let clusters: BTreeSet<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if clusters.is_empty() {
        eprintln!("No kind clusters found.");
    }
    for cluster in clusters {
        println!("{cluster}");
    }
    Ok(())
}

fn get_nodes(rest: &[String]) -> Result<()> {
    let flags = Flags::parse(rest, &["name"], &[])?;
    flags.no_positionals("get nodes")?;
    let cluster = flags.cluster_name();
    let nodes = list_nodes(&cluster)?;
    if nodes.is_empty() {
        eprintln!("No kind nodes found for cluster {cluster:?}.");
    }
    for node in nodes {
        println!("{node}");
    }
    Ok(())
}

fn get_kubeconfig(rest: &[String]) -> Result<()> {
    let flags = Flags::parse(rest, &["name"], &["internal"])?;
    flags.no_positionals("get kubeconfig")?;
    let cluster = flags.cluster_name();
    let config = kind_kubeconfig(&cluster)?;
    let text = serde_saphyr::to_string(&config)
        .map_err(|e| Failure(format!("failed to encode kubeconfig: {e}")))?;
    print!("{text}");
    Ok(())
}

/// `kind export logs [DIR] --name N` (kind `pkg/cmd/kind/export/logs/logs.go`):
/// an unknown cluster fails; the directory is printed on stdout, then
/// `Provider.CollectLogs` (`pkg/cluster/provider.go`) writes `kind-version.txt` and,
/// for each Kubernetes node (the external load balancer is left out:
/// `nodeutils.InternalNodes`), under `<node>/`: `serial.log` (the container's log),
/// the node's `/var/log` (a tar whose exit 1 is masked, `internal/logs/logs.go`
/// `DumpDir`), `kubernetes-version.txt` (`cat /kind/version`), `journal.log`,
/// `kubelet.log` and `containerd.log` (`journalctl --no-pager [-u UNIT]`) and
/// `images.log` (`crictl images`); the docker provider's `CollectLogs`
/// (`pkg/cluster/internal/providers/docker/provider.go`) adds `docker-info.txt`
/// and `<node>/inspect.json`. Each command's stdout and stderr go to its file;
/// every command that failed is reported once all files are written, as one
/// aggregated error (exit 1). The emulator's nodes have no systemd or crictl, so
/// those commands fail here as they would in such a node, after writing what
/// they printed. Unlike kind, `docker exec` runs without `--privileged` (the nodes
/// are unprivileged, see the header).
fn export_logs(rest: &[String]) -> Result<()> {
    let flags = Flags::parse(rest, &["name"], &[])?;
    let cluster = flags.cluster_name();
    let dir = match flags.positional.as_slice() {
        [dir] => PathBuf::from(dir),
        [] => std::env::temp_dir().join(format!("kind-emulator-logs-{}", std::process::id())),
        [_, extra, ..] => {
            return fail(format!(
                "unknown command {extra:?} for \"kind export logs\""
            ));
        }
    };
    let nodes = list_nodes(&cluster)?;
    if nodes.is_empty() {
        return fail(format!("unknown cluster {cluster:?}"));
    }
    eprintln!("Exporting logs for cluster {cluster:?} to:");
    println!("{}", dir.display());
    let io = |e: std::io::Error| Failure(format!("failed to create logs directory: {e}"));
    std::fs::create_dir_all(&dir).map_err(io)?;
    std::fs::write(dir.join("kind-version.txt"), kind_version())
        .map_err(|e| Failure(format!("failed to write kind-version.txt: {e}")))?;
    let mut errors: Vec<String> = Vec::new();
    let mut record = |result: Result<()>| {
        if let Err(Failure(message)) = result
            && !errors.contains(&message)
        {
            errors.push(message);
        }
    };
    for node in &nodes {
        if node_role(node).as_deref() == Some(LOAD_BALANCER) {
            continue;
        }
        let node_dir = dir.join(node);
        record(
            std::fs::create_dir_all(&node_dir)
                .map_err(|e| Failure(format!("failed to create {}: {e}", node_dir.display()))),
        );
        record(command_to_file(
            &strings(&["logs", node]),
            &node_dir.join("serial.log"),
        ));
        record(dump_var_log(node, &node_dir));
        for (command, file) in [
            (&["cat", "/kind/version"][..], "kubernetes-version.txt"),
            (&["journalctl", "--no-pager"][..], "journal.log"),
            (
                &["journalctl", "--no-pager", "-u", "kubelet.service"][..],
                "kubelet.log",
            ),
            (
                &["journalctl", "--no-pager", "-u", "containerd.service"][..],
                "containerd.log",
            ),
            (&["crictl", "images"][..], "images.log"),
        ] {
            let mut args = strings(&["exec", node]);
            args.extend(strings(command));
            record(command_to_file(&args, &node_dir.join(file)));
        }
    }
    record(command_to_file(
        &strings(&["info"]),
        &dir.join("docker-info.txt"),
    ));
    for node in &nodes {
        if node_role(node).as_deref() == Some(LOAD_BALANCER) {
            continue;
        }
        record(command_to_file(
            &strings(&["inspect", node]),
            &dir.join(node).join("inspect.json"),
        ));
    }
    match errors.as_slice() {
        [] => Ok(()),
        [one] => fail(one.clone()),
        many => fail(format!("[{}]", many.join(", "))),
    }
}

/// A node container's kind role label.
fn node_role(node: &str) -> Option<String> {
    let format = format!("{{{{index .Config.Labels \"{ROLE_LABEL}\"}}}}");
    docker(&strings(&["inspect", "--format", &format, node]))
        .ok()
        .map(|r| r.trim().to_string())
}

/// Runs `docker ARGS` with its stdout and stderr both written to `path` (kind's
/// `execToPathFn`); a non-zero exit is kind's `RunError` message.
fn command_to_file(args: &[String], path: &Path) -> Result<()> {
    let file = std::fs::File::create(path)
        .map_err(|e| Failure(format!("failed to create {}: {e}", path.display())))?;
    let errors = file
        .try_clone()
        .map_err(|e| Failure(format!("failed to open {}: {e}", path.display())))?;
    let status = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(errors)
        .status()
        .map_err(|e| Failure(format!("failed to run docker: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let command: Vec<String> = std::iter::once("docker".to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect();
    fail(format!(
        "command \"{}\" failed with error: {}",
        command.join(" "),
        go_exit_status(status)
    ))
}

/// An exit status as Go's `os/exec` prints it: `exit status 1`.
fn go_exit_status(status: std::process::ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "signal: killed".to_string(),
    }
}

/// The node's `/var/log` unpacked into `dir`, regular files and directories only
/// (kind `pkg/cluster/internal/logs/logs.go`, `DumpDir` and `untar`).
fn dump_var_log(node: &str, dir: &Path) -> Result<()> {
    let script = "tar --hard-dereference -C /var/log/ -chf - . || (r=$?; [ $r -eq 1 ] || exit $r)";
    let output = Command::new("docker")
        .args(["exec", node, "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure(format!("failed to run docker: {e}")))?;
    if !output.status.success() {
        return fail(format!(
            "command \"docker exec {node} sh -c {}\" failed with error: {}",
            shell_quote(script),
            go_exit_status(output.status)
        ));
    }
    let mut archive = tar::Archive::new(output.stdout.as_slice());
    let entries = archive
        .entries()
        .map_err(|e| Failure(format!("Untarring \"/var/log\": {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Failure(format!("Untarring \"/var/log\": {e}")))?;
        let Ok(relative) = entry.path().map(|p| p.into_owned()) else {
            continue;
        };
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            continue;
        }
        let target = dir.join(&relative);
        let written = match entry.header().entry_type() {
            tar::EntryType::Regular => std::fs::File::create(&target)
                .and_then(|mut file| std::io::copy(&mut entry, &mut file).map(|_| ())),
            tar::EntryType::Directory => std::fs::create_dir_all(&target),
            _ => Ok(()),
        };
        written.map_err(|e| Failure(format!("error writing to {}: {e}", target.display())))?;
    }
    Ok(())
}
