//! End-to-end tests of `initbox run-migrations` against the real PostgreSQL and MariaDB servers
//! of this machine (a fresh database per test, dropped afterwards) and SQLite files.
//! The state of each database is checked with the servers' own clients (psql, mariadb, sqlite3).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::db::{Db, Kind, mariadb, psql, unique};
use common::{Run, initbox, require_service, run, wait_child};

const LIMIT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------------------ helpers

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (n, t) in files {
        std::fs::write(d.path().join(n), t).unwrap();
    }
    d
}

fn rm(db: &Db, dir: &Path, extra: &[&str]) -> Command {
    let mut c = initbox();
    c.arg("run-migrations")
        .arg("--database-url")
        .arg(db.url())
        .arg("--dir")
        .arg(dir)
        .args(extra);
    c
}

fn go(db: &Db, dir: &Path, extra: &[&str]) -> Run {
    run(&mut rm(db, dir, extra), LIMIT)
}

fn spawn(db: &Db, dir: &Path, extra: &[&str]) -> Child {
    rm(db, dir, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn initbox")
}

fn assert_ok(r: &Run) {
    assert_eq!(r.code(), 0, "exit code; output:\n{}", r.all());
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/run-migrations")
        .join(name)
}

const BASIC: &[(&str, &str)] = &[
    (
        "1_create_users.sql",
        "CREATE TABLE users (id integer PRIMARY KEY, name varchar(100) NOT NULL);\n",
    ),
    (
        "2_seed.up.sql",
        "-- seed\nINSERT INTO users VALUES (1, 'ada; lovelace');\nINSERT INTO users VALUES (2, 'grace');\n",
    ),
    ("2_seed.down.sql", "DELETE FROM users;\n"),
];

// ------------------------------------------------------------------------------ the basics

fn apply_rerun_status_plan(kind: Kind) {
    let db = Db::new(kind);
    let dir = dir_with(BASIC);

    let r = go(&db, dir.path(), &[]);
    assert_ok(&r);
    assert!(r.stderr.contains("applied 2 migrations"), "{}", r.stderr);
    assert_eq!(db.count("SELECT count(*) FROM users"), 2);
    assert_eq!(db.history(), vec![(1, true), (2, true)]);

    // Re-run: nothing to do, nothing changes.
    let r = go(&db, dir.path(), &["up"]);
    assert_ok(&r);
    assert!(r.stderr.contains("up to date"), "{}", r.stderr);
    assert_eq!(db.count("SELECT count(*) FROM users"), 2);

    let r = go(&db, dir.path(), &["status"]);
    assert_ok(&r);
    assert!(r.stdout.contains("applied"), "{}", r.stdout);

    // A new file: status says pending (exit 1), plan names it and changes nothing.
    std::fs::write(
        dir.path().join("3_o'neil_posts.sql"),
        "CREATE TABLE posts (id integer PRIMARY KEY);\n",
    )
    .unwrap();
    let r = go(&db, dir.path(), &["status"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with('3') && l.contains("pending")),
        "{}",
        r.stdout
    );
    let r = go(&db, dir.path(), &["plan"]);
    assert_ok(&r);
    assert!(
        r.stdout.contains(
            "would apply 3 o'neil posts (3_o'neil_posts.sql, 1 statement, in one transaction with its history row)"
        ),
        "{}",
        r.stdout
    );
    assert!(!db.has_table("posts"));
    assert_ok(&go(&db, dir.path(), &[]));
    assert!(db.has_table("posts"));
    assert_eq!(
        db.query("SELECT description FROM _sqlx_migrations WHERE version = 3"),
        "o'neil posts"
    );
    assert_ok(&go(&db, dir.path(), &["status"]));
}

#[test]
fn postgres_apply_rerun_status_plan() {
    apply_rerun_status_plan(Kind::Postgres);
}

#[test]
fn mariadb_apply_rerun_status_plan() {
    apply_rerun_status_plan(Kind::Mariadb);
}

#[test]
fn sqlite_apply_rerun_status_plan() {
    apply_rerun_status_plan(Kind::Sqlite);
}

fn sql_error_leaves_database_unchanged(kind: Kind) {
    let db = Db::new(kind);
    let dir = dir_with(&BASIC[..1]);
    assert_ok(&go(&db, dir.path(), &[]));
    // MariaDB commits DDL implicitly, so its failing file holds only DML.
    let bad = if kind == Kind::Mariadb {
        "INSERT INTO users VALUES (7, 'x');\n\nINSERT INTO no_such_table VALUES (1);\n"
    } else {
        "CREATE TABLE half (id integer);\nINSERT INTO users VALUES (7, 'x');\n\nINSERT INTO no_such_table VALUES (1);\n"
    };
    std::fs::write(dir.path().join("2_broken.sql"), bad).unwrap();
    let r = go(&db, dir.path(), &[]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let err = r.stderr.lines().find(|l| l.contains("ERROR")).unwrap_or("");
    assert!(err.contains("2_broken.sql"), "names the file: {err}");
    assert!(
        err.contains("INSERT INTO no_such_table VALUES (1)"),
        "names the statement: {err}"
    );
    assert!(err.contains("database is unchanged"), "{err}");
    assert!(!r.all().contains("panicked"));
    // Unchanged: no row, no table, no history entry.
    assert_eq!(db.count("SELECT count(*) FROM users"), 0);
    assert!(!db.has_table("half"));
    assert_eq!(db.history(), vec![(1, true)]);
    // Fixed file: the next run applies it.
    std::fs::write(
        dir.path().join("2_broken.sql"),
        "INSERT INTO users VALUES (7, 'x');\n",
    )
    .unwrap();
    assert_ok(&go(&db, dir.path(), &[]));
    assert_eq!(db.count("SELECT count(*) FROM users"), 1);
}

#[test]
fn postgres_sql_error_leaves_database_unchanged() {
    sql_error_leaves_database_unchanged(Kind::Postgres);
}

#[test]
fn mariadb_sql_error_leaves_database_unchanged() {
    sql_error_leaves_database_unchanged(Kind::Mariadb);
}

#[test]
fn sqlite_sql_error_leaves_database_unchanged() {
    sql_error_leaves_database_unchanged(Kind::Sqlite);
}

#[test]
fn changed_applied_file_is_refused_with_exit_3() {
    for kind in [Kind::Postgres, Kind::Mariadb, Kind::Sqlite] {
        let db = Db::new(kind);
        let dir = dir_with(BASIC);
        assert_ok(&go(&db, dir.path(), &[]));
        // Same SQL with CRLF line endings: a different checksum, as for sqlx.
        let f = dir.path().join("1_create_users.sql");
        let text = std::fs::read_to_string(&f).unwrap().replace('\n', "\r\n");
        std::fs::write(&f, text).unwrap();
        for action in ["up", "status", "plan"] {
            let r = go(&db, dir.path(), &[action]);
            assert_eq!(r.code(), 3, "{kind:?} {action}: {}", r.all());
            if action != "status" {
                assert!(
                    r.stderr.contains("1_create_users.sql") && r.stderr.contains("changed"),
                    "{}",
                    r.stderr
                );
            }
        }
        // After review, repair --checksums accepts the edit.
        assert_ok(&go(&db, dir.path(), &["repair", "--checksums"]));
        assert_ok(&go(&db, dir.path(), &["status"]));
    }
}

#[test]
fn bad_files_fail_before_connecting() {
    let dir = dir_with(&[("1_a.sql", "SELECT 1;"), ("01_b.sql", "SELECT 2;")]);
    // Nothing listens on this port: the error must come from the files, not the network.
    let url = format!("postgres://x@127.0.0.1:{}/x", common::free_port());
    let r = run(
        initbox()
            .args(["run-migrations", "--database-url", &url, "--dir"])
            .arg(dir.path()),
        LIMIT,
    );
    common::assert_one_line_error(&r, 3, "duplicate migration version 1");
    let dir = dir_with(&[("create_users.sql", "SELECT 1;")]);
    let r = run(
        initbox()
            .args(["run-migrations", "--database-url", &url, "--dir"])
            .arg(dir.path()),
        LIMIT,
    );
    common::assert_one_line_error(&r, 3, "create_users.sql");
}

#[test]
fn out_of_order_and_unknown_versions() {
    let db = Db::new(Kind::Sqlite);
    let dir = dir_with(&[
        ("1_a.sql", "CREATE TABLE a (id integer);"),
        ("3_c.sql", "CREATE TABLE c (id integer);"),
    ]);
    // Read-only commands never create the SQLite file.
    let r = go(&db, dir.path(), &["status"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(!db.file.as_ref().unwrap().exists());
    assert_ok(&go(&db, dir.path(), &[]));
    std::fs::write(dir.path().join("2_b.sql"), "CREATE TABLE b (id integer);").unwrap();
    let r = go(&db, dir.path(), &[]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stderr.contains("out of order"), "{}", r.stderr);
    assert!(!db.has_table("b"));
    assert_ok(&go(&db, dir.path(), &["--allow-out-of-order"]));
    assert!(db.has_table("b"));
    // An older release (file 3 unknown to it) still starts; --strict refuses.
    std::fs::remove_file(dir.path().join("3_c.sql")).unwrap();
    let r = go(&db, dir.path(), &[]);
    assert_ok(&r);
    assert!(r.stderr.contains("no local file"), "{}", r.stderr);
    let r = go(&db, dir.path(), &["--strict"]);
    assert_eq!(r.code(), 3, "{}", r.all());
}

// ------------------------------------------------------------------------------ baseline, repair

#[test]
fn baseline_adopts_an_existing_database() {
    for kind in [Kind::Postgres, Kind::Sqlite] {
        let db = Db::new(kind);
        let dir = dir_with(BASIC);
        // The schema of migration 1 exists already (made by hand or another tool).
        db.query("CREATE TABLE users (id integer PRIMARY KEY, name varchar(100) NOT NULL)");
        let r = go(&db, dir.path(), &["baseline", "1"]);
        assert_ok(&r);
        assert_eq!(db.history(), vec![(1, true)]);
        let r = go(&db, dir.path(), &[]);
        assert_ok(&r);
        assert_eq!(db.history(), vec![(1, true), (2, true)]);
        assert_eq!(db.count("SELECT count(*) FROM users"), 2);
        // A second baseline would rewrite history: refused.
        let r = go(&db, dir.path(), &["baseline", "2"]);
        assert_eq!(r.code(), 1, "{}", r.all());
        assert!(r.stderr.contains("refused"), "{}", r.stderr);
        let r = go(&db, dir.path(), &["baseline", "42"]);
        assert_eq!(r.code(), 3, "{}", r.all());
    }
}

#[test]
fn postgres_failed_no_transaction_migration_needs_repair() {
    let db = Db::new(Kind::Postgres);
    let dir = dir_with(&BASIC[..1]);
    assert_ok(&go(&db, dir.path(), &[]));
    std::fs::write(
        dir.path().join("2_index.sql"),
        "-- no-transaction\nCREATE INDEX CONCURRENTLY users_name_idx ON users (name);\nINSERT INTO nope VALUES (1);\n",
    )
    .unwrap();
    let r = go(&db, dir.path(), &[]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("statement 2") && r.stderr.contains("marked failed"),
        "{}",
        r.stderr
    );
    // CREATE INDEX CONCURRENTLY ran (outside a transaction) and stays: recorded as failed.
    assert_eq!(
        db.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'users_name_idx'"),
        1
    );
    assert_eq!(db.history(), vec![(1, true), (2, false)]);
    // Every later run refuses, naming repair, until a person fixes it.
    let r = go(&db, dir.path(), &[]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("repair"), "{}", r.stderr);
    let r = go(&db, dir.path(), &["status"]);
    assert_eq!(r.code(), 1);
    assert!(r.stdout.contains("failed"), "{}", r.stdout);
    // The person drops the half-made index, fixes the file, clears the marker.
    db.query("DROP INDEX users_name_idx");
    std::fs::write(
        dir.path().join("2_index.sql"),
        "-- no-transaction\nCREATE INDEX CONCURRENTLY users_name_idx ON users (name);\n",
    )
    .unwrap();
    let r = go(&db, dir.path(), &["repair"]);
    assert_ok(&r);
    assert!(
        r.stderr.contains("cleared the failed marker"),
        "{}",
        r.stderr
    );
    assert_ok(&go(&db, dir.path(), &[]));
    assert_eq!(db.history(), vec![(1, true), (2, true)]);
}

#[test]
fn mariadb_partial_ddl_failure_needs_repair() {
    let db = Db::new(Kind::Mariadb);
    let dir = dir_with(&[(
        "1_two_tables.sql",
        "CREATE TABLE t1 (id integer);\nCREATE TABLE t1 (id integer);\n",
    )]);
    let r = go(&db, dir.path(), &[]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("marked failed"), "{}", r.stderr);
    assert_eq!(db.history(), vec![(1, false)]);
    let r = go(&db, dir.path(), &[]);
    assert_eq!(r.code(), 1);
    assert!(r.stderr.contains("repair"), "{}", r.stderr);
    // The person completed it by hand instead: mark it applied.
    let r = go(&db, dir.path(), &["repair", "--mark-applied"]);
    assert_ok(&r);
    assert_eq!(db.history(), vec![(1, true)]);
    assert_ok(&go(&db, dir.path(), &["status"]));
}

// ------------------------------------------------------------------------------ concurrency

/// Five migrations, one of them outside a transaction; each logs its version in `ran`
/// (a table without a key), so a double application shows as a duplicate.
fn concurrent_dir(kind: Kind) -> tempfile::TempDir {
    let no_tx = match kind {
        Kind::Postgres => {
            "-- no-transaction\nCREATE INDEX CONCURRENTLY t3_idx ON t3 (id);\nINSERT INTO ran VALUES (4);\n"
        }
        _ => "-- no-transaction\nCREATE INDEX t3_idx ON t3 (id);\nINSERT INTO ran VALUES (4);\n",
    };
    dir_with(&[
        (
            "1_ran.sql",
            "CREATE TABLE ran (version integer NOT NULL);\nINSERT INTO ran VALUES (1);\n",
        ),
        (
            "2_t2.sql",
            "CREATE TABLE t2 (id integer);\nINSERT INTO ran VALUES (2);\n",
        ),
        (
            "3_t3.sql",
            "CREATE TABLE t3 (id integer);\nINSERT INTO ran VALUES (3);\n",
        ),
        ("4_idx.sql", no_tx),
        (
            "5_t5.sql",
            "CREATE TABLE t5 (id integer);\nINSERT INTO ran VALUES (5);\n",
        ),
    ])
}

fn concurrent(kind: Kind, n: usize) {
    let db = Db::new(kind);
    let dir = concurrent_dir(kind);
    let children: Vec<Child> = (0..n).map(|_| spawn(&db, dir.path(), &[])).collect();
    let runs: Vec<Run> = children.into_iter().map(|c| wait_child(c, LIMIT)).collect();
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.code(), 0, "process {i} of {n}: {}", r.all());
    }
    let appliers = runs
        .iter()
        .filter(|r| r.stderr.contains("applied migration"))
        .count();
    assert!(appliers >= 1, "someone applied");
    assert_eq!(
        db.query("SELECT version FROM ran ORDER BY version")
            .lines()
            .collect::<Vec<_>>(),
        ["1", "2", "3", "4", "5"],
        "each migration ran exactly once"
    );
    assert_eq!(db.history(), (1..=5).map(|v| (v, true)).collect::<Vec<_>>());
}

#[test]
fn postgres_10_concurrent_processes() {
    concurrent(Kind::Postgres, 10);
}

#[test]
fn postgres_50_concurrent_processes() {
    concurrent(Kind::Postgres, 50);
}

#[test]
fn mariadb_10_concurrent_processes() {
    concurrent(Kind::Mariadb, 10);
}

#[test]
fn mariadb_50_concurrent_processes() {
    concurrent(Kind::Mariadb, 50);
}

#[test]
fn sqlite_10_concurrent_processes() {
    concurrent(Kind::Sqlite, 10);
}

/// Wait until some session of `db` holds an advisory lock.
fn wait_for_advisory_lock(db: &Db) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let n = psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                 WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '{}'",
                db.name
            ),
        );
        if n.trim() == "1" {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nobody took the advisory lock");
}

