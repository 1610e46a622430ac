//! The `filter` parameter: the GraphQL filter input of the exported query, as JSON with the
//! same field names, checked as strictly as GraphQL checks it.

use async_graphql::{InputType, Name};
use serde_json::Value;

use crate::error::ApiError;

/// The filter in `raw` (none: the empty filter).
pub fn parse<T: InputType + Default>(raw: Option<&String>) -> Result<T, ApiError> {
    let Some(text) = raw else {
        return Ok(T::default());
    };
    let json: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_input(format!("filter is not JSON: {e}")))?;
    crate::graphql::filters::refuse_nul(&json)?;
    let value = async_graphql::Value::from_json(json.clone())
        .map_err(|e| ApiError::bad_input(format!("filter: {e}")))?;
    let filter = T::parse(Some(value)).map_err(|e| {
        ApiError::bad_input(format!(
            "filter: {}",
            e.into_server_error(Default::default()).message
        ))
    })?;
    refuse_unknown_fields(&json, &filter.to_value(), &T::type_name())?;
    Ok(filter)
}

/// `InputType::parse` drops keys the type has no field for (in GraphQL the validator refuses
/// them first), and a dropped predicate exports — and charges to the quota — the rows it was
/// meant to leave out. The parsed filter written back (`to_value`) has every field of its
/// type, so any key of the request that it lacks is not a field: the type itself is the list,
/// and a new filter field needs no second list to be accepted here.
fn refuse_unknown_fields(
    sent: &Value,
    parsed: &async_graphql::Value,
    type_name: &str,
) -> Result<(), ApiError> {
    let (Value::Object(sent), async_graphql::Value::Object(fields)) = (sent, parsed) else {
        return Ok(());
    };
    for (key, value) in sent {
        match fields.get(&Name::new(key)) {
            None => {
                return Err(ApiError::bad_input(format!(
                    "filter: unknown field {key:?} of type {type_name:?}"
                )));
            }
            // A nested input object is checked the same way.
            Some(inner) => refuse_unknown_fields(value, inner, key)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::trade::TradeRecordFilter;

    /// The filter, or the message of its `BAD_USER_INPUT` refusal.
    fn parsed(filter: &str) -> Result<TradeRecordFilter, String> {
        parse::<TradeRecordFilter>(Some(&filter.to_owned())).map_err(|e| match e {
            ApiError::BadUserInput(message) => message,
            other => panic!("{filter}: not BAD_USER_INPUT: {other:?}"),
        })
    }

    #[test]
    fn every_field_of_the_input_type_is_accepted() {
        // The fields as GraphQL names them, read from the type: none is refused as unknown.
        let async_graphql::Value::Object(fields) = TradeRecordFilter::default().to_value() else {
            panic!("a filter is an input object");
        };
        assert!(fields.len() > 10, "{fields:?}");
        for name in fields.keys() {
            let filter = format!("{{{:?}: null}}", name.as_str());
            assert!(
                parsed(&filter).is_ok(),
                "{filter}: {:?}",
                parsed(&filter).err()
            );
        }
        assert!(parsed(r#"{"hsCodePrefix": "0501", "linkedFinancialActivity": true}"#).is_ok());
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        for (filter, key) in [
            (r#"{"hsCodePrefx": "0501"}"#, "hsCodePrefx"),
            (r#"{"hsCodePrefix": "0501", "bogus": 1}"#, "bogus"),
            (
                r#"{"linkedfinancialactivity": true}"#,
                "linkedfinancialactivity",
            ),
        ] {
            let Err(err) = parsed(filter) else {
                panic!("{filter}: accepted");
            };
            assert_eq!(
                err,
                format!("filter: unknown field {key:?} of type \"TradeRecordFilter\""),
                "{filter}"
            );
        }
    }
}
