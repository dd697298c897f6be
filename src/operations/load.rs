//! `devcluster load IMAGE...`: puts images from the local Docker engine on every
//! node of a kind cluster, as `kind load docker-image` does (kind
//! `pkg/cmd/kind/load/docker-image/docker-image.go`), and proves it: a pod with
//! `imagePullPolicy: Never` runs each image on each node.
//!
//! Per node, as kind does: the image is skipped when the node's containerd already
//! has it under that name with the same image ID; otherwise the engine's `docker
//! save` stream is fed to `ctr --namespace=k8s.io images import --all-platforms
//! --digests --snapshotter=<the CRI plugin's snapshotter> -` in the node (kind
//! `pkg/cluster/nodeutils/util.go`, `LoadImageArchive` and `parseSnapshotter`).
//! Unlike kind, the archive is streamed from the Docker Engine API into each node
//! (no temporary file), presence is read with `ctr` (kind asks `crictl`, which not
//! every node image has), and an image whose ID a node has under another name only
//! is imported again rather than re-tagged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::Serialize;

use crate::adapters::docker::{DockerError, LocalImage, NodeRuntime, ObservedNode};
use crate::adapters::kube::cluster::{ClusterApi, Connector};
use crate::adapters::kube::probe::ProbePod;
use crate::core::check::{Check, Layer, Status};
use crate::core::error::{Error, Result};
use crate::core::plan::Role;
use crate::operations::ProfileChoice;
use crate::operations::context::App;
use crate::operations::interrupt::Interrupt;
use crate::operations::verify::runner::{self, PodRunner};

/// containerd's namespace for the images the kubelet sees (the CRI plugin's).
const CRI_NAMESPACE: &str = "--namespace=k8s.io";
/// How many manifests of an index are read to find the image ID.
const MAX_MANIFESTS: usize = 16;

/// What `devcluster load` is asked to do.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub profile: ProfileChoice,
    /// Image references as the local engine knows them, e.g. `my-app:dev`.
    pub images: Vec<String>,
    /// Run the `imagePullPolicy: Never` pod on every node afterwards.
    pub prove: bool,
    /// One deadline for the imports and the proof.
    pub timeout: Duration,
    /// What ends the run early (Ctrl-C from the command line); the proof's
    /// namespace is still removed.
    pub interrupt: Interrupt,
}

/// How one image got onto one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Imported now.
    Loaded,
    /// containerd in the node already had it, with the same image ID.
    AlreadyPresent,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Loaded => "loaded",
            Outcome::AlreadyPresent => "already present",
            Outcome::Failed => "failed",
        }
    }
}

/// One image on one node: the import, then the pod that proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeImage {
    pub node: String,
    pub image: String,
    pub outcome: Outcome,
    /// What the import did, or why it failed.
    pub detail: String,
    /// The `imagePullPolicy: Never` pod's verdict (`skip` when it did not run).
    pub proof: Status,
    /// What the kubelet said about that pod.
    pub proof_detail: String,
    /// The next step, when something failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// What `devcluster load` did, per node and image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    pub cluster: String,
    /// The images as the local engine has them (name and image ID).
    pub images: Vec<LocalImage>,
    /// One entry per node and image, nodes in name order.
    pub nodes: Vec<NodeImage>,
    /// Why the proof's namespace is still there, when the API server would not
    /// delete it: the loads and proofs above stand, the namespace is the user's to
    /// remove.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<String>,
}

impl LoadReport {
    /// Whether any import or proof failed.
    pub fn failed(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| n.outcome == Outcome::Failed || n.proof == Status::Fail)
    }

    /// Two rows per node and image: the import (node layer) and the pod (pod layer).
    pub fn checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        for row in &self.nodes {
            let status = match row.outcome {
                Outcome::Failed => Status::Fail,
                Outcome::Loaded | Outcome::AlreadyPresent => Status::Ok,
            };
            let mut import = Check::new(
                &format!("load {}", row.image),
                Some(&row.node),
                Layer::Node,
                status,
                &row.detail,
            );
            let mut proof = Check::new(
                &format!("run {}", row.image),
                Some(&row.node),
                Layer::Pod,
                row.proof,
                &row.proof_detail,
            );
            if let Some(hint) = &row.hint {
                if status == Status::Fail {
                    import = import.hint(hint);
                } else {
                    proof = proof.hint(hint);
                }
            }
            checks.push(import);
            checks.push(proof);
        }
        if let Some(left) = &self.cleanup {
            let namespace = left.split_whitespace().next().unwrap_or_default();
            checks.push(
                Check::new("cleanup", None, Layer::Pod, Status::Warn, left).hint(format!(
                    "remove it with `kubectl delete namespace {namespace}`"
                )),
            );
        }
        checks
    }
}

