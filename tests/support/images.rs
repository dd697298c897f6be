//! Local images made with `docker import`, so a test controls what the image holds
//! and what it is called; removed when dropped.

use std::path::Path;
use std::process::Command;

/// An imported image, removed (`docker rmi -f`) when dropped.
pub struct ImportedImage {
    pub name: String,
}

impl ImportedImage {
    /// Imports a single-layer image named `name` holding `files` (path inside the
    /// image, contents). The image has no command; it is never meant to run.
    pub fn new(name: &str, files: &[(&str, &str)]) -> ImportedImage {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (path, contents) in files {
            let file = root.path().join(path.trim_start_matches('/'));
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(&file, contents).unwrap_or_else(|e| panic!("{e}"));
        }
        let archive = root.path().with_extension("tar");
        tar(root.path(), &archive);
        let out = Command::new("docker")
            .args(["import", &archive.display().to_string(), name])
            .output()
            .unwrap_or_else(|e| panic!("docker import: {e}"));
        let _ = std::fs::remove_file(&archive);
        assert!(
            out.status.success(),
            "docker import {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ImportedImage {
            name: name.to_string(),
        }
    }
}

impl ImportedImage {
    /// Imports a runnable image named `name`: busybox (from the host's
    /// busybox-static, as `build-test-image.sh` uses) whose command sleeps, and a
    /// `/token` file holding `token`, so its image ID is its own and no node can
    /// already have it.
    pub fn runnable(name: &str, token: &str) -> ImportedImage {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(root.path().join("bin")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy("/bin/busybox", root.path().join("bin/busybox"))
            .unwrap_or_else(|e| panic!("copy /bin/busybox (install busybox-static): {e}"));
        std::fs::write(root.path().join("token"), token).unwrap_or_else(|e| panic!("{e}"));
        let archive = root.path().with_extension("tar");
        tar(root.path(), &archive);
        let out = Command::new("docker")
            .args([
                "import",
                "--change",
                r#"CMD ["/bin/busybox", "sleep", "3600"]"#,
                &archive.display().to_string(),
                name,
            ])
            .output()
            .unwrap_or_else(|e| panic!("docker import: {e}"));
        let _ = std::fs::remove_file(&archive);
        assert!(
            out.status.success(),
            "docker import {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ImportedImage {
            name: name.to_string(),
        }
    }
}

fn tar(dir: &Path, archive: &Path) {
    let out = Command::new("tar")
        .args(["-C", &dir.display().to_string(), "-cf"])
        .arg(archive)
        .arg(".")
        .output()
        .unwrap_or_else(|e| panic!("tar: {e}"));
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for ImportedImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.name])
            .output();
    }
}
