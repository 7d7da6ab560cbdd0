//! `notify run -- CMD ARGS`: run a command, keep the tail of its stderr, pass its exit code on.
//! The child process itself (process group, stop with a grace period, bounded tail, exit
//! codes) is the runtime's [`initbox_runtime::child`].

use std::ffi::OsString;
use std::time::{Duration, Instant};

use initbox_runtime::child::{self, Output};
use initbox_runtime::{Code, Failure};

/// How a command ended.
#[derive(Debug)]
pub struct Ran {
    /// The exit code to pass on: the command's, or 128+N when signal N ended it.
    pub code: Code,
    pub duration: Duration,
    pub stderr_tail: String,
    /// Could not be started at all (127 not found / 126 not executable).
    pub spawn_error: Option<Failure>,
}

/// Run the command with stdin and stdout shared, its stderr passed through and its last
/// `tail_lines` lines (at most `tail_bytes`) kept. Stopped with the runtime's grace period
/// when initbox is stopped.
pub async fn run(argv: &[OsString], tail_lines: usize, tail_bytes: usize) -> Ran {
    let started = Instant::now();
    if argv.is_empty() {
        return Ran {
            code: Code::USAGE,
            duration: Duration::ZERO,
            stderr_tail: String::new(),
            spawn_error: Some(Failure::usage("no command given after --")),
        };
    }
    let spawned = child::Command::new(argv.iter().cloned())
        .stdin_inherit()
        .stderr(Output::PassAndTail)
        .tail(tail_lines, tail_bytes)
        .spawn();
    let finished = match spawned {
        Ok(running) => running.wait().await,
        Err(f) => Err(f),
    };
    match finished {
        Ok(f) => Ran {
            code: f.code,
            duration: started.elapsed(),
            stderr_tail: f.stderr,
            spawn_error: None,
        },
        Err(f) => Ran {
            code: f.code,
            duration: started.elapsed(),
            stderr_tail: f.message.clone(),
            spawn_error: Some(f),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_codes_pass_through() {
        let argv: Vec<OsString> = ["sh", "-c", "echo oops >&2; exit 7"]
            .map(Into::into)
            .to_vec();
        let r = run(&argv, 5, 4096).await;
        assert_eq!(r.code, Code(7));
        assert_eq!(r.stderr_tail, "oops");
        let argv: Vec<OsString> = ["sh", "-c", "kill -TERM $$"].map(Into::into).to_vec();
        assert_eq!(run(&argv, 5, 4096).await.code, Code(143));
        let argv: Vec<OsString> = vec!["/nonexistent/cmd".into()];
        assert_eq!(run(&argv, 5, 4096).await.code, Code::NOT_FOUND);
    }
}
