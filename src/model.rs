//! Domain values, parsed once at the edges: [`Country`], [`IdType`], [`Target`],
//! [`AuthorityState`] and the provider's [`Observation`] of one authority; why a poll
//! failed ([`PollError`], [`FailureReason`]); how long one poll may take ([`PollBudget`]); and the
//! [`Clock`] that the poller and the v3 client read, so tests can set the time.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::secret::Secret;

/// Every ISO 3166-1 alpha-2 code currently assigned, two letters each.
const ISO_3166_ALPHA2: &str = "\
ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZCACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZ\
DEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIRISITJEJM\
JOJPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNR\
NUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQARERORSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTT\
TVTWTZUAUGUMUSUYUZVAVCVEVGVIVNVUWFWSYEYTZAZMZW";

/// An ISO 3166-1 alpha-2 country code such as `NG`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

/// Why a string is not a [`Country`] or an [`IdType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Not two upper-case letters.
    #[error("{0:?} is not an ISO 3166-1 alpha-2 country code (expected two upper-case letters such as NG)")]
    Country(String),
    /// Two upper-case letters that ISO 3166-1 has not assigned to a country.
    #[error("{0:?} is not a country: ISO 3166-1 assigns no country that code (expected one such as NG, KE or GH)")]
    UnassignedCountry(String),
    /// Not an upper-case identifier.
    #[error("{0:?} is not an ID type (expected upper-case letters, digits and underscores, such as BVN)")]
    IdType(String),
}

impl Country {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for Country {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 2 || !b.iter().all(u8::is_ascii_uppercase) {
            return Err(DomainError::Country(s.chars().take(40).collect()));
        }
        if ISO_3166_ALPHA2.as_bytes().chunks(2).any(|c| c == b) {
            Ok(Country([b[0], b[1]]))
        } else {
            Err(DomainError::UnassignedCountry(s.to_owned()))
        }
    }
}

/// A Smile ID ID type such as `BVN` or `NIN_V2`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdType(String);

impl IdType {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IdType {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=64).contains(&s.len())
            && s.as_bytes()[0].is_ascii_uppercase()
            && s.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
        if ok { Ok(IdType(s.to_owned())) } else { Err(DomainError::IdType(s.chars().take(70).collect())) }
    }
}

macro_rules! text_value {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
text_value!(Country);
text_value!(IdType);

/// One (country, id_type) pair whose authority is watched.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Target {
    /// Where the authority is.
    pub country: Country,
    /// Which of its ID types.
    pub id_type: IdType,
}

impl Target {
    /// A pair from its parts.
    pub fn new(country: Country, id_type: IdType) -> Self {
        Target { country, id_type }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.country, self.id_type)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// How an ID authority is doing, as the provider names it, plus our own `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorityState {
    /// The provider reports the authority as working.
    Online,
    /// Partly working.
    Interruption,
    /// Down: jobs fail with result code 1015.
    Offline,
    /// We do not know: no data, stale data, or a status we do not recognise.
    Unknown,
}

impl AuthorityState {
    /// Every state, in the order the `state` label lists them.
    pub const ALL: [AuthorityState; 4] =
        [AuthorityState::Online, AuthorityState::Interruption, AuthorityState::Offline, AuthorityState::Unknown];

    /// The `state` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorityState::Online => "online",
            AuthorityState::Interruption => "interruption",
            AuthorityState::Offline => "offline",
            AuthorityState::Unknown => "unknown",
        }
    }

    /// The provider's `last_known_status` text; anything unrecognised is `Unknown`.
    pub fn from_provider(s: &str) -> AuthorityState {
        match s.trim().to_ascii_lowercase().as_str() {
            "online" => AuthorityState::Online,
            "interruption" => AuthorityState::Interruption,
            "offline" => AuthorityState::Offline,
            _ => AuthorityState::Unknown,
        }
    }

    /// The state the provider's thresholds give a 10-minute success ratio.
    ///
    /// The FAQ's prose and table disagree at the edges; we take 91% as online (prose)
    /// and 50% as offline (table), so that neither edge is called better than it is
    /// described anywhere.
    pub fn from_success_ratio(ratio: f64) -> AuthorityState {
        if ratio >= 0.91 {
            AuthorityState::Online
        } else if ratio > 0.50 {
            AuthorityState::Interruption
        } else {
            AuthorityState::Offline
        }
    }
}

