//! The one template hook of `notify`: title, message, body, keys and URLs are rendered here.
//!
//! It uses MiniJinja in strict-undefined mode (a missing variable is an error, never an empty
//! string). TODO(render-config): switch to `initbox_render_config`'s public jinja environment
//! once it lands on main, so both applets share one engine configuration and filter set.

use initbox_runtime::Failure;
use minijinja::{Environment, UndefinedBehavior, Value};

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// Render `source` (named `what` in errors) with `ctx`. Errors exit 3 (invalid input).
pub fn render(what: &str, source: &str, ctx: &serde_json::Value) -> Result<String, Failure> {
    if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
        return Ok(source.to_string());
    }
    let env = environment();
    env.render_str(source, Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| Failure::invalid_input(format!("{what}: template error: {}", describe(&e))))
}

fn describe(e: &minijinja::Error) -> String {
    let mut s = e.kind().to_string();
    if let Some(detail) = e.detail() {
        s.push_str(": ");
        s.push_str(detail);
    }
    if let Some(line) = e.line() {
        s.push_str(&format!(" (line {line})"));
    }
    s
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
