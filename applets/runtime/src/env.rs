//! The one vocabulary of flag and variable names shared by every applet.
//!
//! Every `INITBOX_*` variable an applet reads is a constant here, with the one thing it means
//! across the toolkit ([`VOCABULARY`]); `tests/contract.rs` walks every applet's clap command
//! and fails when one name carries two meanings or two names carry one. The shared words:
//!
//! - `--timeout` / `INITBOX_TIMEOUT` bounds the **whole run** (exit 124; 0 = no limit), in every
//!   applet; the default differs by applet, never the meaning. One attempt is bounded by
//!   `--attempt-timeout` / `INITBOX_ATTEMPT_TIMEOUT`, one HTTP request of a secret backend by
//!   `--request-timeout`. `run`'s own settings are `INITBOX_RUN_*` so that the steps it runs,
//!   which read the same environment, do not inherit them.
//! - `--interval` is the first delay between attempts of a wait; ICMP echo spacing is
//!   `--icmp-interval`.
//! - `--strict` / `INITBOX_STRICT`: warnings are failures.
//! - `--password-file` / `INITBOX_PASSWORD_FILE`, `INITBOX_PASSWORD`: the password of every URL
//!   that has none (databases, Redis, AMQP, NATS, MQTT).
//! - `-- CMD`: exec'd after success, never after a failure; an applet that runs no follow-up
//!   command refuses `--` with a usage error ([`refuse_follow_up`]).
//! - `--exec` / `INITBOX_EXEC` is fetch-secret's: the secrets go into the command's environment.
//!
//! A renamed name keeps working: [`RENAMED`] maps it to its new name before parsing, and one
//! warning per old name, naming the new one and never the value, is logged once logging is up.

use std::ffi::{OsStr, OsString};
use std::sync::Mutex;

/// One variable of the vocabulary.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    /// The flag it is the fallback of (empty: a positional argument or read directly).
    pub flag: &'static str,
    /// What it means, in every applet that reads it.
    pub meaning: &'static str,
    /// Read with `std::env::var`, not through clap.
    pub read_directly: bool,
}

/// An old name that still works, in one applet (`""`: every applet).
#[derive(Debug, Clone, Copy)]
pub struct Renamed {
    pub applet: &'static str,
    pub old: &'static str,
    pub new: &'static str,
}

/// Names renamed for the one vocabulary; the old ones keep working with a warning.
pub const RENAMED: &[Renamed] = &[
    // network-check's --timeout bounded one attempt; everywhere else it bounds the run.
    Renamed {
        applet: "network-check",
        old: "--timeout",
        new: "--attempt-timeout",
    },
    Renamed {
        applet: "network-check",
        old: "INITBOX_CHECK_TIMEOUT",
        new: ATTEMPT_TIMEOUT,
    },
    // network-check's --interval was ICMP spacing; everywhere else it is the retry delay.
    Renamed {
        applet: "network-check",
        old: "--interval",
        new: "--icmp-interval",
    },
    // run-migrations' --strict refused unknown applied versions; INITBOX_STRICT is "warnings
    // are failures" (network-check).
    Renamed {
        applet: "run-migrations",
        old: "--strict",
        new: "--refuse-missing",
    },
    Renamed {
        applet: "run-migrations",
        old: "INITBOX_STRICT",
        new: MIGRATIONS_REFUSE_MISSING,
    },
    // run-migrations' --exec ran a command under the lock; INITBOX_EXEC is fetch-secret's.
    Renamed {
        applet: "run-migrations",
        old: "--exec",
        new: "--with-lock",
    },
    Renamed {
        applet: "run-migrations",
        old: "INITBOX_EXEC",
        new: MIGRATIONS_WITH_LOCK,
    },
    // One password-file name for every URL (wait-for's).
    Renamed {
        applet: "run-migrations",
        old: "INITBOX_DATABASE_PASSWORD_FILE",
        new: PASSWORD_FILE,
    },
    Renamed {
        applet: "run-migrations",
        old: "INITBOX_DATABASE_PASSWORD",
        new: PASSWORD,
    },
];

static NOTICES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn note(r: &Renamed) {
    let what = if r.old.starts_with("--") {
        "flag"
    } else {
        "variable"
    };
    let line = format!(
        "the {what} {} is deprecated in {}: use {} (same meaning)",
        r.old, r.applet, r.new
    );
    let mut n = NOTICES.lock().unwrap_or_else(|e| e.into_inner());
    if !n.contains(&line) {
        n.push(line);
    }
}

fn renamed_in(applet: &str) -> impl Iterator<Item = &'static Renamed> + '_ {
    RENAMED
        .iter()
        .filter(move |r| r.applet.is_empty() || r.applet == applet)
}

/// Old flags in `argv` (up to a `--`) replaced by their new names, for `applet`.
pub fn rename_args(applet: &str, argv: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut rest = false;
    for arg in argv {
        if rest || arg == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let s = arg.to_string_lossy();
        let found = renamed_in(applet)
            .filter(|r| r.old.starts_with("--"))
            .find_map(|r| {
                if s == r.old {
                    Some((r, OsString::from(r.new)))
                } else {
                    s.strip_prefix(r.old)
                        .and_then(|v| v.strip_prefix('='))
                        .map(|v| (r, OsString::from(format!("{}={v}", r.new))))
                }
            });
        match found {
            Some((r, new)) => {
                note(r);
                out.push(new);
            }
            None => out.push(arg),
        }
    }
    out
}

/// Old variables copied to their new names (the new one wins when both are set), for
/// `applet`. Call it single-threaded, before parsing (the front does).
pub fn rename_environment(applet: &str) {
    for r in renamed_in(applet).filter(|r| !r.old.starts_with("--")) {
        if let Some(value) = std::env::var_os(r.old) {
            if std::env::var_os(r.new).is_none() {
                // SAFETY: called by the front before any other thread exists.
                unsafe { std::env::set_var(r.new, value) };
            }
            note(r);
        }
    }
}

/// Log the deprecation warnings collected so far, once each.
pub fn warn_renamed() {
    let notices = std::mem::take(&mut *NOTICES.lock().unwrap_or_else(|e| e.into_inner()));
    for n in notices {
        tracing::warn!("{n}");
    }
}

/// `Some(message)` when `argv` gives a command after `--` to an applet that runs none.
pub fn refuse_follow_up(cmd: &clap::Command, argv: &[OsString]) -> Option<String> {
    // At any depth: `notify run … -- CMD` takes it in a subcommand.
    fn takes_command(cmd: &clap::Command) -> bool {
        cmd.get_arguments().any(|a| a.is_last_set()) || cmd.get_subcommands().any(takes_command)
    }
    let takes_command = takes_command(cmd);
    let dashdash = argv.iter().position(|a| a == OsStr::new("--"))?;
    if takes_command || dashdash + 1 >= argv.len() {
        return None;
    }
    Some(format!(
        "-- CMD: {} runs no follow-up command (chain it with `initbox run` or the entrypoint)",
        cmd.get_name()
    ))
}

/// The flags `-h` shows per applet (every flag stays in `--help`): the most used ones.
pub const SHORT_HELP: &[(&str, &[&str])] = &[
    (
        "wait-for-tcp",
        &[
            "timeout",
            "attempt-timeout",
            "interval",
            "any",
            "invert",
            "once",
        ],
    ),
    (
        "wait-for-dns",
        &["type", "expect", "absent", "server", "timeout", "once"],
    ),
    (
        "wait-for",
        &[
            "timeout",
            "password-file",
            "query",
            "status",
            "json",
            "once",
        ],
    ),
    (
        "run-migrations",
        &["database-url", "dir", "timeout", "lock-timeout"],
    ),
    (
        "fetch-secret",
        &[
            "spec",
            "out",
            "dir",
            "format",
            "exec",
            "check",
            "vault-addr",
            "timeout",
        ],
    ),
    (
        "render-config",
        &["data", "set", "engine", "template", "mode", "check-cmd"],
    ),
    (
        "network-check",
        &[
            "file",
            "output",
            "attempt-timeout",
            "retries",
            "strict",
            "watch",
        ],
    ),
    (
        "notify",
        &["message", "title", "on", "event", "timeout", "dry-run"],
    ),
    ("run", &["file", "check", "timeout", "stop-grace"]),
    ("copy-self", &["name", "mode", "links"]),
    (
        "restore",
        &[
            "from",
            "to",
            "if",
            "check",
            "owner",
            "chmod",
            "before",
            "s3-endpoint",
            "timeout",
        ],
    ),
    (
        "backup",
        &[
            "from",
            "to",
            "pre",
            "keep-last",
            "keep-daily",
            "keep-weekly",
            "s3-endpoint",
            "timeout",
        ],
    ),
    (
        "schedule",
        &["at", "cron", "every", "tz", "file", "job-timeout"],
    ),
    (
        "prepare-volume",
        &[
            "owner",
            "chmod",
            "fs-group",
            "on-root-mismatch",
            "mkdir",
            "copy",
            "if-missing",
            "if-changed",
            "check",
        ],
    ),
    (
        "download",
        &[
            "to",
            "sha256",
            "sha256sums",
            "unpack",
            "header",
            "owner",
            "timeout",
        ],
    ),
    (
        "git-checkout",
        &["to", "ref", "commit", "depth", "token-file", "timeout"],
    ),
    (
        "net-setup",
        &[
            "file",
            "redirect-outbound",
            "exclude-uid",
            "redirect-inbound",
            "deny-destination",
            "sysctl",
            "dry-run",
            "check",
        ],
    ),
];

/// `cmd` shaped to the contract: `-h` shows the applet's most used flags and the first
/// paragraph after them (the examples); `--help` keeps every flag and paragraph. Positional
/// arguments (`[CMD]`) sit under "Arguments", never under the heading of the flags declared
/// before them.
pub fn shape(mut cmd: clap::Command) -> clap::Command {
    let name = cmd.get_name().to_string();
    if let Some(after) = cmd.get_after_help().map(|a| a.to_string())
        && cmd.get_after_long_help().is_none()
        && let Some((examples, _)) = after.split_once("\n\n")
    {
        let examples = examples.to_string();
        cmd = cmd.after_long_help(after).after_help(examples);
    }
    shape_as(cmd, &name)
}

fn shape_as(cmd: clap::Command, applet: &str) -> clap::Command {
    let shown = SHORT_HELP
        .iter()
        .find(|(a, _)| *a == applet)
        .map(|(_, s)| *s);
    let applet_owned = applet.to_string();
    cmd.mut_args(|a| {
        if a.is_positional() {
            return a.help_heading(None::<&str>);
        }
        let id = a.get_id().as_str();
        let keep = matches!(id, "help" | "version")
            || shown.is_none_or(|s| a.get_long().is_some_and(|l| s.contains(&l)));
        a.hide_short_help(!keep)
    })
    .mut_subcommands(move |s| shape_as(s, &applet_owned))
}

