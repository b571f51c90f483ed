//! A faithful stand-in for Smile ID's ID-status API, driven by a [`Scenario`].
//!
//! It serves `POST /api/v2/partner/id_status` (signature verified in constant time, the
//! provider's `{"error","code"}` bodies), `POST /v3/token` and
//! `GET /v3/services/id_status` (JWT with an `exp`, the documented `{"message","status"}`
//! bodies), and the catalogue of the simulated pairs listed now (a pair's `from:` and
//! `until:`) as `GET /v1/services` and `GET /v3/services/supported_id_types?country=CC`. The demo, the tests
//! and the deployment stack use it; it never panics on any request.

pub mod scenario;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub use scenario::{PairScenario, ProviderView, Scenario};

use crate::catalog;
use crate::config::Environment;
use crate::model::{Country, IdType, Target};
use crate::secret::Secret;
use crate::signature;
use crate::web::http::{self as server, Handler};

/// The key the simulator accepts when its environment variable is unset: it guards nothing.
pub const DEFAULT_KEY: &str = "simulator-key";

/// Why `idauth-exporter simulate` could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The scenario file is invalid.
    #[error(transparent)]
    Scenario(#[from] crate::config::ConfigError),
    /// `--speed` is not a positive number.
    #[error("--speed must be a positive number up to 1000000, not {0}")]
    Speed(f64),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The reason.
        source: std::io::Error,
    },
}

/// How `idauth-exporter simulate` runs (the command line fills it in).
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Address to serve on.
    pub listen: String,
    /// Scenario file (YAML); the built-in scenario when `None`.
    pub scenario: Option<PathBuf>,
    /// The partner ID the simulator accepts.
    pub partner_id: String,
    /// Environment variable holding the API key the simulator accepts.
    pub api_key_env: String,
    /// The environment the simulated key belongs to.
    pub environment: Environment,
    /// Simulated time runs this many times faster than real time.
    pub speed: f64,
}

/// `idauth-exporter simulate`: serves until `shutdown` is cancelled. The first line of
/// standard output says where, for scripts that start it on port 0.
pub async fn run(
    args: &Options,
    env: &dyn Fn(&str) -> Option<String>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), SimulatorError> {
    let scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::builtin(),
    };
    if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= MAX_SPEED) {
        return Err(SimulatorError::Speed(args.speed));
    }
    let api_key = env(&args.api_key_env).filter(|k| !k.is_empty()).unwrap_or_else(|| {
        tracing::warn!(variable = %args.api_key_env, "the API key variable is unset; accepting the simulator's default key");
        DEFAULT_KEY.to_owned()
    });
    let account =
        Account { partner_id: args.partner_id.clone(), api_key: Secret::new(api_key), environment: args.environment };
    let pairs = scenario.pairs.len();
    let sim = Simulator::new(scenario, account, args.speed, Arc::new(SystemClock));
    let bind_err = |source| SimulatorError::Bind { address: args.listen.clone(), source };
    let listener = tokio::net::TcpListener::bind(&args.listen).await.map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    println!("simulator listening on http://{addr}");
    tracing::info!(address = %addr, pairs, speed = args.speed, "simulator listening");
    server::serve(listener, sim.handler(), shutdown).await;
    Ok(())
}

/// The fastest simulated time may run: a 10-minute window every 0.6 ms.
pub const MAX_SPEED: f64 = 1_000_000.0;

/// The largest request body the simulator reads.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Lifetime of a v3 token.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

// The simulator reads real time through the same clock as the exporter; simulated
// time is that times the speed.
pub use crate::model::{Clock, ManualClock, SystemClock};

/// The account the simulator accepts.
#[derive(Clone, Debug)]
pub struct Account {
    /// The partner ID, as the v2 body carries it (v3 headers drop leading zeros).
    pub partner_id: String,
    /// The API key.
    pub api_key: Secret,
    /// The environment the key belongs to.
    pub environment: Environment,
}

/// The simulated provider.
pub struct Simulator {
    scenario: Scenario,
    account: Account,
    speed: f64,
    clock: Arc<dyn Clock>,
    jwt_key: Secret,
    /// When it started: a pair's `from:` and `until:` count from here.
    started: DateTime<Utc>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").field("pairs", &self.scenario.pairs.len()).field("speed", &self.speed).finish()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    V2,
    V3,
}

