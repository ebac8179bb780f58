use super::*;
use crate::format::lake::compact::BatchCopy;
use arrow_array::types::Int32Type;
use arrow_array::{Array, BooleanArray, DictionaryArray, Float64Array, Int64Array, StringArray};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;

const DBC: &str = r#"
BO_ 2 Zeta: 2 E
 SG_ B : 0|8@1+ (1,0) [0|0] "A" X
 SG_ A : 8|8@1+ (1,0) [0|0] "V" X

BO_ 1 Alpha: 1 E
 SG_ Only : 0|8@1+ (0.5,0) [0|0] "degC" X
"#;

/// (message, signal, ts_us, value, unit)
type DecodedRow = (String, String, i64, f64, String);

fn rows(bytes: Vec<u8>) -> (Vec<DecodedRow>, usize, Compression) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
    let groups = builder.metadata().num_row_groups();
    let compression = builder.metadata().row_group(0).column(0).compression();
    assert_eq!(builder.schema().as_ref(), decoded_schema().as_ref());
    let mut out = Vec::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let s = |i: usize| {
            let d = batch
                .column(i)
                .as_any()
                .downcast_ref::<DictionaryArray<Int32Type>>()
                .unwrap();
            let v = d.values().as_any().downcast_ref::<StringArray>().unwrap().clone();
            (0..d.len())
                .map(move |r| v.value(d.keys().value(r) as usize).to_string())
                .collect::<Vec<_>>()
        };
        let ts = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let value = batch.column(3).as_any().downcast_ref::<Float64Array>().unwrap();
        let (m, sig, unit) = (s(1), s(2), s(4));
        for r in 0..batch.num_rows() {
            out.push((
                m[r].clone(),
                sig[r].clone(),
                ts.value(r),
                value.value(r),
                unit[r].clone(),
            ));
        }
    }
    (out, groups, compression)
}

