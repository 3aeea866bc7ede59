// SPDX-License-Identifier: Apache-2.0
// Argument checks shared by the block quantizers.
#pragma once

#include <cstddef>
#include <string>

#include "blockq/config.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace detail {

constexpr std::size_t ceil_div(std::size_t n, std::size_t d) noexcept { return (n + d - 1) / d; }

inline void check_size(std::size_t got, std::size_t want, const char* what) {
  require(got == want, std::string(what) + " has " + std::to_string(got) + " elements, expected " +
                           std::to_string(want));
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
