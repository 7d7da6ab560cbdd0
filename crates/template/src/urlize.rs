//! Jinja2's `urlize(trim_url_limit=None, nofollow=False, target=None, rel=None,
//! extra_schemes=None)` with Jinja2 3.1's rules: the text is HTML-escaped, split at
//! whitespace, and each word that is an `http(s)://` or `www.` URL, a `mailto:` link or an
//! e-mail address becomes a link; leading `(`/`<` and trailing `.`, `,`, `)`, `>` stay outside
//! unless they balance brackets inside the URL. The environment policy `urlize.rel` is
//! Jinja2's default, `noopener`.

use std::sync::LazyLock;

use minijinja::value::{Kwargs, Rest, Value};
use minijinja::{Error, ErrorKind};
use regex::Regex;

use crate::filters::{arg, html_escape};
use crate::python;

/// jinja2.utils' `_http_re` (IGNORECASE, VERBOSE, Unicode `\w`).
static HTTP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(
            (https?://|www\.)(([\w%-]+\.)+)?([a-z]{2,63}|xn--[\w%]{2,59})
          | ([\w%-]{2,63}\.)+(com|net|int|edu|gov|org|info|mil)
          | (https?://)((\d{1,3}(\.\d{1,3}){3})|(\[([\da-f]{0,4}:){2}([\da-f]{0,4}:?){1,6}\]))
        )(?::\d{1,5})?(?:[/?\#]\S*)?$",
    )
    .unwrap_or_else(|e| unreachable!("{e}"))
});

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\S+@\w[\w.-]*\.\w+$").unwrap_or_else(|e| unreachable!("{e}")));

static LEAD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([(<]|&lt;)+").unwrap_or_else(|e| unreachable!("{e}")));

static TRAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([)>.,\n]|&gt;)+$").unwrap_or_else(|e| unreachable!("{e}")));

static SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([\w.+-]{2,}:(/){0,2})$").unwrap_or_else(|e| unreachable!("{e}"))
});

pub fn urlize(
    value: &Value,
    trim_url_limit: Option<usize>,
    nofollow: Option<bool>,
    rest: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let positional =
        |i: usize| -> Option<String> { rest.get(i).filter(|v| !v.is_none()).map(python::to_str) };
    let (target, rel) = (positional(0), positional(1));
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    let limit = arg(&kwargs, "trim_url_limit", trim_url_limit)?;
    let nofollow = arg(&kwargs, "nofollow", nofollow)?.unwrap_or(false);
    let target = arg(&kwargs, "target", target)?.filter(|t| !t.is_empty());
    let rel = arg(&kwargs, "rel", rel)?;
    let extra: Vec<String> = kwargs
        .get::<Option<Vec<String>>>("extra_schemes")?
        .unwrap_or_default();
    kwargs.assert_all_used()?;
    for s in &extra {
        if !SCHEME.is_match(s) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "urlize: {} is not a valid URI scheme prefix.",
                    python::str_repr(s)
                ),
            ));
        }
    }
    // rel: the given words, `nofollow`, and the policy's `noopener`, sorted and deduplicated.
    let mut rel_parts: Vec<&str> = rel.as_deref().unwrap_or("").split_whitespace().collect();
    if nofollow {
        rel_parts.push("nofollow");
    }
    rel_parts.push("noopener");
    rel_parts.sort_unstable();
    rel_parts.dedup();
    let rel_attr = format!(" rel=\"{}\"", html_escape(&rel_parts.join(" ")));
    let target_attr = target
        .map(|t| format!(" target=\"{}\"", html_escape(&t)))
        .unwrap_or_default();
    let trim = |x: &str| -> String {
        match limit {
            Some(n) if x.chars().count() > n => {
                format!("{}...", x.chars().take(n).collect::<String>())
            }
            _ => x.to_string(),
        }
    };

    let text = if value.is_safe() {
        python::to_str(value)
    } else {
        html_escape(&python::to_str(value))
    };
    let mut out = String::with_capacity(text.len() * 2);
    for (word, space) in words(&text) {
        let mut head = "";
        let mut middle = word.to_string();
        let mut tail = String::new();
        if let Some(m) = LEAD.find(word) {
            head = m.as_str();
            middle = word[m.end()..].to_string();
        }
        if let Some(m) = TRAIL.find(&middle) {
            tail = m.as_str().to_string();
            middle.truncate(m.start());
        }
        // Brackets opened inside the URL take their closing partners back from the tail.
        for (open, close) in [("(", ")"), ("<", ">"), ("&lt;", "&gt;")] {
            let opened = middle.matches(open).count();
            if opened <= middle.matches(close).count() {
                continue;
            }
            for _ in 0..opened.min(tail.matches(close).count()) {
                let Some(i) = tail.find(close) else { break };
                let end = i + close.len();
                middle.push_str(&tail[..end]);
                tail = tail[end..].to_string();
            }
        }
        let linked = if HTTP.is_match(&middle) {
            let href = if middle.starts_with("https://") || middle.starts_with("http://") {
                middle.clone()
            } else {
                format!("https://{middle}")
            };
            format!(
                "<a href=\"{href}\"{rel_attr}{target_attr}>{}</a>",
                trim(&middle)
            )
        } else if let Some(addr) = middle.strip_prefix("mailto:").filter(|a| EMAIL.is_match(a)) {
            format!("<a href=\"{middle}\">{addr}</a>")
        } else if middle.contains('@')
            && !middle.starts_with("www.")
            && !middle.starts_with('@')
            && !middle.contains(':')
            && EMAIL.is_match(&middle)
        {
            format!("<a href=\"mailto:{middle}\">{middle}</a>")
        } else {
            let mut m = middle.clone();
            for scheme in &extra {
                if m != *scheme && m.starts_with(scheme.as_str()) {
                    m = format!("<a href=\"{m}\"{rel_attr}{target_attr}>{m}</a>");
                }
            }
            m
        };
        out.push_str(head);
        out.push_str(&linked);
        out.push_str(&tail);
        out.push_str(space);
    }
    Ok(out)
}

/// `re.split(r"(\s+)", text)` as (word, following whitespace) pairs.
fn words(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() || out.is_empty() {
        let w_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let after = &rest[w_end..];
        let s_end = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        out.push((&rest[..w_end], &after[..s_end]));
        rest = &after[s_end..];
        if rest.is_empty() {
            break;
        }
    }
    out
}
