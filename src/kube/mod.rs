//! The Kubernetes API, through kube and k8s-openapi: the only module that uses
//! their types. Callers speak devcluster's own types.

pub mod cluster;
pub mod probe;
