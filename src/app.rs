//! The daemon, wired: configuration, client, store, history, poller, scheduler,
//! discovery, metrics and web site built from the configuration and connected, with
//! reload and signal handling. Nothing here computes what is served: the store does, and
//! the web site renders it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use futures_util::FutureExt;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, ConfigError, Loaded};
use crate::discovery::{self, Discovery, DiscoveryMetrics};
use crate::history::{History, HistoryMetrics};
use crate::metrics::Metrics;
use crate::model::{Clock, SystemClock};
use crate::notify::Notifier;
use crate::poller::{PollSettings, Poller};
use crate::scheduler::{Scheduler, SchedulerError};
use crate::smileid;
use crate::store::Store;
use crate::web::auth::{self, WebConfig};
use crate::web::http::{self, ConnectionMetrics};
use crate::web::{self, Site};

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
    /// `--storage.path`: the directory of the history store.
    pub storage_path: PathBuf,
    /// `--storage.retention`: how long history is kept.
    pub storage_retention: std::time::Duration,
}

/// Why a reload failed; the running configuration stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Started without a configuration file (the demo).
    #[error("there is no configuration file to reload (demo mode)")]
    NoConfigFile,
    /// The configuration or web configuration file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The new schedule could not be installed.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
}

/// The running exporter.
pub struct App {
    config_path: Option<PathBuf>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    config: RwLock<Arc<Config>>,
    poller: Arc<Poller>,
    reloading: Mutex<()>,
    scheduler: Mutex<Option<Scheduler>>,
    /// What is served.
    site: Arc<Site>,
    /// Where every time comes from.
    clock: Arc<dyn Clock>,
    /// The history store's counters, for the store [`App::open_history`] opens.
    history_metrics: HistoryMetrics,
    /// The web server's connection counters.
    connections: ConnectionMetrics,
    /// The web configuration file, if any, and what it says now.
    web: RwLock<(Option<PathBuf>, Arc<WebConfig>)>,
    /// `--web.max-connections`.
    pub max_connections: AtomicU64,
    /// The pairs of the provider's catalogue (`discovery:`).
    discovery: Arc<Discovery>,
    /// Held while the watched pairs are recomputed and handed to the poller.
    watching: std::sync::Mutex<()>,
    /// A history store to replay once serving ([`App::replay_after_start`]).
    pending_history: std::sync::Mutex<Option<History>>,
    /// True once the history is in place: cycles wait for it, so that the first results
    /// follow the replayed ones.
    replayed: tokio::sync::watch::Sender<bool>,
    /// The webhooks told of every change of state.
    notifier: Arc<Notifier>,
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

fn build_client(config: &Config) -> Result<Arc<dyn smileid::IdStatusApi>, reqwest::Error> {
    Ok(smileid::client_for(&config.smile_id, smileid::build_transport(&config.poll)?))
}

fn build_catalogue(config: &Config) -> Result<Arc<dyn smileid::catalogue::CatalogueApi>, reqwest::Error> {
    Ok(smileid::catalogue::catalogue_for(&config.smile_id, smileid::build_transport(&config.poll)?))
}

impl App {
    /// An exporter for a loaded configuration; nothing runs until [`App::start`].
    /// Without a `config_path` (the demo) there is nothing to reload.
    pub fn new(config_path: Option<&Path>, loaded: Loaded) -> Result<Arc<App>, AppError> {
        App::with_clock(config_path, loaded, Arc::new(SystemClock))
    }

    /// [`App::new`] telling every time (polls, staleness, pages) by `clock`.
    pub fn with_clock(config_path: Option<&Path>, loaded: Loaded, clock: Arc<dyn Clock>) -> Result<Arc<App>, AppError> {
        log_warnings(&loaded);
        let config = loaded.config;
        let store = Arc::new(Store::new(&config.targets));
        store.set_max_age(config.poll.max_data_age);
        let metrics = Arc::new(Metrics::new(REVISION, clock.now()));
        let (history_metrics, connections) = (HistoryMetrics::default(), ConnectionMetrics::default());
        metrics.register(store.collectors());
        metrics.register(history_metrics.collectors());
        metrics.register(connections.collectors());
        let discovery_metrics = DiscoveryMetrics::default();
        if config.discovery.enabled {
            metrics.register(discovery_metrics.collectors());
        }
        let discovery = Discovery::with_clock(
            build_catalogue(&config)?,
            config.discovery.clone(),
            discovery_metrics,
            clock.clone(),
        );
        metrics.record_load(clock.now());
        let notifier = Notifier::new(clock.clone())?;
        notifier.configure(&config.notify.webhooks);
        metrics.register(notifier.collectors());
        let poller = Poller::with_clock(
            build_client(&config)?,
            store.clone(),
            metrics.clone(),
            PollSettings::from_config(&config.poll),
            clock.clone(),
        );
        Ok(Arc::new_cyclic(|me: &std::sync::Weak<App>| {
            let me = me.clone();
            let reload: web::Reloader = Arc::new(move || {
                let app = me.upgrade();
                async move {
                    match app {
                        Some(app) => app.reload().await.map_err(|e| e.to_string()),
                        None => Err("the exporter is stopping".to_owned()),
                    }
                }
                .boxed()
            });
            App {
                config_path: config_path.map(Path::to_path_buf),
                site: Site::new(store.clone(), metrics.clone(), clock.clone(), reload),
                store,
                metrics,
                config: RwLock::new(Arc::new(config)),
                poller,
                reloading: Mutex::new(()),
                scheduler: Mutex::new(None),
                clock,
                history_metrics,
                connections,
                web: RwLock::new((None, Arc::new(WebConfig::default()))),
                max_connections: AtomicU64::new(http::DEFAULT_MAX_CONNECTIONS as u64),
                discovery,
                watching: std::sync::Mutex::new(()),
                pending_history: std::sync::Mutex::new(None),
                replayed: tokio::sync::watch::Sender::new(true),
                notifier,
            }
        }))
    }

