//! Bounded allocation sections: memory limits for work driven by untrusted input (templates).
//!
//! The binary declares [`Allocator`] as its `#[global_allocator]`. Outside a section it is the
//! system allocator plus one thread-local read and compare. Inside [`bounded`] it refuses, on
//! that thread, any single allocation above the section's `single` limit and any growth of the
//! bytes allocated in the section (less those freed) above its `total` limit. A refusal does not
//! return null (Rust would abort with SIGABRT, exit 134): it writes the section's preformatted
//! one-line error to stderr and to the termination log, and ends the process with exit 3
//! (invalid input). Nothing in that path allocates: the line and the termination log path are
//! prepared before the section starts.
//!
//! This is the one place that bounds what a template engine builds where the engine has no
//! hook (minijinja's `~` and list `+`); the engines' own checks still give the precise
//! `file:line` errors for everything they can see.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use crate::exit::Code;
use crate::logging::{DEFAULT_TERMINATION_LOG, LogArgs, LogFormat};
use crate::redact;

/// The system allocator, bounded inside [`bounded`] sections. Declare it once, in the binary:
/// `#[global_allocator] static A: initbox_runtime::alloc::Allocator = initbox_runtime::alloc::Allocator;`
pub struct Allocator;

/// What a refusal writes, prepared before the section (the allocator path never allocates).
struct Refusal {
    /// The stderr line, newline included.
    line: Vec<u8>,
    /// The termination log content, newline included.
    message: Vec<u8>,
}

/// The current thread's section; `single == 0` means none, and that one read and compare is
/// all the allocator adds outside a section.
struct Section {
    /// The largest single allocation or reallocation.
    single: Cell<usize>,
    total: Cell<usize>,
    /// Bytes allocated in the section less bytes freed in it (frees of older memory make it
    /// negative, which only gives the section more room).
    live: Cell<isize>,
    refusal: Cell<*const Refusal>,
}

thread_local! {
    static SECTION: Section = const {
        Section {
            single: Cell::new(0),
            total: Cell::new(0),
            live: Cell::new(0),
            refusal: Cell::new(std::ptr::null()),
        }
    };
}

/// Where a refusal is also written, and whether the line is JSON (set once by [`configure`]).
struct Settings {
    applet: String,
    json: bool,
    termination_log: CString,
    create: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

const DEFAULT_LOG_C: &CStr = c"/dev/termination-log";

/// Record the applet name and its logging flags (line format, termination log) for refusals.
/// [`crate::launch`] calls it; later calls are ignored.
pub fn configure(applet: &str, log: &LogArgs) {
    let (path, create) = match &log.termination_log {
        Some(p) => (p.as_os_str().as_bytes().to_vec(), true),
        None => (DEFAULT_TERMINATION_LOG.as_bytes().to_vec(), false),
    };
    let Ok(termination_log) = CString::new(path) else {
        return;
    };
    let _ = SETTINGS.set(Settings {
        applet: applet.to_string(),
        json: log.log_format == LogFormat::Json,
        termination_log,
        create,
    });
}

/// Limits of one section, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest single allocation or reallocation.
    pub single: usize,
    /// The most bytes the section may hold at once.
    pub total: usize,
}

/// Run `f` with allocations on this thread bounded by `limits`; past them the process ends
/// with exit 3 and `message` (one line naming the input, scrubbed here) on stderr and in the
/// termination log. The previous section (if any) is restored when `f` returns or unwinds.
pub fn bounded<R>(limits: Limits, message: &str, f: impl FnOnce() -> R) -> R {
    let refusal = prepare(message);
    let _guard = Guard::enter(limits, &refusal);
    f()
}

fn prepare(message: &str) -> Refusal {
    let clean = redact::scrub(message).replace('\n', " ");
    let code = Code::INVALID_INPUT.as_i32();
    let (applet, json) = SETTINGS
        .get()
        .map_or(("", false), |s| (s.applet.as_str(), s.json));
    let mut line = if json {
        serde_json::json!({
            "level": "ERROR",
            "message": clean,
            "applet": applet,
            "code": code,
        })
        .to_string()
    } else {
        let who = if applet.is_empty() {
            "initbox".to_string()
        } else {
            format!("initbox {applet}")
        };
        format!("{who}: error: {clean} code={code}")
    };
    line.push('\n');
    Refusal {
        line: line.into_bytes(),
        message: format!("{clean}\n").into_bytes(),
    }
}

/// Saves the enclosing section and restores it on drop (also when `f` unwinds).
struct Guard {
    single: usize,
    total: usize,
    live: isize,
    refusal: *const Refusal,
}

