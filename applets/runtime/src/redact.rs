//! The one secret scrubber of the toolkit.
//!
//! Every applet that reads a secret value (a password, a token, a fetched secret) registers it
//! here. Every line initbox writes (log lines at any verbosity, error messages, the termination
//! log) passes through [`scrub`], which replaces each registered value, and every form in which
//! it can reach a log line, with `[REDACTED]`:
//!
//! - the value itself, and each line of a multi-line value (a PEM key) on its own;
//! - percent-encoded (upper- and lower-case hex);
//! - JSON-escaped (`"` as `\"`, `\` as `\\`, control characters), once and twice, and as Rust's
//!   `Debug` prints it, so a value with quotes or backslashes is caught in `--log-format json`;
//! - base64, standard and URL-safe alphabets, padded or not, at all three alignments: a value
//!   inside a larger encoded string (`Authorization: Basic base64(user:pass)`) is caught by the
//!   part of its encoding that does not depend on the bytes around it.
//!
//! Rules on length:
//! - values shorter than [`MIN_LEN`] bytes are not registered at all;
//! - a form shorter than [`TOKEN_LEN`] bytes is masked only as a whole token: not when a letter,
//!   digit, `_` or non-ASCII character touches it on a side where the form itself starts or ends
//!   with one. So the password `app` is masked in `user=app,` but not in `application`. (A short
//!   value that does stand alone, as `500` in `HTTP 500`, cannot be told apart and is masked.)
//!   The base64 forms at a shifted alignment are never whole tokens, so they are kept only when
//!   at least [`TOKEN_LEN`] characters long.
//!
//! Cost: the forms are compiled once per set of secrets (lazily, at the first [`scrub`] after a
//! [`register`]) into one matcher, and a line is scanned in time linear in its length: forms up
//! to 256 bytes share one Aho-Corasick automaton (an NFA; the DFA that the crate would pick for a
//! few patterns takes quadratic time to build for repetitive values such as 4 KB of `A`), longer
//! forms each get a two-way substring searcher (linear time, memory proportional to the form).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine;
use memchr::memmem;

/// What a secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Values shorter than this are not registered: a two-letter "secret" would shred every log line.
pub const MIN_LEN: usize = 3;

/// Forms shorter than this are masked only where they stand as a whole token (see the module doc).
pub const TOKEN_LEN: usize = 8;

/// Forms at least this long are searched one by one with a two-way searcher instead of through
/// the automaton, whose size and build time grow with the total length of its patterns.
const LONG: usize = 256;

#[derive(Default)]
struct Registry {
    /// Values already registered (so registering again, as `url_for_display` does per call, is cheap).
    values: HashSet<String>,
    /// Every distinct form of every value (order does not matter: every match is masked).
    forms: HashSet<String>,
    /// The matcher for `forms`; `None` while `forms` changed since it was built.
    matcher: Option<Arc<Matcher>>,
}

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(|| RwLock::new(Registry::default()));

/// Register a secret value so it never appears in anything initbox prints.
pub fn register(secret: &str) {
    if secret.len() < MIN_LEN {
        return;
    }
    if REGISTRY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values
        .contains(secret)
    {
        return;
    }
    let forms = forms(secret);
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if !reg.values.insert(secret.to_string()) {
        return;
    }
    for form in forms {
        if form.len() >= MIN_LEN && reg.forms.insert(form) {
            reg.matcher = None;
        }
    }
}

/// Every form in which `secret` may reach a line of output.
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    let upper = percent_encode(secret);
    forms.push(lower_hex(&upper));
    forms.push(upper);
    let json = json_escape(secret);
    forms.push(json_escape(&json));
    forms.push(json);
    let debug = format!("{secret:?}");
    forms.push(debug[1..debug.len() - 1].to_string());
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ] {
        let full = engine.encode(secret);
        forms.push(full.trim_end_matches('=').to_string());
        forms.push(full);
        for shift in 0..3 {
            if let Some(inner) = base64_inner(engine, secret.as_bytes(), shift)
                && inner.len() >= TOKEN_LEN
            {
                forms.push(inner);
            }
        }
    }
    // Each line of a multi-line secret (a PEM key) on its own, since log lines split them.
    if secret.contains('\n') {
        forms.extend(
            secret
                .lines()
                .map(str::trim)
                .filter(|l| l.len() >= TOKEN_LEN && !l.starts_with("-----"))
                .map(str::to_string),
        );
    }
    forms
}