/// `devcluster load`: checks the images are in the local engine and the cluster's
/// nodes run, imports what each node lacks, then (unless told not to) proves each
/// image runs on each node without a pull.
pub async fn run(app: &App, options: &LoadOptions) -> Result<LoadReport> {
    let deadline = Instant::now() + options.timeout;
    let (_, plan) = app.plan(
        options.profile.profile.as_deref(),
        options.profile.name.as_deref(),
    )?;
    let cluster = plan.name.clone();
    let runtime = app.node_runtime().await.map_err(Error::from)?;
    let images = local_images(runtime.as_ref(), &options.images).await?;
    let nodes = running_nodes(runtime.as_ref(), &cluster).await?;
    let mut rows = tokio::select! {
        rows = load_images(runtime, &nodes, &images, deadline) => rows,
        what = options.interrupt.wait() => {
            return Err(Error::interrupted(format!("load interrupted by {what}"))
                .hint("a node may have part of the image; `devcluster load` again imports it whole"));
        }
    };
    if !options.prove {
        for row in rows.iter_mut().filter(|r| r.outcome != Outcome::Failed) {
            row.proof_detail = "skipped: --no-verify".into();
        }
    }
    // Nothing on any node: nothing to prove, and no need to reach the API server.
    let mut cleanup = None;
    if options.prove && rows.iter().any(|r| r.outcome != Outcome::Failed) {
        let kubeconfig = crate::operations::cluster::admin_kubeconfig(app, &cluster)
            .await
            .map_err(|e| {
                Error::from(e).context(format!(
                    "cannot get the kubeconfig of cluster `{cluster}` to prove the images"
                ))
            })?;
        let api = Connector::Kubeconfig
            .connect(&kubeconfig, Some(&plan.context_name()))
            .await?;
        cleanup = prove(&api, &mut rows, deadline, &options.interrupt).await?;
    }
    Ok(LoadReport {
        cluster,
        images,
        nodes: rows,
        cleanup,
    })
}

/// Each image as the local engine has it; the first one missing is an error that
/// says how to get it (kind: `image: "X" not present locally`).
pub async fn local_images(runtime: &dyn NodeRuntime, names: &[String]) -> Result<Vec<LocalImage>> {
    let mut images: Vec<LocalImage> = Vec::new();
    for name in names {
        if images.iter().any(|i| &i.name == name) {
            continue;
        }
        match runtime.local_image(name).await.map_err(Error::from)? {
            // `docker save` of an ID writes no name, so containerd would store it
            // under a made-up one and no pod could ask for it.
            Some(image) if is_image_id(name, &image.id) => {
                return Err(Error::input(format!(
                    "`{name}` is an image ID; devcluster load needs a name that pods can ask for"
                ))
                .hint(format!(
                    "give it one with `docker tag {name} my-app:dev`, then run `devcluster load my-app:dev`"
                )));
            }
            Some(image) => images.push(image),
            None => {
                return Err(
                    Error::input(format!("image `{name}` is not in the local Docker engine"))
                        .hint(format!(
                            "pull it with `docker pull {name}` or build it with `docker build -t {name} .`, then run `devcluster load` again"
                        )),
                );
            }
        }
    }
    Ok(images)
}

/// Whether `name` is the image ID `id` or a prefix of it, as `docker images`
/// shows IDs (`sha256:` optional).
fn is_image_id(name: &str, id: &str) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    !hex.is_empty()
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && id
            .strip_prefix("sha256:")
            .is_some_and(|full| full.starts_with(hex))
}

/// The cluster's Kubernetes nodes (not an external load balancer), all running;
/// no nodes means no cluster, a stopped node is an error naming it.
pub async fn running_nodes(runtime: &dyn NodeRuntime, cluster: &str) -> Result<Vec<ObservedNode>> {
    let nodes: Vec<ObservedNode> = runtime
        .list_nodes(Some(cluster))
        .await
        .map_err(Error::from)?
        .into_iter()
        .filter(|n| n.role == Role::ControlPlane.as_str() || n.role == Role::Worker.as_str())
        .collect();
    if nodes.is_empty() {
        return Err(Error::failed(format!("no cluster named `{cluster}`"))
            .hint(format!("create it with `devcluster up --name {cluster}`")));
    }
    let stopped: Vec<&ObservedNode> = nodes.iter().filter(|n| n.state != "running").collect();
    if !stopped.is_empty() {
        let listed: Vec<String> = stopped
            .iter()
            .map(|n| format!("{} ({})", n.name, n.state))
            .collect();
        let names: Vec<&str> = stopped.iter().map(|n| n.name.as_str()).collect();
        return Err(Error::failed(format!(
            "nodes of cluster `{cluster}` are not running: {}",
            listed.join(", ")
        ))
        .hint(format!(
            "start them with `docker start {}`, then run `devcluster load` again",
            names.join(" ")
        )));
    }
    Ok(nodes)
}

