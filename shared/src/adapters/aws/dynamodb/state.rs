//! [`LatestStateStore`] on DynamoDB: one item per vehicle, replaced only by newer telemetry.

use aws_sdk_dynamodb::Client;

use super::{Item, batch_get, get_item, get_n, get_s, n, s, scan_page, written};
use crate::domain::device_id::DeviceId;
use crate::domain::measure::Measure;
use crate::domain::telemetry::Telemetry;
use crate::format::telemetry::RECEIVED_AT;
use crate::ports::state::{LatestState, LatestStateStore};
use crate::ports::{Page, TableError};

#[derive(Clone, Debug)]
pub struct DynamoStateTable {
    client: Client,
    table: String,
}

impl DynamoStateTable {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    fn item(t: &Telemetry, now_ms: i64) -> Item {
        let mut item = Item::new();
        item.insert("vehicle_id".into(), s(t.vehicle_id.as_str()));
        item.insert(
            "ts".into(),
            s(t.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        item.insert("ts_us".into(), n(t.ts_us()));
        item.insert("seq".into(), n(t.seq));
        for m in Measure::REQUIRED {
            item.insert(m.name().into(), n(t.value(m)));
        }
        if let Some(at) = t.received_at_ms {
            item.insert("received_at_ms".into(), n(at));
        }
        item.insert("updated_at_ms".into(), n(now_ms));
        let extra = t.extra_with_optional();
        if !extra.is_empty() {
            item.insert("extra".into(), s(serde_json::Value::Object(extra).to_string()));
        }
        item
    }

    pub(crate) fn state_of(item: &Item) -> Option<LatestState> {
        let mut json = serde_json::Map::new();
        json.insert("v".into(), 1.into());
        json.insert("vehicle_id".into(), get_s(item, "vehicle_id")?.into());
        json.insert("ts".into(), get_s(item, "ts")?.into());
        json.insert("seq".into(), get_n::<u64>(item, "seq")?.into());
        for m in Measure::REQUIRED {
            json.insert(
                m.name().into(),
                serde_json::Number::from_f64(get_n::<f64>(item, m.name())?)?.into(),
            );
        }
        if let Some(at) = get_n::<i64>(item, "received_at_ms") {
            json.insert(RECEIVED_AT.into(), at.into());
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
            updated_at_ms: get_n(item, "updated_at_ms")?,
        })
    }
}

impl LatestStateStore for DynamoStateTable {
    async fn put_if_newer(&self, t: &Telemetry, now_ms: i64) -> Result<bool, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(t, now_ms)))
            .condition_expression("attribute_not_exists(vehicle_id) OR ts_us < :ts_us")
            .expression_attribute_values(":ts_us", n(t.ts_us()))
            .send()
            .await;
        written(&self.table, result)
    }

    async fn get(&self, vehicle: &DeviceId) -> Result<Option<LatestState>, TableError> {
        let item = get_item(&self.client, &self.table, [("vehicle_id", s(vehicle.as_str()))]).await?;
        Ok(item.as_ref().and_then(Self::state_of))
    }

    async fn get_many(&self, vehicles: &[DeviceId]) -> Result<Vec<LatestState>, TableError> {
        let unique: std::collections::BTreeSet<&DeviceId> = vehicles.iter().collect();
        let keys = unique
            .into_iter()
            .map(|v| Item::from([("vehicle_id".to_string(), s(v.as_str()))]))
            .collect();
        let states: std::collections::HashMap<DeviceId, LatestState> = batch_get(&self.client, &self.table, keys, None)
            .await?
            .iter()
            .filter_map(Self::state_of)
            .map(|state| (state.telemetry.vehicle_id.clone(), state))
            .collect();
        Ok(vehicles.iter().filter_map(|v| states.get(v).cloned()).collect())
    }

    async fn list(&self, limit: usize, after: Option<&str>) -> Result<Page<LatestState>, TableError> {
        let (read, key) = (Self::state_of, "vehicle_id");
        scan_page(&self.client, &self.table, key, (limit, after), read, |state| {
            state.telemetry.vehicle_id.as_str()
        })
        .await
    }
}
