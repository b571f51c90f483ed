//! The changes of state for other programs: `/api/v1/events` (JSON, read forward from a
//! cursor) and `/feed.atom` (an Atom 1.0 feed of the newest changes, for feed readers and
//! chat tools), both over the [`Change`]s the history stores (one per change of a pair's
//! observed state, surviving restarts).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use hyper::{HeaderMap, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::Site;
use super::http::{Body, compressible, text};
use crate::history::events::{Change, Page, Query};
use crate::model::{AuthorityState, Rate, timestamp};

/// `limit` of `/api/v1/events` when none is given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` of `/api/v1/events`.
pub const MAX_LIMIT: usize = 1000;
/// The changes in `/feed.atom`: the newest ones.
pub const FEED_ENTRIES: usize = 50;
/// The feed's content type.
pub const ATOM: &str = "application/atom+xml; charset=utf-8";
/// The feed's title.
pub const FEED_TITLE: &str = "ID authority changes";

const PLAIN: &str = "text/plain; charset=utf-8";

/// Parses the query of `/api/v1/events`: `after`, `before` (a change's `seq`) and `limit`
/// (1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent); other parameters are ignored, as
/// `/api/v1/history` ignores them. The error names the parameter and what it takes.
pub fn parse_events_query(query: &str) -> Result<Query, String> {
    let mut q = Query { after: None, before: None, limit: DEFAULT_LIMIT };
    // Decoded as browsers and curl encode a query, as /api/v1/history does.
    for (key, v) in form_urlencoded::parse(query.as_bytes()) {
        let seq = |name: &str| {
            v.parse::<u64>().map_err(|_| {
                format!("{name} must be an event's seq (a whole number such as {name}=1765000000000), not {v:?}")
            })
        };
        match key.as_ref() {
            "after" => q.after = Some(seq("after")?),
            "before" => q.before = Some(seq("before")?),
            "limit" => {
                q.limit = v.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                    format!("limit must be a whole number from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}), not {v:?}")
                })?;
            }
            _ => {}
        }
    }
    Ok(q)
}

/// The body of `/api/v1/events`: `{"events": [...], "more": bool}`, newest first.
pub fn events_json(page: &Page) -> String {
    // Serialised as declared (not through a `Value`, whose keys come out sorted): each
    // event reads `seq`, `id`, the pair, `from`, `to`, then the times and rates.
    #[derive(serde::Serialize)]
    struct Events<'a> {
        events: &'a [Change],
        more: bool,
    }
    serde_json::to_string(&Events { events: &page.changes, more: page.more }).unwrap_or_default()
}

/// `GET /api/v1/events?after=SEQ&before=SEQ&limit=N`: the stored changes of state, newest
/// first, as `{"events": [...], "more": bool}`; each event is a [`Change`] (`seq`, `id`,
/// `country`, `id_type`, `from`, `to`, `since`, `detected`, `rate_10m`, `rate_1h`,
/// `last_checked`).
///
/// Cursor semantics: `seq` grows with every change this exporter's store records (it is at
/// least the detection time in Unix milliseconds, and local to one store: each replica
/// numbers the same change differently; `id` is the same everywhere). A client reading
/// every change keeps the greatest `seq` it has seen and asks `?after=<that seq>`: the
/// answer is the `limit` oldest changes after it (newest first, so the greatest `seq` of
/// the answer is the next cursor), and `more` is true while newer ones were left out: it
/// asks again at once until `more` is false, then whenever it wants news. Resuming this
/// way never skips a change. Without `after`, the answer is the newest `limit` changes
/// (before `before`, when given, to page back through older ones), and `more` says that
/// older ones were left out.
///
/// 400 for a malformed parameter (named in the message), 503 while there is no history
/// or when the store cannot be read.
pub(super) fn events(site: &Site, query: &str, headers: &HeaderMap) -> Response<Body> {
    let q = match parse_events_query(query) {
        Ok(q) => q,
        Err(e) => return text(StatusCode::BAD_REQUEST, PLAIN, format!("{e}\n")),
    };
    match read(site, q) {
        Ok(page) => compressible("application/json", events_json(&page), headers),
        Err((status, message)) => text(status, PLAIN, message),
    }
}

