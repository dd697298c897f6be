//! `down`: delete clusters devcluster created, never one it did not (unless the
//! user names it).

use std::path::PathBuf;
use std::time::Duration;

use crate::adapters::docker::Docker;
use crate::core::error::{Error, Result};
use crate::core::plan::RegistryPlan;
use crate::operations::ProfileChoice;
use crate::operations::cluster::read_record;
use crate::operations::context::App;
use crate::operations::lock;
use crate::operations::registry::{self as local_registry, Removal};

/// How long `down` waits for another devcluster run on the same cluster.
const LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// What `devcluster down` is asked to delete.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub profile: ProfileChoice,
    /// Every cluster devcluster created.
    pub all: bool,
    /// Clean this kubeconfig instead of the user's.
    pub kubeconfig: Option<PathBuf>,
}

/// `devcluster down`. kind is needed only when there is a cluster to delete, so
/// deleting one that does not exist succeeds without kind installed.
pub async fn run_down(app: &App, args: &DownOptions) -> Result<()> {
    let docker = app.docker().await.map_err(Error::from)?;
    let names = if args.all {
        clusters_devcluster_created(app).await?
    } else if let Some(name) = &args.profile.name {
        vec![name.clone()]
    } else {
        let (_, plan) = app.plan(args.profile.profile.as_deref(), None)?;
        vec![plan.name]
    };
    if names.is_empty() {
        app.ui
            .line("no clusters created by devcluster; nothing to delete");
        return Ok(());
    }
    for name in names {
        delete_cluster(app, &docker, args, &name).await?;
    }
    Ok(())
}

/// Every cluster on this Docker that carries devcluster's record (as `list` finds
/// them); the others are named and left alone.
async fn clusters_devcluster_created(app: &App) -> Result<Vec<String>> {
    let list = crate::operations::list::run(app).await?;
    for cluster in &list.others {
        app.ui.line(&format!(
            "skipping cluster `{cluster}`: devcluster did not create it"
        ));
    }
    Ok(list.clusters.into_iter().map(|c| c.name).collect())
}

/// Removes the registry cluster `name` was made with, when devcluster made it and
/// no other cluster of devcluster's uses it; says why it stays otherwise.
async fn remove_registry(
    app: &App,
    docker: &Docker,
    name: &str,
    registry: &RegistryPlan,
) -> Result<()> {
    let step = app.ui.step(&format!("registry {}", registry.container));
    match local_registry::remove_unused(docker, name, registry).await {
        Ok(Removal::Removed) => step.done("removed"),
        Ok(Removal::Absent) => step.done("already gone"),
        Ok(Removal::KeptFor(users)) => {
            step.done(&format!("kept: cluster(s) {} use it", users.join(", ")))
        }
        Ok(Removal::NotDevclusters) => step.done("kept: devcluster did not create it"),
        Err(e) => {
            step.fail("");
            return Err(e);
        }
    }
    Ok(())
}

/// Deletes cluster `name` under its lock. Without a record it is deleted only
/// when the user named it (`--name`) or it came from `--all`'s list.
async fn delete_cluster(app: &App, docker: &Docker, args: &DownOptions, name: &str) -> Result<()> {
    let _lock = lock::acquire_for(app, name, LOCK_TIMEOUT).await?;
    let nodes = docker.list_nodes(Some(name)).await.map_err(Error::from)?;
    if nodes.is_empty() {
        app.ui.line(&format!(
            "✓ cluster `{name}` does not exist; nothing to delete"
        ));
        return Ok(());
    }
    let named = args.all || args.profile.name.is_some();
    let record = read_record(docker, &nodes).await;
    if !named && record.is_none() {
        return Err(Error::failed(format!(
            "cluster `{name}` has no devcluster record (devcluster did not create it, or its `kind create` did not finish); not deleting it"
        ))
        .hint(format!(
            "to delete it anyway, name it: `devcluster down --name {name}`"
        )));
    }
    let kind = app.kind()?;
    let step = app.ui.step(&format!("delete cluster {name}"));
    match kind.delete(name, args.kubeconfig.as_deref()).await {
        Ok(()) => {
            step.done(&format!("{} node(s)", nodes.len()));
            let registry = record.and_then(|r| r.plan).and_then(|p| p.registry);
            match registry {
                Some(registry) => remove_registry(app, docker, name, &registry).await,
                None => Ok(()),
            }
        }
        Err(e) => {
            step.fail("");
            Err(e.into())
        }
    }
}
