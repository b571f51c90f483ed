//! Generic HTTP serving, shared by the exporter and the simulator: binding (dual stack),
//! TLS per connection, a connection cap with idle eviction and its counters, graceful
//! shutdown, gzip, and bodies streamed a piece at a time. It knows nothing of what is
//! served: it imports no other module of this crate.

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
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use prometheus::{IntCounterVec, IntGauge, Opts};

/// How long in-flight requests get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A response body: whole, or (`/metrics`) written a piece at a time as the client reads.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// Answers one request; shared by the exporter and the simulator.
pub type Handler = Arc<dyn Fn(Request<Incoming>) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

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
    /// Connections open at once; lowered to fit the open-files limit. At the cap a new
    /// connection is accepted only when one is freed: the one silent for a second since it
    /// was accepted and waiting longest is closed, or one idle for `evict_idle_after` after its last
    /// answer; otherwise the next HTTP/1 answer on a kept-alive connection carries
    /// `Connection: close`, which ends that connection cleanly once answered, and the new
    /// one waits for its slot (those behind it wait in the listen backlog). No request is
    /// ever cut: the cap rotates connections between requests instead of thrashing them.
    pub max_connections: usize,
    /// How long a new connection may take to send its first request (its headers, for
    /// HTTP/1): a connection that sends nothing, or only the HTTP/2 preface, is closed then.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open without a request after its last one
    /// (keep-alive, HTTP/1 and HTTP/2).
    pub idle_timeout: Duration,
    /// At the cap, how long a kept-alive connection must have been idle since its last
    /// answer to be closed for a new one: long enough that a client looping on it is
    /// never caught between two requests.
    pub evict_idle_after: Duration,
    /// At the cap, how long a connection that has sent no request since it was accepted is
    /// left alone: its request may be on its way (or its TLS handshake under way).
    pub evict_silent_after: Duration,
    /// Where refused and open connections are counted.
    pub metrics: ConnectionMetrics,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            evict_idle_after: Duration::from_secs(5),
            evict_silent_after: Duration::from_secs(1),
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

impl Connections {
    /// Frees a slot if one may be freed now: closes the connection that has sent no request
    /// for `silent` since it was accepted and has waited longest, or else one idle for
    /// `kept_idle` since its last answer. Returns whether there is room.
    fn make_room(
        &mut self,
        cap: usize,
        (silent, kept_idle): (Duration, Duration),
        metrics: &ConnectionMetrics,
    ) -> bool {
        if self.open.len() < cap {
            return true;
        }
        let now = Instant::now();
        let idle = |a: &Activity| a.in_flight.load(Ordering::Acquire) == 0;
        // Silent for a while: a connection just accepted may have its request on the way.
        let never_used = self
            .open
            .iter()
            .filter(|(_, a)| {
                idle(a) && a.requests.load(Ordering::Acquire) == 0 && now.duration_since(a.last()) >= silent
            })
            .min_by_key(|(_, a)| a.last())
            .map(|(id, _)| *id);
        let kept = || {
            self.open
                .iter()
                .filter(|(_, a)| idle(a) && now.duration_since(a.last()) >= kept_idle)
                .min_by_key(|(_, a)| a.last())
                .map(|(id, _)| *id)
        };
        match never_used.or_else(kept).and_then(|id| self.open.remove(&id)) {
            Some(victim) => {
                victim.evict.cancel();
                metrics.refused("evicted");
                true
            }
            None => false,
        }
    }
}

/// What the accept loop and the connections share.
#[derive(Default)]
struct Shared {
    connections: Mutex<Connections>,
    /// Told whenever a connection ends.
    freed: tokio::sync::Notify,
    /// Set while a new connection waits for a slot: the next HTTP/1 answer takes it and
    /// closes its connection (`Connection: close`).
    rotate: std::sync::atomic::AtomicBool,
}

/// How often a connection waiting for a slot looks again for one to free.
const ROOM_CHECK: Duration = Duration::from_millis(200);

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
    let shared = Arc::new(Shared::default());
    let tracker = TaskTracker::new();
    'serve: loop {
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
        // At the cap, this connection waits for a slot (the next ones in the backlog);
        // meanwhile one kept-alive connection is asked to close after its next answer.
        loop {
            let freed = shared.freed.notified();
            let room = shared.connections.lock().unwrap_or_else(|p| p.into_inner()).make_room(
                cap,
                (options.evict_silent_after, options.evict_idle_after),
                &metrics,
            );
            if room {
                break;
            }
            shared.rotate.store(true, Ordering::Release);
            tokio::select! {
                _ = shutdown.cancelled() => break 'serve,
                _ = freed => {}
                _ = tokio::time::sleep(ROOM_CHECK) => {}
            }
        }
        shared.rotate.store(false, Ordering::Release);
        let activity = Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last: Mutex::new(Instant::now()),
            evict: CancellationToken::new(),
        });
        let id = {
            let mut conns = shared.connections.lock().unwrap_or_else(|p| p.into_inner());
            conns.next += 1;
            let id = conns.next;
            conns.open.insert(id, activity.clone());
            metrics.set_open(conns.open.len());
            id
        };
        let handler = handler.clone();
        let on_request = activity.clone();
        let (rotation, counter) = (shared.clone(), metrics.clone());
        let service = hyper::service::service_fn(move |req| {
            let in_flight = InFlight::new(&on_request);
            let http1 = req.version() < hyper::Version::HTTP_2;
            let answer = handler(req);
            let (rotation, counter) = (rotation.clone(), counter.clone());
            async move {
                let mut resp = answer.await;
                // A connection waits for a slot: this one ends once answered, cleanly.
                if http1 && rotation.rotate.swap(false, Ordering::AcqRel) {
                    resp.headers_mut().insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
                    counter.refused("limit");
                }
                drop(in_flight);
                Ok::<_, Infallible>(resp)
            }
        });
        let builder = builder.clone();
        let acceptor = tls();
        let (shutdown, shared, metrics) = (shutdown.clone(), shared.clone(), metrics.clone());
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
            let mut conns = shared.connections.lock().unwrap_or_else(|p| p.into_inner());
            conns.open.remove(&id);
            metrics.set_open(conns.open.len());
            drop(conns);
            shared.freed.notify_waiters();
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