/// The part of `secret`'s base64 encoding that is the same whatever bytes surround it, when it
/// starts `shift` bytes (0, 1 or 2) after a 3-byte group boundary of the encoded data.
fn base64_inner(engine: &impl Engine, secret: &[u8], shift: usize) -> Option<String> {
    let mut data = vec![0u8; shift];
    data.extend_from_slice(secret);
    let encoded = engine.encode(&data);
    // The first characters mix the preceding bytes in: 0, 2 or 3 of them.
    let start = [0, 2, 3][shift];
    // Whole groups, then 1 or 2 characters of a last partial group made of the value's bits only.
    let n = data.len();
    let end = n / 3 * 4 + [0, 1, 2][n % 3];
    encoded.get(start..end).map(str::to_string)
}

/// `%2F` as `%2f`: only the two digits after each `%` change case.
fn lower_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut digits = 0;
    for c in s.chars() {
        if digits > 0 {
            out.push(c.to_ascii_lowercase());
            digits -= 1;
        } else {
            digits = if c == '%' { 2 } else { 0 };
            out.push(c);
        }
    }
    out
}

/// `s` as it appears between the quotes of a JSON string.
fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

/// All registered forms, compiled once per set of secrets.
struct Matcher {
    /// Forms shorter than [`LONG`], all in one automaton (overlapping search, so a form that is
    /// not a whole token never hides one that is).
    automaton: Option<AhoCorasick>,
    /// Per automaton pattern: whether it must stand as a whole token.
    whole_token: Vec<bool>,
    /// Forms of [`LONG`] bytes or more (all forms if the automaton could not be built), each
    /// with whether it must stand as a whole token.
    alone: Vec<(memmem::Finder<'static>, bool)>,
}

impl Matcher {
    fn build(forms: &HashSet<String>) -> Matcher {
        let (mut short, mut alone): (Vec<&String>, Vec<&String>) =
            forms.iter().partition(|f| f.len() < LONG);
        let automaton = if short.is_empty() {
            None
        } else {
            match AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(&short)
            {
                Ok(ac) => Some(ac),
                // Never unmasked: without an automaton every form is searched on its own.
                Err(_) => {
                    alone.append(&mut short);
                    None
                }
            }
        };
        Matcher {
            automaton,
            whole_token: short.iter().map(|f| f.len() < TOKEN_LEN).collect(),
            alone: alone
                .iter()
                .map(|f| {
                    let finder = memmem::Finder::new(f.as_bytes()).into_owned();
                    (finder, f.len() < TOKEN_LEN)
                })
                .collect(),
        }
    }

