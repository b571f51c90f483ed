//! The history of every poll result, appended off the request path to an embedded
//! database (redb) under `--storage.path`, so that state, "since" and history survive a
//! restart; read back a pair at a time for the history API and the export, and replayed
//! whole at start-up into the store's timelines. Memory holds no copy of it: the store
//! keeps each pair's [`timeline::Timeline`] (its runs and its last day of points).
//!
//! A store that cannot be opened, read or written is logged and counted
//! (`idauth_history_storage_errors_total`, `idauth_history_storage_persisting`) and the
//! exporter carries on from memory: a disk problem never stops polling or serving.

mod disk;
pub mod events;
pub mod export;
pub mod synthetic;
pub mod timeline;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use prometheus::{IntCounterVec, IntGauge, Opts};

use crate::model::{AuthorityState, Observation, Rate, Target};
use events::{Change, Page, Query};

/// The default of `--storage.retention`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The file under `--storage.path`.
pub const FILE_NAME: &str = "history.redb";
/// Results waiting for the writer; beyond this a burst is dropped from disk (kept in memory).
/// The queue grows to it only when the writer is behind: `mpsc::sync_channel` would
/// allocate and touch every slot at start, 1.6 MB of an idle exporter's memory.
const QUEUE: usize = 16_384;

/// One poll's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// When the poll finished.
    #[serde(with = "crate::model::timestamp")]
    pub time: DateTime<Utc>,
    /// Whether it brought back an observation; a failed poll is kept, as `unknown`.
    pub ok: bool,
    /// The state the provider reported (unknown for a failed poll).
    pub state: AuthorityState,
    /// The 10-minute success ratio (0-1).
    pub rate_10m: Option<f64>,
    /// The 1-hour success ratio (0-1).
    pub rate_1h: Option<f64>,
    /// The provider's `last_checked`.
    #[serde(with = "crate::model::timestamp::option")]
    pub last_checked: Option<DateTime<Utc>>,
}

impl Point {
    /// A successful poll's point.
    pub fn observed(at: DateTime<Utc>, o: &Observation) -> Point {
        Point {
            time: at,
            ok: true,
            state: o.state,
            rate_10m: o.rate_10m.map(Rate::as_f64),
            rate_1h: o.rate_1h.map(Rate::as_f64),
            last_checked: o.last_checked,
        }
    }

    /// A failed poll's point.
    pub fn failed(at: DateTime<Utc>) -> Point {
        Point { time: at, ok: false, state: AuthorityState::Unknown, rate_10m: None, rate_1h: None, last_checked: None }
    }

    /// The observation it records, for a successful poll.
    pub fn observation(&self) -> Option<Observation> {
        self.ok.then_some(Observation {
            state: self.state,
            unrecognized_status: None,
            rate_10m: self.rate_10m.and_then(Rate::from_f64),
            rate_1h: self.rate_1h.and_then(Rate::from_f64),
            last_checked: self.last_checked,
        })
    }
}

/// A point as memory holds it: 40 bytes where [`Point`] takes 64, since 30 days of
/// 10-minute polls are 4,320 points a pair. Times in Unix nanoseconds and rates as their
/// bits, so a point comes back exactly as it went in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packed {
    time: i64,
    last_checked: i64,
    rate_10m: u64,
    rate_1h: u64,
    ok: bool,
    state: u8,
}

const NO_TIME: i64 = i64::MIN;
const NO_RATE: u64 = u64::MAX;

/// Unix nanoseconds, clamped (beyond 1677 to 2262, where no poll happens) to keep the order.
pub(crate) fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { NO_TIME + 1 } else { i64::MAX })
}

impl Packed {
    pub(crate) fn new(p: &Point) -> Packed {
        Packed {
            time: nanos(p.time),
            last_checked: p.last_checked.map_or(NO_TIME, nanos),
            rate_10m: p.rate_10m.map_or(NO_RATE, f64::to_bits),
            rate_1h: p.rate_1h.map_or(NO_RATE, f64::to_bits),
            ok: p.ok,
            state: AuthorityState::ALL.iter().position(|s| *s == p.state).unwrap_or(0) as u8,
        }
    }

