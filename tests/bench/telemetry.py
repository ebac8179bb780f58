#!/usr/bin/env python3
"""`make bench-telemetry`: the telemetry handler against moto server on
loopback: messages per second, and the AWS API calls it makes per 1,000
messages, counted from moto's request log.

The cost driver is the number of calls: a design that writes one S3 object per
message makes 1,000 PUTs per 1,000 messages (about $5 per million messages in
PUTs alone). The handler is run with the SQS batch sizes the template allows,
so the comparison shows what batching buys.
"""

import argparse
import collections
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
# werkzeug's access log: 127.0.0.1 - - [date] "METHOD /path HTTP/1.1" 200 -
REQUEST = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/1\.1" (\d{3})')
S3_PUT_USD = 0.005 / 1000
DDB_WRITE_USD = 0.625 / 1_000_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(moto_server, driver, messages, vehicles, batch):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        moto = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    import time
                    time.sleep(0.1)
            log.seek(0, os.SEEK_END)
            setup_end = log.tell()
            result = subprocess.run([driver, endpoint, str(messages), str(vehicles), str(batch)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"bench-telemetry failed:\n{result.stderr[-3000:]}")
            measured = json.loads(result.stdout.strip().splitlines()[-1])
        finally:
            moto.terminate()
            moto.wait()
        log.seek(setup_end)
        calls = collections.Counter()
        for line in log:
            m = REQUEST.search(line)
            if not m:
                continue
            method, path = m.group(1), m.group(2)
            if path.startswith("/bench-telemetry"):
                calls[f"S3 {method}{' (list)' if '?' in path and method == 'GET' else ''}"] += 1
            elif method == "POST" and path == "/":
                calls["DynamoDB"] += 1
            else:
                calls[f"other {method} {path.split('?')[0]}"] += 1
    # Table and bucket creation happen in the driver before the clock starts.
    calls["DynamoDB"] -= 2
    calls["S3 PUT"] -= 1
    return measured, calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moto", required=True)
    parser.add_argument("--driver", required=True)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--vehicles", type=int, default=50)
    parser.add_argument("--batches", default="10,100")
    args = parser.parse_args()
    print(f"{args.messages} messages from {args.vehicles} vehicles, shuffled, through the telemetry handler on moto\n")
    print(f"{'batch':>6} {'msg/s':>9} {'calls/1000 msgs':>16}  {'S3 PUTs/1000':>12} {'DynamoDB/1000':>13}  {'$ per million msgs':>18}")
    for batch in map(int, args.batches.split(",")):
        measured, calls = run(args.moto, args.driver, args.messages, args.vehicles, batch)
        per = 1000 / args.messages
        total = sum(calls.values()) * per
        puts = calls["S3 PUT"] * per
        ddb = calls["DynamoDB"] * per
        usd = (puts * S3_PUT_USD + ddb * DDB_WRITE_USD) * 1000
        print(f"{batch:>6} {measured['messages_per_second']:>9.0f} {total:>16.1f}  {puts:>12.1f} {ddb:>13.1f}  {usd:>18.2f}")
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(calls.items()))
        print(f"{'':>6} ({detail}; retried {measured['retried']})")
    print(f"\none S3 object per message instead: 1000 PUTs per 1000 messages = "
          f"${1000 * S3_PUT_USD * 1000:.2f} per million messages in PUTs alone")


if __name__ == "__main__":
    main()
