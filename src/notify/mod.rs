//! Tells the systems waiting on an authority of every change of its state: webhooks signed
//! as the Standard Webhooks specification says, never lost.
//!
//! The store records each change in the history ([`Change`], written with the poll result
//! that showed it). The [`Notifier`] hands each new change to the webhooks that want it and
//! keeps, per webhook, an outbox of deliveries: in memory to work from, and in the history
//! store ([`OutboxOp`]) so that a restart or a crash loses none. A delivery leaves the
//! outbox when a 2xx comes back, or when it has been retried for [`RETRY_FOR`]. Each webhook
//! has its own task, one request at a time, so a slow or dead receiver delays nothing else:
//! not the polls, not the scrapes, not the other webhooks.

pub mod sign;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::WebhookConfig;
use crate::history::events::{Change, Query};
use crate::history::{History, OutboxOp, OutboxRow};
use crate::model::{Clock, timestamp};

/// The waits after each failed attempt (the Standard Webhooks reference schedule): the
/// last one repeats until [`RETRY_FOR`] has passed, which with these is after 27.6 hours.
pub const SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// A delivery is given up once it has failed this long after its change.
pub const RETRY_FOR: TimeDelta = TimeDelta::hours(24);
/// Deliveries one webhook may have waiting; beyond this the oldest are dropped (counted).
/// A change per pair per 10-minute window is the most there can be: 10,000 is an hour of
/// 1,000 pairs all flapping, or a day of 70.
pub const PENDING_MAX: usize = 10_000;
/// The most of a receiver's answer that is read (and thrown away).
const BODY_CAP: usize = 4096;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A delivery waiting in a webhook's outbox.
#[derive(Clone, Debug)]
struct Pending {
    change: Arc<Change>,
    attempts: u32,
    next_at: DateTime<Utc>,
}

/// One configured webhook and its outbox.
struct Hook {
    config: Arc<WebhookConfig>,
    pending: BTreeMap<u64, Pending>,
    wake: Arc<Notify>,
    stop: CancellationToken,
}

impl Hook {
    fn new(config: WebhookConfig) -> Hook {
        Hook {
            config: Arc::new(config),
            pending: BTreeMap::new(),
            wake: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
        }
    }
}

#[derive(Default)]
struct Inner {
    hooks: BTreeMap<String, Hook>,
    /// Every change up to this `seq` has been handed to the webhooks.
    routed: u64,
}

/// How one attempt ended.
#[derive(Debug)]
enum Outcome {
    Delivered(u16),
    Failed { result: &'static str, why: String, retry_after: Option<Duration> },
}

/// The webhooks and their outboxes.
pub struct Notifier {
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
    metrics: NotifyMetrics,
    history: std::sync::OnceLock<Arc<History>>,
    started: AtomicBool,
    stop: CancellationToken,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier telling the time by `clock`, with no webhook yet.
    pub fn new(clock: Arc<dyn Clock>) -> Result<Arc<Notifier>, reqwest::Error> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(crate::smileid::USER_AGENT)
            // A redirect is an answer, not a delivery: following it could hand the signed
            // event to a host nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Arc::new_cyclic(|me: &Weak<Notifier>| Notifier {
            client,
            clock,
            inner: Mutex::new(Inner::default()),
            metrics: NotifyMetrics::new(me.clone()),
            history: std::sync::OnceLock::new(),
            started: AtomicBool::new(false),
            stop: CancellationToken::new(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its series, for the registry that serves them.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        self.metrics.collectors()
    }

