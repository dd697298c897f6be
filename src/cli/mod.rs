//! The command line: flags, dispatch, output formats, signals, and the one place
//! errors and reports become exit codes.

pub mod init;
pub mod signals;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::adapters::world::World;
use crate::core::error::{Error, ExitCode, Result};
use crate::core::kindconfig;
use crate::core::profile;
use crate::operations::context::App;
use crate::operations::doctor;
use crate::operations::down::{self, DownOptions};
use crate::operations::list;
use crate::operations::load;
use crate::operations::run;
use crate::operations::status;
use crate::operations::up::{self, UpOptions};
use crate::operations::verify;
use crate::operations::{MAX_DURATION, ProfileChoice};

#[derive(Debug, Parser)]
#[command(
    name = "devcluster",
    version,
    about = "Local Kubernetes clusters on kind, correct by construction and proven from inside real pods",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create (or reuse) the cluster a profile describes, then verify it.
    Up(UpArgs),
    /// Delete a cluster devcluster created.
    Down(DownArgs),
    /// Show a cluster's nodes, mounts and ports as Docker sees them, and any drift.
    Status(StatusArgs),
    /// List the clusters devcluster created, with their state and profile.
    List {
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: Output,
    },
    /// Prove mounts, subPath, storage, ports, ingress routes and the registry from inside real pods.
    Verify(VerifyArgs),
    /// Check this machine before creating a cluster.
    Doctor(DoctorArgs),
    /// Print the kind config a profile turns into.
    Plan(PlanArgs),
    /// List or show the built-in profiles.
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// Print the JSON Schema of the profile format.
    Schema,
    /// Write a `devcluster.yaml` for this repository, asking on a terminal.
    Init(init::InitArgs),
    /// Bring a proven cluster up for one command, run it, then clean up.
    Run(RunArgs),
    /// Put local Docker images on every node of the cluster, then prove each runs
    /// there without a pull.
    Load(LoadArgs),
    /// Print a shell completion script (`bash`, `zsh`, `fish`, `powershell`, `elvish`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Output format for commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Human-readable (YAML for `plan`).
    #[default]
    Text,
    /// JSON on stdout, stable for scripts.
    Json,
}

