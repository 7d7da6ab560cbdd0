//! Scratch directories and fixture corpora for end-to-end tests: write a file in one call,
//! list a corpus in a stable order, and check that a failed write left no temporary behind.

use std::fs;
use std::path::{Path, PathBuf};

/// A temporary directory, removed when dropped, that writes files (creating their parents).
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `text` to `name` (relative to the directory) and return its path.
    pub fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("create the file's directory");
        }
        fs::write(&p, text).expect("write a scratch file");
        p
    }
}

/// The names of the files in `dir` ending in `suffix`, sorted: a corpus, in a stable order.
pub fn corpus(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// No `.initbox-*` temporary file (atomic writes' staging) left anywhere under `dir`.
pub fn assert_no_temp_files(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".initbox-"),
            "temporary file left: {name}"
        );
        if entry.file_type().unwrap().is_dir() {
            assert_no_temp_files(&entry.path());
        }
    }
}
