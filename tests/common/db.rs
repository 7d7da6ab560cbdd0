//! Scratch databases on this machine's real servers (PostgreSQL trust on 127.0.0.1:5432, MariaDB
//! root without a password) and SQLite files: a fresh database per test, dropped (or deleted)
//! when it ends; queried with the servers' own clients (psql, mariadb, sqlite3).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Postgres,
    Mariadb,
    Sqlite,
}

/// A fresh database, dropped (or deleted) when the test ends.
pub struct Db {
    pub kind: Kind,
    pub name: String,
    /// The SQLite file's directory, removed with it.
    pub dir: Option<tempfile::TempDir>,
    pub file: Option<PathBuf>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

impl Db {
    /// A database named `initbox_migrate_PID_N` (run-migrations' tests).
    pub fn new(kind: Kind) -> Db {
        Db::with_prefix(kind, "initbox_migrate")
    }

    /// A database named `PREFIX_PID_N`: each suite its own prefix on the shared servers.
    pub fn with_prefix(kind: Kind, prefix: &str) -> Db {
        let name = unique(prefix);
        match kind {
            Kind::Postgres => {
                super::require_service("PostgreSQL", "127.0.0.1:5432");
                psql("postgres", &format!("CREATE DATABASE {name}"));
            }
            Kind::Mariadb => {
                super::require_service("MariaDB", "127.0.0.1:3306");
                mariadb("", &format!("CREATE DATABASE {name}"));
            }
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join("app.db");
                return Db {
                    kind,
                    name,
                    file: Some(file),
                    dir: Some(dir),
                };
            }
        }
        Db {
            kind,
            name,
            dir: None,
            file: None,
        }
    }

    pub fn url(&self) -> String {
        match self.kind {
            Kind::Postgres => format!("postgres://postgres@127.0.0.1:5432/{}", self.name),
            Kind::Mariadb => format!("mysql://root@127.0.0.1:3306/{}", self.name),
            Kind::Sqlite => format!("sqlite://{}", self.file.as_ref().unwrap().display()),
        }
    }

    /// Run SQL with the server's own client; rows as lines, columns tab-separated.
    pub fn query(&self, sql: &str) -> String {
        match self.kind {
            Kind::Postgres => psql(&self.name, sql),
            Kind::Mariadb => mariadb(&self.name, sql),
            Kind::Sqlite => {
                let o = Command::new("sqlite3")
                    .arg("-separator")
                    .arg("\t")
                    .arg(self.file.as_ref().unwrap())
                    .arg(sql)
                    .output()
                    .expect("sqlite3 (tests/setup/20-run-migrations.sh installs it)");
                assert!(o.status.success(), "sqlite3 {sql}: {}", super::text(&o));
                String::from_utf8_lossy(&o.stdout).trim().to_string()
            }
        }
    }

    pub fn count(&self, sql: &str) -> i64 {
        let out = self.query(sql);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql} gave {out:?}"))
    }

    /// `version success` lines of `_sqlx_migrations`.
    pub fn history(&self) -> Vec<(i64, bool)> {
        let out = self.query("SELECT version, success FROM _sqlx_migrations ORDER BY version");
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut it = l.split('\t');
                let v = it.next().unwrap().trim().parse().unwrap();
                let s = it.next().unwrap().trim();
                (v, matches!(s, "t" | "1" | "true"))
            })
            .collect()
    }

    pub fn has_table(&self, table: &str) -> bool {
        let sql = match self.kind {
            Kind::Postgres => {
                format!("SELECT count(*) FROM pg_tables WHERE tablename = '{table}'")
            }
            Kind::Mariadb => format!(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{table}'"
            ),
            Kind::Sqlite => {
                format!(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
                )
            }
        };
        self.count(&sql) == 1
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        match self.kind {
            Kind::Postgres => {
                let _ = Command::new("psql")
                    .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                    .arg(format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        self.name
                    ))
                    .output();
            }
            Kind::Mariadb => {
                let _ = Command::new("mariadb")
                    .args(["-h127.0.0.1", "-uroot", "-e"])
                    .arg(format!("DROP DATABASE IF EXISTS {}", self.name))
                    .output();
            }
            Kind::Sqlite => {}
        }
    }
}

pub fn psql(db: &str, sql: &str) -> String {
    let o = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qtA", "-F"])
        .arg("\t")
        .arg("-c")
        .arg(sql)
        .output()
        .expect("psql");
    assert!(o.status.success(), "psql {sql}: {}", super::text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

pub fn mariadb(db: &str, sql: &str) -> String {
    let mut c = Command::new("mariadb");
    c.args(["-h127.0.0.1", "-uroot", "-N", "-B"]);
    if !db.is_empty() {
        c.arg(db);
    }
    let o = c.arg("-e").arg(sql).output().expect("mariadb client");
    assert!(o.status.success(), "mariadb {sql}: {}", super::text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}
