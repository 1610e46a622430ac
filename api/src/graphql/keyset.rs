//! Keyset (seek) pagination: a page starts *after a position in the sort order*, not after a
//! number of rows, so a deep page costs what the first one does (the index seeks to the
//! position) and a batch loaded between two pages cannot shift rows into or out of the next one.
//!
//! A connection describes its order as [`SortKey`]s ending in a unique key (the row id) and
//! gets a [`KeysetPage`] from [`Keyset::page`]. The cursor of an edge is its row's sort-key
//! values, versioned and tagged with the connection and order it belongs to
//! (`{"v":2,"s":signature,"k":[values]}`), so a cursor from another connection or another
//! `orderBy` is refused instead of silently seeking somewhere meaningless; and sealed with the
//! deployment's [`CursorKey`] (`seal`), so the values stay unread and unforged.
//!
//! NULLs sort as the largest value on both backends (PostgreSQL's default, stated explicitly so
//! SQLite pages the same way): last when ascending, first when descending; a key may instead
//! put them last in both directions (`SortKey::nulls_last`), as the totals' order does.
//!
//! Results computed in memory (mirror trade, red flags, trade-finance mismatches) page over
//! the same keys with [`KeysetPage::window`]: it orders the items by their positions with
//! [`compare`], the Rust twin of the SQL order (a property test holds the two together), so
//! their cursors are checked the same way and a load between two pages shifts nothing either.

use std::cmp::Ordering;
use std::sync::Arc;

use async_graphql::OutputType;
use async_graphql::connection::{Connection, CursorType, Edge};
use chrono::NaiveDate;
use sea_orm::sea_query::{Expr, ExprTrait, NullOrdering, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, Iterable, Order, PrimaryKeyToColumn, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Select,
};
use serde_json::Value;

use super::pagination::{TotalCount, page_size};
use crate::error::ApiError;
pub use fetch::{fetch, fetch_columns, wants_page, wants_total};
pub use id_walk::{COVERED_SORT_UP_TO, IdWalk, TablePlans};
pub use seal::CursorKey;

/// Bumped when the cursor layout changes; older cursors are then refused, not misread. 2:
/// sealed (version 1 was the same JSON in plain base64url).
const VERSION: u64 = 2;

/// The SQL type of a sort key, which decides how a cursor value is read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Int,
    Float,
    Text,
    Date,
}

/// A sort key's value in one row.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyValue {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Date(NaiveDate),
}

impl From<i64> for KeyValue {
    fn from(v: i64) -> Self {
        KeyValue::Int(v)
    }
}

impl From<i32> for KeyValue {
    fn from(v: i32) -> Self {
        KeyValue::Int(v.into())
    }
}

impl From<f64> for KeyValue {
    fn from(v: f64) -> Self {
        KeyValue::Float(v)
    }
}

impl From<String> for KeyValue {
    fn from(v: String) -> Self {
        KeyValue::Text(v)
    }
}

impl From<NaiveDate> for KeyValue {
    fn from(v: NaiveDate) -> Self {
        KeyValue::Date(v)
    }
}

impl<T: Into<KeyValue>> From<Option<T>> for KeyValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(KeyValue::Null, Into::into)
    }
}

impl KeyValue {
    fn to_json(&self) -> Value {
        match self {
            KeyValue::Null => Value::Null,
            KeyValue::Int(v) => Value::from(*v),
            KeyValue::Float(v) => Value::from(*v),
            KeyValue::Text(v) => Value::from(v.as_str()),
            KeyValue::Date(v) => Value::from(v.format("%Y-%m-%d").to_string()),
        }
    }

    fn from_json(value: &Value, key: &SortKey) -> Option<Self> {
        if value.is_null() {
            return key.nullable.then_some(KeyValue::Null);
        }
        match key.kind {
            KeyKind::Int => value.as_i64().map(KeyValue::Int),
            KeyKind::Float => value
                .as_f64()
                .filter(|v| v.is_finite())
                .map(KeyValue::Float),
            // PostgreSQL text cannot hold NUL: a forged one would fail the query, not match.
            KeyKind::Text => value
                .as_str()
                .filter(|s| !s.contains('\0'))
                .map(|s| KeyValue::Text(s.to_owned())),
            KeyKind::Date => value
                .as_str()
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .map(KeyValue::Date),
        }
    }

