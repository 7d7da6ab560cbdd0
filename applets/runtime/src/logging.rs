//! Logging: `tracing` to stderr, readable text or JSON, every line scrubbed of secrets.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{ArgAction, Args, ValueEnum};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::redact;

/// Default place where Kubernetes picks up a container's termination message.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Readable lines: `TIME LEVEL message key=value`.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging flags shared by every applet.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Log line format.
    #[arg(
        long,
        value_enum,
        default_value_t,
        env = crate::env::LOG_FORMAT,
        global = true
    )]
    pub log_format: LogFormat,

    /// Only warnings and errors.
    #[arg(
        short,
        long,
        env = crate::env::QUIET, value_parser = clap::builder::BoolishValueParser::new(),
        global = true,
        conflicts_with = "verbose"
    )]
    pub quiet: bool,

    /// More detail; twice for protocol traces (secrets stay redacted).
    #[arg(short, long, action = ArgAction::Count, env = crate::env::VERBOSE, global = true)]
    pub verbose: u8,

    /// Where the failure reason is also written (only if the file exists, as in a Kubernetes pod;
    /// an explicitly given path is created).
    #[arg(
        long,
        value_name = "PATH",
        env = crate::env::TERMINATION_LOG,
        global = true
    )]
    pub termination_log: Option<PathBuf>,
}

impl Default for LogArgs {
    fn default() -> Self {
        LogArgs {
            log_format: LogFormat::Text,
            quiet: false,
            verbose: 0,
            termination_log: None,
        }
    }
}

/// Writes each formatted line to stderr after scrubbing registered secrets.
#[derive(Clone, Copy, Default)]
pub struct ScrubbedStderr;

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let clean = redact::scrub(&text);
        io::stderr().lock().write_all(clean.as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedStderr;
    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedStderr
    }
}

/// The filter: `INITBOX_LOG` (an `EnvFilter` directive) wins; else `-q`/`-v` pick the level for
/// initbox's own crates while libraries stay at `warn` (or `trace` too with `-vv`).
fn filter(args: &LogArgs) -> EnvFilter {
    if let Ok(directive) = std::env::var(crate::env::LOG)
        && let Ok(f) = EnvFilter::try_new(&directive)
    {
        return f;
    }
    let (ours, libs) = match (args.quiet, args.verbose) {
        (true, _) => ("warn", "error"),
        (false, 0) => ("info", "warn"),
        (false, 1) => ("debug", "warn"),
        (false, _) => ("trace", "debug"),
    };
    EnvFilter::new(format!("{libs},initbox={ours}"))
}

/// Install the global subscriber. Safe to call more than once (later calls are ignored).
pub fn init(args: &LogArgs) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(args))
        .with_writer(ScrubbedStderr)
        .with_target(false);
    let _ = match args.log_format {
        LogFormat::Text => builder
            .with_ansi(false)
            .with_timer(tracing_subscriber::fmt::time::SystemTime)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
}

/// Write the failure reason where the orchestrator will show it (`kubectl describe pod`).
pub fn write_termination_log(args: &LogArgs, message: &str) {
    let clean = redact::scrub(message);
    let (path, create) = match &args.termination_log {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_TERMINATION_LOG), false),
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(create)
        .open(&path);
    if let Ok(mut f) = file {
        let _ = writeln!(f, "{clean}");
    }
}
