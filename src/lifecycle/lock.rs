//! One `up`/`down` per cluster name at a time: an advisory lock on a file in the
//! user's cache directory. The lock file holds nothing but the holder's pid; the
//! kernel releases the lock when the process ends, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;

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
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::failed(format!(
            "cannot create the lock directory {}",
            dir.display()
        ))
        .cause(e)
    })?;
    let path = dir.join(format!("{cluster}.lock"));
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
    };
    let mut file = open().map_err(|e| {
        Error::failed(format!("cannot open the lock file {}", path.display())).cause(e)
    })?;
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
        assert!(
            acquire(dir.path(), "c1", Duration::ZERO, |_| {})
                .await
                .is_ok()
        );
    }
}