    pub(crate) fn unpack(&self) -> Point {
        let rate = |bits| (bits != NO_RATE).then(|| f64::from_bits(bits));
        Point {
            time: DateTime::from_timestamp_nanos(self.time),
            ok: self.ok,
            state: AuthorityState::ALL.get(usize::from(self.state)).copied().unwrap_or(AuthorityState::Unknown),
            rate_10m: rate(self.rate_10m),
            rate_1h: rate(self.rate_1h),
            last_checked: (self.last_checked != NO_TIME).then(|| DateTime::from_timestamp_nanos(self.last_checked)),
        }
    }
}

/// Appends to a pair's points, growing by an eighth rather than doubling: a month of
/// points would otherwise sit in up to twice its memory.
pub(crate) fn push_sorted(q: &mut VecDeque<Packed>, p: Packed) {
    if q.len() == q.capacity() {
        q.reserve_exact(q.len() / 8 + 16);
    }
    // Results arrive in time order but for concurrent polls of one pair (which the poller
    // prevents); keep the order anyway.
    let at = q.partition_point(|x| x.time <= p.time);
    q.insert(at, p);
}

enum Message {
    /// A poll result, and the change of state it showed: written in one transaction.
    Append(Target, Point, Option<Box<Change>>),
    /// Changes to the webhooks' outbox.
    Outbox(Vec<OutboxOp>),
    Flush(mpsc::Sender<()>),
    Run(Job),
}

/// One thing to write, in the order it came.
pub(crate) enum Record {
    Point(Target, Point),
    Change(Box<Change>),
    Outbox(OutboxOp),
}

/// A delivery waiting in a webhook's outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// The webhook's name.
    pub webhook: String,
    /// The change's [`Change::seq`].
    pub seq: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// When to try next.
    pub next_at: DateTime<Utc>,
}

/// A change to the webhooks' outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxOp {
    /// Adds or updates a delivery.
    Put(OutboxRow),
    /// Removes a delivery (delivered, or given up).
    Delete {
        /// The webhook's name.
        webhook: String,
        /// The change's [`Change::seq`].
        seq: u64,
    },
    /// Every change up to this `seq` has been handed to the webhooks it concerns.
    Routed(u64),
}

/// What the outbox held at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    /// Every change up to this `seq` was handed to the webhooks it concerns.
    pub routed: u64,
    /// The deliveries waiting.
    pub rows: Vec<OutboxRow>,
}

/// The changes kept in memory (the newest), for the feeds and the webhooks.
const CHANGES_IN_MEMORY: usize = 4096;

/// Work for the writer's thread ([`History::run_on_writer`]).
pub type Job = Box<dyn FnOnce() + Send>;

/// The sending end of the writer's queue: unbounded underneath (memory in use only for
/// what waits), bounded to [`QUEUE`] appends by a count the writer decrements.
struct Queue {
    tx: mpsc::Sender<Message>,
    waiting: Arc<AtomicUsize>,
}

/// Why [`Queue::append`] did not queue.
enum QueueError {
    Full,
    Closed,
}

impl Queue {
    fn new() -> (Queue, Inbox) {
        let (tx, rx) = mpsc::channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        (Queue { tx, waiting: waiting.clone() }, Inbox { rx, waiting })
    }

    fn append(&self, target: Target, point: Point, change: Option<Box<Change>>) -> Result<(), QueueError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= QUEUE {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(QueueError::Full);
        }
        self.tx.send(Message::Append(target, point, change)).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            QueueError::Closed
        })
    }
}

/// The writer's end of the queue.
struct Inbox {
    rx: mpsc::Receiver<Message>,
    waiting: Arc<AtomicUsize>,
}