/// `GET /feed.atom`: the newest [`FEED_ENTRIES`] changes as an Atom 1.0 feed.
pub(super) fn feed(site: &Site, headers: &HeaderMap) -> Response<Body> {
    match read(site, Query { after: None, before: None, limit: FEED_ENTRIES }) {
        Ok(page) => compressible(ATOM, atom(&page.changes, site.clock.now()), headers),
        Err((status, message)) => text(status, PLAIN, message),
    }
}

fn read(site: &Site, q: Query) -> Result<Page, (StatusCode, String)> {
    let Some(history) = site.store.history() else {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "history is not started yet\n".to_owned()));
    };
    history.changes(q).map_err(|e| {
        tracing::warn!(error = %e, "events: cannot read the stored changes");
        (StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the stored changes: {e}\n"))
    })
}

/// Escapes text for XML content and attribute values; drops the characters XML 1.0 cannot
/// hold at all (control characters other than tab and newlines).
pub fn xml_escape(s: &str) -> String {
    let allowed =
        |c: &char| matches!(c, '\t' | '\n' | '\r') || !((*c as u32) < 0x20 || *c == '\u{fffe}' || *c == '\u{ffff}');
    // HTML's five escapes are XML's (`&#39;` is as good as `&apos;`).
    super::http::html_escape(&s.chars().filter(allowed).collect::<String>())
}

/// The feed's id: a UUID (version 8) of a fixed name, the same on every replica and
/// across restarts, so that a reader behind a load balancer sees one feed.
pub fn feed_id() -> String {
    let digest = Sha256::digest(b"idauth-exporter/v1/feed.atom");
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    format!("urn:uuid:{}", crate::history::events::uuid_v8(b))
}

/// What a pair now is, in a title: `is offline`, `is back online`, `has an interruption`.
fn now_is(s: AuthorityState) -> &'static str {
    match s {
        AuthorityState::Online => "is back online",
        AuthorityState::Interruption => "has an interruption",
        AuthorityState::Offline => "is offline",
        AuthorityState::Unknown => "is unknown",
    }
}

/// What a pair was: `was online`, `had an interruption`.
fn was(s: AuthorityState) -> &'static str {
    match s {
        AuthorityState::Online => "was online",
        AuthorityState::Interruption => "had an interruption",
        AuthorityState::Offline => "was offline",
        AuthorityState::Unknown => "was unknown",
    }
}

/// An entry's title: `NG BVN is offline (was online)`, `NG BVN is back online (was offline)`.
pub fn entry_title(c: &Change) -> String {
    format!("{} {} {} ({})", c.target.country, c.target.id_type, now_is(c.to), was(c.from))
}

fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn rate(r: Option<f64>) -> String {
    r.and_then(Rate::from_f64).map_or("unknown".to_owned(), Rate::percent)
}

/// An entry's summary: since, detected, the rates as percentages and `last_checked`.
pub fn entry_summary(c: &Change) -> String {
    format!(
        "{} {}: {} since {} (detected {}). Success rate {} over the last 10 minutes, {} over the last hour. \
         Provider last checked {}.",
        c.target.country,
        c.target.id_type,
        c.to,
        when(&c.since),
        when(&c.detected),
        rate(c.rate_10m),
        rate(c.rate_1h),
        c.last_checked.as_ref().map_or("unknown".to_owned(), when),
    )
}

