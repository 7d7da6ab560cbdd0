//! `initbox backup` end to end: moto's S3 server (see tests/moto: no S3-compatible server is
//! packaged here) and a directory repository; restored with `initbox restore` to prove the
//! round trip.

mod common;
mod moto;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{initbox, run, wait_child};
use moto::{Moto, with_s3};

const LIMIT: Duration = Duration::from_secs(120);

/// Incompressible bytes (xorshift), so the archive really is this large.
fn noise(path: &Path, mib: usize, seed: u64) {
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut f = std::fs::File::create(path).unwrap();
    for _ in 0..mib {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        std::io::Write::write_all(&mut f, &buf).unwrap();
    }
}

#[test]
fn large_backup_goes_up_in_parts_and_comes_back_identical() {
    let moto = Moto::start(None);
    moto.make_bucket("bk-large");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    noise(&src.join("a/big.bin"), 20, 7);
    std::fs::write(src.join("a/b/small.txt"), "small\n").unwrap();
    std::os::unix::fs::symlink("../big.bin", src.join("a/b/link")).unwrap();
    let r = run(
        with_s3(initbox(), &moto).args([
            "backup",
            "--from",
            src.to_str().unwrap(),
            "--to",
            "s3://bk-large/app/",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("verified"), "{}", r.stderr);
    let keys = moto.keys("bk-large", "app/");
    assert_eq!(keys.len(), 2, "archive + manifest, no lock left: {keys:?}");
    // Multipart: S3's ETag of a multipart object is "<md5 of part md5s>-<parts>".
    let archive = keys.iter().find(|k| k.ends_with(".tar.zst")).unwrap();
    let etag = moto.py(&format!(
        "print(s3.head_object(Bucket='bk-large', Key='{archive}')['ETag'])"
    ));
    assert!(
        etag.trim().trim_matches('"').ends_with("-3"),
        "3 parts of 8 MiB: {etag}"
    );
    let manifest: serde_json::Value = serde_json::from_str(&moto.py(&format!(
        "print(s3.get_object(Bucket='bk-large', Key='{}')['Body'].read().decode())",
        keys.iter().find(|k| k.ends_with(".manifest.json")).unwrap()
    )))
    .unwrap();
    assert_eq!(manifest["format"], "initbox-backup/1");
    assert_eq!(manifest["sha256"].as_str().unwrap().len(), 64);
    // The source directory is now marked as ours.
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join(".initbox-state.json")).unwrap()).unwrap();
    assert_eq!(marker["by"], "backup");
    assert_eq!(marker["version"], manifest["id"]);

    let vol = tmp.path().join("vol");
    let r = run(
        with_s3(initbox(), &moto).args([
            "restore",
            "--from",
            "s3://bk-large/app/",
            "--to",
            vol.to_str().unwrap(),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        std::fs::read(vol.join("a/big.bin")).unwrap(),
        std::fs::read(src.join("a/big.bin")).unwrap()
    );
    assert_eq!(
        std::fs::read_link(vol.join("a/b/link")).unwrap(),
        Path::new("../big.bin")
    );
    assert_eq!(
        std::fs::read_to_string(vol.join("a/b/small.txt")).unwrap(),
        "small\n"
    );
}

/// Ids of past versions, at noon `days` ago (and 08:00 for the second of a day), from Python's
/// clock, so the test holds on any date.
fn past_ids() -> Vec<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "from datetime import datetime, timedelta, timezone\n\
             d = datetime.now(timezone.utc).date()\n\
             for days, hour in [(1, 12), (1, 8), (2, 12), (3, 12), (10, 12)]:\n\
             \x20 t = datetime(d.year, d.month, d.day, hour, tzinfo=timezone.utc) - timedelta(days=days)\n\
             \x20 print(t.strftime('%Y-%m-%dT%H%M%S.000Z'))",
        )
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn retention_keeps_exactly_what_the_policy_says_after_verifying() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.txt"), "v1\n").unwrap();
    // One real version to copy the past ones from.
    let scratch = tmp.path().join("scratch");
    let r = run(
        initbox().args([
            "backup",
            "--from",
            src.to_str().unwrap(),
            "--to",
            &format!("file://{}", scratch.display()),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let manifest_name = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".manifest.json"))
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join(&manifest_name)).unwrap()).unwrap();
    let archive = manifest["archive"].as_str().unwrap();

    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let ids = past_ids();
    let [a, b, c, d, e] = [&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]];
    for id in &ids {
        std::fs::copy(scratch.join(archive), repo.join(format!("{id}.tar.zst"))).unwrap();
        let mut m = manifest.clone();
        m["id"] = serde_json::json!(id);
        m["archive"] = serde_json::json!(format!("{id}.tar.zst"));
        std::fs::write(
            repo.join(format!("{id}.manifest.json")),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
    }
    // An interrupted upload: an archive without a manifest.
    std::fs::write(repo.join("2026-01-01T000000.000Z.tar.zst"), b"partial").unwrap();

    std::fs::write(src.join("data.txt"), "v2\n").unwrap();
    let r = run(
        initbox().args([
            "backup",
            "--from",
            src.to_str().unwrap(),
            "--to",
            &format!("file://{}", repo.display()),
            "--keep-last",
            "1",
            "--keep-daily",
            "3",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let verified = r.stderr.find("verified").expect(&r.stderr);
    let removed = r.stderr.find("retention removed").expect(&r.stderr);
    assert!(verified < removed, "retention only after verification");
    let mut left: Vec<String> = std::fs::read_dir(&repo)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".manifest.json"))
        .map(|n| n.trim_end_matches(".manifest.json").to_string())
        .collect();
    left.sort();
    // restic's rules: last 1 = the new one (today); daily 3 = today, yesterday's newest (a, not
    // b), the day before (c); d and e go.
    let new = left.last().unwrap().clone();
    assert!(new > *a, "{left:?}");
    let mut want = vec![c.clone(), a.clone(), new];
    want.sort();
    assert_eq!(left, want, "removed: {b} {d} {e}");
    for gone in [b, d, e] {
        assert!(!repo.join(format!("{gone}.tar.zst")).exists(), "{gone}");
    }
    assert!(
        !repo.join("2026-01-01T000000.000Z.tar.zst").exists(),
        "the orphan archive goes"
    );
    assert!(
        !repo.join(".initbox-lock.json").exists(),
        "the lease is released"
    );
}

#[test]
fn two_concurrent_backups_never_overlap_and_a_dead_holder_loses_the_lease() {
    let moto = Moto::start(None);
    moto.make_bucket("bk-lock");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.txt"), "data\n").unwrap();
    let start = || {
        with_s3(initbox(), &moto)
            .args([
                "backup",
                "--from",
                src.to_str().unwrap(),
                "--to",
                "s3://bk-lock/app/",
                "--keep-last",
                "1",
                "--pre",
                "sleep 2",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (one, two) = (start(), start());
    let (r1, r2) = (wait_child(one, LIMIT), wait_child(two, LIMIT));
    let mut codes = [r1.code(), r2.code()];
    codes.sort();
    assert_eq!(
        codes,
        [0, 1],
        "one wins, one is refused:\n{}\n{}",
        r1.all(),
        r2.all()
    );
    let loser = if r1.code() == 1 { &r1 } else { &r2 };
    assert!(
        loser.stderr.contains("another backup holds the lease"),
        "{}",
        loser.stderr
    );
    let keys = moto.keys("bk-lock", "app/");
    assert_eq!(
        keys.iter()
            .filter(|k| k.ends_with(".manifest.json"))
            .count(),
        1,
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.ends_with(".initbox-lock.json")),
        "{keys:?}"
    );

    // A holder that died (its lease expired an hour ago) does not block the next backup.
    moto.py(
        "s3.put_object(Bucket='bk-lock', Key='app/.initbox-lock.json', Body=json.dumps({'holder': 'dead-pod-1', 'expires': 1000}))",
    );
    let r = run(
        with_s3(initbox(), &moto).args([
            "backup",
            "--from",
            src.to_str().unwrap(),
            "--to",
            "s3://bk-lock/app/",
            "--keep-last",
            "1",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("taking over an expired lease"),
        "{}",
        r.stderr
    );
    let keys = moto.keys("bk-lock", "app/");
    assert_eq!(
        keys.iter()
            .filter(|k| k.ends_with(".manifest.json"))
            .count(),
        1,
        "keep-last 1: {keys:?}"
    );
}

#[test]
fn a_failing_pre_command_stops_the_backup_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.txt"), "data\n").unwrap();
    let repo = tmp.path().join("repo");
    let r = run(
        initbox().args([
            "backup",
            "--from",
            src.to_str().unwrap(),
            "--to",
            &format!("file://{}", repo.display()),
            "--pre",
            "sh -c 'exit 3'",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stderr.contains("--pre failed"), "{}", r.stderr);
    let names: Vec<_> = std::fs::read_dir(&repo)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "{names:?}");
}
