//! `initbox run-migrations`: apply SQL migrations exactly once, from every replica at once.
//!
//! The order of a run: read and validate the directory (bad files fail before any connection);
//! wait for the database; read `_sqlx_migrations` without locking and stop there when everything
//! is applied (the common pod restart); otherwise take the cross-process lock (the same lock an
//! application's `sqlx::migrate!` takes), read again, validate, apply each pending migration in
//! its own transaction where the server allows, and release the lock on every path.
//!
//! The table, its rows and the checksums are sqlx's, so an application embedding
//! `sqlx::migrate!` on the same directory agrees with initbox on what is applied.

/// Run `$body` (a future using `$db`) under the migration lock; the lock is released whatever it
/// returns. (If the run is stopped by a signal, the connection and the lock file close with the
/// process, which releases the lock on the server.)
macro_rules! locked {
    ($db:expr, $timeout:expr, $body:expr) => {{
        $db.lock($timeout).await?;
        let result = $body.await;
        if let Err(e) = $db.unlock().await {
            tracing::warn!("releasing the migration lock: {e} (it ends with the connection)");
        }
        result
    }};
}

mod adopt;
mod db;
mod plan;
mod source;
mod split;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use initbox_runtime::duration::{human, parse};
use initbox_runtime::exit::Code;
use initbox_runtime::url as safe_url;
use initbox_runtime::{Applet, Deadline, Failure, LogArgs, Outcome, child};

/// The variable that gives the database password when neither the URL nor --password-file does
/// (before the service's own PGPASSWORD / MYSQL_PWD).
pub const PASSWORD_VAR: &str = initbox_runtime::env::PASSWORD;

pub use db::lock_id;
pub use source::Format;

use crate::db::{ApplyError, Db, TABLE};
use crate::plan::{Policy, State, compare, validate};
use crate::source::{Local, Source};

