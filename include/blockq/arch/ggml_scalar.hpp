// SPDX-License-Identifier: Apache-2.0
// The scalar oracle of ggml's block types (SPEC §8): each block quantized with the float32
// arithmetic of ggml's C reference (ggml-quants.c, quantize_row_*_ref), step for step, and
// decoded with ggml's dequantize_row_*. Blocks are 32 elements; out holds whole blocks
// (fp16 fields little-endian, as GGUF stores them).
//
// Where the C reference is undefined (a NaN or an Inf converted to an integer), blockq writes
// what the reference does when compiled for x86-64: the conversion instruction returns
// 0x80000000, of which the stored low byte is 0 (ggml_trunc_byte). The one deliberate
// difference is MXFP4's exponent: exact here (detail::floor_log2), floorf(log2f(amax)) in
// ggml, which is one too high for amax a few ulps below a power of two.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/formats/half.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace detail {

// Keeps the compiler from fusing a product into a following addition (an FMA rounds once,
// ggml's reference rounds twice): the value must exist as a rounded float. V: float, or the
// vector of floats of the AVX2 and NEON kernels (the same register constraints).
template <class V>
BLOCKQ_ALWAYS_INLINE V rounded(V v) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  __asm__("" : "+x"(v));
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
  __asm__("" : "+w"(v));
#else
  volatile V t = v;
  v = t;
#endif
  return v;
}

// GGML_FP32_TO_FP16: round to nearest even, overflow to Inf; every NaN becomes the quiet NaN
// 0x7E00 with the input's sign (no payload).
constexpr std::uint16_t ggml_fp16(float f) noexcept {
  if (is_nan(f)) return static_cast<std::uint16_t>(((std::bit_cast<std::uint32_t>(f) >> 16) & 0x8000u) | 0x7E00u);
  return float16::from_float(f).bits;
}

// The low byte of C's float-to-small-integer conversion as x86-64 executes it: truncation
// toward zero through a 32-bit integer; NaN and values outside int32 give 0x80000000.
constexpr std::uint8_t ggml_trunc_byte(float v) noexcept {
  if (!(v >= -2147483648.0f && v < 2147483648.0f)) return 0;
  return static_cast<std::uint8_t>(static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
}

// MIN(15, (int8_t)v) stored in a uint8_t, as the Q4 references write a nibble.
constexpr std::uint8_t ggml_nibble(float v) noexcept {
  const auto t = static_cast<std::int8_t>(ggml_trunc_byte(v));
  return static_cast<std::uint8_t>(t < 15 ? t : 15);
}

// GGML_E8M0_TO_FP32_HALF: 2^(e - 128), the subnormals 2^-128 and 2^-127 for e < 2 (e = 255 is
// not NaN in ggml but 2^127).
constexpr float ggml_e8m0_half(std::uint8_t e) noexcept {
  const std::uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<std::uint32_t>(e) - 1u) << 23;
  return std::bit_cast<float>(bits);
}

// kvalues_mxfp4: the E2M1 values doubled, indexed by code.
inline constexpr std::int8_t ggml_mxfp4_values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// blockq's MXFP4 exponent byte for a block whose non-NaN elements have the largest
// magnitude amax: floor(log2 amax) - 2 + 127 exactly; 0 for amax = 0 or Inf (ggml's x86
// result) and for amax < 2^-125, where ggml's byte wraps around (undefined in C).
constexpr std::uint8_t ggml_mxfp4_exponent(float amax) noexcept {
  if (!(amax > 0.0f) || !is_finite(amax)) return 0;
  const int e = floor_log2(amax) + 125;
  return static_cast<std::uint8_t>(e < 0 ? 0 : e);
}