#[test]
fn postgres_holder_killed_mid_migration_waiters_take_over() {
    let db = Db::new(Kind::Postgres);
    let dir = dir_with(&[
        ("1_a.sql", "CREATE TABLE a (id integer);\n"),
        (
            "2_slow.sql",
            "CREATE TABLE slow (id integer);\nSELECT pg_sleep(4);\nINSERT INTO slow VALUES (1);\n",
        ),
    ]);
    let mut holder = spawn(&db, dir.path(), &[]);
    wait_for_advisory_lock(&db);
    // Let the holder get into the slow migration.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let n = psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
                db.name
            ),
        );
        if n.trim() != "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let waiters: Vec<Child> = (0..3).map(|_| spawn(&db, dir.path(), &[])).collect();
    // A waiter with a short bound names the holder and how to end it.
    let impatient = go(&db, dir.path(), &["--lock-timeout", "1s"]);
    assert_eq!(impatient.code(), 124, "{}", impatient.all());
    assert!(
        impatient.stderr.contains("held by PostgreSQL backend pid")
            && impatient.stderr.contains("pg_terminate_backend"),
        "{}",
        impatient.stderr
    );
    // SAFETY: killing the child we spawned.
    unsafe { libc::kill(holder.id() as i32, libc::SIGKILL) };
    let _ = holder.wait();
    for w in waiters {
        let r = wait_child(w, LIMIT);
        assert_ok(&r);
    }
    assert_eq!(db.history(), vec![(1, true), (2, true)]);
    assert_eq!(db.count("SELECT count(*) FROM slow"), 1, "applied once");
}

