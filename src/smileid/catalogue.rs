//! The provider's catalogue of (country, id_type) pairs, read without authentication:
//! `GET /v1/services` (legacy flavour), or `GET /v3/services/supported_id_types?country=CC`
//! once per country (v3).

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::Value;

use super::{PollError, Transport};
use crate::config::{ApiFlavor, SmileIdConfig};
use crate::model::{Country, IdType, Target};

/// Path of the legacy catalogue below the base URL.
pub const SERVICES_PATH: &str = "/v1/services";
/// Path of the v3 catalogue (one country per request) below the base URL.
pub const SUPPORTED_ID_TYPES_PATH: &str = "/v3/services/supported_id_types";
/// The most of a catalogue body we read: the captured ones are under 60 KiB.
pub const CATALOGUE_LIMIT: usize = 4 << 20;
/// The `hosted_web` products whose ID types are looked up in an ID authority by number,
/// which is what id_status reports on; document checks (`doc_verification`) are not.
pub const KYC_PRODUCTS: [&str; 4] = ["basic_kyc", "enhanced_kyc", "biometric_kyc", "ekyc_smartselfie"];

/// Why the catalogue could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CatalogueError {
    /// The request failed (timeout, connection, HTTP status).
    #[error("{0}")]
    Request(#[from] PollError),
    /// The body is not the documented shape.
    #[error("the catalogue is not of the documented shape: {0}")]
    Shape(String),
    /// The catalogue lists no pair at all: taken as a provider fault, not as news.
    #[error("the catalogue lists no ID types")]
    Empty,
}

/// Reads the provider's catalogue.
pub trait CatalogueApi: Send + Sync {
    /// Every pair the catalogue lists; with `countries` non-empty, only those countries may
    /// be asked for (the v3 endpoint is per country).
    fn pairs<'a>(&'a self, countries: &'a [Country]) -> BoxFuture<'a, Result<Vec<Target>, CatalogueError>>;
}

/// The catalogue over HTTP, in the configured flavour.
#[derive(Debug)]
pub struct HttpCatalogue {
    transport: Transport,
    base: String,
    flavor: ApiFlavor,
}

impl HttpCatalogue {
    /// The catalogue of the configured provider.
    pub fn new(config: &SmileIdConfig, transport: Transport) -> HttpCatalogue {
        HttpCatalogue { transport, base: config.effective_base_url(), flavor: config.api }
    }

    /// The URL asked (the first one, for v3), for messages.
    pub fn url(&self) -> String {
        match self.flavor {
            ApiFlavor::V2 => format!("{}{SERVICES_PATH}", self.base),
            ApiFlavor::V3 => format!("{}{SUPPORTED_ID_TYPES_PATH}", self.base),
        }
    }

    async fn get(&self, url: &str, query: &[(&str, &str)]) -> Result<bytes::Bytes, PollError> {
        let response =
            self.transport.send_capped(|| self.transport.client().get(url).query(query), CATALOGUE_LIMIT).await?;
        Ok(response.body)
    }

    async fn v3(&self, countries: &[Country]) -> Result<Vec<Target>, CatalogueError> {
        let url = format!("{}{SUPPORTED_ID_TYPES_PATH}", self.base);
        let asked: Vec<Country> = if countries.is_empty() { documented_countries() } else { countries.to_vec() };
        let mut all = BTreeSet::new();
        for country in &asked {
            match self.get(&url, &[("country", country.as_str())]).await {
                Ok(body) => all.extend(parse_v3_supported_id_types(&body, country)?),
                // The provider's word for a country it does not serve: nothing to watch there.
                Err(PollError::Http { status: 400, message }) if message.contains("Invalid country") => {
                    tracing::debug!(country = %country, "the catalogue does not serve this country");
                }
                Err(e) => return Err(e.into()),
            }
        }
        if all.is_empty() {
            return Err(CatalogueError::Empty);
        }
        Ok(all.into_iter().collect())
    }
}

impl CatalogueApi for HttpCatalogue {
    fn pairs<'a>(&'a self, countries: &'a [Country]) -> BoxFuture<'a, Result<Vec<Target>, CatalogueError>> {
        async move {
            match self.flavor {
                ApiFlavor::V2 => {
                    let body = self.get(&format!("{}{SERVICES_PATH}", self.base), &[]).await?;
                    parse_v1_services(&body)
                }
                ApiFlavor::V3 => self.v3(countries).await,
            }
        }
        .boxed()
    }
}

