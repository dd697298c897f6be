//! `nodeport`: each planned port in the NodePort range reaches the echo backend
//! through a NodePort Service and returns this run's token.

use futures_util::future::{BoxFuture, join_all};

use crate::core::check::Check;
use crate::operations::verify::probes::echo::expect_token;
use crate::operations::verify::probes::{Probe, Run};

pub struct NodePort;

impl Probe for NodePort {
    fn name(&self) -> &'static str {
        "nodeport"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(async move {
            let echo = run.echo().await;
            let mut checks = echo.held.clone();
            let requests = echo.node_ports.iter().map(|target| async move {
                let name = format!("nodeport {}", target.port.container_port);
                if let Some(failure) = echo.failure(&name) {
                    return failure;
                }
                let hint = format!(
                    "the NodePort Service on {} must reach the echo pod: kube-proxy serves node ports on every node (`kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide`)",
                    target.port.container_port
                );
                expect_token(run, &name, target, hint).await
            });
            checks.extend(join_all(requests).await);
            checks
        })
    }
}
