//! Modes to force or adjust: rsync's `--chmod` list, whose items are octal modes (`0640`) or
//! chmod(1)'s symbolic clauses (`g+rwX`, `u=rwx,go=rx`, `a-w`, `+t`, `o=`, `g=u`), each
//! optionally prefixed with `D` (directories only) or `F` (everything else).
//!
//! The symbolic clauses follow GNU chmod's documented rules ("Symbolic Modes" in the coreutils
//! manual):
//! - who is any of `ugoa`; none means `a`, except that bits set in the umask are left alone;
//! - `+` adds, `-` removes, `=` sets the named bits and clears the others of that who (with no
//!   who, every bit not protected by the umask); several operations may follow one who
//!   (`u+r-w`);
//! - permissions are any of `rwxXst`, or one of `ugo` (copy that class's current bits);
//!   `X` is execute only for a directory or a file that already has an execute bit (as the
//!   mode stands when the clause is applied); `s` is set-user-ID with `u` and set-group-ID
//!   with `g`; `t` is the restricted-deletion (sticky) bit, with `o`, `a` or no who;
//! - a directory keeps its set-user-ID and set-group-ID bits unless the clause names them
//!   (`g-s`, `u=rwxs`): `a=rx` on a set-group-ID directory keeps it set-group-ID.
//!
//! Items apply in order, each to the mode the previous ones left; an octal item sets the mode
//! outright (all 12 bits, as rsync does, directories included).

use std::sync::OnceLock;

const SUID: u32 = 0o4000;
const SGID: u32 = 0o2000;
const STICKY: u32 = 0o1000;
const ALL: u32 = 0o7777;
/// Read, write and execute of the user class; shifted right by 3 and 6 for group and other.
const RWX_U: u32 = 0o700;
const RWX_G: u32 = 0o070;
const RWX_O: u32 = 0o007;
const R_ALL: u32 = 0o444;
const W_ALL: u32 = 0o222;
const X_ALL: u32 = 0o111;

/// Which entries an item applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kinds {
    Both,
    Dirs,
    Files,
}

/// What an operation's bits come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Perms {
    /// Fixed bits (`rwxst`), plus `X` when `cond_x`.
    Bits { bits: u32, cond_x: bool },
    /// A class's current bits (`u`, `g` or `o`): its rwx as a 3-bit mask at this shift.
    Copy { shift: u32 },
}

/// One `+`, `-` or `=` of a symbolic clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Op {
    op: u8,
    /// The bits the who allows (0: no who, the umask decides).
    who: u32,
    perms: Perms,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Octal(u32),
    Symbolic(Vec<Op>),
}

/// Modes to force or adjust, by kind of entry; see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chmod {
    items: Vec<(Kinds, Item)>,
    /// The process's umask, read when a clause without who needed it.
    umask: u32,
}

impl Chmod {
    /// Parse rsync's `--chmod` list: `D0750,F0640`, `0640`, `u=rwX,go=rX`, `Dg+s,Fa-x`.
    pub fn parse(s: &str) -> Result<Chmod, String> {
        let mut c = Chmod::default();
        let mut needs_umask = false;
        if s.trim().is_empty() {
            return Err("'' is not a mode (octal like 0640, or symbolic like u=rwX,go=rX)".into());
        }
        for part in s.split(',').map(str::trim) {
            let (kinds, m) = if let Some(m) = part.strip_prefix('D') {
                (Kinds::Dirs, m)
            } else if let Some(m) = part.strip_prefix('F') {
                (Kinds::Files, m)
            } else {
                (Kinds::Both, part)
            };
            let item = if m.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
                Item::Octal(octal(m)?)
            } else {
                let ops = symbolic(m).map_err(|why| {
                    format!("'{part}' is not a mode: {why} (octal like 0640, or symbolic like u=rwX,go=rX)")
                })?;
                needs_umask |= ops.iter().any(|o| o.who == 0);
                Item::Symbolic(ops)
            };
            c.items.push((kinds, item));
        }
        if needs_umask {
            c.umask = umask();
        }
        Ok(c)
    }

    /// Whether it forces anything.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether anything applies to directories.
    pub fn touches_dirs(&self) -> bool {
        self.items.iter().any(|(k, _)| *k != Kinds::Files)
    }

    /// Whether anything applies to entries other than directories.
    pub fn touches_files(&self) -> bool {
        self.items.iter().any(|(k, _)| *k != Kinds::Dirs)
    }

    /// The mode a directory whose mode is `current` gets (`current` when nothing applies).
    pub fn dir_mode(&self, current: u32) -> u32 {
        self.mode(true, current)
    }

    /// The mode an entry other than a directory whose mode is `current` gets.
    pub fn file_mode(&self, current: u32) -> u32 {
        self.mode(false, current)
    }

    /// The mode an entry (a directory or not) whose mode is `current` gets.
    pub fn mode(&self, dir: bool, current: u32) -> u32 {
        let mut m = current & ALL;
        for (kinds, item) in &self.items {
            let applies = match kinds {
                Kinds::Both => true,
                Kinds::Dirs => dir,
                Kinds::Files => !dir,
            };
            if !applies {
                continue;
            }
            match item {
                Item::Octal(o) => m = *o,
                Item::Symbolic(ops) => {
                    for op in ops {
                        m = op.apply(m, dir, self.umask);
                    }
                }
            }
        }
        m
    }
}

