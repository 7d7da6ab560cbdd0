//! Canary values and every printable form of them, for leak tests: a secret must appear in no
//! output, neither as is nor in a form a scrubber that only knows the plain value would miss.

/// One form of a canary as it could appear in output, with a name for failure messages.
#[derive(Debug, Clone)]
pub struct Form {
    pub name: String,
    pub text: String,
}

/// The forms of `secret` to look for: the value itself; each run of 10+ letters and digits in it
/// (a value cut at a reserved character, e.g. the tail of `p@ss/w:rd` printed as a host, must
/// still be caught); standard and URL-safe base64 at the three alignments (so the value is found
/// inside `base64("user:" + value)` too); percent-encoding (upper- and lower-case hex); and the
/// JSON string escape. Forms identical to another are listed once.
pub fn forms(secret: &str) -> Vec<Form> {
    let mut out: Vec<Form> = Vec::new();
    let mut push = |name: String, text: String| {
        if text.len() >= 4 && !out.iter().any(|f| f.text == text) {
            out.push(Form { name, text });
        }
    };
    push("raw".into(), secret.to_string());
    for run in secret
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|r| r.len() >= 10 && r.len() < secret.len())
    {
        push(format!("fragment {run:?}"), run.to_string());
    }
    for (alphabet, name) in [(STANDARD, "base64"), (URL_SAFE, "base64url")] {
        for align in 0..3 {
            push(
                format!("{name}@{align}"),
                base64_core(secret.as_bytes(), align, alphabet),
            );
        }
    }
    push("percent-encoded".into(), percent(secret, false));
    push("percent-encoded (lower hex)".into(), percent(secret, true));
    push("JSON-escaped".into(), json_escape(secret));
    out
}

/// Where `haystack` contains a form of `secret`: (form name and count, an excerpt of the first).
pub fn find(secret: &str, haystack: &str) -> Vec<(String, String)> {
    let mut hits = Vec::new();
    let whole = haystack.contains(secret);
    for f in forms(secret) {
        // Fragments matter when the whole value is not there (a value cut at a `@`).
        if whole && f.name.starts_with("fragment") {
            continue;
        }
        if let Some(i) = haystack.find(&f.text) {
            let n = haystack.matches(&f.text).count();
            let name = if n > 1 {
                format!("{} ({n} times)", f.name)
            } else {
                f.name
            };
            hits.push((name, excerpt(haystack, i, f.text.len())));
        }
    }
    hits
}

/// `text[i..i+len]` with up to 40 characters either side, on one line.
pub fn excerpt(text: &str, i: usize, len: usize) -> String {
    let start = floor(text, i.saturating_sub(40));
    let end = floor(text, (i + len + 40).min(text.len()));
    format!("…{}…", text[start..end].replace('\n', "⏎"))
}

fn floor(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

pub const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The base64 characters that depend only on `data`'s bytes when `data` starts `align` bytes
/// (0, 1, 2) into a 3-byte group, whatever precedes or follows it.
pub fn base64_core(data: &[u8], align: usize, alphabet: &[u8; 64]) -> String {
    let mut bytes = vec![0u8; align];
    bytes.extend_from_slice(data);
    let mut bits = String::new();
    for b in &bytes {
        bits.push_str(&format!("{b:08b}"));
    }
    // Characters fully inside the data: from the first 6-bit group starting at or after the
    // data's first bit, to the last group ending at or before its last bit.
    let first_bit = align * 8;
    let first = first_bit.div_ceil(6);
    let last = bits.len() / 6;
    (first..last)
        .map(|g| {
            let v = u8::from_str_radix(&bits[g * 6..g * 6 + 6], 2).unwrap();
            alphabet[v as usize] as char
        })
        .collect()
}

fn percent(s: &str, lower: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn json_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
