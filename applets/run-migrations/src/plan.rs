//! Comparing the local migrations with `_sqlx_migrations`: what is applied, pending, changed,
//! failed or unknown, and whether it is safe to go on.

use std::collections::BTreeMap;

use initbox_runtime::Failure;

use crate::db::{Applied, TABLE};
use crate::source::{Local, Source};

/// What to tolerate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Refuse versions applied in the database but missing locally.
    pub strict: bool,
    /// Apply pending versions lower than the highest applied one.
    pub allow_out_of_order: bool,
}

/// The state of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the local file's checksum differs.
    Changed {
        applied: Vec<u8>,
    },
    /// Recorded with `success = FALSE`: failed part-way (or is running right now).
    Failed,
    /// Applied in the database, no local file (a newer release applied it, or it was removed).
    Unknown,
}

impl State {
    pub fn label(&self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Changed { .. } => "changed",
            State::Failed => "failed",
            State::Unknown => "missing locally",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub version: i64,
    pub description: String,
    pub local: Option<&'a Local>,
    pub state: State,
}

/// Every version, local or applied, in order.
pub fn compare<'a>(source: &'a Source, applied: &[Applied]) -> Vec<Row<'a>> {
    let mut rows: BTreeMap<i64, Row<'a>> = BTreeMap::new();
    for m in &source.migrations {
        rows.insert(
            m.version(),
            Row {
                version: m.version(),
                description: m.migration.description.to_string(),
                local: Some(m),
                state: State::Pending,
            },
        );
    }
    for a in applied {
        let state = if !a.success {
            State::Failed
        } else {
            match source.get(a.version) {
                None => State::Unknown,
                Some(l) if *l.migration.checksum == *a.checksum => State::Applied,
                Some(_) => State::Changed {
                    applied: a.checksum.clone(),
                },
            }
        };
        let row = rows.entry(a.version).or_insert_with(|| Row {
            version: a.version,
            description: a.description.clone(),
            local: None,
            state: State::Unknown,
        });
        row.state = state;
    }
    rows.into_values().collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn short(b: &[u8]) -> String {
    let h = hex(b);
    h.get(..12).unwrap_or(&h).to_string()
}

fn name(row: &Row<'_>) -> String {
    match row.local {
        Some(l) => format!("migration {} ({})", row.version, l.file),
        None => format!("migration {} ({})", row.version, row.description),
    }
}

