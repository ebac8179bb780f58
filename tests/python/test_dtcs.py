"""`canopy-edge dtcs`: J1939 DM1 trouble codes out of a candump log, single
frames and BAM transfers reassembled, one JSON line each, and the transfers
that broke counted on stderr."""

import json


def cid(pgn, sa, da=None):
    """A 29-bit id at priority 6; `da` for the PDU1 (TP) PGNs."""
    if da is not None:
        pgn |= da
    return (6 << 26) | (pgn << 8) | sa


def line(ts_us, can_id, data):
    return f"({ts_us // 1_000_000}.{ts_us % 1_000_000:06d}) can0 {can_id:08X}#{bytes(data).hex().upper()}"


def dm1_bytes(lamps, dtcs):
    body = [lamps, 0xFF]
    for spn, fmi, oc in dtcs:
        body += [spn & 0xFF, (spn >> 8) & 0xFF, ((spn >> 16) << 5) | fmi, oc]
    return body


def bam(t0, sa, body):
    size = len(body)
    packets = -(-size // 7)
    lines = [line(t0, cid(0xEC00, sa, 0xFF), [32, size & 0xFF, size >> 8, packets, 0xFF, 0xCA, 0xFE, 0x00])]
    for seq in range(1, packets + 1):
        chunk = body[(seq - 1) * 7 : seq * 7]
        lines.append(line(t0 + seq * 50_000, cid(0xEB00, sa, 0xFF), [seq] + chunk + [0xFF] * (7 - len(chunk))))
    return lines


def test_dm1_over_bam_and_single_frames_print_their_codes(edge, tmp_path):
    t0 = 1_700_000_000_000_000
    engine = [(100, 1, 3), (520_000, 31, 127), (3_031, 4, 1)]
    brakes = [(1_234, 2, 5)]
    lines = bam(t0, 0x00, dm1_bytes(0b0100_0100, engine))
    lines.append(line(t0 + 300_000, cid(0xFECA, 0x0B), dm1_bytes(0b0001_0000, brakes) + [0xFF, 0xFF]))
    # A transfer that loses its first packet: counted, not printed.
    broken = bam(t0 + 1_000_000, 0x03, dm1_bytes(0, engine))
    del broken[1]
    lines += broken
    log = tmp_path / "dm1.log"
    log.write_text("\n".join(lines) + "\n")
    out = edge("dtcs", "--candump", log)
    got = [json.loads(l) for l in out.stdout.splitlines()]
    assert got == [
        {
            "ts_us": t0 + 2 * 50_000,  # 14 bytes: its second packet
            "source_address": 0,
            "lamps": {"mil": True, "red_stop": False, "amber_warning": True, "protect": False},
            "dtcs": [{"spn": s, "fmi": f, "oc": o} for s, f, o in engine],
        },
        {
            "ts_us": t0 + 300_000,
            "source_address": 11,
            "lamps": {"mil": False, "red_stop": True, "amber_warning": False, "protect": False},
            "dtcs": [{"spn": s, "fmi": f, "oc": o} for s, f, o in brakes],
        },
    ]
    assert "1 broken transfers: OutOfSequence 1" in out.stderr
