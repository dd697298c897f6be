//! The pure core: what a profile says, what it plans to, and what kind is told.
//! Nothing here does I/O beyond reading profile files, and nothing here knows about
//! Docker, kind, Kubernetes clients or the command line.

pub mod check;
pub mod diagnostic;
pub mod error;
pub mod kindconfig;
pub mod plan;
pub mod profile;
pub mod record;
pub mod yaml;
