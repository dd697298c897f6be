//! `subPath`: one ConfigMap key mounted as a single file, from a pod on every
//! schedulable node. A failure here is the node's host or container runtime (the
//! k0s/util-linux case), not the manifest.
//!
//! On a node that gets a mount pod, the check rides in it: the key is one more
//! volume of that pod and one more line of its script, which saves a pod per
//! node. Only a pass is judged there. When the carrying pod cannot say (it never
//! ran, or the key was not what it read), the node's check runs in a pod of its
//! own as it does everywhere else, so every failure is reported from a pod that
//! mounts nothing but the key.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures_util::future::{BoxFuture, join_all};
use tokio::sync::{OnceCell, oneshot};

use crate::adapters::kube::probe::{ProbeVolume, VolumeSource};
use crate::core::check::{Check, Layer, Status};
use crate::operations::verify::pods::pod_name;
use crate::operations::verify::probes::{Probe, Run};
use crate::operations::verify::runner::{PodOutcome, describe, stuck_hint};

pub struct SubPath;

impl Probe for SubPath {
    fn name(&self) -> &'static str {
        "subPath"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(subpath(run))
    }
}

const CONFIG_MAP: &str = "devcluster-subpath";
const KEY: &str = "probe.txt";
/// Where the key appears in a pod of its own.
const OWN_PATH: &str = "/probe/probe.txt";
/// Where it appears in a mount pod: a directory no mount can be at, since a
/// mount's path is checked not to overlap it (see [`Ride::fits`]).
const RIDE_DIR: &str = "/.devcluster-subpath";
/// How a mount pod's script tells the check passed.
const RIDE_PASSED: &str = "devcluster-subpath: ok";

/// The row of a pass, in a pod of its own or in the node's mount pod.
fn passed(node: &str, carried: bool) -> Check {
    let detail = if carried {
        "ConfigMap key mounted as a single file (in the node's mount pod)"
    } else {
        "ConfigMap key mounted as a single file"
    };
    Check::new("subPath", Some(node), Layer::Pod, Status::Ok, detail)
}

