//! Mounts, layer by layer: the host path gets a fresh sentinel; each node
//! container must have the bind and see the sentinel (Docker exec); a pod on each
//! node must see it through `hostPath` and write a reply the host then sees (or,
//! read-only, fail to write). One shell probe serves the node and the pod layer.

use std::path::Path;

use crate::adapters::docker::{ObservedMount, ObservedNode};
use crate::operations::verify::report::{Check, Layer, Status};

/// Exit codes of the probe script, and what each means.
pub const MISSING_PATH: i64 = 10;
pub const MISSING_SENTINEL: i64 = 11;
pub const WRONG_CONTENT: i64 = 12;
pub const WROTE_READ_ONLY: i64 = 13;
pub const WRITE_DENIED: i64 = 14;

/// What one mount probe looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountProbe {
    /// The path as the node (and the pod, through hostPath) sees it.
    pub path: String,
    pub file: bool,
    pub read_only: bool,
    /// Sentinel file name and content (directories).
    pub token: String,
    /// A file mount's first line as the host reads it, when it is plain text.
    pub first_line: Option<String>,
}

impl MountProbe {
    pub fn sentinel_name(&self) -> String {
        format!(".devcluster-{}", self.token)
    }

    /// The reply a read-write probe leaves for the host to find.
    pub fn reply_name(&self, layer: Layer, node: &str) -> String {
        format!(".devcluster-{}-{}-{}", self.token, layer.as_str(), node)
    }

    /// The POSIX shell probe, run in the node container or the pod. It uses shell
    /// builtins and `rm` only: kind's preloaded local-path helper image has just
    /// `sh`, `rm` and `mkdir` (kind `images/local-path-helper/Dockerfile`).
    pub fn script(&self, layer: Layer, node: &str) -> String {
        let path = quote(&self.path);
        if self.file {
            let write = if self.read_only {
                format!(
                    "if ( : >> {path} ) 2>/dev/null; then echo 'devcluster: wrote to a read-only mount'; exit {WROTE_READ_ONLY}; fi"
                )
            } else {
                format!(
                    "( : >> {path} ) 2>/dev/null || {{ echo 'devcluster: cannot write'; exit {WRITE_DENIED}; }}"
                )
            };
            let content = match &self.first_line {
                Some(line) => format!(
                    "IFS= read -r first < {path} || true\n[ \"$first\" = {} ] || {{ echo 'devcluster: the file differs from the host file'; exit {WRONG_CONTENT}; }}\n",
                    quote(line)
                ),
                None => String::new(),
            };
            return format!(
                "[ -f {path} ] || {{ echo 'devcluster: no such file'; exit {MISSING_PATH}; }}\n\
                 [ -r {path} ] || {{ echo 'devcluster: cannot read'; exit {WRITE_DENIED}; }}\n\
                 {content}{write}\necho 'devcluster: ok'\n"
            );
        }
        let sentinel = quote(&format!("{}/{}", self.path, self.sentinel_name()));
        let reply = quote(&format!("{}/{}", self.path, self.reply_name(layer, node)));
        let write = if self.read_only {
            format!(
                "if echo x > {reply} 2>/dev/null; then rm -f {reply}; echo 'devcluster: wrote to a read-only mount'; exit {WROTE_READ_ONLY}; fi"
            )
        } else {
            format!(
                "echo {} > {reply} 2>/dev/null || {{ echo 'devcluster: cannot write'; exit {WRITE_DENIED}; }}",
                quote(node)
            )
        };
        format!(
            "[ -d {path} ] || {{ echo 'devcluster: no such directory'; exit {MISSING_PATH}; }}\n\
             if [ ! -e {sentinel} ]; then {{ [ -r {path} ] && [ -x {path} ]; }} || {{ echo 'devcluster: permission denied'; exit {WRITE_DENIED}; }}; echo 'devcluster: sentinel not visible'; exit {MISSING_SENTINEL}; fi\n\
             IFS= read -r got < {sentinel} 2>/dev/null || true\n\
             [ \"$got\" = {} ] || {{ echo 'devcluster: sentinel unreadable or different'; exit {WRONG_CONTENT}; }}\n\
             {write}\necho 'devcluster: ok'\n",
            quote(&self.token)
        )
    }
}

