//! `initbox prepare-volume`, end to end with the built binary, as root on real directory trees:
//! the incremental ownership pass over 100 000 files (the second pass changes nothing: every
//! entry keeps its change time), links never followed out of the volume, the kubelet's fsGroup
//! rules and OnRootMismatch, ConfigMap/Secret mounts laid out as the kubelet's atomic writer
//! does (`..data` links into a timestamped directory, swapped on update), copies
//! `--if-changed`/`--if-missing`, running as uid 65532, and steps of `initbox run`.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{assert_one_line_error, initbox, run};

const LIMIT: Duration = Duration::from_secs(300);

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test changes owners: run it as root (CI does)");
    }
}

fn prepare(args: &[&str]) -> common::Run {
    run(initbox().arg("prepare-volume").args(args), LIMIT)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The number after `label` in the summary line, e.g. `entries=100101`.
fn field(stderr: &str, label: &str) -> u64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("entries looked at") || l.contains("entries="))
        .unwrap_or_else(|| panic!("no summary line in {stderr}"));
    let key = format!("{label}=");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {label} in {line}"));
    line[at + key.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{label} is not a number in {line}"))
}

/// (path, uid, gid, mode, ctime in ns) of every entry under `root`, itself included, links
/// not followed.
fn snapshot(root: &Path) -> Vec<(PathBuf, u32, u32, u32, i128)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let m = fs::symlink_metadata(&path).unwrap();
        out.push((
            path.clone(),
            m.uid(),
            m.gid(),
            m.mode() & 0o7777,
            m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
        ));
        if m.is_dir() {
            for e in fs::read_dir(&path).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_hundred_thousand_files_are_fixed_once_then_left_untouched() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("data");
    fs::create_dir(&vol).unwrap();
    for d in 0..100 {
        let dir = vol.join(format!("d{d:03}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..1000 {
            fs::File::create(dir.join(format!("f{f:04}"))).unwrap();
        }
    }
    let total = 1 + 100 + 100_000;
    let args = [p(&vol), "--owner", "4242:4343", "--chmod", "D0750,F0640"];

    let first = prepare(&args);
    assert_eq!(first.code(), 0, "{}", first.all());
    assert_eq!(field(&first.stderr, "entries"), total);
    assert_eq!(field(&first.stderr, "owners_changed"), total);
    assert_eq!(field(&first.stderr, "modes_changed"), total);
    let after_first = snapshot(&vol);
    assert_eq!(after_first.len() as u64, total);
    for (path, uid, gid, mode, _) in &after_first {
        let want = if path.is_dir() { 0o750 } else { 0o640 };
        assert_eq!(
            (*uid, *gid, *mode),
            (4242, 4343, want),
            "{}",
            path.display()
        );
    }

    // The coarse clock that stamps change times ticks every few milliseconds: wait past a tick
    // so that any chown or chmod in the second pass would show.
    std::thread::sleep(Duration::from_millis(50));
    let second = prepare(&args);
    assert_eq!(second.code(), 0, "{}", second.all());
    assert_eq!(field(&second.stderr, "entries"), total);
    assert_eq!(field(&second.stderr, "owners_changed"), 0);
    assert_eq!(field(&second.stderr, "modes_changed"), 0);
    assert_eq!(
        snapshot(&vol),
        after_first,
        "the second pass touched an entry (owner, mode or change time differs)"
    );

    // One file and one directory drift; --check names it without touching; the pass fixes
    // exactly those.
    let file = vol.join("d042/f0420");
    std::os::unix::fs::lchown(&file, Some(0), Some(0)).unwrap();
    fs::set_permissions(vol.join("d007"), fs::Permissions::from_mode(0o777)).unwrap();
    let mut check = args.to_vec();
    check.push("--check");
    let looked = prepare(&check);
    assert_eq!(looked.code(), 1, "{}", looked.all());
    assert!(
        looked
            .stderr
            .contains("1 owners and 1 modes to change, 0 directories to create"),
        "{}",
        looked.stderr
    );
    assert_eq!(
        fs::metadata(&file).unwrap().uid(),
        0,
        "--check changed nothing"
    );
    let third = prepare(&args);
    assert_eq!(third.code(), 0, "{}", third.all());
    assert_eq!(field(&third.stderr, "owners_changed"), 1);
    assert_eq!(field(&third.stderr, "modes_changed"), 1);
    let m = fs::metadata(&file).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (4242, 4343, 0o640));
    let ok = prepare(&check);
    assert_eq!(ok.code(), 0, "{}", ok.all());
}

