//! Fetched secrets: the whole document a backend returned, and the value a reference selects.
//!
//! Every string a backend returns is registered with the runtime's scrubber the moment it
//! arrives ([`Document::new`]), so no later log line, error or termination message can show it.

use std::fmt;

use base64::Engine;
use initbox_runtime::{Failure, redact};
use serde_json::Value;

use crate::reference::{Decode, Reference, Selector};

/// Lease metadata of a dynamic secret (database credentials, AWS credentials, ...).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    pub lease_id: String,
    /// Seconds.
    pub lease_duration: u64,
    pub renewable: bool,
}

/// What one backend read returned: the secret (a JSON value: a map of keys, or a string) and,
/// for Vault, lease metadata.
#[derive(Clone)]
pub struct Document {
    value: Value,
    lease: Option<Lease>,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Document([REDACTED])")
    }
}

/// What a backend read found.
#[derive(Clone, Debug)]
pub enum Fetched {
    Found(Document),
    /// Nothing there: the message says where it looked.
    NotFound(String),
}

/// Register every string (and number) leaf of `v` with the scrubber.
pub fn register_all(v: &Value) {
    match v {
        Value::String(s) => {
            redact::register(s);
            // A JSON document stored as one string (Secrets Manager): its leaves too.
            if s.trim_start().starts_with('{')
                && let Ok(inner) = serde_json::from_str::<Value>(s)
            {
                register_all(&inner);
            }
        }
        Value::Number(n) => redact::register(&n.to_string()),
        Value::Array(a) => a.iter().for_each(register_all),
        Value::Object(o) => o.values().for_each(register_all),
        Value::Bool(_) | Value::Null => {}
    }
}

impl Document {
    /// A fetched document; every value in it is registered for redaction at once.
    pub fn new(value: Value, lease: Option<Lease>) -> Self {
        register_all(&value);
        if let Some(l) = &lease {
            redact::register(&l.lease_id);
        }
        Document { value, lease }
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Select the part `r` asks for; a missing key is an error listing the key names.
    pub fn select(&self, r: &Reference) -> Result<SecretValue, Failure> {
        self.try_select(r)?
    }

    /// Select the part `r` asks for: `Ok(Err(_))` when the key is missing (the failure lists the
    /// existing key names, never values), `Err(_)` for other problems. With `decode=base64`
    /// the secret is decoded first, then the fragment selects in the decoded document.
    pub fn try_select(&self, r: &Reference) -> Result<Result<SecretValue, Failure>, Failure> {
        if r.decode == Decode::Base64 {
            let Value::String(s) = &self.value else {
                return Err(Failure::failed(format!(
                    "{}: decode=base64 needs a string secret",
                    r.written()
                )));
            };
            let bytes = decode_base64(s, r)?;
            return match String::from_utf8(bytes) {
                Ok(text) => Document::new(Value::String(text), self.lease.clone()).select_plain(r),
                Err(e) if r.selector == Selector::Whole => Ok(Ok(SecretValue {
                    value: Some(Value::Null),
                    bytes: Some(e.into_bytes()),
                    lease: self.lease.clone(),
                    origin: r.written(),
                })),
                Err(_) => Err(Failure::failed(format!(
                    "{}: the base64-decoded secret is binary (not UTF-8 text), so it has no keys",
                    r.written()
                ))),
            };
        }
        self.select_plain(r)
    }

    fn select_plain(&self, r: &Reference) -> Result<Result<SecretValue, Failure>, Failure> {
        let root = match (&r.selector, &self.value) {
            (Selector::Whole, _) => {
                return Ok(Ok(finish(self.value.clone(), self.lease.clone(), r)));
            }
            // A JSON document stored as a string (Secrets Manager, a file, an env var).
            (_, Value::String(s)) => match parse_structured(s) {
                Some(v) => v,
                None => {
                    return Err(Failure::failed(format!(
                        "{r}: the secret is a plain string, not a JSON/YAML document with keys"
                    )));
                }
            },
            (_, v) => v.clone(),
        };
        let found = match &r.selector {
            Selector::Pointer(p) => root.pointer(p),
            Selector::Key(k) => root.get(k),
            Selector::Whole => unreachable!("handled above"),
        };
        match found {
            Some(v) => Ok(Ok(finish(v.clone(), self.lease.clone(), r))),
            None => Ok(Err(missing_key(r, &root))),
        }
    }
}

/// The bytes of a base64 text (standard or URL-safe alphabet, whitespace ignored).
fn decode_base64(s: &str, r: &Reference) -> Result<Vec<u8>, Failure> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&compact))
        .map_err(|_| Failure::failed(format!("{}: the value is not valid base64", r.written())))
}

