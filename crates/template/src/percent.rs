//! Python's `%` operator, as Jinja2 templates use it: printf-style formatting when the left
//! side is a string (`"%-10s %05.1f" % (name, load)`, `"%(host)s" % server`), Python's
//! remainder (the sign of the divisor) otherwise. The conversion rules are CPython's
//! (`Objects/unicodeobject.c`'s `PyUnicode_Format`, documented under "printf-style String
//! Formatting"), with its error messages.
//!
//! Reached through [`crate::rewrite`], which turns `a % b` in template code into a call.

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};

use crate::python;

fn type_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Python's type name of a value, for error messages.
fn type_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::None | ValueKind::Undefined => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq if v.is_tuple() => "tuple",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

/// `lhs % rhs`.
pub fn modulo(lhs: &Value, rhs: &Value) -> Result<Value, Error> {
    if lhs.is_undefined() || rhs.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    if let Some(fmt) = lhs.as_str().filter(|_| lhs.kind() == ValueKind::String) {
        let out = format(fmt, rhs)?;
        crate::filters::bounded(out.len(), "the % operator")?;
        return Ok(Value::from(out));
    }
    let number = |v: &Value| matches!(v.kind(), ValueKind::Number | ValueKind::Bool);
    if !number(lhs) || !number(rhs) {
        return Err(type_error(format!(
            "unsupported operand type(s) for %: '{}' and '{}'",
            type_name(lhs),
            type_name(rhs)
        )));
    }
    let int = |v: &Value| -> Option<i128> {
        if v.kind() == ValueKind::Bool {
            return Some(i128::from(v.is_true()));
        }
        v.is_integer()
            .then(|| i128::try_from(v.clone()).ok())
            .flatten()
    };
    if let (Some(a), Some(b)) = (int(lhs), int(rhs)) {
        if b == 0 {
            return Err(type_error("integer modulo by zero"));
        }
        let r = a.checked_rem(b).unwrap_or(0);
        let r = if r != 0 && ((r < 0) != (b < 0)) {
            r + b
        } else {
            r
        };
        return Ok(match i64::try_from(r) {
            Ok(i) => Value::from(i),
            Err(_) => Value::from(r),
        });
    }
    let (a, b) = (as_f64(lhs), as_f64(rhs));
    if b == 0.0 {
        return Err(type_error("float modulo by zero"));
    }
    let mut r = a % b;
    if r != 0.0 {
        if (b < 0.0) != (r < 0.0) {
            r += b;
        }
    } else {
        r = 0.0_f64.copysign(b);
    }
    Ok(Value::from(r))
}

fn as_f64(v: &Value) -> f64 {
    if v.kind() == ValueKind::Bool {
        return if v.is_true() { 1.0 } else { 0.0 };
    }
    f64::try_from(v.clone()).unwrap_or(f64::NAN)
}

struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: usize,
    precision: Option<usize>,
}