#[test]
fn links_are_never_followed_out_of_the_volume_and_mounts_are_skipped() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), "x").unwrap();
    fs::set_permissions(outside.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    let vol = tmp.path().join("vol");
    fs::create_dir_all(vol.join("sub")).unwrap();
    fs::write(vol.join("sub/own"), "y").unwrap();
    symlink(&outside, vol.join("dir-link")).unwrap();
    symlink(outside.join("secret"), vol.join("sub/file-link")).unwrap();
    symlink("../../outside", vol.join("sub/relative-link")).unwrap();
    fs::create_dir(vol.join("mnt")).unwrap();
    fs::create_dir_all(vol.join("sub/lost+found/deep")).unwrap();
    let before = snapshot(&outside);

    // A tmpfs mounted inside the volume (as a ConfigMap or subPath would be) is not entered.
    let script = format!(
        "mount -t tmpfs tmpfs {vol}/mnt && touch {vol}/mnt/on-tmpfs && \"$0\" prepare-volume {vol} --owner 4242:4242 --chmod D0700,F0600 --skip lost+found && stat -c %u {vol}/mnt/on-tmpfs",
        vol = p(&vol)
    );
    let r = run(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .arg(env!("CARGO_BIN_EXE_initbox")),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        r.stdout.trim(),
        "0",
        "an entry on the mount inside was changed"
    );
    assert!(
        r.stderr
            .contains("1 mount points inside and 1 entries by name skipped"),
        "{}",
        r.stderr
    );

    assert_eq!(
        snapshot(&outside),
        before,
        "something outside the volume changed"
    );
    for link in ["dir-link", "sub/file-link", "sub/relative-link"] {
        let m = fs::symlink_metadata(vol.join(link)).unwrap();
        assert!(m.file_type().is_symlink());
        assert_eq!(
            m.uid(),
            4242,
            "{link}: the link's own owner is changed (lchown)"
        );
    }
    for skipped in ["sub/lost+found", "sub/lost+found/deep"] {
        assert_eq!(
            fs::metadata(vol.join(skipped)).unwrap().uid(),
            0,
            "{skipped}: --skip"
        );
    }
    let own = fs::metadata(vol.join("sub/own")).unwrap();
    assert_eq!((own.uid(), own.mode() & 0o7777), (4242, 0o600));
}

