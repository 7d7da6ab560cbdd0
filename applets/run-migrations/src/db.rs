//! One dedicated database connection (never a pool, so a session lock cannot leak into one),
//! the migration lock on it, and sqlx's `_sqlx_migrations` bookkeeping.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use initbox_runtime::duration::human;
use initbox_runtime::retry::{Attempt, RetryPolicy, retry};
use initbox_runtime::{Deadline, Failure};
use sqlx::migrate::Migrate;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Either, Executor, Row, SqlSafeStr};

use crate::source::{Down, Local, Mode, is_commit, is_transaction_control};
use crate::split::{Dialect, Statement, split};

/// sqlx's bookkeeping table.
pub const TABLE: &str = "_sqlx_migrations";

/// How long one connection attempt may take before it counts as a transient failure.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a long wait logs a progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Connection options for one of the supported servers.
#[derive(Debug, Clone)]
pub enum Options {
    Postgres(PgConnectOptions),
    MySql(MySqlConnectOptions),
    Sqlite(SqliteConnectOptions),
}

/// `--database-url` (with `--password-file`'s password) as connection options.
/// `shown` is the URL with its password masked.
/// `create`: create a missing SQLite file (not for the read-only commands).
pub fn parse_url(
    url: &str,
    password: Option<&str>,
    shown: &str,
    create: bool,
) -> Result<Options, Failure> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let invalid = |e: sqlx::Error| {
        Failure::usage(format!(
            "--database-url {shown}: {}",
            initbox_runtime::redact::scrub(&e.to_string())
        ))
    };
    let me = whoami();
    Ok(match scheme.as_str() {
        "postgres" | "postgresql" => {
            let mut o = PgConnectOptions::from_str(url).map_err(invalid)?;
            // sqlx keeps an IPv6 literal's URL brackets in the host: `[::1]` → `::1`.
            let host = initbox_runtime::target::url_host(o.get_host()).to_owned();
            o = o.host(&host);
            if let Some(p) = password {
                o = o.password(p);
            }
            // Shown in pg_stat_activity, so waiters can name the lock holder.
            Options::Postgres(
                o.application_name(&format!("initbox run-migrations {me}"))
                    .statement_cache_capacity(16)
                    .disable_statement_logging(),
            )
        }
        "mysql" | "mariadb" => {
            let url = match url.strip_prefix("mariadb:") {
                Some(rest) => format!("mysql:{rest}"),
                None => url.to_string(),
            };
            let mut o = MySqlConnectOptions::from_str(&url).map_err(invalid)?;
            let host = initbox_runtime::target::url_host(o.get_host()).to_owned();
            o = o.host(&host);
            if let Some(p) = password {
                o = o.password(p);
            }
            // The server's own session defaults, as the mariadb/mysql client runs files:
            // sqlx would add PIPES_AS_CONCAT and NO_ENGINE_SUBSTITUTION to sql_mode and set
            // time_zone '+00:00', which changes what `||` means and what stored routines
            // capture.
            Options::MySql(
                o.pipes_as_concat(false)
                    .no_engine_substitution(false)
                    .timezone(None)
                    .statement_cache_capacity(16)
                    .disable_statement_logging(),
            )
        }
        "sqlite" => {
            let o = SqliteConnectOptions::from_str(url).map_err(invalid)?;
            Options::Sqlite(
                o.create_if_missing(create)
                    .busy_timeout(Duration::from_secs(30))
                    .statement_cache_capacity(16)
                    .disable_statement_logging(),
            )
        }
        _ => {
            return Err(Failure::usage(format!(
                "--database-url {shown}: unsupported scheme '{scheme}' (expected postgres://, mysql://, mariadb:// or sqlite:)"
            )));
        }
    })
}

/// `host=NAME pid=N`, to identify this process in the server's session list.
pub fn whoami() -> String {
    let host = initbox_runtime::host::name().unwrap_or_else(|| "unknown".into());
    format!("host={host} pid={}", std::process::id())
}

pub enum Conn {
    Postgres(PgConnection),
    MySql(MySqlConnection),
    Sqlite(SqliteConnection),
}

/// The lock this process holds (released explicitly, or by the server when the connection or
/// the process goes away).
enum Held {
    None,
    Postgres(i64),
    MySql(String),
    SqliteFile(File),
    SqliteMemory,
}

pub struct Db {
    pub conn: Conn,
    pub shown: String,
    sqlite_path: Option<PathBuf>,
    held: Held,
    /// MySQL: a migration another connection was applying while this run waited for the lock
    /// (version, connection id): after a SIGKILL the server goes on executing it.
    pub orphan: Option<(i64, i64)>,
}

/// One row of `_sqlx_migrations`.
#[derive(Debug, Clone)]
pub struct Applied {
    pub version: i64,
    pub description: String,
    pub success: bool,
    pub checksum: Vec<u8>,
}

/// Why applying a migration failed.
pub struct ApplyError {
    /// 1-based index of the statement that failed, if known.
    pub statement: Option<(usize, Statement)>,
    pub error: String,
    /// The migration may be partly applied and is recorded as failed.
    pub partial: bool,
}

macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Postgres($c) => $body,
            Conn::MySql($c) => $body,
            Conn::Sqlite($c) => $body,
        }
    };
}

/// The server's message, with its SQLSTATE (and MySQL error number) for searching.
fn db_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            match d.try_downcast_ref::<MySqlDatabaseError>() {
                Some(my) => format!("{} [{code}, error {}]", d.message(), my.number()),
                None if !code.is_empty() => format!("{} [{code}]", d.message()),
                None => d.message().to_string(),
            }
        }
        e => e.to_string(),
    }
}

