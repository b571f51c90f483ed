//! Sending one request with a timeout, a body cap and retries.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::{BODY_LIMIT, PollError, classify_failure};

/// When and how long to wait before trying a request again.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First back-off; doubled each retry, with jitter.
    pub base_backoff: Duration,
    /// The longest wait a `Retry-After` header may ask for; a longer one ends the poll.
    pub max_retry_after: Duration,
    /// The whole time one [`Transport::send`] may take, attempts and waits together (the
    /// poll budget, see [`crate::model::PollBudget`]).
    pub budget: Duration,
}

impl RetryPolicy {
    /// The Go SDK's policy: 500 ms doubling, `Retry-After` honoured up to a minute; no
    /// budget beyond what the attempts take.
    pub fn new(retries: u32) -> Self {
        RetryPolicy {
            retries,
            base_backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
            budget: Duration::MAX,
        }
    }

    /// The same policy, with everything bounded by `budget`.
    pub fn with_budget(self, budget: Duration) -> Self {
        RetryPolicy { budget, ..self }
    }

    /// How long to wait before the next attempt, or `None` when the wait would not fit in
    /// the `left` of the budget (or a `Retry-After` asks for more than we ever wait).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>, left: Duration) -> Option<Duration> {
        if let Some(wait) = retry_after {
            return (wait <= self.max_retry_after && wait < left).then_some(wait);
        }
        let base = self.base_backoff.saturating_mul(1 << attempt.min(10));
        // Full jitter on the upper half keeps a fleet of exporters from retrying in step.
        let half = base / 2;
        let wait = half + half.mul_f64(rand::rng().random::<f64>());
        (wait < left).then_some(wait)
    }
}

/// An HTTP client with the per-request limits the configuration sets.
#[derive(Clone, Debug)]
pub struct Transport {
    client: reqwest::Client,
    timeout: Duration,
    retry: RetryPolicy,
}

/// A complete response that came back with a success status.
#[derive(Debug)]
pub struct Response {
    /// The body, at most [`BODY_LIMIT`] bytes.
    pub body: Bytes,
}

/// A user agent that names us, so the provider can tell who is calling.
pub const USER_AGENT: &str = concat!("idauth-exporter/", env!("CARGO_PKG_VERSION"));

/// How long an idle pooled connection to the provider is kept.
pub const POOL_IDLE: Duration = Duration::from_secs(5);

