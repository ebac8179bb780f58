#!/usr/bin/env python3
"""`make bench-storage`: what the lake stores per CAN frame, table by table.

A simulated drive on the EV powertrain network (`canopy-edge simulate`, an
hour by default) as the edge seals it (raw lake Parquet), then decoded with
the rollup tiers as the cloud's decoder writes them (`canopy-edge decode
--raw ... --rollups`). For each table: bytes per frame, and the columns that
hold most of them (compressed bytes and encodings from the Parquet footers),
so a change to the writers is weighed by the bytes it saves. Every file is
also read whole by DuckDB, which must count its rows as the footer does.
"""

import argparse
import pathlib
import subprocess
import tempfile

import duckdb
import pyarrow.parquet as pq

REPO = pathlib.Path(__file__).resolve().parents[2]
START_US = 1_700_000_000_000_000


def columns(path):
    """Compressed bytes and encodings per column, over all row groups."""
    meta = pq.ParquetFile(path).metadata
    out = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            col = group.column(c)
            entry = out.setdefault(col.path_in_schema, [0, set(), col.compression])
            entry[0] += col.total_compressed_size
            entry[1].update(col.encodings)
    return meta.num_rows, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edge", required=True, help="a release canopy-edge")
    parser.add_argument("--seconds", type=int, default=3600, help="simulated seconds of driving")
    parser.add_argument("--top", type=int, default=4, help="columns shown per table")
    args = parser.parse_args()
    dbc = REPO / "dbc" / "ev_powertrain.dbc"
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        subprocess.run([args.edge, "simulate", "--dbc", dbc, "--duration", str(args.seconds), "--start-us",
                        str(START_US), "--format", "raw", "--output", work], check=True, capture_output=True)
        raw = work / "sim-001.parquet"
        decoded = work / "decoded.parquet"
        subprocess.run([args.edge, "decode", "--dbc", dbc, "--raw", raw, "--format", "parquet", "--output", decoded,
                        "--rollups"], check=True, capture_output=True)
        frames = pq.ParquetFile(raw).metadata.num_rows
        tables = [("raw", raw), ("decoded", decoded)]
        tables += sorted((p.name.split(".")[-2], p) for p in work.glob("decoded.parquet.rollup_*.parquet"))
        print(f"{args.seconds} s of simulated driving: {frames:,} frames ({frames / args.seconds:,.0f}/s)")
        total = 0.0
        for name, path in tables:
            rows, cols = columns(path)
            # Every column read (COLUMNS(*) in WHERE is each of them, ANDed), not just the footer's count.
            counted = duckdb.sql(f"SELECT count(*) FROM '{path}' WHERE hash(COLUMNS(*)) IS NOT NULL").fetchall()[0][0]
            assert counted == rows, f"{name}: DuckDB counts {counted} rows, the footer {rows}"
            per_frame = path.stat().st_size / frames
            total += per_frame
            top = sorted(cols.items(), key=lambda kv: -kv[1][0])[: args.top]
            shown = ", ".join(f"{c} {b / frames:.2f} ({'/'.join(sorted(e))}, {z})" for c, (b, e, z) in top)
            print(f"  {name:<10} {per_frame:6.2f} B/frame  {rows:>11,} rows   {shown}")
        print(f"  {'all':<10} {total:6.2f} B/frame")


if __name__ == "__main__":
    main()
