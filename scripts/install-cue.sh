#!/usr/bin/env bash
# scripts/install-cue.sh: installs the cue CLI that deploy/kumori pins (the `cue`
# field of deploy/kumori/kmodule.cue, the version kam uses) from the Go module
# proxy, into ${FAASD_DOWNLOADS_DIR:-~/.cache/faasd}/cue/<version>/bin/cue (outside
# the repository; deploy/kumori/check.sh and the tests look there first).
# Needs Go >= 1.16 (`go install pkg@version`). Idempotent; prints the path.
#
# Usage: scripts/install-cue.sh [--link]   (--link also symlinks /usr/local/bin/cue)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^[[:space:]]*cue:[[:space:]]*"\(v[^"]*\)".*/\1/p' "$ROOT/deploy/kumori/kmodule.cue")
[ -n "$VERSION" ] || { echo "install-cue: no cue version in deploy/kumori/kmodule.cue" >&2; exit 1; }
DEST=${FAASD_DOWNLOADS_DIR:-${HOME:-/root}/.cache/faasd}/cue/$VERSION/bin

if [ ! -x "$DEST/cue" ] || ! "$DEST/cue" version 2>/dev/null | grep -q "cue version $VERSION"; then
    if ! command -v go > /dev/null && [ -x /usr/local/go/bin/go ]; then PATH=$PATH:/usr/local/go/bin; fi
    command -v go > /dev/null || { echo "install-cue: go not found (Debian: golang-go, or /usr/local/go/bin)" >&2; exit 1; }
    mkdir -p "$DEST"
    echo "install-cue: go install cuelang.org/go/cmd/cue@$VERSION -> $DEST" >&2
    GOBIN=$DEST GOFLAGS=-buildvcs=false go install "cuelang.org/go/cmd/cue@$VERSION"
fi
"$DEST/cue" version | grep -q "cue version $VERSION" || { echo "install-cue: $DEST/cue is not $VERSION" >&2; exit 1; }
if [ "${1:-}" = "--link" ]; then ln -sfn "$DEST/cue" /usr/local/bin/cue; fi
echo "$DEST/cue"