async fn subpath(run: &Run<'_>) -> Vec<Check> {
    let made = run.subpath.config_map(run).await;
    let Ok(context) = run.pods().await else {
        return Vec::new();
    };
    if let Err(check) = made {
        return vec![check.clone()];
    }
    let probes = run.schedulable.iter().enumerate().map(|(index, node)| async move {
        if let Some(carried) = run.subpath.carried(&node.name)
            && let Ok(check) = carried.await
        {
            return check;
        }
        let script = format!(
            "IFS= read -r got < {OWN_PATH} || true; [ \"$got\" = '{}' ] && echo 'devcluster: ok' || {{ echo 'devcluster: wrong content'; exit 12; }}",
            context.token
        );
        let volume = ProbeVolume {
            source: VolumeSource::ConfigMap { name: CONFIG_MAP.to_string() },
            mount_path: OWN_PATH.into(),
            sub_path: Some(KEY.into()),
            read_only: true,
        };
        let pod = context.pod(pod_name("subpath", index), node, script, vec![volume]);
        let outcome = context.run(&pod).await;
        let check = |status, detail: String| Check::new("subPath", Some(&node.name), Layer::Pod, status, detail);
        match outcome {
            Ok(outcome) if outcome.succeeded() => passed(&node.name, false),
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

/// The subPath checks that ride in mount pods, one per node at most, and the
/// ConfigMap every subPath check reads.
#[derive(Default)]
pub struct Rides {
    /// The carrying end of each node's ride, with the index (among the probed
    /// mounts) of the mount whose pod carries it, until the mount probe takes it.
    tickets: Mutex<BTreeMap<String, (usize, oneshot::Sender<Check>)>>,
    /// The waiting end, until the subPath probe takes it.
    waiting: Mutex<BTreeMap<String, oneshot::Receiver<Check>>>,
    config_map: OnceCell<Result<(), Check>>,
}

impl Rides {
    /// Rides for `carriers`: node name to the index of the mount whose pod
    /// carries that node's check.
    pub fn new(carriers: BTreeMap<String, usize>) -> Rides {
        let mut tickets = BTreeMap::new();
        let mut waiting = BTreeMap::new();
        for (node, carrier) in carriers {
            let (sender, receiver) = oneshot::channel();
            tickets.insert(node.clone(), (carrier, sender));
            waiting.insert(node, receiver);
        }
        Rides {
            tickets: Mutex::new(tickets),
            waiting: Mutex::new(waiting),
            config_map: OnceCell::new(),
        }
    }

    /// Every ride, taken once, by the mount probe when it starts. A ride
    /// dropped unused sends nothing, and that node's check then runs in a pod of
    /// its own.
    pub fn take_all(&self) -> Tickets {
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        Tickets(std::mem::take(&mut *tickets))
    }

    /// What the node's carrying pod says, when one carries its check.
    fn carried(&self, node: &str) -> Option<oneshot::Receiver<Check>> {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node)
    }

    /// Makes the ConfigMap once (it needs the namespace, not its ServiceAccount).
    pub async fn config_map(&self, run: &Run<'_>) -> Result<(), &Check> {
        self.config_map
            .get_or_init(|| async {
                let base = run.base();
                let data = BTreeMap::from([(KEY.to_string(), base.token.clone())]);
                run.api
                    .create_config_map(&base.namespace, CONFIG_MAP, data)
                    .await
                    .map_err(|e| {
                        Check::new("subPath", None, Layer::Pod, Status::Fail, e.to_string())
                            .hint(e.hint.unwrap_or_default())
                    })
            })
            .await
            .as_ref()
            .copied()
    }
}

/// The rides the mount probe holds, until each mount takes its own.
pub struct Tickets(BTreeMap<String, (usize, oneshot::Sender<Check>)>);

impl Tickets {
    /// The rides mount `index` carries, by node.
    pub fn of_mount(&mut self, index: usize) -> BTreeMap<String, Ride> {
        let (mine, rest) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|(_, (carrier, _))| *carrier == index);
        self.0 = rest;
        mine.into_iter()
            .map(|(node, (_, sender))| (node.clone(), Ride { node, sender }))
            .collect()
    }
}

/// One node's subPath check, carried by a mount pod.
#[derive(Debug)]
pub struct Ride {
    node: String,
    sender: oneshot::Sender<Check>,
}

impl Ride {
    /// Whether the check can ride in a pod that mounts `path`: not at, over or
    /// under its directory.
    pub fn fits(path: &str) -> bool {
        let path = path.trim_end_matches('/');
        !path.is_empty()
            && !RIDE_DIR.starts_with(&format!("{path}/"))
            && path != RIDE_DIR
            && !path.starts_with(&format!("{RIDE_DIR}/"))
    }

    /// The volume to add to the carrying pod.
    pub fn volume(&self) -> ProbeVolume {
        ProbeVolume {
            source: VolumeSource::ConfigMap {
                name: CONFIG_MAP.to_string(),
            },
            mount_path: format!("{RIDE_DIR}/{KEY}"),
            sub_path: Some(KEY.into()),
            read_only: true,
        }
    }

    /// The line to put before the carrying pod's script: it never exits, so the
    /// script after it runs as it would alone.
    pub fn script(&self, token: &str) -> String {
        format!(
            "IFS= read -r got < {RIDE_DIR}/{KEY} 2>/dev/null || true; [ \"$got\" = '{token}' ] && echo '{RIDE_PASSED}'\n"
        )
    }

    /// The carrying pod's logs without the ride's line.
    pub fn strip(logs: &str) -> String {
        logs.lines()
            .filter(|line| *line != RIDE_PASSED)
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// Reports a pass when the carrying pod read the key; anything else leaves
    /// the node's check to a pod of its own.
    pub fn finish(self, outcome: &PodOutcome) {
        if outcome.exit_code.is_some() && outcome.logs.lines().any(|l| l == RIDE_PASSED) {
            // The subPath probe may have stopped waiting: nothing to tell then.
            let _ = self.sender.send(passed(&self.node, true));
        }
    }

    /// Whether the carrying pod may be stuck because of the ride (the runtime
    /// could not create the container with the key's file), so that the mount
    /// must be tried again in a pod without it. An image, the scheduler, or the
    /// mount's own hostPath type is not the ride's doing.
    pub fn may_have_blocked(outcome: &PodOutcome) -> bool {
        outcome.stuck.is_some()
            && !outcome.stuck_on_image()
            && !outcome.unschedulable()
            && !outcome.stuck_on_host_path_type()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ride_fits_beside_any_mount_but_one_at_over_or_under_its_directory() {
        for path in [
            "/data",
            "/srv/app/",
            "/.devcluster-subpath2",
            "/.devcluster",
        ] {
            assert!(Ride::fits(path), "{path}");
        }
        for path in [
            "/",
            "/.devcluster-subpath",
            "/.devcluster-subpath/",
            "/.devcluster-subpath/x",
        ] {
            assert!(!Ride::fits(path), "{path}");
        }
    }

    #[test]
    fn rides_go_to_their_mount_once_and_a_dropped_one_leaves_the_check_to_its_own_pod() {
        let rides = Rides::new(BTreeMap::from([("n1".into(), 0), ("n2".into(), 1)]));
        let mut all = rides.take_all();
        let mut first = all.of_mount(0);
        assert_eq!(first.keys().collect::<Vec<_>>(), ["n1"]);
        assert!(all.of_mount(0).is_empty(), "a mount's rides are taken once");
        assert!(
            rides.take_all().of_mount(1).is_empty(),
            "rides are taken once"
        );
        let first = first.remove("n1");
        let mut carried = rides.carried("n1").unwrap_or_else(|| panic!("n1 rides"));
        assert!(rides.carried("n1").is_none());
        assert!(rides.carried("n3").is_none(), "n3 has no mount pod");
        let ok = PodOutcome {
            phase: "Failed".into(),
            exit_code: Some(11),
            logs: format!("{RIDE_PASSED}\ndevcluster: sentinel not visible\n"),
            ..PodOutcome::default()
        };
        first.unwrap_or_else(|| panic!("n1's ride")).finish(&ok);
        // The mount failing does not make the key's file fail.
        assert_eq!(
            carried.try_recv().map(|c| c.status),
            Ok(Status::Ok),
            "a pass is told"
        );
        let mut second = rides.carried("n2").unwrap_or_else(|| panic!("n2 rides"));
        let never_ran = PodOutcome {
            phase: "Pending".into(),
            stuck: Some("CreateContainerError: file exists".into()),
            ..PodOutcome::default()
        };
        assert!(Ride::may_have_blocked(&never_ran));
        for (_, ride) in all.of_mount(1) {
            ride.finish(&never_ran);
        }
        assert!(
            second.try_recv().is_err(),
            "nothing is told of a pod that did not run"
        );
        assert_eq!(Ride::strip(&ok.logs), "devcluster: sentinel not visible\n");
    }

    #[test]
    fn only_a_stuck_container_may_be_the_rides_doing() {
        let stuck = |reason: &str| PodOutcome {
            phase: "Pending".into(),
            stuck: Some(reason.into()),
            ..PodOutcome::default()
        };
        assert!(!Ride::may_have_blocked(&stuck(
            "ErrImageNeverPull: no image"
        )));
        assert!(!Ride::may_have_blocked(&stuck(
            "Unschedulable: 0/1 nodes are available"
        )));
        assert!(!Ride::may_have_blocked(&stuck(
            "FailedMount: MountVolume.SetUp failed for volume \"v0\" : hostPath type check failed: /data is not a directory"
        )));
        assert!(!Ride::may_have_blocked(&PodOutcome::default()));
    }
}
