//! Page limits shared by every connection, and offset pages.
//!
//! Connections over database tables page by keyset (`keyset`): a deep page costs what the first
//! does and a load between two pages shifts nothing. Offset pages (`Page`, cursors
//! `base64("offset:N")`) remain for connections over results computed in memory, where the
//! whole ordered result is at hand and an offset is an index into it.

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{OutputType, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;

pub const DEFAULT_PAGE: i32 = 50;
/// Query complexity charged per connection field, on top of its selection: each one is two
/// database queries (page and count), so forty aliased copies should not cost what forty
/// scalar fields do.
pub const CONNECTION_COST: usize = 20;
pub const MAX_PAGE: i32 = 1000;

pub struct OffsetCursor(pub u64);

#[derive(Debug, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

impl CursorType for OffsetCursor {
    type Error = InvalidCursor;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let invalid = || InvalidCursor;
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let n = text.strip_prefix("offset:").ok_or_else(invalid)?;
        n.parse().map(OffsetCursor).map_err(|_| invalid())
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("offset:{}", self.0))
    }
}

#[derive(SimpleObject)]
pub struct TotalCount {
    /// Rows matching the filter, across all pages.
    pub total_count: i64,
}

/// The validated window of one page.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

impl Page {
    pub fn new(first: Option<i32>, after: Option<String>) -> Result<Self, ApiError> {
        let first = first.unwrap_or(DEFAULT_PAGE);
        if !(0..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input(format!(
                "first must be between 0 and {MAX_PAGE}"
            )));
        }
        let not_ours = || ApiError::bad_input("after is not a cursor from this connection");
        let offset = match after {
            None => 0,
            // The database takes a signed 64-bit offset; a larger one was never handed out.
            Some(cursor) => OffsetCursor::decode_cursor(&cursor)
                .ok()
                .and_then(|c| i64::try_from(c.0).ok())
                .and_then(|n| n.checked_add(1))
                .ok_or_else(not_ours)? as u64,
        };
        Ok(Page {
            offset,
            limit: u64::try_from(first).unwrap_or(0),
        })
    }

    /// Wraps fetched rows (at most `limit + 1`, the extra one only signals a next page).
    pub fn connection<N: OutputType>(
        self,
        mut rows: Vec<N>,
        total_count: u64,
    ) -> Connection<OffsetCursor, N, TotalCount> {
        let has_next = rows.len() as u64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        let mut connection = Connection::with_additional_fields(
            self.offset > 0,
            has_next,
            TotalCount {
                total_count: i64::try_from(total_count).unwrap_or(i64::MAX),
            },
        );
        connection.edges.extend(
            rows.into_iter()
                .enumerate()
                .map(|(i, node)| Edge::new(OffsetCursor(self.offset + i as u64), node)),
        );
        connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = OffsetCursor(41).encode_cursor();
        assert_eq!(OffsetCursor::decode_cursor(&c).unwrap().0, 41);
        assert!(OffsetCursor::decode_cursor("bm9wZQ").is_err());
        assert!(Page::new(Some(MAX_PAGE + 1), None).is_err());
        assert!(Page::new(Some(-1), None).is_err());
        assert_eq!(Page::new(Some(10), Some(c)).unwrap().offset, 42);
        for huge in [i64::MAX as u64, 1 << 63, u64::MAX] {
            assert!(Page::new(None, Some(OffsetCursor(huge).encode_cursor())).is_err());
        }
    }
}
