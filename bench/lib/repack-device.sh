#!/bin/bash
# Re-packs .device/deps.tar.xz (written by ../shared/gpu/pack.sh) without what no benchmark on the
# device machine loads — linters, type packages, fast-check, sharp and its binaries, the Kubernetes
# models, Playwright, the PP-OCR recognizer — so that the repository and .device stay under the
# 64 MiB a device command may carry (68 MiB → 49 MiB on 2026-12-06). Run from the project root
# after `npm run build && bash ../shared/gpu/pack.sh`. The benchmarks that need sharp (bench/images.mjs)
# do not run from such a pack.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
[ -d .device ] || { echo "no .device/: run ../shared/gpu/pack.sh first" >&2; exit 1; }
dists=$(find packages examples bench -maxdepth 3 -type d -name dist -not -path '*/node_modules/*' 2>/dev/null || true)
ex=()
for p in 'onnxruntime-node/bin/napi-v*/win32' 'onnxruntime-node/bin/napi-v*/darwin' 'onnxruntime-node/bin/napi-v*/linux/arm64' .cache \
  typescript @esbuild esbuild 'turbo*' @turbo @rolldown rolldown 'lightningcss*' vite vitest @vitest openai \
  sharp @img eslint @eslint @typescript-eslint typescript-eslint @types fast-check kubernetes-models playwright-core @seriousme @swc; do
  ex+=("--exclude=node_modules/$p")
done
# shellcheck disable=SC2086
tar -cJf .device/deps.tar.xz "${ex[@]}" --exclude='*PP-OCRv4_rec*' node_modules $(find packages -maxdepth 2 -name node_modules -type d) $dists
if command -v wrk > /dev/null; then
  mkdir -p .device/wrk && cp "$(command -v wrk)" .device/wrk/
  lib=$(ldd "$(command -v wrk)" | awk '/libluajit/ {print $3}')
  [ -n "$lib" ] && cp "$lib" .device/wrk/
fi
echo "re-packed: $(du -sh .device | cut -f1) in .device"
