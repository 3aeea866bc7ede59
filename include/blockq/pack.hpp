// SPDX-License-Identifier: Apache-2.0
// Packed layouts (SPEC §8).
// - ocp (OCP, Hugging Face, gpt-oss, torchao, ModelOpt): element 2i in the low
//   nibble of byte i, 2i+1 in the high nibble; scales in a separate array.
// - ggml block_mxfp4: 17-byte blocks {uint8 e; uint8 qs[16]} with
//   qs[j] = code(x[j]) | code(x[j + 16]) << 4, zero always code 0 (E2M1's -0, code 8,
//   is written as 0, as ggml's quantizer does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "blockq/config.hpp"
#include "blockq/detail/blocks.hpp"

BLOCKQ_BEGIN_NAMESPACE

// Bytes needed to hold n codes of the given width: two a byte up to 4 bits, one a byte above.
constexpr std::size_t packed_size(std::size_t n, int bits) noexcept { return bits <= 4 ? (n + 1) / 2 : n; }

// Two 4-bit codes a byte, low nibble first; codes must be < 16. out: (n + 1) / 2 bytes.
inline void pack_nibbles(std::span<const std::uint8_t> codes, std::span<std::uint8_t> out) {
  detail::check_size(out.size(), (codes.size() + 1) / 2, "packed output",
                     "two a byte for " + std::to_string(codes.size()) + " codes");
  const std::size_t n = codes.size();
  for (std::size_t i = 0; i + 1 < n; i += 2)
    out[i / 2] = static_cast<std::uint8_t>((codes[i] & 0x0Fu) | ((codes[i + 1] & 0x0Fu) << 4));
  if (n & 1u) out[n / 2] = static_cast<std::uint8_t>(codes[n - 1] & 0x0Fu);
}

// The inverse of pack_nibbles: codes.size() codes from (codes.size() + 1) / 2 bytes.
inline void unpack_nibbles(std::span<const std::uint8_t> packed, std::span<std::uint8_t> codes) {
  detail::check_output_for_codes(codes.size(), packed.size(), true);
  for (std::size_t i = 0; i < codes.size(); ++i)
    codes[i] = static_cast<std::uint8_t>((i & 1u) ? packed[i / 2] >> 4 : packed[i / 2] & 0x0Fu);
}

inline std::vector<std::uint8_t> pack_nibbles(std::span<const std::uint8_t> codes) {
  std::vector<std::uint8_t> out((codes.size() + 1) / 2);
  pack_nibbles(codes, out);
  return out;
}

// ggml's block_mxfp4: 32 elements in 17 bytes.
inline constexpr std::size_t ggml_mxfp4_block_elements = 32;
inline constexpr std::size_t ggml_mxfp4_block_bytes = 17;

namespace detail {
inline void check_ggml_mxfp4(std::size_t n, const char* what) {
  require(n % ggml_mxfp4_block_elements == 0,
          std::string(what) + " has " + std::to_string(n) + " elements, ggml block_mxfp4 needs a multiple of 32");
}
}  // namespace detail

// A byte of ggml's qs from two E2M1 codes; code 8 (-0) becomes 0, ggml's only zero.
constexpr std::uint8_t ggml_mxfp4_byte(std::uint8_t lo, std::uint8_t hi) noexcept {
  lo &= 0x0Fu;
  hi &= 0x0Fu;
  return static_cast<std::uint8_t>((lo == 8 ? 0 : lo) | (hi == 8 ? 0 : hi) << 4);
}

// codes: n E2M1 codes (one a byte), scales: n / 32 UE8M0 codes; out: n / 32 * 17 bytes.
inline void pack_ggml_mxfp4(std::span<const std::uint8_t> codes, std::span<const std::uint8_t> scales,
                            std::span<std::uint8_t> out) {
  detail::check_ggml_mxfp4(codes.size(), "codes");
  const std::size_t nb = codes.size() / ggml_mxfp4_block_elements;
  detail::check_size(scales.size(), nb, "scales", "one per block of 32 codes");
  detail::check_size(out.size(), nb * ggml_mxfp4_block_bytes, "ggml output",
                     "17 bytes per block of 32 for " + std::to_string(codes.size()) + " codes");
  for (std::size_t b = 0; b < nb; ++b) {
    const std::uint8_t* c = codes.data() + b * 32;
    std::uint8_t* o = out.data() + b * ggml_mxfp4_block_bytes;
    o[0] = scales[b];
    for (std::size_t j = 0; j < 16; ++j)
      o[1 + j] = ggml_mxfp4_byte(c[j], c[j + 16]);
  }
}

// The inverse of pack_ggml_mxfp4.
inline void unpack_ggml_mxfp4(std::span<const std::uint8_t> in, std::span<std::uint8_t> codes,
                              std::span<std::uint8_t> scales) {
  // The input fixes the sizes of the two outputs.
  detail::require(in.size() % ggml_mxfp4_block_bytes == 0,
                  "ggml input has " + std::to_string(in.size()) + " bytes, not a multiple of 17 (block_mxfp4)");
  const std::size_t nb = in.size() / ggml_mxfp4_block_bytes;
  const std::string why = "the ggml input's " + std::to_string(nb) + " blocks";
  detail::check_size(codes.size(), nb * ggml_mxfp4_block_elements, "codes", "32 per block for " + why);
  detail::check_size(scales.size(), nb, "scales", "one per block for " + why);
  for (std::size_t b = 0; b < nb; ++b) {
    const std::uint8_t* i = in.data() + b * ggml_mxfp4_block_bytes;
    std::uint8_t* c = codes.data() + b * 32;
    scales[b] = i[0];
    for (std::size_t j = 0; j < 16; ++j) {
      c[j] = static_cast<std::uint8_t>(i[1 + j] & 0x0Fu);
      c[j + 16] = static_cast<std::uint8_t>(i[1 + j] >> 4);
    }
  }
}

BLOCKQ_END_NAMESPACE
