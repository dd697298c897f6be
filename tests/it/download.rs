//! Pinned downloads (`up --install-kind`, add-on manifests) against a local HTTP
//! server: a good checksum is kept, a bad one is refused and nothing is kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use devcluster::adapters::download::{fetch_pinned, kind_release, platform, sha256_hex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `body` to every request until dropped; returns the base URL.
async fn serve(body: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{address}"), task)
}

#[tokio::test]
async fn a_release_with_the_pinned_checksum_is_installed_executable() {
    let release = b"#!/bin/sh\necho 'kind v0.32.0 go1.24 linux/amd64'\n".to_vec();
    let sum = sha256_hex(&release);
    let (base, server) = serve(release.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("bin/kind-v0.32.0");
    let path = fetch_pinned(&format!("{base}/kind-linux-amd64"), &sum, &dest, true)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), release);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o111,
            0o111
        );
    }
    // A second call uses the cached file even when the server is gone.
    server.abort();
    let again = fetch_pinned(&format!("{base}/kind-linux-amd64"), &sum, &dest, true)
        .await
        .unwrap();
    assert_eq!(again, dest);
}

#[tokio::test]
async fn a_wrong_checksum_is_an_error_and_nothing_is_kept() {
    let (base, _server) = serve(b"tampered".to_vec()).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("bin/kind-v0.32.0");
    let pinned = sha256_hex(b"the real release");
    let error = fetch_pinned(&format!("{base}/kind-linux-amd64"), &pinned, &dest, true)
        .await
        .unwrap_err();
    let text = error.render();
    assert!(text.contains("wrong checksum"), "{text}");
    assert!(text.contains(&pinned), "{text}");
    assert!(!dest.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    let files: usize = leftovers
        .iter()
        .map(|e| std::fs::read_dir(e.path()).map(|d| d.count()).unwrap_or(0))
        .sum();
    assert_eq!(files, 0, "nothing may be kept");
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = fetch_pinned(
        "http://127.0.0.1:1/kind",
        &"0".repeat(64),
        &dir.path().join("kind"),
        true,
    )
    .await
    .unwrap_err();
    let text = error.render();
    assert!(
        text.contains("cannot download http://127.0.0.1:1/kind"),
        "{text}"
    );
    // The hint says where a copy fetched elsewhere is picked up, and by what
    // checksum, rather than leaving the user to guess what "install it" means.
    assert!(
        text.contains(&format!(
            "to {} (used once its SHA-256 is {})",
            dir.path().join("kind").display(),
            "0".repeat(64)
        )),
        "{text}"
    );
}

#[test]
fn this_platform_has_a_pinned_kind_release() {
    let platform = platform().unwrap();
    let (url, sum) = kind_release(platform).unwrap();
    assert!(
        url.starts_with("https://github.com/kubernetes-sigs/kind/releases/download/v0.32.0/kind-")
    );
    assert_eq!(sum.len(), 64);
}
