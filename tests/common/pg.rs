//! PostgreSQL's own tools for tests that need a private cluster or a data directory: the
//! newest installed version's binaries, run as the `postgres` user (initdb and the server
//! refuse root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `/usr/lib/postgresql/<newest>/bin/TOOL`.
pub fn pg_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (tests/setup/10-services.sh)")
        .filter_map(|e| {
            let p = e.ok()?.path();
            Some((p.file_name()?.to_str()?.parse().ok()?, p))
        })
        .collect();
    versions.sort();
    versions
        .last()
        .expect("a PostgreSQL version")
        .1
        .join("bin")
        .join(tool)
}

/// Run `args` as the `postgres` user.
pub fn as_postgres(args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .expect("runuser")
}

/// The uid of the `postgres` user.
pub fn postgres_uid() -> u32 {
    let o = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("a postgres user")
}

/// Make `dir` and its parents below the temporary directory reachable by other users (a
/// tempdir is 0700), so the `postgres` user can get to what it owns inside.
pub fn reachable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = std::env::temp_dir();
    let mut p = dir;
    while p.starts_with(&tmp) && p != tmp {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
}
