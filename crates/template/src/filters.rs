//! Filters and tests with Jinja2's and Ansible's semantics (ansible-core's `core`,
//! `mathstuff`, `urlsplit` filter plugins and `core` test plugin), registered over minijinja's
//! builtins where those differ. The README's filter table lists each one with its source.

use indexmap::IndexMap;
use minijinja::value::{ArgType, Kwargs, ObjectRepr, Rest, Tuple, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use crate::python;

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Refuse a result of `n` bytes past the output limit before building it.
pub(crate) fn bounded(n: usize, what: &str) -> Result<(), Error> {
    if n > crate::jinja::max_output() {
        return Err(invalid(crate::jinja::too_large_message(what)));
    }
    Ok(())
}

fn defined(v: &Value) -> Result<(), Error> {
    if v.is_undefined() {
        Err(Error::from(ErrorKind::UndefinedError))
    } else {
        Ok(())
    }
}

/// An argument that may come by keyword or by position, as Python passes them: the keyword
/// wins.
pub(crate) fn arg<'a, T>(
    kwargs: &'a Kwargs,
    name: &'a str,
    positional: Option<T>,
) -> Result<Option<T>, Error>
where
    T: ArgType<'a, Output = T>,
{
    Ok(kwargs.get::<Option<T>>(name)?.or(positional))
}

/// The `ignorecase=` and `multiline=` keywords of Ansible's regex filters and tests.
fn regex_flags(kwargs: &Kwargs) -> Result<(bool, bool), Error> {
    Ok((
        kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
        kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false),
    ))
}

/// The `key_name=` and `value_name=` keywords of `dict2items` and `items2dict`.
fn item_names(kwargs: &Kwargs) -> Result<(String, String), Error> {
    Ok((
        kwargs
            .get::<Option<String>>("key_name")?
            .unwrap_or_else(|| "key".into()),
        kwargs
            .get::<Option<String>>("value_name")?
            .unwrap_or_else(|| "value".into()),
    ))
}

/// Register every filter and test of this module.
pub fn register(env: &mut Environment<'static>) {
    // Jinja2 builtins whose minijinja versions differ.
    env.add_filter("int", int);
    env.add_filter("float", float);
    env.add_filter("wordwrap", wordwrap);
    env.add_filter("xmlattr", xmlattr);
    env.add_filter("forceescape", forceescape);
    env.add_filter("urlencode", urlencode);
    env.add_filter("string", |v: &Value| -> Result<String, Error> {
        defined(v)?;
        Ok(python::to_str(v))
    });
    env.add_filter("format", format);
    env.add_test("callable", is_callable);
    // Ansible core filters.
    env.add_filter("bool", to_bool);
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_nice_yaml);
    env.add_filter("quote", quote);
    env.add_filter("basename", |s: String| {
        s[s.rfind('/').map_or(0, |i| i + 1)..].to_string()
    });
    env.add_filter("dirname", dirname);
    env.add_filter("splitext", splitext);
    env.add_filter("ternary", ternary);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", |s: String| python_re_escape(&s));
    env.add_filter("comment", comment);
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("flatten", flatten);
    env.add_filter("mandatory", mandatory);
    env.add_filter("hash", hash);
    env.add_filter("checksum", |v: &Value| digest("sha1", v));
    env.add_filter("sha1", |v: &Value| digest("sha1", v));
    env.add_filter("md5", |v: &Value| digest("md5", v));
    env.add_filter("urlsplit", urlsplit);
    env.add_filter("union", |a: Value, b: Value| set_op(&a, &b, SetOp::Union));
    env.add_filter("intersect", |a: Value, b: Value| {
        set_op(&a, &b, SetOp::Intersect)
    });
    env.add_filter("difference", |a: Value, b: Value| {
        set_op(&a, &b, SetOp::Difference)
    });
    env.add_filter("symmetric_difference", |a: Value, b: Value| {
        set_op(&a, &b, SetOp::Symmetric)
    });
    env.add_filter("ipwrap", ipwrap);
    env.add_filter("ipaddr", ipaddr);
    env.add_filter("password_hash", crate::password_hash::password_hash);
    env.add_filter("urlize", crate::urlize::urlize);
    // Ansible core tests.
    env.add_test("version", version_test);
    env.add_test("version_compare", version_test);
    env.add_test("match", |v: String, p: String, kw: Kwargs| {
        re_test(&v, &p, kw, true)
    });
    env.add_test("search", |v: String, p: String, kw: Kwargs| {
        re_test(&v, &p, kw, false)
    });
    env.add_test("regex", |v: String, p: String, kw: Kwargs| {
        let m: Option<String> = kw.get("match_type")?;
        let anchored = m.as_deref() == Some("match");
        re_test(&v, &p, kw, anchored)
    });
    env.add_test("any", |v: Value| -> Result<bool, Error> {
        Ok(v.try_iter()?.any(|x| x.is_true()))
    });
    env.add_test("all", |v: Value| -> Result<bool, Error> {
        Ok(v.try_iter()?.all(|x| x.is_true()))
    });
    env.add_test("truthy", |v: Value| v.is_true());
    env.add_test("falsy", |v: Value| !v.is_true());
    env.add_test("subset", |a: Value, b: Value| -> Result<bool, Error> {
        let b: Vec<Value> = b.try_iter()?.collect();
        Ok(a.try_iter()?.all(|x| b.contains(&x)))
    });
    env.add_test("superset", |a: Value, b: Value| -> Result<bool, Error> {
        let a: Vec<Value> = a.try_iter()?.collect();
        Ok(b.try_iter()?.all(|x| a.contains(&x)))
    });
    env.add_test("contains", |a: Value, b: Value| -> Result<bool, Error> {
        Ok(a.try_iter()?.any(|x| x == b))
    });
}

