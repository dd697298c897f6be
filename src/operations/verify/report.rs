//! Verification results: one row per check, node and layer, and the three ways
//! they are shown (a table on stderr, JSON on stdout, JUnit XML for CI).

use serde::Serialize;

use crate::adapters::terminal::Ui;

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

/// One verification result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub node: Option<String>,
    pub layer: Layer,
    pub status: Status,
    pub detail: String,
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

    pub fn hint(mut self, hint: impl Into<String>) -> Check {
        self.hint = Some(hint.into());
        self
    }
}

/// Every check of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} checks: {} ok, {} warn, {} fail, {} skip",
            self.checks.len(),
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail),
            self.count(Status::Skip)
        )
    }

    pub fn print_table(&self, ui: &Ui) {
        let mut rows = vec![vec![
            "CHECK".to_string(),
            "NODE".to_string(),
            "LAYER".to_string(),
            "RESULT".to_string(),
            "DETAIL".to_string(),
        ]];
        for check in &self.checks {
            rows.push(vec![
                check.name.clone(),
                check.node.clone().unwrap_or_else(|| "-".into()),
                check.layer.as_str().to_string(),
                check.status.as_str().to_string(),
                check.detail.clone(),
            ]);
            if let Some(hint) = check.hint.as_ref().filter(|_| check.status != Status::Ok) {
                rows.push(vec![
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    format!("hint: {hint}"),
                ]);
            }
        }
        ui.table(&rows);
        ui.line(&self.summary());
    }

    /// JUnit XML: one test case per check, failures and skips marked.
    pub fn junit(&self, suite: &str) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!(
            "<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
            xml(suite),
            self.checks.len(),
            self.count(Status::Fail),
            self.count(Status::Skip)
        ));
        for check in &self.checks {
            let name = match &check.node {
                Some(node) => format!("{} [{}] ({})", check.name, node, check.layer.as_str()),
                None => format!("{} ({})", check.name, check.layer.as_str()),
            };
            out.push_str(&format!(
                "  <testcase classname=\"devcluster.verify\" name=\"{}\">",
                xml(&name)
            ));
            let text = match &check.hint {
                Some(hint) => format!("{}\nhint: {hint}", check.detail),
                None => check.detail.clone(),
            };
            match check.status {
                Status::Fail => out.push_str(&format!(
                    "<failure message=\"{}\">{}</failure>",
                    xml(&check.detail),
                    xml(&text)
                )),
                Status::Skip => {
                    out.push_str(&format!("<skipped message=\"{}\"/>", xml(&check.detail)))
                }
                Status::Ok | Status::Warn => {
                    out.push_str(&format!("<system-out>{}</system-out>", xml(&text)))
                }
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("</testsuite>\n");
        out
    }
}

fn xml(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_marks_failures_and_skips_and_escapes() {
        let report = Report {
            checks: vec![
                Check::new(
                    "mount /data",
                    Some("n1"),
                    Layer::Node,
                    Status::Ok,
                    "visible",
                ),
                Check::new(
                    "mount /data",
                    Some("n2"),
                    Layer::Pod,
                    Status::Fail,
                    "missing <sentinel> & more",
                )
                .hint("fix"),
                Check::new(
                    "storage",
                    None,
                    Layer::Pod,
                    Status::Skip,
                    "no default StorageClass",
                ),
            ],
        };
        let xml = report.junit("verify");
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"missing &lt;sentinel&gt; &amp; more\">"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"no default StorageClass\"/>"),
            "{xml}"
        );
        assert!(report.failed());
        assert_eq!(report.summary(), "3 checks: 1 ok, 0 warn, 1 fail, 1 skip");
    }
}
