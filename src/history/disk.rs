//! The database side of [`super::History`]: redb, one table keyed by time then pair.

use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use redb::{Database, ReadableDatabase, TableDefinition};

use super::{Message, Point};
use crate::metrics::HistoryMetrics;
use crate::model::{AuthorityState, Target};

/// Key: the time (big-endian milliseconds, sign bit flipped so that byte order is time
/// order) then the pair as `CC/ID_TYPE`; value: [`encode`]d point. Time first makes
/// retention one range deletion.
const POINTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("points_v1");
/// How often retention runs (and at open).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// How long after a failure the writer tries the database again.
const RETRY_EVERY: Duration = Duration::from_secs(30);
/// Results kept for the database while it fails, written when it works again.
const PENDING_MAX: usize = 100_000;

pub(super) struct Disk {
    db: Database,
}

fn key(at: DateTime<Utc>, target: Option<&Target>) -> Vec<u8> {
    let mut k = ((at.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    if let Some(t) = target {
        k.extend_from_slice(t.to_string().as_bytes());
    }
    k
}

fn parse_key(k: &[u8]) -> Option<(DateTime<Utc>, Target)> {
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
    /// Opens or creates the database; `None` (logged and counted) when it cannot be used.
    pub(super) fn open(dir: &Path, path: &Path, metrics: &HistoryMetrics) -> Option<Disk> {
        let opened = std::fs::create_dir_all(dir)
            .map_err(redb::Error::Io)
            // A small cache: the whole store is a few MiB, and memory limits are tight.
            .and_then(|()| Database::builder().set_cache_size(16 << 20).create(path).map_err(redb::Error::from))
            .and_then(|db| {
                // Creating the table at once proves the file writable.
                let tx = db.begin_write()?;
                tx.open_table(POINTS)?;
                tx.commit()?;
                Ok(db)
            });
        match opened {
            Ok(db) => Some(Disk { db }),
            Err(e) => {
                metrics.error("open");
                tracing::error!(path = %path.display(), error = %e,
                    "history: cannot open the store; keeping history in memory only (it will not survive a restart)");
                None
            }
        }
    }

    /// Every point at or after `cutoff`, and how many records could not be read.
    pub(super) fn load(&self, cutoff: DateTime<Utc>) -> Result<(Vec<(Target, Point)>, usize), redb::Error> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(POINTS)?;
        let (mut points, mut bad) = (Vec::new(), 0);
        for row in table.range(key(cutoff, None).as_slice()..)? {
            let (k, v) = row?;
            match parse_key(k.value()).and_then(|(at, t)| Some((t, decode(at, v.value())?))) {
                Some(p) => points.push(p),
                None => bad += 1,
            }
        }
        Ok((points, bad))
    }

    fn write(&self, batch: &[(Target, Point)]) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(POINTS)?;
            for (t, p) in batch {
                table.insert(key(p.time, Some(t)).as_slice(), encode(p).as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn drop_before(&self, cutoff: DateTime<Utc>) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(POINTS)?;
            table.retain_in(..key(cutoff, None).as_slice(), |_, _| false)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// The writer thread: batches what arrives, writes it, enforces retention; on failure
/// keeps results pending (bounded), counts and logs, and reopens the database later.
pub(super) fn writer(
    mut db: Option<Disk>,
    dir: PathBuf,
    path: PathBuf,
    rx: super::Inbox,
    retention: TimeDelta,
    metrics: HistoryMetrics,
) {
    let mut pending: Vec<(Target, Point)> = Vec::new();
    let mut last_retention: Option<Instant> = None;
    let mut last_failure = db.is_none().then(Instant::now);
    let mut open = true;
    while open {
        let mut flushes = Vec::new();
        match rx.recv_timeout(RETENTION_EVERY) {
            Ok(Message::Append(t, p)) => pending.push((t, p)),
            Ok(Message::Flush(done)) => flushes.push(done),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        while let Some(m) = rx.try_recv() {
            match m {
                Message::Append(t, p) => pending.push((t, p)),
                Message::Flush(done) => flushes.push(done),
            }
        }
        if db.is_none() && last_failure.is_none_or(|at| at.elapsed() >= RETRY_EVERY || !flushes.is_empty()) {
            db = Disk::open(&dir, &path, &metrics);
            match &db {
                Some(_) => tracing::info!(path = %path.display(), "history: the store is writable again"),
                None => last_failure = Some(Instant::now()),
            }
        }
        if let Some(d) = &db
            && !pending.is_empty()
        {
            {
                match d.write(&pending) {
                    Ok(()) => pending.clear(),
                    Err(e) => {
                        metrics.error("write");
                        tracing::error!(path = %path.display(), error = %e, pending = pending.len(),
                            "history: cannot write to the store; keeping history in memory and retrying");
                        // redb refuses further use after an I/O error: reopen later.
                        db = None;
                        last_failure = Some(Instant::now());
                    }
                }
            }
        }
        if let Some(d) = &db
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
        metrics.set_persisting(db.is_some());
        if pending.len() > PENDING_MAX {
            let excess = pending.len() - PENDING_MAX;
            pending.drain(..excess);
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_keys_sort_by_time() {
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
        assert_eq!(parse_key(&key(at, Some(&t))), Some((at, t.clone())));
        let before = DateTime::from_timestamp_millis(-5).unwrap();
        assert!(key(before, Some(&t)) < key(at, None));
        assert!(key(at, None) < key(at, Some(&t)));
        assert_eq!(decode(at, &[9; 26]), None);
        assert_eq!(decode(at, &[1; 3]), None);
    }
}
