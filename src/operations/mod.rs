//! The commands, each an operation over one [`context::App`]: `up`, `down`,
//! `status`, `verify` and `doctor`.

pub mod addons;
pub mod cluster;
pub mod context;
pub mod doctor;
pub mod down;
pub mod init;
pub mod interrupt;
pub mod list;
pub mod load;
pub mod lock;
pub mod registry;
pub mod run;
pub mod status;
pub mod up;
pub mod verify;

use std::time::Duration;

/// Which profile and cluster a command works on: `--profile` and `--name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChoice {
    /// A built-in profile name or a profile file. Default: `devcluster.yaml` in the
    /// working directory or a parent, else `single`.
    pub profile: Option<String>,
    /// The cluster name, overriding the profile's.
    pub name: Option<String>,
}

/// When a probe or echo image is pulled, as Kubernetes spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// The longest any deadline may be: a week. Anything longer is a typo, and a
/// deadline that far out could not be represented on some clocks.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
