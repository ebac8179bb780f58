"""The Parquet files Canopy writes, read by pyarrow and DuckDB against the
documented schemas (docs/lake.md)."""

import json
import pathlib
import random

import cantools
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

RAW_SCHEMA = {
    "ts_us": pa.int64(),
    "bus": pa.dictionary(pa.int32(), pa.string()),
    "can_id": pa.int64(),
    "extended": pa.bool_(),
    "fd": pa.bool_(),
    "dlc": pa.int32(),
    "data": pa.binary(),
    "flags": pa.int32(),
}
DECODED_SCHEMA = {
    "ts_us": pa.int64(),
    "message": pa.dictionary(pa.int32(), pa.string()),
    "signal": pa.dictionary(pa.int32(), pa.string()),
    "value": pa.float64(),
    "unit": pa.dictionary(pa.int32(), pa.string()),
    "source_address": pa.int32(),
    # Which batch, and which copy of it (docs/lake.md, "Compaction").
    "batch": pa.dictionary(pa.int32(), pa.string()),
    "written_us": pa.int64(),
    # Outside the signal's DBC [min, max] (docs/lake.md, "Out-of-range values").
    "out_of_range": pa.bool_(),
}


def sample_log(dbc, path, frames=3000):
    """A candump log of valid frames of every message, with a few unknown ids."""
    db = cantools.database.load_file(str(dbc))
    rng = random.Random(7)
    lines = []
    ts = 1_700_000_000_000_000
    for i in range(frames):
        ts += rng.randint(100, 2000)
        if i % 100 == 99:
            can_id, ext, data, fd = 0x7A0, False, bytes(rng.randbytes(8)), False
        else:
            msg = rng.choice(db.messages)
            values = {}
            for s in msg.signals:
                lo = s.minimum if s.minimum is not None else 0
                hi = s.maximum if s.maximum is not None else 1
                values[s.name] = rng.uniform(lo, hi) if not s.is_multiplexer else 0
            if msg.is_multiplexed():
                mux = msg.signals[0] if msg.signals[0].is_multiplexer else next(s for s in msg.signals if s.is_multiplexer)
                values[mux.name] = rng.choice(sorted(msg._codecs["multiplexers"][mux.name]))
            data = msg.encode(values, strict=False)
            can_id, ext, fd = msg.frame_id, msg.is_extended_frame, msg.length > 8
        sec, usec = divmod(ts, 1_000_000)
        ident = f"{can_id:08X}" if ext else f"{can_id:03X}"
        body = f"{ident}##1{data.hex().upper()}" if fd else f"{ident}#{data.hex().upper()}"
        lines.append(f"({sec}.{usec:06d}) can{i % 2} {body}")
    path.write_text("\n".join(lines) + "\n")
    return lines


def schema_of(table):
    return {f.name: f.type for f in table.schema}


def test_raw_and_decoded_files_have_the_documented_schema(tmp_path, edge, dbc):
    log = tmp_path / "drive.log"
    lines = sample_log(dbc, log)
    raw = tmp_path / "raw.parquet"
    decoded = tmp_path / "decoded.parquet"
    edge("convert", "--candump", log, "--output", raw)
    edge("decode", "--dbc", dbc, "--raw", raw, "--format", "parquet", "--output", decoded)

    raw_table = pq.read_table(raw)
    assert schema_of(raw_table) == RAW_SCHEMA
    assert raw_table.num_rows == len(lines)
    meta = pq.ParquetFile(raw).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    ts = raw_table.column("ts_us").to_pylist()
    assert ts == sorted(ts), "raw rows are sorted by time"
    first = raw_table.slice(0, 1).to_pylist()[0]
    sec, rest = lines[0][1:].split(")", 1)
    assert first["ts_us"] == int(sec.replace(".", ""))
    assert first["bus"] == rest.split()[0]

    dec_table = pq.read_table(decoded)
    assert schema_of(dec_table) == DECODED_SCHEMA
    group = pq.ParquetFile(decoded).metadata.row_group(0)
    codecs = {group.column(i).path_in_schema: group.column(i).compression for i in range(group.num_columns)}
    # The values are ZSTD; the dictionary columns, written from their runs, are
    # a dictionary page and a few RLE runs: some tens of bytes, left uncompressed.
    assert codecs["ts_us"] == codecs["value"] == "ZSTD"
    for column in ("message", "signal", "unit", "batch", "written_us"):
        assert codecs[column] == "UNCOMPRESSED"
        assert group.column(list(codecs).index(column)).total_compressed_size < 4096
    rows = [(r["message"], r["signal"], r["ts_us"]) for r in dec_table.select(["message", "signal", "ts_us"]).to_pylist()]
    assert rows == sorted(rows), "decoded rows are sorted by (message, signal, ts_us)"


