//! Reading a migrations directory at run time: sqlx's own layout (`V_name.sql`,
//! `V_name.up.sql`/`.down.sql`, which is also golang-migrate's), goose files and dbmate files.
//!
//! Every format becomes sqlx [`Migration`]s: version, description, the SQL that runs and the
//! SHA-384 checksum sqlx computes over exactly that SQL. For sqlx/golang-migrate directories the
//! SQL is the whole file, as `sqlx::migrate!` embeds it, so both agree on checksums. For goose and
//! dbmate files it is the up section only (the down section never runs and is not checksummed).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use initbox_runtime::Failure;
use sqlx::migrate::{Migration, MigrationType};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use crate::split::{Dialect, Statement, split};

/// The layout of a migrations directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Detect from the files: goose or dbmate markers, otherwise sqlx.
    Auto,
    /// sqlx: `VERSION_name.sql`, or `VERSION_name.up.sql` + `VERSION_name.down.sql`.
    Sqlx,
    /// golang-migrate: `VERSION_name.up.sql` + `VERSION_name.down.sql` (read as sqlx does).
    GolangMigrate,
    /// goose: `VERSION_name.sql` with `-- +goose Up` / `-- +goose Down` sections.
    Goose,
    /// dbmate: `VERSION_name.sql` with `-- migrate:up` / `-- migrate:down` sections.
    Dbmate,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Auto => "auto",
            Format::Sqlx => "sqlx",
            Format::GolangMigrate => "golang-migrate",
            Format::Goose => "goose",
            Format::Dbmate => "dbmate",
        })
    }
}

/// One migration read from the directory.
#[derive(Debug, Clone)]
pub struct Local {
    /// The sqlx migration (version, description, SQL, checksum, no_tx).
    pub migration: Migration,
    /// The file it came from (name only), for messages.
    pub file: String,
    /// Line of the file where the SQL that runs starts (1 for whole files).
    pub first_line: usize,
    /// Statements as the source format delimits them (goose StatementBegin/End); `None`: split
    /// the SQL with the backend's lexer when needed.
    pub statements: Option<Vec<Statement>>,
}

impl Local {
    pub fn version(&self) -> i64 {
        self.migration.version
    }

    pub fn sql(&self) -> &str {
        self.migration.sql.as_str()
    }

    /// The statements of the SQL, with line numbers of the file.
    pub fn statements(&self, dialect: Dialect) -> Vec<Statement> {
        let mut v = match &self.statements {
            Some(s) => s.clone(),
            None => split(self.sql(), dialect),
        };
        for s in &mut v {
            s.line += self.first_line - 1;
        }
        v
    }
}

/// The migrations of a directory, sorted by version, up migrations only.
#[derive(Debug)]
pub struct Source {
    pub dir: PathBuf,
    pub format: Format,
    pub migrations: Vec<Local>,
}

impl Source {
    pub fn get(&self, version: i64) -> Option<&Local> {
        self.migrations
            .binary_search_by_key(&version, |m| m.version())
            .ok()
            .map(|i| &self.migrations[i])
    }
}

fn bad(dir: &Path, file: &str, what: impl fmt::Display) -> Failure {
    Failure::invalid_input(format!(
        "migration file {}: {what}",
        dir.join(file).display()
    ))
}

