//! The attempt log and manual control end to end: real receivers on loopback, the
//! dispatcher `run` starts, and the API reading back what it recorded. Every manual
//! send goes through the queue, so each test waits for the receiver and ends with
//! the queue drained.

use herald_testkit::{DEADLINE, Receiver, Reply, TestApp, wait_until};
use serde_json::{Value, json};

/// A server whose deliveries get one attempt each (no retries), so a 500 fails the
/// delivery at once, with event types `a.one` and `a.two`.
struct Setup {
    app: TestApp,
    app_id: String,
}

impl Setup {
    async fn start() -> Self {
        let app = TestApp::builder()
            .allow_loopback()
            .config(|c| c.worker.retry_schedule = "0s".parse().expect("schedule"))
            .spawn()
            .await;
        let mut setup = Self { app, app_id: String::new() };
        setup.app_id = setup.call("POST", "/api/v1/app", Some(json!({"name": "shop"})), 201).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for name in ["a.one", "a.two"] {
            setup.call("POST", "/api/v1/event-type", Some(json!({"name": name, "description": name})), 201).await;
        }
        setup
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.app.http.request(method, self.app.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{path}: {text}");
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
    }

    async fn get(&self, path: &str) -> Value {
        self.call("GET", path, None, 200).await
    }

    fn at(&self, rest: &str) -> String {
        format!("/api/v1/app/{}{rest}", self.app_id)
    }

    async fn endpoint(&self, receiver: &Receiver, types: Option<&[&str]>) -> String {
        let body = json!({"url": receiver.url("/hook"), "eventTypes": types});
        self.call("POST", &self.at("/endpoint"), Some(body), 201).await["id"].as_str().unwrap().to_owned()
    }

    async fn message(&self, event_type: &str, n: u64) -> String {
        let body = json!({"eventType": event_type, "payload": {"n": n}});
        self.call("POST", &self.at("/msg"), Some(body), 202).await["id"].as_str().unwrap().to_owned()
    }

    async fn stats(&self, endpoint: &str) -> Value {
        self.get(&self.at(&format!("/endpoint/{endpoint}/stats"))).await
    }

    /// Waits until the endpoint's deliveries are `success` and `fail` in these numbers
    /// and none is pending or being sent: the queue is drained for it.
    async fn settled(&self, endpoint: &str, success: i64, fail: i64) {
        wait_until(DEADLINE, || async {
            let s = self.stats(endpoint).await;
            (s["success"].as_i64(), s["fail"].as_i64(), s["pending"].as_i64(), s["sending"].as_i64())
                == (Some(success), Some(fail), Some(0), Some(0))
        })
        .await;
    }

    async fn attempts_of(&self, msg: &str) -> Vec<Value> {
        self.get(&self.at(&format!("/attempt/msg/{msg}"))).await["data"].as_array().unwrap().clone()
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn attempt_log_shows_failures_and_successes_with_filters_and_pages() {
    let s = Setup::start().await;
    let receiver = Receiver::start().await;
    receiver.respond_in_order([Reply::status(500), Reply::status(500)]);
    let ep = s.endpoint(&receiver, None).await;
    let first = s.message("a.one", 1).await;
    s.settled(&ep, 0, 1).await;
    let second = s.message("a.one", 2).await;
    s.settled(&ep, 0, 2).await;
    let third = s.message("a.two", 3).await;
    s.settled(&ep, 1, 2).await;

    let all = s.get(&s.at(&format!("/attempt/endpoint/{ep}"))).await;
    let data = all["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["msgId"], third.as_str(), "newest first");
    assert_eq!((data[0]["status"].as_i64(), data[0]["statusText"].as_str()), (Some(0), Some("success")));
    for failed in &data[1..] {
        assert_eq!((failed["status"].as_i64(), failed["statusText"].as_str()), (Some(2), Some("fail")));
        assert_eq!(failed["responseStatusCode"], 500);
    }
    assert!(
        data.iter()
            .all(|a| a["triggerType"] == 0 && a["url"] == receiver.url("/hook") && a["endpointId"] == ep.as_str())
    );
    assert!(data.iter().all(|a| a["responseDurationMs"].as_i64().is_some_and(|d| d >= 0)));

    let path = |q: &str| s.at(&format!("/attempt/endpoint/{ep}?{q}"));
    assert_eq!(ids(&s.get(&path("status=2")).await).len(), 2);
    assert_eq!(ids(&s.get(&path("status_code_class=200")).await).len(), 1);
    assert_eq!(ids(&s.get(&path("event_types=a.two")).await).len(), 1);
    let with_msg = s.get(&path("event_types=a.two&with_msg=true")).await;
    assert_eq!(with_msg["data"][0]["msg"]["id"], third.as_str());
    assert_eq!(with_msg["data"][0]["msg"]["payload"], json!({}), "payloads never come with an attempt");
    s.call("GET", &path("status=9"), None, 422).await;

    // Pages of one walk all three attempts, newest first, without repeats.
    let mut walked = Vec::new();
    let mut page = s.get(&path("limit=1")).await;
    loop {
        walked.extend(ids(&page));
        if page["done"] == true {
            break;
        }
        page = s.get(&path(&format!("limit=1&iterator={}", page["iterator"].as_str().unwrap()))).await;
    }
    assert_eq!(walked, ids(&all));

    let by_msg = s.attempts_of(&first).await;
    assert_eq!(by_msg.len(), 1);
    let attempt_id = by_msg[0]["id"].as_str().unwrap();
    let one = s.get(&s.at(&format!("/msg/{first}/attempt/{attempt_id}"))).await;
    assert_eq!(one, by_msg[0]);
    s.call("GET", &s.at(&format!("/msg/{second}/attempt/{attempt_id}")), None, 404).await;

    let sent = s.get(&s.at(&format!("/endpoint/{ep}/msg"))).await;
    assert_eq!(ids(&sent), [third.clone(), second.clone(), first.clone()]);
    assert_eq!(sent["data"][0]["statusText"], "success");
    assert_eq!(sent["data"][0]["payload"], json!({"n": 3}));
    assert_eq!(ids(&s.get(&s.at(&format!("/endpoint/{ep}/msg?status=2"))).await), [second.clone(), first.clone()]);
    let destinations = s.get(&s.at(&format!("/msg/{first}/endpoint"))).await;
    assert_eq!(ids(&destinations), [ep.as_str()]);
    assert_eq!(
        (destinations["data"][0]["status"].as_i64(), destinations["data"][0]["url"].as_str()),
        (Some(2), Some(receiver.url("/hook").as_str()))
    );
}

#[tokio::test]
async fn expunged_content_is_gone_from_reads_and_from_the_next_delivery() {
    let s = Setup::start().await;
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::status(500));
    let ep = s.endpoint(&receiver, None).await;
    let msg = s.message("a.one", 1).await;
    s.settled(&ep, 0, 1).await;

    s.call("DELETE", &s.at(&format!("/msg/{msg}/content")), None, 204).await;
    assert_eq!(s.get(&s.at(&format!("/msg/{msg}"))).await["payload"], json!({}));
    s.call("POST", &s.at(&format!("/msg/{msg}/endpoint/{ep}/resend")), Some(json!({})), 202).await;
    s.settled(&ep, 0, 1).await;
    let attempts = s.attempts_of(&msg).await;
    assert_eq!(attempts.len(), 2, "the resend was attempted");
    assert_eq!((attempts[0]["status"].as_i64(), attempts[0]["responseStatusCode"].as_i64()), (Some(2), Some(0)));
    assert_eq!(attempts[0]["triggerType"], 1);
    assert_eq!(receiver.requests().len(), 1, "nothing was sent without a payload");

    let attempt_id = attempts[1]["id"].as_str().unwrap();
    s.call("DELETE", &s.at(&format!("/msg/{msg}/attempt/{attempt_id}/content")), None, 204).await;
    assert_eq!(s.get(&s.at(&format!("/msg/{msg}/attempt/{attempt_id}"))).await["response"], "EXPUNGED");
    s.call("DELETE", &s.at(&format!("/msg/{msg}/content")), None, 204).await;
    s.call("DELETE", &s.at("/msg/msg_2Xq0000000000000000000000000/content"), None, 404).await;
}

#[tokio::test]
async fn resend_recover_and_replay_go_through_the_queue() {
    let s = Setup::start().await;
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::status(500));
    let ep = s.endpoint(&receiver, None).await;
    let since = s.get(&s.at("")).await["createdAt"].as_str().unwrap().to_owned();
    let one = s.message("a.one", 1).await;
    let two = s.message("a.two", 2).await;
    let three = s.message("a.one", 3).await;
    s.settled(&ep, 0, 3).await;

    // Resend: the receiver (healthy now) gets the same webhook-id again.
    receiver.respond_with(Reply::ok());
    s.call("POST", &s.at(&format!("/msg/{one}/endpoint/{ep}/resend")), Some(json!({})), 202).await;
    let got = receiver.wait_for(4).await;
    assert_eq!(got[3].header("webhook-id"), Some(one.as_str()));
    s.settled(&ep, 1, 2).await;
    let attempts = s.attempts_of(&one).await;
    assert_eq!((attempts[0]["triggerType"].as_i64(), attempts[0]["status"].as_i64()), (Some(1), Some(0)));
    assert_eq!(attempts[1]["triggerType"], 0);

    // Recover: the two still failed since `since` are sent again.
    let task = s.call("POST", &s.at(&format!("/endpoint/{ep}/recover")), Some(json!({"since": since})), 202).await;
    assert_eq!((task["task"].as_str(), task["status"].as_str()), (Some("endpoint.recover"), Some("finished")));
    assert!(task["id"].as_str().unwrap().starts_with("qtask_"));
    s.settled(&ep, 3, 0).await;
    let recovered: Vec<_> =
        receiver.wait_for(6).await[4..].iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    assert!(recovered.contains(&two) && recovered.contains(&three), "{recovered:?}");
    s.call("POST", &s.at(&format!("/endpoint/{ep}/recover")), Some(json!({"since": since, "until": since})), 422).await;

    // Replay missing: an endpoint created later, for `a.one` only, gets the older
    // `a.one` messages it never got, and nothing else.
    let late_receiver = Receiver::start().await;
    let late = s.endpoint(&late_receiver, Some(&["a.one"])).await;
    let task =
        s.call("POST", &s.at(&format!("/endpoint/{late}/replay-missing")), Some(json!({"since": since})), 202).await;
    assert_eq!(task["task"], "endpoint.replay");
    s.settled(&late, 2, 0).await;
    let mut replayed: Vec<_> =
        late_receiver.requests().iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    replayed.sort();
    let mut want = vec![one.clone(), three.clone()];
    want.sort();
    assert_eq!(replayed, want);
    let again =
        s.call("POST", &s.at(&format!("/endpoint/{late}/replay-missing")), Some(json!({"since": since})), 202).await;
    assert_eq!(again["status"], "finished");

    // Bulk replay by filter: only `a.two` to the first endpoint.
    let body = json!({"since": since, "eventTypes": ["a.two"]});
    let task = s.call("POST", &s.at(&format!("/endpoint/{ep}/bulk-replay")), Some(body), 202).await;
    assert_eq!(task["task"], "endpoint.bulk-replay");
    let last = receiver.wait_for(7).await;
    assert_eq!(last[6].header("webhook-id"), Some(two.as_str()));
    s.settled(&ep, 3, 0).await;
    s.settled(&late, 2, 0).await;
    assert_eq!(late_receiver.requests().len(), 2);
}
