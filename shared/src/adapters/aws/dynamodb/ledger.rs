//! [`Ledger`] on DynamoDB: one item per (vehicle, seq), expiring after a week.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;

use super::{Item, get_n, get_s, n, s, table_error, written};
use crate::domain::vehicle::VehicleId;
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

    async fn read_claim(&self, vehicle: &VehicleId, seq: u64) -> Result<Option<ExistingClaim>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("vehicle_id", s(vehicle.as_str()))
            .key("seq", n(seq))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(out.item().and_then(|item| {
            Some(ExistingClaim {
                archive_key: get_s(item, "archive_key")?.to_string(),
                claimed_at_ms: get_n(item, "claimed_at_ms")?,
            })
        }))
    }

    fn claim_item(vehicle: &VehicleId, seq: u64, archive_key: &str, now_ms: i64) -> Item {
        HashMap::from([
            ("vehicle_id".to_string(), s(vehicle.as_str())),
            ("seq".to_string(), n(seq)),
            ("archive_key".to_string(), s(archive_key)),
            ("claimed_at_ms".to_string(), n(now_ms)),
            ("expires_at".to_string(), n(now_ms / 1000 + LEDGER_TTL_S)),
        ])
    }
}

impl Ledger for DynamoLedger {
    async fn claim(&self, vehicle: &VehicleId, seq: u64, archive_key: &str, now_ms: i64) -> Result<Claim, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::claim_item(vehicle, seq, archive_key, now_ms)))
            .condition_expression("attribute_not_exists(vehicle_id) OR archive_key = :key")
            .expression_attribute_values(":key", s(archive_key))
            .send()
            .await;
        if written(&self.table, result)? {
            return Ok(Claim::Claimed);
        }
        Ok(Claim::Taken(match self.read_claim(vehicle, seq).await? {
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
        vehicle: &VehicleId,
        seq: u64,
        old: &ExistingClaim,
        archive_key: &str,
        now_ms: i64,
    ) -> Result<bool, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::claim_item(vehicle, seq, archive_key, now_ms)))
            .condition_expression("attribute_not_exists(vehicle_id) OR (archive_key = :old AND claimed_at_ms = :at)")
            .expression_attribute_values(":old", s(&old.archive_key))
            .expression_attribute_values(":at", n(old.claimed_at_ms))
            .send()
            .await;
        written(&self.table, result)
    }
}
