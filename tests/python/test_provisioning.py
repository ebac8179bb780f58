"""infra/provision-vehicle.sh and infra/vehicle-key.sh with a stand-in AWS CLI
that records its calls: the key is made on the vehicle and never leaves it,
the certificate is the thing's only one, the previous one is retired, and the
bundle is all a vehicle needs beside canopy-edge, wherever it is put."""

import os
import pathlib
import shutil
import stat
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]

STUB_AWS = r"""#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
case "$1 $2" in
  "cloudformation describe-stacks")
    case "$*" in
      *Parameters*) echo "60" ;;
      *RuleName*) [[ "$*" == *Telemetry* ]] && echo "TelemetryTopicRule_Xy1" || echo "AlertsTopicRule_Zw2" ;;
      *) echo "stack-output" ;;
    esac ;;
  "configure get") echo "us-east-1" ;;
  "iot describe-endpoint") echo "abc-ats.iot.us-east-1.amazonaws.com" ;;
  "iot list-thing-principals") echo "${STUB_PREVIOUS:-None}" ;;
  "iot create-certificate-from-csr") echo "arn:aws:iot:us-east-1:123456789012:cert/new0001" ;;
  "iot describe-certificate") cat "$STUB_CERT" ;;
esac
"""

STUB_CURL = r"""#!/usr/bin/env bash
while [[ $# -gt 0 ]]; do [[ "$1" == "-o" ]] && { cp "$STUB_CERT" "$2"; exit 0; }; shift; done
"""


def stubs(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in [("aws", STUB_AWS), ("curl", STUB_CURL)]:
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    log = tmp_path / "aws.log"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(log),
               STUB_CERT=str(tmp_path / "issued.pem"))
    return env, log


def issue(tmp_path, device, csr):
    """What IoT Core does with the CSR: a certificate for the vehicle's key
    (self-signed here, and standing in for Amazon's root CA too)."""
    extensions = tmp_path / "v3.cnf"
    extensions.write_text("basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\n")  # X.509 v3, as IoT issues
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-key", device / "key.pem", "-days", "1",
                    "-extfile", extensions, "-out", tmp_path / "issued.pem"], check=True, capture_output=True)


def vehicle_csr(tmp_path):
    device = tmp_path / "device"
    out = subprocess.run([REPO / "infra" / "vehicle-key.sh", "veh-007", device], check=True,
                         capture_output=True, text=True)
    assert stat.S_IMODE((device / "key.pem").stat().st_mode) == 0o600
    return device, pathlib.Path(out.stdout.strip())


def test_the_key_stays_on_the_vehicle_and_the_certificate_is_the_things_only_one(tmp_path):
    env, log = stubs(tmp_path)
    device, csr = vehicle_csr(tmp_path)
    issue(tmp_path, device, csr)
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
    assert sorted(p.name for p in bundle.iterdir()) == ["AmazonRootCA1.pem", "cert.pem", "edge.toml",
                                                        "ev_powertrain.dbc"]
    assert not any(c.startswith("iot update-certificate") for c in calls)