#[derive(Debug, Clone, Args, Default)]
pub struct ProfileArgs {
    /// A built-in profile name or a profile file. Default: `devcluster.yaml` in this
    /// directory or a parent, else `single`.
    #[arg(long, short = 'p', value_name = "NAME|PATH")]
    pub profile: Option<String>,
    /// Cluster name, overriding the profile's.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// `text` prints the kind config YAML; `json` prints the plan.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// List the built-in profiles.
    List,
    /// Print a built-in profile's YAML.
    Show {
        /// Profile name, e.g. `ingress`.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Delete and recreate the cluster when it differs from the plan (or has no
    /// devcluster record).
    #[arg(long)]
    pub recreate: bool,
    /// Keep the nodes of a failed create for debugging.
    #[arg(long)]
    pub retain: bool,
    /// Skip the verification step.
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub make: MakeArgs,
    /// How long to wait for another devcluster run on the same cluster to finish.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Write the cluster's kubeconfig here only; the user's kubeconfig is left alone.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Answer yes to the recreate question.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Output,
}

/// How `up` and `run` make and prove a cluster.
#[derive(Debug, Clone, Args)]
pub struct MakeArgs {
    /// One deadline for waiting on nodes, add-ons and verification, e.g. `5m`, `90s`.
    /// It starts when `kind create cluster` returns.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_deadline)]
    pub timeout: std::time::Duration,
    /// How long `kind create cluster` may take (a cold first run pulls a large node
    /// image).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_deadline)]
    pub create_timeout: std::time::Duration,
    /// Download the pinned kind release into the cache when kind is missing.
    #[arg(long)]
    pub install_kind: bool,
    /// Image for verify's probe pods. Default on kind: the image preloaded on the nodes.
    #[arg(long, value_name = "IMAGE")]
    pub probe_image: Option<String>,
    /// Pull policy for verify's probe and echo images.
    #[arg(long, value_enum)]
    pub image_pull_policy: Option<PullPolicy>,
    /// Image for verify's echo backend (needs busybox's `httpd`). Default:
    /// `--probe-image`, else a pinned busybox.
    #[arg(long, value_name = "IMAGE")]
    pub echo_image: Option<String>,
}

impl MakeArgs {
    /// `up`'s options with these flags and the rest at their defaults.
    fn up_options(&self, profile: &ProfileArgs) -> UpOptions {
        UpOptions {
            profile: profile.choice(),
            timeout: self.timeout,
            create_timeout: self.create_timeout,
            install_kind: self.install_kind,
            probe_image: self.probe_image.clone(),
            image_pull_policy: self.image_pull_policy.map(Into::into),
            echo_image: self.echo_image.clone(),
            ..UpOptions::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Cluster name. Default: the profile's (see `--profile`).
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Delete every cluster devcluster created.
    #[arg(long)]
    pub all: bool,
    /// Write nothing to the user's kubeconfig; clean this one instead.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Verify the cluster this kubeconfig reaches (default: `KUBECONFIG`, then
    /// `~/.kube/config`), even one devcluster did not create.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// A host path to prove from pods on nodes that run on this machine (repeatable).
    #[arg(long = "host-path", value_name = "PATH")]
    pub host_paths: Vec<PathBuf>,
    /// The StorageClass to prove. Default: the cluster's default class.
    #[arg(long, value_name = "NAME")]
    pub storage_class: Option<String>,
    /// Image for probe pods. Default on kind: the image preloaded on the nodes.
    #[arg(long, value_name = "IMAGE")]
    pub probe_image: Option<String>,
    /// Pull policy for the probe image.
    #[arg(long, value_enum)]
    pub image_pull_policy: Option<PullPolicy>,
    /// Image for the echo backend behind the ingress and NodePort checks (needs
    /// busybox's `httpd`). Default: `--probe-image`, else a pinned busybox.
    #[arg(long, value_name = "IMAGE")]
    pub echo_image: Option<String>,
    /// One deadline for every probe.
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = parse_deadline)]
    pub timeout: std::time::Duration,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// On failure, collect a debugging bundle here (automatic under CI).
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Keep the cluster after the command, even one this run created.
    #[arg(long)]
    pub keep: bool,
    /// Write a JUnit XML report here: the cluster's verification and the command.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Where the failure bundle goes when the command fails.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    #[command(flatten)]
    pub make: MakeArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Images in the local Docker engine, e.g. `my-app:dev`.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Skip the proof (an `imagePullPolicy: Never` pod per node and image).
    #[arg(long)]
    pub no_verify: bool,
    /// One deadline for the imports and the proof.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_deadline)]
    pub timeout: std::time::Duration,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Output,
}

/// `devcluster run`'s exit code when it could not give the command a proven cluster
/// (as `docker run` uses 125 for its own failures), so it never reads as the
/// command's.
pub const RUN_FAILED: i32 = 125;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl From<PullPolicy> for crate::operations::PullPolicy {
    fn from(policy: PullPolicy) -> Self {
        match policy {
            PullPolicy::Always => Self::Always,
            PullPolicy::IfNotPresent => Self::IfNotPresent,
            PullPolicy::Never => Self::Never,
        }
    }
}

impl ProfileArgs {
    pub fn choice(&self) -> ProfileChoice {
        ProfileChoice {
            profile: self.profile.clone(),
            name: self.name.clone(),
        }
    }
}

impl UpArgs {
    /// What `up` is asked to do, in the operation's own terms.
    pub fn options(&self) -> UpOptions {
        UpOptions {
            recreate: self.recreate,
            retain: self.retain,
            no_verify: self.no_verify,
            lock_timeout: self.lock_timeout,
            kubeconfig: self.kubeconfig.clone(),
            yes: self.yes,
            ..self.make.up_options(&self.profile)
        }
    }
}

impl VerifyArgs {
    fn request(&self) -> verify::Request {
        verify::Request {
            profile: self.profile.choice(),
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            // Relative paths are resolved by the operation, against the world's cwd.
            host_paths: self.host_paths.clone(),
            storage_class: self.storage_class.clone(),
            images: verify::Images {
                probe_image: self.probe_image.clone(),
                echo_image: self.echo_image.clone(),
                pull_policy: self.image_pull_policy.map(Into::into),
            },
            timeout: self.timeout,
            bundle: self.bundle.clone(),
            interrupt: signals::interrupt(),
        }
    }
}

/// Parses a duration as `humantime` does (`90s`, `5m`, `1h`, `1m30s`, `2h 15m`), or a
/// bare number of seconds. More than [`MAX_DURATION`] is refused (clap turns the
/// message into a usage error, exit 2).
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let text = text.trim();
    let parsed = match text.parse::<u64>() {
        Ok(seconds) => Ok(std::time::Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(text),
    };
    let duration =
        parsed.map_err(|e| format!("`{text}` is not a duration such as 90s, 5m or 1h ({e})"))?;
    if duration > MAX_DURATION {
        return Err(format!(
            "`{text}` is longer than the longest allowed, {}",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(duration)
}

/// A deadline for work that must get a chance to run: a duration as
/// [`parse_duration`] reads it, and not zero (a zero deadline fails every step
/// before it starts). `--lock-timeout 0` stays valid: it means "do not wait".
pub fn parse_deadline(text: &str) -> std::result::Result<std::time::Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "`{text}` is no time at all: give the work a deadline such as 90s or 5m"
        ));
    }
    Ok(duration)
}