/// Jinja2's `callable` test: functions, filters-as-values and macros (minijinja's macros are
/// map-like objects with exactly `name`, `arguments` and `caller`).
fn is_callable(v: &Value) -> bool {
    let Some(o) = v.as_object() else {
        return false;
    };
    if o.repr() == ObjectRepr::Plain {
        return true;
    }
    let keys: Vec<Value> = v.try_iter().map(|i| i.collect()).unwrap_or_default();
    keys == [
        Value::from("name"),
        Value::from("arguments"),
        Value::from("caller"),
    ] && v
        .get_attr("arguments")
        .is_ok_and(|a| a.kind() == ValueKind::Seq)
        && v.get_attr("caller")
            .is_ok_and(|c| c.kind() == ValueKind::Bool)
}

/// Python `str` methods minijinja-contrib's pycompat lacks, then pycompat's.
pub fn unknown_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if let Some(s) = value.as_str() {
        let arg_str = |i: usize| args.get(i).and_then(|a| a.as_str().map(str::to_string));
        let arg_int = |i: usize| args.get(i).and_then(Value::as_i64);
        match method {
            "rsplit" => {
                let sep = arg_str(0);
                let max = arg_int(1).unwrap_or(-1);
                let mut parts: Vec<String> = match &sep {
                    Some(sep) if max >= 0 => s
                        .rsplitn(max as usize + 1, sep.as_str())
                        .map(String::from)
                        .collect(),
                    Some(sep) => s.rsplit(sep.as_str()).map(String::from).collect(),
                    None => {
                        let words: Vec<&str> = s.split_whitespace().collect();
                        if max >= 0 && (max as usize) < words.len() {
                            let keep = words.len() - max as usize;
                            let mut head = s.trim_end();
                            let mut tail = Vec::new();
                            for _ in 0..max {
                                let i = head.rfind(char::is_whitespace).unwrap_or(0);
                                tail.push(head[i..].trim().to_string());
                                head = head[..i].trim_end();
                            }
                            let _ = keep;
                            tail.push(head.trim_start().to_string());
                            tail
                        } else {
                            words.into_iter().rev().map(String::from).collect()
                        }
                    }
                };
                parts.reverse();
                return Ok(Value::from(parts));
            }
            "zfill" => {
                let width = arg_int(0).unwrap_or(0).max(0) as usize;
                bounded(width, "zfill()")?;
                let n = s.chars().count();
                if n >= width {
                    return Ok(Value::from(s));
                }
                let pad = "0".repeat(width - n);
                return Ok(Value::from(match s.chars().next() {
                    Some(c @ ('+' | '-')) => format!("{c}{pad}{}", &s[1..]),
                    _ => format!("{pad}{s}"),
                }));
            }
            "ljust" | "rjust" | "center" => {
                let width = arg_int(0).unwrap_or(0).max(0) as usize;
                bounded(width.saturating_mul(4), method)?;
                let fill = arg_str(1).and_then(|f| f.chars().next()).unwrap_or(' ');
                let n = s.chars().count();
                if n >= width {
                    return Ok(Value::from(s));
                }
                let total = width - n;
                let (l, r) = match method {
                    "ljust" => (0, total),
                    "rjust" => (total, 0),
                    _ => {
                        let l = total / 2 + (total & width & 1);
                        (l, total - l)
                    }
                };
                let f = |k: usize| std::iter::repeat_n(fill, k).collect::<String>();
                return Ok(Value::from(format!("{}{s}{}", f(l), f(r))));
            }
            "removeprefix" => {
                let p = arg_str(0).unwrap_or_default();
                return Ok(Value::from(s.strip_prefix(p.as_str()).unwrap_or(s)));
            }
            "removesuffix" => {
                let p = arg_str(0).unwrap_or_default();
                return Ok(Value::from(s.strip_suffix(p.as_str()).unwrap_or(s)));
            }
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args).map_err(|e| {
        const IN_PLACE: &[&str] = &[
            "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update",
            "setdefault", "popitem",
        ];
        if matches!(value.kind(), ValueKind::Seq | ValueKind::Map) && IN_PLACE.contains(&method) {
            Error::new(
                ErrorKind::UnknownMethod,
                format!(
                    "{method}(): lists and dicts cannot be changed in place here; build a new one, e.g. {{% set ns.items = ns.items + [x] %}} with ns = namespace(items=[])"
                ),
            )
        } else {
            e
        }
    })
}

// ---- Jinja2 builtins.

/// Jinja2's `format(*args, **kwargs)`: `value % args`, or `value % kwargs` (Python's printf-style
/// formatting, [`crate::percent`]); both at once is an error, as in Jinja2.
fn format(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    defined(value)?;
    let named: Vec<&str> = kwargs.args().collect();
    if !args.is_empty() && !named.is_empty() {
        return Err(invalid(
            "format: can't handle positional and keyword arguments at the same time",
        ));
    }
    let operand = if named.is_empty() {
        Value::from_object(Tuple::new(args.iter().cloned().collect()))
    } else {
        let mut m = IndexMap::new();
        for k in named {
            m.insert(Value::from(k), kwargs.get::<Value>(k)?);
        }
        Value::from_object(m)
    };
    kwargs.assert_all_used()?;
    crate::percent::modulo(&Value::from(python::to_str(value)), &operand)
}

/// Jinja2's `int(value, default=0, base=10)`: a non-number gives the default.
fn int(
    value: &Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    defined(value)?;
    let default = arg(&kwargs, "default", default)?.unwrap_or(Value::from(0));
    let base = arg(&kwargs, "base", base)?.unwrap_or(10);
    kwargs.assert_all_used()?;
    let n = match value.kind() {
        ValueKind::Bool => Some(i128::from(value.is_true())),
        ValueKind::Number if value.is_integer() => return Ok(value.clone()),
        ValueKind::Number => f64::try_from(value.clone())
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f.trunc() as i128),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            python::parse_int(s, base).or_else(|| {
                python::parse_float(s)
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i128)
            })
        }
        _ => None,
    };
    Ok(match n {
        Some(n) => match i64::try_from(n) {
            Ok(i) => Value::from(i),
            Err(_) => Value::from(n),
        },
        None => default,
    })
}

