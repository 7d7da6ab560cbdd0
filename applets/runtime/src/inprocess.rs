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

use crate::exit::{Failure, Outcome};
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
