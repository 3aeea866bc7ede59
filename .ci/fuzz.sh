#!/usr/bin/env bash
# Builds the libFuzzer targets of the blockq tool's file readers (safetensors,
# npy, GGUF with importance matrices), its --tensors name filter (RE2) and its
# safetensors writer's round trip
# with clang (-fsanitize=fuzzer,address,undefined) and runs each for a
# bounded time from its seed corpus in tests/fuzz/corpus/. Exits non-zero when
# a target crashes, leaks, trips a sanitizer or fails to build; the input
# that did it is left in build-fuzz/ (crash-*, leak-*, timeout-*).
#   BLOCKQ_FUZZ_SECONDS   seconds per reader target: safetensors, npy (default 40)
#   BLOCKQ_FUZZ_SECONDS_SMALL  seconds for the name filter and the writer (default 15 each)
#   BLOCKQ_FUZZ_GGUF_SECONDS   seconds for the GGUF and imatrix reader (default 30)
#   CXX_FUZZ              the clang++ to use (default: clang++, else clang++-14)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${BLOCKQ_FUZZ_SECONDS:-40}
small_seconds=${BLOCKQ_FUZZ_SECONDS_SMALL:-15}
gguf_seconds=${BLOCKQ_FUZZ_GGUF_SECONDS:-30}
out="$root/build-fuzz"
cxx=${CXX_FUZZ:-}
if [[ -z "$cxx" ]]; then
  if command -v clang++ >/dev/null; then cxx=clang++; else cxx=clang++-14; fi
fi
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I"$root/include" -I"$root/tools/blockq")
io=("$root/tools/blockq/tensor.cpp" "$root/tools/blockq/safetensors.cpp" "$root/tools/blockq/npy.cpp")
# The GGUF and importance-matrix readers (tools/blockq/gguf.cpp, imatrix.cpp).
gguf_io=("$root/tools/blockq/tensor.cpp" "$root/tools/blockq/gguf.cpp" "$root/tools/blockq/imatrix.cpp")

status=0
for target in safetensors npy name_filter writer gguf; do
  exe="$out/fuzz_$target"
  sources=("${io[@]}")
  time_limit=$seconds
  case $target in
    name_filter) sources+=("$root/tools/blockq/select.cpp" -lre2); time_limit=$small_seconds ;;
    writer) time_limit=$small_seconds ;;
    gguf) sources=("${gguf_io[@]}"); time_limit=$gguf_seconds ;;
  esac
  echo "blockq fuzz: building $target" >&2
  "$cxx" "${flags[@]}" "$root/tests/fuzz/fuzz_$target.cpp" "${sources[@]}" -o "$exe"
  corpus="$out/corpus-$target"
  mkdir -p "$corpus"
  echo "blockq fuzz: running $target for ${time_limit} s" >&2
  if ! (cd "$out" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$exe" "$corpus" "$root/tests/fuzz/corpus/$target" -dict="$root/tests/fuzz/$target.dict" \
        -max_total_time="$time_limit" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        >"$out/fuzz_$target.log" 2>&1); then
    echo "blockq fuzz: $target FAILED; the end of its log ($out/fuzz_$target.log):" >&2
    tail -n 40 "$out/fuzz_$target.log" >&2
    status=1
  else
    grep -E "^stat::number_of_executed_units|^Done" "$out/fuzz_$target.log" | sed "s/^/blockq fuzz: $target: /" >&2 || true
  fi
done
exit $status
