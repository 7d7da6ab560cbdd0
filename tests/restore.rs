//! `initbox restore` end to end: real SQLite data (`sqlite3` from Debian) backed up by
//! `initbox backup` into moto's S3 server (see tests/moto: no S3-compatible server is packaged
//! here), a directory (`file://`) and a local HTTP server (`python3 -m http.server`).

mod common;
mod moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pg::{as_postgres, pg_bin};
use common::{initbox, run};
use moto::{Moto, with_s3};

const LIMIT: Duration = Duration::from_secs(120);

fn sqlite(db: &Path, sql: &str) -> String {
    let o = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 is installed (tests/setup/20-restore.sh)");
    assert!(
        o.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

const CHECK: &str = "sqlite3 app.db 'PRAGMA integrity_check'";

/// A data directory with app.db holding `value`.
fn data_with(root: &Path, name: &str, value: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(d.join("sub")).unwrap();
    let _ = std::fs::remove_file(d.join("app.db"));
    sqlite(
        &d.join("app.db"),
        &format!("create table t(v text); insert into t values ('{value}');"),
    );
    std::fs::write(d.join("sub/notes.txt"), format!("notes of {value}\n")).unwrap();
    d
}

fn backup_s3(moto: &Moto, dir: &Path, to: &str) {
    let r = run(
        with_s3(initbox(), moto).args(["backup", "--from", dir.to_str().unwrap(), "--to", to]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "backup: {}", r.all());
}

fn restore_s3(moto: &Moto, from: &str, to: &Path, extra: &[&str]) -> common::Run {
    run(
        with_s3(initbox(), moto)
            .args(["restore", "--from", from, "--to", to.to_str().unwrap()])
            .args(extra),
        LIMIT,
    )
}

#[test]
fn empty_volume_is_restored_from_s3_with_owner_and_modes() {
    let moto = Moto::start(None);
    moto.make_bucket("rs-empty");
    let tmp = tempfile::tempdir().unwrap();
    let src = data_with(tmp.path(), "src", "one");
    backup_s3(&moto, &src, "s3://rs-empty/app/");
    // A volume mount point: exists, empty but for lost+found.
    let vol = tmp.path().join("vol");
    std::fs::create_dir_all(vol.join("lost+found")).unwrap();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let owner = format!("{uid}:{uid}");
    let r = restore_s3(
        &moto,
        "s3://rs-empty/app/",
        &vol,
        &[
            "--check",
            CHECK,
            "--check-output",
            "ok",
            "--owner",
            &owner,
            "--chmod",
            "D0750,F0640",
        ],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("state=\"empty\"") || r.stderr.contains("state=empty"),
        "{}",
        r.stderr
    );
    assert_eq!(sqlite(&vol.join("app.db"), "select v from t"), "one");
    assert_eq!(
        std::fs::read_to_string(vol.join("sub/notes.txt")).unwrap(),
        "notes of one\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(vol.join("app.db")).unwrap().mode() & 0o777,
        0o640
    );
    assert_eq!(
        std::fs::metadata(vol.join("sub")).unwrap().mode() & 0o777,
        0o750
    );
    assert!(vol.join(".initbox-state.json").exists());
    // Nothing of the work is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&vol)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with(".initbox-staging")
                || n.starts_with(".initbox-swap")
                || n.starts_with(".initbox-failed")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn healthy_volume_is_left_untouched_and_unhealthy_one_is_replaced_keeping_it_aside() {
    let moto = Moto::start(None);
    moto.make_bucket("rs-healthy");
    let tmp = tempfile::tempdir().unwrap();
    let src = data_with(tmp.path(), "src", "backed-up");
    backup_s3(&moto, &src, "s3://rs-healthy/app/");
    // The backed-up directory itself is now ours (backup wrote the marker) and healthy;
    // a change since the backup must survive.
    sqlite(&src.join("app.db"), "update t set v = 'changed-since'");
    let r = restore_s3(&moto, "s3://rs-healthy/app/", &src, &["--check", CHECK]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("healthy; left untouched"), "{}", r.stderr);
    assert_eq!(
        sqlite(&src.join("app.db"), "select v from t"),
        "changed-since"
    );

    // Corrupt it: the check fails, the backup comes back, the broken data is kept aside.
    std::fs::write(
        src.join("app.db"),
        b"this is not a database at all, sorry........",
    )
    .unwrap();
    let r = restore_s3(&moto, "s3://rs-healthy/app/", &src, &["--check", CHECK]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(sqlite(&src.join("app.db"), "select v from t"), "backed-up");
    let aside: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".initbox-failed-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        std::fs::read(aside[0].join("app.db"))
            .unwrap()
            .starts_with(b"this is not")
    );
}

#[test]
fn walk_back_skips_a_bad_digest_and_a_failing_check_and_names_both() {
    let moto = Moto::start(None);
    moto.make_bucket("rs-walk");
    let tmp = tempfile::tempdir().unwrap();
    let to = "s3://rs-walk/app/";
    // Oldest: good. Middle: a corrupt database (fails --check). Newest: good, but its archive
    // is damaged in the bucket afterwards (bad digest).
    let d = data_with(tmp.path(), "src", "oldest-good");
    backup_s3(&moto, &d, to);
    std::fs::write(d.join("app.db"), b"garbage garbage garbage garbage garbage").unwrap();
    backup_s3(&moto, &d, to);
    let d = data_with(tmp.path(), "src", "newest");
    backup_s3(&moto, &d, to);
    let keys = moto.keys("rs-walk", "app/");
    let manifests: Vec<&String> = keys
        .iter()
        .filter(|k| k.ends_with(".manifest.json"))
        .collect();
    assert_eq!(manifests.len(), 3, "{keys:?}");
    let id = |k: &str| {
        k.trim_start_matches("app/")
            .trim_end_matches(".manifest.json")
            .to_string()
    };
    let (oldest, middle, newest) = (id(manifests[0]), id(manifests[1]), id(manifests[2]));
    // Damage the newest archive: same size, one byte flipped in the middle.
    moto.py(&format!(
        "k='app/{newest}.tar.zst'\nb=bytearray(s3.get_object(Bucket='rs-walk', Key=k)['Body'].read())\nb[len(b)//2]^=0xff\ns3.put_object(Bucket='rs-walk', Key=k, Body=bytes(b))"
    ));

    let vol = tmp.path().join("vol");
    let r = restore_s3(&moto, to, &vol, &["--check", CHECK, "--check-output", "ok"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        sqlite(&vol.join("app.db"), "select v from t"),
        "oldest-good"
    );
    let summary = r
        .stderr
        .lines()
        .find(|l| l.contains("restore: restored"))
        .expect(&r.stderr);
    assert!(summary.contains(&oldest), "{summary}");
    assert!(
        summary.contains(&newest) && summary.contains("SHA-256"),
        "{summary}"
    );
    assert!(
        summary.contains(&middle) && summary.contains("fails --check"),
        "{summary}"
    );

    // Pinning: --version-id restores exactly that one, or fails naming why.
    let vol2 = tmp.path().join("vol2");
    let r = restore_s3(
        &moto,
        to,
        &vol2,
        &["--check", CHECK, "--version-id", &middle],
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("fails --check"), "{}", r.stderr);
    assert!(!vol2.join("app.db").exists());
}

#[test]
fn kill_9_during_unpack_then_rerun_restores_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = data_with(tmp.path(), "src", "big");
    // 96 MiB of incompressible data: the unpack takes long enough to be killed in the middle.
    common::data::noise(&src.join("big.bin"), 96, 0x9E37_79B9_7F4A_7C15);
    let repo = format!("file://{}", tmp.path().join("repo").display());
    let r = run(
        initbox().args(["backup", "--from", src.to_str().unwrap(), "--to", &repo]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());

    let vol = tmp.path().join("vol");
    let mut child = initbox()
        .args(["restore", "--from", &repo, "--to", vol.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill as soon as the staging copy has data in it.
    let start = Instant::now();
    let killed = loop {
        let staged = std::fs::read_dir(&vol)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".initbox-staging-")
            })
            .map(|e| e.path());
        if let Some(s) = staged
            && std::fs::metadata(s.join("big.bin")).is_ok_and(|m| m.len() > 0)
        {
            child.kill().unwrap();
            break true;
        }
        if child.try_wait().unwrap().is_some() || start.elapsed() > LIMIT {
            break false;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = child.wait();
    assert!(killed, "the restore finished before it could be killed");
    // Killed mid-unpack: the data directory itself has nothing yet.
    assert!(!vol.join("app.db").exists() && !vol.join("big.bin").exists());

    let r = run(
        initbox().args([
            "restore",
            "--from",
            &repo,
            "--to",
            vol.to_str().unwrap(),
            "--check",
            CHECK,
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("removing an interrupted unpack"),
        "{}",
        r.stderr
    );
    assert_eq!(sqlite(&vol.join("app.db"), "select v from t"), "big");
    assert_eq!(
        std::fs::read(vol.join("big.bin")).unwrap(),
        std::fs::read(src.join("big.bin")).unwrap()
    );
    assert!(
        !std::fs::read_dir(&vol).unwrap().flatten().any(|e| e
            .file_name()
            .to_string_lossy()
            .starts_with(".initbox-staging-")),
        "no staging left"
    );
}

/// A tar.gz with a `../` entry, an absolute one and an escaping symlink, served over HTTP with
/// its checksum file: refused, nothing written outside DIR (nor inside it).
#[test]
fn archive_escaping_the_directory_is_refused_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    for (name, member) in [
        ("dotdot.tar.gz", "../escaped.txt"),
        ("absolute.tar.gz", "/tmp/initbox-escaped-absolute.txt"),
    ] {
        let py = format!(
            "import tarfile, io, hashlib\np='{}'\nwith tarfile.open(p, 'w:gz') as t:\n  for n, data in [('ok.txt', b'fine'), ('{member}', b'evil')]:\n    i = tarfile.TarInfo(n); i.size = len(data); t.addfile(i, io.BytesIO(data))\nopen(p + '.sha256', 'w').write(hashlib.sha256(open(p, 'rb').read()).hexdigest() + '  {name}\\n')\n",
            site.join(name).display()
        );
        let o = Command::new("python3").arg("-c").arg(&py).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let py = format!(
        "import tarfile, io, hashlib\np='{}'\nwith tarfile.open(p, 'w:gz') as t:\n  i = tarfile.TarInfo('link'); i.type = tarfile.SYMTYPE; i.linkname = '../..'; t.addfile(i)\n  i = tarfile.TarInfo('link/escaped.txt'); i.size = 4; t.addfile(i, io.BytesIO(b'evil'))\nopen(p + '.sha256', 'w').write(hashlib.sha256(open(p, 'rb').read()).hexdigest() + '  symlink.tar.gz\\n')\n",
        site.join("symlink.tar.gz").display()
    );
    let o = Command::new("python3").arg("-c").arg(&py).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let port = common::free_port();
    let mut server = Command::new("python3")
        .args(["-m", "http.server", "-b", "127.0.0.1", &port.to_string()])
        .current_dir(&site)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for (name, why) in [
        ("dotdot.tar.gz", "contains '..'"),
        ("absolute.tar.gz", "is absolute"),
        ("symlink.tar.gz", "leaves the target"),
    ] {
        let vol = tmp.path().join("deep/vol");
        let r = run(
            initbox().args([
                "restore",
                "--from",
                &format!("http://127.0.0.1:{port}/{name}"),
                "--to",
                vol.to_str().unwrap(),
            ]),
            LIMIT,
        );
        assert_eq!(r.code(), 1, "{name}: {}", r.all());
        assert!(r.stderr.contains(why), "{name}: {}", r.stderr);
        assert!(!tmp.path().join("deep/escaped.txt").exists());
        assert!(!tmp.path().join("escaped.txt").exists());
        assert!(!Path::new("/tmp/initbox-escaped-absolute.txt").exists());
        assert!(
            !vol.join("ok.txt").exists(),
            "nothing of a refused archive lands in DIR"
        );
    }
    // A good archive over HTTP with its checksum file is restored.
    let py = format!(
        "import tarfile, io, hashlib\np='{}'\nwith tarfile.open(p, 'w:gz') as t:\n  i = tarfile.TarInfo('hello.txt'); i.size = 5; t.addfile(i, io.BytesIO(b'hello'))\nopen(p + '.sha256', 'w').write(hashlib.sha256(open(p, 'rb').read()).hexdigest() + '  good.tar.gz\\n')\n",
        site.join("good.tar.gz").display()
    );
    assert!(
        Command::new("python3")
            .arg("-c")
            .arg(&py)
            .status()
            .unwrap()
            .success()
    );
    let vol = tmp.path().join("good");
    let r = run(
        initbox().args([
            "restore",
            "--from",
            &format!("http://127.0.0.1:{port}/good.tar.gz"),
            "--to",
            vol.to_str().unwrap(),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        std::fs::read_to_string(vol.join("hello.txt")).unwrap(),
        "hello"
    );
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn foreign_data_is_never_overwritten_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let src = data_with(tmp.path(), "src", "from-backup");
    let repo = format!("file://{}", tmp.path().join("repo").display());
    let r = run(
        initbox().args(["backup", "--from", src.to_str().unwrap(), "--to", &repo]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let vol = tmp.path().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("someone-elses.txt"), "precious").unwrap();
    let restore = |extra: &[&str]| {
        run(
            initbox()
                .args(["restore", "--from", &repo, "--to", vol.to_str().unwrap()])
                .args(extra),
            LIMIT,
        )
    };
    let r = restore(&[]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("foreign"), "{}", r.stderr);
    let r = restore(&["--foreign", "fail"]);
    assert_eq!(r.code(), 4, "{}", r.all());
    let r = restore(&["--if", "empty"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        std::fs::read_to_string(vol.join("someone-elses.txt")).unwrap(),
        "precious"
    );
    assert!(!vol.join("app.db").exists());
    // Asked: restored, the foreign data kept aside.
    let r = restore(&["--foreign", "restore"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        sqlite(&vol.join("app.db"), "select v from t"),
        "from-backup"
    );
    assert!(!vol.join("someone-elses.txt").exists());
    let aside = std::fs::read_dir(&vol)
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".initbox-failed-")
        })
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(aside.path().join("someone-elses.txt")).unwrap(),
        "precious"
    );
}

#[test]
fn wrong_credentials_exit_5_and_a_missing_bucket_exits_3() {
    // moto enforcing IAM authentication after the setup requests: signatures and keys are
    // checked as S3 checks them.
    let moto = Moto::start(Some(4));
    let out = moto.py(
        "iam = boto3.client('iam', endpoint_url=s3.meta.endpoint_url, region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n\
         iam.create_user(UserName='rs')\n\
         iam.put_user_policy(UserName='rs', PolicyName='all', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}))\n\
         k = iam.create_access_key(UserName='rs')['AccessKey']\n\
         s3.create_bucket(Bucket='rs-creds')\n\
         print(k['AccessKeyId'], k['SecretAccessKey'])",
    );
    let mut it = out.split_whitespace();
    let (key, secret) = (
        it.next().unwrap().to_string(),
        it.next().unwrap().to_string(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let src = data_with(tmp.path(), "src", "creds");
    let cmd = |k: &str, s: &str, args: &[&str]| {
        let mut c = with_s3(initbox(), &moto);
        c.env("AWS_ACCESS_KEY_ID", k)
            .env("AWS_SECRET_ACCESS_KEY", s)
            .args(args);
        c
    };
    // The real keys work (and so the signing is what S3 expects). The repository is the
    // bucket's root: moto's signature check mis-encodes a `/` in a query value (boto3's own
    // ListObjectsV2 with Prefix='app/' is refused the same way), which real S3 accepts.
    let r = run(
        &mut cmd(
            &key,
            &secret,
            &[
                "backup",
                "--from",
                src.to_str().unwrap(),
                "--to",
                "s3://rs-creds/",
            ],
        ),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let vol = tmp.path().join("vol");
    let r = run(
        &mut cmd(
            &key,
            "wrong-secret-key-value",
            &[
                "restore",
                "--from",
                "s3://rs-creds/",
                "--to",
                vol.to_str().unwrap(),
            ],
        ),
        LIMIT,
    );
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(!r.all().contains("wrong-secret-key-value"));
    let r = run(
        &mut cmd(
            "AKIAUNKNOWNKEY000000",
            "x",
            &[
                "restore",
                "--from",
                "s3://rs-creds/",
                "--to",
                vol.to_str().unwrap(),
            ],
        ),
        LIMIT,
    );
    assert_eq!(r.code(), 5, "{}", r.all());
    let r = run(
        &mut cmd(
            &key,
            &secret,
            &[
                "restore",
                "--from",
                "s3://rs-no-such-bucket/",
                "--to",
                vol.to_str().unwrap(),
            ],
        ),
        LIMIT,
    );
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(
        r.stderr
            .contains("bucket 'rs-no-such-bucket' does not exist"),
        "{}",
        r.stderr
    );
    assert!(!vol.join("app.db").exists());
}

/// The example pod's restore and backup command lines are ones this binary accepts (every flag
/// exists and parses); the scheduled backup is the part after `schedule … --`.
#[test]
fn the_kubernetes_example_commands_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import yaml, json, sys\n\
             docs = list(yaml.safe_load_all(open(sys.argv[1])))\n\
             spec = [d for d in docs if d['kind'] == 'Deployment'][0]['spec']['template']['spec']\n\
             print(json.dumps({c['name']: c.get('command') for c in spec['initContainers']}))",
        )
        .arg(root.join("examples/kubernetes/restore-backup.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmds: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let argv = |name: &str| -> Vec<String> {
        cmds[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let restore = argv("restore");
    assert_eq!(restore[1], "restore");
    let backup = argv("backup");
    assert_eq!(&backup[1..4], ["schedule", "--at", "03:30"]);
    let sep = backup.iter().position(|a| a == "--").unwrap();
    let backup = backup[sep + 1..].to_vec();
    assert_eq!(backup[1], "backup");
    for cmd in [restore, backup] {
        // Every flag of the line parses: only --help is added, which ends parsing with exit 0.
        let r = run(initbox().args(&cmd[1..]).arg("--help"), LIMIT);
        assert_eq!(r.code(), 0, "{cmd:?}: {}", r.all());
    }
}

/// A PostgreSQL cluster of the newest installed version in `data`, stopped (immediately) when
/// dropped, so a failing test leaves no server behind.
struct Postgres {
    data: PathBuf,
    sockets: PathBuf,
    port: u16,
}

impl Postgres {
    fn start(data: &Path, sockets: &Path) -> Postgres {
        let port = common::free_port();
        let pg = Postgres {
            data: data.to_path_buf(),
            sockets: sockets.to_path_buf(),
            port,
        };
        let o = as_postgres(&[
            pg_bin("pg_ctl").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-l",
            sockets.join("log").to_str().unwrap(),
            "-w",
            "-o",
            &format!(
                "-p {port} -k {} -c listen_addresses='' -c fsync=off",
                sockets.display()
            ),
            "start",
        ]);
        assert!(o.status.success(), "pg_ctl start: {}", common::text(&o));
        pg
    }

    fn sql(&self, sql: &str) -> String {
        let o = as_postgres(&[
            pg_bin("psql").to_str().unwrap(),
            "-h",
            self.sockets.to_str().unwrap(),
            "-p",
            &self.port.to_string(),
            "-d",
            "postgres",
            "-XAtqc",
            sql,
        ]);
        assert!(o.status.success(), "psql {sql}: {}", common::text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// A clean shutdown (what a pod's termination gives PostgreSQL).
    fn stop(self) {
        let o = as_postgres(&[
            pg_bin("pg_ctl").to_str().unwrap(),
            "-D",
            self.data.to_str().unwrap(),
            "-m",
            "fast",
            "-w",
            "stop",
        ]);
        assert!(o.status.success(), "pg_ctl stop: {}", common::text(&o));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&[
            pg_bin("pg_ctl").to_str().unwrap(),
            "-D",
            self.data.to_str().unwrap(),
            "-m",
            "immediate",
            "stop",
        ]);
    }
}

/// A PostgreSQL data directory (initdb'd as the postgres user, the volume holding `pgdata/` as
/// the postgres image recommends): backed up after a clean shutdown; then its `pg_control` is
/// lost (truncated, as a torn write leaves it) and that state backed up too. With
/// `--check 'pg_controldata pgdata'` the volume is found unhealthy, the newest version fails
/// the same check in staging, the one before is restored with the postgres user's ownership
/// and the 0700 mode PostgreSQL insists on, and the server starts on it with the data.
#[test]
fn postgres_data_directory_with_a_lost_pg_control_is_restored_and_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("pg");
    let (vol, sockets) = (base.join("vol"), base.join("sockets"));
    for d in [&vol, &sockets] {
        std::fs::create_dir_all(d).unwrap();
    }
    common::pg::reachable(&base);
    let uid = common::pg::postgres_uid();
    for d in [&vol, &sockets] {
        std::os::unix::fs::chown(d, Some(uid), Some(uid)).unwrap();
    }
    let pgdata = vol.join("pgdata");
    let o = as_postgres(&[
        pg_bin("initdb").to_str().unwrap(),
        "-D",
        pgdata.to_str().unwrap(),
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
    ]);
    assert!(o.status.success(), "initdb: {}", common::text(&o));
    let pg = Postgres::start(&pgdata, &sockets);
    pg.sql("create table t(v text); insert into t values ('before the outage')");
    pg.stop();

    let repo = format!("file://{}", base.join("repo").display());
    let backup = || {
        let r = run(
            initbox().args(["backup", "--from", vol.to_str().unwrap(), "--to", &repo]),
            LIMIT,
        );
        assert_eq!(r.code(), 0, "{}", r.all());
    };
    backup();
    let control = pgdata.join("global/pg_control");
    std::fs::File::options()
        .write(true)
        .open(&control)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(10));
    backup();
    let ids: Vec<String> =
        common::data::names(&base.join("repo"), |n| n.ends_with(".manifest.json"))
            .iter()
            .map(|n| n.trim_end_matches(".manifest.json").to_string())
            .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");

    let check = format!("{} pgdata", pg_bin("pg_controldata").display());
    let r = run(
        initbox().args([
            "restore",
            "--from",
            &repo,
            "--to",
            vol.to_str().unwrap(),
            "--check",
            &check,
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("the data fails its check"),
        "{}",
        r.stderr
    );
    let summary = r
        .stderr
        .lines()
        .find(|l| l.contains("restore: restored"))
        .expect(&r.stderr);
    assert!(
        summary.contains(&format!("restored {}", ids[0])),
        "{summary}"
    );
    assert!(
        summary.contains(&ids[1]) && summary.contains("fails --check"),
        "{summary}"
    );
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&pgdata).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (uid, 0o700));
    assert!(std::fs::metadata(&control).unwrap().len() > 0);
    // The broken copy is kept aside, untouched.
    let aside = common::data::names(&vol, |n| n.starts_with(".initbox-failed-"));
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::metadata(vol.join(&aside[0]).join("pgdata/global/pg_control"))
            .unwrap()
            .len(),
        0
    );
    let pg = Postgres::start(&pgdata, &sockets);
    assert_eq!(pg.sql("select v from t"), "before the outage");
    pg.stop();
}
