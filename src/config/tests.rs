use super::*;

const GOOD: &str = r#"
smile_id:
  partner_id: "085"
  api_key_env: MY_KEY
  environment: sandbox
  api: v3
poll:
  schedule: "0 1/10 * * * *"
  timeout: 10s
  retries: 2
  concurrency: 4
  jitter: 30s
  max_data_age: 30m
targets:
  - country: NG
    id_types: [BVN, NIN_V2, BANK_ACCOUNT]
  - country: KE
    id_types: [NATIONAL_ID]
web:
  listen_address: ":9877"
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "MY_KEY" => Some("k-from-env".to_owned()),
        "SMILE_ID_API_KEY" => Some("k-default".to_owned()),
        _ => None,
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse_ok(text: &str) -> Loaded {
    parse(text, "cfg.yaml", Path::new("."), &env).unwrap_or_else(|e| panic!("{e}"))
}

/// Parses text that must fail, returning (line, message).
fn parse_err(text: &str) -> (u32, String) {
    match parse(text, "cfg.yaml", Path::new("."), &env) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(ConfigError::Invalid { file, line, message, .. }) => {
            assert_eq!(file, "cfg.yaml");
            (line, message)
        }
        Err(e) => panic!("unexpected {e}"),
    }
}

fn with(replace: &str, by: &str) -> String {
    assert!(GOOD.contains(replace), "{replace}");
    GOOD.replacen(replace, by, 1)
}

fn line_of(text: &str, needle: &str) -> u32 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1
}

#[test]
fn the_documented_example_parses() {
    let l = parse_ok(GOOD);
    let c = l.config;
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(c.smile_id.partner_id, "085");
    assert_eq!(c.smile_id.api_key.expose(), "k-from-env");
    assert_eq!(c.smile_id.environment, Environment::Sandbox);
    assert_eq!(c.smile_id.api, ApiFlavor::V3);
    assert_eq!(c.smile_id.effective_base_url(), "https://testapi.smileidentity.com");
    assert_eq!(c.poll.timeout, Duration::from_secs(10));
    assert_eq!(c.poll.schedule.period(), Duration::from_secs(600));
    assert_eq!(c.poll.max_data_age, Duration::from_secs(1800));
    let pairs: Vec<String> = c.targets.iter().map(|t| t.to_string()).collect();
    assert_eq!(pairs, ["NG/BVN", "NG/NIN_V2", "NG/BANK_ACCOUNT", "KE/NATIONAL_ID"]);
    assert_eq!(c.web.listen_address, "0.0.0.0:9877");
}

#[test]
fn defaults_fill_what_is_left_out() {
    let text = "smile_id:\n  partner_id: \"1\"\ntargets:\n  - country: GH\n    id_types: [GHANA_CARD]\n";
    let c = parse_ok(text).config;
    assert_eq!(c.smile_id.api_key.expose(), "k-default");
    assert_eq!(c.smile_id.api, ApiFlavor::V2);
    assert_eq!(c.smile_id.environment, Environment::Production);
    assert_eq!(c.smile_id.effective_base_url(), "https://prod.smileidentity.com");
    assert_eq!(c.poll.schedule.as_str(), DEFAULT_SCHEDULE);
    assert_eq!(c.poll.retries, 2);
    assert_eq!(c.poll.concurrency, 4);
    assert_eq!(c.poll.jitter, Duration::from_secs(30));
    assert_eq!(c.web.listen_address, format!("0.0.0.0:{DEFAULT_PORT}"));
}

#[test]
fn the_default_schedule_runs_a_minute_after_each_window() {
    let s = Schedule::parse(DEFAULT_SCHEDULE).unwrap();
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 10, 1, 0).unwrap();
    let next = s.next_after(at).unwrap();
    assert_eq!(next, Utc.with_ymd_and_hms(2026, 1, 1, 10, 11, 0).unwrap());
}

#[test]
fn bad_country_names_its_line() {
    let text = with("country: KE", "country: KEN");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "KEN"));
    assert!(msg.contains("ISO 3166-1"), "{msg}");
}

#[test]
fn bad_id_type_names_its_line() {
    let text = with("[NATIONAL_ID]", "[national-id]");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "national-id"));
    assert!(msg.contains("ID type"), "{msg}");
}

