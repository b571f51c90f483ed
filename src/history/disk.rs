//! The database side of [`super::History`]: redb, one table keyed by pair then time, so
//! that one pair's month is one short range read (the history API, the export) and a
//! restart replays each pair in order.

use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::events::{Change, Page, Query};
use super::{HistoryError, HistoryMetrics, Message, Outbox, OutboxOp, OutboxRow, Point, Record};
use crate::model::{AuthorityState, Target};

/// Key: the pair as `CC/ID_TYPE`, a zero byte, then the time (big-endian milliseconds, sign
/// bit flipped so that byte order is time order); value: [`encode`]d point.
const POINTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("points_v2");
/// The layout of the first release, keyed by time then pair; moved into [`POINTS`] at open.
const POINTS_V1: TableDefinition<&[u8], &[u8]> = TableDefinition::new("points_v1");
/// Key: [`Change::seq`]; value: [`Change::encode`]d change.
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes_v1");
/// Key: the webhook's name, a zero byte, then the change's `seq` (big-endian); value: the
/// attempts made (4 bytes) and when to try next (8 bytes of Unix milliseconds), big-endian.
const OUTBOX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outbox_v1");
/// The outbox's cursor: `routed`, the last change handed to the webhooks.
const NOTIFY: TableDefinition<&str, u64> = TableDefinition::new("notify_v1");
/// How often retention runs (and at open).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// How long after a failure the writer tries the database again.
const RETRY_EVERY: Duration = Duration::from_secs(30);
/// Results kept for the database while it fails, written when it works again.
const PENDING_MAX: usize = 100_000;

/// The database, shared by the writer thread and the readers (redb lets reads run beside
/// a write). The writer replaces it when it has to reopen the file.
pub(super) type Shared = Arc<RwLock<Option<Arc<Disk>>>>;

pub(super) struct Disk {
    db: Database,
}

