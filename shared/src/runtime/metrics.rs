//! Counters as CloudWatch Embedded Metric Format: one JSON log line that
//! CloudWatch turns into metrics, without an API call.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "Canopy";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// Metrics of one unit of work (an invocation, an object), with dimensions.
#[derive(Clone, Debug)]
pub struct Metrics {
    dimensions: Vec<(String, String)>,
    values: Vec<(String, f64, Unit)>,
}

impl Metrics {
    /// `function` becomes the `Function` dimension.
    pub fn new(function: &str) -> Self {
        Self {
            dimensions: vec![("Function".to_string(), function.to_string())],
            values: Vec::new(),
        }
    }

    /// Adds a dimension (`DeviceId`, ...) to the metrics of this unit of work.
    pub fn with_dimension(mut self, name: &str, value: &str) -> Self {
        self.dimensions.push((name.to_string(), value.to_string()));
        self
    }

    pub fn add(&mut self, name: &str, value: f64, unit: Unit) -> &mut Self {
        match self.values.iter_mut().find(|(n, _, _)| n == name) {
            Some(entry) => entry.1 += value,
            None => self.values.push((name.to_string(), value, unit)),
        }
        self
    }

    pub fn count(&mut self, name: &str, value: u64) -> &mut Self {
        self.add(name, value as f64, Unit::Count)
    }

    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _, _)| n == name).map(|(_, v, _)| *v)
    }

    /// The EMF document.
    pub fn to_json(&self) -> Value {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let definitions: Vec<Value> = self
            .values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimension_names],
                    "Metrics": definitions,
                }],
            }),
        );
        for (k, v) in &self.dimensions {
            doc.insert(k.clone(), Value::String(v.clone()));
        }
        for (name, value, _) in &self.values {
            doc.insert(name.clone(), json!(value));
        }
        Value::Object(doc)
    }

    /// Writes the EMF line where `sink` says.
    pub fn emit(&self, sink: MetricsSink) {
        match sink {
            MetricsSink::Stdout => println!("{}", self.to_json()),
            MetricsSink::Log => tracing::debug!(target: "canopy::metrics", metrics = %self.to_json(), "metrics"),
        }
    }
}

/// Where a function's metrics go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetricsSink {
    /// Standard output, where Lambda sends them to CloudWatch Logs, which
    /// reads EMF lines as metrics.
    #[default]
    Stdout,
    /// The tracing log at debug level: the local stack runs every function in
    /// one process whose standard output is for people.
    Log,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_declares_each_metric_with_its_unit() {
        let mut m = Metrics::new("decoder");
        m.count("Frames", 10)
            .count("Frames", 5)
            .add("BytesIn", 1024.0, Unit::Bytes);
        let doc = m.to_json();
        assert_eq!(doc["Function"], "decoder");
        assert_eq!(doc["Frames"], 15.0);
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Canopy");
        assert_eq!(cw["Dimensions"], json!([["Function"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "Frames", "Unit": "Count"}, {"Name": "BytesIn", "Unit": "Bytes"}])
        );
        assert!(doc["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    }

    #[test]
    fn dimensions_are_declared_together() {
        let mut m = Metrics::new("decoder").with_dimension("VehicleId", "veh-001");
        m.add("RawBytes", 10.0, Unit::Bytes);
        let doc = m.to_json();
        assert_eq!(doc["VehicleId"], "veh-001");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "VehicleId"]])
        );
    }
}