fn json_response(status: StatusCode, body: &Value) -> Response<server::Body> {
    server::text(status, "application/json", body.to_string())
}

fn v2_error(status: StatusCode, error: &str, code: &str) -> Response<server::Body> {
    json_response(status, &json!({"error": error, "code": code}))
}

fn v3_error(status: StatusCode, message: &str) -> Response<server::Body> {
    let reason = status.canonical_reason().unwrap_or("Error");
    json_response(status, &json!({"message": message, "status": reason}))
}

fn flavor_error(flavor: Flavor, status: StatusCode, message: &str, code: &str) -> Response<server::Body> {
    match flavor {
        Flavor::V2 => v2_error(status, message, code),
        Flavor::V3 => v3_error(status, message),
    }
}

impl Simulator {
    /// A simulator of `scenario` for `account`, its time running `speed` times faster than `clock`.
    pub fn new(scenario: Scenario, account: Account, speed: f64, clock: Arc<dyn Clock>) -> Arc<Simulator> {
        let key: [u8; 32] = rand::rng().random();
        Arc::new(Simulator {
            scenario,
            account,
            speed: if speed.is_finite() && speed > 0.0 { speed.min(MAX_SPEED) } else { 1.0 },
            started: clock.now(),
            clock,
            jwt_key: Secret::new(URL_SAFE_NO_PAD.encode(key)),
        })
    }

    /// The scenario it plays.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// What the provider reports for `target` now, if it simulates it.
    pub fn view(&self, target: &Target) -> Option<ProviderView> {
        self.scenario.pair(target).map(|p| p.view_at(self.clock.now(), self.speed))
    }

    /// The HTTP handler.
    pub fn handler(self: &Arc<Self>) -> Handler {
        let sim = self.clone();
        Arc::new(move |req| {
            let sim = sim.clone();
            Box::pin(async move { sim.handle(req).await })
        })
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<server::Body> {
        let (parts, body) = req.into_parts();
        match (parts.method.clone(), parts.uri.path()) {
            (Method::POST, "/api/v2/partner/id_status") => match read_body(body).await {
                Ok(b) => self.v2_id_status(&b).await,
                Err(resp) => resp,
            },
            (Method::POST, "/v3/token") => {
                let has_body = match read_body(body).await {
                    Ok(b) => !b.is_empty(),
                    Err(resp) => return resp,
                };
                self.v3_token(&parts.headers, has_body)
            }
            (Method::GET, "/v3/services/id_status") => self.v3_id_status(&parts.headers, parts.uri.query()).await,
            (Method::GET, "/v1/services") => json_response(StatusCode::OK, &self.services()),
            (Method::GET, "/v3/services/supported_id_types") => self.supported_id_types(parts.uri.query()),
            (_, "/api/v2/partner/id_status" | "/v3/token") => server::not_allowed("POST"),
            (_, "/v3/services/id_status" | "/v1/services" | "/v3/services/supported_id_types") => {
                server::not_allowed("GET")
            }
            _ => v3_error(StatusCode::NOT_FOUND, "Not Found"),
        }
    }

    async fn v2_id_status(&self, body: &[u8]) -> Response<server::Body> {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            return v2_error(StatusCode::BAD_REQUEST, "Invalid JSON", "2203");
        };
        const FIELDS: [&str; 6] = ["partner_id", "timestamp", "signature", "country", "id_type", "environment"];
        let mut values = [""; 6];
        for (i, f) in FIELDS.iter().enumerate() {
            match map.get(*f) {
                None | Some(Value::Null) => {
                    return v2_error(StatusCode::BAD_REQUEST, &format!("Missing required parameter: {f}"), "2213");
                }
                Some(Value::String(s)) => values[i] = s,
                Some(_) => {
                    return v2_error(StatusCode::BAD_REQUEST, &format!("Parameter {f} must be a string"), "2204");
                }
            }
        }
        let [partner_id, timestamp, sig, country, id_type, environment] = values;
        // Any ISO 8601 time with an offset: the official Python SDK signs `isoformat()`
        // (microseconds, `+00:00`), the others milliseconds and `Z`.
        let timestamp_ok = DateTime::parse_from_rfc3339(timestamp).is_ok();
        // Every check runs, so the answer takes as long whichever one fails.
        let partner_ok: bool = partner_id.as_bytes().ct_eq(self.account.partner_id.as_bytes()).into();
        let signed = signature::verify(&self.account.api_key, partner_id, timestamp, sig);
        let env_ok = environment == self.account.environment.as_str();
        if !(timestamp_ok & partner_ok & signed & env_ok) {
            return v2_error(StatusCode::UNAUTHORIZED, "You are not authorized to do that.", "2205");
        }
        match self.known_pair(country, id_type) {
            Ok(target) => self.id_status(&target, Flavor::V2).await,
            Err(message) => v2_error(StatusCode::BAD_REQUEST, message, "2204"),
        }
    }

