//! `initbox fetch-secret`: secrets from Vault/OpenBao, AWS Secrets Manager and SSM, Kubernetes
//! Secrets, files and the environment, into files (0400, atomic, all or nothing), one
//! dotenv/shell/JSON/YAML file, or the environment of a command — fail-closed and never leaked.
//!
//! # Library API (`initbox_secrets`, crates/secrets; also used by `render-config`'s
//! `secret("ref+...")`)
//!
//! ```ignore
//! use initbox_secrets::{BackendArgs, Resolver, reference};
//!
//! #[derive(clap::Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     backends: BackendArgs, // --vault-*, --aws-*, --k8s-* flags, each with INITBOX_* env
//! }
//!
//! let resolver = Resolver::new(&args.backends, deadline); // contacts nothing yet
//! let r = reference::parse("ref+vault://secret/app/db#/password")?; // exit 3 if malformed
//! let v = resolver.resolve(&r).await?; // SecretValue, already registered for redaction
//! let text: String = v.text();
//! let many = resolver.resolve_all(&refs).await?; // concurrent, all or nothing
//! ```
//!
//! - [`reference::parse`] / [`Reference`]: the one syntax `ref+BACKEND://PATH[?params][#/pointer]`
//!   for every backend (see [`reference`]); a malformed reference is a [`Failure`] with exit 3.
//! - [`BackendArgs`]: clap-flattenable backend flags. Set `request_timeout` after parsing if
//!   the embedding applet has its own per-request timeout flag.
//! - [`Resolver`]: cheap to clone; clients are created on first use per backend, Vault logs in
//!   once per resolver, identical reads (same backend, path, version, namespace) are fetched
//!   once however many references point into them, every request is retried only on transient
//!   errors and bounded by the deadline.
//!   [`Resolver::resolve`] returns a [`SecretValue`]: for an optional reference that is
//!   missing, its `default=` or [`SecretValue::absent`] (`is_absent()`, `text()` = "").
//!   [`Resolver::vault_token`] gives the run's Vault token (for a token hand-off).
//! - Every value a backend returns is registered with `initbox_runtime::redact` the moment it
//!   arrives, so it never appears in logs, errors or the termination log. [`SecretValue`]'s
//!   `Debug` shows no value.
//! - Errors: 1 not found / missing key (the message lists existing key names, never values),
//!   2 missing configuration, 3 malformed reference, 4 unreadable file, 5 credentials
//!   rejected, 124 deadline.

pub mod output;
pub mod spec;

// The references, the resolver and its backends live in crates/secrets (render-config uses
// them too).
pub use initbox_secrets::{aws, k8s, reference, resolver, value, vault};

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use initbox_runtime::atomic::{WriteOptions, parse_mode, parse_owner};
use initbox_runtime::duration::{human, parse as parse_duration};
use initbox_runtime::exec::Command;
use initbox_runtime::{Applet, Deadline, Failure, LogArgs, Outcome};

pub use output::Format;
pub use reference::{Backend, Reference};
pub use resolver::{BackendArgs, Resolver};
pub use value::{Lease, SecretValue};

