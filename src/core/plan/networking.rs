//! Cluster networking: the API server's address and port, IP family, subnets,
//! kube-proxy mode and the default CNI.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::defaults::{DEFAULT_API_SERVER_PORT, LOOPBACK};
use crate::core::diagnostic::Problem;
use crate::core::profile::Profile;
use crate::core::yaml::Located;

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

const IP_FAMILIES: &[&str] = &["ipv4", "ipv6", "dual"];
const KUBE_PROXY_MODES: &[&str] = &["iptables", "ipvs", "nftables", "none"];

/// The profile's networking as written, with the defaults filled in; an API server
/// port out of range falls back to the default (validation reports it).
pub(super) fn networking(profile: &Profile) -> NetworkingPlan {
    let net = profile.networking.clone().unwrap_or_default();
    let value = |l: Option<Located<String>>| l.map(|l| l.value);
    NetworkingPlan {
        api_server_address: value(net.api_server_address).unwrap_or_else(|| LOOPBACK.to_string()),
        api_server_port: match net.api_server_port {
            Some(l) if (0..=65535).contains(&l.value) => l.value as i32,
            _ => DEFAULT_API_SERVER_PORT,
        },
        ip_family: value(net.ip_family),
        pod_subnet: value(net.pod_subnet),
        service_subnet: value(net.service_subnet),
        kube_proxy_mode: value(net.kube_proxy_mode),
        disable_default_cni: net.disable_default_cni.unwrap_or(false),
    }
}

/// Addresses must be IP addresses, a wildcard one is warned about, ports in range,
/// names from kind's lists and subnets CIDRs.
pub(super) fn check_networking(profile: &Profile, problems: &mut Vec<Problem>) {
    let net = profile.networking.clone().unwrap_or_default();
    if let Some(l) = &net.api_server_address {
        if l.value.parse::<IpAddr>().is_err() {
            problems.push(
                Problem::error(format!(
                    "networking.apiServerAddress `{}` is not an IP address",
                    l.value
                ))
                .at(l),
            );
        } else if is_unspecified(&l.value) {
            problems.push(
                Problem::warning(format!(
                    "networking.apiServerAddress `{}` exposes the API server to every network this host is on",
                    l.value
                ))
                .at(l)
                .hint("keep the default 127.0.0.1 unless other machines must reach the cluster"),
            );
        }
    }
    if let Some(l) = &net.api_server_port
        && !(0..=65535).contains(&l.value)
    {
        problems.push(
            Problem::error(format!(
                "networking.apiServerPort is {}; it must be 0 (pick a free port) or 1-65535",
                l.value
            ))
            .at(l),
        );
    }
    check_one_of(&net.ip_family, "networking.ipFamily", IP_FAMILIES, problems);
    check_one_of(
        &net.kube_proxy_mode,
        "networking.kubeProxyMode",
        KUBE_PROXY_MODES,
        problems,
    );
    check_cidr(&net.pod_subnet, "networking.podSubnet", problems);
    check_cidr(&net.service_subnet, "networking.serviceSubnet", problems);
}

fn check_one_of(
    value: &Option<Located<String>>,
    field: &str,
    allowed: &[&str],
    problems: &mut Vec<Problem>,
) {
    let Some(l) = value else {
        return;
    };
    if !allowed.contains(&l.value.as_str()) {
        problems.push(
            Problem::error(format!(
                "{field} is `{}`; it must be one of: {}",
                l.value,
                allowed.join(", ")
            ))
            .at(l),
        );
    }
}

fn check_cidr(value: &Option<Located<String>>, field: &str, problems: &mut Vec<Problem>) {
    let Some(l) = value else {
        return;
    };
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
        problems.push(
            Problem::error(format!(
                "{field} `{}` is not a CIDR such as 10.244.0.0/16",
                l.value
            ))
            .at(l),
        );
    }
}

/// Whether `address` is a wildcard address (`0.0.0.0`, `::`).
pub(super) fn is_unspecified(address: &str) -> bool {
    address.parse::<IpAddr>().is_ok_and(|a| a.is_unspecified())
}
