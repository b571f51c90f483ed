//! What a webhook request carries: the Standard Webhooks body of a [`Change`] and its
//! signature (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`).

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::history::events::Change;
use crate::model::{AuthorityState, timestamp};
use crate::secret::WebhookSecret;

/// The event type of every change.
pub const EVENT_TYPE: &str = "authority.state_changed";

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(with = "timestamp")]
    timestamp: chrono::DateTime<chrono::Utc>,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    country: &'a str,
    id_type: &'a str,
    from: AuthorityState,
    to: AuthorityState,
    #[serde(with = "timestamp")]
    since: chrono::DateTime<chrono::Utc>,
    rate_10m: Option<f64>,
    rate_1h: Option<f64>,
    #[serde(with = "timestamp::option")]
    last_checked: Option<chrono::DateTime<chrono::Utc>>,
}

/// The JSON body for `change`. Its `timestamp` is when the change happened (its "since",
/// the provider's time), not when this replica saw it: replicas that saw the same windows
/// send the same bytes.
pub fn body(change: &Change) -> Vec<u8> {
    let country = change.target.country.to_string();
    let id_type = change.target.id_type.to_string();
    let body = Body {
        kind: EVENT_TYPE,
        timestamp: change.since,
        data: Data {
            country: &country,
            id_type: &id_type,
            from: change.from,
            to: change.to,
            since: change.since,
            rate_10m: change.rate_10m,
            rate_1h: change.rate_1h,
            last_checked: change.last_checked,
        },
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The `webhook-signature` header: `v1,` and the base64 HMAC-SHA256, keyed by the secret,
/// of `{id}.{timestamp}.{body}`.
pub fn signature(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose()).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Target;

    /// The specification's own example (standard-webhooks, spec/standard-webhooks.md and
    /// the libraries' tests): this secret, id, timestamp and payload sign to this value.
    #[test]
    fn the_specifications_example_signs_to_its_value() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn the_body_carries_the_change_with_ratios_as_sent() {
        let target = Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
        let since = "2026-03-01T10:20:00Z".parse().unwrap();
        let change = Change {
            seq: 9,
            id: Change::id_for(&target, AuthorityState::Online, since),
            target,
            from: AuthorityState::Offline,
            to: AuthorityState::Online,
            since,
            detected: "2026-03-01T10:21:03.5Z".parse().unwrap(),
            rate_10m: Some(0.995),
            rate_1h: Some(0.4),
            last_checked: Some(since),
        };
        let v: serde_json::Value = serde_json::from_slice(&body(&change)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "authority.state_changed",
                "timestamp": "2026-03-01T10:20:00.000Z",
                "data": {"country": "NG", "id_type": "BVN", "from": "offline", "to": "online",
                    "since": "2026-03-01T10:20:00.000Z", "rate_10m": 0.995, "rate_1h": 0.4,
                    "last_checked": "2026-03-01T10:20:00.000Z"}
            })
        );
    }

    #[test]
    fn secrets_are_checked_and_never_shown() {
        use crate::secret::WebhookSecretError;
        assert_eq!(WebhookSecret::parse("whsec_not base64!").unwrap_err(), WebhookSecretError::NotBase64);
        assert_eq!(WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err(), WebhookSecretError::Length(5));
        let s = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(format!("{s:?}"), "WebhookSecret(<redacted>)");
    }
}
