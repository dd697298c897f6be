//! Hostile profile files: each gets exit 2, an `error:` line on stderr, nothing on
//! stdout, no panic, and a quick answer (the real target, well under a second, is
//! in `cargo bench --bench plan`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn assert_refused(what: &str, path: &Path) {
    let started = Instant::now();
    let out = Command::new(support::devcluster_bin())
        .args(["plan", "--profile", &path.display().to_string()])
        .env_clear()
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(out.stdout.is_empty(), "{what}: stdout must be empty");
    assert!(stderr.starts_with("error: "), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(elapsed < Duration::from_secs(5), "{what} took {elapsed:?}");
}

#[test]
fn hostile_files_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    assert_refused("empty", &write("empty.yaml", b""));
    assert_refused("whitespace", &write("blank.yaml", b"\n\n   \n"));

    // Random bytes from a fixed-seed generator, so the case is the same every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    assert_refused("random bytes", &write("random.yaml", &random));
    assert_refused(
        "invalid UTF-8",
        &write(
            "latin1.yaml",
            b"apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nname: caf\xe9\n",
        ),
    );
    assert_refused(
        "a NUL byte",
        &write(
            "nul.yaml",
            b"apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nname: a\0b\n",
        ),
    );

    // Billion laughs: nine levels of ten aliases each.
    let mut bomb = String::from(
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for level in 1..10 {
        let prev = format!("*a{}", level - 1);
        bomb.push_str(&format!(
            "a{level}: &a{level} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    assert_refused("alias bomb", &write("bomb.yaml", bomb.as_bytes()));

    let deep_flow = format!(
        "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nname: {}{}\n",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    assert_refused(
        "20,000 nested sequences",
        &write("deep-flow.yaml", deep_flow.as_bytes()),
    );
    let mut deep_block = String::from("apiVersion: devcluster.dev/v1alpha1\nkind: Profile\n");
    for depth in 0..20_000 {
        deep_block.push_str(&" ".repeat(depth.min(2000)));
        deep_block.push_str("a:\n");
    }
    assert_refused(
        "20,000 nested mappings",
        &write("deep-block.yaml", deep_block.as_bytes()),
    );

    let mut big =
        String::from("apiVersion: devcluster.dev/v1alpha1\nkind: Profile\ndescription: \"");
    big.push_str(&"x".repeat(10 * 1024 * 1024));
    big.push_str("\"\n");
    assert_refused("a 10 MB file", &write("big.yaml", big.as_bytes()));

    assert_refused("a directory", dir.path());
    assert_refused("a missing path", &dir.path().join("no-such.yaml"));
    assert_refused(
        "a YAML list, not a mapping",
        &write("list.yaml", b"- a\n- b\n"),
    );
    assert_refused(
        "two documents",
        &write("two.yaml", b"apiVersion: devcluster.dev/v1alpha1\nkind: Profile\n---\napiVersion: devcluster.dev/v1alpha1\nkind: Profile\n"),
    );
}

/// `devcluster plan` of a profile mounting `host_path`, with HOME at `home`.
fn plan_mount(dir: &Path, home: &Path, host_path: &Path, allow: bool) -> std::process::Output {
    let profile = dir.join("mount.yaml");
    std::fs::write(
        &profile,
        format!(
            "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nmounts:\n  - hostPath: {}\n    containerPath: /data\n    allowDangerousPath: {allow}\n",
            host_path.display()
        ),
    )
    .unwrap();
    Command::new(support::devcluster_bin())
        .args(["plan", "--profile", &profile.display().to_string()])
        .env_clear()
        .env("HOME", home)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn dangerous_paths_are_refused_through_symlinks_too() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("users/me");
    std::fs::create_dir_all(&home).unwrap();
    let link = |name: &str, target: &str| {
        let path = dir.path().join(name);
        symlink(target, &path).unwrap();
        path
    };
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (link("to-root", "/"), "is the host's root directory"),
        // Dangling on a machine without Docker: the name alone is enough.
        (
            link("to-socket", "/var/run/docker.sock"),
            "is the Docker socket",
        ),
        (link("to-etc", "/etc"), "is the host's configuration"),
        (
            link("to-docker-data", "/var/lib/docker").join("volumes"),
            "is Docker's data directory",
        ),
        (
            link("to-containerd", "/run/containerd/containerd.sock"),
            "is the containerd socket",
        ),
        (
            link("to-home-parent", "users"),
            "contains the home directory",
        ),
        ("/home".into(), "holds every user's home directory"),
        ("/Users".into(), "holds every user's home directory"),
        (
            "/run/containerd/containerd.sock".into(),
            "is the containerd socket",
        ),
        ("/etc".into(), "is the host's configuration"),
        ("/var/lib/docker".into(), "is Docker's data directory"),
        (dir.path().join("users"), "contains the home directory"),
    ];
    for (path, reason) in &cases {
        let out = plan_mount(dir.path(), &home, path, false);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(
            stderr.contains(reason) && stderr.contains("allowDangerousPath: true"),
            "{}: expected `{reason}` in:\n{stderr}",
            path.display()
        );
        if path.starts_with(dir.path()) && !path.ends_with("users") {
            assert!(stderr.contains("(a symlink to `"), "{stderr}");
        }
        // Opting in plans it.
        let allowed = plan_mount(dir.path(), &home, path, true);
        assert_eq!(
            allowed.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&allowed.stderr)
        );
    }
    // A symlink to an ordinary directory is an ordinary mount.
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let fine = plan_mount(dir.path(), &home, &link("to-data", "data"), false);
    assert_eq!(
        fine.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fine.stderr)
    );
}
