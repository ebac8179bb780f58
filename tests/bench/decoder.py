#!/usr/bin/env python3
"""`make bench-decoder`: the decoder Lambda's handler on a 10 MB and a 200 MB
raw lake file, against moto server on loopback: wall time and peak RSS.

The files are simulated drives (`canopy-edge simulate --format raw`). The
handler runs through `redecode`, the same code path as the Lambda (an S3
notification handled by `canopy_decoder::Decoder`), so its process's peak RSS
is the handler's memory.
"""

import argparse
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import boto3

REPO = pathlib.Path(__file__).resolve().parents[2]
START_US = 1_700_000_000_000_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def simulate(edge, out, seconds, vehicles=1):
    subprocess.run([edge, "simulate", "--dbc", REPO / "dbc" / "ev_powertrain.dbc", "--duration", str(seconds),
                    "--vehicles", str(vehicles), "--start-us", str(START_US), "--format", "raw", "--output", out],
                   check=True, capture_output=True)
    return out / "sim-001.parquet"


def timed(cmd, env):
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M", *map(str, cmd)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{result.stderr[-3000:]}")
    wall, rss_kb = result.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default=str(REPO / "target" / "release"))
    parser.add_argument("--moto", default=str(pathlib.Path(sys.executable).parent / "moto_server"))
    parser.add_argument("--sizes-mb", default="10,200")
    args = parser.parse_args()
    edge = pathlib.Path(args.target) / "canopy-edge"
    redecode = pathlib.Path(args.target) / "redecode"

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([args.moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        for _ in range(100):
            try:
                s3.list_buckets()
                break
            except Exception:
                time.sleep(0.1)
        s3.create_bucket(Bucket="bench")
        with tempfile.TemporaryDirectory(prefix="canopy-bench-decoder-") as tmp:
            work = pathlib.Path(tmp)
            probe = simulate(edge, work, 600)
            bytes_per_second = probe.stat().st_size / 600
            print("decoder handler (redecode: S3 notification -> ranged reads -> decode -> multipart upload), moto on loopback")
            for i, mb in enumerate(int(x) for x in args.sizes_mb.split(",")):
                raw = simulate(edge, work, int(mb * 1e6 / bytes_per_second))
                size = raw.stat().st_size
                key = f"raw/vehicle_id=sim-001/date=2023-11-14/sim-001_{START_US}_{i + 1:06d}.parquet"
                s3.upload_file(str(raw), "bench", key)
                rows = subprocess.run([sys.executable, "-c", f"import pyarrow.parquet as pq; print(pq.ParquetFile('{raw}').metadata.num_rows)"],
                                      capture_output=True, text=True, check=True).stdout.strip()
                raw.unlink()
                env = dict(os.environ, RUST_LOG="warn")
                wall, rss = timed([redecode, "--bucket", "bench", "--endpoint", endpoint, key], env)
                out = s3.head_object(Bucket="bench", Key=key.replace("raw/", "decoded/", 1))["ContentLength"]
                print(f"  {size / 1e6:6.1f} MB raw ({int(rows):,} frames) -> {out / 1e6:6.1f} MB decoded: "
                      f"{wall:6.2f} s, peak RSS {rss:5.0f} MB")
                s3.delete_object(Bucket="bench", Key=key)
                s3.delete_object(Bucket="bench", Key=key.replace("raw/", "decoded/", 1))
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