/// Succeed when every target is ready (the default)
pub const ALL: &str = "INITBOX_ALL";
/// Apply new migrations whose version is lower than the newest applied one (refused by default: they were likely merged late and never tested in this order)
pub const ALLOW_OUT_OF_ORDER: &str = "INITBOX_ALLOW_OUT_OF_ORDER";
/// Succeed as soon as one target is ready
pub const ANY: &str = "INITBOX_ANY";
/// Bound on one attempt (connect, handshake, query, request)
pub const ATTEMPT_TIMEOUT: &str = "INITBOX_ATTEMPT_TIMEOUT";
/// run-migrations baseline: the last version the existing schema already contains
pub const BASELINE_VERSION: &str = "INITBOX_BASELINE_VERSION";
/// CA bundle (PEM) trusted for AWS endpoints in addition to the system roots (falls back to AWS_CA_BUNDLE)
pub const AWS_CA_FILE: &str = "INITBOX_AWS_CA_FILE";
/// Endpoint URL for every AWS service used (falls back to AWS_ENDPOINT_URL), e.g
pub const AWS_ENDPOINT: &str = "INITBOX_AWS_ENDPOINT";
/// Profile of the shared config/credentials files (falls back to AWS_PROFILE, then "default")
pub const AWS_PROFILE: &str = "INITBOX_AWS_PROFILE";
/// Region (falls back to AWS_REGION, AWS_DEFAULT_REGION, the profile's region)
pub const AWS_REGION: &str = "INITBOX_AWS_REGION";
/// Growth of the delay after each failed attempt
pub const BACKOFF_FACTOR: &str = "INITBOX_BACKOFF_FACTOR";
/// Extra CA certificates (PEM) trusted in addition to the system roots
pub const CA_FILE: &str = "INITBOX_CA_FILE";
/// Resolve and check every reference, print the names, write and run nothing
pub const CHECK: &str = "INITBOX_CHECK";
/// Checks: dns:NAME, tcp:HOST:PORT, tls:HOST(:PORT), icmp:HOST, udp:HOST:PORT, http(s)://URL, each optionally followed by ,key=value options
pub const CHECKS: &str = "INITBOX_CHECKS";
/// YAML spec file with `defaults` and `checks` (see the README for the keys)
pub const CHECKS_FILE: &str = "INITBOX_CHECKS_FILE";
/// Client certificate chain (PEM) for mutual TLS
pub const CLIENT_CERT: &str = "INITBOX_CLIENT_CERT";
/// Private key (PEM) of the client certificate
pub const CLIENT_KEY: &str = "INITBOX_CLIENT_KEY";
/// Most checks running at the same time
pub const CONCURRENCY: &str = "INITBOX_CONCURRENCY";
/// Allow a set-user-ID or set-group-ID --mode (e.g
pub const COPY_SELF_ALLOW_SETID: &str = "INITBOX_COPY_SELF_ALLOW_SETID";
/// Directory to copy into (created with mode 0755 if missing)
pub const COPY_SELF_DIR: &str = "INITBOX_COPY_SELF_DIR";
/// Also create one relative symlink per applet next to the copy
pub const COPY_SELF_LINKS: &str = "INITBOX_COPY_SELF_LINKS";
/// File mode of the copy (octal
pub const COPY_SELF_MODE: &str = "INITBOX_COPY_SELF_MODE";
/// File name of the copy
pub const COPY_SELF_NAME: &str = "INITBOX_COPY_SELF_NAME";
/// postgres://, mysql:// (mariadb://) or sqlite: URL
pub const DATABASE_URL: &str = "INITBOX_DATABASE_URL";
/// Directory for the per-secret files (relative NAMEs)
pub const DIR: &str = "INITBOX_DIR";
/// Wait until the name no longer resolves (NXDOMAIN or NODATA)
pub const DNS_ABSENT: &str = "INITBOX_DNS_ABSENT";
/// Ready only when this value is among the answers (repeatable: all must be present)
pub const DNS_EXPECT: &str = "INITBOX_DNS_EXPECT";
/// Ready only when at least N distinct values are returned
pub const DNS_MIN_COUNT: &str = "INITBOX_DNS_MIN_COUNT";
/// DNS names to wait for
pub const DNS_NAMES: &str = "INITBOX_DNS_NAMES";
/// Query this DNS server directly (IP or IP:PORT, UDP with TCP fallback) instead of the system resolver
pub const DNS_SERVER: &str = "INITBOX_DNS_SERVER";
/// Record type to look up
pub const DNS_TYPE: &str = "INITBOX_DNS_TYPE";
/// Downward-API volume directory (labels, annotations, name, namespace
pub const DOWNWARD_API: &str = "INITBOX_DOWNWARD_API";
/// fetch-secret: put the secrets into the environment of the command after `--` instead of files
pub const EXEC: &str = "INITBOX_EXEC";
/// TLS: fail when a certificate of the chain expires within this many days
pub const FAIL_DAYS: &str = "INITBOX_FAIL_DAYS";
/// Format of the --out file
pub const FORMAT: &str = "INITBOX_FORMAT";
/// Hosts file read in system mode
pub const HOSTS_FILE: &str = "INITBOX_HOSTS_FILE";
/// The response body must contain a match of this regular expression
pub const HTTP_BODY_REGEX: &str = "INITBOX_HTTP_BODY_REGEX";
/// Request body (sent with the method given
pub const HTTP_DATA: &str = "INITBOX_HTTP_DATA";
/// Request header `Name: value`, repeatable; `Name: @PATH` reads the value from a file (a mounted Secret), `Authorization: Bearer @PATH` the token
pub const HTTP_HEADERS: &str = "INITBOX_HTTP_HEADERS";
/// The body must be JSON with this value at PATH (PATH alone: exists, not null); repeatable, all must hold
pub const HTTP_JSON: &str = "INITBOX_HTTP_JSON";
/// Request method
pub const HTTP_METHOD: &str = "INITBOX_HTTP_METHOD";
/// Do not follow redirects: a 3xx is the answer (match it with --status)
pub const HTTP_NO_REDIRECT: &str = "INITBOX_HTTP_NO_REDIRECT";
/// Accepted status codes: codes, ranges and classes, comma-separated
pub const HTTP_STATUS: &str = "INITBOX_HTTP_STATUS";
/// ICMP: echo requests per check
pub const ICMP_COUNT: &str = "INITBOX_ICMP_COUNT";
/// ICMP: delay between echo requests
pub const ICMP_INTERVAL: &str = "INITBOX_ICMP_INTERVAL";
/// ICMP: largest acceptable loss (0% = every echo must come back)
pub const ICMP_MAX_LOSS: &str = "INITBOX_ICMP_MAX_LOSS";
/// Do not verify server certificates (never the default
pub const INSECURE: &str = "INITBOX_INSECURE";
/// First delay between attempts
pub const INTERVAL: &str = "INITBOX_INTERVAL";
/// Wait until the targets are NOT ready (port closed, name gone)
pub const INVERT: &str = "INITBOX_INVERT";
/// Add up to 100% random jitter to each delay (for fleets polling one server)
pub const JITTER: &str = "INITBOX_JITTER";
/// JUnit suite name (test classes are SUITE.TYPE, test names the check names)
pub const JUNIT_SUITE: &str = "INITBOX_JUNIT_SUITE";
/// API server URL (default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)
pub const K8S_API: &str = "INITBOX_K8S_API";
/// CA bundle of the API server (default: the service account's ca.crt)
pub const K8S_CA_FILE: &str = "INITBOX_K8S_CA_FILE";
/// Namespace of ref+k8s://SECRET references without one (default: the pod's namespace)
pub const K8S_NAMESPACE: &str = "INITBOX_K8S_NAMESPACE";
/// Bearer token file (default: the pod's service-account token)
pub const K8S_TOKEN_FILE: &str = "INITBOX_K8S_TOKEN_FILE";
/// How long to wait for another migrator to finish (0 = forever)
pub const LOCK_TIMEOUT: &str = "INITBOX_LOCK_TIMEOUT";
/// A tracing filter directive that overrides -q/-v; read directly
pub const LOG: &str = "INITBOX_LOG";
/// Log line format
pub const LOG_FORMAT: &str = "INITBOX_LOG_FORMAT";
/// Largest template, data file or rendered output accepted (bytes, or 64K, 16M, 1G)
pub const MAX_INPUT_SIZE: &str = "INITBOX_MAX_INPUT_SIZE";
/// Largest delay between attempts (the steady polling rate: 100ms is 10 attempts/s)
pub const MAX_INTERVAL: &str = "INITBOX_MAX_INTERVAL";
/// Directory of migration files
pub const MIGRATIONS_DIR: &str = "INITBOX_MIGRATIONS_DIR";
/// Layout of the directory
pub const MIGRATIONS_FORMAT: &str = "INITBOX_MIGRATIONS_FORMAT";
/// Refuse versions applied in the database that have no local file
pub const MIGRATIONS_REFUSE_MISSING: &str = "INITBOX_MIGRATIONS_REFUSE_MISSING";
/// Hold the migration lock while running the command after `--` (another tool's migrate command)
pub const MIGRATIONS_WITH_LOCK: &str = "INITBOX_MIGRATIONS_WITH_LOCK";
/// Mode of written files (directories created 0700)
pub const MODE: &str = "INITBOX_MODE";
/// A notification that cannot be delivered is logged and initbox exits 0 (the default)
pub const NOTIFY_BEST_EFFORT: &str = "INITBOX_NOTIFY_BEST_EFFORT";
/// JSON body for webhook/CloudEvents targets
pub const NOTIFY_BODY: &str = "INITBOX_NOTIFY_BODY";
/// Read the JSON body template from a file
pub const NOTIFY_BODY_FILE: &str = "INITBOX_NOTIFY_BODY_FILE";
/// With --dedupe-file: the same event for the same key is not sent again within this time
pub const NOTIFY_COOLDOWN: &str = "INITBOX_NOTIFY_COOLDOWN";
/// JSON data for templates: `PATH` merges its object into `data`, `NAME=PATH` sets `data.NAME`
pub const NOTIFY_DATA: &str = "INITBOX_NOTIFY_DATA";
/// State file (on an emptyDir) so a crash-looping pod sends one message per incident and a resolve message when it later succeeds
pub const NOTIFY_DEDUPE_FILE: &str = "INITBOX_NOTIFY_DEDUPE_FILE";
/// Print the requests that would be sent (secrets masked) and send nothing
pub const NOTIFY_DRY_RUN: &str = "INITBOX_NOTIFY_DRY_RUN";
/// What this notification is about (PagerDuty: success resolves, others trigger)
pub const NOTIFY_EVENT: &str = "INITBOX_NOTIFY_EVENT";
/// Idempotency key sent with the notification (Idempotency-Key, webhook-id, CloudEvents id, Message-ID); a template
pub const NOTIFY_IDEMPOTENCY_KEY: &str = "INITBOX_NOTIFY_IDEMPOTENCY_KEY";
/// Dedupe key (a template); also PagerDuty's dedup_key
pub const NOTIFY_KEY: &str = "INITBOX_NOTIFY_KEY";
/// Attempts per delivery (default: until the time box ends)
pub const NOTIFY_MAX_ATTEMPTS: &str = "INITBOX_NOTIFY_MAX_ATTEMPTS";
/// Message (a template)
pub const NOTIFY_MESSAGE: &str = "INITBOX_NOTIFY_MESSAGE";
/// Read the message template from a file
pub const NOTIFY_MESSAGE_FILE: &str = "INITBOX_NOTIFY_MESSAGE_FILE";
/// Events to notify: start, success, failure (comma-separated)
pub const NOTIFY_ON: &str = "INITBOX_NOTIFY_ON";
/// A notification that cannot be delivered fails the step (exit 1)
pub const NOTIFY_REQUIRED: &str = "INITBOX_NOTIFY_REQUIRED";
/// Lines of the command's stderr put in the message (at most 4 KiB)
pub const NOTIFY_TAIL: &str = "INITBOX_NOTIFY_TAIL";
/// Title (a template)
pub const NOTIFY_TITLE: &str = "INITBOX_NOTIFY_TITLE";
/// Target URLs (space-separated in the variable)
pub const NOTIFY_URLS: &str = "INITBOX_NOTIFY_URLS";
/// One attempt per target, no waiting: exit 0 if ready, 1 if not (for HEALTHCHECK)
pub const ONCE: &str = "INITBOX_ONCE";
/// Write every secret to this one file in --format instead of one file each
pub const OUT: &str = "INITBOX_OUT";
/// Report format on stdout
pub const OUTPUT: &str = "INITBOX_OUTPUT";
/// Owner of written files, UID:GID (needs root or CAP_CHOWN)
pub const OWNER: &str = "INITBOX_OWNER";
/// Password for every URL that has none (after --password-file); read directly
pub const PASSWORD: &str = "INITBOX_PASSWORD";
/// Password for every URL that has none, read from this file (a mounted Secret)
pub const PASSWORD_FILE: &str = "INITBOX_PASSWORD_FILE";
/// Log a progress line per target this often while waiting
pub const PROGRESS_INTERVAL: &str = "INITBOX_PROGRESS_INTERVAL";
/// Only warnings and errors
pub const QUIET: &str = "INITBOX_QUIET";
/// envsubst: substitute only these variables (names or NAME_* prefixes, comma or space separated)
pub const RENDER_ALLOW: &str = "INITBOX_RENDER_ALLOW";
/// Validate each staged file before anything is installed: '{}' is the staged file's path (appended when absent)
pub const RENDER_CHECK_CMD: &str = "INITBOX_RENDER_CHECK_CMD";
/// Time limit for each --check-cmd run
pub const RENDER_CHECK_TIMEOUT: &str = "INITBOX_RENDER_CHECK_TIMEOUT";
/// Data file (JSON, YAML, TOML, dotenv, by extension): NAME=FILE puts it under NAME, a bare FILE merges its top-level keys
pub const RENDER_DATA: &str = "INITBOX_RENDER_DATA";
/// Jinja delimiters, e.g
pub const RENDER_DELIMITERS: &str = "INITBOX_RENDER_DELIMITERS";
/// Output file or directory (a template file into an existing directory or a path ending in '/' lands there under its name without the template suffix)
pub const RENDER_DEST: &str = "INITBOX_RENDER_DEST";
/// Template language
pub const RENDER_ENGINE: &str = "INITBOX_RENDER_ENGINE";
/// Directory mode: skip files whose path (relative to SOURCE) matches this glob (`*`, `?`, `**`); repeatable
pub const RENDER_EXCLUDE: &str = "INITBOX_RENDER_EXCLUDE";
/// List the variables each template needs and which are missing; write nothing
pub const RENDER_LINT: &str = "INITBOX_RENDER_LINT";
/// Jinja: strip spaces and tabs before a block tag
pub const RENDER_LSTRIP_BLOCKS: &str = "INITBOX_RENDER_LSTRIP_BLOCKS";
/// Mode of every written file (default: 0644, 0755 for executable templates, --secret-mode for files that contain a secret)
pub const RENDER_MODE: &str = "INITBOX_RENDER_MODE";
/// Owner of written files and created directories, UID:GID (needs root or CAP_CHOWN)
pub const RENDER_OWNER: &str = "INITBOX_RENDER_OWNER";
/// Like --data, for a file of secrets (e.g
pub const RENDER_SECRET_DATA: &str = "INITBOX_RENDER_SECRET_DATA";
/// Mode of files that contain a secret value (unless --mode is given)
pub const RENDER_SECRET_MODE: &str = "INITBOX_RENDER_SECRET_MODE";
/// A value: KEY=VALUE, dotted keys nest (db.host=x); wins over data files
pub const RENDER_SET: &str = "INITBOX_RENDER_SET";
/// Template file or directory
pub const RENDER_SOURCE: &str = "INITBOX_RENDER_SOURCE";
/// More SOURCE:DEST pairs (repeatable, or comma-separated)
pub const RENDER_TEMPLATES: &str = "INITBOX_RENDER_TEMPLATES";
/// Jinja: remove the first newline after a block tag
pub const RENDER_TRIM_BLOCKS: &str = "INITBOX_RENDER_TRIM_BLOCKS";
/// How undefined values behave in Jinja templates
pub const RENDER_UNDEFINED: &str = "INITBOX_RENDER_UNDEFINED";
/// Also re-stamp the checksums of applied migrations whose files were changed on purpose (after review) with the files' current checksums
pub const REPAIR_CHECKSUMS: &str = "INITBOX_REPAIR_CHECKSUMS";
/// Mark failed migrations as applied instead of clearing them (you completed them)
pub const REPAIR_MARK_APPLIED: &str = "INITBOX_REPAIR_MARK_APPLIED";
/// Timeout of each HTTP request
pub const REQUEST_TIMEOUT: &str = "INITBOX_REQUEST_TIMEOUT";
/// resolv.conf read in system mode (name servers, search, ndots)
pub const RESOLV_CONF: &str = "INITBOX_RESOLV_CONF";
/// Extra attempts for a failing check
pub const RETRIES: &str = "INITBOX_RETRIES";
/// First delay between attempts (doubling)
pub const RETRY_DELAY: &str = "INITBOX_RETRY_DELAY";
/// Check the steps file and every step's arguments, print the plan, run nothing
pub const RUN_CHECK: &str = "INITBOX_RUN_CHECK";
/// The steps file (YAML)
pub const RUN_FILE: &str = "INITBOX_RUN_FILE";
/// Set by run in the environment of each step's process (orphan tracking); read directly
pub const RUN_STEP: &str = "INITBOX_RUN_STEP";
/// When the run is stopped (SIGTERM/SIGINT, a step's timeout, the end of the run for background commands): time between SIGTERM to a command's process group and SIGKILL
pub const RUN_STOP_GRACE: &str = "INITBOX_RUN_STOP_GRACE";
/// Bound on the whole run (exit 124)
pub const RUN_TIMEOUT: &str = "INITBOX_RUN_TIMEOUT";
/// NAME=REF: the secret REF, written to the file NAME or set as the variable NAME
pub const SECRETS: &str = "INITBOX_SECRETS";
/// YAML, JSON or TOML file with a `secrets` map of NAME: REF
pub const SPEC: &str = "INITBOX_SPEC";
/// SQL that must return a row whose first column is not false/0/NULL (postgres://, mysql://)
pub const SQL_QUERY: &str = "INITBOX_SQL_QUERY";
/// Treat warnings as failures
pub const STRICT: &str = "INITBOX_STRICT";
/// HOST:PORT, (IPv6):PORT or tcp://HOST:PORT
pub const TCP_TARGETS: &str = "INITBOX_TCP_TARGETS";
/// Where the failure reason is also written (only if the file exists, as in a Kubernetes pod
pub const TERMINATION_LOG: &str = "INITBOX_TERMINATION_LOG";
/// Give up after this long (exit 124; 0 = no limit): bounds the whole run
pub const TIMEOUT: &str = "INITBOX_TIMEOUT";
/// Also write the Vault token of this run here (mode/owner as the secrets) for a later step
pub const TOKEN_OUT: &str = "INITBOX_TOKEN_OUT";
/// Vault address (falls back to VAULT_ADDR)
pub const VAULT_ADDR: &str = "INITBOX_VAULT_ADDR";
/// Login method
pub const VAULT_AUTH: &str = "INITBOX_VAULT_AUTH";
/// Mount path of the auth method (default: the method's name)
pub const VAULT_AUTH_MOUNT: &str = "INITBOX_VAULT_AUTH_MOUNT";
/// CA bundle (PEM) trusted for Vault in addition to the system roots (falls back to VAULT_CACERT)
pub const VAULT_CA_FILE: &str = "INITBOX_VAULT_CA_FILE";
/// Certificate role name for cert logins (default: any matching role)
pub const VAULT_CERT_ROLE: &str = "INITBOX_VAULT_CERT_ROLE";
/// Client certificate (PEM) for mutual TLS and cert logins (falls back to VAULT_CLIENT_CERT)
pub const VAULT_CLIENT_CERT: &str = "INITBOX_VAULT_CLIENT_CERT";
/// Key (PEM) of the client certificate (falls back to VAULT_CLIENT_KEY)
pub const VAULT_CLIENT_KEY: &str = "INITBOX_VAULT_CLIENT_KEY";
/// JWT file for kubernetes (default: the pod's service-account token) and jwt logins
pub const VAULT_JWT_FILE: &str = "INITBOX_VAULT_JWT_FILE";
/// Vault Enterprise / OpenBao namespace (falls back to VAULT_NAMESPACE)
pub const VAULT_NAMESPACE: &str = "INITBOX_VAULT_NAMESPACE";
/// File holding the userpass password
pub const VAULT_PASSWORD_FILE: &str = "INITBOX_VAULT_PASSWORD_FILE";
/// Role for kubernetes and jwt logins
pub const VAULT_ROLE: &str = "INITBOX_VAULT_ROLE";
/// AppRole role_id
pub const VAULT_ROLE_ID: &str = "INITBOX_VAULT_ROLE_ID";
/// File holding the AppRole role_id
pub const VAULT_ROLE_ID_FILE: &str = "INITBOX_VAULT_ROLE_ID_FILE";
/// File holding the AppRole secret_id (or, with --vault-secret-id-wrapped, a wrapping token)
pub const VAULT_SECRET_ID_FILE: &str = "INITBOX_VAULT_SECRET_ID_FILE";
/// The secret-id file holds a response-wrapping token: unwrap it first (sys/wrapping/unwrap)
pub const VAULT_SECRET_ID_WRAPPED: &str = "INITBOX_VAULT_SECRET_ID_WRAPPED";
/// Vault token (before VAULT_TOKEN); read directly
pub const VAULT_TOKEN: &str = "INITBOX_VAULT_TOKEN";
/// File holding the token (token auth
pub const VAULT_TOKEN_FILE: &str = "INITBOX_VAULT_TOKEN_FILE";
/// Userpass user name
pub const VAULT_USERNAME: &str = "INITBOX_VAULT_USERNAME";
/// More detail
pub const VERBOSE: &str = "INITBOX_VERBOSE";
/// A command that must exit 0 (same as the target `exec:CMD ARGS`)
pub const WAIT_FOR_CMD: &str = "INITBOX_WAIT_FOR_CMD";
/// Run `exec:` and --cmd commands with /bin/sh -c (shell syntax: pipes, &&, globs)
pub const WAIT_FOR_SHELL: &str = "INITBOX_WAIT_FOR_SHELL";
/// Targets (see the schemes above); `@PATH` reads a URL from a file
pub const WAIT_FOR_TARGETS: &str = "INITBOX_WAIT_FOR_TARGETS";
/// TLS: warn when a certificate of the chain expires within this many days
pub const WARN_DAYS: &str = "INITBOX_WARN_DAYS";
/// Keep checking every INTERVAL and log every change (for a native sidecar)
pub const WATCH: &str = "INITBOX_WATCH";

