//! When a scheduled job runs: cron expressions, daily `HH:MM` times and fixed intervals, in a
//! time zone.
//!
//! - **Cron**: 5 fields (`min hour dom month dow`) or 6 with seconds first (`sec min hour dom
//!   month dow`), names (`MON`, `JAN`), ranges, lists, steps, `L`, `W`, `#`, `?`, and the macros
//!   `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`. When both
//!   day-of-month and day-of-week are restricted, a day matching either runs (Vixie cron,
//!   croniter); only a bare `*` leaves a field unrestricted (croniter's reading: Vixie cron
//!   also counts `*/N` as unrestricted). `@every` is the caller's (see [`Schedule::every`]).
//! - **Daily** (`--at 03:30`, the `RUNAT` loop's time): the cron job `0 30 3 * * *`.
//! - **Every** (`@every 10m`): at a fixed period from an anchor (the sidecar's start), never
//!   drifting by the time the jobs take.
//!
//! # Daylight-saving time
//! Times are wall-clock times in the schedule's zone. Where the clock jumps:
//! - **Gap** (spring forward, 02:00 → 03:00): a job fixed at a time inside the gap (`30 2 * * *`)
//!   runs once, at the first instant after the gap (03:00), on that day; jobs with `*` or a step
//!   in their seconds, minutes or hours field skip the times the day does not have.
//! - **Fold** (fall back, 02:00 → 01:00): a fixed-time job (`30 1 * * *`) runs once, at the
//!   first 01:30; jobs with `*` or a step in their seconds, minutes or hours field run in both
//!   passes of the repeated hour (`*/15 * * * *` runs every 15 real minutes).
//! - `@every` periods are real (elapsed) time: a clock change moves no run.
//!
//! These are the rules of Vixie cron and of the Open Cron Pattern Specification, as implemented
//! by the `croner` crate; searches move on the real time line, so a next time is never earlier
//! than the time it follows.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use croner::parser::{CronParser, Seconds, Year};
pub use jiff::tz::TimeZone;
pub use jiff::{Timestamp, Zoned};

/// A schedule that could not be read, or a time zone that is not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The time zone called `name` (`UTC`, `Europe/Berlin`, a POSIX `TZ` string such as
/// `EST5EDT,M3.2.0,M11.1.0`), or the system's (`TZ`, then /etc/localtime, else UTC) for `None`.
///
/// Names are looked up in /usr/share/zoneinfo, else in the copy of the tz database built into
/// initbox, so `TZ=Europe/Berlin` works in a scratch image.
pub fn zone(name: Option<&str>) -> Result<TimeZone, Error> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC));
    };
    // `TZ=:Europe/Berlin` is POSIX for "a file name".
    let name = name.strip_prefix(':').unwrap_or(name);
    if let Ok(tz) = TimeZone::get(name) {
        return Ok(tz);
    }
    if name.bytes().any(|b| b.is_ascii_digit())
        && let Ok(tz) = TimeZone::posix(name)
    {
        return Ok(tz);
    }
    Err(Error(format!(
        "unknown time zone '{name}' (expected a tz database name such as UTC or Europe/Berlin)"
    )))
}

/// The name a time zone is shown with (`Europe/Berlin`, `UTC`, or its POSIX string).
pub fn zone_name(tz: &TimeZone) -> String {
    tz.iana_name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{tz:?}"))
}

#[derive(Debug, Clone)]
enum Kind {
    Cron(Box<croner::Cron>),
    Every(Duration),
}

/// When a job runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    tz: TimeZone,
    text: String,
}

