use super::*;
use crate::history::{History, HistoryMetrics, Point};
use crate::model::{AuthorityState, ManualClock, Target};
use crate::secret::WebhookSecret;

fn target(c: &str, t: &str) -> Target {
    Target::new(c.parse().unwrap(), t.parse().unwrap())
}

fn hook(name: &str, countries: &[&str], states: &[AuthorityState]) -> WebhookConfig {
    WebhookConfig {
        name: name.to_owned(),
        url: "http://127.0.0.1:9/hook".parse().unwrap(),
        secret: WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        countries: countries.iter().map(|c| c.parse().unwrap()).collect(),
        id_types: Vec::new(),
        states: states.to_vec(),
        timeout: Duration::from_secs(1),
    }
}

const T0: &str = "2026-06-01T12:00:00Z";

/// A notifier over a history in memory, with its clock, not delivering (no task started):
/// the tests drive [`Notifier::route`] and [`Notifier::settle`] themselves.
fn notifier(hooks: &[WebhookConfig]) -> (Arc<Notifier>, Arc<History>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0.parse().unwrap()));
    let n = Notifier::new(clock.clone()).unwrap();
    n.configure(hooks);
    let h = Arc::new(History::in_memory(Duration::from_secs(86400 * 30), HistoryMetrics::default()));
    n.history.set(h.clone()).unwrap();
    (n, h, clock)
}

fn change(h: &History, t: &Target, to: AuthorityState, at: DateTime<Utc>) -> u64 {
    let c = Change {
        seq: 0,
        id: Change::id_for(t, to, at),
        target: t.clone(),
        from: AuthorityState::Online,
        to,
        since: at,
        detected: at,
        rate_10m: Some(0.1),
        rate_1h: Some(0.5),
        last_checked: Some(at),
    };
    h.append_change(t, Point::failed(at), c)
}

fn pending(n: &Notifier, name: &str) -> Vec<(u64, u32, DateTime<Utc>)> {
    n.lock().hooks[name].pending.iter().map(|(s, p)| (*s, p.attempts, p.next_at)).collect()
}

#[test]
fn each_change_goes_to_the_webhooks_that_want_it() {
    use AuthorityState::{Offline, Online};
    let (n, h, clock) = notifier(&[hook("all", &[], &[]), hook("ng-back", &["NG"], &[Online])]);
    let now = clock.now();
    let down = change(&h, &target("NG", "BVN"), Offline, now);
    let up = change(&h, &target("NG", "BVN"), Online, now);
    let ke = change(&h, &target("KE", "NATIONAL_ID"), Online, now);
    n.route();
    let seqs = |name| pending(&n, name).iter().map(|p| p.0).collect::<Vec<_>>();
    assert_eq!(seqs("all"), vec![down, up, ke]);
    assert_eq!(seqs("ng-back"), vec![up]);
    // Routed once: a second pass adds nothing.
    n.route();
    assert_eq!(seqs("all").len(), 3);
    // A change older than the retries last is not news.
    change(&h, &target("GH", "GHANA_CARD"), Offline, now - TimeDelta::hours(25));
    n.route();
    assert_eq!(seqs("all").len(), 3);
}

