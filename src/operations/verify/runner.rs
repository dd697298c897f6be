//! The one pod runner of a run: it watches the pods and events of the probe
//! namespace (two watches for the whole run, not a poll per pod) and wakes each
//! waiting probe when its pod changes. A wait ends as soon as the pod's fate is
//! known: finished, running (when that is what was asked), or stuck in a state it
//! will not leave by itself (an image that cannot be pulled, a container the
//! runtime cannot create, a hostPath of the wrong type, a pod the scheduler cannot
//! place, a kubelet rejection, a container that already ended).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::adapters::kube::cluster::ClusterApi;
use crate::adapters::kube::probe::ProbePod;
use crate::adapters::kube::watch::{
    Change, ContainerState, ObservedEvent, ObservedPod, WatchHandle,
};

/// How long a waiting pull counts as one failed retry: longer than the kubelet's
/// first image back-off (10 s, `pkg/kubelet/images/image_manager.go`).
const PULL_BACK_OFF: Duration = Duration::from_secs(15);
/// How often a wait looks at the clock when nothing changes (for the pull
/// back-off and the deadline; no request is made).
const TICK: Duration = Duration::from_millis(500);
/// The last line every probe script run to its end prints, as its last act
/// before it exits 0 (see [`PodRunner::run`]).
pub const PASSED: &str = "devcluster: ok";

/// How a probe pod ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodOutcome {
    /// `Succeeded`, `Failed`, `Pending`, `Running`, or `Timeout`.
    pub phase: String,
    pub exit_code: Option<i32>,
    pub logs: String,
    /// The pod's events, oldest first, as `Reason: message`.
    pub events: Vec<String>,
    /// The container's waiting/terminated reason and message, or the scheduler's.
    pub reason: String,
    /// Set when the pod can never get further: the kubelet's or the scheduler's
    /// own words. The wait ended there instead of at the deadline.
    pub stuck: Option<String>,
    /// Set when the kubelet was refused something only for a moment and will try
    /// again only after its pod worker's back-off (see [`transient_refusal`]).
    pub refused_for_now: Option<String>,
}

impl PodOutcome {
    pub fn succeeded(&self) -> bool {
        self.phase == "Succeeded" && self.exit_code == Some(0)
    }

    /// Whether the scheduler could not place the pod (nothing of it ran).
    pub fn unschedulable(&self) -> bool {
        self.stuck
            .as_deref()
            .is_some_and(|s| s.starts_with("Unschedulable"))
    }

    /// Whether the pod is stuck on a hostPath of the wrong type (see [`judge`]).
    pub fn stuck_on_host_path_type(&self) -> bool {
        self.stuck
            .as_deref()
            .is_some_and(|s| s.contains(HOST_PATH_TYPE))
    }

    /// Whether the pod is stuck on its image, not on what it mounts.
    pub fn stuck_on_image(&self) -> bool {
        self.stuck
            .as_deref()
            .is_some_and(|s| IMAGE_REASONS.iter().any(|r| s.starts_with(r)))
    }
}

/// The kubelet's words for a hostPath of the wrong type
/// (`volume/hostpath/host_path.go`, `checkType`).
const HOST_PATH_TYPE: &str = "hostPath type check failed";

const IMAGE_REASONS: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
];

/// What the watches have seen so far.
#[derive(Default)]
struct Seen {
    pods: BTreeMap<String, ObservedPod>,
    /// In arrival order, replaced by id.
    events: Vec<ObservedEvent>,
}

/// Watches one namespace's pods and events for every probe of a run.
#[derive(Clone)]
pub struct PodRunner {
    api: Arc<dyn ClusterApi>,
    namespace: String,
    seen: Arc<Mutex<Seen>>,
    changed: tokio::sync::watch::Sender<u64>,
    _watches: Arc<(WatchHandle, WatchHandle)>,
}

