//! Template data: the environment, data files (JSON, YAML, TOML, dotenv by extension) and
//! `--set key=value` pairs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use initbox_runtime::{Failure, redact};
use minijinja::Value;
use minijinja::value::ValueKind;

/// `--data [NAME=]FILE`: a data file, under `NAME` or merged into the top level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataArg {
    pub name: Option<String>,
    pub path: PathBuf,
}

pub fn parse_data_arg(s: &str) -> Result<DataArg, String> {
    if let Some((name, path)) = s.split_once('=')
        && is_identifier(name)
    {
        if path.is_empty() {
            return Err(format!("'{s}': no file after '{name}='"));
        }
        return Ok(DataArg {
            name: Some(name.to_string()),
            path: PathBuf::from(path),
        });
    }
    if s.is_empty() {
        return Err("empty data file name".into());
    }
    Ok(DataArg {
        name: None,
        path: PathBuf::from(s),
    })
}

/// `--set KEY=VALUE` (dotted keys nest: `db.host=x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetArg {
    pub key: Vec<String>,
    pub value: String,
}

pub fn parse_set_arg(s: &str) -> Result<SetArg, String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))?;
    let key: Vec<String> = k.split('.').map(str::to_string).collect();
    if key.iter().any(|p| !is_identifier(p)) {
        return Err(format!(
            "'{k}' is not a key (letters, digits and _, dotted for nesting)"
        ));
    }
    Ok(SetArg {
        key,
        value: v.to_string(),
    })
}

pub fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
}

/// The data formats, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Toml,
    Dotenv,
}

pub fn format_of(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name == ".env" || name.ends_with(".env") || name.ends_with(".dotenv") {
        return Some(Format::Dotenv);
    }
    match path
        .extension()?
        .to_string_lossy()
        .to_ascii_lowercase()
        .as_str()
    {
        "json" => Some(Format::Json),
        "yaml" | "yml" => Some(Format::Yaml),
        "toml" => Some(Format::Toml),
        _ => None,
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid")
        .to_string()
}

/// Read and parse a data file. Every failure is exit 3 naming the file (and line:col).
pub fn load_file(path: &Path) -> Result<Value, Failure> {
    let shown = path.display().to_string();
    let format = format_of(path).ok_or_else(|| {
        Failure::usage(format!(
            "--data {shown}: cannot tell the format from the name (expected .json, .yaml, .yml, .toml or .env)"
        ))
    })?;
    let bytes = initbox_runtime::input::read(path, &format!("data file {shown}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::invalid_input(format!("data file {shown}: not UTF-8 text")))?;
    parse(&text, format).map_err(|(loc, msg)| {
        let loc = loc.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default();
        Failure::invalid_input(format!("data file {shown}{loc}: {msg}"))
    })
}

type ParseError = (Option<(usize, usize)>, String);

/// Parse data text in `format`.
pub fn parse(text: &str, format: Format) -> Result<Value, ParseError> {
    match format {
        Format::Json => serde_json::from_str::<Value>(text).map_err(|e| {
            (
                Some((e.line(), e.column())),
                format!("invalid JSON: {}", strip_position(&e.to_string())),
            )
        }),
        Format::Yaml => {
            if text.trim().is_empty() {
                return Ok(Value::from(BTreeMap::<String, Value>::new()));
            }
            let converted;
            let text = if yaml_11_booleans() {
                converted = yaml_11_to_12_booleans(text);
                converted.as_str()
            } else {
                text
            };
            serde_norway::from_str::<Value>(text).map_err(|e| {
                let loc = e.location().map(|l| (l.line(), l.column()));
                (loc, format!("invalid YAML: {}", yaml_message(&e)))
            })
        }
        Format::Toml => toml::from_str::<Value>(text).map_err(|e| {
            let loc = e.span().map(|s| line_col(text, s.start));
            (loc, format!("invalid TOML: {}", first_line(e.message())))
        }),
        Format::Dotenv => {
            let mut map: IndexMap<Value, Value> = IndexMap::new();
            for (i, item) in dotenvy::from_read_iter(text.as_bytes()).enumerate() {
                match item {
                    Ok((k, v)) => {
                        map.insert(Value::from(k), Value::from(v));
                    }
                    Err(dotenvy::Error::LineParse(_, idx)) => {
                        return Err((None, format!("invalid dotenv line near byte {idx}")));
                    }
                    Err(e) => {
                        return Err((None, format!("invalid dotenv entry {}: {e}", i + 1)));
                    }
                }
            }
            Ok(Value::from_object(map))
        }
    }
}

static YAML_11_BOOLEANS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Read YAML data files with YAML 1.1's booleans (`yes`/`no`/`on`/`off` in their three cases,
/// as PyYAML and so Ansible read them) instead of YAML 1.2's, where they are strings.
pub fn set_yaml_11_booleans(on: bool) {
    YAML_11_BOOLEANS.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn yaml_11_booleans() -> bool {
    YAML_11_BOOLEANS.load(std::sync::atomic::Ordering::Relaxed)
}

/// YAML 1.1 boolean words (PyYAML's resolver: no `y`/`n`) and their YAML 1.2 spelling.
fn yaml_11_word(w: &str) -> Option<&'static str> {
    match w {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some("true"),
        "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some("false"),
        _ => None,
    }
}

/// Rewrite plain (unquoted) YAML 1.1 boolean values of block mappings and sequences
/// (`key: yes`, `- off`, `[yes, no]`, `{a: on}`) as `true`/`false`; keys, quoted strings and
/// the contents of `|` and `>` block scalars are left alone.
pub fn yaml_11_to_12_booleans(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Indentation of the line that opened a block scalar; deeper lines are its text.
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start().len();
        if let Some(b) = block {
            if body.trim().is_empty() || indent > b {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        let content = strip_comment(body);
        let trimmed = content.trim_end();
        if trimmed.ends_with(['|', '>'])
            || trimmed
                .rsplit_once(' ')
                .is_some_and(|(_, t)| t.starts_with(['|', '>']) && t.len() <= 3)
        {
            block = Some(indent);
        }
        out.push_str(&rewrite_line(body, content.len()));
        out.push_str(&line[body.len()..]);
    }
    out
}

/// The part of a YAML line before a comment (` #` outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t') => {
                return &line[..i];
            }
            _ => {}
        }
    }
    line
}