/// Read and validate every migration in `dir`.
pub fn load(dir: &Path, format: Format) -> Result<Source, Failure> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Failure::invalid_input(format!(
            "cannot read migrations directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut files: Vec<(String, String)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            Failure::invalid_input(format!(
                "cannot read migrations directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = entry.path();
        // Follow symlinks (Kubernetes ConfigMap volumes are symlink farms).
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".go") && format == Format::Goose {
            return Err(bad(
                dir,
                &name,
                "goose Go migrations cannot run outside a Go program",
            ));
        }
        if !name.ends_with(".sql") || name.starts_with('.') {
            continue;
        }
        let text = initbox_runtime::input::read(&path, &format!("migration {}", path.display()))
            .and_then(|b| String::from_utf8(b).map_err(|_| bad(dir, &name, "not valid UTF-8")))?;
        files.push((name, text));
    }
    files.sort();

    let format = match format {
        Format::Auto => detect(&files),
        f => f,
    };

    let mut by_version: BTreeMap<i64, Local> = BTreeMap::new();
    for (name, text) in files {
        let Some(local) = parse_file(dir, format, &name, text)? else {
            continue;
        };
        if let Some(other) = by_version.get(&local.version()) {
            return Err(Failure::invalid_input(format!(
                "duplicate migration version {} in {}: {} and {}",
                local.version(),
                dir.display(),
                other.file,
                local.file
            )));
        }
        by_version.insert(local.version(), local);
    }
    Ok(Source {
        dir: dir.to_path_buf(),
        format,
        migrations: by_version.into_values().collect(),
    })
}

/// goose if any file has `-- +goose` lines, dbmate if any has `-- migrate:up`, else sqlx.
fn detect(files: &[(String, String)]) -> Format {
    let has = |marker: &str| {
        files.iter().any(|(_, text)| {
            text.lines()
                .any(|l| l.trim_start().to_ascii_lowercase().starts_with(marker))
        })
    };
    if has("-- +goose") {
        Format::Goose
    } else if has("-- migrate:up") {
        Format::Dbmate
    } else {
        Format::Sqlx
    }
}

/// `VERSION_rest`: the version (> 0, fits i64) and the rest.
fn version_prefix<'a>(
    dir: &Path,
    name: &'a str,
    expected: &str,
) -> Result<(i64, &'a str), Failure> {
    let (digits, rest) = name
        .split_once('_')
        .ok_or_else(|| bad(dir, name, format!("name does not match {expected}")))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            dir,
            name,
            format!("name does not start with a numeric version ({expected})"),
        ));
    }
    let version: i64 = digits.parse().map_err(|_| {
        bad(
            dir,
            name,
            format!("version {digits} is larger than {}", i64::MAX),
        )
    })?;
    if version == 0 {
        return Err(bad(dir, name, "version 0 is not allowed (sqlx needs > 0)"));
    }
    Ok((version, rest))
}

fn new_migration(
    version: i64,
    description: String,
    kind: MigrationType,
    sql: String,
    no_tx: bool,
) -> Migration {
    Migration::new(
        version,
        Cow::Owned(description),
        kind,
        AssertSqlSafe(sql).into_sql_str(),
        no_tx,
    )
}

fn parse_file(
    dir: &Path,
    format: Format,
    name: &str,
    text: String,
) -> Result<Option<Local>, Failure> {
    match format {
        Format::Sqlx | Format::GolangMigrate | Format::Auto => {
            let expected = if format == Format::GolangMigrate {
                "VERSION_name.up.sql / VERSION_name.down.sql"
            } else {
                "VERSION_name.sql or VERSION_name.up.sql / .down.sql"
            };
            let (version, rest) = version_prefix(dir, name, expected)?;
            let kind = MigrationType::from_filename(rest);
            if format == Format::GolangMigrate && kind == MigrationType::Simple {
                return Err(bad(dir, name, format!("name does not match {expected}")));
            }
            if kind == MigrationType::ReversibleDown {
                return Ok(None);
            }
            // Exactly as sqlx's resolver: suffix dropped, `_` shown as spaces, no-transaction
            // only when the file starts with the marker.
            let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
            let no_tx = text.starts_with("-- no-transaction");
            Ok(Some(Local {
                migration: new_migration(version, description, kind, text, no_tx),
                file: name.to_string(),
                first_line: 1,
                statements: None,
            }))
        }
        Format::Goose => parse_goose(dir, name, &text).map(Some),
        Format::Dbmate => parse_dbmate(dir, name, &text).map(Some),
    }
}

