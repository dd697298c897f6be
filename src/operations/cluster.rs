//! A cluster devcluster made, as every command finds it: its record on the nodes
//! (read from and written into the first control-plane container), the plan it
//! was made from, and Docker failures in the user's words.

use crate::adapters::docker::{Docker, NodeRuntime, ObservedNode};
use crate::adapters::kind::KindError;
use crate::adapters::kube::client::kind_kubeconfig;
use crate::core::error::{Error, Result};
use crate::core::plan::{ClusterPlan, Role};
use crate::core::record;
use crate::core::record::Record;
use crate::operations::ProfileChoice;
use crate::operations::context::App;

/// The first control-plane container, where `up` keeps the record.
fn record_holder(nodes: &[ObservedNode]) -> Option<&ObservedNode> {
    nodes
        .iter()
        .filter(|n| n.role == Role::ControlPlane.as_str())
        .min_by(|a, b| a.name.len().cmp(&b.name.len()).then(a.name.cmp(&b.name)))
}

/// Reads devcluster's record from the cluster's first control-plane container,
/// through the runtime's archive read, so a stopped node is read as well as a
/// running one. `None` when there is none, or it cannot be read.
pub async fn read_record(runtime: &dyn NodeRuntime, nodes: &[ObservedNode]) -> Option<Record> {
    let holder = record_holder(nodes)?;
    let bytes = runtime
        .read_file(&holder.name, record::RECORD_PATH, record::MAX_RECORD_BYTES)
        .await
        .ok()??;
    Record::from_json(&String::from_utf8_lossy(&bytes))
}

/// Writes `record` into `node`'s record file, replacing it in one rename.
pub async fn write_node_record(docker: &Docker, node: &str, record: &Record) -> Result<()> {
    let script = format!(
        "mkdir -p {} && cat > {}.tmp && mv {}.tmp {}",
        record::RECORD_DIR,
        record::RECORD_PATH,
        record::RECORD_PATH,
        record::RECORD_PATH
    );
    let output = docker
        .exec_with_stdin(node, &["sh", "-c", &script], record.to_json().as_bytes())
        .await
        .map_err(Error::from)?;
    if output.exit_code != 0 {
        return Err(
            Error::failed(format!("cannot write devcluster's record into {node}"))
                .cause(output.stderr.trim().to_string()),
        );
    }
    Ok(())
}

/// The plan to compare an existing cluster with (`verify`, `status`). Without
/// `--profile`, the plan in the cluster's record, so `verify --name NAME` proves what
/// the cluster was made from; with `--profile`, that profile's plan, with a note
/// when it disagrees with the record. Falls back to the profile (`devcluster.yaml`,
/// else `single`) when the cluster has no readable record.
pub async fn plan_for_cluster(
    app: &App,
    profile: &ProfileChoice,
    docker: Option<&Docker>,
) -> Result<ClusterPlan> {
    let recorded = |name: String| async move {
        let docker = docker?;
        let nodes = docker.list_nodes(Some(&name)).await.ok()?;
        read_record(docker, &nodes).await
    };
    if profile.profile.is_none() {
        // The name from `--name`, else from the profile `up` would use.
        let (name, fallback) = match &profile.name {
            Some(name) => (name.clone(), None),
            None => {
                let (_, plan) = app.plan(None, None)?;
                (plan.name.clone(), Some(plan))
            }
        };
        if let Some(record) = recorded(name.clone()).await {
            if let Some(plan) = record.plan {
                app.ui.line(&format!(
                    "using the plan recorded in cluster `{name}` (profile {}, {} node(s))",
                    record.profile_source,
                    plan.nodes.len()
                ));
                return Ok(plan);
            }
            app.ui.line(&format!(
                "the record of cluster `{name}` was written by devcluster {} and its plan cannot be read here; using the profile instead",
                record.devcluster_version
            ));
        }
        return match fallback {
            Some(plan) => Ok(plan),
            None => Ok(app.plan(None, Some(&name))?.1),
        };
    }
    let (_, plan) = app.plan(profile.profile.as_deref(), profile.name.as_deref())?;
    if let Some(record) = recorded(plan.name.clone()).await {
        note_disagreement(app, &plan, &record, "verify");
    }
    Ok(plan)
}