impl Schedule {
    /// A cron expression (5 or 6 fields, or a macro) in time zone `tz`.
    pub fn cron(expr: &str, tz: TimeZone) -> Result<Schedule, Error> {
        let text = expr.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return Err(Error("empty cron expression".into()));
        }
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("@reboot") {
            return Err(Error(
                "'@reboot' is not a schedule: use run-on-start for a job that runs at start".into(),
            ));
        }
        if lower.starts_with("@every") {
            return Err(Error(format!(
                "'{text}': @every takes a duration (the caller parses it)"
            )));
        }
        if text.starts_with('@')
            && !matches!(
                lower.as_str(),
                "@yearly"
                    | "@annually"
                    | "@monthly"
                    | "@weekly"
                    | "@daily"
                    | "@midnight"
                    | "@hourly"
            )
        {
            return Err(Error(format!(
                "'{text}' is not a cron macro (expected @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight, @hourly or @every DURATION)"
            )));
        }
        let fields = text.split(' ').count();
        if !text.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(Error(format!(
                "cron expression '{text}' has {fields} fields (expected 5: minute hour \
                 day-of-month month day-of-week, or 6 with seconds first)"
            )));
        }
        // Day-of-month and day-of-week: a day matching either runs when both are restricted;
        // only a bare `*` (or `?`) leaves a field unrestricted, as croner and croniter read it.
        // (Vixie cron also counts `*/N` as unrestricted, and then needs both fields to match.)
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(&text)
            .map_err(|e| Error(format!("cron expression '{text}': {e}")))?;
        // A day that never comes (`0 0 31 2 *`) is refused, as croniter refuses it.
        if cron
            .find_next_occurrence(&Timestamp::UNIX_EPOCH.to_zoned(TimeZone::UTC), false)
            .is_err()
        {
            return Err(Error(format!(
                "cron expression '{text}' never matches (no such day)"
            )));
        }
        Ok(Schedule {
            kind: Kind::Cron(Box::new(cron)),
            tz,
            text,
        })
    }

    /// Every day at `time` (`HH:MM` or `HH:MM:SS`, 24-hour clock) in time zone `tz`.
    pub fn daily_at(time: &str, tz: TimeZone) -> Result<Schedule, Error> {
        let t = time.trim();
        let bad = || {
            Error(format!(
                "'{t}' is not a time of day (expected HH:MM or HH:MM:SS, 24-hour clock)"
            ))
        };
        let parts: Vec<&str> = t.split(':').collect();
        if !(2..=3).contains(&parts.len())
            || parts
                .iter()
                .any(|p| p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad());
        }
        let n: Vec<u32> = parts.iter().map(|p| p.parse().unwrap_or(99)).collect();
        let (h, m, s) = (n[0], n[1], n.get(2).copied().unwrap_or(0));
        if h > 23 || m > 59 || s > 59 || parts[1].len() != 2 {
            return Err(bad());
        }
        let mut sched = Schedule::cron(&format!("{s} {m} {h} * * *"), tz)?;
        sched.text = if parts.len() == 3 {
            format!("at {h:02}:{m:02}:{s:02}")
        } else {
            format!("at {h:02}:{m:02}")
        };
        Ok(sched)
    }

    /// Every `period` of real time, counted from an anchor (see [`Schedule::next_after`]).
    pub fn every(period: Duration, tz: TimeZone) -> Result<Schedule, Error> {
        if period < Duration::from_secs(1) {
            return Err(Error(format!(
                "@every needs a period of at least 1s, not {period:?}"
            )));
        }
        Ok(Schedule {
            kind: Kind::Every(period),
            tz,
            text: format!("@every {}", show_period(period)),
        })
    }

    /// The schedule as written (normalized spacing), for logs.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// The period of an `@every` schedule.
    pub fn period(&self) -> Option<Duration> {
        match self.kind {
            Kind::Every(p) => Some(p),
            Kind::Cron(_) => None,
        }
    }

    /// The first run strictly after `after`. `anchor` is when an `@every` schedule started
    /// counting (its runs are at `anchor + k × period`, k ≥ 1); cron schedules ignore it.
    /// `None` when no such time exists before year 5000.
    pub fn next_after(&self, after: Timestamp, anchor: Timestamp) -> Option<Zoned> {
        match &self.kind {
            Kind::Cron(cron) => cron
                .find_next_occurrence(&after.to_zoned(self.tz.clone()), false)
                .ok(),
            Kind::Every(period) => {
                let p = i128::try_from(period.as_nanos()).ok()?;
                let since = after.as_nanosecond() - anchor.as_nanosecond();
                let k = if since < 0 { 1 } else { since / p + 1 };
                let at = anchor.as_nanosecond().checked_add(k.checked_mul(p)?)?;
                Some(
                    Timestamp::from_nanosecond(at)
                        .ok()?
                        .to_zoned(self.tz.clone()),
                )
            }
        }
    }

    /// The last run at or before `at` (cron schedules; `@every` runs are `last + period`,
    /// which the caller knows). For catch-up after downtime.
    pub fn last_at_or_before(&self, at: Timestamp) -> Option<Zoned> {
        match &self.kind {
            Kind::Cron(cron) => cron
                .find_previous_occurrence(&at.to_zoned(self.tz.clone()), true)
                .ok(),
            Kind::Every(_) => None,
        }
    }

    /// The next `n` runs after `after` (see [`Schedule::next_after`]).
    pub fn upcoming(&self, after: Timestamp, anchor: Timestamp, n: usize) -> Vec<Zoned> {
        let mut out = Vec::with_capacity(n);
        let mut t = after;
        while out.len() < n {
            let Some(next) = self.next_after(t, anchor) else {
                break;
            };
            t = next.timestamp();
            out.push(next);
        }
        out
    }
}