def test_decoded_parquet_holds_exactly_what_the_jsonl_decode_gives(tmp_path, edge, dbc):
    log = tmp_path / "drive.log"
    sample_log(dbc, log, frames=1500)
    decoded = tmp_path / "decoded.parquet"
    edge("decode", "--dbc", dbc, "--candump", log, "--format", "parquet", "--output", decoded)
    jsonl = edge("decode", "--dbc", dbc, "--candump", log, "--format", "jsonl").stdout
    db = cantools.database.load_file(str(dbc))
    units = {(m.name, s.name): s.unit or "" for m in db.messages for s in m.signals}
    expected = []
    for line in jsonl.splitlines():
        frame = json.loads(line)
        ts = round(frame["timestamp"] * 1_000_000)
        for name, value in (frame["signals"] or {}).items():
            expected.append((frame["message"], name, ts, float(value), units[(frame["message"], name)]))
    got = duckdb.sql(f"SELECT message, signal, ts_us, value, unit FROM '{decoded}' ORDER BY message, signal, ts_us").fetchall()
    assert len(got) == len(expected) > 5_000
    assert got == sorted(expected)


def test_duckdb_answers_a_time_bucketed_query(tmp_path, edge, dbc):
    log = tmp_path / "drive.log"
    sample_log(dbc, log)
    decoded = tmp_path / "decoded.parquet"
    edge("decode", "--dbc", dbc, "--candump", log, "--format", "parquet", "--output", decoded)
    rows = duckdb.sql(
        f"""SELECT time_bucket(INTERVAL 1 SECOND, make_timestamp(ts_us)) AS t, avg(value), count(*)
            FROM '{decoded}' WHERE message = 'BMS_PackStatus' AND signal = 'PackVoltage'
            GROUP BY t ORDER BY t"""
    ).fetchall()
    assert rows and all(0 <= avg <= 500 for _, avg, _ in rows)