#[derive(Debug, Parser)]
#[command(
    name = "run-migrations",
    version,
    about = "Apply SQL migrations exactly once, safely from many replicas at once",
    long_about = "Apply the SQL migrations of a directory to PostgreSQL, MySQL/MariaDB or SQLite, \
                  keeping sqlx's _sqlx_migrations table and checksums (an application's \
                  sqlx::migrate! agrees with it and both take the same lock).\n\n\
                  Waits for the database first, exits at once without locking when everything is \
                  applied, otherwise takes a cross-process lock (bounded by --lock-timeout, \
                  naming the holder while it waits), re-checks, validates and applies each \
                  migration in its own transaction. Reads sqlx, golang-migrate, goose and dbmate \
                  directories (only the up part runs).\n\n\
                  With --with-lock, holds the same lock while it runs another tool's migrate command \
                  and exits with that command's code.",
    after_help = "Examples:\n  \
        initbox run-migrations --database-url postgres://app@db/app --dir /migrations\n  \
        initbox run-migrations --database-url sqlite://app.db status\n  \
        initbox run-migrations --database-url mysql://root@db/app baseline 20240101000000\n  \
        initbox run-migrations --database-url postgres://app@db/app --with-lock -- python manage.py migrate\n\n\
        Exit codes: 0 done (status: up to date); 1 a migration failed, a failed marker needs repair \
        (status: migrations pending); 2 usage; 3 invalid migration files, a changed applied file, \
        out-of-order or (with --refuse-missing) unknown applied versions, missing database; 5 credentials \
        rejected; 124 database not up within --timeout or lock not acquired within --lock-timeout; \
        with --with-lock the command's own code."
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,

    /// postgres://, mysql:// (mariadb://) or sqlite: URL. The password is never logged.
    /// DATABASE_URL is used when INITBOX_DATABASE_URL is not set.
    #[arg(
        long,
        value_name = "URL",
        env = initbox_runtime::env::DATABASE_URL,
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<String>,

    /// Password for every URL that has none, read from this file (a mounted Secret); a trailing
    /// newline is ignored. Overrides a password in the URL. Without either, the password comes
    /// from INITBOX_PASSWORD, then PGPASSWORD (postgres) or MYSQL_PWD (mysql, mariadb).
    #[arg(
        long,
        value_name = "PATH",
        env = initbox_runtime::env::PASSWORD_FILE,
        global = true
    )]
    pub password_file: Option<PathBuf>,

    /// Directory of migration files.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "migrations",
        env = initbox_runtime::env::MIGRATIONS_DIR,
        global = true
    )]
    pub dir: PathBuf,

    /// Layout of the directory.
    #[arg(
        long,
        value_enum,
        default_value_t = Format::Auto,
        env = initbox_runtime::env::MIGRATIONS_FORMAT,
        global = true
    )]
    pub format: Format,

    /// Give up after this long (exit 124; 0 = no limit) waiting for the database to accept
    /// connections.
    #[arg(short = 't', long, value_name = "DURATION", default_value = "60s",
          value_parser = parse, env = initbox_runtime::env::TIMEOUT, global = true)]
    pub timeout: Duration,

    /// How long to wait for another migrator to finish (0 = forever).
    #[arg(long, value_name = "DURATION", default_value = "30m",
          value_parser = parse, env = initbox_runtime::env::LOCK_TIMEOUT, global = true)]
    pub lock_timeout: Duration,

    /// Refuse versions applied in the database that have no local file (by default they are
    /// tolerated with a warning, so an older release rolled back mid-rollout still starts).
    #[arg(long = "refuse-missing", env = initbox_runtime::env::MIGRATIONS_REFUSE_MISSING, value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub strict: bool,

    /// Apply new migrations whose version is lower than the newest applied one (refused by
    /// default: they were likely merged late and never tested in this order).
    #[arg(long, env = initbox_runtime::env::ALLOW_OUT_OF_ORDER, value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub allow_out_of_order: bool,

    /// Create the database first when it does not exist (as dbmate's `create`); off by
    /// default, because a missing database is usually a wrong URL.
    #[arg(long, env = initbox_runtime::env::CREATE_DATABASE, value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub create_database: bool,

    /// Hold the migration lock while running CMD (another tool's migrate command) and exit
    /// with its code; no migration files are read. Without it, CMD is exec'd after a
    /// successful `up`, as in every applet.
    #[arg(long = "with-lock", env = initbox_runtime::env::MIGRATIONS_WITH_LOCK, value_parser = clap::builder::BoolishValueParser::new(), requires = "command")]
    pub exec: bool,

    #[command(flatten)]
    pub log: LogArgs,

    /// Command to exec after a successful `up` (never after a failure); with --with-lock, the
    /// command to run under the lock.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Apply pending migrations (the default).
    Up,
    /// Show applied, pending, changed, failed and unknown versions (read-only).
    ///
    /// Exit 0 when up to date, 1 when migrations are pending or one failed, 3 when an applied
    /// file changed.
    Status,
    /// Show what `up` would run, and validate (read-only).
    Plan,
    /// Record the migrations up to VERSION as applied without running them.
    ///
    /// Adopts a database whose schema already exists. Refused when the history table has rows.
    Baseline {
        /// The last version the existing schema already contains.
        #[arg(value_name = "VERSION", env = initbox_runtime::env::BASELINE_VERSION)]
        version: i64,
    },
    /// Write the next migration file NAME in the directory's format (no database).
    ///
    /// Its version: the next number where the directory numbers 1, 2, 3, else the UTC time
    /// YYYYMMDDHHMMSS.
    New {
        /// What the migration does, e.g. add_users.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Undo the newest applied migration (or N, or all above --to VERSION).
    ///
    /// Uses the down sections or files the format carries; refused when one has none.
    Down {
        /// How many migrations to undo (default 1).
        #[arg(value_name = "N", conflicts_with = "to")]
        steps: Option<usize>,
        /// Undo every applied migration newer than VERSION.
        #[arg(long, value_name = "VERSION", env = initbox_runtime::env::DOWN_TO)]
        to: Option<i64>,
    },
    /// Clear failed markers after a person fixed the database.
    ///
    /// The migration runs again on the next `up` (or, with --mark-applied, counts as applied).
    Repair {
        /// Mark failed migrations as applied instead of clearing them (you completed them).
        #[arg(long, env = initbox_runtime::env::REPAIR_MARK_APPLIED)]
        mark_applied: bool,
        /// Also re-stamp the checksums of applied migrations whose files were changed on
        /// purpose (after review) with the files' current checksums.
        #[arg(long, env = initbox_runtime::env::REPAIR_CHECKSUMS)]
        checksums: bool,
    },
}

