//! `ingress`: a request to the ingress controller's host port reaches the echo
//! backend through an Ingress and returns this run's token.

use futures_util::future::BoxFuture;

use crate::core::check::Check;
use crate::operations::verify::probes::echo::expect_token;
use crate::operations::verify::probes::{Probe, Run};

pub struct Ingress;

impl Probe for Ingress {
    fn name(&self) -> &'static str {
        "ingress"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(async move {
            let echo = run.echo().await;
            let Some(http) = &echo.ingress else {
                return Vec::new();
            };
            if let Some(failure) = echo.failure("ingress") {
                return vec![failure];
            }
            let namespace = echo
                .controller
                .as_ref()
                .map_or("ingress-nginx", |c| c.namespace.as_str());
            let hint = format!(
                "the controller must run on the node that publishes the port (nodeSelector ingress-ready=true); see `kubectl -n {namespace} get pods -o wide`"
            );
            vec![expect_token(run, "ingress", http, hint).await]
        })
    }
}
