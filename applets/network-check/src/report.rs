//! Reports: a human table, JSON, JUnit XML (stable test names: the check names) and TAP 13;
//! and the one-line summary that also becomes the termination message.

use std::fmt::Write as _;
use std::time::Duration;

use clap::ValueEnum;
use initbox_runtime::duration::human;
use serde_json::{Map, Value, json};

use crate::probe::Status;
use crate::run::CheckResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// A table: status, check, time, detail.
    #[default]
    Human,
    /// One JSON document: summary and one entry per check.
    Json,
    /// JUnit XML; each check is a test case named after the check.
    Junit,
    /// TAP version 13 with YAML diagnostics.
    Tap,
}

pub struct Counts {
    pub total: usize,
    pub passed: usize,
    pub warned: usize,
    pub failed: usize,
    pub errors: usize,
}

pub fn counts(results: &[CheckResult]) -> Counts {
    let n = |s: Status| results.iter().filter(|r| r.status == s).count();
    Counts {
        total: results.len(),
        passed: n(Status::Pass),
        warned: n(Status::Warn),
        failed: n(Status::Fail),
        errors: n(Status::Error),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

pub fn render(format: Format, results: &[CheckResult], suite: &str, wall: Duration) -> String {
    match format {
        Format::Human => human_table(results, wall),
        Format::Json => json_doc(results, wall).to_string() + "\n",
        Format::Junit => junit(results, suite, wall),
        Format::Tap => tap(results),
    }
}

fn human_table(results: &[CheckResult], wall: Duration) -> String {
    let rows: Vec<[String; 4]> = results
        .iter()
        .map(|r| {
            [
                r.status.as_str().to_string(),
                one_line(&r.check.name),
                human(r.duration),
                one_line(&r.reason),
            ]
        })
        .collect();
    let head = [
        "STATUS".to_string(),
        "CHECK".into(),
        "TIME".into(),
        "DETAIL".into(),
    ];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = String::new();
    for r in std::iter::once(&head).chain(rows.iter()) {
        let _ = writeln!(out, "{:<w0$}  {:<w1$}  {:>w2$}  {}", r[0], r[1], r[2], r[3]);
    }
    let _ = writeln!(out, "{}", summary(results, wall));
    out
}

pub fn json_doc(results: &[CheckResult], wall: Duration) -> Value {
    let c = counts(results);
    let entries: Vec<Value> = results
        .iter()
        .map(|r| {
            let timings: Map<String, Value> = r
                .observation
                .timings
                .iter()
                .map(|(k, d)| (format!("{k}_ms"), json!(ms(*d))))
                .collect();
            let mut e = json!({
                "name": r.check.name,
                "type": r.check.kind.type_name(),
                "target": r.check.target,
                "expect": r.check.expect,
                "observed": r.observation.observed,
                "status": r.status,
                "detail": r.reason,
                "attempts": r.attempts,
                "duration_ms": ms(r.duration),
                "timings": timings,
            });
            if let Some(ctl) = &r.check.control {
                e["control"] = json!(ctl);
            }
            if let Value::Object(m) = &mut e {
                for (k, v) in &r.observation.data {
                    m.insert(k.clone(), v.clone());
                }
            }
            e
        })
        .collect();
    json!({
        "summary": {
            "test_count": c.total,
            "passed_count": c.passed,
            "warning_count": c.warned,
            "failed_count": c.failed,
            "error_count": c.errors,
            "duration_ms": ms(wall),
            "ok": c.failed == 0 && c.errors == 0,
        },
        "results": entries,
    })
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// When the run started, as JUnit's schema writes it: `2026-12-01T10:47:28`, UTC, no zone
/// (the Ant/Jenkins `ISO8601_DATETIME_PATTERN`).
fn junit_timestamp(wall: Duration) -> String {
    let now = std::time::SystemTime::now()
        .checked_sub(wall)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let secs = now.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}",
        crate::net::date(now),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn junit(results: &[CheckResult], suite: &str, wall: Duration) -> String {
    let c = counts(results);
    let hostname = initbox_runtime::host::name().unwrap_or_else(|| "localhost".into());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{s}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
        c.total,
        c.failed,
        c.errors,
        wall.as_secs_f64(),
        s = xml(suite)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{s}\" id=\"0\" package=\"{s}\" timestamp=\"{}\" hostname=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{:.3}\">",
        junit_timestamp(wall),
        xml(&hostname),
        c.total,
        c.failed,
        c.errors,
        wall.as_secs_f64(),
        s = xml(suite)
    );
    for r in results {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}.{}\" time=\"{:.3}\"",
            xml(&r.check.name),
            xml(suite),
            r.check.kind.type_name(),
            r.duration.as_secs_f64()
        );
        let evidence = format!(
            "target: {}\nexpect: {}\nobserved: {}\nattempts: {}\ndetail: {}",
            r.check.target,
            serde_json::to_value(r.check.expect)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            r.observation.observed.as_str(),
            r.attempts,
            r.reason
        );
        match r.status {
            Status::Pass | Status::Warn => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    xml(&evidence)
                );
            }
            Status::Fail | Status::Error => {
                let tag = if r.status == Status::Fail {
                    "failure"
                } else {
                    "error"
                };
                let _ = writeln!(
                    out,
                    ">\n      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>\n      <system-out>{}</system-out>\n    </testcase>",
                    xml(&one_line(&r.reason)),
                    r.observation.observed.as_str(),
                    xml(&r.reason),
                    xml(&evidence)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(&one_line(s)).unwrap_or_default()
}

/// A TAP test description: `\` and `#` escaped (TAP 13/14: an unescaped `#` starts a directive,
/// so `# TODO` would turn a failure into a TODO) and line breaks replaced, so one result stays one
/// line for every consumer.
fn tap_description(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '#' => out.push_str("\\#"),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn tap(results: &[CheckResult]) -> String {
    let mut out = format!("TAP version 13\n1..{}\n", results.len());
    for (i, r) in results.iter().enumerate() {
        let ok = if r.status.passed() { "ok" } else { "not ok" };
        let name = tap_description(&r.check.name);
        let _ = writeln!(out, "{ok} {} - {name}", i + 1);
        let _ = writeln!(out, "  ---");
        let _ = writeln!(out, "  type: {}", r.check.kind.type_name());
        let _ = writeln!(out, "  target: {}", yaml_str(&r.check.target));
        let _ = writeln!(out, "  status: {}", r.status.as_str().to_lowercase());
        let _ = writeln!(out, "  observed: {}", r.observation.observed.as_str());
        let _ = writeln!(out, "  duration_ms: {}", ms(r.duration));
        let _ = writeln!(out, "  message: {}", yaml_str(&r.reason));
        let _ = writeln!(out, "  ...");
    }
    out
}

/// `6 checks: 4 ok, 1 warning, 1 failed in 1.20s`.
pub fn summary(results: &[CheckResult], wall: Duration) -> String {
    let c = counts(results);
    let mut parts = vec![format!("{} ok", c.passed)];
    if c.warned > 0 {
        parts.push(format!(
            "{} warning{}",
            c.warned,
            if c.warned == 1 { "" } else { "s" }
        ));
    }
    if c.failed > 0 {
        parts.push(format!("{} failed", c.failed));
    }
    if c.errors > 0 {
        parts.push(format!("{} not performed", c.errors));
    }
    format!(
        "{} check{}: {} in {}",
        c.total,
        if c.total == 1 { "" } else { "s" },
        parts.join(", "),
        human(wall)
    )
}

/// The failure line (also the termination message): which checks failed and why, at most
/// `limit` bytes (Kubernetes keeps 4 KiB per container; 1 KiB stays readable).
pub fn failure_line(results: &[CheckResult], wall: Duration, limit: usize) -> String {
    let bad: Vec<String> = results
        .iter()
        .filter(|r| !r.status.passed())
        .map(|r| format!("{}: {}", one_line(&r.check.name), one_line(&r.reason)))
        .collect();
    let mut line = format!("{}; {}", summary(results, wall), bad.join("; "));
    if line.len() > limit {
        let mut cut = limit.saturating_sub(3);
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    line
}
