//! Local targets: `file:///PATH[?nonempty][&contains=REGEX]`, `unix:///PATH` and commands
//! (`exec:CMD ARGS`, `--cmd 'CMD ARGS'`).

use std::path::PathBuf;

use regex::Regex;
use tokio::io::AsyncReadExt;

use initbox_runtime::Failure;
use initbox_runtime::child::{self, Output};
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};

use crate::net::percent_decode;

/// At most this much of a file is searched with `contains=`.
const CONTAINS_LIMIT: u64 = 16 * 1024 * 1024;

/// Split `file:///p?q` / `unix:///p` into the absolute path and the query.
fn local_path(url: &str, scheme: &str) -> Result<(PathBuf, Option<String>), Failure> {
    let rest = &url[scheme.len() + 1..];
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (rest, None),
    };
    if !path.starts_with('/') {
        return Err(Failure::usage(format!(
            "'{url}': expected {scheme}:///ABSOLUTE/PATH (three slashes)"
        )));
    }
    let path = percent_decode(path)
        .ok_or_else(|| Failure::usage(format!("'{url}': bad percent-encoding in the path")))?;
    Ok((PathBuf::from(path), query))
}

/// `file:///PATH`: the path exists (optionally non-empty, or containing a match of a regex).
pub struct FileProbe {
    shown: String,
    path: PathBuf,
    nonempty: bool,
    contains: Option<Regex>,
}

impl FileProbe {
    pub fn new(url: &str) -> Result<Self, Failure> {
        let (path, query) = local_path(url, "file")?;
        let mut probe = FileProbe {
            shown: url.to_string(),
            path,
            nonempty: false,
            contains: None,
        };
        for pair in query
            .iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(&v.replace('+', " ")).unwrap_or_else(|| v.to_string());
            match k {
                "nonempty" | "non_empty" | "non-empty" => probe.nonempty = true,
                "contains" => {
                    probe.contains = Some(
                        crate::http::parse_regex(&v)
                            .map_err(|e| Failure::usage(format!("'{url}': contains={e}")))?,
                    )
                }
                other => {
                    return Err(Failure::usage(format!(
                        "'{url}': unknown parameter '{other}' (expected nonempty or contains=REGEX)"
                    )));
                }
            }
        }
        Ok(probe)
    }

    async fn check(&self) -> Result<String, NotReady> {
        let meta = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| NotReady::retry(io_why(&e)))?;
        if self.nonempty {
            let empty = if meta.is_dir() {
                let mut rd = tokio::fs::read_dir(&self.path)
                    .await
                    .map_err(|e| NotReady::retry(io_why(&e)))?;
                rd.next_entry().await.ok().flatten().is_none()
            } else {
                meta.len() == 0
            };
            if empty {
                return Err(NotReady::retry(if meta.is_dir() {
                    "the directory is empty"
                } else {
                    "the file is empty"
                }));
            }
        }
        if let Some(re) = &self.contains {
            let f = tokio::fs::File::open(&self.path)
                .await
                .map_err(|e| NotReady::retry(io_why(&e)))?;
            let mut data = Vec::new();
            f.take(CONTAINS_LIMIT)
                .read_to_end(&mut data)
                .await
                .map_err(|e| NotReady::retry(io_why(&e)))?;
            if !re.is_match(&String::from_utf8_lossy(&data)) {
                return Err(NotReady::retry(format!(
                    "no match of /{}/ in {} bytes",
                    re.as_str(),
                    data.len()
                )));
            }
            return Ok(format!("matches /{}/", re.as_str()));
        }
        Ok(if meta.is_dir() {
            "directory exists".into()
        } else {
            format!("exists ({} bytes)", meta.len())
        })
    }
}

fn io_why(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

impl Probe for FileProbe {
    fn target(&self) -> String {
        self.shown.clone()
    }
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.check())
    }
}

/// `unix:///PATH`: a stream socket accepts a connection.
pub struct UnixProbe {
    shown: String,
    path: PathBuf,
}

impl UnixProbe {
    pub fn new(url: &str) -> Result<Self, Failure> {
        let (path, query) = local_path(url, "unix")?;
        if query.is_some() {
            return Err(Failure::usage(format!(
                "'{url}': unix:// takes no parameters"
            )));
        }
        Ok(UnixProbe {
            shown: url.to_string(),
            path,
        })
    }
}

impl Probe for UnixProbe {
    fn target(&self) -> String {
        self.shown.clone()
    }
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            tokio::net::UnixStream::connect(&self.path)
                .await
                .map_err(|e| NotReady::retry(io_why(&e)))?;
            Ok("connected".into())
        })
    }
}

/// A command that must exit 0. Run directly (argv split like a shell would, without one),
/// or with `sh -c` when the user asks for a shell. Killed when the attempt times out.
pub struct ExecProbe {
    shown: String,
    argv: Vec<String>,
}

impl ExecProbe {
    pub fn new(command: &str, shell: bool) -> Result<Self, Failure> {
        let command = command.trim();
        if command.is_empty() {
            return Err(Failure::usage("exec: empty command"));
        }
        let argv = if shell {
            vec!["/bin/sh".into(), "-c".into(), command.to_string()]
        } else {
            shlex::split(command)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "exec:{command}: unbalanced quotes (or use --shell for shell syntax)"
                    ))
                })?
        };
        Ok(ExecProbe {
            shown: format!("exec:{command}"),
            argv,
        })
    }
}

impl Probe for ExecProbe {
    fn target(&self) -> String {
        self.shown.clone()
    }
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let spawned = child::Command::new(&self.argv)
                .stdout(Output::Null)
                .stderr(Output::Tail)
                .grace(child::PROBE_GRACE)
                .spawn();
            // A probe command that cannot start is a usage error, not "not ready yet".
            let running = spawned.map_err(|f| NotReady::Fatal(Failure::usage(f.message)))?;
            let out = running
                .wait()
                .await
                .map_err(|f| NotReady::retry(f.message))?;
            if out.success() {
                return Ok("exit 0".into());
            }
            let last = out
                .stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| format!(": {}", l.trim().chars().take(120).collect::<String>()))
                .unwrap_or_default();
            Err(NotReady::retry(format!(
                "{}{last}",
                child::brief(&out.status)
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let (p, q) = local_path("file:///run/ready%20flag?nonempty", "file").unwrap();
        assert_eq!(p, PathBuf::from("/run/ready flag"));
        assert_eq!(q.as_deref(), Some("nonempty"));
        assert!(local_path("file://relative/x", "file").is_err());
        assert!(local_path("unix://localhost/run/x.sock", "unix").is_ok());
        assert!(FileProbe::new("file:///x?bogus=1").is_err());
        assert!(FileProbe::new("file:///x?contains=(").is_err());
        assert!(ExecProbe::new("echo 'unbalanced", false).is_err());
        assert_eq!(
            ExecProbe::new("test -f '/a b'", false).unwrap().argv,
            vec!["test", "-f", "/a b"]
        );
    }
}
