#!/usr/bin/env python3
"""`make bench-edge`: the edge agent's throughput and footprint.

A simulated drive (candump log) is replayed as fast as possible through
`canopy-edge run`: every frame written to the spool, segments sealed into raw
lake Parquet. Pinned to one core. Reports frames per second (the target is at
least 200,000, more than twenty saturated 1 Mbit/s buses), peak RSS (target:
under 30 MB), and the size of the binary, as built for release and for
shipping (`make edge-dist`).

`--cross NAME:BINARY:QEMU:SYSROOT` adds a binary built for another processor
(`make edge-arm`), run under qemu-user. Its frames per second are the
emulator's, not the processor's; its peak RSS is the emulator's process, the
translator's own memory included, so it bounds the program's from above
(beside it, the RSS of `--version` under the same emulator: the floor that
translator and binary alone take).
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

import pyarrow.parquet as pq

REPO = pathlib.Path(__file__).resolve().parents[2]


def timed(cmd):
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M", *map(str, cmd)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{result.stderr[-3000:]}")
    wall, rss_kb = result.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edge", default=str(REPO / "target" / "release" / "canopy-edge"))
    parser.add_argument("--dist", default=str(REPO / "target" / "dist" / "canopy-edge"))
    parser.add_argument("--seconds", type=int, default=3600, help="simulated seconds of driving to replay")
    parser.add_argument("--cross", action="append", default=[], metavar="NAME:BINARY:QEMU:SYSROOT",
                        help="a binary for another processor and the qemu-user that runs it")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    with tempfile.TemporaryDirectory(prefix="canopy-bench-edge-") as tmp:
        work = pathlib.Path(tmp)
        subprocess.run([args.edge, "simulate", "--dbc", REPO / "dbc" / "ev_powertrain.dbc", "--duration", str(args.seconds),
                        "--start-us", "1700000000000000", "--output", work], check=True, capture_output=True)
        log = work / "sim-001.log"
        frames = sum(1 for _ in open(log))
        spool = work / "spool"
        config = work / "edge.toml"
        config.write_text(f"""
vehicle_id = "sim-001"
dbc = "{REPO / 'dbc' / 'ev_powertrain.dbc'}"
[source]
kind = "replay"
file = "{log}"
speed = 0
[spool]
dir = "{spool}"
sync_interval_ms = 1000
seal_after_s = 3600
seal_max_frames = 250000
""")
        print(f"canopy-edge run: {frames:,} frames of a simulated drive, candump replay -> spool -> sealed raw Parquet, one core")
        runs = [(name, binary, []) for name, binary in (("release", args.edge), ("dist", args.dist))]
        for cross in args.cross:
            name, binary, qemu, sysroot = cross.split(":")
            runs.append((name, binary, [qemu, "-L", sysroot]))
        for name, binary, runner in runs:
            if not pathlib.Path(binary).exists():
                print(f"  {name:8}: {binary} not built (make edge-dist, make edge-arm)")
                continue
            results = []
            for _ in range(3):
                subprocess.run(["rm", "-rf", str(spool)], check=True)
                results.append(timed([*runner, binary, "run", "--config", config]))
            sealed = sum(pq.ParquetFile(p).metadata.num_rows for p in (spool / "outbox").glob("*.parquet"))
            if sealed != frames:
                sys.exit(f"{name}: sealed {sealed} frames of {frames}")
            wall = sorted(r[0] for r in results)[1]
            rss = max(r[1] for r in results)
            size = pathlib.Path(binary).stat().st_size / 1e6
            floor = f" (--version: {timed([*runner, binary, '--version'])[1]:.1f} MB)" if runner else ""
            print(f"  {name:8}: {frames / wall:>10,.0f} frames/s ({wall:.2f} s, median of 3), peak RSS {rss:.1f} MB{floor}, "
                  f"binary {size:.1f} MB; all {sealed:,} frames sealed")


if __name__ == "__main__":
    main()
