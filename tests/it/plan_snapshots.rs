//! The kind config (and plan) of every built-in profile and valid fixture, byte for
//! byte. `UPDATE_SNAPSHOTS=1 cargo test --test it -- plan_snapshots::` rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `devcluster plan` from `cwd` with HOME at `home`; paths that depend on the
/// machine are replaced by placeholders.
fn plan(profile: &str, cwd: &Path, home: &Path, json: bool) -> String {
    let mut args = vec!["plan", "--profile", profile, "--name", "snap"];
    if json {
        args.extend(["-o", "json"]);
    }
    let out = Command::new(support::devcluster_bin())
        .args(&args)
        .env_clear()
        .env("HOME", home)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{profile}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{profile} warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .replace(
            &root().join("tests/fixtures").display().to_string(),
            "<FIXTURES>",
        )
        .replace(&home.display().to_string(), "<HOME>")
        .replace(&cwd.display().to_string(), "<CWD>")
}

fn compare(name: &str, actual: &str) {
    let path = root().join("tests/snapshots").join(name);
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run with UPDATE_SNAPSHOTS=1 and review it",
            path.display()
        )
    });
    if expected != actual {
        let mut diff = String::new();
        for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
            if e != a {
                diff.push_str(&format!("line {}:\n- {e}\n+ {a}\n", i + 1));
            }
        }
        let (e, a) = (expected.lines().count(), actual.lines().count());
        if e != a {
            diff.push_str(&format!("{e} lines expected, {a} now\n"));
        }
        panic!("{name} differs from its snapshot:\n{diff}");
    }
}

#[test]
fn builtin_profiles_render_as_their_snapshots() {
    let cwd = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    for profile in ["single", "multi", "ingress", "workspace"] {
        let yaml = plan(profile, cwd.path(), home.path(), false);
        compare(&format!("builtin-{profile}.yaml"), &yaml);
        assert_eq!(
            yaml,
            plan(profile, cwd.path(), home.path(), false),
            "{profile} is not deterministic"
        );
    }
    compare(
        "builtin-ingress.json",
        &plan("ingress", cwd.path(), home.path(), true),
    );
}

#[test]
fn valid_fixtures_render_as_their_snapshots() {
    let cwd = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let dir = root().join("tests/fixtures/valid");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 8, "{fixtures:?}");
    for fixture in fixtures {
        let stem = fixture.file_stem().unwrap().to_string_lossy().into_owned();
        let path = fixture.display().to_string();
        let yaml = plan(&path, cwd.path(), home.path(), false);
        compare(&format!("{stem}.yaml"), &yaml);
        assert_eq!(
            yaml,
            plan(&path, cwd.path(), home.path(), false),
            "{stem} is not deterministic"
        );
        if [
            "mounts-everywhere",
            "labels-and-taints",
            "extends-file",
            "kubelet-labels",
            "registry",
        ]
        .contains(&stem.as_str())
        {
            compare(
                &format!("{stem}.json"),
                &plan(&path, cwd.path(), home.path(), true),
            );
        }
    }
}

#[test]
fn relative_host_paths_resolve_against_the_file_that_declares_them() {
    let cwd = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let child = root().join("tests/fixtures/valid/nested/extends-parent-dir.yaml");
    let json = plan(&child.display().to_string(), cwd.path(), home.path(), true);
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mounts: Vec<String> = plan["nodes"][0]["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["hostPath"].as_str().unwrap().to_string())
        .collect();
    // base.yaml's `./base-data` is next to base.yaml, not next to the child.
    assert_eq!(
        mounts,
        vec![
            "<FIXTURES>/valid/base-data",
            "<FIXTURES>/valid/nested/nested-data"
        ]
    );
}

#[test]
fn the_readme_example_profile_plans() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find("```yaml\n").expect("README has a yaml example") + "```yaml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("devcluster.yaml"), &readme[start..end]).unwrap();
    let out = Command::new(support::devcluster_bin())
        .args(["plan", "-o", "json"])
        .env_clear()
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["name"], "shop");
    let worker2 = &plan["nodes"][2];
    assert_eq!(worker2["labels"]["example.com/disk"], "ssd");
    assert_eq!(worker2["ports"][0]["hostPort"], 8080);
    assert_eq!(worker2["taints"][0]["key"], "dedicated");
}
