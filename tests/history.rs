//! The history store: what survives a restart, retention, and a store that is corrupt,
//! read-only or full (degrading to memory with a log line and a metric, never a panic).
//! The read-only and full-disk cases mount a tiny tmpfs: they need root and `mount` (CI
//! runs as root) and fail, saying so, without them.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use idauth_exporter::history::events::Query;
use idauth_exporter::history::{FILE_NAME, History, HistoryMetrics, Point};
use idauth_exporter::model::{AuthorityState, Observation, Rate, Target};
use idauth_exporter::store::Store;
use idauth_exporter::web::api;

const DAY: Duration = Duration::from_secs(86_400);
const FLUSH: Duration = Duration::from_secs(20);

/// Now, to the millisecond the store keeps.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

fn target(c: &str, i: &str) -> Target {
    Target::new(c.parse().unwrap(), i.parse().unwrap())
}

fn observed(at: DateTime<Utc>, state: AuthorityState, rate: f64) -> Point {
    let o = Observation {
        state,
        unrecognized_status: None,
        rate_10m: Rate::from_f64(rate),
        rate_1h: Rate::from_f64(rate),
        last_checked: Some(at - TimeDelta::minutes(1)),
    };
    Point::observed(at, &o)
}

/// Log lines written on this thread while `f` runs.
fn logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || out.clone()).with_ansi(false).finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (value, text)
}

/// A tmpfs of `size` at `dir`, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> Tmpfs {
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(dir).status();
        match status {
            Ok(s) if s.success() => Tmpfs(dir.to_path_buf()),
            other => panic!(
                "cannot mount a tmpfs at {} ({other:?}): this test needs root and `mount` \
                 (CI runs ./scripts/test as root); run it as root",
                dir.display()
            ),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A store attached to `history`, watching `pairs`, as the daemon builds it at start.
fn store(pairs: &[Target], history: &Arc<History>, now: DateTime<Utc>) -> Store {
    let store = Store::new(pairs);
    store.attach_history(history.clone(), now);
    store
}

/// What every reader shows of every pair, and the status page's bars and uptime, with
/// each view as JSON (the one time format of every answer), but for its last poll: the one
/// thing a restart does not bring back (the new run has not polled yet).
fn shown(store: &Store, now: DateTime<Utc>) -> String {
    let ranges = [TimeDelta::hours(24), TimeDelta::days(7), TimeDelta::days(30)];
    let histories: Vec<String> = store
        .histories(now, 144, &ranges)
        .iter()
        .map(|h| {
            let mut view = serde_json::to_value(&h.now).unwrap();
            view["last_poll"] = serde_json::Value::Null;
            format!("{:?} {:?} {view}", h.cells, h.uptime)
        })
        .collect();
    histories.join("\n")
}

#[test]
fn a_restart_restores_state_since_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let ng = target("NG", "BVN");
    let now = now();
    let written = vec![
        observed(now - TimeDelta::minutes(40), AuthorityState::Online, 1.0),
        observed(now - TimeDelta::minutes(30), AuthorityState::Online, 0.99),
        observed(now - TimeDelta::minutes(20), AuthorityState::Offline, 0.1),
        Point::failed(now - TimeDelta::minutes(15)),
        observed(now - TimeDelta::minutes(10), AuthorityState::Offline, 0.05),
    ];
    let before = {
        let metrics = HistoryMetrics::default();
        let history = Arc::new(History::open(dir.path(), 30 * DAY, metrics.clone()));
        assert!(metrics.persisting());
        let store = store(std::slice::from_ref(&ng), &history, now);
        for p in &written {
            match p.observation() {
                Some(o) => store.record_success(&ng, o, p.time),
                None => store.record_failure(&ng, &idauth_exporter::model::PollError::NoData("x".into()), p.time),
            }
        }
        assert!(history.flush(FLUSH));
        shown(&store, now)
    };
    assert!(dir.path().join(FILE_NAME).exists());

    let metrics = HistoryMetrics::default();
    let history = Arc::new(History::open(dir.path(), 30 * DAY, metrics.clone()));
    assert!(metrics.persisting());
    assert_eq!(
        history.points(&ng, now - TimeDelta::days(1), now + TimeDelta::days(1)).unwrap(),
        written,
        "the whole history comes back"
    );
    let store = store(std::slice::from_ref(&ng), &history, now);
    let pair = store.pair_now(&ng, now).unwrap();
    assert_eq!(pair.state, AuthorityState::Offline, "the state before the restart");
    assert_eq!(pair.observation.as_ref().unwrap().rate_10m, Rate::from_f64(0.05));
    assert!(pair.last_poll.is_none(), "readiness still waits for a poll of this run");
    assert_eq!(
        pair.since,
        Some(now - TimeDelta::minutes(21)),
        "offline since the provider's time of the first offline window, across the restart"
    );
    // Every reader's view, the bars and uptime included, is what it was before, to the
    // character of the JSON (times to the millisecond on both sides of the restart).
    assert_eq!(shown(&store, now), before);
    for op in HistoryMetrics::OPERATIONS {
        assert_eq!(metrics.errors_total(op), 0, "{op}");
    }
}

