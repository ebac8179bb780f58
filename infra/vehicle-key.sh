#!/usr/bin/env bash
# Run on the vehicle: makes its private key (which never leaves it) and a
# certificate signing request to hand to provision-vehicle.sh.
#
#   vehicle-key.sh <vehicle-id> [dir]      writes <dir>/key.pem (0600) and <dir>/<vehicle-id>.csr
#
# Needs openssl. An existing key is kept, so running it again makes a new CSR
# for the same key; delete key.pem first to rotate the key too.
set -euo pipefail
vehicle="${1:?usage: vehicle-key.sh <vehicle-id> [dir]}"
dir="${2:-/etc/canopy}"
mkdir -p "$dir"
chmod 700 "$dir"
if [[ ! -f "$dir/key.pem" ]]; then
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/key.pem")
fi
openssl req -new -key "$dir/key.pem" -subj "/CN=$vehicle" -out "$dir/$vehicle.csr"
echo "$dir/$vehicle.csr"