    /// Sets the webhooks (at start and at every reload): a new one gets the changes from
    /// now on; a removed one's waiting deliveries are dropped, counted and logged; one kept
    /// keeps its outbox and takes its new settings at its next attempt.
    pub fn configure(self: &Arc<Self>, webhooks: &[WebhookConfig]) {
        let mut ops = Vec::new();
        let mut spawn = Vec::new();
        {
            let mut inner = self.lock();
            let gone: Vec<String> =
                inner.hooks.keys().filter(|n| !webhooks.iter().any(|w| &w.name == *n)).cloned().collect();
            for name in gone {
                let Some(hook) = inner.hooks.remove(&name) else { continue };
                hook.stop.cancel();
                if !hook.pending.is_empty() {
                    tracing::warn!(webhook = %name, dropped = hook.pending.len(),
                        "webhook removed from the configuration; its waiting deliveries are dropped");
                    self.metrics.dropped.with_label_values(&[&name, "removed"]).inc_by(hook.pending.len() as u64);
                }
                ops.extend(hook.pending.keys().map(|seq| OutboxOp::Delete { webhook: name.clone(), seq: *seq }));
                self.metrics.forget(&name);
            }
            for w in webhooks {
                match inner.hooks.get_mut(&w.name) {
                    Some(hook) => hook.config = Arc::new(w.clone()),
                    None => {
                        self.metrics.init(&w.name);
                        inner.hooks.insert(w.name.clone(), Hook::new(w.clone()));
                        spawn.push(w.name.clone());
                    }
                }
            }
        }
        if let Some(h) = self.history.get() {
            h.write_outbox(ops);
        }
        if self.started.load(Ordering::Acquire) {
            for name in spawn {
                self.spawn_worker(name);
            }
        }
    }

