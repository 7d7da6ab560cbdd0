//! Secret references and their resolver, shared by `fetch-secret` and `render-config`.
//!
//! - [`reference`]: `ref+BACKEND://PATH[?query][#/json/pointer]` parsing;
//! - [`resolver`]: the backends' clap flags ([`BackendArgs`]) and the [`Resolver`] that fetches
//!   each reference once per run, bounded by the run's deadline;
//! - [`vault`], [`k8s`], [`aws`]: the backends; [`http`]: their shared HTTP client;
//! - [`value`]: secret values (zeroed on drop, never printed) and leases.

// The AWS credential chain and SigV4 signing move to crates/aws (issue 15); until then they are
// compiled here from fetch-secret's files, their one copy.
#[path = "../../../applets/fetch-secret/src/aws.rs"]
pub mod aws;
#[path = "../../../applets/fetch-secret/src/aws_creds.rs"]
mod aws_creds;
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