/// Says so when `plan` is not what the cluster's record says it was made from;
/// `command` (`verify`, `status`) is the one to repeat without `--profile`.
pub fn note_disagreement(app: &App, plan: &ClusterPlan, record: &Record, command: &str) {
    if record.matches(plan) {
        return;
    }
    app.ui.line(&format!(
        "note: profile {} differs from what cluster `{}` was made from (profile {}); checking against {}:",
        plan.source, plan.name, record.profile_source, plan.source
    ));
    if let Some(recorded) = &record.plan {
        for change in record::diff(recorded, plan) {
            app.ui.line(&format!("  {}", change.line()));
        }
    }
    app.ui.line(&format!(
        "  (leave out --profile to check the recorded plan: `devcluster {command} --name {}`)",
        plan.name
    ));
}

/// The name of the container that holds the record: the plan's first control-plane.
pub fn record_holder_name(plan: &ClusterPlan) -> Result<String> {
    plan.control_planes()
        .next()
        .map(|n| n.name.clone())
        .ok_or_else(|| Error::failed("the plan has no control-plane"))
}

/// Where kind keeps the cluster's admin kubeconfig in a control-plane container.
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// The admin kubeconfig of kind cluster `name`, as `kind get kubeconfig --name
/// NAME` prints it. On Docker, devcluster makes it itself from the node
/// containers, the way kind does (kind `pkg/cluster/internal/kubeconfig/kubeconfig.go`,
/// `get`): kubeadm's `admin.conf` from a control-plane container, pointed at the
/// host's endpoint for the API server. That is one container list and one archive
/// read on the engine's socket, where running kind costs its start and three
/// `docker` processes. Anything else (another kind provider, no such containers,
/// no published API server port, a file not shaped as kubeadm writes it) asks kind.
pub async fn admin_kubeconfig(app: &App, name: &str) -> std::result::Result<String, KindError> {
    let on_docker = app
        .world
        .var("KIND_EXPERIMENTAL_PROVIDER")
        .is_none_or(|p| p.is_empty() || p == "docker");
    if on_docker
        && let Ok(runtime) = app.node_runtime().await
        && let Some(kubeconfig) = kubeconfig_from_nodes(runtime.as_ref(), name).await
    {
        return Ok(kubeconfig);
    }
    app.cluster_provider()?.kubeconfig(name).await
}

async fn kubeconfig_from_nodes(runtime: &dyn NodeRuntime, name: &str) -> Option<String> {
    let nodes = runtime.list_nodes(Some(name)).await.ok()?;
    let holder = record_holder(&nodes)?;
    let server = api_server_endpoint(&nodes)?;
    let admin_conf = runtime
        .read_file(&holder.name, ADMIN_CONF, 1 << 20)
        .await
        .ok()??;
    kind_kubeconfig(&String::from_utf8_lossy(&admin_conf), name, &server)
}

/// `https://HOST:PORT` where the host reaches the API server, as kind's Docker
/// provider finds it (kind `pkg/cluster/internal/providers/docker/provider.go`,
/// `GetAPIServerEndpoint`): on the external load balancer when the cluster has one,
/// else on its only control-plane; Docker Desktop's
/// `desktop.docker.io/ports/6443/tcp` label when set, else the first host binding
/// of `6443/tcp`.
fn api_server_endpoint(nodes: &[ObservedNode]) -> Option<String> {
    let endpoint = match nodes.iter().find(|n| n.role == "external-load-balancer") {
        Some(balancer) => balancer,
        None => {
            let mut control_planes = nodes
                .iter()
                .filter(|n| n.role == Role::ControlPlane.as_str());
            let only = control_planes.next()?;
            if control_planes.next().is_some() {
                return None;
            }
            only
        }
    };
    if let Some(address) = endpoint
        .labels
        .get(&format!("desktop.docker.io/ports/{API_SERVER_PORT}/tcp"))
        .filter(|a| !a.is_empty())
    {
        return Some(format!("https://{address}"));
    }
    let port = endpoint
        .ports
        .iter()
        .find(|p| p.container_port == API_SERVER_PORT && p.protocol == "tcp")
        .filter(|p| !p.host_ip.is_empty())?;
    let host = if port.host_ip.contains(':') {
        format!("[{}]", port.host_ip)
    } else {
        port.host_ip.clone()
    };
    Some(format!("https://{host}:{}", port.host_port))
}