    /// Takes up what the outbox held and starts delivering: a task that hands each new
    /// change of `history` to the webhooks, and one per webhook; all end with `shutdown`.
    pub fn start(self: &Arc<Self>, history: Arc<History>, shutdown: CancellationToken) {
        if self.history.set(history.clone()).is_err() {
            return;
        }
        let stop = self.stop.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            stop.cancel();
        });
        let outbox = history.outbox().unwrap_or_else(|e| {
            tracing::error!(error = %e, "webhooks: cannot read the outbox; starting from an empty one");
            Default::default()
        });
        let latest = *history.subscribe_changes().borrow();
        let mut ops = Vec::new();
        {
            let mut inner = self.lock();
            // A store written before webhooks existed has no cursor: the changes it holds are
            // old news, not to be sent now.
            inner.routed = if outbox.routed == 0 && outbox.rows.is_empty() { latest } else { outbox.routed };
            let mut taken = 0;
            for row in outbox.rows {
                let change = history.change(row.seq);
                match (inner.hooks.get_mut(&row.webhook), change) {
                    (Some(hook), Some(change)) => {
                        let p = Pending { change: Arc::new(change), attempts: row.attempts, next_at: row.next_at };
                        hook.pending.insert(row.seq, p);
                        taken += 1;
                    }
                    (None, _) => {
                        tracing::warn!(webhook = %row.webhook, seq = row.seq,
                            "webhooks: a waiting delivery for a webhook no longer configured is dropped");
                        self.metrics.dropped.with_label_values(&[&row.webhook, "removed"]).inc();
                        ops.push(OutboxOp::Delete { webhook: row.webhook, seq: row.seq });
                    }
                    (Some(_), None) => {
                        tracing::warn!(webhook = %row.webhook, seq = row.seq,
                            "webhooks: a waiting delivery's change is no longer stored; dropped");
                        ops.push(OutboxOp::Delete { webhook: row.webhook, seq: row.seq });
                    }
                }
            }
            if taken > 0 {
                tracing::info!(deliveries = taken, "webhooks: deliveries waiting from before the restart taken up");
            }
        }
        history.write_outbox(ops);
        self.started.store(true, Ordering::Release);
        let names: Vec<String> = self.lock().hooks.keys().cloned().collect();
        for name in names {
            self.spawn_worker(name);
        }
        let me = Arc::downgrade(self);
        let mut changed = history.subscribe_changes();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            loop {
                match me.upgrade() {
                    Some(n) => n.route(),
                    None => break,
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    r = changed.changed() => if r.is_err() { break },
                }
            }
        });
    }

    /// Hands every change after the cursor to the webhooks that want it.
    fn route(&self) {
        let Some(history) = self.history.get() else { return };
        let now = self.clock.now();
        let mut ops = Vec::new();
        let mut woken = Vec::new();
        let mut inner = self.lock();
        loop {
            let page = match history.changes(Query { after: Some(inner.routed), before: None, limit: 512 }) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "webhooks: cannot read the new changes; trying again at the next one");
                    break;
                }
            };
            for change in page.changes.iter().rev() {
                inner.routed = inner.routed.max(change.seq);
                // A change older than the retries last (a store that was down, a restart
                // after a long stop) is not news any more.
                if now - change.detected > RETRY_FOR {
                    continue;
                }
                let change = Arc::new(change.clone());
                for (name, hook) in inner.hooks.iter_mut() {
                    if !hook.config.wants(&change.target, change.to) {
                        continue;
                    }
                    hook.pending.insert(change.seq, Pending { change: change.clone(), attempts: 0, next_at: now });
                    ops.push(OutboxOp::Put(OutboxRow {
                        webhook: name.clone(),
                        seq: change.seq,
                        attempts: 0,
                        next_at: now,
                    }));
                    while hook.pending.len() > PENDING_MAX {
                        if let Some((seq, _)) = hook.pending.pop_first() {
                            self.metrics.dropped.with_label_values(&[name, "overflow"]).inc();
                            tracing::error!(webhook = %name, seq, max = PENDING_MAX,
                                "webhooks: the outbox is full; the oldest waiting delivery is dropped");
                            ops.push(OutboxOp::Delete { webhook: name.clone(), seq });
                        }
                    }
                    woken.push(hook.wake.clone());
                }
            }
            if !page.more {
                break;
            }
        }
        ops.push(OutboxOp::Routed(inner.routed));
        drop(inner);
        history.write_outbox(ops);
        for w in woken {
            w.notify_one();
        }
    }

    fn spawn_worker(self: &Arc<Self>, name: String) {
        let me = Arc::downgrade(self);
        let stop = self.stop.clone();
        tokio::spawn(async move { worker(me, name, stop).await });
    }

    /// What waits for `webhook`: how many deliveries, and the detection time of the oldest.
    fn waiting(&self) -> Vec<(String, usize, Option<DateTime<Utc>>)> {
        let inner = self.lock();
        inner
            .hooks
            .iter()
            .map(|(n, h)| (n.clone(), h.pending.len(), h.pending.values().map(|p| p.change.detected).min()))
            .collect()
    }

    /// One attempt to deliver `change` to `config`.
    async fn attempt(&self, config: &WebhookConfig, change: &Change) -> Outcome {
        let body = sign::body(change);
        let ts = self.clock.now().timestamp();
        let signature = sign::signature(&config.secret, &change.id, ts, &body);
        let request = self
            .client
            .post(config.url.clone())
            .timeout(config.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &change.id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body);
        match request.send().await {
            Ok(mut response) => {
                let status = response.status();
                let retry_after = crate::smileid::parse_retry_after(response.headers());
                // Read a little, so the connection can be reused, and never more.
                let mut read = 0;
                while read < BODY_CAP {
                    match response.chunk().await {
                        Ok(Some(chunk)) => read += chunk.len(),
                        _ => break,
                    }
                }
                if status.is_success() {
                    Outcome::Delivered(status.as_u16())
                } else {
                    Outcome::Failed { result: "rejected", why: format!("answered {status}"), retry_after }
                }
            }
            Err(e) => {
                let result = if e.is_timeout() { "timeout" } else { "unreachable" };
                // The URL may carry a token in its path or query: never in a log line.
                let e = e.without_url();
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    why = format!("{why}: {s}");
                    source = s.source();
                }
                Outcome::Failed { result, why, retry_after: None }
            }
        }
    }

    /// Records how an attempt at `seq` for `name` ended.
    fn settle(&self, name: &str, seq: u64, outcome: Outcome) {
        let now = self.clock.now();
        let mut inner = self.lock();
        let Some(hook) = inner.hooks.get_mut(name) else { return };
        let Some(p) = hook.pending.get_mut(&seq) else { return };
        p.attempts += 1;
        let attempts = p.attempts;
        let op = match outcome {
            Outcome::Delivered(status) => {
                self.metrics.deliveries.with_label_values(&[name, "success"]).inc();
                tracing::info!(webhook = %name, id = %p.change.id, pair = %p.change.target, to = p.change.to.as_str(),
                    status, attempts, "webhook delivered");
                hook.pending.remove(&seq);
                OutboxOp::Delete { webhook: name.to_owned(), seq }
            }
            Outcome::Failed { result, why, retry_after } => {
                self.metrics.deliveries.with_label_values(&[name, result]).inc();
                if now - p.change.detected >= RETRY_FOR {
                    self.metrics.dropped.with_label_values(&[name, "expired"]).inc();
                    tracing::error!(webhook = %name, id = %p.change.id, pair = %p.change.target, attempts, error = %why,
                        "webhook delivery given up after retrying for 24 hours; the change is still in /api/v1/events");
                    hook.pending.remove(&seq);
                    OutboxOp::Delete { webhook: name.to_owned(), seq }
                } else {
                    let step = SCHEDULE[(attempts as usize - 1).min(SCHEDULE.len() - 1)];
                    let wait = retry_after.map_or(step, |r| r.min(MAX_RETRY_AFTER).max(step));
                    p.next_at = now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::hours(1));
                    tracing::warn!(webhook = %name, id = %p.change.id, pair = %p.change.target, attempts, result,
                        error = %why, next_attempt = %timestamp::format(&p.next_at), "webhook delivery failed");
                    OutboxOp::Put(OutboxRow { webhook: name.to_owned(), seq, attempts, next_at: p.next_at })
                }
            }
        };
        drop(inner);
        if let Some(h) = self.history.get() {
            h.write_outbox(vec![op]);
        }
    }
}

