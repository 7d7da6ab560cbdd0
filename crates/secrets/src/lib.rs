//! Secret references and their resolver, shared by `fetch-secret` and `render-config`.
//!
//! - [`reference`]: `ref+BACKEND://PATH[?query][#/json/pointer]` parsing;
//! - [`resolver`]: the backends' clap flags ([`BackendArgs`]) and the [`Resolver`] that fetches
//!   each reference once per run, bounded by the run's deadline;
//! - [`vault`], [`k8s`], [`aws`]: the backends; [`http`]: their shared HTTP client;
//! - [`value`]: secret values (zeroed on drop, never printed) and leases.

pub mod aws;
#[cfg(test)]
mod fuzz_tests;
mod http;
pub mod k8s;
pub mod reference;
pub mod resolver;
pub mod value;
pub mod vault;

pub use reference::{Backend, Reference};
pub use resolver::{BackendArgs, Resolver};
pub use value::{Lease, SecretValue};
