//! The current flavour: `POST /v3/token`, then `GET /v3/services/id_status` with the token.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{IdStatusApi, PollError, Transport, parse_status_body, scrub};
use crate::config::SmileIdConfig;
use crate::model::{Clock, Observation, SystemClock, Target};
use crate::secret::Secret;

/// Path of the token endpoint below the base URL.
pub const TOKEN_PATH: &str = "/v3/token";
/// Path of the id_status endpoint below the base URL.
pub const STATUS_PATH: &str = "/v3/services/id_status";
/// How long before its `exp` a token is replaced.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime assumed for a token without a readable `exp` (others report 15 minutes).
const ASSUMED_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Fetches and caches tokens, then asks for id_status with them.
#[derive(Debug)]
pub struct V3Client {
    transport: Transport,
    base: String,
    partner_id: String,
    api_key: Secret,
    token: Mutex<Option<Token>>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug)]
struct Token {
    value: Secret,
    refresh_at: DateTime<Utc>,
}

impl V3Client {
    /// A client for the configured account.
    pub fn new(config: &SmileIdConfig, transport: Transport) -> Self {
        // v3 wants the partner ID as a number: no leading zeros.
        let trimmed = config.partner_id.trim_start_matches('0');
        V3Client {
            transport,
            base: config.effective_base_url(),
            partner_id: if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_owned() },
            api_key: config.api_key.clone(),
            token: Mutex::new(None),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same client reading the time (for token expiry) from `clock`.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        V3Client { clock, ..self }
    }

    /// A valid token, fetched when there is none or it is about to expire. The lock is
    /// held while fetching, so concurrent polls share one fetch.
    async fn token(&self, stale: Option<&Secret>) -> Result<Secret, PollError> {
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref() {
            let replaced_already = stale.is_some_and(|s| *s != t.value);
            if self.clock.now() < t.refresh_at && (stale.is_none() || replaced_already) {
                return Ok(t.value.clone());
            }
        }
        *guard = None;
        let url = format!("{}{TOKEN_PATH}", self.base);
        let response = self
            .transport
            .send(|| {
                self.transport
                    .client()
                    .post(&url)
                    .header("smileid-partner-id", &self.partner_id)
                    .header("smileid-api-key", self.api_key.expose())
            })
            .await?;
        #[derive(Deserialize)]
        struct TokenBody {
            token: String,
        }
        let body: TokenBody = serde_json::from_slice(&response.body)
            .map_err(|_| PollError::InvalidResponse("token response without a token".to_owned()))?;
        if body.token.is_empty() {
            return Err(PollError::InvalidResponse("empty token".to_owned()));
        }
        let now = self.clock.now();
        let lifetime = token_lifetime(&body.token, now).unwrap_or(ASSUMED_LIFETIME);
        let keep = chrono::TimeDelta::from_std(lifetime.saturating_sub(REFRESH_MARGIN)).unwrap_or_default();
        let token = Token { value: Secret::new(body.token), refresh_at: now + keep };
        let value = token.value.clone();
        *guard = Some(token);
        Ok(value)
    }

    async fn status_with(&self, token: &Secret, target: &Target) -> Result<Observation, PollError> {
        let url = format!("{}{STATUS_PATH}", self.base);
        let response = self
            .transport
            .send(|| {
                self.transport
                    .client()
                    .get(&url)
                    .query(&[("country", target.country.as_str()), ("id_type", target.id_type.as_str())])
                    .header("SmileID-Token", token.expose())
            })
            .await?;
        parse_status_body(&response.body)
    }

    async fn fetch(&self, target: &Target) -> Result<Observation, PollError> {
        let token = self.token(None).await?;
        match self.status_with(&token, target).await {
            // The token may have been revoked or expired early: fetch a new one, once.
            Err(PollError::Unauthorized { status: 401, .. }) => {
                tracing::debug!(%target, "token refused; fetching a new one");
                let fresh = self.token(Some(&token)).await?;
                self.status_with(&fresh, target).await
            }
            other => other,
        }
    }
}

impl IdStatusApi for V3Client {
    fn id_status<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Observation, PollError>> {
        async move { scrub(self.fetch(target).await, &self.api_key) }.boxed()
    }
}

/// Time from `now` until the JWT's `exp`, if it has one in the future.
fn token_lifetime(jwt: &str, now: DateTime<Utc>) -> Option<Duration> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    #[derive(Deserialize)]
    struct Claims {
        exp: f64,
    }
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    let now = now.timestamp_millis() as f64 / 1000.0;
    (claims.exp > now).then(|| Duration::from_secs_f64((claims.exp - now).min(86400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: i64) -> String {
        let claims = URL_SAFE_NO_PAD.encode(format!("{{\"exp\":{exp}}}"));
        format!("eyJhbGciOiJIUzI1NiJ9.{claims}.sig")
    }

    #[test]
    fn lifetime_comes_from_exp() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let now = at.timestamp();
        assert_eq!(token_lifetime(&jwt(now + 900), at), Some(Duration::from_secs(900)));
        assert_eq!(token_lifetime(&jwt(now - 5), at), None);
        assert_eq!(token_lifetime("not-a-jwt", at), None);
        assert_eq!(token_lifetime("a.!!!.c", at), None);
    }
}
