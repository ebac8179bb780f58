//! `template.yaml`, read the way the local stack needs it: the resources it
//! must create (tables, queues, topics, the bucket and its notifications),
//! the functions with their environment and event sources, and the IoT
//! topic rules with their SQL. Intrinsics resolve to local names: a
//! resource's local name is its logical id (buckets keep their template
//! name, with moto's account and region), parameters take their defaults.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_yaml::Value;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: {error}")]
    Yaml { path: String, error: serde_yaml::Error },
    #[error("template: {resource}: {problem}")]
    Invalid { resource: String, problem: String },
}

fn invalid(resource: &str, problem: impl Into<String>) -> TemplateError {
    TemplateError::Invalid {
        resource: resource.to_string(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub hash: (String, String),
    pub range: Option<(String, String)>,
    pub ttl: Option<String>,
    /// Whether the table has a stream (`StreamSpecification`).
    pub stream: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    pub name: String,
    pub visibility_timeout_s: Option<u64>,
    /// The dead-letter queue's name and maxReceiveCount.
    pub redrive: Option<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub logical_id: String,
    pub name: String,
    /// (queue name, key prefix, key suffix) of ObjectCreated notifications.
    pub notifications: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub logical_id: String,
    pub binary: String,
    pub environment: BTreeMap<String, String>,
    /// SQS event sources: (queue name, batch size, batching window).
    pub queues: Vec<(String, usize, Duration)>,
    /// A `Schedule` event source's `rate(N minutes)`.
    pub every: Option<std::time::Duration>,
    /// DynamoDB event sources: the streams that feed the function.
    pub streams: Vec<StreamSource>,
    /// How long one invocation may run (`Timeout`, else the Globals').
    pub timeout: Option<Duration>,
    /// Asynchronous invocations (an IoT rule's): retries after a failure
    /// (`EventInvokeConfig.MaximumRetryAttempts`; Lambda's default is 2).
    pub async_retries: u32,
    /// Where an asynchronous invocation goes when its retries are spent (`DeadLetterQueue`).
    pub dead_letter_queue: Option<String>,
}

/// A DynamoDB stream event source of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSource {
    /// The table whose stream it is.
    pub table: String,
    /// Records per invocation at most (`BatchSize`, default 100).
    pub batch: usize,
    /// Retries of a failed batch before its records are skipped
    /// (`MaximumRetryAttempts`; Lambda's default, -1, retries until the records expire).
    pub retries: Option<u32>,
}

/// A function's event sources, as its `Events` declare them.
#[derive(Default)]
struct EventSources {
    queues: Vec<(String, usize, Duration)>,
    every: Option<Duration>,
    streams: Vec<StreamSource>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleTarget {
    Queue(String),
    Function(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicRule {
    pub logical_id: String,
    pub sql: String,
    pub targets: Vec<RuleTarget>,
    /// Where a message goes when one of its actions fails (`ErrorAction`, a queue).
    pub error_queue: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Template {
    pub parameters: BTreeMap<String, String>,
    /// `Globals.Function.Timeout`.
    function_timeout: Option<Duration>,
    pub tables: Vec<Table>,
    pub queues: Vec<Queue>,
    pub topics: Vec<String>,
    pub buckets: Vec<Bucket>,
    pub functions: Vec<Function>,
    pub rules: Vec<TopicRule>,
    /// The stack's outputs as they resolve locally (a topic rule's name is its logical id).
    pub outputs: BTreeMap<String, String>,
    resources: BTreeMap<String, String>,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|error| TemplateError::Read {
            path: path.display().to_string(),
            error,
        })?;
        Self::parse(&text).map_err(|e| match e {
            TemplateError::Yaml { error, .. } => TemplateError::Yaml {
                path: path.display().to_string(),
                error,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let doc: Value = serde_yaml::from_str(text).map_err(|error| TemplateError::Yaml {
            path: "template".into(),
            error,
        })?;
        let mut t = Template::default();
        if let Some(params) = doc.get("Parameters").and_then(Value::as_mapping) {
            for (name, spec) in params {
                let name = name.as_str().unwrap_or_default().to_string();
                let default = spec.get("Default").map(scalar).unwrap_or_default();
                t.parameters.insert(name, default);
            }
        }
        t.function_timeout = doc
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Timeout"))
            .and_then(|v| scalar(v).parse().ok())
            .map(Duration::from_secs);
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| invalid("Resources", "missing"))?;
        for (id, r) in resources {
            let id = id.as_str().unwrap_or_default().to_string();
            let kind = r.get("Type").and_then(Value::as_str).unwrap_or_default().to_string();
            t.resources.insert(id, kind);
        }
        // Buckets first: functions and rules refer to their names.
        for pass in 0..2 {
            for (id, r) in resources {
                let id = id.as_str().unwrap_or_default();
                let props = r.get("Properties").cloned().unwrap_or(Value::Null);
                match (pass, t.resources[id].as_str()) {
                    (0, "AWS::S3::Bucket") => t.buckets.push(t.bucket(id, &props)?),
                    (1, "AWS::DynamoDB::Table") => t.tables.push(t.table(id, &props)?),
                    (1, "AWS::SQS::Queue") => t.queues.push(t.queue(id, &props)?),
                    (1, "AWS::SNS::Topic") => t.topics.push(id.to_string()),
                    (1, "AWS::Serverless::Function") => t.functions.push(t.parse_function(id, r, &props)?),
                    (1, "AWS::IoT::TopicRule") => t.rules.push(t.rule(id, &props)?),
                    _ => {}
                }
            }
        }
        if let Some(outputs) = doc.get("Outputs").and_then(Value::as_mapping) {
            for (name, spec) in outputs {
                let value = spec.get("Value").map(|v| t.resolve(v)).unwrap_or_default();
                t.outputs.insert(scalar(name), value);
            }
        }
        Ok(t)
    }

    /// What an intrinsic or a literal means locally.
    pub fn resolve(&self, v: &Value) -> String {
        match v {
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let inner = &tagged.value;
                match tag.as_str() {
                    "!Ref" => self.reference(&scalar(inner)),
                    "!GetAtt" => {
                        let target = match inner {
                            Value::Sequence(parts) => parts.iter().map(scalar).collect::<Vec<_>>().join("."),
                            other => scalar(other),
                        };
                        let (id, attribute) = target.split_once('.').unwrap_or((&target, "Arn"));
                        self.attribute(id, attribute)
                    }
                    "!Join" => match inner.as_sequence().map(Vec::as_slice) {
                        Some([separator, Value::Sequence(items)]) => items
                            .iter()
                            .map(|item| self.resolve(item))
                            .collect::<Vec<_>>()
                            .join(&scalar(separator)),
                        _ => String::new(),
                    },
                    "!Sub" => {
                        let text = match inner {
                            Value::Sequence(parts) => parts.first().map(scalar).unwrap_or_default(),
                            other => scalar(other),
                        };
                        self.substitute(&text)
                    }
                    _ => scalar(inner),
                }
            }
            other => scalar(other),
        }
    }

    fn reference(&self, name: &str) -> String {
        match name {
            "AWS::AccountId" => return ACCOUNT.into(),
            "AWS::Region" => return REGION.into(),
            "AWS::Partition" => return "aws".into(),
            "AWS::StackName" => return "canopy".into(),
            "AWS::URLSuffix" => return "amazonaws.com".into(),
            _ => {}
        }
        if let Some(default) = self.parameters.get(name) {
            return default.clone();
        }
        match self.resources.get(name).map(String::as_str) {
            Some("AWS::SQS::Queue") => queue_url(name),
            Some("AWS::SNS::Topic") => topic_arn(name),
            Some("AWS::S3::Bucket") => self
                .buckets
                .iter()
                .find(|b| b.logical_id == name)
                .map_or_else(|| name.to_string(), |b| b.name.clone()),
            _ => name.to_string(),
        }
    }

    fn attribute(&self, id: &str, attribute: &str) -> String {
        match (self.resources.get(id).map(String::as_str), attribute) {
            (Some("AWS::SQS::Queue"), "Arn") => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{id}"),
            (Some("AWS::SQS::Queue"), "QueueName") => id.to_string(),
            (Some("AWS::S3::Bucket"), "Arn") => format!("arn:aws:s3:::{}", self.reference(id)),
            (Some("AWS::DynamoDB::Table"), "Arn") => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{id}"),
            _ => format!("{id}.{attribute}"),
        }
    }

    fn substitute(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some((id, attribute)) =
                name.split_once('.').filter(|(id, _)| self.resources.contains_key(*id))
            {
                out.push_str(&self.attribute(id, attribute));
            } else {
                out.push_str(&self.reference(name));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn table(&self, id: &str, props: &Value) -> Result<Table, TemplateError> {
        let types: BTreeMap<String, String> = seq(props, "AttributeDefinitions")
            .iter()
            .map(|d| (field(d, "AttributeName"), field(d, "AttributeType")))
            .collect();
        let mut hash = None;
        let mut range = None;
        for key in &seq(props, "KeySchema") {
            let name = field(key, "AttributeName");
            let kind = types
                .get(&name)
                .cloned()
                .ok_or_else(|| invalid(id, format!("key {name} has no attribute definition")))?;
            match field(key, "KeyType").as_str() {
                "HASH" => hash = Some((name, kind)),
                _ => range = Some((name, kind)),
            }
        }
        let ttl = props
            .get("TimeToLiveSpecification")
            .filter(|s| s.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
            .map(|s| field(s, "AttributeName"));
        Ok(Table {
            name: id.to_string(),
            hash: hash.ok_or_else(|| invalid(id, "no HASH key"))?,
            range,
            ttl,
            stream: props.get("StreamSpecification").is_some(),
        })
    }

    fn queue(&self, id: &str, props: &Value) -> Result<Queue, TemplateError> {
        let redrive = match props.get("RedrivePolicy") {
            None => None,
            Some(policy) => {
                let target = policy
                    .get("deadLetterTargetArn")
                    .map(|v| self.resolve(v))
                    .ok_or_else(|| invalid(id, "RedrivePolicy without deadLetterTargetArn"))?;
                let name = target.rsplit(':').next().unwrap_or_default().to_string();
                let count = policy.get("maxReceiveCount").map(scalar).unwrap_or_default();
                Some((
                    name,
                    count
                        .parse()
                        .map_err(|_| invalid(id, "maxReceiveCount is not a number"))?,
                ))
            }
        };
        Ok(Queue {
            name: id.to_string(),
            visibility_timeout_s: props.get("VisibilityTimeout").and_then(|v| scalar(v).parse().ok()),
            redrive,
        })
    }

    fn bucket(&self, id: &str, props: &Value) -> Result<Bucket, TemplateError> {
        let name = props
            .get("BucketName")
            .map(|v| self.resolve(v))
            .unwrap_or_else(|| id.to_lowercase());
        let mut notifications = Vec::new();
        let configs = props
            .get("NotificationConfiguration")
            .map(|n| seq(n, "QueueConfigurations"))
            .unwrap_or_default();
        for config in &configs {
            let queue = config.get("Queue").map(|v| self.resolve(v)).unwrap_or_default();
            let queue = queue.rsplit(':').next().unwrap_or_default().to_string();
            let (mut prefix, mut suffix) = (String::new(), String::new());
            let rules = config
                .get("Filter")
                .and_then(|f| f.get("S3Key"))
                .map(|k| seq(k, "Rules"))
                .unwrap_or_default();
            for rule in &rules {
                match field(rule, "Name").as_str() {
                    "prefix" => prefix = field(rule, "Value"),
                    "suffix" => suffix = field(rule, "Value"),
                    other => return Err(invalid(id, format!("unknown notification filter {other}"))),
                }
            }
            notifications.push((queue, prefix, suffix));
        }
        Ok(Bucket {
            logical_id: id.to_string(),
            name,
            notifications,
        })
    }

    fn parse_function(&self, id: &str, resource: &Value, props: &Value) -> Result<Function, TemplateError> {
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .map(scalar)
            .ok_or_else(|| invalid(id, "no Metadata.BuildProperties.Binary"))?;
        let mut environment = BTreeMap::new();
        if let Some(vars) = props
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
        {
            for (k, v) in vars {
                environment.insert(scalar(k), self.resolve(v));
            }
        }
        let events = self.events(id, props)?;
        let timeout = props
            .get("Timeout")
            .and_then(|v| scalar(v).parse().ok())
            .map(Duration::from_secs)
            .or(self.function_timeout);
        let async_retries = props
            .get("EventInvokeConfig")
            .and_then(|c| c.get("MaximumRetryAttempts"))
            .and_then(|v| scalar(v).parse().ok())
            .unwrap_or(2);
        let dead_letter_queue = props
            .get("DeadLetterQueue")
            .and_then(|d| d.get("TargetArn"))
            .map(|v| self.resolve(v).rsplit(':').next().unwrap_or_default().to_string());
        Ok(Function {
            logical_id: id.to_string(),
            binary,
            environment,
            queues: events.queues,
            every: events.every,
            streams: events.streams,
            timeout,
            async_retries,
            dead_letter_queue,
        })
    }

    /// A function's `Events`: its schedule, streams and queues.
    fn events(&self, id: &str, props: &Value) -> Result<EventSources, TemplateError> {
        let mut sources = EventSources::default();
        let Some(events) = props.get("Events").and_then(Value::as_mapping) else {
            return Ok(sources);
        };
        for (_, event) in events {
            if event.get("Type").and_then(Value::as_str) == Some("Schedule") {
                let rate = event["Properties"].get("Schedule").map(scalar).unwrap_or_default();
                sources.every =
                    Some(parse_rate(&rate).ok_or_else(|| invalid(id, "a Schedule other than rate(N minutes)"))?);
            }
            if event.get("Type").and_then(Value::as_str) == Some("DynamoDB") {
                sources.streams.push(self.stream_source(&event["Properties"]));
            }
            if event.get("Type").and_then(Value::as_str) == Some("SQS") {
                let p = event.get("Properties").cloned().unwrap_or(Value::Null);
                sources.queues.push(self.queue_source(&p));
            }
        }
        Ok(sources)
    }

    /// A `DynamoDB` event's properties.
    fn stream_source(&self, p: &Value) -> StreamSource {
        // `!GetAtt <table>.StreamArn` resolves to `<table>.StreamArn` here.
        let stream = p.get("Stream").map(|v| self.resolve(v)).unwrap_or_default();
        let retries: i64 = p
            .get("MaximumRetryAttempts")
            .map(scalar)
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        StreamSource {
            table: stream.split('.').next().unwrap_or_default().to_string(),
            batch: p
                .get("BatchSize")
                .map(scalar)
                .and_then(|s| s.parse().ok())
                .unwrap_or(100),
            retries: u32::try_from(retries).ok(),
        }
    }

    /// An `SQS` event's properties: (queue name, batch size, batching window).
    fn queue_source(&self, p: &Value) -> (String, usize, Duration) {
        let arn = p.get("Queue").map(|v| self.resolve(v)).unwrap_or_default();
        let batch = p
            .get("BatchSize")
            .map(scalar)
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        let window = p
            .get("MaximumBatchingWindowInSeconds")
            .map(scalar)
            .and_then(|s| s.parse().ok())
            .map_or(Duration::ZERO, Duration::from_secs);
        (arn.rsplit(':').next().unwrap_or_default().to_string(), batch, window)
    }

    fn rule(&self, id: &str, props: &Value) -> Result<TopicRule, TemplateError> {
        let payload = props
            .get("TopicRulePayload")
            .ok_or_else(|| invalid(id, "no TopicRulePayload"))?;
        let sql = payload
            .get("Sql")
            .map(|v| self.resolve(v))
            .ok_or_else(|| invalid(id, "no Sql"))?;
        let mut targets = Vec::new();
        for action in &seq(payload, "Actions") {
            if let Some(sqs) = action.get("Sqs") {
                let url = sqs.get("QueueUrl").map(|v| self.resolve(v)).unwrap_or_default();
                targets.push(RuleTarget::Queue(
                    url.rsplit('/').next().unwrap_or_default().to_string(),
                ));
            } else if let Some(lambda) = action.get("Lambda") {
                let arn = lambda.get("FunctionArn").map(|v| self.resolve(v)).unwrap_or_default();
                targets.push(RuleTarget::Function(arn.trim_end_matches(".Arn").to_string()));
            } else {
                return Err(invalid(id, "only Sqs and Lambda actions run locally"));
            }
        }
        let error_queue = payload
            .get("ErrorAction")
            .and_then(|a| a.get("Sqs"))
            .and_then(|sqs| sqs.get("QueueUrl"))
            .map(|v| self.resolve(v).rsplit('/').next().unwrap_or_default().to_string());
        Ok(TopicRule {
            logical_id: id.to_string(),
            sql,
            targets,
            error_queue,
        })
    }

    pub fn function(&self, logical_id: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }
}

pub fn queue_url(name: &str) -> String {
    format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}")
}

pub fn topic_arn(name: &str) -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}")
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => scalar(&t.value),
        _ => String::new(),
    }
}

fn field(v: &Value, name: &str) -> String {
    v.get(name).map(scalar).unwrap_or_default()
}

fn seq(v: &Value, name: &str) -> Vec<Value> {
    v.get(name).and_then(Value::as_sequence).cloned().unwrap_or_default()
}

/// `rate(5 minutes)`, `rate(1 minute)`, `rate(2 hours)`.
fn parse_rate(rate: &str) -> Option<std::time::Duration> {
    let inner = rate.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let seconds = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(n * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");

    fn template() -> Template {
        Template::load(Path::new(TEMPLATE)).unwrap()
    }

    /// The template as plain YAML, for what `Template` does not read (policies, parameters).
    fn raw_template() -> Value {
        serde_yaml::from_str(&std::fs::read_to_string(TEMPLATE).unwrap()).unwrap()
    }

    #[test]
    fn data_outlives_the_stack() {
        let doc = raw_template();
        let kept = ["AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::KMS::Key"];
        let mut checked = 0;
        for (id, resource) in doc["Resources"].as_mapping().unwrap() {
            let kind = resource["Type"].as_str().unwrap_or_default();
            // The quota table holds the last minutes' request counts, the live
            // stream's table who is connected now: nothing to keep.
            if !kept.contains(&kind) || matches!(id.as_str(), Some("QuotaTable" | "LiveConnectionsTable")) {
                continue;
            }
            checked += 1;
            for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
                assert_eq!(resource[policy].as_str(), Some("Retain"), "{id:?} {policy}");
            }
        }
        assert_eq!(
            checked, 10,
            "three buckets, six tables (state, device state, ledger, alerts, fleet indexes, device keys), the key"
        );
    }

    /// The `Sid`s of the statements of a policy resource's document.
    fn sids(resource: &Value) -> Vec<String> {
        seq(&resource["Properties"]["PolicyDocument"], "Statement")
            .iter()
            .filter_map(|s| s["Sid"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn topics_take_only_tls_and_the_lake_refuses_keys_it_cannot_read() {
        let doc = raw_template();
        let resources = doc["Resources"].as_mapping().unwrap();
        let topics = resources
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::SNS::Topic"))
            .count();
        let policy = &doc["Resources"]["TopicsPolicy"];
        assert_eq!(
            seq(&policy["Properties"], "Topics").len(),
            topics,
            "every topic has the policy"
        );
        assert!(sids(policy).contains(&"TlsOnly".to_string()));
        assert!(sids(&doc["Resources"]["DataBucketPolicy"]).contains(&"NoCustomerProvidedKeys".to_string()));
    }

    /// The functions that parse what vehicles send hold no right on "*"
    /// (X-Ray's two write actions, which take no resource, aside), and no role
    /// SAM would build them with its managed SQS policy (Resource "*").
    #[test]
    fn functions_that_parse_untrusted_input_hold_no_wildcard_rights() {
        let doc = raw_template();
        for function in ["DecoderFunction", "TelemetryFunction"] {
            let properties = &doc["Resources"][function]["Properties"];
            assert!(properties["Policies"].is_null(), "{function}: SAM-built role");
            let role_ref = match &properties["Role"] {
                Value::Tagged(t) => t.value.as_str().unwrap_or_default().to_string(),
                _ => String::new(),
            };
            let role_id = role_ref.trim_end_matches(".Arn");
            let role = &doc["Resources"][role_id];
            assert_eq!(
                role["Type"].as_str(),
                Some("AWS::IAM::Role"),
                "{function}: explicit role, not {role_ref:?}"
            );
            let mut statements = 0;
            for policy in seq(&role["Properties"], "Policies") {
                for statement in seq(&policy["PolicyDocument"], "Statement") {
                    statements += 1;
                    if statement["Resource"].as_str() != Some("*") {
                        continue;
                    }
                    let actions = seq(&statement, "Action");
                    assert!(
                        !actions.is_empty()
                            && actions
                                .iter()
                                .all(|a| a.as_str().is_some_and(|a| a.starts_with("xray:Put"))),
                        "{function}: {statement:?}"
                    );
                }
            }
            assert!(statements >= 4, "{function}: {statements} statements");
        }
    }

    /// A service may assume the stack's roles only on this account's behalf.
    #[test]
    fn every_role_a_service_assumes_names_the_account() {
        let doc = raw_template();
        let mut roles = 0;
        for (id, resource) in doc["Resources"].as_mapping().unwrap() {
            if resource["Type"].as_str() != Some("AWS::IAM::Role") {
                continue;
            }
            roles += 1;
            for statement in seq(&resource["Properties"]["AssumeRolePolicyDocument"], "Statement") {
                assert!(
                    !statement["Condition"]["StringEquals"]["aws:SourceAccount"].is_null(),
                    "{id:?}: {statement:?}"
                );
            }
        }
        assert!(roles >= 5, "{roles} roles");
    }

    #[test]
    fn the_live_functions_manage_connections_of_their_own_api_only() {
        let doc = raw_template();
        let mut granted = 0;
        for (id, resource) in doc["Resources"].as_mapping().unwrap() {
            let text = serde_yaml::to_string(&resource["Properties"]).unwrap();
            if !text.contains("execute-api:ManageConnections") {
                continue;
            }
            granted += 1;
            assert!(
                text.contains("${LiveApi}/live/POST/@connections/*") && !text.contains("execute-api:*"),
                "{id:?} may manage connections beyond the live API's"
            );
        }
        assert_eq!(granted, 2, "the routes' function and the fan-out");
        let t = template();
        let fanout = t.functions.iter().find(|f| f.binary == "live-fanout").unwrap();
        let tables: Vec<&str> = fanout.streams.iter().map(|s| s.table.as_str()).collect();
        assert_eq!(tables, ["StateTable", "AlertsTable"]);
        assert!(
            fanout.streams.iter().all(|s| (s.batch, s.retries) == (100, Some(2))),
            "{:?}",
            fanout.streams
        );
        for table in ["StateTable", "AlertsTable"] {
            assert!(
                t.tables.iter().any(|x| x.name == table && x.stream),
                "{table} has a stream"
            );
        }
    }

    #[test]
    fn the_alert_parameters_default_to_the_vehicle_kinds_declared_rules() {
        let doc = raw_template();
        let default = |name: &str| doc["Parameters"][name]["Default"].as_f64().unwrap_or(f64::NAN);
        let variables = &doc["Resources"]["AlertsFunction"]["Properties"]["Environment"]["Variables"];
        // The parameter the template sets a variable of the alerts function from.
        let parameter = |variable: &str| match &variables[variable] {
            Value::Tagged(tagged) if tagged.tag == "!Ref" => tagged.value.as_str().unwrap().to_string(),
            other => panic!("AlertsFunction's {variable} is {other:?}, not a !Ref of a parameter"),
        };
        let mut set = 0;
        for rule in &canopy::domain::kind::vehicle().rules {
            let canopy::domain::kind::Condition::Threshold { threshold, .. } = rule.condition else {
                continue;
            };
            let name = &rule.name;
            let variable = rule
                .threshold_variable
                .as_deref()
                .unwrap_or_else(|| panic!("{name}: no threshold_variable"));
            let threshold_parameter = parameter(variable);
            assert_eq!(
                default(&threshold_parameter),
                threshold,
                "{threshold_parameter}: kinds/vehicle.toml's {name}"
            );
            assert_eq!(
                default(&parameter("ALERT_COOLDOWN_SECONDS")),
                rule.cooldown.as_secs_f64(),
                "{name}"
            );
            set += 1;
        }
        assert_eq!(set, 3, "over-temperature, low state of charge, cell imbalance");
    }

    #[test]
    fn the_api_takes_access_tokens_and_queries_under_its_own_lower_cap() {
        let doc = raw_template();
        let data = &doc["Resources"]["ApiDataRoute"]["Properties"];
        assert_eq!(data["AuthorizationType"].as_str(), Some("JWT"));
        assert_eq!(
            seq(data, "AuthorizationScopes"),
            [Value::from("aws.cognito.signin.user.admin")],
            "ID tokens carry no scope and are refused"
        );
        let api_cap = doc["Parameters"]["ApiBytesScannedCutoff"]["Default"].as_u64().unwrap();
        let analysts_cap = doc["Parameters"]["AthenaBytesScannedCutoff"]["Default"]
            .as_u64()
            .unwrap();
        assert!(api_cap < analysts_cap);
        let t = template();
        let api = t.functions.iter().find(|f| f.binary == "api").unwrap();
        assert_eq!(api.environment["ATHENA_WORKGROUP"], "ApiAthenaWorkGroup");
        for group in ["FleetAdminGroup", "ViewerGroup"] {
            assert_eq!(
                doc["Resources"][group]["Type"].as_str(),
                Some("AWS::Cognito::UserPoolGroup")
            );
        }
    }

    #[test]
    fn only_the_console_the_description_and_ingest_are_open() {
        let doc = raw_template();
        let (mut open, mut live) = (Vec::new(), Vec::new());
        for (id, resource) in doc["Resources"].as_mapping().unwrap() {
            if resource["Type"].as_str() != Some("AWS::ApiGatewayV2::Route") {
                continue;
            }
            let p = &resource["Properties"];
            let key = p["RouteKey"].as_str().unwrap().to_string();
            let api = match &p["ApiId"] {
                Value::Tagged(tagged) if tagged.tag == "!Ref" => tagged.value.as_str().unwrap().to_string(),
                other => panic!("{id:?}: ApiId {other:?}"),
            };
            match p["AuthorizationType"].as_str() {
                // The WebSocket API takes no JWT authorizer: its connect handler
                // checks the token itself (the live tests refuse a missing one).
                Some("NONE") if api == "LiveApi" => live.push(key),
                Some("NONE") => open.push(key),
                Some("JWT") => assert!(!p["AuthorizerId"].is_null(), "{id:?}"),
                other => panic!("{id:?}: {other:?}"),
            }
        }
        open.sort();
        live.sort();
        assert_eq!(live, ["$connect", "$default", "$disconnect"]);
        assert_eq!(
            open,
            [
                "GET /",
                "GET /assets/{proxy+}",
                "GET /config.json",
                "GET /docs",
                "GET /health",
                "GET /openapi.json",
                // Devices hold no token: the ingest function checks their keys itself.
                "POST /ingest"
            ]
        );
        let ingest = &template().function("IngestFunction").unwrap().environment.clone();
        for name in ["KEYS_TABLE", "LEDGER_TABLE", "QUOTA_TABLE", "TELEMETRY_QUEUE_URL"] {
            assert!(ingest.contains_key(name), "{name}");
        }
        assert_eq!(ingest["TELEMETRY_QUEUE_URL"], queue_url("TelemetryQueue"));
        // The console signs in with the code flow and comes back to the API's own URL.
        let client = &doc["Resources"]["ConsoleClient"]["Properties"];
        assert_eq!(seq(client, "AllowedOAuthFlows"), [Value::from("code")]);
        let callback = format!("{:?}", seq(client, "CallbackURLs"));
        assert!(callback.contains("${HttpApi}.execute-api"), "{callback}");
        let audience = format!(
            "{:?}",
            doc["Resources"]["ApiJwtAuthorizer"]["Properties"]["JwtConfiguration"]["Audience"]
        );
        assert!(audience.contains("ConsoleClient"), "{audience}");
        let t = template();
        let api = t.functions.iter().find(|f| f.binary == "api").unwrap();
        assert!(
            api.environment.contains_key("CONSOLE_CLIENT_ID") && api.environment.contains_key("CONSOLE_AUTH_DOMAIN")
        );
    }

    #[test]
    fn every_rollup_tier_has_its_table_and_rights() {
        let doc = raw_template();
        let text = std::fs::read_to_string(TEMPLATE).unwrap();
        for tier in canopy::format::lake::rollup::TIERS {
            let table = doc["Resources"]
                .as_mapping()
                .unwrap()
                .values()
                .find(|r| r["Properties"]["TableInput"]["Name"].as_str() == Some(tier.table));
            let table = table.unwrap_or_else(|| panic!("no Glue table {}", tier.table));
            let columns: Vec<String> = seq(&table["Properties"]["TableInput"]["StorageDescriptor"], "Columns")
                .iter()
                .filter_map(|c| c["Name"].as_str().map(str::to_string))
                .collect();
            let schema = canopy::format::lake::rollup::rollup_schema();
            let expected: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            assert_eq!(columns, expected, "{}", tier.table);
            // The decoder writes it, the compactor merges it, the API reads and lists it.
            assert_eq!(
                text.matches(&format!("/{}*", tier.prefix)).count(),
                3,
                "{}",
                tier.prefix
            );
            assert!(text.contains(&format!("{}*,", tier.prefix)), "{} listed", tier.prefix);
        }
    }

    /// Athena reads each kind's archive by a Glue table whose columns and
    /// types are the ones the telemetry function writes from the declaration.
    #[test]
    fn every_device_kind_has_its_archive_table() {
        let doc = raw_template();
        for kind in canopy::domain::kind::Kinds::builtin().iter() {
            let name = format!("devices_{}", kind.name.replace('-', "_"));
            let table = doc["Resources"]
                .as_mapping()
                .unwrap()
                .values()
                .find(|r| r["Properties"]["TableInput"]["Name"].as_str() == Some(name.as_str()))
                .unwrap_or_else(|| {
                    panic!("no Glue table {name}: a kind's archive needs one (see StationArchiveTable)")
                });
            let input = &table["Properties"]["TableInput"];
            let columns: Vec<(String, String)> = seq(&input["StorageDescriptor"], "Columns")
                .iter()
                .map(|c| (scalar(&c["Name"]), scalar(&c["Type"])))
                .collect();
            let expected: Vec<(String, String)> = canopy::format::lake::devices::schema(kind)
                .fields()
                .iter()
                .map(|f| {
                    let t = f.data_type();
                    let glue = if t.is_integer() {
                        "bigint"
                    } else if t.is_floating() {
                        "double"
                    } else if t.is_nested() {
                        "array<double>"
                    } else {
                        "string"
                    };
                    (f.name().clone(), glue.to_string())
                })
                .collect();
            assert_eq!(columns, expected, "{name}");
            let location = format!("{:?}", input["Parameters"]["storage.location.template"]);
            assert!(
                location.contains(&format!("/devices/kind={}/date=", kind.name)),
                "{location}"
            );
        }
    }

    /// A killed invocation leaves its claims; the message must be taken over
    /// at a later delivery, not reach the dead-letter queue first.
    #[test]
    fn a_telemetry_claim_goes_stale_after_its_invocation_and_before_the_dead_letter_queue() {
        let doc = raw_template();
        let resources = &doc["Resources"];
        let function = &resources["TelemetryFunction"]["Properties"];
        let stale: u64 = function["Environment"]["Variables"]["CLAIM_STALE_SECONDS"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let timeout = function["Timeout"].as_u64().unwrap();
        let queue = &resources["TelemetryQueue"]["Properties"];
        let visibility = queue["VisibilityTimeout"].as_u64().unwrap();
        let receives = queue["RedrivePolicy"]["maxReceiveCount"].as_u64().unwrap();
        assert!(stale > timeout, "a claim outlives the invocation that made it");
        assert!(
            stale < visibility * (receives - 1),
            "taken over at a redelivery: {stale} s against {receives} deliveries {visibility} s apart"
        );
    }

    #[test]
    fn a_vehicle_uploading_too_much_is_an_alarm() {
        let doc = raw_template();
        let alarm = &doc["Resources"]["UploadVolumeAlarm"]["Properties"];
        let query = alarm["Metrics"][0]["Expression"].as_str().unwrap();
        assert!(
            query.contains("SUM(RawBytes)") && query.contains("GROUP BY VehicleId"),
            "{query}"
        );
        assert_eq!(alarm["Metrics"][0]["Period"].as_u64(), Some(3600));
    }

    #[test]
    fn no_other_origin_may_call_the_api_unless_given() {
        let doc = raw_template();
        assert_eq!(doc["Parameters"]["ApiCorsOrigin"]["Default"].as_str(), Some(""));
        assert!(
            !doc["Conditions"]["HasCorsOrigin"].is_null(),
            "CORS is configured only when an origin is given"
        );
    }

    #[test]
    fn reads_the_repositorys_template() {
        let t = template();
        let state = t.tables.iter().find(|t| t.name == "StateTable").unwrap();
        assert_eq!(state.hash, ("vehicle_id".into(), "S".into()));
        let ledger = t.tables.iter().find(|t| t.name == "LedgerTable").unwrap();
        assert_eq!(ledger.range, Some(("seq".into(), "N".into())));
        assert_eq!(ledger.ttl.as_deref(), Some("expires_at"));
        let raw = t.queues.iter().find(|q| q.name == "RawObjectsQueue").unwrap();
        assert_eq!(raw.redrive, Some(("RawObjectsDeadLetterQueue".into(), 5)));
        let data = t.buckets.iter().find(|b| b.logical_id == "DataBucket").unwrap();
        assert_eq!(data.name, "canopy-data-123456789012-us-east-1");
        assert_eq!(
            data.notifications,
            [("RawObjectsQueue".into(), "raw/".into(), ".parquet".into())]
        );

        let decoder = t.function("DecoderFunction").unwrap();
        assert_eq!(decoder.binary, "decoder");
        assert_eq!(decoder.environment["DATA_BUCKET"], "canopy-data-123456789012-us-east-1");
        assert_eq!(decoder.environment["DBC_KEY"], "dbc/ev_powertrain.dbc");
        assert_eq!(decoder.queues, [("RawObjectsQueue".into(), 10, Duration::from_secs(5))]);
        let telemetry = t.function("TelemetryFunction").unwrap();
        assert_eq!(
            telemetry.queues,
            [("TelemetryQueue".into(), 100, Duration::from_secs(5))]
        );
        assert_eq!(decoder.every, None);
        let compactor = t.function("CompactorFunction").unwrap();
        assert_eq!(compactor.binary, "compactor");
        assert_eq!(compactor.every, Some(std::time::Duration::from_secs(300)));
        assert_eq!(parse_rate("rate(1 minute)"), Some(std::time::Duration::from_secs(60)));
        assert_eq!(parse_rate("cron(0 * * * ? *)"), None);
        let alerts = t.function("AlertsFunction").unwrap();
        assert_eq!(
            alerts.environment["ALERT_TOPIC_ARN"],
            "arn:aws:sns:us-east-1:123456789012:AlertTopic"
        );
        assert_eq!(alerts.environment["OVER_TEMPERATURE_C"], "60");
        assert_eq!(
            t.function("TelemetryFunction").unwrap().environment["STATE_TABLE"],
            "StateTable"
        );

        let rule = t.rules.iter().find(|r| r.logical_id == "AlertsTopicRule").unwrap();
        assert!(
            rule.sql.contains("AND (cell_temp_max_c > 60 OR soc_pct < 10"),
            "{}",
            rule.sql
        );
        assert_eq!(rule.targets, [RuleTarget::Function("AlertsFunction".into())]);
        assert_eq!(rule.error_queue.as_deref(), Some("AlertsDeadLetterQueue"));
        assert_eq!(
            (
                alerts.timeout,
                alerts.async_retries,
                alerts.dead_letter_queue.as_deref()
            ),
            (Some(Duration::from_secs(15)), 2, Some("AlertsDeadLetterQueue"))
        );
        assert_eq!(decoder.timeout, Some(Duration::from_secs(900)));
        let rule = t.rules.iter().find(|r| r.logical_id == "TelemetryTopicRule").unwrap();
        assert_eq!(rule.targets, [RuleTarget::Queue("TelemetryQueue".into())]);
        assert!(t.topics.contains(&"AlertTopic".to_string()));
        // A vehicle learns the rules' names for Basic Ingest from the outputs.
        assert_eq!(t.outputs["TelemetryRuleName"], "TelemetryTopicRule");
        assert_eq!(t.outputs["AlertsRuleName"], "AlertsTopicRule");
    }

    #[test]
    fn a_vehicle_may_publish_to_each_rule_by_basic_ingest_only_as_itself() {
        let doc = raw_template();
        let statements = doc["Resources"]["VehiclePolicy"]["Properties"]["PolicyDocument"]["Statement"]
            .as_sequence()
            .unwrap();
        let publish = statements
            .iter()
            .find(|s| s["Sid"].as_str() == Some("PublishItsTelemetry"))
            .unwrap();
        let t = template();
        let resources: Vec<String> = publish["Resource"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|r| t.resolve(r))
            .collect();
        let arn = "arn:aws:iot:us-east-1:123456789012:topic/";
        assert_eq!(
            resources,
            [
                format!("{arn}dt/canopy/${{iot:Connection.Thing.ThingName}}/*"),
                format!("{arn}$aws/rules/TelemetryTopicRule/dt/canopy/${{iot:Connection.Thing.ThingName}}/*"),
                format!("{arn}$aws/rules/AlertsTopicRule/dt/canopy/${{iot:Connection.Thing.ThingName}}/*"),
            ]
        );
    }

    #[test]
    fn every_rule_drops_a_payload_that_brings_a_field_the_server_sets() {
        use canopy::format::telemetry::SERVER_FIELDS;
        let t = template();
        assert_eq!(t.rules.len(), 3);
        for rule in &t.rules {
            let sql = canopy_rules::TopicRule::parse(&rule.sql).unwrap();
            let topic = if sql.topic_filter.contains("canopy/") {
                "dt/canopy/veh-001/bms"
            } else {
                "dt/canopy-station/st-01/status"
            };
            for field in SERVER_FIELDS {
                assert!(
                    rule.sql.contains(&format!("isUndefined({field})")),
                    "{}: {field}",
                    rule.logical_id
                );
                let payload = serde_json::json!({"vehicle_id": "veh-001", "station_id": "st-01", "cell_temp_max_c": 90,
                    "soc_pct": 1, field: "forged"});
                assert_eq!(
                    sql.apply(topic, payload.to_string().as_bytes(), 0),
                    None,
                    "{} takes a payload with {field}",
                    rule.logical_id
                );
            }
        }
    }

    #[test]
    fn join_resolves_each_item() {
        let t = template();
        let live = t.functions.iter().find(|f| f.binary == "live").unwrap();
        assert_eq!(live.environment["COGNITO_CLIENT_IDS"], "UserPoolClient,ConsoleClient");
    }

    #[test]
    fn sub_keeps_escaped_variables() {
        let t = template();
        assert_eq!(
            t.substitute("a/${!iot:ThingName}/${AWS::Region}"),
            "a/${iot:ThingName}/us-east-1"
        );
    }
}