fn time_key(at: DateTime<Utc>) -> [u8; 8] {
    ((at.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

fn pair_prefix(target: &Target) -> Vec<u8> {
    let mut k = target.to_string().into_bytes();
    k.push(0);
    k
}

fn key(target: &Target, at: DateTime<Utc>) -> Vec<u8> {
    let mut k = pair_prefix(target);
    k.extend_from_slice(&time_key(at));
    k
}

fn outbox_key(webhook: &str, seq: u64) -> Vec<u8> {
    let mut k = webhook.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn outbox_row(k: &[u8], v: &[u8]) -> Option<OutboxRow> {
    let (name, seq) = k.split_at_checked(k.len().checked_sub(9)?)?;
    let seq = u64::from_be_bytes(seq.get(1..)?.try_into().ok()?);
    let attempts = u32::from_be_bytes(v.get(..4)?.try_into().ok()?);
    let next_at = DateTime::from_timestamp_millis(i64::from_be_bytes(v.get(4..12)?.try_into().ok()?))?;
    Some(OutboxRow { webhook: String::from_utf8(name.to_vec()).ok()?, seq, attempts, next_at })
}

/// The pair part of a key (with its zero byte) and the time.
fn split_key(k: &[u8]) -> Option<(&[u8], DateTime<Utc>)> {
    let (pair, time) = k.split_at_checked(k.len().checked_sub(8)?)?;
    let ms = (u64::from_be_bytes(time.try_into().ok()?) ^ (1 << 63)) as i64;
    Some((pair, DateTime::from_timestamp_millis(ms)?))
}

fn parse_pair(pair: &[u8]) -> Option<Target> {
    let text = std::str::from_utf8(pair.strip_suffix(&[0])?).ok()?;
    let (c, i) = text.split_once('/')?;
    Some(Target::new(c.parse().ok()?, i.parse().ok()?))
}

/// A key of the first layout: time then pair.
fn parse_v1_key(k: &[u8]) -> Option<(DateTime<Utc>, Target)> {
    let (time, pair) = k.split_at_checked(8)?;
    let ms = (u64::from_be_bytes(time.try_into().ok()?) ^ (1 << 63)) as i64;
    let (c, i) = std::str::from_utf8(pair).ok()?.split_once('/')?;
    Some((DateTime::from_timestamp_millis(ms)?, Target::new(c.parse().ok()?, i.parse().ok()?)))
}

const NONE_RATE: u64 = u64::MAX;

/// 26 bytes: version, flags and state, the two rates (f64 bits, all ones for none), and
/// `last_checked` in milliseconds (`i64::MIN` for none).
fn encode(p: &Point) -> [u8; 26] {
    let mut v = [0u8; 26];
    v[0] = 1;
    let state = match p.state {
        AuthorityState::Online => 0,
        AuthorityState::Interruption => 1,
        AuthorityState::Offline => 2,
        AuthorityState::Unknown => 3,
    };
    v[1] = state | if p.ok { 0x80 } else { 0 };
    v[2..10].copy_from_slice(&p.rate_10m.map_or(NONE_RATE, f64::to_bits).to_be_bytes());
    v[10..18].copy_from_slice(&p.rate_1h.map_or(NONE_RATE, f64::to_bits).to_be_bytes());
    v[18..26].copy_from_slice(&p.last_checked.map_or(i64::MIN, |t| t.timestamp_millis()).to_be_bytes());
    v
}

fn decode(at: DateTime<Utc>, v: &[u8]) -> Option<Point> {
    if v.len() != 26 || v[0] != 1 {
        return None;
    }
    let state = match v[1] & 0x7f {
        0 => AuthorityState::Online,
        1 => AuthorityState::Interruption,
        2 => AuthorityState::Offline,
        3 => AuthorityState::Unknown,
        _ => return None,
    };
    let rate = |b: &[u8]| {
        let bits = u64::from_be_bytes(b.try_into().ok()?);
        let r = f64::from_bits(bits);
        (bits != NONE_RATE && (0.0..=1.0).contains(&r)).then_some(r)
    };
    let lc = i64::from_be_bytes(v[18..26].try_into().ok()?);
    Some(Point {
        time: at,
        ok: v[1] & 0x80 != 0,
        state,
        rate_10m: rate(&v[2..10]),
        rate_1h: rate(&v[10..18]),
        last_checked: if lc == i64::MIN { None } else { DateTime::from_timestamp_millis(lc) },
    })
}

impl Disk {
    /// Opens or creates the database, moving a first-layout table into the current one.
    pub(super) fn open(dir: &Path, path: &Path) -> Result<Disk, HistoryError> {
        std::fs::create_dir_all(dir).map_err(|e| HistoryError::from(redb::Error::Io(e)))?;
        // A small cache: reads are one pair's range or one sequential replay, and each MiB
        // of cache is a MiB of the exporter's memory (16 MiB: 36 MB at 1,000 pairs, 4: 24).
        let db = Database::builder().set_cache_size(4 << 20).create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => HistoryError::InUse(path.to_path_buf()),
            e => HistoryError::from(redb::Error::from(e)),
        })?;
        let disk = Disk { db };
        disk.migrate()?;
        Ok(disk)
    }

    /// Moves the points of the first layout (time first) into the current one, in one
    /// transaction: an upgrade interrupted half-way leaves the old table whole.
    fn migrate(&self) -> Result<(), HistoryError> {
        // A write transaction's open_table would create the old table: look first.
        let has_v1 = match self.db.begin_read().map_err(redb::Error::from)?.open_table(POINTS_V1) {
            Ok(_) => true,
            Err(TableError::TableDoesNotExist(_)) => false,
            Err(e) => return Err(redb::Error::from(e).into()),
        };
        let tx = self.db.begin_write().map_err(redb::Error::from)?;
        // Creating the tables at once proves the file writable.
        tx.open_table(POINTS).map_err(redb::Error::from)?;
        tx.open_table(CHANGES).map_err(redb::Error::from)?;
        tx.open_table(OUTBOX).map_err(redb::Error::from)?;
        tx.open_table(NOTIFY).map_err(redb::Error::from)?;
        if !has_v1 {
            tx.commit().map_err(redb::Error::from)?;
            return Ok(());
        }
        let mut moved = 0usize;
        {
            let old = tx.open_table(POINTS_V1).map_err(redb::Error::from)?;
            let mut new = tx.open_table(POINTS).map_err(redb::Error::from)?;
            for row in old.iter().map_err(redb::Error::from)? {
                let (k, v) = row.map_err(redb::Error::from)?;
                if let Some((at, t)) = parse_v1_key(k.value()) {
                    new.insert(key(&t, at).as_slice(), v.value()).map_err(redb::Error::from)?;
                    moved += 1;
                }
            }
        }
        tx.delete_table(POINTS_V1).map_err(redb::Error::from)?;
        tx.commit().map_err(redb::Error::from)?;
        tracing::info!(points = moved, "history: the store was moved to the per-pair layout");
        Ok(())
    }

    /// Calls `f` on every point from `from` (inclusive) to `to` (exclusive), pair by pair in
    /// time order; returns how many records could not be read.
    pub(super) fn for_each(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut f: impl FnMut(&Target, Point),
    ) -> Result<usize, HistoryError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let table = tx.open_table(POINTS).map_err(redb::Error::from)?;
        let mut bad = 0;
        // Keys are pair first: the pair is parsed once per run of its keys.
        let mut current: Option<(Vec<u8>, Option<Target>)> = None;
        for row in table.iter().map_err(redb::Error::from)? {
            let (k, v) = row.map_err(redb::Error::from)?;
            let Some((pair, at)) = split_key(k.value()) else {
                bad += 1;
                continue;
            };
            if at < from || at >= to {
                continue;
            }
            if current.as_ref().is_none_or(|(p, _)| p.as_slice() != pair) {
                current = Some((pair.to_vec(), parse_pair(pair)));
            }
            match (current.as_ref().and_then(|(_, t)| t.as_ref()), decode(at, v.value())) {
                (Some(t), Some(p)) => f(t, p),
                _ => bad += 1,
            }
        }
        Ok(bad)
    }

    /// The points of `target` from `from` to `to`, in time order.
    pub(super) fn points(
        &self,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Point>, HistoryError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let table = tx.open_table(POINTS).map_err(redb::Error::from)?;
        let (a, b) = (key(target, from), key(target, to));
        let mut out = Vec::new();
        for row in table.range(a.as_slice()..b.as_slice()).map_err(redb::Error::from)? {
            let (k, v) = row.map_err(redb::Error::from)?;
            if let Some(p) = split_key(k.value()).and_then(|(_, at)| decode(at, v.value())) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Writes `batch` in order, in one transaction: a change is there with its poll result
    /// or neither is.
    pub(super) fn write(&self, batch: &[Record]) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        {
            let mut points = tx.open_table(POINTS)?;
            let mut changes = tx.open_table(CHANGES)?;
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut notify = tx.open_table(NOTIFY)?;
            for r in batch {
                match r {
                    Record::Point(t, p) => {
                        points.insert(key(t, p.time).as_slice(), encode(p).as_slice())?;
                    }
                    Record::Change(c) => {
                        changes.insert(c.seq, c.encode().as_slice())?;
                    }
                    Record::Outbox(OutboxOp::Put(row)) => {
                        let mut v = row.attempts.to_be_bytes().to_vec();
                        v.extend_from_slice(&row.next_at.timestamp_millis().to_be_bytes());
                        outbox.insert(outbox_key(&row.webhook, row.seq).as_slice(), v.as_slice())?;
                    }
                    Record::Outbox(OutboxOp::Delete { webhook, seq }) => {
                        outbox.remove(outbox_key(webhook, *seq).as_slice())?;
                    }
                    Record::Outbox(OutboxOp::Routed(seq)) => {
                        notify.insert("routed", *seq)?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The newest `n` changes in `seq` order, and whether they are all the store has.
    pub(super) fn last_changes(&self, n: usize) -> Result<(std::collections::VecDeque<Change>, bool), HistoryError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let table = tx.open_table(CHANGES).map_err(redb::Error::from)?;
        let mut out = std::collections::VecDeque::new();
        let mut rows = table.iter().map_err(redb::Error::from)?.rev();
        for row in rows.by_ref().take(n) {
            let (_, v) = row.map_err(redb::Error::from)?;
            if let Some(c) = Change::decode(v.value()) {
                out.push_front(c);
            }
        }
        Ok((out, rows.next().is_none()))
    }

    /// A page of the stored changes.
    pub(super) fn changes(&self, query: Query) -> Result<Page, HistoryError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let table = tx.open_table(CHANGES).map_err(redb::Error::from)?;
        let (from, to) = (query.after.map_or(0, |a| a.saturating_add(1)), query.before.unwrap_or(u64::MAX));
        let range = table.range(from..to).map_err(redb::Error::from)?;
        Ok(super::events::page(range.filter_map(|row| row.ok().and_then(|(_, v)| Change::decode(v.value()))), query))
    }

    /// What the webhooks' outbox holds.
    pub(super) fn outbox(&self) -> Result<Outbox, HistoryError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let notify = tx.open_table(NOTIFY).map_err(redb::Error::from)?;
        let routed = notify.get("routed").map_err(redb::Error::from)?.map_or(0, |v| v.value());
        let table = tx.open_table(OUTBOX).map_err(redb::Error::from)?;
        let mut rows = Vec::new();
        for row in table.iter().map_err(redb::Error::from)? {
            let (k, v) = row.map_err(redb::Error::from)?;
            if let Some(r) = outbox_row(k.value(), v.value()) {
                rows.push(r);
            }
        }
        Ok(Outbox { routed, rows })
    }

    /// Deletes every pair's points before `cutoff`: one range deletion per pair.
    fn drop_before(&self, cutoff: DateTime<Utc>) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(POINTS)?;
            let mut next: Vec<u8> = Vec::new();
            loop {
                let pair = {
                    let mut range = table.range(next.as_slice()..)?;
                    let Some((k, _)) = range.next().transpose()? else { break };
                    let Some((pair, _)) = split_key(k.value()) else { break };
                    pair.to_vec()
                };
                let mut end = pair.clone();
                end.extend_from_slice(&time_key(cutoff));
                table.retain_in(pair.as_slice()..end.as_slice(), |_, _| false)?;
                // The next pair: past every key of this one (its zero byte becomes one).
                next = pair;
                if let Some(last) = next.last_mut() {
                    *last = 1;
                }
            }
            // Changes in `seq` order are in time order: the old ones are the first.
            let mut changes = tx.open_table(CHANGES)?;
            let cutoff_ms = cutoff.timestamp_millis();
            changes.retain_in(0..u64::MAX, |_, v| {
                Change::decode(v).is_none_or(|c| c.detected.timestamp_millis() >= cutoff_ms)
            })?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// The writer thread: batches what arrives, writes it, enforces retention; on failure
/// keeps results pending (bounded), counts and logs, and reopens the database later.
pub(super) fn writer(
    shared: Shared,
    dir: PathBuf,
    path: PathBuf,
    rx: super::Inbox,
    retention: TimeDelta,
    metrics: HistoryMetrics,
) {
    let current = || shared.read().unwrap_or_else(|p| p.into_inner()).clone();
    let set = |disk: Option<Arc<Disk>>| *shared.write().unwrap_or_else(|p| p.into_inner()) = disk;
    let mut pending: Vec<Record> = Vec::new();
    let mut last_retention: Option<Instant> = None;
    let mut last_failure = current().is_none().then(Instant::now);
    let mut open = true;
    while open {
        let (mut flushes, mut jobs) = (Vec::new(), Vec::new());
        let mut take = |m| match m {
            Message::Append(t, p, change) => {
                pending.push(Record::Point(t, p));
                if let Some(c) = change {
                    pending.push(Record::Change(c));
                }
            }
            Message::Outbox(ops) => pending.extend(ops.into_iter().map(Record::Outbox)),
            Message::Flush(done) => flushes.push(done),
            Message::Run(job) => jobs.push(job),
        };
        match rx.recv_timeout(RETENTION_EVERY) {
            Ok(m) => take(m),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        while let Some(m) = rx.try_recv() {
            take(m);
        }
        if current().is_none() && last_failure.is_none_or(|at| at.elapsed() >= RETRY_EVERY || !flushes.is_empty()) {
            // The old handle must be gone before the file can be opened again.
            set(None);
            match Disk::open(&dir, &path) {
                Ok(d) => {
                    set(Some(Arc::new(d)));
                    tracing::info!(path = %path.display(), "history: the store is writable again");
                }
                Err(e) => {
                    metrics.error("open");
                    tracing::debug!(path = %path.display(), error = %e, "history: the store still cannot be opened");
                    last_failure = Some(Instant::now());
                }
            }
        }
        if let Some(d) = current()
            && !pending.is_empty()
        {
            match d.write(&pending) {
                Ok(()) => pending.clear(),
                Err(e) => {
                    metrics.error("write");
                    tracing::error!(path = %path.display(), error = %e, pending = pending.len(),
                        "history: cannot write to the store; keeping history in memory and retrying");
                    // redb refuses further use after an I/O error: reopen later.
                    drop(d);
                    set(None);
                    last_failure = Some(Instant::now());
                }
            }
        }
        if let Some(d) = current()
            && last_retention.is_none_or(|at| at.elapsed() >= RETENTION_EVERY)
        {
            let cutoff = Utc::now() - retention;
            match d.drop_before(cutoff) {
                Ok(()) => last_retention = Some(Instant::now()),
                Err(e) => {
                    metrics.error("retention");
                    tracing::warn!(error = %e, "history: cannot drop old points");
                }
            }
        }
        metrics.set_persisting(current().is_some());
        if pending.len() > PENDING_MAX {
            let excess = pending.len() - PENDING_MAX;
            pending.drain(..excess);
        }
        for done in flushes {
            let _ = done.send(());
        }
        for job in jobs {
            job();
        }
    }
    set(None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_keys_sort_by_pair_then_time() {
        let t: Target = Target::new("NG".parse().unwrap(), "NIN_V2".parse().unwrap());
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let p = Point {
            time: at,
            ok: true,
            state: AuthorityState::Interruption,
            rate_10m: Some(0.75),
            rate_1h: None,
            last_checked: Some(at - TimeDelta::minutes(3)),
        };
        assert_eq!(decode(at, &encode(&p)), Some(p.clone()));
        let k = key(&t, at);
        let (pair, back) = split_key(&k).unwrap();
        assert_eq!((parse_pair(pair), back), (Some(t.clone()), at));
        let before = DateTime::from_timestamp_millis(-5).unwrap();
        assert!(key(&t, before) < key(&t, at));
        // A pair whose name extends another's sorts after all of the other's points.
        let longer: Target = Target::new("NG".parse().unwrap(), "NIN_V2_X".parse().unwrap());
        assert!(key(&t, DateTime::<Utc>::MAX_UTC) < key(&longer, before));
        assert_eq!(decode(at, &[9; 26]), None);
        assert_eq!(decode(at, &[1; 3]), None);
    }

    /// A store written by the first release (time-first keys) is moved to the per-pair
    /// layout at open, every point kept.
    #[test]
    fn a_first_layout_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::FILE_NAME);
        let (t, at) = (Target::new("KE".parse().unwrap(), "KRA_PIN".parse().unwrap()), Utc::now());
        let at = DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap();
        {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut v1 = tx.open_table(POINTS_V1).unwrap();
                for i in 0..3 {
                    let when = at + TimeDelta::minutes(10 * i);
                    let mut k = time_key(when).to_vec();
                    k.extend_from_slice(b"KE/KRA_PIN");
                    v1.insert(k.as_slice(), encode(&Point::failed(when)).as_slice()).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let disk = Disk::open(dir.path(), &path).unwrap();
        let points = disk.points(&t, at, at + TimeDelta::hours(1)).unwrap();
        assert_eq!(
            points.iter().map(|p| p.time).collect::<Vec<_>>(),
            (0..3).map(|i| at + TimeDelta::minutes(10 * i)).collect::<Vec<_>>()
        );
        let tx = disk.db.begin_read().unwrap();
        assert!(matches!(tx.open_table(POINTS_V1), Err(TableError::TableDoesNotExist(_))));
    }

    /// The store pages its changes as memory does (the same function over a range read).
    #[test]
    fn stored_changes_page_forward_from_a_cursor_and_back_from_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path(), &dir.path().join("h.redb")).unwrap();
        let t = Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
        let batch: Vec<Record> = (1..=10)
            .map(|seq| {
                let since = DateTime::from_timestamp(1_767_225_600 + seq, 0).unwrap();
                Record::Change(Box::new(Change {
                    seq: seq as u64,
                    id: Change::id_for(&t, AuthorityState::Offline, since),
                    target: t.clone(),
                    from: AuthorityState::Online,
                    to: AuthorityState::Offline,
                    since,
                    detected: since,
                    rate_10m: None,
                    rate_1h: None,
                    last_checked: None,
                }))
            })
            .collect();
        disk.write(&batch).unwrap();
        let seqs = |q: Query| {
            let p = disk.changes(q).unwrap();
            (p.changes.iter().map(|c| c.seq).collect::<Vec<_>>(), p.more)
        };
        assert_eq!(seqs(Query { after: Some(2), before: None, limit: 3 }), (vec![5, 4, 3], true));
        assert_eq!(seqs(Query { after: None, before: None, limit: 3 }), (vec![10, 9, 8], true));
        assert_eq!(seqs(Query { after: None, before: Some(3), limit: 3 }), (vec![2, 1], false));
        assert_eq!(seqs(Query { after: Some(8), before: None, limit: 3 }), (vec![10, 9], false));
        let (last, complete) = disk.last_changes(4).unwrap();
        assert_eq!((last.iter().map(|c| c.seq).collect::<Vec<_>>(), complete), (vec![7, 8, 9, 10], false));
    }

    #[test]
    fn retention_drops_each_pairs_old_points_only() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path(), &dir.path().join("h.redb")).unwrap();
        let pairs: Vec<Target> =
            ["BVN", "BVN_MFA", "NIN"].iter().map(|i| Target::new("NG".parse().unwrap(), i.parse().unwrap())).collect();
        let t0 = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let batch: Vec<Record> = pairs
            .iter()
            .flat_map(|t| (0..10).map(move |i| Record::Point(t.clone(), Point::failed(t0 + TimeDelta::hours(i)))))
            .collect();
        disk.write(&batch).unwrap();
        disk.drop_before(t0 + TimeDelta::hours(4)).unwrap();
        for t in &pairs {
            let kept = disk.points(t, t0 - TimeDelta::days(1), t0 + TimeDelta::days(1)).unwrap();
            assert_eq!(kept.first().map(|p| p.time), Some(t0 + TimeDelta::hours(4)), "{t}");
            assert_eq!(kept.len(), 6, "{t}");
        }
        let mut seen = 0;
        disk.for_each(t0, t0 + TimeDelta::days(1), |_, _| seen += 1).unwrap();
        assert_eq!(seen, 18);
    }
}
