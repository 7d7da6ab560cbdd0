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
    /// sql-migrate: `VERSION_name.sql` with `-- +migrate Up` / `-- +migrate Down` sections.
    SqlMigrate,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Auto => "auto",
            Format::Sqlx => "sqlx",
            Format::GolangMigrate => "golang-migrate",
            Format::Goose => "goose",
            Format::Dbmate => "dbmate",
            Format::SqlMigrate => "sql-migrate",
        })
    }
}

/// How a migration's SQL is sent to the server (each format's own rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// In one transaction together with its history row (sqlx, goose and dbmate by default).
    Transaction,
    /// Outside a transaction (sqlx `-- no-transaction`, goose `NO TRANSACTION`, dbmate
    /// `transaction:false`); on PostgreSQL one statement at a time.
    Statements,
    /// golang-migrate: the whole file as one request, with no transaction added (PostgreSQL
    /// still runs a multi-statement request as one implicit transaction, as it does there).
    Whole,
    /// dbmate with several up sections whose `transaction:` options differ: each section on
    /// its own, in a transaction or not as it says.
    Sections,
}

impl Mode {
    /// For `plan` and log lines.
    pub fn describe(&self, parts: &[Part]) -> String {
        match self {
            Mode::Transaction => "in one transaction with its history row".into(),
            Mode::Statements => "outside a transaction, statement by statement".into(),
            Mode::Whole => {
                "as one request with no transaction added (as golang-migrate runs it)".into()
            }
            Mode::Sections => {
                let each: Vec<String> = parts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        format!(
                            "section {} {}",
                            i + 1,
                            if p.transaction {
                                "in a transaction"
                            } else {
                                "outside a transaction"
                            }
                        )
                    })
                    .collect();
                format!("in {} sections: {}", parts.len(), each.join(", "))
            }
        }
    }
}

/// One piece of a migration's up SQL: the whole file, the goose Up section, or one dbmate up
/// section.
#[derive(Debug, Clone)]
pub struct Part {
    pub sql: String,
    /// Line of the file where `sql` starts.
    pub first_line: usize,
    /// Whether this part runs in a transaction (dbmate sections).
    pub transaction: bool,
}

/// How a migration is undone: its down section or file.
#[derive(Debug, Clone)]
pub struct Down {
    /// The statements as the format delimits them (goose), with line numbers of the file.
    pub statements: Option<Vec<Statement>>,
    /// Otherwise the down text(s) and the line each starts at, split with the server's lexer.
    pub texts: Vec<(String, usize)>,
    /// The file holding them (a `.down.sql` file, or the migration's own file).
    pub file: String,
    /// Run in a transaction together with the removal of the history row.
    pub transaction: bool,
}

impl Down {
    pub fn statements(&self, dialect: Dialect) -> Vec<Statement> {
        match &self.statements {
            Some(s) => s.clone(),
            None => self
                .texts
                .iter()
                .flat_map(|(sql, first_line)| {
                    let mut v = split(sql, dialect);
                    for s in &mut v {
                        s.line += first_line - 1;
                    }
                    v
                })
                .collect(),
        }
    }
}

/// One migration read from the directory.
#[derive(Debug, Clone)]
pub struct Local {
    /// The sqlx migration (version, description, SQL, checksum, no_tx).
    pub migration: Migration,
    /// The file it came from (name only), for messages.
    pub file: String,
    /// The up SQL, in the pieces its format delimits (the migration's SQL is their
    /// concatenation).
    pub parts: Vec<Part>,
    /// Statements as the source format delimits them (goose); `None`: split the SQL with the
    /// backend's lexer when needed.
    pub statements: Option<Vec<Statement>>,
    pub mode: Mode,
    /// How to undo it, when the format carries that.
    pub down: Option<Down>,
}

impl Local {
    pub fn version(&self) -> i64 {
        self.migration.version
    }

    pub fn sql(&self) -> &str {
        self.migration.sql.as_str()
    }

    /// Line of the file where the SQL that runs starts.
    pub fn first_line(&self) -> usize {
        self.parts.first().map(|p| p.first_line).unwrap_or(1)
    }

