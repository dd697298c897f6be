//! The commands, each an operation over one [`context::App`]: `up`, `down`,
//! `status`, `verify` and `doctor`.

pub mod addons;
pub mod context;
pub mod doctor;
pub mod interrupt;
pub mod lock;
pub mod status;
pub mod up;
pub mod verify;
