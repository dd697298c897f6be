//! The local registry: its container, host port and image, what every node's
//! containerd is told about it, and the host ports it must not share with the
//! cluster's own.
//!
//! The layout is kind's local registry guide (kind `site/content/docs/user/local-registry.md`,
//! `site/static/examples/kind-with-registry.sh`): a registry container publishing
//! `127.0.0.1:<hostPort>` -> 5000 and joined to the `kind` network; containerd's CRI
//! registry `config_path` set to `/etc/containerd/certs.d` through
//! `containerdConfigPatches`; a `hosts.toml` under `certs.d/localhost:<hostPort>/` on
//! every node that sends `localhost:<hostPort>` to `http://<container>:5000` (inside a
//! node `localhost` is the node itself); and the `kube-public/local-registry-hosting`
//! ConfigMap of KEP-1755 so tools can find it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::ClusterPlan;
use super::defaults::LOOPBACK;
use super::ports::{Protocol, addresses_overlap, check_listen_address};
use crate::core::diagnostic::Problem;
use crate::core::profile::{Profile, RegistrySpec};
use crate::core::yaml::Located;

/// The registry image when the profile names none: the distribution registry
/// 2.8.3 (tag `registry:2`), pinned by the digest of its multi-platform index
/// (docker-library/repo-info `repos/registry/remote/2.8.3.md`).
pub const DEFAULT_REGISTRY_IMAGE: &str = "docker.io/library/registry:2.8.3@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373";
/// The host port of the registry when the profile names none (kind's guide uses it).
pub const DEFAULT_REGISTRY_PORT: u16 = 5001;
/// The port the registry listens on inside its container.
pub const REGISTRY_CONTAINER_PORT: u16 = 5000;
/// Where containerd looks for per-registry `hosts.toml` files.
pub const CONTAINERD_CERTS_DIR: &str = "/etc/containerd/certs.d";
/// The containerd patch that turns the hosts directory on (containerd
/// `docs/hosts.md`, "CRI"); containerd 1.5 and later read it.
pub const CONTAINERD_CONFIG_PATCH: &str =
    "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"";
/// The KEP-1755 ConfigMap, in the namespace every user may read.
pub const HOSTING_NAMESPACE: &str = "kube-public";
pub const HOSTING_CONFIGMAP: &str = "local-registry-hosting";
/// The page the ConfigMap's `help` points at.
pub const HOSTING_HELP: &str = "https://kind.sigs.k8s.io/docs/user/local-registry/";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryPlan {
    /// The container's name, also its name on the `kind` network: one registry per
    /// host port, shared by every cluster that asks for that port.
    pub container: String,
    pub host_port: u16,
    pub listen_address: String,
    pub image: String,
}

impl RegistryPlan {
    /// The name images are pushed to and pulled from: `localhost:<hostPort>`.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.host_port)
    }

    /// The directory of this registry's `hosts.toml` in a node.
    pub fn hosts_dir(&self) -> String {
        format!("{CONTAINERD_CERTS_DIR}/{}", self.host())
    }

    /// The `hosts.toml` path in a node.
    pub fn hosts_toml_path(&self) -> String {
        format!("{}/hosts.toml", self.hosts_dir())
    }

    /// The `hosts.toml` text: pulls of `localhost:<hostPort>` go to the registry
    /// container over the `kind` network, plain HTTP.
    pub fn hosts_toml(&self) -> String {
        format!(
            "[host.\"http://{}:{REGISTRY_CONTAINER_PORT}\"]\n",
            self.container
        )
    }

    /// The KEP-1755 `localRegistryHosting.v1` value.
    pub fn hosting_value(&self) -> String {
        format!("host: \"{}\"\nhelp: \"{HOSTING_HELP}\"\n", self.host())
    }
}

/// The container name of the registry on `host_port`.
pub fn container_name(host_port: u16) -> String {
    format!("devcluster-registry-{host_port}")
}

fn spec(profile: &Profile) -> Option<&RegistrySpec> {
    profile
        .registry
        .as_ref()
        .filter(|r| r.enabled.as_ref().is_some_and(|e| e.value))
}

