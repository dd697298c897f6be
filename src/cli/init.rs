//! `devcluster init`'s flags and questions: the answers come from flags, then from
//! questions on a terminal, then from the defaults (`--yes`).

use std::path::PathBuf;

use clap::Args;

use crate::core::error::{Error, Result};
use crate::core::profile;
use crate::operations::context::App;
use crate::operations::init::{self, InitAnswers, InitMount, InitOptions, InitPort};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The built-in profile to extend (`devcluster profiles list`).
    #[arg(long, short = 'p', value_name = "NAME")]
    pub profile: Option<String>,
    /// Cluster name. Default: the repository's directory name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Worker nodes. Default: the base profile's.
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// A directory to mount into every node, `HOST:CONTAINER[:ro]` (repeatable);
    /// HOST is relative to the repository.
    #[arg(long = "mount", value_name = "HOST:CONTAINER[:ro]", value_parser = parse_mount)]
    pub mounts: Vec<InitMount>,
    /// A port the ingress node publishes on 127.0.0.1, `HOST:CONTAINER` (repeatable).
    #[arg(long = "port", value_name = "HOST:CONTAINER", value_parser = parse_port)]
    pub ports: Vec<InitPort>,
    /// Ask nothing: take the flags and the defaults.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Replace an existing `devcluster.yaml`.
    #[arg(long)]
    pub force: bool,
    /// Write into this directory. Default: the root of the Git repository, else the
    /// working directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

fn parse_mount(text: &str) -> std::result::Result<InitMount, String> {
    let (rest, read_only) = match text.strip_suffix(":ro") {
        Some(rest) => (rest, true),
        None => (text, false),
    };
    let (host, container) = rest
        .rsplit_once(':')
        .filter(|(h, c)| !h.is_empty() && c.starts_with('/'))
        .ok_or_else(|| {
            format!("`{text}` is not HOST:CONTAINER[:ro] with an absolute CONTAINER path")
        })?;
    Ok(InitMount {
        host_path: host.to_string(),
        container_path: container.to_string(),
        read_only,
    })
}

fn parse_port(text: &str) -> std::result::Result<InitPort, String> {
    let parsed = text
        .split_once(':')
        .and_then(|(h, c)| Some((h.parse::<u16>().ok()?, c.parse::<u16>().ok()?)))
        .filter(|(h, c)| *h > 0 && *c > 0);
    let (host_port, container_port) = parsed
        .ok_or_else(|| format!("`{text}` is not HOST:CONTAINER, two ports from 1 to 65535"))?;
    Ok(InitPort {
        host_port,
        container_port,
    })
}

impl InitArgs {
    fn given(&self) -> bool {
        self.profile.is_some()
            || self.name.is_some()
            || self.workers.is_some()
            || !self.mounts.is_empty()
            || !self.ports.is_empty()
    }
}

/// Collects the answers, then writes through [`init::run`].
pub fn run(app: &App, args: &InitArgs) -> Result<init::InitReport> {
    let dir = match &args.dir {
        Some(dir) => app.world.cwd.join(dir),
        None => init::project_dir(&app.world.cwd),
    };
    let ask = !args.yes && app.world.can_prompt();
    if !ask && !args.yes && !args.given() {
        return Err(Error::input("`devcluster init` has no terminal to ask its questions on")
            .hint("pass `--yes` to take the defaults, with `--profile`, `--name`, `--mount` and `--port` for the rest"));
    }
    let mut answers = InitAnswers {
        base: args.profile.clone().unwrap_or_else(|| "single".to_string()),
        name: args
            .name
            .clone()
            .unwrap_or_else(|| init::default_name(&dir)),
        workers: args.workers,
        mounts: args.mounts.clone(),
        ports: args.ports.clone(),
    };
    if ask {
        ask_questions(args, &mut answers).map_err(|e| {
            Error::failed("cannot read the answers from the terminal")
                .cause(e)
                .hint("pass `--yes` with flags to answer without questions")
        })?;
    }
    init::run(
        app,
        &InitOptions {
            answers,
            dir,
            force: args.force,
        },
    )
}

/// Asks what the flags left open.
fn ask_questions(
    args: &InitArgs,
    answers: &mut InitAnswers,
) -> std::result::Result<(), dialoguer::Error> {
    use dialoguer::{Confirm, Input, Select};
    if args.profile.is_none() {
        let names: Vec<String> = profile::BUILTIN_PROFILES
            .iter()
            .map(|p| format!("{:10} {}", p.name, p.description()))
            .collect();
        let chosen = Select::new()
            .with_prompt("Base profile")
            .items(&names)
            .default(0)
            .interact()?;
        answers.base = profile::BUILTIN_PROFILES[chosen].name.to_string();
    }
    if args.name.is_none() {
        answers.name = Input::new()
            .with_prompt("Cluster name")
            .default(answers.name.clone())
            .interact_text()?;
    }
    if args.workers.is_none() {
        let workers: String = Input::new()
            .with_prompt("Worker nodes (empty: the base profile's)")
            .allow_empty(true)
            .validate_with(|text: &String| {
                if text.is_empty() || text.parse::<u32>().is_ok() {
                    Ok(())
                } else {
                    Err("a number, or empty")
                }
            })
            .interact_text()?;
        answers.workers = workers.parse().ok();
    }
    if args.mounts.is_empty() {
        loop {
            let host: String = Input::new()
                .with_prompt("Directory to mount into the nodes (relative to the repository; empty: no more)")
                .allow_empty(true)
                .interact_text()?;
            if host.is_empty() {
                break;
            }
            let leaf = std::path::Path::new(&host)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "workspace".to_string());
            let container: String = Input::new()
                .with_prompt("  at this path in the nodes")
                .default(format!("/{leaf}"))
                .validate_with(|text: &String| {
                    if text.starts_with('/') {
                        Ok(())
                    } else {
                        Err("an absolute path")
                    }
                })
                .interact_text()?;
            let read_only = Confirm::new()
                .with_prompt("  read-only?")
                .default(false)
                .interact()?;
            answers.mounts.push(InitMount {
                host_path: host,
                container_path: container,
                read_only,
            });
        }
    }
    if args.ports.is_empty() {
        loop {
            let port: String = Input::new()
                .with_prompt("Host port to publish, HOST:CONTAINER (empty: no more)")
                .allow_empty(true)
                .validate_with(|text: &String| {
                    if text.is_empty() {
                        Ok(())
                    } else {
                        parse_port(text).map(|_| ())
                    }
                })
                .interact_text()?;
            match parse_port(&port) {
                Ok(port) => answers.ports.push(port),
                Err(_) => break,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_and_ports_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_mount("./src:/src:ro"),
            Ok(InitMount {
                host_path: "./src".into(),
                container_path: "/src".into(),
                read_only: true
            })
        );
        assert!(parse_mount(".:/workspace").is_ok_and(|m| !m.read_only));
        assert!(parse_mount("./src").is_err());
        assert!(parse_mount("./src:relative").is_err());
        assert_eq!(
            parse_port("8080:30080"),
            Ok(InitPort {
                host_port: 8080,
                container_port: 30080
            })
        );
        assert!(parse_port("0:80").is_err());
        assert!(parse_port("80").is_err());
        assert!(parse_port("99999:80").is_err());
    }
}
