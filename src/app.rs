//! What every command shares: the world, the printer, kind as located once, and
//! turning `--profile` and `--name` into a validated plan.

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::plan::{self, ClusterPlan, PlanInput};
use crate::profile::source::{self, LoadedProfile};
use crate::ui::Ui;
use crate::world::World;

/// The context each command runs in.
pub struct App {
    pub world: World,
    pub ui: Ui,
    /// kind, located on first use and then the same for the whole command.
    kind: Mutex<Option<Result<Kind>>>,
}

impl App {
    pub fn new(world: World) -> App {
        let ui = Ui::new(&world);
        App {
            world,
            ui,
            kind: Mutex::new(None),
        }
    }

    /// The kind binary this command uses ([`Kind::locate`], resolved once), so
    /// preflight, `doctor`, `down` and `verify` can never disagree about it.
    pub fn kind(&self) -> Result<Kind> {
        let mut slot = self
            .kind
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert_with(|| Kind::locate(&self.world))
            .clone()
    }

    /// Uses `kind` from now on (after `--install-kind` installed it).
    pub fn set_kind(&self, kind: Kind) {
        *self
            .kind
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Ok(kind));
    }

    /// Loads the profile (`--profile`, else `devcluster.yaml` upwards, else
    /// `single`), plans it, prints warnings, and returns the plan.
    pub fn plan(
        &self,
        profile: Option<&str>,
        name: Option<&str>,
    ) -> Result<(LoadedProfile, ClusterPlan)> {
        let reference = source::resolve(profile, &self.world.cwd);
        let loaded = source::load(&reference, &self.world.cwd).map_err(Error::invalid_profile)?;
        let input = PlanInput {
            profile: &loaded.profile,
            name_override: name,
            base_dir: &loaded.base_dir,
            home_dir: self.world.home.as_deref(),
            source: loaded.source.clone(),
            file: loaded.file.clone(),
        };
        let planned = plan::plan(&input).map_err(Error::invalid_profile)?;
        for warning in &planned.warnings {
            self.ui.warning(warning);
        }
        Ok((loaded, planned.plan))
    }
}
