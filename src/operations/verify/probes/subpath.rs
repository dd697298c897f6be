//! `subPath`: one ConfigMap key mounted as a single file, from a pod on every
//! schedulable node. A failure here is the node's host or container runtime (the
//! k0s/util-linux case), not the manifest.

use std::collections::BTreeMap;

use futures_util::future::{BoxFuture, join_all};

use crate::adapters::kube::probe::{ProbeVolume, VolumeSource};
use crate::core::check::{Check, Layer, Status};
use crate::operations::verify::pods::pod_name;
use crate::operations::verify::probes::{Probe, Run};
use crate::operations::verify::runner::{describe, stuck_hint};

pub struct SubPath;

impl Probe for SubPath {
    fn name(&self) -> &'static str {
        "subPath"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(subpath(run))
    }
}

async fn subpath(run: &Run<'_>) -> Vec<Check> {
    let Ok(context) = run.pods().await else {
        return Vec::new();
    };
    let config_map = "devcluster-subpath";
    let data = BTreeMap::from([("probe.txt".to_string(), context.token.clone())]);
    if let Err(e) = run
        .api
        .create_config_map(&context.namespace, config_map, data)
        .await
    {
        return vec![
            Check::new("subPath", None, Layer::Pod, Status::Fail, e.to_string())
                .hint(e.hint.unwrap_or_default()),
        ];
    }
    let probes = run.schedulable.iter().enumerate().map(|(index, node)| async move {
        let script = format!(
            "IFS= read -r got < /probe/probe.txt || true; [ \"$got\" = '{}' ] && echo 'devcluster: ok' || {{ echo 'devcluster: wrong content'; exit 12; }}",
            context.token
        );
        let volume = ProbeVolume {
            source: VolumeSource::ConfigMap { name: config_map.to_string() },
            mount_path: "/probe/probe.txt".into(),
            sub_path: Some("probe.txt".into()),
            read_only: true,
        };
        let pod = context.pod(pod_name("subpath", index), node, script, vec![volume]);
        let outcome = context.run(&pod).await;
        let check = |status, detail: String| Check::new("subPath", Some(&node.name), Layer::Pod, status, detail);
        match outcome {
            Ok(outcome) if outcome.succeeded() => check(Status::Ok, "ConfigMap key mounted as a single file".into()),
            Ok(outcome) if outcome.stuck_on_image() || outcome.unschedulable() => check(Status::Fail, describe(&outcome))
                .hint(stuck_hint(&outcome, "--probe-image").unwrap_or_default()),
            Ok(outcome) => {
                let runtime = outcome
                    .events
                    .iter()
                    .chain(std::iter::once(&outcome.reason))
                    .find(|e| e.contains("CreateContainerError") || e.contains("Failed") || e.contains("file exists") || e.contains("subPath"))
                    .cloned();
                match runtime {
                    Some(message) => check(Status::Fail, format!("the runtime could not mount the file: {message}"))
                        .hint("this is the node's host or container runtime (e.g. a util-linux bind-mount bug), not the manifest: update the node's OS/runtime"),
                    None => check(Status::Fail, describe(&outcome)),
                }
            }
            Err(e) => check(Status::Fail, e),
        }
    });
    join_all(probes).await
}
