// SPDX-License-Identifier: Apache-2.0
// The scalar block Walsh–Hadamard kernel: the oracle of arch/hadamard_avx2.hpp and
// arch/hadamard_neon.hpp, which return its bits for every input.
//
// Convention shared by every architecture (so that results are identical):
// - the transform of a block of n (a power of two) is the Sylvester Hadamard matrix
//   H_n, computed in place in log2(n) stages; stage h = 1, 2, 4, ... replaces each pair
//   (x[j], x[j + h]) with j mod 2h < h by (x[j] + x[j + h], x[j] - x[j + h]);
// - forward: x[j] * signs[j] before the stages, then * scale after them;
//   inverse: the stages, then * scale, then * signs[j] (signs are +-1: exact).
#pragma once

#include <cstddef>
#include <cstring>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

// Every block of n consecutive elements of x[0, len) (len a multiple of n) transformed as
// above; signs: n values +-1, or null for none.
template <class T>
void hadamard_blocks(arch::scalar, T* x, std::size_t len, std::size_t n, const T* signs, T scale,
                     bool inverse) noexcept {
  for (std::size_t b = 0; b + n <= len; b += n) {
    T* p = x + b;
    if (signs && !inverse)
      for (std::size_t j = 0; j < n; ++j) p[j] *= signs[j];
    for (std::size_t h = 1; h < n; h <<= 1)
      for (std::size_t i = 0; i < n; i += 2 * h)
        for (std::size_t j = i; j < i + h; ++j) {
          const T a = p[j], c = p[j + h];
          p[j] = a + c;
          p[j + h] = a - c;
        }
    for (std::size_t j = 0; j < n; ++j) p[j] *= scale;
    if (signs && inverse)
      for (std::size_t j = 0; j < n; ++j) p[j] *= signs[j];
  }
}

// The same transform of float blocks over vector registers of V::lanes floats, the driver
// of the vector kernels (arch/hadamard_avx2.hpp, arch/hadamard_neon.hpp); blocks shorter
// than a register take the oracle. The policy V supplies the register type (vec) and
// low_stages, the stages h < lanes inside one register, which must compute every lane as
// the oracle does (the same operands in the same order). The stages h >= lanes are plain butterflies
// between registers, the oracle's operations lane by lane; the arithmetic is written with
// the GCC / Clang vector operators (+, -, * lane by lane, a float operand broadcast), which
// every compiler that enables these kernels provides, and the project builds with
// -ffp-contract=off, so a product is never fused into a following sum.
template <class V>
void hadamard_blocks_vector(float* x, std::size_t len, std::size_t n, const float* signs, float scale,
                            bool inverse) noexcept {
  using vec = typename V::vec;
  constexpr std::size_t w = sizeof(vec) / sizeof(float);
  auto load = [](const float* q) noexcept {  // unaligned: a plain vector load
    vec v;
    std::memcpy(&v, q, sizeof v);
    return v;
  };
  auto store = [](float* q, vec v) noexcept { std::memcpy(q, &v, sizeof v); };
  if (n < w) {
    hadamard_blocks(arch::scalar{}, x, len, n, signs, scale, inverse);
    return;
  }
  for (std::size_t b = 0; b + n <= len; b += n) {
    float* p = x + b;
    for (std::size_t i = 0; i < n; i += w) {
      auto v = load(p + i);
      if (signs && !inverse) v = v * load(signs + i);
      store(p + i, V::low_stages(v));
    }
    for (std::size_t h = w; h < n; h <<= 1)
      for (std::size_t i = 0; i < n; i += 2 * h)
        for (std::size_t j = i; j < i + h; j += w) {
          const auto a = load(p + j), c = load(p + j + h);
          store(p + j, a + c);
          store(p + j + h, a - c);
        }
    for (std::size_t i = 0; i < n; i += w) {
      auto v = load(p + i) * scale;
      if (signs && inverse) v = v * load(signs + i);
      store(p + i, v);
    }
  }
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
