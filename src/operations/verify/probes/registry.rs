//! `registry`: the local registry end to end. An image is pushed from the host
//! through the Docker Engine API to `localhost:<hostPort>`, and a pod on every
//! schedulable node pulls it from there (`imagePullPolicy: Always`) and runs it.
//! When the pull fails, the layer that broke is named: the registry not answering
//! on the host, containerd in a node not configured for it (no `hosts.toml`, or no
//! `config_path`), or the pull itself, quoted from the pod's events.

use futures_util::future::{BoxFuture, join_all};

use crate::adapters::docker::Docker;
use crate::adapters::host::http_get;
use crate::adapters::kube::probe::ProbeNode;
use crate::core::check::{Check, Layer, Status};
use crate::core::plan::{CONTAINERD_CONFIG_PATCH, RegistryPlan};
use crate::operations::verify::DEFAULT_PROBE_IMAGE;
use crate::operations::verify::pods::{PodContext, pod_name};
use crate::operations::verify::probes::{Probe, Run};
use crate::operations::verify::runner::describe;

/// Where containerd's config is in a kind node.
const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
/// The largest config file read back from a node.
const MAX_CONFIG_BYTES: usize = 256 * 1024;
/// The repository the probe image is pushed as, under the registry's host.
const PROBE_REPOSITORY: &str = "devcluster-probe";
const NAME: &str = "registry";

pub struct Registry;

impl Probe for Registry {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(registry(run))
    }
}

async fn registry(run: &Run<'_>) -> Vec<Check> {
    let Some(registry) = run.target.plan.and_then(|p| p.registry.as_ref()) else {
        return Vec::new();
    };
    let token = &run.base().token;
    let mut checks = Vec::new();
    let host = host_check(registry).await;
    let answered = host.status == Status::Ok;
    checks.push(host);
    let Some(docker) = run.target.docker else {
        checks.push(Check::new(
            NAME,
            None,
            Layer::Host,
            Status::Skip,
            "skipped: Docker is not reachable, so nothing can be pushed",
        ));
        return checks;
    };
    let nodes = node_checks(run, docker, registry).await;
    let unconfigured: Vec<String> = nodes
        .iter()
        .filter(|c| c.status == Status::Fail)
        .filter_map(|c| c.node.clone())
        .collect();
    checks.extend(nodes);
    if !answered {
        // Nothing can be pushed to a registry the host cannot reach; the host row
        // says why.
        return checks;
    }
    let image = run
        .options
        .probe_image
        .clone()
        .unwrap_or_else(|| DEFAULT_PROBE_IMAGE.to_string());
    let repository = format!("{}/{PROBE_REPOSITORY}", registry.host());
    match push(docker, &image, &repository, token).await {
        Ok(()) => checks.push(Check::new(
            NAME,
            None,
            Layer::Host,
            Status::Ok,
            format!("pushed {repository}:{token} ({image}) through the Docker Engine API"),
        )),
        Err(Unpushed::NoImage(e)) => {
            checks.push(
                Check::new(
                    NAME,
                    None,
                    Layer::Host,
                    Status::Fail,
                    format!("no image to push: {e}"),
                )
                .hint("pass `--probe-image IMAGE` with an image this Docker has (`docker images`)"),
            );
            return checks;
        }
        Err(Unpushed::Refused(e)) => {
            checks.push(
                Check::new(
                    NAME,
                    None,
                    Layer::Host,
                    Status::Fail,
                    format!("cannot push {repository}:{token}: {e}"),
                )
                .hint(format!(
                    "`docker push {repository}:TAG` shows the same; `docker logs {}` shows what the registry says",
                    registry.container
                )),
            );
            return checks;
        }
    }
    let Ok(context) = run.pods().await else {
        return checks;
    };
    let pulled = format!("{repository}:{token}");
    let pods = run.schedulable.iter().enumerate().map(|(index, node)| {
        pull_check(
            context,
            node,
            index,
            &pulled,
            registry,
            unconfigured.contains(&node.name),
        )
    });
    checks.extend(join_all(pods).await);
    checks
}

/// Whether the registry answers its API (`GET /v2/`) on the host port.
async fn host_check(registry: &RegistryPlan) -> Check {
    let address = crate::operations::registry::host_address(registry);
    let answer = http_get(
        address,
        registry.host_port,
        "/v2",
        std::time::Duration::from_secs(5),
    )
    .await;
    let status_line = crate::operations::registry::status_line;
    match answer {
        Ok(text) if status_line(&text).contains(" 200") => Check::new(
            NAME,
            None,
            Layer::Host,
            Status::Ok,
            format!(
                "{} answers the registry API on {address}:{}",
                registry.container, registry.host_port
            ),
        ),
        Ok(text) => Check::new(
            NAME,
            None,
            Layer::Host,
            Status::Fail,
            format!(
                "{address}:{} answers, but not as a registry (`GET /v2/`: {})",
                registry.host_port,
                status_line(&text)
            ),
        )
        .hint(format!(
            "another program holds the port: stop it, or set `registry.hostPort` to a free port (`{}` must publish it)",
            registry.container
        )),
        Err(e) => Check::new(
            NAME,
            None,
            Layer::Host,
            Status::Fail,
            format!(
                "the registry is not answering on the host: {e}"
            ),
        )
        .hint(format!(
            "`docker ps -a --filter name={0}` shows whether `{0}` runs; `devcluster up` starts it again",
            registry.container
        )),
    }
}

