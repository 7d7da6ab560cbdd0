//! The cron parser against Python's croniter (the reference users' Python schedulers rely on):
//! thousands of random expressions (5 and 6 fields, lists, ranges, steps, names), each one's
//! next five times from a random start, in UTC. An expression croniter refuses must be refused.
//! croniter is installed by tests/setup/20-schedule.sh; a missing croniter fails the test.

use std::process::Command;

use initbox_cron::{Schedule, TimeZone, Timestamp};

const COUNT: usize = 3000;

#[test]
fn next_times_match_croniter() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/croniter_cases.py");
    let out = Command::new("python3")
        .args([script, "20261201", &COUNT.to_string()])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "croniter_cases.py failed (is croniter installed? tests/setup/20-schedule.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut checked = 0;
    let mut refused = 0;
    let mut mismatches = Vec::new();
    for line in text.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let expr = case["expr"].as_str().unwrap();
        let start: Timestamp = case["start"].as_str().unwrap().parse().unwrap();
        let ours = Schedule::cron(expr, TimeZone::UTC);
        match (&case["next"], ours) {
            (serde_json::Value::Array(want), Ok(s)) => {
                let got: Vec<Timestamp> = s
                    .upcoming(start, start, want.len())
                    .iter()
                    .map(|z| z.timestamp())
                    .collect();
                let want: Vec<Timestamp> = want
                    .iter()
                    .map(|w| w.as_str().unwrap().parse().unwrap())
                    .collect();
                if got != want {
                    mismatches.push(format!(
                        "{expr} from {start}: croniter {want:?}, ours {got:?}"
                    ));
                }
                checked += 1;
            }
            (serde_json::Value::Array(_), Err(e)) => {
                mismatches.push(format!("{expr}: croniter accepts it, we refuse: {e}"))
            }
            (_, Ok(_)) => mismatches.push(format!(
                "{expr}: croniter refuses it ({}), we accept it",
                case["error"]
            )),
            (_, Err(_)) => refused += 1,
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {COUNT} differ, e.g.:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(15)].join("\n")
    );
    assert!(
        checked > COUNT * 9 / 10,
        "only {checked} compared ({refused} refused by both)"
    );
}
