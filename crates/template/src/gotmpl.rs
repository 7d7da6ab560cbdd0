//! Go's `text/template` (the language of dockerize, gomplate, confd, consul-template and Helm),
//! strict: `missingkey=error`, as gomplate runs by default.
//!
//! Syntax: `{{ pipeline }}`, `{{- ` / ` -}}` trimming, `{{/* comments */}}`, `if`/`else if`/
//! `else`, `range` (with `$i, $v :=` and `else`), `with`, `define`/`template`/`block`,
//! `break`/`continue`, variables (`$x := …`, `$x = …`, `$`), fields and map keys (`.Env.HOME`,
//! `$v.name`), parenthesised pipelines, string (`"…"`, raw `` `…` ``), number, `true`/`false`/
//! `nil` literals.
//!
//! Functions: Go's builtins (`and`, `or`, `not`, `len`, `index`, `print`, `printf`, `println`,
//! `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `urlquery`, `html`, `js`), dockerize's (`default`,
//! `split`, `replace`, `contains`, `atoi`, `add`, `isTrue`, `exists`, `parseUrl`, `loop`,
//! `upper`, `lower`) and gomplate's most used (`getenv`, `required`, `toJSON`, `toYAML`,
//! `join`, `trim`, `hasPrefix`, `hasSuffix`, `b64enc`, `b64dec`, `strings.*`, `env.Getenv`,
//! `conv.Atoi`). Where two tools order arguments differently (`default`, `join`, `contains`,
//! `replace`) the call is told apart by argument types or count, as README.md explains.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::Engine as _;
use minijinja::Value;
use minijinja::value::ValueKind;

use crate::jinja::RenderError;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action {
        pipe: Pipe,
        pos: usize,
    },
    If {
        branches: Vec<(Pipe, Vec<Node>)>,
        els: Vec<Node>,
    },
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        els: Vec<Node>,
    },
    With {
        branches: Vec<(Pipe, Vec<Node>)>,
        els: Vec<Node>,
    },
    Template {
        name: String,
        pipe: Option<Pipe>,
        pos: usize,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Vec<Arg>>,
    pos: usize,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Sub(Box<Pipe>, Vec<String>),
}

/// The keyword that ended a list, the words after it, and its position.
type End = Option<(String, Vec<Tok>, usize)>;

struct Parser<'a> {
    src: &'a str,
    name: &'a str,
    /// (kind, position): kind is `Text` or the action's inside.
    items: Vec<(bool, String, usize)>,
    i: usize,
    defines: HashMap<String, Vec<Node>>,
}

fn err(name: &str, src: &str, pos: usize, msg: impl Into<String>) -> RenderError {
    RenderError::new(name, format!("{} (read as a Go template)", msg.into())).at(src, pos, pos + 2)
}

