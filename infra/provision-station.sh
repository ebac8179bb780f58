#!/usr/bin/env bash
# Provisions one battery-swap station (kinds/station.toml) in AWS IoT Core
# for a deployed Canopy stack and writes its bundle:
#
#   infra/provision-station.sh [--install-dir DIR] <station-id> <csr-file> [stack-name] [out-dir]
#
# The CSR comes from the station (infra/vehicle-key.sh <station-id> there):
# the private key never leaves it. The thing is named after the station and
# carries the attribute kind=station, so the stack's device policy
# (DevicePolicyName) lets it publish only to dt/canopy-station/<id>/status.
# Writes <out-dir>/<station-id>/: cert.pem, AmazonRootCA1.pem and
# station.toml, canopy-edge's configuration:
#   canopy-edge station --config station.toml
# Paths in station.toml are relative to it, or absolute under DIR with
# --install-dir. Needs the AWS CLI v2 and curl here, with credentials for the account.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=infra/iot-thing.sh
source "$here/iot-thing.sh"
bundle_args provision-station.sh station stations "$@"
station="$device"

policy="$(aws cloudformation describe-stacks --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='DevicePolicyName'].OutputValue" --output text)"
data_endpoint="$(aws iot describe-endpoint --endpoint-type iot:Data-ATS --query endpointAddress --output text)"

THING_ATTRIBUTES='{"attributes":{"kind":"station"},"merge":true}' issue_certificate "$station" "$csr" "$out" "$policy"

cat > "$out/station.toml" <<TOML
# canopy-edge for the station $station, stack $stack. On the station, with
# this bundle beside key.pem (paths below are relative to this file unless absolute):
#   canopy-edge station --config $(in_bundle station.toml)
station_id = "$station"
slots = 8

[mqtt]
host = "$data_endpoint"
port = 8883

[mqtt.tls]
ca = "$(in_bundle AmazonRootCA1.pem)"
cert = "$(in_bundle cert.pem)"
key = "$(in_bundle key.pem)"
TOML

echo "provisioned $station: $cert_arn"
echo "station configuration: $out/station.toml"
