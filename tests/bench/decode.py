#!/usr/bin/env python3
"""`make bench-decode`: Canopy's DBC decoder side by side with cantools.

1. The same candump log of about a million frames (the EV powertrain network,
   message rates as its GenMsgCycleTime attributes say) decoded by cantools
   and by Canopy, both pinned to one core, frames per second and their ratio:
   the codec alone (frames already in memory: `decode_message` against
   `canopy-edge bench-codec`), and end to end from the log's text (line
   parsing included: a Python loop against `canopy-edge decode --format summary`).
2. Raw lake Parquet to decoded lake Parquet (`canopy-edge decode --raw ...
   --format parquet`) for a 10 MB raw file and a 4x larger one: wall time and
   peak RSS, to show that memory does not grow with the input.
"""

import argparse
import json
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import time

import cantools

REPO = pathlib.Path(__file__).resolve().parents[2]


def payload_pool(db, rng, per_message=256):
    """Valid payloads per message, with multiplexers cycling through their values."""
    pool = []
    for msg in db.messages:
        weight = 1000.0 / (msg.cycle_time or 1000)
        payloads = []
        muxes = msg._codecs["multiplexers"]
        for i in range(per_message):
            values = {}
            for s in msg.signals:
                lo = s.minimum if s.minimum is not None else 0
                hi = s.maximum if s.maximum is not None else 1
                values[s.name] = rng.uniform(lo, hi)
            for name, branches in muxes.items():
                keys = sorted(branches)
                values[name] = keys[i % len(keys)]
            payloads.append(msg.encode(values, strict=False))
        ident = f"{msg.frame_id:08X}" if msg.is_extended_frame else f"{msg.frame_id:03X}"
        sep = "##1" if msg.length > 8 else "#"
        pool.append((weight, [f"{ident}{sep}{p.hex().upper()}" for p in payloads]))
    return pool


def write_log(db, path, frames, seed=1):
    rng = random.Random(seed)
    pool = payload_pool(db, rng)
    weights = [w for w, _ in pool]
    choices = rng.choices(range(len(pool)), weights=weights, k=frames)
    ts = 1_700_000_000_000_000
    with open(path, "w") as out:
        for i, m in enumerate(choices):
            ts += 250
            sec, usec = divmod(ts, 1_000_000)
            out.write(f"({sec}.{usec:06d}) can0 {rng.choice(pool[m][1])}\n")


def read_frames(path):
    frames = []
    with open(path) as f:
        for line in f:
            _, _, frame = line.split()
            ident, _, data = frame.partition("#")
            if data.startswith("#"):
                data = data[2:]
            frames.append((int(ident, 16), bytes.fromhex(data), len(ident) == 8))
    return frames


def cantools_codec_rate(db, frames):
    """Frames per second of cantools' decode_message on frames in memory."""
    start = time.perf_counter()
    for can_id, data, extended in frames:
        try:
            db.decode_message(can_id, data, decode_choices=False, force_extended_id=extended)
        except Exception:  # unknown ids and bad frames are decode attempts too
            pass
    return len(frames) / (time.perf_counter() - start)


def cantools_log_rate(db, path):
    """Frames per second of reading the log line by line and decoding."""
    start = time.perf_counter()
    frames = 0
    with open(path) as f:
        for line in f:
            _, _, frame = line.split()
            ident, _, data = frame.partition("#")
            if data.startswith("#"):
                data = data[2:]
            try:
                db.decode_message(int(ident, 16), bytes.fromhex(data), decode_choices=False,
                                  force_extended_id=len(ident) == 8)
            except Exception:
                pass
            frames += 1
    return frames / (time.perf_counter() - start)


def timed(cmd):
    """Wall time and peak RSS (MB) of a command, via GNU time."""
    fmt = "%e %M"
    result = subprocess.run(["/usr/bin/time", "-f", fmt, *cmd], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stderr}")
    wall, rss_kb = result.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb) / 1024, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edge", default=str(REPO / "target" / "release" / "canopy-edge"))
    parser.add_argument("--dbc", default=str(REPO / "dbc" / "ev_powertrain.dbc"))
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--raw-mb", type=float, default=10.0)
    parser.add_argument("--work", default=None, help="keep the generated files here")
    args = parser.parse_args()

    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="canopy-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = cantools.database.load_file(args.dbc)
    # One core for everything, cantools in this process and canopy-edge in its children.
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    log = work / "frames.log"
    write_log(db, log, args.frames)
    print(f"decode {args.frames:,} frames of {pathlib.Path(args.dbc).name}, one core (cantools {cantools.__version__})")

    frames = read_frames(log)
    cantools_codec = max(cantools_codec_rate(db, frames) for _ in range(2))
    del frames
    bench = json.loads(subprocess.run([args.edge, "bench-codec", "--dbc", args.dbc, "--candump", log],
                                      check=True, capture_output=True, text=True).stdout)
    canopy_codec = bench["decode_frames_per_second"]
    print(f"  codec, frames in memory : cantools {cantools_codec:>11,.0f}/s   canopy {canopy_codec:>13,.0f}/s   "
          f"{canopy_codec / cantools_codec:5.0f}x")

    cantools_log = cantools_log_rate(db, log)
    runs = sorted(timed([args.edge, "decode", "--dbc", args.dbc, "--candump", log, "--format", "summary"])[0]
                  for _ in range(3))
    canopy_log = args.frames / runs[1]
    print(f"  from the candump text   : cantools {cantools_log:>11,.0f}/s   canopy {canopy_log:>13,.0f}/s   "
          f"{canopy_log / cantools_log:5.0f}x  (canopy: whole process, median of 3)")

    # Raw Parquet of the requested size: scale the frame count from a first conversion.
    probe = work / "probe.parquet"
    subprocess.run([args.edge, "convert", "--candump", log, "--output", probe], check=True, capture_output=True)
    bytes_per_frame = probe.stat().st_size / args.frames
    print(f"raw lake Parquet -> decoded lake Parquet (stated figure for a Python Lambda decoder: about 2 s for 10 MB)")
    for scale in (1, 4):
        n = int(args.raw_mb * scale * 1_000_000 / bytes_per_frame)
        big_log = work / f"raw{scale}.log"
        raw = work / f"raw{scale}.parquet"
        write_log(db, big_log, n, seed=scale)
        subprocess.run([args.edge, "convert", "--candump", big_log, "--output", raw], check=True, capture_output=True)
        big_log.unlink()
        out = work / f"decoded{scale}.parquet"
        runs = [timed([args.edge, "decode", "--dbc", args.dbc, "--raw", raw, "--format", "parquet", "--output", out])
                for _ in range(3)]
        wall = sorted(r[0] for r in runs)[1]
        rss = max(r[1] for r in runs)
        size = raw.stat().st_size / 1e6
        print(f"  {size:6.1f} MB raw ({n:,} frames) -> {out.stat().st_size / 1e6:.1f} MB decoded: "
              f"{wall:.2f} s, peak RSS {rss:.0f} MB")
    if not args.work:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