impl Applet for Args {
    fn before_parse() {
        // sqlx-cli's and most frameworks' variable, as a fallback.
        if std::env::var_os(initbox_runtime::env::DATABASE_URL).is_none()
            && let Some(url) = std::env::var_os("DATABASE_URL")
        {
            // SAFETY: called by the front before any other thread exists.
            unsafe { std::env::set_var(initbox_runtime::env::DATABASE_URL, url) };
        }
    }

    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(mut self) -> Result<Outcome, Failure> {
        if let Some(Action::New { name }) = &self.action {
            for path in source::new_files(&self.dir, self.format, name)? {
                println!("{}", path.display());
            }
            return Ok(Outcome::OK);
        }
        // A URL or a libpq keyword string; what it leaves out (or everything, when nothing is
        // given) from PGHOST/PGPORT/PGUSER/PGDATABASE/PGSSLMODE or MYSQL_HOST/MYSQL_TCP_PORT.
        let resolved =
            initbox_database::resolve(self.database_url.as_deref(), &|k| std::env::var(k).ok())
                .map_err(|e| Failure::usage(format!("--database-url: {e}")))?;
        let Some(url) = resolved.as_deref() else {
            return Err(Failure::usage(
                "--database-url is required (or INITBOX_DATABASE_URL / DATABASE_URL, or the \
                 PG*/MYSQL_HOST variables)",
            ));
        };
        // Scrubbed whether or not this URL uses them (sqlx reads PGPASSWORD by itself).
        safe_url::register_env_passwords(PASSWORD_VAR);
        // The URL's password (and a `?password=` value) is registered before anything shows
        // it; an ambiguous user information is refused before anything parses it.
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let url_has_password = if scheme == "sqlite" {
            false
        } else {
            let separately = match safe_url::service_password_var(&scheme) {
                Some(var) => format!("{var}, {PASSWORD_VAR} or --password-file"),
                None => format!("{PASSWORD_VAR} or --password-file"),
            };
            let parsed = safe_url::parse_service_url(url, &separately)
                .map_err(|e| Failure::usage(format!("--database-url: {}", e.message)))?;
            parsed.as_url().password().is_some()
        };
        let shown = safe_url::display(url);
        // --password-file beats the URL (as documented); a variable is the fallback when
        // neither gives one, as PGPASSWORD and MYSQL_PWD are for libpq and mysql.
        let password = match &self.password_file {
            None if url_has_password => None,
            None => safe_url::password_from_env(&scheme, PASSWORD_VAR).map(|(p, var)| {
                tracing::debug!("database password from {var}");
                p
            }),
            Some(p) => {
                let pw = initbox_runtime::input::read_secret(
                    p,
                    &format!("--password-file {}", p.display()),
                    false,
                )?;
                if pw.is_empty() {
                    return Err(Failure::invalid_input(format!(
                        "--password-file {}: the file is empty",
                        p.display()
                    )));
                }
                Some(pw)
            }
        };
        let read_only = matches!(self.action, Some(Action::Status | Action::Plan));
        let options = db::parse_url(url, password.as_deref(), &shown, !read_only)?;
        let policy = Policy {
            strict: self.strict,
            allow_out_of_order: self.allow_out_of_order,
        };
        let lock_timeout = (!self.lock_timeout.is_zero()).then_some(self.lock_timeout);

        if self.exec && self.action.is_some() {
            return Err(Failure::usage(
                "--with-lock runs a command under the lock; it cannot be combined with a subcommand",
            ));
        }
        if self.exec {
            let wait = Deadline::after((!self.timeout.is_zero()).then_some(self.timeout));
            let db = db::connect(&options, &shown, &wait).await?;
            return exec_locked(db, lock_timeout, self.command).await;
        }
        // `-- CMD` runs after a successful `up`, as in every applet; not after another action.
        if !self.command.is_empty() && self.action.is_some() {
            return Err(Failure::usage(
                "-- CMD runs after migrating up; it cannot follow a subcommand",
            ));
        }
        let follow_up = std::mem::take(&mut self.command);

        // Files first: a broken directory fails before any connection.
        let source = source::load(&self.dir, self.format)?;
        tracing::debug!(
            dir = %source.dir.display(),
            format = %source.format,
            migrations = source.migrations.len(),
            "read migrations"
        );
        if source.migrations.is_empty() {
            tracing::warn!(
                "no migrations found in {} (format {})",
                source.dir.display(),
                source.format
            );
        }
        let wait = Deadline::after((!self.timeout.is_zero()).then_some(self.timeout));
        if self.create_database && !read_only {
            db::create_database(&options, &shown, &wait).await?;
        }
        let mut db = db::connect(&options, &shown, &wait).await?;

        let action = self.action.clone().unwrap_or(Action::Up);
        let result = match action {
            Action::Up => up(&mut db, &source, policy, lock_timeout).await,
            Action::Status => status(&mut db, &source).await,
            Action::Plan => plan_only(&mut db, &source, policy).await,
            Action::Baseline { version } => {
                locked!(db, lock_timeout, baseline(&mut db, &source, version))
            }
            Action::New { .. } => unreachable!("handled before connecting"),
            Action::Down { steps, to } => {
                locked!(db, lock_timeout, down(&mut db, &source, steps, to))
            }
            Action::Repair {
                mark_applied,
                checksums,
            } => {
                locked!(
                    db,
                    lock_timeout,
                    repair(&mut db, &source, mark_applied, checksums)
                )
            }
        };
        db.close().await;
        match result {
            Ok(Outcome::Exit(Code::OK)) if !follow_up.is_empty() => Ok(Outcome::Exec(
                initbox_runtime::exec::Command::new(follow_up),
            )),
            other => other,
        }
    }
}

