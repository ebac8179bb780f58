//! HTTP ingest, knowing nothing of HTTP servers or Lambda: a device key and
//! a body in; each message's fate, or why the whole request was refused, out.
//!
//! A request goes through, in order:
//! 1. **The key** ([`HttpIngest::authenticate`]): missing or malformed → 401,
//!    unknown or revoked → 403.
//!    Failed keys are counted per source address: past
//!    [`MAX_FAILURES_PER_MINUTE`] a source is answered 429 ([`HttpIngest::failed`]).
//! 2. **The body** ([`HttpIngest::ingest`]): one message or an array of up to
//!    [`MAX_MESSAGES`]; anything else → 400.
//! 3. **The key's rate** ([`HttpIngest::admit`]): messages per clock minute,
//!    whatever the batching, counted in a table every instance shares → 429
//!    when the request's messages do not fit. A message that names another
//!    device than the key's → 403 for the whole request, and nothing is queued.
//! 4. **Each message** is made what the IoT rule makes of an MQTT message
//!    (`topic_vehicle_id` the key's device, `received_at` the server's time)
//!    and validated by the same code the telemetry function runs. The valid
//!    ones go to the telemetry queue, so the archive, the latest state, the
//!    ledger and the alerts treat both ways in alike: a `(vehicle, seq)` the
//!    ledger holds already, or that the request holds twice, is a duplicate
//!    and is not queued again (and were it queued, the ledger would still
//!    keep it out of the archive).
//! 5. **Alerts**: a valid message that trips one of the vehicle kind's alert
//!    rules goes first to the alerts topic rule by Basic Ingest, as a
//!    vehicle's MQTT message does ([`AlertRoute`]), so both ways in raise the
//!    same alerts under the same cooldown.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use canopy::domain::alert::{self, Rule};
use canopy::domain::device_id::DeviceId;
use canopy::domain::device_key::{DeviceKey, PresentedKey};
use canopy::domain::rejection::Rejection;
use canopy::domain::telemetry::ClockBounds;
use canopy::domain::topic::BASIC_INGEST_PREFIX;
use canopy::format::telemetry::{Message, RECEIVED_AT, SERVER_FIELDS, TOPIC_VEHICLE_ID, VERSION_SAMPLES};
use canopy::ports::TableError;
use canopy::ports::keys::KeyStore;
use canopy::ports::ledger::Ledger;
use canopy::ports::messaging::DevicePublisher;
use canopy::ports::queue::MessageQueue;
use canopy::ports::quota::QuotaCounter;
use serde::Serialize;
use serde_json::{Map, Value};
use tracing::warn;

/// The most messages one request may carry.
pub const MAX_MESSAGES: usize = 500;
/// The largest body a request may carry: 500 messages of 2 KiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// The rate's window.
const WINDOW_S: i64 = 60;
/// Failed keys one source address may present a minute; past them it is
/// answered 429 without the key being looked up.
pub const MAX_FAILURES_PER_MINUTE: u32 = 20;

#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// How far a message's `ts` may be from the server's time.
    pub clock: ClockBounds,
    /// How long an instance trusts a key it read: a revoked key stops
    /// working within this long. Zero reads the table on every request.
    pub key_cache: Duration,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            clock: ClockBounds::default(),
            key_cache: Duration::from_secs(30),
        }
    }
}

/// Why a whole request was refused; nothing of it was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 401: no key, or text that cannot be a key.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: a key that is unknown or revoked, or a message of another device.
    #[error("{0}")]
    Forbidden(String),
    /// 429: the key's messages this minute are spent, or the source's failed keys.
    #[error("{reason}; retry in {retry_after_s} s")]
    RateLimited { reason: String, retry_after_s: u64 },
    /// 400: a body that is not JSON, too large, or not messages.
    #[error("{reason}")]
    BadBody { reason: String, field: Option<String> },
    /// 503: a table behind ingest failed; the request may be sent again.
    #[error("{0}")]
    Unavailable(String),
}

fn bad_body(reason: impl Into<String>) -> Refusal {
    Refusal::BadBody {
        reason: reason.into(),
        field: Some("body".into()),
    }
}

impl From<TableError> for Refusal {
    fn from(e: TableError) -> Self {
        Refusal::Unavailable(e.to_string())
    }
}

/// What became of one message of a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MessageResult {
    /// Queued for the telemetry function. `seq` is the message's (a v2
    /// message's: its first valid sample's); a v2 message also says how many
    /// samples were queued and which were refused.
    Accepted {
        seq: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        samples: Option<usize>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        rejected_samples: Vec<Rejection>,
    },
    /// Already received (by either way in), or earlier in this request: not queued again.
    Duplicate { seq: u64 },
    /// Invalid: never stored; sending it again will not help.
    Rejected {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
    /// Valid, but the queue did not take it: send it again.
    NotQueued { seq: u64, reason: String },
}

