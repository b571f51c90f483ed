//! The legacy flavour: a signed `POST /api/v2/partner/id_status`.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::Serialize;

use super::{IdStatusApi, PollError, Transport, parse_status_body, scrub};
use crate::config::{Environment, SmileIdConfig};
use crate::model::{Observation, Target};
use crate::secret::Secret;
use crate::signature;

/// Path of the v2 endpoint below the base URL.
pub const PATH: &str = "/api/v2/partner/id_status";

/// Signs and sends v2 id_status requests.
#[derive(Debug)]
pub struct V2Client {
    transport: Transport,
    url: String,
    partner_id: String,
    api_key: Secret,
    environment: Environment,
}

#[derive(Serialize)]
struct Body<'a> {
    partner_id: &'a str,
    timestamp: &'a str,
    signature: &'a str,
    country: &'a str,
    id_type: &'a str,
    environment: &'a str,
}

impl V2Client {
    /// A client for the configured account.
    pub fn new(config: &SmileIdConfig, transport: Transport) -> Self {
        V2Client {
            transport,
            url: format!("{}{PATH}", config.effective_base_url()),
            partner_id: config.partner_id.clone(),
            api_key: config.api_key.clone(),
            environment: config.environment,
        }
    }

    async fn fetch(&self, target: &Target) -> Result<Observation, PollError> {
        let response = self
            .transport
            .send(|| {
                // Signed afresh on every attempt: the provider may reject an old timestamp.
                let timestamp = signature::timestamp(chrono::Utc::now());
                let signature = signature::sign(&self.api_key, &self.partner_id, &timestamp);
                self.transport.client().post(&self.url).json(&Body {
                    partner_id: &self.partner_id,
                    timestamp: &timestamp,
                    signature: &signature,
                    country: target.country.as_str(),
                    id_type: target.id_type.as_str(),
                    environment: self.environment.as_str(),
                })
            })
            .await?;
        parse_status_body(&response.body)
    }
}

impl IdStatusApi for V2Client {
    fn id_status<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Observation, PollError>> {
        async move { scrub(self.fetch(target).await, &self.api_key) }.boxed()
    }
}