/// The registry host port as written, when it is one a registry can publish.
fn host_port(value: Option<&Located<i64>>) -> Option<u16> {
    match value {
        None => Some(DEFAULT_REGISTRY_PORT),
        Some(l) => u16::try_from(l.value).ok().filter(|p| *p >= 1),
    }
}

/// The registry plan; `None` when the registry is off. A port out of range falls
/// back to the default (validation reports it).
pub(super) fn registry(profile: &Profile) -> Option<RegistryPlan> {
    let spec = spec(profile)?;
    let port = host_port(spec.host_port.as_ref()).unwrap_or(DEFAULT_REGISTRY_PORT);
    Some(RegistryPlan {
        container: container_name(port),
        host_port: port,
        listen_address: spec
            .listen_address
            .as_ref()
            .map_or_else(|| LOOPBACK.to_string(), |l| l.value.clone()),
        image: spec
            .image
            .as_ref()
            .map_or_else(|| DEFAULT_REGISTRY_IMAGE.to_string(), |l| l.value.clone()),
    })
}

/// Checks the registry: a fixed host port in range, a listen address, an image
/// reference, and no host port of the cluster or its API server on the same port.
pub(super) fn check_registry(profile: &Profile, plan: &ClusterPlan, problems: &mut Vec<Problem>) {
    let (Some(spec), Some(registry)) = (spec(profile), &plan.registry) else {
        return;
    };
    let port_at = spec.host_port.clone().unwrap_or_else(|| {
        let mut at = Located::new(0);
        if let Some(enabled) = &spec.enabled {
            at.line = enabled.line;
            at.column = enabled.column;
            at.file = enabled.file.clone();
        }
        at
    });
    if let Some(l) = &spec.host_port
        && host_port(Some(l)).is_none()
    {
        problems.push(
            Problem::error(format!(
                "registry.hostPort is {}; it must be 1-65535",
                l.value
            ))
            .at(l)
            .hint("nodes pull from `localhost:<hostPort>`, so the port is fixed: 0 or -1 cannot be used here"),
        );
        return;
    }
    if (1..1024).contains(&registry.host_port) {
        problems.push(
            Problem::warning(format!(
                "registry.hostPort {} is below 1024; rootless Docker cannot publish it",
                registry.host_port
            ))
            .at(&port_at),
        );
    }
    if let Some(l) = &spec.listen_address {
        check_listen_address(&l.value, "registry.listenAddress", &|p| p.at(l), problems);
    }
    if let Some(l) = &spec.image
        && (l.value.trim().is_empty() || l.value.chars().any(char::is_whitespace))
    {
        problems.push(
            Problem::error(format!(
                "registry.image `{}` is not an image reference",
                l.value
            ))
            .at(l)
            .hint("name an image Docker has or can pull, e.g. `registry:2` or `mirror.example.com/library/registry:2`"),
        );
    }
    let listen = registry.listen_address.parse::<IpAddr>().is_ok();
    let port = i32::from(registry.host_port);
    let networking = &plan.networking;
    if listen
        && networking.api_server_port == port
        && addresses_overlap(&registry.listen_address, &networking.api_server_address)
    {
        problems.push(
            Problem::error(format!(
                "registry.hostPort {port} is also networking.apiServerPort"
            ))
            .at(&port_at)
            .hint("give the registry another hostPort, or leave apiServerPort at 0"),
        );
    }
    for node in &plan.nodes {
        for mapping in &node.ports {
            if listen
                && mapping.host_port == port
                && mapping.protocol == Protocol::Tcp
                && addresses_overlap(&registry.listen_address, &mapping.listen_address)
            {
                problems.push(
                    Problem::error(format!(
                        "registry.hostPort {port} is also published by node `{}` (container port {})",
                        node.id, mapping.container_port
                    ))
                    .at(&port_at)
                    .hint("give the registry or the port mapping another hostPort"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::plan::{PlanInput, plan, plan_of_text};
    use crate::core::profile::Profile;

    /// The messages of every problem the profile `body` has, errors and warnings.
    fn problems(body: &str) -> Vec<String> {
        let text = format!("apiVersion: devcluster.dev/v1alpha1\nkind: Profile\n{body}");
        let profile = Profile::decode(&text).unwrap_or_else(|e| panic!("{e:?}"));
        let input = PlanInput {
            profile: &profile,
            name_override: Some("c"),
            base_dir: std::path::Path::new("/p"),
            home_dir: None,
            source: "test".into(),
            file: None,
        };
        match plan(&input) {
            Ok(planned) => planned.warnings.into_iter().map(|p| p.message).collect(),
            Err(problems) => problems.into_iter().map(|p| p.message).collect(),
        }
    }

    #[test]
    fn registry_ports_that_clash_or_cannot_be_fixed_are_refused_with_every_problem() {
        assert_eq!(
            problems(
                "registry: {enabled: true, hostPort: 8080}\nnetworking: {apiServerPort: 8080}\nports:\n  - {containerPort: 30080, hostPort: 8080, node: control-plane}\n"
            )
            .into_iter()
            .filter(|m| m.starts_with("registry"))
            .collect::<Vec<_>>(),
            [
                "registry.hostPort 8080 is also networking.apiServerPort",
                "registry.hostPort 8080 is also published by node `control-plane` (container port 30080)",
            ]
        );
        assert_eq!(
            problems("registry: {enabled: true, hostPort: 0}\n"),
            ["registry.hostPort is 0; it must be 1-65535"]
        );
        assert_eq!(
            problems("registry: {enabled: true, image: \"\"}\n"),
            ["registry.image `` is not an image reference"]
        );
        // Another address, another protocol or a disabled registry: no clash.
        assert!(
            problems(
                "registry: {enabled: true, hostPort: 8080, listenAddress: 127.0.0.2}\nports:\n  - {containerPort: 30080, hostPort: 8080, node: control-plane}\n  - {containerPort: 30081, hostPort: 5001, protocol: UDP, node: control-plane}\n"
            )
            .is_empty()
        );
        assert!(
            problems(
                "registry: {enabled: false, hostPort: 0}\nports:\n  - {containerPort: 30080, hostPort: 5001, node: control-plane}\n"
            )
            .is_empty()
        );
        // A wildcard port mapping covers the loopback registry.
        assert_eq!(
            problems(
                "registry: {enabled: true}\nports:\n  - {containerPort: 30080, hostPort: 5001, listenAddress: 0.0.0.0, node: control-plane}\n"
            )
            .into_iter()
            .filter(|m| m.starts_with("registry"))
            .collect::<Vec<_>>(),
            ["registry.hostPort 5001 is also published by node `control-plane` (container port 30080)"]
        );
        assert_eq!(
            problems("registry: {enabled: true, hostPort: 500, listenAddress: 0.0.0.0}\n"),
            [
                "registry.hostPort 500 is below 1024; rootless Docker cannot publish it",
                "registry.listenAddress `0.0.0.0` publishes the port on every network this host is on",
            ]
        );
    }

    #[test]
    fn the_default_registry_is_on_the_loopback_port_5001_pinned_by_digest() {
        let plan = plan_of_text(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nregistry: {enabled: true}\n",
        );
        let registry = plan.registry.unwrap_or_else(|| panic!("no registry"));
        assert_eq!(registry.host_port, 5001);
        assert_eq!(registry.listen_address, "127.0.0.1");
        assert_eq!(registry.container, "devcluster-registry-5001");
        assert!(registry.image.contains("registry:2.8.3@sha256:"));
        assert_eq!(registry.host(), "localhost:5001");
        assert_eq!(
            registry.hosts_toml_path(),
            "/etc/containerd/certs.d/localhost:5001/hosts.toml"
        );
        assert_eq!(
            registry.hosts_toml(),
            "[host.\"http://devcluster-registry-5001:5000\"]\n"
        );
        assert!(
            registry
                .hosting_value()
                .starts_with("host: \"localhost:5001\"\n")
        );
        let off = plan_of_text(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nregistry: {enabled: false, hostPort: 5002}\n",
        );
        assert_eq!(off.registry, None);
    }
}
