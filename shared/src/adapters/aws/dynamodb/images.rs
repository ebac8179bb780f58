//! Items as a table's stream carries them (its `NewImage`), in DynamoDB's
//! JSON (`{"vehicle_id": {"S": "veh-001"}, "seq": {"N": "42"}}`): the same
//! items the adapters write, read by the same code.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::{DynamoAlertLog, DynamoStateTable, Item};
use crate::domain::alert::Alert;
use crate::ports::state::LatestState;

/// An item from DynamoDB's JSON; `None` for what is not an item.
pub fn item_from_json(image: &Value) -> Option<Item> {
    image
        .as_object()?
        .iter()
        .map(|(name, value)| Some((name.clone(), attribute(value)?)))
        .collect()
}

fn attribute(value: &Value) -> Option<AttributeValue> {
    let (kind, inner) = value.as_object()?.iter().next()?;
    Some(match kind.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_string()),
        "N" => AttributeValue::N(inner.as_str()?.to_string()),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "L" => AttributeValue::L(inner.as_array()?.iter().map(attribute).collect::<Option<_>>()?),
        "M" => AttributeValue::M(
            inner
                .as_object()?
                .iter()
                .map(|(k, v)| Some((k.clone(), attribute(v)?)))
                .collect::<Option<HashMap<_, _>>>()?,
        ),
        _ => return None,
    })
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// A latest-state item's state.
pub fn state_from_image(image: &Value) -> Option<LatestState> {
    DynamoStateTable::state_of(&item_from_json(image)?)
}

/// An alert-log item's alert; `None` for the log's other items (cooldown windows).
pub fn alert_from_image(image: &Value) -> Option<Alert> {
    let item = item_from_json(image)?;
    let sk = item.get("sk").and_then(|v| v.as_s().ok())?;
    if !sk.starts_with("alert#") {
        return None;
    }
    // The live stream follows vehicles; a device's alerts are not theirs.
    DynamoAlertLog::alert_of(&item).filter(|a| a.kind.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_in_dynamodbs_json_become_items() {
        let image = serde_json::json!({
            "vehicle_id": {"S": "veh-001"}, "seq": {"N": "42"}, "ok": {"BOOL": true}, "gone": {"NULL": true},
            "tags": {"SS": ["a", "b"]}, "nested": {"M": {"x": {"L": [{"N": "1"}, {"S": "y"}]}}}
        });
        let item = item_from_json(&image).unwrap();
        assert_eq!(item["seq"], AttributeValue::N("42".into()));
        assert_eq!(
            item["nested"].as_m().unwrap()["x"].as_l().unwrap()[1],
            AttributeValue::S("y".into())
        );
        assert!(item_from_json(&serde_json::json!({"x": {"Z": 1}})).is_none());
        assert!(item_from_json(&serde_json::json!([1])).is_none());
        let cooldown = serde_json::json!({"vehicle_id": {"S": "veh-001"}, "sk": {"S": "cooldown#over-temperature"}});
        assert_eq!(alert_from_image(&cooldown), None);
    }
}
