#!/usr/bin/env bash
# CTest driver of the @huggingface/gguf check (see check.mjs):
#   run.sh NODE_DIR GGUF_EXPECT BLOCKQ
# installs the pinned package into NODE_DIR once (npm ci), then
#  1. a GGUF written by blockq's writer must read, in the independent reader,
#     as what blockq meant to write;
#  2. files written by `blockq quantize` (q4_0, mxfp4) must read, in the
#     independent reader, as blockq's own reader sees them.
# Exits 77 (CTest: skipped) when node or npm is missing.
set -euo pipefail
node_dir=$1 expect=$2 blockq=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIPPED: node and npm are needed for the @huggingface/gguf check (tools/deps.sh installs them)" >&2
  exit 77
fi
mkdir -p "$node_dir"
if [[ ! -f "$node_dir/node_modules/@huggingface/gguf/package.json" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$here/check.mjs" "$node_dir/"
  (cd "$node_dir" && npm ci --no-audit --no-fund --silent)
fi
cp "$here/check.mjs" "$node_dir/"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$expect" write "$work/model.gguf" "$work/model.json"
node "$node_dir/check.mjs" "$work/model.gguf" "$work/model.json"
for f in q4_0 mxfp4; do
  "$blockq" quantize "$work/model.gguf" -o "$work/model-$f.gguf" --format "$f" 2>/dev/null
  "$expect" dump "$work/model-$f.gguf" "$work/model-$f.json"
  node "$node_dir/check.mjs" "$work/model-$f.gguf" "$work/model-$f.json"
done
