//! What every command shares: the world, the printer, and the outside systems
//! resolved once (kind located, Docker connected), or the doubles a test handed
//! in; and turning `--profile` and `--name` into a validated plan.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::adapters::docker::{Docker, DockerError, NodeRuntime};
use crate::adapters::kind::{ClusterProvider, Kind, KindError};
use crate::adapters::terminal::Ui;
use crate::adapters::world::World;
use crate::core::error::{Error, Result};
use crate::core::plan::{self, ClusterPlan, HostPaths, PlanInput};
use crate::core::profile::source::{self, LoadedProfile};

/// The context each command runs in.
pub struct App {
    pub world: World,
    pub ui: Ui,
    /// kind, located on first use and then the same for the whole command.
    kind: Mutex<Option<Result<Kind, KindError>>>,
    /// The Docker Engine, connected on first use and then shared by every step.
    docker: tokio::sync::OnceCell<Result<Docker, DockerError>>,
    /// A node runtime handed in instead of Docker ([`App::with_node_runtime`]).
    node_runtime: Option<Arc<dyn NodeRuntime>>,
    /// A cluster provider handed in instead of kind ([`App::with_cluster_provider`]).
    cluster_provider: Option<Arc<dyn ClusterProvider>>,
}

impl App {
    pub fn new(world: World) -> App {
        let ui = Ui::new(&world);
        App {
            world,
            ui,
            kind: Mutex::new(None),
            docker: tokio::sync::OnceCell::new(),
            node_runtime: None,
            cluster_provider: None,
        }
    }

    /// Uses `runtime` wherever an operation asks for [`App::node_runtime`]
    /// (`doctor`, `status`), instead of connecting to Docker.
    pub fn with_node_runtime(mut self, runtime: Arc<dyn NodeRuntime>) -> App {
        self.node_runtime = Some(runtime);
        self
    }

    /// Uses `provider` wherever an operation asks for [`App::cluster_provider`]
    /// (`doctor`), instead of locating kind.
    pub fn with_cluster_provider(mut self, provider: Arc<dyn ClusterProvider>) -> App {
        self.cluster_provider = Some(provider);
        self
    }

    /// The Docker Engine this command talks to ([`Docker::connect`], once): the
    /// preflight, `up`'s steps and `verify` share one connection, and a Docker that
    /// is not reachable is found unreachable once.
    pub async fn docker(&self) -> Result<Docker, DockerError> {
        self.docker
            .get_or_init(|| Docker::connect(&self.world))
            .await
            .clone()
    }

    /// The node runtime: the one handed in, else [`App::docker`]'s connection.
    pub async fn node_runtime(&self) -> Result<Arc<dyn NodeRuntime>, DockerError> {
        if let Some(runtime) = &self.node_runtime {
            return Ok(runtime.clone());
        }
        Ok(Arc::new(self.docker().await?))
    }

    /// The kind binary this command uses ([`Kind::locate`], resolved once), so
    /// preflight, `doctor`, `down` and `verify` can never disagree about it.
    pub fn kind(&self) -> Result<Kind> {
        Ok(self.located_kind()?)
    }

    fn located_kind(&self) -> Result<Kind, KindError> {
        let mut slot = self
            .kind
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert_with(|| Kind::locate(&self.world))
            .clone()
    }

    /// The cluster provider: the one handed in, else [`App::kind`]'s binary.
    pub fn cluster_provider(&self) -> Result<Arc<dyn ClusterProvider>, KindError> {
        if let Some(provider) = &self.cluster_provider {
            return Ok(provider.clone());
        }
        Ok(Arc::new(self.located_kind()?))
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
        let planned = plan::plan_on(&input, &HostFilesystem).map_err(Error::invalid_profile)?;
        for warning in &planned.warnings {
            self.ui.warning(warning);
        }
        Ok((loaded, planned.plan))
    }
}

/// The host's filesystem, as the planner may ask about it.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFilesystem;

impl HostPaths for HostFilesystem {
    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        resolve_symlinks(path)
    }
}