/// Runs devcluster with these arguments in this world; returns the exit code.
pub fn run<I, T>(args: I, world: World) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::Success as i32
                }
                _ => ExitCode::Usage as i32,
            };
        }
    };
    let app = App::new(world);
    let result = dispatch(&app, cli.command);
    match result {
        Ok(code) => code,
        Err(error) => {
            app.ui.error(&error);
            error.exit_code() as i32
        }
    }
}

/// `devcluster run`: the command's exit code, or devcluster's own
/// ([`RUN_FAILED`], 2 for bad input, 130 when interrupted).
fn run_command(app: &App, args: &RunArgs) -> i32 {
    let options = run::RunOptions {
        up: args.make.up_options(&args.profile),
        keep: args.keep,
        bundle: args.bundle.clone(),
        command: args.command.clone(),
        interrupt: signals::interrupt(),
    };
    let outcome = match runtime() {
        Ok(runtime) => runtime.block_on(run::run(app, &options)),
        Err(error) => Err(error.into()),
    };
    let checks = match &outcome {
        Ok(report) => report.checks(&args.command),
        Err(failure) => failure.checks.clone(),
    };
    if let Some(path) = &args.junit
        && let Err(e) = std::fs::write(path, checks.junit("devcluster run"))
    {
        app.ui
            .error(&Error::failed(format!("cannot write {}", path.display())).cause(e));
    }
    match outcome {
        Ok(report) => report.command.code(),
        Err(failure) => {
            app.ui.error(&failure.error);
            match failure.error.kind {
                crate::core::error::ErrorKind::Input => ExitCode::Usage as i32,
                crate::core::error::ErrorKind::Interrupted => ExitCode::Interrupted as i32,
                crate::core::error::ErrorKind::Failed => RUN_FAILED,
            }
        }
    }
}

/// The command's exit code: an [`ExitCode`], or for `run` the command's own.
fn dispatch(app: &App, command: Command) -> Result<i32> {
    let outcome: Result<ExitCode> = match command {
        Command::Run(args) => return Ok(run_command(app, &args)),
        Command::Plan(args) => plan(app, &args),
        Command::Profiles(ProfilesCommand::List) => {
            profiles_list();
            Ok(ExitCode::Success)
        }
        Command::Profiles(ProfilesCommand::Show { name }) => profiles_show(&name),
        Command::Init(args) => {
            let report = init::run(app, &args)?;
            app.ui.line(&format!(
                "✓ wrote {} (cluster `{}`); next:",
                report.path.display(),
                report.cluster
            ));
            app.ui
                .line("  devcluster doctor   # check this machine against it");
            app.ui
                .line("  devcluster up       # create the cluster and verify it");
            Ok(ExitCode::Success)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "devcluster", &mut script);
            print_data(&String::from_utf8_lossy(&script));
            Ok(ExitCode::Success)
        }
        Command::Schema => {
            print_json(&profile::json_schema());
            Ok(ExitCode::Success)
        }
        Command::Doctor(args) => block_on(doctor_command(app, &args)),
        Command::Up(args) => block_on(up_command(app, &args)),
        Command::Down(args) => block_on(async {
            down::run_down(
                app,
                &DownOptions {
                    profile: args.profile.choice(),
                    all: args.all,
                    kubeconfig: args.kubeconfig.clone(),
                },
            )
            .await?;
            Ok(ExitCode::Success)
        }),
        Command::Status(args) => block_on(status_command(app, &args)),
        Command::List { output } => block_on(async {
            let list = list::run(app).await?;
            match output {
                Output::Json => print_json(&list),
                Output::Text if list.clusters.is_empty() => {
                    app.ui.line("no clusters created by devcluster")
                }
                Output::Text => app.ui.table(&list::table_rows(&list)),
            }
            if output == Output::Text && !list.others.is_empty() {
                app.ui.line(&format!(
                    "{} other kind cluster(s) not created by devcluster: {}",
                    list.others.len(),
                    list.others.join(", ")
                ));
            }
            Ok(ExitCode::Success)
        }),
        Command::Verify(args) => block_on(verify_command(app, &args)),
        Command::Load(args) => block_on(load_command(app, &args)),
    };
    outcome.map(|code| code as i32)
}

