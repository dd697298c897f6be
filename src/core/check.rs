//! One result row, as `doctor`, `status` and `verify` all report them: what was
//! checked, where (node and layer), how it went, and the next step.

use serde::Serialize;

/// Where a check looked: the host, the node container, or a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Host,
    Node,
    Pod,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Host => "host",
            Layer::Node => "node",
            Layer::Pod => "pod",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    /// The node it concerns, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub layer: Layer,
    pub status: Status,
    pub detail: String,
    /// The next step; shown unless the check passed.
    pub hint: Option<String>,
}

impl Check {
    pub fn new(
        name: &str,
        node: Option<&str>,
        layer: Layer,
        status: Status,
        detail: impl Into<String>,
    ) -> Check {
        Check {
            name: name.to_string(),
            node: node.map(str::to_string),
            layer,
            status,
            detail: detail.into(),
            hint: None,
        }
    }

    /// A passed check of this machine.
    pub fn host_ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::host(name.into(), Status::Ok, detail.into(), None)
    }

    /// A warning about this machine, with the next step.
    pub fn host_warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check::host(name.into(), Status::Warn, detail.into(), Some(hint.into()))
    }

    /// A failed check of this machine, with the next step.
    pub fn host_fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check::host(name.into(), Status::Fail, detail.into(), Some(hint.into()))
    }

    fn host(name: String, status: Status, detail: String, hint: Option<String>) -> Check {
        Check {
            name,
            node: None,
            layer: Layer::Host,
            status,
            detail,
            hint,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Check {
        self.hint = Some(hint.into());
        self
    }

    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }

    pub fn warned(&self) -> bool {
        self.status == Status::Warn
    }

    /// `name: detail (hint: ...)` on one line.
    pub fn summary(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{}: {} (hint: {hint})", self.name, self.detail),
            None => format!("{}: {}", self.name, self.detail),
        }
    }
}

/// How many checks ended each way.
pub fn count(checks: &[Check], status: Status) -> usize {
    checks.iter().filter(|c| c.status == status).count()
}

/// Which columns a table of checks shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// Checks of this machine (`doctor`): check, status, detail.
    Host,
    /// Checks on nodes and layers (`verify`, `status`): check, node, layer, result,
    /// detail.
    Located,
}

/// The rows of a table of checks, header first; a hint goes on a row of its own
/// under a check that did not pass.
pub fn table_rows(checks: &[Check], columns: Columns) -> Vec<Vec<String>> {
    let header: &[&str] = match columns {
        Columns::Host => &["CHECK", "STATUS", "DETAIL"],
        Columns::Located => &["CHECK", "NODE", "LAYER", "RESULT", "DETAIL"],
    };
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for check in checks {
        let mut row = vec![check.name.clone()];
        if columns == Columns::Located {
            row.push(check.node.clone().unwrap_or_else(|| "-".into()));
            row.push(check.layer.as_str().to_string());
        }
        row.push(check.status.as_str().to_string());
        row.push(check.detail.clone());
        rows.push(row);
        if let Some(hint) = check.hint.as_ref().filter(|_| check.status != Status::Ok) {
            let mut hint_row = vec![String::new(); header.len() - 1];
            hint_row.push(format!("hint: {hint}"));
            rows.push(hint_row);
        }
    }
    rows
}

/// `N checks: a ok, b warn, c fail` (and `, d skip` for located checks).
pub fn summary(checks: &[Check], columns: Columns) -> String {
    let mut text = format!(
        "{} checks: {} ok, {} warn, {} fail",
        checks.len(),
        count(checks, Status::Ok),
        count(checks, Status::Warn),
        count(checks, Status::Fail),
    );
    if columns == Columns::Located {
        text.push_str(&format!(", {} skip", count(checks, Status::Skip)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_shows_under_a_check_that_did_not_pass_only() {
        let checks = vec![
            Check::host_ok("docker", "20.10").hint("never shown"),
            Check::host_fail("kind", "not found", "install kind"),
        ];
        let rows = table_rows(&checks, Columns::Host);
        assert_eq!(rows[0], ["CHECK", "STATUS", "DETAIL"]);
        assert_eq!(rows[1], ["docker", "ok", "20.10"]);
        assert_eq!(rows[2], ["kind", "fail", "not found"]);
        assert_eq!(rows[3], ["", "", "hint: install kind"]);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            summary(&checks, Columns::Host),
            "2 checks: 1 ok, 0 warn, 1 fail"
        );
    }

    #[test]
    fn located_checks_show_node_and_layer_and_count_skips() {
        let checks = vec![
            Check::new("mount", Some("n1"), Layer::Pod, Status::Ok, "seen"),
            Check::new("storage", None, Layer::Pod, Status::Skip, "no class"),
        ];
        let rows = table_rows(&checks, Columns::Located);
        assert_eq!(rows[1], ["mount", "n1", "pod", "ok", "seen"]);
        assert_eq!(rows[2], ["storage", "-", "pod", "skip", "no class"]);
        assert_eq!(
            summary(&checks, Columns::Located),
            "2 checks: 1 ok, 0 warn, 0 fail, 1 skip"
        );
    }
}
