//! `--web.config.file`: TLS and basic authentication, in the format of Prometheus'
//! exporter-toolkit, so that one file works for every exporter of a fleet.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.pem          # relative paths are relative to this file
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # or NoClientCert, VerifyClientCertIfGiven
//!   client_ca_file: ca.pem
//!   min_version: TLS12             # or TLS13
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt hashes
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::header::{AUTHORIZATION, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::http::{self, Handler};
use crate::config::{ConfigError, from_yaml, invalid};

/// The parsed web configuration: what the HTTP server needs.
#[derive(Default)]
pub struct WebConfig {
    tls: Option<TlsAcceptor>,
    /// The served certificate's file and its notAfter.
    certificate: Option<(String, std::time::SystemTime)>,
    users: BTreeMap<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// A hash of a random password at the cost of the most expensive configured user,
    /// checked for unknown users so that they cost as much as a wrong password.
    dummy: String,
    /// Credentials that passed, keyed by a hash of user, password and stored hash (as
    /// exporter-toolkit keeps them): bcrypt is slow on purpose, and Prometheus sends the
    /// same credentials every scrape. Only successes go in, so guesses cannot evict them.
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// What basic authentication says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No users configured, or the right password.
    Allowed,
    /// No or wrong credentials.
    Denied,
    /// Too many password checks queued: answered at once with 503 rather than queued.
    Busy,
}

/// Verified credentials kept per web configuration; far more than real scrapers use.
const VERIFIED_CACHE: usize = 256;
/// bcrypt checks running at once, on tokio's blocking pool: half the cores (at least one),
/// so that a flood of guesses leaves CPU for the async workers (scrapes, polls).
static RUNNING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(running_checks())));
/// bcrypt checks running or waiting; beyond this a request gets 503 at once.
static QUEUED: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(running_checks() + QUEUE)));
/// Checks that may wait for a free slot.
const QUEUE: usize = 16;

fn running_checks() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    tls_server_config: Option<Spanned<RawTls>>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<Spanned<PathBuf>>,
    key_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    client_auth_type: Option<Spanned<String>>,
    #[serde(default)]
    client_ca_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    min_version: Option<Spanned<String>>,
    #[serde(default)]
    max_version: Option<Spanned<String>>,
    /// rustls always prefers its own order; accepted so that shared files load.
    #[serde(default)]
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    /// HTTP/2 is negotiated with ALPN over TLS and needs no switch; accepted for compatibility.
    #[serde(default)]
    #[allow(dead_code)]
    http2: Option<bool>,
}

impl WebConfig {
    /// Reads and validates a web configuration file.
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        let file = path.display().to_string();
        let text = read_text(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        WebConfig::parse(&text, &file, &base)
    }