async fn up(
    db: &mut Db,
    source: &Source,
    policy: Policy,
    lock_timeout: Option<Duration>,
) -> Result<Outcome, Failure> {
    // Fast path: everything applied with matching checksums → done, without the lock.
    let applied = db.applied().await?;
    let rows = compare(source, &applied);
    let pending = validate(&rows, policy, false)?;
    if pending.is_empty() && !rows.iter().any(|r| r.state == State::Failed) {
        tracing::info!(
            applied = applied.len(),
            "database {} is up to date ({} migrations applied); nothing to do",
            db.shown,
            applied.iter().filter(|a| a.success).count()
        );
        return Ok(Outcome::OK);
    }
    locked!(db, lock_timeout, apply_pending(db, source, policy))
}

async fn apply_pending(db: &mut Db, source: &Source, policy: Policy) -> Result<Outcome, Failure> {
    db.ensure_table().await?;
    // Re-read under the lock: another replica has usually done the work meanwhile.
    let mut applied = db.applied().await?;
    if applied.is_empty() {
        // A database another tool migrated: record what it applied, then go on.
        adopt::adopt(db, source).await?;
        applied = db.applied().await?;
    }
    let rows = compare(source, &applied);
    let orphan = db.orphan;
    let pending = validate(&rows, policy, true).map_err(|mut f| {
        // Say what this run found while it waited: the migration was still executing on a
        // connection whose initbox was gone, and it ended without completing.
        if let Some((version, conn)) = orphan
            && rows
                .iter()
                .any(|r| r.version == version && r.state == State::Failed)
        {
            f.message = format!(
                "{}; found: migration {version} was still being executed by connection {conn} \
                 when this run started (its initbox process was gone), and that connection \
                 ended without completing it",
                f.message
            );
        }
        f
    })?;
    if pending.is_empty() {
        tracing::info!(
            "database {} is up to date (migrated by another process meanwhile)",
            db.shown
        );
        return Ok(Outcome::OK);
    }
    let started = Instant::now();
    let mut done = 0;
    for m in &pending {
        let t = Instant::now();
        match db.apply(m).await {
            Ok(true) => {
                done += 1;
                tracing::info!(
                    version = m.version(),
                    file = %m.file,
                    transaction = m.mode == source::Mode::Transaction,
                    took = %human(t.elapsed()),
                    "applied migration {} ({})",
                    m.version(),
                    m.migration.description
                );
            }
            Ok(false) => tracing::info!(
                version = m.version(),
                "migration {} was applied by another process meanwhile",
                m.version()
            ),
            Err(e) => return Err(apply_failure(source, m, e)),
        }
    }
    let last = pending.last().map(|m| m.version()).unwrap_or_default();
    tracing::info!(
        applied = done,
        took = %human(started.elapsed()),
        "applied {done} migration{} to {}; now at version {last}",
        if done == 1 { "" } else { "s" },
        db.shown
    );
    Ok(Outcome::OK)
}

fn apply_failure(source: &Source, m: &Local, e: ApplyError) -> Failure {
    let path = source.dir.join(&m.file);
    let at = match &e.statement {
        Some((n, s)) if s.line > 0 => {
            format!(" at statement {n} (line {}: {})", s.line, s.summary())
        }
        Some((n, _)) => format!(" at statement {n}"),
        None => String::new(),
    };
    let after = if e.partial {
        format!(
            "; it may be partly applied and is marked failed in {TABLE}: fix the database by hand, \
             then run `initbox run-migrations repair`"
        )
    } else {
        "; rolled back, the database is unchanged".into()
    };
    Failure::failed(format!(
        "migration {} ({}) failed{at}: {}{after}",
        m.version(),
        path.display(),
        e.error
    ))
}