/// Every variable of the vocabulary, with its one meaning.
// Added with the restore, backup, schedule, Kubernetes, template and migration flags.
pub const KUBECONFIG: &str = "INITBOX_KUBECONFIG";
pub const K8S_CONTEXT: &str = "INITBOX_K8S_CONTEXT";
pub const PRINT_RBAC: &str = "INITBOX_PRINT_RBAC";
pub const CREATE_DATABASE: &str = "INITBOX_CREATE_DATABASE";
pub const DOWN_TO: &str = "INITBOX_DOWN_TO";
pub const RENDER_ONLY_DEFINED: &str = "INITBOX_RENDER_ONLY_DEFINED";
pub const RENDER_YAML_VERSION: &str = "INITBOX_RENDER_YAML_VERSION";
pub const RENDER_GO_DIALECT: &str = "INITBOX_RENDER_GO_DIALECT";
pub const PRINT_SPEC: &str = "INITBOX_PRINT_SPEC";
pub const RESTORE_FROM: &str = "INITBOX_RESTORE_FROM";
pub const RESTORE_TO: &str = "INITBOX_RESTORE_TO";
pub const RESTORE_IF: &str = "INITBOX_RESTORE_IF";
pub const RESTORE_FOREIGN: &str = "INITBOX_RESTORE_FOREIGN";
pub const RESTORE_VERSION_ID: &str = "INITBOX_RESTORE_VERSION_ID";
pub const RESTORE_BEFORE: &str = "INITBOX_RESTORE_BEFORE";
pub const RESTORE_ALLOW_NO_BACKUP: &str = "INITBOX_RESTORE_ALLOW_NO_BACKUP";
pub const STALL_TIMEOUT: &str = "INITBOX_STALL_TIMEOUT";
pub const S3_ENDPOINT: &str = "INITBOX_S3_ENDPOINT";
pub const S3_URL_STYLE: &str = "INITBOX_S3_URL_STYLE";
pub const S3_SSE: &str = "INITBOX_S3_SSE";
pub const S3_SSE_KMS_KEY_ID: &str = "INITBOX_S3_SSE_KMS_KEY_ID";
pub const S3_SSE_C_KEY_FILE: &str = "INITBOX_S3_SSE_C_KEY_FILE";
pub const BACKUP_FROM: &str = "INITBOX_BACKUP_FROM";
pub const BACKUP_TO: &str = "INITBOX_BACKUP_TO";
pub const BACKUP_PRE: &str = "INITBOX_BACKUP_PRE";
pub const BACKUP_PRE_TIMEOUT: &str = "INITBOX_BACKUP_PRE_TIMEOUT";
pub const BACKUP_COMPRESSION: &str = "INITBOX_BACKUP_COMPRESSION";
pub const KEEP_LAST: &str = "INITBOX_KEEP_LAST";
pub const KEEP_HOURLY: &str = "INITBOX_KEEP_HOURLY";
pub const KEEP_DAILY: &str = "INITBOX_KEEP_DAILY";
pub const KEEP_WEEKLY: &str = "INITBOX_KEEP_WEEKLY";
pub const KEEP_MONTHLY: &str = "INITBOX_KEEP_MONTHLY";
pub const KEEP_YEARLY: &str = "INITBOX_KEEP_YEARLY";
pub const BACKUP_LEASE: &str = "INITBOX_BACKUP_LEASE";
pub const SCHEDULE_AT: &str = "INITBOX_SCHEDULE_AT";
pub const SCHEDULE_CRON: &str = "INITBOX_SCHEDULE_CRON";
pub const SCHEDULE_EVERY: &str = "INITBOX_SCHEDULE_EVERY";
pub const SCHEDULE_TZ: &str = "INITBOX_SCHEDULE_TZ";
pub const SCHEDULE_FILE: &str = "INITBOX_SCHEDULE_FILE";
pub const SCHEDULE_CRONTAB: &str = "INITBOX_SCHEDULE_CRONTAB";
pub const SCHEDULE_NAME: &str = "INITBOX_SCHEDULE_NAME";
pub const SCHEDULE_JOB_TIMEOUT: &str = "INITBOX_SCHEDULE_JOB_TIMEOUT";
pub const SCHEDULE_CONCURRENCY_POLICY: &str = "INITBOX_SCHEDULE_CONCURRENCY_POLICY";
pub const SCHEDULE_RANDOM_DELAY: &str = "INITBOX_SCHEDULE_RANDOM_DELAY";
pub const SCHEDULE_RUN_ON_START: &str = "INITBOX_SCHEDULE_RUN_ON_START";
pub const SCHEDULE_RETRIES: &str = "INITBOX_SCHEDULE_RETRIES";
pub const SCHEDULE_RETRY_DELAY: &str = "INITBOX_SCHEDULE_RETRY_DELAY";
pub const SCHEDULE_CATCH_UP: &str = "INITBOX_SCHEDULE_CATCH_UP";
pub const SCHEDULE_MAX_LATE: &str = "INITBOX_SCHEDULE_MAX_LATE";
pub const SCHEDULE_STATE_FILE: &str = "INITBOX_SCHEDULE_STATE_FILE";
pub const SCHEDULE_STOP_GRACE: &str = "INITBOX_SCHEDULE_STOP_GRACE";
pub const SCHEDULE_HEARTBEAT_FILE: &str = "INITBOX_SCHEDULE_HEARTBEAT_FILE";
pub const SCHEDULE_HEARTBEAT_INTERVAL: &str = "INITBOX_SCHEDULE_HEARTBEAT_INTERVAL";
pub const SCHEDULE_HEALTHZ: &str = "INITBOX_SCHEDULE_HEALTHZ";
pub const SCHEDULE_UNHEALTHY_AFTER: &str = "INITBOX_SCHEDULE_UNHEALTHY_AFTER";
pub const SCHEDULE_MAX_SUCCESS_AGE: &str = "INITBOX_SCHEDULE_MAX_SUCCESS_AGE";
pub const SCHEDULE_EXIT_ON_FAILURES: &str = "INITBOX_SCHEDULE_EXIT_ON_FAILURES";
pub const SCHEDULE_CLOCK_START: &str = "INITBOX_SCHEDULE_CLOCK_START";
pub const SCHEDULE_TIMES: &str = "INITBOX_SCHEDULE_TIMES";
pub const SCHEDULE_FROM: &str = "INITBOX_SCHEDULE_FROM";