#[test]
fn retention_drops_old_points_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let ng = target("NG", "NIN_V2");
    let now = now();
    {
        let history = History::open(dir.path(), DAY, HistoryMetrics::default());
        history.append(&ng, observed(now - TimeDelta::days(3), AuthorityState::Online, 1.0));
        history.append(&ng, observed(now - TimeDelta::hours(26), AuthorityState::Offline, 0.0));
        history.append(&ng, observed(now - TimeDelta::hours(1), AuthorityState::Online, 1.0));
        assert!(history.flush(FLUSH));
    }
    // Opened again with a longer retention: what the first run dropped is gone from disk.
    let history = History::open(dir.path(), 30 * DAY, HistoryMetrics::default());
    let kept = history.points(&ng, now - TimeDelta::days(30), now).unwrap();
    assert_eq!(kept.iter().map(|p| p.time).collect::<Vec<_>>(), [now - TimeDelta::hours(1)], "disk");
}

/// A store that cannot be written: the exporter carries on from memory (the store's last
/// day), and says so in a metric.
fn degrades_to_memory(history: History, metrics: &HistoryMetrics, operation: &str) {
    let ng = target("NG", "BVN");
    let now = now();
    let history = Arc::new(history);
    let store = store(std::slice::from_ref(&ng), &history, now);
    for at in [now - TimeDelta::minutes(10), now] {
        store.record_success(&ng, observed(at, AuthorityState::Offline, 0.0).observation().unwrap(), at);
    }
    assert!(history.flush(FLUSH));
    assert!(!metrics.persisting(), "idauth_history_storage_persisting is 0");
    assert!(metrics.errors_total(operation) >= 1, "idauth_history_storage_errors_total{{operation={operation:?}}}");
    let points = api::points(&store, &history, &ng, now - TimeDelta::hours(1), now + TimeDelta::seconds(1));
    assert_eq!(points.len(), 2, "history is kept in memory");
    assert_eq!(store.pair_now(&ng, now).unwrap().since, Some(now - TimeDelta::minutes(11)));
    // A change is kept in memory too, and the event feed shows it from there.
    let later = now + TimeDelta::minutes(10);
    store.record_success(&ng, observed(later, AuthorityState::Online, 1.0).observation().unwrap(), later);
    for after in [None, Some(0)] {
        let page = history.changes(Query { after, before: None, limit: 10 }).expect("served from memory");
        let shown: Vec<_> = page.changes.iter().map(|c| (c.from, c.to)).collect();
        assert_eq!(shown, vec![(AuthorityState::Offline, AuthorityState::Online)], "after {after:?}");
    }
}