#[test]
fn duplicate_pair_names_the_second() {
    let text = with("[BVN, NIN_V2, BANK_ACCOUNT]", "[BVN, NIN_V2, BVN]");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "[BVN, NIN_V2, BVN]"));
    assert!(msg.contains("NG BVN is listed twice"), "{msg}");
}

#[test]
fn duplicate_pair_across_entries() {
    let text = with("id_types: [NATIONAL_ID]", "id_types: [NATIONAL_ID]\n  - country: NG\n    id_types: [BVN]");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "id_types: [BVN]"));
    assert!(msg.contains("twice"), "{msg}");
}

#[test]
fn empty_targets_and_id_types_are_errors() {
    let (line, msg) = parse_err("smile_id:\n  partner_id: \"1\"\ntargets: []\n");
    assert_eq!(line, 3);
    assert!(msg.contains("targets"), "{msg}");
    let text = with("[NATIONAL_ID]", "[]");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "id_types: []"));
    assert!(msg.contains("id_types is empty"), "{msg}");
}

#[test]
fn invalid_cron_names_its_line() {
    let text = with("\"0 1/10 * * * *\"", "\"every ten minutes\"");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "every ten"));
    assert!(msg.contains("poll.schedule") && msg.contains("six fields"), "{msg}");
    // Five fields (no seconds) are rejected too: the seconds field is part of the contract.
    let (_, msg) = parse_err(&with("\"0 1/10 * * * *\"", "\"*/10 * * * *\""));
    assert!(msg.contains("poll.schedule"), "{msg}");
}

#[test]
fn zero_concurrency_is_an_error() {
    let text = with("concurrency: 4", "concurrency: 0");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "concurrency: 0"));
    assert!(msg.contains("poll.concurrency") && msg.contains("1 to 64"), "{msg}");
}

#[test]
fn timeout_longer_than_the_period_is_an_error() {
    let text = with("timeout: 10s", "timeout: 15m");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "timeout: 15m"));
    assert!(msg.contains("longer than the schedule's period of 10m"), "{msg}");
}

#[test]
fn bad_durations_name_their_line() {
    let text = with("jitter: 30s", "jitter: soon");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "jitter: soon"));
    assert!(msg.contains("not a duration"), "{msg}");
}

#[test]
fn max_data_age_must_outlive_a_period() {
    let text = with("max_data_age: 30m", "max_data_age: 5m");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "max_data_age: 5m"));
    assert!(msg.contains("poll.max_data_age"), "{msg}");
}

#[test]
fn unknown_keys_are_errors() {
    let text = with("  retries: 2", "  retires: 2");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "retires"));
    assert!(msg.contains("retires"), "{msg}");
}

#[test]
fn missing_key_source_is_an_error() {
    let text = "smile_id:\n  partner_id: \"1\"\ntargets:\n  - country: GH\n    id_types: [GHANA_CARD]\n";
    let e = parse(text, "cfg.yaml", Path::new("."), &no_env).unwrap_err().to_string();
    // The section is at fault, not its first key: the error points at `smile_id:`.
    assert_eq!(
        e,
        "cfg.yaml:1:1: smile_id: no API key; set api_key_file or api_key_env, provide the credential \
         smile_id_api_key in $CREDENTIALS_DIRECTORY, or set the environment variable SMILE_ID_API_KEY"
    );
    let e = parse(&format!("# the exporter\n\n{text}"), "cfg.yaml", Path::new("."), &no_env).unwrap_err();
    assert!(e.to_string().starts_with("cfg.yaml:3:1: smile_id: no API key"), "{e}");

    let text = with("api_key_env: MY_KEY", "api_key_env: NOT_SET");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "NOT_SET"));
    assert!(msg.contains("NOT_SET is not set"), "{msg}");
}

#[test]
fn two_key_sources_are_an_error() {
    let text = with("api_key_env: MY_KEY", "api_key_env: MY_KEY\n  api_key_file: /k");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "api_key_file"));
    assert!(msg.contains("exactly one source"), "{msg}");
}

#[test]
fn key_file_is_read_relative_to_the_config_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "s3cr3t\n").unwrap();
    let text = with("api_key_env: MY_KEY", "api_key_file: key");
    let c = parse(&text, "cfg.yaml", dir.path(), &no_env).unwrap().config;
    assert_eq!(c.smile_id.api_key.expose(), "s3cr3t");

    let text = with("api_key_env: MY_KEY", "api_key_file: missing");
    let e = parse(&text, "cfg.yaml", dir.path(), &no_env).unwrap_err().to_string();
    assert!(e.contains("smile_id.api_key_file: cannot read"), "{e}");
}

