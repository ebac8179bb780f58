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

usage="usage: provision-station.sh [--install-dir DIR] <station-id> <csr-file> [stack-name] [out-dir]"
install_dir=""
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --install-dir) install_dir="${2:?$usage}"; shift 2 ;;
    --install-dir=*) install_dir="${1#*=}"; shift ;;
    -*) echo "$1: unknown option; $usage" >&2; exit 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]}"
station="${1:?$usage}"
csr="${2:?$usage}"
stack="${3:-canopy}"
out="${4:-stations}/$station"
here="$(cd "$(dirname "$0")" && pwd)"

if [[ -n "$install_dir" && "$install_dir" != /* ]]; then
  echo "--install-dir $install_dir: give the absolute directory the bundle will have on the station" >&2
  exit 2
fi
on_station() {
  if [[ -n "$install_dir" ]]; then echo "${install_dir%/}/$1"; else echo "$1"; fi
}
if ! [[ "$station" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]]; then
  echo "station id '$station': use 1-64 letters, digits, '-' or '_'" >&2
  exit 2
fi

policy="$(aws cloudformation describe-stacks --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='DevicePolicyName'].OutputValue" --output text)"
data_endpoint="$(aws iot describe-endpoint --endpoint-type iot:Data-ATS --query endpointAddress --output text)"

# shellcheck source=infra/iot-thing.sh
source "$here/iot-thing.sh"
THING_ATTRIBUTES='{"attributes":{"kind":"station"},"merge":true}' issue_certificate "$station" "$csr" "$out" "$policy"

cat > "$out/station.toml" <<TOML
# canopy-edge for the station $station, stack $stack. On the station, with
# this bundle beside key.pem (paths below are relative to this file unless absolute):
#   canopy-edge station --config $(on_station station.toml)
station_id = "$station"
slots = 8

[mqtt]
host = "$data_endpoint"
port = 8883

[mqtt.tls]
ca = "$(on_station AmazonRootCA1.pem)"
cert = "$(on_station cert.pem)"
key = "$(on_station key.pem)"
TOML

echo "provisioned $station: $cert_arn"
echo "station configuration: $out/station.toml"
