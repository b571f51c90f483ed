//! The HTTP server: `/metrics`, a landing page, health, readiness, reload and a JSON status.
//!
//! It never calls the provider: everything it serves comes from a [`Routes`] implementation.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, ConnectionMetrics, Exposition};

/// What the server shows; the daemon implements it.
pub trait Routes: Send + Sync + 'static {
    /// The metrics in the text exposition format, to be written as the client reads.
    fn metrics(&self) -> Exposition;
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
    /// The status page at `/` (HTML), when there is one; the plain landing page otherwise.
    fn status_page(&self) -> Option<String> {
        None
    }
    /// The live part of the status page, which its script fetches (HTML).
    fn status_fragment(&self) -> Option<String> {
        None
    }
    /// `/api/v1/history` for a query string: JSON, or a status code and a message.
    fn history_json(&self, _query: &str) -> Result<String, (StatusCode, String)> {
        Err((StatusCode::NOT_FOUND, "no history is kept\n".to_owned()))
    }
    /// Reloads the configuration file.
    fn reload(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// How long in-flight requests get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A response body: whole, or (`/metrics`) written a piece at a time as the client reads.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// Answers one request; shared by the exporter and the simulator.
pub type Handler = Arc<dyn Fn(Request<Incoming>) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// The exporter's endpoints over `routes`.
pub fn exporter(routes: Arc<dyn Routes>) -> Handler {
    Arc::new(move |req| {
        let routes = routes.clone();
        Box::pin(async move { handle(&routes, req).await })
    })
}

/// Pages whose cost grows with the pairs and their history (the status page, its fragment,
/// the status and history APIs: tens of milliseconds at 1,000 pairs) are built on the
/// blocking pool, one at a time, so that a flood of them never holds up a scrape on the
/// runtime's one thread.
static PAGES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

async fn off_thread<T: Send + 'static>(
    routes: &Arc<dyn Routes>,
    build: impl FnOnce(&dyn Routes) -> T + Send + 'static,
) -> T {
    let _turn = PAGES.acquire().await;
    let routes = routes.clone();
    match tokio::task::spawn_blocking(move || build(&*routes)).await {
        Ok(page) => page,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Binds `address` (`host:port`). An unspecified host (`0.0.0.0`, `[::]`; `:port` arrives
/// as `0.0.0.0:port`) listens on every IPv4 and IPv6 interface, as Prometheus does: one
/// IPv6 socket with `IPV6_V6ONLY` off, or IPv4 alone where IPv6 is unavailable.
pub async fn bind(address: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(address).await? {
        let bound = if addr.ip().is_unspecified() {
            match dual_stack(addr.port()) {
                Ok(l) => Ok(l),
                Err(e) => {
                    tracing::debug!(error = %e, "no dual-stack IPv6 socket; listening on IPv4 only");
                    TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], addr.port()))).await
                }
            }
        } else {
            TcpListener::bind(addr).await
        };
        match bound {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the address resolves to nothing")))
}

fn dual_stack(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
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
/// How long a connection being closed (idle, evicted) gets to say goodbye.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// File descriptors kept free of connections: the runtime, provider connections, files.
const RESERVED_FILES: u64 = 64;

/// The default of `--web.max-connections`: well under the usual 1,024 open files.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Limits that keep a few clients from starving the server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Connections open at once. At the cap, a new connection closes the connection idle
    /// the longest; if every one has a request in flight, the new one is closed at once.
    /// Lowered to fit the open-files limit.
    pub max_connections: usize,
    /// How long a new connection may take to send its first request (its headers, for
    /// HTTP/1): a connection that sends nothing, or only the HTTP/2 preface, is closed then.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open without a request after its last one
    /// (keep-alive, HTTP/1 and HTTP/2).
    pub idle_timeout: Duration,
    /// Where refused and open connections are counted.
    pub metrics: ConnectionMetrics,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            metrics: ConnectionMetrics::default(),
        }
    }
}

/// [`serve`], with TLS whenever `tls` gives an acceptor.
pub async fn serve_with_tls(listener: TcpListener, handler: Handler, tls: TlsSource, shutdown: CancellationToken) {
    serve_with_options(listener, handler, tls, ServerOptions::default(), shutdown).await;
}