/// Whether a connection error is worth retrying; fatal ones carry the exit code.
fn classify(e: sqlx::Error, shown: &str) -> Attempt {
    let msg = initbox_runtime::redact::scrub(&db_error(&e)).into_owned();
    match &e {
        sqlx::Error::Io(_) => Attempt::transient(msg),
        sqlx::Error::Database(d) => {
            if let Some(my) = d.try_downcast_ref::<MySqlDatabaseError>() {
                return match my.number() {
                    1045 | 1044 | 1698 => Attempt::Fatal(Failure::credentials(format!(
                        "{shown}: credentials rejected: {msg}"
                    ))),
                    1049 => Attempt::Fatal(Failure::invalid_input(format!(
                        "{shown}: database does not exist: {msg}"
                    ))),
                    // too many connections, server shutting down, host blocked, lost connection
                    1040 | 1053 | 1129 | 1203 | 2002 | 2003 | 2006 | 2013 => {
                        Attempt::transient(msg)
                    }
                    _ => Attempt::Fatal(Failure::failed(format!("{shown}: {msg}"))),
                };
            }
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.as_str() {
                "28P01" | "28000" => Attempt::Fatal(Failure::credentials(format!(
                    "{shown}: credentials rejected: {msg}"
                ))),
                "3D000" => Attempt::Fatal(Failure::invalid_input(format!(
                    "{shown}: database does not exist: {msg}"
                ))),
                // starting up, shutting down, too many connections, connection exceptions
                "57P03" | "57P01" | "57P02" | "53300" | "53000" => Attempt::transient(msg),
                c if c.starts_with("08") => Attempt::transient(msg),
                // SQLite: cannot open / not a database.
                "14" | "26" => Attempt::Fatal(Failure::invalid_input(format!(
                    "{shown}: cannot open the database file: {msg}"
                ))),
                _ => Attempt::Fatal(Failure::failed(format!("{shown}: {msg}"))),
            }
        }
        sqlx::Error::Tls(_) => Attempt::Fatal(Failure::failed(format!("{shown}: TLS: {msg}"))),
        sqlx::Error::Configuration(_) => Attempt::Fatal(Failure::usage(format!("{shown}: {msg}"))),
        _ => Attempt::Fatal(Failure::failed(format!("{shown}: {msg}"))),
    }
}

/// Connect, retrying transient failures until `deadline`; fail fast on credentials and a missing
/// database.
pub async fn connect(options: &Options, shown: &str, deadline: &Deadline) -> Result<Db, Failure> {
    let policy = RetryPolicy {
        min: Duration::from_millis(100),
        max: Duration::from_secs(2),
        ..RetryPolicy::REQUESTS
    };
    let started = Instant::now();
    // Milliseconds after `started` of the last progress line.
    let last_progress = AtomicU64::new(0);
    let what = format!("connect to {shown}");
    let conn = retry(&policy, deadline, &what, |attempt| {
        let last_progress = &last_progress;
        async move {
            let attempt_limit = deadline.cap(ATTEMPT_TIMEOUT);
            let result = tokio::time::timeout(attempt_limit, async {
                match options {
                    Options::Postgres(o) => o.connect().await.map(Conn::Postgres),
                    Options::MySql(o) => o.connect().await.map(Conn::MySql),
                    Options::Sqlite(o) => o.connect().await.map(Conn::Sqlite),
                }
            })
            .await;
            let result = match result {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(e)) => Err(classify(e, shown)),
                Err(_) => Err(Attempt::transient(format!(
                    "no answer within {}",
                    human(attempt_limit)
                ))),
            };
            if let Err(Attempt::Transient { error, .. }) = &result {
                let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let last = last_progress.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= PROGRESS_EVERY.as_millis() as u64 {
                    last_progress.store(now, Ordering::Relaxed);
                    tracing::info!(
                        attempt,
                        waited = %human(started.elapsed()),
                        "waiting for the database {shown}: {error}"
                    );
                }
            }
            result
        }
    })
    .await?;
    if started.elapsed() >= Duration::from_secs(1) {
        tracing::info!(waited = %human(started.elapsed()), "database {shown} is up");
    }
    let sqlite_path = match options {
        Options::Sqlite(o) => {
            let p = o.get_filename();
            let s = p.to_string_lossy();
            (!s.is_empty() && s != ":memory:" && !s.starts_with("file:")).then(|| p.to_path_buf())
        }
        _ => None,
    };
    let mut conn = conn;
    if let Conn::MySql(c) = &mut conn {
        // sqlx's handshake asks for CLIENT_IGNORE_SPACE, which adds IGNORE_SPACE to the
        // session's sql_mode; migrations run under the server's own default, as with the
        // mariadb/mysql client.
        c.execute("SET SESSION sql_mode = @@GLOBAL.sql_mode")
            .await
            .map_err(|e| q(e, "restoring the server's sql_mode"))?;
    }
    Ok(Db {
        conn,
        shown: shown.to_string(),
        sqlite_path,
        held: Held::None,
        orphan: None,
    })
}

/// `--create-database`: create the URL's database when it does not exist, from the server's
/// maintenance database (`postgres`; `information_schema` on MySQL). Another replica creating
/// it at the same moment is fine.
pub async fn create_database(
    options: &Options,
    shown: &str,
    deadline: &Deadline,
) -> Result<(), Failure> {
    let (maintenance, name) = match options {
        Options::Postgres(o) => match o.get_database() {
            Some(n) => (
                Options::Postgres(o.clone().database("postgres")),
                n.to_string(),
            ),
            None => return Ok(()),
        },
        Options::MySql(o) => match o.get_database() {
            Some(n) => (
                Options::MySql(o.clone().database("information_schema")),
                n.to_string(),
            ),
            None => return Ok(()),
        },
        Options::Sqlite(_) => return Ok(()),
    };
    let mut db = connect(&maintenance, shown, deadline).await?;
    let created = match &mut db.conn {
        Conn::Postgres(c) => {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&name)
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| q(e, "looking for the database"))?;
            if exists {
                false
            } else {
                let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
                match c.execute(AssertSqlSafe(sql)).await {
                    Ok(_) => true,
                    // duplicate_database: another replica was faster.
                    Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42P04") => false,
                    Err(e) => return Err(q(e, "creating the database")),
                }
            }
        }
        Conn::MySql(c) => {
            let sql = format!(
                "CREATE DATABASE IF NOT EXISTS `{}`",
                name.replace('`', "``")
            );
            let r = c
                .execute(AssertSqlSafe(sql))
                .await
                .map_err(|e| q(e, "creating the database"))?;
            r.rows_affected() > 0
        }
        Conn::Sqlite(_) => false,
    };
    db.close().await;
    if created {
        tracing::info!("created the database {name} ({shown})");
    }
    Ok(())
}

fn q(e: sqlx::Error, what: &str) -> Failure {
    Failure::failed(format!(
        "{what}: {}",
        initbox_runtime::redact::scrub(&db_error(&e))
    ))
}

