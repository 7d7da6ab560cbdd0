//! The generic-webhook bodies of the tools users arrive from, byte for byte where a receiver
//! parses them: shoutrrr's `generic://` (the message alone, or `template=json`) and apprise's
//! `json://`, `form://` and `xml://`.

use serde_json::{Map, Value};

use crate::payload::Note;

/// Which body a generic webhook sends when no `--body` template is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStyle {
    /// initbox's own JSON (title, message, event, id, time, host, pod, details).
    Initbox,
    /// shoutrrr `generic://` without a template: the message text alone.
    ShoutrrrPlain,
    /// shoutrrr `template=json`: `{"title": …, "message": …}` plus `$key=value` fields.
    ShoutrrrJson,
    /// apprise `json://`: `{"version": "1.0", "title", "message", "attachments": [], "type"}`.
    AppriseJson,
    /// apprise `form://`: `version`, `title`, `message`, `type`, form-encoded.
    AppriseForm,
    /// apprise `xml://`: its SOAP envelope (XSD 1.1).
    AppriseXml,
}

impl BodyStyle {
    /// The `template=` value naming a style (on any generic webhook URL).
    pub fn from_template(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "initbox" => BodyStyle::Initbox,
            "json" => BodyStyle::ShoutrrrJson,
            "message" | "plain" | "text" => BodyStyle::ShoutrrrPlain,
            "apprise" | "apprise-json" => BodyStyle::AppriseJson,
            "apprise-form" | "form" => BodyStyle::AppriseForm,
            "apprise-xml" | "xml" => BodyStyle::AppriseXml,
            _ => return None,
        })
    }

    /// The Content-Type a style sends unless the URL sets one.
    pub fn content_type(self) -> &'static str {
        match self {
            BodyStyle::AppriseForm => "application/x-www-form-urlencoded",
            BodyStyle::AppriseXml => "application/xml",
            _ => "application/json",
        }
    }

    pub fn is_apprise(self) -> bool {
        matches!(
            self,
            BodyStyle::AppriseJson | BodyStyle::AppriseForm | BodyStyle::AppriseXml
        )
    }
}

/// apprise's notification type for an initbox event.
pub fn apprise_type(event: &str) -> &'static str {
    match event {
        "failure" => "failure",
        "success" => "success",
        _ => "info",
    }
}

/// apprise's `:key=value` rule: a key naming a built-in field renames it (`:message=msg`) or,
/// with an empty value, drops it; any other key is added.
fn apprise_fields(base: &[(&str, String)], extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut map: Vec<(String, Option<String>)> = base
        .iter()
        .map(|(k, _)| (k.to_string(), Some(k.to_string())))
        .collect();
    let mut added = Vec::new();
    for (k, v) in extra {
        match map.iter_mut().find(|(name, _)| name == k) {
            Some((_, to)) => *to = Some(v.clone()).filter(|v| !v.is_empty()),
            None => added.push((k.clone(), v.clone())),
        }
    }
    let mut out: Vec<(String, String)> = base
        .iter()
        .zip(map)
        .filter_map(|((_, value), (_, to))| to.map(|to| (to, value.clone())))
        .collect();
    out.extend(added);
    out
}

/// XML text as apprise escapes it (`& < > " '`).
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The body bytes of `style` (not [`BodyStyle::Initbox`], which the caller builds).
pub fn render(
    style: BodyStyle,
    n: &Note,
    title_key: &str,
    message_key: &str,
    extra: &[(String, String)],
) -> Vec<u8> {
    let kind = apprise_type(&n.event).to_string();
    match style {
        BodyStyle::Initbox | BodyStyle::ShoutrrrPlain => n.message.clone().into_bytes(),
        BodyStyle::ShoutrrrJson => {
            let mut m = Map::new();
            for (k, v) in extra {
                m.insert(k.clone(), Value::String(v.clone()));
            }
            if !n.title.is_empty() {
                m.insert(title_key.into(), Value::String(n.title.clone()));
            }
            m.insert(message_key.into(), Value::String(n.message.clone()));
            serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
        }
        BodyStyle::AppriseJson => {
            let base = [
                ("version", "1.0".to_string()),
                ("title", n.title.clone()),
                ("message", n.message.clone()),
                ("attachments", String::new()),
                ("type", kind),
            ];
            let mut m = Map::new();
            for (k, v) in apprise_fields(&base, extra) {
                let value = if k == "attachments" && v.is_empty() {
                    Value::Array(Vec::new())
                } else {
                    Value::String(v)
                };
                m.insert(k, value);
            }
            serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
        }
        BodyStyle::AppriseForm => {
            let base = [
                ("version", "1.0".to_string()),
                ("title", n.title.clone()),
                ("message", n.message.clone()),
                ("type", kind),
            ];
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in apprise_fields(&base, extra) {
                form.append_pair(&k, &v);
            }
            form.finish().into_bytes()
        }
        BodyStyle::AppriseXml => {
            let base = [
                ("Version", "1.1".to_string()),
                ("Subject", xml_escape(&n.title)),
                ("Message", xml_escape(&n.message)),
                ("MessageType", kind),
            ];
            // apprise keeps only [A-Za-z0-9_-] of an added element's name and drops the XSD
            // reference once the document is customised.
            let extra: Vec<(String, String)> = extra
                .iter()
                .map(|(k, v)| {
                    let k: String = k
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                        .collect();
                    let is_base = base.iter().any(|(b, _)| *b == k);
                    (k, if is_base { v.clone() } else { xml_escape(v) })
                })
                .filter(|(k, _)| !k.is_empty())
                .collect();
            let xsd = if extra.is_empty() {
                " xmlns:xsi=\"https://raw.githubusercontent.com/caronc/apprise/master/apprise/assets/NotifyXML-1.1.xsd\""
            } else {
                ""
            };
            let core: String = apprise_fields(&base, &extra)
                .into_iter()
                .map(|(k, v)| format!("<{k}>{v}</{k}>"))
                .collect();
            format!(
                "<?xml version='1.0' encoding='utf-8'?>\n\
<soapenv:Envelope\n    xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"\n    \
xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"\n    \
xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n    <soapenv:Body>\n        \
<Notification{xsd}>\n            {core}\n            \n       </Notification>\n    \
</soapenv:Body>\n</soapenv:Envelope>"
            )
            .into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apprise_key_rules_rename_drop_and_add() {
        let base = [("title", "T".to_string()), ("message", "M".to_string())];
        let extra = vec![
            ("message".to_string(), "text".to_string()),
            ("title".to_string(), String::new()),
            ("team".to_string(), "ops".to_string()),
        ];
        assert_eq!(
            apprise_fields(&base, &extra),
            vec![
                ("text".to_string(), "M".to_string()),
                ("team".to_string(), "ops".to_string())
            ]
        );
    }
}
