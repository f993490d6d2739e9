//! Cursor pagination shared by every list: a page of items plus whether the walk in
//! its direction is finished. The API turns the first and last keys into the
//! contract's `iterator` / `prevIterator` strings.

/// Sort order of a list, as the contract's `Ordering`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Ascending,
    Descending,
}

/// Which way to walk from a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Items after the cursor in list order.
    Next,
    /// Items before the cursor in list order.
    Prev,
}

/// A position in a list: the sort key of an item already seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: String,
    pub direction: Direction,
}

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// 1 to 250.
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub order: Order,
}

impl PageQuery {
    /// The first page of `limit` items in `order`.
    pub fn first(limit: usize, order: Order) -> Self {
        Self { limit, cursor: None, order }
    }
}

/// Items in list order, whichever direction they were fetched in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// No more items lie beyond this page in the direction walked.
    pub done: bool,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched in walking order, `limit + 1` at most: the extra
    /// row only tells that more exist. Rows walked backwards are put back in list order.
    pub fn from_rows(mut rows: Vec<T>, limit: usize, direction: Direction) -> Self {
        let done = rows.len() <= limit;
        rows.truncate(limit);
        if direction == Direction::Prev {
            rows.reverse();
        }
        Self { items: rows, done }
    }

    /// Converts the items, keeping `done`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), done: self.done }
    }
}