    fn sql(&self) -> SimpleExpr {
        match self {
            KeyValue::Null => Expr::value(Option::<i64>::None),
            KeyValue::Int(v) => Expr::value(*v),
            KeyValue::Float(v) => Expr::value(*v),
            KeyValue::Text(v) => Expr::value(v.clone()),
            KeyValue::Date(v) => Expr::value(*v),
        }
    }
}

/// One column of a connection's order.
#[derive(Clone, Debug)]
pub struct SortKey {
    /// Names the key in the cursor's signature (stable: changing it invalidates cursors).
    pub name: &'static str,
    pub column: SimpleExpr,
    pub kind: KeyKind,
    pub nullable: bool,
    pub desc: bool,
    /// NULLs after every value in both directions, instead of as the largest value.
    pub nulls_last: bool,
}

impl SortKey {
    pub fn new(name: &'static str, column: impl Into<SimpleExpr>, kind: KeyKind) -> Self {
        SortKey {
            name,
            column: column.into(),
            kind,
            nullable: false,
            desc: false,
            nulls_last: false,
        }
    }

    /// A key of a result computed in memory or of an aggregate query: `column` is what a SQL
    /// statement over the result would order by, `alias` its name there.
    pub fn computed(name: &'static str, kind: KeyKind) -> Self {
        SortKey::new(name, Expr::col(sea_orm::sea_query::Alias::new(name)), kind)
    }

    pub fn nullable(mut self, nullable: bool) -> Self {
        self.nullable = nullable;
        self
    }

    pub fn desc(mut self, desc: bool) -> Self {
        self.desc = desc;
        self
    }

    /// NULLs after every value whichever the direction (the key is then nullable).
    pub fn nulls_last(mut self) -> Self {
        self.nullable = true;
        self.nulls_last = true;
        self
    }

    /// Whether NULLs come after every value in this key's order (else before them).
    fn nulls_at_end(&self) -> bool {
        self.nulls_last || !self.desc
    }

    fn col(&self) -> SimpleExpr {
        self.column.clone()
    }

    /// NULL largest: last ascending, first descending (PostgreSQL's default, so its indexes
    /// serve the order as declared); or last in both (`nulls_last`).
    pub fn order(&self) -> (Order, NullOrdering) {
        let order = if self.desc { Order::Desc } else { Order::Asc };
        let nulls = if self.nulls_at_end() {
            NullOrdering::Last
        } else {
            NullOrdering::First
        };
        (order, nulls)
    }

    /// Rows whose key equals `v`.
    fn equal(&self, v: &KeyValue) -> SimpleExpr {
        match v {
            KeyValue::Null => self.col().is_null(),
            v => self.col().eq(v.sql()),
        }
    }

    /// Rows whose key comes strictly after `v` in this key's order.
    fn after(&self, v: &KeyValue) -> SimpleExpr {
        let beyond = |v: &KeyValue| {
            if self.desc {
                self.col().lt(v.sql())
            } else {
                self.col().gt(v.sql())
            }
        };
        match v {
            // Nothing follows the NULLs at the end; every value follows those at the start.
            KeyValue::Null if self.nulls_at_end() => Expr::value(false),
            KeyValue::Null => self.col().is_not_null(),
            v if self.nullable && self.nulls_at_end() => beyond(v).or(self.col().is_null()),
            v => beyond(v),
        }
    }

    /// A weaker, index-friendly bound implied by `after` on the first key: lets the database
    /// seek to the position instead of filtering its way there.
    fn seek_bound(&self, v: &KeyValue) -> Option<SimpleExpr> {
        match v {
            KeyValue::Null => None,
            _ if self.nullable && self.nulls_at_end() => None,
            v if self.desc => Some(self.col().lte(v.sql())),
            v => Some(self.col().gte(v.sql())),
        }
    }

