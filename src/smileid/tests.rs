use super::*;
use crate::model::TEXT_LIMIT;
use std::time::Duration;

fn obs(body: &str) -> Observation {
    parse_status_body(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The rate the provider's text stands for, to compare with.
fn pct(text: &str) -> Option<crate::model::Rate> {
    Some(crate::model::parse_rate(text).unwrap())
}

fn err(body: &str) -> PollError {
    parse_status_body(body.as_bytes()).unwrap_err()
}

#[test]
fn the_documented_body_parses() {
    let o = obs(r#"{"last_checked": "2023-06-13T09:50:04.596Z", "last_check_status": "failure",
        "last_hour_success_rate": "16%", "last_known_status": "offline", "last_check_success_rate": "0%"}"#);
    assert_eq!(o.state, AuthorityState::Offline);
    assert_eq!(o.rate_10m.map(|r| r.to_string()).as_deref(), Some("0"));
    assert_eq!(o.rate_1h.map(|r| r.to_string()).as_deref(), Some("0.16"));
    assert_eq!(o.last_checked.unwrap().timestamp_millis(), 1_686_649_804_596);
    assert_eq!(o.unrecognized_status, None);
}

#[test]
fn odd_rate_shapes_are_survived() {
    let o = obs(r#"{"last_known_status":"online","last_check_success_rate":"91.5%","last_hour_success_rate":null}"#);
    assert_eq!((o.state, o.rate_10m, o.rate_1h), (AuthorityState::Online, pct("91.5%"), None));
    let o =
        obs(r#"{"last_known_status":"interruption","last_check_success_rate":"N/A","last_hour_success_rate":"75"}"#);
    assert_eq!((o.rate_10m, o.rate_1h), (None, pct("75%")));
    let o = obs(r#"{"last_known_status":"online","last_check_success_rate":97,"last_hour_success_rate":""}"#);
    assert_eq!((o.rate_10m, o.rate_1h), (pct("97%"), None));
    // A JSON number is read as the decimal that was sent, not through a float.
    let o = obs(r#"{"last_known_status":"online","last_check_success_rate":97.4,"last_hour_success_rate":"97.4%"}"#);
    assert_eq!(o.rate_10m.unwrap().to_string(), "0.974");
    assert_eq!(o.rate_1h.unwrap().to_string(), "0.974");
}

#[test]
fn missing_status_is_derived_from_the_10m_rate() {
    assert_eq!(obs(r#"{"last_check_success_rate":"95%"}"#).state, AuthorityState::Online);
    assert_eq!(
        obs(r#"{"last_check_success_rate":"70%","last_known_status":null}"#).state,
        AuthorityState::Interruption
    );
    assert_eq!(obs(r#"{"last_check_success_rate":"50%","last_known_status":""}"#).state, AuthorityState::Offline);
}

#[test]
fn unknown_status_is_unknown_and_remembered() {
    let o = obs(r#"{"last_known_status":"maintenance","last_check_success_rate":"100%"}"#);
    assert_eq!(o.state, AuthorityState::Unknown);
    assert_eq!(o.unrecognized_status.as_deref(), Some("maintenance"));
    assert_eq!(o.rate_10m, Some(crate::model::Rate::ONE));
}

#[test]
fn unusable_bodies_are_invalid_responses() {
    for body in [
        "",
        "not json",
        "<html><body>502 Bad Gateway</body></html>",
        "[1,2]",
        "null",
        "{}",
        r#"{"last_known_status": 7}"#,
        r#"{"last_check_success_rate":"N/A"}"#,
    ] {
        assert_eq!(err(body).reason(), FailureReason::InvalidResponse, "{body}");
    }
    assert!(err("<html>").to_string().contains("HTML"));
}

#[test]
fn error_bodies_with_a_success_status_are_classified() {
    assert_eq!(
        err(r#"{"error":"You are not authorized to do that.","code":"2205"}"#).reason(),
        FailureReason::Unauthorized
    );
    assert_eq!(err(r#"{"error":"Invalid JSON","code":"2203"}"#).reason(), FailureReason::InvalidResponse);
}

#[test]
fn failures_are_classified_into_the_fixed_reasons() {
    let c = |status, body: &str| classify_failure(status, body.as_bytes()).reason();
    assert_eq!(c(401, r#"{"message":"Invalid token","status":"Unauthorized"}"#), FailureReason::Unauthorized);
    assert_eq!(c(403, ""), FailureReason::Unauthorized);
    assert_eq!(c(400, r#"{"error":"You are not authorized to do that.","code":"2205"}"#), FailureReason::Unauthorized);
    assert_eq!(c(400, r#"{"error":"wrong type","code":"2204"}"#), FailureReason::Unauthorized);
    assert_eq!(c(400, r#"{"error":"x","code":"2405"}"#), FailureReason::Unauthorized);
    assert_eq!(c(429, ""), FailureReason::RateLimited);
    assert_eq!(c(400, r#"{"error":"slow down","code":"2222"}"#), FailureReason::RateLimited);
    assert_eq!(
        c(400, r#"{"message":"No data found. Check that NG and BVN are valid inputs","status":"Bad Request"}"#),
        FailureReason::NoData
    );
    assert_eq!(
        c(400, r#"{"message":"Invalid id_type for the given country","status":"Bad Request"}"#),
        FailureReason::Http4xx
    );
    assert_eq!(c(404, "<html>"), FailureReason::Http4xx);
    assert_eq!(c(500, r#"{"error":"System error","code":"2201"}"#), FailureReason::Http5xx);
    assert_eq!(c(503, ""), FailureReason::Http5xx);
    assert_eq!(c(302, ""), FailureReason::InvalidResponse);
}

#[test]
fn error_messages_carry_the_provider_words_briefly() {
    let e = classify_failure(400, br#"{"error":"Invalid job type.","code":"2212"}"#);
    assert_eq!(e.to_string(), "HTTP 400: Invalid job type. (code 2212)");
    let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(5000));
    let none = Secret::new("");
    assert!(classify_failure(500, long.as_bytes()).redact(&none).to_string().len() < 300);
    let e = classify_failure(500, b"line1\nline2\x1b[31m");
    assert!(!e.to_string().contains('\n') && !e.to_string().contains('\x1b'));
}

#[test]
fn redaction_removes_an_echoed_key() {
    let key = Secret::new("sk_live_abc");
    let e = classify_failure(401, br#"{"message":"bad key sk_live_abc","status":"Unauthorized"}"#).redact(&key);
    assert!(!e.to_string().contains("sk_live_abc"), "{e}");
    assert!(!format!("{e:?}").contains("sk_live_abc"));
}

#[test]
fn a_key_echoed_across_the_cut_leaves_no_fragment() {
    let key = "sk_live_4f9a2c7e1b3d8a6f";
    let secret = Secret::new(key);
    // The key starts a few characters before the 200th character of the provider's words,
    // so a cut made before redacting would keep its first characters.
    for before in [190, 195, 199, 200] {
        let words = format!("{}{key} was not accepted", "x".repeat(before));
        for body in [
            serde_json::json!({"error": words, "code": "2205"}).to_string(),
            serde_json::json!({"message": words, "status": "Forbidden"}).to_string(),
            words.clone(),
        ] {
            for status in [401, 500, 429] {
                let e = classify_failure(status, body.as_bytes()).redact(&secret);
                let (text, debug) = (e.to_string(), format!("{e:?}"));
                for n in 4..=key.len() {
                    assert!(!text.contains(&key[..n]) && !debug.contains(&key[..n]), "{n} chars leak: {text}");
                }
                assert!(text.chars().count() < 260, "{text}");
            }
        }
        // An unrecognised status that echoes the key is scrubbed the same way.
        let body = serde_json::json!({"last_known_status": words, "last_check_success_rate": "99%"});
        let o = scrub(parse_status_body(body.to_string().as_bytes()), &secret).unwrap();
        let shown = o.unrecognized_status.unwrap();
        assert!(!shown.contains(&key[..4]), "{shown}");
    }
}

#[test]
fn shortening_twice_changes_nothing() {
    let once = shorten("y".repeat(500));
    assert_eq!(once.chars().count(), TEXT_LIMIT + 1);
    assert_eq!(shorten(once.clone()), once);
    assert_eq!(shorten("short".to_owned()), "short");
}

#[test]
fn transient_errors_are_the_retryable_ones() {
    assert!(PollError::Timeout(Duration::from_secs(1)).is_transient());
    assert!(PollError::Connect("refused".into()).is_transient());
    assert!(PollError::RateLimited { message: String::new() }.is_transient());
    assert!(PollError::Http { status: 503, message: String::new() }.is_transient());
    assert!(PollError::Http { status: 408, message: String::new() }.is_transient());
    assert!(!PollError::Http { status: 404, message: String::new() }.is_transient());
    assert!(!PollError::Unauthorized { status: 401, message: String::new() }.is_transient());
    assert!(!PollError::NoData(String::new()).is_transient());
}

proptest::proptest! {
    #[test]
    fn no_body_panics_the_parser(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
        let _ = parse_status_body(&body);
        let _ = classify_failure(500, &body);
    }

    #[test]
    fn no_field_values_panic_the_parser(
        status in "\\PC{0,20}", r10 in "\\PC{0,12}", r1h in "\\PC{0,12}", checked in "\\PC{0,30}",
    ) {
        let body = serde_json::json!({
            "last_known_status": status, "last_check_success_rate": r10,
            "last_hour_success_rate": r1h, "last_checked": checked,
        });
        if let Ok(o) = parse_status_body(body.to_string().as_bytes()) {
            for r in [o.rate_10m, o.rate_1h].into_iter().flatten() {
                proptest::prop_assert!((0.0..=1.0).contains(&r.as_f64()));
            }
        }
    }
}