#[test]
fn inline_key_is_accepted_with_a_warning_that_never_shows_it() {
    let text = with("api_key_env: MY_KEY", "api_key: inline-secret-value");
    let l = parse_ok(&text);
    assert_eq!(l.config.smile_id.api_key.expose(), "inline-secret-value");
    assert_eq!(l.warnings.len(), 1);
    let w = l.warnings[0].to_string();
    assert!(w.starts_with(&format!("cfg.yaml:{}:", line_of(&text, "api_key:"))), "{w}");
    assert!(!w.contains("inline-secret-value"));
    assert!(!format!("{:?}", l.config).contains("inline-secret-value"));
}

#[test]
fn unquoted_partner_id_is_explained() {
    // YAML reads an unquoted 085 as the number 85: refused, with the text to write instead.
    let text = with("partner_id: \"085\"", "partner_id: 085");
    let e = parse(&text, "cfg.yaml", Path::new("."), &env).unwrap_err().to_string();
    assert_eq!(
        e,
        "cfg.yaml:3:15: smile_id.partner_id: quote it: \"085\"; unquoted, YAML reads 085 as a number and drops leading zeros"
    );
    let (_, msg) = parse_err(&with("partner_id: \"085\"", "partner_id: 85"));
    assert!(msg.ends_with("quote it: \"85\"; unquoted, YAML reads 85 as a number and drops leading zeros"), "{msg}");
    // Something that is not digits even as written gets no "quote it".
    let (_, msg) = parse_err(&with("partner_id: \"085\"", "partner_id: 1e3"));
    assert_eq!(msg, "smile_id.partner_id: 1e3 is not a partner ID; expected a quoted string of digits such as \"085\"");
}

#[test]
fn unlisted_id_type_is_a_warning_not_an_error() {
    let text = with("[NATIONAL_ID]", "[NATIONAL_ID, SPACE_PASSPORT]");
    let l = parse_ok(&text);
    assert_eq!(l.config.targets.len(), 5);
    assert_eq!(l.warnings.len(), 1);
    assert!(l.warnings[0].message.contains("KE SPACE_PASSPORT"), "{:?}", l.warnings);
    assert_eq!(l.warnings[0].line, line_of(&text, "SPACE_PASSPORT"));
}

/// Many unlisted pairs give one warning, at the first, with the count and the first few.
#[test]
fn unlisted_pairs_give_one_summary_warning() {
    let text = with("[NATIONAL_ID]", "[NATIONAL_ID, X1, X2, X3, X4, X5, X6, X7]");
    let l = parse_ok(&text);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    let w = &l.warnings[0];
    assert_eq!(w.line, line_of(&text, "X1"));
    assert!(
        w.message.contains("7 pairs are not in Smile ID's documented list")
            && w.message.contains("KE X1, KE X2, KE X3, KE X4, KE X5 and 2 more"),
        "{}",
        w.message
    );
}

#[test]
fn bad_enums_and_urls_are_errors() {
    let (_, msg) = parse_err(&with("environment: sandbox", "environment: staging"));
    assert!(msg.contains("staging") || msg.contains("environment"), "{msg}");
    let text = with("api: v3", "api: v3\n  base_url: \"ftp://x\"");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "ftp://"));
    assert!(msg.contains("smile_id.base_url"), "{msg}");
    let text = with("\":9877\"", "\"localhost\"");
    let (_, msg) = parse_err(&text);
    assert!(msg.contains("web.listen_address"), "{msg}");
}

#[test]
fn syntax_errors_have_a_line() {
    let (line, _) = parse_err("smile_id:\n  partner_id: \"1\"\n targets: [\n");
    assert!(line > 0);
}

#[test]
fn listen_addresses() {
    assert_eq!(normalize_listen_address(":9877").unwrap(), "0.0.0.0:9877");
    assert_eq!(normalize_listen_address("127.0.0.1:0").unwrap(), "127.0.0.1:0");
    assert_eq!(normalize_listen_address("[::]:9877").unwrap(), "[::]:9877");
    assert_eq!(normalize_listen_address("localhost:80").unwrap(), "localhost:80");
    for bad in ["9877", "host:", "host:99999", "::1:80", "a b:1"] {
        assert!(normalize_listen_address(bad).is_none(), "{bad}");
    }
}

