//! The layers a mount is proved at, shared by `mount` and `host-path`: the node
//! container (Docker exec) and a pod on the node.

use std::net::{IpAddr, UdpSocket};
use std::path::Path;

use crate::adapters::kube::probe::{ProbeNode, ProbeVolume, VolumeSource};
use crate::core::check::{Check, Layer, Status};
use crate::operations::verify::Target;
use crate::operations::verify::mounts::{self, MountProbe};
use crate::operations::verify::pods::{PodContext, pod_name};
use crate::operations::verify::probes::subpath::Ride;
use crate::operations::verify::runner::{describe, stuck_hint};

/// The node layer of one mount on one node; `true` when the pod layer should run.
pub async fn node_layer(
    target: &Target<'_>,
    node: &str,
    probe: &MountProbe,
    host_path_text: &str,
    host_path: &Path,
    checks: &mut Vec<Check>,
) -> bool {
    let (Some(_), None) = (target.docker, &target.node_layer_skipped) else {
        return true;
    };
    let Some(observed) = target.nodes.iter().find(|n| n.name == node) else {
        checks.push(
            Check::new(
                &format!("mount {}", probe.path),
                Some(node),
                Layer::Node,
                Status::Fail,
                "the node container is missing",
            )
            .hint("`devcluster status` shows the cluster; `devcluster up --recreate` rebuilds it"),
        );
        return false;
    };
    if let Some(check) = mounts::check_bind(
        observed,
        &target.nodes,
        host_path_text,
        &probe.path,
        probe.read_only,
    ) {
        checks.push(check);
        return false;
    }
    node_layer_exec(target, node, probe, host_path, checks).await
}

/// The pod layer of one mount on one node, carrying the node's subPath check
/// when given its `ride`.
pub async fn pod_layer(
    context: &PodContext,
    node: &ProbeNode,
    probe: &MountProbe,
    host_path: &Path,
    prefix: &str,
    index: usize,
    ride: Option<Ride>,
) -> Check {
    let volume = ProbeVolume {
        source: VolumeSource::HostPath {
            path: probe.path.clone(),
            file: probe.file,
        },
        mount_path: probe.path.clone(),
        sub_path: None,
        read_only: false,
    };
    let mut pod = context.pod(
        pod_name(prefix, index),
        node,
        probe.script(Layer::Pod, &node.name),
        vec![volume],
    );
    pod.run_as_root = true;
    let mut outcome = match &ride {
        Some(ride) => {
            let mut carrying = pod.clone();
            carrying.volumes.push(ride.volume());
            carrying.script = format!("{}{}", ride.script(&context.token), pod.script);
            context.run(&carrying).await
        }
        None => context.run(&pod).await,
    };
    if let (Some(ride), Ok(carried)) = (ride, &mut outcome) {
        let blocked = Ride::may_have_blocked(carried);
        ride.finish(carried);
        carried.logs = Ride::strip(&carried.logs);
        if blocked {
            // The key's file may be what the runtime could not make: the mount
            // is tried again alone, and the subPath check runs in its own pod.
            pod.name = format!("{}-alone", pod.name);
            outcome = context.run(&pod).await;
        }
    }
    match outcome {
        Ok(outcome) if outcome.phase == "Timeout" || outcome.exit_code.is_none() => Check::new(
            &format!("mount {}", probe.path),
            Some(&node.name),
            Layer::Pod,
            Status::Fail,
            describe(&outcome),
        )
        .hint(stuck_hint(&outcome, "--probe-image").unwrap_or_else(|| {
            "the probe pod did not finish; its last events are above".to_string()
        })),
        Ok(outcome) => mounts::judge(
            probe,
            Layer::Pod,
            &node.name,
            i64::from(outcome.exit_code.unwrap_or(-1)),
            &outcome.logs,
            host_path,
        ),
        Err(e) => Check::new(
            &format!("mount {}", probe.path),
            Some(&node.name),
            Layer::Pod,
            Status::Fail,
            e,
        ),
    }
}

/// The node layer for a host path on a kind node: the path must exist in the node.
pub async fn node_layer_exec(
    target: &Target<'_>,
    node: &str,
    probe: &MountProbe,
    host_path: &Path,
    checks: &mut Vec<Check>,
) -> bool {
    let Some(docker) = target.docker else {
        return true;
    };
    match docker
        .exec(node, &["sh", "-c", &probe.script(Layer::Node, node)])
        .await
    {
        Ok(output) => {
            let check = mounts::judge(
                probe,
                Layer::Node,
                node,
                output.exit_code,
                &output.stdout,
                host_path,
            );
            let ok = check.status == Status::Ok;
            checks.push(check);
            ok
        }
        Err(e) => {
            checks.push(Check::new(
                &format!("mount {}", probe.path),
                Some(node),
                Layer::Node,
                Status::Fail,
                format!("cannot run the probe in the node container: {e}"),
            ));
            false
        }
    }
}

/// Whether a node is this machine: one of its addresses is local here, or its name
/// is this machine's hostname.
pub fn runs_here(node: &ProbeNode) -> bool {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if !hostname.is_empty() && (node.name == hostname || node.addresses.contains(&hostname)) {
        return true;
    }
    node.addresses.iter().any(|address| {
        address
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || UdpSocket::bind((ip, 0)).is_ok())
    })
}

/// Runs a mount's node layer and pod layer at once, so the pod starts while
/// Docker execs into the node container; the pod's row counts only when the node
/// layer passed (otherwise the layer below is blamed and the pod is not waited for).
pub async fn node_and_pod(
    path: &str,
    node_name: &str,
    node: impl Future<Output = (bool, Vec<Check>)>,
    pod: impl Future<Output = Option<Check>>,
) -> Vec<Check> {
    let (node, pod) = (std::pin::pin!(node), std::pin::pin!(pod));
    let (mut node, mut pod) = (node, pod);
    let mut pod_row: Option<Option<Check>> = None;
    let (node_ok, mut checks) = loop {
        tokio::select! {
            out = &mut node => break out,
            row = &mut pod, if pod_row.is_none() => pod_row = Some(row),
        }
    };
    if !node_ok {
        checks.push(Check::new(
            &format!("mount {path}"),
            Some(node_name),
            Layer::Pod,
            Status::Skip,
            "not judged: the node layer failed",
        ));
        return checks;
    }
    let row = match pod_row {
        Some(row) => row,
        None => pod.await,
    };
    checks.extend(row);
    checks
}
