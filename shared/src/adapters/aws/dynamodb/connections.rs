//! [`ConnectionStore`] on DynamoDB: one item per connection, TTL `expires_at`.
//! The subscription is `fleet` or a JSON list of vehicle ids; the caller's
//! groups a JSON list. One more item, [`VERSION_ID`], counts the changes
//! (see [`ConnectionStore::version`]).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;

use super::{Item, get_item, get_n, get_s, n, s, table_error, written};

/// The key of the item that counts changes: no connection id API Gateway
/// gives starts with `#`.
const VERSION_ID: &str = "#version";
use crate::domain::access::Caller;
use crate::domain::device_id::DeviceId;
use crate::ports::TableError;
use crate::ports::live::{Connection, ConnectionStore, Subscription};

#[derive(Clone, Debug)]
pub struct DynamoConnectionStore {
    client: Client,
    table: String,
}

impl DynamoConnectionStore {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    /// Counts a change, after it is made: a reader that sees the new
    /// version lists the change. Failing here fails the change's caller,
    /// whose retry counts it again (a count too many only costs a list).
    async fn changed(&self) -> Result<(), TableError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("connection_id", s(VERSION_ID))
            .update_expression("ADD version :one")
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(())
    }

    fn item(c: &Connection) -> Item {
        let mut item = HashMap::from([
            ("connection_id".to_string(), s(&c.id)),
            ("connected_at_ms".to_string(), n(c.connected_at_ms)),
            ("expires_at".to_string(), n(c.expires_at_s)),
        ]);
        if let Some(caller) = &c.caller {
            item.insert("subject".into(), s(&caller.subject));
            item.insert("groups".into(), s(serde_json::json!(caller.groups).to_string()));
        }
        if let Some(sub) = &c.subscription {
            item.insert("subscription".into(), s(subscription_text(sub)));
        }
        item
    }

    fn connection_of(item: &Item) -> Option<Connection> {
        let caller = get_s(item, "subject").map(|subject| Caller {
            subject: subject.to_string(),
            groups: get_s(item, "groups")
                .and_then(|g| serde_json::from_str::<BTreeSet<String>>(g).ok())
                .unwrap_or_default(),
        });
        Some(Connection {
            id: get_s(item, "connection_id")?.to_string(),
            caller,
            subscription: get_s(item, "subscription").and_then(parse_subscription),
            connected_at_ms: get_n(item, "connected_at_ms")?,
            expires_at_s: get_n(item, "expires_at")?,
        })
    }
}

fn subscription_text(sub: &Subscription) -> String {
    match sub {
        Subscription::Fleet => "fleet".to_string(),
        Subscription::Vehicles(ids) => serde_json::json!(ids).to_string(),
    }
}

fn parse_subscription(text: &str) -> Option<Subscription> {
    if text == "fleet" {
        return Some(Subscription::Fleet);
    }
    let ids: Vec<String> = serde_json::from_str(text).ok()?;
    Some(Subscription::Vehicles(
        ids.into_iter().filter_map(|id| DeviceId::new(id).ok()).collect(),
    ))
}

impl ConnectionStore for DynamoConnectionStore {
    async fn put(&self, connection: &Connection) -> Result<(), TableError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(connection)))
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        self.changed().await
    }

    async fn get(&self, id: &str) -> Result<Option<Connection>, TableError> {
        let item = get_item(&self.client, &self.table, [("connection_id", s(id))]).await?;
        Ok(item.as_ref().and_then(Self::connection_of))
    }

    async fn subscribe(&self, id: &str, subscription: Option<&Subscription>) -> Result<bool, TableError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("connection_id", s(id))
            .condition_expression("attribute_exists(connection_id)");
        let request = match subscription {
            Some(sub) => request
                .update_expression("SET subscription = :s")
                .expression_attribute_values(":s", s(subscription_text(sub))),
            None => request.update_expression("REMOVE subscription"),
        };
        let found = written(&self.table, request.send().await)?;
        if found {
            self.changed().await?;
        }
        Ok(found)
    }

    async fn delete(&self, id: &str) -> Result<(), TableError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("connection_id", s(id))
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        self.changed().await
    }

    async fn list(&self) -> Result<Vec<Connection>, TableError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| table_error(&self.table, e))?;
            out.extend(page.items().iter().filter_map(Self::connection_of));
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(out),
            }
        }
    }

    async fn version(&self) -> Result<u64, TableError> {
        // Strongly consistent: a change made just before is seen.
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("connection_id", s(VERSION_ID))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(out.item().and_then(|item| get_n::<u64>(item, "version")).unwrap_or(0))
    }
}
