//! Durations on the command line: `250ms`, `30s`, `2m`, `1h30m`; a bare number means seconds
//! (so `WAIT_TIMEOUT=30` and `--timeout 30` mean what their users expect).

use std::time::Duration;

/// Parse a duration for a clap `value_parser`.
pub fn parse(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration (expected e.g. 250ms, 30s, 2m)".into());
    }
    if s.starts_with('-') {
        return Err(format!("'{s}': negative durations are not allowed"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("duration '{s}' is too large"));
    }
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && (0.0..1e12).contains(&secs) {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!(
            "'{s}' is not a duration (expected e.g. 250ms, 30s, 2m)"
        ));
    }
    humantime::parse_duration(s)
        .map_err(|_| format!("'{s}' is not a duration (expected e.g. 250ms, 30s, 2m)"))
}

/// Let every duration-valued flag of `cmd` (and of its subcommands) take a value that starts
/// with '-', so `--timeout -5s` reaches [`parse`] and is refused as a negative duration
/// instead of being read as an unknown flag `-5`.
pub fn accept_hyphen_values(cmd: clap::Command) -> clap::Command {
    use std::any::TypeId;
    cmd.mut_args(|a| {
        let t = a.get_value_parser().type_id();
        if a.get_num_args().is_none_or(|n| n.takes_values())
            && !a.is_positional()
            && (t == TypeId::of::<Duration>() || t == TypeId::of::<Option<Duration>>())
        {
            a.allow_hyphen_values(true)
        } else {
            a
        }
    })
    .mut_subcommands(accept_hyphen_values)
}

/// Parse a deadline: like [`parse`], where `0` means "no deadline".
pub fn parse_deadline(input: &str) -> Result<Option<Duration>, String> {
    let d = parse(input)?;
    Ok((!d.is_zero()).then_some(d))
}

/// Short human form for logs: `850µs`, `42ms`, `1.25s`, `3m05s`.
pub fn human(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{}ms", micros / 1_000)
    } else if d.as_secs() < 60 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        if s < 3600 {
            format!("{}m{:02}s", s / 60, s % 60)
        } else {
            format!("{}h{:02}m{:02}s", s / 3600, (s % 3600) / 60, s % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_common_forms() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_deadline("0").unwrap(), None);
        assert_eq!(parse_deadline("5s").unwrap(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn negative_durations_reach_the_parser_and_are_named() {
        #[derive(clap::Parser, Debug)]
        struct A {
            #[arg(long, value_parser = parse)]
            timeout: Duration,
        }
        use clap::{CommandFactory, FromArgMatches};
        let err = accept_hyphen_values(A::command())
            .try_get_matches_from(["a", "--timeout", "-5s"])
            .and_then(|mut m| A::from_arg_matches_mut(&mut m))
            .unwrap_err()
            .to_string();
        assert!(err.contains("negative durations are not allowed"), "{err}");
        assert!(parse("-0").unwrap_err().contains("negative"));
    }

    #[test]
    fn rejects_garbage_with_a_message_naming_it() {
        for bad in ["", "abc", "10 parsecs", "-5s", "5x", "ms", "1e400", "-1"] {
            let err = parse(bad).unwrap_err();
            assert!(!err.contains('\n'), "one line: {err}");
            if !bad.is_empty() {
                assert!(err.contains(bad.trim()), "{err} should name {bad}");
            }
        }
    }

    #[test]
    fn human_forms() {
        assert_eq!(human(Duration::from_micros(850)), "850µs");
        assert_eq!(human(Duration::from_millis(42)), "42ms");
        assert_eq!(human(Duration::from_millis(1250)), "1.25s");
        assert_eq!(human(Duration::from_secs(185)), "3m05s");
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse(&s);
        }

        #[test]
        fn millis_round_trip(ms in 0u64..10_000_000) {
            prop_assert_eq!(parse(&format!("{ms}ms")).unwrap(), Duration::from_millis(ms));
        }

        #[test]
        fn seconds_round_trip(s in 0u64..1_000_000) {
            prop_assert_eq!(parse(&format!("{s}s")).unwrap(), Duration::from_secs(s));
            prop_assert_eq!(parse(&s.to_string()).unwrap(), Duration::from_secs(s));
        }
    }
}
