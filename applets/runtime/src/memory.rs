//! Memory a long-running applet gives back before a long wait (`schedule` between runs).
//!
//! What an idle initbox holds is mostly what its start-up touched: the multi-call front builds
//! the argument parser of every applet in the binary, which faults in pages of code and
//! read-only data from all over the executable, and leaves freed parser memory in the heap. A
//! one-shot applet exits soon after; a sidecar would keep those pages for days. [`release`]
//! drops them from this process: the binary's read-only file mappings whose pages were never
//! written (code, read-only data; not the relocated RELRO data, which holds private copies)
//! are unmapped with `MADV_DONTNEED` and come back from the page cache on the next access;
//! free heap memory is returned with `malloc_trim`. Nothing is lost: only clean pages and free
//! memory are given back.

use std::path::PathBuf;

/// What [`release`] gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Resident KiB of the binary's clean read-only mappings that were dropped.
    pub mapped_kib: u64,
    /// Resident set size before and after, in KiB (0 when /proc is not readable).
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
}

/// One mapping of /proc/self/smaps.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    path: String,
    rss_kib: u64,
    anonymous_kib: u64,
}

/// The mappings of an smaps text.
fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            let perms = words.next().unwrap_or_default();
            // offset, device, inode, then the path (which may hold spaces).
            let path = words.skip(3).collect::<Vec<_>>().join(" ");
            out.push(Mapping {
                start,
                end,
                writable: perms.contains('w'),
                path,
                rss_kib: 0,
                anonymous_kib: 0,
            });
            continue;
        }
        let kib = || words.clone().next().and_then(|v| v.parse::<u64>().ok());
        if let Some(m) = out.last_mut() {
            match first {
                "Rss:" => m.rss_kib = kib().unwrap_or(0),
                "Anonymous:" => m.anonymous_kib = kib().unwrap_or(0),
                _ => {}
            }
        }
    }
    out
}

/// The binary's mappings that may be dropped: read-only, with resident pages, none of them a
/// private (written) copy.
fn droppable<'a>(maps: &'a [Mapping], exe: &str) -> impl Iterator<Item = &'a Mapping> {
    maps.iter()
        .filter(move |m| m.path == exe && !m.writable && m.anonymous_kib == 0 && m.rss_kib > 0)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Give back the start-up's clean pages of the binary and the heap's free memory (see the
/// module documentation). Call it when the process is about to wait for a long time; the next
/// work faults back in what it needs (from the page cache, microseconds per page group).
pub fn release() -> Released {
    let rss_before_kib = rss_kib();
    let mut mapped_kib = 0;
    let exe: Option<PathBuf> = std::fs::read_link("/proc/self/exe").ok();
    if let (Some(exe), Ok(smaps)) = (exe, std::fs::read_to_string("/proc/self/smaps")) {
        let exe = exe.to_string_lossy().into_owned();
        let maps = mappings(&smaps);
        for m in droppable(&maps, &exe) {
            // SAFETY: the range is one whole mapping of the executable, read-only and with no
            // private (anonymous) page: every page is a clean copy of the file, which
            // MADV_DONTNEED unmaps and the next access maps again from the page cache. No
            // pointer into it is invalidated.
            let r = unsafe {
                libc::madvise(
                    m.start as *mut libc::c_void,
                    m.end - m.start,
                    libc::MADV_DONTNEED,
                )
            };
            if r == 0 {
                mapped_kib += m.rss_kib;
            }
        }
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim(3) only returns free memory of glibc's heap to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    Released {
        mapped_kib,
        rss_before_kib,
        rss_after_kib: rss_kib(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0a4b000 r-xp 00000000 fe:00 1234 /usr/local/bin/initbox
Size:              10540 kB
Rss:                6820 kB
Anonymous:             0 kB
55d0a0a4b000-55d0a0ac5000 r--p 00a4b000 fe:00 1234 /usr/local/bin/initbox
Size:                488 kB
Rss:                 488 kB
Anonymous:           488 kB
55d0a0ac5000-55d0a0ad2000 rw-p 00ac5000 fe:00 1234 /usr/local/bin/initbox
Rss:                  52 kB
Anonymous:            52 kB
55d0a0ad2000-55d0a0ad3000 r--p 00000000 fe:00 99 /opt/my data/file
Rss:                   4 kB
Anonymous:             0 kB
55d0a1000000-55d0a1100000 rw-p 00000000 00:00 0 [heap]
Rss:                 808 kB
Anonymous:           808 kB
";

    #[test]
    fn only_clean_read_only_mappings_of_the_binary_are_dropped() {
        let maps = mappings(SMAPS);
        assert_eq!(maps.len(), 5);
        assert_eq!(maps[3].path, "/opt/my data/file");
        let d: Vec<_> = droppable(&maps, "/usr/local/bin/initbox").collect();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].start, d[0].rss_kib), (0x55d0a0000000, 6820));
    }

    #[test]
    fn release_keeps_the_process_working() {
        let data = vec![7u8; 1 << 20];
        drop(data);
        let r = release();
        // Code and data still work after the pages were dropped.
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 500_500);
        assert!(r.rss_before_kib > 0);
    }
}
