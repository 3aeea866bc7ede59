// SPDX-License-Identifier: Apache-2.0
// The block loop shared by every quantizer whose elements are a small float
// format divided by a per-block scale (MX, NVFP4, FP4 with a float scale).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/detail/blocks.hpp"
#include "blockq/formats/half.hpp"
#include "blockq/kernels.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace detail {

// Bytes of codes for n elements: n, or (n + 1) / 2 when packed two a byte.
template <bool Packed>
constexpr std::size_t code_bytes(std::size_t n) noexcept {
  return Packed ? (n + 1) / 2 : n;
}

// Quantizing, the input x (n elements) fixes the sizes of the codes and scales; dequantizing,
// the codes fix the size of the output, and the output's size that of the scales. Each
// message names the span that disagrees (the outputs when quantizing, the output first
// when dequantizing).
template <bool Packed>
void check_codec_args(std::size_t n, std::size_t block, std::size_t code_size, std::size_t scale_size,
                      bool dequantizing = false) {
  if constexpr (Packed)
    require(block % 2 == 0, "packed codes need an even block size, got " + std::to_string(block));
  if (dequantizing)
    check_output_for_codes(n, code_size, Packed);
  else
    check_size(code_size, code_bytes<Packed>(n), Packed ? "packed codes" : "codes",
               (Packed ? "two a byte for the input's " : "one per element for the input's ") + std::to_string(n) +
                   " elements");
  check_size(scale_size, ceil_div(n, block), "scales", per_block(n, block, dequantizing ? "output" : "input"));
}

// The input element types: float32 as is, float16 and bfloat16 converted (exactly) to
// float32 a block or a chunk of blocks at a time.
template <class T>
concept input_element = std::is_same_v<T, float> || std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>;

// What the quantizers' entry points take as input: a contiguous range of input elements (a
// std::span, std::vector, std::array or C array), one template per entry point in place of
// an overload per element type. The range itself is the parameter because a template does
// not deduce T of std::span<const T> through a std::vector's conversion to a span.
template <class R>
concept input_range = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                      input_element<std::ranges::range_value_t<R>>;

// The elements of an input range as the span the block loops take.
template <input_range R>
auto input_span(R&& r) noexcept {
  return std::span<const std::ranges::range_value_t<R>>(std::ranges::data(r), std::ranges::size(r));
}

// A float32 staging buffer for 16-bit inputs: on the stack up to kStackFloats floats (the
// caller's blocks, or chunks of them), on the heap (once per call) above that.
template <class T>
class float_buffer {
 public:
  static constexpr std::size_t kStackFloats = 2048;
  explicit float_buffer(std::size_t n) {
    if (n > kStackFloats) heap_.resize(n);
  }
  float* data() noexcept { return heap_.empty() ? stack_ : heap_.data(); }

 private:
  float stack_[kStackFloats];
  std::vector<float> heap_;
};
template <>
class float_buffer<float> {  // float32 input needs no staging
 public:
  explicit float_buffer(std::size_t) noexcept {}
  float* data() noexcept { return nullptr; }
};

// Elements of x in the chunks the 16-bit paths convert at once: whole blocks, up to the
// stack buffer (at least one block).
inline std::size_t chunk_elements(std::size_t block) noexcept {
  const std::size_t per = float_buffer<float16>::kStackFloats / block;
  return (per ? per : 1) * block;
}

// The len elements of x from begin as floats: x itself for float input, else converted into buf
// (at least len floats).
template <class Arch, class T>
const float* floats_of(std::span<const T> x, std::size_t begin, std::size_t len, float_buffer<T>& buf) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return x.data() + begin;
  } else {
    kernels::to_float(Arch{}, x.data() + begin, len, buf.data());
    return buf.data();
  }
}

// The codes of one block of len elements at divisor d (quantize_blocks' encode): all zero
// when d is 0 or not finite.
template <class Element, class Arch, bool Packed>
void encode_block(const float* xb, std::size_t len, float d, tie_mode ties, std::uint8_t* out) noexcept {
  if (!(d > 0.0f) || !is_finite(d))
    std::memset(out, 0, code_bytes<Packed>(len));
  else if constexpr (Packed)
    kernels::encode_packed<Element>(Arch{}, xb, len, d, ties, out);
  else
    kernels::encode<Element>(Arch{}, xb, len, d, ties, out);
}