#[test]
fn fs_group_follows_the_kubelet_and_on_root_mismatch_skips_a_right_root() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("vol");
    fs::create_dir_all(vol.join("db")).unwrap();
    fs::set_permissions(vol.join("db"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(vol.join("db/data"), "d").unwrap();
    fs::set_permissions(vol.join("db/data"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(vol.join("run.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(vol.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("db/data", vol.join("current")).unwrap();

    let r = prepare(&[p(&vol), "--fs-group", "2000"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    // The kubelet (SetVolumeOwnership): gid := fsGroup, mode |= 0660 on files, |= 02770 on
    // directories; uid unchanged; a link's group changes, its mode never.
    let m = |rel: &str| fs::symlink_metadata(vol.join(rel)).unwrap();
    assert_eq!(
        (m("db").uid(), m("db").gid(), m("db").mode() & 0o7777),
        (0, 2000, 0o2770)
    );
    assert_eq!(
        (m("db/data").gid(), m("db/data").mode() & 0o7777),
        (2000, 0o660)
    );
    assert_eq!(m("run.sh").mode() & 0o7777, 0o775);
    assert_eq!(m(".").mode() & 0o7777, 0o2775);
    assert_eq!(m("current").gid(), 2000);
    assert_eq!(
        fs::read_link(vol.join("current")).unwrap(),
        Path::new("db/data")
    );

    // OnRootMismatch: the root is right, so a drifted file below it is not looked at...
    fs::set_permissions(vol.join("db/data"), fs::Permissions::from_mode(0o600)).unwrap();
    let r = prepare(&[p(&vol), "--fs-group", "2000", "--on-root-mismatch"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("not walking it"), "{}", r.stderr);
    assert_eq!(m("db/data").mode() & 0o7777, 0o600);
    // ...and the default walk finds it.
    let r = prepare(&[p(&vol), "--fs-group", "2000"]);
    assert_eq!(field(&r.stderr, "modes_changed"), 1, "{}", r.stderr);
    assert_eq!(m("db/data").mode() & 0o7777, 0o660);
}

/// A ConfigMap or Secret volume as the kubelet's atomic writer lays it out: the payload in a
/// timestamped directory, `..data` linking to it, and each key a link through `..data`.
struct Mount {
    root: PathBuf,
    generation: u32,
}

impl Mount {
    fn new(root: PathBuf, files: &[(&str, &str)], mode: u32) -> Mount {
        fs::create_dir_all(&root).unwrap();
        let mut m = Mount {
            root,
            generation: 0,
        };
        m.update(files, mode);
        let mut tops: Vec<&str> = files
            .iter()
            .map(|(k, _)| k.split('/').next().unwrap())
            .collect();
        tops.dedup();
        for top in tops {
            symlink(format!("..data/{top}"), m.root.join(top)).unwrap();
        }
        m
    }

    /// Write a new timestamped payload and swap `..data` to it, as the kubelet does on update.
    fn update(&mut self, files: &[(&str, &str)], mode: u32) {
        self.generation += 1;
        let ts = format!("..2026_12_01_14_00_00.{:09}", self.generation);
        for (key, content) in files {
            let path = self.root.join(&ts).join(key);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, content).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
        let tmp = self.root.join("..data_tmp");
        symlink(&ts, &tmp).unwrap();
        fs::rename(&tmp, self.root.join("..data")).unwrap();
    }
}

#[test]
fn configmap_and_secret_mounts_are_copied_through_their_data_links() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Mount::new(
        tmp.path().join("config"),
        &[
            ("app.yaml", "port: 8080\n"),
            ("extra/log.conf", "level=info\n"),
        ],
        0o644,
    );
    let secret = Mount::new(tmp.path().join("secret"), &[("token", "s3cr3t")], 0o400);
    let vol = tmp.path().join("vol");
    let config_root = config.root.clone();
    let copy = |extra: &[&str]| {
        let mut a = vec![
            p(&vol).to_string(),
            "--copy".into(),
            format!("{}:conf/", p(&config_root)),
            "--copy".into(),
            format!("{}/token:keys/api-token", p(&secret.root)),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        prepare(&a)
    };

    let r = copy(&["--if-changed"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(field(&r.stderr, "copied"), 3, "{}", r.stderr);
    let conf = vol.join("conf");
    let names: Vec<String> = {
        let mut v: Vec<_> = fs::read_dir(&conf)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names,
        ["app.yaml", "extra"],
        "the kubelet's own entries are not copied"
    );
    let app = fs::symlink_metadata(conf.join("app.yaml")).unwrap();
    assert!(app.is_file(), "a regular file, not a link");
    assert_eq!(app.mode() & 0o7777, 0o644);
    assert_eq!(
        fs::read_to_string(conf.join("app.yaml")).unwrap(),
        "port: 8080\n"
    );
    assert_eq!(
        fs::read_to_string(conf.join("extra/log.conf")).unwrap(),
        "level=info\n"
    );
    let token = fs::symlink_metadata(vol.join("keys/api-token")).unwrap();
    assert!(token.is_file());
    assert_eq!(token.mode() & 0o7777, 0o400, "the Secret's mode is kept");
    assert_eq!(
        fs::read_to_string(vol.join("keys/api-token")).unwrap(),
        "s3cr3t"
    );

    // Nothing changed: nothing is rewritten (same inodes).
    let inode = app.ino();
    let r = copy(&["--if-changed"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        (field(&r.stderr, "copied"), field(&r.stderr, "unchanged")),
        (0, 3)
    );
    assert_eq!(fs::metadata(conf.join("app.yaml")).unwrap().ino(), inode);

    // The kubelet swaps ..data to a new payload: only the changed key is copied.
    config.update(
        &[
            ("app.yaml", "port: 9090\n"),
            ("extra/log.conf", "level=info\n"),
        ],
        0o644,
    );
    let r = copy(&["--if-changed"]);
    assert_eq!(
        (field(&r.stderr, "copied"), field(&r.stderr, "unchanged")),
        (1, 2)
    );
    assert_eq!(
        fs::read_to_string(conf.join("app.yaml")).unwrap(),
        "port: 9090\n"
    );
    let leftovers: Vec<_> = fs::read_dir(&conf)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".initbox-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left");

    // --if-missing keeps what the application changed; the default replaces it.
    fs::write(conf.join("app.yaml"), "edited by the app\n").unwrap();
    let r = copy(&["--if-missing"]);
    assert_eq!(
        (field(&r.stderr, "copied"), field(&r.stderr, "kept")),
        (0, 3)
    );
    assert_eq!(
        fs::read_to_string(conf.join("app.yaml")).unwrap(),
        "edited by the app\n"
    );
    let r = copy(&[]);
    assert_eq!(field(&r.stderr, "copied"), 3, "{}", r.stderr);
    assert_eq!(
        fs::read_to_string(conf.join("app.yaml")).unwrap(),
        "port: 9090\n"
    );
    assert!(!r.all().contains("s3cr3t"), "no content in the logs");
}

#[test]
fn a_source_link_leading_out_of_the_source_is_refused_and_nothing_is_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.conf"), "a").unwrap();
    symlink("/etc/passwd", src.join("passwd")).unwrap();
    let vol = tmp.path().join("vol");
    let r = prepare(&[p(&vol), "--copy", &format!("{}:conf", p(&src))]);
    assert_one_line_error(&r, 3, "passwd: a symbolic link leading out of");
    assert!(
        !vol.join("conf").exists(),
        "nothing of that copy was written"
    );
}

#[test]
fn a_destination_through_a_link_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("a.conf");
    fs::write(&src, "a").unwrap();
    let vol = tmp.path().join("vol");
    fs::create_dir(&vol).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, vol.join("conf")).unwrap();
    let r = prepare(&[p(&vol), "--copy", &format!("{}:conf/", p(&src))]);
    assert_one_line_error(&r, 3, "is in the way: not a directory (a symbolic link");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    let r = prepare(&[p(&vol), "--mkdir", "conf/sub"]);
    assert_one_line_error(&r, 3, "conf is in the way");
}

#[test]
fn bad_input_gets_one_line_and_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("vol");
    let file = tmp.path().join("file");
    fs::write(&file, "").unwrap();
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--chmod", "u+q"],
            2,
            "'u+q' is not a mode: 'q' is not a permission",
        ),
        (&["--chmod", "g+uo"], 2, "'g+uo' is not a mode"),
        (&["--chmod", "x+u"], 2, "'x+u' is not a mode"),
        (&["--chmod", "u"], 2, "'u' is not a mode: no operation"),
        (&["--chmod", "u=rwx,"], 2, "'' is not a mode"),
        (&["--chmod", "0999"], 2, "'0999' is not an octal mode"),
        (&["--delete"], 2, "--copy"),
        (&["--owner", "app"], 2, "is not UID:GID"),
        (&["--mkdir", "../x"], 2, "climbs out of the volume"),
        (&["--copy", "/etc/hostname:/etc/x"], 2, "is absolute"),
        (
            &["--fs-group", "1", "--owner", "1:1"],
            2,
            "cannot be used with",
        ),
        (&["--if-missing", "--if-changed"], 2, "cannot be used with"),
        (
            &["--copy", "/nonexistent/cm"],
            3,
            "--copy /nonexistent/cm: No such file",
        ),
    ];
    for (extra, code, needle) in cases {
        let mut a = vec![p(&vol)];
        a.extend_from_slice(extra);
        assert_one_line_error(&prepare(&a), *code, needle);
    }
    assert!(!vol.exists(), "nothing was created on bad input");
    assert_one_line_error(&prepare(&[p(&file)]), 3, "is not a directory");
}

/// Run a copy of the binary (in `dir`, wherever the checkout is) as 65532:65532, the scratch
/// image's user.
fn as_nonroot(dir: &Path, args: &[&str]) -> common::Run {
    let bin = dir.join("initbox");
    if !bin.exists() {
        fs::copy(env!("CARGO_BIN_EXE_initbox"), &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    }
    run(
        Command::new("setpriv")
            .args(["--reuid", "65532", "--regid", "65532", "--clear-groups"])
            .arg(&bin)
            .arg("prepare-volume")
            .args(args),
        LIMIT,
    )
}

#[test]
fn works_as_65532_on_its_own_volume() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let vol = tmp.path().join("vol");
    fs::create_dir_all(vol.join("cache")).unwrap();
    fs::write(vol.join("cache/x"), "x").unwrap();
    let src = tmp.path().join("cm");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("app.yaml"), "a: 1\n").unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    for e in [&vol, &vol.join("cache"), &vol.join("cache/x")] {
        std::os::unix::fs::chown(e, Some(65532), Some(65532)).unwrap();
    }
    let r = as_nonroot(
        tmp.path(),
        &[
            p(&vol),
            "--mkdir",
            "logs",
            "--copy",
            &format!("{}:conf/", p(&src)),
            "--chmod",
            "D0750,F0640",
            "--owner",
            "65532:65532",
        ],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    for rel in ["logs", "conf", "conf/app.yaml", "cache/x"] {
        let m = fs::metadata(vol.join(rel)).unwrap();
        let want = if m.is_dir() { 0o750 } else { 0o640 };
        assert_eq!((m.uid(), m.mode() & 0o7777), (65532, want), "{rel}");
    }
    // Another owner needs CAP_CHOWN: refused with 4, naming what it needs.
    let r = as_nonroot(tmp.path(), &[p(&vol), "--owner", "1000:1000"]);
    assert_one_line_error(&r, 4, "needs root or CAP_CHOWN");
}

#[test]
fn steps_of_run_prepare_the_volume_before_the_next_step() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("cm");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("app.yaml"), "a: 1\n").unwrap();
    let vol = tmp.path().join("vol");
    let steps = tmp.path().join("steps.yaml");
    fs::write(
        &steps,
        format!(
            "steps:\n  - name: volume\n    applet: prepare-volume\n    args: [{vol}, --mkdir, logs, --copy, \"{src}:conf/\", --chmod, \"D0750,F0640\"]\n  - name: prepared\n    applet: prepare-volume\n    args: [{vol}, --chmod, \"D0750,F0640\", --check]\n  - name: app\n    command: [cat, {vol}/conf/app.yaml]\n",
            vol = p(&vol),
            src = p(&src)
        ),
    )
    .unwrap();
    let r = run(initbox().args(["run", "-f", p(&steps)]), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout.contains("a: 1"), "{}", r.all());
    assert_eq!(
        fs::metadata(vol.join("logs")).unwrap().mode() & 0o7777,
        0o750
    );

    // A step that fails stops the run before the next one, with its code.
    fs::write(
        &steps,
        format!(
            "steps:\n  - name: volume\n    applet: prepare-volume\n    args: [{vol}, --copy, /nonexistent/cm]\n  - name: app\n    command: [touch, {vol}/ran]\n",
            vol = p(&vol)
        ),
    )
    .unwrap();
    let r = run(initbox().args(["run", "-f", p(&steps)]), LIMIT);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(!vol.join("ran").exists());
}

/// A tree with every kind of mode chmod's rules tell apart: files with and without execute
/// bits, set-user-ID and set-group-ID files, set-group-ID and sticky directories, a FIFO, a
/// link (left alone by both).
fn mode_tree(root: &Path) {
    fs::create_dir_all(root.join("d/sub")).unwrap();
    for (dir, mode) in [("d", 0o2775), ("d/sub", 0o700)] {
        let d = root.join(dir);
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
    }
    for (dir, mode) in [("sticky", 0o1777), ("plain", 0o755), ("closed", 0o000)] {
        fs::create_dir(root.join(dir)).unwrap();
        fs::set_permissions(root.join(dir), fs::Permissions::from_mode(mode)).unwrap();
    }
    let files = [
        ("f644", 0o644),
        ("f755", 0o755),
        ("f600", 0o600),
        ("u-only-x", 0o700),
        ("o-only-x", 0o641),
        ("suid", 0o4755),
        ("sgid", 0o2750),
        ("none", 0o000),
        ("d/f664", 0o664),
        ("d/sub/f751", 0o751),
        ("sticky/f666", 0o666),
    ];
    for (name, mode) in files {
        fs::write(root.join(name), name).unwrap();
        fs::set_permissions(root.join(name), fs::Permissions::from_mode(mode)).unwrap();
    }
    let fifo = std::ffi::CString::new(p(&root.join("d/fifo"))).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o620) }, 0);
    symlink("f644", root.join("link")).unwrap();
}

