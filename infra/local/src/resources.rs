//! The template's tables, topic and queues, created on the local endpoint
//! with the same keys and names, so the functions run unchanged.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};

#[derive(Debug, thiserror::Error)]
#[error("creating {resource}: {message}")]
pub struct ResourceError {
    pub resource: String,
    pub message: String,
}

fn failed<E: std::fmt::Debug>(resource: &str, e: E) -> ResourceError {
    ResourceError {
        resource: resource.to_string(),
        message: format!("{e:?}"),
    }
}

/// A DynamoDB table as the template defines it: on-demand, a hash key and
/// maybe a range key, maybe a TTL attribute, maybe a stream (of new items).
pub struct TableSpec<'a> {
    pub name: &'a str,
    pub hash: (&'a str, ScalarAttributeType),
    pub range: Option<(&'a str, ScalarAttributeType)>,
    pub ttl: Option<&'a str>,
    pub stream: bool,
}

/// The latest-state table: one item per vehicle.
pub fn state_table(name: &str) -> TableSpec<'_> {
    TableSpec {
        name,
        hash: ("vehicle_id", ScalarAttributeType::S),
        range: None,
        ttl: None,
        stream: false,
    }
}

/// The latest status of each device of a declared kind.
pub fn device_state_table(name: &str) -> TableSpec<'_> {
    TableSpec {
        name,
        hash: ("kind", ScalarAttributeType::S),
        range: Some(("device_id", ScalarAttributeType::S)),
        ttl: None,
        stream: false,
    }
}

/// The archive ledger: which object holds (stream, seq).
pub fn ledger_table(name: &str) -> TableSpec<'_> {
    TableSpec {
        name,
        hash: ("vehicle_id", ScalarAttributeType::S),
        range: Some(("seq", ScalarAttributeType::N)),
        ttl: Some("expires_at"),
        stream: false,
    }
}

/// The alert log and cooldowns.
pub fn alerts_table(name: &str) -> TableSpec<'_> {
    TableSpec {
        name,
        hash: ("vehicle_id", ScalarAttributeType::S),
        range: Some(("sk", ScalarAttributeType::S)),
        ttl: Some("expires_at"),
        stream: false,
    }
}

/// The fleet's indexes (the alert feeds).
pub fn fleet_index_table(name: &str) -> TableSpec<'_> {
    TableSpec {
        name,
        hash: ("pk", ScalarAttributeType::S),
        range: Some(("sk", ScalarAttributeType::S)),
        ttl: Some("expires_at"),
        stream: false,
    }
}

/// Requests per caller and window (the API's history quota).
pub fn quota_table(name: &str) -> TableSpec<'_> {
    TableSpec {
        name,
        hash: ("key", ScalarAttributeType::S),
        range: None,
        ttl: Some("expires_at"),
        stream: false,
    }
}

/// The live stream's connections.
pub fn connections_table(name: &str) -> TableSpec<'_> {
    TableSpec {
        name,
        hash: ("connection_id", ScalarAttributeType::S),
        range: None,
        ttl: Some("expires_at"),
        stream: false,
    }
}

/// The device keys of HTTP ingest.
pub fn keys_table(name: &str) -> TableSpec<'_> {
    TableSpec {
        name,
        hash: ("key_id", ScalarAttributeType::S),
        range: None,
        ttl: None,
        stream: false,
    }
}

pub async fn create_table(client: &aws_sdk_dynamodb::Client, spec: &TableSpec<'_>) -> Result<(), ResourceError> {
    let mut keys = vec![(spec.hash.0, spec.hash.1.clone(), KeyType::Hash)];
    if let Some((name, kind)) = &spec.range {
        keys.push((name, kind.clone(), KeyType::Range));
    }
    let mut request = client
        .create_table()
        .table_name(spec.name)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind, key_type) in keys {
        let definition = AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .map_err(|e| failed(spec.name, e))?;
        let key = KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(|e| failed(spec.name, e))?;
        request = request.attribute_definitions(definition).key_schema(key);
    }
    if spec.stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(|e| failed(spec.name, e))?,
        );
    }
    request.send().await.map_err(|e| failed(spec.name, e))?;
    if let Some(attribute) = spec.ttl {
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(attribute)
            .build()
            .map_err(|e| failed(spec.name, e))?;
        client
            .update_time_to_live()
            .table_name(spec.name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| failed(spec.name, e))?;
    }
    Ok(())
}

/// An SNS topic; its ARN.
pub async fn create_topic(client: &aws_sdk_sns::Client, name: &str) -> Result<String, ResourceError> {
    let out = client
        .create_topic()
        .name(name)
        .send()
        .await
        .map_err(|e| failed(name, e))?;
    out.topic_arn()
        .map(str::to_string)
        .ok_or_else(|| failed(name, "no topic ARN"))
}