/// `90s` → `1m30s`, `1h` → `1h`, `1500ms` → `1.5s`.
fn show_period(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        return format!("{}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// An instant given on the command line: RFC 3339 (`2026-03-08T01:59:00-05:00`, `…Z`), or a
/// civil time with a zone annotation (`2026-03-08T01:59:00[America/New_York]`).
pub fn parse_instant(s: &str) -> Result<Timestamp, Error> {
    let s = s.trim();
    if let Ok(t) = Timestamp::from_str(s) {
        return Ok(t);
    }
    Zoned::from_str(s).map(|z| z.timestamp()).map_err(|_| {
        Error(format!(
            "'{s}' is not an instant (expected RFC 3339, e.g. 2026-03-08T01:59:00-05:00 or \
             2026-03-08T06:59:00Z)"
        ))
    })
}

/// A time as logs and `schedule next` show it: `2026-03-08T03:00:00-04:00 (EDT)`.
pub fn show(z: &Zoned) -> String {
    format!(
        "{} ({})",
        z.strftime("%Y-%m-%dT%H:%M:%S%:z"),
        z.strftime("%Z")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        zone(Some(name)).unwrap()
    }

    fn at(s: &str) -> Timestamp {
        parse_instant(s).unwrap()
    }

    fn next_n(s: &Schedule, from: &str, n: usize) -> Vec<String> {
        let from = at(from);
        s.upcoming(from, from, n)
            .iter()
            .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
            .collect()
    }

    #[test]
    fn spring_forward_runs_a_fixed_job_once_after_the_gap() {
        // New York, 2026-03-08: 02:00 EST becomes 03:00 EDT.
        let s = Schedule::daily_at("02:30", tz("America/New_York")).unwrap();
        assert_eq!(
            next_n(&s, "2026-03-07T12:00:00-05:00", 3),
            [
                "2026-03-08T03:00:00-04:00",
                "2026-03-09T02:30:00-04:00",
                "2026-03-10T02:30:00-04:00"
            ]
        );
        // Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST.
        let s = Schedule::cron("30 2 * * *", tz("Europe/Berlin")).unwrap();
        assert_eq!(
            next_n(&s, "2026-03-28T12:00:00+01:00", 2),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
        );
    }

    #[test]
    fn spring_forward_skips_interval_times_the_day_lacks() {
        let s = Schedule::cron("*/30 * * * *", tz("Europe/Berlin")).unwrap();
        assert_eq!(
            next_n(&s, "2026-03-29T01:00:00+01:00", 3),
            [
                "2026-03-29T01:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:30:00+02:00"
            ]
        );
    }

    #[test]
    fn fall_back_runs_a_fixed_job_once_and_intervals_in_both_passes() {
        // New York, 2026-11-01: 02:00 EDT becomes 01:00 EST.
        let s = Schedule::cron("30 1 * * *", tz("America/New_York")).unwrap();
        assert_eq!(
            next_n(&s, "2026-10-31T12:00:00-04:00", 2),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
        let s = Schedule::cron("*/30 1 * * *", tz("America/New_York")).unwrap();
        assert_eq!(
            next_n(&s, "2026-11-01T00:45:00-04:00", 5),
            [
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T01:30:00-05:00",
                "2026-11-02T01:00:00-05:00"
            ]
        );
        // Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET.
        let s = Schedule::daily_at("02:30", tz("Europe/Berlin")).unwrap();
        assert_eq!(
            next_n(&s, "2026-10-24T12:00:00+02:00", 2),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
        );
    }

    #[test]
    fn month_ends_and_leap_days() {
        let s = Schedule::cron("0 0 31 * *", TimeZone::UTC).unwrap();
        assert_eq!(
            next_n(&s, "2026-01-31T00:00:00Z", 3),
            [
                "2026-03-31T00:00:00+00:00",
                "2026-05-31T00:00:00+00:00",
                "2026-07-31T00:00:00+00:00"
            ]
        );
        let s = Schedule::cron("0 12 L * *", TimeZone::UTC).unwrap();
        assert_eq!(
            next_n(&s, "2028-01-31T13:00:00Z", 2),
            ["2028-02-29T12:00:00+00:00", "2028-03-31T12:00:00+00:00"]
        );
        let s = Schedule::cron("0 0 29 2 *", TimeZone::UTC).unwrap();
        assert_eq!(
            next_n(&s, "2026-01-01T00:00:00Z", 2),
            ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_as_vixie_cron() {
        // The 13th, or any Friday.
        let s = Schedule::cron("0 0 13 * FRI", TimeZone::UTC).unwrap();
        assert_eq!(
            next_n(&s, "2026-02-01T00:00:00Z", 3),
            [
                "2026-02-06T00:00:00+00:00",
                "2026-02-13T00:00:00+00:00",
                "2026-02-20T00:00:00+00:00"
            ]
        );
    }

    #[test]
    fn every_does_not_drift() {
        let s = Schedule::every(Duration::from_secs(600), TimeZone::UTC).unwrap();
        let anchor = at("2026-01-01T00:00:07Z");
        // However late the previous run ended, the next stays on the grid.
        let late = at("2026-01-01T00:10:09.5Z");
        assert_eq!(
            s.next_after(late, anchor).unwrap().timestamp(),
            at("2026-01-01T00:20:07Z")
        );
        let mut t = anchor;
        for _ in 0..10_000 {
            t = s.next_after(t, anchor).unwrap().timestamp();
        }
        // 10 000 × 600 s = 69 days 10 h 40 min, to the second.
        assert_eq!(t, at("2026-03-11T10:40:07Z"));
        // Real time across a DST change: still 600 s apart.
        let s = Schedule::every(Duration::from_secs(3600), tz("Europe/Berlin")).unwrap();
        let a = at("2026-03-29T00:30:00+01:00");
        let v = s.upcoming(a, a, 3);
        assert_eq!(
            v[1].timestamp().as_second() - v[0].timestamp().as_second(),
            3600
        );
        assert_eq!(v[1].strftime("%H:%M").to_string(), "03:30");
    }

    #[test]
    fn six_fields_have_seconds_first_and_macros_work() {
        let s = Schedule::cron("*/20 * * * * *", TimeZone::UTC).unwrap();
        assert_eq!(
            next_n(&s, "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-01T00:00:20+00:00",
                "2026-01-01T00:00:40+00:00",
                "2026-01-01T00:01:00+00:00"
            ]
        );
        let s = Schedule::cron("@weekly", TimeZone::UTC).unwrap();
        assert_eq!(
            next_n(&s, "2026-01-01T00:00:00Z", 1),
            ["2026-01-04T00:00:00+00:00"]
        );
        let s = Schedule::cron("@HOURLY", TimeZone::UTC).unwrap();
        assert_eq!(
            next_n(&s, "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T01:00:00+00:00"]
        );
    }

    #[test]
    fn bad_input_is_named() {
        for (expr, want) in [
            ("* * * *", "has 4 fields"),
            ("* * * * * * *", "has 7 fields"),
            ("61 * * * *", "cron expression '61 * * * *'"),
            ("@reboot", "run-on-start"),
            ("@fortnightly", "not a cron macro"),
            ("", "empty"),
            ("0 0 31 2 *", "never matches"),
        ] {
            let e = Schedule::cron(expr, TimeZone::UTC).unwrap_err();
            assert!(e.0.contains(want), "{expr}: {e}");
        }
        for t in ["24:00", "3:5", "03:60", "03", "a:b", "03:30:61", "-1:00"] {
            assert!(Schedule::daily_at(t, TimeZone::UTC).is_err(), "{t}");
        }
        assert!(Schedule::daily_at("3:05", TimeZone::UTC).is_ok());
        assert!(zone(Some("Mars/Olympus")).is_err());
        assert!(zone(Some("EST5EDT,M3.2.0,M11.1.0")).is_ok());
    }

    #[test]
    fn catch_up_finds_the_last_missed_run() {
        let s = Schedule::daily_at("03:30", TimeZone::UTC).unwrap();
        let last = s.last_at_or_before(at("2026-05-02T10:00:00Z")).unwrap();
        assert_eq!(last.timestamp(), at("2026-05-02T03:30:00Z"));
    }
}
