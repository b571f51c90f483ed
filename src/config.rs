//! The configuration file: parsed once, validated, secrets resolved.
//!
//! Every error names the file, the line and column, the key, and what was expected.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use crate::catalog;
use crate::files::{CONFIG_LIMIT, ReadError, SECRET_LIMIT, read_text_capped};
use crate::model::{Country, IdType, Target};
use crate::secret::Secret;

/// The port idauth-exporter listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 9877;
/// The default poll schedule: a minute after each of the provider's 10-minute windows.
pub const DEFAULT_SCHEDULE: &str = "0 1/10 * * * *";
/// The environment variable read for the API key when the file names no source.
pub const DEFAULT_API_KEY_ENV: &str = "SMILE_ID_API_KEY";
/// The file read from `$CREDENTIALS_DIRECTORY` when the file names no source: systemd's
/// `LoadCredential=smile_id_api_key:...`, or a secret mounted there in a container.
pub const CREDENTIAL_NAME: &str = "smile_id_api_key";

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// How to reach Smile ID.
    pub smile_id: SmileIdConfig,
    /// When and how to poll.
    pub poll: PollConfig,
    /// The pairs to watch, in file order, without duplicates.
    pub targets: Vec<Target>,
    /// The HTTP server.
    pub web: WebConfig,
    /// Pairs found in the provider's catalogue, watched besides `targets`.
    pub discovery: DiscoveryConfig,
    /// Who is told of changes of state.
    pub notify: NotifyConfig,
}

/// The `discovery:` section: watch what the provider's catalogue lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Whether to read the catalogue at all.
    pub enabled: bool,
    /// How often to re-read it.
    pub refresh: Duration,
    /// Only these countries; every country when empty.
    pub countries: Vec<Country>,
    /// Pairs never watched through discovery (explicit targets still are).
    pub exclude: Vec<Exclusion>,
}

/// The default `discovery.refresh`.
pub const DEFAULT_DISCOVERY_REFRESH: Duration = Duration::from_secs(6 * 3600);
/// The shortest `discovery.refresh` a file may ask for: the catalogue changes over weeks.
pub const MIN_DISCOVERY_REFRESH: Duration = Duration::from_secs(60);

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            enabled: false,
            refresh: DEFAULT_DISCOVERY_REFRESH,
            countries: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

impl DiscoveryConfig {
    /// Whether a pair the catalogue lists passes `countries` and `exclude`.
    pub fn admits(&self, target: &Target) -> bool {
        (self.countries.is_empty() || self.countries.contains(&target.country))
            && !self.exclude.iter().any(|e| e.matches(target))
    }
}

/// One `discovery.exclude` entry: ID types of a country (all of them when `id_types` is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exclusion {
    /// The country.
    pub country: Country,
    /// The ID types; every ID type of the country when empty.
    pub id_types: Vec<IdType>,
}

impl Exclusion {
    /// Whether this entry excludes `target`.
    pub fn matches(&self, target: &Target) -> bool {
        self.country == target.country && (self.id_types.is_empty() || self.id_types.contains(&target.id_type))
    }
}

/// Which Smile ID account and API flavour to use.
#[derive(Clone, Debug)]
pub struct SmileIdConfig {
    /// The partner ID exactly as issued (leading zeros matter).
    pub partner_id: String,
    /// The API key (never printed).
    pub api_key: Secret,
    /// Production or sandbox.
    pub environment: Environment,
    /// Signed v2 POST or v3 token + GET.
    pub api: ApiFlavor,
    /// Base URL override, without a trailing slash.
    pub base_url: Option<String>,
}

impl SmileIdConfig {
    /// The base URL in use: the override, or the provider's for this flavour and environment.
    pub fn effective_base_url(&self) -> String {
        if let Some(url) = &self.base_url {
            return url.clone();
        }
        match (self.api, self.environment) {
            (ApiFlavor::V2, Environment::Production) => "https://prod.smileidentity.com",
            (ApiFlavor::V2, Environment::Sandbox) => "https://portal.smileidentity.com",
            (ApiFlavor::V3, Environment::Production) => "https://api.smileidentity.com",
            (ApiFlavor::V3, Environment::Sandbox) => "https://testapi.smileidentity.com",
        }
        .to_owned()
    }
}

/// The provider environment that the API key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Live keys.
    Production,
    /// Test keys.
    Sandbox,
}

impl Environment {
    /// The value of the `environment` request field.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Sandbox => "sandbox",
        }
    }
}

/// Which flavour of the id_status endpoint to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiFlavor {
    /// Signed `POST /api/v2/partner/id_status`.
    V2,
    /// `POST /v3/token`, then `GET /v3/services/id_status`.
    V3,
}

