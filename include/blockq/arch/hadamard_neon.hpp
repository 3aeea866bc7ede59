// SPDX-License-Identifier: Apache-2.0
// NEON block Walsh–Hadamard kernel (AArch64, float; double and blocks below 4 use the
// scalar oracle). The stages h = 1, 2 run inside one register as in arch/hadamard_avx2.hpp:
// the partner of every lane comes from vrev64q (h = 1) or vextq (h = 2), and a bit select
// keeps self + partner (= x[j] + x[j + h]) on the low lane of a pair and partner - self
// (= x[j] - x[j + h]) on the high one: the oracle's operands in its order. The stages
// h >= 4 are plain vector butterflies between registers.
#pragma once

#include "blockq/arch/hadamard_scalar.hpp"

#if BLOCKQ_WITH_NEON && defined(__aarch64__)
#include <arm_neon.h>

#include <cstdint>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

namespace neon_detail {
// The in-register stages of hadamard_blocks_vector, 4 floats a register.
struct hadamard_neon {
  using vec = float32x4_t;
  static float32x4_t low_stages(float32x4_t v) noexcept {
    const uint32x4_t odd = vreinterpretq_u32_u64(vdupq_n_u64(0xFFFFFFFF00000000ull));  // lanes 1 and 3
    const uint32x4_t high = vcombine_u32(vdup_n_u32(0u), vdup_n_u32(~0u));              // lanes 2 and 3
    float32x4_t w = vrev64q_f32(v);  // h = 1
    v = vbslq_f32(odd, vsubq_f32(w, v), vaddq_f32(v, w));
    w = vextq_f32(v, v, 2);  // h = 2
    return vbslq_f32(high, vsubq_f32(w, v), vaddq_f32(v, w));
  }
};
}  // namespace neon_detail

inline void hadamard_blocks(arch::neon, float* x, std::size_t len, std::size_t n, const float* signs, float scale,
                            bool inverse) noexcept {
  hadamard_blocks_vector<neon_detail::hadamard_neon>(x, len, n, signs, scale, inverse);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
#endif