def test_j1939_frames_of_two_sources_decode_to_one_message_each_and_keep_their_source(tmp_path, edge):
    """Engine speed (EEC1), coolant temperature (ET1) and vehicle speed (CCVS1)
    from the engine (SA 0x00) and a second ECU (SA 0x0F), at other priorities
    too: one message each in the lake, told apart by source_address."""
    dbc = pathlib.Path(__file__).resolve().parents[1] / "oracle" / "dbc" / "lenient" / "j1939.dbc"
    db = cantools.database.load_file(str(dbc))
    groups = [  # (message, signal, ids of the two senders, value of frame i)
        ("EEC1", "EngineSpeed", (0x0CF00400, 0x18F0040F), lambda i: 600 + i),
        ("ET1", "EngineCoolantTemperature", (0x18FEEE00, 0x1CFEEE0F), lambda i: 60 + i % 30),
        ("CCVS1", "WheelBasedVehicleSpeed", (0x18FEF100, 0x18FEF10F), lambda i: i / 2),
    ]
    log = tmp_path / "truck.log"
    lines = []
    ts = 1_700_000_000_000_000
    expected = []
    for i in range(200):
        for message, signal, ids, value in groups:
            ts += 1_000
            sender = ids[i % 2]
            data = db.get_message_by_name(message).encode({signal: value(i)}, strict=False)
            lines.append(f"({ts // 1_000_000}.{ts % 1_000_000:06d}) can0 {sender:08X}#{data.hex().upper()}")
            expected.append((message, signal, sender & 0xFF))
    log.write_text("\n".join(lines) + "\n")
    decoded = tmp_path / "decoded.parquet"
    edge("decode", "--dbc", dbc, "--candump", log, "--format", "parquet", "--output", decoded)
    assert schema_of(pq.read_table(decoded)) == DECODED_SCHEMA
    rows = duckdb.sql(
        f"""SELECT message, signal, source_address, count(*) FROM '{decoded}'
            GROUP BY ALL ORDER BY message, source_address"""
    ).fetchall()
    counts = {}
    for key in expected:
        counts[key] = counts.get(key, 0) + 1
    assert rows == sorted((m, s, a, n) for (m, s, a), n in counts.items())
    speeds = duckdb.sql(
        f"SELECT source_address, min(value), max(value) FROM '{decoded}' WHERE message = 'EEC1' GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert speeds == [(0x00, 600.0, 798.0), (0x0F, 601.0, 799.0)]


def test_values_past_their_dbc_range_are_flagged_as_cantools_ranges_say(tmp_path, edge, dbc):
    """Frames whose values go up to half again past each signal's DBC range:
    the lake flags exactly the values outside cantools' minimum and maximum,
    and the 1 s tier counts as many."""
    db = cantools.database.load_file(str(dbc))
    rng = random.Random(11)
    lines, ts = [], 1_700_000_000_000_000
    for i in range(2000):
        msg = rng.choice([m for m in db.messages if not m.is_multiplexed()])
        values = {}
        for s in msg.signals:
            lo = s.minimum if s.minimum is not None else 0
            hi = s.maximum if s.maximum is not None else 1
            span = hi - lo
            value = rng.uniform(lo - span / 2, hi + span / 2)
            if not s.is_float:
                # Within what the signal's bits can carry.
                raw_lo, raw_hi = (-(2 ** (s.length - 1)), 2 ** (s.length - 1) - 1) if s.is_signed else (0, 2**s.length - 1)
                ends = sorted(raw * s.scale + s.offset for raw in (raw_lo, raw_hi))
                value = min(max(value, ends[0]), ends[1])
            values[s.name] = value
        data = msg.encode(values, strict=False, scaling=True)
        ts += 1000
        ident = f"{msg.frame_id:08X}" if msg.is_extended_frame else f"{msg.frame_id:03X}"
        body = f"{ident}##1{data.hex().upper()}" if msg.length > 8 else f"{ident}#{data.hex().upper()}"
        lines.append(f"({ts // 1_000_000}.{ts % 1_000_000:06d}) can0 {body}")
    log = tmp_path / "wild.log"
    log.write_text("\n".join(lines) + "\n")
    decoded = tmp_path / "decoded.parquet"
    edge("decode", "--dbc", dbc, "--candump", log, "--format", "parquet", "--output", decoded, "--rollups")
    ranges = {(m.name, s.name): (s.minimum, s.maximum) for m in db.messages for s in m.signals}
    outside = 0
    for message, signal, value in duckdb.sql(f"SELECT message, signal, value FROM '{decoded}'").fetchall():
        lo, hi = ranges[(message, signal)]
        if lo is None or hi is None or (lo == 0 and hi == 0):
            continue
        tolerance = 1e-9 * max(abs(lo), abs(hi), 1)
        outside += value < lo - tolerance or value > hi + tolerance
    flagged = duckdb.sql(f"SELECT count(*) FROM '{decoded}' WHERE out_of_range").fetchall()[0][0]
    assert flagged == outside > 100
    tier = f"{decoded}.rollup_1s.parquet"
    assert duckdb.sql(f"SELECT sum(n_out_of_range) FROM '{tier}'").fetchall()[0][0] == outside
