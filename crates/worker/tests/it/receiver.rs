//! A real recording webhook receiver on `127.0.0.1:0`: it records every request and
//! answers as the test scripts it (any status, extra headers such as `Retry-After` or
//! `Location`, or holding the answer back until released, for at most 10 s).

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How long a held reply waits for [`Receiver::release`] at most: "an endpoint that
/// hangs for 10 s".
const HOLD_LIMIT: Duration = Duration::from_secs(10);

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no `{name}` header"))
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    hold: bool,
}

impl Reply {
    pub fn ok() -> Self {
        Self::status(200)
    }

    pub fn status(status: u16) -> Self {
        Self { status, headers: Vec::new(), hold: false }
    }

    /// `status` with `Retry-After: value`.
    pub fn retry_after(status: u16, value: &str) -> Self {
        Self::status(status).header("retry-after", value)
    }

    /// A `302 Found` pointing at `location`.
    pub fn redirect(location: &str) -> Self {
        Self::status(302).header("location", location)
    }

    /// Answers only after [`Receiver::release`] (or 10 s).
    pub fn held(self) -> Self {
        Self { hold: true, ..self }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

struct Inner {
    requests: Mutex<Vec<Received>>,
    arrived: watch::Sender<usize>,
    answered: AtomicUsize,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    released: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The receiver; it stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    _stop: DropGuard,
}

impl Receiver {
    /// Starts a receiver that answers 200 to everything.
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
        let app = Router::new().fallback(record).with_state(inner.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            // An error here only means the test is over.
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped).await;
        });
        Self { addr, inner, _stop: stop.drop_guard() }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The answer once scripted replies run out.
    pub fn respond_with(&self, reply: Reply) {
        *lock(&self.inner.default) = reply;
    }

    /// One-shot answers for the next requests, in order.
    pub fn respond_in_order(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.inner.script).extend(replies);
    }

    /// Lets every held reply (now and later) go out.
    pub fn release(&self) {
        self.inner.released.send_replace(true);
    }

    /// Everything received so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        lock(&self.inner.requests).clone()
    }

    /// Requests that have arrived.
    pub fn received(&self) -> usize {
        *self.inner.arrived.borrow()
    }

    /// Requests that have been answered.
    pub fn answered(&self) -> usize {
        self.inner.answered.load(Ordering::SeqCst)
    }

    /// Waits (10 s at most) until `n` requests have arrived, then returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let mut arrived = self.inner.arrived.subscribe();
        let reached = tokio::time::timeout(Duration::from_secs(10), arrived.wait_for(|c| *c >= n)).await;
        assert!(reached.is_ok(), "expected {n} requests within 10 s, got {}", self.received());
        self.requests()
    }
}

async fn record(State(inner): State<Arc<Inner>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let reply = lock(&inner.script).pop_front().unwrap_or_else(|| lock(&inner.default).clone());
    lock(&inner.requests).push(Received { path: uri.path().to_owned(), headers, body });
    inner.arrived.send_modify(|c| *c += 1);
    if reply.hold {
        let mut released = inner.released.subscribe();
        let _ = tokio::time::timeout(HOLD_LIMIT, released.wait_for(|r| *r)).await;
    }
    let mut response = StatusCode::from_u16(reply.status).expect("a valid test status").into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(HeaderName::from_static(name), HeaderValue::from_str(&value).expect("header"));
    }
    inner.answered.fetch_add(1, Ordering::SeqCst);
    response
}