/// Split into text and actions, applying `{{-` / `-}}` trimming.
fn lex(name: &str, src: &str) -> Result<Vec<(bool, String, usize)>, RenderError> {
    let mut items: Vec<(bool, String, usize)> = Vec::new();
    let mut rest = 0;
    let mut trim_next = false;
    while let Some(off) = src[rest..].find("{{") {
        let open = rest + off;
        let mut text = &src[rest..open];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let mut inner_start = open + 2;
        let left_trim = src[inner_start..].starts_with("- ")
            || src[inner_start..].starts_with("-\t")
            || src[inner_start..].starts_with("-\n");
        if left_trim {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            inner_start += 1;
        }
        if !text.is_empty() {
            items.push((false, text.to_string(), rest));
        }
        // Find the closing delimiter outside quotes and comments.
        let b = src.as_bytes();
        let mut k = inner_start;
        let mut close = None;
        while k < b.len() {
            match b[k] {
                b'"' => {
                    k += 1;
                    while k < b.len() && b[k] != b'"' {
                        if b[k] == b'\\' {
                            k += 1;
                        }
                        k += 1;
                    }
                    k += 1;
                }
                b'`' => {
                    k += 1;
                    while k < b.len() && b[k] != b'`' {
                        k += 1;
                    }
                    k += 1;
                }
                b'/' if b.get(k + 1) == Some(&b'*') => match src[k + 2..].find("*/") {
                    Some(e) => k = k + 2 + e + 2,
                    None => return Err(err(name, src, open, "unclosed comment")),
                },
                b'}' if b.get(k + 1) == Some(&b'}') => {
                    close = Some(k);
                    break;
                }
                _ => k += 1,
            }
        }
        let Some(close) = close else {
            return Err(err(name, src, open, "unclosed action: no matching }}"));
        };
        let right_trim = close >= inner_start + 2
            && b[close - 1] == b'-'
            && matches!(b[close - 2], b' ' | b'\t' | b'\n');
        let inner_end = if right_trim { close - 1 } else { close };
        items.push((true, src[inner_start..inner_end].to_string(), open));
        trim_next = right_trim;
        rest = close + 2;
    }
    let mut text = &src[rest..];
    if trim_next {
        text = text.trim_start_matches([' ', '\t', '\r', '\n']);
    }
    if !text.is_empty() {
        items.push((false, text.to_string(), rest));
    }
    Ok(items)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Dollar(String),
    Field(String),
    Str(String),
    Num(String),
    Pipe,
    LParen,
    RParen,
    Decl,
    Assign,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let rest: String = c[i..].iter().collect();
            let end = rest.find("*/").ok_or("unclosed comment")?;
            i += rest[..end + 2].chars().count();
        } else if ch == '|' {
            out.push(Tok::Pipe);
            i += 1;
        } else if ch == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if ch == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if ch == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if ch == ':' && c.get(i + 1) == Some(&'=') {
            out.push(Tok::Decl);
            i += 2;
        } else if ch == '=' {
            out.push(Tok::Assign);
            i += 1;
        } else if ch == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&d) = c.get(i) else {
                    return Err("unterminated quoted string".into());
                };
                i += 1;
                match d {
                    '"' => break,
                    '\\' => {
                        let e = *c.get(i).ok_or("unterminated quoted string")?;
                        i += 1;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '\\' => '\\',
                            '"' => '"',
                            '\'' => '\'',
                            '0' => '\0',
                            other => return Err(format!("unknown escape sequence \\{other}")),
                        });
                    }
                    d => s.push(d),
                }
            }
            out.push(Tok::Str(s));
        } else if ch == '`' {
            let start = i + 1;
            let end = c[start..]
                .iter()
                .position(|&x| x == '`')
                .ok_or("unterminated raw quoted string")?;
            out.push(Tok::Str(c[start..start + end].iter().collect()));
            i = start + end + 1;
        } else if ch == '.' && !c.get(i + 1).is_some_and(char::is_ascii_digit) {
            let start = i + 1;
            let mut j = start;
            while j < c.len() && ident(c[j]) {
                j += 1;
            }
            out.push(Tok::Field(c[start..j].iter().collect()));
            i = j;
        } else if ch == '$' {
            let start = i + 1;
            let mut j = start;
            while j < c.len() && ident(c[j]) {
                j += 1;
            }
            out.push(Tok::Dollar(c[start..j].iter().collect()));
            i = j;
        } else if ch.is_ascii_digit()
            || ((ch == '-' || ch == '+' || ch == '.')
                && c.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < c.len()
                && (c[i].is_ascii_alphanumeric()
                    || c[i] == '.'
                    || c[i] == '_'
                    || ((c[i] == '-' || c[i] == '+') && matches!(c[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            out.push(Tok::Num(c[start..i].iter().collect()));
        } else if ident(ch) {
            let start = i;
            while i < c.len() && (ident(c[i]) || c[i] == '.') {
                i += 1;
            }
            out.push(Tok::Word(c[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected {ch:?} in command"));
        }
    }
    Ok(out)
}

impl Parser<'_> {
    fn e(&self, pos: usize, m: impl Into<String>) -> RenderError {
        err(self.name, self.src, pos, m)
    }

    fn pipe(&self, toks: &[Tok], pos: usize, allow_decl: bool) -> Result<Pipe, RenderError> {
        let mut decl = Vec::new();
        let mut assign = false;
        let mut toks = toks;
        // `$x :=`, `$i, $v :=`, `$x =`
        if allow_decl {
            let mut names = Vec::new();
            let mut k = 0;
            while let Some(Tok::Dollar(n)) = toks.get(k) {
                names.push(n.clone());
                k += 1;
                if toks.get(k) == Some(&Tok::Comma) {
                    k += 1;
                } else {
                    break;
                }
            }
            match toks.get(k) {
                Some(Tok::Decl) if !names.is_empty() => {
                    decl = names;
                    toks = &toks[k + 1..];
                }
                Some(Tok::Assign) if names.len() == 1 => {
                    decl = names;
                    assign = true;
                    toks = &toks[k + 1..];
                }
                _ => {}
            }
        }
        let mut cmds = Vec::new();
        let mut cur = Vec::new();
        let mut k = 0;
        while k < toks.len() {
            match &toks[k] {
                Tok::Pipe => {
                    if cur.is_empty() {
                        return Err(self.e(pos, "missing command before |"));
                    }
                    cmds.push(std::mem::take(&mut cur));
                    k += 1;
                }
                Tok::LParen => {
                    let mut depth = 1;
                    let mut j = k + 1;
                    while j < toks.len() && depth > 0 {
                        match toks[j] {
                            Tok::LParen => depth += 1,
                            Tok::RParen => depth -= 1,
                            _ => {}
                        }
                        j += 1;
                    }
                    if depth != 0 {
                        return Err(self.e(pos, "unclosed left paren"));
                    }
                    let inner = self.pipe(&toks[k + 1..j - 1], pos, false)?;
                    let mut fields = Vec::new();
                    while let Some(Tok::Field(f)) = toks.get(j) {
                        fields.push(f.clone());
                        j += 1;
                    }
                    cur.push(Arg::Sub(Box::new(inner), fields));
                    k = j;
                }
                Tok::RParen => return Err(self.e(pos, "unexpected right paren")),
                Tok::Field(f) => {
                    let mut fields = if f.is_empty() {
                        vec![]
                    } else {
                        vec![f.clone()]
                    };
                    k += 1;
                    while let Some(Tok::Field(f)) = toks.get(k) {
                        if f.is_empty() {
                            break;
                        }
                        fields.push(f.clone());
                        k += 1;
                    }
                    cur.push(Arg::Dot(fields));
                }
                Tok::Dollar(n) => {
                    let mut fields = Vec::new();
                    k += 1;
                    while let Some(Tok::Field(f)) = toks.get(k) {
                        fields.push(f.clone());
                        k += 1;
                    }
                    cur.push(Arg::Var(n.clone(), fields));
                }
                Tok::Str(s) => {
                    cur.push(Arg::Str(s.clone()));
                    k += 1;
                }
                Tok::Num(n) => {
                    let clean = n.replace('_', "");
                    let a = if let Some(h) = clean.strip_prefix("0x") {
                        i64::from_str_radix(h, 16).ok().map(Arg::Int)
                    } else {
                        clean
                            .parse::<i64>()
                            .ok()
                            .map(Arg::Int)
                            .or_else(|| clean.parse::<f64>().ok().map(Arg::Float))
                    };
                    cur.push(a.ok_or_else(|| self.e(pos, format!("bad number syntax: {n:?}")))?);
                    k += 1;
                }
                Tok::Word(w) => {
                    cur.push(match w.as_str() {
                        "true" => Arg::Bool(true),
                        "false" => Arg::Bool(false),
                        "nil" => Arg::Nil,
                        _ => Arg::Func(w.clone()),
                    });
                    k += 1;
                }
                Tok::Decl | Tok::Assign | Tok::Comma => {
                    return Err(self.e(pos, "unexpected := , or = in command"));
                }
            }
        }
        if !cur.is_empty() {
            cmds.push(cur);
        }
        if cmds.is_empty() {
            return Err(self.e(pos, "missing value for command"));
        }
        Ok(Pipe {
            decl,
            assign,
            cmds,
            pos,
        })
    }

    /// Parse nodes until one of `ends` (returns which, with its remaining words).
    fn list(&mut self, ends: &[&str]) -> Result<(Vec<Node>, End), RenderError> {
        let mut nodes = Vec::new();
        while self.i < self.items.len() {
            let (is_action, text, pos) = self.items[self.i].clone();
            self.i += 1;
            if !is_action {
                nodes.push(Node::Text(text));
                continue;
            }
            let trimmed = text.trim();
            if trimmed.starts_with("/*") && trimmed.ends_with("*/") {
                continue;
            }
            let toks = tokenize(trimmed).map_err(|m| self.e(pos, m))?;
            let keyword = match toks.first() {
                Some(Tok::Word(w)) => w.as_str(),
                _ => "",
            };
            if ends.contains(&keyword) {
                return Ok((nodes, Some((keyword.to_string(), toks[1..].to_vec(), pos))));
            }
            match keyword {
                "end" | "else" => return Err(self.e(pos, format!("unexpected {{{{{keyword}}}}}"))),
                "if" | "with" => {
                    let mut branches = Vec::new();
                    let mut cond = self.pipe(&toks[1..], pos, keyword == "with")?;
                    let els;
                    loop {
                        let (body, end) = self.list(&["else", "end"])?;
                        branches.push((cond, body));
                        match end {
                            Some((k, rest, p)) if k == "else" => {
                                if matches!(rest.first(), Some(Tok::Word(w)) if w == keyword) {
                                    cond = self.pipe(&rest[1..], p, keyword == "with")?;
                                    continue;
                                }
                                let (e, end2) = self.list(&["end"])?;
                                if end2.is_none() {
                                    return Err(self.e(
                                        pos,
                                        format!("unexpected EOF: {keyword} has no {{{{end}}}}"),
                                    ));
                                }
                                els = e;
                                break;
                            }
                            Some(_) => {
                                els = Vec::new();
                                break;
                            }
                            None => {
                                return Err(self.e(
                                    pos,
                                    format!("unexpected EOF: {keyword} has no {{{{end}}}}"),
                                ));
                            }
                        }
                    }
                    nodes.push(if keyword == "if" {
                        Node::If { branches, els }
                    } else {
                        Node::With { branches, els }
                    });
                }
                "range" => {
                    let pipe = self.pipe(&toks[1..], pos, true)?;
                    let (body, end) = self.list(&["else", "end"])?;
                    let els = match end {
                        Some((k, _, _)) if k == "else" => {
                            let (e, end2) = self.list(&["end"])?;
                            if end2.is_none() {
                                return Err(self.e(pos, "unexpected EOF: range has no {{end}}"));
                            }
                            e
                        }
                        Some(_) => Vec::new(),
                        None => return Err(self.e(pos, "unexpected EOF: range has no {{end}}")),
                    };
                    nodes.push(Node::Range { pipe, body, els });
                }
                "define" | "block" => {
                    let Some(Tok::Str(name)) = toks.get(1) else {
                        return Err(self.e(pos, format!("{keyword} needs a quoted template name")));
                    };
                    let name = name.clone();
                    let pipe = if keyword == "block" {
                        Some(self.pipe(&toks[2..], pos, false)?)
                    } else {
                        None
                    };
                    let (body, end) = self.list(&["end"])?;
                    if end.is_none() {
                        return Err(
                            self.e(pos, format!("unexpected EOF: {keyword} has no {{{{end}}}}"))
                        );
                    }
                    if keyword == "block" {
                        self.defines.entry(name.clone()).or_insert(body);
                        nodes.push(Node::Template { name, pipe, pos });
                    } else {
                        self.defines.insert(name, body);
                    }
                }
                "template" => {
                    let Some(Tok::Str(name)) = toks.get(1) else {
                        return Err(self.e(pos, "template needs a quoted template name"));
                    };
                    let pipe = if toks.len() > 2 {
                        Some(self.pipe(&toks[2..], pos, false)?)
                    } else {
                        None
                    };
                    nodes.push(Node::Template {
                        name: name.clone(),
                        pipe,
                        pos,
                    });
                }
                "break" => nodes.push(Node::Break),
                "continue" => nodes.push(Node::Continue),
                _ => nodes.push(Node::Action {
                    pipe: self.pipe(&toks, pos, true)?,
                    pos,
                }),
            }
        }
        Ok((nodes, None))
    }
}

/// A parsed Go template.
pub struct Template {
    name: String,
    src: String,
    root: Vec<Node>,
    defines: HashMap<String, Vec<Node>>,
}

/// Parse `src` (named `name` in errors).
pub fn parse(name: &str, src: &str) -> Result<Template, RenderError> {
    let items = lex(name, src)?;
    let mut p = Parser {
        src,
        name,
        items,
        i: 0,
        defines: HashMap::new(),
    };
    let (root, end) = p.list(&["end", "else"])?;
    if let Some((k, _, pos)) = end {
        return Err(err(name, src, pos, format!("unexpected {{{{{k}}}}}")));
    }
    Ok(Template {
        name: name.to_string(),
        src: src.to_string(),
        root,
        defines: p.defines,
    })
}

/// Whose conventions a Go template follows where gomplate and dockerize differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// gomplate (and sprig): a missing key is an error (`missingkey=error`), `default DEFAULT
    /// VALUE`.
    #[default]
    Gomplate,
    /// dockerize: a missing key of `.Env` is the empty string (its `.Env` is a Go
    /// `map[string]string`), `default VALUE DEFAULT`.
    Dockerize,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'a> {
    t: &'a Template,
    dialect: Dialect,
    vars: Vec<(String, Value)>,
    out: String,
    depth: usize,
}

fn truthy(v: &Value) -> bool {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => false,
        ValueKind::Bool => v.is_true(),
        ValueKind::Number => v.is_true(),
        ValueKind::String => !v.as_str().unwrap_or_default().is_empty(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => v.len().is_none_or(|n| n > 0),
        _ => true,
    }
}

/// Go's `fmt` `%v`.
pub fn go_string(v: &Value) -> String {
    let mut s = String::new();
    write_go(v, &mut s);
    s
}

fn write_go(v: &Value, out: &mut String) {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("<nil>"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number if v.is_integer() => out.push_str(&v.to_string()),
        ValueKind::Number => {
            let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
            out.push_str(&go_float(f));
        }
        ValueKind::String => out.push_str(v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, x) in v.try_iter().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(&x, out);
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push_str("map[");
            let mut keys: Vec<Value> = v.try_iter().into_iter().flatten().collect();
            keys.sort();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(k, out);
                out.push(':');
                write_go(&v.get_item(k).unwrap_or_default(), out);
            }
            out.push(']');
        }
        _ => out.push_str(&v.to_string()),
    }
}

/// Go's `%v` of a float64: shortest digits, exponent from 1e21 and below 1e-4.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{f:e}");
    let (m, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    if (-4..21).contains(&e) {
        f.to_string()
    } else {
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

impl Exec<'_> {
    fn e(&self, pos: usize, m: impl Into<String>) -> RenderError {
        err(&self.t.name, &self.t.src, pos, m)
    }

    fn var(&self, name: &str, pos: usize) -> Result<Value, RenderError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.e(pos, format!("undefined variable: ${name}")))
    }

    fn field(&self, mut v: Value, fields: &[String], pos: usize) -> Result<Value, RenderError> {
        for f in fields {
            match v.kind() {
                ValueKind::Map => {
                    let x = v.get_item(&Value::from(f.as_str())).unwrap_or_default();
                    if x.is_undefined() && self.dialect == Dialect::Dockerize {
                        v = Value::from("");
                        continue;
                    }
                    if x.is_undefined() {
                        return Err(self.e(
                            pos,
                            format!("map has no entry for key {f:?} (missingkey=error)"),
                        ));
                    }
                    v = x;
                }
                ValueKind::None | ValueKind::Undefined => {
                    return Err(self.e(pos, format!("nil pointer evaluating .{f}")));
                }
                _ => return Err(self.e(pos, format!("can't evaluate field {f} in a {}", v.kind()))),
            }
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &Value, pos: usize) -> Result<Value, RenderError> {
        Ok(match a {
            Arg::Dot(f) => self.field(dot.clone(), f, pos)?,
            Arg::Var(n, f) => {
                let v = self.var(n, pos)?;
                self.field(v, f, pos)?
            }
            Arg::Str(s) => Value::from(s.as_str()),
            Arg::Int(i) => Value::from(*i),
            Arg::Float(f) => Value::from(*f),
            Arg::Bool(b) => Value::from(*b),
            Arg::Nil => Value::from(()),
            Arg::Sub(p, f) => {
                let v = self.pipe(p, dot)?;
                self.field(v, f, pos)?
            }
            Arg::Func(name) => self.call(name, Vec::new(), pos)?,
        })
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, RenderError> {
        let mut last: Option<Value> = None;
        for cmd in &p.cmds {
            let v = match &cmd[0] {
                Arg::Func(name) if !matches!(name.as_str(), "") => {
                    let mut args = Vec::new();
                    // `and`/`or` stop at the first decisive value.
                    for a in &cmd[1..] {
                        args.push(self.arg(a, dot, p.pos)?);
                    }
                    if let Some(l) = last.take() {
                        args.push(l);
                    }
                    self.call(name, args, p.pos)?
                }
                first => {
                    if cmd.len() > 1 || last.is_some() {
                        return Err(self.e(p.pos, "can't give argument to non-function"));
                    }
                    self.arg(first, dot, p.pos)?
                }
            };
            last = Some(v);
        }
        let v = last.unwrap_or_default();
        if !p.decl.is_empty() && p.decl.len() == 1 {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| *n == p.decl[0]) {
                    Some(slot) => slot.1 = v.clone(),
                    None => {
                        return Err(self.e(p.pos, format!("undefined variable: ${}", p.decl[0])));
                    }
                }
            } else {
                self.vars.push((p.decl[0].clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn call(&mut self, name: &str, args: Vec<Value>, pos: usize) -> Result<Value, RenderError> {
        call(name, args, self.dialect).map_err(|m| self.e(pos, format!("{name}: {m}")))
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, RenderError> {
        let mark = self.vars.len();
        let r = self.nodes_inner(nodes, dot);
        self.vars.truncate(mark);
        r
    }

    fn nodes_inner(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, RenderError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action { pipe, pos } => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        if v.is_undefined() {
                            return Err(self.e(*pos, "no value"));
                        }
                        write_go(&v, &mut self.out);
                    }
                }
                Node::If { branches, els } | Node::With { branches, els } => {
                    let with = matches!(n, Node::With { .. });
                    let mut done = false;
                    for (cond, body) in branches {
                        let mark = self.vars.len();
                        let v = self.pipe(cond, dot)?;
                        if truthy(&v) {
                            let f = self.nodes(body, if with { &v } else { dot })?;
                            self.vars.truncate(mark);
                            if !matches!(f, Flow::Normal) {
                                return Ok(f);
                            }
                            done = true;
                            break;
                        }
                        self.vars.truncate(mark);
                    }
                    if !done {
                        let f = self.nodes(els, dot)?;
                        if !matches!(f, Flow::Normal) {
                            return Ok(f);
                        }
                    }
                }
                Node::Range { pipe, body, els } => {
                    let bare = Pipe {
                        decl: vec![],
                        assign: false,
                        ..pipe.clone()
                    };
                    let v = self.pipe(&bare, dot)?;
                    let items: Vec<(Value, Value)> = match v.kind() {
                        ValueKind::Map => {
                            let mut keys: Vec<Value> = v.try_iter().into_iter().flatten().collect();
                            keys.sort();
                            keys.into_iter()
                                .map(|k| {
                                    let x = v.get_item(&k).unwrap_or_default();
                                    (k, x)
                                })
                                .collect()
                        }
                        ValueKind::Seq | ValueKind::Iterable => v
                            .try_iter()
                            .into_iter()
                            .flatten()
                            .enumerate()
                            .map(|(i, x)| (Value::from(i), x))
                            .collect(),
                        ValueKind::Number if v.is_integer() => {
                            let n = v.as_i64().unwrap_or(0).max(0);
                            if n > 1_000_000 {
                                return Err(self.e(
                                    pipe.pos,
                                    format!("range over {n}: more than a million iterations"),
                                ));
                            }
                            (0..n).map(|i| (Value::from(i), Value::from(i))).collect()
                        }
                        ValueKind::None | ValueKind::Undefined => Vec::new(),
                        _ => {
                            return Err(self.e(
                                pipe.pos,
                                format!("range can't iterate over {}", go_string(&v)),
                            ));
                        }
                    };
                    if items.is_empty() {
                        let f = self.nodes(els, dot)?;
                        if !matches!(f, Flow::Normal) {
                            return Ok(f);
                        }
                        continue;
                    }
                    for (k, x) in items {
                        let mark = self.vars.len();
                        match pipe.decl.as_slice() {
                            [v1] => self.vars.push((v1.clone(), x.clone())),
                            [k1, v1] => {
                                self.vars.push((k1.clone(), k));
                                self.vars.push((v1.clone(), x.clone()));
                            }
                            _ => {}
                        }
                        let f = self.nodes(body, &x)?;
                        self.vars.truncate(mark);
                        if matches!(f, Flow::Break) {
                            break;
                        }
                    }
                }
                Node::Template { name, pipe, pos } => {
                    let body = self
                        .t
                        .defines
                        .get(name)
                        .ok_or_else(|| self.e(*pos, format!("no such template {name:?}")))?
                        .clone();
                    let d = match pipe {
                        Some(p) => self.pipe(p, dot)?,
                        None => Value::from(()),
                    };
                    self.depth += 1;
                    if self.depth > 100 {
                        return Err(self.e(*pos, "exceeded maximum template depth (100)"));
                    }
                    let saved = std::mem::replace(&mut self.vars, vec![(String::new(), d.clone())]);
                    let r = self.nodes(&body, &d);
                    self.vars = saved;
                    self.depth -= 1;
                    r?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
            if self.out.len() > crate::jinja::max_output() {
                return Err(RenderError::new(
                    &self.t.name,
                    crate::jinja::too_large_message("the output"),
                ));
            }
        }
        Ok(Flow::Normal)
    }
}

impl Template {
    /// Render with `data` as dot (and `$`).
    pub fn render(&self, data: &Value, dialect: Dialect) -> Result<String, RenderError> {
        let mut x = Exec {
            t: self,
            dialect,
            vars: vec![(String::new(), data.clone())],
            out: String::new(),
            depth: 0,
        };
        x.nodes(&self.root, data)?;
        Ok(x.out)
    }
}

fn want_str(v: &Value) -> Result<String, String> {
    match v.kind() {
        ValueKind::String => Ok(v.as_str().unwrap_or_default().to_string()),
        ValueKind::Number | ValueKind::Bool => Ok(go_string(v)),
        _ => Err(format!("expected a string, got {}", go_string(v))),
    }
}

fn arity(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("wrong number of args: want {n} got {}", args.len()))
    }
}

fn cmp(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    let num = |v: &Value| v.kind() == ValueKind::Number;
    if num(a) && num(b) {
        let (x, y) = (
            f64::try_from(a.clone()).unwrap_or(0.0),
            f64::try_from(b.clone()).unwrap_or(0.0),
        );
        return x.partial_cmp(&y).ok_or_else(|| "incomparable".to_string());
    }
    if a.kind() == ValueKind::String && b.kind() == ValueKind::String {
        return Ok(a.as_str().cmp(&b.as_str()));
    }
    if a.kind() == ValueKind::Bool && b.kind() == ValueKind::Bool {
        return Ok(a.is_true().cmp(&b.is_true()));
    }
    Err("incompatible types for comparison".into())
}

fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = format.chars().peekable();
    let mut n = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = it.peek() {
            if d.is_ascii_digit() || d == '-' || d == '.' || d == '+' || d == ' ' || d == '0' {
                spec.push(d);
                it.next();
            } else {
                break;
            }
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.get(n) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        n += 1;
        let body = match verb {
            'q' => format!("{:?}", go_string(a)),
            'd' => a
                .as_i64()
                .map(|i| i.to_string())
                .unwrap_or_else(|| format!("%!d({})", go_string(a))),
            'f' => {
                let prec = spec
                    .split_once('.')
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(6);
                format!("{:.*}", prec, f64::try_from(a.clone()).unwrap_or(0.0))
            }
            'x' => a
                .as_i64()
                .map(|i| format!("{i:x}"))
                .unwrap_or_else(|| go_string(a).bytes().map(|b| format!("{b:02x}")).collect()),
            't' | 's' | 'v' => go_string(a),
            other => format!("%!{other}({})", go_string(a)),
        };
        let width: usize = spec
            .trim_start_matches(['-', '+', ' '])
            .split('.')
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or(0)
            // A width past 64 Ki is no formatting but a way to multiply the output.
            .min(1 << 16);
        let len = body.chars().count();
        if width > len {
            let pad = if spec.starts_with('0') && !spec.starts_with('-') {
                "0"
            } else {
                " "
            }
            .repeat(width - len);
            if spec.starts_with('-') {
                out.push_str(&body);
                out.push_str(&pad);
            } else {
                out.push_str(&pad);
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    if n < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[n..].iter().map(go_string).collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn is_true_word(s: &str) -> Result<bool, String> {
    // Go's strconv.ParseBool.
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

fn call(name: &str, a: Vec<Value>, dialect: Dialect) -> Result<Value, String> {
    let s = |i: usize| want_str(&a[i]);
    Ok(match name {
        "and" => a
            .iter()
            .find(|v| !truthy(v))
            .or(a.last())
            .cloned()
            .unwrap_or_default(),
        "or" => a
            .iter()
            .find(|v| truthy(v))
            .or(a.last())
            .cloned()
            .unwrap_or_default(),
        "not" => {
            arity(&a, 1)?;
            Value::from(!truthy(&a[0]))
        }
        "len" => {
            arity(&a, 1)?;
            Value::from(match a[0].kind() {
                ValueKind::String => a[0].as_str().unwrap_or_default().len(),
                _ => a[0].len().ok_or("len of a value that has none")?,
            })
        }
        "index" => {
            let mut v = a.first().cloned().ok_or("wrong number of args")?;
            for k in &a[1..] {
                v = match v.kind() {
                    ValueKind::Map => v
                        .get_item(k)
                        .ok()
                        .filter(|x| !x.is_undefined())
                        .unwrap_or_default(),
                    ValueKind::Seq => {
                        let i = k
                            .as_i64()
                            .ok_or("cannot index slice/array with a non-integer")?;
                        let n = v.len().unwrap_or(0) as i64;
                        if i < 0 || i >= n {
                            return Err(format!("error calling index: index out of range: {i}"));
                        }
                        v.get_item(k).map_err(|e| e.to_string())?
                    }
                    _ => return Err(format!("can't index item of type {}", v.kind())),
                };
            }
            v
        }
        "print" => {
            let mut out = String::new();
            for (i, v) in a.iter().enumerate() {
                if i > 0 && v.kind() != ValueKind::String && a[i - 1].kind() != ValueKind::String {
                    out.push(' ');
                }
                out.push_str(&go_string(v));
            }
            Value::from(out)
        }
        "println" => Value::from(a.iter().map(go_string).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            let f = s(0)?;
            Value::from(sprintf(&f, &a[1..]))
        }
        "eq" => {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            Value::from(
                a[1..]
                    .iter()
                    .any(|b| cmp(&a[0], b).map(|o| o.is_eq()).unwrap_or(false)),
            )
        }
        "ne" => {
            arity(&a, 2)?;
            Value::from(!cmp(&a[0], &a[1])?.is_eq())
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(&a, 2)?;
            let o = cmp(&a[0], &a[1])?;
            Value::from(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "urlquery" => Value::from(
            crate::python::url_quote(&a.iter().map(go_string).collect::<String>(), "")
                .replace("%20", "+"),
        ),
        "html" => Value::from(
            a.iter()
                .map(go_string)
                .collect::<String>()
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;"),
        ),
        // dockerize and gomplate.
        "getenv" | "env.Getenv" => {
            if a.is_empty() || a.len() > 2 {
                return Err("wrong number of args: want 1 or 2".into());
            }
            let v = std::env::var(s(0)?).ok().filter(|v| !v.is_empty());
            match (v, a.get(1)) {
                (Some(v), _) => Value::from(v),
                (None, Some(d)) => d.clone(),
                (None, None) => Value::from(""),
            }
        }
        "default" => {
            arity(&a, 2)?;
            // sprig/gomplate: default DEFAULT VALUE (VALUE piped last); dockerize: VALUE DEFAULT.
            let (value, fallback) = match dialect {
                Dialect::Gomplate => (&a[1], &a[0]),
                Dialect::Dockerize => (&a[0], &a[1]),
            };
            if truthy(value) {
                value.clone()
            } else {
                fallback.clone()
            }
        }
        "required" | "conv.Required" => {
            let (msg, v) = match a.len() {
                1 => (None, &a[0]),
                2 => (Some(s(0)?), &a[1]),
                _ => return Err("wrong number of args: want 1 or 2".into()),
            };
            if v.is_none()
                || v.is_undefined()
                || (v.kind() == ValueKind::String && v.as_str() == Some(""))
            {
                return Err(msg.unwrap_or_else(|| {
                    "can not render template: a required value was not set".into()
                }));
            }
            v.clone()
        }
        "split" => {
            arity(&a, 2)?;
            // dockerize: split STRING SEP (Go's strings.Split).
            Value::from(
                s(0)?
                    .split(s(1)?.as_str())
                    .map(String::from)
                    .collect::<Vec<_>>(),
            )
        }
        "strings.Split" => {
            arity(&a, 2)?;
            // gomplate: strings.Split SEP INPUT.
            Value::from(
                s(1)?
                    .split(s(0)?.as_str())
                    .map(String::from)
                    .collect::<Vec<_>>(),
            )
        }
        "join" | "strings.Join" | "conv.Join" => {
            arity(&a, 2)?;
            let (list, sep) = if a[0].kind() == ValueKind::Seq {
                (&a[0], s(1)?)
            } else {
                (&a[1], s(0)?)
            };
            let items: Vec<String> = list
                .try_iter()
                .map_err(|e| e.to_string())?
                .map(|v| go_string(&v))
                .collect();
            Value::from(items.join(&sep))
        }
        "replace" => match a.len() {
            // dockerize: replace S OLD NEW N (Go's strings.Replace).
            4 => {
                let n = a[3].as_i64().ok_or("n must be an integer")?;
                let (src, old, new) = (s(0)?, s(1)?, s(2)?);
                Value::from(if n < 0 {
                    src.replace(&old, &new)
                } else {
                    src.replacen(&old, &new, n as usize)
                })
            }
            // sprig/gomplate: replace OLD NEW S.
            3 => Value::from(s(2)?.replace(&s(0)?, &s(1)?)),
            _ => return Err("wrong number of args: want 3 or 4".into()),
        },
        "strings.ReplaceAll" => {
            arity(&a, 3)?;
            Value::from(s(2)?.replace(&s(0)?, &s(1)?))
        }
        "contains" | "strings.Contains" => {
            arity(&a, 2)?;
            if a[0].kind() == ValueKind::Map {
                // dockerize: contains MAP KEY.
                Value::from(a[0].get_item(&a[1]).is_ok_and(|v| !v.is_undefined()))
            } else if name == "contains"
                && a[1].kind() == ValueKind::String
                && a[0].kind() == ValueKind::String
            {
                // sprig: contains SUBSTR S.
                Value::from(s(1)?.contains(&s(0)?))
            } else {
                Value::from(s(1)?.contains(&s(0)?))
            }
        }
        "hasPrefix" | "strings.HasPrefix" => {
            arity(&a, 2)?;
            Value::from(s(1)?.starts_with(&s(0)?))
        }
        "hasSuffix" | "strings.HasSuffix" => {
            arity(&a, 2)?;
            Value::from(s(1)?.ends_with(&s(0)?))
        }
        "upper" | "strings.ToUpper" => {
            arity(&a, 1)?;
            Value::from(s(0)?.to_uppercase())
        }
        "lower" | "strings.ToLower" => {
            arity(&a, 1)?;
            Value::from(s(0)?.to_lowercase())
        }
        "trim" | "strings.TrimSpace" => {
            arity(&a, 1)?;
            Value::from(s(0)?.trim().to_string())
        }
        "strings.Trim" => {
            arity(&a, 2)?;
            let cut = s(0)?;
            Value::from(s(1)?.trim_matches(|c| cut.contains(c)).to_string())
        }
        "strings.TrimPrefix" => {
            arity(&a, 2)?;
            let (p, v) = (s(0)?, s(1)?);
            Value::from(v.strip_prefix(p.as_str()).unwrap_or(&v).to_string())
        }
        "strings.TrimSuffix" => {
            arity(&a, 2)?;
            let (p, v) = (s(0)?, s(1)?);
            Value::from(v.strip_suffix(p.as_str()).unwrap_or(&v).to_string())
        }
        "strings.Repeat" => {
            arity(&a, 2)?;
            let n = a[0].as_i64().ok_or("count must be an integer")?.max(0) as usize;
            let v = s(1)?;
            if v.len().saturating_mul(n) > crate::jinja::max_output() {
                return Err(crate::jinja::too_large_message("strings.Repeat"));
            }
            Value::from(v.repeat(n))
        }
        "strings.Title" | "title" => {
            arity(&a, 1)?;
            let mut out = String::new();
            let mut start = true;
            for c in s(0)?.chars() {
                if start && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            Value::from(out)
        }
        "b64enc" | "base64.Encode" => {
            arity(&a, 1)?;
            Value::from(base64::engine::general_purpose::STANDARD.encode(s(0)?))
        }
        "b64dec" | "base64.Decode" => {
            arity(&a, 1)?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(s(0)?.trim())
                .map_err(|_| "illegal base64 data")?;
            Value::from(String::from_utf8(b).map_err(|_| "the decoded data is not UTF-8 text")?)
        }
        "atoi" | "conv.Atoi" => {
            arity(&a, 1)?;
            // dockerize: strconv.Atoi, errors ignored (0); gomplate conv.Atoi the same.
            Value::from(s(0)?.trim().parse::<i64>().unwrap_or(0))
        }
        "add" => {
            arity(&a, 2)?;
            let (x, y) = (
                a[0].as_i64().ok_or("add: integers only")?,
                a[1].as_i64().ok_or("add: integers only")?,
            );
            Value::from(x.checked_add(y).ok_or("integer overflow")?)
        }
        "isTrue" => {
            arity(&a, 1)?;
            Value::from(is_true_word(&s(0)?).unwrap_or(false))
        }
        "exists" => {
            arity(&a, 1)?;
            Value::from(std::path::Path::new(&s(0)?).exists())
        }
        "loop" => {
            let n: Vec<i64> = a
                .iter()
                .map(|v| v.as_i64().ok_or("loop: integers only"))
                .collect::<Result<_, _>>()?;
            let (start, stop, step) = match n.as_slice() {
                [stop] => (0, *stop, 1),
                [start, stop] => (*start, *stop, 1),
                [start, stop, step] if *step != 0 => (*start, *stop, *step),
                _ => return Err("loop takes 1 to 3 integers (step not 0)".into()),
            };
            let mut v = Vec::new();
            let mut i = start;
            while (step > 0 && i < stop) || (step < 0 && i > stop) {
                v.push(i);
                i += step;
                if v.len() > 1_000_000 {
                    return Err("loop: more than a million items".into());
                }
            }
            Value::from(v)
        }
        "toJSON" | "data.ToJSON" | "toJson" => {
            arity(&a, 1)?;
            let j = crate::python::Json {
                item_sep: ",".into(),
                key_sep: ":".into(),
                ensure_ascii: false,
                sort_keys: true,
                ..Default::default()
            };
            Value::from(j.dumps(&a[0]).map_err(|e| e.to_string())?)
        }
        "toYAML" | "data.ToYAML" => {
            arity(&a, 1)?;
            Value::from(crate::pyyaml::dump(&a[0], 2, false).map_err(|e| e.to_string())?)
        }
        "parseUrl" => {
            arity(&a, 1)?;
            let u = s(0)?;
            let (scheme, rest) = u.split_once("://").ok_or("not an absolute URL")?;
            let (host, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            let mut m = indexmap::IndexMap::new();
            m.insert(Value::from("Scheme"), Value::from(scheme));
            m.insert(Value::from("Host"), Value::from(host));
            m.insert(
                Value::from("Path"),
                Value::from(path.split(['?', '#']).next().unwrap_or("")),
            );
            Value::from_object(m)
        }
        _ => return Err(format!("function {name:?} not defined")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(src: &str, data: serde_json::Value) -> Result<String, String> {
        let v = Value::from(minijinja::value::Serde(data));
        parse("t", src)
            .and_then(|t| t.render(&v, Dialect::Gomplate))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn basics() {
        let d =
            serde_json::json!({"Env": {"HOST": "db", "MODE": "prod", "HOSTS": "a,b,c"}, "n": 3});
        assert_eq!(r("{{ .Env.HOST }}:{{ .n }}", d.clone()).unwrap(), "db:3");
        assert_eq!(
            r(
                "{{ if eq .Env.MODE \"prod\" }}P{{ else }}D{{ end }}",
                d.clone()
            )
            .unwrap(),
            "P"
        );
        assert_eq!(
            r(
                "{{ range $i, $h := split .Env.HOSTS \",\" }}{{ $i }}={{ $h }};{{ end }}",
                d.clone()
            )
            .unwrap(),
            "0=a;1=b;2=c;"
        );
        assert_eq!(r("a  {{- .n -}}  b", d.clone()).unwrap(), "a3b");
        assert!(
            r("{{ .Env.NOPE }}", d.clone())
                .unwrap_err()
                .contains("NOPE")
        );
    }
}