#[test]
fn rows_are_sorted_by_message_signal_and_time_with_units() {
    let db = Database::from_text(DBC, "t.dbc").unwrap();
    let mut w = DecodedWriter::new(
        &db,
        Vec::new(),
        "out",
        &BatchCopy::new("b", 1),
        DecodedWriterOptions::default(),
    )
    .unwrap();
    let zeta = db.messages().iter().position(|m| m.name == "Zeta").unwrap();
    let alpha = db.messages().iter().position(|m| m.name == "Alpha").unwrap();
    let mut values = Vec::new();
    for (ts, data) in [(30, [3u8, 30]), (10, [1, 10]), (20, [2, 20])] {
        db.messages()[zeta].decode(&data, &mut values).unwrap();
        w.push(ts, zeta, None, &values).unwrap();
    }
    db.messages()[alpha].decode(&[9], &mut values).unwrap();
    w.push(15, alpha, None, &values).unwrap();
    let (bytes, stats) = w.finish().unwrap();
    assert_eq!(stats.rows, 7);
    let (rows, groups, compression) = rows(bytes);
    assert_eq!(groups, 1);
    assert!(matches!(compression, Compression::ZSTD(_)));
    let want = [
        ("Alpha", "Only", 15, 4.5, "degC"),
        ("Zeta", "A", 10, 10.0, "V"),
        ("Zeta", "A", 20, 20.0, "V"),
        ("Zeta", "A", 30, 30.0, "V"),
        ("Zeta", "B", 10, 1.0, "A"),
        ("Zeta", "B", 20, 2.0, "A"),
        ("Zeta", "B", 30, 3.0, "A"),
    ];
    let got: Vec<_> = rows
        .iter()
        .map(|(m, s, t, v, u)| (m.as_str(), s.as_str(), *t, *v, u.as_str()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn windows_bound_memory_and_are_cut_into_row_groups() {
    let db = Database::from_text(DBC, "t.dbc").unwrap();
    let options = DecodedWriterOptions {
        sort_window_rows: 10,
        row_group_rows: 4,
        ..DecodedWriterOptions::default()
    };
    let mut w = DecodedWriter::new(&db, Vec::new(), "out", &BatchCopy::new("b", 1), options).unwrap();
    let zeta = db.messages().iter().position(|m| m.name == "Zeta").unwrap();
    let mut values = Vec::new();
    for ts in 0..10 {
        db.messages()[zeta].decode(&[ts as u8, 0], &mut values).unwrap();
        w.push(ts, zeta, None, &values).unwrap();
        assert!(w.held < 10);
    }
    let (bytes, stats) = w.finish().unwrap();
    assert_eq!(stats.rows, 20);
    let (rows, groups, _) = rows(bytes);
    assert_eq!(rows.len(), 20);
    assert_eq!(groups, 6, "two windows of 10 rows, each cut into 4 + 4 + 2");
    // Within a window: A before B, time ascending.
    let first: Vec<_> = rows[..10].iter().map(|r| (r.1.as_str(), r.2)).collect();
    assert_eq!(
        first,
        [
            ("A", 0),
            ("A", 1),
            ("A", 2),
            ("A", 3),
            ("A", 4),
            ("B", 0),
            ("B", 1),
            ("B", 2),
            ("B", 3),
            ("B", 4)
        ]
    );
}

#[test]
fn many_windows_in_flight_come_out_whole_and_in_order_with_their_tiers() {
    let db = Database::from_text(DBC, "t.dbc").unwrap();
    let options = DecodedWriterOptions {
        sort_window_rows: 6,
        row_group_rows: 4,
        rollups: true,
    };
    let mut w = DecodedWriter::new(&db, Vec::new(), "out", &BatchCopy::new("b", 1), options).unwrap();
    let zeta = db.messages().iter().position(|m| m.name == "Zeta").unwrap();
    let mut values = Vec::new();
    // 100 frames a second apart: 200 rows in 34 windows, drained as a multipart upload would.
    let mut tier_bytes = vec![0; TIERS.len()];
    let mut drained = Vec::new();
    for ts in 0..100i64 {
        db.messages()[zeta].decode(&[ts as u8, 1], &mut values).unwrap();
        w.push(ts * 1_000_000, zeta, None, &values).unwrap();
        drained.append(w.sink_mut());
        for (i, (_, bytes)) in w.rollup_sinks_mut().enumerate() {
            tier_bytes[i] += bytes.len();
            bytes.clear();
        }
    }
    let (rest, stats, tiers) = w.finish_with_rollups().unwrap();
    drained.extend(rest);
    assert_eq!(stats.rows, 200);
    let (rows, _, _) = rows(drained);
    let times: Vec<i64> = rows.iter().filter(|r| r.1 == "B").map(|r| r.2).collect();
    assert_eq!(times, (0..100).map(|t| t * 1_000_000).collect::<Vec<_>>());
    // The 1 s tier: a row per signal and second, across every window.
    assert_eq!(tiers[0].rows, 200);
    assert!(tier_bytes[0] > 0, "tier bytes stream out before the end");
}

#[test]
fn values_past_their_dbc_range_are_flagged_and_counted_per_signal() {
    let db = Database::from_text(
        r#"
BO_ 3 Temps: 2 E
 SG_ Hot : 0|8@1+ (1,-40) [-20|100] "degC" X
 SG_ Free : 8|8@1+ (1,0) [0|0] "" X
"#,
        "t.dbc",
    )
    .unwrap();
    let options = DecodedWriterOptions {
        row_group_rows: 3,
        rollups: true,
        ..DecodedWriterOptions::default()
    };
    let mut w = DecodedWriter::new(&db, Vec::new(), "out", &BatchCopy::new("b", 1), options).unwrap();
    let mut values = Vec::new();
    // Hot: -40 (below), 0, 100 (at the bound), 101 (above), 215 (above).
    for (ts, raw) in [(1, 0u8), (2, 40), (3, 140), (4, 141), (5, 255)] {
        db.messages()[0].decode(&[raw, 255], &mut values).unwrap();
        w.push(ts, 0, None, &values).unwrap();
    }
    let (bytes, stats, tiers) = w.finish_with_rollups().unwrap();
    assert_eq!(
        stats.out_of_range,
        [OutOfRange {
            message: "Temps".into(),
            signal: "Hot".into(),
            values: 3
        }],
        "Free sets no range: nothing of it is out of one"
    );
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap();
    let mut flags = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column(8).as_any().downcast_ref::<BooleanArray>().unwrap();
        flags.extend((0..column.len()).map(|i| column.value(i)));
    }
    // Sorted by signal: Free's five values, then Hot's, across row groups of three.
    assert_eq!(
        flags,
        [false, false, false, false, false, true, false, false, true, true]
    );
    let tier = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(tiers[0].bytes.clone()))
        .unwrap()
        .build()
        .unwrap();
    let mut counted = 0;
    for batch in tier {
        let batch = batch.unwrap();
        let column = batch.column_by_name("n_out_of_range").unwrap();
        let column = column.as_any().downcast_ref::<Int64Array>().unwrap();
        counted += column.values().iter().sum::<i64>();
    }
    assert_eq!(counted, 3, "the 1 s tier counts them too");
}

#[test]
fn frames_pushed_to_decode_by_columns_write_what_their_values_pushed_write() {
    let db = Database::from_text(
        r#"
BO_ 1 Plain: 8 E
 SG_ Speed : 0|16@1- (0.01,0) [-100|100] "m/s" X
 SG_ Gear : 23|4@0+ (1,0) [0|0] "" X

BO_ 2 Cells: 6 E
 SG_ Group M : 0|2@1+ (1,0) [0|0] "" X
 SG_ CellA m0 : 8|12@1+ (0.001,1.5) [0|0] "V" X
 SG_ CellB m1 : 8|12@1+ (0.001,1.5) [0|0] "V" X
 SG_ Both : 32|16@1+ (1,0) [0|0] "" X

BO_ 2365580030 Engine: 8 E
 SG_ Rpm : 24|16@1+ (0.125,0) [0|8031.875] "rpm" X

BA_DEF_ BO_ "VFrameFormat" ENUM "StandardCAN","ExtendedCAN","J1939PG";
BA_ "VFrameFormat" BO_ 2365580030 2;
"#,
        "t.dbc",
    )
    .unwrap();
    let options = DecodedWriterOptions {
        sort_window_rows: 50,
        row_group_rows: 16,
        rollups: true,
    };
    let writer = || DecodedWriter::new(&db, Vec::new(), "out", &BatchCopy::new("b", 1), options).unwrap();
    let (mut by_rows, mut by_columns) = (writer(), writer());
    let (mut values, mut seed, mut columnar) = (Vec::new(), 0x9e37_79b9_7f4a_7c15u64, 0);
    for i in 0..400i64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let index = (seed % 3) as usize;
        let message = &db.messages()[index];
        // Time mostly ascending, some frames late, many seconds apart for the tiers.
        let ts = i * 300_000 - if i % 7 == 0 { 900_000 } else { 0 };
        let source = message.is_j1939.then_some((seed >> 60) as u8);
        let data = seed.to_le_bytes();
        if message.decode(&data, &mut values).is_ok() {
            by_rows.push(ts, index, source, &values).unwrap();
        }
        let decoder = message.columns().expect("each message decodes by columns");
        // Group 2 and 3 are unknown: those frames fail both ways.
        if let Ok(frame) = decoder.frame(&data) {
            by_columns.push_frame(ts, index, source, frame).unwrap();
            columnar += 1;
        }
    }
    assert!(columnar > 200, "{columnar} frames decoded");
    let (rows, row_stats, row_tiers) = by_rows.finish_with_rollups().unwrap();
    let (columns, column_stats, column_tiers) = by_columns.finish_with_rollups().unwrap();
    assert_eq!(row_stats, column_stats);
    assert!(rows == columns, "the decoded objects are byte for byte the same");
    for (a, b) in row_tiers.iter().zip(&column_tiers) {
        assert!(
            a.rows > 0 && a.rows == b.rows && a.bytes == b.bytes,
            "tier {}",
            a.tier.name
        );
    }
}