/// The answer to a request that was not refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestReport {
    pub device_id: DeviceId,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub not_queued: usize,
    /// One per message, in the body's order.
    pub results: Vec<MessageResult>,
}

/// Where a posted message that may alert goes: the alerts topic rule, by
/// Basic Ingest, which judges it as it judges a vehicle's MQTT message.
pub struct AlertRoute<P> {
    pub publisher: P,
    /// The alerts topic rule's name (`$aws/rules/<name>/…`).
    pub rule_name: String,
    /// The vehicle kind's alert rules with the stack's thresholds (those the
    /// topic rule's WHERE compares): a message that trips none is not sent.
    pub rules: Vec<Rule>,
}

impl<P: DevicePublisher> AlertRoute<P> {
    /// The topic the rule sees for `device`, with the Basic Ingest prefix.
    fn topic(&self, device: &DeviceId) -> String {
        format!("{BASIC_INGEST_PREFIX}{}/dt/canopy/{device}/bms", self.rule_name)
    }
}

/// The ingest service over its ports.
pub struct HttpIngest<K, Q, L, C, P> {
    pub keys: K,
    pub queue: Q,
    pub ledger: L,
    pub rate: C,
    pub alerts: AlertRoute<P>,
    pub options: IngestOptions,
    cache: Mutex<HashMap<String, (DeviceKey, Instant)>>,
}

impl<K: KeyStore, Q: MessageQueue, L: Ledger, C: QuotaCounter, P: DevicePublisher> HttpIngest<K, Q, L, C, P> {
    pub fn new(keys: K, queue: Q, ledger: L, rate: C, alerts: AlertRoute<P>, options: IngestOptions) -> Self {
        Self {
            keys,
            queue,
            ledger,
            rate,
            alerts,
            options,
            cache: Mutex::default(),
        }
    }

    /// Counts a failed key from `source` (an address); past
    /// [`MAX_FAILURES_PER_MINUTE`] the answer is 429 instead of `refusal`.
    pub async fn failed(&self, source: &str, now_s: i64, refusal: Refusal) -> Refusal {
        let window = now_s.div_euclid(WINDOW_S);
        let counter = format!("ingest-failed#{source}#{window}");
        match self
            .rate
            .take(&counter, 1, MAX_FAILURES_PER_MINUTE, (window + 2) * WINDOW_S)
            .await
        {
            Ok(Some(_)) => refusal,
            Ok(None) => Refusal::RateLimited {
                reason: format!("more than {MAX_FAILURES_PER_MINUTE} failed keys this minute from this address"),
                retry_after_s: (WINDOW_S - now_s.rem_euclid(WINDOW_S)) as u64,
            },
            Err(e) => {
                warn!(error = %e, "failed keys not counted");
                refusal
            }
        }
    }

