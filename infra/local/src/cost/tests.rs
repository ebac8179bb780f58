use super::*;
use std::collections::BTreeMap;

use serde_json::Value;

#[test]
fn a_request_written_across_the_drives_end_is_the_fleets() {
    let recording = "{\"a\":1}\n{\"b\":\"a long body\"}{\"c\":3}\n{\"d\":4}\n";
    let inside_b = recording.find("long").unwrap();
    let (fleet, after) = split_recording(recording, inside_b).unwrap();
    assert_eq!(fleet, [json!({"a": 1}), json!({"b": "a long body"})]);
    assert_eq!(after, [json!({"c": 3}), json!({"d": 4})]);
    let at_d = recording.find("{\"d\"").unwrap();
    let (fleet, after) = split_recording(recording, at_d - 1).unwrap();
    assert_eq!(
        (fleet.len(), after),
        (3, vec![json!({"d": 4})]),
        "the newline before d is not d"
    );
    assert!(split_recording("{\"a\":", 0).is_err(), "a truncated file is an error");
}
use serde_json::json;

fn entry(headers: Value, method: &str, url: &str, body: &str) -> Value {
    json!({"headers": headers, "method": method, "url": url, "body": body, "body_encoded": false})
}

fn signed(service: &str) -> Value {
    json!({"Authorization": format!("AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0")})
}

#[test]
fn each_request_is_named_by_its_service_and_action() {
    let mut headers = signed("dynamodb");
    headers["X-Amz-Target"] = json!("DynamoDB_20120810.PutItem");
    let put = classify(&entry(headers, "POST", "http://127.0.0.1:5000/", &"x".repeat(1500))).unwrap();
    assert_eq!(
        (put.service.as_str(), put.action.as_str(), put.capacity_units),
        ("dynamodb", "PutItem", 2)
    );
    let mut headers = signed("sqs");
    headers["x-amz-target"] = json!("AmazonSQS.SendMessage");
    let send = classify(&entry(headers, "POST", "http://127.0.0.1:5000/", "{}")).unwrap();
    assert_eq!((send.service.as_str(), send.action.as_str()), ("sqs", "SendMessage"));
    let publish = classify(&entry(
        signed("sns"),
        "POST",
        "http://127.0.0.1:5000/",
        "Action=Publish&TopicArn=x",
    ))
    .unwrap();
    assert_eq!(publish.action, "Publish");
    let s3 = |method: &str, url: &str| classify(&entry(signed("s3"), method, url, "")).unwrap();
    let put = s3(
        "PUT",
        "http://127.0.0.1:5000/data/raw/vehicle_id=v/date=2026-12-02/a.parquet?x-id=PutObject",
    );
    assert_eq!(
        (put.action.as_str(), put.key.as_deref()),
        ("PutObject", Some("raw/vehicle_id=v/date=2026-12-02/a.parquet"))
    );
    assert_eq!(
        s3("GET", "http://127.0.0.1:5000/data?list-type=2&prefix=raw%2F").action,
        "ListObjects"
    );
    assert_eq!(s3("POST", "http://127.0.0.1:5000/data?delete").action, "DeleteObjects");
    assert_eq!(
        s3("PUT", "http://127.0.0.1:5000/data/raw/a?partNumber=1&uploadId=u").action,
        "UploadPart"
    );
    assert!(
        classify(&entry(json!({}), "GET", "http://127.0.0.1:5000/moto-api/", "")).is_none(),
        "unsigned: not AWS"
    );
}

#[test]
fn a_bill_scales_what_the_fleet_did_to_a_vehicle_month() {
    let prices: Prices = toml::from_str(include_str!("../../../prices.toml")).unwrap();
    let mut m = Measured {
        vehicles: 1,
        drive_seconds: 600.0,
        frames: 1_200_000.0,
        iot_broker_units: 600,
        ..Measured::default()
    };
    m.stored.insert("raw/".into(), (6_000_000, 10));
    let lines = price(&m, &prices, &Workload::STANDARD, &BTreeMap::new(), 7.0);
    let iot = lines.iter().find(|l| l.part == "IoT Core").unwrap();
    // 216,000 messages a month at $1/M, and 3,600 connected minutes at $0.08/M.
    assert!((iot.dollars - (0.216 + 0.000288)).abs() < 1e-9, "{iot:?}");
    let storage = lines.iter().find(|l| l.part == "S3 storage").unwrap();
    // 432 M frames at 5 B each: 2.16 GB of raw, and 3,600 objects moved cold.
    assert!(storage.driver.contains("2.16 raw"), "{storage:?}");
    let cold = (23.0f64 / 30.0).powi(2);
    let want = 2.16 * (0.5 * 0.023 * (1.0 - cold) + 0.5 * 0.004 * cold) + 3.6 * 0.02;
    assert!((storage.dollars - want).abs() < 1e-9, "{storage:?} vs {want}");
}