/// Jinja2's `float(value, default=0.0)`.
fn float(value: &Value, default: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    defined(value)?;
    let default = arg(&kwargs, "default", default)?.unwrap_or(Value::from(0.0));
    kwargs.assert_all_used()?;
    let f = match value.kind() {
        ValueKind::Bool => Some(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(value.clone()).ok(),
        ValueKind::String => python::parse_float(value.as_str().unwrap_or_default()),
        _ => None,
    };
    Ok(f.map(Value::from).unwrap_or(default))
}

/// Jinja2's `indent(width=4, first=False, blank=False)`: the value's trailing newline stays.
pub fn indent(
    value: &Value,
    width: Option<Value>,
    first: Option<bool>,
    blank: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    defined(value)?;
    let width = arg(&kwargs, "width", width)?;
    let first = arg(&kwargs, "first", first)?.unwrap_or(false);
    let blank = arg(&kwargs, "blank", blank)?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let s = python::to_str(value) + "\n";
    let lines = python::splitlines(&s);
    let width_len = match &width {
        None => 4,
        Some(w) if w.kind() == ValueKind::String => w.as_str().unwrap_or_default().len(),
        Some(w) => usize::try_from(w.clone())
            .map_err(|_| invalid("indent: width must be a whole number or a string"))?,
    };
    // Refused before the padding is built: `indent(99999999)` is a way to multiply the output.
    if lines
        .len()
        .saturating_mul(width_len)
        .saturating_add(s.len())
        > crate::jinja::max_output()
    {
        return Err(invalid(crate::jinja::too_large_message(&format!(
            "indent({width_len})"
        ))));
    }
    let pad = match &width {
        Some(w) if w.kind() == ValueKind::String => w.as_str().unwrap_or_default().to_string(),
        _ => " ".repeat(width_len),
    };
    let mut rv = String::with_capacity(s.len() + lines.len() * pad.len());
    if blank {
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                rv.push('\n');
                rv.push_str(&pad);
            }
            rv.push_str(l);
        }
    } else {
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                rv.push('\n');
                if !l.is_empty() {
                    rv.push_str(&pad);
                }
            }
            rv.push_str(l);
        }
    }
    if first {
        rv.insert_str(0, &pad);
    }
    Ok(rv)
}

/// Jinja2's `wordwrap(width=79, break_long_words=True, wrapstring=None)` (Python's textwrap
/// without hyphen breaking).
fn wordwrap(
    value: &Value,
    width: Option<usize>,
    break_long: Option<bool>,
    wrapstring: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    defined(value)?;
    let width = arg(&kwargs, "width", width)?.unwrap_or(79).max(1);
    let break_long = arg(&kwargs, "break_long_words", break_long)?.unwrap_or(true);
    let wrap = arg(&kwargs, "wrapstring", wrapstring)?.unwrap_or_else(|| "\n".into());
    let _: Option<bool> = kwargs.get("break_on_hyphens")?;
    kwargs.assert_all_used()?;
    let s = python::to_str(value);
    let mut out: Vec<String> = Vec::new();
    for line in python::splitlines(&s) {
        out.push(textwrap(line, width, break_long).join(&wrap));
    }
    Ok(out.join(&wrap))
}

fn textwrap(text: &str, width: usize, break_long: bool) -> Vec<String> {
    // Chunks: runs of whitespace and runs of anything else.
    let mut chunks: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_ws = None;
    for c in text.chars() {
        let ws = c.is_whitespace();
        if cur_ws.is_some_and(|w| w != ws) {
            chunks.push(std::mem::take(&mut cur));
        }
        cur.push(c);
        cur_ws = Some(ws);
    }
    if !cur.is_empty() {
        chunks.push(cur);
    }
    chunks.reverse();
    let len = |s: &str| s.chars().count();
    let blank = |s: &str| s.trim().is_empty();
    let mut lines: Vec<String> = Vec::new();
    while !chunks.is_empty() {
        let mut line: Vec<String> = Vec::new();
        let mut cur_len = 0;
        if chunks.last().is_some_and(|c| blank(c)) && !lines.is_empty() {
            chunks.pop();
        }
        while let Some(c) = chunks.last() {
            let l = len(c);
            if cur_len + l <= width {
                cur_len += l;
                line.push(chunks.pop().unwrap_or_default());
            } else {
                break;
            }
        }
        if let Some(c) = chunks.last()
            && len(c) > width
        {
            if break_long {
                let space_left = width.saturating_sub(cur_len).max(1);
                let chars: Vec<char> = c.chars().collect();
                let head: String = chars[..space_left].iter().collect();
                let tail: String = chars[space_left..].iter().collect();
                line.push(head);
                let n = chunks.len();
                chunks[n - 1] = tail;
            } else if line.is_empty() {
                line.push(chunks.pop().unwrap_or_default());
            }
        }
        if line.last().is_some_and(|c| blank(c)) {
            line.pop();
        }
        if !line.is_empty() {
            lines.push(line.concat());
        }
    }
    lines
}

/// markupsafe's `escape`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn forceescape(value: &Value) -> Result<Value, Error> {
    defined(value)?;
    Ok(Value::from_safe_string(html_escape(&python::to_str(value))))
}

/// Jinja2's `xmlattr(autospace=True)`.
fn xmlattr(value: &Value, autospace: Option<bool>) -> Result<Value, Error> {
    defined(value)?;
    let mut items = Vec::new();
    for k in value.try_iter()? {
        let v = value.get_item(&k)?;
        if v.is_none() || v.is_undefined() {
            continue;
        }
        let key = python::to_str(&k);
        if key.chars().any(|c| c.is_whitespace() || "/>=".contains(c)) {
            return Err(invalid(format!(
                "xmlattr: invalid character in attribute name: {}",
                python::str_repr(&key)
            )));
        }
        items.push(format!(
            "{}=\"{}\"",
            html_escape(&key),
            html_escape(&python::to_str(&v))
        ));
    }
    let mut rv = items.join(" ");
    if autospace.unwrap_or(true) && !rv.is_empty() {
        rv.insert(0, ' ');
    }
    Ok(Value::from_safe_string(rv))
}

