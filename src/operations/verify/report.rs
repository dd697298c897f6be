//! Verification results: one row per check, node and layer, and the three ways
//! they are shown (a table on stderr, JSON on stdout, JUnit XML for CI).

use serde::Serialize;

use crate::adapters::terminal::Ui;

use crate::core::check::{self, Columns};
pub use crate::core::check::{Check, Layer, Status};

/// Every check of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    pub fn summary(&self) -> String {
        check::summary(&self.checks, Columns::Located)
    }

    pub fn print_table(&self, ui: &Ui) {
        ui.checks(&self.checks, Columns::Located);
    }

    /// JUnit XML (as cargo-nextest writes it): one test case per check, failures
    /// and skips marked, the hint in the failure's text.
    pub fn junit(&self, suite: &str) -> String {
        use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
        let mut test_suite = TestSuite::new(suite);
        for check in &self.checks {
            let name = match &check.node {
                Some(node) => format!("{} [{}] ({})", check.name, node, check.layer.as_str()),
                None => format!("{} ({})", check.name, check.layer.as_str()),
            };
            let text = match &check.hint {
                Some(hint) => format!("{}\nhint: {hint}", check.detail),
                None => check.detail.clone(),
            };
            let mut status = match check.status {
                Status::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
                Status::Skip => TestCaseStatus::skipped(),
                Status::Ok | Status::Warn => TestCaseStatus::success(),
            };
            if matches!(check.status, Status::Fail | Status::Skip) {
                status.set_message(check.detail.as_str());
            }
            if check.status == Status::Fail {
                status.set_description(text.as_str());
            }
            let mut case = TestCase::new(name, status);
            case.set_classname("devcluster.verify");
            if matches!(check.status, Status::Ok | Status::Warn) {
                case.set_system_out(text);
            }
            test_suite.add_test_case(case);
        }
        let mut report = quick_junit::Report::new(suite);
        report.add_test_suite(test_suite);
        report.to_string().unwrap_or_else(|e| {
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- cannot encode the report: {e} -->\n")
        })
    }
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
        let suite = xml
            .lines()
            .find(|l| l.trim_start().starts_with("<testsuite "))
            .unwrap_or_default();
        for counted in ["tests=\"3\"", "failures=\"1\"", "skipped=\"1\""] {
            assert!(suite.contains(counted), "{counted} in {xml}");
        }
        assert!(
            xml.contains("<failure message=\"missing &lt;sentinel&gt; &amp; more\""),
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
