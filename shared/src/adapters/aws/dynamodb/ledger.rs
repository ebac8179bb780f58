//! [`Ledger`] on DynamoDB: one item per (stream, seq), expiring after a week;
//! the key attribute keeps its first name, `vehicle_id`, for a table already deployed.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;

use super::{Item, batch_get, get_item, get_n, get_s, n, s, written};
use crate::ports::TableError;
use crate::ports::ledger::{Claim, ExistingClaim, Ledger};

/// How long the ledger remembers a message: longer than any redelivery.
const LEDGER_TTL_S: i64 = 7 * 24 * 3600;

#[derive(Clone, Debug)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    async fn read_claim(&self, stream: &str, seq: u64) -> Result<Option<ExistingClaim>, TableError> {
        let item = get_item(&self.client, &self.table, [("vehicle_id", s(stream)), ("seq", n(seq))]).await?;
        Ok(item.as_ref().and_then(|item| {
            Some(ExistingClaim {
                archive_key: get_s(item, "archive_key")?.to_string(),
                claimed_at_ms: get_n(item, "claimed_at_ms")?,
            })
        }))
    }

    fn claim_item(stream: &str, seq: u64, archive_key: &str, now_ms: i64) -> Item {
        HashMap::from([
            ("vehicle_id".to_string(), s(stream)),
            ("seq".to_string(), n(seq)),
            ("archive_key".to_string(), s(archive_key)),
            ("claimed_at_ms".to_string(), n(now_ms)),
            ("expires_at".to_string(), n(now_ms / 1000 + LEDGER_TTL_S)),
        ])
    }
}

impl Ledger for DynamoLedger {
    async fn claim(&self, stream: &str, seq: u64, archive_key: &str, now_ms: i64) -> Result<Claim, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::claim_item(stream, seq, archive_key, now_ms)))
            .condition_expression("attribute_not_exists(vehicle_id) OR archive_key = :key")
            .expression_attribute_values(":key", s(archive_key))
            .send()
            .await;
        if written(&self.table, result)? {
            return Ok(Claim::Claimed);
        }
        Ok(Claim::Taken(match self.read_claim(stream, seq).await? {
            Some(existing) => existing,
            // Expired between the two requests: stale at once, so the caller takes it over.
            None => ExistingClaim {
                archive_key: String::new(),
                claimed_at_ms: 0,
            },
        }))
    }

    async fn reclaim(
        &self,
        stream: &str,
        seq: u64,
        old: &ExistingClaim,
        archive_key: &str,
        now_ms: i64,
    ) -> Result<bool, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::claim_item(stream, seq, archive_key, now_ms)))
            .condition_expression("attribute_not_exists(vehicle_id) OR (archive_key = :old AND claimed_at_ms = :at)")
            .expression_attribute_values(":old", s(&old.archive_key))
            .expression_attribute_values(":at", n(old.claimed_at_ms))
            .send()
            .await;
        written(&self.table, result)
    }

    async fn claimed(&self, stream: &str, seqs: &[u64]) -> Result<Vec<bool>, TableError> {
        let keys: Vec<Item> = seqs
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|seq| HashMap::from([("vehicle_id".to_string(), s(stream)), ("seq".to_string(), n(seq))]))
            .collect();
        let found: HashSet<u64> = batch_get(&self.client, &self.table, keys, Some("seq"))
            .await?
            .iter()
            .filter_map(|item| get_n::<u64>(item, "seq"))
            .collect();
        Ok(seqs.iter().map(|seq| found.contains(seq)).collect())
    }
}
