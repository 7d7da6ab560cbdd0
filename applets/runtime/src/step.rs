//! What a step of `initbox run`'s steps file or a job of `initbox schedule`'s jobs file runs,
//! read the same way in both: `applet:` with `args:` (an initbox applet in this process), or
//! `command:` with `env:` (a child process). The applets keep their own keys (timeouts,
//! schedules, `background:`) and hand these four to [`action`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use serde_norway::Value;

/// What a step or job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An initbox applet, in this process: `argv[0]` is the applet name.
    Applet { name: String, argv: Vec<OsString> },
    /// An external program, with extra environment variables.
    Command {
        argv: Vec<OsString>,
        env: Vec<(String, String)>,
    },
}

impl Action {
    /// The applet name, or `command BASENAME` of a command.
    pub fn what(&self) -> String {
        match self {
            Action::Applet { name, .. } => name.clone(),
            Action::Command { argv, .. } => {
                let program = argv
                    .first()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let base = Path::new(&program)
                    .file_name()
                    .map(|b| b.to_string_lossy().into_owned())
                    .unwrap_or(program);
                format!("command {base}")
            }
        }
    }
}

/// The keys of a step or job that say what it runs, as the file gave them.
#[derive(Debug, Default)]
pub struct RawAction {
    pub applet: Option<String>,
    pub args: Vec<Value>,
    pub command: Option<Vec<Value>>,
    pub env: BTreeMap<String, Value>,
}

/// One scalar YAML value as a command-line word (`5`, `true` and `"5s"` are all words); `at`
/// and `what` name it in the error for anything else ("step 2 ('x')", "args item 2").
pub fn word(value: Value, at: &str, what: &str) -> Result<String, String> {
    let kind = match value {
        Value::String(s) => return Ok(s),
        Value::Bool(b) => return Ok(b.to_string()),
        Value::Number(n) => {
            return Ok(match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(f)) => f.to_string(),
                (None, None) => n.to_string(),
            });
        }
        Value::Null => "empty (null)",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    };
    Err(here(
        at,
        format!("{what} must be a string or number, not {kind}"),
    ))
}

/// `msg` prefixed with `at` ("step 2 ('x'): msg"), or alone when `at` is empty (the caller
/// prefixes it).
fn here(at: &str, msg: String) -> String {
    if at.is_empty() {
        msg
    } else {
        format!("{at}: {msg}")
    }
}

/// The action of a step or job; `at` names it in errors ("step 2 ('migrate')"; empty: the
/// caller prefixes them). Checks what
/// every file shares: exactly one of `applet`/`command`, `args` only with an applet, `env` only
/// with a command, no empty command, no NUL byte anywhere and valid variable names. Whether the
/// applet exists is the caller's check (it knows which ones it may run).
pub fn action(raw: RawAction, at: &str) -> Result<Action, String> {
    match (raw.applet, raw.command) {
        (Some(_), Some(_)) => Err(here(
            at,
            "give either 'applet:' or 'command:', not both".into(),
        )),
        (None, None) => Err(here(at, "missing 'applet:' or 'command:'".into())),
        (Some(applet), None) => {
            if !raw.env.is_empty() {
                return Err(here(
                    at,
                    "'env' is only for 'command:' (an applet reads the process environment)".into(),
                ));
            }
            let mut argv: Vec<OsString> = vec![applet.clone().into()];
            for (i, w) in raw.args.into_iter().enumerate() {
                argv.push(word(w, at, &format!("args item {}", i + 1))?.into());
            }
            Ok(Action::Applet { name: applet, argv })
        }
        (None, Some(command)) => {
            if !raw.args.is_empty() {
                return Err(here(
                    at,
                    "'args' is for applets; put a command's arguments in 'command:'".into(),
                ));
            }
            if command.is_empty() {
                return Err(here(at, "'command' is empty".into()));
            }
            let argv = command
                .into_iter()
                .enumerate()
                .map(|(i, w)| word(w, at, &format!("'command' item {}", i + 1)))
                .collect::<Result<Vec<String>, String>>()?;
            if let Some(i) = argv.iter().position(|w| w.contains('\0')) {
                return Err(here(
                    at,
                    format!(
                        "word {} of 'command' contains a NUL byte, which no program can receive",
                        i + 1
                    ),
                ));
            }
            let mut env = Vec::with_capacity(raw.env.len());
            for (k, v) in raw.env {
                let v = word(v, at, &format!("'env' value of {k}"))?;
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    return Err(here(
                        at,
                        format!(
                            "'env' name {:?} is not a valid variable name (empty, '=' or NUL)",
                            k.replace('\0', "\\0")
                        ),
                    ));
                }
                if v.contains('\0') {
                    // The value may be a secret: name the variable only.
                    return Err(here(
                        at,
                        format!(
                            "'env' value of {k} contains a NUL byte, which no environment can hold"
                        ),
                    ));
                }
                env.push((k, v));
            }
            Ok(Action::Command {
                argv: argv.into_iter().map(Into::into).collect(),
                env,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawAction {
        let m: BTreeMap<String, Value> = serde_norway::from_str(yaml).unwrap();
        let mut m = m;
        RawAction {
            applet: m
                .remove("applet")
                .and_then(|v| v.as_str().map(str::to_string)),
            args: match m.remove("args") {
                Some(Value::Sequence(s)) => s,
                _ => Vec::new(),
            },
            command: match m.remove("command") {
                Some(Value::Sequence(s)) => Some(s),
                _ => None,
            },
            env: match m.remove("env") {
                Some(v) => serde_norway::from_value(v).unwrap(),
                None => BTreeMap::new(),
            },
        }
    }

    #[test]
    fn applets_and_commands() {
        let a = action(raw("{applet: notify, args: [stdout://, -m, 5, true]}"), "x").unwrap();
        assert_eq!(
            a,
            Action::Applet {
                name: "notify".into(),
                argv: ["notify", "stdout://", "-m", "5", "true"]
                    .map(OsString::from)
                    .to_vec()
            }
        );
        assert_eq!(a.what(), "notify");
        let c = action(raw("{command: [/bin/echo, 1.5], env: {A: 1}}"), "x").unwrap();
        assert_eq!(c.what(), "command echo");
        let Action::Command { argv, env } = c else {
            panic!()
        };
        assert_eq!(argv, ["/bin/echo", "1.5"].map(OsString::from).to_vec());
        assert_eq!(env, vec![("A".to_string(), "1".to_string())]);
    }

    #[test]
    fn refusals_name_the_key() {
        for (yaml, want) in [
            (
                "{applet: a, command: [b]}",
                "x: give either 'applet:' or 'command:', not both",
            ),
            ("{}", "x: missing 'applet:' or 'command:'"),
            ("{applet: a, env: {A: 1}}", "'env' is only for 'command:'"),
            ("{command: [b], args: [c]}", "'args' is for applets"),
            ("{command: []}", "x: 'command' is empty"),
            (
                "{applet: a, args: [{x: 1}]}",
                "x: args item 1 must be a string or number, not a mapping",
            ),
            (
                "{command: [a, ~]}",
                "'command' item 2 must be a string or number, not empty",
            ),
            (
                "{command: [\"a\\0b\"]}",
                "word 1 of 'command' contains a NUL",
            ),
            (
                "{command: [a], env: {\"A=B\": x}}",
                "not a valid variable name",
            ),
            (
                "{command: [a], env: {TOKEN: \"s\\0t\"}}",
                "value of TOKEN contains a NUL",
            ),
        ] {
            let e = action(raw(yaml), "x").unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
