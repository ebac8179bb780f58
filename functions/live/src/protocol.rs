//! The live stream's protocol, version 1: JSON text messages both ways
//! (`docs/live-protocol.md` is the reference for clients).
//!
//! Client to server, each with an `action`:
//! - `{"action":"subscribe","fleet":true}` or `{"action":"subscribe","vehicles":["veh-001"]}`
//! - `{"action":"unsubscribe"}`, `{"action":"ping"}`
//!
//! Server to client, each with a `type` and `v`: `subscribed`,
//! `unsubscribed`, `pong`, `update` (`states` and `alerts`), `error`
//! (`code`, `message`, `field`). A message the server cannot use is
//! answered with an error; the connection stays open.

use std::collections::BTreeSet;

use canopy::domain::alert::Alert;
use canopy::domain::device_id::DeviceId;
use canopy::ports::live::Subscription;
use canopy::ports::state::LatestState;
use canopy::runtime::text::truncate_chars;
use serde_json::{Value, json};

pub const VERSION: u64 = 1;
/// The longest message a client may send.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// The most vehicles one subscription may name (the fleet is `fleet`).
pub const MAX_VEHICLES: usize = 100;
/// The largest message the server sends: API Gateway's WebSocket API posts
/// at most 128 KB, so an update past this is split in several.
pub const MAX_PUSH_BYTES: usize = 120 * 1024;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// `snapshot`: whether the current states come first (`"snapshot": false`
    /// skips them, for a client that reads them from the query API anyway).
    Subscribe {
        subscription: Subscription,
        snapshot: bool,
    },
    Unsubscribe,
    Ping,
}

/// Why a client message was not used: sent back as an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
}

fn error(code: &'static str, field: Option<&'static str>, message: impl Into<String>) -> ProtocolError {
    ProtocolError {
        code,
        message: message.into(),
        field,
    }
}

/// A client message, or what is wrong with it.
pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(error(
            "too_large",
            None,
            format!("a message is at most {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| error("bad_json", None, format!("not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(error("bad_message", None, "a message is a JSON object with an action"));
    };
    let action = object
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| error("bad_message", Some("action"), "the message has no action (a string)"))?;
    match action {
        "ping" => Ok(ClientMessage::Ping),
        "unsubscribe" => Ok(ClientMessage::Unsubscribe),
        "subscribe" => {
            let snapshot = match object.get("snapshot") {
                None => true,
                Some(Value::Bool(snapshot)) => *snapshot,
                Some(_) => {
                    return Err(error("bad_subscription", Some("snapshot"), "snapshot is true or false"));
                }
            };
            let subscription = subscription(&object)?;
            Ok(ClientMessage::Subscribe { subscription, snapshot })
        }
        other => Err(error(
            "unknown_action",
            Some("action"),
            format!(
                "no action {:?} (subscribe, unsubscribe, ping)",
                truncate_chars(other, 40)
            ),
        )),
    }
}

