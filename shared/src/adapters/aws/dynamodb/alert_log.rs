//! [`AlertLog`] on DynamoDB: `alert#<ts µs>#<rule>` items (the log, newest
//! first, TTL `expires_at`) and `cooldown#<rule>` items (the windows), keyed
//! by the alert's stream (a vehicle id or a device's `<kind>/<id>`) in the
//! key attribute that keeps its first name, `vehicle_id`.

use aws_sdk_dynamodb::Client;

use super::{Item, get_item, get_n, get_s, n, s, table_error, written};
use crate::domain::alert::{Alert, Comparison, Quantity, Severity};
use crate::domain::device_id::DeviceId;
use crate::domain::measure::Measure;
use crate::ports::TableError;
use crate::ports::alert_log::AlertLog;

#[derive(Clone, Debug)]
pub struct DynamoAlertLog {
    client: Client,
    table: String,
}

fn alert_sk(alert: &Alert) -> String {
    format!("alert#{:020}#{}", alert.ts_us.max(0), alert.rule)
}

impl DynamoAlertLog {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    pub(crate) fn alert_of(item: &Item) -> Option<Alert> {
        let kind = get_s(item, "kind").map(str::to_string);
        let stream = get_s(item, "vehicle_id")?;
        let id = match &kind {
            None => stream,
            Some(kind) => stream.strip_prefix(kind.as_str())?.strip_prefix('/')?,
        };
        let name = get_s(item, "measure")?;
        let measure = match &kind {
            None => Quantity::Measure(Measure::from_name(name)?),
            Some(_) => Quantity::Field {
                name: name.to_string(),
                unit: get_s(item, "unit").unwrap_or_default().to_string(),
                description: get_s(item, "description").unwrap_or_default().to_string(),
            },
        };
        Some(Alert {
            vehicle_id: DeviceId::new(id).ok()?,
            kind,
            rule: get_s(item, "rule")?.to_string(),
            severity: Severity::from_name(get_s(item, "severity")?)?,
            measure,
            value: get_n(item, "value")?,
            comparison: Comparison::from_symbol(get_s(item, "comparison")?)?,
            threshold: get_n(item, "threshold")?,
            ts: get_s(item, "ts")?.to_string(),
            ts_us: get_n(item, "ts_us")?,
            seq: get_n(item, "seq")?,
        })
    }
}

impl AlertLog for DynamoAlertLog {
    async fn claim_cooldown(&self, alert: &Alert, now_us: i64, until_us: i64) -> Result<bool, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("vehicle_id", s(alert.stream()))
            .item("sk", s(format!("cooldown#{}", alert.rule)))
            .item("until_us", n(until_us))
            .item("alert_id", s(alert.id()))
            .condition_expression("attribute_not_exists(sk) OR until_us <= :now OR alert_id = :id")
            .expression_attribute_values(":now", n(now_us))
            .expression_attribute_values(":id", s(alert.id()))
            .send()
            .await;
        written(&self.table, result)
    }

    async fn recorded(&self, alert: &Alert) -> Result<bool, TableError> {
        let key = [("vehicle_id", s(alert.stream())), ("sk", s(alert_sk(alert)))];
        Ok(get_item(&self.client, &self.table, key).await?.is_some())
    }

    async fn record(&self, alert: &Alert, expires_at_s: i64) -> Result<(), TableError> {
        let mut put = self.client.put_item();
        if let Some(kind) = &alert.kind {
            put = put
                .item("kind", s(kind))
                .item("description", s(alert.measure.description()));
        }
        put.table_name(&self.table)
            .item("vehicle_id", s(alert.stream()))
            .item("sk", s(alert_sk(alert)))
            .item("rule", s(&alert.rule))
            .item("severity", s(alert.severity.as_str()))
            .item("measure", s(alert.measure.name()))
            .item("value", n(alert.value))
            .item("comparison", s(alert.comparison.symbol()))
            .item("threshold", n(alert.threshold))
            .item("unit", s(alert.unit()))
            .item("ts", s(&alert.ts))
            .item("ts_us", n(alert.ts_us))
            .item("seq", n(alert.seq))
            .item("expires_at", n(expires_at_s))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| table_error(&self.table, e))
    }

    async fn alerts(&self, stream: &str, limit: usize, before_us: Option<i64>) -> Result<Vec<Alert>, TableError> {
        let upper = match before_us {
            Some(us) => format!("alert#{:020}", us.max(0)),
            None => "alert#~".to_string(),
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("vehicle_id = :v AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":v", s(stream))
            .expression_attribute_values(":lo", s("alert#"))
            .expression_attribute_values(":hi", s(upper))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(out
            .items()
            .iter()
            .filter_map(Self::alert_of)
            .filter(|a| before_us.is_none_or(|b| a.ts_us < b))
            .collect())
    }
}
