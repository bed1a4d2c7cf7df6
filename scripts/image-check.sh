#!/usr/bin/env bash
# scripts/image-check.sh: builds the top-level Dockerfile here, with no Docker
# engine and no container registry, and runs faasd from the built image.
#
#   1. debootstrap a Debian bookworm minbase root file system from Debian's
#      archive and import it as debian:bookworm, plus a slimmed copy (the same
#      dpkg path excludes as the official -slim images) as debian:bookworm-slim;
#   2. podman build --pull=never (so the FROM lines can only use those images);
#   3. mount the built image and run its ENTRYPOINT + CMD (faasd --help), faasd
#      --version, the tools the worker needs (git, bwrap, sh, python3) as the
#      image's non-root user inside bubblewrap (a container-like sandbox: new
#      namespaces, the image as /); check what must NOT be there (compilers,
#      headers); print the image size and the build time.
#
# Proves: the Dockerfile builds from Debian packages only, the runtime stage has
# every shared library faasd needs, the image metadata (user, entrypoint, cmd) is
# what compose and Kumori rely on. Does not prove: that an engine runs it with
# networking, cgroups or seccomp (bubblewrap inside a container needs user
# namespaces, see docs/deployment.md); the real debian:bookworm images are built
# by debuerreotype, ours is an equivalent debootstrap minbase.
#
# Slow (compiles faasd inside the build container): not part of the default
# test command. Artefacts (root file systems, podman storage, ccache) live in
# ${FAASD_IMAGE_CACHE:-$FAASD_DOWNLOADS_DIR/image-check} (FAASD_DOWNLOADS_DIR defaults to
# ~/.cache/faasd), never in the repository.
#
# Usage: scripts/image-check.sh [--clean]      (as root; installs what it needs with
#        scripts/install-deps.sh image: podman buildah debootstrap bubblewrap jq)
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian),
#        FAASD_IMAGE (default localhost/faasd:check), FAASD_STORAGE_DRIVER (overlay|vfs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${FAASD_IMAGE_CACHE:-${FAASD_DOWNLOADS_DIR:-${HOME:-/root}/.cache/faasd}/image-check}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
IMAGE=${FAASD_IMAGE:-localhost/faasd:check}
DRIVER=${FAASD_STORAGE_DRIVER:-overlay}
FAASD_UID=10001

