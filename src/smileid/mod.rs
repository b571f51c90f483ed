//! The Smile ID client: one [`IdStatusApi`] per API flavour, one typed result.
//!
//! Both flavours return the same five-field body, parsed by [`parse_status_body`] into an
//! [`Observation`]; every failure becomes a [`PollError`] whose [`PollError::reason`] is
//! one of the fixed [`FailureReason`] label values.

pub mod catalogue;
mod http;
pub(crate) use http::{USER_AGENT, parse_retry_after};
mod v2;
mod v3;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::config::{ApiFlavor, PollConfig, SmileIdConfig};
pub use crate::model::FailureReason;
use crate::model::{AuthorityState, Observation, PollError, Target, parse_rate, redact_text, shorten};
use crate::secret::Secret;

pub use http::{POOL_IDLE, RetryPolicy, Transport};
pub use v2::V2Client;
pub use v3::V3Client;

/// The most of a response body we read; the real bodies are a few hundred bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Asks the provider how one ID authority is doing.
pub trait IdStatusApi: Send + Sync {
    /// The provider's latest status of `target`, retries included.
    fn id_status<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Observation, PollError>>;
}

/// The transport the `poll:` settings ask for, its requests bounded by the poll budget.
pub fn build_transport(poll: &PollConfig) -> Result<Transport, reqwest::Error> {
    let budget = crate::model::PollBudget::new(poll.schedule.period(), poll.jitter).get();
    Transport::new(poll.timeout, RetryPolicy::new(poll.retries).with_budget(budget))
}

/// Builds the client the configuration asks for.
pub fn client_for(config: &SmileIdConfig, transport: Transport) -> Arc<dyn IdStatusApi> {
    match config.api {
        ApiFlavor::V2 => Arc::new(V2Client::new(config, transport)),
        ApiFlavor::V3 => Arc::new(V3Client::new(config, transport)),
    }
}

/// Blots `secret` out of everything provider-supplied in a poll result: a server may echo
/// anything back, and these texts reach logs and the status page.
pub(crate) fn scrub(result: Result<Observation, PollError>, secret: &Secret) -> Result<Observation, PollError> {
    match result {
        Ok(mut o) => {
            o.unrecognized_status = o.unrecognized_status.map(|s| shorten(redact_text(s, secret)));
            Ok(o)
        }
        Err(e) => Err(e.redact(secret)),
    }
}

/// Provider text fit for a log line: printable, one line. Not yet cut short: [`scrub`]
/// redacts the key first and then cuts with [`shorten`].
pub(crate) fn clean_text(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

/// The provider's own words from an error body, either `{error, code}` or `{message, status}`.
fn error_words(body: &[u8]) -> (Option<String>, String) {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let words = if text.trim_start().starts_with('<') { "an HTML page".to_owned() } else { clean_text(&text) };
        return (None, if words.is_empty() { "empty body".to_owned() } else { words });
    };
    let text = |k: &str| match map.get(k) {
        Some(Value::String(s)) => Some(clean_text(s)),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let code = text("code");
    let message = text("error").or_else(|| text("message")).unwrap_or_else(|| "no message".to_owned());
    let message = match (&code, text("status")) {
        (Some(c), _) => format!("{message} (code {c})"),
        (None, Some(s)) => format!("{message} ({s})"),
        (None, None) => message,
    };
    (code, message)
}

/// Classifies a response that is not a success.
pub fn classify_failure(status: u16, body: &[u8]) -> PollError {
    let (code, message) = error_words(body);
    let code = code.as_deref();
    if status == 401 || status == 403 || matches!(code, Some("2204" | "2205" | "2405")) {
        return PollError::Unauthorized { status, message };
    }
    if status == 429 || code == Some("2222") {
        return PollError::RateLimited { message };
    }
    if (300..400).contains(&status) {
        return PollError::InvalidResponse(format!("HTTP {status} redirect, not followed"));
    }
    if status == 400 && message.to_ascii_lowercase().contains("no data found") {
        return PollError::NoData(message);
    }
    if (200..300).contains(&status) {
        return PollError::InvalidResponse(format!("HTTP {status} with an error body: {message}"));
    }
    PollError::Http { status, message }
}

/// Parses a successful id_status body into an [`Observation`].
pub fn parse_status_body(body: &[u8]) -> Result<Observation, PollError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let what = if body.is_empty() {
            "empty body".to_owned()
        } else if String::from_utf8_lossy(body).trim_start().starts_with('<') {
            "an HTML page instead of JSON".to_owned()
        } else {
            format!("not JSON ({e})")
        };
        PollError::InvalidResponse(what)
    })?;
    let Value::Object(map) = value else {
        return Err(PollError::InvalidResponse("JSON that is not an object".to_owned()));
    };
    if map.contains_key("error") || (map.contains_key("code") && !map.contains_key("last_checked")) {
        return Err(classify_failure(200, body));
    }
    let rate = |k: &str| match map.get(k) {
        Some(Value::String(s)) => parse_rate(s),
        // serde_json writes a number back as it was sent (shortest form), so it is read as a decimal too.
        Some(Value::Number(n)) => parse_rate(&n.to_string()),
        _ => None,
    };
    let rate_10m = rate("last_check_success_rate");
    let rate_1h = rate("last_hour_success_rate");
    let last_checked = match map.get("last_checked") {
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.with_timezone(&Utc)),
        _ => None,
    };
    let status = match map.get("last_known_status") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
        _ => None,
    };
    let (state, unrecognized_status) = match (status, rate_10m) {
        (Some(s), _) => match AuthorityState::from_provider(s) {
            AuthorityState::Unknown => (AuthorityState::Unknown, Some(clean_text(s))),
            known => (known, None),
        },
        (None, Some(r)) => (AuthorityState::from_success_ratio(r.as_f64()), None),
        (None, None) => {
            return Err(PollError::InvalidResponse(
                "neither last_known_status nor last_check_success_rate is usable".to_owned(),
            ));
        }
    };
    Ok(Observation { state, unrecognized_status, rate_10m, rate_1h, last_checked })
}

#[cfg(test)]
mod tests;