#[test]
fn sigterm_releases_the_lock() {
    let db = Db::new(Kind::Postgres);
    let dir = dir_with(&[(
        "1_slow.sql",
        "CREATE TABLE slow (id integer);\nSELECT pg_sleep(30);\n",
    )]);
    let holder = spawn(&db, dir.path(), &[]);
    wait_for_advisory_lock(&db);
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(holder.id() as i32, libc::SIGTERM) };
    let r = wait_child(holder, LIMIT);
    assert_eq!(r.code(), 143, "{}", r.all());
    // The transaction rolled back and the lock is free: a new run takes over at once.
    let fixed = dir_with(&[("1_slow.sql", "CREATE TABLE slow (id integer);\n")]);
    let r = go(&db, fixed.path(), &["--lock-timeout", "10s"]);
    assert_ok(&r);
    assert_eq!(db.history(), vec![(1, true)]);
}

// ------------------------------------------------------------------------------ formats

#[test]
fn goose_directory_on_postgres() {
    let db = Db::new(Kind::Postgres);
    let r = go(&db, &fixture("goose"), &[]);
    assert_ok(&r);
    assert_eq!(db.history(), vec![(1, true), (2, true), (3, true)]);
    // Down sections never ran; the trigger from the StatementBegin block works; the
    // NO TRANSACTION index was built concurrently and is valid.
    assert_eq!(
        db.query("SELECT name FROM users ORDER BY id")
            .lines()
            .collect::<Vec<_>>(),
        ["ada", "GRACE"]
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname = 'users_name_idx' AND i.indisvalid"
        ),
        1
    );
    assert_ok(&go(&db, &fixture("goose"), &["status"]));
}

#[test]
fn dbmate_directory_on_sqlite_and_mariadb() {
    for kind in [Kind::Sqlite, Kind::Mariadb] {
        let db = Db::new(kind);
        let r = go(&db, &fixture("dbmate"), &["--format", "dbmate"]);
        assert_ok(&r);
        assert_eq!(
            db.history(),
            vec![
                (20240101000001, true),
                (20240101000002, true),
                (20240101000003, true)
            ]
        );
        assert_eq!(db.count("SELECT count(*) FROM posts"), 2, "down never ran");
        // Auto-detection gives the same versions and checksums: nothing pending.
        assert_ok(&go(&db, &fixture("dbmate"), &["status"]));
    }
}

// ------------------------------------------------------------------------------ connection

#[test]
fn missing_database_exits_3_and_bad_credentials_exit_5() {
    require_service("PostgreSQL", "127.0.0.1:5432");
    let dir = dir_with(BASIC);
    let r = run(
        initbox()
            .args([
                "run-migrations",
                "--database-url",
                "postgres://postgres@127.0.0.1:5432/initbox_no_such_db",
                "--dir",
            ])
            .arg(dir.path()),
        LIMIT,
    );
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(10), "fails fast");

    require_service("MariaDB", "127.0.0.1:3306");
    let password = "Hunter2-initbox-canary";
    let r = run(
        initbox()
            .args([
                "run-migrations",
                "--database-url",
                &format!("mysql://initbox_nobody:{password}@127.0.0.1:3306/test"),
                "--dir",
            ])
            .arg(dir.path()),
        LIMIT,
    );
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(r.stderr.contains("credentials rejected"), "{}", r.stderr);
    assert!(!r.all().contains(password), "password leaked: {}", r.all());
    assert!(r.elapsed < Duration::from_secs(10), "fails fast");

    // The same with --password-file.
    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), format!("{password}\n")).unwrap();
    let r = run(
        initbox()
            .args([
                "run-migrations",
                "--database-url",
                "mysql://initbox_nobody@127.0.0.1:3306/test",
                "--password-file",
            ])
            .arg(pw.path())
            .arg("--dir")
            .arg(dir.path())
            .arg("-v"),
        LIMIT,
    );
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(!r.all().contains(password), "password leaked: {}", r.all());
}

/// Forward connections on `port` to PostgreSQL, starting only after `delay`: a database
/// that comes up while initbox waits.
fn late_proxy(port: u16, delay: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        for client in listener.incoming().take(4) {
            let Ok(client) = client else { continue };
            let Ok(server) = std::net::TcpStream::connect("127.0.0.1:5432") else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c1, mut s1) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut s1);
                let _ = s1.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
}

#[test]
fn waits_for_a_database_that_comes_up_later() {
    let db = Db::new(Kind::Postgres);
    let dir = dir_with(BASIC);
    let port = common::free_port();
    late_proxy(port, Duration::from_millis(1500));
    let url = format!("postgres://postgres@127.0.0.1:{port}/{}", db.name);
    let r = run(
        initbox()
            .args([
                "run-migrations",
                "--timeout",
                "30s",
                "--database-url",
                &url,
                "--dir",
            ])
            .arg(dir.path()),
        LIMIT,
    );
    assert_ok(&r);
    assert!(r.elapsed >= Duration::from_millis(1400), "{:?}", r.elapsed);
    assert_eq!(db.history(), vec![(1, true), (2, true)]);

    // Nothing ever comes up: the deadline ends the wait with 124.
    let port = common::free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let r = run(
        initbox()
            .args([
                "run-migrations",
                "--timeout",
                "1s",
                "--database-url",
                &url,
                "--dir",
            ])
            .arg(dir.path()),
        LIMIT,
    );
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("deadline"), "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
}

// ------------------------------------------------------------------------------ --exec

#[test]
fn exec_holds_the_lock_and_passes_the_exit_code() {
    let db = Db::new(Kind::Postgres);
    let dir = dir_with(BASIC);
    let mut c = initbox();
    c.args([
        "run-migrations",
        "--database-url",
        &db.url(),
        "--exec",
        "--",
    ])
    .args(["sh", "-c", "sleep 2; exit 7"])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let holder = c.spawn().unwrap();
    wait_for_advisory_lock(&db);
    // Meanwhile a migrator cannot take the same lock.
    let r = go(&db, dir.path(), &["--lock-timeout", "500ms"]);
    assert_eq!(r.code(), 124, "{}", r.all());
    let r = wait_child(holder, LIMIT);
    assert_eq!(r.code(), 7, "{}", r.all());
    // Released afterwards.
    assert_ok(&go(&db, dir.path(), &["--lock-timeout", "5s"]));

    let r = run(
        initbox().args([
            "run-migrations",
            "--database-url",
            &db.url(),
            "--exec",
            "--",
            "initbox-no-such-command",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 127, "{}", r.all());
}

#[test]
fn exec_child_is_stopped_before_the_lock_is_released() {
    let db = Db::new(Kind::Sqlite);
    let pidfile = db.dir.as_ref().unwrap().path().join("child.pid");
    let mut c = initbox();
    c.args([
        "run-migrations",
        "--database-url",
        &db.url(),
        "--exec",
        "--",
    ])
    .arg("sh")
    .arg("-c")
    .arg(format!("echo $$ > {}; exec sleep 30", pidfile.display()))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let holder = c.spawn().unwrap();
    let start = Instant::now();
    while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "child never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let child: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling the process we spawned.
    unsafe { libc::kill(holder.id() as i32, libc::SIGTERM) };
    let r = wait_child(holder, LIMIT);
    assert_eq!(r.code(), 143, "{}", r.all());
    assert!(r.elapsed < Duration::from_secs(8), "{:?}", r.elapsed);
    // SAFETY: signal 0 only checks whether the process exists.
    let alive = unsafe { libc::kill(child, 0) } == 0;
    assert!(!alive, "the command outlived initbox (and its lock)");
}

#[test]
fn mariadb_password_file_works_and_never_shows() {
    let db = Db::new(Kind::Mariadb);
    let user = unique("initbox_u");
    let password = "Pw-initbox-canary-7f3a";
    mariadb(
        "",
        &format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; \
             CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'; \
             GRANT ALL ON {db}.* TO '{user}'@'%'; GRANT ALL ON {db}.* TO '{user}'@'localhost'",
            db = db.name
        ),
    );
    let dir = dir_with(BASIC);
    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), format!("{password}\n")).unwrap();
    let url = format!("mysql://{user}@127.0.0.1:3306/{}", db.name);
    let r = run(
        initbox()
            .args([
                "run-migrations",
                "-vv",
                "--database-url",
                &url,
                "--password-file",
            ])
            .arg(pw.path())
            .arg("--dir")
            .arg(dir.path()),
        LIMIT,
    );
    let _ = Command::new("mariadb")
        .args(["-h127.0.0.1", "-uroot", "-e"])
        .arg(format!(
            "DROP USER IF EXISTS '{user}'@'%'; DROP USER IF EXISTS '{user}'@'localhost'"
        ))
        .output();
    assert_ok(&r);
    assert_eq!(db.history(), vec![(1, true), (2, true)]);
    assert!(!r.all().contains(password), "password leaked: {}", r.all());

    // In the URL instead: masked in every line, also at -vv and in errors.
    let r = run(
        initbox()
            .args([
                "run-migrations",
                "-vv",
                "--database-url",
                &format!("mysql://{user}:{password}@127.0.0.1:3306/{}", db.name),
                "--dir",
            ])
            .arg(dir.path()),
        LIMIT,
    );
    assert_eq!(r.code(), 5, "user dropped meanwhile: {}", r.all());
    assert!(!r.all().contains(password), "password leaked: {}", r.all());
    // A database URL is shown as scheme://host:port only.
    assert!(r.all().contains("mysql://127.0.0.1:3306"), "{}", r.all());
    assert!(!r.all().contains(&format!("{user}:")), "{}", r.all());
}

