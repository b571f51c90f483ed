//! Everything the exporter serves over HTTP: [`Site`] routes `/metrics`, the pages, the
//! JSON API, health, readiness and reload, reading only the [`Store`] (and the history it
//! holds) and the [`Metrics`]; it never calls the provider.
//!
//! - [`http`]: generic serving (binding, TLS, connection cap, gzip, streaming), shared
//!   with the simulator and importing nothing else of this crate;
//! - [`auth`]: the web configuration file (TLS, basic authentication);
//! - [`pages`]: the status page and the plain landing page;
//! - [`api`]: `/api/v1/status` and `/api/v1/history`;
//! - [`feed`]: the changes of state, `/api/v1/events` (JSON) and `/feed.atom` (Atom);
//! - [`badge`]: `/badge/{country}/{id_type}.svg`, a pair's state as a badge.

pub mod api;
pub mod auth;
pub mod badge;
pub mod feed;
pub mod http;
pub mod pages;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::BoxFuture;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use self::http::{Body, Handler, compressible, not_allowed, text};
use self::pages::{CELLS, CONTENT_SECURITY_POLICY, ICON, SCRIPT, STYLE};
use crate::metrics::{self, Exposition, Metrics};
use crate::model::Clock;
use crate::store::Store;

/// Reloads the configuration; the daemon provides it.
pub type Reloader = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What the exporter serves, over the store, the metrics and the clock.
pub struct Site {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    reload: Reloader,
    /// Seconds after which the pages refresh themselves; 0 for the default.
    refresh: AtomicU64,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site").finish_non_exhaustive()
    }
}

impl http::Chunks for Exposition {
    fn write_next(&mut self, out: &mut String) -> bool {
        Exposition::write_next(self, out)
    }
}

/// Pages whose cost grows with the pairs and their history (the status page, its fragment,
/// the status and history APIs: tens of milliseconds at 1,000 pairs) are built on the
/// blocking pool, one at a time, so that a flood of them never holds up a scrape on the
/// runtime's one thread.
static PAGES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

impl Site {
    /// A site over `store` and `metrics`, telling the time by `clock`.
    pub fn new(store: Arc<Store>, metrics: Arc<Metrics>, clock: Arc<dyn Clock>, reload: Reloader) -> Arc<Site> {
        Arc::new(Site { store, metrics, clock, reload, refresh: AtomicU64::new(0) })
    }

    /// Makes the pages refresh themselves every `seconds` (the demo: faster than the
    /// default 30 s of the status page; the plain landing page only refreshes when asked).
    pub fn refresh_every(&self, seconds: u64) {
        self.refresh.store(seconds, Ordering::Relaxed);
    }

    fn refresh(&self) -> Option<u64> {
        Some(self.refresh.load(Ordering::Relaxed)).filter(|s| *s > 0)
    }

    /// The exposition of every metric now.
    pub fn metrics(&self) -> Exposition {
        self.metrics.exposition(&self.store, self.clock.now())
    }

    /// `/api/v1/status`.
    pub fn status_json(&self) -> String {
        let pairs = self.store.now(self.clock.now());
        api::status_json(&pairs, self.store.last_cycle().as_ref(), self.store.is_ready(), self.store.max_age())
    }

    /// The live part of the status page, when there is a history (HTML).
    pub fn status_fragment(&self) -> Option<String> {
        self.store.history()?;
        let now = self.clock.now();
        let ranges: Vec<_> = pages::UPTIME_RANGES.iter().map(|(_, r)| *r).collect();
        let mut pairs = self.store.histories(now, CELLS, &ranges);
        pages::worst_first(&mut pairs);
        Some(pages::status_fragment(&pairs, now))
    }

    /// The status page, when there is a history (HTML).
    pub fn status_page(&self) -> Option<String> {
        Some(pages::page(&self.status_fragment()?, self.refresh().unwrap_or(30)))
    }

    /// `/api/v1/history`.
    fn history(&self, query: &str, headers: &hyper::HeaderMap) -> Response<Body> {
        let plain = "text/plain; charset=utf-8";
        let Some(history) = self.store.history().cloned() else {
            return text(StatusCode::SERVICE_UNAVAILABLE, plain, "history is not started yet\n");
        };
        let now = self.clock.now();
        let q = match api::HistoryQuery::parse(query, now, history.retention()) {
            Ok(q) => q,
            Err(e) => return text(StatusCode::BAD_REQUEST, plain, format!("{e}\n")),
        };
        match (q.format, &q.target) {
            (Some(format), target) => {
                let pairs = match target {
                    Some(t) if self.store.pair_now(t, now).is_none() => {
                        return text(StatusCode::NOT_FOUND, plain, format!("{t} is not a watched pair\n"));
                    }
                    Some(t) => vec![t.clone()],
                    None => self.store.targets(),
                };
                let export = api::Export::new(self.store.clone(), history, pairs, &q);
                http::streamed(format.content_type(), export, headers)
            }
            (None, _) => match api::history_json(&self.store, &history, &q, now) {
                Ok(json) => compressible("application/json", json, headers),
                Err(e @ api::HistoryQueryError::NotWatched(_)) => text(StatusCode::NOT_FOUND, plain, format!("{e}\n")),
                Err(e) => text(StatusCode::BAD_REQUEST, plain, format!("{e}\n")),
            },
        }
    }

    /// The plain landing page (no history).
    fn landing_page(&self) -> String {
        let now = self.clock.now();
        pages::landing_page(&pages::landing_status(&self.store.now(now), now), self.refresh())
    }
}

/// The exporter's endpoints over `site`.
pub fn handler(site: Arc<Site>) -> Handler {
    Arc::new(move |req| {
        let site = site.clone();
        Box::pin(async move { handle(&site, req).await })
    })
}

