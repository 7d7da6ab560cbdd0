//! The initbox runtime: everything the applets share, so no applet re-implements it.
//!
//! - [`exit`]: the toolkit's exit-code table and the [`Failure`] type;
//! - [`duration`], [`deadline`], [`retry`]: durations, the overall deadline, the retry policy;
//! - [`signals`]: SIGTERM/SIGINT end a run at once, also as PID 1 and while the applet's thread
//!   is busy (a watchdog thread; [`signals::set_stop_grace`] for applets that stop children);
//! - [`exec`]: `-- CMD ARGS` replaces initbox after success, never after failure;
//! - [`child`]: child processes in their own group, stopped with a grace period, bounded output;
//! - [`logging`], [`redact`]: tracing to stderr (text or JSON), secrets scrubbed from every line;
//! - [`atomic`]: atomic file writes with tight modes;
//! - [`input`]: bounded reading of input files and stdin, the secret-file newline rule;
//! - [`host`]: the host name;
//! - [`target`]: `host:port` parsing; [`resolve`]: system or direct-server DNS;
//! - [`wait`]: the parallel wait engine with progress lines and a summary;
//! - [`tls`]: verified-by-default rustls client configuration, TLS failures as named reasons;
//! - [`http`]: the one HTTP client builder, its redirect policy and bounded body reading;
//! - [`inprocess`]: the registry that lets `run` and `schedule` execute other applets in one
//!   process; [`step`]: what a step or job runs (`applet:` + `args:` or `command:` + `env:`);
//! - [`alloc`]: the global allocator and its bounded sections (memory limits for templates);
//! - [`memory`]: what a long-running applet gives back before a long wait.
//!
//! An applet is a clap `Parser` that implements [`Applet`]; the multi-call front calls
//! [`launch`] with its arguments.

pub mod alloc;
pub mod atomic;
pub mod child;
pub mod deadline;
pub mod duration;
pub mod env;
pub mod exec;
pub mod exit;
#[cfg(test)]
mod fuzz_tests;
pub mod host;
#[cfg(feature = "http")]
pub mod http;
pub mod inprocess;
pub mod input;
pub mod logging;
pub mod memory;
pub mod redact;
#[cfg(feature = "resolve")]
pub mod resolve;
pub mod retry;
pub mod signals;
pub mod step;
pub mod target;
#[cfg(feature = "tls")]
pub mod tls;
pub mod url;
pub mod wait;

use std::ffi::OsString;
use std::future::Future;
use std::io::Write;

pub use deadline::Deadline;
pub use exit::{Code, Failure, Outcome};
pub use logging::LogArgs;
pub use wait::WaitArgs;

/// One initbox applet: its clap arguments and its async entry point.
pub trait Applet: clap::Parser + Send + 'static {
    /// Adjust the environment before the arguments are parsed (drop-in compatibility variables
    /// such as docker-compose-wait's `WAIT_HOSTS`). Runs single-threaded, before anything else.
    fn before_parse() {}

    /// The logging flags of this applet.
    fn logging(&self) -> &LogArgs;

    /// `true` if the applet watches SIGTERM/SIGINT itself ([`signals::Shutdown`]) and ends its
    /// work in order (`run`: stop the steps, print the summary) instead of being dropped.
    fn handles_signals() -> bool {
        false
    }

    /// Do the work.
    fn run(self) -> impl Future<Output = Result<Outcome, Failure>> + Send;
}

/// Parse the arguments of applet `A` as `initbox NAME ARGS...` would.
///
/// `--help`/`--version` print to stdout and exit 0; a usage error prints one line naming the bad
/// input and exits 2.
pub fn parse<A: Applet, I, T>(argv: I) -> A
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = duration::accept_hyphen_values(env_names_only(A::command()))
        .try_get_matches_from(argv)
        .and_then(|mut m| <A as clap::FromArgMatches>::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) && !e.use_stderr()
            {
                let _ = e.print();
                std::process::exit(0);
            }
            let name = A::command().get_name().to_string();
            usage_exit(&name, &e.render().to_string(), &[])
        }
    }
}

/// `cmd` with every argument of it and of its subcommands, at any depth, showing its
/// environment variable in `--help`/`-h` by name only (`[env: INITBOX_X]`), never with the
/// value it has now: variables carry URLs with passwords, tokens and headers.
pub fn env_names_only(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| a.hide_env_values(true))
        .mut_subcommands(env_names_only)
}

/// The first line of a clap error, with a pointer to `--help`: one line, always.
pub fn usage_line(applet: &str, rendered: &str) -> String {
    // clap's message, up to its usage/tip paragraphs, folded onto one line.
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| {
            !l.starts_with("Usage:") && !l.starts_with("tip:") && !l.starts_with("For more")
        })
        .filter(|l| !l.is_empty())
        .collect();
    let joined = if message.is_empty() {
        "invalid arguments".to_string()
    } else {
        message.join(" ")
    };
    let joined = joined.strip_prefix("error: ").unwrap_or(&joined);
    // The front itself is `initbox`, an applet is `initbox APPLET`.
    let who = if applet == "initbox" {
        applet.to_string()
    } else {
        format!("initbox {applet}")
    };
    redact::scrub(&format!("{who}: error: {joined} (see '{who} --help')")).into_owned()
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("initbox: internal error{at}: {}", redact::scrub(&msg));
    }));
}

/// Build applet `A`'s arguments from the matches the multi-call front parsed, and launch it.
pub fn launch_from_matches<A: Applet>(matches: &mut clap::ArgMatches) -> ! {
    match <A as clap::FromArgMatches>::from_arg_matches_mut(matches) {
        Ok(args) => launch(args),
        Err(e) => {
            let name = A::command().get_name().to_string();
            usage_exit(&name, &e.render().to_string(), &[])
        }
    }
}

