//! Quotas in Redis, shared by every replica.
//!
//! One Lua script does check-and-add atomically, so concurrent requests from one user across
//! replicas can never together cross the limit. Every call has a short timeout: if Redis is
//! slow or gone, quota-limited requests fail closed (`QuotaError::Unavailable`) and the
//! connection manager reconnects in the background, so service resumes by itself.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sea_orm::DatabaseConnection;

use super::{
    Account, IDEMPOTENCY_TTL_SECONDS, Quota, QuotaError, QuotaStore, Reservation, Usage,
    delivered_since,
};
use crate::config::SecretUrl;

/// Bound on any one Redis round trip; beyond it the request is refused, not delayed.
pub const TIMEOUT: Duration = Duration::from_millis(500);

/// KEYS[1] counter, KEYS[2] lock, KEYS[3] (optional) idempotency key, whose value is the
/// records it was granted for. ARGV[1] n, ARGV[2] limit, ARGV[3] idempotency TTL seconds.
/// Returns {status, used, charged}: 1 granted, 2 exceeded (lock set), 3 already locked, 4 no
/// counter (the caller rebuilds it from the audit log and retries), 5 idempotency key already
/// granted (`charged` is what a larger replay was counted beyond the key's grant, often 0).
const RESERVE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return {3, 0, 0} end
local n = tonumber(ARGV[1])
local charge = n
local granted = false
if KEYS[3] then granted = redis.call('GET', KEYS[3]) end
if granted then
  charge = n - tonumber(granted)
  if charge <= 0 then return {5, 0, 0} end
end
local used = redis.call('GET', KEYS[1])
if not used then return {4, 0, 0} end
used = tonumber(used)
if used + charge > tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1')
  return {2, used, 0}
end
local total = redis.call('INCRBY', KEYS[1], charge)
if KEYS[3] then redis.call('SET', KEYS[3], n, 'EX', tonumber(ARGV[3])) end
if granted then return {5, total, charge} end
return {1, total, n}
";
pub struct RedisQuota {
    manager: ConnectionManager,
    script: redis::Script,
    url: String,
}

fn unavailable(e: impl std::fmt::Display) -> QuotaError {
    QuotaError::Unavailable(e.to_string())
}

impl RedisQuota {
    /// Connects (bounded by `TIMEOUT`); the manager reconnects on its own afterwards.
    pub async fn connect(url: &SecretUrl) -> Result<Self, QuotaError> {
        let client = redis::Client::open(url.expose()).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let manager = tokio::time::timeout(
            TIMEOUT * 4,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| unavailable("timed out connecting"))?
        .map_err(unavailable)?;
        Ok(RedisQuota {
            manager,
            script: redis::Script::new(RESERVE),
            url: url.redacted(),
        })
    }

    fn keys(account: &Account, quota: Quota) -> (String, String) {
        (
            format!(
                "dartts:quota:{}:{}",
                user_tag(account.user_id),
                account.window_key(quota.window, Utc::now())
            ),
            lock_key(account.user_id),
        )
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, QuotaError> {
        tokio::time::timeout(TIMEOUT, fut)
            .await
            .map_err(|_| unavailable("timed out"))?
            .map_err(unavailable)
    }

    /// Sets a missing counter to what the audit log says was delivered (`SET NX`: if another
    /// replica rebuilt it first, theirs stands).
    async fn rebuild(
        &self,
        db: &DatabaseConnection,
        account: &Account,
        quota: Quota,
        key: &str,
    ) -> Result<(), QuotaError> {
        let used = delivered_since(
            db,
            &account.username,
            account.window_start(quota.window, Utc::now()),
        )
        .await?;
        let mut con = self.manager.clone();
        // Day counters expire after two days; until-unlock counters live until the next reset
        // changes the key.
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(used).arg("NX");
        if quota.window == super::Window::Day {
            cmd.arg("EX").arg(2 * 86_400);
        }
        self.bounded(cmd.query_async::<Option<String>>(&mut con))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl QuotaStore for RedisQuota {
    async fn reserve(
        &self,
        db: &DatabaseConnection,
        account: &Account,
        quota: Quota,
        n: u64,
        idempotency: Option<&str>,
    ) -> Result<Reservation, QuotaError> {
        let (counter, lock) = Self::keys(account, quota);
        for _ in 0..3 {
            let mut con = self.manager.clone();
            let mut invocation = self.script.key(&counter);
            invocation.key(&lock);
            if let Some(k) = idempotency {
                invocation.key(format!("dartts:idem:{}:{k}", user_tag(account.user_id)));
            }
            invocation
                .arg(n)
                .arg(quota.records)
                .arg(IDEMPOTENCY_TTL_SECONDS);
            let (status, used, charged): (i64, u64, u64) =
                self.bounded(invocation.invoke_async(&mut con)).await?;
            match status {
                1 => return Ok(Reservation::Granted { used }),
                2 => return Ok(Reservation::Exceeded { used }),
                3 => return Ok(Reservation::Locked),
                5 => return Ok(Reservation::Replayed { extra: charged }),
                _ => self.rebuild(db, account, quota, &counter).await?,
            }
        }
        Err(unavailable("counter vanished repeatedly while rebuilding"))
    }

    async fn usage(
        &self,
        db: &DatabaseConnection,
        account: &Account,
        quota: Quota,
    ) -> Result<Usage, QuotaError> {
        let (counter, lock) = Self::keys(account, quota);
        let mut con = self.manager.clone();
        let (used, locked): (Option<u64>, bool) = self
            .bounded(
                redis::pipe()
                    .get(&counter)
                    .exists(&lock)
                    .query_async(&mut con),
            )
            .await?;
        let used = match used {
            Some(u) => u,
            None => {
                delivered_since(
                    db,
                    &account.username,
                    account.window_start(quota.window, Utc::now()),
                )
                .await?
            }
        };
        Ok(Usage { used, locked })
    }

    async fn unlock(&self, user_id: i64) -> Result<(), QuotaError> {
        let mut con = self.manager.clone();
        self.bounded(
            redis::cmd("DEL")
                .arg(lock_key(user_id))
                .query_async::<i64>(&mut con),
        )
        .await?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("Redis quota store at {}", self.url)
    }
}

/// The Redis Cluster hash tag of an account's keys: the one script touches its counter, lock
/// and idempotency key together, and a cluster only allows that for keys of one slot. (A
/// counter missing under a new name is rebuilt from the audit log, so renaming keys is safe.)
fn user_tag(user_id: i64) -> String {
    format!("{{u{user_id}}}")
}

fn lock_key(user_id: i64) -> String {
    format!("dartts:lock:{}", user_tag(user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the reserve script touches for one account shares one hash tag, so one
    /// cluster slot.
    #[test]
    fn an_accounts_keys_share_one_hash_tag() {
        let account = Account {
            user_id: 7,
            username: "alice".into(),
            reset_at: None,
        };
        let quota = Quota {
            records: 10,
            window: super::super::Window::Day,
        };
        let (counter, lock) = RedisQuota::keys(&account, quota);
        for key in [counter.as_str(), lock.as_str()] {
            assert!(key.contains("{u7}"), "{key}");
            assert_eq!(key.matches('{').count(), 1, "{key}");
        }
        assert_ne!(user_tag(7), user_tag(70));
    }
}