#[test]
fn a_corrupt_file_is_logged_counted_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = b"this is not a redb database, it was overwritten by something".repeat(100);
    std::fs::write(dir.path().join(FILE_NAME), &garbage).unwrap();
    let metrics = HistoryMetrics::default();
    let (history, log) = logs(|| History::open(dir.path(), 30 * DAY, metrics.clone()));
    assert!(log.contains("cannot open the store") && log.contains("memory only"), "{log}");
    assert_eq!(metrics.errors_total("open"), 1);
    degrades_to_memory(history, &metrics, "open");
    assert_eq!(std::fs::read(dir.path().join(FILE_NAME)).unwrap(), garbage, "kept for a person to look at");
}

#[test]
fn a_read_only_directory_degrades_to_memory() {
    let dir = tempfile::tempdir().unwrap();
    let _fs = Tmpfs::mount(dir.path(), "ro,size=1m");
    let metrics = HistoryMetrics::default();
    let (history, log) = logs(|| History::open(&dir.path().join("data"), 30 * DAY, metrics.clone()));
    assert!(log.contains("cannot open the store") && log.contains("Read-only"), "{log}");
    degrades_to_memory(history, &metrics, "open");
}

#[test]
fn a_full_disk_degrades_to_memory_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let _fs = Tmpfs::mount(dir.path(), "size=4m");
    let metrics = HistoryMetrics::default();
    let history = History::open(dir.path(), 30 * DAY, metrics.clone());
    assert!(metrics.persisting(), "the store opens while there is room");
    // Fill the rest of the file system.
    let filler = dir.path().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    // Five pairs polled every 10 s for a few hours do not fit in what is left.
    let pairs = ["NG/BVN", "NG/NIN_V2", "KE/NATIONAL_ID", "GH/GHANA_CARD", "ZA/NATIONAL_ID"]
        .map(|p| p.split_once('/').map(|(c, i)| target(c, i)).unwrap());
    let start = now() - TimeDelta::days(1);
    for n in 0..2000 {
        for t in &pairs {
            history.append(t, observed(start + TimeDelta::seconds(10 * n), AuthorityState::Online, 1.0));
        }
        if n % 500 == 499 {
            assert!(history.flush(FLUSH));
        }
    }
    assert!(history.flush(FLUSH));
    assert!(!metrics.persisting(), "writes fail once the disk is full");
    assert!(metrics.errors_total("write") >= 1);
    // Space comes back: the writer reopens the store and writes what was pending, so
    // nothing was lost.
    drop(f);
    std::fs::remove_file(&filler).unwrap();
    history.append(&pairs[0], observed(now(), AuthorityState::Online, 1.0));
    assert!(history.flush(FLUSH));
    assert!(metrics.persisting(), "persisting again after space was freed");
    for t in &pairs {
        let kept = history.points(t, start, now() + TimeDelta::seconds(1)).unwrap().len();
        assert!(kept >= 2000, "{t}: {kept} points on disk");
    }
}

#[test]
fn concurrent_polls_during_reloads_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let pairs: Vec<Target> =
        ["BVN", "NIN_V2", "PHONE_NUMBER", "BANK_ACCOUNT"].iter().map(|i| target("NG", i)).collect();
    let now = now();
    const PER_THREAD: i64 = 500;
    {
        let history = Arc::new(History::open(dir.path(), 30 * DAY, HistoryMetrics::default()));
        let store = Arc::new(store(&pairs, &history, now));
        std::thread::scope(|s| {
            for (n, t) in pairs.iter().enumerate() {
                let store = store.clone();
                s.spawn(move || {
                    for k in 0..PER_THREAD {
                        let at = now - TimeDelta::seconds(PER_THREAD - k) + TimeDelta::milliseconds(n as i64);
                        let p = observed(at, AuthorityState::Online, 1.0);
                        store.record_success(t, p.observation().unwrap(), at);
                    }
                });
            }
            // Reloads meanwhile: the same pairs in another order, as a reload of the file does.
            let store = store.clone();
            let pairs = pairs.clone();
            s.spawn(move || {
                for k in 0..200 {
                    let mut order = pairs.clone();
                    order.rotate_left(k % pairs.len());
                    store.set_targets(&order);
                    let _ = history.points(&pairs[0], now - TimeDelta::hours(1), now);
                }
            });
        });
    }
    let history = History::open(dir.path(), 30 * DAY, HistoryMetrics::default());
    for t in &pairs {
        let points = history.points(t, now - TimeDelta::hours(1), now + TimeDelta::hours(1)).unwrap();
        assert_eq!(points.len() as i64, PER_THREAD, "{t}");
        assert!(points.windows(2).all(|w| w[0].time < w[1].time), "{t}: in time order");
    }
}

