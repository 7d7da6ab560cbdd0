//! The steps file: what `initbox run -f FILE` reads, parsed strictly (unknown keys, unknown
//! applets, duplicate names and misplaced follow-up commands are refused before anything runs).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use initbox_runtime::Failure;
use initbox_runtime::duration;
use initbox_runtime::step;
pub use initbox_runtime::step::Action;
use serde::Deserialize;
use serde_norway::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    /// Directory the steps run in, relative to the steps file.
    workdir: Option<PathBuf>,
    steps: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStep {
    name: Option<String>,
    applet: Option<String>,
    #[serde(default)]
    args: Vec<Value>,
    command: Option<Vec<Value>>,
    #[serde(default)]
    env: BTreeMap<String, Value>,
    #[serde(default)]
    background: bool,
    timeout: Option<Value>,
    stop_grace: Option<Value>,
    #[serde(default)]
    continue_on_error: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawGroup {
    name: Option<String>,
    parallel: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub action: Action,
    /// A `command:` that runs beside the later steps until the last one ends.
    pub background: bool,
    pub timeout: Option<Duration>,
    /// `command` steps: time between SIGTERM and SIGKILL when stopped (else `--stop-grace`).
    pub stop_grace: Option<Duration>,
    pub continue_on_error: bool,
}

impl Step {
    /// The applet name, or the program of a command step.
    pub fn what(&self) -> String {
        self.action.what()
    }

    pub fn is_background(&self) -> bool {
        self.background
    }
}

#[derive(Debug, Clone)]
pub enum Item {
    Step(Step),
    Parallel { name: String, steps: Vec<Step> },
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub workdir: Option<PathBuf>,
    pub items: Vec<Item>,
}

impl Plan {
    pub fn step_count(&self) -> usize {
        self.items
            .iter()
            .map(|i| match i {
                Item::Step(_) => 1,
                Item::Parallel { steps, .. } => steps.len(),
            })
            .sum()
    }
}

/// Parse a steps file. `source` names it in errors; `dir` is where relative `workdir` starts;
/// `known` are the applets this binary can run in-process.
pub fn parse(text: &str, source: &str, dir: &Path, known: &[&str]) -> Result<Plan, Failure> {
    let bad = |msg: String| Failure::invalid_input(format!("{source}: {msg}"));
    let raw: RawFile = serde_norway::from_str(text).map_err(|e| bad(one_line(&e.to_string())))?;
    if raw.steps.is_empty() {
        return Err(bad("no steps (expected a list under 'steps:')".into()));
    }
    let mut names = HashSet::new();
    let mut items = Vec::with_capacity(raw.steps.len());
    let last = raw.steps.len() - 1;
    // Step `ordinal` (document order, members after their group) starts on this line.
    let at = |ordinal: usize, msg: String| match step_line(text, ordinal) {
        Some(line) => Failure::invalid_input(format!("{source}, line {line}: {msg}")),
        None => bad(msg),
    };
    let mut ordinal = 0;
    for (i, value) in raw.steps.into_iter().enumerate() {
        let position = format!("step {}", i + 1);
        let here = ordinal;
        ordinal += 1;
        let bad = |msg: String| at(here, msg);
        let is_group = matches!(&value, Value::Mapping(m) if m.contains_key("parallel"));
        if is_group {
            let group: RawGroup = serde_norway::from_value(value)
                .map_err(|e| bad(format!("{position}: {}", one_line(&e.to_string()))))?;
            let gname = group.name.unwrap_or_else(|| format!("parallel-{}", i + 1));
            if group.parallel.is_empty() {
                return Err(bad(format!("{position} ('{gname}'): 'parallel' is empty")));
            }
            let mut steps = Vec::with_capacity(group.parallel.len());
            ordinal += group.parallel.len();
            for (j, v) in group.parallel.into_iter().enumerate() {
                let pos = format!("{position}.{} (in '{gname}')", j + 1);
                let bad = |msg: String| at(here + 1 + j, msg);
                if matches!(&v, Value::Mapping(m) if m.contains_key("parallel")) {
                    return Err(bad(format!("{pos}: parallel groups cannot be nested")));
                }
                let step =
                    step(v, &pos, &format!("{gname}-{}", j + 1), false, known).map_err(bad)?;
                if step.is_background() {
                    return Err(bad(format!(
                        "{pos} ('{}'): background commands belong at the top level, not in a parallel group",
                        step.name
                    )));
                }
                if !names.insert(step.name.clone()) {
                    return Err(bad(format!("{pos}: duplicate step name '{}'", step.name)));
                }
                steps.push(step);
            }
            if !names.insert(gname.clone()) {
                return Err(bad(format!("{position}: duplicate step name '{gname}'")));
            }
            items.push(Item::Parallel { name: gname, steps });
        } else {
            let default_name = match &value {
                Value::Mapping(m) => m
                    .get("applet")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("step-{}", i + 1)),
                _ => format!("step-{}", i + 1),
            };
            let step = step(value, &position, &default_name, i == last, known).map_err(bad)?;
            if !names.insert(step.name.clone()) {
                return Err(bad(format!(
                    "{position}: duplicate step name '{}' (give each step a 'name:')",
                    step.name
                )));
            }
            items.push(Item::Step(step));
        }
    }
    let workdir = raw
        .workdir
        .map(|w| if w.is_absolute() { w } else { dir.join(w) });
    Ok(Plan { workdir, items })
}

