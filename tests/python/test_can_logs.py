"""CAN logs in and out of the edge's tools, with python-can as the reader and
writer on the other side: a generated log of classic, extended, CAN FD
(BRS, ESI), remote and error frames on three buses goes into the raw lake
format, out again as ASC, BLF, candump and CSV, and python-can reads back
every frame exactly; ASC and BLF logs python-can writes come into the raw
lake format with the same frames."""

import csv
import os
import random
import time

import can
import pyarrow.parquet as pq
import pytest

# ASC logs carry their start as a date without a zone: both sides take UTC.
os.environ["TZ"] = "UTC"
time.tzset()

FD_LENGTHS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64]
# The raw lake's flag bits (docs/lake.md).
FD, BRS, ESI, REMOTE, ERROR = 1, 2, 4, 8, 16


def frames(n=600):
    """(ts_us, bus, id, extended, flags, dlc, data) of every kind, on can0-can2,
    the first on a whole millisecond (an ASC log's start is written to the ms)."""
    rng = random.Random(11)
    ts = 1_700_000_000_123_000
    out = []
    for i in range(n):
        bus = f"can{i % 3}"
        kind = i % 6
        if kind == 0:
            data = rng.randbytes(rng.randint(0, 8))
            out.append((ts, bus, rng.randint(0, 0x7FF), False, 0, len(data), data))
        elif kind == 1:
            data = rng.randbytes(8)
            out.append((ts, bus, rng.randint(0, 0x1FFFFFFF), True, 0, len(data), data))
        elif kind == 2:
            # python-can reads an empty CAN FD frame in ASC as a remote one: none here.
            data = rng.randbytes(rng.choice(FD_LENGTHS[1:]))
            flags = FD | (BRS if rng.random() < 0.5 else 0) | (ESI if rng.random() < 0.3 else 0)
            out.append((ts, bus, rng.randint(0, 0x7FF), False, flags, len(data), data))
        elif kind == 3:
            data = rng.randbytes(64)
            out.append((ts, bus, rng.randint(0x800, 0x1FFFFFFF), True, FD | BRS, 64, data))
        elif kind == 4:
            out.append((ts, bus, rng.randint(0, 0x7FF), False, REMOTE, rng.randint(0, 8), b""))
        else:
            # SocketCAN's bus-error class (which python-can's candump reader takes
            # as an error frame), in a 29-bit id as candump logs it.
            out.append((ts, bus, 0x080, True, ERROR, 8, bytes([0, 4, 0, 0, 0, 0, 0, 0])))
        ts += rng.randint(1, 5000)
    return out


def candump_line(f):
    ts, bus, can_id, ext, flags, dlc, data = f
    ident = f"{can_id:08X}" if ext else f"{can_id:03X}"
    if flags & ERROR:
        ident = f"{0x20000000 | can_id:08X}"
    if flags & REMOTE:
        body = f"{ident}#R{dlc:X}" if dlc else f"{ident}#R"
    elif flags & FD:
        fd = (1 if flags & BRS else 0) | (2 if flags & ESI else 0)
        body = f"{ident}##{fd:X}{data.hex().upper()}"
    else:
        body = f"{ident}#{data.hex().upper()}"
    return f"({ts // 1_000_000}.{ts % 1_000_000:06d}) {bus} {body}"


@pytest.fixture(scope="module")
def raw(tmp_path_factory, edge):
    """The frames in a raw lake file, through `convert` from a candump log."""
    folder = tmp_path_factory.mktemp("logs")
    log = folder / "in.log"
    log.write_text("\n".join(candump_line(f) for f in frames()) + "\n")
    out = folder / "raw.parquet"
    edge("convert", "--candump", log, "--output", out)
    return out


