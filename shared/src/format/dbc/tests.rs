//! Codec tests: cantools' edge cases by example, and decode(encode(x)) = x as
//! properties over random layouts. The cantools oracle (`make oracle`) checks
//! the same codec against cantools on the corpus.

use proptest::prelude::*;

use super::*;

fn db(text: &str) -> Database {
    Database::from_text(text, "test.dbc").unwrap_or_else(|e| panic!("{e}"))
}

fn decode(db: &Database, id: CanId, data: &[u8]) -> Result<Vec<(String, f64)>, DecodeError> {
    let message = db.lookup(id).expect("message");
    let mut out = Vec::new();
    message.decode(data, &mut out)?;
    Ok(out
        .iter()
        .map(|v| (message.signals[usize::from(v.signal)].name.clone(), v.value))
        .collect())
}

fn value(values: &[(String, f64)], name: &str) -> f64 {
    values
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {values:?}"))
        .1
}

fn names(values: &[(String, f64)]) -> Vec<&str> {
    let mut n: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
    n.sort_unstable();
    n
}

const BASIC: &str = r#"
BO_ 496 Motor: 8 ECU
 SG_ Speed : 7|16@0- (0.5,-100) [0|0] "rpm" X
 SG_ Temp : 16|8@1- (1,-40) [-40|215] "degC" X
 SG_ Flag : 24|1@1+ (1,0) [0|1] "" X
 SG_ Big : 32|32@1+ (2,1) [0|0] "" X

BO_ 2147484165 Ext: 4 ECU
 SG_ Volts : 0|32@1+ (1,0) [0|0] "V" X

BO_ 517 Std: 1 ECU
 SG_ B : 0|8@1+ (1,0) [0|255] "" X
"#;

#[test]
fn motorola_signed_scaled_and_integer_exact_values() {
    let db = db(BASIC);
    // Speed: Motorola from bit 7, 16 bits, signed: 0xFF38 = -200 → -200*0.5-100 = -200.
    let data = [0xFF, 0x38, 0xD8, 0x01, 0xFF, 0xFF, 0xFF, 0xFF];
    let v = decode(&db, CanId::Standard(496), &data).unwrap();
    assert_eq!(value(&v, "Speed"), -200.0);
    assert_eq!(value(&v, "Temp"), -80.0); // 0xD8 = -40 signed, -40 + -40
    assert_eq!(value(&v, "Flag"), 1.0);
    assert_eq!(value(&v, "Big"), 2.0 * 4_294_967_295.0 + 1.0);
}

#[test]
fn standard_and_extended_ids_are_different_messages() {
    let db = db(BASIC);
    assert_eq!(db.lookup(CanId::Extended(517)).unwrap().name, "Ext");
    assert_eq!(db.lookup(CanId::Standard(517)).unwrap().name, "Std");
    assert!(db.lookup(CanId::Standard(0x123)).is_none());
}

#[test]
fn short_frames_are_errors_and_long_ones_are_cut() {
    let db = db(BASIC);
    let err = decode(&db, CanId::Standard(496), &[0; 7]).unwrap_err();
    assert_eq!(err.to_string(), "Wrong data size: 7 instead of 8 bytes");
    assert!(decode(&db, CanId::Standard(517), &[7, 1, 2, 3, 4, 5, 6, 7]).is_ok());
    assert_eq!(value(&decode(&db, CanId::Standard(517), &[7, 9, 9]).unwrap(), "B"), 7.0);
}

const FLOATS: &str = r#"
BO_ 1 Floats: 16 ECU
 SG_ F32 : 0|32@1- (1,0) [0|0] "" X
 SG_ F64 : 39|64@0+ (2,1) [0|0] "" X
 SG_ F16 : 96|16@1+ (1,0) [0|0] "" X

BO_ 2 Odd: 8 ECU
 SG_ F24 : 0|24@1+ (1,0) [0|0] "" X

SIG_VALTYPE_ 1 F32 : 1;
SIG_VALTYPE_ 1 F64 : 2;
SIG_VALTYPE_ 1 F16 : 1;
SIG_VALTYPE_ 2 F24 : 1;
"#;

