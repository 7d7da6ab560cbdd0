//! Test data on disk: incompressible files of a given size, and directory listings.

use std::path::Path;

/// Write `mib` MiB of incompressible bytes (xorshift from `seed`) to `path`, so an archive of
/// it really is that large.
pub fn noise(path: &Path, mib: usize, seed: u64) {
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

/// The names in `dir` that satisfy `keep`, sorted (none when `dir` does not exist).
pub fn names(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| keep(n))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