#[derive(Debug, Parser)]
#[command(
    name = "fetch-secret",
    version,
    about = "Fetch secrets from Vault, AWS and Kubernetes into files or a command's environment",
    long_about = "Resolve NAME=REF pairs (and a --spec file) and write each secret to its own \
                  file (default, mode 0400, under --dir), all of them to one --out file in a \
                  --format, or into the environment of the command after `--` (--exec). \
                  Fail-closed: if any reference cannot be resolved, nothing is written and no \
                  command runs, unless the reference has ?optional=true or ?default=.\n\n\
                  REF is ref+vault://PATH#/key, ref+awssm://NAME#/key, ref+awsssm://PARAM, \
                  ref+k8s://NAMESPACE/SECRET#key, ref+file://PATH or ref+env://NAME. \
                  Parameters: optional=true, default=TEXT, version=N, stage=S, kv=1|2, \
                  namespace=NS, decode=base64.",
    after_help = "Examples:\n  \
        initbox fetch-secret --dir /secrets db_password=ref+vault://secret/app/db#/password\n  \
        initbox fetch-secret --out /secrets/app.env --format dotenv --spec /config/secrets.yaml\n  \
        initbox fetch-secret --exec DB_PASSWORD=ref+awssm://prod/db#/password -- /app/server\n\n\
        Exit codes: 0 ok, 1 not found / failed, 2 usage, 3 malformed reference, 4 permission, \
        5 credentials rejected, 124 deadline."
)]
pub struct Args {
    /// NAME=REF: the secret REF, written to the file NAME or set as the variable NAME.
    #[arg(
        value_name = "NAME=REF",
        env = initbox_runtime::env::SECRETS,
        value_delimiter = '\n'
    )]
    pub secrets: Vec<String>,

    /// YAML, JSON or TOML file with a `secrets` map of NAME: REF.
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::SPEC)]
    pub spec: Option<PathBuf>,

    /// Directory for the per-secret files (relative NAMEs).
    #[arg(long, value_name = "DIR", env = initbox_runtime::env::DIR, default_value = ".")]
    pub dir: PathBuf,

    /// Write every secret to this one file in --format instead of one file each.
    #[arg(
        long,
        value_name = "PATH",
        env = initbox_runtime::env::OUT,
        conflicts_with = "exec"
    )]
    pub out: Option<PathBuf>,

    /// Format of the --out file.
    #[arg(long, value_enum, env = initbox_runtime::env::FORMAT, default_value = "dotenv")]
    pub format: Format,

    /// Put the secrets into the environment of the command after `--` instead of files.
    #[arg(long, env = initbox_runtime::env::EXEC, value_parser = clap::builder::BoolishValueParser::new())]
    pub exec: bool,

    /// Mode of written files (directories created 0700).
    #[arg(long, value_name = "OCTAL", env = initbox_runtime::env::MODE, default_value = "0400", value_parser = parse_mode)]
    pub mode: u32,

    /// Owner of written files, UID:GID (needs root or CAP_CHOWN).
    #[arg(long, value_name = "UID:GID", env = initbox_runtime::env::OWNER, value_parser = parse_owner)]
    pub owner: Option<(u32, u32)>,

    /// Also write the Vault token of this run here (mode/owner as the secrets) for a later step.
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::TOKEN_OUT)]
    pub token_out: Option<PathBuf>,

    /// Resolve and check every reference, print the names, write and run nothing.
    #[arg(long, env = initbox_runtime::env::CHECK, value_parser = clap::builder::BoolishValueParser::new(), conflicts_with = "exec")]
    pub check: bool,

    /// Give up after this long (exit 124; 0 = no limit).
    #[arg(long, value_name = "DURATION", env = initbox_runtime::env::TIMEOUT, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Timeout of each HTTP request.
    #[arg(long, value_name = "DURATION", env = initbox_runtime::env::REQUEST_TIMEOUT, default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    #[command(flatten)]
    pub backends: BackendArgs,

    #[command(flatten)]
    pub log: LogArgs,

    /// Command to exec after success (with --exec: with the secrets in its environment).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// NAME=REF pairs of the command line and the spec file, parsed and checked.
fn entries(args: &Args) -> Result<Vec<(String, Reference)>, Failure> {
    let mut raw: Vec<(String, String)> = Vec::new();
    for item in args
        .secrets
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let Some((name, r)) = item.split_once('=').filter(|(n, _)| !n.is_empty()) else {
            let shown = if reference::is_reference(item) {
                "a reference without NAME=".to_string()
            } else {
                format!("'{item}'")
            };
            return Err(Failure::usage(format!(
                "{shown} is not NAME=REF (e.g. DB_PASSWORD=ref+vault://secret/app#/password)"
            )));
        };
        raw.push((name.trim().to_string(), r.trim().to_string()));
    }
    if let Some(spec) = &args.spec {
        raw.extend(spec::load(spec)?);
    }
    if raw.is_empty() {
        return Err(Failure::usage(
            "no secrets given (expected NAME=REF arguments, INITBOX_SECRETS or --spec)",
        ));
    }
    let env_names =
        args.exec || args.out.is_some() && matches!(args.format, Format::Dotenv | Format::Shell);
    let mut out: Vec<(String, Reference)> = Vec::with_capacity(raw.len());
    for (name, r) in raw {
        if out.iter().any(|(n, _)| *n == name) {
            return Err(Failure::usage(format!(
                "secret name '{name}' is given twice"
            )));
        }
        if env_names && !output::is_env_name(&name) {
            return Err(Failure::usage(format!(
                "'{name}' is not a valid environment variable name"
            )));
        }
        let parsed = reference::parse(&r).map_err(|f| f.context(format!("secret '{name}'")))?;
        out.push((name, parsed));
    }
    Ok(out)
}