    /// The store every reader takes its views from.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// What is served.
    pub fn site(&self) -> &Arc<Site> {
        &self.site
    }

    /// The webhooks and their outboxes.
    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    /// The pairs watched because the provider's catalogue lists them.
    pub fn discovered(&self) -> Vec<crate::model::Target> {
        self.discovery.found()
    }

    /// Reads the provider's catalogue now and applies it (as the refresh loop does).
    pub async fn refresh_discovery(&self) -> Result<discovery::Refreshed, smileid::catalogue::CatalogueError> {
        let result = self.discovery.refresh().await;
        self.apply_discovered();
        result
    }

    /// Hands the explicit and discovered pairs to the poller; new ones are polled at once,
    /// through its permits and no-overlap guard like any other poll.
    fn apply_discovered(&self) {
        let added = {
            let _guard = self.watching.lock().unwrap_or_else(|p| p.into_inner());
            let targets = discovery::watched(&self.current().targets, &self.discovery.found());
            if targets == self.poller.targets() {
                return;
            }
            let added = self.poller.set_targets(targets);
            tracing::info!(
                pairs = self.poller.targets().len(),
                added = added.len(),
                "watched pairs changed by discovery"
            );
            added
        };
        self.poller.poll_now(&added);
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

    /// Keeps history in `history` (before [`App::start`]; otherwise in memory), and
    /// replays each pair's state, runs and last day from it.
    pub fn use_history(&self, history: History) {
        self.store.attach_history(Arc::new(history), self.clock.now());
    }

    /// Keeps history in `history`, replayed by [`App::start`] once the listener serves:
    /// health answers during a long replay, readiness and the first cycle wait for it.
    pub fn replay_after_start(&self, history: History) {
        *self.pending_history.lock().unwrap_or_else(|p| p.into_inner()) = Some(history);
        self.replayed.send_replace(false);
    }

    /// A history store counted in this exporter's metrics: `dir` on disk, or memory only.
    pub fn open_history(&self, dir: Option<&Path>, retention: std::time::Duration) -> History {
        match dir {
            Some(dir) => History::open(dir, retention, self.history_metrics.clone()),
            None => History::in_memory(retention, self.history_metrics.clone()),
        }
    }

    /// Makes the pages reload themselves every `seconds` (for the demo).
    pub fn refresh_landing_page_every(&self, seconds: u64) {
        self.site.refresh_every(seconds);
    }

    fn web_config(&self) -> Arc<WebConfig> {
        self.web.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    fn current(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        (*self.current()).clone()
    }

    /// Runs one cycle now and waits for its polls. Pairs whose previous poll is still
    /// running are skipped, with a warning, rather than doubling the load; returns whether
    /// any pair was polled.
    pub async fn run_cycle(&self, spread: bool) -> bool {
        let _ = self.replayed.subscribe().wait_for(|done| *done).await;
        let record = self.poller.run_cycle(spread).await;
        record.pairs > 0 || self.poller.targets().is_empty()
    }

    /// The next time the schedule fires, once started.
    pub async fn next_tick(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.scheduler.lock().await.as_mut()?.next_tick().await
    }

    /// Reloads the configuration file (and the web configuration file); on failure the
    /// running configuration stays, the error is logged and counted.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let _guard = self.reloading.lock().await;
        let result = self.try_reload().await;
        self.metrics.record_reload(result.is_ok(), self.clock.now());
        if let Err(e) = &result {
            tracing::error!(error = %e, "configuration reload failed; keeping the running configuration");
        }
        result
    }

    async fn try_reload(&self) -> Result<(), ReloadError> {
        let Some(path) = &self.config_path else {
            return Err(ReloadError::NoConfigFile);
        };
        let loaded = config::load(path)?;
        log_warnings(&loaded);
        let web_path = self.web.read().unwrap_or_else(|p| p.into_inner()).0.clone();
        let web = web_path.as_deref().map(WebConfig::load).transpose()?;
        let config = loaded.config;
        let api = build_client(&config)?;
        if let Some(s) = self.scheduler.lock().await.as_mut() {
            s.reschedule(&config.poll.schedule).await?;
        }
        let old = self.current();
        if old.web.listen_address != config.web.listen_address {
            tracing::warn!("web.listen_address changed; it takes effect at the next restart");
        }
        if config.discovery.enabled {
            self.metrics.register(self.discovery.metrics().collectors());
        }
        let guard = self.watching.lock().unwrap_or_else(|p| p.into_inner());
        // The new filters apply at once to the catalogue in memory; the loop reads it again.
        self.discovery.reconfigure(build_catalogue(&config)?, config.discovery.clone());
        let targets = discovery::watched(&config.targets, &self.discovery.found());
        self.store.set_max_age(config.poll.max_data_age);
        self.notifier.configure(&config.notify.webhooks);
        let added = self.poller.reconfigure(api, targets, PollSettings::from_config(&config.poll));
        let pairs = self.poller.targets().len();
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        drop(guard);
        if let Some(web) = web {
            self.metrics.set_tls_certificate_expiry(web.certificate_expiry());
            self.web.write().unwrap_or_else(|p| p.into_inner()).1 = Arc::new(web);
        }
        tracing::info!(pairs, added = added.len(), "configuration reloaded");
        // New pairs need not wait up to a whole period for their first data; they go
        // through the poller's permits and no-overlap guard like any other poll.
        self.poller.poll_now(&added);
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
        let listener = http::bind(listen_address).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;

        let pending = self.pending_history.lock().unwrap_or_else(|p| p.into_inner()).take();
        if pending.is_none() && self.store.history().is_none() {
            self.use_history(self.open_history(None, crate::history::DEFAULT_RETENTION));
        }
        let first = self.clone();
        let notify_stop = shutdown.clone();
        self.poller.spawn(async move {
            if let Some(history) = pending {
                let (store, now) = (first.store.clone(), first.clock.now());
                // On the history's own writer thread (after what it has queued): a thread
                // more, even one that ends, costs memory that stays after it.
                let history = Arc::new(history);
                let (done, replayed) = tokio::sync::oneshot::channel();
                let job: crate::history::Job = Box::new({
                    let history = history.clone();
                    move || {
                        store.attach_history(history, now);
                        let _ = done.send(());
                    }
                });
                if let Err(job) = history.run_on_writer(job) {
                    job();
                }
                drop(history);
                let _ = replayed.await;
                first.replayed.send_replace(true);
            }
            // The outbox is taken up once the history is in place, before the first poll can
            // add to it.
            if let Some(history) = first.store.history().cloned() {
                first.notifier.start(history, notify_stop);
            }
            first.run_cycle(false).await;
        });

        // Discovery reads the catalogue at once and then on its own timer; each change of
        // what it found is handed to the poller.
        // Subscribed before the first read starts: a read that ends first must not go unseen.
        let mut found = self.discovery.subscribe();
        self.poller.spawn(self.discovery.clone().run(shutdown.clone()));
        let watcher = Arc::downgrade(self);
        let stop = shutdown.clone();
        self.poller.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    changed = found.changed() => if changed.is_err() { break },
                }
                match watcher.upgrade() {
                    Some(app) => app.apply_discovered(),
                    None => break,
                }
            }
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
        let scheduler = Scheduler::start(&schedule, task, self.clock.clone()).await?;
        *self.scheduler.lock().await = Some(scheduler);