impl PodRunner {
    /// Starts watching `namespace`.
    pub fn start(api: &Arc<dyn ClusterApi>, namespace: &str) -> PodRunner {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let (changed, _) = tokio::sync::watch::channel(0u64);
        let pods = {
            let (seen, changed) = (seen.clone(), changed.clone());
            let on_change = move |change: Change<ObservedPod>| {
                {
                    let mut seen = lock(&seen);
                    match change {
                        Change::Reset(pods) => {
                            seen.pods = pods.into_iter().map(|p| (p.name.clone(), p)).collect();
                        }
                        Change::Applied(pod) => {
                            seen.pods.insert(pod.name.clone(), pod);
                        }
                        // A deleted pod keeps its last state: its outcome is known.
                        Change::Deleted(_) => {}
                    }
                }
                changed.send_modify(|n| *n += 1);
            };
            api.watch_pods(namespace, Box::new(on_change))
        };
        let events = {
            let (seen, changed) = (seen.clone(), changed.clone());
            let on_change = move |change: Change<ObservedEvent>| {
                {
                    let mut seen = lock(&seen);
                    match change {
                        Change::Reset(events) => seen.events = events,
                        Change::Applied(event) => {
                            match seen.events.iter_mut().find(|e| e.id == event.id) {
                                Some(known) => *known = event,
                                None => seen.events.push(event),
                            }
                        }
                        Change::Deleted(_) => {}
                    }
                }
                changed.send_modify(|n| *n += 1);
            };
            api.watch_events(namespace, Box::new(on_change))
        };
        PodRunner {
            api: api.clone(),
            namespace: namespace.to_string(),
            seen,
            changed,
            _watches: Arc::new((pods, events)),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Creates the pod and waits for it to finish, or `deadline`. A pod the
    /// kubelet was refused for only a moment (see [`transient_refusal`]) is
    /// replaced once by a copy named `NAME-again` rather than waited out: the
    /// kubelet retries the original only after its back-off.
    ///
    /// The pod's script must print [`PASSED`] as its last line only when it
    /// passed, right before it exits 0: a pass is then known from the logs once
    /// the container has started. The kubelet tells the container ended only at
    /// its next relist of the runtime, up to a second later
    /// (`pkg/kubelet/pleg/generic.go`, `relistPeriod`), and that second would be
    /// on every probe's path. Failures are judged on the container's end as
    /// before, exit code and all.
    pub async fn run(&self, pod: &ProbePod, deadline: Instant) -> Result<PodOutcome, String> {
        self.create(pod).await?;
        let outcome = self
            .wait_for(
                &pod.name,
                deadline,
                Until {
                    end_on_refusal: true,
                    ..Until::FINISHED
                },
            )
            .await;
        let Some(refusal) = outcome.refused_for_now else {
            return Ok(outcome);
        };
        let mut again = pod.clone();
        again.name = format!("{}-again", pod.name.chars().take(57).collect::<String>());
        self.create(&again).await?;
        let mut outcome = self.wait_for(&again.name, deadline, Until::FINISHED).await;
        outcome.events.insert(
            0,
            format!("devcluster: replaced pod {} ({refusal})", pod.name),
        );
        Ok(outcome)
    }

    /// Follows a pod's logs until [`PASSED`]; never done when they end without it
    /// (the pod's state then tells the rest).
    fn follow(&self, pod: &str) -> Following {
        let (api, namespace, pod) = (self.api.clone(), self.namespace.clone(), pod.to_string());
        Box::pin(async move {
            match api.logs_reach(&namespace, &pod, PASSED).await {
                Ok(Some(logs)) => logs,
                _ => std::future::pending().await,
            }
        })
    }

    pub async fn create(&self, pod: &ProbePod) -> Result<(), String> {
        self.api
            .create_pod(&self.namespace, pod)
            .await
            .map_err(|e| e.render().trim().to_string())
    }

    /// Waits until the pod has finished (or, with `until_running`, is Running), is
    /// stuck, or `deadline`; then collects its logs and events.
    pub async fn wait(&self, name: &str, deadline: Instant, until_running: bool) -> PodOutcome {
        let until = Until {
            running: until_running,
            end_on_refusal: false,
            passed_in_logs: false,
        };
        self.wait_for(name, deadline, until).await
    }

    /// [`PodRunner::wait`], ending early too as `until` says.
    async fn wait_for(&self, name: &str, deadline: Instant, until: Until) -> PodOutcome {
        let until_running = until.running;
        let mut changes = self.changed.subscribe();
        let mut pull = PullWatch::default();
        // The started container's logs, followed once (see [`PodRunner::run`]).
        let mut follow: Option<Following> = None;
        let mut outcome = loop {
            changes.mark_unchanged();
            let (pod, events) = {
                let seen = lock(&self.seen);
                (seen.pods.get(name).cloned(), events_of(&seen.events, name))
            };
            // Not on the kubelet's `Started` event: its log endpoint serves a
            // container only once its status says so (`pkg/kubelet/kubelet_pods.go`,
            // `validateContainerLogStatus`).
            let started = pod
                .as_ref()
                .is_some_and(|p| matches!(p.container, Some(ContainerState::Running)));
            let outcome = judge(pod.as_ref(), &events, until_running, &mut pull);
            let finished = matches!(outcome.phase.as_str(), "Succeeded" | "Failed");
            if until.passed_in_logs && started && !finished && follow.is_none() {
                follow = Some(self.follow(name));
            }
            if outcome.stuck.is_some()
                || (until.end_on_refusal && outcome.refused_for_now.is_some())
                || finished
                || (until_running && outcome.phase == "Running")
            {
                break outcome;
            }
            if Instant::now() >= deadline {
                let mut outcome = outcome;
                if outcome.phase == "Pending" || outcome.phase == "Running" {
                    outcome.phase = "Timeout".into();
                }
                break outcome;
            }
            let wake = deadline.min(Instant::now() + TICK);
            let passed = tokio::select! {
                _ = changes.changed() => None,
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => None,
                logs = following(&mut follow) => Some(logs),
            };
            if let Some(logs) = passed {
                break PodOutcome {
                    phase: "Succeeded".into(),
                    exit_code: Some(0),
                    logs,
                    ..outcome
                };
            }
        };
        if outcome.logs.is_empty() && (outcome.phase != "Timeout" || outcome.exit_code.is_some()) {
            outcome.logs = self
                .api
                .logs(&self.namespace, name)
                .await
                .unwrap_or_default();
        }
        outcome
    }
}

/// A started container's logs being followed, done with the logs up to
/// [`PASSED`] when they reach it.
type Following = futures_util::future::BoxFuture<'static, String>;

/// The followed logs once they pass; pending while nothing is followed.
async fn following(follow: &mut Option<Following>) -> String {
    match follow {
        Some(logs) => logs.await,
        None => std::future::pending().await,
    }
}

/// When a wait ends, besides the pod finishing, being stuck, or the deadline.
#[derive(Debug, Clone, Copy)]
struct Until {
    /// When the container runs.
    running: bool,
    /// On a momentary refusal (see [`transient_refusal`]).
    end_on_refusal: bool,
    /// When a started container's logs end in [`PASSED`].
    passed_in_logs: bool,
}

impl Until {
    const FINISHED: Until = Until {
        running: false,
        end_on_refusal: false,
        passed_in_logs: true,
    };
}

impl std::fmt::Debug for PodRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodRunner")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

fn events_of(events: &[ObservedEvent], pod: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == "Pod" && e.object == pod)
        .map(|e| format!("{}: {}", e.reason, e.message))
        .collect()
}

fn join(reason: &str, message: &str) -> String {
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        (true, _) => message.to_string(),
    }
}

