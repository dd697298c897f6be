//! The host devcluster runs on, as far as its checks read it: who holds a host
//! port (a bind attempt, the kernel's socket tables under `/proc/net`, the
//! `/proc/<pid>/fd` links), and free disk (statvfs).
//!
//! The `/proc` tables are parsed here rather than with the `procfs` crate. Measured
//! on this project (procfs 0.18, default features off): it adds 2 crates
//! (`procfs`, `procfs-core`) and more `rustix` features, about 13 s of one-core
//! release compile and 66 KiB to a stripped release binary, and builds only on
//! Linux, so it would need a target-specific dependency and `cfg` gates, while the
//! two tables and the fd links need the 70 tested lines below, which read nothing
//! on other systems.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use crate::adapters::docker::PublishedPort;
use crate::core::plan::Protocol;

/// Free bytes on the filesystem holding `path` for an unprivileged writer: what
/// `df` calls "Available" (`f_bavail` blocks of `f_frsize` bytes), from statvfs(3).
pub fn free_disk(path: &str) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// What trying to bind a host port from this process showed. Only `InUse`
/// means another socket holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindOutcome {
    Bound,
    InUse,
    /// This user may not bind it (below `net.ipv4.ip_unprivileged_port_start`,
    /// 1024 on most distributions); the Docker daemon, not this user, publishes it.
    Denied,
    /// The address is not one of this machine's.
    NotAvailable,
    Other(String),
}

/// Binds `address` for a moment and lets it go.
pub fn try_bind(address: SocketAddr, protocol: Protocol) -> BindOutcome {
    let result = match protocol {
        Protocol::Udp => UdpSocket::bind(address).map(drop),
        _ => TcpListener::bind(address).map(drop),
    };
    match result {
        Ok(()) => BindOutcome::Bound,
        Err(e) => match e.kind() {
            std::io::ErrorKind::AddrInUse => BindOutcome::InUse,
            std::io::ErrorKind::PermissionDenied => BindOutcome::Denied,
            std::io::ErrorKind::AddrNotAvailable => BindOutcome::NotAvailable,
            _ => BindOutcome::Other(e.to_string()),
        },
    }
}

/// A socket listening on a port: its inode, and the process holding it (pid and
/// command) when this user can see it.
pub type ListeningSocket = (u64, Option<(u32, String)>);

/// Everything known about one host port devcluster wants to publish.
#[derive(Debug, Clone)]
pub struct PortObservation<'a> {
    pub listen: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub bind: BindOutcome,
    /// Every port the running containers publish.
    pub published: &'a [PublishedPort],
    /// Sockets listening on this port on a clashing address.
    pub listeners: &'a [ListeningSocket],
}

/// Who holds a host port, decided from a [`PortObservation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortHolding {
    /// This process could bind it.
    Free,
    /// This user may not bind it, but no socket listens on it: the Docker daemon
    /// (root), which publishes it, can.
    FreeForTheDaemon,
    /// A running container publishes it (the daemon holds it whether or not a
    /// proxy process listens).
    Published {
        container: String,
        cluster: Option<String>,
    },
    /// A process this user can see listens on it.
    Process { pid: u32, command: String },
    /// The bind failed with "address in use" and no visible process holds it.
    InUseByHidden,
    /// This user may not bind it and a socket listens on it, held by a process
    /// this user cannot see.
    ListenedByHidden,
    /// The listen address is not one of this machine's.
    NotAnAddress,
    /// The bind failed otherwise.
    Untested(String),
}

/// Sees what holds `port` on `listen`: a bind attempt, then, unless that bound,
/// the listening sockets on a clashing address and their processes.
pub fn observe_port(
    listen: IpAddr,
    port: u16,
    protocol: Protocol,
) -> (BindOutcome, Vec<ListeningSocket>) {
    let bind = try_bind(SocketAddr::new(listen, port), protocol);
    let listening = match bind {
        BindOutcome::Bound => Vec::new(),
        _ => listeners(protocol)
            .into_iter()
            .filter(|l| l.port == port && addresses_clash(l.address, listen))
            .map(|l| (l.inode, socket_owner(l.inode)))
            .collect(),
    };
    (bind, listening)
}

