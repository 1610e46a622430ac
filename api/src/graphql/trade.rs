//! Trade declarations: `tradeRecords` and the `TradeRecord` type.

use std::collections::HashMap;

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use entities::trade_record::{self, Column};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::batch::{Batch, BatchLoader};
use super::filters::RecordFilter;
use super::financial::{FinancialTransaction, Subject};
use super::guard::{principal, require_readable};
use super::ids::{self, NodeType};
use super::keyset::{
    COVERED_SORT_UP_TO, KeyKind, KeyValue, Keyset, KeysetConnection, SortKey, fetch_columns,
};
use super::pagination::CONNECTION_COST;
use super::records_by_id::RecordsById;
use super::scalars::{Date, SortDirection};
use super::scope;
use super::screening::{self, PartyHit, TradeParty};
use super::trade_columns::Projection;
use crate::error::{ApiError, ApiResult};
use crate::policy::PermissionSet;
use crate::state::AppState;

mod filter;
pub use filter::TradeRecordFilter;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    // The default only stands in for a column a page did not read (`trade_columns`).
    #[default]
    Import,
    Export,
}

impl Direction {
    /// From the column's value (`IMPORT` or `EXPORT`, checked at load).
    pub(super) fn from_column(value: &str) -> Self {
        if value == "EXPORT" {
            Direction::Export
        } else {
            Direction::Import
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Direction::Import => "IMPORT",
            Direction::Export => "EXPORT",
        }
    }
}

/// One line of one trade declaration.
// `Default` only fills what a page did not read (`trade_columns`): none of it resolves.
// `Clone` for the per-request loader (`records_by_id`), which keeps what it read.
#[derive(SimpleObject, Default, Clone)]
#[graphql(complex)]
pub struct TradeRecord {
    #[graphql(skip)]
    pub(super) row_id: i64,
    #[graphql(skip)]
    pub(super) batch_id: i64,
    pub declaration_id: String,
    pub line_number: i32,
    pub declaration_date: Date,
    pub direction: Direction,
    /// HS / HTS code, 2 to 10 digits.
    pub hs_code: String,
    pub commodity_description: Option<String>,
    pub importer_name: Option<String>,
    pub importer_id: Option<String>,
    pub importer_address: Option<String>,
    pub exporter_name: Option<String>,
    pub manufacturer_name: Option<String>,
    pub manufacturer_id: Option<String>,
    pub country_of_origin: Option<String>,
    pub country_of_export: Option<String>,
    pub country_of_destination: Option<String>,
    /// The country whose customs recorded the declaration.
    pub reporting_country: String,
    /// The other side of the trade, as the reporting country sees it.
    pub partner_country: Option<String>,
    /// The nation that provided the data.
    pub provider_country: String,
    pub port: Option<String>,
    pub transport_mode: Option<String>,
    pub quantity: Option<f64>,
    pub quantity_unit: Option<String>,
    pub net_weight_kg: Option<f64>,
    /// The amount as declared, in `declaredCurrency`.
    pub declared_value: f64,
    /// ISO 4217 code of `declaredValue`.
    pub declared_currency: String,
    pub declared_value_usd: f64,
}

#[ComplexObject]
impl TradeRecord {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::TradeRecord, self.row_id)
    }

    /// FinCEN reports whose subject is this record's importer (by TIN, else by exact name).
    async fn linked_financial_transactions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Vec<FinancialTransaction>>> {
        // The importer's fields as stored, whether or not the caller may read them: the field
        // guard refuses fields when they resolve; it does not clear the struct. The page's
        // records are linked together, through the request's loader.
        let Some(subject) = Subject::of(self.importer_id.as_deref(), self.importer_name.as_deref())
        else {
            return Ok(Some(Vec::new()));
        };
        let loader = ctx.data::<DataLoader<RecordsById>>()?;
        Ok(Some(loader.load_one(subject).await?.unwrap_or_default()))
    }

    /// Screening hits for the importer, exporter and manufacturer (from the sources your role
    /// may read), best first. `minScore` defaults to the shipped threshold. Null, with a
    /// `FORBIDDEN_FIELD` error, for a role that may not read SDN data or the party names.
    async fn party_hits(
        &self,
        ctx: &Context<'_>,
        min_score: Option<f64>,
    ) -> async_graphql::Result<Option<Vec<PartyHit>>> {
        let parties = vec![
            (TradeParty::Importer, self.importer_name.clone()),
            (TradeParty::Exporter, self.exporter_name.clone()),
            (TradeParty::Manufacturer, self.manufacturer_name.clone()),
        ];
        screening::party_hits(ctx, parties, min_score)
            .await
            .map(Some)
    }

    /// The load this record came from; null when you may not see that load (`batches` and
    /// `node` do not show it to you either: a partner's rows may come from another nation's
    /// file).
    async fn batch(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Batch>> {
        let loader = ctx.data::<DataLoader<BatchLoader>>()?;
        loader.load_one(self.batch_id).await
    }
}

