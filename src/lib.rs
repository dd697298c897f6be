//! devcluster: local Kubernetes clusters on kind, correct by construction and proven
//! correct from inside real pods.
//!
//! Four layers, each using only the ones below it:
//! - [`core`]: profiles, the plan, the kind config, the cluster record: pure data and
//!   rules, no I/O;
//! - [`adapters`]: the outside systems (Docker, the kind binary, the Kubernetes API,
//!   the host), each behind a small interface that speaks devcluster's own types;
//! - [`operations`]: the commands (`up`, `down`, `status`, `verify`, `doctor`), which
//!   take options and return reports;
//! - [`cli`]: flags, output formats, signals and exit codes.

pub mod adapters;
pub mod cli;
pub mod core;
pub mod operations;
