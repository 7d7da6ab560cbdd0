//! initbox's template engines, shared by `render-config` and `notify`.
//!
//! - [`jinja`]: Jinja2 (minijinja) with strict undefined values, no auto-escaping, Jinja2's and
//!   Ansible's filters, a `secret()` function over a [`jinja::SecretSource`], bounded work, and
//!   errors with a source excerpt that never show a secret;
//! - [`envsubst`]: POSIX-shell-style `${VAR:-default}` expansion, strict about unset variables;
//! - [`data`]: the data a template sees (the environment, JSON/YAML/TOML/dotenv files, `--set`).

pub mod data;
pub mod envsubst;
pub mod filters;
#[cfg(test)]
mod fuzz_tests;
pub mod gotmpl;
pub mod jinja;
pub mod password_hash;
pub mod percent;
pub mod python;
pub mod pyyaml;
pub mod rewrite;
pub mod urlize;
