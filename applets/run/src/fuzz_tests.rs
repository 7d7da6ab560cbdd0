//! Property-based fuzz pass over the steps-file parser (issue 21, "done when"): arbitrary text
//! and steps files built from the documented keys parse into a plan or fail with a one-line
//! exit-3 error, never a panic; a well-formed file parses into exactly the steps it lists.
//! Bounded by `PROPTEST_CASES` (default 512 per property).

use std::path::Path;

use initbox_runtime::exit::Code;
use proptest::prelude::*;

use crate::steps::{self, Action, Item};

const KNOWN: &[&str] = &["wait-for-tcp", "wait-for", "notify", "fetch-secret", "run"];

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

fn parse(text: &str) -> Result<steps::Plan, initbox_runtime::Failure> {
    steps::parse(text, "steps.yaml", Path::new("/base"), KNOWN)
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9:./-]{0,10}",
        Just("--".to_string()),
        Just("5".to_string()),
        Just("true".to_string()),
        Just("1.5".to_string()),
        Just("~".to_string()),
        Just("\"a\\u0000b\"".to_string()),
        Just("[x, y]".to_string()),
        Just("{a: 1}".to_string()),
        Just("-5s".to_string()),
        Just("99999999999999999999".to_string()),
        Just("&anchor x".to_string()),
        Just("*anchor".to_string()),
        Just("!!binary aGk=".to_string()),
    ]
}

/// One `key: value` line of a step, from the documented keys and a few undocumented ones.
fn step_entry() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("name"),
        Just("applet"),
        Just("args"),
        Just("command"),
        Just("env"),
        Just("timeout"),
        Just("continue-on-error"),
        Just("background"),
        Just("parallel"),
        Just("bogus"),
    ];
    let value = prop_oneof![
        scalar(),
        proptest::collection::vec(scalar(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
        (scalar(), scalar()).prop_map(|(k, v)| format!("{{{k}: {v}}}")),
        Just("wait-for-tcp".to_string()),
        Just("notify".to_string()),
        Just("run".to_string()),
        Just("nope".to_string()),
    ];
    (key, value).prop_map(|(k, v)| format!("{k}: {v}"))
}

fn steps_file() -> impl Strategy<Value = String> {
    let step = proptest::collection::vec(step_entry(), 0..5)
        .prop_map(|entries| format!("{{{}}}", entries.join(", ")));
    (
        proptest::option::of("[a-z./]{0,8}"),
        proptest::collection::vec(step, 0..5),
        any::<bool>(),
    )
        .prop_map(|(workdir, steps, group)| {
            let mut out = String::new();
            if let Some(w) = workdir {
                out.push_str(&format!("workdir: '{w}'\n"));
            }
            out.push_str("steps:\n");
            if group && !steps.is_empty() {
                out.push_str("  - name: group\n    parallel:\n");
                for s in &steps {
                    out.push_str(&format!("      - {s}\n"));
                }
            } else {
                for s in &steps {
                    out.push_str(&format!("  - {s}\n"));
                }
            }
            out
        })
}

fn check(text: &str) -> Result<Option<steps::Plan>, TestCaseError> {
    match parse(text) {
        Ok(plan) => Ok(Some(plan)),
        Err(e) => {
            prop_assert_eq!(e.code, Code::INVALID_INPUT, "{:?}: {}", text, e.message);
            prop_assert!(!e.message.contains('\n'), "one line: {:?}", e.message);
            prop_assert!(
                e.message.starts_with("steps.yaml"),
                "names the file: {:?}",
                e.message
            );
            Ok(None)
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_steps_arbitrary_text_never_panics(s in "\\PC{0,120}") {
        check(&s)?;
    }

    #[test]
    fn fuzz_steps_yaml_alphabet_never_panics(s in "[a-z:{}\\[\\],\\- \n'\"&*!#|>]{0,160}") {
        check(&s)?;
    }

    #[test]
    fn fuzz_steps_documented_keys_never_panic(s in steps_file()) {
        if let Some(plan) = check(&s)? {
            prop_assert!(plan.step_count() >= 1);
        }
    }

    #[test]
    fn fuzz_steps_well_formed_file_parses_as_written(
        steps in proptest::collection::vec(
            (any::<bool>(), "[a-z]{1,6}", proptest::collection::vec("[a-z0-9:.]{1,8}", 0..4), 0u32..1000),
            1..6,
        ),
    ) {
        let mut text = String::from("steps:\n");
        let quoted = |v: &[String]| v.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ");
        for (i, (is_applet, word, args, ms)) in steps.iter().enumerate() {
            text.push_str(&format!("  - name: s{i}-{word}\n    timeout: {ms}ms\n"));
            if *is_applet {
                text.push_str(&format!("    applet: wait-for-tcp\n    args: [{}]\n", quoted(args)));
            } else {
                let mut argv = vec![format!("/bin/{word}")];
                argv.extend(args.iter().cloned());
                text.push_str(&format!("    command: [{}]\n", quoted(&argv)));
            }
        }
        let plan = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {}", e.message)))?;
        prop_assert_eq!(plan.items.len(), steps.len());
        for (item, (is_applet, word, args, ms)) in plan.items.iter().zip(&steps) {
            let Item::Step(step) = item else {
                return Err(TestCaseError::fail("a group where a step was written"));
            };
            let suffix = format!("-{word}");
            prop_assert!(step.name.ends_with(&suffix), "{} {}", step.name, suffix);
            let expected_timeout = (*ms > 0).then(|| std::time::Duration::from_millis(u64::from(*ms)));
            prop_assert_eq!(step.timeout, expected_timeout);
            match &step.action {
                Action::Applet { name, argv } => {
                    prop_assert!(*is_applet);
                    prop_assert_eq!(name.as_str(), "wait-for-tcp");
                    let words: Vec<String> = argv[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
                    prop_assert_eq!(&words, args);
                }
                Action::Command { argv, .. } => {
                    prop_assert!(!*is_applet);
                    prop_assert_eq!(argv.len(), args.len() + 1);
                }
            }
        }
    }
}