/// What is known of a pod now, and whether it is stuck.
fn judge(
    pod: Option<&ObservedPod>,
    events: &[String],
    until_running: bool,
    pull: &mut PullWatch,
) -> PodOutcome {
    let mut outcome = PodOutcome {
        phase: "Pending".into(),
        events: events.to_vec(),
        ..PodOutcome::default()
    };
    let Some(pod) = pod else {
        return outcome;
    };
    outcome.phase = pod.phase.clone();
    match &pod.container {
        Some(ContainerState::Terminated {
            exit_code,
            reason,
            message,
        }) => {
            outcome.exit_code = Some(*exit_code);
            outcome.reason = join(reason, message);
            // A container that ended will not run again (restartPolicy Never).
            if until_running && pod.phase != "Succeeded" && pod.phase != "Failed" {
                outcome.stuck = Some(format!("the container ended: {}", outcome.reason));
            }
        }
        Some(ContainerState::Waiting { reason, message }) => {
            outcome.reason = join(reason, message);
            if pull.hopeless(reason, message, Instant::now()) {
                outcome.stuck = Some(outcome.reason.clone());
            }
        }
        Some(ContainerState::Running) => {}
        None => {
            if let Some(reason) = pod.reason.clone().or_else(|| pod.unscheduled.clone()) {
                outcome.reason = reason;
            }
        }
    }
    if pod.phase == "Pending" && outcome.stuck.is_none() {
        outcome.refused_for_now = events.iter().find(|e| transient_refusal(e)).cloned();
    }
    if pod.phase == "Pending" && outcome.stuck.is_none() {
        // A hostPath of the wrong type is reported only as an event; the kubelet
        // retries the mount forever (`volume/hostpath/host_path.go`, `checkType`:
        // "hostPath type check failed").
        outcome.stuck = events
            .iter()
            .find(|e| e.starts_with("FailedMount:") && e.contains(HOST_PATH_TYPE))
            .cloned();
    }
    if pod.phase == "Pending" && outcome.stuck.is_none() {
        // The scheduler's verdict: it retries, but nothing a probe waits for
        // changes it (`pkg/scheduler/framework/plugins/volumerestrictions`,
        // "...ReadWriteOncePod access mode"; `tainttoleration`, "untolerated
        // taint"). A claim still being provisioned is not a verdict.
        outcome.stuck = pod
            .unscheduled
            .as_ref()
            .filter(|u| u.starts_with("Unschedulable") && !waits_for_volume(u))
            .cloned();
    }
    outcome
}