/// When a connection last did something, and whether it is doing something now.
struct Activity {
    in_flight: AtomicUsize,
    requests: AtomicU64,
    last: Mutex<Instant>,
    /// Cancelled to close the connection (to make room for a new one).
    evict: CancellationToken,
}

impl Activity {
    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Resolves once the connection has been idle too long: no first request within
    /// `first`, or no new request within `idle` of the last one.
    async fn idle(&self, first: Duration, idle: Duration) {
        loop {
            if self.in_flight.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(idle.min(first)).await;
                continue;
            }
            let limit = if self.requests.load(Ordering::Acquire) == 0 { first } else { idle };
            let deadline = self.last() + limit;
            if Instant::now() >= deadline && self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// Marks a request in flight on its connection for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> InFlight {
        activity.requests.fetch_add(1, Ordering::AcqRel);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The open connections, for the cap.
#[derive(Default)]
struct Connections {
    next: u64,
    open: HashMap<u64, Arc<Activity>>,
}

/// The cap that fits the open-files limit: `requested`, or less with a warning.
fn fitting_cap(requested: usize) -> usize {
    #[cfg(unix)]
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        let fits = soft.saturating_sub(RESERVED_FILES).max(soft / 2).max(1);
        if (requested as u64) > fits {
            tracing::warn!(
                requested,
                max_connections = fits,
                open_files_limit = soft,
                "--web.max-connections does not fit the open-files limit; lowering it"
            );
            return fits as usize;
        }
    }
    requested.max(1)
}

/// [`serve_with_tls`] under `options`' connection cap and timeouts.
pub async fn serve_with_options(
    listener: TcpListener,
    handler: Handler,
    tls: TlsSource,
    options: ServerOptions,
    shutdown: CancellationToken,
) {
    let cap = fitting_cap(options.max_connections);
    let metrics = options.metrics.clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let connections = Arc::new(Mutex::new(Connections::default()));
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    metrics.refused("accept_error");
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let activity = Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last: Mutex::new(Instant::now()),
            evict: CancellationToken::new(),
        });
        let id = {
            let mut conns = connections.lock().unwrap_or_else(|p| p.into_inner());
            if conns.open.len() >= cap {
                let idlest = conns
                    .open
                    .iter()
                    .filter(|(_, a)| a.in_flight.load(Ordering::Acquire) == 0)
                    .min_by_key(|(_, a)| a.last())
                    .map(|(id, _)| *id);
                match idlest.and_then(|id| conns.open.remove(&id)) {
                    Some(victim) => {
                        victim.evict.cancel();
                        metrics.refused("evicted");
                    }
                    None => {
                        metrics.refused("limit");
                        drop(stream);
                        tracing::debug!(%peer, "connection refused: every connection has a request in flight");
                        continue;
                    }
                }
            }
            conns.next += 1;
            let id = conns.next;
            conns.open.insert(id, activity.clone());
            metrics.set_open(conns.open.len());
            id
        };
        let handler = handler.clone();
        let on_request = activity.clone();
        let service = hyper::service::service_fn(move |req| {
            let in_flight = InFlight::new(&on_request);
            let answer = handler(req);
            async move {
                let resp = answer.await;
                drop(in_flight);
                Ok::<_, Infallible>(resp)
            }
        });
        let builder = builder.clone();
        let acceptor = tls();
        let (shutdown, connections, metrics) = (shutdown.clone(), connections.clone(), metrics.clone());
        let timeouts = (options.header_read_timeout, options.idle_timeout);
        tracker.spawn(async move {
            let result = match acceptor {
                None => {
                    drive(
                        builder.serve_connection(TokioIo::new(stream), service).into_owned(),
                        &activity,
                        timeouts,
                        &shutdown,
                    )
                    .await
                }
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => Some(r),
                        _ = activity.evict.cancelled() => None,
                        _ = shutdown.cancelled() => None,
                    };
                    match handshake {
                        Some(Ok(Ok(tls))) => {
                            drive(
                                builder.serve_connection(TokioIo::new(tls), service).into_owned(),
                                &activity,
                                timeouts,
                                &shutdown,
                            )
                            .await
                        }
                        Some(Ok(Err(e))) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Some(Err(_)) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                        None => Ok(()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            let mut conns = connections.lock().unwrap_or_else(|p| p.into_inner());
            conns.open.remove(&id);
            metrics.set_open(conns.open.len());
        });
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::debug!("in-flight requests cut short at shutdown");
    }
}

