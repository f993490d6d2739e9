//! Conformance cases for applications, event types and endpoints: round trips,
//! uniqueness, scoping, list filters and paging. Run by [`crate::conformance_tests!`].

use chrono::Utc;
use herald_core::{
    AppId,
    model::{Application, Endpoint, EventType},
};

use super::{app, endpoint, rng};
use crate::{AppFilter, Cursor, Direction, DynStore, Order, PageQuery, StoreError};

pub async fn applications_round_trip(store: DynStore) {
    let a = store.create_application(app("one", Some("one-uid"))).await.unwrap();
    assert_eq!(store.get_application(a.id.as_str()).await.unwrap(), a);
    assert_eq!(store.get_application("one-uid").await.unwrap(), a);
    let mut changed = a.clone();
    changed.name = "renamed".into();
    changed.uid = None;
    store.update_application(changed.clone()).await.unwrap();
    assert_eq!(store.get_application(a.id.as_str()).await.unwrap().name, "renamed");
    assert!(matches!(store.get_application("one-uid").await, Err(StoreError::NotFound(_))));
    store.delete_application(&a.id).await.unwrap();
    assert!(matches!(store.get_application(a.id.as_str()).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_application(&a.id).await, Err(StoreError::NotFound(_))));
}

pub async fn application_uid_is_unique(store: DynStore) {
    store.create_application(app("a", Some("same"))).await.unwrap();
    assert!(matches!(store.create_application(app("b", Some("same"))).await, Err(StoreError::Conflict(_))));
    let other = store.create_application(app("c", Some("other"))).await.unwrap();
    let mut clash = other.clone();
    clash.uid = Some("same".into());
    assert!(matches!(store.update_application(clash).await, Err(StoreError::Conflict(_))));
}

pub async fn pages_walk_both_ways(store: DynStore) {
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(store.create_application(app(&format!("app{i}"), None)).await.unwrap().id);
    }
    ids.sort();
    for order in [Order::Ascending, Order::Descending] {
        let mut expected = ids.clone();
        if order == Order::Descending {
            expected.reverse();
        }
        let mut seen = Vec::new();
        let mut query = PageQuery::first(7, order);
        let mut pages = Vec::new();
        loop {
            let page = store.list_applications(AppFilter::default(), &query).await.unwrap();
            seen.extend(page.items.iter().map(|a| a.id.clone()));
            let last = page.items.last().map(|a| a.id.to_string());
            pages.push(page.items.iter().map(|a| a.id.clone()).collect::<Vec<_>>());
            if page.done {
                break;
            }
            query.cursor = Some(Cursor { key: last.unwrap(), direction: Direction::Next });
        }
        assert_eq!(seen, expected, "forward walk in {order:?}");
        // Walk back from the last page using each page's first key.
        let mut back = Vec::new();
        let mut first = pages.last().unwrap().first().unwrap().to_string();
        back.extend(pages.last().unwrap().iter().rev().cloned());
        loop {
            let q = PageQuery { limit: 7, cursor: Some(Cursor { key: first, direction: Direction::Prev }), order };
            let page = store.list_applications(AppFilter::default(), &q).await.unwrap();
            back.extend(page.items.iter().rev().map(|a| a.id.clone()));
            if page.done {
                break;
            }
            first = page.items.first().unwrap().id.to_string();
        }
        back.reverse();
        assert_eq!(back, expected, "backward walk in {order:?}");
    }
}

pub async fn event_types_round_trip(store: DynStore) {
    let now = herald_core::to_millis(Utc::now());
    let et = EventType {
        name: "user.signup".into(),
        description: "A user signed up".into(),
        archived: false,
        deprecated: false,
        schemas: Some(serde_json::json!({"1": {"type": "object"}})),
        group_name: None,
        feature_flags: None,
        created_at: now,
        updated_at: now,
    };
    store.create_event_type(et.clone()).await.unwrap();
    assert!(matches!(store.create_event_type(et.clone()).await, Err(StoreError::Conflict(_))));
    let mut archived = store.get_event_type("user.signup").await.unwrap();
    assert_eq!(archived.schemas, et.schemas);
    archived.archived = true;
    store.update_event_type(archived).await.unwrap();
    let visible = store.list_event_types(&PageQuery::first(50, Order::Ascending), false).await.unwrap();
    assert!(visible.items.is_empty());
    let all = store.list_event_types(&PageQuery::first(50, Order::Ascending), true).await.unwrap();
    assert_eq!(all.items.len(), 1);
    store.delete_event_type("user.signup").await.unwrap();
    assert!(matches!(store.get_event_type("user.signup").await, Err(StoreError::NotFound(_))));
}

pub async fn endpoints_are_scoped_to_their_app(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let b = store.create_application(app("b", None)).await.unwrap();
    let mut ep = endpoint(&a.id, None, None);
    ep.uid = Some("ep-uid".into());
    let ep = store.create_endpoint(ep).await.unwrap();
    assert_eq!(store.get_endpoint(&a.id, "ep-uid").await.unwrap(), ep);
    assert!(matches!(store.get_endpoint(&b.id, ep.id.as_str()).await, Err(StoreError::NotFound(_))));
    let mut dup = endpoint(&a.id, None, None);
    dup.uid = Some("ep-uid".into());
    assert!(matches!(store.create_endpoint(dup).await, Err(StoreError::Conflict(_))));
    let mut same_uid_other_app = endpoint(&b.id, None, None);
    same_uid_other_app.uid = Some("ep-uid".into());
    store.create_endpoint(same_uid_other_app).await.unwrap();
    assert!(matches!(
        store.create_endpoint(endpoint(&AppId::generate(Utc::now(), &mut rng()), None, None)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(store.delete_endpoint(&b.id, &ep.id).await, Err(StoreError::NotFound(_))));
    store.delete_endpoint(&a.id, &ep.id).await.unwrap();
    assert!(store.list_endpoints(&a.id, &PageQuery::first(10, Order::Ascending)).await.unwrap().items.is_empty());
}

/// `list_applications` leaves out, when asked, applications without endpoints and
/// those whose endpoints are all disabled.
pub async fn application_list_filters(store: DynStore) {
    let mut add = Vec::new();
    for name in ["none", "enabled", "disabled", "mixed"] {
        add.push(store.create_application(app(name, None)).await.unwrap());
    }
    let off = |app: &Application| Endpoint { disabled: true, ..endpoint(&app.id, None, None) };
    store.create_endpoint(endpoint(&add[1].id, None, None)).await.unwrap();
    store.create_endpoint(off(&add[2])).await.unwrap();
    store.create_endpoint(off(&add[3])).await.unwrap();
    store.create_endpoint(endpoint(&add[3].id, None, None)).await.unwrap();
    let names = |exclude_without_endpoints, exclude_only_disabled_endpoints| {
        let store = store.clone();
        let filter = AppFilter { exclude_without_endpoints, exclude_only_disabled_endpoints };
        async move {
            let page = store.list_applications(filter, &PageQuery::first(50, Order::Ascending)).await.unwrap();
            let mut names: Vec<_> = page.items.into_iter().map(|a| a.name).collect();
            names.sort();
            names
        }
    };
    assert_eq!(names(false, false).await, ["disabled", "enabled", "mixed", "none"]);
    assert_eq!(names(true, false).await, ["disabled", "enabled", "mixed"]);
    assert_eq!(names(false, true).await, ["enabled", "mixed", "none"]);
    assert_eq!(names(true, true).await, ["enabled", "mixed"]);
}
