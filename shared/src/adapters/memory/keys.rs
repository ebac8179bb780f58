//! [`KeyStore`] in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Faults, lock};
use crate::domain::device_key::DeviceKey;
use crate::ports::keys::KeyStore;
use crate::ports::{Page, TableError};

#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<BTreeMap<String, DeviceKey>>,
    pub faults: Faults,
}

impl MemoryKeyStore {
    async fn enter(&self, operation: &'static str) -> Result<(), TableError> {
        self.faults.enter(operation).await.map_err(|message| TableError {
            table: "memory-keys".into(),
            message,
        })
    }
}

impl KeyStore for MemoryKeyStore {
    async fn create(&self, key: &DeviceKey) -> Result<bool, TableError> {
        self.enter("create").await?;
        let mut keys = lock(&self.keys);
        if keys.contains_key(&key.key_id) {
            return Ok(false);
        }
        keys.insert(key.key_id.clone(), key.clone());
        Ok(true)
    }

    async fn get(&self, key_id: &str) -> Result<Option<DeviceKey>, TableError> {
        self.enter("get").await?;
        Ok(lock(&self.keys).get(key_id).cloned())
    }

    async fn list(&self, limit: usize, after: Option<&str>) -> Result<Page<DeviceKey>, TableError> {
        self.enter("list").await?;
        let keys = lock(&self.keys);
        let mut rest = keys
            .values()
            .filter(|k| after.is_none_or(|a| k.key_id.as_str() > a))
            .peekable();
        let items: Vec<DeviceKey> = rest.by_ref().take(limit).cloned().collect();
        let next = match rest.peek() {
            Some(_) => items.last().map(|k| k.key_id.clone()),
            None => None,
        };
        Ok(Page { items, next })
    }

    async fn revoke(&self, key_id: &str, now_ms: i64) -> Result<bool, TableError> {
        self.enter("revoke").await?;
        Ok(match lock(&self.keys).get_mut(key_id) {
            Some(key) => {
                key.revoked_at_ms.get_or_insert(now_ms);
                true
            }
            None => false,
        })
    }
}