/// Poll timing and limits.
#[derive(Clone, Debug)]
pub struct PollConfig {
    /// The cron schedule (with seconds, UTC).
    pub schedule: Schedule,
    /// Timeout of one provider request, body included.
    pub timeout: Duration,
    /// Retries of one request on transient failures.
    pub retries: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests of one cycle are spread over this window.
    pub jitter: Duration,
    /// Data older than this is no longer shown as current.
    pub max_data_age: Duration,
}

/// Why a cron schedule was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The text is not a six-field cron expression.
    #[error(
        "{text:?} is not a valid cron schedule with seconds ({reason}); expected six fields such as {DEFAULT_SCHEDULE:?}"
    )]
    Invalid {
        /// The expression as written.
        text: String,
        /// What the cron parser said.
        reason: String,
    },
    /// The expression is valid but names no time that comes round again.
    #[error("{text:?} never fires; expected a repeating schedule such as {DEFAULT_SCHEDULE:?}")]
    Never {
        /// The expression as written.
        text: String,
    },
}

/// A parsed cron schedule with seconds, evaluated in UTC.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
    period: Duration,
}

impl Schedule {
    /// Parses a six-field cron expression (seconds first).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let cron =
            CronParser::builder().seconds(Seconds::Required).dom_and_dow(true).build().parse(text).map_err(|e| {
                // croner counts an optional year field; say what the user wrote instead.
                let fields = text.split_whitespace().count();
                let reason = if fields == 6 { e.to_string() } else { format!("it has {fields} fields") };
                ScheduleError::Invalid { text: text.to_owned(), reason }
            })?;
        let period = shortest_gap(&cron).ok_or_else(|| ScheduleError::Never { text: text.to_owned() })?;
        Ok(Schedule { text: text.to_owned(), cron, period })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The shortest time between two runs.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The next run strictly after `after`.
    pub fn next_after(&self, after: chrono::DateTime<Utc>) -> Option<chrono::DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.text)
    }
}

/// The shortest gap between consecutive runs over a sample spanning leap-year edges.
fn shortest_gap(cron: &Cron) -> Option<Duration> {
    let start = Utc.with_ymd_and_hms(2027, 12, 31, 0, 0, 0).single()?;
    // Stepped by hand: croner's iterator skips the second after each match.
    let mut prev = cron.find_next_occurrence(&start, false).ok()?;
    let mut best: Option<chrono::TimeDelta> = None;
    for _ in 0..64 {
        let Ok(next) = cron.find_next_occurrence(&prev, false) else {
            break;
        };
        let gap = next - prev;
        best = Some(best.map_or(gap, |b| b.min(gap)));
        prev = next;
    }
    // A schedule that fires once in the sample repeats at most yearly.
    Some(best.and_then(|b| b.to_std().ok()).unwrap_or(Duration::from_secs(366 * 86400)))
}

/// The HTTP server's settings.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// `host:port` to listen on; `:port` means every interface.
    pub listen_address: String,
}

/// Something in the file that works but deserves a look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file, as named to the loader.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: warning: {}", self.file, self.line, self.column, self.message)
    }
}

/// Why a configuration was rejected.
///
/// Each message is complete on one line, the cause included; [`std::error::Error::source`]
/// is `None` so that a printed chain (`{:#}`) does not repeat the cause. Whatever prints it
/// (`Display` or `Debug`), a word that looks like a key is not shown
/// ([`crate::secret::hide_key_like`]): a key pasted into the wrong field is echoed nowhere.
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        file: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The file is larger than its cap (or endless, like `/dev/zero`).
    TooLarge {
        /// The file.
        file: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    NotText {
        /// The file.
        file: String,
    },
    /// The file is not valid.
    Invalid {
        /// The file.
        file: String,
        /// 1-based line (0 when the parser gave none).
        line: u32,
        /// 1-based column (0 when the parser gave none).
        column: u32,
        /// The key and what was expected.
        message: String,
    },
    /// Several mistakes, in file order: every section and every list entry is checked once
    /// the file parses, so one run of `config check` shows them all.
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// `errors` as one error: the only one, or all of them in file order.
    fn all(errors: Vec<ConfigError>) -> ConfigError {
        let mut errors: Vec<ConfigError> = errors
            .into_iter()
            .flat_map(|e| match e {
                ConfigError::Several(inner) => inner,
                e => vec![e],
            })
            .collect();
        errors.sort_by_key(|e| match e {
            ConfigError::Invalid { line, column, .. } => (*line, *column),
            _ => (0, 0),
        });
        if errors.len() == 1 { errors.remove(0) } else { ConfigError::Several(errors) }
    }
}

