#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the AVX-512 tier's bit-identity tests (tests/arch_test.cpp + tests/arch_avx512_test.cpp,
# tag arch::avx512) on a CPU WITHOUT AVX-512: the _mm512_* intrinsics are emulated by SIMDe
# (Debian package libsimde-dev), the rest is native AVX2. immintrin.h here includes the
# compiler's own header, then SIMDe with its native aliases, then defines __AVX512F/BW/VL/DQ__
# so that arch.hpp turns the tier on; it emulates the few intrinsics SIMDe 0.7.4 lacks (the
# float conversions through the native AVX2 instructions on each half) and makes
# __builtin_cpu_supports report every feature, so that the tests do not skip.
# It checks the kernels' logic (lanes, masks, declining rules, tails), not their speed, and
# trusts the emulation's semantics; on an AVX-512 CPU run the real arch_avx512_test instead.
#   bash tests/avx512_emulated/run.sh          (needs g++, libgtest-dev, libsimde-dev)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/tests/avx512_emulated
out=${BLOCKQ_EMULATED_BUILD:-$root/build-avx512-emulated}
mkdir -p "$out"
[ -f /usr/include/simde/x86/avx512.h ] || { echo "needs libsimde-dev (apt-get install libsimde-dev)" >&2; exit 1; }
echo '#include <immintrin.h>' > "$out/force.h"
flags=(-std=c++20 -O1 -w -mavx2 -mfma -mf16c -ffp-contract=off -include "$out/force.h" -I"$here" -I"$root/include" -I"$root/tests")
g++ "${flags[@]}" -c "$root/tests/arch_test.cpp" -o "$out/arch_test.o"
g++ "${flags[@]}" -c "$root/tests/arch_avx512_test.cpp" -o "$out/arch_avx512_test.o"
g++ "$out/arch_test.o" "$out/arch_avx512_test.o" -o "$out/arch_avx512_emulated" -lgtest -lgtest_main -pthread
"$out/arch_avx512_emulated" "$@"
