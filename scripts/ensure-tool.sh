#!/usr/bin/env bash
# Usage: scripts/ensure-tool.sh COMMAND|/ABSOLUTE/FILE DEBIAN_PACKAGE
# Makes sure COMMAND is installed (or, given an absolute path, that the file exists: fonts, data)
# and prints its path. Idempotent: when COMMAND is already on PATH
# it only prints the path. Otherwise it installs DEBIAN_PACKAGE with apt-get, non-interactively,
# through sudo when not root. Exits non-zero with a message when it cannot.
# Used by CI (.ci/run) for the tools the tests run for real: promtool (package prometheus),
# redis-server (package redis-server).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 COMMAND DEBIAN_PACKAGE" >&2
  exit 2
fi
tool=$1
package=$2

# the command's path, or the file itself when an absolute path was given
locate() {
  case "$tool" in
    /*) [ -e "$tool" ] && echo "$tool" ;;
    *) command -v "$tool" 2>/dev/null ;;
  esac
}

if path=$(locate); then
  echo "$path"
  exit 0
fi

fail() {
  echo "ensure-tool: $*" >&2
  echo "ensure-tool: install it by hand (Debian/Ubuntu: apt-get install $package), or put $tool on PATH." >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "$tool is not on PATH and apt-get is not available"

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  fail "$tool is not on PATH and installing it needs root (no passwordless sudo)"
fi

echo "ensure-tool: $tool not found, installing the Debian package '$package'" >&2
# A package's service must not start in CI containers: policy-rc.d usually denies it already;
# --no-install-recommends keeps the install small.
apt_install() {
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package" >&2
}
if ! apt_install; then
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || fail "apt-get update failed"
  apt_install || fail "apt-get install $package failed"
fi

path=$(locate) || fail "the package '$package' is installed but $tool is not on PATH (or not there)"
echo "$path"
