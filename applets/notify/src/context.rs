//! The variables templates see: `env`, `pod` (downward API), `hostname`, `data` (--data files),
//! `event`, `now`, and in `notify run` the command's outcome.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use initbox_runtime::Failure;
use serde_json::{Map, Value, json};

/// Downward-API environment variables and the `pod` key each becomes.
const POD_ENV: &[(&str, &str)] = &[
    ("POD_NAME", "name"),
    ("POD_NAMESPACE", "namespace"),
    ("NODE_NAME", "node"),
    ("POD_IP", "ip"),
    ("POD_UID", "uid"),
    ("POD_SERVICE_ACCOUNT", "service_account"),
    ("CONTAINER_NAME", "container"),
];

/// `pod` from a downward-API volume directory and the downward-API environment variables
/// (the variables win). Only what is known is defined, so a template using an unknown field fails.
pub fn pod(dir: Option<&Path>) -> Result<Map<String, Value>, Failure> {
    let mut pod = Map::new();
    if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Failure::usage(format!(
                "--downward-api {}: cannot read: {e}",
                dir.display()
            ))
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            // Kubernetes keeps the real files under ..data; the visible names are links to them.
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().replace(['-', '.'], "_"))
                .unwrap_or_default();
            let text = initbox_runtime::input::read_string(
                &path,
                &format!("--downward-api {}", path.display()),
            )?;
            let key = match name.as_str() {
                "podname" | "pod_name" => "name".to_string(),
                "nodename" | "node_name" => "node".to_string(),
                "podip" | "pod_ip" => "ip".to_string(),
                _ => name,
            };
            let value = if key == "labels" || key == "annotations" {
                Value::Object(parse_label_file(&text))
            } else {
                Value::String(text.trim_end_matches('\n').to_string())
            };
            pod.insert(key, value);
        }
    }
    for (var, key) in POD_ENV {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            pod.insert((*key).to_string(), Value::String(v));
        }
    }
    Ok(pod)
}

/// `key="value"` lines as the downward API writes labels and annotations.
fn parse_label_file(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = serde_json::from_str::<String>(v).unwrap_or_else(|_| v.trim_matches('"').into());
        out.insert(k.trim().to_string(), Value::String(v));
    }
    out
}

/// `--data [NAME=]PATH`: a JSON file. With NAME it becomes `data.NAME`; without, its top-level
/// object is merged into `data`.
pub fn data(specs: &[String]) -> Result<Map<String, Value>, Failure> {
    let mut data = Map::new();
    for spec in specs {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) if !n.is_empty() && !n.contains('/') => (Some(n), p),
            _ => (None, spec.as_str()),
        };
        let text = initbox_runtime::input::read_string(Path::new(path), &format!("--data {path}"))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Failure::invalid_input(format!("--data {path}: not valid JSON: {e}")))?;
        match (name, value) {
            (Some(n), v) => {
                data.insert(n.to_string(), v);
            }
            (None, Value::Object(m)) => data.extend(m),
            (None, _) => {
                return Err(Failure::invalid_input(format!(
                    "--data {path}: top level must be a JSON object (or use --data NAME={path})"
                )));
            }
        }
    }
    Ok(data)
}

pub fn hostname() -> String {
    initbox_runtime::host::name()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The base context shared by every template of one run.
pub fn base(pod: Map<String, Value>, data: Map<String, Value>, event: &str) -> Value {
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    json!({
        "env": env,
        "pod": pod,
        "data": data,
        "hostname": hostname(),
        "event": event,
        "now": rfc3339(SystemTime::now()),
    })
}

/// RFC 3339 UTC time, second precision (`2026-11-22T03:04:05Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn label_files_parse_quoted_values() {
        let m = parse_label_file("app=\"web\"\ntier=\"a \\\"b\\\"\"\n");
        assert_eq!(m["app"], "web");
        assert_eq!(m["tier"], "a \"b\"");
    }

    #[test]
    fn downward_api_dir_becomes_pod() {
        let dir = tempdir();
        std::fs::write(dir.join("labels"), "app=\"web\"\n").unwrap();
        std::fs::write(dir.join("namespace"), "prod\n").unwrap();
        let pod = pod(Some(&dir)).unwrap();
        assert_eq!(pod["labels"]["app"], "web");
        if std::env::var("POD_NAMESPACE").is_err() {
            assert_eq!(pod["namespace"], "prod");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempdir() -> PathBuf {
        let p = std::env::temp_dir().join(format!("notify-ctx-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}