// best_index_mxfp4: the first code of least |kv * d - x| in float32 (ties toward the lower
// code, so zero and everything that rounds to zero is code 0; NaN gives 0).
inline std::uint8_t ggml_mxfp4_code(float x, float d) noexcept {
  std::uint8_t best = 0;
  float best_err = std::fabs(ggml_mxfp4_values[0] * d - x);
  for (std::uint8_t i = 1; i < 16; ++i) {
    const float err = std::fabs(ggml_mxfp4_values[i] * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

BLOCKQ_ALWAYS_INLINE void store_fp16(std::uint8_t* p, std::uint16_t h) noexcept {
  p[0] = static_cast<std::uint8_t>(h & 0xFFu);
  p[1] = static_cast<std::uint8_t>(h >> 8);
}
BLOCKQ_ALWAYS_INLINE float load_fp16(const std::uint8_t* p) noexcept {
  return float16::from_bits(static_cast<std::uint16_t>(p[0] | (p[1] << 8))).to_float();
}

}  // namespace detail

namespace kernels {

// Q4_0, 18 bytes a block: d = m / -8 (m the first element of largest |x|; NaN skipped),
// id = 1/d, q = MIN(15, (int8_t)(x * id + 8.5f)).
inline void ggml_q4_0_block(arch::scalar, const float* x, std::uint8_t* out) noexcept {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  detail::store_fp16(out, detail::ggml_fp16(d));
  for (int j = 0; j < 16; ++j) {
    const std::uint8_t lo = detail::ggml_nibble(detail::rounded(x[j] * id) + 8.5f);
    const std::uint8_t hi = detail::ggml_nibble(detail::rounded(x[j + 16] * id) + 8.5f);
    out[2 + j] = static_cast<std::uint8_t>(lo | (hi << 4));
  }
}

// Q4_1, 20 bytes a block: d = (max - min) / 15, m = min (NaN skipped), id = 1/d,
// q = MIN(15, (int8_t)((x - min) * id + 0.5f)).
inline void ggml_q4_1_block(arch::scalar, const float* x, std::uint8_t* out) noexcept {
  float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  detail::store_fp16(out, detail::ggml_fp16(d));
  detail::store_fp16(out + 2, detail::ggml_fp16(min));
  for (int j = 0; j < 16; ++j) {
    const std::uint8_t lo = detail::ggml_nibble(detail::rounded((x[j] - min) * id) + 0.5f);
    const std::uint8_t hi = detail::ggml_nibble(detail::rounded((x[j + 16] - min) * id) + 0.5f);
    out[4 + j] = static_cast<std::uint8_t>(lo | (hi << 4));
  }
}

// Q8_0, 34 bytes a block: amax by MAX(amax, |x|) (a NaN is kept only until the next
// element), d = amax / 127, id = 1/d, q = (int8_t)roundf(x * id).
inline void ggml_q8_0_block(arch::scalar, const float* x, std::uint8_t* out) noexcept {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float a = std::fabs(x[j]);
    amax = amax > a ? amax : a;
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  detail::store_fp16(out, detail::ggml_fp16(d));
  for (int j = 0; j < 32; ++j) out[2 + j] = detail::ggml_trunc_byte(std::round(x[j] * id));
}

// MXFP4, 17 bytes a block: e from amax (detail::ggml_mxfp4_exponent), d = 2^(e - 128), each
// code the first of least |kv * d - x|.
inline void ggml_mxfp4_block(arch::scalar, const float* x, std::uint8_t* out) noexcept {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j)
    if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
  const std::uint8_t e = detail::ggml_mxfp4_exponent(amax);
  const float d = detail::ggml_e8m0_half(e);
  out[0] = e;
  for (int j = 0; j < 16; ++j)
    out[1 + j] = static_cast<std::uint8_t>(detail::ggml_mxfp4_code(x[j], d) |
                                           (detail::ggml_mxfp4_code(x[j + 16], d) << 4));
}

// Decoding, as ggml's dequantize_row_*: q4_0 (q - 8) * d, q4_1 q * d + m (two roundings),
// q8_0 q * d, mxfp4 kv * 2^(e - 128).
inline void ggml_q4_0_decode(arch::scalar, const std::uint8_t* in, float* out) noexcept {
  const float d = detail::load_fp16(in);
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<float>((in[2 + j] & 0x0F) - 8) * d;
    out[j + 16] = static_cast<float>((in[2 + j] >> 4) - 8) * d;
  }
}
inline void ggml_q4_1_decode(arch::scalar, const std::uint8_t* in, float* out) noexcept {
  const float d = detail::load_fp16(in), m = detail::load_fp16(in + 2);
  for (int j = 0; j < 16; ++j) {
    out[j] = detail::rounded(static_cast<float>(in[4 + j] & 0x0F) * d) + m;
    out[j + 16] = detail::rounded(static_cast<float>(in[4 + j] >> 4) * d) + m;
  }
}
inline void ggml_q8_0_decode(arch::scalar, const std::uint8_t* in, float* out) noexcept {
  const float d = detail::load_fp16(in);
  for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(static_cast<std::int8_t>(in[2 + j])) * d;
}
inline void ggml_mxfp4_decode(arch::scalar, const std::uint8_t* in, float* out) noexcept {
  const float d = detail::ggml_e8m0_half(in[0]);
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<float>(detail::ggml_mxfp4_values[in[1 + j] & 0x0F]) * d;
    out[j + 16] = static_cast<float>(detail::ggml_mxfp4_values[in[1 + j] >> 4]) * d;
  }
}

// Whole rows of nb blocks: the per-architecture entry points (the AVX2 and NEON overloads
// return these bytes, tests/ggml_test.cpp).
#define BLOCKQ_GGML_ROW(name, bytes)                                                                   \
  inline void ggml_##name(arch::scalar, const float* x, std::size_t nb, std::uint8_t* out) noexcept {  \
    for (std::size_t b = 0; b < nb; ++b) ggml_##name##_block(arch::scalar{}, x + b * 32, out + b * bytes); \
  }                                                                                                    \
  inline void ggml_##name##_dequantize(arch::scalar, const std::uint8_t* in, std::size_t nb, float* out) noexcept { \
    for (std::size_t b = 0; b < nb; ++b) ggml_##name##_decode(arch::scalar{}, in + b * bytes, out + b * 32); \
  }
BLOCKQ_GGML_ROW(q4_0, 18)
BLOCKQ_GGML_ROW(q4_1, 20)
BLOCKQ_GGML_ROW(q8_0, 34)
BLOCKQ_GGML_ROW(mxfp4, 17)
#undef BLOCKQ_GGML_ROW

}  // namespace kernels
BLOCKQ_END_NAMESPACE