/// Jinja2's `urlencode`: strings keep `/`, dicts and pairs become a query string.
fn urlencode(value: &Value) -> Result<String, Error> {
    defined(value)?;
    let qs = |v: &Value| python::url_quote(&python::to_str(v), "").replace("%20", "+");
    match value.kind() {
        ValueKind::String => Ok(python::url_quote(value.as_str().unwrap_or_default(), "/")),
        ValueKind::Map => {
            let mut parts = Vec::new();
            for k in value.try_iter()? {
                let v = value.get_item(&k)?;
                parts.push(format!("{}={}", qs(&k), qs(&v)));
            }
            Ok(parts.join("&"))
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let mut parts = Vec::new();
            for pair in value.try_iter()? {
                let k = pair.get_item(&Value::from(0))?;
                let v = pair.get_item(&Value::from(1))?;
                parts.push(format!("{}={}", qs(&k), qs(&v)));
            }
            Ok(parts.join("&"))
        }
        _ => Ok(python::url_quote(&python::to_str(value), "/")),
    }
}

// ---- Ansible.

/// Ansible's `bool`: yes/on/true/1 and no/off/false/0 in any case, booleans, 0 and 1, and None
/// (false). Anything else is refused: Ansible 2.19 turns it into False with a deprecation
/// warning (an error from 2.23), which is never what the template meant.
fn to_bool(value: &Value) -> Result<bool, Error> {
    defined(value)?;
    let word = match value.kind() {
        ValueKind::None => return Ok(false),
        ValueKind::Bool => return Ok(value.is_true()),
        ValueKind::Number if value.is_integer() => value.to_string(),
        ValueKind::String => value.as_str().unwrap_or_default().to_lowercase(),
        _ => String::new(),
    };
    match word.as_str() {
        "yes" | "on" | "true" | "1" => Ok(true),
        "no" | "off" | "false" | "0" => Ok(false),
        _ => Err(invalid(
            "bool: the value is not a boolean (yes/no, true/false, on/off, 1/0, in any case)",
        )),
    }
}

fn json_kwargs(kwargs: &Kwargs, mut j: python::Json) -> Result<python::Json, Error> {
    if let Some(ind) = kwargs.get::<Option<Value>>("indent")? {
        let pad = match ind.as_str() {
            Some(s) => s.to_string(),
            None => {
                let n = usize::try_from(ind)
                    .map_err(|_| invalid("to_json: indent must be a whole number"))?;
                if n > 64 {
                    return Err(invalid("to_json: indent is more than 64"));
                }
                " ".repeat(n)
            }
        };
        j = j.with_indent(Some(pad));
    }
    if let Some(s) = kwargs.get::<Option<bool>>("sort_keys")? {
        j.sort_keys = s;
    }
    if let Some(a) = kwargs.get::<Option<bool>>("ensure_ascii")? {
        j.ensure_ascii = a;
    }
    if let Some(seps) = kwargs.get::<Option<Vec<String>>>("separators")?
        && seps.len() == 2
    {
        j.item_sep = seps[0].clone();
        j.key_sep = seps[1].clone();
    }
    kwargs.assert_all_used()?;
    Ok(j)
}

/// Ansible's `to_json`: Python's `json.dumps` (`", "` and `": "`, key order kept, non-ASCII
/// escaped).
fn to_json(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    defined(value)?;
    json_kwargs(&kwargs, python::Json::default())?.dumps(value)
}

/// Ansible's `to_nice_json(indent=4)`: sorted keys, `,` and `: `.
fn to_nice_json(value: &Value, indent: Option<usize>, kwargs: Kwargs) -> Result<String, Error> {
    defined(value)?;
    let n = arg(&kwargs, "indent", indent)?.unwrap_or(4);
    if n > 64 {
        return Err(invalid("to_nice_json: indent is more than 64"));
    }
    let j = python::Json {
        sort_keys: true,
        ..python::Json::default()
    }
    .with_indent(Some(" ".repeat(n)));
    json_kwargs(&kwargs, j)?.dumps(value)
}

fn to_yaml(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.unwrap_or(2);
    let flow = kwargs.get::<Option<bool>>("default_flow_style")?;
    kwargs.assert_all_used()?;
    crate::pyyaml::dump(value, indent, flow.is_none())
}

fn to_nice_yaml(value: &Value, indent: Option<usize>, kwargs: Kwargs) -> Result<String, Error> {
    let indent = arg(&kwargs, "indent", indent)?.unwrap_or(4);
    kwargs.assert_all_used()?;
    crate::pyyaml::dump(value, indent, false)
}

/// `shlex.quote`: safe words bare, anything else single-quoted; None is `''`.
fn quote(value: &Value) -> Result<String, Error> {
    defined(value)?;
    if value.is_none() {
        return Ok("''".into());
    }
    Ok(python::shell_quote(&python::to_str(value)))
}

fn dirname(s: String) -> String {
    let i = s.rfind('/').map_or(0, |i| i + 1);
    let head = &s[..i];
    if !head.is_empty() && head.chars().any(|c| c != '/') {
        head.trim_end_matches('/').to_string()
    } else {
        head.to_string()
    }
}

fn splitext(s: String) -> Value {
    let sep = s.rfind('/').map_or(0, |i| i + 1);
    let base = &s[sep..];
    let (root, ext) = match base.rfind('.') {
        Some(dot) if base[..dot].chars().any(|c| c != '.') => {
            (s[..sep + dot].to_string(), s[sep + dot..].to_string())
        }
        _ => (s.clone(), String::new()),
    };
    Value::from_object(Tuple::new(vec![Value::from(root), Value::from(ext)]))
}

fn ternary(value: &Value, t: Value, f: Value, none: Option<Value>) -> Value {
    match none {
        Some(n) if value.is_none() && !n.is_none() => n,
        _ if value.is_true() => t,
        _ => f,
    }
}

/// Python `re` syntax that Rust's regex crate reads differently or not at all is refused
/// rather than guessed: look-around and back-references.
fn compile(pattern: &str, ignorecase: bool, multiline: bool) -> Result<regex::Regex, Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            invalid(format!(
                "the regular expression {} is not supported: {}",
                python::str_repr(pattern),
                e.to_string().lines().last().unwrap_or("invalid")
            ))
        })
}