/// The first line of a small text file, for comparing what the node and pod see.
fn first_line(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path)
        .ok()
        .filter(|b| b.len() <= 1024 * 1024)?;
    let text = String::from_utf8(bytes).ok()?;
    let line = text.split('\n').next().unwrap_or("");
    (!line.contains('\0') && !line.contains('\r') && line.len() <= 4096).then(|| line.to_string())
}

/// Single-quotes `text` for a POSIX shell.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The host layer: puts the sentinel in place. For a file mount, records its size.
pub fn prepare_host(host_path: &Path, probe: &mut MountProbe) -> Result<(), Check> {
    let name = format!("mount {}", probe.path);
    match std::fs::metadata(host_path) {
        Err(_) => Err(Check::new(
            &name,
            None,
            Layer::Host,
            Status::Fail,
            format!("host path {} does not exist", host_path.display()),
        )
        .hint("create it (Docker would mount an empty root-owned directory instead), then run `devcluster up --recreate`")),
        Ok(meta) if probe.file => {
            if meta.is_dir() {
                return Err(Check::new(&name, None, Layer::Host, Status::Fail, format!("{} is a directory, but the mount is a file", host_path.display())));
            }
            probe.first_line = first_line(host_path);
            Ok(())
        }
        Ok(meta) if !meta.is_dir() => Err(Check::new(
            &name,
            None,
            Layer::Host,
            Status::Fail,
            format!("{} is not a directory", host_path.display()),
        )),
        Ok(_) => std::fs::write(host_path.join(probe.sentinel_name()), &probe.token).map_err(|e| {
            Check::new(&name, None, Layer::Host, Status::Fail, format!("cannot write a sentinel into {}: {e}", host_path.display()))
                .hint("check the directory's permissions for this user")
        }),
    }
}

