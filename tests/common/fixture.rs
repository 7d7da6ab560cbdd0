//! Fixture servers written in Python (tests/fixtures/…) and driven over their stdin/stdout: the
//! script prints `port N` once it listens, then answers each command line (`set …`, `put …`)
//! with one line; `quit` (or the kill on drop) ends it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A running fixture server, stopped and reaped on drop.
pub struct Fixture {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub port: u16,
}

impl Fixture {
    /// `python3 tests/fixtures/SCRIPT ARGS`, once it says which port it listens on. `cmd`
    /// adjusts the command (environment, stderr) before it starts; `what` names it in a panic.
    pub fn start(
        script: &str,
        args: &[&std::ffi::OsStr],
        what: &str,
        cmd: impl FnOnce(&mut Command),
    ) -> Fixture {
        let mut c = Command::new("python3");
        c.arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(script),
        )
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        cmd(&mut c);
        let mut child = c.spawn().expect("python3");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not start: {line:?}");
        };
        Fixture {
            child,
            stdin,
            stdout,
            port,
        }
    }

    /// Send one command line; its one-line answer must start with `ok`.
    pub fn send(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        let mut out = String::new();
        self.stdout.read_line(&mut out).unwrap();
        assert!(out.starts_with("ok"), "{line}: {out}");
        out.trim().to_string()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
