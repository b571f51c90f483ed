//! The changes of state over HTTP: `/api/v1/events` (paging forward from a cursor and back
//! from the newest, 400s that name the parameter), `/feed.atom`, the badges, and the
//! status page's links to them, served by the exporter's own handler over a store fed
//! eight days of polls at times set by a manual clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use idauth_exporter::history::events::{Change, Query};
use idauth_exporter::history::{History, HistoryMetrics, timeline};
use idauth_exporter::metrics::Metrics;
use idauth_exporter::model::{AuthorityState, Clock, ManualClock, Observation, Rate, Target};
use idauth_exporter::store::Store;
use idauth_exporter::web::{self, badge, feed};
use tokio_util::sync::CancellationToken;

fn target(c: &str, i: &str) -> Target {
    Target::new(c.parse().unwrap(), i.parse().unwrap())
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const END: &str = "2026-12-09T00:00:00Z";

fn poll(store: &Store, t: &Target, when: DateTime<Utc>, state: AuthorityState) {
    let rate = match state {
        AuthorityState::Online => 0.985,
        AuthorityState::Interruption => 0.7,
        _ => 0.125,
    };
    let o = Observation {
        state,
        unrecognized_status: None,
        rate_10m: Rate::from_f64(rate),
        rate_1h: Rate::from_f64(rate),
        last_checked: Some(when - TimeDelta::seconds(50)),
    };
    store.record_success(t, o, when);
}

/// Eight days of polls every 10 minutes until [`END`]: NG BVN online but for 12 hours
/// offline; NG NIN_V2 changing every half hour for the last 4 days, ending offline; GH
/// GHANA_CARD online, then in interruption for its last hour; KE KRA_PIN never polled.
struct Served {
    url: String,
    store: Arc<Store>,
    stop: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    /// Stops serving and waits until the server has let go of the site (and its history).
    async fn shut_down(mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(store: Arc<Store>, now: DateTime<Utc>) -> Served {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now));
    let metrics = Arc::new(Metrics::new("test", now));
    let site = web::Site::new(store.clone(), metrics, clock, Arc::new(|| Box::pin(async { Ok(()) })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let server = Some(tokio::spawn(web::http::serve(listener, web::handler(site), stop.clone())));
    idauth_exporter::tls::install_crypto_provider();
    Served { url, store, stop, server }
}

async fn exporter() -> Served {
    let end = at(END);
    let (bvn, nin, gh, kra) =
        (target("NG", "BVN"), target("NG", "NIN_V2"), target("GH", "GHANA_CARD"), target("KE", "KRA_PIN"));
    let store = Arc::new(Store::new(&[bvn.clone(), nin.clone(), gh.clone(), kra]));
    let history = History::in_memory(Duration::from_secs(30 * 86_400), HistoryMetrics::default());
    store.attach_history(Arc::new(history), end - TimeDelta::days(8));
    let start = end - TimeDelta::days(8);
    for i in 0..8 * 144 {
        let when = start + TimeDelta::minutes(10 * i);
        let left = end - when;
        let bvn_state = if (TimeDelta::days(3)..TimeDelta::days(3) + TimeDelta::hours(12)).contains(&left) {
            AuthorityState::Offline
        } else {
            AuthorityState::Online
        };
        poll(&store, &bvn, when, bvn_state);
        let nin_state = if left <= TimeDelta::days(4) && (i / 3) % 2 == 1 || left <= TimeDelta::minutes(30) {
            AuthorityState::Offline
        } else {
            AuthorityState::Online
        };
        poll(&store, &nin, when, nin_state);
        let gh_state = if left <= TimeDelta::hours(1) { AuthorityState::Interruption } else { AuthorityState::Online };
        poll(&store, &gh, when, gh_state);
    }
    serve(store, end).await
}

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = reqwest::get(url).await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

fn seqs(v: &serde_json::Value) -> Vec<u64> {
    v["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn events_page_forward_from_a_cursor_and_back_from_the_newest() {
    let s = exporter().await;
    let all = s.store.history().unwrap().changes(Query { after: None, before: None, limit: 10_000 }).unwrap();
    assert!(all.changes.len() > 150, "{} changes", all.changes.len());
    let newest_first: Vec<u64> = all.changes.iter().map(|c| c.seq).collect();

    let (status, headers, body) = get(&format!("{}/api/v1/events", s.url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seqs(&v), newest_first[..feed::DEFAULT_LIMIT], "the newest 100, newest first");
    assert_eq!(v["more"], true);
    // Each event's fields in the order declared.
    let first = &body[..body.find('}').unwrap()];
    let keys =
        ["seq", "id", "country", "id_type", "from", "to", "since", "detected", "rate_10m", "rate_1h", "last_checked"];
    let positions: Vec<usize> = keys.iter().map(|k| first.find(&format!("\"{k}\":")).expect(k)).collect();
    assert!(first.starts_with("{\"events\":[{\"seq\":") && positions.is_sorted(), "{first}");
    // NG NIN_V2 went offline for the last 30 minutes; GH GHANA_CARD went into interruption
    // an hour before the end.
    let e = &v["events"][0];
    assert_eq!(
        (e["country"].as_str(), e["id_type"].as_str(), e["from"].as_str(), e["to"].as_str()),
        (Some("NG"), Some("NIN_V2"), Some("online"), Some("offline"))
    );
    assert_eq!(
        (e["detected"].as_str(), e["since"].as_str()),
        (Some("2026-12-08T23:30:00.000Z"), Some("2026-12-08T23:29:10.000Z"))
    );
    assert_eq!((e["rate_10m"].as_f64(), e["last_checked"].as_str()), (Some(0.125), Some("2026-12-08T23:29:10.000Z")));
    assert!(e["id"].as_str().unwrap().starts_with("msg_") && e["id"].as_str().unwrap().len() == 36);
    let e = &v["events"][1];
    assert_eq!(
        (e["country"].as_str(), e["to"].as_str(), e["detected"].as_str()),
        (Some("GH"), Some("interruption"), Some("2026-12-08T23:00:00.000Z"))
    );

    // A client that has seen nothing reads everything, 7 at a time, oldest first, without a
    // gap: each answer's greatest seq is the next cursor.
    let (mut cursor, mut read, mut asked) = (0u64, Vec::<u64>::new(), 0);
    loop {
        let (status, _, body) = get(&format!("{}/api/v1/events?after={cursor}&limit=7", s.url)).await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let page = seqs(&v);
        assert!(page.len() <= 7 && page.iter().all(|q| *q > cursor), "{page:?} after {cursor}");
        assert!(page.windows(2).all(|w| w[0] > w[1]), "newest first: {page:?}");
        read.extend(page.iter().rev());
        asked += 1;
        if v["more"] == false {
            break;
        }
        cursor = page[0];
    }
    let oldest_first: Vec<u64> = newest_first.iter().rev().copied().collect();
    assert_eq!(read, oldest_first);
    assert_eq!(asked, oldest_first.len().div_ceil(7));
    // Caught up: nothing after the greatest seq.
    let (_, _, body) = get(&format!("{}/api/v1/events?after={}", s.url, newest_first[0])).await;
    assert_eq!(body, r#"{"events":[],"more":false}"#);

    // Back from the newest with before=.
    let (_, _, body) = get(&format!("{}/api/v1/events?limit=3&before={}", s.url, newest_first[9])).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((seqs(&v), &v["more"]), (newest_first[10..13].to_vec(), &serde_json::Value::Bool(true)));
    let (_, _, body) = get(&format!("{}/api/v1/events?limit=1000&before={}", s.url, newest_first[9])).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((seqs(&v), &v["more"]), (newest_first[10..].to_vec(), &serde_json::Value::Bool(false)));
}

#[tokio::test]
async fn a_bad_parameter_is_a_400_that_names_it() {
    let s = exporter().await;
    for (query, named) in [
        ("after=yesterday", "after must be an event's seq"),
        ("before=-3", "before must be an event's seq"),
        ("limit=0", "limit must be a whole number from 1 to 1000"),
        ("limit=1001", "limit must be a whole number from 1 to 1000"),
    ] {
        let (status, headers, body) = get(&format!("{}/api/v1/events?{query}", s.url)).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        assert!(body.starts_with(named), "{query}: {body}");
    }
}

#[tokio::test]
async fn the_feed_holds_the_newest_50_changes() {
    let s = exporter().await;
    let newest = s.store.history().unwrap().changes(Query { after: None, before: None, limit: 50 }).unwrap().changes;
    let (status, headers, xml) = get(&format!("{}/feed.atom", s.url)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/atom+xml; charset=utf-8");
    assert_eq!(xml.matches("<entry>").count(), 50);
    assert_eq!(xml, feed::atom(&newest, at(END)));
    let ids: Vec<&str> = xml.match_indices("<id>urn:uuid:").map(|(i, _)| &xml[i + 13..i + 49]).collect();
    let want: Vec<String> = newest.iter().map(Change::uuid).collect();
    assert_eq!(ids[1..], want, "the feed's id, then each entry's, newest first");
    assert!(xml.contains("<title>GH GHANA_CARD has an interruption (was online)</title>"), "{xml}");
    assert!(xml.contains("<title>NG NIN_V2 is offline (was online)</title>"), "{xml}");
    assert!(xml.contains("<updated>2026-12-08T23:30:00.000Z</updated>\n<author>"), "the newest change's detection");
}

#[tokio::test]
async fn head_works_and_other_methods_are_refused() {
    let s = exporter().await;
    let http = reqwest::Client::new();
    for path in ["/api/v1/events", "/feed.atom", "/badge/NG/BVN.svg"] {
        let resp = http.head(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "HEAD {path}");
        assert!(resp.text().await.unwrap().is_empty());
        for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
            let resp = http.request(method.clone(), format!("{}{path}", s.url)).send().await.unwrap();
            assert_eq!(resp.status(), 405, "{method} {path}");
            assert_eq!(resp.headers()["allow"], "GET, HEAD");
        }
    }
    let resp = http.post(format!("{}/badge/nothing", s.url)).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn badges_show_state_and_uptime_in_their_colour() {
    let s = exporter().await;
    let end = at(END);
    let bvn = target("NG", "BVN");
    let ratio = timeline::uptime_of(&s.store.segments(&bvn, end - TimeDelta::days(7), end).unwrap()).ratio.unwrap();
    // 12 hours offline in 7 days: 92.86%, shown as 92.9%.
    assert!((ratio - (1.0 - 12.0 / 168.0)).abs() < 0.002, "{ratio}");
    let (status, headers, svg) = get(&format!("{}/badge/NG/BVN.svg", s.url)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/svg+xml");
    assert_eq!(headers["cache-control"], "public, max-age=60");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let value = format!("online · {} 7d", badge::uptime_text(ratio));
    assert_eq!(value, "online · 92.9% 7d");
    assert_eq!(svg, badge::svg("NG BVN", &value, "#4c1", "NG BVN: online, 92.9% uptime over 7 days"));
    // Lower case is the same pair.
    assert_eq!(get(&format!("{}/badge/ng/bvn.svg", s.url)).await.2, svg);

    for (path, colour, text) in [
        ("NG/NIN_V2", "#e05d44", ">offline · "),
        ("GH/GHANA_CARD", "#fe7d37", ">interruption · 99.4% 7d<"),
        ("KE/KRA_PIN", "#9f9f9f", ">unknown<"),
    ] {
        let (status, _, svg) = get(&format!("{}/badge/{path}.svg", s.url)).await;
        assert_eq!(status, 200, "{path}");
        assert!(svg.contains(&format!("fill=\"{colour}\"/>")) && svg.contains(text), "{path}: {svg}");
    }
    // Not watched, or no pair at all: 404, and a grey badge that says so.
    for (path, label) in [
        ("/badge/KE/NATIONAL_ID.svg", "KE NATIONAL_ID"),
        ("/badge/XX/BVN.svg", "ID authority"),
        ("/badge/NG/BVN.png", "ID authority"),
        ("/badge/NG/<script>.svg", "ID authority"),
    ] {
        let (status, headers, svg) = get(&format!("{}{path}", s.url)).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(headers["content-type"], "image/svg+xml");
        assert!(svg.contains(&format!(">{label}</text>")) && svg.contains(">not watched</text>"), "{path}: {svg}");
        assert!(svg.contains("fill=\"#9f9f9f\"/>") && !svg.contains("<script"), "{svg}");
    }
}

#[tokio::test]
async fn the_status_page_links_to_the_feed_and_each_badge() {
    let s = exporter().await;
    let (status, headers, page) = get(&format!("{}/", s.url)).await;
    assert_eq!(status, 200);
    assert!(headers["content-security-policy"].to_str().unwrap().contains("img-src 'self'"));
    assert!(page.contains(r#"<link rel="alternate" type="application/atom+xml" href="/feed.atom""#), "{page}");
    assert!(page.contains(r#"<a href="/feed.atom" class="feed">Atom feed</a>"#));
    assert!(page.contains(r#"<a href="/api/v1/events">"#));
    for (c, i) in [("NG", "BVN"), ("NG", "NIN_V2"), ("GH", "GHANA_CARD"), ("KE", "KRA_PIN")] {
        assert!(page.contains(&format!(r#"id="{c}-{i}""#)), "the feed's entries link to #{c}-{i}");
        assert!(page.contains(&format!(r#"<a class="badge" href="/badge/{c}/{i}.svg""#)), "{c} {i}");
    }
}

/// Before the history is attached (a long replay at start): 503, as /api/v1/history; the
/// landing page lists the endpoints; the badges need no history.
#[tokio::test]
async fn without_a_history_the_changes_are_unavailable() {
    let bvn = target("NG", "BVN");
    let store = Arc::new(Store::new(std::slice::from_ref(&bvn)));
    poll(&store, &bvn, at(END) - TimeDelta::minutes(10), AuthorityState::Online);
    let s = serve(store, at(END)).await;
    for path in ["/api/v1/events", "/feed.atom"] {
        let (status, _, body) = get(&format!("{}{path}", s.url)).await;
        assert_eq!((status, body.as_str()), (503, "history is not started yet\n"), "{path}");
    }
    let (_, _, landing) = get(&format!("{}/", s.url)).await;
    assert!(
        landing.contains(r#"<a href="/api/v1/events">"#) && landing.contains(r#"<a href="/feed.atom">"#),
        "{landing}"
    );
    assert!(landing.contains("/badge/NG/BVN.svg"));
    let (status, _, svg) = get(&format!("{}/badge/NG/BVN.svg", s.url)).await;
    assert_eq!(status, 200);
    assert!(svg.contains(">online · 100% 7d</text>"), "{svg}");
}

/// An empty store: a valid feed with no entry, updated now.
#[tokio::test]
async fn a_feed_with_no_change_yet() {
    let store = Arc::new(Store::new(&[target("NG", "BVN")]));
    store.attach_history(Arc::new(History::in_memory(Duration::from_secs(86_400), HistoryMetrics::default())), at(END));
    let s = serve(store, at(END)).await;
    let (status, _, xml) = get(&format!("{}/feed.atom", s.url)).await;
    assert_eq!(status, 200);
    assert!(!xml.contains("<entry>") && xml.contains("<updated>2026-12-09T00:00:00.000Z</updated>"), "{xml}");
    assert_eq!(get(&format!("{}/api/v1/events", s.url)).await.2, r#"{"events":[],"more":false}"#);
}

/// The changes are kept in the history store: after a restart, the events and the feed are
/// the same, with the same seqs and ids, and a client resumes from its cursor.
#[tokio::test]
async fn the_changes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let nin = target("NG", "NIN_V2");
    let end = at(END);
    let before = {
        let history = Arc::new(History::open(dir.path(), Duration::from_secs(30 * 86_400), HistoryMetrics::default()));
        let store = Arc::new(Store::new(std::slice::from_ref(&nin)));
        store.attach_history(history.clone(), end - TimeDelta::days(1));
        for i in 0..144 {
            let state = if (i / 6) % 2 == 0 { AuthorityState::Online } else { AuthorityState::Offline };
            poll(&store, &nin, end - TimeDelta::days(1) + TimeDelta::minutes(10 * i), state);
        }
        assert!(history.flush(Duration::from_secs(10)));
        let s = serve(store, end).await;
        let events = get(&format!("{}/api/v1/events?limit=1000", s.url)).await.2;
        let atom = get(&format!("{}/feed.atom", s.url)).await.2;
        // The exporter stops: nothing holds the store any more.
        s.shut_down().await;
        (events, atom)
    };
    let history = Arc::new(History::open(dir.path(), Duration::from_secs(30 * 86_400), HistoryMetrics::default()));
    let store = Arc::new(Store::new(std::slice::from_ref(&nin)));
    store.attach_history(history, end);
    let s = serve(store, end).await;
    let events = get(&format!("{}/api/v1/events?limit=1000", s.url)).await.2;
    assert_eq!(events, before.0);
    let v: serde_json::Value = serde_json::from_str(&events).unwrap();
    assert_eq!(seqs(&v).len(), 23, "a change every hour but the first");
    assert_eq!(get(&format!("{}/feed.atom", s.url)).await.2, before.1);
    let cursor = seqs(&v)[5];
    let after: serde_json::Value =
        serde_json::from_str(&get(&format!("{}/api/v1/events?after={cursor}", s.url)).await.2).unwrap();
    assert_eq!(seqs(&after), seqs(&v)[..5]);
}