/// A MariaDB user whose password holds `@`, `/`, `:` and `#`: the raw URL is a usage error that
/// echoes none of it, the percent-encoded URL works, and so do INITBOX_DATABASE_PASSWORD and
/// MYSQL_PWD (the variable is a fallback: --password-file and a URL password come first).
#[test]
fn mariadb_password_with_reserved_characters_and_from_variables() {
    let db = Db::new(Kind::Mariadb);
    let user = unique("initbox_v");
    let password = "rm@pw/x:y#z-canary";
    mariadb(
        "",
        &format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; \
             CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'; \
             GRANT ALL ON {db}.* TO '{user}'@'%'; GRANT ALL ON {db}.* TO '{user}'@'localhost'",
            db = db.name
        ),
    );
    let dir = dir_with(BASIC);
    let fragments = ["rm@pw", "pw/x", "x:y", "y#z", "z-canary"];
    let no_leak = |r: &Run| {
        for f in fragments {
            assert!(!r.all().contains(f), "{f:?} leaked: {}", r.all());
        }
    };
    let go_with = |url: &str, envs: &[(&str, &str)], extra: &[&str]| {
        let mut c = initbox();
        c.env_remove("PGPASSWORD").env_remove("MYSQL_PWD");
        c.args(["run-migrations", "-vv", "--database-url", url, "--dir"])
            .arg(dir.path())
            .args(extra);
        for (k, v) in envs {
            c.env(k, v);
        }
        run(&mut c, LIMIT)
    };
    let raw = format!("mysql://{user}:{password}@127.0.0.1:3306/{}", db.name);
    let r = go_with(&raw, &[], &["status"]);
    common::assert_one_line_error(&r, 2, "percent-encode");
    assert!(r.stderr.contains("--database-url"), "{}", r.stderr);
    assert!(r.stderr.contains("MYSQL_PWD"), "{}", r.stderr);
    no_leak(&r);
    assert!(!r.all().contains(&db.name), "no path echoed: {}", r.all());

    let plain = format!("mysql://{user}@127.0.0.1:3306/{}", db.name);
    let r = go_with(&plain, &[("MYSQL_PWD", password)], &["status"]);
    assert_eq!(r.code(), 1, "pending, so it connected: {}", r.all());
    no_leak(&r);
    let r = go_with(
        &plain,
        &[
            ("MYSQL_PWD", "wrong-mysql-pwd"),
            ("INITBOX_DATABASE_PASSWORD", password),
        ],
        &[],
    );
    assert_ok(&r);
    no_leak(&r);
    assert_eq!(db.history(), vec![(1, true), (2, true)]);
    let encoded = format!(
        "mariadb://{user}:rm%40pw%2Fx%3Ay%23z-canary@127.0.0.1:3306/{}",
        db.name
    );
    let r = go_with(&encoded, &[("MYSQL_PWD", "wrong-mysql-pwd")], &["status"]);
    assert_ok(&r);
    no_leak(&r);
    let _ = Command::new("mariadb")
        .args(["-h127.0.0.1", "-uroot", "-e"])
        .arg(format!(
            "DROP USER IF EXISTS '{user}'@'%'; DROP USER IF EXISTS '{user}'@'localhost'"
        ))
        .output();
}

#[test]
fn sqlite_file_lock_names_its_holder() {
    let db = Db::new(Kind::Sqlite);
    let dir = dir_with(BASIC);
    let mut c = initbox();
    c.args([
        "run-migrations",
        "--database-url",
        &db.url(),
        "--exec",
        "--",
    ])
    .args(["sleep", "3"])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let holder = c.spawn().unwrap();
    let lock = PathBuf::from(format!(
        "{}-migrate.lock",
        db.file.as_ref().unwrap().display()
    ));
    let start = Instant::now();
    while std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(start.elapsed() < Duration::from_secs(20), "no lock file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = go(&db, dir.path(), &["--lock-timeout", "500ms"]);
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(
        r.stderr.contains("held by host=") && r.stderr.contains(&format!("pid={}", holder.id())),
        "{}",
        r.stderr
    );
    assert_ok(&wait_child(holder, LIMIT));
    assert_ok(&go(&db, dir.path(), &["--lock-timeout", "5s"]));
    assert_eq!(db.history(), vec![(1, true), (2, true)]);
}

// ------------------------------------------------------------------------------ deadlines

/// Exit 124 at the deadline: not before it (the issue: 4.65 s for --timeout 7s), and not
/// much after it (generous bound for a loaded machine).
fn assert_ends_at(r: &Run, limit: Duration) {
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(
        r.elapsed >= limit && r.elapsed <= limit + Duration::from_millis(500),
        "exit 124 after {:?} for a deadline of {limit:?}: {}",
        r.elapsed,
        r.stderr
    );
}

#[test]
fn the_timeout_is_kept_for_a_database_that_never_answers() {
    let dir = dir_with(BASIC);
    let port = common::free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    for secs in [3, 7] {
        let r = run(
            initbox()
                .args(["run-migrations", "--timeout", &format!("{secs}s")])
                .args(["--database-url", &url, "--dir"])
                .arg(dir.path()),
            LIMIT,
        );
        assert_ends_at(&r, Duration::from_secs(secs));
        assert!(r.stderr.contains("deadline of"), "{}", r.stderr);
    }
}

#[test]
fn the_lock_timeout_is_kept_while_another_session_holds_the_lock() {
    let db = Db::new(Kind::Postgres);
    let dir = dir_with(BASIC);
    // A real PostgreSQL session holds the advisory lock (run-migrations --exec).
    let mut c = initbox();
    c.args([
        "run-migrations",
        "--database-url",
        &db.url(),
        "--exec",
        "--",
    ])
    .args(["sleep", "30"])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let holder = c.spawn().unwrap();
    wait_for_advisory_lock(&db);
    for secs in [3, 7] {
        let limit = Duration::from_secs(secs);
        let started = std::time::Instant::now();
        let r = go(&db, dir.path(), &["--lock-timeout", &format!("{secs}s")]);
        assert_eq!(r.code(), 124, "{}", r.all());
        // The lock's deadline starts once connected: allow the connection on top.
        let took = started.elapsed();
        assert!(
            took >= limit && took <= limit + Duration::from_millis(500),
            "exit 124 after {took:?} for a lock timeout of {limit:?}: {}",
            r.stderr
        );
    }
    // SAFETY: signalling a child we spawned; SIGTERM also stops its command.
    unsafe { libc::kill(holder.id() as i32, libc::SIGTERM) };
    let r = wait_child(holder, LIMIT);
    assert_eq!(r.code(), 143, "{}", r.all());
}

// ------------------------------------------------------------------------------ issue 13: reading files as their own tool does

/// Every spelling goose and dbmate accept is read as a marker: the Up part runs, the Down part
/// never does (today these were taken for sqlx files and run whole: created, then dropped).
#[test]
fn marker_spellings_goose_and_dbmate_accept_never_run_down() {
    let goose = dir_with(&[
        (
            "1_a.sql",
            "--+goose Up\nCREATE TABLE a (id integer);\n\n--+goose Down\nDROP TABLE a;\n",
        ),
        (
            "2_b.sql",
            "--  +goose Up\r\nCREATE TABLE b (id integer);\r\n--   +goose   down\r\nDROP TABLE b;\r\n",
        ),
        (
            "3_c.sql",
            "-- +goose up\n-- +goose StatementBegin\nCREATE TABLE c (id integer);\n-- +goose StatementEnd\n-- +goose DOWN\nDROP TABLE c;\n",
        ),
    ]);
    let dbmate = dir_with(&[
        (
            "20240101000001_a.sql",
            "--migrate:up\nCREATE TABLE a (id integer);\n--migrate:down\nDROP TABLE a;\n",
        ),
        (
            "20240101000002_b.sql",
            "-- comment first\n--   migrate:up\nCREATE TABLE b (id integer);\n\n--    migrate:down\nDROP TABLE b;\n",
        ),
    ]);
    for kind in [Kind::Postgres, Kind::Mariadb, Kind::Sqlite] {
        let db = Db::new(kind);
        let r = go(&db, goose.path(), &[]);
        assert_ok(&r);
        for t in ["a", "b", "c"] {
            assert!(
                db.has_table(t),
                "{kind:?}: goose table {t} kept (down not run)"
            );
        }
        assert_eq!(db.history(), vec![(1, true), (2, true), (3, true)]);
        let db = Db::new(kind);
        assert_ok(&go(&db, dbmate.path(), &[]));
        assert!(db.has_table("a") && db.has_table("b"), "{kind:?}: dbmate");
    }
}

fn assert_refused(db: &Db, r: &Run, needle: &str) {
    assert_eq!(r.code(), 3, "exit 3 expected; output:\n{}", r.all());
    assert!(r.stderr.contains(needle), "{needle:?} in:\n{}", r.stderr);
    assert!(!db.has_table("_sqlx_migrations"), "nothing applied");
    assert!(!db.has_table("t"), "nothing applied");
}

/// Where goose/dbmate refuse a file, so does initbox, before anything is applied; a
/// directory whose format is ambiguous is refused rather than guessed.
#[test]
fn what_the_tools_refuse_is_refused_before_anything_runs() {
    let db = Db::new(Kind::Postgres);
    let ok = ("1_t.sql", "-- +goose Up\nCREATE TABLE t (id integer);\n");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![ok, ("2_x.go", "package migrations\n")], "2_x.go"),
        (
            vec![
                ok,
                (
                    "2_x.sql",
                    "CREATE TABLE y (id int);\n-- +goose Up\nSELECT 1;\n",
                ),
            ],
            "SQL before '-- +goose Up'",
        ),
        (
            vec![
                ok,
                (
                    "2_x.sql",
                    "-- +goose Up\nCREATE TABLE y (id int)\n-- +goose Down\nDROP TABLE y;\n",
                ),
            ],
            "missing semicolon",
        ),
        (
            vec![ok, ("2_x.sql", "  -- +goose Up\nSELECT 1;\n")],
            "indented",
        ),
        (
            vec![
                ok,
                (
                    "2_x.sql",
                    "-- +goose Up\nCREATE TABLE y (id int);\n-- +GOOSE Down\nDROP TABLE y;\n",
                ),
            ],
            "does not read it as one",
        ),
        (
            vec![(
                "1_t.sql",
                "-- migrate:up\nCREATE TABLE t (id int);\n  -- migrate:down\nDROP TABLE t;\n",
            )],
            "does not read it as one",
        ),
        (
            vec![
                ok,
                ("2_x.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\n"),
            ],
            "several formats",
        ),
        (
            vec![
                (
                    "1_t.sql",
                    "-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\n",
                ),
                (
                    "2_x.sql",
                    "SELECT 1;\n-- migrate:up\nSELECT 2;\n-- migrate:down\n",
                ),
            ],
            "SQL before '-- migrate:up'",
        ),
        (
            vec![
                ("1_t.sql", "CREATE TABLE t (id int);\n"),
                (
                    "2_x.sql",
                    "-- +migrate Up\nSELECT 1;\n-- +migrate Down\nSELECT 2;\n",
                ),
            ],
            "sql-migrate",
        ),
        (
            vec![
                ("1_t.up.sql", "CREATE TABLE t (id int);\n"),
                ("1_t.down.sql", "DROP TABLE t;\n"),
                ("2_i.up.sql", "CREATE INDEX CONCURRENTLY i ON t (id);\n"),
                ("2_i.down.sql", "DROP INDEX i;\n"),
            ],
            "--format golang-migrate",
        ),
        (
            vec![("1_t.sql", "BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n")],
            "controls the transaction itself",
        ),
    ];
    for (files, needle) in cases {
        let dir = dir_with(&files);
        let r = go(&db, dir.path(), &[]);
        assert_refused(&db, &r, needle);
    }
    // A dangling .sql symlink (a ConfigMap key that went away) is an error, not a skip.
    let dir = dir_with(&[("1_t.sql", "CREATE TABLE t (id int);\n")]);
    std::os::unix::fs::symlink(dir.path().join("gone.sql"), dir.path().join("2_gone.sql")).unwrap();
    assert_refused(&db, &go(&db, dir.path(), &[]), "2_gone.sql");
    // A file written for goose forced through --format sqlx would run its Down part: refused.
    let dir = dir_with(&[(
        "1_t.sql",
        "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n",
    )]);
    assert_refused(
        &db,
        &go(&db, dir.path(), &["--format", "sqlx"]),
        "down-section marker",
    );
}