    /// The statements of the SQL, with line numbers of the file.
    pub fn statements(&self, dialect: Dialect) -> Vec<Statement> {
        match &self.statements {
            Some(s) => s.clone(),
            None => self
                .parts
                .iter()
                .flat_map(|p| {
                    let mut v = split(&p.sql, dialect);
                    for s in &mut v {
                        s.line += p.first_line - 1;
                    }
                    v
                })
                .collect(),
        }
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

/// goose's Go migrations: `VERSION_name.go` (not tests).
fn is_goose_go(name: &str) -> bool {
    name.ends_with(".go")
        && !name.ends_with("_test.go")
        && name
            .split_once('_')
            .is_some_and(|(v, _)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
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
    let mut go_files: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            Failure::invalid_input(format!(
                "cannot read migrations directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // Follow symlinks (Kubernetes ConfigMap volumes are symlink farms). A `.sql` entry
        // that cannot be followed (a dangling link) is an error, as in every tool that reads
        // it: skipping it would skip a migration.
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if name.ends_with(".sql") => {
                return Err(bad(dir, &name, format!("cannot be read: {e}")));
            }
            Err(_) => continue,
        };
        if !meta.is_file() {
            continue;
        }
        if is_goose_go(&name) {
            go_files.push(name);
            continue;
        }
        if !name.ends_with(".sql") {
            continue;
        }
        let text = initbox_runtime::input::read(&path, &format!("migration {}", path.display()))
            .and_then(|b| String::from_utf8(b).map_err(|_| bad(dir, &name, "not valid UTF-8")))?;
        files.push((name, text));
    }
    files.sort();
    go_files.sort();

    let format = match format {
        Format::Auto => detect(dir, &files, &go_files)?,
        f => f,
    };
    if format == Format::Goose
        && let Some(go) = go_files.first()
    {
        return Err(bad(
            dir,
            go,
            "a goose Go migration: it only runs inside the Go program that registers it \
             (goose refuses unregistered ones); nothing was applied",
        ));
    }

    let mut by_version: BTreeMap<i64, Local> = BTreeMap::new();
    let mut down_files: Vec<(i64, Down)> = Vec::new();
    for (name, text) in files {
        let Some(local) = parse_file(dir, format, &name, text)? else {
            continue;
        };
        if local.migration.migration_type == MigrationType::ReversibleDown {
            if let Some(d) = local.down {
                down_files.push((local.migration.version, d));
            }
            continue;
        }
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
    for (version, d) in down_files {
        match by_version.get_mut(&version) {
            Some(m) => m.down = Some(d),
            None => {
                return Err(bad(
                    dir,
                    &d.file,
                    "a down file with no up file of the same version",
                ));
            }
        }
    }
    Ok(Source {
        dir: dir.to_path_buf(),
        format,
        migrations: by_version.into_values().collect(),
    })
}

/// The marker family a line looks like, however it is spaced or cased (so a spelling the
/// strict parser does not accept is refused, never run as plain SQL).
fn marker_family(line: &str) -> Option<&'static str> {
    let squeezed: String = line
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    if squeezed.starts_with("--+goose") {
        Some("goose")
    } else if squeezed.starts_with("--migrate:") {
        Some("dbmate")
    } else if squeezed.starts_with("--+migrate") {
        Some("sql-migrate")
    } else {
        None
    }
}

/// A down marker of any family, however spaced or cased.
fn down_marker(line: &str) -> bool {
    let squeezed: String = line
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    ["--+goosedown", "--migrate:down", "--+migratedown"]
        .iter()
        .any(|m| squeezed.starts_with(m))
}

/// Which format the files are written in; refuses a directory that mixes families or whose
/// files two tools would run differently.
fn detect(dir: &Path, files: &[(String, String)], go_files: &[String]) -> Result<Format, Failure> {
    let mut seen: BTreeMap<&'static str, &str> = BTreeMap::new();
    for (name, text) in files {
        if let Some(family) = text.lines().find_map(marker_family) {
            seen.entry(family).or_insert(name);
        }
    }
    if let Some(go) = go_files.first() {
        seen.entry("goose").or_insert(go);
    }
    if seen.len() > 1 {
        let list: Vec<String> = seen.iter().map(|(f, n)| format!("{f} ({n})")).collect();
        return Err(Failure::invalid_input(format!(
            "migrations directory {}: files of several formats: {}; refusing to guess, \
             pass --format",
            dir.display(),
            list.join(", ")
        )));
    }
    match seen.keys().next() {
        Some(&"goose") => return Ok(Format::Goose),
        Some(&"dbmate") => return Ok(Format::Dbmate),
        Some(&"sql-migrate") => return Ok(Format::SqlMigrate),
        _ => {}
    }
    // sqlx or golang-migrate: the names are the same (`V_name.up.sql`); the two differ in
    // whether a file runs in a transaction. Where that matters for a file, refuse to guess.
    let all_up_down = files
        .iter()
        .all(|(n, _)| n.ends_with(".up.sql") || n.ends_with(".down.sql"));
    if all_up_down {
        for (name, text) in files.iter().filter(|(n, _)| n.ends_with(".up.sql")) {
            if text.starts_with("-- no-transaction") {
                continue;
            }
            if let Some((s, why)) = transaction_sensitive(text) {
                return Err(bad(
                    dir,
                    name,
                    format!(
                        "line {}: {why}; golang-migrate runs a file as written, sqlx in a \
                         transaction, and this directory could be either: pass \
                         --format golang-migrate or --format sqlx",
                        s.line
                    ),
                ));
            }
        }
    }
    Ok(Format::Sqlx)
}

/// The upper-cased words of a statement (code only), for classifying it.
fn words(s: &Statement) -> Vec<String> {
    let code: String = s
        .text
        .lines()
        .map(|l| match l.find("--") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join(" ");
    code.trim_end()
        .trim_end_matches(';')
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect()
}

/// BEGIN / START TRANSACTION / COMMIT / END / ROLLBACK as a statement of its own.
pub fn is_transaction_control(s: &Statement) -> bool {
    let w = words(s);
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    matches!(
        w.as_slice(),
        ["BEGIN"]
            | ["COMMIT"]
            | ["ROLLBACK"]
            | ["BEGIN", "TRANSACTION" | "WORK", ..]
            | ["BEGIN", "ISOLATION", ..]
            | ["START", "TRANSACTION", ..]
            | ["COMMIT", "TRANSACTION" | "WORK" | "AND", ..]
            | ["END", "TRANSACTION" | "WORK"]
            | ["ROLLBACK", "TRANSACTION" | "WORK" | "AND"]
    )
}

/// COMMIT or END: the statement that makes earlier work permanent.
pub fn is_commit(s: &Statement) -> bool {
    is_transaction_control(s)
        && matches!(words(s).first().map(String::as_str), Some("COMMIT" | "END"))
}

/// The first statement that makes running the text inside a transaction differ from running
/// it as written: its own transaction control, or a statement PostgreSQL refuses in a
/// transaction block.
fn transaction_sensitive(text: &str) -> Option<(Statement, String)> {
    for s in split(text, Dialect::Postgres) {
        if is_transaction_control(&s) {
            return Some((
                s.clone(),
                format!("'{}' controls the transaction itself", s.summary()),
            ));
        }
        let w = words(&s);
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        let outside = w.contains(&"CONCURRENTLY")
            && matches!(w.first(), Some(&"CREATE" | &"DROP" | &"REINDEX"))
            || matches!(
                w.as_slice(),
                ["VACUUM", ..]
                    | ["CREATE" | "DROP", "DATABASE" | "TABLESPACE", ..]
                    | ["ALTER", "SYSTEM", ..]
            );
        if outside {
            return Some((
                s.clone(),
                format!("'{}' cannot run inside a transaction block", s.summary()),
            ));
        }
    }
    None
}

/// Refuse a file run in a transaction that controls the transaction itself: its COMMIT would
/// end the migration's transaction early, and a failure after it could not be rolled back.
fn refuse_own_transaction(
    dir: &Path,
    name: &str,
    sql: &str,
    first_line: usize,
    fix: &str,
) -> Result<(), Failure> {
    for s in split(sql, Dialect::Postgres) {
        if is_transaction_control(&s) {
            return Err(bad(
                dir,
                name,
                format!(
                    "line {}: '{}' controls the transaction itself, but the file runs inside \
                     the migration's transaction (its COMMIT would end it early and a failure \
                     after it could not be rolled back); {fix}, or remove the BEGIN/COMMIT",
                    s.line + first_line - 1,
                    s.summary()
                ),
            ));
        }
    }
    Ok(())
}

/// `VERSION_rest`: the version (fits i64; > 0 when `positive`) and the rest.
fn version_prefix<'a>(
    dir: &Path,
    name: &'a str,
    expected: &str,
    positive: Option<&str>,
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
    if version == 0
        && let Some(tool) = positive
    {
        return Err(bad(
            dir,
            name,
            format!("version 0 is not allowed ({tool} needs > 0)"),
        ));
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
            let golang = format == Format::GolangMigrate;
            let expected = if golang {
                "VERSION_name.up.sql / VERSION_name.down.sql"
            } else {
                "VERSION_name.sql or VERSION_name.up.sql / .down.sql"
            };
            let (version, rest) = version_prefix(dir, name, expected, None)?;
            let kind = MigrationType::from_filename(rest);
            if golang && kind == MigrationType::Simple {
                return Err(bad(dir, name, format!("name does not match {expected}")));
            }
            if kind == MigrationType::ReversibleDown {
                let no_tx = !golang && text.starts_with("-- no-transaction");
                return Ok(Some(Local {
                    parts: Vec::new(),
                    migration: new_migration(version, String::new(), kind, String::new(), true),
                    file: name.to_string(),
                    statements: None,
                    mode: Mode::Whole,
                    down: Some(Down {
                        statements: None,
                        texts: vec![(text, 1)],
                        file: name.to_string(),
                        transaction: !golang && !no_tx,
                    }),
                }));
            }
            // A file written for goose or dbmate holds its down part too: run whole, it would
            // be undone at once.
            if let Some((n, _)) = lines_with_numbers(&text).find(|(_, l)| down_marker(l)) {
                return Err(bad(
                    dir,
                    name,
                    format!(
                        "line {n} is a down-section marker, but --format {format} runs the \
                         whole file; pass the file's own format (--format goose / dbmate)"
                    ),
                ));
            }
            // Exactly as sqlx's resolver: suffix dropped, `_` shown as spaces, no-transaction
            // only when the file starts with the marker.
            let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
            let no_tx = !golang && text.starts_with("-- no-transaction");
            let mode = if golang {
                Mode::Whole
            } else if no_tx {
                Mode::Statements
            } else {
                refuse_own_transaction(
                    dir,
                    name,
                    &text,
                    1,
                    "put '-- no-transaction' on its first line (it then runs as written)",
                )?;
                Mode::Transaction
            };
            Ok(Some(Local {
                parts: vec![Part {
                    sql: text.clone(),
                    first_line: 1,
                    transaction: mode == Mode::Transaction,
                }],
                migration: new_migration(version, description, kind, text, no_tx || golang),
                file: name.to_string(),
                statements: None,
                mode,
                down: None,
            }))
        }
        Format::Goose => parse_goose(dir, name, &text).map(Some),
        Format::Dbmate => parse_dbmate(dir, name, &text).map(Some),
        Format::SqlMigrate => parse_sql_migrate(dir, name, &text).map(Some),
    }
}

/// The lines of `text` with their 1-based numbers, keeping line endings.
fn lines_with_numbers(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// A goose annotation, by goose's own rules (internal/sqlparser): a line whose trimmed text
/// starts with `--` and that contains `+goose` is an annotation; it must not be indented;
/// every `--` and the first `+goose` are removed and the rest, trimmed, is matched without
/// regard to case. `None`: not an annotation line.
fn goose_annotation(line: &str) -> Option<Result<&'static str, String>> {
    let line = line.trim_end_matches(['\n', '\r']);
    if !(line.trim().starts_with("--") && line.contains("+goose")) {
        return None;
    }
    if line.starts_with([' ', '\t']) {
        return Some(Err("an indented goose annotation (goose refuses it)".into()));
    }
    let cmd = line.replace("--", "");
    let cmd = cmd.trim().replacen("+goose", "", 1);
    if cmd.contains("+goose") {
        return Some(Err("more than one '+goose' on a line".into()));
    }
    let cmd = cmd.trim().to_ascii_lowercase();
    Some(
        [
            "up",
            "down",
            "statementbegin",
            "statementend",
            "no transaction",
            "envsub on",
            "envsub off",
        ]
        .into_iter()
        .find(|a| *a == cmd)
        .ok_or_else(|| format!("unknown goose annotation '{}'", line.trim())),
    )
}

/// goose's statement end: the last word before a `--` comment ends with `;`.
fn ends_with_semicolon(line: &str) -> bool {
    let mut prev = "";
    for word in line.split_whitespace() {
        if word.starts_with("--") {
            break;
        }
        prev = word;
    }
    prev.ends_with(';')
}

fn parse_goose(dir: &Path, name: &str, text: &str) -> Result<Local, Failure> {
    let (version, rest) = version_prefix(dir, name, "VERSION_name.sql", Some("goose"))?;
    let description = rest.trim_end_matches(".sql").replace('_', " ");

    // goose's state machine, both directions at once (goose parses both when it loads a
    // file, so an error in the Down section refuses the file too).
    #[derive(PartialEq, Clone, Copy)]
    enum St {
        Start,
        Up,
        UpBlock,
        Down,
        DownBlock,
    }
    let mut st = St::Start;
    let mut no_tx = false;
    let mut sql = String::new();
    let mut first_line = 0;
    let mut statements: Vec<Statement> = Vec::new();
    let mut buf = String::new();
    let mut buf_line = 0;
    let mut down: Option<Vec<Statement>> = None;
    let err = |n: usize, what: &str| bad(dir, name, format!("line {n}: {what}"));
    let unfinished = |n: usize, buf: &str| {
        bad(
            dir,
            name,
            format!(
                "line {n}: unfinished SQL statement '{}': missing semicolon? (goose refuses it)",
                Statement {
                    line: 0,
                    text: buf.to_string()
                }
                .summary()
            ),
        )
    };

    for (n, line) in lines_with_numbers(text) {
        let bare = line.trim_end_matches(['\n', '\r']);
        if st == St::Start && bare.trim().is_empty() {
            continue;
        }
        let annotation = goose_annotation(line);
        if annotation.is_none() && marker_family(line) == Some("goose") {
            return Err(err(
                n,
                "looks like a goose annotation but goose does not read it as one ('+goose' \
                 is lower case in goose's rules), so its SQL would run in the wrong section",
            ));
        }
        if let Some(a) = annotation {
            let a = a.map_err(|e| err(n, &e))?;
            match a {
                "up" => {
                    if st != St::Start {
                        return Err(err(n, "a second '-- +goose Up'"));
                    }
                    st = St::Up;
                    first_line = n + 1;
                }
                "down" => {
                    if !matches!(st, St::Up) {
                        return Err(err(
                            n,
                            if st == St::Start {
                                "'-- +goose Down' before '-- +goose Up'"
                            } else {
                                "'-- +goose Down' here (inside a StatementBegin block, or a second Down)"
                            },
                        ));
                    }
                    if !buf.trim().is_empty() {
                        return Err(unfinished(buf_line, &buf));
                    }
                    buf.clear();
                    st = St::Down;
                    down = Some(Vec::new());
                }
                "statementbegin" => {
                    st = match st {
                        St::Up => St::UpBlock,
                        St::Down => St::DownBlock,
                        _ => {
                            return Err(err(
                                n,
                                "'-- +goose StatementBegin' must follow '-- +goose Up' or \
                                 '-- +goose Down' (and not another StatementBegin)",
                            ));
                        }
                    };
                    if st == St::UpBlock {
                        sql.push_str(line);
                    }
                }
                "statementend" => {
                    match st {
                        St::UpBlock => {
                            if !buf.trim().is_empty() {
                                statements.push(Statement {
                                    line: buf_line,
                                    text: buf.trim().to_string(),
                                });
                            }
                            sql.push_str(line);
                            st = St::Up;
                        }
                        St::DownBlock => {
                            if !buf.trim().is_empty()
                                && let Some(d) = down.as_mut()
                            {
                                d.push(Statement {
                                    line: buf_line,
                                    text: buf.trim().to_string(),
                                });
                            }
                            st = St::Down;
                        }
                        _ => {
                            return Err(err(
                                n,
                                "'-- +goose StatementEnd' without '-- +goose StatementBegin'",
                            ));
                        }
                    }
                    buf.clear();
                }
                "no transaction" => no_tx = true,
                "envsub on" => {
                    return Err(err(
                        n,
                        "'-- +goose ENVSUB ON' is not supported (render the file with \
                         render-config first)",
                    ));
                }
                _ => {} // envsub off
            }
            continue;
        }
        // Comments and empty lines before a statement are not part of it.
        if buf.is_empty() && (bare.trim_start().starts_with("--") || bare.is_empty()) {
            if matches!(st, St::Up | St::UpBlock) {
                sql.push_str(line);
            }
            continue;
        }
        if st == St::Start {
            return Err(err(
                n,
                "SQL before '-- +goose Up' (goose refuses it: every statement belongs to a section)",
            ));
        }
        if matches!(st, St::Up | St::UpBlock) {
            sql.push_str(line);
        }
        if buf.trim().is_empty() {
            buf_line = n;
        }
        buf.push_str(bare);
        buf.push('\n');
        if matches!(st, St::Up | St::Down) && ends_with_semicolon(bare) {
            let s = Statement {
                line: buf_line,
                text: buf.trim().to_string(),
            };
            match (st, down.as_mut()) {
                (St::Up, _) => statements.push(s),
                (_, Some(d)) => d.push(s),
                _ => {}
            }
            buf.clear();
        }
    }
    match st {
        St::Start => return Err(bad(dir, name, "no '-- +goose Up' annotation")),
        St::UpBlock | St::DownBlock => {
            return Err(bad(
                dir,
                name,
                "'-- +goose StatementBegin' without StatementEnd",
            ));
        }
        _ => {}
    }
    if !buf.trim().is_empty() {
        return Err(unfinished(buf_line, &buf));
    }
    let mode = if no_tx {
        Mode::Statements
    } else {
        Mode::Transaction
    };
    if !no_tx {
        for s in &statements {
            if is_transaction_control(s) {
                return Err(err(
                    s.line,
                    &format!(
                        "'{}' controls the transaction itself, but goose runs this migration in \
                         a transaction (its COMMIT would end it early); add \
                         '-- +goose NO TRANSACTION', or remove the BEGIN/COMMIT",
                        s.summary()
                    ),
                ));
            }
        }
    }
    Ok(Local {
        migration: new_migration(
            version,
            description,
            MigrationType::Simple,
            sql.clone(),
            no_tx,
        ),
        file: name.to_string(),
        parts: vec![Part {
            sql,
            first_line,
            transaction: !no_tx,
        }],
        statements: Some(statements),
        mode,
        down: down.map(|statements| Down {
            statements: Some(statements),
            texts: Vec::new(),
            file: name.to_string(),
            transaction: !no_tx,
        }),
    })
}

/// A sql-migrate annotation, by its parser's rules (sqlparse): the line starts with exactly
/// `-- +migrate `, then white-space separated words: the command (`Up`, `Down`,
/// `StatementBegin`, `StatementEnd`, as written) and options (`notransaction`).
fn sql_migrate_annotation(line: &str) -> Option<(&str, bool)> {
    let rest = line
        .trim_end_matches(['\n', '\r'])
        .strip_prefix("-- +migrate ")?;
    let mut words = rest.split_whitespace();
    let cmd = words.next()?;
    let no_tx = words.any(|w| w == "notransaction");
    matches!(cmd, "Up" | "Down" | "StatementBegin" | "StatementEnd").then_some((cmd, no_tx))
}

fn parse_sql_migrate(dir: &Path, name: &str, text: &str) -> Result<Local, Failure> {
    // sql-migrate orders by the numeric prefix of the name.
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Err(bad(
            dir,
            name,
            "name does not start with a numeric version (VERSION_name.sql)",
        ));
    }
    let version: i64 = digits
        .parse()
        .map_err(|_| bad(dir, name, format!("version is larger than {}", i64::MAX)))?;
    let description = name[digits.len()..]
        .trim_end_matches(".sql")
        .trim_start_matches(['_', '-'])
        .replace('_', " ");

    #[derive(PartialEq, Clone, Copy)]
    enum St {
        None,
        Up,
        Down,
    }
    let mut st = St::None;
    let mut in_block = false;
    let mut no_tx = false;
    let mut seen = false;
    let mut sql = String::new();
    let mut first_line = 0;
    let mut up: Vec<Statement> = Vec::new();
    let mut down: Vec<Statement> = Vec::new();
    let mut buf = String::new();
    let mut buf_line = 0;
    for (n, line) in lines_with_numbers(text) {
        let bare = line.trim_end_matches(['\n', '\r']);
        match sql_migrate_annotation(line) {
            Some((cmd, opt)) => {
                seen = true;
                match cmd {
                    "Up" | "Down" => {
                        if !buf.trim().is_empty() {
                            return Err(bad(
                                dir,
                                name,
                                format!(
                                    "line {buf_line}: unfinished SQL statement: missing semicolon? \
                                     (sql-migrate refuses it)"
                                ),
                            ));
                        }
                        buf.clear();
                        if cmd == "Up" {
                            st = St::Up;
                            no_tx |= opt;
                            if first_line == 0 {
                                first_line = n + 1;
                            }
                        } else {
                            st = St::Down;
                        }
                    }
                    "StatementBegin" => {
                        in_block = true;
                        if st == St::Up {
                            sql.push_str(line);
                        }
                    }
                    _ => {
                        if in_block && !buf.trim().is_empty() {
                            let s = Statement {
                                line: buf_line,
                                text: buf.trim().to_string(),
                            };
                            match st {
                                St::Up => up.push(s),
                                St::Down => down.push(s),
                                St::None => {}
                            }
                        }
                        if st == St::Up {
                            sql.push_str(line);
                        }
                        in_block = false;
                        buf.clear();
                    }
                }
                continue;
            }
            None if marker_family(line) == Some("sql-migrate") => {
                return Err(bad(
                    dir,
                    name,
                    format!(
                        "line {n}: looks like a sql-migrate annotation but sql-migrate does not \
                         read it as one (it must be '-- +migrate Up' etc., spelled exactly so), \
                         so its SQL would run in the wrong section or not at all"
                    ),
                ));
            }
            None => {}
        }
        if st == St::Up {
            sql.push_str(line);
        }
        if st == St::None {
            if !bare.trim().is_empty() && !bare.trim_start().starts_with("--") {
                tracing::warn!(
                    "{}: line {n}: SQL before '-- +migrate Up' is ignored (as sql-migrate ignores it)",
                    dir.join(name).display()
                );
            }
            continue;
        }
        if buf.trim().is_empty() && (bare.trim().is_empty() || bare.trim_start().starts_with("--"))
        {
            continue;
        }
        if buf.trim().is_empty() {
            buf.clear();
            buf_line = n;
        }
        buf.push_str(bare);
        buf.push('\n');
        if !in_block && ends_with_semicolon(bare) {
            let s = Statement {
                line: buf_line,
                text: buf.trim().to_string(),
            };
            if st == St::Up {
                up.push(s);
            } else {
                down.push(s);
            }
            buf.clear();
        }
    }
    if !seen {
        return Err(bad(
            dir,
            name,
            "no '-- +migrate Up' / '-- +migrate Down' annotation (sql-migrate refuses it)",
        ));
    }
    if !buf.trim().is_empty() {
        return Err(bad(
            dir,
            name,
            format!(
                "line {buf_line}: unfinished SQL statement: missing semicolon? (sql-migrate \
                 refuses it)"
            ),
        ));
    }
    if !no_tx {
        for s in &up {
            if is_transaction_control(s) {
                return Err(bad(
                    dir,
                    name,
                    format!(
                        "line {}: '{}' controls the transaction itself, but sql-migrate runs this \
                         migration in a transaction; add 'notransaction' to '-- +migrate Up', or \
                         remove the BEGIN/COMMIT",
                        s.line,
                        s.summary()
                    ),
                ));
            }
        }
    }
    Ok(Local {
        migration: new_migration(
            version,
            description,
            MigrationType::Simple,
            sql.clone(),
            no_tx,
        ),
        file: name.to_string(),
        parts: vec![Part {
            sql,
            first_line: first_line.max(1),
            transaction: !no_tx,
        }],
        statements: Some(up),
        mode: if no_tx {
            Mode::Statements
        } else {
            Mode::Transaction
        },
        down: Some(Down {
            statements: Some(down),
            texts: Vec::new(),
            file: name.to_string(),
            transaction: !no_tx,
        }),
    })
}

/// A dbmate directive, by dbmate's expressions `(?m)^--\s*migrate:up(\s*$|\s+\S+)` (and
/// down): at the very start of the line, any spacing after `--`, case as written. Returns the
/// direction and the options text.
fn dbmate_directive(line: &str) -> Option<(bool, &str)> {
    let line = line.trim_end_matches(['\n', '\r']);
    let rest = line.strip_prefix("--")?.trim_start();
    let rest = rest.strip_prefix("migrate:")?;
    let (up, after) = if let Some(a) = rest.strip_prefix("up") {
        (true, a)
    } else {
        (false, rest.strip_prefix("down")?)
    };
    if after.is_empty() || after.starts_with(char::is_whitespace) {
        Some((up, after.trim()))
    } else {
        None
    }
}

fn parse_dbmate(dir: &Path, name: &str, text: &str) -> Result<Local, Failure> {
    // dbmate: `^(\d+).*\.sql$`; the version is the digits.
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
        .map_err(|_| bad(dir, name, format!("version is larger than {}", i64::MAX)))?;
    let description = stem[digits_end..].trim_start_matches('_').replace('_', " ");

    // Sections: each `migrate:up` starts one, which needs exactly one `migrate:down` after it.
    let mut parts: Vec<Part> = Vec::new();
    let mut downs_in_section = 0;
    let mut in_up = false;
    let mut downs: Vec<(String, usize)> = Vec::new();
    let mut down_tx = true;
    let no_transaction = |options: &str| {
        options
            .split_whitespace()
            .filter_map(|kv| {
                let mut it = kv.split(':');
                match (it.next(), it.next(), it.next()) {
                    (Some(k), Some(v), None) => Some((k, v)),
                    _ => None,
                }
            })
            .any(|(k, v)| k == "transaction" && v == "false")
    };
    for (n, line) in lines_with_numbers(text) {
        let directive = dbmate_directive(line);
        if directive.is_none() && marker_family(line) == Some("dbmate") {
            return Err(bad(
                dir,
                name,
                format!(
                    "line {n}: looks like a dbmate directive but dbmate does not read it as one \
                     (it must start the line, as '-- migrate:up' / '-- migrate:down' in lower \
                     case), so its SQL would run in the wrong section"
                ),
            ));
        }
        if let Some((up, options)) = directive {
            if up {
                if let Some(p) = parts.last()
                    && downs_in_section == 0
                {
                    return Err(bad(
                        dir,
                        name,
                        format!(
                            "line {}: the up section has no '-- migrate:down' (dbmate requires one)",
                            p.first_line - 1
                        ),
                    ));
                }
                // dbmate's options: `key:value` pairs; only transaction:false matters,
                // anything else is ignored as dbmate ignores it.
                let transaction = !options
                    .split_whitespace()
                    .filter_map(|kv| {
                        let mut it = kv.split(':');
                        match (it.next(), it.next(), it.next()) {
                            (Some(k), Some(v), None) => Some((k, v)),
                            _ => None,
                        }
                    })
                    .any(|(k, v)| k == "transaction" && v == "false");
                parts.push(Part {
                    sql: String::new(),
                    first_line: n + 1,
                    transaction,
                });
                downs_in_section = 0;
                in_up = true;
            } else {
                if parts.is_empty() {
                    return Err(bad(
                        dir,
                        name,
                        format!("line {n}: '-- migrate:down' before '-- migrate:up'"),
                    ));
                }
                downs_in_section += 1;
                if downs_in_section > 1 {
                    return Err(bad(
                        dir,
                        name,
                        format!("line {n}: a second '-- migrate:down' in one section"),
                    ));
                }
                in_up = false;
                down_tx &= !no_transaction(options);
                downs.push((String::new(), n + 1));
            }
            continue;
        }
        match parts.last_mut() {
            None => {
                let t = line.trim();
                if !t.is_empty() && !t.starts_with("--") {
                    return Err(bad(
                        dir,
                        name,
                        format!(
                            "line {n}: SQL before '-- migrate:up' (dbmate refuses statements \
                             outside its blocks)"
                        ),
                    ));
                }
            }
            Some(p) if in_up => p.sql.push_str(line),
            Some(_) => {
                if let Some((text, _)) = downs.last_mut() {
                    text.push_str(line);
                }
            }
        }
    }
    let Some(last) = parts.last() else {
        return Err(bad(dir, name, "no '-- migrate:up' section"));
    };
    if downs_in_section == 0 {
        return Err(bad(
            dir,
            name,
            format!(
                "line {}: the up section has no '-- migrate:down' (dbmate requires one)",
                last.first_line - 1
            ),
        ));
    }
    let all_tx = parts.iter().all(|p| p.transaction);
    let none_tx = parts.iter().all(|p| !p.transaction);
    let mode = if all_tx {
        Mode::Transaction
    } else if none_tx {
        Mode::Statements
    } else {
        Mode::Sections
    };
    for p in parts.iter().filter(|p| p.transaction) {
        refuse_own_transaction(
            dir,
            name,
            &p.sql,
            p.first_line,
            "add 'transaction:false' to its '-- migrate:up' line",
        )?;
    }
    let sql: String = parts.iter().map(|p| p.sql.as_str()).collect();
    Ok(Local {
        migration: new_migration(version, description, MigrationType::Simple, sql, !all_tx),
        file: name.to_string(),
        parts,
        statements: None,
        mode,
        down: Some(Down {
            statements: None,
            texts: downs,
            file: name.to_string(),
            transaction: down_tx,
        }),
    })
}

/// The UTC time as `YYYYMMDDHHMMSS` (the timestamp versions sqlx, goose and dbmate write).
fn utc_stamp(secs: u64) -> i64 {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, min, sec) = (
        (rem / 3600) as i64,
        (rem % 3600 / 60) as i64,
        (rem % 60) as i64,
    );
    ((((y * 100 + m) * 100 + d) * 100 + h) * 100 + min) * 100 + sec
}

