//! [`Secret`]: a credential that never shows itself in `Debug`, `Display` or logs.

use std::fmt;

/// A secret string (the API key, a v3 token). Read it only with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for signing or a request header, and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A webhook's signing secret: the bytes behind a Standard Webhooks `whsec_` + base64
/// string. Never shown, like [`Secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

/// Why a webhook secret was refused (never quoting it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    /// Not base64 after the `whsec_` prefix.
    #[error("it is not base64 after the whsec_ prefix")]
    NotBase64,
    /// Shorter than 24 or longer than 64 bytes, the specification's bounds.
    #[error("it is {0} bytes once decoded; the Standard Webhooks specification asks for 24 to 64")]
    Length(usize),
}

impl WebhookSecret {
    /// Parses `whsec_` + base64 (the prefix may be left out, as the specification's
    /// libraries allow).
    pub fn parse(text: &str) -> Result<WebhookSecret, WebhookSecretError> {
        use base64::Engine;
        let text = text.trim();
        let b64 = text.strip_prefix("whsec_").unwrap_or(text);
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| WebhookSecretError::NotBase64)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(WebhookSecretError::Length(bytes.len()));
        }
        Ok(WebhookSecret(bytes))
    }

    /// The key bytes, for signing and nothing else.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Whether `text` looks like a credential (long, and mixing character classes the way
/// hex, base64 and random tokens do) rather than a name. Used to refuse echoing a value
/// typed where a name belongs; it errs on the side of calling a value a key.
pub fn looks_like_key(text: &str) -> bool {
    let classes = |s: &str| {
        (
            s.bytes().any(|b| b.is_ascii_lowercase()),
            s.bytes().any(|b| b.is_ascii_uppercase()),
            s.bytes().any(|b| b.is_ascii_digit()),
        )
    };
    let (lower, upper, digit) = classes(text);
    if text.len() >= 20 && lower && upper && digit {
        return true;
    }
    // Hex and UUIDs: long, and a good share of digits among the letters.
    let alnum = text.bytes().filter(u8::is_ascii_alphanumeric).count();
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    if text.len() >= 16 && (lower || upper) && digits * 4 >= alnum {
        return true;
    }
    text.split(['_', '-', '.']).any(|run| {
        let (lower, upper, digit) = classes(run);
        (run.len() >= 16 && digit && (lower || upper)) || (run.len() >= 24 && lower && upper)
    })
}

/// `text` with every word that looks like a credential replaced by `<not shown: it may be
/// a key>`: a key pasted into the wrong field (a file name, an enum value) must not come back
/// in an error, a log line or a reload answer. A word is a run of letters, digits and
/// `-_+/=.`, judged by [`looks_like_key`].
pub fn hide_key_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let is_word = |c: char| c.is_ascii_alphanumeric() || "-_+/=.".contains(c);
    let mut rest = text;
    while let Some(start) = rest.find(is_word) {
        out.push_str(&rest[..start]);
        let word_len = rest[start..].find(|c: char| !is_word(c)).unwrap_or(rest.len() - start);
        let word = &rest[start..start + word_len];
        // A path is judged a segment at a time: a key used as a file name is hidden, a
        // random temporary directory's name is not.
        for (i, segment) in word.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            // A sentence's full stop is not part of the word.
            let core = segment.trim_end_matches('.');
            if looks_like_key(core) {
                out.push_str("<not shown: it may be a key>");
                out.push_str(&segment[core.len()..]);
            } else {
                out.push_str(segment);
            }
        }
        rest = &rest[start + word_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_like_words_are_hidden_and_the_rest_kept() {
        for key in [
            "sk_live_8f3a9c2e1b7d4f6a0c5e9b2d",
            "1f0e7c3a-5b9d-4e2f-8a6c-0d3b7e9f1a24",
            "dGhpcyBpcyBub3QgYSByZWFsIGtleQ1234==",
        ] {
            let text = format!("smile_id.environment: unknown variant `{key}`, expected `production` or `sandbox`.");
            let hidden = hide_key_like(&text);
            assert!(!hidden.contains(key), "{hidden}");
            assert!(
                hidden.contains("unknown variant `<not shown: it may be a key>`, expected `production`"),
                "{hidden}"
            );
            let path = format!("cannot read /etc/idauth-exporter/{key}: No such file or directory (os error 2)");
            assert!(!hide_key_like(&path).contains(key), "{path}");
            assert!(!hide_key_like(&format!("{key}.")).contains(key));
        }
        for kept in [
            "cannot read /etc/idauth-exporter/smile_id_api_key: No such file or directory (os error 2)",
            "/run/credentials/idauth-exporter.service/smile_id_api_key",
            "poll.schedule: expected a cron expression such as \"0 1/10 * * * *\"",
            "2026-12-06T01:48:10.902Z NG NATIONAL_ID_NO_PHOTO web.listen_address 127.0.0.1:9877",
            "config.yaml:12:3: smile_id.partner_id: expected a string",
        ] {
            assert_eq!(hide_key_like(kept), kept);
        }
    }

    #[test]
    fn keys_and_names_are_told_apart() {
        for key in [
            "30be59ea79e06accab2c4403648824c2",
            "f5bae08a1b1088e9ff3a9e0a2f6ba49b78ba1f3a3e1980b1e2b7a777b27608fe",
            "XyC6f6ph55_01FdouNBhXBMgu_WDKGnP",
            "p4wski5eYOwco9GsUN9lFSA/F9VwYG3x9qwCpDsCB5w=",
            "98ab8a68-6374-4496-9d2f-11f734743e82",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "AbCdEfGhIjKlMnOpQrStUvWxYz",
        ] {
            assert!(looks_like_key(key), "{key}");
        }
        for name in [
            "SMILE_ID_API_KEY",
            "MY_KEY",
            "SMILE_ID_PRODUCTION_API_KEY_FOR_EXPORTER",
            "IDAUTH_EXPORTER_SMILE_ID_API_KEY_2024",
            "smile_id_api_key",
            "SmileIdApiKey",
            "KEY2",
        ] {
            assert!(!looks_like_key(name), "{name}");
        }
    }

    #[test]
    fn never_prints_itself() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s}"), "<redacted>");
        assert!(!format!("{s:?}").contains("sk-live"));
        assert!(!format!("{:#?}", Some(s.clone())).contains("sk-live"));
        assert_eq!(s.expose(), "sk-live-123");
    }
}
