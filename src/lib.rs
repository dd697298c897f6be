//! devcluster: local Kubernetes clusters on kind, correct by construction and proven
//! correct from inside real pods.
//!
//! The pure core is `profile -> plan -> kindconfig`; the outside systems each sit in
//! one module (`docker`, `kind`, `kube`), and the commands (`doctor`, `lifecycle`,
//! `verify`) put them together.

pub mod app;
pub mod cli;
pub mod diagnostic;
pub mod docker;
pub mod doctor;
pub mod error;
pub mod interrupt;
pub mod kind;
pub mod kindconfig;
pub mod kube;
pub mod lifecycle;
pub mod plan;
pub mod profile;
pub mod ui;
pub mod verify;
pub mod world;
pub mod yaml;