impl Db {
    pub fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Postgres(_) => Dialect::Postgres,
            Conn::MySql(_) => Dialect::MySql,
            Conn::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Placeholder `n` (1-based) in this server's syntax.
    fn p(&self, n: usize) -> String {
        match self.conn {
            Conn::Postgres(_) => format!("${n}"),
            _ => "?".into(),
        }
    }

    /// Session settings for the lock holder.
    async fn session_setup(&mut self) -> Result<(), Failure> {
        if let Conn::Postgres(c) = &mut self.conn {
            // Literals in the bookkeeping INSERT rely on standard strings (the default).
            let mut sql = String::from("SET standard_conforming_strings = on;");
            // PostgreSQL 14+: notice a vanished client (a SIGKILLed holder) during a long
            // statement, so its session, transaction and lock end promptly.
            if c.server_version_num().is_some_and(|v| v >= 140000) {
                sql.push_str("SET client_connection_check_interval = '1s';");
            }
            run_script(&mut *c, &sql)
                .await
                .map_err(|(_, e)| q(e, "session set-up"))?;
        }
        Ok(())
    }

    /// The rows of `_sqlx_migrations`; empty when the table does not exist yet. Creates nothing.
    pub async fn applied(&mut self) -> Result<Vec<Applied>, Failure> {
        let sql =
            format!("SELECT version, description, success, checksum FROM {TABLE} ORDER BY version");
        let exists = self.table_exists().await?;
        if !exists {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, String, bool, Vec<u8>)> = on_conn!(&mut self.conn, c => {
            sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&mut *c).await
        })
        .map_err(|e| q(e, &format!("reading {TABLE}")))?;
        Ok(rows
            .into_iter()
            .map(|(version, description, success, checksum)| Applied {
                version,
                description,
                success,
                checksum,
            })
            .collect())
    }

    async fn table_exists(&mut self) -> Result<bool, Failure> {
        let r: Result<bool, sqlx::Error> = match &mut self.conn {
            Conn::Postgres(c) => {
                sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                    .bind(TABLE)
                    .fetch_one(&mut *c)
                    .await
            }
            Conn::MySql(c) => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
            )
            .bind(TABLE)
            .fetch_one(&mut *c)
            .await
            .map(|n| n > 0),
            Conn::Sqlite(c) => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
            )
            .bind(TABLE)
            .fetch_one(&mut *c)
            .await
            .map(|n| n > 0),
        };
        r.map_err(|e| q(e, "checking for the migrations table"))
    }

    /// The (lower-cased) column names of `table` in the current schema; empty when it does not
    /// exist. Creates nothing.
    pub async fn columns(&mut self, table: &str) -> Result<Vec<String>, Failure> {
        let r: Result<Vec<String>, sqlx::Error> = match &mut self.conn {
            Conn::Postgres(c) => {
                sqlx::query_scalar(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1",
                )
                .bind(table)
                .fetch_all(&mut *c)
                .await
            }
            Conn::MySql(c) => {
                sqlx::query_scalar(
                    "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                     WHERE table_schema = DATABASE() AND table_name = ?",
                )
                .bind(table)
                .fetch_all(&mut *c)
                .await
            }
            Conn::Sqlite(c) => {
                sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
                    .bind(table)
                    .fetch_all(&mut *c)
                    .await
            }
        };
        Ok(
            r.map_err(|e| q(e, &format!("reading the columns of {table}")))?
                .into_iter()
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        )
    }

    /// Rows of `template`, where each `{column}` is replaced by that column as text ('' for
    /// NULL).
    pub async fn text_rows(
        &mut self,
        template: &str,
        cols: &[&str],
    ) -> Result<Vec<Vec<String>>, Failure> {
        let as_text = match self.dialect() {
            Dialect::Postgres => "text",
            Dialect::MySql => "CHAR",
            Dialect::Sqlite => "TEXT",
        };
        let mut sql = template.to_string();
        for c in cols {
            sql = sql.replace(
                &format!("{{{c}}}"),
                &format!("COALESCE(CAST({c} AS {as_text}), '')"),
            );
        }
        let n = cols.len();
        let rows: Result<Vec<Vec<String>>, sqlx::Error> = on_conn!(&mut self.conn, c => {
            match sqlx::query(AssertSqlSafe(sql.clone())).fetch_all(&mut *c).await {
                Ok(rows) => rows
                    .iter()
                    .map(|r| (0..n).map(|i| r.try_get::<String, _>(i)).collect())
                    .collect(),
                Err(e) => Err(e),
            }
        });
        rows.map_err(|e| q(e, &format!("reading {sql}")))
    }

    /// Create `_sqlx_migrations` with sqlx's own definition if it does not exist.
    pub async fn ensure_table(&mut self) -> Result<(), Failure> {
        if self.table_exists().await? {
            return Ok(());
        }
        on_conn!(&mut self.conn, c => c.ensure_migrations_table(TABLE).await)
            .map_err(|e| Failure::failed(format!("creating {TABLE}: {e}")))
    }

    // ---------------------------------------------------------------- the lock

    /// A short name of the lock, for log lines.
    pub fn lock_name(&self) -> String {
        match &self.conn {
            Conn::Postgres(_) => "PostgreSQL advisory lock (sqlx's key)".into(),
            Conn::MySql(_) => "MySQL named lock (sqlx's name)".into(),
            Conn::Sqlite(_) => match &self.sqlite_path {
                Some(p) => format!("file lock {}", lock_path(p).display()),
                None => "in-memory database (no lock needed)".into(),
            },
        }
    }

    /// Take the migration lock, polling with the runtime's retry policy until `timeout`.
    /// While waiting, logs who holds it every few seconds.
    pub async fn lock(&mut self, timeout: Option<Duration>) -> Result<(), Failure> {
        let deadline = Deadline::after(timeout);
        let policy = RetryPolicy {
            // Polls are one cheap query; waiters notice a release within ~0.1-0.2 s.
            min: Duration::from_millis(10),
            max: Duration::from_millis(100),
            ..RetryPolicy::REQUESTS
        };
        let started = Instant::now();
        let name = self.lock_name();
        let what = format!("waiting for the migration lock ({name})");
        // Prepare the key once.
        let key = match &mut self.conn {
            Conn::Postgres(c) => {
                let db: String = sqlx::query_scalar("SELECT current_database()")
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| q(e, "reading the database name"))?;
                LockKey::Postgres(lock_id(&db))
            }
            Conn::MySql(c) => {
                let db: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| q(e, "reading the database name"))?;
                let db = db.ok_or_else(|| {
                    Failure::usage(format!("{}: the URL names no database", self.shown))
                })?;
                LockKey::MySql(format!("{:x}", lock_id(&db)))
            }
            Conn::Sqlite(_) => match &self.sqlite_path {
                Some(p) => {
                    let path = lock_path(p);
                    let file = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .mode_0600()
                        .open(&path)
                        .map_err(|e| {
                            Failure::env_refused(format!(
                                "cannot open the lock file {}: {e}",
                                path.display()
                            ))
                        })?;
                    LockKey::File(file)
                }
                None => {
                    self.held = Held::SqliteMemory;
                    return Ok(());
                }
            },
        };
        // The attempts share this state; a tokio mutex keeps the future Send.
        // The first refusal is logged at once, then every few seconds.
        let first = Instant::now()
            .checked_sub(PROGRESS_EVERY)
            .unwrap_or(started);
        // The holder is looked up (pg_locks/processlist) only for a progress line and near the
        // end, not on every poll: those views are not free on a busy server.
        let state = tokio::sync::Mutex::new((&mut *self, Some(key), first, String::new()));
        retry(&policy, &deadline, &what, |_| {
            let state = &state;
            async move {
                let mut guard = state.lock().await;
                let (this, key_slot, last_progress, holder) = &mut *guard;
                let key = key_slot.as_ref().expect("lock key until acquired");
                let acquired = this.try_lock(key).await.map_err(Attempt::Fatal)?;
                if acquired {
                    this.held = match key_slot.take().expect("lock key until acquired") {
                        LockKey::Postgres(k) => Held::Postgres(k),
                        LockKey::MySql(n) => Held::MySql(n),
                        LockKey::File(f) => Held::SqliteFile(f),
                    };
                    return Ok(());
                }
                let key = key_slot.as_ref().expect("lock key until acquired");
                let progress = last_progress.elapsed() >= PROGRESS_EVERY;
                let ending = deadline
                    .remaining()
                    .is_some_and(|r| r < Duration::from_secs(1));
                if progress || ending || holder.is_empty() {
                    *holder = this.holder(key).await;
                    if let LockKey::MySql(name) = key
                        && let Some((version, conn, what)) = this.applying(name).await
                    {
                        this.orphan = Some((version, conn));
                        holder.push_str(&format!(
                            "; connection {conn} is applying migration {version} right now ({what}); \
                             if its initbox process is gone the server still runs the statement and \
                             stops at its next write: this run waits for it (KILL {conn} stops it now)"
                        ));
                    }
                }
                if progress {
                    *last_progress = Instant::now();
                    tracing::info!(
                        waited = %human(started.elapsed()),
                        "waiting for the migration lock: {holder}"
                    );
                }
                Err(Attempt::transient(holder.clone()))
            }
        })
        .await?;
        if started.elapsed() >= Duration::from_millis(200) {
            tracing::info!(waited = %human(started.elapsed()), "migration lock acquired");
        } else {
            tracing::debug!("migration lock acquired");
        }
        self.verify_lock().await?;
        self.session_setup().await?;
        if let Held::SqliteFile(f) = &mut self.held {
            // Tell waiters who holds it.
            let _ = f.set_len(0);
            let _ = f.rewind();
            let _ = writeln!(f, "{}", whoami());
        }
        Ok(())
    }

    async fn try_lock(&mut self, key: &LockKey) -> Result<bool, Failure> {
        match (&mut self.conn, key) {
            (Conn::Postgres(c), LockKey::Postgres(k)) => {
                sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                    .bind(*k)
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| q(e, "pg_try_advisory_lock"))
            }
            (Conn::MySql(c), LockKey::MySql(name)) => {
                // Polled without waiting in the server, so --lock-timeout is exact and the
                // holder is named in between. The result is checked: 1 acquired, 0 held
                // elsewhere, NULL an error (how MariaDB answers sqlx's GET_LOCK(name, -1)).
                let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
                    .bind(name)
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| q(e, "GET_LOCK"))?;
                match got {
                    Some(1) => Ok(true),
                    Some(_) => Ok(false),
                    None => Err(Failure::failed(format!(
                        "GET_LOCK('{name}', 0) returned NULL: the server refused the lock"
                    ))),
                }
            }
            (_, LockKey::File(f)) => {
                use std::os::fd::AsRawFd;
                // SAFETY: flock on a file descriptor we own.
                let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                if rc == 0 {
                    return Ok(true);
                }
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    Ok(false)
                } else {
                    Err(Failure::env_refused(format!("flock: {err}")))
                }
            }
            _ => Err(Failure::failed("internal error: lock kind mismatch")),
        }
    }

    /// MySQL: the name of the lock held while migration `version` runs.
    fn applying_name(main: &str, version: i64) -> String {
        format!("{main}-{version}")
    }

    /// MySQL: a migration marked failed that a connection is still applying (the server keeps
    /// executing after its client was killed): (version, connection id, what it runs).
    async fn applying(&mut self, main: &str) -> Option<(i64, i64, String)> {
        let Conn::MySql(c) = &mut self.conn else {
            return None;
        };
        let failed: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT version FROM {TABLE} WHERE success = FALSE"
        )))
        .fetch_all(&mut *c)
        .await
        .ok()?;
        for v in failed {
            let id: Option<i64> = sqlx::query_scalar("SELECT CAST(IS_USED_LOCK(?) AS SIGNED)")
                .bind(Self::applying_name(main, v))
                .fetch_one(&mut *c)
                .await
                .ok()?;
            if let Some(id) = id {
                let row: Option<(String, i64)> = sqlx::query_as(
                    "SELECT CAST(COALESCE(STATE, COMMAND) AS CHAR), CAST(TIME AS SIGNED) \
                     FROM information_schema.PROCESSLIST WHERE ID = ?",
                )
                .bind(id)
                .fetch_optional(&mut *c)
                .await
                .ok()
                .flatten();
                let what = match row {
                    Some((state, time)) => format!("'{state}' for {time}s"),
                    None => "ending".into(),
                };
                return Some((v, id, what));
            }
        }
        None
    }

    /// MySQL, read-only: the connection still applying failed-marked migration `version`.
    pub async fn running(&mut self, version: i64) -> Option<i64> {
        let Conn::MySql(c) = &mut self.conn else {
            return None;
        };
        let db: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
            .fetch_one(&mut *c)
            .await
            .ok()?;
        let main = format!("{:x}", lock_id(&db?));
        sqlx::query_scalar::<_, Option<i64>>("SELECT CAST(IS_USED_LOCK(?) AS SIGNED)")
            .bind(Self::applying_name(&main, version))
            .fetch_one(&mut *c)
            .await
            .ok()
            .flatten()
    }

    /// Who holds the lock, and how to end that holder if it is stuck.
    async fn holder(&mut self, key: &LockKey) -> String {
        match (&mut self.conn, key) {
            (Conn::Postgres(c), LockKey::Postgres(k)) => {
                let row: Result<Option<PgHolder>, _> = sqlx::query_as(
                    "SELECT a.pid, COALESCE(a.application_name, ''), \
                            COALESCE(host(a.client_addr), 'local socket'), COALESCE(a.state, ''), \
                            COALESCE(EXTRACT(EPOCH FROM now() - a.backend_start)::bigint, 0) \
                     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                     WHERE l.locktype = 'advisory' AND l.granted \
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                       AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 LIMIT 1",
                )
                .bind(*k)
                .fetch_optional(&mut *c)
                .await;
                match row {
                    Ok(Some((pid, app, client, state, age))) => format!(
                        "held by PostgreSQL backend pid {pid} ('{app}', client {client}, {state}, connected {}s); \
                         if that process is gone: SELECT pg_terminate_backend({pid})",
                        age
                    ),
                    Ok(None) => "held by another session (just released?)".into(),
                    Err(e) => format!("held by another session ({})", db_error(&e)),
                }
            }
            (Conn::MySql(c), LockKey::MySql(name)) => {
                let id: Result<Option<i64>, _> =
                    sqlx::query_scalar("SELECT CAST(IS_USED_LOCK(?) AS SIGNED)")
                        .bind(name)
                        .fetch_one(&mut *c)
                        .await;
                let id = match id {
                    Ok(Some(id)) => id,
                    Ok(None) => return "held by another session (just released?)".into(),
                    Err(e) => return format!("held by another session ({})", db_error(&e)),
                };
                let row: Result<Option<(String, String, String, i64)>, _> = sqlx::query_as(
                    "SELECT CAST(USER AS CHAR), CAST(HOST AS CHAR), CAST(COMMAND AS CHAR), CAST(TIME AS SIGNED) \
                     FROM information_schema.PROCESSLIST WHERE ID = ?",
                )
                .bind(id)
                .fetch_optional(&mut *c)
                .await;
                match row {
                    Ok(Some((user, host, command, time))) => format!(
                        "held by connection {id} ({user}@{host}, {command} for {time}s); \
                         if that process is gone: KILL {id}"
                    ),
                    _ => format!("held by connection {id}; if that process is gone: KILL {id}"),
                }
            }
            (_, LockKey::File(f)) => {
                let mut s = String::new();
                let mut f = f;
                let _ = f.rewind();
                // Our own lock file holds one short line; never read more than a page of it.
                let _ = std::io::Read::by_ref(&mut f)
                    .take(4096)
                    .read_to_string(&mut s);
                let s = s.trim();
                if s.is_empty() {
                    "held by another process".into()
                } else {
                    format!("held by {s}")
                }
            }
            _ => "held by another session".into(),
        }
    }

    /// After acquiring: make sure this session really holds it (a transaction-pooling proxy in
    /// between would hand the lock to a session we do not keep).
    async fn verify_lock(&mut self) -> Result<(), Failure> {
        if let (Conn::Postgres(c), Held::Postgres(k)) = (&mut self.conn, &self.held) {
            let held: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = $1)",
            )
            .bind(*k)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| q(e, "checking the lock"))?;
            if !held {
                return Err(Failure::env_refused(
                    "the advisory lock is not held by this session after taking it: is a \
                     transaction-pooling proxy (PgBouncer) in between? Connect to the server directly",
                ));
            }
        }
        Ok(())
    }

    /// Release the lock (also safe when none is held).
    pub async fn unlock(&mut self) -> Result<(), Failure> {
        let held = std::mem::replace(&mut self.held, Held::None);
        match (&mut self.conn, held) {
            (Conn::Postgres(c), Held::Postgres(k)) => {
                let ok: bool = sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
                    .bind(k)
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| q(e, "pg_advisory_unlock"))?;
                if !ok {
                    tracing::warn!("pg_advisory_unlock: the lock was not held by this session");
                }
            }
            (Conn::MySql(c), Held::MySql(name)) => {
                let _: Option<i64> = sqlx::query_scalar("SELECT RELEASE_LOCK(?)")
                    .bind(name)
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| q(e, "RELEASE_LOCK"))?;
            }
            (_, Held::SqliteFile(f)) => {
                let _ = f.set_len(0);
                drop(f); // closing the descriptor releases the flock
            }
            _ => {}
        }
        Ok(())
    }

    /// Close the connection cleanly (for SQLite this also checkpoints the WAL).
    pub async fn close(self) {
        let r = on_conn!(self.conn, c => c.close().await);
        if let Err(e) = r {
            tracing::debug!("closing the connection: {e}");
        }
        drop(self.held);
    }

    // ---------------------------------------------------------------- bookkeeping

    /// Record `m` as applied without running it (baseline).
    pub async fn record(&mut self, m: &Local) -> Result<(), Failure> {
        let sql = format!(
            "INSERT INTO {TABLE} (version, description, success, checksum, execution_time) \
             VALUES ({}, {}, TRUE, {}, -1)",
            self.p(1),
            self.p(2),
            self.p(3)
        );
        let mm = &m.migration;
        on_conn!(&mut self.conn, c => {
            sqlx::query(AssertSqlSafe(sql))
                .bind(mm.version)
                .bind(&*mm.description)
                .bind(&*mm.checksum)
                .execute(&mut *c)
                .await
                .map(|_| ())
        })
        .map_err(|e| q(e, &format!("recording migration {}", mm.version)))
    }

    /// Delete the row of `version` (repair of a failed marker).
    pub async fn forget(&mut self, version: i64) -> Result<(), Failure> {
        let sql = format!("DELETE FROM {TABLE} WHERE version = {}", self.p(1));
        on_conn!(&mut self.conn, c => {
            sqlx::query(AssertSqlSafe(sql)).bind(version).execute(&mut *c).await.map(|_| ())
        })
        .map_err(|e| q(e, &format!("clearing migration {version}")))
    }

    /// Mark `version` as successfully applied with `checksum` (repair).
    pub async fn mark(&mut self, version: i64, checksum: &[u8]) -> Result<(), Failure> {
        let sql = format!(
            "UPDATE {TABLE} SET success = TRUE, checksum = {} WHERE version = {}",
            self.p(1),
            self.p(2)
        );
        on_conn!(&mut self.conn, c => {
            sqlx::query(AssertSqlSafe(sql))
                .bind(checksum)
                .bind(version)
                .execute(&mut *c)
                .await
                .map(|_| ())
        })
        .map_err(|e| q(e, &format!("updating migration {version}")))
    }

    // ---------------------------------------------------------------- applying

    /// Apply one migration the way its format runs it (see [`Mode`]): in a transaction with
    /// its history row where the format and server allow; otherwise with a `success = FALSE`
    /// row first, so a failure after something was committed stays recorded and the next run
    /// refuses until `repair` (and a failure before anything was committed leaves no row).
    /// Returns `Ok(false)` when another migrator applied it meanwhile (SQLite re-check).
    pub async fn apply(&mut self, m: &Local) -> Result<bool, ApplyError> {
        let statements = m.statements(self.dialect());
        // MySQL: a second named lock says which migration this connection is applying, so a
        // later run can tell a migration still executing (its initbox killed) from a failed one.
        let applying = match (&mut self.conn, &self.held) {
            (Conn::MySql(c), Held::MySql(main)) => {
                let name = Self::applying_name(main, m.version());
                let _: Result<Option<i64>, _> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
                    .bind(&name)
                    .fetch_one(&mut *c)
                    .await;
                Some(name)
            }
            _ => None,
        };
        let result = if m.mode == Mode::Transaction {
            self.apply_in_transaction(m, &statements).await
        } else {
            self.apply_outside(m, &statements).await.map(|()| true)
        };
        if let (Some(name), Conn::MySql(c)) = (applying, &mut self.conn) {
            let _: Result<Option<i64>, _> = sqlx::query_scalar("SELECT RELEASE_LOCK(?)")
                .bind(name)
                .fetch_one(&mut *c)
                .await;
        }
        result
    }

    fn insert_sql(&self, success: &str) -> String {
        format!(
            "INSERT INTO {TABLE} (version, description, success, checksum, execution_time) \
             VALUES ({}, {}, {success}, {}, {})",
            self.p(1),
            self.p(2),
            self.p(3),
            self.p(4)
        )
    }

    fn finish_sql(&self) -> String {
        format!(
            "UPDATE {TABLE} SET success = TRUE, execution_time = {} WHERE version = {}",
            self.p(1),
            self.p(2)
        )
    }

    async fn apply_in_transaction(
        &mut self,
        m: &Local,
        statements: &[Statement],
    ) -> Result<bool, ApplyError> {
        let insert_true = self.insert_sql("TRUE");
        let insert_false = self.insert_sql("FALSE");
        let finish = self.finish_sql();
        let exists = format!("SELECT COUNT(*) FROM {TABLE} WHERE version = {}", self.p(1));
        let mm = &m.migration;
        let sql = m.sql().to_string();
        // Nothing to send (an empty up section, a comment-only file): only the row is written
        // (MySQL refuses an empty request with "Query was empty").
        let empty = statements.is_empty();
        let started = Instant::now();
        let first_line = m.first_line();
        let failed_at = |(done, e): (usize, sqlx::Error), partial: bool| {
            locate(statements, None, &e, done, partial)
        };
        match &mut self.conn {
            Conn::Postgres(c) => {
                // One round trip: the migration and its row in one transaction, sent as one
                // simple-query string (the row's values are literals built here, never from
                // the SQL; the session has standard_conforming_strings on).
                let script = format!(
                    "BEGIN;\n{sql}\n;\nINSERT INTO {TABLE} (version, description, success, checksum, execution_time) \
                     VALUES ({}, '{}', TRUE, '\\x{}'::bytea, \
                     (EXTRACT(EPOCH FROM clock_timestamp() - statement_timestamp()) * 1e9)::bigint);\nCOMMIT;",
                    mm.version,
                    mm.description.replace('\'', "''"),
                    crate::plan::hex(&mm.checksum),
                );
                if let Err((done, e)) = run_script(&mut *c, &script).await {
                    pg_rollback_if_needed(c).await;
                    // The server's error position, mapped back to the file (the script's
                    // second line is the file's first line of SQL).
                    let at = pg_error_line(&e, &script).map(|l| l + first_line - 2);
                    // `done` counts BEGIN too.
                    let done = done.saturating_sub(1);
                    return Err(locate(statements, at, &e, done, false));
                }
            }
            Conn::MySql(c) => {
                // As sqlx does: the row goes in first with success = FALSE, in the migration's
                // transaction. DDL commits implicitly in MySQL, so after a failure the row tells
                // whether anything stuck (then it stays, marked failed).
                let other = |e: sqlx::Error, partial: bool| ApplyError {
                    statement: None,
                    error: db_error(&e),
                    partial,
                };
                c.execute("BEGIN").await.map_err(|e| other(e, false))?;
                sqlx::query(AssertSqlSafe(insert_false))
                    .bind(mm.version)
                    .bind(&*mm.description)
                    .bind(&*mm.checksum)
                    .bind(-1i64)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| other(e, false))?;
                if !empty && let Err(e) = run_script(&mut *c, &sql).await {
                    let _ = c.execute("ROLLBACK").await;
                    let left: i64 = sqlx::query_scalar(AssertSqlSafe(exists))
                        .bind(mm.version)
                        .fetch_one(&mut *c)
                        .await
                        .unwrap_or(1);
                    return Err(failed_at(e, left > 0));
                }
                sqlx::query(AssertSqlSafe(finish))
                    .bind(nanos(started.elapsed()))
                    .bind(mm.version)
                    .execute(&mut *c)
                    .await
                    .map_err(|e| other(e, true))?;
                c.execute("COMMIT").await.map_err(|e| other(e, true))?;
            }
            Conn::Sqlite(c) => {
                let other = |e: sqlx::Error| ApplyError {
                    statement: None,
                    error: db_error(&e),
                    partial: false,
                };
                // BEGIN IMMEDIATE takes SQLite's write lock; re-check inside it, so a migrator
                // that does not use our lock (an app's sqlx::migrate!) cannot double-apply.
                let mut tx = c.begin_with("BEGIN IMMEDIATE").await.map_err(other)?;
                let n: i64 = sqlx::query_scalar(AssertSqlSafe(exists))
                    .bind(mm.version)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(other)?;
                if n > 0 {
                    let _ = tx.rollback().await;
                    return Ok(false);
                }
                if !empty && let Err(e) = run_script(&mut *tx, &sql).await {
                    let _ = tx.rollback().await;
                    return Err(failed_at(e, false));
                }
                sqlx::query(AssertSqlSafe(insert_true))
                    .bind(mm.version)
                    .bind(&*mm.description)
                    .bind(&*mm.checksum)
                    .bind(nanos(started.elapsed()))
                    .execute(&mut *tx)
                    .await
                    .map_err(other)?;
                tx.commit().await.map_err(other)?;
            }
        }
        Ok(true)
    }

    /// Undo migration `m` with its down part, and remove its history row: in one transaction
    /// where the format runs it in one; otherwise statement by statement, the row removed last.
    pub async fn revert(&mut self, m: &Local, down: &Down) -> Result<(), ApplyError> {
        let dialect = self.dialect();
        let statements = down.statements(dialect);
        let delete = format!("DELETE FROM {TABLE} WHERE version = {}", m.version());
        let body: String = statements
            .iter()
            .map(|s| {
                let t = s.text.trim_end();
                if t.ends_with(';') {
                    format!("{t}\n")
                } else {
                    format!("{t};\n")
                }
            })
            .collect();
        if down.transaction {
            let script = format!("BEGIN;\n{body}{delete};\nCOMMIT;");
            let result = on_conn!(&mut self.conn, c => run_script(&mut *c, &script).await);
            if let Err((done, e)) = result {
                match &mut self.conn {
                    Conn::Postgres(c) => pg_rollback_if_needed(c).await,
                    conn => {
                        let _ = on_conn!(conn, c => c.execute("ROLLBACK").await.map(|_| ()));
                    }
                }
                return Err(locate(&statements, None, &e, done.saturating_sub(1), false));
            }
            return Ok(());
        }
        for (done, st) in statements.iter().enumerate() {
            let result = on_conn!(&mut self.conn, c => run_script(&mut *c, &st.text).await);
            if let Err((_, e)) = result {
                return Err(locate(&statements, None, &e, done, done > 0));
            }
        }
        on_conn!(&mut self.conn, c => c.execute(AssertSqlSafe(delete.clone())).await.map(|_| ()))
            .map_err(|e| ApplyError {
                statement: None,
                error: db_error(&e),
                partial: true,
            })
    }

    /// The pieces of a migration that does not run in one transaction, in order.
    fn units(&self, m: &Local) -> Vec<Unit> {
        let postgres = self.dialect() == Dialect::Postgres;
        let mut units = Vec::new();
        let outside = |sql: &str, first_line: usize, units: &mut Vec<Unit>| {
            if postgres && m.mode != Mode::Whole {
                // One statement at a time: a multi-statement request is an implicit
                // transaction in PostgreSQL, which CREATE INDEX CONCURRENTLY refuses.
                let statements = match &m.statements {
                    Some(s) => s.clone(),
                    None => {
                        let mut v = split(sql, Dialect::Postgres);
                        for s in &mut v {
                            s.line += first_line - 1;
                        }
                        v
                    }
                };
                units.extend(statements.into_iter().map(|s| Unit {
                    first_line: s.line,
                    sql: s.text,
                    transaction: false,
                }));
            } else {
                units.push(Unit {
                    sql: sql.to_string(),
                    first_line,
                    transaction: false,
                });
            }
        };
        for p in &m.parts {
            if m.mode == Mode::Sections && p.transaction {
                units.push(Unit {
                    sql: p.sql.clone(),
                    first_line: p.first_line,
                    transaction: true,
                });
            } else {
                outside(&p.sql, p.first_line, &mut units);
            }
        }
        units
    }

    async fn apply_outside(
        &mut self,
        m: &Local,
        statements: &[Statement],
    ) -> Result<(), ApplyError> {
        let dialect = self.dialect();
        let mm = &m.migration;
        let started = Instant::now();
        let other = |e: sqlx::Error, partial: bool| ApplyError {
            statement: None,
            error: db_error(&e),
            partial,
        };
        let insert_false = self.insert_sql("FALSE");
        let finish = self.finish_sql();
        let forget = format!("DELETE FROM {TABLE} WHERE version = {}", self.p(1));
        let units = self.units(m);
        on_conn!(&mut self.conn, c => {
            sqlx::query(AssertSqlSafe(insert_false))
                .bind(mm.version)
                .bind(&*mm.description)
                .bind(&*mm.checksum)
                .bind(-1i64)
                .execute(&mut *c)
                .await
                .map(|_| ())
        })
        .map_err(|e| other(e, false))?;

        // Whether anything has been made permanent yet, and whether the file opened its own
        // transaction (BEGIN sent as a statement of its own).
        let mut committed = false;
        let mut in_own_tx = false;
        let mut failure: Option<ApplyError> = None;
        for u in &units {
            let unit_statements = split(&u.sql, dialect);
            if unit_statements.is_empty() {
                continue;
            }
            let sent = if u.transaction {
                format!("BEGIN;\n{}\n;\nCOMMIT;", u.sql)
            } else {
                u.sql.clone()
            };
            let result = on_conn!(&mut self.conn, c => run_script(&mut *c, &sent).await);
            match result {
                Ok(()) => {
                    for s in &unit_statements {
                        if is_commit(s) {
                            committed = true;
                            in_own_tx = false;
                        } else if is_transaction_control(s) {
                            in_own_tx = words_first(s) != "ROLLBACK";
                        } else if !in_own_tx {
                            committed = true;
                        }
                    }
                    if u.transaction {
                        committed = true;
                    }
                }
                Err((done, e)) => {
                    let (done, prefix) = if u.transaction {
                        (done.saturating_sub(1), 1)
                    } else {
                        (done, 0)
                    };
                    let completed = &unit_statements[..done.min(unit_statements.len())];
                    // Replay what completed: a COMMIT made earlier work permanent; outside an
                    // explicit transaction each statement commits on its own, except in
                    // PostgreSQL, where one request is one implicit transaction.
                    let mut open = in_own_tx || u.transaction;
                    let mut touched_tx = open;
                    for s in completed {
                        if is_commit(s) {
                            committed = true;
                            open = false;
                            touched_tx = true;
                        } else if is_transaction_control(s) {
                            open = words_first(s) != "ROLLBACK";
                            touched_tx = true;
                        } else if !open && dialect != Dialect::Postgres {
                            committed = true;
                        }
                    }
                    if touched_tx {
                        match &mut self.conn {
                            Conn::Postgres(c) => pg_rollback_if_needed(c).await,
                            conn => {
                                let _ =
                                    on_conn!(conn, c => c.execute("ROLLBACK").await.map(|_| ()));
                            }
                        }
                    }
                    let at = pg_error_line(&e, &sent).map(|l| l + u.first_line - 1 - prefix);
                    let at =
                        at.or_else(|| unit_statements.get(done).map(|s| s.line + u.first_line - 1));
                    failure = Some(locate(statements, at, &e, done, committed));
                    break;
                }
            }
        }
        if let Some(f) = failure {
            if !f.partial {
                // Nothing was made permanent: no failed marker either.
                let _ = on_conn!(&mut self.conn, c => {
                    sqlx::query(AssertSqlSafe(forget.clone())).bind(mm.version).execute(&mut *c).await.map(|_| ())
                });
            }
            return Err(f);
        }
        on_conn!(&mut self.conn, c => {
            sqlx::query(AssertSqlSafe(finish))
                .bind(nanos(started.elapsed()))
                .bind(mm.version)
                .execute(&mut *c)
                .await
                .map(|_| ())
        })
        .map_err(|e| other(e, true))
    }
}

