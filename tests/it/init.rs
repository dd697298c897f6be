//! `devcluster init` and `devcluster completions` as a user runs them: the file lands
//! at the repository's root, passes `plan`, is never overwritten without `--force`,
//! and nothing is written when the answers are wrong or cannot be asked for.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

fn devcluster(dir: &Path, args: &[&str]) -> Output {
    Command::new(support::devcluster_bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("CI", "true")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A repository with a `src` directory, and a subdirectory to run `init` from.
fn repository() -> (tempfile::TempDir, std::path::PathBuf) {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join(".git")).unwrap();
    std::fs::create_dir(repo.path().join("src")).unwrap();
    let deeper = repo.path().join("services/api");
    std::fs::create_dir_all(&deeper).unwrap();
    (repo, deeper)
}

#[test]
fn init_writes_at_the_repository_root_a_profile_that_plans() {
    let (repo, deeper) = repository();
    let run = devcluster(
        &deeper,
        &[
            "init",
            "--yes",
            "--profile",
            "multi",
            "--name",
            "shop",
            "--mount",
            "./src:/src:ro",
            "--port",
            "8080:30080",
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let written = repo.path().join("devcluster.yaml");
    assert!(written.is_file(), "{}", stderr(&run));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&written).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "a project file, readable like the checkout");
    assert!(stderr(&run).contains("devcluster up"), "{}", stderr(&run));
    // `plan` finds it from the subdirectory and makes the kind config from it.
    let plan = devcluster(&deeper, &["plan", "-o", "json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["name"], "shop");
    let text = plan.to_string();
    assert!(text.contains("/src"), "{text}");
    assert!(text.contains("8080"), "{text}");
    assert!(text.contains("30080"), "{text}");
    // The default name is the repository's directory name.
    let other = tempfile::tempdir().unwrap();
    let named = other.path().join("My_Service");
    std::fs::create_dir(&named).unwrap();
    let run = devcluster(&named, &["init", "--yes"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let plan = devcluster(&named, &["plan", "-o", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["name"], "my-service");
}

#[test]
fn init_does_not_overwrite_without_force() {
    let (repo, deeper) = repository();
    let path = repo.path().join("devcluster.yaml");
    std::fs::write(&path, "# the team's profile\n").unwrap();
    let run = devcluster(&deeper, &["init", "--yes"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("already exists"), "{}", stderr(&run));
    assert!(stderr(&run).contains("--force"), "{}", stderr(&run));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# the team's profile\n"
    );
    let run = devcluster(&deeper, &["init", "--yes", "--force", "--name", "replaced"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("name: replaced")
    );
}

#[test]
fn init_writes_nothing_when_the_answers_do_not_make_a_valid_profile() {
    let (repo, deeper) = repository();
    let run = devcluster(&deeper, &["init", "--yes", "--name", "Not_A_Name"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("nothing was written"),
        "{}",
        stderr(&run)
    );
    assert!(stderr(&run).contains("Not_A_Name"), "{}", stderr(&run));
    // The problem is reported against the file the user would have had.
    assert!(
        stderr(&run).contains(&format!(
            "{}:",
            repo.path().join("devcluster.yaml").display()
        )),
        "{}",
        stderr(&run)
    );
    let left: Vec<_> = std::fs::read_dir(repo.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("devcluster"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let run = devcluster(&deeper, &["init", "--yes", "--profile", "nosuch"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("ingress"), "{}", stderr(&run));
}

#[test]
fn init_without_a_terminal_or_answers_asks_for_yes() {
    let (repo, deeper) = repository();
    let run = devcluster(&deeper, &["init"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("--yes"), "{}", stderr(&run));
    assert!(!repo.path().join("devcluster.yaml").exists());
}

#[test]
fn completions_are_printed_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_devcluster()"),
        ("zsh", "#compdef devcluster"),
        ("fish", "complete -c devcluster"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let run = devcluster(dir.path(), &["completions", shell]);
        assert_eq!(run.status.code(), Some(0), "{shell}: {}", stderr(&run));
        let script = String::from_utf8_lossy(&run.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("verify"),
            "{shell} completes the subcommands"
        );
    }
    // The bash script is valid bash.
    let run = devcluster(dir.path(), &["completions", "bash"]);
    let path = dir.path().join("devcluster.bash");
    std::fs::write(&path, &run.stdout).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    let bad = devcluster(dir.path(), &["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// Keys typed into `devcluster init` on a terminal (through `script`, which gives
/// it a pseudo-terminal), with a pause before each so every prompt is up first.
#[test]
fn init_asks_on_a_terminal_for_what_the_flags_leave_open() {
    let (repo, _) = repository();
    let keys: &[&str] = &[
        "\x1b[B\r",     // base profile: the second built-in, `multi`
        "team-x\r",     // cluster name
        "1\r",          // workers
        "./src\r",      // a directory to mount
        "\r",           // at the default path, /src
        "y",            // read-only
        "\r",           // no more mounts
        "8080:30080\r", // a port
        "\r",           // no more ports
    ];
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{} init", support::devcluster_bin().display()),
            "/dev/null",
        ])
        .current_dir(repo.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", repo.path())
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs devcluster on a pseudo-terminal");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for key in keys {
            std::thread::sleep(std::time::Duration::from_millis(600));
            stdin.write_all(key.as_bytes()).unwrap();
            stdin.flush().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
    }
    let output = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{shown}");
    let text = std::fs::read_to_string(repo.path().join("devcluster.yaml")).unwrap();
    for expected in [
        "extends: multi",
        "name: team-x",
        "workers: 1",
        "hostPath: ./src",
        "containerPath: /src",
        "readOnly: true",
        "containerPort: 30080",
        "hostPort: 8080",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}\n{shown}");
    }
}