/// Check everything that must hold before migrating; returns the pending migrations in order.
/// `locked`: whether we hold the migration lock (a `failed` row seen without it may be a
/// no-transaction migration another process is running right now).
pub fn validate<'a>(
    rows: &[Row<'a>],
    policy: Policy,
    locked: bool,
) -> Result<Vec<&'a Local>, Failure> {
    if locked && let Some(r) = rows.iter().find(|r| r.state == State::Failed) {
        return Err(Failure::failed(format!(
            "{} failed part-way on an earlier run and is marked failed in {TABLE}: \
                 fix the database by hand, then run `initbox run-migrations repair` \
                 (the migration runs again) or `repair --mark-applied` (you completed it)",
            name(r)
        )));
    }
    for r in rows {
        if let (State::Changed { applied }, Some(l)) = (&r.state, r.local) {
            return Err(Failure::invalid_input(format!(
                "{} was changed after it was applied: checksum {}… on disk, {}… in {TABLE}; \
                 restore the file (line endings count), or after review run \
                 `initbox run-migrations repair --checksums`",
                name(r),
                short(&l.migration.checksum),
                short(applied)
            )));
        }
    }
    let unknown: Vec<i64> = rows
        .iter()
        .filter(|r| r.state == State::Unknown)
        .map(|r| r.version)
        .collect();
    if !unknown.is_empty() {
        let list = unknown
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        if policy.strict {
            return Err(Failure::invalid_input(format!(
                "the database has applied migrations with no local file: {list} (--refuse-missing)"
            )));
        }
        tracing::warn!(
            versions = %list,
            "the database has applied migrations with no local file (a newer release, or a removed file); continuing"
        );
    }
    let max_applied = rows
        .iter()
        .filter(|r| matches!(r.state, State::Applied | State::Unknown))
        .map(|r| r.version)
        .max();
    let pending: Vec<&Local> = rows
        .iter()
        .filter(|r| r.state == State::Pending)
        .filter_map(|r| r.local)
        .collect();
    if let (Some(max), false) = (max_applied, policy.allow_out_of_order) {
        let late: Vec<&&Local> = pending.iter().filter(|l| l.version() < max).collect();
        if let Some(first) = late.first() {
            return Err(Failure::invalid_input(format!(
                "migration {} ({}) is older than the newest applied migration {max} but was never \
                 applied (out of order){}; renumber it, or pass --allow-out-of-order",
                first.version(),
                first.file,
                if late.len() > 1 {
                    format!(", and {} more", late.len() - 1)
                } else {
                    String::new()
                }
            )));
        }
    }
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Format, load};

    fn source() -> (tempfile::TempDir, Source) {
        let d = tempfile::tempdir().unwrap();
        for (n, t) in [
            ("1_a.sql", "SELECT 1;"),
            ("2_b.sql", "SELECT 2;"),
            ("3_c.sql", "SELECT 3;"),
        ] {
            std::fs::write(d.path().join(n), t).unwrap();
        }
        let s = load(d.path(), Format::Sqlx).unwrap();
        (d, s)
    }

    fn applied(s: &Source, v: i64, ok: bool) -> Applied {
        let l = s.get(v).unwrap();
        Applied {
            version: v,
            description: l.migration.description.to_string(),
            success: ok,
            checksum: l.migration.checksum.to_vec(),
        }
    }

    #[test]
    fn pending_in_order() {
        let (_d, s) = source();
        let rows = compare(&s, &[applied(&s, 1, true)]);
        let p = validate(&rows, Policy::default(), true).unwrap();
        assert_eq!(p.iter().map(|l| l.version()).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn changed_checksum_is_invalid_input() {
        let (_d, s) = source();
        let mut a = applied(&s, 1, true);
        a.checksum[0] ^= 1;
        let e = validate(&compare(&s, &[a]), Policy::default(), false).unwrap_err();
        assert_eq!(e.code, initbox_runtime::Code::INVALID_INPUT);
        assert!(e.message.contains("1_a.sql"), "{}", e.message);
    }

    #[test]
    fn unknown_applied_tolerated_unless_strict() {
        let (_d, s) = source();
        let extra = Applied {
            version: 9,
            description: "future".into(),
            success: true,
            checksum: vec![1, 2, 3],
        };
        let all = [
            applied(&s, 1, true),
            applied(&s, 2, true),
            applied(&s, 3, true),
            extra,
        ];
        let rows = compare(&s, &all);
        assert!(validate(&rows, Policy::default(), true).unwrap().is_empty());
        let strict = Policy {
            strict: true,
            ..Policy::default()
        };
        assert!(validate(&rows, strict, true).is_err());
    }

    #[test]
    fn out_of_order_refused_by_default() {
        let (_d, s) = source();
        let rows = compare(&s, &[applied(&s, 1, true), applied(&s, 3, true)]);
        let e = validate(&rows, Policy::default(), true).unwrap_err();
        assert!(e.message.contains("out of order") && e.message.contains("2_b.sql"));
        let allow = Policy {
            allow_out_of_order: true,
            ..Policy::default()
        };
        assert_eq!(validate(&rows, allow, true).unwrap().len(), 1);
    }

    #[test]
    fn failed_rows_refused_only_under_the_lock() {
        let (_d, s) = source();
        let rows = compare(&s, &[applied(&s, 1, false)]);
        assert!(validate(&rows, Policy::default(), false).is_ok());
        let e = validate(&rows, Policy::default(), true).unwrap_err();
        assert!(e.message.contains("repair"), "{}", e.message);
    }
}