/// A piece of SQL sent as one request.
struct Unit {
    sql: String,
    /// Line of the file where `sql` starts.
    first_line: usize,
    /// Wrapped in BEGIN … COMMIT (a transactional dbmate section).
    transaction: bool,
}

fn words_first(s: &Statement) -> String {
    s.text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches(';')
        .to_ascii_uppercase()
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The 1-based line of `sent` where PostgreSQL says the error is (its error position).
fn pg_error_line(e: &sqlx::Error, sent: &str) -> Option<usize> {
    let sqlx::Error::Database(d) = e else {
        return None;
    };
    let pg = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    let Some(sqlx::postgres::PgErrorPosition::Original(pos)) = pg.position() else {
        return None;
    };
    // The position counts characters from 1.
    let byte = sent
        .char_indices()
        .nth(pos.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(sent.len());
    Some(1 + sent[..byte].matches('\n').count())
}

/// The failing statement: the one at the error's line when the server gave a position, else
/// the one after the `done` completed statements.
fn locate(
    statements: &[Statement],
    line: Option<usize>,
    e: &sqlx::Error,
    done: usize,
    partial: bool,
) -> ApplyError {
    let statement = match line {
        Some(line) => statements
            .iter()
            .enumerate()
            .rev()
            .find(|(_, s)| s.line <= line)
            .map(|(i, s)| {
                (
                    i + 1,
                    Statement {
                        line,
                        text: s.text.clone(),
                    },
                )
            }),
        None => statements.get(done).cloned().map(|s| (done + 1, s)),
    };
    ApplyError {
        statement,
        error: db_error(e),
        partial,
    }
}

/// After a failed request: roll back only if the session is inside a failed transaction
/// (a ROLLBACK outside one draws "there is no transaction in progress").
async fn pg_rollback_if_needed(c: &mut PgConnection) {
    if c.execute("SELECT 1").await.is_err() {
        let _ = c.execute("ROLLBACK").await;
    }
}

/// Run a script as one multi-statement request; on failure, how many statements completed.
/// (Returns a boxed future: the stream is created here, so the future holds no generic executor,
/// which keeps it `Send` for every lifetime.)
fn run_script<'c, E>(
    ex: E,
    sql: &str,
) -> futures_util::future::BoxFuture<'c, Result<(), (usize, sqlx::Error)>>
where
    E: Executor<'c> + 'c,
{
    let mut stream = sqlx::raw_sql(AssertSqlSafe(sql.to_string()).into_sql_str()).fetch_many(ex);
    Box::pin(async move {
        let mut done = 0usize;
        loop {
            match stream.try_next().await {
                Ok(Some(Either::Left(_))) => done += 1,
                Ok(Some(Either::Right(_))) => {}
                Ok(None) => return Ok(()),
                Err(e) => return Err((done, e)),
            }
        }
    })
}

/// pid, application_name, client, state, seconds connected.
type PgHolder = (i32, String, String, String, i64);

enum LockKey {
    Postgres(i64),
    MySql(String),
    File(File),
}

/// sqlx's lock id (taken from Rails): `0x3d32ad9e * crc32(database name)`, so an application
/// running `sqlx::migrate!` and initbox exclude each other.
pub fn lock_id(database: &str) -> i64 {
    const CRC_IEEE: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    0x3d32ad9e * i64::from(CRC_IEEE.checksum(database.as_bytes()))
}

fn lock_path(db: &std::path::Path) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push("-migrate.lock");
    PathBuf::from(s)
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_id_matches_sqlx() {
        // sqlx: 0x3d32ad9e * crc32_ieee("test"); crc32("test") = 0xd87f7e0c
        assert_eq!(lock_id("test"), 0x3d32ad9e_i64 * 0xd87f7e0c_i64);
        assert_eq!(
            format!("{:x}", lock_id("test")),
            format!("{:x}", 0x3d32ad9e_i64 * 0xd87f7e0c_i64)
        );
    }
}