fn octal(t: &str) -> Result<u32, String> {
    u32::from_str_radix(t, 8)
        .ok()
        .filter(|m| *m <= ALL && !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("'{t}' is not an octal mode"))
}

/// One symbolic clause: `[ugoa]*([-+=]([rwxXst]*|[ugo]))+`.
fn symbolic(s: &str) -> Result<Vec<Op>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut who = 0;
    while let Some(c) = b.get(i) {
        who |= match c {
            b'u' => SUID | RWX_U,
            b'g' => SGID | RWX_G,
            b'o' => STICKY | RWX_O,
            b'a' => ALL,
            _ => break,
        };
        i += 1;
    }
    let mut ops = Vec::new();
    while let Some(&op) = b.get(i) {
        if !matches!(op, b'+' | b'-' | b'=') {
            return Err(format!("'{}' is not one of + - =", char::from(op)));
        }
        i += 1;
        let perms = match b.get(i) {
            Some(c @ (b'u' | b'g' | b'o')) => {
                i += 1;
                Perms::Copy {
                    shift: match c {
                        b'u' => 6,
                        b'g' => 3,
                        _ => 0,
                    },
                }
            }
            _ => {
                let (mut bits, mut cond_x) = (0, false);
                while let Some(c) = b.get(i) {
                    match c {
                        b'r' => bits |= R_ALL,
                        b'w' => bits |= W_ALL,
                        b'x' => bits |= X_ALL,
                        b'X' => cond_x = true,
                        b's' => bits |= SUID | SGID,
                        b't' => bits |= STICKY,
                        b'+' | b'-' | b'=' => break,
                        other => {
                            return Err(format!(
                                "'{}' is not a permission (r w x X s t, or one of u g o)",
                                char::from(*other)
                            ));
                        }
                    }
                    i += 1;
                }
                Perms::Bits { bits, cond_x }
            }
        };
        ops.push(Op { op, who, perms });
    }
    if ops.is_empty() {
        return Err("no operation (+ - =)".into());
    }
    Ok(ops)
}

impl Op {
    fn apply(&self, m: u32, dir: bool, umask: u32) -> u32 {
        let mut value = match self.perms {
            Perms::Bits { bits, cond_x } => {
                let x = cond_x && (dir || m & X_ALL != 0);
                bits | if x { X_ALL } else { 0 }
            }
            Perms::Copy { shift } => {
                // The class's rwx, spread to all three classes (the who narrows it below).
                let c = (m >> shift) & 0o7;
                c | c << 3 | c << 6
            }
        };
        // The bits this operation names: those of its who, else those the umask leaves.
        let reach = if self.who != 0 {
            self.who
        } else {
            ALL & !umask
        };
        let named = if self.who != 0 {
            self.who & value
        } else {
            value
        };
        // A directory keeps set-user-ID and set-group-ID unless the clause names them.
        let kept = if dir { (SUID | SGID) & !named } else { 0 };
        value &= reach & !kept;
        match self.op {
            b'+' => m | value,
            b'-' => m & !value,
            _ => {
                // `=`: with a who, the bits outside it stay; without, every bit is set anew.
                let keep = if self.who != 0 { !self.who } else { 0 } | kept;
                (m & keep) | value
            }
        }
    }
}