pub const RESTORE_CHECK: &str = "INITBOX_RESTORE_CHECK";
pub const RESTORE_CHECK_OUTPUT: &str = "INITBOX_RESTORE_CHECK_OUTPUT";
pub const RESTORE_CHECK_TIMEOUT: &str = "INITBOX_RESTORE_CHECK_TIMEOUT";

pub const RESTORE_OWNER: &str = "INITBOX_RESTORE_OWNER";
pub const RESTORE_CHMOD: &str = "INITBOX_RESTORE_CHMOD";
/// The volume to prepare (created when missing); nothing outside it is changed
pub const PREPARE_VOLUME_DIR: &str = "INITBOX_PREPARE_VOLUME_DIR";
/// Owner of DIR and everything in it, UID:GID, changed only where it differs (needs root or CAP_CHOWN)
pub const PREPARE_VOLUME_OWNER: &str = "INITBOX_PREPARE_VOLUME_OWNER";
/// Modes of DIR and everything in it (links excepted): octal or chmod's symbolic form, D/F for directories/files only, e.g. D0750,F0640 or u=rwX,go=rX
pub const PREPARE_VOLUME_CHMOD: &str = "INITBOX_PREPARE_VOLUME_CHMOD";
/// Kubernetes' fsGroup, as the kubelet applies it: group GID, group rw on files, rwx and set-group-ID on directories
pub const PREPARE_VOLUME_FS_GROUP: &str = "INITBOX_PREPARE_VOLUME_FS_GROUP";
/// Skip the walk when DIR itself already has the wanted owner and mode (fsGroupChangePolicy: OnRootMismatch)
pub const PREPARE_VOLUME_ON_ROOT_MISMATCH: &str = "INITBOX_PREPARE_VOLUME_ON_ROOT_MISMATCH";
/// Leave entries with this name alone, at any depth, and do not enter them, e.g. lost+found or .snapshot (repeatable; comma-separated in the variable)
pub const PREPARE_VOLUME_SKIP: &str = "INITBOX_PREPARE_VOLUME_SKIP";
/// Directory to create inside DIR, relative to it (repeatable; comma-separated in the variable)
pub const PREPARE_VOLUME_MKDIR: &str = "INITBOX_PREPARE_VOLUME_MKDIR";
/// Copy a file, or a directory's content (a ConfigMap or Secret mount), to DEST inside DIR (repeatable; comma-separated in the variable)
pub const PREPARE_VOLUME_COPY: &str = "INITBOX_PREPARE_VOLUME_COPY";
/// Copy only files that are not in DIR yet (what the application changed is kept)
pub const PREPARE_VOLUME_IF_MISSING: &str = "INITBOX_PREPARE_VOLUME_IF_MISSING";
/// Copy only files whose content, mode or owner differ (the others are not rewritten)
pub const PREPARE_VOLUME_IF_CHANGED: &str = "INITBOX_PREPARE_VOLUME_IF_CHANGED";
/// Make each directory copy a mirror: delete what its source does not have from its DEST, never following a link or leaving the volume
pub const PREPARE_VOLUME_DELETE: &str = "INITBOX_PREPARE_VOLUME_DELETE";
/// Change nothing: count what would be created, copied and changed; exit 1 if anything would
pub const PREPARE_VOLUME_CHECK: &str = "INITBOX_PREPARE_VOLUME_CHECK";
pub const DOWNLOAD_URL: &str = "INITBOX_DOWNLOAD_URL";
pub const DOWNLOAD_TO: &str = "INITBOX_DOWNLOAD_TO";
pub const DOWNLOAD_SHA256: &str = "INITBOX_DOWNLOAD_SHA256";
pub const DOWNLOAD_SHA256SUMS: &str = "INITBOX_DOWNLOAD_SHA256SUMS";
pub const DOWNLOAD_MINISIGN_KEY: &str = "INITBOX_DOWNLOAD_MINISIGN_KEY";
pub const DOWNLOAD_SIGNATURE: &str = "INITBOX_DOWNLOAD_SIGNATURE";
pub const DOWNLOAD_UNPACK: &str = "INITBOX_DOWNLOAD_UNPACK";
pub const DOWNLOAD_MODE: &str = "INITBOX_DOWNLOAD_MODE";
pub const DOWNLOAD_OWNER: &str = "INITBOX_DOWNLOAD_OWNER";
pub const DOWNLOAD_CHMOD: &str = "INITBOX_DOWNLOAD_CHMOD";
pub const DOWNLOAD_RETRIES: &str = "INITBOX_DOWNLOAD_RETRIES";
pub const DOWNLOAD_STRIP_COMPONENTS: &str = "INITBOX_DOWNLOAD_STRIP_COMPONENTS";

pub const GIT_URL: &str = "INITBOX_GIT_URL";
pub const GIT_TO: &str = "INITBOX_GIT_TO";
pub const GIT_REF: &str = "INITBOX_GIT_REF";
pub const GIT_COMMIT: &str = "INITBOX_GIT_COMMIT";
pub const GIT_DEPTH: &str = "INITBOX_GIT_DEPTH";
pub const GIT_TOKEN_FILE: &str = "INITBOX_GIT_TOKEN_FILE";
pub const GIT_USERNAME: &str = "INITBOX_GIT_USERNAME";
// net-setup.
pub const NET_SETUP_FILE: &str = "INITBOX_NET_SETUP_FILE";
pub const NET_SETUP_REDIRECT_OUTBOUND: &str = "INITBOX_NET_SETUP_REDIRECT_OUTBOUND";
pub const NET_SETUP_EXCLUDE_UIDS: &str = "INITBOX_NET_SETUP_EXCLUDE_UIDS";
pub const NET_SETUP_EXCLUDE_GIDS: &str = "INITBOX_NET_SETUP_EXCLUDE_GIDS";
pub const NET_SETUP_EXCLUDE_OUTBOUND_PORTS: &str = "INITBOX_NET_SETUP_EXCLUDE_OUTBOUND_PORTS";
pub const NET_SETUP_EXCLUDE_OUTBOUND_CIDRS: &str = "INITBOX_NET_SETUP_EXCLUDE_OUTBOUND_CIDRS";
pub const NET_SETUP_REDIRECT_UDP: &str = "INITBOX_NET_SETUP_REDIRECT_UDP";
pub const NET_SETUP_REDIRECT_INBOUND: &str = "INITBOX_NET_SETUP_REDIRECT_INBOUND";
pub const NET_SETUP_INBOUND_PORTS: &str = "INITBOX_NET_SETUP_INBOUND_PORTS";
pub const NET_SETUP_EXCLUDE_INBOUND_PORTS: &str = "INITBOX_NET_SETUP_EXCLUDE_INBOUND_PORTS";
pub const NET_SETUP_ALLOW_DESTINATIONS: &str = "INITBOX_NET_SETUP_ALLOW_DESTINATIONS";
pub const NET_SETUP_DENY_DESTINATIONS: &str = "INITBOX_NET_SETUP_DENY_DESTINATIONS";
pub const NET_SETUP_SYSCTLS: &str = "INITBOX_NET_SETUP_SYSCTLS";
pub const NET_SETUP_NODE_SYSCTLS: &str = "INITBOX_NET_SETUP_NODE_SYSCTLS";
pub const NET_SETUP_TABLE: &str = "INITBOX_NET_SETUP_TABLE";
pub const NET_SETUP_DRY_RUN: &str = "INITBOX_NET_SETUP_DRY_RUN";
pub const NET_SETUP_CHECK: &str = "INITBOX_NET_SETUP_CHECK";
pub const NET_SETUP_CLEANUP: &str = "INITBOX_NET_SETUP_CLEANUP";

