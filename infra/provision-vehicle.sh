#!/usr/bin/env bash
# Provisions one vehicle in AWS IoT Core for a deployed Canopy stack and
# writes its edge configuration:
#
#   infra/provision-vehicle.sh <vehicle-id> <csr-file> [stack-name] [out-dir]
#
# The CSR comes from the vehicle (infra/vehicle-key.sh there): the private key
# never leaves it. Creates the thing (named after the vehicle, so the IoT
# policy's ${iot:Connection.Thing.ThingName} is the vehicle id) and a
# certificate from the CSR, attaches the stack's vehicle policies to the
# certificate and the certificate to the thing as its only principal
# (EXCLUSIVE_THING), then detaches and deactivates the certificates the thing
# had before: running it again with a new CSR is how a vehicle's certificate
# is rotated. Writes <out-dir>/<vehicle-id>/ with:
#   cert.pem, AmazonRootCA1.pem   the device's certificate and the CA to trust
#   edge.toml                     canopy-edge's configuration
#   aws-config                    an AWS profile whose credentials come from
#                                 the IoT credentials provider (S3 uploads)
# Copy them to the vehicle beside its key.pem. Needs the AWS CLI v2 and curl,
# with credentials for the account.
set -euo pipefail

usage="usage: provision-vehicle.sh <vehicle-id> <csr-file> [stack-name] [out-dir]"
vehicle="${1:?$usage}"
csr="${2:?$usage}"
stack="${3:-canopy}"
out="${4:-vehicles}/$vehicle"
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

if [[ ! -f "$csr" ]] || ! grep -q "BEGIN CERTIFICATE REQUEST" "$csr"; then
  echo "$csr: not a certificate signing request (make one on the vehicle with infra/vehicle-key.sh)" >&2
  exit 2
fi
mkdir -p "$out"
chmod 700 "$out"

aws iot describe-thing --thing-name "$vehicle" >/dev/null 2>&1 || aws iot create-thing --thing-name "$vehicle" >/dev/null
previous="$(aws iot list-thing-principals --thing-name "$vehicle" --query 'principals[]' --output text)"
cert_arn="$(aws iot create-certificate-from-csr --set-as-active \
  --certificate-signing-request "file://$csr" \
  --query certificateArn --output text)"
aws iot describe-certificate --certificate-id "${cert_arn##*/}" \
  --query certificateDescription.certificatePem --output text > "$out/cert.pem"
aws iot attach-policy --policy-name "$policy" --target "$cert_arn"
aws iot attach-policy --policy-name "$credentials_policy" --target "$cert_arn"
aws iot attach-thing-principal --thing-name "$vehicle" --principal "$cert_arn" --thing-principal-type EXCLUSIVE_THING
# Rotation: the certificates the vehicle had before stop working now.
for old in $previous; do
  [[ "$old" == "None" || "$old" == "$cert_arn" ]] && continue
  aws iot detach-thing-principal --thing-name "$vehicle" --principal "$old"
  aws iot update-certificate --certificate-id "${old##*/}" --new-status INACTIVE
  echo "deactivated the previous certificate ${old##*/}"
done
curl -fsS https://www.amazontrust.com/repository/AmazonRootCA1.pem -o "$out/AmazonRootCA1.pem"

cat > "$out/aws-config" <<CONFIG
[profile canopy-$vehicle]
region = $region
credential_process = /etc/canopy/iot-credentials.sh https://$credentials_endpoint $role_alias $vehicle /etc/canopy/cert.pem /etc/canopy/key.pem
CONFIG

cat > "$out/edge.toml" <<TOML
# canopy-edge for $vehicle, stack $stack. Run with
# on the vehicle, with this folder's files in /etc/canopy beside key.pem:
#   AWS_CONFIG_FILE=/etc/canopy/aws-config AWS_PROFILE=canopy-$vehicle canopy-edge run --config /etc/canopy/edge.toml
vehicle_id = "$vehicle"
dbc = "/etc/canopy/ev_powertrain.dbc"

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

cp "$here/../dbc/ev_powertrain.dbc" "$here/iot-credentials.sh" "$out/"
echo "provisioned $vehicle: $cert_arn"
echo "edge configuration: $out/edge.toml"
