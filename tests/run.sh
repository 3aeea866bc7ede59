#!/usr/bin/env bash
# Sets up, builds and runs every blockq test:
#   1. the full suite (unit tests, tool end-to-end tests, consumer tests) with the AVX2 kernels;
#   2. the suite again with the scalar kernels forced, under AddressSanitizer +
#      UndefinedBehaviorSanitizer (arch_test still checks every AVX2 kernel against the scalar
#      reference there, so the vector kernels run sanitized too);
#   3. the core suite cross-compiled for aarch64 and run under qemu with the NEON kernels;
#   4. the libFuzzer targets of the tool's file readers, for a bounded time.
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

step "1/4 full suite (default kernels)"
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-test -j"$jobs"
run_ctest --test-dir build-test -j"$jobs" --output-on-failure

step "2/4 scalar kernels forced, under the sanitizers (address, undefined)"
# One build for two jobs that were separate steps (a plain scalar-forced build and a sanitized
# default one; together 25 of the 48 minutes on a 2-core Zen 3): the scalar reference runs
# every test, sanitized, and arch_test (its tag list follows the compiler flags, not the forced
# default) runs every AVX2 kernel against it, sanitized. A forced tag also compiles each
# quantizer once rather than once per tier, which halves most files' compile time.
# -O1 -g1, as AddressSanitizer's documentation suggests, with line tables for the reports:
# at -O2 -g the instrumented arch_test alone took 379 s to compile on the 2-core CI machine
# (133 s at -O1 -g1). -fno-tree-pta: GCC's points-to analysis of the integer lane sweep
# (search/lanes.hpp) under the sanitizers took a minute a file that instantiates it (uniform_test
# 78 s to compile, 26 s without it; 27 s before that sweep swept both signs in one lane).
# GptqQuality.CorrelatedLayer* is a table of error figures (58 s sanitized, 7 s plain): it
# runs in step 1; the other error-feedback tests run here.
cmake -S . -B build-test-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLOCKQ_SANITIZE=ON \
  -DBLOCKQ_FORCE_ARCH=scalar -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG -fno-tree-pta" \
  -DBLOCKQ_BUILD_BENCH=OFF -DBLOCKQ_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-test-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_ctest --test-dir build-test-asan -j"$jobs" --output-on-failure -LE consumer -E 'GptqQuality.CorrelatedLayer'

step "3/4 aarch64 (NEON) under qemu"
# Under emulation the long statistical searches (a million elements, exhaustive oracles over
# dense scans) take minutes; they run natively above, and arch_test checks every NEON kernel,
# the search kernels included, bit for bit against the scalar reference here.
BLOCKQ_AARCH64_EXCLUDE=${BLOCKQ_AARCH64_EXCLUDE-'OneMillion|OutputError|DenseScan|SearchSweep'} \
  bash .ci/aarch64.sh

step "4/4 fuzzing the file readers"
bash .ci/fuzz.sh

step "summary"
echo "ctest totals of the x86 builds (aarch64 and fuzzing reported above):"
echo "blockq: ${passed} passed, ${failed} failed"
