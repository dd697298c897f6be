//! `devcluster status`: the cluster as Docker sees it, the recorded profile, and
//! drift between the two, each with the next step.

use serde::Serialize;

use crate::adapters::docker::{Binding, ObservedNode, WantedPort};
use crate::core::check::{self, Check, Columns, Layer, Status};
use crate::core::error::Result;
use crate::core::plan::{ClusterPlan, NodePlan};
use crate::core::record::{Phase, Record};
use crate::operations::ProfileChoice;
use crate::operations::cluster::read_record;
use crate::operations::context::App;

/// One difference between the record and what runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub node: String,
    pub problem: String,
    pub hint: String,
    /// Docker neither confirms nor contradicts the planned state (a port binding
    /// the engine does not report): a warning, not drift that fails `status`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
}

impl Drift {
    /// The drift as a row of the check table: a failure, or a warning when
    /// unconfirmed.
    pub fn check(&self) -> Check {
        let status = if self.unconfirmed {
            Status::Warn
        } else {
            Status::Fail
        };
        Check::new(
            "drift",
            Some(&self.node),
            Layer::Node,
            status,
            &self.problem,
        )
        .hint(&self.hint)
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub cluster: String,
    pub exists: bool,
    /// Whether devcluster created it (its record was found).
    pub managed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devcluster_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// How far `up` got: `created`, `converged` or `complete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'static str>,
    /// When the record's phase is not `complete`: what is left and the command
    /// that finishes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<String>,
    pub nodes: Vec<ObservedNode>,
    pub drift: Vec<Drift>,
}

/// Compares what a record planned with the node containers Docker reports.
pub fn drift(plan: &ClusterPlan, observed: &[ObservedNode]) -> Vec<Drift> {
    let mut drift = Vec::new();
    for node in &plan.nodes {
        match observed.iter().find(|o| o.name == node.name) {
            None => drift.push(Drift {
                node: node.name.clone(),
                problem: "node container is missing".into(),
                hint: format!(
                    "recreate the cluster: `devcluster up --recreate --name {}`",
                    plan.name
                ),
                unconfirmed: false,
            }),
            Some(o) if o.state != "running" => drift.push(Drift {
                node: node.name.clone(),
                problem: format!(
                    "node container is {} (not running), e.g. after a reboot",
                    o.state
                ),
                hint: format!("start it: `docker start {}`", node.name),
                unconfirmed: false,
            }),
            Some(o) => drift.extend(node_drift(&plan.name, node, o)),
        }
    }
    for o in observed {
        if plan.node(&o.name).is_none() && o.role != "external-load-balancer" {
            drift.push(Drift {
                node: o.name.clone(),
                problem: "node container is not in the recorded plan".into(),
                hint: format!(
                    "recreate the cluster: `devcluster up --recreate --name {}`",
                    plan.name
                ),
                unconfirmed: false,
            });
        }
    }
    drift
}

fn node_drift(cluster: &str, node: &NodePlan, observed: &ObservedNode) -> Vec<Drift> {
    let recreate = format!("recreate the cluster: `devcluster up --recreate --name {cluster}`");
    let mut drift = Vec::new();
    for mount in &node.mounts {
        let bind = observed.mounts.iter().find(|m| {
            m.destination.trim_end_matches('/') == mount.container_path.trim_end_matches('/')
        });
        let problem = match bind {
            None => Some(format!("mount {} is missing", mount.container_path)),
            Some(b) if b.source != mount.host_path => Some(format!(
                "mount {} comes from {} instead of {}",
                mount.container_path, b.source, mount.host_path
            )),
            Some(b) if b.read_only != mount.read_only => Some(format!(
                "mount {} is {} instead of {}",
                mount.container_path,
                if b.read_only {
                    "read-only"
                } else {
                    "read-write"
                },
                if mount.read_only {
                    "read-only"
                } else {
                    "read-write"
                }
            )),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            drift.push(Drift {
                node: node.name.clone(),
                problem,
                hint: recreate.clone(),
                unconfirmed: false,
            });
        }
    }
    for port in &node.ports {
        let protocol = port.protocol.as_str().to_ascii_lowercase();
        let wanted = WantedPort {
            container_port: port.container_port,
            protocol: &protocol,
            host_port: port.host_port,
            listen_address: &port.listen_address,
        };
        let mapping = format!(
            "{}:{} -> {}/{}",
            port.listen_address,
            port.host_port,
            port.container_port,
            port.protocol.as_str()
        );
        match observed.binding(&wanted) {
            Binding::Published(_) => {}
            Binding::Unconfirmed(_) => drift.push(Drift {
                node: node.name.clone(),
                problem: format!(
                    "port {mapping} is unconfirmed: the container was created with it, but Docker reports no host binding (some Docker Desktop releases report them empty: docker/for-mac#7787)"
                ),
                hint: format!(
                    "check it from the host, e.g. `curl http://{}:{}/`, or with `docker port {}`",
                    if port.listen_address == "0.0.0.0" {
                        "127.0.0.1"
                    } else {
                        &port.listen_address
                    },
                    port.host_port,
                    node.name
                ),
                unconfirmed: true,
            }),
            Binding::Missing => {
                let now: Vec<String> = observed
                    .ports
                    .iter()
                    .chain(&observed.requested_ports)
                    .filter(|p| p.container_port == port.container_port)
                    .map(|p| format!("{}:{}", p.host_ip, p.host_port))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                drift.push(Drift {
                    node: node.name.clone(),
                    problem: format!(
                        "port {mapping} is not published{}",
                        if now.is_empty() {
                            String::new()
                        } else {
                            format!(" (Docker has {})", now.join(", "))
                        }
                    ),
                    hint: recreate.clone(),
                    unconfirmed: false,
                });
            }
        }
    }
    drift
}

/// `devcluster status`: the cluster named by `choice` as Docker sees it, against its
/// record. A cluster that does not exist is a report with `exists: false`.
pub async fn run(app: &App, choice: &ProfileChoice) -> Result<StatusReport> {
    let name = match &choice.name {
        Some(name) => name.clone(),
        None => app.plan(choice.profile.as_deref(), None)?.1.name,
    };
    let runtime = app.node_runtime().await?;
    let nodes = runtime.list_nodes(Some(&name)).await?;
    let record = read_record(runtime.as_ref(), &nodes).await;
    if let (Some(record), Some(_)) = (&record, &choice.profile) {
        let (_, plan) = app.plan(choice.profile.as_deref(), Some(&name))?;
        crate::operations::cluster::note_disagreement(app, &plan, record, "status");
    }
    let drift = match record.as_ref().and_then(|r| r.plan.as_ref()) {
        Some(plan) => drift(plan, &nodes),
        None => Vec::new(),
    };
    let report = StatusReport {
        cluster: name.clone(),
        exists: !nodes.is_empty(),
        managed: record.is_some(),
        profile_source: record.as_ref().map(|r| r.profile_source.clone()),
        devcluster_version: record.as_ref().map(|r| r.devcluster_version.clone()),
        plan_hash: record.as_ref().map(|r| r.plan_hash.clone()),
        phase: record.as_ref().map(|r| r.phase.as_str()),
        unfinished: record.as_ref().and_then(unfinished),
        nodes,
        drift,
    };
    Ok(report)
}

/// What an `up` that stopped early left undone, and how to finish it.
fn unfinished(record: &Record) -> Option<String> {
    if record.phase == Phase::Complete {
        return None;
    }
    let finish = match &record.plan {
        Some(plan) => format!("`{}`", crate::operations::up::resume_command(plan)),
        None => "`devcluster up`".to_string(),
    };
    Some(format!(
        "`up` has not finished with this cluster (phase {}: {}); {finish} finishes it",
        record.phase.as_str(),
        record.phase.unfinished()
    ))
}

pub fn print_human(app: &App, report: &StatusReport) {
    if !report.exists {
        return;
    }
    let mut rows = vec![vec![
        "NODE".to_string(),
        "ROLE".to_string(),
        "STATE".to_string(),
        "MOUNTS".to_string(),
        "PORTS".to_string(),
    ]];
    for node in &report.nodes {
        let mounts: Vec<String> = node
            .mounts
            .iter()
            .filter(|m| m.kind == "bind" && m.destination != "/lib/modules")
            .map(|m| {
                format!(
                    "{}:{}{}",
                    m.source,
                    m.destination,
                    if m.read_only { ":ro" } else { "" }
                )
            })
            .collect();
        // A stopped container reports no live bindings; show what it was created with.
        let shown = if node.ports.is_empty() {
            &node.requested_ports
        } else {
            &node.ports
        };
        let ports: Vec<String> = shown
            .iter()
            .map(|p| {
                format!(
                    "{}:{}->{}/{}",
                    p.host_ip, p.host_port, p.container_port, p.protocol
                )
            })
            .collect();
        rows.push(vec![
            node.name.clone(),
            node.role.clone(),
            node.state.clone(),
            if mounts.is_empty() {
                "-".into()
            } else {
                mounts.join(" ")
            },
            if ports.is_empty() {
                "-".into()
            } else {
                ports.join(" ")
            },
        ]);
    }
    app.ui.table(&rows);
    match (&report.profile_source, &report.devcluster_version) {
        (Some(source), Some(version)) => app.ui.line(&format!(
            "recorded: profile {source}, devcluster {version}, phase {}",
            report.phase.unwrap_or("unknown")
        )),
        _ => app
            .ui
            .line("no devcluster record: devcluster did not create this cluster, or its `kind create` did not finish"),
    }
    if let Some(unfinished) = &report.unfinished {
        app.ui.line(&format!("! {unfinished}"));
    }
    if report.drift.iter().all(|d| d.unconfirmed) {
        if report.managed {
            app.ui.line("✓ no drift from the recorded plan");
        }
    } else {
        app.ui.line("drift:");
    }
    if !report.drift.is_empty() {
        let checks: Vec<Check> = report.drift.iter().map(Drift::check).collect();
        app.ui.table(&check::table_rows(&checks, Columns::Located));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::docker::ObservedPort;
    use crate::core::plan::{PlanInput, plan};
    use crate::core::profile::Profile;

    fn planned() -> ClusterPlan {
        let text = "apiVersion: devcluster.dev/v1alpha1\nkind: Profile\nports:\n  - containerPort: 30000\n    hostPort: 8080\n";
        let profile = Profile::decode(text).unwrap_or_else(|e| panic!("{e:?}"));
        let input = PlanInput {
            profile: &profile,
            name_override: Some("dev"),
            base_dir: std::path::Path::new("/p"),
            home_dir: None,
            source: "test".into(),
            file: None,
        };
        plan(&input).unwrap_or_else(|e| panic!("{e:?}")).plan
    }

    fn port(host_ip: &str, host_port: u16) -> ObservedPort {
        ObservedPort {
            container_port: 30000,
            protocol: "tcp".into(),
            host_ip: host_ip.into(),
            host_port,
        }
    }

    fn observed(live: Vec<ObservedPort>, requested: Vec<ObservedPort>) -> Vec<ObservedNode> {
        vec![ObservedNode {
            name: "dev-control-plane".into(),
            cluster: "dev".into(),
            role: "control-plane".into(),
            state: "running".into(),
            image: "kindest/node:v1.36.1".into(),
            labels: Default::default(),
            mounts: Vec::new(),
            ports: live,
            requested_ports: requested,
        }]
    }

    #[test]
    fn port_drift_reads_both_of_dockers_views() {
        let plan = planned();
        // Linux: both views agree.
        let same = observed(vec![port("127.0.0.1", 8080)], vec![port("127.0.0.1", 8080)]);
        assert_eq!(drift(&plan, &same), Vec::new());
        // Docker Desktop rewrote HostIp; kind asked for 127.0.0.1: no drift.
        let rewritten = observed(vec![port("0.0.0.0", 8080)], vec![port("127.0.0.1", 8080)]);
        assert_eq!(drift(&plan, &rewritten), Vec::new());
        // Docker Desktop reports no binding: unconfirmed, a warning.
        let empty = observed(Vec::new(), vec![port("127.0.0.1", 8080)]);
        let found = drift(&plan, &empty);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].unconfirmed, "{found:?}");
        assert!(found[0].problem.contains("unconfirmed"), "{found:?}");
        // The node was created with another port: drift that fails `status`.
        let moved = observed(Vec::new(), vec![port("127.0.0.1", 9090)]);
        let found = drift(&plan, &moved);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(!found[0].unconfirmed);
        assert!(
            found[0].problem.contains(
                "127.0.0.1:8080 -> 30000/TCP is not published (Docker has 127.0.0.1:9090)"
            ),
            "{found:?}"
        );
    }