/// Imports what each node lacks, all nodes at once; one row per node and image.
pub async fn load_images(
    runtime: Arc<dyn NodeRuntime>,
    nodes: &[ObservedNode],
    images: &[LocalImage],
    deadline: Instant,
) -> Vec<NodeImage> {
    let per_node = join_all(
        nodes
            .iter()
            .map(|node| load_node(runtime.as_ref(), &node.name, images, deadline)),
    )
    .await;
    per_node.into_iter().flatten().collect()
}

async fn load_node(
    runtime: &dyn NodeRuntime,
    node: &str,
    images: &[LocalImage],
    deadline: Instant,
) -> Vec<NodeImage> {
    let row = |image: &LocalImage, outcome: Outcome, detail: String| NodeImage {
        node: node.to_string(),
        image: image.name.clone(),
        outcome,
        detail,
        proof: Status::Skip,
        proof_detail: match outcome {
            Outcome::Failed => "skipped: the image was not loaded".into(),
            Outcome::Loaded | Outcome::AlreadyPresent => String::new(),
        },
        hint: None,
    };
    let snapshotter = match node_snapshotter(runtime, node).await {
        Ok(snapshotter) => snapshotter,
        Err(reason) => {
            return images
                .iter()
                .map(|image| {
                    let mut failed = row(image, Outcome::Failed, reason.clone());
                    failed.hint = Some(
                        "the node is not a kind node image with containerd and ctr; check it with `devcluster status`".into(),
                    );
                    failed
                })
                .collect();
        }
    };
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for image in images {
        // A node that cannot say whether it has the image gets it again.
        if present(runtime, node, image).await.unwrap_or(false) {
            rows.push(row(
                image,
                Outcome::AlreadyPresent,
                format!("already present with image ID {}", short_id(&image.id)),
            ));
        } else {
            missing.push(image);
        }
    }
    if missing.is_empty() {
        return rows;
    }
    let names: Vec<&str> = missing.iter().map(|i| i.name.as_str()).collect();
    let snapshotter_flag = format!("--snapshotter={snapshotter}");
    let command = [
        "ctr",
        CRI_NAMESPACE,
        "images",
        "import",
        "--all-platforms",
        "--digests",
        &snapshotter_flag,
        "-",
    ];
    let limit = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    let imported = runtime.import_images(node, &names, &command, limit).await;
    for image in missing {
        rows.push(match &imported {
            Ok(output) if output.exit_code == 0 => row(
                image,
                Outcome::Loaded,
                format!(
                    "imported into containerd ({snapshotter} snapshotter), image ID {}",
                    short_id(&image.id)
                ),
            ),
            Ok(output) => {
                let mut failed = row(
                    image,
                    Outcome::Failed,
                    format!(
                        "`{}` exited {}: {}",
                        command.join(" "),
                        output.exit_code,
                        last_line(&output.stderr, &output.stdout)
                    ),
                );
                failed.hint = Some(format!(
                    "containerd in the node refused the image (its message is above); a full Docker disk is a common cause (`docker system df`), and `docker exec {node} ctr --namespace=k8s.io images ls` shows what the node has"
                ));
                failed
            }
            Err(DockerError::Timeout { seconds, .. }) => {
                let mut failed = row(
                    image,
                    Outcome::Failed,
                    format!("the import did not finish within {seconds}s"),
                );
                failed.hint = Some(
                    "a large image takes longer: raise `--timeout` (e.g. `--timeout 15m`) and run `devcluster load` again".into(),
                );
                failed
            }
            Err(e) => {
                let mut failed = row(image, Outcome::Failed, format!("the import failed: {e}"));
                failed.hint = Some(
                    "check the Docker Engine with `devcluster doctor`, then run `devcluster load` again".into(),
                );
                failed
            }
        });
    }
    rows.sort_by(|a, b| a.image.cmp(&b.image));
    rows
}

/// The snapshotter the node's CRI plugin unpacks images with.
async fn node_snapshotter(
    runtime: &dyn NodeRuntime,
    node: &str,
) -> std::result::Result<String, String> {
    let dump = runtime
        .exec(node, &["containerd", "config", "dump"])
        .await
        .map_err(|e| format!("cannot read the node's containerd config: {e}"))?;
    if dump.exit_code != 0 {
        return Err(format!(
            "cannot read the node's containerd config: `containerd config dump` exited {}: {}",
            dump.exit_code,
            last_line(&dump.stderr, &dump.stdout)
        ));
    }
    snapshotter(&dump.stdout).map_err(|e| format!("cannot read the node's containerd config: {e}"))
}

