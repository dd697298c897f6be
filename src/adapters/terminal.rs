//! Everything devcluster prints for people goes through [`Ui`], on stderr: status
//! lines (a spinner on a terminal, plain `•`/`✓`/`✗` lines elsewhere), warnings,
//! errors and tables. Data for scripts goes to stdout from the commands themselves.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::adapters::world::World;
use crate::core::check::{self, Check, Columns};
use crate::core::diagnostic::Problem;
use crate::core::error::Error;

/// The printer for people.
#[derive(Debug, Clone)]
pub struct Ui {
    color: bool,
    spinners: bool,
}

impl Ui {
    pub fn new(world: &World) -> Ui {
        Ui {
            color: world.color(),
            spinners: world.interactive(),
        }
    }

    /// A printer with neither colour nor spinners, for tests and pipes.
    pub fn plain() -> Ui {
        Ui {
            color: false,
            spinners: false,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn line(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "{text}");
    }

    pub fn warning(&self, problem: &Problem) {
        self.line(&format!("{} {problem}", self.paint("33;1", "warning:")));
        if let Some(hint) = &problem.hint {
            self.line(&format!("  {} {hint}", self.paint("36", "hint:")));
        }
    }

    pub fn error(&self, error: &Error) {
        let rendered = error.render();
        if !self.color {
            let _ = std::io::stderr().write_all(rendered.as_bytes());
            return;
        }
        for line in rendered.lines() {
            let painted = if let Some(rest) = line.strip_prefix("error:") {
                format!("{}{rest}", self.paint("31;1", "error:"))
            } else if let Some(rest) = line.strip_prefix("hint:") {
                format!("{}{rest}", self.paint("36;1", "hint:"))
            } else if let Some(rest) = line.strip_prefix("Caused by:") {
                format!("{}{rest}", self.paint("1", "Caused by:"))
            } else {
                line.to_string()
            };
            self.line(&painted);
        }
    }

    /// Opens a status line for one step.
    pub fn step(&self, name: &str) -> Step {
        let started = Instant::now();
        if self.spinners {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            Step {
                ui: self.clone(),
                name: name.to_string(),
                started,
                bar: Some(bar),
                finished: false,
            }
        } else {
            self.line(&format!("• {name}"));
            Step {
                ui: self.clone(),
                name: name.to_string(),
                started,
                bar: None,
                finished: false,
            }
        }
    }

    /// Prints rows as aligned columns; the first row is the header.
    pub fn table(&self, rows: &[Vec<String>]) {
        self.line(&format_table(rows));
    }

    /// The one table of checks `doctor`, `status` and `verify` print, with its
    /// summary line.
    pub fn checks(&self, checks: &[Check], columns: Columns) {
        self.table(&check::table_rows(checks, columns));
        self.line(&check::summary(checks, columns));
    }
}

/// Aligned columns; the last column is not padded.
pub fn format_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

/// One status line: open, maybe relay sub-lines, then done or failed.
pub struct Step {
    ui: Ui,
    name: String,
    started: Instant,
    bar: Option<ProgressBar>,
    finished: bool,
}

impl Step {
    /// A line beneath the step, e.g. one of kind's own status lines.
    pub fn relay(&self, line: &str) {
        let text = format!("    {line}");
        match &self.bar {
            Some(bar) => bar.println(text),
            None => self.ui.line(&text),
        }
    }

    pub fn done(mut self, detail: &str) {
        self.finish(true, detail);
    }

    pub fn fail(mut self, detail: &str) {
        self.finish(false, detail);
    }

    fn finish(&mut self, ok: bool, detail: &str) {
        self.finished = true;
        let mark = if ok {
            self.ui.paint("32", "✓")
        } else {
            self.ui.paint("31", "✗")
        };
        let elapsed = format!("({:.1}s)", self.started.elapsed().as_secs_f64());
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        let line = format!(
            "{mark} {}{detail} {}",
            self.name,
            self.ui.paint("2", &elapsed)
        );
        match self.bar.take() {
            Some(bar) => {
                bar.finish_and_clear();
                self.ui.line(&line);
            }
            None => self.ui.line(&line),
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(false, "interrupted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec![
                "CHECK".to_string(),
                "STATUS".to_string(),
                "DETAIL".to_string(),
            ],
            vec!["docker".to_string(), "ok".to_string(), "28.2.2".to_string()],
        ];
        assert_eq!(
            format_table(&rows),
            "CHECK   STATUS  DETAIL\ndocker  ok      28.2.2"
        );
    }
}
