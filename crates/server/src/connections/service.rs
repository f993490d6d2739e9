//! The pieces between hyper and the router that report to a connection's
//! [`Connection`] state: the socket wrapper (bytes arrived), the per-connection
//! service (a request started), the request body (waiting for bytes, progress) and
//! the response body (the request is over when it is sent or dropped).
//!
//! The socket wrapper also gives hyper's refusals of unparseable requests (400, 414,
//! 431) the API's error body.
//!
//! A request body a handler drops unread (an early 401, 404, 413 or 503) is drained
//! in the background, up to a bound, so the client's keep-alive connection can carry
//! its next request instead of being reset with the answer unread.

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower::ServiceExt;

use super::state::Connection;

/// The accepted socket, telling `conn` when bytes arrive, and giving hyper's own
/// refusals of unparseable requests the API's error body (see [`protocol_refusal`]).
pub(super) struct Watched<S> {
    stream: S,
    conn: Arc<Connection>,
    /// A refusal being written in place of hyper's empty one.
    refusal: Option<Replacement>,
}

impl<S> Watched<S> {
    pub(super) fn new(stream: S, conn: Arc<Connection>) -> Self {
        Self { stream, conn, refusal: None }
    }
}

/// Our response replacing bytes hyper asked to write.
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.conn.on_bytes();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> Watched<S> {
    /// Writes hyper's `first` bytes (of `total`), or our replacement when they are
    /// hyper's refusal of a request it could not parse.
    fn poll_refusal(&mut self, cx: &mut Context<'_>, first: &[u8], total: usize) -> Option<Poll<io::Result<usize>>> {
        // Only outside a request: the router's own responses are written while busy.
        if self.refusal.is_none() && self.conn.idle_since().is_some() {
            let bytes = protocol_refusal(first)?;
            self.refusal = Some(Replacement { bytes, written: 0 });
        }
        let refusal = self.refusal.as_mut()?;
        while refusal.written < refusal.bytes.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &refusal.bytes[refusal.written..]) {
                Poll::Ready(Ok(0)) => return Some(Poll::Ready(Ok(0))),
                Poll::Ready(Ok(n)) => refusal.written += n,
                other => return Some(other),
            }
        }
        // hyper closes the connection after a refusal: whatever it asks to write now
        // belongs to the replaced response, so it counts as written.
        Some(Poll::Ready(Ok(total)))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(poll) = self.poll_refusal(cx, buf, buf.len()) {
            return poll;
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        let total = bufs.iter().map(|b| b.len()).sum();
        if let Some(poll) = self.poll_refusal(cx, first, total) {
            return poll;
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// hyper answers a request it cannot parse itself, with an empty body: 400 (malformed),
/// 414 (URI too long) or 431 (head too large). When `head` is the start of such an
/// answer, this is the same status with the API's `{"code","detail"}` body.
fn protocol_refusal(head: &[u8]) -> Option<Vec<u8>> {
    let (status, code, detail) = match head.get(..13)? {
        b"HTTP/1.1 400 " => ("400 Bad Request", "bad_request", "The request is not valid HTTP/1.1."),
        b"HTTP/1.1 414 " => ("414 URI Too Long", "uri_too_long", "The request URI is too long."),
        b"HTTP/1.1 431 " => (
            "431 Request Header Fields Too Large",
            "request_header_fields_too_large",
            "The request head is too large or has too many header fields.",
        ),
        _ => return None,
    };
    let body = serde_json::json!({"code": code, "detail": detail}).to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    Some(response.into_bytes())
}

/// How much of an unread request body is drained, and how long each piece may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct DrainLimits {
    pub(super) max_bytes: usize,
    pub(super) per_frame: Duration,
}

/// The router as one connection's hyper service.
#[derive(Clone)]
pub(super) struct ConnService {
    pub(super) router: Router,
    pub(super) conn: Arc<Connection>,
    pub(super) remote: SocketAddr,
    pub(super) drain: DrainLimits,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        self.conn.on_request();
        // Made before the future, so a request abandoned mid-way (the client left)
        // still ends its phase when hyper drops the future.
        let done = RequestDone(self.conn.clone());
        let conn = self.conn.clone();
        // A client that waits for `100 Continue` sends no body after an early answer
        // (hyper sends none then), so there is nothing to drain: hyper closes instead.
        let expects_continue = request.headers().get(http::header::EXPECT).is_some();
        let drain = (!expects_continue).then_some(self.drain);
        let mut request = request.map(|body| Body::new(RequestBody { inner: Some(body), conn, drain }));
        // `ConnectInfo<SocketAddr>` works as with axum's own server.
        request.extensions_mut().insert(ConnectInfo(self.remote));
        let response = self.router.clone().oneshot(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| ResponseBody { inner, _done: done }))
        })
    }
}

/// Ends the request's phase when dropped: with the response body, once it is sent.
struct RequestDone(Arc<Connection>);

impl Drop for RequestDone {
    fn drop(&mut self) {
        self.0.on_response_done();
    }
}

/// A response body that ends its request's phase when sent or dropped.
pub(super) struct ResponseBody {
    inner: Body,
    _done: RequestDone,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that reports waits and progress, and drains itself when dropped
/// unread.
struct RequestBody {
    /// `None` once handed to the drain task.
    inner: Option<Incoming>,
    conn: Arc<Connection>,
    /// `None` when the body is not to be drained.
    drain: Option<DrainLimits>,
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Pending => {
                self.conn.on_body_wait();
                Poll::Pending
            }
            ready => {
                self.conn.on_body_progress();
                ready
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        self.conn.on_body_progress();
        let (Some(body), Some(limits)) = (self.inner.take(), self.drain) else { return };
        if http_body::Body::is_end_stream(&body) {
            return;
        }
        // Outside a runtime (never, under hyper) the body is simply dropped and hyper
        // closes the connection after the response.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(body, limits));
        }
    }
}

/// Reads and discards `body` until it ends, passes `max_bytes`, fails or stalls; in
/// the last three cases dropping it makes hyper close the connection.
async fn drain(mut body: Incoming, limits: DrainLimits) {
    let mut seen = 0usize;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(limits.per_frame, body.frame()).await {
        seen = seen.saturating_add(frame.data_ref().map_or(0, Bytes::len));
        if seen > limits.max_bytes {
            return;
        }
    }
}