impl Inbox {
    fn taken(&self, m: Result<Message, mpsc::RecvTimeoutError>) -> Result<Message, mpsc::RecvTimeoutError> {
        if let Ok(Message::Append(..)) = &m {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        m
    }

    fn recv_timeout(&self, timeout: Duration) -> Result<Message, mpsc::RecvTimeoutError> {
        self.taken(self.rx.recv_timeout(timeout))
    }

    fn try_recv(&self) -> Option<Message> {
        self.taken(self.rx.try_recv().map_err(|_| mpsc::RecvTimeoutError::Timeout)).ok()
    }
}

/// Why the history store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Another process (a running exporter) holds the store.
    #[error("the history store {} is in use by another process (a running exporter holds it: ask that exporter, e.g. GET /api/v1/history?format=csv)", .0.display())]
    InUse(PathBuf),
    /// The database failed.
    #[error("history store: {0}")]
    Database(#[from] redb::Error),
    /// Kept in memory only, and nothing older than what memory holds is known.
    #[error("history is kept in memory only")]
    NoStore,
}

/// Where history is kept: the database when it works; in memory only when no store is
/// wanted (the demo). Nothing here is about what the points mean: that is [`timeline`],
/// and the store's per-pair [`timeline::Timeline`]s.
pub struct History {
    /// Every point within retention, only when there is no database (the demo).
    memory: Option<RwLock<BTreeMap<Target, VecDeque<Packed>>>>,
    disk: disk::Shared,
    retention: TimeDelta,
    writer: Option<Queue>,
    thread: Option<std::thread::JoinHandle<()>>,
    metrics: HistoryMetrics,
    path: Option<PathBuf>,
    /// The newest changes, complete from their first: the feeds read these.
    changes: RwLock<Changes>,
    /// The newest change's `seq`, for whoever waits for changes (the webhooks).
    changed: tokio::sync::watch::Sender<u64>,
}

/// The newest changes, in `seq` order.
#[derive(Debug, Default)]
struct Changes {
    recent: VecDeque<Change>,
    /// Whether `recent` holds every change the store has (none was pushed out).
    complete: bool,
    /// The last `seq` given.
    last: u64,
}

impl Changes {
    fn loaded(recent: VecDeque<Change>, complete: bool) -> Changes {
        let last = recent.back().map_or(0, |c| c.seq);
        Changes { recent, complete, last }
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("path", &self.path).field("retention", &self.retention).finish()
    }
}

impl History {
    /// History in memory only (the demo, or no storage wanted).
    pub fn in_memory(retention: Duration, metrics: HistoryMetrics) -> History {
        metrics.set_persisting(false);
        History {
            memory: Some(RwLock::new(BTreeMap::new())),
            disk: Arc::default(),
            retention: TimeDelta::from_std(retention).unwrap_or(TimeDelta::MAX),
            writer: None,
            thread: None,
            metrics,
            path: None,
            changes: RwLock::new(Changes::loaded(VecDeque::new(), true)),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Opens (or creates) the store in `dir`. Never fails: a store that cannot be used is
    /// logged and counted, results are kept for it in memory, and the writer keeps trying
    /// to reopen it. Nothing is loaded: the store replays what it needs ([`History::replay`]).
    pub fn open(dir: &Path, retention: Duration, metrics: HistoryMetrics) -> History {
        let path = dir.join(FILE_NAME);
        let disk = match disk::Disk::open(dir, &path) {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                metrics.error("open");
                tracing::error!(path = %path.display(), error = %e,
                    "history: cannot open the store; keeping history in memory only (it will not survive a restart)");
                None
            }
        };
        metrics.set_persisting(disk.is_some());
        let changes = match disk.as_ref().map(|d| d.last_changes(CHANGES_IN_MEMORY)) {
            Some(Ok((recent, complete))) => Changes::loaded(recent, complete),
            Some(Err(e)) => {
                metrics.error("read");
                tracing::error!(error = %e, "history: cannot read the stored changes");
                Changes::default()
            }
            None => Changes::default(),
        };
        let last = changes.last;
        let mut history = History {
            memory: None,
            disk: Arc::new(RwLock::new(disk)),
            retention: TimeDelta::from_std(retention).unwrap_or(TimeDelta::MAX),
            writer: None,
            thread: None,
            metrics: metrics.clone(),
            path: Some(path.clone()),
            changes: RwLock::new(changes),
            changed: tokio::sync::watch::Sender::new(last),
        };
        let (tx, rx) = Queue::new();
        let (shared, retention) = (history.disk.clone(), history.retention);
        let spawned = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || disk::writer(shared, dir_of(&path), path, rx, retention, metrics));
        match spawned {
            Ok(thread) => {
                history.writer = Some(tx);
                history.thread = Some(thread);
            }
            Err(e) => {
                history.metrics.error("open");
                history.metrics.set_persisting(false);
                tracing::error!(error = %e, "history: cannot start the writer thread; keeping history in memory only");
            }
        }
        history
    }

