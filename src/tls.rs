//! TLS plumbing: the process-wide rustls crypto provider, and when a certificate expires.
//!
//! It sits below [`web::auth`](crate::web::auth) and [`smileid`](crate::smileid), the
//! two users of rustls, so that neither borrows it from the other.

/// Makes rustls use *ring*, the lighter of its providers; harmless when already done.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

use std::time::{Duration, SystemTime};

/// A served certificate that expires within this long is warned about.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 86400);

/// When a DER certificate stops being valid (its notAfter); `None` if it cannot be parsed.
pub fn not_after(der: &[u8]) -> Option<SystemTime> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some(SystemTime::UNIX_EPOCH + cert.tbs_certificate().validity().not_after.to_unix_duration())
}

/// Whether a certificate valid until `not_after` deserves a warning at `now`: expired, or
/// expiring within [`EXPIRY_WARNING`].
pub fn expires_soon(not_after: SystemTime, now: SystemTime) -> bool {
    not_after <= now + EXPIRY_WARNING
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn reads_not_after_of_the_fixture() {
        let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/server.pem");
        let der = CertificateDer::pem_file_iter(pem).unwrap().next().unwrap().unwrap();
        let at = not_after(&der).unwrap().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        // notAfter=Nov  2 09:56:07 2126 GMT, per `openssl x509 -noout -enddate -in server.pem`.
        assert!(at > 4_900_000_000, "{at}");
        let not_after = SystemTime::UNIX_EPOCH + Duration::from_secs(at);
        assert!(!expires_soon(not_after, SystemTime::now()));
        assert!(expires_soon(not_after, not_after - Duration::from_secs(13 * 86400)));
        assert!(expires_soon(not_after, not_after + Duration::from_secs(1)), "expired");
        assert!(!expires_soon(not_after, not_after - Duration::from_secs(15 * 86400)));
        assert!(super::not_after(b"not a certificate").is_none());
    }
}
