#!/usr/bin/env bash
# An AWS `credential_process`: trades the vehicle's X.509 certificate for
# temporary credentials of the stack's upload role at the IoT credentials
# provider, so no long-lived AWS keys ever sit on a vehicle.
#
#   iot-credentials.sh <https://credentials-endpoint> <role-alias> <thing-name> <cert.pem> <key.pem>
set -euo pipefail
endpoint="$1" alias="$2" thing="$3" cert="$4" key="$5"
curl -fsS --cert "$cert" --key "$key" -H "x-amzn-iot-thingname: $thing" \
  "$endpoint/role-aliases/$alias/credentials" |
  python3 -c '
import json, sys
c = json.load(sys.stdin)["credentials"]
print(json.dumps({"Version": 1, "AccessKeyId": c["accessKeyId"], "SecretAccessKey": c["secretAccessKey"],
                  "SessionToken": c["sessionToken"], "Expiration": c["expiration"]}))'
