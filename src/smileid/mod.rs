//! The Smile ID client: one [`IdStatusApi`] per API flavour, one typed result.
//!
//! Both flavours return the same five-field body, parsed by [`parse_status_body`] into an
//! [`Observation`]; every failure becomes a [`PollError`] whose [`PollError::reason`] is
//! one of the fixed [`FailureReason`] label values.

pub mod catalogue;
mod http;
mod v2;
mod v3;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::config::{ApiFlavor, PollConfig, SmileIdConfig};
pub use crate::model::FailureReason;
use crate::model::{AuthorityState, Observation, Target, parse_rate};
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

/// A failed poll. Once through [`PollError::redact`] (every client's result is), its
/// messages are cut short and never hold the API key.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PollError {
    /// No complete answer in time.
    #[error("no complete answer within {}", crate::config::fmt_duration(*.0))]
    Timeout(Duration),
    /// Could not connect.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// Credentials refused.
    #[error("unauthorized (HTTP {status}): {message}")]
    Unauthorized {
        /// HTTP status.
        status: u16,
        /// The provider's words.
        message: String,
    },
    /// Too many requests.
    #[error("rate limited (HTTP 429): {message}")]
    RateLimited {
        /// The provider's words.
        message: String,
    },
    /// The provider has no data for this pair.
    #[error("no data: {0}")]
    NoData(String),
    /// Another HTTP error status.
    #[error("HTTP {status}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The provider's words.
        message: String,
    },
    /// An answer we could not use.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
}

impl PollError {
    /// The bounded label value for this error.
    pub fn reason(&self) -> FailureReason {
        match self {
            PollError::Timeout(_) => FailureReason::Timeout,
            PollError::Connect(_) => FailureReason::Connect,
            PollError::Unauthorized { .. } => FailureReason::Unauthorized,
            PollError::RateLimited { .. } => FailureReason::RateLimited,
            PollError::NoData(_) => FailureReason::NoData,
            PollError::Http { status, .. } if *status >= 500 => FailureReason::Http5xx,
            PollError::Http { .. } => FailureReason::Http4xx,
            PollError::InvalidResponse(_) => FailureReason::InvalidResponse,
        }
    }

    /// Whether trying again soon may help.
    pub fn is_transient(&self) -> bool {
        match self {
            PollError::Timeout(_) | PollError::Connect(_) | PollError::RateLimited { .. } => true,
            PollError::Http { status, .. } => *status == 408 || *status >= 500,
            _ => false,
        }
    }

    /// The same error with every occurrence of `secret` blotted out, whatever a server
    /// echoed, and then cut short. In that order: a cut made first could split the key and
    /// leave its first characters where no whole key is left to find.
    pub fn redact(self, secret: &Secret) -> PollError {
        let fix = |s: String| shorten(redact_text(s, secret));
        match self {
            PollError::Connect(m) => PollError::Connect(fix(m)),
            PollError::Unauthorized { status, message } => PollError::Unauthorized { status, message: fix(message) },
            PollError::RateLimited { message } => PollError::RateLimited { message: fix(message) },
            PollError::NoData(m) => PollError::NoData(fix(m)),
            PollError::Http { status, message } => PollError::Http { status, message: fix(message) },
            PollError::InvalidResponse(m) => PollError::InvalidResponse(fix(m)),
            e @ PollError::Timeout(_) => e,
        }
    }
}

fn redact_text(s: String, secret: &Secret) -> String {
    if secret.is_empty() { s } else { s.replace(secret.expose(), "<redacted>") }
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

/// The most characters of provider text that we keep.
const TEXT_LIMIT: usize = 200;

/// At most [`TEXT_LIMIT`] characters, with `…` when cut; cutting twice changes nothing.
pub(crate) fn shorten(s: String) -> String {
    match s.char_indices().nth(TEXT_LIMIT) {
        None => s,
        Some((at, _)) if s[at..] == *"…" => s,
        Some((at, _)) => format!("{}…", s[..at].trim_end()),
    }
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