/// The catalogue of the configured provider and flavour.
pub fn catalogue_for(config: &SmileIdConfig, transport: Transport) -> Arc<HttpCatalogue> {
    Arc::new(HttpCatalogue::new(config, transport))
}

/// The countries the reference table documents, asked of the v3 catalogue when the
/// configuration names none (that endpoint cannot list countries).
pub fn documented_countries() -> Vec<Country> {
    let mut out: Vec<Country> =
        crate::catalog::CURRENT.iter().chain(crate::catalog::OTHER).filter_map(|(c, _)| c.parse().ok()).collect();
    out.sort();
    out.dedup();
    out
}

fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, CatalogueError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(CatalogueError::Shape("JSON that is not an object".to_owned())),
        Err(_) if body.is_empty() => Err(CatalogueError::Shape("empty body".to_owned())),
        Err(_) if String::from_utf8_lossy(body).trim_start().starts_with('<') => {
            Err(CatalogueError::Shape("an HTML page instead of JSON".to_owned()))
        }
        Err(e) => Err(CatalogueError::Shape(format!("not JSON ({e})"))),
    }
}

/// A pair from the catalogue's spelling; entries that are not a country code and an ID
/// type (the provider's own test rows, say) are skipped.
fn pair(country: &str, id_type: &str) -> Option<Target> {
    Some(Target::new(country.parse().ok()?, id_type.parse::<IdType>().ok()?))
}

/// The pairs of a `/v1/services` body: the `id_types` map and the ID-number KYC products
/// of `hosted_web` ([`KYC_PRODUCTS`]), sorted and without duplicates.
pub fn parse_v1_services(body: &[u8]) -> Result<Vec<Target>, CatalogueError> {
    let map = json_object(body)?;
    let (id_types, hosted_web) = (map.get("id_types"), map.get("hosted_web"));
    if id_types.is_none() && hosted_web.is_none() {
        return Err(CatalogueError::Shape("neither id_types nor hosted_web".to_owned()));
    }
    let mut all = BTreeSet::new();
    match id_types {
        None => {}
        Some(Value::Object(countries)) => {
            for (c, types) in countries {
                let Value::Object(types) = types else {
                    return Err(CatalogueError::Shape(format!("id_types.{c} is not an object")));
                };
                all.extend(types.keys().filter_map(|t| pair(c, t)));
            }
        }
        Some(_) => return Err(CatalogueError::Shape("id_types is not an object".to_owned())),
    }
    match hosted_web {
        None => {}
        Some(Value::Object(products)) => {
            for (product, countries) in products.iter().filter(|(p, _)| KYC_PRODUCTS.contains(&p.as_str())) {
                let Value::Object(countries) = countries else {
                    return Err(CatalogueError::Shape(format!("hosted_web.{product} is not an object")));
                };
                for (c, entry) in countries {
                    if let Some(Value::Object(types)) = entry.get("id_types") {
                        all.extend(types.keys().filter_map(|t| pair(c, t)));
                    }
                }
            }
        }
        Some(_) => return Err(CatalogueError::Shape("hosted_web is not an object".to_owned())),
    }
    if all.is_empty() {
        return Err(CatalogueError::Empty);
    }
    Ok(all.into_iter().collect())
}