/// How many symlinks one path may pass through (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// `path` (absolute) with every symlink in it followed, component by component,
/// as the kernel does when Docker binds it. Unlike `canonicalize`, a path whose
/// end does not exist yet, or a dangling link, still resolves as far as the links
/// lead. `None` for a relative path or a symlink loop.
pub fn resolve_symlinks(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut pending: Vec<PathBuf> = path
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.components().next() {
            Some(Component::RootDir) => resolved = PathBuf::from("/"),
            Some(Component::ParentDir) => {
                resolved.pop();
            }
            Some(Component::Normal(name)) => {
                let candidate = resolved.join(name);
                match std::fs::read_link(&candidate) {
                    Ok(target) => {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return None;
                        }
                        // An absolute target restarts from `/` (its RootDir
                        // component); a relative one continues from here.
                        pending.extend(
                            target
                                .components()
                                .rev()
                                .map(|c| PathBuf::from(c.as_os_str())),
                        );
                    }
                    Err(_) => resolved = candidate,
                }
            }
            _ => {}
        }
    }
    Some(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn symlinks_resolve_even_when_the_end_does_not_exist() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = resolve_symlinks(dir.path()).unwrap_or_else(|| panic!("no path"));
        let link = |name: &str, target: &str| {
            symlink(target, root.join(name)).unwrap_or_else(|e| panic!("{e}"));
            root.join(name)
        };
        assert_eq!(resolve_symlinks(&link("to-root", "/")), Some("/".into()));
        assert_eq!(
            resolve_symlinks(&link("socket", "/nonexistent/run/docker.sock")),
            Some("/nonexistent/run/docker.sock".into())
        );
        std::fs::create_dir(root.join("real")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            resolve_symlinks(&link("relative", "real/../real")).map(|p| p.join("x")),
            Some(root.join("real/x"))
        );
        assert_eq!(
            resolve_symlinks(&link("lib", "/var/lib/docker")).map(|p| p.join("volumes")),
            Some("/var/lib/docker/volumes".into())
        );
        assert_eq!(
            resolve_symlinks(&root.join("lib/volumes/new")),
            Some("/var/lib/docker/volumes/new".into())
        );
        link("loop-a", "loop-b");
        link("loop-b", "loop-a");
        assert_eq!(resolve_symlinks(&root.join("loop-a")), None);
        assert_eq!(resolve_symlinks(Path::new("relative")), None);
    }

    #[tokio::test]
    async fn the_context_hands_out_the_doubles_it_was_given_and_kind_once_installed() {
        use crate::adapters::docker::canned::CannedRuntime;
        use crate::adapters::kind::KindSource;
        use crate::adapters::kind::canned::CannedProvider;

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let world = World {
            cwd: dir.path().to_path_buf(),
            ..World::default()
        };
        let doubled = App::new(world.clone())
            .with_node_runtime(std::sync::Arc::new(CannedRuntime::empty()))
            .with_cluster_provider(std::sync::Arc::new(CannedProvider::release(0, 31, 0)));
        let runtime = doubled
            .node_runtime()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(runtime.endpoint(), "unix:///canned.sock");
        let provider = doubled.cluster_provider().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(provider.describe(), "/canned/kind (from DEVCLUSTER_KIND)");

        // No kind anywhere: the provider is missing, typed; once `--install-kind`
        // put one in place, every later ask gets that one.
        let app = App::new(world.clone());
        assert!(matches!(
            app.cluster_provider().err(),
            Some(KindError::NotInstalled { .. })
        ));
        let installed = dir.path().join("kind");
        app.set_kind(Kind::at(installed.clone(), KindSource::Cache, &world));
        let provider = app.cluster_provider().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            provider.describe(),
            format!(
                "{} (devcluster's cached pinned release)",
                installed.display()
            )
        );
        assert_eq!(
            app.kind().map(|k| k.path).unwrap_or_else(|e| panic!("{e}")),
            installed
        );
    }
}
