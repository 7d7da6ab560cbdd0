//! YAML as Ansible's `to_yaml` / `to_nice_yaml` print it: a port of PyYAML's emitter rules
//! (`yaml.dump(sort_keys=True, allow_unicode=True, width=80)`) for plain data.
//!
//! - keys sorted; scalars plain when PyYAML's YAML 1.1 resolver would read them back as the
//!   same string, else single-quoted (`'yes'`, `'123'`, `''`, `'a: b'`), else double-quoted
//!   (control characters, tabs);
//! - block sequences inside a mapping are not indented (`key:\n- a`); an item that is itself a
//!   block collection starts `indent` columns after its dash (`-   a: 1` with indent 4);
//! - `flow` (`to_yaml`): a collection whose children are all scalars is written in flow style
//!   (`[1, 2]`, `{a: 1}`); `to_nice_yaml` uses block style everywhere; empty collections are
//!   always `[]` / `{}`;
//! - plain and single-quoted scalars longer than 80 columns are folded at single spaces.

use std::sync::LazyLock;

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};
use regex::Regex;

use crate::python::float_repr;

const WIDTH: usize = 80;

static IMPLICIT: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // bool
        r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
        // float
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        // int
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
        // merge, null, value
        r"^(?:<<|~|null|Null|NULL|=)$",
        // timestamp
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("static regex"))
    .collect()
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

struct Analysis {
    multiline: bool,
    allow_flow_plain: bool,
    allow_block_plain: bool,
    allow_single: bool,
}

