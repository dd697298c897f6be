//! Errors as people read them (what failed, why, what to run next) and the one
//! place exit codes are decided.

use std::fmt;

use crate::core::diagnostic::Problem;

/// Process exit codes, the same for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// The command did what was asked.
    Success = 0,
    /// The operation failed (a check failed, kind failed, the cluster is unhealthy).
    Failure = 1,
    /// Invalid input or usage: bad flags, an unreadable or invalid profile.
    Usage = 2,
    /// Interrupted by Ctrl-C, SIGTERM or SIGHUP (128 + SIGINT for all three), after
    /// cleaning up.
    Interrupted = 130,
}

/// What kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user's input is wrong: exit 2.
    Input,
    /// The operation failed: exit 1.
    Failed,
    /// Ctrl-C, SIGTERM or SIGHUP: exit 130.
    Interrupted,
}

/// A failure on its way to the user.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// Why, outermost first: printed as `Caused by:` lines.
    pub causes: Vec<String>,
    /// The next step, usually a command in backticks.
    pub hint: Option<String>,
    /// Every problem found in a profile, printed one per line.
    pub problems: Vec<Problem>,
    /// Extra text shown after the causes, e.g. the failed command and its output.
    pub details: Option<String>,
    /// The step of a multi-step operation (`up`'s `preflight`, `create`, ...) that
    /// failed, shown after the failure itself so the cause stays the headline.
    pub step: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hint: None,
            problems: Vec::new(),
            details: None,
            step: None,
        }
    }

    /// Bad input: exit 2.
    pub fn input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Input, message)
    }

    /// A failed operation: exit 1.
    pub fn failed(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Failed, message)
    }

    /// Ctrl-C: exit 130.
    pub fn interrupted(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Interrupted, message)
    }

    /// A profile that did not load or validate: one error listing every problem.
    pub fn invalid_profile(problems: Vec<Problem>) -> Error {
        let errors = problems.iter().filter(|p| p.is_error()).count();
        let message = if errors == 1 {
            "the profile is invalid".to_string()
        } else {
            format!("the profile is invalid ({errors} problems)")
        };
        let mut error = Error::input(message);
        error.problems = problems;
        error
    }

    pub fn cause(mut self, cause: impl fmt::Display) -> Error {
        self.causes.push(cause.to_string());
        self
    }

    /// Wraps the error in `context`: the old message becomes the first cause.
    pub fn context(mut self, context: impl Into<String>) -> Error {
        let message = std::mem::replace(&mut self.message, context.into());
        self.causes.insert(0, message);
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    pub fn details(mut self, details: impl Into<String>) -> Error {
        self.details = Some(details.into());
        self
    }

    /// Names the step that failed; the first one named is kept (the innermost).
    pub fn in_step(mut self, step: impl Into<String>) -> Error {
        if self.step.is_none() {
            self.step = Some(step.into());
        }
        self
    }

    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            ErrorKind::Input => ExitCode::Usage,
            ErrorKind::Failed => ExitCode::Failure,
            ErrorKind::Interrupted => ExitCode::Interrupted,
        }
    }

    /// The whole report as printed on stderr (without colour).
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", self.message);
        for problem in &self.problems {
            let label = if problem.is_error() {
                "  -"
            } else {
                "  - warning:"
            };
            out.push_str(&format!("{label} {problem}\n"));
            if let Some(hint) = &problem.hint {
                out.push_str(&format!("      hint: {hint}\n"));
            }
        }
        for cause in &self.causes {
            out.push_str(&format!("Caused by: {cause}\n"));
        }
        if let Some(details) = &self.details {
            for line in details.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
        if let Some(step) = &self.step {
            out.push_str(&format!("note: step `{step}` failed\n"));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("hint: {hint}\n"));
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for cause in &self.causes {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Quotes `args` so the line can be pasted into a POSIX shell.
///
/// A NUL byte cannot be passed to a program nor typed into a shell, so it never
/// reaches here from a real command line; should one appear, it is shown as `\0`.
pub fn shell_quote<S: AsRef<str>>(args: &[S]) -> String {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().replace('\0', "\\0"))
        .collect();
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a POSIX shell makes of `line`: the words it passes to a program.
    fn words_read_back_by_sh(line: &str) -> Vec<String> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {line}"))
            .output();
        let out = match out {
            Ok(out) if out.status.success() => out,
            other => panic!("sh rejected {line:?}: {other:?}"),
        };
        String::from_utf8_lossy(&out.stdout)
            .split_terminator('\0')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn shell_quote_is_pasteable() {
        let words = ["kind", "create", "cluster", "--name", "it's here", ""];
        let line = shell_quote(&words);
        assert_eq!(words_read_back_by_sh(&line), words);
        // Words made only of characters a shell leaves alone stay bare.
        assert!(line.starts_with("kind create cluster --name "), "{line}");
    }

    #[test]
    fn shell_quote_survives_odd_strings() {
        let words = [
            "$HOME",
            "`id`",
            "$(id)",
            "a\"b",
            "back\\slash",
            "two\nlines",
            "tab\there",
            "*",
            "~root",
            "{a,b}",
            "x=1",
            "50%",
            "a;b|c&d",
            "#comment",
            "!bang",
            "'",
            "''",
            "é/ü",
            "--config=/tmp/a b",
        ];
        let line = shell_quote(&words);
        assert_eq!(words_read_back_by_sh(&line), words, "{line}");
        assert_eq!(
            shell_quote(&["/usr/bin/kind", "-v", "a@b:c+d_e"]),
            "/usr/bin/kind -v a@b:c+d_e"
        );
    }

    #[test]
    fn shell_quote_shows_a_nul_instead_of_failing() {
        let line = shell_quote(&["a\0b"]);
        assert_eq!(words_read_back_by_sh(&line), ["a\\0b"], "{line}");
    }

    #[test]
    fn the_failure_is_the_headline_and_the_step_follows() {
        let error = Error::failed("2 preflight check(s) failed")
            .cause("port 80 is taken")
            .details("port 80: held by nginx")
            .in_step("preflight")
            .in_step("outer")
            .hint("free the port");
        assert_eq!(
            error.render(),
            "error: 2 preflight check(s) failed\n\
             Caused by: port 80 is taken\n\
             \x20 port 80: held by nginx\n\
             note: step `preflight` failed\n\
             hint: free the port\n"
        );
    }

    #[test]
    fn exit_codes_by_kind() {
        assert_eq!(Error::input("x").exit_code() as i32, 2);
        assert_eq!(Error::failed("x").exit_code() as i32, 1);
        assert_eq!(Error::interrupted("x").exit_code() as i32, 130);
    }
}