pub const VOCABULARY: &[Var] = &[
    Var {
        name: GIT_URL,
        flag: "",
        meaning: "Repository URL: https://, http:// or git://",
        read_directly: false,
    },
    Var {
        name: GIT_TO,
        flag: "--to",
        meaning: "Directory to check out into (created when missing; may be a mount point)",
        read_directly: false,
    },
    Var {
        name: GIT_REF,
        flag: "--ref",
        meaning: "Branch, tag, full ref (refs/...) or commit id; default: the remote's default branch",
        read_directly: false,
    },
    Var {
        name: GIT_COMMIT,
        flag: "--commit",
        meaning: "The commit (40 hex digits) that must be checked out: REF must point at it, or without --ref it is fetched by id",
        read_directly: false,
    },
    Var {
        name: GIT_DEPTH,
        flag: "--depth",
        meaning: "Commits of history to fetch (1: the commit alone; 0: all history)",
        read_directly: false,
    },
    Var {
        name: GIT_TOKEN_FILE,
        flag: "--token-file",
        meaning: "File holding the token (or password) sent with --username over https; never logged",
        read_directly: false,
    },
    Var {
        name: GIT_USERNAME,
        flag: "--username",
        meaning: "User name sent with the token (GitHub: x-access-token; GitLab: oauth2 or the deploy token's name)",
        read_directly: false,
    },
    Var {
        name: ALL,
        flag: "--all",
        meaning: "Succeed when every target is ready (the default)",
        read_directly: false,
    },
    Var {
        name: ALLOW_OUT_OF_ORDER,
        flag: "--allow-out-of-order",
        meaning: "Apply new migrations whose version is lower than the newest applied one (refused by default: they were likely merged late and never tested in this order)",
        read_directly: false,
    },
    Var {
        name: ANY,
        flag: "--any",
        meaning: "Succeed as soon as one target is ready",
        read_directly: false,
    },
    Var {
        name: ATTEMPT_TIMEOUT,
        flag: "--attempt-timeout",
        meaning: "Bound on one attempt (connect, handshake, query, request)",
        read_directly: false,
    },
    Var {
        name: AWS_CA_FILE,
        flag: "--aws-ca-file",
        meaning: "CA bundle (PEM) trusted for AWS endpoints in addition to the system roots (falls back to AWS_CA_BUNDLE)",
        read_directly: false,
    },
    Var {
        name: AWS_ENDPOINT,
        flag: "--aws-endpoint",
        meaning: "Endpoint URL for every AWS service used (falls back to AWS_ENDPOINT_URL), e.g",
        read_directly: false,
    },
    Var {
        name: AWS_PROFILE,
        flag: "--aws-profile",
        meaning: "Profile of the shared config/credentials files (falls back to AWS_PROFILE, then \"default\")",
        read_directly: false,
    },
    Var {
        name: AWS_REGION,
        flag: "--aws-region",
        meaning: "Region (falls back to AWS_REGION, AWS_DEFAULT_REGION, the profile's region)",
        read_directly: false,
    },
    Var {
        name: BACKOFF_FACTOR,
        flag: "--backoff-factor",
        meaning: "Growth of the delay after each failed attempt",
        read_directly: false,
    },
    Var {
        name: CA_FILE,
        flag: "--ca-file",
        meaning: "Extra CA certificates (PEM) trusted in addition to the system roots",
        read_directly: false,
    },
    Var {
        name: CHECK,
        flag: "--check",
        meaning: "Resolve and check every reference, print the names, write and run nothing",
        read_directly: false,
    },
    Var {
        name: CHECKS,
        flag: "",
        meaning: "Checks: dns:NAME, tcp:HOST:PORT, tls:HOST[:PORT], icmp:HOST, udp:HOST:PORT, http(s)://URL, each optionally followed by ,key=value options",
        read_directly: false,
    },
    Var {
        name: CHECKS_FILE,
        flag: "--file",
        meaning: "YAML spec file with `defaults` and `checks` (see the README for the keys)",
        read_directly: false,
    },
    Var {
        name: CLIENT_CERT,
        flag: "--client-cert",
        meaning: "Client certificate chain (PEM) for mutual TLS",
        read_directly: false,
    },
    Var {
        name: CLIENT_KEY,
        flag: "--client-key",
        meaning: "Private key (PEM) of the client certificate",
        read_directly: false,
    },
    Var {
        name: CONCURRENCY,
        flag: "--concurrency",
        meaning: "Most checks running at the same time",
        read_directly: false,
    },
    Var {
        name: COPY_SELF_ALLOW_SETID,
        flag: "--allow-setid",
        meaning: "Allow a set-user-ID or set-group-ID --mode (e.g",
        read_directly: false,
    },
    Var {
        name: COPY_SELF_DIR,
        flag: "",
        meaning: "Directory to copy into (created with mode 0755 if missing)",
        read_directly: false,
    },
    Var {
        name: COPY_SELF_LINKS,
        flag: "--links",
        meaning: "Also create one relative symlink per applet next to the copy",
        read_directly: false,
    },
    Var {
        name: COPY_SELF_MODE,
        flag: "--mode",
        meaning: "File mode of the copy (octal",
        read_directly: false,
    },
    Var {
        name: COPY_SELF_NAME,
        flag: "--name",
        meaning: "File name of the copy",
        read_directly: false,
    },
    Var {
        name: DATABASE_URL,
        flag: "--database-url",
        meaning: "postgres://, mysql:// (mariadb://) or sqlite: URL",
        read_directly: false,
    },
    Var {
        name: DIR,
        flag: "--dir",
        meaning: "Directory for the per-secret files (relative NAMEs)",
        read_directly: false,
    },
    Var {
        name: DNS_ABSENT,
        flag: "--absent",
        meaning: "Wait until the name no longer resolves (NXDOMAIN or NODATA)",
        read_directly: false,
    },
    Var {
        name: DNS_EXPECT,
        flag: "--expect",
        meaning: "Ready only when this value is among the answers (repeatable: all must be present)",
        read_directly: false,
    },
    Var {
        name: DNS_MIN_COUNT,
        flag: "--min-count",
        meaning: "Ready only when at least N distinct values are returned",
        read_directly: false,
    },
    Var {
        name: DNS_NAMES,
        flag: "",
        meaning: "DNS names to wait for",
        read_directly: false,
    },
    Var {
        name: DNS_SERVER,
        flag: "--server",
        meaning: "Query this DNS server directly (IP or IP:PORT, UDP with TCP fallback) instead of the system resolver",
        read_directly: false,
    },
    Var {
        name: DNS_TYPE,
        flag: "--type",
        meaning: "Record type to look up",
        read_directly: false,
    },
    Var {
        name: DOWNWARD_API,
        flag: "--downward-api",
        meaning: "Downward-API volume directory (labels, annotations, name, namespace",
        read_directly: false,
    },
    Var {
        name: EXEC,
        flag: "--exec",
        meaning: "fetch-secret: put the secrets into the environment of the command after `--` instead of files",
        read_directly: false,
    },
    Var {
        name: FAIL_DAYS,
        flag: "--fail-days",
        meaning: "TLS: fail when a certificate of the chain expires within this many days",
        read_directly: false,
    },
    Var {
        name: FORMAT,
        flag: "--format",
        meaning: "Format of the --out file",
        read_directly: false,
    },
    Var {
        name: HOSTS_FILE,
        flag: "--hosts-file",
        meaning: "Hosts file read in system mode",
        read_directly: false,
    },
    Var {
        name: HTTP_BODY_REGEX,
        flag: "--body-regex",
        meaning: "The response body must contain a match of this regular expression",
        read_directly: false,
    },
    Var {
        name: HTTP_DATA,
        flag: "--data",
        meaning: "Request body (sent with the method given",
        read_directly: false,
    },
    Var {
        name: HTTP_HEADERS,
        flag: "--header",
        meaning: "Request header `Name: value`, repeatable; `Name: @PATH` reads the value from a file (a mounted Secret), `Authorization: Bearer @PATH` the token",
        read_directly: false,
    },
    Var {
        name: HTTP_JSON,
        flag: "--json",
        meaning: "The body must be JSON with this value at PATH (PATH alone: exists, not null); repeatable, all must hold",
        read_directly: false,
    },
    Var {
        name: HTTP_METHOD,
        flag: "--method",
        meaning: "Request method",
        read_directly: false,
    },
    Var {
        name: HTTP_NO_REDIRECT,
        flag: "--no-redirect",
        meaning: "Do not follow redirects: a 3xx is the answer (match it with --status)",
        read_directly: false,
    },
    Var {
        name: HTTP_STATUS,
        flag: "--status",
        meaning: "Accepted status codes: codes, ranges and classes, comma-separated",
        read_directly: false,
    },
    Var {
        name: ICMP_COUNT,
        flag: "--count",
        meaning: "ICMP: echo requests per check",
        read_directly: false,
    },
    Var {
        name: ICMP_INTERVAL,
        flag: "--icmp-interval",
        meaning: "ICMP: delay between echo requests",
        read_directly: false,
    },
    Var {
        name: ICMP_MAX_LOSS,
        flag: "--max-loss",
        meaning: "ICMP: largest acceptable loss (0% = every echo must come back)",
        read_directly: false,
    },
    Var {
        name: INSECURE,
        flag: "--insecure",
        meaning: "Do not verify server certificates (never the default",
        read_directly: false,
    },
    Var {
        name: INTERVAL,
        flag: "--interval",
        meaning: "First delay between attempts",
        read_directly: false,
    },
    Var {
        name: INVERT,
        flag: "--invert",
        meaning: "Wait until the targets are NOT ready (port closed, name gone)",
        read_directly: false,
    },
    Var {
        name: JITTER,
        flag: "--jitter",
        meaning: "Add up to 100% random jitter to each delay (for fleets polling one server)",
        read_directly: false,
    },
    Var {
        name: JUNIT_SUITE,
        flag: "--suite",
        meaning: "JUnit suite name (test classes are SUITE.TYPE, test names the check names)",
        read_directly: false,
    },
    Var {
        name: K8S_API,
        flag: "--k8s-api",
        meaning: "API server URL (default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)",
        read_directly: false,
    },
    Var {
        name: K8S_CA_FILE,
        flag: "--k8s-ca-file",
        meaning: "CA bundle of the API server (default: the service account's ca.crt)",
        read_directly: false,
    },
    Var {
        name: K8S_NAMESPACE,
        flag: "--k8s-namespace",
        meaning: "Kubernetes namespace of what names none (k8s:// targets, ref+k8s:// references; default: the pod's own)",
        read_directly: false,
    },
    Var {
        name: K8S_TOKEN_FILE,
        flag: "--k8s-token-file",
        meaning: "Bearer token file (default: the pod's service-account token)",
        read_directly: false,
    },
    Var {
        name: LOCK_TIMEOUT,
        flag: "--lock-timeout",
        meaning: "How long to wait for another migrator to finish (0 = forever)",
        read_directly: false,
    },
    Var {
        name: LOG,
        flag: "",
        meaning: "A tracing filter directive that overrides -q/-v; read directly",
        read_directly: true,
    },
    Var {
        name: LOG_FORMAT,
        flag: "--log-format",
        meaning: "Log line format",
        read_directly: false,
    },
    Var {
        name: MAX_INPUT_SIZE,
        flag: "--max-input-size",
        meaning: "Largest template, data file or rendered output accepted (bytes, or 64K, 16M, 1G)",
        read_directly: false,
    },
    Var {
        name: MAX_INTERVAL,
        flag: "--max-interval",
        meaning: "Largest delay between attempts (the steady polling rate: 100ms is 10 attempts/s)",
        read_directly: false,
    },
    Var {
        name: MIGRATIONS_DIR,
        flag: "--dir",
        meaning: "Directory of migration files",
        read_directly: false,
    },
    Var {
        name: MIGRATIONS_FORMAT,
        flag: "--format",
        meaning: "Layout of the directory",
        read_directly: false,
    },
    Var {
        name: MIGRATIONS_REFUSE_MISSING,
        flag: "--refuse-missing",
        meaning: "Refuse versions applied in the database that have no local file",
        read_directly: false,
    },
    Var {
        name: MIGRATIONS_WITH_LOCK,
        flag: "--with-lock",
        meaning: "Hold the migration lock while running the command after `--` (another tool's migrate command)",
        read_directly: false,
    },
    Var {
        name: MODE,
        flag: "--mode",
        meaning: "Mode of written files (directories created 0700)",
        read_directly: false,
    },
    Var {
        name: NOTIFY_BEST_EFFORT,
        flag: "--best-effort",
        meaning: "A notification that cannot be delivered is logged and initbox exits 0 (the default)",
        read_directly: false,
    },
    Var {
        name: NOTIFY_BODY,
        flag: "--body",
        meaning: "JSON body for webhook/CloudEvents targets",
        read_directly: false,
    },
    Var {
        name: NOTIFY_BODY_FILE,
        flag: "--body-file",
        meaning: "Read the JSON body template from a file",
        read_directly: false,
    },
    Var {
        name: NOTIFY_COOLDOWN,
        flag: "--cooldown",
        meaning: "With --dedupe-file: the same event for the same key is not sent again within this time",
        read_directly: false,
    },
    Var {
        name: NOTIFY_DATA,
        flag: "--data",
        meaning: "JSON data for templates: `PATH` merges its object into `data`, `NAME=PATH` sets `data.NAME`",
        read_directly: false,
    },
    Var {
        name: NOTIFY_DEDUPE_FILE,
        flag: "--dedupe-file",
        meaning: "State file (on an emptyDir) so a crash-looping pod sends one message per incident and a resolve message when it later succeeds",
        read_directly: false,
    },
    Var {
        name: NOTIFY_DRY_RUN,
        flag: "--dry-run",
        meaning: "Print the requests that would be sent (secrets masked) and send nothing",
        read_directly: false,
    },
    Var {
        name: NOTIFY_EVENT,
        flag: "--event",
        meaning: "What this notification is about (PagerDuty: success resolves, others trigger)",
        read_directly: false,
    },
    Var {
        name: NOTIFY_IDEMPOTENCY_KEY,
        flag: "--idempotency-key",
        meaning: "Idempotency key sent with the notification (Idempotency-Key, webhook-id, CloudEvents id, Message-ID); a template",
        read_directly: false,
    },
    Var {
        name: NOTIFY_KEY,
        flag: "--key",
        meaning: "Dedupe key (a template); also PagerDuty's dedup_key",
        read_directly: false,
    },
    Var {
        name: NOTIFY_MAX_ATTEMPTS,
        flag: "--max-attempts",
        meaning: "Attempts per delivery (default: until the time box ends)",
        read_directly: false,
    },
    Var {
        name: NOTIFY_MESSAGE,
        flag: "--message",
        meaning: "Message (a template)",
        read_directly: false,
    },
    Var {
        name: NOTIFY_MESSAGE_FILE,
        flag: "--message-file",
        meaning: "Read the message template from a file",
        read_directly: false,
    },
    Var {
        name: NOTIFY_ON,
        flag: "--on",
        meaning: "Events to notify: start, success, failure (comma-separated)",
        read_directly: false,
    },
    Var {
        name: NOTIFY_REQUIRED,
        flag: "--required",
        meaning: "A notification that cannot be delivered fails the step (exit 1)",
        read_directly: false,
    },
    Var {
        name: NOTIFY_TAIL,
        flag: "--tail",
        meaning: "Lines of the command's stderr put in the message (at most 4 KiB)",
        read_directly: false,
    },
    Var {
        name: NOTIFY_TITLE,
        flag: "--title",
        meaning: "Title (a template)",
        read_directly: false,
    },
    Var {
        name: NOTIFY_URLS,
        flag: "",
        meaning: "Target URLs (space-separated in the variable)",
        read_directly: false,
    },
    Var {
        name: ONCE,
        flag: "--once",
        meaning: "One attempt per target, no waiting: exit 0 if ready, 1 if not (for HEALTHCHECK)",
        read_directly: false,
    },
    Var {
        name: OUT,
        flag: "--out",
        meaning: "Write every secret to this one file in --format instead of one file each",
        read_directly: false,
    },
    Var {
        name: OUTPUT,
        flag: "--output",
        meaning: "Report format on stdout",
        read_directly: false,
    },
    Var {
        name: OWNER,
        flag: "--owner",
        meaning: "Owner of written files, UID:GID (needs root or CAP_CHOWN)",
        read_directly: false,
    },
    Var {
        name: PASSWORD,
        flag: "",
        meaning: "Password for every URL that has none (after --password-file); read directly",
        read_directly: true,
    },
    Var {
        name: PASSWORD_FILE,
        flag: "--password-file",
        meaning: "Password for every URL that has none, read from this file (a mounted Secret)",
        read_directly: false,
    },
    Var {
        name: PROGRESS_INTERVAL,
        flag: "--progress-interval",
        meaning: "Log a progress line per target this often while waiting",
        read_directly: false,
    },
    Var {
        name: QUIET,
        flag: "--quiet",
        meaning: "Only warnings and errors",
        read_directly: false,
    },
    Var {
        name: RENDER_ALLOW,
        flag: "--allow",
        meaning: "envsubst: substitute only these variables (names or NAME_* prefixes, comma or space separated)",
        read_directly: false,
    },
    Var {
        name: RENDER_CHECK_CMD,
        flag: "--check-cmd",
        meaning: "Validate each staged file before anything is installed: '{}' is the staged file's path (appended when absent)",
        read_directly: false,
    },
    Var {
        name: RENDER_CHECK_TIMEOUT,
        flag: "--check-timeout",
        meaning: "Time limit for each --check-cmd run",
        read_directly: false,
    },
    Var {
        name: RENDER_DATA,
        flag: "--data",
        meaning: "Data file (JSON, YAML, TOML, dotenv, by extension): NAME=FILE puts it under NAME, a bare FILE merges its top-level keys",
        read_directly: false,
    },
    Var {
        name: RENDER_DELIMITERS,
        flag: "--delimiters",
        meaning: "Jinja delimiters, e.g",
        read_directly: false,
    },
    Var {
        name: RENDER_DEST,
        flag: "",
        meaning: "Output file or directory (a template file into an existing directory or a path ending in '/' lands there under its name without the template suffix)",
        read_directly: false,
    },
    Var {
        name: RENDER_ENGINE,
        flag: "--engine",
        meaning: "Template language",
        read_directly: false,
    },
    Var {
        name: RENDER_EXCLUDE,
        flag: "--exclude",
        meaning: "Directory mode: skip files whose path (relative to SOURCE) matches this glob (`*`, `?`, `**`); repeatable",
        read_directly: false,
    },
    Var {
        name: RENDER_LINT,
        flag: "--lint",
        meaning: "List the variables each template needs and which are missing; write nothing",
        read_directly: false,
    },
    Var {
        name: RENDER_LSTRIP_BLOCKS,
        flag: "--lstrip-blocks",
        meaning: "Jinja: strip spaces and tabs before a block tag",
        read_directly: false,
    },
    Var {
        name: RENDER_MODE,
        flag: "--mode",
        meaning: "Mode of every written file [default: 0644, 0755 for executable templates, --secret-mode for files that contain a secret]",
        read_directly: false,
    },
    Var {
        name: RENDER_OWNER,
        flag: "--owner",
        meaning: "Owner of written files and created directories, UID:GID (needs root or CAP_CHOWN)",
        read_directly: false,
    },
    Var {
        name: RENDER_SECRET_DATA,
        flag: "--secret-data",
        meaning: "Like --data, for a file of secrets (e.g",
        read_directly: false,
    },
    Var {
        name: RENDER_SECRET_MODE,
        flag: "--secret-mode",
        meaning: "Mode of files that contain a secret value (unless --mode is given)",
        read_directly: false,
    },
    Var {
        name: RENDER_SET,
        flag: "--set",
        meaning: "A value: KEY=VALUE, dotted keys nest (db.host=x); wins over data files",
        read_directly: false,
    },
    Var {
        name: RENDER_SOURCE,
        flag: "",
        meaning: "Template file or directory",
        read_directly: false,
    },
    Var {
        name: RENDER_TEMPLATES,
        flag: "--template",
        meaning: "More SOURCE:DEST pairs (repeatable, or comma-separated)",
        read_directly: false,
    },
    Var {
        name: RENDER_TRIM_BLOCKS,
        flag: "--trim-blocks",
        meaning: "Jinja: remove the first newline after a block tag",
        read_directly: false,
    },
    Var {
        name: RENDER_UNDEFINED,
        flag: "--undefined",
        meaning: "How undefined values behave in Jinja templates",
        read_directly: false,
    },
    Var {
        name: REPAIR_CHECKSUMS,
        flag: "--checksums",
        meaning: "Also re-stamp the checksums of applied migrations whose files were changed on purpose (after review) with the files' current checksums",
        read_directly: false,
    },
    Var {
        name: REPAIR_MARK_APPLIED,
        flag: "--mark-applied",
        meaning: "Mark failed migrations as applied instead of clearing them (you completed them)",
        read_directly: false,
    },
    Var {
        name: REQUEST_TIMEOUT,
        flag: "--request-timeout",
        meaning: "Timeout of each HTTP request",
        read_directly: false,
    },
    Var {
        name: RESOLV_CONF,
        flag: "--resolv-conf",
        meaning: "resolv.conf read in system mode (name servers, search, ndots)",
        read_directly: false,
    },
    Var {
        name: RETRIES,
        flag: "--retries",
        meaning: "Extra attempts for a failing check",
        read_directly: false,
    },
    Var {
        name: RETRY_DELAY,
        flag: "--retry-delay",
        meaning: "First delay between attempts (doubling)",
        read_directly: false,
    },
    Var {
        name: RUN_CHECK,
        flag: "--check",
        meaning: "Check the steps file and every step's arguments, print the plan, run nothing",
        read_directly: false,
    },
    Var {
        name: RUN_FILE,
        flag: "--file",
        meaning: "The steps file (YAML)",
        read_directly: false,
    },
    Var {
        name: RUN_STEP,
        flag: "",
        meaning: "Set by run in the environment of each step's process (orphan tracking); read directly",
        read_directly: true,
    },
    Var {
        name: RUN_STOP_GRACE,
        flag: "--stop-grace",
        meaning: "When the run is stopped (SIGTERM/SIGINT, a step's timeout, the end of the run for background commands): time between SIGTERM to a command's process group and SIGKILL",
        read_directly: false,
    },
    Var {
        name: RUN_TIMEOUT,
        flag: "--timeout",
        meaning: "Bound on the whole run (exit 124)",
        read_directly: false,
    },
    Var {
        name: SECRETS,
        flag: "",
        meaning: "NAME=REF: the secret REF, written to the file NAME or set as the variable NAME",
        read_directly: false,
    },
    Var {
        name: SPEC,
        flag: "--spec",
        meaning: "YAML, JSON or TOML file with a `secrets` map of NAME: REF",
        read_directly: false,
    },
    Var {
        name: SQL_QUERY,
        flag: "--query",
        meaning: "SQL that must return a row whose first column is not false/0/NULL (postgres://, mysql://)",
        read_directly: false,
    },
    Var {
        name: STRICT,
        flag: "--strict",
        meaning: "Treat warnings as failures",
        read_directly: false,
    },
    Var {
        name: TCP_TARGETS,
        flag: "",
        meaning: "HOST:PORT, [IPv6]:PORT or tcp://HOST:PORT",
        read_directly: false,
    },
    Var {
        name: TERMINATION_LOG,
        flag: "--termination-log",
        meaning: "Where the failure reason is also written (only if the file exists, as in a Kubernetes pod",
        read_directly: false,
    },
    Var {
        name: TIMEOUT,
        flag: "--timeout",
        meaning: "Give up after this long (exit 124; 0 = no limit): bounds the whole run",
        read_directly: false,
    },
    Var {
        name: TOKEN_OUT,
        flag: "--token-out",
        meaning: "Also write the Vault token of this run here (mode/owner as the secrets) for a later step",
        read_directly: false,
    },
    Var {
        name: VAULT_ADDR,
        flag: "--vault-addr",
        meaning: "Vault address (falls back to VAULT_ADDR)",
        read_directly: false,
    },
    Var {
        name: VAULT_AUTH,
        flag: "--vault-auth",
        meaning: "Login method",
        read_directly: false,
    },
    Var {
        name: VAULT_AUTH_MOUNT,
        flag: "--vault-auth-mount",
        meaning: "Mount path of the auth method (default: the method's name)",
        read_directly: false,
    },
    Var {
        name: VAULT_CA_FILE,
        flag: "--vault-ca-file",
        meaning: "CA bundle (PEM) trusted for Vault in addition to the system roots (falls back to VAULT_CACERT)",
        read_directly: false,
    },
    Var {
        name: VAULT_CERT_ROLE,
        flag: "--vault-cert-role",
        meaning: "Certificate role name for cert logins (default: any matching role)",
        read_directly: false,
    },
    Var {
        name: VAULT_CLIENT_CERT,
        flag: "--vault-client-cert",
        meaning: "Client certificate (PEM) for mutual TLS and cert logins (falls back to VAULT_CLIENT_CERT)",
        read_directly: false,
    },
    Var {
        name: VAULT_CLIENT_KEY,
        flag: "--vault-client-key",
        meaning: "Key (PEM) of the client certificate (falls back to VAULT_CLIENT_KEY)",
        read_directly: false,
    },
    Var {
        name: VAULT_JWT_FILE,
        flag: "--vault-jwt-file",
        meaning: "JWT file for kubernetes (default: the pod's service-account token) and jwt logins",
        read_directly: false,
    },
    Var {
        name: VAULT_NAMESPACE,
        flag: "--vault-namespace",
        meaning: "Vault Enterprise / OpenBao namespace (falls back to VAULT_NAMESPACE)",
        read_directly: false,
    },
    Var {
        name: VAULT_PASSWORD_FILE,
        flag: "--vault-password-file",
        meaning: "File holding the userpass password",
        read_directly: false,
    },
    Var {
        name: VAULT_ROLE,
        flag: "--vault-role",
        meaning: "Role for kubernetes and jwt logins",
        read_directly: false,
    },
    Var {
        name: VAULT_ROLE_ID,
        flag: "--vault-role-id",
        meaning: "AppRole role_id",
        read_directly: false,
    },
    Var {
        name: VAULT_ROLE_ID_FILE,
        flag: "--vault-role-id-file",
        meaning: "File holding the AppRole role_id",
        read_directly: false,
    },
    Var {
        name: VAULT_SECRET_ID_FILE,
        flag: "--vault-secret-id-file",
        meaning: "File holding the AppRole secret_id (or, with --vault-secret-id-wrapped, a wrapping token)",
        read_directly: false,
    },
    Var {
        name: VAULT_SECRET_ID_WRAPPED,
        flag: "--vault-secret-id-wrapped",
        meaning: "The secret-id file holds a response-wrapping token: unwrap it first (sys/wrapping/unwrap)",
        read_directly: false,
    },
    Var {
        name: VAULT_TOKEN,
        flag: "",
        meaning: "Vault token (before VAULT_TOKEN); read directly",
        read_directly: true,
    },
    Var {
        name: VAULT_TOKEN_FILE,
        flag: "--vault-token-file",
        meaning: "File holding the token (token auth",
        read_directly: false,
    },
    Var {
        name: VAULT_USERNAME,
        flag: "--vault-username",
        meaning: "Userpass user name",
        read_directly: false,
    },
    Var {
        name: VERBOSE,
        flag: "--verbose",
        meaning: "More detail",
        read_directly: false,
    },
    Var {
        name: WAIT_FOR_CMD,
        flag: "--cmd",
        meaning: "A command that must exit 0 (same as the target `exec:CMD ARGS`)",
        read_directly: false,
    },
    Var {
        name: WAIT_FOR_SHELL,
        flag: "--shell",
        meaning: "Run `exec:` and --cmd commands with /bin/sh -c (shell syntax: pipes, &&, globs)",
        read_directly: false,
    },
    Var {
        name: WAIT_FOR_TARGETS,
        flag: "",
        meaning: "Targets (see the schemes above); `@PATH` reads a URL from a file",
        read_directly: false,
    },
    Var {
        name: WARN_DAYS,
        flag: "--warn-days",
        meaning: "TLS: warn when a certificate of the chain expires within this many days",
        read_directly: false,
    },
    Var {
        name: WATCH,
        flag: "--watch",
        meaning: "Keep checking every INTERVAL and log every change (for a native sidecar)",
        read_directly: false,
    },
    Var {
        name: KUBECONFIG,
        flag: "--kubeconfig",
        meaning: "Kubeconfig to use instead of the pod's service account (else $KUBECONFIG, then ~/.kube/config when not running in a pod)",
        read_directly: false,
    },
    Var {
        name: K8S_CONTEXT,
        flag: "--k8s-context",
        meaning: "Kubeconfig context (default: its current-context)",
        read_directly: false,
    },
    Var {
        name: PRINT_RBAC,
        flag: "--print-rbac",
        meaning: "Print the Role and RoleBinding (for this service account) that the k8s:// targets need, and exit",
        read_directly: false,
    },
    Var {
        name: CREATE_DATABASE,
        flag: "--create-database",
        meaning: "Create the database first when it does not exist (as dbmate's `create`); off by default, because a missing database is usually a wrong URL",
        read_directly: false,
    },
    Var {
        name: BASELINE_VERSION,
        flag: "",
        meaning: "The last version the existing schema already contains",
        read_directly: false,
    },
    Var {
        name: DOWN_TO,
        flag: "--to",
        meaning: "Undo every applied migration newer than VERSION",
        read_directly: false,
    },
    Var {
        name: RENDER_ONLY_DEFINED,
        flag: "--only-defined",
        meaning: "envsubst: substitute only variables that are set (with --allow: those of its names and prefixes that are set) and leave every other `$name` as written, like the official nginx image's templates (`$host`, `$uri` stay nginx's own variables)",
        read_directly: false,
    },
    Var {
        name: RENDER_YAML_VERSION,
        flag: "--yaml-version",
        meaning: "YAML version of --data/--secret-data YAML files: 1.2 (`no`, `off` are strings) or 1.1 (`yes`/`no`/`on`/`off` are booleans, as Ansible reads them)",
        read_directly: false,
    },
    Var {
        name: RENDER_GO_DIALECT,
        flag: "--go-dialect",
        meaning: "Go templates: whose conventions to follow where gomplate and dockerize differ (missing keys, the argument order of `default`)",
        read_directly: false,
    },
    Var {
        name: PRINT_SPEC,
        flag: "--print-spec",
        meaning: "Print the checks of the goss file given with -f as an initbox spec file, and exit",
        read_directly: false,
    },
    Var {
        name: RESTORE_FROM,
        flag: "--from",
        meaning: "Repository to restore from: s3://, file:// or http(s)://",
        read_directly: false,
    },
    Var {
        name: RESTORE_TO,
        flag: "--to",
        meaning: "Data directory to restore into (created when missing; may be a mount point)",
        read_directly: false,
    },
    Var {
        name: RESTORE_IF,
        flag: "--if",
        meaning: "When to restore: empty, unhealthy (empty or failing --check), always",
        read_directly: false,
    },
    Var {
        name: RESTORE_FOREIGN,
        flag: "--foreign",
        meaning: "What to do with data that has no initbox marker: keep, fail, restore",
        read_directly: false,
    },
    Var {
        name: RESTORE_VERSION_ID,
        flag: "--version-id",
        meaning: "Restore this version only (its id, as in the log and the manifest names)",
        read_directly: false,
    },
    Var {
        name: RESTORE_BEFORE,
        flag: "--before",
        meaning: "Only versions made before this time (RFC 3339, e.g",
        read_directly: false,
    },
    Var {
        name: RESTORE_ALLOW_NO_BACKUP,
        flag: "--allow-no-backup",
        meaning: "Succeed, leaving DIR empty, when the repository holds no version yet (a first deployment)",
        read_directly: false,
    },
    Var {
        name: STALL_TIMEOUT,
        flag: "--stall-timeout",
        meaning: "A download that receives nothing for this long fails (then the next version is tried)",
        read_directly: false,
    },
    Var {
        name: S3_ENDPOINT,
        flag: "--s3-endpoint",
        meaning: "S3 endpoint URL, e.g",
        read_directly: false,
    },
    Var {
        name: S3_URL_STYLE,
        flag: "--s3-url-style",
        meaning: "Addressing: path (host/bucket/key), virtual (bucket.host/key), or auto: path with a custom endpoint, virtual on AWS",
        read_directly: false,
    },
    Var {
        name: S3_SSE,
        flag: "--s3-sse",
        meaning: "Server-side encryption of uploads: AES256 or aws:kms",
        read_directly: false,
    },
    Var {
        name: S3_SSE_KMS_KEY_ID,
        flag: "--s3-sse-kms-key-id",
        meaning: "KMS key id for --s3-sse aws:kms",
        read_directly: false,
    },
    Var {
        name: S3_SSE_C_KEY_FILE,
        flag: "--s3-sse-c-key-file",
        meaning: "File holding the SSE-C key (32 bytes, raw or base64); sent with every upload and download",
        read_directly: false,
    },
    Var {
        name: BACKUP_FROM,
        flag: "--from",
        meaning: "Data directory to back up (initbox's own .initbox-* entries are left out)",
        read_directly: false,
    },
    Var {
        name: BACKUP_TO,
        flag: "--to",
        meaning: "Repository: s3://BUCKET/PREFIX/ or file:///PATH/",
        read_directly: false,
    },
    Var {
        name: BACKUP_PRE,
        flag: "--pre",
        meaning: "Command run in DIR before archiving, for a consistent copy; a failure stops the backup",
        read_directly: false,
    },
    Var {
        name: BACKUP_PRE_TIMEOUT,
        flag: "--pre-timeout",
        meaning: "Time limit of --pre",
        read_directly: false,
    },
    Var {
        name: BACKUP_COMPRESSION,
        flag: "--compression",
        meaning: "Compression of the archive",
        read_directly: false,
    },
    Var {
        name: KEEP_LAST,
        flag: "--keep-last",
        meaning: "Keep the N newest versions",
        read_directly: false,
    },
    Var {
        name: KEEP_HOURLY,
        flag: "--keep-hourly",
        meaning: "Keep the newest version of each of the last N hours that have one",
        read_directly: false,
    },
    Var {
        name: KEEP_DAILY,
        flag: "--keep-daily",
        meaning: "Keep the newest version of each of the last N days that have one",
        read_directly: false,
    },
    Var {
        name: KEEP_WEEKLY,
        flag: "--keep-weekly",
        meaning: "Keep the newest version of each of the last N ISO weeks that have one",
        read_directly: false,
    },
    Var {
        name: KEEP_MONTHLY,
        flag: "--keep-monthly",
        meaning: "Keep the newest version of each of the last N months that have one",
        read_directly: false,
    },
    Var {
        name: KEEP_YEARLY,
        flag: "--keep-yearly",
        meaning: "Keep the newest version of each of the last N years that have one",
        read_directly: false,
    },
    Var {
        name: BACKUP_LEASE,
        flag: "--lease",
        meaning: "Lease of the repository lock: renewed every third of it; a dead holder loses it after this",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_AT,
        flag: "--at",
        meaning: "Daily at HH:MM (or HH:MM:SS), 24-hour clock, in --tz",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_CRON,
        flag: "--cron",
        meaning: "A cron expression: 5 fields, 6 with seconds first, @hourly/@daily/@weekly/@monthly/ @yearly, or @every DURATION",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_EVERY,
        flag: "--every",
        meaning: "Every DURATION of real time, from the start (no drift)",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_TZ,
        flag: "--tz",
        meaning: "Time zone of the schedule (tz database name, e.g",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_FILE,
        flag: "--file",
        meaning: "Jobs file (YAML: a `jobs:` list, each with at/cron/every and applet+args or command)",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_CRONTAB,
        flag: "--crontab",
        meaning: "A crontab (5 or 6 fields or a macro, then a command run with /bin/sh -c; CRON_TZ= lines)",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_NAME,
        flag: "--name",
        meaning: "Name of the job given on the command line (in logs, the state file, /healthz)",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_JOB_TIMEOUT,
        flag: "--job-timeout",
        meaning: "Bound on each run; at the end the job gets SIGTERM, then SIGKILL after --stop-grace (exit 124)",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_CONCURRENCY_POLICY,
        flag: "--concurrency-policy",
        meaning: "A run due while the previous one still runs: forbid (skip it), allow, or replace (stop the old one)",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_RANDOM_DELAY,
        flag: "--random-delay",
        meaning: "Start each run up to this much later, at random (spreads a fleet's load)",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_RUN_ON_START,
        flag: "--run-on-start",
        meaning: "Also run every job once at start",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_RETRIES,
        flag: "--retries",
        meaning: "Try a failed run again up to N times (delay doubling from --retry-delay)",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_RETRY_DELAY,
        flag: "--retry-delay",
        meaning: "First delay between the attempts of a failed run",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_CATCH_UP,
        flag: "--catch-up",
        meaning: "A run missed while the sidecar was down: none (lost), or last (run it once at start, if not older than --max-late)",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_MAX_LATE,
        flag: "--max-late",
        meaning: "With --catch-up last: the oldest missed run still made up for",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_STATE_FILE,
        flag: "--state-file",
        meaning: "Where each job's last run is kept (JSON, written atomically), for --catch-up",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_STOP_GRACE,
        flag: "--stop-grace",
        meaning: "Time between SIGTERM and SIGKILL when a job is stopped (timeout, replace, shutdown): keep it below the pod's terminationGracePeriodSeconds",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_HEARTBEAT_FILE,
        flag: "--heartbeat-file",
        meaning: "File rewritten (JSON status) every --heartbeat-interval and after each run while the sidecar is healthy; it goes stale when it is not",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_HEARTBEAT_INTERVAL,
        flag: "--heartbeat-interval",
        meaning: "How often the heartbeat file is rewritten",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_HEALTHZ,
        flag: "--healthz",
        meaning: "Serve GET /healthz on this address (`:8080`, `127.0.0.1:8080`): 200 while healthy, 503 with the reason when not",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_UNHEALTHY_AFTER,
        flag: "--unhealthy-after",
        meaning: "Unhealthy after this many consecutive failed runs of a job",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_MAX_SUCCESS_AGE,
        flag: "--max-success-age",
        meaning: "Unhealthy when a job's last success (or the start) is older than this; 0: no limit",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_EXIT_ON_FAILURES,
        flag: "--exit-on-failures",
        meaning: "Stop (exit 1) after N consecutive failed runs of a job; 0: never",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_CLOCK_START,
        flag: "--clock-start",
        meaning: "Start the scheduler's clock at this instant (RFC 3339) instead of now; it then runs at real speed",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_TIMES,
        flag: "--times",
        meaning: "How many times",
        read_directly: false,
    },
    Var {
        name: SCHEDULE_FROM,
        flag: "--from",
        meaning: "Start after this instant (RFC 3339) instead of now",
        read_directly: false,
    },
    Var {
        name: RESTORE_CHECK,
        flag: "--check",
        meaning: "Health check of the data, run inside the directory (DIR, then each staged version); a shell-like command line, no shell",
        read_directly: false,
    },
    Var {
        name: RESTORE_CHECK_OUTPUT,
        flag: "--check-output",
        meaning: "The check must also print exactly this (trimmed), e.g",
        read_directly: false,
    },
    Var {
        name: RESTORE_CHECK_TIMEOUT,
        flag: "--check-timeout",
        meaning: "Time limit of one check run",
        read_directly: false,
    },
    Var {
        name: RESTORE_OWNER,
        flag: "--owner",
        meaning: "Owner of every restored file and directory (default: the archive's when root, else the caller)",
        read_directly: false,
    },
    Var {
        name: RESTORE_CHMOD,
        flag: "--chmod",
        meaning: "Modes forced while unpacking: octal or chmod's symbolic form, D/F for directories/files only, e.g. D0750,F0640 or u=rwX,go=rX",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_DIR,
        flag: "",
        meaning: "The volume to prepare (created when missing); nothing outside it is changed",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_OWNER,
        flag: "--owner",
        meaning: "Owner of DIR and everything in it, UID:GID, changed only where it differs (needs root or CAP_CHOWN)",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_CHMOD,
        flag: "--chmod",
        meaning: "Modes of DIR and everything in it (links excepted): octal or chmod's symbolic form, D/F for directories/files only, e.g. D0750,F0640 or u=rwX,go=rX",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_FS_GROUP,
        flag: "--fs-group",
        meaning: "Kubernetes' fsGroup, as the kubelet applies it: group GID, group rw on files, rwx and set-group-ID on directories",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_ON_ROOT_MISMATCH,
        flag: "--on-root-mismatch",
        meaning: "Skip the walk when DIR itself already has the wanted owner and mode (fsGroupChangePolicy: OnRootMismatch)",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_SKIP,
        flag: "--skip",
        meaning: "Leave entries with this name alone, at any depth, and do not enter them, e.g. lost+found or .snapshot (repeatable; comma-separated in the variable)",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_MKDIR,
        flag: "--mkdir",
        meaning: "Directory to create inside DIR, relative to it (repeatable; comma-separated in the variable)",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_COPY,
        flag: "--copy",
        meaning: "Copy a file, or a directory's content (a ConfigMap or Secret mount), to DEST inside DIR (repeatable; comma-separated in the variable)",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_IF_MISSING,
        flag: "--if-missing",
        meaning: "Copy only files that are not in DIR yet (what the application changed is kept)",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_IF_CHANGED,
        flag: "--if-changed",
        meaning: "Copy only files whose content, mode or owner differ (the others are not rewritten)",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_DELETE,
        flag: "--delete",
        meaning: "Make each directory copy a mirror: delete what its source does not have from its DEST, never following a link or leaving the volume",
        read_directly: false,
    },
    Var {
        name: PREPARE_VOLUME_CHECK,
        flag: "--check",
        meaning: "Change nothing: count what would be created, copied and changed; exit 1 if anything would",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_URL,
        flag: "",
        meaning: "What to download: http(s)://, s3://BUCKET/KEY or file:///PATH",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_TO,
        flag: "--to",
        meaning: "Destination file (with --unpack: the directory to unpack into); parents are created",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_SHA256,
        flag: "--sha256",
        meaning: "Expected SHA-256 of the file: 64 hex digits, or sha256:HEX",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_SHA256SUMS,
        flag: "--sha256sums",
        meaning: "A checksums file in sha256sum's output form (URL or path), holding the line for the file's name",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_MINISIGN_KEY,
        flag: "--minisign-key",
        meaning: "Minisign public key (the base64 key, or a minisign.pub file) the download's signature must verify with",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_SIGNATURE,
        flag: "--signature",
        meaning: "The detached minisign signature (URL or path; default: the download's URL with .minisig appended)",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_UNPACK,
        flag: "--unpack",
        meaning: "Unpack the archive into --to (a directory): auto (by its first bytes, then its name), tar, tar.gz, tar.zst, zip",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_MODE,
        flag: "--mode",
        meaning: "Mode of the downloaded file",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_OWNER,
        flag: "--owner",
        meaning: "Owner of the downloaded file, or of every unpacked entry (needs root or CAP_CHOWN)",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_CHMOD,
        flag: "--chmod",
        meaning: "With --unpack: modes forced on the unpacked entries: octal or chmod's symbolic form, D/F for directories/files only, e.g. D0750,F0640 or u=rwX,go=rX",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_RETRIES,
        flag: "--retries",
        meaning: "Resumed attempts after a failure that received nothing new (a cut connection, a 5xx)",
        read_directly: false,
    },
    Var {
        name: DOWNLOAD_STRIP_COMPONENTS,
        flag: "--strip-components",
        meaning: "With --unpack: drop the first N components of every entry's path, as GNU tar does; entries with no more are skipped",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_FILE,
        flag: "--file",
        meaning: "YAML spec file: the flags' names as keys (see the README)",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_REDIRECT_OUTBOUND,
        flag: "--redirect-outbound",
        meaning: "Redirect every outbound TCP connection to this local port (a sidecar proxy's outbound listener)",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_EXCLUDE_UIDS,
        flag: "--exclude-uid",
        meaning: "Connections of processes running as this uid are not redirected (the proxy's own); repeatable",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_EXCLUDE_GIDS,
        flag: "--exclude-gid",
        meaning: "Connections of processes with this gid are not redirected; repeatable",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_EXCLUDE_OUTBOUND_PORTS,
        flag: "--exclude-outbound-port",
        meaning: "Outbound connections to this destination port are not redirected: PORT or a range FIRST-LAST (TCP); repeatable",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_EXCLUDE_OUTBOUND_CIDRS,
        flag: "--exclude-outbound-cidr",
        meaning: "Outbound connections to this network (ADDR or ADDR/PREFIX) are not redirected; repeatable",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_REDIRECT_UDP,
        flag: "--redirect-udp",
        meaning: "Redirect outbound UDP to these destination ports to a local port, PORTS:TO (DNS capture: 53:15053; PORTS may be a range FIRST-LAST); repeatable",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_REDIRECT_INBOUND,
        flag: "--redirect-inbound",
        meaning: "Redirect inbound TCP connections to this local port (a sidecar proxy's inbound listener)",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_INBOUND_PORTS,
        flag: "--inbound-port",
        meaning: "Inbound ports to redirect (default '*': every TCP port): PORT or a range FIRST-LAST; repeatable",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_EXCLUDE_INBOUND_PORTS,
        flag: "--exclude-inbound-port",
        meaning: "Inbound connections to this port are not redirected (health and metrics ports): PORT or a range FIRST-LAST; repeatable",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_ALLOW_DESTINATIONS,
        flag: "--allow-destination",
        meaning: "Accept outbound traffic to NET, NET:PORT or [NET6]:PORT (TCP port), before any --deny-destination; repeatable",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_DENY_DESTINATIONS,
        flag: "--deny-destination",
        meaning: "Drop outbound traffic to NET, NET:PORT or [NET6]:PORT (TCP port); repeatable",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_SYSCTLS,
        flag: "--sysctl",
        meaning: "Set a kernel parameter, KEY=VALUE as sysctl -w takes it (net.* are the pod's own); repeatable",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_NODE_SYSCTLS,
        flag: "--node-sysctls",
        meaning: "Allow node-level sysctls (vm.*, kernel.*, fs.*: they change the whole node; needs a privileged container)",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_TABLE,
        flag: "--table",
        meaning: "Name of initbox's nftables table (family inet) [default: initbox]",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_DRY_RUN,
        flag: "--dry-run",
        meaning: "Print the table in nft syntax (as `nft list table` will show it) and the sysctls to set; change nothing",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_CHECK,
        flag: "--check",
        meaning: "Only verify that the table and the sysctls are as specified (exit 1 when not); change nothing",
        read_directly: false,
    },
    Var {
        name: NET_SETUP_CLEANUP,
        flag: "--cleanup",
        meaning: "Delete initbox's table (sysctls are left as they are)",
        read_directly: false,
    },
];

