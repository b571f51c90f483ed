//! The daemon: configuration, client, poller, scheduler, store, metrics and server wired
//! together, with reload and readiness.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, join_all};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, ConfigError, Loaded};
use crate::metrics::Metrics;
use crate::model::{AuthorityState, Target};
use crate::poller::Poller;
use crate::scheduler::{Scheduler, SchedulerError};
use crate::server::{self, Routes, html_escape};
use crate::smileid::{self, RetryPolicy, Transport};
use crate::store::Store;
use crate::webconfig::{self, WebConfig};

/// The git revision this binary was built from.
pub const REVISION: &str = env!("IDAUTH_REVISION");

/// Why the daemon or a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The scheduler could not start.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
}

/// What the daemon is told on the command line.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// `--config.file`.
    pub config_file: PathBuf,
    /// `--web.listen-address`, overriding the file's `web.listen_address`.
    pub listen_address: Option<String>,
    /// `--web.config.file`: TLS and basic authentication.
    pub web_config_file: Option<PathBuf>,
    /// `--web.max-connections`.
    pub max_connections: usize,
}

/// The parts that a reload replaces.
struct Runtime {
    config: Config,
    poller: Arc<Poller>,
}

/// The running exporter.
pub struct App {
    config_path: Option<PathBuf>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    runtime: RwLock<Arc<Runtime>>,
    ready: AtomicBool,
    running: Mutex<()>,
    reloading: Mutex<()>,
    scheduler: Mutex<Option<Scheduler>>,
    /// Seconds after which the landing page reloads itself; 0 for never.
    landing_refresh: AtomicU64,
    /// The web configuration file, if any, and what it says now.
    web: RwLock<(Option<PathBuf>, Arc<WebConfig>)>,
    /// `--web.max-connections`.
    pub max_connections: AtomicU64,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("config_path", &self.config_path).finish_non_exhaustive()
    }
}

fn log_warnings(loaded: &Loaded) {
    for w in &loaded.warnings {
        tracing::warn!(file = %w.file, line = w.line, column = w.column, "{}", w.message);
    }
}

pub(crate) fn build_transport(config: &Config) -> Result<Transport, AppError> {
    Ok(Transport::new(config.poll.timeout, RetryPolicy::new(config.poll.retries))?)
}

fn build_poller(config: &Config, store: &Arc<Store>, metrics: &Arc<Metrics>) -> Result<Arc<Poller>, AppError> {
    let transport = build_transport(config)?;
    let api = smileid::client_for(&config.smile_id, transport);
    Ok(Arc::new(Poller::new(
        api,
        store.clone(),
        metrics.clone(),
        config.targets.clone(),
        config.poll.concurrency,
        config.poll.jitter,
    )))
}

impl App {
    /// An exporter for a loaded configuration; nothing runs until [`App::start`].
    /// Without a `config_path` (the demo) there is nothing to reload.
    pub fn new(config_path: Option<&Path>, loaded: Loaded) -> Result<Arc<App>, AppError> {
        log_warnings(&loaded);
        let config = loaded.config;
        let store = Arc::new(Store::new(&config.targets));
        let metrics = Arc::new(Metrics::new(REVISION));
        metrics.set_targets(&[], &config.targets);
        metrics.record_load(Utc::now());
        let poller = build_poller(&config, &store, &metrics)?;
        Ok(Arc::new(App {
            config_path: config_path.map(Path::to_path_buf),
            store,
            metrics,
            runtime: RwLock::new(Arc::new(Runtime { config, poller })),
            ready: AtomicBool::new(false),
            running: Mutex::new(()),
            reloading: Mutex::new(()),
            scheduler: Mutex::new(None),
            web: RwLock::new((None, Arc::new(WebConfig::default()))),
            landing_refresh: AtomicU64::new(0),
            max_connections: AtomicU64::new(server::DEFAULT_MAX_CONNECTIONS as u64),
        }))
    }

    /// Serves with TLS and basic authentication as `path` (a `--web.config.file`) says;
    /// a reload reads it again.
    pub fn use_web_config(&self, path: &Path) -> Result<(), AppError> {
        let web = WebConfig::load(path)?;
        tracing::info!(file = %path.display(), tls = web.tls().is_some(), "web configuration loaded");
        self.metrics.set_tls_certificate_expiry(web.certificate_expiry());
        *self.web.write().unwrap_or_else(|p| p.into_inner()) = (Some(path.to_path_buf()), Arc::new(web));
        Ok(())
    }

    /// Makes the landing page reload itself every `seconds` (for the demo).
    pub fn refresh_landing_page_every(&self, seconds: u64) {
        self.landing_refresh.store(seconds, Ordering::Relaxed);
    }

