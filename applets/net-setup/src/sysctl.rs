//! Kernel parameters under `/proc/sys`, named as sysctl(8) names them.
//!
//! `net.*` keys (and the IPC ones) belong to the pod's own namespaces; every other key is
//! node-wide and is refused unless the caller says it means the node (`--node-sysctls`). A value
//! is written only when it differs, then read back: a value the kernel clamped or rewrote is a
//! failure, not a success. An unknown key is refused with the closest names that do exist.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use initbox_runtime::Failure;

/// Where the kernel shows its parameters.
pub const ROOT: &str = "/proc/sys";

/// One `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    pub key: String,
    pub value: String,
}

/// `KEY=VALUE` from the command line (sysctl(8)'s `-w` form).
pub fn parse(s: &str) -> Result<Sysctl, String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))?;
    let (key, value) = (k.trim(), v.trim());
    segments(key)?;
    if value.is_empty() {
        return Err(format!("'{s}': empty value"));
    }
    Ok(Sysctl {
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// The path segments of a key. As in sysctl(8): dots separate, unless the key uses slashes
/// (then dots are part of a name, e.g. `net/ipv4/conf/eth0.100/rp_filter`).
fn segments(key: &str) -> Result<Vec<&str>, String> {
    let sep = if key.contains('/') { '/' } else { '.' };
    let segs: Vec<&str> = key.split(sep).collect();
    if key.is_empty() || segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(format!("'{key}' is not a sysctl name"));
    }
    Ok(segs)
}

/// Per-namespace keys (the ones the kubelet counts as namespaced): the network namespace's
/// `net.*`, the IPC namespace's `kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`.
pub fn is_namespaced(key: &str) -> bool {
    let dotted = dotted(key);
    dotted.starts_with("net.")
        || dotted.starts_with("kernel.shm")
        || dotted.starts_with("kernel.msg")
        || dotted == "kernel.sem"
        || dotted.starts_with("fs.mqueue.")
}

/// The key in its dotted form (for logs and comparisons).
pub fn dotted(key: &str) -> String {
    if key.contains('/') {
        key.trim_matches('/').replace('/', ".")
    } else {
        key.to_string()
    }
}

/// The key's file under `root`, or an invalid-input error naming the closest existing keys.
pub fn locate(root: &Path, key: &str) -> Result<PathBuf, Failure> {
    let segs = segments(key).map_err(Failure::usage)?;
    let path = segs.iter().fold(root.to_path_buf(), |p, s| p.join(s));
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(Failure::invalid_input(format!(
            "sysctl {key}: is a group of parameters, not one"
        ))),
        Err(_) => {
            let near = closest(root, &dotted(key));
            let hint = if near.is_empty() {
                String::new()
            } else {
                format!(" (close names here: {})", near.join(", "))
            };
            let scope = if is_namespaced(key) {
                " in this network namespace"
            } else {
                ""
            };
            Err(Failure::invalid_input(format!(
                "sysctl {key}: no such parameter{scope}{hint}"
            )))
        }
    }
}

/// Up to three existing keys that look like `key`, best first.
fn closest(root: &Path, key: &str) -> Vec<String> {
    let mut all = Vec::new();
    collect(root, String::new(), &mut all, 0);
    let mut scored: Vec<(f64, String)> = all
        .into_iter()
        .map(|k| (strsim::normalized_damerau_levenshtein(key, &k), k))
        .filter(|(s, _)| *s >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.into_iter().take(3).map(|(_, k)| k).collect()
}

fn collect(dir: &Path, prefix: String, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        match e.file_type() {
            Ok(t) if t.is_dir() => collect(&e.path(), key, out, depth + 1),
            Ok(t) if t.is_file() => out.push(key),
            _ => {}
        }
    }
}

/// Whitespace-insensitive form of a value: the kernel prints vectors tab-separated.
pub fn normalize(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn read(path: &Path, key: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map(|s| normalize(&s))
        .map_err(|e| refused(key, "read", &e))
}

/// What [`apply`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    Set { was: String },
}

