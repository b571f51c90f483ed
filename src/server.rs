//! The HTTP server: `/metrics`, a landing page, health, readiness, reload and a JSON status.
//!
//! It never calls the provider: everything it serves comes from a [`Routes`] implementation.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;

/// What the server shows; the daemon implements it.
pub trait Routes: Send + Sync + 'static {
    /// The metrics in the text exposition format.
    fn metrics(&self) -> String;
    /// Whether the first poll cycle has finished.
    fn is_ready(&self) -> bool;
    /// The current status of every pair as JSON.
    fn status_json(&self) -> String;
    /// The landing page's status: a summary by state and a table of every pair (HTML).
    fn landing_status(&self) -> String;
    /// Seconds after which the landing page reloads itself, if it should (the demo).
    fn landing_refresh(&self) -> Option<u64> {
        None
    }
    /// Reloads the configuration file.
    fn reload(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// How long in-flight requests get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Answers one request; shared by the exporter and the simulator.
pub type Handler = Arc<dyn Fn(Request<Incoming>) -> BoxFuture<'static, Response<Full<Bytes>>> + Send + Sync>;

/// The exporter's endpoints over `routes`.
pub fn exporter(routes: Arc<dyn Routes>) -> Handler {
    Arc::new(move |req| {
        let routes = routes.clone();
        Box::pin(async move { handle(&*routes, req).await })
    })
}

/// Serves `handler` on `listener` until `shutdown` is cancelled, then lets in-flight
/// requests finish for up to [`SHUTDOWN_GRACE`].
pub async fn serve(listener: TcpListener, handler: Handler, shutdown: CancellationToken) {
    serve_with_tls(listener, handler, Arc::new(|| None), shutdown).await;
}

/// Where each new connection learns whether to speak TLS: asked per connection, so that
/// a reloaded web configuration applies to the next one.
pub type TlsSource = Arc<dyn Fn() -> Option<TlsAcceptor> + Send + Sync>;

/// How long a client gets to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// [`serve`], with TLS whenever `tls` gives an acceptor.
pub async fn serve_with_tls(listener: TcpListener, handler: Handler, tls: TlsSource, shutdown: CancellationToken) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let service = hyper::service::service_fn(move |req| {
            let answer = handler(req);
            async move { Ok::<_, Infallible>(answer.await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = tls();
        tokio::spawn(async move {
            let result = match acceptor {
                None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned()).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        watcher.watch(builder.serve_connection(TokioIo::new(tls), service).into_owned()).await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::debug!("in-flight requests cut short at shutdown");
    }
}

/// `/metrics`, gzipped when the scraper accepts it (Prometheus does): the text repeats
/// itself and shrinks about tenfold.
fn metrics_response(body: String, headers: &hyper::HeaderMap) -> Response<Full<Bytes>> {
    let gzip = accepts_gzip(headers.get_all(hyper::header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()));
    if gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if encoder.write_all(body.as_bytes()).is_ok()
            && let Ok(compressed) = encoder.finish()
        {
            let mut resp = text(StatusCode::OK, METRICS_CONTENT_TYPE, compressed);
            resp.headers_mut().insert(hyper::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            resp.headers_mut().insert(hyper::header::VARY, HeaderValue::from_static("Accept-Encoding"));
            return resp;
        }
    }
    let mut resp = text(StatusCode::OK, METRICS_CONTENT_TYPE, body);
    resp.headers_mut().insert(hyper::header::VARY, HeaderValue::from_static("Accept-Encoding"));
    resp
}

/// Whether `Accept-Encoding` values allow gzip: `gzip` (or else `*`) with a q-value above
/// zero. `q=0`, `q=0.0`, `q=0.` and `q=0.000` all refuse it; a malformed q-value counts as 0.
fn accepts_gzip<'a>(values: impl Iterator<Item = &'a str>) -> bool {
    let (mut gzip, mut any) = (None::<bool>, None::<bool>);
    for element in values.flat_map(|v| v.split(',')) {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut acceptable = true;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else { continue };
            if name.trim().eq_ignore_ascii_case("q") {
                acceptable = parse_qvalue(value.trim()).is_some_and(|q| q > 0);
            }
        }
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(gzip.unwrap_or(false) || acceptable);
        } else if coding == "*" {
            any = Some(any.unwrap_or(false) || acceptable);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// An RFC 9110 qvalue in thousandths: `0`, `0.`, `0.5`, `1`, `1.000`; `None` if malformed.
fn parse_qvalue(q: &str) -> Option<u16> {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths =
        frac.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// A response with a body and its Content-Type.
pub fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// 405 with the methods that are allowed.
pub fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "Method Not Allowed\n");
    resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

async fn handle(routes: &dyn Routes, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let plain = "text/plain; charset=utf-8";
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut resp = match req.uri().path() {
        "/metrics" if read => metrics_response(routes.metrics(), req.headers()),
        "/-/healthy" if read => text(StatusCode::OK, plain, "Healthy.\n"),
        "/-/ready" if read => {
            if routes.is_ready() {
                text(StatusCode::OK, plain, "Ready.\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, plain, "Not ready: the first poll cycle has not finished.\n")
            }
        }
        "/-/reload" if matches!(*req.method(), Method::POST | Method::PUT) => match routes.reload().await {
            Ok(()) => text(StatusCode::OK, plain, "Reloaded.\n"),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, plain, format!("failed to reload config: {e}\n")),
        },
        "/api/v1/status" if read => text(StatusCode::OK, "application/json", routes.status_json()),
        "/" if read => text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing_page(&routes.landing_status(), routes.landing_refresh()),
        ),
        "/metrics" | "/-/healthy" | "/-/ready" | "/api/v1/status" | "/" => not_allowed("GET, HEAD"),
        "/-/reload" => not_allowed("POST, PUT"),
        _ => text(StatusCode::NOT_FOUND, plain, "Not Found\n"),
    };
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn landing_page(status: &str, refresh: Option<u64>) -> String {
    let refresh = refresh.map_or(String::new(), |s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"));
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>idauth-exporter</title>{refresh}
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}
.summary span{{margin-right:1.2em;font-size:1.2em}}.online{{color:#1a7f37}}.interruption{{color:#9a6700}}.offline{{color:#cf222e;font-weight:bold}}.unknown{{color:#57606a}}</style></head>
<body>
<h1>idauth-exporter</h1>
<p>Availability of government ID authorities behind Smile ID, for Prometheus. Version {version}.</p>
<ul>
<li><a href="/metrics">Metrics</a></li>
<li><a href="/api/v1/status">Status (JSON)</a></li>
<li><a href="/-/healthy">Health</a> and <a href="/-/ready">readiness</a></li>
</ul>
{status}</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_refused_by_any_spelling_of_q_zero() {
        let accepts = |v: &str| accepts_gzip(std::iter::once(v));
        for yes in
            ["gzip", "gzip, deflate", "deflate, gzip;q=0.5", "GZIP;Q=1", "gzip ; q=1.000", "*", "identity, *;q=0.1"]
        {
            assert!(accepts(yes), "{yes}");
        }
        for no in [
            "gzip;q=0",
            "gzip;q=0.0",
            "gzip;q=0.00",
            "gzip;q=0.000",
            "gzip;q=0.",
            "gzip; q=0.0",
            "gzip ;q = 0.0 ",
            "gzip;q=0, identity",
            "identity",
            "",
            "gzip;q=0.0001",
            "gzip;q=2",
            "gzip;q=abc",
            "*;q=0",
            "gzip;q=0, *",
        ] {
            assert!(!accepts(no), "{no}");
        }
        assert!(accepts_gzip(["identity", "gzip"].into_iter()), "several headers");
    }
}
