//! Host mounts: each profile mount on the nodes it selects, host paths resolved
//! against the file that wrote them, the guard against dangerous host paths (through
//! symlinks too, via [`HostPaths`]), and container paths a node can carry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PlanInput;
use super::defaults::DEFAULT_MOUNT_NODES;
use super::nodes::{NodePlan, select};
use crate::core::diagnostic::Problem;
use crate::core::profile::{MountPathType, MountSpec, Profile, Propagation};
use crate::core::yaml::Located;

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

/// Where the relative host paths of a mount resolve. A relative path belongs to
/// the file that wrote it: a profile pulled in by `extends:` resolves against its
/// own directory, built-ins against `base_dir`.
fn base_dir<'a>(located: &'a Located<MountSpec>, input: &PlanInput<'a>) -> &'a Path {
    let declared_in = located
        .file
        .as_deref()
        .filter(|file| !file.starts_with("builtin:"))
        .and_then(|file| Path::new(file).parent())
        .filter(|dir| dir.is_absolute());
    declared_in.unwrap_or(input.base_dir)
}

/// The node selectors of a mount: every node unless it names some.
fn selectors(spec: &MountSpec) -> Vec<String> {
    spec.nodes
        .clone()
        .map(|s| s.0)
        .unwrap_or_else(|| DEFAULT_MOUNT_NODES.iter().map(|s| s.to_string()).collect())
}

/// The profile's mounts on the nodes they select, host paths absolute and
/// normalised. A mount whose host path does not resolve is left out, and a
/// container path that is refused stays as written (validation reports both).
pub(super) fn mount(nodes: &mut [NodePlan], input: &PlanInput<'_>) {
    for located in &input.profile.mounts {
        let spec = &located.value;
        let base = base_dir(located, input);
        let Ok(host_path) = resolve_host_path(&spec.host_path, base, input.home_dir) else {
            continue;
        };
        let container_path = if container_path_problem(&spec.container_path).is_some() {
            spec.container_path.clone()
        } else {
            // `/data/` and `/data` are one path; kind gets the short form.
            normalize(Path::new(&spec.container_path))
                .to_string_lossy()
                .into_owned()
        };
        let mut targets = BTreeSet::new();
        for selector in &selectors(spec) {
            targets.extend(select(nodes, selector, "mounts: nodes").unwrap_or_default());
        }
        let mount = MountPlan {
            host_path: host_path.to_string_lossy().into_owned(),
            container_path,
            path_type: spec.path_type.unwrap_or_default(),
            read_only: spec.read_only.unwrap_or(false),
            propagation: spec.propagation.unwrap_or_default(),
            selinux_relabel: spec.selinux_relabel.unwrap_or(false),
            allow_dangerous_path: spec.allow_dangerous_path.unwrap_or(false),
        };
        for index in targets {
            nodes[index].mounts.push(mount.clone());
        }
    }
}

/// Checks one mount: a host path that resolves and is not dangerous (as written or
/// where `host` says its symlinks lead) unless the mount allows it, a container
/// path a node can carry, and nodes that exist.
pub(super) fn check_mount(
    located: &Located<MountSpec>,
    input: &PlanInput<'_>,
    host: &dyn HostPaths,
    nodes: &[NodePlan],
    problems: &mut Vec<Problem>,
) {
    let spec = &located.value;
    let at = |p: Problem| p.at(located);
    let base = base_dir(located, input);
    let host_path = match resolve_host_path(&spec.host_path, base, input.home_dir) {
        Ok(path) => path,
        Err(reason) => {
            problems.push(at(Problem::error(format!(
                "mounts: hostPath `{}` {reason}",
                spec.host_path
            ))));
            return;
        }
    };
    let host_path_text = host_path.to_string_lossy().into_owned();
    let allow_dangerous = spec.allow_dangerous_path.unwrap_or(false);
    let danger = match dangerous_host_path(&host_path, input.home_dir) {
        Some(reason) => Some((reason, String::new())),
        None => host.resolve(&host_path).and_then(|real| {
            let home = input.home_dir;
            let real_home = home.and_then(|h| host.resolve(h));
            let reason = dangerous_host_path(&real, home)
                .or_else(|| dangerous_host_path(&real, real_home.as_deref()))?;
            Some((reason, format!(" (a symlink to `{}`)", real.display())))
        }),
    };
    if let Some((reason, via)) = danger
        && !allow_dangerous
    {
        problems.push(at(Problem::error(format!(
            "mounts: hostPath `{host_path_text}`{via} {reason}; devcluster refuses it by default"
        ))
        .hint("mount a narrower directory, or set `allowDangerousPath: true` on this mount if you mean it")));
    }
    let container_path = &spec.container_path;
    if let Some(reason) = container_path_problem(container_path) {
        problems.push(at(Problem::error(format!(
            "mounts: containerPath `{container_path}` {reason}"
        ))));
    }
    let selectors = selectors(spec);
    if selectors.is_empty() {
        problems.push(at(Problem::error(
            "mounts: nodes is an empty list; the mount would be on no node",
        )
        .hint("leave `nodes` out for every node, or name the nodes")));
    }
    for selector in &selectors {
        if let Err(problem) = select(nodes, selector, "mounts: nodes") {
            problems.push(at(problem));
        }
    }
}

/// No node may get two mounts on one container path.
pub(super) fn check_mount_collisions(
    profile: &Profile,
    nodes: &[NodePlan],
    problems: &mut Vec<Problem>,
) {
    for node in nodes {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for mount in &node.mounts {
            let key = mount.container_path.trim_end_matches('/');
            if let Some(first) = seen.insert(key, &mount.host_path) {
                let mounts = &profile.mounts;
                let at = mounts
                    .iter()
                    .rev()
                    .find(|m| m.value.container_path.trim_end_matches('/') == key)
                    .cloned()
                    .unwrap_or_default();
                problems.push(
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

pub use crate::core::paths::normalize;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::plan_on;

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
}
