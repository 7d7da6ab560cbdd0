//! The one secret scrubber of the toolkit.
//!
//! Every applet that reads a secret value (a password, a token, a fetched secret) registers it
//! here. Every line initbox writes (log lines at any verbosity, error messages, the termination
//! log) passes through [`scrub`], which replaces each registered value, and its base64 and
//! percent-encoded forms, with `[REDACTED]`.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;

/// What a secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Values shorter than this are not registered: a two-letter "secret" would shred every log line.
pub const MIN_LEN: usize = 3;

#[derive(Default)]
struct Registry {
    needles: Vec<String>,
    matcher: Option<Arc<AhoCorasick>>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    needles: Vec::new(),
    matcher: None,
});

/// Register a secret value so it never appears in anything initbox prints.
pub fn register(secret: &str) {
    if secret.len() < MIN_LEN {
        return;
    }
    let mut forms = vec![secret.to_string()];
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        forms.push(engine.encode(secret));
    }
    forms.push(percent_encode(secret));
    // Each line of a multi-line secret (a PEM key) on its own, since log lines split them.
    if secret.contains('\n') {
        forms.extend(
            secret
                .lines()
                .map(str::trim)
                .filter(|l| l.len() >= 8 && !l.starts_with("-----"))
                .map(str::to_string),
        );
    }
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    let before = reg.needles.len();
    for form in forms {
        if form.len() >= MIN_LEN && !reg.needles.contains(&form) {
            reg.needles.push(form);
        }
    }
    if reg.needles.len() != before {
        // Longest first, so a value and its own prefix never leave a tail behind.
        let mut needles = reg.needles.clone();
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        reg.matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&needles)
            .ok()
            .map(Arc::new);
        reg.needles = needles;
    }
}

/// Replace every registered secret in `text` with [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let matcher = {
        let reg = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        match &reg.matcher {
            Some(m) => Arc::clone(m),
            None => return Cow::Borrowed(text),
        }
    };
    if !matcher.is_match(text) {
        return Cow::Borrowed(text);
    }
    let replacements = vec![MASK; matcher.patterns_len()];
    Cow::Owned(matcher.replace_all(text, &replacements))
}

/// Whether any secret has been registered (for tests and diagnostics).
pub fn is_active() -> bool {
    REGISTRY.read().map(|r| r.matcher.is_some()).unwrap_or(true)
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
    fn short_values_are_not_registered() {
        register("ab");
        assert_eq!(scrub("abcabc"), "abcabc");
    }

    #[test]
    fn pem_lines_are_registered_one_by_one() {
        register("-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAAS\n-----END KEY-----\n");
        assert!(!scrub("got MIIBVwIBADANBgkqhkiG9w0BAQEFAAS here").contains("MIIBVw"));
    }
}