    mod with_a_canned_runtime {
        //! `status` end to end over a node runtime whose nodes and record file
        //! are set here, instead of containers on a real engine.
        use std::sync::Arc;

        use super::*;
        use crate::adapters::docker::canned::CannedRuntime;
        use crate::adapters::world::World;
        use crate::core::record::{self, Phase, Record};

        async fn status(runtime: CannedRuntime, name: &str) -> StatusReport {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let app = App::new(World {
                cwd: dir.path().to_path_buf(),
                ..World::default()
            })
            .with_node_runtime(Arc::new(runtime));
            let choice = ProfileChoice {
                profile: None,
                name: Some(name.into()),
            };
            run(&app, &choice)
                .await
                .unwrap_or_else(|e| panic!("{}", e.render()))
        }

        #[tokio::test]
        async fn drift_is_read_against_the_record_on_the_control_plane() {
            let plan = planned();
            let mut runtime = CannedRuntime::empty();
            // Created with another host port than the recorded plan's 8080.
            runtime.nodes = observed(Vec::new(), vec![port("127.0.0.1", 9090)]);
            runtime.files.insert(
                ("dev-control-plane".into(), record::RECORD_PATH.into()),
                Record::new(&plan, Phase::Converged).to_json().into_bytes(),
            );
            let report = status(runtime, "dev").await;
            assert!(report.exists && report.managed, "{report:?}");
            assert_eq!(report.phase, Some("converged"));
            assert!(
                report
                    .unfinished
                    .as_deref()
                    .is_some_and(|u| u.contains("`up` has not finished")),
                "{report:?}"
            );
            assert_eq!(report.drift.len(), 1, "{report:?}");
            assert!(
                report.drift[0]
                    .problem
                    .contains("is not published (Docker has 127.0.0.1:9090)"),
                "{report:?}"
            );
        }

        #[tokio::test]
        async fn nodes_without_a_record_are_not_managed_and_a_missing_cluster_does_not_exist() {
            let mut runtime = CannedRuntime::empty();
            runtime.nodes = observed(Vec::new(), Vec::new());
            let foreign = status(runtime, "dev").await;
            assert!(foreign.exists && !foreign.managed, "{foreign:?}");
            assert!(foreign.drift.is_empty(), "{foreign:?}");

            let mut runtime = CannedRuntime::empty();
            runtime.nodes = observed(Vec::new(), Vec::new());
            let absent = status(runtime, "other").await;
            assert!(!absent.exists && absent.nodes.is_empty(), "{absent:?}");
        }
    }
}
