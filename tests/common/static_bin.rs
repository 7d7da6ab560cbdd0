//! The static release binary, as shipped in the image, for the tests that package or run it
//! outside cargo's own build (`tests/containers.rs`, `tests/image.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `INITBOX_TEST_STATIC_BIN` (what `tests/run-all.sh` built), else what
/// `scripts/build-static.sh` builds (incremental: a no-op when up to date; it prints the path).
pub fn static_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("INITBOX_TEST_STATIC_BIN") {
        return PathBuf::from(p);
    }
    let out = Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/build-static.sh"))
        .current_dir(ROOT)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/build-static.sh");
    assert!(out.status.success(), "scripts/build-static.sh failed");
    let path = String::from_utf8_lossy(&out.stdout);
    let bin = PathBuf::from(path.lines().last().expect("the binary's path").trim());
    assert!(
        bin.exists(),
        "{} missing after the static build",
        bin.display()
    );
    bin
}