impl fmt::Display for AuthorityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the provider said about one authority in one successful poll.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observation {
    /// The state, from `last_known_status`, or derived from `rate_10m` when absent.
    pub state: AuthorityState,
    /// `last_known_status` as sent, when it was not one we recognise (for logs).
    pub unrecognized_status: Option<String>,
    /// Success ratio (0..1) of the provider's last 10-minute window.
    pub rate_10m: Option<Rate>,
    /// Success ratio (0..1) over the provider's last hour.
    pub rate_1h: Option<Rate>,
    /// When the provider last checked the authority.
    #[serde(with = "timestamp::option")]
    pub last_checked: Option<DateTime<Utc>>,
}

/// A success ratio from 0 to 1, held as the decimal the provider wrote (`"97.4%"` is
/// exactly 0.974), so that every output can show it without binary floating-point noise.
///
/// The ratio is `units / 10^scale`, normalised (no trailing zero in `units`), so equal
/// ratios compare equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    units: u64,
    scale: u32,
}

impl Rate {
    /// 100%.
    pub const ONE: Rate = Rate { units: 1, scale: 0 };
    /// Percent decimals kept: far beyond any provider's precision, and small enough that
    /// every rate has at most 13 significant digits, which an `f64` round-trips exactly.
    const MAX_PERCENT_DECIMALS: u32 = 10;

    /// The nearest `f64`, for arithmetic and thresholds. Its shortest decimal form (Rust's
    /// `Display`, serde_json, the Prometheus encoder) is the exact decimal again, because
    /// `units` and `10^scale` are both exact `f64`s and one division rounds correctly.
    pub fn as_f64(self) -> f64 {
        self.units as f64 / 10f64.powi(self.scale as i32)
    }

    /// The rate nearest `x` with at most 12 decimals (a round trip of [`Rate::as_f64`]
    /// gives the same rate back); `None` outside 0 to 1 or for NaN.
    pub fn from_f64(x: f64) -> Option<Rate> {
        if !(0.0..=1.0).contains(&x) {
            return None;
        }
        let text = format!("{x:.12}");
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let units: u64 = format!("{int}{frac}").parse().ok()?;
        Some(Rate::normalised(units, frac.len() as u32))
    }

    /// As a percentage with exactly the provider's decimals: `97.4%`, `100%`, `0%`.
    pub fn percent(self) -> String {
        // Shift the decimal point two places right.
        match self.scale.checked_sub(2) {
            Some(scale) => format!("{}%", decimal(self.units, scale)),
            None => format!("{}%", self.units * 10u64.pow(2 - self.scale)),
        }
    }

    fn normalised(mut units: u64, mut scale: u32) -> Rate {
        while scale > 0 && units.is_multiple_of(10) {
            units /= 10;
            scale -= 1;
        }
        if units == 0 {
            scale = 0;
        }
        Rate { units, scale }
    }
}

/// `units / 10^scale` in plain decimal.
fn decimal(units: u64, scale: u32) -> String {
    if scale == 0 {
        return units.to_string();
    }
    let digits = format!("{units:0>width$}", width = scale as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    format!("{int}.{frac}")
}

impl fmt::Display for Rate {
    /// The ratio in plain decimal: `0.974`, `1`, `0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&decimal(self.units, self.scale))
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rate({self})")
    }
}