/// The node authorizer refusing the kubelet a pod's claim because its graph has
/// not yet seen the pod bound to the node: the kubelet saw the binding first
/// (`plugin/pkg/auth/authorizer/node/node_authorizer.go`, "no relationship found
/// between node"; kubernetes#113429). It passes within a second, but the failed
/// sync puts the pod behind the pod worker's back-off, 10 s plus up to half again
/// (`pkg/kubelet/pod_workers.go`, `workerBackOffPeriod`). A new pod for the same
/// claim is placed in about a second.
fn transient_refusal(event: &str) -> bool {
    event.starts_with("FailedMount:") && event.contains("no relationship found between node")
}

/// Scheduler messages that pass once a claim is bound or provisioned
/// (`pkg/scheduler/framework/plugins/volumebinding`), or once the scheduler's
/// caches have seen a claim created just before its pod: the binder's assume
/// cache reports it as "error getting PVC ...: could not find
/// v1.PersistentVolumeClaim" (`pkg/controller/volume/scheduling`,
/// `scheduler_binder.go` `isPVCBound`, `scheduler_assume_cache.go`
/// `errNotFound`), its lister as `persistentvolumeclaim "..." not found`. The
/// claim's add event puts the pod back in the active queue
/// (`pkg/scheduler/eventhandlers.go`, `onPvcAdd`).
fn waits_for_volume(message: &str) -> bool {
    [
        "unbound immediate PersistentVolumeClaims",
        "waiting for first consumer",
        "persistentvolumeclaim",
        "error getting PVC",
        "could not find v1.PersistentVolumeClaim",
        "didn't find available persistent volumes",
        "node(s) didn't find available persistent volumes to bind",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// What to do about a pod that can never get further (see [`PodOutcome::stuck`]);
/// `image_flag` is the flag that chooses its image.
pub fn stuck_hint(outcome: &PodOutcome, image_flag: &str) -> Option<String> {
    let stuck = outcome.stuck.as_deref()?;
    Some(if outcome.stuck_on_image() {
        format!(
            "the kubelet cannot pull the image: pass `{image_flag} IMAGE` with an image this cluster can pull (or put a local image on the nodes with `devcluster load IMAGE`), or change `--image-pull-policy`"
        )
    } else if outcome.stuck_on_host_path_type() {
        "the path in the node is not what the mount says (a directory or a file): compare the node's path with the mount's `type`".to_string()
    } else if stuck.starts_with("Unschedulable") {
        "the scheduler cannot place the probe pod; its message is above (`kubectl describe pod` in the probe namespace shows it too)".to_string()
    } else {
        "the container runtime cannot create the container; its message is above".to_string()
    })
}

/// The last events of a pod that did not finish, for the detail line.
pub fn describe(outcome: &PodOutcome) -> String {
    let mut parts = Vec::new();
    if !outcome.reason.is_empty() {
        parts.push(outcome.reason.clone());
    }
    let events: Vec<&String> = outcome.events.iter().rev().take(2).collect();
    for event in events.into_iter().rev() {
        if !parts.iter().any(|p| p == event) {
            parts.push(event.clone());
        }
    }
    if parts.is_empty() {
        format!("pod {}", outcome.phase)
    } else {
        format!("pod {}: {}", outcome.phase, parts.join("; "))
    }
}

/// Decides when a container's waiting reason means it will never start. The
/// kubelet retries image pulls forever with a growing back-off (ErrImagePull,
/// then ImagePullBackOff, then ErrImagePull again): a pull that failed again after
/// its first back-off will not succeed by itself. A missing image under
/// `imagePullPolicy: Never`, an invalid image name and a container the runtime
/// cannot create are final at once (`pkg/kubelet/images/types.go`,
/// `pkg/kubelet/container/sync_result.go`), except a kubelet that has not yet
/// listed the cluster's Services once: it cannot build any container's
/// environment until it has, and says so (`pkg/kubelet/kubelet_pods.go`,
/// `makeEnvironmentVariables`: "services have not yet been read at least once").
/// That passes within seconds of the kubelet's start. So does a runtime too
/// busy to create a container within the kubelet's runtime request timeout
/// (two minutes by default, `--runtime-request-timeout`): the kubelet reports
/// `context deadline exceeded`, then containerd refuses the retries while the
/// first create still holds the name ("name ... is reserved for ...",
/// `pkg/registrar/registrar.go`), until that create ends.
#[derive(Debug, Default)]
struct PullWatch {
    backed_off_since: Option<Instant>,
}

impl PullWatch {
    fn hopeless(&mut self, reason: &str, message: &str, now: Instant) -> bool {
        match reason {
            "ErrImageNeverPull" | "InvalidImageName" => true,
            "CreateContainerError" => {
                !(message.contains("context deadline exceeded")
                    || message.contains("is reserved for"))
            }
            "CreateContainerConfigError" => !message.contains("services have not yet been read"),
            "ImagePullBackOff" => {
                let since = *self.backed_off_since.get_or_insert(now);
                now.duration_since(since) >= PULL_BACK_OFF
            }
            "ErrImagePull" => self.backed_off_since.is_some(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(unscheduled: Option<&str>, container: Option<ContainerState>) -> ObservedPod {
        ObservedPod {
            name: "p".into(),
            phase: "Pending".into(),
            container,
            unscheduled: unscheduled.map(str::to_string),
            reason: None,
        }
    }

    #[test]
    fn terminal_states_end_the_wait_and_transient_ones_do_not() {
        let mut pull = PullWatch::default();
        // The scheduler's RWOP verdict is final; a claim being provisioned is not.
        let rwop = pending(
            Some(
                "Unschedulable: 0/1 nodes are available: 1 node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode.",
            ),
            None,
        );
        assert!(judge(Some(&rwop), &[], true, &mut pull).stuck.is_some());
        let binding = pending(
            Some(
                "Unschedulable: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
            ),
            None,
        );
        assert!(judge(Some(&binding), &[], true, &mut pull).stuck.is_none());
        // A claim the scheduler's caches have not seen yet (kube-scheduler 1.20
        // on a real kind cluster, the claim created a moment before the pod).
        for unseen in [
            "Unschedulable: running PreFilter plugin \"VolumeBinding\": error getting PVC \"ns/claim-0\": could not find v1.PersistentVolumeClaim \"ns/claim-0\"",
            "Unschedulable: 0/3 nodes are available: persistentvolumeclaim \"claim-0\" not found.",
        ] {
            let pod = pending(Some(unseen), None);
            assert!(
                judge(Some(&pod), &[], true, &mut pull).stuck.is_none(),
                "{unseen}"
            );
        }
        // A container that ended while Running was awaited.
        let mut ended = pending(
            None,
            Some(ContainerState::Terminated {
                exit_code: 1,
                reason: "Error".into(),
                message: String::new(),
            }),
        );
        ended.phase = "Running".into();
        let outcome = judge(Some(&ended), &[], true, &mut pull);
        assert_eq!(outcome.exit_code, Some(1));
        assert!(outcome.stuck.is_some());
        assert!(judge(Some(&ended), &[], false, &mut pull).stuck.is_none());
        // A kubelet that has not yet read the Services builds no container's
        // environment, and a runtime that timed out on a create is busy: both
        // will get further. A missing ConfigMap, or a runtime that cannot bind
        // the mount (the k0s/util-linux case), will not.
        let waiting = |reason: &str, message: &str| {
            pending(
                None,
                Some(ContainerState::Waiting {
                    reason: reason.into(),
                    message: message.into(),
                }),
            )
        };
        for (reason, message, ends) in [
            (
                "CreateContainerConfigError",
                "services have not yet been read at least once, cannot construct envvars",
                false,
            ),
            (
                "CreateContainerConfigError",
                "configmap \"probe\" not found",
                true,
            ),
            ("CreateContainerError", "context deadline exceeded", false),
            (
                "CreateContainerError",
                "failed to reserve container name \"probe_mnt0-0_ns_1\": name \"probe_mnt0-0_ns_1\" is reserved for \"4f1c\"",
                false,
            ),
            (
                "CreateContainerError",
                "failed to create containerd task: OCI runtime create failed: error mounting \"/var/lib/kubelet/pods/x/volume-subpaths/key/probe/0\" to rootfs: not a directory",
                true,
            ),
        ] {
            let pod = waiting(reason, message);
            let stuck = judge(Some(&pod), &[], true, &mut pull).stuck;
            assert_eq!(stuck.is_some(), ends, "{reason}: {message}");
        }
        // ContainerCreating is on its way.
        let creating = waiting("ContainerCreating", "");
        assert!(
            judge(Some(&creating), &[], false, &mut pull)
                .stuck
                .is_none()
        );
        // The node authorizer's momentary refusal is not a verdict, but is told.
        let refused = ["FailedMount: Unable to attach or mount volumes: error processing PVC ns/claim-0: failed to fetch PVC from API server: persistentvolumeclaims \"claim-0\" is forbidden: User \"system:node:n1\" cannot get resource \"persistentvolumeclaims\" in API group \"\" in the namespace \"ns\": no relationship found between node 'n1' and this object".to_string()];
        let outcome = judge(Some(&creating), &refused, false, &mut pull);
        assert!(outcome.stuck.is_none());
        assert_eq!(
            outcome.refused_for_now.as_deref(),
            Some(refused[0].as_str())
        );
        // Other mount failures are not that.
        let other = [
            "FailedMount: MountVolume.SetUp failed for volume \"v0\" : configmap \"x\" not found"
                .to_string(),
        ];
        assert!(
            judge(Some(&creating), &other, false, &mut pull)
                .refused_for_now
                .is_none()
        );
    }
}
