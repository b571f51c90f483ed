//! The request signature of Smile ID's v1/v2 APIs.
//!
//! `signature = base64(HMAC-SHA256(key = api_key, msg = timestamp + partner_id + "sid_request"))`
//!
//! ```
//! use idauth_exporter::{secret::Secret, signature};
//! let key = Secret::new("apikey");
//! let sig = signature::sign(&key, "partner", "2023-03-09T21:35:00.279Z");
//! assert_eq!(sig, "+S/hVtmFwynoroXQQbjOQ3/l+a5zshNldrQh/iBdxRQ=");
//! assert!(signature::verify(&key, "partner", "2023-03-09T21:35:00.279Z", &sig));
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

fn mac(api_key: &Secret, partner_id: &str, timestamp: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(api_key.expose().as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(partner_id.as_bytes());
    mac.update(b"sid_request");
    mac
}

/// The signature of a request made at `timestamp` by `partner_id`.
pub fn sign(api_key: &Secret, partner_id: &str, timestamp: &str) -> String {
    STANDARD.encode(mac(api_key, partner_id, timestamp).finalize().into_bytes())
}

/// Whether `signature` is right, compared in constant time.
pub fn verify(api_key: &Secret, partner_id: &str, timestamp: &str, signature: &str) -> bool {
    let expected = sign(api_key, partner_id, timestamp);
    expected.as_bytes().ct_eq(signature.as_bytes()).into()
}

/// A timestamp in the form the provider signs: UTC, milliseconds, `Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        let cases = [
            ("apikey", "partner", "2023-03-09T21:35:00.279Z", "+S/hVtmFwynoroXQQbjOQ3/l+a5zshNldrQh/iBdxRQ="),
            ("apiKey", "partner", "2023-02-13T15:07:42.214Z", "XxThLHZy2ij1WINkqNEPgzVs9RvUDHWlebDYzprqS74="),
        ];
        for (key, partner, ts, sig) in cases {
            let key = Secret::new(key);
            assert_eq!(sign(&key, partner, ts), sig);
            assert!(verify(&key, partner, ts, sig));
        }
    }

    #[test]
    fn wrong_inputs_do_not_verify() {
        let key = Secret::new("apikey");
        let ts = "2023-03-09T21:35:00.279Z";
        let sig = sign(&key, "partner", ts);
        assert!(!verify(&Secret::new("apiKey"), "partner", ts, &sig));
        assert!(!verify(&key, "085", ts, &sig));
        assert!(!verify(&key, "partner", "2023-03-09T21:35:00.280Z", &sig));
        assert!(!verify(&key, "partner", ts, ""));
        // Leading zeros are part of the partner ID.
        assert_ne!(sign(&key, "085", ts), sign(&key, "85", ts));
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at = DateTime::parse_from_rfc3339("2023-03-09T21:35:00.279123+00:00").unwrap().with_timezone(&Utc);
        assert_eq!(timestamp(at), "2023-03-09T21:35:00.279Z");
        let whole = DateTime::parse_from_rfc3339("2023-03-09T21:35:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(timestamp(whole), "2023-03-09T21:35:00.000Z");
    }
}
