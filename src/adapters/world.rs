//! The outside world as devcluster sees it: environment, working directory, home,
//! terminals. Read once at start-up and passed down, so tests can set it.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

/// A snapshot of the process's surroundings.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
    pub stdin_is_terminal: bool,
    pub stderr_is_terminal: bool,
}

impl World {
    pub fn from_process() -> World {
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let home = env
            .get("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(std::env::home_dir);
        World {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            home,
            stdin_is_terminal: std::io::stdin().is_terminal(),
            stderr_is_terminal: std::io::stderr().is_terminal(),
            env,
        }
    }

    /// A non-empty environment variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Running under CI (`CI` set to anything but `false`/`0`).
    pub fn is_ci(&self) -> bool {
        self.var("CI").is_some_and(|v| v != "false" && v != "0")
    }

    /// Colour on stderr: a terminal, no `NO_COLOR`, not `TERM=dumb`.
    pub fn color(&self) -> bool {
        self.stderr_is_terminal
            && self.var("NO_COLOR").is_none()
            && self.var("TERM") != Some("dumb")
    }

    /// Spinners and prompts: a terminal on stderr (and stdin for prompts), not CI.
    pub fn interactive(&self) -> bool {
        self.stderr_is_terminal && !self.is_ci() && self.var("TERM") != Some("dumb")
    }

    /// Whether a question can be asked and answered.
    pub fn can_prompt(&self) -> bool {
        self.interactive() && self.stdin_is_terminal
    }

    /// The user's cache directory for devcluster's downloads.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if let Some(xdg) = self.var("XDG_CACHE_HOME") {
            return Some(PathBuf::from(xdg).join("devcluster"));
        }
        let home = self.home.as_ref()?;
        if cfg!(target_os = "macos") {
            Some(home.join("Library/Caches/devcluster"))
        } else {
            Some(home.join(".cache/devcluster"))
        }
    }
}