/// A month of 10-minute history is replayed into the same "since", bars and uptime that
/// the live store computed, while the store holds whole points of the last day only (older
/// ones are read from disk when asked, as the 30-day history API does).
#[test]
fn a_month_replays_into_the_same_views_holding_only_a_day_of_points() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = [target("NG", "BVN"), target("KE", "NATIONAL_ID")];
    let now = now();
    let start = now - TimeDelta::days(30);
    let before = {
        let history = Arc::new(History::open(dir.path(), 31 * DAY, HistoryMetrics::default()));
        let store = store(&pairs, &history, start);
        for i in 0..30 * 144 {
            let at = start + TimeDelta::minutes(10 * i) + TimeDelta::seconds(61);
            for (n, t) in pairs.iter().enumerate() {
                // A daily hour offline, and a weekly failing poll.
                let state = if (i + n as i64 * 7) % 144 < 6 { AuthorityState::Offline } else { AuthorityState::Online };
                if i % 1008 == 500 {
                    store.record_failure(t, &idauth_exporter::model::PollError::Timeout(Duration::from_secs(1)), at);
                } else {
                    store.record_success(t, observed(at, state, 0.5).observation().unwrap(), at);
                }
            }
        }
        assert!(history.flush(FLUSH));
        let (recent, _) = store.recent_points(&pairs[0], start, now).unwrap();
        assert!(recent.len() <= 146, "{} whole points held", recent.len());
        shown(&store, now)
    };
    let history = Arc::new(History::open(dir.path(), 31 * DAY, HistoryMetrics::default()));
    let store = store(&pairs, &history, now);
    assert_eq!(shown(&store, now), before);
    // The month of points is there for the history API, older ones from disk.
    assert_eq!(api::points(&store, &history, &pairs[0], start, now).len(), 30 * 144);
}

const BIN: &str = env!("CARGO_BIN_EXE_idauth-exporter");

