#!/usr/bin/env bash
# Makes sure `promtool` (Prometheus' rule/config checker) is installed and prints its path.
# Idempotent: when promtool is already on PATH it only prints the path. Otherwise it installs the
# Debian package `prometheus` (which ships /usr/bin/promtool) with apt-get, non-interactively,
# through sudo when not root. Exits non-zero with a message when it cannot.
# Used by CI before the deploy/ tests (test/deploy/deploy.int.spec.ts).
set -euo pipefail

if path=$(command -v promtool 2>/dev/null); then
  echo "$path"
  exit 0
fi

fail() {
  echo "ensure-promtool: $*" >&2
  echo "ensure-promtool: install it by hand (Debian/Ubuntu: apt-get install prometheus; or unpack promtool from a Prometheus release onto PATH)," >&2
  echo "ensure-promtool: or set TESSERA_SKIP_PROMTOOL=1 to skip the promtool tests." >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "promtool is not on PATH and apt-get is not available"

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  fail "promtool is not on PATH and installing it needs root (no passwordless sudo)"
fi

echo "ensure-promtool: promtool not found, installing the Debian package 'prometheus'" >&2
export DEBIAN_FRONTEND=noninteractive
# The package's service must not start in CI containers: policy-rc.d usually denies it already;
# --no-install-recommends keeps the install small.
apt_install() {
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >&2
}
if ! apt_install; then
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || fail "apt-get update failed"
  apt_install || fail "apt-get install prometheus failed"
fi

path=$(command -v promtool 2>/dev/null) || fail "the package 'prometheus' is installed but promtool is not on PATH"
echo "$path"