/// The API server's port inside the node (kind `pkg/cluster/internal/providers/common/constants.go`).
const API_SERVER_PORT: u16 = 6443;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::adapters::docker::ObservedPort;
    use crate::adapters::docker::canned::CannedRuntime;
    use crate::adapters::kind::canned::CannedProvider;
    use crate::adapters::world::World;

    /// What kubeadm writes to `/etc/kubernetes/admin.conf` in a kind node
    /// (kubeadm `cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go`: one cluster named
    /// after `clusterName`, one `kubernetes-admin` user, one context joining them;
    /// the server is kind's `controlPlaneEndpoint`).
    const ADMIN: &str = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0E=\n    server: https://dev-control-plane:6443\n  name: dev\ncontexts:\n- context:\n    cluster: dev\n    user: kubernetes-admin\n  name: kubernetes-admin@dev\ncurrent-context: kubernetes-admin@dev\nkind: Config\npreferences: {}\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n";

    fn node(name: &str, role: &str, api_port: Option<(&str, u16)>) -> ObservedNode {
        ObservedNode {
            name: name.into(),
            cluster: "dev".into(),
            role: role.into(),
            state: "running".into(),
            image: String::new(),
            labels: BTreeMap::new(),
            mounts: Vec::new(),
            ports: api_port
                .map(|(ip, port)| ObservedPort {
                    container_port: 6443,
                    protocol: "tcp".into(),
                    host_ip: ip.into(),
                    host_port: port,
                })
                .into_iter()
                .collect(),
            requested_ports: Vec::new(),
        }
    }

    fn app(runtime: CannedRuntime, kind_says: Option<&str>) -> App {
        let mut provider = CannedProvider::release(0, 31, 0);
        provider.kubeconfig = kind_says.map(str::to_string);
        App::new(World::default())
            .with_node_runtime(Arc::new(runtime))
            .with_cluster_provider(Arc::new(provider))
    }

    fn with_admin_conf(nodes: Vec<ObservedNode>) -> CannedRuntime {
        let mut runtime = CannedRuntime::empty();
        runtime.files.insert(
            ("dev-control-plane".into(), ADMIN_CONF.into()),
            ADMIN.as_bytes().to_vec(),
        );
        runtime.nodes = nodes;
        runtime
    }

    /// (current context, its cluster's server, its user's key data).
    fn summary(kubeconfig: &str) -> (String, String, String) {
        let value: serde_json::Value =
            crate::core::yaml::from_str(kubeconfig).unwrap_or_else(|e| panic!("{e}: {kubeconfig}"));
        let context = value["current-context"].as_str().unwrap_or("").to_string();
        let named = |list: &str, name: &str| {
            value[list]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["name"] == name))
                .cloned()
                .unwrap_or_else(|| panic!("no {list} named {name}: {kubeconfig}"))
        };
        let joined = named("contexts", &context);
        let cluster = named(
            "clusters",
            joined["context"]["cluster"].as_str().unwrap_or(""),
        );
        let user = named("users", joined["context"]["user"].as_str().unwrap_or(""));
        (
            context,
            cluster["cluster"]["server"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            user["user"]["client-key-data"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    }

    #[tokio::test]
    async fn the_kubeconfig_is_made_from_the_nodes_as_kind_makes_it() {
        let runtime = with_admin_conf(vec![
            node(
                "dev-control-plane",
                "control-plane",
                Some(("127.0.0.1", 41234)),
            ),
            node("dev-worker", "worker", None),
        ]);
        let text = admin_kubeconfig(&app(runtime, None), "dev")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            summary(&text),
            (
                "kind-dev".to_string(),
                "https://127.0.0.1:41234".to_string(),
                "S0VZ".to_string()
            )
        );
        // It is one cluster, one user and one context, all kind's name.
        let value: serde_json::Value = crate::core::yaml::from_str(&text).unwrap_or_default();
        for list in ["clusters", "users", "contexts"] {
            assert_eq!(value[list][0]["name"], "kind-dev", "{text}");
            assert_eq!(value[list].as_array().map(Vec::len), Some(1), "{text}");
        }
    }

    #[tokio::test]
    async fn the_endpoint_is_the_load_balancers_and_brackets_an_ipv6_address() {
        let runtime = with_admin_conf(vec![
            node(
                "dev-control-plane",
                "control-plane",
                Some(("127.0.0.1", 40001)),
            ),
            node(
                "dev-control-plane2",
                "control-plane",
                Some(("127.0.0.1", 40002)),
            ),
            node(
                "dev-external-load-balancer",
                "external-load-balancer",
                Some(("::1", 40003)),
            ),
        ]);
        let text = admin_kubeconfig(&app(runtime, None), "dev")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summary(&text).1, "https://[::1]:40003");
    }

    #[tokio::test]
    async fn docker_desktops_port_label_wins_over_the_published_binding() {
        let mut control_plane = node(
            "dev-control-plane",
            "control-plane",
            Some(("0.0.0.0", 40001)),
        );
        control_plane.labels.insert(
            "desktop.docker.io/ports/6443/tcp".into(),
            "10.0.1.7:6443".into(),
        );
        let runtime = with_admin_conf(vec![control_plane]);
        let text = admin_kubeconfig(&app(runtime, None), "dev")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summary(&text).1, "https://10.0.1.7:6443");
    }

    #[tokio::test]
    async fn kind_is_asked_when_the_nodes_cannot_say() {
        const KIND_SAYS: &str = "from kind";
        let cases = [
            // No admin.conf in the container (not a kubeadm node).
            (
                CannedRuntime {
                    nodes: vec![node(
                        "dev-control-plane",
                        "control-plane",
                        Some(("127.0.0.1", 1)),
                    )],
                    ..CannedRuntime::empty()
                },
                "no admin.conf",
            ),
            // A stopped node publishes nothing.
            (
                with_admin_conf(vec![node("dev-control-plane", "control-plane", None)]),
                "no port",
            ),
            // No containers of that cluster.
            (CannedRuntime::empty(), "no nodes"),
            // Two control planes and no load balancer: kind has no single endpoint.
            (
                with_admin_conf(vec![
                    node("dev-control-plane", "control-plane", Some(("127.0.0.1", 1))),
                    node(
                        "dev-control-plane2",
                        "control-plane",
                        Some(("127.0.0.1", 2)),
                    ),
                ]),
                "two control planes",
            ),
        ];
        for (runtime, case) in cases {
            let text = admin_kubeconfig(&app(runtime, Some(KIND_SAYS)), "dev")
                .await
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(text, KIND_SAYS, "{case}");
        }
        // A file that is not what kubeadm writes.
        let mut runtime = with_admin_conf(vec![node(
            "dev-control-plane",
            "control-plane",
            Some(("127.0.0.1", 1)),
        )]);
        runtime.files.insert(
            ("dev-control-plane".into(), ADMIN_CONF.into()),
            b"apiVersion: v1\nkind: Config\nclusters: []\n".to_vec(),
        );
        let text = admin_kubeconfig(&app(runtime, Some(KIND_SAYS)), "dev")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text, KIND_SAYS);
    }

    #[tokio::test]
    async fn another_kind_provider_is_left_to_kind() {
        let runtime = with_admin_conf(vec![node(
            "dev-control-plane",
            "control-plane",
            Some(("127.0.0.1", 1)),
        )]);
        let world = World {
            env: BTreeMap::from([("KIND_EXPERIMENTAL_PROVIDER".into(), "podman".into())]),
            ..World::default()
        };
        let mut provider = CannedProvider::release(0, 31, 0);
        provider.kubeconfig = Some("from kind".into());
        let app = App::new(world)
            .with_node_runtime(Arc::new(runtime))
            .with_cluster_provider(Arc::new(provider));
        let text = admin_kubeconfig(&app, "dev")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text, "from kind");
    }
}