/// Set `s` (already located at `path`) unless it already has its value; read it back.
pub fn apply(path: &Path, s: &Sysctl) -> Result<Change, Failure> {
    let want = normalize(&s.value);
    let was = read(path, &s.key)?;
    if was == want {
        return Ok(Change::Unchanged);
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(s.value.as_bytes()));
    if let Err(e) = written {
        return Err(refused(&s.key, "set", &e));
    }
    let now = read(path, &s.key)?;
    if now != want {
        return Err(Failure::failed(format!(
            "sysctl {}: reads back '{now}' after writing '{want}'",
            s.key
        )));
    }
    Ok(Change::Set { was })
}

/// The error for a refused read or write, naming what the pod lacks.
fn refused(key: &str, what: &str, e: &io::Error) -> Failure {
    match e.raw_os_error() {
        Some(libc::EROFS) => Failure::env_refused(format!(
            "cannot {what} sysctl {key}: {ROOT} is mounted read-only in this container \
             (a privileged container, or the pod's securityContext.sysctls for namespaced keys)"
        )),
        Some(libc::EPERM) | Some(libc::EACCES) => {
            let cap = if is_namespaced(key) {
                "root with NET_ADMIN in the pod's network namespace"
            } else {
                "a privileged container (node-level parameter)"
            };
            Failure::env_refused(format!(
                "cannot {what} sysctl {key}: permission denied (needs {cap})"
            ))
        }
        Some(libc::EINVAL) => {
            Failure::invalid_input(format!("sysctl {key}: the kernel refused the value ({e})"))
        }
        _ => Failure::failed(format!("cannot {what} sysctl {key}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_sysctl8() {
        assert_eq!(
            segments("net.ipv4.ip_forward").unwrap(),
            ["net", "ipv4", "ip_forward"]
        );
        assert_eq!(
            segments("net/ipv4/conf/eth0.100/rp_filter").unwrap(),
            ["net", "ipv4", "conf", "eth0.100", "rp_filter"]
        );
        for bad in ["", "net..core", "net.core.", "net/../x", ".net"] {
            assert!(segments(bad).is_err(), "{bad}");
        }
        assert!(parse("net.core.somaxconn").is_err());
        assert!(parse("net.core.somaxconn=").is_err());
        assert_eq!(
            parse(" net.core.somaxconn = 1024 ").unwrap(),
            Sysctl {
                key: "net.core.somaxconn".into(),
                value: "1024".into()
            }
        );
    }

    #[test]
    fn namespaced_keys_are_the_kubelets() {
        for k in [
            "net.core.somaxconn",
            "kernel.shmmax",
            "kernel.msgmax",
            "kernel.sem",
            "fs.mqueue.msg_max",
            "net/ipv4/ip_forward",
        ] {
            assert!(is_namespaced(k), "{k}");
        }
        for k in [
            "vm.max_map_count",
            "kernel.pid_max",
            "fs.file-max",
            "kernel.semx",
        ] {
            assert!(!is_namespaced(k), "{k}");
        }
    }

    #[test]
    fn unknown_keys_get_close_names() {
        let dir = std::env::temp_dir().join(format!("initbox-sysctl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("net/core")).unwrap();
        std::fs::write(dir.join("net/core/somaxconn"), "4096\n").unwrap();
        std::fs::write(dir.join("net/core/rmem_max"), "212992\n").unwrap();
        let e = locate(&dir, "net.core.somaxcon").unwrap_err();
        assert_eq!(e.code, initbox_runtime::Code::INVALID_INPUT);
        assert!(
            e.message.contains("close names here: net.core.somaxconn"),
            "{e}"
        );
        assert!(!e.message.contains("rmem_max"), "{e}");
        let e = locate(&dir, "net.core").unwrap_err();
        assert!(e.message.contains("group"), "{e}");
        assert_eq!(
            locate(&dir, "net.core.somaxconn").unwrap(),
            dir.join("net/core/somaxconn")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
