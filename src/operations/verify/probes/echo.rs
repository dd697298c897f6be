//! The echo backend the `ingress`, `httproute` and `nodeport` probes send requests
//! to: one pod serving this run's token, a Service (and an Ingress, and an
//! HTTPRoute when the controller serves Gateway API) in front of it, and a
//! NodePort Service holding every planned node port no other Service holds. It is
//! started once, by the first of those probes to ask.

use std::time::{Duration, Instant};

use crate::adapters::kube::probe::ProbeVolume;
use crate::core::check::{Check, Layer, Status};
use crate::core::plan::PortPurpose;
use crate::operations::addons::{self, ControllerSource};
use crate::operations::verify::pods;
use crate::operations::verify::probes::Run;
use crate::operations::verify::probes::port::{Reachable, is_node_port, published};
use crate::operations::verify::runner::{describe, stuck_hint};

/// What the echo backend serves, and whether it started.
#[derive(Debug, Default)]
pub struct Echo {
    /// The ingress controller's HTTP host port, when the plan has a controller.
    pub ingress: Option<Reachable>,
    /// The controller in front of it, when the plan has one.
    pub controller: Option<ControllerSource>,
    /// Node ports it answers on.
    pub node_ports: Vec<Reachable>,
    /// Node ports another Service holds: skipped, with the reason.
    pub held: Vec<Check>,
    /// Why it is not serving, with the next step: `None` when it serves (or
    /// nothing needs it).
    pub failed: Option<(String, Option<String>)>,
    /// Why its HTTPRoute could not be made, when it could not.
    pub route_failed: Option<String>,
}

impl Echo {
    /// The row for a request that could not be sent because the backend is down.
    pub fn failure(&self, name: &str) -> Option<Check> {
        let (detail, hint) = self.failed.as_ref()?;
        let mut check = Check::new(name, None, Layer::Pod, Status::Fail, detail.clone());
        if let Some(hint) = hint {
            check = check.hint(hint.clone());
        }
        Some(check)
    }
}

