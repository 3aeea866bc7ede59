#!/usr/bin/env bash
# Sets up, builds and runs the main job: the blockq tool's report on its
# built-in suite (normal, Laplace, Student-t, and a weight-like matrix with
# outlier channels). Extra arguments go to `blockq report`.
# Usage: bash tools/quickstart.sh [report options]
# Steps and the compiler's progress go to stderr (the first build takes a few
# minutes on two cores), the report to stdout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
step() { printf 'quickstart: [%s/4] %s\n' "$1" "$2" >&2; }

step 1 "checking the Debian packages blockq needs (tools/deps.sh)"
bash tools/deps.sh

step 2 "configuring build/ (CMake, Ninja, Release)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKQ_BUILD_TESTS=OFF \
     -DBLOCKQ_BUILD_BENCH=OFF -DBLOCKQ_BUILD_EXAMPLES=OFF >"$log" 2>&1; then
  cat "$log" >&2
  echo "quickstart: configuring failed (output above)" >&2
  exit 1
fi

jobs=$(nproc)
step 3 "building the blockq tool with $jobs jobs (Ninja prints [done/total] per file)"
# Ninja writes one [n/N] line per compiled file when its output is not a terminal.
cmake --build build -j"$jobs" --target blockq_tool >&2

step 4 "running build/tools/blockq report${*:+ $*}"
build/tools/blockq report "$@"

cat >&2 <<'NEXT'

quickstart: the tool is build/tools/blockq (build/tools/blockq --help lists its commands). Next, try:
  build/tools/blockq quantize model.safetensors -o model-mxfp4.safetensors --format mxfp4
  build/tools/blockq dequantize model-mxfp4.safetensors -o restored.safetensors
  build/tools/blockq grid --dist student_t:3 --bits 2-4
NEXT