    /// The byte ranges of `text` to mask: sorted, disjoint, adjoining ranges joined.
    fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        let bytes = text.as_bytes();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        if let Some(ac) = &self.automaton {
            // Matches come by increasing end; fold each into the union as it comes.
            for m in ac.find_overlapping_iter(text) {
                if self.whole_token[m.pattern().as_usize()]
                    && !whole_token(bytes, m.start(), m.end())
                {
                    continue;
                }
                let (mut start, end) = (m.start(), m.end());
                while let Some(&(s, e)) = spans.last() {
                    if e < start {
                        break;
                    }
                    start = start.min(s);
                    spans.pop();
                }
                spans.push((start, end));
            }
        }
        if !self.alone.is_empty() {
            for (finder, whole) in &self.alone {
                let len = finder.needle().len();
                spans.extend(
                    finder
                        .find_iter(bytes)
                        .map(|s| (s, s + len))
                        .filter(|&(s, e)| !whole || whole_token(bytes, s, e)),
                );
            }
            spans.sort_unstable();
            let mut joined: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
            for (s, e) in spans {
                match joined.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => joined.push((s, e)),
                }
            }
            spans = joined;
        }
        spans
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Whether `text[start..end]` stands alone: no word character continues it on either side.
fn whole_token(text: &[u8], start: usize, end: usize) -> bool {
    let open = start == 0 || !is_word(text[start]) || !is_word(text[start - 1]);
    let close = end == text.len() || !is_word(text[end - 1]) || !is_word(text[end]);
    open && close
}

fn matcher() -> Option<Arc<Matcher>> {
    {
        let reg = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        if reg.forms.is_empty() {
            return None;
        }
        if let Some(m) = &reg.matcher {
            return Some(Arc::clone(m));
        }
    }
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if reg.matcher.is_none() {
        reg.matcher = Some(Arc::new(Matcher::build(&reg.forms)));
    }
    reg.matcher.clone()
}

/// Replace every registered secret in `text` with [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let Some(matcher) = matcher() else {
        return Cow::Borrowed(text);
    };
    let spans = matcher.spans(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        out.push_str(&text[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// At most `max` characters of `text` on one line (control characters as spaces, `…` where it
/// was cut), for an error that quotes what a server sent. The whole text is scrubbed before it
/// is cut: cut first, a secret that straddles the cut would leave its head unmatched.
pub fn excerpt(text: &str, max: usize) -> String {
    let clean = scrub(text);
    let mut chars = clean.chars().map(|c| if c.is_control() { ' ' } else { c });
    let mut out: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Whether any secret has been registered (for tests and diagnostics).
pub fn is_active() -> bool {
    REGISTRY.read().map(|r| !r.forms.is_empty()).unwrap_or(true)
}

/// A parser's error message about an input that may hold secrets (a spec or steps file), without
/// the input it quotes: serde writes `invalid type: string "THE FILE'S TEXT", expected …` and
/// `unknown variant `VALUE``. Quoted and backticked parts before `, expected` are dropped; the
/// expectation (names from the schema) and the position are kept. One line.
pub fn without_input_values(message: &str) -> String {
    let message = message.lines().next().unwrap_or_default().trim();
    let (found, expected) = message.split_at(message.find(", expected").unwrap_or(message.len()));
    let mut out = String::with_capacity(found.len());
    let mut chars = found.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    match d {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '`' => {
                let quoted: String = chars.by_ref().take_while(|&d| d != '`').collect();
                // A misspelt key is worth showing when it is a plain name (`chekcs`).
                if out.ends_with("unknown field ") && is_plain_name(&quoted) {
                    out.push_str(&format!("`{quoted}`"));
                    continue;
                }
            }
            _ => {
                out.push(c);
                continue;
            }
        }
        out.truncate(out.trim_end().len());
    }
    out.push_str(expected);
    out
}

/// Whether `key` may be shown as a name in an error: 1 to 64 letters, digits, `_`, `-`, `.`.
/// Anything else read from a secret source (a line of a file parsed as a key) is content.
pub fn is_plain_name(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// A URL as it may be shown (its password registered and masked): forwards to
/// [`crate::url::display`], the one URL display of the toolkit.
pub fn url_for_display(url: &str) -> String {
    crate::url::display(url)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_value_and_encodings() {
        register("hunter2-canary-Zq9");
        let b64 = base64::engine::general_purpose::STANDARD.encode("hunter2-canary-Zq9");
        let line = format!("password=hunter2-canary-Zq9 header={b64} url=x%3A");
        let out = scrub(&line);
        assert!(!out.contains("hunter2-canary-Zq9"));
        assert!(!out.contains(&b64));
        assert!(out.contains(MASK));
    }

    #[test]
    fn excerpts_are_scrubbed_before_they_are_cut() {
        register("excerpt-canary-Wq81zz");
        let body = format!("{}excerpt-canary-Wq81zz tail", "x".repeat(20));
        let cut = excerpt(&body, 30);
        assert!(!cut.contains("excerpt-canary"), "{cut}");
        assert!(!cut.contains("excerpt-ca"), "{cut}");
        assert!(cut.ends_with('…'), "{cut}");
        assert_eq!(excerpt("a\nb", 10), "a b");
    }

    #[test]
    fn short_values_are_not_registered() {
        register("ab");
        assert_eq!(scrub("abcabc"), "abcabc");
    }

    #[test]
    fn pem_lines_are_registered_one_by_one() {
        register("-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAAS\n-----END KEY-----\n");
        assert!(!scrub("got MIIBVwIBADANBgkqhkiG9w0BAQEFAAS here").contains("MIIBVw"));
    }

    /// 21.4: `Authorization: Basic base64(user:password)` hides the password whatever the length
    /// of the user name (the three alignments), in both alphabets.
    #[test]
    fn base64_of_a_value_inside_other_bytes_is_masked() {
        let pw = "Pw?>~canary-b64-Kq7";
        register(pw);
        for user in ["u", "us", "usr", "user"] {
            for engine in [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ] {
                let enc = engine.encode(format!("{user}:{pw}"));
                let out = scrub(&format!("< authorization: Basic {enc}")).into_owned();
                assert!(out.contains(MASK), "{user}: {out}");
                // What is left visible of the encoding: the user part and at most one
                // character on each side mixing in the password's bits.
                let visible = out.len() - MASK.len() - "< authorization: Basic ".len();
                assert!(
                    visible <= (user.len() + 1) * 4 / 3 + 2 + 1 + 3,
                    "{user}: {out}"
                );
            }
        }
    }

    /// 21.4: a value with `"` or `\` as JSON log lines and Debug output print it.
    #[test]
    fn json_escaped_forms_are_masked() {
        let pw = r#"Up"Q\Zcanary-json"#;
        register(pw);
        let json = serde_json::json!({ "message": format!("auth {pw} refused") }).to_string();
        let out = scrub(&json);
        assert!(!out.contains("Zcanary-json"), "{out}");
        assert!(out.contains(MASK));
        let twice = serde_json::json!({ "body": json }).to_string();
        assert!(!scrub(&twice).contains("Zcanary-json"));
        assert!(!scrub(&format!("{:?}", pw)).contains("Zcanary-json"));
    }

    /// 21.6: a short value is masked where it stands alone, never inside another word.
    #[test]
    fn short_values_are_masked_as_whole_tokens_only() {
        register("zqx");
        register("7q!");
        assert_eq!(scrub("zqxlication"), "zqxlication");
        assert_eq!(scrub("HTTP 5zqx0 abzqx"), "HTTP 5zqx0 abzqx");
        assert_eq!(
            scrub("user=zqx, pass:zqx"),
            format!("user={MASK}, pass:{MASK}")
        );
        // The side of a value that is not a word character needs no boundary.
        assert_eq!(scrub("a7q!b"), "a7q!b");
        assert_eq!(scrub("x=7q!b"), format!("x={MASK}b"));
        // Long values are masked anywhere.
        register("longer-canary-value");
        assert_eq!(scrub("xlonger-canary-valuex"), format!("x{MASK}x"));
    }

    #[test]
    fn parser_messages_lose_the_input_they_quote() {
        assert_eq!(
            without_input_values(
                r#"invalid type: string "root:$6$x\"y:1::", expected a sequence at line 3 column 7"#
            ),
            "invalid type: string, expected a sequence at line 3 column 7"
        );
        assert_eq!(
            without_input_values("unknown field `pw=x`, expected one of `a`, `b`\nmore"),
            "unknown field, expected one of `a`, `b`"
        );
        assert_eq!(
            without_input_values("unknown field `chekcs`, expected `checks` at line 1"),
            "unknown field `chekcs`, expected `checks` at line 1"
        );
        assert_eq!(
            without_input_values("unknown variant `hunter2`, expected `tcp`"),
            "unknown variant, expected `tcp`"
        );
        assert_eq!(
            without_input_values("invalid value: integer `5`, expected u8"),
            "invalid value: integer, expected u8"
        );
    }

    /// 21.7: a 5 MB repetitive value is registered and scrubbed in linear time (the old
    /// automaton took 6 s to build for 4 KB of `A`s and never finished for 5 MB).
    #[test]
    fn huge_repetitive_value_is_scrubbed_in_linear_time() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let secret = "A".repeat(5 << 20);
            register(&secret);
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("x{secret}"));
            let line = format!("got {secret} and {enc} end");
            let out = scrub(&line).into_owned();
            let _ = tx.send(out);
        });
        let out = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("scrubbing a 5 MB value took over 60 s");
        assert!(out.starts_with(&format!("got {MASK}")), "{}", &out[..40]);
        assert!(out.len() < 100, "{}", &out[..100]);
        assert!(out.ends_with(" end"));
    }
}