def check(messages, expected, channel_of, error_details=True):
    assert len(messages) == len(expected)
    for m, (ts, bus, can_id, ext, flags, dlc, data) in zip(messages, expected):
        where = f"frame at {ts}: {m}"
        assert round(m.timestamp * 1_000_000) == ts, where
        assert m.is_error_frame == bool(flags & ERROR), where
        if flags & ERROR and not error_details:
            continue
        assert m.channel == channel_of(bus), where
        assert (m.arbitration_id, m.is_extended_id) == (can_id, ext), where
        assert m.is_remote_frame == bool(flags & REMOTE), where
        assert (m.is_fd, m.bitrate_switch, m.error_state_indicator) == (
            bool(flags & FD),
            bool(flags & BRS),
            bool(flags & ESI),
        ), where
        assert m.dlc == dlc, where
        if not flags & REMOTE:
            assert bytes(m.data) == data, where


def number(bus):
    return int(bus.removeprefix("can"))


def test_export_as_asc_blf_and_candump_reads_back_in_python_can(raw, edge, tmp_path):
    expected = frames()
    asc, blf, log = tmp_path / "out.asc", tmp_path / "out.blf", tmp_path / "out.log"
    for out in (asc, blf, log):
        edge("export", "--raw", raw, "--output", out)
    check(list(can.ASCReader(str(asc), relative_timestamp=False)), expected, number, error_details=False)
    check(list(can.BLFReader(str(blf))), expected, number)
    # python-can's candump reader keeps an error frame's flag, not its class, data or bus.
    check(list(can.CanutilsLogReader(str(log))), expected, lambda bus: bus, error_details=False)


def test_export_takes_a_window_buses_and_ids(raw, edge, tmp_path):
    all_frames = frames()
    start, end = all_frames[100][0], all_frames[400][0]
    wanted = {f[2] for f in all_frames[100:400] if f[1] == "can1"}
    some = sorted(wanted)[:5]
    out = tmp_path / "window.csv"

    def iso(us):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000)) + f".{us % 1_000_000:06d}Z"

    edge(
        "export", "--raw", raw, "--output", out, "--from", iso(start), "--to", iso(end),
        "--bus", "can1", "--ids", ",".join(f"{i:X}" for i in some),
    )
    rows = list(csv.DictReader(out.open()))
    expected = [f for f in all_frames if start <= f[0] < end and f[1] == "can1" and f[2] in some]
    assert [int(r["ts_us"]) for r in rows] == [f[0] for f in expected]
    assert [(int(r["id"], 16), r["data"]) for r in rows] == [(f[2], f[6].hex().upper()) for f in expected]


def lake_frames(path):
    table = pq.read_table(path).to_pylist()
    return [
        (r["ts_us"], r["bus"], r["can_id"], r["extended"], r["flags"], r["dlc"], r["data"])
        for r in table
    ]


@pytest.mark.parametrize("writer, suffix", [(can.ASCWriter, "asc"), (can.BLFWriter, "blf")])
def test_logs_python_can_writes_convert_into_the_lake(edge, tmp_path, writer, suffix):
    expected = [f for f in frames() if not (suffix == "asc" and f[4] & ERROR)]
    log = tmp_path / f"in.{suffix}"
    with writer(str(log)) as w:
        for ts, bus, can_id, ext, flags, dlc, data in expected:
            w.on_message_received(
                can.Message(
                    timestamp=ts / 1e6, channel=number(bus), arbitration_id=can_id, is_extended_id=ext,
                    is_remote_frame=bool(flags & REMOTE), is_error_frame=bool(flags & ERROR),
                    is_fd=bool(flags & FD), bitrate_switch=bool(flags & BRS),
                    error_state_indicator=bool(flags & ESI), dlc=dlc, data=data,
                )
            )
    out = tmp_path / "lake.parquet"
    edge("convert", "--input", log, "--output", out)
    got = lake_frames(out)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        if e[4] & REMOTE:
            # A remote frame has no payload; the lake keeps the length asked for.
            assert g[:6] == e[:6], (g, e)
        else:
            assert g == e, (g, e)