/// What a clap error says, folded onto one line, with a pointer to `--help`.
pub fn usage_message(applet: &str, rendered: &str) -> String {
    let line = usage_line(applet, rendered);
    let who = if applet == "initbox" {
        "initbox: error: ".to_string()
    } else {
        format!("initbox {applet}: error: ")
    };
    line.strip_prefix(&who).map(str::to_string).unwrap_or(line)
}

/// End a run that never started with a usage error (exit 2), in the same one-line shape as
/// any failure ([`finish`]): `initbox APPLET: what is wrong` with `code=2`, as text or JSON
/// (`--log-format json` in `argv` or `INITBOX_LOG_FORMAT=json`), also in the termination log.
pub fn usage_exit(applet: &str, rendered: &str, argv: &[OsString]) -> ! {
    fail_before_start(
        applet,
        argv,
        Failure::usage(usage_message(applet, rendered)),
    )
}

/// End a run that never started with `failure`, shaped like every other failure.
pub fn fail_before_start(applet: &str, argv: &[OsString], failure: Failure) -> ! {
    let mut log = LogArgs::default();
    if sniff_json(argv) {
        log.log_format = logging::LogFormat::Json;
    }
    logging::init(&log);
    set_applet(applet);
    report(&log, &failure);
    exit_now(failure.code)
}

/// `--log-format json` in `argv` (before `--`), or `INITBOX_LOG_FORMAT=json`.
fn sniff_json(argv: &[OsString]) -> bool {
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--")
        .collect();
    let given = args.iter().enumerate().find_map(|(i, a)| {
        if a == "--log-format" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--log-format=").map(str::to_string)
        }
    });
    given
        .or_else(|| std::env::var(env::LOG_FORMAT).ok())
        .is_some_and(|f| f.eq_ignore_ascii_case("json"))
}

static APPLET: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn set_applet(name: &str) {
    let _ = APPLET.set(name.to_string());
}

/// `initbox APPLET` (or `initbox` for the front) as failures name it.
fn who() -> String {
    match APPLET.get().map(String::as_str) {
        None | Some("") | Some("initbox") => "initbox".to_string(),
        Some(a) => format!("initbox {a}"),
    }
}

/// Run an applet and never return: exit with the toolkit's code, or exec the follow-up command.
pub fn launch<A: Applet>(args: A) -> ! {
    let log = args.logging().clone();
    logging::init(&log);
    env::warn_renamed();
    // Building the clap command costs as much as parsing: once, for its name.
    let name = A::command().get_name().to_string();
    set_applet(&name);
    alloc::configure(&name, &log);
    install_panic_hook();
    #[cfg(feature = "tls")]
    tls::install_crypto_provider();
    // Signals win even while this thread is busy in synchronous work.
    let watchdog_log = log.clone();
    if let Err(e) = signals::watchdog(move |signo| report(&watchdog_log, &stopped(signo))) {
        tracing::debug!("no signal watchdog: {e}");
    }

    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => finish(
            &log,
            Err(Failure::env_refused(format!("cannot start: {e}"))),
        ),
    };
    let result = rt.block_on(async move {
        if A::handles_signals() {
            return args.run().await;
        }
        let mut shutdown = signals::Shutdown::install();
        tokio::select! {
            biased;
            signo = shutdown.received() => Err(stopped(signo)),
            r = args.run() => r,
        }
    });
    finish(&log, result)
}

/// The failure of a run ended by signal `signo`.
fn stopped(signo: i32) -> Failure {
    Failure::new(
        Code::signal(signo),
        format!("stopped by {}", signals::name(signo)),
    )
}

/// Report the result and leave: exit code, or exec.
pub fn finish(log: &LogArgs, result: Result<Outcome, Failure>) -> ! {
    if !signals::claim_exit() {
        // The signal watchdog is reporting and ending the process.
        loop {
            std::thread::park();
        }
    }
    // Children stopped on the way out (SIGTERM, grace, SIGKILL) are gone before initbox is.
    child::wait_for_stopping();
    let failure = match result {
        Ok(Outcome::Exit(code)) => exit_now(code),
        Ok(Outcome::Exec(cmd)) => {
            tracing::info!(
                command = %cmd.argv.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default(),
                "starting command"
            );
            let _ = std::io::stderr().flush();
            exec::exec(&cmd)
        }
        Err(f) => f,
    };
    report(log, &failure);
    exit_now(failure.code)
}

/// Log a failure (a warning when a signal ended the run) and write the termination log.
fn report(log: &LogArgs, failure: &Failure) {
    // One shape for every failure, usage errors included: `initbox APPLET: what` and the code
    // (JSON: the applet is a field of its own).
    let code = failure.code.as_i32();
    let signal = code > 128 && code < 160;
    match log.log_format {
        logging::LogFormat::Json => {
            let applet = APPLET.get().map_or("initbox", String::as_str);
            if signal {
                tracing::warn!(applet, code, "{}", failure.message);
            } else {
                tracing::error!(applet, code, "{}", failure.message);
            }
        }
        logging::LogFormat::Text => {
            let who = who();
            if signal {
                tracing::warn!(code, "{who}: {}", failure.message);
            } else {
                tracing::error!(code, "{who}: {}", failure.message);
            }
        }
    }
    logging::write_termination_log(log, &failure.message);
}

fn exit_now(code: Code) -> ! {
    let _ = std::io::stderr().flush();
    let _ = std::io::stdout().flush();
    std::process::exit(code.as_i32())
}
