//! `-- CMD ARGS`: after success, replace initbox with the command (`execve`, same PID, so the
//! command receives the pod's signals and its exit code is the container's). After a failure the
//! command is never run.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use crate::exit::Failure;

/// A command to exec, and optionally the exact environment it gets.
#[derive(Debug, Clone, Default)]
pub struct Command {
    pub argv: Vec<OsString>,
    /// `None`: inherit initbox's environment. `Some`: exactly these variables.
    pub env: Option<Vec<(OsString, OsString)>>,
}

impl Command {
    pub fn new(argv: Vec<OsString>) -> Self {
        Command { argv, env: None }
    }
}

/// Replace the current process. Returns only on failure, with 127 (not found) or 126.
pub fn exec(cmd: &Command) -> Failure {
    let Some((program, args)) = cmd.argv.split_first() else {
        return Failure::usage("no command given after --");
    };
    let mut command = std::process::Command::new(program);
    command.args(args);
    if let Some(env) = &cmd.env {
        command.env_clear();
        command.envs(env.iter().map(|(k, v)| (k, v)));
    }
    let err = command.exec();
    crate::child::spawn_failure(program, &err)
}