/// A Python `re.sub` replacement (`\1`, `\g<name>`, `\n`) in the regex crate's syntax.
fn replacement(repl: &str) -> Result<String, Error> {
    let mut out = String::new();
    let mut it = repl.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match it.next() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = d.to_string();
                    if let Some(&d2) = it.peek()
                        && d2.is_ascii_digit()
                    {
                        n.push(d2);
                        it.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    if it.next() != Some('<') {
                        return Err(invalid("regex_replace: bad \\g<...> group reference"));
                    }
                    let name: String = it.by_ref().take_while(|c| *c != '>').collect();
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some(o) if o.is_ascii_alphabetic() => {
                    return Err(invalid(format!("regex_replace: bad escape \\{o}")));
                }
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => return Err(invalid("regex_replace: bad escape (end of pattern)")),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

fn regex_replace(
    value: &Value,
    pattern: Option<String>,
    repl: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    defined(value)?;
    let pattern = arg(&kwargs, "pattern", pattern)?.unwrap_or_default();
    let repl = arg(&kwargs, "replacement", repl)?.unwrap_or_default();
    let (ic, ml) = regex_flags(&kwargs)?;
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    let mandatory = kwargs.get::<Option<usize>>("mandatory_count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    let re = compile(&pattern, ic, ml)?;
    let s = python::to_str(value);
    let r = replacement(&repl)?;
    let found = re.find_iter(&s).count();
    let subs = if count == 0 { found } else { found.min(count) };
    if mandatory != 0 && mandatory != subs {
        return Err(invalid(format!(
            "regex_replace: {} should match {mandatory} times, but matches {subs} times",
            python::str_repr(&pattern)
        )));
    }
    Ok(re.replacen(&s, count, r.as_str()).into_owned())
}

fn regex_search(
    value: &Value,
    pattern: String,
    groups: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    defined(value)?;
    let (ic, ml) = regex_flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let re = compile(&pattern, ic, ml)?;
    let s = python::to_str(value);
    let Some(caps) = re.captures(&s) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
    }
    let mut out = Vec::new();
    for g in groups.iter() {
        let m = if let Some(name) = g.strip_prefix("\\g<").and_then(|n| n.strip_suffix('>')) {
            caps.name(name)
        } else if let Some(n) = g.strip_prefix('\\').and_then(|n| n.parse::<usize>().ok()) {
            caps.get(n)
        } else {
            return Err(invalid(
                "regex_search: unknown argument (expected '\\1' or '\\g<name>')",
            ));
        };
        out.push(m.map_or(Value::from(()), |m| Value::from(m.as_str())));
    }
    Ok(Value::from(out))
}

fn regex_findall(value: &Value, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    defined(value)?;
    let (ic, ml) = regex_flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let re = compile(&pattern, ic, ml)?;
    let s = python::to_str(value);
    let groups = re.captures_len() - 1;
    let mut out = Vec::new();
    for caps in re.captures_iter(&s) {
        let g = |i: usize| Value::from(caps.get(i).map_or("", |m| m.as_str()));
        out.push(match groups {
            0 => g(0),
            1 => g(1),
            n => Value::from_object(Tuple::new((1..=n).map(g).collect())),
        });
    }
    Ok(Value::from(out))
}

fn python_re_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() || c == '_' || !c.is_ascii() {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

fn re_test(v: &str, p: &str, kw: Kwargs, anchored: bool) -> Result<bool, Error> {
    let (ic, ml) = regex_flags(&kw)?;
    let _: Option<String> = kw.get("match_type")?;
    kw.assert_all_used()?;
    let re = compile(p, ic, ml)?;
    if anchored {
        // Python's re.match: anchored at the start of the string only.
        return Ok(compile(&format!(r"\A(?:{p})"), ic, ml)?.is_match(v));
    }
    Ok(re.is_match(v))
}

/// (beginning, prefix, prefix_count, decoration, postfix, postfix_count, end) of a comment style.
type CommentStyle = (
    Option<String>,
    Option<String>,
    usize,
    String,
    Option<String>,
    usize,
    Option<String>,
);

/// Ansible's `comment(style='plain', decoration=..., prefix=..., ...)`.
fn comment(value: &Value, style: Option<String>, kwargs: Kwargs) -> Result<String, Error> {
    defined(value)?;
    let style = arg(&kwargs, "style", style)?.unwrap_or_else(|| "plain".into());
    let s = |a: &str| Some(a.to_string());
    // (beginning, prefix, prefix_count, decoration, postfix, postfix_count, end)
    let (
        mut beginning,
        mut prefix,
        mut prefix_count,
        mut decoration,
        mut postfix,
        mut postfix_count,
        mut end,
    ): CommentStyle = match style.as_str() {
        "plain" => (None, None, 1, "# ".into(), None, 1, None),
        "erlang" => (None, None, 1, "% ".into(), None, 1, None),
        "c" => (None, None, 1, "// ".into(), None, 1, None),
        "cblock" => (s("/*"), None, 1, " * ".into(), None, 1, s(" */")),
        "xml" => (s("<!--"), None, 1, " - ".into(), None, 1, s("-->")),
        _ => {
            return Err(invalid(format!(
                "comment: unknown style {}",
                python::str_repr(&style)
            )));
        }
    };
    if let Some(d) = kwargs.get::<Option<String>>("decoration")? {
        decoration = d;
    }
    if let Some(b) = kwargs.get::<Option<String>>("beginning")? {
        beginning = Some(b);
    }
    if let Some(e) = kwargs.get::<Option<String>>("end")? {
        end = Some(e);
    }
    if let Some(p) = kwargs.get::<Option<String>>("prefix")? {
        prefix = Some(p);
    }
    if let Some(p) = kwargs.get::<Option<usize>>("prefix_count")? {
        prefix_count = p;
    }
    if let Some(p) = kwargs.get::<Option<String>>("postfix")? {
        postfix = Some(p);
    }
    if let Some(p) = kwargs.get::<Option<usize>>("postfix_count")? {
        postfix_count = p;
    }
    let newline = kwargs
        .get::<Option<String>>("newline")?
        .unwrap_or_else(|| "\n".into());
    kwargs.assert_all_used()?;
    let prefix = prefix.unwrap_or_else(|| decoration.trim_end().to_string());
    let postfix = postfix.unwrap_or_else(|| decoration.trim_end().to_string());
    let text = python::to_str(value);
    bounded(
        (prefix_count.saturating_add(postfix_count))
            .saturating_mul(prefix.len().max(postfix.len()) + newline.len())
            .saturating_add(text.len()),
        "comment()",
    )?;
    let line_start = |l: &str| {
        if l.is_empty() {
            decoration.trim_end().to_string()
        } else {
            format!("{decoration}{l}")
        }
    };
    let body: Vec<String> = python::splitlines(&text)
        .iter()
        .map(|l| line_start(l))
        .collect();
    let mut out = String::new();
    if let Some(b) = &beginning
        && !b.is_empty()
    {
        out.push_str(b);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        out.push_str(&format!("{prefix}{newline}").repeat(prefix_count));
    }
    out.push_str(&body.join(&newline));
    out.push_str(&newline);
    if !postfix.is_empty() {
        out.push_str(&format!("{postfix}{newline}").repeat(postfix_count));
    }
    if let Some(e) = &end
        && !e.is_empty()
    {
        out.push_str(e);
        out.push_str(&newline);
    }
    // Ansible strips the final newline of the last part.
    if out.ends_with(&newline) {
        out.truncate(out.len() - newline.len());
    }
    Ok(out)
}

fn ordered(value: &Value) -> Result<IndexMap<Value, Value>, Error> {
    let mut m = IndexMap::new();
    for k in value.try_iter()? {
        let v = value.get_item(&k)?;
        m.insert(k, v);
    }
    Ok(m)
}

fn merge(a: &Value, b: &Value, recursive: bool, list_merge: &str) -> Result<Value, Error> {
    if a.kind() == ValueKind::Map && b.kind() == ValueKind::Map {
        let mut out = ordered(a)?;
        for (k, v) in ordered(b)? {
            let merged = match out.get(&k) {
                Some(old)
                    if recursive && old.kind() == ValueKind::Map && v.kind() == ValueKind::Map =>
                {
                    merge(old, &v, recursive, list_merge)?
                }
                Some(old) if old.kind() == ValueKind::Seq && v.kind() == ValueKind::Seq => {
                    let o: Vec<Value> = old.try_iter()?.collect();
                    let n: Vec<Value> = v.try_iter()?.collect();
                    match list_merge {
                        "replace" => v.clone(),
                        "keep" => old.clone(),
                        "append" => Value::from([o, n].concat()),
                        "prepend" => Value::from([n, o].concat()),
                        "append_rp" => {
                            let mut r: Vec<Value> =
                                o.into_iter().filter(|x| !n.contains(x)).collect();
                            r.extend(n);
                            Value::from(r)
                        }
                        "prepend_rp" => {
                            let mut r = n.clone();
                            r.extend(o.into_iter().filter(|x| !n.contains(x)));
                            Value::from(r)
                        }
                        other => {
                            return Err(invalid(format!(
                                "combine: list_merge must be replace, keep, append, prepend, append_rp or prepend_rp, not {}",
                                python::str_repr(other)
                            )));
                        }
                    }
                }
                _ => v.clone(),
            };
            out.insert(k, merged);
        }
        return Ok(Value::from_object(out));
    }
    Err(invalid("combine: expects dictionaries"))
}

/// Ansible's `combine(*dicts, recursive=False, list_merge='replace')`.
fn combine(first: Value, rest: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    defined(&first)?;
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge = kwargs
        .get::<Option<String>>("list_merge")?
        .unwrap_or_else(|| "replace".into());
    kwargs.assert_all_used()?;
    let mut dicts = Vec::new();
    for t in std::iter::once(&first).chain(rest.iter()) {
        if t.kind() == ValueKind::Seq {
            dicts.extend(t.try_iter()?);
        } else {
            dicts.push(t.clone());
        }
    }
    let mut acc = Value::from_object(IndexMap::<Value, Value>::new());
    for d in &dicts {
        defined(d)?;
        acc = merge(&acc, d, recursive, &list_merge)?;
    }
    Ok(acc)
}

fn dict2items(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    defined(value)?;
    if value.kind() != ValueKind::Map {
        return Err(invalid("dict2items requires a dictionary"));
    }
    let (kn, vn) = item_names(&kwargs)?;
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    for (k, v) in ordered(value)? {
        let mut m = IndexMap::new();
        m.insert(Value::from(kn.as_str()), k);
        m.insert(Value::from(vn.as_str()), v);
        out.push(Value::from_object(m));
    }
    Ok(Value::from(out))
}

fn items2dict(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    defined(value)?;
    let (kn, vn) = item_names(&kwargs)?;
    kwargs.assert_all_used()?;
    let mut m = IndexMap::new();
    for item in value.try_iter()? {
        let k = item.get_attr(&kn)?;
        let v = item.get_attr(&vn)?;
        if k.is_undefined() || v.is_undefined() {
            return Err(invalid(format!(
                "items2dict: an element has no {} or {} key",
                python::str_repr(&kn),
                python::str_repr(&vn)
            )));
        }
        m.insert(k, v);
    }
    Ok(Value::from_object(m))
}

fn flatten_into(
    v: &Value,
    levels: Option<i64>,
    skip_nulls: bool,
    out: &mut Vec<Value>,
) -> Result<(), Error> {
    for e in v.try_iter()? {
        if skip_nulls && (e.is_none() || matches!(e.as_str(), Some("None" | "null"))) {
            continue;
        }
        if e.kind() == ValueKind::Seq {
            match levels {
                None => flatten_into(&e, None, skip_nulls, out)?,
                Some(l) if l >= 1 => flatten_into(&e, Some(l - 1), skip_nulls, out)?,
                _ => out.push(e),
            }
        } else {
            out.push(e);
        }
    }
    Ok(())
}

fn flatten(value: &Value, levels: Option<i64>, kwargs: Kwargs) -> Result<Value, Error> {
    defined(value)?;
    let levels = arg(&kwargs, "levels", levels)?;
    let skip = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    flatten_into(value, levels, skip, &mut out)?;
    Ok(Value::from(out))
}

fn mandatory(value: &Value, msg: Option<String>) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            msg.unwrap_or_else(|| "mandatory: a mandatory variable is not defined".into()),
        ));
    }
    Ok(value.clone())
}