/// dbmate files with several sections and mixed `transaction:` options are valid dbmate:
/// each section runs as it says (the second builds an index concurrently).
#[test]
fn dbmate_sections_with_mixed_transaction_options() {
    let db = Db::new(Kind::Postgres);
    let dir = dir_with(&[(
        "20240101000001_users.sql",
        "-- migrate:up\nCREATE TABLE users (id integer, name text);\n-- migrate:down\nDROP TABLE users;\n\n\
         -- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY users_name_idx ON users (name);\n\
         -- migrate:down transaction:false\nDROP INDEX CONCURRENTLY users_name_idx;\n",
    )]);
    let plan = go(&db, dir.path(), &["plan"]);
    assert_ok(&plan);
    assert!(
        plan.stdout
            .contains("section 1 in a transaction, section 2 outside a transaction"),
        "{}",
        plan.stdout
    );
    assert_ok(&go(&db, dir.path(), &[]));
    assert_eq!(db.history(), vec![(20240101000001, true)]);
    assert_eq!(
        db.count("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'users_name_idx' AND i.indisvalid"),
        1
    );
}

/// Version 0 is valid for sqlx and golang-migrate (sqlx's own tests start at 0_setup.sql).
#[test]
fn version_zero_is_accepted() {
    for kind in [Kind::Postgres, Kind::Sqlite] {
        let db = Db::new(kind);
        let dir = dir_with(&[
            ("0_setup.sql", "CREATE TABLE setup (id integer);\n"),
            ("1_next.sql", "INSERT INTO setup VALUES (1);\n"),
        ]);
        assert_ok(&go(&db, dir.path(), &[]));
        assert_eq!(db.history(), vec![(0, true), (1, true)]);
    }
}

/// An empty goose Up section and a comment-only file are recorded without sending an empty
/// request (MySQL/MariaDB answer that with "Query was empty").
#[test]
fn empty_up_sections_and_comment_only_files() {
    for kind in [Kind::Mariadb, Kind::Postgres, Kind::Sqlite] {
        let db = Db::new(kind);
        let goose = dir_with(&[
            (
                "1_a.sql",
                "-- +goose Up\nCREATE TABLE a (id integer);\n-- +goose Down\nDROP TABLE a;\n",
            ),
            (
                "2_empty.sql",
                "-- +goose Up\n-- nothing to do yet\n\n-- +goose Down\nDROP TABLE IF EXISTS nothing;\n",
            ),
            (
                "3_notx.sql",
                "-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose Down\n",
            ),
        ]);
        assert_ok(&go(&db, goose.path(), &[]));
        assert_eq!(
            db.history(),
            vec![(1, true), (2, true), (3, true)],
            "{kind:?}"
        );
        let db = Db::new(kind);
        let sqlx = dir_with(&[
            ("1_a.sql", "CREATE TABLE a (id integer);\n"),
            ("2_later.sql", "-- reserved for a later change\n"),
        ]);
        assert_ok(&go(&db, sqlx.path(), &[]));
        assert_eq!(db.history(), vec![(1, true), (2, true)], "{kind:?}");
    }
}

/// golang-migrate files run the way golang-migrate runs them: the whole file as one request,
/// no transaction added, so CREATE INDEX CONCURRENTLY works; `plan` says so.
#[test]
fn golang_migrate_files_run_as_golang_migrate_runs_them() {
    let db = Db::new(Kind::Postgres);
    let dir = dir_with(&[
        (
            "000001_users.up.sql",
            "CREATE TABLE users (id integer, name text);\n",
        ),
        ("000001_users.down.sql", "DROP TABLE users;\n"),
        (
            "000002_idx.up.sql",
            "CREATE INDEX CONCURRENTLY users_name_idx ON users (name);\n",
        ),
        (
            "000002_idx.down.sql",
            "DROP INDEX CONCURRENTLY users_name_idx;\n",
        ),
    ]);
    let plan = go(&db, dir.path(), &["--format", "golang-migrate", "plan"]);
    assert_ok(&plan);
    assert!(
        plan.stdout.contains("as golang-migrate runs it"),
        "{}",
        plan.stdout
    );
    assert_ok(&go(&db, dir.path(), &["--format", "golang-migrate"]));
    assert_eq!(db.history(), vec![(1, true), (2, true)]);
    assert_eq!(
        db.count("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'users_name_idx' AND i.indisvalid"),
        1
    );
}