fn parse_structured(s: &str) -> Option<Value> {
    let t = s.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return serde_json::from_str(s).ok();
    }
    match serde_norway::from_str::<Value>(s) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// "key 'x' not found in REF; available keys: a, b" — names only, never values.
fn missing_key(r: &Reference, root: &Value) -> Failure {
    let (wanted, parent) = match &r.selector {
        Selector::Key(k) => (k.clone(), Some(root)),
        Selector::Pointer(p) => {
            let (parent_ptr, last) = p.rsplit_once('/').unwrap_or(("", p));
            (
                last.replace("~1", "/").replace("~0", "~"),
                root.pointer(parent_ptr),
            )
        }
        Selector::Whole => (String::new(), None),
    };
    let names = match parent {
        Some(Value::Object(o)) => {
            // A key that is not a plain name is content (the lines of a file such as
            // /etc/shadow parse as keys): counted, never shown.
            let (mut keys, hidden): (Vec<&str>, Vec<&str>) = o
                .keys()
                .map(String::as_str)
                .partition(|k| redact::is_plain_name(k));
            keys.sort_unstable();
            let mut names = keys.join(", ");
            if !hidden.is_empty() {
                if !names.is_empty() {
                    names.push_str(", ");
                }
                names.push_str(&format!("{} not shown (not plain names)", hidden.len()));
            }
            if names.is_empty() {
                "none".to_string()
            } else {
                names
            }
        }
        Some(Value::Array(a)) => format!("indexes 0..{}", a.len()),
        Some(_) => "none (not a map)".to_string(),
        None => "none (the parent path does not exist)".to_string(),
    };
    Failure::failed(format!(
        "{r}: key '{wanted}' not found; available keys: {names}"
    ))
}

fn finish(v: Value, lease: Option<Lease>, r: &Reference) -> SecretValue {
    SecretValue {
        value: Some(v),
        bytes: None,
        lease,
        origin: r.written(),
    }
}

/// The value a reference resolved to. Its `Debug` never shows the value.
#[derive(Clone, Default)]
pub struct SecretValue {
    value: Option<Value>,
    /// A binary value (base64-decoded bytes that are not UTF-8): written to files as is.
    bytes: Option<Vec<u8>>,
    lease: Option<Lease>,
    /// The reference as written, for messages about this value.
    origin: String,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Some(_) => f.write_str("SecretValue([REDACTED])"),
            None => f.write_str("SecretValue(absent)"),
        }
    }
}

impl SecretValue {
    /// A value given directly (a reference's `default=`); registered for redaction.
    pub fn from_text(text: &str) -> Self {
        redact::register(text);
        SecretValue {
            value: Some(Value::String(text.to_string())),
            ..SecretValue::default()
        }
    }

    /// An optional reference that was not found and has no default.
    pub fn absent() -> Self {
        SecretValue::default()
    }

    pub fn is_absent(&self) -> bool {
        self.value.is_none()
    }

    /// Whether the value is binary (not UTF-8 text): only files can hold it.
    pub fn is_binary(&self) -> bool {
        self.bytes.is_some()
    }

