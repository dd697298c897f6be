//! The outside systems, one module each: the node runtime (Docker), the cluster
//! provider (the kind binary), the cluster API (Kubernetes), and the host (the
//! process's environment, the terminal, downloads).

pub mod docker;
pub mod download;
pub mod kind;
pub mod kube;
pub mod terminal;
pub mod world;
