//! Property-based fuzz pass over the runtime's parsers (issue 21, "done when"): the target
//! parser, the duration parser and the URL display function. Arbitrary input must give `Ok` or
//! `Err`, never a panic; where a round trip exists it holds. Bounded by `PROPTEST_CASES`
//! (default here 512 per property); `tests/run-all.sh` runs them under a time limit.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;

use crate::duration;
use crate::redact;
use crate::target::{self, Host, HostPort};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text close to a target: host-ish characters, brackets, colons, schemes, digits.
fn targetish() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,60}",
        "(tcp://|TCP://|http://|)\\[?[0-9a-fA-F:.]{0,40}\\]?(:[0-9]{0,7})?/?",
        "[a-zA-Z0-9._-]{0,70}(:[0-9+-]{0,8})?",
        "[ \t]{0,2}[a-z0-9.\\[\\]:%/@_-]{0,30}[ \t]{0,2}",
    ]
}

/// A valid host name as users write them: labels of letters, digits, `-` inside, `_`.
fn host_name() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z_]([a-z0-9_-]{0,10}[a-z0-9_])?", 1..5).prop_map(|l| l.join("."))
}

/// Duration text: digits, units, dots, signs, exponents, spaces.
fn durationish() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,30}",
        "[-+ ]?[0-9]{0,25}(\\.[0-9]{0,12})?(e[-+]?[0-9]{0,4})?( ?(ns|us|µs|ms|s|m|h|d|w|min|sec|hour|y|x))?",
        "([0-9]{1,6}(h|m|s|ms|us|ns) ?){1,6}",
        "(inf|NaN|-0|0x10|1_000|∞|١٢)",
    ]
}

/// Text close to a URL with credentials: schemes, userinfo with reserved characters, ports,
/// paths, queries, fragments, percent signs.
fn urlish() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,80}",
        "[a-z+]{0,12}://[a-zA-Z0-9:@%/#?&=._~!$'()*,;\\[\\]-]{0,60}",
        "(postgres|mysql|redis|amqp|nats|mqtt|https?)://[a-z]{0,6}(:[a-zA-Z0-9@:/%#?]{0,20})?@[a-z0-9.@:-]{0,20}(/[a-zA-Z0-9@:%/?#=&]{0,20})?",
    ]
}

