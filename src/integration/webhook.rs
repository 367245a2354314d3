//! The PC customer-service system's webhook (`CS_WEBHOOK_URL`): one signed JSON `POST` per
//! delivery. Any 2xx answer is a delivery; anything else (another status, a refused connection,
//! a timeout, a certificate no trusted root vouches for) is retried. Redirects are not followed:
//! a 3xx is a failed attempt.

use super::http_client::describe;
use super::signature::{sign, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{envelope, Delivery, Transport};
use crate::domain::OutboxEntry;
use async_trait::async_trait;

pub struct CsWebhook {
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
}

impl CsWebhook {
    /// Posts to `url` through `client` (see [`super::http_client::build`]).
    pub fn new(client: reqwest::Client, url: &str, secret: &str) -> CsWebhook {
        CsWebhook { client, url: url.to_owned(), secret: secret.as_bytes().to_vec() }
    }
}

#[async_trait]
impl Transport for CsWebhook {
    async fn deliver(&self, entry: &OutboxEntry) -> Delivery {
        let body = envelope(entry).to_string().into_bytes();
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = sign(&self.secret, &timestamp, &body);
        let sent = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, entry.draft.id.as_str())
            .header(EVENT_HEADER, &entry.draft.event_type)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Delivery::Delivered,
            Ok(response) => Delivery::Retry(format!("the webhook answered HTTP {}", response.status().as_u16())),
            Err(error) => Delivery::Retry(describe(error)),
        }
    }
}
