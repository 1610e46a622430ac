//! Analysis over the loaded data: pure logic (grouping, matching, statistics) that the
//! GraphQL modules call; nothing here reads a request or decides who may see what.

pub mod mirror;
pub mod totals;
pub mod trade_finance;