/// Runs one connection until it ends, is idle too long, is evicted or the server shuts
/// down; then closes it gracefully (HTTP/2 GOAWAY), within a grace period.
async fn drive<C>(
    conn: C,
    activity: &Activity,
    (first, idle): (Duration, Duration),
    shutdown: &CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    C: GracefulConnection<Error = Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conn = std::pin::pin!(conn);
    let grace = tokio::select! {
        r = conn.as_mut() => return r,
        _ = shutdown.cancelled() => SHUTDOWN_GRACE,
        _ = activity.evict.cancelled() => CLOSE_GRACE,
        _ = activity.idle(first, idle) => CLOSE_GRACE,
    };
    conn.as_mut().graceful_shutdown();
    match tokio::time::timeout(grace, conn).await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

/// `/metrics`, gzipped when the scraper accepts it (Prometheus does): the text repeats
/// itself and shrinks about tenfold. An exposition of one piece goes whole (with a
/// Content-Length); a longer one is streamed, so a scrape's memory does not grow with it.
fn metrics_response(mut exposition: Exposition, headers: &hyper::HeaderMap) -> Response<Body> {
    let mut first = String::new();
    if !exposition.write_next(&mut first) {
        return compressible(METRICS_CONTENT_TYPE, first, headers);
    }
    let gzip = accepts_gzip(headers.get_all(hyper::header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()));
    let body = Streamed {
        first: Some(first),
        rest: Some(exposition),
        gzip: gzip.then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())),
    };
    let mut resp = Response::new(body.boxed_unsync());
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    if gzip {
        resp.headers_mut().insert(hyper::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp.headers_mut().insert(hyper::header::VARY, HeaderValue::from_static("Accept-Encoding"));
    resp
}

/// An exposition written (and gzipped) a piece at a time, as hyper asks for the next.
struct Streamed {
    first: Option<String>,
    rest: Option<Exposition>,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
}

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        use std::io::Write;
        let this = self.get_mut();
        let frame = |bytes: Bytes| std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(bytes))));
        loop {
            let text = if let Some(text) = this.first.take() {
                text
            } else if let Some(rest) = &mut this.rest {
                let mut text = String::with_capacity(crate::metrics::CHUNK + crate::metrics::CHUNK / 8);
                if !rest.write_next(&mut text) {
                    this.rest = None;
                }
                text
            } else {
                // Writing to a Vec cannot fail.
                let tail = this.gzip.take().and_then(|gz| gz.finish().ok()).unwrap_or_default();
                return if tail.is_empty() { std::task::Poll::Ready(None) } else { frame(tail.into()) };
            };
            let out = match &mut this.gzip {
                None => Bytes::from(text),
                Some(gz) => {
                    let _ = gz.write_all(text.as_bytes());
                    std::mem::take(gz.get_mut()).into()
                }
            };
            if !out.is_empty() {
                return frame(out);
            }
        }
    }
}

/// A text body, gzipped when the client accepts it: `/metrics`, and the status page and
/// the fragment its script fetches, whose rows of history cells repeat themselves too.
fn compressible(content_type: &'static str, body: String, headers: &hyper::HeaderMap) -> Response<Body> {
    let gzip = accepts_gzip(headers.get_all(hyper::header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()));
    if gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if encoder.write_all(body.as_bytes()).is_ok()
            && let Ok(compressed) = encoder.finish()
        {
            let mut resp = text(StatusCode::OK, content_type, compressed);
            resp.headers_mut().insert(hyper::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            resp.headers_mut().insert(hyper::header::VARY, HeaderValue::from_static("Accept-Encoding"));
            return resp;
        }
    }
    let mut resp = text(StatusCode::OK, content_type, body);
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
pub fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// 405 with the methods that are allowed.
pub fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "Method Not Allowed\n");
    resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

