//! The implied value moved by the anomalies `find` returns, summed by group: the same records,
//! read as a handful of columns each and added as they arrive.

use std::collections::HashMap;

use entities::trade_record;
use futures_util::TryStreamExt;
use sea_orm::sea_query::{Alias, Expr, Order, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryTrait, StreamTrait,
};

use super::{
    IDS_PER_FETCH, Options, ProfileColumns, Tr, amount_column, assess, flagged_sql, log_column,
    ranked, score_sql, select_profile, within,
};
use crate::analysis::peers::{Measure, Profile};
use crate::analysis::value_moved::{Group, GroupTotal, KeyColumns, Totals};
use crate::policy::{PermissionSet, RowScope};

/// The implied value moved by the anomalies among the records matching `filter` that the
/// caller may see (the same records `find` returns), summed by `group`. Each flagged record is
/// read as a handful of columns and added as it arrives, so memory holds the groups, not the
/// records: a total over every anomaly of millions of rows held them all before.
pub async fn value_moved(
    db: &DatabaseConnection,
    perms: &PermissionSet,
    filter: Condition,
    options: &Options,
    group: Group,
) -> Result<Vec<GroupTotal>, DbErr> {
    let scope = crate::graphql::scope::trade(perms);
    let totals = match perms.rows {
        RowScope::All => materialized_totals(db, within(filter, scope), options, group).await?,
        _ => scoped_totals(db, filter, scope, options, group).await?,
    };
    Ok(totals.finish())
}

/// What the totals read of a flagged record: its group key's columns, log price and amount.
#[derive(FromQueryResult)]
struct TotalsRow {
    importer_id: Option<String>,
    importer_name: Option<String>,
    country_of_origin: Option<String>,
    hs_code: String,
    log: Option<f64>,
    amount: Option<f64>,
}

impl TotalsRow {
    /// Adds the columns `TotalsRow` reads, from `trade_records` (the profiles' table has an
    /// `hs_code` too).
    fn select(query: &mut SelectStatement, measure: Measure) {
        use trade_record::Column as T;
        for column in [
            T::ImporterId,
            T::ImporterName,
            T::CountryOfOrigin,
            T::HsCode,
        ] {
            query.column((Tr::default(), column));
        }
        query
            .expr_as(
                Expr::col((Tr::default(), log_column(measure))),
                Alias::new("log"),
            )
            .expr_as(
                Expr::col((Tr::default(), amount_column(measure))),
                Alias::new("amount"),
            );
    }

    fn add_to(&self, totals: &mut Totals, profile: &Profile, options: &Options, group: Group) {
        let Some((finding, price, amount)) = assess(profile, self.log, self.amount, options) else {
            return;
        };
        let key = group.key(&KeyColumns {
            importer_id: self.importer_id.as_deref(),
            importer_name: self.importer_name.as_deref(),
            country_of_origin: self.country_of_origin.as_deref(),
            hs_code: &self.hs_code,
        });
        totals.add(key, &finding, price, amount);
    }
}

/// `value_moved` against the stored profiles: one statement, streamed, in the order `find`
/// ranks the hits (so the sums add in the same order as before, bit for bit).
async fn materialized_totals(
    db: &DatabaseConnection,
    condition: Condition,
    options: &Options,
    group: Group,
) -> Result<Totals, DbErr> {
    let mut query = flagged_sql(condition, options);
    query.clear_selects();
    TotalsRow::select(&mut query, options.measure);
    select_profile(&mut query);
    query
        .order_by_expr(score_sql(options), Order::Desc)
        .order_by((Tr::default(), trade_record::Column::Id), Order::Asc);
    let mut rows = db.stream(&query).await?;
    let mut totals = Totals::default();
    while let Some(row) = rows.try_next().await? {
        let profile: Profile = ProfileColumns::from_query_result(&row, "")?.into();
        TotalsRow::from_query_result(&row, "")?.add_to(&mut totals, &profile, options, group);
    }
    Ok(totals)
}

/// `value_moved` for a nation-scoped caller: the hits ranked as `find` ranks them, then their
/// key columns read a chunk at a time.
async fn scoped_totals(
    db: &DatabaseConnection,
    filter: Condition,
    scope: Condition,
    options: &Options,
    group: Group,
) -> Result<Totals, DbErr> {
    let ranked = ranked(db, filter, scope.clone(), options).await?;
    let mut totals = Totals::default();
    for chunk in ranked.chunks(IDS_PER_FETCH) {
        let ids: Vec<i64> = chunk.iter().map(|(_, id, _)| *id).collect();
        let mut query = Tr::find()
            .filter(trade_record::Column::Id.is_in(ids))
            .filter(scope.clone())
            .into_query();
        query.clear_selects();
        query.column((Tr::default(), trade_record::Column::Id));
        TotalsRow::select(&mut query, options.measure);
        let mut rows: HashMap<i64, TotalsRow> = HashMap::with_capacity(chunk.len());
        for row in db.query_all(&query).await? {
            rows.insert(
                row.try_get("", "id")?,
                TotalsRow::from_query_result(&row, "")?,
            );
        }
        for (_, id, profile) in chunk {
            if let Some(row) = rows.get(id) {
                row.add_to(&mut totals, profile, options, group);
            }
        }
    }
    Ok(totals)
}