impl Args {
    fn write_options(&self) -> Result<WriteOptions, Failure> {
        if let Some((uid, gid)) = self.owner {
            // SAFETY: geteuid/getegid cannot fail.
            let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
            if euid != 0 && (uid, gid) != (euid, egid) {
                return Err(Failure::env_refused(format!(
                    "--owner {uid}:{gid} needs root (running as uid {euid}); run the init container \
                     as that user or use fsGroup"
                )));
            }
        }
        Ok(WriteOptions {
            mode: self.mode,
            owner: self.owner,
            create_dirs: true,
        })
    }
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(mut self) -> Result<Outcome, Failure> {
        let started = Instant::now();
        let entries = entries(&self)?;
        if self.exec && self.command.is_empty() {
            return Err(Failure::usage("--exec needs a command after --"));
        }
        let opts = self.write_options()?;
        let files: Vec<PathBuf> = if self.out.is_none() && !self.exec && !self.check {
            entries
                .iter()
                .map(|(n, _)| output::file_path(&self.dir, n))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };

        self.backends.request_timeout = self.request_timeout;
        let deadline = Deadline::after((!self.timeout.is_zero()).then_some(self.timeout));
        let resolver = Resolver::new(&self.backends, deadline);
        let refs: Vec<Reference> = entries.iter().map(|(_, r)| r.clone()).collect();
        let values = deadline
            .run(resolver.resolve_all(&refs), || {
                format!("resolving {} secrets", refs.len())
            })
            .await?;
        let token = match &self.token_out {
            Some(_) => Some(match resolver.vault_token() {
                Some(t) => t,
                None => resolver.vault_login().await?,
            }),
            None => None,
        };
        let named: Vec<(String, SecretValue)> =
            entries.iter().map(|(n, _)| n.clone()).zip(values).collect();
        let absent = named.iter().filter(|(_, v)| v.is_absent()).count();

        if self.check {
            for (name, v) in &named {
                let state = if v.is_absent() {
                    "absent (optional)"
                } else {
                    "ok"
                };
                println!("{name}: {state}");
            }
            tracing::info!(secrets = named.len(), absent, elapsed = %human(started.elapsed()), "all references resolve (nothing written)");
            return Ok(Outcome::OK);
        }

        // An environment variable cannot hold a binary value: refused before anything is written.
        if self.exec {
            for (name, v) in &named {
                v.try_text(name, "--exec (an environment variable)")?;
            }
        }
        let mut writes: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        if let Some(out) = &self.out {
            writes.push((
                out.clone(),
                output::render(self.format, &named)?.into_bytes(),
            ));
        } else if !self.exec {
            for (path, (_, v)) in files.into_iter().zip(&named) {
                if !v.is_absent() {
                    writes.push((path, v.bytes()));
                }
            }
        }
        if let (Some(path), Some(token)) = (&self.token_out, token) {
            writes.push((path.clone(), token.into_bytes()));
        }
        output::write_all(&writes, &opts)?;
        tracing::info!(
            secrets = named.len() - absent,
            absent,
            files = writes.len(),
            elapsed = %human(started.elapsed()),
            "secrets fetched"
        );

        if self.command.is_empty() {
            return Ok(Outcome::OK);
        }
        let secrets_env: Vec<(String, SecretValue)> = if self.exec { named } else { Vec::new() };
        Ok(Outcome::Exec(Command {
            argv: self.command,
            env: Some(output::exec_env(&secrets_env)),
        }))
    }
}