/// Relative path and mode of every entry under `root`, links not followed.
fn modes(root: &Path) -> Vec<(PathBuf, u32)> {
    snapshot(root)
        .into_iter()
        .map(|(path, _, _, mode, _)| (path.strip_prefix(root).unwrap().to_path_buf(), mode))
        .collect()
}

/// GNU chmod and `--chmod` given the same symbolic mode, each on a twin of one tree (umask
/// 027, so the clauses without who meet a umask that matters), leave every entry with the same
/// mode; a second pass changes nothing.
#[test]
fn symbolic_chmod_modes_match_gnu_chmod() {
    require_root();
    let specs = [
        "g+rwX",
        "u=rwx,go=rx",
        "a-w",
        "+t",
        "o=",
        "u=rwX,g=rX,o=",
        "go-rwx,u+rwX",
        "g=u",
        "o=g-w",
        "a+X",
        "a-x,a+X",
        "ug+s",
        "g-s",
        "u-s,g+s",
        "a=r",
        "a=rx",
        "=rX",
        "+w",
        "-x,+X",
        "u+r-w+x,o-t",
        "a+st",
        "g=rwxs,o=",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let mut changed_something = 0;
    for (i, spec) in specs.iter().enumerate() {
        let (gnu, ours) = (
            tmp.path().join(format!("gnu{i}")),
            tmp.path().join(format!("ours{i}")),
        );
        mode_tree(&gnu);
        mode_tree(&ours);
        let before = modes(&ours);
        assert_eq!(modes(&gnu), before);
        let r = run(
            Command::new("sh").args([
                "-c",
                "umask 027 && exec chmod -R -- \"$0\" \"$1\"",
                spec,
                p(&gnu),
            ]),
            LIMIT,
        );
        // GNU chmod says so (and exits 1) when the umask kept a clause without who from
        // doing all it says; the modes are still set.
        assert!(
            r.code() == 0 || r.code() == 1 && r.stderr.contains("new permissions are"),
            "chmod {spec}: {}",
            r.all()
        );
        let ours_chmod = || {
            run(
                Command::new("sh").args([
                    "-c",
                    "umask 027 && exec \"$0\" prepare-volume \"$1\" --chmod \"$2\"",
                    env!("CARGO_BIN_EXE_initbox"),
                    p(&ours),
                    spec,
                ]),
                LIMIT,
            )
        };
        let r = ours_chmod();
        assert_eq!(r.code(), 0, "--chmod {spec}: {}", r.all());
        let (want, got) = (modes(&gnu), modes(&ours));
        for ((path, w), (path2, g)) in want.iter().zip(&got) {
            assert_eq!(path, path2);
            assert_eq!(
                w,
                g,
                "--chmod {spec}: {} is {g:o}, chmod made it {w:o}",
                path.display()
            );
        }
        if got != before {
            changed_something += 1;
        }
        let again = ours_chmod();
        assert_eq!(again.code(), 0, "{}", again.all());
        assert_eq!(
            field(&again.stderr, "modes_changed"),
            0,
            "--chmod {spec}, twice"
        );
    }
    assert_eq!(
        changed_something,
        specs.len(),
        "every spec changed some mode"
    );
}

/// A source tree, and a volume holding what an earlier version of it left, what the
/// application and other options put there, and a link out of it.
fn mirror_fixture(tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (src, vol, outside) = (tmp.join("src"), tmp.join("vol"), tmp.join("outside"));
    fs::create_dir_all(src.join("conf/d")).unwrap();
    fs::write(src.join("conf/app.yaml"), "new").unwrap();
    fs::write(src.join("conf/d/one"), "1").unwrap();
    fs::write(src.join("top"), "file now").unwrap();
    fs::create_dir(src.join("was-file")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("precious"), "p").unwrap();
    fs::create_dir_all(vol.join("conf/d/old/deeper")).unwrap();
    fs::write(vol.join("conf/app.yaml"), "old").unwrap();
    fs::write(vol.join("conf/d/one"), "1").unwrap();
    fs::write(vol.join("conf/d/old/deeper/x"), "x").unwrap();
    fs::write(vol.join("conf/stale.yaml"), "stale").unwrap();
    fs::create_dir_all(vol.join("top/was-dir")).unwrap();
    fs::write(
        vol.join("was-file"),
        "a file where the source has a directory",
    )
    .unwrap();
    symlink(&outside, vol.join("conf/link-out")).unwrap();
    symlink(&outside, vol.join("dir-link")).unwrap();
    fs::create_dir_all(vol.join("logs")).unwrap();
    fs::write(vol.join("logs/app.log"), "log").unwrap();
    fs::create_dir_all(vol.join("lost+found")).unwrap();
    fs::write(vol.join("lost+found/#123"), "").unwrap();
    fs::create_dir_all(vol.join("extra/sub")).unwrap();
    fs::write(vol.join("extra/sub/f"), "").unwrap();
    (src, vol, outside)
}

/// `--delete` mirrors a directory copy: what the source does not have goes (entries of the
/// wrong kind too), links are removed and never followed, and what --mkdir, other copies and
/// --skip name stays; `--check` names what it would delete and deletes nothing.
#[test]
fn delete_makes_a_directory_copy_a_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, vol, outside) = mirror_fixture(tmp.path());
    let single = tmp.path().join("single.conf");
    fs::write(&single, "single").unwrap();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            p(&vol).to_string(),
            "--mkdir".into(),
            "logs".into(),
            "--skip".into(),
            "lost+found".into(),
            "--copy".into(),
            p(&src).to_string(),
            "--copy".into(),
            format!("{}:extra/sub/f", p(&single)),
            "--delete".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let before = snapshot(&vol);
    let a = args(&["--check", "--if-changed"]);
    let r = prepare(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_one_line_error_or_last(&r, 1, "entries to delete");
    for gone in [
        "conf/d/old (3 entries)",
        "conf/link-out",
        "conf/stale.yaml",
        "dir-link",
        "top (2 entries)",
        "was-file",
    ] {
        let line = format!("would delete {}/{gone}", p(&vol));
        assert!(r.stderr.contains(&line), "no '{line}' in {}", r.stderr);
    }
    assert_eq!(field(&r.stderr, "deleted"), 9, "{}", r.stderr);
    for kept in ["/logs", "/lost+found", "/extra"] {
        assert!(
            !r.stderr
                .lines()
                .any(|l| l.contains("would delete") && l.contains(kept)),
            "{kept}: {}",
            r.stderr
        );
    }
    assert_eq!(snapshot(&vol), before, "--check changed the volume");

    let a = args(&["--if-changed"]);
    let r = prepare(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code(), 0, "{}", r.all());
    let mut left: Vec<String> = snapshot(&vol)
        .into_iter()
        .map(|(path, ..)| path.strip_prefix(&vol).unwrap().display().to_string())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "",
            "conf",
            "conf/app.yaml",
            "conf/d",
            "conf/d/one",
            "extra",
            "extra/sub",
            "extra/sub/f",
            "logs",
            "logs/app.log",
            "lost+found",
            "lost+found/#123",
            "top",
            "was-file",
        ]
    );
    assert_eq!(
        fs::read_to_string(vol.join("conf/app.yaml")).unwrap(),
        "new"
    );
    assert_eq!(fs::read_to_string(vol.join("top")).unwrap(), "file now");
    assert_eq!(
        fs::read_to_string(vol.join("extra/sub/f")).unwrap(),
        "single"
    );
    assert!(vol.join("was-file").is_dir());
    assert_eq!(
        fs::read_to_string(outside.join("precious")).unwrap(),
        "p",
        "followed a link"
    );

    // Now a mirror: nothing to delete, nothing to copy.
    let a = args(&["--check", "--if-changed"]);
    let r = prepare(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(field(&r.stderr, "deleted"), 0);
}

