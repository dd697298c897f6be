//! `host-path` (`--host-path`): a host directory proved from pods on the nodes of
//! this machine, through the node container first on kind nodes.

use futures_util::future::{BoxFuture, join_all};

use crate::core::check::{Check, Layer, Status};
use crate::operations::verify::mounts::{self, MountProbe};
use crate::operations::verify::probes::layers::{
    node_and_pod, node_layer_exec, pod_layer, runs_here,
};
use crate::operations::verify::probes::{Probe, Run};

pub struct HostPath;

impl Probe for HostPath {
    fn name(&self) -> &'static str {
        "host-path"
    }

    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Vec<Check>> {
        Box::pin(host_path_checks(run))
    }
}

/// `--host-path`: a host directory proved from pods on the nodes of this machine.
async fn host_path_checks(run: &Run<'_>) -> Vec<Check> {
    let (target, api_nodes, paths) = (run.target, &run.api_nodes, &run.options.host_paths);
    let context = run.base();
    let mut checks = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        let text = path.display().to_string();
        let mut probe = MountProbe {
            path: text.clone(),
            file: false,
            read_only: false,
            token: format!("{}h{index}", context.token),
            first_line: None,
        };
        if let Err(check) = mounts::prepare_host(path, &mut probe) {
            checks.push(check);
            continue;
        }
        context.leftovers.sentinel(path, &probe);
        checks.push(Check::new(
            &format!("mount {text}"),
            None,
            Layer::Host,
            Status::Ok,
            "sentinel written",
        ));
        let runs = api_nodes.iter().enumerate().map(|(n, node)| {
            let probe = probe.clone();
            async move {
                let kind_node = target.nodes.iter().any(|o| o.name == node.name);
                if kind_node {
                    let node_layer = async {
                        let mut checks = Vec::new();
                        let ok =
                            node_layer_exec(target, &node.name, &probe, path, &mut checks).await;
                        (ok, checks)
                    };
                    let pod_layer = async {
                        Some(match run.pods().await {
                            Ok(context) => {
                                pod_layer(
                                    context,
                                    node,
                                    &probe,
                                    path,
                                    &format!("hp{index}"),
                                    n,
                                    None,
                                )
                                .await
                            }
                            Err(check) => check,
                        })
                    };
                    node_and_pod(&probe.path, &node.name, node_layer, pod_layer).await
                } else if runs_here(node) {
                    vec![match run.pods().await {
                        Ok(context) => {
                            pod_layer(context, node, &probe, path, &format!("hp{index}"), n, None)
                                .await
                        }
                        Err(check) => check,
                    }]
                } else {
                    vec![Check::new(
                        &format!("mount {}", probe.path),
                        Some(&node.name),
                        Layer::Pod,
                        Status::Skip,
                        "not checkable: this node runs on another machine",
                    )]
                }
            }
        });
        for node_checks in join_all(runs).await {
            checks.extend(node_checks);
        }
        context.leftovers.remove_sentinel(path, &probe);
    }
    checks
}