    fn web_config(&self) -> Arc<WebConfig> {
        self.web.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    fn runtime(&self) -> Arc<Runtime> {
        self.runtime.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.runtime().config.clone()
    }

    /// Runs one cycle now, unless one is already running: a tick that finds the previous
    /// cycle still going is skipped, with a warning, rather than doubling the load.
    pub async fn run_cycle(&self, spread: bool) -> bool {
        let Ok(_guard) = self.running.try_lock() else {
            tracing::warn!("the previous poll cycle is still running; skipping this one");
            return false;
        };
        let poller = self.runtime().poller.clone();
        poller.run_cycle(spread).await;
        self.ready.store(true, Ordering::Release);
        true
    }

    /// Reloads the configuration file (and the web configuration file); on failure the
    /// running configuration stays, the error is logged and counted.
    pub async fn reload(&self) -> Result<(), String> {
        let _guard = self.reloading.lock().await;
        let result = self.try_reload().await;
        self.metrics.record_reload(result.is_ok(), Utc::now());
        if let Err(e) = &result {
            tracing::error!(error = %e, "configuration reload failed; keeping the running configuration");
        }
        result
    }

    async fn try_reload(&self) -> Result<(), String> {
        let Some(path) = &self.config_path else {
            return Err("there is no configuration file to reload (demo mode)".to_owned());
        };
        let loaded = config::load(path).map_err(|e| e.to_string())?;
        log_warnings(&loaded);
        let web_path = self.web.read().unwrap_or_else(|p| p.into_inner()).0.clone();
        let web = web_path.as_deref().map(WebConfig::load).transpose().map_err(|e| e.to_string())?;
        let config = loaded.config;
        let poller = build_poller(&config, &self.store, &self.metrics).map_err(|e| e.to_string())?;
        if let Some(s) = self.scheduler.lock().await.as_mut() {
            s.reschedule(&config.poll.schedule).await.map_err(|e| e.to_string())?;
        }
        let old = self.runtime();
        if old.config.web.listen_address != config.web.listen_address {
            tracing::warn!("web.listen_address changed; it takes effect at the next restart");
        }
        self.store.set_targets(&config.targets);
        self.metrics.set_targets(&old.config.targets, &config.targets);
        let added: Vec<Target> = config.targets.iter().filter(|t| !old.config.targets.contains(t)).cloned().collect();
        *self.runtime.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Runtime { config, poller: poller.clone() });
        if let Some(web) = web {
            self.metrics.set_tls_certificate_expiry(web.certificate_expiry());
            self.web.write().unwrap_or_else(|p| p.into_inner()).1 = Arc::new(web);
        }
        tracing::info!(pairs = poller.targets().len(), added = added.len(), "configuration reloaded");
        // New pairs need not wait up to a whole period for their first data.
        if !added.is_empty() {
            tokio::spawn(async move {
                join_all(added.iter().map(|t| poller.poll_one(t))).await;
            });
        }
        Ok(())
    }

    /// Binds the listener, runs the first cycle at once, starts the schedule, handles
    /// SIGHUP, and serves until `shutdown` is cancelled.
    pub async fn start(
        self: &Arc<Self>,
        listen_address: &str,
        shutdown: CancellationToken,
    ) -> Result<(SocketAddr, JoinHandle<()>), AppError> {
        let bind_err = |source| AppError::Bind { address: listen_address.to_owned(), source };
        let listener = server::bind(listen_address).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;

        let first = self.clone();
        tokio::spawn(async move {
            first.run_cycle(false).await;
        });

        let ticker = Arc::downgrade(self);
        let task: crate::scheduler::Task = Arc::new(move || {
            let app = ticker.clone();
            async move {
                if let Some(app) = app.upgrade() {
                    app.run_cycle(true).await;
                }
            }
            .boxed()
        });
        let schedule = self.config().poll.schedule;
        let scheduler = Scheduler::start(&schedule, task).await?;
        *self.scheduler.lock().await = Some(scheduler);

        #[cfg(unix)]
        {
            let app = Arc::downgrade(self);
            let stop = shutdown.clone();
            if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            got = hup.recv() => if got.is_none() { break },
                        }
                        tracing::info!("SIGHUP received; reloading the configuration");
                        match app.upgrade() {
                            Some(app) => {
                                let _ = app.reload().await;
                            }
                            None => break,
                        }
                    }
                });
            }
        }

        tracing::info!(address = %local, version = env!("CARGO_PKG_VERSION"), revision = REVISION, "listening");
        let app = self.clone();
        let (web, tls) = (Arc::downgrade(self), Arc::downgrade(self));
        let current: Arc<dyn Fn() -> Arc<WebConfig> + Send + Sync> =
            Arc::new(move || web.upgrade().map(|a| a.web_config()).unwrap_or_default());
        let tls_source: server::TlsSource = Arc::new(move || tls.upgrade().and_then(|a| a.web_config().tls()));
        let handler = webconfig::protect(server::exporter(app.clone()), current);
        let handle = tokio::spawn(async move {
            let max_connections = app.max_connections.load(Ordering::Relaxed) as usize;
            let options =
                server::ServerOptions { max_connections, metrics: app.metrics.connections(), ..Default::default() };
            server::serve_with_options(listener, handler, tls_source, options, shutdown).await;
            if let Some(mut s) = app.scheduler.lock().await.take() {
                s.shutdown().await;
            }
        });
        Ok((local, handle))
    }

    fn max_data_age(&self) -> std::time::Duration {
        self.runtime().config.poll.max_data_age
    }
}