fn digest(kind: &str, value: &Value) -> Result<String, Error> {
    use sha2::Digest;
    defined(value)?;
    let data = match value.as_bytes() {
        Some(b) if value.kind() == ValueKind::Bytes => b.to_vec(),
        _ => python::to_str(value).into_bytes(),
    };
    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
    Ok(match kind {
        "md5" => hex(&md5::Md5::digest(&data)),
        "sha1" => hex(&sha1::Sha1::digest(&data)),
        "sha224" => hex(&sha2::Sha224::digest(&data)),
        "sha256" => hex(&sha2::Sha256::digest(&data)),
        "sha384" => hex(&sha2::Sha384::digest(&data)),
        "sha512" => hex(&sha2::Sha512::digest(&data)),
        other => {
            return Err(invalid(format!(
                "hash: unsupported hash type {} (md5, sha1, sha224, sha256, sha384, sha512)",
                python::str_repr(other)
            )));
        }
    })
}

fn hash(value: &Value, kind: Option<String>) -> Result<String, Error> {
    digest(kind.as_deref().unwrap_or("sha1"), value)
}

/// Ansible's `urlsplit(query='')` (Python's `urllib.parse.urlsplit`).
fn urlsplit(value: String, query: Option<String>) -> Result<Value, Error> {
    let mut rest = value.as_str();
    let mut scheme = String::new();
    if let Some(i) = rest.find(':') {
        let cand = &rest[..i];
        if cand.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && cand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            scheme = cand.to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
    }
    let mut netloc = "";
    if let Some(r) = rest.strip_prefix("//") {
        let end = r.find(['/', '?', '#']).unwrap_or(r.len());
        netloc = &r[..end];
        rest = &r[end..];
    }
    let (before_frag, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, q) = before_frag.split_once('?').unwrap_or((before_frag, ""));
    let (userinfo, hostport) = match netloc.rfind('@') {
        Some(i) => (Some(&netloc[..i]), &netloc[i + 1..]),
        None => (None, netloc),
    };
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((a, b)) => (Value::from(a), Value::from(b)),
            None => (Value::from(u), Value::from(())),
        },
        None => (Value::from(()), Value::from(())),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, after) = h.split_once(']').unwrap_or((h, ""));
        (h.to_string(), after.strip_prefix(':').unwrap_or(""))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (hostport.to_string(), ""),
        }
    };
    let port = if port.is_empty() {
        Value::from(())
    } else {
        match port.parse::<u16>() {
            Ok(p) => Value::from(p),
            Err(_) => {
                return Err(invalid(
                    "urlsplit: the port is not a number from 0 to 65535",
                ));
            }
        }
    };
    let hostname = if host.is_empty() {
        Value::from(())
    } else {
        Value::from(host.to_lowercase())
    };
    let mut m = IndexMap::new();
    let mut put = |k: &str, v: Value| {
        m.insert(Value::from(k), v);
    };
    put("fragment", Value::from(fragment));
    put("hostname", hostname);
    put("netloc", Value::from(netloc));
    put("password", password);
    put("path", Value::from(path));
    put("port", port);
    put("query", Value::from(q));
    put("scheme", Value::from(scheme));
    put("username", username);
    match query {
        Some(k) if !k.is_empty() => m.get(&Value::from(k.as_str())).cloned().ok_or_else(|| {
            invalid(format!(
                "urlsplit: unknown URL component: {}",
                python::str_repr(&k)
            ))
        }),
        _ => Ok(Value::from_object(m)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Num(u128),
    Str(String),
}

/// distutils' LooseVersion components: runs of digits, runs of lowercase letters, anything
/// else between them; dots dropped.
fn loose(v: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let chars: Vec<char> = v.chars().collect();
    let mut i = 0;
    let mut other = String::new();
    while i < chars.len() {
        let c = chars[i];
        let run = |pred: &dyn Fn(char) -> bool, i: &mut usize| {
            let s = *i;
            while *i < chars.len() && pred(chars[*i]) {
                *i += 1;
            }
            chars[s..*i].iter().collect::<String>()
        };
        if c.is_ascii_digit() || c.is_ascii_lowercase() || c == '.' {
            if !other.is_empty() {
                parts.push(Part::Str(std::mem::take(&mut other)));
            }
            if c.is_ascii_digit() {
                let d = run(&|c: char| c.is_ascii_digit(), &mut i);
                parts.push(d.parse().map(Part::Num).unwrap_or(Part::Str(d)));
            } else if c.is_ascii_lowercase() {
                parts.push(Part::Str(run(&|c: char| c.is_ascii_lowercase(), &mut i)));
            } else {
                i += 1;
            }
        } else {
            other.push(c);
            i += 1;
        }
    }
    if !other.is_empty() {
        parts.push(Part::Str(other));
    }
    parts
}

fn cmp_loose(a: &[Part], b: &[Part]) -> Result<std::cmp::Ordering, Error> {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Part::Num(p), Part::Num(q)) => p.cmp(q),
            (Part::Str(p), Part::Str(q)) => p.cmp(q),
            _ => {
                return Err(invalid(
                    "version: cannot compare a number with a word in these versions (Python's LooseVersion refuses too)",
                ));
            }
        };
        if o != std::cmp::Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