/// The Atom 1.0 feed of `changes` (newest first). Its `updated` is the newest change's
/// detection time, or `now` when there is none. Links are relative (`feed.atom`, `./`),
/// resolved against the feed's own address, so they hold behind a proxy that moves it.
pub fn atom(changes: &[Change], now: DateTime<Utc>) -> String {
    let updated = changes.iter().map(|c| c.detected).max().unwrap_or(now);
    let mut xml = String::with_capacity(1024 + changes.len() * 1024);
    let _ = write!(
        xml,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <id>{id}</id>\n\
         <title>{title}</title>\n\
         <subtitle>Changes of state of the government ID authorities behind Smile ID, as idauth-exporter saw them</subtitle>\n\
         <updated>{updated}</updated>\n\
         <author><name>idauth-exporter</name></author>\n\
         <generator version=\"{version}\">idauth-exporter</generator>\n\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"feed.atom\"/>\n\
         <link rel=\"alternate\" type=\"text/html\" href=\"./\"/>\n",
        id = feed_id(),
        title = FEED_TITLE,
        updated = timestamp::format(&updated),
        version = env!("CARGO_PKG_VERSION"),
    );
    for c in changes {
        let detected = timestamp::format(&c.detected);
        let pair = format!("{}/{}", c.target.country, c.target.id_type);
        let _ = write!(
            xml,
            "<entry>\n\
             <id>urn:uuid:{uuid}</id>\n\
             <title>{title}</title>\n\
             <updated>{detected}</updated>\n\
             <published>{detected}</published>\n\
             <link rel=\"alternate\" type=\"text/html\" href=\"./#{anchor}\"/>\n\
             <category term=\"{pair}\"/>\n\
             <category term=\"{to}\"/>\n\
             <summary type=\"text\">{summary}</summary>\n\
             </entry>\n",
            uuid = xml_escape(&c.uuid()),
            title = xml_escape(&entry_title(c)),
            anchor = xml_escape(&format!("{}-{}", c.target.country, c.target.id_type)),
            pair = xml_escape(&pair),
            to = c.to,
            summary = xml_escape(&entry_summary(c)),
        );
    }
    xml.push_str("</feed>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Target;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn change(seq: u64, from: AuthorityState, to: AuthorityState) -> Change {
        let target = Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
        let since = at("2026-12-06T14:03:11Z");
        Change {
            seq,
            id: Change::id_for(&target, to, since),
            target,
            from,
            to,
            since,
            detected: at("2026-12-06T14:04:12.250Z"),
            rate_10m: Some(0.0),
            rate_1h: Some(0.455),
            last_checked: Some(since),
        }
    }

    #[test]
    fn events_queries_parse_with_their_defaults_and_name_what_is_wrong() {
        assert_eq!(parse_events_query(""), Ok(Query { after: None, before: None, limit: DEFAULT_LIMIT }));
        assert_eq!(
            parse_events_query("after=17&limit=1000&before=%32%30&other=x"),
            Ok(Query { after: Some(17), before: Some(20), limit: 1000 })
        );
        for (bad, named) in [
            ("after=abc", "after"),
            ("after=-1", "after"),
            ("after=", "after"),
            ("before=1.5", "before"),
            ("after=99999999999999999999999", "after"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
        ] {
            let e = parse_events_query(bad).unwrap_err();
            assert!(e.starts_with(&format!("{named} must be")), "{bad}: {e}");
        }
        assert!(parse_events_query("limit=0").unwrap_err().contains("from 1 to 1000"));
    }

    #[test]
    fn events_are_listed_newest_first_with_more() {
        let page = Page {
            changes: vec![
                change(5, AuthorityState::Offline, AuthorityState::Online),
                change(4, AuthorityState::Online, AuthorityState::Offline),
            ],
            more: true,
        };
        let v: serde_json::Value = serde_json::from_str(&events_json(&page)).unwrap();
        assert_eq!(v["more"], true);
        let e = &v["events"][0];
        assert_eq!(
            (e["seq"].as_u64(), e["country"].as_str(), e["id_type"].as_str()),
            (Some(5), Some("NG"), Some("BVN"))
        );
        assert_eq!((e["from"].as_str(), e["to"].as_str()), (Some("offline"), Some("online")));
        assert_eq!(e["detected"], "2026-12-06T14:04:12.250Z");
        assert!(e["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(v["events"][1]["seq"], 4);
        assert_eq!(events_json(&Page::default()), r#"{"events":[],"more":false}"#);
    }

    #[test]
    fn titles_say_what_the_authority_is_and_was() {
        use AuthorityState::*;
        assert_eq!(entry_title(&change(1, Online, Offline)), "NG BVN is offline (was online)");
        assert_eq!(entry_title(&change(1, Offline, Online)), "NG BVN is back online (was offline)");
        assert_eq!(entry_title(&change(1, Online, Interruption)), "NG BVN has an interruption (was online)");
        assert_eq!(entry_title(&change(1, Interruption, Online)), "NG BVN is back online (had an interruption)");
        assert_eq!(
            entry_summary(&change(1, Online, Offline)),
            "NG BVN: offline since 2026-12-06 14:03:11 UTC (detected 2026-12-06 14:04:12 UTC). Success rate 0% \
             over the last 10 minutes, 45.5% over the last hour. Provider last checked 2026-12-06 14:03:11 UTC."
        );
        let mut c = change(1, Online, Offline);
        (c.rate_10m, c.rate_1h, c.last_checked) = (None, None, None);
        assert!(entry_summary(&c).ends_with(
            "Success rate unknown over the last 10 minutes, unknown over the last hour. Provider last checked unknown."
        ));
    }

    #[test]
    fn the_feed_is_atom_with_an_entry_per_change() {
        use AuthorityState::*;
        let now = at("2026-12-07T00:00:00Z");
        let changes = [change(2, Offline, Online), change(1, Online, Offline)];
        let xml = atom(&changes, now);
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">")
        );
        assert!(xml.contains(&format!("<id>{}</id>", feed_id())));
        assert!(xml.contains("<title>ID authority changes</title>"));
        assert!(xml.contains("<updated>2026-12-06T14:04:12.250Z</updated>\n<author>"), "the newest change's detection");
        assert!(xml.contains("<link rel=\"self\" type=\"application/atom+xml\" href=\"feed.atom\"/>"));
        assert!(xml.contains("<link rel=\"alternate\" type=\"text/html\" href=\"./\"/>"));
        assert_eq!(xml.matches("<entry>").count(), 2);
        assert_eq!(xml.matches("</entry>").count(), 2);
        let first = &xml[xml.find("<entry>").unwrap()..];
        assert!(first.starts_with(&format!(
            "<entry>\n<id>urn:uuid:{}</id>\n<title>NG BVN is back online (was offline)</title>",
            changes[0].uuid()
        )));
        assert!(first.contains("<published>2026-12-06T14:04:12.250Z</published>"));
        assert!(first.contains("href=\"./#NG-BVN\""));
        assert!(first.contains("<category term=\"NG/BVN\"/>\n<category term=\"online\"/>"));
        assert!(xml.ends_with("</entry>\n</feed>\n"));
        // Every element opened is closed, in order (a crude well-formedness check).
        let mut open = Vec::new();
        for tag in xml.split('<').skip(2) {
            let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '/').collect();
            let self_closing = tag.split('>').next().unwrap().ends_with('/');
            match name.strip_prefix('/') {
                Some(closed) => assert_eq!(open.pop().as_deref(), Some(closed), "{xml}"),
                None if !self_closing => open.push(name),
                None => {}
            }
        }
        assert!(open.is_empty(), "{open:?}");
        // No change: updated is now, no entry.
        let empty = atom(&[], now);
        assert!(empty.contains("<updated>2026-12-07T00:00:00.000Z</updated>") && !empty.contains("<entry>"));
    }

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(xml_escape("a<b>&\"c'\u{1}d\te"), "a&lt;b&gt;&amp;&quot;c&#39;d\te");
        assert_eq!(xml_escape("NG BVN · 99%"), "NG BVN · 99%");
    }

    #[test]
    fn the_feed_id_is_fixed_and_a_uuid() {
        let id = feed_id();
        assert_eq!(id, feed_id());
        let uuid = id.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "8");
    }
}
