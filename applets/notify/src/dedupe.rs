//! `--dedupe-file PATH --cooldown 10m`: one message per incident across container restarts.
//!
//! The file (on an emptyDir, which survives init-container restarts in the same pod) records,
//! per dedupe key, the last event sent and when. The same event for the same key within the
//! cooldown is suppressed; a success after a sent failure is always sent, as the resolve message
//! (PagerDuty gets `event_action: resolve` with the same dedup key).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use initbox_runtime::Failure;
use initbox_runtime::atomic::{self, WriteOptions};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    event: String,
    sent_at: u64,
    #[serde(default)]
    suppressed: u64,
    /// A failure was sent and not resolved yet.
    #[serde(default)]
    alerting: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Send { resolves: bool },
    Skip { sent_at: u64, suppressed: u64 },
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl State {
    /// Load the state; a missing file is an empty state, an unreadable one is logged and
    /// replaced (a broken state file must not stop notifications).
    pub fn load(path: &Path) -> State {
        let read = std::fs::File::open(path).and_then(|f| {
            initbox_runtime::input::read_from(f, "dedupe state")
                .map_err(|f| std::io::Error::other(f.message))
        });
        match read {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), "dedupe state unreadable ({e}); starting afresh");
                State::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => {
                tracing::warn!(file = %path.display(), "dedupe state unreadable ({e}); starting afresh");
                State::default()
            }
        }
    }

    pub fn decide(&self, key: &str, event: &str, now: u64, cooldown: Duration) -> Decision {
        let Some(e) = self.entries.get(key) else {
            return Decision::Send { resolves: false };
        };
        if event == "success" && e.alerting {
            return Decision::Send { resolves: true };
        }
        let within = now.saturating_sub(e.sent_at) < cooldown.as_secs();
        if e.event == event && within {
            return Decision::Skip {
                sent_at: e.sent_at,
                suppressed: e.suppressed + 1,
            };
        }
        Decision::Send { resolves: false }
    }

    pub fn record_sent(&mut self, key: &str, event: &str, now: u64) {
        self.entries.insert(
            key.to_string(),
            Entry {
                event: event.to_string(),
                sent_at: now,
                suppressed: 0,
                alerting: event == "failure",
            },
        );
    }

    pub fn record_skipped(&mut self, key: &str) {
        if let Some(e) = self.entries.get_mut(key) {
            e.suppressed += 1;
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), Failure> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Failure::failed(format!("dedupe state: {e}")))?;
        atomic::write(
            path,
            &bytes,
            &WriteOptions {
                mode: 0o600,
                owner: None,
                create_dirs: true,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_MIN: Duration = Duration::from_secs(600);

    #[test]
    fn crash_loop_sends_once_then_resolves() {
        let mut s = State::default();
        assert_eq!(
            s.decide("k", "failure", 100, TEN_MIN),
            Decision::Send { resolves: false }
        );
        s.record_sent("k", "failure", 100);
        assert!(matches!(
            s.decide("k", "failure", 200, TEN_MIN),
            Decision::Skip { .. }
        ));
        s.record_skipped("k");
        assert_eq!(
            s.decide("k", "success", 300, TEN_MIN),
            Decision::Send { resolves: true }
        );
        s.record_sent("k", "success", 300);
        assert!(matches!(
            s.decide("k", "success", 310, TEN_MIN),
            Decision::Skip { .. }
        ));
        // After the cooldown, a repeated failure is sent again as a reminder.
        s.record_sent("k", "failure", 400);
        assert_eq!(
            s.decide("k", "failure", 1001, TEN_MIN),
            Decision::Send { resolves: false }
        );
        // Keys are independent.
        assert_eq!(
            s.decide("other", "failure", 401, TEN_MIN),
            Decision::Send { resolves: false }
        );
    }

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = std::env::temp_dir().join(format!("notify-dedupe-{}", std::process::id()));
        let path = dir.join("state.json");
        let mut s = State::load(&path);
        s.record_sent("k", "failure", 5);
        s.save(&path).unwrap();
        let back = State::load(&path);
        assert!(matches!(
            back.decide("k", "failure", 6, TEN_MIN),
            Decision::Skip { .. }
        ));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