fn semver_parts(v: &str) -> Result<semver::Version, Error> {
    semver::Version::parse(v.trim_start_matches('v')).map_err(|_| {
        invalid(format!(
            "version: {} is not a semantic version",
            python::str_repr(v)
        ))
    })
}

fn compare_versions(
    value: &Value,
    version: &Value,
    operator: Option<String>,
    kwargs: &Kwargs,
) -> Result<bool, Error> {
    defined(value)?;
    let operator = arg(kwargs, "operator", operator)?.unwrap_or_else(|| "eq".into());
    let strict = kwargs.get::<Option<bool>>("strict")?;
    let vtype = kwargs.get::<Option<String>>("version_type")?;
    kwargs.assert_all_used()?;
    let a = python::to_str(value);
    let b = python::to_str(version);
    if !value.is_true() {
        return Err(invalid("version: Input version value cannot be empty"));
    }
    if !version.is_true() {
        return Err(invalid(
            "version: Version parameter to compare against cannot be empty",
        ));
    }
    let ord = match (strict, vtype.as_deref()) {
        (Some(true), _) | (_, Some("strict")) => {
            return Err(invalid(
                "version: version_type='strict' is not supported; use 'loose' or 'semver'",
            ));
        }
        (_, None | Some("loose")) => cmp_loose(&loose(&a), &loose(&b))?,
        (_, Some("semver" | "semantic")) => semver_parts(&a)?.cmp_precedence(&semver_parts(&b)?),
        (_, Some(other)) => {
            return Err(invalid(format!(
                "version: unsupported version_type {} (loose, semver)",
                python::str_repr(other)
            )));
        }
    };
    use std::cmp::Ordering::*;
    Ok(match operator.as_str() {
        "==" | "=" | "eq" => ord == Equal,
        "<" | "lt" => ord == Less,
        "<=" | "le" => ord != Greater,
        ">" | "gt" => ord == Greater,
        ">=" | "ge" => ord != Less,
        "!=" | "<>" | "ne" => ord != Equal,
        other => {
            return Err(invalid(format!(
                "version: Invalid operator type ({other}). Must be one of '==', '=', 'eq', '<', 'lt', '<=', 'le', '>', 'gt', '>=', 'ge', '!=', '<>', 'ne'"
            )));
        }
    })
}