    fn v3_token(&self, headers: &hyper::HeaderMap, has_body: bool) -> Response<server::Body> {
        if has_body {
            let multipart = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("multipart/form-data"));
            if !multipart {
                return v3_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be multipart/form-data");
            }
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        let expected_partner = self.account.partner_id.trim_start_matches('0');
        let partner_ok: bool = header("smileid-partner-id").as_bytes().ct_eq(expected_partner.as_bytes()).into();
        let key_ok: bool = header("smileid-api-key").as_bytes().ct_eq(self.account.api_key.expose().as_bytes()).into();
        if !(partner_ok & key_ok) || expected_partner.is_empty() {
            return v3_error(StatusCode::UNAUTHORIZED, "Invalid partner ID or API key");
        }
        json_response(StatusCode::OK, &json!({"token": self.issue_token(expected_partner)}))
    }

    fn jwt_signature(&self, signed_part: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.jwt_key.expose().as_bytes()).expect("any key length");
        mac.update(signed_part.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    fn issue_token(&self, partner_id: &str) -> String {
        let now = self.clock.now().timestamp();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = json!({"partner_id": partner_id, "iat": now, "exp": now + TOKEN_LIFETIME.as_secs() as i64});
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let sig = self.jwt_signature(&signed);
        format!("{signed}.{sig}")
    }

    fn token_valid(&self, token: &str) -> bool {
        let Some((signed, sig)) = token.rsplit_once('.') else {
            return false;
        };
        let expected = self.jwt_signature(signed);
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return false;
        }
        let exp = signed
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|c| c.get("exp").and_then(Value::as_i64));
        exp.is_some_and(|exp| exp > self.clock.now().timestamp())
    }

    async fn v3_id_status(&self, headers: &hyper::HeaderMap, query: Option<&str>) -> Response<server::Body> {
        let token = headers.get("smileid-token").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !self.token_valid(token) {
            return v3_error(StatusCode::UNAUTHORIZED, "Invalid token");
        }
        let params: Vec<(String, String)> = query
            .map(|q| reqwest::Url::parse(&format!("http://x/?{q}")).map(|u| u.query_pairs().into_owned().collect()))
            .and_then(Result::ok)
            .unwrap_or_default();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let Some(country) = get("country") else {
            return v3_error(StatusCode::BAD_REQUEST, "\"country\" is required");
        };
        let Some(id_type) = get("id_type") else {
            return v3_error(StatusCode::BAD_REQUEST, "\"id_type\" is required");
        };
        match self.known_pair(country, id_type) {
            Ok(target) => self.id_status(&target, Flavor::V3).await,
            Err(message) => v3_error(StatusCode::BAD_REQUEST, message),
        }
    }

    /// A pair the provider knows of (documented, or simulated), or the provider's complaint.
    fn known_pair(&self, country: &str, id_type: &str) -> Result<Target, &'static str> {
        let simulated = |c: &Country| self.scenario.pairs.iter().any(|p| p.target.country == *c);
        let country: Country = country.parse().map_err(|_| "Invalid country")?;
        if !catalog::has_country(&country) && !simulated(&country) {
            return Err("Invalid country");
        }
        let id_type: IdType = id_type.parse().map_err(|_| "Invalid id_type for the given country")?;
        let target = Target::new(country, id_type);
        if catalog::is_known(&target.country, &target.id_type) || self.scenario.pair(&target).is_some() {
            Ok(target)
        } else {
            Err("Invalid id_type for the given country")
        }
    }

    async fn id_status(&self, target: &Target, flavor: Flavor) -> Response<server::Body> {
        let no_data = || {
            let msg = format!("No data found. Check that {} and {} are valid inputs", target.country, target.id_type);
            flavor_error(flavor, StatusCode::BAD_REQUEST, &msg, "2213")
        };
        let Some(pair) = self.scenario.pair(target) else {
            return no_data();
        };
        let faults = &pair.faults;
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
        if faults.no_data {
            return no_data();
        }
        let draw: f64 = rand::rng().random();
        let (e, r, m) = (faults.error_share, faults.rate_limit_share, faults.malformed_share);
        if draw < e {
            return flavor_error(flavor, StatusCode::INTERNAL_SERVER_ERROR, "System error", "2201");
        }
        if draw < e + r {
            let mut resp = flavor_error(flavor, StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded", "2222");
            let secs = faults.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
            return resp;
        }
        if draw < e + r + m {
            return malformed(rand::rng().random_range(0..3));
        }
        json_response(StatusCode::OK, &pair.view_at(self.clock.now(), self.speed).body())
    }

    /// The simulated pairs the catalogue lists now (see a pair's `from:` and `until:`).
    pub fn listed(&self) -> Vec<&PairScenario> {
        let elapsed = (self.clock.now() - self.started).num_milliseconds() as f64 / 1000.0 * self.speed;
        let elapsed = elapsed.floor() as i64;
        self.scenario.pairs.iter().filter(|p| p.listed_at(elapsed)).collect()
    }

    /// `GET /v3/services/supported_id_types?country=CC` in the provider's shape: no
    /// authentication, one country per request.
    fn supported_id_types(&self, query: Option<&str>) -> Response<server::Body> {
        let country = query
            .and_then(|q| reqwest::Url::parse(&format!("http://x/?{q}")).ok())
            .and_then(|u| u.query_pairs().find(|(k, _)| k == "country").map(|(_, v)| v.into_owned()));
        let Some(country) = country else {
            return v3_error(StatusCode::BAD_REQUEST, "\"country\" is required");
        };
        let simulated = self.scenario.pairs.iter().any(|p| p.target.country.as_str() == country);
        let known = country.parse::<Country>().is_ok_and(|c| catalog::has_country(&c));
        if !simulated && !known {
            return v3_error(StatusCode::BAD_REQUEST, "Invalid country");
        }
        let id_types: Vec<Value> = self
            .listed()
            .into_iter()
            .filter(|p| p.target.country.as_str() == country)
            .map(|p| {
                let t = p.target.id_type.as_str();
                json!({
                    "country": country,
                    "type": t,
                    "label": t.replace('_', " "),
                    "regex": "^[A-Za-z0-9-]{4,20}$",
                    "required_fields": ["id_number", "first_name", "last_name"],
                })
            })
            .collect();
        json_response(StatusCode::OK, &json!({ "id_types": id_types }))
    }

    /// `/v1/services` in the provider's shape, for the simulated pairs listed now.
    fn services(&self) -> Value {
        let required = json!(["country", "id_type", "id_number", "user_id", "job_id"]);
        let mut id_types = serde_json::Map::new();
        let mut basic_kyc = serde_json::Map::new();
        for p in self.listed() {
            let (c, t) = (p.target.country.as_str(), p.target.id_type.as_str());
            let entry = id_types.entry(c).or_insert_with(|| json!({}));
            entry[t] = required.clone();
            let country = basic_kyc
                .entry(c)
                .or_insert_with(|| json!({"name": catalog::country_name(c).unwrap_or(c), "id_types": {}}));
            country["id_types"][t] = json!({
                "label": t.replace('_', " "),
                "required_fields": required,
                "id_number_regex": "^[A-Za-z0-9-]{4,20}$",
                "test_data": "0000000000",
            });
        }
        json!({"bank_codes": [], "id_types": id_types, "hosted_web": {"basic_kyc": basic_kyc}})
    }
}

/// A 200 whose body is not the documented JSON.
fn malformed(kind: u32) -> Response<server::Body> {
    match kind {
        0 => server::text(StatusCode::OK, "application/json", r#"{"last_checked": "2024-01-01T00:0"#),
        1 => server::text(StatusCode::OK, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        _ => server::text(StatusCode::OK, "application/json", r#"{"status": "ok"}"#),
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, Response<server::Body>> {
    match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(v2_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large", "2203"))
        }
        Err(_) => Err(v2_error(StatusCode::BAD_REQUEST, "Unreadable request body", "2203")),
    }
}