pub async fn start(run: &Run<'_>) -> Echo {
    let mut echo = Echo::default();
    let Some(plan) = run.target.plan else {
        return echo;
    };
    let reachable = published(run.target).1;
    echo.controller = addons::controller_source(plan);
    let controller = echo.controller.is_some();
    echo.ingress = reachable
        .iter()
        .find(|r| controller && r.port.purpose == PortPurpose::IngressHttp)
        .cloned();
    let mut node_ports: Vec<Reachable> = reachable
        .into_iter()
        .filter(|r| r.port.purpose == PortPurpose::Profile && is_node_port(&r.port))
        .collect();
    // A node port another Service holds cannot be the echo backend's.
    if !node_ports.is_empty() {
        let held = run.api.node_ports_in_use().await.unwrap_or_default();
        node_ports.retain(|r| {
            match held.iter().find(|(p, _)| *p == r.port.container_port) {
                Some((_, service)) => {
                    echo.held.push(Check::new(
                        &format!("nodeport {}", r.port.container_port),
                        Some(&r.node),
                        Layer::Pod,
                        Status::Skip,
                        format!(
                            "skipped: node port {} is taken by Service {service}; published; not probed over HTTP",
                            r.port.container_port
                        ),
                    ));
                    false
                }
                None => true,
            }
        });
    }
    echo.node_ports = node_ports;
    if echo.ingress.is_none() && echo.node_ports.is_empty() {
        return echo;
    }
    let Some(backend_node) = run.schedulable.first() else {
        echo.ingress = None;
        echo.node_ports.clear();
        return echo;
    };
    let context = match run.pods().await {
        Ok(context) => context,
        Err(check) => {
            echo.failed = Some((check.detail.clone(), check.hint.clone()));
            return echo;
        }
    };
    let mut pod = context.pod(
        "echo".into(),
        backend_node,
        pods::echo_script(&context.token),
        Vec::<ProbeVolume>::new(),
    );
    pod.image = context.echo_image.clone();
    // Ingress, Gateway and NodePort traffic reaches it through its Service.
    pod.host_network = false;
    pod.labels.insert(
        "devcluster.dev/probe".into(),
        format!("echo-{}", context.token),
    );
    let ready = match context.runner.create(&pod).await {
        Ok(()) => {
            let outcome = context.runner.wait("echo", context.deadline, true).await;
            if outcome.phase == "Running" {
                Ok(())
            } else {
                Err((describe(&outcome), stuck_hint(&outcome, "--echo-image")))
            }
        }
        Err(e) => Err((e, None)),
    };
    let failed = match ready {
        Err((detail, hint)) => Some((format!("the echo backend did not start: {detail}"), hint)),
        Ok(()) => {
            let ports: Vec<u16> = echo
                .node_ports
                .iter()
                .map(|r| r.port.container_port)
                .collect();
            let ingress = echo
                .controller
                .as_ref()
                .filter(|_| echo.ingress.is_some())
                .map(|c| pods::EchoIngress {
                    class: c.ingress_class.clone(),
                    gateway: c.gateway.clone(),
                });
            match pods::echo_routes(&context.namespace, &context.token, ingress.as_ref(), &ports) {
                Ok(routes) => {
                    // The HTTPRoute is made on its own: a cluster that serves no
                    // Gateway API refuses it, which must not cost the Ingress proof.
                    let (route, rest): (Vec<_>, Vec<_>) = routes
                        .into_iter()
                        .partition(|d| d.get("kind").and_then(|k| k.as_str()) == Some("HTTPRoute"));
                    let failed = run
                        .api
                        .create_echo_routes(&context.namespace, &rest)
                        .await
                        .err()
                        .map(|e| (e.to_string(), None));
                    if failed.is_none() && !route.is_empty() {
                        echo.route_failed = run
                            .api
                            .create_echo_routes(&context.namespace, &route)
                            .await
                            .err()
                            .map(|e| e.to_string());
                    }
                    failed
                }
                Err(e) => Some((e, None)),
            }
        }
    };
    echo.failed = failed;
    echo
}

/// Sends GET requests for the Ingress's path to `target`'s host port until the
/// echo backend's token comes back or the deadline; the row says which.
pub async fn expect_token(run: &Run<'_>, name: &str, target: &Reachable, hint: String) -> Check {
    let path = pods::echo_path(&run.base().token);
    expect_token_at(run, name, target, &path, "", hint).await
}

/// [`expect_token`] for `path`; `layers` (what was already proven on the way,
/// ending in "; ") leads the row's detail.
pub async fn expect_token_at(
    run: &Run<'_>,
    name: &str,
    target: &Reachable,
    path: &str,
    layers: &str,
    hint: String,
) -> Check {
    let token = &run.base().token;
    let deadline = run.base().deadline;
    let host = if target.host_ip.is_empty() || target.host_ip == "0.0.0.0" {
        "127.0.0.1".to_string()
    } else {
        target.host_ip.clone()
    };
    let port = target.host_port;
    let mut last = String::new();
    let ok = loop {
        match crate::adapters::host::http_get(&host, port, path, Duration::from_secs(5)).await {
            Ok(body) if body.contains(token.as_str()) => break true,
            Ok(body) => last = body.lines().next().unwrap_or("").to_string(),
            Err(e) => last = e,
        }
        if Instant::now() + Duration::from_secs(1) >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    if ok {
        Check::new(
            name,
            Some(&target.node),
            Layer::Pod,
            Status::Ok,
            format!("{layers}http://{host}:{port}{path}/ returned this run's token"),
        )
    } else {
        Check::new(
            name,
            Some(&target.node),
            Layer::Pod,
            Status::Fail,
            format!("{layers}http://{host}:{port}{path}/ did not return the token: {last}"),
        )
        .hint(hint)
    }
}