/// Whether containerd in `node` has `image` under its name with the engine's
/// image ID: the ID is the name's target (containerd image store), or the config
/// of that manifest or of a manifest in that index (the classic store's ID).
async fn present(
    runtime: &dyn NodeRuntime,
    node: &str,
    image: &LocalImage,
) -> std::result::Result<bool, String> {
    let reference = normalized_reference(&image.name);
    let filter = format!("name=={reference}");
    let listed = runtime
        .exec(node, &["ctr", CRI_NAMESPACE, "images", "ls", &filter])
        .await
        .map_err(|e| e.to_string())?;
    if listed.exit_code != 0 {
        return Err(last_line(&listed.stderr, &listed.stdout));
    }
    let Some(target) = listed_digest(&listed.stdout, &reference) else {
        return Ok(false);
    };
    let mut pending = vec![target];
    let mut read = 0;
    while let Some(digest) = pending.pop() {
        if digest == image.id {
            return Ok(true);
        }
        read += 1;
        if read > MAX_MANIFESTS {
            break;
        }
        let content = runtime
            .exec(node, &["ctr", CRI_NAMESPACE, "content", "get", &digest])
            .await
            .map_err(|e| e.to_string())?;
        if content.exit_code != 0 {
            continue;
        }
        let Ok(document) = serde_json::from_str::<serde_json::Value>(&content.stdout) else {
            continue;
        };
        if document.pointer("/config/digest").and_then(|d| d.as_str()) == Some(&image.id) {
            return Ok(true);
        }
        for manifest in document
            .get("manifests")
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(digest) = manifest.get("digest").and_then(|d| d.as_str()) {
                pending.push(digest.to_string());
            }
        }
    }
    Ok(false)
}

/// Runs one `imagePullPolicy: Never` pod per node and image (pinned with
/// `nodeName`, tolerating the node's taints, running the image's own command) and
/// records what the kubelet did: the container ran (running, or already exited),
/// or it did not, with the kubelet's reason (`ErrImageNeverPull` when the image is
/// not on the node: kubelet `pkg/kubelet/images/image_manager.go`). The namespace
/// it makes is deleted again on every path, an interruption included; a second
/// interruption abandons that. A namespace the API server would not delete after
/// the proof ran is returned as `namespace ...: why`, for the report's cleanup row.
pub async fn prove(
    api: &Arc<dyn ClusterApi>,
    rows: &mut [NodeImage],
    deadline: Instant,
    interrupt: &Interrupt,
) -> Result<Option<String>> {
    // Nothing is made yet: an interruption just ends the command.
    let api_nodes = tokio::select! {
        nodes = api.probe_nodes() => nodes?,
        what = interrupt.wait() => {
            return Err(Error::interrupted(format!(
                "load interrupted by {what} before its proof started; the images were imported"
            )));
        }
    };
    let taints: BTreeMap<String, Vec<crate::core::plan::Taint>> =
        api_nodes.into_iter().map(|n| (n.name, n.taints)).collect();
    let namespace = format!("devcluster-load-{}", crate::operations::verify::token());
    api.create_namespace(&namespace).await?;
    let proved = async {
        api.wait_default_service_account(&namespace, deadline)
            .await?;
        let runner = PodRunner::start(api, &namespace);
        let verdicts =
            join_all(rows.iter().enumerate().map(|(index, row)| {
                prove_one(&runner, index, row, taints.get(&row.node), deadline)
            }))
            .await;
        for (row, (status, detail, hint)) in rows.iter_mut().zip(verdicts) {
            row.proof = status;
            row.proof_detail = detail;
            if row.hint.is_none() {
                row.hint = hint;
            }
        }
        Ok::<(), Error>(())
    };
    let mut interrupted = None;
    let proved = tokio::select! {
        proved = proved => proved,
        what = interrupt.wait() => {
            interrupted = Some(what);
            Ok(())
        }
    };
    let deleted = tokio::select! {
        deleted = api.delete_namespace(&namespace) => deleted,
        _ = interrupt.wait_again() => {
            return Err(Error::interrupted("load interrupted while removing its proof namespace")
                .hint(format!("delete it by hand: `kubectl delete namespace {namespace}`")));
        }
    };
    if let Some(what) = interrupted {
        deleted?;
        return Err(Error::interrupted(format!(
            "load interrupted by {what}; its proof namespace was removed"
        )));
    }
    proved?;
    Ok(deleted.err().map(|e| {
        format!(
            "{namespace} (the proof's namespace) was not removed: {}",
            e.message
        )
    }))
}

