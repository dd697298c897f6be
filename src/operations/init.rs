//! `devcluster init`: a `devcluster.yaml` for the current repository, from answers
//! (asked on a terminal by the command line, or given as flags), validated as
//! `devcluster plan` would before it is written.

use std::path::{Path, PathBuf};

use crate::core::error::{Error, Result};
use crate::core::profile::{self, source};
use crate::operations::context::App;

/// The file `init` writes and every command looks for.
pub const FILE_NAME: &str = source::PROJECT_FILE;

/// A directory of the repository to mount into the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitMount {
    /// Relative to the profile's directory (or absolute).
    pub host_path: String,
    pub container_path: String,
    pub read_only: bool,
}

/// A host port published by the ingress node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitPort {
    pub host_port: u16,
    pub container_port: u16,
}

/// The answers `init` writes a profile from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitAnswers {
    /// A built-in profile to extend.
    pub base: String,
    /// The cluster name.
    pub name: String,
    /// Workers, when not the base profile's.
    pub workers: Option<u32>,
    pub mounts: Vec<InitMount>,
    pub ports: Vec<InitPort>,
}

/// Where and whether to write.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub answers: InitAnswers,
    /// The directory to write `devcluster.yaml` into.
    pub dir: PathBuf,
    /// Replace an existing file.
    pub force: bool,
}

/// What `init` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitReport {
    pub path: PathBuf,
    pub cluster: String,
    pub text: String,
}

/// The directory `init` writes into: the root of the Git repository the working
/// directory is in, else the working directory.
pub fn project_dir(cwd: &Path) -> PathBuf {
    cwd.ancestors()
        .find(|dir| dir.join(".git").exists())
        .unwrap_or(cwd)
        .to_path_buf()
}

/// A cluster name from a directory name: lower case, `[a-z0-9.-]` only, at most 48
/// characters; `devcluster` when nothing is left.
pub fn default_name(dir: &Path) -> String {
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_matches(|c| c == '-' || c == '.').to_string();
    name.truncate(48);
    let name = name.trim_end_matches(['-', '.']).to_string();
    if name.is_empty() {
        "devcluster".to_string()
    } else {
        name
    }
}

/// `text` as one YAML scalar, written by the same YAML writer as the rest of
/// devcluster: plain when it reads back as the same string, else quoted.
fn scalar(text: &str) -> String {
    crate::core::yaml::to_string(&text)
        .map(|yaml| yaml.trim_end().to_string())
        .unwrap_or_else(|_| serde_json::Value::String(text.to_string()).to_string())
}

/// The profile text for `answers`: deterministic, commented, and extending a
/// built-in profile so the built-in's defaults stay visible in one place.
pub fn render(answers: &InitAnswers) -> String {
    let mut out = String::new();
    out.push_str("# devcluster profile: `devcluster plan` shows the kind config it becomes,\n");
    out.push_str("# `devcluster up` creates the cluster. Fields: `devcluster schema`.\n");
    out.push_str("apiVersion: devcluster.dev/v1alpha1\nkind: Profile\n");
    out.push_str(&format!("extends: {}\n", scalar(&answers.base)));
    out.push_str(&format!("name: {}\n", scalar(&answers.name)));
    if let Some(workers) = answers.workers {
        out.push_str(&format!("nodes:\n  workers: {workers}\n"));
    }
    if !answers.mounts.is_empty() {
        out.push_str("mounts:\n");
        for mount in &answers.mounts {
            out.push_str(&format!(
                "  - hostPath: {}            # relative to this file\n",
                scalar(&mount.host_path)
            ));
            out.push_str(&format!(
                "    containerPath: {}\n",
                scalar(&mount.container_path)
            ));
            if mount.read_only {
                out.push_str("    readOnly: true\n");
            }
        }
    }
    if !answers.ports.is_empty() {
        out.push_str("ports:\n");
        for port in &answers.ports {
            out.push_str(&format!(
                "  - containerPort: {}\n    hostPort: {}\n",
                port.container_port, port.host_port
            ));
        }
    }
    out
}

