//! Changes to the pods and events of one namespace as the API server reports them:
//! one list, then one watch from the list's resourceVersion, re-opened from the
//! last version seen when the server ends it, and started over with a fresh list
//! when that version is too old (410 Gone). This is the list-then-watch contract
//! of the Kubernetes API ("Efficient detection of changes" in
//! `docs/reference/using-api/api-concepts.md`), as client-go's reflector
//! (`tools/cache/reflector.go`, `ListAndWatch`) implements it. A user who may list
//! but not watch gets the same changes from a list every second.

use std::fmt::Debug;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::core::Resource;
use serde::de::DeserializeOwned;

use crate::adapters::kube::client::{Kube, is_status};

/// How long one watch request may stay open before the server ends it (the
/// client re-opens it from the last version seen).
const WATCH_SECONDS: u32 = 290;
/// Between retries after an error, and between lists when watching is refused.
const RETRY: Duration = Duration::from_secs(1);

/// What the kubelet reports about a pod's (first) container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Not started: `ContainerCreating`, `ErrImagePull`, `ImagePullBackOff`,
    /// `CreateContainerError`...
    Waiting {
        reason: String,
        message: String,
    },
    Running,
    Terminated {
        exit_code: i32,
        reason: String,
        message: String,
    },
}

/// A pod as its status reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedPod {
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed` (`Pending` before the first status).
    pub phase: String,
    pub container: Option<ContainerState>,
    /// The scheduler's `PodScheduled=False` condition, as `reason: message`.
    pub unscheduled: Option<String>,
    /// The pod's own status reason and message (a kubelet rejection), as `reason: message`.
    pub reason: Option<String>,
}

/// An event, as `kubectl get events` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedEvent {
    /// The event object's own name (`<object>.<id>`).
    pub id: String,
    /// What it is about: kind and name.
    pub kind: String,
    pub object: String,
    pub reason: String,
    pub message: String,
}

/// One change in a watched collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// The whole collection, from a (re)list: what was known before is replaced.
    Reset(Vec<T>),
    /// Added or modified.
    Applied(T),
    Deleted(T),
}

/// A running watch; dropping it ends it.
#[derive(Debug)]
pub struct WatchHandle(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Kube {
    /// Watches the pods of `namespace`, handing every change to `on_change`.
    pub fn watch_pods(
        &self,
        namespace: &str,
        on_change: impl FnMut(Change<ObservedPod>) + Send + 'static,
    ) -> WatchHandle {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        WatchHandle(tokio::spawn(list_and_watch(api, observed_pod, on_change)))
    }

    /// Watches the events of `namespace`, handing every change to `on_change`.
    pub fn watch_events(
        &self,
        namespace: &str,
        on_change: impl FnMut(Change<ObservedEvent>) + Send + 'static,
    ) -> WatchHandle {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        WatchHandle(tokio::spawn(list_and_watch(api, observed_event, on_change)))
    }
}

async fn list_and_watch<K, T>(
    api: Api<K>,
    observe: fn(K) -> T,
    mut on_change: impl FnMut(Change<T>) + Send,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut version: Option<String> = None;
    loop {
        let opened = std::time::Instant::now();
        let from = match version.take() {
            Some(from) => from,
            None => match api.list(&ListParams::default()).await {
                Ok(list) => {
                    on_change(Change::Reset(list.items.into_iter().map(observe).collect()));
                    list.metadata.resource_version.unwrap_or_default()
                }
                Err(_) => {
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        let params = WatchParams::default().timeout(WATCH_SECONDS);
        let mut stream = match api.watch(&params, &from).await {
            Ok(stream) => stream.boxed(),
            Err(e) => {
                // 403/405: this user may list but not watch; 410: too old. Either
                // way the next round lists again.
                if !(is_status(&e, 403) || is_status(&e, 405) || is_status(&e, 410)) {
                    version = Some(from);
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut last = from;
        let mut relist = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Added(object)) | Ok(WatchEvent::Modified(object)) => {
                    last = object.meta().resource_version.clone().unwrap_or(last);
                    on_change(Change::Applied(observe(object)));
                }
                Ok(WatchEvent::Deleted(object)) => {
                    last = object.meta().resource_version.clone().unwrap_or(last);
                    on_change(Change::Deleted(observe(object)));
                }
                Ok(WatchEvent::Bookmark(bookmark)) => last = bookmark.metadata.resource_version,
                // 410 Gone: the version is older than the server keeps; list again.
                Ok(WatchEvent::Error(status)) => {
                    relist = status.code == 410;
                    break;
                }
                Err(_) => break,
            }
        }
        if !relist {
            version = Some(last);
        }
        // A server that ends watches at once would make this loop spin.
        if opened.elapsed() < RETRY {
            tokio::time::sleep(RETRY).await;
        }
    }
}

fn join(reason: Option<&str>, message: Option<&str>) -> String {
    match (reason, message) {
        (Some(r), Some(m)) if !m.is_empty() => format!("{r}: {m}"),
        (Some(r), _) => r.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => String::new(),
    }
}

fn observed_pod(pod: Pod) -> ObservedPod {
    let status = pod.status.unwrap_or_default();
    let container = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .next()
        .and_then(|c| c.state)
        .and_then(|state| {
            if let Some(t) = state.terminated {
                Some(ContainerState::Terminated {
                    exit_code: t.exit_code,
                    reason: t.reason.unwrap_or_default(),
                    message: t.message.unwrap_or_default(),
                })
            } else if let Some(w) = state.waiting {
                Some(ContainerState::Waiting {
                    reason: w.reason.unwrap_or_default(),
                    message: w.message.unwrap_or_default(),
                })
            } else {
                state.running.map(|_| ContainerState::Running)
            }
        });
    let unscheduled = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .map(|c| join(c.reason.as_deref(), c.message.as_deref()));
    let reason = (status.reason.is_some() || status.message.is_some())
        .then(|| join(status.reason.as_deref(), status.message.as_deref()));
    ObservedPod {
        name: pod.metadata.name.unwrap_or_default(),
        phase: status.phase.unwrap_or_else(|| "Pending".into()),
        container,
        unscheduled,
        reason,
    }
}

fn observed_event(event: Event) -> ObservedEvent {
    ObservedEvent {
        id: event.metadata.name.unwrap_or_default(),
        kind: event.involved_object.kind.unwrap_or_default(),
        object: event.involved_object.name.unwrap_or_default(),
        reason: event.reason.unwrap_or_default(),
        message: event.message.unwrap_or_default(),
    }
}