/// A file with its own BEGIN … COMMIT that fails after its COMMIT: the message says what is
/// true (partly applied, marked failed), never "rolled back, the database is unchanged".
/// A failure before anything was committed leaves no marker and says so.
#[test]
fn own_transactions_get_a_true_message() {
    for kind in [Kind::Postgres, Kind::Mariadb] {
        let db = Db::new(kind);
        let dir = dir_with(&[
            (
                "1_a.up.sql",
                "BEGIN;\nCREATE TABLE a (id integer);\nINSERT INTO a VALUES (1);\nCOMMIT;\nINSERT INTO nope VALUES (1);\n",
            ),
            ("1_a.down.sql", "DROP TABLE a;\n"),
        ]);
        let r = go(&db, dir.path(), &["--format", "golang-migrate"]);
        assert_eq!(r.code(), 1, "{kind:?}: {}", r.all());
        assert!(!r.stderr.contains("database is unchanged"), "{}", r.stderr);
        assert!(r.stderr.contains("partly applied"), "{}", r.stderr);
        assert!(r.stderr.contains("statement 5 (line 5"), "{}", r.stderr);
        assert_eq!(
            db.count("SELECT count(*) FROM a"),
            1,
            "committed by the file"
        );
        assert_eq!(db.history(), vec![(1, false)]);

        let db = Db::new(kind);
        let dir = dir_with(&[
            (
                "1_a.up.sql",
                "BEGIN;\nINSERT INTO nope VALUES (1);\nCOMMIT;\n",
            ),
            ("1_a.down.sql", "SELECT 1;\n"),
        ]);
        let r = go(&db, dir.path(), &["--format", "golang-migrate"]);
        assert_eq!(r.code(), 1, "{}", r.all());
        assert!(r.stderr.contains("database is unchanged"), "{}", r.stderr);
        assert_eq!(
            db.history(),
            vec![],
            "no failed marker when nothing was applied"
        );
    }
}

