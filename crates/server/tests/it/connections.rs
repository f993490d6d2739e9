//! Hostile connections against the real server on loopback: slowloris heads, idle
//! keep-alive connections and stalled bodies are closed by their timeouts; stalled
//! uploads cannot take more than the body budget; an early answer leaves a keep-alive
//! connection usable; and the connection cap closes idle connections to admit new ones.

use std::time::Duration;

use herald_testkit::{Backend, TestApp, backends};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

/// Longest any step may take before the test fails (never a measured figure).
const DEADLINE: Duration = Duration::from_secs(20);
/// The short limits these tests configure.
const SHORT: Duration = Duration::from_millis(300);

async fn spawn_with(change: impl FnOnce(&mut herald_server::Config)) -> TestApp {
    TestApp::builder().config(change).spawn().await
}

/// Reads until the peer closes the connection; returns what arrived.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    timeout(DEADLINE, stream.read_to_end(&mut seen)).await.expect("the server closes the connection").ok();
    seen
}

/// Reads one HTTP/1.1 response with a `content-length`; returns its status and body.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = timeout(DEADLINE, stream.read(&mut chunk)).await.expect("a response in time").unwrap();
        assert!(n > 0, "closed before a response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().expect("a length"));
    while buf.len() < head_end + length {
        let n = timeout(DEADLINE, stream.read(&mut chunk)).await.expect("the body in time").unwrap();
        assert!(n > 0, "closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned())
}

#[tokio::test]
async fn a_slowloris_head_is_closed_by_the_header_read_timeout() {
    let app = spawn_with(|c| c.server.connections.header_read_timeout = SHORT).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // One header byte at a time, as a slowloris client sends them, until the server
    // hangs up (writes fail once it has).
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(50));
        while writer.write_all(b"x").await.is_ok() {
            every.tick().await;
        }
    });
    let mut seen = Vec::new();
    timeout(DEADLINE, reader.read_to_end(&mut seen)).await.expect("the server closes the connection").ok();
    assert!(seen.is_empty(), "no response to an unfinished head: {:?}", String::from_utf8_lossy(&seen));
    trickle.abort();
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_by_the_header_read_timeout() {
    let app = spawn_with(|c| c.server.connections.header_read_timeout = SHORT).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    assert!(read_to_close(&mut stream).await.is_empty());
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let app = spawn_with(|c| c.server.connections.keep_alive_timeout = SHORT).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 204);
    assert!(read_to_close(&mut stream).await.is_empty(), "closed, with nothing more sent");
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_by_the_body_timeout() {
    let app = spawn_with(|c| c.server.connections.body_timeout = SHORT).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/app HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\":",
        app.admin_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let seen = read_to_close(&mut stream).await;
    // Closed, perhaps after an error answer, but never a created application.
    assert!(!String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 2"), "{}", String::from_utf8_lossy(&seen));
}

#[tokio::test]
async fn an_early_404_drains_the_body_so_the_connection_carries_the_next_request() {
    let app = TestApp::builder().spawn().await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let body = vec![b'a'; 200 * 1024];
    let head = format!(
        "POST /ingest/not-a-source-token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The answer comes before the body is sent at all.
    let (status, answer) = read_response(&mut stream).await;
    assert_eq!(status, 404, "{answer}");
    stream.write_all(&body).await.unwrap();
    stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 204, "the same connection serves the next request");
}

#[backends]
async fn stalled_uploads_past_the_body_budget_get_503_with_retry_after_at_once(backend: Backend) {
    let max_body = 64 * 1024;
    let app = TestApp::builder()
        .backend(backend)
        .config(|c| {
            c.api.max_body_bytes = max_body;
            c.api.body_budget_bytes = 2 * max_body;
        })
        .spawn()
        .await;
    let stalled_head = format!(
        "POST /api/v1/app HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {max_body}\r\n\r\n",
        app.admin_token
    );
    // Two stalled uploads of the largest size take the whole budget.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(stalled_head.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    // Once both hold their share, the next body is refused before it is read.
    let refused = herald_testkit::poll_until(DEADLINE, || async {
        let response = app
            .http
            .post(app.url("/api/v1/app"))
            .bearer_auth(&app.admin_token)
            .json(&serde_json::json!({"name": "over budget"}))
            .send()
            .await
            .unwrap();
        (response.status() == 503).then_some(response)
    })
    .await;
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "service_unavailable", "{body}");
    // Requests without a body are not affected.
    let health = app.http.get(app.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), 204);

    // The budget comes back when the uploads go away.
    drop(stalled);
    herald_testkit::wait_until(DEADLINE, || async {
        let response = app
            .http
            .post(app.url("/api/v1/app"))
            .bearer_auth(&app.admin_token)
            .json(&serde_json::json!({"name": "within budget"}))
            .send()
            .await
            .unwrap();
        response.status() == 201
    })
    .await;
}

#[tokio::test]
async fn at_the_connection_cap_idle_connections_make_room_for_health() {
    let cap = 20;
    let app = spawn_with(|c| {
        c.server.connections.max_connections = Some(cap);
        // Long enough that only the cap's eviction can explain an answer.
        c.server.connections.header_read_timeout = Duration::from_secs(600);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..cap * 3 {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    let health = timeout(DEADLINE, app.http.get(app.url("/api/v1/health")).send()).await.expect("health answers");
    assert_eq!(health.unwrap().status(), 204);
    println!("hostile: {} idle connections held against a cap of {cap}; health answered", idle.len());
}

#[tokio::test]
async fn protocol_refusals_answer_in_the_error_shape() {
    let app = TestApp::builder().spawn().await;
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70 * 1024));
    let many_headers = format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", "X-Filler: 1\r\n".repeat(200));
    let cases: [(&[u8], u16, &str); 3] = [
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "bad_request"),
        (long_uri.as_bytes(), 414, "uri_too_long"),
        (many_headers.as_bytes(), 431, "request_header_fields_too_large"),
    ];
    for (request, status, code) in cases {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        // The server may refuse before it has read everything; a failed write is fine.
        let _ = stream.write_all(request).await;
        let (got, body) = read_response(&mut stream).await;
        assert_eq!(got, status, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(body["code"], code, "{body}");
    }
}
