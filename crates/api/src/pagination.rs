//! List paging as the contract has it: `limit` (1–250, default 50), `iterator`,
//! `order`, and the envelope `{data, iterator, prevIterator, done}`.
//!
//! An iterator is the sort key of an item already seen: the last item's key walks
//! forwards, `-` plus the first item's key walks backwards. The store does the walking.
//!
//! A leaf module: routes and the OpenAPI document use it, it uses neither.

use herald_store::{Cursor, Direction, Order, Page, PageQuery};
use serde::{Deserialize, Deserializer, Serialize, de};
use utoipa::{IntoParams, ToSchema};

use crate::{error::ApiError, extract::Query};

/// Defines the ordering in a listing of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    Ascending,
    Descending,
}

impl<'de> Deserialize<'de> for Ordering {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "ascending" => Ok(Self::Ascending),
            "descending" => Ok(Self::Descending),
            _ => Err(de::Error::custom("order must be `ascending` or `descending`")),
        }
    }
}

/// `limit` and `iterator`, the paging parameters of every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Limit the number of returned items
    #[param(minimum = 1, maximum = 250)]
    pub limit: Option<u64>,
    /// The iterator returned from a prior invocation
    pub iterator: Option<String>,
}

/// `order`, for the lists whose contract lets the caller choose it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Sorting {
    /// The sorting order of the returned items
    pub order: Option<Ordering>,
}

/// Reads [`Paging`] and [`Sorting`] from the query and makes the store's page query.
///
/// # Errors
/// 422 for a limit out of range, an unknown order or a malformed iterator.
pub fn page_query(query: &Query, default_order: Order, is_key: fn(&str) -> bool) -> Result<PageQuery, ApiError> {
    query.params::<Paging>()?.page(&query.params()?, default_order, is_key)
}

impl Paging {
    /// The page size: `limit`, or [`DEFAULT_LIMIT`] when absent.
    ///
    /// # Errors
    /// 422 for a limit outside 1 to [`MAX_LIMIT`].
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => Ok(n as usize),
            Some(_) => Err(ApiError::invalid(&["query", "limit"], format!("limit must be between 1 and {MAX_LIMIT}"))),
        }
    }

    /// The store's page query: this paging in `order` (the list's default unless
    /// `sorting` names one). `is_key` says whether an iterator's key is a well-formed
    /// sort key of this list.
    ///
    /// # Errors
    /// 422 for a limit out of range or a malformed iterator.
    pub fn page(
        &self,
        sorting: &Sorting,
        default_order: Order,
        is_key: fn(&str) -> bool,
    ) -> Result<PageQuery, ApiError> {
        let limit = self.limit()?;
        let order = match sorting.order {
            None => default_order,
            Some(Ordering::Ascending) => Order::Ascending,
            Some(Ordering::Descending) => Order::Descending,
        };
        let cursor = self.iterator.as_deref().map(|raw| parse_iterator(raw, is_key)).transpose()?;
        Ok(PageQuery { limit, cursor, order })
    }
}

/// Items per page when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest accepted `limit`.
pub const MAX_LIMIT: usize = 250;

/// One page of a list, in the contract's envelope.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub iterator: Option<String>,
    pub prev_iterator: Option<String>,
    pub done: bool,
}

/// Declares the OpenAPI schema of one list envelope under the contract's name
/// (`ListResponse_ApplicationOut_` …); the wire type is always [`ListResponse`].
#[macro_export]
macro_rules! list_schema {
    ($rust_name:ident, $doc_name:ident, $item:ty) => {
        #[doc = concat!("The list envelope of `", stringify!($item), "`.")]
        #[derive(serde::Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase")]
        #[schema(as = $doc_name)]
        pub struct $rust_name {
            data: Vec<$item>,
            #[schema(required = true)]
            iterator: Option<String>,
            prev_iterator: Option<String>,
            done: bool,
        }
    };
}

/// Turns an iterator string into a cursor.
///
/// # Errors
/// 422 when the key is not one `is_key` accepts.
pub fn parse_iterator(raw: &str, is_key: fn(&str) -> bool) -> Result<Cursor, ApiError> {
    let (key, direction) = match raw.strip_prefix('-') {
        Some(key) => (key, Direction::Prev),
        None => (raw, Direction::Next),
    };
    if !is_key(key) {
        return Err(ApiError::invalid(&["query", "iterator"], "invalid iterator"));
    }
    Ok(Cursor { key: key.to_owned(), direction })
}

/// Wraps a page in the envelope, converting items with `out` and naming each item's
/// sort key with `key`. An empty page keeps the caller's position, so polling with the
/// returned iterator later picks up items that arrive meanwhile.
pub fn list_response<T, U>(
    page: Page<T>,
    query: &PageQuery,
    key: impl Fn(&T) -> &str,
    out: impl FnMut(T) -> U,
) -> ListResponse<U> {
    let (iterator, prev_iterator) = match (page.items.first(), page.items.last()) {
        (Some(first), Some(last)) => (Some(key(last).to_owned()), Some(format!("-{}", key(first)))),
        _ => match &query.cursor {
            Some(cursor) => (Some(cursor.key.clone()), Some(format!("-{}", cursor.key))),
            None => (None, None),
        },
    };
    ListResponse { data: page.items.into_iter().map(out).collect(), iterator, prev_iterator, done: page.done }
}

#[cfg(test)]
mod tests {
    use herald_core::AppId;
    use proptest::prelude::*;

    use super::*;

    const KEY: &str = "app_27UH4WbU6Z5A5EzD8u03UvzRbpk";

    fn query(raw: &str) -> Result<PageQuery, ApiError> {
        page_query(&Query::parse(raw), Order::Ascending, AppId::is_id)
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(query("").unwrap(), PageQuery::first(DEFAULT_LIMIT, Order::Ascending));
        assert_eq!(query("limit=250&order=descending").unwrap(), PageQuery::first(250, Order::Descending));
        for bad in ["limit=0", "limit=251", "limit=-1", "limit=abc", "order=up", "iterator=garbage", "iterator=-"] {
            assert_eq!(query(bad).unwrap_err().status().as_u16(), 422, "{bad}");
        }
    }

    #[test]
    fn iterators_walk_both_ways() {
        let next = query(&format!("iterator={KEY}")).unwrap().cursor.unwrap();
        assert_eq!(next, Cursor { key: KEY.to_owned(), direction: Direction::Next });
        let prev = query(&format!("iterator=-{KEY}")).unwrap().cursor.unwrap();
        assert_eq!(prev, Cursor { key: KEY.to_owned(), direction: Direction::Prev });
    }

    #[test]
    fn envelope_points_at_first_and_last_items() {
        let page = Page { items: vec!["a".to_owned(), "b".to_owned()], done: false };
        let list = list_response(page, &PageQuery::first(2, Order::Ascending), |s| s.as_str(), |s| s);
        assert_eq!(list.iterator.as_deref(), Some("b"));
        assert_eq!(list.prev_iterator.as_deref(), Some("-a"));

        let empty: Page<String> = Page { items: vec![], done: true };
        let mut q = PageQuery::first(2, Order::Ascending);
        q.cursor = Some(Cursor { key: "z".into(), direction: Direction::Next });
        let list = list_response(empty, &q, |s| s.as_str(), |s| s);
        assert_eq!(list.iterator.as_deref(), Some("z"));
        assert!(list.done);
    }

    proptest! {
        #[test]
        fn iterator_parsing_never_panics(raw in ".{0,80}") {
            let _ = parse_iterator(&raw, AppId::is_id);
            let _ = parse_iterator(&raw, |k| herald_core::validate::name(k).is_ok());
        }
    }
}