/// Who holds the observed port. A container that publishes it comes first; then
/// the bind attempt, with the listening sockets telling a port this user may not
/// bind from one that is taken.
pub fn decide_port(observed: &PortObservation<'_>) -> PortHolding {
    let proto = observed.protocol.as_str().to_ascii_lowercase();
    let holder = observed.published.iter().find(|p| {
        p.host_port == observed.port
            && (p.protocol.is_empty() || p.protocol == proto)
            && p.host_ip
                .parse::<IpAddr>()
                .map_or(true, |ip| addresses_clash(ip, observed.listen))
    });
    if let Some(holder) = holder {
        return PortHolding::Published {
            container: holder.container.clone(),
            cluster: holder.cluster.clone(),
        };
    }
    let owner = observed
        .listeners
        .iter()
        .find_map(|(_, owner)| owner.as_ref())
        .map(|(pid, command)| PortHolding::Process {
            pid: *pid,
            command: command.clone(),
        });
    match &observed.bind {
        BindOutcome::Bound => PortHolding::Free,
        BindOutcome::InUse => owner.unwrap_or(PortHolding::InUseByHidden),
        BindOutcome::Denied if !observed.listeners.is_empty() => {
            owner.unwrap_or(PortHolding::ListenedByHidden)
        }
        BindOutcome::Denied => PortHolding::FreeForTheDaemon,
        BindOutcome::NotAvailable => PortHolding::NotAnAddress,
        BindOutcome::Other(error) => PortHolding::Untested(error.clone()),
    }
}

/// Whether sockets on `a` and `b` (same port) exclude each other: the same
/// address, or a wildcard of either. An IPv6 wildcard may be dual-stack (it is
/// unless `IPV6_V6ONLY`, which `/proc/net` does not show), so it clashes with
/// IPv4 too.
pub fn addresses_clash(a: IpAddr, b: IpAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (a, b) = (canonical(a), canonical(b));
    let v6_any = |ip: IpAddr| ip.is_ipv6() && ip.is_unspecified();
    a == b
        || (a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified()))
        || v6_any(a)
        || v6_any(b)
}

/// A listening socket from `/proc/net/{tcp,tcp6,udp,udp6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listener {
    address: IpAddr,
    port: u16,
    inode: u64,
}

/// The listening sockets of this network namespace (Linux; empty elsewhere).
fn listeners(protocol: Protocol) -> Vec<Listener> {
    let (tables, state) = match protocol {
        Protocol::Udp => (["/proc/net/udp", "/proc/net/udp6"], "07"),
        Protocol::Tcp => (["/proc/net/tcp", "/proc/net/tcp6"], "0A"),
        Protocol::Sctp => return Vec::new(),
    };
    tables
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| parse_listeners(&text, state))
        .collect()
}

