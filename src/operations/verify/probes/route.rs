//! `httproute`: when the ingress controller serves Gateway API, an HTTPRoute
//! attached to its Gateway is accepted, its backend resolved, and a request to the
//! controller's host port reaches the echo backend through it and returns this
//! run's token. A failure says which layer stopped it: the controller never wrote
//! the route's status, the Gateway did not accept it, its backend did not
//! resolve, or the request did not come back.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::adapters::kube::probe::ObservedRouteParent;
use crate::core::check::{Check, Layer, Status};
use crate::core::plan::ControllerPlan;
use crate::core::profile::GatewayRef;
use crate::operations::verify::pods;
use crate::operations::verify::probes::echo::expect_token_at;
use crate::operations::verify::probes::{Probe, Run};

pub struct HttpRoute;

/// The HTTPRoute the echo backend's template makes.
const ROUTE: &str = "devcluster-echo";
/// How long a verdict that is not a pass must stand before it is the answer: a
/// controller may judge a route before it has seen the Service created just
/// before it, and corrects itself on its next pass.
const SETTLE: Duration = Duration::from_secs(5);

impl Probe for HttpRoute {
    fn name(&self) -> &'static str {
        "httproute"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(async move {
            let echo = run.echo().await;
            let (Some(http), Some(controller)) = (&echo.ingress, &echo.controller) else {
                return Vec::new();
            };
            let Some(gateway) = &controller.gateway else {
                let custom = run
                    .target
                    .plan
                    .and_then(|p| p.ingress.as_ref())
                    .is_some_and(|i| matches!(i.controller, ControllerPlan::Custom { .. }));
                let mut skipped = Check::new(
                    "httproute",
                    Some(&http.node),
                    Layer::Pod,
                    Status::Skip,
                    "skipped: the ingress controller serves no Gateway API; only the Ingress is proven",
                );
                if custom {
                    skipped = skipped.hint(
                        "name the Gateway your controller programs in ingress.manifest.gateway to prove an HTTPRoute too",
                    );
                }
                return vec![skipped];
            };
            if let Some(failure) = echo.failure("httproute") {
                return vec![failure];
            }
            let namespace = &run.base().namespace;
            let row = |status: Status, detail: String| {
                Check::new("httproute", Some(&http.node), Layer::Pod, status, detail)
            };
            if let Some(error) = &echo.route_failed {
                return vec![row(
                    Status::Fail,
                    format!("the HTTPRoute could not be made: {error}"),
                )
                .hint(
                    "the cluster must serve Gateway API's HTTPRoute; see `kubectl get crd httproutes.gateway.networking.k8s.io`",
                )];
            }
            let gateway_name = format!("{}/{}", gateway.namespace, gateway.name);
            let describe = format!("`kubectl -n {namespace} describe httproute {ROUTE}`");
            match accepted(run, namespace, gateway).await {
                Verdict::Accepted => {}
                Verdict::NoStatus(last_error) => {
                    let why = last_error.map_or(String::new(), |e| format!(" ({e})"));
                    return vec![row(
                        Status::Fail,
                        format!(
                            "HTTPRoute {namespace}/{ROUTE} has no status for Gateway {gateway_name}: no controller took it up{why}"
                        ),
                    )
                    .hint(format!(
                        "the controller programs only the Gateway its configuration names; see `kubectl -n {} get gateway,pods -o wide` and {describe}",
                        gateway.namespace
                    ))];
                }
                Verdict::Refused {
                    condition,
                    reason,
                    message,
                } => {
                    let layer = if condition == "Accepted" {
                        format!(
                            "Gateway {gateway_name} did not accept HTTPRoute {namespace}/{ROUTE}"
                        )
                    } else {
                        format!(
                            "Gateway {gateway_name} accepted HTTPRoute {namespace}/{ROUTE}, but its backend did not resolve"
                        )
                    };
                    return vec![
                        row(
                            Status::Fail,
                            format!("{layer}: {condition}=False ({reason}): {message}"),
                        )
                        .hint(format!("{describe} shows the controller's verdict")),
                    ];
                }
            }
            let layers =
                format!("HTTPRoute accepted by Gateway {gateway_name}, backend resolved; ");
            let hint = format!(
                "the route is in place, so the request stopped on the data path: the proxy must run on the node that publishes the port (nodeSelector ingress-ready=true) and the echo pod must answer; see `kubectl -n {} get pods -o wide` and `kubectl -n {namespace} get endpoints devcluster-echo`",
                controller.namespace
            );
            let path = pods::route_path(&run.base().token);
            vec![expect_token_at(run, "httproute", http, &path, &layers, hint).await]
        })
    }
}

