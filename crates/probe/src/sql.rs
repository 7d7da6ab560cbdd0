//! `postgres://`, `postgresql://`, `mysql://`, `mariadb://`: ready when a connection completes
//! and `SELECT 1` (or `--query SQL`) succeeds. One contract for both:
//!
//! - "starting up", "shutting down", "in recovery" (PostgreSQL 57P03/57P01..., too many
//!   connections, I/O errors) are "not yet";
//! - a rejected password or user (28P01/28000, MySQL 1045/1044/1698) is exit 5 at once: waiting
//!   cannot make it right;
//! - a database that does not exist (3D000, MySQL 1049) is exit 3 at once;
//! - with `--query`, the first row must exist and its first column must not be false, 0 or NULL;
//!   an error of the query itself (a table not created yet) is "not yet".

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};

use initbox_runtime::Failure;
use initbox_runtime::target::url_host;
use initbox_runtime::tls::TlsArgs;
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};

enum Opts {
    Pg(Box<PgConnectOptions>),
    My(Box<MySqlConnectOptions>),
}

pub struct SqlProbe {
    shown: String,
    opts: Opts,
    query: Option<String>,
}

impl SqlProbe {
    /// `url` with the password already in it (from the URL itself or a file).
    pub fn new(
        shown: String,
        url: &url::Url,
        query: Option<String>,
        tls: &TlsArgs,
    ) -> Result<Self, Failure> {
        let mut url = url.clone();
        let postgres = matches!(url.scheme(), "postgres" | "postgresql");
        // sqlx knows `postgres` and `mysql`; the aliases mean the same.
        let text = url.as_str().to_string();
        let normal = match text.split_once("://") {
            Some((_, rest)) if postgres => format!("postgres://{rest}"),
            Some((_, rest)) => format!("mysql://{rest}"),
            None => text,
        };
        url = url::Url::parse(&normal)
            .map_err(|e| Failure::usage(format!("'{shown}': not a valid URL: {e}")))?;
        let bad = |e: sqlx::Error| {
            Failure::usage(format!(
                "'{shown}': {}",
                initbox_runtime::redact::scrub(&e.to_string())
            ))
        };
        // sqlx takes the host from `Url::host_str`, brackets and all: `[::1]` would reach the
        // resolver as a name. `url_host` gives the address.
        let opts = if postgres {
            let mut o = PgConnectOptions::from_str(url.as_str()).map_err(bad)?;
            let host = url_host(o.get_host()).to_owned();
            o = o
                .host(&host)
                .application_name("initbox wait-for")
                .disable_statement_logging();
            if let Some(ca) = &tls.ca_file {
                check_readable(ca, "--ca-file")?;
                if !url.query_pairs().any(|(k, _)| k == "sslrootcert") {
                    o = o.ssl_root_cert(ca);
                }
            }
            if let (Some(c), Some(k)) = (&tls.client_cert, &tls.client_key) {
                o = o.ssl_client_cert(c).ssl_client_key(k);
            }
            Opts::Pg(Box::new(o))
        } else {
            let mut o = MySqlConnectOptions::from_str(url.as_str()).map_err(bad)?;
            let host = url_host(o.get_host()).to_owned();
            o = o.host(&host).disable_statement_logging();
            if let Some(ca) = &tls.ca_file {
                check_readable(ca, "--ca-file")?;
                if !url.query_pairs().any(|(k, _)| k == "ssl-ca") {
                    o = o.ssl_ca(ca);
                }
            }
            if let (Some(c), Some(k)) = (&tls.client_cert, &tls.client_key) {
                o = o.ssl_client_cert(c).ssl_client_key(k);
            }
            Opts::My(Box::new(o))
        };
        Ok(SqlProbe { shown, opts, query })
    }