    /// How two values of this key compare in its order, as the SQL `ORDER BY` of [`order`]
    /// sorts them (text in byte order, as the `COLLATE "C"` columns do).
    ///
    /// [`order`]: Self::order
    fn compare(&self, a: &KeyValue, b: &KeyValue) -> Ordering {
        let null_side = if self.nulls_at_end() {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        let natural = match (a, b) {
            (KeyValue::Null, KeyValue::Null) => return Ordering::Equal,
            (KeyValue::Null, _) => return null_side,
            (_, KeyValue::Null) => return null_side.reverse(),
            (KeyValue::Int(x), KeyValue::Int(y)) => x.cmp(y),
            (KeyValue::Float(x), KeyValue::Float(y)) => x.total_cmp(y),
            (KeyValue::Text(x), KeyValue::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
            (KeyValue::Date(x), KeyValue::Date(y)) => x.cmp(y),
            // Values of one key share its kind; a mix can only be a caller's mistake.
            (x, y) => x.rank().cmp(&y.rank()),
        };
        if self.desc {
            natural.reverse()
        } else {
            natural
        }
    }
}

impl KeyValue {
    fn rank(&self) -> u8 {
        match self {
            KeyValue::Null => 0,
            KeyValue::Int(_) => 1,
            KeyValue::Float(_) => 2,
            KeyValue::Text(_) => 3,
            KeyValue::Date(_) => 4,
        }
    }
}

/// How two positions (key values in key order) compare in the order of `keys`.
pub fn compare(keys: &[SortKey], a: &[KeyValue], b: &[KeyValue]) -> Ordering {
    keys.iter()
        .zip(a.iter().zip(b))
        .map(|(key, (x, y))| key.compare(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// A connection's order: its keys, the last of them unique.
pub struct Keyset {
    connection: &'static str,
    keys: Vec<SortKey>,
    sort_up_to: u64,
}

impl Keyset {
    pub fn new(connection: &'static str, keys: Vec<SortKey>) -> Self {
        Keyset {
            connection,
            keys,
            sort_up_to: id_walk::SORT_UP_TO,
        }
    }

    /// How many matches a default-ordered page may sort rather than walk (`id_walk`): more
    /// than the default for a table whose filter indexes hold the id, so that sorting reads
    /// no table rows.
    pub fn sort_up_to(mut self, matches: u64) -> Self {
        self.sort_up_to = matches;
        self
    }

    /// Which connection and order a cursor belongs to.
    fn signature(&self) -> String {
        let mut s = String::from(self.connection);
        for key in &self.keys {
            s.push('|');
            s.push_str(key.name);
            s.push_str(if key.desc { ":d" } else { ":a" });
            if key.nulls_last {
                s.push_str(":n");
            }
        }
        s
    }

    /// Validates `first` and the `after` cursor; a cursor that is not one of this connection's
    /// under this order, sealed with `key`, is the caller's mistake (BAD_USER_INPUT), never a
    /// silent first page.
    pub fn page(
        self,
        key: &Arc<CursorKey>,
        first: Option<i32>,
        after: Option<&str>,
    ) -> Result<KeysetPage, ApiError> {
        let limit = page_size(first)?;
        let after = match after {
            None => None,
            Some(cursor) => Some(self.decode(key, cursor).ok_or_else(|| {
                ApiError::bad_input("after is not a cursor from this connection and order")
            })?),
        };
        Ok(KeysetPage {
            signature: self.signature().into(),
            key: key.clone(),
            keys: self.keys,
            limit,
            after,
            sort_up_to: self.sort_up_to,
        })
    }

    fn decode(&self, key: &CursorKey, cursor: &str) -> Option<Vec<KeyValue>> {
        let value: Value = serde_json::from_slice(&key.open(cursor)?).ok()?;
        if value.get("v")?.as_u64()? != VERSION || value.get("s")?.as_str()? != self.signature() {
            return None;
        }
        let values = value.get("k")?.as_array()?;
        if values.len() != self.keys.len() {
            return None;
        }
        values
            .iter()
            .zip(&self.keys)
            .map(|(v, key)| KeyValue::from_json(v, key))
            .collect()
    }
}

/// An edge's cursor: the row's position, encoded only when the response asks for it (an edge's
/// `cursor`, `pageInfo.endCursor`). Encoding is JSON, sealing and base64 per row, and most
/// clients read only the end cursor.
pub struct KeysetCursor {
    signature: Arc<str>,
    key: Arc<CursorKey>,
    position: Vec<KeyValue>,
}

impl CursorType for KeysetCursor {
    type Error = String;

    /// Cursors are read by `Keyset::page`, which checks them against the connection's keys;
    /// async-graphql's own decoding is never used.
    fn decode_cursor(_: &str) -> Result<Self, Self::Error> {
        Err("a cursor is read by the connection it came from".into())
    }

    fn encode_cursor(&self) -> String {
        let body = serde_json::json!({
            "v": VERSION,
            "s": &*self.signature,
            "k": self.position.iter().map(KeyValue::to_json).collect::<Vec<_>>(),
        });
        self.key.seal(body.to_string().as_bytes())
    }
}

pub type KeysetConnection<N> = Connection<KeysetCursor, N, TotalCount>;

/// One validated page request over a [`Keyset`].
pub struct KeysetPage {
    signature: Arc<str>,
    key: Arc<CursorKey>,
    keys: Vec<SortKey>,
    limit: u64,
    after: Option<Vec<KeyValue>>,
    sort_up_to: u64,
}

impl KeysetPage {
    /// Rows after the cursor's position, in the keyset's order (see [`Self::seek`]).
    ///
    /// In the default order (the id alone), fetched as a deferred join: the page's ids are
    /// chosen by a subquery that reads only the filter's columns and the id, then only those
    /// rows are read whole. Found by `walk` (`id_walk`): walking the primary key, or through
    /// the filter's index and sorted; when the index holds the id (migration 000015) the
    /// latter is an index-only scan. An HS prefix with a year (3,822 of 1M rows) went from
    /// reading and sorting 3,822 whole rows (16 ms) to an index-only scan and 21 row reads
    /// (2.3 ms). An explicit order is read as it is: an index on the filter and that order
    /// (origin by value) gives the page directly, and the extra join only cost time (about
    /// 15 % of throughput).
    pub fn apply<E: EntityTrait>(&self, mut select: Select<E>, walk: IdWalk) -> Select<E> {
        if let Some(seek) = self.seek() {
            select = select.filter(seek);
        }
        let Some(id) = self.default_order::<E>() else {
            // One more than asked for, only to know whether there is a next page.
            return self.ordered(select).limit(self.limit + 1);
        };
        let select = match walk {
            IdWalk::Key => self.ordered(select),
            // `id + 0` orders the same rows, but no index yields it, so the planner cannot
            // choose the walk.
            IdWalk::SortMatches => {
                let (order, _) = self.keys[0].order();
                select.order_by(Expr::col((E::default(), id)).add(0), order)
            }
        };
        let ids = select
            .limit(self.limit + 1)
            .select_only()
            .column(id)
            .into_query();
        self.ordered(E::find().filter(id.in_subquery(ids)))
    }

    /// The id column when the order is the id alone. Every table here has a one-column id; a
    /// composite key would need a row comparison.
    fn default_order<E: EntityTrait>(&self) -> Option<E::Column> {
        let mut primary_key = E::PrimaryKey::iter();
        match (self.keys.len(), primary_key.next(), primary_key.next()) {
            (1, Some(key), None) => Some(key.into_column()),
            _ => None,
        }
    }

    fn ordered<E: EntityTrait>(&self, mut select: Select<E>) -> Select<E> {
        for key in &self.keys {
            let (order, nulls) = key.order();
            select = select.order_by_with_nulls(key.col(), order, nulls);
        }
        select
    }

    /// The condition "after the cursor's position": for keys k1..kn and position v1..vn,
    /// `after(k1,v1) OR (k1 = v1 AND after(k2,v2)) OR …`, plus a seek bound on k1.
    pub fn seek(&self) -> Option<Condition> {
        let position = self.after.as_ref()?;
        let mut any = Condition::any();
        for i in 0..self.keys.len() {
            let mut all = Condition::all();
            for (key, v) in self.keys.iter().zip(position).take(i) {
                all = all.add(key.equal(v));
            }
            any = any.add(all.add(self.keys[i].after(&position[i])));
        }
        let mut seek = Condition::all().add(any);
        if let (Some(key), Some(v)) = (self.keys.first(), position.first())
            && let Some(bound) = key.seek_bound(v)
        {
            seek = seek.add(bound);
        }
        Some(seek)
    }

    /// The page size asked for (`first`).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The cursor's position (its key values in key order), `None` on a first page: for a
    /// connection whose order is evaluated elsewhere (`analysis::anomalies::Window`).
    pub fn after(&self) -> Option<&[KeyValue]> {
        self.after.as_deref()
    }

    /// The cursor of the row whose sort-key values are `position` (in key order).
    pub fn cursor(&self, position: Vec<KeyValue>) -> KeysetCursor {
        KeysetCursor {
            signature: self.signature.clone(),
            key: self.key.clone(),
            position,
        }
    }

    /// Wraps fetched edges (at most `limit + 1`; the extra one only signals a next page).
    /// `total` is `None` when `totalCount` was not selected and so not counted.
    pub fn connection<N: OutputType>(
        &self,
        mut edges: Vec<(KeysetCursor, N)>,
        total: Option<u64>,
    ) -> KeysetConnection<N> {
        let has_next = edges.len() as u64 > self.limit;
        edges.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        let mut connection = Connection::with_additional_fields(
            self.after.is_some(),
            has_next,
            TotalCount {
                // Never resolved when not counted: the look-ahead said nobody asked.
                total_count: total.map_or(0, |t| i64::try_from(t).unwrap_or(i64::MAX)),
            },
        );
        connection.edges.extend(
            edges
                .into_iter()
                .map(|(cursor, node)| Edge::new(cursor, node)),
        );
        connection
    }

    /// A page of a result computed in memory: the items after the cursor's position, in the
    /// keyset's order, at most `limit + 1` (for [`Self::connection`]). `items` may come in any
    /// order: `position` (the item's key values, the last of them unique) decides it, so the
    /// order and the cursors cannot disagree.
    pub fn window<T>(
        &self,
        items: impl IntoIterator<Item = T>,
        position: impl Fn(&T) -> Vec<KeyValue>,
    ) -> Vec<(KeysetCursor, T)> {
        let keys = &self.keys;
        let mut rest: Vec<(Vec<KeyValue>, T)> = items
            .into_iter()
            .map(|item| (position(&item), item))
            .filter(|(p, _)| {
                self.after
                    .as_ref()
                    .is_none_or(|after| compare(keys, p, after).is_gt())
            })
            .collect();
        let wanted = usize::try_from(self.limit + 1).unwrap_or(usize::MAX);
        if rest.len() > wanted {
            rest.select_nth_unstable_by(wanted, |a, b| compare(keys, &a.0, &b.0));
            rest.truncate(wanted);
        }
        rest.sort_by(|a, b| compare(keys, &a.0, &b.0));
        rest.into_iter()
            .map(|(p, item)| (self.cursor(p), item))
            .collect()
    }

    /// Fetched rows to edges: the cursor from each row's key values, then the node.
    pub fn edges<M, N>(
        &self,
        rows: Vec<M>,
        position: impl Fn(&M) -> Vec<KeyValue>,
        node: impl Fn(M) -> N,
    ) -> Vec<(KeysetCursor, N)> {
        rows.into_iter()
            .map(|row| (self.cursor(position(&row)), node(row)))
            .collect()
    }
}

mod fetch;
mod id_walk;
mod seal;
#[cfg(test)]
mod tests;