/// Replace boolean words in value positions of `line[..end]`.
fn rewrite_line(line: &str, end: usize) -> String {
    let (content, rest) = line.split_at(end);
    let mut out = String::with_capacity(line.len());
    let chars: Vec<(usize, char)> = content.char_indices().collect();
    let (mut single, mut double) = (false, false);
    let mut i = 0;
    let mut last = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
        // A word starts after `: `, `- `, `[`, `{`, `, ` (or at the start of a flow item).
        let starts_value = !single && !double && c.is_ascii_alphabetic() && {
            let before = content[..pos].trim_end_matches([' ', '\t']);
            let spaced = before.len() < pos;
            before.ends_with(['[', '{', ','])
                || (spaced && (before.ends_with(':') || before.ends_with('-')))
        };
        if starts_value {
            let word_end = content[pos..]
                .find(|ch: char| !ch.is_ascii_alphabetic())
                .map_or(content.len(), |n| pos + n);
            let word = &content[pos..word_end];
            let after = content[word_end..].trim_start_matches([' ', '\t']);
            let is_value_end = after.is_empty() || after.starts_with([',', ']', '}']);
            let before = content[..pos].trim_end_matches([' ', '\t']);
            // `- yes` must be a sequence entry, not the tail of `a - yes`.
            let dash_ok = !before.ends_with('-')
                || before[..before.len() - 1].trim().is_empty()
                || before[..before.len() - 1].trim_end().ends_with('-');
            if let (Some(b), true, true) = (yaml_11_word(word), is_value_end, dash_ok) {
                out.push_str(&content[last..pos]);
                out.push_str(b);
                last = word_end;
            }
            while i < chars.len() && chars[i].0 < word_end {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    out.push_str(&content[last..]);
    out.push_str(rest);
    out
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn yaml_message(e: &serde_norway::Error) -> String {
    // The location is shown separately; libyaml's messages name tokens, not document content.
    let full = first_line(&e.to_string());
    match full.find(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    }
}

/// Every string in `value` (for registering secret data with the scrubber; numbers and booleans
/// are not treated as secrets).
pub fn leaf_strings(value: &Value, out: &mut Vec<String>) {
    match value.kind() {
        ValueKind::String => {
            if let Some(s) = value.as_str() {
                out.push(s.to_string());
            }
        }
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            if let Ok(iter) = value.try_iter() {
                for item in iter {
                    if value.kind() == ValueKind::Map {
                        if let Ok(v) = value.get_item(&item) {
                            leaf_strings(&v, out);
                        }
                    } else {
                        leaf_strings(&item, out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The template context under construction: an ordered map of top-level names.
#[derive(Debug, Default, Clone)]
pub struct Context {
    top: IndexMap<String, Value>,
}

impl Context {
    pub fn new() -> Self {
        Context::default()
    }

    pub fn insert(&mut self, name: &str, value: Value) {
        self.top.insert(name.to_string(), value);
    }

    /// Merge a map's entries into the top level (later wins).
    pub fn merge_top(&mut self, value: &Value, origin: &str) -> Result<(), Failure> {
        if value.kind() != ValueKind::Map {
            return Err(Failure::invalid_input(format!(
                "data file {origin}: the top level is not a map, so it needs a name (--data NAME={origin})"
            )));
        }
        if let Ok(keys) = value.try_iter() {
            for k in keys {
                if let (Some(name), Ok(v)) = (k.as_str(), value.get_item(&k)) {
                    self.top.insert(name.to_string(), v);
                }
            }
        }
        Ok(())
    }

    /// Apply `--set a.b.c=value`, creating or extending maps.
    pub fn set(&mut self, set: &SetArg) {
        let (first, rest) = set.key.split_first().expect("parsed keys are never empty");
        let current = self.top.get(first).cloned();
        let v = set_path(current, rest, &set.value);
        self.top.insert(first.clone(), v);
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.top.get(name)
    }

    /// Whether the dotted path `a.b.c` resolves.
    pub fn has_path(&self, path: &str) -> bool {
        let mut parts = path.split('.');
        let Some(first) = parts.next() else {
            return false;
        };
        let Some(mut cur) = self.top.get(first).cloned() else {
            return false;
        };
        for p in parts {
            match cur.get_attr(p) {
                Ok(v) if !v.is_undefined() => cur = v,
                _ => return false,
            }
        }
        true
    }

    pub fn to_value(&self) -> Value {
        let map: IndexMap<Value, Value> = self
            .top
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), v.clone()))
            .collect();
        Value::from_object(map)
    }

    /// Top-level scalars as strings (the variables of envsubst mode).
    pub fn scalars(&self) -> BTreeMap<String, String> {
        self.top
            .iter()
            .filter(|(_, v)| {
                matches!(
                    v.kind(),
                    ValueKind::String | ValueKind::Number | ValueKind::Bool
                )
            })
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }
}

fn set_path(current: Option<Value>, rest: &[String], value: &str) -> Value {
    let Some((key, tail)) = rest.split_first() else {
        return Value::from(value);
    };
    let mut map: IndexMap<Value, Value> = IndexMap::new();
    if let Some(cur) = current.filter(|c| c.kind() == ValueKind::Map)
        && let Ok(keys) = cur.try_iter()
    {
        for k in keys {
            if let Ok(v) = cur.get_item(&k) {
                map.insert(k, v);
            }
        }
    }
    let key = Value::from(key.as_str());
    let child = map.get(&key).cloned();
    map.insert(key, set_path(child, tail, value));
    Value::from_object(map)
}

/// Register every string of a secret data file with the scrubber.
pub fn register_secret_data(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    leaf_strings(value, &mut out);
    for s in &out {
        redact::register(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_12_by_default_and_11_booleans_on_request() {
        let src = "a: no\nb: 'no'\nc: [yes, \"on\", Off]\nd:\n  - ON\n  - y\ne: |\n  - yes\n  x: no\nf: x - no # no\nyes: 1\ng: {h: off}\n";
        let v = parse(src, Format::Yaml).unwrap();
        assert_eq!(v.get_attr("a").unwrap().as_str(), Some("no"));
        let c = yaml_11_to_12_booleans(src);
        assert_eq!(
            c,
            "a: false\nb: 'no'\nc: [true, \"on\", false]\nd:\n  - true\n  - y\ne: |\n  - yes\n  x: no\nf: x - no # no\nyes: 1\ng: {h: false}\n"
        );
    }

    #[test]
    fn args_parse() {
        assert_eq!(
            parse_data_arg("db=conf/db.yaml").unwrap(),
            DataArg {
                name: Some("db".into()),
                path: "conf/db.yaml".into()
            }
        );
        assert_eq!(parse_data_arg("a/b=c.json").unwrap().name, None);
        assert!(parse_set_arg("novalue").is_err());
        assert_eq!(parse_set_arg("a.b=x=y").unwrap().value, "x=y");
        assert!(parse_set_arg("a..b=1").is_err());
    }

    #[test]
    fn formats_parse_and_errors_have_locations() {
        let v = parse("{\"a\": {\"b\": [1, 2]}}", Format::Json).unwrap();
        assert_eq!(v.get_attr("a").unwrap().to_string(), "{'b': [1, 2]}");
        let v = parse("a:\n  b: x\nc: [1, 2]\n", Format::Yaml).unwrap();
        assert_eq!(
            v.get_attr("a").unwrap().get_attr("b").unwrap().as_str(),
            Some("x")
        );
        let v = parse("[db]\nport = 5432\n", Format::Toml).unwrap();
        assert_eq!(
            v.get_attr("db")
                .unwrap()
                .get_attr("port")
                .unwrap()
                .to_string(),
            "5432"
        );
        let v = parse("A=1\nexport B=\"two words\"\n# c\n", Format::Dotenv).unwrap();
        assert_eq!(v.get_attr("B").unwrap().as_str(), Some("two words"));

        let (loc, msg) = parse("{\"a\": }", Format::Json).unwrap_err();
        assert_eq!(loc, Some((1, 7)));
        assert!(msg.starts_with("invalid JSON"), "{msg}");
        let (loc, msg) = parse("a: 1\nb: [x\n  c: canary-value-77\n", Format::Yaml).unwrap_err();
        assert!(loc.is_some(), "{msg}");
        assert!(msg.starts_with("invalid YAML"), "{msg}");
        assert!(!msg.contains('\n'));
        let (loc, msg) = parse("a = \n", Format::Toml).unwrap_err();
        assert_eq!(loc.map(|l| l.0), Some(1));
        assert!(msg.starts_with("invalid TOML"), "{msg}");
    }

    #[test]
    fn context_set_nests_and_merges() {
        let mut c = Context::new();
        c.merge_top(
            &parse("{\"db\": {\"host\": \"h\", \"port\": 1}}", Format::Json).unwrap(),
            "x",
        )
        .unwrap();
        c.set(&parse_set_arg("db.port=2").unwrap());
        c.set(&parse_set_arg("name=n").unwrap());
        let v = c.to_value();
        assert_eq!(
            v.get_attr("db").unwrap().get_attr("host").unwrap().as_str(),
            Some("h")
        );
        assert_eq!(
            v.get_attr("db").unwrap().get_attr("port").unwrap().as_str(),
            Some("2")
        );
        assert!(c.has_path("db.host") && !c.has_path("db.user") && !c.has_path("x"));
        assert_eq!(c.scalars().get("name").map(String::as_str), Some("n"));
        assert!(c.merge_top(&Value::from(1), "f.json").is_err());
    }
}