/// The last stderr line is the one-line error with this code (the "would delete" lines come
/// before it).
fn assert_one_line_error_or_last(r: &common::Run, code: i32, needle: &str) {
    assert_eq!(r.code(), code, "{}", r.all());
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(needle),
        "last line {last:?} lacks {needle:?}: {}",
        r.all()
    );
}

/// `--delete` does not leave the volume's filesystem: a mount inside an entry to delete (a
/// subPath) is left in place with the directories holding it, and what is on it is untouched.
#[test]
fn delete_leaves_mount_points_and_their_content() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("keep"), "k").unwrap();
    let vol = tmp.path().join("vol");
    fs::create_dir_all(vol.join("gone/mnt")).unwrap();
    fs::write(vol.join("gone/beside"), "").unwrap();
    fs::write(vol.join("stale"), "").unwrap();
    let script = format!(
        "mount -t tmpfs tmpfs {vol}/gone/mnt && touch {vol}/gone/mnt/on-tmpfs && \"$0\" prepare-volume {vol} --copy {src} --delete; echo rc=$?; ls -A {vol} {vol}/gone {vol}/gone/mnt",
        vol = p(&vol),
        src = p(&src)
    );
    let r = run(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .arg(env!("CARGO_BIN_EXE_initbox")),
        LIMIT,
    );
    assert!(r.stdout.contains("rc=0"), "{}", r.all());
    assert!(
        r.stdout.contains("on-tmpfs"),
        "the mount's content was deleted: {}",
        r.all()
    );
    assert!(
        r.stderr.contains("holds a mount point: left in place"),
        "{}",
        r.all()
    );
    assert!(!vol.join("stale").exists() && !vol.join("gone/beside").exists());
    assert!(vol.join("gone/mnt").is_dir() && vol.join("keep").is_file());
}
