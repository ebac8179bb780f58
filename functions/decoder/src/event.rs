//! The events the decoder is invoked with, typed: an SQS batch whose bodies
//! are S3 notifications (the deployed path: S3 → SQS → Lambda), or an S3
//! notification itself (`cargo lambda invoke decoder --data-file events/s3-put.json`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use canopy::format::lake::keys::decode_s3_event_key;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An S3 notification, typed as far as the decoder reads it. Not
/// `aws_lambda_events`' `S3Event`: that one requires `eventTime`,
/// `userIdentity` and `requestParameters`, which moto leaves out, and has no
/// room for the `s3:TestEvent` S3 sends when a notification is configured.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct S3Notification {
    #[serde(rename = "Records", default)]
    pub records: Option<Vec<S3Record>>,
    #[serde(rename = "Event", default)]
    pub event: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct S3Record {
    pub s3: Option<S3Entity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct S3Entity {
    pub bucket: Option<Named>,
    pub object: Option<Key>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Named {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Key {
    pub key: Option<String>,
}

/// An object an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// URL-decoded, as S3 keys are not in notifications.
    pub key: String,
}

impl S3Notification {
    /// The objects it names: none for `s3:TestEvent`.
    pub fn objects(&self) -> Result<Vec<ObjectRef>, String> {
        if self.event.as_deref() == Some("s3:TestEvent") {
            return Ok(Vec::new());
        }
        let records = self
            .records
            .as_ref()
            .ok_or_else(|| "not an S3 notification: no Records".to_string())?;
        records.iter().map(S3Record::object).collect()
    }
}

impl S3Record {
    fn object(&self) -> Result<ObjectRef, String> {
        let s3 = self.s3.as_ref().ok_or("S3 record without s3")?;
        let bucket = s3
            .bucket
            .as_ref()
            .and_then(|b| b.name.clone())
            .ok_or("S3 record without bucket name")?;
        let key = s3
            .object
            .as_ref()
            .and_then(|o| o.key.as_deref())
            .ok_or("S3 record without object key")?;
        Ok(ObjectRef {
            bucket,
            key: decode_s3_event_key(key),
        })
    }
}

/// What the decoder is invoked with.
#[derive(Debug, Clone)]
pub enum DecoderEvent {
    Sqs(SqsEvent),
    S3(S3Notification),
}

/// Told apart by the first record's `eventSource`: every field of an SQS
/// record is optional, so an S3 event would also read as one.
impl<'de> Deserialize<'de> for DecoderEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let source = value.pointer("/Records/0/eventSource").and_then(Value::as_str);
        if source == Some("aws:sqs") {
            serde_json::from_value(value).map(Self::Sqs)
        } else {
            serde_json::from_value(value).map(Self::S3)
        }
        .map_err(serde::de::Error::custom)
    }
}

/// What the decoder answers: the SQS partial batch response, or how many
/// objects an S3 notification's decoding wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DecoderResponse {
    Batch(SqsBatchResponse),
    Decoded { decoded: usize },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(v: Value) -> Result<Vec<ObjectRef>, String> {
        serde_json::from_value::<S3Notification>(v).unwrap().objects()
    }

    #[test]
    fn notifications_are_parsed_tolerantly_and_keys_url_decoded() {
        let moto_like = json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "lake"}, "object": {"key": "raw/vehicle_id%3Dv1/date%3D2025-01-01/v1_1_000001.parquet", "size": 10}}
        }]});
        assert_eq!(
            objects(moto_like).unwrap(),
            [ObjectRef {
                bucket: "lake".into(),
                key: "raw/vehicle_id=v1/date=2025-01-01/v1_1_000001.parquet".into()
            }]
        );
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "lake"});
        assert!(objects(test_event).unwrap().is_empty());
        assert!(objects(json!({"foo": 1})).unwrap_err().contains("no Records"));
        assert!(
            objects(json!({"Records": [{"s3": {}}]}))
                .unwrap_err()
                .contains("bucket")
        );
    }

    #[test]
    fn the_sample_events_read_as_their_kind() {
        let s3: DecoderEvent = serde_json::from_str(include_str!("../../../events/s3-put.json")).unwrap();
        assert!(matches!(s3, DecoderEvent::S3(n) if n.objects().unwrap().len() == 1));
        let sqs: DecoderEvent = serde_json::from_str(include_str!("../../../events/sqs-s3.json")).unwrap();
        assert!(matches!(sqs, DecoderEvent::Sqs(e) if e.records.len() == 2));
    }

    #[test]
    fn responses_are_what_lambda_expects() {
        let mut batch = SqsBatchResponse::default();
        batch.add_failure("m-1");
        assert_eq!(
            serde_json::to_value(DecoderResponse::Batch(batch)).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]})
        );
        assert_eq!(
            serde_json::to_value(DecoderResponse::Decoded { decoded: 2 }).unwrap(),
            json!({"decoded": 2})
        );
    }
}
