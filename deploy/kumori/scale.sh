#!/usr/bin/env bash
# deploy/kumori/scale.sh N: sets the worker role's instance count (hsize) of the
# faas deployment to N and applies it with `kam ctl update deployment`. Meant as
# the actuator of the observer's decisions:
#
#   faasd scaler --exec 'deploy/kumori/scale.sh {workers}'
#
# Environment: KAM (default kam), KUMORI_DEPLOYMENT (default faasd),
# KUMORI_DEPLOYMENT_DIR (default the faas_deployment folder next to this script).
set -euo pipefail

n=${1:-}
[[ $n =~ ^[0-9]+$ ]] || { echo "usage: scale.sh WORKERS (a number)" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
dir=${KUMORI_DEPLOYMENT_DIR:-$here/faas_deployment}
file=$dir/manifest.cue

# One update at a time: a second decision waits for the first to be applied.
exec 9> "${TMPDIR:-/tmp}/faasd-kumori-scale.lock"
flock 9
sed -i -E "s/^([[:space:]]*worker:[[:space:]]*hsize:[[:space:]]*)[0-9]+/\1$n/" "$file"
grep -Eq "^[[:space:]]*worker:[[:space:]]*hsize:[[:space:]]*$n\b" "$file" \
    || { echo "scale.sh: no 'worker: hsize: N' line in $file" >&2; exit 1; }
${KAM:-kam} ctl update deployment "${KUMORI_DEPLOYMENT:-faasd}" --deployment "$dir" --yes --wait 5m
