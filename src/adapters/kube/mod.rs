//! The Kubernetes API, through kube and k8s-openapi: the only module that uses
//! their types. Callers speak devcluster's own types.

#[cfg(test)]
pub(crate) mod canned;
pub mod client;
pub mod cluster;
pub mod probe;
pub mod watch;

/// Who refused a request with 403 Forbidden. The API server answers 403 for
/// RBAC denials, but also for admission plugins that reject the object: Pod
/// Security admission, validating webhooks, and the ServiceAccount admission
/// plugin while a new namespace has no `default` ServiceAccount yet. Only the
/// message tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The authorizer: `User "u" cannot create resource "pods" ...`
    /// (apiserver `endpoints/handlers/responsewriters/errors.go`, `forbiddenMessage`).
    Rbac,
    /// Pod Security admission: `violates PodSecurity "baseline:latest": ...`
    /// (`pod-security-admission/admission/admission.go`).
    PodSecurity,
    /// A validating or mutating webhook: `admission webhook "x" denied the request`
    /// (apiserver `admission/plugin/webhook/errors/statuserror.go`).
    Webhook,
    /// The ServiceAccount admission plugin: `error looking up service account
    /// NS/default: serviceaccount "default" not found`
    /// (`plugin/pkg/admission/serviceaccount/admission.go`).
    ServiceAccountMissing,
    /// Any other admission plugin or policy.
    Other,
}

impl Refusal {
    pub fn of(message: &str) -> Refusal {
        if message.contains("error looking up service account") {
            Refusal::ServiceAccountMissing
        } else if message.contains("violates PodSecurity") {
            Refusal::PodSecurity
        } else if message.contains("admission webhook") {
            Refusal::Webhook
        } else if message.contains(" cannot ") && message.contains("User \"") {
            Refusal::Rbac
        } else {
            Refusal::Other
        }
    }

    /// Why, in a few words, for `cannot VERB RESOURCE: ...`.
    pub fn why(self) -> &'static str {
        match self {
            Refusal::Rbac => "RBAC forbids it",
            Refusal::PodSecurity => "Pod Security admission rejects it",
            Refusal::Webhook => "an admission webhook rejects it",
            Refusal::ServiceAccountMissing => {
                "the namespace's `default` ServiceAccount does not exist yet"
            }
            Refusal::Other => "the API server refuses it (403 Forbidden)",
        }
    }
}