fn subscription(object: &serde_json::Map<String, Value>) -> Result<Subscription, ProtocolError> {
    match (object.get("fleet"), object.get("vehicles")) {
        (Some(Value::Bool(true)), None) => Ok(Subscription::Fleet),
        (None, Some(Value::Array(ids))) => {
            if ids.is_empty() || ids.len() > MAX_VEHICLES {
                return Err(error(
                    "bad_subscription",
                    Some("vehicles"),
                    format!("name 1 to {MAX_VEHICLES} vehicles, or subscribe to the fleet"),
                ));
            }
            let mut vehicles = BTreeSet::new();
            for id in ids {
                let id = id
                    .as_str()
                    .ok_or_else(|| error("bad_subscription", Some("vehicles"), "vehicle ids are strings"))?;
                let id = DeviceId::new(id).map_err(|e| error("bad_subscription", Some("vehicles"), e.to_string()))?;
                vehicles.insert(id);
            }
            Ok(Subscription::Vehicles(vehicles))
        }
        _ => Err(error(
            "bad_subscription",
            Some("vehicles"),
            "subscribe with \"fleet\": true or \"vehicles\": [ids], not both",
        )),
    }
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage<'a> {
    Subscribed(&'a Subscription),
    Unsubscribed,
    Pong,
    /// Every change of the interval for the client's subscription: each
    /// vehicle's newest state and every alert, oldest first.
    Update {
        states: &'a [LatestState],
        alerts: &'a [Alert],
    },
    Error(&'a ProtocolError),
}

impl ServerMessage<'_> {
    pub fn to_text(&self) -> String {
        let body = match self {
            Self::Subscribed(Subscription::Fleet) => json!({"type": "subscribed", "fleet": true}),
            Self::Subscribed(Subscription::Vehicles(ids)) => json!({"type": "subscribed", "vehicles": ids}),
            Self::Unsubscribed => json!({"type": "unsubscribed"}),
            Self::Pong => json!({"type": "pong"}),
            Self::Update { states, alerts } => json!({
                "type": "update",
                "states": states.iter().map(LatestState::to_json).collect::<Vec<_>>(),
                "alerts": alerts,
            }),
            Self::Error(e) => {
                let mut v = json!({"type": "error", "code": e.code, "message": e.message});
                if let Some(field) = e.field {
                    v["field"] = json!(field);
                }
                v
            }
        };
        with_version(body)
    }
}

fn with_version(mut body: Value) -> String {
    body["v"] = json!(VERSION);
    body.to_string()
}

/// The `update` messages that carry `states` and `alerts`, each at most
/// [`MAX_PUSH_BYTES`]: one when they fit, more when not (each complete in
/// itself). A state or alert too large for any message is not pushed: an
/// `error` says which and where to read it. `partial` marks a snapshot that
/// does not hold every state the subscription covers.
pub fn updates(states: &[LatestState], alerts: &[Alert], partial: bool) -> Vec<String> {
    let envelope = |states: Vec<Value>, alerts: Vec<Value>| {
        let mut body = json!({"type": "update", "states": states, "alerts": alerts});
        if partial {
            body["partial"] = json!(true);
        }
        with_version(body)
    };
    let overhead = envelope(Vec::new(), Vec::new()).len();
    let mut out = Vec::new();
    let (mut held_states, mut held_alerts, mut size) = (Vec::new(), Vec::new(), overhead);
    let items = states
        .iter()
        .map(|s| (true, s.telemetry.vehicle_id.as_str(), s.to_json()))
        .chain(alerts.iter().map(|a| (false, a.vehicle_id.as_str(), json!(a))));
    for (is_state, vehicle, item) in items {
        let len = item.to_string().len() + 1;
        if overhead + len > MAX_PUSH_BYTES {
            let what = if is_state { "state" } else { "alert" };
            let read = if is_state {
                format!("GET /vehicles/{vehicle}")
            } else {
                format!("GET /vehicles/{vehicle}/alerts")
            };
            let e = error(
                "too_large",
                None,
                format!(
                    "{vehicle}'s {what} is larger than a push may be ({MAX_PUSH_BYTES} bytes); read it with {read}"
                ),
            );
            out.push(ServerMessage::Error(&e).to_text());
            continue;
        }
        if size + len > MAX_PUSH_BYTES {
            out.push(envelope(
                std::mem::take(&mut held_states),
                std::mem::take(&mut held_alerts),
            ));
            size = overhead;
        }
        size += len;
        if is_state {
            held_states.push(item);
        } else {
            held_alerts.push(item);
        }
    }
    if !held_states.is_empty() || !held_alerts.is_empty() || out.is_empty() {
        out.push(envelope(held_states, held_alerts));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_parse_and_bad_messages_say_what_is_wrong() {
        assert_eq!(
            parse(r#"{"action":"subscribe","fleet":true}"#),
            Ok(ClientMessage::Subscribe {
                subscription: Subscription::Fleet,
                snapshot: true
            })
        );
        assert_eq!(
            parse(r#"{"action":"subscribe","fleet":true,"snapshot":false}"#),
            Ok(ClientMessage::Subscribe {
                subscription: Subscription::Fleet,
                snapshot: false
            })
        );
        let one = parse(r#"{"action":"subscribe","vehicles":["veh-001","veh-001"]}"#).unwrap();
        assert_eq!(
            one,
            ClientMessage::Subscribe {
                subscription: Subscription::Vehicles([DeviceId::new("veh-001").unwrap()].into()),
                snapshot: true
            }
        );
        assert_eq!(parse(r#"{"action":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(parse(r#"{"action":"unsubscribe"}"#), Ok(ClientMessage::Unsubscribe));
        for (text, code, field) in [
            ("hello", "bad_json", None),
            ("[1]", "bad_message", None),
            (r#"{"act":1}"#, "bad_message", Some("action")),
            (r#"{"action":"dance"}"#, "unknown_action", Some("action")),
            (r#"{"action":"subscribe"}"#, "bad_subscription", Some("vehicles")),
            (
                r#"{"action":"subscribe","fleet":true,"snapshot":"no"}"#,
                "bad_subscription",
                Some("snapshot"),
            ),
            (
                r#"{"action":"subscribe","vehicles":[]}"#,
                "bad_subscription",
                Some("vehicles"),
            ),
            (
                r#"{"action":"subscribe","vehicles":["a/b"]}"#,
                "bad_subscription",
                Some("vehicles"),
            ),
            (
                r#"{"action":"subscribe","fleet":true,"vehicles":["x"]}"#,
                "bad_subscription",
                Some("vehicles"),
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!((e.code, e.field), (code, field), "{text}: {e}");
        }
        assert_eq!(parse(&" ".repeat(MAX_MESSAGE_BYTES + 1)).unwrap_err().code, "too_large");
    }

    #[test]
    fn large_updates_are_split_and_what_cannot_be_pushed_is_named() {
        use canopy::adapters::contract::telemetry;
        let state = |id: &str, extra: usize| {
            let mut t = telemetry(&DeviceId::new(id).unwrap(), 1, 0);
            t.extra.insert("note".into(), json!("x".repeat(extra)));
            LatestState {
                telemetry: t,
                updated_at_ms: 1,
            }
        };
        let states: Vec<LatestState> = (0..300).map(|i| state(&format!("veh-{i:03}"), 1_000)).collect();
        let texts = updates(&states, &[], true);
        assert!(texts.len() >= 3, "{} messages", texts.len());
        let mut seen = 0;
        for text in &texts {
            assert!(text.len() <= MAX_PUSH_BYTES, "{}", text.len());
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                (v["type"].as_str(), v["partial"].as_bool()),
                (Some("update"), Some(true))
            );
            seen += v["states"].as_array().unwrap().len();
        }
        assert_eq!(seen, 300, "every state in one message or another");
        let texts = updates(&[state("veh-big", MAX_PUSH_BYTES), state("veh-001", 10)], &[], false);
        let v: Vec<Value> = texts.iter().map(|t| serde_json::from_str(t).unwrap()).collect();
        assert_eq!(v[0]["code"], "too_large");
        assert!(
            v[0]["message"].as_str().unwrap().contains("GET /vehicles/veh-big"),
            "{}",
            v[0]
        );
        assert_eq!(v[1]["states"][0]["vehicle_id"], "veh-001");
        assert_eq!(v[1].get("partial"), None);
        let empty: Value = serde_json::from_str(&updates(&[], &[], false)[0]).unwrap();
        assert_eq!(
            empty,
            json!({"type": "update", "v": VERSION, "states": [], "alerts": []})
        );
    }

    #[test]
    fn every_server_message_carries_its_type_and_version() {
        let e = error("bad_json", None, "not JSON");
        for (message, kind) in [
            (ServerMessage::Pong, "pong"),
            (ServerMessage::Unsubscribed, "unsubscribed"),
            (ServerMessage::Subscribed(&Subscription::Fleet), "subscribed"),
            (ServerMessage::Error(&e), "error"),
            (
                ServerMessage::Update {
                    states: &[],
                    alerts: &[],
                },
                "update",
            ),
        ] {
            let v: Value = serde_json::from_str(&message.to_text()).unwrap();
            assert_eq!((v["type"].as_str(), v["v"].as_u64()), (Some(kind), Some(VERSION)));
        }
    }
}
