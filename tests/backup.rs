//! `initbox backup` end to end: moto's S3 server (see tests/moto: no S3-compatible server is
//! packaged here) and a directory repository; restored with `initbox restore` to prove the
//! round trip.

mod common;
mod moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::data::{names, noise};
use common::{Run, initbox, run, wait_child};
use moto::{Moto, with_s3};

const LIMIT: Duration = Duration::from_secs(120);

/// `initbox APPLET`, with moto's test credentials and endpoint when there is a server.
fn applet(moto: Option<&Moto>, name: &str) -> Command {
    let mut c = match moto {
        Some(m) => with_s3(initbox(), m),
        None => initbox(),
    };
    c.arg(name);
    c
}

/// The command line of `initbox backup --from SRC --to TO EXTRA…`.
fn backup_cmd(moto: Option<&Moto>, src: &Path, to: &str, extra: &[&str]) -> Command {
    let mut c = applet(moto, "backup");
    c.args(["--from", src.to_str().unwrap(), "--to", to])
        .args(extra);
    c
}

fn backup(moto: Option<&Moto>, src: &Path, to: &str, extra: &[&str]) -> Run {
    run(&mut backup_cmd(moto, src, to, extra), LIMIT)
}

fn restore(moto: Option<&Moto>, from: &str, to: &Path, extra: &[&str]) -> Run {
    run(
        applet(moto, "restore")
            .args(["--from", from, "--to", to.to_str().unwrap()])
            .args(extra),
        LIMIT,
    )
}

/// `tmp/src` holding `data.txt` with `content`.
fn source(tmp: &Path, content: &str) -> PathBuf {
    let src = tmp.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.txt"), content).unwrap();
    src
}