        #[cfg(unix)]
        {
            let app = Arc::downgrade(self);
            let stop = shutdown.clone();
            if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                self.poller.spawn(async move {
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
        let tls_source: http::TlsSource = Arc::new(move || tls.upgrade().and_then(|a| a.web_config().tls()));
        let handler = auth::protect(web::handler(self.site.clone()), current);
        let handle = tokio::spawn(async move {
            let max_connections = app.max_connections.load(Ordering::Relaxed) as usize;
            let options =
                http::ServerOptions { max_connections, metrics: app.connections.clone(), ..Default::default() };
            http::serve_with_options(listener, handler, tls_source, options, shutdown).await;
            if let Some(mut s) = app.scheduler.lock().await.take() {
                s.shutdown().await;
            }
            // Polls in flight are cancelled, not awaited to their end.
            app.poller.shutdown().await;
            if let Some(h) = app.store.history().cloned() {
                let _ = tokio::task::spawn_blocking(move || h.flush(std::time::Duration::from_secs(5))).await;
            }
        });
        Ok((local, handle))
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
    app.replay_after_start(app.open_history(Some(&opts.storage_path), opts.storage_retention));
    let (_, handle) = app.start(&listen, shutdown).await?;
    let _ = handle.await;
    tracing::info!("stopped");
    Ok(())
}
