//! The spec file: a small YAML (or JSON) or TOML document naming the secrets of a run.
//!
//! ```yaml
//! secrets:
//!   DB_PASSWORD: ref+vault://secret/app/db#/password
//!   api.key:
//!     ref: ref+awssm://prod/api#/key
//! ```
//!
//! ```toml
//! [secrets]
//! DB_PASSWORD = "ref+vault://secret/app/db#/password"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use initbox_runtime::{Failure, redact};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    secrets: BTreeMap<String, Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Entry {
    Ref(String),
    Table {
        #[serde(rename = "ref")]
        reference: String,
    },
}

/// `(NAME, REFERENCE TEXT)` pairs of a spec file, sorted by name.
pub fn load(path: &Path) -> Result<Vec<(String, String)>, Failure> {
    let text = initbox_runtime::input::read_string(path, &format!("spec file {}", path.display()))?;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    let spec: Spec = if is_toml {
        toml::from_str(&text).map_err(|e| {
            Failure::invalid_input(format!(
                "spec file {}: {}",
                path.display(),
                redact::without_input_values(e.message())
            ))
        })?
    } else {
        serde_norway::from_str(&text).map_err(|e| {
            Failure::invalid_input(format!(
                "spec file {}: {}",
                path.display(),
                redact::without_input_values(&e.to_string())
            ))
        })?
    };
    Ok(spec
        .secrets
        .into_iter()
        .map(|(k, v)| {
            let r = match v {
                Entry::Ref(r) => r,
                Entry::Table { reference } => reference,
            };
            (k, r)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_toml() {
        let dir = tempfile::tempdir().unwrap();
        let y = dir.path().join("s.yaml");
        std::fs::write(
            &y,
            "secrets:\n  B: ref+env://X\n  A:\n    ref: ref+file:///f\n",
        )
        .unwrap();
        assert_eq!(
            load(&y).unwrap(),
            vec![
                ("A".into(), "ref+file:///f".into()),
                ("B".into(), "ref+env://X".into())
            ]
        );
        let t = dir.path().join("s.toml");
        std::fs::write(&t, "[secrets]\nA = \"ref+env://Y\"\n").unwrap();
        assert_eq!(load(&t).unwrap(), vec![("A".into(), "ref+env://Y".into())]);
        std::fs::write(&t, "[secret]\nA = 1\n").unwrap();
        assert_eq!(
            load(&t).unwrap_err().code,
            initbox_runtime::Code::INVALID_INPUT
        );
    }
}
