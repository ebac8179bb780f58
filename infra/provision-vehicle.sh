#!/usr/bin/env bash
# Provisions one vehicle in AWS IoT Core for a deployed Canopy stack and
# writes its edge configuration:
#
#   infra/provision-vehicle.sh <vehicle-id> [stack-name] [out-dir]
#
# Creates the thing (named after the vehicle, so the IoT policy's
# ${iot:Connection.Thing.ThingName} is the vehicle id), a certificate and key,
# attaches the stack's vehicle policies to the certificate and the certificate
# to the thing, and writes <out-dir>/<vehicle-id>/ with:
#   cert.pem, key.pem, AmazonRootCA1.pem   the device's identity
#   edge.toml                              canopy-edge's configuration
#   aws-config                             an AWS profile whose credentials come from
#                                          the IoT credentials provider (S3 uploads)
# Needs the AWS CLI v2, curl and python3, with credentials for the account.
set -euo pipefail

vehicle="${1:?usage: provision-vehicle.sh <vehicle-id> [stack-name] [out-dir]}"
stack="${2:-canopy}"
out="${3:-vehicles}/$vehicle"
here="$(cd "$(dirname "$0")" && pwd)"

if ! [[ "$vehicle" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]]; then
  echo "vehicle id '$vehicle': use 1-64 letters, digits, '-' or '_'" >&2
  exit 2
fi

output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
bucket="$(output DataBucketName)"
policy="$(output VehiclePolicyName)"
credentials_policy="$(output VehicleCredentialsPolicyName)"
role_alias="$(output VehicleUploadRoleAlias)"
region="$(aws configure get region || echo "${AWS_REGION:-us-east-1}")"
data_endpoint="$(aws iot describe-endpoint --endpoint-type iot:Data-ATS --query endpointAddress --output text)"
credentials_endpoint="$(aws iot describe-endpoint --endpoint-type iot:CredentialProvider --query endpointAddress --output text)"

mkdir -p "$out"
chmod 700 "$out"
if [[ -f "$out/cert.pem" ]]; then
  echo "$out/cert.pem exists: $vehicle is provisioned already (delete the folder to start over)" >&2
  exit 1
fi

aws iot describe-thing --thing-name "$vehicle" >/dev/null 2>&1 || aws iot create-thing --thing-name "$vehicle" >/dev/null
cert_arn="$(aws iot create-keys-and-certificate --set-as-active \
  --certificate-pem-outfile "$out/cert.pem" \
  --private-key-outfile "$out/key.pem" \
  --query certificateArn --output text)"
chmod 600 "$out/key.pem"
aws iot attach-policy --policy-name "$policy" --target "$cert_arn"
aws iot attach-policy --policy-name "$credentials_policy" --target "$cert_arn"
aws iot attach-thing-principal --thing-name "$vehicle" --principal "$cert_arn"
curl -fsS https://www.amazontrust.com/repository/AmazonRootCA1.pem -o "$out/AmazonRootCA1.pem"

cat > "$out/aws-config" <<CONFIG
[profile canopy-$vehicle]
region = $region
credential_process = $here/iot-credentials.sh https://$credentials_endpoint $role_alias $vehicle $out/cert.pem $out/key.pem
CONFIG

cat > "$out/edge.toml" <<TOML
# canopy-edge for $vehicle, stack $stack. Run with
#   AWS_CONFIG_FILE=$out/aws-config AWS_PROFILE=canopy-$vehicle canopy-edge run --config $out/edge.toml
vehicle_id = "$vehicle"
dbc = "$(cd "$here/.." && pwd)/dbc/ev_powertrain.dbc"

[source]
kind = "socketcan"
interfaces = ["can0"]

[spool]
dir = "/var/lib/canopy/spool"

[upload]
bucket = "$bucket"
region = "$region"

[telemetry]
interval_ms = 1000

[mqtt]
host = "$data_endpoint"
port = 8883

[mqtt.tls]
ca = "AmazonRootCA1.pem"
cert = "cert.pem"
key = "key.pem"
TOML

echo "provisioned $vehicle: $cert_arn"
echo "edge configuration: $out/edge.toml"
