"""`make conformance`: a client driven by the API's own OpenAPI document
(schemathesis, every check) against the local stack with a simulated fleet in
it. Exits with schemathesis' status: zero failures or the run fails."""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def start_stack(local: str, work: str) -> tuple[subprocess.Popen, str, str]:
    """The local stack with two simulated vehicles; its API's base URL and
    its moto endpoint once it is up."""
    out = open(os.path.join(work, "stack.log"), "w+")
    stack = subprocess.Popen(
        [local, "demo", "--vehicles", "2", "--minutes", "3", "--mqtt-port", "0", "--api-port", "0"],
        cwd=REPO,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 480
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            out.seek(0)
            sys.exit(f"canopy-local exited with {stack.returncode}:\n{out.read()}")
        out.seek(0)
        log = out.read()
        api = re.search(r"^API\s+(http://\S+)", log, re.M)
        moto = re.search(r"^moto \(.*\)\s+(http://\S+)", log, re.M)
        if api and moto and "Up until Ctrl-C" in log:
            return stack, api.group(1), moto.group(1)
        time.sleep(1)
    stack.kill()
    sys.exit("the local stack was not up in 8 minutes")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--local", required=True, help="the canopy-local binary")
    parser.add_argument("--schemathesis", required=True)
    parser.add_argument("--seed", default="1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        stack, api, moto = start_stack(args.local, work)
        try:
            # A key of the fleet's veh-001, so POST /ingest is exercised past its key check.
            made = subprocess.run(
                [str(Path(args.local).with_name("device-keys")), "--endpoint", moto, "--table", "DeviceKeysTable",
                 "create", "--device", "veh-001", "--rate", "6000", "--label", "conformance"],
                check=True, capture_output=True, text=True,
            )
            key = json.loads(made.stdout)["key"]
            return subprocess.call(
                [
                    args.schemathesis,
                    "--config-file",
                    str(HERE / "schemathesis.toml"),
                    "run",
                    f"{api}/openapi.json",
                    "--checks",
                    "all",
                    "--seed",
                    args.seed,
                    "--workers",
                    "2",
                    "--header",
                    f"x-api-key: {key}",
                ],
                # Its caches go to the scratch folder, not the checkout.
                cwd=work,
            )
        finally:
            stack.terminate()
            try:
                stack.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stack.kill()


if __name__ == "__main__":
    sys.exit(main())