#[test]
fn ieee_floats_of_16_32_and_64_bits() {
    let db = db(FLOATS);
    let mut data = [0u8; 16];
    data[..4].copy_from_slice(&1.5f32.to_le_bytes());
    data[4..12].copy_from_slice(&(-2.25f64).to_be_bytes());
    data[12..14].copy_from_slice(&half::f16::from_f32(0.5).to_bits().to_le_bytes());
    let v = decode(&db, CanId::Standard(1), &data).unwrap();
    assert_eq!(value(&v, "F32"), 1.5);
    assert_eq!(value(&v, "F64"), -2.25 * 2.0 + 1.0);
    assert_eq!(value(&v, "F16"), 0.5);
    let nan = decode(&db, CanId::Standard(1), &[0xFF; 16]).unwrap();
    assert!(value(&nan, "F32").is_nan() && value(&nan, "F64").is_nan() && value(&nan, "F16").is_nan());
}

#[test]
fn floats_of_other_lengths_load_but_never_decode() {
    let db = db(FLOATS);
    let err = decode(&db, CanId::Standard(2), &[0; 8]).unwrap_err();
    assert!(err.to_string().starts_with("unpacking failed"), "{err}");
}

const MUX: &str = r#"
BO_ 100 Mux: 8 ECU
 SG_ Sel M : 0|8@1+ (1,0) [0|0] "" X
 SG_ Always : 56|8@1+ (1,0) [0|0] "" X
 SG_ A m0 : 8|16@1+ (1,0) [0|0] "" X
 SG_ B m1 : 8|16@1+ (0.5,0) [0|0] "" X
 SG_ C m1 : 24|8@1+ (1,0) [0|0] "" X

BO_ 101 Scaled: 8 ECU
 SG_ Sel M : 0|8@1+ (0.5,0) [0|0] "" X
 SG_ Two m2 : 8|8@1+ (1,0) [0|0] "" X

BO_ 102 Named: 8 ECU
 SG_ Sel M : 0|8@1+ (1,0) [0|0] "" X
 SG_ One m1 : 8|8@1+ (1,0) [0|0] "" X

VAL_ 102 Sel 5 "Idle" 1 "Data" ;
"#;

