# Sourced by infra/provision-vehicle.sh and infra/provision-station.sh: their
# command line, and the thing with its one certificate.
#
#   bundle_args <script> <noun> <default-out-dir> "$@"
#
# Reads [--install-dir DIR] <id> <csr-file> [stack-name] [out-dir] and sets
# device, csr, stack, out (<out-dir>/<id>) and install_dir, or exits 2
# saying what is wrong. in_bundle <file> then names a bundle file as the
# device's configuration does: beside it, or under --install-dir.
#
#   issue_certificate <thing> <csr-file> <out-dir> <policy>...
#
# Creates the thing if it is missing (with the attributes in
# $THING_ATTRIBUTES, a JSON attribute payload, when set; an existing thing
# gets them too), a certificate from the CSR (the private key never leaves
# the device), attaches the policies to it and it to the thing as the
# thing's only principal (EXCLUSIVE_THING), then detaches and deactivates
# the certificates the thing had before: running it again with a new CSR
# rotates the certificate. Writes <out-dir>/cert.pem and AmazonRootCA1.pem,
# and sets cert_arn.

bundle_args() {
  local script="$1" noun="$2" default_out="$3"
  shift 3
  local usage="usage: $script [--install-dir DIR] <$noun-id> <csr-file> [stack-name] [out-dir]"
  local args=()
  install_dir=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --install-dir) install_dir="${2:?$usage}"; shift 2 ;;
      --install-dir=*) install_dir="${1#*=}"; shift ;;
      -*) echo "$1: unknown option; $usage" >&2; exit 2 ;;
      *) args+=("$1"); shift ;;
    esac
  done
  set -- "${args[@]+"${args[@]}"}"
  device="${1:?$usage}"
  csr="${2:?$usage}"
  stack="${3:-canopy}"
  out="${4:-$default_out}/$device"
  if [[ -n "$install_dir" && "$install_dir" != /* ]]; then
    echo "--install-dir $install_dir: give the absolute directory the bundle will have on the $noun" >&2
    exit 2
  fi
  if ! [[ "$device" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]]; then
    echo "$noun id '$device': use 1-64 letters, digits, '-' or '_'" >&2
    exit 2
  fi
}

in_bundle() {
  if [[ -n "$install_dir" ]]; then echo "${install_dir%/}/$1"; else echo "$1"; fi
}

issue_certificate() {
  local thing="$1" csr="$2" out="$3"
  shift 3
  if [[ ! -f "$csr" ]] || ! grep -q "BEGIN CERTIFICATE REQUEST" "$csr"; then
    echo "$csr: not a certificate signing request (make one on the device with infra/vehicle-key.sh)" >&2
    exit 2
  fi
  mkdir -p "$out"
  chmod 700 "$out"
  local attributes=()
  [[ -n "${THING_ATTRIBUTES:-}" ]] && attributes=(--attribute-payload "$THING_ATTRIBUTES")
  if aws iot describe-thing --thing-name "$thing" >/dev/null 2>&1; then
    [[ ${#attributes[@]} -gt 0 ]] && aws iot update-thing --thing-name "$thing" "${attributes[@]}"
  else
    aws iot create-thing --thing-name "$thing" "${attributes[@]}" >/dev/null
  fi
  local previous
  previous="$(aws iot list-thing-principals --thing-name "$thing" --query 'principals[]' --output text)"
  cert_arn="$(aws iot create-certificate-from-csr --set-as-active \
    --certificate-signing-request "file://$csr" \
    --query certificateArn --output text)"
  aws iot describe-certificate --certificate-id "${cert_arn##*/}" \
    --query certificateDescription.certificatePem --output text > "$out/cert.pem"
  local policy
  for policy in "$@"; do
    aws iot attach-policy --policy-name "$policy" --target "$cert_arn"
  done
  aws iot attach-thing-principal --thing-name "$thing" --principal "$cert_arn" --thing-principal-type EXCLUSIVE_THING
  # Rotation: the certificates the device had before stop working now.
  local old
  for old in $previous; do
    [[ "$old" == "None" || "$old" == "$cert_arn" ]] && continue
    aws iot detach-thing-principal --thing-name "$thing" --principal "$old"
    aws iot update-certificate --certificate-id "${old##*/}" --new-status INACTIVE
    echo "deactivated the previous certificate ${old##*/}"
  done
  curl -fsS https://www.amazontrust.com/repository/AmazonRootCA1.pem -o "$out/AmazonRootCA1.pem"
}