/// A sink that refuses every write.
struct Refusing;

impl Write for Refusing {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("disk full"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_sink_fails_the_writer_by_name_and_a_dropped_writer_lets_its_thread_go() {
    let db = Database::from_text(DBC, "t.dbc").unwrap();
    let options = DecodedWriterOptions {
        sort_window_rows: 2,
        ..DecodedWriterOptions::default()
    };
    let zeta = db.messages().iter().position(|m| m.name == "Zeta").unwrap();
    let mut values = Vec::new();
    db.messages()[zeta].decode(&[1, 2], &mut values).unwrap();

    let mut w = DecodedWriter::new(&db, Refusing, "s3://lake/out", &BatchCopy::new("b", 1), options).unwrap();
    let mut failed = None;
    for ts in 0..10 {
        if let Err(e) = w.push(ts, zeta, None, &values) {
            failed = Some(e);
            break;
        }
    }
    let error = failed
        .expect("a window's bytes reach the sink while pushing")
        .to_string();
    assert!(
        error.contains("s3://lake/out") && error.contains("disk full"),
        "{error}"
    );

    // Dropped with windows in flight: the drop waits for the thread to end.
    let mut w = DecodedWriter::new(&db, Vec::new(), "out", &BatchCopy::new("b", 1), options).unwrap();
    for ts in 0..5 {
        w.push(ts, zeta, None, &values).unwrap();
    }
    drop(w);
}
