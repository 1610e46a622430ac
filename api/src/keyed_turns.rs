//! One turn at a time per key (a partner certificate signing in, an analyst's place in the
//! analysis queue), without a map that grows with every key ever seen.
//!
//! Each key's turn is a tokio mutex, so waiters of one key are served in order of arrival.
//! An entry nobody holds or waits for is dropped at the next look-up: the map only holds the
//! keys in use right now, which also covers a waiter abandoned half-way (its clone of the
//! turn goes with it).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

pub struct KeyedTurns<K> {
    turns: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K: Eq + Hash> Default for KeyedTurns<K> {
    fn default() -> Self {
        KeyedTurns {
            turns: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash> KeyedTurns<K> {
    /// The turn of `key`: lock it (`lock_owned` to keep it past this borrow) to take it.
    pub fn of(&self, key: K) -> Arc<tokio::sync::Mutex<()>> {
        // The map is only ever updated whole; a poisoned lock still holds a consistent map.
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        turns.retain(|_, turn| Arc::strong_count(turn) > 1);
        Arc::clone(turns.entry(key).or_default())
    }

    #[cfg(test)]
    fn held(&self, key: &K) -> bool {
        self.turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_per_key_and_forgotten_when_free() {
        let turns = KeyedTurns::default();
        let a = turns.of("a");
        let a_again = turns.of("a");
        assert!(Arc::ptr_eq(&a, &a_again));
        assert!(!Arc::ptr_eq(&a, &turns.of("b")));
        drop((a, a_again));
        turns.of("c");
        assert!(!turns.held(&"a") && !turns.held(&"b"));
        assert!(turns.held(&"c"));
    }

    #[tokio::test]
    async fn a_waiter_abandoned_half_way_leaves_nothing_behind() {
        let turns = KeyedTurns::default();
        let held = turns.of(1).lock_owned().await;
        let waiter = tokio::spawn({
            let turn = turns.of(1);
            async move { drop(turn.lock_owned().await) }
        });
        tokio::task::yield_now().await;
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        drop(held);
        turns.of(2);
        assert!(!turns.held(&1));
    }
}