    /// Parses web configuration text; `base` anchors relative paths.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<WebConfig, ConfigError> {
        if text.trim().is_empty() {
            return Ok(WebConfig::default());
        }
        let raw: Raw = from_yaml(text, file)?;
        let mut users = BTreeMap::new();
        let mut cost = None;
        for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
            let parts = bcrypt::HashParts::from_str(&hash.value).ok().filter(|p| (4..=31).contains(&p.get_cost()));
            let Some(parts) = parts else {
                return Err(invalid(
                    file,
                    &hash.referenced,
                    format!(
                        "basic_auth_users.{user}: not a bcrypt hash; expected one such as $2y$10$..., made with htpasswd -nBC 10"
                    ),
                ));
            };
            cost = cost.max(Some(parts.get_cost()));
            users.insert(user, hash.value);
        }
        // One hash at load (and reload): the price of answering unknown users honestly.
        let dummy = cost
            .map(|cost| bcrypt::hash(rand::random::<[u8; 16]>(), cost))
            .transpose()
            .map_err(|e| ConfigError::Read { file: file.to_owned(), source: std::io::Error::other(e) })?
            .unwrap_or_default();
        let mut headers = Vec::new();
        for (name, value) in raw.http_server_config.map(|h| h.headers).unwrap_or_default() {
            let parsed = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.value.as_str()));
            let (Ok(n), Ok(v)) = parsed else {
                return Err(invalid(
                    file,
                    &value.referenced,
                    format!("http_server_config.headers.{name}: not a valid header"),
                ));
            };
            headers.push((n, v));
        }
        let (tls, certificate) = match raw.tls_server_config.map(|t| tls_acceptor(t, file, base)).transpose()? {
            Some((tls, certificate)) => (Some(tls), certificate),
            None => (None, None),
        };
        Ok(WebConfig { tls, certificate, users, headers, dummy, verified: Mutex::new(HashSet::new()) })
    }

    /// The served certificate's file and when it expires, when TLS is configured.
    pub fn certificate_expiry(&self) -> Option<(String, std::time::SystemTime)> {
        self.certificate.clone()
    }

    /// The TLS acceptor, when TLS is configured.
    pub fn tls(&self) -> Option<TlsAcceptor> {
        self.tls.clone()
    }

    /// Whether a request may pass: always without users, else with the right password.
    /// bcrypt runs on tokio's blocking pool, a few at a time; an unknown user is checked
    /// against a hash of the same cost as the users', so both answers take as long.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> Verdict {
        if self.users.is_empty() {
            return Verdict::Allowed;
        }
        let Some((user, password)) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b64| STANDARD.decode(b64.trim()).ok())
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| pair.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())))
        else {
            return Verdict::Denied;
        };
        let known = self.users.get(&user);
        let hash = known.unwrap_or(&self.dummy).clone();
        let key: [u8; 32] = {
            let mut h = Sha256::new();
            for part in [user.as_bytes(), password.as_bytes(), hash.as_bytes()] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part);
            }
            h.finalize().into()
        };
        if known.is_some() && self.verified.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
            return Verdict::Allowed;
        }
        let Ok(queued) = QUEUED.clone().try_acquire_owned() else {
            return Verdict::Busy;
        };
        let Ok(running) = RUNNING.clone().acquire_owned().await else {
            return Verdict::Busy;
        };
        // The permits go with the work: a client that hangs up does not free a slot
        // while its check still runs.
        let ok = tokio::task::spawn_blocking(move || {
            let _permits = (queued, running);
            bcrypt::verify(password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if !(ok && known.is_some()) {
            return Verdict::Denied;
        }
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= VERIFIED_CACHE
            && let Some(evict) = cache.iter().next().copied()
        {
            cache.remove(&evict);
        }
        cache.insert(key);
        Verdict::Allowed
    }

    /// The cost of the hash that unknown users are checked against (none without users).
    pub fn dummy_cost(&self) -> Option<u32> {
        bcrypt::HashParts::from_str(&self.dummy).ok().map(|p| p.get_cost())
    }
}

/// Reads a file of the web configuration with the cap of [`crate::files::CONFIG_LIMIT`], so
/// that `/dev/zero` or a huge file is a clear error rather than unbounded memory.
fn read_text(path: &Path) -> Result<String, std::io::Error> {
    crate::files::read_text_capped(path, crate::files::CONFIG_LIMIT).map_err(|e| match e {
        crate::files::ReadError::Io(e) => e,
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
    })
}

/// The PEM certificates in `path`; an unreadable file or one without any is an error.
fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = read_text(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate in {}", path.display()));
    }
    Ok(certs)
}

type Certificate = Option<(String, std::time::SystemTime)>;