impl Guard {
    fn enter(limits: Limits, refusal: &Refusal) -> Guard {
        SECTION.with(|s| {
            let saved = Guard {
                single: s.single.get(),
                total: s.total.get(),
                live: s.live.get(),
                refusal: s.refusal.get(),
            };
            s.total.set(limits.total.max(1));
            s.live.set(0);
            s.refusal.set(refusal);
            s.single.set(limits.single.max(1));
            saved
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        SECTION.with(|s| {
            s.single.set(self.single);
            s.total.set(self.total);
            s.live.set(self.live);
            s.refusal.set(self.refusal);
        });
    }
}

/// Account a request of `request` bytes that grows the section by `grow` (negative for a
/// free); refuse past its limits. Outside a section (or while the thread exits) only reads
/// `single`.
#[inline(always)]
fn check(request: usize, grow: isize) {
    let _ = SECTION.try_with(|s| {
        let single = s.single.get();
        if single != 0 {
            let live = s.live.get().saturating_add(grow);
            if request > single || (live > 0 && live as usize > s.total.get()) {
                refuse(s.refusal.get());
            }
            s.live.set(live);
        }
    });
}

#[cold]
fn refuse(refusal: *const Refusal) -> ! {
    // SAFETY: the pointer is set by `Guard::enter` from a `Refusal` that outlives the section
    // (it lives in `bounded`'s frame) and is cleared when the section ends.
    if let Some(r) = unsafe { refusal.as_ref() } {
        write_all(libc::STDERR_FILENO, &r.line);
        // As `logging::write_termination_log`: the given path (created), else the default one
        // only where it exists (a Kubernetes pod).
        let (path, create) = SETTINGS.get().map_or((DEFAULT_LOG_C, false), |s| {
            (s.termination_log.as_c_str(), s.create)
        });
        let mut flags = libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC;
        if create {
            flags |= libc::O_CREAT;
        }
        // SAFETY: a NUL-terminated path; the mode is only used when creating.
        let fd = unsafe { libc::open(path.as_ptr(), flags, 0o666 as libc::c_uint) };
        if fd >= 0 {
            write_all(fd, &r.message);
            // SAFETY: fd was opened above.
            unsafe { libc::close(fd) };
        }
    }
    // SAFETY: ending the process without running destructors or atexit handlers, which could
    // allocate; stderr is unbuffered.
    unsafe { libc::_exit(Code::INVALID_INPUT.as_i32()) }
}

fn write_all(fd: libc::c_int, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

// SAFETY: every call is forwarded to `System` with the same arguments; the section only decides
// whether to end the process before it.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size(), layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size(), layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        check(0, -(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(
            new_size,
            (new_size as isize).saturating_sub(layout.size() as isize),
        );
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOCATOR: Allocator = Allocator;

    const ROOMY: Limits = Limits {
        single: 1 << 20,
        total: 8 << 20,
    };

    fn single() -> usize {
        SECTION.with(|s| s.single.get())
    }

    #[test]
    fn allocations_within_the_limits_pass_and_the_section_ends_with_f() {
        assert_eq!(single(), 0);
        let v = bounded(ROOMY, "t: too large", || {
            assert_eq!(single(), 1 << 20);
            let parts: Vec<Vec<u8>> = (0..3).map(|_| vec![7u8; 1 << 18]).collect();
            parts.concat()
        });
        assert_eq!(v.len(), 3 << 18);
        assert_eq!(single(), 0);
        // Outside a section any size goes.
        assert_eq!(vec![0u8; 4 << 20].len(), 4 << 20);
    }

    #[test]
    fn freed_memory_leaves_room_and_sections_nest() {
        bounded(ROOMY, "outer", || {
            for _ in 0..100 {
                drop(vec![1u8; 1 << 20]);
            }
            bounded(
                Limits {
                    single: 4096,
                    total: 1 << 16,
                },
                "inner",
                || assert_eq!(single(), 4096),
            );
            assert_eq!(single(), 1 << 20);
        });
        assert_eq!(single(), 0);
    }

    #[test]
    fn an_unwinding_section_is_restored() {
        let r = std::panic::catch_unwind(|| {
            bounded(ROOMY, "t", || {
                // Unwind without the panic hook (which would print, and allocate, a backtrace).
                std::panic::resume_unwind(Box::new(()))
            })
        });
        assert!(r.is_err());
        assert_eq!(single(), 0);
        assert!(SECTION.with(|s| s.refusal.get().is_null()));
    }

    #[test]
    fn the_refusal_line_is_prepared_scrubbed_on_one_line() {
        let r = prepare("t.j2: too\nlarge");
        let line = String::from_utf8(r.line).unwrap();
        assert!(line.ends_with("t.j2: too large code=3\n"), "{line}");
        assert_eq!(r.message, b"t.j2: too large\n");
    }
}