/// The applied rows, with what another tool's history says when `_sqlx_migrations` is empty
/// (read-only: `up` records them under the lock).
async fn applied_or_foreign(db: &mut Db, source: &Source) -> Result<Vec<db::Applied>, Failure> {
    let applied = db.applied().await?;
    match adopt::preview(db, source, &applied).await? {
        Some((foreign, rows)) => {
            tracing::info!(
                "{} in {} has {} of these migrations applied; `up` adopts them",
                foreign.tool,
                foreign.table,
                rows.len()
            );
            Ok(rows)
        }
        None => Ok(applied),
    }
}

async fn status(db: &mut Db, source: &Source) -> Result<Outcome, Failure> {
    let applied = applied_or_foreign(db, source).await?;
    let rows = compare(source, &applied);
    let mut out = String::from("VERSION               STATE             DESCRIPTION\n");
    for r in &rows {
        // MySQL: a failed marker whose migration a connection is still executing.
        let label = match r.state {
            State::Failed => match db.running(r.version).await {
                Some(conn) => format!("running (connection {conn})"),
                None => r.state.label().to_string(),
            },
            _ => r.state.label().to_string(),
        };
        out.push_str(&format!(
            "{:<21} {:<17} {}\n",
            r.version, label, r.description
        ));
    }
    print!("{out}");
    let count = |f: fn(&State) -> bool| rows.iter().filter(|r| f(&r.state)).count();
    let pending = count(|s| *s == State::Pending);
    let changed = count(|s| matches!(s, State::Changed { .. }));
    let failed = count(|s| *s == State::Failed);
    let unknown = count(|s| *s == State::Unknown);
    tracing::info!(
        applied = count(|s| *s == State::Applied),
        pending,
        changed,
        failed,
        unknown,
        "status of {}",
        db.shown
    );
    Ok(Outcome::Exit(if changed > 0 {
        Code::INVALID_INPUT
    } else if pending > 0 || failed > 0 {
        Code::FAILED
    } else {
        Code::OK
    }))
}

async fn plan_only(db: &mut Db, source: &Source, policy: Policy) -> Result<Outcome, Failure> {
    let applied = applied_or_foreign(db, source).await?;
    let rows = compare(source, &applied);
    let pending = validate(&rows, policy, true)?;
    if pending.is_empty() {
        println!("nothing to apply: {} is up to date", db.shown);
    }
    for m in &pending {
        let statements = m.statements(db.dialect()).len();
        println!(
            "would apply {} {} ({}, {} statement{}, {})",
            m.version(),
            m.migration.description,
            m.file,
            statements,
            if statements == 1 { "" } else { "s" },
            m.mode.describe(&m.parts)
        );
    }
    tracing::info!(pending = pending.len(), "plan for {}", db.shown);
    Ok(Outcome::OK)
}

async fn baseline(db: &mut Db, source: &Source, version: i64) -> Result<Outcome, Failure> {
    if source.get(version).is_none() {
        return Err(Failure::invalid_input(format!(
            "baseline {version}: no migration with that version in {}",
            source.dir.display()
        )));
    }
    db.ensure_table().await?;
    let applied = db.applied().await?;
    if !applied.is_empty() {
        return Err(Failure::failed(format!(
            "baseline {version} refused: {TABLE} already has {} rows (baseline adopts a database \
             with no migration history)",
            applied.len()
        )));
    }
    let mut n = 0;
    for m in source.migrations.iter().filter(|m| m.version() <= version) {
        db.record(m).await?;
        n += 1;
    }
    tracing::info!(
        recorded = n,
        "baseline: recorded {n} migrations up to {version} as applied without running them"
    );
    Ok(Outcome::OK)
}

