//! The stored changes of state: one [`Change`] per change of a pair's observed state,
//! written to the history store in the same transaction as the poll result that showed it,
//! so the event feed, the Atom feed and the webhooks' outbox all read one record that
//! survives restarts and crashes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Country, IdType};
use sha2::{Digest, Sha256};

use crate::model::{AuthorityState, Target, timestamp};

/// One change of a pair's observed state, as this exporter saw it happen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// Its place in this store's sequence of changes: the feed's cursor (`?after=`). Local
    /// to one store: replicas number the same change differently.
    pub seq: u64,
    /// The same on every replica for the same change (pair, new state, "since"): the
    /// `webhook-id` that receivers deduplicate by.
    pub id: String,
    /// The pair.
    #[serde(flatten)]
    pub target: Target,
    /// The last known state before.
    pub from: AuthorityState,
    /// The new state.
    pub to: AuthorityState,
    /// When the new state began: the provider's time of its first window.
    #[serde(with = "timestamp")]
    pub since: DateTime<Utc>,
    /// When this exporter's poll saw it.
    #[serde(with = "timestamp")]
    pub detected: DateTime<Utc>,
    /// The 10-minute success ratio (0-1) of that poll, as the provider sent it.
    pub rate_10m: Option<f64>,
    /// The 1-hour success ratio (0-1) of that poll, as the provider sent it.
    pub rate_1h: Option<f64>,
    /// The provider's `last_checked` of that poll.
    #[serde(with = "timestamp::option")]
    pub last_checked: Option<DateTime<Utc>>,
}

impl Change {
    /// The id of the change of `target` to `to` since `since`: `msg_` and 32 hex digits of a
    /// hash of exactly those, so every replica and every restart derives the same one.
    pub fn id_for(target: &Target, to: AuthorityState, since: DateTime<Utc>) -> String {
        let digest =
            Sha256::digest(format!("idauth-exporter/v1/{target}/{}/{}", to.as_str(), since.timestamp_millis()));
        let mut id = String::with_capacity(36);
        id.push_str("msg_");
        for b in &digest[..16] {
            id.push_str(&format!("{b:02x}"));
        }
        id
    }

    /// The id's 128 bits as a UUID (version 8, RFC 9562), for the Atom entry's `urn:uuid:`.
    pub fn uuid(&self) -> String {
        let hex = self.id.trim_start_matches("msg_");
        let mut b = [0u8; 16];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
        }
        uuid_v8(b)
    }

    /// Encoded for the store.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let state = |s: AuthorityState| AuthorityState::ALL.iter().position(|x| *x == s).unwrap_or(3) as u8;
        let stored = Stored {
            seq: self.seq,
            id: self.id.clone(),
            country: self.target.country.to_string(),
            id_type: self.target.id_type.to_string(),
            from: state(self.from),
            to: state(self.to),
            since: self.since.timestamp_millis(),
            detected: self.detected.timestamp_millis(),
            rate_10m: self.rate_10m,
            rate_1h: self.rate_1h,
            last_checked: self.last_checked.map(|t| t.timestamp_millis()),
        };
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    /// Decoded from the store; `None` for a record that cannot be read.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Change> {
        let s: Stored = serde_json::from_slice(bytes).ok()?;
        let state = |i: u8| AuthorityState::ALL.get(usize::from(i)).copied();
        let time = DateTime::from_timestamp_millis;
        Some(Change {
            seq: s.seq,
            id: s.id,
            target: Target::new(s.country.parse::<Country>().ok()?, s.id_type.parse::<IdType>().ok()?),
            from: state(s.from)?,
            to: state(s.to)?,
            since: time(s.since)?,
            detected: time(s.detected)?,
            rate_10m: s.rate_10m,
            rate_1h: s.rate_1h,
            last_checked: match s.last_checked {
                Some(ms) => Some(time(ms)?),
                None => None,
            },
        })
    }
}

/// A [`Change`] as the store keeps it: states by index, times in Unix milliseconds.
#[derive(Serialize, Deserialize)]
struct Stored {
    seq: u64,
    id: String,
    country: String,
    id_type: String,
    from: u8,
    to: u8,
    since: i64,
    detected: i64,
    rate_10m: Option<f64>,
    rate_1h: Option<f64>,
    last_checked: Option<i64>,
}

