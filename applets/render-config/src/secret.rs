//! `secret("ref+...")` resolution for render-config: every backend of fetch-secret (Vault, AWS
//! Secrets Manager and SSM, Kubernetes, files, environment) through its [`Resolver`], so there is
//! one reference syntax and one client per backend in the toolkit.

use initbox_runtime::Failure;
use initbox_secrets::{Resolver, reference};

use crate::jinja::SecretSource;

/// Resolves references through fetch-secret from the (blocking) render thread.
pub struct FetchSecrets {
    resolver: Resolver,
    handle: tokio::runtime::Handle,
}

impl FetchSecrets {
    /// `handle` is the runtime whose main thread drives the backends' I/O while templates render
    /// on a blocking thread.
    pub fn new(resolver: Resolver, handle: tokio::runtime::Handle) -> Self {
        FetchSecrets { resolver, handle }
    }
}

impl SecretSource for FetchSecrets {
    fn resolve(&self, r: &str) -> Result<String, String> {
        self.resolve_with_code(r).map_err(|f| f.message)
    }

    fn resolve_with_code(&self, r: &str) -> Result<String, Failure> {
        let parsed = reference::parse(r)?;
        // The resolver registers every value for redaction the moment it arrives.
        let value = self.handle.block_on(self.resolver.resolve(&parsed))?;
        // A binary value (non-UTF-8 bytes) cannot be template text: exit 3 naming the reference.
        value.try_text(r, "a template's secret()")
    }
}
