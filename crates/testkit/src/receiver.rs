//! A real HTTP server on `127.0.0.1:0` that records every request it gets and answers
//! as the test tells it: the stand-in for a customer's webhook endpoint. It can answer
//! any status with extra headers (`Retry-After`, `Location`), after a delay, or hold the
//! answer back until the test releases it (for at most 10 s: "an endpoint that hangs").

use std::{
    collections::VecDeque,
    fmt::Display,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::wait::DEADLINE;

/// Largest body the receiver accepts (well above Herald's own limit).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long a held reply waits for [`Receiver::release`] at most.
const HOLD_LIMIT: Duration = Duration::from_secs(10);

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The request method.
    pub method: Method,
    /// Path and query, e.g. `/hook?x=1`.
    pub path: String,
    /// Every header received.
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
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    delay: Option<Duration>,
    hold: bool,
}

impl Reply {
    /// 200 OK.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// Any status, e.g. `Reply::status(500)` or `Reply::status(410)`.
    ///
    /// # Panics
    /// For a number that is no HTTP status.
    pub fn status(status: u16) -> Self {
        let status = StatusCode::from_u16(status).expect("a valid test status");
        Self { status, headers: Vec::new(), delay: None, hold: false }
    }

    /// `status` (429 or 503, say) with `Retry-After: value` (seconds or an HTTP date).
    pub fn retry_after(status: u16, value: impl Display) -> Self {
        Self::status(status).header(header::RETRY_AFTER, value)
    }

    /// A `302 Found` pointing at `location`.
    pub fn redirect(location: &str) -> Self {
        Self::status(302).header(header::LOCATION, location)
    }

    /// The same reply, sent after `delay` (to keep deliveries in flight for a while).
    #[must_use]
    pub fn after(self, delay: Duration) -> Self {
        Self { delay: Some(delay), ..self }
    }

    /// The same reply, sent only after [`Receiver::release`] (or 10 s).
    #[must_use]
    pub fn held(self) -> Self {
        Self { hold: true, ..self }
    }

    fn header(mut self, name: HeaderName, value: impl Display) -> Self {
        let value = HeaderValue::from_str(&value.to_string()).expect("a valid test header value");
        self.headers.push((name, value));
        self
    }
}

struct Inner {
    requests: Mutex<Vec<RecordedRequest>>,
    arrived: watch::Sender<usize>,
    answered: AtomicUsize,
    /// One-shot replies, used in order before `default`.
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    released: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the recorded data from the others.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The recording server. Stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    _stop: DropGuard,
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
            arrived: watch::Sender::new(0),
            answered: AtomicUsize::new(0),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::ok()),
            released: watch::Sender::new(false),
        });
        let app = Router::new().fallback(record).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(inner.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            // An error here only means the test is over.
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped).await;
        });
        Self { addr, inner, _stop: stop.drop_guard() }
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

    /// Lets every held reply (now and later) go out.
    pub fn release(&self) {
        self.inner.released.send_replace(true);
    }

    /// Everything received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.requests).clone()
    }

    /// How many requests have arrived.
    pub fn received(&self) -> usize {
        *self.inner.arrived.borrow()
    }

    /// How many requests have been answered.
    pub fn answered(&self) -> usize {
        self.inner.answered.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests have arrived and returns all of them.
    ///
    /// # Panics
    /// When [`DEADLINE`] passes first; the message says how many arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<RecordedRequest> {
        let mut arrived = self.inner.arrived.subscribe();
        let reached = tokio::time::timeout(DEADLINE, arrived.wait_for(|c| *c >= n)).await;
        assert!(reached.is_ok(), "the receiver expected {n} requests within {DEADLINE:?} but got {}", self.received());
        self.requests()
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
    inner.arrived.send_modify(|c| *c += 1);

    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    if reply.hold {
        let mut released = inner.released.subscribe();
        let _ = tokio::time::timeout(HOLD_LIMIT, released.wait_for(|r| *r)).await;
    }
    let mut response = reply.status.into_response();
    response.headers_mut().extend(reply.headers);
    inner.answered.fetch_add(1, Ordering::SeqCst);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(receiver: &Receiver, path: &str, body: String) -> (u16, Option<HeaderValue>) {
        let response = reqwest::Client::new()
            .post(receiver.url(path))
            .header("webhook-id", "msg_1")
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.headers().get("retry-after").cloned())
    }

    #[tokio::test]
    async fn records_requests_and_plays_the_script() {
        let receiver = Receiver::start().await;
        receiver.respond_in_order([Reply::status(500), Reply::retry_after(429, 7)]);
        receiver.respond_with(Reply::status(410));

        let mut statuses = Vec::new();
        for i in 0..3 {
            statuses.push(post(&receiver, &format!("/hook?n={i}"), format!("{{\"n\":{i}}}")).await);
        }
        assert_eq!(statuses[0], (500, None));
        assert_eq!(statuses[1], (429, Some(HeaderValue::from(7u64))));
        assert_eq!(statuses[2], (410, None));

        let got = receiver.wait_for(3).await;
        assert_eq!((got.len(), receiver.answered()), (3, 3));
        assert_eq!(got[1].method, Method::POST);
        assert_eq!(got[1].path, "/hook?n=1");
        assert_eq!(got[1].header("webhook-id"), Some("msg_1"));
        assert_eq!(got[2].json()["n"], 2);
    }

    #[tokio::test]
    async fn a_held_reply_goes_out_once_released() {
        let receiver = Receiver::start().await;
        receiver.respond_with(Reply::ok().held());
        let request = tokio::spawn({
            let url = receiver.url("/slow");
            async move { reqwest::Client::new().post(url).send().await.unwrap().status().as_u16() }
        });
        receiver.wait_for(1).await;
        assert_eq!(receiver.answered(), 0, "held until released");
        receiver.release();
        assert_eq!(request.await.unwrap(), 200);
        assert_eq!(receiver.answered(), 1);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "expected 1 requests")]
    async fn wait_for_fails_when_nothing_arrives() {
        let receiver = Receiver::start().await;
        receiver.wait_for(1).await;
    }
}
