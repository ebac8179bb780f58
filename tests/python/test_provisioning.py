"""infra/provision-vehicle.sh and infra/vehicle-key.sh with a stand-in AWS CLI
that records its calls: the key is made on the vehicle and never leaves it,
the certificate is the thing's only one, and the previous one is retired."""

import os
import pathlib
import stat
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]

STUB_AWS = r"""#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
case "$1 $2" in
  "cloudformation describe-stacks") echo "stack-output" ;;
  "configure get") echo "us-east-1" ;;
  "iot describe-endpoint") echo "abc-ats.iot.us-east-1.amazonaws.com" ;;
  "iot list-thing-principals") echo "${STUB_PREVIOUS:-None}" ;;
  "iot create-certificate-from-csr") echo "arn:aws:iot:us-east-1:123456789012:cert/new0001" ;;
  "iot describe-certificate") printf -- "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" ;;
esac
"""

STUB_CURL = r"""#!/usr/bin/env bash
while [[ $# -gt 0 ]]; do [[ "$1" == "-o" ]] && { echo "CA" > "$2"; exit 0; }; shift; done
"""


def stubs(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in [("aws", STUB_AWS), ("curl", STUB_CURL)]:
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    log = tmp_path / "aws.log"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(log))
    return env, log


def vehicle_csr(tmp_path):
    device = tmp_path / "device"
    out = subprocess.run([REPO / "infra" / "vehicle-key.sh", "veh-007", device], check=True,
                         capture_output=True, text=True)
    assert stat.S_IMODE((device / "key.pem").stat().st_mode) == 0o600
    return device, pathlib.Path(out.stdout.strip())


def test_the_key_stays_on_the_vehicle_and_the_certificate_is_the_things_only_one(tmp_path):
    env, log = stubs(tmp_path)
    device, csr = vehicle_csr(tmp_path)
    subprocess.run([REPO / "infra" / "provision-vehicle.sh", "veh-007", csr, "canopy", tmp_path / "out"],
                   check=True, env=env, capture_output=True, text=True)
    calls = log.read_text().splitlines()
    assert any(c.startswith("iot create-certificate-from-csr") and f"file://{csr}" in c for c in calls)
    assert not any("create-keys-and-certificate" in c for c in calls), "the key is not made in the cloud"
    attach = [c for c in calls if c.startswith("iot attach-thing-principal")]
    assert attach and all("--thing-principal-type EXCLUSIVE_THING" in c for c in attach)
    bundle = tmp_path / "out" / "veh-007"
    assert (bundle / "cert.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert not (bundle / "key.pem").exists()
    assert (bundle / "iot-credentials.sh").exists() and (bundle / "ev_powertrain.dbc").exists()
    config = (bundle / "edge.toml").read_text()
    assert 'dbc = "/etc/canopy/ev_powertrain.dbc"' in config and str(tmp_path) not in config
    assert not any(c.startswith("iot update-certificate") for c in calls)


def test_provisioning_again_retires_the_previous_certificate(tmp_path):
    env, log = stubs(tmp_path)
    env["STUB_PREVIOUS"] = "arn:aws:iot:us-east-1:123456789012:cert/old0001"
    _, csr = vehicle_csr(tmp_path)
    subprocess.run([REPO / "infra" / "provision-vehicle.sh", "veh-007", csr, "canopy", tmp_path / "out"],
                   check=True, env=env, capture_output=True, text=True)
    calls = log.read_text().splitlines()
    assert "iot detach-thing-principal --thing-name veh-007 --principal arn:aws:iot:us-east-1:123456789012:cert/old0001" in calls
    assert "iot update-certificate --certificate-id old0001 --new-status INACTIVE" in calls


def test_a_file_that_is_not_a_csr_is_refused(tmp_path):
    env, _ = stubs(tmp_path)
    bogus = tmp_path / "key.pem"
    bogus.write_text("-----BEGIN PRIVATE KEY-----\n")
    result = subprocess.run([REPO / "infra" / "provision-vehicle.sh", "veh-007", bogus, "canopy", tmp_path / "out"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "not a certificate signing request" in result.stderr
