// SPDX-License-Identifier: Apache-2.0
// Architecture tags. Kernels overload on the tag; a tag inherits from the
// one it extends, so a kernel without a specialisation falls back to scalar.
#pragma once

#include "blockq/config.hpp"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define BLOCKQ_WITH_AVX2 1
#else
#define BLOCKQ_WITH_AVX2 0
#endif

// AVX-512 F/BW/VL/DQ on top of AVX2 (-mavx512f -mavx512bw -mavx512vl -mavx512dq, or
// -march=native on such a CPU); VBMI, used where it helps, has its own macro.
#if BLOCKQ_WITH_AVX2 && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512DQ__)
#define BLOCKQ_WITH_AVX512 1
#else
#define BLOCKQ_WITH_AVX512 0
#endif
#if BLOCKQ_WITH_AVX512 && defined(__AVX512VBMI__)
#define BLOCKQ_WITH_AVX512VBMI 1
#else
#define BLOCKQ_WITH_AVX512VBMI 0
#endif

#if defined(__ARM_NEON) || defined(__ARM_NEON__)
#define BLOCKQ_WITH_NEON 1
#else
#define BLOCKQ_WITH_NEON 0
#endif

BLOCKQ_BEGIN_NAMESPACE
namespace arch {

struct scalar {
  static constexpr const char* name = "scalar";
};
struct avx2 : scalar {
  static constexpr const char* name = "avx2";
};
// AVX-512 (F, BW, VL, DQ): overloads the kernels where 16 lanes beat AVX2's 8
// (arch/avx512.hpp) and inherits AVX2's everywhere else.
struct avx512 : avx2 {
  static constexpr const char* name = "avx512";
};
struct neon : scalar {
  static constexpr const char* name = "neon";
};

}  // namespace arch

// BLOCKQ_ARCH (scalar, avx2, avx512 or neon) overrides the tag picked from the
// compiler flags, e.g. -DBLOCKQ_ARCH=scalar to force the reference kernels.
#if defined(BLOCKQ_ARCH)
using default_arch = arch::BLOCKQ_ARCH;
#elif BLOCKQ_WITH_AVX512
using default_arch = arch::avx512;
#elif BLOCKQ_WITH_AVX2
using default_arch = arch::avx2;
#elif BLOCKQ_WITH_NEON
using default_arch = arch::neon;
#else
using default_arch = arch::scalar;
#endif

BLOCKQ_END_NAMESPACE