    /// Opens the store in `dir` for a command (`history fill`, `history export`): written
    /// and read at once, on this thread; fails, saying so, when an exporter holds it.
    pub fn open_for_command(dir: &Path, retention: Duration) -> Result<History, HistoryError> {
        let path = dir.join(FILE_NAME);
        let disk = disk::Disk::open(dir, &path)?;
        let (recent, complete) = disk.last_changes(CHANGES_IN_MEMORY)?;
        let changes = Changes::loaded(recent, complete);
        let last = changes.last;
        Ok(History {
            memory: None,
            disk: Arc::new(RwLock::new(Some(Arc::new(disk)))),
            retention: TimeDelta::from_std(retention).unwrap_or(TimeDelta::MAX),
            writer: None,
            thread: None,
            metrics: HistoryMetrics::default(),
            path: Some(path),
            changes: RwLock::new(changes),
            changed: tokio::sync::watch::Sender::new(last),
        })
    }

    fn disk(&self) -> Option<Arc<disk::Disk>> {
        self.disk.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn memory(&self) -> Option<std::sync::RwLockReadGuard<'_, BTreeMap<Target, VecDeque<Packed>>>> {
        Some(self.memory.as_ref()?.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Records one poll's result: in memory at once (memory only), on disk by the writer.
    pub fn append(&self, target: &Target, point: Point) {
        self.append_with(target, point, None);
    }

    /// Records one poll's result and the change of state it showed, in one transaction;
    /// gives the change its `seq` (after every earlier one, even across a restart whose
    /// store could not be read: a time in milliseconds at least) and returns it.
    pub fn append_change(&self, target: &Target, point: Point, mut change: Change) -> u64 {
        let seq = {
            let mut changes = self.changes.write().unwrap_or_else(|p| p.into_inner());
            let seq = (changes.last + 1).max(change.detected.timestamp_millis().max(0) as u64);
            changes.last = seq;
            change.seq = seq;
            changes.recent.push_back(change.clone());
            if changes.recent.len() > CHANGES_IN_MEMORY {
                changes.recent.pop_front();
                changes.complete = false;
            }
            seq
        };
        self.append_with(target, point, Some(Box::new(change)));
        self.changed.send_replace(seq);
        seq
    }

    fn append_with(&self, target: &Target, point: Point, change: Option<Box<Change>>) {
        if let Some(memory) = &self.memory {
            let mut memory = memory.write().unwrap_or_else(|p| p.into_inner());
            let q = memory.entry(target.clone()).or_default();
            let cutoff = nanos(point.time - self.retention);
            while q.front().is_some_and(|p| p.time < cutoff) {
                q.pop_front();
            }
            push_sorted(q, Packed::new(&point));
            return;
        }
        if let Some(tx) = &self.writer {
            match tx.append(target.clone(), point, change) {
                Ok(()) => {}
                Err(QueueError::Full) => {
                    self.metrics.error("write");
                    tracing::warn!("history: the writer is behind; a result is kept in memory only");
                }
                Err(QueueError::Closed) => self.metrics.error("write"),
            }
        }
    }

    /// Writes `batch` at once (a command's store only; a daemon's goes through its writer).
    pub fn write_now(&self, batch: &[(Target, Point)]) -> Result<(), HistoryError> {
        if self.memory.is_some() {
            for (t, p) in batch {
                self.append(t, p.clone());
            }
            return Ok(());
        }
        let records: Vec<Record> = batch.iter().map(|(t, p)| Record::Point(t.clone(), p.clone())).collect();
        self.disk().ok_or(HistoryError::NoStore)?.write(&records).map_err(HistoryError::from)
    }

    /// A page of the stored changes: from memory when it holds the page whole, else from
    /// the store.
    pub fn changes(&self, query: Query) -> Result<Page, HistoryError> {
        {
            let changes = self.changes.read().unwrap_or_else(|p| p.into_inner());
            let first = changes.recent.front().map_or(u64::MAX, |c| c.seq);
            // Memory holds the page whole when it holds everything, when the page starts
            // within it (after), or when the newest `limit` before `before` fill the page.
            let page = events::page(changes.recent.iter(), query);
            let whole =
                changes.complete || query.after.is_some_and(|a| a + 1 >= first) || (query.after.is_none() && page.more);
            if whole || self.memory.is_some() {
                return Ok(page);
            }
            // The store is down (it could not be opened, or failed): memory holds every
            // change since then, which is what there is to show.
            if self.disk().is_none() {
                return Ok(page);
            }
        }
        let disk = self.disk().ok_or(HistoryError::NoStore)?;
        disk.changes(query).inspect_err(|_| self.metrics.error("read"))
    }

    /// The change numbered `seq`.
    pub fn change(&self, seq: u64) -> Option<Change> {
        {
            let changes = self.changes.read().unwrap_or_else(|p| p.into_inner());
            let at = changes.recent.partition_point(|c| c.seq < seq);
            if let Some(c) = changes.recent.get(at).filter(|c| c.seq == seq) {
                return Some(c.clone());
            }
        }
        let q = Query { after: Some(seq.checked_sub(1)?), before: None, limit: 1 };
        self.disk()?.changes(q).ok()?.changes.into_iter().find(|c| c.seq == seq)
    }

    /// The newest change's `seq`, told again at every change.
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// What the webhooks' outbox holds (empty for a history in memory).
    pub fn outbox(&self) -> Result<Outbox, HistoryError> {
        if self.memory.is_some() {
            return Ok(Outbox::default());
        }
        let disk = self.disk().ok_or(HistoryError::NoStore)?;
        disk.outbox().inspect_err(|_| self.metrics.error("read"))
    }

    /// Queues changes to the webhooks' outbox for the writer, after what is queued (a
    /// change is written before its deliveries); nothing for a history in memory.
    pub fn write_outbox(&self, ops: Vec<OutboxOp>) {
        if ops.is_empty() {
            return;
        }
        if let Some(tx) = &self.writer
            && tx.tx.send(Message::Outbox(ops)).is_err()
        {
            self.metrics.error("write");
        }
    }

    /// Runs `job` on the writer's thread, after what is queued (the replay at start: a
    /// thread the history already has rather than one more); gives it back when there is no
    /// writer (memory only), for the caller to run.
    pub fn run_on_writer(&self, job: Job) -> Result<(), Job> {
        let Some(tx) = &self.writer else { return Err(job) };
        tx.tx.send(Message::Run(job)).map_err(|e| match e.0 {
            Message::Run(job) => job,
            _ => unreachable!("the message sent is a job"),
        })
    }

    /// Waits (up to `timeout`) until the writer has dealt with everything appended so far
    /// (written it, or kept it pending while the store fails); returns whether it has.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = &self.writer else { return true };
        let (done, wait) = mpsc::channel();
        tx.tx.send(Message::Flush(done)).is_ok() && wait.recv_timeout(timeout).is_ok()
    }

    /// The points of `target` from `from` to `to` (exclusive), in time order.
    pub fn points(&self, target: &Target, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Point>, HistoryError> {
        if let Some(memory) = self.memory() {
            let Some(q) = memory.get(target) else { return Ok(Vec::new()) };
            let (a, b) = (nanos(from), nanos(to));
            let start = q.partition_point(|p| p.time < a);
            return Ok(q.range(start..).take_while(|p| p.time < b).map(Packed::unpack).collect());
        }
        let disk = self.disk().ok_or(HistoryError::NoStore)?;
        disk.points(target, from, to).inspect_err(|_| self.metrics.error("read"))
    }

    /// Calls `f` on every point from `from` to `to` (exclusive), pair by pair, each pair's
    /// in time order; returns how many records could not be read (logged and counted).
    pub fn for_each(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut f: impl FnMut(&Target, Point),
    ) -> Result<usize, HistoryError> {
        if let Some(memory) = self.memory() {
            let (a, b) = (nanos(from), nanos(to));
            for (t, q) in memory.iter() {
                for p in q.iter().filter(|p| p.time >= a && p.time < b) {
                    f(t, p.unpack());
                }
            }
            return Ok(0);
        }
        let disk = self.disk().ok_or(HistoryError::NoStore)?;
        let bad = disk.for_each(from, to, f).inspect_err(|_| self.metrics.error("read"))?;
        if bad > 0 {
            self.metrics.error("read");
            tracing::warn!(skipped = bad, "history: unreadable records skipped");
        }
        Ok(bad)
    }

    /// Every point within retention as of `now`, for the store to rebuild its timelines
    /// after a restart; a store that cannot be read is logged and counted, and replays
    /// nothing.
    pub fn replay(&self, now: DateTime<Utc>, f: impl FnMut(&Target, Point)) {
        let started = std::time::Instant::now();
        let mut n = 0usize;
        let mut f = f;
        let result = self.for_each(now - self.retention, DateTime::<Utc>::MAX_UTC, |t, p| {
            n += 1;
            f(t, p)
        });
        match result {
            Ok(_) if self.memory.is_none() => tracing::info!(
                path = %self.path.as_deref().unwrap_or(Path::new("")).display(),
                points = n,
                took_ms = started.elapsed().as_millis() as u64,
                "history restored"
            ),
            Ok(_) | Err(HistoryError::NoStore) => {}
            Err(e) => tracing::error!(error = %e, "history: cannot read the store; starting from an empty history"),
        }
    }

    /// How far back history is kept.
    pub fn retention(&self) -> TimeDelta {
        self.retention
    }

    /// Whether results reach the database.
    pub fn is_persisting(&self) -> bool {
        self.metrics.persisting()
    }

    /// Writes [`synthetic`] points for `targets` over the `span` before `now` (the
    /// `history fill` command); returns how many.
    pub fn fill(&self, targets: &[Target], span: TimeDelta, now: DateTime<Utc>) -> Result<usize, HistoryError> {
        let mut batch = Vec::with_capacity(50_000);
        let mut written = 0;
        for t in targets {
            for p in synthetic::points(t, now - span, now) {
                batch.push((t.clone(), p));
                if batch.len() == batch.capacity() {
                    self.write_now(&batch)?;
                    written += batch.len();
                    batch.clear();
                }
            }
        }
        self.write_now(&batch)?;
        Ok(written + batch.len())
    }

    /// Writes every point from `from` to `to` as `format` to `out`, pair by pair, each in
    /// time order (the `history export` command); returns how many.
    pub fn export(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        format: export::Format,
        out: &mut dyn std::io::Write,
    ) -> Result<usize, HistoryError> {
        let mut writer = export::Writer::new(format);
        let mut text = String::new();
        writer.start(&mut text);
        let mut failed: Option<std::io::Error> = None;
        self.for_each(from, to, |t, p| {
            if failed.is_some() {
                return;
            }
            writer.point(&mut text, t, &p);
            if text.len() >= 64 * 1024 {
                failed = out.write_all(text.as_bytes()).err();
                text.clear();
            }
        })?;
        writer.finish(&mut text);
        match failed {
            Some(e) => Err(redb::Error::Io(e).into()),
            None => out.write_all(text.as_bytes()).map_err(|e| redb::Error::Io(e).into()).map(|()| writer.rows()),
        }
    }

    /// Whether points older than what the store's timelines hold can be read back.
    pub fn keeps_points(&self) -> bool {
        self.memory.is_some() || self.disk().is_some()
    }
}

impl Drop for History {
    /// Lets the writer finish what is queued and close the database, so that it can be
    /// opened again at once (by a test, or a restart in the same process).
    fn drop(&mut self) {
        self.writer.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.disk.write().unwrap_or_else(|p| p.into_inner()).take();
    }
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Parses a `range` such as `24h`, `7d` or `30d`.
pub fn parse_range(s: &str) -> Option<TimeDelta> {
    let d = humantime::parse_duration(s).ok()?;
    (d >= Duration::from_secs(60) && d <= Duration::from_secs(366 * 24 * 3600)).then(|| TimeDelta::from_std(d).ok())?
}

/// Shared handle.
pub type SharedHistory = Arc<History>;

/// The history store's health (`--storage.path`): errors by operation, and whether poll
/// results reach the disk (0: kept in memory only). Clones share the same series.
#[derive(Clone, Debug)]
pub struct HistoryMetrics {
    errors: IntCounterVec,
    persisting: IntGauge,
}

impl HistoryMetrics {
    /// The `operation` label values.
    pub const OPERATIONS: [&'static str; 4] = ["open", "read", "write", "retention"];

    /// Counts one failed `operation`, one of [`Self::OPERATIONS`].
    pub fn error(&self, operation: &str) {
        self.errors.with_label_values(&[operation]).inc();
    }

    /// How many `operation`s failed.
    pub fn errors_total(&self, operation: &str) -> u64 {
        self.errors.with_label_values(&[operation]).get()
    }

    /// Sets whether results reach the disk.
    pub fn set_persisting(&self, yes: bool) {
        self.persisting.set(i64::from(yes));
    }

    /// Whether results reach the disk.
    pub fn persisting(&self) -> bool {
        self.persisting.get() == 1
    }

    /// Its series, for the registry that serves them.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![Box::new(self.errors.clone()), Box::new(self.persisting.clone())]
    }
}

impl Default for HistoryMetrics {
    fn default() -> Self {
        let errors = IntCounterVec::new(
            Opts::new(
                "idauth_history_storage_errors_total",
                "Failures of the history store (--storage.path), by operation: open, read, write, retention. \
                 History is then kept in memory only until the store works again.",
            ),
            &["operation"],
        )
        .expect("valid metric");
        for op in Self::OPERATIONS {
            errors.with_label_values(&[op]);
        }
        let persisting = IntGauge::new(
            "idauth_history_storage_persisting",
            "Whether poll results are being written to the history store (1) or kept in memory only (0).",
        )
        .expect("valid metric");
        HistoryMetrics { errors, persisting }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(s: i64) -> Point {
        Point::failed(DateTime::from_timestamp(s, 0).unwrap())
    }

    #[test]
    fn the_writer_queue_holds_queue_appends_and_frees_a_slot_per_one_taken() {
        let (q, inbox) = Queue::new();
        let t: Target = Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
        for i in 0..QUEUE {
            assert!(q.append(t.clone(), point(i as i64), None).is_ok(), "append {i}");
        }
        assert!(matches!(q.append(t.clone(), point(0), None), Err(QueueError::Full)));
        // A flush is never refused for a full queue, and does not take a slot.
        let (done, _wait) = mpsc::channel();
        q.tx.send(Message::Flush(done)).unwrap();
        assert!(matches!(inbox.recv_timeout(Duration::ZERO), Ok(Message::Append(_, p, _)) if p == point(0)));
        assert!(q.append(t.clone(), point(1), None).is_ok(), "a slot was freed");
        assert!(matches!(q.append(t.clone(), point(2), None), Err(QueueError::Full)));
        let mut appends = 0;
        while let Some(m) = inbox.try_recv() {
            appends += matches!(m, Message::Append(..)) as usize;
        }
        assert_eq!(appends, QUEUE);
        assert_eq!(q.waiting.load(Ordering::Acquire), 0);
        drop(inbox);
        assert!(matches!(q.append(t, point(3), None), Err(QueueError::Closed)));
        assert_eq!(q.waiting.load(Ordering::Acquire), 0, "a refused append gives its slot back");
    }

    /// A month of 10-minute polls comes back exactly as it went in (nanoseconds, rates to
    /// the bit, absent values absent), and is held in about its own size: 40 bytes a
    /// point, the queue grown by an eighth at a time rather than doubled.
    #[test]
    fn a_month_of_points_comes_back_exactly_and_is_held_compactly() {
        assert_eq!(std::mem::size_of::<Packed>(), 40);
        let history = History::in_memory(DEFAULT_RETENTION, HistoryMetrics::default());
        let t: Target = Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
        let start = DateTime::from_timestamp(1_767_225_600, 123_456_789).unwrap();
        let mut sent = Vec::new();
        for i in 0..4_400i64 {
            let at = start + TimeDelta::minutes(10 * i);
            let p = if i % 7 == 3 {
                Point::failed(at)
            } else {
                Point {
                    time: at,
                    ok: true,
                    state: AuthorityState::ALL[(i % 4) as usize],
                    rate_10m: (i % 5 != 0).then_some(0.1 + i as f64 / 7_000.0),
                    rate_1h: (i % 6 != 0).then_some(1.0 / (i + 1) as f64),
                    last_checked: (i % 3 != 0).then(|| at - TimeDelta::nanoseconds(987_654_321)),
                }
            };
            history.append(&t, p.clone());
            sent.push(p);
        }
        let back = history.points(&t, start, start + TimeDelta::days(60)).unwrap();
        // Points older than the 30-day retention went as the newest came in.
        let kept = &sent[sent.len() - back.len()..];
        assert_eq!(back.len(), 30 * 144 + 1, "{} kept", back.len());
        assert_eq!(back, kept);
        let capacity = history.memory().unwrap()[&t].capacity();
        assert!(capacity <= back.len() + back.len() / 8 + 16, "capacity {capacity} for {}", back.len());
    }
}