fn tls_acceptor(raw: Spanned<RawTls>, file: &str, base: &Path) -> Result<(TlsAcceptor, Certificate), ConfigError> {
    let at = raw.referenced;
    let t = raw.value;
    let (Some(cert), Some(key)) = (t.cert_file, t.key_file) else {
        return Err(invalid(file, &at, "tls_server_config: cert_file and key_file are both required".into()));
    };
    let path = |p: &Spanned<PathBuf>| base.join(&p.value);
    let certs = pem_certificates(&path(&cert))
        .map_err(|e| invalid(file, &cert.referenced, format!("tls_server_config.cert_file: {e}")))?;
    let cert_path = path(&cert).display().to_string();
    let certificate = crate::tls::not_after(&certs[0]).map(|at| (cert_path.clone(), at));
    if let Some((_, at)) = &certificate
        && crate::tls::expires_soon(*at, std::time::SystemTime::now())
    {
        let not_after = chrono::DateTime::<chrono::Utc>::from(*at).to_rfc3339();
        if *at <= std::time::SystemTime::now() {
            tracing::warn!(cert_file = %cert_path, %not_after, "the served TLS certificate has expired; clients will refuse it");
        } else {
            tracing::warn!(cert_file = %cert_path, %not_after, "the served TLS certificate expires within 14 days; renew it");
        }
    }
    let key_text = read_text(&path(&key)).map_err(|e| {
        invalid(file, &key.referenced, format!("tls_server_config.key_file: cannot read {}: {e}", path(&key).display()))
    })?;
    let private_key = PrivateKeyDer::from_pem_slice(key_text.as_bytes()).map_err(|e| {
        invalid(
            file,
            &key.referenced,
            format!("tls_server_config.key_file: no PEM private key in {}: {e}", path(&key).display()),
        )
    })?;

    let version = |v: &Option<Spanned<String>>, key: &str| -> Result<Option<u8>, ConfigError> {
        match v.as_ref().map(|s| (s.value.as_str(), s.referenced)) {
            None => Ok(None),
            Some(("TLS12", _)) => Ok(Some(12)),
            Some(("TLS13", _)) => Ok(Some(13)),
            Some((other, at)) => Err(invalid(
                file,
                &at,
                format!("tls_server_config.{key}: {other} is not supported; expected TLS12 or TLS13"),
            )),
        }
    };
    let min = version(&t.min_version, "min_version")?.unwrap_or(12);
    let max = version(&t.max_version, "max_version")?.unwrap_or(13);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();
    if versions.is_empty() {
        return Err(invalid(file, &at, "tls_server_config: min_version is above max_version".into()));
    }

    crate::tls::install_crypto_provider();
    let builder = rustls::ServerConfig::builder_with_protocol_versions(&versions);
    let auth = t.client_auth_type.as_ref().map_or("NoClientCert", |s| s.value.as_str());
    let roots = || -> Result<Arc<rustls::RootCertStore>, ConfigError> {
        let Some(ca) = &t.client_ca_file else {
            return Err(invalid(file, &at, format!("tls_server_config: client_auth_type {auth} needs client_ca_file")));
        };
        let mut store = rustls::RootCertStore::empty();
        let certs = pem_certificates(&path(ca))
            .map_err(|e| invalid(file, &ca.referenced, format!("tls_server_config.client_ca_file: {e}")))?;
        let (added, _) = store.add_parsable_certificates(certs);
        if added == 0 {
            return Err(invalid(
                file,
                &ca.referenced,
                "tls_server_config.client_ca_file: no CA certificate in it".into(),
            ));
        }
        Ok(Arc::new(store))
    };
    let builder = match auth {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let mut verifier = rustls::server::WebPkiClientVerifier::builder(roots()?);
            if auth == "VerifyClientCertIfGiven" {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| invalid(file, &at, format!("tls_server_config: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        other => {
            let at = t.client_auth_type.as_ref().map_or(at, |s| s.referenced);
            return Err(invalid(
                file,
                &at,
                format!(
                    "tls_server_config.client_auth_type: {other} is not supported; expected NoClientCert, \
                     VerifyClientCertIfGiven or RequireAndVerifyClientCert (certificates are always verified)"
                ),
            ));
        }
    };
    let mut config = builder.with_single_cert(certs, private_key).map_err(|e| {
        invalid(file, &at, format!("tls_server_config: the certificate and key do not go together: {e}"))
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), certificate))
}

/// Wraps `inner` with the current web configuration's basic authentication and headers.
/// `current` is read on every request, so a reload takes effect at once.
pub fn protect(inner: Handler, current: Arc<dyn Fn() -> Arc<WebConfig> + Send + Sync>) -> Handler {
    Arc::new(move |req| {
        let web = current();
        let inner = inner.clone();
        Box::pin(async move {
            let authorization = req.headers().get(AUTHORIZATION).cloned();
            let mut resp: Response<http::Body> = match web.check(authorization.as_ref()).await {
                Verdict::Allowed => inner(req).await,
                Verdict::Denied => {
                    let mut r = http::text(StatusCode::UNAUTHORIZED, "text/plain; charset=utf-8", "Unauthorized\n");
                    r.headers_mut()
                        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"idauth-exporter\""));
                    r
                }
                Verdict::Busy => {
                    let mut r = http::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain; charset=utf-8",
                        "Too many password checks at once; try again shortly.\n",
                    );
                    r.headers_mut().insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
                    r
                }
            };
            for (name, value) in &web.headers {
                resp.headers_mut().insert(name.clone(), value.clone());
            }
            resp
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

    fn parse(text: &str) -> Result<WebConfig, ConfigError> {
        WebConfig::parse(text, "web.yml", Path::new(FIXTURES))
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        HeaderValue::try_from(format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))).unwrap()
    }

    #[tokio::test]
    async fn basic_auth_checks_bcrypt_and_caches() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let web = parse(&format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
        let check = async |v: Option<HeaderValue>| web.check(v.as_ref()).await;
        assert_eq!(check(Some(basic("prometheus", "s3cret"))).await, Verdict::Allowed);
        assert_eq!(web.verified.lock().unwrap().len(), 1);
        assert_eq!(check(Some(basic("prometheus", "s3cret"))).await, Verdict::Allowed, "from the cache");
        assert_eq!(check(Some(basic("prometheus", "wrong"))).await, Verdict::Denied);
        assert_eq!(check(Some(basic("nobody", "s3cret"))).await, Verdict::Denied);
        assert_eq!(check(None).await, Verdict::Denied);
        assert_eq!(check(Some(HeaderValue::from_static("Bearer x"))).await, Verdict::Denied);
        assert_eq!(check(Some(HeaderValue::from_static("Basic !!!"))).await, Verdict::Denied);
        assert_eq!(web.verified.lock().unwrap().len(), 1, "failures are not cached");
        assert_eq!(parse("").unwrap().check(None).await, Verdict::Allowed, "no users, no authentication");
    }

    #[test]
    fn unknown_users_are_checked_at_the_users_highest_cost() {
        let (low, high) = (bcrypt::hash("a", 4).unwrap(), bcrypt::hash("b", 6).unwrap());
        let web = parse(&format!("basic_auth_users:\n  a: '{low}'\n  b: '{high}'\n")).unwrap();
        assert_eq!(web.dummy_cost(), Some(6));
        assert_eq!(parse("").unwrap().dummy_cost(), None);
    }

    #[test]
    fn tls_loads_the_fixtures() {
        let web = parse("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n").unwrap();
        assert!(web.tls().is_some());
        let mtls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\n";
        assert!(parse(mtls).unwrap().tls().is_some());
        let (file, at) = web.certificate_expiry().unwrap();
        assert!(file.ends_with("server.pem") && !crate::tls::expires_soon(at, std::time::SystemTime::now()));
        assert!(parse("").unwrap().certificate_expiry().is_none());
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = parse("tls_server_config:\n  cert_file: server.pem\n").err().unwrap().to_string();
        assert!(e.starts_with("web.yml:2:") && e.contains("cert_file and key_file"), "{e}");
        let e =
            parse("tls_server_config:\n  cert_file: missing.pem\n  key_file: server.key\n").err().unwrap().to_string();
        assert!(e.starts_with("web.yml:2:") && e.contains("tls_server_config.cert_file"), "{e}");
        let e = parse("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAnyClientCert\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("web.yml:4:") && e.contains("not supported"), "{e}");
        let e = parse("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS10\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("web.yml:4:") && e.contains("TLS12 or TLS13"), "{e}");
        let e = parse("basic_auth_users:\n  alice: plaintext\n").err().unwrap().to_string();
        assert!(e.starts_with("web.yml:2:") && e.contains("bcrypt"), "{e}");
        let e = parse("tls_config: {}\n").err().unwrap().to_string();
        assert!(e.contains("tls_config"), "{e}");
        let e = parse("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cipher_suites"), "{e}");
        for field in ["cert_file", "key_file"] {
            let yaml = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n".replace(
                &format!("{field}: server.{}", if field == "cert_file" { "pem" } else { "key" }),
                &format!("{field}: /dev/zero"),
            );
            let e = parse(&yaml).err().unwrap().to_string();
            assert!(e.contains(&format!("tls_server_config.{field}")) && e.contains("larger than"), "{e}");
        }
    }
}
