#!/usr/bin/env bash
# Sets up, builds and runs every blockq test:
#   1. the full suite (unit tests, tool end-to-end tests, consumer tests) with the AVX2 kernels;
#   2. the core suite again with the scalar kernels forced;
#   3. the suite under AddressSanitizer + UndefinedBehaviorSanitizer;
#   4. the core suite cross-compiled for aarch64 and run under qemu with the NEON kernels;
#   5. the libFuzzer targets of the tool's file readers, for a bounded time.
# Usage: bash tests/run.sh   (from anywhere; builds in ./build-test* of the checkout)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash tools/deps.sh --ci
jobs=$(nproc)
step() { printf '\n=== %s (%d s so far) ===\n' "$*" "$SECONDS"; }
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Runs ctest, keeps its output, and adds its counts to the totals printed at the end.
run_ctest() {
  local rc=0
  ctest "$@" 2>&1 | tee "$log" || rc=$?
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed=$((failed + BASH_REMATCH[1]))
    passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
  fi
  return "$rc"
}

step "1/5 full suite (default kernels)"
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-test -j"$jobs"
run_ctest --test-dir build-test -j"$jobs" --output-on-failure

step "2/5 core suite, scalar kernels forced"
cmake -S . -B build-test-scalar -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKQ_FORCE_ARCH=scalar \
  -DBLOCKQ_BUILD_TOOLS=OFF -DBLOCKQ_BUILD_BENCH=OFF -DBLOCKQ_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-test-scalar -j"$jobs"
run_ctest --test-dir build-test-scalar -j"$jobs" --output-on-failure -LE consumer

step "3/5 sanitizers (address, undefined)"
# -O1 -g1, as AddressSanitizer's documentation suggests, with line tables for the reports:
# at -O2 -g the instrumented arch_test alone took 379 s to compile on the 2-core CI machine
# (133 s at -O1 -g1), most of the CI's 40 minutes.
cmake -S . -B build-test-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLOCKQ_SANITIZE=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DBLOCKQ_BUILD_BENCH=OFF -DBLOCKQ_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-test-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_ctest --test-dir build-test-asan -j"$jobs" --output-on-failure -LE consumer

step "4/5 aarch64 (NEON) under qemu"
# Under emulation the long statistical searches (a million elements, exhaustive oracles over
# dense scans) take minutes; they run natively above, and arch_test checks every NEON kernel,
# the search kernels included, bit for bit against the scalar reference here.
BLOCKQ_AARCH64_EXCLUDE=${BLOCKQ_AARCH64_EXCLUDE-'OneMillion|OutputError|DenseScan|SearchSweep'} \
  bash .ci/aarch64.sh

step "5/5 fuzzing the file readers"
bash .ci/fuzz.sh

step "summary"
echo "ctest totals of the x86 builds (aarch64 and fuzzing reported above):"
echo "blockq: ${passed} passed, ${failed} failed"
