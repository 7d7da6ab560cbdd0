//! The one template hook of `notify`: title, message, body, keys and URLs are rendered here,
//! with the toolkit's Jinja engine (`initbox-template`: one engine configuration and filter set):
//! printing a missing variable is an error, never an empty string, while `is defined` and
//! `default()` still work.

use std::sync::OnceLock;

use initbox_runtime::Failure;
use initbox_template::jinja::{Engine, Options};
use minijinja::Value;

fn engine() -> Result<&'static Engine, Failure> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e);
    }
    let built = Engine::new(Options {
        // A message is not a file: no trailing newline is added or kept.
        keep_trailing_newline: false,
        ..Options::default()
    })?;
    Ok(ENGINE.get_or_init(|| built))
}

/// Render `source` (named `what` in errors) with `ctx`. Errors exit 3 (invalid input).
pub fn render(what: &str, source: &str, ctx: &serde_json::Value) -> Result<String, Failure> {
    if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
        return Ok(source.to_string());
    }
    engine()?
        .render_str(what, source, Value::from(minijinja::value::Serde(ctx)))
        .map(|r| r.text)
        .map_err(|e| e.to_failure())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_variables_and_filters() {
        let ctx = json!({"pod": {"name": "web-0"}, "env": {"X": "1"}});
        assert_eq!(
            render("t", "{{ pod.name | upper }}-{{ env.X }}", &ctx).unwrap(),
            "WEB-0-1"
        );
    }

    #[test]
    fn missing_variables_are_errors() {
        let f = render("--title", "hi {{ nope }}", &json!({})).unwrap_err();
        assert_eq!(f.code, initbox_runtime::Code::INVALID_INPUT);
        assert!(f.message.contains("--title"), "{}", f.message);
        let f = render("m", "{{ pod.name }}", &json!({"pod": {}})).unwrap_err();
        assert!(f.message.contains("undefined"), "{}", f.message);
    }

    #[test]
    fn is_defined_works_in_strict_mode() {
        let out = render(
            "m",
            "{% if pod.name is defined %}{{ pod.name }}{% else %}none{% endif %}",
            &json!({"pod": {}}),
        )
        .unwrap();
        assert_eq!(out, "none");
    }
}
