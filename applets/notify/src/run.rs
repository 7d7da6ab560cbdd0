//! `notify run -- CMD ARGS`: run a command, keep the tail of its stderr, pass its exit code on.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use initbox_runtime::{Code, Failure};
use tokio::io::AsyncReadExt;

/// How a command ended.
#[derive(Debug)]
pub struct Ran {
    /// The exit code to pass on: the command's, or 128+N when signal N ended it.
    pub code: Code,
    pub duration: Duration,
    pub stderr_tail: String,
    /// Could not be started at all (127 not found / 126 not executable).
    pub spawn_error: Option<Failure>,
}

/// Sends SIGTERM to the child if initbox is stopped while the child still runs
/// (the pod's SIGTERM reaches initbox, PID 1, not the child).
struct TermOnDrop(Option<u32>);

impl Drop for TermOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take()
            && let Ok(pid) = i32::try_from(pid)
        {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

/// The last `lines` lines of a stream, capped at `max_bytes` (the end is kept).
pub struct Tail {
    lines: VecDeque<String>,
    partial: Vec<u8>,
    max_lines: usize,
    max_bytes: usize,
}

impl Tail {
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        Tail {
            lines: VecDeque::new(),
            partial: Vec::new(),
            max_lines,
            max_bytes,
        }
    }
    pub fn push(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.push_line(line);
            } else if self.partial.len() < self.max_bytes {
                self.partial.push(b);
            }
        }
    }
    fn push_line(&mut self, line: String) {
        if self.max_lines == 0 {
            return;
        }
        self.lines
            .push_back(line.trim_end_matches('\r').to_string());
        while self.lines.len() > self.max_lines {
            self.lines.pop_front();
        }
    }
    pub fn finish(mut self) -> String {
        if !self.partial.is_empty() {
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            self.push_line(line);
        }
        let text = Vec::from(self.lines).join("\n");
        if text.len() <= self.max_bytes {
            return text;
        }
        let mut start = text.len() - self.max_bytes;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        format!("…{}", &text[start..])
    }
}

pub async fn run(argv: &[OsString], tail_lines: usize, tail_bytes: usize) -> Ran {
    let started = Instant::now();
    let Some((program, args)) = argv.split_first() else {
        return Ran {
            code: Code::USAGE,
            duration: Duration::ZERO,
            stderr_tail: String::new(),
            spawn_error: Some(Failure::usage("no command given after --")),
        };
    };
    let shown = program.to_string_lossy().into_owned();
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let f = match e.kind() {
                std::io::ErrorKind::NotFound => Failure::new(
                    Code::NOT_FOUND,
                    format!("command '{shown}' not found (checked PATH)"),
                ),
                std::io::ErrorKind::PermissionDenied => Failure::new(
                    Code::NOT_EXECUTABLE,
                    format!("command '{shown}' is not executable: permission denied"),
                ),
                _ => Failure::new(
                    Code::NOT_EXECUTABLE,
                    format!("command '{shown}' could not be started: {e}"),
                ),
            };
            return Ran {
                code: f.code,
                duration: started.elapsed(),
                stderr_tail: f.message.clone(),
                spawn_error: Some(f),
            };
        }
    };
    let mut guard = TermOnDrop(child.id());
    let mut tail = Tail::new(tail_lines, tail_bytes);
    if let Some(mut err) = child.stderr.take() {
        let mut buf = vec![0u8; 8192];
        loop {
            match err.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // The command's stderr passes through unchanged.
                    let mut out = std::io::stderr().lock();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                    tail.push(&buf[..n]);
                }
            }
        }
    }
    let status = child.wait().await;
    guard.0 = None;
    let code = match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            match (s.code(), s.signal()) {
                (Some(c), _) => Code(c),
                (None, Some(sig)) => Code::signal(sig),
                (None, None) => Code::FAILED,
            }
        }
        Err(_) => Code::FAILED,
    };
    Ran {
        code,
        duration: started.elapsed(),
        stderr_tail: tail.finish(),
        spawn_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut t = Tail::new(2, 1024);
        t.push(b"one\ntwo\nthr");
        t.push(b"ee\nfour");
        assert_eq!(t.finish(), "three\nfour");
    }

    #[test]
    fn tail_caps_bytes_keeping_the_end() {
        let mut t = Tail::new(10, 8);
        t.push(b"abcdefgh\nij\n");
        assert_eq!(t.finish(), "…defgh\nij");
    }

    #[tokio::test]
    async fn exit_codes_pass_through() {
        let argv: Vec<OsString> = ["sh", "-c", "echo oops >&2; exit 7"]
            .map(Into::into)
            .to_vec();
        let r = run(&argv, 5, 4096).await;
        assert_eq!(r.code, Code(7));
        assert_eq!(r.stderr_tail, "oops");
        let argv: Vec<OsString> = ["sh", "-c", "kill -TERM $$"].map(Into::into).to_vec();
        assert_eq!(run(&argv, 5, 4096).await.code, Code(143));
        let argv: Vec<OsString> = vec!["/nonexistent/cmd".into()];
        assert_eq!(run(&argv, 5, 4096).await.code, Code::NOT_FOUND);
    }
}
