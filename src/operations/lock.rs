//! One `up`/`down` per cluster name at a time: an advisory lock on a file in the
//! user's cache directory (or, without one, a private directory of this user's in
//! the shared temporary directory). The lock file holds nothing but the holder's
//! pid; the kernel releases the lock when the process ends, however it ends.
//!
//! Lock files may sit in a directory others can write to, so nothing here follows
//! a symlink: the directory must be a real directory this user owns and only this
//! user can write, and the file is opened with `O_NOFOLLOW`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::core::error::Error;
use crate::operations::context::App;

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct ClusterLock {
    file: File,
    pub path: PathBuf,
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Takes the lock for `cluster` in `dir`, waiting up to `wait` for another holder.
/// `on_wait` is told once who holds it, when someone does.
pub async fn acquire(
    dir: &Path,
    cluster: &str,
    wait: Duration,
    on_wait: impl FnOnce(&str),
) -> Result<ClusterLock, Error> {
    private_dir(dir)?;
    let path = dir.join(format!("{cluster}.lock"));
    let mut file = open_no_follow(&path)?;
    let started = Instant::now();
    let mut told = false;
    let mut on_wait = Some(on_wait);
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                if !told {
                    told = true;
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    let who = if holder.is_empty() {
                        "another devcluster process".to_string()
                    } else {
                        format!("devcluster (pid {holder})")
                    };
                    if let Some(f) = on_wait.take() {
                        f(&who);
                    }
                }
                if started.elapsed() >= wait {
                    return Err(Error::failed(format!(
                        "another devcluster run is working on cluster `{cluster}`"
                    ))
                    .cause(format!("{} is locked", path.display()))
                    .hint("wait for it to finish, then run the command again"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::failed(format!("cannot lock {}", path.display())).cause(e));
            }
        }
    }
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(ClusterLock { file, path })
}

/// Takes the lock for `cluster` in the user's lock directory ([`user_dir`]), saying
/// on the terminal whom it waits for.
pub async fn acquire_for(app: &App, cluster: &str, wait: Duration) -> Result<ClusterLock, Error> {
    acquire(&user_dir(app), cluster, wait, |who| {
        app.ui.line(&format!(
            "waiting for {who}, which is working on cluster `{cluster}` ..."
        ))
    })
    .await
}

/// The user's lock directory: in their cache, else a private one in the shared
/// temporary directory.
pub fn user_dir(app: &App) -> PathBuf {
    app.world
        .cache_dir()
        .map(|d| d.join("locks"))
        .unwrap_or_else(shared_temp_dir)
}

/// The lock directory for a user without a cache directory: theirs alone, in the
/// shared temporary directory.
pub fn shared_temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "devcluster-locks-{}",
        nix::unistd::Uid::current().as_raw()
    ))
}

/// Creates `dir` (mode 0700) if missing, and refuses one that is a symlink, is
/// owned by someone else, or that others can write to.
fn private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let refuse = |why: String| {
        Error::failed(format!("refusing the lock directory {}", dir.display()))
            .cause(why)
            .hint(format!(
                "remove it (`rm -r {}`) or set XDG_CACHE_HOME to a directory of your own",
                dir.display()
            ))
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::failed(format!("cannot create {}", parent.display())).cause(e))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::failed(format!(
                "cannot create the lock directory {}",
                dir.display()
            ))
            .cause(e));
        }
    }
    let metadata = std::fs::symlink_metadata(dir).map_err(|e| {
        Error::failed(format!("cannot read the lock directory {}", dir.display())).cause(e)
    })?;
    if metadata.file_type().is_symlink() {
        return Err(refuse("it is a symlink".to_string()));
    }
    if !metadata.is_dir() {
        return Err(refuse("it is not a directory".to_string()));
    }
    if metadata.uid() != nix::unistd::Uid::current().as_raw() {
        return Err(refuse(format!("it belongs to uid {}", metadata.uid())));
    }
    if metadata.mode() & 0o022 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            refuse(format!(
                "others can write to it and it cannot be fixed: {e}"
            ))
        })?;
    }
    Ok(())
}

/// Opens (or creates, mode 0600) the lock file without following a symlink, and
/// only if it is a regular file.
fn open_no_follow(path: &Path) -> Result<File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = |e: &dyn std::fmt::Display| {
        Error::failed(format!("cannot open the lock file {}", path.display()))
            .cause(e.to_string())
            .hint(format!(
                "if something else put it there, remove it (`rm {}`)",
                path.display()
            ))
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                cannot(&"it is a symlink, which a lock file never is")
            } else {
                cannot(&e)
            }
        })?;
    let metadata = file.metadata().map_err(|e| cannot(&e))?;
    if !metadata.is_file() {
        return Err(cannot(&"it is not a regular file"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_waits_then_fails_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = acquire(dir.path(), "c1", Duration::ZERO, |_| {})
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut waited_for = String::new();
        let second = acquire(dir.path(), "c1", Duration::from_millis(300), |who| {
            waited_for = who.to_string()
        })
        .await;
        let error = second
            .err()
            .unwrap_or_else(|| panic!("second lock must fail"));
        assert!(
            error.message.contains("another devcluster run"),
            "{}",
            error.message
        );
        assert!(
            waited_for.contains(&std::process::id().to_string()),
            "{waited_for}"
        );
        // Another cluster's lock is independent.
        assert!(
            acquire(dir.path(), "c2", Duration::ZERO, |_| {})
                .await
                .is_ok()
        );
        drop(first);
        assert_eq!(
            std::fs::metadata(dir.path().join("c1.lock"))
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
                .ok(),
            Some(0o600)
        );
        assert!(
            acquire(dir.path(), "c1", Duration::ZERO, |_| {})
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_planted_symlink_is_never_followed() {
        let shared = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let victim = shared.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap_or_else(|e| panic!("{e}"));
        // Someone plants `<cluster>.lock -> victim` in the lock directory.
        let dir = shared.path().join("locks");
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&victim, dir.join("c1.lock")).unwrap_or_else(|e| panic!("{e}"));
        let error = acquire(&dir, "c1", Duration::ZERO, |_| {})
            .await
            .err()
            .unwrap_or_else(|| panic!("a symlinked lock file must be refused"));
        assert!(error.render().contains("symlink"), "{}", error.render());
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap_or_default(),
            "precious\n",
            "the symlink's target must be untouched"
        );

        // A planted symlink in place of the directory itself is refused too.
        let elsewhere = shared.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap_or_else(|e| panic!("{e}"));
        let linked = shared.path().join("linked-locks");
        std::os::unix::fs::symlink(&elsewhere, &linked).unwrap_or_else(|e| panic!("{e}"));
        let error = acquire(&linked, "c1", Duration::ZERO, |_| {})
            .await
            .err()
            .unwrap_or_else(|| panic!("a symlinked lock directory must be refused"));
        assert!(error.render().contains("symlink"), "{}", error.render());
        assert!(!elsewhere.join("c1.lock").exists());
    }

    #[tokio::test]
    async fn the_lock_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let shared = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = shared.path().join("locks");
        let _held = acquire(&dir, "c1", Duration::ZERO, |_| {})
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mode = std::fs::metadata(&dir)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o700);
    }
}