async fn handle(routes: &Arc<dyn Routes>, req: Request<Incoming>) -> Response<Body> {
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
        "/api/v1/status" if read => {
            text(StatusCode::OK, "application/json", off_thread(routes, |r| r.status_json()).await)
        }
        "/" if read && let Some(page) = off_thread(routes, |r| r.status_page()).await => {
            status_page_response(page, req.headers())
        }
        "/ui/status" if read => match off_thread(routes, |r| r.status_fragment()).await {
            Some(html) => compressible("text/html; charset=utf-8", html, req.headers()),
            None => text(StatusCode::NOT_FOUND, plain, "Not Found\n"),
        },
        "/ui/status.js" if read => text(StatusCode::OK, "text/javascript; charset=utf-8", crate::web::SCRIPT),
        "/ui/icon.svg" if read => text(StatusCode::OK, "image/svg+xml", crate::web::ICON),
        "/ui/status.css" if read => text(StatusCode::OK, "text/css; charset=utf-8", crate::web::STYLE),
        "/api/v1/history" if read => {
            let query = req.uri().query().unwrap_or("").to_owned();
            match off_thread(routes, move |r| r.history_json(&query)).await {
                Ok(json) => text(StatusCode::OK, "application/json", json),
                Err((status, message)) => text(status, plain, message),
            }
        }
        "/" if read => text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing_page(&routes.landing_status(), routes.landing_refresh()),
        ),
        "/metrics" | "/-/healthy" | "/-/ready" | "/api/v1/status" | "/" | "/api/v1/history" | "/ui/status"
        | "/ui/status.js" | "/ui/status.css" | "/ui/icon.svg" => not_allowed("GET, HEAD"),
        "/-/reload" => not_allowed("POST, PUT"),
        _ => text(StatusCode::NOT_FOUND, plain, "Not Found\n"),
    };
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The status page, under a Content-Security-Policy that allows same-origin files only.
fn status_page_response(page: String, request: &hyper::HeaderMap) -> Response<Body> {
    let mut resp = compressible("text/html; charset=utf-8", page, request);
    let headers = resp.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(crate::web::CONTENT_SECURITY_POLICY));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
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

    /// A status page that takes as long as the test wants, and metrics of no pair.
    struct SlowPage {
        release: Mutex<std::sync::mpsc::Receiver<()>>,
        metrics: crate::metrics::Metrics,
    }

    impl Routes for SlowPage {
        fn metrics(&self) -> Exposition {
            let store = crate::store::Store::new(&[]);
            self.metrics.exposition(&store, chrono::Utc::now(), Duration::from_secs(60))
        }
        fn is_ready(&self) -> bool {
            true
        }
        fn status_json(&self) -> String {
            "{}".to_owned()
        }
        fn landing_status(&self) -> String {
            String::new()
        }
        fn status_page(&self) -> Option<String> {
            // Bounded, so that a page built on the runtime's thread fails the test rather
            // than hanging it.
            let _ = self.release.lock().unwrap().recv_timeout(Duration::from_secs(10));
            Some("<html>page</html>".to_owned())
        }
        fn reload(&self) -> BoxFuture<'_, Result<(), String>> {
            Box::pin(async { Ok(()) })
        }
    }

    /// The runtime has one thread: a status page being built (slowly, as at thousands of
    /// pairs) must not hold up a scrape. Without the blocking pool, this test's own
    /// requests could not even run while the page is built, and it would time out.
    #[tokio::test]
    async fn a_scrape_is_answered_while_a_status_page_is_being_built() {
        let (release, wait) = std::sync::mpsc::channel();
        let routes: Arc<dyn Routes> =
            Arc::new(SlowPage { release: Mutex::new(wait), metrics: crate::metrics::Metrics::new("test") });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, exporter(routes), shutdown.clone()));
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::new();
        let page = tokio::spawn({
            let http = http.clone();
            async move { http.get(format!("http://{addr}/")).send().await.unwrap().text().await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!page.is_finished(), "the page waits for the test");
        let scrape = tokio::time::timeout(Duration::from_secs(10), async {
            http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap()
        })
        .await
        .expect("a scrape is answered while the page is being built");
        assert!(scrape.contains("idauth_targets 0\n"), "{scrape}");
        assert!(!page.is_finished(), "the page was still being built during the scrape");
        release.send(()).unwrap();
        assert_eq!(page.await.unwrap(), "<html>page</html>");
        shutdown.cancel();
    }
}