log() { printf '[image-check] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, podman image mount)"
"$ROOT/scripts/install-deps.sh" image >&2
for tool in podman debootstrap bwrap jq; do
    command -v "$tool" >/dev/null || die "$tool not found: scripts/install-deps.sh image"
done

if [ "${1:-}" = "--clean" ]; then
    log "removing $CACHE"
    podman --root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver "$DRIVER" system reset -f >/dev/null 2>&1 || true
    rm -rf "$CACHE"
    exit 0
fi

mkdir -p "$CACHE"
# A private podman store: nothing of this check touches /var/lib/containers.
pm() { podman --root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver "$DRIVER" "$@"; }

# ---------------------------------------------------------------------------
# 1. Base images from Debian's archive.
# ---------------------------------------------------------------------------
ROOTFS=$CACHE/rootfs-$SUITE
if [ ! -f "$ROOTFS/.complete" ]; then
    log "debootstrap --variant=minbase $SUITE from $MIRROR (once; cached in $ROOTFS)"
    rm -rf "$ROOTFS"
    t0=$(date +%s)
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    # Sources as in the official images (deb822), and no apt caches in the image.
    rm -f "$ROOTFS/etc/apt/sources.list"
    cat > "$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    chroot "$ROOTFS" apt-get clean
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/log/*.log
    touch "$ROOTFS/.complete"
    log "debootstrap took $(( $(date +%s) - t0 )) s"
fi

SLIM=$CACHE/rootfs-$SUITE-slim
if [ ! -f "$SLIM/.complete" ]; then
    log "deriving $SUITE-slim (dpkg path excludes for docs, man pages, locales)"
    rm -rf "$SLIM"
    cp -a "$ROOTFS" "$SLIM"
    rm -f "$SLIM/.complete"
    cat > "$SLIM/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# As in the official debian:*-slim images: no documentation, man pages or locales.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
    find "$SLIM/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
    find "$SLIM/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$SLIM"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
    touch "$SLIM/.complete"
fi

import_base() { # dir name
    local dir=$1 name=$2
    if pm image exists "docker.io/library/$name" && [ "$(pm image inspect --format '{{index .Labels "org.faasd.rootfs"}}' "docker.io/library/$name")" = "$(stat -c %Y "$dir/.complete")" ]; then
        return
    fi
    log "importing $dir as $name"
    tar -C "$dir" --numeric-owner --exclude=./.complete -cf - . \
        | pm import -q --change 'CMD ["bash"]' --change "LABEL org.faasd.rootfs=$(stat -c %Y "$dir/.complete")" - "localhost/$name" >/dev/null
    # FROM debian:bookworm resolves to docker.io/library/debian:bookworm.
    pm tag "localhost/$name" "docker.io/library/$name"
}
import_base "$ROOTFS" "debian:$SUITE"
import_base "$SLIM" "debian:$SUITE-slim"

# ---------------------------------------------------------------------------
# 2. Build, never pulling.
# ---------------------------------------------------------------------------
log "podman build --pull=never -t $IMAGE $ROOT (compiles faasd: slow on 2 cores)"
t0=$(date +%s)
pm build --pull=never --network=host --layers --isolation="${FAASD_BUILD_ISOLATION:-chroot}" \
    -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" > "$CACHE/build.log" 2>&1 \
    || { tail -40 "$CACHE/build.log" >&2; die "podman build failed (log: $CACHE/build.log)"; }
build_s=$(( $(date +%s) - t0 ))
log "build took ${build_s} s (log: $CACHE/build.log)"

# ---------------------------------------------------------------------------
# 3. Inspect and run from the mounted image.
# ---------------------------------------------------------------------------
config=$(pm image inspect --format '{{json .Config}}' "$IMAGE")
user=$(jq -r '.User // ""' <<<"$config")
entrypoint=$(jq -c '.Entrypoint // []' <<<"$config")
cmd=$(jq -c '.Cmd // []' <<<"$config")
[ "$user" = "$FAASD_UID:$FAASD_UID" ] || die "image user is '$user', expected $FAASD_UID:$FAASD_UID (non-root)"
[ "$entrypoint" = '["/usr/local/bin/faasd"]' ] || die "entrypoint is $entrypoint, expected [\"/usr/local/bin/faasd\"]"
log "config: user=$user entrypoint=$entrypoint cmd=$cmd"

mnt=$(pm image mount "$IMAGE")
trap 'pm image unmount "$IMAGE" >/dev/null 2>&1 || true' EXIT

# Like `docker run IMAGE ARGS`: the image as /, fresh namespaces, the image's user.
in_image() {
    bwrap --ro-bind "$mnt" / --proc /proc --dev /dev --tmpfs /tmp --tmpfs /var/lib/faasd \
          --unshare-all --die-with-parent --uid "$FAASD_UID" --gid "$FAASD_UID" \
          --clearenv --setenv PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
          --setenv HOME /var/lib/faasd --chdir /var/lib/faasd "$@"
}

mapfile -t default_argv < <(jq -r '.[]' <<<"$entrypoint"; jq -r '.[]' <<<"$cmd")
log "running the image's default command: ${default_argv[*]}"
help_out=$(in_image "${default_argv[@]}") || die "'${default_argv[*]}' failed in the image"
grep -q 'faasd' <<<"$help_out" || die "faasd --help printed no usage"
version=$(in_image /usr/local/bin/faasd --version) || die "faasd --version failed in the image"
log "faasd --version: $version"
in_image /usr/local/bin/faasd --dump-options > "$CACHE/dump-options.json" || die "faasd --dump-options failed"
commands=$(jq -r '[.commands[] | select(.leaf) | .path] | join(", ")' "$CACHE/dump-options.json")
log "subcommands in the image: ${commands:-(none yet)}"
for role in $(jq -r '.commands[] | select(.leaf and (.path | test(" ") | not)) | .path' "$CACHE/dump-options.json"); do
    in_image /usr/local/bin/faasd "$role" --help >/dev/null || die "faasd $role --help failed in the image"
done

git_v=$(in_image git --version) || die "git missing"
bwrap_v=$(in_image bwrap --version) || die "bubblewrap missing"
py_v=$(in_image python3 -c 'import json, sys; print("python", sys.version.split()[0])') || die "python3 (with json) missing"
in_image sh -c 'true' || die "sh missing"
log "tools: $git_v; $bwrap_v; $py_v; sh"
# The runtime stage must not carry the toolchain or headers.
for absent in usr/bin/g++ usr/bin/cc usr/bin/cmake usr/include/boost usr/include/librdkafka; do
    [ ! -e "$mnt/$absent" ] || die "/$absent is in the runtime image"
done
# The example functions, and the workers' cache directory (a volume in faas.yml) owned by faasd.
[ -x "$mnt/usr/share/faasd/examples/functions/echo-sh/main" ] || die "/usr/share/faasd/examples/functions is not in the image"
[ "$(stat -c %u:%g "$mnt/var/lib/faasd/cache")" = "$FAASD_UID:$FAASD_UID" ] \
    || die "/var/lib/faasd/cache is missing or not owned by $FAASD_UID"
ldd_missing=$(chroot "$mnt" ldd /usr/local/bin/faasd | grep 'not found' || true)
[ -z "$ldd_missing" ] || die "missing shared libraries: $ldd_missing"

size=$(pm image inspect --format '{{.Size}}' "$IMAGE")
slim_size=$(pm image inspect --format '{{.Size}}' "docker.io/library/debian:$SUITE-slim")
bin_size=$(stat -c %s "$mnt/usr/local/bin/faasd")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
summary="image $IMAGE: $(mib "$size") (base debian:$SUITE-slim $(mib "$slim_size"), faasd binary $(mib "$bin_size")); build ${build_s} s; $version"
echo "$summary" | tee "$CACHE/last-result.txt"
log "OK"