/// Removes the sentinel and every reply from the host path.
pub fn clean_host(host_path: &Path, probe: &MountProbe) {
    if probe.file {
        return;
    }
    let prefix = format!(".devcluster-{}", probe.token);
    if let Ok(entries) = std::fs::read_dir(host_path) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Whether the reply a read-write probe wrote reached the host.
pub fn host_sees_reply(host_path: &Path, probe: &MountProbe, layer: Layer, node: &str) -> bool {
    host_path.join(probe.reply_name(layer, node)).exists()
}

/// The node layer's first half: does the container have the planned bind?
pub fn check_bind(
    observed: &ObservedNode,
    all_nodes: &[ObservedNode],
    host_path: &str,
    container_path: &str,
    read_only: bool,
) -> Option<Check> {
    let name = format!("mount {container_path}");
    let binds: Vec<&ObservedMount> = observed
        .mounts
        .iter()
        .filter(|m| m.destination.trim_end_matches('/') == container_path.trim_end_matches('/'))
        .collect();
    let fail = |detail: String, hint: &str| {
        Some(
            Check::new(
                &name,
                Some(&observed.name),
                Layer::Node,
                Status::Fail,
                detail,
            )
            .hint(hint),
        )
    };
    let Some(bind) = binds.first() else {
        // The host path is bound, but at another container path: the node was made
        // from a config whose `containerPath` differs from the plan's, so pods using
        // the planned path see an empty directory (kind creates neither side).
        let moved: Vec<&str> = observed
            .mounts
            .iter()
            .filter(|m| m.source.trim_end_matches('/') == host_path.trim_end_matches('/'))
            .map(|m| m.destination.as_str())
            .collect();
        if !moved.is_empty() {
            return fail(
                format!(
                    "{host_path} is bound at {} in the node container, not at {container_path}",
                    moved.join(", ")
                ),
                "the node was made with another containerPath; `devcluster up --recreate` rebuilds it from the profile",
            );
        }
        let elsewhere: Vec<&str> = all_nodes
            .iter()
            .filter(|n| {
                n.mounts.iter().any(|m| {
                    m.destination.trim_end_matches('/') == container_path.trim_end_matches('/')
                })
            })
            .map(|n| n.name.as_str())
            .collect();
        let detail = if elsewhere.is_empty() {
            format!("the node container has no bind at {container_path}")
        } else {
            format!(
                "the node container has no bind at {container_path}; it is mounted on {} only",
                elsewhere.join(", ")
            )
        };
        return fail(
            detail,
            "extraMounts are per node: declare the mount on every node its pods may run on (mounts[].nodes), then `devcluster up --recreate`",
        );
    };
    if bind.source != host_path {
        return fail(
            format!(
                "{container_path} is bound from {}, not {host_path}",
                bind.source
            ),
            "the node was made from another config; `devcluster up --recreate` rebuilds it from the profile",
        );
    }
    if bind.read_only != read_only {
        return fail(
            format!(
                "{container_path} is {} in the node, the profile says {}",
                if bind.read_only {
                    "read-only"
                } else {
                    "read-write"
                },
                if read_only { "read-only" } else { "read-write" }
            ),
            "`devcluster up --recreate` rebuilds the node from the profile",
        );
    }
    None
}

/// Turns a probe's exit code and output into a check for `layer`.
pub fn judge(
    probe: &MountProbe,
    layer: Layer,
    node: &str,
    exit_code: i64,
    output: &str,
    host_path: &Path,
) -> Check {
    let name = format!("mount {}", probe.path);
    let said = output
        .lines()
        .rev()
        .find(|l| l.starts_with("devcluster: "))
        .map(|l| l.trim_start_matches("devcluster: ").to_string())
        .unwrap_or_else(|| output.trim().to_string());
    let check = |status, detail: String| Check::new(&name, Some(node), layer, status, detail);
    let where_ = if layer == Layer::Node {
        "the node container"
    } else {
        "the pod"
    };
    match exit_code {
        0 => {
            if !probe.file && !probe.read_only && !host_sees_reply(host_path, probe, layer, node) {
                return check(Status::Fail, format!("{where_} wrote a reply the host does not see"))
                    .hint("the bind is not the host directory (Docker Desktop file sharing, or a stale node); `devcluster up --recreate`");
            }
            let what = match (probe.file, probe.read_only) {
                (true, true) => "file visible, writes refused",
                (true, false) => "file visible and writable",
                (false, true) => "sentinel visible, writes refused (read-only)",
                (false, false) => "sentinel visible, reply reached the host",
            };
            check(Status::Ok, what.to_string())
        }
        MISSING_PATH => check(Status::Fail, format!("{where_} has no {} at {}", if probe.file { "file" } else { "directory" }, probe.path)).hint(
            if layer == Layer::Node {
                "the bind is missing in the node container; `devcluster up --recreate`"
            } else {
                "the pod's hostPath does not match the node's containerPath, or the pod ran on another node"
            },
        ),
        MISSING_SENTINEL | WRONG_CONTENT => check(
            Status::Fail,
            format!("{where_} sees {} but not the host's sentinel ({said})", probe.path),
        )
        .hint(if layer == Layer::Node {
            "the node's bind does not show the host directory: on Docker Desktop add it under Settings > Resources > File sharing; otherwise recreate the cluster"
        } else {
            "the node sees the host path but the pod does not: check the pod's hostPath equals the mount's containerPath and the pod is on this node"
        }),
        WROTE_READ_ONLY => check(Status::Fail, format!("{where_} could write to a mount the profile makes read-only"))
            .hint("the bind lacks `ro`; `devcluster up --recreate`"),
        WRITE_DENIED => check(Status::Fail, format!("{where_} cannot write: {said}"))
            .hint("permissions: the host directory's owner or mode keeps the container's user out (try `chmod a+rwx` on a scratch directory)"),
        other => check(Status::Fail, format!("the probe ended with exit code {other}: {said}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_quotes_paths_and_writes_replies_named_per_node() {
        let probe = MountProbe {
            path: "/data/it's".into(),
            file: false,
            read_only: false,
            token: "abc".into(),
            first_line: None,
        };
        let script = probe.script(Layer::Pod, "n1");
        assert!(script.contains("'/data/it'\\''s'"), "{script}");
        assert!(script.contains(".devcluster-abc-pod-n1"), "{script}");
        assert!(script.contains("exit 11"), "{script}");
    }
}
