//! The embedded default's quota store: one process, one mutex, the same rules as Redis.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio::sync::Mutex;

use super::{
    Account, IDEMPOTENCY_TTL_SECONDS, Quota, QuotaError, QuotaStore, Reservation, Usage,
    delivered_since,
};

#[derive(Default)]
pub struct MemoryQuota {
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    counters: HashMap<String, u64>,
    locked: HashSet<i64>,
    /// Granted idempotency keys: when, and for how many records.
    replays: HashMap<(i64, String), (std::time::Instant, u64)>,
}

impl MemoryQuota {
    /// The counter for this window, rebuilt from the audit log when this process has none.
    async fn counter<'a>(
        state: &'a mut State,
        db: &DatabaseConnection,
        account: &Account,
        quota: Quota,
    ) -> Result<&'a mut u64, QuotaError> {
        let now = Utc::now();
        let key = account.window_key(quota.window, now);
        if !state.counters.contains_key(&key) {
            let used = delivered_since(
                db,
                &account.username,
                account.window_start(quota.window, now),
            )
            .await?;
            state.counters.insert(key.clone(), used);
        }
        Ok(state.counters.entry(key).or_default())
    }
}

#[async_trait]
impl QuotaStore for MemoryQuota {
    async fn reserve(
        &self,
        db: &DatabaseConnection,
        account: &Account,
        quota: Quota,
        n: u64,
        idempotency: Option<&str>,
    ) -> Result<Reservation, QuotaError> {
        // Holding the lock across the rebuild query keeps check-and-add atomic; it only happens
        // once per window.
        let mut state = self.inner.lock().await;
        if state.locked.contains(&account.user_id) {
            return Ok(Reservation::Locked);
        }
        let now = std::time::Instant::now();
        let ttl = std::time::Duration::from_secs(IDEMPOTENCY_TTL_SECONDS);
        state
            .replays
            .retain(|_, (granted, _)| now.duration_since(*granted) < ttl);
        let replay_key = idempotency.map(|k| (account.user_id, k.to_owned()));
        let granted = replay_key
            .as_ref()
            .and_then(|k| state.replays.get(k))
            .map(|(_, records)| *records);
        let charge = match granted {
            Some(records) if n <= records => return Ok(Reservation::Replayed { extra: 0 }),
            Some(records) => n - records,
            None => n,
        };
        let counter = Self::counter(&mut state, db, account, quota).await?;
        let used = *counter;
        if used.saturating_add(charge) > quota.records {
            state.locked.insert(account.user_id);
            return Ok(Reservation::Exceeded { used });
        }
        *counter = used + charge;
        if let Some(k) = replay_key {
            state.replays.insert(k, (now, n));
        }
        Ok(match granted {
            Some(_) => Reservation::Replayed { extra: charge },
            None => Reservation::Granted { used: used + n },
        })
    }

    async fn usage(
        &self,
        db: &DatabaseConnection,
        account: &Account,
        quota: Quota,
    ) -> Result<Usage, QuotaError> {
        let mut state = self.inner.lock().await;
        let locked = state.locked.contains(&account.user_id);
        let used = *Self::counter(&mut state, db, account, quota).await?;
        Ok(Usage { used, locked })
    }

    async fn unlock(&self, user_id: i64) -> Result<(), QuotaError> {
        self.inner.lock().await.locked.remove(&user_id);
        Ok(())
    }

    fn describe(&self) -> String {
        "in-process quota store (single node only)".to_owned()
    }
}
