#!/bin/bash
# Carries a built baseline (bench/lib/baseline.mjs) to a machine without npm, such as the device
# machine (../shared/gpu/README.md), for bench/pipeline.mjs and bench/tracing.mjs.
#
#   here:  bash bench/lib/carry-baseline.sh pack /tmp/tessera-base-<sha12>    # writes .device/base.tar.xz
#   there: bash bench/lib/carry-baseline.sh unpack /tmp/tessera-base          # after .device/on-device.sh
#          BENCH_PIPELINE_BASE_DIR=/tmp/tessera-base node bench/pipeline.mjs
#
# Only the baseline's package.json files and dist/ folders travel: its third-party dependencies
# must be the ones this checkout has (same versions; the script checks the lockfiles agree on
# them), so `unpack` links the baseline's node_modules (the root's and each workspace's) to this
# checkout's, except @tessera/*, which point at the baseline's own packages.
set -euo pipefail
root=$(git rev-parse --show-toplevel 2>/dev/null || pwd); cd "$root"
case "${1:-}" in
  pack)
    base=${2:?usage: carry-baseline.sh pack <built baseline dir>}
    [ -f "$base/packages/core/dist/cli.js" ] || { echo "$base is not built (no packages/core/dist/cli.js)" >&2; exit 1; }
    # third-party versions must agree: compare every node_modules/<name> version outside @tessera
    node -e '
      const [a, b] = process.argv.slice(1).map((f) => JSON.parse(require("fs").readFileSync(f, "utf8")).packages);
      const diff = Object.keys(a).filter((k) => k.startsWith("node_modules/") && !k.startsWith("node_modules/@tessera/") && b[k] && a[k].version !== b[k].version);
      if (diff.length) { console.error("the baseline uses other dependency versions: " + diff.slice(0, 5).join(", ")); process.exit(1); }
    ' "$base/package-lock.json" package-lock.json
    mkdir -p .device
    (cd "$base" && tar -cJf "$root/.device/base.tar.xz" package.json .tessera-bench-sha $(ls -d packages/*/package.json packages/*/dist))
    echo "packed $(du -h .device/base.tar.xz | cut -f1) from $base into .device/base.tar.xz"
    ;;
  unpack)
    dest=${2:?usage: carry-baseline.sh unpack <dir>}
    rm -rf "$dest"; mkdir -p "$dest/node_modules/@tessera"
    tar -xJf .device/base.tar.xz -C "$dest"
    for entry in node_modules/* node_modules/.bin; do
      [ "$entry" = node_modules/@tessera ] || ln -s "$root/$entry" "$dest/$entry"
    done
    for pkg in "$dest"/packages/*; do
      name=$(node -p "require('$pkg/package.json').name")
      ln -s "$pkg" "$dest/node_modules/$name"
      # a workspace's own node_modules (versions that differ from the root's)
      own="$root/packages/$(basename "$pkg")/node_modules"
      [ -d "$own" ] && ln -s "$own" "$pkg/node_modules"
    done
    echo "unpacked the baseline $(cat "$dest/.tessera-bench-sha" 2>/dev/null | cut -c1-12) into $dest"
    ;;
  *) echo "usage: carry-baseline.sh pack <built baseline dir> | unpack <dir>" >&2; exit 2 ;;
esac
