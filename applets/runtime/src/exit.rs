//! The one exit-code table of the whole toolkit, and the error type that carries a code.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | a check or operation failed |
//! | 2 | usage error (bad flag, bad target, bad duration) |
//! | 3 | invalid input (template, migration file, reference) |
//! | 4 | the environment refused (permission, capability) |
//! | 5 | credentials rejected |
//! | 124 | deadline exceeded |
//! | 126 | follow-up command not executable |
//! | 127 | follow-up command not found |
//! | 128+N | killed by signal N (130 SIGINT, 143 SIGTERM) |

use std::fmt;

/// A process exit code from the toolkit's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub i32);

impl Code {
    pub const OK: Code = Code(0);
    pub const FAILED: Code = Code(1);
    pub const USAGE: Code = Code(2);
    pub const INVALID_INPUT: Code = Code(3);
    pub const ENV_REFUSED: Code = Code(4);
    pub const CREDENTIALS: Code = Code(5);
    pub const DEADLINE: Code = Code(124);
    pub const NOT_EXECUTABLE: Code = Code(126);
    pub const NOT_FOUND: Code = Code(127);

    /// 128 + N for a process ended by signal N.
    pub const fn signal(signo: i32) -> Code {
        Code(128 + signo)
    }

    pub const fn as_i32(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why an applet did not succeed: an exit code from the table and a one-line reason.
///
/// The reason is scrubbed of registered secrets whenever it is shown
/// (log line, stderr, termination log), so callers may include any context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        let message = message.into();
        // One line, always: the first line of a multi-line cause is what a person reads first.
        let message = match message.split_once('\n') {
            Some((first, _)) => first.trim_end().to_string(),
            None => message,
        };
        Failure { code, message }
    }
    /// Exit 1: a check or operation failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Code::FAILED, message)
    }
    /// Exit 2: the command line or configuration is wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Code::USAGE, message)
    }
    /// Exit 3: a template, migration file, reference or other input is invalid.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(Code::INVALID_INPUT, message)
    }
    /// Exit 4: the environment refused (permission, capability).
    pub fn env_refused(message: impl Into<String>) -> Self {
        Self::new(Code::ENV_REFUSED, message)
    }
    /// Exit 5: credentials were rejected.
    pub fn credentials(message: impl Into<String>) -> Self {
        Self::new(Code::CREDENTIALS, message)
    }
    /// Exit 124: the deadline passed.
    pub fn deadline(message: impl Into<String>) -> Self {
        Self::new(Code::DEADLINE, message)
    }

    /// Prefix the message with context, keeping the code.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::redact::scrub(&self.message))
    }
}

impl std::error::Error for Failure {}

/// An error and its causes on one line (`outer: cause: root cause`), a cause left out when the
/// text before it already says it (many errors repeat their source in their own message).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = cause.source();
    }
    out
}

/// What a successful applet asks the runtime to do last.
#[derive(Debug)]
pub enum Outcome {
    /// Exit with this code (0 for success; `--once` checks may return 1).
    Exit(Code),
    /// Replace the process with this command (`-- CMD ARGS`).
    Exec(crate::exec::Command),
}

impl Outcome {
    pub const OK: Outcome = Outcome::Exit(Code::OK);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_messages_are_one_line() {
        let f = Failure::failed("first line\nsecond line");
        assert_eq!(f.message, "first line");
        assert_eq!(f.code, Code::FAILED);
    }

    #[test]
    fn error_chains_name_each_cause_once() {
        #[derive(Debug)]
        struct Wrap(&'static str, Option<Box<Wrap>>);
        impl fmt::Display for Wrap {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Wrap {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|w| w as _)
            }
        }
        let root = Wrap("connection reset", None);
        let repeats = Wrap("read failed: connection reset", Some(Box::new(root)));
        let top = Wrap("sending the request", Some(Box::new(repeats)));
        assert_eq!(
            error_chain(&top),
            "sending the request: read failed: connection reset"
        );
        assert_eq!(error_chain(&Wrap("alone", None)), "alone");
    }

    #[test]
    fn signal_codes_follow_the_shell_convention() {
        assert_eq!(Code::signal(15), Code(143));
        assert_eq!(Code::signal(2), Code(130));
    }
}