impl Serialize for Rate {
    /// A JSON number whose text is the exact decimal (see [`Rate::as_f64`]).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

/// Parses a provider rate such as `"16%"`, `"91.5%"` or `"16"` into a [`Rate`].
///
/// A bare number is read as a percentage too, since the provider only ever speaks
/// in percents. The text is read as a decimal, never through a float: `"97.4%"` is
/// 0.974 exactly. Empty, `N/A`, exponents, signs or out-of-range values give `None`;
/// decimals beyond the tenth of a percent are rounded half up.
pub fn parse_rate(raw: &str) -> Option<Rate> {
    let s = raw.trim();
    let s = s.strip_suffix('%').unwrap_or(s).trim_end();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if int.len() > 3 {
        return None;
    }
    let kept = frac.len().min(Rate::MAX_PERCENT_DECIMALS as usize);
    let digits = format!("{int}{}", &frac[..kept]);
    let mut units: u64 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    if frac.as_bytes().get(kept).is_some_and(|d| *d >= b'5') {
        units += 1;
    }
    // The percent's `kept` decimals, then two more for the shift from percent to ratio.
    let rate = Rate::normalised(units, kept as u32 + 2);
    (rate.units <= 10u64.pow(rate.scale)).then_some(rate)
}

/// Why a poll failed, as the `reason` label of `idauth_poll_failures_total` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    /// No complete answer within the timeout.
    Timeout,
    /// No connection (DNS, refused, TLS).
    Connect,
    /// The provider refused our credentials.
    Unauthorized,
    /// HTTP 429.
    RateLimited,
    /// Another 4xx.
    Http4xx,
    /// A 5xx.
    Http5xx,
    /// An answer we could not read.
    InvalidResponse,
    /// The provider has no data for the pair in the last hour.
    NoData,
}

