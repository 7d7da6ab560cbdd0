//! An application that embeds sqlx's migrator and initbox, on the same directory and database,
//! agree on what is applied (same table, versions and checksums) and exclude each other (same
//! lock). sqlx's `Migrator::new(path)` reads the directory at run time exactly as
//! `sqlx::migrate!` does at compile time.
//!
//! Real servers: PostgreSQL and MariaDB on this machine (fresh database per test), SQLite files.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use clap::Parser;
use initbox_runtime::{Applet, Code, Outcome};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Connection, Executor, MySqlConnection, PgConnection, SqliteConnection};

static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique() -> String {
    format!(
        "initbox_sqlx_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

fn migrations() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "20240101000001_create_users.sql",
            "CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);\n",
        ),
        (
            "20240101000002_seed.up.sql",
            "INSERT INTO users VALUES (1, 'ada');\r\nINSERT INTO users VALUES (2, 'grace');\r\n",
        ),
        ("20240101000002_seed.down.sql", "DELETE FROM users;\n"),
        (
            "20240101000003_index.sql",
            "-- no-transaction\nCREATE INDEX users_name_idx ON users (name);\n",
        ),
    ] {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    d
}

async fn initbox(url: &str, dir: &Path, extra: &[&str]) -> Result<i32, initbox_runtime::Failure> {
    let mut argv = vec![
        "run-migrations".to_string(),
        "--database-url".into(),
        url.into(),
        "--dir".into(),
        dir.display().to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let args = initbox_run_migrations::Args::try_parse_from(argv).expect("arguments");
    match args.run().await? {
        Outcome::Exit(Code(c)) => Ok(c),
        Outcome::Exec(_) => panic!("no exec expected"),
    }
}

/// Both see the same applied versions with the same checksums.
async fn assert_agree<C: Migrate>(conn: &mut C, migrator: &Migrator) {
    let applied = conn
        .list_applied_migrations("_sqlx_migrations")
        .await
        .unwrap();
    let ours: Vec<(i64, Vec<u8>)> = applied
        .iter()
        .map(|a| (a.version, a.checksum.to_vec()))
        .collect();
    let theirs: Vec<(i64, Vec<u8>)> = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 3);
    assert_eq!(conn.dirty_version("_sqlx_migrations").await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_initbox_then_sqlx() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("app.db").display());
    let dir = migrations();
    assert_eq!(initbox(&url, dir.path(), &[]).await.unwrap(), 0);

    let migrator = Migrator::new(dir.path()).await.unwrap();
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    // sqlx validates every applied checksum and finds nothing to do.
    migrator.run(&mut conn).await.unwrap();
    assert_agree(&mut conn, &migrator).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 2, "sqlx did not apply anything twice");
}

/// Drops a test database when the test ends, also when it panics.
struct DropDb {
    admin_url: &'static str,
    name: String,
}

impl Drop for DropDb {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url, self.name.clone());
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if url.starts_with("postgres") {
                    if let Ok(mut c) = PgConnection::connect(url).await {
                        let _ = c
                            .execute(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .await;
                    }
                } else if let Ok(mut c) = MySqlConnection::connect(url).await {
                    let _ = c
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name}"
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const MY_ADMIN: &str = "mysql://root@127.0.0.1:3306/test";

async fn pg_fresh() -> (String, DropDb) {
    let name = unique();
    let mut admin = PgConnection::connect(PG_ADMIN)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (tests/setup/10-services.sh)");
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    (
        url,
        DropDb {
            admin_url: PG_ADMIN,
            name,
        },
    )
}

#[tokio::test]
async fn postgres_both_directions_and_the_shared_lock() {
    let dir = migrations();
    let migrator = Migrator::new(dir.path()).await.unwrap();

    // initbox first, then the application's migrator.
    let (url, dropper) = pg_fresh().await;
    assert_eq!(initbox(&url, dir.path(), &[]).await.unwrap(), 0);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    migrator.run(&mut conn).await.unwrap();
    assert_agree(&mut conn, &migrator).await;
    conn.close().await.unwrap();
    drop(dropper);

    // The application first, then initbox: up to date.
    let (url, _dropper) = pg_fresh().await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    migrator.run(&mut conn).await.unwrap();
    assert_eq!(initbox(&url, dir.path(), &["status"]).await.unwrap(), 0);
    assert_eq!(initbox(&url, dir.path(), &[]).await.unwrap(), 0);
    assert_agree(&mut conn, &migrator).await;

    // While the application's migrator holds sqlx's lock, initbox waits for it (same key).
    std::fs::write(
        dir.path().join("20240101000004_more.sql"),
        "CREATE TABLE more (id integer);\n",
    )
    .unwrap();
    conn.lock().await.unwrap();
    let e = initbox(&url, dir.path(), &["--lock-timeout", "1s"])
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::DEADLINE, "{}", e.message);
    assert!(
        e.message.contains("held by PostgreSQL backend"),
        "{}",
        e.message
    );
    conn.unlock().await.unwrap();
    assert_eq!(
        initbox(&url, dir.path(), &["--lock-timeout", "5s"])
            .await
            .unwrap(),
        0
    );
    // And the application's migrator accepts initbox's new row.
    let migrator = Migrator::new(dir.path()).await.unwrap();
    migrator.run(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn mariadb_same_lock_name_as_sqlx() {
    let name = unique();
    let mut admin = MySqlConnection::connect(MY_ADMIN)
        .await
        .expect("MariaDB on 127.0.0.1:3306 (tests/setup/10-services.sh)");
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let _dropper = DropDb {
        admin_url: MY_ADMIN,
        name: name.clone(),
    };
    let url = format!("mysql://root@127.0.0.1:3306/{name}");
    let dir = migrations();

    // sqlx names its MySQL lock by this formula; holding it keeps initbox out.
    let lock = format!("{:x}", initbox_run_migrations::lock_id(&name));
    let mut holder = MySqlConnection::connect(&url).await.unwrap();
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
        .bind(&lock)
        .fetch_one(&mut holder)
        .await
        .unwrap();
    assert_eq!(got, Some(1));
    let e = initbox(&url, dir.path(), &["--lock-timeout", "1500ms"])
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::DEADLINE, "{}", e.message);
    assert!(e.message.contains("held by connection"), "{}", e.message);
    holder.close().await.unwrap();

    assert_eq!(initbox(&url, dir.path(), &[]).await.unwrap(), 0);
    let migrator = Migrator::new(dir.path()).await.unwrap();
    let mut conn = MySqlConnection::connect(&url).await.unwrap();
    migrator.run(&mut conn).await.unwrap();
    assert_agree(&mut conn, &migrator).await;
    conn.close().await.unwrap();
}
