//! The bench's side of Herald's API: a bearer-token client, setting up an application
//! with endpoints, and message bodies that carry their send time.

use std::time::Instant;

use anyhow::Context;
use serde_json::json;

/// A client for one Herald server.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(base: &str, token: &str, pool: usize) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
        let http = reqwest::Client::builder().pool_max_idle_per_host(pool).default_headers(headers).build()?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned() })
    }

    /// Creates an application with `endpoints` endpoints at `url`; returns its message URL.
    pub async fn setup(&self, endpoints: usize, url: &str) -> anyhow::Result<String> {
        let app: serde_json::Value = self
            .http
            .post(format!("{}/api/v1/app", self.base))
            .json(&json!({ "name": "bench" }))
            .send()
            .await?
            .error_for_status()
            .context("creating the application")?
            .json()
            .await?;
        let app_id = app["id"].as_str().context("application id in the response")?.to_owned();
        for n in 0..endpoints {
            self.http
                .post(format!("{}/api/v1/app/{app_id}/endpoint", self.base))
                .json(&json!({ "url": url, "description": format!("bench {n}") }))
                .send()
                .await?
                .error_for_status()
                .context("creating an endpoint")?;
        }
        Ok(format!("{}/api/v1/app/{app_id}/msg", self.base))
    }

    /// Creates a Stripe ingest source signed with `secret` and one ingest endpoint at
    /// `url`; returns the source's ingest URL.
    pub async fn setup_source(&self, secret: &str, url: &str) -> anyhow::Result<String> {
        let source: serde_json::Value = self
            .http
            .post(format!("{}/ingest/api/v1/source", self.base))
            .json(&json!({ "name": "bench", "type": "stripe", "config": { "secret": secret } }))
            .send()
            .await?
            .error_for_status()
            .context("creating the ingest source")?
            .json()
            .await?;
        let id = source["id"].as_str().context("source id in the response")?;
        self.http
            .post(format!("{}/ingest/api/v1/source/{id}/endpoint", self.base))
            .json(&json!({ "url": url }))
            .send()
            .await?
            .error_for_status()
            .context("creating an ingest endpoint")?;
        source["ingestUrl"].as_str().map(str::to_owned).context("ingestUrl in the response")
    }

    /// Posts one signed provider request to an ingest URL; `true` when Herald answered 2xx.
    pub async fn post_signed(&self, url: &str, body: String, signature: String) -> bool {
        self.post_signed_status(url, body, signature).await.is_some_and(|s| s.is_success())
    }

    /// Posts one signed provider request to an ingest URL; Herald's status, `None` when
    /// the request itself failed.
    pub async fn post_signed_status(&self, url: &str, body: String, signature: String) -> Option<reqwest::StatusCode> {
        let request = self
            .http
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", signature)
            .body(body);
        request.send().await.ok().map(|r| r.status())
    }

    /// Posts one message; `Ok(true)` when Herald accepted it (202).
    pub async fn post(&self, url: &str, body: Vec<u8>, key: Option<String>) -> bool {
        let mut request = self.http.post(url).header("content-type", "application/json").body(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        matches!(request.send().await, Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED)
    }
}

/// A message whose `payload` serialises to about `payload_bytes` bytes and starts with
/// `"sent_us"`: microseconds since `epoch`, for end-to-end latency.
pub fn message_body(payload_bytes: usize, epoch: Instant, deliver_at: Option<&str>) -> Vec<u8> {
    let sent = epoch.elapsed().as_micros();
    let head = format!(r#"{{"sent_us":{sent},"data":""}}"#);
    let filler = "x".repeat(payload_bytes.saturating_sub(head.len()));
    let payload = format!(r#"{{"sent_us":{sent},"data":"{filler}"}}"#);
    let deliver = deliver_at.map(|t| format!(r#","deliverAt":"{t}""#)).unwrap_or_default();
    format!(r#"{{"eventType":"bench.event","payload":{payload}{deliver}}}"#).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_requested_size_and_a_send_time() {
        let body: serde_json::Value = serde_json::from_slice(&message_body(1024, Instant::now(), None)).unwrap();
        assert_eq!(serde_json::to_vec(&body["payload"]).unwrap().len(), 1024);
        assert!(body["payload"]["sent_us"].is_u64());
        let later: serde_json::Value =
            serde_json::from_slice(&message_body(100, Instant::now(), Some("2030-01-01T00:00:00Z"))).unwrap();
        assert_eq!(later["deliverAt"], "2030-01-01T00:00:00Z");
    }
}
