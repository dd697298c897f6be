//! The integration tests, one module per area, in one test binary: every test binary
//! links kube, bollard and tokio, so one binary links them once instead of once per
//! area. Run one area with `cargo test --test it -- doctor::`, several with
//! `cargo test --test it -- doctor:: lifecycle::`.
//!
//! Two suites keep binaries of their own: `tests/verify_signals.rs` sends signals to
//! its own process, and `tests/e2e_kind.rs` runs real kind clusters, which need the
//! machine to themselves (cargo runs test binaries one after another).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod docker;
mod docs;
mod doctor;
mod download;
mod emulator;
mod ingress_controller;
mod init;
mod kube_cluster;
mod layers;
mod lifecycle;
mod load;
mod plan_hostile;
mod plan_invalid;
mod plan_properties;
mod plan_snapshots;
mod registry;
mod run;
mod verify_api;
mod verify_nodes;