async fn prove_one(
    runner: &PodRunner,
    index: usize,
    row: &NodeImage,
    taints: Option<&Vec<crate::core::plan::Taint>>,
    deadline: Instant,
) -> (Status, String, Option<String>) {
    if row.outcome == Outcome::Failed {
        return (
            Status::Skip,
            "skipped: the image was not loaded".into(),
            None,
        );
    }
    let Some(taints) = taints else {
        return (
            Status::Fail,
            format!("the API server has no node named `{}`", row.node),
            Some("the node container runs but its kubelet is not registered; `devcluster status` shows the cluster".into()),
        );
    };
    let pod = ProbePod {
        name: format!("load-{index}"),
        node: Some(row.node.clone()),
        via_scheduler: false,
        tolerations: taints.clone(),
        image: row.image.clone(),
        pull_policy: crate::operations::PullPolicy::Never.as_str().to_string(),
        // The image's own entrypoint and command.
        script: String::new(),
        volumes: Vec::new(),
        run_as_root: false,
        stdin: false,
        // The image may listen on ports; in the node's network they could clash.
        host_network: false,
        labels: BTreeMap::from([("devcluster.dev/load".to_string(), "proof".to_string())]),
    };
    if let Err(e) = runner.create(&pod).await {
        return (Status::Fail, format!("cannot create the pod: {e}"), None);
    }
    let outcome = runner.wait(&pod.name, deadline, true).await;
    if outcome.phase == "Running" && outcome.exit_code.is_none() {
        return (
            Status::Ok,
            "an imagePullPolicy: Never pod is running it".into(),
            None,
        );
    }
    if let Some(code) = outcome.exit_code {
        return (
            Status::Ok,
            format!("an imagePullPolicy: Never pod ran it (it exited {code})"),
            None,
        );
    }
    let detail = runner::describe(&outcome);
    let hint = if outcome
        .stuck
        .as_deref()
        .is_some_and(|s| s.starts_with("ErrImageNeverPull"))
    {
        format!(
            "the image is not in the node's containerd under this name; run `devcluster load {}` again",
            row.image
        )
    } else if outcome.phase == "Timeout" {
        "the pod did not start in time; raise `--timeout`, or `kubectl describe pod` shows why"
            .to_string()
    } else {
        "the image is on the node but its container cannot start with its own command; `--no-verify` skips this proof".to_string()
    };
    (Status::Fail, detail, Some(hint))
}

/// `sha256:0123456789ab` from a full image ID.
fn short_id(id: &str) -> String {
    match id.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", &hex[..hex.len().min(12)]),
        None => id.to_string(),
    }
}

/// The last non-empty line a command printed on stderr, else on stdout.
fn last_line(stderr: &str, stdout: &str) -> String {
    [stderr, stdout]
        .iter()
        .find_map(|text| text.lines().rev().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("no output")
        .to_string()
}

/// The name containerd stores an image under after `ctr images import` of a
/// `docker save` archive: Docker's short names made full, as kind's
/// `sanitizeImage` does (`pkg/cmd/kind/load/docker-image/docker-image.go`):
/// `library/` for a name without a path, `docker.io/` unless the first part is a
/// registry host (has `.` or `:`, or is `localhost`), `:latest` without a tag or
/// digest.
pub fn normalized_reference(image: &str) -> String {
    let mut name = if image.contains('/') {
        image.to_string()
    } else {
        format!("library/{image}")
    };
    let registry = name
        .split_once('/')
        .is_some_and(|(first, _)| first.contains(['.', ':']) || first == "localhost");
    if !registry {
        name = format!("docker.io/{name}");
    }
    let tagged = match (name.rfind(':'), name.rfind('/')) {
        (Some(colon), Some(slash)) => colon > slash,
        (Some(_), None) => true,
        _ => false,
    };
    if !tagged && !name.contains('@') {
        name.push_str(":latest");
    }
    name
}

/// The digest `ctr images ls` lists for `reference` (columns REF, TYPE, DIGEST, ...).
fn listed_digest(listing: &str, reference: &str) -> Option<String> {
    listing
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.first() == Some(&reference))
        .and_then(|columns| columns.get(2).map(|d| d.to_string()))
}

