//! The static release binary runs in an empty root filesystem: no libc, no /dev, no /proc, only
//! the binary, /etc/hosts and /etc/resolv.conf, as uid 65532 (the image's user).
//! `scripts/build-static.sh` builds it (tests/run-all.sh does so before the tests; here it is a
//! no-op then).

mod common;
use common::*;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn static_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/build-static.sh"))
        .current_dir(root)
        .output()
        .expect("run scripts/build-static.sh");
    assert!(out.status.success(), "static build failed: {}", text(&out));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// An otherwise empty root with the binary and the two files name resolution reads.
fn scratch_root(bin: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/hosts"),
        "127.0.0.1 localhost\n::1 localhost\n",
    )
    .unwrap();
    std::fs::write(
        root.path().join("etc/resolv.conf"),
        "nameserver 127.0.0.1\n",
    )
    .unwrap();
    std::fs::copy(bin, root.path().join("initbox")).unwrap();
    // chroot --userspec needs the root to be traversable by uid 65532.
    Command::new("chmod")
        .args(["755", root.path().to_str().unwrap()])
        .status()
        .unwrap();
    root
}

fn in_root(root: &Path, args: &[&str]) -> Run {
    run(
        Command::new("chroot")
            .arg("--userspec=65532:65532")
            .arg(root)
            .arg("/initbox")
            .args(args)
            // Nothing of this machine's environment reaches the root; PATH only finds chroot.
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        Duration::from_secs(30),
    )
}

/// Whether an ELF64 little-endian file has a PT_INTERP program header (a dynamic loader).
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not ELF64");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let ph = phoff + i * phentsize;
        u32::from_le_bytes(elf[ph..ph + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

#[test]
fn the_dynamic_test_binary_is_told_apart_from_the_static_one() {
    // The debug build links dynamically: the check must see its interpreter.
    let elf = std::fs::read(env!("CARGO_BIN_EXE_initbox")).unwrap();
    assert!(has_interpreter(&elf));
}

#[test]
fn the_static_binary_has_no_interpreter_and_runs_in_an_empty_root() {
    let bin = static_binary();
    let elf = std::fs::read(&bin).unwrap();
    assert!(
        !has_interpreter(&elf),
        "the binary asks for a dynamic loader (PT_INTERP)"
    );
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let ldd = text(&ldd);
    assert!(
        ldd.contains("not a dynamic executable") || ldd.contains("statically linked"),
        "{ldd}"
    );

    let root = scratch_root(&bin);
    let r = in_root(root.path(), &["--list"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout.contains("wait-for-tcp") && r.stdout.contains("wait-for-dns"));

    // A wait on a port this test opens, through the hosts file, then exec inside the root.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("localhost:{}", l.local_addr().unwrap().port());
    let r = in_root(
        root.path(),
        &[
            "wait-for-tcp",
            "--timeout",
            "10s",
            &target,
            "--",
            "/initbox",
            "--version",
        ],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stdout.contains(env!("CARGO_PKG_VERSION")),
        "the exec'd command ran: {}",
        r.all()
    );

    let r = in_root(root.path(), &["wait-for-dns", "--once", "localhost"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("127.0.0.1"), "{}", r.stderr);

    // Failure paths work the same without any file around.
    let r = in_root(root.path(), &["wait-for-tcp", "--once", "127.0.0.1:1"]);
    assert_eq!(r.code(), 1, "{}", r.all());
}