/// Whether containerd in each node of the cluster is configured for the
/// registry: `config_path` in its config, and the registry's `hosts.toml`.
async fn node_checks(run: &Run<'_>, docker: &Docker, registry: &RegistryPlan) -> Vec<Check> {
    if run.target.node_layer_skipped.is_some() {
        return Vec::new();
    }
    let checks = run.target.nodes.iter().map(|node| async move {
        let check = |status, detail: String| {
            Check::new(NAME, Some(&node.name), Layer::Node, status, detail)
        };
        let up = "`devcluster up` writes it (run it again)".to_string();
        let hosts = docker
            .read_file(&node.name, &registry.hosts_toml_path(), MAX_CONFIG_BYTES)
            .await;
        let hosts = match hosts {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => {
                return check(
                    Status::Fail,
                    format!(
                        "containerd is not configured for {}: {} is missing",
                        registry.host(),
                        registry.hosts_toml_path()
                    ),
                )
                .hint(up);
            }
            Err(e) => return check(Status::Fail, e.to_string()),
        };
        let target = format!("http://{}:", registry.container);
        if !hosts.contains(&target) {
            return check(
                Status::Fail,
                format!(
                    "{} does not send {} to {target}5000: {}",
                    registry.hosts_toml_path(),
                    registry.host(),
                    hosts.trim()
                ),
            )
            .hint(up);
        }
        match docker
            .read_file(&node.name, CONTAINERD_CONFIG, MAX_CONFIG_BYTES)
            .await
        {
            Ok(Some(bytes)) if !String::from_utf8_lossy(&bytes).contains("config_path") => check(
                Status::Fail,
                format!(
                    "containerd does not read {}: {CONTAINERD_CONFIG} has no `config_path`",
                    registry.hosts_dir()
                ),
            )
            .hint(format!(
                "the node was created without the registry's containerd patch ({}); `devcluster up --recreate` rebuilds it",
                CONTAINERD_CONFIG_PATCH.lines().next().unwrap_or_default()
            )),
            _ => check(
                Status::Ok,
                format!("containerd sends {} to {target}5000", registry.host()),
            ),
        }
    });
    join_all(checks).await
}

/// Why nothing was pushed.
enum Unpushed {
    /// The image to push is not on the host and cannot be pulled.
    NoImage(String),
    /// Tagging or the push itself failed.
    Refused(String),
}

/// Tags `image` as `repository:tag`, pushes it and drops the tag again (the image
/// itself stays).
async fn push(docker: &Docker, image: &str, repository: &str, tag: &str) -> Result<(), Unpushed> {
    docker
        .ensure_image(image)
        .await
        .map_err(|e| Unpushed::NoImage(e.to_string()))?;
    docker
        .tag_image(image, repository, tag)
        .await
        .map_err(|e| Unpushed::Refused(e.to_string()))?;
    let pushed = docker.push_image(repository, tag).await;
    let _ = docker.untag_image(&format!("{repository}:{tag}")).await;
    pushed.map_err(|e| Unpushed::Refused(e.to_string()))
}

/// A pod on `node` that pulls `image` from the registry and runs it.
async fn pull_check(
    context: &PodContext,
    node: &ProbeNode,
    index: usize,
    image: &str,
    registry: &RegistryPlan,
    unconfigured: bool,
) -> Check {
    let mut pod = context.pod(
        pod_name("registry", index),
        node,
        "echo 'devcluster: ok'".to_string(),
        Vec::new(),
    );
    pod.image = image.to_string();
    pod.pull_policy = "Always".to_string();
    let check =
        |status, detail: String| Check::new(NAME, Some(&node.name), Layer::Pod, status, detail);
    match context.run(&pod).await {
        Ok(outcome) if outcome.succeeded() => check(
            Status::Ok,
            format!("pulled {image} from the registry and ran it"),
        ),
        Ok(outcome) => {
            // The kubelet's `Failed` event carries containerd's own words.
            let pull = outcome
                .events
                .iter()
                .rev()
                .find(|e| e.starts_with("Failed") && e.contains("pull"))
                .or_else(|| outcome.events.iter().rev().find(|e| e.contains("pull")))
                .cloned()
                .unwrap_or_else(|| describe(&outcome));
            let hint = if unconfigured {
                format!(
                    "containerd on this node is not configured for {} (the node row above): `devcluster up` writes its hosts.toml",
                    registry.host()
                )
            } else {
                format!(
                    "the host reaches the registry but this node does not: is `{0}` on the `kind` network (`docker network inspect kind`)? `docker logs {0}` shows the pulls it saw",
                    registry.container
                )
            };
            check(
                Status::Fail,
                format!("the pod could not pull {image}: {pull}"),
            )
            .hint(hint)
        }
        Err(e) => check(Status::Fail, e),
    }
}
