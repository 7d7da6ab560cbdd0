//! The in-process applet registry: lets one applet (`run`) execute others in the same process,
//! without exiting between them.
//!
//! The multi-call front fills it once at start-up with every applet compiled into the binary
//! ([`register`]); `run` looks a step's applet up by name ([`find`]) and gets back a future
//! that does the applet's work and yields its [`Outcome`] instead of exiting.
//!
//! Arguments are parsed exactly as `initbox NAME ARGS...` would parse them (same flags, same
//! `INITBOX_*` environment fallbacks), but a parse error or `--help` is returned as a usage
//! [`Failure`] rather than printed and exited.

use std::ffi::OsString;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use crate::exec::Command as ExecCommand;
use crate::exit::{Code, Failure, Outcome};
use crate::{Applet, usage_line};

/// The work of one parsed applet, not started until polled.
pub type AppletFuture = Pin<Box<dyn Future<Output = Result<Outcome, Failure>> + Send>>;

/// Parses `argv` (argv\[0\] is the applet name) into the applet and returns its work.
pub type ParseFn = fn(Vec<OsString>) -> Result<AppletFuture, Failure>;

/// One applet that can run in-process.
#[derive(Clone, Copy)]
pub struct InProcess {
    pub name: &'static str,
    pub parse: ParseFn,
}

static REGISTRY: OnceLock<Vec<InProcess>> = OnceLock::new();

/// Fill the registry (the front does this once, before dispatching). Later calls are ignored.
pub fn register(applets: Vec<InProcess>) {
    let _ = REGISTRY.set(applets);
}

/// Every registered applet, in registration order (empty if the front registered none).
pub fn all() -> &'static [InProcess] {
    REGISTRY.get().map(Vec::as_slice).unwrap_or(&[])
}

/// The registered applet called `name`.
pub fn find(name: &str) -> Option<InProcess> {
    all().iter().find(|a| a.name == name).copied()
}

/// The [`ParseFn`] of applet `A`: parse like the front would, never print, never exit.
pub fn parse<A: Applet>(argv: Vec<OsString>) -> Result<AppletFuture, Failure> {
    let name = A::command().get_name().to_string();
    let argv = crate::env::rename_args(&name, argv);
    crate::env::warn_renamed();
    if let Some(refused) = crate::env::refuse_follow_up(&A::command(), &argv) {
        return Err(Failure::usage(format!("initbox {name}: {refused}")));
    }
    let parsed = crate::duration::accept_hyphen_values(A::command())
        .try_get_matches_from(argv)
        .and_then(|mut m| A::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(args) => Ok(Box::pin(args.run())),
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                return Err(Failure::usage(format!(
                    "initbox {name}: --help and --version print and exit; they are not steps"
                )));
            }
            Err(Failure::usage(usage_line(&name, &e.render().to_string())))
        }
    }
}

/// An applet's result as a step of `run` or a job of `schedule` takes it: `None` when it
/// succeeded, the follow-up command it asked for (`-- CMD`), or a failure; an applet that
/// ended with a non-zero code is a failure with that code.
pub fn settle(result: Result<Outcome, Failure>) -> Result<Option<ExecCommand>, Failure> {
    match result? {
        Outcome::Exit(Code::OK) => Ok(None),
        Outcome::Exit(code) => Err(Failure::new(code, format!("exited with {code}"))),
        Outcome::Exec(cmd) => Ok(Some(cmd)),
    }
}

/// Run a parsed applet to its end ([`settle`]).
pub async fn run_to_end(work: AppletFuture) -> Result<Option<ExecCommand>, Failure> {
    settle(work.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_maps_every_outcome() {
        assert!(matches!(settle(Ok(Outcome::OK)), Ok(None)));
        let f = settle(Ok(Outcome::Exit(Code::DEADLINE))).unwrap_err();
        assert_eq!(f.code, Code::DEADLINE);
        assert_eq!(f.message, format!("exited with {}", Code::DEADLINE));
        let cmd = ExecCommand::new(vec![std::ffi::OsString::from("true")]);
        assert!(matches!(settle(Ok(Outcome::Exec(cmd))), Ok(Some(_))));
        let f = settle(Err(Failure::credentials("no"))).unwrap_err();
        assert_eq!(f.code, Code::CREDENTIALS);
    }
}