/// What the route's status says about the Gateway.
enum Verdict {
    /// `Accepted=True` and `ResolvedRefs=True`.
    Accepted,
    /// No parent status for the Gateway by the deadline (with the last error
    /// reading the route, if any).
    NoStatus(Option<String>),
    /// A condition that stayed False.
    Refused {
        condition: String,
        reason: String,
        message: String,
    },
}

/// Waits for the controller's verdict on the route for `gateway`: both
/// conditions True, or one False for [`SETTLE`], or the deadline.
async fn accepted(run: &Run<'_>, namespace: &str, gateway: &GatewayRef) -> Verdict {
    let deadline = run.base().deadline;
    let mut refused_since: Option<(Instant, (String, String, String))> = None;
    loop {
        let last_error = match run.api.http_route_parents(namespace, ROUTE).await {
            Ok(parents) => {
                match judge(&parents, gateway) {
                    Some(Ok(())) => return Verdict::Accepted,
                    Some(Err(refusal)) => {
                        let since = match &refused_since {
                            Some((since, seen)) if *seen == refusal => *since,
                            _ => Instant::now(),
                        };
                        if since.elapsed() >= SETTLE || Instant::now() >= deadline {
                            let (condition, reason, message) = refusal;
                            return Verdict::Refused {
                                condition,
                                reason,
                                message,
                            };
                        }
                        refused_since = Some((since, refusal));
                    }
                    None => refused_since = None,
                }
                None
            }
            Err(e) => Some(e.to_string()),
        };
        if Instant::now() + Duration::from_millis(500) >= deadline {
            return match refused_since {
                Some((_, (condition, reason, message))) => Verdict::Refused {
                    condition,
                    reason,
                    message,
                },
                None => Verdict::NoStatus(last_error),
            };
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The verdict in `parents` for `gateway`: `None` when there is none yet,
/// `Ok` when Accepted and ResolvedRefs are True, else the first condition that is
/// not (type, reason, message).
fn judge(
    parents: &[ObservedRouteParent],
    gateway: &GatewayRef,
) -> Option<Result<(), (String, String, String)>> {
    let parent = parents
        .iter()
        .find(|p| p.gateway_namespace == gateway.namespace && p.gateway_name == gateway.name)?;
    for wanted in ["Accepted", "ResolvedRefs"] {
        match parent.conditions.iter().find(|c| c.0 == wanted) {
            Some((_, status, _, _)) if status == "True" => {}
            Some((kind, _, reason, message)) => {
                return Some(Err((kind.clone(), reason.clone(), message.clone())));
            }
            // The controller has not judged this part yet.
            None => return None,
        }
    }
    Some(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(conditions: &[(&str, &str, &str)]) -> ObservedRouteParent {
        ObservedRouteParent {
            gateway_namespace: "projectcontour".into(),
            gateway_name: "contour".into(),
            controller: "projectcontour.io/gateway-controller".into(),
            conditions: conditions
                .iter()
                .map(|(t, s, r)| (t.to_string(), s.to_string(), r.to_string(), "m".into()))
                .collect(),
        }
    }

    #[test]
    fn only_the_gateways_own_parent_status_with_both_conditions_true_passes() {
        let gateway = GatewayRef {
            namespace: "projectcontour".into(),
            name: "contour".into(),
        };
        let good = parent(&[
            ("Accepted", "True", "Accepted"),
            ("ResolvedRefs", "True", "ResolvedRefs"),
        ]);
        assert_eq!(judge(std::slice::from_ref(&good), &gateway), Some(Ok(())));
        let mut elsewhere = good.clone();
        elsewhere.gateway_name = "other".into();
        assert_eq!(judge(&[elsewhere], &gateway), None);
        assert_eq!(
            judge(
                &[parent(&[("Accepted", "False", "NotAllowedByListeners")])],
                &gateway
            ),
            Some(Err((
                "Accepted".into(),
                "NotAllowedByListeners".into(),
                "m".into()
            )))
        );
        assert_eq!(
            judge(&[parent(&[("Accepted", "True", "Accepted")])], &gateway),
            None
        );
    }
}
