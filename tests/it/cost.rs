//! `make cost`'s measurement on the local stack: what the harness counts is
//! what the designs do — messages through the broker or by Basic Ingest, a
//! raw object per seal interval, its decoding, and the bytes it leaves.

use std::path::Path;

use canopy_local::cost::{CostOptions, DESIGNS, Workload, measure, price};
use canopy_tests::local;

#[tokio::test(flavor = "multi_thread")]
async fn each_design_is_measured_by_what_its_edges_and_functions_did() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let options = CostOptions {
        template: repo.join("template.yaml"),
        prices: repo.join("infra/prices.toml"),
        edge: local::binary("canopy-edge"),
        dbc: repo.join("dbc/ev_powertrain.dbc"),
        vehicles: 2,
        seconds: 300,
    };
    let prices = canopy_local::cost::Prices::load(&options.prices).unwrap();
    let [v1, v2, v2_minutely] = DESIGNS;
    let mut totals = Vec::new();
    for design in [v1, v2_minutely] {
        let (m, memory, cold_after) = measure(&options, &design).await.unwrap();
        let samples = 2 * 300;
        if design.settings.basic_ingest {
            assert_eq!(m.iot_broker_units, 0, "{}", design.name);
            // Five samples a message, and the rules see each message once.
            assert_eq!(m.basic_ingest_messages, samples / 5, "{}", design.name);
            assert_eq!(m.rules_triggered_units, samples / 5, "{}", design.name);
        } else {
            assert_eq!(m.iot_broker_units, samples, "{}", design.name);
            assert_eq!(m.rules_triggered_units, 2 * samples, "both rules, each message");
        }
        // A raw object a minute of driving (the last one maybe a few frames), all decoded.
        let raw = m.stored["raw/"].1;
        assert!((10..=12).contains(&raw), "{}: {:?}", design.name, m.stored);
        let decoder = m.functions["DecoderFunction"].invocations;
        assert!((1..=raw).contains(&decoder), "{:?}", m.functions);
        assert!(m.stored["decoded/"].0 > 0 && m.stored.contains_key("rollup_1s/"));
        assert_eq!(cold_after, 7.0, "the template's RawColdAfterDays");
        let lines = price(&m, &prices, &Workload::STANDARD, &memory, cold_after);
        totals.push(lines.iter().map(|l| l.dollars).sum::<f64>());
    }
    assert!(totals[1] < totals[0], "v2 by Basic Ingest costs less: {totals:?}");
    // The design called the defaults is what provisioning sets up (and
    // edge/src/config.rs's tests hold the edge's 300 s seal).
    let defaults = canopy_local::demo::EdgeSettings::default();
    assert_eq!(
        (
            v2.settings.publish_interval_ms,
            v2.settings.basic_ingest,
            v2.settings.edge_rules
        ),
        (defaults.publish_interval_ms, defaults.basic_ingest, defaults.edge_rules)
    );
    assert_eq!(v2.seal_after_s, 300);
}