/// Success when no check failed.
fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::Failure
    } else {
        ExitCode::Success
    }
}

async fn up_command(app: &App, args: &UpArgs) -> Result<ExitCode> {
    let deps = up::Deps {
        interrupt: signals::interrupt(),
        ..up::Deps::default()
    };
    let result = up::run_up(app, &args.options(), &deps).await?;
    if args.output == Output::Json {
        print_json(&result);
    }
    Ok(ExitCode::Success)
}

async fn doctor_command(app: &App, args: &DoctorArgs) -> Result<ExitCode> {
    let checks = doctor::run(app, &args.profile.choice()).await?;
    match args.output {
        // The documented shape: `{"checks": [{name, status, detail, hint}]}`; every
        // check of this machine is on the host layer, so layer and node are left out.
        Output::Json => print_json(&serde_json::json!({
            "checks": checks
                .iter()
                .map(|c| serde_json::json!({
                    "name": c.name, "status": c.status, "detail": c.detail, "hint": c.hint,
                }))
                .collect::<Vec<_>>()
        })),
        Output::Text => app.ui.checks(&checks, crate::core::check::Columns::Host),
    }
    Ok(exit_code(checks.iter().any(doctor::Check::failed)))
}

async fn status_command(app: &App, args: &StatusArgs) -> Result<ExitCode> {
    let report = status::run(app, &args.profile.choice()).await?;
    match args.output {
        Output::Json => print_json(&report),
        Output::Text => status::print_human(app, &report),
    }
    if !report.exists {
        if args.output == Output::Json {
            return Ok(ExitCode::Failure);
        }
        let name = &report.cluster;
        return Err(Error::failed(format!("no cluster named `{name}`"))
            .hint(format!("create it with `devcluster up --name {name}`")));
    }
    Ok(exit_code(!report.drift.iter().all(|d| d.unconfirmed)))
}

async fn verify_command(app: &App, args: &VerifyArgs) -> Result<ExitCode> {
    let report = verify::run(app, &args.request()).await?;
    match args.output {
        Output::Json => print_json(&report),
        Output::Text => report.print_table(&app.ui),
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit("devcluster verify"))
            .map_err(|e| Error::failed(format!("cannot write {}", path.display())).cause(e))?;
    }
    Ok(exit_code(report.failed()))
}

async fn load_command(app: &App, args: &LoadArgs) -> Result<ExitCode> {
    let options = load::LoadOptions {
        profile: args.profile.choice(),
        images: args.images.clone(),
        prove: !args.no_verify,
        timeout: args.timeout,
        interrupt: signals::interrupt(),
    };
    let report = load::run(app, &options).await?;
    match args.output {
        Output::Json => print_json(&report),
        Output::Text => app
            .ui
            .checks(&report.checks(), crate::core::check::Columns::Located),
    }
    Ok(exit_code(report.failed()))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::failed("cannot start the async runtime").cause(e))
}

fn block_on<F: std::future::Future<Output = Result<ExitCode>>>(future: F) -> Result<ExitCode> {
    runtime()?.block_on(future)
}

/// Writes data to stdout. A reader that went away (`devcluster plan | head -1`) is
/// not an error worth a panic; anything else is reported on stderr.
pub fn print_data(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let result = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(e) = result
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write to stdout: {e}");
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => print_data(&format!("{text}\n")),
        Err(e) => eprintln!("error: cannot encode JSON: {e}"),
    }
}

