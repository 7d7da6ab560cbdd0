//! envsubst mode: POSIX-shell-style parameter expansion, strict.
//!
//! `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:=word}`, `${VAR=word}`,
//! `${VAR:+word}`, `${VAR+word}`, `${VAR:?message}`, `${VAR?message}`, and `$$` or `\$` for a
//! literal `$`. Words may contain expansions themselves. An unset variable without a default is an
//! error (all of them are reported at once, the first with its location). With an allow-list,
//! references to other variables are left exactly as written (GNU envsubst's SHELL-FORMAT).
//! A `$` not followed by a name, `{` or `$` is kept as is (`$1`, `$(cmd)`, `5$`).

use std::collections::{BTreeMap, HashMap};

use crate::jinja::RenderError;

/// Which variables may be substituted: names, or prefixes written `APP_*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    names: Vec<String>,
    prefixes: Vec<String>,
    /// Substitute only variables that are set; leave the others as written (the official
    /// nginx image's `envsubst "$(defined variables)"`, so `$host` stays nginx's).
    pub only_defined: bool,
}

impl Allow {
    /// Parse `A,B C`, `$A ${B}` or `APP_*` (comma or whitespace separated).
    pub fn parse(spec: &str) -> Result<Allow, String> {
        let mut allow = Allow::default();
        for raw in spec.split([',', ' ', '\t', '\n']).filter(|s| !s.is_empty()) {
            let w = raw.trim_start_matches('$');
            let w = w
                .strip_prefix('{')
                .and_then(|w| w.strip_suffix('}'))
                .unwrap_or(w);
            if let Some(prefix) = w.strip_suffix('*') {
                if !prefix.is_empty() && !is_name(prefix) {
                    return Err(format!("'{raw}' is not a variable name or NAME_* prefix"));
                }
                allow.prefixes.push(prefix.to_string());
            } else if is_name(w) {
                allow.names.push(w.to_string());
            } else {
                return Err(format!("'{raw}' is not a variable name or NAME_* prefix"));
            }
        }
        if allow.names.is_empty() && allow.prefixes.is_empty() {
            return Err(format!("'{spec}' names no variables"));
        }
        Ok(allow)
    }

    /// Every variable that is set (with `base`: those of its names and prefixes that are set).
    pub fn defined_only(base: Option<Allow>) -> Allow {
        let mut a = base.unwrap_or(Allow {
            names: Vec::new(),
            prefixes: vec![String::new()],
            only_defined: true,
        });
        a.only_defined = true;
        a
    }

    pub fn allows(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name) || self.prefixes.iter().any(|p| name.starts_with(p))
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn name_len(s: &[u8]) -> usize {
    if s.is_empty() || !(s[0] == b'_' || s[0].is_ascii_alphabetic()) {
        return 0;
    }
    s.iter()
        .take_while(|c| **c == b'_' || c.is_ascii_alphanumeric())
        .count()
}

/// How a reference uses its variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Must be set (`$V`, `${V}`, `${V?m}`), or set and not empty (`${V:?m}`).
    Required,
    /// Has a default or alternative (`${V:-d}`, `${V+a}` ...).
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Plain,
    Default { colon: bool },
    Assign { colon: bool },
    Alternative { colon: bool },
    Error { colon: bool },
}

/// The variables a template references, with whether they are required (lint).
pub fn variables(name: &str, source: &str) -> Result<BTreeMap<String, Need>, RenderError> {
    let mut out: BTreeMap<String, Need> = BTreeMap::new();
    let mut x = Expander {
        name,
        src: source,
        lookup: &|_| None,
        allow: None,
        assigned: HashMap::new(),
        missing: Vec::new(),
        scan: Some(&mut out),
        optional_depth: 0,
    };
    let mut sink = String::new();
    x.expand(0, source.len(), &mut sink)?;
    Ok(out)
}

/// Expand `source`; `lookup` gives a variable's value (`None` when unset).
pub fn render(
    name: &str,
    source: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    allow: Option<&Allow>,
) -> Result<String, RenderError> {
    let mut x = Expander {
        name,
        src: source,
        lookup,
        allow,
        assigned: HashMap::new(),
        missing: Vec::new(),
        scan: None,
        optional_depth: 0,
    };
    let mut out = String::with_capacity(source.len());
    x.expand(0, source.len(), &mut out)?;
    if let Some(first) = x.missing.first() {
        let mut err = first.clone();
        let mut others: Vec<&str> = Vec::new();
        for m in x.missing.iter().skip(1) {
            let n = m.message.split_whitespace().nth(1).unwrap_or("");
            if !others.contains(&n) && !first.message.contains(&format!(" {n} ")) {
                others.push(n);
            }
        }
        if !others.is_empty() {
            err.message
                .push_str(&format!(" (also not set: {})", others.join(", ")));
        }
        return Err(err);
    }
    Ok(out)
}

struct Expander<'a, 's> {
    name: &'a str,
    src: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    allow: Option<&'a Allow>,
    assigned: HashMap<String, String>,
    missing: Vec<RenderError>,
    scan: Option<&'s mut BTreeMap<String, Need>>,
    /// Inside the word of a default/alternative (lint): nested references are optional.
    optional_depth: usize,
}