/// The value of `result`, or `None` with its error kept in `errors`.
fn keep<T>(errors: &mut Vec<ConfigError>, result: Result<T, ConfigError>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { file, source } => write!(f, "{file}: cannot read the file: {source}"),
            ConfigError::TooLarge { file, limit } => write!(
                f,
                "{file}: the file is larger than {}; expected a small text file (is it the right file?)",
                fmt_bytes(*limit)
            ),
            ConfigError::NotText { file } => write!(f, "{file}: the file is not UTF-8 text; expected YAML"),
            ConfigError::Invalid { file, line, column, message } => {
                write!(f, "{file}:{line}:{column}: {}", crate::secret::hide_key_like(message))
            }
            ConfigError::Several(errors) => {
                write!(f, "{} errors:", errors.len())?;
                for e in errors {
                    write!(f, "\n{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigError({self})")
    }
}

impl std::error::Error for ConfigError {}

/// Reads a configuration-like file (configuration, scenario, web configuration) of at most
/// `limit` bytes as text; a larger or endless file is [`ConfigError::TooLarge`].
pub fn read_file(path: &Path, limit: u64) -> Result<String, ConfigError> {
    let file = || path.display().to_string();
    read_text_capped(path, limit).map_err(|e| match e {
        ReadError::Io(source) => ConfigError::Read { file: file(), source },
        ReadError::TooLarge { limit } => ConfigError::TooLarge { file: file(), limit },
        ReadError::NotText => ConfigError::NotText { file: file() },
    })
}

/// A byte count as a person reads it: `4 MiB`, `64 KiB`, `100 bytes`.
pub fn fmt_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// A configuration and the warnings it gave.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Things worth a look that did not stop it.
    pub warnings: Vec<ConfigWarning>,
}

/// Reads, parses and validates a configuration file, reading secrets from the process environment.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = read_file(path, CONFIG_LIMIT)?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &path.display().to_string(), &base_dir, &|name| std::env::var(name).ok())
}

/// Parses and validates configuration text. `env` looks up environment variables and
/// `base_dir` anchors a relative `api_key_file`, as Prometheus does for its own files.
pub fn parse(
    text: &str,
    file: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let raw: RawConfig = from_yaml(text, file)?;
    Validator { file, text, base_dir, env, warnings: Vec::new() }.validate(raw)
}

/// Deserializes YAML; an error names the file, line, column and the key's path.
pub(crate) fn from_yaml<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line() as u32, l.column() as u32));
        let message = plain_message(e.without_snippet());
        // Location wrappers add a `value` step of their own, and a key not yet known is `?`;
        // the reader wants the key.
        let key = path.replace(".value", "");
        let key = key.trim_end_matches(".?").trim_end_matches('?').to_owned();
        // The values of these keys may be the API key: a parser message could quote them.
        let message = if SECRET_KEYS.contains(&key.as_str()) || key.ends_with(".secret_env") {
            "not a valid value (not shown, since it may be the API key); expected a string".to_owned()
        } else {
            message
        };
        let message = if key.is_empty() || key == "." { message } else { format!("{key}: {message}") };
        ConfigError::Invalid { file: file.to_owned(), line, column, message }
    })
}

/// Keys whose values may be the API key, typed there on purpose or by mistake.
const SECRET_KEYS: [&str; 2] = ["smile_id.api_key", "smile_id.api_key_env"];

/// A validation error at `at`.
pub(crate) fn invalid(file: &str, at: &serde_saphyr::Location, message: String) -> ConfigError {
    ConfigError::Invalid { file: file.to_owned(), line: at.line() as u32, column: at.column() as u32, message }
}

fn first_line(s: &str) -> String {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim().to_owned()
}

/// The parser's complaint in plain words, without its internals or a repeated location.
fn plain_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach;
    let budget = serde_saphyr::Budget::default();
    match e {
        E::DuplicateMappingKey { key: Some(key), .. } => format!("duplicate key `{key}`; expected each key once"),
        E::DuplicateMappingKey { key: None, .. } => "duplicate key; expected each key once".to_owned(),
        E::Budget { breach: BudgetBreach::Depth { .. }, .. } => {
            format!("the file is too deeply nested (over {} levels)", budget.max_depth)
        }
        E::Budget { breach: BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. }, .. } => {
            format!("the file is too large or too deeply nested (over {} nodes)", budget.max_nodes)
        }
        E::Budget { .. } => "the file is too large or too complex for a configuration file".to_owned(),
        E::InvalidScalar { ty, .. } => expected_scalar(ty),
        other => {
            let text = first_line(&other.to_string());
            // The parser appends the place, which the error already names up front.
            match text.rsplit_once(" at line ") {
                Some((head, tail)) if tail.contains(", column ") => head.to_owned(),
                _ => text,
            }
        }
    }
}

