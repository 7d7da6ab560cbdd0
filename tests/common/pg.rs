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

/// A private PostgreSQL cluster in `base/data` with scram-sha-256 authentication, whose
/// `postgres` user has a given password, on a free port of 127.0.0.1 (the shared server on 5432
/// trusts every connection, so a password is never checked there). Stopped (immediate) and its
/// directory removed when dropped.
pub struct ScramCluster {
    pub base: PathBuf,
    pub port: u16,
}

impl ScramCluster {
    /// initdb in `base/data` (made reachable by and owned by `postgres`), with `extra_conf`
    /// lines appended to postgresql.conf; not started.
    pub fn init(base: &Path, password: &str, extra_conf: &str) -> ScramCluster {
        use std::io::Write;
        let uid = postgres_uid();
        std::fs::create_dir_all(base).unwrap();
        // runuser as postgres must reach the directory.
        reachable(base);
        let pwfile = base.join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).unwrap();
        std::os::unix::fs::chown(base, Some(uid), Some(uid)).unwrap();
        std::os::unix::fs::chown(&pwfile, Some(uid), Some(uid)).unwrap();
        let data = base.join("data");
        let o = as_postgres(&[
            pg_bin("initdb").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "-A",
            "scram-sha-256",
            "--pwfile",
            pwfile.to_str().unwrap(),
            "--no-sync",
        ]);
        assert!(o.status.success(), "initdb: {}", super::text(&o));
        let port = super::free_port();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        writeln!(
            conf,
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n{extra_conf}",
            base.display()
        )
        .unwrap();
        ScramCluster {
            base: base.to_path_buf(),
            port,
        }
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.base.join("data")
    }

    /// `pg_ctl -D DATA -l BASE/log ARGS` as `postgres`; a failure fails the test.
    pub fn pg_ctl(&self, args: &[&str]) {
        let (data, log) = (self.data(), self.base.join("log"));
        let mut full = vec![
            pg_bin("pg_ctl").to_str().unwrap().to_string(),
            "-D".into(),
            data.to_str().unwrap().into(),
            "-l".into(),
            log.to_str().unwrap().into(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let o = as_postgres(&refs);
        assert!(o.status.success(), "pg_ctl {args:?}: {}", super::text(&o));
    }
}

impl Drop for ScramCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&[
            pg_bin("pg_ctl").to_str().unwrap(),
            "-D",
            self.data().to_str().unwrap(),
            "-m",
            "immediate",
            "stop",
        ]);
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
