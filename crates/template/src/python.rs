//! Python's own conversions, as Jinja2 and Ansible use them: `repr()` of floats, strings, lists
//! and dicts (what `{{ value }}` prints), `int()`/`float()` parsing, `str.splitlines()`,
//! `shlex.quote()`, `urllib.parse.quote()` and `json.dumps()`.
//!
//! These are ports of CPython's documented rules, so a template prints the same bytes under
//! initbox as under Python's jinja2.

use std::fmt::Write as _;

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};

/// `repr(float)`: the shortest round-trip digits, exponent form below 1e-4 and from 1e16.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let mut s = f.to_string();
        if !s.contains('.') {
            s.push_str(".0");
        }
        s
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// `repr(str)`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `repr()` of a value inside a list or dict (strings quoted), and `str()` at the top.
pub fn repr(value: &Value, out: &mut String) {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => number(value, out),
        ValueKind::String => out.push_str(&str_repr(value.as_str().unwrap_or_default())),
        ValueKind::Bytes => {
            out.push('b');
            out.push_str(&str_repr(&String::from_utf8_lossy(
                value.as_bytes().unwrap_or_default(),
            )));
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let (open, close) = if value.is_tuple() {
                ('(', ')')
            } else {
                ('[', ']')
            };
            out.push(open);
            let mut n = 0;
            if let Ok(items) = value.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    repr(&item, out);
                    n += 1;
                }
            }
            if open == '(' && n == 1 {
                out.push(',');
            }
            out.push(close);
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(keys) = value.try_iter() {
                for (i, k) in keys.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    repr(&k, out);
                    out.push_str(": ");
                    repr(&value.get_item(&k).unwrap_or_default(), out);
                }
            }
            out.push('}');
        }
        _ => out.push_str(&value.to_string()),
    }
}

fn number(value: &Value, out: &mut String) {
    if value.is_integer() {
        out.push_str(&value.to_string());
    } else {
        match f64::try_from(value.clone()) {
            Ok(f) => out.push_str(&float_repr(f)),
            Err(_) => out.push_str(&value.to_string()),
        }
    }
}

/// `str(value)`: what `{{ value }}` prints in Jinja2.
pub fn to_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        ValueKind::None => "None".into(),
        ValueKind::Undefined => String::new(),
        ValueKind::Bool | ValueKind::Number | ValueKind::Seq | ValueKind::Map => {
            let mut s = String::new();
            repr(value, &mut s);
            s
        }
        _ => value.to_string(),
    }
}