/// `history fill` writes a month for the configured pairs; `history export` writes it out;
/// while an exporter holds the store, the command says so and where to ask instead, and
/// the exporter serves the very same text at /api/v1/history?format=csv.
#[tokio::test]
async fn fill_and_export_commands_and_the_same_export_from_a_running_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "smile_id:\n  partner_id: \"085\"\n  api_key_env: IDAUTH_TEST_KEY\ntargets:\n  - country: NG\n    id_types: [BVN, NIN_V2]\n",
    )
    .unwrap();
    let storage = dir.path().join("store");
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .arg("--storage.path")
            .arg(&storage)
            .env("IDAUTH_TEST_KEY", "not-a-real-key")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let (ok, _, err) = run(&["history", "fill", "--days", "3", "--config.file", config.to_str().unwrap()]);
    assert!(ok && err.contains("wrote 864 points: 2 pairs, 3 days"), "{err}");
    let (from, to) = ("2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z");
    let (ok, csv, err) = run(&["history", "export", "--from", from, "--to", to]);
    assert!(ok && err.contains("exported 864 points"), "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "country,id_type,time,ok,state,rate_10m,rate_1h,last_checked");
    assert_eq!(lines.len(), 865);
    assert!(lines[1].starts_with("NG,BVN,") && lines[864].starts_with("NG,NIN_V2,"), "pair by pair");
    let (ok, json, _) = run(&["history", "export", "--format", "json", "--from", "1d"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        ok && (280..=290).contains(&json.as_array().unwrap().len()),
        "a day of two pairs: {}",
        json.as_array().unwrap().len()
    );

    // An exporter holds the store now.
    let history = Arc::new(History::open(&storage, 30 * DAY, HistoryMetrics::default()));
    let (ok, _, err) = run(&["history", "export"]);
    assert!(!ok, "{err}");
    assert!(err.contains("in use") && err.contains("/api/v1/history?format=csv"), "{err}");
    let pairs = [target("NG", "BVN"), target("NG", "NIN_V2")];
    let store = Arc::new(store(&pairs, &history, Utc::now()));
    let clock: Arc<dyn idauth_exporter::model::Clock> = Arc::new(idauth_exporter::model::SystemClock);
    let metrics = Arc::new(idauth_exporter::metrics::Metrics::new("test", Utc::now()));
    let site = idauth_exporter::web::Site::new(store, metrics, clock, Arc::new(|| Box::pin(async { Ok(()) })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(idauth_exporter::web::http::serve(listener, idauth_exporter::web::handler(site), stop.clone()));
    idauth_exporter::tls::install_crypto_provider();
    let resp = reqwest::get(format!("http://{addr}/api/v1/history?format=csv&from={from}&to={to}")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8; header=present");
    assert_eq!(resp.text().await.unwrap(), csv, "the API serves what the command writes");
    // One pair's month, and its summary, from the same store.
    let one = reqwest::get(format!("http://{addr}/api/v1/history?country=NG&id_type=BVN&range=30d")).await.unwrap();
    let one: serde_json::Value = one.json().await.unwrap();
    assert_eq!(one["points"].as_array().unwrap().len(), 432);
    assert!(one["uptime"]["7d"]["ratio"].as_f64().unwrap() > 0.5);
    stop.cancel();
}

/// The replay is built aside while polls go on: a result recorded during it is kept and
/// follows the replayed history, whichever finishes first.
#[test]
fn results_recorded_during_the_replay_follow_it() {
    let dir = tempfile::tempdir().unwrap();
    let pairs: Vec<Target> = (0..100).map(|i| target("NG", &format!("B{i:04}"))).collect();
    let now = now();
    {
        let history = History::open(dir.path(), 31 * DAY, HistoryMetrics::default());
        history.fill(&pairs, TimeDelta::days(7), now - TimeDelta::minutes(10)).unwrap();
    }
    let history = Arc::new(History::open(dir.path(), 31 * DAY, HistoryMetrics::default()));
    let last = &pairs[99];
    let week = history.points(last, now - TimeDelta::days(31), now).unwrap();
    let replayed = week.iter().rev().find(|p| p.ok).unwrap().state;
    // A state other than the replayed one, so that the live poll starts a run of its own.
    let live = if replayed == AuthorityState::Offline { AuthorityState::Interruption } else { AuthorityState::Offline };
    let store = Arc::new(Store::new(&pairs));
    let replay = {
        let (store, history) = (store.clone(), history.clone());
        std::thread::spawn(move || store.attach_history(history, now))
    };
    // A poll of the last pair ends now, its window a minute ago.
    store.record_success(last, observed(now, live, 0.1).observation().unwrap(), now);
    replay.join().unwrap();
    let pair = store.pair_now(last, now).unwrap();
    assert_eq!((pair.state, pair.since), (live, Some(now - TimeDelta::minutes(1))));
    assert_eq!(pair.counts.polls, 1);
    assert!(pair.last_poll.as_ref().is_some_and(|p| p.success && p.at == now));
    // The week is there under it: the bar's cells before now are known.
    let day = store.histories(now, 144, &[TimeDelta::days(7)]);
    let cells = &day.iter().find(|h| h.now.target == *last).unwrap().cells;
    assert!(cells.iter().filter(|c| c.state != AuthorityState::Unknown).count() > 140, "{cells:?}");
}