fn is_ws(c: Option<char>) -> bool {
    matches!(
        c,
        None | Some('\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
    )
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    let mut block_ind = false;
    let mut flow_ind = false;
    let mut line_breaks = false;
    let mut special = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_ind = true;
        flow_ind = true;
    }
    let mut preceded_ws = true;
    let mut followed_ws = chars.len() == 1 || is_ws(chars.get(1).copied());
    let (mut prev_space, mut prev_break) = (false, false);
    for (i, &ch) in chars.iter().enumerate() {
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                flow_ind = true;
                block_ind = true;
            }
            if ch == '?' || ch == ':' {
                flow_ind = true;
                if followed_ws {
                    block_ind = true;
                }
            }
            if ch == '-' && followed_ws {
                flow_ind = true;
                block_ind = true;
            }
        } else {
            if ",?[]{}".contains(ch) {
                flow_ind = true;
            }
            if ch == ':' {
                flow_ind = true;
                if followed_ws {
                    block_ind = true;
                }
            }
            if ch == '#' && preceded_ws {
                flow_ind = true;
                block_ind = true;
            }
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || (' '..='~').contains(&ch)) {
            let printable = ch == '\u{85}'
                || ('\u{a0}'..='\u{d7ff}').contains(&ch)
                || ('\u{e000}'..='\u{fffd}').contains(&ch)
                || ('\u{10000}'..'\u{10ffff}').contains(&ch);
            if !printable || ch == '\u{feff}' {
                special = true;
            }
        }
        if ch == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == chars.len() - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(ch) {
            if i == 0 {
                leading_break = true;
            }
            if i == chars.len() - 1 {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = is_ws(Some(ch));
        followed_ws = is_ws(chars.get(i + 2).copied());
    }
    let mut a = Analysis {
        multiline: line_breaks,
        allow_flow_plain: true,
        allow_block_plain: true,
        allow_single: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if break_space {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single = false;
    }
    if space_break || special {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single = false;
    }
    if line_breaks {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if flow_ind {
        a.allow_flow_plain = false;
    }
    if block_ind {
        a.allow_block_plain = false;
    }
    a
}

fn style_of(s: &str, flow: bool, simple_key: bool) -> Style {
    if s.is_empty() {
        return Style::Single;
    }
    let a = analyze(s);
    let implicit = !IMPLICIT.iter().any(|r| r.is_match(s));
    if implicit
        && !(simple_key && a.multiline)
        && ((flow && a.allow_flow_plain) || (!flow && a.allow_block_plain))
    {
        return Style::Plain;
    }
    if a.allow_single && !(simple_key && a.multiline) {
        return Style::Single;
    }
    Style::Double
}

struct Emitter {
    out: String,
    column: usize,
    best_indent: usize,
    flow_default: bool,
}

impl Emitter {
    fn push(&mut self, s: &str) {
        self.out.push_str(s);
        self.column += s.chars().count();
    }

    fn newline_indent(&mut self, indent: usize) {
        self.out.push('\n');
        self.column = 0;
        self.pad_to(indent);
    }

    fn pad_to(&mut self, indent: usize) {
        if self.column < indent {
            let n = indent - self.column;
            self.out.push_str(&" ".repeat(n));
            self.column = indent;
        }
    }

    /// Write a scalar string; `indent` is where folded lines continue.
    fn string(&mut self, s: &str, flow: bool, simple_key: bool, indent: usize) {
        match style_of(s, flow, simple_key) {
            Style::Plain => self.folded(s, !simple_key, indent, false),
            Style::Single => {
                self.push("'");
                self.folded(s, !simple_key, indent, true);
                self.push("'");
            }
            Style::Double => self.double(s),
        }
    }

    /// PyYAML's write_plain / write_single_quoted: break at a single space past the width.
    fn folded(&mut self, text: &str, split: bool, indent: usize, single: bool) {
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0usize, 0usize);
        let take = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > WIDTH
                        && split
                        && (!single || (start != 0 && end != chars.len()))
                    {
                        self.newline_indent(indent);
                    } else {
                        let s = take(start, end);
                        self.push(&s);
                    }
                    start = end;
                }
            } else if breaks {
                if ch.is_none_or(|c| !is_break(c)) {
                    if chars[start] == '\n' {
                        self.out.push('\n');
                        self.column = 0;
                    }
                    for &br in &chars[start..end] {
                        self.out.push(br);
                        self.column = 0;
                    }
                    self.newline_indent_soft(indent);
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c) || (single && c == '\''))
                && start < end
            {
                let s = take(start, end);
                self.push(&s);
                start = end;
            }
            if single && ch == Some('\'') {
                self.push("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
    }

    /// After explicit line breaks: indent the next line (no extra newline).
    fn newline_indent_soft(&mut self, indent: usize) {
        self.pad_to(indent);
    }

    fn double(&mut self, s: &str) {
        let mut out = String::from("\"");
        for c in s.chars() {
            let esc = match c {
                '\0' => Some("0"),
                '\x07' => Some("a"),
                '\x08' => Some("b"),
                '\t' => Some("t"),
                '\n' => Some("n"),
                '\x0b' => Some("v"),
                '\x0c' => Some("f"),
                '\r' => Some("r"),
                '\x1b' => Some("e"),
                '"' => Some("\""),
                '\\' => Some("\\"),
                '\u{85}' => Some("N"),
                '\u{a0}' => Some("_"),
                '\u{2028}' => Some("L"),
                '\u{2029}' => Some("P"),
                _ => None,
            };
            if let Some(e) = esc {
                out.push('\\');
                out.push_str(e);
            } else if (' '..='~').contains(&c) || (c > '\u{a0}' && c != '\u{feff}') {
                out.push(c);
            } else if (c as u32) <= 0xff {
                out.push_str(&format!("\\x{:02X}", c as u32));
            } else if (c as u32) <= 0xffff {
                out.push_str(&format!("\\u{:04X}", c as u32));
            } else {
                out.push_str(&format!("\\U{:08X}", c as u32));
            }
        }
        out.push('"');
        self.push(&out);
    }

    fn scalar(
        &mut self,
        v: &Value,
        flow: bool,
        simple_key: bool,
        indent: usize,
    ) -> Result<(), Error> {
        match v.kind() {
            ValueKind::Undefined => return Err(Error::from(ErrorKind::UndefinedError)),
            ValueKind::None => self.push("null"),
            ValueKind::Bool => self.push(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if v.is_integer() {
                    self.push(&v.to_string());
                } else {
                    let f = f64::try_from(v.clone())?;
                    let s = if f.is_nan() {
                        ".nan".to_string()
                    } else if f.is_infinite() {
                        if f > 0.0 { ".inf" } else { "-.inf" }.to_string()
                    } else {
                        let r = float_repr(f).to_lowercase();
                        if !r.contains('.') && r.contains('e') {
                            r.replacen('e', ".0e", 1)
                        } else {
                            r
                        }
                    };
                    self.push(&s);
                }
            }
            ValueKind::String => {
                self.string(v.as_str().unwrap_or_default(), flow, simple_key, indent)
            }
            _ => self.string(&v.to_string(), flow, simple_key, indent),
        }
        Ok(())
    }

    fn is_collection(v: &Value) -> bool {
        matches!(
            v.kind(),
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
        )
    }

    fn entries(v: &Value) -> Result<Vec<(Value, Value)>, Error> {
        let mut keys: Vec<Value> = v.try_iter()?.collect();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let val = v.get_item(&k)?;
                Ok((k, val))
            })
            .collect()
    }

    fn items(v: &Value) -> Result<Vec<Value>, Error> {
        Ok(v.try_iter()?.collect())
    }

    /// Whether a collection is written in flow style.
    fn flow_style(&self, v: &Value) -> Result<bool, Error> {
        let empty = v.len() == Some(0) || v.try_iter()?.next().is_none();
        if empty {
            return Ok(true);
        }
        if !self.flow_default {
            return Ok(false);
        }
        Ok(match v.kind() {
            ValueKind::Map => Self::entries(v)?
                .iter()
                .all(|(k, val)| !Self::is_collection(k) && !Self::is_collection(val)),
            _ => Self::items(v)?.iter().all(|i| !Self::is_collection(i)),
        })
    }

    fn flow(&mut self, v: &Value, indent: usize) -> Result<(), Error> {
        let inner = indent + self.best_indent;
        if v.kind() == ValueKind::Map {
            self.push("{");
            for (i, (k, val)) in Self::entries(v)?.iter().enumerate() {
                if i > 0 {
                    self.push(",");
                }
                if self.column > WIDTH {
                    self.newline_indent(inner);
                } else if i > 0 {
                    self.push(" ");
                }
                self.scalar(k, true, true, inner)?;
                self.push(":");
                self.push(" ");
                self.node_flow(val, inner)?;
            }
            self.push("}");
        } else {
            self.push("[");
            for (i, item) in Self::items(v)?.iter().enumerate() {
                if i > 0 {
                    self.push(",");
                }
                if self.column > WIDTH {
                    self.newline_indent(inner);
                } else if i > 0 {
                    self.push(" ");
                }
                self.node_flow(item, inner)?;
            }
            self.push("]");
        }
        Ok(())
    }

    fn node_flow(&mut self, v: &Value, indent: usize) -> Result<(), Error> {
        if Self::is_collection(v) {
            self.flow(v, indent)
        } else {
            self.scalar(v, true, false, indent)
        }
    }

    /// A block mapping whose keys start at column `indent`; the first key is written where the
    /// cursor is (after a sequence dash) when `inline_first`.
    fn block_map(&mut self, v: &Value, indent: usize, inline_first: bool) -> Result<(), Error> {
        for (i, (k, val)) in Self::entries(v)?.iter().enumerate() {
            if i > 0 || !inline_first {
                if !self.out.is_empty() || i > 0 {
                    self.newline_indent(indent);
                }
            } else {
                self.pad_to(indent);
            }
            if Self::is_collection(k) {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "to_yaml: a list or dict as a mapping key is not supported",
                ));
            }
            self.scalar(k, false, true, indent + self.best_indent)?;
            self.push(":");
            self.value(val, indent, true)?;
        }
        Ok(())
    }

    /// A block sequence whose dashes are at column `indent`.
    fn block_seq(&mut self, v: &Value, indent: usize, inline_first: bool) -> Result<(), Error> {
        for (i, item) in Self::items(v)?.iter().enumerate() {
            if i > 0 || !inline_first {
                if !self.out.is_empty() || i > 0 {
                    self.newline_indent(indent);
                }
            } else {
                self.pad_to(indent);
            }
            self.push("-");
            let inner = indent + self.best_indent;
            if Self::is_collection(item) && !self.flow_style(item)? {
                if item.kind() == ValueKind::Map {
                    self.block_map(item, inner, true)?;
                } else {
                    self.block_seq(item, inner, true)?;
                }
            } else {
                self.push(" ");
                self.node_inline(item, inner)?;
            }
        }
        Ok(())
    }

    fn node_inline(&mut self, v: &Value, indent: usize) -> Result<(), Error> {
        if Self::is_collection(v) {
            self.flow(v, indent)
        } else {
            self.scalar(v, false, false, indent)
        }
    }

    /// The value after `key:` of a mapping whose keys are at `indent`.
    fn value(&mut self, v: &Value, indent: usize, _in_map: bool) -> Result<(), Error> {
        if Self::is_collection(v) && !self.flow_style(v)? {
            if v.kind() == ValueKind::Map {
                self.block_map(v, indent + self.best_indent, false)
            } else {
                // Sequences in a mapping are not indented.
                self.block_seq(v, indent, false)
            }
        } else {
            self.push(" ");
            self.node_inline(v, indent + self.best_indent)
        }
    }
}

