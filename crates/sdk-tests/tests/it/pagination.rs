//! Paging with the SDK's `limit` and `iterator` options: forwards with `iterator` until
//! `done`, backwards by handing `prevIterator` back as `iterator` (the SDK has no
//! separate option for it), each item exactly once and in list order.

use std::future::Future;

use herald_testkit::{Backend, TestApp, backends};
use serde_json::json;
use svix::{
    api::{ApplicationListOptions, MessageListOptions},
    models::{ApplicationIn, MessageIn, Ordering},
};

const PAGE: u64 = 7;

/// One page as the tests need it: item ids, `iterator`, `prevIterator`, `done`.
struct Page {
    ids: Vec<String>,
    iterator: Option<String>,
    prev_iterator: Option<String>,
    done: bool,
}

/// Walks forwards from the first page until `done`, returning the ids in the order
/// seen and the last page's `prevIterator`.
async fn walk_forwards<F, Fut>(fetch: F) -> (Vec<String>, Option<String>)
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Page>,
{
    let (mut seen, mut iterator) = (Vec::new(), None);
    for _ in 0..100 {
        let page = fetch(iterator).await;
        assert!(page.ids.len() as u64 <= PAGE);
        seen.extend(page.ids);
        if page.done {
            return (seen, page.prev_iterator);
        }
        iterator = page.iterator;
    }
    panic!("the walk forwards never reached `done`");
}

/// Walks backwards from `start` until `done`, returning the ids in list order.
async fn walk_backwards<F, Fut>(fetch: F, start: Option<String>) -> Vec<String>
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Page>,
{
    let (mut seen, mut iterator) = (Vec::new(), start);
    for _ in 0..100 {
        let page = fetch(iterator).await;
        assert!(page.ids.len() as u64 <= PAGE);
        // Each page is in list order; earlier pages go in front.
        seen.splice(0..0, page.ids);
        if page.done {
            return seen;
        }
        iterator = page.prev_iterator;
    }
    panic!("the walk backwards never reached `done`");
}

#[backends]
async fn sixty_applications_page_forwards_and_back_each_exactly_once(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let mut created = Vec::new();
    for i in 0..60 {
        created.push(svix.application().create(ApplicationIn::new(format!("app {i}")), None).await.unwrap().id);
    }
    created.sort();
    let fetch = |iterator: Option<String>| {
        let svix = &svix;
        async move {
            let options = ApplicationListOptions { limit: Some(PAGE), iterator, ..Default::default() };
            let list = svix.application().list(Some(options)).await.unwrap();
            Page {
                ids: list.data.into_iter().map(|a| a.id).collect(),
                iterator: list.iterator,
                prev_iterator: list.prev_iterator,
                done: list.done,
            }
        }
    };

    let (forwards, last_prev) = walk_forwards(fetch).await;
    let backwards = walk_backwards(fetch, last_prev).await;

    assert_eq!(forwards, created, "ascending ids, each once");
    // 60 = 8 × 7 + 4: the last page holds 4, the walk back covers the other 56.
    assert_eq!(backwards, created[..56]);
}

#[backends]
async fn descending_order_pages_applications_newest_first(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let mut created = Vec::new();
    for i in 0..15 {
        created.push(svix.application().create(ApplicationIn::new(format!("app {i}")), None).await.unwrap().id);
    }
    created.sort_by(|a, b| b.cmp(a));
    let fetch = |iterator: Option<String>| {
        let svix = &svix;
        async move {
            let options = ApplicationListOptions {
                limit: Some(PAGE),
                iterator,
                order: Some(Ordering::Descending),
                ..Default::default()
            };
            let list = svix.application().list(Some(options)).await.unwrap();
            Page {
                ids: list.data.into_iter().map(|a| a.id).collect(),
                iterator: list.iterator,
                prev_iterator: list.prev_iterator,
                done: list.done,
            }
        }
    };

    let (forwards, _) = walk_forwards(fetch).await;

    assert_eq!(forwards, created);
}

#[backends]
async fn messages_page_newest_first_forwards_and_back(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let app_id = svix.application().create(ApplicationIn::new("paged".to_owned()), None).await.unwrap().id;
    let mut created = Vec::new();
    for i in 0..25 {
        let input = MessageIn::new("page.test".to_owned(), json!({ "i": i }));
        created.push(svix.message().create(app_id.clone(), input, None).await.unwrap().id);
    }
    created.sort_by(|a, b| b.cmp(a));
    let fetch = |iterator: Option<String>| {
        let (svix, app_id) = (&svix, app_id.clone());
        async move {
            let options = MessageListOptions { limit: Some(PAGE), iterator, ..Default::default() };
            let list = svix.message().list(app_id, Some(options)).await.unwrap();
            Page {
                ids: list.data.into_iter().map(|m| m.id).collect(),
                iterator: list.iterator,
                prev_iterator: list.prev_iterator,
                done: list.done,
            }
        }
    };

    let (forwards, last_prev) = walk_forwards(fetch).await;
    let backwards = walk_backwards(fetch, last_prev).await;

    assert_eq!(forwards, created, "descending ids, each once");
    // 25 = 3 × 7 + 4.
    assert_eq!(backwards, created[..21]);
}
