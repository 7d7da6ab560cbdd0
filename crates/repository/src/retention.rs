//! Which versions to keep: restic's `forget` rules. Versions are taken newest first; for each
//! `--keep-*` option with a count N, a version is kept when its period (hour, day, ISO week,
//! month, year; for `last`, the version itself) differs from the last one that option kept,
//! until N are kept. A version any option keeps is kept. Times are UTC.
//! Without any option nothing is removed.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }
}

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// ISO 8601 (year, week) of a day.
fn iso_week(days: i64) -> (i64, i64) {
    let weekday = (days + 3).rem_euclid(7); // Monday = 0
    let thursday = days - weekday + 3;
    let (y, _, _) = civil(thursday);
    (y, (thursday - days_from_civil(y, 1, 1)) / 7 + 1)
}

/// The period keys of a time: hour, day, week, month, year.
fn periods(t: SystemTime) -> [i64; 5] {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil(days);
    let (wy, w) = iso_week(days);
    [
        secs.div_euclid(3600),
        y * 10_000 + i64::from(m) * 100 + i64::from(d),
        wy * 100 + w,
        y * 100 + i64::from(m),
        y,
    ]
}

/// For versions (id, time) given newest first: whether each is kept, and why.
pub fn apply(versions: &[(String, SystemTime)], p: &Policy) -> Vec<(String, Option<String>)> {
    let rules: [(&str, u32, Option<usize>); 6] = [
        ("last", p.last, None),
        ("hourly", p.hourly, Some(0)),
        ("daily", p.daily, Some(1)),
        ("weekly", p.weekly, Some(2)),
        ("monthly", p.monthly, Some(3)),
        ("yearly", p.yearly, Some(4)),
    ];
    let mut left: Vec<u32> = rules.iter().map(|r| r.1).collect();
    let mut last: Vec<Option<i64>> = vec![None; rules.len()];
    versions
        .iter()
        .enumerate()
        .map(|(i, (id, t))| {
            let keys = periods(*t);
            let mut why = Vec::new();
            for (r, (name, _, period)) in rules.iter().enumerate() {
                if left[r] == 0 {
                    continue;
                }
                let key = period.map(|k| keys[k]).unwrap_or(i as i64);
                if last[r] != Some(key) {
                    last[r] = Some(key);
                    left[r] -= 1;
                    why.push(*name);
                }
            }
            (id.clone(), (!why.is_empty()).then(|| why.join(",")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn calendar() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(civil(19_782), (2024, 2, 29));
        // 2021-01-03 is in ISO week 53 of 2020; 2021-01-04 starts week 1.
        assert_eq!(iso_week(days_from_civil(2021, 1, 3)), (2020, 53));
        assert_eq!(iso_week(days_from_civil(2021, 1, 4)), (2021, 1));
    }

    #[test]
    fn restic_rules() {
        // Two a day for four days, newest first.
        let v: Vec<(String, SystemTime)> = [
            "2026-12-04T18:00:00Z",
            "2026-12-04T06:00:00Z",
            "2026-12-03T18:00:00Z",
            "2026-12-03T06:00:00Z",
            "2026-12-02T18:00:00Z",
            "2026-12-02T06:00:00Z",
            "2026-12-01T18:00:00Z",
            "2026-12-01T06:00:00Z",
        ]
        .iter()
        .map(|s| (s.to_string(), t(s)))
        .collect();
        let kept = |p: Policy| -> Vec<String> {
            apply(&v, &p)
                .into_iter()
                .filter(|(_, k)| k.is_some())
                .map(|(id, _)| id)
                .collect()
        };
        assert_eq!(
            kept(Policy {
                last: 1,
                daily: 3,
                ..Policy::default()
            }),
            [
                "2026-12-04T18:00:00Z",
                "2026-12-03T18:00:00Z",
                "2026-12-02T18:00:00Z"
            ]
        );
        assert_eq!(
            kept(Policy {
                last: 3,
                ..Policy::default()
            })
            .len(),
            3
        );
        // 2026-12-01 is a Tuesday: one ISO week.
        assert_eq!(
            kept(Policy {
                weekly: 2,
                ..Policy::default()
            }),
            ["2026-12-04T18:00:00Z"]
        );
    }
}
