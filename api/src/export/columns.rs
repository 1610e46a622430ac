//! The CSV columns of each data set: the header is the GraphQL field's name, so the policy's
//! field categories decide which columns a caller gets, as they decide the fields.

use entities::{financial_transaction, subject_record, trade_record};

/// One CSV column: header (the GraphQL field name) and how to render it.
pub struct Column<M> {
    pub field: &'static str,
    pub render: fn(&M) -> String,
}

/// `columns![Model; "field" => render, …]`: a dataset's CSV columns, one line each.
macro_rules! columns {
    ($model:ty; $($field:literal => $render:expr),* $(,)?) => {
        vec![$(Column::<$model> { field: $field, render: $render }),*]
    };
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn num(v: Option<f64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

pub fn trade_columns() -> Vec<Column<trade_record::Model>> {
    columns![
        trade_record::Model;
        "declarationId" => |m| m.declaration_id.clone(),
        "lineNumber" => |m| m.line_number.to_string(),
        "declarationDate" => |m| m.declaration_date.to_string(),
        "direction" => |m| m.direction.clone(),
        "hsCode" => |m| m.hs_code.clone(),
        "commodityDescription" => |m| opt(&m.commodity_description),
        "importerName" => |m| opt(&m.importer_name),
        "importerId" => |m| opt(&m.importer_id),
        "importerAddress" => |m| opt(&m.importer_address),
        "exporterName" => |m| opt(&m.exporter_name),
        "manufacturerName" => |m| opt(&m.manufacturer_name),
        "manufacturerId" => |m| opt(&m.manufacturer_id),
        "countryOfOrigin" => |m| opt(&m.country_of_origin),
        "countryOfExport" => |m| opt(&m.country_of_export),
        "countryOfDestination" => |m| opt(&m.country_of_destination),
        "reportingCountry" => |m| m.reporting_country.clone(),
        "partnerCountry" => |m| opt(&m.partner_country),
        "providerCountry" => |m| m.provider_country.clone(),
        "port" => |m| opt(&m.port),
        "transportMode" => |m| opt(&m.transport_mode),
        "quantity" => |m| num(m.quantity),
        "quantityUnit" => |m| opt(&m.quantity_unit),
        "netWeightKg" => |m| num(m.net_weight_kg),
        "declaredValue" => |m| m.declared_value.to_string(),
        "declaredCurrency" => |m| m.declared_currency.clone(),
        "declaredValueUsd" => |m| m.declared_value_usd.to_string(),
    ]
}

pub fn financial_columns() -> Vec<Column<financial_transaction::Model>> {
    columns![
        financial_transaction::Model;
        "reportId" => |m| m.report_id.clone(),
        "reportType" => |m| m.report_type.clone(),
        "transactionDate" => |m| m.transaction_date.to_string(),
        "amountUsd" => |m| m.amount_usd.to_string(),
        "cashDirection" => |m| opt(&m.cash_direction),
        "filerInstitution" => |m| opt(&m.filer_institution),
        "subjectName" => |m| m.subject_name.clone(),
        "subjectTin" => |m| opt(&m.subject_tin),
        "subjectDob" => |m| m.subject_dob.map(|d| d.to_string()).unwrap_or_default(),
        "subjectAddress" => |m| opt(&m.subject_address),
        "subjectIdNumber" => |m| opt(&m.subject_id_number),
        "accountNumber" => |m| opt(&m.account_number),
        "counterpartyName" => |m| opt(&m.counterparty_name),
        "counterpartyAccount" => |m| opt(&m.counterparty_account),
    ]
}

pub fn subject_columns() -> Vec<Column<subject_record::Model>> {
    columns![
        subject_record::Model;
        "recordId" => |m| m.record_id.clone(),
        "kind" => |m| m.kind.clone(),
        "creatingAgency" => |m| m.creating_agency.clone(),
        "caseStatus" => |m| m.case_status.clone(),
        "createdDate" => |m| m.created_date.map(|d| d.to_string()).unwrap_or_default(),
        "name" => |m| opt(&m.name),
        "businessName" => |m| opt(&m.business_name),
        "address" => |m| opt(&m.address),
        "dateOfBirth" => |m| m.date_of_birth.map(|d| d.to_string()).unwrap_or_default(),
        "ssnTin" => |m| opt(&m.ssn_tin),
        "passportNumber" => |m| opt(&m.passport_number),
        "passportCountry" => |m| opt(&m.passport_country),
        "bankAccounts" => |m| opt(&m.bank_accounts),
        "phones" => |m| opt(&m.phones),
        "driversLicense" => |m| opt(&m.drivers_license),
        "driversLicenseState" => |m| opt(&m.drivers_license_state),
        "aNumber" => |m| opt(&m.a_number),
        "plate" => |m| opt(&m.plate),
        "vesselName" => |m| opt(&m.vessel_name),
        "aircraftTailNumber" => |m| opt(&m.aircraft_tail_number),
        "description" => |m| opt(&m.description),
    ]
}