/// The process's umask, from `/proc/self/status` (read without changing it), else by setting
/// and restoring it once.
fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        let from_proc = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            });
        from_proc.unwrap_or_else(|| {
            // SAFETY: umask has no preconditions; the old value is put back at once.
            unsafe {
                let old = libc::umask(0o022);
                libc::umask(old);
                old as u32
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_umask(s: &str, umask: u32) -> Chmod {
        Chmod {
            umask,
            ..Chmod::parse(s).unwrap()
        }
    }

    #[test]
    fn parses_rsync_numeric_form() {
        let c = Chmod::parse("D2775,F664").unwrap();
        assert_eq!(c.dir_mode(0o700), 0o2775);
        assert_eq!(c.file_mode(0o4755), 0o664);
        let c = Chmod::parse("0640").unwrap();
        assert_eq!((c.dir_mode(0o7777), c.file_mode(0)), (0o640, 0o640));
        assert!(Chmod::parse("D").is_err());
        assert!(Chmod::parse("F17777").is_err());
        assert!(Chmod::parse("").is_err());
        assert!(Chmod::parse("D0750").unwrap().touches_dirs());
        assert!(!Chmod::parse("D0750").unwrap().touches_files());
    }

    #[test]
    fn symbolic_clauses_follow_gnu_chmod() {
        let c = |s: &str, dir: bool, m: u32| with_umask(s, 0o022).mode(dir, m);
        assert_eq!(c("g+rwX", false, 0o600), 0o660);
        assert_eq!(c("g+rwX", false, 0o700), 0o770);
        assert_eq!(c("g+rwX", true, 0o700), 0o770);
        assert_eq!(c("u=rwx,go=rx", false, 0o4600), 0o755);
        assert_eq!(c("a-w", false, 0o666), 0o444);
        assert_eq!(c("+t", true, 0o777), 0o1777);
        assert_eq!(c("o=", false, 0o777), 0o770);
        assert_eq!(c("g=u", false, 0o640), 0o660);
        assert_eq!(c("u+r-w", false, 0o200), 0o400);
        assert_eq!(c("ug+s", false, 0o755), 0o6755);
        assert_eq!(c("o+s", false, 0o755), 0o755);
        // No who: the umask's bits are left alone.
        assert_eq!(c("+w", false, 0o444), 0o644);
        assert_eq!(c("=r", false, 0o777), 0o444);
        // A directory keeps set-group-ID unless the clause names it.
        assert_eq!(c("a=rx", true, 0o2775), 0o2555);
        assert_eq!(c("g-s", true, 0o2775), 0o775);
        assert_eq!(c("a=rx", false, 0o2775), 0o555);
        // X looks at the mode as the earlier clauses left it.
        assert_eq!(c("a-x,a+X", false, 0o755), 0o644);
        assert_eq!(c("Dg+s,Fa-x", true, 0o755), 0o2755);
        assert_eq!(c("Dg+s,Fa-x", false, 0o755), 0o644);
        assert_eq!(c("0600,g+r", false, 0o777), 0o640);
    }

    /// Every string of up to three characters of the modes' alphabet parses to a mode or to a
    /// one-line error, never a panic, and a parsed mode stays within the twelve mode bits.
    #[test]
    fn short_strings_parse_or_fail_without_panicking() {
        let alphabet: Vec<char> = "ugoa+-=rwxXst07DF, q".chars().collect();
        let mut strings = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = strings
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(longer);
        }
        let mut parsed = 0;
        for s in &strings {
            match Chmod::parse(s) {
                Ok(c) => {
                    parsed += 1;
                    for m in [0, 0o644, 0o755, 0o2775, 0o7777] {
                        assert!(c.mode(true, m) <= ALL && c.mode(false, m) <= ALL, "{s}");
                    }
                }
                Err(e) => assert!(!e.contains('\n'), "{s}: {e}"),
            }
        }
        assert!(parsed > 100, "only {parsed} parsed");
    }

    #[test]
    fn bad_clauses_are_refused() {
        for bad in [
            "u+q", "u", "ug", "u!x", "x+u", "+rg", "g+uo", "u=rwx,", "8", "0999", "u+rw x",
        ] {
            assert!(Chmod::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