/// `new NAME`: write the next migration file(s) in the directory's format; returns the paths.
pub fn new_files(dir: &Path, format: Format, name: &str) -> Result<Vec<PathBuf>, Failure> {
    let name = name.trim().replace([' ', '-'], "_");
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Failure::usage(
            "new: NAME may hold letters, digits, '_', '-' and spaces only",
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::env_refused(format!("new: cannot create {}: {e}", dir.display())))?;
    let source = load(dir, format)?;
    let format = if source.migrations.is_empty() && format == Format::Auto {
        Format::Sqlx
    } else {
        source.format
    };
    let max = source.migrations.iter().map(Local::version).max();
    // Directories numbered 1, 2, 3 (goose -s, golang-migrate -seq) go on numbering, with the
    // same zero padding; others get the UTC time.
    let width = source
        .migrations
        .iter()
        .map(|m| m.file.bytes().take_while(u8::is_ascii_digit).count())
        .max()
        .unwrap_or(0);
    let version = match max {
        Some(v) if v < 1_000_000_000 => v + 1,
        _ => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            utc_stamp(now).max(max.map_or(0, |v| v + 1))
        }
    };
    let v = if max.is_some_and(|m| m < 1_000_000_000) {
        format!("{version:0width$}")
    } else {
        version.to_string()
    };
    let reversible = source.migrations.iter().any(|m| m.down.is_some());
    let files: Vec<(String, &str)> = match format {
        Format::Goose => vec![(
            format!("{v}_{name}.sql"),
            "-- +goose Up\n-- +goose StatementBegin\nSELECT 'up SQL query';\n-- +goose StatementEnd\n\n\
             -- +goose Down\n-- +goose StatementBegin\nSELECT 'down SQL query';\n-- +goose StatementEnd\n",
        )],
        Format::Dbmate => vec![(
            format!("{v}_{name}.sql"),
            "-- migrate:up\n\n\n-- migrate:down\n\n",
        )],
        Format::SqlMigrate => vec![(
            format!("{v}-{name}.sql"),
            "\n-- +migrate Up\n\n-- +migrate Down\n",
        )],
        Format::GolangMigrate => vec![
            (format!("{v}_{name}.up.sql"), ""),
            (format!("{v}_{name}.down.sql"), ""),
        ],
        _ if reversible => vec![
            (
                format!("{v}_{name}.up.sql"),
                "-- Add up migration script here\n",
            ),
            (
                format!("{v}_{name}.down.sql"),
                "-- Add down migration script here\n",
            ),
        ],
        _ => vec![(format!("{v}_{name}.sql"), "-- Add migration script here\n")],
    };
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(&file);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Failure::env_refused(format!("new: {}: {e}", path.display())))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(|e| Failure::env_refused(format!("new: {}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
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
        // Version 0 is valid for sqlx (its own tests start at 0_setup.sql) and golang-migrate,
        // not for goose.
        let d = dir_with(&[("0_a.sql", "SELECT 1;")]);
        assert_eq!(
            load(d.path(), Format::Sqlx).unwrap().migrations[0].version(),
            0
        );
        let d = dir_with(&[("0_a.up.sql", "SELECT 1;"), ("0_a.down.sql", "SELECT 1;")]);
        assert_eq!(
            load(d.path(), Format::GolangMigrate)
                .unwrap()
                .migrations
                .len(),
            1
        );
        let d = dir_with(&[("0_a.sql", "-- +goose Up\nSELECT 1;\n")]);
        assert!(load(d.path(), Format::Goose).is_err());
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
        assert_eq!(src.migrations[0].first_line(), 2);
        assert!(src.migrations[1].migration.no_tx);
        assert!(!src.migrations[0].migration.no_tx);
    }

    fn goose_up(text: &str) -> Result<Local, Failure> {
        let d = dir_with(&[("1_x.sql", text)]);
        load(d.path(), Format::Auto).map(|s| {
            assert_eq!(s.format, Format::Goose);
            s.migrations.into_iter().next().unwrap()
        })
    }

    /// goose's annotation rules (internal/sqlparser): any spacing after `--` and around
    /// `+goose`, any case; indented or unknown annotations and SQL before Up are refused.
    #[test]
    fn goose_marker_spellings() {
        for up in [
            "-- +goose Up",
            "--+goose Up",
            "--  +goose Up",
            "-- +goose up",
            "-- +goose UP  ",
            "-- +goose   Up",
            "-- +goose Up\r",
        ] {
            let text = format!("{up}\nCREATE TABLE a (id int);\n--+goose  Down\nDROP TABLE a;\n");
            let m = goose_up(&text).unwrap_or_else(|e| panic!("{up:?}: {}", e.message));
            assert!(!m.sql().contains("DROP"), "{up:?}: {}", m.sql());
            assert_eq!(m.statements(Dialect::Postgres).len(), 1);
        }
        for (text, why) in [
            ("  -- +goose Up\nSELECT 1;\n", "indented"),
            ("-- +goose Upp\nSELECT 1;\n", "unknown"),
            ("-- +goose Up -- +goose Down\nSELECT 1;\n", "more than one"),
            (
                "CREATE TABLE a (id int);\n-- +goose Up\nSELECT 1;\n",
                "before",
            ),
            (
                "-- +goose Up\nSELECT 1\n-- +goose Down\nSELECT 2;\n",
                "missing semicolon",
            ),
            (
                "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2\n",
                "missing semicolon",
            ),
            ("-- +goose Down\nSELECT 1;\n", "before"),
            (
                "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
                "StatementEnd",
            ),
            ("-- +goose Up\nSELECT 1;\n-- +goose Up\n", "second"),
            (
                "-- +goose Up\nBEGIN;\nSELECT 1;\nCOMMIT;\n",
                "transaction itself",
            ),
        ] {
            let e = goose_up(text).expect_err(text);
            assert_eq!(e.code, initbox_runtime::Code::INVALID_INPUT);
            assert!(e.message.contains(why), "{text:?}: {}", e.message);
        }
        // Comments and a statement ending before a trailing comment, as goose reads them.
        let m = goose_up(
            "-- leading comment\n-- +goose Up\n-- about a\nSELECT 1; -- done\n\n-- +goose Down\n",
        )
        .unwrap();
        assert_eq!(m.statements(Dialect::Postgres)[0].line, 4);
        // An empty Up section is valid (goose records it and runs nothing).
        let m = goose_up("-- +goose Up\n-- +goose Down\nDROP TABLE a;\n").unwrap();
        assert!(m.statements(Dialect::MySql).is_empty());
    }

    /// dbmate's expressions: `^--\s*migrate:up(\s*$|\s+\S+)`; several sections with their
    /// own transaction options; a down block per section; nothing but comments before.
    #[test]
    fn dbmate_marker_spellings_and_sections() {
        for up in [
            "-- migrate:up",
            "--migrate:up",
            "--   migrate:up",
            "-- migrate:up   ",
        ] {
            let text = format!("{up}\nCREATE TABLE a (id int);\n--migrate:down\nDROP TABLE a;\n");
            let d = dir_with(&[("1_x.sql", &text)]);
            let s =
                load(d.path(), Format::Auto).unwrap_or_else(|e| panic!("{up:?}: {}", e.message));
            assert_eq!(s.format, Format::Dbmate);
            assert!(!s.migrations[0].sql().contains("DROP"));
        }
        let text = "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n\
                    -- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON a (id);\n\
                    -- migrate:down\nDROP INDEX i;\n";
        let d = dir_with(&[("2_x.sql", text)]);
        let m = &load(d.path(), Format::Auto).unwrap().migrations[0];
        assert_eq!(m.mode, Mode::Sections);
        assert_eq!(m.parts.len(), 2);
        assert!(m.parts[0].transaction && !m.parts[1].transaction);
        assert_eq!(m.statements(Dialect::Postgres)[1].line, 6);
        for (text, why) in [
            (
                "CREATE TYPE t AS ENUM ('a');\n-- migrate:up\nSELECT 1;\n-- migrate:down\n",
                "before",
            ),
            ("-- migrate:up\nSELECT 1;\n", "no '-- migrate:down'"),
            (
                "-- Migrate:up\nSELECT 1;\n-- migrate:down\n",
                "does not read it as one",
            ),
        ] {
            let d = dir_with(&[("3_x.sql", text)]);
            let e = load(d.path(), Format::Dbmate).expect_err(text);
            assert!(e.message.contains(why), "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn ambiguous_or_unsupported_directories_are_refused() {
        let d = dir_with(&[
            ("1_a.sql", "-- +goose Up\nSELECT 1;\n"),
            ("2_b.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\n"),
        ]);
        let e = load(d.path(), Format::Auto).unwrap_err();
        assert!(e.message.contains("several formats"), "{}", e.message);
        let d = dir_with(&[(
            "1_a.sql",
            "-- +migrate Up\nSELECT 1;\n-- +migrate Down\nSELECT 2;\n",
        )]);
        assert_eq!(
            load(d.path(), Format::Auto).unwrap().format,
            Format::SqlMigrate
        );
        // A down marker in a file read as sqlx is never run as plain SQL.
        let d = dir_with(&[(
            "1_a.sql",
            "CREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
        )]);
        assert!(load(d.path(), Format::Sqlx).is_err());
        // An up/down directory with CONCURRENTLY: sqlx and golang-migrate differ.
        let d = dir_with(&[
            ("1_i.up.sql", "CREATE INDEX CONCURRENTLY i ON a (id);\n"),
            ("1_i.down.sql", "DROP INDEX i;\n"),
        ]);
        assert!(
            load(d.path(), Format::Auto)
                .unwrap_err()
                .message
                .contains("--format golang-migrate")
        );
        let s = load(d.path(), Format::GolangMigrate).unwrap();
        assert_eq!(s.migrations[0].mode, Mode::Whole);
        // goose Go migrations.
        let d = dir_with(&[
            ("1_a.sql", "-- +goose Up\nSELECT 1;\n"),
            ("2_b.go", "package m\n"),
        ]);
        assert!(
            load(d.path(), Format::Auto)
                .unwrap_err()
                .message
                .contains("2_b.go")
        );
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), 19700101000000);
        assert_eq!(utc_stamp(951_782_400), 20000229000000);
        assert_eq!(utc_stamp(1_767_225_599), 20251231235959);
    }
}