/// A body written a piece at a time (`/metrics` at thousands of pairs): each call appends
/// the next piece and says whether more is left.
pub trait Chunks: Send + 'static {
    /// Appends the next piece to `out`; returns whether more is left to write.
    fn write_next(&mut self, out: &mut String) -> bool;
}

/// About how much text one piece of a [`Chunks`] body holds, to size its buffer.
pub const CHUNK_HINT: usize = 128 * 1024;

/// A text body written a piece at a time, gzipped when the client accepts it (Prometheus
/// does: an exposition repeats itself and shrinks about tenfold). A body of one piece goes
/// whole (with a Content-Length); a longer one is streamed, so memory does not grow with it.
pub fn streamed(content_type: &'static str, mut chunks: impl Chunks, headers: &hyper::HeaderMap) -> Response<Body> {
    let mut first = String::new();
    if !chunks.write_next(&mut first) {
        return compressible(content_type, first, headers);
    }
    let gzip = accepts_gzip(headers.get_all(hyper::header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()));
    let body = Streamed {
        first: Some(first),
        rest: Some(Box::new(chunks)),
        gzip: gzip.then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())),
    };
    let mut resp = Response::new(body.boxed_unsync());
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if gzip {
        resp.headers_mut().insert(hyper::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp.headers_mut().insert(hyper::header::VARY, HeaderValue::from_static("Accept-Encoding"));
    resp
}

/// A [`Chunks`] body written (and gzipped) a piece at a time, as hyper asks for the next.
struct Streamed {
    first: Option<String>,
    rest: Option<Box<dyn Chunks>>,
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
                let mut text = String::with_capacity(CHUNK_HINT + CHUNK_HINT / 8);
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
pub fn compressible(content_type: &'static str, body: String, headers: &hyper::HeaderMap) -> Response<Body> {
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

/// The HTTP server's connections: those refused or dropped to stay under the cap, and
/// those open. Clones share the same series; a default one is registered nowhere.
#[derive(Clone, Debug)]
pub struct ConnectionMetrics {
    refused: IntCounterVec,
    open: IntGauge,
}

impl ConnectionMetrics {
    /// The `reason` label values: `limit` (a kept-alive connection ended after its answer,
    /// `Connection: close`, for one waiting at the cap), `evicted` (an idle connection closed
    /// to make room), `accept_error` (accepting failed, for example out of file descriptors).
    pub const REASONS: [&'static str; 3] = ["limit", "evicted", "accept_error"];

    /// Counts one connection refused or dropped for `reason`, one of [`Self::REASONS`].
    pub fn refused(&self, reason: &str) {
        self.refused.with_label_values(&[reason]).inc();
    }

    /// How many connections were refused or dropped for `reason`.
    pub fn refused_total(&self, reason: &str) -> u64 {
        self.refused.with_label_values(&[reason]).get()
    }

    /// Sets the number of open connections.
    pub fn set_open(&self, n: usize) {
        self.open.set(n as i64);
    }

    /// The number of open connections.
    pub fn open(&self) -> i64 {
        self.open.get()
    }
}

impl Default for ConnectionMetrics {
    fn default() -> Self {
        let refused = IntCounterVec::new(
            Opts::new(
                "idauth_http_connections_refused_total",
                "HTTP connections closed by the exporter to stay under --web.max-connections, by reason: \
                 limit (a kept-alive connection ended cleanly after its answer, with Connection: close, \
                 to make room for one waiting), evicted (a connection that never sent a request, or idle \
                 since its last answer, closed to make room), accept_error (accepting failed, e.g. out of \
                 file descriptors).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for reason in Self::REASONS {
            refused.with_label_values(&[reason]);
        }
        let open = IntGauge::new("idauth_http_connections_open", "HTTP connections open now.").expect("valid metric");
        ConnectionMetrics { refused, open }
    }
}

impl ConnectionMetrics {
    /// Its series, for the registry that serves them.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![Box::new(self.refused.clone()), Box::new(self.open.clone())]
    }
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
