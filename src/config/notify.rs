//! The `notify:` section: the webhooks told of every change of state.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use super::{At, ConfigError, HumanDuration, Validator};
use crate::model::{AuthorityState, Country, IdType, Target};
use crate::secret::WebhookSecret;

/// The default of a webhook's `timeout`.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The `notify:` section.
#[derive(Clone, Debug, Default)]
pub struct NotifyConfig {
    /// The webhooks, in file order.
    pub webhooks: Vec<WebhookConfig>,
}

/// One webhook: where to send the changes it asks for, and the secret to sign them with.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Its name, in logs and metrics.
    pub name: String,
    /// Where to POST.
    pub url: reqwest::Url,
    /// The signing secret.
    pub secret: WebhookSecret,
    /// Only changes of pairs in these countries (empty: every country).
    pub countries: Vec<Country>,
    /// Only changes of these ID types (empty: every ID type).
    pub id_types: Vec<IdType>,
    /// Only changes to these states (empty: every change).
    pub states: Vec<AuthorityState>,
    /// How long one delivery may take.
    pub timeout: Duration,
}

impl WebhookConfig {
    /// Whether a change of `target` to `to` is for this webhook.
    pub fn wants(&self, target: &Target, to: AuthorityState) -> bool {
        (self.countries.is_empty() || self.countries.contains(&target.country))
            && (self.id_types.is_empty() || self.id_types.contains(&target.id_type))
            && (self.states.is_empty() || self.states.contains(&to))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    #[serde(default)]
    webhooks: Vec<At<RawWebhook>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    name: At<String>,
    url: At<String>,
    #[serde(default)]
    secret_file: Option<At<std::path::PathBuf>>,
    #[serde(default)]
    secret_env: Option<At<String>>,
    #[serde(default)]
    countries: Option<At<Vec<At<Country>>>>,
    #[serde(default)]
    id_types: Option<At<Vec<At<IdType>>>>,
    #[serde(default)]
    states: Option<At<Vec<At<String>>>>,
    #[serde(default)]
    timeout: Option<At<HumanDuration>>,
}

impl Validator<'_> {
    pub(super) fn notify(&mut self, raw: RawNotify) -> Result<NotifyConfig, ConfigError> {
        let mut names = HashSet::new();
        let mut webhooks = Vec::with_capacity(raw.webhooks.len());
        let mut errors = Vec::new();
        for (i, w) in raw.webhooks.into_iter().enumerate() {
            match self.webhook(i, w.value, &mut names) {
                Ok(w) => webhooks.push(w),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError::all(errors));
        }
        Ok(NotifyConfig { webhooks })
    }

    fn webhook(&mut self, i: usize, w: RawWebhook, names: &mut HashSet<String>) -> Result<WebhookConfig, ConfigError> {
        let key = format!("notify.webhooks[{i}]");
        let name = w.name.value.trim().to_owned();
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return self.error(
                &w.name.referenced,
                format!("{key}.name: {name:?} is not a name; expected 1 to 64 letters, digits, _ or - (it becomes a label value)"),
            );
        }
        if !names.insert(name.clone()) {
            return self.error(
                &w.name.referenced,
                format!("{key}.name: {name:?} is used by an earlier webhook; expected each name once"),
            );
        }
        let url = reqwest::Url::parse(w.url.value.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        let Some(url) = url else {
            return self.error(
                &w.url.referenced,
                format!("{key}.url: {:?} is not a URL; expected http(s)://host[:port]/path", w.url.value),
            );
        };
        if !url.username().is_empty() || url.password().is_some() {
            return self.error(
                &w.url.referenced,
                format!("{key}.url: credentials in the URL would show in logs; expected a URL without user:password (the signature authenticates the exporter)"),
            );
        }
        let secret = self.webhook_secret(&key, &w.name.referenced, w.secret_file, w.secret_env)?;
        let countries = w.countries.map_or_else(Vec::new, |c| c.value.into_iter().map(|c| c.value).collect());
        let id_types = w.id_types.map_or_else(Vec::new, |c| c.value.into_iter().map(|c| c.value).collect());
        let mut states = Vec::new();
        for s in w.states.map_or_else(Vec::new, |s| s.value) {
            let state = AuthorityState::ALL
                .into_iter()
                .find(|x| *x != AuthorityState::Unknown && x.as_str() == s.value.trim().to_ascii_lowercase());
            match state {
                Some(state) => states.push(state),
                None => {
                    return self.error(
                        &s.referenced,
                        format!("{key}.states: {:?} is not a state a pair changes to; expected online, interruption or offline", s.value),
                    );
                }
            }
        }
        let timeout = match w.timeout {
            None => DEFAULT_WEBHOOK_TIMEOUT,
            Some(t) if (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&t.value.0) => t.value.0,
            Some(t) => {
                return self.error(
                    &t.referenced,
                    format!("{key}.timeout: {}; expected 1s to 60s", super::fmt_duration(t.value.0)),
                );
            }
        };
        Ok(WebhookConfig { name, url, secret, countries, id_types, states, timeout })
    }

    fn webhook_secret(
        &mut self,
        key: &str,
        at: &serde_saphyr::Location,
        file: Option<At<std::path::PathBuf>>,
        env: Option<At<String>>,
    ) -> Result<WebhookSecret, ConfigError> {
        let expected =
            "expected whsec_ and the base64 of 24 to 64 random bytes, as `openssl rand -base64 32` prints after whsec_";
        let (text, from, place) = match (file, env) {
            (Some(f), Some(e)) => {
                let later =
                    if (e.referenced.line(), e.referenced.column()) > (f.referenced.line(), f.referenced.column()) {
                        e.referenced
                    } else {
                        f.referenced
                    };
                return self
                    .error(&later, format!("{key}: secret_file and secret_env are both set; expected exactly one"));
            }
            (None, None) => {
                return self.error(at, format!("{key}: no secret; expected secret_file or secret_env"));
            }
            (Some(f), None) => {
                let key = format!("{key}.secret_file");
                let text = self.read_secret_file(&f, &key, "the secret")?;
                (text, format!("{key}: {}", self.base_dir.join(&f.value).display()), f.referenced)
            }
            (None, Some(e)) => {
                let name = e.value.trim();
                let is_name = !name.is_empty()
                    && !name.starts_with("whsec_")
                    && !crate::secret::looks_like_key(name)
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !is_name {
                    return self.error(
                        &e.referenced,
                        format!("{key}.secret_env: not a variable name (the value is not shown: it may be the secret); expected letters, digits and _"),
                    );
                }
                match (self.env)(name) {
                    Some(v) => (v, format!("{key}.secret_env: the variable {name}"), e.referenced),
                    None => {
                        return self.error(&e.referenced, format!("{key}.secret_env: the environment variable {name} is not set; expected it to hold the secret"));
                    }
                }
            }
        };
        WebhookSecret::parse(&text)
            .or_else(|e| self.error(&place, format!("{from} does not hold a webhook secret: {e}; {expected}")))
    }
}