/// A PostgreSQL syntax error is reported at its real statement and line (the server's error
/// position mapped back to the file), with no spurious ROLLBACK warning.
#[test]
fn postgres_errors_name_the_real_statement_and_line() {
    let db = Db::new(Kind::Postgres);
    let dir = dir_with(&[(
        "1_a.sql",
        "-- header\nCREATE TABLE a (id integer);\n\nINSERT INTO a VALUES (1);\nINSERT INTO a\n  VALUES (2) RETURNNIG id;\nINSERT INTO a VALUES (3);\n",
    )]);
    let r = go(&db, dir.path(), &[]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("statement 3 (line 6"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("no transaction in progress"),
        "{}",
        r.stderr
    );
    assert!(!db.has_table("a"));
    // A run-time error in a later statement of a goose file: its own line too.
    let dir = dir_with(&[(
        "1_a.sql",
        "-- +goose Up\nCREATE TABLE a (id integer);\n\nINSERT INTO a\n  SELECT x FROM nope;\n-- +goose Down\nDROP TABLE a;\n",
    )]);
    let r = go(&db, dir.path(), &[]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("statement 2 (line 5"), "{}", r.stderr);
}

/// MySQL/MariaDB migrations run under the server's own session defaults, as with the mariadb
/// client: `||` is OR, not concatenation, and the time zone is the server's.
#[test]
fn mariadb_sessions_keep_the_server_defaults() {
    let db = Db::new(Kind::Mariadb);
    let dir = dir_with(&[(
        "1_a.sql",
        "CREATE TABLE a AS SELECT 1 || 0 AS v, @@session.time_zone AS tz, @@session.sql_mode AS mode;\n",
    )]);
    assert_ok(&go(&db, dir.path(), &[]));
    let client = mariadb("", "SELECT 1 || 0, @@session.time_zone, @@session.sql_mode");
    assert_eq!(db.query("SELECT v, tz, mode FROM a"), client);
}

// ------------------------------------------------------------------------------ issue 13: adopting existing databases

/// Files for the adoption tests: three migrations, the first two already applied by the other
/// tool (their tables exist), the third new.
fn adoption_files(format: &str) -> tempfile::TempDir {
    match format {
        "goose" => dir_with(&[
            (
                "1_a.sql",
                "-- +goose Up\nCREATE TABLE a (id integer);\n-- +goose Down\nDROP TABLE a;\n",
            ),
            (
                "2_b.sql",
                "-- +goose Up\nCREATE TABLE b (id integer);\n-- +goose Down\nDROP TABLE b;\n",
            ),
            (
                "3_c.sql",
                "-- +goose Up\nCREATE TABLE c (id integer);\n-- +goose Down\nDROP TABLE c;\n",
            ),
        ]),
        "dbmate" => dir_with(&[
            (
                "20240101000001_a.sql",
                "-- migrate:up\nCREATE TABLE a (id integer);\n-- migrate:down\nDROP TABLE a;\n",
            ),
            (
                "20240101000002_b.sql",
                "-- migrate:up\nCREATE TABLE b (id integer);\n-- migrate:down\nDROP TABLE b;\n",
            ),
            (
                "20240101000003_c.sql",
                "-- migrate:up\nCREATE TABLE c (id integer);\n-- migrate:down\nDROP TABLE c;\n",
            ),
        ]),
        _ => dir_with(&[
            ("1_a.up.sql", "CREATE TABLE a (id integer);\n"),
            ("1_a.down.sql", "DROP TABLE a;\n"),
            ("2_b.up.sql", "CREATE TABLE b (id integer);\n"),
            ("2_b.down.sql", "DROP TABLE b;\n"),
            ("3_c.up.sql", "CREATE TABLE c (id integer);\n"),
            ("3_c.down.sql", "DROP TABLE c;\n"),
        ]),
    }
}

/// The other tool's state: its history table (its own DDL) and the tables it created.
fn foreign_state(db: &Db, tool: &str, v1: &str, v2: &str) {
    db.query("CREATE TABLE a (id integer)");
    db.query("CREATE TABLE b (id integer)");
    let (pg, my) = (db.kind == Kind::Postgres, db.kind == Kind::Mariadb);
    match tool {
        "goose" => {
            let id = if pg {
                "id serial PRIMARY KEY"
            } else if my {
                "id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY"
            } else {
                "id INTEGER PRIMARY KEY AUTOINCREMENT"
            };
            db.query(&format!("CREATE TABLE goose_db_version ({id}, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NULL DEFAULT CURRENT_TIMESTAMP)"));
            // goose's initial row, both versions, and a version applied then rolled back.
            db.query(&format!("INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), ({v1}, true), ({v2}, true), (3, true), (3, false)"));
        }
        "golang-migrate" => {
            db.query("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)");
            db.query(&format!(
                "INSERT INTO schema_migrations VALUES ({v2}, false)"
            ));
        }
        "dbmate" => {
            db.query("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)");
            db.query(&format!(
                "INSERT INTO schema_migrations VALUES ('{v1}'), ('{v2}')"
            ));
        }
        "sql-migrate" => {
            db.query("CREATE TABLE gorp_migrations (id varchar(255) NOT NULL PRIMARY KEY, applied_at timestamp NULL)");
            db.query(&format!(
                "INSERT INTO gorp_migrations (id) VALUES ('{v1}_a.sql'), ('{v2}_b.sql')"
            ));
        }
        "flyway" => {
            db.query("CREATE TABLE flyway_schema_history (installed_rank integer NOT NULL PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum integer, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, execution_time integer NOT NULL, success boolean NOT NULL)");
            db.query(&format!("INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES (1, '{v1}', 'a', 'SQL', 'V{v1}__a.sql', 1, 'app', 1, true), (2, '{v2}', 'b', 'SQL', 'V{v2}__b.sql', 2, 'app', 1, true), (3, NULL, 'views', 'SQL', 'R__views.sql', 3, 'app', 1, true)"));
        }
        _ => unreachable!(),
    }
}

/// A database another tool migrated just works: its versions are adopted (logged, recorded
/// with the files' checksums) and only the new migration runs.
#[test]
fn foreign_histories_are_adopted_and_only_new_migrations_run() {
    let cases = [
        (Kind::Postgres, "goose", "goose"),
        (Kind::Mariadb, "golang-migrate", "golang-migrate"),
        (Kind::Sqlite, "dbmate", "dbmate"),
        (Kind::Postgres, "sql-migrate", "sqlx"),
        (Kind::Mariadb, "flyway", "sqlx"),
    ];
    for (kind, tool, files) in cases {
        let dir = adoption_files(files);
        let (v1, v2, v3) = if files == "dbmate" {
            (20240101000001, 20240101000002, 20240101000003)
        } else {
            (1, 2, 3)
        };
        let db = Db::new(kind);
        foreign_state(&db, tool, &v1.to_string(), &v2.to_string());
        let fmt = if files == "sqlx" {
            "golang-migrate"
        } else {
            files
        };
        let status = go(&db, dir.path(), &["--format", fmt, "status"]);
        assert_eq!(status.code(), 1, "{tool}: one pending: {}", status.all());
        let r = go(&db, dir.path(), &["--format", fmt]);
        assert_ok(&r);
        assert!(
            r.stderr.contains("adopted 2 migrations applied by")
                && r.stderr.contains(&format!("{v1}, {v2}")),
            "{tool}: {}",
            r.stderr
        );
        assert!(db.has_table("c"), "{tool}: the new migration ran");
        assert_eq!(
            db.history(),
            vec![(v1, true), (v2, true), (v3, true)],
            "{tool}"
        );
        // Checksums are the files': the next run has nothing to do.
        assert_ok(&go(&db, dir.path(), &["--format", fmt, "status"]));
    }
}

/// A history that disagrees with the files, or a dirty golang-migrate database, is exit 3 with
/// the fix, before anything is recorded or run.
#[test]
fn foreign_history_disagreements_are_refused() {
    let dir = adoption_files("goose");
    let db = Db::new(Kind::Postgres);
    foreign_state(&db, "goose", "1", "7");
    let r = go(&db, dir.path(), &[]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(
        r.stderr.contains("version 7 applied") && r.stderr.contains("restore its file"),
        "{}",
        r.stderr
    );
    assert!(!db.has_table("c"));

    let dir = adoption_files("sqlx");
    let db = Db::new(Kind::Mariadb);
    foreign_state(&db, "golang-migrate", "1", "2");
    db.query("UPDATE schema_migrations SET dirty = true");
    let r = go(&db, dir.path(), &["--format", "golang-migrate"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(
        r.stderr.contains("dirty") && r.stderr.contains("migrate force 2"),
        "{}",
        r.stderr
    );
    assert!(!db.has_table("c"));
    assert_eq!(db.count("SELECT count(*) FROM _sqlx_migrations"), 0);
}

// ------------------------------------------------------------------------------ issue 13: connection settings

/// A command with no database variables from the environment of the test run.
fn clean(mut c: Command) -> Command {
    for v in [
        "DATABASE_URL",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGSSLMODE",
        "PGPASSWORD",
        "MYSQL_HOST",
        "MYSQL_TCP_PORT",
        "MYSQL_PWD",
    ] {
        c.env_remove(v);
    }
    c
}

/// libpq keyword strings and the PG*/MySQL variables, as libpq, psql, the mysql client and the
/// migration tools take them, in run-migrations and wait-for alike.
#[test]
fn libpq_keyword_strings_and_database_variables() {
    let dir = dir_with(&BASIC[..1]);
    let migrate = |extra: &[&str], env: &[(&str, &str)]| {
        let mut c = clean(initbox());
        c.arg("run-migrations")
            .arg("--dir")
            .arg(dir.path())
            .args(extra);
        for (k, v) in env {
            c.env(k, v);
        }
        run(&mut c, LIMIT)
    };
    // A keyword string, with a quoted value.
    let db = Db::new(Kind::Postgres);
    let conninfo = format!(
        "host=127.0.0.1 port = 5432 user='postgres' dbname={} sslmode=disable",
        db.name
    );
    assert_ok(&migrate(&["--database-url", &conninfo], &[]));
    assert_eq!(db.history(), vec![(1, true)]);
    // No URL at all: the PG* variables.
    let db = Db::new(Kind::Postgres);
    let pg = [
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", "5432"),
        ("PGUSER", "postgres"),
        ("PGDATABASE", db.name.as_str()),
        ("PGSSLMODE", "disable"),
    ];
    assert_ok(&migrate(&[], &pg));
    assert_eq!(db.history(), vec![(1, true)]);
    // A bare postgres:// filled from them (status: up to date).
    assert_ok(&migrate(&["--database-url", "postgres://", "status"], &pg));
    // MySQL: the host and port from MYSQL_HOST / MYSQL_TCP_PORT.
    let db = Db::new(Kind::Mariadb);
    let url = format!("mysql://root@/{}", db.name);
    let my = [("MYSQL_HOST", "127.0.0.1"), ("MYSQL_TCP_PORT", "3306")];
    assert_ok(&migrate(&["--database-url", &url], &my));
    assert_eq!(db.history(), vec![(1, true)]);
    // A wrong keyword names itself, never a value.
    let r = migrate(&["--database-url", "hots=db password=pw-canary-13"], &[]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(
        r.stderr.contains("\"hots\"") && !r.all().contains("pw-canary-13"),
        "{}",
        r.all()
    );

    // wait-for: the same settings.
    let mut c = clean(initbox());
    c.args([
        "wait-for",
        "-t",
        "20s",
        "host=127.0.0.1 user=postgres dbname=postgres sslmode=disable",
    ]);
    assert_ok(&run(&mut c, LIMIT));
    let mut c = clean(initbox());
    c.args(["wait-for", "-t", "20s", "postgres://"]);
    for (k, v) in pg {
        c.env(k, v);
    }
    assert_ok(&run(&mut c, LIMIT));
    let mut c = clean(initbox());
    c.args(["wait-for", "-t", "20s", "mysql://root@/mysql"]);
    for (k, v) in my {
        c.env(k, v);
    }
    assert_ok(&run(&mut c, LIMIT));
}

/// MariaDB goes on executing a migration after its initbox is SIGKILLed: `status` says it is
/// running (not failed), and the next run waits for it, then reports what it found instead of
/// a bare "repair by hand".
#[test]
fn mariadb_orphaned_migration_after_sigkill_is_seen() {
    let db = Db::new(Kind::Mariadb);
    let dir = dir_with(&[(
        "1_slow.sql",
        "CREATE TABLE a (id integer);\nSELECT SLEEP(4);\nCREATE TABLE b (id integer);\n",
    )]);
    let mut holder = spawn(&db, dir.path(), &[]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let n = mariadb(
            "",
            &format!(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = '{}' AND INFO LIKE '%SLEEP(4)%' AND ID <> CONNECTION_ID()",
                db.name
            ),
        );
        if n.trim() != "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: killing the child we spawned.
    unsafe { libc::kill(holder.id() as i32, libc::SIGKILL) };
    let _ = holder.wait();
    let status = go(&db, dir.path(), &["status"]);
    assert!(
        status.stdout.contains("running (connection"),
        "{}",
        status.all()
    );
    let started = Instant::now();
    let r = go(&db, dir.path(), &[]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("is applying migration 1 right now"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("found: migration 1 was still being executed by connection"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    // Now it is what it is: failed part-way, and status says so.
    let status = go(&db, dir.path(), &["status"]);
    assert!(status.stdout.contains("failed"), "{}", status.all());
}

// ------------------------------------------------------------------------------ issue 13: down

/// `down` undoes with the down sections/files the formats carry (newest first, N steps or down
/// to a version), removing the history rows; a migration without one is refused up front.
#[test]
fn down_uses_the_formats_own_down_parts() {
    let goose = dir_with(&[
        (
            "1_a.sql",
            "-- +goose Up\nCREATE TABLE a (id integer);\n-- +goose Down\nDROP TABLE a;\n",
        ),
        (
            "2_b.sql",
            "-- +goose Up\nCREATE TABLE b (id integer);\n-- +goose Down\n-- +goose StatementBegin\nDROP TABLE b;\n-- +goose StatementEnd\n",
        ),
        (
            "3_c.sql",
            "-- +goose Up\nCREATE TABLE c (id integer);\n-- +goose Down\nDROP TABLE c;\n",
        ),
    ]);
    let sqlx = dir_with(&[
        ("1_a.up.sql", "CREATE TABLE a (id integer);\n"),
        ("1_a.down.sql", "DROP TABLE a;\n"),
        ("2_b.sql", "CREATE TABLE b (id integer);\n"),
    ]);
    let dbmate = dir_with(&[(
        "20240101000001_a.sql",
        "-- migrate:up\nCREATE TABLE a (id integer);\n-- migrate:down\nDROP TABLE a;\n",
    )]);
    for kind in [Kind::Postgres, Kind::Mariadb, Kind::Sqlite] {
        let db = Db::new(kind);
        assert_ok(&go(&db, goose.path(), &[]));
        assert_ok(&go(&db, goose.path(), &["down"]));
        assert!(!db.has_table("c") && db.has_table("b"), "{kind:?}");
        assert_eq!(db.history(), vec![(1, true), (2, true)]);
        assert_ok(&go(&db, goose.path(), &["down", "--to", "0"]));
        assert!(!db.has_table("a") && !db.has_table("b"), "{kind:?}");
        assert_eq!(db.history(), vec![]);

        let db = Db::new(kind);
        assert_ok(&go(&db, sqlx.path(), &[]));
        // 2_b.sql has no down file: refused, nothing undone.
        let r = go(&db, sqlx.path(), &["down", "2"]);
        assert_eq!(r.code(), 3, "{}", r.all());
        assert!(r.stderr.contains("no down section or file"), "{}", r.stderr);
        assert_eq!(db.history(), vec![(1, true), (2, true)]);

        let db = Db::new(kind);
        assert_ok(&go(&db, dbmate.path(), &[]));
        assert_ok(&go(&db, dbmate.path(), &["down"]));
        assert!(!db.has_table("a"), "{kind:?}");
    }
}

/// `new NAME` writes the next file in the directory's own format; `--create-database` creates
/// a missing database first (opt-in, as dbmate's `create`; without it a missing database is
/// exit 3).
#[test]
fn new_files_and_create_database() {
    // goose numbered 00001, 00002: the next is 00003 in goose's template, and it applies.
    let goose = dir_with(&[
        (
            "00001_a.sql",
            "-- +goose Up\nCREATE TABLE a (id integer);\n",
        ),
        (
            "00002_b.sql",
            "-- +goose Up\nCREATE TABLE b (id integer);\n",
        ),
    ]);
    let mut c = initbox();
    c.args(["run-migrations", "--dir"])
        .arg(goose.path())
        .args(["new", "add users"]);
    let r = run(&mut c, LIMIT);
    assert_ok(&r);
    let made = goose.path().join("00003_add_users.sql");
    assert_eq!(r.stdout.trim(), made.display().to_string());
    assert!(
        std::fs::read_to_string(&made)
            .unwrap()
            .starts_with("-- +goose Up\n")
    );
    // dbmate (timestamps), golang-migrate (pairs), empty (sqlx).
    let dbmate = dir_with(&[(
        "20240101000001_a.sql",
        "-- migrate:up\nCREATE TABLE a (id integer);\n-- migrate:down\nDROP TABLE a;\n",
    )]);
    let empty = tempfile::tempdir().unwrap();
    for (dir, args, suffixes) in [
        (dbmate.path(), vec![], vec!["_x.sql"]),
        (
            empty.path(),
            vec!["--format", "golang-migrate"],
            vec!["_x.up.sql", "_x.down.sql"],
        ),
        (empty.path(), vec!["--format", "sqlx"], vec!["_x.sql"]),
    ] {
        let mut c = initbox();
        c.args(["run-migrations", "--dir"])
            .arg(dir)
            .args(&args)
            .args(["new", "x"]);
        let r = run(&mut c, LIMIT);
        assert_ok(&r);
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(lines.len(), suffixes.len(), "{}", r.stdout);
        for (l, s) in lines.iter().zip(suffixes) {
            assert!(l.ends_with(s) && Path::new(l).exists(), "{l}");
            let stem = Path::new(l)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
            assert!(
                stem.starts_with("20") && stem.len() == 14 + s.len(),
                "timestamp: {stem}"
            );
        }
        for l in lines {
            std::fs::remove_file(l).unwrap();
        }
    }
    // --create-database, PostgreSQL and MariaDB.
    let dir = dir_with(&BASIC[..1]);
    for kind in [Kind::Postgres, Kind::Mariadb] {
        let name = unique("initbox_migrate_create");
        let url = match kind {
            Kind::Postgres => format!("postgres://postgres@127.0.0.1:5432/{name}"),
            _ => format!("mysql://root@127.0.0.1:3306/{name}"),
        };
        let db = Db {
            kind,
            name: name.clone(),
            dir: None,
            file: None,
        };
        let mut c = initbox();
        c.args(["run-migrations", "--database-url", &url, "--dir"])
            .arg(dir.path());
        assert_eq!(
            run(&mut c, LIMIT).code(),
            3,
            "missing database without the flag"
        );
        let mut c = initbox();
        c.args([
            "run-migrations",
            "--database-url",
            &url,
            "--create-database",
            "--dir",
        ])
        .arg(dir.path());
        let r = run(&mut c, LIMIT);
        assert_ok(&r);
        assert!(r.stderr.contains("created the database"), "{}", r.stderr);
        assert_eq!(db.history(), vec![(1, true)]);
        // Existing: nothing to create.
        let r = run(&mut c, LIMIT);
        assert_ok(&r);
        assert!(!r.stderr.contains("created the database"), "{}", r.stderr);
    }
}

// ------------------------------------------------------------------------------ sql-migrate, against the real tool

/// The schema SQLite holds, without either tool's history table.
fn sqlite_schema(file: &Path) -> String {
    let o = Command::new("sqlite3")
        .arg(file)
        .arg("SELECT type, name, sql FROM sqlite_master WHERE name NOT IN ('_sqlx_migrations', 'gorp_migrations') AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .output()
        .expect("sqlite3");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// sql-migrate files read as sql-migrate reads them: the same files applied by the real
/// sql-migrate (Debian package, tests/setup/21-run-migrations-tools.sh) and by initbox give
/// the same schema; what sql-migrate refuses, initbox refuses.
#[test]
fn sql_migrate_files_match_the_real_sql_migrate() {
    assert!(
        Command::new("sql-migrate").arg("--help").output().is_ok(),
        "sql-migrate is needed (tests/setup/21-run-migrations-tools.sh installs it)"
    );
    let sql_migrate = |dir: &Path, db: &Path| {
        let conf = dir.join("dbconfig.yml");
        std::fs::write(
            &conf,
            format!(
                "test:\n  dialect: sqlite3\n  datasource: {}\n  dir: {}\n",
                db.display(),
                dir.join("m").display()
            ),
        )
        .unwrap();
        Command::new("sql-migrate")
            .args(["up", "-env", "test", "-config"])
            .arg(&conf)
            .output()
            .unwrap()
    };
    let accepted: &[(&str, &str)] = &[
        (
            "1_users.sql",
            "-- +migrate Up\nCREATE TABLE users (id integer PRIMARY KEY, name text);\nINSERT INTO users VALUES (1, 'a;b'); -- first\n\n-- +migrate Down\nDROP TABLE users;\n",
        ),
        (
            "2_trigger.sql",
            "-- comment before\n-- +migrate  Up   notransaction\n-- +migrate StatementBegin\nCREATE TRIGGER t AFTER INSERT ON users BEGIN\n  UPDATE users SET name = upper(name) WHERE id = NEW.id;\nEND;\n-- +migrate StatementEnd\n-- +migrate Down\nDROP TRIGGER t;\n",
        ),
        ("3_empty.sql", "-- +migrate Up\n-- +migrate Down\n"),
        (
            "4_more.sql",
            "-- +migrate Up foo:bar\r\nCREATE TABLE more (id integer);\r\nINSERT INTO users VALUES (2, 'x');\r\n-- +migrate Down\r\nDROP TABLE more;\r\n",
        ),
    ];
    let work = tempfile::tempdir().unwrap();
    let m = work.path().join("m");
    std::fs::create_dir(&m).unwrap();
    for (n, t) in accepted {
        std::fs::write(m.join(n), t).unwrap();
    }
    let theirs = work.path().join("theirs.db");
    let o = sql_migrate(work.path(), &theirs);
    assert!(o.status.success(), "sql-migrate: {}", common::text(&o));
    let ours = work.path().join("ours.db");
    let mut c = initbox();
    c.args(["run-migrations", "--database-url"])
        .arg(format!("sqlite://{}", ours.display()))
        .arg("--dir")
        .arg(&m);
    let r = run(&mut c, LIMIT);
    assert_ok(&r);
    assert_eq!(sqlite_schema(&ours), sqlite_schema(&theirs));
    assert!(sqlite_schema(&ours).contains("CREATE TRIGGER t"));
    // Same rows, the trigger included.
    let rows = |f: &Path| {
        let o = Command::new("sqlite3")
            .arg(f)
            .arg("SELECT * FROM users ORDER BY id")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(rows(&ours), rows(&theirs));

    // What sql-migrate refuses.
    for bad in [
        "-- +migrate Up\nCREATE TABLE a (id integer)\n-- +migrate Down\nDROP TABLE a;\n",
        "-- +migrate Up\nCREATE TABLE a (id integer);\n-- +migrate Down\nDROP TABLE a\n",
        "-- +migrate up\nCREATE TABLE a (id integer);\n",
        "CREATE TABLE a (id integer);\n",
    ] {
        let work = tempfile::tempdir().unwrap();
        let m = work.path().join("m");
        std::fs::create_dir(&m).unwrap();
        std::fs::write(m.join("1_a.sql"), bad).unwrap();
        let o = sql_migrate(work.path(), &work.path().join("theirs.db"));
        let theirs_failed = String::from_utf8_lossy(&o.stdout).contains("failed")
            || String::from_utf8_lossy(&o.stderr).contains("failed")
            || !o.status.success();
        assert!(
            theirs_failed,
            "sql-migrate accepts {bad:?}: {}",
            common::text(&o)
        );
        let mut c = initbox();
        c.args([
            "run-migrations",
            "--format",
            "sql-migrate",
            "--database-url",
        ])
        .arg(format!(
            "sqlite://{}",
            work.path().join("ours.db").display()
        ))
        .arg("--dir")
        .arg(&m);
        let r = run(&mut c, LIMIT);
        assert_eq!(r.code(), 3, "{bad:?}: {}", r.all());
    }
}