proptest::proptest! {
    #[test]
    fn no_text_makes_the_parser_panic(s in "\\PC{0,300}") {
        let _ = parse(&s, "fuzz.yaml", Path::new("."), &env);
    }
}

#[test]
fn periods_of_common_schedules() {
    let p = |s: &str| Schedule::parse(s).unwrap().period().as_secs();
    assert_eq!(p("* * * * * *"), 1);
    assert_eq!(p("*/5 * * * * *"), 5);
    assert_eq!(p("0 */10 * * * *"), 600);
    assert_eq!(p("0 0 * * * *"), 3600);
}

/// `config.example.yaml` parses, and its commented catalogue lists exactly the documented pairs.
#[test]
fn the_example_file_parses_and_lists_every_documented_pair() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml")).unwrap();
    let l = parse_ok(&text);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.web.listen_address, format!("0.0.0.0:{DEFAULT_PORT}"));
    assert_eq!(l.config.poll.schedule.as_str(), DEFAULT_SCHEDULE);

    // Swap the active targets for the commented catalogue.
    let (head, rest) = text.split_once("targets:\n").unwrap();
    let (targets, tail) = rest.split_once("\nweb:").unwrap();
    let catalogue: String = targets
        .lines()
        .filter_map(|l| l.strip_prefix("  # "))
        .filter(|l| l.starts_with("- country") || l.starts_with("  id_types"))
        .map(|l| format!("  {l}\n"))
        .collect();
    let swapped = format!("{head}targets:\n{catalogue}\nweb:{tail}");
    let pairs: Vec<(String, String)> =
        parse_ok(&swapped).config.targets.iter().map(|t| (t.country.to_string(), t.id_type.to_string())).collect();
    let documented: Vec<(String, String)> = catalog::CURRENT
        .iter()
        .flat_map(|(c, types)| types.iter().map(move |t| (c.to_string(), t.to_string())))
        .collect();
    assert_eq!(pairs, documented);
}

#[test]
fn type_errors_name_the_key_path() {
    let text = with("concurrency: 4", "concurrency: many");
    let (line, msg) = parse_err(&text);
    assert_eq!(line, line_of(&text, "concurrency: many"));
    assert!(msg.starts_with("poll.concurrency: "), "{msg}");
    let text = with("country: KE", "country: [KE]");
    let (_, msg) = parse_err(&text);
    assert!(msg.starts_with("targets[1].country: "), "{msg}");
    let (_, msg) = parse_err(&with("partner_id: \"085\"", "partner_id: 85"));
    assert!(msg.starts_with("smile_id.partner_id: quote it"), "{msg}");
}

#[test]
fn the_key_comes_from_the_credentials_directory_before_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CREDENTIAL_NAME), "from-credential\n").unwrap();
    let creds = dir.path().display().to_string();
    let text = "smile_id:\n  partner_id: \"1\"\ntargets:\n  - country: GH\n    id_types: [GHANA_CARD]\n";
    let both = |name: &str| match name {
        "CREDENTIALS_DIRECTORY" => Some(creds.clone()),
        "SMILE_ID_API_KEY" => Some("from-env".to_owned()),
        _ => None,
    };
    let c = parse(text, "cfg.yaml", Path::new("."), &both).unwrap().config;
    assert_eq!(c.smile_id.api_key.expose(), "from-credential");
    // A credentials directory without the file falls back to the environment.
    let empty = tempfile::tempdir().unwrap();
    let empty_dir = empty.path().display().to_string();
    let env_only = |name: &str| match name {
        "CREDENTIALS_DIRECTORY" => Some(empty_dir.clone()),
        "SMILE_ID_API_KEY" => Some("from-env".to_owned()),
        _ => None,
    };
    assert_eq!(
        parse(text, "cfg.yaml", Path::new("."), &env_only).unwrap().config.smile_id.api_key.expose(),
        "from-env"
    );
}