/// `yaml.dump(value, default_flow_style=None if flow else False, indent=indent)`.
pub fn dump(value: &Value, indent: usize, flow: bool) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    let indent = indent.clamp(2, 9);
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        best_indent: indent,
        flow_default: flow,
    };
    if Emitter::is_collection(value) && !e.flow_style(value)? {
        if value.kind() == ValueKind::Map {
            e.block_map(value, 0, true)?;
        } else {
            e.block_seq(value, 0, true)?;
        }
    } else {
        e.node_inline(value, indent)?;
    }
    e.out.push('\n');
    Ok(e.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(j: serde_json::Value) -> Value {
        Value::from(minijinja::value::Serde(j))
    }

    #[test]
    fn nice_and_flow_layouts() {
        let d = v(
            serde_json::json!({"b": [1, 2, {"x": "yes", "y": []}], "a": {"k": "v: w", "n": null, "l": [[1, 2], [3]]}, "s": ""}),
        );
        assert_eq!(
            dump(&d, 2, true).unwrap(),
            "a:\n  k: 'v: w'\n  l:\n  - [1, 2]\n  - [3]\n  n: null\nb:\n- 1\n- 2\n- x: 'yes'\n  y: []\ns: ''\n"
        );
        assert_eq!(
            dump(&d, 4, false).unwrap(),
            "a:\n    k: 'v: w'\n    l:\n    -   - 1\n        - 2\n    -   - 3\n    n: null\nb:\n- 1\n- 2\n-   x: 'yes'\n    y: []\ns: ''\n"
        );
    }

    #[test]
    fn long_strings_fold_at_80_columns() {
        let d = v(serde_json::json!({"long": "word ".repeat(25)}));
        assert_eq!(
            dump(&d, 2, true).unwrap(),
            "{long: 'word word word word word word word word word word word word word word word\n    word word word word word word word word word word '}\n"
        );
    }

    #[test]
    fn multiline_single_quoted() {
        let d = v(serde_json::json!({"m": "multi\nline"}));
        assert_eq!(dump(&d, 2, true).unwrap(), "{m: 'multi\n\n    line'}\n");
    }
}