/// `fmt % args`.
pub fn format(fmt: &str, args: &Value) -> Result<String, Error> {
    // A tuple spreads over the conversions; a dict serves `%(name)s`; anything else is one
    // argument.
    let mapping = args.kind() == ValueKind::Map;
    let list: Vec<Value> = if args.kind() == ValueKind::Seq && args.is_tuple() {
        args.try_iter()?.collect()
    } else {
        vec![args.clone()]
    };
    let mut next = 0usize;
    let mut used_mapping = false;
    let mut out = String::with_capacity(fmt.len() + 16);
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let at = |i: usize| chars.get(i).copied();
        let mut arg: Option<Value> = None;
        if at(i) == Some('(') {
            if !mapping {
                return Err(type_error("format requires a mapping"));
            }
            let mut depth = 1;
            let key_start = i + 1;
            i += 1;
            while i < chars.len() && depth > 0 {
                match chars[i] {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
            if depth > 0 {
                return Err(type_error("incomplete format key"));
            }
            let key: String = chars[key_start..i - 1].iter().collect();
            let v = args.get_item(&Value::from(key.as_str()))?;
            if v.is_undefined() {
                return Err(type_error(format!("KeyError: {}", python::str_repr(&key))));
            }
            arg = Some(v);
            used_mapping = true;
        }
        let mut take = |what: &str| -> Result<Value, Error> {
            if let Some(v) = arg.take() {
                return Ok(v);
            }
            let v = list.get(next).cloned().ok_or_else(|| {
                type_error(if what.is_empty() {
                    "not enough arguments for format string".to_string()
                } else {
                    format!("not enough arguments for format string ({what})")
                })
            })?;
            next += 1;
            Ok(v)
        };
        let mut spec = Spec {
            left: false,
            zero: false,
            plus: false,
            space: false,
            alt: false,
            width: 0,
            precision: None,
        };
        while let Some(f) = at(i) {
            match f {
                '-' => spec.left = true,
                '0' => spec.zero = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '#' => spec.alt = true,
                _ => break,
            }
            i += 1;
        }
        let number = |i: &mut usize,
                      take: &mut dyn FnMut(&str) -> Result<Value, Error>|
         -> Result<Option<i64>, Error> {
            if at(*i) == Some('*') {
                *i += 1;
                let v = take("")?;
                if !(v.kind() == ValueKind::Number && v.is_integer()) {
                    return Err(type_error("* wants int"));
                }
                return Ok(Some(i64::try_from(v).unwrap_or(0)));
            }
            let s = *i;
            while at(*i).is_some_and(|c| c.is_ascii_digit()) {
                *i += 1;
            }
            if *i == s {
                return Ok(None);
            }
            let digits: String = chars[s..*i].iter().collect();
            digits
                .parse::<i64>()
                .map(Some)
                .map_err(|_| type_error("width too big"))
        };
        if let Some(w) = number(&mut i, &mut take)? {
            if w < 0 {
                spec.left = true;
            }
            spec.width = w.unsigned_abs() as usize;
        }
        if at(i) == Some('.') {
            i += 1;
            spec.precision = Some(number(&mut i, &mut take)?.unwrap_or(0).max(0) as usize);
        }
        crate::filters::bounded(
            spec.width.saturating_add(spec.precision.unwrap_or(0)),
            "the % operator",
        )?;
        // Length modifiers are read and ignored, as Python does.
        while matches!(at(i), Some('h' | 'l' | 'L')) {
            i += 1;
        }
        let Some(conv) = at(i) else {
            return Err(type_error("incomplete format"));
        };
        i += 1;
        if conv == '%' {
            out.push('%');
            continue;
        }
        let v = take("")?;
        if v.is_undefined() {
            return Err(Error::from(ErrorKind::UndefinedError));
        }
        let text = convert(conv, &v, &spec).map_err(|e| match e {
            Some(e) => e,
            None => type_error(format!(
                "unsupported format character {} (0x{:x}) at index {}",
                python::str_repr(&conv.to_string()),
                conv as u32,
                i - 1
            )),
        })?;
        pad(&mut out, &text, &spec, conv);
    }
    if !used_mapping && !mapping && next < list.len() {
        return Err(type_error(
            "not all arguments converted during string formatting",
        ));
    }
    Ok(out)
}

/// The converted text of one argument, before padding (`Err(None)`: unknown conversion).
fn convert(conv: char, v: &Value, spec: &Spec) -> Result<String, Option<Error>> {
    match conv {
        's' | 'r' | 'a' => {
            let mut s = if conv == 's' {
                python::to_str(v)
            } else {
                let mut s = String::new();
                python::repr(v, &mut s);
                s
            };
            if conv == 'a' {
                // ascii(): repr with every non-ASCII character escaped.
                s = s
                    .chars()
                    .map(|c| match c as u32 {
                        0..0x80 => c.to_string(),
                        n @ 0x80..0x100 => format!("\\x{n:02x}"),
                        n @ 0x100..0x10000 => format!("\\u{n:04x}"),
                        n => format!("\\U{n:08x}"),
                    })
                    .collect();
            }
            if let Some(p) = spec.precision {
                s = s.chars().take(p).collect();
            }
            Ok(s)
        }
        'd' | 'i' | 'u' | 'x' | 'X' | 'o' => {
            let n = match v.kind() {
                ValueKind::Bool => i128::from(v.is_true()),
                ValueKind::Number if v.is_integer() => i128::try_from(v.clone()).unwrap_or(0),
                ValueKind::Number if matches!(conv, 'd' | 'i' | 'u') => {
                    let f = as_f64(v);
                    if !f.is_finite() {
                        return Err(Some(type_error(format!(
                            "cannot convert float {} to integer",
                            python::float_repr(f)
                        ))));
                    }
                    f.trunc() as i128
                }
                _ => {
                    let wants = if matches!(conv, 'd' | 'i' | 'u') {
                        "a real number is required"
                    } else {
                        "an integer is required"
                    };
                    return Err(Some(type_error(format!(
                        "%{conv} format: {wants}, not {}",
                        type_name(v)
                    ))));
                }
            };
            let mut digits = match conv {
                'x' => format!("{:x}", n.unsigned_abs()),
                'X' => format!("{:X}", n.unsigned_abs()),
                'o' => format!("{:o}", n.unsigned_abs()),
                _ => n.unsigned_abs().to_string(),
            };
            if let Some(p) = spec.precision
                && digits.len() < p
            {
                digits = format!("{}{digits}", "0".repeat(p - digits.len()));
            }
            if spec.alt {
                match conv {
                    'x' => digits.insert_str(0, "0x"),
                    'X' => digits.insert_str(0, "0X"),
                    'o' => digits.insert_str(0, "0o"),
                    _ => {}
                }
            }
            Ok(with_sign(n < 0, digits, spec))
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            if !matches!(v.kind(), ValueKind::Number | ValueKind::Bool) {
                return Err(Some(type_error(format!(
                    "must be real number, not {}",
                    type_name(v)
                ))));
            }
            let f = as_f64(v);
            let body = float_body(f.abs(), conv, spec.precision.unwrap_or(6), spec.alt);
            Ok(with_sign(f.is_sign_negative() && !f.is_nan(), body, spec))
        }
        'c' => match v.kind() {
            ValueKind::String if v.as_str().is_some_and(|s| s.chars().count() == 1) => {
                Ok(v.as_str().unwrap_or_default().to_string())
            }
            ValueKind::Number if v.is_integer() => i64::try_from(v.clone())
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .and_then(char::from_u32)
                .map(String::from)
                .ok_or_else(|| Some(type_error("%c arg not in range(0x110000)"))),
            _ => Err(Some(type_error(format!(
                "%c requires an int or a unicode character, not {}",
                type_name(v)
            )))),
        },
        _ => Err(None),
    }
}

fn with_sign(negative: bool, body: String, spec: &Spec) -> String {
    let sign = if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    format!("{sign}{body}")
}

/// `%e`, `%f`, `%g` of a non-negative number.
fn float_body(f: f64, conv: char, precision: usize, alt: bool) -> String {
    let upper = conv.is_ascii_uppercase();
    if !f.is_finite() {
        let s = if f.is_nan() { "nan" } else { "inf" };
        return if upper { s.to_uppercase() } else { s.into() };
    }
    let exp_form = |p: usize| -> String {
        let s = format!("{f:.p$e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        let mut m = m.to_string();
        if alt && p == 0 {
            m.push('.');
        }
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    };
    let s = match conv.to_ascii_lowercase() {
        'f' => {
            let mut s = format!("{f:.precision$}");
            if alt && precision == 0 {
                s.push('.');
            }
            s
        }
        'e' => exp_form(precision),
        _ => {
            // %g: the exponent the number has at this precision decides the form.
            let p = precision.max(1);
            let sci = format!("{f:.prec$e}", prec = p - 1);
            let exp: i32 = sci
                .split_once('e')
                .and_then(|(_, e)| e.parse().ok())
                .unwrap_or(0);
            let mut s = if exp < -4 || exp >= p as i32 {
                exp_form(p - 1)
            } else {
                let decimals = (p as i32 - 1 - exp).max(0) as usize;
                format!("{f:.decimals$}")
            };
            if !alt {
                // Trailing zeros (and a bare point) of the mantissa go.
                let (mantissa, exponent) = match s.find('e') {
                    Some(i) => (s[..i].to_string(), s[i..].to_string()),
                    None => (s.clone(), String::new()),
                };
                let mantissa = if mantissa.contains('.') {
                    mantissa
                        .trim_end_matches('0')
                        .trim_end_matches('.')
                        .to_string()
                } else {
                    mantissa
                };
                s = format!("{mantissa}{exponent}");
            } else if !s.contains('.') {
                match s.find('e') {
                    Some(i) => s.insert(i, '.'),
                    None => s.push('.'),
                }
            }
            s
        }
    };
    if upper { s.to_uppercase() } else { s }
}

/// Width padding: left-justified with spaces, or zeros after the sign and `0x` of a number.
fn pad(out: &mut String, text: &str, spec: &Spec, conv: char) {
    let len = text.chars().count();
    if len >= spec.width {
        out.push_str(text);
        return;
    }
    let fill = spec.width - len;
    let numeric = !matches!(conv, 's' | 'r' | 'a' | 'c');
    if spec.left {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero
        && numeric
        && !text.ends_with("inf")
        && !text.ends_with("nan")
        && !text.ends_with("INF")
        && !text.ends_with("NAN")
    {
        let mut prefix_len = text
            .find(|c: char| !matches!(c, '-' | '+' | ' '))
            .unwrap_or(0);
        if text[prefix_len..].starts_with("0x")
            || text[prefix_len..].starts_with("0X")
            || text[prefix_len..].starts_with("0o")
        {
            prefix_len += 2;
        }
        out.push_str(&text[..prefix_len]);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(&text[prefix_len..]);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(text);
    }
}