#[test]
fn an_endless_configuration_file_is_refused_at_the_cap() {
    let e = load(Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(e, ConfigError::TooLarge { limit: CONFIG_LIMIT, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "/dev/zero: the file is larger than 4 MiB; expected a small text file (is it the right file?)"
    );
}

#[test]
fn an_endless_key_file_is_refused_at_the_cap() {
    let text = with("api_key_env: MY_KEY", "api_key_file: /dev/zero");
    let e = parse(&text, "cfg.yaml", Path::new("."), &no_env).unwrap_err().to_string();
    let line = line_of(&text, "api_key_file");
    assert_eq!(
        e,
        format!(
            "cfg.yaml:{line}:17: smile_id.api_key_file: /dev/zero is larger than 64 KiB; expected a readable file holding only the API key"
        )
    );
}

#[test]
fn an_endless_credential_is_refused_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join(CREDENTIAL_NAME)).unwrap();
    let creds = dir.path().display().to_string();
    let env = |name: &str| match name {
        "CREDENTIALS_DIRECTORY" => Some(creds.clone()),
        "SMILE_ID_API_KEY" => Some("from-env".to_owned()),
        _ => None,
    };
    let text = "smile_id:\n  partner_id: \"1\"\ntargets:\n  - country: GH\n    id_types: [GHANA_CARD]\n";
    let e = parse(text, "cfg.yaml", Path::new("."), &env).unwrap_err().to_string();
    assert!(e.contains(&format!("{creds}/{CREDENTIAL_NAME} is larger than 64 KiB")), "{e}");
}

#[test]
fn a_missing_file_names_its_cause_once() {
    let e = load(Path::new("/nonexistent.yaml")).unwrap_err();
    assert!(std::error::Error::source(&e).is_none());
    // The daemon prints the whole chain, as anyhow does with `{:#}`.
    let chain = format!("{:#}", anyhow::Error::from(e).context("idauth-exporter cannot run"));
    assert_eq!(
        chain,
        "idauth-exporter cannot run: /nonexistent.yaml: cannot read the file: No such file or directory (os error 2)"
    );
}

/// A key pasted where the variable's name belongs is refused, and never shown.
#[test]
fn a_key_pasted_as_api_key_env_is_never_shown() {
    for key in [
        "f5bae08a1b1088e9ff3a9e0a2f6ba49b78ba1f3a3e1980b1e2b7a777b27608fe",
        "XyC6f6ph55_01FdouNBhXBMgu_WDKGnP",
        "98ab8a68-6374-4496-9d2f-11f734743e82",
        "\"p4wski5eYOwco9GsUN9lFSA/F9VwYG3x9qwCpDsCB5w=\"",
        "12345678901234567890",
        "'my key'",
    ] {
        let text = with("api_key_env: MY_KEY", &format!("api_key_env: {key}"));
        // Even when a variable of that name exists, the value is not used as a name.
        let all = |_: &str| Some("whatever".to_owned());
        let e = parse(&text, "cfg.yaml", Path::new("."), &all).unwrap_err().to_string();
        let line = line_of(&text, "api_key_env");
        assert_eq!(
            e,
            format!(
                "cfg.yaml:{line}:16: smile_id.api_key_env: this looks like a key, not a variable name (the value is not \
                 shown); expected the name of an environment variable holding the key, such as SMILE_ID_API_KEY \
                 (letters, digits and _, not starting with a digit)"
            )
        );
        let bare = key.trim_matches(['"', '\'']);
        assert!(!e.contains(&bare[..bare.len().min(8)]), "{e}");
    }
    // A type error there does not quote the value either.
    let text = with("api_key_env: MY_KEY", "api_key_env: {XyC6f6ph55_01FdouNBhXBMgu: 1}");
    let (_, msg) = parse_err(&text);
    assert!(!msg.contains("XyC6f6ph55"), "{msg}");
}

/// The parser's own words (`set DuplicateKeyPolicy in Options`, `budget breached: Nodes {..}`,
/// `invalid u32`, a second "at line, column") do not reach the reader.
#[test]
fn a_duplicate_key_is_named_in_plain_words() {
    let e =
        parse("smile_id:\n  partner_id: \"1\"\n  partner_id: \"2\"\ntargets: []\n", "cfg.yaml", Path::new("."), &env)
            .unwrap_err()
            .to_string();
    assert_eq!(e, "cfg.yaml:3:3: smile_id: duplicate key `partner_id`; expected each key once");
    let text = with("  timeout: 10s", "  timeout: 10s\n  timeout: 5s");
    let e = parse(&text, "cfg.yaml", Path::new("."), &env).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("cfg.yaml:{}:3: poll: duplicate key `timeout`; expected each key once", line_of(&text, "5s"))
    );
}

