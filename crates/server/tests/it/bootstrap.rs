//! First-start auth bootstrap against a real SQLite store from the test harness.

use std::sync::Arc;

use herald_api::auth::hash_token;
use herald_core::Clock;
use herald_server::{Bootstrap, bootstrap_admin_token, minted_token_notice};
use herald_testkit::Backend;
use secrecy::{ExposeSecret, SecretString};

fn clock() -> Clock {
    Arc::new(chrono::Utc::now)
}

#[tokio::test]
async fn a_fresh_store_gets_one_minted_token_stored_only_as_its_hash() {
    let database = Backend::Sqlite.open().await;
    let store = database.store.clone();

    let Bootstrap::Minted(token) = bootstrap_admin_token(&*store, None, &clock()).await.unwrap() else {
        panic!("a fresh store mints a token");
    };
    let record = store.find_token(&hash_token(token.expose_secret())).await.unwrap().expect("stored by hash");
    assert_eq!(record.app_id, None, "server-wide");
    assert_ne!(record.hash, token.expose_secret());

    // Second start: nothing new to show.
    assert!(matches!(bootstrap_admin_token(&*store, None, &clock()).await.unwrap(), Bootstrap::Existing));
    drop(store);

    // The plain token is nowhere in the database files.
    for entry in std::fs::read_dir(database.dir()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let needle = token.expose_secret().as_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "plain token found on disk");
    }
}

#[tokio::test]
async fn a_configured_token_is_stored_once_as_an_admin_token() {
    let database = Backend::Sqlite.open().await;
    let store = database.store.clone();
    let configured = SecretString::from("operator-chosen-token-0123456789");

    for _ in 0..2 {
        let outcome = bootstrap_admin_token(&*store, Some(&configured), &clock()).await.unwrap();
        assert!(matches!(outcome, Bootstrap::Configured), "{outcome:?}");
    }
    let record = store.find_token(&hash_token(configured.expose_secret())).await.unwrap().unwrap();
    assert_eq!(record.app_id, None);
    assert!(store.has_admin_token().await.unwrap());
    // With an admin token configured, none is generated.
    assert!(matches!(bootstrap_admin_token(&*store, None, &clock()).await.unwrap(), Bootstrap::Existing));
}

#[test]
fn the_notice_shows_the_token_and_how_to_use_it() {
    let notice = minted_token_notice(&SecretString::from("hld_abc"), "http://127.0.0.1:8071");
    assert!(notice.contains("export HERALD_TOKEN=hld_abc"), "{notice}");
    assert!(notice.contains("http://127.0.0.1:8071/api/v1/app"), "{notice}");
}
