// SPDX-License-Identifier: Apache-2.0
// NEON kernels of ggml's Q4_0, Q4_1 and Q8_0 blocks, bit for bit the bytes of
// arch/ggml_scalar.hpp (tests/ggml_test.cpp, run under qemu in CI). One block at a time:
// - maxima and minima by vmaxnmq / vminnmq, which return the number when one operand is NaN:
//   NaN elements drop out as in ggml's comparisons (Q8_0's amax uses vmaxq, which keeps a
//   NaN, so that the scalar kernel takes those blocks);
// - codes by vcvtq_s32_f32 (truncation; NaN gives 0, as blockq defines it) clamped to
//   [0, 15]; Q8_0's roundf is vrndaq (to nearest, ties away from zero).
// The blocks the vector order cannot reproduce go through the scalar kernel, as on AVX2.
#pragma once

#include "blockq/arch.hpp"
#include "blockq/arch/ggml_scalar.hpp"

#if BLOCKQ_WITH_NEON
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {
namespace ggml_neon {

// Loads the block of 32 at p into v; its extremes (NaN skipped), from the start values lo and hi.
BLOCKQ_ALWAYS_INLINE void load_extremes(const float* p, float32x4_t* v, float lo, float hi, float& mx,
                                        float& mn) noexcept {
  for (int k = 0; k < 8; ++k) v[k] = vld1q_f32(p + 4 * k);
  float32x4_t a = vdupq_n_f32(lo), z = vdupq_n_f32(hi);
  for (int k = 0; k < 8; ++k) {
    a = vmaxnmq_f32(v[k], a);
    z = vminnmq_f32(v[k], z);
  }
  mx = vmaxvq_f32(a);
  mn = vminvq_f32(z);
}

// 32 int32 codes (elements 0..31) clamped to [0, 15] as ggml's 16 nibble bytes.
BLOCKQ_ALWAYS_INLINE void store_nibbles(const int32x4_t* c, std::uint8_t* out) noexcept {
  const int32x4_t zero = vdupq_n_s32(0), fifteen = vdupq_n_s32(15);
  uint16x8_t h[4];
  for (int k = 0; k < 4; ++k) {
    const uint32x4_t a = vreinterpretq_u32_s32(vminq_s32(vmaxq_s32(c[2 * k], zero), fifteen));
    const uint32x4_t b = vreinterpretq_u32_s32(vminq_s32(vmaxq_s32(c[2 * k + 1], zero), fifteen));
    h[k] = vcombine_u16(vmovn_u32(a), vmovn_u32(b));
  }
  const uint8x16_t lo = vcombine_u8(vmovn_u16(h[0]), vmovn_u16(h[1]));  // elements 0..15
  const uint8x16_t hi = vcombine_u8(vmovn_u16(h[2]), vmovn_u16(h[3]));  // elements 16..31
  vst1q_u8(out, vorrq_u8(lo, vshlq_n_u8(hi, 4)));
}

}  // namespace ggml_neon

inline void ggml_q4_0(arch::neon, const float* x, std::size_t nb, std::uint8_t* out) noexcept {
  using namespace ggml_neon;
  for (std::size_t b = 0; b < nb; ++b) {
    const float* p = x + b * 32;
    std::uint8_t* o = out + b * 18;
    float32x4_t v[8];
    float mx, mn;
    load_extremes(p, v, -__builtin_inff(), __builtin_inff(), mx, mn);
    // As on AVX2: the largest magnitude is mx or mn; +a and -a both present, an infinite
    // extreme (Inf, or all NaN) or an overflowing reciprocal go to the scalar kernel.
    const bool zero_block = mx == 0.0f && mn == 0.0f;
    const float m = zero_block ? 0.0f : (-mn > mx ? mn : mx);
    const float d = m * -0.125f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (!detail::is_finite(mx) || !detail::is_finite(mn) || !detail::is_finite(id) || (!zero_block && -mn == mx)) {
      ggml_q4_0_block(arch::scalar{}, p, o);
      continue;
    }
    detail::store_fp16(o, detail::ggml_fp16(d));
    const float32x4_t s = vdupq_n_f32(id), half8 = vdupq_n_f32(8.5f);
    int32x4_t c[8];
    for (int k = 0; k < 8; ++k) c[k] = vcvtq_s32_f32(vaddq_f32(detail::rounded(vmulq_f32(v[k], s)), half8));
    store_nibbles(c, o + 2);
  }
}

inline void ggml_q4_1(arch::neon, const float* x, std::size_t nb, std::uint8_t* out) noexcept {
  using namespace ggml_neon;
  constexpr float flt_max = 3.40282346638528859812e+38f;
  for (std::size_t b = 0; b < nb; ++b) {
    const float* p = x + b * 32;
    std::uint8_t* o = out + b * 20;
    float32x4_t v[8];
    float mx, mn;
    load_extremes(p, v, -flt_max, flt_max, mx, mn);
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (!detail::is_finite(d) || !detail::is_finite(id) || mx == 0.0f || mn == 0.0f) {
      ggml_q4_1_block(arch::scalar{}, p, o);
      continue;
    }
    detail::store_fp16(o, detail::ggml_fp16(d));
    detail::store_fp16(o + 2, detail::ggml_fp16(mn));
    const float32x4_t s = vdupq_n_f32(id), m = vdupq_n_f32(mn), half = vdupq_n_f32(0.5f);
    int32x4_t c[8];
    for (int k = 0; k < 8; ++k) c[k] = vcvtq_s32_f32(vaddq_f32(detail::rounded(vmulq_f32(vsubq_f32(v[k], m), s)), half));
    store_nibbles(c, o + 4);
  }
}

inline void ggml_q8_0(arch::neon, const float* x, std::size_t nb, std::uint8_t* out) noexcept {
  for (std::size_t b = 0; b < nb; ++b) {
    const float* p = x + b * 32;
    std::uint8_t* o = out + b * 34;
    float32x4_t v[8];
    float32x4_t a = vdupq_n_f32(0.0f);
    for (int k = 0; k < 8; ++k) {
      v[k] = vld1q_f32(p + 4 * k);
      a = vmaxq_f32(a, vabsq_f32(v[k]));  // keeps NaN
    }
    const float amax = vmaxvq_f32(a);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (!detail::is_finite(amax) || !detail::is_finite(id)) {
      ggml_q8_0_block(arch::scalar{}, p, o);
      continue;
    }
    detail::store_fp16(o, detail::ggml_fp16(d));
    const float32x4_t s = vdupq_n_f32(id);
    int16x8_t h[4];
    for (int k = 0; k < 4; ++k)
      h[k] = vcombine_s16(vmovn_s32(vcvtq_s32_f32(vrndaq_f32(vmulq_f32(v[2 * k], s)))),
                          vmovn_s32(vcvtq_s32_f32(vrndaq_f32(vmulq_f32(v[2 * k + 1], s)))));
    vst1q_s8(reinterpret_cast<std::int8_t*>(o + 2), vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
    vst1q_s8(reinterpret_cast<std::int8_t*>(o + 18), vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3])));
  }
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
#endif
