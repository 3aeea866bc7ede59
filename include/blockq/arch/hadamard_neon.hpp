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

inline void hadamard_blocks(arch::neon, float* x, std::size_t len, std::size_t n, const float* signs, float scale,
                            bool inverse) noexcept {
  if (n < 4) {
    hadamard_blocks(arch::scalar{}, x, len, n, signs, scale, inverse);
    return;
  }
  static const std::uint32_t odd_bits[4] = {0u, ~0u, 0u, ~0u};
  static const std::uint32_t high_bits[4] = {0u, 0u, ~0u, ~0u};
  const uint32x4_t odd = vld1q_u32(odd_bits), high = vld1q_u32(high_bits);
  const float32x4_t vs = vdupq_n_f32(scale);
  for (std::size_t b = 0; b + n <= len; b += n) {
    float* p = x + b;
    for (std::size_t i = 0; i < n; i += 4) {
      float32x4_t v = vld1q_f32(p + i);
      if (signs && !inverse) v = vmulq_f32(v, vld1q_f32(signs + i));
      float32x4_t w = vrev64q_f32(v);  // h = 1
      v = vbslq_f32(odd, vsubq_f32(w, v), vaddq_f32(v, w));
      w = vextq_f32(v, v, 2);  // h = 2
      v = vbslq_f32(high, vsubq_f32(w, v), vaddq_f32(v, w));
      vst1q_f32(p + i, v);
    }
    for (std::size_t h = 4; h < n; h <<= 1)
      for (std::size_t i = 0; i < n; i += 2 * h)
        for (std::size_t j = i; j < i + h; j += 4) {
          const float32x4_t a = vld1q_f32(p + j), c = vld1q_f32(p + j + h);
          vst1q_f32(p + j, vaddq_f32(a, c));
          vst1q_f32(p + j + h, vsubq_f32(a, c));
        }
    for (std::size_t i = 0; i < n; i += 4) {
      float32x4_t v = vmulq_f32(vld1q_f32(p + i), vs);
      if (signs && inverse) v = vmulq_f32(v, vld1q_f32(signs + i));
      vst1q_f32(p + i, v);
    }
  }
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
#endif
