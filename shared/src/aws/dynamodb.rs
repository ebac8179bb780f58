//! The tables on DynamoDB: latest state, the archive ledger, alerts.
//!
//! - state: key `vehicle_id`; one item per vehicle, written only by newer telemetry.
//! - ledger: keys `vehicle_id`, `seq`; which archive object holds a message; TTL `expires_at`.
//! - alerts: keys `vehicle_id`, `sk`; `alert#<ts µs>#<rule>` items (the log,
//!   newest first, TTL `expires_at`) and `cooldown#<rule>` items (the windows).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::error_text;
use crate::tables::{Alert, AlertTables, Claim, ExistingClaim, LatestState, Page, TableError, TelemetryTables};
use crate::telemetry::{MEASURES, Telemetry};
use crate::vehicle::VehicleId;

/// How long the ledger remembers a message: longer than any redelivery.
const LEDGER_TTL_S: i64 = 7 * 24 * 3600;

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n<T: std::str::FromStr>(item: &Item, key: &str) -> Option<T> {
    item.get(key).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

fn table_error<E: std::error::Error>(table: &str, e: E) -> TableError {
    TableError {
        table: table.to_string(),
        message: error_text(&e),
    }
}

pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

/// Latest state and the archive ledger.
#[derive(Clone, Debug)]
pub struct DynamoTelemetryTables {
    client: Client,
    state: String,
    ledger: String,
}

impl DynamoTelemetryTables {
    pub fn new(client: Client, state_table: &str, ledger_table: &str) -> Self {
        Self {
            client,
            state: state_table.to_string(),
            ledger: ledger_table.to_string(),
        }
    }

    fn state_item(t: &Telemetry, received_at_ms: Option<i64>, now_ms: i64) -> Item {
        let mut item = Item::new();
        item.insert("vehicle_id".into(), s(t.vehicle_id.as_str()));
        item.insert(
            "ts".into(),
            s(t.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        item.insert("ts_us".into(), n(t.ts_us()));
        item.insert("seq".into(), n(t.seq));
        for name in MEASURES {
            item.insert(name.into(), n(t.measure(name).unwrap_or_default()));
        }
        if let Some(at) = received_at_ms {
            item.insert("received_at_ms".into(), n(at));
        }
        item.insert("updated_at_ms".into(), n(now_ms));
        let extra: serde_json::Map<String, serde_json::Value> = t
            .extra
            .iter()
            .filter(|(k, _)| k.as_str() != "received_at")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !extra.is_empty() {
            item.insert("extra".into(), s(serde_json::Value::Object(extra).to_string()));
        }
        item
    }

    fn state_of(item: &Item) -> Option<LatestState> {
        let mut json = serde_json::Map::new();
        json.insert("v".into(), 1.into());
        json.insert("vehicle_id".into(), get_s(item, "vehicle_id")?.into());
        json.insert("ts".into(), get_s(item, "ts")?.into());
        json.insert("seq".into(), get_n::<u64>(item, "seq")?.into());
        for name in MEASURES {
            json.insert(
                name.into(),
                serde_json::Number::from_f64(get_n::<f64>(item, name)?)?.into(),
            );
        }
        if let Some(serde_json::Value::Object(extra)) = get_s(item, "extra").and_then(|e| serde_json::from_str(e).ok())
        {
            for (k, v) in extra {
                json.entry(k).or_insert(v);
            }
        }
        let telemetry = Telemetry::from_json(&serde_json::Value::Object(json)).ok()?;
        Some(LatestState {
            telemetry,
            received_at_ms: get_n(item, "received_at_ms"),
            updated_at_ms: get_n(item, "updated_at_ms")?,
        })
    }

    async fn read_claim(&self, vehicle: &VehicleId, seq: u64) -> Result<Option<ExistingClaim>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.ledger)
            .key("vehicle_id", s(vehicle.as_str()))
            .key("seq", n(seq))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| table_error(&self.ledger, e))?;
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

impl TelemetryTables for DynamoTelemetryTables {
    async fn put_latest_if_newer(
        &self,
        t: &Telemetry,
        received_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.state)
            .set_item(Some(Self::state_item(t, received_at_ms, now_ms)))
            .condition_expression("attribute_not_exists(vehicle_id) OR ts_us < :ts_us")
            .expression_attribute_values(":ts_us", n(t.ts_us()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(table_error(&self.state, e)),
        }
    }

    async fn latest(&self, vehicle: &VehicleId) -> Result<Option<LatestState>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.state)
            .key("vehicle_id", s(vehicle.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| table_error(&self.state, e))?;
        Ok(out.item().and_then(Self::state_of))
    }

    async fn list_latest(&self, limit: usize, after: Option<&str>) -> Result<Page<LatestState>, TableError> {
        let mut request = self
            .client
            .scan()
            .table_name(&self.state)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(after) = after {
            request = request.exclusive_start_key("vehicle_id", s(after));
        }
        let out = request.send().await.map_err(|e| table_error(&self.state, e))?;
        let mut items: Vec<LatestState> = out.items().iter().filter_map(Self::state_of).collect();
        items.sort_by(|a, b| a.telemetry.vehicle_id.cmp(&b.telemetry.vehicle_id));
        let next = out
            .last_evaluated_key()
            .and_then(|k| get_s(k, "vehicle_id"))
            .map(str::to_string);
        Ok(Page { items, next })
    }

    async fn claim(&self, vehicle: &VehicleId, seq: u64, archive_key: &str, now_ms: i64) -> Result<Claim, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.ledger)
            .set_item(Some(Self::claim_item(vehicle, seq, archive_key, now_ms)))
            .condition_expression("attribute_not_exists(vehicle_id) OR archive_key = :key")
            .expression_attribute_values(":key", s(archive_key))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(e) if is_condition_failure(&e) => match self.read_claim(vehicle, seq).await? {
                Some(existing) => Ok(Claim::Taken(existing)),
                // Expired between the two requests: try once more.
                None => Ok(Claim::Taken(ExistingClaim {
                    archive_key: String::new(),
                    claimed_at_ms: 0,
                })),
            },
            Err(e) => Err(table_error(&self.ledger, e)),
        }
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
            .table_name(&self.ledger)
            .set_item(Some(Self::claim_item(vehicle, seq, archive_key, now_ms)))
            .condition_expression("attribute_not_exists(vehicle_id) OR (archive_key = :old AND claimed_at_ms = :at)")
            .expression_attribute_values(":old", s(&old.archive_key))
            .expression_attribute_values(":at", n(old.claimed_at_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(table_error(&self.ledger, e)),
        }
    }
}