/// The pairs of a v3 `supported_id_types` body for `country`:
/// `{"id_types":[{"country","type",...}]}`. An empty list is that country's answer, not an error.
pub fn parse_v3_supported_id_types(body: &[u8], country: &Country) -> Result<Vec<Target>, CatalogueError> {
    let map = json_object(body)?;
    let Some(Value::Array(entries)) = map.get("id_types") else {
        return Err(CatalogueError::Shape("no id_types list".to_owned()));
    };
    let mut all = BTreeSet::new();
    for e in entries {
        let Some(Value::String(id_type)) = e.get("type") else {
            return Err(CatalogueError::Shape("an id_types entry without a type".to_owned()));
        };
        let c = match e.get("country") {
            Some(Value::String(c)) => c.as_str(),
            _ => country.as_str(),
        };
        all.extend(pair(c, id_type));
    }
    Ok(all.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/provider/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn names(pairs: &[Target]) -> Vec<String> {
        pairs.iter().map(Target::to_string).collect()
    }

    /// The Android SDK's capture: the `id_types` map and the KYC products, all Ghana; the
    /// document-verification products (PT PASSPORT, GH SOCIAL_ID) are not ID authorities.
    #[test]
    fn the_android_capture_parses_into_its_ghana_pairs() {
        let pairs = parse_v1_services(&fixture("v1-services-android.json")).unwrap();
        let expected =
            ["DRIVERS_LICENSE", "GHANA_CARD", "NATIONAL_ID", "NEW_VOTER_ID", "PASSPORT", "SSNIT", "VOTER_ID"]
                .map(|t| format!("GH/{t}"));
        assert_eq!(names(&pairs), expected);
    }

    /// The web client's 2023 capture has only `hosted_web`: five countries' KYC pairs, and
    /// none of the hundred document-verification countries.
    #[test]
    fn the_web_client_capture_parses_into_its_kyc_pairs() {
        let pairs = parse_v1_services(&fixture("v1-services-webclient-2023.json")).unwrap();
        let of = |c: &str| -> Vec<String> {
            pairs.iter().filter(|t| t.country.as_str() == c).map(|t| t.id_type.to_string()).collect()
        };
        assert_eq!(of("GH"), ["DRIVERS_LICENSE", "NATIONAL_ID", "NEW_VOTER_ID", "PASSPORT", "SSNIT", "VOTER_ID"]);
        assert_eq!(
            of("NG"),
            ["BANK_ACCOUNT", "BVN", "BVN_MFA", "DRIVERS_LICENSE", "NIN", "NIN_SLIP", "NIN_V2", "VOTER_ID", "V_NIN"]
        );
        assert_eq!(
            of("KE"),
            ["ALIEN_CARD", "DRIVERS_LICENSE", "KRA_PIN", "NATIONAL_ID", "NATIONAL_ID_NO_PHOTO", "PASSPORT"]
        );
        assert_eq!(of("UG"), ["NATIONAL_ID_NO_PHOTO"]);
        assert_eq!(of("ZA"), ["NATIONAL_ID", "NATIONAL_ID_NO_PHOTO"]);
        assert_eq!(pairs.len(), 24, "{:?}", names(&pairs));
    }

    #[test]
    fn wrong_shapes_and_empty_lists_are_errors() {
        for body in
            [&b""[..], b"<html>502</html>", b"[1,2]", b"{\"bank_codes\":[]}", b"{\"id_types\":[1]}", b"{\"id_types\":{"]
        {
            assert!(
                matches!(parse_v1_services(body), Err(CatalogueError::Shape(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(parse_v1_services(b"{\"id_types\":{},\"hosted_web\":{}}"), Err(CatalogueError::Empty));
        // Only document checks: nothing an id_status poll could watch.
        let docs = br#"{"hosted_web":{"doc_verification":{"PT":{"id_types":{"PASSPORT":{}}}}}}"#;
        assert_eq!(parse_v1_services(docs), Err(CatalogueError::Empty));
    }

    #[test]
    fn the_v3_list_parses_and_skips_what_is_not_a_pair() {
        let ng: Country = "NG".parse().unwrap();
        let body = br#"{"id_types":[{"country":"NG","type":"BVN","label":"BVN","regex":"^[0-9]{11}$","required_fields":["id_number"]},
            {"country":"NG","type":"NIN_V2"},{"country":"NG","type":"not a type"}]}"#;
        assert_eq!(names(&parse_v3_supported_id_types(body, &ng).unwrap()), ["NG/BVN", "NG/NIN_V2"]);
        assert_eq!(parse_v3_supported_id_types(br#"{"id_types":[]}"#, &ng).unwrap(), vec![]);
        assert!(matches!(parse_v3_supported_id_types(br#"{"types":[]}"#, &ng), Err(CatalogueError::Shape(_))));
        assert!(matches!(parse_v3_supported_id_types(br#"{"id_types":[{}]}"#, &ng), Err(CatalogueError::Shape(_))));
    }
}
