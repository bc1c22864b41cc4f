//! Webhooks (msipphone's extension, not MicroSIP's; off unless
//! `[Settings] webhookUrl` is set): each call event is POSTed to that URL
//! as a JSON object, with `X-Msipphone-Signature: sha256=<hex>`, the
//! HMAC-SHA256 of the exact body under `webhookSecret` (the header is left
//! out when no secret is set).
//!
//! Delivery never blocks the phone: events go through a bounded queue
//! ([`QUEUE`]; when it is full, events are dropped and logged) to one
//! sender task that posts them in order. Each POST has [`TIMEOUT`]; a
//! connection error, a timeout, a 429 or a 5xx is retried up to
//! [`RETRIES`] times, waiting 1 s, 2 s, 4 s; other statuses are final.
//! The client is reqwest (rustls with the `ring` provider, as provisioner
//! uses it, which cross-builds for Windows without a C toolchain).

use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::mpsc;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Msipphone-Signature";
/// How long one POST may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Retries after the first attempt.
pub const RETRIES: u32 = 3;
/// Events waiting to be sent, at most.
pub const QUEUE: usize = 256;
/// The first retry's wait; each next one doubles.
pub const BACKOFF: Duration = Duration::from_secs(1);

/// One event as POSTed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEvent {
    /// What happened: `incoming_call`, `call_ring`, `call_answer`,
    /// `call_start`, `call_busy`, `call_end`, `outgoing_call` (the hooks'
    /// names), `call_rejected` (refused by DND, denyIncoming, callWaiting
    /// or maxConcurrentCalls) or `call_forwarded`.
    pub event: &'static str,
    /// Unix seconds.
    pub time: i64,
    /// The phone's call id.
    pub call: u64,
    /// The account.
    pub account: u32,
    /// `incoming` or `outgoing`.
    pub direction: &'static str,
    /// The remote user part (the caller id hooks get).
    pub number: String,
    /// The name shown: the contact's, else the remote display name.
    pub name: String,
    /// The remote URI.
    pub remote_uri: String,
    /// The final SIP status, for the ends, rejections and forwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// The status text, when `code` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds connected, for the ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).map(|mut mac| {
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    });
    format!("sha256={}", mac.unwrap_or_default())
}

/// The sending side: cheap, never blocks.
#[derive(Debug, Clone)]
pub struct Webhook {
    queue: mpsc::Sender<WebhookEvent>,
}

/// Why webhooks cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// `webhookUrl` is not an http(s) URL.
    #[error("webhookUrl {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    /// The HTTP client cannot be built.
    #[error("webhook client: {0}")]
    Client(String),
}

impl Webhook {
    /// Starts the sender task for `url` (on the current tokio runtime).
    pub fn start(url: &str, secret: &str) -> Result<Webhook, WebhookError> {
        let url = reqwest::Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| WebhookError::BadUrl(url.to_owned()))?;
        // reqwest is built without a default crypto provider; ring is
        // ours. An Err only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("msipphone/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebhookError::Client(e.to_string()))?;
        let (queue, mut events) = mpsc::channel::<WebhookEvent>(QUEUE);
        let secret = secret.as_bytes().to_vec();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let body = match serde_json::to_vec(&event) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!("webhook event not serialisable: {e}");
                        continue;
                    }
                };
                deliver(&client, &url, &secret, body, event.event).await;
            }
        });
        Ok(Webhook { queue })
    }

    /// Queues `event`; dropped (and logged) when the queue is full.
    pub fn post(&self, event: WebhookEvent) {
        if let Err(e) = self.queue.try_send(event) {
            tracing::warn!("webhook queue: {e}; event dropped");
        }
    }
}

async fn deliver(
    client: &reqwest::Client,
    url: &reqwest::Url,
    secret: &[u8],
    body: Vec<u8>,
    what: &str,
) {
    let sig = (!secret.is_empty()).then(|| signature(secret, &body));
    let mut wait = BACKOFF;
    for attempt in 0..=RETRIES {
        let mut request = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(sig) = &sig {
            request = request.header(SIGNATURE_HEADER, sig);
        }
        let retry = match request.send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => {
                let s = r.status();
                tracing::info!(event = what, attempt, "webhook answered {s}");
                s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            Err(e) => {
                tracing::info!(event = what, attempt, "webhook: {e}");
                true
            }
        };
        if !retry || attempt == RETRIES {
            break;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    tracing::warn!(event = what, "webhook not delivered");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            signature(b"other", b"what do ya want for nothing?"),
            signature(b"Jefe", b"what do ya want for nothing?")
        );
    }

    #[test]
    fn only_http_urls_start() {
        assert!(matches!(
            Webhook::start("ftp://x/", ""),
            Err(WebhookError::BadUrl(_))
        ));
        assert!(matches!(
            Webhook::start("not a url", ""),
            Err(WebhookError::BadUrl(_))
        ));
    }

    #[tokio::test]
    async fn events_are_posted_signed_and_retried_after_a_5xx() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let mut got = Vec::new();
            for status in ["503 Busy", "200 OK"] {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.expect("read");
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len || n == 0 {
                            got.push(text);
                            break;
                        }
                    }
                }
                let reply =
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                s.write_all(reply.as_bytes()).await.expect("write");
            }
            got
        });
        let hook = Webhook::start(&format!("http://{addr}/events"), "s3cret").expect("starts");
        hook.post(WebhookEvent {
            event: "call_end",
            time: 1,
            call: 7,
            account: 1,
            direction: "incoming",
            number: "$(reboot)".into(),
            name: String::new(),
            remote_uri: "sip:x@y".into(),
            code: Some(200),
            reason: Some("Call Ended".into()),
            duration: Some(3),
        });
        let got = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("in time")
            .expect("server");
        assert_eq!(got.len(), 2, "retried once after the 503");
        for request in got {
            let (head, body) = request.split_once("\r\n\r\n").expect("a request");
            assert!(head.starts_with("POST /events HTTP/1.1"), "{head}");
            let sig = head
                .lines()
                .find_map(|l| l.strip_prefix("x-msipphone-signature: "))
                .expect("signed");
            assert_eq!(sig, signature(b"s3cret", body.as_bytes()));
            let json: serde_json::Value = serde_json::from_str(body).expect("json");
            assert_eq!(json["event"], "call_end");
            assert_eq!(json["number"], "$(reboot)");
            assert_eq!(json["duration"], 3);
        }
    }
}
