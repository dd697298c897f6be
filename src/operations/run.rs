//! `devcluster run -- CMD`: a proven cluster for one command. The cluster is brought
//! up (or reused), verified, and handed to CMD through a kubeconfig of its own; a
//! failing CMD leaves a bundle behind; a cluster this run created is deleted after
//! it unless asked to keep it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::core::check::{Check, Layer, Status};
use crate::core::error::{Error, Result};
use crate::core::plan::ClusterPlan;
use crate::operations::context::App;
use crate::operations::down::{self, DownOptions};
use crate::operations::interrupt::Interrupt;
use crate::operations::up::{self, UpOptions};
use crate::operations::verify::{self, VerifyOptions, report::Report};

/// How long CMD has to exit after devcluster passes on an interruption, before it
/// is killed.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What `devcluster run` is asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How to bring the cluster up: profile, name, deadlines, images. Its
    /// `kubeconfig` is ignored: CMD always gets a kubeconfig of its own.
    pub up: UpOptions,
    /// Keep a cluster this run created.
    pub keep: bool,
    /// Where the failure bundle goes when CMD fails (default
    /// `devcluster-run-bundle` in the working directory).
    pub bundle: Option<PathBuf>,
    /// The command and its arguments.
    pub command: Vec<OsString>,
    pub interrupt: Interrupt,
}

/// How CMD ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CommandEnd {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signalled(i32),
}

impl CommandEnd {
    /// The exit code a shell would show: the code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            CommandEnd::Exited(code) => code,
            CommandEnd::Signalled(signal) => 128 + signal,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub cluster: String,
    /// The cluster was there before this run (it is never deleted then).
    pub existed: bool,
    /// The cluster is still there after the run.
    pub kept: bool,
    /// The proof of the cluster, from inside its pods, before CMD ran.
    pub verify: Report,
    /// How CMD ended.
    pub command: CommandEnd,
    /// Where the failure bundle was written, when CMD failed.
    pub bundle: Option<PathBuf>,
}

impl RunReport {
    /// The verification's checks and one for `command`, for a JUnit report.
    pub fn checks(&self, command: &[OsString]) -> Report {
        with_command(&self.verify, command, Some(self.command))
    }
}

/// `proof`'s checks followed by one row for the command (`None`: it did not finish).
fn with_command(proof: &Report, command: &[OsString], end: Option<CommandEnd>) -> Report {
    let mut checks = proof.clone();
    checks.checks.push(command_check(command, end));
    checks
}

/// A run that could not give CMD a proven cluster, or was interrupted.
#[derive(Debug)]
pub struct RunFailure {
    pub error: Error,
    /// The checks so far (the verification's), for a JUnit report.
    pub checks: Report,
}

impl From<Error> for RunFailure {
    fn from(error: Error) -> RunFailure {
        RunFailure {
            error,
            checks: Report::default(),
        }
    }
}

/// Brings the cluster up, proves it, runs CMD, cleans up.
pub async fn run(app: &App, options: &RunOptions) -> std::result::Result<RunReport, RunFailure> {
    let program = options
        .command
        .first()
        .ok_or_else(|| Error::input("no command to run").hint("`devcluster run -- make test`"))?;
    let scratch = tempfile::Builder::new()
        .prefix("devcluster-run-")
        .tempdir()
        .map_err(|e| Error::failed("cannot make a directory for the kubeconfig").cause(e))?;
    let kubeconfig = scratch.path().join("kubeconfig");
    let up_options = UpOptions {
        kubeconfig: Some(kubeconfig.clone()),
        // This run proves the cluster itself, to put the proof in its report.
        no_verify: true,
        ..options.up.clone()
    };
    let deps = up::Deps {
        interrupt: options.interrupt.clone(),
        ..up::Deps::default()
    };
    let result = up::run_up(app, &up_options, &deps).await?;
    let existed = result.action != "created";
    let plan = result.plan;
    let verify_options = VerifyOptions {
        probe_image: options.up.probe_image.clone(),
        echo_image: options.up.echo_image.clone(),
        pull_policy: options.up.image_pull_policy.map(|p| p.as_str().to_string()),
        interrupt: options.interrupt.clone(),
        ..VerifyOptions::new(Instant::now() + options.up.timeout)
    };
    // The kubeconfig `up` just wrote: no second `kind get kubeconfig`.
    let kubeconfig_text = std::fs::read_to_string(&kubeconfig).map_err(|e| {
        Error::failed(format!(
            "cannot read the kubeconfig {}",
            kubeconfig.display()
        ))
        .cause(e)
    })?;
    let proof = verify::verify_cluster(app, &plan, Some(&kubeconfig_text), &verify_options).await?;
    if proof.failed() {
        let error = Error::failed(format!(
            "cluster `{}` did not pass verification; the command did not run",
            plan.name
        ))
        .details(proof.summary())
        .hint(format!(
            "`devcluster verify --name {}` shows the failing checks; `devcluster down --name {}` deletes the cluster",
            plan.name, plan.name
        ));
        return Err(RunFailure {
            error,
            checks: proof,
        });
    }
    app.ui.line(&format!(
        "✓ cluster `{}` proven ({}); running {}",
        plan.name,
        proof.summary(),
        describe(&options.command)
    ));
    let end = run_command(
        program,
        &options.command[1..],
        &kubeconfig,
        &options.interrupt,
    )
    .await;
    let end = match end {
        Ok(end) => end,
        Err(error) => {
            let kept = finish(app, options, &plan, existed).await;
            let error = if kept {
                error
            } else {
                error.cause(format!("cluster `{}` was deleted", plan.name))
            };
            return Err(RunFailure {
                error,
                checks: with_command(&proof, &options.command, None),
            });
        }
    };
    let bundle = if end == CommandEnd::Exited(0) {
        None
    } else {
        let dir = options
            .bundle
            .clone()
            .unwrap_or_else(|| app.world.cwd.join("devcluster-run-bundle"));
        match write_bundle(app, &dir, &plan, &proof, &options.interrupt).await {
            Ok(()) => {
                app.ui
                    .line(&format!("the failure bundle is in {}", dir.display()));
                Some(dir)
            }
            Err(e) => {
                app.ui.line(&format!(
                    "! cannot write the failure bundle to {}: {e}",
                    dir.display()
                ));
                None
            }
        }
    };
    let kept = finish(app, options, &plan, existed).await;
    Ok(RunReport {
        cluster: plan.name.clone(),
        existed,
        kept,
        verify: proof,
        command: end,
        bundle,
    })
}