    async fn check(&self) -> Result<String, NotReady> {
        let sql = self.query.as_deref().unwrap_or("SELECT 1");
        match &self.opts {
            Opts::Pg(o) => {
                let mut conn = PgConnection::connect_with(o).await.map_err(classify)?;
                let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_optional(&mut conn)
                    .await;
                let _ = conn.close().await;
                verdict(row.map_err(classify)?, self.query.is_some(), |r| {
                    r.try_get::<Option<bool>, _>(0)
                        .ok()
                        .or_else(|| {
                            r.try_get::<Option<i64>, _>(0)
                                .ok()
                                .map(|v| v.map(|n| n != 0))
                        })
                        .or_else(|| {
                            r.try_get::<Option<i32>, _>(0)
                                .ok()
                                .map(|v| v.map(|n| n != 0))
                        })
                })
            }
            Opts::My(o) => {
                let mut conn = MySqlConnection::connect_with(o).await.map_err(classify)?;
                let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_optional(&mut conn)
                    .await;
                let _ = conn.close().await;
                verdict(row.map_err(classify)?, self.query.is_some(), |r| {
                    r.try_get::<Option<i64>, _>(0)
                        .ok()
                        .map(|v| v.map(|n| n != 0))
                        .or_else(|| r.try_get::<Option<bool>, _>(0).ok())
                })
            }
        }
    }
}

fn check_readable(p: &PathBuf, flag: &str) -> Result<(), Failure> {
    std::fs::metadata(p)
        .map(|_| ())
        .map_err(|e| Failure::invalid_input(format!("{flag} {}: cannot read: {e}", p.display())))
}

/// The first row decides: it must exist, and a boolean-like first column must be true.
fn verdict<R: Row>(
    row: Option<R>,
    custom: bool,
    truth: impl Fn(&R) -> Option<Option<bool>>,
) -> Result<String, NotReady> {
    let what = if custom { "--query" } else { "SELECT 1" };
    let Some(row) = row else {
        return Err(NotReady::retry(format!("{what} returned no row")));
    };
    if row.is_empty() {
        return Ok(format!("{what} succeeded"));
    }
    match truth(&row) {
        Some(Some(false)) => Err(NotReady::retry(format!("{what} returned false"))),
        Some(None) => Err(NotReady::retry(format!("{what} returned NULL"))),
        _ => Ok(format!("{what} succeeded")),
    }
}

/// What a database error means for the wait.
pub fn classify(e: sqlx::Error) -> NotReady {
    let text = initbox_runtime::redact::scrub(&e.to_string())
        .replace('\n', " ")
        .trim()
        .to_string();
    match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|m| m.number());
            let msg = db.message().to_string();
            let msg = initbox_runtime::redact::scrub(&msg).into_owned();
            match (code.as_str(), number) {
                // PostgreSQL
                ("28P01" | "28000", None) => NotReady::Fatal(Failure::credentials(format!(
                    "credentials rejected ({code}): {msg}"
                ))),
                ("3D000", None) => NotReady::Fatal(Failure::invalid_input(format!(
                    "database does not exist ({code}): {msg}"
                ))),
                ("57P03", None) => {
                    NotReady::retry(format!("not accepting connections yet (57P03): {msg}"))
                }
                // MySQL / MariaDB
                (_, Some(1045 | 1044 | 1698 | 1251)) => {
                    NotReady::Fatal(Failure::credentials(format!(
                        "credentials rejected ({}): {msg}",
                        number.unwrap_or_default()
                    )))
                }
                (_, Some(1049)) => NotReady::Fatal(Failure::invalid_input(format!(
                    "database does not exist (1049): {msg}"
                ))),
                (_, Some(n)) => NotReady::retry(format!("error {n}: {msg}")),
                _ => NotReady::retry(format!("{code}: {msg}")),
            }
        }
        sqlx::Error::Configuration(_) => NotReady::Fatal(Failure::usage(text)),
        sqlx::Error::Io(io) => NotReady::retry(crate::net::io_text(io)),
        _ => NotReady::retry(text),
    }
}

impl Probe for SqlProbe {
    fn target(&self) -> String {
        self.shown.clone()
    }
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.check())
    }
}