async fn off_thread<T: Send + 'static>(site: &Arc<Site>, build: impl FnOnce(&Site) -> T + Send + 'static) -> T {
    let _turn = PAGES.acquire().await;
    let site = site.clone();
    match tokio::task::spawn_blocking(move || build(&site)).await {
        Ok(page) => page,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn handle(site: &Arc<Site>, req: Request<Incoming>) -> Response<Body> {
    let plain = "text/plain; charset=utf-8";
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut resp = match req.uri().path() {
        "/metrics" if read => http::streamed(metrics::CONTENT_TYPE, site.metrics(), req.headers()),
        "/-/healthy" if read => text(StatusCode::OK, plain, "Healthy.\n"),
        "/-/ready" if read => {
            if site.store.is_ready() {
                text(StatusCode::OK, plain, "Ready.\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, plain, "Not ready: the first poll cycle has not finished.\n")
            }
        }
        "/-/reload" if matches!(*req.method(), Method::POST | Method::PUT) => match (site.reload)().await {
            Ok(()) => text(StatusCode::OK, plain, "Reloaded.\n"),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, plain, format!("failed to reload config: {e}\n")),
        },
        "/api/v1/status" if read => {
            compressible("application/json", off_thread(site, |s| s.status_json()).await, req.headers())
        }
        "/" if read && let Some(page) = off_thread(site, |s| s.status_page()).await => {
            status_page_response(page, req.headers())
        }
        "/ui/status" if read => match off_thread(site, |s| s.status_fragment()).await {
            Some(html) => compressible("text/html; charset=utf-8", html, req.headers()),
            None => text(StatusCode::NOT_FOUND, plain, "Not Found\n"),
        },
        "/ui/status.js" if read => text(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT),
        "/ui/icon.svg" if read => text(StatusCode::OK, "image/svg+xml", ICON),
        "/ui/status.css" if read => text(StatusCode::OK, "text/css; charset=utf-8", STYLE),
        "/api/v1/history" if read => {
            let query = req.uri().query().unwrap_or("").to_owned();
            let headers = req.headers().clone();
            off_thread(site, move |s| s.history(&query, &headers)).await
        }
        "/api/v1/events" if read => {
            let query = req.uri().query().unwrap_or("").to_owned();
            let headers = req.headers().clone();
            off_thread(site, move |s| feed::events(s, &query, &headers)).await
        }
        "/feed.atom" if read => {
            let headers = req.headers().clone();
            off_thread(site, move |s| feed::feed(s, &headers)).await
        }
        path if read && path.starts_with(badge::PREFIX) => badge::response(site, path),
        "/" if read => text(StatusCode::OK, "text/html; charset=utf-8", site.landing_page()),
        "/metrics" | "/-/healthy" | "/-/ready" | "/api/v1/status" | "/" | "/api/v1/history" | "/ui/status"
        | "/ui/status.js" | "/ui/status.css" | "/ui/icon.svg" | "/api/v1/events" | "/feed.atom" => {
            not_allowed("GET, HEAD")
        }
        path if path.starts_with(badge::PREFIX) => not_allowed("GET, HEAD"),
        "/-/reload" => not_allowed("POST, PUT"),
        _ => text(StatusCode::NOT_FOUND, plain, "Not Found\n"),
    };
    // Nothing is cached but what says how long it may be (the badges).
    resp.headers_mut().entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// The status page, under a Content-Security-Policy that allows same-origin files only.
fn status_page_response(page: String, request: &hyper::HeaderMap) -> Response<Body> {
    let mut resp = compressible("text/html; charset=utf-8", page, request);
    let headers = resp.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// The runtime has one thread: a status page being built (slowly, as at thousands of
    /// pairs) must not hold up a scrape. The test holds the page builder (the one turn of
    /// [`PAGES`]) on the blocking pool; without the pool, this test's own requests could not
    /// even run while the page is built, and it would time out.
    #[tokio::test]
    async fn a_scrape_is_answered_while_a_status_page_is_being_built() {
        let store = Arc::new(Store::new(&[]));
        let clock: Arc<dyn Clock> = Arc::new(crate::model::ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap()));
        let metrics = Arc::new(Metrics::new("test", clock.now()));
        let site = Site::new(store, metrics, clock, Arc::new(|| Box::pin(async { Ok(()) })));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(http::serve(listener, handler(site.clone()), shutdown.clone()));
        crate::tls::install_crypto_provider();
        // A page build that takes as long as the test wants.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Mutex::new(wait);
        let builder = site.clone();
        let building = tokio::spawn(async move {
            off_thread(&builder, move |_| {
                // Bounded, so that a page built on the runtime's thread fails the test rather
                // than hanging it.
                let _ = wait.lock().unwrap().recv_timeout(Duration::from_secs(10));
                "<html>page</html>".to_owned()
            })
            .await
        });
        while PAGES.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let http = reqwest::Client::new();
        let page = tokio::spawn({
            let http = http.clone();
            async move { http.get(format!("http://{addr}/api/v1/status")).send().await.unwrap().text().await.unwrap() }
        });
        let scrape = tokio::time::timeout(Duration::from_secs(10), async {
            http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap()
        })
        .await
        .expect("a scrape is answered while a page is being built");
        assert!(scrape.contains("idauth_targets 0\n"), "{scrape}");
        assert!(!building.is_finished() && !page.is_finished(), "the page was still being built during the scrape");
        release.send(()).unwrap();
        assert_eq!(building.await.unwrap(), "<html>page</html>");
        assert!(page.await.unwrap().contains("\"targets\":[]"));
        shutdown.cancel();
    }
}
