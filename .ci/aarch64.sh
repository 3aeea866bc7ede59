#!/usr/bin/env bash
# The core test suite cross-compiled for AArch64 and run under qemu-aarch64, so that the
# NEON kernels (include/blockq/arch/neon.hpp, the default tag there) are tested for real:
# tests/arch_test.cpp checks them against arch::scalar bit for bit, and every other test
# runs with them too.
#   1. GoogleTest from Debian's sources (/usr/src/googletest) cross-compiled into a private
#      prefix (once; tests/CMakeLists.txt then finds it through GTest_DIR);
#   2. blockq's tests only (no tool, benchmarks, examples; the Boost-based grid tests are
#      skipped), -O2, with cmake/aarch64-linux-gnu.cmake;
#   3. ctest with qemu-aarch64 as CMAKE_CROSSCOMPILING_EMULATOR (the consumer tests, which
#      configure nested native projects, are left to the x86 run).
# Needs g++-aarch64-linux-gnu and qemu-user (tools/deps.sh --ci).
#   BLOCKQ_AARCH64_BUILD     build directory (default: build-aarch64 in the checkout)
#   BLOCKQ_AARCH64_EXCLUDE   a ctest -E regex of tests to skip under qemu (default: none)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BLOCKQ_AARCH64_BUILD:-$root/build-aarch64}
toolchain="$root/cmake/aarch64-linux-gnu.cmake"
jobs=$(nproc)
for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  command -v "$tool" >/dev/null || { echo "aarch64.sh: $tool not found (bash tools/deps.sh --ci)" >&2; exit 1; }
done
[[ -d /usr/src/googletest ]] || { echo "aarch64.sh: /usr/src/googletest not found (package googletest)" >&2; exit 1; }
start=$SECONDS

prefix="$build/gtest-prefix"
if [[ ! -f "$prefix/lib/cmake/GTest/GTestConfig.cmake" ]]; then
  cmake -S /usr/src/googletest -B "$build/gtest" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_GMOCK=OFF -DINSTALL_GTEST=ON >/dev/null
  cmake --build "$build/gtest" -j"$jobs" >/dev/null
  cmake --install "$build/gtest" >/dev/null
fi

cmake -S "$root" -B "$build/blockq" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DBLOCKQ_BUILD_TESTS=ON -DBLOCKQ_BUILD_TOOLS=OFF -DBLOCKQ_BUILD_BENCH=OFF -DBLOCKQ_BUILD_EXAMPLES=OFF \
  -DGTest_DIR="$prefix/lib/cmake/GTest" -DCMAKE_DISABLE_FIND_PACKAGE_boost_headers=ON >/dev/null
cmake --build "$build/blockq" -j"$jobs"
exclude=()
[[ -n "${BLOCKQ_AARCH64_EXCLUDE:-}" ]] && exclude=(-E "$BLOCKQ_AARCH64_EXCLUDE")
ctest --test-dir "$build/blockq" -j"$jobs" --output-on-failure -LE consumer "${exclude[@]}"
echo "aarch64.sh: built and ran the aarch64 suite under qemu in $((SECONDS - start)) s"
