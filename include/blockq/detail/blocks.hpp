// SPDX-License-Identifier: Apache-2.0
// Argument checks shared by the block quantizers.
#pragma once

#include <cstddef>
#include <string>

#include "blockq/config.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace detail {

constexpr std::size_t ceil_div(std::size_t n, std::size_t d) noexcept { return (n + d - 1) / d; }

// A span argument of the wrong size: the message names the argument (what), its size, the
// size expected and, when given, where that expectation comes from (why), so that a caller
// can tell which of several spans to fix.
inline void check_size(std::size_t got, std::size_t want, const char* what, const std::string& why = {}) {
  if (got != want)
    require(false, std::string(what) + " has " + std::to_string(got) + " elements, expected " +
                       std::to_string(want) + (why.empty() ? "" : " (" + why + ")"));
}

// Dequantizing, the codes (the input) fix the size of out: one element a code, or two a
// byte when packed (an odd element count leaves the last high nibble unused).
inline void check_output_for_codes(std::size_t out, std::size_t codes, bool packed) {
  const bool ok = packed ? (out + 1) / 2 == codes : out == codes;
  if (!ok)
    require(false, "output has " + std::to_string(out) + " elements, expected " +
                       (packed ? (codes ? std::to_string(2 * codes - 1) + " or " : std::string()) +
                                     std::to_string(2 * codes) + " (two a byte of the " + std::to_string(codes) +
                                     " bytes of packed codes)"
                               : std::to_string(codes) + " (one per code; " + std::to_string(codes) + " codes)"));
}

// "for the input's n elements" / "for the output's n elements" in blocks of b.
inline std::string per_block(std::size_t n, std::size_t block, const char* side) {
  return "one per block of " + std::to_string(block) + " for the " + side + "'s " + std::to_string(n) + " elements";
}

inline void check_block(std::size_t block) {
  require(block > 0, "block size must be positive, got " + std::to_string(block));
}

// Calls f(block_index, begin, length) for consecutive blocks of n elements;
// the last block is shorter when block does not divide n.
template <class F>
void for_each_block(std::size_t n, std::size_t block, F&& f) {
  for (std::size_t b = 0, begin = 0; begin < n; ++b, begin += block)
    f(b, begin, n - begin < block ? n - begin : block);
}

}  // namespace detail
BLOCKQ_END_NAMESPACE
