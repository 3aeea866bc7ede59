// SPDX-License-Identifier: Apache-2.0
// All block kernels: the scalar oracle plus the architectures the compiler targets.
#pragma once

#include "blockq/arch.hpp"
#include "blockq/arch/scalar.hpp"
#if BLOCKQ_WITH_AVX2
#include "blockq/arch/avx2.hpp"
#endif
#if BLOCKQ_WITH_AVX512
#include "blockq/arch/avx512.hpp"
#include "blockq/arch/avx512_e2m1.hpp"
#endif
#if BLOCKQ_WITH_NEON
#include "blockq/arch/neon.hpp"
#endif