impl From<trade_record::Model> for TradeRecord {
    fn from(m: trade_record::Model) -> Self {
        TradeRecord {
            row_id: m.id,
            batch_id: m.batch_id,
            declaration_id: m.declaration_id,
            line_number: m.line_number,
            declaration_date: Date(m.declaration_date),
            direction: Direction::from_column(&m.direction),
            hs_code: m.hs_code,
            commodity_description: m.commodity_description,
            importer_name: m.importer_name,
            importer_id: m.importer_id,
            importer_address: m.importer_address,
            exporter_name: m.exporter_name,
            manufacturer_name: m.manufacturer_name,
            manufacturer_id: m.manufacturer_id,
            country_of_origin: m.country_of_origin,
            country_of_export: m.country_of_export,
            country_of_destination: m.country_of_destination,
            reporting_country: m.reporting_country,
            partner_country: m.partner_country,
            provider_country: m.provider_country,
            port: m.port,
            transport_mode: m.transport_mode,
            quantity: m.quantity,
            quantity_unit: m.quantity_unit,
            net_weight_kg: m.net_weight_kg,
            declared_value: m.declared_value,
            declared_currency: m.declared_currency,
            declared_value_usd: m.declared_value_usd,
        }
    }
}

/// Columns `tradeRecords` can be sorted on.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TradeRecordSortField {
    DeclarationDate,
    DeclarationId,
    LineNumber,
    HsCode,
    ImporterName,
    ImporterId,
    ManufacturerName,
    CountryOfOrigin,
    CountryOfExport,
    PartnerCountry,
    ProviderCountry,
    Port,
    TransportMode,
    Quantity,
    NetWeightKg,
    DeclaredValueUsd,
}

impl TradeRecordSortField {
    /// The `TradeRecord` field sorted on (its name in `policies/fields.toml`).
    fn field_name(self) -> &'static str {
        match self {
            Self::DeclarationDate => "declarationDate",
            Self::DeclarationId => "declarationId",
            Self::LineNumber => "lineNumber",
            Self::HsCode => "hsCode",
            Self::ImporterName => "importerName",
            Self::ImporterId => "importerId",
            Self::ManufacturerName => "manufacturerName",
            Self::CountryOfOrigin => "countryOfOrigin",
            Self::CountryOfExport => "countryOfExport",
            Self::PartnerCountry => "partnerCountry",
            Self::ProviderCountry => "providerCountry",
            Self::Port => "port",
            Self::TransportMode => "transportMode",
            Self::Quantity => "quantity",
            Self::NetWeightKg => "netWeightKg",
            Self::DeclaredValueUsd => "declaredValueUsd",
        }
    }

    /// The key as the keyset orders and seeks on it.
    fn sort_key(self, direction: SortDirection) -> SortKey {
        let (kind, nullable) = match self {
            Self::DeclarationDate => (KeyKind::Date, false),
            Self::DeclarationId | Self::HsCode | Self::ProviderCountry => (KeyKind::Text, false),
            Self::LineNumber => (KeyKind::Int, false),
            Self::ImporterName
            | Self::ImporterId
            | Self::ManufacturerName
            | Self::CountryOfOrigin
            | Self::CountryOfExport
            | Self::PartnerCountry
            | Self::Port
            | Self::TransportMode => (KeyKind::Text, true),
            Self::Quantity | Self::NetWeightKg => (KeyKind::Float, true),
            Self::DeclaredValueUsd => (KeyKind::Float, false),
        };
        SortKey::new(
            self.field_name(),
            Expr::col((trade_record::Entity, self.column())),
            kind,
        )
        .nullable(nullable)
        .desc(direction == SortDirection::Desc)
    }

    /// This key's value in one record (for the record's cursor).
    fn value(self, r: &TradeRecord) -> KeyValue {
        match self {
            Self::DeclarationDate => r.declaration_date.0.into(),
            Self::DeclarationId => r.declaration_id.clone().into(),
            Self::LineNumber => r.line_number.into(),
            Self::HsCode => r.hs_code.clone().into(),
            Self::ImporterName => r.importer_name.clone().into(),
            Self::ImporterId => r.importer_id.clone().into(),
            Self::ManufacturerName => r.manufacturer_name.clone().into(),
            Self::CountryOfOrigin => r.country_of_origin.clone().into(),
            Self::CountryOfExport => r.country_of_export.clone().into(),
            Self::PartnerCountry => r.partner_country.clone().into(),
            Self::ProviderCountry => r.provider_country.clone().into(),
            Self::Port => r.port.clone().into(),
            Self::TransportMode => r.transport_mode.clone().into(),
            Self::Quantity => r.quantity.into(),
            Self::NetWeightKg => r.net_weight_kg.into(),
            Self::DeclaredValueUsd => r.declared_value_usd.into(),
        }
    }

    fn column(self) -> Column {
        match self {
            Self::DeclarationDate => Column::DeclarationDate,
            Self::DeclarationId => Column::DeclarationId,
            Self::LineNumber => Column::LineNumber,
            Self::HsCode => Column::HsCode,
            Self::ImporterName => Column::ImporterName,
            Self::ImporterId => Column::ImporterId,
            Self::ManufacturerName => Column::ManufacturerName,
            Self::CountryOfOrigin => Column::CountryOfOrigin,
            Self::CountryOfExport => Column::CountryOfExport,
            Self::PartnerCountry => Column::PartnerCountry,
            Self::ProviderCountry => Column::ProviderCountry,
            Self::Port => Column::Port,
            Self::TransportMode => Column::TransportMode,
            Self::Quantity => Column::Quantity,
            Self::NetWeightKg => Column::NetWeightKg,
            Self::DeclaredValueUsd => Column::DeclaredValueUsd,
        }
    }
}

