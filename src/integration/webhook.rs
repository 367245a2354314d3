//! The PC customer-service system's webhook (`CS_WEBHOOK_URL`): one signed JSON `POST` per
//! delivery. Any 2xx answer is a delivery; anything else (another status, a refused connection,
//! a timeout) is retried. Redirects are not followed: a 3xx is a failed attempt.

use super::signature::{sign, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{envelope, Delivery, Transport};
use crate::domain::OutboxEntry;
use async_trait::async_trait;
use std::time::Duration;

pub struct CsWebhook {
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
}

impl CsWebhook {
    pub fn new(url: &str, secret: &str, timeout: Duration) -> CsWebhook {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("provider-desk/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client without TLS always builds");
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
            Err(error) => Delivery::Retry(describe(&error)),
        }
    }
}

/// A transport error with its cause, which reqwest keeps in its source chain.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