/// `url_for_display` registers the password it finds with the process-wide scrubber; a short
/// random one ("db:" ...) would then mask text other unit tests of this crate compare, so the
/// fuzz input never carries a userinfo password shorter than 8 characters (24 when
/// percent-encoded).
fn no_short_password(s: &str) -> bool {
    let Some((_, rest)) = s.split_once("://") else {
        return true;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rsplit_once('@') {
        Some((userinfo, _)) => userinfo
            .split(':')
            .skip(1)
            .all(|p| p.is_empty() || p.len() >= if p.contains('%') { 24 } else { 8 }),
        None => true,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_target_never_panics(s in targetish(), default in proptest::option::of(1u16..)) {
        if let Ok(t) = target::parse_host_port(&s, default) {
            // A parsed target displays as something that parses back to itself.
            let again = target::parse_host_port(&t.to_string(), None);
            prop_assert_eq!(again, Ok(t));
        } else if let Err(e) = target::parse_host_port(&s, default) {
            prop_assert!(!e.contains('\n'), "one-line error for {:?}: {:?}", s, e);
        }
    }

    #[test]
    fn fuzz_target_name_displays_as_given(host in host_name(), port in 1u16..) {
        let given = format!("{host}:{port}");
        prop_assume!(host.len() <= 253);
        let t: HostPort = given.parse().map_err(|e: String| TestCaseError::fail(e))?;
        prop_assert_eq!(t.to_string(), given.clone());
        let t2: HostPort = format!("tcp://{given}/").parse().map_err(|e: String| TestCaseError::fail(e))?;
        prop_assert_eq!(t2, t);
    }

    #[test]
    fn fuzz_target_ip_displays_as_given(v4 in any::<u32>(), v6 in any::<u128>(), port in 1u16..) {
        let ip4 = IpAddr::V4(Ipv4Addr::from(v4));
        let t: HostPort = format!("{ip4}:{port}").parse().map_err(|e: String| TestCaseError::fail(e))?;
        prop_assert_eq!(&t.host, &Host::Ip(ip4));
        prop_assert_eq!(t.to_string(), format!("{ip4}:{port}"));
        let ip6 = Ipv6Addr::from(v6);
        let t: HostPort = format!("[{ip6}]:{port}").parse().map_err(|e: String| TestCaseError::fail(e))?;
        prop_assert_eq!(t.to_string(), format!("[{ip6}]:{port}"));
    }

    #[test]
    fn fuzz_duration_never_panics(s in durationish()) {
        match duration::parse(&s) {
            Ok(d) => { let _ = duration::human(d); }
            Err(e) => prop_assert!(!e.contains('\n'), "one-line error for {:?}: {:?}", s, e),
        }
        let _ = duration::parse_deadline(&s);
    }

    #[test]
    fn fuzz_duration_formatted_parses_back(ms in 0u64..1_000_000_000, unit in 0usize..4) {
        let d = Duration::from_millis(ms);
        let text = match unit {
            0 => format!("{ms}ms"),
            1 => format!("{}s", ms / 1000),
            2 => format!("{}m", ms / 60_000),
            _ => format!("{}h{}m{}s", ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60),
        };
        let parsed = duration::parse(&text).map_err(TestCaseError::fail)?;
        let expected = match unit {
            0 => d,
            1 => Duration::from_secs(ms / 1000),
            2 => Duration::from_secs(ms / 60_000 * 60),
            _ => Duration::from_secs(ms / 1000),
        };
        prop_assert_eq!(parsed, expected, "{}", text);
    }

    #[test]
    fn fuzz_duration_human_parses_back_closely(micros in 0u64..400_000_000_000) {
        // `human` is for logs (rounded), but what it prints must parse back to within its
        // rounding: 1 µs below 1 ms, 1 ms below 1 s, 10 ms below 60 s, 1 s above.
        let d = Duration::from_micros(micros);
        let shown = duration::human(d);
        let back = duration::parse(&shown).map_err(|e| TestCaseError::fail(format!("{shown}: {e}")))?;
        let slack = if micros < 1_000 {
            Duration::from_micros(1)
        } else if micros < 1_000_000 {
            Duration::from_millis(1)
        } else if micros < 60_000_000 {
            Duration::from_millis(10)
        } else {
            Duration::from_secs(1)
        };
        let diff = back.abs_diff(d);
        prop_assert!(diff <= slack, "{:?} shown as {} parses back as {:?}", d, shown, back);
    }

    #[test]
    fn fuzz_url_for_display_never_panics(s in urlish().prop_filter("short password", |s| no_short_password(s))) {
        let shown = redact::url_for_display(&s);
        prop_assert!(!shown.contains('\n') || s.contains('\n'));
    }

    #[test]
    fn fuzz_url_for_display_hides_the_password(
        scheme in "(postgres|postgresql|mysql|mariadb|redis|rediss|amqp|amqps|nats|mqtt|mqtts|https?)",
        user in "[a-z]{1,8}",
        password in "[A-Za-z0-9._~!$&'()*+,;=-]{6,24}",
        host in "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}",
        port in proptest::option::of(1u16..),
        path in "(/[a-z0-9]{0,8}){0,2}",
    ) {
        // A distinctive password (so it cannot be a piece of the scheme, user, host or path).
        let password = format!("Pw{password}Zq");
        let port_part = port.map(|p| format!(":{p}")).unwrap_or_default();
        let url = format!("{scheme}://{user}:{password}@{host}{port_part}{path}");
        let shown = redact::url_for_display(&url);
        prop_assert!(!shown.contains(&password), "{} shown as {}", url, shown);
        prop_assert!(shown.contains(&host), "{} shown as {} lost its host", url, shown);
        prop_assert!(shown.starts_with(&format!("{scheme}://")), "{} shown as {}", url, shown);
    }
}
