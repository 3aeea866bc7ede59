// SPDX-License-Identifier: Apache-2.0
// The CPU check of arch_avx512_test, compiled without the AVX-512 flags. That binary's
// other sources are built with them, so the compiler may use AVX-512 instructions anywhere
// in them, static initialisers included (gtest's test registration): on a CPU without
// AVX-512 the binary would die of SIGILL before main, even listing its tests. This runs
// first (constructor priority 101, before every default-priority initialiser of the
// executable) and, when the CPU lacks F/BW/VL/DQ, says so and exits with 77, which CTest
// reports as a skipped test (SKIP_RETURN_CODE in tests/CMakeLists.txt).
// Built alone with BLOCKQ_AVX512_GUARD_MAIN, it is the configure-time probe of
// tests/CMakeLists.txt (BLOCKQ_AVX512_TESTS=auto): exit 0 with AVX-512, 77 without.
#include <cstdio>
#include <cstdlib>

namespace {

__attribute__((constructor(101))) void require_avx512() {
  __builtin_cpu_init();  // a constructor may run before the CPU model is initialised
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    return;
  std::fputs("arch_avx512_test: SKIPPED: this CPU lacks AVX-512 F/BW/VL/DQ, so the AVX-512 tier (arch::avx512) "
             "was not tested here\n",
             stderr);
  std::_Exit(77);
}

}  // namespace

#ifdef BLOCKQ_AVX512_GUARD_MAIN
int main() { return 0; }  // reached only when require_avx512 found the CPU able
#endif