#[derive(InputObject, Clone, Copy)]
pub struct TradeRecordOrder {
    pub field: TradeRecordSortField,
    #[graphql(default_with = "SortDirection::Asc")]
    pub direction: SortDirection,
}

/// More sort keys than this is a mistake or an attempt to make the database work hard.
const MAX_SORT_KEYS: usize = 5;

#[derive(Default)]
pub struct TradeQuery;

#[Object]
impl TradeQuery {
    /// Trade declaration lines, filtered and sorted in the database. Ties are broken by id, so
    /// pages are stable.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn trade_records(
        &self,
        ctx: &Context<'_>,
        filter: Option<TradeRecordFilter>,
        order_by: Option<Vec<TradeRecordOrder>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<TradeRecord>>> {
        let state = ctx.data::<AppState>()?;
        let mut filter = filter.unwrap_or_default();
        let order_by = order_by.unwrap_or_default();
        if order_by.len() > MAX_SORT_KEYS {
            return Err(
                ApiError::bad_input(format!("orderBy takes at most {MAX_SORT_KEYS} keys")).into(),
            );
        }
        let mut read = filter.fields_read();
        read.extend(order_by.iter().map(|o| o.field.field_name()));
        require_readable(ctx, TradeRecordFilter::RECORD, &read)?;
        filter.narrow(&state.db).await?;
        let mut keys: Vec<SortKey> = order_by
            .iter()
            .map(|o| o.field.sort_key(o.direction))
            .collect();
        // Ties are broken by id ascending, so every order is total and pages are stable.
        keys.push(SortKey::new(
            "id",
            Expr::col((trade_record::Entity, Column::Id)),
            KeyKind::Int,
        ));
        let page = Keyset::new("tradeRecords", keys)
            .sort_up_to(COVERED_SORT_UP_TO)
            .page(&state.cursors, first, after.as_deref())?;
        let principal = principal(ctx)?;
        let condition = filter
            .condition()?
            .add(scope::trade(&principal.permissions));
        // Only the columns the selection reads, and the sort keys for the cursors.
        let projection = Projection::of(ctx, order_by.iter().map(|o| o.field.column()));
        let (rows, total) = fetch_columns(
            ctx,
            &state.db,
            &page,
            trade_record::Entity::find().filter(condition),
            projection.columns(),
        )
        .await?;
        let records = rows
            .iter()
            .map(|row| projection.decode(row))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::from)?;
        let edges = page.edges(
            records,
            |r| {
                let mut position: Vec<KeyValue> =
                    order_by.iter().map(|o| o.field.value(r)).collect();
                position.push(r.row_id.into());
                position
            },
            |r| r,
        );
        Ok(Some(page.connection(edges, total)))
    }
}

/// The trade records with these row ids that exist *within the caller's scope*, by row id, in
/// one query: a row of another nation is indistinguishable from one that does not exist.
pub async fn by_ids(
    state: &AppState,
    perms: &PermissionSet,
    ids: &[i64],
) -> ApiResult<HashMap<i64, TradeRecord>> {
    Ok(trade_record::Entity::find()
        .filter(Column::Id.is_in(ids.iter().copied()))
        .filter(scope::trade(perms))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|m| (m.id, TradeRecord::from(m)))
        .collect())
}