impl Transport {
    /// A transport with its own connection pool. Redirects are never followed: an API
    /// that redirects is misconfigured, and following could carry credentials elsewhere.
    pub fn new(timeout: Duration, retry: RetryPolicy) -> Result<Transport, reqwest::Error> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            // Servers close idle keep-alive connections (ours after 10 s, the provider's
            // load balancer after some unknown time); a poll that picks up one being closed
            // fails as `connect`. Polls a few seconds apart still share a connection.
            .pool_idle_timeout(POOL_IDLE)
            .build()?;
        Ok(Transport { client, timeout, retry })
    }

    /// The underlying client, for building requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends the request that `make` builds, retrying transient failures; the body of a
    /// success is returned, anything else is classified. Attempts and the waits between
    /// them stay within the budget: an attempt gets `timeout` or what is left, whichever is
    /// less, and a wait that would not fit ends the poll with the last error (a
    /// `Retry-After` beyond the budget ends it as rate limited at once).
    pub async fn send(&self, make: impl Fn() -> reqwest::RequestBuilder) -> Result<Response, PollError> {
        self.send_capped(make, BODY_LIMIT).await
    }

    /// [`Transport::send`] with a body cap of `limit` bytes rather than [`BODY_LIMIT`] (the
    /// provider's catalogue is tens of kilobytes).
    pub async fn send_capped(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<Response, PollError> {
        let began = tokio::time::Instant::now();
        let left = || self.retry.budget.saturating_sub(began.elapsed());
        let mut attempt = 0;
        loop {
            let timeout = self.timeout.min(left());
            if timeout.is_zero() {
                return Err(PollError::Timeout(self.retry.budget));
            }
            let (result, retry_after) = self.send_once(make(), timeout, limit).await;
            match result {
                Err(e) if e.is_transient() && attempt < self.retry.retries => {
                    let Some(wait) = self.retry.backoff(attempt, retry_after, left()) else {
                        return Err(too_long(e, retry_after));
                    };
                    tracing::debug!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
        limit: usize,
    ) -> (Result<Response, PollError>, Option<Duration>) {
        let fut = async {
            let resp = req.send().await.map_err(transport_error)?;
            let status = resp.status().as_u16();
            let retry_after = parse_retry_after(resp.headers());
            let body = read_capped(resp, limit).await?;
            Ok::<_, PollError>((status, retry_after, body))
        };
        match tokio::time::timeout(timeout, fut).await {
            Err(_) | Ok(Err(PollError::Timeout(_))) => (Err(PollError::Timeout(timeout)), None),
            Ok(Err(e)) => (Err(e), None),
            Ok(Ok((status, _, body))) if (200..300).contains(&status) => (Ok(Response { body }), None),
            Ok(Ok((status, retry_after, body))) => (Err(classify_failure(status, &body)), retry_after),
        }
    }
}

/// The error that ends a poll whose next wait would not fit: a rate limit says how long
/// it asked us to wait.
fn too_long(e: PollError, retry_after: Option<Duration>) -> PollError {
    match (e, retry_after) {
        (PollError::RateLimited { message }, Some(wait)) => PollError::RateLimited {
            message: format!(
                "{message}; asked to retry after {}, beyond this poll's budget",
                crate::config::fmt_duration(wait)
            ),
        },
        (e, _) => e,
    }
}

async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Bytes, PollError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(PollError::InvalidResponse(format!("body larger than {} KiB", limit / 1024)));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > limit {
            return Err(PollError::InvalidResponse(format!("body larger than {} KiB", limit / 1024)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn transport_error(e: reqwest::Error) -> PollError {
    // reqwest's Display includes the URL, which holds no secret; its source chain says why.
    let (timeout, connect, body) = (e.is_timeout(), e.is_connect(), e.is_body() || e.is_decode());
    let cut = connection_cut(&e);
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    let msg = super::shorten(super::clean_text(&msg));
    if timeout {
        PollError::Timeout(Duration::ZERO)
    } else if connect || cut {
        // A connection reset or closed half-way through the answer is the network's
        // fault, not the provider's words: transient, and worth another try.
        PollError::Connect(msg)
    } else if body {
        PollError::InvalidResponse(msg)
    } else {
        PollError::Connect(msg)
    }
}

/// Whether the connection was reset or closed before the answer was complete.
fn connection_cut(e: &reqwest::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof)
        {
            return true;
        }
        if s.downcast_ref::<hyper::Error>().is_some_and(|h| h.is_incomplete_message()) {
            return true;
        }
        source = s.source();
    }
    false
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        let later = chrono::Utc::now() + chrono::TimeDelta::seconds(30);
        h.insert(RETRY_AFTER, later.to_rfc2822().parse().unwrap());
        let d = parse_retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn backoff_doubles_and_waits_must_fit_the_budget() {
        let p = RetryPolicy::new(2).with_budget(Duration::from_secs(30));
        let plenty = Duration::from_secs(30);
        let b0 = p.backoff(0, None, plenty).unwrap();
        let b2 = p.backoff(2, None, plenty).unwrap();
        assert!(b0 >= Duration::from_millis(250) && b0 <= Duration::from_millis(500), "{b0:?}");
        assert!(b2 >= Duration::from_millis(1000) && b2 <= Duration::from_millis(2000), "{b2:?}");
        assert_eq!(p.backoff(0, Some(Duration::from_secs(3)), plenty), Some(Duration::from_secs(3)));
        // A Retry-After beyond what is left, or beyond a minute, ends the poll.
        assert_eq!(p.backoff(0, Some(Duration::from_secs(3600)), plenty), None);
        assert_eq!(p.backoff(0, Some(Duration::from_secs(10)), Duration::from_secs(5)), None);
        assert_eq!(p.backoff(2, None, Duration::from_millis(100)), None);
    }
}