#[test]
fn simple_multiplexing_selects_signals_by_multiplexer_value() {
    let db = db(MUX);
    let v0 = decode(&db, CanId::Standard(100), &[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    assert_eq!(names(&v0), ["A", "Always", "Sel"]);
    assert_eq!(value(&v0, "A"), 0x0201 as f64);
    let v1 = decode(&db, CanId::Standard(100), &[1, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    assert_eq!(names(&v1), ["Always", "B", "C", "Sel"]);
    let err = decode(&db, CanId::Standard(100), &[9, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert!(
        err.to_string().starts_with("expected multiplexer id 0 or 1, but got 9"),
        "{err}"
    );
}

#[test]
fn multiplexer_selects_by_physical_value() {
    let db = db(MUX);
    // raw 4 * 0.5 = 2 selects m2; raw 5 → 2.5 → int() = 2 as well.
    assert_eq!(
        names(&decode(&db, CanId::Standard(101), &[4, 9, 0, 0, 0, 0, 0, 0]).unwrap()),
        ["Sel", "Two"]
    );
    assert_eq!(
        names(&decode(&db, CanId::Standard(101), &[5, 9, 0, 0, 0, 0, 0, 0]).unwrap()),
        ["Sel", "Two"]
    );
    assert!(decode(&db, CanId::Standard(101), &[2, 9, 0, 0, 0, 0, 0, 0]).is_err());
}

#[test]
fn a_value_table_entry_makes_a_multiplexer_value_valid() {
    let db = db(MUX);
    assert_eq!(
        names(&decode(&db, CanId::Standard(102), &[5, 9, 0, 0, 0, 0, 0, 0]).unwrap()),
        ["Sel"]
    );
    assert_eq!(
        db.lookup(CanId::Standard(102)).unwrap().signals[0].choice(5),
        Some("Idle")
    );
    assert!(decode(&db, CanId::Standard(102), &[6, 9, 0, 0, 0, 0, 0, 0]).is_err());
}

/// Nested multiplexing and value ranges (`SG_MUL_VAL_`); also what
/// [`columns`](super::columns) must refuse.
pub(super) const EXTENDED_MUX: &str = r#"
BO_ 200 Nested: 8 ECU
 SG_ Outer M : 0|4@1+ (1,0) [0|0] "" X
 SG_ Inner m1M : 4|4@1+ (1,0) [0|0] "" X
 SG_ Leaf1 m2 : 8|8@1+ (1,0) [0|0] "" X
 SG_ Leaf2 m3 : 8|16@1+ (1,0) [0|0] "" X
 SG_ Wide m0 : 8|8@1+ (1,0) [0|0] "" X

SG_MUL_VAL_ 200 Inner Outer 1-1;
SG_MUL_VAL_ 200 Leaf1 Inner 2-2, 10-12;
SG_MUL_VAL_ 200 Leaf2 Inner 3-3;
SG_MUL_VAL_ 200 Wide Outer 0-0, 5-7;
"#;

#[test]
fn nested_multiplexers_and_value_ranges() {
    let db = db(EXTENDED_MUX);
    let id = CanId::Standard(200);
    // Outer=1 → Inner; Inner=2 → Leaf1.
    assert_eq!(
        names(&decode(&db, id, &[0x21, 7, 0, 0, 0, 0, 0, 0]).unwrap()),
        ["Inner", "Leaf1", "Outer"]
    );
    // Inner=11 is inside the range 10-12.
    assert_eq!(
        names(&decode(&db, id, &[0xB1, 7, 0, 0, 0, 0, 0, 0]).unwrap()),
        ["Inner", "Leaf1", "Outer"]
    );
    assert_eq!(
        names(&decode(&db, id, &[0x31, 7, 8, 0, 0, 0, 0, 0]).unwrap()),
        ["Inner", "Leaf2", "Outer"]
    );
    // Outer=6 selects Wide through the range 5-7.
    assert_eq!(
        names(&decode(&db, id, &[0x06, 7, 0, 0, 0, 0, 0, 0]).unwrap()),
        ["Outer", "Wide"]
    );
    assert!(decode(&db, id, &[0x41, 7, 0, 0, 0, 0, 0, 0]).is_err());
    assert!(decode(&db, id, &[0x04, 7, 0, 0, 0, 0, 0, 0]).is_err());
    let leaf1 = db.lookup(id).unwrap().signal("Leaf1").unwrap();
    let multiplexed = leaf1.multiplexed.as_ref().unwrap();
    assert_eq!(multiplexed.multiplexer, "Inner");
    assert_eq!(multiplexed.values, [(2, 2), (10, 12)]);
}

#[test]
fn long_names_replace_short_ones_and_independent_signals_are_dropped() {
    let db = db(r#"
BO_ 1 Short: 1 ECU
 SG_ Sig : 0|8@1+ (1,0) [0|0] "" X

BO_ 3221225472 VECTOR__INDEPENDENT_SIG_MSG: 0 Vector__XXX
 SG_ Lost : 0|8@1+ (1,0) [0|0] "" X

BA_DEF_ BO_ "SystemMessageLongSymbol" STRING ;
BA_DEF_ SG_ "SystemSignalLongSymbol" STRING ;
BA_ "SystemMessageLongSymbol" BO_ 1 "AVeryLongMessageNameBeyondThirtyTwoChars";
BA_ "SystemSignalLongSymbol" SG_ 1 Sig "AVeryLongSignalNameBeyondThirtyTwoChars";
VAL_ 3221225472 Lost 0 "Zero" ;
"#);
    assert_eq!(db.messages().len(), 1);
    let m = &db.messages()[0];
    assert_eq!(m.name, "AVeryLongMessageNameBeyondThirtyTwoChars");
    assert_eq!(m.signals[0].name, "AVeryLongSignalNameBeyondThirtyTwoChars");
}

#[test]
fn the_later_of_two_messages_with_one_id_wins() {
    let db = db(r#"
BO_ 5 First: 1 ECU
 SG_ A : 0|8@1+ (1,0) [0|0] "" X

BO_ 5 Second: 1 ECU
 SG_ B : 0|8@1+ (1,0) [0|0] "" X
"#);
    assert_eq!(db.lookup(CanId::Standard(5)).unwrap().name, "Second");
}

/// The error of loading `text` in strict mode, which rejects what cantools' strict mode does.
fn load_error(text: &str) -> LoadError {
    Database::from_text_with(text, "bad.dbc", LoadOptions { strict: true }).unwrap_err()
}

#[test]
fn strict_mode_rejects_what_cantools_rejects_with_file_and_line() {
    let overlap =
        load_error("\nBO_ 1 M: 8 E\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" X\n SG_ B : 4|8@1+ (1,0) [0|0] \"\" X\n");
    assert_eq!(overlap.to_string(), "bad.dbc:2: signals B and A overlap in message M");
    let outside = load_error("BO_ 1 M: 1 E\n SG_ A : 4|8@1+ (1,0) [0|0] \"\" X\n");
    assert_eq!(outside.to_string(), "bad.dbc:1: signal A does not fit in message M");
    let std_id = load_error("BO_ 4096 M: 1 E\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" X\n");
    assert_eq!(
        std_id.to_string(),
        "bad.dbc:1: standard frame id 0x1000 is more than 11 bits in message M"
    );
    let unknown_val = load_error("BO_ 1 M: 1 E\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" X\n\nVAL_ 1 Nope 1 \"x\" ;\n");
    assert_eq!(
        unknown_val.to_string(),
        "bad.dbc:4: VAL_ for unknown signal Nope of message 1"
    );
    let syntax = load_error("BO_ 1 M: 1 E\n SG_ A : zero|8@1+ (1,0) [0|0] \"\" X\n");
    assert_eq!(syntax.line, Some(2));
    assert!(syntax.to_string().starts_with("bad.dbc:2: column "), "{syntax}");
}

#[test]
fn overlap_is_allowed_between_alternatives_of_a_multiplexer() {
    // A and B share bits but never appear together.
    db(MUX);
    let e = load_error(
        "BO_ 1 M: 2 E\n SG_ S M : 0|4@1+ (1,0) [0|0] \"\" X\n SG_ A m0 : 8|8@1+ (1,0) [0|0] \"\" X\n SG_ P : 12|4@1+ (1,0) [0|0] \"\" X\n",
    );
    assert!(e.to_string().contains("overlap"), "{e}");
}

#[test]
fn cp1252_files_load() {
    let mut bytes = b"BO_ 1 M: 1 E\n SG_ T : 0|8@1+ (1,0) [0|0] \"".to_vec();
    bytes.push(0xB0); // '°' in cp1252, invalid as UTF-8
    bytes.extend_from_slice(b"C\" X\n");
    let db = Database::from_bytes(&bytes, "cp1252.dbc").unwrap();
    assert_eq!(db.messages()[0].signals[0].unit, "°C");
}

#[test]
fn encoding_checks_ranges_and_missing_values() {
    let db = db(BASIC);
    let m = db.lookup(CanId::Standard(496)).unwrap();
    let err = m
        .encode_named(&[("Speed", 0.0), ("Temp", 0.0), ("Flag", 0.0)])
        .unwrap_err();
    assert_eq!(err.to_string(), "message Motor: no value given for signal Big");
    let err = m
        .encode_named(&[("Speed", 0.0), ("Temp", 300.0), ("Flag", 0.0), ("Big", 1.0)])
        .unwrap_err();
    assert!(
        matches!(err, EncodeError::OutOfRange { ref signal, .. } if signal == "Temp"),
        "{err}"
    );
}

#[test]
fn encoding_follows_the_multiplexer() {
    let db = db(MUX);
    let m = db.lookup(CanId::Standard(100)).unwrap();
    let payload = m
        .encode_named(&[("Sel", 1.0), ("Always", 9.0), ("B", 100.5), ("C", 3.0)])
        .unwrap();
    let v = decode(&db, CanId::Standard(100), &payload).unwrap();
    assert_eq!(names(&v), ["Always", "B", "C", "Sel"]);
    assert_eq!(value(&v, "B"), 100.5);
    // A belongs to branch 0 and is not needed for branch 1.
    assert!(m.encode_named(&[("Sel", 7.0), ("Always", 9.0)]).is_err());
}

#[test]
fn the_platform_dbc_loads_with_every_message() {
    let db = Database::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../dbc/ev_powertrain.dbc")).unwrap();
    assert_eq!(db.messages().len(), 14);
    let cells = db.message_by_name("BMS_CellVoltages").unwrap();
    assert!(cells.is_multiplexed());
    assert_eq!(
        cells
            .signals
            .iter()
            .filter(|s| s.name.starts_with("CellVoltage") && s.unit == "V")
            .count(),
        96
    );
    assert!(db.message_by_name("BMS_BalancingFD").unwrap().is_fd);
    assert_eq!(db.message_by_name("BMS_PackStatus").unwrap().cycle_time_ms, Some(100));
    let obc = db.lookup(CanId::Extended(0x18FF50E5)).unwrap();
    assert_eq!(obc.signal("ChargerState").unwrap().choice(3), Some("ConstantVoltage"));
}

// ---- properties: decode(encode(x)) == x within the signal's resolution ----

#[derive(Clone, Debug)]
struct SignalSpec {
    big_endian: bool,
    start: u32,
    length: u32,
    signed: bool,
    float: bool,
    factor: f64,
    offset: f64,
}

impl SignalSpec {
    fn kind(&self) -> &'static str {
        if self.signed { "-" } else { "+" }
    }
}

/// A random, valid message: each signal gets bytes of its own, at a random
/// bit offset within its first byte, in either byte order.
fn message_strategy() -> impl Strategy<Value = (usize, Vec<SignalSpec>)> {
    let length = prop_oneof![Just(8usize), Just(64usize), 1usize..=8, Just(12usize)];
    let specs = proptest::collection::vec(
        (any::<bool>(), 1u32..=64, any::<bool>(), 0u8..6, 0u8..4, 0u32..8),
        1..12,
    );
    (length, specs).prop_map(|(length, raw)| {
        let mut next_byte = 0u32;
        let mut specs = Vec::new();
        for (big_endian, len, signed, float_pick, scale_pick, bit_offset) in raw {
            let float_len = match float_pick {
                0 => Some(32),
                1 => Some(64),
                2 => Some(16),
                _ => None,
            };
            let length_bits = float_len.unwrap_or(len);
            let bytes = (bit_offset + length_bits).div_ceil(8);
            if next_byte + bytes > length as u32 {
                continue;
            }
            let first = 8 * next_byte + bit_offset;
            next_byte += bytes;
            // Intel: the LSB's bit number; Motorola: the MSB's sawtooth number.
            let start = if big_endian {
                8 * (first / 8) + (7 - first % 8)
            } else {
                first
            };
            let (factor, offset) = [(1.0, 0.0), (0.1, -40.0), (2.0, 1.0), (0.001, 0.5)][scale_pick as usize];
            specs.push(SignalSpec {
                big_endian,
                start,
                length: length_bits,
                signed,
                float: float_len.is_some(),
                factor,
                offset,
            });
        }
        (length, specs)
    })
}

fn dbc_text(length: usize, specs: &[SignalSpec]) -> String {
    let mut text = format!("BO_ 1 Random: {length} ECU\n");
    for (i, s) in specs.iter().enumerate() {
        text += &format!(
            " SG_ S{i} : {}|{}@{}{} ({},{}) [0|0] \"\" X\n",
            s.start,
            s.length,
            if s.big_endian { 0 } else { 1 },
            s.kind(),
            s.factor,
            s.offset
        );
    }
    for (i, s) in specs.iter().enumerate() {
        if s.float {
            text += &format!("SIG_VALTYPE_ 1 S{i} : {};\n", if s.length == 64 { 2 } else { 1 });
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn decode_inverts_encode(layout in message_strategy(), seed in any::<u64>()) {
        let (length, specs) = layout;
        let db = Database::from_text(&dbc_text(length, &specs), "random.dbc").unwrap();
        let message = &db.messages()[0];
        let mut rng = seed;
        let mut next = || { rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); rng };
        let mut expected = Vec::new();
        for s in &message.signals {
            let raw = next();
            let physical = match s.kind {
                ValueKind::Float32 => f64::from(f32::from_bits(raw as u32)) ,
                ValueKind::Float64 => f64::from_bits(raw),
                ValueKind::Float16 => f64::from(half::f16::from_bits(raw as u16)),
                // Scaled values keep to 52 bits, where f64 holds every raw step.
                ValueKind::Unsigned if s.factor != 1.0 => (raw & bits::mask(s.length.min(52))) as f64 * s.factor + s.offset,
                ValueKind::Unsigned => (raw & bits::mask(s.length)) as f64,
                ValueKind::Signed => {
                    let len = if s.factor != 1.0 { s.length.min(52) } else { s.length };
                    let shift = 64 - len;
                    (((raw << shift) as i64) >> shift) as f64 * s.factor + s.offset
                }
                ValueKind::InvalidFloat => unreachable!(),
            };
            let physical = if s.kind.is_float() && s.factor != 1.0 { physical * s.factor + s.offset } else { physical };
            expected.push(physical);
        }
        let payload = message.encode(|i, _| Some(expected[i])).unwrap();
        prop_assert_eq!(payload.len(), length);
        let mut out = Vec::new();
        message.decode(&payload, &mut out).unwrap();
        prop_assert_eq!(out.len(), message.signals.len());
        for v in &out {
            let s = &message.signals[usize::from(v.signal)];
            let want = expected[usize::from(v.signal)];
            if want.is_nan() {
                prop_assert!(v.value.is_nan(), "{}: expected NaN, got {}", s.name, v.value);
            } else if !want.is_finite() || !s.kind.is_float() && s.length >= 53 {
                // Infinities exactly; integers past 2^53 within f64's own precision.
                prop_assert!(v.value == want || ((v.value - want) / want).abs() < 1e-12, "{}: {} != {}", s.name, v.value, want);
            } else {
                let resolution = if s.kind.is_float() { want.abs() * 1e-3 } else { s.factor.abs() * 0.5 + want.abs() * 1e-12 };
                prop_assert!((v.value - want).abs() <= resolution.max(1e-9), "{}: {} != {} ({:?})", s.name, v.value, want, s.kind);
            }
        }
    }

    #[test]
    fn multiplexed_messages_round_trip(outer in 0u32..4, inner in prop_oneof![Just(2u32), Just(3), 10u32..=12], a in 0u8..=255, b in 0u16..=u16::MAX) {
        let db = db(EXTENDED_MUX);
        let m = db.lookup(CanId::Standard(200)).unwrap();
        let values = [("Outer", f64::from(outer)), ("Inner", f64::from(inner)), ("Leaf1", f64::from(a)), ("Leaf2", f64::from(b)), ("Wide", f64::from(a))];
        let payload = m.encode_named(&values);
        if outer == 2 || outer == 3 {
            prop_assert!(payload.is_err());
            return Ok(());
        }
        let payload = payload.unwrap();
        let decoded = decode(&db, CanId::Standard(200), &payload).unwrap();
        for (name, got) in &decoded {
            let want = values.iter().find(|(n, _)| n == name).unwrap().1;
            prop_assert_eq!(*got, want, "{}", name);
        }
        let expected: &[&str] = match (outer, inner) {
            (0, _) => &["Outer", "Wide"],
            (1, 3) => &["Inner", "Leaf2", "Outer"],
            (1, _) => &["Inner", "Leaf1", "Outer"],
            _ => unreachable!(),
        };
        prop_assert_eq!(names(&decoded), expected);
    }

    #[test]
    fn the_platform_dbc_round_trips_every_message(seed in any::<u64>()) {
        let db = Database::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../dbc/ev_powertrain.dbc")).unwrap();
        let mut rng = seed;
        for m in db.messages() {
            let mut values = Vec::new();
            for s in &m.signals {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let (lo, hi) = (s.minimum.unwrap_or(0.0), s.maximum.unwrap_or(1.0));
                let mut v = lo + (hi - lo) * ((rng >> 11) as f64 / (1u64 << 53) as f64);
                if s.is_multiplexer { v = v.floor(); }
                if s.kind.is_float() { v = f64::from(v as f32); }
                values.push(v);
            }
            let payload = m.encode(|i, _| Some(values[i])).unwrap();
            let mut out = Vec::new();
            m.decode(&payload, &mut out).unwrap();
            for v in &out {
                let s = &m.signals[usize::from(v.signal)];
                let want = values[usize::from(v.signal)];
                prop_assert!((v.value - want).abs() <= s.factor.abs() * 0.5 + 1e-9, "{}.{}: {} != {}", m.name, s.name, v.value, want);
            }
        }
    }
}

#[test]
fn the_built_in_dbc_compiles() {
    let db = super::built_in().unwrap();
    assert!(!db.messages().is_empty());
}

/// The real-world problems of `tests/oracle/dbc/lenient/`: each loads by
/// default with a warning naming the file and line, and strict mode rejects
/// it with the message it always had.
mod lenient {
    use super::super::{Database, LoadOptions};
    use crate::format::frame::CanId;

    fn text(name: &str) -> String {
        let path = format!("{}/../tests/oracle/dbc/lenient/{name}.dbc", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn lenient(name: &str) -> Database {
        Database::from_text(&text(name), name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn strict_error(name: &str) -> String {
        Database::from_text_with(&text(name), name, LoadOptions { strict: true })
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    fn decode(db: &Database, id: CanId, data: &[u8]) -> Vec<(String, f64)> {
        let message = db.lookup(id).unwrap();
        let mut values = Vec::new();
        message.decode(data, &mut values).unwrap();
        values
            .iter()
            .map(|v| (message.signals[usize::from(v.signal)].name.clone(), v.value))
            .collect()
    }

    #[test]
    fn overlapping_signals_each_decode_on_their_own() {
        assert!(strict_error("overlapping_signals").contains("overlap in message WheelSpeeds"));
        let db = lenient("overlapping_signals");
        let warnings: Vec<String> = db.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(warnings[0].starts_with("overlapping_signals:"), "{}", warnings[0]);
        assert!(warnings[0].contains("tolerated: signals"), "{}", warnings[0]);
        let values = decode(&db, CanId::Standard(256), &[0x34, 0x12, 0x78, 0x56, 0, 0, 0, 0x05]);
        let get = |n: &str| values.iter().find(|(name, _)| name == n).unwrap().1;
        assert_eq!(get("WheelSpeedFL"), 0x1234 as f64 * 0.01);
        assert_eq!(get("WheelSpeedFL_Low"), 0x34 as f64);
        assert_eq!(get("Counter"), 5.0);
    }

    #[test]
    fn a_signal_past_the_message_is_left_out_and_the_others_decode() {
        assert!(
            strict_error("signal_past_length").contains("signal BatteryCurrent does not fit in message BatteryStatus")
        );
        let db = lenient("signal_past_length");
        assert!(db.warnings()[0].to_string().contains("BatteryCurrent does not fit"));
        assert_eq!(
            decode(&db, CanId::Standard(512), &[0x10, 0x27, 0, 0x50]),
            [("BatteryVoltage".to_string(), 100.0)]
        );
        assert_eq!(
            decode(&db, CanId::Standard(513), &[0x5a, 0x3c]),
            [("BatteryTempMax".to_string(), 50.0)]
        );
    }

    #[test]
    fn value_tables_of_unknown_signals_are_ignored() {
        for (name, line) in [
            ("val_unknown_signal", "ParkBrakeState"),
            ("val_unknown_message", "ParkBrake"),
        ] {
            let err = strict_error(name);
            assert!(err.contains(&format!("VAL_ for unknown signal {line}")), "{err}");
            let db = lenient(name);
            let warning = &db.warnings()[0];
            assert!(warning.line.is_some(), "{warning}");
            assert!(warning.message.ends_with("(ignored)"), "{warning}");
            let gear = &db.messages()[0].signals[0];
            assert_eq!(gear.choices.len(), 4, "the table of a real signal stays");
        }
    }

    #[test]
    fn a_large_id_without_the_extended_flag_is_extended() {
        assert!(strict_error("extended_id_without_bit31").contains("standard frame id 0xcf00400 is more than 11 bits"));
        let db = lenient("extended_id_without_bit31");
        let values = decode(
            &db,
            CanId::Extended(0x0CF0_0400),
            &[0xff, 0xff, 0xff, 0x20, 0x19, 0xff, 0xff, 0xff],
        );
        assert_eq!(values, [("EngineSpeed".to_string(), 804.0)]);
        assert!(db.lookup(CanId::Standard(0x123)).is_some());
    }

    #[test]
    fn names_starting_with_a_digit_and_any_section_order_load_in_both_modes() {
        for name in ["digit_message_name", "digit_signal_name", "section_order"] {
            let db = Database::from_text_with(&text(name), name, LoadOptions { strict: true }).unwrap();
            assert!(db.warnings().is_empty());
        }
        assert_eq!(lenient("digit_message_name").messages()[0].name, "2017_5");
        assert_eq!(lenient("digit_signal_name").messages()[0].signals[0].name, "0_COUNTER");
        let db = lenient("section_order");
        let door = db.message_by_name("DoorStatus").unwrap();
        assert_eq!(door.cycle_time_ms, Some(100));
        assert_eq!(door.signals[0].choices.len(), 4);
    }
}

/// J1939: parameter groups match by PGN, whatever the priority and source
/// address of the frame; the exact DBC id decodes as cantools decodes it.
mod j1939 {
    use super::super::Database;
    use crate::format::frame::CanId;

    fn db() -> Database {
        Database::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/oracle/dbc/lenient/j1939.dbc"
        ))
        .unwrap()
    }

    #[test]
    fn pgn_and_source_address_come_from_the_id() {
        assert_eq!(CanId::Extended(0x0CF0_0401).pgn(), Some(0xF004));
        assert_eq!(CanId::Extended(0x18FE_EE17).pgn(), Some(0xFEEE));
        // PDU1 (PDU format below 240): the PDU specific byte is a destination, not part of the group.
        assert_eq!(CanId::Extended(0x18EA_0017).pgn(), Some(0xEA00));
        assert_eq!(CanId::Extended(0x18EA_FF17).pgn(), Some(0xEA00));
        assert_eq!(CanId::Extended(0x0CF0_0401).source_address(), Some(0x01));
        assert_eq!(CanId::Standard(0x123).pgn(), None);
    }

    #[test]
    fn frames_of_any_source_and_priority_find_their_parameter_group() {
        let db = db();
        assert!(db.messages().iter().all(|m| m.is_j1939));
        let speed = [0xff, 0xff, 0xff, 0x20, 0x19, 0xff, 0xff, 0xff];
        for id in [0x0CF0_0400, 0x0CF0_0401, 0x0CF0_04FE, 0x18F0_0400] {
            let message = db.lookup(CanId::Extended(id)).unwrap_or_else(|| panic!("0x{id:x}"));
            assert_eq!(message.name, "EEC1");
            let mut values = Vec::new();
            message.decode(&speed, &mut values).unwrap();
            assert_eq!(values[0].value, 804.0);
        }
        assert_eq!(db.lookup(CanId::Extended(0x18FE_EE17)).unwrap().name, "ET1");
        assert!(db.lookup(CanId::Extended(0x18FE_EF00)).is_none(), "another PGN");
        assert!(db.lookup(CanId::Standard(0x400)).is_none());
    }

    #[test]
    fn plain_extended_messages_still_match_exactly() {
        let db = Database::from_text(
            "BO_ 2364539904 EEC1: 8 ECU\n SG_ EngineSpeed : 24|16@1+ (0.125,0) [0|8031.875] \"rpm\" X\n",
            "plain.dbc",
        )
        .unwrap();
        assert!(!db.messages()[0].is_j1939);
        assert!(db.lookup(CanId::Extended(0x0CF0_0400)).is_some());
        assert!(db.lookup(CanId::Extended(0x0CF0_0401)).is_none());
    }

    #[test]
    fn a_protocol_type_of_j1939_makes_every_extended_message_a_parameter_group() {
        let db = Database::from_text(
            "BA_DEF_ \"ProtocolType\" STRING ;\nBA_ \"ProtocolType\" \"J1939\";\n\
             BO_ 2566844672 CCVS1: 8 ECU\n SG_ WheelBasedVehicleSpeed : 8|16@1+ (0.00390625,0) [0|250.996] \"km/h\" X\n\
             BO_ 291 Std: 8 ECU\n SG_ V : 0|8@1+ (1,0) [0|255] \"\" X\n",
            "protocol.dbc",
        )
        .unwrap();
        assert_eq!(db.lookup(CanId::Extended(0x18FE_F117)).unwrap().name, "CCVS1");
        assert!(!db.message_by_name("Std").unwrap().is_j1939);
    }
}
