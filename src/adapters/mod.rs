//! The outside systems, one module each: the node runtime (Docker), the cluster
//! provider (the kind binary), the cluster API (Kubernetes), and the host (its
//! ports and disk, the process's environment, the terminal, downloads).

pub mod docker;
pub mod download;
pub mod host;
pub mod kind;
pub mod kube;
pub mod terminal;
pub mod world;