    /// The value's bytes: a binary value as is, anything else as [`SecretValue::text`].
    pub fn bytes(&self) -> Vec<u8> {
        match &self.bytes {
            Some(b) => b.clone(),
            None => self.text().into_bytes(),
        }
    }

    /// The value as text, or exit 3 naming the reference (as written) and `what` cannot hold
    /// a binary value.
    pub fn try_text(&self, name: &str, what: &str) -> Result<String, Failure> {
        if self.is_binary() {
            return Err(Failure::invalid_input(format!(
                "{}: the value of {name} is binary (not UTF-8 text), which {what} cannot hold; \
                 write it to a file (the default output) instead",
                self.origin
            )));
        }
        Ok(self.text())
    }

    /// The value as text: a string as is, anything else as compact JSON; "" when absent. A
    /// binary value is shown lossily here: check [`SecretValue::is_binary`] or use
    /// [`SecretValue::try_text`] / [`SecretValue::bytes`].
    pub fn text(&self) -> String {
        if let Some(b) = &self.bytes {
            return String::from_utf8_lossy(b).into_owned();
        }
        match &self.value {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        }
    }

    /// The value as JSON (a map for a whole Vault secret); `None` when absent.
    pub fn json(&self) -> Option<&Value> {
        self.value.as_ref()
    }

    /// Lease metadata, for dynamic Vault secrets.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::parse;
    use serde_json::json;

    #[test]
    fn selects_pointers_keys_and_whole() {
        let d = Document::new(
            json!({"user": "app", "pw": "s3cr3t-one", "n": {"k": 5}}),
            None,
        );
        let get = |r: &str| d.select(&parse(r).unwrap()).map(|v| v.text());
        assert_eq!(get("ref+vault://a#/pw").unwrap(), "s3cr3t-one");
        assert_eq!(get("ref+vault://a#user").unwrap(), "app");
        assert_eq!(get("ref+vault://a#/n/k").unwrap(), "5");
        assert_eq!(get("ref+vault://a#/n").unwrap(), r#"{"k":5}"#);
        assert!(get("ref+vault://a").unwrap().contains("\"pw\""));
    }

    #[test]
    fn missing_key_lists_names_not_values() {
        let d = Document::new(json!({"username": "u1", "password": "v4lue-xyz"}), None);
        let f = d
            .select(&parse("ref+vault://a#/passwrod").unwrap())
            .unwrap_err();
        assert!(
            f.message.contains("available keys: password, username"),
            "{}",
            f.message
        );
        assert!(!f.message.contains("v4lue-xyz"));
        assert_eq!(f.code, initbox_runtime::Code::FAILED);
    }

    #[test]
    fn json_strings_are_looked_into_and_base64_decoded() {
        // Decoded first, then selected in (issue 22 item 5).
        let d = Document::new(json!("eyJrIjoiaGVsbG8td29ybGQifQ=="), None);
        let v = d
            .select(&parse("ref+awssm://x?decode=base64#/k").unwrap())
            .unwrap();
        assert_eq!(v.text(), "hello-world");
        // Binary bytes: kept as bytes for files; text outputs refuse them naming the reference.
        let d = Document::new(json!("/9j/AAE="), None);
        let v = d
            .select(&parse("ref+awssm://x?decode=base64&version=v1").unwrap())
            .unwrap();
        assert!(v.is_binary());
        assert_eq!(v.bytes(), vec![0xff, 0xd8, 0xff, 0x00, 0x01]);
        let f = v.try_text("K", "--exec").unwrap_err();
        assert!(
            f.message.contains("ref+awssm://x?decode=base64&version=v1"),
            "{}",
            f.message
        );
        assert!(!redact::scrub("hello-world").contains("hello-world"));
        let d = Document::new(json!("plain"), None);
        assert!(d.select(&parse("ref+awssm://x#/k").unwrap()).is_err());
    }
}