/// `bytes` as a UUID of version 8 (RFC 9562: custom bits), its version and variant set.
pub fn uuid_v8(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// One page of changes, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// The changes, newest first.
    pub changes: Vec<Change>,
    /// Whether changes newer than the page's newest one (asked with `after`) or older than
    /// its oldest (asked without) were left out by the limit.
    pub more: bool,
}

/// Which changes to read: those after `after` (the `limit` oldest of them: resuming walks
/// forward without a gap), else those before `before` or the newest (the `limit` newest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    /// Only changes with a greater `seq`.
    pub after: Option<u64>,
    /// Only changes with a smaller `seq`.
    pub before: Option<u64>,
    /// At most this many.
    pub limit: usize,
}

/// The page `query` asks of `all` (the changes known, in `seq` order: memory's, or a
/// store's range read, taken lazily from the end the query reads from).
pub fn page<C: std::borrow::Borrow<Change>>(all: impl DoubleEndedIterator<Item = C>, query: Query) -> Page {
    let in_range = |c: &C| {
        let seq = c.borrow().seq;
        query.after.is_none_or(|a| seq > a) && query.before.is_none_or(|b| seq < b)
    };
    let mut it: Box<dyn Iterator<Item = C>> =
        if query.after.is_some() { Box::new(all.filter(in_range)) } else { Box::new(all.rev().filter(in_range)) };
    let mut changes: Vec<Change> = it.by_ref().take(query.limit).map(|c| c.borrow().clone()).collect();
    let more = it.next().is_some();
    if query.after.is_some() {
        changes.reverse();
    }
    Page { changes, more }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: u64) -> Change {
        let target = Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
        let since = DateTime::from_timestamp(1_800_000_000 + seq as i64, 0).unwrap();
        Change {
            seq,
            id: Change::id_for(&target, AuthorityState::Online, since),
            target,
            from: AuthorityState::Offline,
            to: AuthorityState::Online,
            since,
            detected: since,
            rate_10m: Some(0.995),
            rate_1h: None,
            last_checked: Some(since),
        }
    }

    #[test]
    fn the_id_depends_on_the_pair_the_new_state_and_since_only() {
        let (a, b) = (change(1), change(1));
        assert_eq!(a.id, b.id);
        assert!(a.id.starts_with("msg_") && a.id.len() == 36, "{}", a.id);
        assert_ne!(change(2).id, a.id);
        let t = a.target.clone();
        assert_ne!(Change::id_for(&t, AuthorityState::Offline, a.since), a.id);
        let u = a.uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8", "version 8: {u}");
        assert!("89ab".contains(&u[19..20]), "RFC variant: {u}");
    }

    #[test]
    fn a_change_round_trips_through_its_stored_form() {
        let c = change(7);
        assert_eq!(Change::decode(&c.encode()), Some(c));
        assert_eq!(Change::decode(b"{not json"), None);
    }

    #[test]
    fn pages_walk_forward_from_a_cursor_and_back_from_the_newest() {
        let all: Vec<Change> = (1..=10).map(change).collect();
        let seqs = |p: &Page| p.changes.iter().map(|c| c.seq).collect::<Vec<_>>();
        let newest = page(all.iter(), Query { after: None, before: None, limit: 3 });
        assert_eq!((seqs(&newest), newest.more), (vec![10, 9, 8], true));
        let older = page(all.iter(), Query { after: None, before: Some(8), limit: 3 });
        assert_eq!(seqs(&older), vec![7, 6, 5]);
        // Resuming after 2 gives the three that follow it, newest first, and says more wait.
        let next = page(all.iter(), Query { after: Some(2), before: None, limit: 3 });
        assert_eq!((seqs(&next), next.more), (vec![5, 4, 3], true));
        let last = page(all.iter(), Query { after: Some(8), before: None, limit: 3 });
        assert_eq!((seqs(&last), last.more), (vec![10, 9], false));
        assert!(page(all.iter(), Query { after: Some(10), before: None, limit: 3 }).changes.is_empty());
    }
}
