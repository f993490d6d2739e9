//! The attempt log and manual control through the SDK: list attempts by endpoint and
//! by message, endpoint stats, resend, recover and replay-missing, against a real
//! receiver. Each manual send goes through Herald's queue; the test ends drained.

use herald_testkit::{DEADLINE, Receiver, Reply, TestApp, wait_until};
use svix::{
    api::{EndpointGetStatsOptions, MessageAttemptListByEndpointOptions, Svix},
    models::{ApplicationIn, EndpointIn, MessageAttemptTriggerType, MessageIn, MessageStatus, RecoverIn, ReplayIn},
};

/// Waits until the endpoint's deliveries are `success` and `fail` in these numbers and
/// none is pending or being sent.
async fn settled(svix: &Svix, app: &str, endpoint: &str, success: i64, fail: i64) {
    wait_until(DEADLINE, || async {
        let s = svix.endpoint().get_stats(app.to_owned(), endpoint.to_owned(), None).await.unwrap();
        (s.success, s.fail, s.pending, s.sending) == (success, fail, 0, 0)
    })
    .await;
}

async fn send(svix: &Svix, app: &str, n: u64) -> String {
    let input = MessageIn::new("a.b".to_owned(), serde_json::json!({"n": n}));
    svix.message().create(app.to_owned(), input, None).await.unwrap().id
}

#[tokio::test]
async fn attempts_resend_recover_and_replay_through_the_sdk() {
    let app = TestApp::builder()
        .allow_loopback()
        .config(|c| c.worker.retry_schedule = "0s".parse().expect("schedule"))
        .spawn()
        .await;
    let svix = app.svix_client();
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::status(500));
    let app_out = svix.application().create(ApplicationIn::new("sdk-attempts".to_owned()), None).await.unwrap();
    let app_id = app_out.id.clone();
    let ep = svix.endpoint().create(app_id.clone(), EndpointIn::new(receiver.url("/a")), None).await.unwrap().id;
    let first = send(&svix, &app_id, 1).await;
    let second = send(&svix, &app_id, 2).await;
    settled(&svix, &app_id, &ep, 0, 2).await;

    let failed = MessageAttemptListByEndpointOptions { status: Some(MessageStatus::Fail), ..Default::default() };
    let list = svix.message_attempt().list_by_endpoint(app_id.clone(), ep.clone(), Some(failed)).await.unwrap();
    assert_eq!(list.data.len(), 2);
    assert!(list.data.iter().all(|a| a.response_status_code == 500 && a.endpoint_id == ep));
    let stats_options = EndpointGetStatsOptions { since: Some(app_out.created_at), until: None };
    let stats = svix.endpoint().get_stats(app_id.clone(), ep.clone(), Some(stats_options)).await.unwrap();
    assert_eq!((stats.fail, stats.success), (2, 0));

    receiver.respond_with(Reply::ok());
    svix.message_attempt().resend(app_id.clone(), first.clone(), ep.clone(), None).await.unwrap();
    assert_eq!(receiver.wait_for(3).await[2].header("webhook-id"), Some(first.as_str()));
    settled(&svix, &app_id, &ep, 1, 1).await;
    let by_msg = svix.message_attempt().list_by_msg(app_id.clone(), first.clone(), None).await.unwrap();
    assert_eq!(by_msg.data.len(), 2);
    assert_eq!(by_msg.data[0].trigger_type, MessageAttemptTriggerType::Manual);
    assert_eq!(by_msg.data[0].status, MessageStatus::Success);

    let recover_in = RecoverIn::new(app_out.created_at);
    let recovered = svix.endpoint().recover(app_id.clone(), ep.clone(), recover_in, None).await.unwrap();
    assert!(recovered.id.starts_with("qtask_"));
    assert_eq!(receiver.wait_for(4).await[3].header("webhook-id"), Some(second.as_str()));
    settled(&svix, &app_id, &ep, 2, 0).await;

    let late_receiver = Receiver::start().await;
    let late = svix.endpoint().create(app_id.clone(), EndpointIn::new(late_receiver.url("/b")), None).await.unwrap().id;
    svix.endpoint()
        .replay_missing(app_id.clone(), late.clone(), ReplayIn::new(app_out.created_at), None)
        .await
        .unwrap();
    settled(&svix, &app_id, &late, 2, 0).await;
    let mut got: Vec<_> = late_receiver.requests().iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    got.sort();
    let mut want = vec![first, second];
    want.sort();
    assert_eq!(got, want);
}