#[test]
fn a_file_over_the_node_budget_is_called_too_large() {
    let text = with("[NATIONAL_ID]", &format!("[{}NATIONAL_ID]", "BVN,".repeat(250_001)));
    match parse(&text, "cfg.yaml", Path::new("."), &env) {
        Err(ConfigError::Invalid { line, column, message, .. }) => {
            assert_eq!(line, line_of(&text, "BVN,BVN"));
            assert!(column > 0);
            assert_eq!(message, "targets[1].id_types: the file is too large or too deeply nested (over 250000 nodes)");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn whole_numbers_are_asked_for_with_their_range() {
    for (value, why) in
        [("-1", "-1 is out of range"), ("11", "11 is out of range"), ("1.5", "1.5 is not a whole number")]
    {
        let text = with("retries: 2", &format!("retries: {value}"));
        let e = parse(&text, "cfg.yaml", Path::new("."), &env).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "cfg.yaml:{}:12: poll.retries: {why}; expected a whole number from 0 to 10",
                line_of(&text, "retries")
            )
        );
    }
    let text = with("concurrency: 4", "concurrency: 99999999999");
    let (_, msg) = parse_err(&text);
    assert_eq!(msg, "poll.concurrency: 99999999999 is out of range; expected a whole number from 1 to 64");
    // A quoted number is still a number.
    assert_eq!(parse_ok(&with("retries: 2", "retries: \"3\"")).config.poll.retries, 3);

    // Other files' integer fields get the type's range, not `invalid u32`.
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct N {
        n: u32,
    }
    let e = from_yaml::<N>("n: -1\n", "x.yaml").unwrap_err().to_string();
    assert_eq!(e, "x.yaml:1:4: n: expected a whole number from 0 to 4294967295");
}

#[test]
fn schedule_errors_are_typed() {
    assert!(matches!(
        Schedule::parse("0 0 0 30 2 *"),
        Err(ScheduleError::Never { text }) if text == "0 0 0 30 2 *"
    ));
    match Schedule::parse("*/10 * * * *") {
        Err(e @ ScheduleError::Invalid { .. }) => {
            assert!(e.to_string().starts_with("\"*/10 * * * *\" is not a valid cron schedule with seconds"), "{e}");
            // Our words only: the parser's own count ("6 or 7 fields") contradicts "six fields".
            assert!(e.to_string().contains("(it has 5 fields); expected six fields"), "{e}");
            assert!(!e.to_string().contains("7"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

const DISCOVERY_ONLY: &str = "smile_id:\n  partner_id: \"1\"\ndiscovery:\n  enabled: true\n  refresh: 2h\n  countries: [NG, KE]\n  exclude:\n    - country: NG\n      id_types: [PHONE_NUMBER]\n    - country: KE\n";

#[test]
fn discovery_alone_needs_no_targets_and_its_filters_apply() {
    let c = parse_ok(DISCOVERY_ONLY).config;
    assert!(c.targets.is_empty());
    let d = &c.discovery;
    assert!(d.enabled);
    assert_eq!(d.refresh, Duration::from_secs(7200));
    let t = |c: &str, i: &str| Target::new(c.parse().unwrap(), i.parse().unwrap());
    assert!(d.admits(&t("NG", "BVN")));
    assert!(!d.admits(&t("NG", "PHONE_NUMBER")), "excluded");
    assert!(!d.admits(&t("KE", "KRA_PIN")), "an exclusion without id_types takes the whole country");
    assert!(!d.admits(&t("GH", "GHANA_CARD")), "not in countries");
    // The defaults, and a file without the block, as before.
    let c = parse_ok("smile_id:\n  partner_id: \"1\"\ndiscovery: {enabled: true}\n").config;
    assert_eq!(c.discovery.refresh, DEFAULT_DISCOVERY_REFRESH);
    assert!(c.discovery.countries.is_empty() && c.discovery.admits(&t("ZW", "NATIONAL_ID_NO_PHOTO")));
    assert!(!parse_ok(GOOD).config.discovery.enabled);
    // Explicit targets stay alongside discovery, and `targets: []` is fine with it.
    let both = format!("{DISCOVERY_ONLY}targets:\n  - country: ZM\n    id_types: [TPIN]\n");
    assert_eq!(parse_ok(&both).config.targets.len(), 1);
    assert!(parse_ok(&format!("{DISCOVERY_ONLY}targets: []\n")).config.targets.is_empty());
}

#[test]
fn discovery_errors_name_the_line() {
    let (line, msg) = parse_err("smile_id:\n  partner_id: \"1\"\n");
    assert_eq!(line, 1);
    assert!(msg.contains("targets: missing") && msg.contains("discovery.enabled"), "{msg}");
    let (line, msg) = parse_err("smile_id:\n  partner_id: \"1\"\ndiscovery: {enabled: false}\n");
    assert_eq!(line, 1, "{msg}");
    let cases = [
        ("refresh: 2h", "refresh: 10s", "too often"),
        ("refresh: 2h", "refresh: soon", "not a duration"),
        ("countries: [NG, KE]", "countries: []", "the list is empty"),
        ("countries: [NG, KE]", "countries: [NG, NG]", "listed twice"),
        ("countries: [NG, KE]", "countries: [Nigeria]", "ISO 3166-1"),
        ("id_types: [PHONE_NUMBER]", "id_types: []", "id_types is empty"),
        ("  refresh: 2h", "  refresh: 2h\n  colour: red", "colour"),
    ];
    for (from, to, expect) in cases {
        let text = DISCOVERY_ONLY.replacen(from, to, 1);
        let (line, msg) = parse_err(&text);
        let needle = to.lines().last().unwrap().trim();
        assert_eq!(line, line_of(&text, needle), "{to}: {msg}");
        assert!(msg.contains(expect) && msg.contains("discovery"), "{to}: {msg}");
    }
}

#[test]
fn an_exclusion_outside_the_countries_is_a_warning() {
    let text = DISCOVERY_ONLY.replacen("  - country: KE\n", "  - country: GH\n", 1);
    let warnings = parse_ok(&text).warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].line, line_of(&text, "- country: GH"));
    assert!(warnings[0].message.contains("excludes nothing"), "{}", warnings[0].message);
}

mod notify {
    use super::*;
    use crate::model::AuthorityState;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn hooks_env(name: &str) -> Option<String> {
        match name {
            "HOOK_SECRET" => Some(SECRET.to_owned()),
            "SHORT" => Some("whsec_c2hvcnQ=".to_owned()),
            other => env(other),
        }
    }

    fn with_hooks(block: &str) -> String {
        format!("{GOOD}notify:\n  webhooks:\n{block}")
    }

    fn parse_hooks(text: &str) -> Result<Loaded, ConfigError> {
        parse(text, "cfg.yaml", Path::new("."), &hooks_env)
    }

    fn err(text: &str) -> (u32, u32, String) {
        match parse_hooks(text) {
            Err(ConfigError::Invalid { line, column, message, .. }) => (line, column, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn a_webhook_block_is_read_with_its_filters_and_defaults() {
        let text = with_hooks(
            "    - name: resubmitter\n      url: https://kyc.internal/hooks/idauth\n      secret_env: HOOK_SECRET\n      \
             countries: [NG]\n      id_types: [BVN, NIN_V2]\n      states: [online, Offline]\n    \
             - name: all\n      url: http://127.0.0.1:8080/\n      secret_env: HOOK_SECRET\n      timeout: 3s\n",
        );
        let hooks = parse_hooks(&text).unwrap_or_else(|e| panic!("{e}")).config.notify.webhooks;
        assert_eq!(hooks.len(), 2);
        let (a, b) = (&hooks[0], &hooks[1]);
        assert_eq!((a.name.as_str(), a.url.as_str()), ("resubmitter", "https://kyc.internal/hooks/idauth"));
        assert_eq!(a.states, vec![AuthorityState::Online, AuthorityState::Offline]);
        assert_eq!(a.timeout, DEFAULT_WEBHOOK_TIMEOUT);
        let (bvn, ke) = (
            Target::new("NG".parse().unwrap(), "BVN".parse().unwrap()),
            Target::new("KE".parse().unwrap(), "NATIONAL_ID".parse().unwrap()),
        );
        assert!(a.wants(&bvn, AuthorityState::Online) && !a.wants(&bvn, AuthorityState::Interruption));
        assert!(!a.wants(&ke, AuthorityState::Online));
        assert!(b.wants(&ke, AuthorityState::Interruption), "no filter: every change");
        assert_eq!(b.timeout, Duration::from_secs(3));
        assert!(parse_ok(GOOD).config.notify.webhooks.is_empty());
    }

    #[test]
    fn every_mistake_names_its_line_and_never_the_secret() {
        let hook = |extra: &str| {
            with_hooks(&format!(
                "    - name: kyc\n      url: https://kyc.internal/h\n      secret_env: HOOK_SECRET\n{extra}"
            ))
        };
        let cases: Vec<(String, &str, &str)> = vec![
            (hook("      states: [unknown]\n"), "states: [unknown]", "expected online, interruption or offline"),
            (hook("      timeout: 5m\n"), "timeout: 5m", "expected 1s to 60s"),
            (hook("      secret_file: /x\n"), "secret_file: /x", "secret_file and secret_env are both set"),
            (hook("      colour: red\n"), "colour: red", "colour"),
            (
                hook("    - name: kyc\n      url: http://a/\n      secret_env: HOOK_SECRET\n"),
                "    - name: kyc\n      url: http://a/",
                "used by an earlier webhook",
            ),
            (
                with_hooks("    - name: a b\n      url: http://a/\n      secret_env: HOOK_SECRET\n"),
                "name: a b",
                "is not a name",
            ),
            (
                with_hooks("    - name: a\n      url: ftp://a/\n      secret_env: HOOK_SECRET\n"),
                "url: ftp",
                "is not a URL",
            ),
            (
                with_hooks("    - name: a\n      url: https://u:p@a/\n      secret_env: HOOK_SECRET\n"),
                "url: https://u:p",
                "without user:password",
            ),
            (with_hooks("    - name: a\n      url: http://a/\n"), "name: a", "no secret"),
            (
                with_hooks("    - name: a\n      url: http://a/\n      secret_env: SHORT\n"),
                "secret_env: SHORT",
                "24 to 64",
            ),
            (
                with_hooks("    - name: a\n      url: http://a/\n      secret_env: UNSET\n"),
                "secret_env: UNSET",
                "is not set",
            ),
            (
                with_hooks(&format!("    - name: a\n      url: http://a/\n      secret_env: {SECRET}\n")),
                "secret_env: whsec",
                "not a variable name",
            ),
            (
                with_hooks("    - name: a\n      url: http://a/\n      secret_file: /nonexistent/secret\n"),
                "secret_file: /nonexistent",
                "cannot read",
            ),
        ];
        for (text, at, expected) in cases {
            let (line, column, message) = err(&text);
            // The duplicate's error is at its second occurrence.
            let want = if expected == "used by an earlier webhook" {
                text.lines().enumerate().filter(|(_, l)| l.contains("name: kyc")).nth(1).unwrap().0 as u32 + 1
            } else {
                line_of(&text, at.lines().next().unwrap())
            };
            assert_eq!(line, want, "{message}\n{text}");
            assert!(column > 0, "{message}");
            assert!(message.contains(expected), "{message} lacks {expected:?}");
            assert!(!message.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{message}");
        }
    }
}

/// Once the file parses, every section and every list entry is checked: one run shows every
/// mistake, in file order, each with its line.
#[test]
fn every_semantic_error_is_reported_not_only_the_first() {
    let text = with("  timeout: 10s", "  timeout: 0s")
        .replace("    id_types: [BVN, NIN_V2, BANK_ACCOUNT]", "    id_types: [BVN, BVN]")
        .replace("    id_types: [NATIONAL_ID]", "    id_types: []")
        .replace("  listen_address: \":9877\"", "  listen_address: \"nowhere\"");
    let e = parse(&text, "cfg.yaml", Path::new("."), &env).unwrap_err();
    let ConfigError::Several(errors) = &e else { panic!("one error only: {e}") };
    let lines: Vec<u32> = errors
        .iter()
        .map(|e| match e {
            ConfigError::Invalid { line, .. } => *line,
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            line_of(&text, "timeout: 0s"),
            line_of(&text, "[BVN, BVN]"),
            line_of(&text, "id_types: []"),
            line_of(&text, "nowhere")
        ],
        "{e}"
    );
    let shown = e.to_string();
    assert!(shown.starts_with("4 errors:\ncfg.yaml:"), "{shown}");
    assert!(
        shown.contains("listed twice") && shown.contains("id_types is empty") && shown.contains("not an address"),
        "{shown}"
    );
}