/// The rows of a `/proc/net/tcp`-style table in `state` (`0A` TCP LISTEN, `07`
/// an unconnected UDP socket). Addresses are hexadecimal 32-bit words in host
/// byte order (kernel `net/ipv4/tcp_ipv4.c` `get_tcp4_sock`, `net/ipv6/tcp_ipv6.c`).
fn parse_listeners(text: &str, state: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if *fields.get(3)? != state {
                return None;
            }
            let (address, port) = fields.get(1)?.split_once(':')?;
            Some(Listener {
                address: parse_proc_address(address)?,
                port: u16::from_str_radix(port, 16).ok()?,
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

fn parse_proc_address(hex: &str) -> Option<IpAddr> {
    let words: Option<Vec<[u8; 4]>> = (0..hex.len() / 8)
        .map(|i| {
            let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
            Some(word.to_ne_bytes())
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    match (hex.len(), bytes.len()) {
        (8, 4) => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        (32, 16) => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The process holding socket `inode`, from the links under `/proc/<pid>/fd`;
/// `None` when no process this user may inspect holds it.
fn socket_owner(inode: u64) -> Option<(u32, String)> {
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|link| link.to_string_lossy() == target)
        });
        if holds {
            let command = std::fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            return Some((pid, command));
        }
    }
    None
}

/// GETs `path` on `host:port` over plain HTTP/1.0 (a registry or a probe's echo
/// backend reached through a host port) and returns the answer; bounded in time.
pub async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = tokio::net::TcpStream::connect((host, port));
    let mut stream = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| {
            format!(
                "no connection to {host}:{port} within {}s",
                timeout.as_secs()
            )
        })?
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let request =
        format!("GET {path}/ HTTP/1.0\r\nHost: localhost\r\nUser-Agent: devcluster\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    tokio::time::timeout(timeout, stream.take(64 * 1024).read_to_end(&mut body))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `df -Pk`'s "Available" column for `path`, in bytes: the number `free_disk` must match.
    fn df_available(path: &Path) -> u64 {
        let out = std::process::Command::new("df")
            .arg("-Pk")
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("df: {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .nth(1)
            .unwrap_or_else(|| panic!("df said {text:?}"));
        let kib: u64 = line
            .split_whitespace()
            .nth(3)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("df said {text:?}"));
        kib * 1024
    }

    #[test]
    fn free_disk_agrees_with_df() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().join("data root with spaces");
        std::fs::create_dir(&root).unwrap_or_else(|e| panic!("{e}"));
        let before = df_available(&root);
        let free = free_disk(&root.display().to_string()).unwrap_or_else(|| panic!("statvfs"));
        let after = df_available(&root);
        // Other writers share the disk: allow what they may use in between, plus df's
        // rounding to whole KiB.
        let slack = 64 * 1024 * 1024;
        assert!(
            free + slack >= before.min(after) && free <= before.max(after) + slack,
            "statvfs {free}, df {before}..{after}"
        );
    }

    #[test]
    fn free_disk_of_a_missing_path_is_unknown() {
        assert_eq!(free_disk("/nonexistent/devcluster/data-root"), None);
    }

    #[test]
    fn a_listening_process_is_named() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(try_bind(address, Protocol::Tcp), BindOutcome::InUse);
        if cfg!(target_os = "linux") {
            let found = listeners(Protocol::Tcp)
                .into_iter()
                .find(|l| l.port == address.port())
                .unwrap_or_else(|| panic!("listener not in /proc/net/tcp"));
            assert_eq!(found.address, address.ip());
            let (pid, _) = socket_owner(found.inode).unwrap_or_else(|| panic!("holder not found"));
            assert_eq!(pid, std::process::id());
        }
    }

    #[test]
    fn proc_net_tables_parse_in_host_byte_order() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:0051 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1\n";
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1\n   1: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6161 1\n";
        let v4 = parse_listeners(tcp, "0A");
        if cfg!(target_endian = "little") {
            assert_eq!(
                v4,
                vec![Listener {
                    address: "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")),
                    port: 80,
                    inode: 4242
                }]
            );
            let v6 = parse_listeners(tcp6, "0A");
            assert_eq!(v6.len(), 2);
            assert_eq!(
                v6[0].address,
                "::".parse::<IpAddr>().unwrap_or_else(|e| panic!("{e}"))
            );
            assert_eq!((v6[0].port, v6[0].inode), (443, 5151));
            assert_eq!(
                v6[1].address,
                "::ffff:127.0.0.1"
                    .parse::<IpAddr>()
                    .unwrap_or_else(|e| panic!("{e}"))
            );
        }
        assert!(parse_listeners(tcp, "07").is_empty());
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn wildcards_clash_across_families_when_dual_stack() {
        assert!(addresses_clash(ip("0.0.0.0"), ip("127.0.0.1")));
        assert!(addresses_clash(ip("::"), ip("127.0.0.1")));
        assert!(addresses_clash(ip("::ffff:127.0.0.1"), ip("127.0.0.1")));
        assert!(!addresses_clash(ip("127.0.0.2"), ip("127.0.0.1")));
        assert!(!addresses_clash(ip("::1"), ip("127.0.0.1")));
    }

    fn published(cluster: Option<&str>, host_ip: &str, protocol: &str) -> PublishedPort {
        PublishedPort {
            container: "holder".into(),
            cluster: cluster.map(str::to_string),
            host_ip: host_ip.into(),
            host_port: 80,
            protocol: protocol.into(),
        }
    }

    fn decide(
        bind: BindOutcome,
        published: &[PublishedPort],
        listeners: &[ListeningSocket],
    ) -> PortHolding {
        decide_port(&PortObservation {
            listen: ip("127.0.0.1"),
            port: 80,
            protocol: Protocol::Tcp,
            bind,
            published,
            listeners,
        })
    }

    #[test]
    fn a_publishing_container_comes_before_the_bind_attempt() {
        let holder = PortHolding::Published {
            container: "holder".into(),
            cluster: Some("old".into()),
        };
        for bind in [BindOutcome::Bound, BindOutcome::InUse, BindOutcome::Denied] {
            let found = decide(bind, &[published(Some("old"), "0.0.0.0", "tcp")], &[]);
            assert_eq!(found, holder);
        }
        // A blank protocol (not reported) matches; another protocol or another
        // address does not.
        assert_eq!(
            decide(BindOutcome::Bound, &[published(Some("old"), "", "")], &[]),
            holder
        );
        assert_eq!(
            decide(
                BindOutcome::Bound,
                &[published(None, "0.0.0.0", "udp")],
                &[]
            ),
            PortHolding::Free
        );
        assert_eq!(
            decide(
                BindOutcome::Bound,
                &[published(None, "127.0.0.2", "tcp")],
                &[]
            ),
            PortHolding::Free
        );
    }

    #[test]
    fn listeners_tell_a_taken_port_from_one_only_the_daemon_may_bind() {
        let nginx = (7, Some((4321, "nginx".to_string())));
        assert_eq!(
            decide(BindOutcome::InUse, &[], std::slice::from_ref(&nginx)),
            PortHolding::Process {
                pid: 4321,
                command: "nginx".into()
            }
        );
        assert_eq!(
            decide(BindOutcome::InUse, &[], &[]),
            PortHolding::InUseByHidden
        );
        assert_eq!(
            decide(BindOutcome::Denied, &[], &[(7, None)]),
            PortHolding::ListenedByHidden
        );
        assert_eq!(
            decide(BindOutcome::Denied, &[], &[nginx]),
            PortHolding::Process {
                pid: 4321,
                command: "nginx".into()
            }
        );
        assert_eq!(
            decide(BindOutcome::Denied, &[], &[]),
            PortHolding::FreeForTheDaemon
        );
        assert_eq!(
            decide(BindOutcome::NotAvailable, &[], &[]),
            PortHolding::NotAnAddress
        );
        assert_eq!(
            decide(BindOutcome::Other("boom".into()), &[], &[]),
            PortHolding::Untested("boom".into())
        );
    }

    #[test]
    fn observing_a_port_held_here_finds_this_process() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (bind, listening) = observe_port(address.ip(), address.port(), Protocol::Tcp);
        assert_eq!(bind, BindOutcome::InUse);
        if cfg!(target_os = "linux") {
            assert!(
                listening.iter().any(|(_, owner)| owner
                    .as_ref()
                    .is_some_and(|(pid, _)| *pid == std::process::id())),
                "{listening:?}"
            );
        }
        drop(listener);
        // Tests run in parallel and bind ports of their own: another socket may
        // take the freed port at once, but this process no longer holds it.
        let (bind, listening) = observe_port(address.ip(), address.port(), Protocol::Tcp);
        assert!(
            !listening.iter().any(|(_, owner)| owner
                .as_ref()
                .is_some_and(|(pid, _)| *pid == std::process::id())),
            "{bind:?} {listening:?}"
        );
        if bind == BindOutcome::Bound {
            assert!(listening.is_empty(), "{listening:?}");
        }
    }
}