/// `str.splitlines()` (without the line ends).
pub fn splitlines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let brk = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if brk {
            out.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r'
                && let Some(&(j, '\n')) = it.peek()
            {
                it.next();
                end = j + 1;
            }
            start = end;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn digits_ok(d: &str, base: u32) -> bool {
    // Underscores only between digits.
    !d.is_empty()
        && !d.starts_with('_')
        && !d.ends_with('_')
        && !d.contains("__")
        && d.chars().all(|c| c == '_' || c.is_digit(base))
}

/// `int(text, base)`: surrounding whitespace, a sign, underscores between digits, and the
/// `0x`/`0o`/`0b` prefix of its base (any prefix with base 0).
pub fn parse_int(text: &str, base: u32) -> Option<i128> {
    let t = text.trim();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = rest.to_ascii_lowercase();
    let (base, digits) = match (base, lower.get(..2)) {
        (0 | 16, Some("0x")) => (16, &rest[2..]),
        (0 | 8, Some("0o")) => (8, &rest[2..]),
        (0 | 2, Some("0b")) => (2, &rest[2..]),
        (0, _) => {
            if rest.len() > 1 && rest.starts_with('0') && rest.chars().any(|c| c != '0' && c != '_')
            {
                return None;
            }
            (10, rest)
        }
        (b, _) => (b, rest),
    };
    let digits = if base != 10 && digits.starts_with('_') && rest.len() > digits.len() {
        &digits[1..]
    } else {
        digits
    };
    if !(2..=36).contains(&base) || !digits_ok(digits, base) {
        return None;
    }
    let n = i128::from_str_radix(&digits.replace('_', ""), base).ok()?;
    Some(if neg { -n } else { n })
}

/// `float(text)`.
pub fn parse_float(text: &str) -> Option<f64> {
    let t = text.trim();
    let body = t.trim_start_matches(['+', '-']);
    if t.len() - body.len() > 1 {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return t.to_ascii_lowercase().parse().ok();
    }
    // Digits, one '.', an exponent; underscores only between digits.
    let mut prev_digit = false;
    let b: Vec<char> = body.chars().collect();
    for (i, c) in b.iter().enumerate() {
        match c {
            '0'..='9' => prev_digit = true,
            '_' => {
                if !prev_digit || !b.get(i + 1).is_some_and(char::is_ascii_digit) {
                    return None;
                }
                prev_digit = false;
            }
            '.' | 'e' | 'E' | '+' | '-' => prev_digit = false,
            _ => return None,
        }
    }
    let cleaned = t.replace('_', "");
    if cleaned.ends_with(['e', 'E']) || !cleaned.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    cleaned.parse().ok()
}

/// `shlex.quote()`: safe words stay bare, anything else is single-quoted.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// `urllib.parse.quote(s, safe)`: UTF-8 bytes percent-encoded, except letters, digits,
/// `_.-~` and `safe`.
pub fn url_quote(s: &str, safe: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let c = b as char;
        if b.is_ascii_alphanumeric() || "_.-~".contains(c) || (b.is_ascii() && safe.contains(c)) {
            out.push(c);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `json.dumps()` options.
#[derive(Debug, Clone)]
pub struct Json {
    pub indent: Option<String>,
    pub sort_keys: bool,
    pub ensure_ascii: bool,
    pub item_sep: String,
    pub key_sep: String,
    /// Jinja2's `tojson`: `<`, `>`, `&`, `'` as `\u003c` ... (HTML-safe).
    pub html_safe: bool,
}

impl Default for Json {
    fn default() -> Self {
        Json {
            indent: None,
            sort_keys: false,
            ensure_ascii: true,
            item_sep: ", ".into(),
            key_sep: ": ".into(),
            html_safe: false,
        }
    }
}

fn json_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

impl Json {
    /// With `indent`, Python's separators default to `,` and `: `.
    pub fn with_indent(mut self, indent: Option<String>) -> Self {
        if indent.is_some() {
            self.item_sep = ",".into();
        }
        self.indent = indent;
        self
    }

    pub fn dumps(&self, value: &Value) -> Result<String, Error> {
        let mut out = String::new();
        self.write(value, 0, &mut out)?;
        Ok(out)
    }

    fn string(&self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '<' | '>' | '&' | '\'' if self.html_safe => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if !c.is_ascii() && self.ensure_ascii => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn newline(&self, level: usize, out: &mut String) {
        if let Some(ind) = &self.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(ind);
            }
        }
    }

    fn write(&self, v: &Value, level: usize, out: &mut String) -> Result<(), Error> {
        match v.kind() {
            ValueKind::Undefined => return Err(Error::from(ErrorKind::UndefinedError)),
            ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if v.is_integer() {
                    out.push_str(&v.to_string());
                } else {
                    let f = f64::try_from(v.clone()).map_err(|e| json_err(e.to_string()))?;
                    out.push_str(&match float_repr(f).as_str() {
                        "nan" => "NaN".to_string(),
                        "inf" => "Infinity".to_string(),
                        "-inf" => "-Infinity".to_string(),
                        s => s.to_string(),
                    });
                }
            }
            ValueKind::String => self.string(v.as_str().unwrap_or_default(), out),
            ValueKind::Bytes => {
                return Err(json_err("Object of type bytes is not JSON serializable"));
            }
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(level + 1, out);
                    self.write(item, level + 1, out)?;
                }
                self.newline(level, out);
                out.push(']');
            }
            ValueKind::Map => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if keys.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                if self.sort_keys {
                    keys.sort();
                }
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(level + 1, out);
                    match k.kind() {
                        ValueKind::String => self.string(k.as_str().unwrap_or_default(), out),
                        ValueKind::None => out.push_str("\"null\""),
                        ValueKind::Bool | ValueKind::Number => {
                            let mut s = String::new();
                            self.write(k, 0, &mut s)?;
                            self.string(&s, out);
                        }
                        _ => {
                            return Err(json_err(
                                "keys must be str, int, float, bool or None".to_string(),
                            ));
                        }
                    }
                    out.push_str(&self.key_sep);
                    self.write(&v.get_item(k)?, level + 1, out)?;
                }
                self.newline(level, out);
                out.push('}');
            }
            _ => self.string(&v.to_string(), out),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_does() {
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1.5e-5), "1.5e-05");
        assert_eq!(float_repr(123456.789), "123456.789");
        assert_eq!(float_repr(0.0001), "0.0001");
    }

    #[test]
    fn ints_and_floats_parse_as_python_does() {
        assert_eq!(parse_int(" 42 ", 10), Some(42));
        assert_eq!(parse_int("1_000", 10), Some(1000));
        assert_eq!(parse_int("0x1A", 16), Some(26));
        assert_eq!(parse_int("0x1A", 0), Some(26));
        assert_eq!(parse_int("017", 0), None);
        assert_eq!(parse_int("1__0", 10), None);
        assert_eq!(parse_int("42.5", 10), None);
        assert_eq!(parse_int("-7", 10), Some(-7));
        assert_eq!(parse_float(" 1e3 "), Some(1000.0));
        assert_eq!(parse_float("4.2.1"), None);
        assert_eq!(parse_float("abc"), None);
        assert_eq!(parse_float("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float("1_0.5"), Some(10.5));
    }

    #[test]
    fn splitlines_like_python() {
        assert_eq!(splitlines("a\nb\n"), vec!["a", "b"]);
        assert_eq!(splitlines("a\r\nb\rc"), vec!["a", "b", "c"]);
        assert_eq!(splitlines("a\n\nb"), vec!["a", "", "b"]);
        assert_eq!(splitlines(""), Vec::<&str>::new());
    }

    #[test]
    fn shell_and_url_quoting() {
        assert_eq!(shell_quote("plain-word_1.conf"), "plain-word_1.conf");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(url_quote("a b/c&é", "/"), "a%20b/c%26%C3%A9");
    }

    #[test]
    fn reprs() {
        let v = Value::from(minijinja::value::Serde(
            serde_json::json!({"a": [1, "x", null, true, 1.5]}),
        ));
        assert_eq!(to_str(&v), "{'a': [1, 'x', None, True, 1.5]}");
        assert_eq!(str_repr("it's"), "\"it's\"");
    }
}
