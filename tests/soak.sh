#!/usr/bin/env bash
# Soak test of the blockq tool (not part of CI): random valid and corrupted
# .safetensors / .npy files through quantize, dequantize and report, checking
# that no run ends by a signal or hangs, leaves a temporary file, writes an
# output when it fails, or depends on the thread count (tests/soak.py).
#   tests/soak.sh [ITERATIONS (default 200)] [SEED] 
#   BLOCKQ_TOOL   the tool to test (default: build/tools/blockq)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tool=${BLOCKQ_TOOL:-$root/build/tools/blockq}
if [[ ! -x "$tool" ]]; then
  echo "soak: no tool at $tool (build the target blockq_tool, or set BLOCKQ_TOOL)" >&2
  exit 2
fi
exec python3 "$root/tests/soak.py" "$tool" "${1:-200}" ${2:+"$2"}
