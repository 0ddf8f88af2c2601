#!/usr/bin/env bash
# Makes sure `promtool` (Prometheus' rule/config checker) is installed and prints its path (the
# Debian package `prometheus` ships /usr/bin/promtool). Used by CI before the deploy/ tests
# (test/deploy/deploy.int.spec.ts); set TESSERA_SKIP_PROMTOOL=1 to skip the promtool tests instead.
exec "$(dirname "$0")/ensure-tool.sh" promtool prometheus
