// SPDX-License-Identifier: Apache-2.0
// The block loop shared by every quantizer whose elements are a small float
// format divided by a per-block scale (MX, NVFP4, FP4 with a float scale).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/detail/blocks.hpp"
#include "blockq/kernels.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace detail {

// Bytes of codes for n elements: n, or (n + 1) / 2 when packed two a byte.
template <bool Packed>
constexpr std::size_t code_bytes(std::size_t n) noexcept {
  return Packed ? (n + 1) / 2 : n;
}

template <bool Packed>
void check_codec_args(std::size_t n, std::size_t block, std::size_t code_size, std::size_t scale_size) {
  if constexpr (Packed)
    require(block % 2 == 0, "packed codes need an even block size, got " + std::to_string(block));
  check_size(code_size, code_bytes<Packed>(n), Packed ? "packed codes" : "codes");
  check_size(scale_size, ceil_div(n, block), "scales");
}

// For each block: scales[b] = scale_of(block), then the elements are encoded
// at divisor_of(scales[b]); a divisor that is 0 or not finite (a block of
// zeros, a scale that rounded to zero, a NaN block) gives all-zero codes.
template <class Element, class Arch, bool Packed, class Scale, class ScaleOf, class DivisorOf>
void quantize_blocks(std::span<const float> x, std::size_t block, tie_mode ties,
                     std::span<std::uint8_t> codes, std::span<Scale> scales, ScaleOf&& scale_of,
                     DivisorOf&& divisor_of) {
  check_codec_args<Packed>(x.size(), block, codes.size(), scales.size());
  for_each_block(x.size(), block, [&](std::size_t b, std::size_t begin, std::size_t len) {
    const Scale s = scale_of(b, x.subspan(begin, len));
    scales[b] = s;
    const float d = divisor_of(s);
    std::uint8_t* out = codes.data() + code_bytes<Packed>(begin);
    if (!(d > 0.0f) || !is_finite(d))
      std::memset(out, 0, code_bytes<Packed>(len));
    else if constexpr (Packed)
      kernels::encode_packed<Element>(Arch{}, x.data() + begin, len, d, ties, out);
    else
      kernels::encode<Element>(Arch{}, x.data() + begin, len, d, ties, out);
  });
}

// out[i] = decode(code) * divisor_of(scales[b]).
template <class Element, class Arch, bool Packed, class Scale, class DivisorOf>
void dequantize_blocks(std::span<const std::uint8_t> codes, std::span<const Scale> scales,
                       std::size_t block, std::span<float> out, DivisorOf&& divisor_of) {
  check_codec_args<Packed>(out.size(), block, codes.size(), scales.size());
  for_each_block(out.size(), block, [&](std::size_t b, std::size_t begin, std::size_t len) {
    const std::uint8_t* in = codes.data() + code_bytes<Packed>(begin);
    if constexpr (Packed)
      kernels::decode_packed<Element>(Arch{}, in, len, divisor_of(scales[b]), out.data() + begin);
    else
      kernels::decode<Element>(Arch{}, in, len, divisor_of(scales[b]), out.data() + begin);
  });
}

}  // namespace detail
BLOCKQ_END_NAMESPACE