fn step(
    value: Value,
    position: &str,
    default_name: &str,
    may_exec: bool,
    known: &[&str],
) -> Result<Step, String> {
    if !matches!(value, Value::Mapping(_)) {
        return Err(format!(
            "{position}: expected a mapping with 'applet:' or 'command:' (or 'parallel:')"
        ));
    }
    let raw: RawStep = serde_norway::from_value(value)
        .map_err(|e| format!("{position}: {}", one_line(&e.to_string())))?;
    let name = raw.name.clone().unwrap_or_else(|| default_name.to_string());
    let at = format!("{position} ('{name}')");
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(format!("{position}: a step name must be non-empty text"));
    }
    let timeout = match raw.timeout {
        None => None,
        Some(w) => {
            let text = step::word(w, &at, "'timeout'")?;
            let d = duration::parse(&text).map_err(|e| format!("{at}: timeout: {e}"))?;
            (!d.is_zero()).then_some(d)
        }
    };
    let stop_grace = match raw.stop_grace {
        None => None,
        Some(w) => {
            let text = step::word(w, &at, "'stop-grace'")?;
            Some(duration::parse(&text).map_err(|e| format!("{at}: stop-grace: {e}"))?)
        }
    };
    let is_applet = raw.applet.is_some();
    if is_applet && raw.background {
        return Err(format!("{at}: 'background' is only for 'command:' steps"));
    }
    if is_applet && stop_grace.is_some() {
        return Err(format!(
            "{at}: 'stop-grace' is only for 'command:' steps (applets stop their own commands)"
        ));
    }
    if !is_applet && raw.background && (timeout.is_some() || raw.continue_on_error) {
        return Err(format!(
            "{at}: a background command has no 'timeout' or 'continue-on-error' \
             (it runs until the last step ends)"
        ));
    }
    let action = step::action(
        step::RawAction {
            applet: raw.applet,
            args: raw.args,
            command: raw.command,
            env: raw.env,
        },
        &at,
    )?;
    if let Action::Applet { name: applet, argv } = &action {
        if applet == "run" {
            return Err(format!("{at}: a steps file cannot run 'run' itself"));
        }
        if !known.contains(&applet.as_str()) {
            return Err(format!(
                "{at}: unknown applet '{applet}' (this binary has: {})",
                known
                    .iter()
                    .filter(|k| **k != "run")
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !may_exec && argv.iter().skip(1).any(|a| a == "--") {
            return Err(format!(
                "{at}: a follow-up command ('--') is only allowed in the last step \
                 (or after 'initbox run -f FILE --')"
            ));
        }
    }
    Ok(Step {
        name,
        action,
        background: raw.background,
        timeout,
        stop_grace,
        continue_on_error: raw.continue_on_error,
    })
}

/// A parser's message in one line, without the file's text it quotes (it may hold secrets).
fn one_line(s: &str) -> String {
    initbox_runtime::redact::without_input_values(s)
}

/// The line on which step number `target` starts, counting steps in document order with a
/// parallel group's members right after the group (0 = the first step). serde keeps no
/// positions in a parsed value, so the text is walked again and the parser asked where it
/// stands when it reaches that step; only error messages pay for it.
fn step_line(text: &str, target: usize) -> Option<usize> {
    use serde::de::{
        self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
    };
    use std::cell::Cell;
    use std::fmt;

    #[derive(Clone, Copy)]
    struct Walk<'a> {
        seen: &'a Cell<usize>,
        target: usize,
    }
    /// Fails on whatever it is given: the error carries the parser's position.
    struct Here;
    impl<'de> Visitor<'de> for Here {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("the step asked for")
        }
    }
    /// The document: a mapping whose `steps` is a list of steps.
    struct Doc<'a>(Walk<'a>);
    /// A list of steps.
    struct Steps<'a>(Walk<'a>);
    /// One step (any value): counted, then walked for a `parallel` list.
    struct StepSeed<'a>(Walk<'a>);
    struct StepBody<'a>(Walk<'a>);

    impl<'de> Visitor<'de> for Doc<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Value>()? {
                if key.as_str() == Some("steps") {
                    map.next_value_seed(Steps(self.0))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Steps<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Steps<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of steps")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(StepSeed(self.0))?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for StepSeed<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            let n = self.0.seen.get();
            self.0.seen.set(n + 1);
            if n == self.0.target {
                return d.deserialize_any(Here);
            }
            d.deserialize_any(StepBody(self.0))
        }
    }
    impl<'de> Visitor<'de> for StepBody<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a step")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Value>()? {
                if key.as_str() == Some("parallel") {
                    map.next_value_seed(Steps(self.0))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    }

    let seen = Cell::new(0);
    let walk = Walk {
        seen: &seen,
        target,
    };
    let d = serde_norway::Deserializer::from_str(text);
    match d.deserialize_map(Doc(walk)) {
        Err(e) if seen.get() > target => e.location().map(|l| l.line()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["wait-for-tcp", "notify", "run"];

    fn plan(text: &str) -> Result<Plan, Failure> {
        parse(text, "steps.yaml", Path::new("/x"), KNOWN)
    }

    #[test]
    fn parses_steps_groups_and_defaults() {
        let p = plan(
            "workdir: demo\nsteps:\n  - applet: wait-for-tcp\n    args: [db:5432, --timeout, 5]\n  \
             - name: both\n    parallel:\n      - {name: a, applet: notify}\n      - {name: b, command: [true]}\n",
        )
        .unwrap();
        assert_eq!(p.workdir.as_deref(), Some(Path::new("/x/demo")));
        assert_eq!(p.step_count(), 3);
        match &p.items[0] {
            Item::Step(s) => {
                assert_eq!(s.name, "wait-for-tcp");
                match &s.action {
                    Action::Applet { argv, .. } => assert_eq!(argv[3], "5"),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_line_of_the_step() {
        let text = "steps:\n  - applet: notify\n\n  - name: grp\n    parallel:\n      - {name: a, applet: notify}\n      - name: b\n        applet: nope\n  - {name: c, applet: notify, args: [{x: 1}]}\n";
        let err = plan(text).unwrap_err();
        assert!(
            err.message.starts_with("steps.yaml, line 7: step 2.2"),
            "{}",
            err.message
        );
        let text = "steps:\n  - applet: notify\n  - {name: c, applet: notify, args: [{x: 1}]}\n";
        let err = plan(text).unwrap_err();
        assert_eq!(
            err.message,
            "steps.yaml, line 3: step 2 ('c'): args item 1 must be a string or number, not a mapping"
        );
        let err = plan("steps: [{applet: notify}, {applet: notify}]").unwrap_err();
        assert!(
            err.message.starts_with("steps.yaml, line 1: step 2:"),
            "{}",
            err.message
        );
    }

    #[test]
    fn refuses_what_is_wrong_before_running() {
        let cases = [
            ("steps: []", "no steps"),
            ("steps:\n  - applet: nope", "unknown applet 'nope'"),
            ("steps:\n  - applet: run", "cannot run 'run'"),
            ("steps:\n  - applet: notify\n    tiemout: 5s", "tiemout"),
            (
                "steps:\n  - applet: notify\n  - applet: notify",
                "duplicate step name",
            ),
            (
                "steps:\n  - applet: wait-for-tcp\n    args: [a:1, --, app]\n  - applet: notify",
                "only allowed in the last step",
            ),
            ("steps:\n  - applet: notify\n    timeout: soon", "timeout"),
            ("steps:\n  - command: []", "'command' is empty"),
            ("steps:\n  - {applet: notify, command: [x]}", "not both"),
            ("steps:\n  - parallel: []", "is empty"),
            (
                "steps:\n  - parallel:\n    - parallel: [{applet: notify}]",
                "nested",
            ),
            (
                "steps:\n  - {command: [x], background: true, timeout: 5s}",
                "background",
            ),
            ("steps: [", "steps.yaml"),
            (
                "steps:\n  - {command: [env], env: {TOKEN: \"s3cr\\0et\"}}",
                "value of TOKEN contains a NUL",
            ),
            (
                "steps:\n  - {command: [env], env: {\"A=B\": x}}",
                "not a valid variable name",
            ),
            ("steps:\n  - {command: [\"a\\0b\"]}", "NUL"),
        ];
        for (text, needle) in cases {
            let err = plan(text).unwrap_err();
            assert_eq!(err.code, initbox_runtime::Code::INVALID_INPUT, "{text}");
            assert!(err.message.contains(needle), "{text}: {}", err.message);
            assert!(!err.message.contains('\n'));
        }
    }
}