impl FailureReason {
    /// Every reason, for initialising counters at zero.
    pub const ALL: [FailureReason; 8] = [
        FailureReason::Timeout,
        FailureReason::Connect,
        FailureReason::Unauthorized,
        FailureReason::RateLimited,
        FailureReason::Http4xx,
        FailureReason::Http5xx,
        FailureReason::InvalidResponse,
        FailureReason::NoData,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::Connect => "connect",
            FailureReason::Unauthorized => "unauthorized",
            FailureReason::RateLimited => "rate_limited",
            FailureReason::Http4xx => "http_4xx",
            FailureReason::Http5xx => "http_5xx",
            FailureReason::InvalidResponse => "invalid_response",
            FailureReason::NoData => "no_data",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole time one poll of one pair may take: its requests, their retries and any
/// `Retry-After` or back-off waits together.
///
/// The budget is the schedule's period minus `poll.jitter`: a poll that starts as late as
/// the jitter window allows still ends before the next tick is due, so a slow or
/// rate-limited pair is done (or given up on) by the time it would be polled again.
/// A configuration whose `timeout × (retries + 1)` does not fit is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollBudget(Duration);

/// A `timeout × (retries + 1)` that cannot fit the [`PollBudget`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "timeout {} × {attempts} attempts (retries + 1) = {} does not fit the poll budget of {} \
     (the schedule's period of {} minus jitter {}); shorten poll.timeout, lower poll.retries \
     or poll less often",
    fmt_secs(*timeout), fmt_secs(timeout.saturating_mul(*attempts)), fmt_secs(*budget), fmt_secs(*period),
    fmt_secs(*jitter)
)]
pub struct BudgetError {
    /// `poll.timeout`.
    pub timeout: Duration,
    /// `poll.retries + 1`.
    pub attempts: u32,
    /// The budget.
    pub budget: Duration,
    /// The schedule's period.
    pub period: Duration,
    /// `poll.jitter`.
    pub jitter: Duration,
}

fn fmt_secs(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

impl PollBudget {
    /// The budget for a schedule of `period` whose polls are spread over `jitter`.
    pub fn new(period: Duration, jitter: Duration) -> PollBudget {
        PollBudget(period.saturating_sub(jitter))
    }

    /// The budget itself.
    pub fn get(self) -> Duration {
        self.0
    }

    /// Checks that `retries + 1` attempts of `timeout` each fit; the config validation
    /// calls this. Back-off and `Retry-After` waits are cut at run time: a wait that would
    /// overrun the budget ends the poll at once.
    pub fn check(
        period: Duration,
        jitter: Duration,
        timeout: Duration,
        retries: u32,
    ) -> Result<PollBudget, BudgetError> {
        let budget = PollBudget::new(period, jitter);
        let attempts = retries.saturating_add(1);
        if timeout.saturating_mul(attempts) > budget.0 {
            return Err(BudgetError { timeout, attempts, budget: budget.0, period, jitter });
        }
        Ok(budget)
    }
}

/// Where the time comes from: the system clock in the daemon, a settable one in tests.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// Moves the clock on by `d`.
    pub fn advance(&self, d: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A clock that follows tokio's (paused in tests, so `tokio::time::advance` moves it),
/// starting from the wall-clock time when it was made.
#[derive(Debug)]
pub struct TokioClock {
    origin: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock starting now.
    pub fn new() -> TokioClock {
        TokioClock { origin: Utc::now(), start: tokio::time::Instant::now() }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.origin + chrono::TimeDelta::from_std(self.start.elapsed()).unwrap_or(chrono::TimeDelta::MAX)
    }
}

/// A failed poll. Once through [`PollError::redact`] (every client's result is), its
/// messages are cut short and never hold the API key.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PollError {
    /// No complete answer in time.
    #[error("no complete answer within {}", fmt_duration(*.0))]
    Timeout(Duration),
    /// Could not connect.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// Credentials refused.
    #[error("unauthorized (HTTP {status}): {message}")]
    Unauthorized {
        /// HTTP status.
        status: u16,
        /// The provider's words.
        message: String,
    },
    /// Too many requests.
    #[error("rate limited (HTTP 429): {message}")]
    RateLimited {
        /// The provider's words.
        message: String,
    },
    /// The provider has no data for this pair.
    #[error("no data: {0}")]
    NoData(String),
    /// Another HTTP error status.
    #[error("HTTP {status}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The provider's words.
        message: String,
    },
    /// An answer we could not use.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
}

impl PollError {
    /// The bounded label value for this error.
    pub fn reason(&self) -> FailureReason {
        match self {
            PollError::Timeout(_) => FailureReason::Timeout,
            PollError::Connect(_) => FailureReason::Connect,
            PollError::Unauthorized { .. } => FailureReason::Unauthorized,
            PollError::RateLimited { .. } => FailureReason::RateLimited,
            PollError::NoData(_) => FailureReason::NoData,
            PollError::Http { status, .. } if *status >= 500 => FailureReason::Http5xx,
            PollError::Http { .. } => FailureReason::Http4xx,
            PollError::InvalidResponse(_) => FailureReason::InvalidResponse,
        }
    }

    /// Whether trying again soon may help.
    pub fn is_transient(&self) -> bool {
        match self {
            PollError::Timeout(_) | PollError::Connect(_) | PollError::RateLimited { .. } => true,
            PollError::Http { status, .. } => *status == 408 || *status >= 500,
            _ => false,
        }
    }

    /// The same error with every occurrence of `secret` blotted out, whatever a server
    /// echoed, and then cut short. In that order: a cut made first could split the key and
    /// leave its first characters where no whole key is left to find.
    pub fn redact(self, secret: &Secret) -> PollError {
        let fix = |s: String| shorten(redact_text(s, secret));
        match self {
            PollError::Connect(m) => PollError::Connect(fix(m)),
            PollError::Unauthorized { status, message } => PollError::Unauthorized { status, message: fix(message) },
            PollError::RateLimited { message } => PollError::RateLimited { message: fix(message) },
            PollError::NoData(m) => PollError::NoData(fix(m)),
            PollError::Http { status, message } => PollError::Http { status, message: fix(message) },
            PollError::InvalidResponse(m) => PollError::InvalidResponse(fix(m)),
            e @ PollError::Timeout(_) => e,
        }
    }
}

pub(crate) fn redact_text(s: String, secret: &Secret) -> String {
    if secret.is_empty() { s } else { s.replace(secret.expose(), "<redacted>") }
}

/// The most characters of provider text that we keep.
pub(crate) const TEXT_LIMIT: usize = 200;

/// Provider text cut to at most [`TEXT_LIMIT`] characters, with `…` when cut; cutting twice changes nothing.
pub(crate) fn shorten(s: String) -> String {
    match s.char_indices().nth(TEXT_LIMIT) {
        None => s,
        Some((at, _)) if s[at..] == *"…" => s,
        Some((at, _)) => format!("{}…", s[..at].trim_end()),
    }
}

/// A duration as a person writes it: `10m`, `1h 30m`.
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

/// Times in JSON answers, one format everywhere: RFC 3339 in UTC to the millisecond
/// (`2026-12-06T01:48:10.902Z`), the precision the store keeps, so an answer does not
/// change across a restart. Use as `#[serde(with = "timestamp")]`.
pub mod timestamp {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::Serializer;