/// Writes the profile after checking it plans, and only when no file is there or
/// `force` is set. Nothing is written when the answers do not make a valid profile.
pub fn run(app: &App, options: &InitOptions) -> Result<InitReport> {
    if profile::builtin(&options.answers.base).is_none() {
        let names: Vec<&str> = profile::BUILTIN_PROFILES.iter().map(|p| p.name).collect();
        return Err(Error::input(format!(
            "no built-in profile named `{}`",
            options.answers.base
        ))
        .hint(format!("pick one of: {}", names.join(", "))));
    }
    let path = options.dir.join(FILE_NAME);
    if path.exists() && !options.force {
        return Err(Error::input(format!("{} already exists", path.display()))
            .hint("`devcluster init --force` replaces it; `devcluster plan` shows what it makes"));
    }
    let text = render(&options.answers);
    // Checked as `devcluster plan` reads it: from a file beside the target, so
    // relative host paths resolve against the same directory.
    let draft = tempfile::Builder::new()
        .prefix(".devcluster-init-")
        .suffix(".yaml")
        .tempfile_in(&options.dir)
        .map_err(|e| {
            Error::failed(format!("cannot write in {}", options.dir.display())).cause(e)
        })?;
    std::fs::write(draft.path(), &text)
        .map_err(|e| Error::failed(format!("cannot write {}", draft.path().display())).cause(e))?;
    let draft_path = draft.path().display().to_string();
    let (_, plan) = app.plan(Some(&draft_path), None).map_err(|mut e| {
        // The problems point into the draft; name the file the user will have.
        let target: std::sync::Arc<str> = path.display().to_string().into();
        for problem in &mut e.problems {
            if problem.file.as_deref() == Some(draft_path.as_str()) {
                problem.file = Some(target.clone());
            }
        }
        e.context("the answers do not make a valid profile; nothing was written")
    })?;
    // A project file, to be committed: readable by everyone, like the checkout.
    set_mode(draft.path(), 0o644)?;
    draft
        .persist(&path)
        .map_err(|e| Error::failed(format!("cannot write {}", path.display())).cause(e.error))?;
    Ok(InitReport {
        path,
        cluster: plan.name,
        text,
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::failed(format!("cannot set the mode of {}", path.display())).cause(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> InitAnswers {
        InitAnswers {
            base: "multi".into(),
            name: "shop".into(),
            workers: Some(1),
            mounts: vec![InitMount {
                host_path: "./src".into(),
                container_path: "/src".into(),
                read_only: true,
            }],
            ports: vec![InitPort {
                host_port: 8080,
                container_port: 30080,
            }],
        }
    }

    #[test]
    fn the_profile_is_decoded_back_to_the_answers() {
        let text = render(&answers());
        let Ok(decoded) = profile::Profile::decode(&text) else {
            panic!("the rendered profile does not decode:\n{text}");
        };
        assert_eq!(
            decoded.extends.as_ref().map(|e| e.value.as_str()),
            Some("multi")
        );
        assert_eq!(
            decoded.name.as_ref().map(|n| n.value.as_str()),
            Some("shop")
        );
        assert_eq!(decoded.mounts.len(), 1);
        assert_eq!(decoded.ports.len(), 1);
        assert!(text.contains("readOnly: true"), "{text}");
    }

    #[test]
    fn odd_paths_are_quoted_and_read_back() {
        let mut answers = answers();
        answers.mounts[0].host_path = "./my dir: #1".into();
        let text = render(&answers);
        assert!(text.contains("hostPath: \"./my dir: #1\""), "{text}");
        assert!(profile::Profile::decode(&text).is_ok(), "{text}");
    }

    #[test]
    fn names_come_from_the_directory() {
        assert_eq!(default_name(Path::new("/src/My_Shop")), "my-shop");
        assert_eq!(default_name(Path::new("/src/__")), "devcluster");
        assert_eq!(default_name(Path::new("/")), "devcluster");
        assert_eq!(default_name(Path::new(&"a".repeat(60))).len(), 48);
    }
}