fn plan(app: &App, args: &PlanArgs) -> Result<ExitCode> {
    let (_, plan) = app.plan(
        args.profile.profile.as_deref(),
        args.profile.name.as_deref(),
    )?;
    match args.output {
        Output::Text => print_data(&kindconfig::render(&plan)),
        Output::Json => print_json(&plan),
    }
    Ok(ExitCode::Success)
}

fn profiles_list() {
    let rows: Vec<(String, String)> = profile::BUILTIN_PROFILES
        .iter()
        .map(|p| (p.name.to_string(), p.description()))
        .collect();
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut text = String::new();
    for (name, description) in rows {
        text.push_str(&format!("{name:width$}  {description}\n"));
    }
    print_data(&text);
}

fn profiles_show(name: &str) -> Result<ExitCode> {
    match profile::builtin(name) {
        Some(p) => {
            print_data(p.text);
            Ok(ExitCode::Success)
        }
        None => Err(Error::input(format!("no built-in profile named `{name}`"))
            .hint("run `devcluster profiles list` to see the built-in profiles")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("90s"),
            Ok(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("5m"),
            Ok(std::time::Duration::from_secs(300))
        );
        assert_eq!(
            parse_duration("1m30s"),
            Ok(std::time::Duration::from_secs(90))
        );
        assert_eq!(parse_duration("42"), Ok(std::time::Duration::from_secs(42)));
        assert_eq!(
            parse_duration("2h 15m"),
            Ok(std::time::Duration::from_secs(8100))
        );
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("8d").is_err());
    }

    #[test]
    fn an_absurd_timeout_is_a_usage_error_not_a_panic() {
        for timeout in [
            "18446744073709551615",
            "99999999999999999999s",
            "5000000000000h",
            "30000y",
        ] {
            let code = run(["devcluster", "up", "--timeout", timeout], World::default());
            assert_eq!(code, 2, "--timeout {timeout}");
        }
    }

    #[test]
    fn load_takes_images_and_a_deadline_that_is_not_zero() {
        let parsed = Cli::try_parse_from(["devcluster", "load", "app:dev", "--timeout", "0"]);
        let message = parsed.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("no time at all"), "{message}");
        let Ok(Cli {
            command: Command::Load(args),
        }) = Cli::try_parse_from(["devcluster", "load", "a:1", "b:2", "--name", "dev"])
        else {
            panic!("`devcluster load a:1 b:2 --name dev` parses as load");
        };
        assert_eq!(args.images, ["a:1", "b:2"]);
        assert_eq!(args.timeout, std::time::Duration::from_secs(300));
        assert!(!args.no_verify);
        assert!(Cli::try_parse_from(["devcluster", "load", "--name", "dev"]).is_err());
    }

    #[test]
    fn a_zero_deadline_is_a_usage_error_but_a_zero_lock_wait_is_not() {
        for (command, flag) in [
            ("up", "--timeout"),
            ("up", "--create-timeout"),
            ("run", "--timeout"),
            ("verify", "--timeout"),
        ] {
            for zero in ["0", "0s", "0m"] {
                let parsed = Cli::try_parse_from(["devcluster", command, flag, zero]);
                let message = parsed.err().map(|e| e.to_string()).unwrap_or_default();
                assert!(
                    message.contains("no time at all"),
                    "{command} {flag} {zero}: {message}"
                );
            }
        }
        assert!(parse_deadline("1s").is_ok());
        assert!(Cli::try_parse_from(["devcluster", "up", "--lock-timeout", "0"]).is_ok());
    }

    #[test]
    fn up_options_default_to_the_flags_defaults() {
        let Command::Up(args) = Cli::parse_from(["devcluster", "up"]).command else {
            panic!("`devcluster up` parses as the up command");
        };
        let (parsed, defaults) = (args.options(), UpOptions::default());
        assert_eq!(parsed.timeout, std::time::Duration::from_secs(300));
        assert_eq!(parsed.create_timeout, std::time::Duration::from_secs(1800));
        assert_eq!(parsed.timeout, defaults.timeout);
        assert_eq!(parsed.create_timeout, defaults.create_timeout);
        assert_eq!(parsed.lock_timeout, defaults.lock_timeout);
        assert!(!parsed.no_verify && !parsed.retain);
    }
}
