//! [`QuotaCounter`] on DynamoDB: one item per key, `requests` raised by an
//! atomic `ADD` under the condition that the amount still fits, TTL `expires_at`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;

use super::{get_n, is_condition_failure, n, s, table_error};
use crate::ports::TableError;
use crate::ports::quota::QuotaCounter;

#[derive(Clone, Debug)]
pub struct DynamoQuotaCounter {
    client: Client,
    table: String,
}

impl DynamoQuotaCounter {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }
}

impl QuotaCounter for DynamoQuotaCounter {
    async fn take(&self, key: &str, amount: u32, limit: u32, expires_at_s: i64) -> Result<Option<u32>, TableError> {
        let Some(room) = limit.checked_sub(amount) else {
            return Ok(None);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("key", s(key))
            .update_expression("ADD requests :amount SET expires_at = :expires")
            .condition_expression("attribute_not_exists(requests) OR requests <= :room")
            .expression_attribute_values(":amount", n(amount))
            .expression_attribute_values(":room", n(room))
            .expression_attribute_values(":expires", n(expires_at_s))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let count = out.attributes().and_then(|a| get_n(a, "requests"));
                count.map(Some).ok_or_else(|| TableError {
                    table: self.table.clone(),
                    message: "the update returned no request count".into(),
                })
            }
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(table_error(&self.table, e)),
        }
    }
}
