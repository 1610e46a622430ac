//! How many analyses run at once (`DARTTS_ANALYSIS_CONCURRENCY`, by default the node's cores),
//! the rest waiting their turn, the analysts served in rotation.
//!
//! An analysis (price anomalies, red flags, totals, mirror trade, trade against money, the
//! entity view) may read every row of the caller's scope and keep a core busy for seconds.
//! Started side by side past the cores, they share them: each takes as many times longer as
//! there are of them, and under a burst they all reach the request time limit together, their
//! work thrown away (the embedded default with 1M rows, 32 clients asking a 2-second analysis
//! at once: 21 were refused `TIMEOUT` after a minute). Taking turns, each runs at full speed
//! and the queue empties in about the same total time: the first answers come early, and as
//! many as the machine can serve come before the limit.
//!
//! A request takes a turn per analysis at its root, at most all of them: the root fields of a
//! query run side by side, so six analyses under six aliases in one document weigh six
//! requests, not one. (The parts of one entity view, all about one importer, take one turn.)
//!
//! Turns are given in order of arrival, but an account has one place in that queue at a time:
//! its next analysis joins the queue when the one before it has been given a turn. One analyst
//! (or one script) sending fifty analyses at once therefore uses every turn while nobody else
//! asks, and delays another analyst's analysis by about one turn, not by fifty. Within one
//! account, analyses still run in the order they came.
//!
//! The wait counts against the request's time limit (`time_limit`): every holder lets go at its
//! own deadline at the latest (unless work between two awaits runs past it), so a waiting
//! request gets a turn, though perhaps with too little time left; what the limit stops is
//! refused `TIMEOUT` as any query past it.
//!
//! Everything else (record pages, lookups by id, `me`, screening a name, mutations) passes by
//! the queue: a page of records never waits behind somebody's analysis.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use async_graphql::Variables;
use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::graphql::planned;
use crate::keyed_turns::KeyedTurns;

/// The root query fields that run an analysis. A new analysis query belongs here; the test
/// below keeps every name a field of the served `Query` type.
pub const ANALYSES: &[&str] = &[
    "priceAnomalies",
    "valueMovedTotals",
    "redFlags",
    "tradeTotals",
    "mirrorDiscrepancies",
    "tradeFinanceMismatches",
    "entity",
];

/// The turns to run an analysis, shared by every request of the process.
#[derive(Clone)]
pub struct Admission {
    turns: Arc<Semaphore>,
    concurrency: usize,
    /// Each account's one place in the queue for `turns`, by account id.
    places: Arc<KeyedTurns<i64>>,
}

/// A request's turns: held while it runs, given back when dropped (also when the request is
/// abandoned at its time limit).
pub struct Turns {
    _permits: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(concurrency: usize) -> Self {
        Admission {
            turns: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            places: Arc::new(KeyedTurns::default()),
        }
    }

    /// Waits for a turn per analysis (at most every turn there is) when `analyses` is not
    /// 0; `None` at once otherwise.
    pub async fn enter(&self, account: i64, analyses: usize) -> Option<Turns> {
        if analyses == 0 {
            return None;
        }
        // The root fields of a query run side by side, so a document asking for six analyses
        // under six aliases works like six requests; at most all the turns, so that it can run.
        let wanted = u32::try_from(analyses.min(self.concurrency)).unwrap_or(u32::MAX);
        let waiting = crate::metrics::analysis_waiting();
        let since = Instant::now();
        let place = self.places.of(account).lock_owned().await;
        // The semaphore is never closed, so acquiring fails only if it were; then the request
        // runs without a turn rather than not at all.
        let permits = Arc::clone(&self.turns)
            .acquire_many_owned(wanted)
            .await
            .ok()?;
        // The account's next analysis may join the queue now, behind everybody's waiting now.
        drop(place);
        drop(waiting);
        crate::metrics::analysis_admitted(since.elapsed());
        Some(Turns { _permits: permits })
    }
}

