//! The live stream (SSE) read by a real client over loopback: reqwest's streaming body
//! and a small parser of the wire format. Events carry message ids, reconnecting with
//! `Last-Event-ID` loses and repeats nothing, idle streams get heartbeats, filters and
//! auth apply, a reader that stops reading is cut off, and shutdown ends streams.

use std::time::Duration;

use herald_api::{ApiConfig, StreamConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use herald_testkit::{Backend, DEADLINE, TestClock, backends};

use crate::harness::{TestApp, assert_error, assert_invalid, spawn, spawn_with, spawn_with_clock};

/// One SSE frame: an event, or a comment line (heartbeats).
#[derive(Debug)]
enum Frame {
    Event { id: Option<String>, data: String },
    Comment,
}

/// A live stream being read, with the bytes received but not yet parsed.
struct Stream {
    response: reqwest::Response,
    buffer: String,
    /// How far `buffer` is known to hold no frame end, so a big event is scanned once.
    scanned: usize,
}

impl Stream {
    async fn open(app: &TestApp, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app.client.get(format!("{}/api/v1/app/{query}", app.base)).bearer_auth(&app.token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("stream request");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, buffer: String::new(), scanned: 0 }
    }

    /// Reads until the first bytes of an event have arrived (heartbeats may come first).
    async fn event_started(&mut self) {
        while !self.buffer.contains("data:") {
            self.read().await.expect("the stream ended before an event");
        }
    }

    /// Appends the next chunk of the body; `None` once the server ended the stream.
    async fn read(&mut self) -> Option<()> {
        let chunk = tokio::time::timeout(DEADLINE, self.response.chunk()).await.expect("the stream stalled");
        let bytes = chunk.expect("stream body")?;
        self.buffer.push_str(std::str::from_utf8(&bytes).expect("UTF-8"));
        Some(())
    }

    /// The next frame, or `None` once the server ended the stream.
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer[self.scanned..].find("\n\n").map(|at| at + self.scanned) {
                self.scanned = 0;
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut data, mut comment) = (None, Vec::new(), false);
                for line in block.lines().filter(|l| !l.is_empty()) {
                    match line.split_once(':') {
                        Some(("", _)) => comment = true,
                        Some(("id", value)) => id = Some(value.trim_start().to_owned()),
                        Some(("data", value)) => data.push(value.strip_prefix(' ').unwrap_or(value).to_owned()),
                        _ => {}
                    }
                }
                return Some(if data.is_empty() && comment {
                    Frame::Comment
                } else {
                    Frame::Event { id, data: data.join("\n") }
                });
            }
            // A frame end may straddle two chunks: rescan the last byte.
            self.scanned = self.buffer.len().saturating_sub(1);
            while !self.buffer.is_char_boundary(self.scanned) {
                self.scanned -= 1;
            }
            self.read().await?;
        }
    }

    /// The next event's id and `MessageOut`, skipping heartbeats.
    async fn event(&mut self) -> (String, Value) {
        loop {
            match self.frame().await.expect("the stream ended") {
                Frame::Event { id, data } => {
                    let message: Value = serde_json::from_str(&data).expect("data is a MessageOut");
                    let id = id.expect("every event has an id");
                    assert_eq!(message["id"], id.as_str());
                    return (id, message);
                }
                Frame::Comment => {}
            }
        }
    }
}

async fn send(app: &TestApp, app_id: &str, event_type: &str, payload: Value) -> String {
    let body = json!({"eventType": event_type, "payload": payload});
    let (status, out) = app.post(&format!("/api/v1/app/{app_id}/msg"), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    out["id"].as_str().unwrap().to_owned()
}

#[backends]
async fn events_arrive_live_and_a_reconnect_resumes_after_the_last_event_id(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(Some("live")).await;
    send(&app, &app_id, "old", json!({})).await;
    let mut stream = Stream::open(&app, "live/events/stream", None).await;
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(send(&app, &app_id, "a.one", json!({"i": i, "text": "line\nbreak"})).await);
    }
    for (i, id) in sent.iter().enumerate() {
        let (got, message) = stream.event().await;
        assert_eq!(&got, id, "messages from before the connection are not replayed");
        assert_eq!(message["payload"], json!({"i": i, "text": "line\nbreak"}));
        assert_eq!(message["eventType"], "a.one");
    }
    drop(stream);

    let missed = [send(&app, &app_id, "a.one", json!({})).await, send(&app, &app_id, "b.two", json!({})).await];
    let mut resumed = Stream::open(&app, "live/events/stream", Some(&sent[2])).await;
    assert_eq!(resumed.event().await.0, missed[0]);
    assert_eq!(resumed.event().await.0, missed[1]);
    // Nothing else is pending: the next event is one created after this point.
    let marker = send(&app, &app_id, "marker", json!({})).await;
    assert_eq!(resumed.event().await.0, marker);
}

