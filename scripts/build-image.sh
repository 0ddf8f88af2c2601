#!/bin/sh
# Builds Tessera's container image with buildah (no Docker engine needed), from the repository root.
#   scripts/build-image.sh [TAG]          TAG defaults to localhost/tessera:dev
# With TESSERA_LOCAL_BASE=1 (or when no registry base can be pulled: set it), first builds a local base
# image from Debian's packages (debootstrap minbase bookworm + this machine's node and npm), tagged by a
# content hash so it is built once, and passes it as BUILD_IMAGE and BASE_IMAGE.
# Needs root (or a rootless buildah setup) and: apt-get install -y buildah debootstrap
set -eu
cd "$(dirname "$0")/.."
TAG=${1:-localhost/tessera:dev}
BUILDAH=${BUILDAH:-buildah}
set --
if [ "${TESSERA_LOCAL_BASE:-0}" = 1 ]; then
  NODE_BIN=$(command -v node)
  NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  SUITE=${DEBIAN_SUITE:-bookworm}
  MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
  # the base changes when node, npm, the suite or this recipe change
  HASH=$( { sha256sum "$NODE_BIN" | cut -d' ' -f1; cat "$NPM_DIR/package.json"; echo "$SUITE $MIRROR"; sed -n '/^# recipe-start/,/^# recipe-end/p' "$0"; } | sha256sum | cut -c1-16)
  BASE=localhost/tessera-base:$HASH
  if ! $BUILDAH inspect --type image "$BASE" >/dev/null 2>&1; then
# recipe-start
    WORK=$(mktemp -d /var/tmp/tessera-base.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
    echo "building $BASE (debootstrap $SUITE)" >&2
    debootstrap --variant=minbase "$SUITE" "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
      || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
    C=$($BUILDAH from scratch)
    M=$($BUILDAH mount "$C")
    tar -C "$WORK/rootfs" -cf - . | tar -C "$M" -xf -
    cp "$NODE_BIN" "$M/usr/bin/node"
    mkdir -p "$M/usr/lib/node_modules"
    cp -a "$NPM_DIR" "$M/usr/lib/node_modules/npm"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$M/usr/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$M/usr/bin/npx"
    $BUILDAH umount "$C" >/dev/null
    $BUILDAH config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/sh "$C"
    $BUILDAH commit -q "$C" "$BASE" >/dev/null
    $BUILDAH rm "$C" >/dev/null
# recipe-end
  fi
  set -- --build-arg "BUILD_IMAGE=$BASE" --build-arg "BASE_IMAGE=$BASE"
fi
# the host's npm cache (a faster npm ci) and its extra CA (a TLS-intercepting proxy), where there are
CACHE=$(npm config get cache 2>/dev/null || true)
[ -n "$CACHE" ] && [ -d "$CACHE" ] && set -- "$@" --volume "$CACHE:/root/.npm"
CA=${NODE_EXTRA_CA_CERTS:-}
[ -n "$CA" ] && [ -s "$CA" ] && set -- "$@" --secret "id=npm-ca,src=$CA"
# --format docker keeps HEALTHCHECK (the OCI image format has no field for it)
$BUILDAH build --isolation chroot --format docker --layers --force-rm -f deploy/docker/Dockerfile "$@" -t "$TAG" .