fn manifests(dir: &Path) -> Vec<String> {
    names(dir, |n| n.ends_with(".manifest.json"))
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
    let r = backup(Some(&moto), &src, "s3://bk-large/app/", &[]);
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
    let r = restore(Some(&moto), "s3://bk-large/app/", &vol, &[]);
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
    let src = source(tmp.path(), "v1\n");
    // One real version to copy the past ones from.
    let scratch = tmp.path().join("scratch");
    let r = backup(None, &src, &format!("file://{}", scratch.display()), &[]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let manifest_name = &manifests(&scratch)[0];
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join(manifest_name)).unwrap()).unwrap();
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
    let r = backup(
        None,
        &src,
        &format!("file://{}", repo.display()),
        &["--keep-last", "1", "--keep-daily", "3"],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let verified = r.stderr.find("verified").expect(&r.stderr);
    let removed = r.stderr.find("retention removed").expect(&r.stderr);
    assert!(verified < removed, "retention only after verification");
    let left: Vec<String> = manifests(&repo)
        .iter()
        .map(|n| n.trim_end_matches(".manifest.json").to_string())
        .collect();
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
    let src = source(tmp.path(), "data\n");
    let start = || {
        backup_cmd(
            Some(&moto),
            &src,
            "s3://bk-lock/app/",
            &["--keep-last", "1", "--pre", "sleep 2"],
        )
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
    let r = backup(
        Some(&moto),
        &src,
        "s3://bk-lock/app/",
        &["--keep-last", "1"],
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
    let src = source(tmp.path(), "data\n");
    let repo = tmp.path().join("repo");
    let r = backup(
        None,
        &src,
        &format!("file://{}", repo.display()),
        &["--pre", "sh -c 'exit 3'"],
    );
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stderr.contains("--pre failed"), "{}", r.stderr);
    let left = names(&repo, |_| true);
    assert!(left.is_empty(), "{left:?}");
}

/// SSE-KMS (with a key id) and SSE-S3 (AES256) are requested for every object a backup
/// uploads, the parts of a multipart upload included: moto keeps them on the objects as S3
/// does, and `head_object` reports them. The KMS archive restores unchanged (S3 decrypts
/// KMS objects by itself; a GET carries no SSE header).
#[test]
fn sse_kms_and_aes256_are_requested_for_every_uploaded_object() {
    let moto = Moto::start(None);
    moto.make_bucket("bk-sse");
    let tmp = tempfile::tempdir().unwrap();
    let src = source(tmp.path(), "data\n");
    noise(&src.join("big.bin"), 17, 11);
    let kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let r = backup(
        Some(&moto),
        &src,
        "s3://bk-sse/kms/",
        &["--s3-sse", "aws:kms", "--s3-sse-kms-key-id", kms],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = backup(
        Some(&moto),
        &src,
        "s3://bk-sse/aes/",
        &["--s3-sse", "AES256"],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let out = moto.py(
        "for k in sorted(o['Key'] for o in s3.list_objects_v2(Bucket='bk-sse')['Contents']):\n  \
           h = s3.head_object(Bucket='bk-sse', Key=k)\n  \
           print(k, h.get('ServerSideEncryption'), h.get('SSEKMSKeyId'), h['ETag'].strip('\"'))",
    );
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(
        rows.len(),
        4,
        "archive and manifest under each prefix: {out}"
    );
    for row in &rows {
        let (key, sse, kms_id, etag) = (row[0], row[1], row[2], row[3]);
        if key.starts_with("kms/") {
            assert_eq!((sse, kms_id), ("aws:kms", kms), "{key}: {out}");
            if key.ends_with(".tar.zst") {
                assert!(etag.ends_with("-3"), "3 parts, each with SSE: {out}");
            }
        } else {
            assert_eq!((sse, kms_id), ("AES256", "None"), "{key}: {out}");
        }
    }
    let vol = tmp.path().join("vol");
    let r = restore(Some(&moto), "s3://bk-sse/kms/", &vol, &[]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        std::fs::read(vol.join("big.bin")).unwrap(),
        std::fs::read(src.join("big.bin")).unwrap()
    );
}

/// SSE-C: the customer key (a base64 file, as `openssl rand -base64 32` writes it) goes with
/// every request on an object, upload parts and downloads included, with its MD5, and with
/// nothing else (listings, deletes). moto ignores SSE-C (it neither keeps nor checks the key),
/// so tests/moto/recording.py, moto's own server application behind a request log, shows what
/// was sent; it speaks TLS because SSE-C over plain HTTP is refused, as S3 refuses it.
#[test]
fn sse_c_key_goes_with_every_object_request_and_never_over_plain_http() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start_tls_recording(tmp.path());
    moto.make_bucket("bk-ssec");
    let src = source(tmp.path(), "data\n");
    noise(&src.join("big.bin"), 17, 13);
    let keyfile = tmp.path().join("sse-c.key");
    let o = Command::new("python3")
        .arg("-c")
        .arg(
            "import base64, hashlib, sys\n\
             k = bytes((i * 37 + 5) % 256 for i in range(32))\n\
             open(sys.argv[1], 'w').write(base64.b64encode(k).decode() + '\\n')\n\
             print(base64.b64encode(k).decode(), base64.b64encode(hashlib.md5(k).digest()).decode())",
        )
        .arg(&keyfile)
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    let (key_b64, key_md5) = out.trim().split_once(' ').unwrap();
    let ssec = ["--s3-sse-c-key-file", keyfile.to_str().unwrap()];
    let r = backup(Some(&moto), &src, "s3://bk-ssec/app/", &ssec);
    assert_eq!(r.code(), 0, "{}", r.all());
    let vol = tmp.path().join("vol");
    let r = restore(Some(&moto), "s3://bk-ssec/app/", &vol, &ssec);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        std::fs::read(vol.join("big.bin")).unwrap(),
        std::fs::read(src.join("big.bin")).unwrap()
    );

    let logged = moto.logged();
    let on_object = |l: &&moto::Logged| l.path.trim_start_matches('/').contains('/');
    let mut seen = Vec::new();
    for l in logged.iter().filter(on_object) {
        let complete = l.method == "POST" && l.query.contains("uploadId");
        let want_key = !(complete || l.method == "DELETE");
        let sent = (
            l.sse
                .get("x-amz-server-side-encryption-customer-algorithm")
                .and_then(|v| v.as_str()),
            l.sse
                .get("x-amz-server-side-encryption-customer-key")
                .and_then(|v| v.as_str()),
            l.sse
                .get("x-amz-server-side-encryption-customer-key-md5")
                .and_then(|v| v.as_str()),
        );
        if want_key {
            assert_eq!(
                sent,
                (Some("AES256"), Some(key_b64), Some(key_md5)),
                "{} {}?{}",
                l.method,
                l.path,
                l.query
            );
            seen.push(format!(
                "{} {}",
                l.method,
                if l.query.contains("partNumber") {
                    "part"
                } else if l.query.contains("uploads") {
                    "create"
                } else if l.path.ends_with(".tar.zst") {
                    "archive"
                } else {
                    "small"
                }
            ));
        } else {
            assert!(l.sse.is_empty(), "{} {}: {:?}", l.method, l.path, l.sse);
        }
    }
    for want in [
        "POST create",
        "PUT part",
        "GET archive",
        "PUT small",
        "GET small",
    ] {
        assert!(seen.iter().any(|s| s == want), "{want} in {seen:?}");
    }
    assert_eq!(seen.iter().filter(|s| *s == "PUT part").count(), 3);
    // Listings never carry the key.
    assert!(
        logged
            .iter()
            .filter(|l| l.query.contains("list-type"))
            .all(|l| l.sse.is_empty())
    );

    // A plain http:// endpoint: refused before any request, naming why.
    let before = moto.logged().len();
    let mut cmd = backup_cmd(Some(&moto), &src, "s3://bk-ssec/app/", &ssec);
    cmd.env(
        "INITBOX_S3_ENDPOINT",
        format!("http://127.0.0.1:{}", moto.port),
    );
    let r = run(&mut cmd, LIMIT);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr.contains("needs https://"), "{}", r.stderr);
    assert!(!r.all().contains(key_b64));
    assert_eq!(moto.logged().len(), before, "nothing was sent");
}
