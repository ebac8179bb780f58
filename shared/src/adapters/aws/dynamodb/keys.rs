//! [`KeyStore`] on DynamoDB: one item per key id; the secret only as its SHA-256.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;

use super::{Item, get_item, get_n, get_s, n, s, scan_page, written};
use crate::domain::device_id::DeviceId;
use crate::domain::device_key::DeviceKey;
use crate::ports::keys::KeyStore;
use crate::ports::{Page, TableError};

#[derive(Clone, Debug)]
pub struct DynamoKeyStore {
    client: Client,
    table: String,
}

impl DynamoKeyStore {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    fn item(key: &DeviceKey) -> Item {
        let mut item = HashMap::from([
            ("key_id".to_string(), s(&key.key_id)),
            ("device_id".to_string(), s(key.device_id.as_str())),
            ("secret_sha256".to_string(), s(&key.secret_sha256)),
            ("rate_per_minute".to_string(), n(key.rate_per_minute)),
            ("label".to_string(), s(&key.label)),
            ("created_at_ms".to_string(), n(key.created_at_ms)),
        ]);
        if let Some(at) = key.revoked_at_ms {
            item.insert("revoked_at_ms".into(), n(at));
        }
        item
    }

    /// The key an item holds; `None` for an item that is not a whole key.
    fn key_of(item: &Item) -> Option<DeviceKey> {
        Some(DeviceKey {
            key_id: get_s(item, "key_id")?.to_string(),
            device_id: DeviceId::new(get_s(item, "device_id")?).ok()?,
            secret_sha256: get_s(item, "secret_sha256")?.to_string(),
            rate_per_minute: get_n(item, "rate_per_minute")?,
            label: get_s(item, "label").unwrap_or_default().to_string(),
            created_at_ms: get_n(item, "created_at_ms")?,
            revoked_at_ms: get_n(item, "revoked_at_ms"),
        })
    }
}

impl KeyStore for DynamoKeyStore {
    async fn create(&self, key: &DeviceKey) -> Result<bool, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(key)))
            .condition_expression("attribute_not_exists(key_id)")
            .send()
            .await;
        written(&self.table, result)
    }

    async fn get(&self, key_id: &str) -> Result<Option<DeviceKey>, TableError> {
        let item = get_item(&self.client, &self.table, [("key_id", s(key_id))]).await?;
        Ok(item.as_ref().and_then(Self::key_of))
    }

    async fn list(&self, limit: usize, after: Option<&str>) -> Result<Page<DeviceKey>, TableError> {
        let read = Self::key_of;
        scan_page(&self.client, &self.table, "key_id", (limit, after), read, |k| &k.key_id).await
    }

    async fn revoke(&self, key_id: &str, now_ms: i64) -> Result<bool, TableError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("key_id", s(key_id))
            .update_expression("SET revoked_at_ms = if_not_exists(revoked_at_ms, :now)")
            .condition_expression("attribute_exists(key_id)")
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        written(&self.table, result)
    }
}
