//! Page limits shared by every connection. Connections page by keyset (`keyset`): a cursor is
//! a position in the connection's order, so a deep page costs what the first does and a load
//! between two pages shifts nothing.

use async_graphql::SimpleObject;

use crate::error::ApiError;

pub const DEFAULT_PAGE: i32 = 50;
/// Query complexity charged per connection field, on top of its selection: each one is two
/// database queries (page and count), so forty aliased copies should not cost what forty
/// scalar fields do.
pub const CONNECTION_COST: usize = 20;
pub const MAX_PAGE: i32 = 1000;

#[derive(SimpleObject)]
pub struct TotalCount {
    /// Rows matching the filter within what you may read, across all pages: an exact count,
    /// never an estimate.
    pub total_count: i64,
}

/// The number of rows `first` asks for (default `DEFAULT_PAGE`), or BAD_USER_INPUT.
pub fn page_size(first: Option<i32>) -> Result<u64, ApiError> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(ApiError::bad_input(format!(
            "first must be between 0 and {MAX_PAGE}"
        )));
    }
    Ok(u64::try_from(first).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None).unwrap(), 50);
        assert_eq!(page_size(Some(0)).unwrap(), 0);
        assert_eq!(page_size(Some(MAX_PAGE)).unwrap(), 1000);
        assert!(page_size(Some(MAX_PAGE + 1)).is_err());
        assert!(page_size(Some(-1)).is_err());
    }
}
