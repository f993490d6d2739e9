//! A real HTTP server on `127.0.0.1:0` that records every request it gets and answers
//! as the test tells it: the stand-in for a customer's webhook endpoint.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Largest body the receiver accepts (well above Herald's own limit).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: Method,
    /// Path and query, e.g. `/hook?x=1`.
    pub path: String,
    pub headers: HeaderMap,
    /// The exact bytes received (what a signature covers).
    pub body: Bytes,
}

impl RecordedRequest {
    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// If the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the received body is JSON")
    }
}

/// How the receiver answers a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Sent as `Retry-After: <seconds>`.
    pub retry_after: Option<u64>,
    /// Wait this long before answering (to exercise timeouts).
    pub delay: Option<Duration>,
}

impl Reply {
    /// 200 OK.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// Any status, e.g. `Reply::status(500)` or `Reply::status(410)`.
    pub fn status(status: u16) -> Self {
        Self { status, retry_after: None, delay: None }
    }

    /// `status` (429 or 503, say) with `Retry-After: seconds`.
    pub fn retry_after(status: u16, seconds: u64) -> Self {
        Self { retry_after: Some(seconds), ..Self::status(status) }
    }

    /// The same reply, sent after `delay`.
    #[must_use]
    pub fn after(self, delay: Duration) -> Self {
        Self { delay: Some(delay), ..self }
    }
}

struct Inner {
    requests: Mutex<Vec<RecordedRequest>>,
    count: watch::Sender<usize>,
    /// One-shot replies, used in order before `default`.
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the recorded data from the others.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The recording server. Stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: CancellationToken,
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1:0` answering 200 to everything.
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let inner = Arc::new(Inner {
            requests: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::ok()),
        });
        let app = Router::new().fallback(record).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(inner.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            // Errors here only mean the test is over.
            let _ = axum::serve(listener, app).with_graceful_shutdown(stop).await;
        });
        Self { addr, inner, shutdown }
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path` (e.g. `"/hook"`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answer every later request with `reply` (once scripted replies run out).
    pub fn respond_with(&self, reply: Reply) {
        *lock(&self.inner.default) = reply;
    }

    /// Answer the next requests with `replies`, in order, then fall back to the
    /// [`Self::respond_with`] reply. E.g. fail twice, then succeed.
    pub fn respond_in_order(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.inner.script).extend(replies);
    }

    /// Everything received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.requests).clone()
    }

    /// Waits until at least `n` requests have arrived and returns all of them.
    ///
    /// # Panics
    /// When `timeout` passes first; the message says how many arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let mut count = self.inner.count.subscribe();
        let reached = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        if reached.is_err() {
            let got = *self.inner.count.borrow();
            panic!("the receiver expected {n} requests within {timeout:?} but got {got}");
        }
        self.requests()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn record(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = lock(&inner.script).pop_front().unwrap_or_else(|| lock(&inner.default).clone());
    let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string);
    lock(&inner.requests).push(RecordedRequest { method, path, headers, body });
    inner.count.send_modify(|c| *c += 1);

    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = status.into_response();
    if let Some(seconds) = reply.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_requests_and_plays_the_script() {
        let receiver = Receiver::start().await;
        receiver.respond_in_order([Reply::status(500), Reply::retry_after(429, 7)]);
        receiver.respond_with(Reply::status(410));
        let client = reqwest::Client::new();

        let mut statuses = Vec::new();
        for i in 0..3 {
            let r = client
                .post(receiver.url(&format!("/hook?n={i}")))
                .header("webhook-id", "msg_1")
                .body(format!("{{\"n\":{i}}}"))
                .send()
                .await
                .unwrap();
            statuses.push((r.status().as_u16(), r.headers().get("retry-after").cloned()));
        }
        assert_eq!(statuses[0], (500, None));
        assert_eq!(statuses[1], (429, Some(HeaderValue::from(7u64))));
        assert_eq!(statuses[2], (410, None));

        let got = receiver.wait_for(3, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].method, Method::POST);
        assert_eq!(got[1].path, "/hook?n=1");
        assert_eq!(got[1].header("webhook-id"), Some("msg_1"));
        assert_eq!(got[2].json()["n"], 2);
    }

    #[tokio::test]
    #[should_panic(expected = "expected 1 requests")]
    async fn wait_for_fails_when_nothing_arrives() {
        let receiver = Receiver::start().await;
        receiver.wait_for(1, Duration::from_millis(50)).await;
    }
}