/// What a webhook's task does next.
enum Next {
    Deliver(Arc<WebhookConfig>, u64, Arc<Change>),
    WaitUntil(DateTime<Utc>, Arc<Notify>),
    Idle(Arc<Notify>),
}

/// One webhook's deliveries, one at a time, the due one with the earliest time first (in
/// the order of the changes when several are due).
async fn worker(me: Weak<Notifier>, name: String, stop: CancellationToken) {
    loop {
        let (next, hook_stop, clock) = {
            let Some(n) = me.upgrade() else { return };
            let now = n.clock.now();
            let inner = n.lock();
            let Some(hook) = inner.hooks.get(&name) else { return };
            let first = hook.pending.iter().min_by_key(|(seq, p)| (p.next_at, **seq));
            let next = match first {
                None => Next::Idle(hook.wake.clone()),
                Some((seq, p)) if p.next_at <= now => Next::Deliver(hook.config.clone(), *seq, p.change.clone()),
                Some((_, p)) => Next::WaitUntil(p.next_at, hook.wake.clone()),
            };
            (next, hook.stop.clone(), n.clock.clone())
        };
        let wait = |wake: Arc<Notify>, until: Option<DateTime<Utc>>| {
            let (stop, hook_stop) = (stop.clone(), hook_stop.clone());
            let clock = clock.clone();
            async move {
                // A second at most: the clock may be moved (a test's), or jump (a suspended
                // machine), and a due delivery must not wait on a timer set before.
                let sleep = until.map(|t| (t - clock.now()).to_std().unwrap_or_default().min(Duration::from_secs(1)));
                tokio::select! {
                    _ = stop.cancelled() => false,
                    _ = hook_stop.cancelled() => false,
                    _ = wake.notified() => true,
                    _ = async { match sleep { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => true,
                }
            }
        };
        let go_on = match next {
            Next::Idle(wake) => wait(wake, None).await,
            Next::WaitUntil(at, wake) => wait(wake, Some(at)).await,
            Next::Deliver(config, seq, change) => {
                let Some(n) = me.upgrade() else { return };
                let outcome = tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = hook_stop.cancelled() => return,
                    o = n.attempt(&config, &change) => o,
                };
                n.settle(&name, seq, outcome);
                true
            }
        };
        if !go_on {
            return;
        }
    }
}

/// The webhooks' series.
struct NotifyMetrics {
    deliveries: IntCounterVec,
    dropped: IntCounterVec,
    waiting: Waiting,
}

/// The outboxes' depth and oldest age, read from the notifier at each scrape.
#[derive(Clone)]
struct Waiting {
    notifier: Weak<Notifier>,
    pending: IntGaugeVec,
    oldest: GaugeVec,
}

impl Collector for Waiting {
    fn desc(&self) -> Vec<&Desc> {
        self.pending.desc().into_iter().chain(self.oldest.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if let Some(n) = self.notifier.upgrade() {
            let now = n.clock.now();
            for (name, count, oldest) in n.waiting() {
                self.pending.with_label_values(&[&name]).set(count as i64);
                let age = oldest.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
                self.oldest.with_label_values(&[&name]).set(age);
            }
        }
        self.pending.collect().into_iter().chain(self.oldest.collect()).collect()
    }
}

impl NotifyMetrics {
    /// The `result` label values of `idauth_webhook_deliveries_total`.
    const RESULTS: [&'static str; 4] = ["success", "rejected", "timeout", "unreachable"];
    /// The `reason` label values of `idauth_webhook_dropped_total`.
    const REASONS: [&'static str; 3] = ["expired", "overflow", "removed"];

    fn new(notifier: Weak<Notifier>) -> NotifyMetrics {
        let counter = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &["webhook", label]).expect("valid metric")
        };
        NotifyMetrics {
            deliveries: counter(
                "idauth_webhook_deliveries_total",
                "Webhook delivery attempts, by webhook and result: success (a 2xx answer), rejected (any other answer, redirects included), timeout, unreachable (connection, DNS or TLS failure).",
                "result",
            ),
            dropped: counter(
                "idauth_webhook_dropped_total",
                "Webhook deliveries given up, by webhook and reason: expired (failed for 24 hours), overflow (the outbox was full), removed (the webhook left the configuration).",
                "reason",
            ),
            waiting: Waiting {
                notifier,
                pending: IntGaugeVec::new(
                    Opts::new("idauth_webhook_pending", "Webhook deliveries waiting in the outbox, by webhook."),
                    &["webhook"],
                )
                .expect("valid metric"),
                oldest: GaugeVec::new(
                    Opts::new(
                        "idauth_webhook_oldest_pending_age_seconds",
                        "How long the oldest waiting webhook delivery has waited since its change was seen, by webhook; 0 when none waits.",
                    ),
                    &["webhook"],
                )
                .expect("valid metric"),
            },
        }
    }

    /// Shows a webhook's series at zero from the start.
    fn init(&self, name: &str) {
        for r in Self::RESULTS {
            self.deliveries.with_label_values(&[name, r]);
        }
        for r in Self::REASONS {
            self.dropped.with_label_values(&[name, r]);
        }
        self.waiting.pending.with_label_values(&[name]);
        self.waiting.oldest.with_label_values(&[name]);
    }

    /// Drops a removed webhook's series, but for what it dropped: that stays countable.
    fn forget(&self, name: &str) {
        for r in Self::RESULTS {
            let _ = self.deliveries.remove_label_values(&[name, r]);
        }
        let _ = self.waiting.pending.remove_label_values(&[name]);
        let _ = self.waiting.oldest.remove_label_values(&[name]);
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![Box::new(self.deliveries.clone()), Box::new(self.dropped.clone()), Box::new(self.waiting.clone())]
    }
}

#[cfg(test)]
mod tests;
