//! TLS plumbing for the server side: the process-wide rustls crypto provider.
//!
//! It sits below [`webconfig`](crate::webconfig) (and any other user of rustls) so that
//! no module has to borrow it from the provider client.

/// Makes rustls use *ring*, the lighter of its providers; harmless when already done.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
