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
struct neon : scalar {
  static constexpr const char* name = "neon";
};

}  // namespace arch

// BLOCKQ_ARCH (scalar, avx2 or neon) overrides the tag picked from the
// compiler flags, e.g. -DBLOCKQ_ARCH=scalar to force the reference kernels.
#if defined(BLOCKQ_ARCH)
using default_arch = arch::BLOCKQ_ARCH;
#elif BLOCKQ_WITH_AVX2
using default_arch = arch::avx2;
#elif BLOCKQ_WITH_NEON
using default_arch = arch::neon;
#else
using default_arch = arch::scalar;
#endif

BLOCKQ_END_NAMESPACE