impl Expander<'_, '_> {
    fn error(&self, start: usize, end: usize, msg: String) -> RenderError {
        RenderError::new(self.name, msg).at(self.src, start, end)
    }

    fn get(&self, var: &str) -> Option<String> {
        if let Some(v) = self.assigned.get(var) {
            return Some(v.clone());
        }
        (self.lookup)(var)
    }

    /// Expand `src[start..end]` into `out`.
    fn expand(&mut self, start: usize, end: usize, out: &mut String) -> Result<(), RenderError> {
        let bytes = self.src.as_bytes();
        let mut i = start;
        let mut lit = start;
        while i < end {
            if bytes[i] != b'$' {
                i += 1;
                continue;
            }
            // `\$` is a literal `$` (the backslash is dropped, the name after it kept).
            if i > lit && bytes[i - 1] == b'\\' {
                out.push_str(&self.src[lit..i - 1]);
                out.push('$');
                i += 1;
                lit = i;
                continue;
            }
            out.push_str(&self.src[lit..i]);
            let dollar = i;
            match bytes.get(i + 1).copied().filter(|_| i + 1 < end) {
                Some(b'$') => {
                    out.push('$');
                    i += 2;
                }
                Some(b'{') => {
                    i = self.braced(dollar, end, out)?;
                }
                Some(_) => {
                    let n = name_len(&bytes[i + 1..end]);
                    if n == 0 {
                        out.push('$');
                        i += 1;
                    } else {
                        let var = &self.src[i + 1..i + 1 + n];
                        i = i + 1 + n;
                        self.substitute(var, Op::Plain, None, dollar, i, out)?;
                    }
                }
                None => {
                    out.push('$');
                    i += 1;
                }
            }
            // Each value is bounded by its source, so the output stops near the limit.
            if out.len() > crate::jinja::max_output() {
                return Err(self.error(dollar, i, crate::jinja::too_large_message("the output")));
            }
            lit = i;
        }
        out.push_str(&self.src[lit..end.max(lit)]);
        Ok(())
    }

    /// `${...}` starting at `dollar`; returns the index after the closing brace.
    fn braced(
        &mut self,
        dollar: usize,
        end: usize,
        out: &mut String,
    ) -> Result<usize, RenderError> {
        let bytes = self.src.as_bytes();
        let name_start = dollar + 2;
        let n = name_len(&bytes[name_start..end]);
        let close = self.matching_brace(dollar, end)?;
        if n == 0 {
            // `${1}`, `${#x}`, `${}`: not ours; keep as written.
            out.push_str(&self.src[dollar..close + 1]);
            return Ok(close + 1);
        }
        let var = &self.src[name_start..name_start + n];
        let mut j = name_start + n;
        let colon = bytes[j] == b':';
        if colon {
            j += 1;
        }
        let op = match bytes[j] {
            b'}' if !colon => Op::Plain,
            b'-' => Op::Default { colon },
            b'=' => Op::Assign { colon },
            b'+' => Op::Alternative { colon },
            b'?' => Op::Error { colon },
            _ => {
                return Err(self.error(
                    dollar,
                    close + 1,
                    format!(
                        "bad substitution {}: expected }}, :-, -, :=, =, :+, +, :? or ? after the name",
                        self.src[dollar..close + 1].chars().take(40).collect::<String>()
                    ),
                ));
            }
        };
        let word = if op == Op::Plain {
            None
        } else {
            Some((j + 1, close))
        };
        self.substitute(var, op, word, dollar, close + 1, out)?;
        Ok(close + 1)
    }