/// What a scalar of Rust type `ty` should have looked like.
fn expected_scalar(ty: &str) -> String {
    let whole = |lo: i128, hi: u128| format!("expected a whole number from {lo} to {hi}");
    match ty {
        "u8" => whole(0, u8::MAX.into()),
        "u16" => whole(0, u16::MAX.into()),
        "u32" => whole(0, u32::MAX.into()),
        "u64" | "usize" => whole(0, u64::MAX.into()),
        "u128" => whole(0, u128::MAX),
        "i8" => whole(i8::MIN.into(), i8::MAX as u128),
        "i16" => whole(i16::MIN.into(), i16::MAX as u128),
        "i32" => whole(i32::MIN.into(), i32::MAX as u128),
        "i64" | "isize" => whole(i64::MIN.into(), i64::MAX as u128),
        "f32" | "f64" => "expected a number such as 0.5".to_owned(),
        "bool" | "boolean" => "expected true or false".to_owned(),
        "char" => "expected a single character".to_owned(),
        other => format!("expected a value of type {other}"),
    }
}

/// A whole number from `MIN` to `MAX`, refused with that range in words otherwise.
#[derive(Clone, Copy)]
struct Whole<const MIN: u64, const MAX: u64>(u64);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Whole<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64, const MAX: u64>;
        impl<const MIN: u64, const MAX: u64> V<MIN, MAX> {
            fn refuse<E: serde::de::Error>(what: impl fmt::Display, why: &str) -> E {
                E::custom(format!("{what} is {why}; expected a whole number from {MIN} to {MAX}"))
            }
        }
        impl<const MIN: u64, const MAX: u64> serde::de::Visitor<'_> for V<MIN, MAX> {
            type Value = Whole<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a whole number from {MIN} to {MAX}")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                if (MIN..=MAX).contains(&v) { Ok(Whole(v)) } else { Err(Self::refuse(v, "out of range")) }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v).map_err(|_| Self::refuse(v, "out of range")).and_then(|v| self.visit_u64(v))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Self::Value, E> {
                u64::try_from(v).map_err(|_| Self::refuse(v, "out of range")).and_then(|v| self.visit_u64(v))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Self::Value, E> {
                u64::try_from(v).map_err(|_| Self::refuse(v, "out of range")).and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(Self::refuse(v, "not a whole number"))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Err(Self::refuse(v, "not a number"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                // A quoted number is still the number.
                match v.trim().parse::<u64>() {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(Self::refuse(format_args!("{v:?}"), "not a whole number")),
                }
            }
        }
        d.deserialize_any(V::<MIN, MAX>)
    }
}