/// `down`: undo applied migrations, newest first.
async fn down(
    db: &mut Db,
    source: &Source,
    steps: Option<usize>,
    to: Option<i64>,
) -> Result<Outcome, Failure> {
    let applied = db.applied().await?;
    if let Some(f) = applied.iter().find(|a| !a.success) {
        return Err(Failure::failed(format!(
            "migration {} is marked failed in {TABLE}: repair it before undoing anything",
            f.version
        )));
    }
    let mut newest: Vec<i64> = applied.iter().map(|a| a.version).collect();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    let chosen: Vec<i64> = match to {
        Some(v) => newest.into_iter().filter(|x| *x > v).collect(),
        None => newest.into_iter().take(steps.unwrap_or(1)).collect(),
    };
    // Every one must be undoable before any is undone.
    let mut plan = Vec::new();
    for v in &chosen {
        let Some(m) = source.get(*v) else {
            return Err(Failure::invalid_input(format!(
                "down: migration {v} is applied but has no file in {}; nothing was undone",
                source.dir.display()
            )));
        };
        let Some(d) = &m.down else {
            return Err(Failure::invalid_input(format!(
                "down: migration {v} ({}) has no down section or file; nothing was undone",
                m.file
            )));
        };
        plan.push((m, d));
    }
    if plan.is_empty() {
        tracing::info!("down: nothing to undo");
    }
    for (m, d) in plan {
        let t = Instant::now();
        db.revert(m, d).await.map_err(|e| {
            let path = source.dir.join(&d.file);
            let at = match &e.statement {
                Some((n, s)) => format!(" at statement {n} (line {}: {})", s.line, s.summary()),
                None => String::new(),
            };
            Failure::failed(format!(
                "undoing migration {} ({}) failed{at}: {}{}",
                m.version(),
                path.display(),
                e.error,
                if e.partial {
                    "; it may be partly undone (its row is still in the history)"
                } else {
                    "; rolled back, the database is unchanged"
                }
            ))
        })?;
        tracing::info!(
            version = m.version(),
            took = %human(t.elapsed()),
            "undid migration {} ({})",
            m.version(),
            m.migration.description
        );
    }
    Ok(Outcome::OK)
}

async fn repair(
    db: &mut Db,
    source: &Source,
    mark_applied: bool,
    checksums: bool,
) -> Result<Outcome, Failure> {
    let applied = db.applied().await?;
    let rows = compare(source, &applied);
    let mut fixed = 0;
    for r in &rows {
        match (&r.state, r.local) {
            (State::Failed, Some(l)) if mark_applied => {
                db.mark(r.version, &l.migration.checksum).await?;
                tracing::info!(
                    version = r.version,
                    "repair: marked failed migration {} as applied",
                    r.version
                );
                fixed += 1;
            }
            (State::Failed, None) if mark_applied => {
                return Err(Failure::invalid_input(format!(
                    "repair --mark-applied: failed migration {} has no local file",
                    r.version
                )));
            }
            (State::Failed, _) => {
                db.forget(r.version).await?;
                tracing::info!(
                    version = r.version,
                    "repair: cleared the failed marker of migration {}; it runs again on the next up",
                    r.version
                );
                fixed += 1;
            }
            (State::Changed { applied }, Some(l)) if checksums => {
                db.mark(r.version, &l.migration.checksum).await?;
                tracing::info!(
                    version = r.version,
                    old = %plan::hex(applied),
                    new = %plan::hex(&l.migration.checksum),
                    "repair: re-stamped the checksum of migration {}",
                    r.version
                );
                fixed += 1;
            }
            _ => {}
        }
    }
    if fixed == 0 {
        tracing::info!("repair: nothing to repair");
    }
    Ok(Outcome::OK)
}

/// `--exec`: hold the lock while another tool migrates; its exit code is ours.
async fn exec_locked(
    mut db: Db,
    lock_timeout: Option<Duration>,
    command: Vec<OsString>,
) -> Result<Outcome, Failure> {
    if command.is_empty() {
        return Err(Failure::usage("--with-lock needs a command after --"));
    }
    let result = locked!(db, lock_timeout, async move {
        // Stopped (SIGTERM, grace period, SIGKILL to its process group) before the drop
        // returns, so the connection, and with it the lock, outlives the command.
        let cmd = child::Command::new(command)
            .stdin_inherit()
            .stop_before_drop_returns();
        let shown_cmd = cmd.shown();
        let running = cmd.spawn()?;
        tracing::info!(command = %shown_cmd, "running under the migration lock");
        let finished = running.wait().await?;
        tracing::info!(
            command = %shown_cmd,
            code = finished.code.as_i32(),
            took = %human(finished.elapsed),
            "command finished; releasing the migration lock"
        );
        Ok(Outcome::Exit(finished.code))
    });
    db.close().await;
    result
}
