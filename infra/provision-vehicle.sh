#!/usr/bin/env bash
# Provisions one vehicle in AWS IoT Core for a deployed Canopy stack and
# writes its bundle:
#
#   infra/provision-vehicle.sh [--install-dir DIR] <vehicle-id> <csr-file> [stack-name] [out-dir]
#
# The CSR comes from the vehicle (infra/vehicle-key.sh there): the private key
# never leaves it. Creates the thing (named after the vehicle, so the IoT
# policy's ${iot:Connection.Thing.ThingName} is the vehicle id) and a
# certificate from the CSR, attaches the stack's vehicle policies to the
# certificate and the certificate to the thing as its only principal
# (EXCLUSIVE_THING), then detaches and deactivates the certificates the thing
# had before: running it again with a new CSR is how a vehicle's certificate
# is rotated. Writes the bundle <out-dir>/<vehicle-id>/:
#   cert.pem, AmazonRootCA1.pem   the device's certificate and the CA to trust
#   ev_powertrain.dbc             the DBC the edge's telemetry decodes with
#   edge.toml                     canopy-edge's configuration: MQTT with the
#                                 certificate, S3 uploads with credentials the
#                                 edge buys with it from the IoT credentials provider
# Copy the bundle to the vehicle beside its key.pem; the vehicle then needs
# canopy-edge and nothing else. Paths in edge.toml are relative to the file
# (so the bundle works wherever it is put), or absolute under DIR with
# --install-dir. Needs the AWS CLI v2 and curl here, with credentials for the account.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=infra/iot-thing.sh
source "$here/iot-thing.sh"
bundle_args provision-vehicle.sh vehicle vehicles "$@"
vehicle="$device"

output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
# The alerts function's thresholds, so the vehicle decides its alerts as the cloud does.
parameter() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Parameters[?ParameterKey=='$1'].ParameterValue" --output text
}
over_temperature="$(parameter OverTemperatureC)"
low_soc="$(parameter LowSocPct)"
imbalance="$(parameter CellImbalanceV)"
cooldown="$(parameter AlertCooldownSeconds)"
bucket="$(output DataBucketName)"
policy="$(output VehiclePolicyName)"
credentials_policy="$(output VehicleCredentialsPolicyName)"
role_alias="$(output VehicleUploadRoleAlias)"
telemetry_rule="$(output TelemetryRuleName)"
alerts_rule="$(output AlertsRuleName)"
region="$(aws configure get region || echo "${AWS_REGION:-us-east-1}")"
data_endpoint="$(aws iot describe-endpoint --endpoint-type iot:Data-ATS --query endpointAddress --output text)"
credentials_endpoint="$(aws iot describe-endpoint --endpoint-type iot:CredentialProvider --query endpointAddress --output text)"

issue_certificate "$vehicle" "$csr" "$out" "$policy" "$credentials_policy"

cat > "$out/edge.toml" <<TOML
# canopy-edge for $vehicle, stack $stack. On the vehicle, with this bundle
# beside key.pem (paths below are relative to this file unless absolute):
#   canopy-edge run --config $(in_bundle edge.toml)
vehicle_id = "$vehicle"
dbc = "$(in_bundle ev_powertrain.dbc)"

[source]
kind = "socketcan"
interfaces = ["can0"]

[spool]
dir = "/var/lib/canopy/spool"

[upload]
bucket = "$bucket"
region = "$region"

[upload.credentials]
endpoint = "https://$credentials_endpoint"
role_alias = "$role_alias"
ca = "$(in_bundle AmazonRootCA1.pem)"
cert = "$(in_bundle cert.pem)"
key = "$(in_bundle key.pem)"

[telemetry]
interval_ms = 1000
publish_interval_ms = 5000

# The stack's alert rules: a sample that trips one goes at once.
[[telemetry.alert_rules]]
name = "over-temperature"
measure = "cell_temp_max_c"
comparison = ">"
threshold = $over_temperature
severity = "critical"
cooldown = $cooldown

[[telemetry.alert_rules]]
name = "low-state-of-charge"
measure = "soc_pct"
comparison = "<"
threshold = $low_soc
severity = "warning"
cooldown = $cooldown

[[telemetry.alert_rules]]
name = "cell-imbalance"
measure = "cell_voltage_spread_v"
comparison = ">"
threshold = $imbalance
severity = "warning"
cooldown = $cooldown

[mqtt]
host = "$data_endpoint"
port = 8883

# Basic Ingest: straight to the stack's rules, not billed as messaging.
[mqtt.basic_ingest]
telemetry_rule = "$telemetry_rule"
alerts_rule = "$alerts_rule"

[mqtt.tls]
ca = "$(in_bundle AmazonRootCA1.pem)"
cert = "$(in_bundle cert.pem)"
key = "$(in_bundle key.pem)"
TOML

cp "$here/../dbc/ev_powertrain.dbc" "$out/"
echo "provisioned $vehicle: $cert_arn"
echo "edge configuration: $out/edge.toml"