/// The snapshotter in `containerd config dump`, where kind's `parseSnapshotter`
/// reads it (`pkg/cluster/nodeutils/util.go`): config version 2 (containerd 1.3 to
/// 2.x) at `plugins."io.containerd.grpc.v1.cri".containerd.snapshotter`, versions 3
/// and 4 (containerd 2.0, 2.1) at `plugins."io.containerd.cri.v1.images".snapshotter`.
/// The dump is TOML as containerd writes it: one `[table]` header per line, then
/// `key = value` lines.
pub fn snapshotter(config: &str) -> std::result::Result<String, String> {
    let mut table = String::new();
    let mut version: Option<i64> = None;
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            table = line
                .trim_start_matches('[')
                .trim_end_matches(']')
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if table.is_empty() && key == "version" {
            version = value.parse().ok();
        } else if key == "snapshotter" {
            found.insert(table.clone(), value.trim_matches('"').to_string());
        }
    }
    let table = match version {
        Some(2) => r#"plugins."io.containerd.grpc.v1.cri".containerd"#,
        Some(3) | Some(4) => r#"plugins."io.containerd.cri.v1.images""#,
        Some(other) => {
            return Err(format!(
                "unknown containerd config version {other} (kind reads versions 2, 3 and 4)"
            ));
        }
        None => return Err("the containerd config has no version".into()),
    };
    found
        .get(table)
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| format!("the containerd config sets no snapshotter at `{table}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::docker::ExecOutput;
    use crate::adapters::docker::canned::CannedRuntime;
    use crate::adapters::kube::canned::{CannedCluster, PodEnd};

    fn loaded(node: &str, image: &str, outcome: Outcome) -> NodeImage {
        NodeImage {
            node: node.into(),
            image: image.into(),
            outcome,
            detail: String::new(),
            proof: Status::Skip,
            proof_detail: String::new(),
            hint: None,
        }
    }

    #[tokio::test]
    async fn each_row_is_proved_by_its_own_never_pull_pod_and_the_namespace_goes() {
        // The kubelet's words for a Never pod whose image is not in the node's
        // runtime (`pkg/kubelet/images/image_manager.go`, `EnsureImageExists`).
        let refusal = "Container image \"docker.io/library/app:dev\" is not present with pull policy of Never";
        let cluster = CannedCluster::ready(&["dev-control-plane", "dev-worker"])
            .pods_end(
                "load-0",
                PodEnd::Exits {
                    code: 0,
                    logs: String::new(),
                },
            )
            .pods_end(
                "load-1",
                PodEnd::Waiting {
                    reason: "ErrImageNeverPull".into(),
                    message: refusal.into(),
                },
            );
        let cluster = Arc::new(cluster);
        let api: Arc<dyn ClusterApi> = cluster.clone();
        let mut rows = vec![
            loaded("dev-control-plane", "app:dev", Outcome::Loaded),
            loaded("dev-worker", "app:dev", Outcome::AlreadyPresent),
            loaded("dev-worker2", "app:dev", Outcome::Loaded),
            loaded("dev-worker3", "app:dev", Outcome::Failed),
        ];
        let left = prove(
            &api,
            &mut rows,
            Instant::now() + Duration::from_secs(20),
            &Interrupt::never(),
        )
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
        assert_eq!(left, None);
        let pods = cluster.all_created_pods();
        assert_eq!(
            pods.len(),
            2,
            "no pod for a node the API lacks or a failed load"
        );
        assert!(
            pods.iter()
                .all(|(_, p)| p.pull_policy == "Never" && p.script.is_empty())
        );
        assert!(
            !cluster
                .namespaces()
                .iter()
                .any(|(name, _, _)| name.starts_with("devcluster-load-")),
            "the proof's namespace was removed"
        );
        let verdicts: Vec<(Status, &str)> = rows
            .iter()
            .map(|r| (r.proof, r.proof_detail.as_str()))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                (
                    Status::Ok,
                    "an imagePullPolicy: Never pod ran it (it exited 0)"
                ),
                (
                    Status::Fail,
                    &*format!("pod Pending: ErrImageNeverPull: {refusal}")
                ),
                (
                    Status::Fail,
                    "the API server has no node named `dev-worker2`"
                ),
                (Status::Skip, "skipped: the image was not loaded"),
            ]
        );
        assert_eq!(
            rows[1].hint.as_deref(),
            Some(
                "the image is not in the node's containerd under this name; run `devcluster load app:dev` again"
            )
        );
    }

    #[test]
    fn references_are_made_full_as_containerd_stores_them() {
        assert_eq!(normalized_reference("app"), "docker.io/library/app:latest");
        assert_eq!(normalized_reference("app:dev"), "docker.io/library/app:dev");
        assert_eq!(normalized_reference("me/app:1"), "docker.io/me/app:1");
        assert_eq!(
            normalized_reference("localhost:5001/app"),
            "localhost:5001/app:latest"
        );
        assert_eq!(
            normalized_reference("registry.example/team/app:2"),
            "registry.example/team/app:2"
        );
        assert_eq!(
            normalized_reference("localhost/app"),
            "localhost/app:latest"
        );
        assert_eq!(
            normalized_reference("app@sha256:abc"),
            "docker.io/library/app@sha256:abc"
        );
    }

    #[test]
    fn the_snapshotter_is_read_where_kind_reads_it_for_each_config_version() {
        // containerd 1.6 (this machine's node image) and 1.7: version 2.
        let v2 = "version = 2\nroot = \"/var/lib/containerd\"\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"pause\"\n    [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n      default_runtime_name = \"runc\"\n      snapshotter = \"overlayfs\"\n  [plugins.\"io.containerd.snapshotter.v1.native\"]\n    root_path = \"\"\n";
        assert_eq!(snapshotter(v2), Ok("overlayfs".to_string()));
        // containerd 2.x: version 3, another table.
        let v3 = "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'fuse-overlayfs'\n";
        // containerd writes double quotes; single-quoted keys are not what kind sees.
        assert!(snapshotter(v3).is_err());
        let v3 =
            "version = 3\n[plugins.\"io.containerd.cri.v1.images\"]\n  snapshotter = \"native\"\n";
        assert_eq!(snapshotter(v3), Ok("native".to_string()));
        assert!(snapshotter("version = 5\n").is_err_and(|e| e.contains("version 5")));
        assert!(snapshotter("root = \"/\"\n").is_err());
        assert!(
            snapshotter(
                "version = 2\n[plugins.\"io.containerd.cri.v1.images\"]\nsnapshotter = \"x\"\n"
            )
            .is_err()
        );
    }

    const ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const CONFIG_DUMP: &str = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n";

    fn out(stdout: &str, exit_code: i64) -> ExecOutput {
        ExecOutput {
            stdout: stdout.into(),
            stderr: String::new(),
            exit_code,
        }
    }

    fn node(name: &str, role: &str, state: &str) -> ObservedNode {
        ObservedNode {
            name: name.into(),
            cluster: "dev".into(),
            role: role.into(),
            state: state.into(),
            image: "kindest/node:v1.36.1".into(),
            labels: BTreeMap::new(),
            mounts: Vec::new(),
            ports: Vec::new(),
            requested_ports: Vec::new(),
        }
    }

    fn exec(runtime: &mut CannedRuntime, node: &str, command: &str, output: ExecOutput) {
        runtime
            .execs
            .insert((node.to_string(), command.to_string()), output);
    }

    /// Two nodes: `dev-control-plane` already has the image (by its manifest's
    /// config digest, as `ctr` lists a `docker save` import), `dev-worker` does not.
    fn cluster() -> CannedRuntime {
        let mut runtime = CannedRuntime::empty();
        runtime.local_images.insert("app:dev".into(), ID.into());
        runtime.nodes = vec![
            node("dev-control-plane", "control-plane", "running"),
            node("dev-worker", "worker", "running"),
        ];
        let ls = "ctr --namespace=k8s.io images ls name==docker.io/library/app:dev";
        for name in ["dev-control-plane", "dev-worker"] {
            exec(
                &mut runtime,
                name,
                "containerd config dump",
                out(CONFIG_DUMP, 0),
            );
        }
        exec(
            &mut runtime,
            "dev-control-plane",
            ls,
            out(
                "REF TYPE DIGEST SIZE PLATFORMS LABELS\ndocker.io/library/app:dev application/vnd.oci.image.manifest.v1+json sha256:2222 1.9 MiB linux/amd64 -\n",
                0,
            ),
        );
        exec(
            &mut runtime,
            "dev-control-plane",
            "ctr --namespace=k8s.io content get sha256:2222",
            out(&format!("{{\"config\":{{\"digest\":\"{ID}\"}}}}"), 0),
        );
        exec(
            &mut runtime,
            "dev-worker",
            ls,
            out("REF TYPE DIGEST SIZE PLATFORMS LABELS\n", 0),
        );
        runtime
    }

    fn images(runtime: &CannedRuntime) -> Vec<LocalImage> {
        vec![LocalImage {
            name: "app:dev".into(),
            id: runtime.local_images["app:dev"].clone(),
        }]
    }

    #[tokio::test]
    async fn only_nodes_without_the_image_get_it_streamed_into_ctr_import() {
        let mut runtime = cluster();
        runtime.imports.insert(
            "dev-worker".into(),
            Ok(out("unpacking docker.io/library/app:dev...done\n", 0)),
        );
        let images = images(&runtime);
        let runtime = Arc::new(runtime);
        let nodes = running_nodes(runtime.as_ref(), "dev")
            .await
            .unwrap_or_else(|e| panic!("{}", e.render()));
        let deadline = Instant::now() + Duration::from_secs(5);
        let rows = load_images(runtime.clone(), &nodes, &images, deadline).await;
        let outcomes: Vec<(&str, Outcome)> =
            rows.iter().map(|r| (r.node.as_str(), r.outcome)).collect();
        assert_eq!(
            outcomes,
            vec![
                ("dev-control-plane", Outcome::AlreadyPresent),
                ("dev-worker", Outcome::Loaded)
            ]
        );
        let imported = runtime
            .imported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        assert_eq!(
            imported,
            vec![(
                "dev-worker".to_string(),
                vec!["app:dev".to_string()],
                [
                    "ctr",
                    "--namespace=k8s.io",
                    "images",
                    "import",
                    "--all-platforms",
                    "--digests",
                    "--snapshotter=overlayfs",
                    "-"
                ]
                .map(String::from)
                .to_vec()
            )]
        );
    }

    #[tokio::test]
    async fn a_failed_import_and_an_unreadable_containerd_config_are_per_node_failures_with_the_reason()
     {
        let mut runtime = cluster();
        exec(
            &mut runtime,
            "dev-control-plane",
            "containerd config dump",
            ExecOutput {
                stdout: String::new(),
                stderr: "OCI runtime exec failed: exec: \"containerd\": executable file not found in $PATH\n".into(),
                exit_code: 126,
            },
        );
        runtime.imports.insert(
            "dev-worker".into(),
            Ok(ExecOutput {
                stdout: String::new(),
                stderr: "ctr: failed to ingest \"blobs/sha256/33\": no space left on device\n"
                    .into(),
                exit_code: 1,
            }),
        );
        let images = images(&runtime);
        let runtime = Arc::new(runtime);
        let nodes = running_nodes(runtime.as_ref(), "dev")
            .await
            .unwrap_or_else(|e| panic!("{}", e.render()));
        let rows = load_images(
            runtime,
            &nodes,
            &images,
            Instant::now() + Duration::from_secs(5),
        )
        .await;
        assert!(
            rows.iter().all(|r| r.outcome == Outcome::Failed),
            "{rows:#?}"
        );
        assert!(
            rows[0].detail.contains("executable file not found"),
            "{}",
            rows[0].detail
        );
        assert!(
            rows[1].detail.contains("no space left on device"),
            "{}",
            rows[1].detail
        );
        assert!(rows[1].detail.contains("exited 1"), "{}", rows[1].detail);
        let report = LoadReport {
            cluster: "dev".into(),
            images,
            nodes: rows,
            cleanup: None,
        };
        assert!(report.failed());
        let checks = report.checks();
        assert_eq!(checks.len(), 4);
        assert_eq!(checks[0].name, "load app:dev");
        assert_eq!(checks[0].status, Status::Fail);
        assert!(checks[0].hint.is_some());
    }

    #[tokio::test]
    async fn an_import_cut_off_by_the_deadline_says_so_and_names_the_flag() {
        let mut runtime = cluster();
        runtime.imports.insert(
            "dev-worker".into(),
            Err(DockerError::Timeout {
                operation: "exec ctr --namespace=k8s.io images import".into(),
                seconds: 3,
            }),
        );
        let images = images(&runtime);
        let runtime = Arc::new(runtime);
        let nodes = running_nodes(runtime.as_ref(), "dev")
            .await
            .unwrap_or_else(|e| panic!("{}", e.render()));
        let deadline = Instant::now() + Duration::from_secs(3);
        let rows = load_images(runtime, &nodes, &images, deadline).await;
        let worker = &rows[1];
        assert_eq!(worker.outcome, Outcome::Failed, "{worker:?}");
        assert_eq!(worker.detail, "the import did not finish within 3s");
        let report = LoadReport {
            cluster: "dev".into(),
            images,
            nodes: rows,
            cleanup: None,
        };
        let checks = report.checks();
        let import = &checks[2];
        assert_eq!(import.status, Status::Fail);
        assert!(
            import
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("--timeout")),
            "{import:?}"
        );
    }

    #[tokio::test]
    async fn an_image_id_is_refused_with_how_to_name_it() {
        let mut runtime = cluster();
        // An image ID, short or full: no name a pod could ask for.
        for id in ["111111111111", ID] {
            runtime.local_images.insert(id.into(), ID.into());
            let refused = local_images(&runtime, &[id.to_string()])
                .await
                .err()
                .unwrap_or_else(|| panic!("the image ID {id} was accepted"));
            let text = refused.render();
            assert!(text.contains(&format!("`{id}` is an image ID")), "{text}");
            assert!(
                text.contains(&format!("docker tag {id} my-app:dev")),
                "{text}"
            );
            assert_eq!(refused.exit_code() as i32, 2);
        }
        // A name that happens to be hexadecimal, not a prefix of its ID, is a name.
        runtime.local_images.insert("cafe".into(), ID.into());
        assert!(local_images(&runtime, &["cafe".into()]).await.is_ok());
    }

    #[tokio::test]
    async fn a_missing_image_a_missing_cluster_and_a_stopped_node_are_errors_with_the_next_step() {
        let mut runtime = cluster();
        let missing = local_images(&runtime, &["app:dev".into(), "other:1".into()])
            .await
            .err()
            .unwrap_or_else(|| panic!("a missing image was accepted"));
        let text = missing.render();
        assert!(
            text.contains("image `other:1` is not in the local Docker engine"),
            "{text}"
        );
        assert!(text.contains("docker pull other:1"), "{text}");
        assert!(text.contains("docker build -t other:1"), "{text}");
        assert_eq!(missing.exit_code() as i32, 2);

        let none = running_nodes(&runtime, "elsewhere")
            .await
            .err()
            .unwrap_or_else(|| panic!("a missing cluster was accepted"));
        assert!(none.render().contains("no cluster named `elsewhere`"));
        assert!(none.render().contains("devcluster up --name elsewhere"));

        runtime.nodes[1].state = "exited".into();
        let stopped = running_nodes(&runtime, "dev")
            .await
            .err()
            .unwrap_or_else(|| panic!("a stopped node was accepted"));
        let text = stopped.render();
        assert!(text.contains("dev-worker (exited)"), "{text}");
        assert!(text.contains("docker start dev-worker"), "{text}");
    }
}
