//! The live page end to end in headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs): it loads the latest messages by API, then shows a message created while
//! it is open, rendered as text. Chromium is driven over the DevTools protocol on a
//! loopback websocket. A missing Chromium fails the test; it is never skipped.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use herald_testkit::{Backend, DEADLINE, backends, poll_until};

use crate::harness::spawn;

/// A headless Chromium in a fresh profile, killed when dropped.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    port: u16,
    browser_path: String,
}

impl Browser {
    async fn launch() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                // Without these Chromium tries to reach the network, which is closed here.
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Chromium must be installed (`apt-get install chromium`; .ci/run does it)");
        let (port, browser_path) = wait_for_port(&profile.path().join("DevToolsActivePort")).await;
        Self { child, _profile: profile, port, browser_path }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The DevTools port and browser path Chromium writes once it listens.
async fn wait_for_port(file: &Path) -> (u16, String) {
    poll_until(DEADLINE, || async {
        let text = std::fs::read_to_string(file).ok()?;
        let (port, path) = text.split_once('\n')?;
        let port = port.trim().parse().ok()?;
        path.trim().starts_with("/devtools/browser/").then(|| (port, path.trim().to_owned()))
    })
    .await
}

/// A DevTools connection with one page attached (flattened session).
struct DevTools {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
}

impl DevTools {
    async fn connect(browser: &Browser) -> Self {
        let url = format!("ws://127.0.0.1:{}{}", browser.port, browser.browser_path);
        let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("DevTools websocket");
        Self { socket, next_id: 0, session: None }
    }

    /// Sends a command (to the attached page, once there is one) and returns its result.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            command["sessionId"] = json!(session);
        }
        self.socket.send(Message::text(command.to_string())).await.expect("send to DevTools");
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.socket.next()).await.expect("DevTools answers");
            let Message::Text(text) = frame.expect("DevTools open").expect("DevTools frame") else { continue };
            let reply: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
        }
    }

    async fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({"url": "about:blank"})).await;
        let attached =
            self.call("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true})).await;
        self.session = Some(attached["sessionId"].as_str().expect("a session").to_owned());
        self.call("Page.navigate", json!({"url": url})).await;
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true})).await;
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is `true`.
    async fn wait_until(&mut self, expression: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while self.eval(expression).await != json!(true) {
            let status =
                self.eval("document.getElementById('status') && document.getElementById('status').textContent").await;
            assert!(tokio::time::Instant::now() < deadline, "never true: {expression} (page status {status})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[backends]
async fn the_live_page_shows_history_then_new_messages_as_text(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(Some("watched")).await;
    let send = |marker: &'static str| {
        let (app, path) = (app.clone(), format!("/api/v1/app/{app_id}/msg"));
        async move {
            let payload = json!({"note": format!("<img src=x onerror=alert(1)> {marker}")});
            let (status, out) = app.post(&path, json!({"eventType": "page.test", "payload": payload})).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{out}");
        }
    };
    send("from-history").await;

    let page = reqwest::get(format!("{}/app/watched/live", app.base)).await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");

    let browser = Browser::launch().await;
    let mut tools = DevTools::connect(&browser).await;
    tools.open(&format!("{}/app/watched/live#token={}", app.base, app.token)).await;
    tools.wait_until("document.getElementById('status').textContent === 'live'").await;
    tools.wait_until("document.body.innerText.includes('from-history')").await;
    assert_eq!(tools.eval("location.hash").await, json!(""), "the token leaves the address bar");

    send("appeared-live").await;
    tools.wait_until("document.querySelector('#events li pre').textContent.includes('appeared-live')").await;
    assert_eq!(tools.eval("document.querySelectorAll('#events img').length").await, json!(0), "payloads are text");
    assert_eq!(tools.eval("document.querySelectorAll('#events li').length").await, json!(2));
}
