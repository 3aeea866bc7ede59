// SPDX-License-Identifier: Apache-2.0
// The AVX2 (+FMA, F16C) tier, arch::avx2, by kernel family:
// - arch/avx2_codec.hpp: encode/decode of E2M1 and integer codes, block maxima, block_sse,
//   16-bit inputs, and the numeric tricks every AVX2 kernel shares (explained there);
// - arch/avx2_search.hpp: the kernels of the scale searches (search/*.hpp);
// - arch/avx2_loops.hpp: the fused loops over whole tensors (amax rules, dequantization).
// Every kernel returns the bits of its arch/scalar.hpp oracle (tests/arch_test.cpp).
#pragma once

#include "blockq/arch/avx2_codec.hpp"
#include "blockq/arch/avx2_search.hpp"
#include "blockq/arch/avx2_loops.hpp"