#[test]
fn failures_back_off_on_the_schedule_honour_retry_after_and_give_up_after_a_day() {
    let (n, h, clock) = notifier(&[hook("kyc", &[], &[])]);
    let start = clock.now();
    let seq = change(&h, &target("NG", "BVN"), AuthorityState::Offline, start);
    n.route();
    let fail = |retry_after| Outcome::Failed { result: "unreachable", why: "refused".into(), retry_after };
    n.settle("kyc", seq, fail(None));
    assert_eq!(pending(&n, "kyc"), vec![(seq, 1, start + TimeDelta::seconds(5))]);
    // Retry-After longer than the schedule's step is honoured; a shorter one is not.
    n.settle("kyc", seq, fail(Some(Duration::from_secs(3600))));
    assert_eq!(pending(&n, "kyc")[0].2, start + TimeDelta::hours(1));
    n.settle("kyc", seq, fail(Some(Duration::from_secs(1))));
    assert_eq!(pending(&n, "kyc")[0].2, start + TimeDelta::minutes(30));
    // The last step repeats while the day lasts; past it the delivery is given up, counted.
    clock.set(start + TimeDelta::hours(20));
    for _ in 0..5 {
        n.settle("kyc", seq, fail(None));
    }
    assert_eq!(pending(&n, "kyc")[0].2, start + TimeDelta::hours(30));
    clock.set(start + TimeDelta::hours(24));
    n.settle("kyc", seq, fail(None));
    assert!(pending(&n, "kyc").is_empty());
    assert_eq!(n.metrics.dropped.with_label_values(&["kyc", "expired"]).get(), 1);
    assert_eq!(n.metrics.deliveries.with_label_values(&["kyc", "unreachable"]).get(), 9);
}

#[test]
fn a_delivery_leaves_the_outbox_and_the_gauges_follow() {
    let (n, h, clock) = notifier(&[hook("kyc", &[], &[])]);
    let a = change(&h, &target("NG", "BVN"), AuthorityState::Offline, clock.now());
    clock.set(clock.now() + TimeDelta::minutes(10));
    let b = change(&h, &target("NG", "NIN_V2"), AuthorityState::Offline, clock.now());
    n.route();
    clock.set(clock.now() + TimeDelta::minutes(5));
    assert_eq!(n.waiting(), vec![("kyc".to_owned(), 2, Some(T0.parse().unwrap()))]);
    let scrape = |n: &Notifier| {
        let families = n.metrics.waiting.collect();
        let value = |name: &str| {
            let f = families.iter().find(|f| f.name() == name).unwrap();
            f.get_metric()[0].get_gauge().get_value()
        };
        (value("idauth_webhook_pending"), value("idauth_webhook_oldest_pending_age_seconds"))
    };
    assert_eq!(scrape(&n), (2.0, 900.0));
    n.settle("kyc", a, Outcome::Delivered(204));
    assert_eq!(scrape(&n), (1.0, 300.0));
    n.settle("kyc", b, Outcome::Delivered(200));
    assert_eq!(scrape(&n), (0.0, 0.0));
    assert_eq!(n.metrics.deliveries.with_label_values(&["kyc", "success"]).get(), 2);
}

#[test]
fn a_removed_webhook_drops_its_waiting_deliveries_counted_and_a_full_outbox_its_oldest() {
    let (n, h, clock) = notifier(&[hook("a", &[], &[]), hook("b", &[], &[])]);
    for i in 0..3 {
        change(&h, &target("NG", "BVN"), AuthorityState::ALL[i % 3], clock.now() + TimeDelta::minutes(i as i64));
    }
    n.route();
    n.configure(&[hook("b", &[], &[])]);
    assert_eq!(n.metrics.dropped.with_label_values(&["a", "removed"]).get(), 3);
    assert!(!n.lock().hooks.contains_key("a"));
    assert_eq!(pending(&n, "b").len(), 3);
    let first = pending(&n, "b")[0].0;
    for i in 0..PENDING_MAX {
        change(&h, &target("KE", "NATIONAL_ID"), AuthorityState::Offline, clock.now() + TimeDelta::seconds(i as i64));
        // As the task does: at every change (memory holds the newest 4,096 only).
        if i % 1000 == 0 {
            n.route();
        }
    }
    n.route();
    assert_eq!(pending(&n, "b").len(), PENDING_MAX);
    assert_eq!(n.metrics.dropped.with_label_values(&["b", "overflow"]).get(), 3);
    assert!(pending(&n, "b")[0].0 > first, "the oldest went first");
}

#[test]
fn nothing_about_a_webhook_shows_its_secret() {
    let h = hook("kyc", &[], &[]);
    let shown = format!("{h:?}");
    assert!(!shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}