    /// The key `presented` (a request's `x-api-key`), when it opens a key of the table.
    pub async fn authenticate(&self, presented: Option<&str>) -> Result<DeviceKey, Refusal> {
        let text = presented
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| Refusal::Unauthenticated("no device key: send it in the x-api-key header".into()))?;
        let presented = PresentedKey::parse(text).map_err(|e| Refusal::Unauthenticated(e.to_string()))?;
        match self.key_record(presented.key_id).await? {
            Some(record) if presented.matches(&record) => match record.revoked_at_ms {
                None => Ok(record),
                Some(_) => Err(Refusal::Forbidden(format!("device key {} is revoked", record.key_id))),
            },
            _ => Err(Refusal::Forbidden("unknown device key".into())),
        }
    }

    async fn key_record(&self, key_id: &str) -> Result<Option<DeviceKey>, Refusal> {
        let cached = self
            .lock_cache()
            .get(key_id)
            .filter(|(_, at)| at.elapsed() < self.options.key_cache)
            .map(|(key, _)| key.clone());
        if cached.is_some() {
            return Ok(cached);
        }
        let record = self.keys.get(key_id).await?;
        if let Some(record) = &record
            && !self.options.key_cache.is_zero()
        {
            let mut cache = self.lock_cache();
            // A key id is random: an instance meets few of them, but never let it grow without bound.
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert(key_id.to_string(), (record.clone(), Instant::now()));
        }
        Ok(record)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (DeviceKey, Instant)>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `messages` of `key` at `now_s` against its rate (messages a
    /// minute, however they are batched); all of them or none.
    pub async fn admit(&self, key: &DeviceKey, messages: u32, now_s: i64) -> Result<(), Refusal> {
        let window = now_s.div_euclid(WINDOW_S);
        let counter = format!("ingest#{}#{window}", key.key_id);
        // Kept a window past its end, then the table's TTL removes it.
        let expires_at_s = (window + 2) * WINDOW_S;
        let limit = key.rate_per_minute;
        match self.rate.take(&counter, messages, limit, expires_at_s).await? {
            Some(_) => Ok(()),
            None => Err(Refusal::RateLimited {
                reason: if messages > limit {
                    format!(
                        "this request holds {messages} messages and this key may send {limit} a minute: send fewer at a time"
                    )
                } else {
                    format!("this key's {limit} messages a minute do not hold this request's {messages} more")
                },
                retry_after_s: (WINDOW_S - now_s.rem_euclid(WINDOW_S)) as u64,
            }),
        }
    }

    /// Validates `body` as `key`'s device's telemetry, counts its messages
    /// against the key's rate, and queues what is valid and new.
    pub async fn ingest(&self, key: &DeviceKey, body: &[u8], now_ms: i64) -> Result<IngestReport, Refusal> {
        let now_s = now_ms.div_euclid(1000);
        let messages = match parse_body(body) {
            Ok(messages) => messages,
            Err(refusal) => {
                // A body that is not messages still costs one against the rate.
                self.admit(key, 1, now_s).await?;
                return Err(refusal);
            }
        };
        self.admit(key, messages.len() as u32, now_s).await?;
        let device = &key.device_id;
        check_all_of(&messages, device)?;
        let (mut results, valid) = self.check_each(&messages, device, now_ms);
        let new = self.drop_claimed(device, valid, &mut results).await;
        let queued = self.send_to_alerts(device, new, &mut results).await;
        self.send_to_queue(queued, &mut results).await;
        Ok(report(device.clone(), results))
    }

    /// Each message's result, and of each valid, new one its index into the
    /// results and what was checked; a seq the request holds twice is a duplicate.
    fn check_each(
        &self,
        messages: &[Value],
        device: &DeviceId,
        now_ms: i64,
    ) -> (Vec<MessageResult>, Vec<(usize, Checked)>) {
        let mut results = Vec::with_capacity(messages.len());
        let mut valid: Vec<(usize, Checked)> = Vec::new();
        let mut seen = HashSet::new();
        for m in messages {
            let checked = as_rule_would_deliver(m, device, now_ms)
                .and_then(|json| validate(json, self.options.clock, now_ms, &self.alerts.rules));
            match checked {
                Err(rejection) => results.push(MessageResult::Rejected {
                    reason: rejection.reason,
                    field: rejection.field,
                }),
                Ok(checked) if !seen.insert(checked.seq) => results.push(MessageResult::Duplicate { seq: checked.seq }),
                Ok(checked) => {
                    results.push(MessageResult::Accepted {
                        seq: checked.seq,
                        samples: checked.samples,
                        rejected_samples: checked.rejected_samples.clone(),
                    });
                    valid.push((results.len() - 1, checked));
                }
            }
        }
        (results, valid)
    }

    /// The valid messages the ledger does not hold yet; the others are
    /// duplicates: received before, by either way in.
    async fn drop_claimed(
        &self,
        device: &DeviceId,
        mut valid: Vec<(usize, Checked)>,
        results: &mut [MessageResult],
    ) -> Vec<(usize, Checked)> {
        let seqs: Vec<u64> = valid.iter().map(|(_, c)| c.seq).collect();
        match self.ledger.claimed(device.as_str(), &seqs).await {
            Ok(claimed) => {
                let mut flags = claimed.into_iter();
                valid.retain(|(i, c)| {
                    let duplicate = flags.next().unwrap_or(false);
                    if duplicate {
                        results[*i] = MessageResult::Duplicate { seq: c.seq };
                    }
                    !duplicate
                });
            }
            // Queued anyway: the telemetry function's ledger keeps them out of the archive.
            Err(e) => warn!(error = %e, "ledger unreadable; duplicates are left to the telemetry function"),
        }
        valid
    }

    /// Sends the alerting messages to the alerts rule; the messages to queue.
    ///
    /// To the alerts rule before the queue: a message the rule did not
    /// take is answered "send it again" and not queued, so the retry
    /// (not a duplicate then) reaches the rule; one the rule took twice
    /// raises its alert once, the cooldown's claim being the alert's own.
    async fn send_to_alerts(
        &self,
        device: &DeviceId,
        valid: Vec<(usize, Checked)>,
        results: &mut [MessageResult],
    ) -> Vec<(usize, Checked)> {
        let topic = self.alerts.topic(device);
        let mut queued = Vec::with_capacity(valid.len());
        for (i, checked) in valid {
            if checked.alerting
                && let Err(e) = self
                    .alerts
                    .publisher
                    .publish(&topic, checked.payload.clone().into_bytes())
                    .await
            {
                warn!(error = %e, seq = checked.seq, "not sent to the alerts rule");
                results[i] = MessageResult::NotQueued {
                    seq: checked.seq,
                    reason: "the alerts rule did not take it; send it again".into(),
                };
                continue;
            }
            queued.push((i, checked));
        }
        queued
    }

    /// Sends the messages to the telemetry queue; one it did not take is
    /// answered "send it again".
    async fn send_to_queue(&self, queued: Vec<(usize, Checked)>, results: &mut [MessageResult]) {
        let bodies: Vec<String> = queued.iter().map(|(_, c)| c.body.clone()).collect();
        for ((i, checked), sent) in queued.iter().zip(self.queue.send_all(&bodies).await) {
            if let Err(e) = sent {
                warn!(error = %e, seq = checked.seq, "not queued");
                results[*i] = MessageResult::NotQueued {
                    seq: checked.seq,
                    reason: "the telemetry queue did not take it; send it again".into(),
                };
            }
        }
    }
}

/// A message naming another device refuses the whole request: the key's
/// device may speak only for itself.
fn check_all_of(messages: &[Value], device: &DeviceId) -> Result<(), Refusal> {
    for (i, m) in messages.iter().enumerate() {
        if let Some(named) = m.get("vehicle_id").and_then(Value::as_str)
            && named != device.as_str()
        {
            return Err(Refusal::Forbidden(format!(
                "message {i} is telemetry of {named:?}; this key posts only for {device:?}"
            )));
        }
    }
    Ok(())
}

fn report(device_id: DeviceId, results: Vec<MessageResult>) -> IngestReport {
    let count = |f: fn(&MessageResult) -> bool| results.iter().filter(|r| f(r)).count();
    IngestReport {
        device_id,
        accepted: count(|r| matches!(r, MessageResult::Accepted { .. })),
        duplicates: count(|r| matches!(r, MessageResult::Duplicate { .. })),
        rejected: count(|r| matches!(r, MessageResult::Rejected { .. })),
        not_queued: count(|r| matches!(r, MessageResult::NotQueued { .. })),
        results,
    }
}

/// A message that passed validation, as the queue gets it.
struct Checked {
    /// The ledger's key of the message: its (first valid sample's) seq.
    seq: u64,
    /// For a v2 message, its valid samples.
    samples: Option<usize>,
    rejected_samples: Vec<Rejection>,
    /// As the queue gets it: with the device it came from and when.
    body: String,
    /// As the device sent it: what the alerts rule gets.
    payload: String,
    /// A valid sample trips one of the alert rules.
    alerting: bool,
}

/// A message as the telemetry function will judge it: a v1 message valid or
/// not; a v2 message valid when one sample is, its bad samples named.
fn validate(json: Value, clock: ClockBounds, now_ms: i64, rules: &[Rule]) -> Result<Checked, Rejection> {
    let v2 = json.get("v").and_then(Value::as_u64) == Some(VERSION_SAMPLES);
    let Message { samples, rejected } = Message::from_json(&json)?.within_clock(clock, now_ms);
    let Some(first) = samples.first() else {
        return Err(rejected.into_iter().next().unwrap_or_else(|| Rejection {
            reason: "the message holds no valid sample".into(),
            field: Some("samples".into()),
        }));
    };
    let mut payload = json.clone();
    if let Some(object) = payload.as_object_mut() {
        object.remove(TOPIC_VEHICLE_ID);
        object.remove(RECEIVED_AT);
    }
    Ok(Checked {
        seq: first.seq,
        samples: v2.then_some(samples.len()),
        alerting: samples.iter().any(|t| !alert::evaluate(rules, t).is_empty()),
        rejected_samples: rejected,
        body: json.to_string(),
        payload: payload.to_string(),
    })
}

/// The body's messages: one JSON object, or an array of 1 to [`MAX_MESSAGES`]
/// (whose items are checked one by one, as messages).
fn parse_body(body: &[u8]) -> Result<Vec<Value>, Refusal> {
    if body.len() > MAX_BODY_BYTES {
        return Err(bad_body(format!("the body is larger than {MAX_BODY_BYTES} bytes")));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| bad_body(format!("the body is not JSON: {e}")))?;
    match value {
        Value::Array(messages) if messages.is_empty() => Err(bad_body("the body is an empty array")),
        Value::Array(messages) if messages.len() > MAX_MESSAGES => Err(bad_body(format!(
            "the body holds {} messages; at most {MAX_MESSAGES} a request",
            messages.len()
        ))),
        Value::Array(messages) => Ok(messages),
        Value::Object(one) => Ok(vec![Value::Object(one)]),
        _ => Err(bad_body(
            "the body is a message (a JSON object) or an array of messages",
        )),
    }
}

/// A message as the IoT rule hands an MQTT message to the queue: the
/// payload with the device it came from and the time it arrived. Fields
/// that only the server may set are refused (the rule drops such messages).
fn as_rule_would_deliver(message: &Value, device: &DeviceId, now_ms: i64) -> Result<Value, Rejection> {
    let Value::Object(object) = message else {
        return Err(Rejection {
            reason: "message is not a JSON object".into(),
            field: None,
        });
    };
    for field in SERVER_FIELDS {
        if object.contains_key(field) {
            return Err(Rejection {
                reason: format!("field {field} is set by the server, not by the device"),
                field: Some(field.to_string()),
            });
        }
    }
    let mut json: Map<String, Value> = object.clone();
    json.insert(TOPIC_VEHICLE_ID.into(), device.as_str().into());
    json.insert(RECEIVED_AT.into(), now_ms.into());
    Ok(Value::Object(json))
}

#[cfg(test)]
mod tests {
    use canopy::adapters::memory::{
        MemoryDevicePublisher, MemoryKeyStore, MemoryLedger, MemoryQueue, MemoryQuotaCounter,
    };
    use canopy::domain::device_key::issue;
    use canopy::ports::ledger::ExistingClaim;
    use serde_json::json;

    use super::*;

    type Memory = HttpIngest<MemoryKeyStore, MemoryQueue, MemoryLedger, MemoryQuotaCounter, MemoryDevicePublisher>;

    const NOW_MS: i64 = 1_700_000_000_000;

    fn service() -> Memory {
        HttpIngest::new(
            MemoryKeyStore::default(),
            MemoryQueue::default(),
            MemoryLedger::default(),
            MemoryQuotaCounter::default(),
            AlertRoute {
                publisher: MemoryDevicePublisher::default(),
                rule_name: "AlertsTopicRule".into(),
                rules: alert::vehicle_rules(),
            },
            IngestOptions {
                key_cache: Duration::ZERO,
                ..IngestOptions::default()
            },
        )
    }

    async fn key(service: &Memory, device: &str, rate: u32) -> (DeviceKey, String) {
        let issued = issue(DeviceId::new(device).unwrap(), rate, "test", NOW_MS).unwrap();
        assert!(service.keys.create(&issued.record).await.unwrap());
        (issued.record, issued.plaintext)
    }

    fn message(device: &str, seq: u64) -> Value {
        json!({"v":1,"vehicle_id":device,"ts":"2023-11-14T22:13:20.000Z","seq":seq,"soc_pct":81.5,
               "pack_voltage_v":386.2,"pack_current_a":-12.3,"cell_voltage_min_v":3.951,"cell_voltage_max_v":4.012,
               "cell_temp_min_c":24.5,"cell_temp_max_c":31.0,"speed_kph":54.2})
    }

    fn body(v: &Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn accepted(seq: u64) -> MessageResult {
        MessageResult::Accepted {
            seq,
            samples: None,
            rejected_samples: Vec::new(),
        }
    }

    /// A v2 message of `device`'s samples `seqs`.
    fn samples_message(device: &str, seqs: std::ops::Range<u64>) -> Value {
        let samples: Vec<Value> = seqs
            .map(|seq| {
                let mut m = message(device, seq);
                let o = m.as_object_mut().unwrap();
                o.remove("v");
                o.remove("vehicle_id");
                m
            })
            .collect();
        json!({"v": 2, "vehicle_id": device, "samples": samples})
    }

    #[tokio::test]
    async fn a_v2_message_is_queued_whole_with_its_bad_samples_named() {
        let s = service();
        let (k, _) = key(&s, "veh-001", 10).await;
        let mut partly = samples_message("veh-001", 20..25);
        partly["samples"][1]["soc_pct"] = json!(140);
        let mut none = samples_message("veh-001", 30..32);
        none["samples"][0]["soc_pct"] = json!(-1);
        none["samples"][1]["soc_pct"] = json!(-1);
        let batch = json!([
            samples_message("veh-001", 10..15),
            partly,
            samples_message("veh-001", 10..15),
            none
        ]);
        let report = s.ingest(&k, &body(&batch), NOW_MS).await.unwrap();
        assert_eq!(
            report.results[0],
            MessageResult::Accepted {
                seq: 10,
                samples: Some(5),
                rejected_samples: vec![]
            }
        );
        let MessageResult::Accepted {
            seq: 20,
            samples: Some(4),
            rejected_samples,
        } = &report.results[1]
        else {
            panic!("{:?}", report.results[1]);
        };
        assert_eq!(rejected_samples[0].field.as_deref(), Some("samples[1].soc_pct"));
        assert_eq!(report.results[2], MessageResult::Duplicate { seq: 10 });
        assert!(
            matches!(&report.results[3], MessageResult::Rejected { field: Some(f), .. } if f == "samples[0].soc_pct"),
            "{:?}",
            report.results[3]
        );
        // Queued whole, as the IoT rule would deliver it; the telemetry function reads every sample.
        let queued = s.queue.take();
        assert_eq!(queued.len(), 2);
        let first = Message::parse(&queued[0]).unwrap();
        assert_eq!(first.samples.len(), 5);
        assert!(first.samples.iter().all(|t| t.received_at_ms == Some(NOW_MS)));
        // Received before (the ledger holds its first seq): a duplicate.
        s.ledger.insert(
            k.device_id.as_str(),
            40,
            ExistingClaim {
                archive_key: "telemetry/date=2023-11-14/batch-x.parquet".into(),
                claimed_at_ms: NOW_MS,
            },
        );
        let again = s
            .ingest(&k, &body(&samples_message("veh-001", 40..45)), NOW_MS)
            .await
            .unwrap();
        assert_eq!(again.results, [MessageResult::Duplicate { seq: 40 }]);
    }

    #[tokio::test]
    async fn keys_are_checked_before_anything_else() {
        let s = service();
        let (record, plaintext) = key(&s, "veh-001", 10).await;
        assert!(matches!(s.authenticate(None).await, Err(Refusal::Unauthenticated(_))));
        assert!(matches!(
            s.authenticate(Some("hunter2")).await,
            Err(Refusal::Unauthenticated(_))
        ));
        let unknown = issue(DeviceId::new("veh-001").unwrap(), 10, "", 0).unwrap().plaintext;
        assert_eq!(
            s.authenticate(Some(&unknown)).await,
            Err(Refusal::Forbidden("unknown device key".into()))
        );
        assert_eq!(s.authenticate(Some(&plaintext)).await, Ok(record.clone()));
        assert!(s.keys.revoke(&record.key_id, NOW_MS).await.unwrap());
        assert_eq!(
            s.authenticate(Some(&plaintext)).await,
            Err(Refusal::Forbidden(format!("device key {} is revoked", record.key_id)))
        );
    }

    #[tokio::test]
    async fn an_instance_trusts_a_key_it_read_for_the_cache_time_only() {
        let mut s = service();
        s.options.key_cache = Duration::from_millis(200);
        let (record, plaintext) = key(&s, "veh-001", 10).await;
        s.authenticate(Some(&plaintext)).await.unwrap();
        s.keys.revoke(&record.key_id, NOW_MS).await.unwrap();
        assert!(s.authenticate(Some(&plaintext)).await.is_ok(), "cached");
        assert_eq!(s.keys.faults.calls("get"), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(matches!(
            s.authenticate(Some(&plaintext)).await,
            Err(Refusal::Forbidden(_))
        ));
    }

    #[tokio::test]
    async fn each_key_gets_its_own_rate_in_messages_per_minute_whatever_the_batching() {
        let s = service();
        let (slow, _) = key(&s, "veh-001", 5).await;
        let (fast, _) = key(&s, "veh-002", 3).await;
        let now_s = NOW_MS / 1000; // 20 s into its minute
        assert!(s.admit(&slow, 3, now_s).await.is_ok());
        assert!(s.admit(&slow, 2, now_s).await.is_ok());
        assert_eq!(
            s.admit(&slow, 1, now_s).await,
            Err(Refusal::RateLimited {
                reason: "this key's 5 messages a minute do not hold this request's 1 more".into(),
                retry_after_s: 40
            })
        );
        for _ in 0..3 {
            assert!(s.admit(&fast, 1, now_s).await.is_ok(), "another key counts apart");
        }
        assert!(
            s.admit(&slow, 5, now_s + 40).await.is_ok(),
            "the next minute starts over"
        );
        let Err(Refusal::RateLimited { reason, .. }) = s.admit(&fast, 4, now_s + 40).await else {
            panic!("four messages of a key of three a minute");
        };
        assert!(reason.contains("send fewer at a time"), "{reason}");
    }

    #[tokio::test]
    async fn a_key_of_n_a_minute_has_at_most_n_messages_accepted_however_it_batches() {
        let s = service();
        let (k, _) = key(&s, "veh-001", 5).await;
        let batch = |seqs: std::ops::Range<u64>| body(&Value::Array(seqs.map(|q| message("veh-001", q)).collect()));
        let mut accepted = 0;
        for (i, seqs) in [0..3, 3..6, 6..8, 8..208, 208..209].into_iter().enumerate() {
            match s.ingest(&k, &batch(seqs.clone()), NOW_MS + i as i64).await {
                Ok(report) => accepted += report.accepted,
                Err(Refusal::RateLimited { .. }) => {}
                Err(e) => panic!("{seqs:?}: {e}"),
            }
        }
        assert_eq!(accepted, 5, "3, then 2 that fit; 3, 200 and then 1 more refused whole");
        assert_eq!(s.queue.take().len(), 5);
        let Err(Refusal::RateLimited { .. }) = s.ingest(&k, b"not json", NOW_MS).await else {
            panic!("a bad body counts too, and the minute's 5 are spent");
        };
    }

    #[tokio::test]
    async fn failed_keys_from_one_address_are_throttled() {
        let s = service();
        let refusal = || Refusal::Forbidden("unknown device key".into());
        for _ in 0..MAX_FAILURES_PER_MINUTE {
            assert_eq!(s.failed("203.0.113.9", NOW_MS / 1000, refusal()).await, refusal());
        }
        assert!(matches!(
            s.failed("203.0.113.9", NOW_MS / 1000, refusal()).await,
            Refusal::RateLimited { .. }
        ));
        assert_eq!(
            s.failed("198.51.100.7", NOW_MS / 1000, refusal()).await,
            refusal(),
            "another address"
        );
    }

    #[tokio::test]
    async fn a_message_that_may_alert_goes_to_the_alerts_rule_before_the_queue() {
        let s = service();
        let (k, _) = key(&s, "veh-001", 100).await;
        let mut hot = message("veh-001", 2);
        hot["cell_temp_max_c"] = json!(78.0);
        let report = s
            .ingest(&k, &body(&json!([message("veh-001", 1), hot])), NOW_MS)
            .await
            .unwrap();
        assert_eq!(report.accepted, 2);
        let published = s.alerts.publisher.published();
        assert_eq!(published.len(), 1, "only the hot one");
        assert_eq!(published[0].0, "$aws/rules/AlertsTopicRule/dt/canopy/veh-001/bms");
        let sent: Value = serde_json::from_slice(&published[0].1).unwrap();
        assert_eq!(sent, hot, "as the device sent it: the rule adds the server's fields");
        assert_eq!(s.queue.take().len(), 2);

        // The rule not taking it: not queued either, so the retry goes to both.
        let mut hotter = message("veh-001", 3);
        hotter["cell_temp_max_c"] = json!(80.0);
        s.alerts.publisher.faults.fail_next_of("publish", 1);
        let report = s.ingest(&k, &body(&hotter), NOW_MS).await.unwrap();
        assert!(
            matches!(report.results[0], MessageResult::NotQueued { seq: 3, .. }),
            "{report:?}"
        );
        assert!(s.queue.take().is_empty());
        let report = s.ingest(&k, &body(&hotter), NOW_MS).await.unwrap();
        assert_eq!(report.accepted, 1);
        assert_eq!(s.alerts.publisher.published().len(), 2);
    }

    #[tokio::test]
    async fn valid_messages_are_queued_as_the_iot_rule_delivers_them() {
        let s = service();
        let (k, _) = key(&s, "veh-001", 10).await;
        let mut extra = message("veh-001", 2);
        extra["firmware"] = json!("1.2.3");
        let report = s
            .ingest(&k, &body(&json!([message("veh-001", 1), extra])), NOW_MS)
            .await
            .unwrap();
        assert_eq!((report.accepted, report.rejected, report.duplicates), (2, 0, 0));
        let queued: Vec<Value> = s
            .queue
            .take()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect();
        let mut want = message("veh-001", 1);
        want[TOPIC_VEHICLE_ID] = json!("veh-001");
        want[RECEIVED_AT] = json!(NOW_MS);
        assert_eq!(queued[0], want);
        assert_eq!(queued[1]["firmware"], "1.2.3");
        // What the telemetry function reads from the queue is what an MQTT message gives it.
        let t = canopy::domain::telemetry::Telemetry::from_json(&queued[0]).unwrap();
        assert_eq!((t.seq, t.received_at_ms), (1, Some(NOW_MS)));
        // A single message need not be an array.
        let one = s.ingest(&k, &body(&message("veh-001", 3)), NOW_MS).await.unwrap();
        assert_eq!(one.results, [accepted(3)]);
    }

    #[tokio::test]
    async fn each_message_gets_its_own_answer() {
        let s = service();
        let (k, _) = key(&s, "veh-001", 10).await;
        s.ledger.insert(
            k.device_id.as_str(),
            7,
            ExistingClaim {
                archive_key: "telemetry/date=2023-11-14/batch-x.parquet".into(),
                claimed_at_ms: NOW_MS,
            },
        );
        let mut bad = message("veh-001", 3);
        bad["soc_pct"] = json!(140);
        let mut sneaky = message("veh-001", 4);
        sneaky[RECEIVED_AT] = json!(0);
        let mut future = message("veh-001", 5);
        future["ts"] = json!("2099-01-01T00:00:00Z");
        let batch = json!([
            message("veh-001", 1),
            message("veh-001", 1),
            bad,
            sneaky,
            future,
            "text",
            message("veh-001", 7)
        ]);
        let report = s.ingest(&k, &body(&batch), NOW_MS).await.unwrap();
        let fields: Vec<Option<&str>> = report
            .results
            .iter()
            .map(|r| match r {
                MessageResult::Rejected { field, .. } => field.as_deref(),
                _ => None,
            })
            .collect();
        assert_eq!(report.results[0], accepted(1));
        assert_eq!(
            report.results[1],
            MessageResult::Duplicate { seq: 1 },
            "twice in one request"
        );
        assert_eq!(
            fields[2..6],
            [Some("soc_pct"), Some(RECEIVED_AT), Some("ts"), None],
            "{:#?}",
            report.results
        );
        assert_eq!(
            report.results[6],
            MessageResult::Duplicate { seq: 7 },
            "in the ledger already"
        );
        assert_eq!((report.accepted, report.duplicates, report.rejected), (1, 2, 4));
        assert_eq!(s.queue.take().len(), 1, "only the new, valid message is queued");
    }

    #[tokio::test]
    async fn a_message_of_another_device_refuses_the_whole_request() {
        let s = service();
        let (k, _) = key(&s, "veh-001", 10).await;
        let batch = json!([message("veh-001", 1), message("veh-002", 2)]);
        let refused = s.ingest(&k, &body(&batch), NOW_MS).await.unwrap_err();
        assert!(
            matches!(&refused, Refusal::Forbidden(m) if m.contains("\"veh-002\"")),
            "{refused}"
        );
        assert!(s.queue.take().is_empty(), "nothing queued");
    }

    #[tokio::test]
    async fn bodies_that_are_not_messages_are_refused_whole() {
        let s = service();
        let (k, _) = key(&s, "veh-001", 10).await;
        let many = Value::Array((0..=MAX_MESSAGES as u64).map(|i| message("veh-001", i)).collect());
        for (body, says) in [
            (b"{".to_vec(), "not JSON"),
            (b"[]".to_vec(), "empty array"),
            (b"42".to_vec(), "a message (a JSON object)"),
            (body(&many), "at most 500"),
            (vec![b' '; MAX_BODY_BYTES + 1], "larger than"),
        ] {
            match s.ingest(&k, &body, NOW_MS).await {
                Err(Refusal::BadBody { reason, field }) => {
                    assert!(reason.contains(says), "{reason}");
                    assert_eq!(field.as_deref(), Some("body"));
                }
                other => panic!("{says}: {other:?}"),
            }
        }
        assert!(s.queue.take().is_empty());
    }

    #[tokio::test]
    async fn what_the_queue_refuses_is_reported_for_sending_again() {
        let s = service();
        let (k, _) = key(&s, "veh-001", 10).await;
        s.queue.faults.fail_next_of("send", 1);
        s.ledger.faults.fail_next_of("claimed", 1);
        let batch = json!([message("veh-001", 1), message("veh-001", 2)]);
        let report = s.ingest(&k, &body(&batch), NOW_MS).await.unwrap();
        assert!(matches!(report.results[0], MessageResult::NotQueued { seq: 1, .. }));
        assert_eq!(
            report.results[1],
            accepted(2),
            "an unreadable ledger does not stop ingest"
        );
        assert_eq!((report.accepted, report.not_queued), (1, 1));
    }
}
