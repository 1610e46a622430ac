//! Relay global ids: `base64("<Type>:<row id>")`, opaque to clients and checked on the way in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    TradeRecord,
    FinancialTransaction,
    SubjectRecord,
    SdnEntry,
    Batch,
}

const ALL: [NodeType; 5] = [
    NodeType::TradeRecord,
    NodeType::FinancialTransaction,
    NodeType::SubjectRecord,
    NodeType::SdnEntry,
    NodeType::Batch,
];

impl NodeType {
    /// The GraphQL type name, which is also the id prefix.
    pub fn type_name(self) -> &'static str {
        match self {
            NodeType::TradeRecord => "TradeRecord",
            NodeType::FinancialTransaction => "FinancialTransaction",
            NodeType::SubjectRecord => "SubjectRecord",
            NodeType::SdnEntry => "SdnEntry",
            NodeType::Batch => "Batch",
        }
    }
}

pub fn encode(kind: NodeType, id: i64) -> async_graphql::ID {
    async_graphql::ID(URL_SAFE_NO_PAD.encode(format!("{}:{id}", kind.type_name())))
}

pub fn decode(id: &str) -> Result<(NodeType, i64), ApiError> {
    let invalid = || ApiError::bad_input(format!("{id:?} is not a valid id"));
    let bytes = URL_SAFE_NO_PAD.decode(id).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (kind, number) = text.split_once(':').ok_or_else(invalid)?;
    let kind = ALL
        .into_iter()
        .find(|k| k.type_name() == kind)
        .ok_or_else(invalid)?;
    let number: i64 = number.parse().map_err(|_| invalid())?;
    Ok((kind, number))
}

/// Decodes an id that must be of one type (e.g. a `batchId` filter).
pub fn decode_as(id: &str, expected: NodeType) -> Result<i64, ApiError> {
    match decode(id)? {
        (kind, n) if kind == expected => Ok(n),
        _ => Err(ApiError::bad_input(format!(
            "{id:?} is not a {} id",
            expected.type_name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_rejects_wrong_type() {
        let id = encode(NodeType::Batch, 42);
        assert_eq!(decode(&id).unwrap(), (NodeType::Batch, 42));
        assert!(decode_as(&id, NodeType::TradeRecord).is_err());
        assert!(decode("not base64!").is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("Secret:1")).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in "\\PC*") {
            let _ = decode(&s);
        }
    }
}
