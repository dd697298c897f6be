//! `ReadWriteOncePod`: while one pod holds a claim with that access mode, a
//! second pod on it must stay Pending for the RWOP reason.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::adapters::kube::cluster::ClusterApi;
use crate::adapters::kube::probe::{ProbeNode, ProbeVolume, VolumeSource};
use crate::core::check::{Check, Layer, Status};
use crate::operations::verify::pods::PodContext;
use crate::operations::verify::probes::{Probe, Run};
use crate::operations::verify::runner::describe;

pub struct ReadWriteOncePod;

impl Probe for ReadWriteOncePod {
    fn name(&self) -> &'static str {
        "ReadWriteOncePod"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(async move {
            // Without a class the `storage` row says why; nothing to add.
            let Ok(class) = run.storage_class().await else {
                return Vec::new();
            };
            // ReadWriteOncePod: alpha in 1.22, on by default from 1.27.
            if run.version < (1, 22) {
                return vec![Check::new(
                    "ReadWriteOncePod",
                    None,
                    Layer::Pod,
                    Status::Skip,
                    format!(
                        "not supported by this cluster (Kubernetes {}.{}; needs 1.22+)",
                        run.version.0, run.version.1
                    ),
                )];
            }
            let Ok(context) = run.pods().await else {
                return Vec::new();
            };
            let hint = match run.target.plan {
                Some(_) => {
                    "ReadWriteOncePod needs local-path-provisioner v0.0.30+: node images from kind v0.26.0 or later"
                }
                None => {
                    "the cluster's provisioner or Kubernetes version does not support ReadWriteOncePod"
                }
            };
            vec![read_write_once_pod(run.api, context, &run.schedulable, class, hint).await]
        })
    }
}

/// ReadWriteOncePod: a second pod on the same claim must stay Pending for the
/// RWOP reason while the first runs.
async fn read_write_once_pod(
    api: &dyn ClusterApi,
    context: &PodContext,
    nodes: &[ProbeNode],
    class: &str,
    supported_hint: &str,
) -> Check {
    let check =
        |status, detail: String| Check::new("ReadWriteOncePod", None, Layer::Pod, status, detail);
    let Some(first_node) = nodes.first() else {
        return check(Status::Skip, "no schedulable node".into());
    };
    match api
        .create_claim(&context.namespace, "rwop", class, "ReadWriteOncePod")
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return check(
                Status::Warn,
                "not supported by this cluster: the API rejected the ReadWriteOncePod access mode"
                    .into(),
            )
            .hint(supported_hint.to_string());
        }
        Err(e) => return check(Status::Fail, e.to_string()),
    }
    let volume = ProbeVolume {
        source: VolumeSource::Claim {
            name: "rwop".into(),
        },
        mount_path: "/data".into(),
        sub_path: None,
        read_only: false,
    };
    let mut holder = context.pod(
        "rwop-holder".into(),
        first_node,
        "echo held > /data/held && read -t 3600 line; exit 0".into(),
        vec![volume.clone()],
    );
    holder.via_scheduler = true;
    holder.run_as_root = true;
    // The helper image has no `sleep`: the holder waits on a stdin that stays open.
    holder.stdin = true;
    if let Err(e) = context.runner.create(&holder).await {
        return check(Status::Fail, e);
    }
    match context
        .runner
        .wait("rwop-holder", context.deadline, true)
        .await
    {
        outcome if outcome.phase == "Running" => {}
        outcome => {
            return check(
                Status::Fail,
                format!(
                    "the first pod on the ReadWriteOncePod claim did not start: {}",
                    describe(&outcome)
                ),
            )
            .hint(supported_hint.to_string());
        }
    }
    let mut second = holder.clone();
    second.stdin = false;
    second.name = "rwop-second".into();
    second.script = "echo 'devcluster: second pod ran'".into();
    if let Err(e) = context.runner.create(&second).await {
        return check(Status::Fail, e);
    }
    // The scheduler decides within seconds; give it a short, bounded look.
    let look = Instant::now() + Duration::from_secs(10);
    let deadline = if look < context.deadline {
        look
    } else {
        context.deadline
    };
    match context.runner.wait("rwop-second", deadline, true).await {
        outcome if outcome.phase == "Timeout" || outcome.phase == "Pending" => {
            let reason = outcome
                .events
                .iter()
                .chain(std::iter::once(&outcome.reason))
                .find(|e| e.contains("ReadWriteOncePod"))
                .cloned();
            match reason {
                Some(reason) => check(Status::Ok, format!("second pod kept Pending: {reason}")),
                None => check(
                    Status::Warn,
                    format!(
                        "second pod Pending, but not for the ReadWriteOncePod reason: {}",
                        describe(&outcome)
                    ),
                ),
            }
        }
        outcome => check(
            Status::Fail,
            format!(
                "a second pod used the ReadWriteOncePod claim ({})",
                outcome.phase
            ),
        )
        .hint(supported_hint.to_string()),
    }
}