def test_the_bundle_is_all_the_vehicle_needs_wherever_it_is_put(tmp_path):
    """Paths relative to edge.toml, S3 credentials from the IoT credentials
    provider by canopy-edge itself: no helper script, no AWS profile, and
    nothing of the provisioning machine's file system."""
    env, _ = stubs(tmp_path)
    device, csr = vehicle_csr(tmp_path)
    issue(tmp_path, device, csr)
    subprocess.run([REPO / "infra" / "provision-vehicle.sh", "veh-007", csr, "canopy", tmp_path / "out"],
                   check=True, env=env, capture_output=True, text=True)
    config = (tmp_path / "out" / "veh-007" / "edge.toml").read_text()
    assert str(tmp_path) not in config and str(REPO) not in config
    assert '[upload.credentials]' in config and 'role_alias = "stack-output"' in config
    assert '[mqtt.basic_ingest]\ntelemetry_rule = "TelemetryTopicRule_Xy1"\nalerts_rule = "AlertsTopicRule_Zw2"' in config
    assert 'dbc = "ev_powertrain.dbc"' in config and 'key = "key.pem"' in config
    # The stack's alert thresholds, so the vehicle sends a tripping sample at once.
    assert config.count("[[telemetry.alert_rules]]") == 3 and "threshold = 60" in config
    # On the vehicle: the bundle copied somewhere else, beside the key made there.
    vehicle = tmp_path / "vehicle" / "opt" / "canopy"
    shutil.copytree(tmp_path / "out" / "veh-007", vehicle)
    shutil.copy(device / "key.pem", vehicle / "key.pem")
    edge = os.environ["CANOPY_EDGE"]
    checked = subprocess.run([edge, "run", "--config", vehicle / "edge.toml", "--check"],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    (vehicle / "key.pem").unlink()
    missing = subprocess.run([edge, "run", "--config", vehicle / "edge.toml", "--check"],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "key.pem" in missing.stderr, missing.stderr


def test_install_dir_writes_absolute_paths_on_the_vehicle(tmp_path):
    env, _ = stubs(tmp_path)
    device, csr = vehicle_csr(tmp_path)
    issue(tmp_path, device, csr)
    subprocess.run([REPO / "infra" / "provision-vehicle.sh", "--install-dir", "/etc/canopy", "veh-007", csr,
                    "canopy", tmp_path / "out"], check=True, env=env, capture_output=True, text=True)
    config = (tmp_path / "out" / "veh-007" / "edge.toml").read_text()
    assert 'dbc = "/etc/canopy/ev_powertrain.dbc"' in config and 'cert = "/etc/canopy/cert.pem"' in config
    assert str(tmp_path) not in config
    relative = subprocess.run([REPO / "infra" / "provision-vehicle.sh", "--install-dir", "etc", "veh-007", csr],
                              env=env, capture_output=True, text=True)
    assert relative.returncode == 2 and "absolute" in relative.stderr


def test_provisioning_again_retires_the_previous_certificate(tmp_path):
    env, log = stubs(tmp_path)
    env["STUB_PREVIOUS"] = "arn:aws:iot:us-east-1:123456789012:cert/old0001"
    device, csr = vehicle_csr(tmp_path)
    issue(tmp_path, device, csr)
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


def test_a_station_is_provisioned_as_its_kind_and_its_bundle_checks(tmp_path):
    """The thing carries kind=station (the device policy's topic is built
    from it), gets the device policy and one certificate, and the bundle's
    station.toml is what `canopy-edge station` takes, wherever it is put."""
    env, log = stubs(tmp_path)
    env["STUB_PREVIOUS"] = "arn:aws:iot:us-east-1:123456789012:cert/old0001"
    device, csr = vehicle_csr(tmp_path)
    issue(tmp_path, device, csr)
    subprocess.run([REPO / "infra" / "provision-station.sh", "st-007", csr, "canopy", tmp_path / "out"],
                   check=True, env=env, capture_output=True, text=True)
    calls = log.read_text().splitlines()
    created = [c for c in calls if c.startswith("iot create-thing") or c.startswith("iot update-thing")]
    assert created and all('"kind":"station"' in c for c in created), created
    assert any("OutputKey=='DevicePolicyName'" in c for c in calls)
    assert "iot attach-policy --policy-name stack-output --target arn:aws:iot:us-east-1:123456789012:cert/new0001" in calls
    assert "iot update-certificate --certificate-id old0001 --new-status INACTIVE" in calls
    bundle = tmp_path / "out" / "st-007"
    assert sorted(p.name for p in bundle.iterdir()) == ["AmazonRootCA1.pem", "cert.pem", "station.toml"]
    config = (bundle / "station.toml").read_text()
    assert 'station_id = "st-007"' in config and str(tmp_path) not in config
    station = tmp_path / "station" / "opt" / "canopy"
    shutil.copytree(bundle, station)
    shutil.copy(device / "key.pem", station / "key.pem")
    edge = os.environ["CANOPY_EDGE"]
    checked = subprocess.run([edge, "station", "--config", station / "station.toml", "--check"],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    (station / "key.pem").unlink()
    missing = subprocess.run([edge, "station", "--config", station / "station.toml", "--check"],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "key.pem" in missing.stderr, missing.stderr