    /// The text of `t`.
    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Serializes `t` as [`format`] does.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// For `Option<DateTime<Utc>>` fields.
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::Serializer;

        /// Serializes `t` as [`super::format`] does, or null.
        pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::format(t)),
                None => s.serialize_none(),
            }
        }
    }
}

/// `t` to the millisecond, the precision the history store keeps: what memory shows
/// before a restart is what the store gives back after it.
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// A rate as the percentage the provider wrote, `-` when unknown.
pub fn fmt_percent(r: Option<Rate>) -> String {
    r.map_or("-".to_owned(), Rate::percent)
}

/// `12m ago`, or `in 3s` for a clock ahead of ours.
pub fn fmt_ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 { format!("{} ago", fmt_duration(d)) } else { format!("in {}", fmt_duration(d)) }
}

#[cfg(test)]
mod rate_tests {
    use super::Rate;

    #[test]
    fn a_rate_survives_a_round_trip_through_f64() {
        for text in ["0.974", "1", "0", "0.5", "0.123456789012", "0.0001"] {
            let x: f64 = text.parse().unwrap();
            let r = Rate::from_f64(x).unwrap();
            assert_eq!(r.to_string(), text);
            assert_eq!(Rate::from_f64(r.as_f64()), Some(r));
        }
        assert_eq!(Rate::from_f64(97.4 / 100.0).unwrap().to_string(), "0.974", "float noise is rounded away");
        assert_eq!(Rate::from_f64(1.5), None);
        assert_eq!(Rate::from_f64(f64::NAN), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_checked_against_iso_3166() {
        for ok in ["NG", "KE", "GH", "ZA", "CI", "UG", "ZM", "ZW", "US"] {
            assert_eq!(ok.parse::<Country>().unwrap().as_str(), ok);
        }
        for bad in ["ng", "XX", "NGA", "", "N", "ÑG", "AA"] {
            assert!(bad.parse::<Country>().is_err(), "{bad} accepted");
        }
        // Two upper-case letters are the right shape: say the code is not assigned instead.
        let unassigned = "XX".parse::<Country>().unwrap_err().to_string();
        assert_eq!(
            unassigned,
            "\"XX\" is not a country: ISO 3166-1 assigns no country that code (expected one such as NG, KE or GH)"
        );
        let shape = "Nigeria".parse::<Country>().unwrap_err().to_string();
        assert!(shape.contains("expected two upper-case letters such as NG"), "{shape}");
    }

    #[test]
    fn id_types_are_upper_case_identifiers() {
        assert!("NIN_V2".parse::<IdType>().is_ok());
        for bad in ["", "bvn", "_BVN", "B-V", "BVN ", &"A".repeat(65)] {
            assert!(bad.parse::<IdType>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn rates_become_ratios() {
        let r = |s| parse_rate(s).map(|r| r.to_string());
        assert_eq!(r("16%").as_deref(), Some("0.16"));
        assert_eq!(r("91.5%").as_deref(), Some("0.915"));
        assert_eq!(r("0%").as_deref(), Some("0"));
        assert_eq!(r("0.0%").as_deref(), Some("0"));
        assert_eq!(r("100%").as_deref(), Some("1"));
        assert_eq!(r("100.0%").as_deref(), Some("1"));
        assert_eq!(r(" 42 % ").as_deref(), Some("0.42"));
        assert_eq!(r("42").as_deref(), Some("0.42"));
        assert_eq!(r("007.50%").as_deref(), Some("0.075"));
        assert_eq!(r(".5%").as_deref(), Some("0.005"));
        assert_eq!(r("5.%").as_deref(), Some("0.05"));
        assert_eq!(r("0.01%").as_deref(), Some("0.0001"));
        // Far past any real precision: rounded, never refused.
        assert_eq!(r("12.345678901249%").as_deref(), Some("0.123456789012"));
        assert_eq!(r("99.999999999999%").as_deref(), Some("1"));
        for bad in ["", "N/A", "%", ".", "abc", "101%", "100.01%", "1000%", "-1%", "+1%", "1e2", "NaN%", "inf", "1 2%"]
        {
            assert_eq!(r(bad), None, "{bad}");
        }
    }

    #[test]
    fn rates_show_the_providers_value_exactly() {
        // 97.4 / 100 in binary floating point is 0.9740000000000001: never seen here.
        for (text, ratio, percent) in [
            ("97.4%", "0.974", "97.4%"),
            ("0.1%", "0.001", "0.1%"),
            ("100%", "1", "100%"),
            ("0%", "0", "0%"),
            ("57.7%", "0.577", "57.7%"),
            ("9.05%", "0.0905", "9.05%"),
            ("10%", "0.1", "10%"),
        ] {
            let rate = parse_rate(text).unwrap();
            assert_eq!(rate.to_string(), ratio);
            assert_eq!(rate.percent(), percent);
            assert_eq!(rate.as_f64().to_string(), ratio, "{text}");
            assert_eq!(serde_json::to_string(&rate).unwrap().trim_end_matches(".0"), ratio, "{text}");
        }
    }

    #[test]
    fn every_tenth_of_a_percent_round_trips_through_f64() {
        for tenths in 0..=1000u32 {
            let text = format!("{}.{}%", tenths / 10, tenths % 10);
            let rate = parse_rate(&text).unwrap();
            assert_eq!(rate.as_f64().to_string(), rate.to_string(), "{text}");
            assert_eq!(rate.percent(), text.replace(".0%", "%"));
        }
    }

    #[test]
    fn states_derive_from_thresholds() {
        use AuthorityState::*;
        assert_eq!(AuthorityState::from_success_ratio(1.0), Online);
        assert_eq!(AuthorityState::from_success_ratio(0.91), Online);
        assert_eq!(AuthorityState::from_success_ratio(0.9099), Interruption);
        assert_eq!(AuthorityState::from_success_ratio(0.5001), Interruption);
        assert_eq!(AuthorityState::from_success_ratio(0.50), Offline);
        assert_eq!(AuthorityState::from_success_ratio(0.0), Offline);
    }

    #[test]
    fn provider_statuses_map_and_unknown_survives() {
        assert_eq!(AuthorityState::from_provider("online"), AuthorityState::Online);
        assert_eq!(AuthorityState::from_provider("Offline"), AuthorityState::Offline);
        assert_eq!(AuthorityState::from_provider("interruption"), AuthorityState::Interruption);
        assert_eq!(AuthorityState::from_provider("maintenance"), AuthorityState::Unknown);
        assert_eq!(AuthorityState::from_provider(""), AuthorityState::Unknown);
    }

    proptest::proptest! {
        #[test]
        fn parse_rate_never_panics_and_stays_in_range(s in ".{0,40}") {
            if let Some(r) = parse_rate(&s) {
                proptest::prop_assert!((0.0..=1.0).contains(&r.as_f64()));
                proptest::prop_assert_eq!(parse_rate(&r.percent()), Some(r));
            }
        }

        #[test]
        fn domain_parsers_never_panic(s in "\\PC{0,80}") {
            let _ = s.parse::<Country>();
            let _ = s.parse::<IdType>();
        }
    }
}