/// `run`'s own names for shared words: its settings are `INITBOX_RUN_*` so that the steps it
/// runs, which read the same environment, do not inherit them.
pub const RUN_SCOPED: &[(&str, &str)] = &[(RUN_TIMEOUT, TIMEOUT)];

/// Flags named for an applet's own thing of one kind (its input file, its output format and
/// directory, its written files' mode and owner, its dry run, its data): each applet declares
/// its own, with a variable of its own (`INITBOX_RUN_FILE`, `INITBOX_CHECKS_FILE`, …).
pub const LOCAL_FLAGS: &[&str] = &[
    "--check",
    "--chmod",
    "--check-timeout",
    "--cleanup",
    "--data",
    "--dir",
    "--dry-run",
    "--file",
    "--format",
    "--from",
    "--mode",
    "--name",
    "--owner",
    "--retries",
    "--retry-delay",
    "--stop-grace",
    "--table",
    "--to",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn old_flags_become_new_ones_up_to_the_command() {
        let argv = os(&[
            "network-check",
            "--timeout=2s",
            "--interval",
            "1s",
            "--",
            "--timeout",
        ]);
        assert_eq!(
            rename_args("network-check", argv),
            os(&[
                "network-check",
                "--attempt-timeout=2s",
                "--icmp-interval",
                "1s",
                "--",
                "--timeout"
            ])
        );
        // Another applet's --timeout is its own.
        let argv = os(&["wait-for-tcp", "--timeout", "2s"]);
        assert_eq!(rename_args("wait-for-tcp", argv.clone()), argv);
        // A flag that only starts like an old one is left alone.
        let argv = os(&["network-check", "--timeouts"]);
        assert_eq!(rename_args("network-check", argv.clone()), argv);
        let notices = std::mem::take(&mut *NOTICES.lock().unwrap());
        assert!(
            notices
                .iter()
                .all(|n| !n.contains("2s") && !n.contains("1s")),
            "{notices:?}"
        );
        assert!(
            notices.iter().any(|n| n.contains("use --attempt-timeout")),
            "{notices:?}"
        );
    }

    #[test]
    fn every_new_name_is_in_the_vocabulary() {
        for r in RENAMED {
            if !r.new.starts_with("--") {
                assert!(VOCABULARY.iter().any(|v| v.name == r.new), "{}", r.new);
            }
        }
        let mut names: Vec<_> = VOCABULARY.iter().map(|v| v.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), VOCABULARY.len(), "a name listed twice");
    }
}