/// The alert log and the cooldown windows.
#[derive(Clone, Debug)]
pub struct DynamoAlertTables {
    client: Client,
    table: String,
}

fn alert_sk(alert: &Alert) -> String {
    format!("alert#{:020}#{}", alert.ts_us.max(0), alert.rule)
}

impl DynamoAlertTables {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    fn alert_of(item: &Item) -> Option<Alert> {
        Some(Alert {
            vehicle_id: VehicleId::new(get_s(item, "vehicle_id")?).ok()?,
            rule: get_s(item, "rule")?.to_string(),
            severity: get_s(item, "severity")?.to_string(),
            measure: get_s(item, "measure")?.to_string(),
            value: get_n(item, "value")?,
            comparison: get_s(item, "comparison")?.to_string(),
            threshold: get_n(item, "threshold")?,
            unit: get_s(item, "unit").unwrap_or_default().to_string(),
            ts: get_s(item, "ts")?.to_string(),
            ts_us: get_n(item, "ts_us")?,
            seq: get_n(item, "seq")?,
        })
    }
}

impl AlertTables for DynamoAlertTables {
    async fn claim_cooldown(&self, alert: &Alert, until_us: i64) -> Result<bool, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("vehicle_id", s(alert.vehicle_id.as_str()))
            .item("sk", s(format!("cooldown#{}", alert.rule)))
            .item("until_us", n(until_us))
            .item("alert_id", s(alert.id()))
            .condition_expression("attribute_not_exists(sk) OR until_us <= :ts OR alert_id = :id")
            .expression_attribute_values(":ts", n(alert.ts_us))
            .expression_attribute_values(":id", s(alert.id()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(table_error(&self.table, e)),
        }
    }

    async fn recorded(&self, alert: &Alert) -> Result<bool, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("vehicle_id", s(alert.vehicle_id.as_str()))
            .key("sk", s(alert_sk(alert)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(out.item().is_some())
    }

    async fn record(&self, alert: &Alert, expires_at_s: i64) -> Result<(), TableError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("vehicle_id", s(alert.vehicle_id.as_str()))
            .item("sk", s(alert_sk(alert)))
            .item("rule", s(&alert.rule))
            .item("severity", s(&alert.severity))
            .item("measure", s(&alert.measure))
            .item("value", n(alert.value))
            .item("comparison", s(&alert.comparison))
            .item("threshold", n(alert.threshold))
            .item("unit", s(&alert.unit))
            .item("ts", s(&alert.ts))
            .item("ts_us", n(alert.ts_us))
            .item("seq", n(alert.seq))
            .item("expires_at", n(expires_at_s))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| table_error(&self.table, e))
    }

    async fn alerts(
        &self,
        vehicle: &VehicleId,
        limit: usize,
        before_us: Option<i64>,
    ) -> Result<Vec<Alert>, TableError> {
        let upper = match before_us {
            Some(us) => format!("alert#{:020}", us.max(0)),
            None => "alert#~".to_string(),
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("vehicle_id = :v AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":v", s(vehicle.as_str()))
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