fn version_test(
    value: &Value,
    version: Value,
    operator: Option<String>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    compare_versions(value, &version, operator, &kwargs)
}

#[derive(Clone, Copy)]
enum SetOp {
    Union,
    Intersect,
    Difference,
    Symmetric,
}

/// Ansible's set filters, in first-seen order (Ansible's order is Python's set order, which
/// for strings changes from run to run).
fn set_op(a: &Value, b: &Value, op: SetOp) -> Result<Value, Error> {
    defined(a)?;
    defined(b)?;
    let a: Vec<Value> = a.try_iter()?.collect();
    let b: Vec<Value> = b.try_iter()?.collect();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let mut add = |v: &Value| {
        if !seen.contains(v) {
            seen.push(v.clone());
            out.push(v.clone());
        }
    };
    match op {
        SetOp::Union => a.iter().chain(b.iter()).for_each(&mut add),
        SetOp::Intersect => a.iter().filter(|x| b.contains(x)).for_each(&mut add),
        SetOp::Difference => a.iter().filter(|x| !b.contains(x)).for_each(&mut add),
        SetOp::Symmetric => a
            .iter()
            .filter(|x| !b.contains(x))
            .chain(b.iter().filter(|x| !a.contains(x)))
            .for_each(&mut add),
    }
    Ok(Value::from(out))
}

/// ansible.utils' `ipwrap`: IPv6 addresses (and networks) in brackets, anything else as is;
/// on a list, each element.
fn ipwrap(value: &Value) -> Result<Value, Error> {
    defined(value)?;
    let wrap = |s: &str| -> String {
        let addr = s.split('/').next().unwrap_or(s);
        if addr.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{addr}]{}", &s[addr.len()..])
        } else {
            s.to_string()
        }
    };
    if value.kind() == ValueKind::Seq {
        return Ok(Value::from(
            value
                .try_iter()?
                .map(|v| Value::from(wrap(&python::to_str(&v))))
                .collect::<Vec<_>>(),
        ));
    }
    Ok(Value::from(wrap(&python::to_str(value))))
}

/// ansible.utils' `ipaddr` basics: the value if it is an IP address or network (optionally of
/// the version asked: `ipaddr('ipv4')`, `ipaddr('ipv6')`), else false; `address` gives the
/// address part; on a list, the elements that qualify.
fn ipaddr(value: &Value, query: Option<String>) -> Result<Value, Error> {
    defined(value)?;
    fn check(s: &str, q: &str) -> Option<String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: std::net::IpAddr = addr.parse().ok()?;
        if let Some(p) = prefix {
            let n: u8 = p.parse().ok()?;
            if n > if ip.is_ipv4() { 32 } else { 128 } {
                return None;
            }
        }
        match q {
            "" => Some(s.to_string()),
            "ipv4" | "4" => ip.is_ipv4().then(|| s.to_string()),
            "ipv6" | "6" => ip.is_ipv6().then(|| s.to_string()),
            "address" => Some(addr.to_string()),
            "public" => (!is_private(&ip)).then(|| s.to_string()),
            "private" => is_private(&ip).then(|| s.to_string()),
            _ => None,
        }
    }
    fn is_private(ip: &std::net::IpAddr) -> bool {
        match ip {
            std::net::IpAddr::V4(v) => v.is_private() || v.is_loopback() || v.is_link_local(),
            std::net::IpAddr::V6(v) => v.is_loopback() || (v.segments()[0] & 0xfe00) == 0xfc00,
        }
    }
    let q = query.unwrap_or_default();
    if !["", "ipv4", "4", "ipv6", "6", "address", "public", "private"].contains(&q.as_str()) {
        return Err(invalid(format!(
            "ipaddr: query {} is not supported (address, ipv4, ipv6, public, private)",
            python::str_repr(&q)
        )));
    }
    if value.kind() == ValueKind::Seq {
        let out: Vec<Value> = value
            .try_iter()?
            .filter_map(|v| check(&python::to_str(&v), &q).map(Value::from))
            .collect();
        return Ok(Value::from(out));
    }
    Ok(match check(&python::to_str(value), &q) {
        Some(s) => Value::from(s),
        None => Value::from(false),
    })
}