// For each block: scales[b] = scale_of(b, block as floats), then the elements are encoded
// at divisor_of(scales[b]); a divisor that is 0 or not finite (a block of zeros, a scale
// that rounded to zero, a NaN block) gives all-zero codes. 16-bit inputs are converted a
// block at a time.
template <class Element, class Arch, bool Packed, class T, class Scale, class ScaleOf, class DivisorOf>
void quantize_blocks(std::span<const T> x, std::size_t block, tie_mode ties,
                     std::span<std::uint8_t> codes, std::span<Scale> scales, ScaleOf&& scale_of,
                     DivisorOf&& divisor_of) {
  check_codec_args<Packed>(x.size(), block, codes.size(), scales.size());
  [[maybe_unused]] float_buffer<T> buf(block);
  for_each_block(x.size(), block, [&](std::size_t b, std::size_t begin, std::size_t len) {
    const float* xb = floats_of<Arch>(x, begin, len, buf);
    const Scale s = scale_of(b, std::span<const float>(xb, len));
    scales[b] = s;
    encode_block<Element, Arch, Packed>(xb, len, divisor_of(s), ties, codes.data() + code_bytes<Packed>(begin));
  });
}

// quantize_blocks for the rules whose scale is a function of the block's amax alone:
// scales[b] = code_of(amax), then as above. The architecture runs the whole loop
// (kernels::amax_blocks), fused where it can; 16-bit inputs go through in chunks of blocks.
// Layout ggml_mxfp4 writes 17-byte blocks into codes and ignores scales.
template <class Element, class Arch, kernels::code_layout L, class T, class Scale, class CodeOf, class DivisorOf>
void quantize_amax_blocks(std::span<const T> x, std::size_t block, tie_mode ties, std::span<std::uint8_t> codes,
                          std::span<Scale> scales, CodeOf&& code_of, DivisorOf&& divisor_of) {
  constexpr bool packed = L == kernels::code_layout::nibbles;
  if constexpr (L != kernels::code_layout::ggml_mxfp4) check_codec_args<packed>(x.size(), block, codes.size(), scales.size());
  auto run = [&](const float* xs, std::size_t begin, std::size_t len) {
    std::uint8_t* out = L == kernels::code_layout::ggml_mxfp4 ? codes.data() + begin / 32 * 17
                                                              : codes.data() + code_bytes<packed>(begin);
    Scale* sc = L == kernels::code_layout::ggml_mxfp4 ? nullptr : scales.data() + begin / block;
    kernels::amax_blocks<Element, L>(Arch{}, xs, len, block, ties, code_of, divisor_of, out, sc);
  };
  if constexpr (std::is_same_v<T, float>) {
    run(x.data(), 0, x.size());
  } else {
    const std::size_t chunk = chunk_elements(block);
    float_buffer<T> buf(chunk);
    for (std::size_t begin = 0; begin < x.size(); begin += chunk) {
      const std::size_t len = x.size() - begin < chunk ? x.size() - begin : chunk;
      kernels::to_float(Arch{}, x.data() + begin, len, buf.data());
      run(buf.data(), begin, len);
    }
  }
}

// out[i] = decode(code) * divisor_of(scales[b]), the loop run by the architecture
// (kernels::decode_blocks).
template <class Element, class Arch, bool Packed, class Scale, class DivisorOf>
void dequantize_blocks(std::span<const std::uint8_t> codes, std::span<const Scale> scales,
                       std::size_t block, std::span<float> out, DivisorOf&& divisor_of) {
  check_codec_args<Packed>(out.size(), block, codes.size(), scales.size(), true);
  kernels::decode_blocks<Element, Packed>(Arch{}, codes.data(), scales.data(), out.size(), block, divisor_of,
                                          out.data());
}

}  // namespace detail
BLOCKQ_END_NAMESPACE
