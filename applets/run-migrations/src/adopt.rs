//! Adopting a database another tool migrated: goose (`goose_db_version`), golang-migrate
//! (`schema_migrations` with `dirty`), dbmate (`schema_migrations`), sql-migrate
//! (`gorp_migrations`) and Flyway (`flyway_schema_history`).
//!
//! When `_sqlx_migrations` has no rows and one of those tables exists, its applied versions
//! are checked against the files (each must have one; golang-migrate must not be dirty;
//! Flyway must have no failed row), recorded in `_sqlx_migrations` with the files' checksums,
//! and only what is new is applied. The other tool's table is read, never written.

use std::collections::BTreeMap;

use initbox_runtime::Failure;

use crate::db::{Applied, Db, TABLE};
use crate::source::Source;

/// What another tool's history says is applied.
#[derive(Debug)]
pub struct Foreign {
    pub tool: &'static str,
    pub table: &'static str,
    /// Versions applied, as the tool records them.
    pub versions: Vec<i64>,
    /// golang-migrate: every version up to this one counts as applied.
    pub up_to: Option<i64>,
}

/// The tables each tool keeps, and how to read them.
pub async fn read(db: &mut Db) -> Result<Option<Foreign>, Failure> {
    let mut found: Vec<Foreign> = Vec::new();
    let bad = |tool: &str, table: &str, what: String| {
        Failure::invalid_input(format!("{tool}'s history table {table}: {what}"))
    };
    let int = |v: &str, tool: &str, table: &str| {
        v.trim().parse::<i64>().map_err(|_| {
            bad(
                tool,
                table,
                format!("version '{v}' is not an integer version"),
            )
        })
    };

    let goose = db.columns("goose_db_version").await?;
    if !goose.is_empty() {
        let rows = db
            .text_rows(
                "SELECT {version_id}, {is_applied} FROM goose_db_version ORDER BY id",
                &["version_id", "is_applied"],
            )
            .await?;
        // The latest row of each version says whether it is applied (goose appends rows).
        let mut state: BTreeMap<i64, bool> = BTreeMap::new();
        for r in rows {
            let v = int(&r[0], "goose", "goose_db_version")?;
            state.insert(v, truthy(&r[1]));
        }
        found.push(Foreign {
            tool: "goose",
            table: "goose_db_version",
            // goose writes version 0 when it creates its table.
            versions: state
                .into_iter()
                .filter(|(v, applied)| *applied && *v != 0)
                .map(|(v, _)| v)
                .collect(),
            up_to: None,
        });
    }
    let schema = db.columns("schema_migrations").await?;
    if schema.iter().any(|c| c == "dirty") {
        let rows = db
            .text_rows(
                "SELECT {version}, {dirty} FROM schema_migrations",
                &["version", "dirty"],
            )
            .await?;
        if let Some(r) = rows.first() {
            let v = int(&r[0], "golang-migrate", "schema_migrations")?;
            if truthy(&r[1]) {
                return Err(bad(
                    "golang-migrate",
                    "schema_migrations",
                    format!(
                        "version {v} is dirty (a migration failed part-way): fix the database \
                         by hand, then mark it clean (`migrate force {v}`, or \
                         UPDATE schema_migrations SET dirty = false) and run again"
                    ),
                ));
            }
            found.push(Foreign {
                tool: "golang-migrate",
                table: "schema_migrations",
                versions: vec![v],
                up_to: Some(v),
            });
        }
    } else if schema.iter().any(|c| c == "version") {
        let rows = db
            .text_rows("SELECT {version} FROM schema_migrations", &["version"])
            .await?;
        let mut versions = Vec::new();
        for r in rows {
            versions.push(int(&r[0], "dbmate", "schema_migrations")?);
        }
        found.push(Foreign {
            tool: "dbmate",
            table: "schema_migrations",
            versions,
            up_to: None,
        });
    }
    if !db.columns("gorp_migrations").await?.is_empty() {
        let rows = db
            .text_rows("SELECT {id} FROM gorp_migrations", &["id"])
            .await?;
        let mut versions = Vec::new();
        for r in rows {
            // The id is the file name; sql-migrate orders by its numeric prefix.
            let digits: String = r[0].chars().take_while(char::is_ascii_digit).collect();
            versions.push(int(&digits, "sql-migrate", "gorp_migrations").map_err(|_| {
                bad(
                    "sql-migrate",
                    "gorp_migrations",
                    format!("migration id '{}' has no numeric version prefix", r[0]),
                )
            })?);
        }
        found.push(Foreign {
            tool: "sql-migrate",
            table: "gorp_migrations",
            versions,
            up_to: None,
        });
    }
    if !db.columns("flyway_schema_history").await?.is_empty() {
        let rows = db
            .text_rows(
                "SELECT {version}, {type}, {success} FROM flyway_schema_history ORDER BY installed_rank",
                &["version", "type", "success"],
            )
            .await?;
        let mut versions = Vec::new();
        let mut up_to = None;
        for r in rows {
            if !truthy(&r[2]) {
                return Err(bad(
                    "Flyway",
                    "flyway_schema_history",
                    format!(
                        "version {} is recorded as failed: fix the database by hand, then run \
                         `flyway repair` (or delete that row) and run again",
                        r[0]
                    ),
                ));
            }
            // Repeatable migrations have no version; the schema-creation marker is not a
            // migration.
            if r[0].is_empty() || r[1] == "SCHEMA" {
                continue;
            }
            let v = int(&r[0], "Flyway", "flyway_schema_history")?;
            if r[1] == "BASELINE" {
                up_to = Some(up_to.map_or(v, |u: i64| u.max(v)));
            } else {
                versions.push(v);
            }
        }
        found.push(Foreign {
            tool: "Flyway",
            table: "flyway_schema_history",
            versions,
            up_to,
        });
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(Failure::invalid_input(format!(
            "the database holds the histories of several tools ({}); refusing to guess which \
             one is true: drop the stale one",
            found
                .iter()
                .map(|f| format!("{} in {}", f.tool, f.table))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn truthy(s: &str) -> bool {
    matches!(s.trim(), "1" | "t" | "true" | "TRUE" | "T")
}

/// The local migrations the foreign history says are applied, as `_sqlx_migrations` rows;
/// a version in the history with no file is refused (exit 3).
pub fn applied(foreign: &Foreign, source: &Source) -> Result<Vec<Applied>, Failure> {
    for v in &foreign.versions {
        if source.get(*v).is_none() {
            return Err(Failure::invalid_input(format!(
                "{}'s history ({}) has version {v} applied, but {} has no migration with that \
                 version: restore its file (or point --dir at the directory the database was \
                 migrated from) before initbox adopts this database",
                foreign.tool,
                foreign.table,
                source.dir.display()
            )));
        }
    }
    Ok(source
        .migrations
        .iter()
        .filter(|m| {
            foreign.versions.contains(&m.version())
                || foreign.up_to.is_some_and(|u| m.version() <= u)
        })
        .map(|m| Applied {
            version: m.version(),
            description: m.migration.description.to_string(),
            success: true,
            checksum: m.migration.checksum.to_vec(),
        })
        .collect())
}

/// For `status`/`plan` (read-only) and, under the lock, for `up`: when `_sqlx_migrations` is
/// empty, what another tool's history says is applied.
pub async fn preview(
    db: &mut Db,
    source: &Source,
    applied_rows: &[Applied],
) -> Result<Option<(Foreign, Vec<Applied>)>, Failure> {
    if !applied_rows.is_empty() {
        return Ok(None);
    }
    let Some(foreign) = read(db).await? else {
        return Ok(None);
    };
    let rows = applied(&foreign, source)?;
    Ok(Some((foreign, rows)))
}

/// Under the lock, with `_sqlx_migrations` empty: record what the other tool applied.
pub async fn adopt(db: &mut Db, source: &Source) -> Result<(), Failure> {
    let Some((foreign, rows)) = preview(db, source, &[]).await? else {
        return Ok(());
    };
    for r in &rows {
        let m = source.get(r.version).expect("adopted versions have files");
        db.record(m).await?;
    }
    let list: Vec<String> = rows.iter().map(|r| r.version.to_string()).collect();
    tracing::info!(
        tool = foreign.tool,
        table = foreign.table,
        adopted = rows.len(),
        "adopted {} migration{} applied by {} (from {}): {}; recorded in {TABLE} with the files' \
         checksums ({} is left as it is)",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        foreign.tool,
        foreign.table,
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        },
        foreign.table
    );
    Ok(())
}