/// The lines of `text` with their 1-based numbers, keeping line endings.
fn lines_with_numbers(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

fn parse_goose(dir: &Path, name: &str, text: &str) -> Result<Local, Failure> {
    let (version, rest) = version_prefix(dir, name, "VERSION_name.sql")?;
    let description = rest.trim_end_matches(".sql").replace('_', " ");

    #[derive(PartialEq)]
    enum Section {
        Before,
        Up,
        Down,
    }
    let mut section = Section::Before;
    let mut no_tx = false;
    let mut sql = String::new();
    let mut first_line = 0;
    let mut statements: Vec<Statement> = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    let mut current_line = 0;
    let mut seen_up = false;

    for (n, line) in lines_with_numbers(text) {
        let trimmed = line.trim();
        let lower = trimmed.to_ascii_lowercase();
        if let Some(cmd) = lower.strip_prefix("-- +goose") {
            let cmd = cmd.trim();
            match cmd {
                "up" => {
                    if seen_up {
                        return Err(bad(dir, name, format!("line {n}: second '-- +goose Up'")));
                    }
                    seen_up = true;
                    section = Section::Up;
                    first_line = n + 1;
                    continue;
                }
                "down" => {
                    section = Section::Down;
                    continue;
                }
                "no transaction" => {
                    no_tx = true;
                    continue;
                }
                "statementbegin" => {
                    if section == Section::Up {
                        if in_block {
                            return Err(bad(
                                dir,
                                name,
                                format!("line {n}: StatementBegin inside a StatementBegin block"),
                            ));
                        }
                        if !current.trim().is_empty() {
                            return Err(bad(
                                dir,
                                name,
                                format!(
                                    "line {n}: StatementBegin after an unterminated statement (missing ';')"
                                ),
                            ));
                        }
                        current.clear();
                        in_block = true;
                        sql.push_str(line);
                    }
                    continue;
                }
                "statementend" => {
                    if section == Section::Up {
                        if !in_block {
                            return Err(bad(
                                dir,
                                name,
                                format!("line {n}: StatementEnd without StatementBegin"),
                            ));
                        }
                        in_block = false;
                        if !current.trim().is_empty() {
                            statements.push(Statement {
                                line: current_line,
                                text: std::mem::take(&mut current),
                            });
                        }
                        current.clear();
                        sql.push_str(line);
                    }
                    continue;
                }
                c if c.starts_with("envsub") => {
                    if c.ends_with("on") {
                        return Err(bad(
                            dir,
                            name,
                            format!(
                                "line {n}: '-- +goose ENVSUB ON' is not supported (render the file with render-config first)"
                            ),
                        ));
                    }
                    continue;
                }
                other => {
                    return Err(bad(
                        dir,
                        name,
                        format!("line {n}: unknown goose annotation '{other}'"),
                    ));
                }
            }
        }
        if section != Section::Up {
            continue;
        }
        sql.push_str(line);
        if !in_block
            && (trimmed.is_empty() || (trimmed.starts_with("--") && current.trim().is_empty()))
        {
            continue;
        }
        if current.trim().is_empty() {
            current.clear();
            current_line = n;
        }
        current.push_str(line);
        // goose: outside a block, a statement ends at a line ending with ';'.
        if !in_block && ends_with_semicolon(trimmed) {
            statements.push(Statement {
                line: current_line,
                text: std::mem::take(&mut current),
            });
        }
    }
    if !seen_up {
        return Err(bad(dir, name, "no '-- +goose Up' annotation"));
    }
    if in_block {
        return Err(bad(dir, name, "StatementBegin without StatementEnd"));
    }
    if !current.trim().is_empty() {
        statements.push(Statement {
            line: current_line,
            text: current,
        });
    }
    // Line numbers of statements are relative to the up section, like split() output.
    for s in &mut statements {
        s.line = s.line + 1 - first_line;
    }
    Ok(Local {
        migration: new_migration(version, description, MigrationType::Simple, sql, no_tx),
        file: name.to_string(),
        first_line,
        statements: Some(statements),
    })
}

fn ends_with_semicolon(trimmed: &str) -> bool {
    // Drop a trailing `-- comment` (a crude but goose-compatible check).
    let code = match trimmed.find("--") {
        Some(i) => trimmed[..i].trim_end(),
        None => trimmed,
    };
    code.ends_with(';')
}

fn parse_dbmate(dir: &Path, name: &str, text: &str) -> Result<Local, Failure> {
    let stem = name.trim_end_matches(".sql");
    let digits_end = stem
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(stem.len());
    if digits_end == 0 {
        return Err(bad(
            dir,
            name,
            "name does not start with a numeric version (VERSION_name.sql)",
        ));
    }
    let version: i64 = stem[..digits_end]
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| bad(dir, name, "version must be between 1 and 2^63-1"))?;
    let description = stem[digits_end..].trim_start_matches('_').replace('_', " ");

    let mut in_up = false;
    let mut ups = 0;
    let mut sql = String::new();
    let mut first_line = 0;
    let mut no_tx: Option<bool> = None;
    for (n, line) in lines_with_numbers(text) {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("-- migrate:") {
            let mut words = rest.split_whitespace();
            match words.next() {
                Some("up") => {
                    ups += 1;
                    in_up = true;
                    if first_line == 0 {
                        first_line = n + 1;
                    }
                    let mut this_no_tx = false;
                    for opt in words {
                        match opt {
                            "transaction:false" => this_no_tx = true,
                            "transaction:true" => {}
                            other => {
                                return Err(bad(
                                    dir,
                                    name,
                                    format!("line {n}: unknown dbmate option '{other}'"),
                                ));
                            }
                        }
                    }
                    if no_tx.is_some_and(|prev| prev != this_no_tx) {
                        return Err(bad(
                            dir,
                            name,
                            format!("line {n}: up sections disagree on transaction:false"),
                        ));
                    }
                    no_tx = Some(this_no_tx);
                    continue;
                }
                Some("down") => {
                    in_up = false;
                    continue;
                }
                _ => {
                    return Err(bad(
                        dir,
                        name,
                        format!("line {n}: unknown dbmate directive '{trimmed}'"),
                    ));
                }
            }
        }
        if in_up {
            if ups > 1 && sql.is_empty() {
                first_line = n;
            }
            sql.push_str(line);
        }
    }
    if ups == 0 {
        return Err(bad(dir, name, "no '-- migrate:up' section"));
    }
    Ok(Local {
        migration: new_migration(
            version,
            description,
            MigrationType::Simple,
            sql,
            no_tx.unwrap_or(false),
        ),
        file: name.to_string(),
        first_line,
        statements: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (n, t) in files {
            std::fs::write(d.path().join(n), t).unwrap();
        }
        d
    }

    #[test]
    fn sqlx_layout_matches_sqlx_resolver() {
        let d = dir_with(&[
            ("1_create_users.sql", "CREATE TABLE users (id int);\n"),
            ("2_add_x.up.sql", "ALTER TABLE users ADD x int;\n"),
            ("2_add_x.down.sql", "ALTER TABLE users DROP x;\n"),
            (
                "3_index.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON users(id);\n",
            ),
            ("README.md", "not a migration"),
        ]);
        let src = load(d.path(), Format::Auto).unwrap();
        assert_eq!(src.format, Format::Sqlx);
        let ours: Vec<_> = src
            .migrations
            .iter()
            .map(|m| {
                (
                    m.version(),
                    m.migration.description.to_string(),
                    m.migration.checksum.to_vec(),
                    m.migration.no_tx,
                )
            })
            .collect();
        let theirs: Vec<_> = sqlx::migrate::resolve_blocking(d.path())
            .unwrap()
            .into_iter()
            .map(|(m, _)| m)
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| {
                (
                    m.version,
                    m.description.to_string(),
                    m.checksum.to_vec(),
                    m.no_tx,
                )
            })
            .collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours.len(), 3);
        assert!(ours[2].3, "no-transaction honoured");
    }

    #[test]
    fn unparseable_and_duplicate_names_are_refused() {
        let d = dir_with(&[("abc_x.sql", "SELECT 1;")]);
        let e = load(d.path(), Format::Sqlx).unwrap_err();
        assert_eq!(e.code, initbox_runtime::Code::INVALID_INPUT);
        assert!(e.message.contains("abc_x.sql"), "{}", e.message);

        let d = dir_with(&[("create.sql", "SELECT 1;")]);
        assert!(load(d.path(), Format::Sqlx).is_err());

        let d = dir_with(&[("1_a.sql", "SELECT 1;"), ("01_b.sql", "SELECT 2;")]);
        let e = load(d.path(), Format::Sqlx).unwrap_err();
        assert!(
            e.message.contains("duplicate migration version 1"),
            "{}",
            e.message
        );
        assert!(e.message.contains("01_b.sql") && e.message.contains("1_a.sql"));

        let d = dir_with(&[("99999999999999999999_a.sql", "SELECT 1;")]);
        assert!(load(d.path(), Format::Sqlx).is_err());
        let d = dir_with(&[("0_a.sql", "SELECT 1;")]);
        assert!(load(d.path(), Format::Sqlx).is_err());
    }

    #[test]
    fn golang_migrate_needs_up_down_names() {
        let d = dir_with(&[
            ("000001_init.up.sql", "CREATE TABLE a (id int);"),
            ("000001_init.down.sql", "DROP TABLE a;"),
        ]);
        let src = load(d.path(), Format::GolangMigrate).unwrap();
        assert_eq!(src.migrations.len(), 1);
        assert_eq!(src.migrations[0].migration.description, "init");
        let d = dir_with(&[("1_init.sql", "CREATE TABLE a (id int);")]);
        assert!(load(d.path(), Format::GolangMigrate).is_err());
    }

    #[test]
    fn goose_up_section_only() {
        let text = "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +goose StatementEnd\nCREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n\n-- +goose Down\nDROP TABLE a;\n";
        let d = dir_with(&[("20240101120000_init.sql", text)]);
        let src = load(d.path(), Format::Auto).unwrap();
        assert_eq!(src.format, Format::Goose);
        let m = &src.migrations[0];
        assert_eq!(m.version(), 20240101120000);
        assert!(!m.sql().contains("DROP TABLE"));
        assert!(m.sql().contains("CREATE TABLE a"));
        assert!(!m.migration.no_tx);
        let st = m.statements(Dialect::Postgres);
        assert_eq!(st.len(), 3, "{st:?}");
        assert!(st[0].text.contains("SELECT 1; $$"));
        assert_eq!(st[0].line, 3);
        assert_eq!(st[1].line, 5);
        assert_eq!(st[2].line, 6);
    }

    #[test]
    fn goose_no_transaction_and_bad_annotations() {
        let d = dir_with(&[(
            "2_idx.sql",
            "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON a(id);\n-- +goose Down\nDROP INDEX i;\n",
        )]);
        let src = load(d.path(), Format::Goose).unwrap();
        assert!(src.migrations[0].migration.no_tx);

        let d = dir_with(&[("3_x.sql", "CREATE TABLE x (id int);\n")]);
        let e = load(d.path(), Format::Goose).unwrap_err();
        assert!(e.message.contains("goose Up"), "{}", e.message);
        let d = dir_with(&[("4_x.sql", "-- +goose Up\n-- +goose ENVSUB ON\nSELECT 1;\n")]);
        assert!(load(d.path(), Format::Goose).is_err());
    }

    #[test]
    fn dbmate_up_section_only() {
        let text =
            "-- migrate:up\nCREATE TABLE users (id int);\n\n-- migrate:down\nDROP TABLE users;\n";
        let d = dir_with(&[
            ("20151129054053_create_users.sql", text),
            (
                "20151129054054_idx.sql",
                "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON users(id);\n-- migrate:down\nDROP INDEX i;\n",
            ),
        ]);
        let src = load(d.path(), Format::Auto).unwrap();
        assert_eq!(src.format, Format::Dbmate);
        assert_eq!(src.migrations[0].migration.description, "create users");
        assert_eq!(src.migrations[0].sql(), "CREATE TABLE users (id int);\n\n");
        assert_eq!(src.migrations[0].first_line, 2);
        assert!(src.migrations[1].migration.no_tx);
        assert!(!src.migrations[0].migration.no_tx);
    }
}
