//! The pure core: what a profile says, what it plans to, and what kind is told.
//! Nothing here does I/O beyond reading profile files, and nothing here knows about
//! Docker, kind, Kubernetes clients or the command line.

pub mod check;
pub mod diagnostic;
pub mod error;
pub mod kindconfig;
pub mod paths;
pub mod plan;
pub mod profile;
pub mod record;
pub mod yaml;

#[cfg(test)]
mod purity {
    use std::path::{Path, PathBuf};

    /// The paths of crates and std modules that reach outside the process or
    /// belong to another layer: none may appear in the core's code.
    const FOREIGN: &[&str] = &["tokio::", "clap::", "bollard::", "kube::", "k8s_openapi::"];
    /// I/O the core does not do, except where it reads profile files.
    const IO: &[&str] = &[
        "std::fs",
        "std::env",
        "std::process",
        "std::net::Tcp",
        "std::time",
    ];
    const READS_PROFILES: &str = "profile/source.rs";

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn the_core_names_no_outside_system_and_does_no_io_but_reading_profiles() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
        let mut files = Vec::new();
        sources(&root, &mut files);
        assert!(files.len() > 10, "{files:?}");
        let mut found = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{e}"));
            // Unit tests may read fixtures and run programs; the code above them may not.
            let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
            let name = file.strip_prefix(&root).unwrap_or(file).to_string_lossy();
            let io_allowed = name == READS_PROFILES;
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                let foreign = FOREIGN.iter().any(|p| line.contains(p));
                let io = !io_allowed && IO.iter().any(|p| line.contains(p));
                if foreign || io {
                    found.push(format!("{name}: {}", line.trim()));
                }
            }
        }
        assert!(found.is_empty(), "{found:#?}");
    }
}