/// A span-carrying value, or its absence with the place of its parent.
type At<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    smile_id: At<RawSmileId>,
    #[serde(default)]
    poll: RawPoll,
    #[serde(default)]
    targets: Option<At<Vec<RawTarget>>>,
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    discovery: Option<At<RawDiscovery>>,
    #[serde(default)]
    notify: notify::RawNotify,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    refresh: Option<At<HumanDuration>>,
    #[serde(default)]
    countries: Option<At<Vec<At<Country>>>>,
    #[serde(default)]
    exclude: Vec<RawExclusion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExclusion {
    country: At<Country>,
    #[serde(default)]
    id_types: Option<At<Vec<At<IdType>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmileId {
    partner_id: At<PartnerId>,
    #[serde(default)]
    api_key: Option<At<String>>,
    #[serde(default)]
    api_key_file: Option<At<PathBuf>>,
    #[serde(default)]
    api_key_env: Option<At<KeyEnvName>>,
    #[serde(default = "default_environment")]
    environment: Environment,
    #[serde(default = "default_api")]
    api: ApiFlavor,
    #[serde(default)]
    base_url: Option<At<String>>,
}

fn default_environment() -> Environment {
    Environment::Production
}
fn default_api() -> ApiFlavor {
    ApiFlavor::V2
}

/// A partner ID as written: a string, or an unquoted number that YAML has read as one (and
/// whose leading zeros are gone); the validator explains the latter from the file's text.
enum PartnerId {
    Quoted(String),
    Unquoted(String),
}

impl<'de> Deserialize<'de> for PartnerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PartnerId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quoted string of digits such as \"085\" (leading zeros matter)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PartnerId, E> {
                if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::custom(format!(
                        "{v:?} is not a partner ID; expected a quoted string of digits such as \"085\""
                    )));
                }
                Ok(PartnerId::Quoted(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PartnerId, E> {
                Ok(PartnerId::Unquoted(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PartnerId, E> {
                Ok(PartnerId::Unquoted(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<PartnerId, E> {
                Ok(PartnerId::Unquoted(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The value of `api_key_env`: meant to be a variable name, but held as a secret until it is
/// known to be one, since a key pasted there must never be printed. A value that is not a
/// string (a number, say) is kept as `None`: it is not a name either.
struct KeyEnvName(Option<Secret>);

impl KeyEnvName {
    /// The variable name, when the value is one and does not look like a key.
    fn name(&self) -> Option<&str> {
        let s = self.0.as_ref()?.expose();
        let mut bytes = s.bytes();
        let first = bytes.next()?;
        let is_name =
            (first.is_ascii_alphabetic() || first == b'_') && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        (is_name && !crate::secret::looks_like_key(s)).then_some(s)
    }
}

impl<'de> Deserialize<'de> for KeyEnvName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = KeyEnvName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the name of an environment variable such as SMILE_ID_API_KEY")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyEnvName, E> {
                Ok(KeyEnvName(Some(Secret::new(v))))
            }
            // Any other scalar is refused later, without showing it: serde's own message would.
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<KeyEnvName, E> {
                Ok(KeyEnvName(None))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<KeyEnvName, E> {
                Ok(KeyEnvName(None))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<KeyEnvName, E> {
                Ok(KeyEnvName(None))
            }
            fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<KeyEnvName, E> {
                Ok(KeyEnvName(None))
            }
            fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<KeyEnvName, E> {
                Ok(KeyEnvName(None))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<KeyEnvName, E> {
                Ok(KeyEnvName(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPoll {
    schedule: Option<At<String>>,
    timeout: Option<At<HumanDuration>>,
    retries: Option<At<Whole<0, 10>>>,
    concurrency: Option<At<Whole<1, 64>>>,
    jitter: Option<At<HumanDuration>>,
    max_data_age: Option<At<HumanDuration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    country: At<Country>,
    id_types: At<Vec<At<IdType>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen_address: Option<At<String>>,
}

/// A duration written the humane way: `10s`, `30m`, `1h30m`.
#[derive(Clone, Copy)]
pub(crate) struct HumanDuration(pub(crate) Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(HumanDuration).map_err(|e| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration ({e}); expected a number with a unit such as 10s, 30m or 1h"
            ))
        })
    }
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
    base_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    warnings: Vec<ConfigWarning>,
}

impl Validator<'_> {
    fn error<T>(&self, at: &serde_saphyr::Location, message: String) -> Result<T, ConfigError> {
        Err(invalid(self.file, at, message))
    }

    /// The text of the file at `at`, as written.
    fn source_of(&self, at: &serde_saphyr::Location) -> Option<&str> {
        let span = at.span();
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        self.text.get(start..start.checked_add(len)?)
    }

    /// Where the `smile_id:` key is, for errors about the section as a whole; the parser
    /// places a mapping at its first key, which is the wrong line to look at.
    fn smile_id_key(&self, section: &serde_saphyr::Location) -> (u32, u32) {
        let found = self
            .text
            .lines()
            .position(|l| l.strip_prefix("smile_id").is_some_and(|rest| rest.trim_start().starts_with(':')));
        match found {
            Some(i) => (i as u32 + 1, 1),
            None => (section.line() as u32, section.column() as u32),
        }
    }

    /// The text of the secret file `path` (relative to the configuration's directory); an
    /// error at `key` says why not and that it should hold only `what`.
    fn read_secret_file(&self, path: &At<PathBuf>, key: &str, what: &str) -> Result<String, ConfigError> {
        let full = self.base_dir.join(&path.value);
        read_text_capped(&full, SECRET_LIMIT).or_else(|e| {
            let why = match e {
                ReadError::Io(e) => format!("cannot read {}: {e}", full.display()),
                ReadError::TooLarge { limit } => format!("{} is larger than {}", full.display(), fmt_bytes(limit)),
                ReadError::NotText => format!("{} is not UTF-8 text", full.display()),
            };
            self.error(&path.referenced, format!("{key}: {why}; expected a readable file holding only {what}"))
        })
    }

    fn section_error<T>(&self, section: &serde_saphyr::Location, message: String) -> Result<T, ConfigError> {
        let (line, column) = self.smile_id_key(section);
        Err(ConfigError::Invalid { file: self.file.to_owned(), line, column, message })
    }

    fn warn(&mut self, at: &serde_saphyr::Location, message: String) {
        self.warnings.push(ConfigWarning {
            file: self.file.to_owned(),
            line: at.line() as u32,
            column: at.column() as u32,
            message,
        });
    }

    fn validate(mut self, raw: RawConfig) -> Result<Loaded, ConfigError> {
        let mut errors = Vec::new();
        let smile_id = keep(&mut errors, self.smile_id(raw.smile_id));
        let poll = keep(&mut errors, self.poll(raw.poll));
        let discovery = keep(&mut errors, self.discovery(raw.discovery));
        // A discovery section in error may be meant on: no error about missing targets then.
        let discovering = discovery.as_ref().is_none_or(|d| d.enabled);
        let targets = match raw.targets {
            Some(t) if discovering && t.value.is_empty() => Some(Vec::new()),
            Some(t) => keep(&mut errors, self.targets(t)),
            None if discovering => Some(Vec::new()),
            None => {
                errors.push(ConfigError::Invalid {
                    file: self.file.to_owned(),
                    line: 1,
                    column: 1,
                    message: "targets: missing; expected a list of countries with id_types, or discovery.enabled: true"
                        .to_owned(),
                });
                None
            }
        };
        let web = keep(&mut errors, self.web(raw.web));
        let notify = keep(&mut errors, self.notify(raw.notify));
        match (smile_id, poll, discovery, targets, web, notify) {
            (Some(smile_id), Some(poll), Some(discovery), Some(targets), Some(web), Some(notify))
                if errors.is_empty() =>
            {
                Ok(Loaded {
                    config: Config { smile_id, poll, targets, web, discovery, notify },
                    warnings: self.warnings,
                })
            }
            _ => Err(ConfigError::all(errors)),
        }
    }

    fn discovery(&mut self, raw: Option<At<RawDiscovery>>) -> Result<DiscoveryConfig, ConfigError> {
        let Some(raw) = raw.map(|r| r.value) else {
            return Ok(DiscoveryConfig::default());
        };
        let refresh = match raw.refresh {
            None => DEFAULT_DISCOVERY_REFRESH,
            Some(r) if r.value.0 < MIN_DISCOVERY_REFRESH => {
                return self.error(
                    &r.referenced,
                    format!(
                        "discovery.refresh: {} is too often; expected at least {} (the catalogue changes over weeks)",
                        fmt_duration(r.value.0),
                        fmt_duration(MIN_DISCOVERY_REFRESH)
                    ),
                );
            }
            Some(r) => r.value.0,
        };
        let mut countries = Vec::new();
        if let Some(list) = raw.countries {
            if list.value.is_empty() {
                return self.error(
                    &list.referenced,
                    "discovery.countries: the list is empty; expected country codes such as [NG, KE], or no countries key for all"
                        .to_owned(),
                );
            }
            for c in list.value {
                if countries.contains(&c.value) {
                    return self.error(
                        &c.referenced,
                        format!("discovery.countries: {} is listed twice; expected each country once", c.value),
                    );
                }
                countries.push(c.value);
            }
        }
        let mut exclude = Vec::new();
        for e in raw.exclude {
            let id_types = match e.id_types {
                None => Vec::new(),
                Some(list) if list.value.is_empty() => {
                    return self.error(
                        &list.referenced,
                        format!(
                            "discovery.exclude: {}: id_types is empty; expected ID types such as [PHONE_NUMBER], or no id_types key for the whole country",
                            e.country.value
                        ),
                    );
                }
                Some(list) => list.value.into_iter().map(|i| i.value).collect(),
            };
            if !countries.is_empty() && !countries.contains(&e.country.value) {
                self.warn(
                    &e.country.referenced,
                    format!(
                        "discovery.exclude: {} is not in discovery.countries; this entry excludes nothing",
                        e.country.value
                    ),
                );
            }
            exclude.push(Exclusion { country: e.country.value, id_types });
        }
        Ok(DiscoveryConfig { enabled: raw.enabled, refresh, countries, exclude })
    }

    fn smile_id(&mut self, raw: At<RawSmileId>) -> Result<SmileIdConfig, ConfigError> {
        let section = raw.referenced;
        let raw = raw.value;
        let sources = [
            raw.api_key.as_ref().map(|s| ("api_key", s.referenced)),
            raw.api_key_file.as_ref().map(|s| ("api_key_file", s.referenced)),
            raw.api_key_env.as_ref().map(|s| ("api_key_env", s.referenced)),
        ];
        let mut given: Vec<_> = sources.iter().flatten().collect();
        given.sort_by_key(|(_, at)| (at.line(), at.column()));
        if let Some((_, last)) = given.get(1..).and_then(<[_]>::last) {
            let names: Vec<_> = given.iter().map(|(n, _)| format!("smile_id.{n}")).collect();
            return self.error(
                last,
                format!("{} are all set; expected exactly one source for the API key", names.join(" and ")),
            );
        }
        let api_key = if let Some(inline) = raw.api_key {
            self.warn(
                &inline.referenced,
                "smile_id.api_key holds the API key in the configuration file; move it to a file (api_key_file) or the environment (api_key_env)".to_owned(),
            );
            inline.value
        } else if let Some(path) = raw.api_key_file {
            self.read_secret_file(&path, "smile_id.api_key_file", "the API key")?
                .trim_end_matches(['\r', '\n'])
                .to_owned()
        } else if let Some(value) = raw.api_key_env {
            let Some(name) = value.value.name() else {
                return self.error(
                    &value.referenced,
                    format!(
                        "smile_id.api_key_env: this looks like a key, not a variable name (the value is not shown); \
                         expected the name of an environment variable holding the key, such as {DEFAULT_API_KEY_ENV} \
                         (letters, digits and _, not starting with a digit)"
                    ),
                );
            };
            match (self.env)(name) {
                Some(v) => v,
                None => {
                    return self.error(
                        &value.referenced,
                        format!("smile_id.api_key_env: the environment variable {name} is not set; expected it to hold the API key"),
                    );
                }
            }
        } else {
            // systemd's LoadCredential= (and containers that set CREDENTIALS_DIRECTORY to
            // where their secrets are mounted) put the key in a file of a known name.
            let credential = match (self.env)("CREDENTIALS_DIRECTORY").map(|dir| Path::new(&dir).join(CREDENTIAL_NAME))
            {
                None => None,
                Some(path) => match read_text_capped(&path, SECRET_LIMIT) {
                    Ok(s) => Some(s),
                    Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        let why = match e {
                            ReadError::TooLarge { limit } => format!("is larger than {}", fmt_bytes(limit)),
                            ReadError::NotText => "is not UTF-8 text".to_owned(),
                            ReadError::Io(e) => format!("cannot be read: {e}"),
                        };
                        return self.section_error(
                            &section,
                            format!(
                                "smile_id: the credential {} {why}; expected a file holding only the API key",
                                path.display()
                            ),
                        );
                    }
                },
            };
            match credential
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .or_else(|| (self.env)(DEFAULT_API_KEY_ENV))
            {
                Some(v) => v,
                None => {
                    return self.section_error(
                        &section,
                        format!(
                            "smile_id: no API key; set api_key_file or api_key_env, provide the credential \
                             {CREDENTIAL_NAME} in $CREDENTIALS_DIRECTORY, or set the environment variable {DEFAULT_API_KEY_ENV}"
                        ),
                    );
                }
            }
        };
        if api_key.trim().is_empty() {
            return self.section_error(&section, "smile_id: the API key is empty; expected a non-empty key".to_owned());
        }
        let base_url = match raw.base_url {
            None => None,
            Some(url) => {
                let parsed = reqwest::Url::parse(&url.value)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none());
                if parsed.is_none() {
                    return self.error(
                        &url.referenced,
                        format!(
                            "smile_id.base_url: {:?} is not a base URL; expected http(s)://host[:port][/path]",
                            url.value
                        ),
                    );
                }
                Some(url.value.trim_end_matches('/').to_owned())
            }
        };
        let partner_id = match raw.partner_id.value {
            PartnerId::Quoted(id) => id,
            PartnerId::Unquoted(number) => {
                let at = raw.partner_id.referenced;
                let written = self.source_of(&at).unwrap_or(&number).trim().to_owned();
                let message = if written.bytes().all(|b| b.is_ascii_digit()) {
                    format!(
                        "smile_id.partner_id: quote it: \"{written}\"; unquoted, YAML reads {written} as a number \
                         and drops leading zeros"
                    )
                } else {
                    format!(
                        "smile_id.partner_id: {written} is not a partner ID; expected a quoted string of digits such as \"085\""
                    )
                };
                return self.error(&at, message);
            }
        };
        Ok(SmileIdConfig {
            partner_id,
            api_key: Secret::new(api_key),
            environment: raw.environment,
            api: raw.api,
            base_url,
        })
    }

    fn poll(&mut self, raw: RawPoll) -> Result<PollConfig, ConfigError> {
        let schedule_at = raw.schedule.as_ref().map(|s| s.referenced);
        let schedule = match raw.schedule {
            None => Schedule::parse(DEFAULT_SCHEDULE).expect("the default schedule parses"),
            Some(s) => match Schedule::parse(&s.value) {
                Ok(schedule) => schedule,
                Err(e) => return self.error(&s.referenced, format!("poll.schedule: {e}")),
            },
        };
        let period = schedule.period();
        let dur = |d: &Option<At<HumanDuration>>, default: u64| {
            d.as_ref().map_or(Duration::from_secs(default), |d| d.value.0)
        };
        let timeout = dur(&raw.timeout, 10);
        if let Some(t) = &raw.timeout {
            if timeout.is_zero() {
                return self.error(&t.referenced, "poll.timeout: must be longer than zero".to_owned());
            }
            if timeout > period {
                return self.error(
                    &t.referenced,
                    format!(
                        "poll.timeout: {} is longer than the schedule's period of {}; expected at most {}",
                        fmt_duration(timeout),
                        fmt_duration(period),
                        fmt_duration(period)
                    ),
                );
            }
        }
        // Their ranges are checked as they are read.
        let retries = raw.retries.as_ref().map_or(2, |r| r.value.0 as u32);
        let concurrency = raw.concurrency.as_ref().map_or(4, |c| c.value.0 as usize);
        let jitter = dur(&raw.jitter, 30);
        if let Some(j) = &raw.jitter
            && jitter >= period
        {
            return self.error(
                &j.referenced,
                format!(
                    "poll.jitter: {} is not shorter than the schedule's period of {}",
                    fmt_duration(jitter),
                    fmt_duration(period)
                ),
            );
        }
        let max_data_age = match &raw.max_data_age {
            None => Duration::from_secs(30 * 60).max(period * 2),
            Some(m) if m.value.0 <= period => {
                return self.error(
                    &m.referenced,
                    format!(
                        "poll.max_data_age: {} would mark data stale before the next poll; expected longer than the schedule's period of {}",
                        fmt_duration(m.value.0), fmt_duration(period)
                    ),
                );
            }
            Some(m) => m.value.0,
        };
        if let Err(e) = crate::model::PollBudget::check(period, jitter, timeout, retries) {
            let at = [&raw.timeout, &raw.jitter].into_iter().flatten().map(|d| d.referenced).next();
            let at = at.or(raw.retries.as_ref().map(|r| r.referenced)).or(schedule_at);
            return self.error(&at.unwrap_or(serde_saphyr::Location::UNKNOWN), format!("poll: {e}"));
        }
        Ok(PollConfig { schedule, timeout, retries, concurrency, jitter, max_data_age })
    }

    fn targets(&mut self, raw: At<Vec<RawTarget>>) -> Result<Vec<Target>, ConfigError> {
        if raw.value.is_empty() {
            return self.error(
                &raw.referenced,
                "targets: the list is empty; expected at least one country with id_types".to_owned(),
            );
        }
        let mut seen = HashSet::new();
        let mut targets = Vec::new();
        let mut unlisted = Vec::new();
        let mut errors = Vec::new();
        for t in raw.value {
            if t.id_types.value.is_empty() {
                errors.push(invalid(
                    self.file,
                    &t.id_types.referenced,
                    format!(
                        "targets: {}: id_types is empty; expected at least one ID type such as BVN",
                        t.country.value
                    ),
                ));
                continue;
            }
            for id in t.id_types.value {
                let target = Target::new(t.country.value, id.value);
                if !seen.insert(target.clone()) {
                    errors.push(invalid(
                        self.file,
                        &id.referenced,
                        format!(
                            "targets: {} {} is listed twice; expected each pair once",
                            target.country, target.id_type
                        ),
                    ));
                    continue;
                }
                if !catalog::is_known(&target.country, &target.id_type) {
                    unlisted.push((id.referenced, target.clone()));
                }
                targets.push(target);
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError::all(errors));
        }
        self.warn_unlisted(&unlisted);
        Ok(targets)
    }

    /// One warning, at the first, for every pair missing from the reference table: a
    /// generated list of thousands must not flood the log with a line each.
    fn warn_unlisted(&mut self, unlisted: &[(serde_saphyr::Location, Target)]) {
        const SHOWN: usize = 5;
        let message = match unlisted {
            [] => return,
            [(_, t)] => format!(
                "targets: {} {} is not in Smile ID's documented list for {}; polling it anyway",
                t.country, t.id_type, t.country
            ),
            [..] => {
                let first: Vec<String> =
                    unlisted.iter().take(SHOWN).map(|(_, t)| format!("{} {}", t.country, t.id_type)).collect();
                let more = unlisted.len().saturating_sub(SHOWN);
                format!(
                    "targets: {} pairs are not in Smile ID's documented list; polling them anyway: {}{}",
                    unlisted.len(),
                    first.join(", "),
                    if more > 0 { format!(" and {more} more") } else { String::new() }
                )
            }
        };
        self.warn(&unlisted[0].0, message);
    }

    fn web(&mut self, raw: RawWeb) -> Result<WebConfig, ConfigError> {
        let listen_address = match raw.listen_address {
            None => format!("0.0.0.0:{DEFAULT_PORT}"),
            Some(a) => match normalize_listen_address(&a.value) {
                Some(addr) => addr,
                None => {
                    return self.error(
                        &a.referenced,
                        format!("web.listen_address: {:?} is not an address; expected host:port such as \"0.0.0.0:{DEFAULT_PORT}\" or \":{DEFAULT_PORT}\"", a.value),
                    );
                }
            },
        };
        Ok(WebConfig { listen_address })
    }
}

/// Checks a `host:port` listen address, turning `:port` into `0.0.0.0:port`, which the
/// server binds dual-stack (every IPv4 and IPv6 interface), as Go exporters do.
pub fn normalize_listen_address(s: &str) -> Option<String> {
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.contains(':') && !bracketed || host.contains(char::is_whitespace) || host.contains('/') {
        return None;
    }
    Some(format!("{host}:{port}"))
}

pub use crate::model::fmt_duration;

mod notify;
pub use notify::{DEFAULT_WEBHOOK_TIMEOUT, NotifyConfig, WebhookConfig};

#[cfg(test)]
mod tests;