/// How many analyses `operation` runs at its root: its root fields among `ANALYSES`, directly,
/// in inline fragments or in named fragment spreads, counted by response key (a field asked
/// twice under one key is merged into one, under two aliases it runs twice). A selection that
/// `@skip`/`@include` leave out with these `variables` does not run and is not counted
/// (`planned::skipped`, async-graphql's own rule).
pub fn analyses(
    document: &ExecutableDocument,
    operation: &OperationDefinition,
    variables: &Variables,
) -> usize {
    let mut walk = Walk {
        document,
        variables,
        keys: HashSet::new(),
        seen: HashSet::new(),
    };
    walk.collect(&operation.selection_set.node);
    walk.keys.len()
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// The response keys of the analyses found.
    keys: HashSet<&'a str>,
    /// The fragments followed.
    seen: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn collect(&mut self, set: &'a SelectionSet) {
        for item in &set.items {
            let directives = match &item.node {
                Selection::Field(field) => &field.node.directives,
                Selection::InlineFragment(inline) => &inline.node.directives,
                Selection::FragmentSpread(spread) => &spread.node.directives,
            };
            if planned::skipped(directives, self.variables) == Some(true) {
                continue;
            }
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if ANALYSES.contains(&field.name.node.as_str()) {
                        self.keys.insert(field.response_key().node.as_str());
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.collect(&inline.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    // A fragment is followed once: a cycle (which validation refuses later)
                    // must not loop here first, and a second spread of it adds no other key.
                    if self.seen.insert(name.as_str())
                        && let Some(fragment) = self.document.fragments.get(name)
                    {
                        self.collect(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(query: &str, operation: Option<&str>) -> usize {
        counted(query, operation, &Variables::default())
    }

    fn counted(query: &str, operation: Option<&str>, variables: &Variables) -> usize {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let (_, chosen) = crate::delivery::chosen(&document, operation).unwrap();
        analyses(&document, chosen, variables)
    }

    /// What a spawned task returned, failing the test after 10 s.
    async fn joined<T>(task: tokio::task::JoinHandle<T>) -> T {
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap()
    }

    #[test]
    fn every_analysis_is_a_root_query_field() {
        let sdl = include_str!("../../schema.graphql");
        let start = sdl.find("type Query {").unwrap();
        let query_type = &sdl[start..start + sdl[start..].find("\n}").unwrap()];
        for name in ANALYSES {
            assert!(
                query_type.contains(&format!("\t{name}(")),
                "{name} is not a field of Query"
            );
        }
    }

    #[test]
    fn analyses_are_found_at_the_root_however_written() {
        assert_eq!(1, count("{ redFlags(first: 1) { totalCount } }", None));
        assert_eq!(
            1,
            count(
                "{ me { role } t: tradeTotals(groupBy: [YEAR]) { totalCount } }",
                None
            )
        );
        assert_eq!(
            1,
            count("{ ... on Query { entity(name: \"X\") { name } } }", None)
        );
        assert_eq!(
            1,
            count(
                "query { ...A } fragment A on Query { ...B } fragment B on Query { priceAnomalies { totalCount } }",
                None
            )
        );
        assert_eq!(
            1,
            count(
                "query A { me { role } } query B { mirrorDiscrepancies { totalCount } }",
                Some("B")
            )
        );
        // Root fields run side by side: each alias is one more analysis, a key asked twice
        // (directly and through fragments) is one.
        assert_eq!(
            3,
            count(
                "{ a: redFlags { totalCount } b: redFlags { totalCount } ...F ... on Query { \
                 a: redFlags { totalCount } tradeTotals(groupBy: [YEAR]) { totalCount } } } \
                 fragment F on Query { b: redFlags { totalCount } ...F }",
                None
            )
        );
    }

    #[test]
    fn what_skip_and_include_leave_out_is_not_counted() {
        let query = "query ($no: Boolean!, $yes: Boolean = true) { \
                     a: redFlags @skip(if: true) { totalCount } \
                     b: redFlags @include(if: $no) { totalCount } \
                     ... on Query @skip(if: $yes) { c: redFlags { totalCount } } \
                     ...F @include(if: false) \
                     d: redFlags @skip(if: $no) { totalCount } } \
                     fragment F on Query { e: redFlags { totalCount } }";
        let no = Variables::from_json(serde_json::json!({ "no": false, "yes": true }));
        assert_eq!(1, counted(query, None, &no));
        let yes = Variables::from_json(serde_json::json!({ "no": true, "yes": false }));
        // b and c now run, d does not; a and F are left out whatever the variables.
        assert_eq!(2, counted(query, None, &yes));
    }

    #[test]
    fn other_requests_pass_by_the_queue() {
        assert_eq!(0, count("{ me { role } }", None));
        assert_eq!(
            0,
            count(
                "{ tradeRecords(first: 5) { edges { node { hsCode } } } }",
                None
            )
        );
        // An analysis's name below the root is a field of something else.
        assert_eq!(0, count("{ me { redFlags } }", None));
        assert_eq!(
            0,
            count(
                "query A { me { role } } query B { mirrorDiscrepancies { totalCount } }",
                Some("A")
            )
        );
        // Several operations and none named: execution refuses it, nothing is counted.
        let two = async_graphql::parser::parse_query(
            "query A { redFlags { totalCount } } query B { mirrorDiscrepancies { totalCount } }",
        )
        .unwrap();
        assert!(crate::delivery::chosen(&two, None).is_none());
        // A fragment cycle is refused by validation; it must not hang here first.
        assert_eq!(
            0,
            count(
                "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
                None
            )
        );
    }

    #[tokio::test]
    async fn turns_are_given_up_to_the_concurrency() {
        let admission = Admission::new(2);
        assert!(admission.enter(1, 0).await.is_none());
        // One account may hold every turn while nobody else asks.
        let first = admission.enter(1, 1).await.unwrap();
        let second = admission.enter(1, 1).await.unwrap();
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.enter(2, 1).await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a third analysis ran beside two");
        // A request that does not run an analysis is not held up by the queue.
        assert!(admission.enter(1, 0).await.is_none());
        drop(first);
        joined(waiting).await.unwrap();
        drop(second);
    }

    #[tokio::test]
    async fn analysts_are_served_in_rotation_each_in_order_of_arrival() {
        let admission = Admission::new(1);
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = admission.enter(1, 1).await.unwrap();
        let mut waiters = Vec::new();
        for (name, account) in [
            ("a1", 1),
            ("a2", 1),
            ("a3", 1),
            ("b1", 2),
            ("a4", 1),
            ("b2", 2),
        ] {
            let (admission, order) = (admission.clone(), Arc::clone(&order));
            waiters.push(tokio::spawn(async move {
                let turn = admission.enter(account, 1).await;
                order.lock().unwrap().push(name);
                drop(turn);
            }));
            // Each has arrived before the next is sent.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }
        assert!(order.lock().unwrap().is_empty());
        drop(held);
        for waiter in waiters {
            joined(waiter).await;
        }
        assert_eq!(*order.lock().unwrap(), ["a1", "b1", "a2", "b2", "a3", "a4"]);
    }

    #[tokio::test]
    async fn a_request_waits_for_a_turn_per_analysis_and_at_most_all() {
        let admission = Admission::new(2);
        let three = admission.enter(1, 3).await.unwrap();
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.enter(2, 1).await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "ran beside a request holding every turn"
        );
        drop(three);
        joined(waiting).await.unwrap();
        let _two = admission.enter(1, 2).await.unwrap();
        let one =
            tokio::time::timeout(std::time::Duration::from_millis(100), admission.enter(2, 1))
                .await;
        assert!(one.is_err(), "a third turn of two");
    }
}