#[backends]
async fn a_stream_started_from_an_events_iterator_misses_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let seen = send(&app, &app_id, "seen", json!({})).await;
    let (status, page) = app.get(&format!("/api/v1/app/{app_id}/events")).await;
    assert_eq!(status, StatusCode::OK);
    let after_page = send(&app, &app_id, "between", json!({})).await;
    let iterator = page["iterator"].as_str().unwrap();
    let mut stream = Stream::open(&app, &format!("{app_id}/events/stream?iterator={iterator}"), None).await;
    // On PostgreSQL a page holds back committed rows while any older transaction is open
    // anywhere in the database (other tests' included); the stream then starts with them.
    // Either way every event is seen exactly once, in order.
    let listed: Vec<&str> = page["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut next = stream.event().await.0;
    if listed.is_empty() {
        assert_eq!(next, seen, "an event held back by the page comes first on the stream");
        next = stream.event().await.0;
    } else {
        assert_eq!(listed, [seen.as_str()]);
    }
    assert_eq!(next, after_page);
}

#[backends]
async fn streams_apply_filters_and_auth(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(Some("guarded")).await;
    let mut stream = Stream::open(&app, "guarded/events/stream?event_types=a.one,b.two", None).await;
    send(&app, &app_id, "c.three", json!({})).await;
    let wanted = send(&app, &app_id, "b.two", json!({})).await;
    assert_eq!(stream.event().await.0, wanted, "other event types are not streamed");

    let url = format!("{}/api/v1/app/guarded/events/stream", app.base);
    let (status, body) = app.send(app.client.get(&url)).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "authentication_failed");
    let other = app.app(None).await;
    let scoped = app.scoped_token(&other).await;
    let (status, body) = app.send(app.client.get(&url).bearer_auth(&scoped)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_access");
    let own = app.scoped_token(&app_id).await;
    let response = app.client.get(&url).bearer_auth(&own).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a token scoped to the application may stream it");
    drop(response);

    for bad in ["garbage", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"] {
        let (status, body) = app
            .send(app.request(reqwest::Method::GET, "/api/v1/app/guarded/events/stream").header("last-event-id", bad))
            .await;
        assert_invalid(status, &body, &["header", "Last-Event-ID"]);
    }
    let (status, body) = app.get("/api/v1/app/guarded/events/stream?iterator=nope").await;
    assert_invalid(status, &body, &["query", "iterator"]);
    let (status, body) = app.get("/api/v1/app/guarded/events/stream?event_types=no%20spaces").await;
    assert_invalid(status, &body, &["query", "event_types"]);
}

#[backends]
async fn idle_streams_get_heartbeats(backend: Backend) {
    let stream_config = StreamConfig { heartbeat: Duration::from_millis(50), ..StreamConfig::default() };
    let app = spawn_with(backend, ApiConfig { stream: stream_config, ..ApiConfig::default() }).await;
    let app_id = app.app(None).await;
    let mut stream = Stream::open(&app, &format!("{app_id}/events/stream"), None).await;
    assert!(matches!(stream.frame().await, Some(Frame::Comment)), "an idle stream sends a comment");
    let id = send(&app, &app_id, "t", json!({})).await;
    assert_eq!(stream.event().await.0, id, "and still streams events");
}

#[backends]
async fn a_reader_that_stops_reading_is_disconnected_and_resumes_without_loss(backend: Backend) {
    // One event bigger than every buffer between the server and this reader together:
    // the server's socket send buffer (4 MiB at most by default), the reader's receive
    // buffer (which grows only as fast as the reader reads, and it reads a few chunks)
    // and hyper's (a few hundred KiB). The server finishes writing it, and only then
    // asks for the next event, once the reader reads again. The slow-reader limit is
    // measured on the API's clock, so the pause is the clock moved past the limit,
    // whatever the machine's speed. (Much bigger payloads outlast PostgreSQL's 5 s
    // statement timeout on a loaded machine.)
    const BIG: usize = 16 * 1024 * 1024;
    let limit = StreamConfig::default().slow_reader_timeout;
    let clock = TestClock::running();
    let config = ApiConfig { max_body_bytes: BIG + 1024 * 1024, ..ApiConfig::default() };
    let app = spawn_with_clock(backend, config, clock.clock()).await;
    let app_id = app.app(None).await;
    let mut stream = Stream::open(&app, &format!("{app_id}/events/stream"), None).await;
    let big = send(&app, &app_id, "big", json!({"padding": "x".repeat(BIG)})).await;
    let after = send(&app, &app_id, "small", json!({})).await;

    // The server has handed the big event over; the reader pauses past the limit.
    stream.event_started().await;
    clock.advance(limit * 2);
    let mut received = Vec::new();
    while let Some(frame) = stream.frame().await {
        if let Frame::Event { id, .. } = frame {
            received.push(id.expect("every event has an id"));
        }
    }
    assert_eq!(received, std::slice::from_ref(&big), "the stream ends after the event the reader paused on");

    let mut resumed = Stream::open(&app, &format!("{app_id}/events/stream"), Some(&big)).await;
    assert_eq!(resumed.event().await.0, after, "the resumed stream starts right after the last event read");
    // Nothing else is pending: the next event is one created after this point.
    let marker = send(&app, &app_id, "marker", json!({})).await;
    assert_eq!(resumed.event().await.0, marker);
}

#[backends]
async fn shutting_down_ends_live_streams(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let mut stream = Stream::open(&app, &format!("{app_id}/events/stream"), None).await;
    app.shutdown.cancel();
    loop {
        match stream.frame().await {
            None => break,
            Some(Frame::Comment) => {}
            Some(frame @ Frame::Event { .. }) => panic!("no message was sent, got {frame:?}"),
        }
    }
}
