//! `storage`: a claim on the storage class binds and is writable from a pod on
//! every schedulable node, tainted ones too.

use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, join_all};

use crate::adapters::kube::cluster::ClusterApi;
use crate::adapters::kube::probe::{ProbeNode, ProbeVolume, VolumeSource};
use crate::core::check::{Check, Layer, Status};
use crate::operations::verify::pods::{PodContext, pod_name};
use crate::operations::verify::probes::{Probe, Run};
use crate::operations::verify::runner::{describe, stuck_hint};

pub struct Storage;

impl Probe for Storage {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(async move {
            // The class is looked up, and the claims made, while the namespace's
            // ServiceAccount appears: only pods wait for it.
            let class = match run.storage_class().await {
                Ok(class) => class,
                Err(check) => return vec![check.clone()],
            };
            storage(run, &run.schedulable, class).await
        })
    }
}

/// Storage: a claim on `class` binds and is writable from a pod on each node.
/// When it does not on a tainted node, say whether the provisioner's helper pods
/// are what is stuck (local-path-provisioner v0.0.32+ in kind v0.31/v0.32 images,
/// kind#4100; the MicroK8s hostpath provisioner too).
async fn storage(run: &Run<'_>, nodes: &[ProbeNode], class: &str) -> Vec<Check> {
    let api = run.api;
    let probes = nodes.iter().enumerate().map(|(index, node)| async move {
        let claim = pod_name("claim", index);
        let check = |status, detail: String| Check::new("storage", Some(&node.name), Layer::Pod, status, detail);
        match api.create_claim(&run.base().namespace, &claim, class, "ReadWriteOnce").await {
            Ok(true) => {}
            Ok(false) => return check(Status::Fail, format!("the API rejected a ReadWriteOnce claim on `{class}`")),
            Err(e) => return check(Status::Fail, e.to_string()),
        }
        let context: &PodContext = match run.pods().await {
            Ok(context) => context,
            Err(check) => return check,
        };
        let volume = ProbeVolume {
            source: VolumeSource::Claim { name: claim.clone() },
            mount_path: "/data".into(),
            sub_path: None,
            read_only: false,
        };
        let script = format!(
            "echo '{}' > /data/probe && {{ IFS= read -r got < /data/probe || true; }} && [ \"$got\" = '{}' ] && echo 'devcluster: ok'",
            context.token, context.token
        );
        let mut pod = context.pod(pod_name("storage", index), node, script, vec![volume]);
        pod.via_scheduler = true;
        pod.run_as_root = true;
        // A helper the kubelet rejected for this claim will not come back: the
        // probe ends there instead of at the deadline.
        let outcome = tokio::select! {
            outcome = context.run(&pod) => outcome,
            message = rejected_helper_watch(api, &context.namespace, &claim, context.deadline), if !node.taints.is_empty() => {
                return check(
                    Status::Fail,
                    format!("the provisioner's helper pod cannot run on this tainted node: {message}"),
                )
                .hint(HELPER_HINT);
            }
        };
        match outcome {
            Ok(outcome) if outcome.succeeded() => check(Status::Ok, format!("claim on `{class}` bound and writable")),
            Ok(outcome) if outcome.stuck_on_image() || (outcome.unschedulable() && node.taints.is_empty()) => check(Status::Fail, describe(&outcome))
                .hint(stuck_hint(&outcome, "--probe-image").unwrap_or_default()),
            Ok(outcome) => {
                let stuck = if node.taints.is_empty() { None } else { stuck_helpers(api, &context.namespace, &claim).await };
                match stuck {
                    Some(message) => check(
                        Status::Fail,
                        format!("the provisioner's helper pod cannot run on this tainted node: {message}"),
                    )
                    .hint(HELPER_HINT),
                    None => check(Status::Fail, describe(&outcome)),
                }
            }
            Err(e) => check(Status::Fail, e),
        }
    });
    join_all(probes).await
}

const HELPER_HINT: &str = "the provisioner's helper pods lack tolerations for this node's taints (local-path-provisioner v0.0.32+ in kind v0.31/v0.32 node images binds them with nodeName, so the kubelet rejects them on NoExecute taints); `devcluster up` adds Exists tolerations to `local-path-config`'s helperPod.yaml, or upgrade kind";

/// Completes, quoting the cluster, once the kubelet has rejected the helper pod
/// of `claim`; never before the deadline otherwise.
async fn rejected_helper_watch(
    api: &dyn ClusterApi,
    namespace: &str,
    claim: &str,
    deadline: Instant,
) -> String {
    loop {
        if let Some(message) = rejected_helper(api, namespace, claim).await {
            return message;
        }
        if Instant::now() >= deadline {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The kubelet's rejection of the helper pod local-path-provisioner made for
/// `claim` (named after its volume, `pvc-<claim UID>`), with the claim's
/// `ProvisioningFailed` event when there is one.
async fn rejected_helper(api: &dyn ClusterApi, namespace: &str, claim: &str) -> Option<String> {
    let uid = api.claim_uid(namespace, claim).await?;
    for helpers in ["local-path-storage", "kube-system"] {
        let rejected = api
            .namespace_events(helpers, "TaintToleration")
            .await
            .unwrap_or_default()
            .into_iter()
            .find(|(object, _)| object.contains(&uid));
        if let Some((object, message)) = rejected {
            let mut text =
                format!("the kubelet rejected {helpers}/{object} (TaintToleration: {message})");
            let provisioning = api
                .events(namespace, "PersistentVolumeClaim", claim)
                .await
                .unwrap_or_default()
                .into_iter()
                .rev()
                .find(|e| e.starts_with("ProvisioningFailed:"));
            if let Some(event) = provisioning {
                text.push_str(&format!("; the claim says {event}"));
            }
            return Some(text);
        }
    }
    None
}

/// Why a provisioner's helper pod could not serve the claim, quoting the cluster.
/// Two faces: local-path-provisioner binds helpers with `nodeName`
/// (`provisioner.go`, `createHelperPod`), so the kubelet rejects one on an
/// untolerated NoExecute taint (event `TaintToleration`, then the taint manager
/// deletes it) and the claim gets `ProvisioningFailed`; a provisioner that places
/// helpers through the scheduler (MicroK8s' hostpath provisioner) leaves them
/// Pending with the scheduler's untolerated-taint message.
async fn stuck_helpers(api: &dyn ClusterApi, namespace: &str, claim: &str) -> Option<String> {
    if let Some(message) = rejected_helper(api, namespace, claim).await {
        return Some(message);
    }
    let claim_events = api
        .events(namespace, "PersistentVolumeClaim", claim)
        .await
        .unwrap_or_default();
    let provisioning = claim_events
        .into_iter()
        .rev()
        .find(|e| e.starts_with("ProvisioningFailed:"));
    if let Some(event) = provisioning {
        return Some(format!("the claim says {event}"));
    }
    for namespace in ["local-path-storage", "kube-system"] {
        if let Ok(pending) = api.pending_pods(namespace).await
            && let Some((name, message)) = pending.into_iter().find(|(name, message)| {
                (name.contains("helper") || name.contains("hostpath")) && !message.is_empty()
            })
        {
            return Some(format!("{namespace}/{name}: {message}"));
        }
    }
    None
}