    fn matching_brace(&self, dollar: usize, end: usize) -> Result<usize, RenderError> {
        let bytes = self.src.as_bytes();
        let mut depth = 1;
        let mut k = dollar + 2;
        while k < end {
            match bytes[k] {
                b'$' if k + 1 < end && bytes[k + 1] == b'$' => k += 2,
                b'$' if k + 1 < end && bytes[k + 1] == b'{' => {
                    depth += 1;
                    k += 2;
                }
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(k);
                    }
                    k += 1;
                }
                _ => k += 1,
            }
        }
        let line_end = self.src[dollar..end]
            .find('\n')
            .map(|x| dollar + x)
            .unwrap_or(end);
        Err(self.error(
            dollar,
            line_end,
            "unterminated ${: no closing }".to_string(),
        ))
    }

    fn substitute(
        &mut self,
        var: &str,
        op: Op,
        word: Option<(usize, usize)>,
        start: usize,
        end: usize,
        out: &mut String,
    ) -> Result<(), RenderError> {
        if let Some(allow) = self.allow
            && (!allow.allows(var) || (allow.only_defined && self.get(var).is_none()))
        {
            out.push_str(&self.src[start..end]);
            return Ok(());
        }
        if let Some(scan) = self.scan.as_deref_mut() {
            let need = match op {
                _ if self.optional_depth > 0 => Need::Optional,
                Op::Plain | Op::Error { .. } => Need::Required,
                _ => Need::Optional,
            };
            let e = scan.entry(var.to_string()).or_insert(need);
            if need == Need::Required {
                *e = Need::Required;
            }
            if let Some((ws, we)) = word {
                let mut sink = String::new();
                self.optional_depth += 1;
                let r = self.expand(ws, we, &mut sink);
                self.optional_depth -= 1;
                r?;
            }
            return Ok(());
        }
        let value = self.get(var);
        let usable = |colon: bool| match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        let expand_word = |me: &mut Self| -> Result<String, RenderError> {
            let mut w = String::new();
            if let Some((ws, we)) = word {
                me.expand(ws, we, &mut w)?;
            }
            Ok(w)
        };
        match op {
            Op::Plain => match value {
                Some(v) => out.push_str(&v),
                None => self.missing.push(self.error(
                    start,
                    end,
                    format!(
                        "variable {var} is not set (give it a value or write ${{{var}:-default}})"
                    ),
                )),
            },
            Op::Default { colon } => {
                if usable(colon) {
                    out.push_str(value.as_deref().unwrap_or_default());
                } else {
                    out.push_str(&expand_word(self)?);
                }
            }
            Op::Assign { colon } => {
                if usable(colon) {
                    out.push_str(value.as_deref().unwrap_or_default());
                } else {
                    let w = expand_word(self)?;
                    self.assigned.insert(var.to_string(), w.clone());
                    out.push_str(&w);
                }
            }
            Op::Alternative { colon } => {
                if usable(colon) {
                    out.push_str(&expand_word(self)?);
                }
            }
            Op::Error { colon } => {
                if usable(colon) {
                    out.push_str(value.as_deref().unwrap_or_default());
                } else {
                    let w = expand_word(self)?;
                    let state = if value.is_some() { "empty" } else { "not set" };
                    let msg = if w.trim().is_empty() {
                        format!("variable {var} is {state}")
                    } else {
                        format!("variable {var} is {state}: {}", w.trim())
                    };
                    self.missing.push(self.error(start, end, msg));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HashMap<String, String> {
        [("A", "alpha"), ("EMPTY", ""), ("N", "5")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn r(src: &str) -> Result<String, RenderError> {
        let v = vars();
        render("t", src, &|k| v.get(k).cloned(), None)
    }

    #[test]
    fn forms() {
        assert_eq!(r("$A ${A} x$A-y").unwrap(), "alpha alpha xalpha-y");
        assert_eq!(
            r("${U:-def} ${EMPTY:-def} ${EMPTY-def}").unwrap(),
            "def def "
        );
        assert_eq!(r("${U-d1} ${A-d2}").unwrap(), "d1 alpha");
        assert_eq!(
            r("${A:+set} ${EMPTY:+set} ${EMPTY+set} ${U+set}").unwrap(),
            "set  set "
        );
        assert_eq!(r("${U:=x} $U").unwrap(), "x x");
        assert_eq!(r("$$A $$ $1 $ ${1} 5$").unwrap(), "$A $ $1 $ ${1} 5$");
        assert_eq!(r("${U:-${A}-${N}}").unwrap(), "alpha-5");
        assert_eq!(r("${U:-$$}").unwrap(), "$");
        assert_eq!(r("ünï $A ✓").unwrap(), "ünï alpha ✓");
    }

    #[test]
    fn errors() {
        let e = r("x\n  port=$PORT\n").unwrap_err();
        assert_eq!(e.location(), "t:2:8");
        assert!(e.message.contains("PORT is not set"), "{}", e.message);
        let e = r("$B $C $B").unwrap_err();
        assert!(e.message.contains("B is not set"), "{}", e.message);
        assert!(e.message.contains("also not set: C"), "{}", e.message);
        let e = r("${EMPTY:?must be set}").unwrap_err();
        assert_eq!(e.message, "variable EMPTY is empty: must be set");
        assert_eq!(r("${EMPTY?m}").unwrap(), "");
        let e = r("${U?}").unwrap_err();
        assert_eq!(e.message, "variable U is not set");
        let e = r("a ${A").unwrap_err();
        assert!(e.message.contains("unterminated"), "{}", e.message);
        let e = r("${A/x/y}").unwrap_err();
        assert!(e.message.contains("bad substitution"), "{}", e.message);
    }

    #[test]
    fn allow_list_keeps_others_verbatim() {
        let v = vars();
        let allow = Allow::parse("A, $N").unwrap();
        let out = render(
            "t",
            "$A ${N} $U ${U:-x} $$",
            &|k| v.get(k).cloned(),
            Some(&allow),
        )
        .unwrap();
        assert_eq!(out, "alpha 5 $U ${U:-x} $");
        let allow = Allow::parse("A*").unwrap();
        assert!(allow.allows("APP_X") && !allow.allows("B"));
        assert!(Allow::parse("1x").is_err());
    }

    #[test]
    fn lint_classifies() {
        let v = variables("t", "$A ${B:-$C} ${D:?m} ${E+x}").unwrap();
        assert_eq!(v["A"], Need::Required);
        assert_eq!(v["B"], Need::Optional);
        assert_eq!(v["C"], Need::Optional);
        assert_eq!(v["D"], Need::Required);
        assert_eq!(v["E"], Need::Optional);
    }
}