fn describe(command: &[OsString]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    format!("`{}`", crate::core::error::shell_quote(&words))
}

/// The command as one row of the report.
fn command_check(command: &[OsString], end: Option<CommandEnd>) -> Check {
    let (status, detail) = match end {
        Some(CommandEnd::Exited(0)) => (Status::Ok, "exited 0".to_string()),
        Some(CommandEnd::Exited(code)) => (Status::Fail, format!("exited {code}")),
        Some(CommandEnd::Signalled(signal)) => (Status::Fail, format!("ended by signal {signal}")),
        None => (Status::Fail, "did not finish".to_string()),
    };
    Check::new(
        &format!("command {}", describe(command)),
        None,
        Layer::Host,
        status,
        detail,
    )
}

/// Runs CMD with `KUBECONFIG` set to this cluster's alone, its output streamed. On
/// an interruption CMD is asked to stop (SIGTERM), then killed after
/// [`STOP_GRACE`], and the run ends as interrupted.
async fn run_command(
    program: &OsString,
    args: &[OsString],
    kubeconfig: &Path,
    interrupt: &Interrupt,
) -> Result<CommandEnd> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::input(format!("cannot run `{}`", program.to_string_lossy()))
                .cause(e)
                .hint("check the command after `--` is installed and on PATH")
        })?;
    let status = tokio::select! {
        status = child.wait() => status,
        why = interrupt.wait() => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
            return Err(Error::interrupted(format!("the command was stopped by {why}")));
        }
    }
    .map_err(|e| Error::failed("cannot wait for the command").cause(e))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => CommandEnd::Exited(code),
        (None, Some(signal)) => CommandEnd::Signalled(signal),
        (None, None) => CommandEnd::Exited(1),
    })
}

/// Deletes the cluster when this run created it and was not asked to keep it.
/// Returns whether the cluster is still there.
async fn finish(app: &App, options: &RunOptions, plan: &ClusterPlan, existed: bool) -> bool {
    if existed || options.keep {
        if existed {
            app.ui.line(&format!(
                "cluster `{}` was there before this run; it stays",
                plan.name
            ));
        }
        return true;
    }
    let down = DownOptions {
        profile: crate::operations::ProfileChoice {
            profile: None,
            name: Some(plan.name.clone()),
        },
        all: false,
        kubeconfig: None,
    };
    match down::run_down(app, &down).await {
        Ok(()) => false,
        Err(error) => {
            app.ui.line(&format!(
                "! cannot delete cluster `{}`: {}; `devcluster down --name {}` deletes it",
                plan.name, error.message, plan.name
            ));
            true
        }
    }
}

/// What is needed to debug a failed command: the plan and kind config, every node
/// as Docker inspects it, `kind export logs`, and the verification's report.
async fn write_bundle(
    app: &App,
    dir: &Path,
    plan: &ClusterPlan,
    proof: &Report,
    interrupt: &Interrupt,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("verify.json"),
        serde_json::to_string_pretty(proof).unwrap_or_default(),
    )?;
    let docker = app.docker().await.ok();
    let nodes = match &docker {
        Some(docker) => docker
            .list_nodes(Some(&plan.name))
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    verify::bundle::cluster_files(dir, Some(plan), docker.as_ref(), &nodes).await?;
    verify::bundle::node_logs(
        app.cluster_provider(),
        &plan.name,
        dir,
        verify::bundle::EXPORT_LOGS_LIMIT,
        interrupt,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_is_the_commands_or_128_plus_its_signal() {
        assert_eq!(CommandEnd::Exited(0).code(), 0);
        assert_eq!(CommandEnd::Exited(3).code(), 3);
        assert_eq!(CommandEnd::Signalled(15).code(), 143);
    }

    #[test]
    fn the_command_is_a_row_of_the_report() {
        let command: Vec<OsString> = ["sh", "-c", "exit 3"].map(OsString::from).to_vec();
        let row = command_check(&command, Some(CommandEnd::Exited(3)));
        assert_eq!(row.status, Status::Fail);
        assert_eq!(row.name, "command `sh -c 'exit 3'`");
        assert_eq!(row.detail, "exited 3");
        assert_eq!(
            command_check(&command, Some(CommandEnd::Exited(0))).status,
            Status::Ok
        );
    }
}
