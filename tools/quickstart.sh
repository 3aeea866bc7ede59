#!/usr/bin/env bash
# Sets up, builds and runs the main job: the blockq tool's report on its
# built-in suite (normal, Laplace, Student-t, and a weight-like matrix with
# outlier channels). Extra arguments go to `blockq report`.
# Usage: bash tools/quickstart.sh [report options]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash tools/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKQ_BUILD_TESTS=OFF \
  -DBLOCKQ_BUILD_BENCH=OFF -DBLOCKQ_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build -j"$(nproc)" --target blockq_tool >/dev/null
exec build/tools/blockq report "$@"
