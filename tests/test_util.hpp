// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the unit tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace blockq_test {

// n standard-normal floats (std::mt19937_64 with the given seed), scaled.
inline std::vector<float> normal_floats(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> d;
  std::vector<float> x(n);
  for (auto& v : x) v = scale * d(gen);
  return x;
}

// The message of the std::invalid_argument that f throws, or "no exception".
template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no exception";
}

}  // namespace blockq_test