/// Loads the configuration and runs the daemon until `shutdown` is cancelled.
pub async fn run_daemon(opts: DaemonOptions, shutdown: CancellationToken) -> Result<(), AppError> {
    let loaded = config::load(&opts.config_file)?;
    let listen = match &opts.listen_address {
        Some(a) => config::normalize_listen_address(a).ok_or_else(|| AppError::Bind {
            address: a.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "expected host:port"),
        })?,
        None => loaded.config.web.listen_address.clone(),
    };
    let app = App::new(Some(&opts.config_file), loaded)?;
    app.max_connections.store(opts.max_connections as u64, Ordering::Relaxed);
    if let Some(path) = &opts.web_config_file {
        app.use_web_config(path)?;
    }
    let (_, handle) = app.start(&listen, shutdown).await?;
    let _ = handle.await;
    tracing::info!("stopped");
    Ok(())
}

impl Routes for App {
    fn metrics(&self) -> String {
        self.metrics.render(&self.store, Utc::now(), self.max_data_age())
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn status_json(&self) -> String {
        let now = Utc::now();
        let max_age = self.max_data_age();
        let targets: Vec<_> = self
            .store
            .snapshot()
            .into_iter()
            .map(|(t, s)| {
                let fresh = s.is_fresh(now, max_age);
                serde_json::json!({
                    "country": t.country,
                    "id_type": t.id_type,
                    "state": s.current_state(now, max_age),
                    "fresh": fresh,
                    "observation": s.observation,
                    "last_success": s.last_success,
                    "last_poll": s.last_poll,
                })
            })
            .collect();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "ready": self.is_ready(),
            "max_data_age_seconds": max_age.as_secs(),
            "last_cycle": self.store.last_cycle(),
            "targets": targets,
        })
        .to_string()
    }

    fn landing_status(&self) -> String {
        let now = Utc::now();
        let max_age = self.max_data_age();
        let snapshot = self.store.snapshot();
        // Counts by state first: how much is down is what a person opening this page is after.
        let mut counts = [0usize; 4];
        for (_, s) in &snapshot {
            counts[AuthorityState::ALL.iter().position(|a| *a == s.current_state(now, max_age)).unwrap_or(3)] += 1;
        }
        let mut html = String::from("<p class=\"summary\">");
        for (state, n) in AuthorityState::ALL.iter().zip(counts) {
            let _ = write!(html, "<span class=\"{state}\">{n} {state}</span> ");
        }
        html.push_str("</p>\n<table>\n<thead><tr><th>Country</th><th>ID type</th><th>State</th><th>10m</th><th>1h</th><th>Last checked</th><th>Last poll</th></tr></thead>\n<tbody>\n");
        let mut rows = html;
        for (t, s) in snapshot {
            let state = s.current_state(now, max_age);
            let fresh = s.is_fresh(now, max_age);
            let obs = s.observation.as_ref().filter(|_| fresh);
            let poll = match &s.last_poll {
                None => "not yet".to_owned(),
                Some(p) if p.success => format!("ok {}", ago(now, p.at)),
                Some(p) => format!("failed ({}) {}", p.reason.map_or("?", |r| r.as_str()), ago(now, p.at)),
            };
            let _ = writeln!(
                rows,
                "<tr><td>{}</td><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html_escape(t.country.as_str()),
                html_escape(t.id_type.as_str()),
                percent(obs.and_then(|o| o.rate_10m)),
                percent(obs.and_then(|o| o.rate_1h)),
                s.observation.as_ref().and_then(|o| o.last_checked).map_or("-".to_owned(), |at| ago(now, at)),
                html_escape(&poll),
            );
        }
        rows.push_str("</tbody>\n</table>\n");
        rows
    }

    fn landing_refresh(&self) -> Option<u64> {
        Some(self.landing_refresh.load(Ordering::Relaxed)).filter(|s| *s > 0)
    }

    fn reload(&self) -> BoxFuture<'_, Result<(), String>> {
        App::reload(self).boxed()
    }
}

/// `12m ago`, or `in 3s` for a clock ahead of ours.
pub fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let d = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 { format!("{} ago", config::fmt_duration(d)) } else { format!("in {}", config::fmt_duration(d)) }
}

fn percent(r: Option<f64>) -> String {
    r.map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}
